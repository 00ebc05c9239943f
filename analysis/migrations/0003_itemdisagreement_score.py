# ItemDisagreement ranks by `score`: the label entropy for classification (copied from
# `entropy` for existing rows), 1 - mean pairwise span F1 for span projects (whose rows leave
# `entropy` null).

from django.db import migrations, models
from django.db.models import F


def score_from_entropy(apps, schema_editor):
    ItemDisagreement = apps.get_model("analysis", "ItemDisagreement")
    ItemDisagreement.objects.using(schema_editor.connection.alias).update(score=F("entropy"))


class Migration(migrations.Migration):

    dependencies = [
        ("analysis", "0002_datasetversion_from_labeling"),
    ]

    operations = [
        migrations.AddField(
            model_name="itemdisagreement",
            name="score",
            field=models.FloatField(default=0.0),
        ),
        migrations.RunPython(score_from_entropy, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="itemdisagreement",
            name="entropy",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AlterModelOptions(
            name="itemdisagreement",
            options={"ordering": ["-score", "item_id"]},
        ),
    ]

# DatasetVersion moves to the analysis app (export is downstream of analysis). Only Django's
# state changes here: the table `labeling_datasetversion` and its rows stay where they are and
# analysis 0002 takes the model over with the same db_table.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='DatasetVersion')],
            database_operations=[],
        ),
    ]

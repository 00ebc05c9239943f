# DatasetVersion comes over from the labeling app with its table: state only, no table is
# rebuilt, existing rows stay. The content type is renamed so permissions given on the model
# and admin history keep pointing at it.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def content_type_to(app_label_from, app_label_to):
    def rename(apps, schema_editor):
        content_types = apps.get_model('contenttypes', 'ContentType').objects.using(
            schema_editor.connection.alias
        )
        if not content_types.filter(app_label=app_label_to, model='datasetversion').exists():
            content_types.filter(app_label=app_label_from, model='datasetversion').update(
                app_label=app_label_to
            )

    return rename


class Migration(migrations.Migration):

    dependencies = [
        ('analysis', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('labeling', '0002_datasetversion_moves_to_analysis'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='DatasetVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('params', models.JSONField(default=dict)),
                        ('format', models.CharField(max_length=16)),
                        ('row_count', models.PositiveIntegerField(default=0)),
                        ('sha256', models.CharField(blank=True, max_length=64)),
                        ('guideline_version', models.PositiveIntegerField(blank=True, null=True)),
                        ('runs', models.JSONField(blank=True, default=list)),
                        ('label_snapshot', models.BinaryField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='datasets', to='labeling.project')),
                    ],
                    options={
                        'db_table': 'labeling_datasetversion',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            content_type_to('labeling', 'analysis'), content_type_to('analysis', 'labeling')
        ),
    ]

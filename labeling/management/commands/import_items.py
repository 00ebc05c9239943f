"""`manage.py import_items PROJECT_ID FILE`: the import service from the command line.

Its flags are ImportOptionsSerializer's fields (`id_column` -> `--id-column`), so the command
takes exactly the options of the API and the upload page.
"""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework import serializers

from labeling.importing.jobs import import_file
from labeling.importing.options import ImportOptionsSerializer, options_in
from labeling.models import ImportBatch, Project


def _add_option(parser, name: str, field: serializers.Field) -> None:
    flag = "--" + name.replace("_", "-")
    # argparse formats help with %; the help texts are plain text.
    help_text = str(field.help_text or field.label or "").replace("%", "%%")
    if isinstance(field, serializers.BooleanField):
        parser.add_argument(flag, action="store_true", default=None, help=help_text)
    elif isinstance(field, serializers.ChoiceField):
        choices = [value for value in field.choices if value != ""]
        parser.add_argument(flag, choices=choices, help=help_text)
    else:
        parser.add_argument(flag, help=help_text)


class Command(BaseCommand):
    help = (
        "Import items or annotations from a CSV, JSON Lines, CoNLL or Label Studio file into a "
        "project. "
        "The whole file is checked first; any bad row and nothing is imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("file")
        for name, field in ImportOptionsSerializer().fields.items():
            _add_option(parser, name, field)

    def handle(self, *args, **opts):
        project = Project.objects.filter(pk=opts["project_id"]).first()
        if project is None:
            raise CommandError(f"No project with id {opts['project_id']}.")
        path = Path(opts["file"])
        try:
            with open(path, "rb") as fileobj:
                batch = import_file(
                    project=project,
                    fileobj=fileobj,
                    filename=path.name,
                    format=opts["format"],
                    kind=opts["kind"],
                    options=options_in(opts),
                    user=None,
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {opts['file']}: {exc.strerror}.")
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            )
        if batch.status != ImportBatch.Status.SUCCEEDED:
            for error in batch.errors:
                row = "-" if error["row"] is None else error["row"]
                self.stderr.write(f"row {row}: {error['reason']}")
            raise CommandError(f"Import {batch.pk} rejected: {batch.message}.")
        self.stdout.write(self.style.SUCCESS(f"Import {batch.pk}: {batch.message}."))

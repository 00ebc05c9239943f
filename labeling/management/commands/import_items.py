"""`manage.py import_items PROJECT_ID FILE`: the import service from the command line."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import ImportBatch, Project
from labeling.services.importing import import_file


class Command(BaseCommand):
    help = (
        "Import items or annotations from a CSV, JSON Lines or Label Studio file into a project. "
        "The whole file is checked first; any bad row and nothing is imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("file")
        parser.add_argument("--format", default="csv", choices=ImportBatch.Format.values)
        parser.add_argument("--kind", default="items", choices=ImportBatch.Kind.values)
        parser.add_argument("--id-column")
        parser.add_argument("--text-column")
        parser.add_argument("--image-column")
        parser.add_argument("--metadata-columns", help="Comma-separated.")
        parser.add_argument("--on-duplicate", choices=["error", "skip", "update"])
        parser.add_argument("--annotator-column")
        parser.add_argument("--label-column")
        parser.add_argument("--delimiter", choices=["comma", "tab", "semicolon"])

    def handle(self, *args, **opts):
        project = Project.objects.filter(pk=opts["project_id"]).first()
        if project is None:
            raise CommandError(f"No project with id {opts['project_id']}.")
        names = (
            "id_column",
            "text_column",
            "image_column",
            "metadata_columns",
            "on_duplicate",
            "annotator_column",
            "label_column",
            "delimiter",
        )
        options = {name: opts[name] for name in names if opts.get(name)}
        try:
            with open(opts["file"], "rb") as fileobj:
                batch = import_file(
                    project=project,
                    fileobj=fileobj,
                    filename=opts["file"].rsplit("/", 1)[-1],
                    format=opts["format"],
                    kind=opts["kind"],
                    options=options,
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

"""Files and runs shared by the import tests of every stage."""

import csv
import io

from labeling.importing.jobs import import_file
from labeling.models import ImportBatch, Item


def run_import(project, user, content: bytes, *, format="csv", kind="items", **options):
    return import_file(
        project=project,
        fileobj=io.BytesIO(content),
        filename=options.pop("filename", f"upload.{format}"),
        format=format,
        kind=kind,
        options=options,
        user=user,
    )


def sentiment_csv(sentiment_data, *, delimiter=",") -> bytes:
    """external_id,text,source,label from `sentence<TAB>label` files (no header)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["external_id", "text", "source", "label"])
    for path in sorted((sentiment_data).glob("*.tsv")):
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            sentence, label = line.rsplit("\t", 1)
            writer.writerow([f"{path.stem}-{n}", sentence, path.stem, label])
    return out.getvalue().encode()


def good_rows(n: int, start: int = 0) -> str:
    return "".join(f"id-{i},sentence number {i}\n" for i in range(start, start + n))


def assert_rejected(batch, project, errors):
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.rows == 0
    assert batch.errors == errors
    stored = ImportBatch.objects.get(pk=batch.pk)
    assert (stored.status, stored.errors) == ("failed", errors)
    assert not Item.objects.filter(project=project, batch=batch).exists()

"""Running an import: now in this process (`import_file`), or on a worker (`import_submit` then
the task calls `import_run`). A batch ends succeeded, or failed with its errors and nothing
written."""

import io
import logging
import tempfile
from functools import partial

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from config.celery import JobQueueUnavailable, enqueue
from labeling.importing.gold import gold_import
from labeling.importing.options import ImportOptions, import_options, options_stored
from labeling.importing.parsers import PARSERS
from labeling.importing.progress import Progress, batch_update
from labeling.importing.readers import ByteCounter, FileRejected
from labeling.importing.records import ParseContext
from labeling.importing.validation import MAX_ERRORS, FileCheck, NeedsFullCheck, Plan, validate
from labeling.importing.writers import Write, write_annotations, write_items
from labeling.models import ImportBatch, ImportUpload, Project
from labeling.rawsql import NulRefused
from labeling.services.queue import progress_refresh

logger = logging.getLogger(__name__)

RUN_IMPORT_TASK = "labeling.run_import"
UPLOAD_CHUNK_BYTES = 4 << 20


def _file_size(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    position = fileobj.tell()
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(position)
    return size


def _fail(batch: ImportBatch, errors: list[dict], message: str) -> ImportBatch:
    batch.status, batch.errors, batch.rows = ImportBatch.Status.FAILED, errors, 0
    batch.message, batch.finished_at = message[:255], timezone.now()
    batch_update(
        batch.pk,
        status=batch.status,
        errors=errors,
        rows=0,
        message=batch.message,
        finished_at=batch.finished_at,
    )
    return batch


def summary(*, rows: int, n_annotations: int, skipped: int) -> str:
    """A succeeded batch's message: `imported 1,000 rows`, then what else happened, each part
    after ", " (`result_details` reads them back)."""
    parts = [f"{rows:,} rows"]
    if n_annotations:
        parts.append(f"{n_annotations:,} annotations")
    if skipped:
        parts.append(f"{skipped:,} existing items skipped")
    return "imported " + ", ".join(parts)


def result_details(message: str) -> list[str]:
    """What a succeeded batch's message says besides its row count (annotations, skips)."""
    return message.split(", ")[1:]


def _write(batch: ImportBatch, options: ImportOptions, source, plan: Plan, progress) -> int:
    """The write passes, in one transaction; returns the batch's row count."""
    project = batch.project
    ctx = ParseContext.of(
        project,
        options,
        encode=True,
        # Chunks carry COPY text: for PostgreSQL, and only when no row can be an existing item.
        copy_chunks=connection.vendor == "postgresql" and not plan.existing_items,
    )
    write = Write(batch, source, ctx, plan, progress)
    writes_items = options.kind == ImportBatch.Kind.ITEMS
    with transaction.atomic():
        rows = write_items(write) if writes_items else 0
        if plan.n_annotations:
            annotations = write_annotations(write, start=0.75 if writes_items else 0.5)
            rows = rows if writes_items else annotations
            # Bulk-written annotations bypass the queue's per-item counters.
            progress_refresh(project=project)
    return rows


def _write_while_checking(
    batch: ImportBatch, options: ImportOptions, source, progress
) -> int | None:
    """Check and write in one pass where that is safe; the row count, or None (nothing
    written) when the two passes must run.

    A file of new items into a project that has none, on PostgreSQL: the check pass alone
    took as long as a third of the COPY it came before (2.7 s of Python at a million rows,
    README "Performance"); checked as they are read, the rows reach the COPY at once and the
    parsing runs beside PostgreSQL's work. At the first row with a problem, an annotation, or
    an id that is already stored (a concurrent import) the transaction is rolled back and
    the caller runs the usual check, which lists every problem: nothing is imported either
    way.
    """
    project = batch.project
    if not (
        connection.vendor == "postgresql"
        and options.kind == ImportBatch.Kind.ITEMS
        and not project.is_spans
        and not PARSERS[options.format].bundles_annotations
        and not project.items.exists()
    ):
        return None
    ctx = ParseContext.of(project, options, encode=True, copy_chunks=True)
    check = FileCheck(project, options, source, progress, ctx)
    try:
        with transaction.atomic():
            rows = write_items(Write(batch, source, ctx, Plan(), progress, check))
            if not rows:
                raise NeedsFullCheck  # the check says why an empty file is refused
    except (NeedsFullCheck, FileRejected, NulRefused, DatabaseError):
        source.rewind()  # the check reads the file from its start
        return None
    return rows


def _process(batch: ImportBatch, fileobj, *, report_progress: bool) -> ImportBatch:
    """Check then write one batch's file; the batch ends succeeded or failed."""
    options = import_options(format=batch.format, kind=batch.kind, options=batch.options)
    size = _file_size(fileobj)
    limit = settings.CONCORD_MAX_UPLOAD_BYTES
    progress = Progress(batch.pk, size, report_progress)
    if size > limit:
        return _fail(
            batch,
            [{"row": None, "reason": f"The file is {size:,} bytes; the limit is {limit:,}."}],
            "rejected: file too large",
        )
    fileobj.seek(0)
    source = ByteCounter(fileobj, limit)
    progress.report(0.0, "checking the file", force=True)
    if options.kind == ImportBatch.Kind.GOLD:
        rows, errors = gold_import(batch=batch, options=options, source=source)
        if errors:
            return _fail(batch, errors.errors, "rejected: nothing was imported")
        return _succeed(batch, rows, summary(rows=rows, n_annotations=0, skipped=0))
    rows = _write_while_checking(batch, options, source, progress)
    if rows is not None:
        return _succeed(batch, rows, summary(rows=rows, n_annotations=0, skipped=0))
    plan, errors = validate(
        project=batch.project, options=options, source=source, progress=progress
    )
    if errors:
        more = (
            f" ({errors.count:,} problems; the first {MAX_ERRORS} are listed)"
            if errors.count > MAX_ERRORS
            else ""
        )
        return _fail(batch, errors.errors, f"rejected: nothing was imported{more}")
    try:
        rows = _write(batch, options, source, plan, progress)
    except FileRejected as exc:  # the file changed between the passes
        return _fail(
            batch, [{"row": exc.row, "reason": exc.reason}], "rejected: nothing was imported"
        )
    except Exception as exc:
        # E.g. a concurrent import or deletion changed the project between the two passes.
        logger.exception("import %s failed while writing", batch.pk)
        first_line = (str(exc).splitlines() or [""])[0][:200]
        reason = (
            "Writing failed; nothing was imported "
            f"({type(exc).__name__}: {first_line}). Try the import again."
        )
        return _fail(batch, [{"row": None, "reason": reason}], "failed while writing")
    message = summary(
        rows=rows,
        n_annotations=plan.n_annotations if options.kind == ImportBatch.Kind.ITEMS else 0,
        skipped=len(plan.existing_items) if options.on_duplicate == "skip" else 0,
    )
    return _succeed(batch, rows, message)


def _succeed(batch: ImportBatch, rows: int, message: str) -> ImportBatch:
    batch.status, batch.rows, batch.errors, batch.progress = (
        ImportBatch.Status.SUCCEEDED,
        rows,
        [],
        1.0,
    )
    batch.message, batch.finished_at = message[:255], timezone.now()
    batch_update(
        batch.pk,
        status=batch.status,
        rows=rows,
        errors=[],
        progress=1.0,
        message=batch.message,
        finished_at=batch.finished_at,
    )
    return batch


def _batch_create(*, project, filename, format, kind, options, user, status) -> ImportBatch:
    parsed = import_options(format=format, kind=kind, options=options, filename=filename or "")
    return ImportBatch.objects.create(
        project=project,
        kind=parsed.kind,
        format=parsed.format,
        filename=(filename or "")[:255],
        options=options_stored(parsed),
        status=status,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def import_file(
    *,
    project: Project,
    fileobj,
    filename: str,
    format: str | None,
    kind: str | None,
    options: dict | None,
    user,
) -> ImportBatch:
    """Import a file now, in this process. Returns the batch, succeeded or failed with errors.

    Raises ValidationError only for bad options (unknown format, kind, on_duplicate...).
    """
    batch = _batch_create(
        project=project,
        filename=filename,
        format=format,
        kind=kind,
        options=options,
        user=user,
        status=ImportBatch.Status.RUNNING,
    )
    return _process(batch, fileobj, report_progress=False)


def import_submit(
    *,
    project: Project,
    fileobj,
    filename: str,
    format: str | None,
    kind: str | None,
    options: dict | None,
    user,
) -> ImportBatch:
    """Import small files at once; store larger ones in the database and queue a job.

    The bytes go to the database (not a local disk) because a worker may run on another
    machine. Raises JobQueueUnavailable when the job cannot be queued (the batch is then
    recorded as failed).
    """
    size = _file_size(fileobj)
    if size <= settings.CONCORD_IMPORT_ASYNC_BYTES or size > settings.CONCORD_MAX_UPLOAD_BYTES:
        return import_file(
            project=project,
            fileobj=fileobj,
            filename=filename,
            format=format,
            kind=kind,
            options=options,
            user=user,
        )
    batch = _batch_create(
        project=project,
        filename=filename,
        format=format,
        kind=kind,
        options=options,
        user=user,
        status=ImportBatch.Status.QUEUED,
    )
    fileobj.seek(0)
    with transaction.atomic():
        seq = 0
        while chunk := fileobj.read(UPLOAD_CHUNK_BYTES):
            ImportUpload.objects.create(batch=batch, seq=seq, data=chunk)
            seq += 1
    batch.message = "queued"
    batch_update(batch.pk, message="queued")
    transaction.on_commit(partial(_hand_to_worker, batch))
    return batch


def _hand_to_worker(batch: ImportBatch) -> None:
    try:
        enqueue(RUN_IMPORT_TASK, batch.pk)
    except JobQueueUnavailable:
        _fail(batch, [{"row": None, "reason": "The job queue is unavailable."}], "not started")
        ImportUpload.objects.filter(batch=batch).delete()
        raise


def _download(batch: ImportBatch):
    """The stored upload copied to a local temporary file, one chunk in memory at a time.

    The write pass streams COPY on the database connection, so the file cannot be read from
    that same connection while it runs.
    """
    local = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    seqs = ImportUpload.objects.filter(batch=batch).order_by("seq").values_list("seq", flat=True)
    for seq in list(seqs):
        data = ImportUpload.objects.filter(batch=batch, seq=seq).values_list("data", flat=True)
        local.write(bytes(data.get()))
    local.seek(0)
    return local


def import_run(*, batch_id: int) -> ImportBatch | None:
    """Process a queued batch from its stored upload (the Celery task calls this)."""
    batch = ImportBatch.objects.select_related("project").filter(pk=batch_id).first()
    if batch is None or batch.status in (ImportBatch.Status.SUCCEEDED, ImportBatch.Status.FAILED):
        return batch  # deleted, or a redelivered job that already finished
    batch_update(batch.pk, status=ImportBatch.Status.RUNNING, progress=0.0, message="started")
    batch.status = ImportBatch.Status.RUNNING
    try:
        with _download(batch) as upload:
            batch = _process(batch, upload, report_progress=True)
    except Exception as exc:
        logger.exception("import %s failed", batch_id)
        batch = _fail(
            batch,
            [{"row": None, "reason": f"The import job failed: {type(exc).__name__}: {exc}"[:500]}],
            "failed",
        )
    ImportUpload.objects.filter(batch_id=batch_id).delete()
    return batch

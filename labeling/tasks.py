"""Celery tasks of the labeling app: thin wrappers around services."""

from celery import shared_task

from labeling.importing.jobs import RUN_IMPORT_TASK, import_run


@shared_task(name=RUN_IMPORT_TASK, acks_late=True)
def run_import(batch_id: int) -> None:
    """Validate and write a queued import from its upload stored in the database."""
    import_run(batch_id=batch_id)

"""Celery tasks of the labeling app: thin wrappers around services."""

from celery import shared_task

from labeling.services import importing


@shared_task(name="labeling.run_import", acks_late=True)
def run_import(batch_id: int) -> None:
    """Validate and write a queued import from its upload stored in the database."""
    importing.import_run(batch_id=batch_id)

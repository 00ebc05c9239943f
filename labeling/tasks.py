"""Celery tasks of the labeling app: thin wrappers around services."""

from celery import shared_task

from config.celery import enqueue
from labeling.importing.jobs import RUN_IMPORT_TASK, import_run
from labeling.services.webhooks import DELIVER_TASK, delivery_attempt


@shared_task(name=RUN_IMPORT_TASK, acks_late=True)
def run_import(batch_id: int) -> None:
    """Validate and write a queued import from its upload stored in the database."""
    import_run(batch_id=batch_id)


@shared_task(name=DELIVER_TASK, acks_late=True)
def webhook_deliver(
    webhook_id: int, project_id: int, event: str, event_id: str, body: str, attempt: int
) -> None:
    """POST one event to one webhook; a failure that may pass is queued again after its delay
    (a new message, so the worker is free meanwhile)."""
    delay = delivery_attempt(
        webhook_id=webhook_id,
        project_id=project_id,
        event=event,
        event_id=event_id,
        body=body,
        attempt=attempt,
    )
    if delay is not None:
        enqueue(DELIVER_TASK, webhook_id, project_id, event, event_id, body, attempt + 1,
                countdown=delay)  # fmt: skip

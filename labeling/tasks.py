"""Celery tasks of the labeling app: thin wrappers around services."""

from celery import shared_task

from config.celery import enqueue
from labeling.importing.jobs import RUN_IMPORT_TASK, import_run
from labeling.services.webhooks import DELIVER_TASK, deliveries_attempt


@shared_task(name=RUN_IMPORT_TASK, acks_late=True)
def run_import(batch_id: int) -> None:
    """Validate and write a queued import from its upload stored in the database."""
    import_run(batch_id=batch_id)


@shared_task(name=DELIVER_TASK, acks_late=True)
def webhook_deliver(webhook_id: int, project_id: int, events: list, attempt: int) -> None:
    """POST events (`[event, event_id, body]` each) to one webhook, one attempt each; those
    that may pass later are queued again together after their delay (a new message, so the
    worker is free meanwhile)."""
    again, delay = deliveries_attempt(
        webhook_id=webhook_id, project_id=project_id, events=events, attempt=attempt
    )
    if again:
        enqueue(DELIVER_TASK, webhook_id, project_id, again, attempt + 1, countdown=delay)

"""When the queue's scores (and the suggestions' probabilities) are due for a refresh.

The refresh itself is analysis' model-refresh job (analysis/services/model_refresh.py); labeling
never imports analysis, so it hands analysis a Celery task by name, after the transaction
commits, and the task (defined in analysis/tasks.py) starts the run unless one is already
queued or running.

Due: every `Project.scores_refresh_every` new annotations of a project that uses a scored
queue order or shows suggestions, and when a project switches to a scored order. The count
lives in the shared cache (Redis in production): one increment per submission, no COUNT over
the project's annotations and no write to its row (every annotator would wait on that row's
lock). Changes to an existing annotation do not count. Losing the cache (a Redis restart)
only restarts the count.
"""

import logging

from django.core.cache import cache
from django.db import transaction

from config.celery import JobQueueUnavailable, enqueue
from labeling.models import Project
from labeling.services.queue import SCORED_ORDERS

# Defined by analysis/tasks.py: starts a model-refresh run of the project if none is pending.
MODEL_REFRESH_REQUEST_TASK = "analysis.request_model_refresh"

logger = logging.getLogger(__name__)


def refresh_wanted(project: Project) -> bool:
    """Whether anything reads the project's refreshed scores or probabilities."""
    return project.queue_order in SCORED_ORDERS or project.suggestions != Project.Suggestions.OFF


def _counter_key(project: Project) -> str:
    # The creation time keeps a reused id (SQLite, tests) from inheriting an old count.
    return f"annotations-since-refresh:{project.pk}:{project.created_at.timestamp():.6f}"


def annotations_until_refresh(project: Project) -> int | None:
    """New annotations still to come before the next refresh is asked for (None when nothing
    reads the project's scores). Read by the dashboard."""
    if not refresh_wanted(project):
        return None
    every = max(project.scores_refresh_every, 1)
    return every - (cache.get(_counter_key(project)) or 0) % every


def annotation_counted(*, project: Project) -> None:
    """Count one new annotation of the project once the caller's transaction commits (not
    while the submit holds the item's lock); every `scores_refresh_every`-th asks for a
    refresh."""
    if refresh_wanted(project):
        transaction.on_commit(lambda: _count(project))


def _count(project: Project) -> None:
    key = _counter_key(project)
    try:
        count = cache.incr(key)
    except ValueError:  # no count yet: this is the first
        count = 1 if cache.add(key, 1, timeout=None) else cache.incr(key)
    if count % max(project.scores_refresh_every, 1) == 0:
        model_refresh_ask(project=project)


def model_refresh_ask(*, project: Project) -> None:
    """Ask analysis for a model refresh of the project after the transaction commits (when
    anything reads the refreshed scores)."""
    if not refresh_wanted(project):
        return
    project_id = project.pk
    transaction.on_commit(lambda: _send(project_id))


def _send(project_id: int) -> None:
    try:
        enqueue(MODEL_REFRESH_REQUEST_TASK, project_id)
    except JobQueueUnavailable:
        # A submission never fails for a refresh; the next due count asks again.
        logger.warning("model refresh of project %s not requested: job queue down", project_id)

"""`GET /healthz`: is the database reachable, is the broker reachable."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from config.celery import app as celery_app


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:  # any driver error means "not reachable"
        return False, type(exc).__name__


def broker_ok() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, settings.CELERY_BROKER_URL.split(":", 1)[0]
    except Exception as exc:
        return False, type(exc).__name__


def healthz(request):
    db_ok, db_detail = _database_ok()
    mq_ok, mq_detail = broker_ok()
    body = {
        "status": "ok" if db_ok and mq_ok else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": mq_ok, "detail": mq_detail},
    }
    return JsonResponse(body, status=200 if db_ok and mq_ok else 503)

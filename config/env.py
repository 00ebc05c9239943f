"""Turn environment strings into Django and Celery settings.

Pure functions so the parsing of every supported URL form can be tested on its own.
"""

from pathlib import Path

import dj_database_url

TRUE_VALUES = {"1", "true", "yes", "on"}


def as_bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in TRUE_VALUES


def as_list(value: str | None, default: list[str]) -> list[str]:
    if not value:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def as_int_or_none(value: str | None, default: int | None) -> int | None:
    """An integer setting that `none` (or `off`) switches off."""
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() in ("none", "off"):
        return None
    return int(value)


def database_config(
    url: str | None,
    *,
    var_dir: Path,
    transaction_pooling: bool = False,
    prepare_threshold: int | None = 5,
) -> dict:
    """`DATABASE_URL` -> a Django DATABASES entry.

    Supports postgres://, postgresql://, sqlite:///relative, sqlite:////absolute and an empty
    value (the embedded SQLite file under var/).

    PostgreSQL behind a pooler in transaction mode (PgBouncer's `pool_mode = transaction`):
    `transaction_pooling` turns Django's server-side cursors off (a cursor kept open across
    transactions would be read on another server connection); `prepare_threshold` None
    turns prepared statements off (PgBouncer before 1.21, or its `max_prepared_statements`
    0: a statement prepared on one server connection is missing on the next).
    """
    if not url:
        url = f"sqlite:///{var_dir / 'concord.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=0)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL + IMMEDIATE transactions let the web process and the worker write to one file
        # without "database is locked" errors under normal load.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not memory, so a worker process started by the tests sees the same data.
        config["TEST"] = {"NAME": str(var_dir / "test_concord.sqlite3")}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        config["CONN_MAX_AGE"] = 60
        config["CONN_HEALTH_CHECKS"] = True
        # Server-side binding lets psycopg prepare statements it sees again (after
        # `prepare_threshold` runs on a connection), so PostgreSQL skips parsing and planning
        # them: the hot labeling statements cost the database a third of the CPU (measured with
        # bench/labeling_load.py). Django turns preparing off unless asked.
        config.setdefault("OPTIONS", {}).update(
            connect_timeout=5, server_side_binding=True, prepare_threshold=prepare_threshold
        )
        config["DISABLE_SERVER_SIDE_CURSORS"] = transaction_pooling
    else:
        raise ValueError(f"Unsupported DATABASE_URL scheme: {url.split(':', 1)[0]}")
    return config


def broker_config(
    url: str | None, *, var_dir: Path, visibility_timeout: int = 3600
) -> tuple[str, dict]:
    """`CELERY_BROKER_URL` -> (broker URL, broker transport options).

    redis://host:port/db and rediss:// go to Redis; an empty value or filesystem:// uses
    kombu's filesystem transport in var/broker/ (one folder shared by producer and worker).
    `visibility_timeout` (Redis): seconds after which a job taken by a worker that never
    acknowledged it (the worker was lost) goes back to the queue for another worker.
    """
    if not url or url.startswith("filesystem://"):
        folder = var_dir / "broker"
        queue = folder / "queue"
        processed = folder / "processed"
        control = folder / "control"
        for path in (queue, processed, control):
            path.mkdir(parents=True, exist_ok=True)
        return "filesystem://", {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(processed),
            "store_processed": False,
            "control_folder": str(control),
        }
    if url.startswith(("redis://", "rediss://")):
        # Fail fast when Redis is down instead of retrying forever inside a web request.
        return url, {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "visibility_timeout": visibility_timeout,
            # Every worker looks for such jobs every 10 s (kombu's default scans every 10th
            # time, 100 s), so a lost worker's job comes back soon after the timeout.
            "unacked_restore_throttle": 1,
        }
    raise ValueError(f"Unsupported CELERY_BROKER_URL scheme: {url.split(':', 1)[0]}")

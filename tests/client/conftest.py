"""A live Concord for the client's tests: `manage.py runserver` and a real Celery worker, as
subprocesses, on their own database, var folder and broker.

- Database: on PostgreSQL a fresh database named after pytest's test database + `_client`
  (dropped at the end), on SQLite a file in a temporary folder; `manage.py migrate` builds it.
- Broker: when CELERY_BROKER_URL is Redis, the next database number (its own queue, flushed
  first); otherwise kombu's filesystem broker in the temporary var folder.
- Imports above 200 kB run as jobs (CONCORD_IMPORT_ASYNC_BYTES), so small test files
  exercise the client's following of a job as well as the immediate answer.

The server and the worker hold the server's memory, so this test process's RSS (and that of
a client subprocess) is the client's alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import ROOT, wait_for

ADMIN, ADMIN_PASSWORD = "client-admin", "client-admin-password-1"
ASYNC_BYTES = 200_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _next_redis_db(url: str) -> str:
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{db + 1}"))


class LiveConcord:
    """Web server + worker subprocesses on a database of their own."""

    def __init__(self, var_dir: Path):
        from django.conf import settings

        self.var_dir = var_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        db = settings.DATABASES["default"]
        self.postgres = db["ENGINE"].endswith("postgresql")
        if self.postgres:
            test_name = (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"
            self.db_name = f"{test_name}_client"
            self.db_settings = db
            auth = db.get("USER") or "postgres"
            if db.get("PASSWORD"):
                auth += f":{db['PASSWORD']}"
            host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
            self.database_url = f"postgres://{auth}@{host}:{port}/{self.db_name}"
        else:
            self.database_url = f"sqlite:///{var_dir / 'live.sqlite3'}"
        broker = os.environ.get("CELERY_BROKER_URL") or ""
        self.broker_url = _next_redis_db(broker) if broker.startswith("redis") else "filesystem://"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CONCORD_VAR_DIR": str(var_dir),
            "SECRET_KEY": "live-concord-under-test",
            "DEBUG": "0",
            "CONCORD_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CONCORD_LOGIN_RATE": "1000/min",
            "CONCORD_IMPORT_ASYNC_BYTES": str(ASYNC_BYTES),
            "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        }
        self.processes: list[subprocess.Popen] = []

    def _admin_db(self, *statements: str) -> None:
        import psycopg

        db = self.db_settings
        with psycopg.connect(
            dbname="postgres",
            user=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or "127.0.0.1",
            port=db.get("PORT") or 5432,
            autocommit=True,
        ) as conn:
            for statement in statements:
                conn.execute(statement)

    def manage(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    def spawn(self, name: str, *args: str) -> None:
        log = open(self.var_dir / f"{name}.log", "ab")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.var_dir.glob("*.log"))
        )

    def start(self) -> None:
        if self.postgres:
            self._admin_db(
                f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)',
                f'CREATE DATABASE "{self.db_name}"',
            )
        if self.broker_url.startswith("redis"):
            import redis

            redis.Redis.from_url(self.broker_url).flushdb()
        self.manage("migrate", "--noinput")
        self.manage("createsuperuser", "--noinput", "--username", ADMIN, "--email", "a@b.test")
        self.spawn("web", "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload")
        self.spawn(
            "worker",
            "-m", "celery", "-A", "config", "worker", "--pool=prefork", "--concurrency=1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
        )  # fmt: skip
        wait_for(self.healthy, timeout=60, what="the live server", on_timeout=self.logs)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.postgres:
            self._admin_db(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    server = LiveConcord(tmp_path_factory.mktemp("live-concord"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def concord(live):
    """A client logged in as the live server's superuser (so manager of every project)."""
    from concord_client import Concord

    with Concord.login(live.url, ADMIN, ADMIN_PASSWORD, progress=False) as client:
        yield client


@pytest.fixture
def new_project(concord):
    """new_project(**options): a fresh text project (negative, positive) on the live server."""

    def make(**options):
        options.setdefault("labels", ["negative", "positive"])
        return concord.projects.create(f"client-{uuid.uuid4().hex[:8]}", **options)

    return make


@pytest.fixture(scope="session")
def concord_command() -> str:
    """The `concord` console script installed beside this Python."""
    found = shutil.which("concord", path=str(Path(sys.executable).parent))
    assert found, "the concord command is missing: make install-dev installs ./client"
    return found


def timed(fn):
    """(result, seconds) of fn()."""
    start = time.perf_counter()
    return fn(), time.perf_counter() - start

"""Shared fixtures: users, a project and its members, API clients, a real Celery worker,
Chromium for browser tests and logging in there."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from labeling.models import Membership
from tests.factories import PASSWORD, SENTIMENT_DATA, add_member, make_project

# Playwright's sync API runs an event loop in the test thread; the ORM calls made by the test
# itself are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "reference_data: checks published figures of the real crowd sets (CONCORD_REFERENCE_DATA)",
    )


def pytest_collection_modifyitems(items):
    """The tests that read the real crowd sets are marked: `pytest -m reference_data` runs them."""
    for item in items:
        if "crowd_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.reference_data)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """The tests make hundreds of accounts; PBKDF2's deliberate slowness only costs CI time.

    The live server of the browser tests runs in this process, so logins still verify.
    """
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session")
def sentiment_data() -> Path:
    """The vendored sentiment sentences (tests/data/sentiment, CC BY 4.0)."""
    return SENTIMENT_DATA


@pytest.fixture(scope="session")
def crowd_data() -> Path:
    """The real crowd answer sets (duck, dog), whose licence keeps them out of the repository.

    They are read from the folder named by CONCORD_REFERENCE_DATA (CI sets it to
    ../shared/datasets); without it the tests that need them are skipped.
    """
    folder = os.environ.get("CONCORD_REFERENCE_DATA")
    if not folder:
        pytest.skip(
            "set CONCORD_REFERENCE_DATA to the folder holding crowd/duck and crowd/dog "
            "(e.g. ../shared/datasets) to run the tests on real crowd answers"
        )
    crowd = Path(folder).resolve() / "crowd"
    assert (crowd / "duck" / "answers.csv").is_file(), f"no crowd/duck/answers.csv under {folder}"
    return crowd


def database_url_for_worker() -> str:
    """The URL of the database the tests use right now (pytest-django's test database)."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


# The session worker's own settings: webhooks to the tests' receivers on 127.0.0.1, retried
# after half a second (tests/labeling/test_webhooks.py).
WORKER_ENV = {
    "CONCORD_WEBHOOKS_ALLOW_PRIVATE": "1",
    "CONCORD_WEBHOOK_RETRY_DELAYS": "0.5,0.5,0.5",
}


class WorkerProcess:
    def __init__(
        self,
        broker_url: str,
        var_dir: Path,
        log_path: Path,
        env: dict | None = None,
        args: tuple[str, ...] = (),
    ):
        """env: settings of this worker on top of the tests' environment; args: more command
        line options (`-n` node name, `-Q` queues)."""
        self.broker_url = broker_url
        self.var_dir = var_dir
        self.log_path = log_path
        self.env = env or {}
        self.args = args
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_worker(),
            "CELERY_BROKER_URL": self.broker_url,
            "CONCORD_VAR_DIR": str(self.var_dir),
            "SECRET_KEY": "worker-under-test",
            "DEBUG": "0",
            **self.env,
        }
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                *self.args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_for(
    predicate, *, timeout: float, interval: float = 0.2, what: str = "condition", on_timeout=None
):
    """Poll `predicate` until it returns something truthy; `on_timeout()` adds context."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    context = f"\n{on_timeout()}" if on_timeout else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{context}")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery -A config worker` on the configured broker and the test database.

    Tests that use it must also use `transactional_db` so the worker sees their rows.
    """
    from django.conf import settings

    var_dir = tmp_path_factory.mktemp("worker-var")
    broker = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
    if broker.startswith("filesystem://"):
        # The worker must read the very folder this process writes to.
        var_dir = Path(settings.VAR_DIR)
    log = var_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    worker = WorkerProcess(broker, var_dir, log, env=WORKER_ENV)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str | None = None, *, password: str = PASSWORD, **extra):
        username = username or f"user-{uuid.uuid4().hex[:8]}"
        return django_user_model.objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def manager(make_user):
    """The account that creates `project`, so its manager."""
    return make_user("manager")


@pytest.fixture
def project(manager):
    """A text project with the classes negative and positive. A test module that needs other
    classes or data overrides this fixture; other options: make_project(manager, ...)."""
    return make_project(manager)


@pytest.fixture
def reviewer(project):
    return add_member(project, "reviewer", Membership.Role.REVIEWER)


@pytest.fixture
def annotator(project):
    return add_member(project, "annotator", Membership.Role.ANNOTATOR)


@pytest.fixture
def api_client_for():
    """api_client_for(user): a REST client authenticated as `user`."""

    def client_for(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for


def log_in(page, live_server, username: str, password: str = PASSWORD) -> None:
    """Log the browser page in as `username` through the login form; whoever was logged in
    on that page is logged out first."""
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

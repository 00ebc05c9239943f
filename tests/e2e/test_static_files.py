"""Static files are served compressed and cacheable for good, by `make run`'s server (DEBUG on,
runserver) and by production's (DEBUG off, gunicorn), both after `collectstatic`.

Plotly's script is 4.8 MB; uncollected it went out whole with `max-age=0` on every chart page.
"""

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import plotly
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from labeling.models import Item
from labeling.services.annotating import annotation_submit
from tests.conftest import ROOT, database_url_for_worker, wait_for
from tests.factories import PASSWORD, add_member, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLOTLY_BYTES = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").stat().st_size


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """A var folder whose static files `collectstatic` has hashed and compressed."""
    var_dir = tmp_path_factory.mktemp("static-var")
    env = {**os.environ, "DEBUG": "1", "CONCORD_STATIC_COLLECTED": "1"}
    env["CONCORD_VAR_DIR"] = str(var_dir)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT, env=env, check=True, timeout=300,
    )  # fmt: skip
    return var_dir


class Server:
    def __init__(self, command: list[str], env: dict, log: Path):
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [arg.format(port=self.port) for arg in command],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(self.answers, timeout=60, what=f"{command[0]} to answer", on_timeout=self.output)

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=2)
        except OSError:
            return False
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def server_env(var_dir: Path, **extra) -> dict:
    env = {**os.environ, "CONCORD_VAR_DIR": str(var_dir), "DATABASE_URL": database_url_for_worker()}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return {**env, **extra}


def hashed(var_dir: Path, name: str) -> str:
    manifest = json.loads((var_dir / "staticfiles" / "staticfiles.json").read_text())
    return "/static/" + manifest["paths"][name]


def get(url: str) -> tuple[dict, bytes]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, br"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(answer.headers), answer.read()


def test_make_run_serves_plotly_gzipped_once_and_then_from_the_browser_cache(
    collected, page, make_user, artifacts
):
    mia = make_user("mia")
    # The server runs Django's default hashers, not the tests' fast one.
    mia.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    mia.save(update_fields=["password"])
    project = make_project(mia, name="Reviews")
    item = Item.objects.create(project=project, external_id="r1", data={"text": "fine"})
    annotation_submit(item=item, annotator=add_member(project, "ann"), label="positive")
    log = collected / "runserver.log"
    server = Server(
        [sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"],
        server_env(collected, DEBUG="1", CONCORD_STATIC_COLLECTED="1"),
        log,
    )
    try:
        plotly_responses = []
        page.on("response", lambda r: "plotly.min" in r.url and plotly_responses.append(r))
        page.goto(f"{server.url}/accounts/login/")
        page.fill("input[name=username]", "mia")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{server.url}/projects/{project.pk}/dashboard/")
        expect(page.locator("#throughput-chart .plot-container")).to_be_visible()
        (first,) = plotly_responses
        headers = first.all_headers()
        transferred = first.request.sizes()["responseBodySize"]
        assert first.url.endswith(hashed(collected, "plotly/plotly.min.js"))
        assert headers["content-encoding"] == "gzip"
        assert headers["cache-control"] == "max-age=315360000, public, immutable"
        assert transferred < PLOTLY_BYTES * 0.35, (transferred, PLOTLY_BYTES)
        print(f"plotly.min.js: {PLOTLY_BYTES} bytes on disk, {transferred} transferred")

        # The next chart page takes Plotly from the browser's cache: no request reaches the
        # server (a page link, not a reload, which would revalidate).
        page.get_by_role("link", name="Dashboard", exact=True).click()
        expect(page.locator("#throughput-chart .plot-container")).to_be_visible()
        page.screenshot(path=str(artifacts / "static-dashboard-cached-plotly.png"))
        requests = [line for line in log.read_text().splitlines() if "GET /static/plotly" in line]
        assert len(requests) == 1, requests
    finally:
        server.stop()


def test_production_serves_hashed_gzipped_immutable_static_files(collected):
    server = Server(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py",
         "--bind", "127.0.0.1:{port}", "--workers", "1"],
        server_env(
            collected, DEBUG="0", SECRET_KEY="static-files-under-test",
            CONCORD_SSL_REDIRECT="0", ALLOWED_HOSTS="127.0.0.1",
        ),
        collected / "gunicorn.log",
    )  # fmt: skip
    try:
        _, login = get(f"{server.url}/accounts/login/")
        css = hashed(collected, "concord/concord.css")
        assert css.encode() in login  # pages link the hashed names
        headers, body = get(f"{server.url}{hashed(collected, 'plotly/plotly.min.js')}")
        assert headers["Content-Encoding"] == "gzip"
        assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
        assert len(body) < PLOTLY_BYTES * 0.35
        headers, _ = get(f"{server.url}{css}")
        assert headers["Content-Encoding"] == "gzip" and "immutable" in headers["Cache-Control"]
    finally:
        server.stop()

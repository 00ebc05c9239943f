"""The web node's gunicorn loads Django and every view once, before it forks its workers."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[2]

LOAD_THE_APPLICATION = """
import json, sys
import config.wsgi
from django.db import connections
print(json.dumps({
    "views": sorted(m for m in ("labeling.api.annotating", "analysis.views") if m in sys.modules),
    "open_connections": [c.alias for c in connections.all() if c.connection is not None],
}))
"""


def test_the_config_file_preloads_the_application_into_gthread_workers():
    config = Config()
    settings = {}
    exec((ROOT / "config" / "gunicorn.py").read_text(), settings)
    for name, value in settings.items():
        if not name.startswith("__"):
            config.set(name, value)  # an unknown name or a bad value raises here
    assert config.preload_app is True
    assert config.wsgi_app == "config.wsgi"
    assert (config.worker_class_str, config.workers, config.threads) == ("gthread", 4, 8)


def test_loading_the_application_imports_every_view_and_opens_no_connection(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONCORD_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "",
        "CELERY_BROKER_URL": "",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_THE_APPLICATION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["views"] == ["analysis.views", "labeling.api.annotating"]
    assert loaded["open_connections"] == []


def test_the_dockerfile_and_compose_start_gunicorn_with_the_config_file():
    for path in ("Dockerfile", "docker-compose.yml"):
        text = (ROOT / path).read_text()
        assert "config/gunicorn.py" in text, path
        assert "--workers" not in text, path  # one declaration: the config file

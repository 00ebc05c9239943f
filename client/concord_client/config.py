"""The login `concord login` saves: `{"url", "token"}` in a JSON file readable by you only.

The file is `$CONCORD_CONFIG` if set, else `~/.config/concord/config.json`
(`$XDG_CONFIG_HOME/concord/config.json`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def config_path() -> Path:
    given = os.environ.get("CONCORD_CONFIG")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "concord" / "config.json"


def saved_login() -> dict:
    """`{"url", "token"}` from the saved login, `{}` when there is none or it is unreadable."""
    try:
        saved = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def save_login(*, url: str, token: str) -> Path:
    """Write the login with 0600 permissions (created so, never readable by others)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "token": token}, out)
    os.chmod(path, 0o600)  # an older file may have had wider permissions
    return path

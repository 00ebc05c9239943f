"""`pip install ./client` in a fresh virtual environment: the client and its command, no Django.

pip uses the machine's configured indexes (no network needed where they are local).
"""

import json
import shutil
import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def client_copy(tmp_path):
    """client/ without build leftovers (setuptools would package a stale build/ folder)."""
    return shutil.copytree(
        ROOT / "client",
        tmp_path / "client",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done


def test_pip_install_of_the_client_pulls_no_django_and_gives_the_concord_command(tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    pip = venv / "bin" / "pip"
    run(str(pip), "install", "--quiet", "--disable-pip-version-check", str(client_copy(tmp_path)))
    installed = {
        package["name"].lower()
        for package in json.loads(run(str(pip), "list", "--format=json").stdout)
    }
    assert "concord-client" in installed and "httpx" in installed
    assert not installed & {"django", "djangorestframework", "celery", "pandas", "concord"}
    helped = run(str(venv / "bin" / "concord"), "--help")
    assert "Exit codes" in helped.stdout
    run(str(venv / "bin" / "python"), "-c", "import concord_client; concord_client.Concord")


def test_the_wheel_requires_only_httpx_and_names_its_extras(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist),
        str(client_copy(tmp_path)))  # fmt: skip
    (wheel,) = dist.glob("concord_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
        assert "concord_client/py.typed" in archive.namelist()
    requires = [
        line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")
    ]
    assert [r for r in requires if "extra ==" not in r] == ["httpx>=0.27"]
    extras = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Provides-Extra:")}
    assert extras == {"pandas", "datasets"}
    assert any(r.startswith("pyarrow") and 'extra == "pandas"' in r for r in requires)
    assert any(r.startswith("datasets") and 'extra == "datasets"' in r for r in requires)

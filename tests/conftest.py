"""Fixtures shared by the whole suite: real subprocesses, real files, a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import restore_logging  # noqa: F401 - an autouse fixture of every test here

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads /etc/dwellir-harvester or inherits plugin paths or tokens from the caller."""
    config_dir = tmp_path_factory.mktemp("etc")
    (config_dir / "config.yaml").write_text("{}\n")
    monkeypatch.setenv("HARVESTER_CONFIG", str(config_dir / "config.yaml"))
    for name in ("HARVESTER_COLLECTOR_PATHS", "DAEMON_AUTH_TOKENS", "DAEMON_AUTH_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


MACHINE_PATHS = ("/etc/dwellir-harvester", "/var/lib/dwellir-harvester")


@pytest.fixture(autouse=True, scope="session")
def _the_machine_is_left_alone() -> Iterator[None]:
    """No test writes the real machine's config or state (the suite may run as root)."""
    before = {path for path in MACHINE_PATHS if os.path.lexists(path)}
    yield
    created = [path for path in MACHINE_PATHS if os.path.lexists(path) and path not in before]
    assert not created, f"a test wrote to the real machine: {', '.join(created)}"


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<exit {self.returncode}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}>"


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Run ``dwellir-harvester`` (through ``python -m dwellir_harvester.cli``) in a subprocess."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "dwellir_harvester.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            input=stdin,
        )
        return Result(proc)

    return run


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write plugin files into a fresh directory: ``plugin_dir(name="plugins", **{"file.py": source})``."""

    def make(name: str = "plugins", **files: str) -> Path:
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        for filename, source in files.items():
            path = directory / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
            path.chmod(0o644)
        return directory

    return make


def collector_source(
    name: str, body: str = 'return {"ok": True}', *, base: str = "GenericCollector", extra: str = "", cls: str = ""
) -> str:
    """Source of a plugin module defining one collector named ``name`` (``body`` is collect()'s body)."""
    cls = cls or "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Collector"
    body = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
    return (
        "import time\n"
        f"from dwellir_harvester.lib import {base}, CollectResult, CollectorPartialError, CollectorFailedError\n"
        f"{textwrap.dedent(extra)}\n\n"
        f"class {cls}({base}):\n"
        f"    NAME = {name!r}\n"
        f"    VERSION = '1.0.0'\n\n"
        f"    def collect(self):\n"
        f"{body}\n"
    )


@pytest.fixture
def validate_document() -> Iterator[Callable[[Any], None]]:
    """Check a document against the bundled schema (every document a test produces should pass)."""
    from dwellir_harvester.lib import validate_output

    yield validate_output

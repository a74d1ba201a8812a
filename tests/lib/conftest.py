"""Fixtures for the SDK tests: plugin sources, installed-looking distributions, the harness."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import collector_source


@pytest.fixture
def source() -> Callable[..., str]:
    """``source(name, body='return {...}', base=..., extra=..., cls=...)``: a one-collector plugin module."""
    return collector_source


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Put a real ``*.dist-info`` with entry points (and its modules) on ``sys.path``.

    ``make_dist("my-dist", {"peers": "mod:Peers"}, mod=source)``; the modules are forgotten afterwards.
    """
    modules: list[str] = []

    def make(dist: str, entry_points: dict[str, str], **sources: str) -> Path:
        site = tmp_path / f"site-{dist}"
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = [f"{name} = {value}" for name, value in entry_points.items()]
        (info / "entry_points.txt").write_text("[dwellir_harvester.collectors]\n" + "\n".join(lines) + "\n")
        for module, text in sources.items():
            (site / f"{module}.py").write_text(textwrap.dedent(text))
            modules.append(module)
        monkeypatch.syspath_prepend(str(site))
        return site

    yield make
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that hung collectors wait on; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


class Proc:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr

    def __repr__(self) -> str:
        return f"<exit {self.returncode}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}>"


@pytest.fixture
def run_harness() -> Callable[..., Proc]:
    """Run ``python -m dwellir_harvester.lib.run ARGS`` in a subprocess."""

    def run(*args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 30) -> Proc:
        proc = subprocess.run(
            [sys.executable, "-m", "dwellir_harvester.lib.run", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
        return Proc(proc)

    return run

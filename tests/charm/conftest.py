"""Fixtures for the charm helper's tests: a minimal charm, real collector files, a sandbox.

The test charm's metadata is ``tests/charm/charmcraft.yaml``; its collectors are real files written
into a charm root in ``tmp_path``. Every test runs the charm through ops[testing] (Scenario). The
charm routes a sandbox's paths and fake systemd into its ``Harvester`` as the guide tells charm
authors to: a ``harvester_args`` class attribute, set by ``testing.subclass``.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import ops
import pytest
import yaml
from ops import testing

from dwellir_harvester.charm import Harvester
from dwellir_harvester.charm.testing import Sandbox, subclass
from tests.support import never_touch_the_real_machine  # noqa: F401 - an autouse fixture of every test here

HERE = Path(__file__).resolve().parent
CHARMCRAFT: dict[str, Any] = yaml.safe_load((HERE / "charmcraft.yaml").read_text())
APP = "harvested"

PEERS = '''
    """The node's peers (an option: rpc_url)."""
    from dwellir_harvester.lib import GenericCollector

    class PeersCollector(GenericCollector):
        NAME = "peers"
        VERSION = "1.2.0"
        TIMEOUT = 5.0

        def __init__(self, rpc_url: str = "http://127.0.0.1:9944"):
            self.rpc_url = rpc_url

        def collect(self):
            return {"peers": 12, "rpc_url": self.rpc_url}
'''

BLOCKS = """
    from dwellir_harvester.lib import GenericCollector

    class BlocksCollector(GenericCollector):
        NAME = "blocks"
        VERSION = "1.0.0"

        def collect(self):
            return {"height": 1234}
"""

BROKEN = """
    from dwellir_harvester.lib import GenericCollector

    class BrokenCollector(GenericCollector):
        NAME = "broken"
        VERSION = "1.0.0"

        def collect(self):
            raise RuntimeError("node unreachable")
"""

SLOW = """
    import time
    from dwellir_harvester.lib import GenericCollector

    class SlowCollector(GenericCollector):
        NAME = "slow"
        VERSION = "1.0.0"

        def collect(self):
            time.sleep(2)
            return {"late": True}
"""

HUGE = """
    from dwellir_harvester.lib import GenericCollector

    class HugeCollector(GenericCollector):
        NAME = "huge"
        VERSION = "1.0.0"

        def collect(self):
            return {"blob": "x" * (300 * 1024)}
"""

SOURCES = {"peers": PEERS, "blocks": BLOCKS, "broken": BROKEN, "slow": SLOW, "huge": HUGE}


def write_collector(directory: Path, name: str, source: str | None = None) -> Path:
    """Write a collector plugin file (mode 0644) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source if source is not None else SOURCES[name]))
    path.chmod(0o644)
    return path


def make_charm(**harvester_kwargs: Any) -> type[ops.CharmBase]:
    """A minimal charm that uses Harvester in one line (and reports its status)."""

    class HarvestedCharm(ops.CharmBase):
        # A charm author's default is {}; this test charm has none, so that a test that forgets
        # `sandboxed()` fails here instead of writing the machine's real paths (tests may run as root).
        harvester_args: ClassVar[dict[str, Any] | None] = None

        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            if self.harvester_args is None:
                raise RuntimeError("the test charm runs only through sandboxed(charm, sandbox_or_None)")
            self.harvester = Harvester(self, **harvester_kwargs, **self.harvester_args)
            framework.observe(self.on.collect_unit_status, self._on_collect_status)

        def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
            event.add_status(self.harvester.status)

    return HarvestedCharm


MODEL = testing.Model(name="prod", uuid="8ad3c5c2-3a0c-4c47-9f0a-7f4a6c1d2e3f")


def state(**kwargs: Any) -> testing.State:
    """A State in one fixed model (Scenario makes up a new model name and UUID for every State)."""
    return testing.State(model=MODEL, **kwargs)


def metadata(*, action: bool = True) -> dict[str, Any]:
    meta = copy.deepcopy(CHARMCRAFT)
    if not action:
        meta.pop("actions")
    return meta


@pytest.fixture
def charm_root(tmp_path: Path) -> Path:
    """A charm directory whose ``collectors/`` holds ``peers`` and ``blocks``."""
    root = tmp_path / "charm"
    directory = root / "collectors"
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    write_collector(directory, "peers")
    write_collector(directory, "blocks")
    return root


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """Harvester paths under ``tmp_path/root``; the harvester service installed and running."""
    return Sandbox(tmp_path / "root", services={"dwellir-harvester": "active"})


def sandboxed(charm_type: type[ops.CharmBase], box: Sandbox | None) -> type[ops.CharmBase]:
    """The charm as a test runs it: with the sandbox's Harvester arguments, or with none (``box=None``)."""
    return subclass(charm_type, harvester_args=box.harvester_args() if box is not None else {})


_FIXTURE = object()


@pytest.fixture
def context(charm_root: Path, sandbox: Sandbox) -> Iterator[Callable[..., testing.Context[ops.CharmBase]]]:
    """``context(**harvester_kwargs)``: a Scenario Context for the test charm rooted at ``charm_root``.

    The charm gets the ``sandbox`` fixture's arguments, another sandbox's (``sandbox=box``), or
    none at all (``sandbox=None``: the paths the test passes, or the real defaults).
    """
    made: list[testing.Context[ops.CharmBase]] = []
    sandbox_fixture = sandbox

    def make(
        *,
        app_name: str = APP,
        declare_action: bool = True,
        root: Path | None = None,
        sandbox: Any = _FIXTURE,
        **harvester_kwargs: Any,
    ) -> testing.Context[ops.CharmBase]:
        box = sandbox_fixture if sandbox is _FIXTURE else sandbox
        ctx = testing.Context(
            sandboxed(make_charm(**harvester_kwargs), box),
            meta=metadata(action=declare_action),
            charm_root=root or charm_root,
            app_name=app_name,
        )
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def stat_of(path: Path) -> tuple[int, int]:
    """What changes when a file is written again: its inode and its mtime."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


class Kit:
    """What the tests share besides fixtures (with --import-mode=importlib a conftest is not importable)."""

    APP = APP
    SOURCES = SOURCES
    CHARMCRAFT = CHARMCRAFT
    write_collector = staticmethod(write_collector)
    make_charm = staticmethod(make_charm)
    sandboxed = staticmethod(sandboxed)
    metadata = staticmethod(metadata)
    state = staticmethod(state)
    MODEL = MODEL
    stat_of = staticmethod(stat_of)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit

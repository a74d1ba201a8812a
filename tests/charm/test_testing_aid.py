"""dwellir_harvester.charm.testing: the sandbox, the fake systemd's rules, and the package's shape."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from charmlibs import systemd
from ops import testing

import dwellir_harvester.charm
from dwellir_harvester.charm.testing import FakeSystemd, harvester_sandbox

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "charm-authors.md"


def test_the_sandbox_redirects_default_paths_without_changing_the_charm(tmp_path, charm_root, kit):
    """The charm passes no paths at all; its files land under the sandbox's root."""
    with (
        harvester_sandbox(tmp_path / "box", charm_dir=charm_root, services={"dwellir-harvester": "active"}) as box,
        testing.Context(kit.make_charm(), meta=kit.metadata()) as ctx,  # a made-up charm root
    ):
        ctx.run(ctx.on.install(), kit.state())
        ctx.run(ctx.on.action("run-collectors", params={"collectors": "peers"}), kit.state())
    assert box.config_dir == tmp_path / "box" / "etc" / "dwellir-harvester" / "config.d"
    assert box.read_dropin(kit.APP)["collector_paths"] == [str(charm_root / "collectors")]
    assert box.read_snapshot(kit.APP)["topology"]["unit"] == "harvested/0"
    assert ctx.action_results is not None and ctx.action_results["status"] == "success"
    assert box.systemd.calls == [("service_running", "dwellir-harvester"), ("service_reload", "dwellir-harvester")]


def test_the_sandbox_reroots_paths_the_charm_chose(tmp_path, charm_root, kit):
    with (
        harvester_sandbox(tmp_path / "box") as box,
        testing.Context(
            kit.make_charm(config_dir="/srv/h/conf.d", snapshot_dir="/srv/h/charms"),
            meta=kit.metadata(),
            charm_root=charm_root,
        ) as ctx,
    ):
        ctx.run(ctx.on.install(), kit.state())
    assert (box.path("/srv/h/conf.d") / "harvested.yaml").exists()
    assert (box.root / "srv" / "h" / "charms" / "harvested.json").exists()


def test_the_sandbox_ends_with_its_block(tmp_path, charm_root, kit):
    original = systemd.service_reload
    with harvester_sandbox(tmp_path / "box"):
        assert systemd.service_reload is not original
    assert systemd.service_reload is original
    ctx = testing.Context(
        kit.make_charm(config_dir=tmp_path / "after", snapshot_dir=tmp_path / "s", service=None),
        meta=kit.metadata(),
        charm_root=charm_root,
    )
    with ctx:
        ctx.run(ctx.on.install(), kit.state())
    assert (tmp_path / "after" / "harvested.yaml").exists()


def test_fake_systemd_refuses_what_systemctl_refuses():
    fake = FakeSystemd({"dwellir-harvester": "inactive", "node": "active"})
    assert fake.service_running("absent") is False
    with pytest.raises(systemd.SystemdError, match=r"Unit absent\.service not found"):
        fake.service_reload("absent")
    with pytest.raises(systemd.SystemdError, match="is not active, cannot reload"):
        fake.service_reload("dwellir-harvester")
    with pytest.raises(systemd.SystemdError, match="not found"):
        fake.service_start("absent")
    with pytest.raises(systemd.SystemdError, match="does not exist"):
        fake.service_enable("absent")
    assert fake.service_reload("node.service") is True
    assert fake.service_reload("dwellir-harvester", restart_on_failure=True) is True
    assert fake.state("dwellir-harvester") == "active"
    fake.service_stop("node")
    assert fake.service_running("node") is False
    assert fake.calls[:3] == [
        ("service_running", "absent"),
        ("service_reload", "absent"),
        ("service_reload", "dwellir-harvester"),
    ]
    assert fake.called("service_stop") == [("node",)]
    with pytest.raises(ValueError, match="state must be one of"):
        fake.install("x", "running")


def test_fake_systemd_without_systemctl_raises_like_subprocess():
    fake = FakeSystemd({"dwellir-harvester": "active"}, systemctl=False)
    with pytest.raises(FileNotFoundError) as raised:
        fake.service_running("dwellir-harvester")
    assert raised.value.filename == "systemctl"
    assert fake.calls == [("service_running", "dwellir-harvester")]


def test_a_sandbox_without_systemctl_still_wires(tmp_path, charm_root, kit):
    with (
        harvester_sandbox(tmp_path / "box", systemctl=False) as box,
        testing.Context(kit.make_charm(), meta=kit.metadata(), charm_root=charm_root) as ctx,
    ):
        ctx.run(ctx.on.install(), kit.state())
    assert box.dropin_path(kit.APP).exists()
    assert any("systemctl is not available" in line.message for line in ctx.juju_log)


def test_the_package_maps_its_api_and_keeps_test_code_and_the_runner_out():
    assert dwellir_harvester.charm.__all__ == ["Harvester", "__version__"]
    assert "Harvester(charm, collector_dir=" in (dwellir_harvester.charm.__doc__ or "")
    probe = (
        "import sys, dwellir_harvester.charm; "
        "print(sorted(m for m in sys.modules if m.startswith('dwellir_harvester.') and not m.startswith("
        "('dwellir_harvester.charm', 'dwellir_harvester.lib'))), 'dwellir_harvester.charm.testing' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] False"


def test_the_guide_declares_the_action_exactly_as_the_tests_do(kit):
    """The charmcraft.yaml snippet in docs/charm-authors.md is the one this suite runs against."""
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), re.S)
    declared = [yaml.safe_load(block) for block in blocks if "run-collectors:" in block]
    assert declared, "the guide has no charmcraft.yaml snippet for run-collectors"
    assert declared[0]["actions"] == kit.CHARMCRAFT["actions"]
    assert declared[0]["actions"]["run-collectors"]["additionalProperties"] is False

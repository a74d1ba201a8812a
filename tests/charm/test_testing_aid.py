"""dwellir_harvester.charm.testing: the sandbox, the fake systemd's rules, and the package's shape."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from charmlibs import systemd
from ops import testing

import dwellir_harvester.charm
from dwellir_harvester.charm.testing import FakeSystemd, Sandbox, subclass

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "charm-authors.md"


def test_the_sandbox_reaches_the_harvester_through_a_class_attribute(tmp_path, charm_root, kit):
    """The charm passes no paths at all; its test subclass hands the sandbox's to its Harvester."""
    sandbox = Sandbox(tmp_path / "box", services={"dwellir-harvester": "active"})
    charm = subclass(kit.make_charm(), harvester_args=sandbox.harvester_args())
    with testing.Context(charm, meta=kit.metadata(), charm_root=charm_root) as ctx:
        ctx.run(ctx.on.install(), kit.state())
        ctx.run(ctx.on.action("run-collectors", params={"collectors": "peers"}), kit.state())
    assert sandbox.config_dir == tmp_path / "box" / "etc" / "dwellir-harvester" / "config.d"
    assert sandbox.read_dropin(kit.APP)["collector_paths"] == [str(charm_root / "collectors")]
    assert sandbox.read_snapshot(kit.APP)["topology"]["unit"] == "harvested/0"
    assert ctx.action_results is not None and ctx.action_results["status"] == "success"
    assert sandbox.systemd.calls == [
        ("service_running", "dwellir-harvester"),
        ("service_reload", "dwellir-harvester"),
    ]


def test_the_fake_systemd_is_passed_in_never_patched_into_charmlibs(tmp_path, charm_root, kit):
    """The charm's own charmlibs.systemd calls reach the real module while its Harvester uses the fake."""
    originals = {name: getattr(systemd, name) for name in systemd.__all__}
    seen = {}
    base = kit.make_charm()

    class OwnServices(base):  # type: ignore[misc,valid-type]
        def __init__(self, framework):
            super().__init__(framework)
            seen.update({name: getattr(systemd, name) for name in systemd.__all__})

    sandbox = Sandbox(tmp_path / "box", services={"dwellir-harvester": "active"})
    charm = subclass(OwnServices, harvester_args=sandbox.harvester_args())
    with testing.Context(charm, meta=kit.metadata(), charm_root=charm_root) as ctx:
        ctx.run(ctx.on.install(), kit.state())
    assert seen == originals
    assert sandbox.systemd.called("service_reload") == [("dwellir-harvester",)]
    assert not hasattr(FakeSystemd, "__enter__")


def test_two_sandboxes_in_one_test_keep_apart(tmp_path, charm_root, kit):
    """Nothing is process-wide: each charm class carries its own sandbox's arguments."""
    first = Sandbox(tmp_path / "one", services={"dwellir-harvester": "active"})
    second = Sandbox(tmp_path / "two")
    one = testing.Context(
        subclass(kit.make_charm(), harvester_args=first.harvester_args()), meta=kit.metadata(), charm_root=charm_root
    )
    two = testing.Context(
        subclass(kit.make_charm(collectors=["peers"]), harvester_args=second.harvester_args()),
        meta=kit.metadata(),
        charm_root=charm_root,
    )
    with one, two:
        two.run(two.on.install(), kit.state())
        one.run(one.on.install(), kit.state())
    assert first.read_dropin(kit.APP)["collectors"] == ["blocks", "peers"]
    assert second.read_dropin(kit.APP)["collectors"] == ["peers"]
    assert first.systemd.called("service_reload") == [("dwellir-harvester",)]
    assert second.systemd.calls == [("service_running", "dwellir-harvester")]


def test_a_relative_collector_dir_is_resolved_from_the_charm_dir_juju_gives(tmp_path, charm_root, kit, sandbox):
    ctx = testing.Context(kit.sandboxed(kit.make_charm(), sandbox), meta=kit.metadata(), charm_root=charm_root)
    with ctx, ctx(ctx.on.update_status(), kit.state()) as mgr:
        assert mgr.charm.harvester.collector_dir == charm_root / "collectors"  # type: ignore[attr-defined]
        assert mgr.charm.harvester.results_dir == sandbox.results_dir  # type: ignore[attr-defined]


CHARM_PROJECT = {
    "charmcraft.yaml": """
        name: autoloaded
        type: charm
        summary: s
        description: d
        actions:
          run-collectors:
            params: {collectors: {type: string}, validate: {type: boolean}, timeout: {type: number}}
    """,
    "src/autoloaded_charm.py": """
        from typing import Any, ClassVar

        import ops

        from dwellir_harvester.charm import Harvester


        class AutoloadedCharm(ops.CharmBase):
            harvester_args: ClassVar[dict[str, Any]] = {}

            def __init__(self, framework):
                super().__init__(framework)
                self.harvester = Harvester(self, "collectors", **self.harvester_args)
    """,
}


def test_subclass_keeps_the_charms_metadata_autoloaded(tmp_path, kit):
    """testing.Context(subclass(MyCharm, ...)) finds MyCharm's charmcraft.yaml, as Context(MyCharm) does."""
    project = tmp_path / "project"
    for name, text in CHARM_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    kit.write_collector(project / "collectors", "peers")
    (project / "collectors").chmod(0o755)
    spec = importlib.util.spec_from_file_location("autoloaded_charm", project / "src" / "autoloaded_charm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        sandbox = Sandbox(tmp_path / "box")
        charm = subclass(module.AutoloadedCharm, harvester_args=sandbox.harvester_args())
        assert charm.__name__ == "AutoloadedCharm" and charm.__module__ == "autoloaded_charm"
        with testing.Context(charm, charm_root=project, app_name="auto") as ctx:  # no meta: autoloaded
            ctx.run(ctx.on.action("run-collectors", params={"collectors": "peers"}), testing.State())
        assert ctx.action_results["status"] == "success"
        assert sandbox.read_snapshot("auto")["topology"]["charm"] == "autoloaded"
        assert module.AutoloadedCharm.harvester_args == {}  # the charm class itself is unchanged
    finally:
        sys.modules.pop(spec.name, None)


def test_subclass_refuses_an_attribute_the_charm_does_not_declare(kit):
    """A misspelt attribute would leave the charm writing the machine's real paths: refused."""
    with pytest.raises(TypeError, match="has no class attribute harvester_arg;"):
        subclass(kit.make_charm(), harvester_arg={})


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
    box = Sandbox(tmp_path / "box", systemctl=False)
    with testing.Context(kit.sandboxed(kit.make_charm(), box), meta=kit.metadata(), charm_root=charm_root) as ctx:
        ctx.run(ctx.on.install(), kit.state())
    assert box.dropin_path(kit.APP).exists()
    assert any("systemctl is not available" in line.message for line in ctx.juju_log)


def test_the_package_maps_its_api_and_keeps_test_code_and_the_runner_out():
    assert dwellir_harvester.charm.__all__ == ["Harvester", "ServiceManager", "__version__"]
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


def test_the_guide_says_packing_must_leave_the_collectors_not_group_or_world_writable():
    """Where packing is described; and what it says the template's pack script does, the script does."""
    guide = GUIDE.read_text()
    packing = guide[guide.index("## 6. Pack and deploy") : guide.index("## 7. ")]
    assert "not group- or world-writable" in packing
    assert "`chmod -R go-w src collectors`" in packing
    script = (REPO / "examples" / "minimal-charm" / "pack.sh").read_text()
    assert "chmod -R go-w src collectors" in script
    assert script.index("chmod -R go-w") < script.index('charmcraft pack "$@"')

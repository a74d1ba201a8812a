"""The drop-in: its content, the runner's view of it, idempotency, reloads, removal, neighbours."""

from __future__ import annotations

import json
import stat
import sys

import jsonschema
import ops
import pytest
import yaml
from charmlibs import systemd
from ops import testing

from dwellir_harvester.charm.testing import DropinWithdrawn, Sandbox
from dwellir_harvester.config import config_schema_path, discover, load_settings

SERVICE = "dwellir-harvester"


def validate_dropin(path):
    schema = json.loads(config_schema_path().read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_install_writes_the_dropin_and_reloads_the_running_service(context, sandbox, charm_root, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())

    path = sandbox.dropin_path(kit.APP)
    text = path.read_text()
    assert text.startswith('# Written by the Juju application "harvested" (charm "harvested")')
    assert yaml.safe_load(text) == {
        "collector_paths": [str(charm_root / "collectors")],
        "collectors": ["blocks", "peers"],
        "python": sys.executable,  # the hook's interpreter: the harvester runs the charm's collectors with it
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    validate_dropin(path)
    assert sandbox.systemd.calls == [("service_running", SERVICE), ("service_reload", SERVICE)]
    assert [p.name for p in path.parent.iterdir()] == ["harvested.yaml"]  # no temporary file left


def test_the_runner_loads_the_dropin_and_would_run_the_charms_collectors(
    context, charm_root, tmp_path, monkeypatch, run_cli, kit
):
    etc = tmp_path / "etc"
    etc.mkdir()
    main = etc / "config.yaml"
    main.write_text("collectors: [host]\n")
    options = {"peers": {"rpc_url": "http://10.0.0.7:9944"}}
    ctx = context(
        sandbox=None,
        config_dir=etc / "config.d",
        snapshot_dir=tmp_path / "var" / "charms",
        service=None,
        collector_options=options,
    )
    ctx.run(ctx.on.install(), kit.state())

    dropin = etc / "config.d" / "harvested.yaml"
    validate_dropin(dropin)
    monkeypatch.setenv("HARVESTER_CONFIG", str(main))
    settings = load_settings()
    assert settings.files == [str(main), str(dropin)]
    assert [p.path for p in settings.collector_paths] == [str(charm_root / "collectors")]
    assert settings.collectors == ["host", "blocks", "peers"]
    assert settings.collector_options == options
    found = discover(settings)
    assert found.resolve("peers").source == f"path:{charm_root / 'collectors' / 'peers.py'}"

    result = run_cli("collect")  # the real runner, reading the real drop-in
    assert result.returncode == 0, result
    document = result.json()
    assert document["harvester"]["collectors_used"] == ["host", "blocks", "peers"]
    assert document["collectors"]["peers"]["data"] == {"peers": 12, "rpc_url": "http://10.0.0.7:9944"}


def test_a_second_config_changed_writes_nothing_and_reloads_nothing(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    dropin, snapshot = sandbox.dropin_path(kit.APP), sandbox.snapshot_path(kit.APP)
    before = kit.stat_of(dropin), kit.stat_of(snapshot)
    sandbox.systemd.calls.clear()

    ctx.run(ctx.on.config_changed(), kit.state())
    ctx.run(ctx.on.config_changed(), kit.state())

    assert (kit.stat_of(dropin), kit.stat_of(snapshot)) == before
    assert sandbox.systemd.calls == []


def test_a_changed_option_rewrites_the_dropin_and_reloads(context, sandbox, kit):
    ctx = context(collector_options={"peers": {"rpc_url": "http://a:1"}})
    ctx.run(ctx.on.install(), kit.state())
    sandbox.systemd.calls.clear()

    ctx = context(collector_options={"peers": {"rpc_url": "http://b:2"}})
    ctx.run(ctx.on.config_changed(), kit.state())

    assert sandbox.read_dropin(kit.APP)["collector_options"] == {"peers": {"rpc_url": "http://b:2"}}
    assert sandbox.systemd.calls == [("service_running", SERVICE), ("service_reload", SERVICE)]


def test_configure_collector_names_and_dropin_path(context, sandbox, kit):
    ctx = context()
    with ctx(ctx.on.update_status(), kit.state()) as mgr:
        harvester = mgr.charm.harvester  # type: ignore[attr-defined]
        assert harvester.dropin_path == sandbox.dropin_path(kit.APP)
        assert harvester.collector_names == ["blocks", "peers"]
        assert not harvester.dropin_path.exists()  # update-status is not a wiring hook

        assert harvester.configure() is True
        assert sandbox.read_dropin(kit.APP)["collectors"] == ["blocks", "peers"]
        assert harvester.configure() is False  # nothing changed

        harvester.collectors = ["peers"]
        harvester.set_collector_options("peers", {"rpc_url": "http://c:3"})
        assert harvester.configure() is True
        assert harvester.collector_names == ["peers"]
        mgr.run()
    assert sandbox.read_dropin(kit.APP) == {
        "collector_paths": [str(harvester.collector_dir)],
        "collectors": ["peers"],
        "collector_options": {"peers": {"rpc_url": "http://c:3"}},
        "python": sys.executable,
    }
    assert sandbox.systemd.called("service_reload") == [(SERVICE,), (SERVICE,)]


def test_service_not_installed_is_not_an_error(context, tmp_path, kit):
    box = Sandbox(tmp_path / "bare")  # no services at all
    ctx = context(sandbox=box)
    ctx.run(ctx.on.install(), kit.state())
    assert box.read_dropin(kit.APP)["collectors"] == ["blocks", "peers"]
    assert box.systemd.calls == [("service_running", SERVICE)]
    assert any("not running" in line.message for line in ctx.juju_log)


def test_installed_but_stopped_service_is_not_reloaded(context, tmp_path, kit):
    box = Sandbox(tmp_path / "stopped", services={SERVICE: "inactive"})
    ctx = context(sandbox=box)
    ctx.run(ctx.on.install(), kit.state())
    assert box.systemd.called("service_reload") == []
    assert box.dropin_path(kit.APP).exists()


def test_systemctl_missing_is_logged_not_raised(context, tmp_path, monkeypatch, kit):
    """The real charmlibs.systemd, on a machine without systemctl (an empty PATH)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    config_dir = tmp_path / "config.d"
    ctx = context(sandbox=None, config_dir=config_dir, snapshot_dir=tmp_path / "charms")
    ctx.run(ctx.on.install(), kit.state())
    assert (config_dir / "harvested.yaml").exists()
    assert any("systemctl is not available" in line.message for line in ctx.juju_log)


class RunningButReloadFails:
    """A service manager of the charm author's own (the ServiceManager protocol): running, reload fails."""

    def __init__(self):
        self.calls = []

    def service_running(self, service_name):
        self.calls.append(("running", service_name))
        return True

    def service_reload(self, service_name, restart_on_failure=False):
        self.calls.append(("reload", service_name))
        raise systemd.SystemdError("Command ['systemctl', 'reload', 'x'] failed with returncode 1.\nstderr: boom")


def test_a_failing_reload_is_logged_not_raised(context, tmp_path, kit):
    manager = RunningButReloadFails()
    ctx = context(
        sandbox=None, config_dir=tmp_path / "config.d", snapshot_dir=tmp_path / "charms", service="x", systemd=manager
    )
    ctx.run(ctx.on.install(), kit.state())
    calls = manager.calls
    assert calls == [("running", "x"), ("reload", "x")]
    warnings = [line.message for line in ctx.juju_log if line.level == "WARNING"]
    assert any(m.startswith("cannot reload x: Command") and "\n" not in m for m in warnings)


def test_remove_takes_the_dropin_and_snapshot_away_and_reloads(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    sandbox.systemd.calls.clear()

    ctx.run(ctx.on.remove(), kit.state())

    assert not sandbox.dropin_path(kit.APP).exists()
    assert not sandbox.snapshot_path(kit.APP).exists()
    assert sandbox.systemd.calls == [("service_running", SERVICE), ("service_reload", SERVICE)]


def test_remove_without_a_dropin_reloads_nothing(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.remove(), kit.state())
    assert sandbox.systemd.calls == []


def test_two_applications_keep_their_own_dropins(context, sandbox, kit):
    alpha, beta = context(app_name="alpha"), context(app_name="beta", collectors=["peers"])
    alpha.run(alpha.on.install(), kit.state())
    beta.run(beta.on.install(), kit.state())
    assert sandbox.read_dropin("alpha")["collectors"] == ["blocks", "peers"]
    assert sandbox.read_dropin("beta")["collectors"] == ["peers"]
    assert "alpha" in sandbox.dropin_path("alpha").read_text()
    beta_before = kit.stat_of(sandbox.dropin_path("beta")), kit.stat_of(sandbox.snapshot_path("beta"))

    alpha = context(app_name="alpha", collector_options={"peers": {"rpc_url": "http://d:4"}})
    alpha.run(alpha.on.config_changed(), kit.state())
    alpha.run(alpha.on.remove(), kit.state())

    assert not sandbox.dropin_path("alpha").exists()
    assert (kit.stat_of(sandbox.dropin_path("beta")), kit.stat_of(sandbox.snapshot_path("beta"))) == beta_before
    assert sorted(p.name for p in sandbox.config_dir.iterdir()) == ["beta.yaml"]


def test_explicit_paths_need_no_sandbox(context, tmp_path, charm_root, kit):
    """Paths are constructor arguments: no root, no systemd (service=None), no runner config."""
    ctx = context(
        sandbox=None,
        collector_dir=charm_root / "collectors",
        config_dir=tmp_path / "c",
        snapshot_dir=tmp_path / "s" / "charms",
        service=None,
    )
    ctx.run(ctx.on.install(), kit.state())
    assert yaml.safe_load((tmp_path / "c" / "harvested.yaml").read_text())["collectors"] == ["blocks", "peers"]
    assert (tmp_path / "s" / "charms" / "harvested.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"collector_dir": "nowhere"}, "does not exist"),
        ({"collector_options": {"peers": {"rpc_ulr": "x"}}}, "unknown option 'rpc_ulr'"),
        ({"collectors": ["peers", "peres"]}, "unknown collector 'peres' (did you mean 'peers'?)"),
        (
            {"collector_options": {"blokcs": {}}},
            "collector_options for unknown collector 'blokcs' (did you mean 'blocks'?)",
        ),
    ],
)
def test_collectors_that_cannot_be_wired_withdraw_the_dropin_and_block(context, sandbox, kit, kwargs, problem):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    assert sandbox.dropin_path(kit.APP).exists()
    sandbox.systemd.calls.clear()

    ctx = context(**kwargs)
    state = ctx.run(ctx.on.config_changed(), kit.state())

    with pytest.raises(DropinWithdrawn) as withdrawn:  # the runner never sees a config it would refuse
        sandbox.read_dropin(kit.APP)
    assert problem in withdrawn.value.reason and problem in str(withdrawn.value)
    assert sandbox.systemd.called("service_reload") == [(SERVICE,)]
    assert isinstance(state.unit_status, ops.BlockedStatus)
    assert problem in state.unit_status.message
    assert any(problem in line.message for line in ctx.juju_log if line.level == "ERROR")


def test_status_is_active_when_wired(context, sandbox, kit):
    ctx = context()
    state = ctx.run(ctx.on.install(), kit.state())
    assert state.unit_status == testing.ActiveStatus()


def test_a_broken_plugin_file_is_skipped_with_a_warning(context, sandbox, charm_root, kit):
    kit.write_collector(charm_root / "collectors", "zbroken", "def oops(:\n")
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    assert sandbox.read_dropin(kit.APP)["collectors"] == ["blocks", "peers"]
    assert any("zbroken.py" in line.message for line in ctx.juju_log if line.level == "WARNING")


def test_collectors_as_a_string_is_a_type_error(kit, charm_root):
    with (
        testing.Context(
            kit.sandboxed(kit.make_charm(collectors="peers"), None), meta=kit.metadata(), charm_root=charm_root
        ) as ctx,
        pytest.raises(testing.errors.UncaughtCharmError) as raised,
    ):
        ctx.run(ctx.on.install(), kit.state())
    assert isinstance(raised.value.__cause__, TypeError)

"""Several principals on one machine make several units of this charm there: one runs the harvester."""

from __future__ import annotations

from ops import testing

SERVICE = "dwellir-harvester"


def two_units(machine, sub, unit, charm_root):
    first = unit.context(machine, sub, charm_root, unit_id=0)
    second = unit.context(machine, sub, charm_root, unit_id=1)
    return first, second


def test_a_second_unit_stands_by_and_touches_nothing(machine, sub, unit, charm_root):
    first, second = two_units(machine, sub, unit, charm_root)
    first.run(first.on.install(), unit.state())
    before, calls, tools = machine.files(), len(machine.systemd.calls), len(machine.tool_calls())

    for event in ("install", "start", "config_changed", "update_status", "upgrade_charm"):
        out = second.run(getattr(second.on, event)(), unit.state(config={"port": 19000, "bind-address": "0.0.0.0"}))
        assert out.unit_status == testing.ActiveStatus(
            "standing by: dwellir-harvester/0 runs the harvester on this machine"
        )
        assert out.opened_ports == frozenset()

    assert machine.files() == before
    assert machine.systemd.calls[calls:] == []
    assert machine.tool_calls()[tools:] == []
    assert machine.paths.owner_file.read_text() == "dwellir-harvester/0\n"


def test_the_standby_takes_over_once_the_owner_is_removed(machine, sub, unit, charm_root):
    first, second = two_units(machine, sub, unit, charm_root)
    owner = first.run(first.on.install(), unit.state())
    second.run(second.on.install(), unit.state())

    first.run(first.on.remove(), owner)
    assert not machine.paths.owner_file.exists()
    assert not machine.paths.main_config.exists()
    machine.systemd.calls.clear()

    out = second.run(second.on.update_status(), unit.state())

    assert machine.paths.owner_file.read_text() == "dwellir-harvester/1\n"
    assert machine.paths.main_config.exists()
    assert machine.systemd.state(SERVICE) == "active"
    assert out.unit_status == testing.ActiveStatus("serving 3 collectors on 127.0.0.1:18080")


def test_removing_the_standby_leaves_the_owners_files_and_service_alone(machine, sub, unit, charm_root):
    first, second = two_units(machine, sub, unit, charm_root)
    first.run(first.on.install(), unit.state())
    standby = second.run(second.on.install(), unit.state())
    before = machine.files()
    machine.systemd.calls.clear()

    second.run(second.on.remove(), standby)

    assert machine.files() == before
    assert machine.systemd.mutations() == []
    assert machine.systemd.state(SERVICE) == "active"


def test_an_owner_that_juju_no_longer_has_on_the_machine_is_replaced(machine, sub, unit, charm_root):
    first, second = two_units(machine, sub, unit, charm_root)
    first.run(first.on.install(), unit.state())
    agents = machine.paths.agents_dir
    (agents / "unit-dwellir-harvester-0").mkdir(parents=True)
    (agents / "unit-dwellir-harvester-1").mkdir()

    out = second.run(second.on.update_status(), unit.state())
    assert out.unit_status.message.startswith("standing by: dwellir-harvester/0")

    (agents / "unit-dwellir-harvester-0").rmdir()  # removed without its remove hook (juju remove-machine --force)
    out = second.run(second.on.update_status(), unit.state())

    assert machine.paths.owner_file.read_text() == "dwellir-harvester/1\n"
    assert out.unit_status.name == "active"
    assert out.unit_status.message.startswith("serving ")


def test_an_owner_file_that_names_no_unit_is_taken_over(machine, unit, ctx):
    machine.paths.state_dir.mkdir(parents=True)
    machine.paths.owner_file.write_text("garbage\n")

    out = ctx.run(ctx.on.install(), unit.state())

    assert machine.paths.owner_file.read_text() == "dwellir-harvester/0\n"
    assert out.unit_status.message.startswith("serving ")


def test_two_applications_of_the_charm_on_one_machine_share_it_the_same_way(machine, sub, unit, charm_root):
    first = unit.context(machine, sub, charm_root)
    other = unit.context(machine, sub, charm_root, unit_id=3, app="harvester-b")
    first.run(first.on.install(), unit.state())

    out = other.run(other.on.install(), unit.state())

    assert out.unit_status == testing.ActiveStatus(
        "standing by: dwellir-harvester/0 runs the harvester on this machine"
    )

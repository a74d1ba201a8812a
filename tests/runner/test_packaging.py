"""The systemd unit that ships with the runner."""

from __future__ import annotations

import configparser

import pytest

from dwellir_harvester.daemon import systemd_unit
from tests.conftest import REPO


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(text)
    return parser


def test_the_committed_unit_is_the_rendered_template():
    assert (REPO / "harvester" / "packaging" / "dwellir-harvester.service").read_text() == systemd_unit()


def test_unit_is_hardened_and_reloads_with_sighup():
    unit = parse(systemd_unit("/srv/venv/bin/dwellir-harvester", "harvester"))
    service = unit["Service"]
    assert service["Type"] in ("simple", "notify")
    assert service["User"] == "harvester" and service["Group"] == "harvester"
    assert service["ExecStart"] == "/srv/venv/bin/dwellir-harvester serve"
    # No pre-start `serve --check-config`: it exits 1 for a drop-in that is only left out, so one
    # principal's bad drop-in would keep the whole service from starting. The daemon itself refuses
    # a bad main config (exit 2, one line in the journal) and starts without a bad drop-in.
    assert "ExecStartPre" not in service
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # Every hardening option of the original unit, at least as strict.
    original = {
        "NoNewPrivileges": "true",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "PrivateDevices": "true",
        "ProtectKernelTunables": "true",
        "ProtectKernelModules": "true",
        "ProtectControlGroups": "true",
        "RestrictNamespaces": "true",
        "RestrictRealtime": "true",
        "MemoryDenyWriteExecute": "true",
        "LockPersonality": "true",
    }
    for key, value in original.items():
        assert service[key] == value, key
    assert service["ProtectSystem"] in ("full", "strict")
    assert service["StateDirectory"] == "dwellir-harvester"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_unit_passes_only_flags_the_daemon_accepts():
    # The original's start script passed a flag its daemon rejected, so its unit crash-looped.
    from dwellir_harvester.cli import build_parser

    service = parse(systemd_unit())["Service"]
    for key in ("ExecStart",):
        args = build_parser().parse_args(service[key].split()[1:])
        assert args.verb == "serve", key


def test_unit_for_a_charm_venv():
    unit = systemd_unit(["/usr/bin/python3", "-m", "dwellir_harvester.cli"], environment={"PYTHONPATH": "/c/venv"})
    service = parse(unit)["Service"]
    assert service["ExecStart"] == "/usr/bin/python3 -m dwellir_harvester.cli serve"
    assert service["Environment"] == "PYTHONPATH=/c/venv"


@pytest.mark.parametrize(
    ("executable", "user", "environment"),
    [
        ("relative/bin", "u", None),
        ("/a b/bin", "u", None),
        ("/bin/x", "a;b", None),
        (["/bin/x", "--x=$HOME"], "u", None),
        ("/bin/x", "u", {"PATH": "/a b"}),
        ("/bin/x", "u", {"A B": "c"}),
        ([], "u", None),
    ],
)
def test_unit_refuses_unsafe_values(executable, user, environment):
    with pytest.raises(ValueError):
        systemd_unit(executable, user, environment)


def test_a_bad_drop_in_never_keeps_the_unit_from_starting(tmp_path):
    """Whatever the unit runs before its daemon must pass with one bad drop-in beside a good config.

    It once ran ``serve --check-config``, which exits 1 when a drop-in is left out: one principal
    charm's bad drop-in kept the service of every charm on the machine from starting.
    """
    import os
    import subprocess
    import sys

    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.yaml").write_text("collectors: ['null']\noutput: ''\n")
    (tmp_path / "config.d" / "bad.yaml").write_text("collectors: [no-such-collector]\n")
    unit = systemd_unit([sys.executable, "-m", "dwellir_harvester.cli"], environment={"A": "1"})
    service = parse(unit)["Service"]
    before = [key for key in service if key in ("ExecCondition", "ExecStartPre")]
    env = {**os.environ, "HARVESTER_CONFIG": str(tmp_path / "config.yaml")}
    for key in before:
        command = service[key].lstrip("-@:+!")
        result = subprocess.run(command.split(), capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, (key, result.stderr)
    # The daemon's own check of the same config: the drop-in is a problem, not an error.
    check = subprocess.run(
        [sys.executable, "-m", "dwellir_harvester.cli", "serve", "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert check.returncode == 1 and "no-such-collector" in check.stdout
    assert check.stderr.count("left out") == check.stderr.count("\n") == 1, check.stderr  # said once

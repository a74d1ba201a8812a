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
    assert service["ExecStartPre"] == "/srv/venv/bin/dwellir-harvester serve --check-config"
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


@pytest.mark.parametrize(("executable", "user"), [("relative/bin", "u"), ("/a b/bin", "u"), ("/bin/x", "a;b")])
def test_unit_refuses_unsafe_values(executable, user):
    with pytest.raises(ValueError):
        systemd_unit(executable, user)

"""charmcraft.yaml and requirements.txt: what Juju, charmcraft and pack.sh expect of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import charm_project

CHARM_DIR = Path(__file__).resolve().parents[2]
REPO = CHARM_DIR.parents[1]
PROJECT = charm_project.CharmProject(CHARM_DIR)
CHARMCRAFT = PROJECT.charmcraft
OPTIONS = CHARMCRAFT["config"]["options"]


def test_charmcraft_yaml_is_a_unified_subordinate_machine_charm_on_noble():
    assert CHARMCRAFT["type"] == "charm"
    assert CHARMCRAFT["name"] == "dwellir-harvester"
    assert CHARMCRAFT["subordinate"] is True
    assert CHARMCRAFT["base"] == "ubuntu@24.04"
    assert list(CHARMCRAFT["platforms"]) == ["amd64"]
    assert CHARMCRAFT["requires"] == {"juju-info": {"interface": "juju-info", "scope": "container"}}
    assert "containers" not in CHARMCRAFT and "provides" not in CHARMCRAFT
    for legacy in ("metadata.yaml", "actions.yaml", "config.yaml"):
        assert not (CHARM_DIR / legacy).exists()


def test_run_collectors_takes_the_helpers_params_with_the_same_types_and_rules():
    ours, theirs = CHARMCRAFT["actions"]["run-collectors"], charm_project.guide_snippet()["actions"]["run-collectors"]
    assert ours["additionalProperties"] is False
    assert {name: (spec["type"], spec.get("default")) for name, spec in ours["params"].items()} == {
        name: (spec["type"], spec.get("default")) for name, spec in theirs["params"].items()
    }
    assert CHARMCRAFT["actions"]["show-config"] == {
        "description": CHARMCRAFT["actions"]["show-config"]["description"],
        "additionalProperties": False,
    }


def test_every_option_the_charm_reads_is_declared():
    assert PROJECT.config_keys_read() == set(OPTIONS)


@pytest.mark.parametrize(
    ("option", "kind", "default"),
    [
        ("bind-address", "string", "127.0.0.1"),
        ("port", "int", 18080),
        ("interval", "int", 300),
        ("collectors", "string", "host juju juju-charm"),
        ("exclude-collectors", "string", ""),
        ("worker-memory-mb", "int", 1024),
        ("log-level", "string", "INFO"),
        ("s3-endpoint-url", "string", ""),
        ("s3-bucket", "string", ""),
        ("s3-prefix", "string", "dwellir-harvester"),
        ("s3-region", "string", ""),
        ("s3-path-style", "boolean", True),
    ],
)
def test_options_have_a_sensible_type_default_and_description(option, kind, default):
    spec = OPTIONS[option]
    assert (spec["type"], spec["default"]) == (kind, default)
    assert len(spec["description"]) > 40


def test_the_worker_memory_default_is_the_sdks():
    from dwellir_harvester.lib.isolation import DEFAULT_MEMORY_MB

    assert OPTIONS["worker-memory-mb"]["default"] == DEFAULT_MEMORY_MB


SECRET_OPTIONS = ("auth-tokens", "s3-credentials")


def test_tokens_and_s3_credentials_come_only_through_juju_secrets():
    for name in SECRET_OPTIONS:
        assert OPTIONS[name]["type"] == "secret"
        assert "default" not in OPTIONS[name]
    for name, spec in OPTIONS.items():
        if name not in SECRET_OPTIONS:
            assert spec["type"] != "secret"
            assert not re.search(r"token|password|secret|key|credential", name), f"{name}: a plain-text credential"


def test_the_defaults_are_a_valid_config(sub):
    defaults = {name: spec["default"] for name, spec in OPTIONS.items() if "default" in spec}
    settings = sub.workload.parse_config(defaults, sub.workload.available_collectors())
    assert settings.problems == ()
    assert settings.collectors == ("host", "juju", "juju-charm")


# --- packing ---------------------------------------------------------------------------------


def test_requirements_install_this_repositorys_packages_from_the_wheels_pack_sh_builds():
    PROJECT.check_wheels()


def test_requirements_pin_everything_the_charm_needs_at_run_time():
    """charm-strict-dependencies installs with --no-deps: every dependency must be listed, pinned.

    The runner's ``s3`` extra included: the charm configures an ``s3`` sink (``s3-endpoint-url``).
    """
    PROJECT.check_pins({"dwellir-harvester": "s3"})


def test_charmcraft_reads_the_file_as_written():
    """What the charm-lint step runs: charmcraft's own reading of charmcraft.yaml."""
    expanded = PROJECT.expanded()
    assert expanded["subordinate"] is True
    assert expanded["requires"] == CHARMCRAFT["requires"]

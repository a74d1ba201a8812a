"""The example charms' declarations, checked against this repository: its guide, its packages, charmcraft.

The charms' own tests check what a copy of their folder can check; these need the repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import charm_project  # noqa: E402

TEMPLATE = REPO / "examples" / "minimal-charm"
EXAMPLE = REPO / "examples" / "example-charm"
#: The charms, and the distributions whose dependencies each needs at run time.
CHARMS = {TEMPLATE: ("dwellir-harvester-charm",), EXAMPLE: ("dwellir-harvester-charm", "dwellir-harvester")}


@pytest.fixture(params=list(CHARMS), ids=lambda path: path.name)
def project(request: pytest.FixtureRequest) -> charm_project.CharmProject:
    return charm_project.CharmProject(request.param)


def test_both_declare_the_action_exactly_as_the_guide_says(project):
    ours = project.charmcraft["actions"]
    assert ours == charm_project.CharmProject(TEMPLATE).charmcraft["actions"]
    assert ours["run-collectors"]["additionalProperties"] is False
    assert ours["run-collectors"]["params"]["exclude"]["type"] == "string"
    assert charm_project.guide_snippet()["actions"] == ours


def test_requirements_take_this_repositorys_packages_from_wheels_or_the_index(project):
    project.check_find_links()


def test_requirements_list_everything_the_charm_needs_at_run_time(project):
    project.check_pins(needs=CHARMS[project.dir])
    own = {name.split(">")[0].split("=")[0] for name in project.requirements if name.startswith("dwellir-harvester")}
    assert own >= {"dwellir-harvester-charm", "dwellir-harvester-lib"}


def test_the_template_leaves_the_runner_out_and_says_what_adding_it_gives():
    project = charm_project.CharmProject(TEMPLATE)
    assert not [line for line in project.requirements if line.startswith("dwellir-harvester>")]
    text = (TEMPLATE / "requirements.txt").read_text()
    assert "`host`" in text and "dwellir-harvester>=0.1,<0.2" in text


def test_every_option_the_charm_reads_is_declared(project):
    assert project.config_keys_read() == set(project.charmcraft.get("config", {}).get("options", {}))


def test_charmcraft_expands_the_file(project):
    """What the charm-lint step runs: charmcraft's own reading of charmcraft.yaml."""
    assert project.expanded()["name"] == project.charmcraft["name"]

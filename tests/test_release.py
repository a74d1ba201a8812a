"""The release: one version, complete metadata, self-contained sdists, Keep-a-Changelog files, the workflows."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import dwellir_harvester.charm
import dwellir_harvester.config
import dwellir_harvester.lib

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
SET_VERSION = REPO / "tools" / "set-version"
FOLDERS = ("harvester-lib", "harvester", "charm-helpers")
GITHUB = "https://github.com/dwellir-public/dwellir-harvester"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
SUBSECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
# What set-version reads and writes, relative to the repository root.
VERSIONED = (
    "VERSION",
    "harvester-lib/src/dwellir_harvester/lib/_version.py",
    "harvester/src/dwellir_harvester/config/_version.py",
    "charm-helpers/src/dwellir_harvester/charm/_version.py",
    "harvester/pyproject.toml",
    "charm-helpers/pyproject.toml",
    "harvester-lib/CHANGELOG.md",
    "harvester/CHANGELOG.md",
    "charm-helpers/CHANGELOG.md",
)


def _check_dist() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_dist", REPO / "tools" / "check_dist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _set_version(*args: str, root: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SET_VERSION), "--root", str(root), *args], capture_output=True, text=True, timeout=60
    )


PACKED = ("charms/*/requirements*.txt", "examples/*/requirements*.txt")


def _copy_versioned(tmp_path: Path) -> Path:
    packed = [str(path.relative_to(REPO)) for pattern in PACKED for path in REPO.glob(pattern)]
    for name in (*VERSIONED, *packed):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def _version() -> str:
    return (REPO / "VERSION").read_text(encoding="utf-8").strip()


def _pyproject(folder: str) -> dict:
    return tomllib.loads((REPO / folder / "pyproject.toml").read_text(encoding="utf-8"))


# --- one version -------------------------------------------------------------------------------


def test_every_copy_of_the_version_agrees_with_VERSION():
    result = _set_version("--check")
    assert result.returncode == 0, result.stderr
    version = _version()
    assert dwellir_harvester.lib.__version__ == version
    assert dwellir_harvester.config.__version__ == version
    assert dwellir_harvester.charm.__version__ == version


def test_each_package_reads_its_version_from_the_file_set_version_writes():
    for folder, module in zip(FOLDERS, ("lib", "config", "charm"), strict=True):
        project = _pyproject(folder)
        assert project["project"]["dynamic"] == ["version"]
        assert project["tool"]["hatch"]["version"]["path"] == f"src/dwellir_harvester/{module}/_version.py"


def test_set_version_rewrites_the_version_everywhere(tmp_path):
    root = _copy_versioned(tmp_path)
    result = _set_version("0.2.0", root=root)
    assert result.returncode == 0, result.stderr
    assert (root / "VERSION").read_text() == "0.2.0\n"
    for name in VERSIONED[1:4]:
        assert '__version__ = "0.2.0"' in (root / name).read_text()
    for name in VERSIONED[4:6]:
        text = (root / name).read_text()
        assert '"dwellir-harvester-lib>=0.2.0,<0.3"' in text
        assert text.count("dwellir-harvester-lib") == 1
    assert _set_version("--check", root=root).returncode == 0
    # after 0.x the major version is the breaking one; pre-releases keep their suffix
    assert _set_version("v1.0.0rc1", root=root).returncode == 0
    assert '"dwellir-harvester-lib>=1.0.0rc1,<2"' in (root / "harvester/pyproject.toml").read_text()
    assert _set_version("--check", root=root).returncode == 0


def test_set_version_renames_the_wheels_a_packed_charm_installs(tmp_path):
    root = _copy_versioned(tmp_path)
    requirements = root / "examples/my-charm/requirements.txt"
    requirements.parent.mkdir(parents=True)
    lines = [
        f"./wheels/{stem}-{_version()}-py3-none-any.whl" for stem in ("dwellir_harvester_lib", "dwellir_harvester")
    ]
    requirements.write_text("\n".join([*lines, "ops==3.9.0", "my_dwellir_harvester-1.0-py3-none-any.whl"]) + "\n")
    assert _set_version("0.3.0", root=root).returncode == 0
    assert requirements.read_text().splitlines() == [
        "./wheels/dwellir_harvester_lib-0.3.0-py3-none-any.whl",
        "./wheels/dwellir_harvester-0.3.0-py3-none-any.whl",
        "ops==3.9.0",
        "my_dwellir_harvester-1.0-py3-none-any.whl",
    ]
    requirements.write_text(requirements.read_text().replace("_lib-0.3.0", "_lib-0.2.9"))
    result = _set_version("--check", root=root)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'set-version: {requirements}: names dwellir_harvester_lib-0.2.9-py3-none-any.whl, VERSION says "0.3.0"'
    )


def test_set_version_moves_the_ranges_charm_authors_are_shown(tmp_path):
    """The template's and the example's requirements, the plugin package and the guide follow a release."""
    root = _copy_versioned(tmp_path)
    for name in ("examples/minimal-charm/requirements.txt", "docs/charm-authors.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text((REPO / name).read_text())
    assert _set_version("0.2.0", root=root).returncode == 0
    requirements = (root / "examples/minimal-charm/requirements.txt").read_text()
    assert "dwellir-harvester-charm>=0.2,<0.3" in requirements and ">=0.1," not in requirements
    guide = (root / "docs/charm-authors.md").read_text()
    assert "'dwellir-harvester-charm[testing]>=0.2,<0.3'" in guide and "<0.2" not in guide
    assert _set_version("--check", root=root).returncode == 0
    (root / "docs/charm-authors.md").write_text(guide.replace(">=0.2,<0.3", ">=0.1,<0.2", 1))
    result = _set_version("--check", root=root)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        'asks for dwellir-harvester-charm[testing]>=0.1,<0.2, VERSION says ">=0.2,<0.3"'
    )


def test_check_names_each_file_that_disagrees(tmp_path):
    root = _copy_versioned(tmp_path)
    version_file = root / VERSIONED[2]
    version_file.write_text(version_file.read_text().replace(_version(), "9.9.9"))
    pyproject = root / "charm-helpers/pyproject.toml"
    pyproject.write_text(
        re.sub(r'"dwellir-harvester-lib[^"]*"', '"dwellir-harvester-lib>=0.0.1"', pyproject.read_text())
    )
    result = _set_version("--check", root=root)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert str(version_file) in lines[0] and "9.9.9" in lines[0]
    assert str(pyproject) in lines[1] and "dwellir-harvester-lib>=0.0.1" in lines[1]


@pytest.mark.parametrize("bad", ["0.2", "0.2.0.dev1", "01.2.0", "0.2.0-rc1", "latest", ""])
def test_set_version_refuses_a_version_it_cannot_tag_and_writes_nothing(tmp_path, bad):
    root = _copy_versioned(tmp_path)
    before = {name: (root / name).read_text() for name in VERSIONED}
    result = _set_version(bad, root=root)
    assert result.returncode == 2
    assert "is not MAJOR.MINOR.PATCH" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert {name: (root / name).read_text() for name in VERSIONED} == before


def test_check_tag_wants_the_tag_of_VERSION_and_a_changelog_section_for_it(tmp_path):
    root = _copy_versioned(tmp_path)
    assert _set_version("0.2.0", root=root).returncode == 0
    result = _set_version("--check-tag", "v0.2.0", root=root)
    assert result.returncode == 1
    assert result.stderr.count('no "## [0.2.0] - YYYY-MM-DD" section') == 3
    for name in VERSIONED[6:]:
        path = root / name
        path.write_text(path.read_text().replace("## [Unreleased]\n", "## [Unreleased]\n\n## [0.2.0] - 2027-01-15\n"))
    assert _set_version("--check-tag", "v0.2.0", root=root).returncode == 0
    wrong = _set_version("--check-tag", "v0.2.1", root=root)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == """set-version: tag 'v0.2.1' does not match VERSION "0.2.0" (expected "v0.2.0")"""


# --- metadata ----------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_distribution_has_complete_metadata(folder):
    project = _pyproject(folder)["project"]
    for key in ("name", "description", "authors", "maintainers", "keywords"):
        assert project[key], key
    assert project["readme"] == "README.md"
    assert project["requires-python"] == ">=3.10"
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    classifiers = project["classifiers"]
    assert classifiers == sorted(classifiers)
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: the license expression only"
    versions = [
        c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r"Programming Language :: Python :: 3\.\d+$", c)
    ]
    assert tuple(versions) == PYTHONS
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    for prefix in ("Development Status :: ", "Intended Audience :: ", "Operating System :: ", "Topic :: "):
        assert [c for c in classifiers if c.startswith(prefix)], prefix
    assert "Typing :: Typed" in classifiers
    urls = project["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(url.startswith(GITHUB) for url in urls.values())
    assert urls["Changelog"] == f"{GITHUB}/blob/main/{folder}/CHANGELOG.md"
    documentation = urls["Documentation"].removeprefix(f"{GITHUB}/blob/main/")
    assert (REPO / documentation).is_file()
    sdist = _pyproject(folder)["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert {"README.md", "CHANGELOG.md", "LICENSE"} <= set(sdist)
    assert _pyproject(folder)["build-system"]["requires"] == ["hatchling>=1.27"]  # PEP 639 license-files


def test_every_LICENSE_is_the_same_apache_2_text():
    root = (REPO / "LICENSE").read_bytes()
    assert root.lstrip().startswith(b"Apache License\n                           Version 2.0, January 2004")
    assert b"END OF TERMS AND CONDITIONS" in root
    for folder in FOLDERS:
        assert (REPO / folder / "LICENSE").read_bytes() == root, f"{folder}/LICENSE differs from LICENSE"


@pytest.mark.parametrize("folder", FOLDERS)
def test_package_readmes_link_only_to_absolute_urls(folder):
    """PyPI renders the README without the repository around it: a relative link is a broken link there."""
    text = (REPO / folder / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)", text) + re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, re.M)
    targets += re.findall(r"""(?:src|href)=["']([^"']+)""", text)
    assert [t for t in targets if not t.startswith("https://")] == []


# --- changelogs --------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_changelog_is_keep_a_changelog(folder):
    lines = (REPO / folder / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Changelog"
    intro = "\n".join(lines[: lines.index("## [Unreleased]")])
    assert "https://keepachangelog.com/en/1.1.0/" in intro
    assert "https://semver.org/spec/v2.0.0.html" in intro
    versions = [line for line in lines if line.startswith("## ")]
    assert versions[0] == "## [Unreleased]"
    names = ["Unreleased"]
    for heading in versions[1:]:
        match = re.fullmatch(r"## \[(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)\] - \d{4}-\d{2}-\d{2}", heading)
        assert match, f"{folder}/CHANGELOG.md: {heading!r} is not '## [X.Y.Z] - YYYY-MM-DD'"
        names.append(match.group(1))
    assert f"## [{_version()}] - " in "\n".join(versions), "the current version has its section"
    sections: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("## "):
            sections = []
        elif line.startswith("### "):
            assert line[4:] in SUBSECTIONS, f"{folder}/CHANGELOG.md:{index + 1}: {line!r}"
            assert line[4:] not in sections, f"{folder}/CHANGELOG.md:{index + 1}: {line!r} twice"
            assert SUBSECTIONS.index(line[4:]) > max((SUBSECTIONS.index(s) for s in sections), default=-1)
            sections.append(line[4:])
            assert lines[index + 2].startswith("- "), f"{folder}/CHANGELOG.md:{index + 1}: an empty {line!r}"
        elif line.startswith("#") and index:
            pytest.fail(f"{folder}/CHANGELOG.md:{index + 1}: a heading that is neither a version nor a subsection")
    references = {}
    for line in lines[lines.index(versions[-1]) :]:
        if match := re.fullmatch(r"\[([^\]]+)\]: (\S+)", line):
            references[match.group(1)] = match.group(2)
    assert list(references) == names, "one link reference per version, in the same order, at the bottom"
    assert references["Unreleased"] == f"{GITHUB}/compare/v{names[1]}...HEAD"
    for previous, name in zip([*names[2:], None], names[1:], strict=True):
        base = f"{GITHUB}/compare/v{previous}...v{name}" if previous else f"{GITHUB}/releases/tag/v{name}"
        assert references[name] == base


# --- self-contained sdists ---------------------------------------------------------------------


def test_each_sdist_builds_its_wheel_alone_with_everything_in_it(tmp_path):
    """What ``python -m build`` does: the wheel from the unpacked sdist, far from the repository."""
    check_dist = _check_dist()
    version = _version()
    backend = "import sys, hatchling.build as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
    for folder in FOLDERS:
        out = tmp_path / folder
        out.mkdir()
        env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}

        def hook(name: str, where: Path, cwd: Path, out: Path = out, env: dict = env) -> Path:
            result = subprocess.run(
                [sys.executable, "-c", backend, name, str(where)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            return out / result.stdout.strip().splitlines()[-1]

        sdist = hook("build_sdist", out, REPO / folder)
        assert check_dist.sdist_problems(sdist, REPO / folder, version) == []
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp_path / "unpacked", filter="data")
        wheel = hook("build_wheel", out, tmp_path / "unpacked" / sdist.name.removesuffix(".tar.gz"))
        assert check_dist.wheel_problems(wheel, REPO / folder, version) == []
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
        typed = {name for name in names if name.endswith("/py.typed")}
        packages = {m.group(1) for name in names if (m := re.fullmatch(r"(dwellir_harvester/\w+)/__init__\.py", name))}
        assert packages
        assert {f"{package}/py.typed" for package in packages} <= typed


def test_check_dist_names_a_wheel_that_lost_a_runtime_file(tmp_path):
    check_dist = _check_dist()
    version = _version()
    name = f"dwellir_harvester-{version}-py3-none-any.whl"
    info = f"dwellir_harvester-{version}.dist-info"
    metadata = (
        f"Metadata-Version: 2.4\nName: dwellir-harvester\nVersion: {version}\nLicense-Expression: Apache-2.0\n"
        "License-File: LICENSE\nDescription-Content-Type: text/markdown\n"
    )
    with zipfile.ZipFile(tmp_path / name, "w") as archive:
        archive.writestr(f"{info}/METADATA", metadata)
    problems = check_dist.wheel_problems(tmp_path / name, REPO / "harvester", version)
    assert f"{name}: lacks dwellir_harvester/daemon/dwellir-harvester.service.in" in " ".join(problems)
    assert f"{name}: lacks dwellir_harvester/config/py.typed" in " ".join(problems)
    assert f"{name}: lacks {info}/licenses/LICENSE" in problems
    assert f"{name}: no Project-URL Changelog" in problems
    assert any("does not require dwellir-harvester-lib>=" in p for p in problems)


# --- the lint step and the workflows -----------------------------------------------------------


def test_tox_runs_the_dist_check_after_lint():
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "tox.ini")
    env_list = [name.strip() for name in config["tox"]["env_list"].split(",")]
    assert env_list.index("dist") == env_list.index("lint") + 1
    commands = config["testenv:dist"]["commands"]
    for folder in FOLDERS:
        assert f"python -m build --no-isolation --outdir {{env_tmp_dir}}/dist {folder}" in commands
    assert "python tools/check_dist.py {env_tmp_dir}/dist" in commands
    assert config["testenv:dist"]["commands_pre"].strip() == "", "the project's packages stay out of the env"


def _workflow(name: str) -> dict:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads a bare `on` as true
    return workflow


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def _uses(workflow: dict) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in _steps(job) if "uses" in step]


def test_release_workflow_checks_builds_tests_then_publishes_the_lib_first():
    workflow = _workflow("release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    jobs = workflow["jobs"]
    assert set(jobs) == {"build", "test", "publish"}
    build = "\n".join(step.get("run", "") for step in _steps(jobs["build"]))
    assert 'tools/set-version --check-tag "$GITHUB_REF_NAME"' in build
    for folder in FOLDERS:
        assert f"python -m build --outdir dist {folder}" in build
    assert "python tools/check_dist.py dist --no-venv" in build
    test = "\n".join(step.get("run", "") for step in _steps(jobs["test"]))
    assert jobs["test"]["needs"] == "build"
    assert "python -m venv" in test and "pip install dist/*.whl" in test
    assert "pytest" in test
    publish = jobs["publish"]
    assert publish["needs"] == ["build", "test"]
    assert publish["environment"]["name"] == "pypi"
    assert publish["permissions"] == {"id-token": "write"}
    assert workflow.get("permissions") == {"contents": "read"}
    uploads = [step for step in _steps(publish) if step.get("uses", "").startswith("pypa/gh-action-pypi-publish@")]
    assert [step["with"]["packages-dir"] for step in uploads] == [f"dist/{folder}/" for folder in FOLDERS]
    assert not any("password" in step.get("with", {}) for step in uploads), "trusted publishing, no token"


@pytest.mark.parametrize("name", ["release.yml", "ci.yml"])
def test_workflow_actions_are_pinned_to_a_major_version(name):
    uses = _uses(_workflow(name))
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+|release/v\d+)", ref), ref


def test_ci_workflow_runs_tox_on_pushes_and_pull_requests():
    workflow = _workflow("ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in _steps(job)]
    assert "python3 -m tox" in runs


def test_release_workflow_installs_the_deps_of_the_tox_tests_env():
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "tox.ini")

    def deps(section: str) -> list[str]:
        lines = [line.split("#")[0].strip() for line in config[section]["deps"].splitlines()]
        expanded = []
        for line in filter(None, lines):
            expanded += deps(line[2:-6]) if re.fullmatch(r"\{\[[\w:-]+\]deps\}", line) else [line]
        return expanded

    test = "\n".join(step.get("run", "") for step in _steps(_workflow("release.yml")["jobs"]["test"]))
    installs = [line for line in test.splitlines() if line.strip().startswith("pip install '")]
    assert len(installs) == 1
    assert sorted(re.findall(r"'([^']+)'", installs[0])) == sorted(deps("testenv:tests"))


def test_tox_checks_every_workflow_against_the_github_schema():
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "tox.ini")
    command = next(line for line in config["testenv:dist"]["commands"].splitlines() if "check-jsonschema" in line)
    checked = command.split()[3:]
    assert command.split()[:3] == ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"]
    assert sorted(checked) == sorted(f".github/workflows/{p.name}" for p in (REPO / ".github/workflows").iterdir())


def test_the_release_guide_is_linked_and_names_what_exists():
    assert "(docs/releasing.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    guide = (REPO / "docs" / "releasing.md").read_text(encoding="utf-8")
    for command in ("tools/set-version 0.2.0", "tools/set-version --check-tag v0.2.0", "python3 -m tox -e dist"):
        assert command in guide
    for url in re.findall(rf"\({re.escape(GITHUB)}/blob/main/([^)#]+)\)", guide):
        assert (REPO / url).exists(), url
    assert "Not run:" in guide, "the guide says what could not run here"

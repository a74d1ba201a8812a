"""The charm examples work when their folder is copied anywhere: their tests, and their pack script.

Each charm folder is copied to ``tmp_path`` (outside the repository) and its tests run there with
this suite's Python, where the repository's packages are installed distributions, from a working
directory and an import path that do not include the repository. ``pack.sh`` runs from a copy with
a stand-in for ``charmcraft`` that keeps charmcraft's rule (it packs the folder it runs in, which
must hold ``charmcraft.yaml``) and checks what ``pack.sh`` promises: no group- or world-writable
``src/`` or ``collectors/``, and the wheels ``DWELLIR_HARVESTER_WHEELS`` names in ``wheels/``.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from tests.support import outside_environment

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "examples" / "minimal-charm"
EXAMPLE = REPO / "examples" / "example-charm"
#: The wheels each charm's pack.sh needs in DWELLIR_HARVESTER_WHEELS.
WHEELS = {
    TEMPLATE: ("dwellir-harvester-lib", "dwellir-harvester-charm"),
    EXAMPLE: ("dwellir-harvester-lib", "dwellir-harvester", "dwellir-harvester-charm"),
}
NOT_COPIED = shutil.ignore_patterns("__pycache__", ".pytest_cache", "wheels", "build", "*.charm")

FAKE_CHARMCRAFT = """#!/bin/sh
# A stand-in for charmcraft: records its arguments and folder, and checks what pack.sh promises.
set -eu
[ -f charmcraft.yaml ] || { echo "charmcraft: no charmcraft.yaml in $(pwd)" >&2; exit 1; }
writable=$(find src collectors -perm /022)
[ -z "$writable" ] || { echo "charmcraft (fake): writable by others: $writable" >&2; exit 3; }
if [ -n "${DWELLIR_HARVESTER_WHEELS:-}" ]; then
    for wheel in "$DWELLIR_HARVESTER_WHEELS"/*.whl; do
        cmp -s "$wheel" "wheels/${wheel##*/}" || { echo "charmcraft (fake): not in wheels/: $wheel" >&2; exit 4; }
    done
fi
echo "$(pwd) $*" >> "$CHARMCRAFT_CALLS"
"""


def copy_out(charm_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "elsewhere" / charm_dir.name
    shutil.copytree(charm_dir, copy, ignore=NOT_COPIED)
    return copy


def rename_template(copy: Path) -> None:
    """Step 1 of the template's README: the charm and its class get names of the author's own."""
    readme = (copy / "README.md").read_text()
    assert "class `MinimalNodeCharm` in `src/charm.py` and `tests/unit/test_charm.py`" in readme
    project = copy / "charmcraft.yaml"
    text = project.read_text()
    assert "\nname: minimal-node\n" in text
    project.write_text(text.replace("\nname: minimal-node\n", "\nname: my-node\n"))
    for path in (copy / "src" / "charm.py", copy / "tests" / "unit" / "test_charm.py"):
        path.write_text(path.read_text().replace("MinimalNodeCharm", "MyNodeCharm"))


@pytest.mark.slow
@pytest.mark.parametrize("charm_dir", [TEMPLATE, EXAMPLE], ids=lambda path: path.name)
def test_the_tests_pass_in_a_copy_outside_the_repository(charm_dir, tmp_path):
    """The template's copy is renamed first, as its README says: no test hard-codes its old names."""
    copy = copy_out(charm_dir, tmp_path)
    if charm_dir == TEMPLATE:
        rename_template(copy)
    env = outside_environment()
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('tests.support') is not None)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=copy, env=env, timeout=30).returncode == 0, (
        "the repository's tests package is importable from outside it: this test would prove nothing"
    )

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s(?: \(.*\))?", summary), summary  # nothing skipped or failed


@pytest.mark.parametrize("charm_dir", [TEMPLATE, EXAMPLE], ids=lambda path: path.name)
def test_without_the_harvesters_packages_the_tests_say_what_to_install_in_one_line(charm_dir, tmp_path):
    copy = copy_out(charm_dir, tmp_path)
    hidden = tmp_path / "hidden" / "dwellir_harvester"  # a regular package hides the namespace's parts
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("")

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=copy,
        env=outside_environment(PYTHONPATH=str(hidden.parent)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ERROR: the charm's tests need dwellir-harvester-charm")
    assert 'pip install "$DWELLIR_HARVESTER_WHEELS"/*.whl' in lines[0]


def fake_wheels(directory: Path, names: tuple[str, ...]) -> list[str]:
    """Stand-ins for the wheels of ``names`` at the installed versions (pack.sh only copies them)."""
    directory.mkdir()
    files = []
    for name in names:
        wheel = f"{name.replace('-', '_')}-{importlib.metadata.version(name)}-py3-none-any.whl"
        (directory / wheel).write_bytes(b"PK\x05\x06" + name.encode())
        files.append(wheel)
    return sorted(files)


def pack(copy: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the copy's pack.sh from another folder, with the stand-in charmcraft first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "charmcraft"
    fake.write_text(FAKE_CHARMCRAFT)
    fake.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])  # not this suite's venv, which has charmcraft
    return subprocess.run(
        [str(copy / "pack.sh"), *args],
        cwd=tmp_path,
        env=outside_environment(PATH=path, CHARMCRAFT_CALLS=str(tmp_path / "calls"), **env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("charm_dir", [TEMPLATE, EXAMPLE], ids=lambda path: path.name)
def test_pack_sh_from_a_copy_copies_the_wheels_and_leaves_nothing_writable_by_others(charm_dir, tmp_path):
    copy = copy_out(charm_dir, tmp_path)
    (copy / "src" / "charm.py").chmod(0o777)
    (copy / "collectors").chmod(0o777)
    wheels = fake_wheels(tmp_path / "built", WHEELS[charm_dir])

    proc = pack(copy, tmp_path, "--verbose", DWELLIR_HARVESTER_WHEELS=str(tmp_path / "built"))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text() == f"{copy} pack --verbose\n"
    assert sorted(p.name for p in (copy / "wheels").iterdir()) == wheels
    assert (copy / "src" / "charm.py").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("charm_dir", [TEMPLATE, EXAMPLE], ids=lambda path: path.name)
def test_pack_sh_without_wheels_packs_from_the_index_and_leaves_wheels_alone(charm_dir, tmp_path):
    copy = copy_out(charm_dir, tmp_path)
    (copy / "wheels").mkdir()
    (copy / "wheels" / "mine.whl").write_text("kept")

    proc = pack(copy, tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text() == f"{copy} pack\n"
    assert [p.name for p in (copy / "wheels").iterdir()] == ["mine.whl"]


def test_pack_sh_says_what_is_missing_in_one_line(tmp_path):
    assert shutil.which("charmcraft", path="/usr/bin:/bin") is None  # else the second half proves nothing
    copy = copy_out(EXAMPLE, tmp_path)
    built = tmp_path / "built"
    fake_wheels(built, ("dwellir-harvester-lib", "dwellir-harvester-charm"))

    proc = pack(copy, tmp_path, DWELLIR_HARVESTER_WHEELS=str(built))

    assert proc.returncode == 2
    assert proc.stderr == (
        f"pack.sh: DWELLIR_HARVESTER_WHEELS={built} holds no dwellir_harvester-*.whl; "
        "build the wheels as requirements.txt shows\n"
    )
    assert not (tmp_path / "calls").exists()
    assert not (copy / "wheels").exists()

    proc = subprocess.run(  # on a PATH without charmcraft
        [str(copy / "pack.sh")],
        env=outside_environment(PATH=os.pathsep.join(["/usr/bin", "/bin"])),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (
        2,
        "pack.sh: charmcraft is not installed: sudo snap install charmcraft --classic\n",
    )


def code_lines(path: Path) -> int:
    """Lines of ``path`` that hold code: not blank, not only a comment or part of a docstring."""
    lines: set[int] = set()
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            previous = token.type
            continue  # a docstring (a string on a statement of its own)
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            lines.update(range(token.start[0], token.end[0] + 1))
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return len(lines)


def test_the_template_stays_small():
    assert code_lines(TEMPLATE / "src" / "charm.py") <= 40
    assert [p.name for p in (TEMPLATE / "collectors").glob("*.py")] == ["node_limits.py"]
    tests = (TEMPLATE / "tests" / "unit" / "test_charm.py").read_text()
    assert len(re.findall(r"^def test_", tests, re.M)) == 3

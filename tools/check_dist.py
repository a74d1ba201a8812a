"""Check the six release files before they are published (the ``dist`` lint step, and the release workflow).

Usage::

    python tools/check_dist.py DIST_DIR            # contents, twine check --strict, a fresh venv
    python tools/check_dist.py DIST_DIR --no-venv  # without the fresh venv (the workflow tests it apart)

``DIST_DIR`` holds exactly the sdist and the wheel of ``dwellir-harvester-lib``, ``dwellir-harvester``
and ``dwellir-harvester-charm`` at the version in ``VERSION``. The checks:

- each sdist carries README.md, CHANGELOG.md, LICENSE, pyproject.toml and every file of the folder
  its ``[tool.hatch.build.targets.sdist] include`` names, so it builds its wheel on its own;
- each wheel carries every file under the folder's ``src/`` (code, ``py.typed`` markers, the schemas,
  the systemd unit template: what the code reads at run time), the LICENSE under
  ``.dist-info/licenses/``, no ``dwellir_harvester/__init__.py`` (a PEP 420 namespace), and the
  metadata a release needs (version, PEP 639 license, Markdown readme, the five project URLs, the SDK
  requirement of the same release);
- ``twine check --strict`` accepts all six;
- the three wheels install together into a new venv from DIST_DIR alone (no index; their other
  dependencies come from the running environment, which must not have the project's own packages
  installed), and from there ``dwellir-harvester collect null`` succeeds with ``harvester-version``
  equal to VERSION and ``import dwellir_harvester.charm`` works.

Exit status 0 when everything holds, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
# folder -> (distribution, the import package whose __version__ it carries)
PACKAGES = {
    "harvester-lib": ("dwellir-harvester-lib", "dwellir_harvester.lib"),
    "harvester": ("dwellir-harvester", "dwellir_harvester.config"),
    "charm-helpers": ("dwellir-harvester-charm", "dwellir_harvester.charm"),
}
DEPENDENTS = ("harvester", "charm-helpers")
URL_LABELS = ("Homepage", "Documentation", "Source", "Issues", "Changelog")
SDIST_ALWAYS = ("README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "PKG-INFO")
_JUNK = ("__pycache__", ".pyc", ".pyo")


def read_version(root: Path = REPO) -> str:
    """The release version: the one line of ``VERSION``.

    Args:
        root: the repository root.

    Returns:
        The version text.
    """
    return (root / "VERSION").read_text(encoding="utf-8").strip()


def sdk_requirement(version: str) -> str:
    """The SDK requirement the runner and the charm helpers of ``version`` carry (see tools/set-version).

    Args:
        version: the release version, e.g. ``0.2.0``.

    Returns:
        The requirement, e.g. ``dwellir-harvester-lib>=0.2.0,<0.3``.
    """
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"dwellir-harvester-lib>={version},<{upper}"


def file_stem(distribution: str) -> str:
    """The distribution's name as sdist and wheel file names spell it.

    Args:
        distribution: the project name, e.g. ``dwellir-harvester-lib``.

    Returns:
        The name with ``-`` as ``_``.
    """
    return re.sub(r"[-_.]+", "_", distribution).lower()


def expected_files(version: str) -> dict[str, tuple[str, str]]:
    """The six file names of a release, each with its folder and kind (``sdist`` or ``wheel``).

    Args:
        version: the release version.

    Returns:
        ``{file name: (folder, kind)}``.
    """
    files: dict[str, tuple[str, str]] = {}
    for folder, (distribution, _) in PACKAGES.items():
        stem = file_stem(distribution)
        files[f"{stem}-{version}.tar.gz"] = (folder, "sdist")
        files[f"{stem}-{version}-py3-none-any.whl"] = (folder, "wheel")
    return files


def _tree(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not any(part in _JUNK or part.endswith(_JUNK) for part in path.parts):
            yield path


def sdist_problems(sdist: Path, folder: Path, version: str) -> list[str]:
    """What the sdist of ``folder`` lacks.

    Args:
        sdist: the ``.tar.gz``.
        folder: the package folder it was built from.
        version: the release version.

    Returns:
        One line per problem.
    """
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
        top = f"{sdist.name.removesuffix('.tar.gz')}/"
        pkg_info = archive.extractfile(top + "PKG-INFO") if top + "PKG-INFO" in names else None
        metadata = email.parser.BytesParser().parse(pkg_info) if pkg_info else None
    problems = [f"{sdist.name}: lacks {name}" for name in SDIST_ALWAYS if top + name not in names]
    include = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"][
        "targets"
    ]["sdist"]["include"]
    for entry in include:
        paths = [folder / entry] if (folder / entry).is_file() else list(_tree(folder / entry))
        problems += [
            f"{sdist.name}: lacks {path.relative_to(folder)}"
            for path in paths
            if top + path.relative_to(folder).as_posix() not in names
        ]
    if metadata is not None and metadata["Version"] != version:
        problems.append(f"{sdist.name}: PKG-INFO says version {metadata['Version']}, VERSION says {version}")
    return problems


def wheel_problems(wheel: Path, folder: Path, version: str) -> list[str]:
    """What the wheel of ``folder`` lacks or gets wrong.

    Args:
        wheel: the ``.whl``.
        folder: the package folder it was built from.
        version: the release version.

    Returns:
        One line per problem.
    """
    distribution = PACKAGES[folder.name][0]
    info = f"{file_stem(distribution)}-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = email.parser.BytesParser().parsebytes(archive.read(f"{info}/METADATA"))
    src = folder / "src"
    problems = [
        f"{wheel.name}: lacks {path.relative_to(src)} (the code reads it, or it marks the package typed)"
        for path in _tree(src)
        if path.relative_to(src).as_posix() not in names
    ]
    if f"{info}/licenses/LICENSE" not in names:
        problems.append(f"{wheel.name}: lacks {info}/licenses/LICENSE")
    if "dwellir_harvester/__init__.py" in names:
        problems.append(f"{wheel.name}: ships dwellir_harvester/__init__.py (the namespace must stay PEP 420)")
    expected = {
        "Name": distribution,
        "Version": version,
        "License-Expression": "Apache-2.0",
        "License-File": "LICENSE",
        "Description-Content-Type": "text/markdown",
    }
    for field, value in expected.items():
        if metadata[field] != value:
            problems.append(f"{wheel.name}: METADATA {field} is {metadata[field]!r}, expected {value!r}")
    if tuple(int(part) for part in str(metadata["Metadata-Version"]).split(".")) < (2, 4):
        problems.append(f"{wheel.name}: Metadata-Version {metadata['Metadata-Version']} predates PEP 639 (2.4)")
    if any(c.startswith("License ::") for c in metadata.get_all("Classifier", [])):
        problems.append(f"{wheel.name}: a License classifier beside the PEP 639 License-Expression")
    labels = [url.split(",")[0].strip() for url in metadata.get_all("Project-URL", [])]
    problems += [f"{wheel.name}: no Project-URL {label}" for label in URL_LABELS if label not in labels]
    if folder.name in DEPENDENTS:
        requirement = sdk_requirement(version)
        requires = metadata.get_all("Requires-Dist", [])
        if _specifiers(requirement) not in [_specifiers(r) for r in requires]:
            problems.append(f"{wheel.name}: does not require {requirement} (Requires-Dist: {requires})")
    return problems


def _specifiers(requirement: str) -> tuple[str, frozenset[str]]:
    """A requirement without markers as (name, set of specifiers): hatchling reorders them."""
    text = requirement.split(";", maxsplit=1)[0].replace(" ", "")
    match = re.match(r"^([A-Za-z0-9._-]+)(.*)$", text)
    name, specifiers = match.groups() if match else (text, "")
    return file_stem(name), frozenset(specifiers.split(","))


def fresh_venv_problems(dist: Path, version: str) -> list[str]:
    """Install the three wheels into a new venv from ``dist`` alone, then run them.

    Args:
        dist: the directory with the six files.
        version: the release version.

    Returns:
        One line per problem.
    """
    installed = []
    for distribution, _ in PACKAGES.values():
        try:
            installed.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    if installed:
        return [
            f"this environment has {', '.join(installed)} installed: run the check in one without them (tox -e dist)"
        ]
    with tempfile.TemporaryDirectory(prefix="check-dist.") as scratch:
        work = Path(scratch)
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # The wheels' other dependencies (ops, jsonschema, ...) come from this environment, after the
        # venv's own site-packages, so nothing is fetched and the wheels are what gets imported.
        paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
        Path(purelib, "_check_dist_dependencies.pth").write_text("\n".join(paths) + "\n", encoding="utf-8")
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        requirements = [f"{distribution}=={version}" for distribution, _ in PACKAGES.values()]
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--find-links", str(dist)]
        result = subprocess.run([*pip, *requirements], env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return [f"the wheels do not install together from {dist} alone: {result.stderr.strip()}"]
        config = work / "config.yaml"
        config.write_text("{}\n", encoding="utf-8")
        env = {**os.environ, "HARVESTER_CONFIG": str(config)}
        env.pop("HARVESTER_COLLECTOR_PATHS", None)
        return _run_from(venv, work, env, version)


def _run_from(venv: Path, work: Path, env: dict[str, str], version: str) -> list[str]:
    problems = []
    collect = subprocess.run(
        [str(venv / "bin" / "dwellir-harvester"), "collect", "null"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if collect.returncode != 0:
        problems.append(f"dwellir-harvester collect null exited {collect.returncode}: {collect.stderr.strip()}")
    else:
        document = json.loads(collect.stdout)
        if document["harvester"]["harvester-version"] != version:
            problems.append(f"harvester-version is {document['harvester']['harvester-version']}, expected {version}")
        if document["collectors"]["null"]["meta"]["status"] != "success":
            problems.append(f"the null collector did not succeed: {document['collectors']['null']['meta']}")
    probe = (
        "import importlib, importlib.metadata as m, json, sys\n"
        f"packages = {dict(PACKAGES.values())!r}\n"
        "modules = {d: importlib.import_module(p) for d, p in packages.items()}\n"
        "json.dump({d: [m.version(d), mod.__version__, mod.__file__] for d, mod in modules.items()}, sys.stdout)\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return [*problems, f"importing the packages from the venv failed: {result.stderr.strip()}"]
    for distribution, (installed, runtime, file) in json.loads(result.stdout).items():
        if installed != version or runtime != version:
            problems.append(f"{distribution}: installed {installed}, __version__ {runtime}, expected {version}")
        if not Path(file).resolve().is_relative_to(venv.resolve()):
            problems.append(f"{distribution}: imported from {file}, not from the new venv")
    return problems


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring).

    Args:
        argv: the arguments, default ``sys.argv[1:]``.

    Returns:
        0 when every check passes, 1 otherwise.
    """
    parser = argparse.ArgumentParser(prog="tools/check_dist.py", description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the directory with the three sdists and three wheels")
    parser.add_argument("--no-venv", action="store_true", help="skip installing the wheels into a new venv")
    args = parser.parse_args(argv)
    dist: Path = args.dist
    version = read_version()
    expected = expected_files(version)
    present = {path.name for path in dist.iterdir()} if dist.is_dir() else set()
    problems = [f"{dist}: lacks {name}" for name in sorted(set(expected) - present)]
    problems += [f"{dist}: unexpected {name} (VERSION is {version})" for name in sorted(present - set(expected))]
    for name in sorted(set(expected) & present):
        folder, kind = expected[name]
        check = sdist_problems if kind == "sdist" else wheel_problems
        problems += check(dist / name, REPO / folder, version)
    if not problems:
        twine = subprocess.run(
            [sys.executable, "-m", "twine", "check", "--strict", *(str(dist / name) for name in sorted(expected))],
            capture_output=True,
            text=True,
            check=False,
        )
        if twine.returncode != 0:
            problems.append(f"twine check --strict failed:\n{twine.stdout}{twine.stderr}")
    if not problems and not args.no_venv:
        problems += fresh_venv_problems(dist, version)
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: the six files of {version} are ready to publish")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""What a charm contributes to the harvester: its collectors, checked, and the drop-in that says so.

The drop-in is in the runner's config format (``config.d/<app>.yaml``)::

    # Written by the Juju application "my-app" (charm "my-charm") through dwellir-harvester-charm.
    # ...
    collector_paths:
    - /var/lib/juju/agents/unit-my-app-0/charm/collectors
    collectors:
    - peers
    collector_options:
      peers:
        rpc_url: http://127.0.0.1:9944

The harvester does not run a drop-in that names a collector or an option it does not know, so
what can be checked from the hook is checked before the drop-in is written; a drop-in that would
be refused is withdrawn instead and the problem reported (``Harvester.problem``, a blocked status).

What the hook can check: the charm's collector dir, the options of every collector the hook can
discover, and the names of the charm's own collectors. It cannot see every collector the harvester
has (its built-ins and packages are installed where the daemon runs, not necessarily in the
charm's environment), so a name the charm lists that the hook does not discover is a warning, and
the harvester itself reports it if it does not know it either; it is an error only when it is a
near miss of one of the charm's own collectors (``peres`` for ``peers``) and every plugin file in
the charm's dir imported (else the name may be that broken plugin's).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from dwellir_harvester.lib import CollectorError, PluginPathError, Registry, load_collectors
from dwellir_harvester.lib.redact import redact_values

logger = logging.getLogger(__name__)

#: How close (difflib's ratio) a name must be to one of the charm's own collectors to be taken for a typo.
NEAR_MISS = 0.75
#: The runner's built-in that the document's top-level ``host`` repeats.
HOST = "host"
#: The collector that reports the charms' Juju context (the snapshots); the action runs a live one.
JUJU_CHARM = "juju-charm"


class Wiring(NamedTuple):
    """The outcome of discovering a charm's collectors.

    ``names`` are the collectors the charm contributes (its ``collectors``, or every collector
    found in its dir, less ``exclude``); ``registry`` is what discovery found (None when the dir
    is unusable); ``error`` is why no drop-in can be written; ``warnings`` are problems that do
    not stop it (a plugin file that does not import, a name that cannot be checked from here);
    ``exclude`` are the excluded names the drop-in passes on to the harvester (not the charm's own
    collectors, which are only left out of ``names``, and not ``juju-charm``, which the charm
    leaves out by writing no snapshot).
    """

    directory: Path
    names: tuple[str, ...]
    registry: Registry | None
    error: str | None
    warnings: tuple[str, ...]
    exclude: tuple[str, ...] = ()


def own_names(registry: Registry, directory: Path) -> list[str]:
    """Return the collectors discovered from files under ``directory`` (the charm's own), in discovery order.

    A collector's ``source`` says where discovery found it (``path:<file>``), whether it was
    imported here or in a worker.
    """
    return list(dict.fromkeys(spec.name for spec in registry.discovered if _found_under(spec.source, directory)))


def _found_under(source: str, directory: Path) -> bool:
    if not source.startswith("path:"):  # a built-in, an entry point, a class made at run time
        return False
    return Path(source.removeprefix("path:")).resolve().is_relative_to(directory.resolve())


def near_miss(name: str, registry: Registry, directory: Path) -> str | None:
    """Return the charm's own collector that ``name`` is a near miss of, when the charm's dir loaded cleanly.

    None when some plugin file in the dir failed to import (``name`` may be that plugin's), or when
    ``name`` is not close to any of the charm's own collectors.
    """
    if registry.problems:
        return None
    matches = difflib.get_close_matches(name, own_names(registry, directory), n=1, cutoff=NEAR_MISS)
    return matches[0] if matches else None


def discover(
    directory: Path,
    collectors: Sequence[str] | None,
    collector_options: Mapping[str, Mapping[str, Any]],
    exclude: Sequence[str] = (),
) -> Wiring:
    """Discover the collectors in ``directory`` and check the names and options a drop-in would hold."""
    try:
        registry = load_collectors([directory], env=False)
    except PluginPathError as err:
        names = tuple(name for name in collectors or () if name not in exclude)
        return Wiring(directory, names, None, f"collector dir {directory} {err.reason}", ())
    return check(registry, directory, collectors, collector_options, exclude)


def check(
    registry: Registry,
    directory: Path,
    collectors: Sequence[str] | None,
    collector_options: Mapping[str, Mapping[str, Any]],
    exclude: Sequence[str] = (),
) -> Wiring:
    """Check the names and options a drop-in would hold against what the hook discovered (the rule above)."""
    warnings = [f"plugin {p.where} was skipped: {p.message}" for p in registry.problems]
    own = own_names(registry, directory)
    names = list(dict.fromkeys(collectors)) if collectors is not None else own
    names = [name for name in names if name not in exclude]
    errors: list[str] = []
    for name in dict.fromkeys(exclude):
        if name in (HOST, JUJU_CHARM) or name in registry:
            continue
        meant = near_miss(name, registry, directory)
        if meant is not None:
            errors.append(f"exclude: unknown collector {name!r} (did you mean {meant!r}?)")
        else:
            warnings.append(f"excluded {name!r} is not discoverable from the charm; the harvester must know it")
    passed_on = tuple(name for name in dict.fromkeys(exclude) if name != JUJU_CHARM and name not in own)
    for name in names:
        if name not in registry:
            meant = near_miss(name, registry, directory)
            if meant is not None:
                errors.append(f"unknown collector {name!r} (did you mean {meant!r}?)")
            else:
                warnings.append(f"collector {name!r} is not discoverable from the charm; the harvester must provide it")
    for name, given in collector_options.items():
        options: object = given  # the charm may pass anything at run time
        if not isinstance(options, Mapping):
            errors.append(f"collector_options[{name!r}] must be a mapping, not {type(options).__name__}")
            continue
        try:
            yaml.safe_dump(dict(options))
        except yaml.YAMLError as err:  # its message quotes the value, which may be a secret: name its type
            culprit = type(err.args[1]).__name__ if len(err.args) > 1 else "value"
            errors.append(f"collector_options[{name!r}] holds a value YAML cannot represent (a {culprit})")
            continue
        if name not in registry:
            meant = near_miss(name, registry, directory)
            if meant is not None:
                errors.append(f"collector_options for unknown collector {name!r} (did you mean {meant!r}?)")
            continue
        try:
            registry.resolve(name).check_options(options)
        except CollectorError as err:
            errors.append(str(err))
    error = "; ".join(errors) or None
    return Wiring(directory, tuple(names), registry, error, tuple(warnings), passed_on)


def holds_secret(collector_options: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether any option is sensitive: by its name, or as a value with URL credentials or key material.

    The same rule as ``dwellir_harvester.lib.redact.redact_values``: a collector's options hold a
    secret exactly when redacting them would change them (the collector's own name does not count).
    """
    for options in collector_options.values():
        plain = dict(options)
        if redact_values(plain) != plain:
            return True
    return False


def render_dropin(
    app: str,
    charm: str,
    wiring: Wiring,
    collector_options: Mapping[str, Mapping[str, Any]],
    python: str | None = None,
    python_path: Sequence[str] = (),
) -> bytes:
    """The drop-in's text: a header naming the application, then the runner's config keys.

    ``python`` and ``python_path`` (the hook's interpreter and the charm's own import directories)
    make the harvester discover and run the charm's collectors in a worker started that way, where
    the charm's dependencies can be imported.
    """
    data: dict[str, Any] = {"collector_paths": [str(wiring.directory)], "collectors": list(wiring.names)}
    if wiring.exclude:
        data["exclude"] = list(wiring.exclude)
    if python:
        data["python"] = python
        if python_path:
            data["python_path"] = list(python_path)
    if collector_options:
        data["collector_options"] = {name: dict(options) for name, options in collector_options.items()}
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (_header(app, charm) + body).encode("utf-8")


def render_withdrawn(app: str, charm: str, reason: str) -> bytes:
    """The drop-in's text when the charm's collectors cannot be wired in: only why (``withdrawn``).

    The harvester leaves such a drop-in out and reports its reason in ``harvester.problems``, so an
    operator sees on the machine why the charm's collectors are missing. ``reason`` must already
    be one redacted line.
    """
    body = yaml.safe_dump({"withdrawn": reason}, default_flow_style=False, allow_unicode=True, width=1 << 16)
    return (_header(app, charm) + body).encode("utf-8")


def _header(app: str, charm: str) -> str:
    return (
        f'# Written by the Juju application "{app}" (charm "{charm}") through dwellir-harvester-charm.\n'
        "# The charm rewrites this file when it re-wires its collectors and removes it with the unit:\n"
        "# change the charm, not this file. Other charms on this machine have files of their own.\n"
    )

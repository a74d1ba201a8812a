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

The runner refuses a whole config when one drop-in names a collector or an option that does not
exist, which would stop the harvester for every charm on the machine. So a drop-in is only written
when everything in it could be checked here or cannot be checked from the hook at all (a built-in
of a runner that is not installed in the charm's environment); otherwise the charm's drop-in is
withdrawn and the problem is reported.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from dwellir_harvester.lib import CollectorError, Collectors, PluginPathError, load_collectors

logger = logging.getLogger(__name__)


class Wiring(NamedTuple):
    """The outcome of discovering a charm's collectors.

    ``names`` are the collectors the charm contributes (its ``collectors``, or every collector
    found in its dir); ``registry`` is what discovery found (None when the dir is unusable);
    ``error`` is why no drop-in can be written; ``warnings`` are problems that do not stop it
    (a plugin file that does not import, a name that cannot be checked from here).
    """

    directory: Path
    names: tuple[str, ...]
    registry: Collectors | None
    error: str | None
    warnings: tuple[str, ...]


def own_names(registry: Collectors, directory: Path) -> list[str]:
    """Return the collectors defined in files under ``directory`` (the charm's own), in discovery order."""
    return list(dict.fromkeys(spec.name for spec in registry.discovered if _defined_under(spec.cls, directory)))


def _defined_under(cls: type, directory: Path) -> bool:
    try:
        source = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):  # a class without a file (built in, or made at run time)
        return False
    return source.is_relative_to(directory.resolve())


def runner_visible(registry: Collectors) -> bool:
    """Whether the runner's built-ins were discoverable from this process."""
    return any(spec.namespace == "builtin" for spec in registry.discovered)


def discover(
    directory: Path,
    collectors: Sequence[str] | None,
    collector_options: Mapping[str, Mapping[str, Any]],
) -> Wiring:
    """Discover the collectors in ``directory`` and check the names and options a drop-in would hold."""
    try:
        registry = load_collectors([directory], env=False)
    except PluginPathError as err:
        return Wiring(directory, tuple(collectors or ()), None, f"collector dir {directory} {err.reason}", ())
    warnings = [f"plugin {p.where} was skipped: {p.message}" for p in registry.problems]
    names = list(dict.fromkeys(collectors)) if collectors is not None else own_names(registry, directory)
    # A name is verifiably unknown only when the runner's built-ins are visible and no plugin of the
    # charm failed to import (the name could be that plugin's).
    checkable = runner_visible(registry) and not registry.problems
    errors: list[str] = []
    for name in names:
        if name not in registry:
            if checkable:
                errors.append(f"unknown collector {name!r} (available: {', '.join(registry.available())})")
            else:
                warnings.append(f"collector {name!r} is not discoverable from the charm; the harvester must provide it")
    for name, given in collector_options.items():
        options: object = given  # the charm may pass anything at run time
        if not isinstance(options, Mapping):
            errors.append(f"collector_options[{name!r}] must be a mapping, not {type(options).__name__}")
            continue
        try:
            yaml.safe_dump(dict(options))
        except yaml.YAMLError as err:
            errors.append(f"collector_options[{name!r}] holds a value YAML cannot represent: {err}")
            continue
        if name not in registry:
            if checkable:
                errors.append(f"collector_options for unknown collector {name!r}")
            continue
        try:
            registry.resolve(name).check_options(options)
        except CollectorError as err:
            errors.append(str(err))
    error = "; ".join(errors) or None
    return Wiring(directory, tuple(names), registry, error, tuple(warnings))


def render_dropin(
    app: str,
    charm: str,
    wiring: Wiring,
    collector_options: Mapping[str, Mapping[str, Any]],
) -> bytes:
    """The drop-in's text: a header naming the application, then the runner's config keys."""
    data: dict[str, Any] = {"collector_paths": [str(wiring.directory)], "collectors": list(wiring.names)}
    if collector_options:
        data["collector_options"] = {name: dict(options) for name, options in collector_options.items()}
    header = (
        f'# Written by the Juju application "{app}" (charm "{charm}") through dwellir-harvester-charm.\n'
        "# The charm rewrites this file on install, upgrade-charm and config-changed and removes it with\n"
        "# the unit: change the charm, not this file. Other charms on this machine have files of their own.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (header + body).encode("utf-8")

"""``juju``: the Juju agents on this machine, read from their ``agent.conf`` files.

Option: ``agents_dir`` (default ``/var/lib/juju/agents``), holding one directory per agent
(``machine-0``, ``unit-polkadot-0``, ``controller-0``), each with an ``agent.conf`` (YAML, the
format of Juju 2.9 and 3.x).

Data::

    {"controller": "<controller uuid>", "model": "<model uuid>",
     "machine": {"tag": "machine-0", "id": "0", "version": "3.5.4"},
     "juju_version": "3.5.4",
     "deployed_units": ["grafana-agent/0", "polkadot/0"],
     "agents": [{"tag": "machine-0", "kind": "machine", "name": "0", "version": "3.5.4",
                 "controller": "…", "model": "…", "api_addresses": ["10.0.0.2:17070"],
                 "values": {"AGENT_SERVICE_NAME": "jujud-machine-0", …}, "jobs": ["JobHostUnits"]},
                {"tag": "unit-polkadot-0", "kind": "unit", "name": "polkadot/0", …}]}

``deployed_units`` joins the machine agent's ``deployed-units`` and the unit agents found. With no
agents (the directory is missing or empty) the collector succeeds with an empty ``agents`` list and
a ``note`` saying so. An ``agent.conf`` that cannot be read or parsed makes the entry ``partial``
with a message naming the file; the other agents are kept.

Secrets never leave this module: every key whose name contains one of the SDK's
``SECRET_WORDS`` (``pass``, ``secret``, ``token``, ``key``, ``auth``, ``seed``, …) or ``cert``,
``identity``, ``nonce`` is dropped at any depth, and so is every value that looks like key material
(a PEM block, a long hex key), before anything is picked from the file; URLs lose their credentials.
Parse errors are reported by line and column, never with the file's text.

A hostile ``agent.conf`` fails only itself (the entry is ``partial``, naming the file): YAML aliases
are refused (a few hundred bytes of nested aliases expand to gigabytes), and so are nesting deeper
than ``MAX_DEPTH`` and integers too large for JSON.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from dwellir_harvester.lib import CollectorPartialError, GenericCollector
from dwellir_harvester.lib.limits import MAX_DEPTH, NotJSONError, json_data, one_line
from dwellir_harvester.lib.redact import SECRET_WORDS, is_sensitive, looks_like_key_material, redact_url

from ._files import FileProblem, directory_option, list_dir, read_small_file

#: Key names (substrings, case-insensitive) dropped from every agent.conf before it is read.
JUJU_SECRET_WORDS: tuple[str, ...] = (*SECRET_WORDS, "cert", "identity", "nonce")


_UNIT_TAG = re.compile(r"^unit-(?P<app>[a-z0-9][a-z0-9-]*)-(?P<number>\d+)$")


def scrub(value: Any) -> Any:
    """A copy of ``value`` without sensitive keys or key material, URLs without credentials, at any depth."""
    if isinstance(value, dict):
        return {
            str(key): scrub(item)
            for key, item in value.items()
            if not is_sensitive(str(key), JUJU_SECRET_WORDS) and not looks_like_key_material(item)
        }
    if isinstance(value, list):
        return [scrub(item) for item in value if not looks_like_key_material(item)]
    if isinstance(value, str):
        return redact_url(value)
    return value


def parse_tag(tag: str) -> tuple[str, str]:
    """Return ``(kind, name)`` of an agent tag.

    ``machine-0-lxd-1`` → ``("machine", "0/lxd/1")``, ``unit-grafana-agent-0`` →
    ``("unit", "grafana-agent/0")``, ``controller-0`` → ``("controller", "0")``.
    """
    kind, _, rest = tag.partition("-")
    if kind == "unit":
        match = _UNIT_TAG.match(tag)
        return "unit", f"{match['app']}/{match['number']}" if match else rest
    if kind == "machine":
        return "machine", rest.replace("-", "/")
    return kind or "unknown", rest


def _uuid(tag: Any, prefix: str) -> str | None:
    if not isinstance(tag, str) or not tag:
        return None
    return tag.removeprefix(prefix)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, bool)) or (isinstance(value, float) and math.isfinite(value))


def _texts(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _units(value: Any) -> list[str]:
    return [unit.strip() for unit in value.split(",") if unit.strip()] if isinstance(value, str) else []


def _unit_key(unit: str) -> tuple[str, int, str]:
    app, _, number = unit.rpartition("/")
    return (app, int(number), "") if number.isdigit() else (unit, -1, unit)


def _loader(raw: bytes) -> Any:
    """A safe YAML loader for one agent.conf that refuses aliases and deep nesting while composing."""
    import yaml

    class AgentConfLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise FileProblem(f"uses a YAML alias at line {mark.line + 1}, column {mark.column + 1} (refused)")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise FileProblem(f"is nested more than {MAX_DEPTH} levels deep")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return AgentConfLoader(raw)


def _load(path: Path) -> dict[str, Any]:
    import yaml

    raw = read_small_file(path)
    loader = None
    try:
        loader = _loader(raw)  # decoding starts here: bytes that are not text fail already
        loaded = loader.get_single_data()
    except RecursionError:
        raise FileProblem("is nested too deeply to read") from None
    except (ValueError, TypeError, OverflowError) as err:  # a value YAML recognises but Python cannot hold
        raise FileProblem(f"holds a value that cannot be read ({one_line(err, 120)})") from None
    except yaml.MarkedYAMLError as err:  # its str() would quote the file: report the position only
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise FileProblem(f"not valid YAML: {err.problem or err.context or 'syntax error'}{where}") from None
    except yaml.reader.ReaderError as err:  # bytes that are not text
        raise FileProblem(f"not valid YAML: {err.reason} at byte {err.position}") from None
    except yaml.YAMLError as err:
        raise FileProblem(f"not valid YAML ({type(err).__name__})") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(loaded, dict):
        what = "nothing" if loaded is None else "a list" if isinstance(loaded, list) else "a scalar"
        raise FileProblem(f"holds {what}, not a mapping")
    try:
        json_data(loaded, "its content")
    except NotJSONError as err:  # an integer too large for JSON, a key that is not a string
        raise FileProblem(str(err)) from None
    return loaded


def _agent(directory_name: str, conf: dict[str, Any]) -> dict[str, Any]:
    clean = scrub(conf)
    tag = _text(clean.get("tag")) or directory_name
    kind, name = parse_tag(tag)
    values = clean.get("values") if isinstance(clean.get("values"), dict) else {}
    agent: dict[str, Any] = {
        "tag": tag,
        "kind": kind,
        "name": name,
        "version": _text(clean.get("upgradedToVersion")),
        "controller": _uuid(clean.get("controller"), "controller-"),
        "model": _uuid(clean.get("model"), "model-"),
        "api_addresses": _texts(clean.get("apiaddresses")),
        "values": {key: value for key, value in values.items() if _scalar(value)},
    }
    if kind == "machine":
        agent["jobs"] = _texts(clean.get("jobs"))
    return agent


def _summary(agents: list[dict[str, Any]]) -> dict[str, Any]:
    machines = [a for a in agents if a["kind"] == "machine"]
    ordered = machines + [a for a in agents if a["kind"] != "machine"]  # the machine agent speaks first

    def first(key: str) -> Any:
        return next((a[key] for a in ordered if a[key] is not None), None)

    units = {name for a in machines for name in _units(a["values"].get("deployed-units"))}
    units.update(a["name"] for a in agents if a["kind"] == "unit")
    machine = machines[0] if machines else None
    return {
        "controller": first("controller"),
        "model": first("model"),
        "machine": {"tag": machine["tag"], "id": machine["name"], "version": machine["version"]} if machine else None,
        "juju_version": first("version"),
        "deployed_units": sorted(units, key=_unit_key),
        "agents": agents,
    }


def _agent_files(directory: Path) -> list[Path]:
    """Each agent's ``agent.conf`` in name order; ``CollectorFailedError`` if the directory is unusable."""
    entries = list_dir(directory, "agents_dir")
    found = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        conf = Path(entry.path) / "agent.conf"
        if os.path.lexists(conf):
            found.append(conf)
    return found


_SCHEMA_AGENT = {
    "type": "object",
    "required": ["tag", "kind", "name", "version", "controller", "model", "api_addresses", "values"],
    "properties": {
        "tag": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "version": {"type": ["string", "null"]},
        "controller": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "api_addresses": {"type": "array", "items": {"type": "string"}},
        "values": {"type": "object"},
        "jobs": {"type": "array", "items": {"type": "string"}},
    },
}


class JujuCollector(GenericCollector):
    """The controller, model, agents and deployed units Juju knows on this machine."""

    NAME = "juju"
    VERSION = "1.0.0"
    TIMEOUT = 10.0
    SCHEMA = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["controller", "model", "machine", "juju_version", "deployed_units", "agents"],
        "properties": {
            "controller": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "machine": {
                "type": ["object", "null"],
                "required": ["tag", "id", "version"],
                "properties": {
                    "tag": {"type": "string"},
                    "id": {"type": "string"},
                    "version": {"type": ["string", "null"]},
                },
            },
            "juju_version": {"type": ["string", "null"]},
            "deployed_units": {"type": "array", "items": {"type": "string"}},
            "agents": {"type": "array", "items": _SCHEMA_AGENT},
            "note": {"type": "string"},
        },
    }

    def __init__(self, agents_dir: str = "/var/lib/juju/agents") -> None:
        self.agents_dir = directory_option(agents_dir, "agents_dir")

    def collect(self) -> dict[str, Any]:
        """Collect this collector's data (see the module docstring)."""
        agents: list[dict[str, Any]] = []
        errors: list[str] = []
        files = _agent_files(self.agents_dir)
        for path in files:
            try:
                conf = _load(path)
            except FileProblem as err:
                errors.append(f"{path}: {err}")
                continue
            agents.append(_agent(path.parent.name, conf))
        data = _summary(agents)
        if not files:
            where = "it does not exist" if not self.agents_dir.exists() else "no agent directory holds an agent.conf"
            data["note"] = f"no Juju agents found under {self.agents_dir} ({where})"
        if errors:
            raise CollectorPartialError(errors, data=data)
        return data

"""What the charm puts on the machine: the daemon's user, its unit file, its config and token file.

Everything here is plain Python around files and two commands (``getent``, ``useradd``); the charm
(``charm.py``) decides what to write and when. Every path the charm writes is under one root,
``Paths.root``: ``/`` on a unit; the charm's tests give it a temporary directory (through the
charm's ``paths`` class attribute), in ops[testing] and through ``dispatch`` alike.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import yaml

from dwellir_harvester.lib.jsonrpc import check_http_url
from dwellir_harvester.lib.redact import redact_url

SERVICE = "dwellir-harvester"
USER = "dwellir-harvester"
#: The interpreter the service runs the runner with: the one that runs the charm on a unit
#: (``dispatch`` runs ``/usr/bin/env python3``), so the venv's compiled modules fit it.
PYTHON = "/usr/bin/python3"
#: The key of the Juju secret (named by the ``auth-tokens`` option) that holds the tokens.
TOKENS_KEY = "tokens"

_SPLIT = re.compile(r"[\s,]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")


# --- where things go ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    """Every path the charm writes, under ``root`` (``/`` on a unit)."""

    root: Path = Path("/")

    def __post_init__(self) -> None:
        if not self.root.is_absolute():
            raise ValueError(f"the root of the charm's paths must be absolute, not {str(self.root)!r}")

    def under(self, path: str) -> Path:
        """``path`` (absolute, as on a unit) under the root: ``/etc/x`` is ``<root>/etc/x``."""
        return self.root.joinpath(path.lstrip("/"))

    @property
    def unit_file(self) -> Path:
        return self.under(f"/etc/systemd/system/{SERVICE}.service")

    @property
    def etc(self) -> Path:
        return self.under("/etc/dwellir-harvester")

    @property
    def main_config(self) -> Path:
        return self.etc / "config.yaml"

    @property
    def config_dir(self) -> Path:
        """The daemon's drop-in directory; the Harvester writes this charm's drop-in there."""
        return self.etc / "config.d"

    @property
    def token_file(self) -> Path:
        return self.etc / "tokens.yaml"

    @property
    def state_dir(self) -> Path:
        return self.under("/var/lib/dwellir-harvester")

    @property
    def snapshot_dir(self) -> Path:
        """Where the Harvester leaves the charm's Juju context for the ``juju-charm`` collector."""
        return self.state_dir / "charms"

    @property
    def results_dir(self) -> Path:
        """Where the Harvester writes action results too large for Juju (0700, files 0600)."""
        return self.state_dir / "action-results"

    @property
    def output(self) -> Path:
        """The document the daemon writes after each harvest."""
        return self.state_dir / "harvested-data.json"


class Systemd(Protocol):
    """What the charm asks of systemd: the ``charmlibs.systemd`` module on a unit, a fake in tests."""

    def service_running(self, service_name: str) -> bool: ...
    def service_start(self, *args: str) -> bool: ...
    def service_stop(self, *args: str) -> bool: ...
    def service_restart(self, *args: str) -> bool: ...
    def service_reload(self, service_name: str, restart_on_failure: bool = False) -> bool: ...
    def service_enable(self, *args: str) -> bool: ...
    def service_disable(self, *args: str) -> bool: ...
    def daemon_reload(self) -> bool: ...


# --- files -------------------------------------------------------------------------------------


def read_wiring(dropin: bytes | None) -> tuple[list[str], dict[str, dict[str, Any]]] | None:
    """The collectors and their options a drop-in holds, or None when there is no usable one."""
    try:
        data = yaml.safe_load(dropin) if dropin is not None else None
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    collectors, options = data.get("collectors"), data.get("collector_options", {})
    if not isinstance(collectors, list) or not all(isinstance(name, str) for name in collectors):
        return None
    if not isinstance(options, dict) or not all(isinstance(o, dict) for o in options.values()):
        return None
    return collectors, options


def read_yaml(path: Path) -> Any:
    """The YAML data in ``path``, or None when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, yaml.YAMLError):
        return None


# --- the service's user ------------------------------------------------------------------------


class UserError(Exception):
    """The service's user could not be looked up or created."""


class SystemUser(NamedTuple):
    name: str
    uid: int
    gid: int


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except OSError as err:
        raise UserError(f"cannot run {argv[0]}: {err.strerror or err}") from err


def lookup_user(name: str) -> SystemUser | None:
    """``name`` from the machine's user database (``getent passwd``), or None when it has no such user."""
    proc = _run(["getent", "passwd", name])
    if proc.returncode == 2:  # getent: the key was not found
        return None
    fields = proc.stdout.strip().split(":")
    if proc.returncode != 0 or len(fields) < 4 or not fields[2].isdigit() or not fields[3].isdigit():
        raise UserError(f"getent passwd {name} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return SystemUser(name, int(fields[2]), int(fields[3]))


def ensure_user(name: str, home: Path) -> SystemUser:
    """The system user ``name`` with a group of its own, created (no login, no home) when missing."""
    user = lookup_user(name)
    if user is not None:
        return user
    argv = ["useradd", "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", str(home), "--shell", "/usr/sbin/nologin", name]
    proc = _run(argv)
    if proc.returncode != 0:
        raise UserError(f"useradd {name} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    user = lookup_user(name)
    if user is None:
        raise UserError(f"useradd created {name}, but getent does not find it")
    return user


# --- what the operator configured --------------------------------------------------------------


def split_names(text: str) -> list[str]:
    """Names separated by spaces or commas, without duplicates, in order."""
    return list(dict.fromkeys(name for name in _SPLIT.split(text) if name))


@dataclass(frozen=True)
class Settings:
    """The charm's config, checked. ``problems`` say what is wrong (each one line, never a secret)."""

    host: str = "127.0.0.1"
    port: int = 18080
    interval: int = 300
    collectors: tuple[str, ...] = ("host",)
    rpc_url: str = ""
    token_secret: str | None = None
    problems: tuple[str, ...] = ()
    rpc_problem: str | None = None


def check_rpc_url(url: str) -> str | None:
    """What is wrong with ``url`` as the node's JSON-RPC URL (None when nothing is)."""
    try:
        check_http_url(url, "rpc-url")
    except (TypeError, ValueError) as err:
        return str(err)
    if redact_url(url) != url:
        return "rpc-url must not hold credentials (charm config is readable by everyone who can read the model)"
    return None


def parse_config(config: Mapping[str, Any], available: Collection[str], own: Collection[str]) -> Settings:
    """Check the charm's config; ``available`` are the collector names discovery found."""
    problems: list[str] = []
    host = str(config.get("bind-address", "") or "").strip()
    if not _valid_host(host):
        problems.append(f"bind-address {host!r} is not an IP address or host name")
    port = config.get("port", 18080)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"port must be between 1 and 65535, not {port!r}")
    interval = config.get("interval", 300)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        problems.append(f"interval must be a whole number of seconds, at least 1, not {interval!r}")
    names = split_names(str(config.get("collectors", "") or ""))
    unknown = [name for name in names if name not in available]
    if unknown:
        listing = ", ".join(repr(name) for name in unknown)
        noun = "collector" if len(unknown) == 1 else "collectors"
        problems.append(f"unknown {noun} {listing} in collectors (available: {', '.join(sorted(available))})")
    collectors = tuple(dict.fromkeys(["host", *(n for n in names if n not in own and n not in unknown)]))
    rpc_url = str(config.get("rpc-url", "") or "").strip()
    rpc_problem = check_rpc_url(rpc_url) if rpc_url else None
    secret = config.get("auth-tokens")
    return Settings(
        host=host,
        port=port if isinstance(port, int) else 0,
        interval=interval if isinstance(interval, int) else 0,
        collectors=collectors,
        rpc_url=rpc_url if rpc_url and rpc_problem is None else "",
        token_secret=str(secret) if secret else None,
        problems=tuple(problems),
        rpc_problem=rpc_problem,
    )


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host))
    return True


# --- tokens ------------------------------------------------------------------------------------


class TokenError(ValueError):
    """The secret's tokens cannot be used; the message never holds a token."""


class Token(NamedTuple):
    token: str
    label: str
    enabled: bool


def parse_tokens(text: str) -> list[Token]:
    """The tokens in the secret's ``tokens`` value.

    Either tokens separated by spaces or commas, or a YAML list in the daemon's token file format
    (``[{token, label, enabled}]``; plain strings in the list are tokens too). At least one token
    must be enabled: the daemon refuses a token file without one (it fails closed).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:  # its message quotes the text: never show it
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TokenError(f"is not valid YAML{where}") from None
    if isinstance(data, dict):
        raise TokenError("must be tokens separated by spaces or commas, or a YAML list of {token, label, enabled}")
    items: list[Any] = data if isinstance(data, list) else _SPLIT.split(text.strip())
    tokens: list[Token] = []
    for i, item in enumerate(items, start=1):
        label = f"juju-secret-{i}"
        enabled: Any = True
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"token", "label", "enabled"})
            if unknown:
                raise TokenError(f"entry {i} has an unknown key {unknown[0]!r} (known: token, label, enabled)")
            token, label, enabled = item.get("token"), item.get("label", label), item.get("enabled", True)
        else:
            token = item
        if not isinstance(token, str) or not token.strip() or len(token.split()) != 1:
            raise TokenError(f"entry {i}: a token must be a non-empty string without spaces (quote it in YAML)")
        if not isinstance(label, str) or not label.strip():
            raise TokenError(f"entry {i}: label must be a non-empty string")
        if not isinstance(enabled, bool):
            raise TokenError(f"entry {i}: enabled must be true or false")
        tokens.append(Token(token.strip(), label.strip(), enabled))
    if not any(t.enabled for t in tokens):
        raise TokenError("holds no enabled token")
    return tokens


def render_tokens(tokens: Sequence[Token]) -> bytes:
    """The daemon's token file: a YAML list of ``{token, label, enabled}``."""
    header = (
        "# Written by the harvester-example charm from the Juju secret in its auth-tokens option.\n"
        "# Change the secret (juju update-secret), not this file.\n"
    )
    body = yaml.safe_dump([t._asdict() for t in tokens], sort_keys=False, default_flow_style=False)
    return (header + body).encode("utf-8")


# --- the daemon's files ------------------------------------------------------------------------


def render_config(settings: Settings, paths: Paths, *, auth: bool) -> bytes:
    """The main config ``/etc/dwellir-harvester/config.yaml``, in the runner's config format.

    Paths the daemon must agree on with the charm are written out even where they are the
    runner's defaults: the output file, the token file, and the snapshot dir the Harvester writes.
    """
    data: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "interval": settings.interval,
        "collectors": list(settings.collectors),
        "output": str(paths.output),
    }
    if "juju-charm" in settings.collectors:
        data["collector_options"] = {"juju-charm": {"snapshot_dir": str(paths.snapshot_dir)}}
    if auth:
        data["auth_token_file"] = str(paths.token_file)
    header = (
        "# Written by the harvester-example charm from its config; change the charm's config\n"
        "# (juju config harvester-example ...), not this file. Charms add drop-ins in config.d/.\n"
    )
    return (header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)).encode("utf-8")


def runner_version() -> str:
    """The version of the runner (``dwellir-harvester``) the service runs."""
    from dwellir_harvester.config import __version__

    return __version__


def render_unit(charm_dir: Path, paths: Paths) -> str:
    """The hardened unit: the runner from the charm's venv, run by the system's Python."""
    from dwellir_harvester.daemon import systemd_unit

    environment = {"PYTHONPATH": str(charm_dir / "venv"), "HARVESTER_CONFIG": str(paths.main_config)}
    return systemd_unit([PYTHON, "-m", "dwellir_harvester.cli"], USER, environment)

"""What the charm puts on the machine, and what it reads back: plain Python around files and commands.

The charm (``charm.py``) decides what to write and when; this module knows the formats and the
places: the service's user (``getent``, ``useradd``), the hardened unit, the main config, the
token file, the owner file that gives the machine to one unit of the charm, and what the
principals' drop-ins and the daemon's last document say (``MachineView``). Every path is under
one root, ``Paths.root``: ``/`` on a unit, a temporary directory in tests.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import yaml

from dwellir_harvester.lib import files
from dwellir_harvester.lib.limits import MAX_INTERVAL, one_line

SERVICE = "dwellir-harvester"
USER = "dwellir-harvester"
#: The interpreter the service runs the runner with: the one that runs the charm on a unit
#: (``dispatch`` runs ``/usr/bin/env python3``), so the venv's compiled modules fit it.
PYTHON = "/usr/bin/python3"
#: The key of the Juju secret (named by the ``auth-tokens`` option) that holds the tokens.
TOKENS_KEY = "tokens"
#: The keys of the Juju secret (named by the ``s3-credentials`` option) that hold the S3 credentials.
S3_ACCESS_KEY = "access-key-id"
S3_SECRET_KEY = "secret-access-key"
S3_SESSION_TOKEN = "session-token"
#: The default of ``s3-prefix``: what the objects of a bucket shared with other tools start with.
S3_PREFIX = "dwellir-harvester"
#: The runner's distribution: its entry points are the built-in collectors.
RUNNER = "dwellir-harvester"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The schema's bound of ``worker_memory_mb``.
MAX_WORKER_MEMORY_MB = 1048576
#: The most names ``collectors`` or ``exclude-collectors`` may hold.
MAX_NAMES = 200
#: The most bytes of the daemon's document the charm reads for its status.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_SPLIT = re.compile(r"[\s,]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_UNIT_NAME = re.compile(r"^[a-z][a-z0-9-]*/[0-9]+$")
_COLLECTOR_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
#: S3 bucket names: 3 to 63 lowercase letters, digits, dots and hyphens, a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: A key prefix: the characters the sink keeps in keys, parts separated by ``/``.
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-/]{0,256}$")


# --- where things go ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    """Every path the charm writes or reads, under ``root`` (``/`` on a unit)."""

    root: Path = Path("/")

    def __post_init__(self) -> None:
        if not self.root.is_absolute():
            raise ValueError(f"the root of the charm's paths must be absolute, not {str(self.root)!r}")

    def under(self, path: str) -> Path:
        """``path`` (absolute, as on a unit) under the root: ``/etc/x`` is ``<root>/etc/x``."""
        return self.root.joinpath(path.lstrip("/"))

    @property
    def unit_file(self) -> Path:
        """The service's unit file."""
        return self.under(f"/etc/systemd/system/{SERVICE}.service")

    @property
    def etc(self) -> Path:
        """The harvester's config directory."""
        return self.under("/etc/dwellir-harvester")

    @property
    def main_config(self) -> Path:
        """The main config, written by this charm from its config."""
        return self.etc / "config.yaml"

    @property
    def config_dir(self) -> Path:
        """The drop-ins of the principal charms (never written by this charm)."""
        return self.etc / "config.d"

    @property
    def token_file(self) -> Path:
        """The daemon's tokens, from the ``auth-tokens`` secret (0640, the service user's group)."""
        return self.etc / "tokens.yaml"

    @property
    def s3_credentials_file(self) -> Path:
        """The ``s3`` sink's credentials, from the ``s3-credentials`` secret (0640, the service user's group)."""
        return self.etc / "s3-credentials.yaml"

    @property
    def state_dir(self) -> Path:
        """The harvester's state directory (the service user's home)."""
        return self.under("/var/lib/dwellir-harvester")

    @property
    def spool_dir(self) -> Path:
        """Where the daemon keeps the documents its sinks have not delivered yet."""
        return self.state_dir / "spool"

    @property
    def owner_file(self) -> Path:
        """Names the unit of this charm that runs the harvester on the machine."""
        return self.state_dir / "owner"

    @property
    def snapshot_dir(self) -> Path:
        """Where the principals' Harvester objects leave their Juju context (never written here)."""
        return self.state_dir / "charms"

    @property
    def results_dir(self) -> Path:
        """Where the actions write results too large for Juju (0700, files 0600)."""
        return self.state_dir / "action-results"

    @property
    def output(self) -> Path:
        """The document the daemon writes after each harvest."""
        return self.state_dir / "harvested-data.json"

    @property
    def quarantine(self) -> Path:
        """Where the daemon records the collectors that killed a worker (beside its output)."""
        return self.state_dir / "quarantined.json"

    @property
    def agents_dir(self) -> Path:
        """Juju's agent directories on the machine: one ``unit-<app>-<n>`` per unit deployed there."""
        return self.under("/var/lib/juju/agents")


class Systemd(Protocol):
    """What the charm asks of systemd: the ``charmlibs.systemd`` module on a unit, a fake in tests."""

    def service_running(self, service_name: str) -> bool:
        """Whether the service is active."""
        ...

    def service_start(self, *args: str) -> bool:
        """``systemctl start``."""
        ...

    def service_stop(self, *args: str) -> bool:
        """``systemctl stop``."""
        ...

    def service_restart(self, *args: str) -> bool:
        """``systemctl restart``."""
        ...

    def service_reload(self, service_name: str, restart_on_failure: bool = False) -> bool:
        """``systemctl reload``."""
        ...

    def service_enable(self, *args: str) -> bool:
        """``systemctl enable``."""
        ...

    def service_disable(self, *args: str) -> bool:
        """``systemctl disable``."""
        ...

    def daemon_reload(self) -> bool:
        """``systemctl daemon-reload``."""
        ...


def read_yaml(path: Path) -> Any:
    """Return the YAML data in ``path``, or None when it is missing, too large or not YAML."""
    try:
        content = files.read_bytes(path)
        return yaml.safe_load(content) if content is not None else None
    except (OSError, ValueError, yaml.YAMLError):
        return None


# --- one unit of the charm per machine ---------------------------------------------------------


def claim_machine(paths: Paths, unit: str) -> str:
    """Return the unit that runs the harvester on this machine, claiming it for ``unit`` when free.

    The owner file (``Paths.owner_file``) is created with ``O_EXCL`` and names its unit. It is
    free when it does not exist, or names no valid unit, or names a unit that is gone: Juju keeps
    an agent directory (``/var/lib/juju/agents/unit-<app>-<n>``) for every unit on the machine,
    so an owner without one was removed without cleaning up. Where there is no agents directory
    to ask (a machine without Juju), a named owner is taken as live.

    Args:
        paths: the machine's paths.
        unit: this unit's name (``dwellir-harvester/1``).

    Returns:
        The owner: ``unit`` when it holds (or just took) the machine, else the other unit.

    Raises:
        OSError: the state directory or the owner file cannot be created or read.
    """
    path = paths.owner_file
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            owner = read_owner(paths)
            if owner == unit or (owner is not None and _alive(paths, owner)):
                return owner
            files.remove(path)  # a stale claim: take it over
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(unit + "\n")
        return unit
    raise OSError(f"cannot claim the machine: {path} keeps coming back")


def read_owner(paths: Paths) -> str | None:
    """Return the unit the owner file names, or None when there is none (or it names no unit)."""
    try:
        content = files.read_bytes(paths.owner_file)
    except (OSError, ValueError):
        return None
    if content is None:
        return None
    text = content.decode("utf-8", "replace").strip()
    return text if _UNIT_NAME.match(text) else None


def _alive(paths: Paths, unit: str) -> bool:
    agents = paths.agents_dir
    if not agents.is_dir():
        return True
    return (agents / f"unit-{unit.replace('/', '-')}").is_dir()


# --- the service's user ------------------------------------------------------------------------


class UserError(Exception):
    """The service's user could not be looked up or created."""


class SystemUser(NamedTuple):
    """A user of the machine's user database."""

    name: str
    uid: int
    gid: int


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UserError(f"cannot run {argv[0]}: {getattr(err, 'strerror', None) or err}") from err


def lookup_user(name: str) -> SystemUser | None:
    """Return ``name`` from the user database (``getent passwd``), or None when there is no such user.

    Raises:
        UserError: ``getent`` failed.
    """
    proc = _run(["getent", "passwd", name])
    if proc.returncode == 2:  # getent: the key was not found
        return None
    fields = proc.stdout.strip().split(":")
    if proc.returncode != 0 or len(fields) < 4 or not fields[2].isdigit() or not fields[3].isdigit():
        raise UserError(f"getent passwd {name} failed (exit {proc.returncode}): {one_line(proc.stderr)}")
    return SystemUser(name, int(fields[2]), int(fields[3]))


def ensure_user(name: str, home: Path) -> SystemUser:
    """Return the system user ``name`` with a group of its own, created (no login, no home) when missing.

    Raises:
        UserError: it could not be looked up or created.
    """
    user = lookup_user(name)
    if user is not None:
        return user
    argv = ["useradd", "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", str(home), "--shell", "/usr/sbin/nologin", name]
    proc = _run(argv)
    if proc.returncode != 0:
        raise UserError(f"useradd {name} failed (exit {proc.returncode}): {one_line(proc.stderr)}")
    user = lookup_user(name)
    if user is None:
        raise UserError(f"useradd created {name}, but getent does not find it")
    return user


# --- what the operator configured --------------------------------------------------------------


def split_names(text: str) -> list[str]:
    """Return the names in ``text`` (separated by spaces or commas), without duplicates, in order."""
    return list(dict.fromkeys(name for name in _SPLIT.split(text) if name))


@dataclass(frozen=True)
class S3Settings:
    """The ``s3`` sink the charm configures (``s3-*`` options), checked.

    Attributes:
        endpoint_url: ``http(s)://host[:port]``, without credentials or a path.
        bucket: the bucket (S3 bucket-name rules).
        prefix: the key prefix, without leading or trailing slashes (may be empty).
        region: the region, or None for the runner's default.
        path_style: whether the bucket goes in the path rather than the host name.
        credentials_secret: the URI of the Juju secret with the credentials.
    """

    endpoint_url: str
    bucket: str
    prefix: str = S3_PREFIX
    region: str | None = None
    path_style: bool = True
    credentials_secret: str = ""


@dataclass(frozen=True)
class Settings:
    """The charm's config, checked. ``problems`` say what is wrong (each one line, never a secret)."""

    host: str = "127.0.0.1"
    port: int = 18080
    interval: int = 300
    collectors: tuple[str, ...] = ("host",)
    exclude: tuple[str, ...] = ()
    worker_memory_mb: int = 1024
    log_level: str = "INFO"
    token_secret: str | None = None
    s3: S3Settings | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def loopback(self) -> bool:
        """Whether the daemon listens on a loopback address only (then no port is opened)."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _whole(config: Mapping[str, Any], key: str, default: int, low: int, high: int, problems: list[str]) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{key} must be a whole number from {low} to {high}, not {one_line(repr(value), 40)}")
        return default
    return value


def _names(config: Mapping[str, Any], key: str, default: str, problems: list[str]) -> list[str]:
    names = split_names(str(config.get(key, default) or ""))
    bad = [name for name in names if not _COLLECTOR_NAME.match(name)]
    if bad:
        problems.append(f"{key} holds {one_line(repr(bad[0]), 60)}, which is not a collector name")
        return []
    if len(names) > MAX_NAMES:
        problems.append(f"{key} names {len(names)} collectors, more than the limit of {MAX_NAMES}")
        return []
    return names


def parse_config(config: Mapping[str, Any], available: Collection[str]) -> Settings:
    """Check the charm's config; ``available`` are the collectors the runner itself provides.

    Args:
        config: the charm's config as Juju gives it (defaults applied).
        available: the names (and ``namespace::name`` forms) of the runner's collectors.

    Returns:
        The settings, with ``problems`` listing everything wrong (empty when it can be applied).
    """
    problems: list[str] = []
    host = str(config.get("bind-address", "") or "").strip()
    if not _valid_host(host):
        problems.append(f"bind-address {one_line(repr(host), 80)} is not an IP address or host name")
    port = _whole(config, "port", 18080, 1, 65535, problems)
    interval = _whole(config, "interval", 300, 1, int(MAX_INTERVAL), problems)
    memory = _whole(config, "worker-memory-mb", 1024, 32, MAX_WORKER_MEMORY_MB, problems)
    level = str(config.get("log-level", "INFO") or "").strip().upper()
    if level not in LOG_LEVELS:
        shown = one_line(repr(config.get("log-level")), 40)
        problems.append(f"log-level must be one of {', '.join(LOG_LEVELS)}, not {shown}")
    names = _names(config, "collectors", "", problems)
    unknown = [name for name in names if name not in available]
    if unknown:
        listing = ", ".join(repr(name) for name in unknown[:5])
        noun = "collector" if len(unknown) == 1 else "collectors"
        runner = ", ".join(sorted(name for name in available if "::" not in name))
        problems.append(
            f"unknown {noun} {listing} in collectors (the runner's: {runner};"
            " a principal charm's collectors come with its drop-in)"
        )
    exclude = _names(config, "exclude-collectors", "", problems)
    secret = config.get("auth-tokens")
    s3 = parse_s3(config, problems)
    return Settings(
        host=host,
        port=port,
        interval=interval,
        collectors=tuple(dict.fromkeys(["host", *(n for n in names if n not in unknown)])),
        exclude=tuple(exclude),
        worker_memory_mb=memory,
        log_level=level if level in LOG_LEVELS else "INFO",
        token_secret=str(secret) if secret else None,
        s3=s3,
        problems=tuple(problems),
    )


def _text(config: Mapping[str, Any], key: str, default: str = "") -> str:
    value = config.get(key, default)
    return value.strip() if isinstance(value, str) else str(value)


def parse_s3(config: Mapping[str, Any], problems: list[str]) -> S3Settings | None:
    """Check the ``s3-*`` options; None when ``s3-endpoint-url`` is empty (no S3 sink) or one is wrong.

    Args:
        config: the charm's config.
        problems: where each thing wrong is added, one line each, never a credential.

    Returns:
        The S3 sink's settings, or None.
    """
    from dwellir_harvester.lib.jsonrpc import check_http_url
    from dwellir_harvester.lib.redact import redact_url

    url = _text(config, "s3-endpoint-url")
    if not url:
        return None
    found = len(problems)
    if redact_url(url) != url:
        problems.append(
            "s3-endpoint-url must not hold credentials (charm config is readable by everyone who can read"
            " the model): put them in the s3-credentials secret"
        )
    else:
        try:
            check_http_url(url, "s3-endpoint-url")
            parts = urlsplit(url)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                shown = one_line(repr(url), 100)
                problems.append(f"s3-endpoint-url must be http(s)://host[:port] with no path, not {shown}")
        except (TypeError, ValueError) as err:
            problems.append(one_line(str(err)))
    bucket = _text(config, "s3-bucket")
    if not bucket:
        problems.append("s3-bucket must be set when s3-endpoint-url is")
    elif not _valid_bucket(bucket):
        problems.append(
            f"s3-bucket {one_line(repr(bucket), 80)} is not a bucket name (3 to 63 lowercase letters, digits,"
            " dots and hyphens, a letter or digit at each end, not an IP address)"
        )
    prefix = _text(config, "s3-prefix", S3_PREFIX).strip("/")
    parts_of_prefix = prefix.split("/") if prefix else []
    if not _PREFIX.match(prefix) or any(part in ("", ".", "..") for part in parts_of_prefix):
        problems.append(
            f"s3-prefix {one_line(repr(prefix), 80)} must be at most 256 letters, digits, '.', '_', '-'"
            " in parts separated by '/' (no empty, '.' or '..' part)"
        )
    region = _text(config, "s3-region")
    if region and not _REGION.match(region):
        problems.append(f"s3-region {one_line(repr(region), 80)} is not a region name (letters, digits, '.', '_', '-')")
    path_style = config.get("s3-path-style", True)
    if not isinstance(path_style, bool):
        problems.append(f"s3-path-style must be true or false, not {one_line(repr(path_style), 40)}")
    secret = _text(config, "s3-credentials")
    if not secret:
        problems.append(
            "s3-credentials must name a Juju secret (juju add-secret, then juju grant-secret)"
            " when s3-endpoint-url is set"
        )
    if len(problems) > found:
        return None
    return S3Settings(url, bucket, prefix, region or None, bool(path_style), secret)


def _valid_bucket(name: str) -> bool:
    if not _BUCKET.match(name) or ".." in name or ".-" in name or "-." in name:
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


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
    """One bearer token of the daemon's token file."""

    token: str
    label: str
    enabled: bool


#: The most tokens the secret may hold.
MAX_TOKENS = 1000


def parse_tokens(text: str) -> list[Token]:
    """Return the tokens in the secret's ``tokens`` value.

    Either tokens separated by spaces or commas, or a YAML list in the daemon's token file format
    (``[{token, label, enabled}]``; plain strings in the list are tokens too). At least one token
    must be enabled: the daemon refuses a token file without one (it fails closed).

    Raises:
        TokenError: the text cannot be used; the message says where, never what the token is.
    """
    if len(text) > 1024 * 1024:
        raise TokenError("is larger than 1 MiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:  # its message quotes the text: never show it
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TokenError(f"is not valid YAML{where}") from None
    if isinstance(data, dict):
        raise TokenError("must be tokens separated by spaces or commas, or a YAML list of {token, label, enabled}")
    items: list[Any] = data if isinstance(data, list) else _SPLIT.split(text.strip())
    if len(items) > MAX_TOKENS:
        raise TokenError(f"holds {len(items)} tokens, more than the limit of {MAX_TOKENS}")
    tokens: list[Token] = []
    for i, item in enumerate(items, start=1):
        label = f"juju-secret-{i}"
        enabled: Any = True
        if isinstance(item, dict):
            unknown = sorted(str(key) for key in set(item) - {"token", "label", "enabled"})
            if unknown:
                shown = one_line(repr(unknown[0]), 40)
                raise TokenError(f"entry {i} has an unknown key {shown} (known: token, label, enabled)")
            token, label, enabled = item.get("token"), item.get("label", label), item.get("enabled", True)
        else:
            token = item
        if not isinstance(token, str) or not token.strip() or len(token.split()) != 1:
            raise TokenError(f"entry {i}: a token must be a non-empty string without spaces (quote it in YAML)")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise TokenError(f"entry {i}: label must be a non-empty string of at most 200 characters")
        if not isinstance(enabled, bool):
            raise TokenError(f"entry {i}: enabled must be true or false")
        tokens.append(Token(token.strip(), label.strip(), enabled))
    if not any(t.enabled for t in tokens):
        raise TokenError("holds no enabled token")
    return tokens


def render_tokens(tokens: Sequence[Token]) -> bytes:
    """Return the daemon's token file: a YAML list of ``{token, label, enabled}``."""
    header = (
        "# Written by the dwellir-harvester charm from the Juju secret in its auth-tokens option.\n"
        "# Change the secret (juju update-secret), not this file.\n"
    )
    body = yaml.safe_dump([t._asdict() for t in tokens], sort_keys=False, default_flow_style=False)
    return (header + body).encode("utf-8")


# --- S3 credentials ----------------------------------------------------------------------------


class S3CredentialsError(ValueError):
    """The secret's S3 credentials cannot be used; the message never holds a value."""


class S3Credentials(NamedTuple):
    """The ``s3`` sink's access key, secret key and optional session token; the repr shows none."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return "S3Credentials(<redacted>)"


#: The most characters one credential value may hold.
MAX_CREDENTIAL = 4096


def parse_s3_credentials(content: Mapping[str, str]) -> S3Credentials:
    """Return the credentials in the content of the ``s3-credentials`` secret.

    Args:
        content: the secret's keys and values: ``access-key-id``, ``secret-access-key`` and an
            optional ``session-token``.

    Raises:
        S3CredentialsError: a key is missing, unknown, empty or malformed; the message names the
            key, never a value.
    """
    known = (S3_ACCESS_KEY, S3_SECRET_KEY, S3_SESSION_TOKEN)
    unknown = sorted(str(key) for key in content if key not in known)
    if unknown:
        raise S3CredentialsError(f"has an unknown key {one_line(repr(unknown[0]), 60)} (known: {', '.join(known)})")
    values: dict[str, str | None] = {}
    for key in known:
        value = content.get(key)
        if value is None:
            if key != S3_SESSION_TOKEN:
                raise S3CredentialsError(f"has no key {key!r}")
            values[key] = None
            continue
        value = value.strip() if isinstance(value, str) else value
        if not isinstance(value, str) or not value:
            raise S3CredentialsError(f"key {key!r} is empty")
        if len(value) > MAX_CREDENTIAL or any(ch.isspace() or not ch.isprintable() for ch in value):
            raise S3CredentialsError(
                f"key {key!r} must be at most {MAX_CREDENTIAL} printable characters without spaces"
            )
        values[key] = value
    access, secret = values[S3_ACCESS_KEY], values[S3_SECRET_KEY]
    assert access is not None and secret is not None  # checked above
    return S3Credentials(access, secret, values[S3_SESSION_TOKEN])


def render_s3_credentials(credentials: S3Credentials) -> bytes:
    """Return the ``s3`` sink's credentials file, in the format the runner's ``read_credentials`` reads."""
    header = (
        "# Written by the dwellir-harvester charm from the Juju secret in its s3-credentials option.\n"
        "# Change the secret (juju update-secret), not this file.\n"
    )
    data = {"access_key_id": credentials.access_key_id, "secret_access_key": credentials.secret_access_key}
    if credentials.session_token is not None:
        data["session_token"] = credentials.session_token
    return (header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)).encode("utf-8")


# --- the daemon's files ------------------------------------------------------------------------


def render_config(settings: Settings, paths: Paths, exclude: Sequence[str], *, auth: bool) -> bytes:
    """Return the main config ``/etc/dwellir-harvester/config.yaml``, in the runner's config format.

    Paths the daemon must agree on with the charm are written out even where they are the
    runner's defaults: the output file, the token file, the Juju agents dir the ``juju``
    collector reads and the snapshot dir the principals' Harvester objects write. ``auth`` is
    ``required`` with tokens and ``optional`` without, so that unsetting the secret turns auth
    off on a reload (the daemon refuses that otherwise). With ``settings.s3``, one ``s3`` sink
    (named ``s3``, its credentials in ``Paths.s3_credentials_file``) and the spool under the
    state directory.

    Args:
        settings: the checked config.
        paths: the machine's paths.
        exclude: the names of ``exclude-collectors`` that something on the machine provides.
        auth: whether the token file is in use.
    """
    data: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "interval": settings.interval,
        "collectors": list(settings.collectors),
    }
    if exclude:
        data["exclude"] = list(exclude)
    data["collector_options"] = {
        "juju": {"agents_dir": str(paths.agents_dir)},
        "juju-charm": {"snapshot_dir": str(paths.snapshot_dir)},
    }
    data["output"] = str(paths.output)
    data["worker_memory_mb"] = settings.worker_memory_mb
    data["log_level"] = settings.log_level
    if auth:
        data["auth_token_file"] = str(paths.token_file)
    data["auth"] = "required" if auth else "optional"
    s3 = settings.s3
    if s3 is not None:
        sink: dict[str, Any] = {"type": "s3", "name": "s3", "endpoint_url": s3.endpoint_url, "bucket": s3.bucket}
        if s3.prefix:
            sink["prefix"] = s3.prefix
        if s3.region:
            sink["region"] = s3.region
        sink["path_style"] = s3.path_style
        sink["credentials_file"] = str(paths.s3_credentials_file)
        data["sinks"] = [sink]
        data["spool_dir"] = str(paths.spool_dir)
    header = (
        "# Written by the dwellir-harvester charm from its config; change the charm's config\n"
        "# (juju config dwellir-harvester ...), not this file. Principal charms add drop-ins in config.d/.\n"
    )
    return (header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)).encode("utf-8")


def runner_version() -> str:
    """Return the version of the runner (``dwellir-harvester``) the service runs."""
    from dwellir_harvester.config import __version__

    return __version__


def render_unit(charm_dir: Path, paths: Paths) -> str:
    """Return the hardened unit: the runner from the charm's venv, run by the system's Python."""
    from dwellir_harvester.daemon import systemd_unit

    environment = {"PYTHONPATH": str(charm_dir / "venv"), "HARVESTER_CONFIG": str(paths.main_config)}
    return systemd_unit([PYTHON, "-m", "dwellir_harvester.cli"], USER, environment)


def available_collectors() -> set[str]:
    """Return the names (and ``namespace::name`` forms) of the collectors the runner provides here."""
    from dwellir_harvester.lib import load_collectors

    registry = load_collectors([], env=False, builtin_distribution=RUNNER)
    names = set(registry.available())
    names.update(f"{spec.namespace}::{spec.name}" for spec in registry.discovered)
    return names


# --- what is on the machine --------------------------------------------------------------------


class Problem(NamedTuple):
    """Something the daemon leaves out or cannot use: where (a file or source) and why, one line."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(frozen=True)
class MachineView:
    """What the files on the machine say: the principals' drop-ins and the effective config.

    Attributes:
        charms: the applications whose drop-ins are in ``config.d/`` (the file stems), sorted.
        collectors: the collectors the effective config harvests, or None without a main config.
        dropin_collectors: every collector name a drop-in lists.
        host: the address the main config binds, or None.
        port: the port the main config binds, or None.
        problems: what the config files and the daemon's last document report.
    """

    charms: tuple[str, ...] = ()
    collectors: tuple[str, ...] | None = None
    dropin_collectors: frozenset[str] = frozenset()
    host: str | None = None
    port: int | None = None
    problems: tuple[Problem, ...] = ()


def dropin_files(paths: Paths) -> list[Path]:
    """Return the drop-ins in ``config.d/``, as the runner reads them (hidden files left out)."""
    try:
        entries = list(paths.config_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        (p for p in entries if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")), key=lambda p: p.name
    )


def read_machine(paths: Paths, *, document: bool = True) -> MachineView:
    """Return what the drop-ins, the main config and (with ``document``) the daemon's output say.

    The files are read with the runner's own config API (no collector is imported here: the
    principals' collectors run only in the daemon's workers); the daemon's document adds what
    only discovery finds (an unknown collector or option in a drop-in, a worker that cannot
    start) in its ``harvester.problems``.
    """
    from dwellir_harvester.config import ConfigError, load_settings, read_config_file

    dropins = dropin_files(paths)
    found: set[str] = set()
    problems: dict[str, Problem] = {}
    for path in dropins:
        try:
            data = read_config_file(path)
        except ConfigError as err:
            problems.setdefault(str(path), Problem(str(path), one_line(f"left out: {err}")))
            continue
        found.update(name for name in data.get("collectors", []) if isinstance(name, str))
    view = MachineView(tuple(p.stem for p in dropins), None, frozenset(found))
    if paths.main_config.exists():
        try:
            settings = load_settings({"config": str(paths.main_config)}, environ={})
        except ConfigError as err:
            problems.setdefault(str(paths.main_config), Problem(str(paths.main_config), one_line(str(err))))
        else:
            for left in settings.problems:
                problems.setdefault(left.where, Problem(left.where, one_line(left.problem)))
            harvested = tuple(name for name in settings.collectors if name not in settings.exclude)
            view = MachineView(view.charms, harvested, view.dropin_collectors, settings.host, settings.port)
    if document:
        for problem in document_problems(paths.output):
            problems.setdefault(problem.where, problem)
    return MachineView(
        view.charms, view.collectors, view.dropin_collectors, view.host, view.port, tuple(problems.values())
    )


def document_problems(path: Path) -> list[Problem]:
    """Return the ``harvester.problems`` of the daemon's last document (none when it cannot be read)."""
    try:
        content = files.read_bytes(path, MAX_DOCUMENT_BYTES)
        if content is None:
            return []
        data = json.loads(content)
        found = data["harvester"]["problems"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    problems = []
    for item in found if isinstance(found, list) else []:
        if isinstance(item, dict) and isinstance(item.get("where"), str) and isinstance(item.get("problem"), str):
            problems.append(Problem(one_line(item["where"], 200), one_line(item["problem"])))
    return problems

"""Stand-ins for Juju's hook tools and the machine's systemctl, getent and useradd, backed by one JSON state file.

Never imported by the charms under test: the kit (``tests/juju/machine.py``) puts one small
executable per tool in each unit's ``bin/`` (``/bin/sh`` wrappers that ``exec`` Python on this
module with the machine's state file, the unit's name and the tool's name), so each tool is a real
program: the kernel applies its limits to the arguments (one argument over 128 KiB is refused with
``E2BIG`` before the tool runs), and a charm cannot tell them from the real ones. Tests may import
it to drive a tool in-process (:func:`call`).

The state file holds the whole machine: ``machine`` (its root, interpreter, group), ``users``,
``systemd`` (shared by every unit), the ``model`` and its ``secrets``, ``relations``, and each
unit's own Juju state in ``units[<unit name>]`` (``app``, ``leader``, ``config``, ``endpoints``,
``action``, ``status``, ``logs``, ``ports``, ``principal``, ...). Every call is appended to
``calls`` as ``[unit, tool, *args]``; the longest argument seen is kept in ``longest_arg``.

Each tool keeps the rule of the real one that a charm could get wrong:

- ``action-get``/``action-set``/``action-log``/``action-fail``: only in an action; ``action-set``
  takes ``key=value`` arguments whose dotted key segments match ``^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$``,
  and refuses the reserved keys ``stdout``, ``stderr``, ``stdout-encoding``, ``stderr-encoding``.
- ``status-set``: only the four statuses a charm may set; the application's only by the leader.
- ``config-get``: what ``juju config`` set over the declared defaults; an undeclared key is an error.
- ``secret-get``: by URI (``secret:ID``, ``secret://MODEL/ID`` or the bare ID) or by a label the
  unit gave it; "not found" for an unknown secret, "permission denied" for one not granted to the
  unit's application; ``--refresh`` and ``--peek`` together are refused.
- ``relation-ids``: only declared endpoints (and the implicit ``juju-info``); ``relation-list``,
  ``relation-get``, ``relation-set``, ``relation-model-get`` take ``-r endpoint:id`` or
  ``JUJU_RELATION_ID`` from the hook's environment, and refuse an unknown relation ("relation not
  found") or one of another endpoint; a container-scoped relation (a subordinate's) shows a unit
  only its principal or its subordinates; ``relation-get`` defaults to ``JUJU_REMOTE_UNIT``, reads
  only members of the relation, and the unit's own application bag only as the leader;
  ``relation-set`` writes the unit's own bag (the application's only as the leader); an empty
  value deletes a key; values are strings. Joining a relation gives the unit's bag
  ``private-address``, ``ingress-address`` and ``egress-subnets``, as Juju does.
- ``open-port``/``close-port``: ``PORT[/PROTOCOL]``, ``FROM-TO[/PROTOCOL]`` or ``icmp``; ports
  1-65535, protocol ``tcp`` or ``udp``; ``opened-ports`` lists what the unit opened.
- ``systemctl``: units are files in ``<root>/etc/systemd/system``; an unknown unit is an error (exit
  5), ``reload`` of a unit that is not active is an error, ``enable`` needs an ``[Install]`` section;
  a unit file changed on disk without ``daemon-reload`` is recorded as systemd's warning; ``start``
  checks ``User=`` exists, runs ``ExecStartPre=`` (a failure fails the start) and then
  ``ExecStart=`` as a real background process with the unit's ``Environment=`` (``/usr/bin/python3``
  replaced by the machine's interpreter); ``reload`` sends it SIGHUP (the unit's ``ExecReload``) and
  ``stop`` SIGTERM. Its output goes to ``<root>/var/log/<unit>.log``, the journal's stand-in.
- ``getent passwd|group NAME``: exit 2 when there is no such entry; ``useradd``: exit 9 for a user
  that exists. New users get the test's own group id, so a charm can give them files.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys

TYPE_CHECKING = False  # every tool is a new process: import only what the tool at hand needs
if TYPE_CHECKING:
    from typing import Any

RESULT_KEY = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
RESERVED_KEYS = ("stdout", "stderr", "stdout-encoding", "stderr-encoding")
UNIT_STATUSES = ("maintenance", "blocked", "waiting", "active")
MACHINE_TOOLS = ("systemctl", "getent", "useradd")


class ToolError(Exception):
    """What the tool prints on stderr, and its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def save_state(path: str, state: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def out(text: str) -> None:
    sys.stdout.write(text)


class Context:
    """One call: the machine's state, the calling unit's name, the hook's environment, stdin."""

    def __init__(self, state: dict[str, Any], unit: str, environ: dict[str, str], stdin: str = "") -> None:
        self.state, self.unit_name, self.environ, self.stdin = state, unit, environ, stdin

    @property
    def unit(self) -> dict[str, Any]:
        unit: dict[str, Any] = self.state["units"][self.unit_name]
        return unit

    @property
    def app(self) -> str:
        return self.unit_name.split("/")[0]


def _words(args: list[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


# --- actions ----------------------------------------------------------------------------------


def _in_action(ctx: Context, tool: str) -> dict[str, Any]:
    action: dict[str, Any] | None = ctx.unit.get("action")
    if not action:
        raise ToolError(f"ERROR {tool} can only be used in an action")
    return action


def action_set(ctx: Context, args: list[str]) -> None:
    import re

    action = _in_action(ctx, "action-set")
    pairs = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ToolError(f'ERROR argument "{arg[:40]}" must be of the form key...=value')
        segments = key.split(".")
        for segment in segments:
            if not re.match(RESULT_KEY, segment):
                raise ToolError(
                    f'ERROR key "{key}" must start and end with lowercase alphanumeric, '
                    "and contain only lowercase alphanumeric, hyphens and periods"
                )
        if segments[0] in RESERVED_KEYS:
            raise ToolError(f'ERROR cannot set reserved action key "{segments[0]}"')
        pairs.append((key, value))
    for key, value in pairs:
        action["results"][key] = value


def action_get(ctx: Context, args: list[str]) -> None:
    action = _in_action(ctx, "action-get")
    keys = _words(args)
    value: Any = action["params"]
    for key in keys[:1]:
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    out(json.dumps(value))


def action_log(ctx: Context, args: list[str]) -> None:
    action = _in_action(ctx, "action-log")
    action["log"].append(" ".join(a for a in args if a != "--"))


def action_fail(ctx: Context, args: list[str]) -> None:
    action = _in_action(ctx, "action-fail")
    message = " ".join(a for a in args if a != "--")
    action["failed"] = message or "action failed without reason given, check action for errors"


# --- the unit ---------------------------------------------------------------------------------


def config_get(ctx: Context, args: list[str]) -> None:
    keys = _words(args)
    config = ctx.unit["config"]
    if keys and keys[0] not in ctx.unit.get("options", config):
        raise ToolError(f'ERROR unknown config option "{keys[0]}"')
    out(json.dumps(config.get(keys[0]) if keys else config))


def is_leader(ctx: Context, args: list[str]) -> None:
    out(json.dumps(bool(ctx.unit.get("leader", False))))


def juju_log(ctx: Context, args: list[str]) -> None:
    level = "INFO"
    if args[:1] == ["--log-level"]:
        level, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    ctx.unit["logs"].append([level, " ".join(args)])


def status_set(ctx: Context, args: list[str]) -> None:
    app = False
    rest = []
    for arg in args:
        if arg.startswith("--application"):
            app = arg.partition("=")[2] in ("", "True", "true")
        elif arg != "--":
            rest.append(arg)
    if not rest or rest[0] not in UNIT_STATUSES:
        raise ToolError(f'ERROR invalid status "{rest[0] if rest else ""}", expected one of {UNIT_STATUSES}')
    if app and not ctx.unit.get("leader", False):
        raise ToolError("ERROR this unit is not the leader")
    which = "app" if app else "unit"
    ctx.unit["status"][which] = [rest[0], " ".join(rest[1:])]
    ctx.unit["status_history"].append([which, rest[0], " ".join(rest[1:])])


def application_version_set(ctx: Context, args: list[str]) -> None:
    ctx.unit["workload_version"] = " ".join(a for a in args if a != "--")


def secret_get(ctx: Context, args: list[str]) -> None:
    label = None
    if "--label" in args:
        i = args.index("--label")
        label, args = args[i + 1], args[:i] + args[i + 2 :]
    if "--refresh" in args and "--peek" in args:
        raise ToolError("ERROR specify one of --peek or --refresh but not both")
    ids = _words(args)
    if not ids and label is None:
        raise ToolError("ERROR require either a secret URI or label")
    secrets: dict[str, dict[str, Any]] = ctx.state["secrets"]
    found: tuple[str, dict[str, Any]] | None = None
    if ids:
        wanted = ids[0].rsplit("/", 1)[-1].removeprefix("secret:")
        found = next(((u, s) for u, s in secrets.items() if u.removeprefix("secret:") == wanted), None)
        if found is None:
            raise ToolError(f'ERROR secret "{wanted}" not found')
    else:
        labelled = [(u, s) for u, s in secrets.items() if s.get("labels", {}).get(ctx.app) == label]
        if not labelled:
            raise ToolError(f'ERROR secret with label "{label}" not found')
        found = labelled[0]
    _uri, secret = found
    if ctx.app not in secret.get("grants", []) and secret.get("owner") != ctx.app:
        raise ToolError("ERROR permission denied")
    if label is not None and ids:
        secret.setdefault("labels", {})[ctx.app] = label
    out(json.dumps(secret["content"]))


# --- relations --------------------------------------------------------------------------------


def _declared(ctx: Context, endpoint: str) -> bool:
    return endpoint in ctx.unit["endpoints"] or endpoint == "juju-info"


def _relation(ctx: Context, args: list[str]) -> tuple[str, dict[str, Any], list[str]]:
    """The relation named by ``-r`` (or the hook's ``JUJU_RELATION_ID``), and the other arguments."""
    ref: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "-r":
            ref, i = args[i + 1], i + 2
            continue
        if args[i].startswith("-r="):
            ref = args[i][3:]
        elif args[i].startswith("--relation="):
            ref = args[i].partition("=")[2]
        else:
            rest.append(args[i])
        i += 1
    if ref is None:
        ref = ctx.environ.get("JUJU_RELATION_ID")
        if not ref:
            raise ToolError("ERROR no relation id specified")
    endpoint, _, number = ref.rpartition(":")
    relation = ctx.state["relations"].get(number)
    if relation is None or ctx.unit_name not in relation["units"]:
        raise ToolError(f'ERROR invalid value "{ref}" for option -r: relation not found')
    if endpoint and relation["ends"][ctx.app]["endpoint"] != endpoint:
        raise ToolError(f'ERROR invalid value "{ref}" for option -r: relation not found')
    return number, relation, rest


def _remote_app(ctx: Context, relation: dict[str, Any]) -> str:
    others = [app for app in relation["ends"] if app != ctx.app]
    return others[0] if others else ctx.app  # a peer relation's other end is the unit's own app


def visible_units(state: dict[str, Any], unit: str, relation: dict[str, Any]) -> list[str]:
    """The remote units ``unit`` sees in ``relation`` (container scope: its principal or subordinates)."""
    app = unit.split("/", maxsplit=1)[0]
    remote = [u for u in relation["units"] if u != unit and (u.split("/")[0] != app or relation.get("peer"))]
    if relation.get("scope") == "container":
        units = state["units"]
        mine = units[unit].get("principal")
        remote = [u for u in remote if u == mine or units.get(u, {}).get("principal") == unit]
    return sorted(remote)


def relation_ids(ctx: Context, args: list[str]) -> None:
    names = _words(args)
    if not names or not _declared(ctx, names[0]):
        raise ToolError(f'ERROR invalid value "{names[0] if names else ""}" for option -r: no endpoint named it')
    found = [
        f"{names[0]}:{number}"
        for number, relation in sorted(ctx.state["relations"].items(), key=lambda item: int(item[0]))
        if ctx.unit_name in relation["units"] and relation["ends"][ctx.app]["endpoint"] == names[0]
    ]
    out(json.dumps(found))


def relation_list(ctx: Context, args: list[str]) -> None:
    _number, relation, rest = _relation(ctx, args)
    if "--app" in rest:
        out(json.dumps(_remote_app(ctx, relation)))
    else:
        out(json.dumps(visible_units(ctx.state, ctx.unit_name, relation)))


def relation_get(ctx: Context, args: list[str]) -> None:
    number, relation, rest = _relation(ctx, args)
    app = "--app" in rest
    words = [a for a in rest if a == "-" or not a.startswith("-")]  # "-" is the key meaning "every key"
    key = words[0] if words else "-"
    member = words[1] if len(words) > 1 else ctx.environ.get("JUJU_REMOTE_APP" if app else "JUJU_REMOTE_UNIT", "")
    if not member:
        raise ToolError("ERROR no unit id specified")
    if app:
        member = member.split("/")[0]
        if member not in relation["ends"]:
            raise ToolError(f'ERROR cannot read settings for application "{member}" in relation {number}')
        if member == ctx.app and not relation.get("peer") and not ctx.unit.get("leader", False):
            raise ToolError("ERROR permission denied")
        data: dict[str, str] = relation["ends"][member]["data"]
    else:
        if member != ctx.unit_name and member not in visible_units(ctx.state, ctx.unit_name, relation):
            raise ToolError(f'ERROR cannot read settings for unit "{member}" in relation {number}: settings not found')
        data = relation["units"][member]
    out(json.dumps(dict(data) if key == "-" else data.get(key)))


def relation_set(ctx: Context, args: list[str]) -> None:
    _number, relation, rest = _relation(ctx, args)
    app = "--app" in rest
    changes: dict[str, Any] = {}
    if "--file" in rest:
        source = rest[rest.index("--file") + 1]
        if source == "-":
            text = ctx.stdin
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        try:  # Juju reads YAML; ops sends JSON, which is YAML, and this stand-in has no YAML parser
            loaded = json.loads(text or "{}")
        except ValueError:
            raise ToolError("ERROR the settings file is not valid JSON (the stand-in reads JSON only)") from None
        if not isinstance(loaded, dict):
            raise ToolError("ERROR expected a map of settings")
        changes.update(loaded)
    else:
        for word in _words(rest):
            key, sep, value = word.partition("=")
            if not sep:
                raise ToolError(f'ERROR expected "key=value", got "{word}"')
            changes[key] = value
    for key, value in changes.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ToolError(f"ERROR cannot set {key!r}: relation data keys and values must be strings")
    if app and not ctx.unit.get("leader", False):
        raise ToolError("ERROR cannot write relation settings: permission denied")
    bag = relation["ends"][ctx.app]["data"] if app else relation["units"][ctx.unit_name]
    for key, value in changes.items():
        if value == "":
            bag.pop(key, None)
        else:
            bag[key] = value


def relation_model_get(ctx: Context, args: list[str]) -> None:
    _relation(ctx, args)
    out(json.dumps({"uuid": ctx.state["model"]["uuid"]}))


def goal_state(ctx: Context, args: list[str]) -> None:
    since = "2025-01-01 00:00:00Z"
    units = {u: {"status": "active", "since": since} for u in ctx.state["units"] if u.split("/")[0] == ctx.app}
    relations: dict[str, dict[str, Any]] = {}
    for relation in ctx.state["relations"].values():
        if ctx.unit_name not in relation["units"]:
            continue
        entry = relations.setdefault(relation["ends"][ctx.app]["endpoint"], {})
        entry[_remote_app(ctx, relation)] = {"status": "joined", "since": since}
        for remote in visible_units(ctx.state, ctx.unit_name, relation):
            entry[remote] = {"status": "active", "since": since}
    out(json.dumps({"units": units, "relations": relations}))


# --- ports ------------------------------------------------------------------------------------


def _port(args: list[str], tool: str) -> str:
    words = [a for a in args if not a.startswith("-")]
    if "--endpoints" in args:  # its value is not the port
        words.remove(args[args.index("--endpoints") + 1])
    if len(words) != 1:
        raise ToolError(f"ERROR {tool}: expected exactly one port, port range or icmp")
    spec = words[0].lower()
    if spec == "icmp":
        return spec
    ports, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise ToolError(f'ERROR invalid protocol "{protocol}", expected "tcp", "udp", or "icmp"')
    low, _, high = ports.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        raise ToolError(f'ERROR invalid port or range "{ports}"')
    first, last = int(low), int(high or low)
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise ToolError(f'ERROR port range bounds must be between 1 and 65535, got "{ports}"')
    if first > last:
        raise ToolError(f'ERROR invalid port range "{ports}": the lower bound is greater than the upper one')
    return f"{first}/{protocol}" if first == last else f"{first}-{last}/{protocol}"


def open_port(ctx: Context, args: list[str]) -> None:
    port = _port(args, "open-port")
    if port not in ctx.unit["ports"]:
        ctx.unit["ports"].append(port)


def close_port(ctx: Context, args: list[str]) -> None:
    port = _port(args, "close-port")
    if port in ctx.unit["ports"]:
        ctx.unit["ports"].remove(port)


def opened_ports(ctx: Context, args: list[str]) -> None:
    if "--endpoints" in args:
        out(json.dumps([f"{port} (*)" for port in ctx.unit["ports"]]))
    else:
        out(json.dumps(list(ctx.unit["ports"])))


# --- users ------------------------------------------------------------------------------------


def getent(ctx: Context, args: list[str]) -> None:
    if len(args) != 2 or args[0] not in ("passwd", "group"):
        raise ToolError("getent: fake supports only: getent passwd|group NAME")
    database, name = args
    users = ctx.state["users"]
    if database == "passwd" and name in users:
        user = users[name]
        out(f"{name}:x:{user['uid']}:{user['gid']}::{user['home']}:{user['shell']}\n")
    elif database == "group" and name in users:
        out(f"{name}:x:{users[name]['gid']}:\n")
    else:
        raise ToolError("", code=2)


def useradd(ctx: Context, args: list[str]) -> None:
    state = ctx.state
    if not args or args[-1].startswith("-"):
        raise ToolError("useradd: no user name given", code=2)
    name = args[-1]
    if state["machine"].get("useradd_error"):  # a test's way to make it fail as it can on a real machine
        raise ToolError(state["machine"]["useradd_error"], code=1)
    if name in state["users"]:
        raise ToolError(f"useradd: user '{name}' already exists", code=9)
    options = dict(zip(args[:-1:2], args[1:-1:2], strict=False))
    state["users"][name] = {
        "uid": 990 + len(state["users"]),
        "gid": state["machine"]["gid"],
        "home": options.get("--home-dir", f"/home/{name}"),
        "shell": options.get("--shell", "/bin/sh"),
        "argv": args,
    }


# --- systemctl --------------------------------------------------------------------------------


def _unit_name(name: str) -> str:
    return name if "." in name else f"{name}.service"


def _unit_path(state: dict[str, Any], unit: str) -> str:
    return os.path.join(state["machine"]["root"], "etc/systemd/system", unit)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _parse_unit(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running process (not a zombie)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def _loaded(state: dict[str, Any], unit: str, verb: str) -> dict[str, Any]:
    """The unit as systemd knows it; a new unit file is loaded on demand, a changed one is not."""
    units: dict[str, dict[str, Any]] = state["systemd"]["units"]
    on_disk = _read(_unit_path(state, unit))
    known = units.get(unit)
    if known is None or known.get("definition") is None:
        if on_disk is None:
            raise ToolError(f"Failed to {verb} {unit}: Unit {unit} not found.", code=5)
        known = units.setdefault(unit, {"state": "inactive", "enabled": False, "pid": None})
        known["definition"] = on_disk
    elif on_disk != known["definition"]:
        state["systemd"]["warnings"].append(
            f"Warning: The unit file, source configuration file or drop-ins of {unit} changed on disk. "
            "Run 'systemctl daemon-reload' to reload units."
        )
    if known["state"] == "active" and not alive(known.get("pid")):
        known["state"], known["pid"] = "failed", None
    return known


def _environment(keys: dict[str, list[str]]) -> dict[str, str]:
    import shlex

    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for entry in keys.get("Environment", []):
        for pair in shlex.split(entry):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def _argv(state: dict[str, Any], command: str) -> list[str]:
    import shlex

    argv = shlex.split(command)
    if argv and argv[0] == "/usr/bin/python3":
        argv[0] = state["machine"]["python"]
    return argv


def _journal(state: dict[str, Any], unit: str) -> str:
    directory = os.path.join(state["machine"]["root"], "var/log")
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"{unit.removesuffix('.service')}.log")


def _start(state: dict[str, Any], unit: str, known: dict[str, Any]) -> None:
    import subprocess

    if known["state"] == "active":
        return
    keys = _parse_unit(known["definition"])
    user = (keys.get("User") or ["root"])[0]
    failed = (
        f"Job for {unit} failed because the control process exited with error code.\n"
        f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.'
    )
    if user != "root" and user not in state["users"]:
        known["state"] = "failed"
        raise ToolError(failed.replace("the control process exited with error code", "of unavailable resources"))
    env = _environment(keys)
    for directory in keys.get("StateDirectory", []):
        os.makedirs(os.path.join(state["machine"]["root"], "var/lib", directory), mode=0o750, exist_ok=True)
    with open(_journal(state, unit), "a", encoding="utf-8") as journal:
        for command in keys.get("ExecStartPre", []):
            journal.write(f"--- ExecStartPre={command}\n")
            journal.flush()
            proc = subprocess.run(
                _argv(state, command), env=env, stdout=journal, stderr=subprocess.STDOUT, timeout=60, check=False
            )
            if proc.returncode != 0:
                known["state"] = "failed"
                raise ToolError(failed)
        journal.write(f"--- ExecStart={keys['ExecStart'][0]}\n")
        journal.flush()
        daemon = subprocess.Popen(
            _argv(state, keys["ExecStart"][0]),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=journal,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd="/",
        )
    known["state"], known["pid"] = "active", daemon.pid
    state["systemd"]["started"].append(daemon.pid)


def stop_process(pid: int | None, timeout: float = 10) -> None:
    """SIGTERM ``pid``, then SIGKILL it when it has not exited within ``timeout`` seconds."""
    import signal
    import time

    if pid is None or not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def systemctl(ctx: Context, args: list[str]) -> None:
    state = ctx.state
    flags = [a for a in args if a.startswith("-")]
    words = _words(args)
    if not words:
        raise ToolError("fake systemctl: no verb")
    verb, units = words[0], [_unit_name(w) for w in words[1:]]
    quiet = "--quiet" in flags or "-q" in flags
    system = state["systemd"]
    if verb == "daemon-reload":
        for unit, known in list(system["units"].items()):
            known["definition"] = _read(_unit_path(state, unit))
            if known["definition"] is None and known["state"] != "active":
                del system["units"][unit]
        return
    if verb in ("is-active", "is-failed"):
        unit = units[0]
        known = system["units"].get(unit)
        current = "inactive"
        if known is not None:
            if known["state"] == "active" and not alive(known.get("pid")):
                known["state"], known["pid"] = "failed", None
            current = known["state"]
        if not quiet:
            out(current + "\n")
        wanted = "active" if verb == "is-active" else "failed"
        if current != wanted:
            raise ToolError("", code=3 if verb == "is-active" else 1)
        return
    if verb not in ("start", "stop", "restart", "reload", "enable", "disable"):
        raise ToolError(f"fake systemctl: unsupported verb {verb!r}")
    for unit in units:
        if verb in ("enable", "disable"):
            text = _read(_unit_path(state, unit))
            if text is None:
                raise ToolError(f"Failed to {verb} unit: Unit file {unit} does not exist.")
            if verb == "enable" and "WantedBy" not in _parse_unit(text):
                raise ToolError(f"The unit files have no installation config (WantedBy=, ...) in {unit}.")
            system["units"].setdefault(unit, {"state": "inactive", "pid": None, "definition": text})
            system["units"][unit]["enabled"] = verb == "enable"
            continue
        known = _loaded(state, unit, verb)
        if verb == "start":
            _start(state, unit, known)
        elif verb == "stop":
            stop_process(known.get("pid"))
            known["state"], known["pid"] = "inactive", None
        elif verb == "restart":
            stop_process(known.get("pid"))
            known["state"], known["pid"] = "inactive", None
            _start(state, unit, known)
        elif verb == "reload":
            if known["state"] != "active":
                raise ToolError(f"{unit} is not active, cannot reload.")
            if "ExecReload" not in _parse_unit(known["definition"]):
                raise ToolError(f"Failed to reload {unit}: Job type reload is not applicable for unit {unit}.")
            os.kill(known["pid"], 1)  # SIGHUP, as the unit's ExecReload does
            known["reloads"] = known.get("reloads", 0) + 1


TOOLS = {
    "action-set": action_set,
    "action-get": action_get,
    "action-log": action_log,
    "action-fail": action_fail,
    "config-get": config_get,
    "is-leader": is_leader,
    "juju-log": juju_log,
    "status-set": status_set,
    "application-version-set": application_version_set,
    "secret-get": secret_get,
    "relation-ids": relation_ids,
    "relation-list": relation_list,
    "relation-get": relation_get,
    "relation-set": relation_set,
    "relation-model-get": relation_model_get,
    "goal-state": goal_state,
    "open-port": open_port,
    "close-port": close_port,
    "opened-ports": opened_ports,
    "getent": getent,
    "useradd": useradd,
    "systemctl": systemctl,
}
HOOK_TOOLS = tuple(name for name in TOOLS if name not in MACHINE_TOOLS)


def call(state: dict[str, Any], unit: str, tool: str, args: list[str], environ: dict[str, str], stdin: str = "") -> int:
    """Run ``tool`` for ``unit`` on ``state`` (changed in place); returns its exit code, prints as the tool."""
    state["calls"].append([unit, tool, *args])
    state["longest_arg"] = max([state.get("longest_arg", 0), *(len(a.encode()) for a in args)])
    ctx = Context(state, unit, environ, stdin)
    if tool not in MACHINE_TOOLS and unit not in state["units"]:
        sys.stderr.write(f"ERROR unit {unit} is not deployed\n")
        return 1
    try:
        TOOLS[tool](ctx, args)
    except ToolError as err:
        if str(err):
            sys.stderr.write(f"{err}\n")
        return err.code
    return 0


def main(argv: list[str]) -> int:
    """``hooktools.py STATE UNIT TOOL [ARGS...]``, as the wrappers in a unit's ``bin/`` run it."""
    state_path, unit, tool, args = argv[1], argv[2], argv[3], argv[4:]
    stdin = sys.stdin.read() if tool == "relation-set" and "-" in args else ""
    with open(state_path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one tool at a time changes the state
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        code = call(state, unit, tool, args, dict(os.environ), stdin)
        save_state(state_path, state)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

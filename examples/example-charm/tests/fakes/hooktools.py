"""Stand-ins for Juju's hook tools, systemctl, getent and useradd, backed by one JSON state file.

Never imported by the tests: they put one small executable per tool on ``PATH`` (``/bin/sh`` wrappers
that ``exec`` Python on this module with the state file and the tool's name), so each tool is a real program — the
kernel applies its limits to the arguments (one argument over 128 KiB is refused with ``E2BIG``,
"Argument list too long", before the tool runs), and the charm cannot tell them from the real ones.

Each tool keeps the rule of the real one that a charm could get wrong:

- ``action-set``: ``key=value`` arguments; every dotted segment of a key matches
  ``^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$``; ``stdout``, ``stderr``, ``stdout-encoding`` and
  ``stderr-encoding`` are reserved; values are strings.
- ``action-get``/``action-log``/``action-fail``: only in an action; ``status-set``: only the
  four statuses a charm may set, the application's only by the leader; ``secret-get``: "not found"
  for an unknown secret, "permission denied" for one not granted; ``config-get``: what
  ``juju config`` set over the declared defaults.
- ``systemctl``: units are files in ``<root>/etc/systemd/system``; an unknown unit is an error (exit
  5), ``reload`` of a unit that is not active is an error, ``enable`` needs an ``[Install]`` section;
  a unit file changed on disk without ``daemon-reload`` is recorded as systemd's warning; ``start``
  checks ``User=`` exists, runs ``ExecStartPre=`` (a failure fails the start) and then
  ``ExecStart=`` as a real background process with the unit's ``Environment=`` (``/usr/bin/python3``
  replaced by the test's interpreter); ``reload`` sends it SIGHUP (the unit's ``ExecReload``) and
  ``stop`` SIGTERM. Its output goes to ``<root>/var/log/<unit>.log``, the journal's stand-in.
- ``getent passwd|group NAME``: exit 2 when there is no such entry; ``useradd``: exit 9 for a user
  that exists. New users get the test's own group id, so the charm can give them files.

Every call is appended to ``calls`` in the state file: ``[tool, *args]``, and the longest argument
seen is kept in ``longest_arg``.
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


class ToolError(Exception):
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


# --- Juju -------------------------------------------------------------------------------------


def _in_action(state: dict[str, Any], tool: str) -> dict[str, Any]:
    action: dict[str, Any] | None = state.get("action")
    if not action:
        raise ToolError(f"ERROR {tool} can only be used in an action")
    return action


def action_set(state: dict[str, Any], args: list[str]) -> None:
    action = _in_action(state, "action-set")
    import re

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
        assert isinstance(value, str)
        action["results"][key] = value


def action_get(state: dict[str, Any], args: list[str]) -> None:
    action = _in_action(state, "action-get")
    keys = [a for a in args if not a.startswith("--")]
    value: Any = action["params"]
    for key in keys[:1]:
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    out(json.dumps(value))


def action_log(state: dict[str, Any], args: list[str]) -> None:
    action = _in_action(state, "action-log")
    action["log"].append(" ".join(a for a in args if a != "--"))


def action_fail(state: dict[str, Any], args: list[str]) -> None:
    action = _in_action(state, "action-fail")
    message = " ".join(a for a in args if a != "--")
    action["failed"] = message or "action failed without reason given, check action for errors"


def config_get(state: dict[str, Any], args: list[str]) -> None:
    keys = [a for a in args if not a.startswith("--")]
    config = state["config"]
    out(json.dumps(config.get(keys[0]) if keys else config))


def is_leader(state: dict[str, Any], args: list[str]) -> None:
    out(json.dumps(bool(state.get("leader", True))))


def juju_log(state: dict[str, Any], args: list[str]) -> None:
    level = "INFO"
    if args[:1] == ["--log-level"]:
        level, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    state["logs"].append([level, " ".join(args)])


def status_set(state: dict[str, Any], args: list[str]) -> None:
    app = False
    rest = []
    for arg in args:
        if arg.startswith("--application"):
            app = arg.partition("=")[2] in ("", "True", "true")
        elif arg != "--":
            rest.append(arg)
    if not rest or rest[0] not in UNIT_STATUSES:
        raise ToolError(f'ERROR invalid status "{rest[0] if rest else ""}", expected one of {UNIT_STATUSES}')
    if app and not state.get("leader", True):
        raise ToolError("ERROR this unit is not the leader")
    state["status"]["app" if app else "unit"] = [rest[0], " ".join(rest[1:])]
    state["status_history"].append(["app" if app else "unit", rest[0], " ".join(rest[1:])])


def secret_get(state: dict[str, Any], args: list[str]) -> None:
    ids = [a for a in args if not a.startswith("--")]
    if not ids:
        raise ToolError("ERROR secret URI or label required")
    wanted = ids[0].rsplit("/", 1)[-1].removeprefix("secret:")
    for uri, secret in state["secrets"].items():
        if uri.removeprefix("secret:") == wanted:
            if not secret.get("granted", True):
                raise ToolError("ERROR permission denied")
            out(json.dumps(secret["content"]))
            return
    raise ToolError(f'ERROR secret "{wanted}" not found')


def relation_ids(state: dict[str, Any], args: list[str]) -> None:
    names = [a for a in args if not a.startswith("--")]
    if not names or names[0] not in state.get("endpoints", []):
        raise ToolError(f'ERROR no endpoint named "{names[0] if names else ""}"')
    out("[]")


def application_version_set(state: dict[str, Any], args: list[str]) -> None:
    state["workload_version"] = " ".join(a for a in args if a != "--")


# --- users ------------------------------------------------------------------------------------


def getent(state: dict[str, Any], args: list[str]) -> None:
    if len(args) != 2 or args[0] not in ("passwd", "group"):
        raise ToolError("getent: fake supports only: getent passwd|group NAME")
    database, name = args
    users = state["users"]
    if database == "passwd" and name in users:
        user = users[name]
        out(f"{name}:x:{user['uid']}:{user['gid']}::{user['home']}:{user['shell']}\n")
    elif database == "group" and name in users:
        out(f"{name}:x:{users[name]['gid']}:\n")
    else:
        raise ToolError("", code=2)


def useradd(state: dict[str, Any], args: list[str]) -> None:
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


def _alive(pid: int | None) -> bool:
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
    if known["state"] == "active" and not _alive(known.get("pid")):
        known["state"], known["pid"] = "failed", None
    return known


def _environment(state: dict[str, Any], keys: dict[str, list[str]]) -> dict[str, str]:
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
    env = _environment(state, keys)
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


def _stop(known: dict[str, Any]) -> None:
    import signal
    import time

    pid: int | None = known.get("pid")
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    known["state"], known["pid"] = "inactive", None


def systemctl(state: dict[str, Any], args: list[str]) -> None:
    flags = [a for a in args if a.startswith("-")]
    words = [a for a in args if not a.startswith("-")]
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
            if known["state"] == "active" and not _alive(known.get("pid")):
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
            _stop(known)
        elif verb == "restart":
            _stop(known)
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
    "secret-get": secret_get,
    "relation-ids": relation_ids,
    "application-version-set": application_version_set,
    "getent": getent,
    "useradd": useradd,
    "systemctl": systemctl,
}


def main(argv: list[str]) -> int:
    state_path, tool, args = argv[1], argv[2], argv[3:]
    with open(state_path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one tool at a time changes the state
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        state["calls"].append([tool, *args])
        state["longest_arg"] = max([state.get("longest_arg", 0), *(len(a.encode()) for a in args)])
        code = 0
        try:
            TOOLS[tool](state, args)
        except ToolError as err:
            if str(err):
                sys.stderr.write(f"{err}\n")
            code = err.code
        save_state(state_path, state)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

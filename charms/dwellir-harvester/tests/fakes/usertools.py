"""Stand-ins for ``getent`` and ``useradd``, backed by one JSON state file.

Never imported by the tests: ``conftest.install_user_tools`` puts one executable per tool on
``PATH`` that runs this file with the state file and the tool's name, so the charm runs a real
program, as on a unit. Each keeps the rules of the real one that a charm could get wrong:

- ``getent passwd NAME``: the entry, exit 2 when there is no such user (exit 1 for a bad call);
- ``useradd [options] NAME``: exit 9 when the user exists; with ``useradd_error`` in the state it
  fails (exit 1) with that message, as when ``/etc/passwd`` is locked. New users get the test's
  own group id, so the charm can give them files.

Every call is appended to ``calls`` in the state file.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    state_path, tool, args = argv[1], argv[2], argv[3:]
    with open(state_path, encoding="utf-8") as f:
        state = json.load(f)
    state["calls"].append([tool, *args])
    code = 0
    users = state["users"]
    if tool == "getent":
        if len(args) != 2 or args[0] != "passwd":
            sys.stderr.write("getent: usage: getent passwd NAME\n")
            code = 1
        elif args[1] not in users:
            code = 2
        else:
            user = users[args[1]]
            sys.stdout.write(f"{args[1]}:x:{user['uid']}:{user['gid']}::{user['home']}:{user['shell']}\n")
    elif tool == "useradd":
        name = args[-1] if args else ""
        options = {args[i]: args[i + 1] for i in range(len(args) - 2)}
        if state.get("useradd_error"):
            sys.stderr.write(state["useradd_error"] + "\n")
            code = 1
        elif not name or name.startswith("-"):
            sys.stderr.write("useradd: no user name given\n")
            code = 2
        elif name in users:
            sys.stderr.write(f"useradd: user '{name}' already exists\n")
            code = 9
        else:
            home = options.get("--home-dir", f"/home/{name}")
            users[name] = {"uid": 995, "gid": os.getgid(), "home": home, "shell": options.get("--shell", "/bin/sh")}
    else:
        sys.stderr.write(f"{tool}: not a stand-in\n")
        code = 127
    tmp = f"{state_path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, state_path)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

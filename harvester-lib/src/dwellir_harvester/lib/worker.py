"""A collector worker: ``python -m dwellir_harvester.lib.worker --fd N``.

The harvester starts one (with the interpreter and import path a collector needs) and talks to it
over the socket ``N`` in the protocol of ``dwellir_harvester.lib._protocol``: it discovers
collectors, runs them with the SDK's engine and streams each entry back as soon as it is done. A
worker is disposable: the harvester kills it (its whole process group) when a collector outlives its
timeout or the worker grows past its memory limit, and a crash in it (a segfault, ``os._exit``)
costs only the collectors it was running.

It is part of the SDK so that every environment with the SDK (a packed charm's ``venv/`` too) can
start one. Nothing here is an API: run it only through ``dwellir_harvester.lib.isolation``.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ._collector import GenericCollector, check_options
from ._engine import Outcome, Prepared, make_entry, now_rfc3339, run_prepared, still_running
from ._errors import CollectorError
from ._loader import CollectorSpec, Progress, check_plugin_dir, discover_specs
from ._protocol import MAX_ENTRY, PROTOCOL, Channel, ProtocolError, encode
from ._version import __version__
from .limits import describe_error, one_line, seconds

if TYPE_CHECKING:
    import argparse

logger = logging.getLogger(__name__)


class _Forward(logging.Handler):
    """Sends log records to the parent, which emits them under the same logger name."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = one_line(record.getMessage())
            self.channel.send({"type": "log", "level": record.levelno, "name": record.name, "message": message})
        except Exception:  # noqa: BLE001 - a log line never takes the worker down
            pass


def _describe(spec: CollectorSpec) -> dict[str, Any]:
    import inspect

    meta = spec.checked_meta()
    parameters: list[list[Any]] = []
    if spec.cls.__init__ is not object.__init__:
        try:
            signature = inspect.signature(spec.cls)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            parameters = [[p.name, p.kind.name, p.default is p.empty] for p in signature.parameters.values()]
        else:
            parameters = [["kwargs", "VAR_KEYWORD", False]]
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "source": spec.source,
        "version": meta.version,
        "collector_type": meta.collector_type,
        "timeout": meta.timeout,
        "parameters": parameters,
    }


class Worker:
    """The worker's side of the protocol: what it discovered, and serving requests."""

    def __init__(self, channel: Channel, memory_mb: int | None) -> None:
        self.channel = channel
        self.memory_mb = memory_mb
        self.specs: dict[tuple[str, str], CollectorSpec] = {}

    def serve(self) -> int:
        """Say hello, then answer requests until the harvester says exit or goes away."""
        self.channel.send({"type": "hello", "protocol": list(PROTOCOL), "sdk": __version__, "pid": os.getpid()})
        while True:
            message = self.channel.receive()
            if message is None or message["type"] == "exit":
                return 0
            try:
                if message["type"] == "discover":
                    self.discover(message)
                elif message["type"] == "settings":  # 1.2: for a worker started before they were known
                    self.memory_mb = message.get("memory_mb") or None
                    _limit(self.memory_mb, int(message.get("nice") or 0))
                    _set_level(str(message.get("log_level") or "WARNING"))
                elif message["type"] == "run":
                    self.run(message)
                else:
                    self.channel.send(
                        {"type": "error", "message": f"unknown request {one_line(message['type'], 40)!r}"}
                    )
            except (KeyError, TypeError, ValueError) as err:
                self.channel.send({"type": "error", "message": f"a malformed request: {describe_error(err)}"})

    def discover(self, message: dict[str, Any]) -> None:
        """Discover the collectors the message asks for and describe them to the harvester."""
        problems: list[dict[str, str]] = []
        directories = []
        for path in message["paths"]:
            try:
                directories.append(check_plugin_dir(path))
            except CollectorError as err:
                problems.append({"where": str(path), "problem": one_line(err)})

        def importing(where: str) -> None:
            self.channel.send({"type": "importing", "where": where})

        skip = {str(k): str(v) for k, v in dict(message.get("skip") or {}).items()}
        only = message.get("only")
        specs, found_problems = discover_specs(
            directories,
            entry_points=bool(message.get("entry_points", True)),
            builtin_distribution=message.get("builtin_distribution"),
            progress=Progress(importing, skip, frozenset(map(str, only)) if isinstance(only, list) else None),
        )
        self.specs = {spec.identity: spec for spec in specs}
        problems += [{"where": p.where, "problem": p.message} for p in found_problems]
        self.channel.send({"type": "discovered", "specs": [_describe(s) for s in specs], "problems": problems})

    def run(self, message: dict[str, Any]) -> None:
        """Run the requested collectors, sending each entry as soon as it is done, then ``done``."""
        run_id = message["id"]
        validate = bool(message.get("validate", True))
        prepared: list[Prepared] = []
        for request in message["requests"]:
            key = str(request["key"])
            spec = self.specs.get((str(request["source"]), str(request["name"])))
            if spec is None:
                self._send_failed(run_id, key, request, "the collector is not found in its worker")
                continue
            options = request.get("options") or {}
            try:
                if not isinstance(options, dict):
                    raise TypeError(f"options must be a mapping, not {type(options).__name__}")
                check_options(spec.cls, options)
                timeout = seconds(request["timeout"], f"timeout for collector {key!r}")
            except (CollectorError, TypeError, ValueError) as err:
                self._send_failed(run_id, key, request, one_line(err), spec)
                continue
            prepared.append(Prepared(key, spec, options, timeout))
        for key, entry in run_prepared(prepared, validate):
            self._send_entry(run_id, key, entry)
        identities = {request.spec.identity: request.key for request in prepared}
        stragglers = [identities[identity] for identity in still_running(identities)]
        self.channel.send({"type": "done", "id": run_id, "stragglers": stragglers})

    def _send_failed(
        self, run_id: Any, key: str, request: dict[str, Any], message: str, spec: CollectorSpec | None = None
    ) -> None:
        if spec is None:
            spec = CollectorSpec(str(request.get("name")), _Missing, "unknown", str(request.get("source")))
        entry = make_entry(spec, Outcome("failed", {}, [message]), now_rfc3339(), 0.0, key)
        self._send_entry(run_id, key, entry)

    def _send_entry(self, run_id: Any, key: str, entry: Any) -> None:
        meta = entry["meta"]
        if self.memory_mb and any(e.startswith("MemoryError") for e in meta["errors"]):
            meta["errors"] = [
                f"{e} (the worker's address space is limited to {self.memory_mb} MB)"
                if e.startswith("MemoryError")
                else e
                for e in meta["errors"]
            ]
        message = {"type": "entry", "id": run_id, "key": key, "entry": entry}
        try:
            size = len(encode(message))
        except (ValueError, TypeError) as err:  # the engine made it JSON already; this is the last guard
            size, reason = -1, describe_error(err)
        else:
            reason = f"{size} bytes of data, more than the {MAX_ENTRY} a worker sends"
        if size < 0 or size > MAX_ENTRY:
            meta["status"], meta["errors"], entry["data"] = "failed", [*meta["errors"], reason][-5:], {}
        self.channel.send(message)


class _Missing(GenericCollector):
    """Stands for a collector the worker does not know, so that its failed entry can be built."""

    NAME = "unknown"

    def collect(self) -> dict[str, Any]:
        """Never called."""
        return {}


def _follow_parent() -> None:
    """End this worker, and whatever its collectors started, as soon as the harvester that started it is gone.

    A harvester killed with SIGKILL cannot stop its workers; each notices that it has a new parent
    within half a second. (Not ``PR_SET_PDEATHSIG``: it fires when the parent *thread* that started
    the worker ends, and the harvester starts workers from short-lived threads.)
    """
    import signal
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _limit(memory_mb: int | None, nice: int) -> None:
    import resource

    if memory_mb:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass


def _parser() -> argparse.ArgumentParser:
    import argparse  # only a worker started as a program needs it

    parser = argparse.ArgumentParser(prog="python -m dwellir_harvester.lib.worker", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the connected socket to the harvester")
    parser.add_argument("--memory-mb", type=int, default=0, help="the address-space limit in MiB (0: none)")
    parser.add_argument("--nice", type=int, default=0, help="how much to lower the worker's priority")
    parser.add_argument("--log-level", default="WARNING", help="the lowest level of records sent to the harvester")
    return parser


def _set_level(log_level: str) -> None:
    level = logging.getLevelName(log_level.upper())  # a number for a level's name
    logging.getLogger().setLevel(level if isinstance(level, int) else logging.WARNING)


def _warm(distribution: str) -> None:
    """Import what discovery will need, before it is asked for.

    That is the entry-point scan, ``distribution``'s own entry points, and ``inspect`` (with which
    discovery describes the collectors' parameters).
    """
    import inspect  # noqa: F401 - imported for ``_describe``, which would import it on the clock
    from importlib.metadata import entry_points

    from ._loader import ENTRY_POINT_GROUP, _canonical

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None and _canonical(str(ep.dist.name)) == _canonical(distribution):
            try:
                importlib.import_module(ep.module)
            except Exception:  # noqa: BLE001 - discovery imports it again and reports what is wrong
                pass


def serve(fd: int, memory_mb: int | None, nice: int, log_level: str, warm_distribution: str | None = None) -> int:
    """Be a worker on the connected socket ``fd`` until the harvester says exit or goes away.

    Used by ``main`` in a new interpreter, and by the harvester in a process it forked (with
    ``warm_distribution``, before it knows what it will discover: see ``_prefork``).
    """
    # The protocol's socket is the only way out: what plugins print goes to stderr, stdin is empty.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _follow_parent()
    _limit(memory_mb, nice)
    channel = Channel(socket.socket(fileno=fd))
    root = logging.getLogger()
    root.handlers[:] = [_Forward(channel)]
    _set_level(log_level)
    if warm_distribution:
        _warm(warm_distribution)
    # The harvester logs each entry's trouble when it rebuilds the entry: once, not twice.
    logging.getLogger("dwellir_harvester.lib._engine").setLevel(logging.ERROR)
    try:
        return Worker(channel, memory_mb).serve()
    except (OSError, ProtocolError):  # the harvester went away or spoke nonsense: nothing to report to
        return 3


def become_worker(
    sock: socket.socket, memory_mb: int | None, nice: int, log_level: str, warm_distribution: str | None = None
) -> NoReturn:
    """In a child just forked from the harvester: be a worker on ``sock``, then exit the process.

    The child leaves the harvester's process group (it is killed as a group of its own) and never
    returns to the caller's code, whatever happens.
    """
    code = 70
    try:
        os.setsid()
        os.environ["MALLOC_ARENA_MAX"] = "2"  # glibc's per-thread arenas would eat the address-space limit
        code = serve(sock.detach(), memory_mb, nice, log_level, warm_distribution=warm_distribution)
    except BaseException:  # noqa: BLE001 - nothing of the harvester's may run in the child
        pass
    finally:
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the harvester on the socket given by ``--fd`` until it says exit or goes away."""
    args = _parser().parse_args(argv)
    return serve(args.fd, args.memory_mb or None, args.nice, str(args.log_level))


if __name__ == "__main__":
    sys.exit(main())

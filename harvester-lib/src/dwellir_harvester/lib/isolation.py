"""Run collectors in worker processes the harvester can kill.

::

    from dwellir_harvester.lib.isolation import WorkerPool, WorkerSource

    with WorkerPool(memory_mb=1024) as pool:
        registry = pool.discover([WorkerSource("main", paths=("/srv/plugins",))])
        document = pool.harvest(["peers"], registry=registry, timeout=5)

A collector runs in a worker (``python -m dwellir_harvester.lib.worker``) started with the
interpreter and import path its source needs, never in the harvester's own interpreter. The
harvester never waits on a worker past the collectors' timeouts:

- a collector past its timeout is ``timeout``; a worker that still runs one afterwards, or stops
  answering (a collector holding the GIL), is killed with its whole process group and replaced;
- a worker that dies (a signal, ``os._exit``, the memory limit) loses only the collectors it had
  not reported; when that is more than one, each runs again at once, alone, within what is left
  of its timeout, so a crash costs its neighbours no result. The culprits (the one lost, or those
  that take their worker down again; all of them when none does) are *quarantined*: from then on
  each runs alone in a worker of its own, so it cannot take the others down again. What a
  worker killed for not answering took down runs again too, in a fresh worker;
- a worker is limited in memory (its resident size, checked by the harvester, and its address space,
  ``RLIMIT_AS``, capped at twice that plus 512 MB as a backstop) and runs at a lower priority
  (``nice``), so collectors never starve the node they describe;
- discovery runs in the worker too, under a timeout per plugin import: a plugin whose import hangs
  or crashes becomes a problem naming its file, and discovery goes on without it.

Workers are kept between harvests (a long-running harvester reuses them) until they are recycled
after a crash, a timeout or growing past three quarters of the memory limit. Every child is reaped.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple, TypeVar

from ._collector import GenericCollector
from ._engine import (
    Outcome,
    Prepared,
    Selection,
    Timeouts,
    harvest_prepared,
    make_entry,
    now_rfc3339,
    prepare,
    run_prepared,
)
from ._errors import CollectorFailedError
from ._loader import CollectorSpec, LoadProblem, Registry, _read_meta
from ._prefork import Prestarted
from ._protocol import Channel, ProtocolError, check_hello
from ._schema import SchemaLike
from ._types import STATUSES, Document, Entry, Problem
from ._version import __version__
from .limits import NotJSONError, describe_error, json_data, one_line

__all__ = [
    "DEFAULT_MEMORY_MB",
    "WorkerError",
    "WorkerPool",
    "WorkerSource",
]

logger = logging.getLogger(__name__)

#: A worker's memory limit unless told otherwise: generous, but finite.
DEFAULT_MEMORY_MB = 1024
#: How much lower than the harvester's a worker's scheduling priority is.
DEFAULT_NICE = 10
#: Seconds a worker may take to start and say hello.
START_TIMEOUT = 15.0
#: Seconds one plugin import may take in a worker's discovery.
IMPORT_TIMEOUT = 30.0
#: Seconds past the longest collector timeout before a worker that does not answer is killed.
GRACE = 2.0
#: A worker whose resident size passes this share of its memory limit is replaced after a harvest.
HIGH_WATER = 0.75
#: How often (seconds) the harvester checks a busy worker's resident size.
POLL = 0.25
#: The fewest seconds of its timeout a collector a worker lost must have left to be run again.
MIN_RETRY = 1.0
_MAX_DISCOVERY_ATTEMPTS = 20


class WorkerError(Exception):
    """A worker that could not be started or used; the message says why, in one line."""


class WorkerSource(NamedTuple):
    """A group of collectors and the worker they need.

    Attributes:
        name: where the group comes from (``main``, or the drop-in file): what problems name.
        paths: plugin directories to discover.
        entry_points: discover installed entry points too.
        builtin_distribution: the distribution whose entry points are the built-ins (see
            ``load_collectors``).
        python: the interpreter to start the worker with; None: the harvester's own.
        python_path: directories put first on the worker's import path (``PYTHONPATH``).
    """

    name: str
    paths: tuple[str, ...] = ()
    entry_points: bool = True
    builtin_distribution: str | None = None
    python: str | None = None
    python_path: tuple[str, ...] = ()


# --- one worker process -------------------------------------------------------------------------


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Forked:
    """What ``subprocess.Popen`` offers for a worker forked from this process (``pid``, ``poll``, ``wait``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it is gone either way
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005  # where the end cannot be waited for (no pidfd), polled as subprocess does
        while self.poll() is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            if not self._until_ended(remaining):
                time.sleep(delay if remaining is None else min(delay, remaining))
                delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def _until_ended(self, timeout: float | None) -> bool:
        """Sleep until the process ends or ``timeout`` passes, where Linux's pidfd allows it."""
        import select

        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # not Linux 5.3 or later, or already reaped
            return False
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        return True


def _may_fork(source: WorkerSource, fork: bool) -> bool:
    """Whether a worker for ``source`` may be forked from this process rather than started afresh.

    Forking skips the interpreter's start-up and the SDK's imports (what a one-shot ``collect``
    spends most of its time on), but is safe only with this very interpreter and while this
    process runs no other thread (a lock another thread holds would stay held in the child).
    """
    return (
        fork
        and source.python is None
        and not source.python_path
        and hasattr(os, "fork")
        and threading.active_count() == 1
    )


class _Process:
    """One running worker: its process, its channel, and how it ended."""

    def __init__(
        self,
        source: WorkerSource,
        memory_mb: int | None,
        nice: int,
        log_level: str,
        *,
        fork: bool = False,
        prestarted: Prestarted | None = None,
    ) -> None:
        self.source = source
        self.memory_mb = memory_mb
        python = source.python or sys.executable
        if prestarted is not None:  # forked before its settings were known: it is told them now
            pid, sock = prestarted.adopt()
            self.proc: subprocess.Popen[bytes] | _Forked = _Forked(pid)
            self.channel = Channel(sock)
            self._hello(python)
            address_space = memory_mb * 2 + 512 if memory_mb else None
            self.send({"type": "settings", "memory_mb": address_space, "nice": nice, "log_level": log_level})
            return
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["MALLOC_ARENA_MAX"] = "2"  # glibc's per-thread arenas would eat the address-space limit
        if source.python_path:
            env["PYTHONPATH"] = os.pathsep.join(source.python_path)
        flags = []
        if source.python is None:  # the harvester's own interpreter: started the way it was
            flags += ["-S"] if sys.flags.no_site else []
            flags += ["-s"] if sys.flags.no_user_site else []
            flags += ["-E"] if sys.flags.ignore_environment and not source.python_path else []
        command = [python, *flags, "-m", "dwellir_harvester.lib.worker", "--fd", str(child.fileno())]
        # The resident size is checked against memory_mb here; the address space (which counts thread
        # stacks and mapped libraries too) is capped further out, as a backstop.
        address_space = memory_mb * 2 + 512 if memory_mb else 0
        command += ["--memory-mb", str(address_space), "--nice", str(nice), "--log-level", log_level]
        try:
            if _may_fork(source, fork):
                from . import worker  # in the parent: an import that failed in the child would go unseen

                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    parent.close()
                    worker.become_worker(child, address_space or None, nice, log_level)
                self.proc = _Forked(pid)
            else:
                self.proc = subprocess.Popen(
                    command, pass_fds=[child.fileno()], start_new_session=True, stdin=subprocess.DEVNULL, env=env
                )
        except OSError as err:
            parent.close()
            raise WorkerError(f"cannot start a worker with {python}: {(err.strerror or str(err)).lower()}") from None
        finally:
            child.close()
        self.channel = Channel(parent)
        self._hello(python)

    def _hello(self, python: str) -> None:
        """Wait for the worker's hello and check its protocol version; kill it and raise when it will not do."""
        try:
            hello = self.receive(START_TIMEOUT)
            if hello is None:
                raise WorkerError(f"the worker ({python}) {self.ended()} before it said hello")
            check_hello(hello, __version__)
        except TimeoutError:
            self.kill()
            raise WorkerError(f"the worker ({python}) did not start within {START_TIMEOUT:g} s") from None
        except ProtocolError as err:
            self.kill()
            raise WorkerError(f"the worker ({python}) cannot be used: {err}") from None
        except WorkerError:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except OSError as err:
            raise WorkerError(f"the worker {self.ended()}: {describe_error(err)}") from None

    def receive(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message that is not a log record (those are emitted here), or None at the end."""
        while True:
            try:
                message = self.channel.receive(timeout)
            except TimeoutError:
                raise
            except OSError:  # reset by a worker that died with our request unread: the same as its end
                return None
            if message is None or message["type"] != "log":
                return message
            _emit(message, self.source.name)

    def rss_mb(self) -> float | None:
        """The worker's resident size in MiB, read from /proc; None where that cannot be read."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def ended(self) -> str:
        """How the worker ended (waiting a moment for its exit status): for messages."""
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            return f"was killed by signal {-code} ({_signal_name(-code)})"
        return f"exited with status {code}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group), and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            logger.error("worker %s did not end after SIGKILL", self.pid)
        self.channel.close()

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within a second."""
        try:
            self.channel.send({"type": "exit"})
            self.proc.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _emit(message: Mapping[str, Any], source: str) -> None:
    level = message.get("level")
    name = message.get("name")
    logging.getLogger(name if isinstance(name, str) and name else "dwellir_harvester.worker").log(
        level if isinstance(level, int) and 0 < level <= 50 else logging.WARNING,
        "%s",
        one_line(message.get("message", "")),
    )


# --- stand-ins for collectors that live in a worker --------------------------------------------------


class _InWorker(GenericCollector):
    """Stands in the harvester for a collector that lives in a worker.

    It has the collector's name, attributes and constructor signature (so options are checked
    here), never its code.
    """

    def collect(self) -> dict[str, Any]:
        """Never called: the collector runs in its worker."""
        raise CollectorFailedError("this collector runs in a worker")


_KINDS = {
    "POSITIONAL_ONLY": inspect.Parameter.POSITIONAL_ONLY,
    "POSITIONAL_OR_KEYWORD": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "VAR_POSITIONAL": inspect.Parameter.VAR_POSITIONAL,
    "KEYWORD_ONLY": inspect.Parameter.KEYWORD_ONLY,
    "VAR_KEYWORD": inspect.Parameter.VAR_KEYWORD,
}


def _stand_in(described: Mapping[str, Any]) -> CollectorSpec:
    """A spec whose class stands for the described collector; ``ValueError`` if the description is bad."""
    name, source, namespace = described["name"], described["source"], described["namespace"]
    if not all(isinstance(v, str) for v in (name, source, namespace)):
        raise ValueError("a collector description without a name, source or namespace")
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for parameter, kind, required in described.get("parameters") or []:
        default = inspect.Parameter.empty if required or kind.startswith("VAR_") else None
        parameters.append(inspect.Parameter(str(parameter), _KINDS[kind], default=default))

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        raise CollectorFailedError("this collector runs in a worker")

    __init__.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    attributes = {
        "NAME": name,
        "VERSION": described.get("version"),
        "COLLECTOR_TYPE": described.get("collector_type"),
        "TIMEOUT": described.get("timeout"),
        "__init__": __init__,
        "__module__": __name__,
        "__doc__": f"{name} from {source}, in a worker",
    }
    cls = type(f"InWorker[{name}]", (_InWorker,), attributes)
    meta = _read_meta(cls)
    if isinstance(meta, str):
        raise ValueError(f"collector {name!r} {meta}")
    return CollectorSpec(name, cls, namespace, source, meta=meta)


# --- the pool -------------------------------------------------------------------------------------


class _Group(NamedTuple):
    """The collectors of one harvest that run in one worker."""

    worker_key: str
    source: WorkerSource
    requests: list[Prepared]


class _Lost(NamedTuple):
    """The collectors a worker lost when it died or was killed, and what its end said.

    ``blame``: ``none`` (another collector made the worker stop answering), ``all`` (the one
    collector lost is to blame) or ``unknown``.
    """

    requests: list[Prepared]
    message: str
    blame: str
    started: float
    collection_time: str

    @property
    def reason(self) -> str:
        """What ended the worker, without the "while this collector was running"."""
        return self.message.split(" while this collector was running")[0]

    def entry(self, request: Prepared) -> Entry:
        """The failed entry of ``request``, saying what its worker's end said."""
        return _unrun_entry(request, "failed", self.message, self.collection_time)


def _unrun_entry(request: Prepared, status: Any, message: str, collection_time: str) -> Entry:
    """The entry of a request its worker did not report: ``status``, and ``message`` saying why."""
    return make_entry(request.spec, Outcome(status, {}, [message]), collection_time, 0.0, request.key)


def _alone(source: WorkerSource, request: Prepared) -> _Group:
    """The group that runs ``request`` alone, in a worker of its own for ``source``."""
    identity_source, name = request.spec.identity
    return _Group(f"alone:{source.name}:{identity_source}::{name}", source, [request])


_T = TypeVar("_T")


def _concurrently(calls: Sequence[tuple[str, Callable[[], _T]]]) -> list[_T]:
    """Run each ``(thread name, call)`` in a thread of its own; their results once all have returned."""
    results: list[_T] = []
    threads = [
        threading.Thread(target=lambda call=call: results.append(call()), name=name, daemon=True)
        for name, call in calls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class WorkerPool:
    """Workers for collector sources: discovery and harvests in processes the harvester can kill.

    Args:
        memory_mb: each worker's memory limit in MiB (None: none).
        nice: how much lower each worker's scheduling priority is.
        log_level: the lowest level of the workers' log records to emit here.
        import_timeout: seconds one plugin import may take during discovery.
        fork: start a worker of the harvester's own interpreter by forking this process while it
            runs a single thread, which skips the interpreter's start-up (a one-shot command's
            cost); otherwise, and for other interpreters, a worker is a new process.
        prestarted: a worker forked earlier (``dwellir_harvester.lib._prefork``), adopted for the
            first source of the harvester's own interpreter; discarded at ``close()`` if unused.
    """

    def __init__(
        self,
        *,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        nice: int = DEFAULT_NICE,
        log_level: str = "WARNING",
        import_timeout: float = IMPORT_TIMEOUT,
        fork: bool = False,
        prestarted: Prestarted | None = None,
    ) -> None:
        self.memory_mb, self.nice, self.log_level, self.import_timeout = memory_mb, nice, log_level, import_timeout
        self.fork = fork
        self._prestarted = prestarted
        #: Collectors (by identity) that killed their worker: each runs alone from then on.
        self.quarantined: set[tuple[str, str]] = set()
        self._closing = False  # close() stops the workers: a collector whose worker it stops is not to blame
        self._sources: dict[str, WorkerSource] = {}
        self._owner: dict[tuple[str, str], str] = {}
        self._skips: dict[str, dict[str, str]] = {}
        self._workers: dict[str, _Process] = {}
        self._lock = threading.Lock()
        self._run_ids = iter(range(1, 1 << 62))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (asking first, then killing) and reap them.

        A harvest still running on another thread reports its unfinished collectors as failed
        ("the harvester is stopping"), and quarantines none of them.
        """
        self._closing = True
        prestarted, self._prestarted = self._prestarted, None
        if prestarted is not None:
            prestarted.discard()
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for tests and metrics)."""
        with self._lock:
            return [w.pid for w in self._workers.values() if w.alive()]

    # --- discovery --------------------------------------------------------------------------------

    def discover(self, sources: Iterable[WorkerSource]) -> Registry:
        """Discover every source in a worker of its own and merge what they found, in order.

        A source whose worker cannot start or be used is a problem naming the source; a plugin
        whose import hangs or crashes its worker is a problem naming the plugin, and discovery of
        that source goes on without it.
        """
        specs: list[CollectorSpec] = []
        problems: list[LoadProblem] = []
        for source in sources:
            self._sources[source.name] = source
            try:
                found, trouble = self._discover(source)
            except WorkerError as err:
                problems.append(LoadProblem(source.name, one_line(err)))
                logger.warning("collector source %s: %s", source.name, one_line(err))
                continue
            problems += trouble
            for spec in found:
                self._owner[spec.identity] = source.name
            specs += found
        return Registry(specs, problems)

    def _discover(self, source: WorkerSource) -> tuple[list[CollectorSpec], list[LoadProblem]]:
        skip = dict(self._skips.get(source.name, {}))
        for _ in range(_MAX_DISCOVERY_ATTEMPTS):
            self._retire(source.name)
            prestarted = None
            if self._prestarted is not None and source.python is None and not source.python_path:
                prestarted, self._prestarted = self._prestarted, None
            worker = _Process(source, self.memory_mb, self.nice, self.log_level, fork=self.fork, prestarted=prestarted)
            answer = self._discovery_answer(worker, source, skip)
            if answer is None:
                continue  # a plugin was left out: try again without it
            self._skips[source.name] = skip
            with self._lock:
                self._workers[source.name] = worker
            specs = []
            problems = [LoadProblem(str(p.get("where")), one_line(p.get("problem"))) for p in answer["problems"]]
            for described in answer["specs"]:
                try:
                    specs.append(_stand_in(described))
                except (KeyError, TypeError, ValueError) as err:
                    problems.append(LoadProblem(source.name, f"the worker described a collector badly: {err}"))
            for problem in problems:
                logger.warning("skipping collector plugin %s: %s", problem.where, problem.message)
            return specs, problems
        raise WorkerError(f"discovery left out {len(skip)} plugins and still did not finish; giving up")

    def _discovery_answer(
        self, worker: _Process, source: WorkerSource, skip: dict[str, str], only: str | None = None
    ) -> dict[str, Any] | None:
        """The worker's ``discovered`` message, or None after adding the plugin that broke it to ``skip``.

        With ``only`` (a collector's source) the worker imports that source alone.
        """
        message: dict[str, Any] = {
            "type": "discover",
            "paths": list(source.paths),
            "entry_points": source.entry_points,
            "builtin_distribution": source.builtin_distribution,
            "skip": skip,
        }
        if only is not None:
            message["only"] = [only]
        worker.send(message)
        importing: str | None = None
        while True:
            try:
                answer = worker.receive(self.import_timeout)
            except TimeoutError:
                worker.kill()
                if importing is None:
                    raise WorkerError(f"discovery did not answer within {self.import_timeout:g} s") from None
                skip[importing] = f"importing it did not finish within {self.import_timeout:g} s (left out)"
                logger.warning("collector plugin %s: %s", importing, skip[importing])
                return None
            except ProtocolError as err:
                worker.kill()
                raise WorkerError(f"the worker broke the protocol: {err}") from None
            if answer is None:
                cause = worker.ended()
                worker.kill()
                if importing is None:
                    raise WorkerError(f"the worker {cause} during discovery")
                skip[importing] = f"importing it ended the worker: it {cause} (left out)"
                logger.warning("collector plugin %s: %s", importing, skip[importing])
                return None
            if answer["type"] == "importing":
                importing = str(answer.get("where"))
            elif answer["type"] == "discovered":
                if not isinstance(answer.get("specs"), list) or not isinstance(answer.get("problems"), list):
                    worker.kill()
                    raise WorkerError("the worker sent a malformed discovery")
                return answer
            elif answer["type"] == "error":
                worker.kill()
                raise WorkerError(f"the worker could not discover: {one_line(answer.get('message'))}")

    def _retire(self, key: str) -> None:
        with self._lock:
            worker = self._workers.pop(key, None)
        if worker is not None:
            worker.close()

    # --- harvests -----------------------------------------------------------------------------------

    def harvest(
        self,
        selection: Selection,
        *,
        registry: Registry,
        exclude: Iterable[str] = (),
        options: Mapping[str, Mapping[str, Any]] | None = None,
        timeout: Timeouts = None,
        validate: bool = True,
        schema: SchemaLike = None,
        harvester_version: str | None = None,
        host_collector: str | None = None,
        problems: Iterable[Problem] | None = None,
    ) -> Document:
        """Run the selected collectors in their workers, concurrently, and return the document.

        Takes the arguments of ``dwellir_harvester.lib.harvest`` and raises what it raises, before
        anything runs. Collectors of ``registry`` that this pool discovered run in their workers;
        any other spec in ``selection`` (a class or a spec the caller made itself, its own code)
        runs in this process, in a thread, as ``harvest`` would run it.
        """
        prepared = prepare(selection, registry=registry, exclude=exclude, options=options, timeout=timeout)
        return harvest_prepared(
            prepared,
            self._run_all,
            harvester_version=harvester_version,
            host_collector=host_collector,
            problems=problems,
            validate=validate,
            schema=schema,
        )

    def _run_all(self, prepared: Sequence[Prepared], validate: bool) -> Iterator[tuple[str, Entry]]:
        """Run each group of requests in its worker (and specs the pool did not discover here), concurrently."""
        calls: list[tuple[str, Callable[[], dict[str, Entry]]]] = []
        local = [request for request in prepared if request.spec.identity not in self._owner]
        if local:
            calls.append(("local-run", lambda: dict(run_prepared(local, validate))))
        owned = [request for request in prepared if request.spec.identity in self._owner]
        for group in self._groups(owned):
            calls.append((f"worker-run:{group.worker_key}", partial(self._run_group, group, validate)))
        for found in _concurrently(calls):
            yield from found.items()

    def _groups(self, prepared: Sequence[Prepared]) -> Iterator[_Group]:
        shared: dict[str, list[Prepared]] = {}
        for request in prepared:
            owner = self._owner[request.spec.identity]
            if request.spec.identity in self.quarantined:
                yield _alone(self._sources[owner], request)
            else:
                shared.setdefault(owner, []).append(request)
        for owner, requests in shared.items():
            yield _Group(owner, self._sources[owner], requests)

    def _worker_for(self, group: _Group) -> _Process:
        with self._lock:
            worker = self._workers.get(group.worker_key)
        if worker is not None and worker.alive():
            return worker
        if worker is not None:
            self._retire(group.worker_key)
        if group.worker_key == group.source.name:
            self._discover(group.source)  # a fresh worker, knowing the same collectors
            with self._lock:
                return self._workers[group.worker_key]
        worker = _Process(group.source, self.memory_mb, self.nice, self.log_level, fork=self.fork)
        skip = dict(self._skips.get(group.source.name, {}))
        answer = self._discovery_answer(worker, group.source, skip, only=group.requests[0].spec.source)
        if answer is None:
            raise WorkerError("its worker could not discover the collector again")
        with self._lock:
            self._workers[group.worker_key] = worker
        return worker

    def _run_group(self, group: _Group, validate: bool) -> dict[str, Entry]:
        """Run a group in its worker; run again what a worker that died or was killed lost."""
        entries, lost = self._run_in_worker(group, validate)
        if lost is not None:
            entries.update(self._run_again(group, lost, validate))
        return entries

    def _run_in_worker(self, group: _Group, validate: bool) -> tuple[dict[str, Entry], _Lost | None]:
        """The entries of a group's run in its worker, and what the worker lost when it ended early.

        A collector that makes the worker stop answering is quarantined and reported here; the
        collectors its worker took down with it are lost, blameless. A worker that dies or passes
        its memory limit loses the collectors it had not reported; the blame is theirs when that
        is one collector and none of the others had timed out (a timed-out collector may still
        run there), and unknown otherwise.
        """
        started, collection_time = time.monotonic(), now_rfc3339()
        pending = {request.key: request for request in group.requests}
        entries: dict[str, Entry] = {}
        timed_out = False

        def settle(status: Any, message: str) -> None:
            for request in pending.values():
                entries[request.key] = _unrun_entry(request, status, message, collection_time)
            pending.clear()

        def losing(message: str, blame: str) -> _Lost | None:
            if not pending:
                return None
            if blame == "unknown" and len(pending) == 1 and not timed_out:
                blame = "all"
            lost = _Lost(list(pending.values()), message, blame, started, collection_time)
            pending.clear()
            return lost

        lost: _Lost | None = None
        try:
            worker = self._worker_for(group)
            run_id = next(self._run_ids)
            worker.send(
                {
                    "type": "run",
                    "id": run_id,
                    "validate": validate,
                    "requests": [_request(r) for r in group.requests],
                }
            )
        except WorkerError as err:
            settle("failed", f"its worker cannot run: {one_line(err)}")
            return entries, None
        # The worker reports a collector's timeout itself; one that has not a grace period later has
        # stopped answering (a collector holding the GIL, a blocking C call): it is killed.
        deadlines = {request.key: started + request.timeout + GRACE for request in group.requests}
        stragglers: list[str] | None = None
        while pending or stragglers is None:
            now = time.monotonic()
            overdue = [pending[key] for key in pending if deadlines[key] <= now]
            if overdue or (not pending and now > max(deadlines.values()) + GRACE):
                worker.kill()
                self._quarantine(overdue)
                for request in overdue:
                    pending.pop(request.key)
                    waited = deadlines[request.key] - started
                    outcome = Outcome(
                        "timeout", {}, [f"its worker stopped answering within {waited:g} s and was killed"]
                    )
                    entries[request.key] = make_entry(request.spec, outcome, collection_time, waited, request.key)
                culprits = ", ".join(request.key for request in overdue) or "its worker"
                lost = losing(f"its worker was killed because {culprits} made it stop answering", "none")
                break
            remaining = min([deadlines[key] for key in pending] or [max(deadlines.values()) + GRACE]) - now
            try:
                message = worker.receive(min(remaining, POLL))
            except TimeoutError:
                rss = worker.rss_mb()
                if self.memory_mb and rss is not None and rss > self.memory_mb:
                    worker.kill()
                    lost = losing(
                        f"its worker exceeded the memory limit of {self.memory_mb} MB ({rss:.0f} MB resident) "
                        "while this collector was running",
                        "unknown",
                    )
                    break
                continue
            except ProtocolError as err:
                worker.kill()
                settle("failed", f"its worker broke the protocol: {one_line(err)}")
                break
            if message is None:
                cause = worker.ended()
                code = worker.proc.returncode
                killed = code is not None and -code in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV)
                limit = f" (its memory limit is {self.memory_mb} MB)" if self.memory_mb and killed else ""
                if self._closing:
                    settle("failed", "the harvester stopped its worker while this collector was running")
                else:
                    lost = losing(f"its worker {cause} while this collector was running{limit}", "unknown")
                worker.kill()
                break
            if message["type"] == "entry" and message.get("id") == run_id and message.get("key") in pending:
                request = pending.pop(message["key"])
                entries[request.key] = _checked_entry(request, message.get("entry"), collection_time)
                timed_out = timed_out or entries[request.key]["meta"]["status"] == "timeout"
            elif message["type"] == "done" and message.get("id") == run_id:
                stragglers = [str(k) for k in message.get("stragglers") or []]
                if pending:  # a worker that says done with collectors unreported broke the protocol
                    settle("failed", "its worker finished without reporting this collector")
            elif message["type"] == "error":
                settle("failed", f"its worker refused the request: {one_line(message.get('message'))}")
                stragglers = []
        if stragglers:
            logger.warning(
                "collectors %s are still running past their timeout; replacing their worker", ", ".join(stragglers)
            )
            self._retire(group.worker_key)
        elif worker.alive() and self.memory_mb:
            rss = worker.rss_mb()
            if rss is not None and rss > HIGH_WATER * self.memory_mb:
                logger.info("worker %s holds %.0f MB; replacing it", group.worker_key, rss)
                self._retire(group.worker_key)
        if not worker.alive():
            with self._lock:
                if self._workers.get(group.worker_key) is worker:
                    del self._workers[group.worker_key]
        return entries, lost

    def _run_again(self, group: _Group, lost: _Lost, validate: bool) -> dict[str, Entry]:
        """Run again, within what is left of each one's timeout, the collectors a worker lost.

        Blameless ones (another collector made their worker stop answering) run again together
        in a fresh worker. Of those lost to an unknown culprit, each runs alone: the ones that
        take their worker down again are the culprits and are quarantined; when none does, every
        one of them is, as a lone lost collector is without a second run. One with less than
        ``MIN_RETRY`` seconds left, or lost a second time, is failed with what its worker said; a
        retried one that does not succeed says first that it was run again, and why.
        """
        entries: dict[str, Entry] = {}
        now = time.monotonic()
        retry: list[Prepared] = []
        for request in lost.requests:
            left = lost.started + request.timeout - now
            if lost.blame != "all" and left >= MIN_RETRY and not self._closing:
                retry.append(request._replace(timeout=left))
            else:
                entries[request.key] = lost.entry(request)
        if not retry:  # ("all" is never run again)
            if lost.blame != "none":
                self._quarantine(lost.requests)
            return entries
        logger.warning("%s; running %s again", lost.reason, ", ".join(request.key for request in retry))
        if lost.blame == "none":
            runs = [self._run_in_worker(group._replace(requests=retry), validate)]
        else:
            alone = [
                (f"worker-rerun:{r.key}", partial(self._run_in_worker, _alone(group.source, r), validate))
                for r in retry
            ]
            runs = _concurrently(alone)
        # The culprits: those lost again, and those that made a worker stop answering (quarantined there).
        culprits = [request for request in retry if request.spec.identity in self.quarantined]
        for found, again in runs:
            if again is not None:
                found.update((request.key, again.entry(request)) for request in again.requests)
                if again.blame != "none":
                    culprits += again.requests
            for key, entry in found.items():
                if entry["meta"]["status"] != "success":
                    entry["meta"]["errors"].insert(0, f"run again after {lost.reason}")
                entries[key] = entry
        if lost.blame == "unknown":
            self._quarantine(culprits or lost.requests)
            for request in retry:
                if request.spec.identity not in self.quarantined:
                    self._retire(_alone(group.source, request).worker_key)
        else:
            self._quarantine(culprits)
        return entries

    def _quarantine(self, requests: Iterable[Prepared]) -> None:
        if self._closing:  # the pool stopped the worker, not the collector
            return
        for request in requests:
            if request.spec.identity not in self.quarantined:
                logger.warning(
                    "collector %s (%s) killed its worker: it runs alone from now on", request.key, request.spec.source
                )
                self.quarantined.add(request.spec.identity)


def _request(request: Prepared) -> dict[str, Any]:
    spec = request.spec
    return {
        "key": request.key,
        "source": spec.source,
        "name": spec.name,
        "options": dict(request.options),
        "timeout": request.timeout,
    }


def _checked_entry(request: Prepared, entry: Any, collection_time: str) -> Entry:
    """Rebuild an entry from a worker around the harvester's own spec.

    A worker only says what happened: the status, the data, the messages, when and how long.
    """
    try:
        meta, data = entry["meta"], entry["data"]
        status = meta["status"]
        if status not in STATUSES or not isinstance(data, dict) or not isinstance(meta["errors"], list):
            raise ValueError("not an entry")
        outcome = Outcome(status, json_data(data), [str(e) for e in meta["errors"]])
        duration = float(meta["duration_ms"]) / 1000
        when = meta["collection_time"] if isinstance(meta["collection_time"], str) else collection_time
    except (KeyError, TypeError, ValueError, NotJSONError):
        outcome, duration, when = Outcome("failed", {}, ["its worker sent a malformed entry"]), 0.0, collection_time
    return make_entry(request.spec, outcome, when, duration, request.key)

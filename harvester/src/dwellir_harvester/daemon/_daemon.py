"""The daemon's main loop: the harvest schedule, reloads on SIGHUP, and a clean stop on SIGTERM."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dwellir_harvester.config import (
    DEFAULT_CONFIG,
    DEFAULT_OUTPUT,
    ENV_CONFIG,
    ConfigError,
    Settings,
    __version__,
    configure,
    harvest_options,
    output_dir_problem,
    quarantine_path,
    read_config_file,
    read_quarantine,
)
from dwellir_harvester.config import load_settings as _load_settings
from dwellir_harvester.lib import (
    CollectorError,
    Document,
    DocumentValidationError,
    Problem,
    Registry,
    collector_statuses,
    harvest,
    overall_status,
)
from dwellir_harvester.lib.files import write_atomic
from dwellir_harvester.lib.isolation import WorkerPool
from dwellir_harvester.lib.limits import describe_error, one_line

from ._auth import Authenticator, load_tokens
from ._http import HarvesterHTTPServer, Published, Response
from ._limits import Limits
from ._metrics import Metrics

if TYPE_CHECKING:
    from dwellir_harvester.sinks import SinkSet

logger = logging.getLogger(__name__)

_WAKE = b"\0"  # written by the harvest and reload threads; signal numbers arrive on the same socket
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPEN_FILES = 65536  # the soft RLIMIT_NOFILE the daemon raises itself to (at most the hard limit)
IMPORT_TIMEOUT = 10.0  # seconds one plugin import may take in a worker: a reload's deadline holds a few


class Plan(NamedTuple):
    """Everything a harvest cycle needs, checked as a whole before it replaces the previous one.

    ``pool`` holds the plan's collector workers (None with ``isolation: thread``); ``problems`` what
    was left out (drop-ins, plugins, workers), reported in every document and in ``/metrics``.
    """

    settings: Settings
    registry: Registry
    names: list[str]
    auth: Authenticator
    output: str | None
    pool: WorkerPool | None = None
    problems: list[Problem] = []
    sinks: SinkSet | None = None


def prepare(
    settings: Settings, flags: Mapping[str, Any] | None = None, quarantined: Iterable[tuple[str, str]] = ()
) -> Plan:
    """Check settings, tokens, collectors, options and the output directory as a whole.

    With ``isolation: process`` the plan gets a pool of workers, where discovery runs too; a
    drop-in that does not fit is left out and reported, not an error.

    Args:
        settings: the merged settings.
        flags: the command line's settings they came from (to load them again without a drop-in).
        quarantined: collectors that killed a worker of an earlier plan: they run alone here too.

    Returns:
        The plan a harvest cycle runs.

    Raises:
        ConfigError: naming the file and key of what is wrong (``CollectorError`` from discovery,
            ``OSError`` and any other exception of a reader may also propagate).
    """
    auth = Authenticator(load_tokens(settings))
    if settings.auth == "required" and not any(token.enabled for token in auth.tokens):
        raise ConfigError("auth is 'required' but no token is configured", key="auth")
    output = DEFAULT_OUTPUT if settings.output is None else (settings.output or None)
    problem = output_dir_problem(output) if output else None
    if problem:
        raise ConfigError(f"{problem} (create it, or pass --output '' to write none)", key="output")
    pool = None
    if settings.isolation == "process":
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        pool = WorkerPool(memory_mb=settings.worker_memory_mb, log_level=str(level), import_timeout=IMPORT_TIMEOUT)
        pool.quarantined.update(quarantined)
    try:
        configured = configure(flags or {}, pool=pool, settings=settings)
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    for left_out in configured.problems:
        logger.warning("%s: %s", left_out["where"], left_out["problem"])  # the problem says "left out"
    sinks = None
    if configured.settings.sinks:
        from dwellir_harvester.sinks import build_sinks

        try:
            sinks = build_sinks(configured.settings)
        except BaseException:
            if pool is not None:
                pool.close()
            raise
    return Plan(
        configured.settings, configured.registry, configured.names, auth, output, pool, configured.problems, sinks
    )


def main_file_auth(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str | None:
    """The ``auth`` value of the main config file itself, ignoring drop-ins (which cannot loosen auth)."""
    environ = os.environ if environ is None else environ
    main = Path(flags.get("config") or environ.get(ENV_CONFIG) or DEFAULT_CONFIG)
    if not main.is_file():
        return None
    value = read_config_file(main).get("auth")
    return value if isinstance(value, str) else None


def _explain(err: BaseException) -> str:
    """One line for an error of a config reader: its own message when it is ours, else its type too."""
    if isinstance(err, (ConfigError, CollectorError)):
        return one_line(err)
    return describe_error(err)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def raise_open_files_limit(want: int = OPEN_FILES) -> None:
    """Raise the soft limit of open files toward the hard one, as nginx and uvicorn deployments do.

    Each connection is a file; the default soft limit (often 1024) is close to the connection cap.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = want if hard == resource.RLIM_INFINITY else min(hard, want)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as err:
        logger.debug("cannot raise the open files limit: %s", err)


class _Job:
    """Reading settings and preparing a plan on a thread of its own, so that a hang cannot stop the daemon.

    A plugin whose import never returns keeps this thread forever; the daemon gives up waiting
    after ``Limits.reload_timeout`` and keeps its previous config (a thread cannot be killed).
    """

    def __init__(
        self,
        flags: Mapping[str, Any] | None,
        settings: Settings | None,
        timeout: float,
        wake: Callable[[], None],
        quarantined: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.flags, self.settings, self.wake = flags, settings, wake
        self.quarantined = set(quarantined)
        self.abandoned = False  # set by the daemon when it gave up waiting: the job cleans up after itself
        self._lock = threading.Lock()
        self.plan: Plan | None = None
        self.main_auth: str | None = None
        self.error: str | None = None
        self.exception: Exception | None = None
        self.done = threading.Event()
        self.deadline = time.monotonic() + timeout
        self.thread = threading.Thread(target=self._run, name="reload", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            settings = self.settings
            if settings is None:
                assert self.flags is not None
                settings = _load_settings(self.flags)
                self.main_auth = main_file_auth(self.flags)
            plan = prepare(settings, self.flags, self.quarantined)
            with self._lock:
                if self.abandoned:  # nobody will use it: stop its workers
                    close_pool(plan)
                else:
                    self.plan = plan
        except BaseException as err:  # anything a reader or a plugin raises (odd YAML, sys.exit()) refuses it
            self.error = _explain(err)
            self.exception = err if isinstance(err, Exception) else ConfigError(self.error)
            logger.debug("reading the config failed", exc_info=True)
        finally:
            self.done.set()
            self.wake()

    def abandon(self) -> None:
        """The daemon stops waiting for this job: a plan it still makes is closed, never used."""
        with self._lock:
            self.abandoned = True
            plan, self.plan = self.plan, None
        if plan is not None:
            close_pool(plan)


def close_pool(plan: Plan) -> None:
    """Stop a plan's workers (if it has any) and reap them."""
    if plan.pool is not None:
        plan.pool.close()


class Daemon:
    """The harvest schedule, reloads and stop, around a ``HarvesterHTTPServer`` run on its own thread.

    Args:
        plan: the checked plan to start with.
        flags: the command line's settings, re-applied on every reload.
        schema: the schema documents are validated against (None: the bundled one).
        limits: internal limits (see ``Limits``).
    """

    def __init__(self, plan: Plan, flags: Mapping[str, Any], schema: str | None, limits: Limits) -> None:
        self.plan = plan
        self.flags = flags
        self.schema = schema
        self.limits = limits
        self.metrics = Metrics(__version__)
        self.published = Published()
        self.published.auth = plan.auth
        self._metrics_lock = threading.Lock()
        self.sinks = plan.sinks  # the sinks in use: a reload that keeps the same sinks keeps their senders
        if self.sinks is not None:
            self.sinks.on_change(self._sinks_changed)
            self.metrics.observe_sinks(self.sinks.stats())
        self._publish_metrics()
        self.write_lock = threading.Lock()
        self.stopping = False  # set under write_lock: no output file write starts after it
        self.harvesting = threading.Event()
        self.have_document = False
        self.reloading: _Job | None = None
        self.stuck: _Job | None = None  # an abandoned reload whose thread still runs
        self.reload_again = False
        self.recorded_quarantine: set[tuple[str, str]] | None = None
        self.retired: list[Plan] = []  # replaced plans whose workers a running harvest may still use
        self._retire_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)

    # --- harvest -------------------------------------------------------------------------------

    def _publish_metrics(self) -> None:
        with self._metrics_lock:  # the harvest thread and the HTTP thread both publish
            self.published.metrics = Response(200, self.metrics.render(), METRICS_TYPE)

    def _sinks_changed(self) -> None:
        sinks = self.sinks
        self.metrics.observe_sinks(sinks.stats() if sinks is not None else [])
        self._publish_metrics()

    def _use_sinks(self, plan: Plan) -> Plan:
        """Keep the running senders when a reload configures the same sinks; else swap them."""
        old, new = self.sinks, plan.sinks
        if old is not None and new is not None and old.key == new.key:
            new.stop(0)  # never started: only its clients are closed
            return plan._replace(sinks=old)
        self.sinks = new
        if new is not None:
            new.on_change(self._sinks_changed)
            new.start()
        if old is not None:
            old.stop()
        self._sinks_changed()
        return plan

    def count_http(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add the HTTP server's counts of refused requests and dropped connections to /metrics."""
        for (kind, reason), n in counts.items():
            (self.metrics.refused if kind == "refused" else self.metrics.dropped).labels(reason).inc(n)
        self._publish_metrics()

    def _harvest(self, plan: Plan) -> None:
        started = time.monotonic()
        document: Document | None = None
        try:
            run = plan.pool.harvest if plan.pool is not None else harvest
            document = run(
                plan.names,
                registry=plan.registry,
                schema=self.schema,
                harvester_version=__version__,
                problems=plan.problems,
                **harvest_options(plan.settings),
            )
            usable = overall_status(document) != "failed"  # worth serving unless every collector failed
            if not usable:
                logger.error(
                    "harvest failed: every collector failed or timed out; still serving the last good document"
                )
        except DocumentValidationError as err:
            document, usable = err.document, False
            logger.error("harvest failed: %s; still serving the last good document", err)
        except Exception:
            usable = False
            logger.exception("harvest failed; still serving the last good document")
        duration = time.monotonic() - started
        if usable and document is not None:
            body = json.dumps(document, separators=(",", ":")).encode() + b"\n"
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            self.published.metadata = Response(200, body, etag=etag)
            self.have_document = True
            logger.info("harvest done in %.2f s: %s", duration, _summary(document))
            sinks = self.sinks
            if sinks is not None:  # hands over and returns: sending happens on the sinks' own threads
                sinks.submit(body)
        self.metrics.observe(document, usable, duration, self.have_document)
        quarantined = set(plan.pool.quarantined) if plan.pool is not None else set()
        self.metrics.observe_plan(plan.problems, quarantined)
        self._record_quarantine(plan, quarantined)
        self._publish_metrics()
        if usable and document is not None and plan.output:
            self._write_output(plan.output, document)

    def _record_quarantine(self, plan: Plan, quarantined: set[tuple[str, str]]) -> None:
        """Write the quarantined collectors beside the output file when they change, for ``list``."""
        path = quarantine_path(plan.settings)
        if self.recorded_quarantine is None:  # what an earlier run left; nothing written while nothing changes
            self.recorded_quarantine = read_quarantine(plan.settings)
        if path is None or quarantined == self.recorded_quarantine:
            return
        entries = [{"collector": name, "source": source} for source, name in sorted(quarantined)]
        try:
            write_atomic(path, json.dumps(entries, indent=2).encode() + b"\n")
        except OSError as err:
            logger.warning("cannot record the quarantined collectors in %s: %s", path, err.strerror or err)
            return
        self.recorded_quarantine = quarantined

    def _write_output(self, path: str, document: Document) -> None:
        with self.write_lock:
            if self.stopping:  # the daemon is exiting: a write now could be cut short
                return
            try:
                write_atomic(path, json.dumps(document, indent=2).encode() + b"\n")
            except OSError as err:
                self.metrics.output_failures.inc()
                self._publish_metrics()
                logger.error("cannot write %s: %s", path, err.strerror or err)

    def _harvest_thread(self, plan: Plan) -> None:
        try:
            self._harvest(plan)
        finally:
            with self._retire_lock:
                self.harvesting.clear()
                retired, self.retired = self.retired, []
            for old in retired:  # plans replaced while this harvest used them
                close_pool(old)
            self._wake()

    def _retire(self, plan: Plan) -> None:
        """Close a replaced plan's workers now, or after the harvest that may still use them."""
        with self._retire_lock:
            if self.harvesting.is_set():
                self.retired.append(plan)
                return
        close_pool(plan)

    def _wake(self) -> None:
        try:
            self._wake_w.send(_WAKE)
        except OSError:  # the buffer is full: the loop is awake anyway
            pass

    def start_harvest(self) -> None:
        """Start a harvest of the current plan on its own thread, unless the previous one still runs."""
        if self.harvesting.is_set():
            logger.warning("the previous harvest is still running; skipping this one")
            return
        self.harvesting.set()
        threading.Thread(target=self._harvest_thread, args=(self.plan,), name="harvest", daemon=True).start()

    # --- reload --------------------------------------------------------------------------------

    def _reload_failed(self, message: str, *args: Any) -> None:
        self.metrics.reloads.labels("failed").inc()
        self._publish_metrics()
        logger.error(message, *args)

    def request_reload(self) -> None:
        """SIGHUP: start reading the config on a thread; the main loop applies it when it is ready."""
        if self.stuck is not None and self.stuck.thread.is_alive():
            self._reload_failed(
                "reload refused, keeping the previous config: an earlier reload is still stuck "
                "(a plugin import that never returns?); restart the daemon to load a new config"
            )
            return
        self.stuck = None
        if self.reloading is not None:
            self.reload_again = True  # one more reload once this one is done: the files changed again
            logger.info("SIGHUP: a reload is running; another one follows it")
            return
        logger.info("SIGHUP: reloading config files and tokens")
        quarantined = set(self.plan.pool.quarantined) if self.plan.pool is not None else set()
        self.reloading = _Job(self.flags, None, self.limits.reload_timeout, self._wake, quarantined)

    def check_reload(self, now: float) -> bool:
        """Apply a finished reload, or abandon one past its deadline; True when a new config took effect."""
        job = self.reloading
        if job is None:
            return False
        if job.done.is_set():
            self.reloading = None
            applied = self._apply(job)
        elif now >= job.deadline:
            self.reloading = None
            self.stuck = job
            job.abandon()
            self._reload_failed(
                "reload failed, keeping the previous config: reading the config and discovering collectors "
                "did not finish within %g s (a plugin import that never returns?)",
                self.limits.reload_timeout,
            )
            self.reload_again = False
            return False
        else:
            return False
        if self.reload_again:
            self.reload_again = False
            self.request_reload()
        return applied

    def _apply(self, job: _Job) -> bool:
        if job.error is not None or job.plan is None:
            self._reload_failed("reload failed, keeping the previous config: %s", job.error)
            return False
        plan, old = job.plan, self.plan
        if old.auth.enabled and not plan.auth.enabled and job.main_auth != "optional":
            close_pool(plan)
            self._reload_failed(
                "reload refused, keeping the previous config and its %d token(s): the new config has no token, "
                "which would turn auth off; to allow that, set 'auth: optional' in the main config file %s "
                "(a drop-in cannot)",
                len(old.auth.tokens),
                self.flags.get("config") or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG,
            )
            return False
        settings = plan.settings
        if (settings.host, settings.port) != (old.settings.host, old.settings.port):
            logger.warning(
                "host and port changes take effect on restart; still listening on %s:%s",
                old.settings.host,
                old.settings.port,
            )
        if settings.log_level:
            logging.getLogger().setLevel(settings.log_level.upper())
        if old.auth.enabled and not plan.auth.enabled:
            logger.warning("auth is off from now on: the new config has no token, and the main config allows it")
        self.plan = plan = self._use_sinks(plan)
        self._retire(old)
        self.published.auth = plan.auth
        self.metrics.reloads.labels("ok").inc()
        self._publish_metrics()
        logger.info("reloaded: collectors %s, %d token(s)", ", ".join(plan.names), len(plan.auth.tokens))
        return True

    # --- main loop -----------------------------------------------------------------------------

    def run(self, server: HarvesterHTTPServer) -> int:
        """Serve and harvest until SIGTERM or SIGINT; returns the exit status."""
        server.on_stats = self.count_http
        serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        serving.start()
        # The wake-up fd first, then the handlers: a signal that finds a handler must also find the fd,
        # or it is swallowed (a SIGTERM right after start-up left the daemon running). One that comes
        # before the handlers ends the process as it would have before serving.
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        next_due = time.monotonic()
        if self.sinks is not None:
            self.sinks.start()
        try:
            while True:
                now = time.monotonic()
                if now >= next_due:
                    self.start_harvest()
                    interval = float(self.plan.settings.interval)
                    while next_due <= now:  # a fixed grid: no drift, no burst after a long harvest
                        next_due += interval
                wait = next_due - now
                if self.reloading is not None:
                    wait = min(wait, self.reloading.deadline - now)
                events = self._wait(selector, max(0.0, wait))
                if signal.SIGTERM in events or signal.SIGINT in events:
                    logger.info("stopping")
                    break
                if self.check_reload(time.monotonic()):
                    next_due = time.monotonic()  # harvest the new config now
                if signal.SIGHUP in events:
                    self.request_reload()
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            selector.close()
            server.shutdown()
            server.server_close()
            with self.write_lock:  # no new output file write starts; one in progress finishes first
                self.stopping = True
            for plan in [self.plan, *self.retired]:  # every worker is stopped and reaped
                close_pool(plan)
            if self.sinks is not None:  # what was handed over but not yet spooled is spooled now
                self.sinks.stop()
        logger.info("stopped")
        return 0

    def _wait(self, selector: selectors.BaseSelector, timeout: float) -> bytes:
        """Wait up to ``timeout`` for a signal or a wake-up; the bytes that arrived (signal numbers)."""
        if not selector.select(timeout):
            return b""
        chunks = []
        while True:
            try:
                chunk = self._wake_r.recv(4096)
            except BlockingIOError:
                break
            chunks.append(chunk)
            if len(chunk) < 4096:
                break
        return b"".join(chunks)


def _summary(document: Document) -> str:
    counts = Counter(collector_statuses(document).values())
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _prepare_in_time(settings: Settings, flags: Mapping[str, Any], timeout: float) -> Plan:
    job = _Job(flags, settings, timeout, lambda: None)
    if not job.done.wait(timeout):
        job.abandon()
        raise ConfigError(
            f"reading tokens and discovering collectors did not finish within {timeout:g} s "
            "(a plugin import that never returns?)"
        )
    if job.exception is not None:
        raise job.exception
    assert job.plan is not None
    return job.plan


def serve(
    settings: Settings,
    flags: Mapping[str, Any],
    check_only: bool = False,
    schema: str | None = None,
    *,
    limits: Limits | None = None,
) -> int:
    """Run the daemon until SIGTERM or SIGINT.

    Binds the port first (a port in use fails at once), then reads tokens and discovers collectors,
    then serves and harvests.

    Args:
        settings: the merged settings to start with.
        flags: the command line's settings, re-applied on every reload.
        check_only: check everything, print the effective settings and return 0 (``--check-config``).
        schema: the schema documents are validated against (None: the bundled one).
        limits: internal limits; the tests lower them, operators never need to.

    Returns:
        The exit status.

    Raises:
        ConfigError: the port cannot be bound, or the config, a token file, a collector or the
            output directory is wrong.
    """
    limits = limits or Limits()
    if check_only:
        plan = prepare(settings, flags)
        close_pool(plan)
        if plan.sinks is not None:
            plan.sinks.stop(0)
        effective = plan.settings.as_dict()
        effective.update(
            selected=plan.names, output=plan.output, auth_tokens=len(plan.auth.tokens), problems=plan.problems
        )
        sys.stdout.write(json.dumps(effective, indent=2) + "\n")
        return 1 if plan.problems else 0
    raise_open_files_limit()
    try:
        server = HarvesterHTTPServer(settings.host, settings.port, Published(), limits)
    except OSError as err:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {err.strerror or err}") from err
    try:
        plan = _prepare_in_time(settings, flags, limits.reload_timeout)
    except BaseException:
        server.server_close()
        raise
    if not _is_loopback(settings.host) and not plan.auth.enabled:
        logger.warning(
            "listening on %s with no auth tokens: anyone who can reach it can read the document", settings.host
        )
    daemon = Daemon(plan, flags, schema, limits)
    server.published = daemon.published
    host, port = str(server.server_address[0]), server.server_address[1]
    logger.info(
        "listening on http://%s:%s (auth %s), harvesting %s every %g s",
        f"[{host}]" if ":" in host else host,
        port,
        f"on, {len(plan.auth.tokens)} token(s)" if plan.auth.enabled else "off",
        ", ".join(plan.names),
        settings.interval,
    )
    return daemon.run(server)

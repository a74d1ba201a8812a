"""The daemon behind ``dwellir-harvester serve`` (also ``dwellir-harvester-daemon``).

It binds its port first (a port in use fails at once), then harvests at start and every
``interval`` seconds on a fixed schedule (a harvest that outlasts the interval is not started twice),
and serves from memory: ``GET /metadata`` (the latest good document; 503 before the first),
``GET /healthz`` (always open), ``GET /metrics`` (Prometheus text). With tokens configured,
``/metadata`` and ``/metrics`` need one. A failed harvest keeps serving the last good document and
says so in ``/metrics`` and the log. SIGHUP re-reads config files and tokens (an invalid new config
is logged and the old one kept); SIGTERM and SIGINT stop within a few seconds, finishing an output
file write in progress.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from dwellir_harvester.config import (
    DEFAULT_OUTPUT,
    ConfigError,
    Settings,
    __version__,
    check_plan,
    discover,
    harvest_options,
    load_settings,
    output_dir_problem,
)
from dwellir_harvester.lib import (
    CollectorError,
    Document,
    DocumentValidationError,
    Registry,
    harvest,
    overall_status,
)
from dwellir_harvester.lib.files import write_atomic

from ._auth import Authenticator, load_tokens
from ._http import HarvesterHTTPServer, Published, Response
from ._metrics import Metrics
from ._systemd import systemd_unit

__all__ = ["serve", "systemd_unit"]

logger = logging.getLogger(__name__)

_WAKE = b"\0"  # written by the harvest thread; signal numbers arrive on the same socket


class Plan(NamedTuple):
    """Everything a harvest cycle needs, checked as a whole before it replaces the previous one."""

    settings: Settings
    collectors: Registry
    names: list[str]
    auth: Authenticator
    output: str | None


def prepare(settings: Settings) -> Plan:
    """Check settings, tokens, collectors, options and the output dir; raise ``ConfigError`` if any is wrong."""
    auth = Authenticator(load_tokens(settings))
    collectors = discover(settings)
    names = check_plan(settings, collectors)
    output = DEFAULT_OUTPUT if settings.output is None else (settings.output or None)
    problem = output_dir_problem(output) if output else None
    if problem:
        raise ConfigError(f"{problem} (create it, or pass --output '' to write none)", key="output")
    return Plan(settings, collectors, names, auth, output)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Daemon:
    def __init__(self, plan: Plan, flags: Mapping[str, Any], schema: str | None) -> None:
        self.plan = plan
        self.flags = flags
        self.schema = schema
        self.metrics = Metrics(__version__)
        self.published = Published()
        self.published.auth = plan.auth
        self.published.metrics = self._metrics_response()
        self.write_lock = threading.Lock()
        self.harvesting = threading.Event()
        self.have_document = False
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)

    # --- harvest -------------------------------------------------------------------------------

    def _metrics_response(self) -> Response:
        return Response(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    def _harvest(self, plan: Plan) -> None:
        started = time.monotonic()
        document: Document | None = None
        try:
            document = harvest(
                plan.names,
                registry=plan.collectors,
                schema=self.schema,
                harvester_version=__version__,
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
        self.metrics.observe(document, usable, duration, self.have_document)
        self.published.metrics = self._metrics_response()
        if usable and document is not None and plan.output:
            self._write_output(plan.output, document)

    def _write_output(self, path: str, document: Mapping[str, Any]) -> None:
        with self.write_lock:
            try:
                write_atomic(path, json.dumps(document, indent=2).encode() + b"\n")
            except OSError as err:
                self.metrics.output_failures.inc()
                self.published.metrics = self._metrics_response()
                logger.error("cannot write %s: %s", path, err.strerror or err)

    def _harvest_thread(self, plan: Plan) -> None:
        try:
            self._harvest(plan)
        finally:
            self.harvesting.clear()
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(_WAKE)
        except OSError:  # the buffer is full: the loop is awake anyway
            pass

    def start_harvest(self) -> None:
        if self.harvesting.is_set():
            logger.warning("the previous harvest is still running; skipping this one")
            return
        self.harvesting.set()
        threading.Thread(target=self._harvest_thread, args=(self.plan,), name="harvest", daemon=True).start()

    # --- reload --------------------------------------------------------------------------------

    def reload(self) -> bool:
        logger.info("SIGHUP: reloading config files and tokens")
        try:
            settings = load_settings(self.flags)
            plan = prepare(settings)
        except (ConfigError, CollectorError, OSError, ValueError) as err:
            self.metrics.reloads.labels("failed").inc()
            self.published.metrics = self._metrics_response()
            logger.error("reload failed, keeping the previous config: %s", err)
            return False
        old = self.plan.settings
        if (settings.host, settings.port) != (old.host, old.port):
            logger.warning("host and port changes take effect on restart; still listening on %s:%s", old.host, old.port)
        if settings.log_level:
            logging.getLogger().setLevel(settings.log_level.upper())
        self.plan = plan
        self.published.auth = plan.auth
        self.metrics.reloads.labels("ok").inc()
        self.published.metrics = self._metrics_response()
        logger.info("reloaded: collectors %s, %d token(s)", ", ".join(plan.names), len(plan.auth.tokens))
        return True

    # --- main loop -----------------------------------------------------------------------------

    def run(self, server: HarvesterHTTPServer) -> int:
        serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        serving.start()
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        next_due = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now >= next_due:
                    self.start_harvest()
                    interval = float(self.plan.settings.interval)
                    while next_due <= now:  # a fixed grid: no drift, no burst after a long harvest
                        next_due += interval
                readable, _, _ = select.select([self._wake_r], [], [], max(0.0, next_due - time.monotonic()))
                if not readable:
                    continue
                events = self._wake_r.recv(4096)
                if signal.SIGTERM in events or signal.SIGINT in events:
                    logger.info("stopping")
                    break
                if signal.SIGHUP in events and self.reload():
                    next_due = time.monotonic()  # harvest the new config now
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.shutdown()
            server.server_close()
            with self.write_lock:  # an output file write in progress finishes first
                pass
        logger.info("stopped")
        return 0


def _summary(document: Mapping[str, Any]) -> str:
    counts: dict[str, int] = {}
    for entry in document.get("collectors", {}).values():
        counts[entry["meta"]["status"]] = counts.get(entry["meta"]["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def serve(settings: Settings, flags: Mapping[str, Any], check_only: bool = False, schema: str | None = None) -> int:
    """Run the daemon with ``settings``; ``flags`` are re-applied on every reload. Returns the exit status."""
    plan = prepare(settings)
    if check_only:
        effective = settings.as_dict()
        effective.update(selected=plan.names, output=plan.output, auth_tokens=len(plan.auth.tokens))
        sys.stdout.write(json.dumps(effective, indent=2) + "\n")
        return 0
    if not _is_loopback(settings.host) and not plan.auth.enabled:
        logger.warning(
            "listening on %s with no auth tokens: anyone who can reach it can read the document", settings.host
        )
    try:
        server = HarvesterHTTPServer(settings.host, settings.port, Published())
    except OSError as err:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {err.strerror or err}") from err
    daemon = Daemon(plan, flags, schema)
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

"""The daemon behind ``dwellir-harvester serve`` (also ``dwellir-harvester-daemon``).

::

    from dwellir_harvester.daemon import serve, systemd_unit

``serve(settings, flags)`` binds its port first (a port in use fails at once), then reads tokens and
discovers collectors, then harvests at start and every ``interval`` seconds on a fixed schedule (a
harvest that outlasts the interval is not started twice) and serves from memory: ``GET /metadata``
(the latest good document; 503 before the first), ``GET /healthz`` (always open, says only "ok"),
``GET /metrics`` (Prometheus text). With tokens configured, ``/metadata`` and ``/metrics`` need one.
A failed harvest keeps serving the last good document and says so in ``/metrics`` and the log.

One event-loop thread serves every connection with a maintained HTTP/1.1 parser (llhttp, through
``httptools``); connections are capped (a new one evicts the least recently active), request heads
have a deadline and idle connections a timeout, and a client that does not read its answers is not
read either. SIGHUP re-reads config files and tokens on a thread of its own, bounded in time: an
invalid, failing or hanging reload is logged and counted and the old config kept, and so is a reload
that would turn auth off unless the main config file says ``auth: optional``. SIGTERM and SIGINT
stop within a few seconds, finishing an output file write in progress and starting none after it.

``systemd_unit(executable, user, environment)`` renders the hardened unit file.
"""

from ._daemon import serve
from ._systemd import systemd_unit

__all__ = ["serve", "systemd_unit"]

"""Prometheus metrics of the daemon, rendered once per change rather than once per request."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from dwellir_harvester.lib import FAILING, STATUSES, Document, Problem, collector_statuses
from dwellir_harvester.lib.limits import one_line

if TYPE_CHECKING:
    from dwellir_harvester.sinks import SinkStats

#: The longest value of a node_info label (the rest is cut).
MAX_LABEL = 200


class Metrics:
    """Per collector: last status, last duration, last success time; per daemon: harvest totals."""

    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge("dwellir_harvester_build_info", "Version of the running harvester.", ["version"], registry=r).labels(
            version
        ).set(1)
        self.status = Gauge(
            "dwellir_harvester_collector_status",
            "1 for the status of the collector's last run, 0 for the others.",
            ["collector", "status"],
            registry=r,
        )
        self.duration = Gauge(
            "dwellir_harvester_collector_duration_seconds",
            "Duration of the collector's last run.",
            ["collector"],
            registry=r,
        )
        self.last_success = Gauge(
            "dwellir_harvester_collector_last_success_timestamp_seconds",
            "Unix time of the collector's last successful (or partial) run; 0 if none yet.",
            ["collector"],
            registry=r,
        )
        self.harvests = Counter("dwellir_harvester_harvests", "Harvests run.", registry=r)
        self.failures = Counter(
            "dwellir_harvester_harvest_failures",
            "Harvests that produced no usable document (every collector failed, or the harvest raised).",
            registry=r,
        )
        self.harvest_duration = Gauge(
            "dwellir_harvester_harvest_duration_seconds", "Duration of the last harvest.", registry=r
        )
        self.last_harvest = Gauge(
            "dwellir_harvester_last_harvest_timestamp_seconds", "Unix time the last harvest ended.", registry=r
        )
        self.last_harvest_ok = Gauge(
            "dwellir_harvester_last_harvest_success", "1 if the last harvest produced a usable document.", registry=r
        )
        self.stale = Gauge(
            "dwellir_harvester_serving_stale_document",
            "1 when the last harvest failed and /metadata serves the last good document instead.",
            registry=r,
        )
        self.document_age_base = Gauge(
            "dwellir_harvester_document_timestamp_seconds", "Unix time of the document /metadata serves.", registry=r
        )
        self.output_failures = Counter(
            "dwellir_harvester_output_write_failures", "Failed writes of the output file.", registry=r
        )
        self.reloads = Counter(
            "dwellir_harvester_config_reloads",
            "Config reloads (SIGHUP); result failed: the reload was refused and the previous config kept.",
            ["result"],
            registry=r,
        )
        self.refused = Counter(
            "dwellir_harvester_http_refused_requests",
            "Requests for /metadata or /metrics refused for want of a valid token, by reason.",
            ["reason"],
            registry=r,
        )
        self.dropped = Counter(
            "dwellir_harvester_http_dropped_connections",
            "Connections the server closed on a client: evicted at the connection cap, head or idle timeout, "
            "output that did not drain, or a bad request.",
            ["reason"],
            registry=r,
        )
        self.problems = Gauge(
            "dwellir_harvester_config_problems",
            "What the current config leaves out (drop-ins, plugins, workers): harvester.problems of each document.",
            registry=r,
        )
        self.quarantined = Gauge(
            "dwellir_harvester_collector_quarantined",
            "1 for a collector that killed its worker: it runs alone in a worker of its own from then on.",
            ["collector", "source"],
            registry=r,
        )
        self.node_info = Gauge(
            "dwellir_harvester_node_info",
            "1 for each blockchain entry of the last document: the chain, network and client this node runs.",
            ["chain_id", "network", "client_name", "client_version"],
            registry=r,
        )
        sink = ["sink"]
        self.sink_sent = Counter("dwellir_harvester_sink_sent", "Documents delivered, by sink.", sink, registry=r)
        self.sink_failed = Counter(
            "dwellir_harvester_sink_failed", "Failed sends (the document stays spooled), by sink.", sink, registry=r
        )
        self.sink_dropped = Counter(
            "dwellir_harvester_sink_dropped",
            "Documents dropped undelivered: the spool was full (oldest first), or a spooled file was unreadable.",
            sink,
            registry=r,
        )
        self.sink_spooled = Gauge(
            "dwellir_harvester_sink_spooled", "Documents waiting in the spool, by sink.", sink, registry=r
        )
        self.sink_oldest = Gauge(
            "dwellir_harvester_sink_oldest_spooled_age_seconds",
            "Age of the oldest document waiting in the spool as of the sink's last attempt; 0 when none waits.",
            sink,
            registry=r,
        )
        self.sink_last_success = Gauge(
            "dwellir_harvester_sink_last_success_timestamp_seconds",
            "Unix time of the sink's last delivery; 0 if none yet.",
            sink,
            registry=r,
        )
        self._successes: dict[str, float] = {}
        self._sink_counts: dict[str, tuple[int, int, int]] = {}

    def observe_sinks(self, stats: Sequence[SinkStats]) -> None:
        """Record the sinks' counts (counters grow by what changed since the last call)."""
        now = time.time()
        names = {s.name for s in stats}
        for gone in [name for name in self._sink_counts if name not in names]:
            del self._sink_counts[gone]
            for metric in (self.sink_sent, self.sink_failed, self.sink_dropped, self.sink_spooled, self.sink_oldest):
                metric.remove(gone)
            self.sink_last_success.remove(gone)
        for s in stats:
            sent, failed, dropped = self._sink_counts.get(s.name, (0, 0, 0))
            if s.name not in self._sink_counts or s.sent < sent or s.failed < failed or s.dropped < dropped:
                sent = failed = dropped = 0  # a new sender (a reload): its counts start again
            self.sink_sent.labels(s.name).inc(max(0, s.sent - sent))
            self.sink_failed.labels(s.name).inc(max(0, s.failed - failed))
            self.sink_dropped.labels(s.name).inc(max(0, s.dropped - dropped))
            self._sink_counts[s.name] = (s.sent, s.failed, s.dropped)
            self.sink_spooled.labels(s.name).set(s.spooled)
            self.sink_oldest.labels(s.name).set(max(0.0, now - s.oldest_spooled) if s.oldest_spooled else 0)
            self.sink_last_success.labels(s.name).set(s.last_success or 0)

    def observe_nodes(self, document: Document) -> None:
        """One ``dwellir_harvester_node_info`` sample per blockchain entry of ``document``."""
        self.node_info.clear()
        for entry in document["collectors"].values():
            labels = _node_labels(entry)
            if labels is not None:
                self.node_info.labels(*labels).set(1)

    def observe_plan(self, problems: Sequence[Problem], quarantined: Iterable[tuple[str, str]]) -> None:
        """Record the current plan's problems and the collectors quarantined so far."""
        self.problems.set(len(problems))
        self.quarantined.clear()
        for source, name in sorted(quarantined):
            self.quarantined.labels(name, source).set(1)

    def observe(self, document: Document | None, usable: bool, duration: float, serving: bool) -> None:
        """Record one harvest; ``serving`` says whether any good document is being served."""
        now = time.time()
        self.harvests.inc()
        if not usable:
            self.failures.inc()
        self.harvest_duration.set(duration)
        self.last_harvest.set(now)
        self.last_harvest_ok.set(1 if usable else 0)
        self.stale.set(0 if usable or not serving else 1)
        if usable and document is not None:
            self.document_age_base.set(now)
            self.observe_nodes(document)
        if document is None:
            return
        self.status.clear()
        self.duration.clear()
        self.last_success.clear()
        entries = document["collectors"]
        for name, current in collector_statuses(document).items():
            for status in STATUSES:
                self.status.labels(name, status).set(1 if current == status else 0)
            self.duration.labels(name).set(entries[name]["meta"]["duration_ms"] / 1000)
            if current not in FAILING:
                self._successes[name] = now
            self.last_success.labels(name).set(self._successes.get(name, 0))

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


def _node_labels(entry: Any) -> tuple[str, str, str, str] | None:
    """``(chain_id, network, client_name, client_version)`` of a blockchain entry; None for any other."""
    if not isinstance(entry, dict) or not isinstance(entry.get("meta"), dict):
        return None
    data = entry.get("data")
    if entry["meta"].get("collector_type") != "blockchain" or not isinstance(data, dict):
        return None
    chain, workload = data.get("blockchain"), data.get("workload")
    chain = chain if isinstance(chain, dict) else {}
    workload = workload if isinstance(workload, dict) else {}

    def label(value: Any) -> str:
        return "" if value is None or isinstance(value, (dict, list)) else one_line(value, MAX_LABEL)

    return (
        label(chain.get("chain_id")),
        label(chain.get("blockchain_network_name")),
        label(workload.get("client_name")),
        label(workload.get("client_version")),
    )

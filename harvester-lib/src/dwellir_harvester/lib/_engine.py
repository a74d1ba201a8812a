"""The harvest engine: run collectors concurrently, each under its timeout, and build the document.

Each collector runs in its own daemon thread, so wall time is about the slowest collector and a
collector that never returns can neither block the caller nor the interpreter's exit. A run that
outlives its timeout is remembered until it returns: a later harvest in the same process reports
that collector as ``timeout`` instead of starting it again on top of itself, so a long-running
process (the daemon) keeps its threads and memory bounded.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

from ._collector import CollectorBase, CollectResult, check_options
from ._errors import (
    CollectorFailedError,
    CollectorOptionError,
    CollectorPartialError,
    DocumentValidationError,
)
from ._loader import CollectorSpec, Registry, load_collectors, spec_for_class
from ._schema import SchemaLike, schema_errors, validate_output
from ._types import FAILING, Document, Entry, EntryMeta, HarvesterSection, Problem, Status
from ._version import __version__
from .limits import MAX_MESSAGE, NotJSONError, describe_error, json_data, one_line, seconds
from .redact import redact_text

logger = logging.getLogger(__name__)

Selection = Iterable[str | type[CollectorBase] | CollectorSpec]
Timeouts = float | Mapping[str, float] | None

#: The most messages one entry's ``errors`` keeps; the rest are counted in a last line.
MAX_ERRORS = 50

# Runs that outlived their timeout, by collector identity (source and name), until they return.
# Process-wide on purpose: the threads they stand for are process-wide too. The identity, not the
# class, so that a reload that imports the plugin again (a new class object) still finds them.
_STRAGGLERS: dict[tuple[str, str], _Run] = {}
_STRAGGLERS_LOCK = threading.Lock()


def still_running(identities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Those of the collector identities (source, name) whose run outlived its timeout and goes on."""
    with _STRAGGLERS_LOCK:
        return [identity for identity in identities if identity in _STRAGGLERS]


def now_rfc3339() -> str:
    """The current time as RFC 3339 with an explicit UTC offset, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Outcome(NamedTuple):
    """What one collector's run came to: its status, its data and its messages."""

    status: Status
    data: dict[str, Any]
    errors: list[str]


def _message(err: BaseException, fallback: str) -> str:
    """A collector's own message (``CollectorFailedError("...")``), safe to read whatever its ``__str__`` does."""
    try:
        text = str(err)
    except Exception:  # noqa: BLE001
        return describe_error(err)
    return text or fallback


def _failed(*errors: str) -> Outcome:
    return Outcome("failed", {}, list(errors))


def _execute(spec: CollectorSpec, options: Mapping[str, Any], validate: bool) -> Outcome:
    """Run one collector to completion. Never raises."""
    try:
        collector = spec.cls(**options)
    except CollectorFailedError as err:
        return _failed(_message(err, "collector failed"))
    except BaseException as err:  # a plugin's failure stays in its own entry
        logger.debug("collector %s could not be created", spec.name, exc_info=True)
        return _failed(f"could not create the collector: {describe_error(err)}")
    status: Status = "success"
    errors: list[str] = []
    raw: Any
    try:
        result: object = collector.collect()
    except CollectorPartialError as err:
        status, raw, errors = "partial", err.data, list(err.messages) or ["partial data"]
    except CollectorFailedError as err:
        return _failed(_message(err, "collector failed"))
    except BaseException as err:
        logger.debug("collector %s raised", spec.name, exc_info=True)
        return _failed(describe_error(err))
    else:
        if isinstance(result, CollectResult) and isinstance(result.data, Mapping):
            raw, errors = result.data, list(result.errors)  # make_entry makes each a safe line
            status = "partial" if errors else "success"
        elif isinstance(result, CollectResult):
            kind = type(result.data).__name__
            return _failed(f"collect() returned a CollectResult whose data is {kind}; expected a dict")
        elif isinstance(result, Mapping):
            raw = result
        else:
            return _failed(f"collect() returned {type(result).__name__}; expected a dict or CollectResult")
    try:
        data = json_data(raw)
        problems = list(collector.check_data(data))
        if validate and spec.cls.SCHEMA is not None:
            problems += [f"data does not match {spec.name}'s SCHEMA: {e}" for e in schema_errors(data, spec.cls.SCHEMA)]
    except NotJSONError as err:
        return _failed(*errors, f"collect() returned data that is not JSON: {err}")
    except BaseException as err:
        logger.debug("collector %s data check raised", spec.name, exc_info=True)
        return _failed(*errors, f"checking the data failed: {describe_error(err)}")
    if problems:
        return Outcome("failed", data, [*errors, *problems])
    return Outcome(status, data, errors)


def _clean_errors(errors: Iterable[object]) -> list[str]:
    """Messages fit to publish: secrets redacted, one line each, bounded in size and number."""
    cleaned: list[str] = []
    total = 0
    for error in errors:
        total += 1
        if len(cleaned) < MAX_ERRORS:
            text = error if isinstance(error, str) else one_line(error)
            cleaned.append(one_line(redact_text(one_line(text, 4 * MAX_MESSAGE)), MAX_MESSAGE))
    if total > len(cleaned):
        cleaned.append(f"(and {total - len(cleaned)} more messages)")
    return cleaned


class _Run:
    """One collector's run in its own thread, and what it reported."""

    def __init__(self, request: Prepared, validate: bool, on_done: Callable[[_Run], None] | None = None) -> None:
        self.key, self.spec, self.options, self.timeout = request
        self.validate, self.on_done = validate, on_done
        self.done = threading.Event()
        self.result: Outcome | None = None
        self.collection_time = now_rfc3339()
        self.started = time.monotonic()
        self.deadline = self.started + self.timeout
        self.finished: float | None = None

    def start(self) -> None:
        threading.Thread(target=self._target, name=f"collector:{self.key}", daemon=True).start()

    def _target(self) -> None:
        try:
            self.result = _execute(self.spec, self.options, self.validate)
        except BaseException as err:  # noqa: BLE001 - _execute never raises; this is the last guard
            self.result = _failed(f"the run failed: {describe_error(err)}")
        finally:
            self.finished = time.monotonic()
            self.done.set()
            with _STRAGGLERS_LOCK:
                if _STRAGGLERS.get(self.spec.identity) is self:
                    del _STRAGGLERS[self.spec.identity]
            if self.on_done is not None:
                self.on_done(self)

    def give_up(self) -> None:
        """The deadline passed: remember the run as a straggler unless it has just returned."""
        with _STRAGGLERS_LOCK:
            if not self.done.is_set():
                _STRAGGLERS[self.spec.identity] = self

    def entry(self) -> Entry:
        if self.result is not None and self.done.is_set():
            status, data, errors = self.result
            duration = (self.finished or time.monotonic()) - self.started
        else:
            status, data, duration = "timeout", {}, self.timeout
            errors = [f"did not return within {self.timeout:g} s"]
        return make_entry(self.spec, Outcome(status, data, errors), self.collection_time, duration, self.key)


def make_entry(
    spec: CollectorSpec, outcome: Outcome, collection_time: str, duration: float, key: str | None = None
) -> Entry:
    """The entry for a finished run: the framework's ``meta`` around the collector's data.

    A spec whose class attributes are unusable gives a ``failed`` entry saying why.
    """
    status, data, errors = outcome
    try:
        checked = spec.checked_meta()
        version, kind = checked.version, checked.collector_type
    except TypeError as err:
        status, data, errors = "failed", {}, [*errors, str(err)]
        version, kind = "0.0.0", "generic"
    errors = _clean_errors(errors)
    if status != "success":
        if not errors:
            errors = [f"status {status}"]
        logger.warning("collector %s: %s: %s", key or spec.name, status, "; ".join(errors))
    meta: EntryMeta = {
        "collector_type": kind,
        "collector_name": spec.name,
        "collector_version": version,
        "collection_time": collection_time,
        "status": status,
        "errors": errors if status != "success" else [],
        "duration_ms": round(max(0.0, duration) * 1000, 3),
        "source": spec.source,
    }
    return {"meta": meta, "data": data}


def _straggler_entry(key: str, spec: CollectorSpec, previous: _Run) -> Entry:
    running_for = time.monotonic() - previous.started
    message = (
        f"the run started at {previous.collection_time} is still running after {running_for:.1f} s; not started again"
    )
    return make_entry(spec, Outcome("timeout", {}, [message]), now_rfc3339(), 0.0, key)


class Prepared(NamedTuple):
    """One checked run request: the key it is reported under, the spec, its options and its timeout."""

    key: str
    spec: CollectorSpec
    options: Mapping[str, Any]
    timeout: float


def _resolve_selection(
    selection: Selection, registry: Registry | None, exclude: Iterable[str]
) -> dict[str, CollectorSpec]:
    """``{key: spec}`` in selection order: names resolved in the registry, classes and specs as given."""
    if isinstance(selection, str):
        raise TypeError("harvest() takes a list of collector names, not a single string")
    items, exclude = list(selection), list(exclude)
    names = [item for item in items if isinstance(item, str)]
    resolved: dict[str, CollectorSpec] = {}
    if names:
        resolved = (registry if registry is not None else load_collectors()).select(names, exclude)
    drop = {name for name in exclude if "::" not in name}
    chosen: dict[str, CollectorSpec] = {}
    for item in items:
        if isinstance(item, str):
            if item in resolved and item not in chosen:
                chosen[item] = resolved[item]
            continue
        spec = item if isinstance(item, CollectorSpec) else spec_for_class(item)
        if spec.name not in drop and spec.name not in chosen:
            chosen[spec.name] = spec
    return chosen


def _timeout_for(key: str, spec: CollectorSpec, timeout: Timeouts) -> float:
    value = timeout.get(key, timeout.get(spec.name)) if isinstance(timeout, Mapping) else timeout
    if value is not None:
        return seconds(value, f"timeout for collector {key!r}")
    try:
        return spec.checked_meta().timeout
    except TypeError:
        return seconds(CollectorBase.TIMEOUT, "TIMEOUT")  # make_entry reports the class's problem


def _options_for(key: str, spec: CollectorSpec, options: Mapping[str, Mapping[str, Any]] | None) -> Mapping[str, Any]:
    chosen = options.get(key, options.get(spec.name)) if options else None
    if chosen is None:
        chosen = {}
    if not isinstance(chosen, Mapping):
        raise CollectorOptionError(spec.name, f"options must be a mapping, not {type(chosen).__name__}")
    check_options(spec.cls, chosen)
    return chosen


def build_document(
    entries: Mapping[str, Entry],
    collection_time: str,
    duration: float,
    harvester_version: str | None = None,
    *,
    host_collector: str | None = None,
    problems: Iterable[Problem] | None = None,
) -> Document:
    """The harvest document around finished entries.

    Args:
        entries: the entries by key, in the order they were selected.
        collection_time: when the harvest started (RFC 3339).
        duration: how long it took, in seconds.
        harvester_version: the version reported as ``harvester-version`` (default: the SDK's).
        host_collector: the collector (by name) whose data the top-level ``host`` repeats; ``{}``
            when it is None or did not run.
        problems: what was left out of the harvest, reported as ``harvester.problems``; None
            leaves the key out.

    Returns:
        The document.
    """
    host: dict[str, Any] = {}
    if host_collector is not None:
        found = next((e for e in entries.values() if e["meta"]["collector_name"] == host_collector), None)
        host = dict(found["data"]) if found is not None else {}
    harvester: HarvesterSection = {
        "harvester-version": harvester_version or __version__,
        "collection_time": collection_time,
        "collectors_used": list(entries),
        "duration_ms": round(duration * 1000, 3),
    }
    if problems is not None:
        harvester["problems"] = [
            {"where": one_line(p["where"], 500) or "?", "problem": one_line(p["problem"]) or "?"} for p in problems
        ]
    return {"harvester": harvester, "host": host, "collectors": dict(entries)}


def collector_statuses(document: Document | Mapping[str, Any]) -> dict[str, Status]:
    """Return each entry's status by its key in ``collectors``, in document order."""
    collectors: Mapping[str, Entry] = document.get("collectors", {})
    return {key: entry["meta"]["status"] for key, entry in collectors.items()}


def overall_status(document: Document | Mapping[str, Any]) -> Literal["success", "partial", "failed"]:
    """Return ``success`` when every entry succeeded, ``failed`` when none did, ``partial`` otherwise."""
    statuses = collector_statuses(document).values()
    if all(s == "success" for s in statuses):
        return "success"
    if all(s in FAILING for s in statuses):
        return "failed"
    return "partial"


def prepare(
    selection: Selection,
    *,
    registry: Registry | None = None,
    exclude: Iterable[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: Timeouts = None,
) -> list[Prepared]:
    """Resolve and check a selection into run requests, in selection order; see ``harvest()``.

    Raises:
        UnknownCollectorError: a name that is not in the registry.
        CollectorOptionError: options a constructor does not take.
        ValueError: a timeout that is not acceptable.
    """
    chosen = _resolve_selection(selection, registry, exclude)
    return [
        Prepared(key, spec, _options_for(key, spec, options), _timeout_for(key, spec, timeout))
        for key, spec in chosen.items()
    ]


def run_prepared(prepared: Sequence[Prepared], validate: bool = True) -> Iterator[tuple[str, Entry]]:
    """Run the requests concurrently and yield ``(key, entry)`` as each one finishes or times out.

    A collector whose earlier run is still going (it outlived its timeout) is not started again:
    its entry is ``timeout`` at once.
    """
    finished: queue.SimpleQueue[_Run] = queue.SimpleQueue()
    pending: set[_Run] = set()
    for request in prepared:
        with _STRAGGLERS_LOCK:
            previous = _STRAGGLERS.get(request.spec.identity)
        if previous is not None:
            yield request.key, _straggler_entry(request.key, request.spec, previous)
            continue
        run = _Run(request, validate, finished.put)
        run.start()
        pending.add(run)
    while pending:
        earliest = min(run.deadline for run in pending)
        try:
            done = finished.get(timeout=max(0.0, earliest - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for run in sorted((r for r in pending if r.deadline <= now), key=lambda r: r.deadline):
                run.give_up()
                pending.discard(run)
                yield run.key, run.entry()
            continue
        if done in pending:  # not given up on already
            pending.discard(done)
            yield done.key, done.entry()


def harvest(
    selection: Selection,
    *,
    registry: Registry | None = None,
    exclude: Iterable[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: Timeouts = None,
    validate: bool = True,
    schema: SchemaLike = None,
    harvester_version: str | None = None,
    host_collector: str | None = None,
    problems: Iterable[Problem] | None = None,
    collectors: Registry | None = None,
) -> Document:
    """Run the selected collectors concurrently and return the harvest document.

    Args:
        selection: collector names (resolved in ``registry``), namespaced names (``builtin::host``),
            collector classes, or specs.
        registry: what ``load_collectors()`` returned; None discovers afresh when a name is given.
        exclude: names or namespaced names never to run.
        options: a collector name to its constructor's keyword arguments.
        timeout: seconds for every collector, or a name to seconds, overriding each class's
            ``TIMEOUT``; each finite, greater than 0 and at most ``limits.MAX_TIMEOUT``.
        validate: check each collector's data against its ``SCHEMA`` and the document against
            ``schema``.
        schema: a path or a mapping; None: the bundled schema.
        harvester_version: the ``harvester-version`` to report (default: the SDK's version).
        host_collector: the collector whose data the top-level ``host`` repeats (the runner passes
            ``"host"``); None leaves ``host`` empty.
        problems: what the caller left out (config files, plugins), reported as
            ``harvester.problems``; None leaves the key out.
        collectors: the old name of ``registry``; deprecated, to be removed in 0.3.

    Returns:
        The document.

    Raises:
        UnknownCollectorError: a name that is not in the registry (before anything runs).
        CollectorOptionError: options a constructor does not take (before anything runs).
        ValueError: a timeout that is not acceptable (before anything runs).
        DocumentValidationError: with ``validate``, a document that does not match ``schema``;
            it carries the document as ``.document``.
    """
    if collectors is not None:
        warnings.warn(
            "harvest(collectors=...) is deprecated; pass the registry as harvest(registry=...)",
            DeprecationWarning,
            stacklevel=2,
        )
        registry = registry if registry is not None else collectors
    prepared = prepare(selection, registry=registry, exclude=exclude, options=options, timeout=timeout)
    return harvest_prepared(
        prepared,
        run_prepared,
        harvester_version=harvester_version,
        host_collector=host_collector,
        problems=problems,
        validate=validate,
        schema=schema,
    )


#: What runs checked requests and yields each entry by key as it finishes: ``run_prepared`` in
#: threads, or a ``WorkerPool``'s runner in workers.
Runner = Callable[[Sequence[Prepared], bool], Iterable[tuple[str, Entry]]]


def harvest_prepared(
    prepared: Sequence[Prepared],
    run: Runner,
    *,
    harvester_version: str | None,
    host_collector: str | None,
    problems: Iterable[Problem] | None,
    validate: bool,
    schema: SchemaLike,
) -> Document:
    """Run checked requests with ``run`` and build the document around their entries, in request order.

    With ``validate`` the document is checked against ``schema``.

    Raises:
        DocumentValidationError: it does not match; the error carries the document.
    """
    collection_time = now_rfc3339()
    started = time.monotonic()
    finished = dict(run(prepared, validate))
    entries = {request.key: finished[request.key] for request in prepared}
    document = build_document(
        entries,
        collection_time,
        time.monotonic() - started,
        harvester_version,
        host_collector=host_collector,
        problems=problems,
    )
    if validate:
        try:
            validate_output(document, schema)
        except DocumentValidationError as err:
            err.document = document
            raise
    return document


def run_spec(
    spec: CollectorSpec, options: Mapping[str, Any] | None = None, timeout: float | None = None, validate: bool = True
) -> Entry:
    """Run one collector and return its entry (``{"meta": ..., "data": ...}``)."""
    check_options(spec.cls, options or {})
    request = Prepared(spec.name, spec, options or {}, _timeout_for(spec.name, spec, timeout))
    [(_, entry)] = run_prepared([request], validate)
    return entry

"""The harvest engine: run collectors concurrently, each under its timeout, and build the document.

Each collector runs in its own daemon thread, so wall time is about the slowest collector and a
collector that never returns can neither block the caller nor the interpreter's exit. A run that
outlives its timeout is remembered until it returns: a later harvest in the same process reports
that collector as ``timeout`` instead of starting it again on top of itself, so a long-running
process (the daemon) keeps its threads and memory bounded.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from ._collector import DEFAULT_TIMEOUT, CollectorBase, CollectResult, check_options
from ._errors import (
    CollectorFailedError,
    CollectorOptionError,
    CollectorPartialError,
    DocumentValidationError,
)
from ._loader import Collectors, CollectorSpec, load_collectors, spec_for_class
from ._schema import SchemaLike, schema_errors, validate_output
from ._types import FAILING, Document, Entry, Status
from ._version import __version__

logger = logging.getLogger(__name__)

Selection = Iterable[str | type[CollectorBase] | CollectorSpec]
Timeouts = float | Mapping[str, float] | None

# Runs that outlived their timeout, by collector class, until they return. Process-wide on purpose:
# the threads they stand for are process-wide too.
_STRAGGLERS: dict[type[CollectorBase], _Run] = {}
_STRAGGLERS_LOCK = threading.Lock()


def now_rfc3339() -> str:
    """The current time as RFC 3339 with an explicit UTC offset, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _NotJSONError(Exception):
    pass


def plain_json(value: Any, path: str = "data") -> Any:
    """A copy of ``value`` made only of JSON types; ``_NotJSONError`` names the first value that is not.

    Tuples become lists; sets, bytes, datetimes, non-string keys and NaN are refused rather than
    silently turned into strings.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSONError(f"{path} is {value!r}, which JSON cannot represent")
        return float(value)
    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJSONError(f"{path} has a key {key!r} of type {type(key).__name__}; JSON keys are strings")
            copy[str(key)] = plain_json(item, f"{path}.{key}")
        return copy
    if isinstance(value, (list, tuple)):
        return [plain_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise _NotJSONError(f"{path} is a {type(value).__name__}, which is not a JSON type")


def _execute(spec: CollectorSpec, options: Mapping[str, Any], validate: bool) -> tuple[str, dict[str, Any], list[str]]:
    """Run one collector to completion: ``(status, data, errors)``. Never raises."""
    try:
        collector = spec.cls(**options)
    except CollectorFailedError as err:
        return "failed", {}, [str(err) or "collector failed"]
    except BaseException as err:  # a plugin's failure stays in its own entry
        logger.debug("collector %s could not be created", spec.name, exc_info=True)
        return "failed", {}, [f"could not create the collector: {_describe(err)}"]
    status, errors = "success", []
    raw: Any
    try:
        result: object = collector.collect()
    except CollectorPartialError as err:
        status, raw, errors = "partial", err.data, list(err.messages) or ["partial data"]
    except CollectorFailedError as err:
        return "failed", {}, [str(err) or "collector failed"]
    except BaseException as err:
        logger.debug("collector %s raised", spec.name, exc_info=True)
        return "failed", {}, [_describe(err)]
    else:
        if isinstance(result, CollectResult) and isinstance(result.data, Mapping):
            raw, errors = result.data, [str(e) for e in result.errors]
            status = "partial" if errors else "success"
        elif isinstance(result, CollectResult):
            kind = type(result.data).__name__
            return "failed", {}, [f"collect() returned a CollectResult whose data is {kind}; expected a dict"]
        elif isinstance(result, Mapping):
            raw = result
        else:
            return "failed", {}, [f"collect() returned {type(result).__name__}; expected a dict or CollectResult"]
    try:
        data = plain_json(raw)
        problems = list(collector.check_data(data))
        if validate and spec.cls.SCHEMA is not None:
            problems += [f"data does not match {spec.name}'s SCHEMA: {e}" for e in schema_errors(data, spec.cls.SCHEMA)]
    except _NotJSONError as err:
        return "failed", {}, [*errors, f"collect() returned data that is not JSON: {err}"]
    except BaseException as err:
        logger.debug("collector %s data check raised", spec.name, exc_info=True)
        return "failed", {}, [*errors, f"checking the data failed: {_describe(err)}"]
    if problems:
        return "failed", data, [*errors, *problems]
    return status, data, errors


class _Run:
    """One collector's run in its own thread, and what it reported."""

    def __init__(self, key: str, spec: CollectorSpec, options: Mapping[str, Any], timeout: float, validate: bool):
        self.key, self.spec, self.options, self.timeout, self.validate = key, spec, options, timeout, validate
        self.done = threading.Event()
        self.result: tuple[str, dict[str, Any], list[str]] | None = None
        self.collection_time = now_rfc3339()
        self.started = time.monotonic()
        self.finished: float | None = None

    def start(self) -> None:
        threading.Thread(target=self._target, name=f"collector:{self.key}", daemon=True).start()

    def _target(self) -> None:
        try:
            self.result = _execute(self.spec, self.options, self.validate)
        finally:
            self.finished = time.monotonic()
            self.done.set()
            with _STRAGGLERS_LOCK:
                if _STRAGGLERS.get(self.spec.cls) is self:
                    del _STRAGGLERS[self.spec.cls]

    def wait(self) -> None:
        """Wait until the run returns or its deadline passes; a straggler is remembered."""
        if self.done.wait(max(0.0, self.started + self.timeout - time.monotonic())):
            return
        with _STRAGGLERS_LOCK:
            if not self.done.is_set():
                _STRAGGLERS[self.spec.cls] = self

    def entry(self) -> dict[str, Any]:
        if self.result is not None and self.done.is_set():
            status, data, errors = self.result
            duration = (self.finished or time.monotonic()) - self.started
        else:
            status, data, duration = "timeout", {}, self.timeout
            errors = [f"did not return within {self.timeout:g} s"]
        if status != "success":
            logger.warning("collector %s: %s: %s", self.key, status, "; ".join(errors))
        return _entry(self.spec, status, data, errors, self.collection_time, duration)


def _entry(
    spec: CollectorSpec, status: str, data: dict[str, Any], errors: list[str], collection_time: str, duration: float
) -> dict[str, Any]:
    meta = {
        "collector_type": str(getattr(spec.cls, "COLLECTOR_TYPE", "generic") or "generic"),
        "collector_name": spec.name,
        "collector_version": str(getattr(spec.cls, "VERSION", "0.0.0")),
        "collection_time": collection_time,
        "status": status,
        "errors": errors,
        "duration_ms": round(duration * 1000, 3),
        "source": spec.source,
    }
    return {"meta": meta, "data": data}


def _straggler_entry(key: str, spec: CollectorSpec, previous: _Run) -> dict[str, Any]:
    running_for = time.monotonic() - previous.started
    errors = [
        f"the run started at {previous.collection_time} is still running after {running_for:.1f} s; not started again"
    ]
    logger.warning("collector %s: timeout: %s", key, errors[0])
    return _entry(spec, "timeout", {}, errors, now_rfc3339(), 0.0)


def _plan(selection: Selection, collectors: Collectors | None, exclude: Iterable[str]) -> dict[str, CollectorSpec]:
    """``{key: spec}`` in selection order: names resolved in the registry, classes and specs as given."""
    if isinstance(selection, str):
        raise TypeError("harvest() takes a list of collector names, not a single string")
    items, exclude = list(selection), list(exclude)
    names = [item for item in items if isinstance(item, str)]
    resolved: dict[str, CollectorSpec] = {}
    if names:
        registry = collectors if collectors is not None else load_collectors()
        resolved = registry.select(names, exclude)
    drop = {name for name in exclude if "::" not in name}
    plan: dict[str, CollectorSpec] = {}
    for item in items:
        if isinstance(item, str):
            if item in resolved and item not in plan:
                plan[item] = resolved[item]
            continue
        spec = item if isinstance(item, CollectorSpec) else spec_for_class(item)
        if spec.name not in drop and spec.name not in plan:
            plan[spec.name] = spec
    return plan


def _timeout_for(key: str, spec: CollectorSpec, timeout: Timeouts) -> float:
    value = timeout.get(key, timeout.get(spec.name)) if isinstance(timeout, Mapping) else timeout
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"timeout for collector {key!r} must be a positive number of seconds, not {value!r}")
        return float(value)
    declared = getattr(spec.cls, "TIMEOUT", DEFAULT_TIMEOUT)
    if isinstance(declared, bool) or not isinstance(declared, (int, float)) or not declared > 0:
        logger.warning("collector %s declares TIMEOUT=%r; using %g s", key, declared, DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    return float(declared)


def _options_for(key: str, spec: CollectorSpec, options: Mapping[str, Mapping[str, Any]] | None) -> Mapping[str, Any]:
    chosen = options.get(key, options.get(spec.name)) if options else None
    if chosen is None:
        chosen = {}
    if not isinstance(chosen, Mapping):
        raise CollectorOptionError(spec.name, f"options must be a mapping, not {type(chosen).__name__}")
    check_options(spec.cls, chosen)
    return chosen


def build_document(
    entries: Mapping[str, dict[str, Any]], collection_time: str, duration: float, harvester_version: str | None = None
) -> dict[str, Any]:
    """The harvest document around finished entries; ``host`` repeats the host collector's data."""
    host: Any = next((e["data"] for e in entries.values() if e["meta"]["collector_name"] == "host"), {})
    return {
        "harvester": {
            "harvester-version": harvester_version or __version__,
            "collection_time": collection_time,
            "collectors_used": list(entries),
            "duration_ms": round(duration * 1000, 3),
        },
        "host": plain_json(host),
        "collectors": dict(entries),
    }


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


def harvest(
    selection: Selection,
    *,
    collectors: Collectors | None = None,
    exclude: Iterable[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: Timeouts = None,
    validate: bool = True,
    schema: SchemaLike = None,
    harvester_version: str | None = None,
) -> dict[str, Any]:
    """Run the selected collectors concurrently and return the harvest document.

    ``selection`` holds collector names (resolved in ``collectors``, or by a fresh
    ``load_collectors()`` when that is ``None``), namespaced names, collector classes, or specs.
    ``options`` maps a collector name to its constructor's keyword arguments; ``timeout`` is seconds
    for every collector, or a mapping of name to seconds, overriding each class's ``TIMEOUT``.

    Raises before running anything: ``UnknownCollectorError`` for an unknown name,
    ``CollectorOptionError`` for options a constructor does not take, ``ValueError`` for a bad
    timeout. With ``validate``, each collector's data is checked against its ``SCHEMA`` and the
    document against ``schema`` (default: the bundled one); a document that does not match raises
    ``DocumentValidationError`` carrying it as ``.document``.
    """
    plan = _plan(selection, collectors, exclude)
    prepared = [
        (key, spec, _options_for(key, spec, options), _timeout_for(key, spec, timeout)) for key, spec in plan.items()
    ]
    collection_time = now_rfc3339()
    started = time.monotonic()
    runs: list[_Run | dict[str, Any]] = []
    for key, spec, opts, seconds in prepared:
        with _STRAGGLERS_LOCK:
            previous = _STRAGGLERS.get(spec.cls)
        if previous is not None:
            runs.append(_straggler_entry(key, spec, previous))
            continue
        run = _Run(key, spec, opts, seconds, validate)
        run.start()
        runs.append(run)
    for started_run in runs:
        if isinstance(started_run, _Run):
            started_run.wait()
    entries = {
        key: run.entry() if isinstance(run, _Run) else run for (key, *_), run in zip(prepared, runs, strict=True)
    }
    document = build_document(entries, collection_time, time.monotonic() - started, harvester_version)
    if validate:
        try:
            validate_output(document, schema)
        except DocumentValidationError as err:
            err.document = document
            raise
    return document


def run_spec(
    spec: CollectorSpec, options: Mapping[str, Any] | None = None, timeout: float | None = None, validate: bool = True
) -> dict[str, Any]:
    """Run one collector and return its entry (``{"meta": ..., "data": ...}``)."""
    check_options(spec.cls, options or {})
    run = _Run(spec.name, spec, options or {}, _timeout_for(spec.name, spec, timeout), validate)
    run.start()
    run.wait()
    return run.entry()

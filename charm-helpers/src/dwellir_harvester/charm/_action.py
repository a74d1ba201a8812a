"""The ``run-collectors`` action: what it reports (``run``), and results that fit what Juju carries.

``run`` is the action without Juju: parameters in, an ``ActionOutcome`` (results, log lines, a
failure) out. ``Harvester`` gathers what it needs (the snapshot, the registry) and hands the
outcome to the event; ``deliver`` moves a document too large for action results into a file.
Every line of an outcome is one line of at most ``MAX_MESSAGE`` characters, with the secrets that
error messages may quote redacted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import ops

from dwellir_harvester.lib import (
    CollectorError,
    CollectorSpec,
    Document,
    DocumentValidationError,
    GenericCollector,
    Registry,
    files,
    harvest,
    overall_status,
)
from dwellir_harvester.lib.limits import MAX_MESSAGE, one_line, seconds
from dwellir_harvester.lib.redact import redact_text

from ._version import __version__
from ._wiring import HOST, JUJU_CHARM, own_names

#: Why ``host`` may be unknown to the action: it is the runner's, and the charm must install it.
HOST_HINT = "; host is a built-in of the dwellir-harvester package: add it to the charm's requirements to run it here"

#: Linux's MAX_ARG_STRLEN: one argument of ``action-set`` ("key=value" and its NUL) must fit in it.
MAX_ARG_BYTES = 131072
#: How many result files of one unit are kept in the results dir (the newest ones).
KEEP_RESULT_FILES = 5
#: The most distinct names the ``collectors`` parameter may hold.
MAX_NAMES = 1000
#: How many names a message lists before it says how many more there are.
LISTED_NAMES = 20
#: The most characters of one name a message shows.
SHOWN_NAME = 60

_SPLIT = re.compile(r"[\s,]+")


class ActionInputError(ValueError):
    """A parameter the action cannot run with; its message is the action's one-line failure."""


class Request(NamedTuple):
    """The action's parameters, checked.

    ``names`` is None for the default selection; ``exclude`` names what to leave out of it (or out
    of ``names``).
    """

    names: tuple[str, ...] | None
    validate: bool
    timeout: float | None
    exclude: tuple[str, ...] = ()


class ActionOutcome(NamedTuple):
    """What the action reports: results to set, lines for the action's log, and why it failed.

    Attributes:
        results: the action results (``output`` and ``status``), or None when there are none.
        logs: lines for ``event.log``, in order; each one line and bounded.
        failure: the message for ``event.fail`` (one line, bounded), or None when the action did
            not fail. An action can have both results and a failure (a document that does not
            match the schema is returned, and the action fails).
    """

    results: dict[str, str] | None
    logs: tuple[str, ...]
    failure: str | None


def redacted(text: str) -> str:
    """Return ``text`` (an error message) as one bounded line with the secrets it may quote redacted.

    Only a bounded prefix is scanned: what is shown is at most ``MAX_MESSAGE`` characters anyway.

    Args:
        text: the message, possibly several lines, possibly quoting a URL with credentials.

    Returns:
        One line of at most ``MAX_MESSAGE`` characters.
    """
    return one_line(redact_text(text[: 2 * MAX_MESSAGE]))


def failed(message: str, logs: Sequence[str] = ()) -> ActionOutcome:
    """Return an outcome that fails the action with ``message`` (made one bounded line, secrets redacted).

    Args:
        message: why the action failed.
        logs: the lines logged so far, kept in the outcome.

    Returns:
        An outcome without results.
    """
    return ActionOutcome(None, tuple(logs), redacted(message))


def _names(params: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = params.get(key, "")
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        shown = one_line(repr(raw), SHOWN_NAME)
        raise ActionInputError(f"{key} must be a string of names separated by spaces or commas, not {shown}")
    names = tuple(dict.fromkeys(name for name in _SPLIT.split(raw) if name))
    if len(names) > MAX_NAMES:
        raise ActionInputError(f"{key} names {len(names)} collectors, more than the limit of {MAX_NAMES}")
    return names


def parse_params(params: Mapping[str, Any]) -> Request:
    """Check and convert ``collectors``, ``exclude``, ``validate`` and ``timeout`` (Juju has applied defaults).

    Raises:
        ActionInputError: a parameter is not acceptable; the message names it.
    """
    names = _names(params, "collectors")
    exclude = _names(params, "exclude")
    validate = params.get("validate", True)
    if not isinstance(validate, bool):
        raise ActionInputError(f"validate must be true or false, not {one_line(repr(validate), SHOWN_NAME)}")
    timeout = params.get("timeout")
    if timeout is not None:
        try:
            timeout = seconds(timeout, "timeout")
        except ValueError as err:
            raise ActionInputError(str(err)) from None
    return Request(names or None, validate, timeout, exclude)


def listing(names: Sequence[str], limit: int = LISTED_NAMES) -> str:
    """Return ``names`` as ``a, b, c``: at most ``limit`` of them, each cut short, then how many more."""
    shown = [one_line(name, SHOWN_NAME) for name in names[:limit]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def unknown_names(unknown: Sequence[str], available: Sequence[str], param: str = "") -> str:
    """Return the failure for names that are not collectors: a few of them, and a few valid ones.

    ``host`` is the runner's built-in: when it is unknown, the message says how to get it.
    """
    noun = "collector" if len(unknown) == 1 else "collectors"
    quoted = [repr(one_line(name, SHOWN_NAME)) for name in unknown[:5]]
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    where = f"{param}: " if param else ""
    hint = HOST_HINT if HOST in unknown else ""
    return f"{where}unknown {noun} {', '.join(quoted)}{more} (available: {listing(available)}){hint}"


def run(
    params: Mapping[str, Any],
    registry: Registry,
    *,
    app: str,
    snapshot: Mapping[str, Any],
    directory: Path,
    collectors: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    run_harvest: Callable[..., Document] = harvest,
) -> ActionOutcome:
    """Run the action: check the parameters, run the collectors, and say what to report.

    It reads no event and writes no file; the collectors it runs may do anything they do.

    Args:
        params: the action's parameters as Juju gives them (``collectors``, ``validate``,
            ``timeout``).
        registry: what discovery found from the hook (the charm's collector dir, and whatever is
            installed in the charm's environment).
        app: the application's name, for the live ``juju-charm`` entry.
        snapshot: the charm's Juju context, reported as the live ``juju-charm`` entry.
        directory: the charm's collector dir (its collectors run by default).
        collectors: the charm's collectors; None: every collector found in ``directory``.
        exclude: the names the charm leaves out of the default selection (``Harvester(exclude=)``).
        options: constructor options per collector name.
        run_harvest: what runs the collectors: ``dwellir_harvester.lib.harvest`` (in this process),
            or a ``WorkerPool``'s ``harvest`` (in a worker the hook can kill), which ``registry``
            then comes from.

    Returns:
        The results (the document as JSON text in ``output``, and ``status``), the log lines,
        and the failure: bad parameters, unknown names (in ``collectors`` or ``exclude``) and a
        selection with nothing left fail the action without results; a collector that fails or
        times out does not fail it.
    """
    logs = [one_line(f"skipped plugin {p.where}: {redacted(p.message)}") for p in registry.problems]
    try:
        request = parse_params(params)
    except ActionInputError as err:
        return failed(str(err), logs)
    available = sorted({*registry.available(), JUJU_CHARM})
    # Excluding ``host`` where the runner is not installed leaves out what is not there (as the
    # wiring's ``exclude`` does); running it there is what needs the runner.
    for param, listed, absent_ok in (("", request.names or (), ()), ("exclude", request.exclude, (HOST,))):
        unknown = [name for name in listed if name not in (JUJU_CHARM, *absent_ok) and name not in registry]
        if unknown:
            return failed(unknown_names(unknown, available, param), logs)
    if request.names is None:
        own = collectors if collectors is not None else own_names(registry, directory)
        names = []
        for name in default_selection(own, available, exclude):
            if name in registry or name == JUJU_CHARM:
                names.append(name)
            else:
                logs.append(one_line(f"skipping {name}: not discoverable from the charm"))
    else:
        names = list(request.names)
    names = [name for name in names if name not in request.exclude]
    if not names:
        return failed("nothing to run: exclude leaves out every collector", logs)
    live = live_charm_spec(app, snapshot)
    selection: list[str | CollectorSpec] = [live if name == JUJU_CHARM else name for name in names]
    given = {name: opts for name, opts in (options or {}).items() if name != JUJU_CHARM}
    each = f" ({request.timeout:g} s each)" if request.timeout is not None else ""
    logs.append(one_line(f"running {len(selection)} collectors{each}: {listing(names)}"))
    invalid: str | None = None
    try:
        document = run_harvest(
            selection,
            registry=registry,
            options=given,
            timeout=request.timeout,
            validate=request.validate,
            host_collector=HOST,
        )
    except DocumentValidationError as err:
        if err.document is None:
            return failed(str(err), logs)
        document, invalid = err.document, redacted(str(err))
    except (CollectorError, ValueError, TypeError) as err:
        return failed(str(err), logs)
    status = overall_status(document)
    for key, entry in document["collectors"].items():
        meta = entry["meta"]
        if meta["status"] != "success":
            logs.append(one_line(f"{key}: {meta['status']}: {redacted('; '.join(meta['errors']))}"))
    logs.append(f"done in {document['harvester']['duration_ms']:g} ms: {status}")
    return ActionOutcome({"output": json.dumps(document), "status": status}, tuple(logs), invalid)


def deliver(outcome: ActionOutcome, directory: Path, unit: str) -> ActionOutcome:
    """Return ``outcome`` with results Juju can carry: a document too large for them goes to a file.

    Juju passes each result as one ``action-set key=value`` argument, limited by Linux to
    ``MAX_ARG_BYTES``; a larger ``output`` is written by ``write_result_file`` and named by
    ``output-file`` instead.

    Args:
        outcome: what the action reports; only its ``output`` result is looked at.
        directory: where a document too large for the results goes (created 0700).
        unit: the unit's name (``app/0``), which names the file.

    Returns:
        The outcome as it is, or with ``output-file`` instead of ``output``, or failed when the
        file cannot be written.
    """
    results = outcome.results
    if results is None or fits_in_result("output", results["output"]):
        return outcome
    try:
        path = write_result_file(directory, unit, results["output"])
    except OSError as err:
        return failed(f"the document is too large for action results and writing it failed: {err}", outcome.logs)
    fitted = {"output-file": str(path), "status": results["status"]}
    return outcome._replace(results=fitted)


def live_charm_spec(app: str, snapshot: Mapping[str, Any]) -> CollectorSpec:
    """Return a ``juju-charm`` collector that reports this charm's context as the hook sees it now.

    Its data has the shape of the runner's built-in ``juju-charm`` collector, limited to this
    application: ``{"applications": {app: <snapshot without "format">}}``.
    """
    data = {"applications": {app: {k: v for k, v in snapshot.items() if k != "format"}}}

    class JujuCharmCollector(GenericCollector):
        """The charm's own Juju context (topology, redacted config, relations without data)."""

        NAME: ClassVar[str] = JUJU_CHARM
        VERSION: ClassVar[str] = __version__
        TIMEOUT: ClassVar[float] = 5.0

        def collect(self) -> dict[str, Any]:
            copy: dict[str, Any] = json.loads(json.dumps(data))  # the caller cannot change it under us
            return copy

    return CollectorSpec(JUJU_CHARM, JujuCharmCollector, "charm", f"charm:{app}")


def fits_in_result(key: str, value: str) -> bool:
    """Return whether ``action-set key=value`` stays within one argument's limit (MAX_ARG_STRLEN).

    Args:
        key: the result's key.
        value: the result's value.
    """
    return len(f"{key}={value}".encode()) + 1 <= MAX_ARG_BYTES


def write_result_file(directory: Path, unit: str, text: str) -> Path:
    """Write a document too large for the results to ``directory`` (0700) as a 0600 file.

    The file is named after the unit and the time; older files of the same unit beyond the newest
    ``KEEP_RESULT_FILES`` are removed.

    Args:
        directory: the results directory.
        unit: the unit's name (``app/0``).
        text: what to write.

    Returns:
        The file's path.

    Raises:
        OSError: the directory or the file cannot be written.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o7777 != 0o700:
        os.chmod(directory, 0o700)
    prefix = unit.replace("/", "-") + "."
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / f"{prefix}{stamp}.json"
    files.write_atomic(path, text.encode("utf-8"), 0o600)
    prune_result_files(directory, unit, keep=KEEP_RESULT_FILES)
    return path


def result_files(directory: Path, unit: str) -> list[Path]:
    """Return this unit's result files, oldest first."""
    prefix = unit.replace("/", "-") + "."
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    return sorted(p for p in entries if p.name.startswith(prefix) and p.suffix == ".json")


def prune_result_files(directory: Path, unit: str, keep: int) -> None:
    """Remove this unit's result files but the newest ``keep``.

    Args:
        directory: the results directory (a missing one holds none).
        unit: the unit's name (``app/0``).
        keep: how many of the newest to keep (0: all go, as on remove).
    """
    found = result_files(directory, unit)
    for old in found[: max(0, len(found) - keep)]:
        files.remove(old)


def default_selection(own: Sequence[str], available: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Return ``host`` (when discoverable), the charm's collectors, then the live ``juju-charm``, less ``exclude``."""
    names = [HOST] if HOST in available else []
    names.extend(own)
    names.append(JUJU_CHARM)
    return [name for name in dict.fromkeys(names) if name not in exclude]


def report(event: ops.ActionEvent, outcome: ActionOutcome) -> None:
    """Hand ``outcome`` to the action ``event``: its log lines, then its results, then its failure."""
    for line in outcome.logs:
        event.log(line)
    if outcome.results is not None:
        event.set_results(outcome.results)
    if outcome.failure is not None:
        event.fail(outcome.failure)

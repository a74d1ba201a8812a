"""The rules of the ``run-collectors`` action, for charms that answer an action of their own.

``Harvester`` answers ``run-collectors`` for a charm's own collectors. A charm that runs the
collectors another way (the ``dwellir-harvester`` subordinate charm runs the machine's whole
harvest through the runner) reports by the same rules with these functions:

``parse_params(params)``
    Check ``collectors``, ``validate`` and ``timeout`` as Juju gives them; returns a ``Request``
    or raises ``ActionInputError`` with the one-line failure.
``ActionOutcome(results, logs, failure)`` and ``failed(message, logs)``
    What an action reports; ``failed`` makes the failure one bounded line, secrets redacted.
``redacted(text)``
    An error message as one bounded line (``MAX_MESSAGE`` characters) with its secrets redacted.
``deliver(outcome, directory, unit)``
    Results Juju can carry: an ``output`` too large for one ``action-set`` argument
    (``MAX_ARG_BYTES``, 128 KiB) goes to a 0600 file in ``directory`` (0700; the newest
    ``KEEP_RESULT_FILES`` per unit are kept), named by ``output-file`` instead.
``fits_in_result(key, value)`` and ``write_result_file(directory, unit, text)``
    The size rule and the file, for a result under another key than ``output``.
``prune_result_files(directory, unit, keep)``
    Remove a unit's result files but the newest ``keep`` (0 on remove).
``report(event, outcome)``
    Hand an outcome to the action event: its log lines, its results, its failure.

Each function's own docstring is the reference.
"""

from ._action import (
    KEEP_RESULT_FILES,
    MAX_ARG_BYTES,
    ActionInputError,
    ActionOutcome,
    Request,
    deliver,
    failed,
    fits_in_result,
    parse_params,
    prune_result_files,
    redacted,
    report,
    write_result_file,
)

__all__ = [
    "KEEP_RESULT_FILES",
    "MAX_ARG_BYTES",
    "ActionInputError",
    "ActionOutcome",
    "Request",
    "deliver",
    "failed",
    "fits_in_result",
    "parse_params",
    "prune_result_files",
    "redacted",
    "report",
    "write_result_file",
]

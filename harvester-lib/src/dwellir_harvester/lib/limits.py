"""Bounds on what the harvester accepts, and text that is safe to show.

::

    from dwellir_harvester.lib.limits import MAX_TIMEOUT, describe_error, one_line, seconds

    timeout = seconds(raw, "timeout")            # finite, > 0, <= MAX_TIMEOUT, or ValueError naming it
    logger.warning("%s", one_line(remote_text))  # one printable line of at most MAX_MESSAGE characters

Every value that enters from outside (a config file, a flag, an action parameter, a plugin's class
attribute, a node's answer) is checked against these bounds where it enters, with an error that
names it. The runner, the daemon and the charm helpers use the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_INTERVAL",
    "MAX_INT_BITS",
    "MAX_MESSAGE",
    "MAX_TIMEOUT",
    "NotJSONError",
    "describe_error",
    "json_data",
    "one_line",
    "seconds",
]

#: The longest a collector may be given to run, in seconds (an hour).
MAX_TIMEOUT = 3600.0
#: The longest interval between two harvests of the daemon, in seconds (a day).
MAX_INTERVAL = 86400.0
#: How deeply collector data, config values and parsed files may nest.
MAX_DEPTH = 64
#: The largest integer collector data may hold, in bits (about 308 decimal digits; uint256 is 78).
MAX_INT_BITS = 1024
#: The most characters one message (an error, a log line's quoted part) carries.
MAX_MESSAGE = 1000


def seconds(value: object, what: str, *, maximum: float = MAX_TIMEOUT) -> float:
    """Return ``value`` as a number of seconds, checked: finite, greater than 0, at most ``maximum``.

    Args:
        value: what was given (a number; strings and booleans are refused).
        what: the name of the setting, for the error (``"timeout"``, ``"--interval"``).
        maximum: the largest accepted value.

    Returns:
        The value as a float.

    Raises:
        ValueError: naming ``what`` and the accepted range when the value is not acceptable.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number of seconds, not {one_line(repr(value), 40)}")
    number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    if not (math.isfinite(number) and 0 < number <= maximum):
        shown = one_line(repr(value), 40)
        raise ValueError(f"{what} must be greater than 0 and at most {maximum:g} seconds, not {shown}")
    return number


def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """Return ``text`` as one printable line of at most ``limit`` characters.

    Line breaks, tabs and every other control or non-printable character become spaces, runs of
    spaces collapse, and a longer text is cut with ``…``. An object whose ``str()`` raises is
    shown by its type name.

    Args:
        text: a string, or anything with a ``str()``.
        limit: the most characters returned (at least 2).

    Returns:
        The line.
    """
    try:
        raw = text if isinstance(text, str) else str(text)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not break the message about it
        raw = f"<{type(text).__name__}>"
    if len(raw) > 4 * limit:  # never scan more than a bounded prefix of a huge text
        raw = raw[: 4 * limit]
        cut = True
    else:
        cut = False
    line = " ".join("".join(c if c.isprintable() else " " for c in raw).split())
    if cut or len(line) > limit:
        line = line[: max(1, limit - 1)] + "…"
    return line


def describe_error(err: BaseException, limit: int = MAX_MESSAGE) -> str:
    """Return ``"Type: message"`` for an exception (just ``"Type"`` when it has no message), as one line.

    Safe for any exception: one whose ``str()`` raises or is huge still gives a short line.
    """
    name = type(err).__name__
    try:
        text = str(err)
    except Exception:  # noqa: BLE001
        return f"{name} (its message could not be read)"
    return one_line(f"{name}: {text}" if text else name, limit)


class NotJSONError(ValueError):
    """A value that is not plain JSON data within the bounds; the message names where it is."""


def json_data(value: Any, path: str = "data", depth: int = 0) -> Any:
    """Return a copy of ``value`` made only of JSON types, within the bounds.

    Tuples become lists. Sets, bytes, datetimes, non-string keys, NaN and infinities are refused
    rather than silently turned into strings, and so are nesting deeper than ``MAX_DEPTH`` and
    integers larger than ``MAX_INT_BITS`` bits (which ``json.dumps`` and most readers cannot
    handle).

    Args:
        value: the data (a collector's, or what a file held).
        path: how to name ``value`` in the error (``data``, ``agent.conf``).
        depth: how deep ``value`` already is.

    Returns:
        The copy.

    Raises:
        NotJSONError: naming the first value (by its path) that is not acceptable.
    """
    if depth > MAX_DEPTH:
        raise NotJSONError(f"{one_line(path, 200)} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise NotJSONError(f"{one_line(path, 200)} is an integer larger than 2**{MAX_INT_BITS}")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJSONError(f"{one_line(path, 200)} is {value!r}, which JSON cannot represent")
        return float(value)
    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            if not isinstance(key, str):
                kind = type(key).__name__
                raise NotJSONError(f"{one_line(path, 200)} has a key of type {kind}; JSON keys are strings")
            copy[str(key)] = json_data(item, f"{path}.{key}", depth + 1)
        return copy
    if isinstance(value, (list, tuple)):
        return [json_data(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise NotJSONError(f"{one_line(path, 200)} is a {type(value).__name__}, which is not a JSON type")

"""Keeping secrets out of collector data: sensitive names, PEM blocks, URLs and command lines.

::

    from dwellir_harvester.lib.redact import REDACTED, is_sensitive, redact_argv, redact_url

Whatever a collector reports that it did not compute itself (files, config, a process's arguments,
a URL from config) should pass through here first; the built-in collectors and the charm helpers
all use these same rules. They err on the side of hiding: a harmless value under a
sensitive-looking name (any name containing one of ``SECRET_WORDS``) is redacted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["REDACTED", "SECRET_WORDS", "is_sensitive", "looks_like_pem", "redact_argv", "redact_url"]

#: What replaces a value that must not be shown.
REDACTED = "<redacted>"

#: Substrings that make a key, option or argument name sensitive (compared case-insensitively).
SECRET_WORDS: tuple[str, ...] = ("password", "passwd", "passphrase", "secret", "token", "credential", "key")

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*-----")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@")
_QUERY_PAIR = re.compile(r"(?P<name>[?&;][^=&#;\s]*)=(?P<value>[^&#;\s]*)")


def is_sensitive(name: str, words: Iterable[str] = SECRET_WORDS) -> bool:
    """Whether ``name`` (a key, an option, a flag) contains one of ``words``, ignoring case."""
    lowered = name.lower()
    return any(word in lowered for word in words)


def looks_like_pem(value: object) -> bool:
    """Whether ``value`` is a string holding a PEM block (a certificate or a key)."""
    return isinstance(value, str) and _PEM.search(value) is not None


def redact_url(text: str) -> str:
    """``text`` with URL credentials (``user:pass@``) and sensitive query parameters redacted.

    Works on a bare URL and on any text that contains URLs (a command-line argument, say).
    """
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    if "?" not in text:
        return text

    def pair(match: re.Match[str]) -> str:
        name = match["name"]
        return f"{name}={REDACTED}" if is_sensitive(name[1:]) and match["value"] else match[0]

    return _QUERY_PAIR.sub(pair, text)


def redact_argv(argv: Sequence[str], words: Iterable[str] = SECRET_WORDS) -> list[str]:
    """A process's arguments with the values of sensitive options redacted.

    Handles ``--rpc-api-key=abc``, ``--password abc`` (the next argument, unless it is another long
    option), ``-password=abc``, ``API_TOKEN=abc``, and credentials inside URLs anywhere.
    """
    words = tuple(words)
    shown: list[str] = []
    redact_next = False
    for arg in argv:
        if redact_next and not arg.startswith("--"):
            shown.append(REDACTED)
            redact_next = False
            continue
        redact_next = False
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and is_sensitive(name, words):
            if eq:
                shown.append(f"{name}={REDACTED}")
            else:
                shown.append(arg)
                redact_next = True
            continue
        if eq and value and not arg.startswith("-") and "/" not in name and is_sensitive(name, words):
            shown.append(f"{name}={REDACTED}")
            continue
        shown.append(redact_url(arg))
    return shown

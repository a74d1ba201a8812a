"""Keeping secrets out of collector data: sensitive names, PEM blocks, URLs and command lines.

::

    from dwellir_harvester.lib.redact import REDACTED, is_sensitive, redact_argv, redact_text, redact_values

Whatever a collector reports that it did not compute itself (files, config, a process's arguments,
a URL from config, an error message) should pass through here first; the built-in collectors, the
engine (for every collector's error messages), the runner (``serve --check-config``) and the charm
helpers all use these same rules. They err on the side of hiding: a harmless value under a
sensitive-looking name (any name containing one of ``SECRET_WORDS``) is redacted too, and so is a
value that looks like key material (a PEM block, a long hex string) whatever its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "REDACTED",
    "SECRET_WORDS",
    "is_sensitive",
    "looks_like_key_material",
    "looks_like_pem",
    "redact_argv",
    "redact_text",
    "redact_url",
    "redact_values",
]

#: What replaces a value that must not be shown.
REDACTED = "<redacted>"

#: Substrings that make a key, option or argument name sensitive (compared case-insensitively).
#: ``pass`` covers password, passwd, passphrase, db-pass; ``auth`` covers auth-header, oauth, basic-auth;
#: ``seed`` and ``mnemonic`` cover wallet recovery phrases; ``private`` covers private-key, privkey.
SECRET_WORDS: tuple[str, ...] = (
    "pass",
    "pwd",
    "secret",
    "token",
    "credential",
    "key",
    "auth",
    "jwt",
    "seed",
    "mnemonic",
    "wallet",
    "private",
    "priv",
    "cookie",
    "session",
    "signature",
    "salt",
)

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*-----")
# 32 bytes or more of hex (a private key, a node key, a seed), alone or 0x-prefixed.
_KEY_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]{64,}$")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+|=|:\s*)[A-Za-z0-9._~+/=-]{8,}")
# A name and the separator before its value (name=value, name: value, "name": "value"); the value is
# found after it without being consumed, so "a= password=x" still finds the password.
# Every pattern starts only where a name can start (a look-behind) and bounds what it scans, so that a
# long token costs one pass, not one pass per character (that was quadratic: 40,000 letters, 30 s).
_NAME_SEP = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z][A-Za-z0-9_.-]{0,127})[\"']?[ \t]{0,16}[=:][ \t]{0,16}[\"']?"
)
_VALUE = re.compile(r"[^\s,;&\"']+")
_URL_USERINFO = re.compile(r"(?P<scheme>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,31}://)[^/?#\s@]{0,4096}@")
_QUERY_PAIR = re.compile(r"(?P<name>[?&;][^=&#;\s]*)=(?P<value>[^&#;\s]*)")


def is_sensitive(name: str, words: Iterable[str] = SECRET_WORDS) -> bool:
    """Whether ``name`` (a key, an option, a flag) contains one of ``words``, ignoring case."""
    lowered = name.lower()
    return any(word in lowered for word in words)


def looks_like_pem(value: object) -> bool:
    """Whether ``value`` is a string holding a PEM block (a certificate or a key)."""
    return isinstance(value, str) and _PEM.search(value) is not None


def looks_like_key_material(value: object) -> bool:
    """Whether ``value`` is a string holding a PEM block or 32 bytes or more of hex (a key or a seed)."""
    return isinstance(value, str) and (looks_like_pem(value) or _KEY_HEX.match(value.strip()) is not None)


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


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with the secrets it may quote redacted.

    URL credentials, sensitive query parameters, ``Bearer``/``Basic`` credentials and
    ``name=value`` or ``name: value`` pairs whose name is sensitive (``password=hunter2``) are
    replaced by ``<redacted>``.
    """
    text = redact_url(text)
    text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)

    spans: list[tuple[int, int]] = []
    for match in _NAME_SEP.finditer(text):
        if spans and match.start() < spans[-1][1]:
            continue  # inside a value already redacted
        if not is_sensitive(match["name"]):
            continue
        value = _VALUE.match(text, match.end())
        if value and value[0] != REDACTED:
            spans.append(value.span())
    for start, end in reversed(spans):
        text = text[:start] + REDACTED + text[end:]
    return text


def redact_values(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` (config, options, any JSON-like data) with its secrets redacted, at any depth.

    A value under a sensitive key is replaced whole; a string anywhere that looks like key material
    is replaced; other strings lose the credentials of the URLs they hold. Nesting deeper than 64
    levels is cut off and shown as ``<redacted>``.
    """
    if depth > 64:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_sensitive(key) else redact_values(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_values(item, depth + 1) for item in value]
    if isinstance(value, str):
        return REDACTED if looks_like_key_material(value) else redact_url(value)
    return value

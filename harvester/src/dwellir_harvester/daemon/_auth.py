"""Bearer tokens: where they come from, and checking a request against them.

Tokens come from ``--auth-token``, ``DAEMON_AUTH_TOKENS``, ``auth_tokens`` in config, and a token file
(``--auth-token-file``, ``DAEMON_AUTH_TOKEN_FILE``, ``auth_token_file``): a JSON or YAML list of
``{token, label, enabled}``. A token file that is missing, unreadable, readable by every user,
writable by anyone but its owner (the file or a directory above it), malformed, empty or without an
enabled token is an error: the daemon never falls back to no auth.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from dwellir_harvester.config import ConfigError, Settings
from dwellir_harvester.lib.files import untrusted_reason

_ENTRY_KEYS = {"token", "label", "enabled"}


class Token(NamedTuple):
    """One accepted (or revoked) token: only its digest is kept."""

    digest: bytes
    label: str
    enabled: bool


#: The largest token file read (a few thousand tokens).
MAX_TOKEN_FILE_BYTES = 1024 * 1024


def _digest(token: str | bytes) -> bytes:
    # Comparing fixed-length digests keeps the comparison constant-time whatever the token's length.
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


def read_token_file(path: str) -> list[Token]:
    """The tokens of a token file; ``ConfigError`` (naming the file and entry) when it cannot be trusted."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError("token file does not exist", file=path) from None
    except OSError as err:
        raise ConfigError(f"token file cannot be read: {err.strerror}", file=path) from err
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("token file is not a regular file", file=path)
    try:
        untrusted = untrusted_reason(path)
    except OSError as err:
        raise ConfigError(f"token file cannot be checked: {err.strerror or err}", file=path) from err
    if untrusted:  # another user could add a token of their own, then wait for the next reload
        raise ConfigError(
            f"token file cannot be trusted: {untrusted}; only its owner and root may be able to change it",
            file=path,
        )
    if st.st_mode & stat.S_IROTH:
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(f"token file is readable by every user (mode {mode:04o}); chmod o-r it", file=path)
    from dwellir_harvester.config import read_bounded

    raw = read_bounded(path, MAX_TOKEN_FILE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"token file is not valid UTF-8 (byte {err.start})", file=path) from None
    return parse_token_entries(_parse(text, path), path)


def _parse(text: str, path: str) -> Any:
    """JSON, else YAML read strictly (bounded aliases, depth and keys), as for config files."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    from dwellir_harvester.config import parse_yaml

    try:
        return parse_yaml(text, path)
    except ConfigError as err:
        raise ConfigError(f"token file is neither JSON nor YAML: {err.message}", file=path) from None


def parse_token_entries(entries: Any, path: str) -> list[Token]:
    if not isinstance(entries, list):
        got = "nothing" if entries is None else type(entries).__name__
        raise ConfigError(f"expected a list of {{token, label, enabled}}, got {got}", file=path)
    tokens = []
    for i, entry in enumerate(entries):
        where = f"entry {i + 1}"
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"expected a mapping with token, label, enabled; got {type(entry).__name__}", file=path, key=where
            )
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} (known: token, label, enabled)", file=path, key=where)
        token, label, enabled = (
            entry.get("token"),
            entry.get("label", f"{os.path.basename(path)}#{i + 1}"),
            entry.get("enabled", True),
        )
        if not isinstance(token, str) or not token.strip():
            raise ConfigError("token must be a non-empty string", file=path, key=f"{where}.token")
        if not isinstance(label, str) or not label:
            raise ConfigError("label must be a non-empty string", file=path, key=f"{where}.label")
        if not isinstance(enabled, bool):
            raise ConfigError(
                f"enabled must be true or false, got {json.dumps(enabled)}", file=path, key=f"{where}.enabled"
            )
        tokens.append(Token(_digest(token.strip()), label, enabled))
    if not any(t.enabled for t in tokens):
        raise ConfigError("token file holds no enabled token", file=path)
    return tokens


def load_tokens(settings: Settings) -> list[Token]:
    """Every configured token: flags, environment and config, then the token file (which adds, never replaces)."""
    tokens = [Token(_digest(t), f"static#{i + 1}", True) for i, t in enumerate(settings.auth_tokens)]
    if settings.auth_token_file:
        tokens.extend(read_token_file(settings.auth_token_file))
    return tokens


#: Why a request was refused; also the ``reason`` label of ``dwellir_harvester_http_refused_total``.
REFUSALS = {
    "no_token": "no token",
    "malformed": "malformed Authorization header",
    "unsupported_scheme": "unsupported Authorization scheme",
    "unknown_token": "unknown token",
    "revoked_token": "revoked token",
}

_SPACE = b" \t"


class Verdict(NamedTuple):
    """The outcome of a check: ``reason`` is a key of ``REFUSALS`` (or ``ok``), ``label`` names the token."""

    allowed: bool
    label: str | None  # for logs only: never sent to the client
    reason: str


def presented_token(authorization: bytes | None, x_auth_token: bytes | None) -> tuple[bytes | None, str]:
    """The token a request carries, or ``None`` and why (a key of ``REFUSALS``).

    ``authorization`` is the ``Authorization`` field's value (``Bearer <token>``, scheme in any
    case, one or more spaces), ``x_auth_token`` the ``X-Auth-Token`` one; a request carries at
    most one of them (the HTTP layer refuses two). The reason never holds any part of the value.
    """
    if authorization is not None:
        value = authorization.strip(_SPACE)
        scheme, space, rest = value.partition(b" ")
        if scheme.lower() == b"bearer":
            token = rest.strip(b" ")
            return (token, "ok") if space and token else (None, "malformed")
        # "Bearer<TAB>tok" and "Bearertok" are malformed Bearer credentials, not another scheme.
        return None, "malformed" if value[:6].lower() == b"bearer" else "unsupported_scheme"
    if x_auth_token is not None:
        token = x_auth_token.strip(_SPACE)
        if token:
            return token, "ok"
    return None, "no_token"


class Authenticator:
    """Checks requests against the tokens; with no tokens, everything is allowed."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = list(tokens)

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (enabled or revoked): then every guarded request needs one."""
        return bool(self.tokens)

    def check(self, authorization: bytes | None, x_auth_token: bytes | None) -> Verdict:
        """Whether a request with these credential fields (raw values, or None) may read a guarded endpoint.

        Args:
            authorization: the value of the request's ``Authorization`` field, if it has one.
            x_auth_token: the value of its ``X-Auth-Token`` field, if it has one.

        Returns:
            The verdict; a digest of the presented token is compared with every known one in
            constant time, without an early exit.
        """
        if not self.tokens:
            return Verdict(True, None, "auth disabled")
        token, reason = presented_token(authorization, x_auth_token)
        if token is None:
            return Verdict(False, None, reason)
        digest = _digest(token)
        match = None
        for candidate in self.tokens:  # no early exit: every request costs the same
            if hmac.compare_digest(digest, candidate.digest):
                match = candidate
        if match is None:
            return Verdict(False, None, "unknown_token")
        if not match.enabled:
            return Verdict(False, match.label, "revoked_token")
        return Verdict(True, match.label, "ok")

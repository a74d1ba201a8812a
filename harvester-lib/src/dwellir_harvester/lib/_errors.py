"""The lib's exceptions: one base, subclasses that carry their context."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._types import Document


class CollectorError(Exception):
    """Base of every exception the SDK defines.

    A collector that raises it (or any other exception) gets the status ``failed``.
    """


class CollectorFailedError(CollectorError):
    """Raised by a collector to fail cleanly: the entry gets status ``failed`` and this message."""


class CollectorPartialError(CollectorError):
    """Raised by a collector that has some of its data: status ``partial``, the data is kept.

    ``messages`` say what is missing; ``data`` is what was collected.
    """

    def __init__(self, messages: str | Sequence[str], data: Mapping[str, Any] | None = None) -> None:
        self.messages: list[str] = [messages] if isinstance(messages, str) else [str(m) for m in messages]
        self.data: dict[str, Any] = dict(data or {})
        super().__init__("; ".join(self.messages) or "partial data")


class UnknownCollectorError(CollectorError, LookupError):
    """A collector name that discovery did not find; ``available`` lists the names that exist."""

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.name = name
        self.available = sorted(available)
        listing = ", ".join(self.available) or "none"
        super().__init__(f"unknown collector {name!r} (available: {listing})")

    def __str__(self) -> str:  # LookupError would quote the message otherwise
        return str(self.args[0])


class CollectorOptionError(CollectorError, TypeError):
    """Options that a collector's constructor does not accept (unknown, missing or wrong)."""

    def __init__(self, collector: str, message: str) -> None:
        self.collector = collector
        super().__init__(f"collector {collector!r}: {message}")


class PluginPathError(CollectorError, OSError):
    """A plugin path that does not exist, is not a directory, or is unsafe to import from."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"plugin path {path}: {reason}")

    def __str__(self) -> str:  # OSError formats its args otherwise
        return f"plugin path {self.path}: {self.reason}"


class DocumentValidationError(CollectorError, ValueError):
    """A document (or a collector's data) that does not match its JSON Schema.

    ``errors`` holds one line per violation, each starting with the JSON path.
    """

    def __init__(self, errors: Sequence[str], what: str = "document") -> None:
        self.errors = list(errors)
        self.document: Document | None = None  # set by harvest(): what did not validate
        first = self.errors[0] if self.errors else "invalid"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{what} does not match its schema: {first}{more}")

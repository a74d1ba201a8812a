"""The harvest document, typed: what ``harvest()`` returns and every consumer reads."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

#: What happened to one collector's run.
Status = Literal["success", "partial", "failed", "timeout"]

#: Every status, in order of how well the run went.
STATUSES: tuple[Status, ...] = ("success", "partial", "failed", "timeout")

#: The statuses that mean the collector gave no usable data.
FAILING: frozenset[Status] = frozenset(("failed", "timeout"))


class EntryMeta(TypedDict):
    """What the framework reports about one collector's run (``collectors.<name>.meta``)."""

    collector_type: str
    collector_name: str
    collector_version: str
    collection_time: str
    status: Status
    errors: list[str]
    duration_ms: float
    source: str


class Entry(TypedDict):
    """One collector's entry: its ``meta`` and its ``data``."""

    meta: EntryMeta
    data: dict[str, Any]


class Problem(TypedDict):
    """Something left out of a harvest (a config file, a plugin, a worker) and why, in one line."""

    where: str
    problem: str


# ``harvester-version`` is not an identifier, so the section is declared in the functional form.
_HarvesterRequired = TypedDict(
    "_HarvesterRequired",
    {
        "harvester-version": str,
        "collection_time": str,
        "collectors_used": list[str],
        "duration_ms": float,
    },
)


class HarvesterSection(_HarvesterRequired, total=False):
    """The document's ``harvester`` section; the runner always adds ``problems`` (possibly empty)."""

    problems: list[Problem]


class Document(TypedDict):
    """A harvest document, as the bundled schema describes it."""

    harvester: HarvesterSection
    host: dict[str, Any]
    collectors: dict[str, Entry]

"""The collector contract: base classes and the result type."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from ._errors import CollectorOptionError

#: What a collector NAME may look like: it becomes a JSON key, a CLI argument and a config key.
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?$")

DEFAULT_TIMEOUT = 30.0


class CollectResult(NamedTuple):
    """What ``collect()`` may return instead of a plain dict.

    ``errors``, when not empty, make the entry ``partial`` (the same as raising
    ``CollectorPartialError(errors, data=data)``).
    """

    data: Mapping[str, Any]
    errors: Sequence[str] = ()


class CollectorBase(abc.ABC):
    """The base of every collector.

    Subclasses set ``NAME`` (unique lookup key, lowercase letters, digits, ``-``, ``_``, ``.``),
    ``VERSION``, and may set ``TIMEOUT`` (seconds, enforced by the engine) and ``SCHEMA`` (a JSON
    Schema for the data, checked when the harvest validates). Constructor keyword arguments are the
    collector's options; ``collect()`` returns a ``dict`` or a ``CollectResult``, never JSON text, and
    reports trouble by raising (see ``CollectorPartialError`` and ``CollectorFailedError``).
    The framework adds all metadata: a collector never builds ``meta`` itself.
    """

    NAME: ClassVar[str]
    VERSION: ClassVar[str] = "0.0.0"
    COLLECTOR_TYPE: ClassVar[str] = "generic"
    TIMEOUT: ClassVar[float] = DEFAULT_TIMEOUT
    SCHEMA: ClassVar[Mapping[str, Any] | None] = None

    @abc.abstractmethod
    def collect(self) -> Mapping[str, Any] | CollectResult:
        """Collect and return this collector's data."""

    def check_data(self, data: Mapping[str, Any]) -> list[str]:
        """Return what is wrong with ``data`` for this collector type; an empty list if nothing.

        Called by the engine after ``collect()``; any problem makes the entry ``failed``.
        """
        return []


class GenericCollector(CollectorBase):
    """A collector whose data has no required shape."""

    COLLECTOR_TYPE: ClassVar[str] = "generic"


#: The fields a blockchain collector must report: section -> field -> accepted types.
BLOCKCHAIN_REQUIRED: Mapping[str, Mapping[str, tuple[type, ...]]] = {
    "blockchain": {
        "blockchain_ecosystem": (str,),
        "blockchain_network_name": (str,),
        "chain_id": (str, int),
    },
    "workload": {
        "client_name": (str,),
        "client_version": (str,),
    },
}


class BlockchainCollector(CollectorBase):
    """A collector for a blockchain node.

    Its data must hold ``blockchain`` (``blockchain_ecosystem``, ``blockchain_network_name``,
    ``chain_id``) and ``workload`` (``client_name``, ``client_version``); an entry missing any of them
    is ``failed`` with a message naming them, even when the collector reported ``partial``.
    """

    COLLECTOR_TYPE: ClassVar[str] = "blockchain"

    def check_data(self, data: Mapping[str, Any]) -> list[str]:
        missing: list[str] = []
        wrong: list[str] = []
        for section, fields in BLOCKCHAIN_REQUIRED.items():
            block = data.get(section)
            if not isinstance(block, Mapping):
                missing.extend(f"{section}.{name}" for name in fields)
                continue
            for name, types in fields.items():
                value = block.get(name)
                if value is None or value == "":
                    missing.append(f"{section}.{name}")
                elif not isinstance(value, types) or isinstance(value, bool):
                    expected = " or ".join(t.__name__ for t in types)
                    wrong.append(f"{section}.{name} must be {expected}, not {type(value).__name__}")
        problems = [f"missing required fields: {', '.join(missing)}"] if missing else []
        return problems + wrong


def check_options(cls: type[CollectorBase], options: Mapping[str, Any]) -> None:
    """Raise ``CollectorOptionError`` unless ``cls(**options)`` matches the constructor's signature."""
    if cls.__init__ is object.__init__:
        if options:
            names = ", ".join(repr(k) for k in options)
            raise CollectorOptionError(cls.NAME, f"unknown option {names} (it takes no options)")
        return
    import inspect

    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # a signature Python cannot introspect: let the call decide
        return
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        unknown = [k for k in options if k not in named]
        if unknown:
            accepted = ", ".join(named) or "none"
            listing = ", ".join(repr(k) for k in unknown)
            raise CollectorOptionError(cls.NAME, f"unknown option {listing} (accepted: {accepted})")
    missing = [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in options
    ]
    if missing:
        raise CollectorOptionError(cls.NAME, f"missing required option {', '.join(repr(m) for m in missing)}")

"""``unit-facts``: what the charm knows about its unit, handed to the collector as options.

The charm passes the facts through ``Harvester(collector_options={"unit-facts": {...}})``, so the
same facts reach the daemon (in the charm's drop-in) and the ``run-collectors`` action. The charm
never puts a secret there (secret-typed options and secret-sounding ones are redacted before they
are written), and the collector redacts again, by the same rules, because its options may also
come from an operator's config file or the command line::

    python -m dwellir_harvester.lib.run unit_facts:UnitFactsCollector --collector-path collectors \\
        --option unit=harvester-example/0 --option 'config={"port": 18080}'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dwellir_harvester.lib import CollectorFailedError, GenericCollector
from dwellir_harvester.lib.redact import REDACTED, is_sensitive, looks_like_pem, redact_url


def _redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for name, value in config.items():
        if is_sensitive(name) or looks_like_pem(value):
            shown[name] = REDACTED
        elif isinstance(value, str):
            shown[name] = redact_url(value)
        else:
            shown[name] = value
    return shown


class UnitFactsCollector(GenericCollector):
    """The Juju application, unit, model and charm this node belongs to, and the charm's config."""

    NAME = "unit-facts"
    VERSION = "1.0.0"
    TIMEOUT = 5.0
    SCHEMA = {
        "type": "object",
        "properties": {
            "application": {"type": "string"},
            "unit": {"type": "string"},
            "model": {"type": "string"},
            "model_uuid": {"type": "string"},
            "charm": {"type": "string"},
            "config": {"type": "object"},
        },
        "required": ["application", "unit", "model", "charm", "config"],
        "additionalProperties": False,
    }

    def __init__(
        self,
        application: str = "",
        unit: str = "",
        model: str = "",
        model_uuid: str = "",
        charm: str = "",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        texts = {"application": application, "unit": unit, "model": model, "model_uuid": model_uuid, "charm": charm}
        for option, value in texts.items():
            if not isinstance(value, str):
                raise CollectorFailedError(f"option {option} must be a string, not {type(value).__name__}")
        if config is not None and not isinstance(config, Mapping):
            raise CollectorFailedError(f"option config must be a mapping, not {type(config).__name__}")
        self.texts = texts
        self.config = dict(config or {})

    def collect(self) -> dict[str, Any]:
        return {**self.texts, "config": _redacted(self.config)}

"""Say in one line what to install when the packages the tests need are missing."""

from __future__ import annotations

import importlib.util

import pytest

NEEDED = {"ops.testing": "'ops[testing]'", "dwellir_harvester.charm.testing": "dwellir-harvester-charm"}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # its package is missing
        return False


def pytest_configure(config: pytest.Config) -> None:
    missing = [package for module, package in NEEDED.items() if not installed(module)]
    if missing:
        raise pytest.UsageError(
            f"the charm's tests need {', '.join(missing)}: pip install {' '.join(missing)} (released), or "
            'with wheels built from a checkout of dwellir-harvester: pip install "$DWELLIR_HARVESTER_WHEELS"/*.whl'
        )

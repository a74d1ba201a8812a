"""``python -m dwellir_harvester.cli``: the same as the ``dwellir-harvester`` command."""

from . import console

console()

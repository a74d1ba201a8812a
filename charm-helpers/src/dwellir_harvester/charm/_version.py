"""The version of dwellir-harvester-charm (written by tools/set-version from VERSION; read by hatchling)."""

__version__ = "0.1.0"

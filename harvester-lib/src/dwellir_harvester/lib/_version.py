"""The version of dwellir-harvester-lib (read by the build backend too)."""

__version__ = "0.1.0"

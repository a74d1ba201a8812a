"""Test-only: installed into the example charm's ``venv/`` alone, so importing it proves which venv ran a collector."""

MARKER = "only in the example charm's venv"

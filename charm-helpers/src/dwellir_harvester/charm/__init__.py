"""Charm helpers (placeholder until the charm helpers land)."""

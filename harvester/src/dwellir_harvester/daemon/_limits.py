"""The daemon's internal limits: what one client may hold, and how long a reload may take.

They are not configuration: operators never need to change them. ``serve(..., limits=Limits(...))``
exists so that the test suite can reach a limit in a second instead of minutes.
"""

from __future__ import annotations

from typing import NamedTuple


class Limits(NamedTuple):
    """Bounds on connections, request heads and reloads.

    Attributes:
        max_connections: connections held at once. At the cap, a new connection evicts (aborts)
            the one that made progress least recently: the longest idle, or a slow client that
            never finished a request.
        head_timeout: seconds a request head may take to arrive in full, counted from the
            connection's start for its first request and from a request's first byte after that.
        idle_timeout: seconds a kept-alive connection may wait for its next request. Only a
            complete request (or answers draining to the client) resets it, never a stray byte.
        max_head_bytes: the largest request head (request line and header fields), in bytes.
        log_interval: seconds between two summary lines of refused requests and dropped
            connections (the first few refusals of each interval are logged one by one).
        reload_timeout: seconds a SIGHUP reload (reading config, tokens, discovering plugins) may
            take; one that takes longer is abandoned and the previous config kept.
    """

    max_connections: int = 512
    head_timeout: float = 5.0
    idle_timeout: float = 15.0
    max_head_bytes: int = 16 * 1024
    log_interval: float = 10.0
    reload_timeout: float = 30.0

"""The client's IP address: the socket peer, or what a trusted proxy says about it.

This module keeps the import path ``compliance.client`` working; the code lives in
:mod:`compliance.geo.addresses`.
"""

from __future__ import annotations

from compliance.geo.addresses import (
    DEFAULT_HEADERS,
    FORWARDED_HEADERS,
    MAX_FORWARDED_CHARS,
    MAX_HOPS,
    ClientAddress,
    TrustedProxies,
    normalize_ip,
    resolve_client,
)

__all__ = [
    "DEFAULT_HEADERS",
    "FORWARDED_HEADERS",
    "MAX_FORWARDED_CHARS",
    "MAX_HOPS",
    "ClientAddress",
    "TrustedProxies",
    "normalize_ip",
    "resolve_client",
]

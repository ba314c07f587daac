"""An ASGI page that believes Cloudflare's headers from 127.0.0.1, for
``tests/test_cdn_header_servers.py``.

The rules are in the folder ``COMPLIANCE_CDN_RULES`` names; a reader the headers do not place
is located by the embedded geolocator.
"""

from __future__ import annotations

import os
from typing import Any

from compliance import Engine, asgi

PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>x</p></body></html>"


async def page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


def __getattr__(name: str) -> Any:
    """``app``, built when the server imports it (importing the module, as pytest's doctest
    collection does, builds nothing)."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    engine = Engine.from_paths([os.environ["COMPLIANCE_CDN_RULES"]])
    return asgi.ComplianceMiddleware(
        page, engine, trusted_proxies=["127.0.0.1/32"], geo_header="cloudflare"
    )

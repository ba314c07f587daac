"""An ASGI page behind nginx, for ``tests/test_forwarded_host_servers.py``.

The rules are in the folder ``COMPLIANCE_FH_RULES`` names; the reader is located by the
embedded geolocator. ``believing`` reads the host nginx names in ``X-Forwarded-Host``
(``forwarded_host=True``), ``plain`` does not. The page says in ``X-Seen-Host`` which
``Host`` it was sent.
"""

from __future__ import annotations

import os
from typing import Any

from compliance import Engine, asgi

PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>x</p></body></html>"


async def page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    host = dict(scope["headers"]).get(b"host", b"")
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"x-seen-host", host)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


def __getattr__(name: str) -> Any:
    """``believing`` and ``plain``, built when the server imports them (importing the
    module, as pytest's doctest collection does, builds nothing)."""
    if name not in ("believing", "plain"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    engine = Engine.from_paths([os.environ["COMPLIANCE_FH_RULES"]])
    options: dict[str, Any] = {"trusted_proxies": ["127.0.0.1/32"]}
    if name == "believing":
        options["forwarded_host"] = True
    return asgi.ComplianceMiddleware(page, engine, **options)

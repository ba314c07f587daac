"""The application ``benchmarks/load.py`` serves: a small HTML page behind the middleware.

Configured by environment variables: ``LOAD_RULES`` (rules directory, watched for changes),
``LOAD_GEO_DB`` (MaxMind file, checked for replacement) and ``LOAD_WATCH`` (seconds between
checks). The proxy in front is 127.0.0.1, so each request's reader is the address in its
``X-Forwarded-For``. ``X-Network`` tells the load script which database network answered.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.geo import MaxMindGeolocator
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

logging.basicConfig(
    stream=sys.stderr, level=logging.WARNING, format="LOG %(levelname)s %(name)s: %(message)s"
)

PAGE = (
    b"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Load</title></head><body>"
    + b"<article><h1>Story</h1>"
    + b"<p>Paragraph of the story, long enough to look like a page.</p>" * 30
    + b"</article></body></html>\n"
)


def _engine() -> Engine:
    watch = float(os.environ.get("LOAD_WATCH", "0.2"))
    geo = MaxMindGeolocator(os.environ["LOAD_GEO_DB"], check_interval=watch)
    return Engine.from_paths([os.environ["LOAD_RULES"]], geolocator=geo, watch=watch)


def _network(decision: Any) -> str:
    return (decision.location.network if decision is not None else None) or "-"


def _wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    network = _network(environ.get("compliance.decision"))
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(PAGE))),
            ("X-Network", network),
        ],
    )
    return [PAGE]


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    network = _network(scope.get("state", {}).get("compliance.decision"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(PAGE)).encode()),
                (b"x-network", network.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": PAGE})


_OPTIONS: dict[str, Any] = {"trusted_proxies": ["127.0.0.1"]}
wsgi_app = WsgiMiddleware(_wsgi, _engine(), **_OPTIONS) if "LOAD_WSGI" in os.environ else None
asgi_app = AsgiMiddleware(_asgi, _engine(), **_OPTIONS) if "LOAD_ASGI" in os.environ else None

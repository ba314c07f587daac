"""Applications for tests/test_servers.py, run under gunicorn (``wsgi_app``) and uvicorn
(``asgi_app``). Configured by environment variables: ``COMPLIANCE_TRUSTED`` (comma-separated
trusted proxies) and ``COMPLIANCE_GEO_HEADER`` (a CDN provider name)."""

from __future__ import annotations

import os
from typing import Any

from compliance import asgi, wsgi
from compliance.engine import Engine

PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>News</title></head>\n'
    b"<body>\n<h1>News</h1>\n<p>Hello.</p>\n</body>\n</html>\n"
)
JSON = b'{"ok": true}'


def _options() -> dict[str, Any]:
    trusted = [part for part in os.environ.get("COMPLIANCE_TRUSTED", "").split(",") if part]
    return {
        "trusted_proxies": trusted,
        "geo_header": os.environ.get("COMPLIANCE_GEO_HEADER") or None,
        "debug_headers": True,
    }


def _route(path: str) -> tuple[bytes, bytes]:
    if path == "/api":
        return b"application/json", JSON
    return b"text/html; charset=utf-8", PAGE


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    ctype, body = _route(environ.get("PATH_INFO", "/"))
    start_response("200 OK", [("Content-Type", ctype.decode()), ("Content-Length", str(len(body)))])
    return [body]


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    ctype, body = _route(scope["path"])
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


engine = Engine.from_paths()
wsgi_app = wsgi.ComplianceMiddleware(bare_wsgi, engine, **_options())
asgi_app = asgi.ComplianceMiddleware(bare_asgi, engine, **_options())

"""Ordinary framework set-ups behind the compliance middleware, for the end-to-end delivery
tests (``tests/test_delivery_servers.py``) and the operations tests
(``tests/test_operations_servers.py``), served by gunicorn (WSGI) and uvicorn (ASGI).

- ``flask_site`` (WSGI): Flask with Flask-Compress in its default configuration.
- ``django_wsgi`` / ``django_asgi``: Django with ``ConditionalGetMiddleware``; ``/accel``
  answers with ``X-Accel-Redirect`` to a file nginx serves (``/internal/page.html``).
- ``starlette_site`` (ASGI): Starlette ``StaticFiles`` serving a page and an htmx fragment
  from ``COMPLIANCE_STATIC_DIR`` (written here), behind a middleware adding the shared-cache
  headers a CDN set-up typically adds.

Each site is the framework's application wrapped twice, as a user would wrap it: by a
middleware with ``fail_mode="open"`` (paths not under ``/closed/``) and one with
``fail_mode="closed"`` (paths under ``/closed/``). Both trust the proxy on 127.0.0.1
(readers are placed by ``X-Forwarded-For``, located by the embedded geolocator), answer the
decision at ``/.well-known/compliance`` and let 127.0.0.1 simulate a location. ``/__metrics``
(outside both middlewares) answers their counters as JSON: ``{"open": ..., "closed": ...}``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from compliance import asgi, wsgi
from compliance.engine import Engine

OPTIONS: dict[str, Any] = {
    "trusted_proxies": ["127.0.0.1/32"],
    "decision_path": "/.well-known/compliance",
    "simulate_from": ["127.0.0.1/32"],
}
SHARED_CACHE = [
    ("Cache-Control", "public, max-age=60, s-maxage=600"),
    ("CDN-Cache-Control", "max-age=600"),
    ("Surrogate-Control", "max-age=600"),
]
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
# Longer than Flask-Compress's COMPRESS_MIN_SIZE (500 bytes), so it compresses.
PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>News</title></head>\n'
    b"<body>\n<h1>News</h1>\n"
    + b"".join(b"<p>Story %d: what happened today, and why.</p>\n" % i for i in range(40))
    + b"</body>\n</html>\n"
)
# An htmx partial, served as a static file.
FRAGMENT = b'<div id="latest"><p>New story: what happened a minute ago.</p></div>\n'

_engine: list[Engine] = []


def _the_engine() -> Engine:
    """The bundled rules with the embedded geolocator, loaded once per process."""
    if not _engine:
        _engine.append(Engine.from_paths())
    return _engine[0]


def _metrics_body(open_: Any, closed: Any) -> bytes:
    return json.dumps({"open": open_.metrics(), "closed": closed.metrics()}).encode()


_METRICS_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


def wsgi_site(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` behind an open and a closed middleware, and ``/__metrics``."""
    engine = _the_engine()
    open_ = wsgi.ComplianceMiddleware(app, engine, **OPTIONS)
    closed = wsgi.ComplianceMiddleware(app, engine, fail_mode="closed", **OPTIONS)

    def site(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/__metrics":
            body = _metrics_body(open_, closed)
            start_response("200 OK", [*_METRICS_HEADERS, ("Content-Length", str(len(body)))])
            return [body]
        return (closed if path.startswith("/closed/") else open_)(environ, start_response)

    return site


def asgi_site(app: Any) -> Any:
    """``app`` behind an open and a closed middleware, and ``/__metrics``."""
    engine = _the_engine()
    open_ = asgi.ComplianceMiddleware(app, engine, **OPTIONS)
    closed = asgi.ComplianceMiddleware(app, engine, fail_mode="closed", **OPTIONS)

    async def site(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/__metrics":
            body = _metrics_body(open_, closed)
            headers = [(k.lower().encode(), v.encode()) for k, v in _METRICS_HEADERS]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await (closed if path.startswith("/closed/") else open_)(scope, receive, send)

    return site


# -- Flask with Flask-Compress (default configuration) ----------------------------------------


def _flask() -> Any:
    from flask import Flask, Response, request
    from flask_compress import Compress

    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14
    except ImportError:
        from backports import zstd  # what Flask-Compress itself uses before 3.14

    app = Flask(__name__)
    Compress(app)

    def page() -> Response:
        response = Response(PAGE, content_type="text/html; charset=utf-8", headers=SHARED_CACHE)
        response.add_etag()
        response.headers["Last-Modified"] = LAST_MODIFIED
        # Flask-Compress suffixes the ETag with the coding and answers the conditional
        # request again after compressing; the view answers it for uncompressed responses.
        return response.make_conditional(request)

    def precompressed() -> Response:
        # A pre-compressed file: Flask-Compress leaves an encoded response alone.
        return Response(
            zstd.compress(PAGE),
            content_type="text/html; charset=utf-8",
            headers=[("Content-Encoding", "zstd"), ("Vary", "Accept-Encoding"), *SHARED_CACHE],
        )

    for prefix in ("", "/closed"):
        app.add_url_rule(f"{prefix}/page", f"page{prefix}", page)
        app.add_url_rule(f"{prefix}/precompressed", f"precompressed{prefix}", precompressed)
    return app


# -- Django with ConditionalGetMiddleware -----------------------------------------------------


def _django_urls() -> list[Any]:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def page(request: HttpRequest) -> HttpResponse:
        response = HttpResponse(PAGE, content_type="text/html; charset=utf-8")
        for name, value in SHARED_CACHE:
            response[name] = value
        response["Last-Modified"] = LAST_MODIFIED
        return response  # ConditionalGetMiddleware adds the ETag and answers 304s

    def accel(request: HttpRequest) -> HttpResponse:
        # The file served by nginx in front (django-sendfile2's nginx back-end, by hand).
        response = HttpResponse(b"", content_type="text/html; charset=utf-8")
        response["X-Accel-Redirect"] = "/internal/page.html"
        response["ETag"] = '"file-v1"'
        return response

    return [
        path("page", page),
        path("closed/page", page),
        path("accel", accel),
        path("closed/accel", accel),
    ]


def _django(kind: str) -> Any:
    """Django's WSGI or ASGI handler, for settings made here (ROOT_URLCONF: this module)."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="compliance tests only",
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.http.ConditionalGetMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    if kind == "asgi":
        from django.core.asgi import get_asgi_application

        return get_asgi_application()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# -- Starlette StaticFiles --------------------------------------------------------------------


def _static_dir() -> Path:
    folder = Path(os.environ.get("COMPLIANCE_STATIC_DIR") or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "page.html").write_bytes(PAGE)
    (folder / "latest.html").write_bytes(FRAGMENT)
    return folder


def _shared_cache_headers(app: Any) -> Any:
    """What a site adds in front of its static files for a CDN."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                added = [(k.lower().encode(), v.encode()) for k, v in SHARED_CACHE]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await app(scope, receive, sending if scope["type"] == "http" else send)

    return wrapped


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    files = StaticFiles(directory=_static_dir(), html=True)
    return Starlette(
        routes=[Mount("/static", app=files), Mount("/closed/static", app=files)],
        middleware=[],
    )


# -- the sites, built on first use: a server process imports only the framework it serves ----

_SITES: dict[str, Callable[[], Any]] = {
    "flask_site": lambda: wsgi_site(_flask()),
    "django_wsgi": lambda: wsgi_site(_django("wsgi")),
    "django_asgi": lambda: asgi_site(_django("asgi")),
    "starlette_site": lambda: asgi_site(_shared_cache_headers(_starlette())),
    "urlpatterns": _django_urls,  # Django's ROOT_URLCONF is this module
}
_built: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name not in _SITES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        _built[name] = _SITES[name]()
    return _built[name]

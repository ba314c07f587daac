"""The same small site in Flask, Django, Starlette and FastAPI, for tests/test_frameworks.py.

Routes: ``/`` an HTML page, ``/api`` JSON, ``/stream`` streamed HTML, ``/gz`` a page big
enough for the framework's gzip middleware (Flask, which has none, compresses it itself),
``/file`` an HTML file response, and ``/news/2024/withdrawn-article.html`` (blocked in DE on
``*.example`` hosts by the bundled example rule).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from typing import Any

PARAGRAPH = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n"


def page(paragraphs: int = 3) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>News</title>'
        "</head>\n<body>\n<h1>News</h1>\n" + PARAGRAPH * paragraphs + "</body>\n</html>\n"
    )


def page_chunks() -> Iterator[str]:
    text = page(20)
    for i in range(0, len(text), 97):
        yield text[i : i + 97]


JSON = '{"ok": true, "items": [1, 2, 3]}'


def write_file(folder: str) -> str:
    path = os.path.join(folder, "page.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page(5))
    return path


# -- Flask --------------------------------------------------------------------------------------


def flask_app(file_path: str) -> Any:
    from flask import Flask, Response, send_file

    app = Flask("compliance_test_flask")

    @app.get("/")
    def index() -> str:
        return page()

    @app.get("/api")
    def api() -> Response:
        return Response(JSON, mimetype="application/json")

    @app.get("/stream")
    def stream() -> Response:
        return Response(page_chunks(), mimetype="text/html")

    @app.get("/gz")
    def gz() -> Response:
        body = gzip.compress(page(40).encode())
        return Response(
            body,
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            mimetype="text/html",
        )

    @app.get("/file")
    def file() -> Response:
        return send_file(file_path, mimetype="text/html")

    @app.get("/news/2024/withdrawn-article.html")
    def withdrawn() -> str:
        return page()

    return app


# -- Django -------------------------------------------------------------------------------------


def _django_views() -> list[Any]:
    from django.http import FileResponse, HttpResponse, StreamingHttpResponse
    from django.urls import path

    def index(request: Any) -> HttpResponse:
        return HttpResponse(page(40 if request.path == "/gz" else 3))

    def api(request: Any) -> HttpResponse:
        return HttpResponse(JSON, content_type="application/json")

    def stream(request: Any) -> StreamingHttpResponse:
        return StreamingHttpResponse(page_chunks(), content_type="text/html")

    def file(request: Any) -> FileResponse:
        return FileResponse(open(DJANGO_FILE[0], "rb"), content_type="text/html")

    return [
        path("", index),
        path("gz", index),
        path("api", api),
        path("stream", stream),
        path("file", file),
        path("news/2024/withdrawn-article.html", index),
    ]


DJANGO_FILE: list[str] = []
urlpatterns: list[Any] = []


def django_app(file_path: str) -> Any:
    """Django's WSGI handler with GZipMiddleware in MIDDLEWARE; settings configured once."""
    import django
    from django.conf import settings

    DJANGO_FILE[:] = [file_path]
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="compliance-tests",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[
                "django.middleware.gzip.GZipMiddleware",
                "django.middleware.common.CommonMiddleware",
            ],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
        urlpatterns[:] = _django_views()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# -- Starlette and FastAPI ----------------------------------------------------------------------


async def _astream() -> Any:
    for chunk in page_chunks():
        yield chunk


def starlette_app(file_path: str) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page())

    async def gz(request: Request) -> HTMLResponse:
        return HTMLResponse(page(40))

    async def api(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "items": [1, 2, 3]})

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(_astream(), media_type="text/html")

    async def file(request: Request) -> FileResponse:
        return FileResponse(file_path, media_type="text/html")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/gz", gz),
            Route("/api", api),
            Route("/stream", stream),
            Route("/file", file),
            Route("/news/2024/withdrawn-article.html", index),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=500)],
    )


def fastapi_app(file_path: str) -> Any:
    from fastapi import FastAPI
    from fastapi.middleware.gzip import GZipMiddleware
    from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=500)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page()

    @app.get("/gz", response_class=HTMLResponse)
    async def gz() -> str:
        return page(40)

    @app.get("/api")
    async def api() -> dict[str, Any]:
        return {"ok": True, "items": [1, 2, 3]}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(_astream(), media_type="text/html")

    @app.get("/file")
    async def file() -> FileResponse:
        return FileResponse(file_path, media_type="text/html")

    @app.get("/news/2024/withdrawn-article.html", response_class=HTMLResponse)
    async def withdrawn() -> str:
        return page()

    return app

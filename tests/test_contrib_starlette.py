"""compliance.contrib.starlette: the decision dependency and the Jinja2Templates helper, with
real FastAPI and Starlette apps (in process and once through uvicorn)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("jinja2")

from fastapi import Depends, FastAPI, Request  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from fastapi.templating import Jinja2Templates  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from compliance import Engine  # noqa: E402
from compliance.asgi import ComplianceMiddleware  # noqa: E402
from compliance.contrib.starlette import compliance_decision, install_templates  # noqa: E402

RUSSIAN, GERMAN = "77.88.55.88", "81.169.145.105"
NOTICE = 'data-compliance-rule="ru-undesirable-organization"'

PAGE = """<!DOCTYPE html><html lang="en"><body><header>Site</header>
{% if place %}{{ compliance_notices() }}{% endif %}<main><h1>Story</h1></main></body></html>"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = Engine.from_paths(packs=["russia"])
    yield engine
    engine.close()


def fastapi_app(engine: Engine, templates_dir: Path, *, cdn: bool = False) -> FastAPI:
    """With ``cdn``, a middleware inside ComplianceMiddleware makes every answer cacheable
    by shared caches, as a site behind a CDN does."""
    (templates_dir / "page.html").write_text(PAGE, encoding="utf-8")
    app = FastAPI()
    if cdn:

        @app.middleware("http")
        async def shared(request: Request, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["Cache-Control"] = "public, max-age=60, s-maxage=600"
            return response

    app.add_middleware(ComplianceMiddleware, engine=engine, trusted_proxies=["127.0.0.1/32"])
    templates = install_templates(Jinja2Templates(directory=str(templates_dir)))

    @app.get("/api/notices")
    def notices(decision: Annotated[Any, Depends(compliance_decision)]) -> dict[str, Any]:
        return {
            "country": decision.location.country,
            "notices": [n.rule_id for n in decision.notices],
        }

    @app.get("/page", response_class=HTMLResponse)
    def page(request: Request, place: bool = False) -> Any:
        return templates.TemplateResponse(request, "page.html", {"place": place})

    return app


def get(app: Any, path: str, ip: str) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path, headers={"X-Forwarded-For": ip})

    return asyncio.run(run())


def test_the_dependency_returns_the_decision(engine: Engine, tmp_path: Path) -> None:
    app = fastapi_app(engine, tmp_path)
    assert get(app, "/api/notices", RUSSIAN).json() == {
        "country": "RU",
        "notices": ["ru-undesirable-organization"],
    }
    assert get(app, "/api/notices", GERMAN).json() == {"country": "DE", "notices": []}


def test_the_middleware_injects_into_a_template_response(engine: Engine, tmp_path: Path) -> None:
    app = fastapi_app(engine, tmp_path)
    page = get(app, "/page", RUSSIAN).text
    assert page.count(NOTICE) == 1
    assert page.index("</main>") < page.index(NOTICE)  # body_end, by the middleware


def test_the_template_places_the_notice_once(engine: Engine, tmp_path: Path) -> None:
    app = fastapi_app(engine, tmp_path)
    page = get(app, "/page?place=true", RUSSIAN).text
    assert page.count(NOTICE) == 1
    assert page.index("<header>Site</header>") < page.index(NOTICE) < page.index("<main>")
    assert NOTICE not in get(app, "/page?place=true", GERMAN).text


def test_a_plain_starlette_endpoint_calls_it_as_a_function(engine: Engine) -> None:
    async def endpoint(request: Any) -> JSONResponse:
        decision = compliance_decision(request)
        return JSONResponse({"country": decision.location.country if decision else None})

    app = ComplianceMiddleware(
        Starlette(routes=[Route("/", endpoint)]), engine, trusted_proxies=["127.0.0.1/32"]
    )
    assert get(app, "/", RUSSIAN).json() == {"country": "RU"}
    bare = Starlette(routes=[Route("/", endpoint)])
    assert get(bare, "/", RUSSIAN).json() == {"country": None}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _uvicorn(app: Any) -> Iterator[httpx.Client]:
    """``app`` served by uvicorn on 127.0.0.1 (in a thread): a client for it."""
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.slow
def test_through_uvicorn(engine: Engine, tmp_path: Path) -> None:
    with _uvicorn(fastapi_app(engine, tmp_path)) as client:
        page = client.get("/page?place=true", headers={"X-Forwarded-For": RUSSIAN})
        api = client.get("/api/notices", headers={"X-Forwarded-For": RUSSIAN})
    assert page.text.count(NOTICE) == 1
    assert api.json()["notices"] == ["ru-undesirable-organization"]


@pytest.mark.slow
def test_an_answer_built_from_the_decision_is_never_shared(engine: Engine, tmp_path: Path) -> None:
    """The documented JSON endpoint, on a site that makes its answers cacheable by a CDN:
    what it says depends on the reader's location, so it is private, as a page is (it went
    out ``public``: a shared cache gave the first reader's notices to every reader). An
    answer that does not read the decision keeps its own caching headers."""
    app = fastapi_app(engine, tmp_path, cdn=True)

    @app.get("/api/time")
    def clock() -> dict[str, int]:
        return {"year": 2025}

    with _uvicorn(app) as client:
        answers = {
            ip: client.get("/api/notices", headers={"X-Forwarded-For": ip})
            for ip in (RUSSIAN, GERMAN)
        }
        other = client.get("/api/time", headers={"X-Forwarded-For": RUSSIAN})
    assert answers[RUSSIAN].json()["notices"] == ["ru-undesirable-organization"]
    assert answers[GERMAN].json()["notices"] == []
    for answer in answers.values():
        directives = {d.strip() for d in answer.headers["cache-control"].split(",")}
        assert directives == {"max-age=60", "private"}
    assert other.headers["cache-control"] == "public, max-age=60, s-maxage=600"


def test_the_counters_of_a_middleware_added_by_add_middleware_reach_prometheus() -> None:
    """``app.add_middleware`` makes the middleware inside Starlette, on the first request:
    a FastAPI site had no object whose ``metrics()`` it could give the Prometheus collector.
    Run in a fresh interpreter, so that no other test's middleware is in the process."""
    import json
    import subprocess
    import sys

    code = f"""
import asyncio, json
import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry, generate_latest
from compliance import Engine
from compliance.asgi import ComplianceMiddleware
from compliance.contrib.prometheus import ComplianceCollector
from compliance.contrib.starlette import metrics

engine = Engine.from_paths(packs=["russia"])
app = FastAPI()
app.add_middleware(ComplianceMiddleware, engine=engine, trusted_proxies=["127.0.0.1/32"])

@app.get("/", response_class=HTMLResponse)
def page():
    return "<html><body><main>Story</main></body></html>"

registry = CollectorRegistry()
registry.register(ComplianceCollector(metrics))
before = metrics()["decisions"]

async def run():
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for ip in ({RUSSIAN!r}, {GERMAN!r}, {RUSSIAN!r}):
            await c.get("/", headers={{"X-Forwarded-For": ip}})

asyncio.run(run())
engine.reload()
print(json.dumps([before, metrics(), generate_latest(registry).decode()]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before, counted, exposition = json.loads(done.stdout)
    assert before == 0
    assert counted["decisions"] == 3
    assert counted["notices_injected"] == {"ru-undesirable-organization|RU": 2}
    assert counted["reloads"] == {"ok": 1}
    assert "compliance_decisions_total 3.0" in exposition

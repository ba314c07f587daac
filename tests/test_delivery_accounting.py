"""Delivery accounting and caching, three cases found in review of the stop-31 changes, each
failing before its fix: a notice placed in the call where an injector fault struck was counted
as delivered though the recovered page went out without it; an answer built from the decision
went out public when no rule depended on the location; a bodiless HEAD of a partial-page
request lacked the GET's Vary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compliance import core, testing
from compliance.engine import Engine
from compliance.inject import Injector
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RU = "192.0.2.1"
RULES = """\
version: 1
rules:
  - id: ru-notice
    title: a notice for readers in Russia
    jurisdictions: [RU]
    notice:
      default_locale: en
      text:
        en: A notice for readers in Russia.
"""
HTML = ("Content-Type", "text/html; charset=utf-8")
NOTICE = b"A notice for readers in Russia."


@pytest.fixture(autouse=True)
def _every_line_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "_seen", {})


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("compliance") and r.levelno == logging.WARNING
    ]


# -- 1. an injector fault after it placed a notice, failing open after the headers ----------


def test_injector_fault_after_placing_the_notice_is_not_counted_as_delivered(
    make_engine: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The headers are out (a streamed page, failing open), then the injector places the
    body_end notice and hits an internal error later in the same call. The body editor
    (b686faf) throws that call's output away -- the notice with it -- and sends the page
    recovered from its input; yet the placement stays in ``inserted_placements``, so the
    core counts the notice as injected and tells no loss: the reader in Russia gets a page
    without its notice, in silence (an ERROR for the fault, but no WARNING and nothing in
    notices_not_delivered)."""
    route = Injector._route

    def route_then_fail(self: Injector, *args: Any) -> Any:
        if self.inserted:  # a bug reached after the notice went in, in the same call
            raise RuntimeError("injector bug after the insertion")
        return route(self, *args)

    monkeypatch.setattr(Injector, "_route", route_then_fail)
    chunks = [
        b"<!DOCTYPE html><html><head><title>s</title></head><body><h1>News</h1>",
        b"<p>one</p>" + b" " * 5000,
        b"<p>two</p></body></html>\n",
    ]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [HTML])
        return iter(list(chunks))

    middleware = WsgiMiddleware(app, make_engine(RULES, {RU: "RU"}))
    with caplog.at_level(logging.WARNING, "compliance"):
        response = testing.call_wsgi(middleware, testing.wsgi_environ("/", peer=RU))
    metrics = middleware.metrics()
    assert response.status == 200
    assert response.body == b"".join(chunks)  # the page went on, unedited
    assert NOTICE not in response.body  # ... so the notice is not in it
    assert metrics["faults"] == {"editing": 1}
    # The promise: not in the page => WARNING + counted. Neither happens; it is counted
    # as injected instead.
    assert metrics["notices_injected"] == {}, "a notice not in the page counted as injected"
    assert metrics["notices_not_delivered"] == {"fault": 1}
    assert any("(fault)" in line and "ru-notice" in line for line in _warnings(caplog))


# -- 2. a decision-built answer under rules that apply to every reader ---------------------

EVERYWHERE = """\
version: 1
rules:
  - id: agent-label
    title: a label every reader gets (the docs' foreign-agent example, one locale)
    jurisdictions: ["*"]
    unknown_location: apply
    notice:
      default_locale: ru
      text:
        ru: Настоящий материал произведен иностранным агентом.
"""


def test_a_decision_built_json_answer_is_private_even_when_no_rule_depends_on_location(
    make_engine: Callable[..., Engine],
) -> None:
    """The documented FastAPI endpoint (``Depends(compliance_decision)``) answers the
    reader's country. c3df0a3 promises such an answer "JSON or not, gets Vary and
    Cache-Control: private" (docs/integrations.md, the helpers' docstrings); the
    middleware's own decision JSON (``decision_path``) is always private. But the core
    gives a marked answer ``_location_headers``, which adds ``private`` only when
    ``decision.private``: with rules that do the same for every reader (the docs'
    foreign-agent label, ``"*"`` + ``unknown_location: apply``) that is False, so the
    answer keeps the ``public, s-maxage=600`` the site adds, with no Vary: a CDN gives
    the first reader's country to every reader."""
    pytest.importorskip("fastapi")
    import asyncio

    import httpx
    from fastapi import Depends, FastAPI, Request

    from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
    from compliance.contrib.starlette import compliance_decision

    engine = make_engine(EVERYWHERE, {RU: "RU", "192.0.2.2": "DE"})
    app = FastAPI()

    @app.middleware("http")
    async def shared(request: Request, call_next: Any) -> Any:  # a site behind a CDN
        response = await call_next(request)
        response.headers["Cache-Control"] = "public, max-age=60, s-maxage=600"
        return response

    app.add_middleware(AsgiMiddleware, engine=engine, trusted_proxies=["127.0.0.1/32"])

    @app.get("/api/notices")
    def notices(decision: Any = Depends(compliance_decision)) -> dict[str, Any]:  # noqa: B008
        return {
            "country": decision.location.country,
            "notices": [n.rule_id for n in decision.notices],
        }

    async def get(ip: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/api/notices", headers={"X-Forwarded-For": ip})

    russian, german = asyncio.run(get(RU)), asyncio.run(get("192.0.2.2"))
    assert russian.json()["country"] == "RU"
    assert german.json()["country"] == "DE"  # the answer depends on the reader's location
    for response in (russian, german):
        control = response.headers.get("cache-control", "")
        assert "private" in control, control
        assert "s-maxage" not in control, control


# -- 3. a HEAD answered without a body (Werkzeug) for a fragment: not the GET's Vary ---------


def test_a_bodiless_head_of_a_fragment_has_the_gets_vary(
    make_engine: Callable[..., Engine],
) -> None:
    """docs/caching.md: "HEAD, 304 and 206 responses carry the same Vary and Cache-Control
    as the GET they stand for"; the one exception it names is a language only the body's
    <html lang> gives. The GET of a fragment (an htmx partial here) carries ``Vary:
    HX-Request, HX-Boosted, Turbo-Frame`` (added in Exchange._commit from
    ``editor.fragment``); the HEAD Werkzeug answers without a body goes out with
    ``Exchange._head``, built in _start before any body, which never has it."""
    fragment = b"<div><p>partial</p></div>"
    engine = make_engine(RULES, {RU: "RU"})

    def run(method: str) -> testing.TestResponse:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response("200 OK", [HTML, ("Content-Length", str(len(fragment)))])
            return [] if method == "HEAD" else [fragment]  # as Werkzeug answers a HEAD

        environ = testing.wsgi_environ(
            "/", peer=RU, method=method, headers=[("HX-Request", "true")]
        )
        return testing.call_wsgi(WsgiMiddleware(app, engine), environ)

    get, head = run("GET"), run("HEAD")
    assert "HX-Request" in (get.header("Vary") or "")
    assert head.header("Vary") == get.header("Vary")

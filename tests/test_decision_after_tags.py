"""The decision an application reads after tagging its content (found in review: it was the
decision made before the tags, so a view or a JSON API built from it left out the tagged
notice the page then got)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
RUSSIAN, GERMAN = "77.88.55.88", "81.169.145.105"  # by the embedded lookup
AGENT = {"agent-instrumental": "Ивановым", "agent-genitive": "Иванова"}


def test_flask_decision_read_after_tagging_is_stale() -> None:
    """docs/integrations.md's Flask example: the view tags its content, then reads
    decision(). The decision it gets was made before the tag, so the view (or a JSON API
    built from it) leaves out the tagged notice the page then gets."""
    flask = pytest.importorskip("flask")
    from compliance.contrib.flask import Compliance, decision

    app = flask.Flask(__name__)
    app.config["COMPLIANCE_VARIABLES"] = AGENT

    @app.get("/api")
    def api() -> Any:
        flask.request.environ["compliance.tags"] = ["foreign-agent"]
        return flask.jsonify(notices=[n.rule_id for n in decision().notices])

    @app.get("/page")
    def page() -> str:
        flask.request.environ["compliance.tags"] = ["foreign-agent"]
        told = ",".join(n.rule_id for n in decision().notices)
        return f"<html lang='en'><body><h1>x</h1><p id='told'>{told}</p></body></html>"

    Compliance(app)
    client = app.test_client()
    text = client.get("/page", environ_base={"REMOTE_ADDR": RUSSIAN}).text
    in_page = set(re.findall(r'data-compliance-rule="([^"]+)"', text))
    told = set(re.search(r"<p id='told'>([^<]*)</p>", text).group(1).split(","))  # type: ignore[union-attr]
    assert "ru-foreign-agent-label" in in_page  # the middleware re-decided with the tag
    assert told == in_page  # before: only ru-undesirable-organization
    answer = client.get("/api", environ_base={"REMOTE_ADDR": RUSSIAN}).json
    assert "ru-foreign-agent-label" in answer["notices"]


def test_starlette_compliance_decision_after_tagging_is_stale() -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from compliance import Engine
    from compliance.asgi import ComplianceMiddleware
    from compliance.contrib.starlette import compliance_decision

    async def api(request: Request) -> JSONResponse:
        request.scope["state"]["compliance.tags"] = ["foreign-agent"]
        decision = compliance_decision(request)
        return JSONResponse({"notices": [n.rule_id for n in decision.notices]})

    app = ComplianceMiddleware(
        Starlette(routes=[Route("/api", api)]), Engine.from_paths(variables=AGENT)
    )

    async def get() -> Any:
        import httpx

        transport = httpx.ASGITransport(app=app, client=(RUSSIAN, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/api")).json()

    import asyncio

    assert "ru-foreign-agent-label" in asyncio.run(get())["notices"]

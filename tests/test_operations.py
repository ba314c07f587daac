"""Operating the middleware (issue 17): the decision endpoint, simulated locations for
developers, counters and the per-decision log record, on both adapters."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from compliance import testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.errors import ConfigurationError
from compliance.testing import TestResponse
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RU, DE, PROXY = "192.0.2.1", "192.0.2.2", "10.0.0.1"
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
        ru: Уведомление для читателей в России.
"""
PAGE = b"<html><body><p>Story</p></body></html>"
ENDPOINT = "/.well-known/compliance"


@pytest.fixture(scope="module")
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(RULES)


def page_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    rendered = environ.get("compliance.rendered")
    if environ.get("PATH_INFO") == "/rendered" and rendered is not None:
        rendered.add("ru-notice")  # the page's template rendered this notice itself
    start_response("200 OK", [("Content-Type", "text/html")])
    return [PAGE]


async def page_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/rendered":
        scope["state"]["compliance.rendered"].add("ru-notice")
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
    )
    await send({"type": "http.response.body", "body": PAGE})


Client = Callable[..., TestResponse]


@pytest.fixture(params=["wsgi", "asgi"])
def make(request: pytest.FixtureRequest, engine: Engine) -> Callable[..., tuple[Client, Any]]:
    def build(**options: Any) -> tuple[Client, Any]:
        if request.param == "wsgi":
            middleware: Any = WsgiMiddleware(page_app, engine, **options)

            def wsgi(path: str = "/", peer: str = RU, headers: Any = ()) -> TestResponse:
                environ = testing.wsgi_environ(path, peer=peer, headers=list(headers))
                environ["QUERY_STRING"] = path.partition("?")[2]
                environ["PATH_INFO"] = path.partition("?")[0]
                return testing.call_wsgi(middleware, environ)

            return wsgi, middleware
        middleware = AsgiMiddleware(page_asgi, engine, **options)

        def asgi(path: str = "/", peer: str = RU, headers: Any = ()) -> TestResponse:
            return testing.call_asgi(
                middleware, testing.asgi_scope(path, peer=peer, headers=list(headers))
            )

        return asgi, middleware

    return build


def notices(response: TestResponse) -> list[str]:
    return response.notices


# -- the decision endpoint --------------------------------------------------------------------


def test_the_decision_endpoint_is_off_by_default(make: Callable[..., Any]) -> None:
    client, _ = make()
    response = client(ENDPOINT)
    assert response.header("Content-Type") == "text/html"  # the application answered


def test_the_decision_endpoint_answers_json(make: Callable[..., Any]) -> None:
    client, _ = make(decision_path=ENDPOINT)
    response = client(ENDPOINT, headers=[("Accept-Language", "ru")])
    assert response.status == 200
    assert response.header("Content-Type") == "application/json"
    document = json.loads(response.body)
    assert document["location"] == {"country": "RU", "subdivisions": [], "source": "fixed"}
    [notice] = document["notices"]
    assert notice["rule"] == "ru-notice"
    assert notice["locale"] == "ru"
    assert notice["placement"] == "body_end"
    assert "России" in notice["text"]
    assert notice["html"].startswith('<aside class="compliance-notice"')
    assert document["block"] is None
    assert "private" in (response.header("Cache-Control") or "")
    assert "accept-language" in (response.header("Vary") or "").lower()
    german = json.loads(client(ENDPOINT, peer=DE).body)
    assert german["notices"] == []


@pytest.mark.parametrize(
    "path",
    ["/.well-known/%63ompliance", "/x/../.well-known/compliance", "/.well-known//compliance"],
)
def test_the_decision_endpoint_is_matched_as_rules_match_paths(engine: Engine, path: str) -> None:
    """An escaped letter or a dot segment reaches the endpoint through either adapter and
    whether the server hands on the path as sent (gunicorn's RAW_URI, ASGI's raw_path) or
    only decoded (PATH_INFO): it was compared as sent, so the answer depended on the
    server."""
    wsgi = WsgiMiddleware(page_app, engine, decision_path=ENDPOINT)
    asgi = AsgiMiddleware(page_asgi, engine, decision_path=ENDPOINT)
    environ = testing.wsgi_environ(path, peer=RU)
    answers = [
        testing.call_wsgi(wsgi, environ),
        testing.call_wsgi(wsgi, {**environ, "RAW_URI": path}),
        testing.call_asgi(asgi, testing.asgi_scope(path, peer=RU)),
    ]
    types = {answer.header("Content-Type") for answer in answers}
    assert types == {"application/json"}, types


def test_decision_path_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="decision_path"):
        WsgiMiddleware(page_app, Engine.from_paths(), decision_path="well-known")


# -- simulated locations ----------------------------------------------------------------------


def test_simulation_is_off_by_default(make: Callable[..., Any]) -> None:
    client, _ = make()
    assert notices(client(peer=DE, headers=[("X-Compliance-Simulate", "RU")])) == []


def test_a_developer_address_may_simulate_a_location(make: Callable[..., Any]) -> None:
    client, _ = make(simulate_from=["192.0.2.2/32"])
    response = client(peer=DE, headers=[("X-Compliance-Simulate", "RU")])
    assert notices(response) == ["ru-notice"]
    assert "private" in (response.header("Cache-Control") or "")
    assert notices(client("/?compliance-simulate=ru", peer=DE)) == ["ru-notice"]
    assert notices(client(peer=DE, headers=[("X-Compliance-Simulate", "ZZ")])) == []
    assert notices(client(peer=DE, headers=[("X-Compliance-Simulate", "<script>")])) == []


@pytest.mark.parametrize("value", ["QQ", "RU-CR", "UA-99", "qq-43"])
def test_a_code_iso_has_not_assigned_simulates_nothing(
    make: Callable[..., Any], value: str
) -> None:
    # Codes of the right shape that name no country or subdivision used to give a location
    # no rule and no real geolocator could: the reader is located as without the header.
    client, _ = make(simulate_from=[f"{RU}/32"], decision_path=ENDPOINT)
    response = client(ENDPOINT, headers=[("X-Compliance-Simulate", value)])
    location = json.loads(response.body)["location"]
    assert (location["country"], location["source"]) == ("RU", "fixed")
    assert notices(client(headers=[("X-Compliance-Simulate", value)])) == ["ru-notice"]
    crimea = client(ENDPOINT, headers=[("X-Compliance-Simulate", "ua-43")])
    assert json.loads(crimea.body)["location"]["subdivisions"] == ["UA-43"]


def test_a_simulated_subdivision_comes_with_the_ones_that_hold_it(
    make: Callable[..., Any],
) -> None:
    """A developer simulating Brighton (GB-BNH) was placed in GB-BNH alone, where a City
    database (and now a CDN's region) places a reader there in GB-ENG too: the simulation
    did not show what such a reader gets."""
    client, _ = make(simulate_from=[f"{RU}/32"], decision_path=ENDPOINT)
    response = client(ENDPOINT, headers=[("X-Compliance-Simulate", "gb-bnh")])
    assert json.loads(response.body)["location"]["subdivisions"] == ["GB-ENG", "GB-BNH"]


def test_only_the_resolved_address_counts_never_a_proxys_own(make: Callable[..., Any]) -> None:
    # The proxy's own address is listed, but a reader behind it is someone else: trusting a
    # proxy must never let every reader choose a location.
    client, _ = make(simulate_from=[f"{PROXY}/32"], trusted_proxies=["10.0.0.0/8"])
    response = client(
        peer=PROXY, headers=[("X-Forwarded-For", DE), ("X-Compliance-Simulate", "RU")]
    )
    assert notices(response) == []


def test_forwarded_header_beside_trusted_proxies_is_not_ignored(
    make: Callable[..., Any],
) -> None:
    """``forwarded_header`` next to a ready ``TrustedProxies`` (which names its own header)
    was stored but never read: the client address came from X-Forwarded-For, a header an
    X-Real-IP-writing proxy passes through from the reader, who could then pick a country."""
    from compliance.geo import TrustedProxies

    with pytest.raises(ConfigurationError, match="give forwarded_header to TrustedProxies"):
        make(trusted_proxies=TrustedProxies(["10.0.0.0/8"]), forwarded_header="x-real-ip")
    # Said once, in TrustedProxies, it is read (and the settings name what is read).
    proxies = TrustedProxies(["10.0.0.0/8"], forwarded_header="x-real-ip")
    client, middleware = make(trusted_proxies=proxies)
    assert middleware.settings.forwarded_header == "x-real-ip"
    response = client(peer=PROXY, headers=[("X-Real-IP", DE), ("X-Forwarded-For", RU)])
    assert notices(response) == []
    client, _ = make(trusted_proxies=proxies, forwarded_header="x-real-ip")  # the same: fine
    assert notices(client(peer=PROXY, headers=[("X-Real-IP", RU)])) == ["ru-notice"]


# -- notices the page rendered itself ---------------------------------------------------------


def test_notices_the_page_rendered_are_not_injected_again(make: Callable[..., Any]) -> None:
    client, middleware = make()
    assert notices(client("/rendered")) == []
    assert notices(client("/")) == ["ru-notice"]
    assert middleware.metrics()["notices_not_delivered"] == {}


# -- counters and the decision log ------------------------------------------------------------


def test_counters(make: Callable[..., Any]) -> None:
    client, middleware = make()
    client()
    client(peer=DE)
    snapshot = middleware.metrics()
    assert snapshot["decisions"] == 2
    assert snapshot["decisions_with_notices"] == 1
    assert snapshot["notices_injected"] == {"ru-notice|RU": 1}
    assert snapshot["notices_not_delivered"] == {}
    snapshot["decisions"] = 99  # a copy: the middleware's counters do not change
    assert middleware.metrics()["decisions"] == 2


def test_one_debug_record_per_decision_without_the_full_address(
    make: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = make()
    with caplog.at_level(logging.DEBUG, "compliance.decisions"):
        client()
    [record] = [r for r in caplog.records if r.name == "compliance.decisions"]
    data = record.compliance  # type: ignore[attr-defined]
    assert data["rules"] == ["ru-notice"]
    assert data["source"] == "fixed"
    assert data["client"] == "192.0.2.0/24"
    assert RU not in record.getMessage()
    caplog.clear()
    client, _ = make(log_addresses=True)
    with caplog.at_level(logging.DEBUG, "compliance.decisions"):
        client()
    [record] = [r for r in caplog.records if r.name == "compliance.decisions"]
    assert record.compliance["client"] == RU  # type: ignore[attr-defined]


def test_decision_records_follow_the_log_level_as_it_changes(
    make: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The per-request check of the decision logger's level sees every change."""
    client, _ = make()
    logger = logging.getLogger("compliance.decisions")
    handler_level = caplog.handler.level
    caplog.handler.setLevel(logging.DEBUG)
    old_level, old_disabled = logger.level, logger.disabled
    try:

        def records() -> int:
            caplog.clear()
            client()
            return len([r for r in caplog.records if r.name == "compliance.decisions"])

        logger.setLevel(logging.INFO)
        assert records() == 0
        logger.setLevel(logging.DEBUG)
        assert records() == 1
        logger.disabled = True
        assert records() == 0
        logger.disabled = False
        logging.disable(logging.DEBUG)
        assert records() == 0
        logging.disable(logging.NOTSET)
        assert records() == 1
        logger.setLevel(logging.WARNING)
        assert records() == 0
    finally:
        logging.disable(logging.NOTSET)
        logger.setLevel(old_level)
        logger.disabled = old_disabled
        caplog.handler.setLevel(handler_level)


# -- an exported edge in front ----------------------------------------------------------------


def test_requests_from_the_edge_get_their_notices_there(make: Callable[..., Any]) -> None:
    client, middleware = make(edge_from=["10.0.0.5/32"], trusted_proxies=["10.0.0.5/32"])
    edge = [("X-Compliance-Edge", "nginx")]
    reader = [("X-Forwarded-For", RU)]  # a reader in Russia, through the edge
    assert notices(client(peer="10.0.0.5", headers=reader)) == ["ru-notice"]
    assert notices(client(peer="10.0.0.5", headers=[*reader, *edge])) == []
    assert middleware.metrics()["notices_skipped"] == {"edge": 1}
    # The header from anyone else, or the edge's address without it, changes nothing.
    assert notices(client(peer=RU, headers=edge)) == ["ru-notice"]
    client, _ = make(edge_from=["192.0.2.1/32"])
    assert notices(client(peer=RU)) == ["ru-notice"]
    client, _ = make()
    assert notices(client(peer=RU, headers=edge)) == ["ru-notice"]


def test_decisions_are_counted_exactly_from_many_threads() -> None:
    """The per-request decision counter takes no lock and loses no count."""
    import threading
    from types import SimpleNamespace

    from compliance.metrics import Metrics

    metrics = Metrics()
    with_notice = SimpleNamespace(notices=("n",), block=None)
    without = SimpleNamespace(notices=(), block=None)

    def count() -> None:
        for i in range(5000):
            metrics.decision(with_notice if i % 2 else without)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = metrics.snapshot()
    assert snapshot["decisions"] == 40_000
    assert snapshot["decisions_with_notices"] == 20_000


def test_a_snapshot_never_has_more_decisions_with_notices_than_decisions() -> None:
    """The lock-free counters are read in the order that keeps the snapshot consistent:
    a decision is counted before it is counted as having notices, so the count of those
    with notices is read first."""
    import sys
    import threading
    from types import SimpleNamespace

    from compliance.metrics import Metrics

    metrics = Metrics()
    with_notice = SimpleNamespace(notices=("n",), block=None)
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            metrics.decision(with_notice)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes, nearly
    threads = [threading.Thread(target=count) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for _ in range(20_000):
            snapshot = metrics.snapshot()
            assert snapshot["decisions_with_notices"] <= snapshot["decisions"]
    finally:
        done.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)

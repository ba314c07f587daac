"""compliance.testing: the helpers users test their own set-up with."""

from __future__ import annotations

from typing import Any

from compliance import Engine, Location
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.testing import (
    FixedGeolocator,
    asgi_scope,
    call_asgi,
    call_wsgi,
    wsgi_environ,
)
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

PAGE = b"<!DOCTYPE html><html><body><p>Story</p></body></html>"
ENGINE = Engine.from_paths(geolocator=FixedGeolocator({"192.0.2.7": Location.of("RU")}))


def wsgi_page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


async def asgi_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "http.request"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
    )
    await send({"type": "http.response.body", "body": PAGE})
    assert (await receive())["type"] == "http.disconnect"  # only once the response is done


def test_wsgi_round_trip_with_the_middleware() -> None:
    app = WsgiMiddleware(wsgi_page, ENGINE)
    response = call_wsgi(app, wsgi_environ("/a", peer="192.0.2.7"))
    assert response.status == 200
    assert response.notices == ["ru-undesirable-organization"]
    assert response.decision is not None
    assert response.decision.location.country == "RU"
    assert response.header("cache-control") == "private"
    assert call_wsgi(app, wsgi_environ("/a", peer="192.0.2.8")).notices == []


def test_asgi_round_trip_with_the_middleware() -> None:
    app = AsgiMiddleware(asgi_page, ENGINE)
    response = call_asgi(app, asgi_scope("/a?x=1", peer="192.0.2.7"))
    assert response.status == 200
    assert response.notices == ["ru-undesirable-organization"]
    assert response.decision.location.country == "RU"


def test_environ_joins_repeated_headers_like_a_server() -> None:
    environ = wsgi_environ(headers=[("X-Forwarded-For", "a"), ("x-forwarded-for", "b")])
    assert environ["HTTP_X_FORWARDED_FOR"] == "a,b"
    assert wsgi_environ(headers=[("Content-Type", "text/plain")])["CONTENT_TYPE"] == "text/plain"


def test_scope_splits_the_query() -> None:
    scope = asgi_scope("/p?q=1", peer=None)
    assert (scope["path"], scope["query_string"], scope["client"]) == ("/p", b"q=1", None)


def test_call_wsgi_keeps_the_bytes_written_with_write() -> None:
    """PEP 3333's write() callable: its bytes are the body's start, before the iterable's."""

    def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html")])
        write(PAGE[:20])
        write(PAGE[20:40])
        return [PAGE[40:]]

    assert call_wsgi(legacy, wsgi_environ()).body == PAGE
    response = call_wsgi(WsgiMiddleware(legacy, ENGINE), wsgi_environ(peer="192.0.2.7"))
    assert response.notices == ["ru-undesirable-organization"]
    assert response.body.startswith(PAGE[:40])


def test_environ_is_what_a_server_writes() -> None:
    environ = wsgi_environ("/news?page=2", headers=[("Content-Length", "3")])
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/news", "page=2")
    assert environ["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_LENGTH" not in environ
    # PATH_INFO is percent-decoded, its UTF-8 bytes as a latin-1 string (PEP 3333)
    utf8 = "/новости".encode().decode("latin-1")
    assert wsgi_environ("/новости")["PATH_INFO"] == utf8
    assert wsgi_environ("/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8")["PATH_INFO"] == utf8
    # the middleware sees the path without its query: its decision path answers
    app = WsgiMiddleware(wsgi_page, ENGINE, decision_path="/.well-known/compliance")
    answer = call_wsgi(app, wsgi_environ("/.well-known/compliance?x=1", peer="192.0.2.7"))
    assert answer.header("content-type") == "application/json"


def test_scope_takes_a_path_as_a_browser_would_send_it() -> None:
    encoded = b"/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8"
    for path in ("/новости", encoded.decode()):
        scope = asgi_scope(path + "?q=%D0%B6")
        assert (scope["path"], scope["raw_path"]) == ("/новости", encoded)
        assert scope["query_string"] == b"q=%D0%B6"
    assert asgi_scope("/a b?q=ж")["raw_path"] == b"/a%20b"
    assert asgi_scope("/a b?q=ж")["query_string"] == b"q=%D0%B6"


def test_fixed_geolocator_takes_codes_and_checks_them_up_front() -> None:
    import pytest

    from compliance.errors import ConfigurationError

    assert FixedGeolocator("RU").locate("192.0.2.1") == Location.of("RU")
    assert FixedGeolocator("ua-43").locate(None).subdivisions == ("UA-43",)
    by_ip = FixedGeolocator({"192.0.2.1": "DE"}, default="SE")
    assert (by_ip.locate("192.0.2.1").country, by_ip.locate("192.0.2.2").country) == ("DE", "SE")
    for bad in ("Russia", "ZZ", "UA-!!"):
        with pytest.raises(ConfigurationError):
            FixedGeolocator(bad)
    with pytest.raises(ConfigurationError):
        FixedGeolocator({"192.0.2.1": "XX"})
    engine = Engine.from_paths(geolocator=FixedGeolocator("RU"))
    assert [n.rule_id for n in engine.decide(ip="192.0.2.1").notices] == [
        "ru-undesirable-organization"
    ]

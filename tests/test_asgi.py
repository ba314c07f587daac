"""The ASGI middleware, driven by hand with scope, receive and send."""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import pytest

from compliance import testing
from compliance.asgi import ComplianceMiddleware
from compliance.engine import Engine
from compliance.errors import ConfigurationError
from compliance.geo import Location
from compliance.testing import FixedGeolocator

EXAMPLES = [Path(__file__).parent / "fixtures" / "examples"]  # block + header rules

RU, DE = "192.0.2.1", "192.0.2.2"
PAGE = b"<!DOCTYPE html><html lang=ru><head><title>t</title></head><body><p>Hi</p></body></html>\n"
ASIDE = b'<aside class="compliance-notice" data-compliance-rule="ru-undesirable-organization"'
BLOCKED = "/news/2024/withdrawn-article.html"
TAGGED_RULES = """\
version: 1
rules:
  - id: tagged-notice
    title: a notice on politics pages only
    jurisdictions: [RU]
    tags: [politics]
    notice:
      default_locale: en
      text:
        en: Tagged notice.
"""

Message = dict[str, Any]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_paths(
        EXAMPLES,
        packs=["russia"],
        geolocator=FixedGeolocator({RU: Location.of("RU"), DE: Location.of("DE")}),
    )


def scope(
    path: str = "/", ip: str | None = RU, method: str = "GET", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return testing.asgi_scope(path, peer=ip, method=method, headers=(headers or {}).items())


def html_app(
    chunks: list[bytes] | None = None,
    *,
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    content_length: bool = True,
) -> Any:
    parts = chunks if chunks is not None else [PAGE]
    base = headers if headers is not None else [("content-type", "text/html; charset=utf-8")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        extra = [("content-length", str(sum(map(len, parts))))] if content_length else []
        raw = [(k.encode(), v.encode()) for k, v in [*base, *extra]]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        for i, part in enumerate(parts):
            await send(
                {"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1}
            )

    return app


async def _drive(app: Any, sc: dict[str, Any], send: Any = None) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def collect(message: Message) -> None:
        sent.append(message)

    await app(sc, receive, send or collect)
    return sent


def run(app: Any, sc: dict[str, Any] | None = None, **kw: Any) -> list[Message]:
    return asyncio.run(_drive(app, sc if sc is not None else scope(**kw)))


def response(messages: list[Message]) -> tuple[int, dict[str, str], bytes]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    headers: dict[str, str] = {}
    for k, v in start["headers"]:
        name = k.decode().lower()
        headers[name] = f"{headers[name]}, {v.decode()}" if name in headers else v.decode()
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    assert all(m.get("more_body") for m in messages[1:-1] if m["type"] == "http.response.body")
    return start["status"], headers, body


def uncached(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages without the caching headers a fail-open response gains (issue 13: a page
    whose location mattered is never storable by a shared cache), which it must have."""
    names = [name for name, _ in messages[0]["headers"]]
    assert (b"cache-control", b"private") in messages[0]["headers"], names
    caching = (b"cache-control", b"vary")
    start = {**messages[0], "headers": [h for h in messages[0]["headers"] if h[0] not in caching]}
    return [start, *messages[1:]]


def test_raw_asgi_messages(engine: Engine) -> None:
    messages = run(ComplianceMiddleware(html_app(), engine))
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    body = messages[1]["body"]
    assert ASIDE in body
    assert messages[1]["more_body"] is False
    assert messages[0]["status"] == 200
    # <html lang=ru> chose the locale, not the reader's languages: no Vary on them.
    assert sorted(messages[0]["headers"]) == [
        (b"cache-control", b"private"),
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"text/html; charset=utf-8"),
    ]


def test_nothing_for_a_german_reader(engine: Engine) -> None:
    _status, headers, body = response(run(ComplianceMiddleware(html_app(), engine), ip=DE))
    assert body == PAGE
    assert headers["content-length"] == str(len(PAGE))
    assert headers["cache-control"] == "private"


def test_decision_in_scope_state(engine: Engine) -> None:
    seen = {}

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        seen["decision"] = sc["state"]["compliance.decision"]
        await html_app()(sc, receive, send)

    run(ComplianceMiddleware(app, engine))
    assert [n.rule_id for n in seen["decision"].notices] == ["ru-undesirable-organization"]


@pytest.mark.parametrize(
    ("status", "headers", "method"),
    [
        pytest.param(200, [("content-type", "application/json")], "GET", id="json"),
        pytest.param(200, [("content-type", "image/png")], "GET", id="image"),
        pytest.param(204, [("content-type", "text/html")], "GET", id="204"),
        pytest.param(304, [("content-type", "text/html")], "GET", id="304"),
        pytest.param(500, [("content-type", "text/html")], "GET", id="500"),
        pytest.param(
            206, [("content-type", "text/html"), ("content-range", "bytes 0-9/99")], "GET", id="206"
        ),
        pytest.param(200, [("content-type", "text/event-stream")], "GET", id="sse"),
    ],
)
def test_passthrough_message_for_message(
    engine: Engine, status: int, headers: list[tuple[str, str]], method: str
) -> None:
    chunks = [PAGE[:10], PAGE[10:]]
    bare = run(html_app(chunks, status=status, headers=headers), method=method)
    wrapped = run(
        ComplianceMiddleware(html_app(chunks, status=status, headers=headers), engine),
        method=method,
    )
    # HTML answers carry the caching headers of the GET they stand for (issue 13). (A HEAD
    # sent with the GET's body is edited as the GET: tests/test_delivery.py.)
    caching = (b"vary", b"cache-control", b"content-length")
    html = ("content-type", "text/html") in headers
    names = {name for name, _ in wrapped[0]["headers"]}
    assert (b"cache-control" in names) is html
    for messages in (bare, wrapped):
        messages[0]["headers"] = [h for h in messages[0]["headers"] if h[0] not in caching]
    assert wrapped == bare


@pytest.mark.parametrize("ip", [RU, DE])
def test_a_page_to_edit_is_not_offered_to_the_server_as_a_file(engine: Engine, ip: str) -> None:
    """The server's file extensions are hidden from an application whose page may be edited
    (a reader with notices), so one that asks (Starlette's FileResponse) sends the page as
    body messages and the notice goes in; others keep them."""
    offered: list[set[str]] = []

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        offered.append(set(sc.get("extensions", {})))
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html")],
        }
        await send(start)
        if "http.response.pathsend" in sc.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": "/srv/page.html"})
        else:
            await send({"type": "http.response.body", "body": PAGE})

    sc = scope(ip=ip)
    sc["extensions"] = {"http.response.pathsend": {}, "http.response.trailers": {}}
    messages = run(ComplianceMiddleware(app, engine), sc)
    if ip == RU:
        assert offered == [{"http.response.trailers"}]
        assert b"compliance-notice" in response(messages)[2]
    else:
        assert offered == [{"http.response.pathsend", "http.response.trailers"}]
        assert messages[1]["type"] == "http.response.pathsend"


def test_pathsend_and_trailers_pass_through(engine: Engine) -> None:
    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
                "trailers": False,
            }
        )
        await send({"type": "http.response.pathsend", "path": "/srv/page.html"})

    messages = run(ComplianceMiddleware(app, engine))
    assert messages[1] == {"type": "http.response.pathsend", "path": "/srv/page.html"}
    assert messages[0]["status"] == 200

    async def json_with_trailers(sc: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})

    assert run(ComplianceMiddleware(json_with_trailers, engine)) == run(json_with_trailers)


def test_trailers_follow_an_edited_body(engine: Engine) -> None:
    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": PAGE})
        await send({"type": "http.response.trailers", "headers": []})

    messages = run(ComplianceMiddleware(app, engine))
    assert [m["type"] for m in messages][-1] == "http.response.trailers"
    assert ASIDE in response(messages[:-1])[2]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("http.response.pathsend", {"path": "/srv/page.html"}),
        ("http.response.zerocopysend", {"file": 7, "count": 100}),
    ],
)
def test_a_file_the_server_sends_itself_is_the_fail_mode(
    engine: Engine, kind: str, fields: dict[str, Any]
) -> None:
    """Both ways an application hands the server a file (the ASGI path-send and zero-copy
    extensions): the start goes first, then the file as it is, and the notice it cannot
    carry is logged and counted."""

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html"), (b"content-length", b"100")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": kind, **fields})

    middleware = ComplianceMiddleware(app, engine)
    messages = run(middleware)
    assert [m["type"] for m in messages] == ["http.response.start", kind]
    assert messages[1] == {"type": kind, **fields}
    assert middleware.metrics()["notices_not_delivered"] == {"server file": 1}


def _with_trailers(chunks: list[bytes], extra: list[tuple[bytes, bytes]]) -> Any:
    """An HTML page that promises trailers and sends a digest of its body in them."""

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html"), *extra]
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        fields = [(b"content-digest", b"sha-256=:b3JpZ2luYWw=:"), (b"x-rows", b"2")]
        await send({"type": "http.response.trailers", "headers": fields})

    return app


def test_trailers_of_an_edited_body_lose_the_original_digest(engine: Engine) -> None:
    messages = run(ComplianceMiddleware(_with_trailers([PAGE], []), engine))
    assert ASIDE in response(messages[:-1])[2]
    assert messages[-1] == {"type": "http.response.trailers", "headers": [(b"x-rows", b"2")]}
    unedited = run(ComplianceMiddleware(_with_trailers([PAGE], []), engine), ip=DE)
    assert unedited[-1]["headers"][0][0] == b"content-digest"


def test_the_fail_modes_own_response_promises_no_trailers(engine: Engine) -> None:
    corrupt = _with_trailers([b"\x1f\x8b\x08\x00not gzip at all"], [(b"content-encoding", b"gzip")])
    messages = run(ComplianceMiddleware(corrupt, engine, fail_mode="closed"))
    assert messages[0]["status"] == 503
    assert not messages[0].get("trailers")
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]


def test_a_cut_body_still_gets_the_trailers_its_start_promised(engine: Engine) -> None:
    """Failing open after the headers went out ends the body where it is; the start that
    went out promised trailers, and the server waits for them."""
    gzip_stream = zlib.compressobj(6, zlib.DEFLATED, 31)
    page = b"<html><body>" + b"<p>x</p>" * 5000 + b"</body></html>"
    truncated = gzip_stream.compress(page) + gzip_stream.flush(zlib.Z_SYNC_FLUSH)
    half = len(truncated) // 2
    app = _with_trailers([truncated[:half], truncated[half:]], [(b"content-encoding", b"gzip")])
    messages = run(ComplianceMiddleware(app, engine))
    assert messages[0]["trailers"] is True
    assert [m["type"] for m in messages][-2:] == ["http.response.body", "http.response.trailers"]
    assert messages[-2]["more_body"] is False
    assert messages[-1]["headers"] == [(b"x-rows", b"2")]


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
def test_other_scopes_pass_through(engine: Engine, kind: str) -> None:
    seen = []

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(sc)
        await send({"type": f"{kind}.marker"})

    sc = {"type": kind}
    assert run(ComplianceMiddleware(app, engine), sc) == [{"type": f"{kind}.marker"}]
    assert seen == [{"type": kind}]


def test_streaming_is_edited_without_content_length(engine: Engine) -> None:
    chunks = [PAGE[i : i + 7] for i in range(0, len(PAGE), 7)]
    messages = run(ComplianceMiddleware(html_app(chunks, content_length=False), engine))
    _status, headers, body = response(messages)
    assert "content-length" not in headers
    assert body == response(run(ComplianceMiddleware(html_app(), engine)))[2]
    assert len(messages) > 3  # still streamed, not collected


@pytest.mark.parametrize(
    ("coding", "compress", "decompress"),
    [
        pytest.param("gzip", gzip.compress, gzip.decompress, id="gzip"),
        pytest.param("deflate", zlib.compress, zlib.decompress, id="deflate"),
        pytest.param("br", brotli.compress, brotli.decompress, id="brotli"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_compressed_round_trip(
    engine: Engine,
    coding: str,
    compress: Callable[[bytes], bytes],
    decompress: Callable[[bytes], bytes],
    streamed: bool,
) -> None:
    data = compress(PAGE)
    chunks = [data[i : i + 5] for i in range(0, len(data), 5)] if streamed else [data]
    app = html_app(
        chunks,
        headers=[("content-type", "text/html"), ("content-encoding", coding)],
        content_length=not streamed,
    )
    _status, headers, body = response(run(ComplianceMiddleware(app, engine)))
    assert headers["content-encoding"] == coding
    assert ASIDE in decompress(body)
    if not streamed:
        assert headers["content-length"] == str(len(body))


def test_small_announced_body_is_collected_for_exact_length(engine: Engine) -> None:
    chunks = [PAGE[:30], PAGE[30:]]
    messages = run(ComplianceMiddleware(html_app(chunks), engine))
    _status, headers, body = response(messages)
    assert headers["content-length"] == str(len(body))
    assert ASIDE in body


def test_response_tags_and_state_tags(tmp_path: Any) -> None:
    (tmp_path / "tagged.yaml").write_text(TAGGED_RULES)
    tagged = Engine.from_paths([tmp_path], geolocator=FixedGeolocator({RU: Location.of("RU")}))
    app = html_app(headers=[("content-type", "text/html"), ("x-compliance-tags", "politics")])
    _status, headers, body = response(run(ComplianceMiddleware(app, tagged)))
    assert b"tagged-notice" in body
    assert "x-compliance-tags" not in headers

    async def state_app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        sc["state"]["compliance.tags"] = ["politics"]
        await html_app()(sc, receive, send)

    assert b"tagged-notice" in response(run(ComplianceMiddleware(state_app, tagged)))[2]
    assert response(run(ComplianceMiddleware(html_app(), tagged)))[2] == PAGE


@pytest.mark.parametrize(
    ("raw_path", "path"),
    [
        # A request target in absolute form (RFC 9112 3.2.2), as uvicorn (h11) hands it on:
        # the path is the part after the authority, in both fields.
        (b"http://news.example" + BLOCKED.encode(), "http://news.example" + BLOCKED),
        (None, "http://news.example" + BLOCKED),
        (b"HTTPS://news.example:443" + BLOCKED.encode() + b"?x=1", BLOCKED),
    ],
)
def test_a_target_in_absolute_form_is_read_by_its_path(
    engine: Engine, raw_path: bytes | None, path: str
) -> None:
    """The blocked page, asked for by its full URL, is still blocked (it went to the
    application: the whole URL was read as the path)."""

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    sc = scope(BLOCKED, ip=DE, headers={"host": "news.example"})
    sc["raw_path"], sc["path"] = raw_path, path
    status, _, _ = response(run(ComplianceMiddleware(app, engine), sc))
    assert status == 451


def test_a_path_with_a_lone_surrogate_is_no_fault(engine: Engine) -> None:
    """A scope without raw_path whose decoded path holds a surrogate no byte decoding makes
    (U+D800): read, not a 500."""
    sc = scope("/", ip=RU)
    sc["raw_path"], sc["path"] = None, "/\ud800"
    status, _, body = response(run(ComplianceMiddleware(html_app(), engine), sc))
    assert status == 200
    assert b"compliance-notice" in body


@pytest.mark.parametrize(
    ("accept", "ctype"),
    [("text/html", "text/html; charset=utf-8"), ("application/json", "application/json")],
)
def test_block_451_without_calling_the_app(engine: Engine, accept: str, ctype: str) -> None:
    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    sc = scope(BLOCKED, ip=DE, headers={"host": "news.example", "accept": accept})
    status, headers, body = response(run(ComplianceMiddleware(app, engine), sc))
    assert status == 451
    assert headers["link"] == '<https://www.example.org/legal>; rel="blocked-by"'
    assert headers["content-type"] == ctype
    assert headers["content-length"] == str(len(body))


def test_trusted_proxy_and_spoofing() -> None:
    real = Engine.from_paths()
    mw = ComplianceMiddleware(html_app(), real, trusted_proxies=["127.0.0.1"])
    via_proxy = scope(ip="127.0.0.1", headers={"x-forwarded-for": "77.88.55.88"})
    assert ASIDE in response(run(mw, via_proxy))[2]
    spoofed = scope(ip="81.169.145.105", headers={"x-forwarded-for": "77.88.55.88"})
    assert response(run(mw, spoofed))[2] == PAGE


# -- faults -----------------------------------------------------------------------------------


def test_fail_open_and_closed_on_a_geolocator_fault(
    caplog: pytest.LogCaptureFixture, broken_geolocator: Any
) -> None:
    broken = Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=broken_geolocator)
    caplog.clear()  # start-up warnings (the russia pack's required variables are unset)
    with caplog.at_level(logging.ERROR, "compliance.middleware"):
        assert uncached(run(ComplianceMiddleware(html_app(), broken))) == run(html_app())
    assert len(caplog.records) == 1
    called = []

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        called.append(True)

    assert response(run(ComplianceMiddleware(app, broken, fail_mode="closed")))[0] == 503
    assert called == []


def test_fail_open_and_closed_on_a_render_fault(engine: Engine, render_fails: Any) -> None:
    assert uncached(run(ComplianceMiddleware(html_app(), render_fails(engine)))) == run(html_app())
    closed = run(ComplianceMiddleware(html_app(), render_fails(engine), fail_mode="closed"))
    assert response(closed)[0] == 503


def test_render_fault_mid_stream_loses_no_bytes(engine: Engine, render_fails: Any) -> None:
    chunks = [b"<html><head></head>" + b"<!-- x -->" * 50, b"<body><p>one</p>", b"</body></html>\n"]
    app = html_app(chunks, content_length=False)
    assert response(run(ComplianceMiddleware(app, render_fails(engine))))[2] == b"".join(chunks)


def test_client_disconnect_mid_stream(engine: Engine) -> None:
    outcome = []

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        try:
            for _ in range(5):
                await send(
                    {"type": "http.response.body", "body": b"<p>x</p>" * 100, "more_body": True}
                )
        except OSError:
            outcome.append("disconnected")
            raise

    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) >= 2:
            raise OSError("client went away")
        sent.append(message)

    with pytest.raises(OSError, match="client went away"):
        asyncio.run(_drive(ComplianceMiddleware(app, engine), scope(), send))
    assert outcome == ["disconnected"]


def test_http_disconnect_is_passed_to_the_app(engine: Engine) -> None:
    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "http.disconnect"

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing to send")

    asyncio.run(ComplianceMiddleware(app, engine)(scope(), receive, send))


def test_app_exceptions_propagate(engine: Engine) -> None:
    class AppError(Exception):
        pass

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        raise AppError("boom")

    with pytest.raises(AppError, match="boom"):
        run(ComplianceMiddleware(app, engine))


def test_state_is_created_and_kept(engine: Engine) -> None:
    sc = scope()
    sc["state"] = {"other": 1}
    run(ComplianceMiddleware(html_app(), engine), sc)
    assert sc["state"]["other"] == 1
    assert "compliance.decision" in sc["state"]


def test_bad_options(engine: Engine) -> None:
    with pytest.raises(ConfigurationError):
        ComplianceMiddleware(html_app(), engine, fail_mode="ajar")

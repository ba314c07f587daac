"""A decided notice is a delivered notice, or a loud failure (issue 13), on both adapters.

Each test builds the smallest application that shows one behaviour and runs it through the
WSGI and the ASGI middleware alike (the ``adapter`` fixture), recording the request headers
the application saw.
"""

from __future__ import annotations

import gzip
import logging
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import brotli
import pytest

from compliance import testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.geo import Location
from compliance.testing import FixedGeolocator, TestResponse
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RU, DE = "192.0.2.1", "192.0.2.2"
PAGE = (
    b"<!DOCTYPE html><html><head><title>t</title></head>"
    b"<body><h1>News</h1><p>Story</p></body></html>\n"
)
RULE = "ru-notice"
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
        uk: Повідомлення для читачів з Росії.  # noqa: RUF001
"""
Headers = list[tuple[str, str]]


@pytest.fixture(scope="module")
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(RULES)


class App:
    """A response (status, headers, body chunks) served by WSGI and ASGI alike; records the
    request headers each call saw."""

    def __init__(self, status: int, headers: Headers, chunks: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.seen: dict[str, str] = {}

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.seen = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        start_response(f"{self.status} X", list(self.headers))
        return list(self.chunks)

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen = {k.decode(): v.decode() for k, v in scope["headers"]}
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers],
            }
        )
        for i, chunk in enumerate(self.chunks):
            more = i < len(self.chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        if not self.chunks:
            await send({"type": "http.response.body", "body": b""})


Call = Callable[..., TestResponse]
LAST_METRICS: dict[str, Any] = {}
"""The counters of the middleware that answered the last ``call``."""


@pytest.fixture(params=["wsgi", "asgi"])
def call(request: pytest.FixtureRequest, engine: Engine) -> Call:
    """``call(app, ip, method=..., headers=..., **middleware options)``."""

    def run(
        app: App,
        ip: str = RU,
        *,
        path: str = "/story",
        method: str = "GET",
        headers: Headers = (),  # type: ignore[assignment]
        use: Engine | None = None,
        **options: Any,
    ) -> TestResponse:
        chosen = use or engine
        if request.param == "wsgi":
            middleware = WsgiMiddleware(app.wsgi, chosen, **options)
            environ = testing.wsgi_environ(path, peer=ip, method=method, headers=list(headers))
            response = testing.call_wsgi(middleware, environ)
        else:
            middleware = AsgiMiddleware(app.asgi, chosen, **options)  # type: ignore[assignment]
            scope = testing.asgi_scope(path, peer=ip, method=method, headers=list(headers))
            response = testing.call_asgi(middleware, scope)
        LAST_METRICS.clear()
        LAST_METRICS.update(middleware.metrics())
        return response

    return run


def html(extra: Headers = (), *, body: bytes = PAGE, length: bool = False) -> App:  # type: ignore[assignment]
    """An HTML page; with ``length``, a Content-Length too (the core then buffers it)."""
    sized = [("Content-Length", str(len(body)))] if length else []
    return App(200, [("Content-Type", "text/html; charset=utf-8"), *sized, *extra], [body])


def vary(response: TestResponse) -> set[str]:
    """The header names in ``Vary``, whatever their order."""
    return {name.strip().lower() for name in (response.header("Vary") or "").split(",")}


def undelivered(response: TestResponse) -> dict[str, int]:
    """Notices not delivered, by cause, for the middleware that gave ``response``."""
    assert response is not None
    return LAST_METRICS["notices_not_delivered"]  # type: ignore[no-any-return]


# -- 1. codings the middleware cannot edit ----------------------------------------------------


def test_uneditable_codings_are_removed_from_the_request(call: Call) -> None:
    app = html()
    response = call(app, headers=[("Accept-Encoding", "gzip, deflate, br, zstd")])
    assert app.seen["accept-encoding"] == "gzip, deflate, br"
    assert response.notices == [RULE]
    # A reader who gets no notice keeps every coding it asked for.
    call(app, DE, headers=[("Accept-Encoding", "gzip, deflate, br, zstd")])
    assert app.seen["accept-encoding"] == "gzip, deflate, br, zstd"


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_coding_that_still_comes_is_the_fail_mode(
    call: Call, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"\x28\xb5\x2f\xfd-pretend-zstd-frame"
    app = html([("Content-Encoding", "zstd"), ("Cache-Control", "public, max-age=600")], body=body)
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response = call(app, fail_mode=mode)
    if mode == "closed":
        assert response.status == 503
    else:
        assert response.status == 200
        assert response.body == body
        assert "public" not in (response.header("Cache-Control") or "")
        assert "private" in (response.header("Cache-Control") or "")
    assert undelivered(response) == {"content-coding": 1}
    assert any(
        r.levelno == logging.WARNING and "content-coding" in r.message for r in caplog.records
    )


@pytest.mark.parametrize(
    "body", [b"\x1f\x8b\x08\x00 not gzip at all", gzip.compress(PAGE)[:-12]], ids=["corrupt", "cut"]
)
def test_a_body_that_does_not_decode_is_the_fail_mode(
    call: Call, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The application's fault, not the library's: the notice is undelivered (logged at
    WARNING and counted by cause), and the page goes out as the application sent it."""
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response = call(html([("Content-Encoding", "gzip")], body=body, length=True))
    assert response.status == 200
    assert response.body == body
    assert undelivered(response) == {"content-coding": 1}
    assert LAST_METRICS["faults"] == {}
    assert any(
        r.levelno == logging.WARNING and "content-coding" in r.message for r in caplog.records
    )


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_an_empty_coded_body_is_an_empty_body(call: Call, coding: str) -> None:
    response = call(html([("Content-Encoding", coding)], body=b""))
    assert response.status == 200
    assert response.body == b""
    assert undelivered(response) == {}
    assert LAST_METRICS["faults"] == {}
    assert LAST_METRICS["notices_skipped"] == {"empty body": 1}


def test_notices_not_delivered_are_counted_one_by_one(
    call: Call, make_engine: Callable[..., Engine]
) -> None:
    """The counter counts notices, as notices_injected does: a page that loses two adds two
    (the share of owed notices lost is then a plain ratio of the two counters)."""
    both = make_engine(TOP_AND_BOTTOM)
    response = call(html([("Content-Encoding", "zstd")], body=b"(zstd)"), use=both)
    assert undelivered(response) == {"content-coding": 2}


def test_a_length_of_unicode_digits_is_no_length_and_no_fault(call: Call) -> None:
    """ "²".isdigit() holds but int("²") fails: the header is taken for no length, not a
    fault that lost the notice uncounted."""
    response = call(html([("Content-Length", "\u00b2")]))
    assert response.notices == [RULE]
    assert LAST_METRICS["faults"] == {}


def test_a_fault_reading_the_response_counts_the_notices_it_loses(
    call: Call, engine: Engine
) -> None:
    """A library fault while the response starts (here: the engine failing when response
    tags ask for a new decision) is the fail mode, and its notices are counted as not
    delivered, as a fault while editing is."""

    class Failing(Engine):
        def decide(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("request") is not None and kwargs["request"].tags:
                raise RuntimeError("engine down")
            return super().decide(*args, **kwargs)

    failing = Failing.__new__(Failing)
    failing.__dict__.update(engine.__dict__)
    response = call(html([("X-Compliance-Tags", "politics")]), use=failing)
    assert response.status == 200
    assert response.notices == []
    assert LAST_METRICS["faults"] == {"response": 1}
    assert undelivered(response) == {"fault": 1}


# -- 2. multi-member gzip ---------------------------------------------------------------------


def test_every_gzip_member_is_decoded(call: Call) -> None:
    half = len(PAGE) // 2
    body = gzip.compress(PAGE[:half]) + gzip.compress(PAGE[half:])
    response = call(html([("Content-Encoding", "gzip")], body=body))
    page = gzip.decompress(response.body)
    assert page.endswith(b"</body></html>\n")
    assert b"<p>Story</p>" in page
    assert page.count(b'class="compliance-notice"') == 1


# -- 3. decompression bounds ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_decompression_bomb_is_bounded(call: Call, mode: str) -> None:
    bomb = zlib.compress(b"<!DOCTYPE html><html><body>" + b" " * (96 << 20), 9)
    body = _gzip_wrap(bomb)
    tracemalloc.start()
    try:
        response = call(html([("Content-Encoding", "gzip")], body=body), fail_mode=mode)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 << 20, f"{peak / 2**20:.1f} MiB"
    assert undelivered(response) == {"body too large": 1}
    assert response.status == (503 if mode == "closed" else 200)


def _gzip_wrap(zlib_stream: bytes) -> bytes:
    """A gzip member around the deflate data of a zlib stream (no need to compress twice)."""
    raw = zlib_stream[2:-4]
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw + b"\0" * 8


def test_the_size_bound_is_configurable(call: Call) -> None:
    page = b"<html><body>" + b"<p>x</p>" * 40_000 + b"</body></html>"
    response = call(
        html([("Content-Encoding", "br")], body=brotli.compress(page)), max_decoded=100_000
    )
    assert undelivered(response) == {"body too large": 1}


# -- 4. validators ----------------------------------------------------------------------------


def test_edited_pages_carry_a_variant_etag_and_lose_digests(call: Call) -> None:
    extra = [("ETag", '"v1"'), ("Content-MD5", "x"), ("Content-Digest", "y"), ("Repr-Digest", "z")]
    ru = call(html(extra))
    de = call(html(extra), DE)
    assert de.header("ETag") == '"v1"'
    assert de.header("Content-MD5") == "x"
    assert ru.header("ETag") not in (None, '"v1"')
    assert (ru.header("ETag") or "").startswith('"v1-cv')
    for name in ("Content-MD5", "Content-Digest", "Repr-Digest"):
        assert ru.header(name) is None


def test_validators_naming_another_variant_never_reach_the_app(call: Call) -> None:
    app = html([("ETag", '"v1"')])
    own = call(app).header("ETag")
    assert own is not None
    # A copy cached outside Russia (the app's own tag) or another variant: the app must
    # send the page again, so the reader gets it with the notice.
    call(app, headers=[("If-None-Match", '"v1"'), ("If-Modified-Since", "Wed, 1 Jan 2025")])
    assert "if-none-match" not in app.seen
    assert "if-modified-since" not in app.seen
    call(app, headers=[("If-None-Match", '"v1-cv000000000000"')])
    assert "if-none-match" not in app.seen
    # The reader's own variant revalidates: the app sees its own tag.
    call(app, headers=[("If-None-Match", own)])
    assert app.seen["if-none-match"] == '"v1"'


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE", "GET"])
def test_preconditions_reach_the_app_as_its_own_tags(call: Call, method: str) -> None:
    """A precondition asks whether the resource changed, which no notice does: the variant
    tag a reader got is the application's tag, and ``If-None-Match: *`` ("only if nothing
    is there") stays, so a reader with a notice cannot overwrite what another wrote."""
    app = html([("ETag", '"v1"')])
    own = call(app).header("ETag")
    assert own is not None
    assert own != '"v1"'
    call(app, method=method, headers=[("If-Match", f'{own}, "v0"')])
    assert app.seen["if-match"] == '"v1", "v0"'
    call(app, method=method, headers=[("If-Match", "*")])
    assert app.seen["if-match"] == "*"
    if method == "GET":
        return  # If-None-Match on GET revalidates a copy: see the tests above
    call(app, method=method, headers=[("If-None-Match", "*")])
    assert app.seen["if-none-match"] == "*"
    other = '"v1-cv000000000000a"'  # another reader's variant of the same page
    call(app, method=method, headers=[("If-None-Match", f'{other}, "v0"')])
    assert app.seen["if-none-match"] == '"v1", "v0"'
    unmodified = "Wed, 01 Jan 2025 00:00:00 GMT"
    call(app, method=method, headers=[("If-Unmodified-Since", unmodified)])
    assert app.seen["if-unmodified-since"] == unmodified


@pytest.mark.parametrize("accept", ["text/html", "*/*"])
def test_a_304_for_the_readers_own_variant_keeps_its_tag_and_caching_headers(
    call: Call, accept: str
) -> None:
    own = call(html([("ETag", '"v1"')])).header("ETag")
    not_modified = App(304, [("ETag", '"v1"')], [])
    response = call(not_modified, headers=[("If-None-Match", own), ("Accept", accept)])
    assert response.status == 304
    assert response.header("ETag") == own
    assert "private" in (response.header("Cache-Control") or "")
    assert response.header("Vary") is not None


class Revalidating(App):
    """A page with an ETag that answers 304 when ``If-None-Match`` names it; with
    ``rendered``, its template renders the reader's notice itself, and with ``skip``, it
    says the page takes no notices (``X-Compliance-Skip``)."""

    def __init__(
        self, *, rendered: bool = False, skip: bool = False, json: bool = False, ctype: str = ""
    ) -> None:
        extra = [("ETag", '"v1"'), *([("X-Compliance-Skip", "1")] if skip else [])]
        extra.append(("Cache-Control", "public, max-age=60"))
        ctype = ctype or ("application/json" if json else "text/html; charset=utf-8")
        super().__init__(200, [("Content-Type", ctype), *extra], [PAGE])
        self.rendered = rendered
        self.json = json
        self.given = list(self.headers)

    def _answer(self, state: Any) -> None:
        from compliance.core import read_decision

        if self.rendered and state.get("compliance.rendered") is not None:
            state["compliance.rendered"].add(RULE)
        if self.json:
            assert read_decision(state) is not None
        self.status = 304 if self.seen.get("if-none-match") == '"v1"' else 200
        self.chunks = [] if self.status == 304 else [PAGE]
        self.headers = list(self.given)
        if self.status == 304:  # as Django's and Werkzeug's 304s: no type
            self.headers = [(k, v) for k, v in self.headers if k != "Content-Type"]

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.seen = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        self._answer(environ)
        return super().wsgi(environ, start_response)

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen = {k.decode(): v.decode() for k, v in scope["headers"]}
        self._answer(scope["state"])
        await super().asgi(scope, receive, send)


@pytest.mark.parametrize("kind", ["rendered", "skip", "json", "feed", "image"])
def test_a_page_left_unedited_for_a_reader_with_notices_revalidates(call: Call, kind: str) -> None:
    """A page whose template rendered the reader's notices, or that takes none, a JSON
    answer built from the decision, or another type (a feed, an image a client asks for
    without ``Sec-Fetch-Dest``), goes out unedited; its tag still names the reader's
    variant, since the reader's validators are translated as for an edited page: a tag
    without the variant would never revalidate. Its 304 has the 200's caching headers."""
    other = {"feed": "application/rss+xml", "image": "image/png"}.get(kind, "")
    app = Revalidating(
        rendered=kind == "rendered", skip=kind == "skip", json=kind == "json", ctype=other
    )
    first = call(app)
    assert first.status == 200
    own = first.header("ETag")
    assert own is not None
    assert own.startswith('"v1-cv')
    again = call(app, headers=[("If-None-Match", own)])
    assert app.seen["if-none-match"] == '"v1"'
    assert again.status == 304
    assert again.header("ETag") == own
    assert vary(again) == vary(first)
    assert again.header("Cache-Control") == first.header("Cache-Control")
    assert (first.header("Cache-Control") == "public, max-age=60") == bool(other)
    # Another reader's copy, or the unedited page's tag, is not this reader's: a full page.
    assert call(app, headers=[("If-None-Match", '"v1"')]).status == 200
    # A reader without notices keeps the application's own tag.
    assert call(app, DE).header("ETag") == '"v1"'


@pytest.mark.parametrize("dest", ["image", "script", "style", "font", "video", "audio"])
def test_a_subresource_keeps_its_validators_ranges_and_codings(call: Call, dest: str) -> None:
    """A request the browser makes for an image, a script, a video... (``Sec-Fetch-Dest``)
    is never shown as a page, so it is not prepared for one: its validators, ranges and
    codings reach the application as the reader sent them. (Every asset served through
    the middleware to a reader with notices was sent whole each time: no 304, no range.)"""
    app = App(200, [("Content-Type", "image/png"), ("ETag", '"i1"')], [b"\x89PNG"])
    sent = [
        ("Sec-Fetch-Dest", dest),
        ("If-None-Match", '"i1"'),
        ("If-Modified-Since", "Wed, 01 Jan 2025 00:00:00 GMT"),
        ("Range", "bytes=0-1"),
        ("If-Range", '"i1"'),
        ("Accept-Encoding", "gzip, zstd"),
    ]
    response = call(app, headers=sent)
    assert {name.lower(): value for name, value in sent} == {
        name: app.seen[name] for name, _ in ((n.lower(), v) for n, v in sent)
    }
    assert response.header("ETag") == '"i1"'
    # A page the browser asks for (or a script's fetch) is prepared as before.
    for page in ("document", "iframe", "empty", "unknown-future-kind"):
        call(app, headers=[("Sec-Fetch-Dest", page), *sent[1:]])
        assert "if-none-match" not in app.seen
        assert "range" not in app.seen
        assert app.seen["accept-encoding"] == "gzip"


def test_a_request_from_the_edge_is_left_for_the_edge_to_prepare(call: Call) -> None:
    """An exported edge that adds the notices itself prepares its request to the origin
    (the Worker sends the origin's own tag for a copy of the reader's variant): the origin
    leaves it as it comes, and its page goes out with its own tag for the edge to make
    the variant's. (The origin dropped the tag, so the edge never got a 304.)"""
    edge = [("X-Compliance-Edge", "worker"), ("If-None-Match", '"v1"'), ("Range", "bytes=0-1")]
    app = Revalidating()
    response = call(app, headers=edge, edge_from=[f"{RU}/32"])
    assert app.seen["if-none-match"] == '"v1"'
    assert app.seen["range"] == "bytes=0-1"
    assert response.status == 304
    assert response.header("ETag") == '"v1"'
    assert undelivered(response) == {}
    first = call(app, headers=edge[:1], edge_from=[f"{RU}/32"])
    assert (first.status, first.header("ETag"), first.notices) == (200, '"v1"', [])
    assert LAST_METRICS["notices_skipped"] == {"edge": 1}


# -- 5. ranges --------------------------------------------------------------------------------


def test_ranges_are_dropped_for_readers_whose_page_is_edited(call: Call) -> None:
    app = html([("Accept-Ranges", "bytes")])
    response = call(app, headers=[("Range", "bytes=0-10"), ("If-Range", '"v1"')])
    assert "range" not in app.seen
    assert "if-range" not in app.seen
    assert response.header("Accept-Ranges") is None
    assert response.notices == [RULE]
    call(app, DE, headers=[("Range", "bytes=0-10")])
    assert app.seen["range"] == "bytes=0-10"


def test_a_range_the_app_sends_anyway_is_the_fail_mode(call: Call) -> None:
    app = App(206, [("Content-Type", "text/html"), ("Content-Range", "bytes 0-9/99")], [PAGE[:10]])
    response = call(app, fail_mode="closed")
    assert response.status == 503
    assert undelivered(response) == {"range": 1}


# -- 6. HEAD, 304 and 206 carry the GET's caching headers -------------------------------------


def test_head_has_the_gets_caching_headers_and_no_wrong_length(call: Call) -> None:
    app = html([("Content-Length", str(len(PAGE)))])
    get = call(app)
    head = App(200, app.headers, [])
    response = call(head, method="HEAD")
    assert vary(response) == vary(get)
    assert response.header("Cache-Control") == get.header("Cache-Control")
    assert response.header("Content-Length") in (None, get.header("Content-Length"))


@pytest.mark.parametrize("language", ["uk", None])
def test_head_varies_and_tags_like_the_get_when_content_language_chose(
    call: Call, language: str | None
) -> None:
    """The page's Content-Language chose the notice's locale: the GET does not vary on
    Accept-Language and its tag says so, and the HEAD of the same page answers the same."""
    named = [("Content-Language", language)] if language else []
    app = html([("ETag", '"v1"'), *named], length=True)
    get = call(app, headers=[("Accept-Language", "uk")])
    assert get.notices == [RULE]
    assert ("accept-language" in vary(get)) is (language is None)
    head = call(App(200, app.headers, []), method="HEAD", headers=[("Accept-Language", "uk")])
    assert vary(head) == vary(get)
    assert head.header("ETag") == get.header("ETag")


@pytest.mark.parametrize("length", [True, False])
def test_a_head_sent_with_the_gets_body_has_the_gets_headers(call: Call, length: bool) -> None:
    """Django and Starlette's ``Response`` send the GET's body for a HEAD (the server drops
    it): the HEAD is edited as the GET is, so its length, tag and Vary are the GET's. (Its
    length was the unedited page's, or none, and its tag and Vary were those of a page of
    unknown language, though its ``<html lang>`` was there to read.)"""
    page = PAGE.replace(b"<html>", b'<html lang="en">')
    app = html([("ETag", '"v1"')], body=page, length=length)
    get = call(app, headers=[("Accept-Language", "uk")])
    head = call(app, method="HEAD", headers=[("Accept-Language", "uk")])
    assert get.notices == [RULE]
    for name in ("Content-Length", "ETag", "Vary", "Cache-Control", "Content-Type"):
        assert head.header(name) == get.header(name), name
    assert "accept-language" not in vary(head)


def test_a_head_sent_without_a_body_counts_nothing(call: Call) -> None:
    app = html([("ETag", '"v1"')], length=True)
    head = call(App(200, app.headers, []), method="HEAD")
    assert head.header("Content-Length") is None
    assert head.body == b""
    assert LAST_METRICS["notices_injected"] == {}
    assert LAST_METRICS["notices_skipped"] == {}
    assert LAST_METRICS["notices_not_delivered"] == {}


@pytest.mark.parametrize("status", [304, 206])
def test_304_and_206_have_the_gets_caching_headers(call: Call, status: int) -> None:
    get = call(html(), DE)
    extra = [("Content-Type", "text/html")] if status == 206 else []
    app = App(status, [*extra, ("Content-Range", "bytes 0-9/99")] if status == 206 else [], [])
    response = call(app, DE, headers=[("Accept", "text/html")])
    assert response.header("Cache-Control") == get.header("Cache-Control")
    assert response.header("Vary") == get.header("Vary")


@pytest.mark.parametrize("status", [200, 304])
@pytest.mark.parametrize("ip", [RU, DE])
def test_an_answer_built_from_the_decision_gets_the_location_headers(
    call: Call, ip: str, status: int
) -> None:
    """A JSON answer the application builds from the decision (read through
    ``read_decision``, as the integrations' helpers do) depends on the reader's location:
    private, as a page is, and never edited. For a reader whose validators were prepared
    for a variant (one with notices), it carries that variant's tag: the application's own
    tag would never reach it again, so the answer could never be revalidated."""
    from compliance.core import read_decision

    headers = [("Content-Type", "application/json"), ("Cache-Control", "public, max-age=60")]
    headers += [("ETag", '"j1"')]

    class Reads(App):
        def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            assert read_decision(environ) is not None
            return super().wsgi(environ, start_response)

        async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert read_decision(scope["state"]) is not None
            await super().asgi(scope, receive, send)

    body = [b'{"notices": []}'] if status == 200 else []
    response = call(Reads(status, headers, body), ip)
    assert response.status == status
    assert response.header("Cache-Control") == "max-age=60, private"
    if ip == RU:
        assert (response.header("ETag") or "").startswith('"j1-cv')
    else:
        assert response.header("ETag") == '"j1"'
    assert response.body == b"".join(body)
    plain = call(App(status, headers, body), ip)  # not built from the decision
    assert plain.header("Cache-Control") == "public, max-age=60"


# -- 7. shared-cache directives ---------------------------------------------------------------


def test_private_pages_lose_every_shared_cache_directive(call: Call) -> None:
    extra = [
        ("Cache-Control", "public, max-age=60, s-maxage=600"),
        ("CDN-Cache-Control", "max-age=600"),
        ("Cloudflare-CDN-Cache-Control", "max-age=600"),
        ("Surrogate-Control", "max-age=600"),
        ("X-Accel-Expires", "600"),
    ]
    for ip in (RU, DE):
        response = call(html(extra), ip)
        assert response.header("Cache-Control") == "max-age=60, private"
        for name in ("CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control"):
            assert response.header(name) is None
        assert response.header("X-Accel-Expires") is None


# -- 8. fail open does not poison caches ------------------------------------------------------


def test_fail_open_is_never_storable_by_shared_caches(
    call: Call, engine: Engine, render_fails: Any
) -> None:
    app = html([("Cache-Control", "public, max-age=600"), ("CDN-Cache-Control", "max-age=600")])
    response = call(app, use=render_fails(engine))
    assert response.status == 200
    assert response.notices == []
    assert "public" not in (response.header("Cache-Control") or "")
    assert "private" in (response.header("Cache-Control") or "")
    assert response.header("CDN-Cache-Control") is None


# -- 9. fragments -----------------------------------------------------------------------------

FRAGMENT = b"<div id=latest><p>New story</p></div>"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        pytest.param([("HX-Request", "true")], FRAGMENT, [], id="htmx-fragment"),
        pytest.param([("Turbo-Frame", "latest")], FRAGMENT, [], id="turbo-fragment"),
        pytest.param([("HX-Request", "true")], PAGE, [RULE], id="htmx-full-document"),
        pytest.param(
            [("HX-Request", "true"), ("HX-Boosted", "true")], FRAGMENT, [RULE], id="boosted"
        ),
        pytest.param([], FRAGMENT, [RULE], id="no-partial-request"),
        pytest.param([], b"", [], id="empty-body"),
        pytest.param(
            [("HX-Request", "true")],
            b"<!-- c -->\n<!DOCTYPE html>" + PAGE[15:],
            [RULE],
            id="comment-then-document",
        ),
    ],
)
@pytest.mark.parametrize("length", [False, True], ids=["streamed", "with-length"])
def test_fragments(
    call: Call, headers: Headers, body: bytes, expected: list[str], length: bool
) -> None:
    response = call(html(body=body, length=length), headers=headers)
    assert response.notices == expected
    # A fragment's notices depend on the partial-page headers; a document's do not.
    assert ({"hx-request", "turbo-frame"} <= vary(response)) is body.startswith(b"<div")


def test_the_app_can_opt_a_response_out(call: Call) -> None:
    response = call(html([("X-Compliance-Skip", "1")]))
    assert response.notices == []
    assert response.header("X-Compliance-Skip") is None
    assert LAST_METRICS["notices_skipped"] == {"x-compliance-skip": 1}


# -- 10. consistency --------------------------------------------------------------------------


@pytest.mark.parametrize("length", [False, True], ids=["streamed", "with-length"])
def test_vary_accept_language_only_when_it_chose_the_locale(call: Call, length: bool) -> None:
    by_page = call(html(body=PAGE.replace(b"<html>", b"<html lang=uk>"), length=length))
    assert by_page.notices == [RULE]
    assert b'lang="uk"' in by_page.body
    assert "accept-language" not in (by_page.header("Vary") or "").lower()
    by_reader = call(html(length=length), headers=[("Accept-Language", "uk")])
    assert "accept-language" in (by_reader.header("Vary") or "").lower()


@pytest.mark.parametrize("lang", [b"<html lang=uk>", b"<html>"])
def test_a_304_varies_like_the_get(call: Call, lang: bytes) -> None:
    page = html([("ETag", '"v1"')], body=PAGE.replace(b"<html>", lang), length=True)
    get = call(page, headers=[("Accept-Language", "uk")])
    not_modified = App(304, [("ETag", '"v1"')], [])
    own = get.header("ETag")
    response = call(not_modified, headers=[("If-None-Match", own), ("Accept-Language", "uk")])
    assert response.header("ETag") == own
    assert vary(response) == vary(get)


@pytest.mark.parametrize("lang", [b"<html lang='en'>", b"<html lang='uk'>", b"<html>"])
def test_the_response_does_not_depend_on_how_the_body_is_split(call: Call, lang: bytes) -> None:
    """Headers that depend on the start of the document (its language chooses the locale and
    whether Accept-Language is a Vary) are the same wherever the chunks break it."""
    page = PAGE.replace(b"<html>", lang)
    whole = call(html(body=page), headers=[("Accept-Language", "uk")])
    assert whole.notices == [RULE]
    for at in range(1, 60):
        app = App(200, [("Content-Type", "text/html; charset=utf-8")], [page[:at], page[at:]])
        split = call(app, headers=[("Accept-Language", "uk")])
        assert (split.header("Vary"), split.body) == (whole.header("Vary"), whole.body), at


def test_wsgi_and_asgi_answer_alike_for_a_large_page(engine: Engine) -> None:
    big = b"<html><body>" + b"<p>paragraph</p>\n" * (10 * 1024 * 1024 // 17) + b"</body></html>"
    chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)]
    app = App(200, [("Content-Type", "text/html"), ("Content-Length", str(len(big)))], chunks)
    w = testing.call_wsgi(WsgiMiddleware(app.wsgi, engine), testing.wsgi_environ(peer=RU))
    a = testing.call_asgi(AsgiMiddleware(app.asgi, engine), testing.asgi_scope(peer=RU))
    assert (w.status, w.body) == (a.status, a.body)
    assert [(k.lower(), v) for k, v in w.headers] == [(k.lower(), v) for k, v in a.headers]
    assert w.notices == [RULE]


# -- 11. pages that cannot be edited ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_utf16_page_is_the_fail_mode(
    call: Call, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = "\ufeff<html><body><p>Привет</p></body></html>".encode("utf-16-le")
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response = call(html(body=body), fail_mode=mode)
    assert response.status == (503 if mode == "closed" else 200)
    if mode == "open":
        assert response.body == body
    assert undelivered(response) == {"encoding": 1}


@pytest.mark.parametrize(
    "header", ["X-Sendfile", "X-Accel-Redirect", "X-Lighttpd-Send-File", "X-LiteSpeed-Location"]
)
@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_page_the_server_in_front_sends_is_the_fail_mode(
    call: Call, header: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server in front sends the file (or location) these headers name in place of the
    body, unedited: the fail mode, logged and counted, with the application's own tag. (It
    was an empty body, its notices counted as legitimately skipped, with an edited
    variant's tag.)"""
    app = App(200, [("Content-Type", "text/html"), ("ETag", '"f1"'), (header, "/f.html")], [])
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response = call(app, fail_mode=mode)
    assert undelivered(response) == {"server file": 1}
    assert LAST_METRICS["notices_skipped"] == {}
    assert "notice not delivered (server file)" in caplog.text
    if mode == "closed":
        assert response.status == 503
        return
    assert response.header(header) == "/f.html"
    assert response.header("ETag") == '"f1"'
    assert "private" in (response.header("Cache-Control") or "")


@pytest.mark.parametrize(
    ("label", "expected"),
    [("x-user-defined", b"<p>&#1059;&#1074;&#1077;"), ("windows-1251", b"<p>\xd3\xe2\xe5")],
)
def test_a_page_in_any_ascii_compatible_charset_gets_its_notice(
    call: Call, label: str, expected: bytes
) -> None:
    """x-user-defined is a charset a Content-Type may name (browsers honour it there): the
    Russian notice goes in as character references, not a fault that leaves it out."""
    page = b"<html><body><p>x</p></body></html>"
    response = call(App(200, [("Content-Type", f"text/html; charset={label}")], [page]))
    assert response.status == 200
    assert expected in response.body
    assert LAST_METRICS["notices_injected"] == {f"{RULE}|RU": 1}
    assert not LAST_METRICS["notices_not_delivered"]


@pytest.mark.parametrize(
    ("policies", "nonce"),
    [
        (["script-src 'nonce-SCRIPT'; style-src 'nonce-STYLE'"], "STYLE"),
        (["script-src 'nonce-SCRIPT'; style-src-elem 'nonce-ELEM'; style-src 'x'"], "ELEM"),
        (["script-src 'nonce-SCRIPT'; default-src 'nonce-DEFAULT'"], "DEFAULT"),
        (["script-src 'nonce-A', style-src 'nonce-B'"], "B"),
        (["style-src 'nonce-A' 'nonce-B'", "style-src 'nonce-B'"], "B"),
        (["script-src 'nonce-SCRIPT'; style-src 'unsafe-inline'"], None),
    ],
)
def test_the_default_css_carries_the_nonce_its_policy_gives_styles(
    call: Call, policies: list[str], nonce: str | None
) -> None:
    """A policy may give scripts and styles different nonces: the <style> carries the one
    for styles (a script nonce gets it blocked, and the notice unstyled)."""
    headers = [("Content-Security-Policy", policy) for policy in policies]
    response = call(html(headers), css=True)
    attribute = f' nonce="{nonce}"' if nonce else ""
    assert f"<style{attribute}>.compliance-notice".encode() in response.body


@pytest.mark.parametrize(
    "ctype",
    [
        "text/html; charset=windows-1251; charset=utf-8",
        "text/html; charset='windows-1251'",
        "text/html; charset=; charset=windows-1251",
    ],
)
def test_the_charset_a_browser_reads_in_the_content_type_encodes_the_notice(
    call: Call, ctype: str
) -> None:
    """The first charset parameter is the one (Chromium reads the first of two, and takes
    one in single quotes): a notice encoded in another would be mojibake."""
    page = b"<html><body><p>x</p></body></html>"
    response = call(App(200, [("Content-Type", ctype)], [page]))
    assert b"<p>\xd3\xe2\xe5" in response.body  # "Уве" in windows-1251


@pytest.mark.parametrize("label", ["utf-16", "utf-16le", "iso-2022-jp"])
def test_a_utf8_byte_order_mark_wins_over_the_content_type(call: Call, label: str) -> None:
    """A byte order mark decides the encoding before the header does (Chromium shows such
    a page as UTF-8): the page can be edited, and gets its notice."""
    page = "\ufeff<html><body><p>Привет</p></body></html>".encode()
    response = call(App(200, [("Content-Type", f"text/html; charset={label}")], [page]))
    assert response.status == 200
    assert "Уведомление".encode() in response.body
    assert LAST_METRICS["notices_injected"] == {f"{RULE}|RU": 1}
    assert not LAST_METRICS["notices_not_delivered"]


XHTML_RULES = """\
version: 1
rules:
  - id: ru-notice
    title: a notice with a line break and a no-break space
    jurisdictions: [RU]
    notice:
      default_locale: en
      html: {en: "<p>Line one<br>art.\u00a0123 &amp; <a href='https://example.org/'>more</a></p>"}
"""


def test_an_xhtml_page_stays_well_formed(call: Call, make_engine: Callable[..., Engine]) -> None:
    """An XML parser reads application/xhtml+xml: a <br> or an &nbsp; (as the sanitizer
    writes them), or a notice after the document's end tag (for a <video/> taken as left
    open), would make Chromium show a parse error instead of the page."""
    page = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        b'<head><title>t</title></head><body><p>x</p><video src="v.mp4"/></body></html>'
    )
    ctype = [("Content-Type", "application/xhtml+xml; charset=utf-8")]
    response = call(App(200, ctype, [page]), use=make_engine(XHTML_RULES), css=True)
    assert response.status == 200
    root = ElementTree.fromstring(response.body)  # raises on a well-formedness error
    (aside,) = root.iter("{http://www.w3.org/1999/xhtml}aside")
    assert "".join(aside.itertext()) == "Line oneart.\u00a0123 & more"
    assert LAST_METRICS["notices_injected"] == {f"{RULE}|RU": 1}


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_middleware_stacked_twice_injects_each_notice_once(engine: Engine, adapter: str) -> None:
    """Two middlewares on one request (the same one wrapped twice, a framework's inside the
    generic one): the outer sees the page the inner edited, and does not add the notice
    again."""
    app = html()
    if adapter == "wsgi":
        wrapped = WsgiMiddleware(WsgiMiddleware(app.wsgi, engine), engine)
        environ = testing.wsgi_environ(peer=RU)
        response = testing.call_wsgi(wrapped, environ)
    else:
        outer = AsgiMiddleware(AsgiMiddleware(app.asgi, engine), engine)
        scope = testing.asgi_scope(peer=RU)
        response = testing.call_asgi(outer, scope)
    assert response.status == 200
    assert response.body.count(b'data-compliance-rule="ru-notice"') == 1


TOP_AND_BOTTOM = """\
version: 1
rules:
  - id: top
    title: a notice at the top
    jurisdictions: [RU]
    notice: {placement: body_start, default_locale: en, text: {en: The top notice.}}
  - id: bottom
    title: a notice at the bottom
    jurisdictions: [RU]
    notice: {placement: body_end, default_locale: en, text: {en: The bottom notice.}}
"""
OPEN_TO_THE_END = b"<html><body><p>Story</p><!-- a comment left open </body></html>\n"


@pytest.mark.parametrize("length", [False, True], ids=["streamed", "buffered"])
@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_notice_with_no_place_is_undelivered_even_when_another_went_in(
    call: Call,
    make_engine: Callable[..., Engine],
    mode: str,
    length: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A comment left open to the end leaves body_end no place while body_start has one:
    the bottom notice is not delivered, which is logged and counted, never counted as
    injected; failing open, the page keeps the notice that went in."""
    both = make_engine(TOP_AND_BOTTOM)
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response = call(html(body=OPEN_TO_THE_END, length=length), use=both, fail_mode=mode)
    # Counted per notice: refused, the page loses both; sent, the one with no place.
    lost = 2 if mode == "closed" and length else 1
    assert undelivered(response) == {"not inserted": lost}
    assert any(r.levelno == logging.WARNING and "body_end" in r.message for r in caplog.records)
    assert b"The bottom notice." not in response.body
    if mode == "closed" and length:  # nothing sent yet: the page is refused
        assert response.status == 503
        assert LAST_METRICS["notices_injected"] == {}
    else:  # failing open, or the headers were out: the page with the notice that went in
        assert response.status == 200
        assert response.body.startswith(b'<html><body><aside class="compliance-notice"')
        assert b"The top notice." in response.body
        assert response.body.endswith(b"<p>Story</p><!-- a comment left open </body></html>\n")
        assert LAST_METRICS["notices_injected"] == {"top|RU": 1}
        if length:
            assert response.header("Content-Length") == str(len(response.body))


FRAMESET = (
    b"<!DOCTYPE html><html><head><title>Frames</title></head>"
    b'<frameset cols="50%,50%"><frame src="/a"><frame src="/b"></frameset></html>\n'
)


@pytest.mark.parametrize("coding", ["identity", "gzip"])
def test_a_page_found_uneditable_after_its_headers_goes_on_unedited(
    call: Call, coding: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Streamed, the head goes out (and the headers with it) before the <frameset> says the
    page cannot carry notices: failing open, the rest goes on as the application sent it,
    never cut, and the notice is logged and counted as not delivered."""
    data = gzip.compress(FRAMESET) if coding == "gzip" else FRAMESET
    chunks = [data[i : i + 16] for i in range(0, len(data), 16)]
    headers = [("Content-Type", "text/html; charset=utf-8")]
    if coding == "gzip":
        headers.append(("Content-Encoding", "gzip"))
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response = call(App(200, headers, chunks), headers=[("Accept-Encoding", "gzip")])
    assert response.status == 200
    body = gzip.decompress(response.body) if coding == "gzip" else response.body
    assert body == FRAMESET
    assert undelivered(response) == {"frameset document": 1}
    assert LAST_METRICS["notices_injected"] == {}
    assert any("frameset document" in r.message for r in caplog.records)


# -- logging is keyed by cause ----------------------------------------------------------------


def test_warnings_are_rate_limited_by_cause_not_address(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from compliance import core

    core._seen.clear()
    app = html([("Content-Encoding", "zstd")], body=b"x")
    middleware = WsgiMiddleware(app.wsgi, engine)
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        for _ in range(20):
            testing.call_wsgi(middleware, testing.wsgi_environ(peer=RU))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert middleware.metrics()["notices_not_delivered"] == {"content-coding": 20}


# -- hosts are normalised once ----------------------------------------------------------------

BLOCK_RULES = """\
version: 1
rules:
  - id: court-order
    title: a block on one host
    jurisdictions: ["*"]
    hosts: [news.example]
    block:
      blocked_by: https://court.example/
      default_locale: en
      text:
        en: Blocked.
"""


def test_a_trailing_dot_in_host_does_not_bypass_a_block(
    call: Call, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "block.yaml").write_text(BLOCK_RULES)
    engine = Engine.from_paths([folder], geolocator=FixedGeolocator({DE: Location.of("DE")}))
    for host in ("news.example", "news.example.", "NEWS.example.:443"):
        response = call(html(), DE, headers=[("Host", host)], use=engine)
        assert response.status == 451, host


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_frameset_page_is_the_fail_mode(call: Call, mode: str) -> None:
    body = b"<!DOCTYPE html><html><head></head><frameset><frame src=a></frameset></html>"
    response = call(html(body=body), fail_mode=mode)
    assert response.status == (503 if mode == "closed" else 200)
    if mode == "open":
        assert response.body == body
    assert list(undelivered(response)) in (["frameset document"], ["not inserted"])

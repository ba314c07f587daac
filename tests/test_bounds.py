"""Hostile input costs time and memory in proportion to its size, through both adapters.

Each test feeds the request pipeline one input shaped to make a quadratic step show (many
small pieces, many repeats of one construct) and checks the work done by counting it, or
under a deadline far above what the linear cost takes and far below what the quadratic cost
would: the answer must come, whole, with the notice or through the fail mode.
"""

from __future__ import annotations

import gzip
import re
import signal
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from compliance import core, http, testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.html import injector
from compliance.testing import TestResponse
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
  - id: ru-withheld
    title: marked content withheld in Russia
    jurisdictions: [RU]
    withhold:
      marks: [ru]
      embeds: ["*.video.example"]
      text:
        en: Withheld in Russia.
"""
Headers = list[tuple[str, str]]


@pytest.fixture(scope="module")
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(RULES, {RU: "RU"})


class TooSlow(BaseException):
    """Raised by :func:`deadline`: a BaseException, so that no fault handling in the
    middleware takes it for a fault of its own and fails open."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail the test if the block takes longer than ``seconds`` (a bound for quadratic work,
    many times what the linear work takes)."""

    def expired(signum: int, frame: object) -> None:
        raise TooSlow(f"still working after {seconds} s: the cost is not linear")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def page_app(chunks: list[bytes], headers: Headers) -> Any:
    """An application answering ``chunks`` as an HTML body, for WSGI (``app``) and ASGI
    (``app.asgi``)."""
    sent = [("Content-Type", "text/html; charset=utf-8"), *headers]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", list(sent))
        return chunks

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in sent]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    app.asgi = asgi  # type: ignore[attr-defined]
    return app


Call = Callable[..., TestResponse]


@pytest.fixture(params=["wsgi", "asgi"])
def call(request: pytest.FixtureRequest, engine: Engine) -> Call:
    """``call(chunks, headers=..., **middleware options)``: the response a reader in Russia
    gets for a page sent in ``chunks``."""

    def run(chunks: list[bytes], headers: Headers = (), **options: Any) -> TestResponse:  # type: ignore[assignment]
        app = page_app(chunks, list(headers))
        if request.param == "wsgi":
            middleware = WsgiMiddleware(app, engine, **options)
            return testing.call_wsgi(middleware, testing.wsgi_environ("/", peer=RU))
        asgi = AsgiMiddleware(app.asgi, engine, **options)
        return testing.call_asgi(asgi, testing.asgi_scope("/", peer=RU))

    return run


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- the start of the document, in many small pieces -----------------------------------------

DOCUMENT = b"<html><head><title>t</title></head><body><p>Story</p></body></html>"


@pytest.mark.parametrize("preamble", [b" ", b"<!-- x "], ids=["whitespace", "comment"])
def test_a_long_preamble_in_small_pieces_is_read_a_bounded_number_of_times(
    call: Call, preamble: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whitespace or a comment before the first tag, sent a few bytes at a time, was read
    from its start again at every piece (and every piece held was looked at again): time in
    the square of its length, seconds of CPU for a 64 KiB preamble."""
    start = preamble * (64 * 1024 // len(preamble))
    body = start + (b" -->" if preamble != b" " else b"") + DOCUMENT
    read = []
    fragment = core._fragment

    def counted(prefix: bytes, final: bool) -> bool | None:
        read.append(len(prefix))
        return fragment(prefix, final)

    monkeypatch.setattr(core, "_fragment", counted)
    response = call(pieces(body, 16))
    assert response.status == 200
    assert response.notices == ["ru-notice"]
    assert sum(read) <= 4 * len(body)


def test_a_preamble_sent_a_byte_at_a_time_is_linear(call: Call) -> None:
    body = b" " * (64 * 1024) + DOCUMENT
    with deadline(30):  # linear: well under a second; quadratic: minutes
        response = call(pieces(body, 1))
    assert response.notices == ["ru-notice"]
    assert response.body.startswith(b" " * (64 * 1024) + b"<html>")


@pytest.mark.parametrize(
    ("opening", "filler", "closing"),
    [
        (b"<!--", b"x", b"-->"),
        (b"<p title='", b"x", b"'>"),
        (b"<![CDATA[", b"x", b"]]>"),
        (b"<!--", b"->", b"-->"),
        (b"<p title='", b">", b"'>"),
    ],
    ids=["comment", "start tag", "bogus comment", "comment of >", "start tag of >"],
)
def test_a_long_token_in_small_pieces_is_read_a_bounded_number_of_times(
    call: Call, opening: bytes, filler: bytes, closing: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token not finished at the end of a piece (a comment, a start tag) was read again
    from its start with every next piece: time in the square of its length (10 s of CPU
    for a 64 KB comment sent a byte at a time). A piece with a ">" may end it, and is read
    sooner, but not at every piece either."""
    inner = filler * (48_000 // len(filler))
    body = b"<html><body><p>Story</p>" + opening + inner + closing + b"</body></html>"
    read = []
    scan = injector.Injector._scan

    def counted(self: injector.Injector, data: bytes, final: bool) -> int:
        read.append(len(data))
        return scan(self, data, final)

    monkeypatch.setattr(injector.Injector, "_scan", counted)
    response = call(pieces(body, 16))
    assert response.notices == ["ru-notice"]
    assert response.body.count(inner) == 1
    assert sum(read) <= (4 if filler == b"x" else 32) * len(body)


# -- withholding: many of one thing the probe looks for, none of the other --------------------


class _CountedPattern:
    """A compiled pattern that adds up the length of text its searches read (to their match,
    else to where they stop)."""

    def __init__(self, pattern: re.Pattern[bytes], spans: list[int]) -> None:
        self._pattern = pattern
        self._spans = spans

    def search(
        self, data: bytes, pos: int = 0, endpos: int = sys.maxsize
    ) -> re.Match[bytes] | None:
        found = self._pattern.search(data, pos, endpos)
        self._spans.append((min(endpos, len(data)) if found is None else found.end()) - pos)
        return found


@pytest.mark.parametrize(
    "element",
    [b"<p data-compliance-withhold='ru'>x</p>", b"<p style='color: red'>x</p>"],
    ids=["marks", "styles"],
)
def test_withholding_reads_many_marks_or_styles_in_proportion(
    call: Call, element: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While embeds are withheld the tokenizer looks ahead for the next ``style=`` or mark,
    by two searches: with many of one and none of the other, the other was searched to the
    end of the page again at each (12 s of CPU for a 1 MB page of marks)."""
    spans: list[int] = []
    for name in ("_STYLE_IN_LOWER", "_MARK_PROBE"):
        monkeypatch.setattr(injector, name, _CountedPattern(getattr(injector, name), spans))
    body = b"<html><body>" + element * 2000 + b"</body></html>"
    response = call([body])
    assert response.notices == ["ru-notice"]
    if b"withhold" in element:
        assert response.body.count(b'class="compliance-withheld"') == 2000
    assert sum(spans) <= 4 * len(body)


# -- content codings ---------------------------------------------------------------------------


class _CountedDecoder:
    """A zlib decoder that adds up the coded bytes it is handed."""

    def __init__(self, decoder: Any, given: list[int]) -> None:
        self._decoder = decoder
        self._given = given

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        self._given.append(len(data))
        return self._decoder.decompress(data, max_length)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoder, name)


def test_a_body_of_many_gzip_members_is_decoded_in_proportion(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each gzip member is decoded (RFC 1952 2.2); the rest of the chunk after one was
    handed to the next member's decoder whole, and copied back as its unused data: 5 s of
    CPU for 2 MB of empty members, in the square of their number."""
    given: list[int] = []
    decompressobj = zlib.decompressobj
    monkeypatch.setattr(
        http.zlib,
        "decompressobj",
        lambda *args, **kwargs: _CountedDecoder(decompressobj(*args, **kwargs), given),
    )
    members = 10_000
    body = (
        gzip.compress(b"<html><body><p>Story</p>")
        + gzip.compress(b"") * members
        + gzip.compress(b"</body></html>")
    )
    response = call([body], [("Content-Encoding", "gzip")])
    monkeypatch.undo()
    assert gzip.decompress(response.body).count(b'class="compliance-notice"') == 1
    assert sum(given) <= 256 * (members + 2) + 4 * len(body)


# -- response headers the application sends ----------------------------------------------------


def test_many_csp_nonces_cost_time_in_proportion(call: Call) -> None:
    """The nonce for the notices' style is one every policy accepts: each nonce of the first
    policy was looked for in the others' lists, in the square of their number (40 s of CPU
    for two policies of 1 MB)."""
    policy = "style-src " + " ".join(f"'nonce-n{i}'" for i in range(50_000))
    headers = [("Content-Security-Policy", policy)] * 2
    with deadline(10):  # linear: milliseconds
        response = call([DOCUMENT], headers, css=True)
    assert response.notices == ["ru-notice"]
    assert b'<style nonce="n0">' in response.body

"""Withholding through the response core (issue 18), on both adapters: what goes, what stays,
placeholders in the page's language, caching, fragments, and the fail mode when an element's
end cannot be told."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from typing import Any

import pytest

from compliance import testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.html import withhold as withhold_module
from compliance.testing import TestResponse
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RU, DE = "192.0.2.1", "192.0.2.2"
RULES = """\
version: 1
rules:
  - id: ru-order
    title: a court order withholds one comment in Russia
    jurisdictions: [RU]
    withhold:
      marks: [order-7]
      default_locale: en
      text:
        en: Withheld in your country in response to a legal demand.
        ru: Скрыто в вашей стране по требованию закона.
    notice:
      default_locale: en
      text:
        en: A notice for readers in Russia.
  - id: no-players
    title: no embedded players from one host, for everyone
    jurisdictions: ["*"]
    unknown_location: apply
    withhold:
      embeds: ["*.player.example"]
      placeholder: false
"""
PAGE = (
    b"<!DOCTYPE html><html lang=ru><head><title>t</title></head><body>"
    b"<p>Story</p><div class=c data-compliance-withhold='order-7'><p>A comment<p>more</div>"
    b'<iframe src="https://tv.player.example/embed/1"></iframe><p>End</p></body></html>'
)
WITHHELD_CLASS = b'class="compliance-withheld"'


@pytest.fixture(scope="module")
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(RULES)


class App:
    def __init__(self, headers: list[tuple[str, str]], body: bytes, chunk: int = 7) -> None:
        self.headers = [("Content-Type", "text/html; charset=utf-8"), *headers]
        self.body = body
        self.chunk = chunk
        self.status = 200
        self.seen: dict[str, str] = {}

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.seen = {
            k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k[:5] == "HTTP_"
        }
        start_response(f"{self.status} X", list(self.headers))
        return [self.body[i : i + self.chunk] for i in range(0, len(self.body), self.chunk)]

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen = {k.decode(): v.decode() for k, v in scope["headers"]}
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


Call = Callable[..., tuple[TestResponse, dict[str, Any]]]


@pytest.fixture(params=["wsgi", "asgi"])
def call(request: pytest.FixtureRequest, engine: Engine) -> Call:
    def run(app: App, ip: str = RU, headers: Any = (), **options: Any) -> tuple[TestResponse, Any]:
        if request.param == "wsgi":
            middleware: Any = WsgiMiddleware(app.wsgi, engine, **options)
            environ = testing.wsgi_environ("/story", peer=ip, headers=list(headers))
            return testing.call_wsgi(middleware, environ), middleware.metrics()
        middleware = AsgiMiddleware(app.asgi, engine, **options)
        scope = testing.asgi_scope("/story", peer=ip, headers=list(headers))
        return testing.call_asgi(middleware, scope), middleware.metrics()

    return run


def counted_once(response: TestResponse, metrics: dict[str, Any]) -> None:
    """The notice counted once, where it ended up: in the page (injected; the page cut,
    counted as such) or not (not delivered)."""
    notice_in = b"A notice for readers in Russia." in response.body
    assert bool(metrics["notices_injected"]) is notice_in
    if notice_in:
        assert metrics["notices_not_delivered"] == {}
        assert metrics["pages_cut"] == {"withhold uncertain": 1}
    else:
        assert metrics["notices_not_delivered"] == {"withhold uncertain": 1}
        assert metrics["pages_cut"] == {}


def test_marked_elements_and_listed_embeds_go_with_a_placeholder_in_the_page_language(
    call: Call,
) -> None:
    response, metrics = call(App([], PAGE))
    body = response.body
    assert b"A comment" not in body
    assert b"more" not in body
    assert b"player.example" not in body
    assert b"<p>Story</p>" in body
    assert b"<p>End</p>" in body
    assert body.count(WITHHELD_CLASS) == 1  # the player rule removes without a trace
    assert "Скрыто в вашей стране".encode() in body  # <html lang=ru> chose the locale
    assert b'data-compliance-rule="ru-order" lang="ru"' in body
    assert response.notices == ["ru-order"]
    assert metrics["withheld"] == {"ru-order": 1, "no-players": 1}


def test_a_reader_elsewhere_keeps_the_marked_part_but_not_the_player(call: Call) -> None:
    response, _ = call(App([], PAGE), DE)
    assert b"A comment" in response.body
    assert b"player.example" not in response.body
    assert WITHHELD_CLASS not in response.body


def test_withholding_applies_to_fragments_and_skipped_responses(call: Call) -> None:
    fragment = b"<div data-compliance-withhold='order-7'>secret</div><p>visible</p>"
    for headers, app in (
        ([("HX-Request", "true")], App([], fragment)),
        ([], App([("X-Compliance-Skip", "1")], PAGE)),
    ):
        response, _ = call(app, headers=headers)
        assert response.notices == []  # no notice in a fragment or an opted-out response
        assert b"secret" not in response.body
        assert b"A comment" not in response.body
        assert WITHHELD_CLASS in response.body


def test_withheld_pages_have_the_caching_rules_of_any_located_page(call: Call) -> None:
    app = App([("ETag", '"v1"'), ("Accept-Ranges", "bytes"), ("Cache-Control", "public")], PAGE)
    response, _ = call(app, headers=[("Range", "bytes=0-99"), ("If-None-Match", '"v1"')])
    assert "range" not in app.seen
    assert "if-none-match" not in app.seen
    assert response.header("Accept-Ranges") is None
    assert response.header("Cache-Control") == "private"
    assert (response.header("ETag") or "").startswith('"v1-cv')


def test_gzip_bodies_are_edited_too(call: Call) -> None:
    response, _ = call(App([("Content-Encoding", "gzip")], gzip.compress(PAGE)))
    page = gzip.decompress(response.body)
    assert b"A comment" not in page
    assert WITHHELD_CLASS in page


MISNESTED = (
    b"<!DOCTYPE html><html><body><p>before</p>"
    b"<b><p data-compliance-withhold='order-7'>secret</b>still secret</p><p>after</p>"
)


def test_an_element_whose_end_cannot_be_told_fails_closed_as_503(call: Call) -> None:
    # 503 while the headers have not gone out (the body in one piece); once they have, the
    # document is cut as when failing open.
    response, metrics = call(App([], MISNESTED, chunk=len(MISNESTED)), fail_mode="closed")
    assert response.status == 503
    assert b"secret" not in response.body
    counted_once(response, metrics)
    response, metrics = call(App([], MISNESTED, chunk=7), fail_mode="closed")
    assert b"secret" not in response.body
    counted_once(response, metrics)


def test_failing_open_cuts_the_document_rather_than_send_withheld_content(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "compliance.middleware"):
        response, metrics = call(App([], MISNESTED))
    assert response.status == 200
    assert b"before" in response.body
    assert b"secret" not in response.body
    assert b"after" not in response.body
    assert any("withhold uncertain" in r.getMessage() for r in caplog.records)
    # The cut document ends with the notice still due, and counts it as injected.
    assert b"A notice for readers in Russia." in response.body
    assert metrics["notices_injected"] == {"ru-order|RU": 1}


@pytest.mark.parametrize("chunk", [7, 1])
def test_a_document_cut_after_its_headers_counts_the_notices_it_ends_with(
    call: Call, chunk: int
) -> None:
    # Refused while the headers were not out (the ASGI app sends one message); cut once
    # they were (WSGI, in chunks): either way what is in the page is what is counted.
    response, metrics = call(App([], MISNESTED, chunk=chunk), fail_mode="closed")
    assert b"secret" not in response.body
    counted_once(response, metrics)


MARKED_BODY = (
    b"<!DOCTYPE html><html><head><title>t</title></head>"
    b"<body data-compliance-withhold='order-7'><p>The whole story</p></body></html>"
)


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_marked_body_is_never_sent(call: Call, mode: str) -> None:
    """The mark on <body> withholds the page's content: it is not ignored (the page went
    out whole before), nor can the body be cut out and the page stand. Failing closed the
    answer is a 503; failing open the document ends where the body would start."""
    response, metrics = call(App([], MARKED_BODY, chunk=len(MARKED_BODY)), fail_mode=mode)
    assert response.status == (503 if mode == "closed" else 200)
    assert b"The whole story" not in response.body
    counted_once(response, metrics)
    response, metrics = call(App([], MARKED_BODY), DE, fail_mode=mode)  # the rule is Russia's
    assert response.status == 200
    assert b"The whole story" in response.body


def test_a_body_that_cannot_be_edited_is_never_sent_unedited(call: Call) -> None:
    response, _ = call(App([("Content-Encoding", "zstd")], b"\x28\xb5\x2f\xfd" + PAGE))
    assert response.status == 503  # even with fail_mode="open": the content is withheld


def test_output_does_not_depend_on_chunking(engine: Engine) -> None:
    def once(size: int) -> bytes:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "text/html")])
            return [PAGE[i : i + size] for i in range(0, len(PAGE), size)]

        environ = testing.wsgi_environ("/", peer=RU)
        return testing.call_wsgi(WsgiMiddleware(app, engine), environ).body

    whole = once(len(PAGE))
    for size in range(1, 64):
        assert once(size) == whole, size


def test_a_page_refused_with_no_notice_due_is_counted_as_such(call: Call) -> None:
    """Only content to withhold was due (a reader outside Russia, an embed the parsers may
    place differently inside a <select>): refused with a 503, no notice lost, the refusal
    counted."""
    page = (
        b"<!DOCTYPE html><html><body><p>a</p><select>"
        b'<iframe src="https://tv.player.example/embed/1"></iframe></select><p>b</p></body></html>'
    )
    response, metrics = call(App([], page, chunk=len(page)), DE, fail_mode="closed")
    assert response.status == 503
    assert b"player.example" not in response.body
    assert metrics["notices_not_delivered"] == {}
    assert metrics["pages_cut"] == {"withhold uncertain": 1}


def test_a_link_header_to_a_withheld_embed_host_goes_the_others_stay(call: Call) -> None:
    # A browser preloads, prefetches or connects to what a page's Link header names, as it
    # loads an embed: a link-value on a withheld host goes, the page's own stay as written.
    own = '</a,b.js>; rel=modulepreload; title="x, <y>"'
    links = [
        ("Link", "<https://tv.player.example/e.js>; rel=preload; as=script, </s.css>; rel=preload"),
        ("Link", "<//cdn.PLAYER.example.>; rel=preconnect"),
        ("Link", own),
        ("Link", "<https://cdn.example.org/app.js>; rel=preload; as=script"),
    ]
    for reader in (RU, DE):  # the player rule applies everywhere
        response, _ = call(App(links, PAGE), reader)
        kept = [value for key, value in response.headers if key.lower() == "link"]
        assert kept == [
            "</s.css>; rel=preload",
            own,
            "<https://cdn.example.org/app.js>; rel=preload; as=script",
        ]
        assert b"player.example" not in response.body


def test_a_refresh_header_to_a_withheld_embed_host_goes_the_others_stay(call: Call) -> None:
    """A ``Refresh`` response header was passed through: a browser follows it as it follows
    ``<meta http-equiv=refresh>`` (which the editor withholds) and went to the host."""
    for value in ("0; url=https://tv.player.example/g", "0;URL='//CDN.player.example./'"):
        response, _ = call(App([("Refresh", value)], PAGE), RU)
        assert [v for k, v in response.headers if k.lower() == "refresh"] == []
        assert b"player.example" not in response.body
    own = ("Refresh", "30; url=/story?page=2")
    response, _ = call(App([own, ("Link", "</s.css>; rel=preload")], PAGE), DE)
    assert [(k.lower(), v) for k, v in response.headers if k.lower() in ("refresh", "link")] == [
        ("refresh", own[1]),
        ("link", "</s.css>; rel=preload"),
    ]


def test_embeds_on_other_hosts_go_unread(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    # The middleware tells the editor which hosts its rules name: the URLs of the page's
    # images on its CDN are not read, the player's still is.
    read: list[str] = []
    host_of = withhold_module.url_host

    def counted(url: str) -> str | None:
        read.append(url)
        return host_of(url)

    monkeypatch.setattr(withhold_module, "url_host", counted)
    images = b"".join(b'<img src="https://img.cdn.example/%d.jpg">' % i for i in range(50))
    response, _ = call(App([], PAGE.replace(b"<p>End</p>", images + b"<p>End</p>")), ip=DE)
    assert b"tv.player.example" not in response.body
    assert b"img.cdn.example/49.jpg" in response.body
    assert read == ["https://tv.player.example/embed/1"]

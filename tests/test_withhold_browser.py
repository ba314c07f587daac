"""Withheld embeds in a real browser: what headless Chromium fetches from a page served
through the middleware to a reader in the jurisdiction (every request is answered locally and
recorded; nothing leaves the machine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from compliance import testing
from compliance.engine import Engine
from compliance.wsgi import ComplianceMiddleware

pytestmark = pytest.mark.slow

RULES = """\
version: 1
rules:
  - id: no-players
    title: no embeds from one host, for readers in Russia
    jurisdictions: [RU]
    withhold:
      embeds: ["withheld.test", "*.withheld.test"]
      placeholder: false
"""
RU, DE = "192.0.2.1", "192.0.2.2"

# Each loads something from the withheld host in Chromium, by another way than <img src>.
EMBEDS = [
    b'<link rel=stylesheet href="http://withheld.test/a.css">',
    b'<link rel=preload as=image href="http://withheld.test/b.png">',
    b'<link rel=preload as=image imagesrcset="http://withheld.test/c.png 1x">',
    b'<video poster="http://withheld.test/e.png"></video>',
    b'<svg><image href="http://withheld.test/f.png" width=9 height=9 /></svg>',
    b'<svg><image xlink:href="http://withheld.test/g.png" width=9 height=9 /></svg>',
    b'<svg><filter id=x><feImage href="http://withheld.test/h.png"/></filter>'
    b'<rect filter="url(#x)" width=9 height=9 /></svg>',
    b'<svg><script href="http://withheld.test/i.js"></script></svg>',
    b'<input type=image src="http://withheld.test/j.png">',
    b'<img src="http://withheld.test\xe3\x80\x82/k.png">',  # an ideographic full stop
    b'<base href="http://withheld.test/"><img src="l.png">',
    b'<meta http-equiv=refresh content="0; url=http://withheld.test/">',  # goes there
    # CSS: a style attribute, a <style> (CSS escapes decoded: "\\74" is "t")
    b'<div style="background:url(http://withheld.test/q.png)">x</div>',
    b'<style>@import "http://withheld.test/r.css";</style>',
    b"<style>p{background-image:url('http://withheld.\\74 est/s.png')}</style>",
    b'<div style="background-image:image-set(&quot;http://withheld.test/u.png&quot; 1x)">x</div>',
    # A background image on table parts; on the body (a late <body> tag adds its attributes
    # to the body): the document cannot go on without it, it is cut (uncertain).
    b'<table background="http://withheld.test/w.png"><tr><td>x</td></tr></table>',
    b'<table><tr><td background="http://withheld.test/y.png">x</td></tr></table>',
    b'<body background="http://withheld.test/z.png">',
    b'<body style="background:url(http://withheld.test/z2.png)">',
    # In SVG a <style>'s text is not raw: character references are decoded.
    b'<svg><style>@import "http://withheld.&#x74;est/v.css";</style><rect width=9 /></svg>',
]


def _fetched(
    browser: Any, body: bytes, scripting: bool = True, headers: dict[str, str] | None = None
) -> set[str]:
    """The hosts Chromium requests while loading ``body`` (with ``headers``, if given) as
    http://page.test/."""
    hosts: set[str] = set()
    context = browser.new_context(java_script_enabled=scripting)
    page = context.new_page()

    def answer(route: Any, request: Any) -> None:
        host = urlsplit(request.url).hostname or ""
        if host != "page.test":
            hosts.add(host.rstrip("."))
            route.fulfill(status=200, body=b"")
        else:
            page_headers = {"content-type": "text/html; charset=utf-8", **(headers or {})}
            route.fulfill(status=200, headers=page_headers, body=body)

    try:
        page.route("**/*", answer)
        page.goto("http://page.test/")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # preloads and filters may start after "load"
    finally:
        context.close()
    return hosts


# Read as markup by a browser with scripting off.
NOSCRIPT_EMBEDS = [
    b'<noscript><style>@import "http://withheld.test/a.css";</style></noscript>',
    b'<noscript><div style="background:url(http://withheld.test/b.png)">x</div></noscript>',
]


@pytest.mark.parametrize(
    ("embed", "scripting"),
    [(embed, True) for embed in EMBEDS] + [(embed, False) for embed in NOSCRIPT_EMBEDS],
)
def test_chromium_fetches_nothing_from_a_withheld_host(
    browser: Any, make_engine: Callable[..., Engine], embed: bytes, scripting: bool
) -> None:
    page = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>a</p>%s<p>b</p>" % embed

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page[i : i + 5] for i in range(0, len(page), 5)]

    middleware = ComplianceMiddleware(app, make_engine(RULES))

    def served(ip: str) -> bytes:
        return testing.call_wsgi(middleware, testing.wsgi_environ("/", peer=ip)).body

    assert "withheld.test" in _fetched(browser, served(DE), scripting)  # it does elsewhere
    assert _fetched(browser, served(RU), scripting) == set()


def test_chromium_follows_no_link_header_to_a_withheld_host(
    browser: Any, make_engine: Callable[..., Engine]
) -> None:
    page = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>a</p></body></html>"
    link = "<http://withheld.test/p.css>; rel=preload; as=style, </own.css>; rel=preload; as=style"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Link", link)])
        return [page]

    middleware = ComplianceMiddleware(app, make_engine(RULES))

    def fetched(ip: str) -> set[str]:
        response = testing.call_wsgi(middleware, testing.wsgi_environ("/", peer=ip))
        links = [value for key, value in response.headers if key.lower() == "link"]
        return _fetched(browser, response.body, headers={"link": ", ".join(links)})

    assert "withheld.test" in fetched(DE)  # Chromium preloads what the header names
    assert fetched(RU) == set()

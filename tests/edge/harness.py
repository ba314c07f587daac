"""Shared by the edge-export tests: a small origin, the engines as subprocesses, and the
library's own answers for the same readers (through the real WSGI middleware).

Loaded by the test modules with :func:`load` (the test suite runs in importlib mode).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import getpass
import gzip
import html
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules"
CORNER_CASES = HERE / "corner-cases"
"""Rules for corner cases, on paths of their own (the ``CORNER_PATHS`` of the tests)."""
REQUIRE = os.environ.get("COMPLIANCE_REQUIRE_EDGE") == "1"
"""Set by .ci/run: a missing engine fails the tests instead of skipping them."""

NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_http_geoip2_module.so")
WORKERD = HERE / "node_modules" / ".bin" / "workerd"
MARKUP = re.compile(r'<aside class="compliance-notice".*?</aside>', re.DOTALL)
NOTICE = re.compile(
    r'<aside class="compliance-notice" data-compliance-rule="([^"]+)" lang="([^"]+)"'
)

PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Origin</title></head>'
    "<body><h1>Headline</h1><!-- compliance:notices --><p>Article text.</p></body></html>"
)


NOVOSTI = "/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8"  # /новости, as a browser sends it
CORNER_PATHS = [
    # A non-ASCII block: an invalid escape elsewhere in the path is one U+FFFD, not a reason
    # to read the whole path another way.
    NOVOSTI + "/story",
    NOVOSTI + "/story%FF",
    NOVOSTI + "/x%C0/y",
    NOVOSTI + "%E2%82/story",
    # `?` is one character: a code point, or one invalid sequence as Python's "replace"
    # reads it (a truncated sequence is one U+FFFD, an overlong or surrogate one is several).
    "/one/a/x",
    "/one/ab/x",
    "/one/%D0%B6/x",  # ж, two bytes
    "/one/%E2%82%AC/x",  # €, three bytes
    "/one/%F0%9F%98%80/x",  # an emoji, four bytes (two UTF-16 units)
    "/one/%FF/x",
    "/one/%E2%82/x",
    "/one/%F0%9F%98/x",
    "/one/%C0%80/x",
    "/one/%ED%A0%80/x",
    "/one/%F4%90%80%80/x",
    "/one/%EF%BB%BF/x",  # a byte order mark is a character like any other
    "/one/%D0%B6%B6/x",
    # A star before `?` stops between characters, never inside one.
    "/star/a%E2%82%AC",
    "/star/a%E2%82%AC%E2%82%AC",
    "/star/a%F0%9F%98%80",
    "/star/a%E2%82%FF",
    "/any/%E2%82%AC",
    "/any/b/%E2%82%AC",
    "/any/%E2%82%AC%E2%82%AC",
    "/any/%F0%9F%98%80",
    "/any/%E2%82",
    "/any/%E2%82%FF",
    # A last dot segment leaves a directory; empty segments merge before `..` removes one.
    "/dots/.",
    "/dots/b/..",
    "/dots/b/%2e%2E",
    "/dots/a//..",
    "/dots/a//../",
    "/dots/a/.",
    # A path that starts with `//` is still a path (not a host) on its way to the origin.
    "//dots/b",
    "/x/..//dots/b",
]
"""Percent-encoded paths for the rules in ``CORNER_CASES``."""

LANGUAGE_PATH = "/languages/p"
"""A page of the corner rule ``corner-languages``; ``/languages/lang/TAG/p`` says
``Content-Language: TAG``, ``/languages/htmllang/TAG/p`` ``<html lang="TAG">`` (TAG in UTF-8,
percent-encoded)."""


def language_path(page: str | None) -> str:
    """The path of ``LANGUAGE_PATH``'s page in language ``page`` (a case's third item): its
    ``Content-Language``, or, written ``lang=TAG``, its ``<html lang>``, or, written as
    markup (``<html xml:lang=...>``), what stands for its ``<html>`` tag."""
    if page is None:
        return LANGUAGE_PATH
    if page.startswith("lang="):
        return f"/languages/htmllang/{quote(page[5:], safe='')}/p"
    if page.startswith("<"):
        return f"/languages/htmltag/{quote(page, safe='')}/p"
    return f"/languages/lang/{quote(page, safe='')}/p"


LANGUAGE_ADDRESSES = {
    "GB": "81.2.69.142",
    "DE": "2a02:d180::1",
    "AT": "2a02:da80::1",
    "CH": "2a02:d000::1",
    "RU": "2a02:d0c0::1",
    "US": "216.160.83.56",
    "CN": "175.16.199.1",
}
"""Readers of MaxMind's City test database for the countries of ``LANGUAGE_CASES``."""
LANGUAGE_CASES = [
    # (country, Accept-Language, page's Content-Language, the locale corner-languages gets)
    # `q` is a parameter name, and those are case-insensitive (RFC 9110 5.6.6).
    ("GB", "ru;Q=0.5, uk;q=0.4", None, "ru"),
    ("GB", "ru;Q=0.8, uk;Q=0.8", None, "ru"),
    ("RU", "ru;Q=0, uk;q=0", None, "en-GB"),
    ("RU", "ru ; Q = 0", None, "en-GB"),
    # A weight that is no RFC 9110 qvalue makes its range malformed: skipped, never first.
    ("GB", "ru, de-AT;q=1.5", None, "ru"),
    ("GB", "de-AT;q=1.5, ru", None, "ru"),
    ("GB", "de-AT;q=2, ru;q=0.5", None, "ru"),
    ("GB", "de-AT;q=-1, ru;q=0.5", None, "ru"),
    ("GB", "de-AT;q=abc, ru;q=0.5", None, "ru"),
    ("GB", "de-AT;q=0.1234, ru;q=0.5", None, "ru"),
    ("GB", "de-AT;q=, ru;q=0.5", None, "ru"),
    ("GB", "de-AT;q=.5, ru;q=0.4", None, "ru"),
    ("GB", "de-AT;q=1.001, ru;q=0.9", None, "ru"),
    ("RU", "ru;q=1.5", None, "ru"),  # no usable range: the jurisdiction's language
    ("GB", "de-AT;q=1.000, ru", None, "de-AT"),
    ("GB", "ru;q=1., uk;q=0.5", None, "ru"),
    ("RU", "ru;q=0.000", None, "en-GB"),
    ("RU", "ru;q=0.", None, "en-GB"),
    # An extension or private use (a singleton and what follows) is not matched: the rest is.
    ("GB", "de-DE-u-co-phonebk", None, "de-DE"),
    ("GB", "ru-RU-x-foo, uk;q=0.5", None, "ru"),
    ("GB", "uk-t-ru, ru;q=0.5", None, "uk"),
    ("GB", "pt-BR-u-nu-latn-ca-gregory, ru", None, "pt-BR"),
    ("GB", "zh-Hans-CN-x-a-b-c, ru", None, "zh-Hans-CN"),
    ("GB", "x-foo, ru", None, "ru"),
    ("GB", "de-DE-u-co-phonebk-ka-shifted-kb-true, ru", None, "ru"),  # 9 subtags: malformed
    ("RU", "ru-RU-x-foo;q=0", None, "en-GB"),
    ("GB", "ru", "de-AT-u-co-phonebk", "de-AT"),
    ("GB", "ru", "x-foo", "ru"),
    ("GB", "ru", "constructor", "ru"),  # no key of JavaScript's Object.prototype
    # A region code ISO 3166 retired is read as the one that replaced it (babel's aliases).
    ("GB", "en-UK, ru", None, "en-GB"),
    ("GB", "de-DD, ru", None, "de-DE"),
    ("GB", "ru", "en-UK", "en-GB"),
    # Around the page's language, only ASCII whitespace is no part of it (Python's strip(),
    # JavaScript's trim() and PCRE's \s each take other characters too).
    ("GB", "uk", " de-AT\t", "de-AT"),
    ("GB", "uk", "de-AT\x0b", "uk"),
    ("GB", "uk", "de-AT\x1f", "uk"),
    ("GB", "uk", "de-AT\x85", "uk"),
    ("GB", "uk", "de-AT\xa0", "uk"),
    # A language without a region: CLDR's likely region, whatever order the rule lists.
    ("GB", "pt", None, "pt-BR"),
    ("GB", "zh", None, "zh-Hans-CN"),
    ("GB", "zh-Hans", None, "zh-Hans-CN"),
    ("GB", "en", None, "en-US"),
    ("GB", "de, ru;q=0.5", None, "de-DE"),
    ("GB", "de-u-co-phonebk", None, "de-DE"),
    ("GB", "ru", "pt", "pt-BR"),
    ("GB", "pt-AO", None, "pt-PT"),  # a region no locale has: the first listed
    # The jurisdiction's languages, as spoken there (and refused as spoken there).
    ("GB", None, None, "en-GB"),
    ("US", None, None, "en-US"),
    ("AT", None, None, "de-AT"),
    ("DE", None, None, "de-DE"),
    ("CH", None, None, "de-DE"),  # no de-CH: CLDR's likely region
    ("CN", None, None, "zh-Hans-CN"),
    ("AT", "de;q=0", None, "en-GB"),
    ("AT", "de-DE;q=0", None, "de-AT"),
    ("DE", "de-AT;q=0, fr", None, "de-DE"),
    ("DE", "de;q=0", None, "en-GB"),
]
"""Language choice the edge must make as the library does; in header order with q-values
that never increase, as browsers send them (nginx reads the header in order)."""
WORKER_LANGUAGE_CASES = [
    # A language ranked below a "*" gives way to any other (nginx reads in header order).
    ("RU", "*, ru;q=0.5", None, "en-GB"),
    ("RU", "*, ru", None, "ru"),
    ("RU", "*, en;q=0.5, ru;q=0.4", None, "en-GB"),
    ("GB", "uk;q=0.4, ru;Q=0.5", None, "ru"),
    ("GB", "uk;q=0.9, de-AT;q=1.5", None, "uk"),
    ("GB", "uk;q=0.4, de-AT;q=.5", None, "uk"),
    ("PT", None, None, "pt-PT"),
    ("BR", None, None, "pt-BR"),
    ("PT", "fr", None, "pt-PT"),
    ("PT", "pt;q=0", None, "en-GB"),
    ("BR", "pt;q=0", None, "en-GB"),
    ("PT", "pt-BR;q=0", None, "pt-PT"),
    ("SG", None, None, "en-US"),
    # Variant subtags: read by the language and the region (the script is the language's
    # likely one), not read with two variants or one of another shape; a page's language
    # loses a POSIX charset or modifier, as babel reads it.
    ("GB", "de-AT-1996, ru", None, "de-AT"),
    ("GB", "de-1996, ru", None, "de-DE"),
    ("GB", "en-US-posix, ru", None, "en-US"),
    ("GB", "zh-Hant-SG-1996, ru", None, "zh-Hans-SG"),
    ("GB", "zh-TW-1996, ru", None, "ru"),
    ("GB", "sl-rozaj-biske, ru", None, "ru"),
    ("GB", "de-AT-1606nict, ru", None, "ru"),
    ("GB", "ru-Latn-RU-petr1708", None, "ru"),
    ("GB", "uk-UA-1996-u-co-x, ru", None, "uk"),
    ("PT", "pt-1996;q=0", None, "en-GB"),
    ("BR", "pt-ao1990;q=0, uk;q=0.1", None, "uk"),
    ("GB", "uk", "de-AT-1996", "de-AT"),
    ("GB", "uk", "de-AT.UTF-8", "de-AT"),
    ("GB", "uk", "de@euro", "de-DE"),
    # A language tag is ASCII (BCP 47): one with any other character names no language, in
    # the page's <html lang> too, whichever Unicode version (digits, letters) each reads by.
    ("GB", "uk", "lang=de-AT-\u00b2000", "uk"),
    ("GB", "uk", "lang=de-AT-\U00011f50000", "uk"),
    ("GB", "uk", "lang=de-AT-\u0661\u0669\u0669\u0666", "uk"),
    ("GB", "uk", "lang=d\u00e9", "uk"),
    ("GB", "uk", "lang=de-AT", "de-AT"),
    # Around it, ASCII whitespace only is no part of a language (Python's strip() and
    # JavaScript's trim() each take other characters too).
    ("GB", "uk", "lang=\tde-AT\f", "de-AT"),
    ("GB", "uk", "lang=de-AT\u00a0", "uk"),
    ("GB", "uk", "lang=\ufeffde-AT", "uk"),
    # <html lang> as the HTML tokenizer reads it: lang before xml:lang, character
    # references decoded, quoted ">" in a value, tags in comments and raw text passed over.
    ("GB", "uk", '<html xml:lang="de-AT" lang="xx">', "uk"),
    ("GB", "uk", '<html lang="" xml:lang="de-AT">', "de-AT"),
    ("GB", "uk", '<html lang=" " xml:lang="de-AT">', "uk"),
    ("GB", "uk", '<html LANG="de-AT">', "de-AT"),
    ("GB", "uk", '<html data-x="a>b" lang="de-AT">', "de-AT"),
    ("GB", "uk", '<html lang="de&#x2d;AT">', "de-AT"),
    ("GB", "uk", '<html lang="de&#45AT">', "de-AT"),
    ("GB", "uk", '<html lang="de&lowbar;AT">', "de-AT"),
    ("GB", "uk", '<html lang="de&hyphen;AT">', "uk"),
    ("GB", "uk", '<html lang="de-AT&#1;&#xFDD0;&#13;">', "de-AT"),
    ("GB", "uk", '<html lang="de-AT&#0;">', "uk"),
    ("GB", "uk", '<html lang="de-AT&#x110000;">', "uk"),
    ("GB", "uk", '<html lang="de-x-&auml;">', "uk"),
    ("GB", "uk", '<!-- <html lang="ru"> --><html lang="de-AT">', "de-AT"),
    ("GB", "uk", '<html><head><title><html lang="ru"></title><html lang="de-AT">', "de-AT"),
]
"""More cases for the Worker, which orders by q-value and takes any country."""

BOUND_LANGUAGES = [
    # Only the first 1,024 characters are read: a range cut there is read as cut.
    "x" * 1016 + ", uk-UA-x, ru",
    "x" * 1016 + ", ru, uk",
    "x" * 1019 + ", ruxx, uk",
    "x" * 2000 + ", ru",
    # A range of more than 51 characters is skipped, not read.
    "de-DE-u-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-e;q=0.9, ru;q=0.5",
    "de-DE-u-aaaaaaaa-bbbbbbbb-cccccccc-ddddddd;q=0.9, ru;q=0.5",
    "de-DE-u-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd" + " " * 9 + ", ru;q=0.5",
    "de-DE-u-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd" + " " * 8 + ", ru;q=0.5",
    # Whitespace is RFC 9110's OWS, spaces and tabs: other bytes make a range malformed.
    "ru;q=0.5\xa0, uk;q=0.4",
    "ru\x85, uk;q=0.4",
    "\x1fru, uk;q=0.4",
    "ru \t;\t q = 0.5 , uk;q=0.4",
]
"""Accept-Language at and past the library's bounds, and in odd whitespace (sent as bytes)."""
HOSTILE_LANGUAGES = [
    "de" + " " * 7000 + "x",
    "de" + "\t" * 7000 + "x",
    "de-" + "a-" * 3500,
    "de" + "-aaaaaaa" * 900,
    "de;q=0." + "0" * 7000,
    ", " * 3500 + "x",
    "de" + "-u" * 3500,
    ",".join(["zz-aa-bb-cc"] * 600) + ",de",
    "de " + "; q = 0 " * 800 + "x",
]
"""Long hostile headers (under nginx's default 8 KiB header buffer) the edge must answer
quickly, as the library does."""


def missing(what: str, install: str) -> None:
    """Skip (locally) or fail (in CI) for an engine that is not installed."""
    message = f"{what} is not installed; install it with: {install}"
    if REQUIRE:
        pytest.fail(message + " (COMPLIANCE_REQUIRE_EDGE=1: the edge tests must run)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dated_rules(directory: Path) -> Path:
    """Rules whose effective dates change today and tomorrow (UTC), on ``/dated/`` pages."""
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    rules = [
        ("starts-today", f"{{from: {today}}}"),
        ("ended-today", f"{{from: 2020-01-01, until: {today}}}"),
        ("starts-tomorrow", f"{{from: {tomorrow}}}"),
    ]
    text = "version: 1\nrules:\n"
    for rule_id, effective in rules:
        text += (
            f"  - id: {rule_id}\n    title: {rule_id}\n"
            '    jurisdictions: ["*"]\n    unknown_location: apply\n'
            f'    paths: ["/dated/**"]\n    effective: {effective}\n'
            f"    notice: {{text: {{en: {rule_id}.}}}}\n"
        )
    path = directory / "dated.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the origin -------------------------------------------------------------------------------


# (path, Accept-Language) of a HEAD, whose Vary must say what its GET's does.
HEAD_VARY_CASES = [
    ("/lang/fr/p", "en"),  # the page's Content-Language chose the locale: no Vary
    ("/lang/pt-BR/p", "fr"),
    ("/", "fr"),  # the reader's languages chose it: Vary
    ("/lang/xx/p", "fr"),  # a page language no notice has: the reader's chose
]


# A rule set that does not depend on the reader's location (so only a page that cannot be
# edited is made private), and an origin that answers a range nobody asked for on /range/...
# (the exports strip Range where notices may apply), the plain page elsewhere.
EVERYWHERE = """\
version: 1
rules:
  - id: everywhere
    title: Every reader, every page
    jurisdictions: ["*"]
    unknown_location: apply
    notice:
      text: {en: For every reader.}
"""


def range_origin(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = PAGE.encode()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "public, max-age=60, s-maxage=600"),
        ("Content-Length", str(len(body))),
    ]
    if environ.get("PATH_INFO", "").startswith("/range/"):
        headers.append(("Content-Range", f"bytes 0-{len(body) - 1}/{len(body) + 10}"))
        start_response("206 Partial Content", headers)
    else:
        start_response("200 OK", headers)
    return [body]


# The marker inside a paragraph, as /<name>/... serves it: closed by its end tag, by a start
# tag, by the end of an element around it, and left open to the end (</form> and </body> do
# not close it: the body start).
_MARKER_IN_PARAGRAPH = {
    "marker-in-p": "<p>Lead <!-- compliance:notices --> text.</p><p>Article text.",
    "marker-in-open-p": "<p>Lead <!-- compliance:notices --> text.<div>Article text.</div>",
    "marker-in-div-p": "<div><p>Lead <!-- compliance:notices --> text.</div><p>Article text.</p>",
    "marker-in-unclosed-p": "<form><p>Lead <!-- compliance:notices --> text.</form>",
}


CHARSET_PAGES = {
    # name: (Content-Type, what stands for <meta charset="utf-8">, byte order mark)
    # No charset anywhere: the browser's legacy default (windows-1252 in much of the world).
    "undeclared": ("text/html", "", b""),
    # UTF-16 in a <meta> of a page readable as ASCII means UTF-8 (the standard's prescan).
    "meta-utf-16": ("text/html", '<meta charset="utf-16">', b""),
    # A label the Encoding Standard does not know is no declaration.
    "utf-32": ("text/html; charset=utf-32", "", b""),
    # A byte order mark wins over the header.
    "bom-over-utf-16": ("text/html; charset=utf-16", "", b"\xef\xbb\xbf"),
    # Not ASCII-compatible: passed through unedited.
    "iso-2022-jp": ("text/html; charset=iso-2022-jp", "", b""),
    "utf-16": ("text/html; charset=UTF-16LE", "", b""),
}
"""Pages of ``/charset/NAME/p``: how their charset is declared, or not."""


LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def spec(
    *,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
    status: str = "200 OK",
    validator: str | None = None,
    streamed: bool = False,
) -> tuple[str, str]:
    """The ``X-Spec`` request header that has ``/spec/...`` answer so: ``body`` (default
    ``PAGE``; ``streamed``: in two pieces, so that the server sends no length of its own),
    ``headers`` (default HTML in UTF-8), ``status``, and with ``validator``, that
    ETag and ``LAST_MODIFIED``, honoured by a 304 to ``If-None-Match`` naming it or to any
    ``If-Modified-Since`` (with the ``Cache-Control`` and ``Vary`` of ``headers``, as RFC
    9110 has a 304 say them). A 200 says the ``Accept-Encoding``, ``Range`` and
    ``If-None-Match`` it was asked with (``X-Spec-...``)."""
    described: dict[str, Any] = {"status": status, "validator": validator, "streamed": streamed}
    if body is not None:
        described["body"] = base64.b64encode(body).decode("ascii")
    if headers is not None:
        described["headers"] = headers
    return ("X-Spec", json.dumps(described))


def _spec_response(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    described = json.loads(environ["HTTP_X_SPEC"])
    default = [["Content-Type", "text/html; charset=utf-8"]]
    headers = [(name, value) for name, value in described.get("headers") or default]
    body = base64.b64decode(described["body"]) if "body" in described else PAGE.encode()
    validator = described.get("validator")
    if validator is not None:
        validators = [("ETag", validator), ("Last-Modified", LAST_MODIFIED)]
        if environ.get("HTTP_IF_NONE_MATCH") == validator or "HTTP_IF_MODIFIED_SINCE" in environ:
            kept = [(k, v) for k, v in headers if k.lower() in ("cache-control", "vary")]
            start_response("304 Not Modified", [*kept, *validators])
            return [b""]
        headers += validators
    # What the origin was asked for, to see what reaches it.
    for name in ("Accept-Encoding", "Range", "If-None-Match"):
        asked = environ.get("HTTP_" + name.upper().replace("-", "_"), "(none)")
        headers.append(("X-Spec-" + name, asked))
    start_response(described["status"], headers)
    if described.get("streamed"):
        return [body[:1], body[1:]]
    return [body]


def origin_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A site: HTML pages, some tagged, some with a language, one JSON, one missing."""
    path = environ.get("PATH_INFO", "/")
    headers = [("Content-Type", "text/html; charset=utf-8")]
    status = "200 OK"
    body = PAGE
    if path.startswith("/tagged/"):
        headers.append(("X-Compliance-Tags", "sport, politics"))
    if path.startswith("/lang/"):
        headers.append(("Content-Language", path.split("/")[2]))
    if path.startswith("/languages/lang/"):  # (PATH_INFO is latin-1: the tag was UTF-8)
        headers.append(("Content-Language", path.split("/")[3].encode("latin-1").decode()))
    if path.startswith("/htmllang/"):
        body = PAGE.replace("<html>", f'<html lang="{path.split("/")[2]}">')
    if path.startswith("/languages/htmllang/"):
        tag = path.split("/")[3].encode("latin-1").decode("utf-8")  # PATH_INFO is latin-1
        body = PAGE.replace("<html>", f'<html lang="{html.escape(tag)}">')
    if path.startswith("/languages/htmltag/"):
        body = PAGE.replace("<html>", path.split("/", 3)[3][:-2].encode("latin-1").decode())
    if path.startswith("/cached/"):
        headers.append(("Cache-Control", "public, max-age=60, s-maxage=600"))
    if path.startswith("/cp1251/"):
        # A Russian page in a legacy charset, declared in the header or in <meta> only.
        data = PAGE.replace("Article text.", "Текст статьи.").encode("cp1251")
        headers = [("Content-Type", "text/html; charset=windows-1251")]
        start_response(status, [*headers, ("Content-Length", str(len(data)))])
        return [data]
    if path.startswith("/meta1251/"):
        page = PAGE.replace('<meta charset="utf-8">', '<meta charset="windows-1251">')
        data = page.replace("Article text.", "Текст статьи.").encode("cp1251")
        headers = [("Content-Type", "text/html")]
        start_response(status, [*headers, ("Content-Length", str(len(data)))])
        return [data]
    if path.startswith("/spec/"):
        return _spec_response(environ, start_response)
    if path.startswith("/charset/"):
        content_type, meta, bom = CHARSET_PAGES[path.split("/")[2]]
        data = bom + PAGE.replace('<meta charset="utf-8">', meta).encode("ascii")
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [data]
    if path.startswith("/fallback/"):
        body = PAGE.replace("<h1>Headline</h1><!-- compliance:notices -->", "")
    if path.startswith("/hidden/"):
        # A heading and a marker the browser does not show come first: passed over.
        hidden = (
            "<div hidden><h1>Menu</h1><!-- compliance:notices --></div>"
            '<dialog><h1>Sign in</h1></dialog><header style="display: none"><h1>S</h1></header>'
            "<details><summary>More</summary><h1>Less</h1><!-- compliance:notices --></details>"
        )
        body = PAGE.replace("<body>", "<body>" + hidden)
    marker_page = _MARKER_IN_PARAGRAPH.get(path.split("/")[1])
    if marker_page is not None:
        # The marker inside a paragraph: the notice goes where the paragraph ends.
        body = PAGE.replace("<!-- compliance:notices --><p>Article text.</p>", marker_page)
    if path.startswith("/hidden-only/"):
        # No heading or marker is shown: their notices go at the body start.
        body = PAGE.replace("<h1>", "<h1 hidden>").replace(
            "<!-- compliance:notices -->", "<dialog><!-- compliance:notices --></dialog>"
        )
    if path.startswith("/corner/skip"):
        headers.append(("X-Compliance-Skip", "1"))  # the per-response opt-out of notices
    if path == "/corner/cache":
        value = "public, max-age=60, Public, s-maxage=5, no-transform, private, s-maxage=6"
        headers.append(("Cache-Control", value))
    if path == "/corner/origin-headers":
        headers.append(("X-Corner", "from the origin"))
    if path == "/data.json":
        headers = [("Content-Type", "application/json")]
        body = '{"ok": true}'
    if path == "/missing":
        status = "404 Not Found"
    if path == "/echo-edge":
        body = PAGE.replace("Article text.", environ.get("HTTP_X_COMPLIANCE_EDGE", "no edge"))
    data = body.encode("utf-8")
    if path.startswith("/gzip/") and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        data = gzip.compress(data)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(data))))
    start_response(status, headers)
    return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Served:
    url: str
    port: int
    server: Any


def serve(app: Any) -> Iterator[Served]:
    """A real WSGI server on 127.0.0.1 in a thread."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{port}", port, server)
    finally:
        server.shutdown()
        server.server_close()


# -- engines ----------------------------------------------------------------------------------


@dataclass
class Engine:
    url: str
    process: subprocess.Popen[bytes]
    started_in: float
    """Seconds from the start of the process until it accepted a connection."""
    log: Path


def serving(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Wait until ``url`` answers; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} did not start: {log.read_text(errors='replace')[-2000:]}"
                ) from None
            time.sleep(0.005)


def wait_for(process: subprocess.Popen[bytes], port: int, log: Path, began: float) -> float:
    """Seconds until the engine answered its first HTTP request."""
    serving(f"http://127.0.0.1:{port}/data.json", process, log, timeout=20)
    return time.monotonic() - began


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """Stop the processes (all told at once, then each waited for)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def proxy_conf(directory: Path, servers: str) -> str:
    """An ``nginx.conf`` for nginx as a plain reverse proxy in a test: in the foreground,
    its files under ``directory``, with ``servers`` (its ``server`` blocks) in ``http``. Run
    as the current user: as root, nginx's workers would otherwise run as nobody, who cannot
    read pytest's folders (as another user nginx warns and goes on)."""
    return f"""daemon off;
user {getpass.getuser()};
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
{servers}
}}
"""


def start_nginx(directory: Path, export_dir: Path, origin_port: int) -> Iterator[Engine]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists() or not NGINX_MODULE.exists():
        missing("nginx with the geoip2 module", "apt-get install nginx libnginx-mod-http-geoip2")
    port = free_port()
    log = directory / "error.log"
    (directory / "nginx.conf").write_text(
        f"""load_module {NGINX_MODULE};
daemon off;
pid {directory}/nginx.pid;
error_log {log} warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    variables_hash_max_size 4096;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    include {export_dir}/http.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {export_dir}/location.conf;
            proxy_set_header Host $host;
            proxy_pass http://127.0.0.1:{origin_port};
        }}
    }}
}}
"""
    )
    began = time.monotonic()
    process = subprocess.Popen(
        [nginx, "-p", str(directory), "-e", str(log), "-c", str(directory / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        started = wait_for(process, port, log, began)
        yield Engine(f"http://127.0.0.1:{port}", process, started, log)
    finally:
        stop(process)


def start_workerd(directory: Path, export_dir: Path, origin_url: str) -> Iterator[Engine]:
    if not WORKERD.exists():
        missing("workerd", f"npm ci --prefix {HERE}")
    port = free_port()
    log = directory / "workerd.log"
    shutil.copy(export_dir / "worker.mjs", directory / "worker.mjs")
    (directory / "config.capnp").write_text(
        f"""using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}",
              http = (cfBlobHeader = "cf-blob"), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.mjs", esModule = embed "worker.mjs")],
  compatibilityDate = "2024-09-23",
  bindings = [(name = "ORIGIN", text = "{origin_url}")],
  globalOutbound = "net",
);
"""
    )
    began = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(WORKERD), "serve", str(directory / "config.capnp")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    try:
        started = wait_for(process, port, log, began)
        yield Engine(f"http://127.0.0.1:{port}", process, started, log)
    finally:
        stop(process)


# -- answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a reader got, in the terms the edge must equal."""

    status: int
    link: str | None
    notices: tuple[tuple[str, str], ...]
    """(rule id, lang) of each notice, in document order."""
    block_rule: str | None
    content_language: str | None
    markup: tuple[str, ...]
    """The notices' markup, byte for byte."""

    @classmethod
    def of(cls, status: int, headers: Any, data: bytes) -> Answer:
        body = data.decode(_charset(headers.get("content-type"), data), "replace")
        block = re.search(r'class="compliance-block" data-compliance-rule="([^"]+)"', body)
        return cls(
            status,
            headers.get("link"),
            tuple(NOTICE.findall(body)),
            block.group(1) if block else None,
            headers.get("content-language") if status == 451 else None,
            # Characters written as numeric references read as themselves.
            tuple(REFERENCE.sub(lambda m: chr(int(m.group(1))), m) for m in MARKUP.findall(body)),
        )


REFERENCE = re.compile(r"&#([0-9]+);")


def _charset(content_type: str | None, data: bytes) -> str:
    """The page's charset: the header's, else a <meta charset>, else UTF-8."""
    found = re.search(r"charset=\"?([\w-]+)", content_type or "", re.IGNORECASE)
    if found is None:
        found = re.search(rb'<meta\s+charset="?([\w-]+)', data[:1024], re.IGNORECASE)
        name = found.group(1).decode("ascii") if found else "utf-8"
    else:
        name = found.group(1)
    try:
        "".encode(name)
    except LookupError:
        return "utf-8"
    return name


class _Headers:
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = [(k.lower(), v) for k, v in pairs]

    def get(self, name: str) -> str | None:
        values = [v for k, v in self._pairs if k == name.lower()]
        return ", ".join(values) if values else None


_answers: dict[tuple[Any, str, tuple[tuple[str, str], ...], str], Answer] = {}


def python_answer(app: Any, path: str, headers: list[tuple[str, str]], peer: str) -> Answer:
    """The middleware's answer, through the real WSGI middleware (remembered per app, so
    the differential table and its breadth check ask once)."""
    key = (app, path, tuple(headers), peer)  # the app itself: an id could be reused
    if key not in _answers:
        _answers[key] = _ask(app, path, headers, peer)
    return _answers[key]


def _ask(app: Any, path: str, headers: list[tuple[str, str]], peer: str) -> Answer:
    from compliance.testing import call_wsgi, wsgi_environ

    environ = wsgi_environ(path, peer=peer, headers=headers)
    if "%" in path:
        environ["RAW_URI"] = path  # the path as sent, percent-escapes and all
    response = call_wsgi(app, environ)
    return Answer.of(response.status, _Headers(response.headers), response.body)


def edge_answer(
    client: httpx.Client, url: str, headers: list[tuple[str, str]] | list[tuple[str, str | bytes]]
) -> Answer:
    """The engine's answer to ``GET url`` with the path sent as written: httpx would remove
    dot segments (and a trailing slash with them) before the engine sees them. A header value
    given as bytes is sent as those bytes (a str as UTF-8)."""
    base = client.base_url
    connection = http.client.HTTPConnection(base.host, base.port, timeout=10)
    try:
        connection.putrequest("GET", url, skip_host=True, skip_accept_encoding=True)
        if not any(name.lower() == "host" for name, _ in headers):
            connection.putheader("Host", f"{base.host}:{base.port}")
        for name, value in headers:
            connection.putheader(name, value if isinstance(value, bytes) else value.encode())
        connection.endheaders()
        response = connection.getresponse()
        data = response.read()
        return Answer.of(response.status, _Headers(response.getheaders()), data)
    finally:
        connection.close()


# -- one small rule set, asked of the library and of an engine ------------------------------

ONE_READER = "81.2.69.142"  # GB-ENG in MaxMind's City test database
ONE_READER_CF = '{"country":"GB","regionCode":"ENG"}'
ONE_READER_HEADERS = [
    ("Host", "www.example.org"),
    ("X-Forwarded-For", ONE_READER),
    ("Accept-Language", "ru"),
]


def one_rule(rule_id: str, body: str, extra: str = "") -> str:
    """A rule (YAML, in a ``rules:`` list) that applies everywhere, with ``body``."""
    return (
        f"  - id: {rule_id}\n    title: {rule_id}\n"
        '    jurisdictions: ["*"]\n    unknown_location: apply\n' + extra + body
    )


@contextlib.contextmanager
def side_by_side(
    rules: str, target: str, tmp: Path, city: Path
) -> Iterator[tuple[Any, Engine, list[str]]]:
    """(the middleware, the engine running the export, the export's omissions) for the
    rules (YAML, the items of ``rules:``), the middleware reading ``city``."""
    from compliance import Engine as LibraryEngine
    from compliance.export import export_cloudflare, export_nginx, write_export
    from compliance.wsgi import ComplianceMiddleware

    rule_file = tmp / "rules.yaml"
    rule_file.write_text("version: 1\nrules:\n" + rules, encoding="utf-8")
    engine = LibraryEngine.from_paths([rule_file], geoip_db=city)
    app = ComplianceMiddleware(origin_app, engine, trusted_proxies=["127.0.0.1"])
    with contextlib.ExitStack() as stack:
        stack.callback(engine.close)
        origin = stack.enter_context(contextlib.contextmanager(serve)(origin_app))
        out, work = tmp / "export", tmp / "run"
        work.mkdir()
        if target == "nginx":
            result = export_nginx([rule_file], geoip_db=city)
            write_export(result, out)
            started = contextlib.contextmanager(start_nginx)(work, out, origin.port)
        else:
            result = export_cloudflare([rule_file])
            write_export(result, out)
            started = contextlib.contextmanager(start_workerd)(work, out, origin.url)
        edge = stack.enter_context(started)
        yield app, edge, [str(o) for o in result.omissions]


RawAnswer = tuple[int, list[tuple[str, bytes]], bytes]
"""(status, headers as (lower-case name, the bytes sent), body)."""


def library_raw(app: Any, path: str) -> RawAnswer:
    """The middleware's answer to the one reader of :data:`ONE_READER_HEADERS`."""
    from compliance.testing import call_wsgi, wsgi_environ

    environ = wsgi_environ(path, peer="127.0.0.1", headers=ONE_READER_HEADERS)
    if "%" in path:
        environ["RAW_URI"] = path  # the path as sent, percent-escapes and all
    response = call_wsgi(app, environ)
    # A WSGI header value is Latin-1 text: these are the bytes a server sends.
    pairs = [(k.lower(), v.encode("latin-1")) for k, v in response.headers]
    return response.status, pairs, response.body


def edge_raw(edge: Engine, path: str) -> RawAnswer:
    """The engine's answer to the same reader (nginx reads the address, workerd cf-blob)."""
    port = int(edge.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in [*ONE_READER_HEADERS, ("cf-blob", ONE_READER_CF)]:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        # http.client decodes header bytes as Latin-1: encoding again gives the bytes sent.
        pairs = [(k.lower(), v.encode("latin-1")) for k, v in response.getheaders()]
        return response.status, pairs, body
    finally:
        connection.close()


def header_values(answer: RawAnswer, name: str) -> list[bytes]:
    """Every value of header ``name`` (lower case) in ``answer``, in order."""
    return [v for k, v in answer[1] if k == name]

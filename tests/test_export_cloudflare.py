"""`compliance export cloudflare` against workerd, Cloudflare's own runtime: the same notices,
locales, order and blocks as the Python middleware, reader by reader.

workerd (npm, pinned in tests/edge/package.json) is started once for the module with a
generated config that sets ``request.cf`` from a ``cf-blob`` request header and an
``ORIGIN`` binding pointing at a small origin. The middleware's answers come from the real
WSGI middleware with each reader's location fixed. Locally the module skips when workerd is
not installed; with ``COMPLIANCE_REQUIRE_EDGE=1`` (CI) it fails instead.
"""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import harness as h
import httpx
import pytest

from compliance import Engine
from compliance.export import Export, export_cloudflare, write_export
from compliance.geo import Location
from compliance.testing import FixedGeolocator
from compliance.wsgi import ComplianceMiddleware

pytestmark = pytest.mark.slow


# (country, regionCode) as Cloudflare reports them; None: no country.
READERS: list[tuple[str | None, str | None]] = [
    ("RU", None),
    ("UA", "43"),
    ("UA", None),
    ("BY", None),
    ("GB", "ENG"),
    ("GB", None),
    ("GB", "SCT"),
    ("GB", "WLS"),
    ("SE", "E"),
    ("US", "WA"),
    ("US", "CA"),
    ("US", "NY"),
    ("US", None),
    ("CN", None),
    ("AU", "VIC"),
    ("BT", None),
    ("BR", None),
    ("TW", None),
    (None, None),
]
# Countries of the language cases, placed at addresses after those of READERS.
LANGUAGE_READERS = sorted({case[0] for case in h.LANGUAGE_CASES + h.WORKER_LANGUAGE_CASES})
HOSTS = ["www.example.org", "News.Example.org", "blocked.example.org", "a.example.net"]
PATHS = [
    "/",
    "/news/a.html",
    "/news/allowed/x",
    "/a/x/b",
    "/a/x/y/b",
    "/tagged/story",
    "/lang/pt-BR/p",
    "/htmllang/ru/p",
    "/htmllang/zh-Hant/p",
    "/cached/p",
    "/cp1251/p",
    "/gzip/p",
    "/meta1251/p",
    "/data.json",
    "/missing",
]
# Any Accept-Language, q-values in any order: the Worker orders them as the library does.
LANGUAGES = [
    None,
    "ru",
    "uk, ru;q=0.8",
    "en;q=0.5, ru",
    "en-GB,en;q=0.9",
    "pt-BR",
    "pt-PT;q=0.4, zh-TW;q=0.9",
    "zh-CN",
    "sv;q=0, de",
    "*;q=0.5, es",
    "*, ru;q=0.5",  # any language before Russian
    "de;q=0",
    "fr-CA, fr;q=0.9, en;q=0.5",
    "EN_gb",
    ", ".join(["xx"] * 17 + ["uk"]),  # past the ranges the library reads
    "x" * 60 + ", uk",  # an over-long range is skipped
    "en-XY, ru-Latn, uk",  # babel cannot read en-XY, and reads ru-Latn as ru
    "en-Dsrt-001, fr",  # en-001 to babel
]


def cases() -> list[tuple[str, str, str | None]]:
    out = []
    for i, path in enumerate(PATHS):
        for k in range(3):
            host = HOSTS[(i + k) % len(HOSTS)]
            language = LANGUAGES[(i * 3 + k) % len(LANGUAGES)]
            out.append((host, path, language))
    return out


def peer(index: int) -> str:
    return f"192.0.2.{index + 1}"


def _location(country: str | None, region: str | None) -> Location:
    if country is None:
        return Location()
    return Location.of(country, *([region] if region else []))


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(h.dated_rules(tmp_path_factory.mktemp("dated")))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, dated: Path) -> tuple[Path, Export]:
    out = tmp_path_factory.mktemp("cloudflare-export")
    result = export_cloudflare([h.RULES, h.HERE / "worker-only", h.CORNER_CASES, dated])
    write_export(result, out)
    return out, result


@pytest.fixture(scope="module")
def origin() -> Iterator[Any]:
    yield from h.serve(h.origin_app)


@pytest.fixture(scope="module")
def workerd(
    tmp_path_factory: pytest.TempPathFactory, exported: tuple[Path, Export], origin: Any
) -> Iterator[Any]:
    yield from h.start_workerd(tmp_path_factory.mktemp("workerd"), exported[0], origin.url)


@pytest.fixture(scope="module")
def client(workerd: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=workerd.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def python_app(dated: Path) -> Iterator[Any]:
    readers = [*READERS, *((country, None) for country in LANGUAGE_READERS)]
    geolocator = FixedGeolocator({peer(i): _location(*r) for i, r in enumerate(readers)})
    rules = [h.RULES, h.HERE / "worker-only", h.CORNER_CASES, dated]
    engine = Engine.from_paths(rules, geolocator=geolocator)
    yield ComplianceMiddleware(h.origin_app, engine)
    engine.close()


# The rule headers of tests/edge/corner-cases, and the origin's opt-out.
CORNER_HEADERS = ("x-corner", "x-foo$host", "x-bar.baz", "x_under", "x-withheld")
CORNER_HEADERS += ("x-compliance-skip", "x-tagged")


def _headers(host: str, language: str | None) -> list[tuple[str, str]]:
    headers = [("Host", host), ("Accept", "*/*")]
    if language is not None:
        headers.append(("Accept-Language", language))
    return headers


def _cf(country: str | None, region: str | None) -> tuple[str, str]:
    blob: dict[str, str] = {}
    if country is not None:
        blob["country"] = country
    if region is not None:
        blob["regionCode"] = region
    return ("cf-blob", json.dumps(blob))


def test_workerd_starts_quickly(workerd: Any) -> None:
    print(f"workerd started in {workerd.started_in:.3f} s")  # shown with -s
    assert workerd.started_in < 10


@pytest.mark.parametrize(
    "index", range(len(READERS)), ids=["-".join(filter(None, r)) or "unknown" for r in READERS]
)
def test_same_answers_as_the_middleware(index: int, client: httpx.Client, python_app: Any) -> None:
    reader = READERS[index]
    mismatches = []
    for host, path, language in cases():
        headers = _headers(host, language)
        expected = h.python_answer(python_app, path, headers, peer=peer(index))
        got = h.edge_answer(client, path, [*headers, _cf(*reader)])
        if got != expected:
            mismatches.append(f"{host}{path} [{language}]\n  python: {expected}\n  worker: {got}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(
    ("country", "language", "page", "chosen"), h.LANGUAGE_CASES + h.WORKER_LANGUAGE_CASES
)
def test_languages_are_chosen_as_the_library_does(
    country: str,
    language: str | None,
    page: str | None,
    chosen: str,
    client: httpx.Client,
    python_app: Any,
) -> None:
    """Weights, tags with extensions and bare languages, in the library and in the Worker."""
    path = h.language_path(page)
    index = len(READERS) + LANGUAGE_READERS.index(country)
    headers = _headers("www.example.org", language)
    expected = h.python_answer(python_app, path, headers, peer=peer(index))
    assert dict(expected.notices)["corner-languages"] == chosen
    assert h.edge_answer(client, path, [*headers, _cf(country, None)]) == expected


@pytest.mark.parametrize("language", h.BOUND_LANGUAGES + h.HOSTILE_LANGUAGES)
def test_accept_language_bounds_and_hostile_headers(
    language: str, client: httpx.Client, python_app: Any
) -> None:
    """The library's bounds (1,024 characters, 16 ranges, 51 characters a range) hold in the
    Worker too, and odd whitespace is read alike."""
    import time

    index = READERS.index(("GB", "ENG"))
    headers = [("Host", "www.example.org"), ("Accept", "*/*")]
    expected = h.python_answer(
        python_app, h.LANGUAGE_PATH, [*headers, ("Accept-Language", language)], peer=peer(index)
    )
    sent = [*headers, ("Accept-Language", language.encode("latin-1")), _cf("GB", "ENG")]
    began = time.perf_counter()
    got = h.edge_answer(client, h.LANGUAGE_PATH, sent)
    assert time.perf_counter() - began < 0.5
    assert got == expected


def test_the_table_is_broad(python_app: Any) -> None:
    answers = set()
    table = [(i, *case) for i in range(len(READERS)) for case in cases()]
    for index, host, path, language in table:
        answers.add(h.python_answer(python_app, path, _headers(host, language), peer=peer(index)))
    assert len(table) >= 40 * 3
    assert len({a.notices for a in answers}) >= 10
    assert {a.block_rule for a in answers} >= {
        "us-west-block",
        "sweden-host-block",
        "bhutan-tagged-block",
        None,
    }
    assert {lang for a in answers for _, lang in a.notices} >= {"ru", "uk", "pt-BR", "zh-Hant"}


@pytest.mark.parametrize(
    ("reader", "path", "language", "accept"),
    [
        (("CN", None), "/", None, "*/*"),  # a header-only rule
        (("CN", None), "/data.json", None, "*/*"),  # not a page: nothing added
        (("CN", None), "/missing", None, "*/*"),  # an HTML 404: headers, no notice
        (("RU", None), "/cached/p", "ru", "*/*"),  # public, s-maxage removed; private added
        (("GB", "ENG"), "/", "fr", "*/*"),  # a negotiated language: Vary
        (("GB", "ENG"), "/lang/pt-BR/p", "fr", "*/*"),  # the page's language chose
        (("SE", "E"), "/", None, "*/*"),  # location-dependent, no notice
        (("US", "CA"), "/news/a.html", "es", "*/*"),  # a block
        (("US", "CA"), "/news/a.html", "es", "application/json"),  # a block, as JSON
        # Weights that are no RFC 9110 qvalue: the item is skipped (JavaScript's Number()
        # reads "0x10" as 16, Python's float() "1_0" as 10).
        (("US", "CA"), "/news/a.html", "es", "application/json;q=0x10, text/html;q=0.9"),
        (("US", "CA"), "/news/a.html", "es", "application/json;q=1_0, text/html;q=0.9"),
        (("US", "CA"), "/news/a.html", "es", "text/html;q=nan, application/json;q=0.1"),
        (("BT", None), "/tagged/x", None, "*/*"),  # a block decided by the origin's tags
        (("GB", "ENG"), "/corner/p", None, "*/*"),  # header names of any token characters
        (("GB", "ENG"), "/corner/origin-headers", None, "*/*"),  # the origin's X-Corner kept
        (("GB", "ENG"), "/corner/skip", "fr", "*/*"),  # the origin opts out: no notice
        (("GB", "ENG"), "/corner/blocked", None, "*/*"),  # no withholding rule's headers
        (("GB", "ENG"), "/fallback/p", None, "*/*"),  # no heading, no marker: at the start
        # Headings and markers the browser does not show are passed over.
        (("US", "WA"), "/hidden/p", None, "*/*"),
        (("SE", "E"), "/hidden/p", None, "*/*"),
        (("US", "WA"), "/hidden-only/p", None, "*/*"),
        (("SE", "E"), "/hidden-only/p", None, "*/*"),
        # A marker inside a paragraph: where the paragraph ends.
        (("US", "WA"), "/marker-in-p/p", None, "*/*"),
        (("US", "WA"), "/marker-in-open-p/p", None, "*/*"),
        (("US", "WA"), "/marker-in-div-p/p", None, "*/*"),
        (("US", "WA"), "/marker-in-unclosed-p/p", None, "*/*"),
    ],
)
def test_same_headers_and_bodies_as_the_middleware(
    reader: tuple[str | None, str | None],
    path: str,
    language: str | None,
    accept: str,
    client: httpx.Client,
    python_app: Any,
) -> None:
    from compliance.testing import call_wsgi, wsgi_environ

    index = READERS.index(reader)
    headers = [(k, v) for k, v in _headers("www.example.org", language) if k != "Accept"]
    headers.append(("Accept", accept))
    expected = call_wsgi(python_app, wsgi_environ(path, peer=peer(index), headers=headers))
    got = client.get(path, headers=[*headers, _cf(*reader)])
    assert got.status_code == expected.status
    assert got.content == expected.body
    for name in (
        *CORNER_HEADERS,
        "content-type",
        "x-edge-law",
        "x-other",
        "cache-control",
        "vary",
        "link",
        "content-language",
        "x-compliance-tags",
    ):
        want = {v.strip().lower() for v in (expected.header(name) or "").split(",") if v.strip()}
        have = {v.strip().lower() for v in (got.headers.get(name) or "").split(",") if v.strip()}
        assert have == want, (name, have, want)


def test_paths_are_decoded_and_matched_as_the_middleware(
    client: httpx.Client, python_app: Any
) -> None:
    """Percent-decoding (an invalid escape is one U+FFFD, the rest still UTF-8) and `?` (one
    code point, also outside the BMP) in the Worker, against the library, in one pass."""
    index = READERS.index(("GB", "ENG"))
    mismatches = []
    for path in h.CORNER_PATHS:
        headers = [("Host", "www.example.org"), ("Accept", "*/*")]
        expected = h.python_answer(python_app, path, headers, peer=peer(index))
        got = h.edge_answer(client, path, [*headers, _cf("GB", "ENG")])
        if got != expected:
            mismatches.append(f"{path}\n  python: {expected}\n  worker: {got}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(
    ("reader", "path", "language"),
    [
        # A backslash is no slash to the library: not a blocked page, nor the origin's.
        (("US", "CA"), "/news\\a.html", "es"),
        # The origin is asked for the path decided on (a `/` there would give the page its
        # Content-Language, or its <html lang>, and another notice language).
        (("GB", "ENG"), "/lang\\fr/p", "en"),
        (("RU", None), "/htmllang\\ru/p", "en"),
    ],
    ids=["under-a-block", "content-language", "html-lang"],
)
def test_a_backslash_in_the_path_is_read_as_the_middleware_reads_it(
    reader: tuple[str | None, str | None],
    path: str,
    language: str,
    client: httpx.Client,
    python_app: Any,
) -> None:
    headers = _headers("www.example.org", language)
    expected = h.python_answer(python_app, path, headers, peer=peer(READERS.index(reader)))
    assert expected.status == 200
    assert h.edge_answer(client, path, [*headers, _cf(*reader)]) == expected


@pytest.mark.parametrize("path", ["/news/allowed/" + "a" * 9000, "/news/" + "b" * 9000 + "/c"])
def test_overlong_paths(path: str, client: httpx.Client, python_app: Any) -> None:
    headers = [("Accept", "*/*")]
    expected = h.python_answer(python_app, path, headers, peer=peer(READERS.index(("US", "CA"))))
    got = h.edge_answer(client, path, [*headers, _cf("US", "CA")])
    assert got == expected


def test_effective_dates_are_evaluated_per_request(
    exported: tuple[Path, Export], client: httpx.Client, python_app: Any
) -> None:
    headers = [("Accept", "*/*")]
    expected = h.python_answer(
        python_app, "/dated/x", headers, peer=peer(READERS.index((None, None)))
    )
    got = h.edge_answer(client, "/dated/x", [*headers, _cf(None, None)])
    assert got == expected
    assert [rule for rule, _ in got.notices] == ["starts-today"]
    # The Worker carries the dates, not a day's answer: nothing in it goes stale.
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    assert f'"from":"{tomorrow.isoformat()}"' in (exported[0] / "worker.mjs").read_text()


@pytest.mark.parametrize("path", ["/cp1251/p", "/meta1251/p"])
def test_a_page_in_another_charset(path: str, client: httpx.Client) -> None:
    got = client.get(path, headers=[_cf("RU", None), ("Accept-Language", "ru")])
    assert "Текст статьи.".encode("cp1251") in got.content  # the page's own bytes, kept
    notice = "признана «нежелательной» организацией"
    assert notice.encode("ascii", "xmlcharrefreplace") in got.content


@pytest.mark.parametrize("name", sorted(h.CHARSET_PAGES))
def test_charsets_are_read_as_the_library_reads_them(
    name: str, client: httpx.Client, python_app: Any
) -> None:
    """The same notices as the library's, in the same pages; raw UTF-8 only where the page
    surely is UTF-8 (header or byte order mark), else numeric references, which read the
    same in whatever charset the browser takes (a page without one: its legacy default)."""
    import html

    from compliance.testing import call_wsgi, wsgi_environ

    path = f"/charset/{name}/p"
    headers = [("Accept-Language", "ru")]
    environ = wsgi_environ(path, peer=peer(READERS.index(("RU", None))), headers=headers)
    library = call_wsgi(python_app, environ).body
    got = client.get(path, headers=[*headers, _cf("RU", None)]).content
    rules = re.compile(rb'class="compliance-notice" data-compliance-rule="([^"]+)"')
    assert rules.findall(got) == rules.findall(library)
    if name in ("iso-2022-jp", "utf-16"):
        assert not rules.findall(got)
        assert got == h.PAGE.replace('<meta charset="utf-8">', "").encode()
        return
    assert rules.findall(got)
    body = got.removeprefix(b"\xef\xbb\xbf")
    assert body.isascii() or name == "bom-over-utf-16"
    assert "признана «нежелательной» организацией" in html.unescape(body.decode())


_HTML = ("Content-Type", "text/html; charset=utf-8")
_SCRIPT_ASIDE = "<script>var t = '<aside class=\"compliance-notice\">';</script>"
# (reader, how the origin answers, request headers): the Worker answers as the middleware.
ORIGIN_RESPONSES = [
    # A page may leave out </body> and </html>: the body_end notice goes at the very end.
    (("RU", None), h.spec(body=h.PAGE.replace("</body></html>", "").encode()), []),
    # A copy the reader holds is no answer where the page is edited: 200, with the notice.
    (("RU", None), h.spec(validator='"v1"'), [("If-None-Match", '"v1"')]),
    (("RU", None), h.spec(validator='"v1"'), [("If-Modified-Since", h.LAST_MODIFIED)]),
    # The text of a notice's markup in a script is no notice the page has; the page is the
    # reader's own either way.
    (
        ("RU", None),
        h.spec(
            body=h.PAGE.replace("<h1>", _SCRIPT_ASIDE + "<h1>").encode(),
            headers=[_HTML, ("Cache-Control", "public, max-age=600")],
        ),
        [],
    ),
    # Two Content-Type headers: the last one is the page's (as browsers read it).
    (("RU", None), h.spec(headers=[("Content-Type", "text/plain"), _HTML]), []),
    # The marker as the library reads a comment: "--!>" ends one, a vertical tab is text.
    (
        ("US", "WA"),
        h.spec(body=h.PAGE.replace("-->", "--!>").encode()),
        [],
    ),
    (
        ("US", "WA"),
        h.spec(
            body=h.PAGE.replace(
                "<!-- compliance:notices -->", "<!--\x0bcompliance:notices-->"
            ).encode()
        ),
        [],
    ),
    # A page in a charset nothing can edit: unedited, but never to a shared cache.
    (
        ("RU", None),
        h.spec(
            body=h.PAGE.encode("utf-16-le"),
            headers=[("Content-Type", "text/html; charset=utf-16le"), ("Cache-Control", "public")],
        ),
        [],
    ),
]
# Headings and markers where the browser shows nothing of the page's own are passed over:
# template contents, a select's content, SVG and MathML content (integration points too).
_UNSHOWN = {
    "heading-in-a-template": (("SE", "E"), "<template><h1>T</h1></template>"),
    "heading-in-an-svg-title": (("SE", "E"), "<svg><title><h1>S</h1></title></svg>"),
    "heading-in-an-svg-desc": (("SE", "E"), "<svg><desc><h1>S</h1></desc></svg>"),
    "heading-in-a-foreign-object": (
        ("SE", "E"),
        "<svg><foreignObject><div><h1>F</h1></div></foreignObject></svg>",
    ),
    "heading-in-mathml-text": (("SE", "E"), "<math><mi><h1>M</h1></mi></math>"),
    "heading-in-a-select": (("SE", "E"), "<select><option><h1>O</h1></select>"),
    # A heading that breaks out of SVG content is shown (the SVG ends there).
    "heading-breaking-out-of-svg": (("SE", "E"), "<svg><g><h1>Out</h1></g></svg>"),
    "marker-breaking-out-of-svg": (("US", "WA"), "<svg><p>a <!-- compliance:notices --></p>"),
    "marker-in-a-template": (("US", "WA"), "<template><!-- compliance:notices --></template>"),
    "marker-in-svg": (("US", "WA"), "<svg><!-- compliance:notices --></svg>"),
    "marker-in-an-svg-title": (("US", "WA"), "<svg><title><!-- compliance:notices --></svg>"),
    "marker-in-mathml": (("US", "WA"), "<math><!-- compliance:notices --></math>"),
    "marker-in-a-select": (("US", "WA"), "<select><!-- compliance:notices --><option>a</select>"),
    "marker-after-a-select-ended-by-input": (
        ("US", "WA"),
        "<select><option>a<input><!-- compliance:notices -->",
    ),
    "marker-after-svg": (("US", "WA"), "<svg><circle/></svg><!-- compliance:notices -->"),
}
ORIGIN_RESPONSES += [
    (reader, h.spec(body=h.PAGE.replace("<body>", "<body>" + markup).encode()), [])
    for reader, markup in _UNSHOWN.values()
]
# Where the body starts and ends without its tags: a page may leave them out (minifiers do),
# start its body before the tag, or go on after </body>.
_NO_BODY_TAGS = h.PAGE.replace("<body>", "").replace("</body>", "")
_BODY_EDGES = {
    "no-body-tags-start": (("GB", "ENG"), _NO_BODY_TAGS),
    "no-body-tags-heading": (("SE", "E"), _NO_BODY_TAGS),
    "no-body-tags-marker": (("US", "WA"), _NO_BODY_TAGS),
    "no-body-tags-end": (("RU", None), _NO_BODY_TAGS),
    "text-before-the-body-tag": (("GB", "ENG"), h.PAGE.replace("</head>", "</head>Lead")),
    "heading-before-the-body-tag": (
        ("SE", "E"),
        h.PAGE.replace("</head><body><h1>Headline</h1>", "</head><h1>Headline</h1><body>"),
    ),
    "head-content-before-the-body": (
        ("GB", "ENG"),
        h.PAGE.replace("</head>", "</head><noscript><p>x</p></noscript>"),
    ),
    "content-after-the-body": (("RU", None), h.PAGE.replace("</body>", "</body><p>Late.</p>")),
    "comment-after-the-body": (("RU", None), h.PAGE.replace("</body>", "</body><!-- end -->")),
    # A page that ends before its body starts: the body starts at its end, every notice there.
    "html-tag-only-start": (("GB", "ENG"), "<!DOCTYPE html>\n<html>"),
    "head-only-marker": (("US", "WA"), "<html><head><title>T</title></head>"),
    "head-only-heading": (("SE", "E"), "<html><head><title>T</title></head>\n"),
}
# Where the body starts is read from the page's first 4 KB, 16 KB... (past half the page, by
# the page's own rewriter): a body past the first reads, its tag cut by one, tags in any case.
_LONG = h.PAGE.replace("</body>", "<p>Paragraph.</p>\n" * 1700 + "</body>")  # 30 KB
_LONG_HEAD = _LONG.replace("</head>", '<meta content="' + "x" * 8000 + '"></head>')
_LONG_SCRIPT = h.PAGE.replace("</head>", "<script>" + "x = '<body>';\n" * 1500 + "</script></head>")


def _head_padded(page: str, before: str, at: int) -> str:
    """``page`` with a meta tag padding its head, so that ``before`` starts at ``at``."""
    room = at - page.index(before) - len('<meta content="">')
    return page.replace(before, f'<meta content="{"x" * room}">{before}', 1)


_BODY_EDGES.update(
    {
        "long-head-start": (("GB", "ENG"), _LONG_HEAD),
        "long-head-heading": (("SE", "E"), _LONG_HEAD),
        "long-head-marker": (("US", "WA"), _LONG_HEAD),
        "long-head-end": (("RU", None), _LONG_HEAD),
        "long-head-then-text": (("GB", "ENG"), _LONG_HEAD.replace("</head>", "</head>Lead")),
        "a-page-mostly-head-heading": (("SE", "E"), _LONG_SCRIPT),
        "a-page-mostly-head-start": (("GB", "ENG"), _LONG_SCRIPT),
        "body-tag-across-4-kb": (("GB", "ENG"), _head_padded(_LONG, "<body>", 4093)),
        "heading-tag-across-4-kb": (
            ("GB", "ENG"),
            _head_padded(_LONG.replace("<body>", ""), "<h1>", 4094),
        ),
        "upper-case-tags-start": (("GB", "ENG"), h.PAGE.upper().replace("<!DOCTYPE", "<!doctype")),
        "upper-case-svg-marker": (
            ("US", "WA"),
            h.PAGE.replace("<body>", "<body><SVG><P>a <!-- compliance:notices --></P>"),
        ),
        "upper-case-svg-heading": (
            ("SE", "E"),
            h.PAGE.replace("<body>", "<body><SVG><FOREIGNOBJECT><H1>F</H1></FOREIGNOBJECT></SVG>"),
        ),
    }
)
ORIGIN_RESPONSES += [
    (reader, h.spec(body=page.encode()), []) for reader, page in _BODY_EDGES.values()
]
# A heading closed by another tag: the end tag of any heading closes the open one (the
# parser's "an h1-h6 element in scope"), and so do what closes it from outside; the notice
# goes where the middleware puts it.
_HEADING = "<h1>Headline</h1>"
_CLOSED_HEADINGS = {
    "heading-closed-by-h2-end": h.PAGE.replace(_HEADING, "<h1>Headline</h2>"),
    "heading-closed-by-h3-end-in-a-span": h.PAGE.replace(_HEADING, "<h1><span>Headline</h3>x"),
    "heading-closed-by-h6-end": h.PAGE.replace(_HEADING, "<h1>Headline</h6>"),
    "heading-closed-by-h2-start": h.PAGE.replace(_HEADING, "<h1>Headline<h2>Sub</h2>"),
    "heading-closed-by-body-end": h.PAGE.replace(_HEADING, "<h1>Headline"),
    "heading-closed-by-div-end": h.PAGE.replace(_HEADING, "<div><h1>Headline</div>"),
    "heading-with-an-h2-inside": h.PAGE.replace(_HEADING, "<h1>A<span><h2>B</h2></span></h1>"),
    "heading-h2-end-in-an-object": h.PAGE.replace(_HEADING, "<h1><object>A</h2></object>B</h1>"),
    "heading-closed-by-h2-end-in-a-link": h.PAGE.replace(_HEADING, "<a><h1>Headline</h2></a>"),
    "heading-closed-by-h2-end-hidden-first": h.PAGE.replace(
        _HEADING, "<div hidden><h1>Menu</h2></div><h1>Headline</h3>"
    ),
    "heading-then-h2-end-twice": h.PAGE.replace(_HEADING, "<h1>A<h2>B</h1>C</h2>"),
    "heading-closed-by-a-cell-end": h.PAGE.replace(
        _HEADING, "<table><tr><td><h1>Headline</td></tr></table>"
    ),
    # Where a link is open around it, the notice goes after the link.
    "heading-in-a-link": h.PAGE.replace(_HEADING, '<a href="/"><h1>Headline</h1></a>'),
    # A heading start tag closes it only where no formatting element the heading's text
    # reopens stands in it (else the body start).
    "heading-reopening-bold-from-before": h.PAGE.replace(_HEADING, "<p><b><h1>Headline<h1>S</h1>"),
    "heading-reopening-bold-in-it": h.PAGE.replace(_HEADING, "<h1><p><b>x</p>Headline<h2>S</h2>"),
    "heading-after-bold-closed": h.PAGE.replace(_HEADING, "<p><b>a</b><h1>Headline<h1>S</h1>"),
    "heading-after-bold-in-a-cell": h.PAGE.replace(
        _HEADING, "<table><td><b></table><h1>Headline<h1>S</h1>"
    ),
}
ORIGIN_RESPONSES += [
    (("SE", "E"), h.spec(body=page.encode()), []) for page in _CLOSED_HEADINGS.values()
]
# Links the parser keeps open around the place (the library's notices hold a link of their
# own): the notice goes after the </a> that closes it, where the library waits for it; at the
# body start where the link may still hold the place: one an <a> in a table closed out of
# scope (the table, and what its foster parenting moves before it, stay in the link), one
# closed by the page's next <a>. (marker: US-WA, after_heading: SE-E.)
_MARK = "<!-- compliance:notices -->"
_IN_LINKS = {
    "marker-foster-parented-in-a-link": ("<a href=/x><table><a href=/x></a>" + _MARK + "<p>e"),
    "marker-in-a-row-in-a-link": ("<a href=/x><table><tbody><tr><a href=/y></a>" + _MARK),
    "marker-in-a-cell-in-a-link": ("<a href=/x><table><a href=/y></a><tr><td>" + _MARK + "c"),
    "marker-in-a-table-in-a-link-in-a-cell": (
        "<table><tr><td><a href=/x><table><a href=/y></a>" + _MARK + "</table></td></tr></table>"
    ),
    "marker-after-the-table-in-a-link": ("<a href=/x><table><a href=/y></a></table>" + _MARK),
    "marker-after-a-table-in-a-div-in-a-link": (
        "<a href=/x><div><table><a href=/y></a></table>" + _MARK + "</div><p>e"
    ),
    "marker-in-a-card-link": ("<a href=/s><h2>H</h2>" + _MARK + "<p>Teaser</p></a><p>x"),
    "marker-in-a-marquee-in-a-link": ("<a href=/x><marquee></a>" + _MARK + "</marquee></a><p>z"),
    "marker-after-an-end-tag-in-a-cell": (
        "<a href=/x><table><tr><td></a>" + _MARK + "</td></tr></table></a><p>z"
    ),
    "marker-in-a-link-the-next-closes": ("<div><a href=/><h2>T</h2>" + _MARK + "<p>x</div><a>y"),
    "heading-foster-parented-in-a-link": ("<a href=/x><table><a href=/y></a><h1>T</h1><p>e"),
    "heading-in-a-row-in-a-link": (
        "<a href=/x><table><tr><a href=/y>y</a><h1>T</h1><td>c</td></tr></table><p>e"
    ),
    "heading-in-a-caption-in-a-link": (
        "<a href=/x><table><a href=/y></a><caption><h1>T</h1></caption></table><p>e"
    ),
    "heading-after-the-table-in-a-link": ("<a href=/x>\n<table><a href=/y></a></table><h1>T</h1>"),
    "heading-after-a-table-in-a-span-in-a-link": (
        "<a href=/x><span><table><a href=/y></a></table><h1>T</h1></span><p>e"
    ),
    "heading-after-a-link-left-in-a-cell": (
        "<table><tr><td><a href=/x>link</td></tr></table><h1>T</h1><p>y"
    ),
    "heading-after-a-link-left-in-a-marquee": ("<marquee><a href=/x>l</marquee><h1>T</h1><p>y"),
    "heading-in-a-cell-in-a-link": (
        "<a href=/x><table><tr><td><a href=/y>y</a><h1>T</h1></td></tr></table></a><p>z"
    ),
    "heading-and-a-link-in-a-marquee": (
        "<a href=/x><h1>T</h1><marquee><a href=/y>y</marquee>c</a><p>z"
    ),
}
# A marker in a paragraph, and end tags of elements a paragraph can be in: they close it only
# where their element is open around it in scope; a stray one leaves it open.
_PARAGRAPH_ENDS = {
    "marker-after-a-stray-div-end": "<p>a</div>" + _MARK + "b</p>c",
    "marker-before-a-stray-h2-end": "<p>a" + _MARK + "b</h2>c</p>d",
    "marker-after-a-div-end-outside-the-cell": (
        "<div><table><tr><td><p>a</div>" + _MARK + "b</td></tr></table></div>"
    ),
    "marker-before-an-li-end-out-of-scope": "<li><ul><p>a" + _MARK + "b</li>c</p>d",
    "marker-before-an-h1-end-closing-an-h2": "<h2><p>a" + _MARK + "b</h1>c",
    "marker-before-a-div-end-around": "<div><p>a" + _MARK + "b</div>c",
    "marker-before-a-button-end-around": "<button><p>a" + _MARK + "b</button>c",
    "marker-after-a-second-list-item": "<ul><li>a<li><p>x</ul>" + _MARK + "b",
    "marker-in-a-paragraph-closed-by-the-next-cell": "<table><tr><td><p>a" + _MARK + "b<td>c",
    "marker-in-a-paragraph-in-an-object-of-another": "<p><object><p>a" + _MARK + "b</object>c",
    "marker-after-a-paragraph-in-a-button": "<p><button><p>a</p>" + _MARK + "b</button>c</p>d",
    "marker-after-a-button-closed-by-a-button": (
        "<p><button>a<button>b</button>" + _MARK + "c</p>d"
    ),
    "marker-in-a-paragraph-closed-in-math": "<p>a" + _MARK + "b<math><div>x",
    "marker-in-a-paragraph-closed-in-svg": "<p>a" + _MARK + "b<svg><p>x</p>",
    "marker-in-a-paragraph-closed-after-math": "<p>a" + _MARK + "b<math></math><div>x",
    "heading-link-then-a-paragraph-closed-in-math": "<a href=/x><h1>T</h1><p>a</a>b<math><div>c",
    "marker-in-a-summary-in-a-span": "<details><span><summary>" + _MARK + "</summary></details>x",
    "heading-in-a-summary-in-a-span": "<details><span><summary><h1>T</h1></summary></details>x",
    "heading-link-then-a-stray-div-end": "<a href=/x><h1>T</h1><p>x</a>y</div>z</p>w",
    "heading-link-then-a-stray-h2-end": "<a href=/x><h1>T</h1><p>x</a>y</h2>z</p>w",
}
_PLACES = {**_IN_LINKS, **_PARAGRAPH_ENDS}
ORIGIN_RESPONSES += [
    (
        ("SE", "E") if name.startswith("heading") else ("US", "WA"),
        h.spec(body=("<!DOCTYPE html><body>" + body).encode()),
        [],
    )
    for name, body in _PLACES.items()
]
# A Cache-Control directive's quoted value holds commas: one directive, kept or removed whole.
_CACHE_CONTROLS = {
    "cache-control-private-list": 'private="Set-Cookie, X-Foo", max-age=60',
    "cache-control-quoted-public": 'no-cache="a,public,b", public, max-age=5',
}
ORIGIN_RESPONSES += [
    (("RU", None), h.spec(headers=[_HTML, ("Cache-Control", value)]), [])
    for value in _CACHE_CONTROLS.values()
]


@pytest.mark.parametrize(
    ("reader", "described", "sent"),
    ORIGIN_RESPONSES,
    ids=[
        "no-end-tags",
        "if-none-match",
        "if-modified-since",
        "markup-in-a-script",
        "two-content-types",
        "marker-ended-by-bang",
        "marker-with-a-vertical-tab",
        "utf-16",
        *_UNSHOWN,
        *_BODY_EDGES,
        *_CLOSED_HEADINGS,
        *_PLACES,
        *_CACHE_CONTROLS,
    ],
)
def test_origin_responses_are_edited_as_the_middleware_edits_them(
    reader: tuple[str | None, str | None],
    described: tuple[str, str],
    sent: list[tuple[str, str]],
    client: httpx.Client,
    python_app: Any,
) -> None:
    from compliance.testing import call_wsgi, wsgi_environ

    headers = [("Accept", "text/html"), ("Accept-Language", "en"), described, *sent]
    environ = wsgi_environ("/spec/p", peer=peer(READERS.index(reader)), headers=headers)
    expected = call_wsgi(python_app, environ)
    got = client.get("/spec/p", headers=[*headers, _cf(*reader)])
    assert got.status_code == expected.status
    assert got.content == expected.body
    for name in ("cache-control", "vary", "content-type", "x-edge-law", "etag"):
        assert got.headers.get(name) == _header(expected.headers, name), name


@pytest.mark.parametrize("name", sorted(_IN_LINKS))
def test_a_notice_never_lands_in_a_link_the_page_keeps_open(
    name: str, client: httpx.Client
) -> None:
    """The Worker placed the marker's notice right after the marker and the after_heading
    notice where the heading closed, inside the page's link where one was open there (a card
    link, a link an <a> in a table left holding the table): a notice holding a link of its
    own had it nested in the page's. Read as a browser's parser reads the page (html5lib)."""
    html5lib = pytest.importorskip("html5lib")
    reader = ("SE", "E") if name.startswith("heading") else ("US", "WA")
    page = ("<!DOCTYPE html><body>" + _IN_LINKS[name]).encode()
    headers = [("Accept", "text/html"), ("Accept-Language", "en"), h.spec(body=page)]
    got = client.get("/spec/p", headers=[*headers, _cf(*reader)])
    root = html5lib.parse(got.content, namespaceHTMLElements=False)
    parents = {child: parent for parent in root.iter() for child in parent}
    notices = [e for e in root.iter("aside") if e.get("class") == "compliance-notice"]
    assert notices, got.text
    for notice in notices:
        node = notice
        while node in parents:
            node = parents[node]
            assert node.tag != "a", got.text


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in headers if key.lower() == name]
    return ", ".join(values) if values else None


def _raw_deflate(data: bytes) -> bytes:
    coder = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return coder.compress(data) + coder.flush()


def _members(data: bytes, padding: bytes = b"", cuts: list[int] | None = None) -> bytes:
    """``data`` as gzip members (by default three, cut inside the head, the body and the
    end), each followed by ``padding``."""
    at = [*(cuts or [0, 60, 120]), len(data)]
    return b"".join(gzip.compress(data[a:b]) + padding for a, b in itertools.pairwise(at))


def _cut_short(data: bytes, at: int, wbits: int) -> bytes:
    """``data[:at]`` coded (gzip, the zlib format or raw deflate, as ``wbits`` says) as a
    stream cut short: every byte it decodes to, and no end."""
    coder = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return coder.compress(data[:at]) + coder.flush(zlib.Z_SYNC_FLUSH)


def _decoded(coding: str, data: bytes, like: bytes) -> bytes:
    """``data`` decoded as ``Content-Encoding: coding`` says; deflate framed as ``like`` is
    (the zlib format or raw deflate: the library writes the edited page as it came)."""
    name = "".join(c.strip().lower() for c in coding.split(",") if c.strip())
    if name in ("", "identity"):
        return data
    if name in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if name == "br":
        return bytes(brotli.decompress(data))
    assert name == "deflate", coding
    wrapped = (like[0] << 8 | like[1]) % 31 == 0 and like[0] & 0x0F == 8
    return zlib.decompress(data, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


# (Content-Encoding, the page coded so): coding names are case-insensitive, x-gzip is gzip,
# deflate is the zlib format (or raw deflate, which the library reads too).
CODED_PAGES = [
    pytest.param("gzip", gzip.compress, id="gzip"),
    pytest.param("br", brotli.compress, id="br"),
    pytest.param("deflate", zlib.compress, id="deflate"),
    pytest.param("deflate", _raw_deflate, id="raw-deflate"),
    pytest.param("x-gzip", gzip.compress, id="x-gzip"),
    pytest.param("GZIP", gzip.compress, id="upper-case-gzip"),
    pytest.param("Deflate", zlib.compress, id="capitalized-deflate"),
    # Several gzip members (concatenated, as RFC 1952 allows): the whole page is read.
    pytest.param("gzip", _members, id="gzip-members"),
    pytest.param("x-gzip", _members, id="x-gzip-members"),
    pytest.param("GZIP", _members, id="upper-case-gzip-members"),
    # Zero bytes between members and after the last (some writers pad them), and a member
    # whose length ends in zero bytes (256 bytes long: its trailer ends 00 01 00 00).
    pytest.param("x-gzip", lambda data: _members(data, b"\0" * 5), id="x-gzip-padded"),
    pytest.param("gzip", lambda data: _members(data, b"\0" * 5), id="gzip-padded"),
    pytest.param("x-gzip", lambda data: _members(data, cuts=[0, 256]), id="x-gzip-zero-trailer"),
    # A member, then bytes that are none: the library's fail mode.
    pytest.param("x-gzip", lambda data: gzip.compress(data) + b"junk", id="x-gzip-junk"),
    pytest.param("gzip", lambda data: gzip.compress(data) + b"junk", id="gzip-junk"),
    # What neither can read goes unedited (the library's fail mode), never to a shared cache.
    pytest.param("zstd", lambda data: b"\x28\xb5\x2f\xfd" + data, id="zstd"),
    pytest.param("gzip, identity", gzip.compress, id="two-codings"),
    pytest.param("deflate", lambda data: b"\x78\x9c" + data, id="corrupt-deflate"),
    # Cut short: the library edits what decodes as it streams the page (its headers are out),
    # and ends the page there; the page as it came where it read it whole (a length it
    # buffers), or where the cut comes before the document's start is read.
    pytest.param("gzip", lambda data: gzip.compress(data)[:-4], id="gzip-cut-in-its-trailer"),
    pytest.param("gzip", lambda data: gzip.compress(data)[:-8], id="gzip-without-its-trailer"),
    pytest.param("gzip", lambda data: _cut_short(data, 130, 31), id="gzip-cut-in-the-text"),
    pytest.param("x-gzip", lambda data: _cut_short(data, 153, 31), id="x-gzip-cut-in-a-tag"),
    pytest.param("gzip", lambda data: _cut_short(data, 112, 31), id="gzip-cut-in-a-comment"),
    pytest.param("gzip", lambda data: _members(data)[:-6], id="gzip-last-member-cut"),
    pytest.param("deflate", lambda data: _cut_short(data, 130, 15), id="deflate-cut-short"),
    pytest.param("deflate", lambda data: zlib.compress(data)[:-2], id="deflate-no-checksum"),
    pytest.param("deflate", lambda data: _cut_short(data, 130, -15), id="raw-deflate-cut"),
    pytest.param("gzip", lambda data: _cut_short(data, 12, 31), id="gzip-cut-in-the-doctype"),
    pytest.param("br", lambda data: brotli.compress(data)[:-3], id="br-cut-short"),
    pytest.param("br", lambda data: brotli.compress(data)[:6], id="br-cut-in-the-doctype"),
    pytest.param("br", lambda data: brotli.compress(data)[:9] + b"\xff" * 9, id="corrupt-br"),
    # Bytes after a deflate stream are no part of the body, as zlib reads it for the library;
    # after a gzip member, bytes that are none are (the fail mode, above).
    pytest.param("deflate", lambda data: _raw_deflate(data) + b"junk", id="raw-deflate-junk"),
    pytest.param("deflate", lambda data: zlib.compress(data) + b"\0junk", id="deflate-junk"),
    pytest.param("Deflate", lambda data: _raw_deflate(data) + b"\x1f\x8b", id="raw-deflate-more"),
    # No body: nothing was coded.
    pytest.param("gzip", lambda data: b"", id="empty-gzip"),
    pytest.param("x-gzip", lambda data: b"", id="empty-x-gzip"),
    pytest.param("deflate", lambda data: b"", id="empty-deflate"),
    pytest.param("br", lambda data: b"", id="empty-br"),
    pytest.param("identity", lambda data: b"", id="empty-identity"),
    # Codings as the header may spell them.
    pytest.param(" gzip\t", gzip.compress, id="blank-around-gzip"),
    pytest.param("gzip,", gzip.compress, id="gzip-and-an-empty-item"),
    pytest.param("identity", lambda data: data, id="identity"),
    pytest.param("", lambda data: data, id="empty-content-encoding"),
    pytest.param("gzip, gzip", lambda data: gzip.compress(gzip.compress(data)), id="gzip-twice"),
    pytest.param("identity, gzip", gzip.compress, id="identity-then-gzip"),
    pytest.param("compress", lambda data: data, id="unknown-coding"),
]


@pytest.mark.parametrize("streamed", [False, True], ids=["length", "streamed"])
@pytest.mark.parametrize(("coding", "code"), CODED_PAGES)
def test_coded_pages_are_read_as_the_library_reads_them(
    coding: str, code: Any, streamed: bool, client: httpx.Client, python_app: Any
) -> None:
    """A page in a content coding the library reads is edited and sent coded again, under
    the origin's Content-Encoding, with no length of other bytes; one it cannot read goes as
    it came, private. The origin sends its length, or streams the page without one."""
    from compliance.testing import call_wsgi, wsgi_environ

    origin = code(h.PAGE.encode())
    length = [] if streamed else [("Content-Length", str(len(origin)))]
    described = h.spec(
        body=origin,
        headers=[
            _HTML,
            ("Content-Encoding", coding),
            ("Cache-Control", "public, max-age=600"),
            *length,
        ],
        streamed=streamed,
    )
    headers = [("Accept-Language", "en"), ("Accept-Encoding", "gzip, deflate, br"), described]
    environ = wsgi_environ("/spec/p", peer=peer(READERS.index(("RU", None))), headers=headers)
    expected = call_wsgi(python_app, environ)
    with client.stream("GET", "/spec/p", headers=[*headers, _cf("RU", None)]) as got:
        data = b"".join(got.iter_raw())
    assert got.status_code == expected.status == 200
    for name in ("content-encoding", "cache-control", "vary", "content-type"):
        # (the blanks around a value are no part of it on the wire, nor is an empty one)
        said = (_header(expected.headers, name) or "").strip() or None
        assert got.headers.get(name) == said, name
    if got.headers.get("content-length") is not None:
        assert int(got.headers["content-length"]) == len(data)
    if expected.body == origin:
        assert data == origin
        return
    library = _decoded(coding, expected.body, expected.body)
    assert h.NOTICE.findall(library.decode()) == [("ru-undesirable", "en")]
    assert _decoded(coding, data, expected.body) == library


# A page with raw text, character references and characters of several bytes in its body.
_CUT_PAGE = h.PAGE.replace(
    "<p>Article text.</p>",
    "<script>if (a < b) x = '</p>';</script><p>Текст &amp; &lt;x&gt;</p><!-- c --><style>p{}"
    "</style><p>Article text.</p>",
).encode()


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut-short"])
@pytest.mark.parametrize("reader", [("RU", None), ("US", "WA"), ("SE", "E")])
def test_a_page_that_ends_anywhere_ends_as_the_library_ends_it(
    reader: tuple[str, str | None], cut: bool, client: httpx.Client, python_app: Any
) -> None:
    """A page that ends anywhere: whole as it is (in a tag, a comment, raw text...), or a gzip
    stream cut short there. The library places the notices that wait for the end before
    what its tokenizer still holds (an unfinished tag, comment or doctype, none then; a "<"
    of text; the end of raw text, none there either). A page cut short it edits as it
    decodes, streamed, and ends where the tokenizer stopped: what it held left out where a
    notice was waiting, else sent; as it came where its document's start was not read yet.
    The Worker sends the same page, for notices at the end, at a marker and after a
    heading."""
    from compliance.testing import call_wsgi, wsgi_environ

    mismatches = []
    edited = 0
    for at in range(len(_CUT_PAGE) + 1):
        if cut:
            origin = _cut_short(_CUT_PAGE, at, 31)
            coded = [_HTML, ("Content-Encoding", "gzip")]
        else:
            origin, coded = _CUT_PAGE[:at], [_HTML]
        described = h.spec(body=origin, headers=coded, streamed=True)
        headers = [("Accept-Language", "en"), ("Accept-Encoding", "gzip"), described]
        environ = wsgi_environ("/spec/p", peer=peer(READERS.index(reader)), headers=headers)
        expected = call_wsgi(python_app, environ)
        with client.stream("GET", "/spec/p", headers=[*headers, _cf(*reader)]) as got:
            data = b"".join(got.iter_raw())
        decode = gzip.decompress if cut else bytes
        library = expected.body if expected.body == origin else decode(expected.body)
        worker = data if data == origin else decode(data)
        edited += library != origin
        if (got.status_code, worker) != (expected.status, library):
            mismatches.append(f"{at} {_CUT_PAGE[:at][-20:]!r}:\n  {library!r}\n  {worker!r}")
    assert not mismatches, "\n".join(mismatches)
    assert edited > len(_CUT_PAGE) * (0.8 if cut else 0.3)


@pytest.mark.parametrize(
    "asked", ["gzip, deflate, br, zstd", "zstd", "*", "br;q=1.0, zstd;q=0.9, gzip;q=0.5"]
)
def test_the_origin_is_asked_for_codings_the_edge_can_read(
    asked: str, client: httpx.Client, python_app: Any
) -> None:
    """Where the page may be edited, the origin is asked only for codings the editor can
    read, as the library asks its application: a browser's zstd would come back as a page
    nothing can edit (the fail mode, no notice)."""
    from compliance.testing import call_wsgi, wsgi_environ

    headers = [("Accept", "text/html"), ("Accept-Encoding", asked), h.spec()]
    environ = wsgi_environ("/spec/p", peer=peer(READERS.index(("RU", None))), headers=headers)
    expected = _header(call_wsgi(python_app, environ).headers, "x-spec-accept-encoding")
    got = client.get("/spec/p", headers=[*headers, _cf("RU", None)])
    assert got.headers["x-spec-accept-encoding"] == expected
    assert "zstd" not in (expected or "")


@pytest.mark.parametrize("code", ["EU", "AP", "ZZ", "QQ", "A1", "eu"])
def test_a_placeholder_country_is_an_unknown_location(
    code: str, client: httpx.Client, python_app: Any
) -> None:
    """Codes that name no country (the EU and Asia-Pacific registrations, ZZ, unassigned
    ones) are an unknown location, as the library reads them: they matched `*` rules and
    missed `unknown_location: apply` ones."""
    unknown = peer(READERS.index((None, None)))
    for host, path, language in cases():
        headers = _headers(host, language)
        expected = h.python_answer(python_app, path, headers, peer=unknown)
        assert h.edge_answer(client, path, [*headers, _cf(code, None)]) == expected, (host, path)


@pytest.mark.parametrize(
    "host",
    [
        "blocked.example.org..",  # every trailing dot off, as the library has it
        "blocked.example.org...:8080",
        "a." * 122 + "x.example.net",  # longer than a domain name can be: no host
        "BLOCKED.Example.ORG.:8080",
        "News.Example.Org:443",
        "XN--BCHER-KVA.example.net",
        "[2001:DB8::1]:8080",
        " blocked.example.org\t",
        # Percent-escapes the URL parser decodes, read alike by every rule's hosts.
        "%61.example.net",
    ],
    ids=[
        "two-dots",
        "three-dots-and-a-port",
        "too-long",
        "upper-case-dot-port",
        "mixed-case-port",
        "punycode-upper-case",
        "ipv6-literal",
        "blanks",
        "percent-escape-read-alike",
    ],
)
def test_hosts_are_normalised_as_the_library_normalises_them(
    host: str, client: httpx.Client, python_app: Any
) -> None:
    for reader in (("SE", "E"), ("RU", None)):
        headers = _headers(host, None)
        expected = h.python_answer(python_app, "/p", headers, peer=peer(READERS.index(reader)))
        assert h.edge_answer(client, "/p", [*headers, _cf(*reader)]) == expected, reader


@pytest.mark.parametrize(
    "host",
    [
        "blocked%2Eexample.org",
        "%62locked.example.org",
        "user@blocked.example.org",
        "blocked.example.org/x",
        "blocked.example.org\\x",
        "blocked\u3002example.org",  # (UTF-8: the library reads the Latin-1 of the bytes)
    ],
)
def test_a_host_the_url_reads_otherwise_is_refused(
    host: str, client: httpx.Client, python_app: Any
) -> None:
    """The Worker matched `hosts` against the URL's host, which the URL parser reads out of
    these Hosts (percent-escapes decoded, userinfo and a path cut off, a full stop mapped):
    the reader got the block of blocked.example.org, which the middleware does not give for
    this Host. Matched against the Host as the library reads it, the origin would still be
    fetched for blocked.example.org, past its block: refused, neither."""
    reader = ("SE", "E")  # sweden-host-block: blocked.example.org
    headers: list[tuple[str, str | bytes]] = [("Host", host.encode()), ("Accept", "*/*")]
    latin1 = [("Host", host.encode().decode("latin-1")), ("Accept", "*/*")]
    expected = h.python_answer(python_app, "/p", latin1, peer=peer(READERS.index(reader)))
    assert expected.status == 200
    assert expected.block_rule is None
    got = h.edge_answer(client, "/p", [*headers, _cf(*reader)])
    assert got.status == 400
    assert got.block_rule is None
    assert not got.notices


def test_a_request_the_worker_cannot_read_is_no_fault(client: httpx.Client) -> None:
    """A Host that makes no URL is a bad request, not a 500 from a fault."""
    import http.client

    connection = http.client.HTTPConnection(client.base_url.host, client.base_url.port, timeout=10)
    try:
        connection.putrequest("GET", "/", skip_host=True)
        connection.putheader("Host", "example.org:abc")
        connection.endheaders()
        assert connection.getresponse().status == 400
    finally:
        connection.close()


def test_head_of_a_blocked_page(client: httpx.Client) -> None:
    got = client.head("/news/a.html", headers=[_cf("US", "WA")])
    assert got.status_code == 451
    assert got.content == b""
    assert got.headers["link"] == '<https://regulator.example.gov/orders/1>; rel="blocked-by"'


def test_head_of_a_page_that_gets_notices(client: httpx.Client, python_app: Any) -> None:
    """Neither announces a length other than its GET's: the Worker none (the origin sends
    no body for a HEAD), the library its GET's (it edits the body this origin sends for a
    HEAD as the GET's; docs/edge.md, "What each target supports")."""
    from compliance.testing import call_wsgi, wsgi_environ

    index = READERS.index(("RU", None))
    expected = call_wsgi(python_app, wsgi_environ("/", method="HEAD", peer=peer(index)))
    expected_get = call_wsgi(python_app, wsgi_environ("/", peer=peer(index)))
    got = client.head("/", headers=[_cf("RU", None)])
    assert got.status_code == expected.status == 200
    assert "content-length" not in got.headers
    assert expected.header("content-length") == expected_get.header("content-length")


def test_unknown_and_invalid_cloudflare_codes(client: httpx.Client) -> None:
    # "XX" and "T1" mean unknown to Cloudflare; a region code that is not ISO 3166-2 means
    # "subdivision unknown", as for the library's own Cloudflare header provider.
    for country in ("XX", "T1"):
        got = client.get("/", headers=[_cf(country, None)])
        assert [rule for rule, _ in h.NOTICE.findall(got.text)] == ["unknown-readers"]
    # us-washington-marker says unknown_subdivision: apply.
    got = client.get("/", headers=[_cf("US", "ZZZ")])
    assert h.NOTICE.findall(got.text) == [("us-washington-marker", "en")]
    got = client.get("/", headers=[_cf("US", "TX")])
    assert h.NOTICE.findall(got.text) == []


def test_origin_is_told_the_edge_handles_notices(client: httpx.Client) -> None:
    got = client.get("/echo-edge", headers=[_cf("RU", None), ("X-Compliance-Edge", "spoofed")])
    assert "<p>cloudflare</p>" in got.text


# -- edge in front of an origin that runs the middleware too ---------------------------------


@pytest.fixture(scope="module")
def combined(
    tmp_path_factory: pytest.TempPathFactory, exported: tuple[Path, Export]
) -> Iterator[str]:
    """workerd in front of an origin whose middleware places readers from the same
    Cloudflare data (the CF-IPCountry header the test sends beside the cf-blob)."""
    engine = Engine.from_paths([h.RULES, h.HERE / "worker-only"])
    with_notices = ComplianceMiddleware(
        h.origin_app, engine, trusted_proxies=["127.0.0.1"], geo_header="cloudflare"
    )
    for origin in h.serve(with_notices):
        for edge in h.start_workerd(tmp_path_factory.mktemp("workerd2"), exported[0], origin.url):
            yield edge.url
    engine.close()


def test_edge_leaves_alone_a_page_the_origin_already_edited(combined: str) -> None:
    headers = [
        ("Host", "news.example.org"),
        ("Accept-Language", "ru"),
        ("CF-IPCountry", "RU"),
        _cf("RU", None),
    ]
    got = httpx.get(combined + "/", headers=headers)
    # The origin (asked for its own host, not news.example.org) added its one notice; the
    # Worker adds the one the page lacks, not the other again (as the library passes over
    # the notices a page rendered itself).
    assert h.NOTICE.findall(got.text) == [("ru-undesirable", "ru"), ("everywhere-hosts", "de")]
    # A page the origin did not edit (it places this reader in Germany) gets the edge's.
    headers = [("Host", "news.example.org"), ("CF-IPCountry", "DE"), _cf("RU", None)]
    edited = httpx.get(combined + "/", headers=headers)
    assert h.NOTICE.findall(edited.text) == [("ru-undesirable", "ru"), ("everywhere-hosts", "de")]


@pytest.mark.parametrize(("path", "language"), h.HEAD_VARY_CASES)
def test_head_varies_as_the_middleware(
    path: str, language: str, client: httpx.Client, python_app: Any
) -> None:
    """A HEAD is not edited, but its Vary says what the GET's does: the page's own
    Content-Language, when it chose every notice's locale, leaves Accept-Language out."""
    from compliance.testing import call_wsgi, wsgi_environ

    index = READERS.index(("GB", "ENG"))
    headers = _headers("www.example.org", language)
    environ = wsgi_environ(path, method="HEAD", peer=peer(index), headers=headers)
    expected = call_wsgi(python_app, environ)
    got = client.head(path, headers=[*headers, _cf("GB", "ENG")])
    assert got.status_code == expected.status == 200
    for name in ("vary", "cache-control"):
        want = {v.strip().lower() for v in (expected.header(name) or "").split(",") if v.strip()}
        have = {v.strip().lower() for v in (got.headers.get(name) or "").split(",")} - {""}
        assert have == want, (name, have, want)


# -- a page the Worker cannot edit, for a rule set that does not depend on the location -----


def test_an_unexpected_range_goes_unedited_but_private_as_in_the_library(
    tmp_path: Path,
) -> None:
    """The notices cannot go into a 206: the page goes as it is, but no shared cache may keep
    it for other readers, though the rules do not depend on the location."""
    from compliance.testing import call_wsgi, wsgi_environ

    rules = tmp_path / "everywhere.yaml"
    rules.write_text(h.EVERYWHERE)
    result = export_cloudflare([rules])
    write_export(result, tmp_path / "export")
    engine = Engine.from_paths([rules])
    expected = call_wsgi(ComplianceMiddleware(h.range_origin, engine), wsgi_environ("/range/a"))
    engine.close()
    assert expected.status == 206
    assert '"locationSensitive":false' in result.files["worker.mjs"].replace(" ", "")
    (tmp_path / "workerd").mkdir()
    for origin in h.serve(h.range_origin):
        for edge in h.start_workerd(tmp_path / "workerd", tmp_path / "export", origin.url):
            got = httpx.get(edge.url + "/range/a", headers=[_cf("DE", None)])
            time.sleep(0.2)  # (workerd writes its console to the log)
            logged = edge.log.read_text()
    assert "notices not delivered (range): /range/a" in logged
    assert got.status_code == 206
    assert got.content == expected.body == h.PAGE.encode()
    want = {v.strip() for v in (expected.header("cache-control") or "").split(",")}
    have = {v.strip() for v in got.headers["cache-control"].split(",")}
    assert have == want == {"max-age=60", "private"}


# A rule set with headers only and no tags: the Worker lets a reader's conditional request
# through to the origin (nothing may be edited), which may answer 304.
HEADERS_ONLY = """\
version: 1
rules:
  - id: china-header
    title: China, headers only
    jurisdictions: [CN]
    headers:
      X-Edge-Law: cn
"""


def test_a_304_gets_the_headers_of_the_page_it_stands_for(tmp_path: Path) -> None:
    """A 304 rarely names its type: as in the library, it stands for a page where the reader
    asks for one, and gets the reader's caching headers and the rules' headers."""
    from compliance.testing import call_wsgi, wsgi_environ

    rules = tmp_path / "headers.yaml"
    rules.write_text(HEADERS_ONLY)
    write_export(export_cloudflare([rules]), tmp_path / "export")
    engine = Engine.from_paths(
        [rules], geolocator=FixedGeolocator({peer(0): _location("CN", None)})
    )
    app = ComplianceMiddleware(h.origin_app, engine)
    described = h.spec(validator='"v1"', headers=[_HTML, ("Cache-Control", "public, max-age=60")])
    asked = [
        [("Accept", accept), described, ("If-None-Match", '"v1"')]
        for accept in ("text/html,*/*;q=0.8", "application/xhtml+xml", "application/json")
    ]
    expected = [call_wsgi(app, wsgi_environ("/spec/p", peer=peer(0), headers=a)) for a in asked]
    engine.close()
    (tmp_path / "workerd").mkdir()
    for origin in h.serve(h.origin_app):
        for edge in h.start_workerd(tmp_path / "workerd", tmp_path / "export", origin.url):
            got = [httpx.get(edge.url + "/spec/p", headers=[*a, _cf("CN", None)]) for a in asked]
    assert _header(expected[0].headers, "x-edge-law") == "cn"
    assert _header(expected[2].headers, "x-edge-law") is None
    for answer, want in zip(got, expected, strict=True):
        assert answer.status_code == want.status == 304
        for name in ("cache-control", "vary", "x-edge-law", "x-other", "content-type", "etag"):
            assert answer.headers.get(name) == _header(want.headers, name), name


# -- small rule sets, each exported on its own -------------------------------------------------


@pytest.fixture
def city(geoip_test_data: Path) -> Path:
    """For the library's side of h.side_by_side (the Worker reads the same place from cf)."""
    return geoip_test_data / "GeoIP2-City-Test.mmdb"


@pytest.mark.parametrize("language", ["constructor-Latn", "CONSTRUCTOR-latn-RU"])
def test_a_page_language_named_like_a_prototype_key(
    language: str, tmp_path: Path, city: Path
) -> None:
    """The Worker looked a page language's first subtag up in its table of scripts without
    asking for own keys: `constructor-Latn` found Object.prototype's `constructor`, lookup()
    threw (`includes is not a function`) and the page went out without its notice."""
    notice = (
        "    notice:\n      default_locale: en\n"
        "      text: {en: English notice., ru: Russian notice.}\n"
    )
    path = f"/languages/lang/{language}/p"  # the origin's Content-Language
    rules = h.one_rule("two-lang", notice)
    with h.side_by_side(rules, "cloudflare", tmp_path, city) as (app, edge, _):
        want = h.NOTICE.findall(h.library_raw(app, path)[2].decode())
        got = h.NOTICE.findall(h.edge_raw(edge, path)[2].decode())
    assert want == [("two-lang", "ru")]  # the reader's Accept-Language chose
    assert got == want


# Subdivisions whose codes are numbers or hold digits (ISO 3166-2: UA-43, FR-2A, FR-75C,
# JP-13), named in a region and in a rule, with one that applies to unknown subdivisions.
NUMBERED = """\
version: 1
regions:
  numbered:
    title: Numbered subdivisions
    include: [UA-43, FR-75C, JP-13, CZ-10, FR-2A]
rules:
  - id: numbered-region
    title: In a region
    jurisdictions: [numbered]
    notice: {text: {en: In a numbered subdivision.}}
  - id: numbered-direct
    title: Named in the rule
    jurisdictions: [IT-62, UA-14, US-DC]
    notice: {text: {en: Directly named.}}
  - id: unknown-applies
    title: Unknown subdivisions too
    jurisdictions: [UA-09, JP-01]
    unknown_subdivision: apply
    notice: {text: {en: Unknown applies.}}
"""
# (country, regionCode): bare, in full, any case, blanks around, placeholders, leading zeros.
NUMBERED_READERS = [
    *(("UA", r) for r in ("43", " 43", "43 ", "43\t", "UA-43", "ua-43", "043", "4", "14")),
    *(("UA", r) for r in ("09", "UA-09", "NO REGION", "-", "UA-", "4 3", "UA-UA-43", "XX-43")),
    *(("FR", r) for r in ("75C", "75c", "75", "075", "2A", "2a", "FR-2A", " fr-2a ", "IDF")),
    *(("JP", r) for r in ("13", "013", "JP-13", "1", "01", "JP-01")),
    *(("CZ", r) for r in ("10", "010", "CZ-10", "101")),
    *(("IT", r) for r in ("62", "IT-62", "RM")),
    *(("US", r) for r in ("DC", "dc", "US-DC")),
    (" ua ", "43"),
]


def test_numbered_subdivisions_are_read_as_the_library_reads_a_cdn(tmp_path: Path) -> None:
    """The Worker read `regionCode` bare and exact: a code in full (`UA-43`), or with blanks
    around it, was an unknown subdivision, where the library (reading Cloudflare's
    `cf-region-code`) places the reader in UA-43."""
    from compliance.testing import call_wsgi, wsgi_environ

    rules = tmp_path / "numbered.yaml"
    rules.write_text(NUMBERED)
    write_export(export_cloudflare([rules]), tmp_path / "export")
    engine = Engine.from_paths([rules])
    app = ComplianceMiddleware(
        h.origin_app, engine, trusted_proxies=["127.0.0.1"], geo_header="cloudflare"
    )
    expected = []
    for country, region in NUMBERED_READERS:
        sent = [("CF-IPCountry", country), ("cf-region-code", region)]
        body = call_wsgi(app, wsgi_environ("/", peer="127.0.0.1", headers=sent)).body
        expected.append([rule for rule, _ in h.NOTICE.findall(body.decode())])
    engine.close()
    assert expected[NUMBERED_READERS.index(("UA", "UA-43"))] == ["numbered-region"]
    (tmp_path / "workerd").mkdir()
    got = []
    for origin in h.serve(h.origin_app):
        for edge in h.start_workerd(tmp_path / "workerd", tmp_path / "export", origin.url):
            for country, region in NUMBERED_READERS:
                cf = json.dumps({"country": country, "regionCode": region})
                answer = httpx.get(edge.url + "/", headers=[("cf-blob", cf)])
                got.append([rule for rule, _ in h.NOTICE.findall(answer.text)])
    mismatches = [
        (reader, want, have)
        for reader, want, have in zip(NUMBERED_READERS, expected, got, strict=True)
        if want != have
    ]
    assert not mismatches


# (reader, Accept-Language, the origin's ETag): a page edited for the reader, in one locale
# or chosen by the reader's languages, with a strong or a weak validator.
VARIANT_READERS = [
    (("RU", None), "en", '"v1"'),
    (("RU", None), None, '"v1"'),
    (("GB", "ENG"), "fr", 'W/"v1"'),
    (("US", "WA"), None, '"v1"'),
]


def _validated(
    app: Any, client: httpx.Client, reader: tuple[str | None, str | None], asked: list[Any]
) -> tuple[Any, httpx.Response]:
    from compliance.testing import call_wsgi, wsgi_environ

    method, headers = asked
    environ = wsgi_environ(
        "/spec/p", method=method, peer=peer(READERS.index(reader)), headers=headers
    )
    expected = call_wsgi(app, environ)
    got = client.request(method, "/spec/p", headers=[*headers, _cf(*reader)])
    return expected, got


@pytest.mark.parametrize(("reader", "language", "validator"), VARIANT_READERS)
def test_edited_pages_have_variant_etags_as_in_the_middleware(
    reader: tuple[str | None, str | None],
    language: str | None,
    validator: str,
    client: httpx.Client,
    python_app: Any,
) -> None:
    """The Worker sent an edited page without a validator and never revalidated: now, as
    the middleware, the page's tag names its variant (what notices, in what locales), a copy
    of this variant revalidates to 304 under that tag, and a copy of another variant or of
    the unedited page (`If-None-Match` naming the origin's own tag) gets the page again: no
    reader keeps a variant it was not sent."""
    base = [("Accept", "text/html"), h.spec(validator=validator)]
    if language is not None:
        base.append(("Accept-Language", language))
    first, got = _validated(python_app, client, reader, ["GET", base])
    tag = _header(first.headers, "etag")
    assert tag is not None
    assert tag.startswith(validator[:-1] + "-cv")
    assert got.headers.get("etag") == tag
    other = re.sub(r"-cv[0-9a-f]{12}", "-cv000000000000", tag)  # another variant's tag
    statuses = []
    for asked in (
        ["GET", [*base, ("If-None-Match", tag)]],  # this variant: 304
        ["GET", [*base, ("If-None-Match", f'"x", {tag}')]],
        ["HEAD", [*base, ("If-None-Match", tag)]],
        ["GET", [*base, ("If-None-Match", validator)]],  # the unedited page: 200
        ["GET", [*base, ("If-None-Match", other)]],  # another variant: 200
        ["GET", [*base, ("If-None-Match", "*")]],
        ["HEAD", base],
        ["POST", [*base, ("If-Match", tag)]],  # a precondition on the resource
    ):
        expected, got = _validated(python_app, client, reader, asked)
        assert got.status_code == expected.status, asked
        statuses.append(got.status_code)
        if asked[0] != "HEAD":  # (the library is given the GET's body for a HEAD here)
            assert got.content == expected.body, asked
        for name in ("etag", "vary", "cache-control"):
            want = {v.strip() for v in (_header(expected.headers, name) or "").split(",")}
            have = {v.strip() for v in (got.headers.get(name) or "").split(",")}
            assert have == want, (asked, name)
    assert statuses[:6] == [304, 304, 304, 200, 200, 200]


def _same_validators(expected: Any, got: httpx.Response, asked: Any) -> None:
    assert got.status_code == expected.status, asked
    for name in ("etag", "vary", "cache-control"):
        want = {v.strip() for v in (_header(expected.headers, name) or "").split(",")}
        have = {v.strip() for v in (got.headers.get(name) or "").split(",")}
        assert have == want, (asked, name)


_PUBLIC = ("Cache-Control", "public, max-age=60")
# What the origin sends a reader with notices that the Worker leaves unedited: a page the
# origin says takes no notices, another type (as the middleware's test_delivery cases).
UNEDITED = {
    "skip": ("text/html", [_HTML, _PUBLIC, ("X-Compliance-Skip", "1")]),
    "feed": ("*/*", [("Content-Type", "application/rss+xml"), _PUBLIC]),
    "image": ("*/*", [("Content-Type", "image/png"), _PUBLIC]),
    "json": ("application/json", [("Content-Type", "application/json"), _PUBLIC]),
}


@pytest.mark.parametrize("kind", list(UNEDITED))
@pytest.mark.parametrize("language", ["en", None])
def test_unedited_answers_for_a_reader_with_notices_revalidate_as_in_the_middleware(
    kind: str, language: str | None, client: httpx.Client, python_app: Any
) -> None:
    """The Worker translates the If-None-Match of a reader with notices for their variant,
    as the middleware does, but a page the origin sent with `X-Compliance-Skip`, or a feed,
    an image or JSON, kept the origin's own tag: that tag never reached the origin again,
    so the reader's copy never revalidated. Now, as in the middleware, it carries the
    variant's tag (another type's with the `o` flag, whose 304 keeps the origin's caching
    headers, as its 200 did) and revalidates to the middleware's 304."""
    accept, headers = UNEDITED[kind]
    base = [("Accept", accept), h.spec(validator='"v1"', headers=headers)]
    if language is not None:
        base.append(("Accept-Language", language))
    reader = ("RU", None)
    first, got = _validated(python_app, client, reader, ["GET", base])
    tag = _header(first.headers, "etag")
    assert tag is not None
    assert tag.startswith('"v1-cv')
    assert tag.endswith('o"') == (kind != "skip")
    _same_validators(first, got, "first")
    assert got.content == first.body
    assert "x-compliance-skip" not in got.headers
    statuses = []
    for asked in (
        ["GET", [*base, ("If-None-Match", tag)]],  # this reader's copy: 304
        ["HEAD", [*base, ("If-None-Match", tag)]],
        ["GET", [*base, ("If-None-Match", f'"x", {tag}')]],
        ["GET", [*base, ("If-None-Match", '"v1"')]],  # the unedited copy: 200
    ):
        expected, got = _validated(python_app, client, reader, asked)
        _same_validators(expected, got, asked)
        statuses.append(got.status_code)
    assert statuses == [304, 304, 304, 200]


def test_a_page_with_every_notice_in_it_revalidates(client: httpx.Client) -> None:
    """A page that already has the reader's notices (the origin's templates put them in)
    goes out as it is: under the variant's tag, as the middleware tags a page that rendered
    its notices, so the reader's copy revalidates (its own tag never reached the origin
    again)."""
    base = [("Accept", "text/html"), h.spec(validator='"v1"')]
    reader = [*base, _cf("RU", None)]
    edited = client.get("/spec/p", headers=reader)
    body = edited.content
    assert h.NOTICE.findall(edited.text)
    spec = h.spec(body=body, validator='"v1"')
    asked = [("Accept", "text/html"), spec, _cf("RU", None)]
    first = client.get("/spec/p", headers=asked)
    assert first.content == body  # nothing added again
    tag = first.headers["etag"]
    assert tag.startswith('"v1-cv')
    again = client.get("/spec/p", headers=[*asked, ("If-None-Match", tag)])
    assert again.status_code == 304
    assert again.headers["etag"] == tag


@pytest.mark.parametrize("dest", ["image", "script", "video", "Style"])
def test_a_subresource_reaches_the_origin_as_the_reader_sent_it(
    dest: str, client: httpx.Client, python_app: Any
) -> None:
    """As the middleware hands it to its application, a request for something a browser
    never shows as a page (`Sec-Fetch-Dest`) reaches the origin with the reader's
    validators, range and codings. (The Worker prepared it as for an edited page: an image
    or a video for a reader with notices never revalidated, nor could it seek.)"""
    described = h.spec(validator='"i1"', headers=[("Content-Type", "image/png"), _PUBLIC])
    sent = [("Range", "bytes=0-1"), ("Accept-Encoding", "gzip, zstd")]
    base = [("Sec-Fetch-Dest", dest), ("Accept", "image/avif,*/*"), described, *sent]
    reader = ("RU", None)
    expected, got = _validated(
        python_app, client, reader, ["GET", [*base, ("If-None-Match", '"x"')]]
    )
    for name in ("x-spec-range", "x-spec-if-none-match", "x-spec-accept-encoding"):
        assert got.headers.get(name) == _header(expected.headers, name), name
    assert got.headers["x-spec-range"] == "bytes=0-1"
    assert got.headers["x-spec-if-none-match"] == '"x"'
    assert got.headers["x-spec-accept-encoding"] == "gzip, zstd"
    _same_validators(expected, got, "first")
    assert got.headers["etag"] == '"i1"'
    expected, got = _validated(
        python_app, client, reader, ["GET", [*base, ("If-None-Match", '"i1"')]]
    )
    _same_validators(expected, got, "again")
    assert got.status_code == 304
    # A page the browser asks for, or a script's fetch(), is prepared as before.
    for page in ("document", "empty"):
        asked = [("Sec-Fetch-Dest", page), *base[1:], ("If-None-Match", '"i1"')]
        expected, got = _validated(python_app, client, reader, ["GET", asked])
        assert got.status_code == expected.status == 200
        assert got.headers["x-spec-range"] == _header(expected.headers, "x-spec-range") == "(none)"


def test_the_worker_revalidates_through_an_origin_that_leaves_notices_to_it(
    tmp_path: Path,
) -> None:
    """The Worker in front of the middleware with ``edge_from`` (docs/edge.md's set-up): a
    copy of the reader's variant revalidates to 304 at the origin. (The origin prepared
    the Worker's request as for a page it edits and dropped the origin's own tag the
    Worker sent for it: every revalidation was a whole page.)"""
    rules = tmp_path / "ru.yaml"
    rules.write_text(NOTICE_ONLY_RU)
    write_export(export_cloudflare([rules]), tmp_path / "export")
    engine = Engine.from_paths([rules])
    origin_app = ComplianceMiddleware(
        h.origin_app,
        engine,
        trusted_proxies=["127.0.0.1"],
        geo_header="cloudflare",
        edge_from=["127.0.0.1"],
    )
    (tmp_path / "workerd").mkdir()
    reader = [_cf("RU", None), ("CF-IPCountry", "RU"), ("Accept", "text/html")]
    reader.append(h.spec(validator='"v1"'))
    try:
        for origin in h.serve(origin_app):
            for edge in h.start_workerd(tmp_path / "workerd", tmp_path / "export", origin.url):
                first = httpx.get(edge.url + "/spec/p", headers=reader)
                assert [rule for rule, _ in h.NOTICE.findall(first.text)] == ["ru-only"]
                tag = first.headers["etag"]
                # The Worker's variant of the origin's own tag, as the middleware's would be.
                assert re.fullmatch(r'"v1-cv[0-9a-f]{12}a?"', tag), tag
                again = httpx.get(edge.url + "/spec/p", headers=[*reader, ("If-None-Match", tag)])
                assert again.status_code == 304
                assert again.headers["etag"] == tag
                unedited = [*reader, ("If-None-Match", '"v1"')]
                assert httpx.get(edge.url + "/spec/p", headers=unedited).status_code == 200
    finally:
        engine.close()


NOTICE_ONLY_RU = """\
version: 1
rules:
  - id: ru-only
    title: a notice for readers in Russia
    jurisdictions: [RU]
    notice:
      default_locale: en
      text:
        en: A notice for readers in Russia.
"""


# -- what a page costs ---------------------------------------------------------------------------

NOTICES_AT_END_AND_MARKER = """\
version: 1
rules:
  - id: ru-end
    title: a notice at the end of the body
    jurisdictions: [RU]
    notice:
      placement: body_end
      default_locale: en
      text:
        en: A notice at the end.
  - id: ru-marker
    title: a notice at the marker
    jurisdictions: [RU]
    notice:
      placement: marker
      default_locale: en
      text:
        en: A notice at the marker.
"""
PIECES = 200_000
"""Pieces of text in the costly page: each a call of a text handler where the Worker
follows text through the page (several microseconds each, about 4 s of CPU in all)."""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def test_a_page_of_many_pieces_of_text_costs_no_call_per_piece(tmp_path: Path) -> None:
    """The Worker's CPU time, which Cloudflare bills and limits, does not grow with the
    number of pieces of text in the page (a megabyte of text split by 200,000 stray end
    tags): the rewriter calls no handler per piece. The bound is over ten times the cost
    (0.07 s here) and four times below the old cost of a call per piece (4 s)."""
    from compliance.testing import call_wsgi, wsgi_environ

    page = (
        b"<!DOCTYPE html><html><head><title>Pieces</title></head><body><h1>Many pieces</h1>"
        b"<!-- compliance:notices -->" + b"x</i>" * PIECES + b"</body></html>"
    )

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [_HTML, ("Content-Length", str(len(page)))])
        return [page]

    rules = tmp_path / "rules.yaml"
    rules.write_text(NOTICES_AT_END_AND_MARKER)
    write_export(export_cloudflare([rules]), tmp_path / "export")
    reader = FixedGeolocator({peer(0): _location("RU", None)})
    engine = Engine.from_paths([rules], geolocator=reader)
    try:
        expected = call_wsgi(ComplianceMiddleware(app, engine), wsgi_environ("/", peer=peer(0)))
    finally:
        engine.close()
    (tmp_path / "workerd").mkdir()
    for origin in h.serve(app):
        for edge in h.start_workerd(tmp_path / "workerd", tmp_path / "export", origin.url):
            httpx.get(edge.url + "/", headers=[_cf("RU", None)], timeout=60)  # warmed up
            before = _cpu_seconds(edge.process.pid)
            got = httpx.get(edge.url + "/", headers=[_cf("RU", None)], timeout=60)
            spent = _cpu_seconds(edge.process.pid) - before
            print(f"{spent:.3f} s of CPU")  # shown with -s
    assert [rule for rule, _ in h.NOTICE.findall(got.text)] == ["ru-marker", "ru-end"]
    assert got.content == expected.body
    assert spent < 1.0, f"{spent:.2f} s of CPU for {PIECES} pieces of text"

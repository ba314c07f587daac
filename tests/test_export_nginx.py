"""`compliance export nginx` against a real nginx with ngx_http_geoip2_module: the same
notices, locales, order, blocks and headers as the Python middleware, reader by reader.

nginx is started once for the module, in front of a small origin, reading MaxMind's City test
database; readers are placed with ``X-Forwarded-For``. The middleware's answers come from the
real WSGI middleware on the same database. Locally the module skips when nginx or the geoip2
module is missing; with ``COMPLIANCE_REQUIRE_EDGE=1`` (CI) it fails instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness as h
import httpx
import pytest

from compliance import Engine
from compliance.export import Export, export_nginx, write_export
from compliance.wsgi import ComplianceMiddleware

pytestmark = pytest.mark.slow


# Readers from MaxMind's City test database (address: country, subdivisions).
READERS = [
    pytest.param("2a02:d0c0::1", id="RU"),
    pytest.param("2a02:d300::1", id="UA-no-subdivision"),
    pytest.param("81.2.69.142", id="GB-ENG"),
    pytest.param("2.2.3.1", id="GB-ENG-WBK"),
    pytest.param("89.160.20.112", id="SE-E"),
    pytest.param("216.160.83.56", id="US-WA"),
    pytest.param("214.78.120.1", id="US-CA"),
    pytest.param("149.101.100.1", id="US-no-subdivision"),
    pytest.param("175.16.199.1", id="CN-22"),
    pytest.param("214.0.1.1", id="AU-VIC"),
    pytest.param("67.43.156.1", id="BT"),
    pytest.param("214.0.0.1", id="SG"),
    pytest.param("2.3.3.1", id="no-country"),
    pytest.param("10.1.2.3", id="private-address"),
]
HOSTS = ["www.example.org", "News.Example.org", "blocked.example.org", "a.example.net"]
PATHS = [
    "/",
    "/news/a.html",
    "/news/allowed/x",
    "/a/x/b",
    "/a/x/y/b",
    "/tagged/story",
    "/lang/pt-BR/p",
    "/lang/ru/p",
    "/cached/p",
    "/cp1251/p",
    "/gzip/p",
    "/data.json",
    "/missing",
]
# Accept-Language as browsers send it: q-values never increase along the header (nginx reads
# the header in order; see the export's README).
LANGUAGES = [
    None,
    "ru",
    "uk, ru;q=0.8",
    "en-GB,en;q=0.9",
    "pt-BR",
    "fr",
    "es",
    "zh-TW",
    "sv;q=0, de",
    "cy",
    "*",
    "de;q=0, fr",
    "fr-CA, fr;q=0.9, en;q=0.5",
    ", ".join(["xx"] * 16 + ["uk", "ru;q=0"]),  # past the ranges the library reads
]


def cases() -> list[tuple[str, str, str | None]]:
    """(host, path, Accept-Language): every path, each with three hosts and languages."""
    out = []
    for i, path in enumerate(PATHS):
        for k in range(3):
            host = HOSTS[(i + k) % len(HOSTS)]
            language = LANGUAGES[(i * 3 + k) % len(LANGUAGES)]
            out.append((host, path, language))
    return out


@pytest.fixture(scope="module")
def city(geoip_test_data: Path) -> Path:
    return geoip_test_data / "GeoIP2-City-Test.mmdb"


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(h.dated_rules(tmp_path_factory.mktemp("dated")))


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, city: Path, dated: Path
) -> tuple[Path, Export]:
    out = tmp_path_factory.mktemp("nginx-export")
    result = export_nginx([h.RULES, h.CORNER_CASES, dated], geoip_db=city)
    write_export(result, out)
    return out, result


@pytest.fixture(scope="module")
def origin() -> Iterator[Any]:
    yield from h.serve(h.origin_app)


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, exported: tuple[Path, Export], origin: Any
) -> Iterator[Any]:
    yield from h.start_nginx(tmp_path_factory.mktemp("nginx"), exported[0], origin.port)


@pytest.fixture(scope="module")
def client(nginx: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nginx.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def python_app(city: Path, dated: Path) -> Iterator[Any]:
    engine = Engine.from_paths([h.RULES, h.CORNER_CASES, dated], geoip_db=city)
    yield ComplianceMiddleware(h.origin_app, engine, trusted_proxies=["127.0.0.1"])
    engine.close()


# The rule headers of tests/edge/corner-cases, and the origin's opt-out.
CORNER_HEADERS = ("x-corner", "x-foo$host", "x-bar.baz", "x_under", "x-withheld", "x-jilin")
CORNER_HEADERS += ("x-compliance-skip", "x-tagged")


def _headers(ip: str, host: str, language: str | None) -> list[tuple[str, str]]:
    headers = [("Host", host), ("X-Forwarded-For", ip), ("Accept", "*/*")]
    if language is not None:
        headers.append(("Accept-Language", language))
    return headers


def test_nginx_starts_quickly(nginx: Any) -> None:
    print(f"nginx started in {nginx.started_in:.3f} s")  # shown with -s
    assert nginx.started_in < 5


@pytest.mark.parametrize("ip", READERS)
def test_same_answers_as_the_middleware(ip: str, client: httpx.Client, python_app: Any) -> None:
    mismatches = []
    for host, path, language in cases():
        headers = _headers(ip, host, language)
        expected = h.python_answer(python_app, path, headers, peer="127.0.0.1")
        got = h.edge_answer(client, path, headers)
        if got != expected:
            mismatches.append(f"{host}{path} [{language}]\n  python: {expected}\n  nginx:  {got}")
    assert not mismatches, "\n".join(mismatches)


def test_paths_are_matched_as_the_middleware(client: httpx.Client, python_app: Any) -> None:
    """`?` is one character (a UTF-8 sequence, or one invalid sequence as the library's
    decoding replaces it), never one byte; a star before it stops between characters."""
    mismatches = []
    for path in h.CORNER_PATHS:
        headers = _headers("81.2.69.142", "www.example.org", None)
        expected = h.python_answer(python_app, path, headers, peer="127.0.0.1")
        got = h.edge_answer(client, path, headers)
        if got != expected:
            mismatches.append(f"{path}\n  python: {expected}\n  nginx:  {got}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(("country", "language", "page", "chosen"), h.LANGUAGE_CASES)
def test_languages_are_chosen_as_the_library_does(
    country: str,
    language: str | None,
    page: str | None,
    chosen: str,
    client: httpx.Client,
    python_app: Any,
) -> None:
    """Weights, tags with extensions and bare languages, in the library and in nginx."""
    path = h.language_path(page)
    headers = _headers(h.LANGUAGE_ADDRESSES[country], "www.example.org", language)
    expected = h.python_answer(python_app, path, headers, peer="127.0.0.1")
    assert dict(expected.notices)["corner-languages"] == chosen
    assert h.edge_answer(client, path, headers) == expected


@pytest.mark.parametrize("language", h.BOUND_LANGUAGES + h.HOSTILE_LANGUAGES)
def test_accept_language_bounds_and_hostile_headers(
    language: str, client: httpx.Client, python_app: Any
) -> None:
    """The library's bounds (1,024 characters, 16 ranges, 51 characters a range) hold at the
    edge too, and no regular expression over the header backtracks its way to a slow answer."""
    import time

    headers = _headers("81.2.69.142", "www.example.org", None)
    expected = h.python_answer(
        python_app, h.LANGUAGE_PATH, [*headers, ("Accept-Language", language)], peer="127.0.0.1"
    )
    sent = [*headers, ("Accept-Language", language.encode("latin-1"))]
    began = time.perf_counter()
    got = h.edge_answer(client, h.LANGUAGE_PATH, sent)
    assert time.perf_counter() - began < 0.5
    assert got == expected


def test_the_table_is_broad(python_app: Any) -> None:
    """At least 40 readers x hosts x paths x languages, with many different answers."""
    answers = set()
    table = [(ip.values[0], *case) for ip in READERS for case in cases()]
    for ip, host, path, language in table:
        headers = _headers(ip, host, language)
        answers.add(h.python_answer(python_app, path, headers, peer="127.0.0.1"))
    assert len(table) >= 40 * 3
    assert len({a.notices for a in answers}) >= 8
    assert len({a.notices for a in answers if len(a.notices) > 1}) >= 2
    assert {a.block_rule for a in answers} >= {"us-west-block", "sweden-host-block", None}


@pytest.mark.parametrize(
    ("ip", "path", "language"),
    [
        ("175.16.199.1", "/", None),  # a header-only rule
        ("175.16.199.1", "/data.json", None),  # not a page: nothing added
        ("175.16.199.1", "/missing", None),  # an HTML 404: headers, no notice
        ("2a02:d0c0::1", "/cached/p", "ru"),  # public, s-maxage removed; private added
        ("81.2.69.142", "/", "fr"),  # a negotiated language: Vary
        ("81.2.69.142", "/lang/pt-BR/p", "fr"),  # the page's language chose: no Vary
        ("81.2.69.142", "/", "fr;Q=1, pt;Q=0, en"),  # `Q` is `q`: parameter names are caseless
        ("81.2.69.142", "/tagged/x", "cy"),  # a notice from the origin's tags
        ("89.160.20.112", "/", None),  # location-dependent, no notice
        ("214.78.120.1", "/news/a.html", "es"),  # a block
        ("81.2.69.142", "/corner/p", None),  # header names nginx cannot read back
        ("81.2.69.142", "/corner/origin-headers", None),  # the origin's own X-Corner kept
        ("81.2.69.142", "/corner/skip", "fr"),  # the origin opts out: no notice, rest applies
        ("81.2.69.142", "/corner/blocked", None),  # a withholding rule's headers not on a block
        ("81.2.69.142", "/corner/cache", None),  # every public, s-maxage and private removed
        ("175.16.199.1", "/corner/jilin", None),  # CN-22 is no ISO code: subdivision unknown
        ("89.160.20.112", "/corner/jilin", None),  # Sweden: no
    ],
)
def test_same_headers_as_the_middleware(
    ip: str, path: str, language: str | None, client: httpx.Client, python_app: Any
) -> None:
    from compliance.testing import call_wsgi, wsgi_environ

    headers = _headers(ip, "www.example.org", language)
    expected = call_wsgi(python_app, wsgi_environ(path, peer="127.0.0.1", headers=headers))
    got = client.get(path, headers=headers)
    assert got.status_code == expected.status
    assert h.NOTICE.findall(got.text) == h.NOTICE.findall(expected.body.decode())
    for name in (
        *CORNER_HEADERS,
        "x-edge-law",
        "x-other",
        "cache-control",
        "vary",
        "link",
        "content-language",
        "x-compliance-tags",
        "cdn-cache-control",
    ):
        want = {v.strip().lower() for v in (expected.header(name) or "").split(",") if v.strip()}
        have = {
            v.strip().lower() for v in ",".join(got.headers.get_list(name)).split(",") if v.strip()
        }
        assert have == want, (name, have, want)


# (how the origin answers, request headers): nginx answers as the middleware, a reader in
# Russia getting the body_end notice.
ORIGIN_RESPONSES = [
    # A copy the reader holds is no answer where a notice may go: 200, with the notice.
    pytest.param(h.spec(validator='"v1"'), [("If-None-Match", '"v1"')], id="if-none-match"),
    pytest.param(
        h.spec(validator='"v1"'), [("If-Modified-Since", h.LAST_MODIFIED)], id="if-modified-since"
    ),
]


@pytest.mark.parametrize(("described", "sent"), ORIGIN_RESPONSES)
def test_origin_responses_are_edited_as_the_middleware_edits_them(
    described: tuple[str, str], sent: list[tuple[str, str]], client: httpx.Client, python_app: Any
) -> None:
    from compliance.testing import call_wsgi, wsgi_environ

    headers = [*_headers(h.LANGUAGE_ADDRESSES["RU"], "www.example.org", "en"), described, *sent]
    expected = call_wsgi(python_app, wsgi_environ("/spec/p", peer="127.0.0.1", headers=headers))
    got = client.get("/spec/p", headers=headers)
    assert got.status_code == expected.status == 200
    assert h.NOTICE.findall(got.text) == h.NOTICE.findall(expected.body.decode())
    assert h.NOTICE.findall(got.text)


def test_the_client_is_found_past_every_trusted_hop(client: httpx.Client, python_app: Any) -> None:
    """Two trusted proxies in a row: the client is the last address neither wrote, in the
    library and with the wiring the export's README gives (``real_ip_recursive on``)."""
    from compliance.testing import call_wsgi, wsgi_environ

    forwarded = f"{h.LANGUAGE_ADDRESSES['GB']}, 127.0.0.1"
    headers = [("Host", "www.example.org"), ("X-Forwarded-For", forwarded), ("Accept", "*/*")]
    expected = call_wsgi(python_app, wsgi_environ("/", peer="127.0.0.1", headers=headers))
    got = client.get("/", headers=headers)
    notices = [rule for rule, _ in h.NOTICE.findall(expected.body.decode())]
    assert "england-start" in notices
    assert [rule for rule, _ in h.NOTICE.findall(got.text)] == notices


def test_a_subdivision_code_iso_does_not_assign_is_unknown_at_the_edge_too(
    client: httpx.Client, python_app: Any
) -> None:
    """MaxMind's test database has Jilin as ``22`` (``CN-JL`` since 2017): the library takes
    the reader's subdivision as unknown, which ``unknown_subdivision: apply`` counts in;
    nginx, reading the database itself, took ``CN-22`` for another known subdivision."""
    from compliance.testing import call_wsgi, wsgi_environ

    for ip, want in (("175.16.199.1", "yes"), ("89.160.20.112", None), ("2a02:d0c0::1", None)):
        headers = _headers(ip, "www.example.org", None)
        expected = call_wsgi(
            python_app, wsgi_environ("/corner/jilin", peer="127.0.0.1", headers=headers)
        )
        assert expected.header("x-jilin") == want, ip
        assert client.get("/corner/jilin", headers=headers).headers.get("x-jilin") == want, ip


def test_effective_dates_are_baked_for_today(
    exported: tuple[Path, Export], client: httpx.Client, python_app: Any
) -> None:
    headers = _headers("2a02:d0c0::1", "www.example.org", None)
    expected = h.python_answer(python_app, "/dated/x", headers, peer="127.0.0.1")
    got = h.edge_answer(client, "/dated/x", headers)
    assert got == expected
    dated = [rule for rule, _ in got.notices if rule.endswith(("today", "tomorrow"))]
    assert dated == ["starts-today"]
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    assert exported[1].valid_until == tomorrow
    assert f"# Valid until {tomorrow.isoformat()}" in (exported[0] / "http.conf").read_text()


def test_a_page_in_another_charset(client: httpx.Client) -> None:
    headers = _headers("2a02:d0c0::1", "www.example.org", "ru")
    got = client.get("/cp1251/p", headers=headers)
    assert "Текст статьи.".encode("cp1251") in got.content  # the page's own bytes, kept
    notice = "признана «нежелательной» организацией"
    assert notice.encode("ascii", "xmlcharrefreplace") in got.content


def test_tags_header_is_consumed(client: httpx.Client) -> None:
    got = client.get("/tagged/story", headers=_headers("81.2.69.142", "www.example.org", "en"))
    assert "x-compliance-tags" not in got.headers
    assert [rule for rule, _ in h.NOTICE.findall(got.text)] == ["england-start", "tagged-politics"]


def test_origin_is_told_the_edge_handles_notices(client: httpx.Client) -> None:
    spoofed = [*_headers("2a02:d0c0::1", "www.example.org", None), ("X-Compliance-Edge", "x")]
    got = client.get("/echo-edge", headers=spoofed)
    assert "<p>nginx</p>" in got.text


# -- edge in front of an origin that runs the middleware too ---------------------------------


def skip_for_the_edge(app: Any) -> Any:
    """The other recipe: the middleware stays, the application opts edge requests out of
    notices with X-Compliance-Skip."""

    def site(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            if environ.get("HTTP_X_COMPLIANCE_EDGE"):
                headers = [*headers, ("X-Compliance-Skip", "1")]
            return start_response(status, headers, *args)

        return app(environ, start)

    return site


@pytest.fixture(scope="module", params=["edge_from", "skip"])
def combined(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    exported: tuple[Path, Export],
    city: Path,
) -> Iterator[tuple[str, str]]:
    engine = Engine.from_paths([h.RULES], geoip_db=city)
    if request.param == "edge_from":  # the recipe of docs/edge.md
        origin_site = ComplianceMiddleware(
            h.origin_app, engine, trusted_proxies=["127.0.0.1"], edge_from=["127.0.0.1"]
        )
    else:
        origin_site = ComplianceMiddleware(
            skip_for_the_edge(h.origin_app), engine, trusted_proxies=["127.0.0.1"]
        )
    for origin in h.serve(origin_site):
        for edge in h.start_nginx(tmp_path_factory.mktemp("nginx2"), exported[0], origin.port):
            yield edge.url, origin.url
    engine.close()


def test_edge_and_origin_together_add_each_notice_once(combined: tuple[str, str]) -> None:
    edge, origin = combined
    headers = _headers("2a02:d0c0::1", "news.example.org", "ru")
    through_edge = httpx.get(edge + "/", headers=headers)
    direct = httpx.get(origin + "/", headers=headers)
    expected = [("ru-undesirable", "ru"), ("everywhere-hosts", "de")]
    assert h.NOTICE.findall(through_edge.text) == expected
    # The same origin still serves readers who do not come through the edge.
    assert h.NOTICE.findall(direct.text) == expected


def test_blocks_are_answered_without_asking_the_origin(combined: tuple[str, str]) -> None:
    edge, _ = combined
    got = httpx.get(edge + "/news/a.html", headers=_headers("216.160.83.56", "x.example.org", "es"))
    assert got.status_code == 451
    assert got.headers["link"] == '<https://regulator.example.gov/orders/1>; rel="blocked-by"'
    assert got.headers["content-type"] == "text/html; charset=utf-8"
    assert "Esta página no está disponible" in got.text


@pytest.mark.parametrize(("path", "language"), h.HEAD_VARY_CASES)
def test_head_varies_as_the_middleware(
    path: str, language: str, client: httpx.Client, python_app: Any
) -> None:
    """A HEAD is not edited, but its Vary says what the GET's does: the page's own
    Content-Language, when it chose every notice's locale, leaves Accept-Language out."""
    from compliance.testing import call_wsgi, wsgi_environ

    headers = _headers("81.2.69.142", "www.example.org", language)
    environ = wsgi_environ(path, method="HEAD", peer="127.0.0.1", headers=headers)
    expected = call_wsgi(python_app, environ)
    got = client.head(path, headers=headers)
    assert got.status_code == expected.status == 200
    for name in ("vary", "cache-control"):
        want = {v.strip().lower() for v in (expected.header(name) or "").split(",") if v.strip()}
        have = {v.strip().lower() for v in ",".join(got.headers.get_list(name)).split(",")} - {""}
        assert have == want, (name, have, want)


# -- a page nginx cannot edit, for a rule set that does not depend on the location ------------


@pytest.mark.parametrize("path", ["/range/a", "/a"])
def test_an_unexpected_range_goes_unedited_but_private_as_in_the_library(
    tmp_path: Path, city: Path, path: str
) -> None:
    """The notices cannot go into a 206: the page goes as it is, but no shared cache may keep
    it for other readers, though the rules do not depend on the location. An edited page
    keeps the origin's caching (every reader gets the same)."""
    from compliance.testing import call_wsgi, wsgi_environ

    rules = tmp_path / "everywhere.yaml"
    rules.write_text(h.EVERYWHERE)
    result = export_nginx([rules], geoip_db=city)
    write_export(result, tmp_path / "export")
    engine = Engine.from_paths([rules], geoip_db=city)
    app = ComplianceMiddleware(h.range_origin, engine)
    expected = call_wsgi(app, wsgi_environ(path, headers=[("Host", "www.example.org")]))
    engine.close()
    (tmp_path / "nginx").mkdir()
    for origin in h.serve(h.range_origin):
        for edge in h.start_nginx(tmp_path / "nginx", tmp_path / "export", origin.port):
            got = httpx.get(edge.url + path, headers={"Host": "www.example.org"})
    assert got.status_code == expected.status
    assert got.content == expected.body
    want = {v.strip() for v in (expected.header("cache-control") or "").split(",")}
    have = {v.strip() for v in got.headers["cache-control"].split(",")}
    assert have == want
    assert ("private" in want) == path.startswith("/range/")


# -- small rule sets, each exported on its own -------------------------------------------------


def test_one_value_for_a_header_two_rules_spell_in_two_cases(tmp_path: Path, city: Path) -> None:
    """Header names are case-insensitive: the library sends one `X-Robots-Tag`, the first
    rule's (by priority), spelled as that rule spells it. nginx grouped the rules' headers by
    exact spelling and sent both `X-Robots-Tag: noindex` and `x-robots-tag: none`."""
    rules = h.one_rule("a-first", "    headers: {X-Robots-Tag: noindex}\n", "    priority: 10\n")
    rules += h.one_rule("b-second", "    headers: {x-robots-tag: none}\n")
    with h.side_by_side(rules, "nginx", tmp_path, city) as (app, edge, _):
        want = h.library_raw(app, "/")
        got = h.edge_raw(edge, "/")
    assert h.header_values(want, "x-robots-tag") == [b"noindex"]
    assert h.header_values(got, "x-robots-tag") == [b"noindex"]
    location = (tmp_path / "export" / "location.conf").read_text()
    assert '"X-Robots-Tag"' in location
    assert '"x-robots-tag"' not in location


@pytest.mark.parametrize("rule_id", ["default", "include", "hostnames", "volatile"])
def test_a_block_rule_whose_id_is_a_map_parameter(rule_id: str, tmp_path: Path, city: Path) -> None:
    """A rule id is a map key (the block answered, its link, its locale): written as it
    is, `default` and `include` read as the map's own parameters, and nginx refused the
    configuration ("duplicate default map parameter", open() "<prefix>/en" failed)."""
    block = (
        '    paths: ["/blocked"]\n'
        "    block:\n      blocked_by: https://regulator.example.org/x\n"
        "      text: {en: Blocked., fr: Bloqué.}\n"
    )
    with h.side_by_side(h.one_rule(rule_id, block), "nginx", tmp_path, city) as (app, edge, _):
        want, got = h.library_raw(app, "/blocked"), h.edge_raw(edge, "/blocked")
        assert h.edge_raw(edge, "/")[0] == 200
    assert got[0] == want[0] == 451
    assert h.header_values(got, "link") == h.header_values(want, "link")
    assert h.header_values(got, "content-language") == h.header_values(want, "content-language")
    assert f'data-compliance-rule="{rule_id}"'.encode() in got[2]


def test_globs_longer_than_a_map_key_are_split_or_listed(tmp_path: Path, city: Path) -> None:
    """All host and path globs of a rule were one regex map key, and nginx reads at most
    4 KiB of a key ("too long parameter"): a UUID glob (32 `?`) alone made a configuration
    nginx refused. Runs of `?` are counted now, globs spread over several keys, and a glob
    too long on its own is listed and left out, the rest of its rule exported."""
    uuid = "/doc/????????-????-????-????-????????????"
    many = [f"/m{i}/?a?b?c?d?e" for i in range(12)]  # ~1,500 bytes of regex each
    overlong = "/o/" + "?x" * 30  # ~7,000 bytes even counted: no key holds it
    rules = h.one_rule("uuid-pages", f'    paths: ["{uuid}"]\n    headers: {{X-Doc: "yes"}}\n')
    rules += h.one_rule("many-paths", f"    paths: {many}\n    headers: {{X-Many: m}}\n")
    rules += h.one_rule(
        "overlong",
        f'    paths: ["/short/**", "{overlong}"]\n    exclude_paths: ["/short/{"?y" * 30}"]\n'
        "    headers: {X-Over: o}\n",
    )
    rules += h.one_rule("only-overlong", f'    paths: ["{overlong}"]\n    headers: {{X-Only: o}}\n')
    asked = [
        "/doc/123e4567-e89b-12d3-a456-426614174000",
        "/doc/123e4567-e89b-12d3-a456-42661417400",
        "/doc/123e4567-e89b-12d3-a456-4266141740%D0%B60",  # ж is one character
        *(f"/m{i}/1a2b3c4d5e" for i in (0, 5, 11)),
        "/m3/1a2b3c4d5",
        "/short/page",
    ]
    with h.side_by_side(rules, "nginx", tmp_path, city) as (app, edge, omissions):
        for path in asked:
            want, got = h.library_raw(app, path), h.edge_raw(edge, path)
            for name in ("x-doc", "x-many", "x-over"):
                assert h.header_values(got, name) == h.header_values(want, name), (path, name)
        assert h.header_values(h.edge_raw(edge, "/m7/1a2b3c4d5e"), "x-many") == [b"m"]
    http_conf = (tmp_path / "export" / "http.conf").read_text()
    assert max(map(len, http_conf.encode().splitlines())) < 4000
    assert len(omissions) == 4, omissions
    assert any(f"rule overlong: `paths` glob `{overlong}`" in o for o in omissions)
    assert any("rule overlong: `exclude_paths` glob `/short/?y" in o for o in omissions)
    assert any("rule only-overlong: none of its `paths` globs fits" in o for o in omissions)


@pytest.mark.parametrize("target", ["nginx", "cloudflare"])
def test_a_header_value_with_latin_1_text_is_listed_not_sent_as_other_text(
    tmp_path: Path, city: Path, target: str
) -> None:
    """The library sends a rule header's value as Latin-1 bytes (`caf\\xe9`); nginx sent the
    UTF-8 of its configuration and workerd UTF-8 too (`caf\\xc3\\xa9`, other text for the
    reader), and nothing said so. Such a header is now listed as left out, and not sent; the
    rule's others are."""
    rules = h.one_rule("latin", '    headers: {X-Note: "café", X-Plain: "cafe"}\n')
    with h.side_by_side(rules, target, tmp_path, city) as (app, edge, omissions):
        want, got = h.library_raw(app, "/"), h.edge_raw(edge, "/")
    assert h.header_values(want, "x-note") == [b"caf\xe9"]
    assert h.header_values(got, "x-note") == []
    assert h.header_values(got, "x-plain") == h.header_values(want, "x-plain") == [b"cafe"]
    assert len(omissions) == 1
    assert omissions[0].startswith("rule latin: header `X-Note`: its value has non-ASCII text")


def test_a_header_with_an_empty_value_is_listed(tmp_path: Path, city: Path) -> None:
    """The library sends a rule header with an empty value; nginx's add_header sends no
    header whose value is empty, and nothing said so. It is now listed; and a rule after it
    by priority naming the same header still does not send its value in its place."""
    rules = h.one_rule("empty", '    headers: {X-Empty: ""}\n', "    priority: 5\n")
    rules += h.one_rule("later", "    headers: {x-empty: later}\n")
    with h.side_by_side(rules, "nginx", tmp_path, city) as (app, edge, omissions):
        want, got = h.library_raw(app, "/"), h.edge_raw(edge, "/")
    assert h.header_values(want, "x-empty") == [b""]
    assert h.header_values(got, "x-empty") == []
    assert omissions == [
        "rule empty: header `X-Empty` with an empty value: nginx's add_header sends no header "
        "whose value is empty (not sent, where the library sends it empty)"
    ]

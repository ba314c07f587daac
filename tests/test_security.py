"""Security: spoofed client and CDN headers, escaping of everything rendered, debug output.

Both adapters are driven in-process with raw WSGI environs and raw ASGI scopes. Rendered
markup is checked by parsing it with html5lib and walking the tree against an allow-list,
not by looking for strings that should be absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import html5lib
import pytest

from compliance import cli, testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.errors import RuleError
from compliance.geo import Location
from compliance.loader import HTML_TAGS, lint, load_rules
from compliance.models import Notice
from compliance.render import notice_html
from compliance.testing import FixedGeolocator
from compliance.testing import TestResponse as Response
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

EXAMPLES = [Path(__file__).parent / "fixtures" / "examples"]  # block + header rules

PROXY = "10.0.0.1"  # the trusted proxy in front of the application
PEER = "81.169.145.105"  # an untrusted client talking to the application directly (DE)
RU_IP = "77.88.55.88"
UA43_IP = "1.231.232.1"
RULE = "ru-undesirable-organization"
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Hi</p></body></html>\n"

GEO = FixedGeolocator(
    {PEER: Location.of("DE"), RU_IP: Location.of("RU"), UA43_IP: Location.of("UA", "43")}
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=GEO)


# -- driving the adapters by hand -------------------------------------------------------------


def page_app(page: bytes = PAGE, extra: list[tuple[str, str]] | None = None) -> Any:
    headers = [("Content-Type", "text/html; charset=utf-8"), *(extra or [])]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [*headers, ("Content-Length", str(len(page)))])
        return [page]

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]
        raw.append((b"content-length", str(len(page)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": page})

    app.asgi = asgi  # type: ignore[attr-defined]
    return app


def call_wsgi(
    mw: Any, peer: str, headers: list[tuple[str, str]], path: str = "/", method: str = "GET"
) -> Response:
    return testing.call_wsgi(
        mw, testing.wsgi_environ(path, peer=peer, method=method, headers=headers)
    )


def call_asgi(
    mw: Any, peer: str, headers: list[tuple[str, str]], path: str = "/", method: str = "GET"
) -> Response:
    return testing.call_asgi(
        mw, testing.asgi_scope(path, peer=peer, method=method, headers=headers)
    )


def wsgi(engine: Any, app: Any = None, **options: Any) -> Callable[..., Response]:
    mw = WsgiMiddleware(app or page_app(), engine, **options)
    return lambda peer, headers=(), **kw: call_wsgi(mw, peer, list(headers), **kw)


def asgi(engine: Any, app: Any = None, **options: Any) -> Callable[..., Response]:
    mw = AsgiMiddleware((app or page_app()).asgi, engine, **options)
    return lambda peer, headers=(), **kw: call_asgi(mw, peer, list(headers), **kw)


ADAPTERS = [pytest.param(wsgi, id="wsgi"), pytest.param(asgi, id="asgi")]


# -- spoofing ---------------------------------------------------------------------------------

# (headers a client might send, the CDN provider that reads them, where a trusted proxy
# saying the same thing puts the reader)
SPOOFS = [
    pytest.param([("X-Forwarded-For", RU_IP)], None, "RU", id="xff"),
    pytest.param([("X-Forwarded-For", f"{RU_IP}, {UA43_IP}")], None, "UA-43", id="xff-list"),
    pytest.param(
        [("X-Forwarded-For", RU_IP), ("X-Forwarded-For", PROXY)], None, "RU", id="xff-repeated"
    ),
    pytest.param([("X-Forwarded-For", f"[{RU_IP}]:1234")], None, "RU", id="xff-bracketed"),
    pytest.param([("X-Forwarded-For", f"{RU_IP}, _hidden")], None, None, id="xff-unreadable"),
    pytest.param([("Forwarded", f"for={RU_IP};proto=https")], None, "RU", id="forwarded"),
    pytest.param([("Forwarded", f'for="{UA43_IP}:443"')], None, "UA-43", id="forwarded-port"),
    pytest.param(
        [("Forwarded", f"for={PEER}, for={RU_IP}"), ("X-Forwarded-For", PEER)],
        None,
        "RU",
        id="forwarded-over-xff",
    ),
    pytest.param([("X-Real-IP", RU_IP)], None, "RU", id="x-real-ip"),
    pytest.param([("CF-IPCountry", "RU")], "cloudflare", "RU", id="cf-ipcountry"),
    pytest.param(
        [("CF-IPCountry", "UA"), ("CF-Region-Code", "43")], "cloudflare", "UA-43", id="cf-region"
    ),
    pytest.param(
        [("CloudFront-Viewer-Country", "RU")], "cloudfront", "RU", id="cloudfront-country"
    ),
    pytest.param(
        [("CloudFront-Viewer-Country", "UA"), ("CloudFront-Viewer-Country-Region", "43")],
        "cloudfront",
        "UA-43",
        id="cloudfront-region",
    ),
    pytest.param(
        [
            ("X-Forwarded-For", RU_IP),
            ("Forwarded", f"for={RU_IP}"),
            ("X-Real-IP", RU_IP),
            ("CF-IPCountry", "RU"),
            ("CloudFront-Viewer-Country", "RU"),
        ],
        "cloudflare",
        "RU",
        id="everything-at-once",
    ),
]


def _where(decision: Any) -> str | None:
    location = decision.location
    if location.country is None:
        return None
    return location.subdivisions[0] if location.subdivisions else location.country


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(("spoof", "provider", "believed"), SPOOFS)
def test_spoofed_headers_from_an_untrusted_peer_change_nothing(
    engine: Engine,
    adapter: Callable[..., Callable[..., Response]],
    spoof: list[tuple[str, str]],
    provider: str | None,
    believed: str | None,
) -> None:
    configurations = {
        "no-trusted-proxies": adapter(engine),
        "untrusted-peer": adapter(engine, trusted_proxies=["10.0.0.0/8"], geo_header=provider),
        "loopback-only": adapter(engine, trusted_proxies=["127.0.0.1", "::1"]),
    }
    for name, client in configurations.items():
        baseline = client(PEER)
        assert baseline.notices == [], name
        assert _where(baseline.decision) == "DE", name
        spoofed = client(PEER, spoof)
        assert spoofed.status == baseline.status, name
        assert spoofed.headers == baseline.headers, name
        assert spoofed.body == baseline.body == PAGE, name
        assert _where(spoofed.decision) == "DE", name
        assert spoofed.decision.applied == baseline.decision.applied, name


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(("Forwarded", f"for={PEER}"), id="forwarded"),
        pytest.param(("Forwarded", "for=127.0.0.1"), id="forwarded-loopback"),
        pytest.param(("X-Real-IP", PEER), id="x-real-ip"),
    ],
)
def test_a_readers_own_forwarding_header_through_an_xff_proxy_is_ignored(
    engine: Engine, adapter: Callable[..., Callable[..., Response]], header: tuple[str, str]
) -> None:
    """Issue 14.1: a proxy that writes only X-Forwarded-For passes the reader's own
    ``Forwarded`` through; believing it would let a reader in Russia pass as German, or as
    loopback for the debug header."""
    client = adapter(engine, trusted_proxies=["10.0.0.0/8"], debug_headers=True)
    response = client(PROXY, [header, ("X-Forwarded-For", RU_IP)])
    assert _where(response.decision) == "RU"
    assert response.body != PAGE
    assert all(k.lower() != "x-compliance-decision" for k, _ in response.headers)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(("spoof", "provider", "believed"), SPOOFS)
def test_the_same_headers_from_a_trusted_proxy_are_believed(
    engine: Engine,
    adapter: Callable[..., Callable[..., Response]],
    spoof: list[tuple[str, str]],
    provider: str | None,
    believed: str | None,
) -> None:
    # The counterpart of the test above: it shows the headers would change the decision,
    # when the proxy is configured as the one that writes them.
    first = spoof[0][0].lower()
    written = first if first in ("forwarded", "x-real-ip") else "x-forwarded-for"
    client = adapter(
        engine, trusted_proxies=["10.0.0.0/8"], geo_header=provider, forwarded_header=written
    )
    baseline = client(PROXY)
    assert _where(baseline.decision) is None  # a private address: unknown, nothing shown
    assert baseline.body == PAGE
    response = client(PROXY, spoof)
    assert _where(response.decision) == believed
    if believed is None:  # unreadable hop: the client is unknown, not the address further left
        assert response.body == PAGE
    else:
        assert response.notices == [RULE]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_cdn_headers_are_ignored_unless_a_provider_is_configured(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    # Trusting a proxy's forwarding headers does not make its country headers believed.
    client = adapter(engine, trusted_proxies=["10.0.0.0/8"])
    for headers in (
        [("CF-IPCountry", "RU")],
        [("CloudFront-Viewer-Country", "UA"), ("CloudFront-Viewer-Country-Region", "43")],
    ):
        response = client(PROXY, headers)
        assert _where(response.decision) is None
        assert response.body == PAGE


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_client_written_hops_left_of_the_proxy_are_never_used(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    client = adapter(engine, trusted_proxies=["10.0.0.0/8"])
    # The client wrote RU_IP; the proxy appended the address it saw (PEER, in Germany).
    response = client(PROXY, [("X-Forwarded-For", f"{RU_IP}, {PEER}")])
    assert _where(response.decision) == "DE"
    assert response.body == PAGE
    # Another trusted proxy in the chain is skipped, the client's word still is not used.
    response = client(PROXY, [("X-Forwarded-For", f"{RU_IP}, {PEER}, 10.9.9.9")])
    assert _where(response.decision) == "DE"


def test_many_header_lines_cost_time_in_proportion(engine: Engine) -> None:
    """An ASGI server hands each header line over as its own pair, and one with no limit on
    their number (uvicorn with httptools) passes 100,000 lines of a name on: joining them one
    by one copied the growing value again at every line, quadratic in the lines (seconds of
    CPU for one request). A WSGI server has joined them before the middleware sees them."""
    import time

    middleware = AsgiMiddleware(page_app().asgi, engine, trusted_proxies=["10.0.0.0/8"])
    lines = [("X-Padding", "a" * 16)] * 100_000
    hops = [("X-Forwarded-For", "10.1.1.1")] * 20_000 + [("X-Forwarded-For", RU_IP)]
    scope = testing.asgi_scope("/", peer=PROXY, headers=[*lines, *hops])
    started = time.perf_counter()
    response = testing.call_asgi(middleware, scope)
    assert time.perf_counter() - started < 1.0  # linear: ~0.1 s
    assert _where(response.decision) == "RU"  # the last line is the nearest proxy's


# -- debug output -----------------------------------------------------------------------------

DEBUG = "X-Compliance-Decision"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_debug_header_is_off_by_default_even_for_loopback(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    client = adapter(engine)
    for peer in ("127.0.0.1", "::1", PEER):
        assert client(peer).header(DEBUG) is None


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_debug_header_only_for_trusted_addresses_and_not_spoofable(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    client = adapter(engine, debug_headers=True, trusted_proxies=["10.0.0.0/8"])
    assert client("127.0.0.1").header(DEBUG) == "none; location=unknown; source=none"
    assert client(PEER).header(DEBUG) is None
    # An untrusted peer claiming to be loopback.
    for name in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        value = "for=127.0.0.1" if name == "Forwarded" else "127.0.0.1"
        assert client(PEER, [(name, value)]).header(DEBUG) is None
    # Through the trusted proxy, a client-written loopback hop is left of the real client.
    assert client(PROXY, [("X-Forwarded-For", f"127.0.0.1, {PEER}")]).header(DEBUG) is None
    assert client(PROXY).header(DEBUG) is None  # the proxy itself is not a debugger


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_debug_header_on_a_451_only_for_trusted_addresses(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    geo = FixedGeolocator(Location.of("DE"))
    blocking = Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=geo)
    client = adapter(blocking, debug_headers=True)
    headers = [("Host", "news.example")]
    path = "/news/2024/withdrawn-article.html"
    assert client(PEER, headers, path=path).status == 451
    assert client(PEER, headers, path=path).header(DEBUG) is None
    shown = client("127.0.0.1", headers, path=path).header(DEBUG)
    assert shown is not None
    assert shown.startswith("example-court-order-block;")


def test_cli_trace_is_only_printed_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--country", "RU"]) == 0
    assert "Trace:" not in capsys.readouterr().out
    assert cli.main(["check", "--country", "RU", "--explain"]) == 0
    assert "Trace:" in capsys.readouterr().out


# -- escaping ---------------------------------------------------------------------------------

# Modelled on OWASP's XSS filter evasion cheat sheet.
PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//xss.example/x.js></SCRIPT>",
    "<ScRiPt>alert(String.fromCharCode(88,83,83))</ScRiPt>",
    '"><img src=x onerror=alert(1)>',
    "'><img src=x onerror=alert(1)>",
    "`><img src=x onerror=alert(1)>",
    '" onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    "` onmouseover=`alert(1)`",
    "<img src=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href="  &#14;  javascript:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)//",
    "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "</aside><script>alert(1)</script><aside>",
    "</p></aside></body><script>alert(1)</script>",
    "</main><script>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<div style="width: expression(alert(1));">x</div>',
    "<style>@import 'javascript:alert(1)';</style>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<scr\x00ipt>alert(1)</scr\x00ipt>",
    "<img src=x\x00 onerror=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "\u003cscript\u003ealert(1)\u003c/script\u003e",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    "<<script>alert(1);//<</script>",
    "<object data=javascript:alert(1)>",
    "<base href=javascript:alert(1)//>",
    "<form><button formaction=javascript:alert(1)>x",
    "<input onfocus=alert(1) autofocus>",
    "<details open ontoggle=alert(1)>",
    "<template><script>alert(1)</script></template>",
    "<textarea></textarea><script>alert(1)</script>",
]
IDS = [f"p{i:02d}" for i in range(len(PAYLOADS))]

NOTICE_ELEMENTS = {
    "aside": {"class", "data-compliance-rule", "lang", "role", "dir"},
    "p": set(),
    "a": {"href", "rel"},
    "strong": set(),
    "em": set(),
    "br": set(),
    "ul": set(),
    "ol": set(),
    "li": set(),
}
SAFE_SCHEMES = ("http:", "https:", "mailto:")


def _url_scheme(href: str) -> str | None:
    # Browsers drop ASCII whitespace and control characters inside a scheme.
    cleaned = re.sub(r"[\x00-\x20\x7f]", "", href).lower()
    found = re.match(r"([a-z][a-z0-9+.-]*):", cleaned)
    return found.group(1) + ":" if found else None


def assert_safe(root: Element, allowed: Mapping[str, set[str]], where: str = "") -> None:
    """Every element and attribute under ``root`` is allowed; no handlers, no script URLs."""
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str) or tag == "DOCUMENT_FRAGMENT":
            continue  # comments and the fragment root
        assert tag in allowed, f"{where}: element <{tag}> is not allowed"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: handler {name}={value!r}"
            assert name in allowed[tag], f"{where}: attribute {name} on <{tag}>"
            if name == "href":
                scheme = _url_scheme(value)
                assert scheme is None or scheme in SAFE_SCHEMES, f"{where}: href {value!r}"


BLOCK_PAGE_ELEMENTS = {
    **NOTICE_ELEMENTS,
    "html": {"lang", "dir"},
    "head": set(),
    "meta": {"charset", "name", "content"},
    "title": {"lang", "dir"},
    "body": set(),
    "main": {"class", "data-compliance-rule"},
    "h1": {"lang", "dir"},
    "p": {"class"},
    "a": {"href", "rel", "dir"},  # the blocked-by link reads left to right
}


def assert_block_page_safe(page: Element, where: str) -> None:
    """:func:`assert_safe` for a 451 page: its own elements, and the rule's sanitized
    markup; ``dir`` on a link is the page's blocked-by link's alone, never the rule's."""
    assert_safe(page, BLOCK_PAGE_ELEMENTS, where)
    directed = [a.attrib for a in page.iter("a") if "dir" in a.attrib]
    assert [(a.get("rel"), a["dir"]) for a in directed] == [("blocked-by", "ltr")], where


def fragment(markup: str) -> Element:
    return html5lib.parseFragment(markup, namespaceHTMLElements=False)


def document(markup: bytes | str) -> Element:
    return html5lib.parse(markup, namespaceHTMLElements=False)


def notices_of(root: Element) -> list[Element]:
    return [e for e in root.iter("aside") if e.get("class") == "compliance-notice"]


def _text(element: Element) -> str:
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip()


def _plain(payload: str) -> str:
    # What the text survives as: whitespace collapsed; html5lib drops NUL from text.
    return re.sub(r"\s+", " ", payload.replace("\x00", "")).strip()


def _yaml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def _rule_file(folder: Path, *, notice: str, block: str | None = None) -> Path:
    body = f"""\
version: 1
rules:
  - id: payload-notice
    title: payload notice
    jurisdictions: [RU]
    notice:
{notice}
"""
    if block is not None:
        body += f"""\
  - id: payload-block
    title: payload block
    jurisdictions: [DE]
    block:
      blocked_by: https://www.example.org/legal
{block}
"""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(body, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def bundled() -> Any:
    return load_rules(None)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_site_variable_is_escaped(bundled: Any, payload: str) -> None:
    engine = Engine(bundled, GEO, variables={"organization": payload})
    decision = engine.decide(ip=RU_IP, url="https://www.example.org/")
    for locale in ("en", "ru", "uk"):
        markup = decision.notices[0].html(locale)
        root = fragment(markup)
        assert_safe(root, NOTICE_ELEMENTS, f"{locale}: {markup}")
        (aside,) = notices_of(root)
        assert _plain(payload) in _text(aside)
        assert _plain(payload) in _plain(decision.notices[0].text(locale))


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_rule_variable_text_and_block_are_escaped(tmp_path: Path, payload: str) -> None:
    literal = payload.replace("{", "{{").replace("}", "}}")
    notice = f"""\
      variables: {{who: {_yaml(payload)}}}
      text:
        en: {_yaml("Before {who} and " + literal + " after.")}
"""
    block = f"""\
      variables: {{who: {_yaml(payload)}}}
      text:
        en: {_yaml("Blocked: {who} / " + literal)}
"""
    folder = _rule_file(tmp_path, notice=notice, block=block)
    geo = FixedGeolocator({RU_IP: Location.of("RU"), PEER: Location.of("DE")})
    engine = Engine.from_paths([folder], geolocator=geo)
    plain = _plain(payload)

    notice_markup = engine.decide(ip=RU_IP).notices[0].html()
    root = fragment(notice_markup)
    assert_safe(root, NOTICE_ELEMENTS, notice_markup)
    assert _text(notices_of(root)[0]).count(plain) == 2

    block_match = engine.decide(ip=PEER).block
    assert block_match is not None
    page = document(block_match.html())
    assert_block_page_safe(page, "451 page")
    main = next(page.iter("main"))
    assert _text(main).count(plain) == 2
    data = json.loads(block_match.json())
    assert data["message"] == re.sub(r"\s+", " ", f"Blocked: {payload} / {payload}").strip()


# The html: form: tags outside the allow-list, other attributes and links of other schemes
# are refused when the file loads; what loads is sanitized, and so is what lint refuses,
# rendered anyway (the sanitizer stands behind lint for what it cannot see: a site's
# values, a rule built in Python). Every payload is tried, then attacks that use only
# allowed tags.
HTML_ONLY = [
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="http://ok.example/" onmouseover="alert(1)">x</a>',
    '<a href="http://ok.example/" style="background:url(javascript:alert(1))">x</a>',
    '<a href="http://ok.example/" target="_blank" id="x" class="y">x</a>',
    '<p onclick="alert(1)">x</p>',
    "<p/onclick=alert(1)>x</p>",
    '<strong style="width: expression(alert(1))">x</strong>',
    "<ul><li onmouseover=alert(1)>x</li></ul>",
    '<em title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">x</em>',
    '<p lang="ar" dir="rtl" id="x" class="y"><strong title="t">x</strong></p>',
    "<br onload=alert(1)>",
    '<a href="mailto:legal@example.org?subject=&quot;onmouseover=alert(1)">mail</a>',
]


def _disallowed_tags(text: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)", text)} - HTML_TAGS


@pytest.mark.parametrize(
    "payload", PAYLOADS + HTML_ONLY, ids=IDS + [f"h{i:02d}" for i in range(len(HTML_ONLY))]
)
def test_html_texts_are_sanitized_or_refused(tmp_path: Path, payload: str) -> None:
    literal = payload.replace("{", "{{").replace("}", "}}")
    notice = f"""\
      variables: {{who: {_yaml(payload)}}}
      html:
        en: {_yaml("<p>{who}</p>" + literal + '<p><a href="https://ok.example/">ok</a></p>')}
"""
    folder = _rule_file(tmp_path, notice=notice)
    refused = lint([folder])
    if refused or _disallowed_tags(payload):
        assert refused
        assert all("is not allowed" in f.message for f in refused)
        with pytest.raises(RuleError):
            Engine.from_paths([folder], geolocator=GEO)
        text = "<p>{who}</p>" + literal + '<p><a href="https://ok.example/">ok</a></p>'
        markup = notice_html("r", Notice(variables={"who": payload}, html={"en": text}), "en", {})
        assert_safe(fragment(markup), NOTICE_ELEMENTS, markup)
        return
    engine = Engine.from_paths([folder], geolocator=GEO)
    notice_match = engine.decide(ip=RU_IP).notices[0]
    markup = notice_match.html()
    root = fragment(markup)
    assert_safe(root, NOTICE_ELEMENTS, markup)
    hrefs = [a.get("href") for a in root.iter("a")]
    assert "https://ok.example/" in hrefs
    # The variable's value is text, even inside sanitized HTML.
    assert _plain(payload) in _text(root)
    notice_match.text()  # the plain-text form renders too


@pytest.mark.parametrize("payload", PAYLOADS[:12] + PAYLOADS[22:26], ids=IDS[:12] + IDS[22:26])
def test_cli_json_output_is_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, payload: str
) -> None:
    if "\x00" in payload:
        pytest.skip("a NUL cannot be passed on a command line")
    args = ["check", "--country", "RU", "--format", "json", "--set", f"organization={payload}"]
    assert cli.main(args) == 0
    document_ = json.loads(capsys.readouterr().out)
    (notice,) = document_["notices"]
    root = fragment(notice["html"])
    assert_safe(root, NOTICE_ELEMENTS, notice["html"])
    assert _plain(payload) in notice["text"]


# -- values reflected from the request ---------------------------------------------------------

REFLECTED = [p for p in PAYLOADS if "\x00" not in p and "\n" not in p]


def _latin1(value: str) -> str:
    return value.encode("utf-8").decode("latin-1")  # how a server hands over header bytes


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_request_values_are_never_reflected_into_markup(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    client = adapter(engine, css=True, debug_headers=True, debug_networks=[RU_IP])
    page_elements = {
        **NOTICE_ELEMENTS,
        "html": set(),
        "head": set(),
        "title": set(),
        "body": set(),
        "style": set(),
    }
    for payload in REFLECTED:
        headers = [
            ("Accept-Language", _latin1(payload)),
            ("Host", _latin1(payload)),
            ("X-Compliance-Tags", _latin1(payload)),
            ("User-Agent", _latin1(payload)),
        ]
        response = client(RU_IP, headers, path="/" + _latin1(payload))
        assert response.status == 200
        root = document(response.body)
        assert_safe(root, page_elements, payload)
        (aside,) = notices_of(root)
        assert aside.get("lang") == "ru"  # Russia's language: the header matched nothing
        decoded = response.body.decode("utf-8")
        assert _plain(payload) not in _text(root)
        assert "alert(" not in decoded
        for name, value in response.headers:
            assert "\r" not in value, name
            assert "\n" not in value, name


LANG_ATTACKS = [
    '"><script>alert(1)</script>',
    'ru" onmouseover="alert(1)',
    "ru' onmouseover='alert(1)",
    "ru onmouseover=alert(1)",
    "ru`onmouseover=alert(1)`",
    "en&quot; onmouseover=&quot;alert(1)",
    'uk\u0000"><svg onload=alert(1)>',
]


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("lang", LANG_ATTACKS)
def test_page_lang_cannot_break_out_of_the_notice_lang_attribute(
    engine: Engine, adapter: Callable[..., Callable[..., Response]], lang: str
) -> None:
    quoted = lang.replace("&", "&amp;").replace('"', "&quot;")
    page = (
        f'<!DOCTYPE html><html lang="{quoted}"><head><title>t</title></head>'
        "<body><p>Hi</p></body></html>"
    ).encode()
    app = page_app(page)
    client = adapter(engine, app)
    response = client(RU_IP, [("Accept-Language", "de")])
    root = document(response.body)
    (aside,) = notices_of(root)
    assert aside.get("lang") in ("en", "ru", "uk")
    assert_safe(aside, NOTICE_ELEMENTS, lang)
    assert [e.tag for e in root.iter() if e.tag in ("script", "svg")] == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_page_nonce_is_escaped_into_the_style_element(
    engine: Engine, adapter: Callable[..., Callable[..., Response]]
) -> None:
    page = (
        b"<!DOCTYPE html><html><head><script nonce='a\"><script>alert(1)</script>'></script>"
        b"</head><body><p>Hi</p></body></html>"
    )
    client = adapter(engine, page_app(page), css=True)
    response = client(RU_IP)
    root = document(response.body)
    scripts = list(root.iter("script"))
    assert len(scripts) == 1  # the page's own, and no other
    for style in root.iter("style"):
        assert set(style.attrib) <= {"nonce"}
        assert "alert" not in "".join(style.itertext())


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_block_page_and_json_reflect_nothing_from_the_request(
    adapter: Callable[..., Callable[..., Response]],
) -> None:
    blocking = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("DE"))
    )
    client = adapter(blocking)
    path = "/news/2024/withdrawn-article.html"
    for payload in REFLECTED[:10]:
        for accept in ("text/html", "application/json"):
            headers = [
                ("Host", "news.example"),
                ("Accept", accept),
                ("Accept-Language", _latin1(payload)),
                ("X-Compliance-Tags", _latin1(payload)),
            ]
            response = client(PEER, headers, path=path)
            assert response.status == 451
            text = response.body.decode("utf-8")
            assert "alert(" not in text
            if accept == "application/json":
                assert json.loads(text)["rule"] == "example-court-order-block"
            else:
                assert_block_page_safe(document(text), payload)


def test_html_keeps_no_attribute_outside_the_allow_list() -> None:
    # nh3 (ammonia) allows `lang` and `title` on every tag unless told otherwise.
    from compliance.models import Notice
    from compliance.render import message_body

    notice = Notice(html={"en": '<p lang="fr" title="t"><em title="x">a</em></p>'})
    assert message_body(notice, "en", {}) == "<p><em>a</em></p>"


def test_assert_safe_catches_what_it_should() -> None:
    # The checker itself must fail on each kind of leak, or the tests above prove nothing.
    leaks = [
        "<script>alert(1)</script>",
        "<p onclick=alert(1)>x</p>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        "<aside lang=ru onmouseover=x>y</aside>",
        "<p style=x>y</p>",
    ]
    for leak in leaks:
        with pytest.raises(AssertionError):
            assert_safe(fragment(leak), NOTICE_ELEMENTS, leak)


# -- the request as the application's router reads it ------------------------------------------

BLOCKED = "/news/2024/withdrawn-article.html"


@pytest.mark.parametrize("key", ["RAW_URI", "REQUEST_URI"])
@pytest.mark.parametrize("fragment", ["#/../../x", "#", "#x?y"])
def test_a_fragment_in_the_request_line_escapes_no_block(
    engine: Engine, key: str, fragment: str
) -> None:
    """Servers drop the fragment from PATH_INFO and the router serves the page: the path the
    rules see must drop it too (gunicorn puts the raw target in RAW_URI, others in
    REQUEST_URI, fragment and all)."""
    app = WsgiMiddleware(page_app(), engine)
    environ = testing.wsgi_environ(BLOCKED, peer=PEER, headers=[("Host", "news.example")])
    environ[key] = BLOCKED + fragment
    assert testing.call_wsgi(app, environ).status == 451


def test_an_asgi_fragment_in_raw_path_escapes_no_block(engine: Engine) -> None:
    scope = testing.asgi_scope(BLOCKED, peer=PEER, headers=[("Host", "news.example")])
    scope["raw_path"] = (BLOCKED + "#/../../x").encode()
    assert testing.call_asgi(AsgiMiddleware(page_app().asgi, engine), scope).status == 451


@pytest.mark.parametrize(
    ("root_path", "path"),
    [("/app", "/app" + BLOCKED), ("/app", BLOCKED), ("", BLOCKED)],
    ids=["path-holds-root", "path-without-root", "no-root"],
)
def test_asgi_without_raw_path_matches_the_path_the_router_reads(
    tmp_path: Path, root_path: str, path: str
) -> None:
    """raw_path is optional in ASGI; ``path`` holds ``root_path`` in today's servers and
    not in older ones: either way the rules see root_path once."""
    (tmp_path / "r.yaml").write_text(
        "version: 1\nrules:\n  - id: b\n    title: B\n    jurisdictions: ['*']\n"
        f"    paths: ['{'/app' if root_path else ''}/news/**']\n"
        "    block: {blocked_by: 'https://example.org/', text: {en: Blocked.}}\n"
    )
    mounted = Engine.from_paths([tmp_path], geolocator=GEO)
    scope = testing.asgi_scope(BLOCKED, peer=PEER)
    scope.pop("raw_path")
    scope["root_path"], scope["path"] = root_path, path
    assert testing.call_asgi(AsgiMiddleware(page_app().asgi, mounted), scope).status == 451


@pytest.mark.parametrize("header", [("HX-Request", "true"), ("Turbo-Frame", "main")])
def test_a_partial_page_header_does_not_strip_the_notice_from_a_document(
    engine: Engine, header: tuple[str, str]
) -> None:
    """A document with its optional <html>, <head> and <body> tags left out (as minifiers
    write it) is a document, not a fragment: a reader's own htmx or Turbo header does not
    take its notice away."""
    minified = b"<!DOCTYPE html><meta charset=utf-8><title>t</title><p>Hi</p>\n"
    app = WsgiMiddleware(page_app(minified), engine)
    environ = testing.wsgi_environ("/", peer=RU_IP, headers=[header])
    assert testing.call_wsgi(app, environ).notices == [RULE]


def test_a_block_by_tag_holds_among_many_other_tags(tmp_path: Path) -> None:
    """Tags the rules do not look at are dropped before the cache bound, not the ones they
    do: a blocked tag after 64 keywords still blocks."""
    (tmp_path / "r.yaml").write_text(
        "version: 1\nrules:\n  - id: b\n    title: B\n    jurisdictions: ['*']\n"
        "    tags: [banned-org]\n"
        "    block: {blocked_by: 'https://example.org/', text: {en: Blocked.}}\n"
    )
    tagged = Engine.from_paths([tmp_path], geolocator=GEO)
    keywords = ", ".join([f"keyword-{i}" for i in range(500)] + ["banned-org"])
    app = WsgiMiddleware(page_app(extra=[("X-Compliance-Tags", keywords)]), tagged)
    assert testing.call_wsgi(app, testing.wsgi_environ("/", peer=PEER)).status == 451
    many = [f"keyword-{i}" for i in range(500)] + ["banned-org"]
    assert tagged.decide(location=Location.of("DE"), path="/", tags=many).block is not None

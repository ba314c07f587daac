"""``compliance demo``: a local site for previewing rules, with a location simulator.

The demo is a pure ASGI application served by uvicorn on 127.0.0.1 (on another address
only when asked, with a warning). Every page except the demo's own tools goes through
:class:`compliance.asgi.ComplianceMiddleware`, exactly as a real site would, so what a rule
author sees is what readers get:

- ``/`` (and any other path): a sample article with its own small inline script and a
  ``<!-- compliance:notices -->`` marker under the headline;
- ``/simulate?country=..&subdivision=..&lang=..``: the location simulator. It stores the
  choice in a cookie and sends the browser back to the article;
- ``/rules``: every loaded rule, its notice rendered in each of its locales, and where it
  applies.

The simulator stores the chosen reader in a cookie the client wrote, and the demo turns it
into what the middleware's own ``simulate_from=`` feature reads (an ``X-Compliance-Simulate``
header) or into the client address the middleware geolocates. Believing the client is only
acceptable on a developer's own machine: the demo answers loopback Host names only (and
the address it listens on), and no library default ever simulates anything. Rule files are
watched and reloaded, so editing a rule and refreshing the page previews the change. uvicorn
is imported only when :func:`run_demo` runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import functools
import html
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import babel
import pycountry

from .asgi import ComplianceMiddleware
from .core import STATE_DECISION, STATE_TAGS, read_decision
from .decision import Decision, NoticeMatch, Request
from .engine import CompiledRule, Engine
from .errors import ConfigurationError, VariableMissing
from .geo import Location
from .geo.location import country_codes
from .globs import reference_match
from .http import normalize_host
from .models import Block, Notice, Texts, VariableValue
from .render import DEFAULT_CSS, language_attributes, message_body, notice_html, withhold_html

__all__ = ["COOKIE", "Simulation", "create_app", "demo_engine", "run_demo"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "compliance_demo"
"""The cookie that holds the simulated reader."""

_LANGUAGE = re.compile(r"^[A-Za-z0-9_;=.,* -]{1,100}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_IP = re.compile(r"^[0-9A-Fa-f.:]{2,45}$")
_PAGE_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_LANGUAGES = ("en", "ru", "uk", "de", "fr", "pl")
_METHODS = ("GET", "HEAD")
"""The methods the demo answers (the simulator's form is sent with GET); others get 405."""


# -- the simulated reader ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Simulation:
    """Who the demo pretends the reader is. Empty fields leave the real request alone.

    >>> sim = Simulation.from_query("country=ua&subdivision=43&lang=uk")
    >>> sim.country, sim.subdivisions, sim.language
    ('UA', ('UA-43',), 'uk')
    >>> Simulation.from_cookie(sim.cookie_value()) == sim
    True
    >>> Simulation.from_query("country=Narnia").country is None
    True
    """

    country: str | None = None
    subdivisions: tuple[str, ...] = ()
    language: str | None = None
    ip: str | None = None
    host: str | None = None
    tags: tuple[str, ...] = ()
    page_language: str | None = None

    @classmethod
    def from_query(cls, query: str) -> Simulation:
        """Read ``country``, ``subdivision``, ``lang``, ``ip``, ``host``, ``tags`` and
        ``page`` (the article's own language); anything malformed is dropped."""
        fields: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=False):
            fields.setdefault(key, value.strip())
        location = None
        country = fields.get("country")
        if country:
            # One subdivision: the middleware's simulation header carries one.
            subdivisions = [s for s in re.split(r"[\s,]+", fields.get("subdivision", "")) if s][:1]
            try:
                location = Location.of(country, *subdivisions)
            except ConfigurationError:
                try:
                    location = Location.of(country)
                except ConfigurationError:
                    location = None
        language = fields.get("lang")
        ip = fields.get("ip")
        host = normalize_host(fields.get("host"))  # as the middleware reads Host
        page = fields.get("page")
        tags = tuple(t for t in re.split(r"[\s,]+", fields.get("tags", "")) if _TAG.match(t))
        return cls(
            country=location.country if location else None,
            subdivisions=location.subdivisions if location else (),
            language=language if language and _LANGUAGE.match(language) else None,
            ip=ip if ip and _IP.match(ip) and location is None else None,
            host=host if host and _HOST.match(host) else None,
            tags=tags[:10],
            page_language=page if page and _PAGE_LANGUAGE.match(page) else None,
        )

    @classmethod
    def from_cookie(cls, value: str | None) -> Simulation:
        """The simulation stored in the cookie value (``Simulation()`` when there is none)."""
        if not value:
            return cls()
        return cls.from_query(unquote(value))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> Simulation:
        """The simulation in a request's ``cookie`` header (lower-case header names)."""
        return cls.from_cookie(_cookie(headers or {}, COOKIE))

    def query(self) -> str:
        """The simulation as a query string (what ``/simulate`` reads)."""
        pairs = [
            ("country", self.country or ""),
            ("subdivision", ",".join(self.subdivisions)),
            ("lang", self.language or ""),
            ("ip", self.ip or ""),
            ("host", self.host or ""),
            ("tags", ",".join(self.tags)),
            ("page", self.page_language or ""),
        ]
        return urlencode([(k, v) for k, v in pairs if v])

    def cookie_value(self) -> str:
        """The simulation as a cookie value (quoted: no ``;``, ``,`` or spaces)."""
        return quote(self.query(), safe="")

    @property
    def location(self) -> Location | None:
        """The simulated location, when a country was chosen."""
        if self.country is None:
            return None
        return Location.of(self.country, *self.subdivisions, source="simulated")

    def header(self) -> str | None:
        """The ``X-Compliance-Simulate`` value for the chosen location (``CC`` or
        ``CC-SUB``: the middleware takes one subdivision, so a simulation holds one).

        >>> Simulation(country="UA", subdivisions=("UA-43",)).header()
        'UA-43'
        """
        if self.country is None:
            return None
        return self.subdivisions[0] if self.subdivisions else self.country

    def describe(self) -> str:
        where = "/".join([self.country, *self.subdivisions]) if self.country else None
        parts = [
            f"location {where}" if where else f"IP {self.ip}" if self.ip else "real location",
            f"language {self.language}" if self.language else "browser language",
        ]
        if self.host:
            parts.append(f"host {self.host}")
        if self.tags:
            parts.append(f"tags {', '.join(self.tags)}")
        if self.page_language:
            parts.append(f"page in {self.page_language}")
        return ", ".join(parts)


def _cookie(headers: Mapping[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip('"')
    return None


# -- HTTP helpers -----------------------------------------------------------------------------


async def _respond(
    send: Send,
    status: int,
    body: str = "",
    *,
    content_type: str = "text/html; charset=utf-8",
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    data = body.encode("utf-8")
    raw = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(data)).encode("latin-1")),
        (b"cache-control", b"no-store"),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers") or ():
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[name] = f"{out[name]}; {text}" if name == "cookie" and name in out else text
    return out


class _BadRequest(Exception):
    """A request the demo refuses with 400."""


_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


def _safe_next(value: str | None) -> str:
    """Only local paths: the simulator must not become an open redirect.

    Browsers drop tabs and newlines from URLs and read ``\\`` as ``/``, so ``/<TAB>/evil``
    would leave the site: control characters, spaces and backslashes are refused outright
    (400). Anything else not starting with a single ``/`` goes to ``/``; the rest is
    percent-encoded, so the ``Location`` header is always plain ASCII.

    >>> _safe_next("/news/1?a=b"), _safe_next("https://evil.example/"), _safe_next("/\u202e")
    ('/news/1?a=b', '/', '/%E2%80%AE')
    """
    if not value:
        return "/"
    if _CONTROL.search(value):
        raise _BadRequest("next: not a local path")
    if not value.startswith("/") or value.startswith("//"):
        return "/"
    return quote(value, safe="/%?&=+-._~!$'()*,;:@")


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_name(value: str) -> str | None:
    """The name in a ``Host`` header, without port or brackets; None when malformed.

    >>> _host_name("LOCALHOST:8000"), _host_name("[::1]:8000"), _host_name("a b")
    ('localhost', '::1', None)
    """
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest[1:].isdigit()) or (rest and rest[0] != ":"):
            return None
        return name
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") if name and _HOST.match(name) else None


_e = html.escape

_PAGE_CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}"
    "main{max-width:46em;margin:0 auto;padding:1em 1.5em 3em;background:#fff}"
    ".demo-bar{background:#263238;color:#eceff1;padding:.6em 1.5em;font-size:14px}"
    ".demo-bar a{color:#80cbc4}"
    ".demo-bar form{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:end;margin:.3em 0}"
    ".demo-bar label{display:flex;flex-direction:column;font-size:12px}"
    ".demo-bar input,.demo-bar select{font-size:14px;max-width:14em}"
    ".demo-state{font-size:13px;color:#b0bec5}"
    ".reload-error,.undelivered{background:#b71c1c;color:#fff;padding:.5em 1.5em;"
    "white-space:pre-wrap;font:13px monospace}"
    "table{border-collapse:collapse;font-size:14px;margin:.5em 0}"
    "th,td{text-align:left;vertical-align:top;padding:.2em .8em .2em 0}"
    "th{color:#555;font-weight:600}"
    ".rule{border-top:1px solid #ddd;padding-top:.5em;margin-top:1.5em}"
    ".locale{font-size:13px;color:#555;margin:.8em 0 0}"
    ".locale.unreviewed{color:#8d6e00}"
    ".block-preview{border:1px solid #b71c1c;padding:.2em 1em;background:#ffebee}"
    "code{background:#eee;padding:0 .2em}"
)


@functools.cache
def _country_options() -> tuple[tuple[str, str], ...]:
    """(code, name) of every country a reader may be in, as locations have them (Kosovo,
    ``XK``, is not in ISO 3166-1 but is in MaxMind's data and the engine's)."""
    names = {c.alpha_2: c.name for c in pycountry.countries}
    english = babel.Locale("en").territories
    return tuple(sorted((c, names.get(c) or english.get(c, c)) for c in country_codes()))


@functools.cache
def _subdivision_codes() -> dict[str, tuple[str, ...]]:
    """Each country's ISO 3166-2 subdivision codes, sorted."""
    codes: dict[str, list[str]] = {}
    for subdivision in pycountry.subdivisions:
        codes.setdefault(subdivision.country_code, []).append(subdivision.code)
    return {country: tuple(sorted(subs)) for country, subs in codes.items()}


def _reload_banner(engine: Engine) -> str:
    error = engine.last_reload_error
    if error is None:
        return ""
    problems = "\n".join(str(p) for p in getattr(error, "problems", ())) or str(error)
    return (
        '<div class="reload-error" lang="en" dir="ltr" role="alert">The last rule reload '
        f"failed; still showing the previous rules.\n{_e(problems)}</div>"
    )


def _simulator_bar(simulation: Simulation, here: str, languages: Iterable[str]) -> str:
    countries = ['<option value="">(real location / IP)</option>']
    for code, name in _country_options():
        selected = " selected" if code == simulation.country else ""
        countries.append(f'<option value="{code}"{selected}>{code} {_e(name)}</option>')
    known = list(languages)

    def options(first: str, chosen: str | None) -> str:
        """The languages the rules have texts in, and the one chosen if it is another."""
        codes = [chosen, *known] if chosen and chosen not in known else known
        out = [f'<option value="">{first}</option>']
        for code in codes:
            selected = " selected" if code == chosen else ""
            out.append(f'<option value="{_e(code)}"{selected}>{_e(code)}</option>')
        return "".join(out)

    langs = options("(browser)", simulation.language)
    pages = options("(not declared)", simulation.page_language)
    return (
        # The demo's own English, whatever the page's language and direction (a 451 page
        # in Hebrew is dir="rtl").
        '<nav class="demo-bar" lang="en" dir="ltr" aria-label="location simulator">'
        '<strong>compliance demo</strong> · <a href="/">article</a> · '
        '<a href="/rules">rule preview</a>'
        '<form method="get" action="/simulate" id="simulator">'
        f'<input type="hidden" name="next" value="{_e(here)}">'
        f'<label>Country<select name="country">{"".join(countries)}</select></label>'
        '<label>Subdivision (one, ISO 3166-2)<input name="subdivision" placeholder="UA-43" '
        f'value="{_e(",".join(simulation.subdivisions))}"></label>'
        f'<label>Reader\u2019s language<select name="lang">{langs}</select></label>'
        f'<label>Page language<select name="page">{pages}</select></label>'
        '<label>or IP address<input name="ip" placeholder="77.88.55.88" '
        f'value="{_e(simulation.ip or "")}"></label>'
        '<label>Host<input name="host" placeholder="news.example" '
        f'value="{_e(simulation.host or "")}"></label>'
        '<label>Content tags<input name="tags" placeholder="foreign-agent" '
        f'value="{_e(",".join(simulation.tags))}"></label>'
        '<button type="submit">Simulate</button> '
        f'<a href="/simulate?next={quote(here, safe="/")}">reset</a>'
        "</form>"
        f'<div class="demo-state">Simulating: {_e(simulation.describe())}</div>'
        "</nav>"
    )


def _chrome(engine: Engine, simulation: Simulation, here: str) -> str:
    """The demo's own parts of a page: the simulator bar and any reload error."""
    return _simulator_bar(simulation, here, _locales(engine)) + _reload_banner(engine)


def _undelivered(decision: object, page: bytes) -> str:
    """An alert naming the notices ``decision`` calls for that are not in ``page``, the
    body as it goes to the reader: the middleware could not deliver them (a required
    variable the site has not set, a fault) and applied its fail mode."""
    if not isinstance(decision, Decision) or decision.block is not None:
        return ""
    missing = [
        notice.rule_id
        for notice in decision.notices
        if f'data-compliance-rule="{_e(notice.rule_id)}"'.encode() not in page
    ]
    if not missing:
        return ""
    return (
        '<div class="undelivered" lang="en" dir="ltr" role="alert">Not on this '
        f"page: {_e(', '.join(missing))}. The middleware could not deliver "
        f"{'them' if len(missing) > 1 else 'it'} and applied its fail mode (the page goes "
        "out unedited, or cut where content is withheld); the server log says why, and "
        "the rule preview names any variable the site must set (--set NAME=VALUE).</div>"
    )


_BODY_TAG = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
_HEAD_END = re.compile(rb"</head\s*>", re.IGNORECASE)
_CHROME_LIMIT = 4 * 1024 * 1024
VARY_COOKIE = (b"vary", b"Cookie")


def _add_chrome(body: bytes, chrome: str) -> bytes | None:
    """``body`` with the demo's style sheet in its head and ``chrome`` first in its body;
    an empty body (a page the fail mode cut before its first byte) is the chrome alone, so
    that the reader can still be changed. None when it is not a page with a ``<body>`` tag."""
    tag = _BODY_TAG.search(body)
    if tag is None:
        if not body.strip():
            return _page("compliance demo", "en", chrome).encode()
        return None
    head_end = _HEAD_END.search(body, 0, tag.start())
    style = f"<style>{_PAGE_CSS}</style>".encode()
    if head_end is not None:
        before = body[: head_end.start()] + style + body[head_end.start() : tag.end()]
    else:
        before = body[: tag.end()] + style
    return before + chrome.encode() + body[tag.end() :]


def _with_chrome(send: Send, chrome: Callable[[bytes], str]) -> Send:
    """A ``send`` that puts the demo's chrome into the HTML page being sent (the article
    as edited by the middleware, or its 451 page). The demo's pages are small: held whole,
    up to a limit past which they pass through untouched."""
    start: Message | None = None
    held: list[bytes] = []
    size = 0

    async def flush(body: bytes, more_body: bool) -> None:
        nonlocal start
        if start is not None:
            await send(start)
            start = None
        await send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def wrapped(message: Message) -> None:
        nonlocal start, size
        if message["type"] == "http.response.start":
            # Every page depends on the simulator's cookie.
            message = {**message, "headers": [*(message.get("headers") or ()), VARY_COOKIE]}
            headers = {k.lower(): v for k, v in message.get("headers") or ()}
            html_page = headers.get(b"content-type", b"").startswith(b"text/html")
            if html_page and b"content-encoding" not in headers:
                start = message
                return
            await send(message)
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        held.append(message.get("body", b""))
        size += len(held[-1])
        more = bool(message.get("more_body"))
        if size > _CHROME_LIMIT:
            data = b"".join(held)
            held.clear()
            await flush(data, more)
            return
        if more:
            return
        data = b"".join(held)
        edited = _add_chrome(data, chrome(data))
        if edited is not None:
            fixed = [
                (k, str(len(edited)).encode() if k.lower() == b"content-length" else v)
                for k, v in start.get("headers") or ()
            ]
            start = {**start, "headers": fixed}
            data = edited
        await flush(data, False)

    return wrapped


def _without_body(send: Send) -> Send:
    """A ``send`` that sends the response without its body (HEAD)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return wrapped


def _page(title: str, lang: str | None, body: str, *, head: str = "") -> str:
    lang_attribute = f' lang="{_e(lang)}"' if lang else ""
    return (
        f'<!DOCTYPE html>\n<html{lang_attribute}><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_PAGE_CSS}</style>{head}</head>"
        f"<body>{body}</body></html>\n"
    )


# -- the sample article -----------------------------------------------------------------------

_ARTICLE_SCRIPT = (
    "document.body.dataset.scriptRan = 'yes';"
    "document.getElementById('script-status').textContent = 'The page\\u2019s own script ran.';"
)


def _article(engine: Engine, scope: Scope, simulation: Simulation) -> str:
    path = _e(str(scope.get("path", "/")))
    # The decision for the tags the article declared (read_decision, as an application
    # that builds its page from the decision does): the one whose notices are on the page.
    decision = read_decision(scope.get("state") or {})
    if not isinstance(decision, Decision):
        summary = "no decision (see the server log)"
    else:
        location = decision.location
        where = "/".join([location.country or "unknown", *location.subdivisions])
        shown = []
        for notice in decision.notices:
            locale = decision.locale_for(notice, simulation.page_language)
            status = _status_of(notice, locale)
            shown.append(f"{notice.rule_id} ({locale}{', ' + status if status else ''})")
        notices = ", ".join(shown) or "none"
        summary = f"reader in {where} (source: {location.source}); notices: {notices}"
        if decision.withholds:
            summary += "; withheld: " + ", ".join(w.rule_id for w in decision.withholds)
        if decision.headers:
            summary += "; headers: " + ", ".join(f"{k}: {v}" for k, v in decision.headers.items())
    # Without a declared page language the notice follows the reader's Accept-Language. The
    # simulator bar is not part of the article: the demo adds it after the middleware, as
    # the first thing in every page's body (so above body_start notices, and on 451 pages).
    return _page(
        "A sample article",
        simulation.page_language,
        "<main><article>"
        "<h1>Reservoir levels fall for a third summer</h1>"
        "<!-- compliance:notices -->"
        '<p class="byline">By a staff writer</p>'
        "<p>This is the demo site of <code>compliance</code>. Notices that apply to the "
        "simulated reader are injected into this page by the ASGI middleware, exactly as on "
        "a real site: under the headline for <code>placement: marker</code>, at the start or "
        "end of the body otherwise.</p>"
        "<p>Choose a country, subdivision and language above, or give an IP address to "
        "geolocate it with the configured database. The rule preview lists every loaded "
        "rule; edit a rule file and reload to see the change.</p>"
        '<p data-compliance-withhold="legal-demand" class="withholdable">This paragraph is '
        'marked <code>data-compliance-withhold="legal-demand"</code>: a rule that '
        "withholds <code>legal-demand</code> (the <code>withheld</code> pack's template, on "
        "a host under <code>.example</code>) replaces it with its placeholder for readers "
        "where it applies.</p>"
        f'<p class="decision">Decision for <code>{path}</code>: {_e(summary)}</p>'
        '<p id="script-status">The page\u2019s own script has not run.</p>'
        "</article></main>"
        f"<script>{_ARTICLE_SCRIPT}</script>",
    )


def _status_of(match: NoticeMatch, locale: str) -> str:
    """What the decision says of the text in ``locale`` (the match's own reading)."""
    status = match.translation_status(locale)
    if status is None or status == "original":
        return status or ""
    return f"{status} translation of {match.original}"


def _locales(engine: Engine) -> list[str]:
    seen = dict.fromkeys(_LANGUAGES)
    for compiled in engine.compiled_rules():
        rule = compiled.rule
        for message in (rule.notice, rule.block, rule.withhold):
            if message is not None:
                seen.update(dict.fromkeys(message.texts))
    return list(seen)


# -- the rule preview -------------------------------------------------------------------------


def _codes(codes: Iterable[str], regions: Mapping[str, Any]) -> str:
    out = []
    for code in codes:
        if code in regions:
            region = regions[code]
            members = ", ".join(region.include)
            if region.exclude:
                members += f"; except {', '.join(region.exclude)}"
            out.append(f"<code>{_e(code)}</code> ({_e(region.title)}: {_e(members)})")
        elif code == "*":
            out.append("<code>*</code> (every known location)")
        else:
            out.append(f"<code>{_e(code)}</code>")
    return ", ".join(out) or "—"


_TRY_IT_READERS = 500
"""Readers a "try it" link tries at most for a rule (a rule for ``*`` or a large region)."""


def _codes_of(codes: Iterable[str], regions: Mapping[str, Any]) -> Iterator[str]:
    """The country and subdivision codes that ``codes`` name, regions expanded in order
    (``*``: every country)."""
    seen: set[str] = set()
    stack = list(reversed(list(codes)))
    while stack:
        code = stack.pop()
        if code in seen or len(seen) > 10_000:
            continue
        seen.add(code)
        if code in regions:
            stack.extend(reversed(list(regions[code].include)))
        elif code == "*":
            stack.extend(reversed([c for c, _ in _country_options()]))
        else:
            yield code


def _candidate_locations(codes: Iterable[str], regions: Mapping[str, Any]) -> Iterator[Location]:
    """Readers in the places ``codes`` name: each code as written, then the subdivisions
    of the countries among them (a rule may apply only where a subdivision is known). One
    subdivision each: the simulator's header carries one."""
    countries = []
    for code in _codes_of(codes, regions):
        country, _, subdivision = code.partition("-")
        try:
            yield Location.of(country, *([code] if subdivision else []), source="simulated")
        except ConfigurationError:
            continue
        if not subdivision:
            countries.append(country)
    for country in countries:
        for sub in _subdivision_codes().get(country, ()):
            yield Location.of(country, sub, source="simulated")


def _try_it_reader(
    engine: Engine, compiled: CompiledRule, today: dt.date
) -> tuple[Simulation, str] | None:
    """A simulated reader, and a path, for the preview's "try it" link: the first candidate
    for whom the engine's own decision applies the rule (a rule not in force today, or one
    no candidate reaches, gets the first candidate). None when the rule names no place."""
    rule = compiled.rule
    host = None
    if rule.hosts:
        host = normalize_host(_sample_text(re.sub(r"^\*\.", "news.", rule.hosts[0]))) or None
    path = _sample_path(rule.paths, rule.exclude_paths)
    tags = tuple(rule.tags[:1])
    request = Request.of(host=host or "localhost", path=path, tags=frozenset(tags))
    first = None
    # A rule out of force today applies to nobody: its first candidate, without asking.
    tries = _TRY_IT_READERS if _in_force(compiled, today) else 1
    for count, location in enumerate(
        _candidate_locations(rule.jurisdictions, engine.ruleset.regions)
    ):
        if count == tries:
            break
        first = first or location
        if rule.id in engine.decide(location=location, request=request).applied:
            first = location
            break
    if first is None or first.country is None:
        return None
    reader = Simulation(
        country=first.country, subdivisions=first.subdivisions, host=host, tags=tags
    )
    return reader, path


def _sample_text(pattern: str) -> str:
    """A text the glob ``pattern`` matches: each run of stars and each ``?`` stands for an
    ``x`` (an empty run would leave ``/news//story`` for ``/news/*/story``, which the
    middleware reads as ``/news/story``, where the rule does not apply).

    >>> _sample_text("/news/*/story-?.html"), _sample_text("/a/**"), _sample_text("cdn-*.example")
    ('/news/x/story-x.html', '/a/x', 'cdn-x.example')
    """
    return re.sub(r"\*+|\?", "x", pattern)


def _sample_path(paths: Iterable[str], excluded: Iterable[str]) -> str:
    """A path the rule applies to, for the preview's "try it" link: the first of ``paths``
    (any path without them) that ``excluded`` does not carve out."""
    candidates = [_sample_text(p) for p in paths] or ["/", "/news/story"]
    for candidate in candidates:
        if not any(reference_match(glob, candidate, host=False) for glob in excluded):
            return candidate
    return candidates[0]


def _shown_path(file: str) -> str:
    """Relative to the working directory when the file is under it (shorter to read)."""
    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive on Windows
        return file
    return file if relative.startswith("..") else relative


def _in_force(compiled: CompiledRule, today: dt.date) -> bool:
    return (compiled.start is None or compiled.start <= today) and (
        compiled.until is None or today < compiled.until
    )


def _status(compiled: CompiledRule, today: dt.date) -> str:
    if compiled.start is not None and today < compiled.start:
        return f"not yet in force (from {compiled.start.isoformat()})"
    if compiled.until is not None and today >= compiled.until:
        return f"expired (until {compiled.until.isoformat()})"
    return "in force today"


def _missing(exc: VariableMissing) -> str:
    """What the preview shows for a text that needs variables the site has not set."""
    flags = " ".join(f"--set {name}=..." for name in exc.variables)
    return (
        f'<p class="missing-variables"><strong>Not shown until the site sets '
        f"{_e(', '.join(exc.variables))}</strong> (required; readers get the fail mode "
        f"instead): <code>compliance demo {_e(flags)}</code></p>"
    )


def _or_missing(
    render: Callable[[str, Texts, str, Mapping[str, VariableValue]], str],
    rule_id: str,
    message: Texts,
    locale: str,
    variables: Mapping[str, VariableValue],
) -> str:
    try:
        return render(rule_id, message, locale, variables)
    except VariableMissing as exc:
        return _missing(exc)


def _rule_section(engine: Engine, compiled: CompiledRule, today: dt.date) -> str:
    rule = compiled.rule
    regions = engine.ruleset.regions
    effective = (
        f"from {rule.effective.from_.isoformat() if rule.effective.from_ else 'always'}"
        f" until {rule.effective.until.isoformat() if rule.effective.until else 'further notice'}"
    )
    rows = [
        ("Jurisdictions", _codes(rule.jurisdictions, regions)),
        ("Except", _codes(rule.exclude, regions)),
        ("Unknown location", _e(rule.unknown_location)),
        ("Effective", f"{_e(effective)} — {_e(_status(compiled, today))}"),
        ("Hosts", _e(", ".join(rule.hosts)) or "any"),
        ("Paths", _e(", ".join(rule.paths)) or "any"),
        ("Except paths", _e(", ".join(rule.exclude_paths)) or "—"),
        ("Content tags", _e(", ".join(rule.tags)) or "any content"),
        ("Priority", str(rule.priority)),
        ("Defined in", f"<code>{_e(_shown_path(compiled.file))}:{compiled.line}</code>"),
    ]
    if rule.headers:
        headers = "<br>".join(f"<code>{_e(k)}: {_e(v)}</code>" for k, v in rule.headers.items())
        rows.append(("Response headers", headers))
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    previews = []
    message: Notice | Block | None = rule.notice or rule.block
    if isinstance(message, Notice):
        previews.append(f"<p>Notice, <code>placement: {_e(message.placement)}</code>:</p>")
        for locale in message.texts:
            previews.append(_locale_label(message, locale))
            previews.append(_or_missing(notice_html, rule.id, message, locale, engine.variables))
    elif isinstance(message, Block):
        previews.append(
            f"<p>Block: HTTP {message.status}, <code>Link: &lt;{_e(message.blocked_by)}&gt;; "
            'rel="blocked-by"</code></p>'
        )
        for locale in message.texts:
            previews.append(_locale_label(message, locale))
            try:
                body = message_body(message, locale, engine.variables, rule=rule.id)
            except VariableMissing as exc:
                previews.append(_missing(exc))
                continue
            previews.append(
                f'<div class="block-preview" data-compliance-rule="{_e(rule.id)}" '
                f"{language_attributes(locale)}>{body}</div>"
            )
    withhold = rule.withhold
    if withhold is not None:
        parts = []
        if withhold.marks:
            marks = ", ".join(f"<code>{_e(m)}</code>" for m in withhold.marks)
            parts.append(f"elements whose <code>data-compliance-withhold</code> has {marks}")
        if withhold.embeds:
            hosts = ", ".join(f"<code>{_e(h)}</code>" for h in withhold.embeds)
            parts.append(f"embeds from {hosts}")
        previews.append(f"<p>Withholds {' and '.join(parts)}, shown instead as:</p>")
        if not withhold.texts:
            previews.append("<p><em>nothing: removed without a placeholder</em></p>")
        for locale in withhold.texts:
            previews.append(_locale_label(withhold, locale))
            previews.append(_or_missing(withhold_html, rule.id, withhold, locale, engine.variables))
    found = _try_it_reader(engine, compiled, today)
    try_it = ""
    if found is not None:
        sample, path = found
        query = urlencode([*parse_qsl(sample.query()), ("next", path)])
        try_it = f' · <a href="/simulate?{_e(query)}">try it as {_e(sample.describe())}</a>'
    description = f"<p>{_e(rule.description)}</p>" if rule.description else ""
    return (
        f'<section class="rule" id="{_e(rule.id)}" data-rule="{_e(rule.id)}">'
        f"<h2>{_e(rule.title)}</h2>"
        f"<p><code>{_e(rule.id)}</code>{try_it}</p>{description}<table>{table}</table>"
        f"{''.join(previews)}</section>"
    )


def _count(number: int, noun: str) -> str:
    """``"1 region"``, ``"2 regions"``.

    >>> _count(1, "region"), _count(0, "rule")
    ('1 region', '0 rules')
    """
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _translation(message: Texts, locale: str) -> str:
    """What a rule says of a locale's text: the original, or a (reviewed) translation.

    >>> from compliance.models import Notice
    >>> notice = Notice(text={"en": "a", "ru": "b"}, original="en")
    >>> _translation(notice, "en"), _translation(notice, "ru")
    ('original', 'unreviewed translation of en')
    """
    if message.original is None:
        return ""
    if locale == message.original:
        return "original"
    translation = message.translations.get(locale)
    status = translation.status if translation is not None else "unreviewed"
    return f"{status} translation of {message.original}"


def _locale_label(message: Texts, locale: str) -> str:
    status = _translation(message, locale)
    note = message.translations.get(locale)
    detail = f" — {_e(status)}" if status else ""
    if note is not None and note.note:
        detail += f" ({_e(note.note)})"
    css = " unreviewed" if status.startswith("unreviewed") else ""
    return f'<p class="locale{css}" data-locale="{_e(locale)}">{_e(locale)}{detail}</p>'


def _rules_page(engine: Engine, simulation: Simulation) -> str:
    today = dt.datetime.now(dt.UTC).date()
    compiled = engine.compiled_rules()
    ruleset = engine.ruleset
    sections = "".join(_rule_section(engine, c, today) for c in compiled)
    summary = (
        f"{_count(len(compiled), 'rule')}, {_count(len(ruleset.regions), 'region')} and "
        f"{_count(len(ruleset.tests), 'test')} from {_count(len(ruleset.files), 'file')}, "
        "highest priority first. Files are watched: edit one and reload this page."
    )
    return _page(
        "Rule preview",
        "en",
        _chrome(engine, simulation, "/rules")
        + f"<main><h1>Rule preview</h1><p>{_e(summary)}</p>{sections}</main>",
        head=f"<style>{DEFAULT_CSS}</style>",
    )


# -- the application --------------------------------------------------------------------------


def create_app(engine: Engine, *, hosts: Iterable[str] = ()) -> ASGIApp:
    """The demo site over ``engine``.

    It answers only requests whose ``Host`` names a loopback address (``localhost``,
    ``127.0.0.1``, ``::1``) or one of ``hosts`` (the address it was bound to), with any
    port: a page elsewhere cannot use DNS rebinding to read the rule preview.
    """
    allowed = _LOOPBACK_NAMES | {h.strip("[]").lower() for h in hosts}

    async def article(scope: Scope, receive: Receive, send: Send) -> None:
        simulation: Simulation = scope["state"]["compliance.demo"]
        headers = []
        if simulation.page_language:
            headers.append(("Content-Language", simulation.page_language))
        await _respond(send, 200, _article(engine, scope, simulation), headers=headers)

    # Every demo client may simulate: that is what the demo is for (it answers loopback
    # Host names only). Real sites list their developers' addresses, or nothing.
    protected = ComplianceMiddleware(article, engine, css=True, simulate_from=["0.0.0.0/0", "::/0"])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method == "HEAD":  # answered as its GET, body left out, whatever the page
            send = _without_body(send)
        headers = _headers(scope)
        if _host_name(headers.get("host", "")) not in allowed:
            await _respond(
                send,
                400,
                "The compliance demo answers only on localhost.\n",
                content_type="text/plain; charset=utf-8",
            )
            return
        if method not in _METHODS:  # every page only shows something: no form posts
            await _respond(
                send,
                405,
                f"The compliance demo answers {', '.join(_METHODS)} only.\n",
                content_type="text/plain; charset=utf-8",
                headers=[("Allow", ", ".join(_METHODS))],
            )
            return
        simulation = Simulation.from_headers(headers)
        path = str(scope.get("path", "/"))
        if path == "/simulate":
            query = scope.get("query_string", b"").decode("latin-1")
            chosen = Simulation.from_query(query)
            try:
                target = _safe_next(dict(parse_qsl(query)).get("next"))
            except _BadRequest as exc:
                await _respond(send, 400, f"{exc}\n", content_type="text/plain; charset=utf-8")
                return
            value = chosen.cookie_value()
            cookie = f"{COOKIE}={value}; Path=/; SameSite=Lax"
            if not value:
                cookie += "; Max-Age=0"
            await _respond(
                send,
                303,
                content_type="text/plain; charset=utf-8",
                headers=[("Location", target), ("Set-Cookie", cookie)],
            )
        elif path == "/rules":
            await _respond(send, 200, _rules_page(engine, simulation))
        elif path == "/favicon.ico":
            await _respond(send, 404, "", content_type="text/plain")
        else:
            replaced = {b"x-compliance-simulate"}  # only the cookie chooses, never a header
            if simulation.language:
                replaced.add(b"accept-language")
            if simulation.host:
                replaced.add(b"host")
            raw = [(k, v) for k, v in scope.get("headers") or () if k.lower() not in replaced]
            if simulation.language:
                raw.append((b"accept-language", simulation.language.encode("latin-1")))
            if simulation.host:
                raw.append((b"host", simulation.host.encode("latin-1")))
            simulated = simulation.header()
            if simulated is not None:
                raw.append((b"x-compliance-simulate", simulated.encode("latin-1")))
            # A HEAD goes to the middleware as its GET, so that its headers are the GET's:
            # the demo's chrome changes the length of the page the middleware sends.
            inner = {**scope, "headers": raw, "query_string": b"", "method": "GET"}
            if simulation.ip and simulated is None:
                inner["client"] = (simulation.ip, 0)  # the reader comes from that address
            state = dict(scope.get("state") or {})
            state["compliance.demo"] = simulation
            if simulation.tags:
                # The article knows its tags before it renders, and says so where the
                # middleware reads them (compliance.tags), so that the decision it shows
                # is the one the middleware applies to the page.
                state[STATE_TAGS] = list(simulation.tags)
            inner["state"] = state
            dressed = _with_chrome(
                send,
                lambda page: (
                    _chrome(engine, simulation, path)
                    + _undelivered(state.get(STATE_DECISION), page)
                ),
            )
            await protected(inner, receive, dressed)

    return app


def demo_engine(
    rules: list[str] | None = None,
    geoip_db: str | None = None,
    *,
    packs: list[str] | None = None,
    watch: float | None = 1.0,
    variables: Mapping[str, VariableValue] | None = None,
) -> Engine:
    """The engine the demo serves: the given rules and bundled packs (neither: the default
    pack) with the site's ``variables``, watched, located by the simulator over the MaxMind
    database or the embedded lookup."""
    return Engine.from_paths(rules, geoip_db, packs=packs, watch=watch, variables=variables)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host`` and ``port`` (0: any free one), as uvicorn would
    open it: bound before the server starts, so that the demo can name the port it serves
    on and say in words why it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host.strip("[]"), port), family=family)
    sock.set_inheritable(True)
    return sock


def _loopback(host: str) -> bool:
    """Whether ``host``, the address the demo listens on, is reachable from this machine
    only.

    >>> _loopback("127.0.0.1"), _loopback("[::1]"), _loopback("localhost"), _loopback("0.0.0.0")
    (True, True, True, False)
    """
    name = host.strip("[]").lower()
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:  # a name: it may lead anywhere
        return False


def _exposed(host: str) -> str:
    """The warning for a demo listening on ``host`` beyond loopback."""
    return (
        f"compliance demo: WARNING: listening on {host}, not on loopback: whoever reaches "
        "this address can read the rule preview (the rules' texts with the variables set, "
        "the rule files' paths) and have the demo believe any location they choose; "
        "leave out --host to serve on 127.0.0.1 only"
    )


def _cannot_serve(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        why = "the port is in use: choose another with --port (0: any free port)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "not an address of this machine"
    elif exc.errno == errno.EACCES:
        why = "no permission for that port: choose one above 1023 with --port"
    else:
        why = f"{exc.strerror or exc}"
    return f"compliance demo: cannot serve on {host}:{port}: {why}"


def run_demo(
    *,
    port: int = 8000,
    host: str = "127.0.0.1",
    rules: list[str] | None = None,
    packs: list[str] | None = None,
    geoip_db: str | None = None,
    variables: Mapping[str, VariableValue] | None = None,
) -> int:
    """Serve the demo until Ctrl-C; return the exit code (0 on a clean stop, 2 when it
    cannot listen on ``host`` and ``port``)."""
    import uvicorn  # the optional `demo` extra

    engine = demo_engine(rules, geoip_db, packs=packs, variables=variables)
    try:
        sock = _listen(host, port)
    except OSError as exc:
        engine.close()
        print(_cannot_serve(host, port, exc), file=sys.stderr, flush=True)
        return 2
    config = uvicorn.Config(
        create_app(engine, hosts=[host]), host=host, port=port, lifespan="on", log_level="info"
    )
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    if not _loopback(host):
        print(_exposed(shown), file=sys.stderr, flush=True)
    print(
        f"compliance demo on http://{shown}:{sock.getsockname()[1]}/ (rule preview: /rules); "
        "Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled gracefully
        pass
    except SystemExit as exc:  # uvicorn exits this way when its start-up fails
        if exc.code in (0, None):
            return 0
        # uvicorn's own code (3) is outside the command line's 0/1/2; its log said why.
        print("compliance demo: the server did not start", file=sys.stderr, flush=True)
        return 2
    finally:
        sock.close()
        engine.close()
    print("compliance demo stopped", file=sys.stderr, flush=True)
    return 0

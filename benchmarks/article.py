"""The applications ``benchmarks/middleware.py`` times, in process and under real servers.

- The view: a news article rendered per request from ``article.html.j2`` by Jinja2 (about
  50 KB of realistic markup: a head with meta, link and script tags, navigation, an article of
  paragraphs with inline links, subheadings, quotes and responsive images, related stories
  and a footer), served as WSGI (``article_wsgi``) and as ASGI (``article_asgi``). The same
  page as a constant (rendered once) is ``constant_wsgi`` / ``constant_asgi``.
- The baselines the budgets compare against, written here as small as they can be while
  being correct for the page they serve:

  * ``NaiveSplice*``: makes the same ``Engine.decide()`` call as ours, holds the body,
    splices the decision's notice HTML before the last ``</body>`` (``bytes.rfind``) and fixes
    ``Content-Length``;
  * ``Minimal*``: makes the same ``decide()`` call and sets ``Vary`` and
    ``Cache-Control: private`` as the decision asks, leaving the body alone (what the
    no-notice path of any correct middleware must do).

Module-level objects named ``<view>_<variant>_<wsgi|asgi>`` are what the servers import, e.g.
``article:article_ours_asgi``; the proxy in front of the servers is 127.0.0.1, so every
middleware, ours included, takes the reader's address from ``X-Forwarded-For``.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from compliance import asgi, wsgi  # noqa: E402
from compliance.engine import Engine  # noqa: E402

PROXY = "127.0.0.1"
"""The address of the (pretend) proxy in front of the servers: its X-Forwarded-For counts."""

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# -- the page ---------------------------------------------------------------------------------

_TEXT = (
    "the council said on tuesday that its members would meet again next month to review "
    "budget proposals after residents raised concerns about transport housing and schools "
    "in the northern districts where officials expect population growth of nearly twelve "
    "percent over the coming decade according to figures published by the statistics office "
    "critics argued that the plan lacked detail while supporters pointed to new funding "
    "for clinics libraries and parks as evidence that priorities had shifted"
)
_WORDS = _TEXT.split()


def _sentence(rng: random.Random, low: int = 12, high: int = 26) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> Markup:
    """A paragraph as a CMS stores it: sanitized HTML with inline links and emphasis."""
    parts: list[str] = []
    for _ in range(rng.randint(3, 5)):
        roll = rng.random()
        text = escape(_sentence(rng))
        if roll < 0.2:
            head, _, tail = text.partition(" ")
            parts.append(f'{head} <a href="/news/{rng.randrange(10**6)}-story">{tail}</a>')
        elif roll < 0.3:
            parts.append(f"<em>{text}</em>")
        elif roll < 0.35:
            parts.append(f"<strong>{text}</strong>")
        else:
            parts.append(str(text))
    return Markup(" ".join(parts))


def _image(rng: random.Random, number: int, kind: str = "inline") -> dict[str, Any]:
    return {
        "id": f"2026/12/03/council-{number:03d}",
        "kind": kind,
        "widths": [320, 480, 720, 1080, 1440],
        "height": rng.choice([405, 480, 540]),
        "alt": _sentence(rng, 6, 10).rstrip("."),
        "caption": _sentence(rng, 10, 18),
        "credit": "Photo: Staff Photographer / Agency & Partners",
    }


def _context(seed: int = 12) -> dict[str, Any]:
    rng = random.Random(seed)
    body: list[dict[str, Any]] = []
    for index in range(54):
        if index and index % 9 == 0:
            body.append({"kind": "heading", "text": _sentence(rng, 4, 8), "anchor": f"s{index}"})
        if index == 6:
            body.append({"kind": "quote", "text": _sentence(rng), "source": "A council member"})
        if index in (4, 17, 29, 41):
            body.append({"kind": "image", "image": _image(rng, index)})
        if index == 12:
            body.append({"kind": "promo", "text": _sentence(rng, 6, 10), "link": "/news/1-promo"})
        body.append({"kind": "paragraph", "html": _paragraph(rng)})
    sections = ["News", "World", "Politics", "Business", "Climate", "Science", "Culture", "Sport"]
    footer_titles = ["About us", "Sections", "Services", "Legal"]
    return {
        "site": {
            "name": "The Example Chronicle",
            "handle": "examplechronicle",
            "language": "en",
            "url": "https://www.example.org",
            "cdn": "https://img.example-cdn.net",
            "build": "3f9c2a1",
            "year": 2026,
        },
        "sections": [{"name": name, "slug": name.lower()} for name in sections],
        "share": [
            {"name": n, "slug": n.lower(), "url": f"https://{n.lower()}.example/share?u="}
            for n in ("Facebook", "Bluesky", "LinkedIn", "Email")
        ],
        "article": {
            "id": "a-20261203-council",
            "path": "/politics/2026/12/03/council-budget-districts",
            "title": 'Council to review budget after "northern districts" row',
            "summary": _sentence(rng, 20, 30),
            "author": {"name": "Jane O'Neill", "slug": "jane-oneill", "role": "City editor"},
            "section": {"name": "Politics", "slug": "politics"},
            "published": "2026-12-03T06:00:00Z",
            "published_label": "3 December 2026, 06:00",
            "modified": "2026-12-03T07:15:00Z",
            "modified_label": "07:15",
            "tags": ["Local government", "Budgets", "Housing", "Transport", "Schools"],
            "lead": _image(rng, 0, "lead"),
            "body": body,
            "words": 1800,
        },
        "related": [
            {
                "path": f"/politics/2026/12/0{i % 3 + 1}/story-{i}",
                "image": f"2026/12/related-{i}",
                "section": sections[i % len(sections)],
                "title": _sentence(rng, 6, 12),
                "published": "2026-12-02T18:00:00Z",
                "published_label": "2 December 2026",
            }
            for i in range(8)
        ],
        "footer": [
            {
                "title": title,
                "links": [
                    {"href": f"/{title.split()[0].lower()}/{j}", "text": _sentence(rng, 1, 3)}
                    for j in range(8)
                ],
            }
            for title in footer_titles
        ],
    }


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE), autoescape=True, auto_reload=False
)
TEMPLATE = _environment.get_template("article.html.j2")
CONTEXT = _context()


def render() -> bytes:
    """One request's work for the view: render the article and encode it."""
    return TEMPLATE.render(CONTEXT).encode("utf-8")


PAGE = render()
"""The rendered article (the constant page)."""


def _html_headers(length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(length)),
        ("Cache-Control", "public, max-age=60"),
        ("X-Content-Type-Options", "nosniff"),
    ]


def _raw_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in _html_headers(length)]


# -- the views --------------------------------------------------------------------------------


def article_wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    page = render()
    start_response("200 OK", _html_headers(len(page)))
    return [page]


def constant_wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", _html_headers(len(PAGE)))
    return [PAGE]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def article_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    page = render()
    await send({"type": "http.response.start", "status": 200, "headers": _raw_headers(len(page))})
    await send({"type": "http.response.body", "body": page})


async def constant_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": _raw_headers(len(PAGE))})
    await send({"type": "http.response.body", "body": PAGE})


# -- the baselines ----------------------------------------------------------------------------


def _forwarded(peer: str | None, forwarded: str | None) -> str | None:
    """The reader's address: the last X-Forwarded-For entry when the peer is the proxy."""
    if peer == PROXY and forwarded:
        return forwarded.rpartition(",")[2].strip()
    return peer


def _notice_html(decision: Any) -> bytes:
    return "".join(decision.snippets().values()).encode("utf-8") if decision.notices else b""


def _splice(body: bytes, notice: bytes) -> bytes:
    at = body.rfind(b"</body>")
    return body if not notice or at < 0 else body[:at] + notice + body[at:]


def _caching(headers: list[tuple[str, str]], decision: Any) -> list[tuple[str, str]]:
    """``headers`` with the decision's Vary names merged in and Cache-Control private."""
    vary = list(decision.vary)
    out = []
    for name, value in headers:
        lower = name.lower()
        if lower == "vary":
            vary = [v.strip() for v in value.split(",") if v.strip()] + vary
        elif lower != "cache-control" or not decision.private:
            out.append((name, value))
    if vary:
        out.append(("Vary", ", ".join(dict.fromkeys(vary))))
    if decision.private:
        out.append(("Cache-Control", "private"))
    return out


def _raw_caching(
    headers: Iterable[tuple[bytes, bytes]], decision: Any
) -> list[tuple[bytes, bytes]]:
    """:func:`_caching` on ASGI's lower-case byte-string headers."""
    vary = [name.encode("latin-1") for name in decision.vary]
    private = decision.private
    out = []
    for name, value in headers:
        if name == b"vary":
            vary = [v.strip() for v in value.split(b",") if v.strip()] + vary
        elif name != b"cache-control" or not private:
            out.append((name, value))
    if vary:
        out.append((b"vary", b", ".join(dict.fromkeys(vary))))
    if private:
        out.append((b"cache-control", b"private"))
    return out


def _scope_headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope.get("headers", ()))


class NaiveSpliceWSGI:
    """Decide, hold the body, splice the notice before the last ``</body>``, fix the length."""

    def __init__(self, app: WSGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        decision = self.engine.decide(
            ip=_forwarded(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR")),
            host=environ.get("HTTP_HOST", ""),
            path=environ.get("PATH_INFO", "/"),
            accept_language=environ.get("HTTP_ACCEPT_LANGUAGE"),
        )
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured
        body = _splice(body, _notice_html(decision))
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


class NaiveSpliceASGI:
    """The ASGI form of :class:`NaiveSpliceWSGI`."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _scope_headers(scope)
        client = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for")
        language = headers.get(b"accept-language")
        decision = self.engine.decide(
            ip=_forwarded(client[0] if client else None, forwarded and forwarded.decode()),
            host=headers.get(b"host", b"").decode("latin-1"),
            path=scope.get("path", "/"),
            accept_language=language.decode("latin-1") if language else None,
        )
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = _splice(b"".join(parts), _notice_html(decision))
            out = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            out.append((b"content-length", b"%d" % len(body)))
            await send({**start, "headers": out})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)


class MinimalWSGI:
    """Decide and set ``Vary``/``Cache-Control: private`` as the decision says; body untouched."""

    def __init__(self, app: WSGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        decision = self.engine.decide(
            ip=_forwarded(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR")),
            host=environ.get("HTTP_HOST", ""),
            path=environ.get("PATH_INFO", "/"),
            accept_language=environ.get("HTTP_ACCEPT_LANGUAGE"),
        )

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, _caching(headers, decision), exc_info)

        return self.app(environ, start)


class MinimalASGI:
    """The ASGI form of :class:`MinimalWSGI`."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _scope_headers(scope)
        client = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for")
        language = headers.get(b"accept-language")
        decision = self.engine.decide(
            ip=_forwarded(client[0] if client else None, forwarded and forwarded.decode()),
            host=headers.get(b"host", b"").decode("latin-1"),
            path=scope.get("path", "/"),
            accept_language=language.decode("latin-1") if language else None,
        )

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _raw_caching(message["headers"], decision)}
            await send(message)

        await self.app(scope, receive, wrapped)


# -- what the servers import ------------------------------------------------------------------

ENGINE = Engine.from_paths()


def ours_wsgi(app: WSGIApp) -> WSGIApp:
    return wsgi.ComplianceMiddleware(app, ENGINE, trusted_proxies=[PROXY])


def ours_asgi(app: ASGIApp) -> ASGIApp:
    return asgi.ComplianceMiddleware(app, ENGINE, trusted_proxies=[PROXY])


article_bare_wsgi = article_wsgi
article_naive_wsgi = NaiveSpliceWSGI(article_wsgi, ENGINE)
article_ours_wsgi = ours_wsgi(article_wsgi)
article_bare_asgi = article_asgi
article_naive_asgi = NaiveSpliceASGI(article_asgi, ENGINE)
article_ours_asgi = ours_asgi(article_asgi)

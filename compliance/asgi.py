"""ASGI 3 middleware: show readers the notices their jurisdiction requires.

::

    from compliance import Engine
    from compliance.asgi import ComplianceMiddleware

    app = ComplianceMiddleware(app, Engine.from_paths(), trusted_proxies=["10.0.0.0/8"])

Translation only: every decision is the response core's (:mod:`compliance.core`). Only
``http`` scopes are looked at; ``websocket`` and ``lifespan`` pass straight through. The
decision is in ``scope["state"]["compliance.decision"]``; the application may set
``scope["state"]["compliance.tags"]``, answer with an ``X-Compliance-Tags`` or
``X-Compliance-Skip`` header, and add to ``scope["state"]["compliance.rendered"]`` the rule
ids whose notices its page renders itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote

from compliance.core import EDIT, Event, Exchange, Middleware, Passthrough, Replace, Request
from compliance.core import Response as _Response
from compliance.core import Start as _Start
from compliance.core import new_request as _new_request
from compliance.http import Headers, RawHeaders, target_path, without_authority

__all__ = ["ComplianceMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_SERVER_FILES = frozenset(("http.response.pathsend", "http.response.zerocopysend"))


def _request(scope: Scope) -> Request:
    headers = RawHeaders(scope.get("headers"))
    raw = scope.get("raw_path")
    path = target_path(raw.decode("latin-1")) if raw.__class__ is bytes else None
    if path is None:  # decoded, and (ASGI now) holding root_path, which older servers left out
        root = str(scope.get("root_path", ""))
        path = without_authority(str(scope.get("path", "/")))  # (h11 leaves one whole)
        if root and path != root and not path.startswith(root.rstrip("/") + "/"):
            path = root + path
        try:
            data = path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate no server decoding bytes would make
            data = path.encode("utf-8", "replace")
        path = quote(data, _PATH_SAFE) or "/"
    client, server = scope.get("client"), scope.get("server")
    method, query = str(scope.get("method", "GET")), scope.get("query_string") or b""
    host = headers.get("host") or (str(server[0]) if server else "")
    peer = str(client[0]) if client else None
    return _new_request((method, host, path, bytes(query).decode("latin-1"), peer, headers))


def _decode(raw: Any) -> Headers:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw or ()]


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _changed(raw: Any, changes: Mapping[str, str | None]) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in raw or () if k.decode("latin-1").lower() not in changes]
    added = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in changes.items() if v]
    return kept + added


class ComplianceMiddleware(Middleware[ASGIApp]):
    """Inject the notices a reader's jurisdiction requires into HTML responses; answer
    blocked requests with 451 without calling the application. Options: see
    :class:`compliance.core.Middleware`; ``csp_nonce`` is a ``scope["state"]`` key or a
    callable given the scope."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        exchange = Exchange(*self.parts, _request(scope), state, scope)
        early = exchange.begin()
        if early is not None:
            await _send_response(send, early)
            return
        if exchange.request_changes:
            original = scope.get("headers")
            scope = {**scope, "headers": _changed(original, exchange.request_changes)}
            state["compliance.original_headers"] = original
        if exchange.prepared and not _SERVER_FILES.isdisjoint(scope.get("extensions") or ()):
            # The page may be edited: as body messages, not a file the server sends itself.
            kept = {k: v for k, v in scope["extensions"].items() if k not in _SERVER_FILES}
            scope = {**scope, "extensions": kept}
        await self.app(scope, receive, _Responder(exchange, state, send).send)


async def _send_response(send: Send, response: _Response) -> None:
    headers = _encode(response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class _Responder:
    """The application's ``send`` for one response."""

    __slots__ = ("exchange", "mode", "server_send", "start", "state", "trailers")

    def __init__(self, exchange: Exchange, state: MutableMapping[str, Any], send: Send) -> None:
        self.exchange = exchange
        self.state = state
        self.server_send = send
        self.start: Message | None = None
        self.mode = "hold"  # hold | pass | edit | swallow
        self.trailers = False  # the start the core sent promises trailers

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self.on_start(message)
        elif self.mode == "pass":
            await self.server_send(message)
        elif kind == "http.response.trailers":
            if self.mode != "swallow" or self.trailers:  # the start sent promised them
                fields = self.exchange.trailers(_decode(message.get("headers")))
                await self.server_send({**message, "headers": _encode(fields)})
        elif self.mode == "swallow":
            return
        elif kind == "http.response.body":
            await self.on_body(message)
        elif kind in _SERVER_FILES:
            # A file the server sends itself cannot be edited: the fail mode.
            await self.emit(self.exchange.give_up("server file", kind), more=True)
            if self.mode != "swallow":
                self.mode = "pass"
                await self.server_send(message)
        else:
            await self.server_send(message)

    async def on_start(self, message: Message) -> None:
        self.start = message
        exchange = self.exchange
        status = int(message["status"])
        raw = exchange.start_raw(status, message.get("headers"))
        if raw is not None:  # the caching headers only, on the headers as they are
            self.mode = "pass"
            await self.server_send({**message, "status": status, "headers": raw})
            return
        action = exchange.start(status, _decode(message.get("headers")))
        if isinstance(action, Replace):
            await _send_response(self.server_send, action.response)
            self.mode = "swallow"
        elif isinstance(action, Passthrough):
            self.mode = "pass"
            headers = _encode(action.headers)
            await self.server_send({**message, "status": action.status, "headers": headers})
        else:
            assert action is EDIT
            self.mode = "edit"

    async def on_body(self, message: Message) -> None:
        exchange = self.exchange
        more = bool(message.get("more_body", False))
        events = exchange.feed(bytes(message.get("body", b"")))
        if not more and not exchange.stopped:
            events += exchange.finish()
        await self.emit(events, more=more)

    async def emit(self, events: list[Event], *, more: bool) -> None:
        """Send the core's events; the body message closes the response when it ends."""
        body = []
        for event in events:
            if isinstance(event, _Start):
                assert self.start is not None
                start = {"type": "http.response.start"} if event.replaced else self.start
                self.trailers = bool(start.get("trailers"))
                headers = _encode(event.headers)
                await self.server_send({**start, "status": event.status, "headers": headers})
            else:
                body.append(event.data)
        stopped = self.exchange.stopped
        if body or not more or stopped:
            data = b"".join(body)
            more = more and not stopped
            await self.server_send({"type": "http.response.body", "body": data, "more_body": more})
        if stopped:
            self.mode = "swallow"

"""ASGI 3 middleware: show readers the notices their jurisdiction requires.

::

    from compliance import Engine
    from compliance.asgi import ComplianceMiddleware

    app = ComplianceMiddleware(app, Engine.from_paths(), trusted_proxies=["10.0.0.0/8"])

Pure ASGI, a thin shell over :mod:`compliance.policy`: only ``http`` scopes are looked at,
``websocket`` and ``lifespan`` pass straight through. The decision is in
``scope["state"]["compliance.decision"]``; the application may set
``scope["state"]["compliance.tags"]`` or answer with an ``X-Compliance-Tags`` header.
``http.response.start`` is held back until the first body message, so headers can still
change; responses that are not edited go through message for message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from compliance.policy import Exchange, Headers, Plan, Settings, log_fault, logger

__all__ = ["ComplianceMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in raw:
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _decode(raw: Any) -> Headers:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw or ()]


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _request_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(b"/"):
        return raw.partition(b"?")[0].decode("latin-1")
    return str(scope.get("root_path", "")) + str(scope.get("path", "/"))


class ComplianceMiddleware:
    """Inject the notices a reader's jurisdiction requires into HTML responses; answer
    blocked requests with 451 without calling the application.

    Takes the same options as :class:`compliance.wsgi.ComplianceMiddleware` (see
    :class:`compliance.policy.Settings`); ``csp_nonce`` is a ``scope["state"]`` key or a
    callable given the scope. It is a security issue to trust values that came from the
    client rather than a proxy: list in ``trusted_proxies`` only the proxies in front of you.
    """

    def __init__(self, app: ASGIApp, engine: Any, **options: Any) -> None:
        self.app = app
        self.engine = engine
        self.settings = Settings.from_options(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Responder(self, scope, send).run(receive)


class _Responder:
    """One request and its response; all per-request state lives here."""

    def __init__(self, middleware: ComplianceMiddleware, scope: Scope, send: Send) -> None:
        self.app = middleware.app
        self.settings = settings = middleware.settings
        self.scope = scope
        self.server_send = send
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        self.state: MutableMapping[str, Any] = state
        source = settings.csp_nonce

        def nonce() -> str | None:
            if source is None:
                return None
            value = state.get(source) if isinstance(source, str) else source(scope)
            return str(value) if value else None

        headers = _request_headers(scope.get("headers") or [])
        client = scope.get("client")
        server = scope.get("server")
        self.exchange = Exchange(
            settings,
            middleware.engine,
            method=str(scope.get("method", "GET")),
            host=headers.get("host") or (str(server[0]) if server else ""),
            path=_request_path(scope),
            peer=str(client[0]) if client else None,
            headers=headers,
            tags=lambda: state.get("compliance.tags"),
            nonce=nonce,
        )
        self.start: Message | None = None
        self.plan: Plan | None = None
        self.mode = "hold"  # hold | pass | edit | swallow
        self.committed = False
        self.original: list[bytes] = []  # body received before committing (for fail open)
        self.out: list[bytes] = []
        self.size = 0

    async def run(self, receive: Receive) -> None:
        exchange = self.exchange
        try:
            decision = exchange.begin()
        except Exception:
            log_fault("compliance decision failed for %s", exchange.path)
            if self.settings.fail_mode == "closed":
                await self.send_response(exchange.unavailable())
                return
            await self.app(self.scope, receive, self.server_send)
            return
        self.state["compliance.decision"] = decision
        if decision.block is not None:
            await self.send_response(exchange.block_response())
            return
        await self.app(self.scope, receive, self.send)

    async def send_response(self, response: tuple[int, Headers, bytes]) -> None:
        status, headers, body = response
        await self.server_send(
            {"type": "http.response.start", "status": status, "headers": _encode(headers)}
        )
        await self.server_send({"type": "http.response.body", "body": body})

    # -- the application's send

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self.on_start(message)
        elif self.mode == "pass":
            await self.server_send(message)
        elif self.mode == "swallow":
            return
        elif kind == "http.response.body":
            await self.on_body(message)
        elif self.committed or kind not in ("http.response.pathsend", "http.response.zerocopy"):
            await self.server_send(message)
        else:
            # A file the server sends itself cannot be edited: let it go out untouched.
            logger.debug("not editing %s: %s", self.exchange.path, kind)
            await self.commit_plain()
            self.mode = "pass"
            await self.server_send(message)

    async def on_start(self, message: Message) -> None:
        self.start = message
        exchange = self.exchange
        original = _decode(message.get("headers"))
        try:
            plan = exchange.respond(int(message["status"]), original)
        except Exception:
            log_fault("compliance response policy failed for %s", exchange.path)
            if self.settings.fail_mode == "closed":
                await self.send_response(exchange.unavailable())
                self.mode = "swallow"
                return
            plan = Plan(int(message["status"]), original)
        else:
            self.state["compliance.decision"] = exchange.decision
        self.plan = plan
        if plan.block is not None:
            await self.send_response(plan.block)
            self.mode = "swallow"
        elif plan.editor is None:
            self.mode = "pass"
            await self.server_send({**message, "headers": _encode(plan.headers)})
        else:
            self.mode = "edit"

    async def commit(self, headers: Headers) -> None:
        assert self.start is not None
        self.committed = True
        await self.server_send({**self.start, "headers": _encode(headers)})

    async def commit_plain(self) -> None:
        """Send the application's own start message (tags header removed)."""
        assert self.start is not None
        headers = _decode(self.start.get("headers"))
        self.committed = True
        await self.server_send(
            {
                **self.start,
                "headers": [(k, v) for k, v in _encode(headers) if k != b"x-compliance-tags"],
            }
        )

    async def fail(self, more_body: bool) -> None:
        """A fault before anything was sent: apply the fail mode."""
        if self.settings.fail_mode == "closed":
            await self.send_response(self.exchange.unavailable())
            self.mode = "swallow"
            return
        await self.commit_plain()
        self.mode = "pass"
        body = b"".join(self.original)
        self.original = []
        await self.server_send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def on_body(self, message: Message) -> None:
        plan = self.plan
        assert plan is not None
        editor = plan.editor
        assert editor is not None
        chunk = bytes(message.get("body", b""))
        more_body = bool(message.get("more_body", False))
        if not self.committed:
            self.original.append(chunk)
        try:
            out = editor.feed(chunk)
            if not more_body:
                out += editor.finish()
        except Exception:
            log_fault("compliance could not edit %s", self.exchange.path)
            if not self.committed:
                await self.fail(more_body)
                return
            # Mid-stream: the rest goes out as the application sent it (or not at all).
            if self.settings.fail_mode == "closed":
                await self.server_send({"type": "http.response.body", "body": b""})
                self.mode = "swallow"
            else:
                self.mode = "pass"
                await self.server_send(message)
            return
        if editor.fault is not None and not self.committed:
            await self.fail(more_body)
            return
        if self.committed:
            await self.server_send(
                {"type": "http.response.body", "body": out, "more_body": more_body}
            )
            return
        self.out.append(out)
        self.size += len(chunk)
        if more_body and plan.buffer and self.size <= 2 * editor.buffer_limit:
            return  # small and announced: collect it so Content-Length stays exact
        body = b"".join(self.out)
        self.out = []
        self.original = []
        await self.commit(plan.final_headers(None if more_body else len(body)))
        await self.server_send({"type": "http.response.body", "body": body, "more_body": more_body})

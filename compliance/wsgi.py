"""WSGI middleware: ``app = ComplianceMiddleware(app, Engine.from_paths(), **options)``.

Translation only: every decision is the response core's (:mod:`compliance.core`). While the
application runs, ``environ["compliance.decision"]`` holds the decision; it may set
``environ["compliance.tags"]``, answer ``X-Compliance-Tags`` or ``X-Compliance-Skip``, and add
to ``environ["compliance.rendered"]`` the rule ids its page renders itself. Unedited responses
are the application's own iterable (file wrappers included); ``close()`` always reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from itertools import chain
from typing import TYPE_CHECKING

from compliance import http as _http
from compliance.core import EDIT, Exchange, Middleware, Passthrough, Replace, Request, Start
from compliance.core import Event as _Event
from compliance.core import new_request as _new_request
from compliance.http import EnvironHeaders, Headers, parse_status, status_line

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ComplianceMiddleware"]


def _request(environ: WSGIEnvironment) -> Request:
    headers = EnvironHeaders(environ)
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    path = _http.target_path(raw) if isinstance(raw, str) else None
    if path is None:
        path = _http.url_path(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD", "GET")
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    peer = environ.get("REMOTE_ADDR") or None
    return _new_request((method, host, path, environ.get("QUERY_STRING", ""), peer, headers))


def _apply(environ: WSGIEnvironment, changes: Mapping[str, str | None]) -> None:
    keys = {name: "HTTP_" + name.upper().replace("-", "_") for name in changes}
    environ["compliance.original_headers"] = {n: environ.get(k) for n, k in keys.items()}
    for name, value in changes.items():
        environ.pop(keys[name], None) if value is None else environ.update({keys[name]: value})


class ComplianceMiddleware(Middleware["WSGIApplication"]):
    """Inject the notices a reader's jurisdiction requires into HTML responses; answer blocked
    requests with 451 without calling the application. Options: ``core.Middleware``."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        exchange = Exchange(*self.parts, _request(environ), environ, environ)
        early = exchange.begin()
        if early is not None:
            start_response(status_line(early.status), early.headers)
            return [early.body]
        if exchange.request_changes:
            _apply(environ, exchange.request_changes)
        return _Response(self.app, exchange, environ, start_response).run()


class _Response:
    """One response on its way out: the deferred ``start_response`` and the body."""

    def __init__(
        self, app: WSGIApplication, exchange: Exchange, environ: WSGIEnvironment, sr: StartResponse
    ) -> None:
        self.app, self.exchange, self.environ = app, exchange, environ
        self.server_start_response = sr

    captured: tuple[str, Headers, OptExcInfo | None] | None = None
    code = 0  # the status code of the captured status line (-1: the line is not plain)
    action: Passthrough | Replace | object | None = None
    committed = False
    fed = False  # bytes of the started response's body came (so, to the app, it is sent)
    direct = False  # the server iterates the application's iterable itself
    server_write: Callable[[bytes], object] | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if self.action is not None:  # a response was started and looked at
            if exc_info is None or exc_info[0] is None:
                raise RuntimeError("start_response called again without exc_info (PEP 3333)")
            if self.fed:
                raise exc_info[1].with_traceback(exc_info[2])
            self.exchange.restart()  # none of its body came: the new one replaces it
            self.committed = False
        self.captured = (status, list(headers), exc_info)
        self.action = None
        if self.direct and not isinstance(self.decide(), Passthrough):
            # The server iterates it: unedited (failing open), else a loud loss (its 500).
            events = self.exchange.give_up("restarted", "a new response after the body went direct")
            if self.exchange.stopped or not events or not isinstance(events[0], Start):
                raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[index,union-attr]
            self.commit(events[0].status, events[0].headers)
        elif self.direct:
            self.open()
        return self.write

    def decide(self) -> Passthrough | Replace | object:
        if self.action is None:
            if self.captured is None:
                raise RuntimeError("the WSGI application did not call start_response")
            status, headers, _ = self.captured
            code, plain = parse_status(status)
            self.code = code if plain else -1  # the line goes out as it is while it says it
            self.action = self.exchange.start(code, headers)
        return self.action

    def commit(self, status: int, headers: Headers) -> None:
        assert self.captured is not None
        line = self.captured[0] if status == self.code else status_line(status)
        self.committed = True
        self.server_write = self.server_start_response(line, headers, self.captured[2])

    def open(self) -> bytes:
        """Commit a response the core does not edit (one it edits commits with its first
        bytes); the body of one it replaces."""
        action = self.decide()
        if isinstance(action, Replace) and not self.committed:
            self.commit(action.response.status, action.response.headers)
            return action.response.body
        if isinstance(action, Passthrough) and not self.committed:
            self.commit(action.status, action.headers)
        return b""

    def send(self, events: list[_Event]) -> Iterator[bytes]:
        for event in events:
            if isinstance(event, Start):
                self.commit(event.status, event.headers)
            elif event.data:
                yield event.data

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable."""
        action = self.decide()
        if isinstance(action, Passthrough) and not self.committed:
            self.commit(action.status, action.headers)
        self.fed = self.fed or bool(data)
        pieces = [] if isinstance(action, Replace) else [data]
        for piece in self.send(self.exchange.feed(data)) if action is EDIT else pieces:
            assert self.server_write is not None
            self.server_write(piece)

    def run(self) -> Iterable[bytes]:
        app_iter = self.app(self.environ, self.start_response)
        try:
            if self.captured is not None:
                action = self.decide()
                if isinstance(action, Passthrough) and not self.committed:
                    self.commit(action.status, action.headers)
                    self.direct = True
                    return app_iter  # untouched: file wrappers and all
            return _Body(self, app_iter)
        except BaseException:
            getattr(app_iter, "close", lambda: None)()
            raise

    def body(self, app_iter: Iterable[bytes]) -> Generator[bytes, None, None]:
        exchange = self.exchange
        # (start_response may come with the first chunk: generator applications.)
        for chunk in chain(app_iter, (None,)):
            if not self.committed:  # first, or started again (exc_info) before any body
                opened = self.open()
                if opened:
                    yield opened
            if chunk is None or isinstance(self.action, Replace):
                break
            self.fed = self.fed or bool(chunk)
            if self.action is not EDIT:
                yield chunk
                continue
            yield from self.send(exchange.feed(chunk))
            if exchange.stopped:
                return
        if self.action is EDIT:
            yield from self.send(exchange.finish())


class _Body:
    """The edited response body; ``close()`` always reaches the application's iterable."""

    def __init__(self, response: _Response, app_iter: Iterable[bytes]) -> None:
        self._app_iter = app_iter
        self._gen: Generator[bytes, None, None] = response.body(app_iter)
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self._gen

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._gen.close()
            finally:
                getattr(self._app_iter, "close", lambda: None)()

"""WSGI middleware: show readers the notices their jurisdiction requires.

::

    from compliance import Engine
    from compliance.wsgi import ComplianceMiddleware

    app = ComplianceMiddleware(app, Engine.from_paths(), trusted_proxies=["10.0.0.0/8"])

A thin shell over :mod:`compliance.policy`. The decision is in ``environ["compliance.decision"]``
while the application runs; the application may set ``environ["compliance.tags"]`` (a list or
a comma-separated string) or answer with an ``X-Compliance-Tags`` header. Responses that are not
edited are returned as the application's own iterable object (``wsgi.file_wrapper`` included);
edited ones are streamed, and the application's ``close()`` is always called.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from compliance.policy import Exchange, Headers, Plan, Settings, log_fault

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ComplianceMiddleware"]

_Write = Callable[[bytes], object]


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _request_path(environ: WSGIEnvironment) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        return raw.partition("?")[0]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PEP 3333 strings are latin-1 decoded bytes; the engine expects a URL path.
    return quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~") or "/"


class ComplianceMiddleware:
    """Inject the notices a reader's jurisdiction requires into HTML responses; answer
    blocked requests with 451 without calling the application.

    Options (see :class:`compliance.policy.Settings`): ``trusted_proxies`` (networks whose
    forwarding headers are believed; none by default; it is a security issue to trust values
    that came from the client rather than a proxy), ``proxy_hops``, ``geo_header`` (CDN
    provider, e.g. ``"cloudflare"``), ``fail_mode`` (``"open"``/``"closed"``),
    ``cache_policy`` (``"private"``/``"vary"``/``"off"``), ``csp_nonce`` (an environ key or a
    callable given the environ), ``css``, ``debug_headers``, ``debug_networks``,
    ``buffer_limit``, ``max_hold``.
    """

    def __init__(self, app: WSGIApplication, engine: Any, **options: Any) -> None:
        self.app = app
        self.engine = engine
        self.settings = Settings.from_options(**options)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        settings = self.settings
        source = settings.csp_nonce

        def nonce() -> str | None:
            if source is None:
                return None
            value = environ.get(source) if isinstance(source, str) else source(environ)
            return str(value) if value else None

        exchange = Exchange(
            settings,
            self.engine,
            method=environ.get("REQUEST_METHOD", "GET"),
            host=environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
            path=_request_path(environ),
            peer=environ.get("REMOTE_ADDR") or None,
            headers=_request_headers(environ),
            tags=lambda: environ.get("compliance.tags"),
            nonce=nonce,
        )
        try:
            decision = exchange.begin()
        except Exception:
            log_fault("compliance decision failed for %s", environ.get("PATH_INFO", "/"))
            if settings.fail_mode == "closed":
                return _send(start_response, exchange.unavailable())
            return self.app(environ, start_response)
        environ["compliance.decision"] = decision
        if decision.block is not None:
            return _send(start_response, exchange.block_response())
        return _Response(self.app, exchange, environ, start_response).run()


def _send(start_response: StartResponse, response: tuple[int, Headers, bytes]) -> list[bytes]:
    status, headers, body = response
    start_response(_status_line(status), headers)
    return [body]


class _Response:
    """One response on its way out: the deferred ``start_response`` and the body."""

    def __init__(
        self,
        app: WSGIApplication,
        exchange: Exchange,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> None:
        self.app = app
        self.exchange = exchange
        self.environ = environ
        self.server_start_response = start_response
        self.captured: tuple[str, Headers, OptExcInfo | None] | None = None
        self.plan: Plan | None = None
        self.passthrough: Headers | None = None  # the original headers, tags header removed
        self.committed = False
        self.server_write: _Write | None = None

    # -- start_response as the application sees it

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> _Write:
        if exc_info is not None and exc_info[0] is not None and self.committed:
            raise exc_info[1].with_traceback(exc_info[2])
        self.captured = (status, list(headers), exc_info)
        self.plan = None
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: commit the headers and stream through the editor."""
        plan = self.decide()
        if plan.block is not None or plan.editor is None:
            self.commit_plain()
            self.write_out(data)
            return
        if not self.committed:
            self.commit(plan.status, plan.final_headers(None))
        self.write_out(self.feed_streaming(plan, data))

    def write_out(self, data: bytes) -> None:
        if data:
            assert self.server_write is not None
            self.server_write(data)

    # -- deciding and committing

    def decide(self) -> Plan:
        """The plan for the captured status and headers; on a library fault, the fail mode."""
        if self.plan is not None:
            return self.plan
        if self.captured is None:
            raise RuntimeError("the WSGI application did not call start_response")
        status_text, headers, _ = self.captured
        status = int(status_text.split(None, 1)[0])
        exchange = self.exchange
        try:
            self.plan = exchange.respond(status, headers)
        except Exception:
            log_fault("compliance response policy failed for %s", exchange.path)
            if exchange.settings.fail_mode == "closed":
                code, extra, body = exchange.unavailable()
                self.plan = Plan(status, headers, block=(code, extra, body))
            else:
                self.plan = Plan(status, headers)
        else:
            self.environ["compliance.decision"] = exchange.decision
        self.passthrough = [(k, v) for k, v in headers if k.lower() != "x-compliance-tags"]
        if self.plan.editor is None and self.plan.block is None:
            self.passthrough = self.plan.headers
        return self.plan

    def commit(self, status: int | str, headers: Headers) -> None:
        line = status if isinstance(status, str) else _status_line(status)
        assert self.captured is not None
        exc_info = self.captured[2]
        self.committed = True
        self.server_write = self.server_start_response(line, headers, exc_info)

    def commit_plain(self) -> None:
        """Send the application's status and headers as they were (tags header removed)."""
        if not self.committed:
            assert self.captured is not None
            assert self.passthrough is not None
            self.commit(self.captured[0], self.passthrough)

    def fail(self, original: list[bytes]) -> Iterator[bytes]:
        """A fault before anything was sent: the fail mode, with the original chunks so far."""
        exchange = self.exchange
        if exchange.settings.fail_mode == "closed":
            status, headers, body = exchange.unavailable()
            self.commit(status, headers)
            yield body
            return
        self.commit_plain()
        yield from original

    def feed_streaming(self, plan: Plan, chunk: bytes) -> bytes:
        editor = plan.editor
        assert editor is not None
        try:
            return editor.feed(chunk)
        except Exception:
            log_fault("compliance could not edit %s; sending the rest unedited", self.exchange.path)
            plan.editor = None
            return b"" if self.exchange.settings.fail_mode == "closed" else chunk

    # -- the body

    def run(self) -> Iterable[bytes]:
        app_iter = self.app(self.environ, self.start_response)
        try:
            if self.captured is None:
                return _Body(self, app_iter)
            plan = self.decide()
            if plan.editor is None and plan.block is None:
                self.commit_plain()
                return app_iter  # untouched: file wrappers and all
            return _Body(self, app_iter)
        except BaseException:
            _close(app_iter)
            raise

    def body(self, app_iter: Iterable[bytes]) -> Generator[bytes, None, None]:
        chunks: Iterator[bytes] = iter(app_iter)
        if self.captured is None or self.plan is None:
            # start_response may come with the first chunk (generator applications).
            first = next(chunks, None)
            self.decide()
            if first is not None:
                chunks = chain((first,), chunks)
        plan = self.plan
        assert plan is not None
        if plan.block is not None:
            status, headers, body = plan.block
            self.commit(status, headers)
            yield body
            return
        if plan.editor is None:
            self.commit_plain()
            yield from chunks
            return
        if plan.buffer and not self.committed:
            yield from self.buffered(plan, chunks)
        else:
            yield from self.streamed(plan, chunks)

    def buffered(self, plan: Plan, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Edit the whole (small) body before sending, so Content-Length is exact."""
        editor = plan.editor
        assert editor is not None
        original: list[bytes] = []
        out: list[bytes] = []
        size = 0
        limit = 2 * editor.buffer_limit
        try:
            for chunk in chunks:
                original.append(chunk)
                size += len(chunk)
                out.append(editor.feed(chunk))
                if size > limit:  # the application said less than it sends: stream
                    break
            else:
                out.append(editor.finish())
                chunks = iter(())
        except Exception:
            log_fault("compliance could not edit %s", self.exchange.path)
            yield from self.fail(original)
            yield from chunks
            return
        if editor.fault is not None:
            yield from self.fail(original)
            yield from chunks
            return
        body = b"".join(out)
        if size > limit:
            self.commit(plan.status, plan.final_headers(None))
            yield body
            yield from self.streamed(plan, chunks)
            return
        self.commit(plan.status, plan.final_headers(len(body)))
        yield body

    def streamed(self, plan: Plan, chunks: Iterator[bytes]) -> Iterator[bytes]:
        editor = plan.editor
        assert editor is not None
        closed = self.exchange.settings.fail_mode == "closed"
        for chunk in chunks:
            if plan.editor is None:  # editing stopped mid-stream
                if closed:
                    return
                yield chunk
                continue
            if not self.committed:
                try:
                    out = editor.feed(chunk)
                except Exception:
                    log_fault("compliance could not edit %s", self.exchange.path)
                    out = None
                if out is None or editor.fault is not None:
                    plan.editor = None
                    yield from self.fail([chunk])
                    if closed:
                        return
                    continue
                self.commit(plan.status, plan.final_headers(None))
            else:
                out = self.feed_streaming(plan, chunk)
            if out:
                yield out
        if not self.committed:
            self.commit(plan.status, plan.final_headers(None))
        if plan.editor is not None:
            try:
                tail = editor.finish()
            except Exception:
                log_fault("compliance could not finish editing %s", self.exchange.path)
                return
            if tail:
                yield tail


class _Body:
    """The edited response body; ``close()`` always reaches the application's iterable."""

    def __init__(self, response: _Response, app_iter: Iterable[bytes]) -> None:
        self._app_iter = app_iter
        self._gen: Generator[bytes, None, None] = response.body(app_iter)
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self._gen

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._gen.close()
        finally:
            _close(self._app_iter)


def _close(app_iter: Iterable[bytes]) -> None:
    close = getattr(app_iter, "close", None)
    if close is not None:
        close()

"""The Django middleware: Django's request and response objects through the response core.

Every policy decision is :mod:`compliance.core`'s, exactly as behind the WSGI and ASGI
middlewares; this module only translates Django's request into a core request and feeds the
response (``content``, or ``streaming_content`` sync or async) through the core's exchange.
"""

from __future__ import annotations

import http
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Final

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from compliance.core import (
    EDIT,
    STATE_DECISION,
    STATE_TAGS,
    Data,
    Event,
    Exchange,
    Middleware,
    Passthrough,
    Replace,
    Start,
)
from compliance.core import Request as CoreRequest
from compliance.core import Response as CoreResponse
from compliance.http import EnvironHeaders
from compliance.metrics import Snapshot

__all__ = ["ComplianceMiddleware"]

_GetResponse = Callable[[HttpRequest], Any]


def _core() -> Middleware[None]:
    from compliance.contrib.django.conf import middleware_core

    return middleware_core()


class ComplianceMiddleware:
    """``MIDDLEWARE = [..., "compliance.contrib.django.ComplianceMiddleware", ...]``.

    Configured by ``settings.COMPLIANCE`` (see :mod:`compliance.contrib.django`). Sync and
    async capable. Sets ``request.compliance`` to the reader's
    :class:`~compliance.decision.Decision` (None until decided, and after a fault in
    fail-open mode). A view may set ``request.compliance_tags`` (a list or a comma-separated
    string) or answer with an ``X-Compliance-Tags`` header.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: _GetResponse) -> None:
        self.get_response = get_response
        self.core = _core()
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def metrics(self) -> Snapshot:
        """This middleware's counters (see :class:`compliance.metrics.Metrics`)."""
        return self.core.metrics()

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        exchange = self._begin(request)
        early = exchange.begin()
        if early is not None:
            return _django_response(early)
        _apply(request, exchange.request_changes)
        try:
            response: HttpResponseBase = self.get_response(request)
            return _Edit(exchange, response).sync()
        finally:
            _restore(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        exchange = self._begin(request)
        early = exchange.begin()
        if early is not None:
            return _django_response(early)
        _apply(request, exchange.request_changes)
        try:
            response: HttpResponseBase = await self.get_response(request)
            return await _Edit(exchange, response).asynchronous()
        finally:
            _restore(request)

    def _begin(self, request: HttpRequest) -> Exchange:
        request.compliance = None  # type: ignore[attr-defined]
        return self.core.exchange(_core_request(request), _RequestState(request), request)


_ATTRIBUTES: Final = {STATE_TAGS: "compliance_tags", STATE_DECISION: "compliance"}
"""Keys of the shared state a Django request also has as attributes."""


class _RequestState(MutableMapping[str, object]):
    """What a Django request shares with the core: ``request.META``, where a request
    attribute (``request.compliance_tags``, a nonce attribute named by ``csp_nonce``) wins
    when set, and the decision also goes to ``request.compliance``."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request
        self._meta = request.META

    def __getitem__(self, key: str) -> object:
        value = getattr(self._request, _ATTRIBUTES.get(key, key), None)
        return value if value else self._meta[key]

    def __setitem__(self, key: str, value: object) -> None:
        self._meta[key] = value
        if key == STATE_DECISION:
            self._request.compliance = value  # type: ignore[attr-defined]

    def __delitem__(self, key: str) -> None:
        del self._meta[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._meta)

    def __len__(self) -> int:
        return len(self._meta)


def _core_request(request: HttpRequest) -> CoreRequest:
    meta = request.META
    headers = EnvironHeaders(meta)
    # get_full_path() is the path as a URL: percent-encoded, script prefix included.
    path = request.get_full_path().partition("?")[0] or "/"
    return CoreRequest(
        method=request.method or "GET",
        host=str(meta.get("HTTP_HOST") or meta.get("SERVER_NAME") or ""),
        path=path,
        query=str(meta.get("QUERY_STRING", "")),
        peer=meta.get("REMOTE_ADDR") or None,
        headers=headers,
    )


def _apply(request: HttpRequest, changes: Mapping[str, str | None]) -> None:
    """Request headers the core changes before the view runs (e.g. ``Accept-Encoding``)."""
    if not changes:
        return
    original = {}
    for name, value in changes.items():
        key = "HTTP_" + name.upper().replace("-", "_")
        original[name] = request.META.get(key)
        if value is None:
            request.META.pop(key, None)
        else:
            request.META[key] = value
    request.META["compliance.original_headers"] = original
    # request.headers is built once from META (a cached property): let it be built again.
    request.__dict__.pop("headers", None)


_KEPT_FROM_OUTER: Final = frozenset({"range", "if-range", "if-modified-since"})
"""Request headers the core removed that stay removed for the middlewares listed before
this one: a range or a date names no variant, so ConditionalGetMiddleware would answer 304
(or a range) to a copy without the reader's notices."""


def _restore(request: HttpRequest) -> None:
    """The reader's own request headers again, once the response is made, for the
    middlewares listed before this one (ConditionalGetMiddleware then compares the
    reader's ``If-None-Match`` with the ETag of the variant the reader got)."""
    original = request.META.get("compliance.original_headers")
    if not isinstance(original, dict):
        return
    for name, value in original.items():
        if name in _KEPT_FROM_OUTER:
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        if value is None:
            request.META.pop(key, None)
        else:
            request.META[key] = value
    request.__dict__.pop("headers", None)


def _headers_of(response: HttpResponseBase) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in response.items()]


def _set_status_and_headers(
    response: HttpResponseBase, status: int, headers: Iterable[tuple[str, str]]
) -> None:
    if response.status_code != status:
        response.status_code = status
        response.reason_phrase = http.HTTPStatus(status).phrase if status in _STATUSES else ""
    for name in list(response.headers):
        del response.headers[name]
    for name, value in headers:
        if name in response.headers:  # one value per name in Django: join repeats
            response.headers[name] = f"{response.headers[name]}, {value}"
        else:
            response.headers[name] = value


_STATUSES = frozenset(s.value for s in http.HTTPStatus)


def _django_response(answer: CoreResponse) -> HttpResponse:
    """A response the core answered itself (a 451 block, a 503, the decision JSON)."""
    response = HttpResponse(answer.body, status=answer.status)
    _set_status_and_headers(response, answer.status, answer.headers)
    return response


def _split(events: Iterable[Event]) -> tuple[Start | None, list[bytes]]:
    start: Start | None = None
    data: list[bytes] = []
    for event in events:
        if isinstance(event, Start):
            start = start or event
        elif isinstance(event, Data) and event.data:
            data.append(event.data)
    return start, data


class _Edit:
    """One response through the exchange, once the view has answered."""

    def __init__(self, exchange: Exchange, response: HttpResponseBase) -> None:
        self.exchange = exchange
        self.response = response

    def _action(self) -> HttpResponseBase | None:
        """The response when the core does not edit the body; None when it does."""
        response = self.response
        action = self.exchange.start(response.status_code, _headers_of(response))
        if isinstance(action, Passthrough):
            _set_status_and_headers(response, action.status, action.headers)
            return response
        if isinstance(action, Replace):
            response.close()
            return _django_response(action.response)
        assert action is EDIT
        return None

    def _finish_start(self, start: Start | None) -> None:
        if start is not None:
            _set_status_and_headers(self.response, start.status, start.headers)

    def sync(self) -> HttpResponseBase:
        done = self._action()
        if done is not None:
            return done
        response, exchange = self.response, self.exchange
        if not response.streaming:
            assert isinstance(response, HttpResponse)
            events = exchange.feed(response.content)
            if not exchange.stopped:
                events += exchange.finish()
            start, data = _split(events)
            self._finish_start(start)
            response.content = b"".join(data)
            return response
        assert isinstance(response, StreamingHttpResponse)
        # iter(response): Django's own way to serve an async iterator synchronously too.
        chunks: Iterator[Any] = iter(response)
        # Django sends the headers before the body: read until the core has committed
        # them (bounded by its hold buffer), then stream the rest through it.
        pending: list[Event] = []
        while not any(isinstance(e, Start) for e in pending):
            chunk = next(chunks, None)
            if chunk is None:
                pending += exchange.finish()
                chunks = iter(())
                break
            pending += exchange.feed(bytes(chunk))
            if exchange.stopped:
                chunks = iter(())
                break
        start, data = _split(pending)
        self._finish_start(start)
        _replace_stream(response, _rest(exchange, data, chunks))
        return response

    async def asynchronous(self) -> HttpResponseBase:
        response = self.response
        if not response.streaming:
            return self.sync()
        if not getattr(response, "is_async", False):
            # A sync iterator may use the database or other sync-only code: iterate it in
            # a thread, never in the event loop, as Django's ASGI handler does
            # (StreamingHttpResponse.__aiter__: sync_to_async, thread-sensitive). The rest
            # of the body stays a sync iterator, which the handler consumes the same way.
            return await sync_to_async(self.sync, thread_sensitive=True)()
        done = self._action()
        if done is not None:
            return done
        assert isinstance(response, StreamingHttpResponse)
        exchange = self.exchange
        chunks = aiter(response.streaming_content)  # type: ignore[arg-type]
        pending: list[Event] = []
        finished = False
        while not any(isinstance(e, Start) for e in pending):
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                pending += exchange.finish()
                finished = True
                break
            pending += exchange.feed(bytes(chunk))
            if exchange.stopped:
                finished = True
                break
        start, data = _split(pending)
        self._finish_start(start)
        _replace_stream(response, _arest(exchange, data, None if finished else chunks))
        return response


def _body(events: list[Event]) -> list[bytes]:
    """The body bytes among the core's events."""
    return [event.data for event in events if isinstance(event, Data) and event.data]


def _rest(exchange: Exchange, first: list[bytes], chunks: Iterator[Any]) -> Iterator[bytes]:
    # The core never raises (a fault of its own goes through the fail mode); an exception
    # here is the view's iterator's, and propagates as it would without the middleware.
    yield from first
    for chunk in chunks:
        yield from _body(exchange.feed(bytes(chunk)))
        if exchange.stopped:
            return
    yield from _body(exchange.finish())


async def _arest(
    exchange: Exchange, first: list[bytes], chunks: AsyncIterator[Any] | None
) -> AsyncIterator[bytes]:
    for data in first:
        yield data
    if chunks is None:
        return
    async for chunk in chunks:
        for data in _body(exchange.feed(bytes(chunk))):
            yield data
        if exchange.stopped:
            return
    for data in _body(exchange.finish()):
        yield data


def _replace_stream(response: StreamingHttpResponse, content: Any) -> None:
    # A FileResponse would otherwise be sent by the server's file wrapper, unedited.
    if getattr(response, "file_to_stream", None) is not None:
        response.file_to_stream = None  # type: ignore[attr-defined]
    response.streaming_content = content

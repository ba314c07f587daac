"""The response policy shared by the WSGI and ASGI adapters, free of any web framework.

One :class:`Settings` per middleware, validated up front; one :class:`Exchange` per request.
An exchange decides for the request (:meth:`Exchange.begin`), builds the 451 page for a block
(:meth:`Exchange.block_response`), and, once the application has sent its status and headers,
says what to do with the response (:meth:`Exchange.respond`): pass it through untouched, or
rewrite the headers and run the body through a :class:`BodyEditor`
(decompress, inject, recompress).

The adapters only translate between this and their protocol: headers are ``(str, str)`` pairs
here, latin-1 decoded, exactly as WSGI has them.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from compliance.client import ClientAddress, TrustedProxies, resolve_client
from compliance.errors import ConfigurationError
from compliance.geo import HeaderGeolocator, Location
from compliance.inject import Injector, PageInfo, Placement

try:  # optional: brotli bodies are edited only when the package is installed
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

__all__ = [
    "BodyEditor",
    "Exchange",
    "Plan",
    "Settings",
    "merge_vary",
    "prefers_json",
    "private_cache_control",
]

logger = logging.getLogger("compliance.middleware")

Headers = list[tuple[str, str]]
FailMode = Literal["open", "closed"]
CachePolicy = Literal["private", "vary", "off"]
NonceSource = str | Callable[[Any], str | None] | None

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
_TAGS_HEADER = "x-compliance-tags"
_DEBUG_HEADER = "X-Compliance-Decision"
_NONCE_IN_CSP = re.compile(r"'nonce-([A-Za-z0-9+/_=-]+)'")
_CANONICAL = {
    "accept-language": "Accept-Language",
    "cf-ipcountry": "CF-IPCountry",
    "cf-region-code": "CF-Region-Code",
    "cloudfront-viewer-country": "CloudFront-Viewer-Country",
    "cloudfront-viewer-country-region": "CloudFront-Viewer-Country-Region",
}


def brotli_available() -> bool:
    """Whether ``br`` bodies can be edited (the ``brotli`` package is installed)."""
    return _brotli is not None


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The middleware options, checked once when the middleware is created.

    >>> Settings.from_options(fail_mode="closed").fail_mode
    'closed'
    >>> Settings.from_options(fail_mode="maybe")
    Traceback (most recent call last):
    ...
    compliance.errors.ConfigurationError: fail_mode must be 'open' or 'closed', not 'maybe'
    """

    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    """Proxies whose forwarding and CDN headers are believed. None by default."""
    geo_header: HeaderGeolocator | None = None
    """CDN geolocation headers, read (from trusted proxies only) before the engine's own."""
    fail_mode: FailMode = "open"
    """On a library fault: ``"open"`` sends the original response, ``"closed"`` a 503."""
    cache_policy: CachePolicy = "private"
    """``"private"``: Vary plus ``Cache-Control: private`` for IP-located pages; ``"vary"``:
    Vary only; ``"off"``: neither."""
    csp_nonce: NonceSource = None
    """Where the CSP nonce for the default CSS comes from: an ``environ`` key (WSGI) or
    ``scope["state"]`` key (ASGI), or a callable given the environ / scope. Without it, the
    response's ``Content-Security-Policy`` header, then the page's own nonce, are used."""
    css: bool = False
    """Emit the default notice CSS before the first notice."""
    debug_headers: bool = False
    """Send ``X-Compliance-Decision`` to clients in ``debug_networks``."""
    debug_networks: TrustedProxies = field(
        default_factory=lambda: TrustedProxies(["127.0.0.0/8", "::1/128"])
    )
    """Client addresses that may see the debug header (default: loopback only)."""
    buffer_limit: int = 256 * 1024
    """Edited bodies announced smaller than this are buffered so Content-Length stays exact."""
    max_hold: int = 256 * 1024
    """Bytes the injector may hold back while looking for the insertion point."""

    @classmethod
    def from_options(
        cls,
        *,
        trusted_proxies: TrustedProxies | Iterable[str] | str | None = None,
        proxy_hops: int = 0,
        geo_header: HeaderGeolocator | str | None = None,
        fail_mode: str = "open",
        cache_policy: str = "private",
        csp_nonce: NonceSource = None,
        css: bool = False,
        debug_headers: bool = False,
        debug_networks: TrustedProxies | Iterable[str] | str | None = None,
        buffer_limit: int = 256 * 1024,
        max_hold: int = 256 * 1024,
    ) -> Settings:
        """Settings from the keyword options the middlewares take; ConfigurationError on
        anything malformed."""
        if isinstance(trusted_proxies, TrustedProxies):
            if proxy_hops:
                raise ConfigurationError("give proxy_hops to TrustedProxies, not beside it")
            proxies = trusted_proxies
        else:
            proxies = TrustedProxies(trusted_proxies or (), hops=proxy_hops)
        header: HeaderGeolocator | None
        if geo_header is None or isinstance(geo_header, HeaderGeolocator):
            header = geo_header
        elif isinstance(geo_header, str):
            header = HeaderGeolocator(geo_header)
        else:
            raise ConfigurationError(
                f"geo_header must be a provider name or a HeaderGeolocator, not {geo_header!r}"
            )
        if header is not None and not proxies:
            raise ConfigurationError(
                "geo_header needs trusted_proxies: CDN headers are only believed from them"
            )
        if fail_mode not in ("open", "closed"):
            raise ConfigurationError(f"fail_mode must be 'open' or 'closed', not {fail_mode!r}")
        if cache_policy not in ("private", "vary", "off"):
            raise ConfigurationError(
                f"cache_policy must be 'private', 'vary' or 'off', not {cache_policy!r}"
            )
        if csp_nonce is not None and not (isinstance(csp_nonce, str) or callable(csp_nonce)):
            raise ConfigurationError("csp_nonce must be a key name, a callable or None")
        for name, flag in (("css", css), ("debug_headers", debug_headers)):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True or False, not {flag!r}")
        for name, number in (("buffer_limit", buffer_limit), ("max_hold", max_hold)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ConfigurationError(f"{name} must be a non-negative integer, not {number!r}")
        if debug_networks is None:
            debuggers = TrustedProxies(["127.0.0.0/8", "::1/128"])
        elif isinstance(debug_networks, TrustedProxies):
            debuggers = debug_networks
        else:
            debuggers = TrustedProxies(debug_networks)
        return cls(
            trusted_proxies=proxies,
            geo_header=header,
            fail_mode=fail_mode,  # type: ignore[arg-type]
            cache_policy=cache_policy,  # type: ignore[arg-type]
            csp_nonce=csp_nonce,
            css=css,
            debug_headers=debug_headers,
            debug_networks=debuggers,
            buffer_limit=buffer_limit,
            max_hold=max_hold,
        )


# -- header helpers ---------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return _CANONICAL.get(name) or "-".join(part.capitalize() for part in name.split("-"))


def merge_vary(existing: Sequence[str], names: Iterable[str]) -> str | None:
    """The ``Vary`` value with ``names`` added, case-insensitively and without duplicates;
    None when nothing changes (``Vary: *`` already varies on everything).

    >>> merge_vary(["Accept-Encoding"], ["accept-language", "ACCEPT-ENCODING"])
    'Accept-Encoding, Accept-Language'
    >>> merge_vary(["*"], ["accept-language"]) is None
    True
    """
    items = [item.strip() for value in existing for item in value.split(",") if item.strip()]
    if "*" in items:
        return None
    seen = {item.lower() for item in items}
    added = False
    for entry in names:
        for part in entry.split(","):
            name = part.strip().lower()
            if name and name not in seen:
                seen.add(name)
                items.append(_canonical(name))
                added = True
    return ", ".join(items) if added else None


def private_cache_control(existing: Sequence[str]) -> str:
    """``Cache-Control`` made safe from shared caches: ``public`` and ``s-maxage`` removed,
    ``private`` added.

    >>> private_cache_control(["public, max-age=60, s-maxage=600"])
    'max-age=60, private'
    """
    kept = []
    for value in existing:
        for item in value.split(","):
            directive = item.strip()
            name = directive.partition("=")[0].strip().lower()
            if directive and name not in ("public", "s-maxage", "private"):
                kept.append(directive)
    kept.append("private")
    return ", ".join(kept)


def prefers_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header ranks JSON above HTML.

    >>> prefers_json("application/json"), prefers_json("text/html,application/json;q=0.9")
    (True, False)
    >>> prefers_json(None), prefers_json("*/*")
    (False, False)
    """
    if not accept:
        return False
    best = {"json": -1.0, "html": -1.0}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in ("application/json", "application/problem+json") or media.endswith("+json"):
            best["json"] = max(best["json"], quality)
        elif media in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            best["html"] = max(best["html"], quality)
    return best["json"] > 0 and best["json"] > best["html"]


def _media_type(value: str) -> tuple[str, str | None]:
    media, *params = value.split(";")
    charset = None
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "charset":
            charset = raw.strip().strip('"') or None
    return media.strip().lower(), charset


def _get_all(headers: Headers, name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _index(headers: Headers) -> dict[str, list[str]]:
    """Header values by lower-case name, in order: one pass instead of one per name."""
    index: dict[str, list[str]] = {}
    for key, value in headers:
        name = key.lower()
        found = index.get(name)
        if found is None:
            index[name] = [value]
        else:
            found.append(value)
    return index


def _without(headers: Headers, *names: str) -> Headers:
    return [(key, value) for key, value in headers if key.lower() not in names]


def _tags(value: Any) -> frozenset[str]:
    if not value:
        return frozenset()
    if isinstance(value, str):
        return frozenset(tag.strip() for tag in value.split(",") if tag.strip())
    return frozenset(str(tag).strip() for tag in value if str(tag).strip())


FAULT_LOG_INTERVAL = 60.0
"""Seconds during which a repeat of the same fault is counted instead of logged again."""

_fault_seen: dict[tuple[str, str, str], tuple[float, int]] = {}
_fault_lock = threading.Lock()


def log_fault(message: str, *args: object) -> None:
    """Log a library fault with its traceback (call from an ``except`` block).

    The same fault (same message template, exception type and text) is logged once per
    :data:`FAULT_LOG_INTERVAL`; repeats in between are counted and the count is reported
    with the next log of it, so a fault hit by every request does not flood the log.
    """
    exc = sys.exc_info()[1]
    key = (message, type(exc).__name__, str(exc)[:500])
    now = time.monotonic()
    with _fault_lock:
        first, repeats = _fault_seen.get(key, (-FAULT_LOG_INTERVAL, 0))
        if now - first < FAULT_LOG_INTERVAL:
            _fault_seen[key] = (first, repeats + 1)
            return
        if len(_fault_seen) >= 1024:
            _fault_seen.clear()
        _fault_seen[key] = (now, 0)
    if repeats:
        message += f" (it also happened {repeats} more times since it was last logged)"
    logger.exception(message, *args)


# -- the engine seen from here ----------------------------------------------------------------


class DecisionLike(Protocol):  # pragma: no cover - typing only
    """What the policy needs from :class:`compliance.engine.Decision`."""

    location: Location
    notices: Sequence[Any]
    block: Any
    headers: Mapping[str, str]
    vary: tuple[str, ...]
    private: bool
    applied: tuple[str, ...]

    def snippets(
        self, page_language: str | None = None, *, css: bool = False, nonce: str | None = None
    ) -> Mapping[Placement, str]: ...


class EngineLike(Protocol):  # pragma: no cover - typing only
    """What the policy needs from :class:`compliance.engine.Engine`."""

    def decide(self, **kwargs: Any) -> Any: ...


# -- per request ------------------------------------------------------------------------------


@dataclass
class Plan:
    """What to do with one response, once its status and headers are known."""

    status: int
    headers: Headers
    """The headers to send (Content-Length still as the application gave it when editing;
    use :meth:`final_headers`)."""
    editor: BodyEditor | None = None
    """None: pass the body through untouched."""
    block: tuple[int, Headers, bytes] | None = None
    """A 451 that replaces the response (response tags turned it into a block)."""
    content_length: int | None = None
    """The application's Content-Length, when it gave one."""

    def final_headers(self, length: int | None) -> Headers:
        """Headers for the edited body: Content-Length set to ``length``, or dropped."""
        headers = _without(self.headers, "content-length")
        if length is not None:
            headers.append(("Content-Length", str(length)))
        return headers

    @property
    def buffer(self) -> bool:
        """Whether to collect the whole edited body so Content-Length can be exact."""
        return (
            self.editor is not None
            and self.content_length is not None
            and self.content_length <= self.editor.buffer_limit
        )


class Exchange:
    """The policy for one request and its response. Not shared between requests."""

    __slots__ = (
        "_request_tags",
        "_tags",
        "client",
        "decision",
        "engine",
        "headers",
        "host",
        "method",
        "nonce",
        "path",
        "settings",
    )

    def __init__(
        self,
        settings: Settings,
        engine: EngineLike,
        *,
        method: str,
        host: str,
        path: str,
        peer: str | None,
        headers: Mapping[str, str],
        tags: Callable[[], Any] = lambda: None,
        nonce: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.method = method.upper()
        self.host = host
        self.path = path
        self.headers = headers
        self._request_tags = tags
        self._tags: frozenset[str] = frozenset()
        self.nonce = nonce
        self.decision: Any = None
        """The :class:`~compliance.engine.Decision`, once made (None after a fault)."""
        self.client: ClientAddress = resolve_client(peer, headers, settings.trusted_proxies)

    # -- deciding

    def _decide(self, tags: frozenset[str]) -> Any:
        client = self.client
        location: Location | None = None
        geo = self.settings.geo_header
        if geo is not None:
            found = geo.locate(client.ip, self.headers, trusted=client.via_trusted_proxy)
            if found.country is not None:
                location = found
        return self.engine.decide(
            ip=client.ip,
            host=self.host,
            path=self.path,
            accept_language=self.headers.get("accept-language"),
            tags=tags,
            headers=self.headers,
            trusted=client.via_trusted_proxy,
            location=location,
        )

    def begin(self) -> Any:
        """Decide for the request before the application runs; raises on a library fault."""
        self._tags = _tags(self._request_tags())
        self.decision = self._decide(self._tags)
        return self.decision

    # -- canned responses

    def block_response(self, decision: Any = None) -> tuple[int, Headers, bytes]:
        """Status, headers and body of the 451 (or other block status) page."""
        block = (decision or self.decision).block
        if prefers_json(self.headers.get("accept")):
            body = block.json().encode("utf-8")
            ctype = "application/json"
        else:
            body = block.html().encode("utf-8")
            ctype = "text/html; charset=utf-8"
        headers: Headers = [
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("Content-Language", block.locale.replace("_", "-")),
            ("Link", block.link_header),
            ("X-Content-Type-Options", "nosniff"),
        ]
        headers = self._location_headers(decision or self.decision, headers, json_too=True)
        if not _get_all(headers, "cache-control"):
            headers.append(("Cache-Control", "no-cache"))
        if self.method == "HEAD":
            body = b""
        return block.status, headers, body

    @staticmethod
    def unavailable() -> tuple[int, Headers, bytes]:
        """The 503 sent on a fault when ``fail_mode="closed"``."""
        body = b"Service Unavailable\n"
        return (
            503,
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Retry-After", "60"),
            ],
            body,
        )

    def _location_headers(self, decision: Any, headers: Headers, *, json_too: bool) -> Headers:
        """Vary, Cache-Control, the rules' headers and the debug header."""
        policy = self.settings.cache_policy
        if policy != "off":
            vary = list(decision.vary)
            if self.settings.geo_header is not None:
                # The answer depends on the CDN's headers even when they were missing or
                # unknown and the address decided: a cache must still key on them.
                vary.extend(self.settings.geo_header.headers)
            if json_too and self.headers.get("accept") is not None:
                vary.append("accept")
            merged = merge_vary(_get_all(headers, "vary"), vary) if vary else None
            if merged is not None:
                headers = [*_without(headers, "vary"), ("Vary", merged)]
            if policy == "private" and decision.private:
                value = private_cache_control(_get_all(headers, "cache-control"))
                headers = [*_without(headers, "cache-control"), ("Cache-Control", value)]
        if decision.headers:
            present = {key.lower() for key, _ in headers}
            for name, value in decision.headers.items():
                if name.lower() not in present:
                    headers.append((name, value))
        return self.debug_headers(headers, decision)

    def debug_headers(self, headers: Headers, decision: Any = None) -> Headers:
        """``headers`` plus ``X-Compliance-Decision`` when debugging is on for this client."""
        decision = decision or self.decision
        settings = self.settings
        if (
            decision is None
            or not settings.debug_headers
            or not settings.debug_networks.contains(self.client.ip)
        ):
            return headers
        location = decision.location
        where = "/".join([location.country or "unknown", *location.subdivisions])
        rules = ", ".join(decision.applied) or "none"
        value = f"{rules}; location={where}; source={location.source}"
        return [*_without(headers, _DEBUG_HEADER.lower()), (_DEBUG_HEADER, value)]

    # -- the response

    def respond(self, status: int, headers: Headers) -> Plan:
        """What to do with the response the application started. Raises on a library fault
        (the caller then applies the fail mode to the original response)."""
        index = _index(headers)
        response_tags = index.get(_TAGS_HEADER)
        if response_tags:
            headers = _without(headers, _TAGS_HEADER)
        decision = self.decision
        if decision is None:
            return Plan(status, headers)
        requested = self._request_tags()
        if response_tags or requested or self._tags:
            tags = _tags(requested) | _tags(",".join(response_tags or ()))
            if tags != self._tags:
                decision = self.decision = self._decide(tags)
                if decision.block is not None:
                    return Plan(status, headers, block=self.block_response(decision))
        reason = self._not_editable(status, index)
        if reason is not None:
            if reason != "not html":
                logger.debug("not editing %s %s: %s", self.method, self.path, reason)
            return Plan(status, headers)
        headers = self._location_headers(decision, headers, json_too=False)
        if not decision.notices:
            return Plan(status, headers)
        index = _index(headers)  # the rules' headers may have added to them
        coding = (index.get("content-encoding") or [""])[-1].strip().lower()
        _, charset = _media_type(index["content-type"][-1])
        language = (index.get("content-language") or [""])[0].split(",")[0].strip()
        csp = " ".join(index.get("content-security-policy", ()))
        found = _NONCE_IN_CSP.search(csp)
        csp_nonce = found.group(1) if found else None
        settings = self.settings

        def render(info: PageInfo) -> Mapping[Placement, str]:
            nonce = self.nonce() or csp_nonce or info.nonce
            return decision.snippets(  # type: ignore[no-any-return]
                page_language=language or info.lang, css=settings.css, nonce=nonce
            )

        editor = BodyEditor(
            render,
            charset=charset,
            coding=coding,
            max_hold=settings.max_hold,
            buffer_limit=settings.buffer_limit,
        )
        lengths = index.get("content-length")
        length = int(lengths[0]) if lengths and lengths[0].strip().isdigit() else None
        return Plan(status, headers, editor=editor, content_length=length)

    def _not_editable(self, status: int, index: dict[str, list[str]]) -> str | None:
        if self.method == "HEAD":
            return "HEAD request"
        if not 200 <= status < 300 or status in (204, 206):
            return f"status {status}"
        ctypes = index.get("content-type")
        if not ctypes or _media_type(ctypes[-1])[0] not in _HTML_TYPES:
            return "not html"
        if "content-range" in index:
            return "a range"
        codings = index.get("content-encoding", [])
        if len(codings) > 1 or "," in "".join(codings):
            return "several content codings"
        coding = (codings or [""])[0].strip().lower()
        if coding == "br" and _brotli is not None:
            return None
        if coding not in _CODINGS:
            logger.info("not editing %s: content-encoding %r is not supported", self.path, coding)
            return f"content-encoding {coding}"
        return None


# -- the body ---------------------------------------------------------------------------------


class _Codec(Protocol):
    def decompress(self, data: bytes) -> bytes: ...
    def rest(self) -> bytes: ...
    def compress(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


def _zlib_wrapped(head: bytes) -> bool:
    """Whether a deflate body starts with a zlib header (RFC 1950) rather than raw deflate."""
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


class _Zlib:
    """gzip and deflate; "deflate" is zlib-wrapped by the standard, raw deflate by some
    servers, and the output is written the way the input came."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
        self._in: Any = zlib.decompressobj(32 + zlib.MAX_WBITS) if gzip else None
        self._head = b""
        self._out: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._in is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            if not _zlib_wrapped(data):
                self._wbits = -zlib.MAX_WBITS
            self._in = zlib.decompressobj(self._wbits)
        result: bytes = self._in.decompress(data)
        return result

    def rest(self) -> bytes:
        if self._in is None:
            if self._head:
                raise zlib.error("the compressed body ended early")
            return b""
        result: bytes = self._in.flush()
        if not self._in.eof:
            raise zlib.error("the compressed body ended early")
        return result

    def compress(self, data: bytes) -> bytes:
        if self._out is None:
            self._out = zlib.compressobj(6, zlib.DEFLATED, self._wbits)
        if not data:
            return b""
        # A sync flush per chunk keeps a streamed page streaming.
        result: bytes = self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)
        return result

    def finish(self) -> bytes:
        self.compress(b"")
        result: bytes = self._out.flush(zlib.Z_FINISH)
        return result


class _Brotli:
    def __init__(self) -> None:
        assert _brotli is not None
        self._in = _brotli.Decompressor()
        self._out = _brotli.Compressor(quality=5)

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._in.process(data)) if data else b""

    def rest(self) -> bytes:
        if not self._in.is_finished():
            raise ValueError("the brotli body ended early")
        return b""

    def compress(self, data: bytes) -> bytes:
        if not data:
            return b""
        return bytes(self._out.process(data)) + bytes(self._out.flush())

    def finish(self) -> bytes:
        return bytes(self._out.finish())


class BodyEditor:
    """Decompress, inject, recompress, one chunk at a time.

    A fault inside the injector (or in ``render``) is logged once and editing stops: the bytes
    the injector still held are recovered from the input kept since its last output, so the
    rest of the body goes out unedited and complete. :attr:`fault` then holds the exception.
    Decompression errors (a corrupt body) propagate to the caller.
    """

    def __init__(
        self,
        render: Callable[[PageInfo], Mapping[Placement, str]],
        *,
        charset: str | None = None,
        coding: str = "",
        max_hold: int = 256 * 1024,
        buffer_limit: int = 256 * 1024,
    ) -> None:
        self._render = render
        self._codec: _Codec | None
        if coding in ("gzip", "x-gzip"):
            self._codec = _Zlib(gzip=True)
        elif coding == "deflate":
            self._codec = _Zlib(gzip=False)
        elif coding == "br":
            self._codec = _Brotli()
        else:
            self._codec = None
        self._injector = Injector(self._render_once, charset=charset, max_hold=max_hold)
        self.buffer_limit = buffer_limit
        self.fault: BaseException | None = None
        """The exception that stopped editing, if one did."""
        self._snippet_bytes: dict[str, int] = {}
        self._pending = bytearray()  # input fed to the injector and not yet seen in its output
        self._out_total = 0
        self._in_emitted = 0

    @property
    def inserted(self) -> bool:
        """Whether any notice went into the page."""
        return self._injector.inserted

    def _render_once(self, info: PageInfo) -> Mapping[Placement, str]:
        snippets = self._render(info)
        self._snippet_bytes = {
            name: len(text.encode(info.charset, "xmlcharrefreplace"))
            for name, text in snippets.items()
            if text
        }
        return snippets

    def _inject(self, data: bytes, *, final: bool) -> bytes:
        if self.fault is not None:
            return data
        self._pending += data
        try:
            out = self._injector.finish() if final else self._injector.feed(data)
        except Exception as exc:
            self.fault = exc
            log_fault("notice injection failed; sending the rest of the page unedited")
            recovered = bytes(self._pending)
            self._pending.clear()
            return recovered
        self._out_total += len(out)
        inserted = sum(self._snippet_bytes.get(p, 0) for p in self._injector.inserted_placements)
        emitted = min(
            max(self._out_total - inserted, self._in_emitted), self._in_emitted + len(self._pending)
        )
        del self._pending[: emitted - self._in_emitted]
        self._in_emitted = emitted
        return out

    def feed(self, chunk: bytes) -> bytes:
        """The edited bytes for the next chunk of the (encoded) body."""
        codec = self._codec
        if codec is None:
            return self._inject(chunk, final=False)
        return codec.compress(self._inject(codec.decompress(chunk), final=False))

    def finish(self) -> bytes:
        """Everything still held, at the end of the body."""
        codec = self._codec
        if codec is None:
            return self._inject(b"", final=True)
        out = codec.compress(self._inject(codec.rest(), final=False))
        return out + codec.compress(self._inject(b"", final=True)) + codec.finish()

"""The sans-IO response core shared by the WSGI and ASGI adapters (h11 style).

One :class:`Settings` per middleware, validated up front; one :class:`Exchange` per request.
The exchange never touches a socket or a framework: the adapter feeds it the request, the
application's status and headers, body chunks and the end of the body, and sends what it
answers. Every policy decision lives here; the adapters only translate their protocol.

::

    exchange = Exchange(settings, engine, metrics, request)
    early = exchange.begin()            # a complete Response (451, 503, decision JSON) or None
    # None: call the application with exchange.request_changes applied to its request
    action = exchange.start(status, headers)   # Passthrough | Replace | EDIT
    # EDIT: every body chunk goes through exchange.feed(chunk), then exchange.finish();
    # both return a list of Start / Data events to send, in order.

Delivery guarantee: a response the decision says must carry a notice either carries it or
goes through the fail mode (``"open"``: the original response, made uncacheable by shared
caches; ``"closed"``: 503 when nothing was sent yet) and a WARNING is logged (rate-limited,
keyed by cause, never by address) and counted in :class:`~compliance.metrics.Metrics`.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType
from typing import (
    ClassVar,
    Final,
    Generic,
    Literal,
    NamedTuple,
    TypeVar,
)

from compliance.client import ClientAddress, TrustedProxies
from compliance.decision import Decision, EngineProtocol, NoticeMatch, Placement, style_element
from compliance.decision import Request as DecisionRequest
from compliance.errors import ConfigurationError
from compliance.geo import (
    HeaderGeolocator,
    Location,
    Provider,
    completed,
    forwarded_host,
    get_provider,
    locate_request,
)
from compliance.geo.location import with_parents
from compliance.html import charset as charsets
from compliance.html.tokenizer import WS
from compliance.html.withhold import Withhold, WithholdUncertain
from compliance.http import (
    CACHING_HEADERS,
    BadCoding,
    BodyTooLarge,
    Codec,
    HeaderIndex,
    Headers,
    add_vary,
    application_tags,
    editable_codings,
    filter_accept_encoding,
    get_all,
    lower_names,
    make_codec,
    make_private,
    media_type,
    normalize_host,
    normalize_path,
    prefers_json,
    private_control,
    private_value,
    split_tags,
    translate_if_none_match,
    variant_etag,
    variant_id,
    vary_value,
    without,
    without_links_to,
    without_refresh_to,
)
from compliance.inject import Injector, PageInfo
from compliance.metrics import Metrics, Snapshot, Totals, counted

__all__ = [
    "EDIT",
    "Data",
    "Exchange",
    "Middleware",
    "Passthrough",
    "Replace",
    "Request",
    "Response",
    "Settings",
    "Start",
    "log_fault",
    "log_undelivered",
    "read_decision",
]

logger = logging.getLogger("compliance.middleware")
decision_log = logging.getLogger("compliance.decisions")
_levels = getattr(decision_log, "_cache", None)
_LOG_LEVELS: Mapping[int, bool] = _levels if isinstance(_levels, dict) else {}
"""What ``decision_log.isEnabledFor`` answered for each level: the logger's own cache,
which logging clears in place whenever levels change. Read directly on every request (a
method call there costs more than the rest of the lookup); a miss asks the logger."""

FailMode = Literal["open", "closed"]
CachePolicy = Literal["private", "vary", "off"]
ForwardedHeader = Literal["x-forwarded-for", "forwarded", "x-real-ip"]

_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
STATE_TAGS: Final = "compliance.tags"
"""The key (WSGI environ, ASGI ``scope["state"]``) where the application puts content tags."""
STATE_DECISION: Final = "compliance.decision"
"""The key where the middleware puts the reader's decision."""
STATE_RENDERED: Final = "compliance.rendered"
"""The key of the set of rule ids whose notices the page rendered itself."""
STATE_BY_READER: Final = "compliance.rendered-by-reader"
"""The key of the set of rule ids whose notices the page rendered in a locale the reader's
languages chose (a template helper not given the page's language): the response varies on
``Accept-Language`` whatever the page's language."""
STATE_INJECTED: Final = "compliance.injected"
"""The key of the set of rule ids whose notices the middleware took to inject (once it read
the start of the body): a template helper leaves them out."""
STATE_EXCHANGE: Final = "compliance.exchange"
"""The key of a weak reference to the request's :class:`Exchange` (for
:func:`read_decision`: the decision for the tags the application has set by then)."""
STATE_READ: Final = "compliance.decision-read"
"""The key set when the application read the decision through an integration's helper
(:func:`read_decision`): its response depends on the reader's location, whatever its type,
and gets the caching headers an HTML page gets."""
_TAGS_HEADER: Final = "x-compliance-tags"
_SKIP_HEADER: Final = "x-compliance-skip"
_SIMULATE_HEADER: Final = "x-compliance-simulate"
_SIMULATE_PARAM: Final = "compliance-simulate"
_DEBUG_HEADER: Final = "X-Compliance-Decision"
_PARTIAL_VARY: Final = ("hx-request", "hx-boosted", "turbo-frame")
_DIGESTS: Final = ("content-md5", "content-digest", "repr-digest")
_VARY_DROP: Final = frozenset({"vary"})
_DEBUG_DROP_NAME: Final = _DEBUG_HEADER.lower()
_DEBUG_DROP: Final = frozenset({_DEBUG_DROP_NAME})
_LINK_DROP: Final = frozenset({"link"})
_REFRESH_DROP: Final = frozenset({"refresh"})
_CONTROL_HEADERS: Final = frozenset({_TAGS_HEADER, _SKIP_HEADER})
_FRONT_SERVER_FILES: Final = (
    "x-sendfile",  # Apache mod_xsendfile, lighttpd; Werkzeug's and Flask's USE_X_SENDFILE
    "x-accel-redirect",  # nginx
    "x-lighttpd-send-file",
    "x-litespeed-location",
)
"""Response headers that ask the server in front to send a file (or another location) in
place of the body: the body the middleware sees (usually empty) is not what the reader
gets."""
_EDITED_DROP: Final = frozenset({"content-length", "accept-ranges", "etag", *_DIGESTS})
"""Headers an edited body never keeps as the application sent them."""
_CACHING_BYTES: Final = frozenset(name.encode("ascii") for name in CACHING_HEADERS)
_TAGS_BYTES: Final = _TAGS_HEADER.encode("ascii")
_SKIP_BYTES: Final = _SKIP_HEADER.encode("ascii")
_NONCE_SOURCE = re.compile(r"'(?i:nonce-)([A-Za-z0-9+/_-]+={0,2})'")
# The directives that govern an inline <style> element, the first present applying.
_STYLE_DIRECTIVES: Final = ("style-src-elem", "style-src", "default-src")
_SIMULATED = re.compile(r"\A([A-Za-z]{2})(?:-([A-Za-z0-9]{1,3}))?\Z")
_MAX_HEADER: Final = 8192  # longest request header value looked at (Accept-Language, ...)
_NO_TAGS: Final[frozenset[str]] = frozenset()
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_SUBRESOURCES: Final = frozenset(
    {
        "audio", "audioworklet", "font", "image", "json", "manifest", "paintworklet", "report",
        "script", "serviceworker", "sharedworker", "style", "track", "video", "webidentity",
        "worker", "xslt",
    }
)  # fmt: skip
"""``Sec-Fetch-Dest`` values (Fetch's request destinations) of a response a browser never
shows as a page: documents, frames, embeds and scripts' fetches (``empty``) are left out."""
_MAX_TAG_ITEMS: Final = 4096  # of a tags iterable read
_RESPONSE_STATE: Final = (
    "_status",
    "_headers",
    "_app_found",
    "_app_decision",
    "_app_etag",
    "_editor",
    "_original",
    "_out",
    "_page_language",
    "_buffer_until",
    "_size",
    "_committed",
    "_edited",
    "_stopped",
    "_unedited_reported",
    "_head",
)
"""What :class:`Exchange` keeps of the response it was given (see ``Exchange.restart``)."""
_decision_request: Final = functools.partial(tuple.__new__, DecisionRequest)
"""A :class:`~compliance.decision.Request` from its six fields, in order: a NamedTuple's own
constructor is Python code, and this is the hot path of every request."""


# -- events -----------------------------------------------------------------------------------


class Request(NamedTuple):
    """The parts of a request the core looks at, as the adapter read them. (An immutable
    tuple: adapters build one per request with :data:`new_request`, in C.)"""

    method: str
    host: str
    """The ``Host`` header (or server name) as sent; normalised by the core."""
    path: str
    """The URL path, percent-encoded as sent."""
    query: str
    peer: str | None
    """The socket peer address; None for a Unix socket."""
    headers: Mapping[str, str]
    """Lower-case names; repeated headers joined with ``", "``."""


new_request: Final = functools.partial(tuple.__new__, Request)
"""``new_request((method, host, path, query, peer, headers))``: a :class:`Request` without
the Python-level constructor (the hot path of every request)."""


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response the core answers itself (a block, a 503, the decision JSON)."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Start:
    """Send the status line and these headers."""

    status: int
    headers: Headers
    replaced: bool = False
    """The core's own response (the fail mode's 503), not the application's: nothing the
    application's start promised (trailers, say) holds for it."""


@dataclass(frozen=True, slots=True)
class Data:
    """Send these body bytes."""

    data: bytes


class Passthrough(NamedTuple):
    """Send these headers, then the application's body untouched. (An immutable tuple, built
    in C on the no-notice path of every request.)"""

    status: int
    headers: Headers


_passthrough: Final = functools.partial(tuple.__new__, Passthrough)


@dataclass(frozen=True, slots=True)
class Replace:
    """Send this response instead of the application's; discard the application's body."""

    response: Response


class _Edit:
    """Run every body chunk through :meth:`Exchange.feed` and :meth:`Exchange.finish`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "EDIT"


EDIT: Final = _Edit()
Event = Start | Data
Action = Passthrough | Replace | _Edit


# -- logging: rate-limited, keyed by cause ----------------------------------------------------

LOG_INTERVAL: Final = 60.0
"""Seconds during which a repeat of the same cause is counted instead of logged again."""

_seen: dict[str, tuple[float, int]] = {}
_seen_lock = threading.Lock()


def _should_log(key: str) -> tuple[bool, int]:
    now = time.monotonic()
    with _seen_lock:
        first, repeats = _seen.get(key, (-LOG_INTERVAL, 0))
        if now - first < LOG_INTERVAL:
            _seen[key] = (first, repeats + 1)
            return False, 0
        if len(_seen) >= 1024:
            _seen.clear()
        _seen[key] = (now, 0)
    return True, repeats


def _cause_of(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    cause = getattr(exc, "cause", None)  # our own errors name a stable cause
    return f"{type(exc).__module__}.{type(exc).__qualname__}:{cause or ''}"


def log_fault(
    where: str, *, metrics: Metrics | None = None, addresses: Iterable[str | None] = ()
) -> None:
    """Log a library fault with its traceback (call from an ``except`` block).

    Keyed by where it happened and the exception's type (never its text, which may name a
    client address): the same fault is logged once per :data:`LOG_INTERVAL`, repeats are
    counted and reported with its next log line. Each of ``addresses`` (the request's peer
    and client) that the traceback's text names, as a geolocator's error may ("The address
    192.0.2.1 is not in the database"), is written as its network, as the decision log
    writes it.
    """
    exc = sys.exc_info()[1]
    key = f"fault:{where}:{_cause_of(exc)}"
    if metrics is not None:
        metrics.fault(where)
    should, repeats = _should_log(key)
    if not should:
        return
    message = f"compliance fault in {where}"
    if repeats:
        message += f" (it also happened {repeats} more times since it was last logged)"
    named = [ip for ip in addresses if ip]
    if exc is not None and named:
        text = "".join(traceback.format_exception(exc)).rstrip()
        masked = text
        for ip in sorted(set(named), key=len, reverse=True):  # 10.0.0.10 before 10.0.0.1
            masked = masked.replace(ip, _masked(ip))
        if masked != text:
            logger.error("%s\n%s", message, masked)
            return
    logger.exception(message)


_LOG_TEXT: Final = 512
"""Characters of a detail (a request's path, an application's header) kept in a log line."""


def _loggable(text: str, limit: int = _LOG_TEXT) -> str:
    """``text`` (which a request or an application wrote) fit for one log line: at most
    ``limit`` characters kept, control characters escaped, so that it can neither forge a
    line nor flood the log."""
    kept = text[:limit]
    if not kept.isprintable():
        kept = kept.encode("unicode_escape").decode("ascii")[: 4 * limit]
    return kept if len(text) <= limit else f"{kept}... ({len(text)} characters)"


def log_undelivered(
    cause: str,
    detail: str,
    *,
    metrics: Metrics | None = None,
    count: int = 1,
    rules: Iterable[str] = (),
) -> None:
    """Decided notices were not delivered (``count`` of them, of ``rules``): WARNING,
    rate-limited by ``cause``, counted. ``detail`` is bounded and escaped here."""
    if metrics is not None and count:
        metrics.undelivered(cause, count)
    should, repeats = _should_log(f"undelivered:{cause}")
    if not should:
        return
    named = ", ".join(rules)
    extra = f" [rules: {named}]" if named else ""
    if repeats:
        extra += f" ({repeats} more since last logged)"
    logger.warning(
        "compliance notice not delivered (%s): %s%s", cause, _loggable(detail, 4 * _LOG_TEXT), extra
    )


_FORWARDED_HOSTS_JUDGED: set[tuple[str, str]] = set()
_MAX_JUDGED: Final = 256
_MAX_FORWARDED_HOSTS_TOLD: Final = 16
_forwarded_hosts_told = 0


def _tell_forwarded_host(raw_host: str, host: str, named: str) -> None:
    """One WARNING per process for each ``Host`` (``raw_host``, normalised ``host``) that
    the trusted proxies name otherwise in ``X-Forwarded-Host`` (``named``): rules with
    ``hosts:`` do not match the reader's host there, which nothing else would say. Each pair
    of header values is judged once (at most :data:`_MAX_JUDGED` pairs, each bounded, then
    no more), and at most :data:`_MAX_FORWARDED_HOSTS_TOLD` are told: a proxy that passes
    the header on as readers send it lets them write anything there."""
    global _forwarded_hosts_told
    key = (raw_host[:256], named[-1024:])
    if key in _FORWARDED_HOSTS_JUDGED or len(_FORWARDED_HOSTS_JUDGED) >= _MAX_JUDGED:
        return
    last = normalize_host(key[1].rpartition(",")[2])
    with _seen_lock:
        if key in _FORWARDED_HOSTS_JUDGED:
            return
        _FORWARDED_HOSTS_JUDGED.add(key)
        if not last or last == host or _forwarded_hosts_told >= _MAX_FORWARDED_HOSTS_TOLD:
            return
        _forwarded_hosts_told += 1
    logger.warning(
        "requests through the trusted proxies are for host %s (X-Forwarded-Host) but say "
        "Host: %s, which rules with hosts: match. Pass the reader's Host on (nginx: "
        "proxy_set_header Host $host), or set forwarded_host=True",
        _loggable(last, 256),
        _loggable(host, 256),
    )


_untrusted_geo_told = False


def _tell_untrusted_geo_header(header: str) -> None:
    """One WARNING per process: a request carried the CDN's ``header`` (``geo_header``)
    from a socket peer that is not a trusted proxy, so it was not believed and the reader
    was located by address. A server in front that rewrites the client address (uvicorn
    does by default) makes every request look so; nothing else would say it. The address
    is not named: after such a rewrite it is the reader's."""
    global _untrusted_geo_told
    with _seen_lock:
        if _untrusted_geo_told:
            return
        _untrusted_geo_told = True
    logger.warning(
        "a request carried %s but its socket peer is not in trusted_proxies: the header is "
        "not believed and the reader is located by address. If a server in front rewrites "
        "the client address (uvicorn does by default: run it with --no-proxy-headers), turn "
        "that off; if readers can reach the application directly, firewall it",
        header,
    )


def read_decision(state: Mapping[str, object]) -> object:
    """The reader's decision in the ``state`` the request shares with the middleware (the
    WSGI environ, ASGI ``scope["state"]``), for the application, which builds its response
    from it: that response is then marked as depending on the reader's location
    (:data:`STATE_READ`), so a JSON or text answer gets ``Vary`` and ``Cache-Control:
    private`` as an HTML page does. None when the middleware made no decision."""
    ref = state.get(STATE_EXCHANGE)
    exchange = ref() if isinstance(ref, weakref.ref) else None
    if isinstance(exchange, Exchange):
        decision: object = exchange.current_decision()
    else:
        decision = state.get(STATE_DECISION)
    if decision is not None and isinstance(state, MutableMapping):
        state[STATE_READ] = True
    return decision


# -- settings ---------------------------------------------------------------------------------


def _networks(value: TrustedProxies | Iterable[str] | str | None, name: str) -> TrustedProxies:
    if value is None:
        return TrustedProxies()
    if isinstance(value, TrustedProxies):
        return value
    try:
        return TrustedProxies(value)
    except (ConfigurationError, TypeError) as exc:
        raise _option_error(name, exc, value) from None


def _option_error(name: str, exc: Exception, value: object) -> ConfigurationError:
    """An error in the networks of option ``name``, saying so first (integrations put the
    name in their own spelling: ``COMPLIANCE_DEBUG_NETWORKS``)."""
    if not isinstance(exc, ConfigurationError):  # not even a list
        return ConfigurationError(
            f"{name}: expected a list of IP addresses or CIDR ranges, not {value!r}"
        )
    return ConfigurationError(f"{name}: {str(exc).removeprefix('trusted proxy ')}")


def _positive(name: str, number: object) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer, not {number!r}")
    return number


NonceSource = str | Callable[[object], object] | None


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
    forwarded_header: ForwardedHeader = "x-forwarded-for"
    """The one forwarding header the trusted proxies write; the others are ignored."""
    forwarded_host: bool = False
    """Rules match the host the trusted proxies name (``X-Forwarded-Host``, or ``host=`` in
    ``Forwarded``) instead of ``Host``, for requests that came through them."""
    geo_header: HeaderGeolocator | None = None
    """CDN geolocation headers, read (from trusted proxies only) before the engine's own."""
    fail_mode: FailMode = "open"
    """On a library fault: ``"open"`` sends the original response, ``"closed"`` a 503."""
    cache_policy: CachePolicy = "private"
    """``"private"``: Vary plus ``Cache-Control: private`` for IP-located pages; ``"vary"``:
    Vary only; ``"off"``: neither."""
    csp_nonce: NonceSource = None
    """Where the CSP nonce for the default CSS comes from: an ``environ`` key (WSGI) or
    ``scope["state"]`` key (ASGI), or a callable given the environ / scope."""
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
    max_decoded: int = 64 * 1024 * 1024
    """Largest decoded size of a compressed body that is edited; past it, the fail mode."""
    max_ratio: int = 1000
    """Largest compression ratio (decoded : encoded, past the first MiB) of an edited body."""
    decision_path: str | None = None
    """Answer ``GET`` at this path with the reader's decision as JSON (off by default)."""
    simulate_from: TrustedProxies | None = None
    """Clients (resolved addresses) that may choose a location with
    ``X-Compliance-Simulate: CC[-SUB]`` or ``?compliance-simulate=CC``. Off by default."""
    log_addresses: bool = False
    """Put the full client address in the per-decision DEBUG record (else its network)."""
    edge_from: TrustedProxies | None = None
    """Socket peers that are an exported edge (``compliance export``): their requests carry
    ``X-Compliance-Edge`` and get their notices from the edge, not from here. Off by
    default; a request header from anyone else never strips a notice."""

    @classmethod
    def from_options(
        cls,
        *,
        trusted_proxies: TrustedProxies | Iterable[str] | str | None = None,
        proxy_hops: int = 0,
        forwarded_header: str = "x-forwarded-for",
        forwarded_host: bool = False,
        geo_header: HeaderGeolocator | Provider | str | None = None,
        fail_mode: str = "open",
        cache_policy: str = "private",
        csp_nonce: NonceSource = None,
        css: bool = False,
        debug_headers: bool = False,
        debug_networks: TrustedProxies | Iterable[str] | str | None = None,
        buffer_limit: int = 256 * 1024,
        max_hold: int = 256 * 1024,
        max_decoded: int = 64 * 1024 * 1024,
        max_ratio: int = 1000,
        decision_path: str | None = None,
        simulate_from: TrustedProxies | Iterable[str] | str | None = None,
        log_addresses: bool = False,
        edge_from: TrustedProxies | Iterable[str] | str | None = None,
    ) -> Settings:
        """Settings from the keyword options the middlewares take; ConfigurationError on
        anything malformed."""
        header_name = str(forwarded_header).strip().lower()
        if header_name not in ("x-forwarded-for", "forwarded", "x-real-ip"):
            raise ConfigurationError(
                "forwarded_header must be 'x-forwarded-for', 'forwarded' or 'x-real-ip', "
                f"not {forwarded_header!r}"
            )
        _positive("proxy_hops", proxy_hops)
        if isinstance(trusted_proxies, TrustedProxies):
            if proxy_hops:
                raise ConfigurationError("give proxy_hops to TrustedProxies, not beside it")
            proxies = trusted_proxies
            if header_name != proxies.forwarded_header:
                if header_name != "x-forwarded-for":  # named here, not the default
                    # Reading the proxies' header instead would trust one the proxy in
                    # front passes through from the reader.
                    raise ConfigurationError(
                        f"forwarded_header={forwarded_header!r} but the TrustedProxies "
                        f"given read {proxies.forwarded_header!r}: give forwarded_header to "
                        "TrustedProxies, not beside it"
                    )
                header_name = proxies.forwarded_header  # the header actually read
        else:
            try:
                proxies = TrustedProxies(
                    trusted_proxies or (), hops=proxy_hops, headers=(header_name,)
                )
            except (ConfigurationError, TypeError) as exc:
                raise _option_error("trusted_proxies", exc, trusted_proxies) from None
        header: HeaderGeolocator | None
        if geo_header is None or isinstance(geo_header, HeaderGeolocator):
            header = geo_header
        elif isinstance(geo_header, str | Provider):
            try:
                spec = geo_header if isinstance(geo_header, Provider) else get_provider(geo_header)
                if spec.country_header is None:  # each site names it: fastly, generic
                    raise ConfigurationError(
                        f"the {spec.name!r} provider reads the header your CDN is set to "
                        f"write: geo_header=HeaderGeolocator({spec.name!r}, "
                        "header='X-Geo-Country')"
                    )
                header = HeaderGeolocator(spec)
            except ConfigurationError as exc:
                raise ConfigurationError(f"geo_header: {exc}") from None
        else:
            raise ConfigurationError(
                "geo_header must be a provider name, a Provider or a HeaderGeolocator, "
                f"not {geo_header!r}"
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
        for name, flag in (
            ("css", css),
            ("debug_headers", debug_headers),
            ("log_addresses", log_addresses),
            ("forwarded_host", forwarded_host),
        ):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True or False, not {flag!r}")
        if forwarded_host and not proxies:
            raise ConfigurationError(
                "forwarded_host needs trusted_proxies: the host they name is only believed "
                "from them"
            )
        for name, number in (
            ("buffer_limit", buffer_limit),
            ("max_hold", max_hold),
            ("max_decoded", max_decoded),
            ("max_ratio", max_ratio),
        ):
            _positive(name, number)
        if decision_path is not None and (
            not isinstance(decision_path, str) or not decision_path.startswith("/")
        ):
            raise ConfigurationError(
                f"decision_path must be a path starting with '/', not {decision_path!r}"
            )
        return cls(
            trusted_proxies=proxies,
            forwarded_header=header_name,  # type: ignore[arg-type]
            forwarded_host=forwarded_host,
            geo_header=header,
            fail_mode=fail_mode,  # type: ignore[arg-type]
            cache_policy=cache_policy,  # type: ignore[arg-type]
            csp_nonce=csp_nonce,
            css=css,
            debug_headers=debug_headers,
            debug_networks=_networks(
                ["127.0.0.0/8", "::1/128"] if debug_networks is None else debug_networks,
                "debug_networks",
            ),
            buffer_limit=buffer_limit,
            max_hold=max_hold,
            max_decoded=max_decoded,
            max_ratio=max_ratio,
            # Matched as rules match paths (normalised), whatever escapes a request uses.
            decision_path=None if decision_path is None else normalize_path(decision_path),
            simulate_from=None
            if simulate_from is None
            else _networks(simulate_from, "simulate_from"),
            log_addresses=log_addresses,
            edge_from=None if edge_from is None else _networks(edge_from, "edge_from"),
        )


# -- helpers ----------------------------------------------------------------------------------


def tags_of(value: object) -> frozenset[str]:
    """Content tags from a request-side value (a comma-separated string or an iterable): the
    first 64 KiB of a string, 4,096 items of an iterable. The engine keeps those its rules
    look at, so a tag a block needs is not lost among many others."""
    if not value:
        return frozenset()
    if isinstance(value, str):
        return split_tags(value)
    if isinstance(value, Iterable):
        items = islice(value, _MAX_TAG_ITEMS)
        return frozenset(text for text in (str(tag).strip() for tag in items) if text)
    return frozenset()


def _masked(ip: str | None) -> str:
    """A client address as the decision log shows it: its /24 or /48 network."""
    if ip is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def unavailable() -> Response:
    """The 503 sent on a fault when ``fail_mode="closed"``."""
    body = b"Service Unavailable\n"
    return Response(
        503,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Retry-After", "60"),
        ],
        body,
    )


# The start of a document, read before editing: whether it is a fragment (its first content
# is not an <html>, <head> or <body> tag: what an htmx or Turbo partial answers with).
# Whitespace, comments, a doctype may come first. (The language its <html> tag declares is
# the injector's to read: one reading for the notices, the decision and Vary.)
_PREAMBLE = re.compile(rb"(?:\xef\xbb\xbf)?(?:[\t\n\f\r ]+|<!--.*?-->|<![^>]*>|<\?[^>]*>)*", re.S)
_DOCUMENT_TAG = re.compile(rb"<(html|head|body)(?=[\t\n\f\r />])[^>]*>|<(?:head|body)>", re.I)
_DOCTYPE = re.compile(rb"<!doctype", re.I)
_DIGITS = re.compile(r"[0-9]{1,18}")


# Around a declared language, only ASCII whitespace is no part of it (HTML's, which holds
# HTTP's): str.strip() would take U+0085 and U+00A0 too, which make no language tag.
_ASCII_WS: Final = WS.decode()


def _language_flag(vary: Iterable[str]) -> str:
    """The variant tag's flag of a page that varies on ``vary``."""
    return "a" if "accept-language" in vary else ""


def _content_language(found: HeaderIndex) -> str:
    """The page's language as its ``Content-Language`` declares it (the first one), or ""."""
    return (found.first("content-language") or "").split(",")[0].strip(_ASCII_WS)


def _fragment(prefix: bytes, final: bool) -> bool | None:
    """Whether a document is a fragment, read from its start; None while more bytes are
    needed."""
    preamble = _PREAMBLE.match(prefix)
    at = preamble.end() if preamble else 0  # positions, not slices: no copy of the page
    if at >= len(prefix):
        return None if not final else True
    if prefix[at : at + 1] == b"<" and prefix.find(b">", at) < 0 and not final:
        return None  # the first tag (or an unfinished comment) is not complete yet
    if _DOCTYPE.search(prefix, 0, at) is not None:
        return False  # a document, its optional tags left out
    return _DOCUMENT_TAG.match(prefix, at) is None


def _style_nonce(headers: Iterable[str]) -> str | None:
    """The nonce an inline ``<style>`` needs under the ``Content-Security-Policy`` header
    values: that of the directive governing it (``style-src-elem``, else ``style-src``, else
    ``default-src``; a ``script-src`` nonce does not let a style in). With several policies,
    one all of them accept if there is one. None when no such directive names a nonce."""
    chosen: list[list[str]] = []
    for policy in ",".join(headers).split(","):
        directives: dict[str, str] = {}
        for directive in policy.split(";"):
            words = directive.split(None, 1)
            if words:  # the first directive of a name applies
                directives.setdefault(words[0].lower(), words[1] if len(words) > 1 else "")
        for name in _STYLE_DIRECTIVES:
            if name in directives:
                nonces = _NONCE_SOURCE.findall(directives[name])
                if nonces:
                    chosen.append(nonces)
                break
    if not chosen:
        return None
    others = [set(nonces) for nonces in chosen[1:]]  # (lists: a search each, quadratic)
    common = [n for n in chosen[0] if all(n in other for other in others)]
    return (common or chosen[0])[0]


def _variant_of(decision: Decision) -> str:
    """The name of the edited variant a decision makes of a page."""
    parts = [f"n:{n.rule_id}:{n.locale}" for n in decision.notices]
    parts += [f"w:{w.rule_id}" for w in decision.withholds]
    return variant_id(parts)


# -- the body editor --------------------------------------------------------------------------


class Undelivered(Exception):
    """The editor cannot deliver the notices (an encoding it cannot edit, a frameset, a
    body over the bounds): the core applies the fail mode."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def _unsupported(injector: Injector) -> str | None:
    """Why the injector passes a page through from its first bytes (an encoding that is
    not ASCII-compatible), if it does."""
    for name in ("skip_reason", "_skip_reason"):
        reason = getattr(injector, name, None)
        if isinstance(reason, str) and reason:
            return reason
    return None


class BodyEditor:
    """Decode, inject, encode, one chunk at a time; output identical however the body is
    split. Raises :class:`Undelivered` when the notices cannot go in, other exceptions on
    library faults."""

    def __init__(
        self,
        render: Callable[[PageInfo], Mapping[Placement, str]],
        *,
        charset: str | None,
        codec: Codec | None,
        max_hold: int,
        partial: bool,
        metrics: Metrics | None = None,
        withhold: Withhold | None = None,
    ) -> None:
        self._render = render
        self._codec = codec
        self._injector = Injector(
            self._render_once, charset=charset, max_hold=max_hold, withhold=withhold
        )
        self._withholding = withhold is not None
        self._metrics = metrics
        self._pending: deque[bytes] = deque()  # input given to the injector, not yet seen in its
        # output (the first _pending_skip bytes of it are); _pending_size bytes in all
        self._sniff: bytearray | None = bytearray()
        self._partial = partial
        self._max_hold = max_hold

    # State that starts the same for every body: class-level defaults, replaced (never
    # mutated) by the instance that changes it, so creating an editor per request is cheap.
    notices = True
    """Whether notices go in (withholding goes on when they do not)."""
    fault: BaseException | None = None
    """The exception that stopped editing, if one did: the rest went out unedited."""
    fragment = False
    """Whether the body is a fragment (no <html>, <head> or <body> before its content)."""
    skipped: str | None = None
    """Why notices were legitimately left out (a fragment, an empty body), if they were."""
    go_on_unedited = False
    """Set by the core once the headers are out, failing open: a page that then turns out
    not to be editable (a ``<frameset>`` after the head) or whose editing faults goes on
    unedited instead of being cut, and :attr:`unedited` says why."""
    unedited: tuple[str, str] | None = None
    """(cause, detail) when the page went on unedited after its headers were out."""
    seen = 0
    """Decoded body bytes seen so far."""
    _snippet_bytes: Mapping[str, int] = MappingProxyType({})
    _pending_size = 0
    _pending_skip = 0
    _sniff_again = 0
    """The length at which the undecided start of the document is read again."""
    _out_total = 0
    _in_emitted = 0

    _placed: frozenset[str] | None = None
    """The placements in the page, once a fault stopped editing (the injector's list may
    name some whose output was not used)."""

    @property
    def inserted(self) -> bool:
        return self._injector.inserted if self._placed is None else bool(self._placed)

    @property
    def lang(self) -> str | None:
        """The language the page's ``<html>`` tag declares, once read (the injector's
        reading, which chose the notices' locales)."""
        return self._injector.lang

    def _decoded(self, data: bytes, final: bool) -> bytes:
        """Inject into decoded bytes, once the start of the document is read."""
        self.seen += len(data)
        sniffed = self._sniff
        if sniffed is not None:
            if sniffed:  # the start of the document came in several pieces
                sniffed += data
                if not final and len(sniffed) < self._sniff_again <= self._max_hold:
                    # Read again once it has doubled, not at every piece: a long preamble
                    # (whitespace, a comment) in many small pieces costs time in proportion
                    # to its length, not to its square.
                    return b""
                held = bytes(sniffed)
            else:  # the usual case: read the first piece where it is, no copy
                held = data if data.__class__ is bytes else bytes(data)
            fragment = _fragment(held, final)
            if fragment is None and len(held) <= self._max_hold:
                if not sniffed:
                    sniffed += held
                self._sniff_again = min(2 * len(held), self._max_hold + 1)
                return b""
            self._sniff = None
            if fragment is not None:
                self.fragment = fragment and bool(held.strip())
                if fragment and self._partial and held.strip():
                    self.skip("fragment")
            data = held
        if final and self.seen == 0:
            self.skip("empty body")
            return b""
        if self.skipped is not None and not self._withholding:
            return data
        if self.fault is not None:
            return data
        if data:
            self._pending.append(data)
            self._pending_size += len(data)
        placed_before = len(self._injector.inserted_placements)
        try:
            if final:  # data: a start of the document still undecided at the end, if any
                out = (self._injector.feed(data) if data else b"") + self._injector.finish()
            else:
                out = self._injector.feed(data)
            if self._injector.fault is not None:
                # A bug in the injector, which passed the rest on unedited: a fault like any
                # other (its output is not used: the core's fail mode, or the recovery below).
                raise self._injector.fault
        except WithholdUncertain:
            raise
        except Exception as exc:
            if self._withholding or not self.go_on_unedited:
                # The core applies the fail mode: before the headers, the original page or a
                # 503; after them, the document ended where it is. Withheld content is never
                # sent.
                raise
            # Failing open after the headers, a fault here (a notice that fails to render,
            # say) must not lose the page: the bytes the injector still held are the input
            # it has not passed on yet.
            self.fault = exc
            # What this call inserted goes with its output: those notices are not sent.
            self._placed = frozenset(self._injector.inserted_placements[:placed_before])
            if self.unedited is None:
                self.unedited = ("fault", f"a fault stopped editing ({type(exc).__name__})")
            log_fault("editing", metrics=self._metrics)
            recovered = b"".join(self._pending)[self._pending_skip :]
            self._pending = deque()
            self._pending_size = self._pending_skip = 0
            return recovered
        reason = _unsupported(self._injector)
        if reason:
            cause = "encoding" if "encoding" in reason else reason
            detail = f"the page cannot be edited ({reason})"
            if not self.go_on_unedited or self._withholding:
                raise Undelivered(cause, detail)
            # The injector passes the rest on as it is: what it held, then every byte.
            if self.unedited is None:
                self.unedited = (cause, detail)
        self._account(len(out))
        return out

    def _account(self, produced: int) -> None:
        """Forget the input the output has now passed on (output minus inserted snippets)."""
        self._out_total += produced
        inserted = sum(self._snippet_bytes.get(p, 0) for p in self._injector.inserted_placements)
        emitted = min(
            max(self._out_total - inserted, self._in_emitted),
            self._in_emitted + self._pending_size,
        )
        passed = emitted - self._in_emitted
        if passed:
            self._pending_size -= passed
            passed += self._pending_skip
            pending = self._pending
            while pending and passed >= len(pending[0]):
                passed -= len(pending.popleft())
            self._pending_skip = passed if pending else 0
        self._in_emitted = emitted

    def skip(self, reason: str) -> None:
        """Leave the notices out (withholding goes on)."""
        if self.skipped is None:
            self.skipped = reason
        self.notices = False

    @property
    def withheld(self) -> list[str]:
        """Rule ids of the elements withheld so far."""
        return self._injector.withheld

    def _render_once(self, info: PageInfo) -> Mapping[Placement, str]:
        if not self.notices:
            return {}
        snippets = self._render(info)
        # Measured as the injector encodes them (a codec only webencodings knows, such as
        # x-user-defined, is no error there either).
        self._snippet_bytes = {
            name: len(charsets.encode(str(text), info.charset))
            for name, text in snippets.items()
            if text
        }
        return snippets

    @property
    def placed(self) -> frozenset[str]:
        """The placements whose notices are in the page."""
        if self._placed is not None:
            return self._placed
        return frozenset(self._injector.inserted_placements)

    @property
    def not_inserted(self) -> str | None:
        """Why notices due in the page are not in it, at the end of the body: none went in,
        or those of some placements found no place (a comment left open to the end leaves
        none for ``body_end``, say, while ``body_start`` found its own)."""
        if not self.inserted:
            return self._injector.skipped_reason or "no insertion point"
        placed = self.placed
        missing = [name for name in self._snippet_bytes if name not in placed]
        if missing:
            return f"no place in the page for the {', '.join(missing)} notices"
        return None

    def _push(self, data: bytes) -> bytes:
        out = self._decoded(data, final=False) if data else b""
        return out

    def feed(self, chunk: bytes) -> bytes:
        codec = self._codec
        try:
            if codec is None:
                return self._push(chunk)
            return codec.compress(self._push(codec.decompress(chunk)))
        except BodyTooLarge as exc:
            raise Undelivered("body too large", exc.cause) from None
        except BadCoding as exc:
            raise Undelivered("content-coding", str(exc)) from None

    def finish(self) -> bytes:
        codec = self._codec
        try:
            if codec is None:
                return self._decoded(b"", final=True)
            out = codec.compress(self._push(codec.rest()))
            return out + codec.compress(self._decoded(b"", final=True)) + codec.finish()
        except BodyTooLarge as exc:
            raise Undelivered("body too large", exc.cause) from None
        except BadCoding as exc:
            raise Undelivered("content-coding", str(exc)) from None

    def cut(self, output: bytes = b"") -> bytes:
        """End the document cleanly where it is (after a bound, or a withheld element whose
        end cannot be told): ``output`` (what the failing step may still send), then the
        notices still due and the end tags that close it, encoded."""
        try:
            tail = output + self._injector.cut()
        except Exception:
            tail = output
        codec = self._codec
        if codec is None:
            return tail
        return codec.compress(tail) + codec.finish()


# -- per request ------------------------------------------------------------------------------


class Exchange:
    """The policy for one request and its response. Not shared between requests."""

    def __init__(
        self,
        settings: Settings,
        engine: EngineProtocol,
        metrics: Metrics,
        request: Request,
        state: MutableMapping[str, object] | None = None,
        context: object = None,
    ) -> None:
        """``state``: the mapping the application shares with the middleware (the WSGI
        environ, ``scope["state"]`` in ASGI, a view of a Django request), where the exchange
        reads ``compliance.tags`` and a string ``csp_nonce`` key, and writes
        ``compliance.decision`` and ``compliance.rendered``; ``context`` is what a callable
        ``csp_nonce`` is given (the environ, the scope, the request). Without ``state``,
        nothing is shared."""
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.request = request
        host = request.host
        self.host = normalize_host.known(host) or normalize_host(host)
        self.path = path = request.path
        self.norm_path = normalize_path.known(path) or normalize_path(path)
        self.headers = request.headers
        self.rendered: set[str] = set()
        """Rule ids whose notices the page rendered itself (template helpers add to it)."""
        self._state = state = {} if state is None else state
        self._context = context
        state[STATE_RENDERED] = self.rendered
        state[STATE_EXCHANGE] = weakref.ref(self)  # (a strong one: a cycle for the GC)
        self.by_reader: set[str] = set()
        """Of :attr:`rendered`, those whose locale the reader's languages chose."""
        state[STATE_BY_READER] = self.by_reader

    @property
    def method(self) -> str:
        """The request method, upper case."""
        return self.request.method.upper()

    def _log_fault(self, where: str) -> None:
        """:func:`log_fault`, the request's addresses masked unless ``log_addresses``."""
        addresses = () if self.settings.log_addresses else (self.request.peer, self.client.ip)
        log_fault(where, metrics=self.metrics, addresses=addresses)

    def _request_tags(self) -> object:
        """The tags the application set on the request (``compliance.tags``)."""
        return self._state.get(STATE_TAGS)

    def _app_tags(self) -> frozenset[str]:
        """The content tags the application has set so far (:meth:`_request_tags`, read)."""
        requested = self._request_tags()
        return tags_of(requested) if requested else _NO_TAGS

    def nonce(self) -> str | None:
        """The CSP nonce the application gives for the default CSS, if it gives one."""
        source = self.settings.csp_nonce
        if source is None:
            return None
        value = self._state.get(source) if isinstance(source, str) else source(self._context)
        return str(value) if value else None

    def current_decision(self) -> Decision | None:
        """The decision for the content tags the application has set so far
        (``compliance.tags``): the one the response starts with unless the response names
        more (``X-Compliance-Tags``). Not kept: the response's start decides as always."""
        decision = self.decision
        if decision is None:
            return None
        tags = self._app_tags()
        if tags == self._tags:
            return decision
        try:
            return self._decide(tags)
        except Exception:
            self._log_fault("decision")
            return decision

    def on_decision(self, decision: Decision) -> None:
        """Expose the decision to the application (``compliance.decision``)."""
        self._state[STATE_DECISION] = decision

    # Per-request state that most requests never change: class-level defaults, so a request
    # pays only for what it sets (the no-notice path is a few microseconds in all).
    decision: Decision | None = None
    """The decision, once made (None after a fault)."""
    client: ClientAddress = ClientAddress(None, False, None)
    location: Location | None = None
    geo_vary: tuple[str, ...] = ()
    simulated = False
    request_changes: Mapping[str, str | None] = MappingProxyType({})
    """Request headers (lower case) to set (a value) or remove (None) before the
    application sees the request."""
    prepared = False
    variant: str | None = None
    _tags: frozenset[str] = frozenset()
    _decision_failed = False
    _status = 200
    _headers: Headers = []  # noqa: RUF012 - replaced, never mutated
    _app_found: HeaderIndex | None = None
    _app_decision: Decision | None = None
    _editor: BodyEditor | None = None
    _committed = False
    _edited = False  # the edited response's headers went out (not the original's)
    _stopped = False
    _size = 0
    _buffer_until: int | None = None
    _page_language: str | None = None
    _app_etag: str | None = None
    _revalidated: str | None = None  # the reader revalidates its own variant: its flag
    _unedited_reported = False
    _told: frozenset[str] = frozenset()
    """Rules whose notices were told lost for this request, whatever its responses (a WSGI
    ``start_response`` with ``exc_info`` starts another): each is told once."""
    _head: Headers | None = None
    """A HEAD's headers should the application send it without a body."""

    # -- deciding

    def _simulated_location(self, ip: str) -> Location | None:
        simulate = self.settings.simulate_from
        assert simulate is not None
        if not simulate.contains(ip):
            return None
        value = self.headers.get(_SIMULATE_HEADER)
        if value is None and self.request.query:
            for part in self.request.query.split("&")[:32]:
                key, _, raw = part.partition("=")
                if key == _SIMULATE_PARAM:
                    value = raw
                    break
        if not value:
            return None
        match = _SIMULATED.match(value.strip()[:16])
        if match is None:
            return None
        country, sub = match.group(1).upper(), match.group(2)
        try:
            if sub:  # with the subdivisions that hold it, as a reader there is located
                held = with_parents(f"{country}-{sub.upper()}")
                return Location.of(country, *held, source="simulated")
            return Location.of(country, source="simulated")
        except ConfigurationError:
            return None  # not an ISO 3166 code: no simulation

    def _decide(self, tags: frozenset[str]) -> Decision:
        """Locate the reader (once: the request pipeline, peer, trusted proxies, CDN headers,
        then the engine's geolocator by address, or a simulated location for a configured
        developer) and decide for the request with these content tags."""
        location = self.location
        if location is None:
            settings = self.settings
            found = locate_request(
                self.request.peer,
                self.headers,
                proxies=settings.trusted_proxies,
                provider=settings.geo_header,
                geolocator=None,
            )
            self.client = client = found.client
            self.geo_vary = found.vary
            if client.via_trusted_proxy:
                self._forwarded_host(client)
            elif (
                settings.geo_header is not None
                and not _untrusted_geo_told
                and self.headers.get(settings.geo_header.header) is not None
            ):
                _tell_untrusted_geo_header(settings.geo_header.header)
            location = found.location
            if settings.simulate_from is not None and client.ip is not None:
                simulated = self._simulated_location(client.ip)
                if simulated is not None:
                    self.simulated = True
                    location = simulated
            if location.country is None:
                location = self.engine.locate(client.ip)
            self.location = location
        language = self.headers.get("accept-language")
        if language is not None and len(language) > _MAX_HEADER:
            language = language[:_MAX_HEADER].rpartition(",")[0] or None
        request = _decision_request((self.host, self.norm_path, language, tags, None, None))
        decision = self.engine.decide(location=location, request=request)
        if decision.needs_subdivision and location.via_header is not None:
            # A CDN gave the country alone, and a rule here names subdivisions of it: the
            # engine's geolocator (a City database) may know the subdivision. Asked once;
            # the answer depends on the address, so the response is private.
            self.location = location = completed(location, self.engine.locate(self.client.ip))
            decision = self.engine.decide(location=location, request=request)
        return decision

    def _forwarded_host(self, client: ClientAddress) -> None:
        """For a request through the trusted proxies: the host they name is the one rules
        match (``forwarded_host``); else, when it is not ``Host``, say so once: rules with
        ``hosts:`` match ``Host``, which a proxy that rewrites it may have made its own."""
        settings = self.settings
        if settings.forwarded_host:
            named = forwarded_host(client, self.headers, settings.trusted_proxies)
            host = normalize_host(named) if named is not None else ""
            if host:
                self.host = host
            return
        if settings.trusted_proxies.forwarded_header == "forwarded":
            return  # its host= is not looked at unless asked for
        named = self.headers.get("x-forwarded-host")
        if named is not None:
            _tell_forwarded_host(self.request.host, self.host, named)

    def begin(self) -> Response | None:
        """Decide for the request before the application runs. A Response to send instead
        of calling the application, or None (then apply :attr:`request_changes`)."""
        try:
            state = self._state
            self._tags = tags = self._app_tags()
            self.decision = decision = self._decide(tags)
            state[STATE_DECISION] = decision
        except Exception:
            self._decision_failed = True
            self._log_fault("decision")
            if self.settings.fail_mode == "closed":
                return unavailable()
            return None
        self.metrics.decision(decision)
        debug = None if decision_log.disabled else _LOG_LEVELS.get(logging.DEBUG)
        if debug is None:
            debug = decision_log.isEnabledFor(logging.DEBUG)
        if debug:
            self._log_decision(decision)
        if (
            decision.block is None
            and not decision.notices
            and not decision.withholds
            and self.norm_path != self.settings.decision_path
        ):
            return None  # nothing to do before the application runs
        try:
            if self.norm_path == self.settings.decision_path and self.method in _SAFE_METHODS:
                return self.decision_response(decision)
            if decision.block is not None:
                self.metrics.block(decision.block.rule_id)
                return self.block_response(decision)
        except Exception:
            self._log_fault("block page")
            if self.settings.fail_mode == "closed" or decision.block is None:
                return unavailable()
            # A block stands even when its page cannot be rendered: never the page itself.
            return self.plain_block(decision)
        # (An exported edge prepares its request to the origin for the notices it adds
        # itself: the origin's tags and ranges are its to translate.)
        if (
            self._needs_edit(decision)
            and not self._subresource()
            and (decision.withholds or not self._from_edge())
        ):
            self._prepare(decision)
        return None

    def _subresource(self) -> bool:
        """The browser asks for something it never shows as a page (an image, a script, a
        video): its request needs no preparing for an edited page (ranges, validators and
        codings stay the reader's), whatever the answer's type."""
        dest = self.headers.get("sec-fetch-dest")
        return dest is not None and dest.strip().lower() in _SUBRESOURCES

    def _log_decision(self, decision: Decision) -> None:
        location = decision.location
        decision_log.debug(
            "decision",
            extra={
                "compliance": {
                    "client": self.client.ip
                    if self.settings.log_addresses
                    else _masked(self.client.ip),
                    "country": location.country,
                    "subdivisions": list(location.subdivisions),
                    "source": location.source,
                    "rules": list(decision.applied),
                    "notices": [[n.rule_id, n.locale] for n in decision.notices],
                    "block": decision.block.rule_id if decision.block else None,
                    "host": self.host,
                    "path": self.path[:256],
                }
            },
        )

    def _set_decision(self, decision: Decision) -> Decision:
        self.decision = decision
        self.on_decision(decision)
        return decision

    def _localize(self, decision: Decision, page_language: str) -> None:
        """Expose the decision with the locales actually injected (the page's language can
        change them)."""
        localized = decision.localized(page_language)
        if localized is not decision:
            self._set_decision(localized)

    def _adopt_inner(self) -> None:
        """Count as in the page the notices another exchange on this request put in it or
        saw it render: an inner middleware (the same one stacked twice, or a framework's
        inside the generic one) has edited the response before this one sees it. Its sets
        replaced this one's in the shared state (this exchange renders after it)."""
        state = self._state
        for key in (STATE_RENDERED, STATE_INJECTED):
            ids = state.get(key)
            if ids is not self.rendered and isinstance(ids, set | frozenset):
                self.rendered.update(i for i in ids if isinstance(i, str))

    def _varies_on_language(self, decision: Decision, page_language: str | None) -> bool:
        """Whether the edited page varies on ``Accept-Language``: the reader's languages,
        not the page's, chose the locale of a notice the middleware puts in, or of one the
        page rendered itself (:attr:`by_reader`)."""
        if "accept-language" not in decision.vary:
            return False
        return bool(self.by_reader) or "accept-language" in decision.vary_for(page_language)

    def _wanted(self, decision: Decision) -> list[NoticeMatch]:
        return [n for n in decision.notices if n.rule_id not in self.rendered]

    @property
    def _withholding(self) -> bool:
        return self.decision is not None and bool(self.decision.withholds)

    def _needs_edit(self, decision: Decision) -> bool:
        return bool(decision.notices) or bool(decision.withholds)

    def _variant(self, decision: Decision) -> str:
        return decision.derived("variant", None, lambda: _variant_of(decision))

    def _prepare(self, decision: Decision) -> None:
        """The request as the application must see it for a reader whose page is edited:
        only codings the core can re-encode, no ranges, no validators naming another
        variant's copy; the preconditions of a change as the application's own tags."""
        self.prepared = True
        self.variant = variant = self._variant(decision)
        changes: dict[str, str | None] = {}
        self.request_changes = changes
        headers = self.headers
        if "accept-encoding" in headers:
            changes["accept-encoding"] = filter_accept_encoding(headers["accept-encoding"])
        for name in ("range", "if-range", "if-modified-since"):
            if name in headers:
                changes[name] = None
        for name in ("if-match", "if-none-match"):
            if name in headers and (name == "if-match" or self.method not in _SAFE_METHODS):
                # A precondition on the resource (``*``: "only if something / nothing is
                # there"), which no notice changes: a variant's tag is the application's.
                given = headers[name]
                translated = application_tags(given)
                if translated != given:
                    changes[name] = translated
        if "if-none-match" not in headers or self.method not in _SAFE_METHODS:
            return
        # Revalidating a copy: only this reader's variant is a copy worth a 304.
        value, flag = translate_if_none_match(headers["if-none-match"], variant)
        changes["if-none-match"] = value
        self._revalidated = None if value is None else flag

    # -- canned responses

    def _private(self, decision: Decision) -> bool:
        """Whether this reader's response is made private (``cache_policy="private"`` and a
        decision that depends on the reader, or a simulated location, or an answer the
        application built from the decision (:func:`read_decision`) of a reader located by
        address, whether or not any rule depends on the location)."""
        return self.settings.cache_policy == "private" and (
            decision.private
            or self.simulated
            or (STATE_READ in self._state and decision.location.via_header is None)
        )

    def _caching_only(self, decision: Decision) -> bool:
        """Whether nothing but ``Cache-Control`` may change in this reader's response
        headers: no ``Vary``, no rule headers, no debug header."""
        return not (
            decision.vary or self.geo_vary or decision.headers or self.settings.debug_headers
        )

    def _location_headers(
        self,
        decision: Decision,
        headers: Headers,
        *,
        json: bool = False,
        vary_on: tuple[str, ...] | None = None,
        found: HeaderIndex | None = None,
    ) -> Headers:
        """Vary, Cache-Control, the rules' headers and the debug header, in one rewrite of
        ``headers`` (``found``: their index, when the caller has it); with embeds withheld,
        no ``Link`` to their hosts."""
        found = found or HeaderIndex(headers)
        if decision.withholds and ("link" in found or "refresh" in found):
            headers, found = self._without_withheld_targets(decision, found)
        settings = self.settings
        policy = settings.cache_policy
        private = self._private(decision)
        if vary_on is None and not json and not found.repeated and self._caching_only(decision):
            # The usual case: at most one Cache-Control to make private, nothing to vary on.
            if not private:
                return headers
            control = found.last.get("cache-control")
            if control is None:
                value = "private"
            else:
                value = private_control.known(control) or private_control(control)
            return [*found.uncached, ("Cache-Control", value)]
        drop: frozenset[str] | set[str] = frozenset()
        add: Headers = []
        if policy != "off":
            names = decision.vary if vary_on is None else vary_on
            if self.geo_vary:
                names = (*names, *self.geo_vary)
            if json and "accept" in self.headers:
                names = (*names, "accept")
            if names:
                merged = vary_value(found.values("vary"), names)
                if merged is not None:
                    drop = _VARY_DROP
                    add.append(("Vary", merged))
            if private:
                drop = CACHING_HEADERS | drop if drop else CACHING_HEADERS
                add.append(("Cache-Control", private_value(found.values("cache-control"))))
        if decision.headers:
            present = {name for name in found.last if name not in drop}
            present.update(key.lower() for key, _ in add)
            if private:  # a rule's caching headers would make the page storable again
                present.update(CACHING_HEADERS)
            for name, value in decision.headers.items():
                if name.lower() not in present:
                    add.append((name, value))
        debug = self._debug_value(decision) if settings.debug_headers else None
        if debug is not None:
            drop = _DEBUG_DROP | drop
            add = [pair for pair in add if pair[0].lower() != _DEBUG_DROP_NAME]
            add.append((_DEBUG_HEADER, debug))
        if not add and not drop:
            return headers
        return found.rewrite(drop, add)

    @staticmethod
    def _without_withheld_targets(
        decision: Decision, found: HeaderIndex
    ) -> tuple[Headers, HeaderIndex]:
        """The headers without the ``Link`` targets on a host whose embeds are withheld (a
        browser preloads or connects to them as it does to an embed), and without a
        ``Refresh`` going there (followed like ``<meta http-equiv=refresh>``, which the
        editor withholds)."""
        embedding = [match for match in decision.withholds if match.embeds]
        if not embedding:
            return found.headers, found

        def withheld(host: str) -> bool:
            return any(match.embed_host_matches(host) for match in embedding)

        drop: frozenset[str] = frozenset()
        add: Headers = []
        if "link" in found:
            drop = _LINK_DROP
            add = [("Link", value) for value in without_links_to(found.values("link"), withheld)]
        if "refresh" in found:
            refresh = found.values("refresh")
            left = without_refresh_to(refresh, withheld)
            if len(left) != len(refresh):
                drop = drop | _REFRESH_DROP
                add += [("Refresh", value) for value in left]
        if not drop:
            return found.headers, found
        headers = found.rewrite(drop, add)
        return headers, HeaderIndex(headers)

    def _debug_value(self, decision: Decision) -> str | None:
        """The ``X-Compliance-Decision`` value, when debugging is on for this client."""
        settings = self.settings
        if not settings.debug_headers or not settings.debug_networks.contains(self.client.ip):
            return None
        location = decision.location
        where = "/".join([location.country or "unknown", *location.subdivisions])
        rules = ", ".join(decision.applied) or "none"
        return f"{rules}; location={where}; source={location.source}"

    def debug_headers(self, headers: Headers, decision: Decision | None = None) -> Headers:
        """``headers`` plus ``X-Compliance-Decision`` when debugging is on for this client."""
        decision = decision or self.decision
        value = None if decision is None else self._debug_value(decision)
        if value is None:
            return headers
        return [*without(headers, _DEBUG_DROP_NAME), (_DEBUG_HEADER, value)]

    def block_response(self, decision: Decision | None = None) -> Response:
        """The 451 (or other block status) page."""
        decision = decision or self.decision
        assert decision is not None
        assert decision.block is not None
        block = decision.block
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
        headers = self._location_headers(decision, headers, json=True)
        if not get_all(headers, "cache-control"):
            headers.append(("Cache-Control", "no-cache"))
        if self.method == "HEAD":
            body = b""
        return Response(block.status, headers, body)

    def plain_block(self, decision: Decision) -> Response:
        """The block without its rule's own text (which could not be rendered)."""
        block = decision.block
        assert block is not None
        body = b"Unavailable For Legal Reasons\n"
        headers: Headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Link", block.link_header),
            ("Cache-Control", "no-store"),
        ]
        return Response(block.status, headers, b"" if self.method == "HEAD" else body)

    def decision_response(self, decision: Decision) -> Response:
        """The reader's decision as JSON (``decision_path``)."""
        import json

        document = decision.to_dict(None, trace=False)
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        headers: Headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ]
        vary = [*decision.vary, *self.geo_vary]
        if any(len(n.locales) > 1 for n in decision.notices):
            vary.append("accept-language")
        if self.settings.simulate_from is not None:
            vary.append(_SIMULATE_HEADER)
        if vary:
            headers = add_vary(headers, vary)
        headers = make_private(headers)
        if self.method == "HEAD":
            body = b""
        return Response(200, self.debug_headers(headers, decision), body)

    # -- the response

    def start_raw(self, status: int, raw: object) -> list[tuple[bytes, bytes]] | None:
        """:meth:`start` for headers as ASGI has them (``bytes`` pairs), for the response
        that needs nothing but its caching headers (the no-notice path of most requests):
        the headers to send, without decoding and encoding every header. None for
        anything else (a reader with notices, upper-case or repeated names, ...): then
        decode the headers and call :meth:`start`, which gives the same answer here."""
        decision = self.decision
        if (
            decision is None
            or decision.notices
            or decision.withholds
            or status == 304
            or self._tags
            or raw.__class__ is not list
        ):
            return None
        if self._state.get(STATE_TAGS):
            return None
        pairs: list[tuple[bytes, bytes]] = raw
        try:
            index = dict(pairs)
            lower = lower_names(index)
        except (TypeError, ValueError):
            return None  # not pairs of bytes: the general path says what to do
        if len(index) != len(pairs) or not lower or _TAGS_BYTES in index or _SKIP_BYTES in index:
            return None
        ctype = index.get(b"content-type")
        if ctype is not None:
            text = ctype.decode("latin-1")
            html = (media_type.known(text) or media_type(text))[0] in _HTML_TYPES
        if ctype is None or not html:
            if STATE_READ in self._state:
                return None  # built from the decision: the caching headers of a page
            self._status = status
            return [(key, value) for key, value in pairs]
        if not self._private(decision) or not self._caching_only(decision):
            return None
        control = index.get(b"cache-control")
        if control is None:
            private = "private"
        else:
            text = control.decode("latin-1")
            private = private_control.known(text) or private_control(text)
        self._status = status
        kept = [(key, value) for key, value in pairs if key not in _CACHING_BYTES]
        kept.append((b"cache-control", private.encode("latin-1")))
        return kept

    def start(self, status: int, headers: Headers) -> Action:
        """What to do with the response the application started. Never raises: a library
        fault applies the fail mode."""
        self._status = status
        try:
            decision = self.decision
            if (
                decision is not None
                and not decision.notices
                and not decision.withholds
                and status != 304
                and not self._tags
                and not self._state.get(STATE_TAGS)
            ):
                # The common case of a reader with nothing to insert: only the caching
                # headers (the general path gives the same answer, in more steps).
                found = HeaderIndex(headers)
                last = found.last
                if _TAGS_HEADER not in last and _SKIP_HEADER not in last:
                    ctype = last.get("content-type")
                    if (
                        ctype is None
                        or (media_type.known(ctype) or media_type(ctype))[0] not in _HTML_TYPES
                    ):
                        if STATE_READ in self._state:  # built from the decision
                            headers = self._location_headers(decision, headers, found=found)
                        return _passthrough((status, headers))
                    return _passthrough(
                        (status, self._location_headers(decision, headers, found=found))
                    )
                return self._start(status, found)
            return self._start(status, HeaderIndex(headers))
        except Exception:
            self._log_fault("response")
            lost = self._lost(None)
            self._tell("fault", "a fault when the response started", lost, ended=False)
            return self._fail_start(status, headers, cause="fault")

    def _fail_start(self, status: int, headers: Headers, *, cause: str) -> Action:
        """The fail mode, before anything was sent. Content a rule withholds is never sent,
        whatever the fail mode: a page that cannot be edited is then a 503."""
        if self.settings.fail_mode == "closed" or self._withholding:
            return Replace(unavailable())
        return Passthrough(status, self._fail_open_headers(headers))

    def _fail_open_headers(self, headers: Headers) -> Headers:
        """The application's headers, sent unedited, but never storable by a shared cache
        when the reader's location mattered (or could not be known)."""
        headers = without(headers, _TAGS_HEADER, _SKIP_HEADER)
        decision = self.decision
        if self.settings.cache_policy == "off":
            return headers
        if (
            decision is None
            or decision.private
            or self._needs_edit(decision)
            or STATE_READ in self._state
        ):
            headers = make_private(headers)
        if decision is not None and decision.vary:
            headers = add_vary(headers, decision.vary)
        return headers

    def _start(self, status: int, found: HeaderIndex) -> Action:
        self._adopt_inner()
        headers = found.headers
        last = found.last
        response_tags = found.values(_TAGS_HEADER) if _TAGS_HEADER in last else None
        skip = _SKIP_HEADER in last
        if response_tags or skip:
            headers = found.rewrite(_CONTROL_HEADERS, [])
            found = HeaderIndex(headers)
        decision = self.decision
        if decision is None:
            if self._decision_failed:
                return Passthrough(status, self._fail_open_headers(headers))
            return Passthrough(status, headers)
        requested = self._request_tags()
        if response_tags or requested or self._tags:
            tags = tags_of(requested) | tags_of(",".join(response_tags or ()))
            if tags != self._tags:
                self._tags = tags
                decision = self._set_decision(self._decide(tags))
                self.metrics.decision(decision)
                if decision.block is not None:
                    self.metrics.block(decision.block.rule_id)
                    return Replace(self.block_response(decision))
        ctype = found.last.get("content-type")
        media, charset = media_type(ctype) if ctype is not None else ("", None)
        html = media in _HTML_TYPES
        if status == 304:
            return Passthrough(status, self._revalidation_headers(decision, headers, found, html))
        if not html and STATE_READ in self._state:
            # Another type, built from the decision (a JSON API): the location's caching
            # headers, never an edit.
            headers = self._location_headers(decision, headers, json=False, found=found)
            flag = _language_flag(decision.vary)
            return Passthrough(status, self._with_variant_tag(headers, flag))
        if not html:  # as the application sent it, but for a tag the reader's copy can use
            return Passthrough(status, self._with_variant_tag(headers, "o"))
        edge = self._from_edge()
        wanted = self._wanted(decision) if decision.notices and not (skip or edge) else []
        withholds = decision.withholds
        # Why none of the notices is the middleware's to inject, when none is.
        unwanted = "edge" if edge else "x-compliance-skip" if skip else "rendered by the page"
        if not wanted and not withholds:
            vary_on = None
            if (
                decision.notices
                and "accept-language" in decision.vary
                and not (edge or skip or self.by_reader)
            ):
                # Every notice is the page's own, in the language the page gave its helper:
                # the reader's languages chose none of them.
                vary_on = tuple(name for name in decision.vary if name != "accept-language")
            headers = self._location_headers(
                decision, headers, json=False, vary_on=vary_on, found=found
            )
            if decision.notices:
                self.metrics.skipped(unwanted)
            vary = decision.vary if vary_on is None else vary_on
            return Passthrough(status, self._with_variant_tag(headers, _language_flag(vary)))
        # From here on the reader's page must carry notices (or withhold content).
        if self.method == "HEAD":
            # A HEAD's body, if the application sends one (Django, Starlette's Response:
            # the server drops it), is the GET's: it is edited as the GET's is, so the
            # headers are the GET's, its length included. Without one (Werkzeug), these go
            # out (see finish): no length that disagrees with the GET's, and Vary as the
            # GET's when its Content-Language chose the locales (a language only the GET's
            # body names cannot be known here).
            language = _content_language(found)
            varied = self._varies_on_language(decision, language or None)
            vary = decision.vary if varied else decision.vary_for(language or None)
            head = self._location_headers(decision, headers, json=False, vary_on=vary, found=found)
            if self._partial_request():
                # The GET's body is a fragment (what a partial-page request is answered
                # with), so the GET varies on the partial-page headers: so does this.
                head = add_vary(head, _PARTIAL_VARY)
            self._head = self._edited_headers(head, varied=varied)
        if not 200 <= status < 300 or status == 204:
            return Passthrough(
                status, self._location_headers(decision, headers, json=False, found=found)
            )
        due = [notice.rule_id for notice in wanted]
        if status == 206 or "content-range" in found:
            self._tell("range", "the application sent a range", due)
            headers = self._location_headers(decision, headers, json=False, found=found)
            return self._fail_start(status, headers, cause="range")
        sent_by = next((name for name in _FRONT_SERVER_FILES if name in found), None)
        if sent_by is not None:
            # The server in front sends the page itself, unedited: the fail mode, loudly
            # (an empty body would otherwise be a legitimate skip, with an edited ETag).
            self._tell("server file", f"the server in front sends the page ({sent_by})", due)
            headers = self._location_headers(decision, headers, json=False, found=found)
            return self._fail_start(status, headers, cause="server file")
        encodings = found.values("content-encoding")
        codings = (
            [c.strip().lower() for value in encodings for c in value.split(",") if c.strip()]
            if encodings
            else []
        )
        coding = codings[0] if codings else ""
        if len(codings) > 1 or (coding and coding not in editable_codings()):
            self._tell(
                "content-coding", f"content-encoding {', '.join(codings)!r} cannot be edited", due
            )
            headers = self._location_headers(decision, headers, json=False, found=found)
            return self._fail_start(status, headers, cause="content-coding")
        settings = self.settings
        language = _content_language(found)
        policies = found.values("content-security-policy")
        csp_nonce = _style_nonce(policies) if policies else None
        chosen = decision

        def render(info: PageInfo) -> Mapping[Placement, str]:
            nonce = self.nonce() or csp_nonce or info.nonce
            rendered = self.rendered
            # From here the notices the page has not rendered are the middleware's to
            # inject: a template helper that runs later (a streamed page) leaves them out.
            self._state[STATE_INJECTED] = {
                n.rule_id for n in chosen.notices if n.rule_id not in rendered
            }
            if rendered:
                return self._without_rendered(chosen, language or info.lang, nonce)
            return chosen.snippets(
                page_language=language or info.lang, css=settings.css, nonce=nonce
            )

        self._app_found = found  # the application's headers, for the fail mode
        self._app_decision = decision
        partial = self._partial_request()
        editor = self._editor = BodyEditor(
            render,
            charset=charset,
            codec=make_codec(coding, max_size=settings.max_decoded, max_ratio=settings.max_ratio),
            max_hold=settings.max_hold,
            partial=partial,
            metrics=self.metrics,
            withhold=self._withhold(decision, editor=lambda: self._editor) if withholds else None,
        )
        if not wanted:
            editor.skip(unwanted)
        self._original: list[bytes] = []
        self._out: list[bytes] = []
        self._page_language = language or None
        # Vary: Accept-Language waits for the page's language (see _commit).
        if "accept-language" in decision.vary:
            unvaried = tuple(name for name in decision.vary if name != "accept-language")
            edited = self._location_headers(
                decision, headers, json=False, vary_on=unvaried, found=found
            )
        else:
            edited = self._location_headers(decision, headers, found=found)
        self._headers = self._edited_headers(edited)
        given = found.first("content-length")
        length = int(given) if given is not None and _DIGITS.fullmatch(given.strip()) else None
        if length is not None and length <= settings.buffer_limit:
            self._buffer_until = 2 * settings.buffer_limit
        return EDIT

    def _revalidation_headers(
        self, decision: Decision, headers: Headers, found: HeaderIndex, html: bool
    ) -> Headers:
        """A 304 carries the same caching headers as the GET it stands for. A 304 rarely
        says what it stands for; a tag of this reader's edited variant does."""
        revalidated = self._revalidated
        if revalidated == "o":  # another type, sent with the application's caching headers
            return self._with_variant_tag(headers, "o")
        if not (
            html or revalidated is not None or self._looks_like_page() or STATE_READ in self._state
        ):
            return headers
        vary_on = None
        if revalidated == "":
            vary_on = tuple(n for n in decision.vary if n != "accept-language")
        headers = self._location_headers(
            decision, headers, json=False, vary_on=vary_on, found=found
        )
        vary = decision.vary if vary_on is None else vary_on
        return self._with_variant_tag(headers, _language_flag(vary))

    def _with_variant_tag(self, headers: Headers, flag: str) -> Headers:
        """``headers`` with the tag of this reader's variant for the application's, when the
        request was prepared for one: its validators then name only that variant's copies
        (see :meth:`_prepare`), which the application's own tag never would. ``flag``: what
        the tag says of the copy (:data:`~compliance.http.VARIANT_FLAGS`)."""
        variant = self.variant
        if variant is None:
            return headers
        etags = get_all(headers, "etag")
        if not etags:
            return headers
        return [*without(headers, "etag"), ("ETag", variant_etag(etags[0], variant + flag))]

    def _withhold(self, decision: Decision, *, editor: Callable[[], BodyEditor | None]) -> Withhold:
        """What the editor removes for this decision, and the placeholders in the page's
        language (known once the page's start is read)."""
        marks: dict[str, str] = {}
        for match in decision.withholds:
            for token in match.marks:
                marks.setdefault(token, match.rule_id)
        by_rule = {match.rule_id: match for match in decision.withholds}
        embedding = [match for match in decision.withholds if match.embeds]

        def embed_host(host: str) -> str | None:
            for match in embedding:
                if match.embed_host_matches(host):
                    return match.rule_id
            return None

        def placeholder(rule_id: str) -> str | None:
            match = by_rule[rule_id]
            current = editor()
            language = self._page_language or (current.lang if current is not None else None)
            return match.placeholder(decision.locale_for(match, language))

        return Withhold.of(
            marks,
            embed_host if embedding else None,
            placeholder,
            hosts=[glob for match in embedding for glob in match.embeds],
        )

    def _without_rendered(
        self, decision: Decision, page_language: str | None, nonce: str | None
    ) -> Mapping[Placement, str]:
        """Snippets for the notices the page did not render itself (the default CSS before
        the first, with ``css=True``)."""
        out: dict[Placement, str] = {}
        for notice in decision.notices:
            if notice.rule_id in self.rendered:
                continue
            html = notice.html(decision.locale_for(notice, page_language))
            if not out and self.settings.css:
                html = style_element(nonce) + html
            out[notice.placement] = out.get(notice.placement, "") + html
        return out

    def _from_edge(self) -> bool:
        """The request came from an exported edge that adds the notices itself."""
        edges = self.settings.edge_from
        peer = self.request.peer
        return (
            edges is not None
            and peer is not None
            and "x-compliance-edge" in self.headers
            and edges.contains(peer)
        )

    def _looks_like_page(self) -> bool:
        accept = self.headers.get("accept", "")
        return "text/html" in accept or "application/xhtml+xml" in accept

    def _partial_request(self) -> bool:
        headers = self.headers
        htmx = "hx-request" in headers and "hx-boosted" not in headers
        return htmx or "turbo-frame" in headers

    def _app_response_headers(self) -> Headers:
        """The application's headers with the caching headers of the decision it started
        with (an edited response that fails open before it is sent goes out with them)."""
        found, decision = self._app_found, self._app_decision
        if found is None or decision is None:
            return self._headers
        return self._location_headers(decision, found.headers, found=found)

    def _edited_headers(self, headers: Headers, *, varied: bool | None = None) -> Headers:
        """Headers of an edited body: no length or ranges, no digests of other bytes, and
        its own ETag (set by :meth:`_commit`, once it is known whether the page varies on
        ``Accept-Language``, unless ``varied`` says so now)."""
        found = HeaderIndex(headers)
        etag = found.first("etag")
        add: Headers = []
        if etag is not None:
            self._app_etag = etag
            if varied is not None:
                add.append(("ETag", self._variant_tag(varied)))
        return found.rewrite(_EDITED_DROP, add)

    def _variant_tag(self, varied: bool) -> str:
        assert self._app_etag is not None
        variant = self.variant or (self._variant(self.decision) if self.decision else "0")
        return variant_etag(self._app_etag, variant + ("a" if varied else ""))

    # -- the body

    @property
    def stopped(self) -> bool:
        """Nothing more is to be sent for this response (the rest of the body is dropped)."""
        return self._stopped

    def restart(self) -> None:
        """Forget the response the application started, none of whose body came: it starts
        another (WSGI's ``start_response`` with ``exc_info``). Call :meth:`start` again."""
        state = self.__dict__
        for name in _RESPONSE_STATE:
            state.pop(name, None)  # back to the class default

    def trailers(self, fields: Headers) -> Headers:
        """The application's trailer fields as they may follow the body: once the body is
        edited, without the digests of the original (as its headers lose them)."""
        return without(fields, *_DIGESTS) if self._edited else fields

    def _commit(self, length: int | None, editor: BodyEditor | None = None) -> Start:
        self._committed = self._edited = True
        headers = self._headers
        decision = self.decision
        editor = editor or self._editor
        if editor is not None and self.settings.fail_mode == "open":
            editor.go_on_unedited = True
        varied = False
        if decision is not None:
            language = self._page_language or (editor.lang if editor is not None else None)
            if language and "accept-language" in decision.vary:
                self._localize(decision, language)
            varied = self._varies_on_language(decision, language)
            if self.settings.cache_policy != "off":
                if varied:
                    headers = add_vary(headers, ["accept-language"])
                if editor is not None and editor.fragment:
                    # Whether a fragment gets notices depends on the partial-page headers.
                    headers = add_vary(headers, _PARTIAL_VARY)
        if self._app_etag is not None:
            headers = [*headers, ("ETag", self._variant_tag(varied))]
        if length is not None:
            headers = [*headers, ("Content-Length", str(length))]
        return Start(self._status, headers)

    def feed(self, chunk: bytes) -> list[Event]:
        """Events for the next chunk of the application's body."""
        editor = self._editor
        if self._stopped:
            return []
        if editor is None:  # editing stopped: the rest goes out as the application sent it
            return [Data(chunk)] if chunk else []
        if not self._committed:
            self._original.append(chunk)
        try:
            out = editor.feed(chunk)
        except WithholdUncertain as exc:
            return self._uncertain(exc, more=True)
        except Undelivered as exc:
            return self._undelivered(exc.cause, str(exc), more=True)
        except Exception:
            return self._fault(more=True)
        if editor.unedited is not None:
            self._report_unedited(editor)
        if self._committed:
            return [Data(out)] if out else []
        if out:  # none empty: a start held back over many pieces leaves nothing to look over
            self._out.append(out)
        self._size += len(chunk)
        if self._buffer_until is not None and self._size <= self._buffer_until:
            return []  # small and announced: collect it so Content-Length stays exact
        if not self._out:
            # Nothing to send yet: the editor is still reading the start of the document,
            # whose language and kind the headers depend on (however the body is split).
            return []
        events: list[Event] = [self._commit(None)]
        body = b"".join(self._out)
        self._out = []
        self._original = []
        if body:
            events.append(Data(body))
        return events

    def finish(self) -> list[Event]:
        """Events for the end of the application's body."""
        editor = self._editor
        if self._stopped:
            return []
        if editor is None:
            return [] if self._committed else [Start(self._status, self._headers)]
        self._editor = None
        if self._head is not None and not self._size:
            return [Start(self._status, self._head)]  # a HEAD answered without its body
        try:
            tail = editor.finish()
        except WithholdUncertain as exc:
            self._editor = editor
            return self._uncertain(exc, more=False)
        except Undelivered as exc:
            self._editor = editor
            return self._undelivered(exc.cause, str(exc), more=False)
        except Exception:
            self._editor = editor
            return self._fault(more=False)
        missing = self._missing(editor)
        # Failing open with some notices in, the page goes out with those (the original
        # would lose them too); the others are logged and counted below.
        if (
            missing is not None
            and not self._committed
            and (not editor.inserted or self.settings.fail_mode == "closed")
        ):
            self._editor = editor
            return self._undelivered("not inserted", missing, more=False)
        events: list[Event] = []
        if not self._committed:
            body = b"".join(self._out) + tail
            self._out = []
            self._original = []
            events.append(self._commit(len(body), editor))
            if body:
                events.append(Data(body))
        elif tail:
            events.append(Data(tail))
        if missing is not None:
            self._tell("not inserted", missing, self._lost(editor), ended=False)
        self._delivered(editor)
        return events

    def _report_unedited(self, editor: BodyEditor) -> None:
        """Log and count, once, that the page went on unedited after its headers were out."""
        if editor.unedited is not None and not self._unedited_reported:
            self._unedited_reported = True
            cause, detail = editor.unedited
            self._tell(cause, detail, self._lost(editor), ended=False)

    def _missing(self, editor: BodyEditor) -> str | None:
        """Why the notices this reader must see are not in the page, if they are not (and
        not said already)."""
        decision = self.decision
        if decision is None or editor.skipped is not None or not self._wanted(decision):
            return None
        if editor.unedited is not None:  # (a fault that stopped editing among them)
            self._report_unedited(editor)
            return None
        return editor.not_inserted

    def _delivered(self, editor: BodyEditor) -> None:
        decision = self.decision
        if decision is None:
            return
        for rule_id in editor.withheld:
            self.metrics.withheld(rule_id)
        if editor.skipped is not None:
            self.metrics.skipped(editor.skipped)
            return
        self._count_injected(editor)

    def _count_injected(self, editor: BodyEditor) -> None:
        """Count the notices that are in the page: those of the placements that placed."""
        decision = self.decision
        if decision is None:
            return
        placed = editor.placed
        for notice in self._wanted(decision):
            if notice.placement in placed:
                self.metrics.injected(notice.rule_id, decision.location.country)

    def _uncertain(self, exc: WithholdUncertain, *, more: bool) -> list[Event]:
        """Where a withheld element ends cannot be told: never half remove it."""
        return self._undelivered("withhold uncertain", str(exc), more=more, output=exc.output)

    def give_up(self, cause: str, detail: str) -> list[Event]:
        """The body cannot be edited (a file the server sends itself, say): the fail mode.
        Unless :attr:`stopped`, the application's body then goes out as it is."""
        if self._editor is None:
            return []
        return self._undelivered(cause, detail, more=True)

    def _undelivered(
        self, cause: str, detail: str, *, more: bool, output: bytes = b""
    ) -> list[Event]:
        """The fail mode for ``cause``: logged at WARNING, and counted for each notice it
        leaves out of the page (a page cut after its headers still gets those due)."""
        editor = self._editor
        events = self._broken(more=more, output=output)
        self._tell(cause, detail, self._lost(editor))
        return events

    def _fault(self, *, more: bool) -> list[Event]:
        """A library fault while editing (call from an ``except`` block): logged with its
        traceback and counted, then the fail mode as for any other cause."""
        exc = sys.exc_info()[1]
        self._log_fault("editing")
        detail = f"a fault stopped editing ({type(exc).__name__})"
        return self._undelivered("fault", detail, more=more)

    def _tell(self, cause: str, detail: str, lost: list[str], *, ended: bool = True) -> None:
        """The one place a response that misses what its decision called for is told: one
        WARNING (rate-limited by cause) naming the request (bounded, escaped), the cause and
        the rules whose notices are not in the page, each of those counted under ``cause``.
        With none lost, a page the fail mode ended (``ended``: cut with the notices still due
        put in, or refused with none due) is counted as cut. A notice is told lost once per
        request, however many responses or causes lose it."""
        where = f"{_loggable(self.method, 16)} {_loggable(self.path, 256)}: {detail}"
        told = self._told
        fresh = [rule_id for rule_id in lost if rule_id not in told] if told else lost
        if fresh:
            self._told = told.union(fresh)
            log_undelivered(cause, where, metrics=self.metrics, count=len(fresh), rules=fresh)
        elif not lost and ended:
            self.metrics.cut(cause)
            log_undelivered(cause, f"{where} (no notice lost)")

    def _lost(self, editor: BodyEditor | None) -> list[str]:
        """The rules whose notices the middleware was to inject are not in the page: those
        whose placement did not place, once the edited page went out (``editor``); else all.
        None of them when the page leaves them out on purpose (``editor.skipped``)."""
        decision = self.decision
        if decision is None or not decision.notices:
            return []
        if editor is not None and editor.skipped is not None:
            return []
        wanted = self._wanted(decision)
        if editor is None or not self._edited:
            return [notice.rule_id for notice in wanted]
        placed = editor.placed
        return [notice.rule_id for notice in wanted if notice.placement not in placed]

    def _broken(self, *, more: bool, output: bytes = b"") -> list[Event]:
        """The fail mode once the body has started. Content a rule withholds is never sent:
        with withholding, failing open ends the document where it is (``output``: what the
        failing step may still send) instead of sending the original."""
        editor = self._editor
        self._editor = None
        self._stopped = not more or self._withholding or self._committed
        if not self._committed:
            original = b"".join(self._original)
            edited = b"".join(self._out)
            self._original = []
            self._out = []
            if self.settings.fail_mode == "closed":
                self._committed = self._stopped = True
                response = unavailable()
                return [Start(response.status, response.headers, True), Data(response.body)]
            if self._withholding:
                start = self._commit(None, editor)
                body = edited + self._cut(editor, output)
                return [start, Data(body)] if body else [start]
            self._committed = True
            self._stopped = False  # the rest goes out as the application sends it
            headers = self._fail_open_headers(self._app_response_headers())
            events: list[Event] = [Start(self._status, headers)]
            if original:
                events.append(Data(original))
            return events
        # Headers are out: never send half-edited bytes followed by raw ones. End the body
        # cleanly where it is (any notice still held goes at the end).
        tail = self._cut(editor, output)
        return [Data(tail)] if tail else []

    def _cut(self, editor: BodyEditor | None, output: bytes) -> bytes:
        """``output``, then the end of a cleanly cut document: the notices still due (counted
        as injected: they are in the page) and the end tags that close it."""
        if editor is None:
            return output
        tail = editor.cut(output)
        self._count_injected(editor)
        return tail


# -- the middleware options, shared by both adapters ------------------------------------------

AppT = TypeVar("AppT")


class Middleware(Generic[AppT]):
    """What both middlewares share: the options, validated once, and the counters.

    It is a security issue to trust values that came from the client rather than a proxy:
    list in ``trusted_proxies`` only the proxies in front of you, and name in
    ``forwarded_header`` the one header they write (``"x-forwarded-for"``, ``"forwarded"``
    or ``"x-real-ip"``); the other forwarding headers are ignored, since a proxy passes
    through what it does not write.
    """

    _totals: ClassVar[Totals] = Totals()
    """The counters of every middleware of this class (subclasses included) made in this
    process, for :meth:`process_metrics`: each class has its own."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._totals = Totals()

    def __init__(
        self,
        app: AppT,
        engine: EngineProtocol,
        *,
        trusted_proxies: TrustedProxies | Iterable[str] | str | None = None,
        proxy_hops: int = 0,
        forwarded_header: str = "x-forwarded-for",
        forwarded_host: bool = False,
        geo_header: HeaderGeolocator | Provider | str | None = None,
        fail_mode: str = "open",
        cache_policy: str = "private",
        csp_nonce: NonceSource = None,
        css: bool = False,
        debug_headers: bool = False,
        debug_networks: TrustedProxies | Iterable[str] | str | None = None,
        buffer_limit: int = 256 * 1024,
        max_hold: int = 256 * 1024,
        max_decoded: int = 64 * 1024 * 1024,
        max_ratio: int = 1000,
        decision_path: str | None = None,
        simulate_from: TrustedProxies | Iterable[str] | str | None = None,
        log_addresses: bool = False,
        edge_from: TrustedProxies | Iterable[str] | str | None = None,
    ) -> None:
        if not callable(getattr(engine, "decide", None)) or not callable(
            getattr(engine, "locate", None)
        ):
            raise ConfigurationError(
                f"engine must be a compliance.Engine (or have decide() and locate()), "
                f"not {type(engine).__name__}"
            )
        self.app = app
        self.engine = engine
        self.settings = Settings.from_options(
            trusted_proxies=trusted_proxies,
            proxy_hops=proxy_hops,
            forwarded_header=forwarded_header,
            forwarded_host=forwarded_host,
            geo_header=geo_header,
            fail_mode=fail_mode,
            cache_policy=cache_policy,
            csp_nonce=csp_nonce,
            css=css,
            debug_headers=debug_headers,
            debug_networks=debug_networks,
            buffer_limit=buffer_limit,
            max_hold=max_hold,
            max_decoded=max_decoded,
            max_ratio=max_ratio,
            decision_path=decision_path,
            simulate_from=simulate_from,
            log_addresses=log_addresses,
            edge_from=edge_from,
        )
        self.counters = Metrics()
        self.parts = (self.settings, self.engine, self.counters)
        """The first arguments of every :class:`Exchange` of this middleware."""
        for klass in type(self).__mro__:
            totals = vars(klass).get("_totals")
            if isinstance(totals, Totals):
                totals.add(self.counters, self.engine)

    @classmethod
    def process_metrics(cls) -> Snapshot:
        """The counters of every middleware of this class (subclasses included) made in
        this process, added up: those a framework made out of the site's reach
        (Starlette's ``add_middleware``). A middleware gone leaves its counts in, so the
        sums never go down (see :class:`compliance.metrics.Totals`)."""
        return cls._totals.snapshot()

    def metrics(self) -> Snapshot:
        """The counters of this middleware now: decisions, notices injected, blocks,
        notices not delivered (by cause), withheld elements, faults, and the engine's rule
        and database reloads."""
        return counted(self.counters, self.engine)

    def exchange(
        self,
        request: Request,
        state: MutableMapping[str, object] | None = None,
        context: object = None,
    ) -> Exchange:
        """A new :class:`Exchange` for one request (``state`` and ``context``: see there)."""
        return Exchange(self.settings, self.engine, self.counters, request, state, context)

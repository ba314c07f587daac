"""Putting geolocators together: a chain, the default choice, and the request pipeline.

The request pipeline decides a reader's location once, before any rule is looked at::

    socket peer ──► trusted proxies ──► CDN headers (trusted only) ──► geolocator ──► Location
                    (forwarded_header)   (a Provider)                   (MaxMind, embedded, chain)

:func:`locate_request` is that pipeline; the response core calls it and hands the
:class:`~compliance.geo.Location` to ``Engine.decide(location=...)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from compliance.cache import BoundedCache
from compliance.errors import ConfigurationError

from .addresses import ClientAddress, TrustedProxies, resolve_client
from .embedded import EmbeddedGeolocator
from .location import UNKNOWN, Geolocator, Location, _Closing
from .maxmind import MaxMindGeolocator
from .providers import HeaderGeolocator, Provider

__all__ = [
    "ChainGeolocator",
    "RequestLocation",
    "completed",
    "knows_subdivisions",
    "locate_request",
    "open_geolocator",
]


class ChainGeolocator(_Closing):
    """Asks each geolocator in turn; the first known answer wins, else UNKNOWN.

    ``headers`` and ``trusted`` are passed on to each geolocator, for compatibility; a
    request pipeline reads CDN headers itself (:func:`locate_request`) and asks the chain with
    the address alone.

    >>> chain = ChainGeolocator([HeaderGeolocator("cloudfront"), EmbeddedGeolocator()])
    >>> chain.locate("77.88.55.88", {"cloudfront-viewer-country": "XX"}, trusted=True).source
    'embedded'
    """

    def __init__(self, geolocators: Iterable[Geolocator]) -> None:
        self.geolocators: tuple[Geolocator, ...] = tuple(geolocators)
        """The geolocators, in the order they are asked."""
        if not self.geolocators:
            raise ConfigurationError("a geolocator chain needs at least one geolocator")

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The first known location any geolocator finds."""
        for geolocator in self.geolocators:
            location = geolocator.locate(ip, headers, trusted=trusted)
            if location.country is not None:
                return location
        return UNKNOWN

    def reload_counts(self) -> dict[str, int]:
        """The database reloads of the geolocators that count them, added up."""
        return _reload_counts(self.geolocators)

    def close(self) -> None:
        """Close every geolocator, even when one of them fails to close."""
        errors = []
        for geolocator in self.geolocators:
            try:
                geolocator.close()
            except Exception as exc:  # close the rest, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        return f"ChainGeolocator({list(self.geolocators)!r})"


def _reload_counts(geolocators: Iterable[object]) -> dict[str, int]:
    """The ``reload_counts()`` of those of ``geolocators`` that have one, added up."""
    total: Counter[str] = Counter()
    for geolocator in geolocators:
        counts = getattr(geolocator, "reload_counts", None)
        if callable(counts):
            total.update(counts())
    return dict(total)


def open_geolocator(
    geoip_db: str | os.PathLike[str] | None, *, check_interval: float = 60.0
) -> Geolocator:
    """A MaxMind geolocator for ``geoip_db`` when given, else the embedded one.

    >>> open_geolocator(None)
    EmbeddedGeolocator()
    """
    if geoip_db is None:
        return EmbeddedGeolocator()
    return MaxMindGeolocator(geoip_db, check_interval=check_interval)


class RequestLocation(NamedTuple):
    """What the request pipeline found out about one request."""

    client: ClientAddress
    """Who sent it: the peer, or the address the trusted proxies reported."""
    location: Location
    """Where the reader is."""
    vary: tuple[str, ...]
    """Request headers, lower case, the location may depend on (for ``Vary``): the CDN's
    headers whenever a provider is configured, whether or not they were present or believed,
    since a shared cache must key on them either way."""


# One HeaderGeolocator per Provider object, found by identity: hashing a dataclass costs
# more than the rest of the pipeline.
_readers: BoundedCache[int, tuple[Provider | HeaderGeolocator, HeaderGeolocator]]
_readers = BoundedCache(64, 64 * 1024, size=0)
_new_tuple = tuple.__new__

# The pipeline's answer for a repeat request, before any database lookup, kept with the
# trusted proxies it went through (``TrustedProxies.located``: it lives and dies with them,
# so a configuration dropped is memory freed), by everything else it depends on: the CDN
# reader (by identity: the entry keeps it alive, so no other object can take its id), the
# peer, and the values of the headers they read. A repeat reader costs one lookup here
# instead of three calls and a new tuple. Only values short enough for the caches below go
# in, so an entry's size is bounded: a fixed estimate.
_MAX_REMEMBERED_VALUE: Final = 512
_MEMO_ENTRIES: Final = 8192
_MEMO_ENTRY_BYTES: Final = 4 * _MAX_REMEMBERED_VALUE + 1024
_Memo = tuple[HeaderGeolocator | None, RequestLocation, list[RequestLocation | None]]
"""The reader, the answer before the database, and a slot holding the last answer with it
(replaced in place: one list store, no lock)."""


def _new_memo(proxies: TrustedProxies) -> BoundedCache[tuple[object, ...], _Memo]:
    """The pipeline's memo for ``proxies``, kept with them (on their first request; two
    threads making one at once lose only the answers of the one replaced)."""
    memo: BoundedCache[tuple[object, ...], _Memo] = BoundedCache(
        _MEMO_ENTRIES, _MEMO_ENTRIES * _MEMO_ENTRY_BYTES, size=_MEMO_ENTRY_BYTES
    )
    proxies.located = memo
    return memo


def _header_reader(provider: Provider | HeaderGeolocator) -> HeaderGeolocator:
    entry = _readers.get(id(provider))
    if entry is None or entry[0] is not provider:
        reader = provider if isinstance(provider, HeaderGeolocator) else HeaderGeolocator(provider)
        entry = _readers.set(id(provider), (provider, reader))
    return entry[1]


def locate_request(
    peer: str | None,
    headers: Mapping[str, str],
    *,
    proxies: TrustedProxies,
    provider: Provider | HeaderGeolocator | None = None,
    geolocator: Geolocator | None,
) -> RequestLocation:
    """Where the sender of one request is: the request pipeline.

    ``peer`` is the socket peer (None for a Unix socket), ``headers`` the request headers by
    lower-case name. The client address comes from ``proxies`` (:func:`resolve_client`); when
    the request came through a trusted proxy and a CDN ``provider`` is configured, its
    headers are read first; when they give no country, ``geolocator`` looks the address up
    (None: unknown). Headers from an untrusted peer are never read: the client wrote them.

    >>> proxies = TrustedProxies(["10.0.0.0/8"])
    >>> found = locate_request("10.0.0.1", {"x-forwarded-for": "77.88.55.88",
    ...     "cf-ipcountry": "DE"}, proxies=proxies, provider=HeaderGeolocator("cloudflare"),
    ...     geolocator=EmbeddedGeolocator())
    >>> found.client.ip, found.location.country, found.location.source, found.vary
    ('77.88.55.88', 'DE', 'header:cloudflare', ('cf-ipcountry', 'cf-region-code'))
    >>> locate_request("203.0.113.9", {"cf-ipcountry": "DE"}, proxies=proxies,
    ...     provider=HeaderGeolocator("cloudflare"), geolocator=None).location.known
    False
    """
    get = headers.get
    if provider is None:
        reader = None
        key: tuple[object, ...] = (peer, get(proxies.forwarded_header))
    else:
        entry = _readers.get(id(provider))  # _header_reader's hit, without its call
        reader = (
            entry[1] if entry is not None and entry[0] is provider else _header_reader(provider)
        )
        region = reader.region_header
        key = (
            id(reader),
            peer,
            get(proxies.forwarded_header),
            get(reader.header),
            None if region is None else get(region),
        )
    memos = proxies.located
    if memos is None:
        memos = _new_memo(proxies)
    memo = memos.get(key)
    if memo is None:
        found = _located(peer, headers, proxies, reader)
        if not all(
            part is None
            or part.__class__ is int
            or (isinstance(part, str) and len(part) <= _MAX_REMEMBERED_VALUE)
            for part in key
        ):
            key = ()  # too long to remember (or odd): answered, not kept
        memo = (reader, found, [None])
        if key:
            memos.set(key, memo)
    found = memo[1]
    if geolocator is None or found.location.country is not None:
        return found
    # Not answered by the headers: the address, by the geolocator, every time (its own cache
    # answers a repeat; its database may have been swapped since). The last answer is kept,
    # and handed back while the geolocator hands back the same Location object; after a
    # swap (or when its cache turns over), the new answer takes its place.
    location = geolocator.locate(found.client.ip)
    slot = memo[2]
    last = slot[0]
    if last is not None and last.location is location:
        return last
    answer = slot[0] = _new_tuple(RequestLocation, (found.client, location, found.vary))
    return answer


def _located(
    peer: str | None,
    headers: Mapping[str, str],
    proxies: TrustedProxies,
    reader: HeaderGeolocator | None,
) -> RequestLocation:
    """The pipeline up to the database: the client address, and the CDN headers' location
    when a trusted proxy sent them (else UNKNOWN)."""
    client = resolve_client(peer, headers, proxies)
    vary: tuple[str, ...] = ()
    location = UNKNOWN
    if reader is not None:
        vary = reader.headers
        if client.via_trusted_proxy:
            location = reader.from_headers(headers)
    # tuple.__new__ directly: a NamedTuple's own constructor is Python code.
    return _new_tuple(RequestLocation, (client, location, vary))


# Completed answers by the identities of the two they were made from (the entry keeps both
# alive, so no other object can take their ids): a repeat reader gets the same Location
# object, which the engine's repeat-reader cache keys on.
_completions: BoundedCache[tuple[int, int], tuple[Location, Location, Location]]
_completions = BoundedCache(4096, 4096 * 1024, size=1024)


def completed(answer: Location, by_address: Location) -> Location:
    """A CDN header's ``answer`` that names a country but no subdivision, completed by the
    location of the reader's address (``by_address``, from a City database): its
    subdivisions, when it places the reader in the same country; none when it places them
    elsewhere (the CDN, which the site chose to believe, keeps the country). The result
    depends on the address as well as on the headers, so it has no ``via_header``: a
    shared cache must not serve it to every reader who sends the same headers (the response
    core makes such a response private).

    >>> header = HeaderGeolocator("cloudflare").locate(
    ...     None, {"cf-ipcountry": "UA"}, trusted=True)
    >>> both = completed(header, Location.of("UA", "UA-43", source="maxmind:GeoIP2-City"))
    >>> both.country, both.subdivisions, both.source, both.via_header
    ('UA', ('UA-43',), 'header:cloudflare+maxmind:GeoIP2-City', None)
    >>> completed(header, Location.of("RU", source="embedded")).subdivisions
    ()
    """
    key = (id(answer), id(by_address))
    hit = _completions.get(key)
    if hit is not None and hit[0] is answer and hit[1] is by_address:
        return hit[2]
    same = by_address.country is not None and by_address.country == answer.country
    location = dataclasses.replace(
        answer,
        subdivisions=by_address.subdivisions if same else (),
        source=f"{answer.source}+{by_address.source}",
        via_header=None,
    )
    return _completions.set(key, (answer, by_address, location))[2]


def knows_subdivisions(geolocator: object) -> bool | None:
    """Whether a geolocator's answers may name subdivisions: False for the embedded lookup
    and a MaxMind Country database; True for a City or Enterprise database and a CDN
    reader with a region header (None without one: its country header may hold one); for a
    chain, True when any of its geolocators may, False when none can. None for a
    geolocator it cannot tell (one of your own).

    >>> knows_subdivisions(EmbeddedGeolocator()), knows_subdivisions(object())
    (False, None)
    """
    if isinstance(geolocator, EmbeddedGeolocator):
        return False
    if isinstance(geolocator, MaxMindGeolocator):
        kind = geolocator.database_type
        return "City" in kind or "Enterprise" in kind
    if isinstance(geolocator, HeaderGeolocator):
        # Without a region header, the country header itself may hold one ("US,USCA").
        return True if geolocator.region_header is not None else None
    if isinstance(geolocator, ChainGeolocator):
        answers = [knows_subdivisions(one) for one in geolocator.geolocators]
        if True in answers:
            return True
        return False if all(answer is False for answer in answers) else None
    return None

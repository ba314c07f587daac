"""Where a reader is: :class:`Location`, the codes it holds, and the :class:`Geolocator` protocol.

Codes are checked here, once: countries are ISO 3166-1 alpha-2, subdivisions full ISO 3166-2
codes (``"UA-43"``, built from MaxMind's and the CDNs' bare ``"43"``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType, TracebackType
from typing import Any, Final, Protocol, Self, runtime_checkable

from compliance.cache import BoundedCache
from compliance.errors import ConfigurationError

__all__ = [
    "UNKNOWN",
    "Anonymity",
    "Geolocator",
    "Location",
    "country_code",
    "is_iso_country",
    "is_iso_subdivision",
    "iso_country",
    "subdivision_code",
    "with_parents",
]

# EU member states (ISO 3166-1), for sources that do not carry MaxMind's flag themselves.
_EU_MEMBERS: Final = (
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
)
_EU: Final = frozenset(_EU_MEMBERS.split())
# Two-letter values that are not countries: CDN and RIR placeholders for "unknown", Tor,
# anonymous proxies, satellite providers, and the regional EU/AP registrations.
_NOT_COUNTRIES: Final = frozenset({"XX", "ZZ", "T1", "A1", "A2", "O1", "EU", "AP"})
# In use by CDNs and MaxMind although not (yet) assigned by ISO 3166-1: Kosovo.
_EXTRA_COUNTRIES: Final = frozenset({"XK"})
# Values a CDN or a database uses for "no country" or "no region", upper case: not worth a
# warning.
_PLACEHOLDERS: Final = frozenset({"", "**", "-", "--", "?", "UNKNOWN", "N/A", "NO REGION"})

log = logging.getLogger("compliance.geo")


@dataclass(frozen=True, slots=True)
class Anonymity:
    """The flags of a MaxMind Anonymous-IP database for one address."""

    anonymous_vpn: bool = False
    """A VPN provider's address."""
    hosting_provider: bool = False
    """A hosting or VPN provider's address."""
    public_proxy: bool = False
    """A public proxy."""
    residential_proxy: bool = False
    """A suspected anonymizing proxy on a residential ISP."""
    tor_exit_node: bool = False
    """A Tor exit node."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where a reader is, as far as a geolocator can tell.

    >>> loc = Location.of("UA", "43", source="fixed")
    >>> loc
    Location(country='UA', subdivisions=('UA-43',), source='fixed', ...)
    >>> loc.known, UNKNOWN.known
    (True, False)
    """

    country: str | None = None
    """ISO 3166-1 alpha-2 code, upper case; ``None`` when unknown."""
    subdivisions: tuple[str, ...] = ()
    """Full ISO 3166-2 codes, largest first, e.g. ``("GB-ENG", "GB-WBK")``."""
    source: str = "none"
    """The geolocator that answered: ``"maxmind:GeoIP2-City"``, ``"embedded"``, ...."""
    network: str | None = None
    """The database network (CIDR) the address fell into, when known."""
    via_header: str | None = None
    """Request headers the answer came from, lower case, joined by ``", "`` (for ``Vary``)."""
    is_in_european_union: bool | None = None
    """The country is an EU member state; ``None`` when the country is unknown."""
    is_anonymous: bool | None = None
    """Any ``anonymity`` flag is set; ``None`` when no Anonymous-IP data was consulted."""
    anonymity: Anonymity | None = None
    """What kind of anonymizer the address belongs to, from an Anonymous-IP database."""

    @property
    def known(self) -> bool:
        """The country is known."""
        return self.country is not None

    @classmethod
    def of(cls, country: str | None, *subdivisions: str, source: str = "fixed") -> Location:
        """A location from codes, checked and normalized.

        Subdivisions may be full (``"UA-43"``) or bare (``"43"``, prefixed with the country).
        Raises :class:`~compliance.errors.ConfigurationError` on a code that is not assigned
        (:func:`is_iso_country`, :func:`is_iso_subdivision`): ``"QQ"``, or ``"RU-CR"`` (Crimea
        is ``"UA-43"``).

        >>> Location.of("gb", "eng", "GB-WBK").subdivisions
        ('GB-ENG', 'GB-WBK')
        >>> Location.of(None).known
        False
        >>> Location.of("RU", "CR")
        Traceback (most recent call last):
        ...
        compliance.errors.ConfigurationError: 'CR' is not an ISO 3166-2 subdivision code of RU
        """
        if country is None:
            if subdivisions:
                raise ConfigurationError("subdivisions need a country")
            return cls(source=source)
        countries, known, _ = _iso or _iso_codes()
        code = country_code(country)
        if code is None or code not in countries:
            raise ConfigurationError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
        full = []
        for subdivision in subdivisions:
            part = subdivision.upper()
            name = part if part.startswith(f"{code}-") else f"{code}-{part}"
            if name not in known:
                raise ConfigurationError(
                    f"{subdivision!r} is not an ISO 3166-2 subdivision code of {code}"
                )
            full.append(name)
        return cls(code, tuple(full), source, is_in_european_union=code in _EU)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields by name, ``subdivisions`` as a list, ``anonymity``
        as a dict of flags or None.

        >>> Location.of("UA", "UA-43").to_dict()["subdivisions"]
        ['UA-43']
        """
        return {
            "country": self.country,
            "subdivisions": list(self.subdivisions),
            "source": self.source,
            "network": self.network,
            "via_header": self.via_header,
            "is_in_european_union": self.is_in_european_union,
            "is_anonymous": self.is_anonymous,
            "anonymity": None if self.anonymity is None else asdict(self.anonymity),
        }


UNKNOWN: Final = Location()
"""The unknown location."""


def country_code(value: str) -> str | None:
    """``value`` as an upper-case ISO 3166-1 alpha-2 code, or None for placeholders and junk.

    >>> country_code("ua"), country_code("XX"), country_code("T1"), country_code("U1")
    ('UA', None, None, None)
    """
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha() or code in _NOT_COUNTRIES:
        return None
    return code


def iso_country(value: str) -> tuple[str | None, bool]:
    """The assigned ISO 3166-1 code ``value`` holds (any case, blanks around it), or None;
    and whether ``value`` is worth a warning: neither such a code nor a placeholder for
    "unknown" (:func:`country_code`'s, ``**``, empty, ...).

    >>> iso_country(" ua "), iso_country("XX"), iso_country("**"), iso_country("QQ")
    (('UA', False), (None, False), (None, False), (None, True))
    >>> iso_country("UKR")
    (None, True)
    """
    code = country_code(value)
    if code is not None and is_iso_country(code):
        return code, False
    shown = value.strip().upper()
    return None, shown not in _PLACEHOLDERS and shown not in _NOT_COUNTRIES


# Values already warned about, so that a bad value is logged once and the memory of them stays
# bounded.
_warned: BoundedCache[tuple[str, str, str], bool] = BoundedCache(1024, 256 * 1024)
# Values are endless, so new ones are logged at most _WARN_BUDGET per _WARN_INTERVAL seconds
# for each source and kind of value; the others are counted and the count given with the next
# line: (window start, logged in it, held back since the last line).
_WARN_INTERVAL: Final = 60.0
_WARN_BUDGET: Final = 20
_warn_windows: dict[tuple[str, str], tuple[float, int, int]] = {}
_warn_lock = threading.Lock()
_monotonic = time.monotonic


def _warn_once(source: str, what: str, value: str, detail: str) -> None:
    """Log at WARNING, once per ``source``, ``what`` and ``value`` (its first 32 characters),
    that ``source`` gave a ``value`` read as unknown; at most :data:`_WARN_BUDGET` new values
    a minute for each ``source`` and ``what``."""
    shown = value if len(value) <= 32 else value[:32] + "..."
    key = (source, what, shown)
    if _warned.get(key) is not None:
        return
    _warned.set(key, True)
    now = _monotonic()
    with _warn_lock:
        start, logged, held = _warn_windows.get((source, what), (now - _WARN_INTERVAL, 0, 0))
        if now - start >= _WARN_INTERVAL:
            start, logged = now, 0
        if logged >= _WARN_BUDGET:
            _warn_windows[(source, what)] = (start, logged, held + 1)
            return
        if len(_warn_windows) >= 1024:  # sources and kinds come from the configuration
            _warn_windows.clear()
        _warn_windows[(source, what)] = (start, logged + 1, 0)
    more = f" ({held} more such values were not logged)" if held else ""
    log.warning("%s: %s %r %s; treated as unknown%s", source, what, shown, detail, more)


@runtime_checkable
class Geolocator(Protocol):
    """Finds the location of a client.

    ``trusted`` says the request came through a configured trusted proxy; only then may a
    geolocator read ``headers`` (lower-case names). Never raises on a malformed address.
    """

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location: ...

    def close(self) -> None: ...


class _Closing:
    """Context-manager support: ``with Geolocator(...) as geo:`` closes it on exit."""

    def close(self) -> None:
        """Release resources; the default holds none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- ISO 3166 tables ---------------------------------------------------------------------------

_iso_lock = threading.Lock()
_Tables = tuple[frozenset[str], frozenset[str], Mapping[str, str]]
_iso: _Tables | None = None


def _iso_codes() -> _Tables:
    """Countries, subdivisions, and the subdivision that holds each one held by another."""
    # pycountry's import and tables cost ~0.1 s: load them on first use, once.
    global _iso
    if _iso is None:
        with _iso_lock:
            if _iso is None:
                import pycountry

                countries = frozenset(c.alpha_2 for c in pycountry.countries) | _EXTRA_COUNTRIES
                subdivisions = frozenset(s.code for s in pycountry.subdivisions)
                parents: dict[str, str] = {}
                for subdivision in pycountry.subdivisions:
                    parent = getattr(subdivision, "parent_code", None)
                    if isinstance(parent, str) and parent in subdivisions:
                        parents[subdivision.code] = parent
                _iso = countries, subdivisions, MappingProxyType(parents)
    return _iso


def country_codes() -> frozenset[str]:
    """Every country code a :class:`Location` may hold: ISO 3166-1 alpha-2, and ``XK``."""
    return _iso_codes()[0]


def is_iso_country(code: str) -> bool:
    """``code`` is an assigned ISO 3166-1 alpha-2 code (or ``XK``), upper case.

    >>> is_iso_country("UA"), is_iso_country("XK"), is_iso_country("QQ"), is_iso_country("ua")
    (True, True, False, False)
    """
    return code in _iso_codes()[0]


def is_iso_subdivision(code: str) -> bool:
    """``code`` is a full ISO 3166-2 subdivision code, upper case.

    >>> is_iso_subdivision("UA-43"), is_iso_subdivision("RU-CR"), is_iso_subdivision("43")
    (True, False, False)
    """
    return code in _iso_codes()[1]


def with_parents(code: str) -> tuple[str, ...]:
    """A full ISO 3166-2 ``code`` after the subdivisions that hold it, largest first, as a
    City database lists them: a source that names the most specific one alone (Fastly's
    ``BNH``, Brighton and Hove) still places the reader in England.

    >>> with_parents("GB-BNH"), with_parents("UA-43")
    (('GB-ENG', 'GB-BNH'), ('UA-43',))
    """
    parents = _iso_codes()[2]
    chain = [code]
    while (parent := parents.get(chain[0])) is not None and parent not in chain:
        chain.insert(0, parent)
    return tuple(chain)


def subdivision_code(country: str, written: str) -> str | None:
    """A subdivision of ``country`` as a source writes it (``eng``, `` 43``, ``ua-43``) as
    the full code it names (``GB-ENG``, ``UA-43``): stripped, upper case, the country put in
    front when it is not there. Not checked against ISO 3166-2 (see
    :func:`is_iso_subdivision`); None for a placeholder ("no region").

    >>> subdivision_code("GB", " eng"), subdivision_code("UA", "ua-43")
    ('GB-ENG', 'UA-43')
    >>> subdivision_code("US", "--") is None
    True
    """
    part = written.strip().upper()
    if part in _PLACEHOLDERS:
        return None
    return part if part.startswith(f"{country}-") else f"{country}-{part}"


def _location_builder() -> Callable[..., Location]:
    # A frozen dataclass __init__ sets each field through object.__setattr__; setting the
    # slots directly halves the cost of a first-time lookup. Every field must be set here.
    names = [field.name for field in fields(Location)]
    (country, subdivisions, source, network, via_header, eu, anonymous, anonymity) = (
        vars(Location)[name].__set__ for name in names
    )
    new = object.__new__

    def build(
        code: str,
        subs: tuple[str, ...],
        src: str,
        net: str | None,
        in_eu: bool,
        is_anonymous: bool | None = None,
        flags: Anonymity | None = None,
    ) -> Location:
        location: Location = new(Location)
        country(location, code)
        subdivisions(location, subs)
        source(location, src)
        network(location, net)
        via_header(location, None)
        eu(location, in_eu)
        anonymous(location, is_anonymous)
        anonymity(location, flags)
        return location

    return build


_located: Final = _location_builder()

"""CDN and load-balancer geolocation headers: providers as data, and the geolocator that reads them.

A :class:`Provider` says which request headers carry the reader's country and subdivision and
how to read their values. The built-in ones are in a registry that a site extends with
:func:`register_provider`, so adding a CDN needs no change to this library:

>>> register_provider(Provider("my-edge", "x-edge-country", "x-edge-region"), replace=True)
Provider(name='my-edge', country_header='x-edge-country', region_header='x-edge-region', ...)
>>> geo = HeaderGeolocator("my-edge")
>>> geo.locate(None, {"x-edge-country": "ua", "x-edge-region": "43"}, trusted=True).subdivisions
('UA-43',)

Values are checked against ISO 3166: a country that is a placeholder (``XX``, ``T1``, ``**``,
empty) is unknown; one that is malformed (``UKR``) or not assigned (``QQ``) is unknown too, and
logged once per value at WARNING on the ``compliance.geo`` logger; so is a region that does
not make an ISO 3166-2 code with the country (``RU`` + ``CR`` is not ``RU-CR``), which means
"subdivision unknown".
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from compliance.cache import BoundedCache
from compliance.errors import ConfigurationError

from .location import (
    _EU,
    UNKNOWN,
    Location,
    _Closing,
    _warn_once,
    is_iso_subdivision,
    iso_country,
    subdivision_code,
    with_parents,
)

__all__ = [
    "HeaderGeolocator",
    "Provider",
    "get_provider",
    "parse_cldr",
    "parse_edgescape",
    "parse_pair",
    "parse_plain",
    "register_provider",
    "registered_providers",
]

Parse = Callable[[str, str | None], tuple[str | None, str | None]]
"""``parse(country_value, region_value)`` -> ``(country, region)``, both text or None.

``country_value`` is the country header's value; ``region_value`` the region header's value
(None when the provider has no region header or the request lacks it). The region returned
may be bare (``"43"``) or full (``"UA-43"``); it is checked against ISO 3166-2 afterwards.
"""

# Header values are short; a longer one is not parsed at all.
MAX_HEADER_CHARS: Final = 1024
_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")


# --- value formats ----------------------------------------------------------------------------


def parse_plain(country: str, region: str | None) -> tuple[str | None, str | None]:
    """Each header holds one code: ``CF-IPCountry: UA``, ``cf-region-code: 43``.

    >>> parse_plain("UA", "43")
    ('UA', '43')
    """
    return country, region


def parse_pair(country: str, region: str | None) -> tuple[str | None, str | None]:
    """``country[,subdivision]`` in one header; a region header, when set, wins.

    >>> parse_pair("UA,43", None), parse_pair("GB, NO REGION", None), parse_pair("DE", "BY")
    (('UA', '43'), ('GB', 'NO REGION'), ('DE', 'BY'))
    """
    first, _, second = country.partition(",")
    return first.strip(), region if region else (second.strip() or None)


def parse_edgescape(country: str, region: str | None) -> tuple[str | None, str | None]:
    """Akamai's ``X-Akamai-Edgescape``: ``key=value`` pairs, ``country_code`` and
    ``region_code`` used (the region format outside the US is unverified).

    >>> parse_edgescape("georegion=246,country_code=US,region_code=CA,city=SANJOSE", None)
    ('US', 'CA')
    """
    fields: dict[str, str] = {}
    for item in country.split(","):
        key, sep, value = item.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields.get("country_code"), region if region else fields.get("region_code")


def parse_cldr(country: str, region: str | None) -> tuple[str | None, str | None]:
    """Google Cloud load balancers: ``{client_region},{client_region_subdivision}``, where
    the subdivision is a CLDR id that starts with the country (``USCA``); the subdivision
    alone (``USCA``) or the country alone (``DE``) also read.

    >>> parse_cldr("USCA", None), parse_cldr("UA,UA43", None), parse_cldr("DE", None)
    (('US', 'CA'), ('UA', '43'), ('DE', None))
    """
    first, _, second = country.partition(",")
    first = first.strip()
    if len(first) > 2:
        code, sub = first[:2], first
    else:
        code, sub = first, (region if region else second)
    sub = sub.strip()
    if len(sub) > 2 and sub[:2].upper() == code.upper():
        sub = sub[2:]
    return code, sub or None


# --- providers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provider:
    """Where a CDN or load balancer puts the reader's location, and how to read it.

    >>> Provider("edge", "X-Edge-Country").headers
    ('x-edge-country',)
    """

    name: str
    """The name it is registered and chosen by (``geo_header="cloudflare"``)."""
    country_header: str | None
    """The request header holding the country, lower case; None when each site names it
    (``HeaderGeolocator(provider, header="...")``), as Fastly's VCL does."""
    region_header: str | None = None
    """The request header holding the subdivision, lower case, if a separate one."""
    parse: Parse = parse_plain
    """How to read the values: :data:`Parse`; see :func:`parse_plain`, :func:`parse_pair`,
    :func:`parse_edgescape`, :func:`parse_cldr`."""
    verified: bool = True
    """The value format is checked against the provider's documentation and real traffic."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError(f"a provider needs a name, not {self.name!r}")
        for field in ("country_header", "region_header"):
            value = getattr(self, field)
            if value is None:
                continue
            if not isinstance(value, str) or not _TOKEN.match(value.strip().lower()):
                raise ConfigurationError(
                    f"provider {self.name!r}: {field} {value!r} is not a header name"
                )
            object.__setattr__(self, field, value.strip().lower())
        if not callable(self.parse):
            raise ConfigurationError(f"provider {self.name!r}: parse must be callable")

    @property
    def headers(self) -> tuple[str, ...]:
        """Every request header this provider reads (what a response must ``Vary`` on)."""
        return tuple(h for h in (self.country_header, self.region_header) if h is not None)

    def with_headers(
        self, country_header: str | None = None, region_header: str | None = None
    ) -> Provider:
        """The same provider reading other header names (None keeps the provider's own).

        >>> get_provider("fastly").with_headers("x-geo").headers
        ('x-geo',)
        """
        return dataclasses.replace(
            self,
            country_header=country_header or self.country_header,
            region_header=region_header or self.region_header,
        )


_BUILT_IN: Final = (
    Provider("cloudflare", "cf-ipcountry", "cf-region-code"),
    Provider("cloudfront", "cloudfront-viewer-country", "cloudfront-viewer-country-region"),
    Provider("fastly", None, None, parse_pair),
    Provider("akamai", "x-akamai-edgescape", None, parse_edgescape, verified=False),
    Provider("google", "x-client-geo-location", None, parse_cldr),
    Provider("generic", None, None, parse_pair),
)
_registry: dict[str, Provider] = {provider.name: provider for provider in _BUILT_IN}
_registry_lock = threading.Lock()


def register_provider(provider: Provider, *, replace: bool = False) -> Provider:
    """Add ``provider`` to the registry, so ``geo_header=provider.name`` finds it.

    A name already registered is refused unless ``replace``.
    """
    if not isinstance(provider, Provider):
        raise ConfigurationError(f"register_provider needs a Provider, not {provider!r}")
    with _registry_lock:
        if provider.name in _registry and not replace:
            raise ConfigurationError(
                f"a geolocation header provider named {provider.name!r} is already registered"
            )
        _registry[provider.name] = provider
    return provider


def registered_providers() -> Mapping[str, Provider]:
    """The registered providers by name (a snapshot).

    >>> " ".join(list(registered_providers())[:3])
    'cloudflare cloudfront fastly'
    """
    return MappingProxyType(dict(_registry))


def get_provider(name: str) -> Provider:
    """The registered provider called ``name``; ConfigurationError naming the choices."""
    provider = _registry.get(name) if isinstance(name, str) else None
    if provider is None:
        raise ConfigurationError(
            f"unknown geolocation header provider {name!r}; "
            f"choose from {', '.join(_registry)} or register_provider() your own"
        )
    return provider


# --- checking values --------------------------------------------------------------------------


def _subdivisions(source: str, code: str, region: str | None) -> tuple[str, ...]:
    """The subdivisions of ``code`` a region value names: its own, after those that hold
    it (:func:`~compliance.geo.location.with_parents`); none for a placeholder or a code
    ISO 3166-2 does not assign (logged once)."""
    if region is None:
        return ()
    full = subdivision_code(code, region)
    if full is None:
        return ()
    if is_iso_subdivision(full):
        return with_parents(full)
    _warn_once(
        source,
        "region",
        region,
        f"for country {code} is not an ISO 3166-2 subdivision ({full[:40]})",
    )
    return ()


# --- the geolocator ---------------------------------------------------------------------------


class HeaderGeolocator(_Closing):
    """Locations from the geolocation headers a CDN or load balancer adds to requests.

    ``provider`` is a registered name or a :class:`Provider`. Headers are read only when
    ``trusted`` is true, i.e. the request came through a trusted proxy: otherwise the client
    wrote them. Built in:

    - ``"cloudflare"``: ``CF-IPCountry`` and ``cf-region-code``;
    - ``"cloudfront"``: ``CloudFront-Viewer-Country`` and ``CloudFront-Viewer-Country-Region``;
    - ``"akamai"``: ``X-Akamai-Edgescape`` (``country_code=..,region_code=..``);
    - ``"google"``: ``X-Client-Geo-Location`` set to
      ``{client_region},{client_region_subdivision}`` (``US,USCA``);
    - ``"fastly"``, ``"generic"``: ``header`` holds ``country[,subdivision]`` (``**`` and
      ``NO REGION`` mean unknown), and ``region_header`` optionally the subdivision.

    ``header`` and ``region_header`` override the provider's header names. ``XX``, ``T1``,
    ``**``, empty, malformed and unassigned countries are unknown (the last two logged once
    per value); a subdivision that is not an ISO 3166-2 code of the country is dropped (and
    logged once) and the country kept.
    ``via_header`` of an answer lists every header consulted, for ``Vary``.

    >>> geo = HeaderGeolocator("cloudflare")
    >>> geo.locate(None, {"cf-ipcountry": "UA", "cf-region-code": "43"}, trusted=True)
    Location(country='UA', subdivisions=('UA-43',), source='header:cloudflare', ...)
    >>> geo.locate(None, {"cf-ipcountry": "UA"}, trusted=False).known
    False
    """

    def __init__(
        self,
        provider: str | Provider,
        header: str | None = None,
        *,
        region_header: str | None = None,
    ) -> None:
        spec = provider if isinstance(provider, Provider) else get_provider(provider)
        if header is not None or region_header is not None:
            try:
                spec = spec.with_headers(header, region_header)
            except ConfigurationError as exc:
                raise ConfigurationError(str(exc)) from None
        if spec.country_header is None:
            raise ConfigurationError(f"the {spec.name!r} provider needs header=NAME")
        self.provider: Provider = spec
        """The provider read, with any header names overridden."""
        self.header: str = spec.country_header
        """The header holding the country."""
        self.region_header: str | None = spec.region_header
        """The header holding the subdivision part, if any."""
        self._parse = spec.parse
        self._headers = spec.headers
        self._source = f"header:{spec.name}"
        self._via = ", ".join(spec.headers)
        # Few distinct values arrive: remember each pair's answer, so that a repeat reader
        # gets the same Location object (which the engine's decision cache keys on).
        self._cache: BoundedCache[str | tuple[str, str], Location] = BoundedCache(4096, 1 << 20)

    @property
    def headers(self) -> tuple[str, ...]:
        """Every request header this geolocator reads (what a response must ``Vary`` on)."""
        return self._headers

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The location the headers give, when ``trusted``; else UNKNOWN."""
        if not trusted or not headers:
            return UNKNOWN
        return self.from_headers(headers)

    def from_headers(self, headers: Mapping[str, str]) -> Location:
        """The location the headers give, without asking whether they may be believed: the
        caller has checked that they came from a trusted proxy."""
        value = headers.get(self.header)
        if not value or len(value) > MAX_HEADER_CHARS:
            return UNKNOWN
        region = None
        if self.region_header is not None:
            region = headers.get(self.region_header)
            if region is not None and len(region) > MAX_HEADER_CHARS:
                region = None
        key: str | tuple[str, str] = value if region is None else (value, region)
        location = self._cache.get(key)
        if location is None:
            location = self._cache.set(key, self._read(value, region))
        return location

    def _read(self, value: str, region_value: str | None) -> Location:
        try:
            country, region = self._parse(value, region_value)
        except Exception as exc:  # a site's parse function must not take the request down
            _warn_once(self._source, "value", value, f"could not be parsed ({exc!r})")
            return UNKNOWN
        if not isinstance(country, str):
            return UNKNOWN
        code, odd = iso_country(country)
        if code is None:
            # A placeholder is the CDN saying "unknown"; anything else is a header that does
            # not hold what the provider says it does (the operator must hear of it).
            if odd:
                _warn_once(self._source, "country", country, "is not an ISO 3166-1 country code")
            return UNKNOWN
        subdivisions = _subdivisions(
            self._source, code, region if isinstance(region, str) else None
        )
        return Location(code, subdivisions, self._source, None, self._via, code in _EU)

    def __repr__(self) -> str:
        return f"HeaderGeolocator({self.provider.name!r}, {self.header!r})"

"""Where a reader is: :class:`Location`, the geolocators that find it, and the request pipeline.

A geolocator turns a client IP address into a :class:`Location`. Private, loopback,
link-local, reserved, documentation and multicast addresses are never looked up: they say
nothing about where a reader is. Nothing here raises on a malformed address; it is an unknown
location. A database that breaks while serving raises
:class:`~compliance.errors.GeoDatabaseError`.

The package holds one idea per module:

- :mod:`~compliance.geo.location`: :class:`Location`, ISO code checks, the :class:`Geolocator`
  protocol;
- :mod:`~compliance.geo.addresses`: client addresses behind trusted proxies, public addresses;
- :mod:`~compliance.geo.maxmind`: :class:`MaxMindGeolocator`;
- :mod:`~compliance.geo.embedded`: :class:`EmbeddedGeolocator`;
- :mod:`~compliance.geo.providers`: CDN header :class:`Provider` s and
  :class:`HeaderGeolocator`;
- :mod:`~compliance.geo.chain`: :class:`ChainGeolocator`, :func:`open_geolocator` and the
  request pipeline :func:`locate_request`, with :func:`completed` (a CDN's country, the
  subdivision from the address).

MaxMind and embedded lookups are cached per address in a bounded cache, so a repeat visitor
costs one dict lookup.
"""

from __future__ import annotations

import logging

from .addresses import (
    ClientAddress,
    TrustedProxies,
    forwarded_host,
    public_address,
    resolve_client,
)
from .chain import (
    ChainGeolocator,
    RequestLocation,
    completed,
    knows_subdivisions,
    locate_request,
    open_geolocator,
)
from .embedded import EmbeddedGeolocator
from .location import (
    UNKNOWN,
    Anonymity,
    Geolocator,
    Location,
    country_code,
    is_iso_country,
    is_iso_subdivision,
)
from .maxmind import MaxMindGeolocator
from .providers import (
    HeaderGeolocator,
    Provider,
    get_provider,
    register_provider,
    registered_providers,
)

__all__ = [
    "UNKNOWN",
    "Anonymity",
    "ChainGeolocator",
    "ClientAddress",
    "EmbeddedGeolocator",
    "Geolocator",
    "HeaderGeolocator",
    "Location",
    "MaxMindGeolocator",
    "Provider",
    "RequestLocation",
    "TrustedProxies",
    "completed",
    "country_code",
    "forwarded_host",
    "get_provider",
    "is_iso_country",
    "is_iso_subdivision",
    "knows_subdivisions",
    "locate_request",
    "open_geolocator",
    "public_address",
    "register_provider",
    "registered_providers",
    "resolve_client",
]

log = logging.getLogger("compliance.geo")

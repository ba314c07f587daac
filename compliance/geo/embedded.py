"""Country-level locations from the ``iptocc`` package (RIR allocation data), offline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import iptocc

from compliance.cache import ENTRY_OVERHEAD, BoundedCache

from .addresses import public_address
from .location import _EU, UNKNOWN, Location, _Closing, iso_country

__all__ = ["EmbeddedGeolocator"]

_DEFAULT_CACHE_SIZE: Final = 32_768
_MAX_KEY_CHARS: Final = 64  # no address text is longer; longer keys are answered, not kept
# The Location is one shared object per country: an entry costs its key, at most this.
_ENTRY_BYTES: Final = 49 + _MAX_KEY_CHARS


class EmbeddedGeolocator(_Closing):
    """Country-level locations from the ``iptocc`` package (RIR allocation data), offline.

    The default when no database is configured. Registration data says where an address
    block's holder registered it, which is usually, not always, where its users are.
    Lookups are cached per address (``cache_size`` entries, bounded in bytes too).

    >>> EmbeddedGeolocator().locate("77.88.55.88").country
    'RU'
    """

    def __init__(self, *, cache_size: int = _DEFAULT_CACHE_SIZE) -> None:
        self._cache: BoundedCache[str, Location] = BoundedCache(
            cache_size, cache_size * (_ENTRY_BYTES + ENTRY_OVERHEAD), size=_ENTRY_BYTES
        )
        self._memo: dict[str, Location] = {}

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The country of ``ip``; UNKNOWN when unassigned, not public or malformed."""
        if ip is None:
            return UNKNOWN
        location = self._cache.get(ip)
        if location is None:
            location = self._lookup(ip)
            if len(ip) <= _MAX_KEY_CHARS:
                self._cache.set(ip, location)
        return location

    def _lookup(self, ip: str) -> Location:
        address = public_address(ip)
        if address is None:
            return UNKNOWN
        found = iptocc.country_code(address[0])
        code = iso_country(found)[0] if isinstance(found, str) else None
        if code is None:
            return UNKNOWN
        # One shared Location per country: there are few, and they are immutable.
        location = self._memo.get(code)
        if location is None:
            location = self._memo.setdefault(
                code, Location(code, (), "embedded", is_in_european_union=code in _EU)
            )
        return location

    def clear_cache(self) -> None:
        """Forget cached lookups."""
        self._cache.clear()

    def __repr__(self) -> str:
        return "EmbeddedGeolocator()"

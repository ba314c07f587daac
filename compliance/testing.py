"""Helpers for testing code that uses compliance: fixed geolocation, small ``.mmdb`` files.

``build_mmdb`` needs the ``mmdb-writer`` and ``netaddr`` packages (the ``test`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compliance.geo import UNKNOWN, Location

__all__ = ["FixedGeolocator", "build_mmdb"]


class FixedGeolocator:
    """A geolocator with set answers: one location for everyone, or one per IP address.

    Records every call in ``calls`` as ``(ip, trusted)``.

    >>> from compliance.geo import Location
    >>> geo = FixedGeolocator({"192.0.2.1": Location.of("UA", "43")})
    >>> geo.locate("192.0.2.1").subdivisions, geo.locate("192.0.2.2").known
    (('UA-43',), False)
    >>> FixedGeolocator(Location.of("RU")).locate(None).country
    'RU'
    """

    def __init__(
        self, answer: Location | Mapping[str, Location], *, default: Location = UNKNOWN
    ) -> None:
        self._answer = answer
        self._default = default
        self.calls: list[tuple[str | None, bool]] = []
        """Every ``(ip, trusted)`` asked about, in order."""
        self.closed = False
        """Whether ``close()`` was called."""

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The set answer for ``ip``."""
        self.calls.append((ip, trusted))
        if isinstance(self._answer, Location):
            return self._answer
        if ip is None:
            return self._default
        return self._answer.get(ip, self._default)

    def close(self) -> None:
        """Note that the geolocator was closed."""
        self.closed = True

    def __repr__(self) -> str:
        return f"FixedGeolocator({self._answer!r})"


def build_mmdb(
    path: str | os.PathLike[str],
    networks: Mapping[str, Mapping[str, Any]],
    *,
    database_type: str = "GeoIP2-City",
    ip_version: int = 6,
) -> Path:
    """Write a MaxMind DB file mapping each network (CIDR or address) to its record.

    Records use MaxMind's layout, e.g. ``{"country": {"iso_code": "UA"}, "subdivisions":
    [{"iso_code": "43"}]}``. IPv4 networks are also reachable in an IPv6 database. Returns
    the path.
    """
    try:
        import netaddr
        from mmdb_writer import MMDBWriter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "build_mmdb needs the mmdb-writer and netaddr packages: pip install 'compliance[test]'"
        ) from exc
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description={"en": f"compliance test database ({database_type})"},
    )
    for network, record in networks.items():
        writer.insert_network(netaddr.IPSet([network]), dict(record))
    target = Path(path)
    writer.to_db_file(os.fspath(target))
    return target

"""Where a reader is: :class:`Location`, and the geolocators that find it.

A geolocator turns a client IP address (and, behind a trusted CDN, request headers) into a
:class:`Location`. Private, loopback, link-local, reserved, documentation and multicast
addresses are never looked up: they say nothing about where a reader is. Nothing here raises
on a malformed address; it is an unknown location. A database that breaks while serving raises
:class:`~compliance.errors.GeoDatabaseError`.

MaxMind and embedded lookups are cached per address in a bounded cache, so a repeat visitor
costs one dict lookup.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from itertools import islice
from types import TracebackType
from typing import Any, Final, Protocol, Self, runtime_checkable

import iptocc
import maxminddb
from maxminddb.errors import InvalidDatabaseError

from compliance.errors import ConfigurationError, GeoDatabaseError

__all__ = [
    "UNKNOWN",
    "Anonymity",
    "ChainGeolocator",
    "EmbeddedGeolocator",
    "Geolocator",
    "HeaderGeolocator",
    "Location",
    "MaxMindGeolocator",
    "open_geolocator",
    "public_address",
]

log = logging.getLogger("compliance.geo")

# EU member states (ISO 3166-1), for sources that do not carry MaxMind's flag themselves.
_EU_MEMBERS: Final = (
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
)
_EU: Final = frozenset(_EU_MEMBERS.split())
# Two-letter values that are not countries: CDN and RIR placeholders for "unknown", Tor,
# anonymous proxies, satellite providers, and the regional EU/AP registrations.
_NOT_COUNTRIES: Final = frozenset({"XX", "ZZ", "T1", "A1", "A2", "O1", "EU", "AP"})


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
        Raises :class:`~compliance.errors.ConfigurationError` on malformed codes.

        >>> Location.of("gb", "eng", "GB-WBK").subdivisions
        ('GB-ENG', 'GB-WBK')
        >>> Location.of(None).known
        False
        """
        if country is None:
            if subdivisions:
                raise ConfigurationError("subdivisions need a country")
            return cls(source=source)
        code = country_code(country)
        if code is None:
            raise ConfigurationError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
        full = []
        for subdivision in subdivisions:
            part = subdivision.upper()
            if part.startswith(f"{code}-"):
                part = part[3:]
            if not _is_subdivision_part(part):
                raise ConfigurationError(
                    f"{subdivision!r} is not an ISO 3166-2 subdivision code of {code}"
                )
            full.append(f"{code}-{part}")
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


def _is_subdivision_part(part: str) -> bool:
    # ISO 3166-2: one to three ASCII letters or digits after "CC-".
    return 0 < len(part) <= 3 and part.isascii() and part.isalnum()


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


# --- addresses --------------------------------------------------------------------------------

_monotonic = time.monotonic
_pton = socket.inet_pton
_ntop = socket.inet_ntop
_AF_INET: Final = socket.AF_INET
_AF_INET6: Final = socket.AF_INET6
_MAPPED: Final = bytes(10) + b"\xff\xff"


def _v4(text: str) -> int:
    return int.from_bytes(_pton(_AF_INET, text), "big")


# IPv4 ranges that are not on the public internet (RFC 6890), sorted and disjoint.
_V4_SPECIAL: Final = sorted(
    (_v4(first), _v4(last))
    for first, last in [
        ("0.0.0.0", "0.255.255.255"),  # "this network", unspecified
        ("10.0.0.0", "10.255.255.255"),  # private
        ("100.64.0.0", "100.127.255.255"),  # carrier-grade NAT
        ("127.0.0.0", "127.255.255.255"),  # loopback
        ("169.254.0.0", "169.254.255.255"),  # link-local
        ("172.16.0.0", "172.31.255.255"),  # private
        ("192.0.0.0", "192.0.0.255"),  # IETF protocol assignments
        ("192.0.2.0", "192.0.2.255"),  # documentation
        ("192.168.0.0", "192.168.255.255"),  # private
        ("198.18.0.0", "198.19.255.255"),  # benchmarking
        ("198.51.100.0", "198.51.100.255"),  # documentation
        ("203.0.113.0", "203.0.113.255"),  # documentation
        ("224.0.0.0", "255.255.255.255"),  # multicast, reserved, broadcast
    ]
)
_V4_FIRST: Final = [first for first, _ in _V4_SPECIAL]
_V4_LAST: Final = [last for _, last in _V4_SPECIAL]


def public_address(ip: str) -> tuple[str, int, int] | None:
    """``(text, version, value)`` for a public unicast address, else None.

    ``text`` is what to look up: IPv4-mapped IPv6 becomes IPv4. None for malformed text and
    for private, loopback, link-local, reserved, documentation and multicast addresses. For
    IPv6 only global unicast (``2000::/3``) counts, less documentation and ``2001::/23``.

    >>> public_address("81.2.69.142"), public_address("::ffff:81.2.69.142")[0]
    (('81.2.69.142', 4, 1359103374), '81.2.69.142')
    >>> [public_address(ip) for ip in ("10.1.2.3", "::1", "fe80::1%eth0", "2001:db8::1", "x")]
    [None, None, None, None, None]
    """
    try:
        if ":" not in ip:
            value = int.from_bytes(_pton(_AF_INET, ip), "big")
            text = ip
        else:
            packed = _pton(_AF_INET6, ip.partition("%")[0] if "%" in ip else ip)
            if packed[:12] != _MAPPED:
                top = int.from_bytes(packed[:4], "big")
                if (
                    top < 0x2000_0000
                    or top >= 0x4000_0000
                    or 0x2001_0000 <= top <= 0x2001_01FF  # IETF protocol assignments, Teredo
                    or top == 0x2001_0DB8  # documentation
                    or 0x3FFF_0000 <= top <= 0x3FFF_0FFF  # documentation (RFC 9637)
                ):
                    return None
                return ip, 6, int.from_bytes(packed, "big")
            value = int.from_bytes(packed[12:], "big")
            text = _ntop(_AF_INET, packed[12:])
    except (OSError, ValueError, TypeError):
        return None
    index = bisect_right(_V4_FIRST, value) - 1
    if index >= 0 and value <= _V4_LAST[index]:
        return None
    return text, 4, value


# Network masks and "/N" suffixes by prefix length, so a CIDR costs two lookups to build.
_MASKS_V4: Final = [(2**32 - 1) ^ (2 ** (32 - n) - 1) for n in range(33)]
_MASKS_V6: Final = [(2**128 - 1) ^ (2 ** (128 - n) - 1) for n in range(129)]
_SLASH: Final = [f"/{n}" for n in range(129)]


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


# --- cache ------------------------------------------------------------------------------------


class _Cache(dict[Any, Location]):
    """A bounded key -> Location map; reads are a plain ``dict.get``, without a lock.

    When full, the oldest eighth of the entries is dropped (insertion order), under a lock.
    That keeps reads lock-free, where an LRU would write on every hit. Adding one entry is a
    single dict assignment, atomic in CPython.
    """

    __slots__ = ("_lock", "maxsize")

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self._lock = threading.Lock()

    def store(self, key: object, location: Location) -> None:
        if len(self) < self.maxsize:
            self[key] = location
        elif self.maxsize > 0:
            with self._lock:
                if len(self) >= self.maxsize:
                    for old in list(islice(self, self.maxsize // 8 + 1)):
                        self.pop(old, None)
                self[key] = location

    def forget(self) -> None:
        with self._lock:
            self.clear()


_DEFAULT_CACHE_SIZE: Final = 32_768


# --- MaxMind ----------------------------------------------------------------------------------

_Signature = tuple[int, int, int, int]
_NOT_ANONYMOUS: Final = Anonymity()


def _signature(path: str) -> _Signature:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _kind(database_type: str) -> str | None:
    if "Anonymous-IP" in database_type:
        return "anonymous"
    if any(word in database_type for word in ("Country", "City", "Enterprise")):
        return "location"
    return None


class _Database:
    """One opened ``.mmdb`` file and the file signature it was opened at."""

    __slots__ = (
        "closed",
        "database_type",
        "get",
        "ip_version",
        "kind",
        "path",
        "reader",
        "signature",
    )

    # Decoding the first records catches a corrupt data section or search tree at open time
    # (MaxMind's broken test files fail here) at a cost that does not grow with the file.
    _PROBE_RECORDS: Final = 64

    def __init__(self, path: str, kind: str | None = None) -> None:
        self.path = path
        try:
            # Signature first: if the file is replaced right after, the next check reloads.
            self.signature: _Signature = _signature(path)
            if os.path.isdir(path):
                raise IsADirectoryError(path)
            # MODE_AUTO: the C extension's memory map when available, else Python's mmap.
            reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
        except FileNotFoundError:
            raise GeoDatabaseError(path, "no such file") from None
        except PermissionError:
            raise GeoDatabaseError(path, "permission denied") from None
        except IsADirectoryError:
            raise GeoDatabaseError(path, "is a directory, not a .mmdb file") from None
        except (InvalidDatabaseError, ValueError) as exc:
            raise GeoDatabaseError(path, f"not a valid MaxMind DB file ({exc})") from None
        except OSError as exc:
            raise GeoDatabaseError(path, f"cannot read ({exc.strerror or exc})") from None
        try:
            metadata = reader.metadata()
            self.database_type: str = metadata.database_type
            self.ip_version: int = metadata.ip_version
            self.kind = _kind(self.database_type)
            if self.kind is None:
                raise GeoDatabaseError(
                    path,
                    f"unsupported database type {self.database_type!r}; expected a GeoIP2 or "
                    "GeoLite2 Country, City, Enterprise or Anonymous-IP database",
                )
            if kind == "location" and self.kind != kind:
                raise GeoDatabaseError(
                    path,
                    f"is a {self.database_type} database, not a location one "
                    "(pass it as anonymous_ip_db)",
                )
            if kind == "anonymous" and self.kind != kind:
                raise GeoDatabaseError(
                    path, f"is a {self.database_type} database, not an Anonymous-IP one"
                )
            for _ in islice(reader, self._PROBE_RECORDS):
                pass
        except InvalidDatabaseError as exc:
            reader.close()
            raise GeoDatabaseError(path, f"corrupt database ({exc})") from None
        except BaseException:
            reader.close()
            raise
        self.reader = reader
        self.get: Callable[[str], tuple[Any, int]] = reader.get_with_prefix_len
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.reader.close()


class _State:
    """What one generation of lookups uses, swapped as a whole on reload."""

    __slots__ = ("anonymous", "cache", "get", "main", "networks", "source", "v6")

    def __init__(self, main: _Database, anonymous: _Database | None, cache_size: int) -> None:
        self.main = main
        self.anonymous = anonymous
        self.get = main.get
        self.v6 = main.ip_version == 6
        self.source = f"maxmind:{main.database_type}"
        self.cache = _Cache(cache_size)
        # Every address of a database network has the same Location: share one object.
        # Anonymous-IP networks differ from the location ones, so not with that database.
        self.networks = _Cache(cache_size if anonymous is None else 0)

    def lookup(self, ip: str) -> Location:
        # Every step here adds to the cost of a first-time lookup: keep it lean (see
        # benchmarks/geo.py). IPv4, most traffic, is checked inline.
        if ":" in ip:
            try:
                packed = _pton(_AF_INET6, ip)
            except (OSError, ValueError):
                packed = b""  # a zone id, or junk: let public_address decide
            top = int.from_bytes(packed[:4], "big")
            if 0x2000_0000 <= top < 0x2001_0000 or 0x2001_0200 <= top < 0x3FFF_0000:
                # Global unicast outside the special blocks: the common case, checked inline.
                if top == 0x2001_0DB8 or not self.v6:
                    return UNKNOWN
                text, version, value = ip, 6, int.from_bytes(packed, "big")
            else:
                address = public_address(ip)
                if address is None or (address[1] == 6 and not self.v6):
                    return UNKNOWN
                text, version, value = address
                packed = value.to_bytes(4 if version == 4 else 16, "big")
        else:
            try:
                packed = _pton(_AF_INET, ip)
            except (OSError, ValueError):
                return UNKNOWN
            value = int.from_bytes(packed, "big")
            index = bisect_right(_V4_FIRST, value) - 1
            if index >= 0 and value <= _V4_LAST[index]:
                return UNKNOWN
            text, version = ip, 4
        try:
            record, prefix = self.get(text)
        except InvalidDatabaseError as exc:
            raise GeoDatabaseError(self.main.path, f"corrupt data for {text} ({exc})") from None
        except ValueError:  # closed under this lookup by close()
            return UNKNOWN
        if record is None:
            return UNKNOWN
        if prefix < 0:  # an IPv4 address under an IPv6 network wider than ::/96
            prefix = 0
        net = value & (_MASKS_V4 if version == 4 else _MASKS_V6)[prefix]
        key = net << 8 | prefix
        location = self.networks.get(key)
        if location is not None:
            return location
        # Read only the few keys needed from the decoded record; odd data (a code that
        # is not a string, a subdivision without one) reads as missing.
        country: Any = record.get("country") if isinstance(record, dict) else None
        code = country.get("iso_code") if isinstance(country, dict) else None
        if isinstance(code, str):
            subs = record.get("subdivisions")
            codes = [
                sub["iso_code"]
                for sub in (subs if isinstance(subs, list) else ())
                if isinstance(sub, dict) and isinstance(sub.get("iso_code"), str)
            ]
            eu = country.get("is_in_european_union") is True
        else:
            code = None
        if code is None:
            location = UNKNOWN
        else:
            if not codes:
                subdivisions: tuple[str, ...] = ()
            elif len(codes) == 1:
                subdivisions = (f"{code}-{codes[0]}",)
            else:
                subdivisions = tuple([f"{code}-{sub}" for sub in codes])
            if version == 4:
                network = _ntop(_AF_INET, net.to_bytes(4, "big")) + _SLASH[prefix]
            else:
                network = _ntop(_AF_INET6, net.to_bytes(16, "big")) + _SLASH[prefix]
            if self.anonymous is None:
                location = _located(code, subdivisions, self.source, network, eu)
            else:
                flags = self._anonymity(text)
                location = _located(
                    code, subdivisions, self.source, network, eu, flags is not _NOT_ANONYMOUS, flags
                )
        self.networks.store(key, location)
        return location

    def _anonymity(self, text: str) -> Anonymity:
        assert self.anonymous is not None
        try:
            record, _ = self.anonymous.get(text)
        except InvalidDatabaseError as exc:
            raise GeoDatabaseError(
                self.anonymous.path, f"corrupt data for {text} ({exc})"
            ) from None
        except ValueError:  # an IPv6 address and an IPv4-only database
            return _NOT_ANONYMOUS
        if not record or not record.get("is_anonymous"):
            return _NOT_ANONYMOUS
        return Anonymity(
            bool(record.get("is_anonymous_vpn")),
            bool(record.get("is_hosting_provider")),
            bool(record.get("is_public_proxy")),
            bool(record.get("is_residential_proxy")),
            bool(record.get("is_tor_exit_node")),
        )


class MaxMindGeolocator(_Closing):
    """Locations from a MaxMind GeoIP2/GeoLite2 Country, City or Enterprise ``.mmdb`` file.

    The database type is read from its metadata. Lookups use ``maxminddb`` directly, through
    the C extension's memory map when it is installed: ``geoip2``'s model classes cost more
    than the lookup itself, and ``geoip2.database.Reader.city()`` refuses Enterprise files.
    ``anonymous_ip_db`` optionally names a GeoIP2 Anonymous-IP database whose flags are added
    to every location found.

    When a file is replaced (geoipupdate renames a new file into place), the next lookup after
    ``check_interval`` seconds notices it by its inode, size and modification time, opens and
    checks the new file, and swaps it in; lookups in flight finish on the old reader, which is
    released when the last of them is done. A replacement that does not open keeps the old
    data serving and is logged once as an error on the ``compliance.geo`` logger. Replace the
    file by renaming: overwriting it in place changes memory-mapped data under running lookups.

    Raises :class:`~compliance.errors.GeoDatabaseError` naming the file when a database is
    missing, unreadable, corrupt or of another type.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        anonymous_ip_db: str | os.PathLike[str] | None = None,
        cache_size: int = _DEFAULT_CACHE_SIZE,
        check_interval: float = 60.0,
    ) -> None:
        if check_interval < 0:
            raise ConfigurationError(f"check_interval must be >= 0, not {check_interval!r}")
        main = _Database(os.fspath(path), "location")
        try:
            anonymous = (
                None
                if anonymous_ip_db is None
                else _Database(os.fspath(anonymous_ip_db), "anonymous")
            )
        except BaseException:
            main.close()
            raise
        self._cache_size = cache_size
        self._check_interval = float(check_interval)
        self._state = _State(main, anonymous, cache_size)
        self._next_check = time.monotonic() + self._check_interval
        self._reload_lock = threading.Lock()
        # Signature of a replacement that failed to open (None: the file was missing), per
        # path, so that a bad file is reported once and not reopened on every check.
        self._failed: dict[str, _Signature | None] = {}
        self._closed = False

    @property
    def path(self) -> str:
        """The location database file."""
        return self._state.main.path

    @property
    def database_type(self) -> str:
        """The location database type from its metadata, e.g. ``"GeoIP2-City"``."""
        return self._state.main.database_type

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The location of ``ip``; UNKNOWN when not found, not public or malformed."""
        if _monotonic() >= self._next_check:
            self._poll()
        if ip is None:
            return UNKNOWN
        state = self._state
        location = state.cache.get(ip)
        if location is None:
            if self._closed:
                raise GeoDatabaseError(state.main.path, "the geolocator is closed")
            location = state.lookup(ip)
            state.cache.store(ip, location)
        return location

    def clear_cache(self) -> None:
        """Forget cached lookups."""
        state = self._state
        state.cache.forget()
        state.networks.forget()

    # --- reload -------------------------------------------------------------------------------

    def _poll(self) -> None:
        # One thread checks the file; the others go on with the data they have.
        if not self._reload_lock.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            if now >= self._next_check and not self._closed:
                self._next_check = now + self._check_interval
                self._refresh(force=False)
        finally:
            self._reload_lock.release()

    def reload(self, *, force: bool = False) -> bool:
        """Check the files now and swap in any that changed (all, with ``force``).

        Returns whether new data is serving. A file that fails to open is logged and the old
        data kept, as on an automatic reload.
        """
        with self._reload_lock:
            if self._closed:
                return False
            self._next_check = time.monotonic() + self._check_interval
            return self._refresh(force=force)

    def _refresh(self, *, force: bool) -> bool:
        state = self._state
        main = self._reopen(state.main, force)
        anonymous = None if state.anonymous is None else self._reopen(state.anonymous, force)
        if main is None and anonymous is None:
            return False
        # Open first, then swap one reference: a lookup sees the old state or the new one,
        # never a mix; the old readers close when the last lookup holding them is done.
        self._state = _State(main or state.main, anonymous or state.anonymous, self._cache_size)
        for db in (main, anonymous):
            if db is not None:
                log.info("reloaded %s (%s)", db.path, db.database_type)
        return True

    def _reopen(self, db: _Database, force: bool) -> _Database | None:
        try:
            signature: _Signature | None = _signature(db.path)
        except OSError as exc:
            signature = None
            reason = f"cannot stat ({exc.strerror or exc})"
        else:
            if signature == db.signature and not force:
                self._failed.pop(db.path, None)
                return None
            reason = ""
        if not force and db.path in self._failed and self._failed[db.path] == signature:
            return None
        if signature is not None:
            try:
                new = _Database(db.path, db.kind)
            except GeoDatabaseError as exc:
                reason = exc.reason
            else:
                self._failed.pop(db.path, None)
                return new
        self._failed[db.path] = signature
        log.error("%s: %s; keeping the database loaded before", db.path, reason)
        return None

    def close(self) -> None:
        """Close the database files; lookups afterwards raise GeoDatabaseError."""
        with self._reload_lock:
            self._closed = True
            state = self._state
            self._state = _State(state.main, state.anonymous, 0)
            state.main.close()
            if state.anonymous is not None:
                state.anonymous.close()

    def __repr__(self) -> str:
        return f"MaxMindGeolocator({self.path!r})"


# --- embedded ---------------------------------------------------------------------------------


class EmbeddedGeolocator(_Closing):
    """Country-level locations from the ``iptocc`` package (RIR allocation data), offline.

    The default when no database is configured. Registration data says where an address
    block was assigned, which is usually, not always, where its users are.

    >>> EmbeddedGeolocator().locate("77.88.55.88").country
    'RU'
    """

    def __init__(self, *, cache_size: int = _DEFAULT_CACHE_SIZE) -> None:
        self._cache = _Cache(cache_size)
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
            self._cache.store(ip, location)
        return location

    def _lookup(self, ip: str) -> Location:
        address = public_address(ip)
        if address is None:
            return UNKNOWN
        found = iptocc.country_code(address[0])
        code = country_code(found) if isinstance(found, str) else None
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
        self._cache.forget()

    def __repr__(self) -> str:
        return "EmbeddedGeolocator()"


# --- CDN headers ------------------------------------------------------------------------------

# provider -> (country header, region header, value format)
_PROVIDERS: Final[dict[str, tuple[str | None, str | None, str]]] = {
    "cloudflare": ("cf-ipcountry", "cf-region-code", "plain"),
    "cloudfront": ("cloudfront-viewer-country", "cloudfront-viewer-country-region", "plain"),
    "akamai": ("x-akamai-edgescape", None, "edgescape"),
    "fastly": (None, None, "list"),
    "google": (None, None, "cldr"),
    "generic": (None, None, "list"),
}
# Header values are short; a longer one is not parsed at all.
_MAX_HEADER_CHARS: Final = 1024


class HeaderGeolocator(_Closing):
    """Locations from the geolocation headers a CDN or load balancer adds to requests.

    Headers are read only when ``trusted`` is true, i.e. the request came through a trusted
    proxy: otherwise the client wrote them. Providers:

    - ``"cloudflare"``: ``CF-IPCountry`` and ``cf-region-code``;
    - ``"cloudfront"``: ``CloudFront-Viewer-Country`` and ``CloudFront-Viewer-Country-Region``;
    - ``"akamai"``: ``X-Akamai-Edgescape`` (``country_code=..,region_code=..``);
    - ``"fastly"``, ``"generic"``: ``header`` holds ``country[,subdivision]`` (``**`` and
      ``NO REGION`` mean unknown), and ``region_header`` optionally the subdivision;
    - ``"google"``: ``header`` holds the CLDR subdivision (``USCA``) or ``country,USCA``.

    ``header`` and ``region_header`` override the provider's header names. ``XX``, ``T1``,
    ``**``, empty and malformed countries are unknown; a malformed subdivision is dropped and
    the country kept. ``via_header`` of an answer lists every header consulted, for ``Vary``.

    >>> geo = HeaderGeolocator("cloudflare")
    >>> geo.locate(None, {"cf-ipcountry": "UA", "cf-region-code": "43"}, trusted=True)
    Location(country='UA', subdivisions=('UA-43',), source='header:cloudflare', ...)
    >>> geo.locate(None, {"cf-ipcountry": "UA"}, trusted=False).known
    False
    """

    def __init__(
        self, provider: str, header: str | None = None, *, region_header: str | None = None
    ) -> None:
        if provider not in _PROVIDERS:
            raise ConfigurationError(
                f"unknown geolocation header provider {provider!r}; "
                f"choose from {', '.join(_PROVIDERS)}"
            )
        default_header, default_region, self._format = _PROVIDERS[provider]
        country_header = (header or default_header or "").strip().lower()
        if not country_header:
            raise ConfigurationError(f"the {provider!r} provider needs header=NAME")
        self.provider = provider
        self.header: str = country_header
        """The header holding the country."""
        self.region_header: str | None = (region_header or default_region or "").lower() or None
        """The header holding the subdivision part, if any."""
        self._source = f"header:{provider}"
        self._via = ", ".join(self.headers)

    @property
    def headers(self) -> tuple[str, ...]:
        """Every request header this geolocator reads (what a response must ``Vary`` on)."""
        return (self.header,) if self.region_header is None else (self.header, self.region_header)

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The location the headers give, when ``trusted``; else UNKNOWN."""
        if not trusted or not headers:
            return UNKNOWN
        value = headers.get(self.header)
        if not value or len(value) > _MAX_HEADER_CHARS:
            return UNKNOWN
        if self._format == "edgescape":
            fields = _edgescape(value)
            country, region = fields.get("country_code", ""), fields.get("region_code")
        else:
            country, _, region = value.partition(",")
            if self._format == "cldr" and len(country.strip()) > 2:
                country, region = country.strip()[:2], country.strip()
        code = country_code(country)
        if code is None:
            return UNKNOWN
        if self.region_header is not None:
            region = headers.get(self.region_header) or region
        part = _region_part(code, region, cldr=self._format == "cldr")
        return Location(
            code,
            () if part is None else (f"{code}-{part}",),
            self._source,
            None,
            self._via,
            code in _EU,
        )

    def __repr__(self) -> str:
        return f"HeaderGeolocator({self.provider!r}, {self.header!r})"


def _edgescape(value: str) -> dict[str, str]:
    fields = {}
    for item in value.split(","):
        key, sep, val = item.partition("=")
        if sep:
            fields[key.strip().lower()] = val.strip()
    return fields


def _region_part(code: str, region: str | None, *, cldr: bool) -> str | None:
    if not region or len(region) > _MAX_HEADER_CHARS:
        return None
    part = region.strip().upper()
    if part.startswith(f"{code}-"):
        part = part[3:]
    elif cldr and part.startswith(code) and len(part) > 2:
        part = part[2:]
    return part if _is_subdivision_part(part) else None


# --- composition ------------------------------------------------------------------------------


class ChainGeolocator(_Closing):
    """Asks each geolocator in turn; the first known answer wins, else UNKNOWN.

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

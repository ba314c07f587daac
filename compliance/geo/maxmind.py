"""Locations from MaxMind GeoIP2/GeoLite2 ``.mmdb`` files, reloaded when the file is replaced.

Lookups go straight to the ``maxminddb`` reader (``MODE_AUTO``: its C extension's memory map
when the wheel has it), reading only the few keys a :class:`Location` needs; ``geoip2``'s
model classes would cost more than the lookup itself.

A memory-mapped file that is truncated or rewritten in place under a running process takes it
down with ``SIGBUS`` at its next lookup: the pages it maps are gone. So, by default, the file is
first copied into a private, already-unlinked temporary file, and that copy is mapped: nothing
outside the process can shrink it. A changed original is noticed by its signature
(:mod:`compliance.watch`), copied, checked and swapped in only when it is a complete, valid
database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import threading
import time
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from compliance.cache import ENTRY_OVERHEAD, BoundedCache
from compliance.errors import ConfigurationError, GeoDatabaseError
from compliance.watch import FileWatcher, Signature

from .addresses import _AF_INET, _AF_INET6, _V4_FIRST, _V4_LAST, _ntop, _pton, public_address
from .location import (
    UNKNOWN,
    Anonymity,
    Location,
    _Closing,
    _located,
    _warn_once,
    is_iso_subdivision,
    iso_country,
    subdivision_code,
    with_parents,
)

if TYPE_CHECKING:
    import geoip2.database

__all__ = ["MaxMindGeolocator"]

log = logging.getLogger("compliance.geo")

_monotonic = time.monotonic

_DEFAULT_CACHE_SIZE: Final = 32_768
# No address text is longer (an IPv6 address with a zone id); longer keys are not cached.
_MAX_KEY_CHARS: Final = 64
# Bytes per cached address beyond the entry overhead: the key text at its longest (network
# Locations are shared by every address in the network and counted in the network cache).
_IP_ENTRY_BYTES: Final = 49 + _MAX_KEY_CHARS
# A Location with its network text and subdivision tuple.
_NETWORK_ENTRY_BYTES: Final = 480

# Network masks and "/N" suffixes by prefix length, so a CIDR costs two lookups to build.
_MASKS_V4: Final = [(2**32 - 1) ^ (2 ** (32 - n) - 1) for n in range(33)]
_MASKS_V6: Final = [(2**128 - 1) ^ (2 ** (128 - n) - 1) for n in range(129)]
_SLASH: Final = [f"/{n}" for n in range(129)]

_NOT_ANONYMOUS: Final = Anonymity()
_COPY_CHUNK: Final = 1 << 20

_REPLACE_BY_RENAME: Final = (
    "update it by writing a new file and renaming it into place (as geoipupdate does)"
)


def _kind(database_type: str) -> str | None:
    if "Anonymous-IP" in database_type:
        return "anonymous"
    if any(word in database_type for word in ("Country", "City", "Enterprise")):
        return "location"
    return None


def _subdivisions(db: _Database) -> bool:
    """Whether a location database's type holds subdivisions (City and Enterprise do)."""
    return "City" in db.database_type or "Enterprise" in db.database_type


class _Changing(Exception):
    """The file changed while it was being copied: try again at the next check."""


def _copy_exactly(source: int, target: int, size: int) -> int:
    """Copy up to ``size`` bytes from fd ``source`` to fd ``target``; the bytes copied."""
    copied = 0
    sendfile = getattr(os, "sendfile", None)
    while copied < size:
        count = min(_COPY_CHUNK * 16, size - copied)
        if sendfile is not None:
            try:
                sent = sendfile(target, source, copied, count)
            except OSError:
                sendfile = None
                continue
        else:
            chunk = os.pread(source, min(count, _COPY_CHUNK), copied)
            sent = os.write(target, chunk) if chunk else 0
        if sent == 0:
            break  # end of file: it shrank under us
        copied += sent
    return copied


def _no_copy(path: str, exc: OSError) -> GeoDatabaseError:
    return GeoDatabaseError(
        path,
        f"cannot make its private copy in {tempfile.gettempdir()} ({exc.strerror or exc}); "
        "set TMPDIR to a folder with room for it, or pass private_copy=False",
    )


def _open_private_copy(path: str, source: int, st: os.stat_result) -> maxminddb.Reader:
    """A reader on a private copy of the open file ``source`` (already unlinked)."""
    try:
        fd, copy = tempfile.mkstemp(prefix=".compliance-geo-", suffix=".mmdb")
    except OSError as exc:
        raise _no_copy(path, exc) from None
    try:
        try:
            copied = _copy_exactly(source, fd, st.st_size)
        except OSError as exc:  # no space left, most likely
            raise _no_copy(path, exc) from None
        finally:
            os.close(fd)
        after = os.fstat(source)
        if (
            copied != st.st_size
            or after.st_size != st.st_size
            or after.st_mtime_ns != st.st_mtime_ns
        ):
            raise _Changing(f"changed while being read ({st.st_size} bytes, then {after.st_size})")
        # Mapped by path, then unlinked: the mapping keeps the data; no name is left to it.
        try:
            return maxminddb.open_database(copy, maxminddb.MODE_AUTO)
        except (InvalidDatabaseError, ValueError) as exc:
            # maxminddb names the file it opened: the copy, gone by the time anyone reads
            # the log. Name the operator's file instead.
            raise InvalidDatabaseError(str(exc).replace(copy, path)) from None
    finally:
        # Where a mapped file cannot be unlinked (Windows), it stays in the temporary folder.
        with contextlib.suppress(OSError):
            os.unlink(copy)


class _Database:
    """One opened ``.mmdb`` file and the signature of the file it was read from."""

    __slots__ = (
        "closed",
        "database_type",
        "get",
        "ip_version",
        "kind",
        "owned",
        "path",
        "reader",
        "signature",
    )

    # Decoding the first records catches a corrupt data section or search tree at open time
    # (MaxMind's broken test files fail here) at a cost that does not grow with the file.
    _PROBE_RECORDS: Final = 64

    def __init__(self, path: str, kind: str | None = None, *, private_copy: bool = True) -> None:
        self.path = path
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                # The signature of the very file read, taken before reading it: if the path
                # is replaced meanwhile, the next check sees a new signature and reloads.
                self.signature: Signature = (
                    st.st_dev,
                    st.st_ino,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                )
                if not stat.S_ISREG(st.st_mode):
                    raise GeoDatabaseError(path, "is not a regular file")
                if st.st_size == 0:
                    raise GeoDatabaseError(
                        path, "is empty (0 bytes): truncated, or being rewritten in place"
                    )
                if private_copy:
                    reader = _open_private_copy(path, handle.fileno(), st)
                else:
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
        self.owned = True
        self._adopt(reader, kind)

    @classmethod
    def of_reader(cls, reader: maxminddb.Reader, label: str, kind: str) -> _Database:
        """A database read through a reader someone else opened (and closes)."""
        db: _Database = object.__new__(cls)
        db.path = label
        db.signature = (0, 0, 0, 0, 0)
        db.owned = False
        db._adopt(reader, kind)
        return db

    def _adopt(self, reader: maxminddb.Reader, kind: str | None) -> None:
        path = self.path
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
        except (InvalidDatabaseError, UnicodeDecodeError) as exc:
            # A string that is not UTF-8 is corrupt data too (maxminddb raises it as is).
            if self.owned:
                reader.close()
            raise GeoDatabaseError(path, f"corrupt database ({_cause(exc)})") from None
        except BaseException:
            if self.owned:
                reader.close()
            raise
        self.reader = reader
        self.get: Callable[[str], tuple[Any, int]] = reader.get_with_prefix_len
        self.closed = False

    def close(self) -> None:
        self.closed = True
        if self.owned:
            self.reader.close()

    def failed(self, address: str, exc: ValueError) -> GeoDatabaseError | None:
        """What a ``ValueError`` from a lookup of ``address`` means: None when the reader
        was closed under the lookup (by :meth:`close`, or by the owner of a reader passed
        in), else corrupt data. ``UnicodeDecodeError``, a string in a record that is not
        UTF-8, is a ``ValueError`` too: it must not pass for a closed reader."""
        if not isinstance(exc, UnicodeDecodeError) and (
            self.closed or getattr(self.reader, "closed", False) is True
        ):
            return None
        return _corrupt(self.path, address, exc)


def _cause(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"a string that is not UTF-8: {exc}"
    return str(exc)


def _corrupt(path: str, address: str, exc: Exception) -> GeoDatabaseError:
    # The reason names the cause, never the client: logs are keyed and rate-limited by it.
    detail = _cause(exc).replace(address, "<address>")
    return GeoDatabaseError(path, f"corrupt data ({detail})", address=address)


class _State:
    """What one generation of lookups uses, swapped as a whole on reload."""

    __slots__ = ("anonymous", "anonymous_v6", "cache", "get", "main", "networks", "source", "v6")

    def __init__(self, main: _Database, anonymous: _Database | None, cache_size: int) -> None:
        self.main = main
        self.anonymous = anonymous
        self.anonymous_v6 = anonymous is not None and anonymous.ip_version == 6
        self.get = main.get
        self.v6 = main.ip_version == 6
        self.source = f"maxmind:{main.database_type}"
        # Fixed sizes per entry: the cheapest insertion, on the first-time lookup path.
        self.cache: BoundedCache[str, Location] = BoundedCache(
            cache_size, cache_size * (_IP_ENTRY_BYTES + ENTRY_OVERHEAD), size=_IP_ENTRY_BYTES
        )
        # Every address of a database network has the same Location: share one object.
        # Anonymous-IP networks differ from the location ones, so not with that database.
        networks = cache_size if anonymous is None else 0
        self.networks: BoundedCache[int, Location] = BoundedCache(
            networks,
            networks * (_NETWORK_ENTRY_BYTES + ENTRY_OVERHEAD),
            size=_NETWORK_ENTRY_BYTES,
        )

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
                if address is None or (address[1] == 6 and not self.v6) or "%" in ip:
                    # A zone id: not an address the reader takes (nor a client's, whose
                    # addresses are normalized), unknown as for the embedded geolocator.
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
            raise _corrupt(self.main.path, text, exc) from None
        except ValueError as exc:
            failure = self.main.failed(text, exc)
            if failure is None:  # closed under this lookup by close()
                return UNKNOWN
            raise failure from None
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
            # Checked as a CDN's is: a database in MaxMind's format from another source (or
            # converted) may write "ZZ" or "A1" for "unknown", or a code in lower case.
            raw = code
            code, odd = iso_country(raw)
            if odd:
                _warn_once(self.source, "country", raw, "is not an ISO 3166-1 country code")
        else:
            code = None
        if code is not None:
            subs = record.get("subdivisions")
            codes = [
                sub["iso_code"]
                for sub in (subs if isinstance(subs, list) else ())
                if isinstance(sub, dict) and isinstance(sub.get("iso_code"), str)
            ]
            eu = country.get("is_in_european_union") is True
        if code is None:
            location = UNKNOWN
        else:
            if not codes:
                subdivisions: tuple[str, ...] = ()
            else:
                subdivisions = _iso_subdivisions(code, codes, self.source)
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
        return self.networks.set(key, location)

    def _anonymity(self, text: str) -> Anonymity:
        assert self.anonymous is not None
        if not self.anonymous_v6 and ":" in text:
            return _NOT_ANONYMOUS  # an IPv6 address and an IPv4-only database
        try:
            record, _ = self.anonymous.get(text)
        except InvalidDatabaseError as exc:
            raise _corrupt(self.anonymous.path, text, exc) from None
        except ValueError as exc:
            failure = self.anonymous.failed(text, exc)
            if failure is None:  # closed under this lookup by close()
                return _NOT_ANONYMOUS
            raise failure from None
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
    to every location found. Lookups are cached per address (``cache_size`` entries, bounded
    in bytes too), so a repeat visitor costs a dict hit.

    With ``private_copy`` (the default) each file is copied into a private temporary file
    (in ``$TMPDIR``; unlinked at once) and the copy is memory-mapped, so that a database
    truncated or rewritten in place cannot crash the process with ``SIGBUS``. The cost is one
    copy of the file per process, in the temporary directory (memory when that is a tmpfs;
    processes forked after opening share one until the file changes).
    ``private_copy=False`` maps the file itself: only safe when the file is only ever
    replaced by renaming.

    When a file changes (geoipupdate renames a new file into place), the next lookup after
    ``check_interval`` seconds notices it by its device, inode, size, modification time and
    status-change time (so a file whose permissions are fixed is read again),
    opens and checks the new file, and swaps it in; lookups in flight finish on the old
    reader, which is released when the last of them is done. A replacement that does not
    open (corrupt, truncated, half-written, of another type, deleted) keeps the old data
    serving and is logged once per version of the file as an error on the ``compliance.geo``
    logger, saying what was wrong.

    ``path`` may also be an open ``geoip2.database.Reader``: lookups then go through the
    ``maxminddb`` reader inside it; the file is neither copied nor watched (its owner
    reopens it), and closing the geolocator leaves the reader open.

    Raises :class:`~compliance.errors.GeoDatabaseError` naming the file when a database is
    missing, unreadable, corrupt or of another type.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | geoip2.database.Reader,
        *,
        anonymous_ip_db: str | os.PathLike[str] | None = None,
        cache_size: int = _DEFAULT_CACHE_SIZE,
        check_interval: float = 60.0,
        private_copy: bool = True,
    ) -> None:
        if isinstance(check_interval, bool) or not isinstance(check_interval, int | float):
            raise ConfigurationError(f"check_interval must be a number, not {check_interval!r}")
        if check_interval < 0:
            raise ConfigurationError(f"check_interval must be >= 0, not {check_interval!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError(
                f"cache_size must be a non-negative integer, not {cache_size!r}"
            )
        self._private_copy = bool(private_copy)
        if isinstance(path, str | os.PathLike):
            main = self._open(os.fspath(path), "location")
        else:
            inner = getattr(path, "_db_reader", None)
            if inner is None or not hasattr(inner, "get_with_prefix_len"):
                raise ConfigurationError(
                    "MaxMindGeolocator needs a .mmdb path or an open geoip2.database.Reader, "
                    f"not {path!r}"
                )
            main = _Database.of_reader(inner, repr(path), "location")
        try:
            anonymous = (
                None
                if anonymous_ip_db is None
                else self._open(os.fspath(anonymous_ip_db), "anonymous")
            )
        except BaseException:
            main.close()
            raise
        self._cache_size = cache_size
        self._check_interval = float(check_interval)
        self._state = _State(main, anonymous, cache_size)
        self._reload_lock = threading.RLock()
        _geolocators.add(self)  # for the lock's reset in a forked child
        self._reloads: Counter[str] = Counter()
        self._closed = False
        paths = [db.path for db in (main, anonymous) if db is not None and db.owned]
        # On demand, from the lookup path: no thread, nothing to restart after a fork.
        self._watcher = FileWatcher(
            paths,
            self._files_changed,
            interval=self._check_interval or 1.0,
            name=f"compliance-geo:{main.path}",
        )
        for db in (main, anonymous):
            if db is not None and db.owned:
                self._watcher.accept(db.path, db.signature)
        self._next_check = _monotonic() + self._check_interval

    def _open(self, path: str, kind: str) -> _Database:
        try:
            return _Database(path, kind, private_copy=self._private_copy)
        except _Changing as exc:
            raise GeoDatabaseError(path, str(exc)) from None

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
            if len(ip) <= _MAX_KEY_CHARS:
                state.cache.set(ip, location)
        return location

    def clear_cache(self) -> None:
        """Forget cached lookups."""
        state = self._state
        state.cache.clear()
        state.networks.clear()

    # --- reload -------------------------------------------------------------------------------

    def _poll(self) -> None:
        # One thread checks the files (the watcher's lock); the others go on with their data.
        now = _monotonic()
        if now < self._next_check or self._closed:
            return
        self._next_check = now + self._check_interval
        self._watcher.check(blocking=False)

    def reload(self, *, force: bool = False) -> bool:
        """Check the files now and swap in any that changed (all, with ``force``).

        Returns whether new data is serving. A file that fails to open is logged and the old
        data kept, as on an automatic reload. Safe in a signal handler: landing while a
        lookup in the same thread checks the files, it returns False at once and that check
        looks once more.
        """
        if self._closed:
            return False
        self._next_check = _monotonic() + self._check_interval
        if force:
            state = self._state
            return self._refresh(
                [db.path for db in (state.main, state.anonymous) if db is not None and db.owned]
            )
        # Not under the reload lock: the watcher's lock comes first (see _files_changed).
        before = self._state
        self._watcher.check()
        return self._state is not before

    def _files_changed(self, changes: Mapping[str, Signature | None]) -> None:
        self._refresh(list(changes))

    def _refresh(self, paths: list[str]) -> bool:
        with self._reload_lock:
            if self._closed:
                return False
            state = self._state
            main = self._reopen(state.main) if state.main.path in paths else None
            anonymous = (
                self._reopen(state.anonymous)
                if state.anonymous is not None and state.anonymous.path in paths
                else None
            )
            for db, new in ((state.main, main), (state.anonymous, anonymous)):
                if db is not None and db.path in paths:
                    self._reloads["failed" if new is None else "ok"] += 1
            if main is None and anonymous is None:
                return False
            # Open first, then swap one reference: a lookup sees the old state or the new one,
            # never a mix; the old readers close when the last lookup holding them is done.
            self._state = _State(main or state.main, anonymous or state.anonymous, self._cache_size)
            for db in (main, anonymous):
                if db is not None:
                    log.info("reloaded %s (%s)", db.path, db.database_type)
            if main is not None and _subdivisions(state.main) and not _subdivisions(main):
                # Served, as asked; but subdivision rules stop matching: say so.
                log.warning(
                    "%s: now a %s database, was %s: subdivisions are no longer known",
                    main.path,
                    main.database_type,
                    state.main.database_type,
                )
            return True

    def reload_counts(self) -> dict[str, int]:
        """Database reloads so far, by result: ``ok`` (a changed file swapped in) and
        ``failed`` (a replacement that did not open, the old data kept serving); one per
        file per attempt. :meth:`Engine.reload_counts
        <compliance.engine.Engine.reload_counts>` adds them to the rule reloads, for the
        middleware's counters."""
        with self._reload_lock:
            return dict(self._reloads)

    def _reopen(self, db: _Database) -> _Database | None:
        try:
            new = _Database(db.path, db.kind, private_copy=self._private_copy)
        except _Changing as exc:
            # Being written in place right now: look again at the next check.
            self._watcher.forget(db.path)
            log.error(
                "%s: %s; keeping the database loaded before (%s)",
                db.path,
                exc,
                _REPLACE_BY_RENAME,
            )
            return None
        except GeoDatabaseError as exc:
            advice = (
                f" ({_REPLACE_BY_RENAME})"
                if "empty" in exc.reason or "corrupt" in exc.reason or "valid" in exc.reason
                else ""
            )
            log.error("%s: %s; keeping the database loaded before%s", db.path, exc.reason, advice)
            return None
        # What was actually read is the baseline for the next change.
        self._watcher.accept(db.path, new.signature)
        return new

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


def _iso_subdivisions(country: str, codes: list[str], source: str) -> tuple[str, ...]:
    """A record's subdivisions as full ISO 3166-2 codes. One that ISO does not assign (a
    database behind a change of codes: China's numeric ``22`` for Jilin, ``CN-JL`` since
    2017) is left out, logged once: as with CDN headers, the subdivision is then unknown,
    which ``unknown_subdivision: apply`` counts in, where a code no rule can name would
    have kept the reader out of every subdivision rule of the country."""
    full = [name for name in (subdivision_code(country, sub) for sub in codes) if name]
    kept = [name for name in full if is_iso_subdivision(name)]
    if len(kept) < len(full):
        for name in full:
            if name not in kept:
                _warn_once(source, "subdivision", name[:40], "is not an ISO 3166-2 code")
    if len(kept) == 1:  # (the usual case of a Country-level region: nothing holds it)
        return with_parents(kept[0])
    # Each with those that hold it, largest first, once: a record that names the most
    # specific one alone places the reader in its parents too, as one listing both does.
    return tuple(dict.fromkeys(code for name in kept for code in with_parents(name)))


_geolocators: weakref.WeakSet[MaxMindGeolocator] = weakref.WeakSet()


def _reset_in_child() -> None:
    # A lock held by a thread the forked child does not have (reloading a database) would
    # never be released there: every reload would wait for ever.
    for geolocator in list(_geolocators):
        geolocator._reload_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)

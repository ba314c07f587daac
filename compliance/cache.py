"""One bounded cache type, bounded by entries *and* by bytes.

Every cache the library keys by what a request carries is a :class:`BoundedCache`:
geolocation answers per address, client addresses per forwarding header, parsed addresses,
decisions, ``Accept-Language`` parses and negotiated languages, header and URL values. Such
a cache must hold a bounded amount of memory however many distinct or however large the
values a client sends. (``functools`` caches remain only on functions of configuration, whose
arguments no request chooses: rule files, templates, locales, watches; a test lists them.)

- A hit is one dictionary lookup: :attr:`BoundedCache.get` *is* the underlying mapping's
  ``get``, with no lock and no bookkeeping, so the hot path (a repeat reader) stays cheap.
- :meth:`BoundedCache.set` takes a lock, accounts for the entry's size and, when a bound
  would be crossed, evicts the oldest entries (insertion order) in a batch of at least an
  eighth, until both bounds hold. That costs O(1) per insertion, amortized, whatever the keys:
  no sequence of keys can make it quadratic. Hits do not reorder entries (that would be a
  write on every read): the order is first-in, first-out.
- An entry larger than the byte bound by itself is not stored at all.

Sizes are estimates: by default :func:`approximate_size` of the key plus the value, plus a
fixed per-entry overhead. Pass ``size=`` when values hold much more than they appear to
(a parsed structure, a list of objects), or an ``int`` when every entry costs about the same
(the cheapest: no call per insertion).

>>> cache: BoundedCache[str, int] = BoundedCache(max_entries=2, max_bytes=10_000)
>>> cache.set("a", 1), cache.set("b", 2), cache.set("c", 3)
(1, 2, 3)
>>> cache.get("a"), cache.get("c"), len(cache)
(None, 3, 2)
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from itertools import islice
from typing import Final, Generic, Protocol, TypeVar, cast, overload

__all__ = [
    "ENTRY_OVERHEAD",
    "BoundedCache",
    "BoundedPairCache",
    "Remembered",
    "approximate_size",
    "remembered",
]

K = TypeVar("K", bound=Hashable)
J = TypeVar("J", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
A = TypeVar("A", bound="str | None")
A_contra = TypeVar("A_contra", bound="str | None", contravariant=True)

#: Bytes counted per entry on top of the key and value: the mapping's slot and the share of
#: its table (measured on CPython 3.11/3.12, rounded up).
ENTRY_OVERHEAD: Final = 112

_getsizeof = sys.getsizeof
_CONTAINERS: Final = (tuple, frozenset, list, set)


def _shallow(obj: object) -> int:
    # The common key parts by type, without sys.getsizeof (a method lookup and call, several
    # times a dict lookup): str and bytes by length (non-ASCII text at 4 bytes a character,
    # never less than it takes), ints, shared singletons. Anything else: getsizeof.
    if isinstance(obj, str):
        return 49 + len(obj) if obj.isascii() else 76 + 4 * len(obj)
    if obj is None or obj.__class__ is int or obj.__class__ is bool:
        return 36  # an int below 2**90 (ids, days, counts); None and bools are shared
    if isinstance(obj, bytes):
        return 33 + len(obj)
    return _getsizeof(obj)


def approximate_size(obj: object) -> int:
    """A cheap estimate of the memory ``obj`` holds, in bytes.

    The object itself, plus, for a tuple, frozenset, list or set, each item's own size (one
    level deep: enough for the keys caches use, such as tuples of strings). Strings and
    bytes count their full length (non-ASCII text at four bytes a character). Hot caches
    with keys of a known shape do better with their own ``size=`` function, or an ``int``.

    >>> approximate_size("x" * 1000) > 1000
    True
    >>> approximate_size(("x" * 1000, "y" * 1000)) > 2000
    True
    >>> approximate_size("ж" * 1000) >= sys.getsizeof("ж" * 1000)
    True
    """
    if not isinstance(obj, _CONTAINERS):
        return _shallow(obj)
    size = 56 + 8 * len(obj) if obj.__class__ is tuple else _getsizeof(obj)
    for item in obj:  # inlined _shallow: this loop is the cost of a default-sized insertion
        if item.__class__ is str:
            size += 49 + len(item) if item.isascii() else 76 + 4 * len(item)
        elif item is None or item.__class__ is int:
            size += 36
        else:
            size += _shallow(item)
    return size


def _default_size(key: object, value: object) -> int:
    return approximate_size(key) + approximate_size(value)


class BoundedCache(Generic[K, V]):
    """A thread-safe map bounded by ``max_entries`` and ``max_bytes``.

    ``size(key, value)`` estimates one entry's bytes (default: :func:`approximate_size` of
    both), or ``size`` is that estimate for every entry; :data:`ENTRY_OVERHEAD` is added.
    ``max_entries=0`` (or ``max_bytes=0``) makes a cache that stores nothing, for callers
    that switch caching off.

    Reads are lock-free; writes take a lock. A value read may be evicted a moment later by
    another thread's write: callers must treat the cache as a hint, never as the only copy.

    >>> cache: BoundedCache[str, str] = BoundedCache(max_entries=100, max_bytes=2_000)
    >>> _ = cache.set("big", "x" * 5_000)  # larger than the whole cache: not kept
    >>> "big" in cache
    False
    """

    __slots__ = (
        "_data",
        "_fixed",
        "_limit",
        "_lock",
        "_nbytes",
        "_size",
        "_sizes",
        "evictions",
        "get",
        "max_bytes",
        "max_entries",
    )

    get: Callable[[K], V | None]
    """``get(key)``: the cached value or None. Lock-free: the mapping's own ``get``."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        *,
        size: Callable[[K, V], int] | int | None = None,
    ) -> None:
        for name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {bound!r}")
        self.max_entries: int = max_entries
        """At most this many entries are kept."""
        self.max_bytes: int = max_bytes
        """At most this many bytes (estimated) are kept."""
        self.evictions: int = 0
        """Entries evicted to keep the bounds, since creation (for metrics and tests)."""
        self._data: dict[K, V] = {}
        self._size: Callable[[K, V], int] = _default_size
        self._sizes: dict[K, int] = {}
        self._nbytes = 0
        self._fixed: int | None = None
        self._limit = max_entries
        if isinstance(size, int) and not isinstance(size, bool):
            if size < 0:
                raise ValueError(f"size must be a non-negative integer, not {size!r}")
            # Every entry costs the same: the byte bound is an entry bound, and an insertion
            # needs no size call, no per-key record and, while there is room, no lock.
            self._fixed = size + ENTRY_OVERHEAD
            self._limit = min(max_entries, max_bytes // self._fixed)
        elif callable(size):
            self._size = size
        elif size is not None:
            raise ValueError(f"size must be a function or an integer, not {size!r}")
        self._lock = threading.Lock()
        self.get = self._data.get

    def set(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (replacing any), evicting the oldest entries as
        needed; returns ``value`` so a caller can ``return cache.set(key, computed)``."""
        data = self._data
        if self._fixed is not None:
            if len(data) < self._limit and key not in data:
                # One atomic dict assignment. Threads racing here can overshoot the bound by
                # at most one entry each; the next insertion at the bound evicts.
                data[key] = value
                return value
            return self._set_fixed(key, value)
        cost = self._size(key, value) + ENTRY_OVERHEAD
        sizes = self._sizes
        with self._lock:
            old = sizes.pop(key, None)
            if old is not None:  # a replaced entry counts as new: it goes to the end
                self._nbytes -= old
                del data[key]
            if len(data) >= self.max_entries or self._nbytes + cost > self.max_bytes:
                if cost > self.max_bytes or self.max_entries == 0:
                    return value  # could never fit: not kept
                self._evict_sized(cost)
            data[key] = value
            sizes[key] = cost
            self._nbytes += cost
        return value

    def _set_fixed(self, key: K, value: V) -> V:
        data = self._data
        with self._lock:
            data.pop(key, None)
            if self._limit == 0:
                return value
            if len(data) >= self._limit:
                # The oldest eighth at least, in one pass from the front: a dict's iteration
                # skips the slots freed by earlier deletions until it is resized, so evicting
                # one entry per insertion could cost a scan each time; a batch costs O(1)
                # per insertion, amortized, whatever the keys. islice runs in C, so inserts
                # from other threads cannot change the dict under it (with the GIL).
                batch = max(len(data) - self._limit + 1, len(data) // 8, 1)
                try:
                    victims = list(islice(data, batch))
                except RuntimeError:  # free-threaded build: an insert raced the iteration
                    victims = list(islice(data.copy(), batch))
                for old in victims:
                    data.pop(old, None)
                self.evictions += len(victims)
            data[key] = value
        return value

    def _evict_sized(self, cost: int) -> None:
        # Under the lock; every insertion of a sized cache holds it, so iterating is safe.
        # Batches of an eighth at least, as in _set_fixed, then until the bytes fit.
        data = self._data
        sizes = self._sizes
        batch = max(len(data) - self.max_entries + 1, len(data) // 8, 1)
        room = self.max_bytes - cost
        remaining = self._nbytes
        victims: list[K] = []
        for key in data:
            if len(victims) >= batch and remaining <= room:
                break
            victims.append(key)
            remaining -= sizes[key]
        for key in victims:
            del data[key]
            del sizes[key]
        self._nbytes = remaining
        self.evictions += len(victims)

    @overload
    def pop(self, key: K) -> V | None: ...
    @overload
    def pop(self, key: K, default: D) -> V | D: ...
    def pop(self, key: K, default: object = None) -> object:
        """Remove ``key`` and return its value (``default`` when absent)."""
        with self._lock:
            if key not in self._data:
                return default
            if self._fixed is None:
                self._nbytes -= self._sizes.pop(key)
            return self._data.pop(key)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._nbytes = 0

    @property
    def nbytes(self) -> int:
        """Estimated bytes held now."""
        fixed = self._fixed
        return self._nbytes if fixed is None else fixed * len(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        """The keys, oldest first (a snapshot: safe while other threads write)."""
        with self._lock:
            keys = list(self._data)
        return iter(keys)

    def __repr__(self) -> str:
        return (
            f"BoundedCache({len(self)}/{self.max_entries} entries, "
            f"{self.nbytes}/{self.max_bytes} bytes)"
        )


class BoundedPairCache(Generic[K, J, V]):
    """A thread-safe map of ``(key, subkey)`` pairs, looked up in two steps, bounded by
    ``max_entries`` keys and ``max_bytes``.

    ``get(key)`` is the underlying mapping's ``get`` and hands back the plain ``dict`` of
    that key's subkeys (or None): a caller on a hot path looks ``inner.get(subkey)`` up in
    it, with no tuple built and hashed for the pair, no Python frame and no lock; the
    hottest path subscripts :attr:`mapping` (``mapping[key][subkey]``, KeyError when
    absent). Callers only read those dicts.

    The keys live in a :class:`BoundedCache` whose entry size is ``key_size(key)`` plus
    ``pair_size`` per subkey (plus :data:`ENTRY_OVERHEAD`), accounted again at every
    :meth:`set`: the bytes bound everything, the pairs included. One key holds at most an
    eighth of the bytes; when it is full, its oldest subkeys go, an eighth at a time. When a
    bound would be crossed, whole keys go, oldest (by last insertion) first.

    >>> cache: BoundedPairCache[str, int, str] = BoundedPairCache(
    ...     max_entries=8, max_bytes=100_000, key_size=len, pair_size=100)
    >>> cache.set("/page", 1, "a"), cache.set("/page", 2, "b")
    ('a', 'b')
    >>> inner = cache.get("/page")
    >>> inner is not None and inner.get(2), cache.get("/other"), len(cache)
    ('b', None, 2)
    """

    __slots__ = (
        "_keys",
        "_lock",
        "evictions",
        "get",
        "mapping",
        "max_bytes",
        "max_entries",
        "pair_limit",
    )

    get: Callable[[K], dict[J, V] | None]
    """``get(key)``: the dict of ``key``'s subkeys, or None. Lock-free: read it, never
    change it."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        *,
        key_size: Callable[[K], int],
        pair_size: int,
    ) -> None:
        if isinstance(pair_size, bool) or not isinstance(pair_size, int) or pair_size <= 0:
            raise ValueError(f"pair_size must be a positive integer, not {pair_size!r}")
        self._keys: BoundedCache[K, dict[J, V]] = BoundedCache(
            max_entries, max_bytes, size=lambda key, inner: key_size(key) + pair_size * len(inner)
        )
        self.max_entries: int = max_entries
        """At most this many keys are kept."""
        self.max_bytes: int = max_bytes
        """At most this many bytes (estimated) are kept, the pairs included."""
        self.pair_limit: int = max(1, max_bytes // 8 // pair_size)
        """At most this many subkeys per key."""
        self.evictions: int = 0
        """Pairs evicted from a full key, since creation (whole keys: ``key_evictions``)."""
        self._lock = threading.Lock()
        self.get = self._keys.get
        self.mapping: Mapping[K, Mapping[J, V]] = self._keys._data
        """The keys and their subkeys' dicts, to read: ``mapping[key][subkey]`` costs two
        subscripts (KeyError when absent). Never change it."""

    def set(self, key: K, subkey: J, value: V) -> V:
        """Store ``value`` under ``(key, subkey)``, evicting as needed; returns ``value``."""
        with self._lock:
            inner = self._keys.get(key)
            if inner is None:
                inner = {}
            elif subkey not in inner and len(inner) >= self.pair_limit:
                # The oldest eighth of this key's pairs, at least one: O(1) per insertion,
                # amortized. Under this lock, the only writer of the inner dicts; readers
                # see each deletion whole.
                victims = list(islice(inner, max(len(inner) // 8, 1)))
                for old in victims:
                    del inner[old]
                self.evictions += len(victims)
            inner[subkey] = value
            # Set again: accounts the key's size with its new pair, and makes it the newest.
            self._keys.set(key, inner)
        return value

    @property
    def key_evictions(self) -> int:
        """Keys evicted with all their pairs to keep the bounds, since creation."""
        return self._keys.evictions

    def clear(self) -> None:
        """Forget every pair."""
        with self._lock:
            self._keys.clear()

    @property
    def nbytes(self) -> int:
        """Estimated bytes held now."""
        return self._keys.nbytes

    def __len__(self) -> int:
        """The number of pairs (counted: O(keys))."""
        with self._lock:
            return sum(len(self._keys.get(key) or ()) for key in self._keys)

    def __repr__(self) -> str:
        return (
            f"BoundedPairCache({len(self)} pairs under {len(self._keys)}/{self.max_entries} "
            f"keys, {self.nbytes}/{self.max_bytes} bytes)"
        )


class Remembered(Protocol[A_contra, R_co]):
    """A pure function of one string whose results :func:`remembered` keeps."""

    def __call__(self, value: A_contra, /) -> R_co: ...

    @property
    def known(self) -> Callable[[A_contra], R_co | None]:
        """``known(value)``: the kept result, or None, without computing it (the cache's own
        ``get``: a hot caller may try it inline before calling)."""
        ...


@overload
def remembered(
    max_entries: int, max_bytes: int, *, size: int | None = None, longest: int = 256
) -> Callable[[Callable[[A], R]], Remembered[A, R]]: ...


@overload
def remembered(
    max_entries: int, max_bytes: int, *, size: Callable[[str, R], int], longest: int = 256
) -> Callable[[Callable[[A], R]], Remembered[A, R]]: ...


def remembered(
    max_entries: int,
    max_bytes: int,
    *,
    size: Callable[[str, R], int] | int | None = None,
    longest: int = 256,
) -> Callable[[Callable[[A], R]], Remembered[A, R]]:
    """Decorator: keep the results of a pure function of one string in a
    :class:`BoundedCache`, for arguments of at most ``longest`` characters; longer ones
    (rare, and a client's to choose) are computed every time and never kept, and so are
    ``None`` and ``""``, and results that are ``None``. For the header and URL values a site
    sends again and again. ``size``: as for :class:`BoundedCache`.

    >>> @remembered(16, 4096, longest=8)
    ... def shout(text: str) -> str:
    ...     return text.upper()
    >>> shout("abc"), shout.known("abc"), shout("x" * 9), shout.known("x" * 9)
    ('ABC', 'ABC', 'XXXXXXXXX', None)
    """

    def decorate(function: Callable[[A], R]) -> Remembered[A, R]:
        cache: BoundedCache[str, R] = BoundedCache(max_entries, max_bytes, size=size)
        get, keep = cache.get, cache.set

        def remember(value: A, /) -> R:
            text: str | None = value
            found = get(text) if text else None
            if found is not None:
                return found
            result = function(value)
            # None is never kept: it would read as a miss anyway, and hold a place a
            # real answer could have.
            if result is not None and text and len(text) <= longest:
                keep(text, result)
            return result

        remember.__name__ = function.__name__
        remember.__qualname__ = function.__qualname__
        remember.__module__ = function.__module__
        remember.__doc__ = function.__doc__
        remember.__wrapped__ = function  # type: ignore[attr-defined]
        remember.known = get  # type: ignore[attr-defined]
        return cast(Remembered[A, R], remember)

    return decorate

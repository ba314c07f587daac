"""One bounded cache type, bounded by entries *and* by bytes.

Every cache in the library is a :class:`BoundedCache`: geolocation answers per address,
client addresses per forwarding header, decisions, negotiated languages. Keys often come from
the request (an address, a header value), so a cache must hold a bounded amount of memory
however many distinct or however large the values a client sends.

- A hit is one dictionary lookup: :attr:`BoundedCache.get` *is* the underlying mapping's
  ``get``, with no lock and no bookkeeping, so the hot path (a repeat reader) stays cheap.
- :meth:`BoundedCache.set` takes a lock, accounts for the entry's size and evicts the oldest
  entries (insertion order) until both bounds hold. Eviction is O(1) per evicted entry (an
  ``OrderedDict`` pops its first item without scanning), so no sequence of keys can make it
  quadratic. Hits do not reorder entries (that would be a write on every read): the order is
  first-in, first-out.
- An entry larger than the byte bound by itself is not stored at all.

Sizes are estimates: by default :func:`approximate_size` of the key plus the value, plus a
fixed per-entry overhead. Pass ``size=`` when values hold much more than they appear to
(a parsed structure, a list of objects).

>>> cache: BoundedCache[str, int] = BoundedCache(max_entries=2, max_bytes=10_000)
>>> cache.set("a", 1), cache.set("b", 2), cache.set("c", 3)
(1, 2, 3)
>>> cache.get("a"), cache.get("c"), len(cache)
(None, 3, 2)
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Final, Generic, TypeVar, overload

__all__ = ["ENTRY_OVERHEAD", "BoundedCache", "approximate_size"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

#: Bytes counted per entry on top of the key and value: the mapping's slot and its
#: ordering node (measured on CPython 3.11/3.12, rounded up).
ENTRY_OVERHEAD: Final = 112

_getsizeof = sys.getsizeof
_CONTAINERS: Final = (tuple, frozenset, list, set)


def approximate_size(obj: object) -> int:
    """A cheap estimate of the memory ``obj`` holds, in bytes.

    The object itself, plus, for a tuple, frozenset, list or set, each item's own size (one
    level deep: enough for the keys caches use, such as tuples of strings). Strings and
    bytes count their full length.

    >>> approximate_size("x" * 1000) > 1000
    True
    >>> approximate_size(("x" * 1000, "y" * 1000)) > 2000
    True
    """
    size = _getsizeof(obj)
    if isinstance(obj, _CONTAINERS):
        for item in obj:
            size += _getsizeof(item)
    return size


def _default_size(key: object, value: object) -> int:
    return approximate_size(key) + approximate_size(value)


class BoundedCache(Generic[K, V]):
    """A thread-safe map bounded by ``max_entries`` and ``max_bytes``.

    ``size(key, value)`` estimates one entry's bytes (default: :func:`approximate_size` of
    both); :data:`ENTRY_OVERHEAD` is added to it. ``max_entries=0`` (or ``max_bytes=0``)
    makes a cache that stores nothing, for callers that switch caching off.

    Reads are lock-free; writes take a lock. A value read may be evicted a moment later by
    another thread's write: callers must treat the cache as a hint, never as the only copy.

    >>> cache: BoundedCache[str, str] = BoundedCache(max_entries=100, max_bytes=2_000)
    >>> _ = cache.set("big", "x" * 5_000)  # larger than the whole cache: not kept
    >>> "big" in cache
    False
    """

    __slots__ = (
        "_data",
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
        size: Callable[[K, V], int] | None = None,
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
        self._data: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}
        self._nbytes = 0
        self._size: Callable[[K, V], int] = size or _default_size
        self._lock = threading.Lock()
        self.get = self._data.get

    def set(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (replacing any), evicting the oldest entries as
        needed; returns ``value`` so a caller can ``return cache.set(key, computed)``."""
        if self.max_entries == 0:
            return value
        cost = self._size(key, value) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            self.pop(key)
            return value
        data = self._data
        sizes = self._sizes
        with self._lock:
            old = sizes.get(key)
            if old is not None:
                self._nbytes -= old
                data.move_to_end(key)
            data[key] = value
            sizes[key] = cost
            self._nbytes += cost
            if len(data) > self.max_entries or self._nbytes > self.max_bytes:
                self._evict()
        return value

    def _evict(self) -> None:
        # Under the lock. popitem(last=False) is O(1): no scan over earlier deletions.
        data = self._data
        sizes = self._sizes
        while len(data) > self.max_entries or self._nbytes > self.max_bytes:
            key, _ = data.popitem(last=False)
            self._nbytes -= sizes.pop(key)
            self.evictions += 1

    @overload
    def pop(self, key: K) -> V | None: ...
    @overload
    def pop(self, key: K, default: D) -> V | D: ...
    def pop(self, key: K, default: object = None) -> object:
        """Remove ``key`` and return its value (``default`` when absent)."""
        with self._lock:
            if key not in self._sizes:
                return default
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
        return self._nbytes

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
            f"{self._nbytes}/{self.max_bytes} bytes)"
        )

"""The one bounded cache type: bounds by entries and bytes, eviction order, thread safety."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import pytest

from compliance.cache import ENTRY_OVERHEAD, BoundedCache, BoundedPairCache, approximate_size


def test_hit_returns_the_stored_object_and_miss_returns_none() -> None:
    cache: BoundedCache[str, object] = BoundedCache(max_entries=10, max_bytes=100_000)
    value = object()
    assert cache.set("k", value) is value
    assert cache.get("k") is value
    assert cache.get("other") is None
    assert "k" in cache
    assert len(cache) == 1


def test_the_hit_path_is_the_mappings_own_get() -> None:
    # A hit must cost a dict lookup: no Python frame, no lock between caller and mapping.
    cache: BoundedCache[str, int] = BoundedCache(max_entries=10, max_bytes=100_000)
    assert type(cache.get).__name__ == "builtin_function_or_method"


def test_entry_bound_evicts_oldest_first() -> None:
    cache: BoundedCache[int, int] = BoundedCache(max_entries=3, max_bytes=1_000_000)
    for key in range(5):
        cache.set(key, key)
    assert list(cache) == [2, 3, 4]
    assert cache.evictions == 2  # a batch is an eighth, at least one


def test_hits_do_not_reorder_but_replacing_does() -> None:
    cache: BoundedCache[str, int] = BoundedCache(max_entries=2, max_bytes=1_000_000)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1
    cache.set("c", 3)  # "a" is oldest by insertion although it was just read
    assert list(cache) == ["b", "c"]
    cache.set("b", 20)  # a replaced entry counts as new
    cache.set("d", 4)
    assert list(cache) == ["b", "d"]
    assert cache.get("b") == 20


def test_byte_bound_holds_against_large_distinct_keys() -> None:
    # The Accept-Language attack in small: distinct 64 KiB keys, a 1 MiB budget.
    cache: BoundedCache[str, str] = BoundedCache(max_entries=100_000, max_bytes=1 << 20)
    for n in range(200):
        cache.set(f"{n:05d}" + "x" * 65_536, "de")
        assert cache.nbytes <= cache.max_bytes
    assert 0 < len(cache) <= 16
    assert cache.nbytes == sum(
        approximate_size(key) + approximate_size("de") + ENTRY_OVERHEAD for key in cache
    )


def test_an_entry_larger_than_the_budget_is_not_kept_and_drops_an_older_copy() -> None:
    cache: BoundedCache[str, str] = BoundedCache(max_entries=10, max_bytes=4_096)
    cache.set("k", "small")
    assert cache.set("k", "x" * 10_000) == "x" * 10_000
    assert "k" not in cache
    assert cache.nbytes == 0


def test_custom_size_function_is_used() -> None:
    cache: BoundedCache[str, list[int]] = BoundedCache(
        max_entries=100, max_bytes=10 * (1_000 + ENTRY_OVERHEAD), size=lambda k, v: 1_000 * len(v)
    )
    for n in range(25):
        cache.set(str(n), [n])
    assert len(cache) == 10
    assert cache.nbytes == 10 * (1_000 + ENTRY_OVERHEAD)
    cache.set("big", [1, 2, 3])
    assert cache.nbytes <= cache.max_bytes
    assert cache.get("big") == [1, 2, 3]


def test_zero_bounds_store_nothing() -> None:
    for entries, size in ((0, 1_000), (10, 0)):
        cache: BoundedCache[str, int] = BoundedCache(max_entries=entries, max_bytes=size)
        assert cache.set("k", 1) == 1
        assert cache.get("k") is None
        assert len(cache) == 0


@pytest.mark.parametrize(
    ("entries", "size"),
    [
        pytest.param(-1, 10, id="negative-entries"),
        pytest.param(10, -1, id="negative-bytes"),
        pytest.param(True, 10, id="bool-entries"),
        pytest.param(10, 1.5, id="float-bytes"),
    ],
)
def test_bad_bounds_are_refused(entries: int, size: int) -> None:
    with pytest.raises(ValueError, match="must be a non-negative integer"):
        BoundedCache(max_entries=entries, max_bytes=size)


def test_pop_and_clear_keep_the_byte_count_exact() -> None:
    cache: BoundedCache[str, str] = BoundedCache(max_entries=10, max_bytes=100_000)
    cache.set("a", "1")
    cache.set("b", "2")
    before = cache.nbytes
    assert cache.pop("a") == "1"
    assert cache.pop("a", "gone") == "gone"
    assert cache.nbytes < before
    cache.clear()
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_approximate_size_counts_one_level_of_containers() -> None:
    text = "x" * 10_000
    assert approximate_size(text) >= 10_000
    assert approximate_size((text, text)) >= 20_000
    assert approximate_size(frozenset({text})) >= 10_000
    assert approximate_size(7) >= sys.getsizeof(7)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("Accept-Language: de", id="ascii"),
        pytest.param("ж" * 300, id="cyrillic"),
        pytest.param("🙂" * 300, id="astral"),
        pytest.param("é" + "x" * 300, id="latin-1"),
        pytest.param(b"\x00" * 500, id="bytes"),
        pytest.param(2**89, id="big-int"),
        pytest.param(("ж" * 50, "x" * 50, 2**62, None, b"y" * 9), id="tuple"),
        pytest.param(frozenset({"de", "en-GB", "ru"}), id="frozenset"),
    ],
)
def test_approximate_size_never_undercounts_what_keys_hold(value: object) -> None:
    items = value if isinstance(value, tuple | frozenset) else ()
    real = sys.getsizeof(value) + sum(sys.getsizeof(item) for item in items)
    assert approximate_size(value) >= real


def _race(step: Callable[[int, int], None], threads: int = 8, rounds: int = 3_000) -> None:
    """Run ``step(seed, n)`` for ``rounds`` values of n in each of ``threads`` threads started
    together; re-raise the first error any of them met."""
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(seed: int) -> None:
        try:
            start.wait()
            for n in range(rounds):
                step(seed, n)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors


def test_concurrent_writers_and_readers_keep_the_bounds_and_the_accounting() -> None:
    cache: BoundedCache[int, str] = BoundedCache(max_entries=64, max_bytes=40_000)

    def step(seed: int, n: int) -> None:
        key = (n * 7 + seed) % 200
        if cache.get(key) is None:
            cache.set(key, "v" * (key % 50))
        if n % 97 == 0:
            cache.pop(key)

    _race(step)
    assert len(cache) <= 64
    assert cache.nbytes <= 40_000
    expected = sum(
        approximate_size(key) + approximate_size(cache.get(key)) + ENTRY_OVERHEAD for key in cache
    )
    assert cache.nbytes == expected


def test_eviction_drops_the_oldest_in_batches() -> None:
    # A batch of at least an eighth per eviction: amortized O(1) per insertion.
    cache: BoundedCache[int, int] = BoundedCache(max_entries=1_000, max_bytes=1 << 30)
    for key in range(50_000):
        cache.set(key, key)
        assert len(cache) <= 1_000
    assert cache.evictions + len(cache) == 50_000
    assert len(cache) > 1_000 - 1_000 // 8 - 1
    keys = list(cache)
    assert keys == list(range(50_000 - len(keys), 50_000))  # the newest survive, in order


def test_a_fixed_size_per_entry() -> None:
    cache: BoundedCache[str, int] = BoundedCache(
        max_entries=1_000, max_bytes=10 * (100 + ENTRY_OVERHEAD), size=100
    )
    for n in range(25):
        cache.set(str(n), n)
        assert cache.nbytes == len(cache) * (100 + ENTRY_OVERHEAD) <= cache.max_bytes
    assert 0 < len(cache) <= 10
    cache.set("24", 7)  # replacing does not count twice
    assert cache.nbytes == len(cache) * (100 + ENTRY_OVERHEAD)
    assert cache.pop("24") == 7
    assert cache.nbytes == len(cache) * (100 + ENTRY_OVERHEAD)
    with pytest.raises(ValueError, match="size"):
        BoundedCache(max_entries=1, max_bytes=1, size=-1)


# -- pairs, looked up in two steps ------------------------------------------------------------


def _pairs(max_entries: int = 1_000, max_bytes: int = 1 << 20) -> BoundedPairCache[str, int, int]:
    return BoundedPairCache(max_entries, max_bytes, key_size=len, pair_size=100)


def _expected_bytes(cache: BoundedPairCache[str, int, int]) -> int:
    total = 0
    for key in cache._keys:
        inner = cache.get(key) or {}
        total += len(key) + 100 * len(inner) + ENTRY_OVERHEAD
    return total


def test_pairs_are_found_in_two_lookups_of_plain_mappings() -> None:
    cache = _pairs()
    assert cache.set("/a", 1, 10) == 10
    cache.set("/a", 2, 20)
    cache.set("/b", 1, 30)
    cache.set("/a", 1, 11)  # replaced
    inner = cache.get("/a")
    assert type(cache.get).__name__ == "builtin_function_or_method"
    assert type(inner) is dict
    assert inner == {1: 11, 2: 20}
    assert cache.get("/b") == {1: 30}
    assert cache.get("/c") is None
    assert len(cache) == 3
    assert cache.nbytes == _expected_bytes(cache)
    cache.clear()
    assert (len(cache), cache.nbytes, cache.get("/a")) == (0, 0, None)


def test_pairs_of_one_key_are_bounded_and_evicted_oldest_first() -> None:
    # One key may hold an eighth of the bytes: 80 pairs of 100 bytes in 64,000 bytes.
    cache = _pairs(max_bytes=64_000)
    assert cache.pair_limit == 80
    for subkey in range(1_000):
        cache.set("/popular", subkey, subkey)
        inner = cache.get("/popular")
        assert inner is not None
        assert subkey in inner
        assert len(inner) <= 80
        assert cache.nbytes == _expected_bytes(cache) <= cache.max_bytes
    inner = cache.get("/popular")
    assert inner is not None
    assert list(inner) == list(range(1_000 - len(inner), 1_000))  # the newest survive
    assert cache.evictions + len(inner) == 1_000


def test_many_keys_are_bounded_by_entries_and_bytes() -> None:
    cache = _pairs(max_entries=50, max_bytes=30_000)
    for n in range(2_000):
        cache.set(f"/{n % 300}" + "x" * (n % 40), n % 7, n)
        assert cache.nbytes == _expected_bytes(cache) <= 30_000
        assert len(list(cache._keys)) <= 50
    assert cache.key_evictions > 0
    # A key set again is the newest: it survives a flood of others.
    cache.set("/kept", 0, 0)
    for n in range(40):
        cache.set("/kept", n, n)
        cache.set(f"/flood{n}", 0, n)
    assert cache.get("/kept") is not None


def test_concurrent_pair_writers_and_readers_keep_the_bounds_and_the_accounting() -> None:
    cache = _pairs(max_entries=16, max_bytes=20_000)

    def step(seed: int, n: int) -> None:
        key, subkey = f"/{(n * 7 + seed) % 40}", (n * 13 + seed) % 60
        inner = cache.get(key)
        if inner is None or inner.get(subkey) is None:
            cache.set(key, subkey, n)

    _race(step)
    assert len(list(cache._keys)) <= 16
    assert cache.nbytes == _expected_bytes(cache) <= 20_000


def test_bad_pair_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="pair_size"):
        BoundedPairCache(1, 1, key_size=len, pair_size=0)


def test_remembered_keeps_short_arguments_within_its_bounds() -> None:
    from compliance.cache import remembered

    calls: list[str] = []

    @remembered(8, 64 * 1024, size=100, longest=16)
    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert upper("abc") == upper("abc") == "ABC"
    assert calls == ["abc"]  # the second call was a hit
    assert upper.known("abc") == "ABC"
    assert upper.known("abd") is None
    long = "x" * 17
    assert upper(long) == upper(long) == long.upper()
    assert calls == ["abc", long, long]
    assert upper.known(long) is None
    for i in range(1000):  # a flood of distinct values stays within the entry bound
        upper(f"v{i}")
    assert sum(upper.known(f"v{i}") is not None for i in range(1000)) <= 8
    assert upper.__name__ == "upper"
    assert "upper" in upper.__qualname__


def test_remembered_keeps_no_answer_of_none() -> None:
    from compliance.cache import remembered

    calls: list[str] = []

    @remembered(8, 64 * 1024, size=100)
    def address(text: str) -> str | None:
        calls.append(text)
        return text if text[:1].isdigit() else None

    assert address("77.88.55.88") == "77.88.55.88"
    # Garbage (forwarding hops a reader wrote) used to be kept as None, pushing the real
    # addresses out of the memo; and a None kept is never a hit, so it bought nothing.
    for i in range(100):
        assert address(f"garbage-{i}") is None
    assert address.known("77.88.55.88") == "77.88.55.88"
    assert address("garbage-0") is None
    assert calls.count("garbage-0") == 2  # computed again, as a miss always was
    assert calls.count("77.88.55.88") == 1


def test_remembered_takes_a_size_function_and_keeps_the_byte_bound() -> None:
    from compliance.cache import remembered

    @remembered(1000, 10_000, size=lambda key, value: len(key) + len(value))
    def double(text: str) -> str:
        return text * 2

    for i in range(200):
        double(f"{i:03d}" * 30)  # 90 characters in, 180 out: 382 bytes with the overhead
    kept = sum(double.known(f"{i:03d}" * 30) is not None for i in range(200))
    assert 0 < kept <= 10_000 // (90 + 180 + 112)


def test_a_flood_of_distinct_accept_language_headers_stays_within_bytes() -> None:
    """Accept-Language is the reader's to write: its parses are kept by bytes, not only by
    count (each header here is about 1,000 characters)."""
    from compliance.locales import _parse, parse_accept_language

    headers = [
        f"de;q=0.{i % 9 + 1}," + ",".join(f"x{i}-{k:04d}" for k in range(110)) for i in range(3000)
    ]
    for header in headers:
        parse_accept_language(header)
    kept = [h[:1024] for h in headers if _parse.known(h[:1024]) is not None]
    assert kept, "nothing kept"
    assert len(kept) * (len(kept[0]) + 112) <= 1 << 20

"""``compliance._cmmdb``: the libmaxminddb reader gives what maxminddb gives, and never crashes.

Every answer is checked against ``maxminddb.Reader.get_with_prefix_len`` on MaxMind's test
databases and on built ones; broken, garbage and randomly corrupted files may only raise
``ValueError`` or ``OSError``.
"""

from __future__ import annotations

import gc
import ipaddress
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.testing import build_mmdb

_cmmdb = pytest.importorskip("compliance._cmmdb")

Answer = tuple[int, str | None, bool, tuple[str, ...]] | None

# MaxMind's Country, City and Enterprise test databases (see test_the_list_is_complete).
LOCATION_DATABASES = [
    "GeoIP2-City-Test.mmdb",
    "GeoIP2-Country-Test.mmdb",
    "GeoIP2-Enterprise-Test.mmdb",
    "GeoIP2-Precision-Enterprise-Test.mmdb",
    "GeoLite2-City-Test.mmdb",
    "GeoLite2-Country-Test.mmdb",
]
BROKEN_DATABASES = [
    "GeoIP2-City-Test-Broken-Double-Format.mmdb",
    "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
    "MaxMind-DB-test-broken-search-tree-24.mmdb",
]


def packed(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


def expected(reader: Any, ip: str) -> Answer:
    """What lookup() must answer, derived from maxminddb's full record by the same rules."""
    record, prefix_len = reader.get_with_prefix_len(ip)
    if record is None:
        return None
    country = record.get("country") if isinstance(record, dict) else None
    code = country.get("iso_code") if isinstance(country, dict) else None
    eu = country.get("is_in_european_union") if isinstance(country, dict) else None
    found = record.get("subdivisions") if isinstance(record, dict) else None
    subdivisions = ()
    if isinstance(found, list):
        subdivisions = tuple(
            entry["iso_code"]
            for entry in found
            if isinstance(entry, dict) and isinstance(entry.get("iso_code"), str)
        )
    return (
        prefix_len,
        code if isinstance(code, str) else None,
        isinstance(eu, bool) and eu,
        subdivisions,
    )


def probes(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> list[str]:
    """The first and last address of each network, and the addresses just outside it."""
    found: dict[str, None] = {}
    for network in networks:
        address = ipaddress.IPv6Address if network.version == 6 else ipaddress.IPv4Address
        top = 2**network.max_prefixlen - 1
        first, last = int(network.network_address), int(network.broadcast_address)
        for value in (first - 1, first, last, last + 1):
            if 0 <= value <= top:
                found[str(address(value))] = None
    return list(found)


def readers(path: Path) -> list[Any]:
    """maxminddb readers of path: MODE_AUTO (the C extension, when installed) and pure Python."""
    return [
        maxminddb.open_database(str(path)),
        maxminddb.open_database(str(path), maxminddb.MODE_MMAP),
    ]


def check_equivalent(path: Path, ips: Iterable[str]) -> list[Answer]:
    """Look every address up both ways; fail with every mismatch. Returns lookup()'s answers."""
    references = readers(path)
    answers: list[Answer] = []
    mismatches = []
    try:
        with _cmmdb.Reader(str(path)) as reader:
            for ip in ips:
                want = [expected(ref, ip) for ref in references]
                got = reader.lookup(packed(ip))
                answers.append(got)
                if any(got != each for each in want):
                    mismatches.append((ip, got, want))
    finally:
        for ref in references:
            ref.close()
    assert not mismatches, mismatches[:10]
    return answers


def networks_of(path: Path) -> list[Any]:
    with maxminddb.open_database(str(path)) as reader:
        return [network for network, _ in reader]


# --- a minimal MaxMind DB encoder, for shapes mmdb-writer cannot produce ----------------------


def _control(kind: int, size: int) -> bytes:
    first, extended = (kind << 5, b"") if kind <= 7 else (0, bytes([kind - 7]))
    if size < 29:
        return bytes([first | size]) + extended
    if size < 285:
        return bytes([first | 29]) + extended + bytes([size - 29])
    return bytes([first | 30]) + extended + (size - 285).to_bytes(2, "big")


def _string(raw: bytes | str) -> bytes:
    data = raw.encode() if isinstance(raw, str) else raw
    return _control(2, len(data)) + data


def _uint(kind: int, value: int, width: int) -> bytes:
    return _control(kind, width) + value.to_bytes(width, "big")


def _map(entries: Mapping[str, bytes]) -> bytes:
    return _control(7, len(entries)) + b"".join(_string(k) + v for k, v in entries.items())


def crafted_mmdb(
    path: Path, record: bytes, *, metadata_first: Mapping[str, bytes] | None = None
) -> Path:
    """An IPv4 database whose 0.0.0.0/1 holds ``record`` (encoded bytes); 128.0.0.0/1 empty.
    ``metadata_first`` are extra metadata entries, before the required ones."""
    node_count = 1
    tree = (node_count + 16).to_bytes(3, "big") + node_count.to_bytes(3, "big")
    metadata = _map(
        {
            **(metadata_first or {}),
            "node_count": _uint(6, node_count, 1),
            "record_size": _uint(5, 24, 1),
            "ip_version": _uint(5, 4, 1),
            "database_type": _string("Crafted"),
            "languages": _control(11, 1) + _string("en"),
            "binary_format_major_version": _uint(5, 2, 1),
            "binary_format_minor_version": _uint(5, 0, 0),
            "build_epoch": _uint(9, 1, 1),
            "description": _map({"en": _string("crafted")}),
        }
    )
    path.write_bytes(tree + bytes(16) + record + b"\xab\xcd\xefMaxMind.com" + metadata)
    return path


def _arrays(depth: int) -> bytes:
    """Arrays nested ``depth`` deep (one element each), around an empty one."""
    return _control(11, 1) * depth + _control(11, 0)


def _nested(depth: int) -> bytes:
    """A record whose first key holds arrays nested ``depth`` deep, before the country: with
    the record itself, ``depth + 1`` levels."""
    return _map({"a": _arrays(depth), "country": _map({"iso_code": _string("UA")})})


# --- built databases ---------------------------------------------------------------------------


def _city(code: str, *subdivisions: str, eu: bool | None = None) -> dict[str, Any]:
    names = {"en": f"Name {code}", "de": f"Name {code}", "ru": "Имя"}
    country: dict[str, Any] = {"geoname_id": 6000, "iso_code": code, "names": names}
    if eu is not None:
        country["is_in_european_union"] = eu
    record: dict[str, Any] = {
        "city": {"geoname_id": 7000, "names": names},
        "continent": {"code": "EU", "names": names},
        "country": country,
        "location": {"latitude": 50.5, "longitude": 30.25, "accuracy_radius": 20},
    }
    if subdivisions:
        record["subdivisions"] = [{"iso_code": s, "names": names} for s in subdivisions]
    return record


# Booleans come first: mmdb-writer's value cache confuses True with an earlier integer 1.
ODD_RECORDS: dict[str, dict[str, Any]] = {
    "1.0.0.0/24": _city("UA", eu=True),
    "1.0.1.0/24": _city("DE", "BY", eu=False),
    "1.0.2.0/24": _city("GB", "ENG", "WBK"),
    "1.0.3.0/28": {"continent": {"code": "EU"}},  # no country
    "1.0.3.16/28": {"country": {"names": {"en": "No code"}}, "subdivisions": [{"iso_code": "X"}]},
    "1.0.4.0/23": {"country": {"iso_code": 42, "is_in_european_union": 7}},
    "1.0.6.0/24": {"country": {"iso_code": ["UA"], "is_in_european_union": "yes"}},
    "1.0.7.0/24": {"country": "UA", "subdivisions": {"iso_code": "X"}},
    "1.0.8.0/24": {
        "country": {"iso_code": "FR"},
        "subdivisions": [
            {"iso_code": "A"},
            {"names": {"en": "no code"}},
            {"iso_code": 5},
            "not a map",
            ["B"],
            {"iso_code": "C"},
        ],
    },
    "1.0.9.0/24": {"country": {"iso_code": "ÜÖ"}, "subdivisions": []},
    "1.0.10.0/31": {"subdivisions": [{"iso_code": "43"}]},  # subdivisions without a country
    "2.0.0.0/8": _city("IT", "62", "RM", eu=True),
}
ODD_V6: dict[str, dict[str, Any]] = {
    "2a02:6b8::/32": _city("RU", "MOW"),
    "2001:4860::/33": _city("US"),
    "2001:4860:8000::/33": {"country": {"iso_code": "CA"}, "subdivisions": [{"iso_code": "ON"}]},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Self-built databases: IPv4-only, and IPv6 with an IPv4 subtree."""
    root = tmp_path_factory.mktemp("cmmdb")
    return {
        "v4": build_mmdb(root / "v4.mmdb", ODD_RECORDS, ip_version=4),
        "v6": build_mmdb(root / "v6.mmdb", {**ODD_RECORDS, **ODD_V6}, ip_version=6),
        "country": build_mmdb(
            root / "country.mmdb",
            {"81.2.69.0/24": {"country": {"iso_code": "GB"}}},
            database_type="GeoIP2-Country",
        ),
    }


# --- 1. equivalence ----------------------------------------------------------------------------


def test_the_list_is_complete(geoip_test_data: Path) -> None:
    found = set()
    for path in geoip_test_data.glob("*.mmdb"):
        if path.name in BROKEN_DATABASES:
            continue
        with maxminddb.open_database(str(path)) as reader:
            kind = reader.metadata().database_type
        if any(word in kind for word in ("Country", "City", "Enterprise")):
            found.add(path.name)
    assert found == set(LOCATION_DATABASES)


@pytest.mark.parametrize("name", LOCATION_DATABASES)
def test_equivalent_on_maxmind_test_databases(geoip_test_data: Path, name: str) -> None:
    path = geoip_test_data / name
    networks = networks_of(path)
    ips = probes(networks)
    answers = check_equivalent(path, ips)
    assert len(ips) >= 2 * len(networks) > 0
    assert any(answer is None for answer in answers)  # neighbours outside the database
    assert any(answer is not None and answer[1] for answer in answers)


@pytest.mark.parametrize("kind", ["v4", "v6", "country"])
def test_equivalent_on_built_databases(built: dict[str, Path], kind: str) -> None:
    path = built[kind]
    extra = ["1.1.1.1", "8.8.8.8", "255.255.255.255", "0.0.0.0"]
    if kind == "v6":
        extra += ["::1.0.0.1", "::ffff:1.0.0.1", "2a02:6b8::1", "2001:db8::1", "::", "ffff::"]
    answers = check_equivalent(path, probes(networks_of(path)) + extra)
    assert None in answers


def test_the_rules_on_odd_records(built: dict[str, Path]) -> None:
    """Pins the choices: only strings count as codes, only booleans as the EU flag, and
    subdivisions without a string iso_code (or that are not maps) are skipped."""
    with _cmmdb.Reader(str(built["v6"])) as reader:

        def look(ip: str) -> Answer:
            return reader.lookup(packed(ip))

        assert look("1.0.0.1") == (24, "UA", True, ())
        assert look("1.0.1.1") == (24, "DE", False, ("BY",))
        assert look("1.0.2.1") == (24, "GB", False, ("ENG", "WBK"))
        assert look("1.0.3.1") == (28, None, False, ())
        assert look("1.0.3.17") == (28, None, False, ("X",))
        assert look("1.0.4.1") == (23, None, False, ())  # iso_code 42, EU flag 7
        assert look("1.0.6.1") == (24, None, False, ())  # iso_code a list, EU flag a string
        assert look("1.0.7.1") == (24, None, False, ())  # country a string, subdivisions a map
        assert look("1.0.8.1") == (24, "FR", False, ("A", "C"))
        assert look("1.0.9.1") == (24, "ÜÖ", False, ())
        assert look("1.0.10.1") == (31, None, False, ("43",))
        assert look("1.0.11.1") is None
        assert look("2a02:6b8::1") == (32, "RU", False, ("MOW",))
        assert look("2001:4860:8000::1") == (33, "CA", False, ("ON",))


def test_64_subdivisions_are_read_65_are_corrupt(tmp_path: Path) -> None:
    codes = [f"S{i}" for i in range(65)]
    path = build_mmdb(
        tmp_path / "many.mmdb",
        {
            "1.0.0.0/24": {"subdivisions": [{"iso_code": c} for c in codes[:64]]},
            "1.0.1.0/24": {"subdivisions": [{"iso_code": c} for c in codes]},
        },
    )
    with _cmmdb.Reader(str(path)) as reader:
        assert reader.lookup(packed("1.0.0.1")) == (24, None, False, tuple(codes[:64]))
        with pytest.raises(ValueError, match="subdivisions array of 65 entries"):
            reader.lookup(packed("1.0.1.1"))


# --- prefix lengths and IPv4 in IPv6 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "ip", "prefix_len"),
    [
        # The IPv4 subtree: prefix relative to IPv4 (netmask - 96); as IPv6, the netmask.
        ({"1.2.3.0/24": {"x": "y"}}, "1.2.3.4", 24),
        ({"1.2.3.0/24": {"x": "y"}}, "::1.2.3.4", 120),
        # An IPv6 network at ::/96 or wider holds every IPv4 address: netmask - 96 would be
        # 0 or negative, and maxminddb reports 0 (its C extension clamps it; its Python
        # reader starts the IPv4 search below the record and counts no bits).
        ({"::/96": {"x": "y"}}, "1.2.3.4", 0),
        ({"::/96": {"x": "y"}}, "::1.2.3.4", 96),
        ({"::/64": {"x": "y"}}, "1.2.3.4", 0),
        ({"::/64": {"x": "y"}}, "::1.2.3.4", 64),
        ({"::/1": {"x": "y"}}, "9.9.9.9", 0),
        ({"::/1": {"x": "y"}}, "::ffff:9.9.9.9", 1),
    ],
)
def test_prefix_len_of_ipv4_in_ipv6(
    tmp_path: Path, networks: dict[str, Any], ip: str, prefix_len: int
) -> None:
    path = build_mmdb(tmp_path / "v6.mmdb", networks, ip_version=6)
    (answer,) = check_equivalent(path, [ip])
    assert answer == (prefix_len, None, False, ())


def test_prefix_len_on_maxmind_aliases(geoip_test_data: Path) -> None:
    # MaxMind's databases alias ::ffff:0:0/96 to the IPv4 subtree.
    answers = check_equivalent(
        geoip_test_data / "GeoIP2-City-Test.mmdb", ["81.2.69.142", "::ffff:81.2.69.142"]
    )
    assert answers == [(31, "GB", False, ("ENG",)), (127, "GB", False, ("ENG",))]


def test_ipv4_only_database(built: dict[str, Path]) -> None:
    with _cmmdb.Reader(str(built["v4"])) as reader:
        assert reader.ip_version == 4
        assert reader.database_type == "GeoIP2-City"
        with pytest.raises(ValueError, match="IPv6 address in an IPv4-only database"):
            reader.lookup(packed("2a02:6b8::1"))
        with pytest.raises(ValueError, match="IPv4-only"):
            reader.lookup(packed("::ffff:1.0.0.1"))
    with maxminddb.open_database(str(built["v4"])) as reference, pytest.raises(ValueError):
        reference.get("2a02:6b8::1")


# --- 2. broken, garbage and corrupted files ------------------------------------------------------


def test_maxmind_broken_databases(geoip_test_data: Path) -> None:
    path = geoip_test_data / "GeoIP2-City-Test-Invalid-Node-Count.mmdb"
    with pytest.raises(ValueError, match="not a valid MaxMind DB file") as caught:
        _cmmdb.Reader(str(path))
    assert str(path) in str(caught.value)

    path = geoip_test_data / "GeoIP2-City-Test-Broken-Double-Format.mmdb"
    with _cmmdb.Reader(str(path)) as reader, pytest.raises(ValueError, match="corrupt data"):
        reader.lookup(packed("81.2.69.160"))

    path = geoip_test_data / "MaxMind-DB-test-broken-search-tree-24.mmdb"
    with _cmmdb.Reader(str(path)) as reader:
        assert reader.lookup(packed("1.1.1.1")) == (32, None, False, ())
        with pytest.raises(ValueError, match="corrupt"):
            reader.lookup(packed("255.255.255.255"))


@pytest.mark.parametrize("name", BROKEN_DATABASES)
def test_broken_databases_never_crash(geoip_test_data: Path, name: str) -> None:
    path = geoip_test_data / name
    city = geoip_test_data / "GeoIP2-City-Test.mmdb"
    ips = probes(networks_of(city)) + [f"1.1.1.{i}" for i in range(256)]
    messages: list[str] = []
    try:
        reader = _cmmdb.Reader(str(path))
    except (OSError, ValueError) as exc:
        messages.append(str(exc))
    else:
        with reader:
            for ip in ips:
                try:
                    answer = reader.lookup(packed(ip))
                except ValueError as exc:
                    messages.append(str(exc))
                else:
                    assert answer is None or isinstance(answer, tuple)
    assert messages
    assert all(str(path) in message for message in messages)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", ValueError, "the file is empty"),
        (b"\x00" * 4096, ValueError, "not a valid MaxMind DB file"),
        (os.urandom(3000), ValueError, "not a valid MaxMind DB file"),
        (b"\xab\xcd\xefMaxMind.com", ValueError, "not a valid MaxMind DB file"),
        (b"\xab\xcd\xefMaxMind.com\xe0", ValueError, "not a valid MaxMind DB file"),
        (None, IsADirectoryError, "Is a directory"),
        (None, FileNotFoundError, "No such file"),
    ],
    ids=["empty", "zeros", "random", "marker", "empty-metadata", "directory", "missing"],
)
def test_files_that_do_not_open(
    tmp_path: Path, content: bytes | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / "db.mmdb"
    if content is not None:
        path.write_bytes(content)
    elif error is IsADirectoryError:
        path.mkdir()
    with pytest.raises(error, match=message) as caught:
        _cmmdb.Reader(str(path))
    assert str(path) in str(caught.value)
    if isinstance(caught.value, OSError):
        assert caught.value.filename == str(path)
        assert caught.value.errno is not None


def test_truncated_database(built: dict[str, Path], tmp_path: Path) -> None:
    data = built["v6"].read_bytes()
    for size in (16, len(data) // 2, len(data) - 20):
        path = tmp_path / f"cut{size}.mmdb"
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match="not a valid MaxMind DB file"):
            _cmmdb.Reader(str(path))


def test_path_forms(built: dict[str, Path]) -> None:
    with _cmmdb.Reader(built["v4"]) as reader:  # os.PathLike
        assert reader.lookup(packed("1.0.0.1")) == (24, "UA", True, ())
    with _cmmdb.Reader(path=os.fsencode(built["v4"])) as reader:  # bytes, by keyword
        assert reader.ip_version == 4
    with pytest.raises(ValueError, match="null"):
        _cmmdb.Reader(f"{built['v4']}\0x")
    with pytest.raises(TypeError):
        _cmmdb.Reader(42)
    with pytest.raises(TypeError):
        _cmmdb.Reader()


def test_deep_nesting_is_corrupt_data_not_a_crash(tmp_path: Path) -> None:
    # Without the nesting guard, libmaxminddb 1.7.1 overflows the C stack skipping key "a".
    for depth in (511, 512, 2_000_000):
        path = crafted_mmdb(tmp_path / f"deep{depth}.mmdb", _nested(depth))
        with _cmmdb.Reader(str(path)) as reader:
            if depth < 512:
                assert reader.lookup(packed("1.2.3.4")) == (1, "UA", False, ())
            else:
                with pytest.raises(ValueError, match="nested more than 512 levels deep"):
                    reader.lookup(packed("1.2.3.4"))
            assert reader.lookup(packed("200.1.2.3")) is None


def test_deeply_nested_metadata_does_not_open(tmp_path: Path) -> None:
    # MMDB_open() skips metadata values the same unbounded way; the metadata is at most
    # 128 KiB, about 65,000 levels, enough to overflow a small thread stack.
    record = _map({"country": _map({"iso_code": _string("UA")})})
    for depth in (511, 512, 60_000):
        path = crafted_mmdb(
            tmp_path / f"meta{depth}.mmdb", record, metadata_first={"a": _arrays(depth)}
        )
        if depth < 512:
            with _cmmdb.Reader(str(path)) as reader:
                assert reader.lookup(packed("1.2.3.4")) == (1, "UA", False, ())
        else:
            with pytest.raises(ValueError, match="metadata nested more than 512") as caught:
                _cmmdb.Reader(str(path))
            assert str(path) in str(caught.value)


def test_deep_nesting_in_a_thread_with_a_small_stack(tmp_path: Path) -> None:
    """Musl's threads have 128 KiB of stack: unguarded, a few thousand levels crash them."""
    data = crafted_mmdb(tmp_path / "deep.mmdb", _nested(100_000))
    record = _map({"country": _map({"iso_code": _string("UA")})})
    metadata = crafted_mmdb(tmp_path / "meta.mmdb", record, metadata_first={"a": _arrays(60_000)})
    outcomes: list[str] = []

    def work() -> None:
        with _cmmdb.Reader(str(data)) as reader:
            try:
                reader.lookup(packed("1.2.3.4"))
            except ValueError as exc:
                outcomes.append(str(exc))
        try:
            _cmmdb.Reader(str(metadata))
        except ValueError as exc:
            outcomes.append(str(exc))

    saved = threading.stack_size(128 * 1024)
    try:
        thread = threading.Thread(target=work)
        thread.start()
    finally:
        threading.stack_size(saved)
    thread.join(10)
    assert len(outcomes) == 2
    assert all("nested more than 512" in text for text in outcomes)


def test_crafted_records(tmp_path: Path) -> None:
    # A record that is not a map has none of the keys.
    path = crafted_mmdb(tmp_path / "string.mmdb", _string("just a string"))
    (answer,) = check_equivalent(path, ["1.2.3.4"])
    assert answer == (1, None, False, ())
    # A real boolean EU flag (mmdb-writer may store True as the integer 1).
    record = _map(
        {"country": _map({"iso_code": _string("FI"), "is_in_european_union": b"\x01\x07"})}
    )
    path = crafted_mmdb(tmp_path / "bool.mmdb", record)
    assert check_equivalent(path, ["1.2.3.4"]) == [(1, "FI", True, ())]
    # Invalid UTF-8 in a code is corrupt data: UnicodeDecodeError, a ValueError.
    path = crafted_mmdb(
        tmp_path / "utf8.mmdb", _map({"country": _map({"iso_code": _string(b"\xff")})})
    )
    with _cmmdb.Reader(str(path)) as reader, pytest.raises(ValueError):
        reader.lookup(packed("1.2.3.4"))


@pytest.fixture(scope="module")
def small_database(built: dict[str, Path]) -> bytes:
    return built["v6"].read_bytes()


FUZZ_ADDRESSES = [
    packed(ip) for ip in ("1.0.0.1", "1.0.8.1", "2.3.4.5", "2a02:6b8::1", "::1.0.1.1")
]


def _lookups_fail_cleanly(path: Path, addresses: Iterable[bytes]) -> None:
    try:
        reader = _cmmdb.Reader(str(path))
    except (OSError, ValueError):
        return
    with reader:
        for address in addresses:
            try:
                answer = reader.lookup(address)
            except ValueError:
                continue
            if answer is not None:
                prefix_len, code, eu, subdivisions = answer
                assert 0 <= prefix_len <= 128
                assert code is None or isinstance(code, str)
                assert isinstance(eu, bool)
                assert all(isinstance(s, str) for s in subdivisions)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    cut=st.none() | st.floats(0.5, 1),
    addresses=st.lists(
        st.sampled_from(FUZZ_ADDRESSES)
        | st.binary(min_size=4, max_size=4)
        | st.binary(min_size=16, max_size=16),
        min_size=1,
        max_size=6,
    ),
)
def test_corrupted_database_fuzz(
    small_database: bytes,
    tmp_path: Path,
    flips: list[tuple[float, int]],
    cut: float | None,
    addresses: list[bytes],
) -> None:
    data = bytearray(small_database)
    for where, value in flips:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / "fuzz.mmdb"
    path.write_bytes(bytes(data))
    _lookups_fail_cleanly(path, addresses)


def test_every_single_byte_corruption(built: dict[str, Path], tmp_path: Path) -> None:
    """Each byte of a small IPv4 database in turn set to values that mean something to the
    decoder (the IPv6 one is fuzzed above)."""
    original = built["v4"].read_bytes()
    path = tmp_path / "byte.mmdb"
    for where in range(len(original)):
        for value in (0x00, 0xFF, 0x1F, 0x5D, 0xE1):
            data = bytearray(original)
            if data[where] == value:
                continue
            data[where] = value
            path.write_bytes(bytes(data))
            _lookups_fail_cleanly(path, FUZZ_ADDRESSES)


# --- 3. the object -------------------------------------------------------------------------------


def test_close_and_context_manager(built: dict[str, Path]) -> None:
    reader = _cmmdb.Reader(str(built["v4"]))
    assert not reader.closed
    with reader as entered:
        assert entered is reader
        assert reader.lookup(packed("1.0.0.1")) == (24, "UA", True, ())
    assert reader.closed
    with pytest.raises(ValueError, match="closed"):
        reader.lookup(packed("1.0.0.1"))
    reader.close()
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.lookup(packed("1.0.0.1"))
    with pytest.raises(ValueError, match="closed"):
        reader.__enter__()
    # Metadata stays readable after close.
    assert (reader.ip_version, reader.database_type) == (4, "GeoIP2-City")


def test_reopen(built: dict[str, Path]) -> None:
    reader = _cmmdb.Reader(str(built["v4"]))
    with pytest.raises(ValueError, match="already open"):
        reader.__init__(str(built["v6"]))
    reader.close()
    reader.__init__(str(built["v6"]))
    assert reader.ip_version == 6
    assert reader.lookup(packed("2a02:6b8::1")) == (32, "RU", False, ("MOW",))
    reader.close()


def test_unopened_reader() -> None:
    reader = _cmmdb.Reader.__new__(_cmmdb.Reader)
    assert reader.closed
    with pytest.raises(ValueError, match="closed"):
        reader.lookup(b"\x01\x02\x03\x04")
    with pytest.raises(AttributeError):
        _ = reader.ip_version
    with pytest.raises(AttributeError):
        _ = reader.database_type
    reader.close()


def test_arguments(built: dict[str, Path]) -> None:
    with _cmmdb.Reader(str(built["v6"])) as reader:
        for length in (0, 1, 3, 5, 15, 17, 32):
            with pytest.raises(ValueError, match="4 bytes"):
                reader.lookup(bytes(length))
        for wrong in ("1.0.0.1", None, 16843009, [1, 0, 0, 1]):
            with pytest.raises(TypeError):
                reader.lookup(wrong)
        with pytest.raises(TypeError):
            reader.lookup()
        assert reader.lookup(bytearray(packed("1.0.0.1"))) == (24, "UA", True, ())
        assert reader.lookup(memoryview(packed("1.0.0.1"))) == (24, "UA", True, ())
        with pytest.raises(AttributeError):
            reader.ip_version = 4
        with pytest.raises(AttributeError):
            reader.database_type = "x"


def test_many_readers_are_released(built: dict[str, Path]) -> None:
    for _ in range(200):
        reader = _cmmdb.Reader(str(built["v4"]))
        assert reader.lookup(packed("1.0.0.1")) is not None
        del reader
    gc.collect()


def test_docstrings() -> None:
    assert _cmmdb.__doc__
    for name in ("lookup", "close", "__enter__", "__exit__"):
        assert getattr(_cmmdb.Reader, name).__doc__
    assert _cmmdb.Reader.__doc__
    assert "prefix_len" in _cmmdb.Reader.lookup.__doc__


def test_close_from_a_finalizer_during_a_lookup(built: dict[str, Path]) -> None:
    """A garbage collection inside lookup() may run code that closes the reader: the lookup
    finishes on the still-mapped file, which is released afterwards."""
    path = str(built["v6"])
    address = packed("1.0.2.1")
    reader = _cmmdb.Reader(path)
    seen: list[str] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and not seen:
            reader.close()
            try:
                reader.__init__(path)  # refused only while the closing lookup still runs
            except ValueError:
                seen.append("during the lookup")
            else:
                seen.append("outside the lookup")

    gc.collect()
    # Empty the free list of 4-tuples, so that the answer tuple is a new GC allocation,
    # which (threshold 1) starts a collection inside lookup().
    keep = [(i, i, i, i) for i in range(5000)]
    threshold = gc.get_threshold()
    gc.callbacks.append(callback)
    gc.set_threshold(1)
    try:
        answer = reader.lookup(address)
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(callback)
    del keep
    assert answer == (24, "GB", False, ("ENG", "WBK"))
    assert seen
    if sys.version_info < (3, 12):  # 3.12+ collects at the next bytecode, not in allocation
        assert seen == ["during the lookup"]
        assert reader.closed
        with pytest.raises(ValueError, match="closed"):
            reader.lookup(address)
    reader.close()


# --- 4. threads ----------------------------------------------------------------------------------


def _cases(path: Path) -> list[tuple[bytes, Answer]]:
    ips = probes(networks_of(path))
    with maxminddb.open_database(str(path)) as reference:
        return [(packed(ip), expected(reference, ip)) for ip in ips]


def _run_threads(target: Any, count: int = 4) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)


def test_threads(built: dict[str, Path]) -> None:
    cases = _cases(built["v6"])
    errors: list[BaseException] = []
    counts: list[int] = []
    with _cmmdb.Reader(str(built["v6"])) as reader:
        stop = time.monotonic() + 0.3

        def work() -> None:
            done = 0
            try:
                while time.monotonic() < stop:
                    for address, want in cases:
                        assert reader.lookup(address) == want
                    done += len(cases)
            except BaseException as exc:
                errors.append(exc)
            counts.append(done)

        _run_threads(work)
    assert not errors
    assert len(counts) == 4
    assert all(counts)


def test_close_while_threads_look_up(built: dict[str, Path]) -> None:
    cases = _cases(built["v6"])
    reader = _cmmdb.Reader(str(built["v6"]))
    errors: list[BaseException] = []
    ended: list[str] = []

    def work() -> None:
        try:
            while True:
                for address, want in cases:
                    assert reader.lookup(address) == want
        except ValueError as exc:
            ended.append(str(exc))
        except BaseException as exc:
            errors.append(exc)

    def closer() -> None:
        time.sleep(0.05)
        reader.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    threads.append(threading.Thread(target=closer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert len(ended) == 4
    assert all("closed" in text for text in ended)

"""Geolocation cost against the DESIGN.md budgets; run as ``python benchmarks/geo.py``.

Budgets (section 7), measured in one run: a repeat address costs at least 20x less than one
``geoip2`` ``Reader.city()`` lookup; a new address at most 1.2x a bare ``maxminddb`` lookup.
Each figure is the best of many interleaved rounds over the same addresses. Exit status 1
when a budget is missed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import geoip2.database
import maxminddb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compliance.geo import MaxMindGeolocator, public_address  # noqa: E402
from compliance.testing import build_mmdb  # noqa: E402

SHARED_CITY = REPO.parent / "shared" / "geoip-test-data" / "GeoIP2-City-Test.mmdb"
ROUNDS = 60
MAX_ADDRESSES = 2000

Run = tuple[Callable[[], object], Callable[[], object], int]


def city_database(workdir: Path) -> Path:
    """MaxMind's City test database when present, else a built one of the same shape."""
    if SHARED_CITY.is_file():
        return SHARED_CITY
    names = {"en": "Somewhere", "de": "Irgendwo", "ru": "Где-то", "ja": "どこか"}
    networks = {
        f"81.{i}.0.0/16": {
            "city": {"geoname_id": 1000 + i, "names": names},
            "continent": {"code": "EU", "geoname_id": 6255148, "names": names},
            "country": {"geoname_id": 2635167, "iso_code": "GB", "names": names},
            "location": {"accuracy_radius": 10, "latitude": 51.5, "longitude": -0.09},
            "registered_country": {"geoname_id": 2635167, "iso_code": "GB", "names": names},
            "subdivisions": [{"geoname_id": 6269131, "iso_code": "ENG", "names": names}],
        }
        for i in range(256)
    }
    return build_mmdb(workdir / "City.mmdb", networks)


def addresses(path: Path, per_network: int) -> list[str]:
    """Distinct public addresses the database has a country for, ``per_network`` each."""
    found: list[str] = []
    with maxminddb.open_database(str(path)) as reader:
        for network, record in reader:
            if not isinstance(record, dict) or "country" not in record:
                continue
            for host in islice(network, per_network):
                if public_address(str(host)) is not None:
                    found.append(str(host))
    if not found:
        raise SystemExit(f"{path}: no public networks with a country")
    return found[:MAX_ADDRESSES]


def loop(function: Callable[[str], object], ips: list[str]) -> Callable[[], None]:
    def run() -> None:
        for ip in ips:
            function(ip)

    return run


def nothing() -> None:
    pass


def best_per_lookup(runs: dict[str, Run]) -> dict[str, float]:
    """Best seconds per address of each ``(prepare, run, count)`` over interleaved rounds."""
    best = dict.fromkeys(runs, float("inf"))
    # Interleaved, so that a busy moment on the machine hurts every figure alike.
    for _ in range(ROUNDS):
        for name, (prepare, run, count) in runs.items():
            prepare()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) / count)
    return best


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = city_database(Path(tmp))
        # One address per network: no first-time lookup can reuse another one's work.
        ips = addresses(path, 1)
        # Eight per network, like neighbours in real traffic: for information.
        shared = addresses(path, 8)
        print(f"database: {path}")
        print(f"{len(ips)} addresses in as many networks; best of {ROUNDS} interleaved rounds")
        print("first time = all caches cleared before each round\n")
        with (
            geoip2.database.Reader(str(path)) as g2,
            maxminddb.open_database(str(path), maxminddb.MODE_AUTO) as bare,
            MaxMindGeolocator(path, cache_size=4 * MAX_ADDRESSES, check_interval=60) as geo,
        ):
            clear = geo.clear_cache
            runs: dict[str, Run] = {
                "geoip2 Reader.city()": (nothing, loop(g2.city, ips), len(ips)),
                "maxminddb Reader.get()": (nothing, loop(bare.get, ips), len(ips)),
                "locate, first time": (clear, loop(geo.locate, ips), len(ips)),
                "locate, repeat": (nothing, loop(geo.locate, ips), len(ips)),
                "get, 8 per network": (nothing, loop(bare.get, shared), len(shared)),
                "first time, 8 per network": (clear, loop(geo.locate, shared), len(shared)),
            }
            costs = best_per_lookup(runs)

    for name, cost in costs.items():
        print(f"{name:<28}{cost * 1e6:9.3f} us/lookup")
    repeat_gain = costs["geoip2 Reader.city()"] / costs["locate, repeat"]
    first_ratio = costs["locate, first time"] / costs["maxminddb Reader.get()"]
    shared_ratio = costs["first time, 8 per network"] / costs["get, 8 per network"]
    print(f"\n(first time, 8 per network: {shared_ratio:.2f}x bare get(); no budget)")
    checks = [
        (f"repeat is {repeat_gain:.1f}x cheaper than city() (budget: >= 20x)", repeat_gain >= 20),
        (f"first time is {first_ratio:.2f}x bare get() (budget: <= 1.2x)", first_ratio <= 1.2),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

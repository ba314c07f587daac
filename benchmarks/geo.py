"""Geolocation cost as ratios to one ``geoip2`` ``Reader.city()``; ``python benchmarks/geo.py``.

``decide()`` must cost a repeat reader at least 50x less than ``Reader.city()`` of the same
address, and a new reader at most 1.0x (DESIGN.md section 7, checked by benchmarks/engine.py).
Geolocation is only part of that, so its own budgets here are: a repeat ``locate`` at least
75x cheaper than ``city()`` (a dict hit), a first-time ``locate`` at most 0.8x ``city()``.
Printed without a budget: the same against a bare ``maxminddb`` lookup, and the whole request
pipeline (``locate_request``: trusted proxy, ``X-Forwarded-For``, a CDN provider that does not
answer, then the database) for a repeat reader. Each figure is the best of many interleaved
rounds over the same addresses. Exit status 1 when a budget is missed.
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

from compliance.geo import (  # noqa: E402
    MaxMindGeolocator,
    TrustedProxies,
    get_provider,
    locate_request,
    public_address,
)
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
            proxies = TrustedProxies(["10.0.0.0/8"])
            cloudflare = get_provider("cloudflare")
            requests = [{"x-forwarded-for": ip, "cf-ipcountry": "XX"} for ip in ips]

            def pipeline() -> None:
                for headers in requests:
                    locate_request(
                        "10.0.0.1", headers, proxies=proxies, provider=cloudflare, geolocator=geo
                    )

            runs: dict[str, Run] = {
                "geoip2 Reader.city()": (nothing, loop(g2.city, ips), len(ips)),
                "maxminddb Reader.get()": (nothing, loop(bare.get, ips), len(ips)),
                "locate, first time": (clear, loop(geo.locate, ips), len(ips)),
                "locate, repeat": (nothing, loop(geo.locate, ips), len(ips)),
                "locate_request, repeat": (nothing, pipeline, len(ips)),
                "get, 8 per network": (nothing, loop(bare.get, shared), len(shared)),
                "first time, 8 per network": (clear, loop(geo.locate, shared), len(shared)),
            }
            costs = best_per_lookup(runs)

    city = costs["geoip2 Reader.city()"]
    for name, cost in costs.items():
        print(f"{name:<28}{cost * 1e6:9.3f} us/lookup  {cost / city:7.3f}x city()")
    repeat_gain = city / costs["locate, repeat"]
    first_ratio = costs["locate, first time"] / city
    pipeline_gain = city / costs["locate_request, repeat"]
    bare_ratio = costs["locate, first time"] / costs["maxminddb Reader.get()"]
    shared_ratio = costs["first time, 8 per network"] / costs["get, 8 per network"]
    print(f"\n(first time: {bare_ratio:.2f}x bare get(); 8 per network: {shared_ratio:.2f}x)")
    print(f"(locate_request for a repeat reader: {pipeline_gain:.1f}x cheaper than city())")
    checks = [
        (
            f"repeat locate is {repeat_gain:.1f}x cheaper than city() (budget: >= 75x)",
            repeat_gain >= 75,
        ),
        (f"first-time locate is {first_ratio:.2f}x city() (budget: <= 0.8x)", first_ratio <= 0.8),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

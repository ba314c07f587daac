"""Differential tests of the edge exports: generated rule sets and requests (odd escapes, dot
segments, case, ports, Accept-Language, origin tags, Content-Language, Cache-Control,
statuses, HEAD), each asked of the library's WSGI middleware and of a real engine (nginx with
geoip2, workerd) running the export of the same rules; the answers must be equal.

The generator is tests/edge/differential.py (seeded, so a failure names a seed). CI runs a
few seeds; a larger campaign runs locally:

    PYTHONPATH=. python tests/edge/differential.py nginx --seeds 200 --requests 100
    PYTHONPATH=. python tests/edge/differential.py cloudflare --seeds 200 --requests 100

``COMPLIANCE_EDGE_SEEDS`` and ``COMPLIANCE_EDGE_REQUESTS`` make this module run more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import differential as d
import harness as h
import pytest

pytestmark = pytest.mark.slow

SEEDS = int(os.environ.get("COMPLIANCE_EDGE_SEEDS", "8"))
REQUESTS = int(os.environ.get("COMPLIANCE_EDGE_REQUESTS", "80"))


@pytest.fixture(scope="module")
def origin() -> Iterator[Any]:
    yield from h.serve(d.origin_app)


@pytest.mark.parametrize("target", ["nginx", "cloudflare"])
def test_generated_requests_get_the_same_answers(
    target: str, origin: Any, geoip_test_data: Path, tmp_path: Path
) -> None:
    def start(work: Path, export_dir: Path) -> Iterator[Any]:
        if target == "nginx":
            return h.start_nginx(work, export_dir, origin.port)
        return h.start_workerd(work, export_dir, origin.url)

    city = geoip_test_data / "GeoIP2-City-Test.mmdb"
    compared = 0
    mismatches = []
    for seed in range(SEEDS):
        count, found = d.run_seed(target, seed, REQUESTS, tmp_path, start, city)
        compared += count
        mismatches.extend(found)
    print(f"{target}: {compared} generated requests compared")  # shown with -s
    assert compared >= SEEDS * REQUESTS * 0.9  # nginx refuses a few (`/..` above the root)
    assert not mismatches, "\n".join(map(str, mismatches[:20]))


def test_the_generated_rules_and_requests_are_broad() -> None:
    """The generated cases reach every kind of answer the comparison is meant to cover."""
    rules = [d.rule_set(seed, target="cloudflare") for seed in range(SEEDS)]
    fields = {name for rule_set in rules for rule in rule_set["rules"] for name in rule}
    assert fields >= {"hosts", "paths", "exclude_paths", "exclude", "tags", "notice", "block"}
    assert fields >= {"headers", "effective", "unknown_location", "unknown_subdivision"}
    paths = [
        r.path
        for seed, s in enumerate(rules)
        for r in d.requests(s["rules"], seed, 80, target="nginx")
    ]
    assert any("/./" in p or p.endswith(("/.", "/..")) for p in paths)
    assert any("%" in p for p in paths)

"""Nested regions: flattened once per rule set, matched exactly at any depth, and in work
linear in the regions however they share nested regions."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from compliance.engine import Engine
from compliance.geo import Location
from compliance.loader import load_rules
from compliance.models import Region
from compliance.testing import FixedGeolocator

FIXED = FixedGeolocator(Location.of("DE"))


class _Counted(Mapping[str, Region]):
    """Regions whose every lookup is counted; past ``budget`` lookups it fails, so that an
    exponential walk fails the test at once instead of running for minutes."""

    def __init__(self, regions: Mapping[str, Region], budget: int) -> None:
        self._regions = dict(regions)
        self.budget = budget
        self.lookups = 0

    def __getitem__(self, name: str) -> Region:
        self.lookups += 1
        if self.lookups > self.budget:
            raise AssertionError(f"more than {self.budget} region lookups")
        return self._regions[name]

    def __contains__(self, name: object) -> bool:
        return name in self._regions

    def __iter__(self) -> Iterator[str]:
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)


def _write(tmp_path: Path, regions: list[str], where: str = "r0") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nregions:\n"
        + "".join(f"  {line}\n" for line in regions)
        + f"rules:\n  - id: a\n    title: A\n    jurisdictions: [{where}]\n"
        + "    notice: {text: {en: x}}\n",
        encoding="utf-8",
    )
    return path


def _applies(engine: Engine, country: str, *subdivisions: str) -> bool:
    decision = engine.decide(location=Location.of(country, *subdivisions))
    return [n.rule_id for n in decision.notices] == ["a"]


@pytest.mark.parametrize("exclude", ["", ", exclude: [DE-BY]"])
def test_a_long_chain_of_regions_is_not_cut_off(tmp_path: Path, exclude: str) -> None:
    # Before, matching stopped at 32 levels (two per region): a chain of 17 never matched.
    n = 60
    lines = [f"r{i}: {{title: x, include: [r{i + 1}]{exclude}}}" for i in range(n)]
    lines.append("r60: {title: x, include: [DE, FR]}")
    engine = Engine(load_rules([_write(tmp_path, lines)]), FIXED)
    assert _applies(engine, "DE")
    assert _applies(engine, "FR")
    assert not _applies(engine, "AT")
    assert _applies(engine, "DE", "DE-BE")
    assert _applies(engine, "DE", "DE-BY") is not bool(exclude)


@pytest.mark.parametrize("exclude", ["", ", exclude: [FR-IDF]"])
def test_a_diamond_of_regions_costs_work_linear_in_its_size(tmp_path: Path, exclude: str) -> None:
    # r_k and s_k both include r_k+1 and s_k+1: 2**n paths from r0 to the bottom. Walking
    # them (as before, without memoising) takes minutes at n=24; each region is looked up a
    # bounded number of times now, to compile the rule set and to decide.
    n = 40
    lines = []
    for i in range(n):
        below = f"[r{i + 1}, s{i + 1}]" if i + 1 < n else "[DE, FR]"
        lines += [
            f"r{i}: {{title: x, include: {below}{exclude}}}",
            f"s{i}: {{title: x, include: {below}{exclude}}}",
        ]
    ruleset = load_rules([_write(tmp_path, lines)])
    counted = _Counted(ruleset.regions, budget=40 * len(ruleset.regions))
    engine = Engine(dataclasses.replace(ruleset, regions=counted), FIXED)
    compiled = counted.lookups
    assert _applies(engine, "DE")
    assert not _applies(engine, "AT")
    assert _applies(engine, "FR", "FR-ARA")
    assert _applies(engine, "FR", "FR-IDF") is not bool(exclude)
    assert compiled <= 4 * len(ruleset.regions)
    assert counted.lookups <= 40 * len(ruleset.regions)


# -- the flattened regions decide as the definition says ------------------------------------


def _reference(regions: Mapping[str, Region], code: str, location: Location, apply: bool) -> bool:
    """DESIGN.md section 2, written as directly as it reads (no memo, no index)."""
    if code in regions:
        region = regions[code]
        if region.unknown_subdivision is not None:
            apply = region.unknown_subdivision == "apply"
        return any(_reference(regions, c, location, apply) for c in region.include) and not any(
            _reference(regions, c, location, False) for c in region.exclude
        )
    if code == location.country or code in location.subdivisions:
        return True
    return bool(
        apply and not location.subdivisions and code[2:3] == "-" and code[:2] == location.country
    )


CODES = ["DE", "FR", "DE-BY", "DE-BE", "FR-IDF", "FR-ARA"]
LOCATIONS = [
    Location.of("DE"),
    Location.of("DE", "DE-BY"),
    Location.of("DE", "DE-BE"),
    Location.of("DE", "DE-BY", "DE-BE"),
    Location.of("FR"),
    Location.of("FR", "FR-IDF"),
    Location.of("AT"),
]


def _random_rules(rng: random.Random, n: int) -> str:
    lines = ["version: 1", "regions:"]
    for i in range(n):
        # Regions name only regions after them: no cycles.
        pool = CODES + [f"g{j}" for j in range(i + 1, n)]
        include = rng.sample(pool, rng.randint(1, 3))
        exclude = rng.sample(pool, rng.randint(0, 2)) if rng.random() < 0.5 else []
        setting = rng.choice(["", ", unknown_subdivision: apply", ", unknown_subdivision: skip"])
        lines.append(
            f"  g{i}: {{title: x, include: [{', '.join(include)}], "
            f"exclude: [{', '.join(exclude)}]{setting}}}"
        )
    lines.append("rules:")
    for i in range(n):
        setting = rng.choice(["skip", "apply"])
        lines += [
            f"  - id: r{i}",
            "    title: x",
            f"    jurisdictions: [g{i}]",
            f"    unknown_subdivision: {setting}",
            "    headers: {X-A: b}",
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(20))
def test_flattened_regions_decide_as_the_definition_says(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "rules.yaml"
    path.write_text(_random_rules(rng, 8), encoding="utf-8")
    ruleset = load_rules([path])
    engine = Engine(ruleset, FIXED)
    for location in LOCATIONS:
        applied = {m.rule_id for m in engine.decide(location=location).trace if m.applied}
        expected = {
            loaded.rule.id
            for loaded in ruleset.rules
            if _reference(
                ruleset.regions,
                loaded.rule.jurisdictions[0],
                location,
                loaded.rule.unknown_subdivision == "apply",
            )
        }
        assert applied == expected, (location, path.read_text(encoding="utf-8"))


def test_what_flattened_regions_hold_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regions that each include a large one and one code more would each hold a copy of
    it: past the bound the rule set is refused, naming the region, not kept in memory."""
    import pycountry

    from compliance import engine as engine_module
    from compliance.errors import ConfigurationError

    monkeypatch.setattr(engine_module, "_MAX_REGION_CODES", 5_000)
    codes = sorted(s.code for s in pycountry.subdivisions)[:400]
    countries = sorted(c.alpha_2 for c in pycountry.countries)[:30]
    regions = [f"big: {{title: B, include: [{', '.join(codes)}]}}"]
    regions += [
        f"r{i}: {{title: R, include: [big, {country}]}}" for i, country in enumerate(countries)
    ]
    path = _write(tmp_path, regions, where="r29")
    with pytest.raises(ConfigurationError, match=r"more than 5,000 codes .* region 'r\d+'"):
        Engine.from_paths([path], geolocator=FIXED)
    monkeypatch.setattr(engine_module, "_MAX_REGION_CODES", 50_000)
    assert _applies(Engine.from_paths([path], geolocator=FIXED), countries[29])

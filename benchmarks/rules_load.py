"""How long loading rule files takes, against the budgets in the issue.

Budgets: the bundled pack loads in under 100 ms in a warm process; a generated pack of 1,000
rules loads in under 2 s. The cold first load (which also pays for pycountry's ISO 3166
database and babel's locale data) is printed too, for information.

Run: ``python benchmarks/rules_load.py [--rules N] [--repeat N]``. Exit status 1 on FAIL.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BUNDLED_BUDGET = 0.100
GENERATED_BUDGET = 2.0
GENERATED_RULES = 1000

_COUNTRIES = ["DE", "FR", "PL", "RU", "UA", "US", "GB", "NO", "BR", "JP", "IN", "ZA"]
_SUBDIVISIONS = ["UA-43", "UA-40", "UA-14", "US-CA", "DE-BY", "FR-IDF", "GB-ENG", "BR-SP"]
_LOCALES = ["en", "de", "fr", "ru", "uk", "pt-BR", "ja", "no"]


def write_pack(directory: Path, rules: int, *, per_file: int = 50) -> list[Path]:
    """Write ``rules`` varied, valid rules into ``directory``, ``per_file`` to a file."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for first in range(0, rules, per_file):
        lines = ["version: 1", "regions:"]
        region = f"region-{first // per_file}"
        lines += [
            f"  {region}:",
            f"    title: Generated region {first // per_file}",
            f"    include: [{_COUNTRIES[first % 12]}, {_SUBDIVISIONS[first % 8]}]",
            "rules:",
        ]
        for n in range(first, min(first + per_file, rules)):
            where = [_COUNTRIES[n % 12], _SUBDIVISIONS[n % 8], region]
            locales = [_LOCALES[(n + k) % 8] for k in range(3)]
            lines += [
                f"  - id: generated-rule-{n}",
                f"    title: Generated rule number {n}",
                f"    description: A generated rule to measure loading ({n}).",
                f"    jurisdictions: [{', '.join(where)}]",
                f"    effective: {{from: 2024-01-{n % 28 + 1:02d}, until: 2030-01-01}}",
                f'    paths: ["/section-{n % 10}/**"]',
                f"    tags: [tag-{n % 7}]",
                f"    priority: {n % 100}",
                "    notice:",
                "      placement: body_end",
                f"      variables: {{organization: Org {n}, since: 2024-02-20}}",
                f"      default_locale: {locales[0]}",
                "      text:",
            ]
            lines += [
                f"        {locale}: |\n          {{organization}} notice {n} in {locale}, "
                f"since {{since:long}}.\n\n          A second paragraph."
                for locale in locales
            ]
            lines += [
                "    tests:",
                f"      - name: a reader in {where[0]}",
                f"        reader: {{country: {where[0]}}}",
                f"        request: {{url: 'https://www.example.org/section-{n % 10}/a',"
                f" tags: [tag-{n % 7}], at: 2025-01-01}}",
                "        expect: {applies: true}",
            ]
        path = directory / f"generated-{first // per_file:03d}.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _time(load: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=GENERATED_RULES)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    from compliance.loader import bundled_rules_path, load_rules

    imported = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        bundled = Path(tmp, "bundled")
        shutil.copytree(bundled_rules_path(), bundled)
        generated = Path(tmp, "generated")
        write_pack(generated, args.rules)

        start = time.perf_counter()
        count = len(load_rules([bundled]))
        cold = time.perf_counter() - start
        bundled_best, bundled_median = _time(lambda: load_rules([bundled]), args.repeat)

        start = time.perf_counter()
        generated_count = len(load_rules([generated]))
        generated_first = time.perf_counter() - start
        generated_best, generated_median = _time(lambda: load_rules([generated]), args.repeat)

    ok_bundled = bundled_median < BUNDLED_BUDGET
    ok_generated = generated_median < GENERATED_BUDGET
    print(f"import compliance.loader:           {imported * 1000:8.1f} ms")
    print(f"bundled pack ({count} rules), cold:     {cold * 1000:8.1f} ms (includes ISO/CLDR data)")
    print(
        f"bundled pack, warm:                 {bundled_median * 1000:8.1f} ms median, "
        f"{bundled_best * 1000:.1f} ms best  budget {BUNDLED_BUDGET * 1000:.0f} ms  "
        f"{'PASS' if ok_bundled else 'FAIL'}"
    )
    print(f"{generated_count} generated rules, first:     {generated_first * 1000:8.1f} ms")
    print(
        f"{generated_count} generated rules, warm:      {generated_median * 1000:8.1f} ms median, "
        f"{generated_best * 1000:.1f} ms best  budget {GENERATED_BUDGET * 1000:.0f} ms  "
        f"{'PASS' if ok_generated else 'FAIL'}"
    )
    return 0 if ok_bundled and ok_generated else 1


if __name__ == "__main__":
    sys.exit(main())

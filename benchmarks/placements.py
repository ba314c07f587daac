"""What a pending ``after_heading`` or ``marker`` costs: a 1 MB page edited while the
placement looks for its place over the whole page (no ``<h1>`` before the end, no marker).

Two pages, in 64 KB chunks: the realistic article of ``inject.py`` (paragraphs, inline
markup, scripts), and a table of 32,000 cells, every other one holding a link, with the
headline after the table. The links a notice must not land in are followed through the
tables (see docs/html.md), which costs a Python step per tag the tokenizer reports. Best
of N runs each; printed, no budget.

Run: ``python benchmarks/placements.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inject import SNIPPET, chunks_of, realistic_page

from compliance.inject import Injector

ROW = (
    b'<tr><td class="n">%d</td><td><a href="/item/%d">Item %d</a></td>'
    b'<td><span>note</span></td><td><a href="/x">edit</a></td></tr>\n'
)


def table_page() -> bytes:
    """About 1 MB: 8,000 rows of four cells, two links a row, then the headline."""
    rows = b"".join(ROW % (i, i, i) for i in range(8000))
    return (
        b"<!DOCTYPE html><html><body><table>" + rows + b"</table><h1>T</h1><p>x</p></body></html>"
    )


def best_of(chunks: list[bytes], placement: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        injector = Injector(lambda page: {placement: SNIPPET}, max_hold=64 * 1024 * 1024)
        for chunk in chunks:
            injector.feed(chunk)
        injector.finish()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    pages = {"article": realistic_page(1024 * 1024), "table of links": table_page()}
    for name, page in pages.items():
        chunks = chunks_of(page)
        for placement in ("after_heading", "marker"):
            took = best_of(chunks, placement, args.repeat)
            print(f"{name:15s} {len(page) / 1e6:4.2f} MB  {placement:13s} {took * 1e3:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where our middleware spends its time per request: a profile of the in-process benchmark.

Runs the same requests as ``benchmarks/middleware.py`` (a browser's headers, the article
page or the constant page, a reader in Russia who gets a notice or in Germany who does not)
through our middleware many times under ``cProfile`` and prints the functions by their own
time, or under ``pyinstrument`` when it is installed and asked for (not a dependency).

    python benchmarks/profile_middleware.py [--adapter wsgi|asgi] [--view constant|article]
        [--reader RU|DE] [--requests N] [--tool cprofile|pyinstrument] [--limit N]
        [--without-injector]

``--without-injector`` replaces the HTML injector by one that passes the page through
unchanged (and says it inserted the notices): what is left is the cost of everything else
on the notice path (the response core, the adapters, the decision), in microseconds per
request, without the profiler.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for entry in (str(HERE.parent), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import article  # noqa: E402
import middleware  # noqa: E402


class _PassThrough:
    """Stands in for ``compliance.inject.Injector``: the page unchanged, notices "inserted"."""

    skipped_reason = None
    fault = None
    inserted_placements = ()
    lang = None

    def __init__(self, render: object, **options: object) -> None:
        self.inserted = False
        self.withheld: list[str] = []

    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        self.inserted = True
        return b""

    def cut(self) -> bytes:
        return b""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", choices=("wsgi", "asgi"), default="wsgi")
    parser.add_argument("--view", choices=("constant", "article"), default="constant")
    parser.add_argument("--reader", choices=("RU", "DE"), default="RU")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--tool", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--limit", type=int, default=30, help="rows to print")
    parser.add_argument(
        "--without-injector",
        action="store_true",
        help="time everything but the HTML injector (a pass-through stands in for it)",
    )
    args = parser.parse_args(argv)
    if args.without_injector:
        import compliance.core

        compliance.core.Injector = _PassThrough  # type: ignore[assignment,misc]
    ip = middleware.IN_RUSSIA if args.reader == "RU" else middleware.IN_GERMANY
    view = getattr(article, f"{args.view}_{args.adapter}")
    if args.adapter == "wsgi":
        run = middleware.wsgi_runner(article.ours_wsgi(view), ip)
    else:
        run = middleware.asgi_runner(article.ours_asgi(view), ip, asyncio.new_event_loop())
    run(max(10, args.requests // 10))  # warm up the caches
    per_request = min(run(max(10, args.requests // 5))[0] for _ in range(3))
    if args.tool == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()
        run(args.requests)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    else:
        profile = cProfile.Profile()
        profile.enable()
        run(args.requests)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.limit)
        stats.sort_stats("cumulative").print_stats(args.limit)
    print(f"{per_request * 1e6:,.1f} µs per request without the profiler")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the article budget leaves for reading the page, against the cheapest scans ``re`` makes.

The article budget (``middleware.py``, issue 12) allows our middleware at most 1.15x the
naive splice's time per request. This script measures, in one run, in process (WSGI), with
the Jinja2 article view rendering per request and a reader in Russia (a ``body_end``
notice), interleaved round by round as ``middleware.py`` does:

- the bare view, the naive splice, and ours;
- ours with the HTML injector replaced by a pass-through (``profile_middleware._PassThrough``):
  everything our middleware does but read and edit the page;
- the naive splice with one extra ``re`` match over each rendered page before it, for two
  scans cheaper than any correct reading of HTML:

  * *tag boundaries*: ``[^<]*+(?:<[^>]*+>[^<]*+)*+``, every tag read to its first ``>``
    (wrong where a quoted attribute value holds a ``>``);
  * *quoted values*: the same, with double- and single-quoted runs read whole wherever they
    occur in a tag (still simpler than the HTML tokenizer: no comments, raw text, foreign
    content, ``<select>`` or ``<template>``).

It prints what the budget leaves for reading and editing the page (1.15x the naive splice,
minus ours without the injector), what each scan costs where it runs (after a render, its
caches shared with Jinja2's), and what our injector costs there. No budget of its own: it
shows how far a regular-expression tokenizer is from the article budget.

    python benchmarks/floor.py [--rounds N] [--requests N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for entry in (str(HERE.parent), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import article  # noqa: E402
import middleware  # noqa: E402
from profile_middleware import _PassThrough  # noqa: E402

import compliance.core  # noqa: E402

SCANS = {
    "tag boundaries": re.compile(rb"[^<]*+(?:<[^>]*+>[^<]*+)*+"),
    "quoted values": re.compile(
        rb"""[^<]*+(?:<[^>"']*+(?:(?:"[^"]*+"|'[^']*+')[^>"']*+)*+>[^<]*+)*+"""
    ),
}


def scanned(view: Any, pattern: re.Pattern[bytes]) -> Any:
    """``view`` with one match of ``pattern`` over each page it renders (checked to read the
    page to its end, so that the scan is the whole page's)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = b"".join(view(environ, start_response))
        if pattern.match(body).end() != len(body):  # type: ignore[union-attr]
            raise SystemExit("the scan stopped before the end of the page")
        return [body]

    return app


def without_injector(runner: middleware.Runner) -> middleware.Runner:
    """``runner`` with the pass-through standing in for the injector while it runs."""

    def run(n: int) -> tuple[float, middleware.Response]:
        real = compliance.core.Injector
        compliance.core.Injector = _PassThrough  # type: ignore[assignment,misc]
        try:
            return runner(n)
        finally:
            compliance.core.Injector = real  # type: ignore[misc]

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=120, help="per round and variant")
    args = parser.parse_args(argv)
    view = article.article_wsgi
    ip = middleware.IN_RUSSIA
    engine = article.ENGINE
    runners = {
        "bare": middleware.wsgi_runner(view, ip),
        "naive": middleware.wsgi_runner(article.NaiveSpliceWSGI(view, engine), ip),
        "ours": middleware.wsgi_runner(article.ours_wsgi(view), ip),
        "ours without injector": without_injector(
            middleware.wsgi_runner(article.ours_wsgi(view), ip)
        ),
    }
    for name, pattern in SCANS.items():
        runners[f"naive + {name}"] = middleware.wsgi_runner(
            article.NaiveSpliceWSGI(scanned(view, pattern), engine), ip
        )
    for name, runner in runners.items():
        # (The pass-through leaves the page as it is.)
        notice = name not in ("bare", "ours without injector")
        middleware._check(name, runner(1)[1], notice=notice)
    samples = middleware.interleave(runners, args.requests, args.rounds)

    def over(name: str, base: str) -> float:
        """Median over rounds of the time ``name`` takes beyond ``base``, in µs."""
        pairs = zip(samples[name], samples[base], strict=True)
        return statistics.median(a - b for a, b in pairs) * 1e6

    naive = statistics.median(samples["naive"]) * 1e6
    allowance = (
        middleware.SPLICE_BUDGET * naive - statistics.median(samples["ours without injector"]) * 1e6
    )
    print(
        f"the Jinja2 article ({len(article.PAGE):,} bytes), WSGI, in process, a reader in "
        f"Russia; medians of {args.rounds} interleaved rounds of {args.requests} requests"
    )
    print(
        f"  bare view {statistics.median(samples['bare']) * 1e6:,.1f} µs; naive splice "
        f"{naive:,.1f} µs; ours {statistics.median(samples['ours']) * 1e6:,.1f} µs"
    )
    print(
        f"  our code but the injector: {over('ours without injector', 'bare'):,.1f} µs per "
        f"request over the bare view"
    )
    print(
        f"  left for reading and editing the page under the {middleware.SPLICE_BUDGET}x "
        f"budget: {allowance:,.1f} µs"
    )
    for name in SCANS:
        cost = over(f"naive + {name}", "naive")
        print(f"  one match, {name}: {cost:,.1f} µs ({cost / allowance:.0%} of what is left)")
    injector = over("ours", "ours without injector")
    print(f"  our injector: {injector:,.1f} µs ({injector / allowance:.0%} of what is left)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

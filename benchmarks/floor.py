"""How far the budgets that fail are from what their work costs at the least (issue 12).

Part one (``--part article``): what the article budget leaves for reading the page, against
the cheapest scans ``re`` makes.

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

Part two (``--part injector``): the same two scans over ``inject.py``'s 1 MB page, against
the naive splice of that page and our injector (the injector budget: at most 2x the naive
splice), interleaved, best of each.

Part three (``--part nonotice``): what the no-notice budget's work costs written flat. The
budget allows our middleware at most 2x a minimal middleware (``article.MinimalWSGI``) on
the no-notice path (a reader in Germany, the constant page). :class:`FlatNoNotice` gives
our middleware's answer for that request, and writes what the application is given
(``compliance.decision``, ``compliance.rendered``), with the library's own steps (the request
pipeline and its memo, the host and path as rules match them, the decision, the counters,
the response's media type, control headers and caching headers) in one function and one
``start_response`` wrapper: no per-request objects, no deferred ``start_response``. It
handles only a reader with nothing to insert and fails otherwise; its headers are checked to
equal ours. Printed: each variant's time and the ratios to the minimal middleware, then what
each layer of ours adds (reading the request, the :class:`~compliance.core.Exchange`,
``begin()``, ``start()``, the adapter's deferred ``start_response``), each timed as the
same steps on fresh objects.

    python benchmarks/floor.py [--part article,injector,nonotice] [--rounds N] [--requests N]
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
import inject  # noqa: E402
import middleware  # noqa: E402
from profile_middleware import _PassThrough  # noqa: E402

import compliance.core  # noqa: E402
from compliance import wsgi  # noqa: E402
from compliance.core import (  # noqa: E402
    _HTML_TYPES,
    _SKIP_HEADER,
    _TAGS_HEADER,
    STATE_DECISION,
    STATE_RENDERED,
    STATE_TAGS,
    Exchange,
    _decision_request,
)
from compliance.geo.chain import locate_request  # noqa: E402
from compliance.http import (  # noqa: E402
    CACHING_HEADERS,
    EnvironHeaders,
    media_type,
    normalize_host,
    normalize_path,
    parse_status,
    private_value,
    target_path,
    vary_value,
)

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


class FlatNoNotice:
    """Our middleware's answer for a reader with nothing to insert, in the fewest steps
    (WSGI): see the module's docstring. Not a middleware to use: anything else fails."""

    def __init__(self, app: Any, ours: wsgi.ComplianceMiddleware) -> None:
        self.app = app
        self.settings, self.engine, self.counters = ours.parts

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        settings = self.settings
        found = locate_request(
            environ.get("REMOTE_ADDR") or None,
            EnvironHeaders(environ),
            proxies=settings.trusted_proxies,
            provider=settings.geo_header,
            geolocator=None,
        )
        location = found.location
        if location.country is None:
            location = self.engine.locate(found.client.ip)
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        host = normalize_host.known(host) or normalize_host(host)
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        path = (target_path(raw) if isinstance(raw, str) else None) or environ["PATH_INFO"]
        path = normalize_path.known(path) or normalize_path(path)
        language = environ.get("HTTP_ACCEPT_LANGUAGE")
        if language is not None and len(language) > 1024:
            language = language[:1024].rpartition(",")[0] or None
        tags = frozenset() if not environ.get(STATE_TAGS) else None
        if tags is None or found.vary or settings.simulate_from is not None:
            raise SystemExit("FlatNoNotice: only a reader with nothing to insert")
        request = _decision_request((host, path, language, tags, None, None))
        decision = self.engine.decide(location=location, request=request)
        environ[STATE_DECISION] = decision
        environ[STATE_RENDERED] = set()
        self.counters.decision(decision)
        if decision.notices or decision.withholds or decision.block or decision.headers:
            raise SystemExit("FlatNoNotice: only a reader with nothing to insert")
        private = settings.cache_policy == "private" and decision.private
        names = decision.vary

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            parse_status(status)
            last: dict[str, str] = {}
            uncached = []
            for pair in headers:
                name = pair[0].lower()
                last[name] = pair[1]
                if name not in CACHING_HEADERS:
                    uncached.append(pair)
            if _TAGS_HEADER in last or _SKIP_HEADER in last or len(last) != len(headers):
                raise SystemExit("FlatNoNotice: only a reader with nothing to insert")
            ctype = last.get("content-type")
            if ctype is not None:
                (media_type.known(ctype) or media_type(ctype))[0] in _HTML_TYPES  # noqa: B015
            out = uncached if private else list(headers)
            if names:
                vary = last.get("vary")
                merged = vary_value(None if vary is None else [vary], names)
                if merged is not None:
                    out = [pair for pair in out if pair[0].lower() != "vary"]
                    out.append(("Vary", merged))
            if private:
                control = last.get("cache-control")
                out.append(("Cache-Control", private_value(None if control is None else [control])))
            return start_response(status, out, exc_info)

        return self.app(environ, start)


def injector_part(repeat: int) -> None:
    page = inject.realistic_page(1024 * 1024)
    chunks = inject.chunks_of(page)
    for name, pattern in SCANS.items():
        if pattern.match(page).end() != len(page):  # type: ignore[union-attr]
            raise SystemExit(f"the {name} scan stopped before the end of the page")

    def scan_with(pattern: re.Pattern[bytes]) -> Callable[[list[bytes]], bytes]:
        def scan(chunks: list[bytes]) -> bytes:
            pattern.match(page)
            return page

        return scan

    runs = [(inject.run_naive, chunks), (inject.run_injector, chunks)]
    runs += [(scan_with(pattern), chunks) for pattern in SCANS.values()]
    naive, injector, *scans = inject.interleaved(runs, repeat)
    print(
        f"inject.py's page ({len(page):,} bytes in {len(chunks)} chunks), interleaved, best of "
        f"{repeat}: naive splice {naive * 1e3:.2f} ms; the injector budget "
        f"({inject.TIME_BUDGET:g}x) leaves {inject.TIME_BUDGET * naive * 1e3:.2f} ms"
    )
    for name, took in zip(SCANS, scans, strict=True):
        print(f"  one match, {name}: {took * 1e3:.2f} ms ({took / naive:.2f}x the naive splice)")
    print(f"  our injector: {injector * 1e3:.2f} ms ({injector / naive:.2f}x)")


def _timed(step: Callable[[], object], n: int, rounds: int) -> float:
    """Best seconds per call of ``step`` over ``rounds`` batches of ``n``."""
    best = float("inf")
    for _ in range(rounds):
        start = middleware.CLOCK()
        for _ in range(n):
            step()
        best = min(best, (middleware.CLOCK() - start) / n)
    return best


def nonotice_part(rounds: int, requests: int) -> None:
    apps = middleware._apps("wsgi", "constant")
    apps["flat"] = FlatNoNotice(apps["bare"], apps["ours"])
    ip = middleware.IN_GERMANY
    runners = {
        name: middleware.wsgi_runner(apps[name], ip) for name in ("bare", "minimal", "flat", "ours")
    }
    answers = {name: runner(1)[1] for name, runner in runners.items()}
    for name, answer in answers.items():
        middleware._check(f"no-notice {name}", answer, notice=False)
    if sorted(answers["flat"][1]) != sorted(answers["ours"][1]):
        raise SystemExit(f"flat and ours differ: {answers['flat'][1]} != {answers['ours'][1]}")
    samples = middleware.interleave(runners, requests, rounds)
    best = {name: min(values) * 1e6 for name, values in samples.items()}
    print(
        f"the no-notice path, WSGI, in process, a reader in Germany, the constant page; "
        f"{rounds} interleaved rounds of {requests} requests (best round of each)"
    )
    print(
        f"  bare {best['bare']:.1f} µs, minimal {best['minimal']:.1f} µs, flat "
        f"{best['flat']:.1f} µs, ours {best['ours']:.1f} µs"
    )
    for name in ("flat", "ours"):
        paired, _ = middleware.ratio(samples, name, "minimal")
        print(
            f"  {name} / minimal: {paired:.2f}x (median of rounds; budget for ours <= "
            f"{middleware.NO_NOTICE_BUDGET:g}x)"
        )
    # What each layer of ours adds, the same steps on fresh objects.
    ours = apps["ours"]
    template = middleware.wsgi_environ(ip)
    headers = list(answers["bare"][1])
    status = answers["bare"][0]
    parts = ours.parts

    def copy() -> object:
        return template.copy()

    def read() -> object:
        return wsgi._request(template.copy())

    def exchange() -> Exchange:
        environ = template.copy()
        return Exchange(*parts, wsgi._request(environ), environ, environ)

    def begin() -> Exchange:
        made = exchange()
        made.begin()
        return made

    def start() -> object:
        return begin().start(parse_status(status)[0], list(headers))

    def whole() -> object:
        result = ours(template.copy(), lambda *_: None)
        for _ in result:
            pass
        return result

    steps = {"copy": copy, "read": read, "exchange": exchange, "begin": begin}
    steps |= {"start": start, "whole": whole}
    n = requests * 4
    cost = {name: _timed(step, n, rounds) * 1e6 for name, step in steps.items()}
    layers = [
        ("reading the request (EnvironHeaders, the target's path)", "read", "copy"),
        ("the Exchange (host, path, shared state)", "exchange", "read"),
        ("begin(): locating, deciding, counting", "begin", "exchange"),
        ("start(): the response headers", "start", "begin"),
        ("the adapter: deferred start_response, the app's call", "whole", "start"),
    ]
    print("  what each layer of ours adds (best of rounds, fresh objects each request):")
    for label, name, base in layers:
        print(f"    {label}: {cost[name] - cost[base]:.1f} µs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part", default="article,injector,nonotice", help="article, injector, nonotice"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=120, help="per round and variant")
    args = parser.parse_args(argv)
    parts = set(args.part.split(","))
    if not parts <= {"article", "injector", "nonotice"}:
        parser.error(f"--part: a list of article, injector and nonotice, not {args.part!r}")
    if "article" in parts:
        article_part(args.rounds, args.requests)
    if "injector" in parts:
        injector_part(max(args.rounds, 30))
    if "nonotice" in parts:
        nonotice_part(args.rounds, max(args.requests, 1000))
    return 0


def article_part(rounds: int, requests: int) -> None:
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
    samples = middleware.interleave(runners, requests, rounds)

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
        f"Russia; medians of {rounds} interleaved rounds of {requests} requests"
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


if __name__ == "__main__":
    sys.exit(main())

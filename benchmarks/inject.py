"""Injector budget (DESIGN.md section 7): time and memory of streaming HTML injection.

Time: a realistic 1 MB page (head with meta, link and script tags; a body of paragraphs with
inline markup, comments and inline scripts whose strings contain ``"</body>"``) is fed to
:class:`compliance.inject.Injector` in 64 KB chunks with a ``body_end`` notice. The baseline is
the naive splice that also reads the whole body::

    body = b"".join(chunks); i = body.rfind(b"</body>"); body[:i] + snippet + body[i:]

Best of N runs each, separately and interleaved; the budget (DESIGN.md section 7) is
injector <= 2x baseline on the worse of the two, pure Python. The minor page faults of one
run of each, both ways, are printed too: interleaved, the memory the naive splice's
megabyte buffers gave back is touched again by the injector's output (and the other way
round), which is most of the difference between the two ways.

Withholding (issue 18): the same page through the one-pass editor with a rule that marks
tokens and embed hosts (none of which occur: the cost of looking), and with 1% of the
paragraphs marked and the block images on a withheld host (the cost of removing), each
relative to the notice-only injector. Printed, no budget.

Inline SVG: a page with an SVG chart of 2,000 bars (each a ``<g>`` around a ``<rect>``, a
``<text>`` and a ``<title>``) and 500 icons, the injector against the naive splice. Printed,
no budget.

Memory: a generated 100 MB body is streamed through the injector in 64 KB chunks while
tracemalloc records the peak; the budget is under 10 MB above the baseline (the chunk being
fed), i.e. memory does not grow with the body.

Run: ``python benchmarks/inject.py [--repeat N] [--stream-mb M]``; exits 1 when a budget fails.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compliance.html.withhold import Withhold
from compliance.inject import Injector, PageInfo, Placement

CHUNK = 64 * 1024
SNIPPET = '<aside class="compliance-notice" data-compliance-rule="bench" role="note">N</aside>'
TIME_BUDGET = 2.0
MEMORY_BUDGET = 10 * 1024 * 1024

HEAD = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Benchmark page &mdash; news</title>
<link rel="stylesheet" href="/static/site.css?v=3" nonce="abc123">
<link rel="icon" href="/favicon.ico">
<script nonce="abc123" src="/static/app.js" defer></script>
<script nonce="abc123">window.dataLayer = window.dataLayer || []; var tail = "</body>";</script>
<style>body { font: 16px/1.5 sans-serif } .x > p { margin: 0 }</style>
</head>
<body class="page news">
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav></header>
<main>
"""

PARAGRAPH = (
    b'<p class="lead" data-id="%d">Lorem ipsum dolor sit amet, <a href="/article/%d?ref=home" '
    b'title="Read &quot;more&quot; &gt; here">consectetur</a> adipiscing elit, sed do eiusmod '
    b"tempor incididunt ut <strong>labore et dolore</strong> magna aliqua. Ut enim ad minim "
    b"veniam, quis nostrud <em>exercitation</em> ullamco laboris nisi ut aliquip ex ea commodo "
    b"consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum.</p>\n"
)
BLOCK = (
    b'<div class="card"><img src="/img/%d.jpg" alt="photo 1 > 0" width="320" height="200">'
    b"<h2>Story %d</h2></div>\n"
    b"<!-- card end: </body> is not here -->\n"
    b'<script>document.write("<div>" + "</body>" + "</div>"); if (a < b && c > d) {}</script>\n'
)
TAIL = b"</main>\n<footer><p>&copy; 2024</p></footer>\n</body>\n</html>\n"


def realistic_page(size: int) -> bytes:
    parts = [HEAD]
    total = len(HEAD) + len(TAIL)
    i = 0
    while total < size:
        piece = PARAGRAPH % (i, i) if i % 5 else BLOCK % (i, i)
        parts.append(piece)
        total += len(piece)
        i += 1
    parts.append(TAIL)
    return b"".join(parts)


def chunks_of(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def render(page: PageInfo) -> dict[Placement, str]:
    return {"body_end": SNIPPET}


def run_injector(chunks: list[bytes]) -> bytes:
    injector = Injector(render)
    out = [injector.feed(chunk) for chunk in chunks]
    out.append(injector.finish())
    return b"".join(out)


WITHHOLD = Withhold.of(
    {"order-7": "court-order"},
    lambda host: "sanctions" if host.endswith("rt.com") else None,
    lambda rule: f'<aside class="compliance-withheld" data-compliance-rule="{rule}">W</aside>',
    hosts=["*rt.com"],  # (as the middleware tells it the hosts its rules name)
)


def run_withholding(chunks: list[bytes]) -> bytes:
    injector = Injector(render, withhold=WITHHOLD)
    out = [injector.feed(chunk) for chunk in chunks]
    out.append(injector.finish())
    return b"".join(out)


def marked_page(size: int) -> bytes:
    """The realistic page with every 100th paragraph marked and the card images on a
    withheld host."""
    page = realistic_page(size)
    parts = page.split(b'<p class="lead"')
    for k in range(1, len(parts), 100):
        parts[k] = b' data-compliance-withhold="order-7"' + parts[k]
    page = b'<p class="lead"'.join(parts)
    return page.replace(b'<img src="/img/', b'<img src="https://cdn.rt.com/img/')


def chart_page() -> bytes:
    """The realistic page's head and tail around an SVG chart and a row of icons."""
    bars = b"".join(
        b'<g class="bar"><rect x="%d" y="%d" width="3" height="40" fill="#1f77b4"></rect>'
        b'<text x="%d" y="60">%d</text><title>Week %d: %d</title></g>\n' % (i, i % 50, i, i, i, i)
        for i in range(2000)
    )
    icon = b'<svg class="icon" viewBox="0 0 24 24"><path d="M4 4h16v16H4z"/><!-- i --></svg>\n'
    chart = (
        b'<figure><svg viewBox="0 0 2000 100" role="img"><defs><linearGradient id="g">'
        b'<stop offset="0"/><stop offset="1"/></linearGradient></defs>\n'
        + bars
        + b"</svg><figcaption>Weekly counts</figcaption></figure>\n"
    )
    return HEAD + PARAGRAPH % (1, 1) + chart + icon * 500 + TAIL


def run_naive(chunks: list[bytes]) -> bytes:
    snippet = SNIPPET.encode()
    body = b"".join(chunks)
    i = body.rfind(b"</body>")
    return body[:i] + snippet + body[i:]


def page_faults(fn: Callable[[list[bytes]], bytes], chunks: list[bytes]) -> int:
    """Minor page faults during one call (memory the allocator had given back, touched again)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn(chunks)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def best_of(fn: Callable[[list[bytes]], bytes], chunks: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(chunks)
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(
    runs: list[tuple[Callable[[list[bytes]], bytes], list[bytes]]], repeat: int
) -> list[float]:
    """The best time of each run, the runs taking turns ``repeat`` times."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for k, (fn, chunks) in enumerate(runs):
            best[k] = min(best[k], best_of(fn, chunks, 1))
    return best


def streamed_body(total: int) -> Iterator[bytes]:
    """A generated body of ``total`` bytes, produced chunk by chunk (never held whole)."""
    block = realistic_page(CHUNK * 4)
    body = block[len(HEAD) : -len(TAIL)]
    yield HEAD
    sent = len(HEAD)
    while sent < total:
        for chunk in chunks_of(body):
            yield chunk
            sent += len(chunk)
    yield TAIL


def peak_stream_memory(total: int) -> tuple[int, int]:
    """Peak traced bytes while streaming, and the peak of generating the chunks alone."""
    tracemalloc.start()
    for _chunk in streamed_body(total):
        pass
    _, baseline = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    injector = Injector(render)
    size = 0
    for chunk in streamed_body(total):
        size += len(injector.feed(chunk))
    size += len(injector.finish())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert injector.inserted, "the notice was not inserted"
    return peak, baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--stream-mb", type=int, default=100)
    args = parser.parse_args(argv)

    page = realistic_page(1024 * 1024)
    chunks = chunks_of(page)
    assert run_injector(chunks) == run_naive(chunks), "injector and naive splice disagree"
    # Two ways of timing, since they disagree here by more than the budget's margin: each
    # function best-of-N on its own (caches warm for it), and the two interleaved (sharing
    # caches and the allocator, as in a server). The budget is judged on the worse ratio.
    naive = best_of(run_naive, chunks, args.repeat)
    injector = best_of(run_injector, chunks, args.repeat)
    mixed_naive, mixed_injector = interleaved(
        [(run_naive, chunks), (run_injector, chunks)], args.repeat
    )
    ratio = injector / naive
    mixed_ratio = mixed_injector / mixed_naive
    time_ok = max(ratio, mixed_ratio) <= TIME_BUDGET
    print(f"page: {len(page):,} bytes in {len(chunks)} chunks of {CHUNK:,}; pure Python")
    print(
        f"separately:  naive splice {naive * 1e3:7.3f} ms, injector {injector * 1e3:7.3f} ms, "
        f"{ratio:5.2f}x (best of {args.repeat} each)"
    )
    print(
        f"interleaved: naive splice {mixed_naive * 1e3:7.3f} ms, injector "
        f"{mixed_injector * 1e3:7.3f} ms, {mixed_ratio:5.2f}x"
    )
    # Why the two disagree: after the naive splice frees its megabyte buffers, the allocator
    # has given memory back, and the injector's per-chunk output touches it again.
    run_naive(chunks)
    apart_naive = page_faults(run_naive, chunks)
    run_injector(chunks)
    apart_injector = page_faults(run_injector, chunks)
    run_naive(chunks)
    mixed_injector_faults = page_faults(run_injector, chunks)  # after a naive splice
    mixed_naive_faults = page_faults(run_naive, chunks)  # after an injector run
    print(
        f"minor page faults per run: separately naive {apart_naive}, injector {apart_injector}; "
        f"interleaved naive {mixed_naive_faults}, injector {mixed_injector_faults}"
    )
    print(
        f"ratio:       {max(ratio, mixed_ratio):5.2f}x, the worse of the two "
        f"(budget {TIME_BUDGET:.1f}x) {'PASS' if time_ok else 'FAIL'}"
    )

    marked = chunks_of(marked_page(1024 * 1024))
    assert run_withholding(chunks) == run_injector(chunks)
    notices, looking, removing = interleaved(
        [(run_injector, chunks), (run_withholding, chunks), (run_withholding, marked)],
        args.repeat,
    )
    print(
        f"withholding: notice-only {notices * 1e3:7.3f} ms; with a withholding rule, nothing "
        f"to remove {looking * 1e3:7.3f} ms ({looking / notices:4.2f}x), removing 1% of the "
        f"paragraphs and every card image {removing * 1e3:7.3f} ms ({removing / notices:4.2f}x)"
    )

    svg = chart_page()
    svg_chunks = chunks_of(svg)
    assert run_injector(svg_chunks) == run_naive(svg_chunks), "injector and splice disagree"
    svg_naive, svg_injector = interleaved(
        [(run_naive, svg_chunks), (run_injector, svg_chunks)], args.repeat
    )
    print(
        f"inline SVG:  {len(svg):,} bytes (a 2,000-bar chart, 500 icons): naive splice "
        f"{svg_naive * 1e3:7.3f} ms, injector {svg_injector * 1e3:7.3f} ms, "
        f"{svg_injector / svg_naive:5.2f}x (interleaved; no budget)"
    )

    peak, baseline = peak_stream_memory(args.stream_mb * 1024 * 1024)
    extra = peak - baseline
    memory_ok = extra < MEMORY_BUDGET
    print(
        f"streaming {args.stream_mb} MB: peak {peak / 2**20:.2f} MiB, baseline "
        f"{baseline / 2**20:.2f} MiB, extra {extra / 2**20:.2f} MiB "
        f"(budget {MEMORY_BUDGET / 2**20:.0f} MiB) {'PASS' if memory_ok else 'FAIL'}"
    )
    return 0 if time_ok and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())

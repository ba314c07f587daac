"""A Prometheus collector over the middleware's counters (``pip install prometheus-client``).

::

    from prometheus_client import REGISTRY
    from compliance.contrib.prometheus import ComplianceCollector

    app = ComplianceMiddleware(app, engine)                  # WSGI or ASGI
    REGISTRY.register(ComplianceCollector(app))

A source is anything with a ``metrics()`` method returning a
:class:`compliance.metrics.Snapshot` (the WSGI and ASGI middlewares, the Flask extension's
``middleware``), a :class:`compliance.metrics.Metrics`, or a callable returning a snapshot
(``compliance.contrib.django.metrics``, ``compliance.contrib.starlette.metrics`` for a
middleware added with ``app.add_middleware``). Several sources are added up. The counters are read
when Prometheus scrapes, nothing is counted twice, and the library itself never imports
``prometheus_client``. Behind several worker processes, :class:`MultiProcessWriter` writes
each one's counters to prometheus_client's multiprocess files instead.

Metrics (all counters; Prometheus appends ``_total``):

========================================  ==========  ========================================
``compliance_decisions``                  --          decisions made
``compliance_decisions_with_notices``     --          decisions with at least one notice
``compliance_notices_injected``           rule,       notices put into pages
                                          country
``compliance_blocks``                     rule        451 pages served
``compliance_notices_not_delivered``      cause       notices owed but not delivered
``compliance_notices_skipped``            reason      notices left out on purpose (fragments)
``compliance_pages_cut``                  cause       pages cut or refused, no notice lost
``compliance_withheld``                   rule        elements withheld from pages
``compliance_faults``                     cause       library faults (fail mode applied)
``compliance_reloads``                    result      rule and database reloads
========================================  ==========  ========================================
"""

from __future__ import annotations

import atexit
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from compliance.contrib import merge_snapshots as merge
from compliance.contrib import reloads_once_per_engine
from compliance.core import log_fault
from compliance.errors import ConfigurationError
from compliance.metrics import Metrics, Snapshot

__all__ = ["ComplianceCollector", "MultiProcessWriter", "merge"]

Source = Callable[[], Snapshot]

_LABELLED: tuple[tuple[str, str, str, Callable[[Snapshot], dict[str, int]]], ...] = (
    # metric name, label, help, the counter in a snapshot
    (
        "compliance_blocks",
        "rule",
        "451 block pages served, by rule.",
        lambda s: s["blocks"],
    ),
    (
        "compliance_notices_not_delivered",
        "cause",
        "Notices a decision required that did not reach the page (fail mode applied), by cause.",
        lambda s: s["notices_not_delivered"],
    ),
    (
        "compliance_pages_cut",
        "cause",
        "Pages the fail mode ended without losing a notice (cut, or refused), by cause.",
        lambda s: s["pages_cut"],
    ),
    (
        "compliance_notices_skipped",
        "reason",
        "Notices left out on purpose (fragments, empty bodies, X-Compliance-Skip), by reason.",
        lambda s: s["notices_skipped"],
    ),
    (
        "compliance_withheld",
        "rule",
        "Elements withheld from pages, by rule.",
        lambda s: s["withheld"],
    ),
    (
        "compliance_faults",
        "cause",
        "Library faults, by where they happened.",
        lambda s: s["faults"],
    ),
    (
        "compliance_reloads",
        "result",
        "Rule and database reloads, by result.",
        lambda s: s["reloads"],
    ),
)


def _engine_of(source: Any) -> object | None:
    """The engine whose reloads a middleware's snapshot carries (a Django middleware's is
    in its core), or None."""
    engine = getattr(source, "engine", None)
    if engine is None:
        engine = getattr(getattr(source, "core", None), "engine", None)
    return engine


_SOURCES = (
    "a metrics source is a middleware (with metrics()), a compliance.metrics.Metrics or "
    "a callable returning a snapshot"
)


def _as_source(source: Any) -> Source:
    if isinstance(source, Metrics):
        return source.snapshot
    method = getattr(source, "metrics", None)
    found: Source
    if callable(method):
        found = method
    elif callable(source):
        found = source
    else:
        raise TypeError(f"{_SOURCES}, not {type(source).__name__}")
    # Asked once now: an application given for its middleware (callable too) would fail at
    # every scrape instead, and with it the whole exposition.
    try:
        snapshot: object = found()
    except Exception as exc:
        raise TypeError(f"{_SOURCES}; {source!r} failed when asked for one ({exc})") from None
    if inspect.iscoroutine(snapshot):
        snapshot.close()
    if not isinstance(snapshot, Mapping) or not Snapshot.__required_keys__ <= snapshot.keys():
        raise TypeError(f"{_SOURCES}; {source!r} returned {type(snapshot).__name__}")
    return found


class ComplianceCollector(Collector):
    """Exposes the counters of one or more middlewares to a Prometheus registry."""

    def __init__(self, *sources: Any) -> None:
        if not sources:
            raise TypeError("give at least one metrics source (a middleware, say)")
        self._sources = [(_as_source(source), _engine_of(source)) for source in sources]

    def describe(self) -> Iterable[Metric]:
        # Names and labels only, so registering checks for clashes without a scrape.
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        # Several middlewares over one engine share its reloads: counted once.
        snapshots = reloads_once_per_engine((source(), engine) for source, engine in self._sources)
        return list(self._families(merge(snapshots)))

    def _families(self, snapshot: Snapshot | None) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "compliance_decisions", "Decisions made (one per request the middleware saw)."
        )
        with_notices = CounterMetricFamily(
            "compliance_decisions_with_notices", "Decisions with at least one notice."
        )
        injected = CounterMetricFamily(
            "compliance_notices_injected",
            "Notices put into pages, by rule and reader's country.",
            labels=["rule", "country"],
        )
        if snapshot is not None:
            decisions.add_metric([], snapshot["decisions"])
            with_notices.add_metric([], snapshot["decisions_with_notices"])
            for key, count in sorted(snapshot["notices_injected"].items()):
                rule, _, country = key.partition("|")
                injected.add_metric([rule, country or "unknown"], count)
        yield decisions
        yield with_notices
        yield injected
        for name, label, text, pick in _LABELLED:
            family = CounterMetricFamily(name, text, labels=[label])
            if snapshot is not None:
                for value, count in sorted(pick(snapshot).items()):
                    family.add_metric([value], count)
            yield family


_MULTIPROCESS_DIR = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


class MultiProcessWriter:
    """The counters of this process's sources, written every ``interval`` seconds to the
    files of prometheus_client's multiprocess mode, which its ``MultiProcessCollector``
    adds up over every worker process (gunicorn, uWSGI): a scrape, whichever worker answers
    it, then sees the whole server.

    ``sources`` are those of :class:`ComplianceCollector`. Needs ``PROMETHEUS_MULTIPROC_DIR``
    set before ``prometheus_client`` is imported; made in the server's master before it
    forks (gunicorn ``--preload``), it goes on writing in each worker. Each write adds what
    was counted since the last one; a worker's counts stay in its file after it exits, as
    prometheus_client's own counters' do, so the totals never go back. :meth:`close` writes
    a last time (at interpreter exit too).
    """

    def __init__(self, *sources: Any, interval: float = 5.0) -> None:
        if not any(name in os.environ for name in _MULTIPROCESS_DIR):
            raise ConfigurationError(
                "MultiProcessWriter needs prometheus_client's multiprocess mode: set "
                "PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported"
            )
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ConfigurationError(
                f"interval must be a number of seconds above 0, not {interval!r}"
            )
        self._collector = ComplianceCollector(*sources)
        self._interval = float(interval)
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._written: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start()
        # No fork in the middle of a write (prometheus_client's lock would stay held in the
        # child); in a forked worker the thread is gone: start another one there. (Held
        # strongly: a worker of gunicorn --preload has nothing else referring to it.)
        os.register_at_fork(
            before=lambda: self._lock.acquire(),
            after_in_parent=lambda: self._lock.release(),
            after_in_child=self._forked,
        )
        atexit.register(self._at_exit)

    def _start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="compliance-prometheus-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.write()
            except Exception:  # a source that fails: logged (once a minute), tried again
                log_fault("metrics writer")

    def write(self) -> None:
        """Add to the files what was counted since the last write."""
        with self._lock:
            for family in self._collector.collect():
                for sample in family.samples:
                    key = (family.name, tuple(sorted(sample.labels.items())))
                    delta = sample.value - self._written.get(key, 0.0)
                    # Less than written: a source was reset (a callable of the site's that
                    # counts afresh; the process-wide sums never go down); its new counts
                    # are added from here.
                    self._written[key] = sample.value
                    counter = self._counter(family.name, family.documentation, sample.labels)
                    if sample.labels and delta > 0:
                        counter.labels(**sample.labels).inc(delta)
                    elif not sample.labels:  # shown from the start, at 0
                        counter.inc(max(delta, 0.0))

    def _counter(self, name: str, text: str, labels: dict[str, str]) -> Counter:
        counter = self._counters.get(name)
        if counter is None:
            # Not registered in-process: MultiProcessCollector reads the files.
            counter = Counter(name, text, labelnames=sorted(labels), registry=None)
            self._counters[name] = counter
        return counter

    def _forked(self) -> None:
        # A new lock: the one the parent's hook took, or one in an unknown state when the
        # fork ran no such hook (a server that forks in C).
        self._lock = threading.Lock()
        if not self._stop.is_set():
            self._start()

    def _at_exit(self) -> None:
        if not self._stop.is_set():
            self.close()

    def close(self) -> None:
        """Stop writing, after a last write."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.write()

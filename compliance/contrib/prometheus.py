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
``prometheus_client``.

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

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from compliance.contrib import merge_snapshots as merge
from compliance.contrib import reloads_once_per_engine
from compliance.metrics import Metrics, Snapshot

__all__ = ["ComplianceCollector", "merge"]

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


def _as_source(source: Any) -> Source:
    if isinstance(source, Metrics):
        return source.snapshot
    method = getattr(source, "metrics", None)
    if callable(method):
        return method  # type: ignore[no-any-return]
    if callable(source):
        return source  # type: ignore[no-any-return]
    raise TypeError(
        "a metrics source is a middleware (with metrics()), a compliance.metrics.Metrics or "
        f"a callable returning a snapshot, not {type(source).__name__}"
    )


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

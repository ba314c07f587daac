"""Counters a middleware keeps: decisions, notices injected, blocks, notices not delivered,
faults and reloads. Plain numbers, no dependency; ``compliance.contrib.prometheus`` exposes
them to Prometheus.

>>> metrics = Metrics()
>>> metrics.undelivered("content-coding")
>>> metrics.snapshot()["notices_not_delivered"]
{'content-coding': 1}
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypedDict, runtime_checkable

__all__ = ["Metrics", "Snapshot", "Totals", "counted", "merge_snapshots"]

_MAX_KEYS = 4096  # distinct label values kept per counter: rule ids and causes are few


class _DecisionLike(Protocol):  # pragma: no cover - typing only
    @property
    def block(self) -> object: ...
    @property
    def notices(self) -> tuple[object, ...]: ...


def _read(counter: itertools.count[int]) -> int:
    """How far an ``itertools.count()`` has counted, without advancing it (its repr is
    ``count(N)``; pickling it, the other way, is deprecated)."""
    return int(repr(counter)[6:-1])


class Snapshot(TypedDict):
    """A copy of the counters at one moment."""

    decisions: int
    """Decisions made (one per request that reached the middleware, more when response
    tags asked for a new one)."""
    decisions_with_notices: int
    notices_injected: dict[str, int]
    """By ``"RULE_ID|COUNTRY"`` (country ``"unknown"`` when not known)."""
    blocks: dict[str, int]
    """Block pages served, by rule id."""
    notices_not_delivered: dict[str, int]
    """Notices (one count each) a decision called for that are not in the page, by cause:
    ``content-coding``, ``range``, ``encoding``, ``body too large``, ``not inserted``,
    ``server file``, ``withhold uncertain``, ``frameset document``, ``restarted``,
    ``fault``."""
    pages_cut: dict[str, int]
    """Pages the fail mode ended without losing a notice, by cause: cut where they were
    after their headers went out (the notices still due put in), or refused (503) when no
    notice was due (content to withhold only)."""
    withheld: dict[str, int]
    """Elements withheld from pages, by rule id."""
    notices_skipped: dict[str, int]
    """Responses whose notices were legitimately left out, by reason: ``fragment``,
    ``empty body``, ``x-compliance-skip``, ``rendered by the page``, ``edge``."""
    faults: dict[str, int]
    """Library faults, by where they happened."""
    reloads: dict[str, int]
    """Rule and database reloads, by result (``ok``, ``failed``)."""


_LABELLED = (
    "notices_injected",
    "blocks",
    "notices_not_delivered",
    "pages_cut",
    "notices_skipped",
    "withheld",
    "faults",
    "reloads",
)
"""The counters of a snapshot kept by label value."""


def _labelled(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    return {
        "notices_injected": snapshot["notices_injected"],
        "blocks": snapshot["blocks"],
        "notices_not_delivered": snapshot["notices_not_delivered"],
        "pages_cut": snapshot["pages_cut"],
        "notices_skipped": snapshot["notices_skipped"],
        "withheld": snapshot["withheld"],
        "faults": snapshot["faults"],
        "reloads": snapshot["reloads"],
    }


def _snapshot(
    decisions: int, with_notices: int, labelled: Mapping[str, Mapping[str, int]]
) -> Snapshot:
    """A snapshot of these counts (the labelled ones copied)."""
    return Snapshot(
        decisions=decisions,
        decisions_with_notices=with_notices,
        notices_injected=dict(labelled["notices_injected"]),
        blocks=dict(labelled["blocks"]),
        notices_not_delivered=dict(labelled["notices_not_delivered"]),
        pages_cut=dict(labelled["pages_cut"]),
        notices_skipped=dict(labelled["notices_skipped"]),
        withheld=dict(labelled["withheld"]),
        faults=dict(labelled["faults"]),
        reloads=dict(labelled["reloads"]),
    )


class _Counts:
    """What a :class:`Metrics` has counted, in an object of its own: a :class:`Totals`
    reads it to the last count once the Metrics (and the middleware and responses that
    counted into it) are gone."""

    __slots__ = ("counters", "decisions", "earlier", "lock", "with_notices")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Decisions are counted on every request: itertools.count advances atomically
        # (in C), so the hot path takes no lock; _read tells its value.
        self.decisions = itertools.count()
        self.with_notices = itertools.count()
        self.earlier = (0, 0)  # decisions and those with notices added from elsewhere
        self.counters: dict[str, Counter[str]] = {name: Counter() for name in _LABELLED}

    def count(self, counter: str, key: str, count: int) -> None:
        """Add ``count`` to ``key`` (the lock held), beyond the bound to ``other``."""
        found = self.counters[counter]
        if key in found or len(found) < _MAX_KEYS:
            found[key] += count
        else:
            found["other"] += count

    def add(self, snapshot: Snapshot) -> None:
        """Add the counts of ``snapshot`` (those of a middleware gone)."""
        with self.lock:
            decisions, with_notices = self.earlier
            self.earlier = (
                decisions + snapshot["decisions"],
                with_notices + snapshot["decisions_with_notices"],
            )
            for name, counts in _labelled(snapshot).items():
                for key, count in counts.items():
                    self.count(name, key, count)

    def snapshot(self) -> Snapshot:
        # A decision is counted before it is counted as having notices: reading those with
        # notices first, no snapshot has more of them than decisions.
        with_notices = _read(self.with_notices)
        decisions = _read(self.decisions)
        with self.lock:
            earlier_decisions, earlier_with_notices = self.earlier
            return _snapshot(
                decisions + earlier_decisions, with_notices + earlier_with_notices, self.counters
            )


class Metrics:
    """Thread-safe counters; :meth:`snapshot` copies them."""

    def __init__(self) -> None:
        self._counts = _Counts()

    def _add(self, counter: str, key: str, count: int = 1) -> None:
        counts = self._counts
        with counts.lock:
            counts.count(counter, key, count)

    def decision(self, decision: _DecisionLike) -> None:
        counts = self._counts
        next(counts.decisions)
        if decision.notices:
            next(counts.with_notices)

    def injected(self, rule_id: str, country: str | None) -> None:
        self._add("notices_injected", f"{rule_id}|{country or 'unknown'}")

    def block(self, rule_id: str) -> None:
        self._add("blocks", rule_id)

    def undelivered(self, cause: str, count: int = 1) -> None:
        """``count`` notices a decision called for are not in the page, for ``cause``."""
        self._add("notices_not_delivered", cause, count)

    def cut(self, cause: str) -> None:
        """The fail mode ended a page without losing a notice, for ``cause``."""
        self._add("pages_cut", cause)

    def withheld(self, rule_id: str) -> None:
        self._add("withheld", rule_id)

    def skipped(self, reason: str) -> None:
        self._add("notices_skipped", reason)

    def fault(self, where: str) -> None:
        self._add("faults", where)

    def reload(self, result: str) -> None:
        self._add("reloads", result)

    def snapshot(self) -> Snapshot:
        """The counters now (copies; later counting does not change them)."""
        return self._counts.snapshot()


@runtime_checkable
class _CountsReloads(Protocol):
    def reload_counts(self) -> Mapping[str, int]: ...


def counted(counters: Metrics, engine: object) -> Snapshot:
    """A middleware's counters now, with its engine's rule and database reloads when the
    engine counts them (as :class:`compliance.Engine` does)."""
    snapshot = counters.snapshot()
    if isinstance(engine, _CountsReloads):
        snapshot["reloads"] = dict(engine.reload_counts())
    return snapshot


def merge_snapshots(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The sum of several snapshots (several middlewares, or worker threads' own).

    >>> one = Metrics()
    >>> one.block("r")
    >>> merge_snapshots([one.snapshot(), one.snapshot()])["blocks"]
    {'r': 2}
    """
    decisions = with_notices = 0
    labelled: dict[str, Counter[str]] = {name: Counter() for name in _LABELLED}
    for snapshot in snapshots:
        decisions += snapshot["decisions"]
        with_notices += snapshot["decisions_with_notices"]
        for name, counts in _labelled(snapshot).items():
            labelled[name].update(counts)
    return _snapshot(decisions, with_notices, labelled)


class Totals:
    """The counters of a changing set of middlewares added up: every Django middleware of
    the process, every ASGI middleware a framework made out of the site's reach.

    Prometheus takes a counter that goes down for a reset, so no sum here goes down: the
    middlewares are not kept alive (Django's test client makes one per client, a framework
    reloading makes new ones), but when one is gone, its counts (to the last response
    that counted into them) move into a total kept for those gone, and so do the reloads
    of an engine gone. That total keeps at most 4,096 label values per counter, as a
    middleware's counters do (more are added up under ``other``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counting: dict[int, tuple[_Counts, object]] = {}
        """The counts of each middleware's :class:`Metrics` still here (by ``id`` of
        those counts), with its engine."""
        self._gone: deque[int] = deque()
        """Keys of ``_counting`` whose Metrics is gone, to move into ``_retired``."""
        self._engines: dict[int, tuple[Callable[[], object], dict[str, int]]] = {}
        """Engines that count reloads, by ``id``: a reference, their last counts read."""
        self._retired = _Counts()

    def add(self, counters: Metrics, engine: object) -> None:
        """Count in a middleware's ``counters``, and the reloads of its ``engine``."""
        counts = counters._counts
        key = id(counts)
        with self._lock:
            if key in self._counting:  # already counted in
                return
            self._counting[key] = (counts, engine)
            if isinstance(engine, _CountsReloads):
                self._engine(engine)
            # Told from a finalizer, as the garbage collector may run anywhere, in any
            # thread: it takes no lock that thread could hold (see _settle).
            finalizer = weakref.finalize(counters, self._retire, key)
            finalizer.atexit = False
        self._settle()

    def snapshot(self) -> Snapshot:
        """The counters of every middleware added, those gone included, added up, and each
        engine's reloads once."""
        with self._lock:
            self._drain()
            parts = [self._retired.snapshot()]
            for counts, engine in self._counting.values():
                part = counts.snapshot()
                if isinstance(engine, _CountsReloads):
                    part["reloads"] = {}  # the engine's: below, once
                parts.append(part)
            reloads: Counter[str] = Counter()
            for key in self._engines:
                reloads.update(self._read(key))
            parts.append(_reloads_only(dict(reloads)))
        self._settle()
        return merge_snapshots(parts)

    def _engine(self, engine: _CountsReloads) -> None:
        key = id(engine)
        known = self._engines.get(key)
        if known is not None and known[0]() is engine:
            return
        if known is not None:  # an engine gone, its id taken by this one
            self._retire_reloads(known[1])
        reference: Callable[[], object]
        try:
            reference = weakref.ref(engine)
        except TypeError:  # an engine that cannot be referred to weakly: held, so it stays
            reference = itertools.repeat(engine).__next__  # (a function returning it)
        self._engines[key] = (reference, {})

    def _read(self, key: int) -> dict[str, int]:
        """The reloads of an engine: now if it is still here, else as last read."""
        reference, last = self._engines[key]
        engine = reference()
        if isinstance(engine, _CountsReloads):
            last = dict(engine.reload_counts())
            self._engines[key] = (reference, last)
        return last

    def _retire(self, key: int) -> None:
        self._gone.append(key)
        self._settle()

    def _settle(self) -> None:
        """Move the counts of the middlewares gone to the retired total, unless another
        thread holds the lock (this one too, when the garbage collector ran while it did):
        that thread does it when it lets go."""
        while self._gone and self._lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._lock.release()

    def _drain(self) -> None:
        while self._gone:
            counts, engine = self._counting.pop(self._gone.popleft())
            retired = counts.snapshot()
            if isinstance(engine, _CountsReloads):
                retired["reloads"] = {}
                self._read(id(engine))  # its last counts, while it is surely here
            self._retired.add(retired)
        for key, (reference, last) in list(self._engines.items()):
            if reference() is None:
                del self._engines[key]
                self._retire_reloads(last)

    def _retire_reloads(self, reloads: dict[str, int]) -> None:
        self._retired.add(_reloads_only(reloads))


def _reloads_only(reloads: dict[str, int]) -> Snapshot:
    snapshot = merge_snapshots(())
    snapshot["reloads"] = reloads
    return snapshot

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
from collections import Counter
from collections.abc import Mapping
from typing import Protocol, TypedDict

__all__ = ["Metrics", "Snapshot"]

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


class Metrics:
    """Thread-safe counters; :meth:`snapshot` copies them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Decisions are counted on every request: itertools.count advances atomically
        # (in C), so the hot path takes no lock; _read tells its value.
        self._decisions = itertools.count()
        self._with_notices = itertools.count()
        self._counters: dict[str, Counter[str]] = {
            name: Counter()
            for name in (
                "notices_injected",
                "blocks",
                "notices_not_delivered",
                "pages_cut",
                "notices_skipped",
                "withheld",
                "faults",
                "reloads",
            )
        }

    def _add(self, counter: str, key: str, count: int = 1) -> None:
        with self._lock:
            found = self._counters[counter]
            if key in found or len(found) < _MAX_KEYS:
                found[key] += count
            else:
                found["other"] += count

    def decision(self, decision: _DecisionLike) -> None:
        next(self._decisions)
        if decision.notices:
            next(self._with_notices)

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
        # A decision is counted before it is counted as having notices: reading those with
        # notices first, no snapshot has more of them than decisions.
        with_notices = _read(self._with_notices)
        decisions = _read(self._decisions)
        with self._lock:
            counters: Mapping[str, Counter[str]] = self._counters
            return Snapshot(
                decisions=decisions,
                decisions_with_notices=with_notices,
                notices_injected=dict(counters["notices_injected"]),
                blocks=dict(counters["blocks"]),
                notices_not_delivered=dict(counters["notices_not_delivered"]),
                pages_cut=dict(counters["pages_cut"]),
                notices_skipped=dict(counters["notices_skipped"]),
                withheld=dict(counters["withheld"]),
                faults=dict(counters["faults"]),
                reloads=dict(counters["reloads"]),
            )

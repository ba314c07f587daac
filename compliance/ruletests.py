"""Running the ``tests:`` written beside rules (``compliance test``, and under pytest)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .decision import Decision
from .engine import Engine
from .errors import ComplianceFault, one_line
from .geo import UNKNOWN, Location
from .loader import LoadedTest
from .locales import locale_key
from .models import Expect

__all__ = ["TestOutcome", "run_rule_tests"]


@dataclass(frozen=True)
class TestOutcome:
    """The result of one rule test: what failed (nothing when it passed)."""

    __test__ = False  # not a pytest test class

    test: LoadedTest
    failures: tuple[str, ...]
    decision: Decision | None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def title(self) -> str:
        owner = f"rule '{self.test.rule_id}', " if self.test.rule_id else ""
        return one_line(f"{self.test.where}: {owner}test '{self.test.test.name}'")

    def report(self, *, trace: bool = True) -> str:
        """A readable account of the failure, with the decision's trace."""
        lines = [f"{self.title}: FAILED"]
        lines += [f"  - {failure}" for failure in self.failures]
        if trace and self.decision is not None:
            location = self.decision.location
            where = "/".join([location.country or "unknown", *location.subdivisions])
            lines.append(f"  location: {where} (source: {location.source})")
            lines += [f"  trace: {entry}" for entry in self.decision.trace]
        return "\n".join(lines)


def reader_location(engine: Engine, loaded: LoadedTest) -> Location:
    """The test reader's location: geolocated by address, or as written."""
    reader = loaded.test.reader
    if reader.ip is not None:
        return engine.locate(reader.ip)
    if reader.country is not None:
        return Location(
            country=reader.country, subdivisions=tuple(reader.subdivisions), source="test"
        )
    return UNKNOWN


def _with_variables(engine: Engine, loaded: LoadedTest) -> Engine:
    """``engine``, or one over the same rules with the test's site-wide variables."""
    given = loaded.test.request.variables
    if not given:
        return engine
    variables = {**engine.variables, **given}
    return Engine(engine.ruleset, engine.geolocator, variables=variables, warn=False)


def _render_failures(decision: Decision) -> list[str]:
    """Every notice, block and placeholder that applies must render (a required variable
    the site has not set makes it a fault in production)."""
    failures: list[str] = []
    rendering: list[tuple[str, Callable[[], object]]] = [
        (f"notice '{n.rule_id}'", n.text) for n in decision.notices
    ]
    if decision.block is not None:
        rendering.append((f"block '{decision.block.rule_id}'", decision.block.text))
    rendering += [(f"placeholder of '{w.rule_id}'", w.text) for w in decision.withholds]
    for what, render in rendering:
        try:
            render()
        except ComplianceFault as exc:
            failures.append(f"{what} cannot be rendered: {exc}")
    return failures


def run_rule_test(engine: Engine, loaded: LoadedTest) -> TestOutcome:
    """Run one rule test against ``engine`` (with the test's ``variables``, if it gives
    any); every notice, block and placeholder that applies must also render."""
    test = loaded.test
    request = test.request
    engine = _with_variables(engine, loaded)
    decision = engine.decide(
        location=reader_location(engine, loaded),
        url=request.url,
        accept_language=request.accept_language,
        page_language=request.page_language,
        tags=request.tags,
        at=request.at,
    )
    expect = test.expect
    failures: list[str] = _unchecked(test.expect)
    notice_ids = [n.rule_id for n in decision.notices]
    block_id = decision.block.rule_id if decision.block is not None else None
    rule_id = loaded.rule_id
    if expect.applies is not None and rule_id is not None:
        applied = rule_id in decision.applied
        if applied != expect.applies:
            failures.append(
                f"expected rule '{rule_id}' to {'apply' if expect.applies else 'not apply'}, "
                f"but it {'did' if applied else 'did not'}"
            )
    if expect.notices is not None and notice_ids != expect.notices:
        failures.append(f"expected notices {expect.notices}, got {notice_ids}")
    withhold_ids = [w.rule_id for w in decision.withholds]
    if expect.withholds is not None and withhold_ids != expect.withholds:
        failures.append(f"expected withholds {expect.withholds}, got {withhold_ids}")
    if "block" in expect.model_fields_set and block_id != expect.block:
        failures.append(f"expected block {expect.block!r}, got {block_id!r}")
    if expect.locale is not None:
        locale = _locale_of(decision, rule_id)
        if locale is None:
            failures.append(f"expected locale {expect.locale!r}, but no notice or block applied")
        elif locale_key(locale) != locale_key(expect.locale):
            failures.append(f"expected locale {expect.locale!r}, got {locale!r}")
    failures += _render_failures(decision)
    return TestOutcome(loaded, tuple(failures), decision)


# What an expectation written with no value (`notices:` on a line of its own is null in
# YAML) would have checked, had it been written out; `block: null` alone means something
# ("no block").
_EMPTY_MEANS = {
    "notices": "`notices: []` for no notices",
    "withholds": "`withholds: []` for nothing withheld",
    "applies": "`applies: false` or `applies: true`",
    "locale": "the locale expected",
}


def _unchecked(expect: Expect) -> list[str]:
    """Expectations given with no value: they check nothing, so a test that reads "no
    notices" would pass with one. Each is a failure saying what to write."""
    return [
        f"`{name}:` has no value, so it checks nothing: write {what}, or leave it out"
        for name, what in _EMPTY_MEANS.items()
        if name in expect.model_fields_set and getattr(expect, name) is None
    ]


def _locale_of(decision: Decision, rule_id: str | None) -> str | None:
    if decision.block is not None and rule_id in (None, decision.block.rule_id):
        return decision.block.locale
    for notice in decision.notices:
        if rule_id in (None, notice.rule_id):
            return notice.locale
    for withhold in decision.withholds:
        if rule_id in (None, withhold.rule_id) and withhold.has_placeholder:
            return withhold.locale
    return None


def run_rule_tests(engine: Engine, tests: Iterable[LoadedTest] | None = None) -> list[TestOutcome]:
    """Run ``tests`` (default: every test in the engine's rule set)."""
    chosen = engine.ruleset.tests if tests is None else tests
    return [run_rule_test(engine, loaded) for loaded in chosen]

"""A pytest plugin: the ``tests:`` written in rule files, collected as pytest items.

::

    pytest --compliance-rules rules/ [--compliance-rules more-rules/] [--compliance-geoip-db DB]
           [--compliance-set NAME=VALUE]...

Installed with the package (entry point ``pytest11``), inert until ``--compliance-rules`` is
given. All the paths are loaded into one engine, as ``compliance test`` does, so ids and
regions may be shared between files. Each rule test becomes one item, under its rule file,
named ``RULE-ID: test name`` (``-k`` selects on it) and marked ``compliance_rules``. A rule
file that does not load gives one failing item listing every problem, ``FILE:LINE:COL``.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .engine import Engine
from .errors import ComplianceFault, ConfigurationError, RuleError, one_line
from .loader import LoadedTest
from .ruletests import TestOutcome, run_rule_test

__all__ = ["RuleFile", "RuleProblemsItem", "RuleTestItem"]

_ENGINE = pytest.StashKey[Engine]()
_MARKER = "compliance_rules"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compliance", "compliance rule tests")
    group.addoption(
        "--compliance-rules",
        action="append",
        default=[],
        metavar="PATH",
        help="run the tests written in these rule files or directories (repeatable)",
    )
    group.addoption(
        "--compliance-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a rule variable the site sets, as `compliance test --set` (repeatable)",
    )
    group.addoption(
        "--compliance-geoip-db",
        metavar="PATH",
        default=None,
        help="MaxMind .mmdb database for rule-test readers given by IP address",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{_MARKER}: a test written in a compliance rule file")


def pytest_unconfigure(config: pytest.Config) -> None:
    engine = config.stash.get(_ENGINE, None)
    if engine is not None:
        engine.close()
        del config.stash[_ENGINE]


class RuleTestFailure(Exception):
    """A rule test whose expectation was not met."""

    def __init__(self, outcome: TestOutcome) -> None:
        super().__init__(outcome.report())
        self.outcome = outcome


class RuleTestItem(pytest.Item):
    """One test from a rule file."""

    def __init__(self, *, loaded: LoadedTest, engine: Engine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.engine = engine
        self.add_marker(_MARKER)

    def runtest(self) -> None:
        outcome = run_rule_test(self.engine, self.loaded)
        if not outcome.passed:
            raise RuleTestFailure(outcome)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, RuleTestFailure):
            return excinfo.value.outcome.report()
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.line - 1, self.name


class RuleProblemsItem(pytest.Item):
    """Stands for rule files that do not load: fails with every problem found."""

    def __init__(self, *, error: RuleError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker(_MARKER)

    def runtest(self) -> None:
        raise self.error

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        problems = [str(p) for p in self.error.problems] or [str(self.error)]
        return "\n".join([*problems, f"{len(problems)} problem(s) in rule files"])

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, "compliance lint"


class RuleFile(pytest.File):
    """A rule file's tests, run against the engine over every ``--compliance-rules`` path;
    or, when the rule files do not load, the one item that lists every problem."""

    def __init__(
        self,
        *,
        tests: list[LoadedTest],
        engine: Engine | None,
        error: RuleError | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tests = tests
        self.engine = engine
        self.error = error

    def collect(self) -> Iterator[pytest.Item]:
        if self.error is not None:
            yield RuleProblemsItem.from_parent(self, name="compliance lint", error=self.error)
            return
        if self.engine is None:
            return
        taken: set[str] = set()
        for loaded in self.tests:
            written = one_line(loaded.test.name)  # a node id is one line
            if loaded.rule_id is not None:
                written = f"{loaded.rule_id}: {written}"
            name, count = written, 1
            while name in taken:  # each node id once ("x", "x (2)", then "x" is "x (3)")
                count += 1
                name = f"{written} ({count})"
            taken.add(name)
            yield RuleTestItem.from_parent(self, name=name, loaded=loaded, engine=self.engine)


def _rule_files(session: pytest.Session, paths: list[str]) -> list[RuleFile]:
    config = session.config
    variables: dict[str, str] = {}
    for pair in config.getoption("compliance_set"):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise pytest.UsageError(f"--compliance-set {pair!r}: write NAME=VALUE")
        variables[name] = value
    try:
        engine = Engine.from_paths(  # the values read as `compliance test --set` reads them
            paths, geoip_db=config.getoption("compliance_geoip_db"), variable_texts=variables
        )
    except (ConfigurationError, ComplianceFault) as exc:
        raise pytest.UsageError(f"compliance rule tests: {exc}") from None
    except RuleError as exc:
        first = exc.problems[0].file if exc.problems else paths[0]
        path = Path(os.path.realpath(first))  # Path.resolve raises on a loop of links
        return [RuleFile.from_parent(session, path=path, tests=[], engine=None, error=exc)]
    config.stash[_ENGINE] = engine
    by_file: dict[str, list[LoadedTest]] = {file: [] for file in engine.ruleset.files}
    for loaded in engine.ruleset.tests:
        by_file.setdefault(loaded.file, []).append(loaded)
    return [
        RuleFile.from_parent(session, path=Path(os.path.realpath(file)), tests=tests, engine=engine)
        for file, tests in by_file.items()
        if tests
    ]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    # The rule files join the session's own collectors, so pytest collects their items like
    # any other (counted in "collected N items", shown by --collect-only, selected by -k/-m).
    report = yield
    if isinstance(collector, pytest.Session) and report.passed:
        paths: list[str] = collector.config.getoption("compliance_rules")
        if paths:
            report.result.extend(_rule_files(collector, paths))
    return report

"""The command line, rule tests and the pytest plugin, four cases found in review, each failing
before its fix: ``check --format json`` said nothing of a placeholder's translation;
``--compliance-set`` read a date as text where ``compliance test --set`` reads a date; two
rule tests could get one node id; ``compliance test`` repeated the engine's start-up warnings
for every test with variables of its own."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from compliance.cli import main

pytest_plugins = ["pytester"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- 1. check --format json leaves out what the text output says about a placeholder ------------


def test_check_json_says_whether_a_placeholder_is_a_translation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The text output says the placeholder is an unreviewed translation of en; the JSON
    document (the same decision) says nothing about it, while it does for notices and
    blocks."""
    args = ["check", "--pack", "withheld", "--country", "DE"]
    args += ["--url", "https://news.example/story", "--accept-language", "de"]
    code, text, _ = run(capsys, *args)
    assert code == 0
    assert "  placeholder (de, unreviewed translation of en):" in text
    code, out, _ = run(capsys, *args, "--format", "json")
    assert code == 0
    withhold = json.loads(out)["withholds"][0]
    assert withhold["locale"] == "de"
    assert withhold.get("translation") == "unreviewed"


# -- 2. the pytest plugin reads --compliance-set otherwise than compliance test --set -----------

DATE_VARIABLE = """version: 1
rules:
  - id: dated
    title: A notice with a date
    jurisdictions: [DE]
    notice:
      variables: {since: 2024-03-01}
      text: {en: "Since {since}."}
    tests:
      - name: a reader in Germany sees it
        reader: {country: DE}
        expect: {applies: true}
"""


def test_compliance_set_reads_a_date_variable_as_compliance_test_set_does(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--compliance-set`` is documented as ``compliance test --set``; the CLI refuses a
    date variable set to something that is not a date (exit 2), the plugin takes the text
    and every rule test passes (the notice then reads "Since not-a-date.")."""
    rules = pytester.path / "dated.yaml"
    rules.write_text(DATE_VARIABLE, encoding="utf-8")
    code, _, err = run(capsys, "test", str(rules), "--set", "since=not-a-date")
    assert code == 2
    assert "is a date in the rules" in err
    result = pytester.runpytest(
        "--compliance-rules", str(rules), "--compliance-set", "since=not-a-date"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is a date in the rules" in result.stderr.str()


def test_compliance_set_date_renders_as_the_cli_renders_it(pytester: pytest.Pytester) -> None:
    """The same value, rendered: ``compliance check --set since=2025-03-01`` shows "Since
    March 1, 2025."; the plugin's engine holds the text and renders "Since 2025-03-01."."""
    rules = pytester.path / "dated.yaml"
    rules.write_text(DATE_VARIABLE, encoding="utf-8")
    pytester.makeconftest(
        """
import compliance.pytest_plugin as plugin
from compliance.geo import Location

def pytest_collection_finish(session):
    engine = session.config.stash[plugin._ENGINE]
    decision = engine.decide(location=Location.of("DE"), url="https://www.example.org/")
    print("TEXT=" + decision.notices[0].text())
"""
    )
    result = pytester.runpytest(
        "-s", "--compliance-rules", str(rules), "--compliance-set", "since=2025-03-01"
    )
    result.stdout.fnmatch_lines(["TEXT=Since March 1, 2025."])


# -- 3. the pytest plugin gives two rule tests the same node id ---------------------------------

DUPLICATES = """version: 1
rules:
  - id: r
    title: R
    jurisdictions: [DE]
    notice: {text: {en: Hi.}}
    tests:
      - name: x
        reader: {country: DE}
        expect: {applies: true}
      - name: x (2)
        reader: {country: DE}
        expect: {applies: true}
      - name: x
        reader: {country: FR}
        expect: {applies: true}
"""


def test_every_rule_test_item_has_its_own_node_id(pytester: pytest.Pytester) -> None:
    """Two tests named "x" and one named "x (2)": the second "x" is renamed "x (2)" too, so
    "PASSED r.yaml::r: x (2)" and "FAILED r.yaml::r: x (2)" are printed for one node id."""
    (pytester.path / "r.yaml").write_text(DUPLICATES, encoding="utf-8")
    items, _ = pytester.inline_genitems("--compliance-rules", "r.yaml")
    ids = [item.nodeid for item in items]
    assert len(ids) == 3
    assert len(set(ids)) == len(ids), ids


# -- 4. compliance test repeats start-up warnings once per rule test with variables -------------

NOISY = """version: 1
rules:
  - id: crimea
    title: Crimea
    jurisdictions: [UA-43]
    notice: {text: {en: Crimea.}}
  - id: agent-label
    title: A label naming an agent the site chooses
    jurisdictions: ["*"]
    notice:
      variables: {agent: null}
      text: {en: "This material was produced by {agent}."}
    tests:
"""


def test_engine_warnings_are_not_repeated_for_each_rule_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Each test giving `request: {variables: ...}` builds a new Engine, which logs the
    engine's start-up warnings again: with the embedded geolocator, "rules naming
    subdivisions ... never reach a reader" is printed once per such test (plus once)."""
    tests = "".join(
        f"      - name: reader {n}\n        reader: {{country: {c}}}\n"
        f"        request: {{variables: {{agent: X}}}}\n        expect: {{applies: true}}\n"
        for n, c in enumerate(["DE", "FR", "AT", "IT", "ES"])
    )
    (tmp_path / "r.yaml").write_text(NOISY + tests, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="compliance"):
        code, out, _ = run(capsys, "test", str(tmp_path / "r.yaml"))
    assert code == 0, out
    unreached = [r for r in caplog.records if "never reach a reader" in r.getMessage()]
    assert len(unreached) <= 1, f"{len(unreached)} copies of the same warning"

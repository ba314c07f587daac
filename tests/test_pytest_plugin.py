"""The pytest plugin: ``pytest --compliance-rules PATH`` runs the tests written in rule files."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"


@pytest.fixture
def rules(pytester: pytest.Pytester) -> Path:
    target = pytester.path / "rules"
    shutil.copytree(RULES, target)
    return target


def count_tests(*paths: Path) -> int:
    from compliance import Engine

    engine = Engine.from_paths([str(p) for p in paths])
    try:
        return len(engine.ruleset.tests)
    finally:
        engine.close()


def test_every_rule_test_is_an_item(pytester: pytest.Pytester, rules: Path) -> None:
    result = pytester.runpytest("--compliance-rules", str(rules), "-v")
    result.assert_outcomes(passed=count_tests(rules))
    result.stdout.fnmatch_lines(
        [
            "*russia.yaml::ru-undesirable-organization: a reader in Germany sees nothing PASSED*",
            "*russia.yaml::tagged content in Russia shows the label first*PASSED*",
        ]
    )


FAILING = """version: 1
rules:
  - id: crimea-block
    title: Crimea
    jurisdictions: [UA-43]
    block:
      blocked_by: https://www.example.org/legal
      text: {en: Blocked.}
    tests:
      - name: Crimea is blocked
        reader: {country: UA, subdivisions: [UA-43]}
        expect: {block: crimea-block}
      - name: readers elsewhere are not blocked
        reader: {country: UA, subdivisions: [UA-43]}
        expect: {applies: false}
"""


def test_a_failing_rule_test_reports_what_failed_and_why(pytester: pytest.Pytester) -> None:
    (pytester.path / "site.yaml").write_text(FAILING, encoding="utf-8")
    result = pytester.runpytest("--compliance-rules", "site.yaml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*site.yaml:*: rule 'crimea-block', test 'readers elsewhere are not blocked': FAILED",
            "  - expected rule 'crimea-block' to not apply, but it did",
            "  location: UA/UA-43 (source: test)",
            "FAILED *site.yaml::crimea-block: readers elsewhere are not blocked*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_broken_rule_file_is_one_failure_listing_every_problem(
    pytester: pytest.Pytester, rules: Path
) -> None:
    (rules / "broken.yaml").write_text(
        "version: 1\nrules:\n  - id: Bad\n    title: x\n", encoding="utf-8"
    )
    result = pytester.runpytest("--compliance-rules", str(rules))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broken.yaml:3:*", "*problem(s) in rule files"])


def test_k_and_m_select_rule_tests(pytester: pytest.Pytester, rules: Path) -> None:
    total = count_tests(rules)
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    result = pytester.runpytest("--compliance-rules", str(rules), "-k", "Crimea")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 1
    assert outcomes["passed"] + outcomes["deselected"] == total + 1
    result = pytester.runpytest("--compliance-rules", str(rules), "-m", "compliance_rules")
    result.assert_outcomes(passed=total, deselected=1)


def test_several_paths_share_one_engine(pytester: pytest.Pytester, rules: Path) -> None:
    # the site's file uses the region defined in the Russia pack
    (pytester.path / "site.yaml").write_text(
        """version: 1
rules:
  - id: site-notice
    title: Site notice
    jurisdictions: [russia-controlled-ukraine]
    notice: {text: {en: Hello.}}
    tests:
      - name: Crimea
        reader: {country: UA, subdivisions: [UA-43]}
        expect: {applies: true}
""",
        encoding="utf-8",
    )
    result = pytester.runpytest(
        "--compliance-rules", str(rules / "russia.yaml"),
        "--compliance-rules", "site.yaml",
    )  # fmt: skip
    result.assert_outcomes(passed=count_tests(rules / "russia.yaml") + 1)


def test_the_plugin_is_inert_without_the_option(pytester: pytest.Pytester, rules: Path) -> None:
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "--compliance-rules" in pytester.runpytest("--help").stdout.str()


def test_a_missing_geoip_database_is_a_usage_error(pytester: pytest.Pytester, rules: Path) -> None:
    result = pytester.runpytest(
        "--compliance-rules", str(rules), "--compliance-geoip-db", "missing.mmdb"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*compliance rule tests:*missing.mmdb*"])


def test_readers_by_ip_use_the_geoip_database(
    pytester: pytest.Pytester, geoip_test_data: Path
) -> None:
    (pytester.path / "city.yaml").write_text(
        """version: 1
rules:
  - id: gb-england
    title: England
    jurisdictions: [GB-ENG]
    headers: {X-Test: england}
    tests:
      - name: an address in England
        reader: {ip: 81.2.69.142}
        expect: {applies: true}
""",
        encoding="utf-8",
    )
    db = geoip_test_data / "GeoIP2-City-Test.mmdb"
    result = pytester.runpytest("--compliance-rules", "city.yaml", "--compliance-geoip-db", db)
    result.assert_outcomes(passed=1)


def test_the_pre_commit_hooks_run_lint_and_test(tmp_path: Path) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    ids = [hook["id"] for hook in hooks]
    assert ids == ["compliance-lint", "compliance-test", "compliance-export-check"]
    for hook in hooks[:2]:
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False
        assert re.search(hook["files"], "rules/russia.yaml")
        command = [*shlex.split(hook["entry"]), *hook["args"]]
        assert command[0] == "compliance"
        # what pre-commit runs, in a rule repository (here: this one)
        done = subprocess.run(
            [sys.executable, "-m", "compliance", *command[1:]],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bad.yaml").write_text("version: 1\nrules: [{id: Bad}]\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "compliance", "lint", "rules/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "rules/bad.yaml:2:" in done.stdout


def test_the_export_check_hook_fails_on_a_stale_export(tmp_path: Path) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = [h for h in hooks if h["id"] == "compliance-export-check"]
    assert hook["pass_filenames"] is False
    assert re.search(hook["files"], "rules/russia.yaml")
    entry = shlex.split(hook["entry"])
    assert entry == ["compliance", "export"]
    names = ["--set", "agent-instrumental=X", "--set", "agent-genitive=X"]
    args = ["cloudflare", *names, "--output", str(tmp_path / "edge")]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "compliance", *entry[1:], *args, *extra]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True)

    assert run().returncode == 0, "the export itself"
    assert run("--check").returncode == 0, "fresh: the hook passes"
    worker = tmp_path / "edge" / "worker.mjs"
    worker.write_text(worker.read_text(encoding="utf-8") + "// edited\n", encoding="utf-8")
    assert run("--check").returncode == 1, "stale: the hook fails"


def test_rule_tests_are_collected_like_any_other_item(
    pytester: pytest.Pytester, rules: Path
) -> None:
    from compliance import Engine

    count = len(Engine.from_paths([str(rules)]).ruleset.tests)
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    result = pytester.runpytest("--compliance-rules", str(rules))
    # counted at collection time, not added silently after "collected N items"
    result.stdout.fnmatch_lines([f"collected {count + 1} items"])
    result.assert_outcomes(passed=count + 1)
    listed = pytester.runpytest("--compliance-rules", str(rules), "--collect-only", "-q")
    assert sum("russia.yaml::" in line for line in listed.stdout.lines) > 0
    listed.stdout.fnmatch_lines([f"{count + 1} tests collected*"])


def test_a_broken_rule_file_is_collected_as_one_item(
    pytester: pytest.Pytester, rules: Path
) -> None:
    (rules / "broken.yaml").write_text("version: 1\nrules:\n  - id: Bad\n", encoding="utf-8")
    result = pytester.runpytest("--compliance-rules", str(rules))
    result.stdout.fnmatch_lines(["collected 1 item"])
    result.assert_outcomes(failed=1)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_rule_file_linked_to_itself_is_a_failure_not_an_internal_error(
    pytester: pytest.Pytester, rules: Path
) -> None:
    (rules / "loop.yaml").symlink_to("loop.yaml")
    result = pytester.runpytest("--compliance-rules", str(rules))
    assert "INTERNALERROR" not in result.stdout.str()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*loop.yaml:1:1: cannot read the file*"])


SMALL_RULES = """version: 1
regions:
  crimea: {title: Crimea, include: [UA-43]}
rules:
  - id: crimea-notice
    title: Crimea
    jurisdictions: [crimea]
    notice: {text: {en: A notice.}}
    tests:
      - name: Crimea
        reader: {country: UA, subdivisions: [UA-43]}
        expect: {notices: [crimea-notice]}
      - name: Kyiv
        reader: {country: UA, subdivisions: [UA-30]}
        expect: {notices: []}
"""


def _documented_pre_commit_config() -> str:
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    section = text[text.index("## Pre-commit") :]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_documented_pre_commit_recipe_runs_the_published_hooks() -> None:
    config = yaml.safe_load(_documented_pre_commit_config())
    published = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    (repo,) = config["repos"]
    for hook in repo["hooks"]:
        twin = published[hook["id"]]
        for key in ("entry", "files", "pass_filenames", "args"):
            assert hook[key] == twin[key], (hook["id"], key)


@pytest.mark.slow
def test_the_documented_pre_commit_recipe_works_as_written(tmp_path: Path) -> None:
    pytest.importorskip("pre_commit")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    work = tmp_path / "rule-repo"
    (work / "rules").mkdir(parents=True)
    (work / "rules" / "crimea.yaml").write_text(SMALL_RULES, "utf-8")
    (work / ".pre-commit-config.yaml").write_text(_documented_pre_commit_config(), "utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert run("git", "init", "-q").returncode == 0
    assert run("git", "add", ".").returncode == 0
    pre_commit = [sys.executable, "-m", "pre_commit", "run", "--all-files"]
    done = run(*pre_commit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"compliance lint\.+Passed", done.stdout)
    assert re.search(r"compliance test\.+Passed", done.stdout)
    (work / "rules" / "bad.yaml").write_text("version: 1\nrules: [{id: Bad}]\n", "utf-8")
    assert run("git", "add", ".").returncode == 0
    done = run(*pre_commit)
    assert done.returncode == 1
    assert "rules/bad.yaml:2:" in done.stdout


def test_a_test_name_with_a_line_break_is_one_line_in_the_node_id(
    pytester: pytest.Pytester,
) -> None:
    # The break went into the node id: a second line in -v output and in --collect-only.
    pytester.makefile(
        ".yaml",
        rules="""version: 1
rules:
  - id: r
    title: R
    jurisdictions: [DE]
    notice: {text: {en: hi}}
    tests:
      - name: "passes\\nFAILED forged"
        reader: {country: DE}
        expect: {applies: true}
""",
    )
    result = pytester.runpytest("--compliance-rules", "rules.yaml", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*rules.yaml::r: passes\\nFAILED forged PASSED*"])
    assert not any(line.startswith("FAILED forged") for line in result.outlines)


REQUIRED = """version: 1
rules:
  - id: label
    title: Label
    jurisdictions: [RU]
    notice:
      variables: {agent: null}
      text: {en: "By {agent}"}
    tests:
      - name: the site's name goes in
        reader: {country: RU}
        expect: {notices: [label]}
"""


def test_the_sites_variables_as_compliance_test_takes_them(pytester: pytest.Pytester) -> None:
    # The failure says "--set agent=... (command line)": pytest had no way to give it.
    pytester.makefile(".yaml", rules=REQUIRED)
    result = pytester.runpytest("--compliance-rules", "rules.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the required variable agent has no value*"])
    result = pytester.runpytest(
        "--compliance-rules", "rules.yaml", "--compliance-set", "agent=Example Media"
    )
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--compliance-rules", "rules.yaml", "--compliance-set", "agent")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--compliance-set 'agent': write NAME=VALUE*"])

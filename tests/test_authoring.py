"""A rule author's mistakes, as an editor leaves them: half-saved files, other encodings, links
in the rules folder. Each gives a FILE:LINE:COL line at the offending text, in words an
author understands, through the CLI as through ``load_rules``; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.errors import RuleError
from compliance.loader import find_rule_files, load_rules

GOOD = """\
version: 1
rules:
  - id: a
    title: A
    jurisdictions: [RU]
    notice: {text: {en: Hello.}}
"""


def _problems(*paths: Path) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rules(list(paths))
    return [str(p) for p in info.value.problems]


def _lint(*args: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "compliance", "lint", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.returncode, result.stdout, result.stderr


# -- links in the rules folder ----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_link_to_itself_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    loop = tmp_path / "loop.yaml"
    loop.symlink_to("loop.yaml")
    assert _problems(tmp_path) == [
        f"{loop}:1:1: cannot read the file: Too many levels of symbolic links"
    ]
    code, out, err = _lint(str(tmp_path))
    assert code == 1, err
    assert "Traceback" not in err
    assert f"{loop}:1:1: cannot read the file" in out


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_linked_folder_is_searched_once_even_in_a_loop(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "b.yaml").write_text(GOOD.replace("id: a", "id: b"), encoding="utf-8")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD, encoding="utf-8")
    (rules / "shared").symlink_to(shared)  # the site's shared rules, linked in
    (shared / "back").symlink_to(rules)  # and a loop back
    (rules / "again").symlink_to(".")
    assert [f.relative_to(rules) for f in find_rule_files([rules])] == [
        Path("a.yaml"),
        Path("shared/b.yaml"),
    ]
    assert sorted(r.rule.id for r in load_rules([rules]).rules) == ["a", "b"]

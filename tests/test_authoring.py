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


# -- YAML syntax: the place of the mistake, and what it is --------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # a key whose ':' was never typed: its line, not the next one
            "version: 1\nrules:\n  - id: a\n    jurisdictions [RU]\n    title: A\n",
            "4:5: YAML syntax error: expected ':' after 'jurisdictions [RU]' (write `key: value`; "
            "text that goes on to the next line is indented further than its key)",
        ),
        (  # saved half-way through a key: the key, not a line after the end of the file
            "version: 1\nrules:\n  - id: a\n    juris",
            "4:5: YAML syntax error: expected ':' after 'juris' (write `key: value`; "
            "text that goes on to the next line is indented further than its key)",
        ),
        (  # saved half-way through a quoted text: where the quote opens
            'version: 1\nrules:\n  - id: a\n    title: "A rul',
            "4:12: YAML syntax error: this quoted text has no closing quote "
            "(it runs to the end of the file)",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    title: @home\n",
            "4:12: YAML syntax error: '@' cannot start a value (YAML reserves it): "
            "put the text in quotes",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    title: `A`\n",
            "4:12: YAML syntax error: '`' cannot start a value (YAML reserves it): "
            "put the text in quotes",
        ),
        (  # a tab before a list item, where libyaml does not say "tab"
            "version: 1\nrules:\n\t- id: a\n",
            "3:1: YAML syntax error: a tab is used for indentation: indent with spaces only",
        ),
        (
            'version: 1\nrules:\n  - id: a\n    title: "C:\\Rules"\n',
            "4:15: YAML syntax error: '\\R' is not an escape in text in double quotes: write "
            "'\\\\' for a backslash, or use single quotes, in which '\\' is an ordinary character",
        ),
        (
            "version: 1\nx: &same 1\ny: &same 2\n",
            "3:4: YAML syntax error: the anchor '&same' is defined twice (first on line 2): "
            "give each anchor its own name",
        ),
        (
            'version: 1\nrules:\n  - id: a\n    title: "A" rule\n',
            "4:16: YAML syntax error: unexpected text after a value: a value that starts with a "
            "quote or a bracket ends where it closes (put the whole value in quotes), "
            "or check the indentation",
        ),
        (  # saved half-way through a list
            "version: 1\nrules: [\n",
            "3:1: YAML syntax error: the file ends inside a list ('[') or a mapping ('{') that "
            "is not closed: was it saved half-way?",
        ),
        (
            "version: 1\nrules: [{id: a},,{id: b}]\n",
            "2:17: YAML syntax error: a value is missing here (two commas in a row, "
            "or a comma first?)",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    title: & more\n",
            "4:12: YAML syntax error: '&' starts an anchor and is followed by its name "
            "('&name'): put text that starts with '&' in quotes",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    title: * important\n",
            "4:12: YAML syntax error: '*' starts an alias and is followed by an anchor's name "
            "('*name'): put text that starts with '*' in quotes",
        ),
        (  # two files joined, the second with its byte order mark
            "version: 1\nrules: []\n\ufeffregions: {}\n",
            "3:1: YAML syntax error: an invisible byte order mark (U+FEFF) is here "
            "(were two files joined?): delete it",
        ),
        (
            "version: 1\nrules: - id: a\n",
            "2:8: YAML syntax error: a list item ('- ') cannot start on the line of its key: "
            "begin the list on the next line, indented",
        ),
    ],
)
def test_syntax_errors_name_the_mistake_at_its_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    assert _problems(path) == [f"{path}:{expected}"]


def test_a_control_character_is_found_after_non_ascii_text(tmp_path: Path) -> None:
    """libyaml counts the position in bytes of UTF-8: the line and column are characters."""
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules: []\ndescription: ёлка\x07\n", encoding="utf-8")
    assert _problems(path) == [
        f"{path}:3:18: YAML error: the character U+0007 is not allowed "
        "(YAML text holds no control characters)"
    ]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-16", "1:1: the file is UTF-16 text (it starts with a UTF-16 byte order mark): "),
        ("utf-32", "1:1: the file is UTF-32 text (it starts with a UTF-32 byte order mark): "),
        (  # no mark to go by: the first NUL says it
            "utf-16-le",
            "1:2: YAML error: the character U+0000 is not allowed (YAML text holds no control "
            "characters): a file saved as UTF-16 has one after every ASCII letter; ",
        ),
    ],
)
def test_a_file_saved_as_utf16_or_utf32_says_so_once(
    tmp_path: Path, encoding: str, expected: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(GOOD.encode(encoding))
    assert _problems(path) == [f"{path}:{expected}save it with UTF-8 encoding"]


# -- nothing written is silently dropped --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    tags: !foo [adult]\n", "7:11: rules[0].tags: the tag '!foo'"),
        ("    tags: !!set {adult}\n", "7:11: rules[0].tags: the tag '!!set'"),
        ("    !foo tags: [adult]\n", "7:5: rules[0].tags: the tag '!foo'"),
        ("    tags: [!!python/name:os.system adult]\n", "7:12: rules[0].tags[0]: the tag "),
        ("    description: !local text\n", "7:18: rules[0].description: the tag '!local'"),
    ],
)
def test_a_tag_that_means_nothing_is_a_problem_at_its_place(
    tmp_path: Path, line: str, expected: str
) -> None:
    """PyYAML dropped a tag on a list, a mapping or a key without a word: the value was read
    as if the tag were not there (a scalar's was an error in PyYAML's words)."""
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD + line, encoding="utf-8")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:{expected}")
    assert problem.endswith("means nothing in a rule file: remove it")


def test_tags_a_value_is_read_as_anyway_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        GOOD.replace("title: A", "title: !!str 2025").replace("[RU]", "!!seq [RU]"),
        encoding="utf-8",
    )
    assert load_rules([path]).rules[0].rule.title == "2025"


# -- patterns that can never match --------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "written"),
    [
        ("/news/../archive/*", ": write '/archive/*'"),
        ("/news//*", ": write '/news/*'"),
        ("/news/./*", ": write '/news/*'"),
        ("/news/.", ": write '/news/'"),
        ("//news/**", ": write '/news/**'"),
        ("/news/*/../x", ""),  # which segment '..' leaves depends on what '*' matched
    ],
)
def test_a_path_pattern_that_is_not_normalised_can_never_match(
    tmp_path: Path, pattern: str, written: str
) -> None:
    """Paths are normalised before matching, so such a pattern silently never applied; as an
    `exclude_paths` entry it silently excluded nothing."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        GOOD + f'    paths: ["{pattern}"]\n    exclude_paths: ["{pattern}"]\n', encoding="utf-8"
    )
    message = (
        f"'{pattern}' can never match: paths are matched normalised, with no '.' or '..' "
        f"segment and no '//'{written}"
    )
    assert _problems(path) == [
        f"{path}:7:13: rules[0].paths[0]: {message}",
        f"{path}:8:21: rules[0].exclude_paths[0]: {message}",
    ]


def test_dots_inside_a_segment_are_matched_as_written(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD + '    paths: ["/.well-known/*", "/a/.../b", "/x/", "/"]\n', "utf-8")
    assert load_rules([path]).rules[0].rule.paths == ["/.well-known/*", "/a/.../b", "/x/", "/"]


# -- rule tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "example"),
    [
        ("www.example.org/news/1", "https://www.example.org/news/1"),
        ("/news/1", "https://www.example.org/news/1"),
        ("ftp://www.example.org/", "https://www.example.org/news/1"),
    ],
)
def test_a_test_url_must_be_absolute_as_check_url_must(
    tmp_path: Path, url: str, example: str
) -> None:
    """A test's URL without `https://` was read as a request for no host (and, written as
    'www.example.org/news/1', for the path '/www.example.org/news/1'): a test of a `paths`
    rule expecting it not to apply passed for the wrong reason."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        GOOD
        + "    tests:\n      - name: t\n        reader: {country: RU}\n"
        + f'        request: {{url: "{url}"}}\n        expect: {{applies: true}}\n',
        encoding="utf-8",
    )
    assert _problems(path) == [
        f"{path}:10:24: rules[0].tests[0].request.url: '{url}' is not an absolute http(s) URL, "
        f"e.g. {example}"
    ]


def test_a_test_that_expects_nothing_is_a_problem(tmp_path: Path) -> None:
    """`expect: {}` passed whatever the rules did (an empty expectation checks nothing, as
    `notices:` with no value does, which fails)."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        GOOD
        + "    tests:\n      - {name: t, reader: {country: RU}, expect: {}}\n"
        + "tests:\n  - {name: u, reader: {country: RU}, expect: {}}\n",
        encoding="utf-8",
    )
    assert _problems(path) == [
        f"{path}:8:50: rules[0].tests[0].expect: checks nothing, so the test would pass "
        "whatever the rules do: give `applies`, `notices`, `withholds`, `block` or `locale`",
        f"{path}:10:46: tests[0].expect: checks nothing, so the test would pass "
        "whatever the rules do: give `notices`, `withholds`, `block` or `locale`",
    ]


# -- locales --------------------------------------------------------------------------------------


def _notice(texts: str, extra: str = "") -> str:
    return GOOD.replace(
        "    notice: {text: {en: Hello.}}\n", f"    notice:\n{extra}      text:\n{texts}"
    )


def test_one_locale_spelled_twice_is_a_problem(tmp_path: Path) -> None:
    """Locale codes ignore case and '_': one of two spellings was never shown, silently."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        _notice(
            "        en: One.\n        EN: Two.\n        pt-BR: Três.\n        pt_BR: Quatro.\n",
            "      variables:\n        org: {en: RFE/RL, En: Radio Liberty}\n",
        ),
        encoding="utf-8",
    )
    same = "(locale codes ignore case, and '_' is '-')"
    assert _problems(path) == [
        f"{path}:8:27: rules[0].notice.variables.org.En: 'En' is the locale 'en' again {same}: "
        "give its value once",
        f"{path}:11:9: rules[0].notice.text.EN: 'EN' is the locale 'en' again {same}: "
        "give its text once",
        f"{path}:13:9: rules[0].notice.text.pt_BR: 'pt_BR' is the locale 'pt-BR' again {same}: "
        "give its text once",
    ]


@pytest.mark.parametrize("text", ['""', '"   "', "|\n          \n"])
def test_an_empty_text_is_a_problem(tmp_path: Path, text: str) -> None:
    """An empty text loaded and showed an empty notice."""
    path = tmp_path / "rules.yaml"
    path.write_text(_notice(f"        ru: Привет.\n        en: {text}\n"), encoding="utf-8")
    assert _problems(path) == [
        f"{path}:9:13: rules[0].notice.text.en: the text is empty: write it, or leave the "
        "locale out"
    ]


def test_a_default_locale_spelled_otherwise_says_so(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(_notice("        en: Hello.\n", "      default_locale: EN\n"), "utf-8")
    assert _problems(path) == [
        f"{path}:7:23: rules[0].notice.default_locale: 'EN' is written 'en' in `text`: "
        "spell it the same way in both"
    ]


def test_a_test_page_language_must_be_a_locale_as_check_page_language_must(
    tmp_path: Path,
) -> None:
    """`page_language: english` was read as a page in no known language, silently."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        GOOD
        + "    tests:\n      - name: t\n        reader: {country: RU}\n"
        + "        request: {page_language: english}\n        expect: {applies: true}\n",
        encoding="utf-8",
    )
    assert _problems(path) == [
        f"{path}:10:34: rules[0].tests[0].request.page_language: unknown locale 'english' "
        "(use a code such as 'en', 'ru', 'pt-BR')"
    ]


# -- country codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("UK", " (the United Kingdom is 'GB')"),
        ("EL", " (Greece is 'GR')"),
        ("EU", " (the European Union is not a country: define a region that includes its members)"),
        ("Ru", " (country codes are upper case: 'RU')"),
        (
            "SU",
            " (a former code, of USSR, Union of Soviet Socialist Republics, withdrawn in 1992: "
            "use the codes of the countries there today)",
        ),
        ("XX", ""),
    ],
)
def test_a_code_that_is_no_country_says_which_is_meant(
    tmp_path: Path, code: str, hint: str
) -> None:
    """'UK', the code lawyers write (and the EU's documents), was only 'not an ISO 3166-1
    country code', in a rule as in a test's reader."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        GOOD.replace("[RU]", f"[{code}]")
        + "    tests:\n"
        + f"      - {{name: t, reader: {{country: {code}}}, expect: {{applies: true}}}}\n",
        encoding="utf-8",
    )
    message = f"'{code}' is not an ISO 3166-1 country code{hint}"
    assert _problems(path) == [
        f"{path}:5:21: rules[0].jurisdictions[0]: {message}",
        f"{path}:8:37: rules[0].tests[0].reader.country: {message}",
    ]


@pytest.mark.parametrize(
    ("code", "hint"), [("uk", "the United Kingdom is 'GB'"), ("el", "Greece is 'GR'")]
)
def test_a_lower_case_code_that_is_no_country_says_which_is_meant(
    tmp_path: Path, code: str, hint: str
) -> None:
    """Written in lower case, 'uk' reads as a region name: it was only an unknown region,
    while 'ru' got its hint (found in review)."""
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD.replace("[RU]", f"[{code}]"), encoding="utf-8")
    assert _problems(path) == [
        f"{path}:5:21: rules[0].jurisdictions[0]: unknown region '{code}' "
        f"(nor is '{code.upper()}' a country code: {hint})"
    ]


@pytest.mark.parametrize(("code", "meant"), [("UK-ENG", "GB-ENG"), ("Ua-43", "UA-43")])
def test_a_subdivision_written_otherwise_says_how_to_write_it(
    tmp_path: Path, code: str, meant: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD.replace("[RU]", f"[{code}]"), encoding="utf-8")
    assert _problems(path) == [
        f"{path}:5:21: rules[0].jurisdictions[0]: '{code}' is not an ISO 3166-2 code "
        f"(write '{meant}')"
    ]


# -- found in review of the stop-31 YAML messages ---------------------------------------------

_RULE_HEAD = "version: 1\nrules:\n  - id: a\n    jurisdictions: [RU]\n"


def _only_problem(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_bytes(text.encode("utf-8"))  # no newline translation: a CR stays a CR
    with pytest.raises(RuleError) as info:
        load_rules([path])
    (problem,) = [str(p).removeprefix(f"{path}:") for p in info.value.problems]
    return problem


def test_a_duplicate_anchor_after_a_tag_is_named_at_the_anchor(tmp_path: Path) -> None:
    # Before: "the anchor '&' is defined twice", at the tag.
    problem = _only_problem(tmp_path, "version: 1\nx: !!str &same 1\ny: !!str &same 2\n")
    assert problem.startswith("3:10: YAML syntax error: the anchor '&same' is defined twice")


def test_a_character_in_quoted_text_is_not_blamed_for_the_mistake_after_it(
    tmp_path: Path,
) -> None:
    """A U+FEFF inside quoted text (pasted from a word processor) is a character like any
    other; the mistake is the text after the closing quote. Before, the U+FEFF was blamed,
    and deleting it left the real error."""
    problem = _only_problem(tmp_path, _RULE_HEAD + '    title: "Hello\ufeff" rule\n')
    assert problem.startswith("5:21: YAML syntax error: unexpected text after a value"), problem


def test_a_control_character_in_a_file_with_cr_line_ends_is_at_its_line(tmp_path: Path) -> None:
    # Before: 1:41 (only LF counted as a line break).
    problem = _only_problem(tmp_path, "version: 1\rrules:\r  - id: a\r    title: x\x07\r")
    assert problem.startswith("4:13: YAML error: the character U+0007"), problem


def test_a_parent_key_without_its_colon_is_reported_at_the_key(tmp_path: Path) -> None:
    # `text` lost its ':' and its child is indented further: before, 8:11 "unexpected ':'"
    # in the child's line.
    text = _RULE_HEAD + "    title: A\n    notice:\n      text\n        en: Hello\n"
    problem = _only_problem(tmp_path, text)
    assert problem.startswith("7:7: YAML syntax error: expected ':' after 'text'"), problem
    # Text that goes on to the next line after a key with its ':' still reads as before.
    text = _RULE_HEAD + "    title: A long\n      title: with a colon\n"
    assert "unexpected ':'" in _only_problem(tmp_path, text)

"""docs/rules.md's claims that no code sample on the page can show, checked here.

Rule authors and their counsel read the page, not the code: each message in its table of
lint messages must be one lint really gives, each field of the format must be on the page,
and what it says a variable renders as must be what renders.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from compliance import Engine, Location, yamlpos
from compliance.loader import lint
from compliance.locales import choose_locale
from compliance.models import json_schema
from compliance.render import format_text

REPO = Path(__file__).resolve().parents[1]
PAGE = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")

_RULE = "version: 1\nrules:\n  - id: x\n    title: X\n    jurisdictions: [DE]\n"
_HEADER = "    headers: {X-A: a}\n"


def _rule(extra: str) -> str:
    return _RULE + extra


# One rule file for each message of the table (``(file, lint options)``). ``'x'`` and
# ``'y'`` in the table stand for any name, ``...`` for any text, and a message is the
# beginning of what lint says (it may go on: "(e.g. ...)").
CASES: dict[str, str | bytes | tuple[str, dict[str, Any]]] = {
    "unknown key 'jurisdiction' (did you mean 'jurisdictions'?)": (
        "version: 1\nrules:\n  - id: x\n    title: X\n    jurisdiction: [DE]\n" + _HEADER
    ),
    "missing key 'title'": "version: 1\nrules:\n  - id: x\n    jurisdictions: [DE]\n" + _HEADER,
    "expected a whole number, not the text 'high'": _rule("    priority: high\n" + _HEADER),
    "'Bad_ID' is not a valid name: use lower-case letters, digits and '-'": (
        "version: 1\nrules:\n  - id: Bad_ID\n    title: X\n    jurisdictions: [DE]\n" + _HEADER
    ),
    "unknown region 'ru' (country codes are upper case: 'RU')": (
        _RULE.replace("[DE]", "[ru]") + _HEADER
    ),
    "unknown region 'baltic-state' (did you mean 'baltic-states'?)": (
        "version: 1\nregions:\n  baltic-states: {title: B, include: [EE, LV, LT]}\n"
        + _RULE.removeprefix("version: 1\n").replace("[DE]", "[baltic-state]")
        + _HEADER
    ),
    "'UA-99' is not an ISO 3166-2 code": _RULE.replace("[DE]", "[UA-99]") + _HEADER,
    "'ZZ' is not an ISO 3166-1 country code": _RULE.replace("[DE]", "[ZZ]") + _HEADER,
    "'UK' is not an ISO 3166-1 country code (the United Kingdom is 'GB')": (
        _RULE.replace("[DE]", "[UK]") + _HEADER
    ),
    "unknown locale 'xx' (use a code such as 'en', 'ru', 'pt-BR')": _rule(
        "    notice: {text: {en: A., xx: B.}}\n"
    ),
    "'de' has no text; locales with a text: en": _rule(
        "    notice: {default_locale: de, text: {en: A.}}\n"
    ),
    "'EN' is written 'en' in `text`: spell it the same way in both": _rule(
        "    notice: {default_locale: EN, text: {en: A.}}\n"
    ),
    "'pt_BR' is the locale 'pt-BR' again (locale codes ignore case, and '_' is '-'): give its "
    "text once": _rule("    notice: {text: {en: A., pt-BR: B., pt_BR: C.}}\n"),
    "the text is empty: write it, or leave the locale out": _rule(
        "    notice: {text: {en: A., de: ' '}}\n"
    ),
    "placeholder '{org}' has no variable (variables: organisation)": _rule(
        "    notice: {variables: {organisation: O}, text: {en: '{org}.'}}\n"
    ),
    "unbalanced '{' or '}' (write '{{' or '}}' for a literal brace)": _rule(
        "    notice: {text: {en: 'a { b'}}\n"
    ),
    "has both `notice` and `block`: a blocked page shows no notice": _rule(
        "    notice: {text: {en: A.}}\n"
        "    block: {blocked_by: 'https://example.org/', text: {en: B.}}\n"
    ),
    "has both `withhold` and `block`: a blocked page has nothing to withhold": _rule(
        "    withhold: {marks: [m], placeholder: false}\n"
        "    block: {blocked_by: 'https://example.org/', text: {en: B.}}\n"
    ),
    "does nothing: give `notice`, `block`, `withhold` or `headers`": _rule(""),
    "withholds nothing: give `marks`, `embeds` or both": _rule(
        "    withhold: {placeholder: false}\n"
    ),
    "rule 'x' has no `sources`: list the public sources it rests on ...": (
        _rule(_HEADER),
        {"strict": True},
    ),
    "warning: rule 'x' was due for review by 2025-06-01: check it against its sources, then "
    "move `review_by` forward": (
        _rule("    review_by: 2025-06-01\n" + _HEADER),
        {"today": dt.date(2025, 6, 2)},
    ),
    "warning: rule 'x' can never apply: its exclude (RU, UA) covers every place its "
    "jurisdictions reach (RU, UA-43)": _RULE.replace("[DE]", "[RU, UA-43]")
    + "    exclude: [RU, UA]\n"
    + _HEADER,
    "`until` (2025-01-01) must be after `from` (2025-06-01)": _rule(
        "    effective: {from: 2025-06-01, until: 2025-01-01}\n" + _HEADER
    ),
    "'2025-02-30' is not a real date": _rule("    effective: {from: 2025-02-30}\n" + _HEADER),
    "the tag '!!set' means nothing in a rule file: remove it": _rule(
        "    tags: !!set {a: null}\n" + _HEADER
    ),
    "!!int value 'abc' is not a whole number": _rule("    priority: !!int abc\n" + _HEADER),
    "format version 2 needs a newer compliance": "version: 2\n",
    "missing `version: 1` at the top of the file": "rules: []\n",
    "YAML syntax error: ...": "version: 1\nrules: [\n",
    "the file is not UTF-8 text": b"version: 1\nrules: []\n# caf\xe9\n",
    "the file is UTF-16 text": "version: 1\nrules: []\n".encode("utf-16"),
    "'title' is given twice (first on line 4); remove one": _RULE + "    title: Y\n" + _HEADER,
    "<script> is not allowed (allowed: a, br, em, li, ol, p, strong, ul)": _rule(
        "    notice: {html: {en: '<p>a</p><script>b</script>'}}\n"
    ),
    "'class' on <p> is not allowed (the only attribute kept is href on <a>)": _rule(
        "    notice: {html: {en: '<p class=\"big\">a</p>'}}\n"
    ),
    "a link to 'tel:' is not allowed (links are http, https or mailto, or a path on the site)": (
        _rule("    notice: {html: {en: '<p><a href=\"tel:+15555550100\">a</a></p>'}}\n")
    ),
    "'news/*' must start with '/'": _rule("    paths: ['news/*']\n" + _HEADER),
    "'/news/../archive/*' can never match: paths are matched normalised, with no '.' or '..' "
    "segment and no '//': write '/archive/*'": _rule(
        "    paths: ['/news/../archive/*']\n" + _HEADER
    ),
    "'https://www.example.org/' must be a host name such as 'www.example.org' or "
    "'*.example.org', not a URL": _rule("    hosts: ['https://www.example.org/']\n" + _HEADER),
    "'.example.org' matches no host (no host name starts with a dot): ...": _rule(
        "    hosts: ['.example.org']\n" + _HEADER
    ),
    "2025-05-17T00:00:00+02:00 is 2025-05-16 22:00 UTC, and rule dates are whole UTC days: ...": (
        _rule("    effective: {from: 2025-05-17T00:00:00+02:00}\n" + _HEADER)
    ),
    "'www.example.org, news.example.org' can never match a host name (no host holds spaces, "
    "commas or quotes): ...": _rule("    hosts: ['www.example.org, news.example.org']\n" + _HEADER),
    "'www.example..org' can never match a host name (no host name has two dots in a row): did "
    "you mean 'www.example.org'?": _rule("    hosts: ['www.example..org']\n" + _HEADER),
    "'Set-Cookie' is managed by the server and cannot be set by a rule": _rule(
        "    headers: {Set-Cookie: a}\n"
    ),
    "'x-robots-tag' is the header 'X-Robots-Tag' again (header names are case-insensitive): "
    "give it once": _rule("    headers: {X-Robots-Tag: a, x-robots-tag: b}\n"),
    "'Content-Length' is a hop-by-hop or framing header, which servers refuse from an "
    "application: a rule cannot set it": _rule("    headers: {Content-Length: '1'}\n"),
    "unknown rule id 'x' (did you mean 'y'?)": _rule(_HEADER).replace("id: x", "id: first-rule")
    + "tests:\n  - {name: t, reader: {country: DE}, expect: {notices: [first-rul]}}\n",
    "unknown variable 'x' (did you mean 'y'?)": _rule(
        "    notice: {variables: {organization: O}, text: {en: '{organization}.'}}\n"
        "    tests:\n"
        "      - name: t\n"
        "        reader: {country: DE}\n"
        "        request: {variables: {organisation: P}}\n"
        "        expect: {applies: true}\n"
    ),
    "a per-locale value cannot be null; a required variable is null as a whole": _rule(
        "    notice: {variables: {v: {en: null}}, text: {en: '{v}.'}}\n"
    ),
    "note: rules[0].notice.variables.x: required variable; the site must set it (...)": (
        _rule("    notice: {variables: {x: null}, text: {en: '{x}.'}}\n"),
        {"variables": {}},
    ),
    "'*' (every location) is only allowed in a rule's `jurisdictions`": _rule(
        "    exclude: ['*']\n" + _HEADER
    ),
    "region 'nordic' includes itself, directly or through other regions": (
        "version: 1\nregions:\n  nordic: {title: N, include: [nordic-2]}\n"
        "  nordic-2: {title: N, include: [nordic]}\n"
    ),
    "rule id 'x' is already used in FILE:LINE": _rule(_HEADER)
    + _rule(_HEADER).split("rules:\n", 1)[1],
    "give exactly one of `ip`, `country` or `unknown: true`": _rule(
        _HEADER + "    tests:\n"
        "      - {name: t, reader: {country: DE, unknown: true}, expect: {applies: true}}\n"
    ),
}

_SPAN = re.compile(r"(`+) ?(.+?) ?\1")


def documented_messages() -> list[str]:
    """The messages of the lint table: the code spans at the start of each row's first
    cell (two, joined by ' / ', for two messages of one kind)."""
    section = PAGE[PAGE.index("## Lint messages") :]
    messages = []
    for cell in re.findall(r"^\| (`.+?) \| .+ \|$", section, re.M):
        while (span := _SPAN.match(cell)) is not None:
            messages.append(span.group(2))
            cell = cell[span.end() :]
            if not cell.startswith(" / "):
                break
            cell = cell[3:]
    return messages


def _pattern(message: str) -> re.Pattern[str]:
    """What a message of the table stands for: its text at the start of a problem's
    message, with 'x' and 'y' any quoted name, '...' any text and FILE:LINE a place."""
    parts = re.split(r"('x'|'y'|\.\.\.|FILE:LINE)", message)
    wild = {"'x'": "'[^']+'", "'y'": "'[^']+'", "...": ".*", "FILE:LINE": r"\S+:\d+"}
    return re.compile(r"(?:^|: )" + "".join(wild.get(p, re.escape(p)) for p in parts))


def test_every_message_of_the_table_has_a_case() -> None:
    messages = documented_messages()
    assert len(messages) > 40
    assert sorted(set(messages) ^ set(CASES)) == []


@pytest.mark.parametrize("message", list(CASES))
def test_lint_gives_the_message_the_table_shows(tmp_path: Path, message: str) -> None:
    case = CASES[message]
    text, options = case if isinstance(case, tuple) else (case, {})
    path = tmp_path / "rules.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    given = [str(finding) for finding in lint([path], **options)]
    pattern = _pattern(message)
    assert any(pattern.search(line) for line in given), (message, given)


def test_every_field_of_the_format_is_on_the_page() -> None:
    """Each key the schema (and so the models) takes is written on the page as `key`."""
    schema = json_schema()
    fields = set(schema["properties"])
    for definition in schema["$defs"].values():
        fields |= set(definition.get("properties", {}))
    missing = sorted(f for f in fields if f"`{f}`" not in PAGE and f"{f}:" not in PAGE)
    assert missing == []


@pytest.mark.parametrize(
    ("locale", "shown"),
    [
        ("en", "March 1, 2024 | 1,234.5"),
        ("en-GB", "1 March 2024 | 1,234.5"),
        ("ru", "1 марта 2024\u202fг. | 1\xa0234,5"),  # noqa: RUF001
    ],
)
def test_dates_and_numbers_render_as_the_page_says(locale: str, shown: str) -> None:
    """docs/rules.md, Notices: `{since}` is "March 1, 2024" in en, "1 March 2024" in en-GB
    and the Russian the page shows in ru; 1234.5 is "1,234.5" in English, "1 234,5" in
    Russian."""
    variables = {"since": dt.date(2024, 3, 1), "n": 1234.5}
    assert format_text("{since} | {n}", variables, locale, escape=False) == shown
    date = shown.split(" | ")[0].replace("\u202f", " ")  # the page writes plain spaces
    assert f'"{date}" in `{locale}`' in PAGE.replace("\n  ", " ")


def test_a_star_in_accept_language_leaves_the_choice_to_the_readers_country() -> None:
    """docs/rules.md, Locale choice: "`fr, *` from a reader in Russia picks `ru` when the
    notice has no `fr`"; ranges after the star are not read."""
    assert "`fr, *` from a reader in Russia picks `ru`" in PAGE.replace("\n  ", " ")
    for header in ("fr, *", "fr, *, en;q=0.1"):
        choice = choose_locale(("en", "ru"), "en", accept_language=header, country="RU")
        assert (choice.locale, choice.reason) == ("ru", "jurisdiction")


EXCLUDES = """\
version: 1
regions:
  crimea-or-maybe: {title: C, include: [UA-43], unknown_subdivision: apply}
  ukraine-not-crimea: {title: U, include: [UA], exclude: [UA-43], unknown_subdivision: apply}
rules:
  - {id: rule-excludes-code, title: x, jurisdictions: [UA], exclude: [UA-43],
     unknown_subdivision: apply, headers: {X-A: a}}
  - {id: region-excludes-code, title: x, jurisdictions: [ukraine-not-crimea], headers: {X-B: b}}
  - {id: rule-excludes-region, title: x, jurisdictions: [UA], exclude: [crimea-or-maybe],
     headers: {X-C: c}}
"""


def test_an_exclude_counts_a_country_only_reader_only_through_a_region_that_says_so(
    tmp_path: Path,
) -> None:
    """docs/rules.md, Country known, subdivision unknown: unknown_subdivision "never counts
    such a reader in the subdivisions an `exclude` lists (a rule's or a region's)"; "a
    region that says `unknown_subdivision: apply` itself counts such readers [...] in an
    `exclude` too"."""
    path = tmp_path / "rules.yaml"
    path.write_text(EXCLUDES, encoding="utf-8")
    with Engine.from_paths([path]) as engine:
        assert engine.decide(location=Location.of("UA")).applied == (
            "region-excludes-code",
            "rule-excludes-code",
        )
        assert engine.decide(location=Location.of("UA", "UA-43")).applied == ()
        assert len(engine.decide(location=Location.of("UA", "UA-30")).applied) == 3


def test_values_are_read_as_the_page_says() -> None:
    """docs/rules.md, The file: booleans, nulls, numbers, text and dates as YAML 1.2 reads
    them."""
    written = "a: [True, TRUE, False, FALSE, yes, no, NO, Null, NULL, ~, 10:30, 0123, 1_000,\n"
    written += "    0o17, 0x1F, 2024-02-20]\nb:\n"
    value = yamlpos.load(written).value
    assert value == {
        "a": [True, True, False, False, "yes", "no", "NO", None, None, None, "10:30", 123,
              "1_000", 15, 31, dt.date(2024, 2, 20)],
        "b": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("heading", "definition"),
    [("## The file", None), ("## Rule fields", "Rule"), ("## Tests", "RuleTest")],
)
def test_every_field_a_table_of_the_page_lists_exists(heading: str, definition: str | None) -> None:
    section = PAGE[PAGE.index(heading) :]
    section = section[: section.index("\n\n", section.index("| ---"))]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    schema = json_schema()
    node = schema if definition is None else schema["$defs"][definition]
    assert listed == set(node["properties"])


def test_a_date_and_time_keeps_its_offset_as_the_page_says() -> None:
    """docs/rules.md: "a date and time as written, with its offset (`+0200`; UTC when it has
    none)"."""
    plus_two = dt.datetime(2024, 3, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    naive = dt.datetime(2024, 3, 1, 10, 30)
    shown = format_text("{a} / {b}", {"a": plus_two, "b": naive}, "en", escape=False)
    assert shown == "March 1, 2024, 10:30:00\u202fAM +0200 / March 1, 2024, 10:30:00\u202fAM UTC"

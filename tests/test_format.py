"""The rule-format additions of turn 2: each field loads, is checked with FILE:LINE:COL in
plain words, is in the JSON Schema, and renders (issues 12, 14, 15, 18)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from compliance.engine import Engine
from compliance.errors import RuleError
from compliance.geo import UNKNOWN, Location
from compliance.loader import load_rules
from compliance.models import json_schema
from compliance.testing import FixedGeolocator

DAY = dt.date(2025, 1, 15)
HEAD = "version: 1\nrules:\n  - id: r\n    title: R\n    jurisdictions: [DE]\n"


def problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules([path])
    return [str(p).removeprefix(f"{path}:") for p in info.value.problems]


def engine_for(tmp_path: Path, body: str) -> Engine:
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return Engine(load_rules([path]), FixedGeolocator(UNKNOWN))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "    sources: [{url: 'http://example.org/', title: T}]\n    headers: {X-A: b}\n",
            "6:21: rules[0].sources[0].url: 'http://example.org/' is not an https:// URL",
            id="source-not-https",
        ),
        pytest.param(
            "    sources: [{url: 'https://e.org/', title: T, published: 2024-02-30}]\n"
            "    headers: {X-A: b}\n",
            "6:60: rules[0].sources[0].published: '2024-02-30' is not a real date "
            "(day is out of range for month)",
            id="source-bad-date",
        ),
        pytest.param(
            "    sources: [{url: 'https://e.org/'}]\n    headers: {X-A: b}\n",
            "6:15: rules[0].sources[0]: missing key 'title'",
            id="source-without-title",
        ),
        pytest.param(
            "    unknown_subdivision: maybe\n    headers: {X-A: b}\n",
            "6:26: rules[0].unknown_subdivision: must be 'skip' or 'apply', not the text 'maybe'",
            id="unknown-subdivision",
        ),
        pytest.param(
            "    review_by: soon\n    headers: {X-A: b}\n",
            "6:16: rules[0].review_by: expected a date (YYYY-MM-DD), not the text 'soon'",
            id="review-by",
        ),
        pytest.param(
            "    notice:\n      original: en\n      translations: {de: {status: done}}\n"
            "      text: {en: a, de: b}\n",
            "8:35: rules[0].notice.translations.de.status: must be 'reviewed' or 'unreviewed', "
            "not the text 'done'",
            id="translation-status",
        ),
        pytest.param(
            "    notice:\n      translations: {de: {status: reviewed}}\n"
            "      text: {en: a, de: b}\n",
            "7:7: rules[0].notice.translations: `translations` needs `original`: name the "
            "locale the translations are made from",
            id="translations-without-original",
        ),
        pytest.param(
            "    withhold: {marks: [x], placeholder: false, text: {en: gone}}\n",
            "6:15: rules[0].withhold: has `placeholder: false` and a placeholder text: choose one",
            id="withhold-placeholder-and-text",
        ),
        pytest.param(
            "    withhold: {text: {en: gone}}\n",
            "6:15: rules[0].withhold: withholds nothing: give `marks`, `embeds` or both",
            id="withhold-nothing",
        ),
        pytest.param(
            "    withhold: {marks: [x]}\n",
            "6:15: rules[0].withhold: needs a placeholder `text` or `html`, or "
            "`placeholder: false` to remove without a trace",
            id="withhold-without-placeholder",
        ),
        pytest.param(
            "    withhold: {embeds: ['https://rt.com/'], placeholder: false}\n",
            "6:25: rules[0].withhold.embeds[0]: 'https://rt.com/' must be a host name such as "
            "'www.example.org' or '*.example.org', not a URL",
            id="withhold-embed-url",
        ),
        pytest.param(
            "    withhold: {marks: ['a b'], placeholder: false}\n",
            "6:24: rules[0].withhold.marks[0]: 'a b' is not a tag of letters, digits and '_', "
            "'.', ':' or '-'",
            id="withhold-mark-token",
        ),
        pytest.param(
            "    withhold: {marks: [x], text: {en: 'Hi {who}'}}\n",
            "6:39: rules[0].withhold.text.en: placeholder '{who}' has no variable "
            "(variables: none)",
            id="withhold-placeholder-variable",
        ),
        pytest.param(
            "    withhold: {marks: [x], placeholder: false}\n"
            "    block: {blocked_by: 'https://e.org/', text: {en: b}}\n",
            "3:5: rules[0]: has both `withhold` and `block`: a blocked page has nothing to "
            "withhold",
            id="withhold-and-block",
        ),
        pytest.param(
            "    notice: {placement: after_body, text: {en: a}}\n",
            "6:25: rules[0].notice.placement: must be 'body_start', 'after_heading', 'marker' or "
            "'body_end', not the text 'after_body'",
            id="placement",
        ),
    ],
)
def test_new_fields_are_checked_in_plain_words(tmp_path: Path, body: str, expected: str) -> None:
    assert problems(tmp_path, body) == [expected]


def test_old_files_keep_loading_and_new_fields_load(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        "    unknown_subdivision: apply\n    review_by: 2030-01-01\n"
        "    sources: [{url: 'https://e.org/law', title: Law, published: 2024-01-02}]\n"
        "    notice: {placement: after_heading, original: en, text: {en: a}}\n",
    )
    (loaded,) = engine.ruleset.rules
    rule = loaded.rule
    assert rule.sources[0].published == dt.date(2024, 1, 2)
    assert rule.review_by == dt.date(2030, 1, 1)
    decision = engine.decide(location=Location.of("DE"), at=DAY)
    assert list(decision.snippets()) == ["after_heading"]
    assert decision.to_dict()["notices"][0]["translation"] == "original"  # type: ignore[index]


def test_left_to_right_markup_says_so_in_a_right_to_left_page(tmp_path: Path) -> None:
    """A Russian notice put into a Persian page (``<html lang="fa" dir="rtl">``) inherits
    the page's direction unless it states its own: Chromium laid it out right to left, the
    full stop at the left end."""
    engine = engine_for(
        tmp_path,
        "    notice:\n      default_locale: ru\n      text: {ru: Текст., ar: نص.}\n"
        "    withhold:\n      marks: [order]\n      default_locale: ru\n"
        "      text: {ru: Скрыто., ar: محجوب.}\n",
    )
    decision = engine.decide(location=Location.of("DE"), accept_language="ru", at=DAY)
    snippet = decision.snippets("fa")["body_end"]
    assert snippet.startswith(
        '<aside class="compliance-notice" data-compliance-rule="r" lang="ru" dir="ltr" role="note">'
    )
    (withhold,) = decision.withholds
    assert 'lang="ru" dir="ltr">' in (withhold.placeholder() or "")
    assert 'lang="ar" dir="rtl"' in decision.notices[0].html("ar")


def test_withhold_placeholder_is_sanitized_and_directional(tmp_path: Path) -> None:
    # An onclick or a javascript: link written in the file is a load error now (lint checks
    # what the sanitizer would drop); the sanitizer still meets a site's value.
    body = (
        "    withhold:\n      marks: [order]\n      default_locale: ar\n      html:\n"
        '        ar: \'<p>محجوب <a href="https://e.org" onclick="x()">هنا</a></p>\'\n'
        "        en: '<p>Withheld <a href=\"{link}\">here</a></p>'\n"
        "      variables: {link: null}\n"
    )
    assert problems(tmp_path, body) == [
        "10:13: rules[0].withhold.html.ar: 'onclick' on <a> is not allowed (the only "
        "attribute kept is href on <a>)"
    ]
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + body.replace(' onclick="x()"', ""), encoding="utf-8")
    engine = Engine(
        load_rules([path]), FixedGeolocator(UNKNOWN), variables={"link": "javascript:alert(1)"}
    )
    decision = engine.decide(location=Location.of("DE"), accept_language="ar", at=DAY)
    (withhold,) = decision.withholds
    markup = withhold.placeholder()
    assert markup is not None
    assert markup.startswith(
        '<aside class="compliance-withheld" data-compliance-rule="r" lang="ar" dir="rtl">'
    )
    assert "onclick" not in markup
    assert 'href="https://e.org"' in markup
    english = withhold.placeholder("en") or ""
    assert "javascript" not in english
    assert "Withheld" in english
    assert decision.to_dict()["withholds"] == [  # type: ignore[comparison-overlap]
        {
            "rule": "r",
            "marks": ["order"],
            "embeds": [],
            "locale": "ar",
            "translation": None,
            "text": withhold.text("ar"),
            "html": markup,
        }
    ]


def test_per_locale_variables_render_escaped_per_locale(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        "    notice:\n      variables: {org: {en: 'A&B', de: '<C>'}, day: 2024-02-20}\n"
        "      html: {en: '<p>{org} {day}</p>', de: '<p>{org} {day}</p>'}\n",
    )
    (notice,) = engine.decide(location=Location.of("DE"), at=DAY).notices
    assert "A&amp;B February 20, 2024" in notice.html("en")
    assert "&lt;C&gt; 20. Februar 2024" in notice.html("de")


def test_schema_describes_the_new_fields() -> None:
    definitions = json_schema()["$defs"]
    rule = definitions["Rule"]["properties"]
    for name in ("sources", "review_by", "unknown_subdivision", "withhold"):
        assert name in rule, name
        assert rule[name].get("description"), name
    region = definitions["Region"]["properties"]
    assert {"sources", "unknown_subdivision", "review_by"} <= set(region)
    notice = definitions["Notice"]["properties"]
    assert {"original", "translations"} <= set(notice)
    assert "after_heading" in str(notice["placement"])
    assert {"marks", "embeds", "placeholder", "text", "html"} <= set(
        definitions["Withhold"]["properties"]
    )


def test_rule_tests_can_expect_withholds(tmp_path: Path) -> None:
    from compliance.ruletests import run_rule_tests

    engine = engine_for(
        tmp_path,
        "    withhold: {embeds: ['*.rt.com'], placeholder: false}\n"
        "    tests:\n"
        "      - name: right\n        reader: {country: DE}\n"
        "        expect: {withholds: [r]}\n"
        "      - name: wrong\n        reader: {country: FR}\n"
        "        expect: {withholds: [r]}\n",
    )
    right, wrong = run_rule_tests(engine)
    assert right.passed
    assert wrong.failures == ("expected withholds ['r'], got []",)
    assert problems(
        tmp_path,
        "    withhold: {marks: [x], placeholder: false}\n    tests:\n"
        "      - name: t\n        reader: {country: DE}\n        expect: {withholds: [nope]}\n",
    ) == ["10:30: rules[0].tests[0].expect.withholds[0]: unknown rule id 'nope'"]


def test_plain_text_of_html_keeps_list_items_apart(tmp_path: Path) -> None:
    """The 451 explanation as JSON (and every plain-text form) of an ``html:`` text with a
    list ran the items and what follows together: "this articleits commentsAppeal"."""
    import json

    from compliance.testing import call_wsgi, wsgi_environ
    from compliance.wsgi import ComplianceMiddleware

    path = tmp_path / "r.yaml"
    path.write_text(
        HEAD + "    block:\n      blocked_by: https://court.example/\n      html:\n"
        "        en: '<p>The order names:</p><ul><li>this article</li><li>its <em>comments"
        "</em></li></ul>Appeal within <strong>30</strong> days.<ol><li>Write</li><li>Wait"
        "<br>long</li></ol>'\n",
        encoding="utf-8",
    )
    geo = FixedGeolocator({"192.0.2.1": Location.of("DE")})
    engine = Engine(load_rules([path]), geo)

    def app(environ: object, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<p>article</p>"]

    environ = wsgi_environ("/", peer="192.0.2.1", headers=[("Accept", "application/json")])
    response = call_wsgi(ComplianceMiddleware(app, engine), environ)
    assert response.status == 451
    expected = (
        "The order names:\n\n- this article\n\n- its comments\n\nAppeal within 30 days."
        "\n\n1. Write\n\n2. Wait\n\nlong"
    )
    assert json.loads(response.body)["message"] == expected
    block = engine.decide(ip="192.0.2.1").block
    assert block is not None
    assert block.text() == expected


@pytest.mark.parametrize(
    ("html", "shown"),
    [
        ("<p>Действует до {until}.</p>", "<p>Действует до 1 марта 2025 г.</p>"),  # noqa: RUF001
        ("<p>До {until}.<br>Далее</p>", "<p>До 1 марта 2025 г.<br />Далее</p>"),  # noqa: RUF001
        ("<ul><li>До {until}.</li></ul>", "<ul><li>До 1 марта 2025 г.</li></ul>"),  # noqa: RUF001
        ("<p>«До {until}.»</p>", "<p>«До 1 марта 2025 г.»</p>"),  # noqa: RUF001
        ("<p>До {until}...</p>", "<p>До 1 марта 2025 г....</p>"),  # noqa: RUF001
    ],
)
def test_a_russian_date_ending_an_html_sentence_has_one_full_stop(html: str, shown: str) -> None:
    """Russian dates end in an abbreviation of "year" with its own full stop: the template's
    full stop after one is dropped in ``html:`` texts too, where the sentence ends before a
    tag (two full stops before "</p>" until now)."""
    from compliance.models import Notice
    from compliance.render import message_body

    notice = Notice(
        html={"ru": html}, default_locale="ru", variables={"until": dt.date(2025, 3, 1)}
    )
    assert message_body(notice, "ru", {}).replace("\u202f", " ") == shown


def test_a_notice_in_an_xhtml_page_keeps_it_well_formed(tmp_path: Path) -> None:
    """The middleware edits ``application/xhtml+xml`` pages, which browsers parse as XML:
    nh3's ``<br>`` and ``&nbsp;`` (written for every no-break space) in an ``html:`` notice
    stopped the page at "Entity 'nbsp' not defined", the rest of it never shown."""
    from xml.etree import ElementTree

    from compliance.testing import call_wsgi, wsgi_environ
    from compliance.wsgi import ComplianceMiddleware

    path = tmp_path / "r.yaml"
    path.write_text(
        HEAD + "    notice:\n      html:\n        en: '<p>Made by an agent.<br>Read more"
        '&nbsp;<a href="https://e.org/?a=1&amp;b=2">here</a>, 1\u00a0000 times.</p>\'\n',
        encoding="utf-8",
    )
    engine = Engine(load_rules([path]), FixedGeolocator({"192.0.2.1": Location.of("DE")}))
    page = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><title>t</title></head>'
        b"<body><p>Article.</p></body></html>"
    )

    def app(environ: object, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/xhtml+xml; charset=utf-8")])
        return [page]

    response = call_wsgi(ComplianceMiddleware(app, engine), wsgi_environ("/", peer="192.0.2.1"))
    assert response.notices == ["r"]
    root = ElementTree.fromstring(response.body)  # raises on a page browsers cannot show
    (aside,) = root.iter("{http://www.w3.org/1999/xhtml}aside")
    text = "".join(aside.itertext())
    assert text == "Made by an agent.Read more\u00a0here, 1\u00a0000 times."
    (notice,) = engine.decide(ip="192.0.2.1").notices
    assert notice.text() == (
        "Made by an agent.\n\nRead more here (https://e.org/?a=1&b=2), 1 000 times."
    )


def test_a_number_keeps_every_digit_given(tmp_path: Path) -> None:
    """Numbers are written for the locale, but never rounded: babel's pattern alone cut
    0.0125 to 0.012 and 1234.5678 to 1,234.568."""
    from compliance.models import Notice
    from compliance.render import message_text

    notice = Notice(
        text={"en": "{rate} of {amount}.", "ru": "{rate} от {amount}."},
        variables={"rate": 0.0125, "amount": 1234.5678},
    )
    assert message_text(notice, "en", {}) == "0.0125 of 1,234.5678."
    assert message_text(notice, "ru", {}).replace("\u00a0", " ") == "0,0125 от 1 234,5678."


def test_a_per_locale_value_falls_back_to_its_nearest_locale(tmp_path: Path) -> None:
    """A text in ``zh-Hant-TW`` takes the ``zh-Hant`` (Traditional) value before the ``zh``
    one (Simplified): it took the bare language's, in the other script."""
    engine = engine_for(
        tmp_path,
        "    notice:\n      default_locale: zh-Hant-TW\n"
        "      variables: {org: {zh: 自由亚洲电台, zh-Hant: 自由亞洲電台}}\n"
        "      text: {zh-Hant-TW: '{org}', zh-Hans-CN: '{org}'}\n",
    )
    (notice,) = engine.decide(location=Location.of("DE"), at=DAY).notices
    assert notice.text("zh-Hant-TW") == "自由亞洲電台"
    assert notice.text("zh-Hans-CN") == "自由亚洲电台"


def test_the_english_status_line_of_a_451_page_in_another_language_says_so(
    tmp_path: Path,
) -> None:
    """The 451 page's title and heading are English in a page of the block's language (here
    Arabic): they carry ``lang="en"``, else screen readers read them with an Arabic voice."""
    engine = engine_for(
        tmp_path,
        "    block:\n      blocked_by: https://court.example/\n      default_locale: ar\n"
        "      text: {ar: محجوب., en: Blocked.}\n",
    )
    decision = engine.decide(location=Location.of("DE"), accept_language="ar", at=DAY)
    assert decision.block is not None
    page = decision.block.html()
    assert page.startswith('<!DOCTYPE html>\n<html lang="ar" dir="rtl">')
    assert '<title lang="en" dir="ltr">451 Unavailable For Legal Reasons</title>' in page
    assert '<h1 lang="en" dir="ltr">451 Unavailable For Legal Reasons</h1>' in page
    english = engine.decide(location=Location.of("DE"), accept_language="en", at=DAY).block
    assert english is not None
    assert "<h1>451 Unavailable For Legal Reasons</h1>" in english.html()


def test_the_plain_text_of_a_link_keeps_where_it_points(tmp_path: Path) -> None:
    """The JSON 451 explanation (and ``.text()``) of an ``html:`` text said "click here"
    with nowhere to click: the link's target now follows its text."""
    engine = engine_for(
        tmp_path,
        "    block:\n      blocked_by: https://court.example/\n      html:\n"
        '        en: \'<p>To appeal, <a href="https://court.example/?case=7&amp;y=2025">read '
        '<em>this</em></a> or write to <a href="mailto:clerk@court.example">'
        "clerk@court.example</a>.</p>'\n",
    )
    block = engine.decide(location=Location.of("DE"), at=DAY).block
    assert block is not None
    expected = (
        "To appeal, read this (https://court.example/?case=7&y=2025) or write to "
        "clerk@court.example."
    )
    assert block.text() == expected
    assert json.loads(block.json())["message"] == expected


FOLDED = """\
    notice:
      text:
        en: >
          First paragraph,
          still the first.

          Second paragraph.
        de: First paragraph,
          still the first.

          Second paragraph.
        fr: 'First paragraph,
          still the first.

          Second paragraph.'
        ru: "First paragraph,
          still the first.

          Second paragraph."
        uk: |
          First paragraph,
          still the first.

          Second paragraph.
        it: >
          One paragraph,
          on two lines.
"""


@pytest.mark.parametrize("locale", ["en", "de", "fr", "ru", "uk"])
def test_a_blank_line_starts_a_paragraph_however_the_text_is_written(
    tmp_path: Path, locale: str
) -> None:
    """docs/rules.md: in `text`, "a blank line starts a new paragraph, other line breaks are
    spaces". YAML folds a blank line in a folded (>), plain or quoted text into a single
    line break, which rendered as a space: the two paragraphs a lawyer wrote ran together.
    Only a literal block (|) kept them."""
    engine = engine_for(tmp_path, FOLDED)
    [notice] = engine.decide(location=Location.of("DE"), at=DAY).notices
    assert notice.html(locale).endswith(
        "<p>First paragraph, still the first.</p><p>Second paragraph.</p></aside>"
    )
    assert notice.text(locale) == "First paragraph, still the first.\n\nSecond paragraph."
    assert notice.html("it").endswith("<p>One paragraph, on two lines.</p></aside>")

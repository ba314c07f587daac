"""Turning a notice or a block into HTML (DESIGN.md section 4): everything escaped.

Plain ``text`` is HTML-escaped; a blank line starts a new paragraph and other line breaks are
spaces. ``html`` is sanitized with nh3 against a small allow-list. Variables are formatted for
the locale (dates with babel) and escaped before they are put in.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import re
import string
from collections.abc import Mapping
from typing import Any

import nh3
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from .decision import DEFAULT_CSS, style_element
from .errors import VariableMissing
from .locales import parse_locale
from .models import HTML_ATTRIBUTES, HTML_LINK_SCHEMES, HTML_TAGS, Block, Texts, value_for_locale

__all__ = [
    "DEFAULT_CSS",
    "block_json",
    "block_page",
    "format_text",
    "language_attributes",
    "missing_variables",
    "notice_html",
    "style_element",
    "unset_required",
    "withhold_html",
]

_FULL_STOP = re.compile("\\.(?=$|\\s|</?[A-Za-z]|[)\\]\"'\u00bb\u201d\u2019])")
"""A template's full stop that ends a sentence: then the end of the text, a space, a tag
(``</p>``, ``<br>``) or closing punctuation; not an ellipsis, nor ".5"."""
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SPACES = re.compile(r"\s+")
# "*": none; nh3 (ammonia) otherwise keeps `lang` and `title` on every allowed tag.
_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(names) for tag, names in HTML_ATTRIBUTES.items()},
    "*": set(),
}


def _format_value(value: Any, spec: str, locale: str) -> str:
    babel_locale = parse_locale(locale) or "en"
    if isinstance(value, dt.datetime):
        return format_datetime(value, spec or "long", locale=babel_locale)
    if isinstance(value, dt.date):
        return format_date(value, spec or "long", locale=babel_locale)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        # Every digit given: babel's pattern alone rounds to three decimals (0.0125 to 0.012).
        return format_decimal(value, locale=babel_locale, decimal_quantization=False)
    return str(value)


def format_text(template: str, variables: Mapping[str, Any], locale: str, *, escape: bool) -> str:
    """Fill ``{name}`` placeholders, formatting values for ``locale`` (escaped if asked).

    >>> format_text("{org} <b>", {"org": "A&B"}, "en", escape=True)
    'A&amp;B <b>'
    """
    out: list[str] = []
    for literal, name, spec, _ in string.Formatter().parse(template):
        if out and out[-1].endswith(".") and _FULL_STOP.match(literal):
            # A value ending in its own full stop (Russian dates end "2025 g.", abbreviating
            # "year") takes the template's, so "{date}." does not end with two, in text
            # and in HTML ("{date}.</p>"), before a closing quote or bracket too.
            literal = literal[1:]
        out.append(literal)
        if name is not None:
            value = _format_value(variables[name], spec or "", locale)
            out.append(html.escape(value) if escape else value)
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _placeholder_names(template: str) -> frozenset[str]:
    try:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)
    except ValueError:  # unbalanced braces: the loader reports them
        return frozenset()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_variables(message: Texts, variables: Mapping[str, Any], locale: str) -> tuple[str, ...]:
    """The required variables (``null`` in the rule) that the text in ``locale`` uses and
    ``variables`` (the site's) give no value for in that locale; a blank text counts as
    none. Empty when the message can be rendered.

    >>> from compliance.models import Notice
    >>> notice = Notice(variables={"name": None}, text={"en": "By {name}.", "de": "Von X."})
    >>> missing_variables(notice, {}, "en"), missing_variables(notice, {}, "de")
    (('name',), ())
    >>> missing_variables(notice, {"name": {"de": "Y"}}, "en")
    ('name',)
    """
    required = [name for name, value in message.variables.items() if value is None]
    template = message.texts.get(locale) if required else None
    if template is None:
        return ()
    used = _placeholder_names(template)
    return tuple(
        name
        for name in required
        if name in used and _blank(value_for_locale(variables.get(name), locale))
    )


def unset_required(message: Texts, variables: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each required variable the site has not set: the locales whose text needs it."""
    unset: dict[str, list[str]] = {}
    for locale in message.texts:
        for name in missing_variables(message, variables, locale):
            unset.setdefault(name, []).append(locale)
    return unset


def _paragraphs(text: str) -> list[str]:
    return [
        p for p in (_SPACES.sub(" ", part).strip() for part in _PARAGRAPH_BREAK.split(text)) if p
    ]


def _merged(message: Texts, overrides: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """The message's variables in ``locale``, site-wide values replacing those it declares
    (a per-locale site-wide value without this locale, or a blank one, leaves the rule's
    own: a blank value from the site counts as unset, as for a required variable)."""
    merged: dict[str, Any] = {}
    for name, value in message.variables.items():
        found = None
        if name in overrides:
            found = value_for_locale(overrides[name], locale)
        if _blank(found):
            found = value_for_locale(value, locale)
        merged[name] = "" if found is None else found
    return merged


def _check_required(message: Texts, variables: Mapping[str, Any], locale: str, rule: str) -> None:
    missing = missing_variables(message, variables, locale)
    if missing:
        raise VariableMissing(rule, missing, locale)


def message_body(
    message: Texts, locale: str, variables: Mapping[str, Any], *, rule: str = ""
) -> str:
    """The inner HTML of a message in ``locale``: paragraphs, escaped or sanitized.

    Raises :class:`~compliance.errors.VariableMissing` when the text needs a required
    variable that ``variables`` do not set (``rule`` names the rule in the error)."""
    _check_required(message, variables, locale, rule)
    merged = _merged(message, variables, locale)
    if message.text is not None:
        text = format_text(message.text[locale], merged, locale, escape=False)
        return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in _paragraphs(text))
    assert message.html is not None
    filled = format_text(message.html[locale], merged, locale, escape=True)
    cleaned = nh3.clean(
        filled,
        tags=set(HTML_TAGS),
        attributes=_ATTRIBUTES,
        url_schemes=set(HTML_LINK_SCHEMES),
        link_rel="noopener noreferrer",
    )
    return _polyglot(cleaned)


def _polyglot(markup: str) -> str:
    """nh3's HTML serialization made XML too, as an ``application/xhtml+xml`` page needs
    (the middleware edits those): ``<br>`` closed, and ``&nbsp;``, the only named entity
    besides XML's own that nh3 writes (for every no-break space), as a number. Either one
    stopped the page at a parse error in browsers.

    >>> _polyglot("<p>a<br>1&nbsp;000 &amp;</p>")
    '<p>a<br />1&#160;000 &amp;</p>'
    """
    if "<br>" in markup:
        markup = markup.replace("<br>", "<br />")
    if "&nbsp;" in markup:
        markup = markup.replace("&nbsp;", "&#160;")
    return markup


def message_text(
    message: Texts, locale: str, variables: Mapping[str, Any], *, rule: str = ""
) -> str:
    """The message as plain text (paragraphs separated by blank lines), for JSON and CLIs.
    Raises :class:`~compliance.errors.VariableMissing` as :func:`message_body` does."""
    if message.text is not None:
        _check_required(message, variables, locale, rule)
        merged = _merged(message, variables, locale)
        return "\n\n".join(
            _paragraphs(format_text(message.text[locale], merged, locale, escape=False))
        )
    body = message_body(message, locale, variables, rule=rule)
    stripped = nh3.clean(_text_breaks(_link_targets(body)), tags=set())
    return "\n\n".join(_paragraphs(html.unescape(stripped)))


_LINK = re.compile(r'<a href="([^"]*)"[^>]*>(.*?)</a>', re.DOTALL)


def _link_targets(body: str) -> str:
    """Sanitized markup with each link's target written after its text, which plain text
    would otherwise lose ("click here" with nowhere to click).

    >>> _link_targets('<a href="https://e.org/" rel="x">more <em>here</em></a>')
    'more <em>here</em> (https://e.org/)'
    >>> _link_targets('<a href="https://e.org/" rel="x">https://e.org/</a>')
    'https://e.org/'
    """
    if "<a " not in body:
        return body

    def replace(link: re.Match[str]) -> str:
        target, text = link[1], link[2]
        shown = html.unescape(nh3.clean(text, tags=set())).strip()
        if shown == html.unescape(target) or shown == html.unescape(target).removeprefix("mailto:"):
            return text
        return f"{text} ({target})"

    return _LINK.sub(replace, body)


_BLOCK_TAG = re.compile(r"<(/?)(p|br|ul|ol|li)\b[^>]*>", re.IGNORECASE)


def _text_breaks(body: str) -> str:
    """Sanitized markup with a blank line at each paragraph, line break, list and list item,
    and each item marked (``- ``, or its number in an ordered list), so that the plain text
    keeps them apart ("<li>a</li><li>b</li>" is not "ab").

    >>> _paragraphs(_text_breaks("<p>x</p><ol><li>a</li><li>b<br>c</li></ol><ul><li>d</ul>e"))
    ['x', '1. a', '2. b', 'c', '- d', 'e']
    """
    counters: list[int | None] = []  # per open list: the last number given, None unordered

    def replace(tag: re.Match[str]) -> str:
        closing, name = tag[1], tag[2].lower()
        if name in ("ul", "ol"):
            if closing and counters:
                counters.pop()
            elif not closing:
                counters.append(0 if name == "ol" else None)
        elif name == "li" and not closing:
            number = counters[-1] if counters else None
            if number is None:
                return "\n\n- "
            counters[-1] = number + 1
            return f"\n\n{number + 1}. "
        return "\n\n"

    return _BLOCK_TAG.sub(replace, body)


def _dir(locale: str) -> str:
    """The ``dir`` attribute of markup in ``locale``: always stated, left-to-right too, since
    a notice (or placeholder) inherits the direction of the page it is put in, and a
    Russian notice in a Persian page would otherwise be laid out right to left."""
    parsed = parse_locale(locale)
    if parsed is None:
        return ""
    return ' dir="rtl"' if parsed.text_direction == "rtl" else ' dir="ltr"'


@functools.lru_cache(maxsize=4096)
def _lang(locale: str) -> str:
    return locale.replace("_", "-")


def language_attributes(locale: str) -> str:
    """The ``lang`` and ``dir`` attributes of markup in ``locale``, as every notice,
    placeholder and block page carries them.

    >>> language_attributes("he"), language_attributes("pt_BR")
    ('lang="he" dir="rtl"', 'lang="pt-BR" dir="ltr"')
    """
    return f'lang="{html.escape(_lang(locale))}"{_dir(locale)}'


def notice_html(rule_id: str, message: Texts, locale: str, variables: Mapping[str, Any]) -> str:
    """The ``<aside class="compliance-notice">`` element for one notice."""
    body = message_body(message, locale, variables, rule=rule_id)
    return (
        f'<aside class="compliance-notice" data-compliance-rule="{html.escape(rule_id)}" '
        f'{language_attributes(locale)} role="note">{body}</aside>'
    )


def withhold_html(rule_id: str, message: Texts, locale: str, variables: Mapping[str, Any]) -> str:
    """The ``<aside class="compliance-withheld">`` put in place of a withheld element."""
    body = message_body(message, locale, variables, rule=rule_id)
    return (
        f'<aside class="compliance-withheld" data-compliance-rule="{html.escape(rule_id)}" '
        f"{language_attributes(locale)}>{body}</aside>"
    )


def _is_english(locale: str) -> bool:
    parsed = parse_locale(locale)
    return parsed is not None and parsed.language == "en"


def block_page(rule_id: str, block: Block, locale: str, variables: Mapping[str, Any]) -> str:
    """A complete HTML document for a 451 response (RFC 7725: say who blocks and why)."""
    body = message_body(block, locale, variables, rule=rule_id)
    link = html.escape(block.blocked_by)
    # The status line is English whatever the page's language: say so, for screen readers,
    # and lay it out left to right in a right-to-left page ("451 ..." not "... 451").
    english = "" if _is_english(locale) else ' lang="en" dir="ltr"'
    return (
        f'<!DOCTYPE html>\n<html {language_attributes(locale)}><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title{english}>451 Unavailable For Legal Reasons</title>"
        '<meta name="robots" content="noindex"></head><body>'
        f'<main class="compliance-block" data-compliance-rule="{html.escape(rule_id)}">'
        f"<h1{english}>451 Unavailable For Legal Reasons</h1>"
        f"{body}"
        # A URL reads left to right in any page (a final "/" would stand first in RTL).
        f'<p class="compliance-blocked-by"><a href="{link}" rel="blocked-by" dir="ltr">'
        f"{link}</a></p>"
        "</main></body></html>\n"
    )


def block_json(rule_id: str, block: Block, locale: str, variables: Mapping[str, Any]) -> str:
    """The 451 explanation as JSON, for clients that prefer JSON."""
    return json.dumps(
        {
            "status": block.status,
            "error": "unavailable_for_legal_reasons",
            "rule": rule_id,
            "locale": _lang(locale),
            "message": message_text(block, locale, variables, rule=rule_id),
            "blocked_by": block.blocked_by,
        },
        ensure_ascii=False,
    )

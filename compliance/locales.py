"""Choosing the language of a notice (DESIGN.md section 3), with babel's CLDR data.

Order: the page's language, then the reader's ``Accept-Language`` (q-values honoured), then
the official languages of the reader's country, then the notice's ``default_locale``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from babel import Locale, UnknownLocaleError
from babel.core import LOCALE_ALIASES, get_global
from babel.languages import get_official_languages

from compliance.cache import BoundedCache, remembered
from compliance.http import QVALUE

__all__ = [
    "LocaleChoice",
    "accept_language_key",
    "choose_locale",
    "jurisdiction_locales",
    "likely_territory",
    "locale_key",
    "match_locale",
    "matched_range",
    "maximize",
    "official_languages",
    "parse_accept_language",
    "parse_language_tag",
    "parse_locale",
    "read_ranges",
]

Reason = Literal["page", "accept-language", "jurisdiction", "default"]

# Accept-Language is the reader's to write: only its first _MAX_HEADER characters and
# _MAX_ITEMS ranges are read, and a range (its tag, weight and whitespace) longer than
# _MAX_RANGE characters is skipped (BCP 47 tags people send are far shorter than _MAX_TAG),
# so what is parsed and cached stays small.
_MAX_HEADER = 1024
_MAX_ITEMS = 16
_MAX_TAG = 35
_MAX_RANGE = _MAX_TAG + 16
# The weight's name is case-insensitive, as every parameter name (RFC 9110 section 5.6.6).
# Whitespace is the RFC's OWS, spaces and tabs: `\s` differs between Python (which counts
# U+0085, U+00A0 and U+001C to U+001F), JavaScript and nginx's PCRE, and the exports use this.
_ITEM = re.compile(
    r"^[ \t]*(?P<tag>\*|[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8}){0,7})[ \t]*"
    rf"(?:;[ \t]*[qQ][ \t]*=[ \t]*(?P<q>{QVALUE}))?[ \t]*$"
)


_SINGLETON = re.compile(r"(?:^|[-_])[A-Za-z0-9](?=[-_]|$)")


def matched_range(tag: str) -> str:
    """The part of a language tag that is matched: everything before its first singleton
    subtag, which starts an extension (``-u-co-phonebk``, ``-t-ru``) or private use
    (``-x-foo``), as RFC 4647 lookup drops them (babel reads no such tag). Language, script,
    region and variants stay; a tag that is private use from the start has nothing left.

    >>> matched_range("de-DE-u-co-phonebk"), matched_range("ru_RU_x_foo"), matched_range("x-foo")
    ('de-DE', 'ru_RU', '')
    """
    singleton = _SINGLETON.search(tag)
    return tag if singleton is None else tag[: singleton.start()]


MAX_TAG: Final = 64
"""Longest code :func:`parse_locale` reads a locale from."""


def locale_key(code: str) -> str:
    """A locale code as it compares: BCP 47 tags ignore case, and POSIX's ``_`` is ``-``, so
    ``pt_BR``, ``pt-br`` and ``PT-BR`` name one locale.

    >>> locale_key("pt_BR") == locale_key("PT-br")
    True
    """
    return code.replace("_", "-").lower()


@remembered(4096, 2 << 20, size=512, longest=MAX_TAG)  # a Locale before its data is read
def parse_locale(code: str) -> Locale | None:
    """A babel ``Locale`` for a BCP 47 or POSIX-style code (``pt-BR``, ``pt_BR``), or None.

    >>> parse_locale("pt-BR").territory, parse_locale("xx-nonsense")
    ('BR', None)
    """
    if len(code) > MAX_TAG:
        return None
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def parse_language_tag(tag: str) -> Locale | None:
    """The locale a language tag names as negotiation reads it (a page's ``lang``, a
    reader's language): :func:`parse_locale` of its :func:`matched_range`, so that a valid
    tag with an extension (``ru-RU-u-nu-latn``) names ``ru-RU``. None for a tag that names
    no locale (and for a non-ASCII one: BCP 47 tags are ASCII).

    >>> str(parse_language_tag("ru-RU-u-nu-latn")), parse_language_tag("x-private")
    ('ru_RU', None)
    """
    return parse_locale(matched_range(tag)) if tag.isascii() else None


@dataclass(frozen=True, slots=True)
class LocaleChoice:
    """The locale chosen for a notice, and which step of the order chose it."""

    locale: str
    reason: Reason


def accept_language_key(header: str | None) -> str | None:
    """A bounded stand-in for ``Accept-Language`` that negotiates exactly like it: the
    header itself when short, else the ranges that :func:`parse_accept_language` reads,
    re-joined. Use it, never the raw header, as (part of) a cache key.

    >>> accept_language_key("ru, en;q=0.5")
    'ru, en;q=0.5'
    >>> key = accept_language_key("de;q=0.9," + "x" * 1_000_000)
    >>> key, parse_accept_language(key) == parse_accept_language("de;q=0.9," + "x" * 1_000_000)
    ('de', True)
    """
    if header is None or len(header) <= 128:
        return header
    preferred, refused, below = _parse(header[:_MAX_HEADER])
    # Equal weights keep the order given: the order is all that negotiation uses, and which
    # ranges a "*" outranks (they keep a lower weight than the "*", 1).
    return ",".join(
        [
            *(f"{tag};q=0.5" if tag in below else tag for tag in preferred),
            *(f"{tag};q=0" for tag in sorted(refused)),
        ]
    )


def parse_accept_language(header: str | None) -> tuple[tuple[str, ...], frozenset[str]]:
    """Parse ``Accept-Language`` into (tags by preference, refused tags with ``q=0``).

    Malformed items are skipped, among them a range whose weight is not an RFC 9110
    qvalue (``q=1.5``, ``q=.5``); the header is never an error. Only the first 1,024
    characters and 16 ranges are read.

    >>> parse_accept_language("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7,*;q=0.5")
    (('ru-RU', 'ru', 'en-US', 'en', '*'), frozenset())
    >>> parse_accept_language("de;q=0, fr;q=bogus, uk")
    (('uk',), frozenset({'de'}))
    """
    if not header:
        return (), frozenset()
    preferred, refused, _below = _parse(header[:_MAX_HEADER])
    return preferred, refused


_Parsed = tuple[tuple[str, ...], frozenset[str], frozenset[str]]


def read_ranges(header: str | None) -> _Parsed:
    """:func:`parse_accept_language`, and the ranges a ``*`` outranks (after it, with a
    lower weight: ``ru`` in ``*, ru;q=0.5``, whose reader prefers any other language).

    >>> read_ranges("*, ru;q=0.5")
    (('*', 'ru'), frozenset(), frozenset({'ru'}))
    """
    if not header:
        return (), frozenset(), frozenset()
    return _parse(header[:_MAX_HEADER])


def _parsed_size(header: str, parsed: _Parsed) -> int:
    tags = len(parsed[0]) + len(parsed[1]) + len(parsed[2])
    return 49 + len(header) + 450 + tags * (_MAX_TAG + 120)


@remembered(2048, 1 << 20, size=_parsed_size, longest=_MAX_HEADER)
def _parse(header: str) -> _Parsed:
    weighted: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for index, item in enumerate(header.split(",", _MAX_ITEMS)[:_MAX_ITEMS]):
        if len(item) > _MAX_RANGE:
            continue
        match = _ITEM.match(item)
        if match is None:
            continue
        tag, q = match["tag"], match["q"]
        weight = float(q) if q is not None else 1.0
        if weight <= 0:
            refused.add(tag)
        else:
            weighted.append((-weight, index, tag))
    weighted.sort()
    star = next((-weight for weight, _, tag in weighted if tag == "*"), None)
    below = frozenset(
        tag for weight, _, tag in weighted if star is not None and -weight < star and tag != "*"
    )
    return tuple(tag for _, _, tag in weighted), frozenset(refused), below


@functools.lru_cache(maxsize=512)
def official_languages(country: str | None) -> tuple[str, ...]:
    """Official (and de facto official) languages of a country, most spoken first.

    >>> official_languages("RU")
    ('ru',)
    """
    if not country:
        return ()
    try:
        return tuple(get_official_languages(country, de_facto=True))
    except (KeyError, ValueError):
        return ()


def maximize(locale: Locale) -> tuple[str, str, str | None]:
    """(language, script, territory) with the script filled from CLDR's likely subtags."""
    script = locale.script
    if script is None:
        likely = get_global("likely_subtags")
        keys = [f"{locale.language}_{locale.territory}"] if locale.territory else []
        for key in [*keys, locale.language]:
            full = likely.get(key)
            if full:
                parts = full.split("_")
                script = next((p for p in parts[1:] if len(p) == 4), None)
                if script:
                    break
    return locale.language, script or "", locale.territory


def likely_territory(language: str, script: str) -> str | None:
    """The region CLDR's likely subtags give a language written in a script (``pt``: ``BR``,
    ``zh`` in ``Hant``: ``TW``, ``sr`` in ``Latn``: ``RS``), looked up as the "add likely
    subtags" algorithm does: language and script, then language alone.

    >>> [likely_territory(*pair) for pair in (("pt", "Latn"), ("zh", "Hant"), ("sr", "Latn"))]
    ['BR', 'TW', 'RS']
    """
    likely = get_global("likely_subtags")
    for key in (f"{language}_{script}", language):
        full = likely.get(key)
        if full:
            parts = full.split("_")[1:]
            return next((p for p in parts if len(p) == 2 or p.isdigit()), None)
    return None


# Best matches by (tag, the notice's locales, region): "" when none. The tags and regions
# come from requests.
_matches: BoundedCache[tuple[str, tuple[str, ...], str | None], str] = BoundedCache(4096, 1 << 20)


def match_locale(
    preferred: str, available: Sequence[str], *, region: str | None = None
) -> str | None:
    """The best of ``available`` for one language tag, or None. Among the locales of the
    same language and script: the one of the tag's region, else one without a region, else
    the first listed. A tag without a region is read as of ``region`` (the reader's country,
    in the jurisdiction step) when given, and CLDR's likely region for the language comes
    before the first listed (a bare ``pt`` is ``pt-BR``).

    >>> match_locale("pt", ("pt_PT", "pt_BR")), match_locale("pt", ("pt_PT", "pt_BR"), region="PT")
    ('pt_BR', 'pt_PT')
    """
    options = tuple(available)
    key = (preferred, options, region)
    found = _matches.get(key)
    if found is None:
        found = _matches.set(key, _best_match(preferred, options, region) or "")
    return found or None


@remembered(1024, 128 * 1024, size=96, longest=16)  # a reader's languages choose the keys
def _same_language(language: str) -> str:
    """The language ``language`` is matched as: CLDR's aliases of retired codes (``iw`` is
    ``he``) and babel's alias of the macrolanguage ``no`` (Norwegian), which is ``nb``
    (Bokmål) as browsers and sites use it; ``nn`` (Nynorsk) stays itself."""
    language = get_global("language_aliases").get(language, language)
    alias = LOCALE_ALIASES.get(language)
    if alias is not None and language == "no":
        return alias.partition("_")[0]
    return language


def _language_of(code: str) -> str:
    return code.replace("_", "-").partition("-")[0].lower()


_UNDETERMINED = "und"
"""BCP 47's "undetermined language" (``<html lang="und">``, language-neutral content):
no language to match, though babel reads it through CLDR's likely subtags as English."""


def _best_match(preferred: str, available: tuple[str, ...], region: str | None) -> str | None:
    if not preferred.isascii():
        # BCP 47 tags are ASCII: this one names no language (babel would read some non-ASCII
        # letters and digits as subtags, by the Unicode version of the Python it runs on).
        return None
    preferred = matched_range(preferred)
    if _language_of(preferred) == _UNDETERMINED:
        return None
    wanted = parse_locale(preferred)
    if wanted is None:
        return None
    language, script, territory = maximize(wanted)
    # A language without a region is read as spoken in ``region`` (the jurisdiction step's
    # country) when given; failing a locale of that region or one without a region, as
    # spoken in CLDR's likely region: a bare `pt` is pt-BR, whatever order they are listed in.
    likely = None
    if territory is None:
        territory = region
        likely = likely_territory(wanted.language, script)
    language = _same_language(language)
    fallback_general: str | None = None
    fallback_likely: str | None = None
    fallback_other: str | None = None
    # A locale of the very language asked for comes before one matched through an alias.
    ordered = sorted(available, key=lambda code: _language_of(code) != wanted.language)
    for code in ordered:
        have = parse_locale(code)
        if have is None:
            continue
        h_language, h_script, h_territory = maximize(have)
        if _same_language(h_language) != language or h_script != script:
            continue
        if h_territory == territory:
            return code
        if h_territory is None:
            fallback_general = fallback_general or code
        elif h_territory == likely:
            fallback_likely = fallback_likely or code
        else:
            fallback_other = fallback_other or code
    return fallback_general or fallback_likely or fallback_other


def jurisdiction_locales(available: Sequence[str], country: str | None) -> tuple[str, ...]:
    """The locales the official languages of ``country`` pick among ``available``, most
    spoken first, each language read as spoken there (``pt`` in Portugal picks ``pt_PT``).

    >>> jurisdiction_locales(("pt_BR", "pt_PT", "en"), "PT")
    ('pt_PT',)
    """
    options = tuple(available)
    found = (match_locale(lang, options, region=country) for lang in official_languages(country))
    return tuple(dict.fromkeys(code for code in found if code is not None))


def choose_locale(
    available: Sequence[str],
    default: str,
    *,
    page_language: str | None = None,
    accept_language: str | None = None,
    country: str | None = None,
) -> LocaleChoice:
    """Pick one of ``available`` (the locales a notice has text for).

    >>> choose_locale(("en", "ru", "uk"), "en", accept_language="ru-RU,ru;q=0.9")
    LocaleChoice(locale='ru', reason='accept-language')
    >>> choose_locale(("en", "ru"), "en", accept_language="fr", country="RU")
    LocaleChoice(locale='ru', reason='jurisdiction')
    >>> choose_locale(("en", "pt"), "en", page_language="pt-BR", accept_language="en")
    LocaleChoice(locale='pt', reason='page')

    A ``*`` lets the reader's country choose among the languages it does not outrank
    (``*, ru;q=0.5``: any language but Russian first):

    >>> choose_locale(("en", "ru"), "en", accept_language="*, ru;q=0.5", country="RU")
    LocaleChoice(locale='en', reason='default')
    """
    options = tuple(available)
    if len(options) == 1:
        return LocaleChoice(options[0], "default")
    if page_language:
        found = match_locale(page_language, options)
        if found is not None:
            return LocaleChoice(found, "page")
    preferred, refused, below = read_ranges(accept_language)
    for tag in preferred:
        if tag == "*":
            break  # any language will do: let the reader's jurisdiction decide
        found = match_locale(tag, options)
        if found is not None:
            return LocaleChoice(found, "accept-language")
    refused_locales = _refused(refused, options, country)
    # Any language is preferred to those a "*" outranks: the jurisdiction step and the
    # default give way to another of the notice's languages, and they come last.
    lower = _refused(below, options, country) | {
        found for tag in below if (found := match_locale(tag, options)) is not None
    }
    for found in jurisdiction_locales(options, country):
        if found not in refused_locales and found not in lower:
            return LocaleChoice(found, "jurisdiction")
    if default not in lower:
        return LocaleChoice(default, "default")
    for found in options:
        if found not in refused_locales and found not in lower:
            return LocaleChoice(found, "accept-language")
    for tag in preferred:  # every locale is outranked: by the weights
        if tag in below and (found := match_locale(tag, options)) is not None:
            return LocaleChoice(found, "accept-language")
    for found in jurisdiction_locales(options, country):
        if found not in refused_locales:
            return LocaleChoice(found, "jurisdiction")
    return LocaleChoice(default, "default")


def _refused(refused: Iterable[str], options: tuple[str, ...], country: str | None) -> set[str]:
    """The locales refused ranges pick, each read as the jurisdiction step reads a language
    (``pt;q=0`` refuses pt-PT in Portugal, pt-BR in Brazil)."""
    return {
        found
        for tag in refused
        if tag != "*" and (found := match_locale(tag, options, region=country))
    }

"""Choosing a notice's locale: language aliases CLDR and babel know."""

from __future__ import annotations

import pytest

from compliance.locales import (
    accept_language_key,
    choose_locale,
    match_locale,
    parse_accept_language,
    read_ranges,
)


@pytest.mark.parametrize(
    ("available", "accept_language", "chosen"),
    [
        # "no" (Norwegian) is the macrolanguage of "nb" (Bokmål): browsers send either.
        (("en", "nb"), "no", "nb"),
        (("en", "no"), "nb-NO", "no"),
        (("en", "nb", "no"), "no", "no"),  # the very code asked for first
        (("en", "no", "nb"), "nb", "nb"),
        (("en", "nb"), "nn", "en"),  # Nynorsk is another written language
        (("en", "he"), "iw", "he"),  # CLDR: iw is the retired code of Hebrew
    ],
)
def test_language_aliases(available: tuple[str, ...], accept_language: str, chosen: str) -> None:
    choice = choose_locale(available, "en", accept_language=accept_language)
    assert choice.locale == chosen


@pytest.mark.parametrize(
    ("page_language", "accept_language", "country", "chosen", "reason"),
    [
        # "und" is BCP 47's undetermined language (Drupal's language-neutral pages say
        # <html lang="und">): babel reads it as English, which beat the reader's Russian.
        ("und", "ru", None, "ru", "accept-language"),
        ("UND", None, "RU", "ru", "jurisdiction"),
        ("und-RU", None, "DE", "de", "jurisdiction"),
        (None, "und, ru;q=0.5", None, "ru", "accept-language"),
        ("en", "ru", None, "en", "page"),
    ],
)
def test_undetermined_language_chooses_nothing(
    page_language: str | None,
    accept_language: str | None,
    country: str | None,
    chosen: str,
    reason: str,
) -> None:
    choice = choose_locale(
        ("en", "ru", "de"),
        "de",
        page_language=page_language,
        accept_language=accept_language,
        country=country,
    )
    assert (choice.locale, choice.reason) == (chosen, reason)


@pytest.mark.parametrize(
    "page_language",
    [
        "de-AT-\u00b2000",  # babel took "\u00b2" (superscript two) for a digit: a variant
        "de-AT-\u0661\u0669\u0669\u0666",  # Arabic-Indic digits: a variant to babel
        "de-AT-\U00011f50000",  # a Kawi digit: one to babel on Python 3.12, not on 3.11
        "d\u00e9",
        "de-AT-x-\u00e9",  # not even in the private use that matching drops
        "\u212aa",  # the Kelvin sign, which lowers to an ASCII "k"
    ],
)
def test_a_tag_that_is_not_ascii_names_no_language(page_language: str) -> None:
    """BCP 47 tags are ASCII. Read by babel, some non-ASCII letters and digits made subtags,
    by the Unicode version of the Python running it (the Worker's JavaScript knows
    another): no such tag chooses a locale, as a page language nor in Accept-Language."""
    options = ("en", "de", "de_AT", "kk")
    choice = choose_locale(options, "en", page_language=page_language, accept_language="kk")
    assert (choice.locale, choice.reason) == ("kk", "accept-language")
    misread = page_language.encode().decode("latin-1")  # its UTF-8 bytes as latin-1
    assert choose_locale(options, "en", page_language=misread).reason != "page"
    assert match_locale(page_language, options) is None
    assert match_locale("de-AT-1996", options) == "de_AT"


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        # Parameter names are case-insensitive (RFC 9110 section 5.6.6): `Q=` is a weight.
        ("ru;Q=0.5, uk;q=0.4", (("ru", "uk"), frozenset())),
        ("uk;q=0.4, ru;Q=0.5", (("ru", "uk"), frozenset())),
        ("ru;Q=0, uk", (("uk",), frozenset({"ru"}))),
        # A weight that is no RFC 9110 qvalue ("0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ])
        # makes its range malformed, skipped like any other: it never outranks a valid one.
        ("de;q=1.5, ru", (("ru",), frozenset())),
        ("ru, de;q=1.5", (("ru",), frozenset())),
        ("ru;q=0.5, de;q=1.001", (("ru",), frozenset())),
        (
            "de;q=2, de;q=-1, de;q=abc, de;q=0.1234, de;q=, de;q=.5, ru;q=0.5",
            (("ru",), frozenset()),
        ),
        ("de;q=0.\u0665, ru;q=0.1", (("ru",), frozenset())),  # an Arabic-Indic digit
        ("de;q=1.000, ru;q=1., uk;q=0., be;q=0.000", (("de", "ru"), frozenset({"uk", "be"}))),
        # Whitespace is RFC 9110's OWS: spaces and tabs, nothing else Python calls a space.
        ("\tru \t;\t q = 0.5 , uk;q=0.4", (("ru", "uk"), frozenset())),
        ("ru;q=0.5\xa0, uk\x85, be\x1f, de;q=0.1", (("de",), frozenset())),
    ],
)
def test_accept_language_weights(header: str, parsed: tuple[object, object]) -> None:
    assert parse_accept_language(header) == parsed


@pytest.mark.parametrize(
    ("accept_language", "page_language", "country", "chosen"),
    [
        # RFC 4647 lookup: a singleton (an extension, private use) and what follows it are
        # dropped before matching; babel cannot read them and the range matched nothing.
        ("de-u-co-phonebk", None, None, "de"),
        ("de-DE-u-co-phonebk", None, None, "de"),
        ("ru-RU-x-foo", None, None, "ru"),
        ("uk-t-ru", None, None, "uk"),
        ("ru_RU_x_foo", None, None, "ru"),
        ("x-foo, uk", None, None, "uk"),  # private use alone: no language
        ("en", "de-CH-u-co-phonebk", None, "de"),
        ("uk-t-ru;q=0", None, "UA", "ru"),  # uk refused: the jurisdiction's next language
        ("uk;q=0.5", None, "UA", "uk"),
    ],
)
def test_extensions_and_private_use_are_not_matched(
    accept_language: str, page_language: str | None, country: str | None, chosen: str
) -> None:
    choice = choose_locale(
        ("en", "ru", "uk", "de"),
        "de" if country else "en",
        page_language=page_language,
        accept_language=accept_language,
        country=country,
    )
    assert choice.locale == chosen


REGIONAL = ("en_GB", "en_US", "de_AT", "de_DE", "pt_PT", "pt_BR", "zh_Hans_SG", "zh_Hans_CN")


@pytest.mark.parametrize(
    ("accept_language", "country", "chosen", "reason"),
    [
        # A language without a region reads as CLDR's likely subtags have it, not as the
        # first of its regional locales listed.
        ("pt", None, "pt_BR", "accept-language"),
        ("zh", None, "zh_Hans_CN", "accept-language"),
        ("zh-Hans", None, "zh_Hans_CN", "accept-language"),
        ("en", None, "en_US", "accept-language"),
        ("de", None, "de_DE", "accept-language"),
        ("pt-AO", None, "pt_PT", "accept-language"),  # no pt-AO: the first listed
        # The jurisdiction step reads a country's language as spoken there.
        (None, "PT", "pt_PT", "jurisdiction"),
        (None, "BR", "pt_BR", "jurisdiction"),
        (None, "AT", "de_AT", "jurisdiction"),
        (None, "CH", "de_DE", "jurisdiction"),  # no de-CH: CLDR's likely region
        (None, "GB", "en_GB", "jurisdiction"),
        (None, "IE", "en_US", "jurisdiction"),
        ("pt;q=0", "PT", "en_GB", "default"),  # refused as the jurisdiction reads it
        ("pt;q=0", "BR", "en_GB", "default"),
        ("pt-BR;q=0", "PT", "pt_PT", "jurisdiction"),
        ("pt", "PT", "pt_BR", "accept-language"),  # the reader's own tag: CLDR's reading
    ],
)
def test_a_language_without_a_region(
    accept_language: str | None, country: str | None, chosen: str, reason: str
) -> None:
    choice = choose_locale(REGIONAL, "en_GB", accept_language=accept_language, country=country)
    assert (choice.locale, choice.reason) == (chosen, reason)


def test_a_language_without_a_region_prefers_a_locale_without_one() -> None:
    assert choose_locale(("pt_PT", "pt", "pt_BR"), "pt_PT", accept_language="pt").locale == "pt"
    assert choose_locale(("pt_PT", "pt", "pt_BR"), "pt", country="BR").locale == "pt_BR"
    assert choose_locale(("pt_PT", "pt", "pt_BR"), "pt_BR", country="AO").locale == "pt"


def test_a_parsed_locale_is_remembered() -> None:
    """Every render and negotiation parses its locales: a babel ``Locale`` is built once per
    code (the memo had moved to ``locale_key`` when that was written above it; found in
    review)."""
    from compliance.locales import parse_locale

    assert parse_locale("pt-BR") is parse_locale("pt-BR")
    assert parse_locale.known("pt-BR") is parse_locale("pt-BR")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "country", "chosen", "reason"),
    [
        # A reader in Russia who ranks Russian below any other language: the jurisdiction
        # step chose Russian all the same (the "*" handed it the choice).
        ("*, ru;q=0.5", "RU", "en", "default"),
        ("*;q=0.6, ru;q=0.5", "RU", "en", "default"),
        ("de, *;q=0.9, ru;q=0.1", "RU", "en", "default"),
        # Ranked alike, or above the "*", Russian is as welcome as any: the country's.
        ("*, ru", "RU", "ru", "jurisdiction"),
        ("*;q=0.5, ru;q=0.5", "RU", "ru", "jurisdiction"),
        ("ru;q=0.6, *;q=0.5", "RU", "ru", "accept-language"),
        # The default ranked below any other: another of the notice's languages.
        ("*, en;q=0.5", "DE", "ru", "accept-language"),
        ("*, en;q=0.5", "UA", "uk", "jurisdiction"),
        # All of them ranked below: by their weights.
        ("*, en;q=0.3, ru;q=0.4, uk;q=0.2", "DE", "ru", "accept-language"),
        # Refused stays refused.
        ("*, en;q=0.5, uk;q=0, ru;q=0", "DE", "en", "accept-language"),
    ],
)
def test_ranges_a_star_outranks_come_last(
    header: str, country: str, chosen: str, reason: str
) -> None:
    choice = choose_locale(("en", "ru", "uk"), "en", accept_language=header, country=country)
    assert (choice.locale, choice.reason) == (chosen, reason)


def test_a_long_header_keeps_what_a_star_outranks() -> None:
    """The bounded stand-in for a long header (a cache key) negotiates as the header does."""
    header = "*, ru;q=0.5, " + ", ".join(["x-pad"] * 30)
    key = accept_language_key(header)
    assert key is not None
    assert len(key) < len(header)
    assert read_ranges(key) == read_ranges(header)
    assert choose_locale(("en", "ru"), "en", accept_language=key, country="RU").locale == "en"

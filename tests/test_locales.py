"""Choosing a notice's locale: language aliases CLDR and babel know."""

from __future__ import annotations

import pytest

from compliance.locales import choose_locale


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

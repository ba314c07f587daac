"""The limits docs/security.md lists are the code's, and each holds at its edge.

Operators size proxies, CDN rules and rule files by that table: a number there that the code
does not keep is a bound they cannot rely on. The first test reads the table and checks each
figure against the constant that enforces it; the others check the limits no other test
takes to the edge (one below is read, one above is not).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance import core, http, loader, locales, yamlpos
from compliance.core import Settings, tags_of
from compliance.geo import HeaderGeolocator, addresses, location, providers
from compliance.html import tokenizer
from compliance.http import normalize_host, split_tags
from compliance.locales import parse_accept_language

SECURITY = Path(__file__).resolve().parents[1] / "docs" / "security.md"


def _row(threat: str) -> str:
    """The limit column of the threats table row whose first column starts with ``threat``."""
    for line in SECURITY.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {threat}"):
            return line.rstrip(" |").rsplit(" | ", 1)[1]
    raise AssertionError(f"no row for {threat!r} in {SECURITY.name}")


def _size(value: int) -> str:
    """A size in bytes as the table writes it: 64 KiB, 1 MiB."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value % size == 0:
            return f"{value // size} {unit}"
    raise AssertionError(f"{value} bytes is not a whole number of KiB")


LIMITS = [
    (
        "Huge forwarding headers",
        [
            f"{addresses.MAX_FORWARDED_CHARS:,} characters",
            f"{addresses.MAX_HOPS} hops",
            f"{addresses._MAX_HOP_CHARS} characters a hop",
        ],
    ),
    (
        "Huge or many distinct `Accept-Language`",
        [
            f"{locales._MAX_HEADER:,} characters and {locales._MAX_ITEMS} ranges",
            f"{locales._MAX_RANGE} characters a range",
        ],
    ),
    ("`Host: news.example.`", [f"{http.MAX_HOST} characters"]),
    (
        "Many content tags",
        [
            f"{_size(http.MAX_TAG_TEXT)} of a tags header",
            f"{core._MAX_TAG_ITEMS:,} items of an iterable",
        ],
    ),
    ("A URL path padded", [f"{http.MAX_PATH:,} characters"]),
    (
        "A YAML alias bomb",
        [
            f"{_size(loader.MAX_FILE_BYTES)} per file",
            f"{loader.MAX_YAML_VALUES:,} values",
            f"{yamlpos._MAX_DEPTH} levels",
        ],
    ),
    (
        "A compressed body that expands",
        [
            f"`max_decoded={_size(Settings.max_decoded)}`",
            f"`max_ratio={Settings.max_ratio}`",
        ],
    ),
    ("Multi-member gzip", [f"{_size(http._WINDOW)} per window"]),
    (
        "A body sent in many small pieces",
        [
            f"`max_hold={_size(Settings.max_hold)}`",
            f"tokens {_size(tokenizer.Tokenizer.max_token)}",
            f"({_size(tokenizer.LONGEST_TAG)} while withholding)",
        ],
    ),
    (
        "Endless distinct bad country or region values",
        [
            f"{providers.MAX_HEADER_CHARS:,} characters a value",
            f"{location._WARN_BUDGET} new values a minute",
            f"{location._warned.max_entries:,} values remembered",
        ],
    ),
]


@pytest.mark.parametrize(("threat", "figures"), LIMITS, ids=[row for row, _ in LIMITS])
def test_security_md_states_the_limits_the_code_keeps(threat: str, figures: list[str]) -> None:
    limit = _row(threat)
    for figure in figures:
        assert figure in limit, f"{SECURITY.name}, {threat!r}: {limit!r} lacks {figure!r}"


def test_the_warning_budget_is_a_minute() -> None:
    assert location._WARN_INTERVAL == 60.0
    assert "20 new values a minute" in _row("Endless distinct bad country")


def test_accept_language_is_read_to_its_bounds() -> None:
    sixteen = ",".join(f"x{n:02d}" for n in range(locales._MAX_ITEMS)) + ",ru"
    assert "ru" not in parse_accept_language(sixteen)[0]
    assert "ru" in parse_accept_language(sixteen.partition(",")[2])[0]
    # A range is its tag, weight and whitespace: 51 characters are read, 52 are not.
    fits = "ru" + " " * (locales._MAX_RANGE - len("ru;q=0.5")) + ";q=0.5"
    assert len(fits) == locales._MAX_RANGE
    assert parse_accept_language(fits)[0] == ("ru",)
    assert parse_accept_language(" " + fits)[0] == ()
    # Only the first 1,024 characters: a range after them is not read.
    padding = "x" * (locales._MAX_HEADER - len(",ru"))
    assert parse_accept_language(padding + ",ru")[0] == ("ru",)
    assert parse_accept_language(padding + "xxx,ru")[0] == ()


def test_a_host_is_matched_up_to_253_characters() -> None:
    longest = ".".join(["a" * 63] * 3) + "." + "b" * 61
    assert len(longest) == http.MAX_HOST
    assert normalize_host(longest) == longest
    assert normalize_host(longest + ".") == longest  # the trailing dot is not counted
    assert normalize_host("c" + longest) == ""  # matches no `hosts:` glob


def test_tags_are_read_to_their_bounds() -> None:
    head = "x" * (http.MAX_TAG_TEXT - len(",last"))
    assert "last" in split_tags(head + ",last")
    assert "last" not in split_tags(head + "x,last")
    items = [f"t{n}" for n in range(core._MAX_TAG_ITEMS)]
    assert f"t{core._MAX_TAG_ITEMS - 1}" in tags_of(iter(items))
    assert "late" not in tags_of(iter([*items, "late"]))


def test_a_cdn_value_over_1024_characters_is_not_read() -> None:
    geo = HeaderGeolocator("generic", header="X-Geo")
    value = "RU," + " " * (providers.MAX_HEADER_CHARS - 3)
    assert len(value) == providers.MAX_HEADER_CHARS
    assert geo.locate(None, {"x-geo": value}, trusted=True).country == "RU"
    assert geo.locate(None, {"x-geo": value + " "}, trusted=True).country is None


def test_a_forwarding_hop_is_read_up_to_128_characters() -> None:
    # Only a zone id makes an address that long: fe80::1%<interface name>.
    hop = "fe80::1%" + "e" * (addresses._MAX_HOP_CHARS - len("fe80::1%"))
    assert addresses.normalize_ip(hop) == "fe80::1"
    assert addresses.normalize_ip(hop + "e") is None

"""The decision engine: matching semantics (DESIGN.md section 2), order, trace, reload."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compliance import wsgi
from compliance.engine import Engine, Request, split_url
from compliance.errors import ConfigurationError, RuleError
from compliance.export.plan import build_plan
from compliance.geo import UNKNOWN, Location
from compliance.loader import load_rules
from compliance.testing import FixedGeolocator, call_wsgi, wsgi_environ

RULES = """
version: 1
regions:
  occupied:
    title: Occupied
    include: [UA-43, UA-40, UA-14]
  eu-ish:
    title: Some EU countries but not Bavaria
    include: [DE, FR, AT]
    exclude: [DE-BY]
  eu-ish-plus:
    title: Nested region
    include: [eu-ish, PL]
rules:
  - id: ru-notice
    title: Russia notice
    jurisdictions: [RU, occupied]
    priority: 100
    effective: {from: 2024-02-20}
    notice:
      variables: {org: ACME}
      text: {en: "{org} notice", ru: "{org} уведомление", uk: "{org} повідомлення"}
  - id: everywhere
    title: Everywhere known
    jurisdictions: ["*"]
    exclude: [US]
    paths: ["/world/**"]
    notice: {text: {en: world}}
  - id: unknown-too
    title: Applies to unknown locations
    jurisdictions: [BY]
    unknown_location: apply
    tags: [sanctioned]
    notice: {placement: body_start, text: {en: unknown too}}
  - id: eu-region
    title: Region with exclude
    jurisdictions: [eu-ish]
    notice: {text: {en: eu, de: eu-de, fr: eu-fr}}
  - id: nested-region
    title: Nested region
    jurisdictions: [eu-ish-plus]
    hosts: ["*.example.org"]
    notice: {text: {en: nested}}
  - id: bounded
    title: Bounded in time
    jurisdictions: [GB]
    effective: {from: 2025-01-01, until: 2025-02-01}
    notice: {text: {en: bounded}}
  - id: paths-only
    title: News but not opinion
    jurisdictions: [SE]
    paths: ["/news/*"]
    exclude_paths: ["/news/opinion*"]
    notice: {text: {en: news}}
  - id: tagged
    title: Tagged content
    jurisdictions: [SE]
    tags: [elections, politics]
    priority: 5
    notice: {placement: marker, text: {en: tagged}}
  - id: block-de
    title: Block in Germany
    jurisdictions: [DE]
    hosts: ["blocked.example"]
    block:
      blocked_by: https://example.org/legal
      text: {en: blocked, de: gesperrt}
  - id: header-only
    title: Header action
    jurisdictions: [SE]
    headers: {X-Robots-Tag: noindex}
  - id: subdivision-only
    title: Subdivision rule
    jurisdictions: [US-CA]
    notice: {text: {en: california}}
  - id: excluded-sub
    title: Country minus a subdivision
    jurisdictions: [ES]
    exclude: [ES-CT]
    notice: {text: {en: spain}}
"""

DAY = dt.date(2025, 1, 15)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "rules.yaml").write_text(RULES, encoding="utf-8")
    return Engine(load_rules([folder]), FixedGeolocator(UNKNOWN))


def loc(country: str | None, *subdivisions: str) -> Location:
    return Location(country=country, subdivisions=subdivisions, source="test")


CASES = [
    # country, subdivisions, request overrides, expected notices, expected block
    pytest.param(loc("RU"), {}, ["ru-notice"], None, id="russia"),
    pytest.param(loc("RU", "RU-MOW"), {}, ["ru-notice"], None, id="russia-moscow-subdivision"),
    pytest.param(loc("UA", "UA-43"), {}, ["ru-notice"], None, id="crimea-as-ua-43"),
    pytest.param(loc("UA", "UA-40"), {}, ["ru-notice"], None, id="sevastopol"),
    pytest.param(loc("UA", "UA-14"), {}, ["ru-notice"], None, id="donetsk"),
    pytest.param(loc("UA", "UA-30"), {}, [], None, id="kyiv"),
    pytest.param(loc("UA"), {}, [], None, id="ukraine-no-subdivision"),
    pytest.param(loc("DE"), {}, ["eu-region"], None, id="germany-region"),
    pytest.param(loc("DE", "DE-BY"), {}, [], None, id="bavaria-excluded-from-region"),
    pytest.param(loc("DE", "DE-BE"), {}, ["eu-region"], None, id="berlin-in-region"),
    pytest.param(loc("FR"), {}, ["eu-region"], None, id="france-region"),
    pytest.param(loc("IT"), {}, [], None, id="italy-not-in-region"),
    pytest.param(
        loc("PL"), {"url": "https://www.example.org/"}, ["nested-region"], None, id="nested-pl"
    ),
    pytest.param(
        loc("AT"),
        {"url": "https://news.example.org/x"},
        ["eu-region", "nested-region"],
        None,
        id="nested-and-direct",
    ),
    pytest.param(
        loc("DE", "DE-BY"),
        {"url": "https://www.example.org/"},
        [],
        None,
        id="nested-region-keeps-inner-exclude",
    ),
    pytest.param(loc("PL"), {"url": "https://example.org/"}, [], None, id="host-glob-needs-sub"),
    pytest.param(
        loc("PL"), {"url": "https://WWW.EXAMPLE.ORG:8443/"}, ["nested-region"], None, id="host-case"
    ),
    pytest.param(loc("PL"), {"url": "https://evil.org/"}, [], None, id="host-mismatch"),
    pytest.param(loc("JP"), {"url": "https://x.org/world/a/b"}, ["everywhere"], None, id="star"),
    pytest.param(loc("JP"), {"url": "https://x.org/world"}, [], None, id="star-path-mismatch"),
    pytest.param(loc("US"), {"url": "https://x.org/world/a"}, [], None, id="star-excluded-us"),
    pytest.param(
        loc("US", "US-CA"),
        {"url": "https://x.org/world/a"},
        ["subdivision-only"],
        None,
        id="star-exclude-country-covers-subdivision",
    ),
    pytest.param(UNKNOWN, {"url": "https://x.org/world/a"}, [], None, id="star-needs-known"),
    pytest.param(UNKNOWN, {}, [], None, id="unknown-skip"),
    pytest.param(UNKNOWN, {"tags": ["sanctioned"]}, ["unknown-too"], None, id="unknown-apply"),
    pytest.param(loc("BY"), {"tags": ["sanctioned"]}, ["unknown-too"], None, id="belarus-tagged"),
    pytest.param(loc("BY"), {}, [], None, id="belarus-untagged"),
    pytest.param(loc("RU"), {"at": dt.date(2024, 2, 19)}, [], None, id="before-from"),
    pytest.param(loc("RU"), {"at": dt.date(2024, 2, 20)}, ["ru-notice"], None, id="on-from"),
    pytest.param(
        loc("RU"),
        {"at": dt.datetime(2024, 2, 19, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))},
        ["ru-notice"],
        None,
        id="from-is-utc-day",
    ),
    pytest.param(
        loc("RU"),
        {"at": dt.datetime(2024, 2, 20, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))},
        [],
        None,
        id="from-is-utc-day-east",
    ),
    pytest.param(loc("GB"), {"at": dt.date(2024, 12, 31)}, [], None, id="bounded-before"),
    pytest.param(loc("GB"), {"at": dt.date(2025, 1, 1)}, ["bounded"], None, id="bounded-start"),
    pytest.param(loc("GB"), {"at": dt.date(2025, 1, 31)}, ["bounded"], None, id="bounded-last"),
    pytest.param(loc("GB"), {"at": dt.date(2025, 2, 1)}, [], None, id="until-exclusive"),
    pytest.param(loc("SE"), {"url": "https://x.org/news/a"}, ["paths-only"], None, id="path"),
    pytest.param(loc("SE"), {"url": "https://x.org/news/a/b"}, [], None, id="star-one-segment"),
    pytest.param(loc("SE"), {"url": "https://x.org/news/opinion-1"}, [], None, id="exclude-paths"),
    pytest.param(
        loc("SE"), {"url": "https://x.org/%6Eews/a"}, ["paths-only"], None, id="path-decoded"
    ),
    pytest.param(
        loc("SE"), {"url": "https://x.org/other/../news/a"}, ["paths-only"], None, id="dotdot"
    ),
    pytest.param(
        loc("SE"),
        {"url": "https://x.org/news/./opinion-2"},
        [],
        None,
        id="exclude-paths-not-bypassed-by-dot",
    ),
    pytest.param(
        loc("SE"),
        {"url": "https://x.org/news/a", "tags": ["politics"]},
        ["tagged", "paths-only"],
        None,
        id="tags-any-of-and-priority",
    ),
    pytest.param(loc("SE"), {"tags": ["sport"]}, [], None, id="tags-none-match"),
    pytest.param(loc("SE"), {"tags": ["elections", "sport"]}, ["tagged"], None, id="tags-any"),
    pytest.param(loc("DE"), {"url": "https://blocked.example/a"}, [], "block-de", id="block-wins"),
    pytest.param(
        loc("DE", "DE-BY"),
        {"url": "https://blocked.example/a"},
        [],
        "block-de",
        id="block-subdivision",
    ),
    pytest.param(
        loc("AT"), {"url": "https://blocked.example/a"}, ["eu-region"], None, id="no-block-at"
    ),
    pytest.param(loc("US", "US-CA"), {}, ["subdivision-only"], None, id="subdivision-rule"),
    pytest.param(loc("US", "US-NY"), {}, [], None, id="other-subdivision"),
    pytest.param(loc("US"), {}, [], None, id="country-without-subdivision"),
    pytest.param(loc("ES"), {}, ["excluded-sub"], None, id="spain"),
    pytest.param(loc("ES", "ES-CT"), {}, [], None, id="catalonia-excluded"),
    pytest.param(loc("ES", "ES-MD"), {}, ["excluded-sub"], None, id="madrid"),
    pytest.param(
        loc("UA", "UA-43"),
        {"url": "https://x.org/world/x"},
        ["ru-notice", "everywhere"],
        None,
        id="priority-order",
    ),
    pytest.param(
        loc("RU"),
        {"url": "https://x.org/world/x"},
        ["ru-notice", "everywhere"],
        None,
        id="priority-order-ru",
    ),
    pytest.param(loc("XK"), {}, [], None, id="kosovo-no-rule"),
    pytest.param(loc("SE"), {"url": "https://x.org/NEWS/a"}, [], None, id="paths-case-sensitive"),
    pytest.param(
        loc("SE"), {"url": "https://x.org//news//a"}, ["paths-only"], None, id="double-slashes"
    ),
    pytest.param(loc("SE"), {"url": "not a url"}, [], None, id="garbage-url"),
    pytest.param(loc("RU"), {"url": "https://x.org/?q=</body>"}, ["ru-notice"], None, id="query"),
]


@pytest.mark.parametrize(("location", "request_args", "notices", "block"), CASES)
def test_matching(
    engine: Engine,
    location: Location,
    request_args: dict[str, object],
    notices: list[str],
    block: str | None,
) -> None:
    args: dict[str, object] = {"url": "https://site.test/a", "at": DAY, **request_args}
    decision = engine.decide(location=location, **args)  # type: ignore[arg-type]
    assert [n.rule_id for n in decision.notices] == notices
    assert (decision.block.rule_id if decision.block else None) == block


def test_cases_are_many() -> None:
    assert len(CASES) >= 60


def test_trace_gives_first_reason_for_every_rule(engine: Engine) -> None:
    decision = engine.decide(location=loc("SE"), url="https://x.org/news/opinion-x", at=DAY)
    reasons = {entry.rule_id: entry.reason for entry in decision.trace}
    assert set(reasons) == set(engine.rule_ids)
    assert reasons["paths-only"] == "path: /news/opinion-x is excluded by /news/opinion*"
    assert reasons["ru-notice"] is not None
    assert reasons["ru-notice"].startswith("jurisdiction:")
    assert reasons["tagged"] is not None
    assert reasons["tagged"].startswith("tags:")
    assert reasons["header-only"] is None
    decision = engine.decide(location=loc("RU"), at=dt.date(2020, 1, 1))
    reasons = {entry.rule_id: entry.reason for entry in decision.trace}
    assert reasons["ru-notice"] == "not yet effective: starts 2024-02-20"
    decision = engine.decide(location=loc("GB"), at=dt.date(2026, 1, 1))
    assert {e.rule_id: e.reason for e in decision.trace}["bounded"] == "expired: ended 2025-02-01"
    decision = engine.decide(location=UNKNOWN, at=DAY)
    assert {e.rule_id: e.reason for e in decision.trace}["ru-notice"] == (
        "unknown location (unknown_location: skip)"
    )
    decision = engine.decide(location=loc("DE", "DE-BY"), at=DAY)
    assert {e.rule_id: e.reason for e in decision.trace}["eu-region"] == (
        "jurisdiction: DE/DE-BY is not in eu-ish"
    )
    decision = engine.decide(location=loc("ES", "ES-CT"), at=DAY)
    assert {e.rule_id: e.reason for e in decision.trace}["excluded-sub"] == (
        "excluded: ES/ES-CT matches exclude ES-CT"
    )


def test_block_overrides_notices_in_trace(engine: Engine) -> None:
    decision = engine.decide(location=loc("DE"), url="https://blocked.example/", at=DAY)
    assert decision.notices == ()
    trace = {e.rule_id: e for e in decision.trace}
    assert trace["block-de"].applied
    assert trace["eu-region"].reason == "overridden by block block-de"
    assert decision.applied == ("block-de",)
    assert decision.block is not None
    assert decision.block.link_header == '<https://example.org/legal>; rel="blocked-by"'


def test_headers_from_header_only_rule(engine: Engine) -> None:
    decision = engine.decide(location=loc("SE"), at=DAY)
    assert dict(decision.headers) == {"X-Robots-Tag": "noindex"}
    assert "header-only" in decision.applied
    assert engine.decide(location=loc("NO"), at=DAY).headers == {}


@pytest.mark.parametrize(
    ("location", "accept", "page", "expected"),
    [
        pytest.param(loc("RU"), "ru-RU,ru;q=0.9,en;q=0.8", None, "ru", id="accept-ru-RU"),
        pytest.param(loc("RU"), "en-GB,en;q=0.9", None, "en", id="accept-en"),
        pytest.param(loc("RU"), "de, fr;q=0.5", None, "ru", id="jurisdiction-fallback"),
        pytest.param(loc("UA", "UA-43"), None, None, "uk", id="ukraine-official"),
        pytest.param(loc("UA", "UA-43"), "ru;q=0.1, uk;q=0.9", None, "uk", id="q-values"),
        pytest.param(loc("UA", "UA-43"), "uk;q=0, en;q=0", None, "ru", id="refused-languages"),
        pytest.param(loc("RU"), "*", None, "ru", id="wildcard"),
        pytest.param(loc("RU"), "en", "ru", "ru", id="page-language-first"),
        pytest.param(loc("RU"), "ru", "fr", "ru", id="page-language-without-text"),
        pytest.param(loc("RU"), ";;;,,q=, en;q=abc", None, "ru", id="malformed-accept"),
        pytest.param(loc("RU"), "x" * 10000, None, "ru", id="huge-accept"),
    ],
)
def test_locale_choice(
    engine: Engine, location: Location, accept: str | None, page: str | None, expected: str
) -> None:
    decision = engine.decide(location=location, accept_language=accept, page_language=page, at=DAY)
    (notice,) = decision.notices
    assert notice.locale == expected


def test_locale_for_page_language_after_decision(engine: Engine) -> None:
    decision = engine.decide(location=loc("RU"), accept_language="en", at=DAY)
    (notice,) = decision.notices
    assert notice.locale == "en"
    assert decision.locale_for(notice, "ru-RU") == "ru"
    assert 'lang="ru"' in decision.snippets("ru")["body_end"]
    assert "accept-language" in decision.vary


def test_notice_html_markup_and_escaping(engine: Engine) -> None:
    decision = engine.decide(location=loc("RU"), at=DAY, accept_language="ru")
    (notice,) = decision.notices
    assert notice.html() == (
        '<aside class="compliance-notice" data-compliance-rule="ru-notice" lang="ru" dir="ltr" '
        'role="note"><p>ACME уведомление</p></aside>'
    )
    assert notice.text("en") == "ACME notice"


def test_site_variables_override(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    engine = Engine(
        load_rules([tmp_path]), FixedGeolocator(UNKNOWN), variables={"org": "<Meduza & co>"}
    )
    (notice,) = engine.decide(location=loc("RU"), at=DAY).notices
    assert "&lt;Meduza &amp; co&gt; notice" in notice.html("en")


def test_cache_private_and_vary(engine: Engine) -> None:
    decision = engine.decide(location=loc("JP"), at=DAY)
    assert decision.notices == ()
    assert decision.private  # a page without notice is still location-dependent
    header_location = Location(country="RU", source="header:cloudflare", via_header="cf-ipcountry")
    decision = engine.decide(location=header_location, at=DAY)
    assert not decision.private
    assert decision.vary[0] == "cf-ipcountry"


@pytest.mark.parametrize(
    ("rule", "private"),
    [
        pytest.param("notice: {text: {en: hi}}", False, id="everyone-alike"),
        pytest.param("notice: {text: {en: hi}}\n    exclude: [US]", True, id="but-not-the-us"),
        pytest.param("notice: {text: {en: hi, ru: privet}}", True, id="locale-by-country"),
        pytest.param(
            "withhold: {marks: [x], placeholder: false}\n    headers: {X-A: b}",
            False,
            id="withhold-without-placeholder",
        ),
    ],
)
def test_a_page_is_private_when_a_rule_for_everyone_still_depends_on_the_reader(
    tmp_path: Path, rule: str, private: bool
) -> None:
    """A ``"*"`` rule with ``unknown_location: apply`` was taken as the same for every reader,
    and the page left storable by shared caches: but an ``exclude`` leaves some readers out
    (a CDN served the German page with its notice to readers in the US, or the US page
    without it to readers in Germany), and with several locales the reader's country chooses
    one (Russian for a reader in Russia whose languages the notice has no text in)."""
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: everyone\n    title: x\n    jurisdictions: ['*']\n"
        f"    unknown_location: apply\n    {rule}\n",
        encoding="utf-8",
    )
    engine = Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN))
    for where in (loc("DE"), loc("US"), loc("RU"), UNKNOWN):
        assert engine.decide(location=where, at=DAY).private is private, where
    rules = [loaded.rule for loaded in engine.ruleset.rules]
    assert build_plan(rules, {}, target="cloudflare").location_sensitive is private


def test_decisions_are_cached_and_immutable(engine: Engine) -> None:
    first = engine.decide(location=loc("RU"), url="https://a.org/x", at=DAY)
    second = engine.decide(location=loc("RU"), url="https://a.org/x", at=DAY)
    assert first is second
    with pytest.raises(AttributeError):
        first.notices = ()  # type: ignore[misc]


def test_ip_goes_through_geolocator(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    geo = FixedGeolocator({"192.0.2.1": loc("RU")})
    engine = Engine(load_rules([tmp_path]), geo)
    assert [n.rule_id for n in engine.decide(ip="192.0.2.1", at=DAY).notices] == ["ru-notice"]
    assert engine.decide(ip="192.0.2.2", at=DAY).notices == ()


def test_bundled_defaults_geolocate_offline() -> None:
    engine = Engine.from_paths()
    decision = engine.decide(ip="77.88.55.88", url="https://www.example.org/a/story.html")
    assert [n.rule_id for n in decision.notices] == ["ru-undesirable-organization"]
    assert (
        decision.notices[0]
        .text("en")
        .startswith(
            'RFE/RL has been declared an "undesirable organization" by the Russian government.'
        )
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Example.org/a", ("example.org", "/a")),
        ("https://example.org.", ("example.org", "/")),
        ("https://[2001:db8::1]:8443/x", ("[2001:db8::1]", "/x")),
        ("http://example.org/a%2Fb", ("example.org", "/a/b")),
        ("https://example.org/../../etc", ("example.org", "/etc")),
        # A last dot segment leaves a directory (RFC 3986 5.2.4), as nginx and browsers read it.
        ("https://example.org/news/.", ("example.org", "/news/")),
        ("https://example.org/news/x/..", ("example.org", "/news/")),
        ("https://example.org/news/x/%2E%2e", ("example.org", "/news/")),
        ("https://example.org/news/x//..", ("example.org", "/news/")),
        ("https://example.org/..", ("example.org", "/")),
        ("http://[bad", ("", "/")),
        ("/relative/path/", ("", "/relative/path/")),
    ],
)
def test_split_url(url: str, expected: tuple[str, str]) -> None:
    assert split_url(url) == expected


RU_ONLY = """
version: 1
rules:
  - id: ru
    title: R
    jurisdictions: [RU]
    notice: {text: {en: "version VERSION"}}
"""


def test_reload_swaps_and_keeps_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(RU_ONLY.replace("VERSION", "1"), encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(UNKNOWN))
    assert engine.decide(location=loc("RU")).notices[0].text() == "version 1"
    rules.write_text(RU_ONLY.replace("VERSION", "2"), encoding="utf-8")
    assert engine.reload()
    assert engine.decide(location=loc("RU")).notices[0].text() == "version 2"
    rules.write_text(RU_ONLY.replace("[RU]", "[RUS]"), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="compliance.engine"):
        assert not engine.reload()
    assert engine.decide(location=loc("RU")).notices[0].text() == "version 2"
    assert isinstance(engine.last_reload_error, RuleError)
    assert "r.yaml:6:21" in str(engine.last_reload_error)
    assert "still serving the previous rules" in caplog.text


def test_reload_under_concurrent_decisions(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(RU_ONLY.replace("VERSION", "0"), encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(UNKNOWN))
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                decision = engine.decide(location=loc("RU"), url="https://a.org/x")
                (notice,) = decision.notices  # never zero, never two: no mixed state
                seen.add(notice.text())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for version in range(1, 21):
        content = RU_ONLY.replace("VERSION", str(version))
        if version % 5 == 0:
            content = content.replace("[RU]", "[")  # broken: must keep serving
        rules.write_text(content, encoding="utf-8")
        engine.reload()
        time.sleep(0.005)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert "version 19" in seen or "version 18" in seen
    assert len(seen) > 3


def test_watcher_reloads_changed_files(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(RU_ONLY.replace("VERSION", "1"), encoding="utf-8")
    with Engine.from_paths([tmp_path], geolocator=FixedGeolocator(UNKNOWN), watch=0.02) as engine:
        rules.write_text(RU_ONLY.replace("VERSION", "22"), encoding="utf-8")
        stat = rules.stat()
        os.utime(rules, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if engine.decide(location=loc("RU")).notices[0].text() == "version 22":
                break
            time.sleep(0.02)
        assert engine.decide(location=loc("RU")).notices[0].text() == "version 22"


def test_cost_does_not_scan_every_rule(tmp_path: Path) -> None:
    """With many rules, a decision only evaluates the candidates for the location."""
    body = ["version: 1", "rules:"]
    for i in range(500):
        body += [
            f"  - id: r{i}",
            "    title: t",
            f"    jurisdictions: [{'DE' if i else 'RU'}]",
            "    notice: {text: {en: x}}",
        ]
    (tmp_path / "many.yaml").write_text("\n".join(body), encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(UNKNOWN))
    calls = 0
    original = type(engine.compiled_rules()[0]).why_not

    def counting(self: object, ctx: object) -> str | None:
        nonlocal calls
        calls += 1
        return original(self, ctx)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(engine.compiled_rules()[0]), "why_not", counting)
        engine.decide(location=loc("RU"), url="https://a.org/unique")
    assert calls == 1


def test_unknown_site_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="'organisation' are not used by any rule"):
        Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN), variables={"organisation": "x"})


def test_from_paths_accepts_one_path(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    engine = Engine.from_paths(tmp_path, geolocator=FixedGeolocator(UNKNOWN))
    assert "ru-notice" in engine.rule_ids
    engine = Engine.from_paths(str(tmp_path / "r.yaml"), geolocator=FixedGeolocator(UNKNOWN))
    assert "ru-notice" in engine.rule_ids


def test_reload_error_names_a_vanished_path(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.yaml").write_text(RU_ONLY.replace("VERSION", "1"), encoding="utf-8")
    engine = Engine.from_paths([folder], geolocator=FixedGeolocator(UNKNOWN))
    (folder / "r.yaml").unlink()
    folder.rmdir()
    assert not engine.reload()
    assert isinstance(engine.last_reload_error, ConfigurationError)
    assert "no such file or directory" in str(engine.last_reload_error)
    assert engine.decide(location=loc("RU")).notices[0].text() == "version 1"


def test_reload_keeps_rules_when_site_variables_lose_their_rule(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    engine = Engine.from_paths(
        [tmp_path], geolocator=FixedGeolocator(UNKNOWN), variables={"org": "Site"}
    )
    (tmp_path / "r.yaml").write_text(RU_ONLY.replace("VERSION", "2"), encoding="utf-8")
    assert not engine.reload()
    assert isinstance(engine.last_reload_error, ConfigurationError)
    assert "ru-notice" in engine.rule_ids


# -- the repeat reader's fast path ------------------------------------------------------------

STARTS = """
version: 1
rules:
  - id: starts
    title: Starts on a given day
    jurisdictions: [RU]
    effective: {from: 2030-01-02}
    notice: {text: {en: starts}}
  - id: stops
    title: Stops on a given day
    jurisdictions: [RU]
    effective: {until: 2030-01-04}
    notice: {text: {en: stops}}
"""


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The engine's clock, set by the test (UTC seconds)."""
    import compliance.engine as engine_module

    now = [0.0]
    monkeypatch.setattr(engine_module, "_time", lambda: now[0])
    # Forget the cached day; it is put back afterwards, so the fake day does not outlive the
    # test.
    monkeypatch.setattr(engine_module, "_today_span", (0.0, 0.0, engine_module._EPOCH))
    return now


def _three_forms(
    tmp_path: Path,
) -> tuple[Engine, Location, Callable[[], tuple[tuple[str, ...], ...]]]:
    """An engine on STARTS, a reader in Russia, and what the engine applies for that reader
    and one request in the pure form, with convenience fields, and by address (the same
    objects every time)."""
    from compliance.decision import Request

    (tmp_path / "r.yaml").write_text(STARTS, encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(loc("RU")))
    reader, request = loc("RU"), Request.of(host="a.org", path="/x")

    def applied() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        pure = engine.decide(location=reader, request=request).applied
        fields = engine.decide(location=reader, url="https://a.org/x").applied
        by_ip = engine.decide(ip="77.88.55.88", url="https://a.org/x").applied
        return pure, fields, by_ip

    return engine, reader, applied


def test_a_cached_decision_changes_on_the_day_a_rule_starts_or_stops(
    tmp_path: Path, clock: list[float]
) -> None:
    """A repeat reader's decision is cached without reading the clock's day each time, yet
    turns over at the UTC midnight on which a rule starts or stops: pure and convenience
    forms, with the same Location and Request objects every time."""
    from compliance.decision import Request

    engine, reader, applied = _three_forms(tmp_path)

    expected = [
        (dt.date(2030, 1, 1), ("stops",)),
        (dt.date(2030, 1, 2), ("starts", "stops")),
        (dt.date(2030, 1, 3), ("starts", "stops")),
        (dt.date(2030, 1, 4), ("starts",)),
        (dt.date(2031, 6, 1), ("starts",)),
    ]
    for day, rules in expected:
        for second in (0, 1, 43_200, 86_399):
            clock[0] = _midnight(day) + second
            assert applied() == (rules, rules, rules), (day, second)
            assert applied() == (rules, rules, rules), (day, second)  # now from the cache
    # A decision for a given moment is cached for good, whatever the clock says.
    then = Request.of(host="a.org", path="/x", at=dt.date(2030, 1, 3))
    for _ in range(2):
        assert engine.decide(location=reader, request=then).applied == ("starts", "stops")


def test_a_clock_stepped_back_gets_the_earlier_days_decisions(
    tmp_path: Path, clock: list[float]
) -> None:
    """A clock stepped back over midnight (an NTP correction, a restored VM) gets the
    decisions of the day it now reads, cached or not, in all three forms: not the later
    day's, which a check of the next midnight alone kept serving until the clock caught up."""
    _, _, applied = _three_forms(tmp_path)

    steps = [
        (dt.date(2030, 1, 4), 5, ("starts",)),
        (dt.date(2030, 1, 3), 86_395, ("starts", "stops")),  # ten seconds back
        (dt.date(2030, 1, 4), 1, ("starts",)),
        (dt.date(2030, 1, 2), 0, ("starts", "stops")),
        (dt.date(2030, 1, 1), 86_399, ("stops",)),
        (dt.date(2030, 1, 3), 43_200, ("starts", "stops")),
        (dt.date(2029, 12, 1), 0, ("stops",)),
    ]
    for day, second, rules in steps:
        clock[0] = _midnight(day) + second
        assert applied() == (rules, rules, rules), (day, second)
        assert applied() == (rules, rules, rules), (day, second)  # now from the cache


def test_a_decision_no_later_date_changes_reads_no_clock_until_one_steps_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    """Decided a day or more after the last rule date, a repeat reader's decision is served
    without reading the clock; a clock stepped back before that date is noticed by the
    next decision made afresh (a new reader or request), which drops the cached ones."""
    import compliance.engine as engine_module
    from compliance.decision import Request

    (tmp_path / "r.yaml").write_text(STARTS, encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(loc("RU")))
    reader, request = loc("RU"), Request.of(host="a.org", path="/x")
    clock[0] = _midnight(dt.date(2031, 6, 1))
    assert engine.decide(location=reader, request=request).applied == ("starts",)
    reads = [0]

    def counted() -> float:
        reads[0] += 1
        return clock[0]

    monkeypatch.setattr(engine_module, "_time", counted)
    for _ in range(3):
        assert engine.decide(location=reader, request=request).applied == ("starts",)
    assert reads[0] == 0
    clock[0] = _midnight(dt.date(2030, 1, 3))
    other = Request.of(host="a.org", path="/y")
    assert engine.decide(location=reader, request=other).applied == ("starts", "stops")
    assert engine.decide(location=reader, request=request).applied == ("starts", "stops")


def test_the_repeat_readers_fast_path_follows_a_reload(tmp_path: Path) -> None:
    """The same Location and Request objects, decided again after a reload, get the new
    rules' decision: the fast cache goes with the rules it was filled from."""
    from compliance.decision import Request

    rules = tmp_path / "r.yaml"
    rules.write_text(RU_ONLY.replace("VERSION", "1"), encoding="utf-8")
    reader, request = loc("RU"), Request.of(host="a.org", path="/x")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(reader))
    for version in ("1", "2"):
        if version == "2":
            rules.write_text(RU_ONLY.replace("VERSION", "2"), encoding="utf-8")
            assert engine.reload()
        for _ in range(3):  # the first call fills the fast cache, the others read it
            notice = engine.decide(location=reader, request=request).notices[0]
            assert notice.text() == f"version {version}"
            notice = engine.decide(ip="77.88.55.88", url="https://a.org/x").notices[0]
            assert notice.text() == f"version {version}"
    rules.write_text(RU_ONLY.replace("[RU]", "[UA]"), encoding="utf-8")
    assert engine.reload()
    assert engine.decide(location=reader, request=request).notices == ()
    assert engine.decide(ip="77.88.55.88", url="https://a.org/x").notices == ()


def test_an_equal_location_or_request_decides_alike(engine: Engine) -> None:
    """The fast path keys on the Location object's identity: an equal location made anew,
    or an equal request made anew, gets the same decision; a different one does not."""
    from compliance.decision import Request

    request = Request.of(host="a.org", path="/world/x", at=DAY)
    first = engine.decide(location=loc("RU"), request=request)
    for _ in range(3):
        again = engine.decide(
            location=loc("RU"), request=Request.of(host="a.org", path="/world/x", at=DAY)
        )
        assert again.applied == first.applied == ("ru-notice", "everywhere")
    assert engine.decide(location=loc("US"), request=request).applied == ()
    assert engine.decide(location=loc("JP"), request=request).applied == ("everywhere",)


def test_the_fast_cache_stays_bounded_for_many_readers_and_requests(engine: Engine) -> None:
    """Readers from thousands of networks on one page, and thousands of pages: the fast
    cache keeps its bounds (one page holds an eighth of the bytes at most), and a reader
    whose entry went is decided again, rightly."""
    from compliance.decision import Request
    from compliance.engine import _FAST_MAX_BYTES, _FAST_MAX_ENTRIES

    page = Request.of(host="a.org", path="/world/x", at=DAY)
    readers = [
        Location(country=("RU" if n % 2 else "US"), network=f"10.{n // 256}.{n % 256}.0/24")
        for n in range(3_000)
    ]
    for _ in range(2):
        for n, reader in enumerate(readers):
            expected = ("ru-notice", "everywhere") if n % 2 else ()
            assert engine.decide(location=reader, request=page).applied == expected
    fast = engine._state.fast
    per_page = fast.mapping[page]
    assert 0 < len(per_page) <= fast.pair_limit < 3_000
    assert fast.evictions > 0
    for n in range(_FAST_MAX_ENTRIES + 500):
        request = Request.of(host="a.org", path=f"/world/{n}", at=DAY)
        assert engine.decide(location=readers[1], request=request).applied == (
            "ru-notice",
            "everywhere",
        )
    assert len(fast.mapping) <= _FAST_MAX_ENTRIES
    assert fast.nbytes <= _FAST_MAX_BYTES
    assert fast.key_evictions > 0


def test_the_convenience_form_with_cdn_headers_is_a_repeat_reader_too(engine: Engine) -> None:
    """decide(ip=, headers=, trusted=) locates by the headers, then takes the same fast path
    as a known location: a repeat is answered from the fast cache, keyed on the location the
    headers gave; unknown keywords are still refused."""
    from compliance.geo import HeaderGeolocator

    cdn = Engine(engine.ruleset, HeaderGeolocator("cloudflare"))
    russia, usa = {"cf-ipcountry": "RU"}, {"cf-ipcountry": "US"}
    url = "https://a.org/world/x"
    first = cdn.decide(ip="203.0.113.9", headers=russia, trusted=True, url=url, at=DAY)
    assert first.applied == ("ru-notice", "everywhere")
    assert len(cdn._state.decisions) == 1
    for _ in range(3):
        assert cdn.decide(ip="203.0.113.9", headers=russia, trusted=True, url=url, at=DAY) is first
        assert cdn.decide(ip="198.51.100.7", headers=russia, trusted=True, url=url, at=DAY) is first
    assert len(cdn._state.decisions) == 1  # every repeat came from the fast cache
    assert cdn.decide(ip="203.0.113.9", headers=usa, trusted=True, url=url, at=DAY).applied == ()
    assert cdn.decide(ip="203.0.113.9", headers=russia, url=url, at=DAY).location.country is None
    with pytest.raises(TypeError, match="bogus"):
        cdn.decide(ip="203.0.113.9", headers=russia, trusted=True, url=url, bogus=1)  # type: ignore[call-arg]


def test_a_header_set_by_two_rules_is_sent_once_with_the_higher_priority_value(
    tmp_path: Path,
) -> None:
    """Header names are case-insensitive: ``x-robots-tag`` from a lower-priority rule is the
    header an earlier rule set as ``X-Robots-Tag``, not a second one (a browser reading a
    repeated Referrer-Policy takes its last value: the lower-priority rule's)."""
    (tmp_path / "rules.yaml").write_text(
        """
version: 1
rules:
  - id: a-high
    title: x
    priority: 10
    jurisdictions: [RU]
    headers: {X-Robots-Tag: noindex, Referrer-Policy: no-referrer}
  - id: b-low
    title: x
    jurisdictions: [RU]
    headers: {x-robots-tag: all, REFERRER-POLICY: unsafe-url, X-Other: b}
""",
        encoding="utf-8",
    )
    engine = Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN))
    decision = engine.decide(location=loc("RU"), at=DAY)
    assert dict(decision.headers) == {
        "X-Robots-Tag": "noindex",
        "Referrer-Policy": "no-referrer",
        "X-Other": "b",
    }
    assert decision.applied == ("a-high", "b-low")


def test_idn_hosts_are_matched_in_the_punycode_browsers_send(tmp_path: Path) -> None:
    """Browsers write an IDN host by IDNA 2008 (UTS 46, non-transitional): ``faß.de`` is
    ``xn--fa-hia.de`` in ``Host`` and in URLs, while Python's ``idna`` codec (IDNA 2003)
    makes it ``fass.de``, another domain. A rule written with the name as people spell it
    applies on the site, not on the other domain; its embeds and ``blocked_by`` too."""
    (tmp_path / "rules.yaml").write_text(
        """
version: 1
rules:
  - id: on-the-site
    title: x
    jurisdictions: [RU]
    hosts: ["faß.de", "*.ςa.gr"]
    notice: {text: {en: hello}}
    withhold:
      embeds: ["video.faß.de"]
      placeholder: false
  - id: blocked
    title: x
    jurisdictions: [BY]
    block:
      blocked_by: https://straße.example/legal
      text: {en: blocked}
""",
        encoding="utf-8",
    )
    engine = Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN))
    for url in ("https://xn--fa-hia.de/", "https://faß.de/", "https://www.xn--a-xmb.gr/"):
        decision = engine.decide(location=loc("RU"), url=url, at=DAY)
        assert decision.applied == ("on-the-site",), url
        (withhold,) = decision.withholds
        assert withhold.embed_url_matches("https://video.xn--fa-hia.de/v/1")
        assert withhold.embed_url_matches("https://video.faß.de/v/1")
        assert not withhold.embed_url_matches("https://video.fass.de/v/1")
    request = Request.of(host="XN--FA-HIA.DE:443", path="/")
    assert engine.decide(location=loc("RU"), request=request).applied == ("on-the-site",)
    for url in ("https://fass.de/", "https://www.xn--a-zmb.gr/"):  # other domains
        assert engine.decide(location=loc("RU"), url=url, at=DAY).applied == (), url
    block = engine.decide(location=loc("BY"), at=DAY).block
    assert block is not None
    assert block.link_header == '<https://xn--strae-oqa.example/legal>; rel="blocked-by"'


def test_a_host_glob_written_fully_qualified_matches_its_host(tmp_path: Path) -> None:
    """``example.org.`` (with the root's dot) is the host ``example.org``; ``Host`` is
    matched without its trailing dot, so the glob must lose its own, or it matches
    nothing and the rule silently never applies (the embeds' hosts likewise)."""
    (tmp_path / "rules.yaml").write_text(
        """
version: 1
rules:
  - id: fqdn
    title: x
    jurisdictions: [RU]
    hosts: ["News.Example.ORG.", "*.example.net."]
    withhold:
      embeds: ["video.example.com."]
      placeholder: false
""",
        encoding="utf-8",
    )
    engine = Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN))
    for url in (
        "https://news.example.org/",
        "https://news.example.org.:443/",
        "http://a.example.net/",
    ):
        decision = engine.decide(location=loc("RU"), url=url, at=DAY)
        assert decision.applied == ("fqdn",), url
        assert decision.withholds[0].embed_url_matches("https://video.example.com./v")
        assert decision.withholds[0].embed_url_matches("https://VIDEO.example.com/v")
    assert engine.decide(location=loc("RU"), url="https://example.org/", at=DAY).applied == ()


def test_a_blocked_by_url_on_an_ipv6_address_keeps_its_brackets_in_the_link_header(
    tmp_path: Path,
) -> None:
    """A non-ASCII ``blocked_by`` is percent-encoded for the ``Link`` header; its IPv6 host
    lost its brackets on the way (``https://2001:db8::1:8443/...``, which is no URL)."""
    (tmp_path / "rules.yaml").write_text(
        """
version: 1
rules:
  - id: blocked
    title: x
    jurisdictions: [BY]
    block:
      blocked_by: "https://[2001:db8::1]:8443/правила"
      text: {en: blocked}
""",
        encoding="utf-8",
    )
    engine = Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN))
    block = engine.decide(location=loc("BY"), at=DAY).block
    assert block is not None
    assert block.link_header == (
        '<https://[2001:db8::1]:8443/%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D0%BB%D0%B0>; rel="blocked-by"'
    )


def test_request_fields_beside_a_request_are_refused_not_ignored(engine: Engine) -> None:
    """``request=`` holds the whole request: an ``at=`` (or ``url=``, ``tags=``) beside it
    was silently ignored, so the decision was for today and not the day asked for."""
    request = Request.of(host="www.example.org", path="/")
    with pytest.raises(TypeError, match=r"with location= and request= takes no at, "):
        engine.decide(location=loc("GB"), request=request, at=dt.date(2025, 1, 15))
    with pytest.raises(TypeError, match=r"with location= and request= takes no ip, url"):
        engine.decide(location=loc("GB"), request=request, url="https://a/", ip="192.0.2.1")
    with pytest.raises(TypeError, match=r"with request= takes no tags, "):
        engine.decide(request=request, ip="192.0.2.1", tags=["sanctioned"])
    with pytest.raises(TypeError, match="unexpected keyword arguments: bogus"):
        engine.decide(location=loc("GB"), request=request, bogus=1)  # type: ignore[call-arg]
    # Who the reader is may go beside a request when the engine locates them.
    at = Request.of(host="www.example.org", path="/", at=dt.date(2025, 1, 15))
    assert engine.decide(request=at, ip="192.0.2.1").location == UNKNOWN
    assert engine.decide(location=loc("GB"), request=at).applied == ("bounded",)


def test_tags_given_as_one_string_are_comma_separated_tags(engine: Engine) -> None:
    """``tags="sanctioned"`` was iterated as its characters, so the rule for that tag did
    not apply; a string is read as the middleware reads ``compliance.tags``: tags separated
    by commas."""
    for tags in ("sanctioned", " news , sanctioned ", ["sanctioned"], ("news", "sanctioned")):
        decision = engine.decide(location=loc("BY"), tags=tags, at=DAY)
        assert [n.rule_id for n in decision.notices] == ["unknown-too"], tags
        if not isinstance(tags, list):  # a Request is a key: its parts hash
            request = Request(tags=tags, at=DAY)  # type: ignore[arg-type]
            assert engine.decide(location=loc("BY"), request=request).applied == ("unknown-too",)
    assert engine.decide(location=loc("BY"), tags="sanctione", at=DAY).applied == ()


def test_the_trace_of_a_tag_rule_does_not_misstate_the_pages_tags(tmp_path: Path) -> None:
    """Only the tags some rule names are kept, so the trace listed the page's tags as
    "(none)" for a page tagged ``elections`` and ``news`` and a rule on ``Elections``."""
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: silence\n    title: x\n    jurisdictions: [PL]\n"
        "    tags: [Elections]\n    notice: {text: {en: x}}\n",
        encoding="utf-8",
    )
    engine = Engine(load_rules([tmp_path]), FixedGeolocator(UNKNOWN))
    decision = engine.decide(location=loc("PL"), tags=["elections", "news"], at=DAY)
    assert [str(entry) for entry in decision.trace] == [
        "silence: skipped, tags: the page has none of Elections (tags are case-sensitive)"
    ]


SUBDIVISION_RULES = """\
version: 1
rules:
  - id: utah
    title: Utah only
    jurisdictions: [US-UT]
    notice: {text: {en: x}}
  - id: alabama-or-unknown
    title: Alabama, and US readers whose state is unknown
    jurisdictions: [US-AL]
    unknown_subdivision: apply
    notice: {text: {en: y}}
"""


def _unreached(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "compliance.engine" and "never reach a reader" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("database", "warned"),
    [
        pytest.param(None, True, id="embedded"),
        pytest.param("GeoIP2-Country-Test.mmdb", True, id="country-database"),
        pytest.param("GeoIP2-City-Test.mmdb", False, id="city-database"),
    ],
)
def test_subdivision_rules_on_a_country_only_geolocator_are_a_warning(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    geoip_test_data: Path,
    database: str | None,
    warned: bool,
) -> None:
    # Before: the Utah rule loaded and reached no reader, and nothing said so.
    (tmp_path / "rules.yaml").write_text(SUBDIVISION_RULES, encoding="utf-8")
    geoip_db = None if database is None else geoip_test_data / database
    with caplog.at_level(logging.WARNING, logger="compliance.engine"):
        engine = Engine.from_paths([tmp_path], geoip_db)
    if not warned:
        assert _unreached(caplog) == []
        return
    [message] = _unreached(caplog)
    assert ": utah (US-UT). Give the engine a City database" in message
    assert "alabama" not in message  # apply: it reaches every US reader
    # Said again after a reload, for the rules then loaded.
    caplog.clear()
    (tmp_path / "rules.yaml").write_text(
        SUBDIVISION_RULES.replace("[US-UT]", "[US-UT, US-NV]"), encoding="utf-8"
    )
    with caplog.at_level(logging.WARNING, logger="compliance.engine"):
        assert engine.reload()
    assert ": utah (US-NV, US-UT)." in _unreached(caplog)[0]


def test_no_warning_when_the_geolocator_cannot_tell(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "rules.yaml").write_text(SUBDIVISION_RULES, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="compliance.engine"):
        Engine.from_paths([tmp_path], geolocator=FixedGeolocator({}))
        Engine.from_paths()  # the default pack: its subdivision rule says apply
    assert _unreached(caplog) == []


def test_a_blocks_locale_never_follows_the_page_language(tmp_path: Path) -> None:
    """The middleware answers a block before the page exists, so it never knows the page's
    language: rule tests and ``check --page-language`` chose a German 451 text for a
    German page where readers whose browsers ask for English got English (found in
    review)."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nrules:\n  - id: withheld\n    title: One page withheld in Germany\n"
        "    jurisdictions: [DE]\n    block:\n      blocked_by: https://www.example.org/legal\n"
        "      text:\n        en: This page has been withheld.\n"
        "        de: Diese Seite wird zurueckgehalten.\n",
        encoding="utf-8",
    )
    engine = Engine(load_rules([path]), FixedGeolocator(Location.of("DE")))
    request = Request("www.example.org", "/", "en", frozenset(), None, "de")
    decision = engine.decide(location=Location.of("DE"), request=request)
    assert decision.block is not None
    assert decision.block.locale == "en"
    assert "accept-language" in decision.vary
    environ = wsgi_environ("/", peer="192.0.2.1", headers=[("Accept-Language", "en")])
    served = call_wsgi(wsgi.ComplianceMiddleware(lambda e, s: [], engine), environ)
    assert served.status == 451
    assert served.header("Content-Language") == "en"


# -- reloads, found in review ------------------------------------------------------------------

_WAIT = 5.0

_RULE = (
    "version: 1\nrules:\n  - id: {id}\n    title: t\n    jurisdictions: [RU]\n"
    "    notice: {{text: {{en: N.}}}}\n"
)


def _wait_for(predicate: Any, seconds: float = _WAIT) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_a_save_during_start_up_is_picked_up_by_the_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before (found in review): Engine.from_paths(watch=...) read the rules, then opened
    the geolocator (copying a MaxMind database: a second or so for a City file), built the
    engine, and only then
    took the watcher's baseline. A rule file saved in that window was in the baseline but
    not in the rules: never loaded until it changed again."""
    rules = tmp_path / "a.yaml"
    rules.write_text(_RULE.format(id="old"))

    def opening_the_database(path: object) -> FixedGeolocator:
        # The deploy's new rule file lands while the database is being copied.
        before = rules.stat().st_mtime_ns
        rules.write_text(_RULE.format(id="new"))
        os.utime(rules, ns=(before + 10_000_000, before + 10_000_000))
        return FixedGeolocator({})

    import compliance.engine as engine_module

    monkeypatch.setattr(engine_module, "open_geolocator", opening_the_database)
    engine = Engine.from_paths([tmp_path], geoip_db="City.mmdb", watch=0.01)
    try:
        assert _wait_for(lambda: engine.rule_ids == ("new",)), engine.rule_ids
    finally:
        engine.close()


def test_a_rule_set_refused_when_compiled_is_a_failed_reload_not_an_exception(
    tmp_path: Path,
) -> None:
    """Before (found in review): regions past the engine's bound (_MAX_REGION_CODES,
    "against a half-saved file of regions") were refused by _State(), which
    _reload_once() built outside its try: the ConfigurationError escaped reload() (a
    SIGHUP handler raises into whatever the process was doing), last_reload_error stayed
    None, and no failed reload was counted, so the documented alert on
    compliance_reloads_total{result="failed"} never fired."""
    import pycountry

    path = tmp_path / "rules.yaml"
    path.write_text(_RULE.format(id="good"), encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator({}))

    # A 41 kB file: every subdivision in one region, and 120 regions each including it and
    # one country more, past the real bound of 500,000 codes.
    codes = sorted(s.code for s in pycountry.subdivisions)
    countries = sorted(c.alpha_2 for c in pycountry.countries)[:120]
    regions = [f"big: {{title: B, include: [{', '.join(codes)}]}}"]
    regions += [f"r{i}: {{title: R, include: [big, {c}]}}" for i, c in enumerate(countries)]
    path.write_text(
        "version: 1\nregions:\n"
        + "".join(f"  {line}\n" for line in regions)
        + "rules:\n  - id: bad\n    title: A\n    jurisdictions: [r119]\n"
        + "    notice: {text: {en: x}}\n",
        encoding="utf-8",
    )
    try:
        result = engine.reload()
    except Exception as exc:  # what happens now
        pytest.fail(f"reload() raised {type(exc).__name__}: {exc}")
    assert result is False
    assert engine.last_reload_error is not None
    assert engine.reload_counts().get("failed") == 1
    assert engine.rule_ids == ("good",)

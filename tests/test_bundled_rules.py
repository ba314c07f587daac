"""The bundled rule packs: every rule test written in them, and who sees what, per pack,
per region code and per rule, through the public API (``Engine.from_paths(packs=[...])``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compliance import Engine, load_rules
from compliance.cli import main
from compliance.geo import UNKNOWN, Location
from compliance.loader import LoadedTest
from compliance.models import Texts
from compliance.ruletests import run_rule_test
from compliance.testing import FixedGeolocator, call_wsgi, wsgi_environ
from compliance.wsgi import ComplianceMiddleware

RULES = Path(__file__).resolve().parents[1] / "rules"
PACKS = (
    "russia",
    "belarus",
    "us-age-verification",
    "uk-online-safety",
    "withheld",
    "eu-sanctions",
    "examples",
)
RFERL_URL = (
    "https://www.rferl.org/a/russia-radio-free-europe-declared-undesirable-organization/"
    "32827808.html"
)
AT = dt.date(2026, 1, 15)


def engine(*packs: str, variables: dict[str, Any] | None = None) -> Engine:
    """An engine over the named bundled packs; readers are given by location, never by IP."""
    return Engine.from_paths(
        packs=list(packs), geolocator=FixedGeolocator(UNKNOWN), variables=variables
    )


@functools.cache
def _embedded(pack: str) -> Engine:
    """The pack with the embedded geolocation, as `compliance test` runs it (readers by IP)."""
    return Engine.from_paths(packs=[pack])


def where(country: str | None, *subdivisions: str) -> Location:
    if country is None:
        return UNKNOWN
    return Location(country=country, subdivisions=tuple(subdivisions), source="test")


def applied(
    eng: Engine,
    location: Location,
    *,
    url: str = "https://www.example.org/a/story.html",
    tags: tuple[str, ...] = (),
    at: dt.date = AT,
    accept_language: str | None = None,
) -> set[str]:
    decision = eng.decide(
        location=location, url=url, tags=tags, at=at, accept_language=accept_language
    )
    return set(decision.applied)


# -- every pack: named by its file, loads alone and with the others, tests pass ---------------


def test_every_rule_file_is_a_named_pack() -> None:
    assert {p.stem for p in RULES.glob("*.yaml")} == set(PACKS)


@pytest.mark.parametrize("pack", PACKS)
def test_each_pack_loads_alone_from_its_own_file(pack: str) -> None:
    ruleset = engine(pack).ruleset
    assert [Path(f).name for f in ruleset.files] == [f"{pack}.yaml"]
    assert ruleset.rules


def test_the_default_set_is_the_russia_pack() -> None:
    default = Engine.from_paths(geolocator=FixedGeolocator(UNKNOWN))
    assert set(default.rule_ids) == set(engine("russia").rule_ids)


def test_all_packs_load_together() -> None:
    together = engine(*PACKS)
    assert len(together.rule_ids) == sum(len(engine(p).rule_ids) for p in PACKS)


def _pack_tests() -> Iterator[Any]:
    for pack in PACKS:
        for loaded in load_rules(packs=[pack]).tests:
            yield pytest.param(
                pack, loaded, id=f"{pack}: {loaded.rule_id or 'file'}: {loaded.test.name}"
            )


@pytest.mark.parametrize(("pack", "loaded"), list(_pack_tests()))
def test_rule_tests_written_in_the_pack(pack: str, loaded: LoadedTest) -> None:
    outcome = run_rule_test(_embedded(pack), loaded)
    assert outcome.passed, outcome.report()


def test_rule_tests_still_pass_with_every_pack_loaded() -> None:
    """`compliance test rules/` loads every pack at once: no pack's tests may depend on
    another pack being absent."""
    together = Engine.from_paths(packs=list(PACKS))
    failed = [run_rule_test(together, loaded) for loaded in together.ruleset.tests]
    assert not [o.report() for o in failed if not o.passed]


@pytest.mark.parametrize("pack", PACKS)
def test_every_rule_in_the_pack_has_tests(pack: str) -> None:
    ruleset = load_rules(packs=[pack])
    assert {r.rule.id for r in ruleset.rules} <= {t.rule_id for t in ruleset.tests}


@pytest.mark.parametrize("pack", PACKS)
def test_every_rule_and_region_cites_https_sources(pack: str) -> None:
    ruleset = load_rules(packs=[pack])
    cited = [(r.rule.id, r.rule.sources) for r in ruleset.rules]
    cited += [(name, region.sources) for name, region in ruleset.regions.items()]
    for name, sources in cited:
        assert sources, f"{name} cites no source"
        for source in sources:
            assert source.url.startswith("https://"), name
            assert source.title.strip(), name


@pytest.mark.parametrize("pack", PACKS)
def test_lint_strict_and_test_pass_through_the_cli(
    pack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # On the day of the packs' last review: a `review_by` passing later fails lint, not CI.
    lint = ["lint", "--strict", "--at", "2026-12-01", "--pack", pack]
    assert main(lint) == 0, capsys.readouterr()
    assert main(["test", "--pack", pack]) == 0, capsys.readouterr()


def _messages(pack: str) -> Iterator[tuple[str, Texts]]:
    for loaded in load_rules(packs=[pack]).rules:
        rule = loaded.rule
        for message in (rule.notice, rule.block, rule.withhold):
            if message is not None and message.texts:
                yield rule.id, message


@pytest.mark.parametrize("pack", PACKS)
def test_every_text_says_which_locale_is_original_and_marks_the_others(pack: str) -> None:
    for rule_id, message in _messages(pack):
        assert message.original in message.texts, rule_id
        translated = set(message.texts) - {message.original}
        assert set(message.translations) == translated, rule_id


@pytest.mark.parametrize("pack", PACKS)
def test_every_rule_has_a_review_date_in_the_future(pack: str) -> None:
    for loaded in load_rules(packs=[pack]).rules:
        assert loaded.rule.review_by is not None, loaded.rule.id
        assert loaded.rule.review_by > dt.date(2026, 12, 1), loaded.rule.id


def test_the_invented_court_order_example_is_gone() -> None:
    ids = set(engine(*PACKS).rule_ids)
    assert "example-court-order-block" not in ids
    assert {"withheld-page", "withheld-content", "withheld-notice"} <= ids


# -- russia: regions, per code ---------------------------------------------------------------

WHOLE = ("UA-43", "UA-40")
PARTIAL = ("UA-09", "UA-14", "UA-23", "UA-65")


def test_the_region_is_split_into_whole_and_partial_with_the_union_keeping_its_name() -> None:
    regions = load_rules(packs=["russia"]).regions
    assert regions["russia-controlled-ukraine-whole"].include == list(WHOLE)
    assert regions["russia-controlled-ukraine-partial"].include == list(PARTIAL)
    assert regions["russia-controlled-ukraine"].include == [
        "russia-controlled-ukraine-whole",
        "russia-controlled-ukraine-partial",
    ]


@pytest.mark.parametrize(
    ("region", "inside", "outside"),
    [
        ("russia-controlled-ukraine-whole", WHOLE, (*PARTIAL, "UA-63", "UA-30")),
        ("russia-controlled-ukraine-partial", PARTIAL, (*WHOLE, "UA-63", "UA-30")),
        ("russia-controlled-ukraine", WHOLE + PARTIAL, ("UA-63", "UA-30", "UA-46")),
    ],
)
def test_each_region_covers_exactly_its_codes(
    region: str, inside: tuple[str, ...], outside: tuple[str, ...], tmp_path: Path
) -> None:
    probe = tmp_path / "probe.yaml"
    probe.write_text(
        "version: 1\nrules:\n"
        f"  - id: probe\n    title: Probe\n    jurisdictions: [{region}]\n"
        "    headers: {X-Probe: 'yes'}\n",
        encoding="utf-8",
    )
    eng = Engine.from_paths([probe], packs=["russia"], geolocator=FixedGeolocator(UNKNOWN))
    for code in inside:
        assert "probe" in applied(eng, where("UA", code)), code
    for code in outside:
        assert "probe" not in applied(eng, where("UA", code)), code


@pytest.mark.parametrize(
    ("location", "sees"),
    [
        *[(where("UA", code), True) for code in WHOLE + PARTIAL],
        (where("RU"), True),
        (where("RU", "RU-MOW"), True),
        (where("UA"), True),  # country known, region not: the notice qualifies itself
        (where("UA", "UA-63"), False),
        (where("UA", "UA-30"), False),
        (where("BY"), False),
        (where("DE"), False),
        (where(None), False),
    ],
    ids=repr,
)
def test_who_sees_the_undesirable_organization_notice(location: Location, sees: bool) -> None:
    assert ("ru-undesirable-organization" in applied(engine("russia"), location)) is sees


def test_a_reader_located_only_as_ukraine_sees_the_notice_in_ukrainian() -> None:
    decision = engine("russia").decide(location=where("UA"), accept_language="uk", at=AT)
    [notice] = decision.notices
    assert notice.locale == "uk"


# -- russia: the notice's texts ----------------------------------------------------------------


def _notice(eng: Engine, locale: str, rule: str = "ru-undesirable-organization") -> Any:
    decision = eng.decide(
        location=where("RU"), accept_language=locale, tags=["foreign-agent"], at=AT
    )
    [match] = [n for n in decision.notices if n.rule_id == rule]
    return match


def test_english_is_rferl_wording_verbatim_with_the_link_line() -> None:
    notice = _notice(engine("russia"), "en")
    assert notice.text("en") == (
        'RFE/RL has been declared an "undesirable organization" by the Russian government.\n\n'
        "If you are in Russia or the Russia-controlled parts of Ukraine and hold a Russian "
        "passport or are a stateless person residing permanently in Russia or the "
        "Russia-controlled parts of Ukraine, please note that you could face fines or "
        "imprisonment for sharing, liking, commenting on, or saving our content, or for "
        "contacting us.\n\n"
        f"To find out more, click here ({RFERL_URL})."
    )
    assert f'<a href="{RFERL_URL}"' in notice.html("en")
    assert ">click here</a>" in notice.html("en")


def test_english_is_the_original_and_russian_and_ukrainian_are_unreviewed_translations() -> None:
    notice = _notice(engine("russia"), "en")
    assert notice.original == "en"
    assert notice.translation_status("en") == "original"
    assert notice.translation_status("ru") == "unreviewed"
    assert notice.translation_status("uk") == "unreviewed"


def test_the_site_sets_the_link_and_its_value_is_escaped() -> None:
    own = engine("russia", variables={"more-info-url": "https://news.example/why?a=1&b=2"})
    assert '<a href="https://news.example/why?a=1&amp;b=2"' in _notice(own, "ru").html()
    hostile = 'https://news.example/"><script>alert(1)</script>'
    html = _notice(engine("russia", variables={"more-info-url": hostile}), "en").html()
    assert "<script" not in html
    assert '"><' not in html.split("<a href=", 1)[1].split(">", 1)[0]
    html = _notice(
        engine("russia", variables={"more-info-url": "javascript:alert(1)"}), "en"
    ).html()
    assert "javascript:" not in html


def test_organization_has_a_value_per_locale() -> None:
    eng = engine("russia")
    assert _notice(eng, "en").text().startswith("RFE/RL has been declared")
    assert (
        _notice(eng, "ru")
        .text()
        .startswith(
            "Организация «Радио Свобода» признана правительством России "
            "«нежелательной организацией»."
        )
    )
    assert (
        _notice(eng, "uk")
        .text()
        .startswith("Організацію «РСЄ/РС» уряд Росії визнав «небажаною організацією».")  # noqa: RUF001
    )


def test_a_cyrillic_name_stays_in_the_nominative() -> None:
    meduza = engine("russia", variables={"organization": {"en": "Meduza", "ru": "Медуза"}})
    text = _notice(meduza, "ru").text()
    assert text.startswith("Организация «Медуза» признана")
    assert "Медузу" not in text
    assert _notice(meduza, "en").text().startswith("Meduza has been declared")


def test_ukrainian_wording() -> None:
    text = _notice(engine("russia"), "uk").text()
    assert "тимчасово окупованих Росією територіях України" in text
    assert "підконтрольних" not in text
    assert "зв\u2019язок" in text  # noqa: RUF001
    assert "'" not in text
    assert "вподобайки" in text
    assert text.endswith(f"Щоб дізнатися більше, натисніть тут ({RFERL_URL}).")


# -- russia: the foreign-agent label -----------------------------------------------------------


def test_foreign_agent_label_form_cases_and_placement() -> None:
    eng = engine(
        "russia",
        variables={
            "agent-instrumental": "Шульман Екатериной Михайловной",
            "agent-genitive": "Шульман Екатерины Михайловны",
        },
    )
    label = _notice(eng, "en", rule="ru-foreign-agent-label")
    assert label.locale == "ru"
    assert label.placement == "after_heading"
    assert label.original == "ru"
    assert label.text() == (
        "Настоящий материал (информация) произведен, распространен и (или) направлен "
        "иностранным агентом Шульман Екатериной Михайловной либо касается деятельности "
        "иностранного агента Шульман Екатерины Михайловны"
    )


def test_foreign_agent_label_has_no_default_name() -> None:
    [loaded] = [
        r for r in load_rules(packs=["russia"]).rules if r.rule.id == "ru-foreign-agent-label"
    ]
    notice = loaded.rule.notice
    assert notice is not None
    assert notice.variables == {"agent-instrumental": None, "agent-genitive": None}  # required
    assert loaded.rule.review_by == dt.date(2028, 12, 1)  # six years from 1 December 2022
    assert "no reader-location element" in loaded.rule.description


@pytest.mark.parametrize(
    "location", [where("RU"), where("UA", "UA-43"), where("FR"), where("US"), where(None)], ids=repr
)
def test_the_label_goes_on_tagged_material_wherever_it_is_read(location: Location) -> None:
    eng = engine("russia")
    assert "ru-foreign-agent-label" in applied(eng, location, tags=("foreign-agent",))
    assert "ru-foreign-agent-label" not in applied(eng, location)


def test_the_label_lands_after_the_headline_in_a_served_page() -> None:
    page = b"<!DOCTYPE html><html lang='en'><body><h1>Headline</h1><p>Story</p></body></html>"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("X-Compliance-Tags", "foreign-agent"),
        ]
        start_response("200 OK", headers)
        return [page]

    eng = Engine.from_paths(
        packs=["russia"],
        geolocator=FixedGeolocator(where("FR")),
        variables={"agent-instrumental": "Ивановым", "agent-genitive": "Иванова"},
    )
    body = call_wsgi(ComplianceMiddleware(app, eng), wsgi_environ("/")).body.decode()
    assert body.index("</h1>") < body.index('data-compliance-rule="ru-foreign-agent-label"')
    assert body.index('data-compliance-rule="ru-foreign-agent-label"') < body.index("<p>Story")


# -- belarus -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "sees"),
    [(where("BY"), True), (where("LT"), False), (where("RU"), False), (where(None), False)],
    ids=repr,
)
def test_who_sees_the_belarus_notice(location: Location, sees: bool) -> None:
    assert ("by-extremist-formation-notice" in applied(engine("belarus"), location)) is sees


def test_the_belarus_notice_is_the_publishers_own_and_marked_as_such() -> None:
    [loaded] = load_rules(packs=["belarus"]).rules
    notice = loaded.rule.notice
    assert notice is not None
    assert notice.original == "en"
    assert "there is no official text" in loaded.rule.description
    assert "written by the publisher" in loaded.rule.description
    assert {loc: t.status for loc, t in notice.translations.items()} == {
        "be": "unreviewed",
        "ru": "unreviewed",
    }
    assert loaded.rule.effective.from_ == dt.date(2021, 12, 23)
    decision = engine("belarus").decide(location=where("BY"), accept_language="be", at=AT)
    assert (
        decision.notices[0]
        .text()
        .startswith("Улады Беларусі прызналі выданне «Радыё Свабода» «экстрэмісцкім фармаваннем».")
    )


# -- us-age-verification -----------------------------------------------------------------------

ALABAMA = (
    "ALABAMA HEALTH AND HUMAN SERVICES WARNING: Pornography is potentially biologically "
    "addictive, is proven to harm human brain development, desensitizes brain reward circuits, "
    "increases conditioned responses, and weakens brain function.\n\n"
    "ALABAMA HEALTH AND HUMAN SERVICES WARNING: Exposure to this content is associated with "
    "low self-esteem and body image, eating disorders, impaired brain development, and other "
    "emotional and mental illnesses.\n\n"
    "ALABAMA HEALTH AND HUMAN SERVICES WARNING: Pornography increases the demand for "
    "prostitution, child exploitation, and child pornography.\n\n"
    "U.S. SUBSTANCE ABUSE AND MENTAL HEALTH SERVICES ADMINISTRATION HELPLINE: "
    "1-800-662-HELP (4357)\n\n"
    "THIS HELPLINE IS A FREE, CONFIDENTIAL INFORMATION SERVICE (IN ENGLISH OR SPANISH) OPEN "
    "24 HOURS PER DAY, FOR INDIVIDUALS AND FAMILY MEMBERS FACING MENTAL HEALTH OR SUBSTANCE USE "
    "DISORDERS."
)


def test_alabama_warnings_are_the_statutes_words() -> None:
    decision = engine("us-age-verification").decide(
        location=where("US", "US-AL"), tags=["adult"], accept_language="es", at=AT
    )
    [notice] = decision.notices
    assert notice.text() == ALABAMA
    assert notice.original == "en"
    assert notice.locale == "en"


def test_the_alabama_rule_says_which_sentence_its_helpline_paragraph_may_lack() -> None:
    # The enrolled act could not be read in full (issue #15): the rule ships only what the
    # summaries quote, and tells counsel what the identical Texas text adds, with its source.
    [loaded] = [
        r for r in load_rules(packs=["us-age-verification"]).rules if r.rule.id.startswith("us-al")
    ]
    description = " ".join(loaded.rule.description.split())
    assert "CHECK BEFORE RELYING ON IT" in description
    assert (
        '"THE SERVICE PROVIDES REFERRAL TO LOCAL TREATMENT FACILITIES, SUPPORT GROUPS, AND '
        'COMMUNITY BASED ORGANIZATIONS."' in description
    )
    assert "so it is not added here" in description
    assert "REFERRAL" not in ALABAMA  # never shipped as Alabama's words without a source
    assert any("reason.com/volokh/2023/08/31/" in source.url for source in loaded.rule.sources)


@pytest.mark.parametrize(
    ("location", "tags", "sees"),
    [
        (where("US", "US-AL"), ("adult",), True),
        (where("US"), ("adult",), True),  # state unknown: may be in Alabama
        (where("US", "US-AL"), (), False),
        (where("US", "US-GA"), ("adult",), False),
        (where("CA"), ("adult",), False),
        (where(None), ("adult",), False),
    ],
    ids=repr,
)
def test_who_sees_the_alabama_warnings(
    location: Location, tags: tuple[str, ...], sees: bool
) -> None:
    eng = engine("us-age-verification")
    assert ("us-al-adult-content-warnings" in applied(eng, location, tags=tags)) is sees


@pytest.mark.parametrize(
    ("rule", "state"), [("us-ut-adult-self-block", "US-UT"), ("us-tx-adult-self-block", "US-TX")]
)
def test_self_block_templates_are_opt_in(rule: str, state: str) -> None:
    eng = engine("us-age-verification")
    template_host = eng.decide(
        location=where("US", state), url="https://adult.example/v/1", tags=["adult"], at=AT
    )
    assert template_host.block is not None
    assert template_host.block.rule_id == rule
    assert template_host.block.status == 451
    assert 'rel="blocked-by"' in template_host.block.link_header
    real_host = eng.decide(
        location=where("US", state), url="https://www.example.org/v/1", tags=["adult"], at=AT
    )
    assert real_host.block is None


# -- uk-online-safety --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "blocked"),
    [
        (where("GB", "GB-ENG"), True),
        (where("GB"), True),
        (where(None), True),  # Ofcom: a geoblock must be effective
        (where("IE"), False),
        (where("JE"), False),
    ],
    ids=repr,
)
def test_who_the_uk_template_refuses(location: Location, blocked: bool) -> None:
    decision = engine("uk-online-safety").decide(
        location=location, url="https://adult.example/v/1", tags=["adult"], at=AT
    )
    assert (decision.block is not None) is blocked
    real = engine("uk-online-safety").decide(
        location=location, url="https://www.example.org/v/1", tags=["adult"], at=AT
    )
    assert real.block is None


# -- withheld and eu-sanctions: the withhold action on a served page ---------------------------


def _serve(eng: Engine, page: str, host: str) -> str:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page.encode()]

    environ = wsgi_environ("/story", headers=[("Host", host)])
    return call_wsgi(ComplianceMiddleware(app, eng), environ).body.decode()


def test_withheld_template_replaces_marked_parts_with_the_placeholder() -> None:
    page = (
        "<!DOCTYPE html><html><body><p>Kept.</p>"
        '<div data-compliance-withhold="comment legal-demand"><p>Withheld text.</p></div>'
        "</body></html>"
    )
    eng = Engine.from_paths(packs=["withheld"], geolocator=FixedGeolocator(where("DE")))
    body = _serve(eng, page, "news.example")
    assert "Withheld text." not in body
    assert "Kept." in body
    assert '<aside class="compliance-withheld" data-compliance-rule="withheld-content"' in body
    assert "in response to a legal demand" in body or "rechtlichen Forderung" in body
    untouched = _serve(eng, page, "www.example.org")
    assert "Withheld text." in untouched


@pytest.mark.parametrize("location", [where("DE"), where("US"), where(None)], ids=repr)
def test_eu_sanctions_apply_to_every_reader_and_remove_the_player(location: Location) -> None:
    page = (
        "<!DOCTYPE html><html><body><p>Report.</p>"
        '<iframe src="https://www.rt.com/embed/1"></iframe>'
        '<iframe src="https://www.example.org/embed/2"></iframe></body></html>'
    )
    eng = Engine.from_paths(packs=["eu-sanctions"], geolocator=FixedGeolocator(location))
    body = _serve(eng, page, "www.example.org")
    assert "rt.com" not in body
    assert "https://www.example.org/embed/2" in body
    assert 'data-compliance-rule="eu-annex-xv-embeds"' in body


@pytest.mark.parametrize(
    ("url", "removed"),
    [
        ("https://www.rt.com/player/1", True),
        ("https://rt.com/x", True),
        ("https://sputniknews.com/video/1", True),
        ("https://de.sputniknews.com/video/1", True),
        ("https://www.example.org/video/1", False),
        ("https://notrt.com/x", False),
        # A full stop that IDNA maps to "." ends the name as a trailing dot does.
        ("https://www.rt.com\u3002/player/1", True),
        ("https://rt\uff0ecom\uff61/x", True),
    ],
)
def test_eu_sanctions_embeds(url: str, removed: bool) -> None:
    decision = engine("eu-sanctions").decide(location=where("US"), at=AT)
    [withhold] = decision.withholds
    assert withhold.embed_url_matches(url) is removed


@pytest.mark.parametrize(
    ("pack", "country", "accept_language", "locale", "words"),
    [
        ("withheld", "DE", "de", "de", "rechtlichen Forderung"),
        ("withheld", "BR", "pt-BR", "en", "in response to a legal demand"),
        ("eu-sanctions", "FR", "fr-FR", "fr", "soumis aux sanctions"),
        ("eu-sanctions", "JP", "ja", "en", "under EU sanctions"),
    ],
)
def test_placeholder_locale(
    pack: str, country: str, accept_language: str, locale: str, words: str
) -> None:
    decision = engine(pack).decide(
        location=where(country),
        url="https://news.example/story",
        accept_language=accept_language,
        at=AT,
    )
    [withhold] = decision.withholds
    assert withhold.locale == locale
    assert withhold.has_placeholder
    placeholder = withhold.placeholder()
    assert placeholder is not None
    assert words in placeholder


@pytest.mark.parametrize(
    ("database", "ip", "location", "locale"),
    [
        # MaxMind's official test data: Crimea as UA + the bare "43" (Enterprise databases).
        ("GeoIP2-Enterprise-Test", "1.231.232.1", "UA/UA-43", "uk"),
        ("GeoIP2-Precision-Enterprise-Test", "1.231.232.1", "UA/UA-43", "uk"),
        ("GeoIP2-Precision-Enterprise-Test", "55.0.0.2", "UA/UA-30", None),  # Kyiv
        ("GeoIP2-City-Test", "2a02:d300::1", "UA", "uk"),  # subdivision unknown: apply
        ("GeoLite2-City-Test", "2a02:d0c0::1", "RU", "ru"),
        ("GeoIP2-Country-Test", "2a02:d300::1", "UA", "uk"),  # a Country database
        ("GeoIP2-City-Test", "81.2.69.142", "GB/GB-ENG", None),
    ],
)
def test_the_russia_notice_with_maxminds_test_databases(
    geoip_test_data: Path, database: str, ip: str, location: str, locale: str | None
) -> None:
    # The readers the notice is written for, located as a site would locate them: through
    # MaxMind's own .mmdb files, not a Location written by hand.
    eng = Engine.from_paths(packs=["russia"], geoip_db=geoip_test_data / f"{database}.mmdb")
    try:
        decision = eng.decide(ip=ip, url="https://www.example.org/a/story.html", at=AT)
        found = decision.location
        assert "/".join([found.country or "?", *found.subdivisions]) == location
        notices = [(n.rule_id, n.locale) for n in decision.notices]
        expected = [] if locale is None else [("ru-undesirable-organization", locale)]
        assert notices == expected
    finally:
        eng.close()


@pytest.mark.parametrize("pack", [p for p in PACKS if p not in ("russia", "examples")])
def test_a_packs_opt_in_example_keeps_the_default_pack(pack: str) -> None:
    # Naming packs replaces the default: a site that followed the header's example
    # (`packs=["belarus"]`) once silently lost the Russia notice.
    assert "ru-undesirable-organization" not in {
        loaded.rule.id for loaded in load_rules(packs=[pack]).rules
    }
    header = (RULES / f"{pack}.yaml").read_text(encoding="utf-8").split("\nversion:")[0]
    header = " ".join(line.lstrip("# ") for line in header.splitlines())
    assert f"--pack russia --pack {pack}" in header
    assert f'packs=["russia", "{pack}"]' in header
    assert "replaces the default" in header

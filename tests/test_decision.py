"""The decision seam and the rule-format additions, through the engine (issues 12, 14, 15, 18)."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.decision import Request
from compliance.engine import Engine
from compliance.errors import ConfigurationError, RuleError
from compliance.geo import UNKNOWN, Location
from compliance.loader import bundled_packs, lint, load_rules
from compliance.testing import FixedGeolocator

DAY = dt.date(2025, 1, 15)

RULES = """\
version: 1
regions:
  occupied:
    title: Occupied
    include: [UA-43, UA-14]
    sources: [{url: "https://example.org/law", title: A law, published: 2022-10-01}]
  occupied-strict:
    title: Occupied, strict
    include: [UA-09]
    unknown_subdivision: skip
rules:
  - id: notice-apply
    title: Applies to readers in UA with no subdivision
    jurisdictions: [RU, occupied]
    unknown_subdivision: apply
    notice:
      original: en
      translations: {ru: {status: reviewed, note: checked}, uk: {status: unreviewed}}
      variables: {org: {en: RFE/RL, ru: Радио Свобода, uk: Радіо Свобода}}
      text: {en: "{org} en", ru: "{org} ru", uk: "{org} uk"}
  - id: notice-skip
    title: Skips readers with no subdivision
    jurisdictions: [occupied]
    notice: {text: {en: skip}}
  - id: region-says-skip
    title: The region overrides
    jurisdictions: [occupied-strict]
    unknown_subdivision: apply
    notice: {text: {en: strict}}
  - id: withhold-de
    title: Withhold in Germany
    jurisdictions: [DE]
    hosts: [news.example]
    withhold:
      marks: [court-order]
      embeds: ["*.rt.com", "sputnik.example"]
      text: {en: "Withheld <here>", de: Zurückgehalten}
  - id: withhold-silent
    title: Withhold without trace
    jurisdictions: [DE]
    withhold: {embeds: [bücher.example], placeholder: false}
  - id: block-de
    title: Block in Germany
    jurisdictions: [DE]
    hosts: [news.example]
    paths: ["/blocked/**"]
    block:
      blocked_by: https://bücher.example/rechtliches
      text: {en: blocked}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "rules.yaml").write_text(RULES, encoding="utf-8")
    return Engine(load_rules([folder]), FixedGeolocator(UNKNOWN))


def ids(engine: Engine, location: Location, **request: object) -> list[str]:
    decision = engine.decide(location=location, at=DAY, **request)  # type: ignore[arg-type]
    return [n.rule_id for n in decision.notices]


def test_decision_module_imports_neither_engine_nor_loader() -> None:
    code = (
        "import sys, compliance.decision\n"
        "bad = [m for m in ('compliance.engine', 'compliance.loader', 'pydantic') "
        "if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pure_decide_needs_no_geolocation(engine: Engine) -> None:
    request = Request.of(host="News.Example.:443", path="/a/%2E%2E/x", at=DAY)
    decision = engine.decide(location=Location.of("DE"), request=request)
    assert [w.rule_id for w in decision.withholds] == ["withhold-de", "withhold-silent"]
    assert engine.decide(location=Location.of("DE"), request=request) is decision


def test_trailing_dot_and_port_do_not_escape_a_host_rule(engine: Engine) -> None:
    for host in ("news.example", "NEWS.example.", "news.example.:8080"):
        decision = engine.decide(location=Location.of("DE"), host=host, path="/blocked/1", at=DAY)
        assert decision.block is not None, host
        decision = engine.decide(
            location=Location.of("DE"), url=f"https://{host}/blocked/1", at=DAY
        )
        assert decision.block is not None, host


def test_idn_blocked_by_is_punycode_in_the_link_header(engine: Engine) -> None:
    block = engine.decide(
        location=Location.of("DE"), host="news.example", path="/blocked/x", at=DAY
    ).block
    assert block is not None
    assert block.link_header == '<https://xn--bcher-kva.example/rechtliches>; rel="blocked-by"'
    block.link_header.encode("latin-1")
    assert "bücher.example" in block.html()  # the page shows it as written


def test_unknown_subdivision_apply_and_skip(engine: Engine) -> None:
    assert ids(engine, Location.of("UA")) == ["notice-apply"]
    assert ids(engine, Location.of("UA", "UA-43")) == ["notice-apply", "notice-skip"]
    assert ids(engine, Location.of("UA", "UA-30")) == []
    assert ids(engine, Location.of("UA", "UA-09")) == ["region-says-skip"]
    trace = {t.rule_id: t for t in engine.decide(location=Location.of("UA"), at=DAY).trace}
    assert "subdivision unknown" in (trace["notice-skip"].reason or "")
    assert not trace["region-says-skip"].applied
    # The hint names unknown_subdivision only where `apply` would have matched: not for a
    # reader in another country, nor where the region's own setting decides.
    assert "unknown_subdivision" not in (trace["region-says-skip"].reason or "")
    trace = {t.rule_id: t for t in engine.decide(location=Location.of("DE"), at=DAY).trace}
    assert trace["notice-skip"].reason == "jurisdiction: DE is not in occupied"


def test_per_locale_variables_and_translation_status(engine: Engine) -> None:
    decision = engine.decide(location=Location.of("RU"), accept_language="uk", at=DAY)
    (notice,) = decision.notices
    assert notice.text("ru") == "Радио Свобода ru"
    assert notice.text("uk") == "Радіо Свобода uk"
    assert notice.text("en") == "RFE/RL en"
    assert notice.translation_status("en") == "original"
    assert notice.translation_status("ru") == "reviewed"
    assert notice.translation_status() == "unreviewed"
    assert decision.to_dict()["notices"][0]["translation"] == "unreviewed"  # type: ignore[index]


def test_site_wide_per_locale_variables(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES, encoding="utf-8")
    engine = Engine(
        load_rules([tmp_path]), FixedGeolocator(UNKNOWN), variables={"org": {"ru": "Медуза"}}
    )
    (notice,) = engine.decide(location=Location.of("RU"), at=DAY).notices
    assert notice.text("ru") == "Медуза ru"
    assert notice.text("en") == "RFE/RL en"  # the rule's own value where the site has none
    with pytest.raises(ConfigurationError, match="'xx-nonsense' is not a locale"):
        Engine(
            load_rules([tmp_path]),
            FixedGeolocator(UNKNOWN),
            variables={"org": {"xx-nonsense": "x"}},
        )


def test_withhold_matches_and_placeholder(engine: Engine) -> None:
    decision = engine.decide(
        location=Location.of("DE"), url="https://news.example/a", accept_language="de", at=DAY
    )
    loud, silent = decision.withholds
    assert loud.marks == ("court-order",)
    assert loud.embed_url_matches("https://player.RT.com:443/v")
    assert loud.embed_url_matches("//sputnik.example./x")
    assert not loud.embed_url_matches("https://rt.com.evil/x")
    assert not loud.embed_url_matches("/relative/rt.com")
    assert loud.placeholder() == (
        '<aside class="compliance-withheld" data-compliance-rule="withhold-de" lang="de" dir="ltr">'
        "<p>Zurückgehalten</p></aside>"
    )
    assert "Withheld &lt;here&gt;" in (loud.placeholder("en") or "")
    assert silent.placeholder() is None
    assert silent.embed_url_matches("https://xn--bcher-kva.example/x")
    assert silent.embed_host_matches("BÜCHER.example")
    assert "accept-language" in decision.vary


def test_a_block_excludes_withholding(engine: Engine) -> None:
    decision = engine.decide(
        location=Location.of("DE"), url="https://news.example/blocked/a", at=DAY
    )
    assert decision.block is not None
    assert decision.withholds == ()


def test_vary_accept_language_only_when_the_reader_chose(engine: Engine) -> None:
    decision = engine.decide(location=Location.of("RU"), accept_language="ru", at=DAY)
    assert "accept-language" in decision.vary
    assert "accept-language" not in decision.vary_for("uk")  # the page's language chose
    assert "accept-language" in decision.vary_for("fr")  # no text in fr: the reader chose


def test_huge_accept_language_is_bounded_in_the_cache(engine: Engine) -> None:
    huge = "uk," + "x" * (1 << 20)
    first = engine.decide(location=Location.of("RU"), accept_language=huge, at=DAY)
    assert first.notices[0].locale == "uk"
    assert first.accept_language is not None
    assert len(first.accept_language) < 2000
    state = engine._state  # the caches' bytes stay far below the header's size
    assert state.decisions.nbytes < 1 << 20
    assert state.fast.nbytes < 1 << 20
    again = engine.decide(location=Location.of("RU"), accept_language="uk," + "x" * 99, at=DAY)
    assert again.notices[0].locale == "uk"


def test_over_long_paths_are_fail_safe(engine: Engine) -> None:
    path = "/other/" + "a" * 10_000
    decision = engine.decide(location=Location.of("DE"), host="news.example", path=path, at=DAY)
    assert decision.block is not None  # `paths` count as matching beyond 8 KiB


def test_bundled_packs_and_unknown_pack() -> None:
    assert "russia" in bundled_packs()
    with pytest.raises(ConfigurationError, match=r"available: .*russia"):
        Engine.from_paths(packs=["nope"], geolocator=FixedGeolocator(UNKNOWN))
    engine = Engine.from_paths(packs=["russia"], geolocator=FixedGeolocator(UNKNOWN))
    assert engine.ruleset.packs == ("russia",)


BAD_FORMAT = """\
version: 1
rules:
  - id: bad
    title: Bad
    jurisdictions: [RU]
    review_by: 2020-01-01
    notice:
      original: de
      translations: {en: {status: reviewed}, fr: {status: unreviewed}}
      variables: {org: {en: A, xx-bogus: B}}
      text: {en: "{org}", ru: "{org}"}
"""


def test_format_additions_are_checked_with_positions(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_FORMAT, encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules([path])
    assert [str(p).removeprefix(f"{path}:") for p in info.value.problems] == [
        "8:17: rules[0].notice.original: 'de' has no text; `original` names the locale whose "
        "text is copied from a source (locales with a text: en, ru)",
        "9:46: rules[0].notice.translations.fr: 'fr' has no text to be a translation of "
        "(locales with a text: en, ru)",
        "10:32: rules[0].notice.variables.org.xx-bogus: unknown locale 'xx-bogus' (use a code "
        "such as 'en', 'ru', 'pt-BR')",
        "11:31: rules[0].notice.text.ru: placeholder '{org}' has no value in 'ru' (the variable "
        "has values in: en, xx-bogus)",
    ]


GOOD_BUT_UNSOURCED = """\
version: 1
regions:
  r: {title: R, include: [RU]}
rules:
  - id: a
    title: A
    jurisdictions: [r]
    review_by: 2020-01-01
    notice: {text: {en: x}}
  - id: b
    title: B
    jurisdictions: [RU]
    sources: [{url: "https://example.org/", title: T}]
    notice: {text: {en: y}}
"""


def test_lint_strict_wants_sources_and_warns_about_reviews(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(GOOD_BUT_UNSOURCED, encoding="utf-8")
    load_rules([path])  # loads: these are lint's concerns
    relaxed = [str(f).removeprefix(f"{path}:") for f in lint([path], today=DAY)]
    assert relaxed == [
        "8:16: warning: rule 'a' was due for review by 2020-01-01: check it against its "
        "sources, then move `review_by` forward"
    ]
    strict = lint([path], strict=True, today=DAY)
    assert [f.severity for f in strict] == ["error", "error", "error"]
    assert [str(f).removeprefix(f"{path}:")[:30] for f in strict] == [
        "3:3: region 'r' has no `source",
        "5:5: rule 'a' has no `sources`",
        "8:16: rule 'a' was due for rev",
    ]
    assert lint([path], today=dt.date(2019, 1, 1)) == []


RU_ONLY = """\
version: 1
rules:
  - id: ID
    title: Only in Russia
    jurisdictions: [RU]
    notice: {text: {en: "ID"}}
"""


def test_half_saved_file_keeps_its_last_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(RU_ONLY.replace("ID", "a"), encoding="utf-8")
    second.write_text(RU_ONLY.replace("ID", "b"), encoding="utf-8")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator(UNKNOWN))
    first.write_text("version: 1\n", encoding="utf-8")  # cut down while being saved
    with caplog.at_level(logging.WARNING, logger="compliance.engine"):
        assert engine.reload()
    assert sorted(engine.rule_ids) == ["a", "b"]
    assert f"{first} has no rules any more" in caplog.text
    caplog.clear()
    first.write_text(RU_ONLY.replace("ID", "a2"), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="compliance.engine"):
        assert engine.reload()
    assert sorted(engine.rule_ids) == ["a2", "b"]
    assert "rule a removed by the reload" in caplog.text
    caplog.clear()
    second.unlink()  # deleting a file removes its rules
    with caplog.at_level(logging.WARNING, logger="compliance.engine"):
        assert engine.reload()
    assert engine.rule_ids == ("a2",)
    assert "rule b removed by the reload" in caplog.text


def test_watcher_warns_until_a_half_saved_file_has_rules_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    first = tmp_path / "a.yaml"
    first.write_text(RU_ONLY.replace("ID", "a"), encoding="utf-8")
    with (
        caplog.at_level(logging.WARNING, logger="compliance.engine"),
        Engine.from_paths([tmp_path], geolocator=FixedGeolocator(UNKNOWN), watch=0.02) as engine,
    ):
        first.write_text("version: 1\n", encoding="utf-8")
        deadline = time.monotonic() + 5
        while caplog.text.count("has no rules any more") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert caplog.text.count("has no rules any more") >= 3  # at every check
        assert engine.rule_ids == ("a",)
        (tmp_path / "b.yaml").write_text(RU_ONLY.replace("ID", "b"), encoding="utf-8")
        first.write_text(RU_ONLY.replace("ID", "a"), encoding="utf-8")
        while engine.rule_ids != ("a", "b") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.rule_ids == ("a", "b")  # a new file in the folder is picked up


def test_ruleset_names_the_packs_loaded(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RU_ONLY.replace("ID", "a"), encoding="utf-8")
    assert load_rules([tmp_path]).packs == ()
    assert load_rules().packs == ("russia",)
    both = load_rules([tmp_path], packs=["russia"])
    assert both.packs == ("russia",)
    assert "a" in {loaded.rule.id for loaded in both.rules}


@settings(max_examples=150, deadline=None)
@given(
    host=st.text(max_size=300),
    path=st.text(max_size=300),
    language=st.one_of(st.none(), st.text(max_size=300)),
    tags=st.frozensets(st.text(max_size=20), max_size=5),
    country=st.sampled_from([None, "DE", "RU", "UA"]),
)
def test_any_request_decides_without_error(
    engine: Engine,
    host: str,
    path: str,
    language: str | None,
    tags: frozenset[str],
    country: str | None,
) -> None:
    location = Location.of(country) if country else UNKNOWN
    pure = engine.decide(
        location=location,
        request=Request.of(host=host, path=path, accept_language=language, tags=tags, at=DAY),
    )
    convenience = engine.decide(
        location=location, host=host, path=path, accept_language=language, tags=tags, at=DAY
    )
    assert [n.rule_id for n in pure.notices] == [n.rule_id for n in convenience.notices]
    assert (pure.block is None) == (convenience.block is None)
    for notice in pure.notices:
        notice.html()
    assert pure.to_dict()["location"]


def test_a_decisions_page_language_memo_keeps_languages_apart_and_stays_bounded(
    engine: Engine,
) -> None:
    """What a decision remembers per page language (snippets, vary, the localized form) is
    that language's answer, never another's; nothing is remembered for an over-long
    language."""
    from compliance.decision import Decision, _derived

    decision = engine.decide(location=Location.of("RU"), accept_language="en", at=DAY)

    def fresh() -> Decision:  # an equal decision with nothing remembered yet
        return engine.decide(
            location=Location.of("RU"), accept_language="en", at=DAY + dt.timedelta(1)
        )

    for _ in range(2):
        for language, text in (("uk", "uk"), ("ru", "ru"), ("en", "en"), ("fr", "en")):
            (snippet,) = decision.snippets(language).values()
            assert f" {text}</" in snippet, (language, snippet)
            assert decision.localized(language).notices[0].locale == text
    assert decision.vary_for("uk") == ()
    assert decision.vary_for("fr") == ("accept-language",)
    for n in range(200):
        language = f"en-x-{n:04d}"
        assert decision.snippets(language) == fresh().snippets(language)
        assert decision.vary_for(language) == fresh().vary_for(language)
    assert len(_derived) <= _derived.max_entries
    (snippet,) = decision.snippets("uk").values()
    assert " uk</" in snippet
    long = "en-" + "-".join(["abcdefgh"] * 4)  # 38 characters
    other = engine.decide(location=Location.of("RU"), accept_language="uk", at=DAY)
    assert other.snippets(long) == other.snippets(long)
    assert not any(language == long for _, _, language in list(_derived))


def test_what_decisions_remember_per_page_language_is_bounded_in_bytes_overall(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each decision remembers its snippets, locale choices and localized form per page
    language; however many decisions and page languages there are (readers' languages and
    paths make decisions, pages their languages), all of it together stays within one byte
    bound (here 1 MiB; 800 decisions in 10 languages would otherwise hold about 6 MB)."""
    import tracemalloc

    from compliance import decision as module
    from compliance.cache import BoundedCache

    assert module._derived.max_bytes <= 64 << 20
    bound = 1 << 20
    monkeypatch.setattr(module, "_derived", BoundedCache(10_000, bound, size=module._derived_size))
    decisions = [
        engine.decide(location=Location.of("RU"), accept_language="en", at=DAY + dt.timedelta(n))
        for n in range(800)
    ]
    languages = [f"en-x-{n:04d}" for n in range(10)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for decision in decisions:
            for language in languages:
                decision.snippets(language)
                decision.localized(language)
                decision.vary_for(language)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < bound, after - before
    assert module._derived.evictions > 0
    # Still remembered: a repeat is the same object, not made again.
    assert decisions[-1].localized(languages[-1]) is decisions[-1].localized(languages[-1])
    (snippet,) = decisions[-1].snippets(languages[-1]).values()
    assert " en</" in snippet


NEVER = """\
version: 1
regions:
  crimea:
    title: Crimea and Sevastopol
    include: [UA-43, UA-40]
rules:
  - id: never
    title: Excludes all it names
    jurisdictions: [RU, crimea]
    exclude: [RU, UA]
    notice: {text: {en: x}}
  - id: partly
    title: Excludes a part
    jurisdictions: [RU, UA]
    exclude: [UA-43]
    notice: {text: {en: y}}
  - id: unknown-readers
    title: Still reaches readers whose country is unknown
    jurisdictions: [RU]
    exclude: [RU]
    unknown_location: apply
    notice: {text: {en: z}}
"""


def test_lint_warns_about_a_rule_its_exclude_empties(tmp_path: Path) -> None:
    # Before: the rule loaded and linted clean, and applied to no reader (only `check
    # --explain` and rule tests said why).
    path = tmp_path / "never.yaml"
    path.write_text(NEVER, encoding="utf-8")
    assert [r.rule.id for r in load_rules([path]).rules] == ["never", "partly", "unknown-readers"]
    findings = lint([path], today=DAY)
    assert [str(f).removeprefix(f"{path}:") for f in findings] == [
        "7:5: warning: rule 'never' can never apply: its exclude (RU, UA) covers every place "
        "its jurisdictions reach (RU, UA-40, UA-43)"
    ]
    strict = lint([path], strict=True, today=DAY)
    assert [f.severity for f in strict if "can never apply" in f.message] == ["error"]

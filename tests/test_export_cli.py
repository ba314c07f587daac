"""`compliance export`: files written, nothing dropped in silence (`--strict`), stale output
caught (`--check`), effective dates baked for a day (`--at`), and locale tables that answer
exactly as the library's negotiation does. No engine runs here (see test_export_nginx.py and
test_export_cloudflare.py for that)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from compliance.cli import main
from compliance.export.plan import locale_table, negotiate
from compliance.locales import choose_locale

EDGE = Path(__file__).parent / "edge"
RULES = EDGE / "rules"


@pytest.fixture
def city(geoip_test_data: Path) -> str:
    return str(geoip_test_data / "GeoIP2-City-Test.mmdb")


def nginx(out: Path, city: str, *extra: str, rules: tuple[Path, ...] = (RULES,)) -> int:
    args = ["export", "nginx", "--output", str(out), "--geoip-db", city]
    for path in rules:
        args += ["--rules", str(path)]
    return main([*args, *extra])


def cloudflare(out: Path, *extra: str, rules: tuple[Path, ...] = (RULES,)) -> int:
    args = ["export", "cloudflare", "--output", str(out)]
    for path in rules:
        args += ["--rules", str(path)]
    return main([*args, *extra])


def test_nginx_files(tmp_path: Path, city: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert nginx(tmp_path, city, "--at", "2025-06-01") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "http.conf", "location.conf"]
    http = (tmp_path / "http.conf").read_text()
    assert f'geoip2 "{city}"' in http
    assert "$compliance_sub0 subdivisions 0 iso_code;" in http
    location = (tmp_path / "location.conf").read_text()
    assert 'proxy_set_header Accept-Encoding "";' in location
    assert "return 451" in location
    assert "add_header Link $compliance_block_link always;" in location
    assert "sub_filter '</body>'" in location
    readme = (tmp_path / "README.md").read_text()
    assert "load_module" in readme
    assert "set_real_ip_from" in readme
    # The not-yet and no-longer effective rules are listed, not exported.
    assert "- `future-rule`" in readme.split("Not in force")[1]
    assert "- `expired-rule`" in readme.split("Not in force")[1]
    assert str(tmp_path / "http.conf") in capsys.readouterr().out


def test_nginx_bakes_effective_dates_and_says_until_when(
    tmp_path: Path, city: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nginx(tmp_path, city, "--at", "2020-06-01") == 0
    err = capsys.readouterr().err
    assert "valid until 2021-01-01" in err
    http = (tmp_path / "http.conf").read_text()
    assert "# Valid until 2021-01-01 (UTC, exclusive)" in http
    readme = (tmp_path / "README.md").read_text()
    exported = readme.split("## Rules exported")[1].split("Not in force")[0]
    assert "- `expired-rule`" in exported
    assert "**Valid until 2021-01-01**" in readme


def test_check_passes_within_the_validity_and_fails_after_it(
    tmp_path: Path, city: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nginx(tmp_path, city, "--at", "2022-01-01") == 0
    # Another day in force of the same rules: the same files.
    assert nginx(tmp_path, city, "--at", "2030-05-05", "--check") == 0
    # After 2999-01-01 another rule is in force: stale.
    capsys.readouterr()
    assert nginx(tmp_path, city, "--at", "2999-01-01", "--check") == 1
    err = capsys.readouterr().err
    assert "out of date: http.conf" in err
    assert "out of date: README.md" in err


def test_check_catches_a_rule_change_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edge"
    assert cloudflare(out) == 0
    before = {p.name: p.read_text() for p in out.iterdir()}
    assert cloudflare(out, "--check") == 0
    assert cloudflare(out, "--check", rules=(RULES, EDGE / "worker-only")) == 1
    assert "out of date: worker.mjs" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert cloudflare(tmp_path / "missing", "--check") == 1


def test_strict_fails_on_what_nginx_cannot_express(
    tmp_path: Path, city: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = (RULES, EDGE / "worker-only", EDGE / "not-expressible")
    assert nginx(tmp_path, city, rules=rules) == 0
    err = capsys.readouterr().err
    readme = (tmp_path / "README.md").read_text()
    left_out = readme.split("## Left out")[1].split("## Limits")[0]
    for text in (err, left_out):
        assert "bhutan-tagged-block" in text  # a block decided by the origin's tags
        assert "withhold-embeds" in text  # withholding
        assert "us-washington-marker" in text  # no body_start fallback for the marker
        assert "sweden-heading" in text  # nor for after_heading
    assert nginx(tmp_path, city, "--strict", rules=rules) == 1
    assert "--strict" in capsys.readouterr().err
    # Rules left out are not in the configuration at all.
    assert "bhutan-tagged-block" not in (tmp_path / "http.conf").read_text()


def test_strict_on_cloudflare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cloudflare(tmp_path, "--strict", rules=(RULES, EDGE / "worker-only")) == 0
    assert capsys.readouterr().err == ""
    rules = (RULES, EDGE / "not-expressible")
    assert cloudflare(tmp_path, "--strict", rules=rules) == 1
    err = capsys.readouterr().err
    assert "withhold-embeds" in err
    assert "withhold" in (tmp_path / "README.md").read_text()
    # The notice of a rule that also withholds is still exported.
    assert '"withhold-embeds"' in (tmp_path / "worker.mjs").read_text()


def test_cloudflare_files(tmp_path: Path) -> None:
    assert cloudflare(tmp_path) == 0
    worker = (tmp_path / "worker.mjs").read_text()
    assert "import " not in worker.split("const DATA")[0]  # self-contained
    assert "export default" in worker
    assert "HTMLRewriter" in worker
    assert "env.ORIGIN" in worker
    wrangler = (tmp_path / "wrangler.toml").read_text()
    assert 'main = "worker.mjs"' in wrangler
    assert "compatibility_date" in wrangler


def test_the_bundled_packs_export(tmp_path: Path, city: str) -> None:
    # The foreign-agent label's required variables (a fictitious name): the site sets them.
    agent = ["--set", "agent-instrumental=Ивановым", "--set", "agent-genitive=Иванова"]
    assert main(["export", "cloudflare", "--output", str(tmp_path / "cf"), *agent]) == 0
    assert nginx(tmp_path / "ng", city, *agent, rules=()) == 0
    assert "ru-undesirable-organization" in (tmp_path / "ng" / "http.conf").read_text()
    assert (
        main(["export", "cloudflare", "--pack", "belarus", "--output", str(tmp_path / "by")]) == 0
    )
    assert "ru-undesirable-organization" not in (tmp_path / "by" / "worker.mjs").read_text()
    assert '"BY"' in (tmp_path / "by" / "worker.mjs").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "nginx", "--output", "x"], "needs --geoip-db"),
        (["export", "cloudflare", "--output", "x", "--at", "2024-01-01"], "--at is for nginx"),
        (["export", "cloudflare", "--output", "x", "--geoip-db", "a.mmdb"], "for nginx"),
        (["export", "nginx", "--output", "x", "--geoip-db", "a", "--at", "soon"], "not a date"),
        (["export", "cloudflare", "--output", "x", "--pack", "nonesuch"], "nonesuch"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


OPTIONS = [
    (("en", "ru", "uk"), "en"),
    (("en", "en_GB", "fr", "pt", "pt_BR", "zh_Hant", "zh_Hans"), "en"),
    (("de", "en", "sv"), "de"),
    (("sr", "sr_Latn", "en"), "sr"),
    (("en_GB", "en_US", "de_AT", "de_DE", "pt_PT", "pt_BR", "zh_Hans_SG", "zh_Hans_CN"), "en_GB"),
    (("nb", "nn", "he", "id", "fil", "en"), "en"),
]
HEADERS = [
    None,
    "",
    "ru",
    # Ranges a "*" outranks: the country's language and the default give way.
    "*, ru;q=0.5",
    "*, en;q=0.5",
    "*;q=0.8, en;q=0.5, ru;q=0.4, uk;q=0.3, pt;q=0.2",
    "*, uk;q=0, ru;q=0.9",
    "fr, *;q=0.6, ru;q=0.7",
    "uk, ru;q=0.8",
    "en;q=0.5, ru",
    "EN_gb",
    "pt-PT;q=0.4, zh-TW;q=0.9",
    "zh-HK",
    "zh-SG",
    "sv;q=0, de",
    "*;q=0.5, es",
    "*",
    "de;q=0",
    "ru;q=0, uk;q=0",
    "sr-ME",
    "sr-Latn-RS, sr;q=0.5",
    "xx-YY, fr",
    "en-XY, ru",
    "fr;q=bogus, uk",
    "ru-Latn, uk",
    "ru-Latn-UA;q=0, uk;q=0.5",
    "en-Cyrl-GB, fr",
    "zh-Latn-TW, pt",
    "de-DE-u-co-phonebk",
    "pt-BR-x-foo, en",
    "zh-Hant-TW-u-nu-hanidec;q=0.5, ru;q=0.4",
    "x-foo, sv",
    "sr-Latn-t-ru;q=0, de",
    "en-a-bbb-x-a-ccc, ru",
    "pt",
    "zh, en;q=0.5",
    "de;q=0, fr",
    "pt;q=0",
    "pt-BR;q=0, en-GB;q=0",
    "en;q=0, zh-Hans;q=0",
    # Language codes the library reads as others (`no` is `nb`, `iw` is `he`, `rus` is `ru`).
    "no, en",
    "iw",
    "in;q=0.9, tl",
    "rus, en",
    "ukr;q=0, uk",
    # Variant subtags: babel keeps one only where CLDR has that locale (en-US-POSIX,
    # ca-ES-valencia), reads any other as the language in the region (the script dropped),
    # and reads none with two variants or one of another shape.
    "de-DE-1996, en",
    "de-1996",
    "de-CH-1901;q=0, sv",
    "en-US-posix, ru",
    "en-GB-scouse",
    "sr-Latn-RS-ekavsk, en",
    "sr-Latn-ekavsk",
    "zh-Hant-TW-1996, en",
    "zh-Hant-1996",
    "pt-BR-abl1943",
    "pt-PT-ao1990;q=0, en",
    "ru-petr1708, uk",
    "ru-Latn-RU-petr1708",
    "sl-rozaj-biske, de",
    "de-DE-1606nict, ru",
    "uk-UA-1996-u-co-x",
    "nb-NO-1996, nn",
    # Region codes ISO 3166 retired: babel reads them as the ones that replaced them.
    "en-UK, fr",
    "de-DD",
    "ru-SU;q=0, uk",
    "pt-TP, en",
    "sr-Latn-CS, en",
]
COUNTRIES = [None, "RU", "UA", "BY", "GB", "BR", "PT", "TW", "CN", "CH", "RS", "ME", "SE"]
COUNTRIES += ["AT", "DE", "US", "SG", "IE"]
PAGES = [None, "pt-BR", "zh-Hant-TW", "sr-Latn", "nonsense", "ru-Latn", "en-Arab-GB"]
PAGES += ["pt-u-nu-latn", "x-klingon", "zh-Hans-x-private"]
PAGES += ["de-DE-1996", "sr-Latn-RS-ekavsk", "en-US-posix", "zh-Hant-TW-1996"]
# Not ASCII, so no language tag (babel reads "\u00b2" as a digit, "\u212a" lowers to "k").
PAGES += ["en-UK", "pt-TP"]
PAGES += ["de-DE-\u00b2000", "pt-BR-x-\u00e9", "\u212ak", "de-DE-\u0661\u0669\u0669\u0666"]


@pytest.mark.parametrize(("options", "default"), OPTIONS)
def test_locale_tables_answer_as_the_library_does(options: tuple[str, ...], default: str) -> None:
    """The edge looks the library's negotiation up instead of re-implementing CLDR: check
    the lookups against choose_locale over many readers."""
    table = locale_table(options, default)
    for header in HEADERS:
        for country in COUNTRIES:
            for page in PAGES:
                want = choose_locale(
                    options,
                    default,
                    page_language=page,
                    accept_language=header,
                    country=country,
                ).locale
                got = negotiate(table, page_language=page, accept_language=header, country=country)
                assert got == want, (header, country, page)


def test_export_is_deterministic(tmp_path: Path, city: str) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for name in ("a", "b"):
        assert nginx(tmp_path / name, city, "--at", today) == 0
        assert cloudflare(tmp_path / f"{name}-cf") == 0
    for name in ("http.conf", "location.conf", "README.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    for name in ("worker.mjs", "wrangler.toml", "README.md"):
        assert (tmp_path / "a-cf" / name).read_text() == (tmp_path / "b-cf" / name).read_text()


def test_nginx_reads_a_subdivision_after_one_iso_does_not_assign(tmp_path: Path, city: str) -> None:
    """The library leaves a code ISO 3166-2 does not assign out of a record's subdivisions
    (``["99", "43"]`` in Ukraine is ``("UA-43",)``): nginx's map of where the reader is has
    an entry for each such record, the one of the code that stands alone. It had none, so
    the reader was taken for one whose country is unknown."""
    import re

    assert nginx(tmp_path, city, "--at", "2026-12-01") == 0
    conf = (tmp_path / "http.conf").read_text()
    block = conf[conf.index('map "$compliance_cc:$compliance_s0:$compliance_s1"') :]
    block = block[: block.index("}")]
    entries = dict(re.findall(r'^\s*"([^"]*)" "([01]*)";', block, re.M))
    for key, bits in list(entries.items()):
        country, first, second = key.split(":")
        if first and not second:
            assert entries[f"{country}::{first}"] == bits, key
    assert "UA::UA-43" in entries


GLOBS = [
    ("*.example.org", True),
    ("news.example.org", True),
    ("*-*-*-*-*.example", True),
    ("a?c*", True),
    ("*", True),
    ("/news/**", False),
    ("/a/*/b", False),
    ("**/x/**/y", False),
    ("/a?/**", False),
    ("/**.html", False),
    ("/*/*/*", False),
    ("a??*??.org", True),
    ("/??/**", False),
    ("/a/*??/**???", False),
]
TEXTS = [
    "a.example.org",
    "example.org",
    "news.example.org",
    "a-b-c-d-e.example",
    "a-b.example",
    "abc",
    "ac",
    "/news/",
    "/news/a/b",
    "/a/x/b",
    "/a/x/y/b",
    "/x/y",
    "/q/x/r/y",
    "/ab/c",
    "/a/b.html",
    "/a/b/c",
    "/a/b",
    "ab1cd.org",
    "abcd.org",
    "abcdefg.org",
    "/ab/x",
    "/abc/x",
    "/a/xyz/q/abc",
    "/a/xy/q/abc",
    "/a/xyz/abc",
]


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize(("pattern", "host"), GLOBS)
def test_nginx_globs_match_as_the_library(pattern: str, host: bool, compact: bool) -> None:
    """Also in the compact form (runs of `?` counted) the nginx export uses for globs too
    long for one map key."""
    import re
    import time

    from compliance.export.nginx import _globs
    from compliance.globs import compile_globs

    library = compile_globs([pattern], host=host)
    assert library is not None
    regex = re.compile("(?s)" + (_globs([pattern], host=host, compact=compact) or "") + r"\Z")
    for text in TEXTS:
        assert bool(regex.match(text)) == library.match(text), (pattern, text)
    # The reader chooses the text: no pattern of every-star-matches-anything backtracks.
    if host:
        started = time.perf_counter()
        regex.match("-" * 5000 + "x")
        assert time.perf_counter() - started < 0.5


def test_a_field_the_exporter_does_not_know_is_listed_not_dropped() -> None:
    """A rule field added to the format later, and not taught to the exporter, leaves the
    rule out, with a message, instead of exporting a rule that means something else."""
    from compliance.export.plan import build_plan
    from compliance.models import Rule

    class FutureRule(Rule):
        only_on_weekdays: bool = False

    common = {"title": "t", "jurisdictions": ["RU"], "notice": {"text": {"en": "Hello."}}}
    rules = [
        FutureRule(id="future", only_on_weekdays=True, **common),
        FutureRule(id="plain", **common),
    ]
    plan = build_plan(rules, {}, target="nginx")
    assert [rule.id for rule in plan.rules] == ["plain"]
    assert [str(o) for o in plan.omissions] == [
        "rule future: field `only_on_weekdays` is not understood by the exporter (left out)"
    ]


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize(
    "pattern",
    ["/?", "/*?", "/**?a", "/?*?", "/a/*?/**?", "/??/*", "/one/?/x", "/any/**??", "/???/**??*?"],
)
def test_nginx_path_globs_count_characters_not_bytes(pattern: str, compact: bool) -> None:
    """nginx matches `$uri` as bytes; the library matches the path decoded with
    errors="replace". `?` must take one character either way (a UTF-8 sequence, or what one
    U+FFFD replaces), also right after a star, and in a counted run (compact)."""
    import random
    import re

    from compliance.export.nginx import _globs
    from compliance.globs import compile_globs

    glob = _globs([pattern], host=False, compact=compact) or ""
    regex = re.compile(b"(?s)" + glob.encode("latin-1") + b"\\Z")
    library = compile_globs([pattern], host=False)
    assert library is not None
    pieces = [b"a", b"/", b"\xd0\xb6", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xff", b"\xe2\x82"]
    pieces += [b"\xc0", b"\x80", b"\xed\xa0", b"\xf0\x9f", b"\xef\xbb\xbf"]
    generator = random.Random(pattern)
    prefix = pattern.split("?")[0].split("*")[0].encode()
    for _ in range(1500):
        data = prefix + b"".join(generator.choices(pieces, k=generator.randint(0, 4)))
        text = data.decode("utf-8", "replace")
        assert bool(regex.match(data)) == library.match(text), (pattern, data)


def test_an_output_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each was a FileExistsError / NotADirectoryError / IsADirectoryError traceback.
    a_file = tmp_path / "edge"
    a_file.write_text("", encoding="utf-8")
    taken = tmp_path / "taken"
    (taken / "worker.mjs").mkdir(parents=True)
    cases = [
        (a_file, f"--output '{a_file}' is a file, not a directory"),
        (a_file / "cloudflare", f"--output '{a_file}/cloudflare': cannot write the export "),
        (taken, f"--output '{taken}': cannot write the export there ({taken}/worker.mjs): "),
    ]
    for output, message in cases:
        assert cloudflare(output) == 2
        err = capsys.readouterr().err
        assert f"compliance export: {message}" in err
        assert "Traceback" not in err


def test_the_export_never_replaces_a_file_of_the_sites_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--output`` naming a project folder (or ``""``, the current one) replaced the site's
    own ``README.md`` with the export's (found in review). A file an export wrote before is
    replaced as ever."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "README.md").write_text("# My site\n", encoding="utf-8")
    assert cloudflare(site) == 2
    err = capsys.readouterr().err
    assert f"{site}/README.md exists and was not written by compliance export" in err
    assert (site / "README.md").read_text(encoding="utf-8") == "# My site\n"
    assert sorted(p.name for p in site.iterdir()) == ["README.md"]  # nothing written
    assert main(["export", "cloudflare", "--rules", str(RULES), "--output", ""]) == 2
    assert "the output directory is empty" in capsys.readouterr().err
    fresh = tmp_path / "edge"
    assert cloudflare(fresh) == 0
    assert cloudflare(fresh) == 0  # its own files again

"""The command line: exit codes, text and JSON output, no tracebacks on bad input."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compliance.cli import main

RU_IP = "77.88.55.88"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_main_job_shows_russia_notice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "check", "--ip", RU_IP, "--url", "https://www.example.org/a/story.html"
    )
    assert code == 0
    assert "Location: RU (source: embedded)" in out
    assert "Notice: ru-undesirable-organization (ru, body_end" in out
    assert "«нежелательной" in out


def test_check_english(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--ip", RU_IP, "--accept-language", "en")
    assert code == 0
    assert 'RFE/RL has been declared an "undesirable organization" by the Russian' in out


def test_check_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "check", "--country", "UA", "--subdivision", "UA-43", "--format", "json"
    )
    assert code == 0
    document = json.loads(out)
    assert set(document) >= {"location", "notices", "block", "trace"}
    assert document["location"] == {
        "country": "UA",
        "subdivisions": ["UA-43"],
        "source": "command line",
    }
    (notice,) = document["notices"]
    assert set(notice) >= {"rule", "locale", "placement", "text", "html"}
    assert notice["rule"] == "ru-undesirable-organization"
    assert notice["locale"] == "uk"
    assert notice["html"].startswith('<aside class="compliance-notice"')
    assert document["block"] is None
    assert {t["rule"] for t in document["trace"]} >= {"ru-foreign-agent-label"}


def test_check_block_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "check",
        "--country",
        "DE",
        "--url",
        "https://news.example/withheld/story",
        "--pack",
        "withheld",
        "--format",
        "json",
    )
    assert code == 0
    block = json.loads(out)["block"]
    assert block["rule"] == "withheld-page"
    assert block["status"] == 451
    assert block["link"] == '<https://www.example.org/legal>; rel="blocked-by"'


def test_check_germany_has_no_notice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--country", "DE", "--explain")
    assert code == 0
    assert "Notices: none" in out
    assert "ru-undesirable-organization: skipped, jurisdiction: DE is not in" in out


def test_check_variables_and_date(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "check",
        "--country",
        "RU",
        "--set",
        "organization=Meduza",
        "--accept-language",
        "en",
        "--at",
        "2024-03-01",
    )
    assert code == 0
    assert "Meduza has been declared" in out
    code, out, _ = run(capsys, "check", "--country", "RU", "--at", "2024-02-19")
    assert "Notices: none" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--ip", "not-an-ip"], "is not an IP address"),
        (["check", "--country", "Russia"], "is not an ISO 3166-1 code"),
        (["check", "--country", "ZZ"], "give a country such as RU, UA or DE"),
        (["check", "--country", "UA", "--subdivision", "UA-99"], "for example UA-05"),
        (
            ["check", "--country", "UA", "--subdivision", "43"],
            "write it with its country, e.g. UA-43",
        ),
        (["check", "--country", "DE", "--subdivision", "UA-43"], "starts with DE-"),
        (["check", "--country", "RU", "--page-language", "xx"], "such as en, ru, uk"),
        (["check", "--country", "RU", "--url", "not-a-url"], "not an absolute http(s) URL"),
        (["check", "--country", "RU", "--url", "ftp://example.org/"], "not an absolute http(s)"),
        (["check", "--country", "RU", "--url", "https://[::1/"], "not an absolute http(s) URL"),
        (["check", "--country", "RU", "--at", "yesterday"], "is not a date"),
        (["check", "--country", "RU", "--set", "novalue"], "write NAME=VALUE"),
        (["check", "--ip", RU_IP, "--subdivision", "UA-43"], "goes with --country"),
        (["check", "--country", "RU", "--rules", "/nonexistent"], "no such file"),
        (["lint", "/nonexistent/rules"], "no such file or directory"),
        (["locate", "999.1.1.1"], "is not an IP address"),
        (["locate", "1.2.3.4", "--geoip-db", "/nonexistent.mmdb"], "nonexistent.mmdb"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--country", "RU", "--format", "xml"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


# The day of the bundled packs' last review: linted as of then, a `review_by` passing later
# (lint's warning to report) does not fail these tests on a calendar date.
PACKS_REVIEWED = "2026-12-01"


def test_lint_bundled_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lint", "--at", PACKS_REVIEWED)
    assert code == 0
    *notes, last = out.splitlines()
    assert re.fullmatch(r"ok: \d+ rules?, \d+ regions? and \d+ tests? in \d+ files?", last)
    assert all(": note: " in line and "required variable" in line for line in notes)


def test_lint_strict_requires_sources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE_OF_EACH, encoding="utf-8")
    code, out, _ = run(capsys, "lint", str(tmp_path))
    assert code == 0
    code, out, err = run(capsys, "lint", "--strict", str(tmp_path))
    assert code == 1
    lines = out.splitlines()
    assert lines
    assert all(line.startswith(f"{tmp_path / 'one.yaml'}:") for line in lines)
    assert any("sources" in line for line in lines)
    assert err.endswith("problem(s) in rule files\n")


def test_bundled_packs_pass_lint_strict(capsys: pytest.CaptureFixture[str]) -> None:
    from compliance.loader import bundled_packs

    packs = [arg for name in bundled_packs() for arg in ("--pack", name)]
    # On the day of the packs' last review (a `review_by` passing later is lint's job to
    # report, not a reason for this test to fail on a calendar date).
    code, out, _ = run(capsys, "lint", "--strict", "--at", PACKS_REVIEWED, *packs)
    assert code == 0, out
    *notes, last = out.splitlines()  # notes: the required variables the site must set
    assert last.startswith("ok: ")
    assert all(": note: " in line for line in notes)


def test_lint_warnings_do_not_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(
        ONE_OF_EACH.replace("    title: R\n", "    title: R\n    review_by: 2020-01-01\n"),
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "lint", str(tmp_path))
    assert code == 0
    first, last = out.splitlines()[0], out.splitlines()[-1]
    assert first.startswith(f"{tmp_path / 'old.yaml'}:")
    assert ": warning: " in first
    assert last == "ok: 1 rule, 1 region and 1 test in 1 file, 1 warning"
    code, _, _ = run(capsys, "lint", "--strict", str(tmp_path))
    assert code == 1


def test_lint_checks_review_dates_against_the_day_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "due.yaml").write_text(
        ONE_OF_EACH.replace("    title: R\n", "    title: R\n    review_by: 2027-01-01\n"),
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "lint", "--at", "2027-01-01", str(tmp_path))
    assert (code, out) == (0, "ok: 1 rule, 1 region and 1 test in 1 file\n")
    code, out, _ = run(capsys, "lint", "--at", "2027-01-02", str(tmp_path))
    assert code == 0
    assert "was due for review by 2027-01-01" in out.splitlines()[0]
    assert out.splitlines()[-1].endswith(", 1 warning")
    code, _, err = run(capsys, "lint", "--at", "1 January", str(tmp_path))
    assert code == 2
    assert "--at '1 January' is not a date (YYYY-MM-DD)" in err


def test_lint_counts_in_words(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE_OF_EACH, encoding="utf-8")
    code, out, _ = run(capsys, "lint", str(tmp_path))
    assert (code, out) == (0, "ok: 1 rule, 1 region and 1 test in 1 file\n")


ONE_OF_EACH = """version: 1
regions:
  crimea: {title: Crimea, include: [UA-43]}
rules:
  - id: r
    title: R
    jurisdictions: [crimea]
    notice: {text: {en: hi}}
    tests:
      - name: Crimea
        reader: {country: UA, subdivisions: [UA-43]}
        expect: {applies: true}
"""


def test_lint_reports_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    titel: y\n", encoding="utf-8")
    code, out, err = run(capsys, "lint", str(tmp_path))
    assert code == 1
    assert out.splitlines() == [
        f"{bad}:3:5: rules[0]: missing key 'jurisdictions'",
        f"{bad}:4:5: rules[0].titel: unknown key 'titel' (did you mean 'title'?)",
    ]
    assert err == "2 problem(s) in rule files\n"


def test_test_command_runs_bundled_rule_tests(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test")
    assert code == 0
    assert re.search(r"\n\d+ passed, 0 failed\n$", out)


def test_test_command_reports_failures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        """version: 1
rules:
  - id: r
    title: R
    jurisdictions: [RU]
    notice: {text: {en: hi}}
    tests:
      - name: wrong on purpose
        reader: {country: DE}
        expect: {applies: true}
""",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "test", str(tmp_path))
    assert code == 1
    assert "r.yaml:8:9: rule 'r', test 'wrong on purpose': FAILED" in out
    assert "expected rule 'r' to apply, but it did not" in out
    assert "trace: r: skipped, jurisdiction: DE is not in RU" in out
    assert "0 passed, 1 failed" in out


def test_locate_embedded(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "locate", RU_IP, "--format", "json")
    assert code == 0
    assert json.loads(out)["country"] == "RU"
    code, out, _ = run(capsys, "locate", "10.1.2.3")
    assert out.startswith("10.1.2.3: unknown")


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "compliance", "check", "--country", "RU", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["notices"][0]["rule"] == "ru-undesirable-organization"


def test_lint_of_a_folder_without_rule_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "lint", str(tmp_path))
    assert code == 2
    assert "no rule files (*.yaml, *.yml) in" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from compliance.__about__ import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines() == [f"compliance {__version__}"]
    # The help promised "the C accelerators in use": they were removed, and --version
    # prints the version alone.
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--version   show the version\n" in capsys.readouterr().out


def test_valid_codes_in_any_case_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "check", "--country", "ua", "--subdivision", "ua-43", "--page-language", "uk"
    )
    assert code == 0, err
    assert "Location: UA/UA-43" in out
    assert "Notice: ru-undesirable-organization (uk" in out


def test_demo_without_the_demo_extra_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what "not installed" looks like
    code, _, err = run(capsys, "demo", "--port", "0")
    assert code == 2
    assert err == "compliance demo: the demo needs uvicorn: pip install 'compliance[demo]'\n"


def test_pack_selects_a_bundled_pack(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lint", "--pack", "russia", "--at", PACKS_REVIEWED)
    assert code == 0, err
    assert out.endswith(" in 1 file\n")
    code, out, _ = run(capsys, "test", "--pack", "russia", "--quiet")
    assert code == 0
    assert out.rstrip().endswith(" 0 failed")
    code, out, _ = run(capsys, "check", "--pack", "russia", "--country", "RU")
    assert "Notice: ru-undesirable-organization" in out


def test_pack_adds_to_rule_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE_OF_EACH, encoding="utf-8")
    code, out, err = run(capsys, "lint", str(tmp_path), "--pack", "russia", "--at", PACKS_REVIEWED)
    assert code == 0, err
    assert out.endswith(" in 2 files\n")
    code, out, _ = run(
        capsys, "check", "--rules", str(tmp_path), "--pack", "russia", "--country", "UA",
        "--subdivision", "UA-43", "--format", "json",
    )  # fmt: skip
    assert {n["rule"] for n in json.loads(out)["notices"]} >= {"r", "ru-undesirable-organization"}


def test_an_unknown_pack_is_a_usage_error_naming_the_packs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in (["lint"], ["test"], ["check", "--country", "RU"], ["demo"]):
        code, _, err = run(capsys, *command, "--pack", "narnia")
        assert code == 2, command
        assert "--pack: no bundled rule pack named 'narnia' (available: " in err
        assert "russia" in err


def test_check_as_a_reader_located_by_cdn_headers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "check", "--geo-header", "cloudflare",
        "--header", "CF-IPCountry: UA", "--header", "cf-region-code: 43",
    )  # fmt: skip
    assert code == 0, err
    assert "Location: UA/UA-43 (source: header:cloudflare)" in out
    assert "Notice: ru-undesirable-organization (uk" in out


def test_cdn_headers_that_say_nothing_fall_back_to_the_ip(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "check", "--geo-header", "cloudflare", "--header", "CF-IPCountry: XX",
        "--ip", RU_IP,
    )  # fmt: skip
    assert code == 0
    assert "Location: RU (source: embedded)" in out


def test_check_completes_a_cdn_country_from_the_city_database_as_the_middleware_does(
    capsys: pytest.CaptureFixture[str], geoip_test_data: Path, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: wa-notice\n    title: Washington\n"
        "    jurisdictions: [US-WA]\n    notice:\n      placement: body_end\n"
        "      default_locale: en\n      text: {en: For readers in Washington.}\n",
        encoding="utf-8",
    )
    code, out, err = run(
        capsys, "check", "--rules", str(tmp_path),
        "--geoip-db", str(geoip_test_data / "GeoIP2-City-Test.mmdb"),
        "--geo-header", "cloudflare", "--header", "CF-IPCountry: US", "--ip", "216.160.83.56",
    )  # fmt: skip
    assert code == 0, err
    assert "Location: US/US-WA (source: header:cloudflare+maxmind:GeoIP2-City)" in out
    assert "Notice: wa-notice" in out


def test_a_provider_without_fixed_header_names_takes_them_from_header_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "check", "--geo-header", "fastly", "--header", "X-Geo-Country: RU",
    )  # fmt: skip
    assert code == 0
    assert "Location: RU (source: header:fastly)" in out


def test_a_provider_reading_none_of_the_header_lines_takes_its_names_from_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Google's load balancer header is the one each site configures; --help says the first
    --header names the country header for google, yet it was ignored: "reader: unknown"."""
    code, out, err = run(
        capsys, "locate", "--geo-header", "google", "--header", "X-LB-Geo: UA,UA43",
    )  # fmt: skip
    assert code == 0, err
    assert "UA-43" in out
    assert "header:google" in out
    # A header the provider reads is read, whatever other lines say.
    code, out, _ = run(
        capsys, "check", "--geo-header", "cloudflare", "--header", "X-Other: DE",
        "--header", "CF-IPCountry: RU",
    )  # fmt: skip
    assert code == 0
    assert "Location: RU (source: header:cloudflare)" in out


def test_locate_by_cdn_headers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "locate", "--geo-header", "cloudfront",
        "--header", "CloudFront-Viewer-Country: UA",
        "--header", "CloudFront-Viewer-Country-Region: 43", "--format", "json",
    )  # fmt: skip
    assert code == 0
    located = json.loads(out)
    assert (located["country"], located["subdivisions"]) == ("UA", ["UA-43"])
    assert located["source"] == "header:cloudfront"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check"], "say who the reader is: --ip IP, --country CC or --geo-header PROVIDER"),
        (["check", "--country", "RU", "--geo-header", "cloudflare"], "choose one"),
        (["check", "--country", "RU", "--header", "CF-IPCountry: RU"], "goes with --geo-header"),
        (["check", "--geo-header", "nimbus"], "choose from cloudflare"),
        (["check", "--geo-header", "fastly"], "give the country header first"),
        (["check", "--geo-header", "cloudflare", "--header", "CF-IPCountry RU"], "'Name: value'"),
        (["locate"], "give the reader's IP address, or --geo-header"),
        (["locate", "--geo-header", "cloudflare", "--header", "bad name: x"], "'Name: value'"),
    ],
)
def test_geo_header_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err


TRANSLATED = """version: 1
rules:
  - id: notice
    title: A notice
    jurisdictions: [UA]
    notice:
      original: en
      translations:
        uk: {status: reviewed, note: Checked by counsel.}
      text:
        en: The original.
        uk: Переклад.
        ru: Перевод.
"""


def test_check_shows_which_text_is_a_translation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "t.yaml").write_text(TRANSLATED, encoding="utf-8")
    rules = ["--rules", str(tmp_path), "--country", "UA"]
    _, out, _ = run(capsys, "check", *rules, "--accept-language", "en")
    assert "Notice: notice (en, body_end, original text)" in out
    _, out, _ = run(capsys, "check", *rules, "--accept-language", "uk")
    assert "Notice: notice (uk, body_end, reviewed translation of en)" in out
    _, out, _ = run(capsys, "check", *rules, "--accept-language", "ru", "--explain")
    assert "Notice: notice (ru, body_end, unreviewed translation of en)" in out
    assert "  Texts: en original, uk reviewed, ru unreviewed" in out
    _, out, _ = run(capsys, "check", *rules, "--accept-language", "ru", "--format", "json")
    assert json.loads(out)["notices"][0]["translation"] == "unreviewed"


def test_check_lists_what_would_be_withheld(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "check", "--pack", "withheld", "--country", "DE",
        "--url", "https://news.example/story", "--accept-language", "de",
    )  # fmt: skip
    assert code == 0
    assert "Withhold: withheld-content (marks legal-demand)" in out
    assert "  placeholder (de, unreviewed translation of en):" in out


PAGE = """<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main><h1>Story</h1>
<p>Kept.</p><p data-compliance-withhold="legal-demand">Withheld <b>part</b>.</p>
<div data-compliance-withhold="other legal-demand"><p>Also withheld</p></div><p>End.</p>
</main></body></html>
"""


def test_check_page_shows_the_notices_that_go_in(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "story.html"
    page.write_text(PAGE, encoding="utf-8")
    code, out, _ = run(capsys, "check", "--country", "RU", "--page", str(page))
    assert code == 0
    assert "  notices in the page: ru-undesirable-organization" in out


def test_check_page_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", "--country", "RU", "--page", str(tmp_path / "nope.html"))
    assert code == 2
    assert "No such file" in err
    code, _, err = run(capsys, "check", "--country", "RU", "--page", str(tmp_path))
    assert code == 2


def test_check_page_shows_what_would_be_withheld(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "story.html"
    page.write_text(PAGE, encoding="utf-8")
    where = ["--pack", "withheld", "--url", "https://news.example/story", "--page", str(page)]
    code, out, err = run(capsys, "check", "--country", "DE", *where)
    assert code == 0, err
    assert f"Page {page}:\n  withheld by withheld-content: 2 elements" in out
    code, out, _ = run(capsys, "check", "--country", "DE", *where, "--format", "json")
    assert json.loads(out)["page"]["withheld"] == {"withheld-content": 2}
    # a real host is not covered by the template: nothing withheld
    code, out, _ = run(
        capsys, "check", "--country", "DE", "--pack", "withheld", "--page", str(page)
    )
    assert "  nothing withheld" in out


def _cli(*args: str, stdin_closed: bool = False, **env: str) -> tuple[int, bytes, bytes]:
    """Run ``compliance ARGS`` in a process of its own: exit code, stdout, stderr. With
    ``stdin_closed`` the reader of its output is gone before the first line."""
    import os

    with subprocess.Popen(
        [sys.executable, "-m", "compliance", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    ) as process:
        if stdin_closed:
            assert process.stdout is not None
            assert process.stderr is not None
            process.stdout.close()  # the reader is gone before the first line
            err = process.stderr.read()
            return process.wait(timeout=60), b"", err
        out, err = process.communicate(timeout=60)
        return process.returncode, out, err


def test_a_failing_lint_piped_into_a_reader_that_stops_still_exits_1(tmp_path: Path) -> None:
    # `compliance lint rules/ | head` under `set -o pipefail`: the lint failed, whatever
    # the reader of its output did (it exited 0, with the count on stderr gone).
    rules = tmp_path / "many.yaml"
    rule = "  - {id: r%d, title: x, jurisdictions: [ZZ], notice: {text: {en: hi}}}"
    rules.write_text(
        "version: 1\nrules:\n" + "\n".join(rule % i for i in range(2000)) + "\n",
        encoding="utf-8",
    )
    for command in ("lint", "test"):
        code, _, err = _cli(command, str(rules), stdin_closed=True)
        assert code == 1
        assert "2000 problem(s) in rule files" in err.decode()
        assert b"Traceback" not in err
    assert _cli("schema", stdin_closed=True) == (0, b"", b"")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_terminal_without_cyrillic_gets_escapes_not_a_traceback(encoding: str) -> None:
    code, out, err = _cli("check", "--country", "RU", PYTHONIOENCODING=encoding)
    assert code == 0, err.decode()
    assert b"Notice: ru-undesirable-organization" in out
    assert b"\\u041e\\u0440\\u0433" in out  # «Организация», escaped
    code, out, err = _cli("check", "--country", "RU", "--format", "json", PYTHONIOENCODING=encoding)
    assert code == 0, err.decode()
    assert json.loads(out)["notices"][0]["text"].startswith("Организация «Радио Свобода»")


def test_a_file_name_with_undecodable_bytes_is_printed_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "r\udcffules"  # the byte 0xFF, as os.fsdecode gives it
    try:
        folder.mkdir()
    except (UnicodeEncodeError, OSError):  # pragma: no cover - a file system that refuses it
        pytest.skip("file names must be text here")
    (folder / "half.yaml").write_text('version: 1\nrules:\n  - id: "a\n', encoding="utf-8")
    code, out, err = _cli("lint", str(folder), PYTHONIOENCODING="utf-8")
    assert code == 1, err.decode()
    assert b"r\\udcffules" in out
    assert b"half.yaml:3:9: YAML syntax error" in out


def test_output_that_cannot_be_written_is_an_error_in_words() -> None:
    if not Path("/dev/full").exists():  # pragma: no cover
        pytest.skip("no /dev/full")
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "compliance", "schema"],
            stdout=full,
            stderr=subprocess.PIPE,
            check=False,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.decode().startswith("compliance schema: cannot write the output: ")


SILENT_AND_CUT = """\
version: 1
rules:
  - id: no-trace
    title: Remove without a placeholder
    jurisdictions: [RU]
    withhold:
      marks: [secret]
      placeholder: false
"""


def test_check_page_counts_what_is_removed_without_a_placeholder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # It said "nothing withheld" (and "53 bytes ... removed") for a paragraph the middleware
    # removes without a trace: an auditor read that nothing would be taken out.
    rules = tmp_path / "rules.yaml"
    rules.write_text(SILENT_AND_CUT, encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text(
        '<html><body><h1>News</h1><p data-compliance-withhold="secret">the secret</p>'
        "<p>the rest</p></body></html>",
        encoding="utf-8",
    )
    args = ["check", "--rules", str(rules), "--country", "RU", "--page", str(page)]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "nothing withheld" not in out
    assert "  withheld by no-trace: 1 element, removed without a trace\n" in out
    code, out, _ = run(capsys, *args, "--format", "json")
    report = json.loads(out)["page"]
    assert report["withheld"] == {"no-trace": 1}
    assert report["not_edited"] is None


def test_check_page_says_when_the_middleware_would_cut_the_page_short(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Where a withheld element ends cannot be told: the middleware ends the page there. The
    # report said "status 200, nothing withheld", as if the page went out whole.
    rules = tmp_path / "rules.yaml"
    rules.write_text(SILENT_AND_CUT, encoding="utf-8")
    page = tmp_path / "page.html"
    deep = "<div>" * 5000 + "deep" + "</div>" * 5000
    page.write_text(
        f'<html><body><h1>News</h1><div data-compliance-withhold="secret">{deep}</div>'
        "<p>the rest</p></body></html>",
        encoding="utf-8",
    )
    args = ["check", "--rules", str(rules), "--country", "RU", "--page", str(page)]
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "nothing withheld" not in out
    assert "  cut short: the page cannot be edited safely (withhold uncertain)" in out
    code, out, _ = run(capsys, *args, "--format", "json")
    report = json.loads(out)["page"]
    assert (report["not_edited"], report["cut"]) == ("withhold uncertain", True)


@pytest.mark.parametrize("port", ["70000", "-1", "65536", "http"])
def test_demo_port_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], port: str
) -> None:
    # uvicorn got it and died with two OverflowError tracebacks (exit 1).
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--port", port])
    assert exc.value.code == 2
    assert f"argument --port: '{port}' is not a TCP port (0 to 65535)" in capsys.readouterr().err


def test_demo_on_a_port_in_use_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # uvicorn could not bind and the command exited 3, outside the documented 0, 1 and 2.
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err
    # It said "choose another with --port or --host": a port in use is not fixed by another
    # host, and leaving loopback exposes the demo.
    assert "in use" in err
    assert "--host" not in err
    # Nor did it announce a site it was not serving.
    assert "compliance demo on http" not in err


def test_test_takes_the_sites_variables_as_its_message_says(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A test of a rule with a required variable failed with "... or --set agent=...
    # (command line)", and `compliance test --set agent=...` was an unrecognised argument.
    (tmp_path / "r.yaml").write_text(
        """version: 1
rules:
  - id: label
    title: Label
    jurisdictions: [RU]
    notice:
      variables: {agent: null}
      text: {en: "By {agent}"}
    tests:
      - name: the site's name goes in
        reader: {country: RU}
        expect: {notices: [label]}
      - name: a test's own value replaces the site's
        reader: {country: RU}
        request: {variables: {agent: Example Media}}
        expect: {notices: [label]}
""",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "test", str(tmp_path))
    assert code == 1
    assert "--set agent=..." in out
    code, out, err = run(capsys, "test", str(tmp_path), "--set", "agent=Our Site")
    assert code == 0, out + err
    assert "2 passed, 0 failed" in out
    code, _, err = run(capsys, "test", str(tmp_path), "--set", "agnet=Our Site")
    assert code == 2
    assert "variables 'agnet' are not used by any rule" in err


@pytest.mark.parametrize("given", [["withheld, other"], [" withheld "], ["other", "withheld"]])
def test_check_reads_tags_as_the_middleware_reads_the_tags_header(
    capsys: pytest.CaptureFixture[str], given: list[str]
) -> None:
    # `--tag 'withheld, other'` was one tag no rule names: "Notices: none", while the
    # middleware, sent `X-Compliance-Tags: withheld, other`, showed withheld-notice.
    from compliance import Engine
    from compliance.testing import FixedGeolocator, call_wsgi, wsgi_environ
    from compliance.wsgi import ComplianceMiddleware

    def page(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        headers = [("Content-Type", "text/html"), ("X-Compliance-Tags", ", ".join(given))]
        start_response("200 OK", headers)
        return [b"<html><body><p>story</p></body></html>"]

    engine = Engine.from_paths(packs=["withheld"], geolocator=FixedGeolocator("RU"))
    try:
        app = ComplianceMiddleware(page, engine)
        response = call_wsgi(app, wsgi_environ("/story", headers=[("Host", "news.example")]))
    finally:
        engine.close()
    assert response.notices == ["withheld-notice"]
    tags = [arg for tag in given for arg in ("--tag", tag)]
    where = ["--pack", "withheld", "--url", "https://news.example/story"]
    code, out, err = run(capsys, "check", "--country", "RU", *where, *tags, "--format", "json")
    assert code == 0, err
    assert [n["rule"] for n in json.loads(out)["notices"]] == response.notices


def test_check_page_without_a_place_for_the_notice_is_sent_whole_without_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Nothing is withheld, so the fail mode sends the page as it is: not "cut short".
    page = tmp_path / "page.html"
    page.write_text("<!-- never closed <html><body><p>story</p></body></html>", "utf-8")
    code, out, _ = run(capsys, "check", "--country", "RU", "--page", str(page))
    assert code == 0
    assert "cut short" not in out
    assert (
        f"Page {page}:\n"
        "  notices not put in (not inserted): the middleware's fail mode sends the page "
        "without them\n"
        "  nothing withheld\n"
        "  notices in the page: none"
    ) in out
    code, out, _ = run(capsys, "check", "--country", "RU", "--page", str(page), "--format", "json")
    report = json.loads(out)["page"]
    assert (report["not_edited"], report["cut"], report["notices"]) == ("not inserted", False, [])


FORGING = """\
version: 1
rules:
  - id: "bad\\nid"
    title: x
    jurisdictions: ["R\\n::error file=ok.yaml,line=1::forged", "DE\\u202e"]
    notice: {text: {en: hi}}
"""


def test_every_lint_problem_is_one_line_whatever_the_file_quotes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A value quoted in a message, or a file name, with a line break in it printed a second
    # line, which CI reads as a problem (or a workflow command) of its own; a right-to-left
    # override reordered the message on screen.
    (tmp_path / "a\n::warning::b.yaml").write_text(FORGING, encoding="utf-8")
    code, out, _ = run(capsys, "lint", str(tmp_path))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{tmp_path}/a\\n::warning::b.yaml:") for line in lines)
    assert "'bad\\nid' is not a valid name" in lines[0]
    assert "'R\\n::error file=ok.yaml,line=1::forged' is not a jurisdiction" in lines[1]
    assert "'DE\\u202e' is not a jurisdiction" in lines[2]


def test_a_rule_test_name_is_printed_on_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "r.yaml").write_text(
        """version: 1
rules:
  - id: r
    title: R
    jurisdictions: [DE]
    notice: {text: {en: hi}}
    tests:
      - name: "passes\\n::error file=r.yaml,line=1::forged"
        reader: {country: DE}
        expect: {applies: true}
""",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "test", str(tmp_path))
    assert code == 0
    assert out.splitlines() == [
        f"{tmp_path}/r.yaml:8:9: rule 'r', test 'passes\\n::error file=r.yaml,line=1::forged': ok",
        "1 passed, 0 failed",
    ]


def test_check_shows_control_characters_of_a_text_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # ESC [8m hid "in the page" on an auditor's terminal, while readers see those words
    # in the page.
    rules = tmp_path / "r.yaml"
    rules.write_text(
        """version: 1
rules:
  - id: r
    title: R
    jurisdictions: [DE]
    notice: {text: {en: "Shown \\e[8min the page\\e[0m to readers"}}
""",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "check", "--rules", str(rules), "--country", "DE")
    assert code == 0
    assert "  Shown \\x1b[8min the page\\x1b[0m to readers\n" in out
    assert "\x1b" not in out


def test_a_closed_standard_output_keeps_the_exit_code(tmp_path: Path) -> None:
    # `compliance lint rules/ >&-`: nothing can be printed, the lint still fails (exit 1),
    # and success is still 0; neither is a traceback.
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: [{id: r, title: x, jurisdictions: [ZZ]}]\n", "utf-8")
    for args, expected in ((["lint", str(bad)], 1), (["schema"], 0)):
        result = subprocess.run(
            ["sh", "-c", 'exec "$0" -m compliance "$@" >&-', sys.executable, *args],
            stderr=subprocess.PIPE,
            check=False,
            timeout=60,
        )
        assert result.returncode == expected, result.stderr.decode()
        assert b"Traceback" not in result.stderr


def test_check_page_says_which_locale_the_page_itself_chooses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A page declaring <html lang="uk"> gets the Ukrainian notice from the middleware;
    # `check --page` showed the Russian text, and nothing said it is not the one that goes in.
    page = tmp_path / "page.html"
    page.write_text('<!DOCTYPE html><html lang="uk"><body><h1>Новини</h1></body></html>', "utf-8")
    code, out, _ = run(capsys, "check", "--country", "RU", "--page", str(page))
    assert code == 0
    assert "Notice: ru-undesirable-organization (ru, " in out
    assert "  notices in the page: ru-undesirable-organization (uk)\n" in out
    assert (
        "  ru-undesirable-organization goes in as uk (the page's own language), not ru as "
        "shown above: add --page-language uk to see that text"
    ) in out
    args = ["check", "--country", "RU", "--page", str(page), "--page-language", "uk"]
    code, out, _ = run(capsys, *args)
    assert "Notice: ru-undesirable-organization (uk, " in out
    assert "goes in as" not in out
    code, out, _ = run(capsys, "check", "--country", "RU", "--page", str(page), "--format", "json")
    assert json.loads(out)["page"]["locales"] == {"ru-undesirable-organization": "uk"}


def test_an_expectation_written_with_no_value_fails_instead_of_checking_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `notices:` alone on its line is null in YAML: the test "no notice for Germans" passed
    # while Germans got one.
    (tmp_path / "r.yaml").write_text(
        """version: 1
rules:
  - id: shown
    title: Shown
    jurisdictions: [DE]
    notice: {text: {en: Hello.}}
    tests:
      - name: no value for applies
        reader: {country: DE}
        expect:
          applies:
tests:
  - name: Germans see no notice
    reader: {country: DE}
    expect:
      notices:
  - name: nothing withheld, in English
    reader: {country: DE}
    expect: {withholds: null, locale: null, block: null}
  - name: written out, it checks
    reader: {country: DE}
    expect: {notices: [shown], withholds: [], block: null}
""",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "test", str(tmp_path))
    assert code == 1
    assert "`applies:` has no value, so it checks nothing: write `applies: false` or " in out
    assert "`notices:` has no value, so it checks nothing: write `notices: []` for no " in out
    assert "`withholds:` has no value, so it checks nothing: write `withholds: []` for " in out
    assert "`locale:` has no value, so it checks nothing: write the locale expected" in out
    assert "`block:` has no value" not in out  # block: null means "no block"
    assert "test 'written out, it checks': ok" in out
    assert "1 passed, 3 failed" in out


def test_check_page_says_which_locale_placeholders_go_in_with(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><body><h1>News</h1>'
        '<p data-compliance-withhold="legal-demand">the part withheld</p></body></html>',
        "utf-8",
    )
    where = ["--pack", "withheld", "--url", "https://news.example/story", "--page", str(page)]
    code, out, _ = run(capsys, "check", "--country", "RU", *where)
    assert code == 0
    assert "  placeholder (ru, " in out
    assert "withheld by withheld-content: 1 element, each replaced by its placeholder (en)" in out
    assert (
        "  withheld-content's placeholder goes in as en (the page's own language), not ru as "
        "shown above: add --page-language en to see that text"
    ) in out
    code, out, _ = run(capsys, "check", "--country", "RU", *where, "--format", "json")
    assert json.loads(out)["page"]["placeholder_locales"] == {"withheld-content": "en"}


def test_check_json_stays_valid_with_c1_controls_in_a_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # json.dumps leaves DEL and C1 controls as they are; escaped for the terminal as \x9b
    # they made the document invalid JSON.
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - id: r\n    title: R\n    jurisdictions: [DE]\n"
        '    notice: {text: {en: "A\\x9b8mB \\x7f C"}}\n',
        encoding="utf-8",
    )
    code, out, _ = run(
        capsys, "check", "--rules", str(rules), "--country", "DE", "--format", "json"
    )
    assert code == 0
    assert json.loads(out)["notices"][0]["text"] == "A\x9b8mB \x7f C"
    assert "\x9b" not in out


def test_an_empty_rule_path_is_a_usage_error_not_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `compliance lint "$RULES"` with RULES unset linted whatever YAML was in the working
    # directory and said "ok" (and Engine.from_paths([""]) loaded it).
    from compliance import Engine
    from compliance.errors import ConfigurationError

    (tmp_path / "other.yaml").write_text("version: 1\nrules: []\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for args in (["lint", ""], ["test", ""], ["check", "--rules", "", "--country", "DE"]):
        code, out, err = run(capsys, *args)
        assert code == 2, out
        assert "a rule path is empty ('')" in err
    with pytest.raises(ConfigurationError, match="a rule path is empty"):
        Engine.from_paths([""])


DATED = """version: 1
rules:
  - id: dated
    title: Dated
    jurisdictions: [RU]
    notice:
      variables: {since: SINCE, org: Example Media}
      text: {en: "{org}, listed since {since}.", ru: "{org}, в списке с {since}."}
"""  # noqa: RUF001


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_date_variable_given_with_set_is_rendered_as_the_date_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, language: str
) -> None:
    # `--set since=2025-05-17` for a variable the rule declares with a date printed
    # "listed since 2025-05-17." (the text as typed), where the same date in the rule
    # file prints "listed since May 17, 2025." (babel, in the notice's locale).
    written, given = tmp_path / "written.yaml", tmp_path / "given.yaml"
    written.write_text(DATED.replace("SINCE", "2025-05-17"), encoding="utf-8")
    given.write_text(DATED.replace("SINCE", "2020-01-01"), encoding="utf-8")
    reader = ["check", "--country", "RU", "--accept-language", language]
    code, expected, _ = run(capsys, *reader, "--rules", str(written))
    assert code == 0
    assert "2025" in expected
    assert "2025-05-17" not in expected
    code, out, err = run(capsys, *reader, "--rules", str(given), "--set", "since=2025-05-17")
    assert code == 0, err
    assert out == expected


@pytest.mark.parametrize("command", ["check", "test", "export", "lint"])
@pytest.mark.parametrize("value", ["2025-02-30", "17 May 2025", "20250517"])
def test_a_date_variable_set_to_something_else_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, value: str
) -> None:
    (tmp_path / "r.yaml").write_text(DATED.replace("SINCE", "2020-01-01"), encoding="utf-8")
    args = {
        "check": ["check", "--country", "RU", "--rules", str(tmp_path)],
        "test": ["test", str(tmp_path)],
        "export": ["export", "cloudflare", "--rules", str(tmp_path), "--output", str(tmp_path)],
        "lint": ["lint", str(tmp_path)],
    }[command]
    code, _, err = run(capsys, *args, "--set", f"since={value}", "--set", "org=2025-05-17")
    assert code == 2
    assert f"--set since={value!r}" in err
    assert "variable 'since' is a date in the rules" in err
    assert "YYYY-MM-DD" in err


def test_a_page_language_with_an_extension_is_read_as_pages_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``<html lang="uk-UA-u-nu-latn">`` is read as ``uk-UA`` by the middleware; the command
    refused it as no language (found in review)."""
    code, out, err = run(capsys, "check", "--country", "RU", "--page-language", "uk-UA-u-nu-latn")
    assert code == 0, err
    assert "Notice: ru-undesirable-organization (uk" in out

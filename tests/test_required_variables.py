"""Required rule variables (``null`` in the rule file): the site must set them.

A decided notice is a delivered notice, or a loud failure: a rule whose required variable is
unset never shows a blank where the name goes. Rendering raises a typed error the middleware
turns into its fail mode; creating the engine warns; lint notes it; ``check`` and ``export``
stop and say which ``--set`` to give.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from compliance import ComplianceFault, Engine, Location, VariableMissing, lint, load_rules
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.cli import main
from compliance.demo import create_app
from compliance.errors import ConfigurationError, RuleError
from compliance.loader import bundled_rules_path
from compliance.models import json_schema
from compliance.ruletests import run_rule_tests
from compliance.testing import FixedGeolocator, asgi_scope, call_asgi, call_wsgi, wsgi_environ
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RULES = """version: 1
rules:
  - id: label
    title: A label naming an agent the site chooses
    jurisdictions: ["*"]
    unknown_location: apply
    notice:
      placement: after_heading
      variables: {agent: null, outlet: {en: Example, de: Beispiel}}
      default_locale: en
      text:
        en: "Produced by {agent} for {outlet}."
        de: "Für {outlet}."
"""

BLOCK = """version: 1
rules:
  - id: withheld
    title: Withheld at someone's request
    jurisdictions: [DE]
    block:
      blocked_by: https://www.example.org/legal
      variables: {authority: null}
      text: {en: "Withheld at the request of {authority}."}
"""

PAGE = b"<!DOCTYPE html><html lang='en'><body><h1>Headline</h1><p>Story</p></body></html>"
AGENT = {"agent-instrumental": "Ивановым Иваном Ивановичем", "agent-genitive": "Иванова Ивана"}
AGENT_ARGS = ["--set", "agent-instrumental=Ивановым", "--set", "agent-genitive=Иванова"]


def rule_file(tmp_path: Path, text: str = RULES, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def make_engine(path: Path, country: str = "DE", **variables: Any) -> Engine:
    return Engine.from_paths(
        [path], geolocator=FixedGeolocator(Location.of(country)), variables=variables
    )


def the_label(engine: Engine) -> Any:
    [notice] = engine.decide(location=Location.of("DE"), accept_language="en").notices
    return notice


# -- the format ---------------------------------------------------------------------------------


def test_null_declares_a_required_variable(tmp_path: Path) -> None:
    [loaded] = load_rules([rule_file(tmp_path)]).rules
    assert loaded.rule.notice is not None
    assert loaded.rule.notice.variables["agent"] is None
    variables = json_schema()["$defs"]["Notice"]["properties"]["variables"]
    [value] = variables["patternProperties"].values()
    assert {"type": "null"} in value["anyOf"]  # editors accept it too


def test_a_per_locale_null_is_an_error_saying_how_to_require(tmp_path: Path) -> None:
    path = rule_file(
        tmp_path, RULES.replace("outlet: {en: Example, de: Beispiel}", "outlet: {en: null}")
    )
    with pytest.raises(RuleError) as caught:
        load_rules([path])
    [problem] = [p for p in caught.value.problems if ".outlet.en" in p.message]
    assert "a per-locale value cannot be null" in problem.message
    assert "`outlet: null`" in problem.message


# -- rendering ----------------------------------------------------------------------------------


def test_an_unset_required_variable_raises_instead_of_rendering_a_blank(tmp_path: Path) -> None:
    engine = make_engine(rule_file(tmp_path))
    label = the_label(engine)  # the rule still applies: the decision is made
    for render in (label.html, label.text):
        with pytest.raises(VariableMissing) as caught:
            render()
        error = caught.value
        assert isinstance(error, ComplianceFault)
        assert (error.rule, error.variables, error.locale) == ("label", ("agent",), "en")
        assert error.cause == "label:agent"  # what the middleware keys its log line by
        assert "--set agent=..." in str(error)
        assert "variables={'agent': ...}" in str(error)
    # A locale whose text does not use the variable renders.
    assert "Für Beispiel." in label.html("de")


@pytest.mark.parametrize(
    "value", [{"de": "Agentur"}, "", "   "], ids=["no value in the locale", "empty", "blank"]
)
def test_a_value_missing_in_the_locale_or_blank_counts_as_unset(
    tmp_path: Path, value: object
) -> None:
    label = the_label(make_engine(rule_file(tmp_path), agent=value))
    with pytest.raises(VariableMissing):
        label.text()


@pytest.mark.parametrize("value", ["", "   ", {"en": " "}], ids=["empty", "blank", "blank in en"])
def test_a_blank_site_value_leaves_the_rules_own_value(tmp_path: Path, value: object) -> None:
    # docs/rules.md: "a blank value from the site counts as unset". For a variable the rule
    # gives a value, unset is that value: a blank one rendered a notice with a gap where the
    # outlet's name goes ("Produced by X for .").
    label = the_label(make_engine(rule_file(tmp_path), agent="X", outlet=value))
    assert label.text() == "Produced by X for Example."
    assert "Produced by X for Example." in label.html()


def test_the_site_value_renders(tmp_path: Path) -> None:
    label = the_label(make_engine(rule_file(tmp_path), agent={"en": "Agent & Co"}))
    assert label.text() == "Produced by Agent & Co for Example."
    assert "Produced by Agent &amp; Co for Example." in label.html()


def test_none_from_the_site_is_not_a_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="'agent': None is not a value"):
        make_engine(rule_file(tmp_path), agent=None)


def test_a_block_that_needs_a_variable_raises_too(tmp_path: Path) -> None:
    engine = make_engine(rule_file(tmp_path, BLOCK))
    block = engine.decide(location=Location.of("DE")).block
    assert block is not None
    for render in (block.html, block.json, block.text):
        with pytest.raises(VariableMissing, match="rule 'withheld'"):
            render()


# -- loud at start-up ---------------------------------------------------------------------------


def test_creating_an_engine_warns_once_per_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = rule_file(tmp_path)
    rule_file(tmp_path, BLOCK, "block.yaml")
    with caplog.at_level(logging.WARNING, "compliance.engine"):
        make_engine(tmp_path).close()
    records = [r for r in caplog.records if r.name == "compliance.engine"]
    assert len(records) == 2
    by_rule = {r.args[0]: r.getMessage() for r in records}  # type: ignore[index]
    assert "required variables the site has not set: agent (needed in en)" in by_rule["label"]
    assert "variables={'agent': ...}" in by_rule["label"]
    assert "--set agent=..." in by_rule["label"]
    assert "--set authority=..." in by_rule["withheld"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "compliance.engine"):
        make_engine(path, agent="X").close()
    assert [r for r in caplog.records if r.name == "compliance.engine"] == []


def test_a_reload_that_adds_a_required_variable_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = rule_file(tmp_path, RULES.replace("agent: null", "agent: Agent X"))
    engine = make_engine(path)
    path.write_text(RULES, encoding="utf-8")
    with caplog.at_level(logging.WARNING, "compliance.engine"):
        assert engine.reload() is True
    [record] = [r for r in caplog.records if r.name == "compliance.engine"]
    assert "rule label" in record.getMessage()
    engine.close()


def test_the_bundled_label_says_what_to_set_without_alarming_sites_that_never_tag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The label is for content tagged foreign-agent only: INFO at start-up (most sites never
    # use the tag), a loud fault where it applies (see the middleware tests below).
    with caplog.at_level(logging.INFO, "compliance.engine"):
        Engine.from_paths(packs=["russia"]).close()
    [record] = [r for r in caplog.records if "required variables" in r.getMessage()]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "ru-foreign-agent-label" in message
    assert "--set agent-instrumental=... --set agent-genitive=..." in message


# -- the middlewares: the fault goes through the fail mode --------------------------------------


def html_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


async def asgi_html_app(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


def served(kind: str, engine: Engine, fail_mode: str) -> tuple[Any, Any]:
    if kind == "wsgi":
        wsgi = WsgiMiddleware(html_app, engine, fail_mode=fail_mode)
        return call_wsgi(wsgi, wsgi_environ("/", peer="192.0.2.1")), wsgi
    asgi = AsgiMiddleware(asgi_html_app, engine, fail_mode=fail_mode)
    return call_asgi(asgi, asgi_scope("/", peer="192.0.2.1")), asgi


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_fail_open_sends_the_page_unedited_and_private(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(rule_file(tmp_path))
    caplog.clear()
    response, middleware = served(kind, engine, "open")
    assert response.status == 200
    assert response.body == PAGE  # unedited: no label with a blank name
    assert "private" in (response.header("cache-control") or "")
    assert sum(middleware.metrics()["faults"].values()) == 1
    records = [r for r in caplog.records if r.name == "compliance.middleware"]
    [record] = [r for r in records if r.exc_info is not None]
    assert record.levelno >= logging.WARNING
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], VariableMissing)
    assert "192.0.2.1" not in record.getMessage()
    # The notice the fault cost: one WARNING, counted.
    [lost] = [r for r in records if r.exc_info is None]
    assert lost.levelno == logging.WARNING
    assert "(fault)" in lost.getMessage()
    assert "192.0.2.1" not in lost.getMessage()
    assert sum(middleware.metrics()["notices_not_delivered"].values()) == 1


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_fail_closed_answers_503(kind: str, tmp_path: Path) -> None:
    response, middleware = served(kind, make_engine(rule_file(tmp_path)), "closed")
    assert response.status == 503
    assert b"Produced by" not in response.body
    assert sum(middleware.metrics()["faults"].values()) == 1


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_with_the_variable_set_the_label_is_delivered(kind: str, tmp_path: Path) -> None:
    response, middleware = served(kind, make_engine(rule_file(tmp_path), agent="Agent X"), "closed")
    assert response.status == 200
    assert response.notices == ["label"]
    assert b"Produced by Agent X for Example." in response.body
    assert middleware.metrics()["faults"] == {}


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_block_that_cannot_render_goes_through_the_fail_mode(kind: str, tmp_path: Path) -> None:
    engine = make_engine(rule_file(tmp_path, BLOCK))
    response, middleware = served(kind, engine, "closed")
    assert response.status == 503
    assert middleware.metrics()["faults"] == {"block page": 1}
    # Failing open, the block still stands, without its text: never the page itself.
    response, _ = served(kind, engine, "open")
    assert response.status == 451
    assert response.body == b"Unavailable For Legal Reasons\n"
    assert 'rel="blocked-by"' in (response.header("Link") or "")


# -- lint ---------------------------------------------------------------------------------------


def test_lint_notes_unset_required_variables_only_when_given_the_site_values(
    tmp_path: Path,
) -> None:
    path = rule_file(tmp_path)
    assert lint([path]) == []  # not asked: whether the site sets them is not in the files
    for strict in (False, True):
        findings = lint([path], variables={}, strict=strict)  # strict: sources are missing
        [note] = [f for f in findings if "required variable" in f.message]
        assert note.severity == "note"  # never escalated: the files are fine
        assert str(note) == (
            f"{path}:9:26: note: rules[0].notice.variables.agent: required variable; the "
            "site must set it (variables={'agent': ...} in Python, --set agent=... on the "
            "command line)"
        )
    assert lint([path], variables={"agent": "X"}) == []
    with pytest.raises(ConfigurationError, match="'agnet' are not used by any rule"):
        lint([path], variables={"agnet": "X"})


def test_cli_lint_strict_passes_with_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rule_file(tmp_path)
    assert main(["lint", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}:9:26: note: rules[0].notice.variables.agent: required")
    assert out[-1] == "ok: 1 rule, 0 regions and 0 tests in 1 file"
    assert main(["lint", str(path), "--set", "agent=X"]) == 0
    assert capsys.readouterr().out.splitlines() == [out[-1]]
    assert main(["lint", str(path), "--set", "agnet=X"]) == 2
    assert "'agnet' are not used by any rule" in capsys.readouterr().err


def test_the_bundled_pack_passes_lint_strict_and_notes_the_agent_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As of the pack's last review (a `review_by` passing later is lint's to report).
    reviewed = ["--at", "2026-12-01"]
    assert main(["lint", "--strict", "--pack", "russia", *reviewed]) == 0
    *notes, last = capsys.readouterr().out.splitlines()
    assert last.startswith("ok: ")
    assert [n.split(": ")[2] for n in notes] == [
        "rules[1].notice.variables.agent-instrumental",
        "rules[1].notice.variables.agent-genitive",
    ]
    assert main(["lint", "--strict", "--pack", "russia", *AGENT_ARGS, *reviewed]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


# -- check and export ---------------------------------------------------------------------------


def test_check_without_the_names_fails_saying_which_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", "--country", "RU", "--tag", "foreign-agent"])
    out, err = capsys.readouterr()
    assert code != 0
    assert "rule 'ru-foreign-agent-label'" in err
    assert "--set agent-instrumental=... --set agent-genitive=..." in err
    assert "иностранным агентом" not in out


def test_check_with_the_names_prints_the_label(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--country", "RU", "--tag", "foreign-agent", *AGENT_ARGS])
    out = capsys.readouterr().out
    assert code == 0
    assert "Notice: ru-foreign-agent-label" in out
    assert "иностранным агентом Ивановым либо" in out
    assert "иностранного агента Иванова" in out


def test_export_without_the_names_fails_saying_which_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "cloudflare", "--output", str(tmp_path / "a")]) != 0
    assert "--set agent-instrumental=..." in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert main(["export", "cloudflare", "--output", str(tmp_path / "b"), *AGENT_ARGS]) == 0
    assert "Ивановым" in (tmp_path / "b" / "worker.mjs").read_text(encoding="utf-8")


# -- rule tests ---------------------------------------------------------------------------------

WITH_TESTS = (
    RULES
    + """    tests:
      - name: without the site's value the label cannot be shown
        reader: {country: DE}
        request: {accept_language: en}
        expect: {applies: true}
      - name: with it, it can
        reader: {country: DE}
        request: {accept_language: en, variables: {agent: Agent X}}
        expect: {applies: true}
"""
)


def test_rule_tests_render_and_take_the_sites_variables(tmp_path: Path) -> None:
    engine = make_engine(rule_file(tmp_path, WITH_TESTS))
    without, with_value = run_rule_tests(engine)
    assert without.failures == (
        "notice 'label' cannot be rendered: " + str(VariableMissing("label", ["agent"], "en")),
    )
    assert with_value.passed
    assert with_value.decision is not None
    assert with_value.decision.notices[0].text() == "Produced by Agent X for Example."


def test_a_rule_test_naming_an_unknown_variable_is_a_lint_error(tmp_path: Path) -> None:
    path = rule_file(tmp_path, WITH_TESTS.replace("{agent: Agent X}", "{agnet: Agent X}"))
    with pytest.raises(RuleError) as caught:
        load_rules([path])
    [problem] = caught.value.problems
    assert problem.message == (
        "rules[0].tests[1].request.variables.agnet: unknown variable 'agnet' "
        "(did you mean 'agent'?)"
    )


def test_the_bundled_label_tests_give_the_names() -> None:
    source = (bundled_rules_path() / "russia.yaml").read_text(encoding="utf-8")
    assert "variables: {agent-instrumental: null, agent-genitive: null}" in source
    outcomes = run_rule_tests(Engine.from_paths(packs=["russia"]))
    assert all(o.passed for o in outcomes), [o.report() for o in outcomes if not o.passed]
    labels = [
        notice
        for outcome in outcomes
        if outcome.decision is not None
        for notice in outcome.decision.notices
        if notice.rule_id == "ru-foreign-agent-label"
    ]
    assert len(labels) == 6  # four of the rule's own tests, two of the file's
    for label in labels:
        assert "иностранным агентом Ивановым Иваном Ивановичем" in label.text()


# -- the demo -----------------------------------------------------------------------------------


def test_the_demo_preview_says_what_to_set(tmp_path: Path) -> None:
    engine = make_engine(rule_file(tmp_path))

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/rules")

    response = asyncio.run(run())
    assert response.status_code == 200
    assert "Not shown until the site sets agent" in response.text
    assert "compliance demo --set agent=..." in response.text
    assert "Für Beispiel." in response.text  # the locale that needs no agent is shown
    engine.close()

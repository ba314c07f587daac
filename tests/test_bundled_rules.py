"""Every rule test written in the bundled pack runs under pytest too."""

from __future__ import annotations

import pytest

from compliance import Engine, load_rules
from compliance.ruletests import run_rule_test

RULESET = load_rules()
ENGINE = Engine(RULESET)


@pytest.mark.parametrize(
    "loaded", RULESET.tests, ids=[f"{t.rule_id or 'file'}: {t.test.name}" for t in RULESET.tests]
)
def test_bundled_rule_test(loaded: object) -> None:
    outcome = run_rule_test(ENGINE, loaded)  # type: ignore[arg-type]
    assert outcome.passed, outcome.report()


def test_every_bundled_rule_has_tests() -> None:
    tested = {t.rule_id for t in RULESET.tests}
    assert {r.rule.id for r in RULESET.rules} <= tested


def test_english_text_is_rferl_wording() -> None:
    decision = ENGINE.decide(ip="77.88.55.88", accept_language="en")
    assert decision.notices[0].text() == (
        'RFE/RL has been declared an "undesirable organization" by the Russian government.\n\n'
        "If you are in Russia or the Russia-controlled parts of Ukraine and hold a Russian "
        "passport or are a stateless person residing permanently in Russia or the "
        "Russia-controlled parts of Ukraine, please note that you could face fines or "
        "imprisonment for sharing, liking, commenting on, or saving our content, or for "
        "contacting us."
    )

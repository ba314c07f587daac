"""compliance.contrib.flask: Compliance(app) / init_app, COMPLIANCE_* config, the Jinja global."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

flask = pytest.importorskip("flask")

from compliance import Engine  # noqa: E402
from compliance.contrib.flask import Compliance, decision  # noqa: E402
from compliance.errors import ConfigurationError, RuleError  # noqa: E402
from compliance.testing import FixedGeolocator  # noqa: E402

RUSSIAN, GERMAN = "77.88.55.88", "81.169.145.105"  # by the embedded lookup
NOTICE = 'data-compliance-rule="ru-undesirable-organization"'

PAGE = """<!DOCTYPE html><html lang="en"><head><title>t</title></head><body>
<header>Site</header>{% block notices %}{% endblock %}<main><h1>Story</h1><p>Text</p></main>
</body></html>"""


def make_app(**config: object) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(
        COMPLIANCE_TRUSTED_PROXIES=["127.0.0.1/32"], COMPLIANCE_PACKS=["russia"], **config
    )

    @app.route("/")
    def index() -> str:
        return flask.render_template_string(PAGE)

    @app.route("/placed")
    def placed() -> str:
        return flask.render_template_string(
            PAGE.replace("{% block notices %}{% endblock %}", "{{ compliance_notices() }}")
        )

    @app.route("/twice")
    def twice() -> str:
        return flask.render_template_string(
            "<!DOCTYPE html><html><body>{{ compliance_notices() }}<p>x</p>"
            "{{ compliance_notices() }}</body></html>"
        )

    @app.route("/decision")
    def show_decision() -> dict[str, object]:
        d = decision()
        return {"country": d.location.country, "notices": [n.rule_id for n in d.notices]}

    return app


def get(app: flask.Flask, path: str, ip: str) -> flask.Response:
    return app.test_client().get(path, headers={"X-Forwarded-For": ip})


def test_compliance_app_injects_the_notice_for_a_reader_in_russia() -> None:
    app = make_app()
    Compliance(app)
    russian = get(app, "/", RUSSIAN)
    assert russian.status_code == 200
    assert russian.text.count(NOTICE) == 1
    assert "private" in russian.headers["Cache-Control"]
    german = get(app, "/", GERMAN)
    assert NOTICE not in german.text


def test_init_app_for_application_factories() -> None:
    extension = Compliance()
    app = make_app()
    extension.init_app(app)
    assert NOTICE in get(app, "/", RUSSIAN).text
    assert app.extensions["compliance"] is extension
    with pytest.raises(RuntimeError, match="already set up"):
        extension.init_app(app)


def test_the_view_reads_the_decision() -> None:
    app = make_app()
    Compliance(app)
    assert get(app, "/decision", RUSSIAN).json == {
        "country": "RU",
        "notices": ["ru-undesirable-organization"],
    }


def test_the_template_places_the_notice_and_the_middleware_does_not_add_it_again() -> None:
    app = make_app()
    Compliance(app)
    page = get(app, "/placed", RUSSIAN).text
    assert page.count(NOTICE) == 1
    assert page.index("<header>Site</header>") < page.index(NOTICE) < page.index("<main>")
    assert 'lang="ru"' in page[page.index(NOTICE) - 80 :]
    twice = get(app, "/twice", RUSSIAN).text
    assert twice.count(NOTICE) == 1
    assert NOTICE not in get(app, "/placed", GERMAN).text


def test_the_template_helper_takes_the_page_language() -> None:
    app = make_app()
    Compliance(app)

    @app.route("/en")
    def english() -> str:
        return flask.render_template_string(
            '<html lang="en"><body>{{ compliance_notices(lang="en") }}</body></html>'
        )

    page = get(app, "/en", RUSSIAN).text
    assert re.search(r'data-compliance-rule="ru-undesirable-organization" lang="en"', page)


def test_the_template_helper_without_the_middleware_renders_nothing() -> None:
    app = flask.Flask(__name__)
    app.jinja_env.globals["compliance_notices"] = __import__(
        "compliance.contrib.flask", fromlist=["compliance_notices"]
    ).compliance_notices

    @app.route("/")
    def index() -> str:
        return flask.render_template_string("<p>{{ compliance_notices() }}</p>")

    assert app.test_client().get("/").text == "<p></p>"


def test_the_template_helper_outside_a_request_renders_nothing() -> None:
    """A template rendered in an app context only (an e-mail, a CLI command), as Django's
    tag and the Starlette global do."""
    app = make_app()
    Compliance(app)
    with app.app_context():
        page = flask.render_template_string("<p>{{ compliance_notices() }}</p>")
    assert page == "<p></p>"


def test_config_keys_reach_the_middleware() -> None:
    app = make_app(COMPLIANCE_DECISION_PATH="/.well-known/compliance")
    Compliance(app)
    answer = get(app, "/.well-known/compliance", RUSSIAN)
    assert answer.status_code == 200
    assert answer.json["notices"][0]["rule"] == "ru-undesirable-organization"


def test_rules_and_variables_from_config(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        """version: 1
rules:
  - id: site-notice
    title: Site notice
    jurisdictions: [DE]
    notice:
      variables: {site: x}
      text: {en: "Hello from {site}."}
""",
        encoding="utf-8",
    )
    app = make_app(COMPLIANCE_RULES=[str(tmp_path)], COMPLIANCE_VARIABLES={"site": "Example"})
    del app.config["COMPLIANCE_PACKS"]
    Compliance(app)
    assert "Hello from Example." in get(app, "/", GERMAN).text


def test_an_engine_given_directly() -> None:
    app = flask.Flask(__name__)
    app.config["COMPLIANCE_ENGINE"] = Engine.from_paths(geolocator=FixedGeolocator("RU"))

    @app.route("/")
    def index() -> str:
        return "<!DOCTYPE html><html><body><p>x</p></body></html>"

    Compliance(app)
    assert NOTICE in app.test_client().get("/").text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"COMPLIANCE_FAIL_MOD": "closed"},
            "unknown key 'COMPLIANCE_FAIL_MOD' (did you mean 'COMPLIANCE_FAIL_MODE'?)",
        ),
        (
            {"COMPLIANCE_FAIL_MODE": "sideways"},
            "app.config: COMPLIANCE_FAIL_MODE must be 'open' or 'closed', not 'sideways'",
        ),
        ({"COMPLIANCE_WATCH": -1}, "'COMPLIANCE_WATCH' must be a number of seconds above 0"),
        ({"COMPLIANCE_PACKS": [1]}, "'COMPLIANCE_PACKS' must be a list of bundled pack names"),
        ({"COMPLIANCE_RULES": "/nonexistent/rules"}, "/nonexistent/rules"),
        (
            {"COMPLIANCE_ENGINE": object(), "COMPLIANCE_RULES": "rules/"},
            "give either 'COMPLIANCE_ENGINE' or 'COMPLIANCE_RULES', not both",
        ),
        (  # a ready engine watches as it was built: COMPLIANCE_WATCH would be ignored
            {"COMPLIANCE_ENGINE": object(), "COMPLIANCE_WATCH": 5},
            "give either 'COMPLIANCE_ENGINE' or 'COMPLIANCE_WATCH', not both",
        ),
    ],
)
def test_bad_settings_fail_at_start_up(config: dict[str, object], message: str) -> None:
    app = flask.Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError) as caught:
        Compliance(app)
    assert message in str(caught.value)


NETWORK_OPTIONS = ["trusted_proxies", "debug_networks", "simulate_from", "edge_from"]


@pytest.mark.parametrize("option", ["debug_networks", "simulate_from", "edge_from"])
def test_a_bad_network_option_is_named_as_configured(option: str) -> None:
    app = flask.Flask(__name__)
    app.config[f"COMPLIANCE_{option.upper()}"] = ["zzz"]
    with pytest.raises(ConfigurationError) as caught:
        Compliance(app)
    assert str(caught.value).startswith(f"app.config: COMPLIANCE_{option.upper()}: ")
    assert "'zzz'" in str(caught.value)


@pytest.mark.parametrize("option", NETWORK_OPTIONS)
def test_every_network_option_error_names_its_key(option: str) -> None:
    """The core's message starts with the option's name ("OPTION_NAME: ..."), about that
    option (not "trusted proxy" for all four), and Flask spells the name as configured."""
    app = flask.Flask(__name__)
    app.config[f"COMPLIANCE_{option.upper()}"] = ["zzz"]
    with pytest.raises(ConfigurationError) as caught:
        Compliance(app)
    message = str(caught.value)
    assert message.startswith(f"app.config: COMPLIANCE_{option.upper()}: ")
    assert "'zzz' is not an IP address or CIDR range" in message
    assert "trusted proxy" not in message


def test_a_broken_rule_file_fails_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("version: 1\nrules: [{id: Bad}]\n", encoding="utf-8")
    app = flask.Flask(__name__)
    app.config["COMPLIANCE_RULES"] = [str(tmp_path)]
    with pytest.raises(RuleError):
        Compliance(app)


def test_the_template_helper_can_bring_the_default_css() -> None:
    app = make_app()
    Compliance(app)

    @app.route("/styled")
    def styled() -> str:
        return flask.render_template_string(
            "<html><body>{{ compliance_notices(css=True, nonce='n0nce') }}</body></html>"
        )

    page = get(app, "/styled", RUSSIAN).text
    assert page.index('<style nonce="n0nce">') < page.index(NOTICE)
    assert page.count("<style") == 1
    assert "<style" not in get(app, "/styled", GERMAN).text


def test_send_file_with_use_x_sendfile_is_the_fail_mode_and_counted(tmp_path: Path) -> None:
    """USE_X_SENDFILE: Flask answers with an empty body and X-Sendfile, and the server in
    front sends the file unedited. Counted as not delivered (it was a skipped empty body)."""
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body><p>Story</p></body></html>", encoding="utf-8")
    app = make_app(USE_X_SENDFILE=True, COMPLIANCE_FAIL_MODE="open")

    @app.route("/file")
    def file() -> flask.Response:
        return flask.send_file(page, mimetype="text/html")

    compliance = Compliance(app)
    response = get(app, "/file", RUSSIAN)
    assert response.status_code == 200
    assert response.headers["X-Sendfile"] == str(page)
    assert "-cv" not in response.headers["ETag"]  # the file's own tag: it is not edited
    assert "private" in response.headers["Cache-Control"]
    assert compliance.middleware is not None
    counted = compliance.middleware.metrics()
    assert counted["notices_not_delivered"] == {"server file": 1}
    assert counted["notices_skipped"] == {}


def test_an_answer_built_from_the_decision_is_never_shared() -> None:
    """A JSON view reading ``decision()`` answers for the reader's location: private, with
    the location's Vary, whatever caching headers the site gives it (it went out public)."""
    app = make_app()

    @app.route("/api/notices")
    def notices() -> flask.Response:
        d = decision()
        response = flask.jsonify([n.rule_id for n in d.notices])
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    Compliance(app)
    for ip in (RUSSIAN, GERMAN):
        response = get(app, "/api/notices", ip)
        assert response.headers["Cache-Control"] == "max-age=60, private", ip


def test_an_engine_setting_error_names_the_config_key() -> None:
    """A bad ``COMPLIANCE_VARIABLES`` or ``COMPLIANCE_PACKS`` stopped ``init_app`` with a
    message that named no ``app.config`` key (found in review)."""
    import flask

    from compliance.contrib.flask import Compliance
    from compliance.errors import ConfigurationError

    for key, value, named in (
        ("COMPLIANCE_VARIABLES", {"agent-instrumentl": "x"}, "COMPLIANCE_VARIABLES 'agent"),
        ("COMPLIANCE_PACKS", ["narnia"], "COMPLIANCE_PACKS: no bundled rule pack"),
    ):
        app = flask.Flask(__name__)
        app.config[key] = value
        with pytest.raises(ConfigurationError) as caught:
            Compliance(app)
        assert str(caught.value).startswith(f"app.config: {named}"), str(caught.value)

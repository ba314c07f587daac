"""Notices a page renders itself (template helpers) and those the middleware injects: never
twice, never uncounted, with the default CSS where ``css=True`` asks for it. Real Flask,
whose ``stream_template`` runs the template while the middleware reads the body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

flask = pytest.importorskip("flask")

from compliance.contrib.flask import Compliance  # noqa: E402

RUSSIAN = "77.88.55.88"  # by the embedded lookup
RULES = """\
version: 1
rules:
  - id: notice-a
    title: Notice A
    jurisdictions: [RU]
    notice:
      placement: marker
      default_locale: en
      text:
        en: Notice A text.
  - id: notice-b
    title: Notice B
    jurisdictions: [RU]
    notice:
      placement: body_end
      default_locale: en
      text:
        en: Notice B text.
"""
# The helper renders every notice after the start of the body, where a streamed page only
# gets to once the middleware has read that start.
PAGE = (
    "<!DOCTYPE html><html lang='en'><head><title>t</title></head><body><h1>x</h1>"
    "{{ compliance_notices(%s) }}<p>y</p></body></html>"
)


def make_app(
    tmp_path: Path, *, helper: str = "", rules: str = RULES, **config: Any
) -> tuple[flask.Flask, Compliance]:
    (tmp_path / "rules.yaml").write_text(rules)
    app = flask.Flask(__name__)
    app.config.update(COMPLIANCE_RULES=[str(tmp_path)], **config)
    template = PAGE % helper

    @app.route("/plain")
    def plain() -> str:
        return flask.render_template_string(template)

    @app.route("/streamed")
    def streamed() -> Any:
        return flask.stream_template_string(template)

    return app, Compliance(app)


def count(page: str, rule: str) -> int:
    return page.count(f'data-compliance-rule="{rule}"')


@pytest.mark.parametrize("path", ["/plain", "/streamed"])
def test_every_notice_once_and_counted(tmp_path: Path, path: str) -> None:
    app, compliance = make_app(tmp_path)
    page = app.test_client().get(path, environ_base={"REMOTE_ADDR": RUSSIAN}).text
    assert (count(page, "notice-a"), count(page, "notice-b")) == (1, 1)
    metrics = compliance.middleware.metrics()  # type: ignore[union-attr]
    if path == "/plain":  # the template rendered both before the middleware saw the page
        assert metrics["notices_skipped"] == {"rendered by the page": 1}
        assert metrics["notices_injected"] == {}
    else:  # the middleware took both at the start of the body; the helper left them out
        assert metrics["notices_injected"] == {"notice-a|RU": 1, "notice-b|RU": 1}
    assert metrics["notices_not_delivered"] == {}


def test_the_middlewares_css_comes_with_the_notices_it_injects(tmp_path: Path) -> None:
    """The page renders the marker notice; the middleware injects the other, and its
    ``css=True`` style sheet (with the page's nonce) comes before it."""
    app, _ = make_app(
        tmp_path, helper="placement='marker'", COMPLIANCE_CSS=True, COMPLIANCE_CSP_NONCE="nonce"
    )

    @app.before_request
    def nonce() -> None:
        flask.request.environ["nonce"] = "n0nce"

    page = app.test_client().get("/plain", environ_base={"REMOTE_ADDR": RUSSIAN}).text
    assert (count(page, "notice-a"), count(page, "notice-b")) == (1, 1)
    assert page.count("<style") == 1
    assert page.index('<style nonce="n0nce">') < page.index('data-compliance-rule="notice-b"')


TWO_LANGUAGES = RULES.replace(
    "en: Notice A text.\n", "en: Notice A text.\n        ru: Первое.\n"
).replace("en: Notice B text.\n", "en: Notice B text.\n        ru: Второе.\n")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_notice_the_reader_chose_keeps_the_page_varying_on_accept_language(
    tmp_path: Path, method: str
) -> None:
    """The template renders notice A without the page's language, so the reader's
    ``Accept-Language`` chooses it; the middleware injects notice B in the page's language.
    The page differs by ``Accept-Language``: it must say so, or a cache keyed on the rest
    shows one reader's notice language to another (it said only the page's choice)."""
    app, _ = make_app(tmp_path, helper="placement='marker'", rules=TWO_LANGUAGES)
    client = app.test_client()
    pages = {}
    for language in ("en", "ru"):
        response = client.open(
            "/plain",
            method=method,
            headers={"Accept-Language": language},
            environ_base={"REMOTE_ADDR": RUSSIAN},
        )
        assert "accept-language" in response.headers.get("Vary", "").lower()
        pages[language] = response.text
    if method == "GET":
        assert 'data-compliance-rule="notice-a" lang="en"' in pages["en"]
        assert 'data-compliance-rule="notice-a" lang="ru"' in pages["ru"]
        assert all('data-compliance-rule="notice-b" lang="en"' in p for p in pages.values())


def test_the_page_language_given_to_the_helper_leaves_accept_language_out(
    tmp_path: Path,
) -> None:
    app, _ = make_app(tmp_path, helper="placement='marker', lang='en'", rules=TWO_LANGUAGES)
    response = app.test_client().get(
        "/plain", headers={"Accept-Language": "ru"}, environ_base={"REMOTE_ADDR": RUSSIAN}
    )
    assert 'data-compliance-rule="notice-a" lang="en"' in response.text
    assert "accept-language" not in response.headers.get("Vary", "").lower()


def test_every_notice_rendered_in_the_page_language_leaves_accept_language_out(
    tmp_path: Path,
) -> None:
    """The helper renders every notice, in the language the page gives it: the page is the
    same whatever ``Accept-Language`` says, and went out with ``Vary: Accept-Language``
    (the middleware's pass-through added the decision's ``Vary``; found in review)."""
    app, _ = make_app(tmp_path, helper="lang='en'", rules=TWO_LANGUAGES)
    client = app.test_client()
    responses = [
        client.get("/plain", headers={"Accept-Language": language},
                   environ_base={"REMOTE_ADDR": RUSSIAN})
        for language in ("en", "ru")
    ]  # fmt: skip
    assert responses[0].text == responses[1].text
    assert 'data-compliance-rule="notice-a" lang="en"' in responses[0].text
    assert 'data-compliance-rule="notice-b" lang="en"' in responses[0].text
    for response in responses:
        assert "accept-language" not in response.headers.get("Vary", "").lower()

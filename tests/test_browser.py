"""The demo in a real browser: headless Chromium (Debian's package) driven by Playwright.

Skipped when /usr/bin/chromium or the ``playwright`` package is missing (``.ci/run`` installs
both where it can). Playwright's own browser downloads are never used: the system Chromium is
launched by path. Screenshots go to ``docs/images/`` for the README and the docs.
"""

from __future__ import annotations

import contextlib
import html
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
PACKS = ("russia", "withheld")
PACK_ARGS = [arg for name in PACKS for arg in ("--pack", name)]
# The foreign-agent label's required variables, as a site sets them (a fictitious name).
SET_ARGS = ["--set", "agent-instrumental=Ивановым Иваном", "--set", "agent-genitive=Иванова Ивана"]


@dataclass
class DemoServer:
    process: subprocess.Popen[str]
    url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def start_demo(timeout: float = 20.0) -> Iterator[DemoServer]:
    """``python -m compliance demo --port N``; waits until it answers, stops it with SIGINT."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "compliance", "demo", "--port", str(port), *PACK_ARGS, *SET_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"the demo exited with {process.returncode}:\n{output}")
            try:
                httpx.get(f"{url}/rules", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the demo did not start in time") from None
                time.sleep(0.1)
        yield DemoServer(process, url)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with start_demo() as server:
        yield server


def _page(browser: Any, demo: DemoServer, query: str, path: str = "/") -> Any:
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{demo.url}/simulate?{query}&next={path}")
    page.wait_for_load_state("load")
    page.errors = errors
    return page


def test_a_russian_reader_sees_the_notice_and_the_page_script_runs(
    browser: Any, demo: DemoServer
) -> None:
    page = _page(browser, demo, "country=RU&lang=ru", "/a/story.html")
    try:
        notice = page.locator(
            'aside.compliance-notice[data-compliance-rule="ru-undesirable-organization"]'
        )
        assert notice.count() == 1
        assert notice.get_attribute("lang") == "ru"
        assert notice.is_visible()
        box = notice.bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 20
        # placement: body_end, so after the article and its paragraphs
        article_box = page.locator("article").bounding_box()
        assert article_box is not None
        assert box["y"] >= article_box["y"] + article_box["height"] - 1
        assert "нежелательной организацией" in notice.inner_text()
        assert page.evaluate("document.body.dataset.scriptRan") == "yes"
        assert page.errors == []
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / "ru-reader.png"), full_page=True)
    finally:
        page.context.close()


def test_the_foreign_agent_label_goes_under_the_headline(browser: Any, demo: DemoServer) -> None:
    page = _page(browser, demo, "country=RU&tags=foreign-agent&lang=en")
    try:
        label = page.locator('aside[data-compliance-rule="ru-foreign-agent-label"]')
        assert label.get_attribute("lang") == "ru"
        headline = page.locator("h1").bounding_box()
        byline = page.locator(".byline").bounding_box()
        box = label.bounding_box()
        assert box is not None
        assert headline is not None
        assert byline is not None
        assert headline["y"] < box["y"] < byline["y"]
        assert page.evaluate("document.body.dataset.scriptRan") == "yes"
    finally:
        page.context.close()


def test_a_german_reader_sees_no_notice(browser: Any, demo: DemoServer) -> None:
    page = _page(browser, demo, "country=DE&lang=ru", "/a/story.html")
    try:
        assert page.locator(".compliance-notice").count() == 0
        assert page.evaluate("document.body.dataset.scriptRan") == "yes"
        assert page.errors == []
        page.screenshot(path=str(IMAGES / "de-reader.png"), full_page=True)
    finally:
        page.context.close()


def test_the_rule_preview_renders_every_rule(browser: Any, demo: DemoServer) -> None:
    page = _page(browser, demo, "country=RU", "/rules")
    try:
        from compliance import Engine

        engine = Engine.from_paths(packs=list(PACKS))
        assert page.locator("section.rule").count() == len(engine.rule_ids)
        engine.close()
        labels = page.locator("section#ru-undesirable-organization p.locale")
        texts = labels.all_inner_texts()
        assert "en — original" in texts
        assert any(t.startswith("ru — unreviewed translation of en") for t in texts)
        previews = page.locator("section#ru-undesirable-organization aside.compliance-notice")
        assert sorted(previews.evaluate_all("els => els.map(e => e.lang)")) == ["en", "ru", "uk"]
        page.locator("section#ru-undesirable-organization").screenshot(
            path=str(IMAGES / "rules-preview.png")
        )
    finally:
        page.context.close()


def test_the_simulator_bar_stays_above_a_body_start_notice(browser: Any, demo: DemoServer) -> None:
    page = _page(browser, demo, "country=DE&host=news.example&tags=withheld&lang=en")
    try:
        notice = page.locator('aside.compliance-notice[data-compliance-rule="withheld-notice"]')
        assert notice.count() == 1
        bar = page.locator("nav.demo-bar").bounding_box()
        box = notice.bounding_box()
        assert bar is not None
        assert box is not None
        assert bar["y"] + bar["height"] <= box["y"] + 1
        assert page.errors == []
    finally:
        page.context.close()


def test_the_451_page_keeps_the_simulator(browser: Any, demo: DemoServer) -> None:
    page = _page(browser, demo, "country=DE&host=news.example", "/withheld/story")
    try:
        assert page.locator("main.compliance-block").count() == 1
        bar = page.locator("nav.demo-bar")
        assert bar.is_visible()
        # the reader can choose another place from the block page itself
        page.select_option("select[name=country]", "FR")
        page.fill("input[name=host]", "www.example.org")
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        assert page.locator("main.compliance-block").count() == 0
        assert page.locator("article").count() == 1
    finally:
        page.context.close()


def test_the_marked_paragraph_is_withheld_in_the_browser(browser: Any, demo: DemoServer) -> None:
    page = _page(browser, demo, "country=DE&host=news.example&lang=en")
    try:
        placeholder = page.locator(
            'aside.compliance-withheld[data-compliance-rule="withheld-content"]'
        )
        assert placeholder.count() == 1
        assert placeholder.is_visible()
        assert "withheld in your country" in placeholder.inner_text()
        assert page.locator("p.withholdable").count() == 0
        assert page.evaluate("document.body.dataset.scriptRan") == "yes"
    finally:
        page.context.close()


# --- the injector against Chromium's own reading of a page ------------------------------------


def _served(browser: Any, body: bytes, content_type: str = "text/html") -> Any:
    """A page that answers ``body`` with ``content_type``, read by Chromium as any page."""
    context = browser.new_context()
    page = context.new_page()
    page.route(
        "**/*",
        lambda route, request: route.fulfill(
            status=200, headers={"content-type": content_type}, body=body
        ),
    )
    page.goto("http://page.test/")
    page.wait_for_load_state("load")
    return page


NOTICE_TEXT = "Уведомление: é €"
_LONG_SCRIPT = b"<script>" + b"x" * 1100 + b"</script>"


@pytest.mark.parametrize(
    ("doc", "content_type", "expected"),
    [
        # Script text, title text: no tag to Chromium (the standard's prescan reads both).
        (
            b"<head><script>var s = '<meta charset=\"windows-1251\">';</script>"
            b"<meta charset=utf-8></head><body><p>x</p></body>",
            "text/html",
            "UTF-8",
        ),
        (
            b"<head><title><meta charset=koi8-r></title><meta charset=windows-1251></head>",
            "text/html",
            "windows-1251",
        ),
        # The last of two charset attributes (the prescan reads the first).
        (b"<head><meta charset=koi8-r charset=windows-1251></head>", "text/html", "windows-1251"),
        # A <meta> in <noscript> counts (the scan runs with scripting off).
        (
            b"<head><noscript><meta charset=koi8-r></noscript><meta charset=utf-8></head>",
            "text/html",
            "KOI8-R",
        ),
        # The header wins over every <meta>.
        (
            b"<head><meta charset=windows-1251></head><body><p>x</p></body>",
            "text/html; charset=utf-8",
            "UTF-8",
        ),
    ],
)
def test_chromium_reads_a_meta_charset_as_the_editor_models_it(
    browser: Any, doc: bytes, content_type: str, expected: str
) -> None:
    """What compliance.html.charset.meta_label and the injector's head reading stand for:
    Chromium's tokenizer-based scan, not the standard's prescan."""
    page = _served(browser, doc, content_type)
    try:
        assert page.evaluate("document.characterSet") == expected
    finally:
        page.context.close()


@pytest.mark.parametrize(
    ("doc", "charset"),
    [
        # A <meta> in a script's text: a tag to the standard's prescan (Firefox), text to
        # Chromium, which guesses the encoding from the bytes.
        pytest.param(
            b"<head><script>var s = '<meta charset=\"windows-1251\">';</script>"
            b"<title>t</title></head><body><p>\xf2\xe5\xf1\xf2</p></body>",
            None,
            id="meta-in-a-script-string",
        ),
        pytest.param(
            b"<head><script>var s = '<meta charset=\"windows-1251\">';</script>"
            b"<meta charset=utf-8></head><body><p>\xd1\x82\xd0\xb5\xd1\x81\xd1\x82</p></body>",
            None,
            id="meta-in-a-script-string-then-a-real-one",
        ),
        pytest.param(
            b"<head><title>a <meta charset=koi8-r></title><meta charset=windows-1251></head>"
            b"<body><p>\xf2\xe5\xf1\xf2</p></body>",
            None,
            id="meta-in-a-title",
        ),
        # Chromium's tokenizer keeps every attribute, and the last charset wins there; the
        # prescan keeps the first.
        pytest.param(
            b"<head><meta charset=koi8-r charset=windows-1251></head>"
            b"<body><p>\xf2\xe5\xf1\xf2</p></body>",
            None,
            id="two-charset-attributes",
        ),
        # After </head> and the first 1024 bytes Chromium looks no further (and guesses
        # windows-1252 from the French).
        pytest.param(
            b"<head></head>" + _LONG_SCRIPT + b"<meta charset=windows-1251>"
            b"<body><p>"
            + b"\xc0 la for\xeat, l'\xe9t\xe9 d\xe9j\xe0 pass\xe9. " * 40
            + b"</p></body>",
            None,
            id="meta-after-the-head-and-1024-bytes",
        ),
        pytest.param(
            b"<head><meta charset=iso-2022-jp></head><body><p>a</p></body>",
            None,
            id="meta-iso-2022-jp",
        ),
        pytest.param(
            b"<head><meta charset=windows-1251></head><body><p>\xf2\xe5\xf1\xf2</p></body>",
            None,
            id="meta",
        ),
        # The header wins over every <meta>.
        pytest.param(
            b"<head><script>'<meta charset=\"windows-1251\">'</script><meta charset=koi8-r>"
            b"</head><body><p>\xd1\x82</p></body>",
            "utf-8",
            id="header",
        ),
    ],
)
def test_a_notice_reads_as_written_in_the_encoding_chromium_reads_the_page_in(
    browser: Any, doc: bytes, charset: str | None
) -> None:
    """The notice is encoded so that Chromium shows it as written, whichever encoding it
    reads the page in (its meta scan, the header, or its guess from the bytes), and so does
    a browser that follows the standard's prescan (html5lib's, as Firefox)."""
    from compliance.html.injector import Injector

    snippet = f'<aside id="notice">{NOTICE_TEXT}</aside>'
    injector = Injector(lambda page: {"body_start": snippet}, charset=charset)
    out = injector.feed(doc) + injector.finish()
    assert injector.inserted_placements == ["body_start"]
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    page = _served(browser, out, content_type)
    try:
        assert page.evaluate("document.getElementById('notice').textContent") == NOTICE_TEXT
    finally:
        page.context.close()
    if charset is None:
        from html5lib._inputstream import EncodingParser

        found = EncodingParser(out).getEncoding()
        if found is not None and found.name != "replacement":
            text = out.decode(found.codec_info.name, "replace")
            assert NOTICE_TEXT in html.unescape(text)


@pytest.mark.parametrize(
    "doc",
    [
        # The heading closed by the end of the <div> around it.
        pytest.param(b"<body><div><h1>Title</div><p>Text</p></body>", id="div"),
        # ... and a </h1> later, in a closed <details>: not the heading's end.
        pytest.param(
            b"<body><div><h1>Title</div><details><summary>More</summary><p>Text</p></h1>"
            b"</details></body>",
            id="div-then-a-stray-end-in-details",
        ),
        pytest.param(b"<body><ul><li><h1>Title</li><li>Text</ul></body>", id="list-item"),
        # In a table: foster-parented before it, or in a cell.
        pytest.param(
            b"<body><table><h1>Title</h1><tr><td>Text</td></tr></table></body>",
            id="foster-parented",
        ),
        pytest.param(
            b"<body><table><h1>Title<tr><td>Text</td></tr></table><p>More</p></body>",
            id="foster-parented-closed-by-a-row",
        ),
        pytest.param(
            b"<body><table><tr><td><h1>Title</td><td>Text</td></tr></table></body>",
            id="cell-end",
        ),
        pytest.param(
            b"<body><table><tr><td><h1>Title<td>Text</td></tr></table></body>", id="next-cell"
        ),
        pytest.param(
            b"<body><table><caption><h1>Title</caption><tr><td>Text</table></body>",
            id="caption-end",
        ),
    ],
)
def test_an_after_heading_notice_stands_right_after_the_heading_in_chromium(
    browser: Any, doc: bytes
) -> None:
    """Where Chromium's tree builder closes the <h1> (its own </h1>, or an end tag or a
    table part that closes it from outside), the notice is the element right after it:
    not inside it, not hidden, below it on the screen."""
    from compliance.html.injector import Injector

    snippet = '<aside class="compliance-notice">Notice</aside>'
    injector = Injector(lambda page: {"after_heading": snippet}, charset="utf-8")
    out = injector.feed(doc) + injector.finish()
    assert injector.inserted_placements == ["after_heading"]
    page = _served(browser, out, "text/html; charset=utf-8")
    try:
        where = page.evaluate(
            """() => {
                const notice = document.querySelector('aside.compliance-notice');
                const heading = document.querySelector('h1');
                return {
                    afterHeading: notice.previousElementSibling === heading,
                    inHeading: notice.closest('h1') !== null,
                    visible: notice.checkVisibility(),
                    below: notice.getBoundingClientRect().top
                        >= heading.getBoundingClientRect().bottom - 1,
                };
            }"""
        )
    finally:
        page.context.close()
    assert where == {"afterHeading": True, "inHeading": False, "visible": True, "below": True}


# Pages whose first heading or marker Chromium does not show (hidden, a popover,
# display: none, a dialog or details not open), by placement: the notice is shown, after
# the first heading that is (#t) or at the marker in #m, else at the body start.
HIDDEN_PLACES = [
    ("after_heading", b"<div hidden><h1>Menu</h1></div><main><h1 id=t>T</h1><p>x</p></main>"),
    ("after_heading", b"<nav hidden=until-found><h1>Menu</h1></nav><h1 id=t>T</h1><p>x</p>"),
    ("after_heading", b"<h1 hidden>Site</h1><h1 id=t>T</h1><p>x</p>"),
    ("after_heading", b'<header style="display: none"><h1>Site</h1></header><h1 id=t>T</h1>'),
    ("after_heading", b"<dialog><h1>Sign in</h1></dialog><h1 id=t>T</h1><p>x</p>"),
    ("after_heading", b"<div popover><h1>Menu</h1></div><h1 id=t>T</h1><p>x</p>"),
    (
        "after_heading",
        b"<details><summary>More</summary><div><h1>Menu</h1></div></details><h1 id=t>T</h1>",
    ),
    ("after_heading", b"<details><summary><h1 id=t>T</h1></summary>More</details><p>x</p>"),
    ("after_heading", b"<span hidden><b>x</b></span><h1>T</h1><p>y</p>"),  # not followed
    ("after_heading", b"<span hidden>x</span><h1 id=t>T</h1><p>y</p>"),  # text only: closed
    ("after_heading", b"<div hidden><h1>Menu</h1></div><p>y</p>"),
    ("marker", b"<div hidden><!-- compliance:notices --></div><p>x</p>"),
    ("marker", b"<dialog><p>a<!-- compliance:notices -->b</p></dialog><p>x</p>"),
    (
        "marker",
        b"<div hidden><!-- compliance:notices --></div><main id=m><!-- compliance:notices -->"
        b"</main>",
    ),
    ("marker", b"<details open id=m><!-- compliance:notices --></details>"),
]


@pytest.mark.parametrize(("placement", "doc"), HIDDEN_PLACES)
def test_a_notice_is_shown_where_the_first_heading_or_marker_is_hidden(
    browser: Any, placement: str, doc: bytes
) -> None:
    from compliance.html.injector import Injector

    snippet = '<aside class="compliance-notice">Notice</aside>'
    injector = Injector(lambda page: {placement: snippet}, charset="utf-8")
    out = injector.feed(b"<!doctype html><body>" + doc) + injector.finish()
    assert injector.inserted_placements == [placement]
    page = _served(browser, out, "text/html; charset=utf-8")
    try:
        where = page.evaluate(
            """() => {
                const notice = document.querySelector('aside.compliance-notice');
                const heading = document.getElementById('t');
                const shown = [...document.querySelectorAll('h1')]
                    .filter((h) => h.checkVisibility()).map((h) => h.id);
                return {
                    visible: notice.checkVisibility(),
                    place: document.body.firstElementChild === notice ? 'body start'
                        : heading !== null && notice.previousElementSibling === heading
                        ? 'after #t'
                        : notice.parentElement.id === 'm' ? 'in #m' : 'other',
                    firstShown: shown.length ? shown[0] : null,
                };
            }"""
        )
    finally:
        page.context.close()
    assert where["visible"] is True
    assert where["firstShown"] in ("t", "", None)  # the page is what the test says it is
    expected = "after #t" if b"id=t" in doc else "in #m" if b"id=m" in doc else "body start"
    assert where["place"] == expected


def test_a_right_to_left_block_page_keeps_its_english_status_and_url_in_order(
    browser: Any,
) -> None:
    """The 451 page in Hebrew is dir="rtl"; its English status line (lang="en", no dir) read
    "Unavailable For Legal Reasons 451" in Chromium, and the blocked-by URL's final "/"
    stood at its left, as "/https://www.example.org/legal"."""
    from compliance.models import Block
    from compliance.render import block_page

    block = Block(
        blocked_by="https://www.example.org/legal/",
        text={"he": "החסימה לפי צו."},
        default_locale="he",
    )
    page = _served(browser, block_page("rtl-block", block, "he", {}).encode("utf-8"))
    try:
        # x of the first and the last character of an element's text, as laid out
        order = page.evaluate(
            """(selector) => {
                const node = document.querySelector(selector).firstChild;
                const at = (i) => {
                    const range = document.createRange();
                    range.setStart(node, i);
                    range.setEnd(node, i + 1);
                    return range.getBoundingClientRect().left;
                };
                return [at(0), at(node.length - 1)];
            }""",
            "h1",
        )
        assert order[0] < order[1], "451 comes first, on the left"
        link = page.evaluate(
            """() => {
                const node = document.querySelector('a[rel=blocked-by]').firstChild;
                const at = (i) => {
                    const range = document.createRange();
                    range.setStart(node, i);
                    range.setEnd(node, i + 1);
                    return range.getBoundingClientRect().left;
                };
                return [at(0), at(node.length - 1)];
            }"""
        )
        assert link[0] < link[1], "the URL reads left to right, its final / last"
    finally:
        page.context.close()


# A notice holding a link, as the bundled rules render one.
LINKED_SNIPPET = (
    '<aside class="compliance-notice"><p>To find out more, '
    '<a href="https://example.org/more">click here</a>.</p></aside>'
)
# Pages with a link left open in an element whose end closes it in the parser (the
# element's marker in the list of active formatting elements is cleared): the notice goes
# right after the headline (#t) or the marker comment.
SCOPED_LINK_PAGES = [
    pytest.param(
        "after_heading",
        "<table><tr><td><a href=/x>link</td></tr></table><h1 id=t>T</h1><p>y",
        id="td",
    ),
    pytest.param(
        "after_heading",
        "<table><tr><th><a href=/x>link</th></tr></table><h1 id=t>T</h1><p>y",
        id="th",
    ),
    pytest.param(
        "after_heading",
        "<table><caption><a href=/x>link</caption><tr><td>c</table><h1 id=t>T</h1><p>y",
        id="caption",
    ),
    pytest.param(
        "after_heading", "<marquee><a href=/x>link</marquee><h1 id=t>T</h1><p>y", id="marquee"
    ),
    pytest.param(
        "after_heading", "<object><a href=/x>link</object><h1 id=t>T</h1><p>y", id="object"
    ),
    pytest.param(
        "after_heading", "<applet><a href=/x>link</applet><h1 id=t>T</h1><p>y", id="applet"
    ),
    pytest.param(
        "after_heading",
        "<template><a href=/x>link</template><h1 id=t>T</h1><p>y",
        id="template",
    ),
    pytest.param(
        "after_heading",
        "<table><tr><td><a href=/x>link<td><h1 id=t>T</h1><p>y</table>",
        id="closed-by-the-next-cell",
    ),
    pytest.param(
        "after_heading",
        "<table><tr><td><a href=/x>link</table><h1 id=t>T</h1><p>y",
        id="closed-by-the-table-end",
    ),
    pytest.param(
        "marker",
        "<table><tr><td><a href=/x>link</td></tr></table><!-- compliance:notices --><p>y",
        id="marker-td",
    ),
    pytest.param(
        "marker",
        "<marquee><a href=/x>link</marquee><!-- compliance:notices --><p>y",
        id="marker-marquee",
    ),
    pytest.param(
        "marker",
        "<object><a href=/x>link</object><!-- compliance:notices --><p>y",
        id="marker-object",
    ),
    # A link the parser keeps open (an </a> in a cell or a marquee for a link opened
    # outside it is ignored; an <a> in a marquee does not close it): after its </a> (#a).
    pytest.param(
        "after_heading",
        "<a href=/x id=a><table><tr><td></a>c</td></tr></table><h1>T</h1><p>y</p></a><p>z",
        id="end-tag-in-a-cell",
    ),
    pytest.param(
        "after_heading",
        "<a href=/x id=a><table></a><tr><td><h1>T</h1></td></tr></table></a><p>z",
        id="end-tag-in-a-table",
    ),
    pytest.param(
        "after_heading",
        "<a href=/x id=a><h1>T</h1><marquee><a href=/y>y</marquee>c</a><p>z",
        id="link-in-a-marquee",
    ),
    pytest.param(
        "marker",
        "<a href=/x id=a><marquee></a><!-- compliance:notices --></marquee></a><p>z",
        id="marker-end-tag-in-a-marquee",
    ),
]


@pytest.mark.parametrize(("placement", "body"), SCOPED_LINK_PAGES)
def test_a_notice_with_a_link_and_the_links_chromium_keeps_open(
    browser: Any, placement: str, body: str
) -> None:
    """Where Chromium closes a page's link with the cell, caption, marquee, object, applet or
    template it was left open in, the notice goes right after the headline or the marker;
    where it keeps one open across them, after its </a>. Never inside the page's link: the
    notice holds one link, its own, and the page's DOM without it is the page's DOM."""
    expected = (
        "after #t" if "id=t" in body else "after #a" if "id=a" in body else "after the marker"
    )
    edited, original = _link_places(browser, placement, body)
    assert edited["place"] == expected
    assert edited["inLink"] is False
    assert edited["links"] == ["https://example.org/more"]
    assert edited["visible"] is True
    assert edited["body"] == original["body"]


def _link_places(browser: Any, placement: str, body: str) -> tuple[Any, Any]:
    """Where Chromium puts the notice with a link in the edited page (and the body without
    it), and the original page's body."""
    from compliance.html.injector import Injector

    doc = ("<!DOCTYPE html><body>" + body).encode()
    injector = Injector(lambda page: {placement: LINKED_SNIPPET}, charset="utf-8")
    out = injector.feed(doc) + injector.finish()
    assert injector.inserted_placements == [placement]
    script = """() => {
        const notice = document.querySelector('aside.compliance-notice');
        const before = notice && notice.previousSibling;
        const result = {
            place: notice === null ? 'none'
                : document.getElementById('t') !== null
                    && notice.previousElementSibling === document.getElementById('t')
                ? 'after #t'
                : document.getElementById('a') !== null
                    && notice.previousElementSibling === document.getElementById('a')
                ? 'after #a'
                : before && before.nodeType === 8 && before.data.trim() === 'compliance:notices'
                ? 'after the marker'
                : document.body.firstElementChild === notice ? 'body start' : 'other',
            inLink: notice !== null && notice.parentElement.closest('a') !== null,
            links: notice === null ? []
                : [...notice.querySelectorAll('a')].map((a) => a.getAttribute('href')),
            visible: notice !== null && notice.checkVisibility(),
        };
        if (notice) notice.remove();
        result.body = document.body.innerHTML;
        return result;
    }"""
    page = _served(browser, out, "text/html; charset=utf-8")
    try:
        edited = page.evaluate(script)
    finally:
        page.context.close()
    page = _served(browser, doc, "text/html; charset=utf-8")
    try:
        original = page.evaluate(script)
    finally:
        page.context.close()
    return edited, original


# Pages where an <a> in a table closes the page's link around the table out of scope: the
# link is off the parser's list, but the table (and what its foster parenting moves before
# it) stays in it. While it may hold the place, the notice goes at the body start; once the
# table that stood right in the link closes, at the marker or after the headline.
UNLISTED_LINK_PAGES = [
    pytest.param(
        "marker",
        "<a href=/x><table><a href=/x></a><!-- compliance:notices --><p>end",
        "body start",
        id="marker-foster-parented",
    ),
    pytest.param(
        "after_heading",
        "<a href=/x><table><tr><a href=/y>y</a><h1 id=t>T</h1><td>c</td></tr></table><p>e",
        "body start",
        id="heading-foster-parented",
    ),
    pytest.param(
        "marker",
        "<a href=/x><table><a href=/y></a><tr><td><!-- compliance:notices -->c</table><p>e",
        "body start",
        id="marker-in-a-cell",
    ),
    pytest.param(
        "marker",
        "<a href=/x><table><a href=/y></a></table><!-- compliance:notices --><p>end",
        "after the marker",
        id="marker-after-the-table",
    ),
    pytest.param(
        "after_heading",
        "<table><tr><td><a href=/x><table><a href=/y></a></table><h1 id=t>T</h1></td></tr>"
        "</table><p>end",
        "after #t",
        id="heading-after-a-table-in-a-cell",
    ),
]


@pytest.mark.parametrize(("placement", "body", "expected"), UNLISTED_LINK_PAGES)
def test_a_notice_with_a_link_stays_out_of_a_link_an_a_in_a_table_left(
    browser: Any, placement: str, body: str, expected: str
) -> None:
    """The placements took an <a> in a table to close the page's link around the table,
    where Chromium keeps the table (and what it moves before the table) in that link: the
    notice went into the page's link."""
    edited, original = _link_places(browser, placement, body)
    assert edited["inLink"] is False
    assert edited["place"] == expected
    assert edited["links"] == ["https://example.org/more"]
    assert edited["visible"] is True
    assert edited["body"] == original["body"]


# A marker in a paragraph (#m), with end tags of elements a paragraph can be in that Chromium
# ignores (nothing of their name open around it in scope) or that close it from outside.
PARAGRAPH_END_PAGES = [
    pytest.param("<p id=m>a</div><!-- compliance:notices -->b</p>c", id="stray-div-before"),
    pytest.param("<p id=m>a</h1><!-- compliance:notices -->b</p>c", id="stray-h1-before"),
    pytest.param("<p id=m>a<!-- compliance:notices -->b</h2>c</p>d", id="stray-h2-after"),
    pytest.param(
        "<div><table><tr><td><p id=m>a</div><!-- compliance:notices -->b</td></tr></table>",
        id="div-outside-the-cell",
    ),
    pytest.param("<li><ul><p id=m>a<!-- compliance:notices -->b</li>c</p>d", id="li-outside"),
    pytest.param("<button><p id=m>a<!-- compliance:notices -->b</button>c", id="button-around"),
    pytest.param("<div><p id=m>a<!-- compliance:notices -->b</div>c", id="div-around"),
    # A closed link and a hidden element after the marker: what ends the paragraph ends the
    # hidden element too (the notice went to the body start when a closed link counted as
    # one it waited for).
    pytest.param(
        "<p id=m>a<!-- compliance:notices --><a href=/x>x</a><span hidden>y</p>c",
        id="closed-link-then-hidden-end-tag",
    ),
    pytest.param(
        "<p id=m>a<!-- compliance:notices --><a href=/x>x</a><span hidden>y<div>c</div>",
        id="closed-link-then-hidden-start-tag",
    ),
]


@pytest.mark.parametrize("body", PARAGRAPH_END_PAGES)
def test_a_marker_notice_goes_where_chromium_ends_the_paragraph(browser: Any, body: str) -> None:
    """A stray </div> or </h1> was taken to close the paragraph open at the marker: the
    notice went into it, and Chromium closed the paragraph before the notice (what followed
    moved out of it). The notice is now the paragraph's next sibling, the rest of the page's
    DOM as it was."""
    from compliance.html.injector import Injector

    doc = ("<!DOCTYPE html><body>" + body).encode()
    snippet = '<aside class="compliance-notice">Notice</aside>'
    injector = Injector(lambda page: {"marker": snippet}, charset="utf-8")
    out = injector.feed(doc) + injector.finish()
    assert injector.inserted_placements == ["marker"]
    script = """() => {
        const notice = document.querySelector('aside.compliance-notice');
        const result = {
            afterParagraph: notice !== null
                && notice.previousElementSibling === document.getElementById('m'),
            inParagraph: notice !== null && notice.closest('p') !== null,
            visible: notice !== null && notice.checkVisibility(),
        };
        if (notice) notice.remove();
        result.body = document.body.innerHTML;
        return result;
    }"""
    results = []
    for page_bytes in (out, doc):
        page = _served(browser, page_bytes, "text/html; charset=utf-8")
        try:
            results.append(page.evaluate(script))
        finally:
            page.context.close()
    edited, original = results
    assert edited["body"] == original["body"]
    assert edited["inParagraph"] is False
    assert edited["afterParagraph"] is True
    assert edited["visible"] is True

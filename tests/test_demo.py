"""``compliance demo``: the ASGI app in-process, and once as a real server stopped by Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
import pytest

from compliance.demo import COOKIE, Simulation, create_app, demo_engine
from compliance.engine import Engine
from compliance.geo import Location
from compliance.testing import FixedGeolocator

REPO = Path(__file__).resolve().parents[1]


# The foreign-agent label's required variables, as a site sets them (a fictitious name).
AGENT = {"agent-instrumental": "Ивановым Иваном Ивановичем", "agent-genitive": "Иванова Ивана"}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = demo_engine(packs=["russia", "withheld", "examples"], watch=None, variables=AGENT)
    yield engine
    engine.close()


def get(engine: Engine, *paths: str) -> httpx.Response:
    """GET each path in turn with one client (cookies kept); the last response."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = None
            for path in paths:
                response = await client.get(path)
            assert response is not None
            return response

    return asyncio.run(run())


def test_the_simulator_sets_a_cookie_and_sends_the_browser_back() -> None:
    engine = Engine.from_paths(geolocator=FixedGeolocator(Location.of("SE")))
    response = get(engine, "/simulate?country=ua&subdivision=43&lang=uk&next=/news/1")
    assert response.status_code == 303
    assert response.headers["location"] == "/news/1"
    assert response.headers["set-cookie"].startswith(f"{COOKIE}=country%3DUA%26subdivision")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", ""])
def test_the_simulator_only_redirects_to_local_paths(engine: Engine, target: str) -> None:
    response = get(engine, f"/simulate?country=RU&next={target}")
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    ("target", "status", "location"),
    [
        pytest.param("/%09/evil.example/", 400, None, id="tab: browsers strip it"),
        pytest.param("/%0a/evil.example/", 400, None, id="newline"),
        pytest.param("/\\evil.example/", 400, None, id="backslash"),
        pytest.param("/%5C%5Cevil.example/", 400, None, id="encoded backslashes"),
        pytest.param("/%0d%0aSet-Cookie:%20x=1", 400, None, id="CRLF header injection"),
        pytest.param("/%00", 400, None, id="NUL"),
        pytest.param("/%E2%80%AE", 303, "/%E2%80%AE", id="right-to-left override"),
        pytest.param(
            "/новости/1", 303, "/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8/1", id="utf-8"
        ),
        pytest.param("/news/1?page=2", 303, "/news/1?page=2", id="query kept"),
    ],
)
def test_the_simulator_refuses_next_values_a_browser_would_read_as_another_site(
    engine: Engine, target: str, status: int, location: str | None
) -> None:
    response = get(engine, f"/simulate?country=RU&next={quote(target, safe='/%?=')}")
    assert response.status_code == status
    assert response.headers.get("location") == location
    if status == 400:
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("LOCALHOST", 200),
        ("[::1]:8000", 200),
        ("evil.example:8000", 400),
        ("evil.example", 400),
        ("127.0.0.1.evil.example", 400),
        ("localhost:x", 400),
        ("", 400),
    ],
)
def test_the_demo_answers_only_loopback_host_names(engine: Engine, host: str, status: int) -> None:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/rules", headers={"Host": host})

    response = asyncio.run(run())
    assert response.status_code == status
    if status == 400:
        assert "Rule preview" not in response.text


def test_reset_clears_the_cookie(engine: Engine) -> None:
    response = get(engine, "/simulate?next=/")
    assert "Max-Age=0" in response.headers["set-cookie"]


def test_a_simulated_russian_reader_gets_the_notice_in_russian(engine: Engine) -> None:
    response = get(engine, "/simulate?country=RU&lang=ru", "/a/story.html")
    assert response.status_code == 200
    html = response.text
    assert 'data-compliance-rule="ru-undesirable-organization" lang="ru"' in html
    assert html.index("compliance-notice") > html.index("</article>")  # body_end
    assert "document.body.dataset.scriptRan" in html
    assert "Cookie" in response.headers["vary"]
    assert "reader in RU (source: simulated)" in html


def test_crimea_as_a_subdivision_of_ukraine(engine: Engine) -> None:
    response = get(engine, "/simulate?country=UA&subdivision=UA-43&lang=uk", "/")
    assert 'data-compliance-rule="ru-undesirable-organization" lang="uk"' in response.text


def test_a_simulated_german_reader_gets_no_notice(engine: Engine) -> None:
    response = get(engine, "/simulate?country=DE&lang=ru", "/a/story.html")
    assert "<aside" not in response.text
    assert "notices: none" in response.text


def test_a_declared_page_language_wins_over_the_reader_language(engine: Engine) -> None:
    response = get(engine, "/simulate?country=RU&lang=ru&page=en", "/")
    assert response.headers["content-language"] == "en"
    assert 'data-compliance-rule="ru-undesirable-organization" lang="en"' in response.text


def test_content_tags_put_the_label_under_the_headline(engine: Engine) -> None:
    response = get(engine, "/simulate?country=RU&tags=foreign-agent", "/")
    html = response.text
    label = html.index('data-compliance-rule="ru-foreign-agent-label"')
    assert html.index("</h1>") < label < html.index('class="byline"')
    assert "x-compliance-tags" not in response.headers


def test_a_simulated_host_reaches_host_rules_and_blocks(engine: Engine) -> None:
    response = get(
        engine,
        "/simulate?country=DE&host=news.example&next=/withheld/story",
        "/withheld/story",
    )
    assert response.status_code == 451
    assert 'rel="blocked-by"' in response.headers["link"]


def test_a_simulated_ip_is_geolocated_by_the_real_geolocator(engine: Engine) -> None:
    response = get(engine, "/simulate?ip=77.88.55.88", "/")
    assert "reader in RU (source: embedded)" in response.text


def test_without_a_simulation_the_loopback_reader_is_unknown(engine: Engine) -> None:
    response = get(engine, "/")
    assert "reader in unknown" in response.text
    assert "<aside" not in response.text


def test_the_rule_preview_lists_every_rule_in_every_locale(engine: Engine) -> None:
    html = get(engine, "/rules").text
    for rule_id in engine.rule_ids:
        assert f'id="{rule_id}"' in html
    for locale in ("en", "ru", "uk"):
        assert f'data-compliance-rule="ru-undesirable-organization" lang="{locale}"' in html
    assert "russia-controlled-ukraine</code> (Russia-controlled parts of Ukraine: " in html
    assert "from 2024-02-20" in html
    assert "*.example" in html
    assert "X-Robots-Tag: noindex" in html
    assert 'class="block-preview" data-compliance-rule="withheld-page"' in html
    # the preview is the demo's own page: no notices are injected into it
    assert "Vary" not in get(engine, "/rules").headers


def test_the_rule_preview_shows_a_failed_reload(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text((REPO / "rules" / "russia.yaml").read_text(encoding="utf-8"), "utf-8")
    engine = demo_engine([str(tmp_path)], watch=None)
    try:
        rules.write_text("version: 1\nrules:\n  - id: Bad\n", encoding="utf-8")
        assert engine.reload() is False
        html = get(engine, "/rules").text
        assert 'class="reload-error"' in html
        assert "rules.yaml:3" in html
        assert 'id="ru-undesirable-organization"' in html  # still the last good rules
    finally:
        engine.close()


def test_only_the_cookie_chooses_the_simulated_location(engine: Engine) -> None:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(
                "/?compliance-simulate=RU", headers={"X-Compliance-Simulate": "RU"}
            )

    assert "reader in unknown" in asyncio.run(run()).text
    cookie = {"cookie": f"other=1; {COOKIE}=country%3DRU%26lang%3Dru"}
    assert Simulation.from_headers(cookie).header() == "RU"
    assert Simulation.from_headers({"cookie": f"{COOKIE}=country%3DZZZ"}).header() is None
    assert Simulation.from_query("lang=<script>&host=a b").language is None


def test_lifespan_and_other_scopes() -> None:
    app = create_app(Engine.from_paths(geolocator=FixedGeolocator(Location.of("SE"))))
    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: object) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_run_demo_is_importable_without_starting_anything() -> None:
    code = "import sys, compliance.demo; print('uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_python_dash_m_compliance_works_like_the_console_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "compliance", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--rules" in out.stdout
    assert "--geoip-db" in out.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_the_demo_serves_on_loopback_and_ctrl_c_stops_it_cleanly() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "compliance", "demo", "--port", str(port), "--rules", "rules"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                    client.get("/simulate?country=RU&lang=ru")
                    page = client.get("/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
        assert 'data-compliance-rule="ru-undesirable-organization" lang="ru"' in page.text
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "compliance demo stopped" in output


NITS_RULES = """version: 1
regions:
  crimea: {title: Crimea, include: [UA-43]}
rules:
  - id: top-notice
    title: A notice at the start of the body
    jurisdictions: [RU]
    notice:
      placement: body_start
      variables: {until: 2025-03-01}
      text:
        en: In force until {until}.
        ru: Действует до {until}.
  - id: court-block
    title: A block
    jurisdictions: [crimea]
    block:
      blocked_by: https://www.example.org/legal
      text: {en: Blocked.}
"""


@pytest.fixture
def nits_engine(tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "rules.yaml").write_text(NITS_RULES, encoding="utf-8")
    engine = demo_engine([str(tmp_path)], watch=None)
    yield engine
    engine.close()


def test_the_simulator_bar_comes_before_body_start_notices(nits_engine: Engine) -> None:
    response = get(nits_engine, "/simulate?country=RU&lang=en", "/")
    html = response.text
    assert html.index('class="demo-bar"') < html.index('data-compliance-rule="top-notice"')
    assert html.count('class="demo-bar"') == 1
    assert int(response.headers["content-length"]) == len(response.content)


def test_the_451_page_has_the_simulator_bar(nits_engine: Engine) -> None:
    response = get(nits_engine, "/simulate?country=UA&subdivision=UA-43&next=/x", "/x")
    assert response.status_code == 451
    html = response.text
    assert html.index('class="demo-bar"') < html.index('class="compliance-block"')
    assert '<input type="hidden" name="next" value="/x">' in html
    assert int(response.headers["content-length"]) == len(response.content)


def test_a_russian_date_ending_a_sentence_has_one_full_stop(nits_engine: Engine) -> None:
    html = get(nits_engine, "/simulate?country=RU&lang=ru", "/").text
    assert "Действует до 1 марта 2025 г.</p>" in html  # noqa: RUF001
    assert "г.." not in html  # noqa: RUF001
    english = get(nits_engine, "/simulate?country=RU&lang=en", "/").text
    assert "In force until March 1, 2025.</p>" in english


def test_the_rule_preview_counts_in_words(nits_engine: Engine) -> None:
    html = get(nits_engine, "/rules").text
    assert "2 rules, 1 region and 0 tests from 1 file," in html


def _raw(port: int, target: str, host: str) -> bytes:
    """One HTTP/1.1 request written by hand (no client library to clean the target up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def demo_server() -> Iterator[int]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "compliance", "demo", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "status", "location"),
    [
        ("next=/%09/evil.example/", b"400", None),
        ("next=/%0d%0aSet-Cookie:%20x=1", b"400", None),
        ("next=/%00", b"400", None),
        ("next=/%E2%80%AE", b"303", b"/%E2%80%AE"),
        ("next=//evil.example/", b"303", b"/"),
        ("country=RU&next=/news/1", b"303", b"/news/1"),
    ],
)
def test_next_through_a_real_server(
    demo_server: int, query: str, status: bytes, location: bytes | None
) -> None:
    answer = _raw(demo_server, f"/simulate?{query}", f"127.0.0.1:{demo_server}")
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]  # answered, not dropped
    assert b"set-cookie: x=1" not in head
    if location is not None:
        assert b"location: " + location.lower() + b"\r\n" in head + b"\r\n"
    else:
        assert b"location:" not in head


DEMO_PATHS = ["/", "/news/1", "/rules", "/simulate?country=RU&next=/news/1", "/favicon.ico"]


@pytest.mark.slow
@pytest.mark.parametrize("path", DEMO_PATHS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_the_demo_answers_other_methods_with_405(demo_server: int, path: str, method: str) -> None:
    # /rules and /simulate answered any method as a GET (a POST to /simulate set the
    # cookie), and the article's 405 said "Allow: GET" though it answers HEAD too.
    with httpx.Client(base_url=f"http://127.0.0.1:{demo_server}") as client:
        answer = client.request(method, path, content=b"x=1")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert "set-cookie" not in answer.headers


@pytest.mark.slow
@pytest.mark.parametrize("path", DEMO_PATHS)
def test_the_demo_answers_a_head_as_its_get_without_the_body(demo_server: int, path: str) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{demo_server}") as client:
        page = client.get(path)
        head = client.head(path)
    assert head.status_code == page.status_code
    assert head.content == b""
    for name in ("content-type", "content-length", "location", "set-cookie"):
        assert head.headers.get(name) == page.headers.get(name), name


@pytest.mark.slow
def test_dns_rebinding_cannot_read_the_rule_preview(demo_server: int) -> None:
    refused = _raw(demo_server, "/rules", f"evil.example:{demo_server}")
    assert refused.startswith(b"HTTP/1.1 400")
    assert b"Rule preview" not in refused
    for host in (f"127.0.0.1:{demo_server}", f"localhost:{demo_server}"):
        answer = _raw(demo_server, "/rules", host)
        assert answer.startswith(b"HTTP/1.1 200"), host
        assert b"Rule preview" in answer


def test_the_demo_shows_which_texts_are_translations(engine: Engine) -> None:
    preview = get(engine, "/rules").text
    section = preview[preview.index('id="ru-undesirable-organization"') :]
    assert '<p class="locale" data-locale="en">en — original</p>' in section
    assert 'data-locale="ru">ru — unreviewed translation of en' in section
    article = get(engine, "/simulate?country=RU&lang=ru", "/").text
    assert "ru-undesirable-organization (ru, unreviewed translation of en)" in article


def test_the_demo_shows_what_is_withheld(engine: Engine) -> None:
    preview = get(engine, "/rules").text
    section = preview[preview.index('id="withheld-content"') :]
    assert "Withholds elements whose <code>data-compliance-withhold</code> has " in section
    assert '<aside class="compliance-withheld" data-compliance-rule="withheld-content"' in section
    article = get(engine, "/simulate?country=DE&host=news.example", "/").text
    assert "withheld: withheld-content" in article
    # the marked paragraph is gone from the page, its placeholder in its place
    assert 'class="withholdable"' not in article
    assert '<aside class="compliance-withheld" data-compliance-rule="withheld-content"' in article
    elsewhere = get(engine, "/simulate?country=DE", "/").text
    assert "withheld:" not in elsewhere
    assert 'class="withholdable"' in elsewhere


TRY_IT_RULES = """\
version: 1
rules:
  - id: one-segment
    title: A star within a segment
    jurisdictions: [FR]
    paths: ["/news/*/story.html"]
    notice: {text: {en: One segment.}}
  - id: host-with-a-star
    title: A star inside a host name
    jurisdictions: [FR]
    hosts: ["cdn-*.example"]
    notice: {text: {en: Star host.}}
  - id: one-character
    title: A question mark in a host and a path
    jurisdictions: [DE]
    hosts: ["news?.example"]
    paths: ["/item-?/"]
    notice: {text: {en: One character.}}
  - id: not-the-front-page
    title: Every page but the front page
    jurisdictions: [DE]
    exclude_paths: ["/"]
    notice: {text: {en: Not the front page.}}
"""


def test_every_try_it_link_of_the_preview_shows_its_rule(tmp_path: Path) -> None:
    # "/news/*/story.html" gave the link /news//story.html, which the middleware reads as
    # /news/story.html: "notices: none", as if the rule did not work; a host with a star
    # or a "?" gave no host at all, and an excluded "/" was still the page linked to.
    import html as markup
    import re

    (tmp_path / "rules.yaml").write_text(TRY_IT_RULES, encoding="utf-8")
    engine = demo_engine([str(tmp_path)], watch=None)
    try:
        preview = get(engine, "/rules").text
        links = re.findall(
            r'<section class="rule" id="([^"]+)".*?href="(/simulate\?[^"]+)"', preview
        )
        assert sorted(rule for rule, _ in links) == [
            "host-with-a-star",
            "not-the-front-page",
            "one-character",
            "one-segment",
        ]
        for rule, link in links:
            query = markup.unescape(link)
            target = dict(parse_qsl(query.partition("?")[2]))["next"]
            article = get(engine, query, target).text
            assert f'data-compliance-rule="{rule}"' in article, (rule, query)
    finally:
        engine.close()


def test_the_decision_line_names_the_notices_content_tags_bring(engine: Engine) -> None:
    # The article read the decision the middleware made before its tags were known: the
    # foreign-agent label was on the page but the decision line said only the other notice.
    article = get(engine, "/simulate?country=RU&lang=ru&tags=foreign-agent", "/").text
    assert 'data-compliance-rule="ru-foreign-agent-label"' in article
    line = article[article.index('class="decision"') :]
    line = line[: line.index("</p>")]
    assert "ru-foreign-agent-label (ru" in line
    assert "ru-undesirable-organization (ru" in line


TRY_IT_MORE = """\
version: 1
rules:
  - id: first-country-excluded
    title: The first jurisdiction is excluded
    jurisdictions: [UA, FR]
    exclude: [UA]
    notice: {text: {en: Excluded first.}}
  - id: idn-host
    title: A host written in Cyrillic
    jurisdictions: [FR]
    hosts: ["новости.example"]
    notice: {text: {en: IDN host.}}
  - id: everywhere
    title: Every known location
    jurisdictions: ["*"]
    exclude: [AF]
    notice: {text: {en: Everywhere.}}
"""


def test_try_it_links_reach_their_rule_past_exclusions_idn_hosts_and_stars(
    tmp_path: Path,
) -> None:
    # The link's reader was the first jurisdiction even when the rule excludes it, an IDN
    # host was dropped by the simulator (the middleware matches it in punycode), and a rule
    # for "*" had no link at all.
    import html as markup
    import re

    (tmp_path / "rules.yaml").write_text(TRY_IT_MORE, encoding="utf-8")
    engine = demo_engine([str(tmp_path)], watch=None)
    try:
        preview = get(engine, "/rules").text
        sections = re.findall(r'<section class="rule" id="([^"]+)"(.*?)</section>', preview)
        links = {rule: re.search(r'href="(/simulate\?[^"]+)"', body) for rule, body in sections}
        assert {rule: bool(link) for rule, link in links.items()} == {
            "everywhere": True,
            "first-country-excluded": True,
            "idn-host": True,
        }
        for rule, link in links.items():
            assert link is not None
            query = markup.unescape(link[1])
            target = dict(parse_qsl(query.partition("?")[2]))["next"]
            article = get(engine, query, target).text
            assert f'data-compliance-rule="{rule}"' in article, (rule, query)
    finally:
        engine.close()


def test_the_simulated_host_is_read_as_the_middleware_reads_host() -> None:
    # A Cyrillic host or one with a port was dropped: the reader was on no host at all.
    assert Simulation.from_query("host=Новости.Example").host == "xn--b1amnebsh.example"
    assert Simulation.from_query("host=News.Example:8080").host == "news.example"
    assert Simulation.from_query("host=a b").host is None


RTL_BLOCK = """\
version: 1
rules:
  - id: rtl-block
    title: A block in Hebrew
    jurisdictions: [IL]
    block:
      blocked_by: https://www.example.org/legal
      default_locale: he
      text: {he: "החסימה לפי צו."}
"""


def test_a_right_to_left_block_is_previewed_and_served_right_to_left(tmp_path: Path) -> None:
    # The preview's block had lang="he" and no dir, so it was laid out left to right (the
    # full stop on the wrong side) while the 451 page readers get is dir="rtl"; on that
    # page the demo's own English bar inherited the page's direction and language.
    (tmp_path / "rules.yaml").write_text(RTL_BLOCK, encoding="utf-8")
    engine = demo_engine([str(tmp_path)], watch=None)
    try:
        preview = get(engine, "/rules").text
        assert 'data-compliance-rule="rtl-block" lang="he" dir="rtl"' in preview
        page = get(engine, "/simulate?country=IL", "/")
        assert page.status_code == 451
        assert '<html lang="he" dir="rtl">' in page.text
        assert '<nav class="demo-bar" lang="en" dir="ltr"' in page.text
    finally:
        engine.close()


def test_the_decision_line_names_the_headers_rules_add(engine: Engine) -> None:
    # A rule that only adds a response header (example-noindex-header) applied, and the
    # decision line said "notices: none": nothing on the page showed the rule at work.
    response = get(engine, "/simulate?country=RU&host=news.example", "/")
    assert response.headers["x-robots-tag"] == "noindex"
    line = response.text[response.text.index('class="decision"') :]
    line = line[: line.index("</p>")]
    assert "headers: X-Robots-Tag: noindex" in line


@pytest.mark.slow
def test_the_demo_warns_when_it_listens_beyond_loopback() -> None:
    # --host was hidden from --help and the docs: the demo listened wherever it was told,
    # and said nothing of what that exposes.
    import re

    process = subprocess.Popen(
        [sys.executable, "-m", "compliance", "demo", "--host", "0.0.0.0", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        warning, banner = process.stdout.readline(), process.stdout.readline()
        assert warning.startswith("compliance demo: WARNING: listening on 0.0.0.0, not on loopback")
        assert "leave out --host to serve on 127.0.0.1 only" in warning
        found = re.match(r"compliance demo on http://0\.0\.0\.0:(\d+)/ ", banner)
        assert found is not None, banner
        # still only for loopback Host names (and the address it was given)
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{found[1]}/rules")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
        assert "Rule preview" in page.text
        refused = _raw(int(found[1]), "/rules", f"evil.example:{found[1]}")
        assert refused.startswith(b"HTTP/1.1 400")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_only_loopback_addresses_count_as_loopback() -> None:
    from compliance.demo import _loopback

    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert _loopback(host), host
    for host in ("0.0.0.0", "::", "[::]", "192.0.2.1", "2001:db8::1", "example.org"):
        assert not _loopback(host), host


@pytest.mark.slow
def test_on_any_free_port_the_demo_names_the_port_it_serves_on() -> None:
    # `--port 0` (any free port, as --help says) printed "compliance demo on
    # http://127.0.0.1:0/": a link to nowhere, the real port only in uvicorn's log.
    import re

    process = subprocess.Popen(
        [sys.executable, "-m", "compliance", "demo", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.match(r"compliance demo on http://127\.0\.0\.1:(\d+)/ ", banner)
        assert found is not None, banner
        port = int(found[1])
        assert port != 0
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/rules")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
        assert "Rule preview" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_the_simulator_says_which_one_subdivision_it_simulates(engine: Engine) -> None:
    # "UA-40, UA-43" was kept whole and the bar said "Simulating: location UA/UA-40/UA-43"
    # while the middleware's simulation header carries one subdivision: the reader was in
    # UA-40 alone, and nothing said the second was dropped.
    simulation = Simulation.from_query("country=UA&subdivision=UA-40,UA-43")
    assert simulation.subdivisions == ("UA-40",)
    article = get(engine, "/simulate?country=UA&subdivision=UA-40,UA-43", "/").text
    assert "Simulating: location UA/UA-40," in article
    assert "reader in UA/UA-40 (source: simulated)" in article


def test_notices_the_middleware_could_not_deliver_are_said_so() -> None:
    # Without the label's required variables (`compliance demo`, no --set) the middleware
    # fails open: the page goes out without any notice. The decision line listed both
    # notices as if they were on the page, and nothing on it said otherwise.
    engine = demo_engine(packs=["russia"], watch=None)
    try:
        response = get(engine, "/simulate?country=RU&lang=ru&tags=foreign-agent", "/")
        assert 'class="compliance-notice"' not in response.text
        alert = response.text[response.text.index('class="undelivered"') :]
        alert = alert[: alert.index("</div>")]
        assert "ru-foreign-agent-label" in alert
        assert "ru-undesirable-organization" in alert
        assert int(response.headers["content-length"]) == len(response.content)
        delivered = get(engine, "/simulate?country=RU&lang=ru", "/")
        assert 'class="compliance-notice"' in delivered.text
        assert 'class="undelivered"' not in delivered.text
    finally:
        engine.close()


def test_a_page_the_fail_mode_cut_to_nothing_keeps_the_simulator() -> None:
    # With withholding, failing open cuts the page where it is: here before its first
    # byte. The demo added its bar only to a page with a <body> tag, so the rule author got
    # a blank white page, with no bar to choose another reader and no word of why.
    engine = demo_engine(packs=["russia", "withheld"], watch=None)
    try:
        query = "/simulate?country=RU&lang=ru&tags=foreign-agent&host=news.example"
        response = get(engine, query, "/")
        assert response.status_code == 200
        assert 'class="demo-bar"' in response.text
        assert 'class="undelivered"' in response.text
        assert "ru-foreign-agent-label" in response.text
        assert 'class="withholdable"' not in response.text  # withheld content never goes
        assert int(response.headers.get("content-length", len(response.content))) == len(
            response.content
        )
    finally:
        engine.close()


def test_the_preview_does_not_search_readers_for_rules_out_of_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "try it" link asks the engine about up to 500 readers for a rule for "*"; for a
    # rule that applies to nobody today (expired, not yet in force) all 500 were asked,
    # half a second of /rules for 40 such rules.
    rules = ["version: 1", "rules:"]
    for n in range(10):
        rules += [
            f"  - id: expired-{n}",
            f"    title: Expired {n}",
            '    jurisdictions: ["*"]',
            "    effective: {until: 2020-01-01}",
            "    notice: {text: {en: Expired.}}",
        ]
    (tmp_path / "rules.yaml").write_text("\n".join(rules) + "\n", encoding="utf-8")
    engine = demo_engine([str(tmp_path)], watch=None)
    try:
        calls = []
        decide = engine.decide
        monkeypatch.setattr(engine, "decide", lambda **kw: calls.append(kw) or decide(**kw))
        preview = get(engine, "/rules").text
        assert preview.count("try it as location AD") == 10
        assert len(calls) <= 10
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("query", "path", "status"),
    [
        ("country=DE&host=news.example", "/withheld/story", 451),
        ("country=RU&lang=ru", "/", 200),
    ],
)
def test_head_answers_with_the_headers_of_get(
    engine: Engine, query: str, path: str, status: int
) -> None:
    # A HEAD's 451 page said the Content-Length of the block page without the demo's
    # chrome (what GET sends), and, once the demo dressed empty pages, carried a body.
    sent: list[bytes] = []

    async def run(method: str) -> httpx.Response:
        app = create_app(engine)

        async def spy(scope: dict[str, object], receive: object, send: object) -> None:
            async def watched(message: dict[str, object]) -> None:
                if message["type"] == "http.response.body" and method == "HEAD":
                    sent.append(bytes(message.get("body", b"")))  # type: ignore[arg-type]
                await send(message)  # type: ignore[operator]

            await app(scope, receive, watched)  # type: ignore[arg-type]

        transport = httpx.ASGITransport(app=spy, client=("127.0.0.1", 5000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await client.get(f"/simulate?{query}")
            return await client.request(method, path)

    get_response, head_response = asyncio.run(run("GET")), asyncio.run(run("HEAD"))
    assert get_response.status_code == head_response.status_code == status
    assert head_response.headers["content-length"] == get_response.headers["content-length"]
    assert b"".join(sent) == b""


def test_the_simulator_bar_shows_the_reader_it_simulates(engine: Engine) -> None:
    # Kosovo (XK, as MaxMind and the engine have it) was not in the country list, and a
    # page language outside the list (ar-EG, from a link) was not in its list either: the
    # bar showed "(real location / IP)" and "(not declared)", and the next Simulate
    # dropped them.
    article = get(engine, "/simulate?country=XK&page=ar-EG", "/").text
    assert "Simulating: location XK" in article
    assert '<option value="XK" selected>' in article
    assert '<option value="ar-EG" selected>' in article
    # and a reader's language list is offered as the reader's, not as a page language
    bar = get(engine, "/simulate?lang=de-CH,de;q=0.9", "/").text
    pages = bar[bar.index('<select name="page">') :]
    assert "de;q=0.9" not in pages[: pages.index("</select>")]

"""End to end through gunicorn and uvicorn on 127.0.0.1 with a real client (httpx).

Issue 13: a reader who must see a notice gets it, or the fail mode and a counted WARNING, with
ordinary framework set-ups: Flask with Flask-Compress (content codings), Django with
``ConditionalGetMiddleware`` and Starlette ``StaticFiles`` (validators, ranges), and all of
them for shared-cache directives. Issue 17: the decision endpoint, the counters and the
location simulator, through uvicorn.

The applications are in ``tests/apps/compliance_delivery_apps.py``. Readers are placed by
``X-Forwarded-For`` (the test client is the trusted proxy on 127.0.0.1) and located by the
embedded geolocator: 77.88.55.88 is in Russia, 81.169.145.105 in Germany. Each server starts
once for the module; they start together.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
import harness as h
import httpx
import pytest

from compliance.cli import main as cli

try:
    from compression import zstd  # type: ignore[import-not-found]  # Python 3.14
except ImportError:
    from backports import zstd

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "apps"
RULE = "ru-undesirable-organization"
ASIDE = f'data-compliance-rule="{RULE}"'.encode()
IN_RUSSIA, IN_GERMANY = "77.88.55.88", "81.169.145.105"
BROWSER = "gzip, deflate, br, zstd"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SITES = {
    # name: (server, application)
    "flask-gunicorn": ("gunicorn", "flask_site"),
    "django-gunicorn": ("gunicorn", "django_wsgi"),
    "django-uvicorn": ("uvicorn", "django_asgi"),
    "starlette-uvicorn": ("uvicorn", "starlette_site"),
}
PAGES = {
    "flask-gunicorn": "/page",
    "django-gunicorn": "/page",
    "django-uvicorn": "/page",
    "starlette-uvicorn": "/static/page.html",
}


def _apps() -> Any:
    """The app module, for its constants (importing it builds no site)."""
    spec = importlib.util.spec_from_file_location(
        "compliance_delivery_apps", APPS / "compliance_delivery_apps.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAGE: bytes = _apps().PAGE
"""The page every site serves."""


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    log: Path
    """The server's stderr (the library's WARNINGs go there)."""

    def get(
        self, path: str, ip: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        """GET ``path`` as a reader at ``ip`` (None: the proxy itself, 127.0.0.1)."""
        sent = {"Accept-Encoding": "identity", **(headers or {})}
        if ip is not None:
            sent["X-Forwarded-For"] = ip
        return httpx.get(self.base + path, headers=sent, timeout=10, **kw)

    def metrics(self) -> dict[str, Any]:
        answer = httpx.get(self.base + "/__metrics", timeout=10)
        assert answer.status_code == 200
        return answer.json()  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(server: str, app: str, port: int) -> list[str]:
    target = f"compliance_delivery_apps:{app}"
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS),
            "--host", "127.0.0.1", "--port", str(port),
            "--no-proxy-headers", "--lifespan", "off", "--log-level", "warning", target,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "--chdir", str(APPS),
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning", target,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    folder = tmp_path_factory.mktemp("servers")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "COMPLIANCE_STATIC_DIR": str(folder / "static"),
    }
    running: dict[str, tuple[subprocess.Popen[bytes], Server]] = {}
    try:
        for name, (server, app) in SITES.items():
            port = _free_port()
            log = folder / f"{name}.log"
            with log.open("wb") as stderr:
                process = subprocess.Popen(
                    _command(server, app, port), env=env, cwd=REPO,
                    stdout=subprocess.DEVNULL, stderr=stderr,
                )  # fmt: skip
            running[name] = (process, Server(f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 30
        for name, (process, server) in running.items():
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {server.log.read_text()}")
                try:
                    httpx.get(server.base + "/__metrics", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        yield {name: server for name, (_, server) in running.items()}
    finally:
        for process, _ in running.values():
            process.send_signal(signal.SIGINT)  # gunicorn: quick shutdown; uvicorn: shutdown
        for process, _ in running.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def nginx_in_front(
    servers: dict[str, Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """nginx proxying to the Django site under gunicorn, serving the static folder at the
    internal location ``/internal/`` (for ``X-Accel-Redirect``): its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is not installed (apt-get install nginx)")
    folder = tmp_path_factory.mktemp("nginx")
    static = Path(str(servers["starlette-uvicorn"].log)).parent / "static"  # page.html
    port, origin = _free_port(), servers["django-gunicorn"].base
    servers = f"""    server {{
        listen 127.0.0.1:{port};
        location /internal/ {{ internal; alias {static}/; }}
        location / {{
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_pass {origin};
        }}
    }}"""
    (folder / "nginx.conf").write_text(h.proxy_conf(folder, servers))
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", "nginx.conf"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(base + "/__metrics", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (folder / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- helpers ----------------------------------------------------------------------------------


@dataclass
class Wire:
    """A response and its body as sent (httpx cannot undo zstd, so the test does)."""

    response: httpx.Response
    body: bytes

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def decoded(self) -> bytes:
        coding = self.headers.get("content-encoding", "identity")
        if coding == "identity":
            return self.body
        if coding == "gzip":
            return gzip.decompress(self.body)
        if coding == "deflate":
            return zlib.decompress(self.body)
        if coding == "br":
            return brotli.decompress(self.body)
        assert coding == "zstd", coding
        return zstd.decompress(self.body)  # type: ignore[no-any-return]


def raw_get(server: Server, path: str, ip: str, headers: dict[str, str]) -> Wire:
    """GET without httpx decoding the body."""
    sent = {"X-Forwarded-For": ip, **headers}
    with httpx.Client(timeout=10) as client:
        request = client.build_request("GET", server.base + path, headers=sent)
        response = client.send(request, stream=True)
        try:
            return Wire(response, b"".join(response.iter_raw()))
        finally:
            response.close()


def vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()}


def delta(before: dict[str, Any], after: dict[str, Any], counter: str) -> dict[str, int]:
    """What a counter gained between two snapshots (keys that did not change left out)."""
    old, new = before[counter], after[counter]
    if isinstance(new, int):
        return {"": new - old} if new != old else {}
    return {key: n - old.get(key, 0) for key, n in new.items() if n != old.get(key, 0)}


def assert_no_shared_cache_directives(response: httpx.Response | Wire) -> None:
    directives = {d.strip().split("=")[0] for d in response.headers["cache-control"].split(",")}
    assert "private" in directives
    assert "max-age" in directives  # the app's own lifetime for the reader's browser stays
    assert not directives & {"public", "s-maxage"}
    for name in ("cdn-cache-control", "surrogate-control", "cloudflare-cdn-cache-control"):
        assert name not in response.headers


# -- issue 13, item 1: content codings (Flask-Compress, default configuration) ----------------


def test_flask_compress_default_config_and_a_modern_browser(servers: dict[str, Server]) -> None:
    flask = servers["flask-gunicorn"]
    browser = {"Accept-Encoding": BROWSER, "Accept": BROWSER_ACCEPT}
    before = flask.metrics()["open"]
    germany = raw_get(flask, "/page", IN_GERMANY, browser)
    # What Flask-Compress does for this browser when nobody has to edit the page: zstd.
    assert germany.headers["content-encoding"] == "zstd"
    assert germany.decoded() == PAGE
    russia = raw_get(flask, "/page", IN_RUSSIA, browser)
    assert russia.status_code == 200
    assert russia.headers["content-encoding"] in ("br", "gzip", "deflate")
    page = russia.decoded()
    assert page.count(ASIDE) == 1
    assert page.replace(b"\n", b"").endswith(b"</body></html>")
    assert russia.headers.get("content-length") in (None, str(len(russia.body)))
    after = flask.metrics()["open"]
    assert delta(before, after, "notices_injected") == {f"{RULE}|RU": 1}
    assert delta(before, after, "notices_not_delivered") == {}
    # Flask-Compress tags each coding ("...:zstd") and answers conditional requests: the
    # German copy's tag does not stand in Russia; the Russian reader's own tag does.
    assert germany.headers["etag"].endswith(':zstd"')
    cached = {**browser, "If-None-Match": germany.headers["etag"]}
    again = raw_get(flask, "/page", IN_RUSSIA, cached)
    assert again.status_code == 200
    assert again.decoded().count(ASIDE) == 1
    own = {**browser, "If-None-Match": russia.headers["etag"]}
    not_modified = raw_get(flask, "/page", IN_RUSSIA, own)
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == russia.headers["etag"]
    assert "private" in not_modified.headers["cache-control"]


def test_a_precompressed_zstd_page_is_the_fail_mode_and_counted(
    servers: dict[str, Server],
) -> None:
    flask = servers["flask-gunicorn"]
    before = flask.metrics()
    opened = raw_get(flask, "/precompressed", IN_RUSSIA, {"Accept-Encoding": BROWSER})
    closed = raw_get(flask, "/closed/precompressed", IN_RUSSIA, {"Accept-Encoding": BROWSER})
    after = flask.metrics()
    # fail_mode="open": the page goes out as the app sent it, but no shared cache keeps it.
    assert opened.status_code == 200
    assert opened.headers["content-encoding"] == "zstd"
    assert opened.decoded() == PAGE
    assert_no_shared_cache_directives(opened)
    # fail_mode="closed": 503.
    assert closed.status_code == 503
    assert ASIDE not in closed.body
    for mode in ("open", "closed"):
        assert delta(before[mode], after[mode], "notices_not_delivered") == {"content-coding": 1}
        assert delta(before[mode], after[mode], "notices_injected") == {}
    # Logged at WARNING (with no logging configured, Python's last-resort handler prints
    # WARNING and above to stderr), by cause: once, the repeat is counted, not logged.
    said = "compliance notice not delivered (content-coding)"
    deadline = time.monotonic() + 5
    while said not in flask.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = flask.log.read_text()
    assert log.count(said) == 1, log
    assert IN_RUSSIA not in log
    # A reader who needs no notice gets the file as it is, and nothing is counted.
    germany = raw_get(flask, "/precompressed", IN_GERMANY, {"Accept-Encoding": BROWSER})
    assert germany.status_code == 200
    assert germany.decoded() == PAGE
    assert (
        flask.metrics()["open"]["notices_not_delivered"] == after["open"]["notices_not_delivered"]
    )


# -- issue 13, item 4: validators (Django ConditionalGetMiddleware, Starlette StaticFiles) -----

VALIDATING = ["flask-gunicorn", "django-gunicorn", "django-uvicorn", "starlette-uvicorn"]


@pytest.mark.parametrize("site", VALIDATING)
def test_a_copy_cached_in_germany_does_not_stand_in_russia(
    servers: dict[str, Server], site: str
) -> None:
    server, path = servers[site], PAGES[site]
    germany = server.get(path, IN_GERMANY)
    assert germany.status_code == 200
    assert ASIDE not in germany.content
    etag, last_modified = germany.headers["etag"], germany.headers["last-modified"]
    # The app really answers conditional requests: the German reader revalidates to a 304.
    again = server.get(path, IN_GERMANY, {"If-None-Match": etag})
    assert again.status_code == 304
    # The same copy revalidated from Russia: the page again, with its notice.
    for validator in ({"If-None-Match": etag}, {"If-Modified-Since": last_modified}):
        russia = server.get(path, IN_RUSSIA, validator)
        assert russia.status_code == 200, validator
        assert russia.content.count(ASIDE) == 1, validator
        assert russia.headers["etag"] != etag
        assert "private" in russia.headers["cache-control"]


ACCEPTS = pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "*/*"], ids=["browser", "any"])


@pytest.mark.parametrize("site", VALIDATING)
@ACCEPTS
def test_the_russian_reader_revalidates_its_own_variant(
    servers: dict[str, Server], site: str, accept: str
) -> None:
    # Neither Django's nor Starlette's 304 has a Content-Type: the 304 answers a request
    # whose If-None-Match named the reader's own variant, whatever the client accepts
    # (a feed reader, a service worker's fetch() or curl send */*).
    server, path = servers[site], PAGES[site]
    russia = server.get(path, IN_RUSSIA, {"Accept": accept})
    assert russia.content.count(ASIDE) == 1
    own = russia.headers["etag"]
    assert own != server.get(path, IN_GERMANY, {"Accept": accept}).headers["etag"]
    not_modified = server.get(path, IN_RUSSIA, {"If-None-Match": own, "Accept": accept})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == own
    assert not_modified.headers["cache-control"] == russia.headers["cache-control"]
    assert_no_shared_cache_directives(not_modified)


@pytest.mark.parametrize("site", VALIDATING)
@ACCEPTS
def test_the_304_varies_like_the_get(servers: dict[str, Server], site: str, accept: str) -> None:
    server, path = servers[site], PAGES[site]
    russia = server.get(path, IN_RUSSIA, {"Accept": accept})
    own = russia.headers["etag"]
    not_modified = server.get(path, IN_RUSSIA, {"If-None-Match": own, "Accept": accept})
    assert not_modified.status_code == 304
    assert vary(not_modified) == vary(russia)


@pytest.mark.parametrize("site", list(SITES))
def test_vary_accept_language_only_when_the_readers_language_chose_the_locale(
    servers: dict[str, Server], site: str
) -> None:
    server, path = servers[site], PAGES[site]
    # The page says <html lang="en">: its language chooses the notice's, whatever the
    # reader accepts, with or without a Content-Length from the app.
    for language in (None, "ru"):
        response = server.get(path, IN_RUSSIA, {"Accept-Language": language} if language else {})
        assert b'lang="en" dir="ltr" role="note"' in response.content
        assert "accept-language" not in vary(response), f"Accept-Language: {language}"


def test_static_files_ranges_never_give_a_russian_reader_the_unedited_bytes(
    servers: dict[str, Server],
) -> None:
    server, path = servers["starlette-uvicorn"], PAGES["starlette-uvicorn"]
    germany = server.get(path, IN_GERMANY, {"Range": "bytes=0-99"})
    # StaticFiles serves ranges: the German reader gets 100 bytes.
    assert germany.status_code == 206
    assert germany.content == PAGE[:100]
    etag = germany.headers["etag"]
    for headers in (
        {"Range": "bytes=0-99"},
        {"Range": "bytes=0-99", "If-Range": etag},
        {"Range": "bytes=100-", "If-None-Match": etag},
    ):
        russia = server.get(path, IN_RUSSIA, headers)
        assert russia.status_code == 200, headers
        assert russia.content.count(ASIDE) == 1, headers
        assert russia.content.startswith(PAGE[:100])
        assert "accept-ranges" not in russia.headers
        assert "content-range" not in russia.headers
    assert server.get(path, IN_GERMANY).headers["accept-ranges"] == "bytes"
    assert "accept-ranges" not in server.get(path, IN_RUSSIA).headers


# -- issue 13, item 9: a static htmx fragment ---------------------------------------------------


def test_a_static_fragment_varies_on_the_partial_request_headers(
    servers: dict[str, Server],
) -> None:
    server = servers["starlette-uvicorn"]
    partial = server.get("/static/latest.html", IN_RUSSIA, {"HX-Request": "true"})
    assert partial.status_code == 200
    assert ASIDE not in partial.content
    whole = server.get("/static/latest.html", IN_RUSSIA)
    assert whole.content.count(ASIDE) == 1
    # Whether the notice is there depends on HX-Request: a cache must know it.
    for response in (partial, whole):
        assert {"hx-request", "hx-boosted", "turbo-frame"} <= vary(response)


# -- issue 13, item 7: shared-cache directives on private pages -------------------------------


@pytest.mark.parametrize("site", list(SITES))
@pytest.mark.parametrize("ip", [IN_RUSSIA, IN_GERMANY], ids=["russia", "germany"])
def test_private_pages_carry_no_shared_cache_directives(
    servers: dict[str, Server], site: str, ip: str
) -> None:
    response = servers[site].get(PAGES[site], ip)
    assert response.status_code == 200
    assert (ASIDE in response.content) is (ip == IN_RUSSIA)
    assert_no_shared_cache_directives(response)


# -- issue 17: the decision endpoint, counters and the simulator, through uvicorn -------------

UVICORN = ["starlette-uvicorn", "django-uvicorn"]
ENDPOINT = "/.well-known/compliance"


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """What ``compliance check --format json`` prints for these arguments."""
    capsys.readouterr()
    assert cli(["check", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("site", UVICORN)
@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_decision_endpoint_answers_the_check_document(
    servers: dict[str, Server], site: str, language: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = servers[site]
    russia = server.get(ENDPOINT, IN_RUSSIA, {"Accept-Language": language})
    assert russia.status_code == 200
    assert russia.headers["content-type"].startswith("application/json")
    document = russia.json()
    expected = check_json(
        capsys, "--ip", IN_RUSSIA, "--accept-language", language, "--url", server.base + ENDPOINT
    )
    assert document["trace"] == []
    assert {**document, "trace": expected["trace"]} == expected
    assert [n["rule"] for n in document["notices"]] == [RULE]
    notice = document["notices"][0]
    assert notice["locale"] == language
    assert set(notice) >= {"rule", "locale", "placement", "text", "html"}
    assert document["block"] is None
    assert document["location"]["country"] == "RU"
    # Located by address: private; the answer depends on the reader's languages (the notice
    # has several) and, for the developers allowed to simulate, on the simulation header.
    assert russia.headers["cache-control"] == "private"
    assert vary(russia) == {"accept-language", "x-compliance-simulate"}
    head = httpx.head(
        server.base + ENDPOINT,
        headers={"X-Forwarded-For": IN_RUSSIA, "Accept-Language": language},
        timeout=10,
    )
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "cache-control", "vary"):
        assert head.headers[name] == russia.headers[name]

    germany = server.get(ENDPOINT, IN_GERMANY, {"Accept-Language": language})
    assert germany.status_code == 200
    assert germany.json() == {
        **check_json(capsys, "--ip", IN_GERMANY, "--url", server.base + ENDPOINT),
        "trace": [],
    }
    assert germany.json()["notices"] == []
    assert germany.headers["cache-control"] == "private"
    assert vary(germany) == {"x-compliance-simulate"}


@pytest.mark.parametrize("site", UVICORN)
def test_the_counters_follow_what_readers_were_served(
    servers: dict[str, Server], site: str
) -> None:
    server, path = servers[site], PAGES[site]
    before = server.metrics()
    for ip in (IN_RUSSIA, IN_RUSSIA, IN_GERMANY):
        assert server.get(path, ip).status_code == 200
    server.get(ENDPOINT, IN_RUSSIA)
    after = server.metrics()
    opened = (before["open"], after["open"])
    assert delta(*opened, "decisions") == {"": 4}
    assert delta(*opened, "decisions_with_notices") == {"": 3}
    assert delta(*opened, "notices_injected") == {f"{RULE}|RU": 2}
    for counter in ("blocks", "notices_not_delivered", "notices_skipped", "faults"):
        assert delta(*opened, counter) == {}, counter
    assert after["closed"] == before["closed"]


@pytest.mark.parametrize("site", UVICORN)
def test_a_developer_on_127_0_0_1_can_simulate_a_location(
    servers: dict[str, Server], site: str
) -> None:
    server, path = servers[site], PAGES[site]
    simulated = server.get(path, headers={"X-Compliance-Simulate": "RU"})
    assert simulated.status_code == 200
    assert simulated.content.count(ASIDE) == 1
    assert "private" in simulated.headers["cache-control"]
    by_query = server.get(path + "?compliance-simulate=RU")
    assert by_query.content.count(ASIDE) == 1
    decision = server.get(ENDPOINT, headers={"X-Compliance-Simulate": "RU"}).json()
    assert decision["location"] == {"country": "RU", "subdivisions": [], "source": "simulated"}
    assert [n["rule"] for n in decision["notices"]] == [RULE]
    # Without the header, 127.0.0.1 is nowhere in particular: no notice.
    assert ASIDE not in server.get(path).content


@pytest.mark.parametrize("site", UVICORN)
@pytest.mark.parametrize(
    "forwarded", [IN_GERMANY, f"127.0.0.1, {IN_GERMANY}"], ids=["reader", "spoofed-chain"]
)
def test_readers_behind_the_trusted_proxy_cannot_simulate(
    servers: dict[str, Server], site: str, forwarded: str
) -> None:
    server, path = servers[site], PAGES[site]
    # The peer (the proxy, 127.0.0.1) is in simulate_from; the reader it forwards is not.
    headers = {"X-Compliance-Simulate": "RU"}
    page = server.get(path, forwarded, headers)
    assert page.status_code == 200
    assert ASIDE not in page.content
    assert ASIDE not in server.get(path + "?compliance-simulate=RU", forwarded).content
    decision = server.get(ENDPOINT, forwarded, headers).json()
    assert decision["location"]["country"] == "DE"
    assert decision["location"]["source"] != "simulated"
    assert decision["notices"] == []


# -- a page the server in front sends (X-Accel-Redirect, X-Sendfile) --------------------------


def test_a_page_nginx_sends_for_the_app_is_the_fail_mode_and_counted(
    servers: dict[str, Server], nginx_in_front: str
) -> None:
    """Django answers with ``X-Accel-Redirect`` and nginx sends the file: the reader in
    Russia gets it unedited whatever the middleware does, so that is the fail mode, logged
    and counted, with the file's own tag (it was counted as an empty body legitimately
    skipped, and tagged as the edited variant the reader never got); failing closed, 503."""
    django = servers["django-gunicorn"]
    before = django.metrics()
    sent = {"X-Forwarded-For": IN_RUSSIA, "Accept-Encoding": "identity"}
    page = httpx.get(nginx_in_front + "/accel", headers=sent, timeout=10)
    assert page.status_code == 200
    assert page.content == PAGE  # nginx's file, as it is
    assert "private" in page.headers["cache-control"]
    closed = httpx.get(nginx_in_front + "/closed/accel", headers=sent, timeout=10)
    assert closed.status_code == 503
    after = django.metrics()
    assert delta(before["open"], after["open"], "notices_not_delivered") == {"server file": 1}
    assert delta(before["open"], after["open"], "notices_skipped") == {}
    assert delta(before["closed"], after["closed"], "notices_not_delivered") == {"server file": 1}
    assert "notice not delivered (server file)" in django.log.read_text()
    # The tag the application gave, not an edited variant's: wsgi_site, without nginx.
    direct = django.get("/accel", IN_RUSSIA)
    assert direct.headers["etag"] == '"file-v1"'
    germany = httpx.get(nginx_in_front + "/accel", headers={**sent, "X-Forwarded-For": IN_GERMANY})
    assert germany.status_code == 200
    assert germany.content == PAGE

"""The same scenarios against real Flask, Django, Starlette and FastAPI applications."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from compliance import asgi, wsgi
from compliance.engine import Engine
from compliance.geo import Location
from compliance.testing import FixedGeolocator

APPS = Path(__file__).resolve().parent / "apps"
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))

import compliance_test_sites as sites  # noqa: E402

EXAMPLES = [Path(__file__).parent / "fixtures" / "examples"]  # block + header rules

RU, DE = "192.0.2.1", "192.0.2.2"
ASIDE = 'data-compliance-rule="ru-undesirable-organization"'
BLOCKED = "/news/2024/withdrawn-article.html"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


Get = Callable[..., Answer]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_paths(
        EXAMPLES,
        packs=["russia"],
        geolocator=FixedGeolocator({RU: Location.of("RU"), DE: Location.of("DE")}),
    )


@pytest.fixture(scope="module")
def file_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sites.write_file(str(tmp_path_factory.mktemp("site")))


def wsgi_get(app: Any) -> Get:
    client = Client(app)

    def get(path: str, ip: str, host: str = "www.example.org", accept: str = "text/html") -> Answer:
        response = client.get(
            path,
            base_url=f"http://{host}",
            headers={"Accept": accept, "Accept-Encoding": "gzip"},
            environ_base={"REMOTE_ADDR": ip},
        )
        body = response.get_data()
        response.close()
        headers = {k.lower(): v for k, v in response.headers.items()}
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return Answer(response.status_code, headers, body.decode())

    return get


def asgi_get(app: Any) -> Get:
    def get(path: str, ip: str, host: str = "www.example.org", accept: str = "text/html") -> Answer:
        async def fetch() -> Answer:
            transport = httpx.ASGITransport(app=app, client=(ip, 12345))
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
                r = await c.get(path, headers={"Accept": accept, "Accept-Encoding": "gzip"})
                return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.text)

        return asyncio.run(fetch())

    return get


@pytest.fixture(scope="module", params=["flask", "django", "starlette", "fastapi"])
def site(request: pytest.FixtureRequest, engine: Engine, file_path: str) -> Iterator[Get]:
    name = request.param
    if name == "flask":
        yield wsgi_get(wsgi.ComplianceMiddleware(sites.flask_app(file_path), engine))
    elif name == "django":
        yield wsgi_get(wsgi.ComplianceMiddleware(sites.django_app(file_path), engine))
    elif name == "starlette":
        yield asgi_get(asgi.ComplianceMiddleware(sites.starlette_app(file_path), engine))
    else:
        app = sites.fastapi_app(file_path)
        # Added last, so outermost: it sees what GZipMiddleware produced.
        app.add_middleware(asgi.ComplianceMiddleware, engine=engine)
        yield asgi_get(app)


def test_notice_for_a_russian_reader(site: Get) -> None:
    answer = site("/", RU)
    assert answer.status == 200
    assert ASIDE in answer.text
    assert answer.text.index(ASIDE) < answer.text.index("</body>")
    assert "private" in answer.headers["cache-control"]


def test_nothing_for_a_german_reader(site: Get) -> None:
    answer = site("/", DE)
    assert answer.status == 200
    assert answer.text == sites.page()
    assert "private" in answer.headers["cache-control"]


def test_block_451(site: Get) -> None:
    answer = site(BLOCKED, DE, host="news.example")
    assert answer.status == 451
    assert answer.headers["link"] == '<https://www.example.org/legal>; rel="blocked-by"'
    assert "Deutschland" in answer.text
    json_answer = site(BLOCKED, DE, host="news.example", accept="application/json")
    assert json_answer.status == 451
    assert json_answer.headers["content-type"] == "application/json"
    assert site(BLOCKED, RU, host="news.example").status == 200


def test_json_untouched(site: Get) -> None:
    answer = site("/api", RU)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert ASIDE not in answer.text
    assert "cache-control" not in answer.headers
    assert answer.text.replace(" ", "") == sites.JSON.replace(" ", "")


def test_streaming_response(site: Get) -> None:
    answer = site("/stream", RU)
    assert ASIDE in answer.text
    assert answer.text.replace(
        answer.text[answer.text.index("<aside") : answer.text.index("</aside>") + 8], ""
    ) == sites.page(20)


def test_gzip_response(site: Get) -> None:
    answer = site("/gz", RU)
    assert answer.headers.get("content-encoding") == "gzip"
    assert ASIDE in answer.text
    assert "Lorem ipsum" in answer.text


def test_file_response(site: Get) -> None:
    answer = site("/file", RU)
    assert answer.status == 200
    assert ASIDE in answer.text
    assert site("/file", DE).text == sites.page(5)


def test_django_gzip_middleware_streaming(engine: Engine, file_path: str) -> None:
    """GZipMiddleware compresses Django's streaming responses too; we edit them anyway."""
    get = wsgi_get(wsgi.ComplianceMiddleware(sites.django_app(file_path), engine))
    answer = get("/stream", RU)
    assert answer.headers.get("content-encoding") == "gzip"
    assert ASIDE in answer.text


# -- "See it in one minute" (docs/getting-started.md), as written --------------------------------

GETTING_STARTED = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"


def _one_minute_sample(heading: str) -> str:
    text = GETTING_STARTED.read_text(encoding="utf-8")
    section = text[text.index("## See it in one minute") :]
    section = section[section.index(f"### {heading}") :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def _simulated(app: Any, peer: str, simulate: str | None, query: str = "") -> str:
    headers = {"X-Compliance-Simulate": simulate} if simulate else {}
    url = f"http://127.0.0.1:8000/{query}"
    if inspect.iscoroutinefunction(type(app).__call__):

        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport) as client:
                return await client.get(url, headers=headers)

        return asyncio.run(run()).text
    with httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr=peer)) as client:
        return client.get(url, headers=headers).text


@pytest.mark.parametrize("heading", ["Flask", "FastAPI and Starlette", "Plain WSGI or ASGI"])
def test_see_it_in_one_minute(heading: str) -> None:
    namespace: dict[str, Any] = {"__name__": "news"}
    exec(compile(_one_minute_sample(heading), heading, "exec"), namespace)
    app = namespace["app"]
    assert ASIDE in _simulated(app, "127.0.0.1", "RU")
    assert 'lang="uk"' in _simulated(app, "127.0.0.1", None, "?compliance-simulate=UA-43")
    assert ASIDE not in _simulated(app, "127.0.0.1", "DE")
    assert ASIDE not in _simulated(app, "127.0.0.1", None)
    # from any other address the header is ignored
    assert ASIDE not in _simulated(app, "203.0.113.7", "RU")


def test_see_it_in_one_minute_django(tmp_path: Path) -> None:
    (tmp_path / "news.py").write_text(_one_minute_sample("Django"), encoding="utf-8")
    code = (
        "import news\n"
        "from django.test import Client\n"
        "def get(ip):\n"
        "    page = Client(REMOTE_ADDR=ip).get('/', headers={'X-Compliance-Simulate': 'RU'})\n"
        "    return int('ru-undesirable-organization' in page.content.decode())\n"
        "print(get('127.0.0.1'), get('203.0.113.7'))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]

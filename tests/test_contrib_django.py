"""compliance.contrib.django with real Django: settings MIDDLEWARE and COMPLIANCE, the template
tag, system checks, and both the WSGI handler (under gunicorn) and the ASGI handler (under
uvicorn). Django's settings are process-wide, so the project runs in its own processes."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytest.importorskip("django")

RUSSIAN, GERMAN = "77.88.55.88", "81.169.145.105"  # by the embedded lookup
NOTICE = 'data-compliance-rule="ru-undesirable-organization"'

SETTINGS = """
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "compliance-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "mysite.urls"
USE_TZ = True
INSTALLED_APPS = ["compliance.contrib.django"]
MIDDLEWARE = ["compliance.contrib.django.ComplianceMiddleware"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
COMPLIANCE = {
    "packs": ["russia"],
    "variables": {"agent-instrumental": "Ивановым", "agent-genitive": "Иванова"},
    "trusted_proxies": ["127.0.0.1/32"],
    "decision_path": "/.well-known/compliance",
}
"""

URLS = """
import asyncio

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.asyncio import async_unsafe
from django.views.decorators.cache import cache_page

PAGE = "<!DOCTYPE html><html lang='en'><body><main><h1>News</h1><p>Story</p></main></body></html>"


def index(request):
    return HttpResponse(PAGE)


def placed(request):
    return render(request, "placed.html")


def decision(request):
    d = request.compliance
    return JsonResponse({"country": d.location.country, "notices": [n.rule_id for n in d.notices]})


def stream(request):
    def body():
        yield b"<!DOCTYPE html><html lang='en'><body><main><h1>News</h1>"
        for i in range(50):
            yield b"<p>paragraph %d</p>" % i
        yield b"</main></body></html>"

    return StreamingHttpResponse(body(), content_type="text/html; charset=utf-8")


@async_unsafe
def sync_only(row):
    # Django guards its database layer with async_unsafe: it raises SynchronousOnlyOperation
    # when called in the event loop's thread, as a queryset iterated in a generator would.
    return b"<li>row %d</li>" % row


def db_stream(request):
    def body():
        yield b"<!DOCTYPE html><html lang='en'><body><main><h1>News</h1><ul>" + sync_only(0)
        for i in range(1, 50):
            yield sync_only(i)
        yield b"</ul><p>paragraph 49</p></main></body></html>"

    return StreamingHttpResponse(body(), content_type="text/html; charset=utf-8")


async def astream(request):
    async def body():
        yield b"<!DOCTYPE html><html lang='en'><body><main><h1>News</h1>"
        for i in range(50):
            await asyncio.sleep(0)
            yield b"<p>paragraph %d</p>" % i
        yield b"</main></body></html>"

    return StreamingHttpResponse(body(), content_type="text/html; charset=utf-8")


async def async_view(request):
    await asyncio.sleep(0)
    return HttpResponse(PAGE)


def json_view(request):
    return JsonResponse({"notices": "none here"})


def validated(request):
    request.headers.get("If-None-Match")  # request.headers is cached from here on
    response = HttpResponse(PAGE)
    response["ETag"] = '"v1"'
    response["Last-Modified"] = "Mon, 01 Jan 2024 00:00:00 GMT"
    return response


def outer_sees(get_response):
    # A middleware listed before ComplianceMiddleware: what request.headers says after.

    def middleware(request):
        response = get_response(request)
        response["X-Outer-Saw"] = request.headers.get("If-None-Match", "-")
        return response

    return middleware


@cache_page(60)
def cached(request):
    return render(request, "placed.html")


def tagged(request):
    request.compliance_tags = ["foreign-agent"]
    return HttpResponse(PAGE)


urlpatterns = [
    path("", index),
    path("placed", placed),
    path("decision", decision),
    path("stream", stream),
    path("astream", astream),
    path("dbstream", db_stream),
    path("async", async_view),
    path("api", json_view),
    path("tagged", tagged),
    path("validated", validated),
    path("cached", cached),
]
"""

PLACED = """{% load compliance %}<!DOCTYPE html><html lang="en"><body><header>Site</header>
{% compliance_notices %}<main><h1>Story</h1>{% compliance_notices %}</main></body></html>"""

WSGI = """
import gzip
import json
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
"""

ASGI = """
import gzip
import json
import os
from django.core.asgi import get_asgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_asgi_application()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("django-project")
    (root / "mysite").mkdir()
    (root / "templates").mkdir()
    (root / "mysite" / "__init__.py").write_text("", encoding="utf-8")
    (root / "mysite" / "settings.py").write_text(SETTINGS, encoding="utf-8")
    (root / "mysite" / "urls.py").write_text(URLS, encoding="utf-8")
    (root / "mysite" / "wsgi.py").write_text(WSGI, encoding="utf-8")
    (root / "mysite" / "asgi.py").write_text(ASGI, encoding="utf-8")
    (root / "templates" / "placed.html").write_text(PLACED, encoding="utf-8")
    return root


REPO = Path(__file__).resolve().parents[1]


def _env(project: Path, settings: str = "mysite.settings") -> dict[str, str]:
    # This checkout's compliance, not whichever one is installed.
    paths = [
        str(project),
        str(REPO),
        *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p),
    ]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "DJANGO_SETTINGS_MODULE": settings}


def _run(
    project: Path, *args: str, settings: str = "mysite.settings"
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the project, with its settings; output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=_env(project, settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(
    command: list[str], project: Path, port: int, settings: str = "mysite.settings"
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        command,
        cwd=project,
        env=_env(project, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the server exited:\n{output}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


@contextmanager
def _served(kind: str, project: Path, settings: str = "mysite.settings") -> Iterator[str]:
    """The project under gunicorn (``"wsgi"``) or uvicorn (``"asgi"``): its base URL."""
    port = _free_port()
    if kind == "wsgi":
        pytest.importorskip("gunicorn")
        command = [
            sys.executable, "-m", "gunicorn", "mysite.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning",
        ]  # fmt: skip
    else:
        pytest.importorskip("uvicorn")
        command = [
            sys.executable, "-m", "uvicorn", "mysite.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
    process = _serve(command, project, port, settings)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, project: Path) -> Iterator[str]:
    with _served(request.param, project) as base:
        yield base


def get(server: str, path: str, ip: str) -> httpx.Response:
    return httpx.get(server + path, headers={"X-Forwarded-For": ip}, timeout=30)


@pytest.mark.slow
def test_the_middleware_from_settings_injects_the_notice(server: str) -> None:
    russian = get(server, "/", RUSSIAN)
    assert russian.status_code == 200
    assert russian.text.count(NOTICE) == 1
    assert russian.text.index("</main>") < russian.text.index(NOTICE)  # body_end
    assert "private" in russian.headers["cache-control"]
    length = russian.headers.get("content-length")
    assert length is None or int(length) == len(russian.content)
    german = get(server, "/", GERMAN)
    assert german.status_code == 200
    assert NOTICE not in german.text


@pytest.mark.slow
def test_request_compliance_holds_the_decision(server: str) -> None:
    assert get(server, "/decision", RUSSIAN).json() == {
        "country": "RU",
        "notices": ["ru-undesirable-organization"],
    }
    assert get(server, "/decision", GERMAN).json() == {"country": "DE", "notices": []}


@pytest.mark.slow
def test_the_template_tag_places_the_notice_once(server: str) -> None:
    page = get(server, "/placed", RUSSIAN).text
    assert page.count(NOTICE) == 1
    assert page.index("<header>Site</header>") < page.index(NOTICE) < page.index("<main>")
    assert NOTICE not in get(server, "/placed", GERMAN).text


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/stream", "/astream", "/async", "/dbstream"])
def test_streaming_and_async_views(server: str, path: str) -> None:
    page = get(server, path, RUSSIAN)
    assert page.status_code == 200
    assert page.text.count(NOTICE) == 1
    assert page.text.rstrip().endswith("</html>")
    assert "paragraph 49" in page.text or path == "/async"
    assert NOTICE not in get(server, path, GERMAN).text


@pytest.mark.slow
def test_settings_options_reach_the_core(server: str) -> None:
    answer = get(server, "/.well-known/compliance", RUSSIAN)
    assert answer.status_code == 200
    assert answer.json()["notices"][0]["rule"] == "ru-undesirable-organization"
    assert "private" in answer.headers["cache-control"]
    api = get(server, "/api", RUSSIAN)
    assert api.json() == {"notices": "none here"}  # JSON passes through untouched


@pytest.mark.slow
def test_a_view_tags_its_content(server: str) -> None:
    page = get(server, "/tagged", RUSSIAN).text
    label = page.index('data-compliance-rule="ru-foreign-agent-label"')
    assert page.index("</h1>") < label < page.index("<p>Story")  # after_heading
    assert 'data-compliance-rule="ru-foreign-agent-label"' not in get(server, "/", RUSSIAN).text


# -- manage.py check ---------------------------------------------------------------------------


def _check(project: Path, name: str, extra: str) -> subprocess.CompletedProcess[str]:
    (project / "mysite" / f"{name}.py").write_text(
        f"from mysite.settings import *  # noqa: F403\n{extra}\n", encoding="utf-8"
    )
    return _run(project, "-m", "django", "check", settings=f"mysite.{name}")


def test_check_passes_for_a_good_set_up(project: Path) -> None:
    done = _check(project, "settings_good", "")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_reports_rule_file_errors_as_file_line_col(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    titel: y\n", encoding="utf-8")
    done = _check(project, "settings_badrules", f"COMPLIANCE = {{'rules': [{str(tmp_path)!r}]}}")
    assert done.returncode == 1
    assert f"(compliance.E002) {bad}:3:5: rules[0]: missing key 'jurisdictions'" in done.stderr
    assert f"(compliance.E002) {bad}:4:5: rules[0].titel: unknown key 'titel'" in done.stderr


def test_check_reports_a_missing_database(project: Path) -> None:
    done = _check(
        project,
        "settings_nodb",
        "COMPLIANCE = {**COMPLIANCE, 'geoip_db': '/nonexistent/City.mmdb'}",
    )
    assert done.returncode == 1
    assert "(compliance.E004) settings.COMPLIANCE['geoip_db']: " in done.stderr
    assert "/nonexistent/City.mmdb" in done.stderr
    assert "geoipupdate" in done.stderr


def test_check_reports_unknown_keys_and_packs(project: Path) -> None:
    done = _check(project, "settings_typo", "COMPLIANCE = {'trusted_proxy': ['10.0.0.0/8']}")
    assert done.returncode == 1
    assert (
        "(compliance.E001) settings.COMPLIANCE: unknown key 'trusted_proxy' "
        "(did you mean 'trusted_proxies'?)" in done.stderr
    )
    done = _check(project, "settings_pack", "COMPLIANCE = {'packs': ['narnia']}")
    assert done.returncode == 1
    assert "(compliance.E003)" in done.stderr
    assert "narnia" in done.stderr


def test_check_reports_bad_option_values(project: Path) -> None:
    """A bad value is reported by manage.py check, not first by a request (E001)."""
    done = _check(project, "settings_badmode", "COMPLIANCE = {**COMPLIANCE, 'fail_mode': 'bogus'}")
    assert done.returncode == 1
    assert (
        "(compliance.E001) settings.COMPLIANCE: fail_mode must be 'open' or 'closed', "
        "not 'bogus'" in done.stderr
    )
    done = _check(
        project,
        "settings_badproxy",
        "COMPLIANCE = {**COMPLIANCE, 'trusted_proxies': ['not-a-network']}",
    )
    assert done.returncode == 1
    assert "(compliance.E001) settings.COMPLIANCE: " in done.stderr
    assert "'not-a-network' is not an IP address or CIDR range" in done.stderr


@pytest.mark.parametrize("option", ["trusted_proxies", "debug_networks"])
def test_check_names_the_network_option(project: Path, option: str) -> None:
    done = _check(project, f"settings_bad_{option}", f"COMPLIANCE = {{{option!r}: ['zzz']}}")
    assert done.returncode == 1
    assert (
        f"(compliance.E001) settings.COMPLIANCE: {option}: 'zzz' is not an IP address or CIDR range"
        in done.stderr
    )


def test_check_warns_about_wiring(project: Path) -> None:
    done = _check(
        project,
        "settings_unwired",
        "MIDDLEWARE = []\nTEMPLATES = [{**TEMPLATES[0], 'OPTIONS': {}}]",
    )
    assert done.returncode == 0
    assert "(compliance.W001)" in done.stderr
    assert "(compliance.W003)" in done.stderr


def test_check_reads_the_rule_files_with_the_sites_variables(project: Path) -> None:
    """A misspelt variable stops the server at start-up; ``manage.py check`` passed it
    (it linted without the site's variables; found in review)."""
    done = _check(
        project,
        "settings_badvariable",
        "COMPLIANCE = {**COMPLIANCE, 'variables': {**COMPLIANCE['variables'], "
        "'agent-instrumentl': 'x'}}",
    )
    assert done.returncode == 1
    assert (
        "(compliance.E001) settings.COMPLIANCE['variables']: variables 'agent-instrumentl' "
        "are not used by any rule" in done.stderr
    )
    # A required variable left unset is noted (an INFO line: never a failure).
    done = _check(project, "settings_novariables", "COMPLIANCE = {'packs': ['russia']}")
    assert done.returncode == 0, done.stderr
    assert "(compliance.I001)" in done.stdout + done.stderr


def test_check_warns_when_the_site_cache_would_store_edited_pages(project: Path) -> None:
    """Django's per-site cache listed before the middleware stores the edited page, and the
    middleware adds its notices again to the copy FetchFromCacheMiddleware serves (found in
    review: two notices for the second reader in Russia behind a CDN)."""
    done = _check(
        project,
        "settings_sitecache",
        "MIDDLEWARE = ['django.middleware.cache.UpdateCacheMiddleware', *MIDDLEWARE, "
        "'django.middleware.cache.FetchFromCacheMiddleware']",
    )
    assert done.returncode == 0, done.stderr
    assert "(compliance.W005) django.middleware.cache.UpdateCacheMiddleware comes before" in (
        done.stderr
    )
    done = _check(
        project,
        "settings_sitecache_after",
        "MIDDLEWARE = [*MIDDLEWARE, 'django.middleware.cache.UpdateCacheMiddleware', "
        "'django.middleware.cache.FetchFromCacheMiddleware']",
    )
    assert "compliance.W005" not in done.stderr


def test_check_knows_the_middleware_by_its_module_path(project: Path) -> None:
    """Listed as ``compliance.contrib.django.middleware.ComplianceMiddleware`` (where the
    class is defined) it works, and the check said it was missing (found in review)."""
    done = _check(
        project,
        "settings_modulepath",
        "MIDDLEWARE = [m.replace('compliance.contrib.django.ComplianceMiddleware', "
        "'compliance.contrib.django.middleware.ComplianceMiddleware') for m in MIDDLEWARE]",
    )
    assert done.returncode == 0, done.stderr
    assert "compliance.W001" not in done.stderr


def test_check_warns_when_django_reads_the_forwarded_host_and_rules_do_not(
    project: Path,
) -> None:
    done = _check(project, "settings_xfh", "USE_X_FORWARDED_HOST = True")
    assert done.returncode == 0
    assert "(compliance.W004)" in done.stderr
    assert "'forwarded_host': True" in done.stderr
    done = _check(
        project,
        "settings_xfh_on",
        "USE_X_FORWARDED_HOST = True\n"
        "COMPLIANCE = {**COMPLIANCE, 'trusted_proxies': ['10.0.0.0/8'], 'forwarded_host': True}",
    )
    assert done.returncode == 0, done.stderr
    assert "compliance.W004" not in done.stderr


def test_bad_settings_stop_the_server_at_start_up(project: Path) -> None:
    (project / "mysite" / "settings_broken.py").write_text(
        "from mysite.settings import *  # noqa: F403\nCOMPLIANCE = {'fail_mode': 'sideways'}\n",
        encoding="utf-8",
    )
    code = (
        "import django; django.setup()\n"
        "from django.core.handlers.wsgi import WSGIHandler\n"
        "WSGIHandler()\n"
    )
    done = _run(project, "-c", code, settings="mysite.settings_broken")
    assert done.returncode == 1
    assert "ImproperlyConfigured: settings.COMPLIANCE: " in done.stderr
    assert "fail_mode" in done.stderr


def test_a_sync_stream_using_sync_only_code_under_asgi(project: Path) -> None:
    """Under Django's ASGI handler (here its AsyncClient) the middleware reads the start of a
    sync streaming response in a thread, as Django does, never in the event loop: the
    generator may use the database (async_unsafe code)."""
    code = (
        "import asyncio, json, warnings, django\n"
        "warnings.simplefilter('ignore')  # Django's note that it consumes a sync iterator\n"
        "django.setup()\n"
        "from django.test import AsyncClient\n"
        "async def main():\n"
        "    out = {}\n"
        f"    for ip in ({RUSSIAN!r}, {GERMAN!r}):\n"
        "        r = await AsyncClient().get('/dbstream', headers={'X-Forwarded-For': ip})\n"
        "        body = b''.join([c async for c in r])\n"
        "        out[ip] = [r.status_code, body.decode()]\n"
        "    print(json.dumps(out))\n"
        "asyncio.run(main())\n"
    )
    done = _run(project, "-c", code)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    status, page = answers[RUSSIAN]
    assert status == 200
    assert page.count(NOTICE) == 1
    assert "<li>row 49</li>" in page
    assert page.rstrip().endswith("</html>")
    assert answers[GERMAN][0] == 200
    assert NOTICE not in answers[GERMAN][1]


CONDITIONAL_OUTSIDE = """
import asyncio, json, django
django.setup()
from django.test import AsyncClient, Client
RU, DE = {RUSSIAN!r}, {GERMAN!r}
DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
out = {{}}
def get(ip, path, **headers):
    r = Client().get(path, headers={{"X-Forwarded-For": ip, **headers}})
    return [r.status_code, r.get("ETag"), r.get("X-Outer-Saw"), {NOTICE!r} in r.content.decode()]
first = get(RU, "/")
out["plain"] = [first, get(RU, "/", If_None_Match=first[1])]
first = get(RU, "/validated")
out["own"] = get(RU, "/validated", If_None_Match=first[1])
out["unedited"] = get(RU, "/validated", If_None_Match='"v1"')
out["date"] = get(RU, "/validated", If_Modified_Since=DATE)
out["german"] = get(DE, "/validated", If_None_Match='"v1"')
async def revalidate():
    headers = {{"X-Forwarded-For": RU, "If-None-Match": first[1]}}
    return (await AsyncClient().get("/validated", headers=headers)).status_code
out["async"] = asyncio.run(revalidate())
print(json.dumps(out))
"""


def test_conditional_get_listed_before_sees_the_readers_validators(project: Path) -> None:
    """ConditionalGetMiddleware outside ComplianceMiddleware answers 304 to a reader with a
    notice whose If-None-Match names the copy they got (the ETag it computed over the edited
    page, or the variant ETag the middleware set), and only then."""
    (project / "mysite" / "settings_conditional.py").write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "MIDDLEWARE = ['mysite.urls.outer_sees', 'django.middleware.http.ConditionalGetMiddleware',"
        " *MIDDLEWARE]\n",
        encoding="utf-8",
    )
    done = _run(
        project,
        "-c",
        CONDITIONAL_OUTSIDE.format(RUSSIAN=RUSSIAN, GERMAN=GERMAN, NOTICE=NOTICE),
        settings="mysite.settings_conditional",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    first, again = out["plain"]
    assert first[0] == 200
    assert first[3]  # the notice, and an ETag computed over the edited page
    assert again[0] == 304
    status, etag, saw, notice = out["own"]
    assert status == 304
    assert etag.startswith('"v1-')
    assert saw == etag  # request.headers is the reader's again, not the core's translation
    status, etag, saw, notice = out["unedited"]
    assert (status, notice, saw) == (200, True, '"v1"')  # a copy without the notice
    assert etag.startswith('"v1-')
    status, _, saw, notice = out["date"]
    assert (status, notice) == (200, True)  # a date names no variant: no 304
    assert out["german"][0] == 304
    assert out["async"] == 304


CONDITIONAL_INSIDE = """
import json, django
django.setup()
from django.test import Client
def get(path, **headers):
    r = Client().get(path, headers={{"X-Forwarded-For": {RUSSIAN!r}, **headers}})
    return [r.status_code, r.get("ETag"), {NOTICE!r} in r.content.decode()]
first = get("/placed")
print(json.dumps([first, get("/placed", If_None_Match=first[1])]))
"""


def test_a_page_that_rendered_its_notices_revalidates_through_conditional_get(
    project: Path,
) -> None:
    """ConditionalGetMiddleware listed after ComplianceMiddleware tags the page its template
    rendered, notices in: the reader revalidates that copy to a 304 (its tag used to be
    the application's, which the middleware does not let through for a reader with
    notices, so every revalidation rendered the page again)."""
    (project / "mysite" / "settings_conditional_inside.py").write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "MIDDLEWARE = [*MIDDLEWARE, 'django.middleware.http.ConditionalGetMiddleware']\n",
        encoding="utf-8",
    )
    done = _run(
        project,
        "-c",
        CONDITIONAL_INSIDE.format(RUSSIAN=RUSSIAN, NOTICE=NOTICE),
        settings="mysite.settings_conditional_inside",
    )
    assert done.returncode == 0, done.stderr
    first, again = json.loads(done.stdout)
    assert first[0] == 200
    assert first[2]  # the template's notice
    assert again[0] == 304
    assert again[1] == first[1]


def test_metrics_add_up_the_process_middlewares(project: Path) -> None:
    code = (
        "import json, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "from compliance.contrib.django import metrics\n"
        f"for ip in ({RUSSIAN!r}, {GERMAN!r}):\n"
        "    Client(HTTP_X_FORWARDED_FOR=ip).get('/')\n"
        "print(json.dumps(metrics()))\n"
    )
    done = _run(project, "-c", code)
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout)
    assert counted["decisions"] == 2
    assert counted["notices_injected"] == {"ru-undesirable-organization|RU": 1}


def test_metrics_keep_the_counts_of_middlewares_gone(project: Path) -> None:
    """Django's test client makes a handler, middlewares and all, per client: once the
    garbage collector took them, metrics() no longer counted their requests, and
    Prometheus read the drop as a counter reset."""
    code = (
        "import gc, json, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "from compliance.contrib.django import metrics\n"
        "seen = []\n"
        f"for ip in ({RUSSIAN!r}, {GERMAN!r}, {RUSSIAN!r}):\n"
        "    Client(HTTP_X_FORWARDED_FOR=ip).get('/')\n"
        "    gc.collect()\n"
        "    seen.append(metrics())\n"
        "print(json.dumps(seen))\n"
    )
    done = _run(project, "-c", code)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert [s["decisions"] for s in seen] == [1, 2, 3]
    assert seen[-1]["notices_injected"] == {"ru-undesirable-organization|RU": 2}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_head_in_the_documented_order_has_the_gets_headers(project: Path, kind: str) -> None:
    """GZipMiddleware and CommonMiddleware listed before ComplianceMiddleware (the order
    docs/integrations.md shows), under gunicorn and uvicorn: Django's view answers a HEAD with
    the GET's body, which those middlewares measure and compress after ours. The HEAD has the
    GET's length, coding, tag and Vary (its length was the unedited page's, its tag and Vary
    those of a page of unknown language)."""
    (project / "mysite" / "settings_documented.py").write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "MIDDLEWARE = ['django.middleware.gzip.GZipMiddleware',"
        " 'django.middleware.common.CommonMiddleware', *MIDDLEWARE]\n",
        encoding="utf-8",
    )
    with _served(kind, project, "mysite.settings_documented") as base:
        for coding in ("identity", "gzip"):
            sent = {"X-Forwarded-For": RUSSIAN, "Accept-Encoding": coding}
            page = httpx.get(base + "/validated", headers=sent, timeout=30)
            head = httpx.head(base + "/validated", headers=sent, timeout=30)
            assert page.text.count(NOTICE) == 1
            assert head.content == b""
            names = ["content-encoding", "etag", "vary", "cache-control"]
            if coding == "identity":  # GZipMiddleware pads with random bytes (BREACH)
                names.append("content-length")
            for name in names:
                assert head.headers.get(name) == page.headers.get(name), (coding, name)


def test_cache_page_does_not_keep_a_page_the_template_tag_put_notices_in(project: Path) -> None:
    """``@cache_page`` on a view whose template renders the notices: the reader in Russia's
    page (notices in) is not kept, so the next reader in Germany does not get the notices
    and the next in Russia does not get them twice; a page without notices is kept, and
    the middleware puts them in for a reader in Russia served from the cache."""
    code = (
        "import json, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "out = []\n"
        f"for ip in ({RUSSIAN!r}, {GERMAN!r}, {RUSSIAN!r}, {GERMAN!r}):\n"
        "    r = Client(HTTP_X_FORWARDED_FOR=ip).get('/cached')\n"
        f"    out.append(r.content.decode().count({NOTICE!r}))\n"
        "print(json.dumps(out))\n"
    )
    done = _run(project, "-c", code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [1, 0, 1, 0]


def test_check_warns_when_whitenoise_serves_pages_before_the_middleware(project: Path) -> None:
    """WhiteNoise answers the files it serves itself, so a middleware listed after it never
    sees them. Listed first (as WhiteNoise's own docs ask) with ``WHITENOISE_ROOT`` or
    ``WHITENOISE_INDEX_FILE``, the pages it serves reached readers in Russia without their
    notices, and nothing said so (found in review)."""
    pytest.importorskip("whitenoise")
    first = "MIDDLEWARE = ['whitenoise.middleware.WhiteNoiseMiddleware', *MIDDLEWARE]\n"
    for name, extra in (
        ("root", "WHITENOISE_ROOT = BASE_DIR"),
        ("index", "WHITENOISE_INDEX_FILE = True"),
    ):
        done = _check(project, f"settings_whitenoise_{name}", first + extra)
        assert done.returncode == 0, done.stderr
        assert (
            "(compliance.W006) whitenoise.middleware.WhiteNoiseMiddleware comes before "
            "compliance.contrib.django.ComplianceMiddleware"
        ) in done.stderr
        assert extra.split()[0] in done.stderr
    # Serving static assets only (no pages), or listed after the middleware: nothing to say.
    done = _check(project, "settings_whitenoise_assets", first)
    assert "compliance.W006" not in done.stderr
    done = _check(
        project,
        "settings_whitenoise_after",
        "MIDDLEWARE = [*MIDDLEWARE, 'whitenoise.middleware.WhiteNoiseMiddleware']\n"
        "WHITENOISE_ROOT = BASE_DIR",
    )
    assert "compliance.W006" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_pages_whitenoise_serves_after_the_middleware_get_their_notices(
    project: Path, tmp_path: Path, kind: str
) -> None:
    """The order docs/integrations.md gives with WhiteNoise, under gunicorn and uvicorn: a
    page WhiteNoise serves (an index file, a precompressed ``.gz`` copy) gets the notice for
    a reader in Russia and revalidates; a style sheet stays WhiteNoise's own."""
    pytest.importorskip("whitenoise")
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    page = (
        "<!DOCTYPE html><html lang='en'><body><main><h1>Static</h1><p>Text</p></main></body></html>"
    )
    (site / "docs" / "index.html").write_text(page, encoding="utf-8")
    (site / "about.html").write_text(page, encoding="utf-8")
    (site / "about.html.gz").write_bytes(gzip.compress(page.encode()))
    (site / "style.css").write_text("body { color: black }", encoding="utf-8")
    (project / "mysite" / "settings_whitenoise.py").write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "MIDDLEWARE = [*MIDDLEWARE, 'whitenoise.middleware.WhiteNoiseMiddleware']\n"
        f"WHITENOISE_ROOT = {str(site)!r}\n"
        "WHITENOISE_INDEX_FILE = True\n",
        encoding="utf-8",
    )
    with _served(kind, project, "mysite.settings_whitenoise") as base:
        for path in ("/docs/", "/about.html"):
            for ip, notices in ((RUSSIAN, 1), (GERMAN, 0)):
                sent = {"X-Forwarded-For": ip, "Accept-Encoding": "gzip"}
                first = httpx.get(base + path, headers=sent, timeout=30)
                assert first.status_code == 200, (path, ip)
                assert first.text.count(NOTICE) == notices, (path, ip)
                assert "private" in first.headers["cache-control"]
                again = httpx.get(
                    base + path,
                    headers={**sent, "If-None-Match": first.headers["etag"]},
                    timeout=30,
                )
                assert again.status_code == 304, (path, ip)
        # (as a browser asks for one, and as a client that does not say what it loads)
        for sent in ({"Sec-Fetch-Dest": "style"}, {}):
            sent = {"X-Forwarded-For": RUSSIAN, **sent}
            sheet = httpx.get(base + "/style.css", headers=sent, timeout=30)
            assert sheet.text == "body { color: black }"
            again = httpx.get(
                base + "/style.css",
                headers={**sent, "If-None-Match": sheet.headers["etag"]},
                timeout=30,
            )
            assert again.status_code == 304

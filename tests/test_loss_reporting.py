"""What an operator sees when a decided notice does not reach the page: one WARNING on
``compliance.middleware`` naming the cause and the rule ids, the loss counted once per notice
under that cause (in the snapshot and in Prometheus, under the name docs/operations.md
gives), nothing counted as lost for a notice left out on purpose, and log lines a hostile
request cannot forge or flood. On both adapters."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from compliance import core, testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.inject import Injector
from compliance.metrics import Snapshot
from compliance.testing import TestResponse
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RU = "192.0.2.1"
RULES = """\
version: 1
rules:
  - id: ru-notice
    title: a notice for readers in Russia
    jurisdictions: [RU]
    notice:
      default_locale: en
      text:
        en: A notice for readers in Russia.
  - id: ru-footer
    title: a second notice, at the end of the page
    jurisdictions: [RU]
    notice:
      default_locale: en
      placement: body_end
      text:
        en: A footer for readers in Russia.
"""
WITHHOLDING = """\
version: 1
rules:
  - id: ru-order
    title: a court order withholds one comment in Russia
    jurisdictions: [RU]
    withhold:
      marks: [order-7]
      default_locale: en
      text:
        en: Withheld in your country in response to a legal demand.
    notice:
      default_locale: en
      text:
        en: A notice for readers in Russia.
"""
HTML = ("Content-Type", "text/html; charset=utf-8")
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Story</p></body></html>\n"
# Streamed: the headers go out with the first chunks, long before the end of the body.
STREAM = [
    b"<!DOCTYPE html><html><head><title>s</title></head><body>",
    *(b"<p>paragraph %d</p>" % i + b" " * 4000 for i in range(6)),
    b"</body></html>\n",
]
Headers = list[tuple[str, str]]
Call = Callable[..., tuple[TestResponse, Snapshot]]


@pytest.fixture(autouse=True)
def _every_line_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "_seen", {})


def _wsgi_app(status: int, headers: Headers, chunks: list[bytes]) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response(f"{status} X", list(headers))
        return iter(list(chunks))

    return app


def _asgi_app(status: int, headers: Headers, chunks: list[bytes]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


@pytest.fixture(params=["wsgi", "asgi"])
def call(request: pytest.FixtureRequest, make_engine: Callable[..., Engine]) -> Call:
    engines: dict[str, Engine] = {}

    def run(
        headers: Headers,
        chunks: list[bytes],
        *,
        status: int = 200,
        rules: str = RULES,
        path: str = "/story",
        **options: Any,
    ) -> tuple[TestResponse, Snapshot]:
        engine = engines.get(rules) or engines.setdefault(rules, make_engine(rules, {RU: "RU"}))
        if request.param == "wsgi":
            wsgi = WsgiMiddleware(_wsgi_app(status, headers, chunks), engine, **options)
            environ = testing.wsgi_environ(path, peer=RU)
            return testing.call_wsgi(wsgi, environ), wsgi.metrics()
        asgi = AsgiMiddleware(_asgi_app(status, headers, chunks), engine, **options)
        scope = testing.asgi_scope(path, peer=RU)
        return testing.call_asgi(asgi, scope), asgi.metrics()

    return run


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("compliance") and r.levelno == logging.WARNING
    ]


def _fail_injector(monkeypatch: pytest.MonkeyPatch, at_call: int) -> None:
    calls = {"n": 0}

    def failing(real: Callable[..., bytes]) -> Callable[..., bytes]:
        def wrapper(self: Injector, *args: Any) -> bytes:
            calls["n"] += 1
            if calls["n"] == at_call:
                raise RuntimeError("injector exploded")
            return real(self, *args)

        return wrapper

    monkeypatch.setattr(Injector, "feed", failing(Injector.feed))
    monkeypatch.setattr(Injector, "finish", failing(Injector.finish))


# -- one WARNING naming the cause and the rules, counted once per notice ----------------------


@pytest.mark.parametrize(
    ("headers", "cause"),
    [
        ([HTML, ("Content-Range", "bytes 0-10/100")], "range"),
        ([HTML, ("Content-Encoding", "compress")], "content-coding"),
        ([HTML, ("X-Sendfile", "/srv/page.html")], "server file"),
    ],
)
def test_a_lost_notice_is_one_warning_naming_the_cause_and_the_rules(
    call: Call, caplog: pytest.LogCaptureFixture, headers: Headers, cause: str
) -> None:
    with caplog.at_level(logging.WARNING, "compliance"):
        _, metrics = call(headers, [PAGE])
    assert metrics["notices_not_delivered"] == {cause: 2}
    [line] = warnings(caplog)
    message = line.getMessage()
    assert f"({cause})" in message
    assert "ru-notice" in message
    assert "ru-footer" in message


def test_a_body_end_notice_with_no_end_tag_reaching_out_is_warned_and_counted(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    """A page that ends inside a <video> with a <div> open in it: </video> would stop at the
    <div>, and the footer after it was hidden fallback content, told inserted. Now no safe
    place is found: the page goes as it came (the fail mode), with one WARNING naming the
    reason and both rules, each counted."""
    page = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Story</p><video><div>f"
    with caplog.at_level(logging.WARNING, "compliance"):
        response, metrics = call([HTML], [page])
    assert response.body == page
    assert metrics["notices_not_delivered"] == {"not inserted": 2}
    [line] = warnings(caplog)
    message = line.getMessage()
    assert "no safe insertion point for body_end" in message
    assert "ru-footer" in message
    assert "ru-notice" in message


@pytest.mark.parametrize(
    ("mode", "at_call"),
    [("open", 1), ("open", 3), ("closed", 1)],
    ids=["open-before-the-headers", "open-after-the-headers", "closed-before-the-headers"],
)
def test_a_fault_that_loses_notices_is_counted_and_warned_as_a_fault(
    call: Call,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    at_call: int,
    mode: str,
) -> None:
    # The same fault, whenever it happens, is the same cause: "fault", with its ERROR (the
    # traceback) and one WARNING naming the notices it cost.
    _fail_injector(monkeypatch, at_call)
    with caplog.at_level(logging.WARNING, "compliance"):
        _response, metrics = call([HTML], STREAM, fail_mode=mode)
    lost = 2 - sum(metrics["notices_injected"].values())
    assert lost > 0
    assert metrics["notices_not_delivered"] == {"fault": lost}
    assert metrics["faults"] == {"editing": 1}
    [line] = warnings(caplog)
    assert "(fault)" in line.getMessage()
    assert "ru-footer" in line.getMessage()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


def _fail_scanner(monkeypatch: pytest.MonkeyPatch, at_call: int) -> None:
    """A bug in the injector's own scanning (not in rendering a notice): the injector passes
    the rest of the page through and says so."""
    calls = {"n": 0}
    scan = Injector._scan

    def failing(self: Injector, *args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == at_call:
            raise RuntimeError("scanner bug")
        return scan(self, *args)

    monkeypatch.setattr(Injector, "_scan", failing)


@pytest.mark.parametrize(
    ("mode", "at_call", "status"),
    [("open", 1, 200), ("open", 3, 200), ("closed", 1, 503)],
    ids=["open-before-the-headers", "open-after-the-headers", "closed-before-the-headers"],
)
def test_an_internal_error_in_the_injector_is_a_logged_counted_fault(
    call: Call,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    at_call: int,
    status: int,
) -> None:
    # Not "not inserted", as if the page had no place for the notices: a library fault, with
    # its traceback, in the faults counter, and the fail mode as for any other fault.
    _fail_scanner(monkeypatch, at_call)
    with caplog.at_level(logging.WARNING, "compliance"):
        response, metrics = call([HTML], STREAM, fail_mode=mode)
    assert response.status == status
    if status == 200:
        assert response.body == b"".join(STREAM)
    assert metrics["faults"] == {"editing": 1}
    assert metrics["notices_not_delivered"] == {"fault": 2}
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None
    assert "scanner bug" in str(error.exc_info[1])
    [line] = warnings(caplog)
    assert "(fault)" in line.getMessage()


def test_failing_closed_an_internal_error_after_the_headers_ends_the_response(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_scanner(monkeypatch, 3)
    response, metrics = call([HTML], STREAM, fail_mode="closed")
    assert b"paragraph 5" not in response.body
    assert metrics["faults"] == {"editing": 1}


def test_failing_closed_a_fault_after_the_headers_ends_the_response(
    call: Call, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/operations.md: failing closed, "mid-stream the response is ended", never the rest
    # of the page sent on unedited.
    _fail_injector(monkeypatch, 3)
    with caplog.at_level(logging.WARNING, "compliance"):
        response, metrics = call([HTML], STREAM, fail_mode="closed")
    assert response.status == 200
    assert b"paragraph 5" not in response.body
    # Ended with the notices still due put in: no notice lost, a page cut.
    assert b"A footer for readers in Russia." in response.body
    assert metrics["notices_not_delivered"] == {}
    assert metrics["pages_cut"] == {"fault": 1}
    [line] = warnings(caplog)
    assert "no notice lost" in line.getMessage()


def test_a_fault_when_the_response_starts_is_warned_with_its_rules(
    call: Call, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: core.Exchange, *args: Any) -> Any:
        raise RuntimeError("start exploded")

    monkeypatch.setattr(core.Exchange, "_start", broken)
    with caplog.at_level(logging.WARNING, "compliance"):
        response, metrics = call([HTML], [PAGE])
    assert response.body == PAGE
    assert metrics["notices_not_delivered"] == {"fault": 2}
    [line] = warnings(caplog)
    assert "(fault)" in line.getMessage()
    assert "ru-notice" in line.getMessage()


def test_the_prometheus_exposition_shows_the_same_loss(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus = pytest.importorskip("prometheus_client")
    from compliance.contrib.prometheus import ComplianceCollector

    _fail_injector(monkeypatch, 3)
    _, metrics = call([HTML], STREAM)
    registry = prometheus.CollectorRegistry()
    registry.register(ComplianceCollector(lambda: metrics))
    value = registry.get_sample_value("compliance_notices_not_delivered_total", {"cause": "fault"})
    assert value == metrics["notices_not_delivered"]["fault"] > 0


@pytest.mark.parametrize(
    "headers",
    [[HTML, ("Content-Range", "bytes 0-10/100")], [HTML, ("Content-Encoding", "compress")]],
    ids=["range", "content-coding"],
)
def test_a_wsgi_restart_counts_the_lost_notices_once(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture, headers: Headers
) -> None:
    # The first response fails open (its loss told when it starts); before any of its body,
    # the application starts another with exc_info (PEP 3333), which goes out as the
    # application's own iterable, unedited: one request, its two notices lost once.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", list(headers))

        def body() -> Iterator[bytes]:
            try:
                raise ValueError("the application changed its mind")
            except ValueError:
                start_response("200 OK", [HTML], sys.exc_info())
            yield PAGE

        return body()

    middleware = WsgiMiddleware(app, make_engine(RULES, {RU: "RU"}))
    with caplog.at_level(logging.WARNING, "compliance"):
        response = testing.call_wsgi(middleware, testing.wsgi_environ("/story", peer=RU))
    assert response.status == 200
    assert sum(middleware.metrics()["notices_not_delivered"].values()) == 2
    assert len(warnings(caplog)) == 1


def test_a_decision_that_faults_is_counted_as_a_fault_as_the_guide_says(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/operations.md: the notices a failed decision would have called for cannot be
    # known; the fault is in compliance_faults_total{cause="decision"}.
    def broken(self: core.Exchange, tags: object) -> Any:
        raise RuntimeError("decision exploded")

    monkeypatch.setattr(core.Exchange, "_decide", broken)
    response, metrics = call([HTML], [PAGE])
    assert response.body == PAGE
    assert metrics["faults"] == {"decision": 1}
    assert metrics["notices_not_delivered"] == {}


# -- a notice left out on purpose is not a loss -----------------------------------------------


@pytest.mark.parametrize(
    ("headers", "chunks"),
    [
        ([HTML, ("Content-Encoding", "gzip")], [b"not gzip data at all"]),
        ([("Content-Type", "text/html; charset=utf-16")], ["<p>x</p>".encode("utf-16")]),
    ],
    ids=["bad-coding", "encoding"],
)
def test_a_skipped_notice_is_not_counted_lost_when_withholding_fails(
    call: Call, caplog: pytest.LogCaptureFixture, headers: Headers, chunks: list[bytes]
) -> None:
    # X-Compliance-Skip: the page left its notice out on purpose; only withholding is due.
    with caplog.at_level(logging.WARNING, "compliance"):
        _, metrics = call([*headers, ("X-Compliance-Skip", "1")], chunks, rules=WITHHOLDING)
    assert metrics["notices_not_delivered"] == {}
    assert all("ru-order" not in r.getMessage() for r in warnings(caplog))


def test_a_range_refused_for_withholding_alone_is_a_page_cut(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    headers = [HTML, ("Content-Range", "bytes 0-10/100"), ("X-Compliance-Skip", "1")]
    with caplog.at_level(logging.WARNING, "compliance"):
        response, metrics = call(headers, [PAGE], status=206, rules=WITHHOLDING)
    assert response.status == 503
    assert metrics["notices_not_delivered"] == {}
    assert metrics["pages_cut"] == {"range": 1}
    [line] = warnings(caplog)
    assert "no notice lost" in line.getMessage()


# -- log lines a request cannot forge ---------------------------------------------------------


def test_a_hostile_request_line_is_escaped_and_bounded_in_the_warning(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(RULES, {RU: "RU"})
    app = _wsgi_app(206, [HTML, ("Content-Range", "bytes 0-1/2")], [PAGE])
    middleware = WsgiMiddleware(app, engine)
    environ = testing.wsgi_environ("/x", peer=RU)
    environ["RAW_URI"] = "/x\nWARNING forged line\r" + "a" * 200_000
    environ["REQUEST_METHOD"] = "GET\n" + "M" * 200_000
    with caplog.at_level(logging.WARNING, "compliance"):
        testing.call_wsgi(middleware, environ)
    asgi = AsgiMiddleware(_asgi_app(206, [HTML, ("Content-Range", "bytes 0-1/2")], [PAGE]), engine)
    scope = testing.asgi_scope("/y", peer=RU)
    scope["raw_path"] = b"/y\nWARNING forged\x1b[2J" + b"p" * 200_000
    core._seen.clear()
    with caplog.at_level(logging.WARNING, "compliance"):
        testing.call_asgi(asgi, scope)
    lines = [r.getMessage() for r in warnings(caplog)]
    assert len(lines) == 2
    for message in lines:
        assert len(message) < 2048
        assert message.isprintable()
        assert "ru-notice" in message  # the cause and the rules survive the bound


# -- docs/operations.md names every cause ----------------------------------------------------


def test_every_cause_counted_is_listed_in_the_operations_guide() -> None:
    # The causes are listed in the docstring of the counter, in compliance/metrics.py.
    source = Path(core.__file__).with_name("metrics.py").read_text(encoding="utf-8")
    block = source.split("notices_not_delivered: dict[str, int]", 1)[1].split('"""')[1]
    causes = re.findall(r"``([^`]+)``", block)
    assert "fault" in causes
    assert "frameset document" in causes
    guide = (Path(__file__).parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    metrics_section = guide.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    missing = [cause for cause in causes if f"`{cause}`" not in metrics_section]
    assert missing == []

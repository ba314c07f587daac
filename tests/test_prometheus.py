"""compliance.contrib.prometheus: the middleware's counters as Prometheus metrics, scraped
from a real prometheus_client registry after real requests."""

from __future__ import annotations

from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from compliance import Engine  # noqa: E402
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware  # noqa: E402
from compliance.contrib.prometheus import ComplianceCollector  # noqa: E402
from compliance.metrics import Metrics  # noqa: E402
from compliance.testing import (  # noqa: E402
    FixedGeolocator,
    asgi_scope,
    call_asgi,
    call_wsgi,
    wsgi_environ,
)
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware  # noqa: E402

PAGE = b"<!DOCTYPE html><html><body><p>Story</p></body></html>"
READERS = {"192.0.2.1": "RU", "192.0.2.2": "UA-43", "192.0.2.3": "DE"}
BLOCKING = """version: 1
rules:
  - id: court-block
    title: A block
    jurisdictions: [DE]
    paths: ["/blocked"]
    block:
      blocked_by: https://www.example.org/legal
      text: {en: Blocked.}
"""


def wsgi_page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [PAGE]


async def asgi_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
    )
    await send({"type": "http.response.body", "body": PAGE})


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


@pytest.fixture
def engine(tmp_path: Any) -> Any:
    (tmp_path / "block.yaml").write_text(BLOCKING, encoding="utf-8")
    engine = Engine.from_paths(
        [str(tmp_path)], packs=["russia"], geolocator=FixedGeolocator(READERS)
    )
    yield engine
    engine.close()


def test_counters_after_real_requests_through_both_adapters(engine: Engine) -> None:
    wsgi = WsgiMiddleware(wsgi_page, engine)
    asgi = AsgiMiddleware(asgi_page, engine)
    registry = CollectorRegistry()
    registry.register(ComplianceCollector(wsgi, asgi))
    for ip in READERS:
        call_wsgi(wsgi, wsgi_environ("/", peer=ip))
    call_asgi(asgi, asgi_scope("/", peer="192.0.2.1"))
    call_wsgi(wsgi, wsgi_environ("/blocked", peer="192.0.2.3"))
    values = scrape(registry)
    assert values[("compliance_decisions_total", ())] == 5
    assert values[("compliance_decisions_with_notices_total", ())] == 3
    injected = "compliance_notices_injected_total"
    rule = ("rule", "ru-undesirable-organization")
    assert values[(injected, (("country", "RU"), rule))] == 2
    assert values[(injected, (("country", "UA"), rule))] == 1
    assert values[("compliance_blocks_total", (("rule", "court-block"),))] == 1
    # the counters are read at each scrape
    call_wsgi(wsgi, wsgi_environ("/", peer="192.0.2.1"))
    assert scrape(registry)[(injected, (("country", "RU"), rule))] == 3


def test_undelivered_notices_are_counted_by_cause(engine: Engine) -> None:
    def gzip_page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "zstd")])
        return [b"\x28\xb5\x2f\xfd not really zstd"]

    wsgi = WsgiMiddleware(gzip_page, engine)
    registry = CollectorRegistry()
    registry.register(ComplianceCollector(wsgi))
    call_wsgi(wsgi, wsgi_environ("/", peer="192.0.2.1"))
    values = scrape(registry)
    causes = {
        labels: value
        for (name, labels), value in values.items()
        if name == "compliance_notices_not_delivered_total"
    }
    assert sum(causes.values()) == 1


def test_sources_of_every_kind_and_metric_names_without_a_scrape() -> None:
    metrics = Metrics()
    metrics.reload("ok")
    metrics.fault("decision")
    registry = CollectorRegistry()
    collector = ComplianceCollector(metrics, metrics.snapshot)
    registry.register(collector)
    values = scrape(registry)
    assert values[("compliance_reloads_total", (("result", "ok"),))] == 2
    assert values[("compliance_faults_total", (("cause", "decision"),))] == 2
    names = {family.name for family in collector.describe()}
    assert names == {
        "compliance_decisions",
        "compliance_decisions_with_notices",
        "compliance_notices_injected",
        "compliance_blocks",
        "compliance_notices_not_delivered",
        "compliance_pages_cut",
        "compliance_notices_skipped",
        "compliance_withheld",
        "compliance_faults",
        "compliance_reloads",
    }
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(ComplianceCollector(metrics))
    with pytest.raises(TypeError):
        ComplianceCollector(42)
    with pytest.raises(TypeError):
        ComplianceCollector()


def test_the_library_never_imports_prometheus_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys, compliance, compliance.wsgi, compliance.asgi, compliance.contrib\n"
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_engine_shared_by_several_middlewares_counts_each_reload_once(
    engine: Engine,
) -> None:
    """Each middleware's snapshot carries its engine's reloads; added up, one reload of an
    engine behind a WSGI and an ASGI middleware showed as two."""
    wsgi = WsgiMiddleware(wsgi_page, engine)
    asgi = AsgiMiddleware(asgi_page, engine)
    other = Engine.from_paths(geolocator=FixedGeolocator(READERS))
    apart = WsgiMiddleware(wsgi_page, other)
    registry = CollectorRegistry()
    registry.register(ComplianceCollector(wsgi, asgi, apart))
    assert engine.reload() is True
    assert other.reload() is True
    call_wsgi(wsgi, wsgi_environ("/", peer="192.0.2.1"))
    call_asgi(asgi, asgi_scope("/", peer="192.0.2.1"))
    values = scrape(registry)
    assert values[("compliance_reloads_total", (("result", "ok"),))] == 2  # one per engine
    assert values[("compliance_decisions_total", ())] == 2  # per middleware, as before
    from compliance.contrib import merge_snapshots, reloads_once_per_engine

    pairs = [(wsgi.metrics(), engine), (asgi.metrics(), engine), (apart.metrics(), None)]
    assert merge_snapshots(reloads_once_per_engine(pairs))["reloads"] == {"ok": 2}
    other.close()


# The end of a child's code: every sample the multiprocess registry adds up, printed as JSON.
_SCRAPE = """
registry = CollectorRegistry()
MultiProcessCollector(registry)
values = {}
for family in text_string_to_metric_families(generate_latest(registry).decode()):
    for sample in family.samples:
        values[sample.name + json.dumps(sample.labels, sort_keys=True)] = sample.value
print(json.dumps(values))
"""


def test_worker_processes_add_up_in_multiprocess_mode(tmp_path: Any) -> None:
    """Counters live per process: behind gunicorn's workers, one port, each scrape answered
    by one worker showed that worker's counts, jumping from scrape to scrape (read as
    counter resets: rates and the loss alert made up). Written to prometheus_client's
    multiprocess files, every worker's counts add up, whichever worker is scraped. The
    writer is made before the fork, as with gunicorn --preload; one worker writes through
    the thread restarted after the fork, the other on close. In a fresh interpreter, since
    multiprocess mode is chosen when prometheus_client is imported."""
    import json
    import subprocess
    import sys

    code = f"""
import json, os, sys, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from compliance import Engine
from compliance.contrib.prometheus import MultiProcessWriter
from compliance.testing import FixedGeolocator, call_wsgi, wsgi_environ
from compliance.wsgi import ComplianceMiddleware

def page(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [{PAGE!r}]

engine = Engine.from_paths(packs=["russia"], geolocator=FixedGeolocator("RU"))
app = ComplianceMiddleware(page, engine)
writer = MultiProcessWriter(app, interval=0.05)
children = []
for requests, by_thread in ((3, True), (4, False)):
    pid = os.fork()
    if pid == 0:
        for _ in range(requests):
            call_wsgi(app, wsgi_environ("/"))
        if by_thread:
            time.sleep(1.0)  # the writer's thread, restarted in this worker
        else:
            writer.close()
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""
    code += _SCRAPE
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    assert values["compliance_decisions_total{}"] == 7
    injected = (
        'compliance_notices_injected_total{"country": "RU", "rule": "ru-undesirable-organization"}'
    )
    assert values[injected] == 7


def test_the_multiprocess_writer_needs_multiprocess_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from compliance.contrib.prometheus import MultiProcessWriter
    from compliance.errors import ConfigurationError

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessWriter(Metrics())


def test_a_fork_that_ran_no_before_hook_still_restarts_the_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that forks in C (uWSGI) may run the child's at-fork hooks without the
    parent's: releasing the lock the parent's hook did not take raised, the hook failed
    quietly, and that worker's counts were never written."""
    from compliance.contrib.prometheus import MultiProcessWriter

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    writer = MultiProcessWriter(Metrics(), interval=3600)
    monkeypatch.setattr(writer, "write", lambda: None)  # mutexes only, not the files
    first, stop = writer._thread, writer._stop
    writer._forked()  # as in a child, no before-fork hook having run
    stop.set()  # (not a real fork: the first thread is still here)
    assert writer._thread is not first
    assert writer._thread is not None
    assert writer._thread.is_alive()
    assert writer._lock.acquire(blocking=False)
    writer._lock.release()
    writer.close()


def test_an_application_given_for_its_middleware_is_refused_when_registered(
    engine: Engine,
) -> None:
    """A WSGI or ASGI application is callable: given instead of its middleware (or a FastAPI
    app, whose middleware is out of reach), it was taken for a callable returning a snapshot
    and called at every scrape, where its TypeError failed the whole exposition, every
    other metric of the registry with it."""
    registry = CollectorRegistry()
    for app in (wsgi_page, asgi_page, WsgiMiddleware):
        with pytest.raises(TypeError, match="metrics source"):
            registry.register(ComplianceCollector(app))
    registry.register(ComplianceCollector(WsgiMiddleware(wsgi_page, engine)))
    assert scrape(registry)[("compliance_decisions_total", ())] == 0


def _not_lower(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> list[str]:
    """The counters of ``before`` that are lower (or gone) in ``after``."""
    return [
        f"{name}{dict(labels)}: {value} -> {after.get((name, labels))}"
        for (name, labels), value in before.items()
        if name.endswith("_total") and after.get((name, labels), -1.0) < value
    ]


def test_a_middleware_gone_leaves_its_counts_in_the_process_sums(tmp_path: Any) -> None:
    """The process-wide sums (``compliance.contrib.starlette.metrics``, Django's) held their
    middlewares weakly and added up those still alive: a middleware the garbage collector
    took (Django's test client makes one per client, a framework reloading makes new ones)
    took its counts out of the sums, which Prometheus reads as counter resets. Its counts,
    and its engine's reloads, stay in; neither the middleware nor the engine is kept."""
    import gc
    import weakref

    from compliance.contrib.starlette import metrics

    (tmp_path / "block.yaml").write_text(BLOCKING, encoding="utf-8")
    engine = Engine.from_paths(
        [str(tmp_path)], packs=["russia"], geolocator=FixedGeolocator(READERS)
    )
    middleware = AsgiMiddleware(asgi_page, engine)
    registry = CollectorRegistry()
    registry.register(ComplianceCollector(metrics))
    assert engine.reload() is True
    for ip in READERS:
        call_asgi(middleware, asgi_scope("/", peer=ip))
    call_asgi(middleware, asgi_scope("/blocked", peer="192.0.2.3"))
    before = scrape(registry)
    assert before[("compliance_blocks_total", (("rule", "court-block"),))] >= 1
    gone, engine_gone = weakref.ref(middleware), weakref.ref(engine)
    engine.close()
    del middleware, engine
    gc.collect()
    assert gone() is None
    assert engine_gone() is None
    after = scrape(registry)
    assert not _not_lower(before, after)
    # ... and a middleware made since counts on top of them
    again = AsgiMiddleware(asgi_page, Engine.from_paths(geolocator=FixedGeolocator(READERS)))
    call_asgi(again, asgi_scope("/", peer="192.0.2.1"))
    decisions = ("compliance_decisions_total", ())
    assert scrape(registry)[decisions] == after[decisions] + 1


def test_the_process_sums_keep_counts_told_while_their_lock_was_held() -> None:
    """The garbage collector may take a middleware's counters in any thread, at any
    point, the sums' own lock held by that very thread: the counts wait for the lock
    (no deadlock), and are not lost."""
    import gc

    from compliance.metrics import Totals

    totals = Totals()
    counters = Metrics()
    totals.add(counters, None)
    counters.block("r")
    with totals._lock:
        del counters
        gc.collect()
    assert totals.snapshot()["blocks"] == {"r": 1}
    assert not totals._counting


def test_counters_added_twice_to_the_process_sums_count_once() -> None:
    import gc

    from compliance.metrics import Totals

    totals = Totals()
    counters = Metrics()
    totals.add(counters, None)
    totals.add(counters, None)
    counters.block("r")
    assert totals.snapshot()["blocks"] == {"r": 1}
    del counters
    gc.collect()
    assert totals.snapshot()["blocks"] == {"r": 1}


def test_the_counts_of_middlewares_gone_keep_the_bound_on_label_values() -> None:
    import gc

    from compliance.metrics import Totals

    totals = Totals()
    for start in (0, 3000):
        counters = Metrics()
        totals.add(counters, None)
        for n in range(start, start + 3000):
            counters.fault(f"f{n}")
        del counters
        gc.collect()
    faults = totals.snapshot()["faults"]
    assert len(faults) == 4096 + 1
    assert sum(faults.values()) == 6000
    assert faults["other"] == 6000 - 4096


def test_the_multiprocess_writer_keeps_the_counts_of_a_middleware_gone(tmp_path: Any) -> None:
    """Given a process-wide sum (``compliance.contrib.starlette.metrics``), the writer saw
    a middleware gone as a source reset: what it counted since the last write was never
    written."""
    import json
    import subprocess
    import sys

    code = f"""
import gc, json, os
os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from compliance import Engine
from compliance.asgi import ComplianceMiddleware
from compliance.contrib.prometheus import MultiProcessWriter
from compliance.contrib.starlette import metrics
from compliance.testing import FixedGeolocator, asgi_scope, call_asgi

async def page(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"text/html")]}})
    await send({{"type": "http.response.body", "body": {PAGE!r}}})

writer = MultiProcessWriter(metrics, interval=3600)
for requests in (2, 3):
    app = ComplianceMiddleware(page, Engine.from_paths(packs=["russia"],
                               geolocator=FixedGeolocator("RU")))
    call_asgi(app, asgi_scope("/"))
    writer.write()
    for _ in range(requests - 1):
        call_asgi(app, asgi_scope("/"))
    del app
    gc.collect()
writer.close()
"""
    code += _SCRAPE
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    assert values["compliance_decisions_total{}"] == 5


def test_a_response_still_going_when_its_middleware_is_gone_is_counted_to_its_end(
    engine: Engine,
) -> None:
    """A WSGI server reads the body after the middleware returned: the notices put in
    then are counted, though the middleware is gone by then (its counters stay until the
    last response counting into them ends)."""
    import gc
    import weakref

    class Counted(WsgiMiddleware):
        pass

    def streamed(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield PAGE[:20]
        yield PAGE[20:]

    middleware = Counted(streamed, engine)
    body = middleware(wsgi_environ("/", peer="192.0.2.1"), lambda *started: None)
    gone = weakref.ref(middleware)
    del middleware
    gc.collect()
    assert gone() is None
    assert b"ru-undesirable-organization" in b"".join(body)
    body.close()
    del body
    gc.collect()
    counted = Counted.process_metrics()
    assert counted["decisions"] == 1
    assert counted["notices_injected"] == {"ru-undesirable-organization|RU": 1}

"""Faults: broken geo databases, broken rule reloads, library and application failures.

Each fault shows the documented outcome: start-up faults raise naming the file; faults while
serving are logged once and clearly, the application keeps answering (several requests are
sent after each fault) and nothing is lost (fail open sends the original bytes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import maxminddb
import pytest

from compliance import cli, core, testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.errors import GeoDatabaseError
from compliance.geo import ChainGeolocator, EmbeddedGeolocator, Location, MaxMindGeolocator
from compliance.inject import Injector
from compliance.testing import FixedGeolocator, build_mmdb
from compliance.testing import TestResponse as Response
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

EXAMPLES = [Path(__file__).parent / "fixtures" / "examples"]  # block + header rules

RU_IP, DE_IP, UA43_IP = "77.88.55.88", "81.169.145.105", "1.231.232.1"
RULE = b'data-compliance-rule="ru-undesirable-organization"'
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Hi</p></body></html>\n"
# A streamed page whose insertion point comes after the first chunks have gone out.
STREAM = [
    b"<!DOCTYPE html><html><head><title>s</title></head><body>",
    *(b"<p>paragraph %d</p>" % i + b" " * 4000 for i in range(6)),
    b"</body></html>\n",
]

RU = {"country": {"iso_code": "RU"}}
DE = {"country": {"iso_code": "DE"}}
UA43 = {"country": {"iso_code": "UA"}, "subdivisions": [{"iso_code": "43"}]}


# -- driving the adapters ---------------------------------------------------------------------


def wsgi_app(chunks: list[bytes], *, length: bool = True) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = [("Content-Type", "text/html; charset=utf-8")]
        if length:
            headers.append(("Content-Length", str(sum(map(len, chunks)))))
        start_response("200 OK", headers)
        return iter(list(chunks))

    return app


def asgi_app(chunks: list[bytes], *, length: bool = True) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        if length:
            headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


def environ(ip: str) -> dict[str, Any]:
    return testing.wsgi_environ(peer=ip)


def scope(ip: str) -> dict[str, Any]:
    return testing.asgi_scope(peer=ip, headers=[("host", "testserver")])


def call_wsgi(mw: Any, ip: str) -> Response:
    return testing.call_wsgi(mw, environ(ip))


def call_asgi(mw: Any, ip: str) -> Response:
    return testing.call_asgi(mw, scope(ip))


Client = Callable[[str], Response]


def wsgi(engine: Any, chunks: list[bytes] | None = None, **options: Any) -> Client:
    mw = WsgiMiddleware(wsgi_app(chunks or [PAGE], length=chunks is None), engine, **options)
    return lambda ip: call_wsgi(mw, ip)


def asgi(engine: Any, chunks: list[bytes] | None = None, **options: Any) -> Client:
    mw = AsgiMiddleware(asgi_app(chunks or [PAGE], length=chunks is None), engine, **options)
    return lambda ip: call_asgi(mw, ip)


ADAPTERS = [pytest.param(wsgi, id="wsgi"), pytest.param(asgi, id="asgi")]


def errors(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno >= logging.ERROR]


# -- geo database at start-up -----------------------------------------------------------------


def _corrupt_files(folder: Path) -> dict[str, Path]:
    good = build_mmdb(folder / "good.mmdb", {"77.88.55.0/24": RU})
    data = good.read_bytes()
    files = {
        "empty": folder / "empty.mmdb",
        "random": folder / "random.mmdb",
        "text": folder / "text.mmdb",
        "truncated": folder / "truncated.mmdb",
        "no-metadata": folder / "no-metadata.mmdb",
        "flipped-tree": folder / "flipped-tree.mmdb",
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(os.urandom(4096))
    files["text"].write_text("country,ip\nRU,77.88.55.88\n")
    files["truncated"].write_bytes(data[: len(data) // 3])
    marker = data.rfind(b"\xab\xcd\xefMaxMind.com")
    files["no-metadata"].write_bytes(data[:marker])
    files["flipped-tree"].write_bytes(b"\xff" * (marker // 2) + data[marker // 2 :])
    files["wrong-type"] = build_mmdb(
        folder / "isp.mmdb", {"77.88.55.0/24": {"isp": "x"}}, database_type="GeoIP2-ISP"
    )
    files["directory"] = folder / "a-directory.mmdb"
    files["directory"].mkdir()
    files["missing"] = folder / "missing.mmdb"
    return files


CORRUPT = [
    "empty",
    "random",
    "text",
    "truncated",
    "no-metadata",
    "flipped-tree",
    "wrong-type",
    "directory",
]


@pytest.mark.parametrize("name", [*CORRUPT, "missing"])
def test_bad_geo_database_at_start_up_names_the_file(tmp_path: Path, name: str) -> None:
    path = _corrupt_files(tmp_path)[name]
    with pytest.raises(GeoDatabaseError) as raised:
        MaxMindGeolocator(path)
    assert raised.value.path == str(path)
    assert str(raised.value).startswith(f"{path}: ")
    with pytest.raises(GeoDatabaseError, match=str(path)):
        Engine.from_paths(geoip_db=path)


def test_unreadable_geo_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_mmdb(tmp_path / "locked.mmdb", {"77.88.55.0/24": RU})

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(maxminddb, "open_database", denied)
    with pytest.raises(GeoDatabaseError, match="permission denied") as raised:
        MaxMindGeolocator(path)
    assert raised.value.path == str(path)


@pytest.mark.parametrize(
    "name",
    [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ],
)
def test_maxmind_broken_test_databases(geoip_test_data: Path, name: str) -> None:
    path = geoip_test_data / name
    with pytest.raises(GeoDatabaseError) as raised:
        MaxMindGeolocator(path)
    assert raised.value.path == str(path)


def test_cli_reports_a_bad_database_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _corrupt_files(tmp_path)["truncated"]
    assert cli.main(["check", "--geoip-db", str(path), "--ip", RU_IP]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# -- geo database swapped while serving -------------------------------------------------------


def _replace(target: Path, networks: dict[str, dict[str, Any]], folder: Path) -> None:
    fresh = build_mmdb(folder / f"next-{time.monotonic_ns()}.mmdb", networks)
    os.replace(fresh, target)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_geo_database_swapped_while_serving(
    adapter: Callable[..., Client], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = build_mmdb(tmp_path / "GeoIP2-City.mmdb", {"77.88.55.0/24": RU, "81.169.0.0/16": DE})
    geo = MaxMindGeolocator(live, check_interval=0)
    engine = Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=geo)
    client = adapter(engine)
    caplog.set_level(logging.INFO, "compliance")

    assert RULE in client(RU_IP).body
    assert client(DE_IP).body == PAGE

    # A good new file: the next request uses it (the reader in 77.88.55.0/24 is now in DE).
    _replace(live, {"77.88.55.0/24": DE, "81.169.0.0/16": UA43}, tmp_path)
    assert client(RU_IP).body == PAGE
    assert RULE in client(DE_IP).body
    assert any("reloaded" in r.getMessage() for r in caplog.records)

    # A corrupt file renamed into place: logged once, the last good data keeps serving.
    caplog.clear()
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(live.read_bytes()[:200])
    os.replace(corrupt, live)
    for _ in range(5):
        assert client(RU_IP).body == PAGE
        assert RULE in client(DE_IP).body
    (record,) = errors(caplog, "compliance.geo")
    assert str(live) in record.getMessage()
    assert "keeping the database loaded before" in record.getMessage()

    # The file disappears: the same, once.
    caplog.clear()
    live.unlink()
    for _ in range(5):
        assert RULE in client(DE_IP).body
    (record,) = errors(caplog, "compliance.geo")
    assert str(live) in record.getMessage()

    # geoipupdate puts a good file back: it is picked up.
    caplog.clear()
    _replace(live, {"77.88.55.0/24": RU}, tmp_path)
    for _ in range(3):
        assert RULE in client(RU_IP).body
        assert client(DE_IP).body == PAGE  # no longer in the database: unknown
    assert errors(caplog, "compliance") == []
    geo.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_geo_lookup_fault_while_serving_fails_open_each_time(
    adapter: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(core, "_seen", {})

    class Flaky(FixedGeolocator):
        def locate(self, ip: Any, headers: Any = None, *, trusted: bool = False) -> Location:
            if ip == DE_IP:
                raise GeoDatabaseError("/data/GeoIP2-City.mmdb", "corrupt data for " + ip)
            return super().locate(ip, headers, trusted=trusted)

    client = adapter(
        Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=Flaky({RU_IP: Location.of("RU")}))
    )
    for _ in range(3):
        response = client(DE_IP)
        assert response.status == 200
        assert response.body == PAGE
        assert RULE in client(RU_IP).body  # the next reader is served normally
        # The same fault on every request is logged once, not once per request.
        assert len(errors(caplog, "compliance.middleware")) == 1
    monkeypatch.setattr(core, "LOG_INTERVAL", 0.0)
    client(DE_IP)
    assert len(errors(caplog, "compliance.middleware")) == 2
    assert (
        "it also happened 2 more times" in errors(caplog, "compliance.middleware")[1].getMessage()
    )
    record = errors(caplog, "compliance.middleware")[0]
    # The traceback is there, the reader's address in the geolocator's error as its network
    # (before: the address itself, whatever log_addresses said).
    text = record.getMessage()
    assert "Traceback (most recent call last)" in text
    assert "/data/GeoIP2-City.mmdb: corrupt data for 81.169.145.0/24" in text
    assert DE_IP not in text
    assert record.exc_info is None  # the exception's own text names the address


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("log_addresses", [False, True])
def test_a_fault_naming_the_reader_logs_the_address_only_when_asked(
    adapter: Callable[..., Client], log_addresses: bool, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(FixedGeolocator):
        def locate(self, ip: Any, headers: Any = None, *, trusted: bool = False) -> Location:
            raise LookupError(f"The address {ip} is not in the database.")

    engine = Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=Failing({}))
    response = adapter(engine, log_addresses=log_addresses)("203.0.113.77")
    assert response.body == PAGE
    [record] = errors(caplog, "compliance.middleware")
    logged = caplog.text
    assert ("203.0.113.77" in logged) is log_addresses
    assert ("203.0.113.0/24" in logged) is not log_addresses
    assert "LookupError: The address" in logged
    assert (record.exc_info is not None) is log_addresses


@pytest.mark.parametrize("middleware", [WsgiMiddleware, AsgiMiddleware], ids=["wsgi", "asgi"])
def test_a_record_that_is_not_utf8_is_a_logged_counted_fault_not_an_unknown_reader(
    middleware: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compliance.geo import maxmind

    monkeypatch.setattr(core, "_seen", {})
    monkeypatch.setattr(maxmind._Database, "_PROBE_RECORDS", 0)  # found at lookup time
    # The German reader's record holds a string that is not UTF-8: that used to read as
    # "location unknown" (a rule for unknown readers would have applied), with nothing logged.
    path = build_mmdb(
        tmp_path / "City.mmdb", {RU_IP: RU, DE_IP: DE | {"city": {"names": {"en": "ZZBAD"}}}}
    )
    data = path.read_bytes()
    at = data.index(b"ZZBAD")
    path.write_bytes(data[:at] + b"\xff\xfe\xff\xfe" + data[at + 4 :])
    geo = MaxMindGeolocator(path)
    engine = Engine.from_paths(EXAMPLES, packs=["russia"], geolocator=geo)
    call = call_wsgi if middleware is WsgiMiddleware else call_asgi
    app = wsgi_app if middleware is WsgiMiddleware else asgi_app
    opened = middleware(app([PAGE]), engine)
    closed = middleware(app([PAGE]), engine, fail_mode="closed")
    for _ in range(3):
        assert call(opened, DE_IP).body == PAGE  # fail open: the page as the app sent it
        assert RULE in call(opened, RU_IP).body  # the next reader is served normally
        assert call(closed, DE_IP).status == 503
    assert opened.metrics()["faults"] == {"decision": 3}
    assert closed.metrics()["faults"] == {"decision": 3}
    (record,) = errors(caplog, "compliance.middleware")  # once per cause, not per request
    assert record.exc_info is not None
    fault = record.exc_info[1]
    assert isinstance(fault, GeoDatabaseError)
    assert fault.reason.startswith("corrupt data (a string that is not UTF-8")
    assert DE_IP not in caplog.text  # logs are keyed by cause and never name the reader
    geo.close()


# -- rule files broken during a reload --------------------------------------------------------

GOOD_RULES = """\
version: 1
rules:
  - id: {id}
    title: reload test
    jurisdictions: [RU]
    notice:
      text:
        en: {text}
"""

BROKEN = {
    "yaml-syntax": "version: 1\nrules:\n  - id: [unclosed\n",
    "unknown-key": GOOD_RULES.format(id="r", text="x").replace("title:", "titel:"),
    "bad-country": GOOD_RULES.format(id="r", text="x").replace("[RU]", "[XY]"),
    "not-utf8": "version: 1\nrules: []\n# \xff\n",
    "newer-version": "version: 99\nrules: []\n",
}


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("broken", list(BROKEN))
def test_broken_rule_reload_keeps_the_previous_rules(
    adapter: Callable[..., Client],
    broken: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD_RULES.format(id="first", text="First."))
    engine = Engine.from_paths([rules], geolocator=FixedGeolocator(Location.of("RU")))
    client = adapter(engine)
    assert b'data-compliance-rule="first"' in client(RU_IP).body

    content = BROKEN[broken]
    if broken == "not-utf8":
        (rules / "a.yaml").write_bytes(content.encode("latin-1"))
    else:
        (rules / "a.yaml").write_text(content)
    assert engine.reload() is False
    (record,) = errors(caplog, "compliance.engine")
    assert "still serving the previous rules" in record.getMessage()
    assert "a.yaml" in record.getMessage()  # which file, for the operator
    assert engine.last_reload_error is not None
    for _ in range(5):
        assert b'data-compliance-rule="first"' in client(RU_IP).body
    assert len(errors(caplog, "compliance.engine")) == 1

    (rules / "a.yaml").write_text(GOOD_RULES.format(id="second", text="Second."))
    assert engine.reload() is True
    assert engine.last_reload_error is None
    assert b'data-compliance-rule="second"' in client(RU_IP).body


def test_database_reloads_are_counted_with_the_rule_reloads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The counters promise rule *and database* reloads; a replacement database that does
    not open (the old one keeps serving, an ERROR in the log) was in no counter, so the
    documented alert on ``compliance_reloads_total{result="failed"}`` never fired for it."""
    ru = {"country": {"iso_code": "RU"}}
    db = build_mmdb(tmp_path / "city.mmdb", {"77.88.55.0/24": ru})
    chain = ChainGeolocator([MaxMindGeolocator(db, check_interval=0), EmbeddedGeolocator()])
    with Engine.from_paths(geolocator=chain) as engine:
        app = WsgiMiddleware(wsgi_app([b"<html><body>x</body></html>"]), engine)
        assert app.metrics()["reloads"] == {}
        os.replace(build_mmdb(tmp_path / "new.mmdb", {"77.88.55.0/24": ru}), db)
        testing.call_wsgi(app, testing.wsgi_environ("/", peer=RU_IP))  # noticed on a lookup
        assert app.metrics()["reloads"] == {"ok": 1}
        (tmp_path / "bad.mmdb").write_bytes(b"not a database" * 64)
        os.replace(tmp_path / "bad.mmdb", db)
        response = testing.call_wsgi(app, testing.wsgi_environ("/", peer=RU_IP))
        assert response.notices == ["ru-undesirable-organization"]  # the old data serves
        assert len(errors(caplog, "compliance.geo")) == 1
        assert app.metrics()["reloads"] == {"ok": 1, "failed": 1}
        assert engine.reload() is True  # rule reloads add to them
        assert engine.reload_counts() == {"ok": 2, "failed": 1}


def test_a_database_that_is_not_one_is_reported_by_its_own_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """maxminddb's message named the private copy it opened (``/tmp/.compliance-geo-...``),
    a file already unlinked: the operator was sent looking for a file that is not there."""
    bad = tmp_path / "GeoLite2-City.mmdb"
    bad.write_bytes(b"not a database" * 64)
    with pytest.raises(GeoDatabaseError) as raised:
        MaxMindGeolocator(bad)
    assert ".compliance-geo-" not in str(raised.value)
    assert str(raised.value).count(str(bad)) >= 2  # whose file, and the reader's own words
    db = build_mmdb(tmp_path / "city.mmdb", {"77.88.55.0/24": {"country": {"iso_code": "RU"}}})
    with MaxMindGeolocator(db, check_interval=0) as geo:
        os.replace(bad, db)
        assert geo.reload() is False
        (record,) = errors(caplog, "compliance.geo")
        assert ".compliance-geo-" not in record.getMessage()


def test_a_database_made_readable_again_is_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """geoipupdate run by root writes the new file mode 0600: the service cannot read it
    and says so. Fixing that with chmod changed nothing the geolocator looked at, so the
    old database served on until the next update."""
    import builtins

    from compliance.geo import maxmind

    real_open = builtins.open

    def as_a_service_user(path: Any, *args: Any, **kwargs: Any) -> Any:
        # What the kernel does for a user that is not root (the tests may run as root).
        if str(path).endswith(".mmdb") and not os.stat(path).st_mode & 0o004:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(maxmind, "open", as_a_service_user, raising=False)
    db = build_mmdb(tmp_path / "city.mmdb", {"77.88.55.0/24": {"country": {"iso_code": "RU"}}})
    db.chmod(0o644)
    with MaxMindGeolocator(db, check_interval=0) as geo:
        new = build_mmdb(tmp_path / "new.mmdb", {"77.88.55.0/24": {"country": {"iso_code": "DE"}}})
        new.chmod(0o600)
        os.replace(new, db)
        assert geo.locate(RU_IP).country == "RU"  # unreadable: the old data serves
        assert geo.reload_counts() == {"failed": 1}
        db.chmod(0o644)
        assert geo.locate(RU_IP).country == "DE"
        assert geo.reload_counts() == {"failed": 1, "ok": 1}


def test_an_engine_made_from_a_ruleset_reloads_its_own_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``Engine(load_rules([...]))`` has no ``paths=``: its reload loaded the default pack
    instead, silently swapping the site's rules (a block among them, say) for it, and
    reported success."""
    from compliance.errors import ConfigurationError
    from compliance.loader import RuleSet, load_rules

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD_RULES.format(id="mine", text="Mine."))
    engine = Engine(load_rules([rules]), FixedGeolocator(Location.of("RU")))
    (rules / "a.yaml").write_text(GOOD_RULES.format(id="mine-2", text="Mine."))
    assert engine.reload() is True
    assert engine.rule_ids == ("mine-2",)
    mixed = Engine(load_rules([rules], packs=["russia"]), FixedGeolocator(Location.of("RU")))
    (rules / "a.yaml").write_text(GOOD_RULES.format(id="mine-3", text="Mine."))
    assert mixed.reload() is True
    assert {"mine-3", "ru-undesirable-organization"} <= set(mixed.rule_ids)
    assert "mine-2" not in mixed.rule_ids
    # Rules built in memory: nothing to reload from, said so; they keep serving.
    memory = load_rules([rules])
    built = Engine(RuleSet((), memory.rules, memory.regions, ()), FixedGeolocator({}))
    assert built.reload() is False
    assert isinstance(built.last_reload_error, ConfigurationError)
    assert built.rule_ids == ("mine-3",)
    assert built.reload_counts() == {"failed": 1}


def test_rule_directory_removed_during_a_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD_RULES.format(id="first", text="First."))
    engine = Engine.from_paths([rules], geolocator=FixedGeolocator(Location.of("RU")))
    (rules / "a.yaml").unlink()
    rules.rmdir()
    assert engine.reload() is False
    assert len(errors(caplog, "compliance.engine")) == 1
    assert engine.rule_ids == ("first",)
    assert [n.rule_id for n in engine.decide(ip=RU_IP).notices] == ["first"]


def test_watched_rules_broken_then_fixed_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD_RULES.format(id="first", text="First."))
    engine = Engine.from_paths([rules], geolocator=FixedGeolocator(Location.of("RU")), watch=0.02)
    client = wsgi(engine)
    try:
        (rules / "a.yaml").write_text(BROKEN["unknown-key"])
        _wait(lambda: engine.last_reload_error is not None)
        time.sleep(0.2)  # many more polls of the same broken file
        assert len(errors(caplog, "compliance.engine")) == 1
        for _ in range(3):
            assert b'data-compliance-rule="first"' in client(RU_IP).body
        (rules / "a.yaml").write_text(GOOD_RULES.format(id="second", text="Second."))
        _wait(lambda: engine.rule_ids == ("second",))
        assert b'data-compliance-rule="second"' in client(RU_IP).body
        assert engine.last_reload_error is None
    finally:
        engine.close()


# -- a library fault during a streamed response -----------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("at_call", [1, 3, 8], ids=["first-chunk", "mid-stream", "finish"])
def test_injector_fault_mid_stream_loses_nothing(
    adapter: Callable[..., Client],
    at_call: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("RU"))
    )
    client = adapter(engine, STREAM)
    calls = {"n": 0}
    feed, finish = Injector.feed, Injector.finish

    def count(real: Callable[..., bytes]) -> Callable[..., bytes]:
        def wrapper(self: Injector, *args: Any) -> bytes:
            calls["n"] += 1
            if calls["n"] == at_call:
                raise RuntimeError("injector exploded")
            return real(self, *args)

        return wrapper

    monkeypatch.setattr(Injector, "feed", count(feed))
    monkeypatch.setattr(Injector, "finish", count(finish))
    response = client(RU_IP)
    assert response.status == 200
    assert response.body == b"".join(STREAM)
    faults = errors(caplog, "compliance.middleware")
    assert len(faults) == 1
    assert faults[0].exc_info is not None
    assert "injector exploded" in str(faults[0].exc_info[1])
    for _ in range(3):  # later requests are edited as usual
        body = client(RU_IP).body
        assert body.count(RULE) == 1
        assert len(body) > len(b"".join(STREAM))
    assert len(errors(caplog, "compliance.middleware")) == 1


# -- the client going away, the application failing -------------------------------------------


class Tracked:
    """An application iterable that counts close() calls; can fail or be cut short."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_after:
                raise AppError("the application failed mid-body")
            yield chunk

    def close(self) -> None:
        self.closed += 1


class AppError(Exception):
    pass


def _tracked_app(
    chunks: list[bytes], ctype: str = "text/html", fail_after: int | None = None
) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Tracked:
        start_response("200 OK", [("Content-Type", ctype)])
        app.last = Tracked(chunks, fail_after)  # type: ignore[attr-defined]
        return app.last  # type: ignore[attr-defined]

    return app


@pytest.mark.parametrize(
    ("ctype", "chunks", "ip"),
    [
        pytest.param("text/html", [PAGE], RU_IP, id="edited-buffered"),
        pytest.param("text/html", STREAM, RU_IP, id="edited-streamed"),
        pytest.param("text/html", STREAM, DE_IP, id="nothing-to-inject"),
        pytest.param("application/json", [b"{}"], RU_IP, id="passthrough"),
    ],
)
def test_wsgi_close_is_called_exactly_once(
    ctype: str, chunks: list[bytes], ip: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator({RU_IP: Location.of("RU")})
    )
    app = _tracked_app(chunks, ctype)
    mw = WsgiMiddleware(app, engine)
    for _ in range(3):
        response = call_wsgi(mw, ip)
        assert app.last.closed == 1  # type: ignore[attr-defined]
        assert (RULE in response.body) == (ip == RU_IP and ctype == "text/html")
    assert errors(caplog, "compliance") == []


@pytest.mark.parametrize("fail_after", [0, 1, 4])
def test_wsgi_app_raising_mid_body_propagates_and_closes(
    fail_after: int, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("RU"))
    )
    app = _tracked_app(STREAM, fail_after=fail_after)
    mw = WsgiMiddleware(app, engine)
    for _ in range(3):
        with pytest.raises(AppError):
            call_wsgi(mw, RU_IP)
        assert app.last.closed == 1  # type: ignore[attr-defined]
    # The application's failure is the application's to log, not a library fault.
    assert errors(caplog, "compliance") == []
    assert RULE in call_wsgi(WsgiMiddleware(_tracked_app(STREAM), engine), RU_IP).body


def test_wsgi_client_disconnect_mid_stream(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("RU"))
    )
    app = _tracked_app(STREAM)
    mw = WsgiMiddleware(app, engine)
    for _ in range(3):
        it = mw(environ(RU_IP), lambda *a: lambda data: None)
        iterator = iter(it)
        next(iterator)
        next(iterator)
        it.close()  # the server noticed the client is gone
        assert app.last.closed == 1  # type: ignore[attr-defined]
    assert errors(caplog, "compliance") == []
    assert RULE in call_wsgi(mw, RU_IP).body


def test_wsgi_app_raising_before_start_response(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("RU"))
    )

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise AppError("before start_response")

    mw = WsgiMiddleware(app, engine)
    for _ in range(3):
        with pytest.raises(AppError):
            call_wsgi(mw, RU_IP)
    assert errors(caplog, "compliance") == []


@pytest.mark.parametrize("where", ["before-start", "after-start", "mid-body"])
def test_asgi_app_raising_propagates_and_is_not_logged_as_ours(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("RU"))
    )

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        if where == "before-start":
            raise AppError(where)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        if where == "mid-body":
            for chunk in STREAM[:3]:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        raise AppError(where)

    mw = AsgiMiddleware(app, engine)
    for _ in range(3):
        with pytest.raises(AppError, match=where):
            call_asgi(mw, RU_IP)
    assert errors(caplog, "compliance") == []
    assert RULE in asgi(engine)(RU_IP).body


def test_asgi_client_disconnect_mid_stream(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine.from_paths(
        EXAMPLES, packs=["russia"], geolocator=FixedGeolocator(Location.of("RU"))
    )
    stopped: list[str] = []

    async def app(sc: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        try:
            for chunk in STREAM:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except OSError:
            stopped.append("stopped")
            raise

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    delivered: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if len(delivered) >= 2:
            raise OSError("client went away")
        delivered.append(message)

    mw = AsgiMiddleware(app, engine)
    for round_ in range(1, 4):
        delivered.clear()
        with pytest.raises(OSError, match="client went away"):
            asyncio.run(mw(scope(RU_IP), receive, send))
        assert len(stopped) == round_
    assert errors(caplog, "compliance") == []
    assert RULE in asgi(engine, STREAM)(RU_IP).body

"""The one file watcher: signatures, change reports, the background thread, fork."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from compliance.watch import Changes, FileWatcher, signature

WAIT = 10.0  # seconds to wait for a background check; a pass takes one interval


def _bump(path: Path, text: str) -> None:
    """Rewrite ``path`` in place and make sure its modification time moves."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_signature_names_device_inode_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    st = path.stat()
    assert signature(path) == (st.st_dev, st.st_ino, 3, st.st_mtime_ns, st.st_ctime_ns)
    assert signature(tmp_path / "missing") is None
    assert signature("bad\0path") is None


def test_baseline_is_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("one")
    calls: list[Changes] = []
    watcher = FileWatcher([path], calls.append)
    assert watcher.check() == {}
    assert calls == []
    assert watcher.signatures == {str(path): signature(path)}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("rename", id="replaced-by-rename"),
        pytest.param("in-place", id="rewritten-in-place"),
        pytest.param("truncate", id="truncated-in-place"),
        pytest.param("delete", id="deleted"),
    ],
)
def test_each_kind_of_change_is_reported_once(tmp_path: Path, change: str) -> None:
    path = tmp_path / "db"
    path.write_text("version one")
    calls: list[Changes] = []
    watcher = FileWatcher([path], calls.append)
    if change == "rename":
        new = tmp_path / "db.new"
        new.write_text("version two")
        new.replace(path)
    elif change == "in-place":
        _bump(path, "version 2!!")  # same size: only the mtime tells
    elif change == "truncate":
        with path.open("r+") as handle:
            handle.truncate(0)
    else:
        path.unlink()
    expected = {str(path): signature(path)}
    assert watcher.check() == expected
    assert calls == [expected]
    assert watcher.check() == {}
    assert len(calls) == 1


def test_a_listing_callable_notices_new_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a")
    calls: list[Changes] = []
    watcher = FileWatcher(lambda: sorted(tmp_path.glob("*.yaml")), calls.append)
    (tmp_path / "b.yaml").write_text("b")
    assert watcher.check() == {str(tmp_path / "b.yaml"): signature(tmp_path / "b.yaml")}
    (tmp_path / "a.yaml").unlink()
    assert watcher.check() == {str(tmp_path / "a.yaml"): None}


def test_a_failing_listing_keeps_the_last_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = False

    def listing() -> list[Path]:
        if broken:
            raise OSError("folder gone")
        return [tmp_path / "a"]

    watcher = FileWatcher(listing, lambda changes: None)
    broken = True
    with caplog.at_level(logging.WARNING, logger="compliance.watch"):
        assert watcher.check() == {}
        assert watcher.check() == {}
    assert "folder gone" in caplog.text
    assert len(caplog.records) == 1  # once, not at every check


def test_forget_reports_again_and_accept_sets_the_baseline(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    calls: list[Changes] = []
    watcher = FileWatcher([path], calls.append)
    watcher.forget(path)
    assert watcher.check() == {str(path): signature(path)}
    _bump(path, "y")
    watcher.accept(path, signature(path))
    assert watcher.check() == {}


def test_a_failing_callback_is_logged_and_watching_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "f"
    path.write_text("x")

    def explode(changes: Changes) -> None:
        raise RuntimeError("boom")

    watcher = FileWatcher([path], explode)
    _bump(path, "y")
    with caplog.at_level(logging.ERROR, logger="compliance.watch"):
        assert str(path) in watcher.check()
    assert "boom" in caplog.text
    assert watcher.check() == {}


def test_non_blocking_check_skips_while_another_check_runs(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    entered, release = threading.Event(), threading.Event()

    def slow(changes: Changes) -> None:
        entered.set()
        release.wait(WAIT)

    watcher = FileWatcher([path], slow)
    _bump(path, "y")
    worker = threading.Thread(target=watcher.check)
    worker.start()
    assert entered.wait(WAIT)
    assert watcher.check(blocking=False) == {}
    release.set()
    worker.join()


@pytest.mark.parametrize("interval", [0, -1, True, "1"])
def test_bad_interval(tmp_path: Path, interval: object) -> None:
    with pytest.raises(ValueError, match="interval"):
        FileWatcher([tmp_path], lambda c: None, interval=interval)  # type: ignore[arg-type]


def test_background_thread_reports_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    seen = threading.Event()
    with FileWatcher([path], lambda changes: seen.set(), interval=0.01) as watcher:
        watcher.start()
        assert watcher.running
        assert watcher.start() is watcher  # idempotent
        _bump(path, "y")
        assert seen.wait(WAIT)
    assert not watcher.running


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_running_watcher_starts_again_in_a_forked_child(tmp_path: Path) -> None:
    # gunicorn --preload: the watcher starts in the parent, the workers are forked children.
    script = textwrap.dedent(
        f"""
        import os, sys, threading, time
        from compliance.watch import FileWatcher
        path = {str(tmp_path / "f")!r}
        open(path, "w").write("x")
        seen = threading.Event()
        watcher = FileWatcher([path], lambda changes: seen.set(), interval=0.01).start()
        pid = os.fork()
        if pid == 0:
            ok = watcher.running
            st = os.stat(path)
            open(path, "w").write("yy")
            os.utime(path, ns=(st.st_mtime_ns + 10**6, st.st_mtime_ns + 10**6))
            os._exit(0 if ok and seen.wait({WAIT}) else 3)
        _, status = os.waitpid(pid, 0)
        watcher.stop()
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_an_engine_dropped_without_close_is_collected_and_its_watcher_stops(
    tmp_path: Path,
) -> None:
    """The rule watcher's thread held the engine through its callback: an engine dropped
    without ``close()`` (one per Django test client or Flask app factory call with ``watch``
    set) lived on with its rules, its geolocator's database copy and a thread, forever."""
    import gc
    import weakref

    from compliance.engine import Engine
    from compliance.testing import FixedGeolocator

    (tmp_path / "a.yaml").write_text("version: 1\nrules: []\n")
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator({}), watch=0.01)
    watcher = engine._watcher
    assert watcher is not None
    assert watcher.running
    thread = watcher._thread
    dropped = weakref.ref(engine)
    del engine
    gc.collect()
    assert dropped() is None
    assert thread is not None
    thread.join(WAIT)
    assert not thread.is_alive()


def test_a_watched_engine_still_reloads_and_close_stops_its_watcher(tmp_path: Path) -> None:
    from compliance.engine import Engine
    from compliance.testing import FixedGeolocator

    rule = (
        "version: 1\nrules:\n  - id: {id}\n    title: t\n    jurisdictions: [RU]\n"
        "    notice: {{text: {{en: N.}}}}\n"
    )
    (tmp_path / "a.yaml").write_text(rule.format(id="first"))
    engine = Engine.from_paths([tmp_path], geolocator=FixedGeolocator({}), watch=0.01)
    watcher = engine._watcher
    assert watcher is not None
    _bump(tmp_path / "a.yaml", rule.format(id="second"))
    for _ in range(int(WAIT / 0.01)):
        if engine.rule_ids == ("second",):
            break
        threading.Event().wait(0.01)
    assert engine.rule_ids == ("second",)
    engine.close()
    assert not watcher.running


def test_a_half_saved_rule_file_is_warned_about_without_a_reload_at_every_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher forgot a half-saved file after each reload so as to warn again: every
    check then reloaded every rule file, dropped the decision cache, and counted one more
    successful reload (some 1,800 an hour at a 2 s interval) while nothing changed."""
    from compliance.engine import Engine
    from compliance.testing import FixedGeolocator

    rule = tmp_path / "a.yaml"
    rule.write_text(
        "version: 1\nrules:\n  - id: a\n    title: t\n    jurisdictions: [RU]\n"
        "    notice: {text: {en: N.}}\n"
    )
    with (
        caplog.at_level(logging.WARNING, logger="compliance.engine"),
        Engine.from_paths([tmp_path], geolocator=FixedGeolocator({}), watch=0.01) as engine,
    ):
        rule.write_text("version: 1\n")  # cut down while being saved
        deadline = time.monotonic() + WAIT
        while caplog.text.count("has no rules any more") < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert caplog.text.count("has no rules any more") >= 5  # still warned at every check
        assert engine.rule_ids == ("a",)
        assert engine.reload_counts() == {"ok": 1}  # but reloaded once, for the one change


def test_permissions_fixed_on_an_unreadable_file_count_as_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule file deployed unreadable (mode 0600, another owner) fails to load; the
    operator fixes it with chmod or chown, which changes neither its size nor its
    modification time: the watcher never looked again, and the old rules served on."""
    from compliance import loader
    from compliance.engine import Engine
    from compliance.testing import FixedGeolocator

    real_open = os.open

    def as_a_service_user(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        # What the kernel does for a user that is not root (the tests may run as root).
        if str(path).endswith(".yaml") and not os.stat(path).st_mode & 0o004:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(loader.os, "open", as_a_service_user)
    rule = (
        "version: 1\nrules:\n  - id: {id}\n    title: t\n    jurisdictions: [RU]\n"
        "    notice: {{text: {{en: N.}}}}\n"
    )
    path = tmp_path / "a.yaml"
    path.write_text(rule.format(id="first"))
    path.chmod(0o644)
    with Engine.from_paths([tmp_path], geolocator=FixedGeolocator({}), watch=0.01) as engine:
        new = tmp_path / "a.yaml.new"
        new.write_text(rule.format(id="second"))
        new.chmod(0o600)
        new.replace(path)  # deployed by another user, unreadable to the service
        deadline = time.monotonic() + WAIT
        while engine.last_reload_error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.last_reload_error is not None
        assert engine.rule_ids == ("first",)
        path.chmod(0o644)  # what the error asks for
        while engine.rule_ids != ("second",) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.rule_ids == ("second",)
        assert engine.last_reload_error is None


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs SIGHUP")
def test_a_second_sighup_during_a_reload_does_not_hang_the_process(tmp_path: Path) -> None:
    """operations.md: reload "e.g. on SIGHUP". A second SIGHUP arriving while the first
    one's reload ran (in the main thread, as Python runs signal handlers) made the handler
    wait for the reload lock its own thread held: the worker hung for good."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from compliance import engine as engine_module
        from compliance.engine import Engine
        from compliance.testing import FixedGeolocator

        folder = {str(tmp_path)!r}
        rule = (
            "version: 1\\nrules:\\n  - id: {{id}}\\n    title: t\\n    jurisdictions: [RU]\\n"
            "    notice: {{{{text: {{{{en: N.}}}}}}}}\\n"
        )
        open(os.path.join(folder, "a.yaml"), "w").write(rule.format(id="first"))
        engine = Engine.from_paths([folder], geolocator=FixedGeolocator({{}}))
        load_rules, results = engine_module.load_rules, []

        def loading(*args, **kwargs):
            ruleset = load_rules(*args, **kwargs)  # the files are read; then, mid-reload:
            if len(results) == 0 and engine.reload_counts() == {{}}:
                open(os.path.join(folder, "a.yaml"), "w").write(rule.format(id="second"))
                os.kill(os.getpid(), signal.SIGHUP)  # the handler runs here, at once
            return ruleset

        engine_module.load_rules = loading
        signal.signal(signal.SIGHUP, lambda *_: results.append(engine.reload()))
        signal.alarm(10)  # a hang ends the process instead of the test run
        os.kill(os.getpid(), signal.SIGHUP)
        assert results == [True, True], results
        assert engine.rule_ids == ("second",), engine.rule_ids  # read after the signal
        assert engine.reload_counts() == {{"ok": 2}}, engine.reload_counts()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_check_called_inside_a_check_of_the_same_thread_does_not_hang(tmp_path: Path) -> None:
    """What a SIGHUP handler calling ``MaxMindGeolocator.reload()`` does when the signal
    lands while a lookup's check runs in that thread: it waited for the watcher's lock,
    held by its own thread, for ever. Now it returns at once and the running check looks
    once more, so a file changed meanwhile is reported by it."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("x")
    second.write_text("x")
    reported: list[set[str]] = []
    nested: list[dict[str, object]] = []

    def on_change(changes: Changes) -> None:
        reported.append(set(changes))
        if len(reported) == 1:
            _bump(second, "changed meanwhile")
            nested.append(watcher.check())  # as a signal handler would, in this thread

    watcher = FileWatcher([first, second], on_change)
    _bump(first, "y")
    thread = threading.Thread(target=watcher.check, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert nested == [{}]
    assert reported == [{str(first)}, {str(second)}]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_forked_during_a_reload_can_reload(tmp_path: Path) -> None:
    """gunicorn --preload: the master's rule watcher reloads while the master forks a
    worker. The worker inherited the reload lock held by a thread it does not have: its
    reloads (and ``metrics()``, which reads the reload counts) waited for ever, and its
    rules never changed again. The same for a geolocator's database check."""
    script = textwrap.dedent(
        f"""
        import os, signal, threading
        from compliance import engine as engine_module
        from compliance.engine import Engine
        from compliance.geo import MaxMindGeolocator
        from compliance.testing import FixedGeolocator, build_mmdb

        folder = {str(tmp_path)!r}
        rule = (
            "version: 1\\nrules:\\n  - id: {{id}}\\n    title: t\\n    jurisdictions: [RU]\\n"
            "    notice: {{{{text: {{{{en: N.}}}}}}}}\\n"
        )
        path = os.path.join(folder, "a.yaml")
        open(path, "w").write(rule.format(id="first"))
        engine = Engine.from_paths([folder], geolocator=FixedGeolocator({{}}))
        db = os.path.join(folder, "city.mmdb")
        ru = {{"77.88.55.0/24": {{"country": {{"iso_code": "RU"}}}}}}
        geo = MaxMindGeolocator(build_mmdb(db, ru))
        load_rules, loading, forked = engine_module.load_rules, threading.Event(), threading.Event()

        def slow(*args, **kwargs):  # a reload under way in another thread
            loading.set()
            forked.wait(10)
            return load_rules(*args, **kwargs)

        def reopening(database):  # a database reload under way in another thread
            loading.set()
            forked.wait(10)

        engine_module.load_rules = slow
        busy = threading.Thread(target=engine.reload)
        busy.start()
        loading.wait(10)
        loading.clear()
        geo._reopen = reopening
        geo._watcher.forget(geo.path)
        checker = threading.Thread(target=geo._watcher.check)
        checker.start()
        loading.wait(10)
        pid = os.fork()
        if pid == 0:
            engine_module.load_rules = load_rules
            del geo._reopen
            open(path, "w").write(rule.format(id="second"))

            new = build_mmdb(db + ".new", {{"77.88.55.0/24": {{"country": {{"iso_code": "DE"}}}}}})
            os.replace(new, db)  # and geoipupdate brings a new database

            # In this thread: a new one could reuse the ident of the one that held the
            # locks, which a reentrant lock would take for its owner.
            signal.alarm(10)  # a hang ends the child
            engine.reload()
            engine.reload_counts()
            ok = geo.reload() and geo.reload(force=True) and engine.rule_ids == ("second",)
            ok = ok and geo.locate("77.88.55.88").country == "DE"
            os._exit(0 if ok else 3)
        forked.set()
        busy.join()
        checker.join()
        _, status = os.waitpid(pid, 0)
        raise SystemExit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr

"""One way to notice that files changed: rule files and geolocation databases alike.

A file's :func:`signature` is ``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)``: a new
file renamed into place has a new inode, a file rewritten in place a new size or modification
time, and a file whose permissions or owner were fixed (``chmod``, ``chown``: a file that could
not be read before may be now) a new status-change time. A
:class:`FileWatcher` remembers the signature of each watched file and, when one differs (a file
appeared, changed or vanished), calls its callback with what changed.

It runs either in a background thread (:meth:`FileWatcher.start`, polling every ``interval``
seconds) or on demand (:meth:`FileWatcher.check`), which is what a caller uses that wants to
check from its own code path at no cost between checks. Threads do not survive ``fork()``: a
watcher running when a process forks (gunicorn's ``--preload``) starts again in the child.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> (folder / "a.yaml").write_text("version: 1\\n")
11
>>> seen = []
>>> watcher = FileWatcher([folder / "a.yaml"], seen.append)
>>> watcher.check()
{}
>>> (folder / "a.yaml").unlink()
>>> watcher.check() == {str(folder / "a.yaml"): None} == seen[0]
True
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Final, Self

__all__ = ["FileWatcher", "Signature", "signature"]

log = logging.getLogger("compliance.watch")

Signature = tuple[int, int, int, int, int]
"""``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` of a file."""

Changes = Mapping[str, Signature | None]
"""Changed files by path: the new signature, or None for a file that is gone."""

StrPath = str | os.PathLike[str]

# A baseline that no real signature equals: the next check reports the file again.
_FORGOTTEN: Final[Signature] = (-1, -1, -1, -1, -1)


def signature(path: StrPath) -> Signature | None:
    """The signature of the file at ``path``, or None when it cannot be read (missing,
    no permission). Follows symlinks: replacing a symlink's target counts as a change.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class FileWatcher:
    """Watches files for changes and calls ``on_change(changes)`` when any differ.

    ``paths`` is a fixed list, or a callable listing the files to watch now (called at every
    check, so files appearing in a watched folder are noticed). The signatures at creation are
    the baseline: nothing is reported for them. An exception in ``on_change`` is logged (on
    the ``compliance.watch`` logger) and watching goes on; the changes count as reported.

    ``interval`` (seconds, > 0) is how often the background thread checks, once started.
    """

    def __init__(
        self,
        paths: Iterable[StrPath] | Callable[[], Iterable[StrPath]],
        on_change: Callable[[Changes], object],
        *,
        interval: float = 2.0,
        name: str = "compliance-file-watcher",
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        if callable(paths):
            self._list: Callable[[], Iterable[StrPath]] = paths
        else:
            fixed = tuple(os.fspath(path) for path in paths)
            self._list = lambda: fixed
        self._on_change = on_change
        self.interval: float = float(interval)
        """Seconds between checks of the background thread."""
        self.name = name
        self._lock = threading.Lock()
        self._checking: int | None = None  # the thread checking now
        self._again = False  # a check was asked for during the one running
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, Signature | None] = {}
        self._listing_failed = False
        self._seen = self._scan()
        _watchers.add(self)  # for the lock's reset in a forked child

    @property
    def signatures(self) -> Mapping[str, Signature | None]:
        """The last signature seen per watched path (None: missing)."""
        return dict(self._seen)

    def _scan(self) -> dict[str, Signature | None]:
        try:
            listed = [os.fspath(path) for path in self._list()]
        except Exception as exc:  # a folder that vanished, a glob that failed
            if not self._listing_failed:  # once, until listing works again
                log.warning("%s: cannot list the watched files (%s)", self.name, exc)
            self._listing_failed = True
            return dict(self._seen)
        self._listing_failed = False
        return {path: signature(path) for path in listed}

    def check(self, *, blocking: bool = True) -> dict[str, Signature | None]:
        """Check now; call ``on_change`` with any changes and return them.

        With ``blocking=False``, return ``{}`` at once when another thread is checking.
        Called while a check runs in the same thread (a signal handler interrupted it), it
        returns ``{}`` at once, and the check under way looks once more when done.
        """
        me = threading.get_ident()
        if self._checking == me:  # waiting for the lock would be waiting for itself
            self._again = True
            return {}
        if not self._lock.acquire(blocking=blocking):
            return {}
        self._checking = me
        try:
            found: dict[str, Signature | None] = {}
            while True:
                self._again = False
                found.update(self._check())
                if not self._again:
                    return found
        finally:
            self._checking = None
            self._lock.release()

    def _check(self) -> dict[str, Signature | None]:
        current = self._scan()
        seen = self._seen
        changes = {path: sig for path, sig in current.items() if seen.get(path, 0) != sig}
        changes.update((path, None) for path in seen if path not in current)
        if not changes:
            return {}
        self._seen = current
        try:
            self._on_change(changes)
        except Exception:
            log.exception("%s: handling changed files failed", self.name)
        return changes

    def forget(self, path: StrPath) -> None:
        """Report ``path`` again at the next check even if it does not change (a consumer
        that could not use the file yet, say because it was still being written)."""
        key = os.fspath(path)
        if key in self._seen:
            self._seen = {**self._seen, key: _FORGOTTEN}

    def accept(self, path: StrPath, sig: Signature | None) -> None:
        """Take ``sig`` as the baseline for ``path`` (what a consumer actually opened)."""
        self._seen = {**self._seen, os.fspath(path): sig}

    # --- background thread ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The background thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Check every ``interval`` seconds in a daemon thread (until :meth:`stop`)."""
        if self.running:
            return self
        self._stop.clear()
        thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread = thread
        _running.add(self)
        thread.start()
        return self

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            self.check()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the background thread and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        _running.discard(self)
        thread = self._thread
        self._thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _after_fork(self) -> None:
        # The child has the watcher's state but not its thread, and maybe a lock held by a
        # thread it does not have (an on-demand watcher too: a lookup's check, say).
        self._lock = threading.Lock()
        self._checking = None
        if self in _running:
            self._thread = None
            if not self._stop.is_set():
                self.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<FileWatcher {self.name!r} {len(self._seen)} files, {state}>"


_running: weakref.WeakSet[FileWatcher] = weakref.WeakSet()
_watchers: weakref.WeakSet[FileWatcher] = weakref.WeakSet()


def _restart_in_child() -> None:
    for watcher in list(_watchers):
        watcher._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_in_child)

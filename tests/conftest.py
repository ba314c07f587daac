"""Shared fixtures: paths to the optional shared test data beside the repository."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from compliance.engine import Engine
from compliance.html.tokenizer import QuietSink, Tokenizer
from compliance.testing import FixedGeolocator

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def geoip_test_data() -> Path:
    """MaxMind's official test databases from ``../shared``; skip when absent."""
    path = SHARED / "geoip-test-data"
    if not (path / "GeoIP2-City-Test.mmdb").is_file():
        pytest.skip("../shared/geoip-test-data is not present")
    return path


@pytest.fixture(scope="session")
def html_corpus() -> Path:
    """html5lib's tree-construction inputs from ``../shared``; skip when absent."""
    path = SHARED / "html-corpus" / "html5lib-tree-construction"
    if not path.is_dir():
        pytest.skip("../shared/html-corpus is not present")
    return path


@pytest.fixture(autouse=True)
def _fresh_fault_log() -> None:
    """Each test sees library faults and bad geolocation values logged afresh (they are
    de-duplicated, and bounded, over time)."""
    from compliance import core
    from compliance.geo import location

    core._seen.clear()
    location._warn_windows.clear()


CHROMIUM = os.environ.get("COMPLIANCE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package, launched by path) through Playwright; skipped
    when /usr/bin/chromium or the ``playwright`` package is missing."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # a Chromium that cannot start here is an environment gap
            pytest.skip(f"Chromium does not start: {exc}")
        try:
            yield launched
        finally:
            launched.close()


READERS: Mapping[str, str] = {"192.0.2.1": "RU", "192.0.2.2": "DE"}
"""The readers most middleware tests use: an address in Russia and one in Germany."""

MakeEngine = Callable[..., Engine]


@pytest.fixture(scope="session")
def make_engine(tmp_path_factory: pytest.TempPathFactory) -> MakeEngine:
    """``make_engine(rules_yaml, locations=READERS)``: an engine over one rule file written to a
    fresh folder, each address placed by a :class:`FixedGeolocator` (codes such as ``"RU"``)."""

    def make(rules: str, locations: Mapping[str, str] = READERS) -> Engine:
        folder = tmp_path_factory.mktemp("rules")
        (folder / "rules.yaml").write_text(rules, encoding="utf-8")
        return Engine.from_paths([folder], geolocator=FixedGeolocator(dict(locations)))

    return make


class _BrokenGeolocator:
    """A geolocator whose every lookup fails, for fault tests."""

    def locate(self, ip: object, headers: object = None, *, trusted: bool = False) -> object:
        raise RuntimeError("geo database exploded")

    def close(self) -> None:
        pass


class _RenderFails:
    """An engine whose decisions raise when their snippets are rendered."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def locate(self, ip: str | None) -> object:
        return self.engine.locate(ip)  # type: ignore[attr-defined]

    def decide(self, **kwargs: object) -> object:
        decision = self.engine.decide(**kwargs)  # type: ignore[attr-defined]

        class Proxy:
            def __getattr__(self, name: str) -> object:
                return getattr(decision, name)

            def snippets(self, *args: object, **kw: object) -> object:
                raise RuntimeError("render exploded")

        return Proxy()


@pytest.fixture
def broken_geolocator() -> _BrokenGeolocator:
    return _BrokenGeolocator()


@pytest.fixture
def render_fails() -> type[_RenderFails]:
    """Wrap an engine so that rendering its notices raises."""
    return _RenderFails


class TagNames(QuietSink):
    """A token sink that keeps the names of the tags a tokenizer reports (end tags with a
    leading "/") and ignores everything else."""

    def __init__(self) -> None:
        self.tags: list[bytes] = []

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        self.tags.append(b"/" + name if is_end else name)

    def on_text(self, data: bytes, start: int, end: int) -> None:
        pass


@pytest.fixture
def tag_names() -> TagNames:
    """A fresh :class:`TagNames` sink."""
    return TagNames()


class TagSteps:
    """How many tags the tokenizer read one at a time, in Python (each a step of several
    microseconds: what the C-level matches and deferred readings save)."""

    count = 0


@pytest.fixture
def tag_steps(monkeypatch: pytest.MonkeyPatch) -> TagSteps:
    """Counts the tags read one at a time, by every tokenizer, while a test runs."""
    steps = TagSteps()
    read_tag = Tokenizer._tag

    def counted(self: Tokenizer, *args: Any) -> None:
        steps.count += 1
        read_tag(self, *args)

    monkeypatch.setattr(Tokenizer, "_tag", counted)
    return steps

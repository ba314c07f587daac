"""Shared fixtures: paths to the optional shared test data beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    """Each test sees library faults logged afresh (they are de-duplicated over time)."""
    from compliance import policy

    policy._fault_seen.clear()

"""A CDN's country through a real uvicorn on 127.0.0.1, as docs/geolocation.md sets it up.

The CDN's headers are believed only when the socket peer is a trusted proxy. uvicorn, with
its defaults, rewrites the client address from ``X-Forwarded-For`` for peers on 127.0.0.1:
the middleware then sees the reader as the peer and never reads the CDN's country. The page
says to turn that rewriting off (``--no-proxy-headers``) when ``geo_header`` is used; these
tests hold both halves of that sentence to what the server does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import harness as h
import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "apps"
IN_GERMANY = "81.169.145.105"  # in Germany for the embedded geolocator
RULES = """\
version: 1
rules:
  - id: ru-notice
    title: A notice for readers in Russia
    jurisdictions: [RU]
    notice:
      default_locale: en
      text: {en: For readers in Russia.}
"""
NOTICE = b'data-compliance-rule="ru-notice"'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, Path]]]:
    """uvicorn with its defaults, and with ``--no-proxy-headers``: {name: (base URL, log)}."""
    folder = tmp_path_factory.mktemp("cdn-header")
    (folder / "rules").mkdir()
    (folder / "rules" / "rules.yaml").write_text(RULES, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "COMPLIANCE_CDN_RULES": str(folder / "rules"),
    }
    env.pop("FORWARDED_ALLOW_IPS", None)  # uvicorn's default: 127.0.0.1
    processes: list[subprocess.Popen[bytes]] = []
    found: dict[str, tuple[str, Path]] = {}
    try:
        for name, flags in (("defaults", []), ("no-proxy-headers", ["--no-proxy-headers"])):
            port = h.free_port()
            log = folder / f"{name}.log"
            with log.open("wb") as stderr:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS),
                            "--host", "127.0.0.1", "--port", str(port), *flags,
                            "--lifespan", "off", "--log-level", "warning",
                            "compliance_cdn_header_app:app",
                        ],
                        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
                    )
                )  # fmt: skip
            found[name] = (f"http://127.0.0.1:{port}", log)
            h.serving(found[name][0] + "/", processes[-1], log)
        yield found
    finally:
        h.stop(*processes)


def _get(base: str) -> httpx.Response:
    """The page for a reader Cloudflare places in Russia whose address is in Germany, as
    the proxy on 127.0.0.1 in front (this test) forwards it."""
    headers = {"X-Forwarded-For": IN_GERMANY, "CF-IPCountry": "RU"}
    return httpx.get(base + "/", headers=headers, timeout=10)


def test_with_the_rewriting_off_the_cdn_country_is_read(
    servers: dict[str, tuple[str, Path]],
) -> None:
    base, log = servers["no-proxy-headers"]
    answer = _get(base)
    assert answer.status_code == 200
    assert NOTICE in answer.content
    assert "cf-ipcountry" in answer.headers["vary"].lower()
    assert "not in trusted_proxies" not in log.read_text()


def test_with_uvicorns_defaults_the_cdn_country_is_never_read_and_that_is_told(
    servers: dict[str, tuple[str, Path]],
) -> None:
    base, log = servers["defaults"]
    for _ in range(2):
        answer = _get(base)
        assert answer.status_code == 200
        assert NOTICE not in answer.content  # located by address: Germany
        assert "private" in answer.headers["cache-control"]
    told = [line for line in log.read_text().splitlines() if "not in trusted_proxies" in line]
    assert len(told) == 1, told
    assert "--no-proxy-headers" in told[0]
    assert IN_GERMANY not in told[0]

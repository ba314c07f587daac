"""End to end through gunicorn and uvicorn started as subprocesses on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "apps"
ASIDE = 'data-compliance-rule="ru-undesirable-organization"'
IN_RUSSIA, IN_GERMANY = "77.88.55.88", "81.169.145.105"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS),
            "--host", "127.0.0.1", "--port", str(port),
            # The middleware resolves forwarded addresses itself.
            "--no-proxy-headers", "--lifespan", "off", "--log-level", "warning",
            "compliance_test_servers:asgi_app",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "--chdir", str(APPS),
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning",
        "compliance_test_servers:wsgi_app",
    ]  # fmt: skip


def start(server: str, trusted: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "COMPLIANCE_TRUSTED": trusted,
        "COMPLIANCE_GEO_HEADER": "cloudflare",
    }
    process = subprocess.Popen(
        command(server, port), env=env, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server} exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                httpx.get(base + "/api", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def trusted_server(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from start(request.param, "127.0.0.1")


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def untrusted_server(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from start(request.param, "10.0.0.0/8")


def test_forwarded_for_from_a_trusted_proxy(trusted_server: str) -> None:
    russia = httpx.get(trusted_server + "/", headers={"X-Forwarded-For": IN_RUSSIA})
    assert russia.status_code == 200
    assert ASIDE in russia.text
    assert russia.headers["cache-control"] == "private"
    assert russia.headers["content-length"] == str(len(russia.content))
    germany = httpx.get(trusted_server + "/", headers={"X-Forwarded-For": IN_GERMANY})
    assert ASIDE not in germany.text


def test_cf_ipcountry_from_a_trusted_proxy(trusted_server: str) -> None:
    answer = httpx.get(trusted_server + "/", headers={"CF-IPCountry": "RU"})
    assert ASIDE in answer.text
    assert "CF-IPCountry" in answer.headers["vary"]
    assert "cache-control" not in answer.headers
    assert ASIDE not in httpx.get(trusted_server + "/", headers={"CF-IPCountry": "DE"}).text


def test_json_untouched(trusted_server: str) -> None:
    answer = httpx.get(trusted_server + "/api", headers={"X-Forwarded-For": IN_RUSSIA})
    assert answer.content == b'{"ok": true}'
    assert "vary" not in answer.headers


def test_debug_header_for_loopback_clients(trusted_server: str) -> None:
    answer = httpx.get(trusted_server + "/", headers={"X-Forwarded-For": IN_RUSSIA})
    # The client address resolved through the proxy is not in debug_networks.
    assert "x-compliance-decision" not in answer.headers
    direct = httpx.get(trusted_server + "/")
    assert direct.headers["x-compliance-decision"].startswith("none; location=unknown")


def test_spoofed_headers_from_an_untrusted_peer_are_ignored(untrusted_server: str) -> None:
    for headers in (
        {"X-Forwarded-For": IN_RUSSIA},
        {"CF-IPCountry": "RU"},
        {"Forwarded": f"for={IN_RUSSIA}"},
    ):
        answer = httpx.get(untrusted_server + "/", headers=headers)
        assert answer.status_code == 200
        assert ASIDE not in answer.text

"""The host a proxy names, through a real nginx in front of uvicorn on 127.0.0.1.

nginx passes its ``proxy_pass`` address as ``Host`` unless told otherwise, and many set-ups
put the reader's host in ``X-Forwarded-Host`` instead. Rules with ``hosts:`` then match the
application's own name: with ``forwarded_host=True`` they match the reader's host; without
it, the library says so in one WARNING (before, nothing reached those readers, silently).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import harness as h
import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "apps"
IN_RUSSIA = "77.88.55.88"  # in Russia for the embedded geolocator
RULES = """\
version: 1
rules:
  - id: site-notice
    title: A notice on one site, for readers in Russia
    jurisdictions: [RU]
    hosts: [www.example.org]
    notice:
      placement: body_end
      default_locale: en
      text: {en: For readers in Russia.}
"""
NOTICE = b'data-compliance-rule="site-notice"'


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, Path]]]:
    """nginx in front of each application: {name: (nginx's base URL, the app's log)}."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        h.missing("nginx", "apt-get install nginx")
    folder = tmp_path_factory.mktemp("forwarded-host")
    (folder / "rules").mkdir()
    (folder / "rules" / "rules.yaml").write_text(RULES, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "COMPLIANCE_FH_RULES": str(folder / "rules"),
    }
    processes: list[subprocess.Popen[bytes]] = []
    servers: list[str] = []
    found: dict[str, tuple[str, Path]] = {}
    try:
        for name in ("believing", "plain"):
            port, front = h.free_port(), h.free_port()
            log = folder / f"{name}.log"
            with log.open("wb") as stderr:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS),
                            "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
                            "--lifespan", "off", "--log-level", "warning",
                            f"compliance_forwarded_host_app:{name}",
                        ],
                        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
                    )
                )  # fmt: skip
            h.serving(f"http://127.0.0.1:{port}/", processes[-1], log)
            # nginx's defaults, but for X-Forwarded-For and X-Forwarded-Host: Host is the
            # proxy_pass address.
            servers.append(
                f"""    server {{
        listen 127.0.0.1:{front};
        location / {{
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host $host;
            proxy_pass http://127.0.0.1:{port};
        }}
    }}"""
            )
            found[name] = (f"http://127.0.0.1:{front}", log)
        (folder / "nginx.conf").write_text(h.proxy_conf(folder, "\n".join(servers)))
        processes.append(
            subprocess.Popen(
                [nginx, "-p", str(folder), "-e", str(folder / "error.log"), "-c", "nginx.conf"],
                cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        for base, _ in found.values():
            h.serving(base + "/", processes[-1], folder / "error.log")
        yield found
    finally:
        h.stop(*processes)


def _get(base: str) -> httpx.Response:
    """The page, asked for www.example.org by a reader in Russia (through a proxy of the
    test's own, which nginx does not trust but passes on)."""
    headers = {"Host": "www.example.org", "X-Forwarded-For": IN_RUSSIA}
    return httpx.get(base + "/", headers=headers, timeout=10)


def test_rules_match_the_host_nginx_names_with_forwarded_host(
    sites: dict[str, tuple[str, Path]],
) -> None:
    base, _ = sites["believing"]
    answer = _get(base)
    assert answer.status_code == 200
    assert answer.headers["x-seen-host"].startswith("127.0.0.1:")  # nginx rewrote Host
    assert NOTICE in answer.content


def test_without_forwarded_host_the_other_host_is_told(
    sites: dict[str, tuple[str, Path]],
) -> None:
    base, log = sites["plain"]
    for _ in range(2):
        answer = _get(base)
        assert answer.status_code == 200
        assert NOTICE not in answer.content
    time.sleep(0.2)  # (the log line is written before the response; flushed with it)
    told = [line for line in log.read_text().splitlines() if "X-Forwarded-Host" in line]
    assert len(told) == 1, told
    assert "for host www.example.org" in told[0]
    assert "forwarded_host=True" in told[0]

"""Load test: the middleware under uvicorn (ASGI) and gunicorn (WSGI) on 127.0.0.1.

For each server: ``--requests`` requests (default 20,000; ``--quick``: 2,000) at 64-way
concurrency from a mix of readers (RU, UA-43, DE, unknown), chosen per request by an
``X-Forwarded-For`` address from a self-built ``.mmdb`` (the server trusts the proxy
127.0.0.1). Meanwhile the rule file is rewritten every second (two versions with different
texts, both accepted) while the engine watches it, and the geo database is swapped once, a
third of the way in, by ``os.replace`` with a file mapping the same readers through other
networks.

Every response is checked: status 200, exactly the expected notice for the reader (none for
DE and unknown, whose page must come back byte for byte), a notice text of either rule
version; both versions must be seen when a run lasts 2.5 s or more, and the swapped
database's networks must be seen after the swap. Server memory (VmRSS, gunicorn master
and workers summed) is read after a warm-up and at the end: growth must stay under 10 MB.
Exit status 1 on any failure. Servers are always stopped.

    python benchmarks/load.py [--requests N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "benchmarks"))

from load_app import PAGE  # noqa: E402

from compliance.testing import build_mmdb  # noqa: E402

CONCURRENCY = 64
MEMORY_BUDGET_MB = 10.0
RULE_ID = "load-notice"
TEXTS = ("Version A of the load notice.", "Version B of the load notice.")
RULES = """\
version: 1
rules:
  - id: {id}
    title: load test notice
    jurisdictions: [RU, UA-43]
    notice:
      default_locale: en
      text:
        en: "{text}"
"""

# Readers: (name, networks in the first database, networks in the swapped one, expected ids).
# TEST-NET-1 (192.0.2.0/24) is a documentation range: unknown without any lookup.
READERS = {
    "RU": (["77.88.0.0/16"], ["77.88.0.0/17", "77.88.128.0/17"], [RULE_ID]),
    "UA-43": (["1.231.232.0/24"], ["1.231.232.0/25", "1.231.232.128/25"], [RULE_ID]),
    "DE": (["81.169.0.0/16"], ["81.169.0.0/17", "81.169.128.0/17"], []),
    "unknown": (["192.0.2.0/24"], ["192.0.2.0/24"], []),
}
RECORDS = {
    "RU": {"country": {"iso_code": "RU"}},
    "UA-43": {"country": {"iso_code": "UA"}, "subdivisions": [{"iso_code": "43"}]},
    "DE": {"country": {"iso_code": "DE", "is_in_european_union": True}},
}
_RULE_ATTR = re.compile(rb'data-compliance-rule="([^"]+)"')


def _database(path: Path, second: bool) -> Path:
    networks = {}
    for name, (first_nets, second_nets, _) in READERS.items():
        if name in RECORDS:
            for network in second_nets if second else first_nets:
                networks[network] = RECORDS[name]
    return build_mmdb(path, networks)


def _address(rng: random.Random, name: str) -> str:
    base = {"RU": "77.88", "UA-43": "1.231.232", "DE": "81.169", "unknown": "192.0.2"}[name]
    if base.count(".") == 1:
        return f"{base}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"{base}.{rng.randrange(1, 255)}"


def _write_rules(folder: Path, version: int) -> None:
    temporary = folder / ".rules.yaml.tmp"
    temporary.write_text(RULES.format(id=RULE_ID, text=TEXTS[version]))
    os.replace(temporary, folder / "rules.yaml")  # atomic: the watcher never sees half a file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- servers ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s")

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *_children(self.process.pid)]

    def rss_mb(self) -> float:
        return sum(_rss_kb(pid) for pid in self.pids()) / 1024

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def errors(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if line.startswith(("LOG ERROR", "LOG CRITICAL")) or "Traceback" in line
        ]


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    requests: int = 0
    errors: int = 0
    wrong: int = 0
    seconds: float = 0.0
    rss_warm: float = 0.0
    rss_end: float = 0.0
    versions: Counter[str] = field(default_factory=Counter)
    networks_after_swap: int = 0
    server_errors: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return self.rss_end - self.rss_warm

    @property
    def passed(self) -> bool:
        return (
            self.errors == 0
            and self.wrong == 0
            and not self.server_errors
            and self.growth < MEMORY_BUDGET_MB
            and (self.seconds < 2.5 or all(self.versions[text] > 0 for text in TEXTS))
            and self.networks_after_swap > 0
        )


class _Connection:
    """One keep-alive HTTP/1.1 connection. httpx's pool tops out near 100 requests per
    second at 64 connections here, which would measure the client, not the servers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            found: dict[str, str] = {}
            for line in header_lines:
                if line:
                    name, _, value = line.partition(":")
                    found[name.strip().lower()] = value.strip()
            if "content-length" in found:
                body = await self.reader.readexactly(int(found["content-length"]))
            elif found.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    parts.append(await self.reader.readexactly(size + 2))
                    if size == 0:
                        break
                body = b"".join(part[:-2] for part in parts)
            else:
                body = await self.reader.read()
            if found.get("connection", "").lower() == "close":
                await self.close()
        except BaseException:
            await self.close()
            raise
        return status, found, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _drive(server: Server, total: int, swap: threading.Event, result: Result) -> None:
    names = list(READERS)
    counter = iter(range(total))
    warm_up = min(max(total // 10, 500), total)
    rng = random.Random(7)
    swap_at = total // 3
    swapped_networks = {net for name in RECORDS for net in READERS[name][1]}
    done = 0
    warm = asyncio.Event()

    def fail(kind: str, message: str) -> None:
        if kind == "error":
            result.errors += 1
        else:
            result.wrong += 1
        if len(result.samples) < 10:
            result.samples.append(message)

    async def worker() -> None:
        nonlocal done
        connection = _Connection(server.port)
        try:
            for index in counter:
                if index == swap_at:
                    swap.set()
                name = names[index % len(names)]
                expected = READERS[name][2]
                address = _address(rng, name)
                try:
                    status, headers, body = await connection.get(
                        "/story", {"X-Forwarded-For": address}
                    )
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    fail("error", f"{name} {address}: {type(exc).__name__}: {exc}")
                    continue
                finally:
                    result.requests += 1
                    done += 1
                    if done == warm_up:
                        warm.set()
                if status != 200:
                    fail("error", f"{name} {address}: status {status}")
                    continue
                ids = [m.decode() for m in _RULE_ATTR.findall(body)]
                if ids != expected:
                    fail("wrong", f"{name} {address}: notices {ids}, expected {expected}")
                elif expected:
                    version = next((t for t in TEXTS if t.encode() in body), None)
                    if version is None:
                        fail("wrong", f"{name} {address}: notice text of neither version")
                    else:
                        result.versions[version] += 1
                elif body != PAGE:
                    fail("wrong", f"{name} {address}: the page came back changed")
                if headers.get("x-network") in swapped_networks:
                    result.networks_after_swap += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    waiter = asyncio.create_task(warm.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    result.rss_warm = server.rss_mb()
    await asyncio.gather(*tasks)
    waiter.cancel()
    result.seconds = time.perf_counter() - started
    result.rss_end = server.rss_mb()


def run_one(server: Server, total: int, workdir: Path, rules: Path, db: Path) -> Result:
    result = Result(server.name)
    swap = threading.Event()
    stop = threading.Event()

    def background() -> None:
        version = 0
        swapped = False
        next_rewrite = time.monotonic() + 1.0
        while not stop.wait(0.05):
            if swap.is_set() and not swapped:
                fresh = _database(workdir / f"swap-{server.name}.mmdb", second=True)
                os.replace(fresh, db)
                swapped = True
            if time.monotonic() >= next_rewrite:
                version = 1 - version
                _write_rules(rules, version)
                next_rewrite += 1.0

    _write_rules(rules, 0)
    _database(workdir / "first.mmdb", second=False).replace(db)
    server.start()
    thread = threading.Thread(target=background, daemon=True)
    try:
        server.wait_ready()
        thread.start()
        asyncio.run(_drive(server, total, swap, result))
        time.sleep(0.3)  # let anything the last reload logs reach the log file
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5)
        server.stop()
    result.server_errors = server.errors()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per server")
    parser.add_argument("--quick", action="store_true", help="about 2,000 requests per server")
    args = parser.parse_args(argv)
    total = 2_000 if args.quick else args.requests
    python = sys.executable
    results = []
    with tempfile.TemporaryDirectory(prefix="compliance-load-") as tmp:
        workdir = Path(tmp)
        for name in ("uvicorn", "gunicorn"):
            rules = workdir / f"rules-{name}"
            rules.mkdir()
            db = workdir / f"GeoIP2-City-{name}.mmdb"
            port = _free_port()
            env = {"LOAD_RULES": str(rules), "LOAD_GEO_DB": str(db), "LOAD_WATCH": "0.1"}
            if name == "uvicorn":
                env["LOAD_ASGI"] = "1"
                command = [
                    python, "-m", "uvicorn", "load_app:asgi_app",
                    "--app-dir", str(REPO / "benchmarks"),
                    "--host", "127.0.0.1", "--port", str(port),
                    "--no-access-log", "--log-level", "warning",
                    "--no-proxy-headers",  # the middleware, not uvicorn, reads X-Forwarded-For
                    "--backlog", "256",
                ]  # fmt: skip
            else:
                env["LOAD_WSGI"] = "1"
                command = [
                    python, "-m", "gunicorn", "load_app:wsgi_app",
                    "--chdir", str(REPO / "benchmarks"),
                    "--bind", f"127.0.0.1:{port}",
                    "--workers", "2", "--worker-class", "gthread", "--threads", "32",
                    "--log-level", "warning", "--backlog", "256",
                ]  # fmt: skip
            server = Server(name, command, env, port, workdir / f"{name}.log")
            results.append(run_one(server, total, workdir, rules, db))

    print(f"{'server':<10}{'requests':>10}{'errors':>8}{'wrong':>8}{'rps':>8}"
          f"{'RSS warm':>11}{'RSS end':>10}{'growth':>9}  versions A/B  after swap")  # fmt: skip
    for r in results:
        print(
            f"{r.server:<10}{r.requests:>10}{r.errors:>8}{r.wrong:>8}"
            f"{r.requests / r.seconds:>8.0f}{r.rss_warm:>8.1f} MB{r.rss_end:>7.1f} MB"
            f"{r.growth:>6.1f} MB  {r.versions[TEXTS[0]]}/{r.versions[TEXTS[1]]}"
            f"  {r.networks_after_swap}"
        )
        for sample in r.samples:
            print(f"  {r.server}: {sample}")
        for line in r.server_errors[:10]:
            print(f"  {r.server} log: {line}")
        if r.growth >= MEMORY_BUDGET_MB:
            print(f"  {r.server}: memory grew {r.growth:.1f} MB (budget {MEMORY_BUDGET_MB} MB)")
        if r.seconds >= 2.5 and not all(r.versions[text] > 0 for text in TEXTS):
            print(f"  {r.server}: the rule reloads were not seen in responses")
        if r.networks_after_swap == 0:
            print(f"  {r.server}: the swapped geo database was not seen in responses")
    passed = all(r.passed for r in results)
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Middleware budgets (DESIGN.md section 7), measured in one run.

1. Peak memory while streaming a 100 MB HTML body, with a notice injected, through each
   adapter: under 10 MB above the baseline (resident set size, each adapter in a fresh
   process: the high-water mark after streaming minus the RSS just before).
2. Requests per second through uvicorn (ASGI) and gunicorn (WSGI), one worker each, a 50 KB
   page with a notice injected, against the bare application: at least 90%.

Run ``python benchmarks/middleware.py``; prints PASS/FAIL per budget and exits 1 on a FAIL.
This file is also the application module the servers import (``middleware:asgi_app``).
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from compliance import asgi, wsgi  # noqa: E402
from compliance.engine import Engine  # noqa: E402

IN_RUSSIA = "77.88.55.88"
NOTICE = b'data-compliance-rule="ru-undesirable-organization"'
MEMORY_BUDGET = 10 * 1024 * 1024
RPS_BUDGET = 0.90
STREAM_BYTES = 100 * 1024 * 1024
REQUESTS = 2000
CONCURRENCY = 16
ROUNDS = 3

_PARAGRAPH = b"<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p>\n"
_HEAD = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>B</title></head>\n'
    b"<body>\n"
)
_TAIL = b"</body>\n</html>\n"
PAGE = _HEAD + _PARAGRAPH * ((50 * 1024 - len(_HEAD) - len(_TAIL)) // len(_PARAGRAPH)) + _TAIL


# -- the applications the servers run --------------------------------------------------------


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))]
    )
    return [PAGE]


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % len(PAGE)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


# For information: the same page rendered from a template on every request, as a real site
# does; the middleware's cost is then set against an application that does some work.
_TEMPLATE = None


def _render() -> bytes:
    global _TEMPLATE
    if _TEMPLATE is None:
        import jinja2

        _TEMPLATE = jinja2.Environment(autoescape=True).from_string(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{{ title }}'
            "</title></head>\n<body>\n{% for p in paragraphs %}<p>{{ p }}</p>\n{% endfor %}"
            "</body>\n</html>\n"
        )
    text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod."
    count = len(PAGE) // len(_PARAGRAPH)
    return _TEMPLATE.render(title="B", paragraphs=[text] * count).encode("utf-8")


def rendered_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    page = _render()
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))]
    )
    return [page]


async def rendered_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    page = _render()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % len(page)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": page})


# For information: the least any injecting middleware can do, with no decision, no policy
# and no HTML parsing: hold the body, splice a fixed notice before the last "</body>", fix
# Content-Length. Its rate bounds what the budget can ask of a real one.
_NAIVE_NOTICE = b'<aside data-compliance-rule="ru-undesirable-organization">N</aside>'


def _naive_splice(body: bytes) -> bytes:
    at = body.rfind(b"</body>")
    return body if at < 0 else body[:at] + _NAIVE_NOTICE + body[at:]


def naive_wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    captured: list[Any] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured[:] = [status, headers]
        return None

    result = bare_wsgi(environ, capture)
    body = _naive_splice(b"".join(result))
    status, headers = captured
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


async def naive_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    start: dict[str, Any] = {}
    parts: list[bytes] = []

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        parts.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = _naive_splice(b"".join(parts))
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        headers.append((b"content-length", b"%d" % len(body)))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    await bare_asgi(scope, receive, wrapped)


_engine = Engine.from_paths()
wsgi_app = wsgi.ComplianceMiddleware(bare_wsgi, _engine, trusted_proxies=["127.0.0.1"])
asgi_app = asgi.ComplianceMiddleware(bare_asgi, _engine, trusted_proxies=["127.0.0.1"])
rendered_wsgi_app = wsgi.ComplianceMiddleware(rendered_wsgi, _engine, trusted_proxies=["127.0.0.1"])
rendered_asgi_app = asgi.ComplianceMiddleware(rendered_asgi, _engine, trusted_proxies=["127.0.0.1"])


# -- memory -----------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _stream_chunks() -> Any:
    chunk = _PARAGRAPH * 800  # 64 KB, the same object every time: the app holds nothing
    yield _HEAD
    for _ in range(STREAM_BYTES // len(chunk)):
        yield chunk
    yield _TAIL


def _memory_wsgi() -> tuple[int, int]:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/html")])
        return _stream_chunks()

    mw = wsgi.ComplianceMiddleware(app, _engine)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "REMOTE_ADDR": IN_RUSSIA,
        "SERVER_NAME": "b",
    }
    total = 0
    found = False
    body = mw(environ, lambda status, headers, exc_info=None: None)
    for part in body:
        total += len(part)
        found = found or NOTICE in part
    body.close()  # type: ignore[attr-defined]
    assert found
    return total, 0


def _memory_asgi() -> tuple[int, int]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        for chunk in _stream_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    total = 0
    found = False

    async def send(message: Any) -> None:
        nonlocal total, found
        body = message.get("body", b"")
        total += len(body)
        found = found or NOTICE in body

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (IN_RUSSIA, 1)}
    asyncio.run(asgi.ComplianceMiddleware(app, _engine)(scope, receive, send))
    assert found
    return total, 0


def memory_child(adapter: str) -> None:
    """In a fresh process: stream once small to warm up, then 100 MB; print the RSS rise."""
    run = _memory_wsgi if adapter == "wsgi" else _memory_asgi
    _engine.decide(ip=IN_RUSSIA, host="b", path="/")
    baseline = _rss()
    start = time.perf_counter()
    total, _ = run()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{peak - baseline} {total} {elapsed:.2f}")


def measure_memory(adapter: str) -> tuple[int, int, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory", adapter], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


# -- requests per second ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(kind: str, target: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "uvicorn":
        cmd = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--no-access-log", "--no-proxy-headers",
            "--lifespan", "off", "--log-level", "warning", f"middleware:{target}",
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "gunicorn", "--chdir", str(HERE), "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--log-level", "warning", f"middleware:{target}",
        ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


IN_GERMANY = "81.169.145.105"


def _request(ip: str) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: " + ip.encode() + b"\r\n\r\n"


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bool]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length)
    return body, close


async def _load(port: int, requests: int, ip: str = IN_RUSSIA) -> tuple[float, bytes]:
    request = _request(ip)
    remaining = requests
    sample = b""

    async def worker() -> None:
        nonlocal remaining, sample
        reader = writer = None
        while remaining > 0:
            remaining -= 1
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            body, close = await _one(reader, writer, request)
            sample = body
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return requests / (time.perf_counter() - start), sample


def measure_rps(kind: str, target: str) -> tuple[float, bytes, float]:
    """Best-of-rounds req/s for readers in Russia (notice) and Germany (headers only)."""
    port = _free_port()
    process = _server(kind, target, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{kind} did not start") from None
                time.sleep(0.1)
        asyncio.run(_load(port, 200))  # warm up
        best, sample, plain = 0.0, b"", 0.0
        for _ in range(ROUNDS):
            rps, sample = asyncio.run(_load(port, REQUESTS))
            best = max(best, rps)
            plain = max(plain, asyncio.run(_load(port, REQUESTS, IN_GERMANY))[0])
        return best, sample, plain
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the report -------------------------------------------------------------------------------


def main() -> int:
    failed = False
    print(f"memory: streaming {STREAM_BYTES // 2**20} MB of HTML with a notice injected")
    for adapter in ("wsgi", "asgi"):
        rise, total, elapsed = measure_memory(adapter)
        ok = rise < MEMORY_BUDGET
        failed |= not ok
        print(
            f"  {adapter}: peak RSS {rise / 2**20:.2f} MB above baseline "
            f"({total / 2**20:.0f} MB out in {elapsed:.2f} s; budget < 10 MB) "
            f"{'PASS' if ok else 'FAIL'}"
        )
    print(
        f"throughput: {len(PAGE) // 1024} KB page, {REQUESTS} requests, best of {ROUNDS}, "
        f"{CONCURRENCY} connections, one server worker"
    )
    for kind, bare, wrapped in (
        ("uvicorn", "bare_asgi", "asgi_app"),
        ("gunicorn", "bare_wsgi", "wsgi_app"),
    ):
        bare_rps, bare_body, _ = measure_rps(kind, bare)
        rps, body, no_notice = measure_rps(kind, wrapped)
        assert NOTICE not in bare_body
        assert NOTICE in body, "the middleware did not inject the notice"
        ratio = rps / bare_rps
        ok = ratio >= RPS_BUDGET
        failed |= not ok
        print(
            f"  {kind}: bare {bare_rps:,.0f} req/s, with middleware {rps:,.0f} req/s, "
            f"{ratio:.1%} (budget >= 90%) {'PASS' if ok else 'FAIL'}"
        )
        print(
            f"    (reader without a notice: {no_notice:,.0f} req/s, {no_notice / bare_rps:.1%}:"
            " the middleware's own cost without the HTML scan)"
        )
        naive, naive_body, _ = measure_rps(kind, f"naive_{wrapped}")
        assert NOTICE in naive_body
        print(
            f"    (a naive middleware that only splices a fixed notice before the last "
            f"</body>: {naive:,.0f} req/s, {naive / bare_rps:.1%}; no budget)"
        )
        rendered_bare, _, _ = measure_rps(kind, f"rendered_{bare.split('_')[1]}")
        rendered, rendered_body, _ = measure_rps(kind, f"rendered_{wrapped}")
        assert NOTICE in rendered_body
        print(
            f"    (the page rendered from a Jinja2 template per request: bare "
            f"{rendered_bare:,.0f} req/s, with middleware {rendered:,.0f} req/s, "
            f"{rendered / rendered_bare:.1%}; no budget)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory_child(sys.argv[2])
        sys.exit(0)
    sys.exit(main())

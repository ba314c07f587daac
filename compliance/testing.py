"""Helpers for testing code that uses compliance: fixed geolocation, small ``.mmdb`` files,
and one-call drivers for WSGI and ASGI applications (with or without the middleware).

``build_mmdb`` needs the ``mmdb-writer`` and ``netaddr`` packages (the ``test`` extra).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

from compliance.geo import UNKNOWN, Location

__all__ = [
    "FixedGeolocator",
    "TestResponse",
    "asgi_scope",
    "build_mmdb",
    "call_asgi",
    "call_wsgi",
    "wsgi_environ",
]


class FixedGeolocator:
    """A geolocator with set answers: one location for everyone, or one per IP address.

    A location may be given as a :class:`~compliance.geo.Location` or as a code: a country
    (``"RU"``) or a full subdivision (``"UA-43"``, which also sets the country). Codes are
    checked here, so a typo fails at construction with
    :class:`~compliance.errors.ConfigurationError`, not at the first lookup. Records every
    call in ``calls`` as ``(ip, trusted)``.

    >>> from compliance.geo import Location
    >>> geo = FixedGeolocator({"192.0.2.1": Location.of("UA", "43")})
    >>> geo.locate("192.0.2.1").subdivisions, geo.locate("192.0.2.2").known
    (('UA-43',), False)
    >>> FixedGeolocator(Location.of("RU")).locate(None).country
    'RU'
    >>> FixedGeolocator("RU").locate("192.0.2.9").country
    'RU'
    >>> FixedGeolocator({"192.0.2.1": "UA-43"}).locate("192.0.2.1").subdivisions
    ('UA-43',)
    """

    def __init__(
        self,
        answer: Location | str | Mapping[str, Location | str],
        *,
        default: Location | str = UNKNOWN,
    ) -> None:
        self._answer: Location | dict[str, Location] = (
            _as_location(answer)
            if isinstance(answer, Location | str)
            else {ip: _as_location(value) for ip, value in answer.items()}
        )
        self._default = _as_location(default)
        self.calls: list[tuple[str | None, bool]] = []
        """Every ``(ip, trusted)`` asked about, in order."""
        self.closed = False
        """Whether ``close()`` was called."""

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """The set answer for ``ip``."""
        self.calls.append((ip, trusted))
        if isinstance(self._answer, Location):
            return self._answer
        if ip is None:
            return self._default
        return self._answer.get(ip, self._default)

    def close(self) -> None:
        """Note that the geolocator was closed."""
        self.closed = True

    def __repr__(self) -> str:
        return f"FixedGeolocator({self._answer!r})"


def _as_location(value: object) -> Location:
    if isinstance(value, Location):
        return value
    if isinstance(value, str):
        code = value.strip()
        if "-" in code:
            return Location.of(code.partition("-")[0], code)
        return Location.of(code)
    raise TypeError(f"expected a Location or a country code such as 'RU', not {value!r}")


def build_mmdb(
    path: str | os.PathLike[str],
    networks: Mapping[str, Mapping[str, Any]],
    *,
    database_type: str = "GeoIP2-City",
    ip_version: int = 6,
) -> Path:
    """Write a MaxMind DB file mapping each network (CIDR or address) to its record.

    Records use MaxMind's layout, e.g. ``{"country": {"iso_code": "UA"}, "subdivisions":
    [{"iso_code": "43"}]}``. IPv4 networks are also reachable in an IPv6 database. Returns
    the path.
    """
    try:
        import netaddr
        from mmdb_writer import MMDBWriter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "build_mmdb needs the mmdb-writer and netaddr packages: pip install 'compliance[test]'"
        ) from exc
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description={"en": f"compliance test database ({database_type})"},
    )
    for network, record in networks.items():
        writer.insert_network(netaddr.IPSet([network]), dict(record))
    target = Path(path)
    writer.to_db_file(os.fspath(target))
    return target


# --- driving applications ---------------------------------------------------------------------

Headers = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class TestResponse:
    """What an application answered: status, headers (in order), body, and the decision the
    middleware exposed (``environ["compliance.decision"]`` / ``scope["state"]``), if any."""

    __test__ = False  # not a pytest test class

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    decision: Any = None

    def header(self, name: str) -> str | None:
        """All values of header ``name`` joined with ", ", or None."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def notices(self) -> list[str]:
        """The rule ids of the notices in the body (``data-compliance-rule``), in order."""
        text = self.body.decode("utf-8", "replace")
        return re.findall(r'<aside class="compliance-notice" data-compliance-rule="([^"]*)"', text)


# As a client sends a URL: what a URL cannot hold percent-encoded as UTF-8, escapes kept.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def wsgi_environ(
    path: str = "/", *, peer: str = "127.0.0.1", method: str = "GET", headers: Headers = ()
) -> dict[str, Any]:
    """A PEP 3333 environ for a request from ``peer`` to ``path`` (with its query, if any, as
    in a URL); repeated headers are comma-joined, as servers do.

    As a server writes it: ``PATH_INFO`` is the path percent-decoded (UTF-8 bytes as a
    latin-1 string), ``QUERY_STRING`` the query as sent, and ``Content-Type`` and
    ``Content-Length`` go to ``CONTENT_TYPE`` and ``CONTENT_LENGTH``.

    >>> wsgi_environ("/a", headers=[("X-Forwarded-For", "192.0.2.1")])["HTTP_X_FORWARDED_FOR"]
    '192.0.2.1'
    >>> environ = wsgi_environ("/news?page=2")
    >>> environ["PATH_INFO"], environ["QUERY_STRING"]
    ('/news', 'page=2')
    >>> wsgi_environ("/caf%C3%A9")["PATH_INFO"] == "/café".encode().decode("latin-1")
    True
    """
    raw_path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "SCRIPT_NAME": "",
        "QUERY_STRING": quote(query, _QUERY_SAFE),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": peer,
        "wsgi.version": (1, 0),
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() in ("content-type", "content-length"):
            key = key[len("HTTP_") :]
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_wsgi(app: Any, environ: dict[str, Any]) -> TestResponse:
    """Call a WSGI application, read its whole body and always call its ``close()``."""
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    parts: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return parts.append  # PEP 3333's write(): its bytes come before the iterable's

    iterable = app(environ, start_response)
    try:
        parts.extend(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    status, headers = seen[-1]
    return TestResponse(
        int(status.split()[0]), list(headers), b"".join(parts), environ.get("compliance.decision")
    )


def asgi_scope(
    path: str = "/", *, peer: str | None = "127.0.0.1", method: str = "GET", headers: Headers = ()
) -> dict[str, Any]:
    """An ASGI 3 HTTP scope for a request from ``peer`` to ``path`` (with its query, if any,
    as in a URL). As a server writes it: ``raw_path`` is the path as sent (percent-encoded
    UTF-8), ``path`` the same percent-decoded.

    >>> scope = asgi_scope("/новости?page=2")
    >>> scope["path"], scope["raw_path"], scope["query_string"]
    ('/новости', b'/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8', b'page=2')
    """
    raw_path, _, query = path.partition("?")
    sent = quote(raw_path, _PATH_SAFE)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(sent),
        "raw_path": sent.encode("ascii"),
        "query_string": quote(query, _QUERY_SAFE).encode("ascii"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (peer, 50000) if peer else None,
        "server": ("testserver", 80),
    }


def call_asgi(app: Any, scope: dict[str, Any], *, body: bytes = b"") -> TestResponse:
    """Run an ASGI application to the end of its response and collect it."""
    sent: list[Mapping[str, Any]] = []

    async def run() -> None:
        requested = False
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # as a server: the client goes away once it has the response
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await app(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    state = scope.get("state") or {}
    return TestResponse(start["status"], headers, content, state.get("compliance.decision"))

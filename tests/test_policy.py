"""The framework-free response policy: header helpers, the body editor, the exchange."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import brotli
import pytest

from compliance.client import TrustedProxies
from compliance.engine import Engine
from compliance.errors import ConfigurationError
from compliance.geo import HeaderGeolocator, Location
from compliance.inject import PageInfo
from compliance.policy import (
    BodyEditor,
    Exchange,
    Settings,
    merge_vary,
    prefers_json,
    private_cache_control,
)
from compliance.testing import FixedGeolocator

PAGE = b"<html><head><title>x</title></head><body><p>Hello</p></body></html>\n"
NOTE = "<aside>N</aside>"


def render(info: PageInfo) -> dict[str, str]:
    return {"body_end": NOTE}


def edit(chunks: list[bytes], coding: str = "") -> bytes:
    editor = BodyEditor(render, coding=coding)
    return b"".join(editor.feed(c) for c in chunks) + editor.finish()


@pytest.mark.parametrize(
    ("existing", "names", "expected"),
    [
        pytest.param([], ["accept-language"], "Accept-Language", id="new"),
        pytest.param(
            ["Cookie"],
            ["cf-ipcountry, cf-region-code"],
            "Cookie, CF-IPCountry, CF-Region-Code",
            id="split",
        ),
        pytest.param(["accept-language"], ["Accept-Language"], None, id="present"),
        pytest.param(["Cookie", "*"], ["accept-language"], None, id="star"),
        pytest.param(["a, b", "c"], ["d"], "a, b, c, D", id="several-headers"),
    ],
)
def test_merge_vary(existing: list[str], names: list[str], expected: str | None) -> None:
    assert merge_vary(existing, names) == expected


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        pytest.param([], "private", id="none"),
        pytest.param(["public, max-age=60"], "max-age=60, private", id="public"),
        pytest.param(["s-maxage=600", "no-transform"], "no-transform, private", id="s-maxage"),
        pytest.param(["private, max-age=5"], "max-age=5, private", id="already"),
    ],
)
def test_private_cache_control(existing: list[str], expected: str) -> None:
    assert private_cache_control(existing) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("application/json, text/html;q=0.5", True),
        ("text/html, application/json", False),
        ("application/problem+json", True),
        ("application/json;q=0", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_prefers_json(accept: str, expected: bool) -> None:
    assert prefers_json(accept) is expected


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_body_editor_output_does_not_depend_on_chunking(size: int) -> None:
    whole = edit([PAGE])
    assert whole == PAGE.replace(b"</body>", NOTE.encode() + b"</body>")
    assert edit([PAGE[i : i + size] for i in range(0, len(PAGE), size)]) == whole


@pytest.mark.parametrize(
    ("coding", "compress", "decompress"),
    [
        ("gzip", gzip.compress, gzip.decompress),
        ("deflate", zlib.compress, zlib.decompress),
        ("br", brotli.compress, brotli.decompress),
    ],
)
def test_body_editor_recompresses(coding: str, compress: Any, decompress: Any) -> None:
    data = compress(PAGE)
    for size in (1, 4, len(data)):
        out = edit([data[i : i + size] for i in range(0, len(data), size)], coding)
        assert decompress(out) == edit([PAGE])


def test_body_editor_refuses_a_truncated_gzip_body() -> None:
    data = gzip.compress(PAGE)
    editor = BodyEditor(render, coding="gzip")
    editor.feed(data[:-12])
    with pytest.raises(zlib.error):
        editor.finish()


def test_body_editor_recovers_held_bytes_on_a_fault() -> None:
    def broken(info: PageInfo) -> dict[str, str]:
        raise RuntimeError("render exploded")

    editor = BodyEditor(broken)
    pieces = [b"<html><head></head>", b"<body><p>x", b"</p></body>", b"</html>"]
    out = b"".join(editor.feed(p) for p in pieces) + editor.finish()
    assert out == b"".join(pieces)
    assert isinstance(editor.fault, RuntimeError)


def test_settings_defaults_are_safe() -> None:
    settings = Settings.from_options()
    assert not settings.trusted_proxies
    assert settings.fail_mode == "open"
    assert settings.cache_policy == "private"
    assert settings.debug_headers is False
    assert settings.css is False
    assert settings.debug_networks.contains("127.0.0.1")
    assert not settings.debug_networks.contains("192.0.2.1")


def test_settings_take_objects_and_strings() -> None:
    settings = Settings.from_options(
        trusted_proxies=TrustedProxies(["10.0.0.0/8"]), geo_header=HeaderGeolocator("cloudfront")
    )
    assert settings.trusted_proxies.contains("10.1.1.1")
    assert settings.geo_header is not None
    hops = Settings.from_options(proxy_hops=1, geo_header="cloudflare")
    assert hops.trusted_proxies.hops == 1
    with pytest.raises(ConfigurationError):
        Settings.from_options(trusted_proxies=TrustedProxies(["10.0.0.0/8"]), proxy_hops=2)
    with pytest.raises(ConfigurationError):
        Settings.from_options(geo_header=42)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_paths(geolocator=FixedGeolocator(Location.of("RU")))


def exchange(engine: Engine, method: str = "GET", **options: Any) -> Exchange:
    ex = Exchange(
        Settings.from_options(**options),
        engine,
        method=method,
        host="www.example.org",
        path="/",
        peer="192.0.2.1",
        headers={"accept-language": "en"},
    )
    ex.begin()
    return ex


@pytest.mark.parametrize(
    ("status", "headers", "method", "edits"),
    [
        pytest.param(200, [("Content-Type", "text/html")], "GET", True, id="html"),
        pytest.param(201, [("Content-Type", "application/xhtml+xml")], "GET", True, id="xhtml"),
        pytest.param(200, [("Content-Type", "TEXT/HTML; charset=UTF-8")], "GET", True, id="case"),
        pytest.param(200, [("Content-Type", "text/html")], "HEAD", False, id="head"),
        pytest.param(204, [("Content-Type", "text/html")], "GET", False, id="204"),
        pytest.param(206, [("Content-Type", "text/html")], "GET", False, id="206"),
        pytest.param(301, [("Content-Type", "text/html")], "GET", False, id="redirect"),
        pytest.param(200, [("Content-Type", "text/plain")], "GET", False, id="plain"),
        pytest.param(200, [], "GET", False, id="no-type"),
        pytest.param(
            200,
            [("Content-Type", "text/html"), ("Content-Range", "bytes 0-1/2")],
            "GET",
            False,
            id="range",
        ),
        pytest.param(
            200,
            [("Content-Type", "text/html"), ("Content-Encoding", "zstd")],
            "GET",
            False,
            id="zstd",
        ),
        pytest.param(
            200,
            [("Content-Type", "text/html"), ("Content-Encoding", "gzip, br")],
            "GET",
            False,
            id="stacked",
        ),
    ],
)
def test_what_is_edited(
    engine: Engine, status: int, headers: list[tuple[str, str]], method: str, edits: bool
) -> None:
    plan = exchange(engine, method).respond(status, headers)
    assert (plan.editor is not None) is edits
    if not edits:
        assert plan.headers == headers


def test_plan_headers_and_content_length(engine: Engine) -> None:
    plan = exchange(engine).respond(
        200, [("Content-Type", "text/html"), ("Content-Length", "10"), ("X-Compliance-Tags", "a")]
    )
    assert plan.buffer
    assert ("Content-Length", "99") in plan.final_headers(99)
    assert not any(k.lower() == "content-length" for k, _ in plan.final_headers(None))
    assert not any(k.lower() == "x-compliance-tags" for k, _ in plan.headers)


def test_block_response_for_head_has_no_body(tmp_path: Any) -> None:
    de = Engine.from_paths(geolocator=FixedGeolocator(Location.of("DE")))
    ex = Exchange(
        Settings.from_options(),
        de,
        method="HEAD",
        host="news.example",
        path="/news/2024/withdrawn-article.html",
        peer="192.0.2.2",
        headers={},
    )
    assert ex.begin().block is not None
    status, headers, body = ex.block_response()
    assert status == 451
    assert body == b""
    assert int(dict(headers)["Content-Length"]) > 0

"""The sans-IO response core driven by hand (as h11's tests drive its Connection), and the
framework-free HTTP helpers."""

from __future__ import annotations

import dataclasses
import gzip
import inspect
import json
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import pytest

from compliance.client import TrustedProxies
from compliance.core import (
    EDIT,
    BodyEditor,
    Data,
    Exchange,
    Middleware,
    Passthrough,
    Replace,
    Request,
    Settings,
    Start,
    Undelivered,
)
from compliance.engine import Engine
from compliance.errors import ConfigurationError
from compliance.geo import HeaderGeolocator
from compliance.http import (
    COMMON_NAMES,
    EnvironHeaders,
    RawHeaders,
    make_codec,
    merge_vary,
    prefers_json,
    private_cache_control,
)
from compliance.inject import PageInfo
from compliance.metrics import Metrics

PAGE = b"<html><head><title>x</title></head><body><p>Hello</p></body></html>\n"
NOTE = "<aside>N</aside>"
REPO = Path(__file__).resolve().parents[1]
RULES = """\
version: 1
rules:
  - id: ru-notice
    title: a notice for readers in Russia
    jurisdictions: [RU]
    notice:
      default_locale: en
      text:
        en: A notice.
  - id: court-order
    title: a block on one page
    jurisdictions: ["*"]
    paths: [/withdrawn]
    block:
      blocked_by: https://court.example/
      default_locale: en
      text:
        en: Blocked.
"""


def render(info: PageInfo) -> dict[str, str]:
    return {"body_end": NOTE}


def editor(coding: str = "") -> BodyEditor:
    return BodyEditor(
        render,  # type: ignore[arg-type]
        charset=None,
        codec=make_codec(coding, max_size=1 << 26, max_ratio=1000),
        max_hold=1 << 18,
        partial=False,
    )


def edit(chunks: list[bytes], coding: str = "") -> bytes:
    ed = editor(coding)
    return b"".join(ed.feed(c) for c in chunks) + ed.finish()


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
        # A directive's quoted value may hold commas (RFC 9111's field-name lists): it is one
        # directive, kept or removed whole, never cut into pieces that end up out of quotes.
        pytest.param(
            ['private="Set-Cookie, X-Foo", max-age=60'], "max-age=60, private", id="private-list"
        ),
        pytest.param(
            ['no-cache="a,public,b", max-age=5'],
            'no-cache="a,public,b", max-age=5, private',
            id="quoted-public",
        ),
        pytest.param(['no-cache="a\\"b,c", public'], 'no-cache="a\\"b,c", private', id="escape"),
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
        # A weight that is no RFC 9110 qvalue makes its item malformed: skipped. (Python's
        # float() took "1_0" and "inf", JavaScript's Number() "0x10", in the Worker.)
        ("application/json;q=1_0, text/html;q=0.9", False),
        ("application/json;q=inf, text/html", False),
        ("application/json;q=0x10, text/html;q=0.9", False),
        ("text/html;q=nan, application/json;q=0.1", True),
        ("text/html;q=, application/json;q=0.1", True),
        ("application/json ; Q = 0.5 , text/html;q=0.4", True),
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


@pytest.mark.parametrize(
    ("body", "edited"),
    [
        (b"<!DOCTYPE html>", b"<!DOCTYPE html>" + NOTE.encode()),
        (b"<!-- only a comment -->", b"<!-- only a comment -->" + NOTE.encode()),
        (b"  \n", b"  \n" + NOTE.encode()),
        (b"<!-- left open", b"<!-- left open"),  # no place: the fail mode's to say
        (b"<!--><div>--<!-->", b"<!--><div>--<!-->" + NOTE.encode()),
    ],
)
@pytest.mark.parametrize("chunk", [0, 3])
def test_body_editor_keeps_a_body_whose_start_is_undecided_to_the_end(
    body: bytes, edited: bytes, chunk: int
) -> None:
    """A body that never shows where its document starts (a doctype or a comment alone) is
    held while that is unknown, and must still go out at the end, not just the notice."""
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    assert edit(chunks) == edited


def test_body_editor_refuses_a_truncated_gzip_body() -> None:
    data = gzip.compress(PAGE)
    ed = editor("gzip")
    ed.feed(data[:-12])
    with pytest.raises(Undelivered, match="ended early") as refused:
        ed.finish()
    assert refused.value.cause == "content-coding"


@pytest.mark.parametrize("cut", [4, 8, 12])
def test_body_editor_refuses_a_gzip_body_whose_last_member_is_cut(cut: int) -> None:
    """A later member cut short is a body ended early as the first is: only the decoder
    that waits for another member after the last may have had no byte (or padding)."""
    data = gzip.compress(PAGE[:50]) + gzip.compress(PAGE[50:])
    ed = editor("gzip")
    ed.feed(data[:-cut])
    with pytest.raises(Undelivered, match="ended early"):
        ed.finish()
    assert gzip.decompress(edit([data + b"\0" * 4], "gzip")) == edit([PAGE])


@pytest.mark.parametrize("size", [1, 2, 5])
def test_body_editor_writes_raw_deflate_as_it_came_however_split(size: int) -> None:
    """The framing of a deflate body (zlib's, or raw deflate) is known from its first two
    bytes: a body given one byte first is written back raw too, not in the zlib format.
    Bytes after the stream are no part of the body."""
    coder = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = coder.compress(PAGE) + coder.flush() + b"junk"
    out = edit([data[i : i + size] for i in range(0, len(data), size)], "deflate")
    assert zlib.decompress(out, -zlib.MAX_WBITS) == edit([PAGE])


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_body_editor_takes_an_empty_coded_body_as_empty(coding: str) -> None:
    """A 200 with no body and a Content-Encoding (some frameworks send one): nothing was
    coded, nothing to edit, and it stays empty."""
    ed = editor(coding)
    assert ed.feed(b"") == b""
    assert ed.finish() == b""
    assert ed.skipped == "empty body"


@pytest.mark.parametrize(
    "name", ["trusted_proxies", "debug_networks", "simulate_from", "edge_from"]
)
def test_a_bad_network_is_an_error_that_names_its_option_first(name: str) -> None:
    """First, so that an integration can put the name in its own spelling; and not "trusted
    proxy" for networks that are no proxies."""
    message = rf"^{name}: 'zzz' is not an IP address or CIDR range$"
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_options(**{name: ["zzz"]})


@pytest.mark.parametrize(
    "name", ["trusted_proxies", "debug_networks", "simulate_from", "edge_from"]
)
def test_a_network_option_that_is_no_list_is_a_configuration_error(name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name}: expected a list of IP addresses"):
        Settings.from_options(**{name: 5})


def test_an_unknown_cdn_provider_is_an_error_that_names_the_option() -> None:
    with pytest.raises(ConfigurationError, match=r"^geo_header: unknown geolocation header"):
        Settings.from_options(geo_header="nonesuch", trusted_proxies=["10.0.0.0/8"])


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
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(RULES)


# Every option at a value other than its default (proxy_hops stands in for trusted_proxies:
# the two cannot be given together).
_NOT_DEFAULT: dict[str, Any] = {
    "proxy_hops": 1,
    "forwarded_header": "forwarded",
    "forwarded_host": True,
    "geo_header": "cloudflare",
    "fail_mode": "closed",
    "cache_policy": "vary",
    "csp_nonce": "nonce-key",
    "css": True,
    "debug_headers": True,
    "debug_networks": ["192.0.2.0/24"],
    "buffer_limit": 1,
    "max_hold": 2,
    "max_decoded": 3,
    "max_ratio": 4,
    "decision_path": "/decision",
    "simulate_from": ["10.2.0.0/16"],
    "log_addresses": True,
    "edge_from": ["10.1.0.0/16"],
}


def test_the_middlewares_take_the_options_the_settings_check(engine: Engine) -> None:
    """The options are written out twice, on purpose (explicit keywords on the middleware,
    the same on Settings.from_options, which checks them): the two lists are held equal, in
    names, order, defaults and types, and every option reaches the settings under its own
    name."""
    checked = inspect.signature(Settings.from_options).parameters
    taken = {
        name: parameter
        for name, parameter in inspect.signature(Middleware.__init__).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
    }
    assert list(taken) == list(checked)
    for name, parameter in checked.items():
        assert (taken[name].default, taken[name].annotation) == (
            parameter.default,
            parameter.annotation,
        ), name
    assert set(_NOT_DEFAULT) == set(checked) - {"trusted_proxies"}
    given = Middleware(lambda: None, engine, **_NOT_DEFAULT).settings
    expected = Settings.from_options(**_NOT_DEFAULT)
    default = Settings.from_options()
    for field in dataclasses.fields(Settings):
        value = repr(getattr(given, field.name))
        assert value == repr(getattr(expected, field.name)), field.name
        assert value != repr(getattr(default, field.name)), field.name


def exchange(
    engine: Engine, method: str = "GET", path: str = "/", peer: str = "192.0.2.1", **options: Any
) -> Exchange:
    request = Request(method, "www.example.org", path, "", peer, {"accept-language": "en"})
    return Exchange(Settings.from_options(**options), engine, Metrics(), request)


@pytest.mark.parametrize(
    ("status", "headers", "method", "edits"),
    [
        pytest.param(200, [("Content-Type", "text/html")], "GET", True, id="html"),
        pytest.param(201, [("Content-Type", "application/xhtml+xml")], "GET", True, id="xhtml"),
        pytest.param(200, [("Content-Type", "TEXT/HTML; charset=UTF-8")], "GET", True, id="case"),
        # A HEAD's body, when the application sends one, is the GET's: edited as the GET's.
        pytest.param(200, [("Content-Type", "text/html")], "HEAD", True, id="head"),
        pytest.param(204, [("Content-Type", "text/html")], "GET", False, id="204"),
        pytest.param(301, [("Content-Type", "text/html")], "GET", False, id="redirect"),
        pytest.param(200, [("Content-Type", "text/plain")], "GET", False, id="plain"),
        pytest.param(200, [], "GET", False, id="no-type"),
    ],
)
def test_what_is_edited(
    engine: Engine, status: int, headers: list[tuple[str, str]], method: str, edits: bool
) -> None:
    ex = exchange(engine, method)
    assert ex.begin() is None
    action = ex.start(status, headers)
    assert (action is EDIT) is edits
    if not edits:
        assert isinstance(action, Passthrough)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("Content-Range", "bytes 0-1/2")], id="range"),
        pytest.param([("Content-Encoding", "zstd")], id="zstd"),
        pytest.param([("Content-Encoding", "gzip, br")], id="stacked"),
    ],
)
def test_what_cannot_be_edited_is_the_fail_mode(
    engine: Engine, headers: list[tuple[str, str]]
) -> None:
    ex = exchange(engine, fail_mode="closed")
    ex.begin()
    action = ex.start(200, [("Content-Type", "text/html"), *headers])
    assert isinstance(action, Replace)
    assert action.response.status == 503
    assert sum(ex.metrics.snapshot()["notices_not_delivered"].values()) == 1


def test_the_events_of_an_edited_response(engine: Engine) -> None:
    ex = exchange(engine)
    ex.begin()
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))]
    assert ex.start(200, headers) is EDIT
    events = ex.feed(PAGE[:20]) + ex.feed(PAGE[20:]) + ex.finish()
    assert isinstance(events[0], Start)
    body = b"".join(e.data for e in events if isinstance(e, Data))
    assert b'data-compliance-rule="ru-notice"' in body
    assert dict(events[0].headers)["Content-Length"] == str(len(body))
    assert not any(k.lower() == "x-compliance-tags" for k, _ in events[0].headers)


def test_a_render_fault_before_anything_was_sent_sends_the_original(
    make_engine: Callable[..., Engine],
) -> None:
    # An engine of its own: its decision has never been rendered (a decision remembers its
    # snippets), and the one broken below is shared by no other test.
    ex = exchange(make_engine(RULES))
    ex.begin()
    assert ex.decision is not None
    object.__setattr__(ex.decision.notices[0], "_renderer", None)  # rendering now fails
    assert ex.start(200, [("Content-Type", "text/html"), ("Cache-Control", "public")]) is EDIT
    events = ex.feed(PAGE) + ex.finish()
    start = events[0]
    assert isinstance(start, Start)
    assert b"".join(e.data for e in events if isinstance(e, Data)) == PAGE
    assert dict(start.headers)["Cache-Control"] == "private"
    assert ex.metrics.snapshot()["faults"] == {"editing": 1}


def test_a_block_for_head_has_no_body(engine: Engine) -> None:
    ex = exchange(engine, "HEAD", path="/withdrawn", peer="192.0.2.2")
    response = ex.begin()
    assert response is not None
    assert response.status == 451
    assert response.body == b""
    assert int(dict(response.headers)["Content-Length"]) > 0


HTML = ("Content-Type", "text/html; charset=utf-8")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            [HTML, ("Cache-Control", "public, max-age=60"), ("X-A", "1")],
            [HTML, ("X-A", "1"), ("Cache-Control", "max-age=60, private")],
            id="one-cache-control",
        ),
        pytest.param(
            [HTML, ("Cache-Control", "public"), ("cache-control", "max-age=5, s-maxage=9")],
            [HTML, ("Cache-Control", "max-age=5, private")],
            id="repeated-cache-control",
        ),
        pytest.param(
            [
                ("CONTENT-TYPE", "Text/HTML; Charset=UTF-8"),
                ("CDN-Cache-Control", "max-age=600"),
                ("surrogate-control", "max-age=600"),
                ("X-Accel-Expires", "60"),
                ("Set-Cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
            [
                ("CONTENT-TYPE", "Text/HTML; Charset=UTF-8"),
                ("Set-Cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("Cache-Control", "private"),
            ],
            id="odd-case-shared-caches-repeated-names",
        ),
        pytest.param(
            [("Content-Type", "text/plain"), ("content-type", "text/html")],
            [
                ("Content-Type", "text/plain"),
                ("content-type", "text/html"),
                ("Cache-Control", "private"),
            ],
            id="repeated-content-type-last-counts",
        ),
        pytest.param(
            [HTML, ("X-Compliance-Skip", "1"), ("Cache-Control", "no-cache")],
            [HTML, ("Cache-Control", "no-cache, private")],
            id="skip-header-consumed",
        ),
        pytest.param(
            [HTML, ("x-compliance-tags", "opinion")],
            [HTML, ("Cache-Control", "private")],
            id="tags-header-consumed",
        ),
        pytest.param(
            [("Content-Type", "application/json"), ("Cache-Control", "public")],
            [("Content-Type", "application/json"), ("Cache-Control", "public")],
            id="not-html-untouched",
        ),
        pytest.param([("X-A", "1")], [("X-A", "1")], id="no-content-type-untouched"),
    ],
)
def test_headers_of_a_reader_without_notices(
    engine: Engine, headers: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    """The no-notice path (fast for the usual headers, general for repeated names and the
    control headers) gives exactly the caching headers of the general rules."""
    ex = exchange(engine, peer="192.0.2.2")
    assert ex.begin() is None
    action = ex.start(200, list(headers))
    assert isinstance(action, Passthrough)
    assert action.headers == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("off", [HTML, ("Cache-Control", "public")], id="off"),
        pytest.param("vary", [HTML, ("Cache-Control", "public")], id="vary"),
        pytest.param("private", [HTML, ("Cache-Control", "private")], id="private"),
    ],
)
def test_cache_policy_without_notices(
    engine: Engine, policy: str, expected: list[tuple[str, str]]
) -> None:
    ex = exchange(engine, peer="192.0.2.2", cache_policy=policy)
    assert ex.begin() is None
    action = ex.start(200, [HTML, ("Cache-Control", "public")])
    assert isinstance(action, Passthrough)
    assert action.headers == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param([(b"accept-language", b"ru"), (b"x-a", b"1")], id="lower"),
        pytest.param([(b"Accept-Language", b"ru"), (b"X-A", b"1")], id="mixed-case"),
        pytest.param([(b"accept-language", b"ru"), (b"x-A", b"1")], id="one-upper-case-letter"),
        pytest.param([(b"ACCEPT-LANGUAGE", b"ru"), (b"x-a", b"1")], id="one-upper-case-name"),
        pytest.param(iter([(b"accept-language", b"ru"), (b"x-a", b"1")]), id="generator"),
        pytest.param([[b"accept-language", b"ru"], [b"x-a", b"1"]], id="lists"),
    ],
)
def test_raw_headers_read_like_a_dict_of_lower_case_names(raw: Any) -> None:
    headers = RawHeaders(raw)
    assert headers.get("accept-language") == "ru"
    assert "x-a" in headers
    assert "X-A" not in headers
    assert "range" not in headers
    assert dict(headers) == {"accept-language": "ru", "x-a": "1"}


def test_the_common_field_names_are_whole_lower_case_names() -> None:
    # The fast path trusts them to hold no upper-case letter; a name cut at a hyphen (as a
    # line wrap once cut "access-control-allow-" from "credentials") is no field's name.
    assert all(re.fullmatch(rb"[a-z0-9]+(?:-[a-z0-9]+)*", name) for name in COMMON_NAMES)
    assert {b"access-control-allow-credentials", b"x-forwarded-for", b"host"} <= COMMON_NAMES


def test_raw_headers_join_repeated_names_in_order() -> None:
    headers = RawHeaders([(b"Cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2")])
    assert headers["cookie"] == "a=1, b=2"
    assert len(headers) == 2
    with pytest.raises(KeyError):
        headers["range"]


def test_environ_headers_read_only_string_values() -> None:
    environ = {
        "HTTP_ACCEPT_LANGUAGE": "ru",
        "CONTENT_TYPE": "text/html",
        "HTTP_X_ODD": 42,  # not a header a server wrote
        "wsgi.input": object(),
    }
    headers = EnvironHeaders(environ)
    assert headers.get("accept-language") == "ru"
    assert "accept-language" in headers
    assert headers.get("content-type") == "text/html"
    assert headers.get("x-odd") is None
    assert "x-odd" not in headers
    assert headers.get("range", "none") == "none"


@pytest.mark.parametrize("size", [1, 3, 16, 4096])
def test_a_render_fault_mid_stream_loses_no_byte_of_the_page(size: int) -> None:
    """Going on unedited (failing open, the headers out), the input the injector held when
    rendering failed is sent as it came, however the body was split (and the editor never
    copies the page to remember it). Otherwise the fault is the core's: it raises."""

    def broken(info: PageInfo) -> dict[str, str]:
        raise RuntimeError("the notice cannot be rendered")

    ed = BodyEditor(
        broken,  # type: ignore[arg-type]
        charset=None,
        codec=None,
        max_hold=1 << 18,
        partial=False,
    )
    page = b"<!DOCTYPE html>\n<html lang=en><head><title>t</title></head><body>" + b"x" * 300
    page += b"<p>more</p></body></html>\n"

    def edited(editor: BodyEditor) -> bytes:
        out = b"".join(editor.feed(page[i : i + size]) for i in range(0, len(page), size))
        return out + editor.finish()

    with pytest.raises(RuntimeError):
        edited(ed)
    ed = BodyEditor(
        broken,  # type: ignore[arg-type]
        charset=None,
        codec=None,
        max_hold=1 << 18,
        partial=False,
    )
    ed.go_on_unedited = True
    assert edited(ed) == page
    assert isinstance(ed.fault, RuntimeError)
    assert ed.unedited is not None
    assert ed.unedited[0] == "fault"


RAW_HTML = (b"content-type", b"text/html; charset=utf-8")


@pytest.mark.parametrize(
    ("raw", "fast"),
    [
        pytest.param([RAW_HTML, (b"cache-control", b"public, max-age=60")], True, id="html"),
        pytest.param([RAW_HTML, (b"x-a", b"1")], True, id="no-cache-control"),
        pytest.param(
            [RAW_HTML, (b"cdn-cache-control", b"max-age=9"), (b"surrogate-control", b"x")],
            True,
            id="shared-cache-headers",
        ),
        pytest.param([(b"content-type", b"application/json")], True, id="not-html"),
        pytest.param([(b"x-a", b"1")], True, id="no-content-type"),
        pytest.param([[b"content-type", b"text/html"], [b"x-a", b"1"]], True, id="lists"),
        pytest.param([(b"Content-Type", b"text/html")], False, id="upper-case-name"),
        pytest.param(
            [RAW_HTML, (b"cache-control", b"public"), (b"cache-control", b"max-age=5")],
            False,
            id="repeated-name",
        ),
        pytest.param([RAW_HTML, (b"x-compliance-skip", b"1")], False, id="skip-header"),
        pytest.param([RAW_HTML, (b"x-compliance-tags", b"a")], False, id="tags-header"),
        pytest.param([RAW_HTML, (b"x-\xc0", b"1")], False, id="non-ascii-name"),
        pytest.param((RAW_HTML,), False, id="tuple-of-headers"),
    ],
)
def test_raw_headers_fast_path_answers_as_start_does(engine: Engine, raw: Any, fast: bool) -> None:
    """ASGI's no-notice path on the headers as bytes gives what decoding them, start() and
    encoding the answer give; it declines (None) whatever it does not handle."""
    ex = exchange(engine, peer="192.0.2.2")
    assert ex.begin() is None
    answer = ex.start_raw(200, raw)
    assert (answer is not None) is fast
    general = exchange(engine, peer="192.0.2.2")
    assert general.begin() is None
    decoded = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    action = general.start(200, decoded)
    assert isinstance(action, Passthrough)
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in action.headers]
    if answer is not None:
        assert answer == encoded
        assert all(isinstance(pair, tuple) for pair in answer)


def test_raw_headers_fast_path_declines_a_reader_with_notices(engine: Engine) -> None:
    ex = exchange(engine, peer="192.0.2.1")
    assert ex.begin() is None
    assert ex.start_raw(200, [RAW_HTML]) is None
    assert ex.start(200, [("Content-Type", "text/html")]) is EDIT


# Run in a fresh interpreter: in the suite's, objects earlier tests left in reference cycles
# (an engine, its rule set) can be let go by a cache this request evicts into, and the
# collector then finds them, whatever this request did (it failed so, now and then).
_NO_CYCLE = """
import gc, json, sys
from pathlib import Path
from compliance import asgi, wsgi
from compliance.engine import Engine
from compliance.testing import FixedGeolocator, asgi_scope, call_asgi, call_wsgi, wsgi_environ

folder = Path(sys.argv[1])
(folder / "rules.yaml").write_text(sys.argv[2], encoding="utf-8")
engine = Engine.from_paths([folder], geolocator=FixedGeolocator({"198.51.100.1": "DE"}))
PAGE = b"<!DOCTYPE html><html><body><p>x</p></body></html>"

def page(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [PAGE]

async def asgi_page(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": PAGE})

wsgi_app = wsgi.ComplianceMiddleware(page, engine)
asgi_app = asgi.ComplianceMiddleware(asgi_page, engine)
for _ in range(3):  # every cache warm
    call_wsgi(wsgi_app, wsgi_environ("/", peer="198.51.100.1"))
    call_asgi(asgi_app, asgi_scope("/", peer="198.51.100.1"))
gc.collect()
gc.disable()
call_wsgi(wsgi_app, wsgi_environ("/", peer="198.51.100.1"))
found = {"wsgi": gc.collect()}
call_asgi(asgi_app, asgi_scope("/", peer="198.51.100.1"))
found["asgi"] = gc.collect()
print(json.dumps(found))
"""


def test_a_request_without_notices_leaves_no_reference_cycle(tmp_path: Path) -> None:
    """Every object of a request without notices (most requests) is freed when it ends,
    without the cycle collector: a cycle (the exchange in the state it holds, as
    read_decision's reference once was) costs every request the collector's passes (7%
    more instructions on the no-notice path)."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_CYCLE, str(tmp_path), RULES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"wsgi": 0, "asgi": 0}

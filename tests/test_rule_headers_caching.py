"""Headers a rule adds never make a private page storable by a shared cache.

docs/caching.md: a page made private loses ``public``, ``s-maxage`` and the headers CDNs and
nginx obey over ``Cache-Control`` (``CDN-Cache-Control``, ``Cloudflare-CDN-Cache-Control``,
``Surrogate-Control``, ``X-Accel-Expires``). A rule's ``headers:`` may name those too; for a
reader located by address they brought them back, and a Fastly or nginx cache in front
stored one reader's page for everyone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compliance import testing
from compliance.asgi import ComplianceMiddleware as AsgiMiddleware
from compliance.engine import Engine
from compliance.wsgi import ComplianceMiddleware as WsgiMiddleware

RU = "192.0.2.1"
PROXY = "10.0.0.1"
RULES = """\
version: 1
rules:
  - id: ru-notice
    title: a notice, and shared-cache headers, for readers in Russia
    jurisdictions: [RU]
    headers:
      Surrogate-Control: max-age=3600
      CDN-Cache-Control: max-age=3600
      Cloudflare-CDN-Cache-Control: max-age=3600
      X-Accel-Expires: "3600"
      Cache-Control: public, s-maxage=3600
      X-Robots-Tag: noindex
    notice:
      default_locale: en
      text: {en: A notice for readers in Russia.}
"""
SHARED = ("surrogate-control", "cdn-cache-control", "cloudflare-cdn-cache-control")
PAGE = b"<!DOCTYPE html><html><body><p>x</p></body></html>"


@pytest.fixture(scope="module")
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(RULES, {RU: "RU"})


async def _asgi_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


def _wsgi_page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


def _get(adapter: str, engine: Engine, peer: str, **options: Any) -> testing.TestResponse:
    headers = [("CF-IPCountry", "RU")] if "geo_header" in options else []
    if adapter == "wsgi":
        wsgi = WsgiMiddleware(_wsgi_page, engine, **options)
        return testing.call_wsgi(wsgi, testing.wsgi_environ("/", peer=peer, headers=headers))
    asgi = AsgiMiddleware(_asgi_page, engine, **options)
    return testing.call_asgi(asgi, testing.asgi_scope("/", peer=peer, headers=headers))


def _names(response: testing.TestResponse) -> set[str]:
    return {name.lower() for name, _ in response.headers}


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_private_page_takes_no_shared_cache_header_from_a_rule(
    adapter: str, engine: Engine
) -> None:
    response = _get(adapter, engine, RU)
    assert response.notices == ["ru-notice"]
    assert response.header("Cache-Control") == "private"
    assert not _names(response) & {*SHARED, "x-accel-expires"}
    assert response.header("X-Robots-Tag") == "noindex"  # the rule's other headers stay


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_page_cached_per_cdn_country_keeps_the_rules_caching_headers(
    adapter: str, engine: Engine
) -> None:
    # Located by the CDN's header, the page is shared per country: the rule may say how.
    response = _get(adapter, engine, PROXY, trusted_proxies=[PROXY], geo_header="cloudflare")
    assert response.notices == ["ru-notice"]
    assert response.header("Cache-Control") == "public, s-maxage=3600"
    assert set(SHARED) <= _names(response)
    assert "CF-IPCountry" in (response.header("Vary") or "")


# -- the exports, beside the middleware --------------------------------------------------------


@pytest.fixture
def city(geoip_test_data: Path) -> Path:
    """The database the middleware reads (nginx reads it too; the Worker reads cf)."""
    return geoip_test_data / "GeoIP2-City-Test.mmdb"


@pytest.mark.slow
@pytest.mark.parametrize("target", ["nginx", "cloudflare"])
def test_an_exported_edge_takes_the_same_caching_headers_from_a_rule(
    tmp_path: Path, city: Path, target: str
) -> None:
    """The Worker deleted the shared-cache headers of a private page, then added the rule's;
    nginx sent the rule's `Cache-Control` beside its own `private`."""
    import harness as h

    headers = (
        "    headers:\n"
        "      Surrogate-Control: max-age=3600\n"
        "      CDN-Cache-Control: max-age=3600\n"
        "      Cache-Control: public, s-maxage=3600\n"
        "      X-Robots-Tag: noindex\n"
    )
    rules = h.one_rule("cached", headers, "    exclude: [DE]\n")  # depends on the location
    with h.side_by_side(rules, target, tmp_path, city) as (app, edge, _):
        want, got = h.library_raw(app, "/"), h.edge_raw(edge, "/")
    assert want[0] == got[0] == 200
    assert not h.header_values(want, "surrogate-control")
    for name in ("cache-control", "surrogate-control", "cdn-cache-control", "x-robots-tag"):
        assert h.header_values(got, name) == h.header_values(want, name), name

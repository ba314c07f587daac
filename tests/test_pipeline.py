"""The request pipeline: peer -> trusted proxies -> CDN headers or geolocator -> Location."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from compliance import asgi, core, wsgi
from compliance.engine import Engine
from compliance.errors import ConfigurationError
from compliance.geo import (
    UNKNOWN,
    ChainGeolocator,
    ClientAddress,
    EmbeddedGeolocator,
    HeaderGeolocator,
    Location,
    MaxMindGeolocator,
    RequestLocation,
    TrustedProxies,
    completed,
    forwarded_host,
    get_provider,
    knows_subdivisions,
    locate_request,
)
from compliance.testing import (
    FixedGeolocator,
    TestResponse,
    asgi_scope,
    call_asgi,
    call_wsgi,
    wsgi_environ,
)

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
RU_V4, DE_V4 = "77.88.55.88", "81.169.145.105"
RU_V6, DE_V6 = "2a02:6b8::1", "2a01:238:20a:202:1000::1"
CLOUDFLARE = ("cf-ipcountry", "cf-region-code")


@pytest.fixture(scope="module")
def embedded() -> EmbeddedGeolocator:
    return EmbeddedGeolocator()


@pytest.mark.parametrize(
    ("peer", "headers", "provider", "country", "source", "client"),
    [
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": RU_V4, "cf-ipcountry": "UA", "cf-region-code": "43"},
            "cloudflare",
            "UA",
            "header:cloudflare",
            RU_V4,
            id="cdn-header-from-trusted-proxy",
        ),
        pytest.param(
            "203.0.113.9",
            {"cf-ipcountry": "DE"},
            "cloudflare",
            None,
            "none",
            "203.0.113.9",
            id="cdn-header-from-reader-ignored",
        ),
        pytest.param(
            RU_V4,
            {"cf-ipcountry": "DE"},
            "cloudflare",
            "RU",
            "embedded",
            RU_V4,
            id="cdn-header-from-reader-ignored-address-decides",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": RU_V4, "cf-ipcountry": "XX"},
            "cloudflare",
            "RU",
            "embedded",
            RU_V4,
            id="cdn-unknown-falls-back-to-address",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": RU_V4, "forwarded": f"for={DE_V4}"},
            None,
            "RU",
            "embedded",
            RU_V4,
            id="reader-forwarded-through-xff-proxy-ignored",
        ),
        pytest.param(
            "fd00::1",
            {"x-forwarded-for": RU_V6, "forwarded": f'for="[{DE_V6}]"'},
            None,
            "RU",
            "embedded",
            RU_V6,
            id="reader-forwarded-through-xff-proxy-ignored-ipv6",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": RU_V4, "forwarded": "for=127.0.0.1"},
            None,
            "RU",
            "embedded",
            RU_V4,
            id="reader-forwarded-loopback-ignored",
        ),
    ],
)
def test_locate_request(
    embedded: EmbeddedGeolocator,
    peer: str,
    headers: dict[str, str],
    provider: str | None,
    country: str | None,
    source: str,
    client: str,
) -> None:
    found = locate_request(
        peer,
        headers,
        proxies=PROXIES,
        provider=None if provider is None else get_provider(provider),
        geolocator=embedded,
    )
    assert isinstance(found, RequestLocation)
    assert (found.location.country, found.location.source) == (country, source)
    assert found.client.ip == client
    # A configured provider's headers are in Vary whether or not they were believed.
    assert found.vary == (CLOUDFLARE if provider else ())


def test_the_geolocator_is_asked_with_the_address_alone() -> None:
    fixed = FixedGeolocator(Location.of("RU"))
    found = locate_request(
        "10.0.0.1",
        {"x-forwarded-for": RU_V4, "cf-ipcountry": "DE"},
        proxies=PROXIES,
        geolocator=fixed,
    )
    assert found.location.country == "RU"
    assert fixed.calls == [(RU_V4, False)]


def test_a_chain_with_a_header_geolocator_does_not_read_headers_in_the_pipeline(
    embedded: EmbeddedGeolocator,
) -> None:
    # The pipeline, not the geolocators, decides which headers are believed.
    chain = ChainGeolocator([HeaderGeolocator("cloudflare"), embedded])
    found = locate_request(
        "10.0.0.1",
        {"x-forwarded-for": RU_V4, "cf-ipcountry": "DE"},
        proxies=PROXIES,
        geolocator=chain,
    )
    assert (found.location.country, found.location.source) == ("RU", "embedded")


def test_no_geolocator_means_unknown_when_no_header_answers() -> None:
    found = locate_request("203.0.113.9", {}, proxies=PROXIES, geolocator=None)
    assert found.location is UNKNOWN
    assert found.client.ip == "203.0.113.9"
    client, location, vary = found  # a tuple, for unpacking
    assert (client.via_trusted_proxy, location, vary) == (False, UNKNOWN, ())


def test_repeat_requests_get_the_same_location_object(embedded: EmbeddedGeolocator) -> None:
    # The engine's decision cache keys on the Location object's identity.
    headers = {"x-forwarded-for": RU_V4, "cf-ipcountry": "UA", "cf-region-code": "43"}
    provider = get_provider("cloudflare")
    first = locate_request("10.0.0.1", headers, proxies=PROXIES, provider=provider, geolocator=None)
    again = locate_request(
        "10.0.0.1", dict(headers), proxies=PROXIES, provider=provider, geolocator=None
    )
    assert again.location is first.location
    by_address = locate_request(
        "10.0.0.1", {"x-forwarded-for": RU_V4}, proxies=PROXIES, geolocator=embedded
    )
    assert (
        locate_request(
            "10.0.0.1", {"x-forwarded-for": RU_V4}, proxies=PROXIES, geolocator=embedded
        ).location
        is by_address.location
    )


def test_a_header_geolocator_is_accepted_as_the_provider() -> None:
    reader = HeaderGeolocator("fastly", "x-geo")
    found = locate_request(
        "10.0.0.1", {"x-geo": "UA,43"}, proxies=PROXIES, provider=reader, geolocator=None
    )
    assert found.location.subdivisions == ("UA-43",)
    assert found.vary == ("x-geo",)


# -- the repeat request: the pipeline's memo ---------------------------------------------------


def test_a_repeat_request_gets_the_same_answer_object_and_every_input_counts() -> None:
    """A repeat request costs one lookup and gets the same RequestLocation back; a change in
    anything the answer depends on (peer, forwarding header, each CDN header, the proxies
    and the provider objects) gets its own answer, never a remembered one."""
    cloudflare = get_provider("cloudflare")
    trusted = {"x-forwarded-for": RU_V4, "cf-ipcountry": "UA", "cf-region-code": "43"}

    def ask(
        peer: str | None,
        headers: dict[str, str],
        proxies: TrustedProxies = PROXIES,
        provider: object = cloudflare,
    ) -> RequestLocation:
        return locate_request(
            peer,
            dict(headers),
            proxies=proxies,
            provider=provider,  # type: ignore[arg-type]
            geolocator=None,
        )

    first = ask("10.0.0.1", trusted)
    assert ask("10.0.0.1", trusted) is first
    assert (first.client.ip, first.location.subdivisions) == (RU_V4, ("UA-43",))
    cases = [
        (ask("10.0.0.1", {**trusted, "cf-region-code": "30"}), RU_V4, ("UA-30",), True),
        (ask("10.0.0.1", {**trusted, "cf-ipcountry": "DE"}), RU_V4, (), True),
        (ask("10.0.0.1", {**trusted, "x-forwarded-for": DE_V4}), DE_V4, ("UA-43",), True),
        (ask("203.0.113.9", trusted), "203.0.113.9", None, False),  # untrusted peer
        (ask(None, trusted), None, None, False),  # a Unix socket
        (ask("10.0.0.1", trusted, proxies=TrustedProxies()), "10.0.0.1", None, False),
        (ask("10.0.0.1", trusted, provider=None), RU_V4, None, True),
        (
            ask("10.0.0.1", trusted, provider=HeaderGeolocator("cloudflare")),
            RU_V4,
            ("UA-43",),
            True,
        ),
    ]
    for found, client, subdivisions, via_proxy in cases:
        assert found.client.ip == client
        assert found.client.via_trusted_proxy is via_proxy
        if subdivisions is None:
            assert found.location is UNKNOWN
        else:
            assert found.location.subdivisions == subdivisions
    assert cases[0][0].location.country == "UA"
    assert cases[1][0].location.country == "DE"
    assert cases[6][0].vary == ()
    assert ask("10.0.0.1", trusted) is first  # and the first is still remembered


def test_the_geolocator_is_asked_every_time_the_headers_do_not_answer(
    embedded: EmbeddedGeolocator,
) -> None:
    """The memo holds what comes before the database: the geolocator is asked for every
    request (a swapped database, another geolocator: their answer, not a remembered one)."""
    headers = {"x-forwarded-for": RU_V4, "cf-ipcountry": "XX"}
    cloudflare = get_provider("cloudflare")
    answers = [
        FixedGeolocator(Location(country="RU", source="a")),
        FixedGeolocator(Location(country="DE", source="b")),
        embedded,
        FixedGeolocator(Location(country="DE", source="b")),
        FixedGeolocator(UNKNOWN),
    ]
    for geolocator in [*answers, *answers]:
        found = locate_request(
            "10.0.0.1", headers, proxies=PROXIES, provider=cloudflare, geolocator=geolocator
        )
        assert found.location == geolocator.locate(RU_V4)
        assert found.client.ip == RU_V4
        assert found.vary == CLOUDFLARE
    again = locate_request("10.0.0.1", headers, proxies=PROXIES, geolocator=embedded)
    assert locate_request("10.0.0.1", headers, proxies=PROXIES, geolocator=embedded) is again


def test_the_memo_is_bounded_and_long_values_are_not_kept() -> None:
    from compliance.geo.chain import _MEMO_ENTRIES

    proxies = TrustedProxies(["10.0.0.0/8"])
    for n in range(_MEMO_ENTRIES + 1_000):
        forwarded = f"198.18.{n // 256 % 256}.{n % 256}, 77.88.{n // 256 % 64}.{n % 256}"
        found = locate_request(
            "10.0.0.1", {"x-forwarded-for": forwarded}, proxies=proxies, geolocator=None
        )
        assert found.client.ip == f"77.88.{n // 256 % 64}.{n % 256}"
    _memo = proxies.located
    assert _memo is not None
    assert len(_memo) <= _memo.max_entries == _MEMO_ENTRIES
    assert _memo.nbytes <= _memo.max_bytes
    before = len(_memo)
    long_header = ", ".join(["10.0.0.2"] * 100) + ", 77.88.55.88"
    assert len(long_header) > 512
    found = locate_request(
        "10.0.0.1", {"x-forwarded-for": long_header}, proxies=proxies, geolocator=None
    )
    assert found.client.ip == "77.88.55.88"
    assert len(_memo) == before  # answered, not kept


def test_after_a_database_swap_the_new_answer_is_the_one_remembered() -> None:
    """A swapped database (the geolocator hands back a new Location object) gets a fresh
    answer once; repeats are then that answer again, not a new one per request."""
    headers = {"x-forwarded-for": "192.0.2.77"}
    before, after = Location(country="RU", source="a"), Location(country="DE", source="b")

    def ask(geolocator: FixedGeolocator) -> RequestLocation:
        return locate_request("10.0.0.1", headers, proxies=PROXIES, geolocator=geolocator)

    old, new = FixedGeolocator(before), FixedGeolocator(after)
    first = ask(old)
    assert ask(old) is first
    assert first.location is before
    swapped = ask(new)
    assert swapped.location is after
    assert swapped.client == first.client
    assert ask(new) is swapped
    assert ask(old).location is before  # and back: the answer follows the geolocator


def test_the_memo_lives_and_dies_with_its_proxies() -> None:
    """What the pipeline remembers for requests through some trusted proxies is kept with
    them: an application that drops a configuration (a middleware made per request, say)
    drops its memory too, and one configuration's answers never serve another's."""
    import gc
    import weakref

    headers = {"x-forwarded-for": "77.88.55.88"}
    refs = []
    for _ in range(50):
        proxies = TrustedProxies(["10.0.0.0/8"])
        assert locate_request("10.0.0.1", headers, proxies=proxies, geolocator=None).client.ip
        refs.append(weakref.ref(proxies))
    del proxies
    gc.collect()
    assert not any(ref() is not None for ref in refs)
    hops = TrustedProxies(hops=1)
    direct = TrustedProxies()
    assert locate_request("10.0.0.1", headers, proxies=hops, geolocator=None).client.ip == (
        "77.88.55.88"
    )
    assert locate_request("10.0.0.1", headers, proxies=direct, geolocator=None).client.ip == (
        "10.0.0.1"
    )


# -- a CDN's country, the subdivision from the address ---------------------------------------

WA_RULES = """\
version: 1
regions:
  us-but-washington:
    title: The United States without Washington
    include: [US]
    exclude: [US-WA]
rules:
  - id: wa-notice
    title: A notice for readers in Washington
    jurisdictions: [US-WA]
    hosts: [www.example.org]
    notice:
      placement: body_end
      default_locale: en
      text: {en: For readers in Washington.}
  - id: elsewhere-notice
    title: A notice for the rest of the United States, on another site
    jurisdictions: [us-but-washington]
    hosts: [other.example]
    notice:
      placement: body_end
      default_locale: en
      text: {en: For readers outside Washington.}
  - id: de-notice
    title: A notice for readers in Germany
    jurisdictions: [DE]
    notice:
      placement: body_end
      default_locale: en
      text: {en: For readers in Germany.}
"""
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>x</p></body></html>"
WA, GB_ENG = "216.160.83.56", "2.125.160.216"  # MaxMind's City test data: US-WA, GB-ENG


@pytest.fixture(scope="module")
def city_engine(geoip_test_data: Any, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("wa-rules")
    (folder / "rules.yaml").write_text(WA_RULES, encoding="utf-8")
    city = MaxMindGeolocator(geoip_test_data / "GeoIP2-City-Test.mmdb")
    return Engine.from_paths([folder], geolocator=city)


def _wsgi_page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


async def _asgi_page(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


def _through_cloudflare(
    engine: Engine, adapter: str, address: str, country: str, host: str = "www.example.org"
) -> TestResponse:
    """A request through Cloudflare (country header only, no region header) and a trusted
    load balancer, to the middleware of ``adapter``."""
    headers = [("Host", host), ("X-Forwarded-For", address), ("CF-IPCountry", country)]
    options: dict[str, Any] = {"trusted_proxies": ["10.0.0.0/8"], "geo_header": "cloudflare"}
    if adapter == "wsgi":
        wsgi_app = wsgi.ComplianceMiddleware(_wsgi_page, engine, **options)
        return call_wsgi(wsgi_app, wsgi_environ("/", peer="10.0.0.1", headers=headers))
    asgi_app = asgi.ComplianceMiddleware(_asgi_page, engine, **options)
    return call_asgi(asgi_app, asgi_scope("/", peer="10.0.0.1", headers=headers))


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_cdn_country_is_completed_by_the_city_database(city_engine: Engine, adapter: str) -> None:
    # Before: the CDN's "US" was the whole answer, and the Washington notice was lost for
    # every reader in Washington the CDN located, though the City database knew the state.
    shown = _through_cloudflare(city_engine, adapter, WA, "US")
    assert shown.notices == ["wa-notice"]
    assert shown.decision.location.subdivisions == ("US-WA",)
    assert shown.decision.location.source == "header:cloudflare+maxmind:GeoIP2-City"
    # The page now depends on the address, which a cache keyed on the CDN's headers cannot
    # see: private, and still varying on the headers.
    assert shown.header("Cache-Control") == "private"
    assert "cf-ipcountry" in (shown.header("Vary") or "").lower()


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_the_cdn_keeps_the_country_when_the_database_disagrees(
    city_engine: Engine, adapter: str
) -> None:
    # The database places this address in England: the CDN's country stands, with no
    # subdivision; private all the same (a reader in Washington sends the same headers).
    answer = _through_cloudflare(city_engine, adapter, GB_ENG, "US")
    assert answer.notices == []
    assert answer.decision.location.country == "US"
    assert answer.decision.location.subdivisions == ()
    assert answer.header("Cache-Control") == "private"


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_the_database_is_not_asked_where_no_rule_names_a_subdivision(
    city_engine: Engine, adapter: str
) -> None:
    # No rule here names a subdivision of Germany: the header decides alone, and a cache may
    # key on it.
    german = _through_cloudflare(city_engine, adapter, WA, "DE")
    assert german.notices == ["de-notice"]
    assert german.decision.location.source == "header:cloudflare"
    assert german.header("Cache-Control") is None
    # Nor on a site the subdivision rules do not cover.
    other = _through_cloudflare(city_engine, adapter, WA, "US", host="news.example")
    assert other.notices == []
    assert other.decision.location.source == "header:cloudflare"
    assert other.header("Cache-Control") is None


def test_a_region_excluding_a_subdivision_asks_for_it_too(city_engine: Engine) -> None:
    # On other.example the rule is on the United States without Washington: the subdivision
    # decides whether it applies.
    inside = _through_cloudflare(city_engine, "wsgi", WA, "US", host="other.example")
    assert inside.notices == []
    assert inside.decision.location.subdivisions == ("US-WA",)
    outside = _through_cloudflare(city_engine, "wsgi", GB_ENG, "US", host="other.example")
    assert outside.notices == ["elsewhere-notice"]


def test_needs_subdivision_is_decided_by_everything_but_the_location(city_engine: Engine) -> None:
    us = Location.of("US", source="header:cloudflare")
    assert city_engine.decide(location=us, host="www.example.org", path="/").needs_subdivision
    assert not city_engine.decide(location=us, host="news.example", path="/").needs_subdivision
    washington = Location.of("US", "US-WA")
    assert not city_engine.decide(location=washington, host="www.example.org").needs_subdivision
    germany = Location.of("DE")
    assert not city_engine.decide(location=germany, host="www.example.org").needs_subdivision


def test_a_completed_location_is_the_same_object_for_a_repeat_reader() -> None:
    header = HeaderGeolocator("cloudflare").locate(None, {"cf-ipcountry": "UA"}, trusted=True)
    city = Location.of("UA", "UA-43", source="maxmind:GeoIP2-City")
    first = completed(header, city)
    assert completed(header, city) is first  # the engine's repeat-reader cache keys on it
    assert (first.country, first.subdivisions, first.via_header) == ("UA", ("UA-43",), None)
    assert completed(header, UNKNOWN).subdivisions == ()
    assert completed(header, UNKNOWN).source == "header:cloudflare+none"


def test_which_geolocators_know_subdivisions(geoip_test_data: Any) -> None:
    city = MaxMindGeolocator(geoip_test_data / "GeoIP2-City-Test.mmdb")
    country = MaxMindGeolocator(geoip_test_data / "GeoIP2-Country-Test.mmdb")
    embedded = EmbeddedGeolocator()
    assert knows_subdivisions(city) is True
    assert knows_subdivisions(country) is False
    assert knows_subdivisions(HeaderGeolocator("cloudflare")) is True
    assert knows_subdivisions(HeaderGeolocator("fastly", "X-Geo")) is None  # "US,USCA" reads
    assert knows_subdivisions(ChainGeolocator([country, embedded])) is False
    assert knows_subdivisions(ChainGeolocator([country, city])) is True
    assert knows_subdivisions(ChainGeolocator([embedded, FixedGeolocator({})])) is None
    assert knows_subdivisions(FixedGeolocator({})) is None
    city.close()
    country.close()


# -- the host the trusted proxies name --------------------------------------------------------

HOST_RULES = """\
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


@pytest.fixture(scope="module")
def host_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("host-rules")
    (folder / "rules.yaml").write_text(HOST_RULES, encoding="utf-8")
    return Engine.from_paths([folder], geolocator=FixedGeolocator("RU"))


def _proxied(
    engine: Engine, adapter: str, headers: list[tuple[str, str]], peer: str = "10.0.0.1",
    **options: Any,
) -> TestResponse:  # fmt: skip
    """A request from ``peer`` (a trusted proxy, by default) with ``headers``."""
    options = {"trusted_proxies": ["10.0.0.0/8"], **options}
    if adapter == "wsgi":
        wsgi_app = wsgi.ComplianceMiddleware(_wsgi_page, engine, **options)
        return call_wsgi(wsgi_app, wsgi_environ("/", peer=peer, headers=headers))
    asgi_app = asgi.ComplianceMiddleware(_asgi_page, engine, **options)
    return call_asgi(asgi_app, asgi_scope("/", peer=peer, headers=headers))


# nginx's default: the proxy_pass address as Host, the reader's in X-Forwarded-Host.
REWRITTEN = [("Host", "app:8000"), ("X-Forwarded-For", RU_V4)]


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_rules_match_the_host_the_trusted_proxies_name(host_engine: Engine, adapter: str) -> None:
    headers = [*REWRITTEN, ("X-Forwarded-Host", "www.example.org")]
    shown = _proxied(host_engine, adapter, headers, forwarded_host=True)
    assert shown.notices == ["site-notice"]
    # The application still sees the Host it was sent.
    assert _proxied(host_engine, adapter, headers).notices == []


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_forwarded_host_is_believed_only_from_the_trusted_proxies(
    host_engine: Engine, adapter: str
) -> None:
    # A reader who connects directly cannot pick the host the rules match: with Host
    # www.example.org and a forged X-Forwarded-Host, the site's notice stays.
    headers = [("Host", "www.example.org"), ("X-Forwarded-Host", "elsewhere.example")]
    direct = _proxied(host_engine, adapter, headers, peer=RU_V4, forwarded_host=True)
    assert direct.notices == ["site-notice"]
    # Through the proxy, only the value it wrote (the last) counts, not what the reader
    # sent before it.
    forged = [*REWRITTEN, ("X-Forwarded-Host", "www.example.org, elsewhere.example")]
    assert _proxied(host_engine, adapter, forged, forwarded_host=True).notices == []
    written = [*REWRITTEN, ("X-Forwarded-Host", "elsewhere.example, www.example.org")]
    assert _proxied(host_engine, adapter, written, forwarded_host=True).notices == ["site-notice"]


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_the_forwarded_header_names_the_host_in_its_host_parameter(
    host_engine: Engine, adapter: str
) -> None:
    headers = [
        ("Host", "app:8000"),
        ("Forwarded", f'for={RU_V4};host="www.example.org";proto=https'),
        ("X-Forwarded-Host", "elsewhere.example"),  # not the header these proxies write
    ]
    options = {"forwarded_header": "forwarded", "forwarded_host": True}
    assert _proxied(host_engine, adapter, headers, **options).notices == ["site-notice"]


def test_with_hops_the_host_is_the_outermost_proxys() -> None:
    client = ClientAddress(RU_V4, True, "10.0.0.1")
    hops = TrustedProxies(hops=2)
    both = {"x-forwarded-host": "www.example.org, lb.internal"}
    assert forwarded_host(client, both, hops) == "www.example.org"
    # Fewer values than proxies: not what they write, so nothing is believed.
    assert forwarded_host(client, {"x-forwarded-host": "www.example.org"}, hops) is None
    # A value too long to be a host, cut at the bound, is not read as a shorter one.
    long = {"x-forwarded-host": "a" * 5000 + ".example.org"}
    assert forwarded_host(client, long, TrustedProxies(["10.0.0.0/8"])) is None


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_an_unreadable_forwarded_host_leaves_the_host_header(
    host_engine: Engine, adapter: str
) -> None:
    headers = [("Host", "www.example.org"), ("X-Forwarded-For", RU_V4)]
    for value in ("", " ", "[bad", "a" * 300):
        sent = [*headers, ("X-Forwarded-Host", value)]
        shown = _proxied(host_engine, adapter, sent, forwarded_host=True)
        assert shown.notices == ["site-notice"], value


def test_forwarded_host_needs_trusted_proxies_and_a_flag(host_engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="forwarded_host needs trusted_proxies"):
        wsgi.ComplianceMiddleware(_wsgi_page, host_engine, forwarded_host=True)
    with pytest.raises(ConfigurationError, match="forwarded_host must be True or False"):
        asgi.ComplianceMiddleware(
            _asgi_page, host_engine, trusted_proxies=["10.0.0.0/8"], forwarded_host="yes"
        )


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_host_the_proxies_name_otherwise_is_told_once(
    host_engine: Engine, adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: behind a proxy that rewrites Host, rules with hosts: reached no reader and
    # nothing said so.
    own = f"app-{adapter}:8000"  # a pair of its own: each pair is told once per process
    headers = [("Host", own), ("X-Forwarded-For", RU_V4), ("X-Forwarded-Host", "www.example.org")]
    with caplog.at_level(logging.WARNING, logger="compliance.middleware"):
        for _ in range(3):
            assert _proxied(host_engine, adapter, headers).notices == []
        same = [("Host", "www.example.org"), ("X-Forwarded-Host", "WWW.example.org:443")]
        assert _proxied(host_engine, adapter, same).notices == ["site-notice"]  # the same
    told = [r.getMessage() for r in caplog.records if "X-Forwarded-Host" in r.getMessage()]
    assert len(told) == 1, told
    assert f"Host: app-{adapter}" in told[0]
    assert "for host www.example.org" in told[0]
    assert "forwarded_host=True" in told[0]


def test_the_hosts_told_are_bounded(
    host_engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that passes X-Forwarded-Host on as readers send it lets them write anything
    # there: the warnings, and what is kept to judge them, stay bounded.
    monkeypatch.setattr(core, "_FORWARDED_HOSTS_JUDGED", set())
    monkeypatch.setattr(core, "_forwarded_hosts_told", 0)
    app = wsgi.ComplianceMiddleware(_wsgi_page, host_engine, trusted_proxies=["10.0.0.0/8"])
    with caplog.at_level(logging.WARNING, logger="compliance.middleware"):
        for n in range(300):
            named = f"{'x' * 5000},site-{n}.example"
            headers = [*REWRITTEN, ("X-Forwarded-Host", named)]
            call_wsgi(app, wsgi_environ("/", peer="10.0.0.1", headers=headers))
    told = [r for r in caplog.records if "X-Forwarded-Host" in r.getMessage()]
    assert len(told) == core._MAX_FORWARDED_HOSTS_TOLD
    assert len(core._FORWARDED_HOSTS_JUDGED) == core._MAX_JUDGED
    assert all(len(a) <= 256 and len(b) <= 1024 for a, b in core._FORWARDED_HOSTS_JUDGED)


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_cdn_header_from_a_peer_not_trusted_is_told_once(
    host_engine: Engine,
    adapter: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: behind a server that rewrites the client address (uvicorn, by default), no
    # request came from a trusted proxy, the CDN's country was never read, and nothing said
    # so: a reader the CDN placed in Russia was located by address alone.
    monkeypatch.setattr(core, "_untrusted_geo_told", False)
    cdn = [("Host", "www.example.org"), ("CF-IPCountry", "DE")]
    with caplog.at_level(logging.WARNING, logger="compliance.middleware"):
        believed = _proxied(host_engine, adapter, cdn, geo_header="cloudflare")
        assert believed.notices == []  # from the trusted proxy: Germany, as the CDN says
        assert not core._untrusted_geo_told
        _proxied(host_engine, adapter, cdn[:1], peer=RU_V4, geo_header="cloudflare")
        assert not core._untrusted_geo_told  # no CDN header: nothing to tell
        for _ in range(3):
            ignored = _proxied(host_engine, adapter, cdn, peer=RU_V4, geo_header="cloudflare")
            assert ignored.notices == ["site-notice"]  # located by address
    told = [r.getMessage() for r in caplog.records if "cf-ipcountry" in r.getMessage()]
    assert len(told) == 1, told
    assert "not in trusted_proxies" in told[0]
    assert "--no-proxy-headers" in told[0]
    assert RU_V4 not in told[0]

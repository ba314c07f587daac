"""CDN header providers as data: the Provider type, the registry, ISO 3166 checks of values."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from compliance.errors import ConfigurationError
from compliance.geo import (
    UNKNOWN,
    HeaderGeolocator,
    Provider,
    get_provider,
    register_provider,
    registered_providers,
)
from compliance.geo import location as location_module
from compliance.geo import providers as providers_module
from compliance.geo.providers import parse_cldr, parse_edgescape, parse_pair, parse_plain


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    """Each test sees its own "logged once" memory, and the registry as it found it."""
    location_module._warned.clear()
    before = dict(registered_providers())
    yield
    location_module._warned.clear()
    with providers_module._registry_lock:
        providers_module._registry.clear()
        providers_module._registry.update(before)


def test_built_in_providers_are_registered_data() -> None:
    found = registered_providers()
    # In registration order (docs and doctests may have added their own after these).
    built_in = ["cloudflare", "cloudfront", "fastly", "akamai", "google", "generic"]
    assert list(found)[:6] == built_in
    assert found["cloudflare"] == Provider("cloudflare", "cf-ipcountry", "cf-region-code")
    assert found["cloudfront"].headers == (
        "cloudfront-viewer-country",
        "cloudfront-viewer-country-region",
    )
    assert found["akamai"].parse is parse_edgescape
    assert found["akamai"].verified is False  # its region format outside the US is unverified
    assert found["google"].country_header == "x-client-geo-location"
    assert found["fastly"].country_header is None  # each site's VCL names its header
    with pytest.raises(AttributeError):
        found["cloudflare"].name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        found["new"] = found["cloudflare"]  # type: ignore[index]


def test_a_site_adds_its_cdn_without_a_code_change() -> None:
    edge = register_provider(
        Provider("bunny-test", "CDN-RequestCountryCode", "CDN-RequestStateCode")
    )
    assert get_provider("bunny-test") is edge
    assert edge.headers == ("cdn-requestcountrycode", "cdn-requeststatecode")
    geo = HeaderGeolocator("bunny-test")
    location = geo.locate(
        None, {"cdn-requestcountrycode": "UA", "cdn-requeststatecode": "43"}, trusted=True
    )
    assert (location.country, location.subdivisions, location.source) == (
        "UA",
        ("UA-43",),
        "header:bunny-test",
    )
    assert location.via_header == "cdn-requestcountrycode, cdn-requeststatecode"


def test_a_provider_object_is_accepted_without_registering_it() -> None:
    def semicolons(country: str, region: str | None) -> tuple[str | None, str | None]:
        code, _, sub = country.partition(";")
        return code, sub or None

    geo = HeaderGeolocator(Provider("inhouse", "x-geo", parse=semicolons))
    assert geo.locate(None, {"x-geo": "de;BY"}, trusted=True).subdivisions == ("DE-BY",)
    assert "inhouse" not in registered_providers()


def test_registry_refuses_duplicates_and_non_providers() -> None:
    with pytest.raises(ConfigurationError, match="already registered"):
        register_provider(Provider("cloudflare", "x-other"))
    replaced = register_provider(Provider("cloudflare", "x-other"), replace=True)
    assert get_provider("cloudflare") is replaced
    with pytest.raises(ConfigurationError, match="needs a Provider"):
        register_provider("cloudflare")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown geolocation header provider 'nope'"):
        get_provider("nope")
    with pytest.raises(ConfigurationError, match="register_provider"):
        HeaderGeolocator("nope")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"name": ""}, "needs a name", id="empty-name"),
        pytest.param({"country_header": "bad header"}, "not a header name", id="space"),
        pytest.param({"country_header": "x-geo:"}, "not a header name", id="colon"),
        pytest.param({"region_header": "r\nx"}, "not a header name", id="newline"),
        pytest.param({"parse": "plain"}, "parse must be callable", id="parse-not-callable"),
    ],
)
def test_bad_providers_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "x", "country_header": "x-geo", **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        Provider(**fields)  # type: ignore[arg-type]


def test_site_header_names_override_the_providers() -> None:
    with pytest.raises(ConfigurationError, match="needs header=NAME"):
        HeaderGeolocator("fastly")
    geo = HeaderGeolocator("fastly", "X-Geo", region_header="X-Geo-Region")
    assert geo.headers == ("x-geo", "x-geo-region")
    assert geo.provider.name == "fastly"
    assert get_provider("fastly").country_header is None  # the registered one is untouched
    google = HeaderGeolocator("google", "x-lb-geo")
    assert google.locate(None, {"x-lb-geo": "US,USCA"}, trusted=True).subdivisions == ("US-CA",)
    with pytest.raises(ConfigurationError, match="not a header name"):
        HeaderGeolocator("fastly", "bad header")


@pytest.mark.parametrize(
    ("parse", "country", "region", "expected"),
    [
        pytest.param(parse_plain, "UA", "43", ("UA", "43"), id="plain"),
        pytest.param(parse_pair, "UA,43", None, ("UA", "43"), id="pair"),
        pytest.param(parse_pair, "UA", "43", ("UA", "43"), id="pair-region-header"),
        pytest.param(parse_pair, "ua, UA-43", None, ("ua", "UA-43"), id="pair-full-code"),
        pytest.param(
            parse_edgescape,
            "georegion=246,country_code=US,region_code=CA,city=SANJOSE",
            None,
            ("US", "CA"),
            id="edgescape",
        ),
        pytest.param(parse_edgescape, "georegion=246", None, (None, None), id="edgescape-none"),
        pytest.param(parse_cldr, "USCA", None, ("US", "CA"), id="cldr-subdivision"),
        pytest.param(parse_cldr, "US,USCA", None, ("US", "CA"), id="cldr-pair"),
        pytest.param(parse_cldr, "DE", None, ("DE", None), id="cldr-country"),
    ],
)
def test_value_formats(
    parse: providers_module.Parse,
    country: str,
    region: str | None,
    expected: tuple[str | None, str | None],
) -> None:
    assert parse(country, region) == expected


@pytest.mark.parametrize(
    ("headers", "country", "subdivisions"),
    [
        pytest.param({"cf-ipcountry": "RU", "cf-region-code": "MOW"}, "RU", ("RU-MOW",), id="ok"),
        pytest.param({"cf-ipcountry": "UA", "cf-region-code": "43"}, "UA", ("UA-43",), id="crimea"),
        pytest.param({"cf-ipcountry": "GB", "cf-region-code": "ENG"}, "GB", ("GB-ENG",), id="gb"),
        pytest.param(
            {"cf-ipcountry": "UA", "cf-region-code": "UA-43"}, "UA", ("UA-43",), id="full-code"
        ),
        # RU + CR is not RU-CR: Crimea is UA-43 in ISO 3166-2.
        pytest.param({"cf-ipcountry": "RU", "cf-region-code": "CR"}, "RU", (), id="ru-cr"),
        pytest.param({"cf-ipcountry": "US", "cf-region-code": "ZZ"}, "US", (), id="us-zz"),
        pytest.param({"cf-ipcountry": "DE", "cf-region-code": "WA"}, "DE", (), id="other-country"),
        pytest.param({"cf-ipcountry": "UA", "cf-region-code": "<b>"}, "UA", (), id="markup"),
        pytest.param({"cf-ipcountry": "UA", "cf-region-code": ""}, "UA", (), id="empty-region"),
        pytest.param({"cf-ipcountry": "XX"}, None, (), id="xx"),
        pytest.param({"cf-ipcountry": "T1"}, None, (), id="tor"),
        pytest.param({"cf-ipcountry": "**"}, None, (), id="stars"),
        pytest.param({"cf-ipcountry": ""}, None, (), id="empty"),
        pytest.param({"cf-ipcountry": "QQ"}, None, (), id="unassigned"),
        pytest.param({"cf-ipcountry": "XK"}, "XK", (), id="kosovo"),
    ],
)
def test_values_are_checked_against_iso_3166(
    headers: dict[str, str], country: str | None, subdivisions: tuple[str, ...]
) -> None:
    location = HeaderGeolocator("cloudflare").locate(None, headers, trusted=True)
    assert (location.country, location.subdivisions) == (country, subdivisions)
    if country is None:
        assert location is UNKNOWN


def test_an_invalid_region_is_logged_once_per_value(caplog: pytest.LogCaptureFixture) -> None:
    geo = HeaderGeolocator("cloudflare")
    with caplog.at_level(logging.WARNING, logger="compliance.geo"):
        for _ in range(3):
            geo.locate(None, {"cf-ipcountry": "RU", "cf-region-code": "CR"}, trusted=True)
            HeaderGeolocator("cloudflare").locate(
                None, {"cf-ipcountry": "RU", "cf-region-code": "CR"}, trusted=True
            )
        geo.locate(None, {"cf-ipcountry": "RU", "cf-region-code": "XY"}, trusted=True)
        # Placeholders for "no region" are not a problem worth a line.
        geo.locate(None, {"cf-ipcountry": "GB", "cf-region-code": "NO REGION"}, trusted=True)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "'CR'" in messages[0]
    assert "RU-CR" in messages[0]
    assert "not an ISO 3166-2 subdivision" in messages[0]
    assert "'XY'" in messages[1]


def test_a_malformed_country_is_logged_once_per_value_and_placeholders_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A header that holds something other than a country code (a three-letter code from
    the wrong VCL variable, a name, two header lines joined) is a misconfiguration: every
    reader then falls back to the address, and the operator must hear of it, as of an
    unassigned code. The CDNs' placeholders for "unknown" are not worth a line."""
    geo = HeaderGeolocator("fastly", "x-geo")
    with caplog.at_level(logging.WARNING, logger="compliance.geo"):
        for _ in range(3):
            for value in ("UKR", "Ukraine", "U1", "QQ", "XX", "T1", "**", "", " ", "--", "EU"):
                assert geo.locate(None, {"x-geo": value}, trusted=True) is UNKNOWN
        cloudflare = HeaderGeolocator("cloudflare")
        assert cloudflare.locate(None, {"cf-ipcountry": "UA, RU"}, trusted=True) is UNKNOWN
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m.split(": ")[0] for m in messages] == ["header:fastly"] * 4 + ["header:cloudflare"]
    for value, message in zip(
        ("'UKR'", "'Ukraine'", "'U1'", "'QQ'", "'UA, RU'"), messages, strict=True
    ):
        assert value in message
        assert "ISO 3166-1" in message


def test_the_memory_of_logged_values_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    geo = HeaderGeolocator("generic", "x-geo")
    warned = location_module._warned
    with caplog.at_level(logging.ERROR, logger="compliance.geo"):
        for n in range(3_000):
            geo.locate(None, {"x-geo": f"RU,{n:X}" + "Q" * 900}, trusted=True)
    assert len(warned) <= warned.max_entries
    assert warned.nbytes <= warned.max_bytes


def test_a_stream_of_distinct_bad_values_is_logged_within_a_bound(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad value is logged once, but values are endless: whoever can get a header
    believed (a reader reaching a trusted hop directly, any peer with ``proxy_hops``, a CDN
    that leaves a reader's own region header in place when it has none) made one WARNING
    per request with a new value. A few new values a minute are logged per header and kind;
    the rest are counted in the next line."""
    now = [1000.0]
    monkeypatch.setattr(location_module, "_monotonic", lambda: now[0])
    geo = HeaderGeolocator("cloudflare")
    with caplog.at_level(logging.WARNING, logger="compliance.geo"):
        for n in range(1_000):
            headers = {"cf-ipcountry": "UA", "cf-region-code": f"Z{n}"}
            assert geo.locate(None, headers, trusted=True).subdivisions == ()
            geo.locate(None, {"cf-ipcountry": f"Q{n}Q"}, trusted=True)
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        budget = location_module._WARN_BUDGET
        assert sum(": region '" in m for m in logged) == budget
        assert sum(": country '" in m for m in logged) == budget
        now[0] += location_module._WARN_INTERVAL
        caplog.clear()
        geo.locate(None, {"cf-ipcountry": "UA", "cf-region-code": "Y1"}, trusted=True)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "'Y1'" in line
    assert f"{1_000 - budget} more such values were not logged" in line


def test_a_failing_parse_function_is_unknown_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(country: str, region: str | None) -> tuple[str | None, str | None]:
        raise ValueError("cannot read this")

    geo = HeaderGeolocator(Provider("broken", "x-geo", parse=broken))
    with caplog.at_level(logging.WARNING, logger="compliance.geo"):
        assert geo.locate(None, {"x-geo": "UA"}, trusted=True) is UNKNOWN
    assert "could not be parsed" in caplog.text


def test_repeat_values_give_the_same_location_object() -> None:
    # The engine's decision cache keys on the Location's identity: a repeat reader behind a
    # CDN must get the very same object.
    geo = HeaderGeolocator("cloudfront")
    headers = {"cloudfront-viewer-country": "US", "cloudfront-viewer-country-region": "WA"}
    first = geo.locate(None, headers, trusted=True)
    assert geo.locate(None, dict(headers), trusted=True) is first
    assert geo.from_headers(headers) is first


def test_huge_values_are_not_parsed_or_kept() -> None:
    geo = HeaderGeolocator("cloudflare")
    assert geo.locate(None, {"cf-ipcountry": "U" * 5000}, trusted=True) is UNKNOWN
    location = geo.locate(None, {"cf-ipcountry": "UA", "cf-region-code": "4" * 5000}, trusted=True)
    assert (location.country, location.subdivisions) == ("UA", ())


@pytest.mark.parametrize("name", ["fastly", "generic"])
def test_a_provider_named_as_the_middleware_option_says_how_to_give_its_header(
    name: str,
) -> None:
    """The middleware's ``geo_header`` lists "fastly" and "generic" as values, but they name
    no header of their own: the error said "needs header=NAME", an argument the option does
    not take."""
    from compliance import Engine
    from compliance.wsgi import ComplianceMiddleware

    engine = Engine.from_paths()
    with pytest.raises(ConfigurationError) as raised:
        ComplianceMiddleware(None, engine, trusted_proxies=["10.0.0.0/8"], geo_header=name)
    assert f"geo_header=HeaderGeolocator({name!r}, header=" in str(raised.value)
    engine.close()


@pytest.mark.parametrize(
    ("value", "subdivisions"),
    [
        pytest.param("GB,BNH", ("GB-ENG", "GB-BNH"), id="brighton-in-england"),
        pytest.param("ES,B", ("ES-CT", "ES-B"), id="barcelona-in-catalonia"),
        pytest.param("FR,75C", ("FR-IDF", "FR-75C"), id="paris-in-ile-de-france"),
        pytest.param("GB,ENG", ("GB-ENG",), id="first-level-alone"),
        pytest.param("US,CA", ("US-CA",), id="no-parent"),
    ],
)
def test_a_second_level_subdivision_comes_with_the_ones_that_hold_it(
    value: str, subdivisions: tuple[str, ...]
) -> None:
    """Fastly's region is "the more specific subdivision" (GB-BNH for Brighton, not
    GB-ENG): a reader there missed a rule on GB-ENG, located in a known subdivision that
    no rule named. The subdivisions holding it come first, largest first, as a City
    database gives them."""
    geo = HeaderGeolocator("fastly", "x-geo")
    assert geo.locate(None, {"x-geo": value}, trusted=True).subdivisions == subdivisions


def test_a_rule_on_a_first_level_subdivision_reaches_a_reader_located_in_a_second(
    tmp_path: Path,
) -> None:
    from compliance import Engine

    (tmp_path / "eng.yaml").write_text(
        "version: 1\nrules:\n  - id: eng\n    title: England\n    jurisdictions: [GB-ENG]\n"
        "    notice:\n      default_locale: en\n      text: {en: For readers in England.}\n",
        encoding="utf-8",
    )
    engine = Engine.from_paths([str(tmp_path)], packs=[])
    location = HeaderGeolocator("fastly", "x-geo").locate(None, {"x-geo": "GB,BNH"}, trusted=True)
    assert [notice.rule_id for notice in engine.decide(location=location).notices] == ["eng"]
    engine.close()

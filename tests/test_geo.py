"""Geolocation: Location, the MaxMind, embedded, header and chain geolocators, reloading."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from compliance.errors import ConfigurationError, GeoDatabaseError
from compliance.geo import (
    UNKNOWN,
    Anonymity,
    ChainGeolocator,
    EmbeddedGeolocator,
    Geolocator,
    HeaderGeolocator,
    Location,
    MaxMindGeolocator,
    is_iso_subdivision,
    open_geolocator,
    public_address,
)
from compliance.testing import FixedGeolocator, build_mmdb

UA_CRIMEA = "198.51.99.0/24"  # deliberately not a documentation range, which is never looked up


def _record(country: str, *subdivisions: str, eu: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "country": {"iso_code": country, "names": {"en": country}},
        "subdivisions": [{"iso_code": code} for code in subdivisions],
    }
    if eu:
        record["country"]["is_in_european_union"] = True
    return record


NETWORKS: Mapping[str, Mapping[str, Any]] = {
    UA_CRIMEA: _record("UA", "43"),
    "77.88.0.0/18": _record("RU"),
    "2a02:6b8::/32": _record("RU"),
    "5.6.0.0/16": _record("DE", "BY", eu=True),
    "10.0.0.0/8": _record("FR"),  # private: must never be looked up
    "8.8.8.0/24": {"continent": {"code": "NA"}},  # a record without a country
}


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return build_mmdb(tmp_path / "City.mmdb", NETWORKS)


# --- Location ---------------------------------------------------------------------------------


def test_location_defaults_and_unknown() -> None:
    assert Location() == UNKNOWN
    assert not UNKNOWN.known
    assert UNKNOWN.subdivisions == ()
    assert UNKNOWN.source == "none"
    assert Location("RU").known


def test_location_of_normalizes_and_checks() -> None:
    assert Location.of("ua", "43") == Location(
        "UA", ("UA-43",), "fixed", is_in_european_union=False
    )
    assert Location.of("SE", "SE-E").is_in_european_union is True
    with pytest.raises(ConfigurationError, match="country code"):
        Location.of("XX")
    with pytest.raises(ConfigurationError, match="subdivision"):
        Location.of("UA", "UA-4343")
    with pytest.raises(ConfigurationError, match="need a country"):
        Location.of(None, "43")
    # Checked against ISO 3166, not only by shape: unassigned codes are refused.
    assert Location.of("XK").country == "XK"  # Kosovo, as CDNs and MaxMind use it
    assert Location.of("UA", "UA-43").subdivisions == ("UA-43",)
    for country, subdivisions in [("QQ", ()), ("RU", ("CR",)), ("UA", ("99",)), ("RU", ("UA-43",))]:
        with pytest.raises(ConfigurationError, match="ISO 3166"):
            Location.of(country, *subdivisions)


def test_location_to_dict_is_json() -> None:
    location = Location(
        "UA", ("UA-43",), "maxmind:GeoIP2-City", "1.2.3.0/24", None, False, True, Anonymity(True)
    )
    data = json.loads(json.dumps(location.to_dict()))
    assert data["country"] == "UA"
    assert data["subdivisions"] == ["UA-43"]
    assert data["network"] == "1.2.3.0/24"
    assert data["is_anonymous"] is True
    assert data["anonymity"]["anonymous_vpn"] is True
    assert UNKNOWN.to_dict()["anonymity"] is None


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("81.2.69.142", True),
        ("2a02:d0c0::1", True),
        ("::ffff:81.2.69.142", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("::", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:10.0.0.1", False),
        ("1.2.3", False),
        ("01.2.3.4", False),
        ("1.2.3.4 ", False),
        ("", False),
        ("garbage", False),
        ("1.2.3.4\x00", False),
    ],
)
def test_public_address(ip: str, public: bool) -> None:
    assert (public_address(ip) is not None) is public


# --- MaxMind, built database ------------------------------------------------------------------


def test_built_city_database(city_db: Path) -> None:
    with MaxMindGeolocator(city_db) as geo:
        crimea = geo.locate("198.51.99.7")
        assert crimea.country == "UA"
        assert crimea.subdivisions == ("UA-43",)
        assert crimea.source == "maxmind:GeoIP2-City"
        assert crimea.network == UA_CRIMEA
        assert crimea.via_header is None
        assert crimea.is_anonymous is None
        assert geo.locate("77.88.55.88").country == "RU"
        assert geo.locate("::ffff:77.88.55.88").country == "RU"
        assert geo.locate("2a02:6b8::1").network == "2a02:6b8::/32"
        assert geo.locate("5.6.7.8").is_in_european_union is True
        assert geo.locate("77.88.55.88").is_in_european_union is False
        assert geo.database_type == "GeoIP2-City"


@pytest.mark.parametrize(
    "ip",
    [
        "1.1.1.1",
        "10.1.2.3",
        "8.8.8.8",
        "garbage",
        "",
        "::1",
        "2001:db8::1",
        "2a02:6b8::1%eth0",
        None,
    ],
)
def test_unknown_addresses(city_db: Path, ip: str | None) -> None:
    with MaxMindGeolocator(city_db) as geo:
        assert geo.locate(ip) is UNKNOWN


def test_repeat_lookups_are_cached(city_db: Path) -> None:
    with MaxMindGeolocator(city_db) as geo:
        first = geo.locate("198.51.99.7")
        assert geo.locate("198.51.99.7") is first
        # Another address of the same network shares the Location object.
        assert geo.locate("198.51.99.8") is first
        geo.clear_cache()
        again = geo.locate("198.51.99.7")
        assert again == first
        assert again is not first


def test_cache_is_bounded(city_db: Path) -> None:
    with MaxMindGeolocator(city_db, cache_size=16) as geo:
        for host in range(200):
            assert geo.locate(f"77.88.{host // 100}.{host % 100 + 1}").country == "RU"
        assert len(geo._state.cache) <= 16


def test_cache_can_be_disabled(city_db: Path) -> None:
    with MaxMindGeolocator(city_db, cache_size=0) as geo:
        assert geo.locate("198.51.99.7") == geo.locate("198.51.99.7")
        assert len(geo._state.cache) == 0


def test_ipv4_only_database(tmp_path: Path) -> None:
    path = build_mmdb(tmp_path / "v4.mmdb", {UA_CRIMEA: _record("UA", "43")}, ip_version=4)
    with MaxMindGeolocator(path) as geo:
        assert geo.locate("198.51.99.1").subdivisions == ("UA-43",)
        assert geo.locate("2a02:6b8::1") is UNKNOWN


def test_a_database_naming_the_most_specific_subdivision_alone_gets_those_that_hold_it(
    tmp_path: Path,
) -> None:
    """A database in MaxMind's format from another source may list the most specific
    subdivision alone (GB-BNH, Brighton and Hove, without GB-ENG): a rule on England missed
    the reader. As for CDN headers, the subdivisions holding it come first; a record that
    lists them already is unchanged."""
    path = build_mmdb(
        tmp_path / "one-level.mmdb",
        {UA_CRIMEA: _record("GB", "BNH"), "5.6.0.0/16": _record("GB", "ENG", "BNH")},
    )
    with MaxMindGeolocator(path) as geo:
        assert geo.locate("198.51.99.1").subdivisions == ("GB-ENG", "GB-BNH")
        assert geo.locate("5.6.7.8").subdivisions == ("GB-ENG", "GB-BNH")


def test_country_database_type_is_detected(tmp_path: Path) -> None:
    path = build_mmdb(
        tmp_path / "c.mmdb", {UA_CRIMEA: _record("UA")}, database_type="GeoLite2-Country"
    )
    with MaxMindGeolocator(path) as geo:
        assert geo.locate("198.51.99.1").source == "maxmind:GeoLite2-Country"


def test_unsupported_database_type(tmp_path: Path) -> None:
    path = build_mmdb(tmp_path / "asn.mmdb", {UA_CRIMEA: {"x": 1}}, database_type="GeoLite2-ASN")
    with pytest.raises(GeoDatabaseError, match="unsupported database type 'GeoLite2-ASN'"):
        MaxMindGeolocator(path)


def test_closed_geolocator_raises(city_db: Path) -> None:
    geo = MaxMindGeolocator(city_db)
    geo.close()
    with pytest.raises(GeoDatabaseError, match="closed"):
        geo.locate("198.51.99.7")
    assert geo.reload() is False


@pytest.mark.parametrize("name", ["missing.mmdb", "directory", "garbage.mmdb", "empty.mmdb"])
def test_unusable_files_name_the_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "directory").mkdir()
    (tmp_path / "garbage.mmdb").write_bytes(b"not a database" * 100)
    (tmp_path / "empty.mmdb").write_bytes(b"")
    path = tmp_path / name
    with pytest.raises(GeoDatabaseError) as caught:
        MaxMindGeolocator(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(city_db: Path) -> None:
    city_db.chmod(0)
    with pytest.raises(GeoDatabaseError, match="permission denied"):
        MaxMindGeolocator(city_db)


def test_bad_options(city_db: Path) -> None:
    with pytest.raises(ConfigurationError, match="check_interval"):
        MaxMindGeolocator(city_db, check_interval=-1)


# --- MaxMind, the official test databases -----------------------------------------------------


@pytest.mark.parametrize(
    ("database", "ip", "country", "subdivisions"),
    [
        pytest.param("GeoIP2-Enterprise-Test", "1.231.232.1", "UA", ("UA-43",), id="crimea"),
        pytest.param("GeoIP2-Enterprise-Test", "2.20.32.110", "TR", ("TR-23",), id="enterprise"),
        pytest.param("GeoIP2-City-Test", "81.2.69.142", "GB", ("GB-ENG",), id="london"),
        pytest.param(
            "GeoIP2-City-Test", "2.125.160.216", "GB", ("GB-ENG", "GB-WBK"), id="two-levels"
        ),
        pytest.param("GeoIP2-City-Test", "216.160.83.56", "US", ("US-WA",), id="us-wa"),
        pytest.param("GeoIP2-City-Test", "89.160.20.112", "SE", ("SE-E",), id="sweden"),
        pytest.param("GeoIP2-City-Test", "2a02:d0c0::1", "RU", (), id="ipv6-ru"),
        pytest.param("GeoIP2-City-Test", "2a02:d300::1", "UA", (), id="ipv6-ua"),
        pytest.param("GeoIP2-City-Test", "::ffff:81.2.69.142", "GB", ("GB-ENG",), id="mapped"),
        pytest.param("GeoIP2-Country-Test", "81.2.69.142", "GB", (), id="country-db"),
        pytest.param("GeoLite2-City-Test", "81.2.69.142", "GB", ("GB-ENG",), id="geolite2"),
        pytest.param(
            "GeoIP2-Precision-Enterprise-Test", "81.2.69.160", "GB", ("GB-ENG",), id="precision"
        ),
    ],
)
def test_maxmind_test_databases(
    geoip_test_data: Path,
    database: str,
    ip: str,
    country: str,
    subdivisions: tuple[str, ...],
) -> None:
    with MaxMindGeolocator(geoip_test_data / f"{database}.mmdb") as geo:
        location = geo.locate(ip)
    assert (location.country, location.subdivisions) == (country, subdivisions)
    assert location.source == f"maxmind:{database.removesuffix('-Test')}"
    assert location.network is not None


def test_sweden_is_in_the_eu(geoip_test_data: Path) -> None:
    with MaxMindGeolocator(geoip_test_data / "GeoIP2-City-Test.mmdb") as geo:
        assert geo.locate("89.160.20.112").is_in_european_union is True
        assert geo.locate("216.160.83.56").is_in_european_union is False


def test_a_subdivision_code_iso_does_not_assign_is_an_unknown_subdivision(
    geoip_test_data: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MaxMind's test City database has Jilin as China's old numeric ``22`` (``CN-JL``
    since 2017). Kept as ``CN-22``, no rule could name it and the reader counted as placed
    in a subdivision: a rule on ``CN-JL`` with ``unknown_subdivision: apply`` left them
    out. Left out instead (logged once), the subdivision is unknown, as with CDN headers."""
    from compliance.cache import BoundedCache
    from compliance.engine import Engine
    from compliance.geo import location as location_module
    from compliance.loader import load_rules

    # Not yet warned about.
    monkeypatch.setattr(location_module, "_warned", BoundedCache(1024, 256 * 1024))

    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: jilin\n    title: x\n    jurisdictions: [CN-JL]\n"
        "    unknown_subdivision: apply\n    headers: {X-A: b}\n",
        encoding="utf-8",
    )
    geo = MaxMindGeolocator(geoip_test_data / "GeoIP2-City-Test.mmdb", cache_size=0)
    with geo, caplog.at_level(logging.WARNING, logger="compliance.geo"):
        location = geo.locate("175.16.199.1")
        assert (location.country, location.subdivisions) == ("CN", ())
        assert geo.locate("175.16.199.2").subdivisions == ()
        engine = Engine(load_rules([tmp_path]), geo)
        assert engine.decide(location=location).applied == ("jilin",)
        assert geo.locate("2.125.160.216").subdivisions == ("GB-ENG", "GB-WBK")  # ISO: kept
    warned = [r.getMessage() for r in caplog.records if "CN-22" in r.getMessage()]
    assert warned == [
        "maxmind:GeoIP2-City: subdivision 'CN-22' is not an ISO 3166-2 code; treated as unknown"
    ]


def test_a_country_code_iso_does_not_assign_is_an_unknown_country(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database's country code was taken as it was: a reader in a network that a
    MaxMind-format database from another source (converted, hand-made) marks ``ZZ`` or
    ``A1`` for "unknown", or with an odd code, counted as placed, so ``unknown_location:
    apply`` left them out and their notice was lost; one written ``ua`` was in no rule of
    Ukraine. Codes are now read as CDN headers are: case-folded, placeholders unknown, and
    anything else ISO does not assign unknown and logged once."""
    from compliance.cache import BoundedCache
    from compliance.engine import Engine
    from compliance.geo import location as location_module
    from compliance.loader import load_rules

    monkeypatch.setattr(location_module, "_warned", BoundedCache(1024, 256 * 1024))
    odd = {
        "ZZ": None,
        "A1": None,
        "EU": None,
        "": None,
        "--": None,
        "QQ": None,
        "Ukraine": None,
        "ua": "UA",
        "xk": "XK",
    }
    networks = {
        f"77.88.{n}.0/24": _record(code, *(["43"] if code == "ua" else []))
        for n, code in enumerate(odd)
    }
    path = build_mmdb(tmp_path / "Odd.mmdb", networks, database_type="DBIP-City-Lite")
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: unplaced\n    title: x\n    jurisdictions: [UA]\n"
        "    unknown_location: apply\n    headers: {X-A: b}\n",
        encoding="utf-8",
    )
    with (
        MaxMindGeolocator(path) as geo,
        caplog.at_level(logging.WARNING, logger="compliance.geo"),
    ):
        engine = Engine(load_rules([tmp_path]), geo)
        for _ in range(2):
            for n, (code, country) in enumerate(odd.items()):
                location = geo.locate(f"77.88.{n}.{7 + _}")
                assert location.country == country, code
                if country is None:
                    assert location is UNKNOWN
                    assert engine.decide(location=location).applied == ("unplaced",), code
        assert geo.locate("77.88.7.1").subdivisions == ("UA-43",)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "maxmind:DBIP-City-Lite: country 'QQ' is not an ISO 3166-1 country code; "
        "treated as unknown",
        "maxmind:DBIP-City-Lite: country 'Ukraine' is not an ISO 3166-1 country code; "
        "treated as unknown",
    ]


def test_anonymous_ip_database(geoip_test_data: Path) -> None:
    with MaxMindGeolocator(
        geoip_test_data / "GeoIP2-City-Test.mmdb",
        anonymous_ip_db=geoip_test_data / "GeoIP2-Anonymous-IP-Test.mmdb",
    ) as geo:
        london = geo.locate("81.2.69.142")
        sweden = geo.locate("89.160.20.112")
    assert london.country == "GB"
    assert london.is_anonymous is True
    assert london.anonymity == Anonymity(True, True, True, True, True)
    assert sweden.is_anonymous is False
    assert sweden.anonymity == Anonymity()


def test_anonymous_ip_database_in_the_wrong_place(geoip_test_data: Path) -> None:
    with pytest.raises(GeoDatabaseError, match="anonymous_ip_db"):
        MaxMindGeolocator(geoip_test_data / "GeoIP2-Anonymous-IP-Test.mmdb")
    with pytest.raises(GeoDatabaseError, match="not an Anonymous-IP one"):
        MaxMindGeolocator(
            geoip_test_data / "GeoIP2-City-Test.mmdb",
            anonymous_ip_db=geoip_test_data / "GeoIP2-Country-Test.mmdb",
        )


@pytest.mark.parametrize(
    "name",
    [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ],
)
def test_broken_test_databases(geoip_test_data: Path, name: str) -> None:
    with pytest.raises(GeoDatabaseError) as caught:
        MaxMindGeolocator(geoip_test_data / name)
    assert caught.value.path == str(geoip_test_data / name)


def test_open_geolocator(geoip_test_data: Path) -> None:
    assert isinstance(open_geolocator(None), EmbeddedGeolocator)
    geo = open_geolocator(geoip_test_data / "GeoIP2-City-Test.mmdb")
    try:
        assert isinstance(geo, MaxMindGeolocator)
        assert isinstance(geo, Geolocator)
    finally:
        geo.close()


# --- reloading --------------------------------------------------------------------------------


def _replace(path: Path, networks: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace ``path`` the way geoipupdate does: write a new file, rename it into place."""
    fresh = build_mmdb(path.with_suffix(".new"), networks)
    os.replace(fresh, path)


def test_reload_under_load(city_db: Path) -> None:
    geo = MaxMindGeolocator(city_db, check_interval=0)
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def lookups() -> None:
        count = 0
        try:
            while not stop.is_set() or count == 0:
                location = geo.locate("198.51.99.7")
                assert location.country in ("UA", "RU"), location
                count += 1
        except BaseException as exc:  # report every failure to the test thread
            errors.append(exc)
        counts.append(count)

    threads = [threading.Thread(target=lookups) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            _replace(city_db, {**NETWORKS, UA_CRIMEA: _record("RU")})
            _replace(city_db, NETWORKS)
        _replace(city_db, {**NETWORKS, UA_CRIMEA: _record("RU")})
        # A lookup skips the check while another thread is making it; reload() waits for it.
        geo.reload()
        assert geo.locate("198.51.99.7").country == "RU"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        geo.close()
    assert errors == []
    assert len(counts) == 4


def test_explicit_reload(city_db: Path) -> None:
    with MaxMindGeolocator(city_db, check_interval=3600) as geo:
        assert geo.locate("198.51.99.7").country == "UA"
        _replace(city_db, {UA_CRIMEA: _record("RU")})
        # Not noticed before the check interval...
        assert geo.locate("198.51.99.7").country == "UA"
        # ...unless asked; the cache is cleared with the swap.
        assert geo.reload() is True
        assert geo.locate("198.51.99.7").country == "RU"
        assert geo.reload() is False
        assert geo.reload(force=True) is True


def test_corrupt_replacement_keeps_serving_and_logs_once(
    city_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with MaxMindGeolocator(city_db, check_interval=0) as geo:
        assert geo.locate("198.51.99.7").country == "UA"
        broken = city_db.with_suffix(".new")
        broken.write_bytes(b"\x00" * 4096)
        os.replace(broken, city_db)
        with caplog.at_level(logging.ERROR, logger="compliance.geo"):
            for _ in range(5):
                assert geo.locate("198.51.99.7").country == "UA"
                assert geo.locate("77.88.55.88").country == "RU"
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert str(city_db) in errors[0].getMessage()
        assert "keeping" in errors[0].getMessage()
        # A good file later is picked up again.
        _replace(city_db, {UA_CRIMEA: _record("RU")})
        assert geo.locate("198.51.99.7").country == "RU"


def test_deleted_file_keeps_serving(city_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    with MaxMindGeolocator(city_db, check_interval=0) as geo:
        city_db.unlink()
        with caplog.at_level(logging.ERROR, logger="compliance.geo"):
            assert geo.locate("198.51.99.7").country == "UA"
            assert geo.locate("198.51.99.8").country == "UA"
        assert len(caplog.records) == 1


def test_wrong_type_replacement_is_refused(city_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    with MaxMindGeolocator(city_db, check_interval=0) as geo:
        fresh = build_mmdb(
            city_db.with_suffix(".new"), {UA_CRIMEA: {"x": 1}}, database_type="GeoLite2-ASN"
        )
        os.replace(fresh, city_db)
        with caplog.at_level(logging.ERROR, logger="compliance.geo"):
            assert geo.reload() is False
        assert geo.locate("198.51.99.7").country == "UA"
        assert "GeoLite2-ASN" in caplog.text


def test_a_replacement_that_knows_no_subdivisions_is_a_warning(
    city_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A City database replaced by a Country one (EditionIDs changed, the wrong file
    renamed into place) is swapped in, as it should be, but every subdivision is unknown
    from then on: rules on Crimea with ``unknown_subdivision: skip`` stop applying. That was
    an INFO line like any reload; it is a WARNING saying so."""
    with MaxMindGeolocator(city_db, check_interval=0) as geo:
        assert geo.locate("198.51.99.7").subdivisions == ("UA-43",)
        countries = {
            net: {"country": rec["country"]} for net, rec in NETWORKS.items() if "country" in rec
        }
        fresh = build_mmdb(city_db.with_suffix(".new"), countries, database_type="GeoIP2-Country")
        os.replace(fresh, city_db)
        with caplog.at_level(logging.INFO, logger="compliance.geo"):
            assert geo.reload() is True
            assert geo.locate("198.51.99.7").subdivisions == ()
            _replace(city_db, NETWORKS)  # a City database again: an ordinary reload
            assert geo.reload() is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{city_db}: now a GeoIP2-Country database, was GeoIP2-City: subdivisions are no "
        "longer known"
    ]


# --- embedded ---------------------------------------------------------------------------------


def test_embedded() -> None:
    with EmbeddedGeolocator() as geo:
        yandex = geo.locate("77.88.55.88")
        assert yandex.country == "RU"
        assert yandex.source == "embedded"
        assert yandex.subdivisions == ()
        assert yandex.network is None
        assert yandex.is_in_european_union is False
        assert geo.locate("77.88.55.88") is yandex
        assert geo.locate("2a02:6b8::1").country == "RU"
        assert geo.locate("::ffff:77.88.55.88").country == "RU"
        for ip in (None, "10.0.0.1", "::1", "junk", "2001:db8::1"):
            assert geo.locate(ip) is UNKNOWN
        geo.clear_cache()
        assert geo.locate("77.88.55.88") == yandex


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "header", "headers", "country", "subdivisions", "via"),
    [
        pytest.param(
            "cloudflare",
            None,
            {"cf-ipcountry": "UA", "cf-region-code": "43"},
            "UA",
            ("UA-43",),
            "cf-ipcountry, cf-region-code",
            id="cloudflare",
        ),
        pytest.param(
            "cloudflare",
            None,
            {"cf-ipcountry": "ru"},
            "RU",
            (),
            "cf-ipcountry, cf-region-code",
            id="cloudflare-lower-case",
        ),
        pytest.param("cloudflare", None, {"cf-ipcountry": "XX"}, None, (), None, id="cf-xx"),
        pytest.param("cloudflare", None, {"cf-ipcountry": "T1"}, None, (), None, id="cf-tor"),
        pytest.param("cloudflare", None, {"cf-ipcountry": ""}, None, (), None, id="cf-empty"),
        pytest.param("cloudflare", None, {"cf-ipcountry": "U"}, None, (), None, id="cf-short"),
        pytest.param("cloudflare", None, {"cf-ipcountry": "ÜA"}, None, (), None, id="cf-ascii"),
        pytest.param("cloudflare", None, {}, None, (), None, id="cf-absent"),
        pytest.param(
            "cloudflare",
            None,
            {"cf-ipcountry": "UA", "cf-region-code": "<script>"},
            "UA",
            (),
            "cf-ipcountry, cf-region-code",
            id="cf-bad-region-dropped",
        ),
        pytest.param(
            "cloudfront",
            None,
            {"cloudfront-viewer-country": "US", "cloudfront-viewer-country-region": "WA"},
            "US",
            ("US-WA",),
            "cloudfront-viewer-country, cloudfront-viewer-country-region",
            id="cloudfront",
        ),
        pytest.param(
            "akamai",
            None,
            {"x-akamai-edgescape": "georegion=246,country_code=US,region_code=CA,city=SANJOSE"},
            "US",
            ("US-CA",),
            "x-akamai-edgescape",
            id="akamai",
        ),
        pytest.param(
            "akamai",
            None,
            {"x-akamai-edgescape": "georegion=246"},
            None,
            (),
            None,
            id="akamai-no-country",
        ),
        pytest.param("fastly", "x-geo", {"x-geo": "UA,43"}, "UA", ("UA-43",), "x-geo", id="fastly"),
        pytest.param(
            "fastly",
            "x-geo",
            {"x-geo": "GB,NO REGION"},
            "GB",
            (),
            "x-geo",
            id="fastly-no-region",
        ),
        pytest.param("fastly", "x-geo", {"x-geo": "**"}, None, (), None, id="fastly-unknown"),
        pytest.param(
            "google",
            "x-client-geo",
            {"x-client-geo": "USCA"},
            "US",
            ("US-CA",),
            "x-client-geo",
            id="google-cldr",
        ),
        pytest.param(
            "google",
            "x-client-geo",
            {"x-client-geo": "UA,UA43"},
            "UA",
            ("UA-43",),
            "x-client-geo",
            id="google-pair",
        ),
        pytest.param(
            "google",
            "x-client-geo",
            {"x-client-geo": "DE"},
            "DE",
            (),
            "x-client-geo",
            id="google-country",
        ),
        pytest.param(
            "generic",
            "x-country",
            {"x-country": "ua, UA-43"},
            "UA",
            ("UA-43",),
            "x-country",
            id="generic",
        ),
        pytest.param("generic", "x-country", {"x-country": "a" * 5000}, None, (), None, id="huge"),
    ],
)
def test_header_geolocator(
    provider: str,
    header: str | None,
    headers: dict[str, str],
    country: str | None,
    subdivisions: tuple[str, ...],
    via: str | None,
) -> None:
    geo = HeaderGeolocator(provider, header)
    location = geo.locate("203.0.113.1", headers, trusted=True)
    assert (location.country, location.subdivisions, location.via_header) == (
        country,
        subdivisions,
        via,
    )
    if country is not None:
        assert location.source == f"header:{provider}"
    # The same headers from an untrusted peer are the client's word: ignored.
    assert geo.locate("203.0.113.1", headers, trusted=False) is UNKNOWN


def test_header_geolocator_region_header_and_options() -> None:
    geo = HeaderGeolocator("generic", "X-Country", region_header="X-Region")
    assert geo.headers == ("x-country", "x-region")
    location = geo.locate(None, {"x-country": "UA", "x-region": "43"}, trusted=True)
    assert location.subdivisions == ("UA-43",)
    assert location.via_header == "x-country, x-region"
    assert location.is_in_european_union is False
    assert geo.locate(None, None, trusted=True) is UNKNOWN
    with pytest.raises(ConfigurationError, match="header=NAME"):
        HeaderGeolocator("fastly")
    with pytest.raises(ConfigurationError, match="unknown geolocation header provider"):
        HeaderGeolocator("maxmind")


# --- composition and test helpers -------------------------------------------------------------


def test_chain_first_known_answer_wins(city_db: Path) -> None:
    with ChainGeolocator(
        [HeaderGeolocator("cloudflare"), MaxMindGeolocator(city_db), EmbeddedGeolocator()]
    ) as chain:
        headers = {"cf-ipcountry": "DE"}
        assert chain.locate("198.51.99.7", headers, trusted=True).source == "header:cloudflare"
        assert chain.locate("198.51.99.7", headers).source == "maxmind:GeoIP2-City"
        assert chain.locate("95.108.128.1").source == "embedded"  # outside the built database
        assert chain.locate("10.0.0.1") is UNKNOWN
    with pytest.raises(ConfigurationError):
        ChainGeolocator([])


def test_chain_closes_every_geolocator() -> None:
    class Failing(FixedGeolocator):
        def close(self) -> None:
            raise OSError("cannot close")

    first, last = Failing(UNKNOWN), FixedGeolocator(UNKNOWN)
    with pytest.raises(OSError, match="cannot close"):
        ChainGeolocator([first, last]).close()
    assert last.closed


def test_fixed_geolocator() -> None:
    crimea = Location.of("UA", "43")
    geo = FixedGeolocator({"192.0.2.1": crimea}, default=Location.of("RU"))
    assert geo.locate("192.0.2.1") is crimea
    assert geo.locate("192.0.2.9").country == "RU"
    assert geo.locate(None, trusted=True).country == "RU"
    assert geo.calls == [("192.0.2.1", False), ("192.0.2.9", False), (None, True)]
    assert isinstance(geo, Geolocator)


@pytest.mark.parametrize(
    "database",
    ["GeoIP2-City-Test", "GeoIP2-Country-Test", "GeoIP2-Enterprise-Test", "GeoLite2-City-Test"],
)
def test_lookups_agree_with_geoip2_on_every_network(geoip_test_data: Path, database: str) -> None:
    """Every network of MaxMind's test databases, first and last address, against what
    ``geoip2``'s own reader says of the same address."""
    import ipaddress

    import geoip2.database
    import maxminddb

    path = geoip_test_data / f"{database}.mmdb"
    addresses: list[str] = []
    with maxminddb.open_database(str(path)) as reader:
        for network, _ in reader:
            for host in (network.network_address, network.broadcast_address):
                if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
                    continue  # reported as the IPv4 address, which the IPv4 network covers
                addresses.append(str(host))
    assert len(addresses) > 50
    ours = MaxMindGeolocator(path, cache_size=0)
    theirs = geoip2.database.Reader(str(path))
    lookup = {"Country": theirs.country, "Enterprise": theirs.enterprise}.get(
        database.split("-")[1], theirs.city
    )
    with ours, theirs:
        found = 0
        for ip in addresses:
            got = ours.locate(ip)
            if ipaddress.ip_address(ip).is_global is False:
                assert got.country is None, ip
                continue
            try:
                record = lookup(ip)
            except geoip2.errors.AddressNotFoundError:
                assert got.country is None, ip
                continue
            country = record.country.iso_code
            assert got.country == country, ip
            if country is not None and hasattr(record, "subdivisions"):
                expected = tuple(
                    f"{country}-{s.iso_code}"
                    for s in record.subdivisions
                    if s.iso_code and is_iso_subdivision(f"{country}-{s.iso_code}")
                )  # a code ISO does not assign (CN-22, now CN-JL) is an unknown subdivision
                assert got.subdivisions == expected, ip
            found += country is not None
    assert found > 25


# --- files changed under a running process ----------------------------------------------------

_TRUNCATE_SCRIPT = """
import collections, json, logging, os, resource, sys, threading, time
from compliance.geo import MaxMindGeolocator

resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
path, replacement, private = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
geo = MaxMindGeolocator(path, check_interval=0, cache_size=0, private_copy=private)
ips = [f"77.88.{a}.{b}" for a in range(0, 64) for b in range(1, 255, 17)]
ips += [f"5.6.{a}.{b}" for a in range(0, 256, 3) for b in range(1, 255, 31)]
stop = threading.Event()
answers = collections.Counter()

def work():
    while not stop.is_set():
        for ip in ips:
            answers[geo.locate(ip).country] += 1

threads = [threading.Thread(target=work) for _ in range(3)]
for thread in threads:
    thread.start()
time.sleep(0.2)
os.truncate(path, 0)  # what `: > file` does, under lookups in flight
time.sleep(0.3)
new = open(replacement, "rb").read()
with open(path, "r+b") as handle:  # what `cp new file` does: rewrite in place
    handle.write(new[: len(new) // 2])
    handle.flush()
    time.sleep(0.3)
    handle.write(new[len(new) // 2 :])
time.sleep(0.3)
stop.set()
for thread in threads:
    thread.join()
print(json.dumps({"answers": answers, "now": geo.locate("77.88.1.1").country}))
"""


def _many_networks(country: str) -> dict[str, dict[str, Any]]:
    # Enough distinct records that lookups touch many pages of the file.
    return {
        **{f"77.88.{n}.0/24": _record(country, f"{n % 9 + 1}") for n in range(64)},
        **{f"5.6.{n}.0/24": _record("DE", "BY", eu=True) for n in range(256)},
    }


@pytest.mark.parametrize(
    "private_copy",
    [
        pytest.param(True, id="private-copy-survives"),
        pytest.param(
            False,
            id="mapped-file-dies",
            marks=pytest.mark.skipif(
                not os.path.exists("/proc/self/maps"), reason="SIGBUS on truncation: Linux"
            ),
        ),
    ],
)
def test_database_truncated_in_place_under_lookups(tmp_path: Path, private_copy: bool) -> None:
    import signal
    import subprocess
    import sys

    live = build_mmdb(tmp_path / "GeoIP2-City.mmdb", _many_networks("RU"))
    replacement = build_mmdb(tmp_path / "next.mmdb", _many_networks("UA"))
    result = subprocess.run(
        [sys.executable, "-c", _TRUNCATE_SCRIPT, str(live), str(replacement), str(+private_copy)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if not private_copy:
        # The danger the private copy exists for: a memory-mapped file cut short under a
        # running lookup kills the process.
        assert result.returncode == -signal.SIGBUS, result.stderr[-2000:]
        return
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    # Old data (or the new file once complete), never a crash or a wrong-file mix.
    assert set(found["answers"]) <= {"RU", "UA", "DE"}
    assert found["answers"]["RU"] > 0
    assert found["now"] == "UA"
    log = result.stderr
    assert "is empty (0 bytes): truncated, or being rewritten in place" in log
    assert "keeping the database loaded before" in log
    assert "renaming it into place" in log
    assert f"reloaded {live}" in log


def test_the_private_copy_leaves_no_file_behind(
    city_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    with MaxMindGeolocator(city_db) as geo:
        assert list(scratch.iterdir()) == []
        # The copy is what is read: the original can go away entirely.
        city_db.unlink()
        assert geo.locate("198.51.99.7").subdivisions == ("UA-43",)
    assert list(scratch.iterdir()) == []


def test_a_file_rewritten_in_place_with_the_same_size_is_noticed(city_db: Path) -> None:
    with MaxMindGeolocator(city_db, check_interval=0) as geo:
        assert geo.locate("198.51.99.7").country == "UA"
        fresh = build_mmdb(city_db.with_suffix(".new"), {**NETWORKS, UA_CRIMEA: _record("RU")})
        data = fresh.read_bytes()
        before = city_db.stat()
        with city_db.open("r+b") as handle:  # in place: same inode
            handle.truncate(0)
            handle.write(data)
        os.utime(city_db, ns=(before.st_mtime_ns + 10**6, before.st_mtime_ns + 10**6))
        assert city_db.stat().st_ino == before.st_ino
        assert geo.locate("198.51.99.7").country == "RU"


def test_a_file_changing_while_copied_is_tried_again(
    city_db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from compliance.geo import maxmind

    with MaxMindGeolocator(city_db, check_interval=0) as geo:
        real_copy = maxmind._copy_exactly
        calls = 0

        def short_copy(source: int, target: int, size: int) -> int:
            nonlocal calls
            calls += 1
            if calls == 1:  # as if the writer had cut the file while we read it
                return real_copy(source, target, size // 2)
            return real_copy(source, target, size)

        monkeypatch.setattr(maxmind, "_copy_exactly", short_copy)
        _replace(city_db, {**NETWORKS, UA_CRIMEA: _record("RU")})
        with caplog.at_level(logging.ERROR, logger="compliance.geo"):
            assert geo.locate("198.51.99.7").country == "UA"  # old data, logged
        assert "changed while being read" in caplog.text
        # Nothing changed on disk since, yet the next check tries again and succeeds.
        assert geo.locate("198.51.99.7").country == "RU"
        assert calls == 2


def test_corrupt_data_errors_name_the_cause_not_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.geo import maxmind

    networks = {**NETWORKS, "5.6.0.0/16": {"country": {"iso_code": "DE", "names": {"en": "ZZBAD"}}}}
    path = build_mmdb(tmp_path / "City.mmdb", networks)
    data = bytearray(path.read_bytes())
    at = data.index(b"ZZBAD")
    data[at - 1] = 0x05  # the string's control byte becomes an invalid extended type
    path.write_bytes(bytes(data))
    # A corruption the open-time probe of the first records does not reach.
    monkeypatch.setattr(maxmind._Database, "_PROBE_RECORDS", 0)
    with MaxMindGeolocator(path) as geo:
        assert geo.locate("77.88.55.88").country == "RU"
        failures = []
        for ip in ("5.6.7.8", "5.6.200.9"):
            with pytest.raises(GeoDatabaseError) as caught:
                geo.locate(ip)
            failures.append(caught.value)
    first, second = failures
    assert first.address == "5.6.7.8"
    assert second.address == "5.6.200.9"
    assert "5.6.7.8" not in str(first)
    assert str(first) == str(second)  # one cause, one log key
    assert first.reason.startswith("corrupt data")
    assert first.path == str(path)


def _not_utf8(path: Path, marker: bytes) -> Path:
    """``path`` with the string ``marker`` (in some record) made invalid UTF-8, same length."""
    data = bytearray(path.read_bytes())
    at = data.index(marker)
    data[at : at + 4] = b"\xff\xfe\xff\xfe"
    path.write_bytes(bytes(data))
    return path


def test_a_record_that_is_not_utf8_is_corrupt_data_not_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.geo import maxmind

    # maxminddb raises UnicodeDecodeError, a ValueError, as a closed reader does: a corrupt
    # record used to read as "location unknown", with nothing logged.
    networks = {**NETWORKS, "5.6.0.0/16": _record("DE") | {"city": {"names": {"en": "ZZBAD"}}}}
    path = _not_utf8(build_mmdb(tmp_path / "City.mmdb", networks), b"ZZBAD")
    monkeypatch.setattr(maxmind._Database, "_PROBE_RECORDS", 0)  # found at lookup time
    with MaxMindGeolocator(path) as geo:
        assert geo.locate("77.88.55.88").country == "RU"
        with pytest.raises(GeoDatabaseError) as caught:
            geo.locate("5.6.7.8")
        state = geo._state
    assert caught.value.path == str(path)
    assert caught.value.address == "5.6.7.8"
    assert caught.value.reason.startswith("corrupt data (a string that is not UTF-8")
    assert "5.6.7.8" not in str(caught.value)
    # A reader closed under a lookup (close() racing it) still reads as unknown.
    assert state.lookup("77.88.55.89") is UNKNOWN


def test_an_anonymous_ip_record_that_is_not_utf8_is_corrupt_data(tmp_path: Path) -> None:
    anonymous = {"is_anonymous": True, "is_public_proxy": True, "note": "ZZBAD"}
    path = build_mmdb(
        tmp_path / "Anonymous.mmdb",
        {**{f"1.0.{i}.0/24": {"is_anonymous": False} for i in range(80)}, "5.6.0.0/16": anonymous},
        database_type="GeoIP2-Anonymous-IP",
    )
    _not_utf8(path, b"ZZBAD")
    with MaxMindGeolocator(
        build_mmdb(tmp_path / "City.mmdb", NETWORKS), anonymous_ip_db=path
    ) as geo:
        assert geo.locate("77.88.55.88").is_anonymous is False
        with pytest.raises(GeoDatabaseError) as caught:
            geo.locate("5.6.7.8")
    assert caught.value.path == str(path)
    assert caught.value.reason.startswith("corrupt data (a string that is not UTF-8")


def test_an_ipv4_only_anonymous_ip_database_says_nothing_of_ipv6(tmp_path: Path) -> None:
    anonymous = build_mmdb(
        tmp_path / "Anonymous.mmdb",
        {"77.88.0.0/18": {"is_anonymous": True, "is_tor_exit_node": True}},
        database_type="GeoIP2-Anonymous-IP",
        ip_version=4,
    )
    city = build_mmdb(tmp_path / "City.mmdb", NETWORKS)
    with MaxMindGeolocator(city, anonymous_ip_db=anonymous) as geo:
        assert geo.locate("77.88.55.88").anonymity == Anonymity(tor_exit_node=True)
        ipv6 = geo.locate("2a02:6b8::1")
    assert (ipv6.country, ipv6.is_anonymous, ipv6.anonymity) == ("RU", False, Anonymity())


def test_a_database_not_utf8_in_its_first_records_is_refused_and_reload_keeps_the_old(
    city_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    networks = {UA_CRIMEA: _record("UA", "43") | {"city": {"names": {"en": "ZZBAD"}}}}
    broken = _not_utf8(build_mmdb(tmp_path / "broken.mmdb", networks), b"ZZBAD")
    # At start-up: a GeoDatabaseError naming the file, not a UnicodeDecodeError.
    with pytest.raises(GeoDatabaseError) as caught:
        MaxMindGeolocator(broken)
    assert caught.value.path == str(broken)
    assert caught.value.reason.startswith("corrupt database (a string that is not UTF-8")
    # Renamed into place under a running geolocator: logged, the old data keeps serving.
    with MaxMindGeolocator(city_db, check_interval=3600) as geo:
        assert geo.locate("198.51.99.7").subdivisions == ("UA-43",)
        os.replace(broken, city_db)
        with caplog.at_level(logging.ERROR, logger="compliance.geo"):
            assert geo.reload(force=True) is False
        assert geo.locate("77.88.55.88").country == "RU"
    (record,) = [r for r in caplog.records if r.name == "compliance.geo"]
    assert record.levelno == logging.ERROR
    assert f"{city_db}: corrupt database (a string that is not UTF-8" in record.getMessage()
    assert "keeping the database loaded before" in record.getMessage()


def test_no_room_for_the_private_copy_says_so(
    city_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-folder"
    monkeypatch.setattr("tempfile.tempdir", str(missing))
    with pytest.raises(GeoDatabaseError) as caught:
        MaxMindGeolocator(city_db)
    assert caught.value.path == str(city_db)
    assert f"cannot make its private copy in {missing}" in caught.value.reason
    assert "private_copy=False" in caught.value.reason
    with MaxMindGeolocator(city_db, private_copy=False) as geo:
        assert geo.locate("198.51.99.7").subdivisions == ("UA-43",)


def test_an_open_geoip2_reader_is_accepted(geoip_test_data: Path) -> None:
    import geoip2.database

    with geoip2.database.Reader(str(geoip_test_data / "GeoIP2-City-Test.mmdb")) as reader:
        geo = MaxMindGeolocator(reader, check_interval=0)
        london = geo.locate("81.2.69.142")
        assert (london.country, london.subdivisions) == ("GB", ("GB-ENG",))
        assert london.source == "maxmind:GeoIP2-City"
        assert geo.database_type == "GeoIP2-City"
        assert geo.reload() is False  # its owner reopens it, not us
        geo.close()
        # Closing the geolocator leaves the caller's reader open.
        assert reader.city("81.2.69.142").country.iso_code == "GB"
    with pytest.raises(ConfigurationError, match=r"geoip2\.database\.Reader"):
        MaxMindGeolocator(42)  # type: ignore[arg-type]
    anonymous = geoip_test_data / "GeoIP2-Anonymous-IP-Test.mmdb"
    with (
        geoip2.database.Reader(str(anonymous)) as anon,
        pytest.raises(GeoDatabaseError, match="not a location one"),
    ):
        MaxMindGeolocator(anon)


# --- spellings of one address, and the engine's repeat reader ---------------------------------

_RULES_BY_COUNTRY = """
version: 1
rules:
  - id: ru
    title: Russia
    jurisdictions: [RU]
    notice: {text: {en: ru}}
  - id: de
    title: Germany
    jurisdictions: [DE]
    notice: {text: {en: de}}
"""

# Every spelling of 2a02:6b8::1 (RU) and of 77.88.55.88 (RU) that names the same address.
_SPELLINGS_V6 = [
    "2a02:6b8::1",
    "2A02:6B8::1",
    "2a02:06b8:0:0:0:0:0:1",
    "2a02:6b8:0:0::1",
    "2a02:6b8:0000::0001",
]
_SPELLINGS_MAPPED = ["77.88.55.88", "::ffff:77.88.55.88", "::FFFF:4d58:3758", "0:0::ffff:4d58:3758"]
# Not addresses, or not public: unknown, as ever.
_NOT_ADDRESSES = [
    "2a02:6b8::1::2",
    "2a02:6b8:0:0:0:0:0:0:1",
    "gggg::1",
    "[2a02:6b8::1]",
    " 2a02:6b8::1",
    "2a02:6b8::/32",
    "077.088.055.088",
    "::",
    "::ffff:10.0.0.1",
    "2a02:6b8::1" + "0" * 100,
]


def _engine_on(city_db: Path, rules: Path, **options: Any) -> Any:
    from compliance.engine import Engine

    rules.write_text(_RULES_BY_COUNTRY, encoding="utf-8")
    return Engine.from_paths([rules], geolocator=MaxMindGeolocator(city_db, **options))


def test_every_spelling_of_an_address_decides_alike(city_db: Path, tmp_path: Path) -> None:
    """Upper case, leading zeros, uncompressed, IPv4-mapped: the same location object, the
    same decision, in every form of decide(); and the engine's repeat-reader cache holds one
    entry for them all (it keys on the location, not on the text)."""
    from compliance.decision import Request

    engine = _engine_on(city_db, tmp_path / "rules.yaml")
    request = Request.of(host="a.org", path="/x")
    for spellings in (_SPELLINGS_V6, _SPELLINGS_MAPPED):
        first = engine.locate(spellings[0])
        assert first.country == "RU"
        for _ in range(2):
            for ip in spellings:
                assert engine.locate(ip) is first, ip
                assert engine.decide(location=engine.locate(ip), request=request).applied == ("ru",)
                assert engine.decide(ip=ip, url="https://a.org/x").applied == ("ru",)
                assert engine.decide(ip=ip, host="a.org", path="/x").applied == ("ru",)
    for ip in _NOT_ADDRESSES:
        assert engine.locate(ip) is UNKNOWN, ip
        assert engine.decide(ip=ip, url="https://a.org/x").applied == ()
        assert engine.decide(location=engine.locate(ip), request=request).applied == ()
    fast = engine._state.fast
    assert len(fast.mapping[request]) == 3  # the IPv6 reader, the IPv4 one, UNKNOWN
    engine.close()


def test_a_flood_of_spellings_stays_bounded(city_db: Path, tmp_path: Path) -> None:
    """Thousands of spellings of addresses in one network: the geolocator's cache by text
    keeps its bound, every spelling that misses it is looked up again (rightly), and the
    engine's cache does not grow at all."""
    from compliance.decision import Request

    engine = _engine_on(city_db, tmp_path / "rules.yaml", cache_size=64)
    request = Request.of(host="a.org", path="/x")
    geo = engine.geolocator
    assert isinstance(geo, MaxMindGeolocator)
    for n in range(3_000):
        groups = [f"{n % 16:0{1 + n % 4}x}", "0" * (n % 5), "6b8"]
        ip = f"2a02:{groups[2]}:{groups[1] or '0'}::{groups[0]}:{n:x}"
        if n % 3 == 0:
            ip = ip.upper()
        assert engine.decide(location=engine.locate(ip), request=request).applied == ("ru",), ip
        assert engine.decide(ip=ip, url="https://a.org/x").applied == ("ru",), ip
        assert len(geo._state.cache) <= 64
    assert len(geo._state.networks) == 1
    assert len(engine._state.fast) == 2  # one reader, two requests (a Request, the fields)
    engine.close()


def test_a_swapped_database_changes_the_repeat_readers_decision(
    city_db: Path, tmp_path: Path
) -> None:
    """The same address, the same Request object, decided again after the database is
    swapped: the new answer, in every spelling, although the old decisions are still cached
    (their locations are other objects, kept alive by the cache, so no id is reused)."""
    import gc

    from compliance.decision import Request

    engine = _engine_on(city_db, tmp_path / "rules.yaml", check_interval=3600)
    request = Request.of(host="a.org", path="/x")
    geo = engine.geolocator
    assert isinstance(geo, MaxMindGeolocator)
    for swap, expected in enumerate([("ru",), ("de",), ("ru",), ("de",)]):
        for _ in range(2):
            for ip in [*_SPELLINGS_V6, *_SPELLINGS_MAPPED]:
                assert engine.decide(location=engine.locate(ip), request=request).applied == (
                    expected
                ), (swap, ip)
                assert engine.decide(ip=ip, url="https://a.org/x").applied == expected
        country = "DE" if expected == ("ru",) else "RU"
        _replace(
            city_db,
            {**NETWORKS, "77.88.0.0/18": _record(country), "2a02:6b8::/32": _record(country)},
        )
        assert geo.reload() is True
        gc.collect()  # free what can be freed: a reused id must not find an old decision
    engine.close()


def test_a_databases_subdivisions_are_read_as_a_cdns_are(tmp_path: Path) -> None:
    """A converted database (DB-IP's, say) that writes ``eng`` or ``UA-43`` for a
    subdivision: read as a CDN header's region is (found in review). Before, the code was
    glued to the country as written and dropped as no ISO 3166-2 code, so the reader's
    subdivision was unknown."""
    path = build_mmdb(
        tmp_path / "Converted.mmdb",
        {
            "77.88.2.0/24": {"country": {"iso_code": "GB"}, "subdivisions": [{"iso_code": "eng"}]},
            "77.88.3.0/24": {
                "country": {"iso_code": "UA"},
                "subdivisions": [{"iso_code": " UA-43"}],
            },
        },
        database_type="DBIP-City-Lite",
    )
    with MaxMindGeolocator(path) as geo:
        assert geo.locate("77.88.2.5").subdivisions == ("GB-ENG",)
        assert geo.locate("77.88.3.5").subdivisions == ("UA-43",)

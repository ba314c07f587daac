"""Client address resolution: one table of peers, headers and trusted proxies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.client import (
    MAX_FORWARDED_CHARS,
    MAX_HOPS,
    ClientAddress,
    TrustedProxies,
    normalize_ip,
    resolve_client,
)
from compliance.errors import ConfigurationError

NONE = TrustedProxies()
LAN = TrustedProxies(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])
LAN_FORWARDED = TrustedProxies(["10.0.0.0/8", "fd00::/8"], forwarded_header="forwarded")
LAN_REAL_IP = TrustedProxies(["10.0.0.0/8"], forwarded_header="x-real-ip")
ONE_HOP = TrustedProxies(hops=1)
ONE_HOP_FORWARDED = TrustedProxies(hops=1, forwarded_header="forwarded")
TWO_HOPS = TrustedProxies(hops=2)


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "ip", "via_proxy"),
    [
        # No proxies configured: forwarding headers are the client's word and ignored.
        pytest.param("203.0.113.9", {}, NONE, "203.0.113.9", False, id="direct"),
        pytest.param(
            "203.0.113.9",
            {"x-forwarded-for": "1.2.3.4"},
            NONE,
            "203.0.113.9",
            False,
            id="no-proxies-xff-ignored",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=1.2.3.4"},
            NONE,
            "10.0.0.1",
            False,
            id="no-proxies-forwarded-ignored",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-real-ip": "1.2.3.4"},
            NONE,
            "10.0.0.1",
            False,
            id="no-proxies-real-ip-ignored",
        ),
        # Peer not trusted: a client pretending to be behind a proxy.
        pytest.param(
            "198.51.100.7",
            {"x-forwarded-for": "10.0.0.5, 1.2.3.4"},
            LAN,
            "198.51.100.7",
            False,
            id="spoof-untrusted-peer-xff",
        ),
        pytest.param(
            "198.51.100.7",
            {"forwarded": "for=1.2.3.4"},
            LAN,
            "198.51.100.7",
            False,
            id="spoof-untrusted-peer-forwarded",
        ),
        # Trusted peer: rightmost untrusted hop.
        pytest.param(
            "10.0.0.1", {"x-forwarded-for": "1.2.3.4"}, LAN, "1.2.3.4", True, id="xff-one-hop"
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1.2.3.4, 10.0.0.2, 10.0.0.3"},
            LAN,
            "1.2.3.4",
            True,
            id="xff-chain-of-proxies",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "6.6.6.6, 1.2.3.4"},
            LAN,
            "1.2.3.4",
            True,
            id="spoof-xff-prepended-by-client",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.2"},
            LAN,
            "1.2.3.4",
            True,
            id="spoof-xff-prepended-two-proxies",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "10.0.0.9, 10.0.0.8"},
            LAN,
            "10.0.0.9",
            True,
            id="xff-all-trusted-leftmost",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "6.6.6.6, garbage, 10.0.0.2"},
            LAN,
            None,
            True,
            id="xff-garbage-hop-is-unknown",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1.2.3.4, 5.6.7.8,"},
            LAN,
            None,
            True,
            id="xff-trailing-comma-is-unknown",
        ),
        pytest.param("10.0.0.1", {"x-forwarded-for": "unknown"}, LAN, None, True, id="xff-unknown"),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1.2.3.4:5678"},
            LAN,
            "1.2.3.4",
            True,
            id="xff-ipv4-with-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "2001:DB8::1"},
            LAN,
            "2001:db8::1",
            True,
            id="xff-ipv6-normalized",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "[2001:db8::1]:443"},
            LAN,
            "2001:db8::1",
            True,
            id="xff-ipv6-brackets-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "::ffff:1.2.3.4"},
            LAN,
            "1.2.3.4",
            True,
            id="xff-ipv4-mapped",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "fe80::1%eth0"},
            LAN,
            "fe80::1",
            True,
            id="xff-zone-id-stripped",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "[2001:db8::1"},
            LAN,
            None,
            True,
            id="xff-unclosed-bracket",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1.2.3.4:http"},
            LAN,
            None,
            True,
            id="xff-bad-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1.2.3.4, fd00::5"},
            LAN,
            "1.2.3.4",
            True,
            id="xff-trusted-ipv6-proxy-skipped",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": ""},
            LAN,
            "10.0.0.1",
            True,
            id="xff-empty-means-absent",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1.2.3.4, " * 100_000 + "5.6.7.8"},
            LAN,
            "5.6.7.8",
            True,
            id="xff-huge-header",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "10.0.0.2, " * (MAX_HOPS + 5) + "10.0.0.3"},
            LAN,
            None,
            True,
            id="xff-too-many-trusted-hops",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "1" * 100_000},
            LAN,
            None,
            True,
            id="xff-one-huge-hop",
        ),
        # RFC 7239 Forwarded.
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=192.0.2.60;proto=http;by=203.0.113.43"},
            LAN_FORWARDED,
            "192.0.2.60",
            True,
            id="forwarded-params",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'For="[2001:db8:cafe::17]:4711"'},
            LAN_FORWARDED,
            "2001:db8:cafe::17",
            True,
            id="forwarded-quoted-ipv6-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8:cafe::17]"'},
            LAN_FORWARDED,
            "2001:db8:cafe::17",
            True,
            id="forwarded-quoted-ipv6",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="192.0.2.43:47011"'},
            LAN_FORWARDED,
            "192.0.2.43",
            True,
            id="forwarded-quoted-ipv4-port",
        ),
        # RFC 7239 obfuscated ports ("_" then letters, digits, ".", "_", "-") are ports.
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="192.0.2.43:_p1"'},
            LAN_FORWARDED,
            "192.0.2.43",
            True,
            id="forwarded-ipv4-obfuscated-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8:cafe::17]:_x.y_Z-9", for=10.0.0.2'},
            LAN_FORWARDED,
            "2001:db8:cafe::17",
            True,
            id="forwarded-ipv6-obfuscated-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8:cafe::17]:_p/1"'},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-bad-obfuscated-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="2001:db8:cafe::17:_p1"'},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-unbracketed-ipv6-obfuscated-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="_hidden:_p1"'},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-obfuscated-node-and-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-forwarded-for": "192.0.2.43:_p1"},
            LAN,
            None,
            True,
            id="xff-obfuscated-port-is-not-rfc-7239",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=6.6.6.6, for=192.0.2.43, for=10.0.0.2"},
            LAN_FORWARDED,
            "192.0.2.43",
            True,
            id="forwarded-chain",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=_hidden"},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-obfuscated",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=unknown, for=10.0.0.2"},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-unknown",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=6.6.6.6, proto=https"},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-hop-without-for",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8::1]:4711'},
            LAN_FORWARDED,
            None,
            True,
            id="forwarded-unbalanced-quote",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=1.2.3.4", "x-forwarded-for": "5.6.7.8"},
            LAN_FORWARDED,
            "1.2.3.4",
            True,
            id="forwarded-configured-xff-ignored",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=6.6.6.6", "x-forwarded-for": "5.6.7.8"},
            LAN,
            "5.6.7.8",
            True,
            id="spoof-forwarded-not-configured",
        ),
        # X-Real-IP: a single value from the nearest proxy.
        pytest.param(
            "10.0.0.1", {"x-real-ip": "1.2.3.4"}, LAN_REAL_IP, "1.2.3.4", True, id="real-ip"
        ),
        pytest.param(
            "10.0.0.1",
            {"x-real-ip": "1.2.3.4", "x-forwarded-for": "5.6.7.8"},
            LAN,
            "5.6.7.8",
            True,
            id="xff-configured-real-ip-ignored",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-real-ip": "1.2.3.4", "x-forwarded-for": "5.6.7.8"},
            LAN_REAL_IP,
            "1.2.3.4",
            True,
            id="real-ip-configured-xff-ignored",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-real-ip": "1.2.3.4, 5.6.7.8"},
            LAN_REAL_IP,
            None,
            True,
            id="real-ip-list-is-garbage",
        ),
        # Trusted peer, no forwarding header: the proxy itself is the client.
        pytest.param("10.0.0.1", {}, LAN, "10.0.0.1", True, id="trusted-peer-no-header"),
        pytest.param("127.0.0.1", {}, LAN, "127.0.0.1", True, id="trusted-single-address"),
        pytest.param(
            "::ffff:10.0.0.1",
            {"x-forwarded-for": "1.2.3.4"},
            LAN,
            "1.2.3.4",
            True,
            id="mapped-peer-trusted",
        ),
        pytest.param(
            "fd00::1",
            {"x-forwarded-for": "2001:db8::2"},
            LAN,
            "2001:db8::2",
            True,
            id="ipv6-peer-trusted",
        ),
        # Malformed or missing peers.
        pytest.param(None, {"x-forwarded-for": "1.2.3.4"}, LAN, None, False, id="unix-socket"),
        pytest.param("not an ip", {}, LAN, None, False, id="garbage-peer"),
        pytest.param("[::1]:8000", {}, NONE, "::1", False, id="peer-with-port"),
        # ProxyFix-style hop counting.
        pytest.param(
            "172.17.0.1",
            {"x-forwarded-for": "6.6.6.6, 1.2.3.4"},
            ONE_HOP,
            "1.2.3.4",
            True,
            id="hops-1",
        ),
        pytest.param(
            "172.17.0.1",
            {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 172.18.0.1"},
            TWO_HOPS,
            "1.2.3.4",
            True,
            id="hops-2",
        ),
        pytest.param(
            "172.17.0.1",
            {"x-forwarded-for": "1.2.3.4"},
            TWO_HOPS,
            "172.17.0.1",
            True,
            id="hops-too-few-values",
        ),
        pytest.param(
            None,
            {"forwarded": 'for="[2001:db8::5]"'},
            ONE_HOP_FORWARDED,
            "2001:db8::5",
            True,
            id="hops-unix-socket-forwarded",
        ),
        pytest.param(
            "172.17.0.1",
            {"x-forwarded-for": "1.2.3.4, junk"},
            ONE_HOP,
            None,
            True,
            id="hops-garbage",
        ),
    ],
)
def test_resolve_client(
    peer: str | None,
    headers: dict[str, str],
    trusted: TrustedProxies,
    ip: str | None,
    via_proxy: bool,
) -> None:
    assert resolve_client(peer, headers, trusted) == ClientAddress(ip, via_proxy, peer)


@pytest.mark.parametrize(
    "entry",
    ["", "10.0.0.0/33", "10.0.0.256", "example.org", "fd00::/129", "1.2.3.4/8/8", "*"],
)
def test_malformed_trusted_proxy_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="trusted proxy"):
        TrustedProxies([entry])


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="hops"):
        TrustedProxies(hops=-1)
    with pytest.raises(ConfigurationError, match="not both"):
        TrustedProxies(["10.0.0.0/8"], hops=1)
    with pytest.raises(ConfigurationError, match="forwarded_header must be one of"):
        TrustedProxies(["10.0.0.0/8"], forwarded_header="x-client-ip")
    with pytest.raises(ConfigurationError, match="forwarded_header must be one of"):
        TrustedProxies(["10.0.0.0/8"], forwarded_header=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="forwarded_header must be one of"):
        TrustedProxies(["10.0.0.0/8"], headers=["x-client-ip"])


def test_more_hops_than_are_read_is_a_configuration_error() -> None:
    """Only the last MAX_HOPS hops of a header are parsed: with more proxies counted in
    front, every request fell back to the peer, the nearest proxy, and every reader was
    located there (or nowhere) without a word."""
    hops = ", ".join(f"77.88.55.{n}" for n in range(MAX_HOPS + 8))
    found = resolve_client("10.0.0.1", {"x-forwarded-for": hops}, TrustedProxies(hops=MAX_HOPS))
    assert found.ip == "77.88.55.8"
    with pytest.raises(ConfigurationError, match=f"hops must be at most {MAX_HOPS}"):
        TrustedProxies(hops=MAX_HOPS + 1)


def test_forwarded_header_is_normalized_and_shown() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"], forwarded_header=" Forwarded ")
    assert proxies.forwarded_header == "forwarded"
    assert proxies.headers == ("forwarded",)
    assert repr(proxies) == "TrustedProxies(['10.0.0.0/8'], forwarded_header='forwarded')"
    assert TrustedProxies(hops=1).forwarded_header == "x-forwarded-for"


def test_legacy_headers_argument_takes_exactly_one_header() -> None:
    # headers=[one] still works; a list of several is what let readers pick their address.
    assert TrustedProxies(["10.0.0.0/8"], headers=["X-Real-IP"]).forwarded_header == "x-real-ip"
    with pytest.raises(ConfigurationError, match="one forwarding header only"):
        TrustedProxies(["10.0.0.0/8"], headers=["forwarded", "x-forwarded-for"])
    with pytest.raises(ConfigurationError, match="not both"):
        TrustedProxies(["10.0.0.0/8"], headers=["forwarded"], forwarded_header="x-real-ip")


# A proxy that writes only X-Forwarded-For (nginx's $proxy_add_x_forwarded_for, most load
# balancers) passes the reader's own Forwarded and X-Real-IP headers through untouched.
NGINX = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
DEBUG_NETWORKS = TrustedProxies(["127.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(
    ("proxies", "headers", "client"),
    [
        pytest.param(
            NGINX,
            {"forwarded": "for=81.169.145.105", "x-forwarded-for": "77.88.55.88"},
            "77.88.55.88",
            id="reader-forwarded-ipv4-ignored",
        ),
        pytest.param(
            NGINX,
            {"forwarded": 'for="[2a01:238::1]"', "x-forwarded-for": "2a02:6b8::1"},
            "2a02:6b8::1",
            id="reader-forwarded-ipv6-ignored",
        ),
        pytest.param(
            NGINX,
            {"forwarded": "for=127.0.0.1", "x-forwarded-for": "77.88.55.88"},
            "77.88.55.88",
            id="reader-forwarded-loopback-ignored",
        ),
        pytest.param(
            NGINX,
            {"forwarded": 'for="[::1]"', "x-forwarded-for": "2a02:6b8::1"},
            "2a02:6b8::1",
            id="reader-forwarded-ipv6-loopback-ignored",
        ),
        pytest.param(
            NGINX,
            {"x-real-ip": "127.0.0.1", "x-forwarded-for": "77.88.55.88"},
            "77.88.55.88",
            id="reader-real-ip-ignored",
        ),
        pytest.param(
            NGINX,
            {"forwarded": "for=127.0.0.1", "x-forwarded-for": "127.0.0.1, 77.88.55.88"},
            "77.88.55.88",
            id="reader-loopback-in-both-headers",
        ),
        pytest.param(
            NGINX,
            {"forwarded": "for=127.0.0.1"},
            "10.0.0.1",
            id="no-xff-the-proxy-is-the-client",
        ),
        pytest.param(
            LAN_FORWARDED,
            {"x-forwarded-for": "127.0.0.1", "forwarded": "for=77.88.55.88"},
            "77.88.55.88",
            id="forwarded-proxy-reader-xff-ignored",
        ),
        pytest.param(
            LAN_FORWARDED,
            {"x-forwarded-for": "::1", "forwarded": 'for="[2a02:6b8::1]:4711"'},
            "2a02:6b8::1",
            id="forwarded-proxy-reader-xff-ipv6-ignored",
        ),
        pytest.param(
            LAN_REAL_IP,
            {"forwarded": "for=127.0.0.1", "x-real-ip": "77.88.55.88"},
            "77.88.55.88",
            id="real-ip-proxy-reader-forwarded-ignored",
        ),
    ],
)
def test_a_reader_cannot_choose_their_address_through_a_header_the_proxy_does_not_write(
    proxies: TrustedProxies, headers: dict[str, str], client: str
) -> None:
    found = resolve_client("10.0.0.1", headers, proxies)
    assert found == ClientAddress(client, True, "10.0.0.1")
    # Nor unlock what loopback clients get (the debug header).
    assert not DEBUG_NETWORKS.contains(found.ip)


def test_only_the_end_of_a_huge_forwarding_header_is_read() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    huge = "6.6.6.6, " * 200_000 + "77.88.55.88"
    assert len(huge) > 100 * MAX_FORWARDED_CHARS
    assert resolve_client("10.0.0.1", {"x-forwarded-for": huge}, proxies).ip == "77.88.55.88"
    # Only proxies in the part read: the client is somewhere in the cut-off part: unknown.
    trusted_only = "10.0.0.2, " * (MAX_FORWARDED_CHARS // 10 + 10)
    assert resolve_client("10.0.0.1", {"x-forwarded-for": trusted_only}, proxies).ip is None
    forwarded = TrustedProxies(["10.0.0.0/8"], forwarded_header="forwarded")
    header = "for=6.6.6.6, " * 100_000 + 'for="[2a02:6b8::1]"'
    assert resolve_client("10.0.0.1", {"forwarded": header}, forwarded).ip == "2a02:6b8::1"


def test_trusted_proxies_from_comma_separated_text() -> None:
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8 ,::1")
    assert proxies.networks == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert proxies.contains("::1")
    assert proxies.contains("::ffff:127.0.0.1")
    assert not proxies.contains("127.0.0.2")
    assert not proxies.contains("garbage")
    assert not proxies.contains(None)
    assert bool(proxies)
    assert not TrustedProxies()
    assert TrustedProxies(hops=2)


def test_a_zone_id_in_a_trusted_network_keeps_its_prefix() -> None:
    # The zone id used to be cut off with everything after it: /64 became one address.
    proxies = TrustedProxies(["fe80::1%eth0/64", "fe80::2:1%eth1"])
    assert proxies.networks == ("fe80::/64", "fe80::2:1/128")
    assert proxies.contains("fe80::2")
    assert proxies.contains("fe80::ffff:1%eth0")
    assert not proxies.contains("fe80:0:0:1::1")


def test_mapped_trusted_range_matches_ipv4_peer() -> None:
    proxies = TrustedProxies(["::ffff:10.0.0.0/104"])
    assert proxies.networks == ("10.0.0.0/8",)
    assert proxies.contains("10.9.9.9")


def test_hops_mode_contains_nothing() -> None:
    assert not ONE_HOP.contains("10.0.0.1")
    assert repr(ONE_HOP) == "TrustedProxies(hops=1)"
    assert repr(LAN) == "TrustedProxies(['10.0.0.0/8', 'fd00::/8', '127.0.0.1/32'])"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  192.0.2.1 ", "192.0.2.1"),
        ("[::1]", "::1"),
        ("[::1]x", None),
        ("[::1]:", None),
        ("[::1]:123456", None),
        ("1.2.3.4:123456", None),
        ("::FFFF:C000:0201", "192.0.2.1"),
        ("01.2.3.4", None),
        ("", None),
    ],
)
def test_normalize_ip(value: str, expected: str | None) -> None:
    assert normalize_ip(value) == expected


def test_answers_are_remembered_within_bounds() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    first = resolve_client("10.0.0.1", {"x-forwarded-for": "203.0.113.7"}, proxies)
    again = resolve_client("10.0.0.1", {"x-forwarded-for": "203.0.113.7"}, proxies)
    assert again is first  # remembered
    # The same header from an untrusted peer is not the same question.
    spoofed = resolve_client("198.51.100.1", {"x-forwarded-for": "203.0.113.7"}, proxies)
    assert spoofed == ClientAddress("198.51.100.1", False, "198.51.100.1")
    assert resolve_client("10.0.0.1", {}, proxies) == ClientAddress("10.0.0.1", True, "10.0.0.1")
    # A flood of distinct values never holds more than the bounds.
    memo = proxies._clients
    for i in range(memo.max_entries + 10):
        ip = f"203.0.{i // 256 % 256}.{i % 256}"
        assert resolve_client("10.0.0.1", {"x-forwarded-for": ip}, proxies).ip == ip
    assert len(memo) <= memo.max_entries
    assert memo.nbytes <= memo.max_bytes
    # A long header is answered but not kept.
    long_value = ", ".join(["10.0.0.2"] * 60) + ", 203.0.113.9"
    before = list(memo)
    answer = resolve_client("10.0.0.1", {"x-forwarded-for": long_value}, proxies)
    assert answer.ip == "203.0.113.9"
    assert list(memo) == before


def test_long_distinct_peers_do_not_grow_the_trusted_memo() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    for i in range(5_000):
        assert not proxies.contains(f"{i}-" + "x" * 300)
    assert proxies._memo.nbytes <= proxies._memo.max_bytes


# --- properties -------------------------------------------------------------------------------

_HOPS = st.lists(
    st.one_of(
        st.sampled_from(["10.0.0.2", "10.9.9.9", "fd00::7"]),  # trusted proxies
        st.sampled_from(["77.88.55.88", "2a02:6b8::1", "81.169.145.105", "127.0.0.1", "::1"]),
        st.text(max_size=12),  # junk a client or a broken proxy wrote
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=300), hops=_HOPS)
def test_nothing_a_reader_prepends_changes_the_answer(prefix: str, hops: list[str]) -> None:
    """Whatever a reader writes left of the hops the proxies appended, the client address
    found is the same: the walk from the right stops before it."""
    header = ", ".join(hops)
    proxies = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
    alone = resolve_client("10.0.0.1", {"x-forwarded-for": header}, proxies)
    if alone.ip is not None and proxies.contains(alone.ip):
        return  # only proxies: the leftmost hop was the client, the reader's text is not
    spoofed = resolve_client("10.0.0.1", {"x-forwarded-for": f"{prefix}, {header}"}, proxies)
    assert spoofed == alone
    # And the answer is one of the hops, or unknown: never anything else.
    assert alone.ip is None or alone.ip in {normalize_ip(hop) for hop in hops}


@settings(max_examples=200, deadline=None)
@given(
    peer=st.one_of(st.none(), st.text(max_size=60), st.sampled_from(["10.0.0.1", "::1"])),
    name=st.sampled_from(["x-forwarded-for", "forwarded", "x-real-ip"]),
    value=st.text(max_size=2_000),
)
def test_any_header_gives_an_answer_and_never_raises(
    peer: str | None, name: str, value: str
) -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"], forwarded_header=name)
    found = resolve_client(peer, {name: value}, proxies)
    assert found.peer == peer
    assert found.ip is None or normalize_ip(found.ip) == found.ip

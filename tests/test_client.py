"""Client address resolution: one table of peers, headers and trusted proxies."""

from __future__ import annotations

import pytest

from compliance.client import (
    MAX_HOPS,
    ClientAddress,
    TrustedProxies,
    normalize_ip,
    resolve_client,
)
from compliance.errors import ConfigurationError

NONE = TrustedProxies()
LAN = TrustedProxies(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])
ONE_HOP = TrustedProxies(hops=1)
TWO_HOPS = TrustedProxies(hops=2)
XFF_ONLY = TrustedProxies(["10.0.0.0/8"], headers=["x-forwarded-for"])


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
            LAN,
            "192.0.2.60",
            True,
            id="forwarded-params",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'For="[2001:db8:cafe::17]:4711"'},
            LAN,
            "2001:db8:cafe::17",
            True,
            id="forwarded-quoted-ipv6-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8:cafe::17]"'},
            LAN,
            "2001:db8:cafe::17",
            True,
            id="forwarded-quoted-ipv6",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="192.0.2.43:47011"'},
            LAN,
            "192.0.2.43",
            True,
            id="forwarded-quoted-ipv4-port",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=6.6.6.6, for=192.0.2.43, for=10.0.0.2"},
            LAN,
            "192.0.2.43",
            True,
            id="forwarded-chain",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=_hidden"},
            LAN,
            None,
            True,
            id="forwarded-obfuscated",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=unknown, for=10.0.0.2"},
            LAN,
            None,
            True,
            id="forwarded-unknown",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=6.6.6.6, proto=https"},
            LAN,
            None,
            True,
            id="forwarded-hop-without-for",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8::1]:4711'},
            LAN,
            None,
            True,
            id="forwarded-unbalanced-quote",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=1.2.3.4", "x-forwarded-for": "5.6.7.8"},
            LAN,
            "1.2.3.4",
            True,
            id="forwarded-before-xff",
        ),
        pytest.param(
            "10.0.0.1",
            {"forwarded": "for=6.6.6.6", "x-forwarded-for": "5.6.7.8"},
            XFF_ONLY,
            "5.6.7.8",
            True,
            id="spoof-forwarded-not-configured",
        ),
        # X-Real-IP: a single value from the nearest proxy.
        pytest.param("10.0.0.1", {"x-real-ip": "1.2.3.4"}, LAN, "1.2.3.4", True, id="real-ip"),
        pytest.param(
            "10.0.0.1",
            {"x-real-ip": "1.2.3.4", "x-forwarded-for": "5.6.7.8"},
            LAN,
            "5.6.7.8",
            True,
            id="xff-before-real-ip",
        ),
        pytest.param(
            "10.0.0.1",
            {"x-real-ip": "1.2.3.4, 5.6.7.8"},
            LAN,
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
            ONE_HOP,
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
    with pytest.raises(ConfigurationError, match="forwarding header"):
        TrustedProxies(["10.0.0.0/8"], headers=["x-client-ip"])


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
    from compliance import client as client_module

    proxies = TrustedProxies(["10.0.0.0/8"])
    first = resolve_client("10.0.0.1", {"x-forwarded-for": "203.0.113.7"}, proxies)
    again = resolve_client("10.0.0.1", {"x-forwarded-for": "203.0.113.7"}, proxies)
    assert again is first  # remembered
    # The same header from an untrusted peer is not the same question.
    spoofed = resolve_client("198.51.100.1", {"x-forwarded-for": "203.0.113.7"}, proxies)
    assert spoofed == ClientAddress("198.51.100.1", False, "198.51.100.1")
    assert resolve_client("10.0.0.1", {}, proxies) == ClientAddress("10.0.0.1", True, "10.0.0.1")
    # A flood of distinct values never holds more than the bound.
    for i in range(client_module._MEMO_SIZE + 10):
        ip = f"203.0.{i // 256 % 256}.{i % 256}"
        assert resolve_client("10.0.0.1", {"x-forwarded-for": ip}, proxies).ip == ip
    assert len(proxies._clients) <= client_module._MEMO_SIZE
    # A long header is answered but not kept.
    long_value = ", ".join(["10.0.0.2"] * 60) + ", 203.0.113.9"
    before = dict(proxies._clients)
    answer = resolve_client("10.0.0.1", {"x-forwarded-for": long_value}, proxies)
    assert answer.ip == "203.0.113.9"
    assert proxies._clients == before

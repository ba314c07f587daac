"""Client addresses: who sent a request, and whether an address says anything about a place.

The client is the socket peer, unless the peer is a proxy you configured; then it is what your
proxies wrote in the **one** forwarding header you name (``forwarded_header=``), read the way
Werkzeug's ``ProxyFix`` and uvicorn's ``ProxyHeadersMiddleware`` read it. Each proxy appends
the address it saw to the right, so the client address is the rightmost entry that is not
itself a trusted proxy. Everything to the left of it came from the client and can say anything.

Only that one header is read, because a proxy that writes ``X-Forwarded-For`` passes a
``Forwarded`` (or ``X-Real-IP``) header the reader wrote through untouched: believing it would
let a reader choose their own address, and with it their country.

It is a security issue to trust values that came from the client rather than a proxy: configure
exactly the proxies in front of the application, and nothing when there are none.

:func:`public_address` says whether an address is worth looking up at all: private, loopback,
link-local, reserved, documentation and multicast addresses say nothing about a place.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from compliance.cache import BoundedCache, remembered
from compliance.errors import ConfigurationError

if TYPE_CHECKING:
    from .chain import _Memo

__all__ = [
    "DEFAULT_HEADERS",
    "FORWARDED_HEADERS",
    "MAX_FORWARDED_CHARS",
    "MAX_HOPS",
    "ClientAddress",
    "TrustedProxies",
    "forwarded_host",
    "normalize_ip",
    "public_address",
    "resolve_client",
]

#: The forwarding headers a proxy may be said to write (``forwarded_header=``).
FORWARDED_HEADERS: tuple[str, ...] = ("x-forwarded-for", "forwarded", "x-real-ip")

#: The forwarding header read by default: ``X-Forwarded-For``, what nginx's
#: ``$proxy_add_x_forwarded_for`` and most load balancers write.
DEFAULT_HEADERS: tuple[str, ...] = ("x-forwarded-for",)

#: At most this many hops are parsed from the right of a forwarding header.
MAX_HOPS = 32

#: At most this many characters, from the right, of a forwarding header are read.
MAX_FORWARDED_CHARS = 8192

# A hop written by a proxy is short; anything longer is garbage and is not parsed at all.
_MAX_HOP_CHARS = 128
_MEMO_SIZE = 4096
_MEMO_BYTES = 1 << 20
_MAX_REMEMBERED = 512  # characters of a forwarding header worth remembering an answer for

# RFC 7239 obfuscated port: obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
_OBFPORT: Final = re.compile(r"_[A-Za-z0-9._-]+")

_Range = tuple[int, int, int]  # (version, first, last) as integers
_ClientKey = tuple[str | None, str | None]  # (peer, forwarding header value)


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """Where a request came from.

    >>> resolve_client("10.0.0.1", {"x-forwarded-for": "203.0.113.7, 10.0.0.2"},
    ...                TrustedProxies(["10.0.0.0/8"]))
    ClientAddress(ip='203.0.113.7', via_trusted_proxy=True, peer='10.0.0.1')
    """

    ip: str | None
    """The client's normalized IP address, or ``None`` when it cannot be known."""
    via_trusted_proxy: bool
    """The socket peer is a trusted proxy, so the headers it set may be believed."""
    peer: str | None
    """The socket peer exactly as the server reported it."""


def normalize_ip(value: str) -> str | None:
    """The canonical text of the IP address in ``value``, or ``None`` if there is none.

    Accepts what proxies write: surrounding blanks, ``"1.2.3.4:80"``, ``"[::1]:80"``,
    ``"[::1]"``, zone ids (``"fe80::1%eth0"``) and IPv4-mapped IPv6 (reported as IPv4).

    >>> normalize_ip("[2001:DB8::1]:443"), normalize_ip("::ffff:192.0.2.1"), normalize_ip("x")
    ('2001:db8::1', '192.0.2.1', None)
    """
    # Longer text is never an address; keeping it out of the memo bounds the memo in bytes.
    if not isinstance(value, str) or len(value) > 2 * _MAX_HOP_CHARS:
        return None
    return _normalize(value)


@remembered(_MEMO_SIZE, _MEMO_BYTES, longest=2 * _MAX_HOP_CHARS)
def _normalize(value: str) -> str | None:
    text = value.strip()
    if not text or len(text) > _MAX_HOP_CHARS:
        return None
    if text[0] == "[":
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and not _is_port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit() or len(port) > 5:
            return None
        text = host
    text = text.partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _is_port(text: str) -> bool:
    return text[0] == ":" and 1 < len(text) <= 6 and text[1:].isdigit()


@remembered(_MEMO_SIZE, _MEMO_BYTES, size=160, longest=64)  # a normalized address
def _as_int(ip: str) -> tuple[int, int]:
    # ``ip`` is already normalized, so this cannot fail.
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def _memo_size(key: str, value: bool) -> int:
    return len(key) + 80


def _client_size(key: _ClientKey, value: ClientAddress) -> int:
    return len(key[0] or "") + len(key[1] or "") + 2 * (len(value.ip or "") + 60) + 120


class TrustedProxies:
    """The proxies whose forwarding header is believed, and which header that is.

    Either a list of addresses and CIDR ranges (IPv4 and IPv6), or ``hops``: the number of
    proxies that are always in front of the application, as Werkzeug's ``ProxyFix`` counts
    them. It is a security issue to trust values that came from the client rather than a
    proxy: with ``hops`` the application must not be reachable except through exactly that
    many proxies, each of which appends to the forwarding header.

    ``forwarded_header`` names the one header your proxies write: ``"x-forwarded-for"`` (the
    default), ``"forwarded"`` (RFC 7239) or ``"x-real-ip"`` (a single address set by the
    nearest proxy). Only that header is read; the others are ignored, because a proxy passes
    the ones it does not write through from the client untouched.

    >>> proxies = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])
    >>> proxies.contains("10.1.2.3"), proxies.contains("2001:db8::1"), proxies.contains("8.8.8.8")
    (True, True, False)
    >>> proxies.forwarded_header
    'x-forwarded-for'
    >>> TrustedProxies(["10/33"])
    Traceback (most recent call last):
    ...
    compliance.errors.ConfigurationError: trusted proxy '10/33' is not an IP address or CIDR range
    """

    __slots__ = (
        "__weakref__",
        "_clients",
        "_memo",
        "_ranges",
        "_text",
        "forwarded_header",
        "hops",
        "located",
    )

    def __init__(
        self,
        networks: Iterable[str] | str = (),
        *,
        hops: int = 0,
        forwarded_header: str = "x-forwarded-for",
        headers: Iterable[str] | None = None,
    ) -> None:
        if isinstance(networks, str):
            networks = [part for part in networks.split(",") if part.strip()]
        ranges: list[_Range] = []
        text: list[str] = []
        for entry in networks:
            network = _parse_network(entry)
            ranges.append(
                (network.version, int(network.network_address), int(network.broadcast_address))
            )
            text.append(str(network))
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
            raise ConfigurationError(f"hops must be a non-negative integer, not {hops!r}")
        if hops > MAX_HOPS:
            # Fewer hops than that are ever read: every request would fall back to the peer.
            raise ConfigurationError(f"hops must be at most {MAX_HOPS}, not {hops!r}")
        if hops and ranges:
            raise ConfigurationError("give either trusted proxy networks or hops, not both")
        if headers is not None:
            forwarded_header = _from_legacy_headers(headers, forwarded_header)
        name = forwarded_header.strip().lower() if isinstance(forwarded_header, str) else None
        if name not in FORWARDED_HEADERS:
            choices = ", ".join(repr(h) for h in FORWARDED_HEADERS)
            raise ConfigurationError(
                f"forwarded_header must be one of {choices}, not {forwarded_header!r}"
            )
        self._ranges: tuple[_Range, ...] = tuple(ranges)
        self._text = tuple(text)
        self.hops: int = hops
        """Number of proxies always in front (0 when networks are listed instead)."""
        self.forwarded_header: str = name
        """The one forwarding header read from trusted proxies, lower case."""
        self._memo: BoundedCache[str, bool] = BoundedCache(_MEMO_SIZE, _MEMO_BYTES, size=_memo_size)
        self._clients: BoundedCache[_ClientKey, ClientAddress] = BoundedCache(
            _MEMO_SIZE, _MEMO_BYTES, size=_client_size
        )
        self.located: BoundedCache[tuple[object, ...], _Memo] | None = None
        """The request pipeline's answers for requests through these proxies
        (:func:`~compliance.geo.locate_request`), made on first use: they live and die with
        the configuration."""

    @property
    def headers(self) -> tuple[str, ...]:
        """The forwarding headers read: ``(forwarded_header,)`` (kept for compatibility)."""
        return (self.forwarded_header,)

    @property
    def networks(self) -> tuple[str, ...]:
        """The trusted networks in CIDR form."""
        return self._text

    def __bool__(self) -> bool:
        """True when any proxy is trusted at all."""
        return bool(self._ranges) or self.hops > 0

    def __repr__(self) -> str:
        header = (
            ""
            if self.forwarded_header == "x-forwarded-for"
            else f", forwarded_header={self.forwarded_header!r}"
        )
        if self.hops:
            return f"TrustedProxies(hops={self.hops}{header})"
        return f"TrustedProxies({list(self._text)!r}{header})"

    def contains(self, ip: str | None) -> bool:
        """Whether ``ip`` is one of the trusted proxies (always False in ``hops`` mode)."""
        if ip is None or not self._ranges:
            return False
        found = self._memo.get(ip)
        if found is None:
            found = self._memo.set(ip, self._lookup(ip))
        return found

    def contains_peer(self, peer: str | None) -> bool:
        """Whether the socket peer ``peer`` (as the server reports it) is trusted."""
        return peer is not None and self.contains(normalize_ip(peer))

    def _lookup(self, ip: str) -> bool:
        normal = normalize_ip(ip)
        if normal is None:
            return False
        version, value = _as_int(normal)
        return any(v == version and lo <= value <= hi for v, lo, hi in self._ranges)

    def _client_from(self, value: str, peer_ip: str | None) -> str | None:
        name = self.forwarded_header
        if name == "x-real-ip":
            # A single value set by the nearest proxy, not a list of hops.
            return normalize_ip(value)
        hops, complete = _parse_hops(name, value)
        if self.hops:
            # ProxyFix: fewer values than proxies means the header is not what we expect.
            return hops[-self.hops] if len(hops) >= self.hops else peer_ip
        for ip in reversed(hops):
            if ip is None or not self.contains(ip):
                # An unreadable hop ends the walk: what lies left of it is the client's word.
                return ip
        # Only proxies: the leftmost one is the client, unless the header was cut short.
        return hops[0] if hops and complete else None


def _from_legacy_headers(headers: Iterable[str], forwarded_header: str) -> str:
    names = [str(name).strip().lower() for name in headers]
    if len(names) != 1:
        raise ConfigurationError(
            f"headers={names!r}: trusted proxies are read through one forwarding header only "
            "(believing a second one lets a reader pass their own through a proxy that does "
            "not write it); name it with forwarded_header="
        )
    if forwarded_header != "x-forwarded-for" and forwarded_header != names[0]:
        raise ConfigurationError("give forwarded_header= or headers=, not both")
    return names[0]


def _parse_network(entry: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(entry, str):
        raise ConfigurationError(f"trusted proxy {entry!r} is not a string")
    text = entry.strip()
    if "%" in text:
        # A zone id ("fe80::1%eth0/64") names an interface, not part of the range: drop it,
        # keeping the prefix length after it.
        address, _, rest = text.partition("%")
        text = address + rest[rest.find("/") :] if "/" in rest else address
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigurationError(
            f"trusted proxy {entry!r} is not an IP address or CIDR range"
        ) from None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            # Peers are normalized to IPv4, so trust the IPv4 range they will appear as.
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _parse_hops(name: str, value: str) -> tuple[list[str | None], bool]:
    """The last ``MAX_HOPS`` hops of a forwarding header, left to right (None = unreadable),
    and whether that is the whole header."""
    complete = True
    if len(value) > MAX_FORWARDED_CHARS:
        # Only the rightmost part is ever used; the cut-off first element is not a hop.
        value = value[-MAX_FORWARDED_CHARS:].partition(",")[2]
        complete = False
    parts = value.rsplit(",", MAX_HOPS)
    if len(parts) > MAX_HOPS:
        del parts[0]
        complete = False
    if name == "forwarded":
        return [_forwarded_for(part) for part in parts], complete
    return [normalize_ip(part) for part in parts], complete


def _forwarded_parameter(element: str, name: str) -> str | None:
    """The value of parameter ``name`` (lower case) in one RFC 7239 element, unquoted; None
    when it is missing, or its quoting is malformed."""
    for pair in element.split(";"):
        key, sep, raw = pair.partition("=")
        if sep and key.strip().lower() == name:
            value = raw.strip()
            if value[:1] == '"':
                if len(value) < 2 or value[-1] != '"':
                    return None
                value = value[1:-1].replace("\\", "")
            return value
    return None


def _forwarded_for(element: str) -> str | None:
    """The address in the ``for=`` parameter of one RFC 7239 element, if any.

    Obfuscated identifiers (``_hidden``), ``unknown``, a missing ``for=`` and malformed
    quoting all yield None. An obfuscated port (``"192.0.2.43:_p1"``) is a port: the
    address is read.
    """
    if len(element) > 4 * _MAX_HOP_CHARS:
        return None
    node = _forwarded_parameter(element, "for")
    if node is None:
        return None
    if ":_" in node:
        node = _without_obfuscated_port(node)
    return normalize_ip(node)


_MAX_HOST_CHARS: Final = 1024
"""Longest forwarded host read (a DNS name has at most 253 characters, a port 6 more)."""


def forwarded_host(
    client: ClientAddress, headers: Mapping[str, str], trusted: TrustedProxies
) -> str | None:
    """The host the reader asked for, as the trusted proxies in front wrote it (their
    ``Host`` may be the application's own name): ``X-Forwarded-Host``, or the ``host=``
    parameter of ``Forwarded`` when that is the forwarding header they write. None when the
    request did not come through a trusted proxy (``client``, from :func:`resolve_client`),
    or the proxies named no host.

    As ``ProxyFix`` reads it: with ``hops``, the value that many from the right (None when
    there are fewer: the header is not what those proxies write); with networks, the last
    value, which the proxy nearest the application wrote. A value further left came from
    the reader, or from a proxy in front of that one, and is never read. The value is the
    header's text (bounded, not checked): the caller normalises it as it does ``Host``.

    >>> client = ClientAddress("203.0.113.7", True, "10.0.0.1")
    >>> forwarded_host(client, {"x-forwarded-host": "evil.example, www.example.org"},
    ...                TrustedProxies(["10.0.0.0/8"]))
    'www.example.org'
    >>> forwarded_host(client, {"forwarded": 'for=203.0.113.7;host="news.example:443"'},
    ...                TrustedProxies(["10.0.0.0/8"], forwarded_header="forwarded"))
    'news.example:443'
    >>> forwarded_host(ClientAddress("198.51.100.1", False, "198.51.100.1"),
    ...                {"x-forwarded-host": "evil.example"}, TrustedProxies(["10.0.0.0/8"]))
    """
    if not client.via_trusted_proxy:
        return None
    forwarded = trusted.forwarded_header == "forwarded"
    value = headers.get("forwarded" if forwarded else "x-forwarded-host")
    if not value:
        return None
    pick = trusted.hops or 1
    window = pick * (_MAX_HOST_CHARS + 1)
    values = value[-window:].rsplit(",", pick)
    if len(values) < pick or (len(value) > window and len(values) == pick):
        return None  # fewer values than proxies, or the one picked is cut (too long)
    found = values[-pick]
    if forwarded:
        found = _forwarded_parameter(found, "host") or ""
    found = found.strip()
    return found if found and len(found) <= _MAX_HOST_CHARS else None


def _without_obfuscated_port(node: str) -> str:
    """``node`` without an RFC 7239 obfuscated port after an IPv4 address or a bracketed
    IPv6 one (``"[2001:db8::1]:_p1"``); anything else unchanged."""
    host, _, port = node.rpartition(":")
    if _OBFPORT.fullmatch(port) is None:
        return node
    if (host[:1] == "[" and host[-1:] == "]") or ":" not in host:
        return host
    return node


def resolve_client(
    peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies
) -> ClientAddress:
    """Find the client address of one request.

    ``peer`` is the socket peer address (``None`` for a Unix socket), ``headers`` maps
    lower-case header names to values with repeated headers joined by commas. When the peer is
    not trusted, the peer is the client and forwarding headers are ignored. When it is, the
    one header ``trusted.forwarded_header`` decides: the rightmost hop that is not a trusted
    proxy is the client. If that hop is unreadable (garbage, ``unknown``, an obfuscated
    ``_identifier``), the client is unknown (``ip=None``); an address further left is never
    used, since the client may have written it. With no such header, the peer is the client.
    Other forwarding headers are never read. Only the last :data:`MAX_FORWARDED_CHARS`
    characters and :data:`MAX_HOPS` hops of the header are parsed. This never raises on
    malformed input.

    >>> proxies = TrustedProxies(["10.0.0.0/8"], forwarded_header="forwarded")
    >>> resolve_client("10.0.0.1", {"forwarded": 'for="[2001:db8::7]:4711";proto=https'},
    ...                proxies).ip
    '2001:db8::7'
    >>> xff = TrustedProxies(["10.0.0.0/8"])
    >>> resolve_client("10.0.0.1", {"forwarded": "for=127.0.0.1", "x-forwarded-for": "1.2.3.4"},
    ...                xff).ip
    '1.2.3.4'
    >>> resolve_client("198.51.100.1", {"x-forwarded-for": "203.0.113.7"}, xff).ip
    '198.51.100.1'
    >>> resolve_client("10.0.0.1", {"x-forwarded-for": "_hidden"}, xff).ip is None
    True
    """
    # The answer depends only on the peer and the forwarding header: remember it, as the same
    # proxies and readers come back (bounded by entries and bytes). The header is part of the
    # key even from an untrusted peer, whose answer ignores it: a hit costs one lookup.
    value = headers.get(trusted.forwarded_header)
    key = (peer, value)
    found = trusted._clients.get(key)
    if found is None:
        found = _resolve(peer, value, trusted)
        if value is None or len(value) <= _MAX_REMEMBERED:
            trusted._clients.set(key, found)
    return found


def _resolve(peer: str | None, value: str | None, trusted: TrustedProxies) -> ClientAddress:
    if trusted.hops:
        peer_ip = None if peer is None else normalize_ip(peer)
        peer_trusted = True
    else:
        peer_ip, peer_trusted = _peer(peer, trusted)
    if not peer_trusted:
        return ClientAddress(peer_ip, False, peer)
    if value is not None and value and not value.isspace():
        return ClientAddress(trusted._client_from(value, peer_ip), True, peer)
    return ClientAddress(peer_ip, True, peer)


def _peer(peer: str | None, trusted: TrustedProxies) -> tuple[str | None, bool]:
    if peer is None:
        return None, False
    ip = normalize_ip(peer)
    return ip, trusted.contains(ip)


# --- public addresses -------------------------------------------------------------------------

_pton = socket.inet_pton
_ntop = socket.inet_ntop
_AF_INET: Final = socket.AF_INET
_AF_INET6: Final = socket.AF_INET6
_MAPPED: Final = bytes(10) + b"\xff\xff"


def _v4(text: str) -> int:
    return int.from_bytes(_pton(_AF_INET, text), "big")


# IPv4 ranges that are not on the public internet (RFC 6890), sorted and disjoint.
_V4_SPECIAL: Final = sorted(
    (_v4(first), _v4(last))
    for first, last in [
        ("0.0.0.0", "0.255.255.255"),  # "this network", unspecified
        ("10.0.0.0", "10.255.255.255"),  # private
        ("100.64.0.0", "100.127.255.255"),  # carrier-grade NAT
        ("127.0.0.0", "127.255.255.255"),  # loopback
        ("169.254.0.0", "169.254.255.255"),  # link-local
        ("172.16.0.0", "172.31.255.255"),  # private
        ("192.0.0.0", "192.0.0.255"),  # IETF protocol assignments
        ("192.0.2.0", "192.0.2.255"),  # documentation
        ("192.168.0.0", "192.168.255.255"),  # private
        ("198.18.0.0", "198.19.255.255"),  # benchmarking
        ("198.51.100.0", "198.51.100.255"),  # documentation
        ("203.0.113.0", "203.0.113.255"),  # documentation
        ("224.0.0.0", "255.255.255.255"),  # multicast, reserved, broadcast
    ]
)
_V4_FIRST: Final = [first for first, _ in _V4_SPECIAL]
_V4_LAST: Final = [last for _, last in _V4_SPECIAL]


def public_address(ip: str) -> tuple[str, int, int] | None:
    """``(text, version, value)`` for a public unicast address, else None.

    ``text`` is what to look up: IPv4-mapped IPv6 becomes IPv4. None for malformed text and
    for private, loopback, link-local, reserved, documentation and multicast addresses. For
    IPv6 only global unicast (``2000::/3``) counts, less documentation and ``2001::/23``.

    >>> public_address("81.2.69.142"), public_address("::ffff:81.2.69.142")[0]
    (('81.2.69.142', 4, 1359103374), '81.2.69.142')
    >>> [public_address(ip) for ip in ("10.1.2.3", "::1", "fe80::1%eth0", "2001:db8::1", "x")]
    [None, None, None, None, None]
    """
    try:
        if ":" not in ip:
            value = int.from_bytes(_pton(_AF_INET, ip), "big")
            text = ip
        else:
            packed = _pton(_AF_INET6, ip.partition("%")[0] if "%" in ip else ip)
            if packed[:12] != _MAPPED:
                top = int.from_bytes(packed[:4], "big")
                if (
                    top < 0x2000_0000
                    or top >= 0x4000_0000
                    or 0x2001_0000 <= top <= 0x2001_01FF  # IETF protocol assignments, Teredo
                    or top == 0x2001_0DB8  # documentation
                    or 0x3FFF_0000 <= top <= 0x3FFF_0FFF  # documentation (RFC 9637)
                ):
                    return None
                return ip, 6, int.from_bytes(packed, "big")
            value = int.from_bytes(packed[12:], "big")
            text = _ntop(_AF_INET, packed[12:])
    except (OSError, ValueError, TypeError):
        return None
    index = bisect_right(_V4_FIRST, value) - 1
    if index >= 0 and value <= _V4_LAST[index]:
        return None
    return text, 4, value

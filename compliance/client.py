"""The client's IP address: the socket peer, or what a trusted proxy says about it.

The rule is the one Werkzeug's ``ProxyFix`` and uvicorn's ``ProxyHeadersMiddleware`` follow:
forwarded headers are believed only when the socket peer is a proxy you configured, and then
only the part of them your proxies wrote. Each proxy appends the address it saw to the right,
so the client address is the rightmost entry that is not itself a trusted proxy. Everything to
the left of it came from the client and can say anything.

It is a security issue to trust values that came from the client rather than a proxy: configure
exactly the proxies in front of the application, and nothing when there are none.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from compliance.errors import ConfigurationError

__all__ = ["DEFAULT_HEADERS", "MAX_HOPS", "ClientAddress", "TrustedProxies", "resolve_client"]

#: Forwarding headers read by default, in order of precedence (the first one present is used).
DEFAULT_HEADERS: tuple[str, ...] = ("forwarded", "x-forwarded-for", "x-real-ip")

#: At most this many hops are parsed from the right of a forwarding header.
MAX_HOPS = 32

_KNOWN_HEADERS = frozenset(DEFAULT_HEADERS)
# A hop written by a proxy is short; anything longer is garbage and is not parsed at all.
_MAX_HOP_CHARS = 128
_MEMO_SIZE = 4096
_MAX_REMEMBERED = 256  # characters of a forwarding header worth remembering an answer for

_Range = tuple[int, int, int]  # (version, first, last) as integers


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


@lru_cache(maxsize=_MEMO_SIZE)
def normalize_ip(value: str) -> str | None:
    """The canonical text of the IP address in ``value``, or ``None`` if there is none.

    Accepts what proxies write: surrounding blanks, ``"1.2.3.4:80"``, ``"[::1]:80"``,
    ``"[::1]"``, zone ids (``"fe80::1%eth0"``) and IPv4-mapped IPv6 (reported as IPv4).

    >>> normalize_ip("[2001:DB8::1]:443"), normalize_ip("::ffff:192.0.2.1"), normalize_ip("x")
    ('2001:db8::1', '192.0.2.1', None)
    """
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


@lru_cache(maxsize=_MEMO_SIZE)
def _as_int(ip: str) -> tuple[int, int]:
    # ``ip`` is already normalized, so this cannot fail.
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


class TrustedProxies:
    """The proxies whose forwarding headers are believed.

    Either a list of addresses and CIDR ranges (IPv4 and IPv6), or ``hops``: the number of
    proxies that are always in front of the application, as Werkzeug's ``ProxyFix`` counts
    them. It is a security issue to trust values that came from the client rather than a
    proxy: with ``hops`` the application must not be reachable except through exactly that
    many proxies, each of which appends to ``X-Forwarded-For`` / ``Forwarded``.

    ``headers`` names the forwarding headers read, in order of precedence; the first one
    present is used. Name only headers your proxies overwrite or append to: a header they pass
    through untouched is written by the client.

    >>> proxies = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])
    >>> proxies.contains("10.1.2.3"), proxies.contains("2001:db8::1"), proxies.contains("8.8.8.8")
    (True, True, False)
    >>> TrustedProxies(["10/33"])
    Traceback (most recent call last):
    ...
    compliance.errors.ConfigurationError: trusted proxy '10/33' is not an IP address or CIDR range
    """

    __slots__ = ("_clients", "_memo", "_memo_lock", "_ranges", "_text", "headers", "hops")

    def __init__(
        self,
        networks: Iterable[str] | str = (),
        *,
        hops: int = 0,
        headers: Iterable[str] = DEFAULT_HEADERS,
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
        if hops and ranges:
            raise ConfigurationError("give either trusted proxy networks or hops, not both")
        names = tuple(str(name).lower() for name in headers)
        unknown = [name for name in names if name not in _KNOWN_HEADERS]
        if unknown:
            raise ConfigurationError(
                f"unsupported forwarding header {unknown[0]!r}; "
                f"choose from {', '.join(DEFAULT_HEADERS)}"
            )
        self._ranges: tuple[_Range, ...] = tuple(ranges)
        self._text = tuple(text)
        self.hops: int = hops
        """Number of proxies always in front (0 when networks are listed instead)."""
        self.headers: tuple[str, ...] = names
        """Forwarding headers read, lower case, in order of precedence."""
        self._memo: dict[str, bool] = {}
        self._memo_lock = threading.Lock()
        self._clients: dict[tuple[str | None, str | None, str | None], ClientAddress] = {}

    @property
    def networks(self) -> tuple[str, ...]:
        """The trusted networks in CIDR form."""
        return self._text

    def __bool__(self) -> bool:
        """True when any proxy is trusted at all."""
        return bool(self._ranges) or self.hops > 0

    def __repr__(self) -> str:
        if self.hops:
            return f"TrustedProxies(hops={self.hops})"
        return f"TrustedProxies({list(self._text)!r})"

    def contains(self, ip: str | None) -> bool:
        """Whether ``ip`` is one of the trusted proxies (always False in ``hops`` mode)."""
        if ip is None or not self._ranges:
            return False
        found = self._memo.get(ip)
        if found is None:
            found = self._lookup(ip)
            # Bounded: a flood of distinct addresses only ever costs a cleared memo.
            with self._memo_lock:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[ip] = found
        return found

    def contains_peer(self, peer: str | None) -> bool:
        """Whether the socket peer ``peer`` (as the server reports it) is trusted."""
        return peer is not None and self.contains(normalize_ip(peer))

    def _remember(
        self, key: tuple[str | None, str | None, str | None], client: ClientAddress
    ) -> None:
        if len(key[2] or "") > _MAX_REMEMBERED:
            return  # a huge header is not worth keeping
        with self._memo_lock:
            if len(self._clients) >= _MEMO_SIZE:
                self._clients.clear()
            self._clients[key] = client

    def _lookup(self, ip: str) -> bool:
        normal = normalize_ip(ip)
        if normal is None:
            return False
        version, value = _as_int(normal)
        return any(v == version and lo <= value <= hi for v, lo, hi in self._ranges)

    def _client_from(self, name: str, value: str, peer_ip: str | None) -> str | None:
        if name == "x-real-ip":
            # A single value set by the nearest proxy, not a list of hops.
            return normalize_ip(value)
        hops = _parse_hops(name, value)
        if self.hops:
            # ProxyFix: fewer values than proxies means the header is not what we expect.
            return hops[-self.hops] if len(hops) >= self.hops else peer_ip
        for ip in reversed(hops):
            if ip is None or not self.contains(ip):
                # An unreadable hop ends the walk: what lies left of it is the client's word.
                return ip
        # Only proxies: the leftmost one is the client, unless the header was cut short.
        return hops[0] if hops and value.count(",") < MAX_HOPS else None


def _parse_network(entry: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(entry, str):
        raise ConfigurationError(f"trusted proxy {entry!r} is not a string")
    text = entry.strip()
    try:
        network = ipaddress.ip_network(text.partition("%")[0], strict=False)
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


def _parse_hops(name: str, value: str) -> list[str | None]:
    """The last ``MAX_HOPS`` hops of a forwarding header, left to right; None = unreadable."""
    # rsplit stops after MAX_HOPS splits, so a huge header costs one scan and no parsing.
    parts = value.rsplit(",", MAX_HOPS)
    if len(parts) > MAX_HOPS:
        del parts[0]
    if name == "forwarded":
        return [_forwarded_for(part) for part in parts]
    return [normalize_ip(part) for part in parts]


def _forwarded_for(element: str) -> str | None:
    """The address in the ``for=`` parameter of one RFC 7239 element, if any.

    Obfuscated identifiers (``_hidden``), ``unknown``, a missing ``for=`` and malformed
    quoting all yield None.
    """
    if len(element) > 4 * _MAX_HOP_CHARS:
        return None
    for pair in element.split(";"):
        key, sep, raw = pair.partition("=")
        if sep and key.strip().lower() == "for":
            node = raw.strip()
            if node[:1] == '"':
                if len(node) < 2 or node[-1] != '"':
                    return None
                node = node[1:-1].replace("\\", "")
            return normalize_ip(node)
    return None


def resolve_client(
    peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies
) -> ClientAddress:
    """Find the client address of one request.

    ``peer`` is the socket peer address (``None`` for a Unix socket), ``headers`` maps
    lower-case header names to values with repeated headers joined by commas. When the peer is
    not trusted, the peer is the client and forwarding headers are ignored. When it is, the
    first header of ``trusted.headers`` present decides (default precedence: ``Forwarded``,
    then ``X-Forwarded-For``, then ``X-Real-IP``): the rightmost hop that is not a trusted
    proxy is the client. If that hop is unreadable (garbage, ``unknown``, an obfuscated
    ``_identifier``), the client is unknown (``ip=None``); an address further left is never
    used, since the client may have written it. With no such header, the peer is the client.
    This never raises on malformed input.

    >>> proxies = TrustedProxies(["10.0.0.0/8"])
    >>> resolve_client("10.0.0.1", {"forwarded": 'for="[2001:db8::7]:4711";proto=https'},
    ...                proxies).ip
    '2001:db8::7'
    >>> resolve_client("198.51.100.1", {"x-forwarded-for": "203.0.113.7"}, proxies).ip
    '198.51.100.1'
    >>> resolve_client("10.0.0.1", {"x-forwarded-for": "_hidden"}, proxies).ip is None
    True
    """
    # The answer depends only on the peer and the first forwarding header present: remember
    # it, as the same proxies and readers come back (bounded, like the trusted-peer memo).
    key: tuple[str | None, str | None, str | None] = (peer, None, None)
    if trusted.hops or trusted.contains_peer(peer):
        for name in trusted.headers:
            value = headers.get(name)
            if value and not value.isspace():
                key = (peer, name, value)
                break
    found = trusted._clients.get(key)
    if found is None:
        found = _resolve(peer, key[1], key[2], trusted)
        trusted._remember(key, found)
    return found


def _resolve(
    peer: str | None, name: str | None, value: str | None, trusted: TrustedProxies
) -> ClientAddress:
    if trusted.hops:
        peer_ip = _peer_ip(peer)
        peer_trusted = True
    else:
        peer_ip, peer_trusted = _peer(peer, trusted)
    if not peer_trusted:
        return ClientAddress(peer_ip, False, peer)
    if name is not None and value is not None:
        return ClientAddress(trusted._client_from(name, value, peer_ip), True, peer)
    return ClientAddress(peer_ip, True, peer)


def _peer_ip(peer: str | None) -> str | None:
    return None if peer is None else normalize_ip(peer)


def _peer(peer: str | None, trusted: TrustedProxies) -> tuple[str | None, bool]:
    if peer is None:
        return None, False
    ip = normalize_ip(peer)
    return ip, trusted.contains(ip)

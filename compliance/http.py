"""HTTP helpers, free of any web framework: the header list type, ``Host`` normalisation,
``Vary``/``Cache-Control`` merging, validators (variant entity tags), ``Accept-Encoding``
filtering and the content codecs the response core edits bodies through.

Headers are ``(str, str)`` pairs, latin-1 decoded, exactly as WSGI has them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import re
import unicodedata
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Final, Protocol
from urllib.parse import quote, unquote, unquote_to_bytes

from compliance.cache import BoundedCache, remembered

try:  # optional: brotli bodies are edited only when the package is installed
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

__all__ = [
    "CACHING_HEADERS",
    "QVALUE",
    "SHARED_CACHE_HEADERS",
    "BadCoding",
    "BodyTooLarge",
    "Codec",
    "EnvironHeaders",
    "HeaderIndex",
    "Headers",
    "RawHeaders",
    "brotli_available",
    "data_url",
    "editable_codings",
    "filter_accept_encoding",
    "get_all",
    "idna_ascii",
    "index",
    "make_codec",
    "media_type",
    "merge_vary",
    "normalize_host",
    "normalize_path",
    "parse_status",
    "prefers_json",
    "private_cache_control",
    "private_control",
    "private_value",
    "qvalue",
    "refresh_urls",
    "split_tags",
    "srcset_urls",
    "status_line",
    "target_path",
    "url_host",
    "url_path",
    "variant_etag",
    "without",
    "without_authority",
    "without_links_to",
    "without_refresh_to",
]

Headers = list[tuple[str, str]]

MAX_HOST: Final = 253
"""Longest host name kept for matching (a DNS name is at most 253 characters)."""

SHARED_CACHE_HEADERS: Final = frozenset(
    {"cdn-cache-control", "cloudflare-cdn-cache-control", "surrogate-control", "x-accel-expires"}
)
"""Headers that CDNs and nginx obey over ``Cache-Control`` (RFC 9213 and vendors'): a page
made ``private`` must lose them, or the shared cache stores it anyway."""
CACHING_HEADERS: Final = SHARED_CACHE_HEADERS | {"cache-control"}
"""``Cache-Control`` and the shared-cache headers: what a response made private loses."""

_CANONICAL = {
    "accept-language": "Accept-Language",
    "cf-ipcountry": "CF-IPCountry",
    "cf-region-code": "CF-Region-Code",
    "cloudfront-viewer-country": "CloudFront-Viewer-Country",
    "cloudfront-viewer-country-region": "CloudFront-Viewer-Country-Region",
    "hx-request": "HX-Request",
    "hx-boosted": "HX-Boosted",
    "x-compliance-simulate": "X-Compliance-Simulate",
}


def brotli_available() -> bool:
    """Whether ``br`` bodies can be edited (the ``brotli`` package is installed)."""
    return _brotli is not None


# Letters that IDNA 2003 (Python's "idna" codec) maps to others, and that IDNA 2008 and the
# browsers (UTS 46, non-transitional) keep: "faß.de" is xn--fa-hia.de, not fass.de.
_DEVIATIONS: Final = {"\u00df": "ss", "\u03c2": "\u03c3"}


def idna_ascii(name: str) -> str:
    """``name`` (lower case) with its non-ASCII labels in punycode, as browsers write it in
    ``Host`` and URLs (IDNA 2008: ``ß`` and final sigma are letters of their own, not
    ``ss`` and sigma as Python's ``idna`` codec has them). Raises :class:`UnicodeError`
    for a name that is not a valid internationalized domain name.

    >>> idna_ascii("bücher.example"), idna_ascii("faß.de")
    ('xn--bcher-kva.example', 'xn--fa-hia.de')
    """
    if name.isascii():
        return name
    labels = []
    for label in name.split("."):
        if label.isascii():
            labels.append(label)
        elif any(c in label for c in _DEVIATIONS):
            label = unicodedata.normalize("NFKC", label)
            # Checked as the codec checks it with the letters it would map (same rules).
            mapped = "".join(_DEVIATIONS.get(c, c) for c in label)
            mapped.encode("idna")
            labels.append("xn--" + label.encode("punycode").decode("ascii"))
        else:
            labels.append(label.encode("idna").decode("ascii"))
    ascii_name = ".".join(labels)
    ascii_name.encode("idna")  # the codec's checks of the whole: empty and long labels
    return ascii_name


@remembered(1024, 1 << 20, size=768)  # the Host values of recent requests
def normalize_host(value: str | None) -> str:
    """The host a request is for, as rules match it: lower case, no port, no trailing dot,
    IDNs as punycode, at most 253 characters (a longer value is not a DNS name: empty).

    >>> normalize_host("News.Example.:8443"), normalize_host("[2001:DB8::1]:80")
    ('news.example', '[2001:db8::1]')
    >>> normalize_host("bücher.example"), normalize_host("rt.com。"), normalize_host(None)
    ('xn--bcher-kva.example', 'rt.com', '')
    """
    if not value:
        return ""
    host = value.strip().lower()
    if host.startswith("["):  # an IPv6 literal, with or without a port
        end = host.find("]")
        return host[: end + 1] if end > 0 and end <= 64 else ""
    host = host.partition(":")[0].rstrip(".")
    if not host.isascii():
        try:
            # (after mapping: a full stop such as "。" is a dot too, trailing ones included)
            host = idna_ascii(host).rstrip(".")
        except UnicodeError:
            return ""
    return host if len(host) <= MAX_HOST else ""


MAX_PATH: Final = 8192
"""Longest URL path matched against rule globs; the engine treats a longer one fail-safe
(path rules match, exclusions do not), so padding a URL escapes no block."""


@remembered(4096, 2 << 20, size=1024)  # the paths of recent requests
def normalize_path(raw: str) -> str:
    """The URL path as rules match it: percent-decoded and normalised (``/a/./b/../c`` is
    ``/a/c``), so ``/%6Eews/`` or ``/a/../news/`` cannot slip past a pattern that the
    application's router still resolves to ``/news/``. Linear in the path; the engine treats
    a path longer than :data:`MAX_PATH` fail-safe (see ``compliance.engine``).

    A last ``.`` or ``..`` segment leaves a directory, as RFC 3986 (section 5.2.4), browsers
    and the edge servers have it: ``/news/.`` is ``/news/``, which ``/news/**`` matches.

    >>> normalize_path("/%6Eews/../news/a%20b.html"), normalize_path("a//b/")
    ('/news/a b.html', '/a/b/')
    >>> normalize_path("/news/."), normalize_path("/news/x/%2e%2E")
    ('/news/', '/news/')
    """
    path = unquote(raw or "/", errors="replace")
    if not path.startswith("/"):
        path = "/" + path
    normalized = posixpath.normpath(path)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if normalized != "/" and path.rpartition("/")[2] in ("", ".", ".."):
        normalized += "/"
    return normalized


class EnvironHeaders(Mapping[str, str]):
    """The request headers of a WSGI environ by lower-case name, read straight from it: the
    core looks at a few, so none is copied.

    >>> headers = EnvironHeaders({"HTTP_ACCEPT_LANGUAGE": "ru", "CONTENT_TYPE": "text/html"})
    >>> headers["accept-language"], headers.get("content-type"), headers.get("range")
    ('ru', 'text/html', None)
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, object]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        value = self._environ[_environ_key(name)]
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        key = _environ_key.known(name) or _environ_key(name)
        value = self._environ.get(key)
        return value if isinstance(value, str) else default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _environ_key.known(name) or _environ_key(name)
        return isinstance(self._environ.get(key), str)

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key[:5] == "HTTP_" or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                yield key.removeprefix("HTTP_").replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


_SEQUENCES: Final = (list, tuple)  # not ``list | tuple``: that builds a union per call

COMMON_NAMES: Final = frozenset(
    b"""accept accept-charset accept-encoding accept-language accept-ranges
    access-control-allow-credentials access-control-allow-headers
    access-control-allow-methods access-control-allow-origin access-control-expose-headers
    access-control-max-age access-control-request-headers access-control-request-method age
    alt-svc authorization cache-control cdn-loop cf-connecting-ip cf-ipcountry cf-ray
    cf-region-code cf-visitor cloudfront-viewer-country connection content-disposition
    content-encoding content-language content-length content-location content-range
    content-security-policy content-type cookie cross-origin-embedder-policy
    cross-origin-opener-policy cross-origin-resource-policy date dnt early-data etag expect
    expires forwarded from host if-match if-modified-since if-none-match if-range
    if-unmodified-since keep-alive last-modified link location max-forwards origin
    permissions-policy pragma priority proxy-authorization range referer referrer-policy
    retry-after sec-ch-ua sec-ch-ua-mobile sec-ch-ua-platform sec-fetch-dest sec-fetch-mode
    sec-fetch-site sec-fetch-user sec-gpc sec-purpose server server-timing set-cookie
    strict-transport-security te trailer transfer-encoding true-client-ip upgrade
    upgrade-insecure-requests user-agent vary via www-authenticate x-content-type-options
    x-forwarded-for x-forwarded-host x-forwarded-port x-forwarded-proto x-frame-options
    x-real-ip x-request-id x-requested-with x-robots-tag""".split()
)
"""Field names clients and applications commonly send, lower case: a set of names all in
it needs no test for upper-case letters (a subset test costs less than joining them)."""


def lower_names(names: Iterable[bytes]) -> bool:
    """Whether the names (bytes) are surely ASCII without upper-case letters: all common
    ones, or joined, ASCII with a lower-case letter and no upper-case one. False may also
    mean "not sure" (no letter at all): the caller then lowers each name itself.

    >>> lower_names([b"host", b"x-custom"]), lower_names([b"Host"]), lower_names([bytes([0xE9])])
    (True, False, False)
    """
    if COMMON_NAMES.issuperset(names):
        return True
    joined = b"".join(names)
    return joined.isascii() and joined.islower()


class RawHeaders(Mapping[str, str]):
    """ASGI request headers (``(bytes, bytes)`` pairs) by lower-case name, decoded only when
    looked up: the core looks at a few. Repeated headers are joined with ``", "``.

    >>> headers = RawHeaders([(b"accept", b"text/html"), (b"Cookie", b"a=1"), (b"cookie", b"b=2")])
    >>> headers["accept"], headers.get("cookie"), headers.get("range"), len(headers)
    ('text/html', 'a=1, b=2', None, 2)
    """

    __slots__ = ("_index", "_raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] | None) -> None:
        self._raw: Sequence[tuple[bytes, bytes]] = (
            raw if isinstance(raw, _SEQUENCES) else list(raw or ())
        )
        self._index: dict[bytes, bytes] | None = None

    def _build(self) -> dict[bytes, bytes]:
        raw = self._raw
        index = dict(raw)  # servers send lower-case names, each once: the usual case, in C
        if len(index) != len(raw) or not lower_names(index):
            # Repeated names: each value listed, joined once. (Joining line by line copies
            # the growing value at every line: quadratic in the number of lines, which an
            # ASGI server without a limit on them hands over one pair each.)
            lines: dict[bytes, list[bytes]] = {}
            for key, value in raw:
                lines.setdefault(key.lower(), []).append(value)
            index = {name: b", ".join(values) for name, values in lines.items()}
        self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = (self._index or self._build()).get(name.encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name.encode("latin-1") in (self._index or self._build())

    def __iter__(self) -> Iterator[str]:
        for key in self._index or self._build():
            yield key.decode("latin-1")

    def __len__(self) -> int:
        return len(self._index or self._build())


@remembered(256, 64 * 1024, size=256, longest=64)
def _environ_key(name: str) -> str:
    """The environ key of a header (lower-case name): ``HTTP_ACCEPT_LANGUAGE``. The names
    looked up are few: from the code and the configuration, not from requests."""
    upper = name.upper().replace("-", "_")
    return upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/:@!$&'()*+,;=\-._~]*\Z")  # nothing to percent-encode
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


def without_authority(target: str) -> str:
    """A request target's path and what follows, its scheme and authority left out when it is
    in absolute form (RFC 9112 section 3.2.2, as proxies send, and servers may hand on):
    ``http://example.org/a?b`` is ``/a?b``, ``http://example.org`` is ``/``. Any other form
    is returned as it is.

    >>> without_authority("http://example.org/news?x"), without_authority("https://h")
    ('/news?x', '/')
    """
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is None:
        return target
    rest = target[absolute.end() :]
    return rest if rest.startswith("/") else "/" + rest


def target_path(target: str) -> str | None:
    """The path of a request target as sent (percent-escapes kept): origin form ``/a?b``, or
    absolute form ``http://host/a?b``; query and fragment left out. None for another form
    (``*``, ``host:port``): the caller reads the server's decoded path instead.

    >>> target_path("/news/a?x=1"), target_path("http://example.org/news/a#f"), target_path("*")
    ('/news/a', '/news/a', None)
    >>> target_path("/café".encode().decode("latin-1"))  # raw UTF-8 bytes, escaped
    '/caf%C3%A9'
    """
    if not target.startswith("/"):  # (the usual origin form needs no pattern)
        target = without_authority(target)
        if not target.startswith("/"):
            return None
    path = target.partition("?")[0].partition("#")[0]
    if not path.isascii():
        # Bytes a client sent raw (UTF-8 where escapes belong), one character each as
        # servers hand a target on (latin-1): escaped, as a URL parser escapes them.
        path = _RAW_BYTE.sub(_escape_byte, path)
    return path


_RAW_BYTE: Final = re.compile(r"[^\x00-\x7f]")


def _escape_byte(found: re.Match[str]) -> str:
    char = found.group()
    if ord(char) < 0x100:
        return f"%{ord(char):02X}"
    return quote(char.encode("utf-8", "surrogatepass"), safe="")  # (not from bytes: as text)


def url_path(text: str) -> str:
    """A URL path from a PEP 3333 path (``SCRIPT_NAME + PATH_INFO``: latin-1 decoded bytes).

    >>> url_path("/a b/caf\xc3\xa9"), url_path("")
    ('/a%20b/caf%C3%A9', '/')
    """
    if _PLAIN_PATH.match(text):
        return text
    return quote(text.encode("latin-1", "replace"), "/:@!$&'()*+,;=-._~") or "/"


_SPECIAL_SCHEMES: Final = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_C0_AND_SPACE: Final = "".join(map(chr, range(0x21)))


def url_host(url: str) -> str | None:
    """The host of an absolute or scheme-relative URL as a browser reads it (lower case,
    percent-decoded, no port, no trailing dot); ``None`` for a relative URL, which points
    at the page's own site.

    >>> url_host("https://Player.RT.com:443/x"), url_host("//rt.com/a"), url_host("/rt.com")
    ('player.rt.com', 'rt.com', None)
    >>> url_host("\x01https://%72t.com/x"), url_host("https:rt.com/x"), url_host("x:rt.com")
    ('rt.com', 'rt.com', None)
    >>> url_host("https://\\uff52\\uff54\\u3002com\\uff61/x")  # fullwidth, full stops
    'rt.com'
    """
    # As the URL standard reads it: C0 controls and spaces around it go, tabs and newlines
    # anywhere are dropped ("/\t/host").
    url = url.strip(_C0_AND_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")[:4096]
    rest = url
    scheme, colon, after = url.partition(":")
    special = False
    if colon and scheme and scheme[0].isalpha() and "/" not in scheme:
        rest = after
        special = scheme.lower() in _SPECIAL_SCHEMES
    if special or not colon or "/" in scheme:
        rest = rest.replace("\\", "/")  # back slashes are slashes in http(s) URLs
    if special:
        # "http:host/x" names a host too (unless the page itself is http: then it is a
        # path; taking it for a host can only withhold more).
        authority = rest.lstrip("/")
    elif rest.startswith("//"):
        authority = rest[2:]
    else:
        return None
    for stop in "/?#":
        authority = authority.partition(stop)[0]
    host = authority.rpartition("@")[2]
    host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    if "%" in host:
        host = unquote(host, errors="replace")  # the host parser decodes escapes
    if not host.isascii():
        # The host parser maps it as IDNA does (UTS 46): compatibility forms (fullwidth
        # letters), and full stops such as "。" are dots.
        host = unicodedata.normalize("NFKC", host).replace("\u3002", ".")
    host = host.rstrip(".").lower()
    return host or None


_HTML_SPACE: Final = "\t\n\f\r "
_DATA_BASE64 = re.compile(r";[ ]*base64$", re.IGNORECASE)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")


def data_url(url: str, media_types: Collection[str]) -> tuple[str, str] | None:
    """The media type (lower case, no parameters) and the content (as UTF-8) of a ``data:``
    URL whose media type is one of ``media_types``, as the Fetch standard reads it
    (percent-escapes, or base64 with ``;base64``); ``None`` for any other URL, and one that
    does not decode (a browser loads nothing from it).

    >>> data_url("data:Text/HTML;charset=utf-8,%3Cimg%20src=//rt.com%3E#x", {"text/html"})
    ('text/html', '<img src=//rt.com>')
    >>> data_url("data:text/css;base64,QGltcG9ydCAiLy9ydC5jb20iOw==", {"text/css"})
    ('text/css', '@import "//rt.com";')
    """
    url = url.strip(_C0_AND_SPACE)
    if url[:5].lower() != "data:":
        return None
    url = url.replace("\t", "").replace("\n", "").replace("\r", "")  # (as the URL parser)
    header, comma, body = url[5:].partition(",")
    if not comma:
        return None
    header = header.strip(_HTML_SPACE)
    media_type = header.partition(";")[0].strip(_HTML_SPACE).lower() or "text/plain"
    if media_type not in media_types:
        return None
    content = unquote_to_bytes(body.partition("#")[0])
    if _DATA_BASE64.search(header):
        # Forgiving base64: spaces dropped, padding optional, nothing but the alphabet.
        content = content.translate(None, b"\t\n\f\r ")
        if content.endswith(b"=") and len(content) % 4 == 0:
            content = content[:-2] if content.endswith(b"==") else content[:-1]
        if len(content) % 4 == 1 or _BASE64.fullmatch(content) is None:
            return None
        try:
            content = base64.b64decode(content + b"=" * (-len(content) % 4))
        except binascii.Error:  # pragma: no cover - (checked above)
            return None
    return media_type, content.decode("utf-8", "replace")


def srcset_urls(srcset: str) -> list[str]:
    """The URLs of a ``srcset`` (an ``imagesrcset``): as the standard reads them (a URL runs
    to whitespace, commas included: ``https://a,b@host/x`` is one, on ``host``), and each
    comma-separated piece's first word as well (a reading that can only find more hosts).

    >>> srcset_urls("a.png 1x,https://x,y@rt.com/b.png 2x")
    ['a.png', 'https://x,y@rt.com/b.png', 'https://x', 'y@rt.com/b.png']
    """
    urls: list[str] = []
    at, n = 0, len(srcset)
    while at < n:
        while at < n and (srcset[at] in _HTML_SPACE or srcset[at] == ","):
            at += 1
        start = at
        while at < n and srcset[at] not in _HTML_SPACE:
            at += 1
        url = srcset[start:at]
        if url.rstrip(","):
            urls.append(url.rstrip(","))
        if url.endswith(","):
            continue
        in_parens = False  # the descriptors, up to a comma outside parentheses
        while at < n and (srcset[at] != "," or in_parens):
            if srcset[at] in "()":
                in_parens = srcset[at] == "("
            at += 1
    seen = set(urls)  # (a set: a list lookup per entry is quadratic in a long srcset)
    for entry in srcset.split(","):
        words = entry.split()
        if words and words[0] not in seen:
            seen.add(words[0])
            urls.append(words[0])
    return urls


_REFRESH: Final = re.compile(r"[\t\n\f\r ]*[0-9.]*[\t\n\f\r ;,]*(?:[Uu][Rr][Ll][\t\n\f\r ]*=)?")


def refresh_urls(content: str) -> list[str]:
    """The URL a ``Refresh`` header or a ``<meta http-equiv=refresh>`` goes to, as the
    standard reads its value or ``content`` (``0; url='https://x/'``); what is left after
    the delay when it does not parse. A quoted URL ends at the last quote (the standard,
    Chromium) or at the first (older readers): both readings, when they differ.

    >>> refresh_urls("0;URL = 'https://rt.com/x'"), refresh_urls("5, //rt.com")
    (['https://rt.com/x'], ['//rt.com'])
    >>> refresh_urls("0; url='http://a'@rt.com/'")
    ["http://a'@rt.com/", 'http://a']
    """
    delay = _REFRESH.match(content)  # (always matches: every part is optional)
    url = content[delay.end() if delay else 0 :].lstrip(_HTML_SPACE)
    if url[:1] not in ("'", '"'):
        return [url]
    quote, url = url[0], url[1:]
    last = url.rpartition(quote)[0] if quote in url else url
    first = url.partition(quote)[0]
    return [last] if first == last else [last, first]


def without_refresh_to(values: Sequence[str], withheld: Callable[[str], bool]) -> list[str]:
    """The ``Refresh`` field values without those going to a host for which ``withheld``
    is true: a browser follows the header as it follows ``<meta http-equiv=refresh>``.

    >>> without_refresh_to(["0; url=https://rt.com/", "5"], lambda host: host == "rt.com")
    ['5']
    """
    return [
        value
        for value in values
        if not any(
            (host := url_host(url)) is not None and withheld(host) for url in refresh_urls(value)
        )
    ]


# One link-value of a Link field: up to a comma outside its <URI-Reference> and outside
# quoted parameters (an unclosed one runs to the end of the value).
_LINK_VALUE: Final = re.compile(r'(?:[^,"<]|<[^>]*+>?|"(?:[^"\\]|\\.)*+"?)++')
_LINK_TARGET: Final = re.compile(r"<([^>]*+)")
# The parameters after a link-value's target: ";"-separated outside quoted strings.
_LINK_PARAM_PIECE: Final = re.compile(r'"(?:[^"\\]|\\.)*+"?|[^";]++|;')
_QUOTED_PAIR: Final = re.compile(r"\\(.)", re.S)


def _link_urls(part: str) -> list[str]:
    """The URLs one link-value names: every target in angle brackets, and the candidates of
    its ``imagesrcset`` parameters (a browser preloads one of those instead of the target),
    quoted or not (both readings of a quoted one: they can only find more hosts).

    >>> _link_urls('</a.png>; rel=preload; as=image; IMAGESRCSET="//rt.com/b.png 1x, c.png 2x"')
    ['/a.png', '//rt.com/b.png', 'c.png', '"//rt.com/b.png']
    """
    urls = _LINK_TARGET.findall(part)
    if "imagesrcset" not in part.lower():
        return urls
    params = part.partition(">")[2] if part.lstrip(_OWS).startswith("<") else part
    segments: list[list[str]] = [[]]  # split on the ";" outside quoted strings
    for piece in _LINK_PARAM_PIECE.findall(params):
        if piece == ";":
            segments.append([])
        else:
            segments[-1].append(piece)
    for segment in segments[1:]:
        name, equals, value = "".join(segment).partition("=")
        if not equals or name.strip(_OWS).rstrip("*").lower() != "imagesrcset":
            continue
        value = value.strip(_OWS)
        readings = [value]
        if value.startswith('"'):
            readings.insert(0, _QUOTED_PAIR.sub(r"\1", value[1:].removesuffix('"')))
        seen = set(urls)
        for reading in readings:
            for url in srcset_urls(reading):
                if url not in seen:
                    seen.add(url)
                    urls.append(url)
    return urls


def without_links_to(values: Sequence[str], withheld: Callable[[str], bool]) -> list[str]:
    """The ``Link`` field values (RFC 8288) without the link-values whose targets are on a
    host for which ``withheld`` is true: a browser preloads, prefetches or connects to what
    a page's ``Link`` header names. A link-value naming such a host anywhere in angle
    brackets, or among the candidates of its ``imagesrcset`` parameter, goes; a field left
    empty goes too.

    >>> without_links_to(['<https://cdn.rt.com/a.js>; rel=preload; as=script, </s.css>; '
    ...     'rel=preload; as=style'], lambda host: host.endswith("rt.com"))
    ['</s.css>; rel=preload; as=style']
    """
    kept: list[str] = []
    for value in values:
        parts = _LINK_VALUE.findall(value) if "<" in value else [value]
        left = [
            part
            for part in parts
            if not any(
                (host := url_host(target)) is not None and withheld(host)
                for target in _link_urls(part)
            )
        ]
        if len(left) == len(parts):
            kept.append(value)  # nothing withheld: as the application wrote it
            continue
        joined = ", ".join(filter(None, (part.strip(_OWS) for part in left)))
        if joined:
            kept.append(joined)
    return kept


def status_line(status: int) -> str:
    """The status line text for a status code.

    >>> status_line(451), status_line(599)
    ('451 Unavailable For Legal Reasons', '599 Unknown')
    """
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


@remembered(256, 64 * 1024, size=256, longest=64)  # applications send a few, again and again
def parse_status(line: str) -> tuple[int, bool]:
    """The code of a WSGI status line, and whether the line is a plain ``DDD reason``
    (which may then be sent as it is while the status stays).

    >>> parse_status("404 Gone Fishing"), parse_status("200")
    ((404, True), (200, False))
    """
    plain = line[3:4] == " " and line[:3].isascii() and line[:3].isdigit()
    return int(line[:3]) if plain else int(line.split(None, 1)[0]), plain


def get_all(headers: Headers, name: str) -> list[str]:
    """Every value of header ``name`` (lower case), in order."""
    return [value for key, value in headers if key.lower() == name]


def index(headers: Headers) -> dict[str, list[str]]:
    """Header values by lower-case name, in order: one pass instead of one per name."""
    found: dict[str, list[str]] = {}
    for key, value in headers:
        found.setdefault(key.lower(), []).append(value)
    return found


class HeaderIndex:
    """Response headers read in one pass, by lower-case name, so the core looks up what it
    needs (``Content-Type``, ``Content-Encoding``, ``Vary``, ``Cache-Control``, ``ETag``,
    ...) without lowering every name again for each, and rewrites the list once
    (:meth:`rewrite`).

    :attr:`last` maps each name to its last value. When a name repeats (:attr:`repeated`),
    :meth:`values` and :meth:`first` read the list again: the rare case pays for itself.

    >>> found = HeaderIndex([("Vary", "Accept"), ("vary", "Cookie"), ("ETag", '"a"')])
    >>> found.values("vary"), found.first("vary"), found.last["etag"], "age" in found
    (['Accept', 'Cookie'], 'Accept', '"a"', False)
    >>> found.rewrite({"vary"}, [("Vary", "Accept, Cookie")])
    [('ETag', '"a"'), ('Vary', 'Accept, Cookie')]
    """

    __slots__ = ("headers", "last", "repeated", "uncached")

    def __init__(self, headers: Headers) -> None:
        last: dict[str, str] = {}
        uncached: Headers = []
        keep = uncached.append
        for pair in headers:
            key, value = pair
            name = key.lower()
            last[name] = value
            if name not in CACHING_HEADERS:
                keep(pair)
        self.headers = headers
        self.last = last
        self.repeated = len(last) != len(headers)
        self.uncached = uncached
        """The headers but ``Cache-Control`` and the shared-cache ones, in order: what a
        response made private keeps (most responses the core edits are; the same pass)."""

    def __contains__(self, name: str) -> bool:
        return name in self.last

    def values(self, name: str) -> list[str]:
        """Every value of ``name`` (lower case), in order."""
        if not self.repeated:
            value = self.last.get(name)
            return [] if value is None else [value]
        return [value for key, value in self.headers if key.lower() == name]

    def first(self, name: str) -> str | None:
        """The first value of ``name`` (lower case), or None."""
        if self.repeated:
            for key, value in self.headers:
                if key.lower() == name:
                    return value
            return None
        return self.last.get(name)

    def rewrite(self, drop: Collection[str], add: Headers) -> Headers:
        """A new list: the headers without any named in ``drop`` (lower case), then ``add``."""
        kept = [(key, value) for key, value in self.headers if key.lower() not in drop]
        kept += add
        return kept


def without(headers: Headers, *names: str) -> Headers:
    """``headers`` without any of ``names`` (lower case)."""
    return [(key, value) for key, value in headers if key.lower() not in names]


def canonical(name: str) -> str:
    """The usual spelling of a lower-case header name.

    >>> canonical("accept-language"), canonical("x-custom-thing")
    ('Accept-Language', 'X-Custom-Thing')
    """
    return _CANONICAL.get(name) or "-".join(part.capitalize() for part in name.split("-"))


def merge_vary(existing: Sequence[str], names: Iterable[str]) -> str | None:
    """The ``Vary`` value with ``names`` added, case-insensitively and without duplicates;
    None when nothing changes (``Vary: *`` already varies on everything).

    >>> merge_vary(["Accept-Encoding"], ["accept-language", "ACCEPT-ENCODING"])
    'Accept-Encoding, Accept-Language'
    >>> merge_vary(["*"], ["accept-language"]) is None
    True
    """
    items = [item.strip() for value in existing for item in value.split(",") if item.strip()]
    if "*" in items:
        return None
    seen = {item.lower() for item in items}
    added = False
    for entry in names:
        for part in entry.split(","):
            name = part.strip().lower()
            if name and name not in seen:
                seen.add(name)
                items.append(canonical(name))
                added = True
    return ", ".join(items) if added else None


_VARY: BoundedCache[tuple[tuple[str, ...], tuple[str, ...]], str] = BoundedCache(
    512, 512 * 1024, size=1024
)
"""Merged ``Vary`` values for the few combinations a site sends (keys of at most 512
characters; ``""`` when nothing changes)."""


def vary_value(existing: Sequence[str] | None, names: tuple[str, ...]) -> str | None:
    """:func:`merge_vary`, remembered for the usual short values.

    >>> vary_value(None, ("accept-language",)), vary_value(["*"], ("accept-language",))
    ('Accept-Language', None)
    """
    key = (tuple(existing) if existing else (), names)
    found = _VARY.get(key)
    if found is not None:
        return found or None  # "": nothing changes
    merged = merge_vary(key[0], names)
    if sum(map(len, key[0])) + sum(map(len, names)) <= 512:
        _VARY.set(key, merged or "")
    return merged


def private_value(existing: Sequence[str] | None) -> str:
    """:func:`private_cache_control`, remembered for the usual single short value.

    >>> private_value(None), private_value(["public, max-age=60"])
    ('private', 'max-age=60, private')
    """
    if not existing:
        return "private"
    if len(existing) != 1:
        return private_cache_control(existing)
    return private_control(existing[0])


@remembered(256, 256 * 1024, size=640)  # applications send the same few again and again
def private_control(value: str) -> str:
    """:func:`private_cache_control` of one ``Cache-Control`` value.

    >>> private_control("public, s-maxage=600, max-age=60")
    'max-age=60, private'
    """
    return private_cache_control((value,))


def private_cache_control(existing: Sequence[str]) -> str:
    """``Cache-Control`` made safe from shared caches: ``public`` and ``s-maxage`` removed,
    ``private`` added.

    >>> private_cache_control(["public, max-age=60, s-maxage=600"])
    'max-age=60, private'
    """
    kept = []
    for value in existing:
        for directive in _DIRECTIVE.findall(value):
            directive = directive.strip(_OWS)
            name = directive.partition("=")[0].strip(_OWS).lower()
            if directive and name not in ("public", "s-maxage", "private"):
                kept.append(directive)
    kept.append("private")
    return ", ".join(kept)


# One directive of a Cache-Control list: up to a comma outside a quoted string (RFC 9111's
# field-name lists, `no-cache="Set-Cookie, X-Foo"`, hold commas; an unclosed quote runs to the
# end of the value).
_DIRECTIVE: Final = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*+(?:"|$))++')


def make_private(headers: Headers, found: HeaderIndex | None = None) -> Headers:
    """``headers`` with ``Cache-Control`` made private and the shared-cache headers gone.

    >>> make_private([("Cache-Control", "public, max-age=60"), ("CDN-Cache-Control", "x")])
    [('Cache-Control', 'max-age=60, private')]
    """
    found = found or HeaderIndex(headers)
    control = private_value(found.values("cache-control"))
    return [*found.uncached, ("Cache-Control", control)]


def add_vary(headers: Headers, names: Iterable[str], found: HeaderIndex | None = None) -> Headers:
    """``headers`` with ``names`` merged into ``Vary``."""
    found = found or HeaderIndex(headers)
    merged = vary_value(found.values("vary"), tuple(names))
    if merged is None:
        return headers
    return found.rewrite(("vary",), [("Vary", merged)])


QVALUE: Final = r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?"
"""RFC 9110's qvalue (section 12.4.2) in the syntax Python, PCRE and JavaScript share: a weight
that is anything else (``1.5``, ``2``, ``-1``, ``.5``, ``0.1234``, ``nan``, ``0x1``, empty)
makes its item malformed, and it is skipped, so it never outranks a well-formed one."""
_QVALUE: Final = re.compile(QVALUE)
_OWS: Final = " \t"


def qvalue(text: str) -> float | None:
    """The weight a ``q`` parameter's value gives, or None where it is no :data:`QVALUE`.

    >>> qvalue("0.5"), qvalue("1."), qvalue("1.5"), qvalue("1_0")
    (0.5, 1.0, None, None)
    """
    return float(text) if _QVALUE.fullmatch(text) else None


def prefers_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header ranks JSON above HTML.

    >>> prefers_json("application/json"), prefers_json("text/html,application/json;q=0.9")
    (True, False)
    >>> prefers_json(None), prefers_json("*/*")
    (False, False)
    """
    if not accept:
        return False
    best = {"json": -1.0, "html": -1.0}
    for item in accept[:4096].split(",")[:64]:
        media, *params = (part.strip(_OWS) for part in item.split(";"))
        quality: float | None = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip(_OWS).lower() == "q":
                quality = qvalue(value.strip(_OWS))
        if quality is None:
            continue  # a malformed weight: the item is skipped
        media = media.lower()
        if media in ("application/json", "application/problem+json") or media.endswith("+json"):
            best["json"] = max(best["json"], quality)
        elif media in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            best["html"] = max(best["html"], quality)
    return best["json"] > 0 and best["json"] > best["html"]


@remembered(256, 256 * 1024, size=768)  # applications send the same few again and again
def media_type(value: str) -> tuple[str, str | None]:
    """``(type, charset)`` of a ``Content-Type`` value.

    The first ``charset`` with a value is the one, as browsers read it (Chromium decodes
    ``charset=koi8-r; charset=utf-8`` as KOI8-R), quoted in ``"`` or ``'`` or not.

    >>> media_type('Text/HTML; charset="windows-1251"')
    ('text/html', 'windows-1251')
    >>> media_type("text/html; charset='koi8-r'; charset=utf-8")
    ('text/html', 'koi8-r')
    """
    media, *params = value.split(";")
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "charset":
            charset = raw.strip()
            if len(charset) >= 2 and charset[0] == charset[-1] and charset[0] in "\"'":
                charset = charset[1:-1]
            charset = charset.strip('"')
            if charset:
                return media.strip().lower(), charset
    return media.strip().lower(), None


# -- validators -------------------------------------------------------------------------------

_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')
_VARIANT_MARK = "-cv"


def variant_etag(etag: str, variant: str) -> str:
    """The entity tag of an edited variant of the representation tagged ``etag``: the
    same strength, a suffix naming the variant.

    >>> variant_etag('"abc"', "1f2e"), variant_etag('W/"abc"', "1f2e")
    ('"abc-cv1f2e"', 'W/"abc-cv1f2e"')
    """
    weak = etag.startswith("W/")
    opaque = etag[2:] if weak else etag
    if len(opaque) < 2 or not (opaque.startswith('"') and opaque.endswith('"')):
        opaque = '"' + opaque.strip('"') + '"'
    return ("W/" if weak else "") + opaque[:-1] + _VARIANT_MARK + variant + '"'


def variant_id(parts: Iterable[str]) -> str:
    """A short, stable name for an edited variant (what was added to or withheld from it)."""
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:12]


def entity_tags(value: str) -> list[str] | None:
    """The entity tags listed in an ``If-None-Match``/``If-Range`` value; None for ``*``
    or a value that is not a list of entity tags.

    >>> entity_tags('W/"a", "b"')
    ['W/"a"', '"b"']
    """
    text = value.strip()
    if text == "*" or not text:
        return None
    found = []
    pos = 0
    while pos < len(text):
        match = _ETAG.match(text, pos)
        if match is None:
            return None
        found.append((match.group(1) or "") + match.group(2))
        pos = match.end()
        if len(found) > 64:
            return None
    return found


def translate_if_none_match(value: str, variant: str) -> tuple[str | None, str]:
    """For a reader who gets the ``variant`` of a page: the ``If-None-Match`` value the
    application should see, and the flag of the reader's copy after the variant in its tag
    (:data:`VARIANT_FLAGS`). Tags naming this reader's variant become the application's own
    tag (so a copy of this variant still revalidates to 304); tags naming another variant
    or the unedited page are dropped (that copy lacks this reader's notices). None: drop
    the header.

    >>> translate_if_none_match('"abc-cv111", "abc"', "111")
    ('"abc"', '')
    >>> translate_if_none_match('W/"abc-cv111a"', "111")
    ('W/"abc"', 'a')
    >>> translate_if_none_match('"abc-cv222"', "111")
    (None, '')
    """
    tags = entity_tags(value)
    if tags is None:
        return None, ""
    kept = []
    flags = set()
    for tag in tags:
        for flag in VARIANT_FLAGS:
            suffix = _VARIANT_MARK + variant + flag + '"'
            if tag.endswith(suffix):
                kept.append(tag[: -len(suffix)] + '"')
                flags.add(flag)
    if not kept:
        return None, ""
    return ", ".join(kept), next(flag for flag in VARIANT_FLAGS if flag in flags)


VARIANT_FLAGS: Final = ("a", "", "o")
"""What a variant's tag says of the copy after the variant's name: a page that varied on
``Accept-Language`` (``a``), one that did not (``""``), or another type, which went out with
the application's own caching headers (``o``). In this order :func:`translate_if_none_match`
prefers them when the reader's tags of its variant carry several (a copy that varied first:
its 304 says so)."""

_VARIANT_SUFFIX = re.compile(
    re.escape(_VARIANT_MARK)
    + "[0-9a-f]{12}(?:"
    + "|".join(re.escape(flag) for flag in VARIANT_FLAGS if flag)
    + ')?"\\Z'
)


MAX_TAG_TEXT: Final = 64 * 1024
"""Characters read of a string of comma-separated content tags."""


def split_tags(value: str) -> frozenset[str]:
    """Content tags from a comma-separated string (``X-Compliance-Tags``, ``compliance.tags``,
    ``--tag``), spaces around each dropped; only the first 64 KiB are read.

    >>> sorted(split_tags("politics, elections,,"))
    ['elections', 'politics']
    """
    return frozenset(tag.strip() for tag in value[:MAX_TAG_TEXT].split(",") if tag.strip())


def application_tags(value: str) -> str:
    """An ``If-Match`` value, or an ``If-None-Match`` value of a request that changes state,
    as the application must see it: tags naming an edited variant (any reader's) become the
    application's own tag, since a variant is the application's representation with notices
    added; ``*``, the other tags and a value that is not a list of tags stay as they are.
    (A precondition asks whether the resource changed, which no notice does.)

    >>> application_tags('"abc-cv0123456789ab", W/"x-cv0123456789aba", "y"')
    '"abc", W/"x", "y"'
    >>> application_tags("*")
    '*'
    """
    tags = entity_tags(value)
    if tags is None:
        return value
    return ", ".join(_VARIANT_SUFFIX.sub('"', tag) for tag in tags)


# -- content codings --------------------------------------------------------------------------


class BodyTooLarge(Exception):
    """A compressed body decodes past the configured size or ratio bound."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class BadCoding(Exception):
    """A body that does not decode as its ``Content-Encoding`` says: corrupt, or cut
    short."""


def editable_codings() -> frozenset[str]:
    """The content codings whose bodies can be decoded and encoded again here."""
    found = {"identity", "gzip", "x-gzip", "deflate"}
    if _brotli is not None:
        found.add("br")
    return frozenset(found)


def filter_accept_encoding(value: str | None) -> str | None:
    """``Accept-Encoding`` keeping only the codings the core can edit (and identity);
    None: the header should go (nothing editable was asked for, so identity is what the
    application sends).

    >>> filter_accept_encoding("gzip, deflate, br, zstd")  # with the brotli package
    'gzip, deflate, br'
    >>> filter_accept_encoding("zstd") is None
    True
    """
    return None if value is None else _filter_accept_encoding(value) or None


@remembered(256, 256 * 1024, size=640)  # browsers send a handful
def _filter_accept_encoding(value: str) -> str:
    """:func:`filter_accept_encoding` of a value; ``""`` when no coding is left (kept too)."""
    allowed = editable_codings()
    kept = []
    for item in value[:1024].split(",")[:32]:
        coding = item.split(";")[0].strip().lower()
        if coding in allowed or coding == "*":
            kept.append(item.strip() if coding != "*" else "identity")
    return ", ".join(kept)


class Codec(Protocol):
    """Decode a coded body chunk by chunk and encode the edited result the same way."""

    def decompress(self, data: bytes) -> bytes: ...
    def rest(self) -> bytes: ...
    def compress(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


class _Bound:
    """The decoded-size and ratio bounds shared by the decoders."""

    def __init__(self, max_size: int, max_ratio: int) -> None:
        self.max_size = max_size
        self.max_ratio = max_ratio
        self.taken = 0
        self.given = 0

    def check(self, consumed: int, produced: int) -> None:
        self.taken += consumed
        self.given += produced
        if self.given > self.max_size:
            raise BodyTooLarge(f"decoded body over {self.max_size} bytes")
        # Small bodies may compress very well (a page of spaces); past 1 MiB, a ratio this
        # high is a decompression bomb, not a web page.
        if self.given > 1 << 20 and self.given > self.max_ratio * max(self.taken, 1):
            raise BodyTooLarge(f"compression ratio over {self.max_ratio}:1")


def _zlib_wrapped(head: bytes) -> bool:
    """Whether a deflate body starts with a zlib header (RFC 1950) rather than raw deflate."""
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


_STEP: Final = 64 * 1024  # decoded bytes produced per decompress call: bounds memory
_WINDOW: Final = 64 * 1024  # coded bytes given per decompress call, at most
_FIRST_WINDOW: Final = 256  # ... at the start of a member (doubling as it goes on)
_NONZERO = re.compile(rb"[^\0]")


class _Zlib:
    """gzip (every member, RFC 1952 2.2) and deflate (zlib-wrapped as the standard says, or
    raw as some servers send it); the output is written the way the input came."""

    def __init__(self, gzip: bool, bound: _Bound) -> None:
        self._gzip = gzip
        self._bound = bound
        self._wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
        self._in: zlib._Decompress | None = zlib.decompressobj(self._wbits) if gzip else None
        self._head = b""
        self._out: zlib._Compress | None = None
        self._members = 0
        self._fed = False  # any byte of the body came
        self._between = False  # a gzip member ended: padding may come before the next
        self._window = _FIRST_WINDOW

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._decompress(data)
        except zlib.error as exc:
            raise BadCoding(f"not {'gzip' if self._gzip else 'deflate'} data ({exc})") from None

    def _decompress(self, data: bytes) -> bytes:
        self._fed = self._fed or bool(data)
        if self._in is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            if not _zlib_wrapped(data):
                self._wbits = -zlib.MAX_WBITS
            self._in = zlib.decompressobj(self._wbits)
        # The input goes in by windows, from a small one at the start of each member up to
        # _WINDOW: what a decoder hands back unread (its unused data at a member's end, its
        # unconsumed tail when the output step is reached) is a copy of the rest of its
        # input, so a body of many small members, given whole, cost time in the square of
        # its length; by windows each copy is at most the member's own share.
        out: list[bytes] = []
        decoder = self._in
        view = memoryview(data)
        at, end, window = 0, len(data), self._window
        while at < end:
            if self._between:  # some writers pad gzip members with zero bytes
                nonzero = _NONZERO.search(data, at)
                at = nonzero.start() if nonzero is not None else end
                if at == end:
                    break
            given = view[at : at + window]
            piece = decoder.decompress(given, _STEP)
            left = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
            used = len(given) - len(left)
            if not used and not piece and not decoder.eof:
                raise BadCoding("the decoder made no progress")
            self._bound.check(used, len(piece))
            out.append(piece)
            at += used
            self._between = False
            if decoder.eof:
                if not self._gzip:
                    break  # trailing bytes after a deflate stream are not part of the body
                self._members += 1
                decoder = self._in = zlib.decompressobj(self._wbits)
                self._between = True
                window = _FIRST_WINDOW
            else:
                window = min(2 * window, _WINDOW)
        self._window = window
        return b"".join(out)

    def rest(self) -> bytes:
        if not self._fed:
            return b""  # an empty body: nothing was coded
        if self._in is None:
            raise BadCoding("the compressed body ended early")
        try:
            result = self._in.flush()
        except zlib.error as exc:
            raise BadCoding(f"not {'gzip' if self._gzip else 'deflate'} data ({exc})") from None
        # A member started is a member cut short, whichever it is (after the last, the
        # decoder that waits for another has had no byte, or only padding).
        if not self._in.eof and not (self._members and self._between):
            raise BadCoding("the compressed body ended early")
        return result

    def _encoder(self) -> zlib._Compress:
        # Made once the body's framing is known (deflate's, from its first two bytes): the
        # edited page is written as it came, however the body was split.
        if self._out is None:
            self._out = zlib.compressobj(6, zlib.DEFLATED, self._wbits)
        return self._out

    def compress(self, data: bytes) -> bytes:
        if not data:
            return b""
        # A sync flush per chunk keeps a streamed page streaming.
        encoder = self._encoder()
        return encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        if not self._fed:
            return b""  # an empty body stays empty
        return self._encoder().flush(zlib.Z_FINISH)


class _Brotli:
    def __init__(self, bound: _Bound) -> None:
        assert _brotli is not None
        self._bound = bound
        self._in = _brotli.Decompressor()
        self._out = _brotli.Compressor(quality=5)
        self._fed = False  # any byte of the body came
        self._wrote = False  # any byte was encoded

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._decompress(data)
        except _brotli.error as exc:
            raise BadCoding(f"not brotli data ({exc})") from None

    def _decompress(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._fed = True
        out: list[bytes] = []
        decoder = self._in
        piece = bytes(decoder.process(data, output_buffer_limit=_STEP))
        self._bound.check(len(data), len(piece))
        # The output limit is a step, not a cap on what is pending: drain it step by step,
        # checking the bounds as it grows.
        while piece:
            out.append(piece)
            if decoder.is_finished():
                break
            piece = bytes(decoder.process(b"", output_buffer_limit=_STEP))
            self._bound.check(0, len(piece))
        return b"".join(out)

    def rest(self) -> bytes:
        if self._fed and not self._in.is_finished():
            raise BadCoding("the compressed body ended early")
        return b""

    def compress(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._wrote = True
        return bytes(self._out.process(data)) + bytes(self._out.flush())

    def finish(self) -> bytes:
        if not self._fed and not self._wrote:
            return b""  # an empty body stays empty
        return bytes(self._out.finish())


def make_codec(coding: str, *, max_size: int, max_ratio: int) -> Codec | None:
    """The codec for a ``Content-Encoding`` value (lower case); None for identity.
    Raises ValueError for a coding that cannot be edited."""
    if coding in ("", "identity"):
        return None
    bound = _Bound(max_size, max_ratio)
    if coding in ("gzip", "x-gzip"):
        return _Zlib(gzip=True, bound=bound)
    if coding == "deflate":
        return _Zlib(gzip=False, bound=bound)
    if coding == "br" and _brotli is not None:
        return _Brotli(bound)
    raise ValueError(f"content-encoding {coding!r} cannot be edited")

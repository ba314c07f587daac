"""Differential testing of the edge exports: generated rule sets and requests, each request
asked of the library (the real WSGI middleware) and of a real edge engine running the
export, answers compared.

Rule sets stay within what both exports say they express (no withholding, no block decided
by content tags, Accept-Language as browsers send it for nginx: see each export's README).
Everything is drawn from a :class:`random.Random` with a fixed seed, so a failure names a
seed that reproduces it: ``python tests/edge/differential.py nginx --seed N``.

Requests are sent byte for byte as generated (``http.client``, no URL normalisation): odd
percent-escapes, dot segments, case and trailing slashes reach the engine as written.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Readers in MaxMind's City test database (address, what the middleware makes of it).
NGINX_READERS = [
    "2a02:d0c0::1",  # RU
    "2a02:d300::1",  # UA, no subdivision
    "81.2.69.142",  # GB-ENG
    "2.2.3.1",  # GB-ENG-WBK
    "89.160.20.112",  # SE-E
    "216.160.83.56",  # US-WA
    "214.78.120.1",  # US-CA
    "149.101.100.1",  # US, no subdivision
    "175.16.199.1",  # CN-22 (no ISO code: subdivision unknown)
    "214.0.1.1",  # AU-VIC
    "67.43.156.1",  # BT
    "214.0.0.1",  # SG
    "2.3.3.1",  # no country
    "10.1.2.3",  # a private address: unknown
]
# (country, regionCode) as Cloudflare reports them.
WORKER_READERS: list[tuple[str | None, str | None]] = [
    ("RU", None),
    ("UA", "43"),
    ("UA", None),
    ("GB", "ENG"),
    ("GB", "SCT"),
    ("GB", None),
    ("SE", "E"),
    ("US", "WA"),
    ("US", "CA"),
    ("US", "NY"),
    ("US", "ZZZ"),
    ("US", None),
    ("CN", "JL"),
    ("CN", None),
    ("AU", "VIC"),
    ("BT", None),
    ("BR", None),
    ("TW", None),
    ("CA", "QC"),
    ("XX", None),
    (None, None),
]

COUNTRIES = ["RU", "UA", "GB", "SE", "US", "CN", "AU", "BT", "SG", "BR", "TW", "CA", "BY"]
SUBDIVISIONS = ["UA-43", "GB-ENG", "GB-SCT", "GB-WBK", "SE-E", "US-CA", "US-WA", "US-NY"]
SUBDIVISIONS += ["CN-JL", "AU-VIC", "CA-QC"]
REGIONS = {
    "west": {"title": "west", "include": ["US-CA", "US-WA"]},
    "isles": {"title": "isles", "include": ["GB-ENG", "GB-SCT"], "exclude": ["GB-WBK"]},
    "isles-apply": {
        "title": "isles, unknown subdivision in",
        "include": ["GB-ENG", "GB-SCT"],
        "exclude": ["GB-WBK"],
        "unknown_subdivision": "apply",
    },
    "east": {"title": "east", "include": ["RU", "UA-43", "isles"]},
}

HOST_PATTERNS = [
    "www.example.org",
    "*.example.org",
    "news.example.*",
    "n?ws.example.org",
    "*",
    "**.example.net",
    "News.Example.ORG",
    "*-cdn.example.com",
    "xn--bcher-kva.example",
    "bücher.example",
    "a.*.example.net",
]
HOSTS = [
    "www.example.org",
    "WWW.Example.Org",
    "www.example.org.",
    "www.example.org:8080",
    "news.example.org",
    "nows.example.org",
    "news.example.com",
    "a-cdn.example.com",
    "example.org",
    "a.b.example.net",
    "a.b.c.example.net",
    "xn--bcher-kva.example",
    "XN--BCHER-KVA.example",
    "127.0.0.1",
    "News.Example.Org.:443",
    "[2001:db8::1]:8080",
    "a_b.example.org",
    "a-cdn.example.com.",
]
# Path segments: plain, with characters a URL escapes, with glob characters' neighbours.
SEGMENTS = ["news", "a", "b", "News", "x y", "a.b", "новости", "é", "100%", "~u", "a;b", "z"]
LOCALE_SETS = [
    ("en",),
    ("en", "fr"),
    ("en", "en_GB", "fr"),
    ("ru", "uk", "en"),
    ("de", "en", "sv"),
    ("pt", "pt_BR", "en"),
    ("zh_Hant", "zh_Hans", "en"),
    ("es", "en"),
    ("cy", "en"),
    ("fr", "fr_CA", "de"),
    ("sr", "sr_Latn", "en"),
    ("en", "en_US", "en_GB"),
    ("es", "es_419", "es_MX"),
    ("nb", "nn", "en"),
    ("be", "ru", "uk"),
    ("zh", "zh_Hant_HK", "en"),
]
# Language ranges as browsers send them. Left out on purpose (owned elsewhere or documented
# limits): `Q=`, q above 1, extensions and variants (`de-u-co-phonebk`, `en-GB-oxendict`),
# unknown regions (`en-XY`) and scripts babel drops (`ru-Latn`) for nginx.
RANGES = ["en", "en-GB", "en-US", "fr", "fr-CA", "fr-FR", "de", "de-AT", "ru", "ru-RU", "uk"]
RANGES += ["pt", "pt-BR", "pt-PT", "zh", "zh-TW", "zh-CN", "zh-Hant", "zh-Hans-CN", "zh-HK"]
RANGES += ["sv", "sv-FI", "es", "es-419", "es-MX", "cy", "EN-gb", "en_GB", "PT-br", "ja", "*"]
RANGES += ["sr", "sr-Latn", "sr-Cyrl-RS", "sr-RS", "nb", "no", "nn-NO", "zh-Hant-TW", "zh-SG"]
RANGES += ["en-001", "es-AR", "be", "be-BY", "zh-Hant-HK", "zh-MO", "en-CA", "fr-BE"]
RANGES += ["iw", "rus", "eng", "nob", "sh"]
CONTENT_LANGUAGES = [None, None, None, "fr", "en-GB", "pt-br", "de, en", "ru", "zh-Hant", "xx"]
CONTENT_LANGUAGES += [" fr ", "EN_gb", "zh-TW", "fr-CA", "*", "en-US, fr", ""]
TAGS = [None, None, "politics", "sport, politics", " politics ,x", "sport", "Politics"]
TAGS += ["politics,,", ",politics", "\tpolitics\t", "x, sport", ""]
CACHE_CONTROLS = [None, None, "public, max-age=60", "max-age=5, s-maxage=10", "no-store"]
CACHE_CONTROLS += ["Private", "s-maxage=5,public", "max-age=0, must-revalidate", ""]
CONTENT_TYPES = [None, None, None, "text/html", "TEXT/HTML; charset=UTF-8", "text/plain"]
CONTENT_TYPES += [
    "application/xhtml+xml; charset=utf-8",
    "text/html;charset=utf-8",
    "application/json",
]


def _code(rng: random.Random, regions: bool = True) -> str:
    pool = COUNTRIES + SUBDIVISIONS + (list(REGIONS) if regions else [])
    return rng.choice(pool)


def _path_pattern(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.5:
            parts.append(rng.choice(SEGMENTS))
        elif kind < 0.65:
            parts.append("*")
        elif kind < 0.75:
            parts.append("**")
        elif kind < 0.85:
            parts.append(rng.choice(SEGMENTS)[:1] + "*")
        else:
            parts.append("?" + rng.choice(SEGMENTS)[1:])
    pattern = "/" + "/".join(parts)
    ending = rng.random()
    if ending < 0.25:
        pattern += "/**"
    elif ending < 0.35:
        pattern += "/"
    return pattern


def _texts(rng: random.Random, rule_id: str) -> dict[str, Any]:
    options = rng.choice(LOCALE_SETS)
    texts = {locale: f"{rule_id} in {locale}: «{rng.randint(0, 99)}» & $x." for locale in options}
    return {"default_locale": rng.choice(options), "text": texts}


def _effective(rng: random.Random, today: dt.date) -> dict[str, str] | None:
    roll = rng.random()
    day = dt.timedelta(days=1)
    if roll < 0.7:
        return None
    choices = [
        {"from": (today - 30 * day).isoformat()},
        {"from": today.isoformat()},
        {"from": (today + day).isoformat()},
        {"until": (today + 10 * day).isoformat()},
        {"until": today.isoformat()},
        {"from": "2020-01-01", "until": (today + day).isoformat()},
    ]
    return rng.choice(choices)


def rule_set(seed: int, *, target: str, today: dt.date | None = None) -> dict[str, Any]:
    """A rule file (as a mapping) of 1 to 6 rules within what ``target`` expresses."""
    rng = random.Random(seed)
    today = today or dt.datetime.now(dt.UTC).date()
    rules = []
    for number in range(rng.randint(1, 6)):
        rule_id = f"r{number}"
        rule: dict[str, Any] = {"id": rule_id, "title": rule_id}
        if rng.random() < 0.2:
            rule["jurisdictions"] = ["*"]
        else:
            rule["jurisdictions"] = sorted({_code(rng) for _ in range(rng.randint(1, 3))})
        if rng.random() < 0.3:
            rule["exclude"] = sorted({_code(rng) for _ in range(rng.randint(1, 2))})
        if rng.random() < 0.3:
            rule["unknown_location"] = "apply"
        if rng.random() < 0.3:
            rule["unknown_subdivision"] = "apply"
        if rng.random() < 0.4:
            rule["hosts"] = sorted({rng.choice(HOST_PATTERNS) for _ in range(rng.randint(1, 2))})
        if rng.random() < 0.6:
            rule["paths"] = sorted({_path_pattern(rng) for _ in range(rng.randint(1, 2))})
        if rng.random() < 0.25:
            rule["exclude_paths"] = [_path_pattern(rng)]
        effective = _effective(rng, today)
        if effective:
            rule["effective"] = effective
        if rng.random() < 0.15:
            rule["priority"] = rng.randint(0, 20)
        kind = rng.random()
        tagged = rng.random() < 0.2
        if kind < 0.25 and not (tagged and target == "nginx"):
            rule["block"] = {"blocked_by": f"https://regulator.example.gov/{rule_id}"}
            rule["block"].update(_texts(rng, rule_id))
        elif kind < 0.85 or rng.random() < 0.5:
            placement = rng.choice(
                ["body_start", "body_end", "body_end", "marker", "after_heading"]
            )
            rule["notice"] = {"placement": placement, **_texts(rng, rule_id)}
        if tagged:
            rule["tags"] = rng.sample(["politics", "sport", "x"], rng.randint(1, 2))
        if rng.random() < 0.3 or ("notice" not in rule and "block" not in rule):
            names = rng.sample(["X-Law", "X-Other", "X-Law-Two"], rng.randint(1, 2))
            rule["headers"] = {name: f"{rule_id}-{name.lower()}" for name in names}
        rules.append(rule)
    return {"version": 1, "regions": REGIONS, "rules": rules}


# -- requests ---------------------------------------------------------------------------------

_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]")


def _encode(text: str, rng: random.Random, *, escape_plain: float) -> str:
    """``text`` as a client might send it: non-ASCII and spaces escaped (as UTF-8, hex in
    either case), other characters escaped now and then."""
    out = []
    for char in text:
        if char == "/" or (_UNRESERVED.match(char) and rng.random() >= escape_plain):
            out.append(char)
            continue
        if char in "!$&'()*+,;=:@" and rng.random() >= escape_plain:
            out.append(char)
            continue
        for byte in char.encode("utf-8"):
            escape = f"%{byte:02X}"
            out.append(escape.lower() if rng.random() < 0.3 else escape)
    return "".join(out)


def _instance(pattern: str, rng: random.Random) -> str:
    """A path the glob ``pattern`` matches, or nearly does."""
    out = []
    for token in re.split(r"(\*+|\?)", pattern):
        if token.startswith("**"):
            out.append(rng.choice(["", "q", "q/r", "/", "é/x"]))
        elif token.startswith("*"):
            out.append(rng.choice(["", "q", "qq", "é", "a.b"]))
        elif token == "?":
            out.append(rng.choice(["w", "é", "€", "😀", "/"]))
        else:
            out.append(token)
    return "".join(out)


def _mutate(path: str, rng: random.Random) -> str:
    """Dot segments, doubled slashes, case, trailing slashes."""
    roll = rng.random()
    if roll < 0.1:
        path = path.rstrip("/") + "/" if not path.endswith("/") else path.rstrip("/") or "/"
    elif roll < 0.2:
        cut = path.rfind("/")
        path = path[:cut] + "/./" + path[cut + 1 :] if cut >= 0 else path
    elif roll < 0.3:
        path = path + rng.choice(["/.", "/..", "/./", "/../", "/x/..", "/x/../"])
    elif roll < 0.37:
        path = path.replace("/", "//", 1)
    elif roll < 0.44:
        path = path.upper() if rng.random() < 0.5 else path.lower()
    elif roll < 0.5:
        path = "/x/.." + path
    return path


def request_path(rules: Sequence[dict[str, Any]], rng: random.Random) -> str:
    patterns = [p for rule in rules for p in rule.get("paths", []) + rule.get("exclude_paths", [])]
    if patterns and rng.random() < 0.8:
        path = _instance(rng.choice(patterns), rng)
    else:
        path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 3)))
    path = _mutate(path, rng)
    raw = _encode(path, rng, escape_plain=0.05 if rng.random() < 0.3 else 0.0)
    if rng.random() < 0.1:
        raw = raw.replace(".", rng.choice(["%2e", "%2E"]))
    if rng.random() < 0.05:
        raw = raw.replace("/", "%2F", 1) if raw.count("/") > 1 else raw
    if rng.random() < 0.1:
        raw += "?q=/news/" + rng.choice(["", "a", "%2e%2e"])
    return raw if raw.startswith("/") else "/" + raw


def accept_language(rng: random.Random, *, ordered: bool) -> str | None:
    """A header of ranges; ``ordered``: q-values never increase and at most 8 ranges (as
    browsers send them, within what the nginx export reads like the library)."""
    if rng.random() < 0.15:
        return None
    count = rng.randint(1, 5) if ordered or rng.random() < 0.8 else rng.randint(6, 20)
    weights = [rng.choice([1, 1, 0.9, 0.8, 0.5, 0.25, 0.1, 0.001]) for _ in range(count)]
    weights.sort(reverse=True)
    if not ordered:
        rng.shuffle(weights)
    items = []
    for weight in weights:
        tag = rng.choice(RANGES)
        if rng.random() < 0.08:
            zero = rng.choice(["0", "0.0", "0.000", ".0"])
            items.append(f"{tag};q={zero}")
        elif weight == 1 and rng.random() < 0.7:
            items.append(
                tag if rng.random() < 0.9 else f"{tag};q={rng.choice(['1', '1.0', '1.000'])}"
            )
        else:
            text = f"{weight:g}" if rng.random() < 0.8 else f"{weight:.3f}"
            if text.startswith("0.") and rng.random() < 0.2:
                text = text[1:]
            separator = rng.choice([";", "; ", " ;", "\t;"])
            items.append(f"{tag}{separator}q={text}")
        if rng.random() < 0.05:
            items.append(rng.choice(["", " ", "x" * 50, "1a", "en-", "-en"]))
    return rng.choice([",", ", ", " , ", ",\t"]).join(items)


@dataclass(frozen=True)
class Request:
    path: str
    host: str
    reader: Any
    headers: tuple[tuple[str, str], ...]
    """Request headers (besides Host), including the origin's instructions."""
    method: str = "GET"


def requests(
    rules: Sequence[dict[str, Any]], seed: int, count: int, *, target: str
) -> list[Request]:
    rng = random.Random(seed * 7919 + 1)
    readers: Sequence[Any] = NGINX_READERS if target == "nginx" else WORKER_READERS
    out = []
    for _ in range(count):
        headers = [("Accept", "*/*")]
        language = accept_language(rng, ordered=target == "nginx")
        if language is not None:
            headers.append(("Accept-Language", language))
        for name, pool in (
            ("X-Origin-Content-Language", CONTENT_LANGUAGES),
            ("X-Origin-Tags", TAGS),
            ("X-Origin-Cache-Control", CACHE_CONTROLS),
        ):
            value = rng.choice(pool)
            if value is not None:
                headers.append((name, value))
        if rng.random() < 0.1:
            # Not 206: the exports clear Range where a notice may go, and the library's fail mode
            # for a range it did not ask for (private) is not the edge's to copy.
            headers.append(("X-Origin-Status", rng.choice(["404", "204", "500", "301"])))
        kind = rng.choice(CONTENT_TYPES)
        if kind is not None:
            headers.append(("X-Origin-Type", kind))
        if rng.random() < 0.05:
            headers.append(("X-Origin-Skip", "1"))
        if rng.random() < 0.05:
            headers.append(("Range", "bytes=0-10"))
        if target == "cloudflare" and rng.random() < 0.1:
            headers[0] = (
                "Accept",
                rng.choice(["application/json", "text/html;q=0.5, application/json"]),
            )
        if target == "cloudflare" and rng.random() < 0.2:
            # Pages nginx reads differently, as its README says (no `</head>`: no body_start;
            # no marker or heading: no fallback; `<html lang>` unread).
            headers.append(
                ("X-Origin-Page", rng.choice(["nohead", "plain", "lang-fr", "lang-en-GB"]))
            )
        method = "HEAD" if rng.random() < 0.05 else "GET"
        out.append(
            Request(
                request_path(rules, rng),
                rng.choice(HOSTS),
                rng.choice(readers),
                tuple(headers),
                method,
            )
        )
    return out


# -- the origin -------------------------------------------------------------------------------

PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Origin</title></head>'
    "<body><h1>Headline</h1><!-- compliance:notices --><p>Article text.</p></body></html>"
)


def origin_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """An origin told by the request what to answer (X-Origin-*), the same for every engine."""
    status = environ.get("HTTP_X_ORIGIN_STATUS", "200")
    reasons = {"200": "OK", "404": "Not Found", "204": "No Content", "500": "Error", "301": "Moved"}
    reasons["206"] = "Partial Content"
    headers = [("Content-Type", environ.get("HTTP_X_ORIGIN_TYPE", "text/html; charset=utf-8"))]
    if "HTTP_X_ORIGIN_SKIP" in environ:
        headers.append(("X-Compliance-Skip", "1"))
    for key, name in (
        ("HTTP_X_ORIGIN_CONTENT_LANGUAGE", "Content-Language"),
        ("HTTP_X_ORIGIN_TAGS", "X-Compliance-Tags"),
        ("HTTP_X_ORIGIN_CACHE_CONTROL", "Cache-Control"),
    ):
        if key in environ:
            headers.append((name, environ[key]))
    if status == "301":
        headers.append(("Location", "/"))
    if status == "206":
        headers.append(("Content-Range", f"bytes 0-{len(PAGE) - 1}/{len(PAGE)}"))
    page = PAGE
    shape = environ.get("HTTP_X_ORIGIN_PAGE", "")
    if shape == "nohead":
        page = page.replace("</head>", "")
    elif shape == "plain":
        page = page.replace("<h1>Headline</h1><!-- compliance:notices -->", "")
    elif shape.startswith("lang-"):
        page = page.replace("<html>", f'<html lang="{shape[5:]}">')
    data = b"" if status == "204" else page.encode("utf-8")
    headers.append(("Content-Length", str(len(data))))
    start_response(f"{status} {reasons[status]}", headers)
    return [data]


# -- answers ----------------------------------------------------------------------------------

NOTICE = re.compile(
    r'<aside class="compliance-notice" data-compliance-rule="([^"]+)" lang="([^"]+)"'
)
MARKUP = re.compile(r'<aside class="compliance-notice".*?</aside>', re.DOTALL)
REFERENCE = re.compile(r"&#([0-9]+);")
COMPARED_HEADERS = ("vary", "cache-control", "link", "x-law", "x-other", "x-law-two")
COMPARED_HEADERS += ("cdn-cache-control", "x-compliance-tags", "x-compliance-skip", "content-type")
COMPARED_HEADERS += ("content-range",)


@dataclass(frozen=True)
class Answer:
    status: int
    notices: tuple[tuple[str, str], ...]
    markup: tuple[str, ...]
    block: str | None
    headers: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def of(cls, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> Answer:
        text = body.decode("utf-8", "replace")
        block = re.search(r'class="compliance-block" data-compliance-rule="([^"]+)"', text)
        found = []
        for name in (*COMPARED_HEADERS, "content-language"):
            # The page's own Content-Language passes through: compared on a block only.
            values = [v for k, v in headers if k.lower() == name]
            if name == "content-language" and status != 451:
                values = []
            items = frozenset(v.strip().lower() for v in ",".join(values).split(",") if v.strip())
            found.append((name, items))
        return cls(
            status,
            tuple(NOTICE.findall(text)),
            tuple(REFERENCE.sub(lambda m: chr(int(m.group(1))), m) for m in MARKUP.findall(text)),
            block.group(1) if block else None,
            tuple(found),
        )

    def differences(self, other: Answer) -> list[str]:
        out = []
        for name in ("status", "notices", "block", "markup"):
            if getattr(self, name) != getattr(other, name):
                out.append(f"{name}: {getattr(self, name)!r} != {getattr(other, name)!r}")
        for (name, mine), (_, theirs) in zip(self.headers, other.headers, strict=True):
            if mine != theirs:
                out.append(f"{name}: {sorted(mine)} != {sorted(theirs)}")
        return out


class Client:
    """One keep-alive connection to an engine, sending paths and headers exactly."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)

    def get(
        self, path: str, host: str, headers: Sequence[tuple[str, str]], method: str = "GET"
    ) -> Answer:
        for attempt in range(2):
            try:
                self.connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                self.connection.putheader("Host", host)
                for name, value in headers:
                    self.connection.putheader(name, value.encode("utf-8"))
                self.connection.endheaders()
                response = self.connection.getresponse()
                body = response.read()
                return Answer.of(response.status, response.getheaders(), body)
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def library_answer(
    app: Any, request: Request, peer: str, extra: Sequence[tuple[str, str]]
) -> Answer:
    from compliance.testing import call_wsgi, wsgi_environ

    headers = [("Host", request.host), *request.headers, *extra]
    environ = wsgi_environ(
        request.path.partition("?")[0], peer=peer, headers=headers, method=request.method
    )
    environ["RAW_URI"] = request.path
    environ["QUERY_STRING"] = request.path.partition("?")[2]
    response = call_wsgi(app, environ)
    # A server sends no body for a HEAD (the library edits the one the origin sends, as the
    # GET's, for the GET's headers).
    body = b"" if request.method == "HEAD" else response.body
    return Answer.of(response.status, response.headers, body)


@dataclass
class Mismatch:
    seed: int
    request: Request
    differences: list[str]
    rules: dict[str, Any] = field(repr=False, default_factory=dict)

    def __str__(self) -> str:
        r = self.request
        return (
            f"seed {self.seed}: {r.method} {r.path} Host: {r.host} reader {r.reader} "
            f"{dict(r.headers)}\n    " + "\n    ".join(self.differences)
        )


def write_rules(rules: dict[str, Any], directory: Path) -> Path:
    path = directory / "generated.yaml"
    path.write_text(json.dumps(rules, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def run_seed(
    target: str,
    seed: int,
    count: int,
    directory: Path,
    start: Callable[[Path, Path], Iterator[Any]],
    city: Path,
) -> tuple[int, list[Mismatch]]:
    """Export rule set ``seed`` for ``target``, start the engine (``start(work, export)``),
    and compare ``count`` requests. Returns (requests compared, mismatches): nginx refuses
    a request line whose ``..`` climbs above the root, which is then not compared."""
    from compliance import Engine
    from compliance.export import export_cloudflare, export_nginx, write_export
    from compliance.testing import FixedGeolocator
    from compliance.wsgi import ComplianceMiddleware

    rules = rule_set(seed, target=target)
    work = directory / f"{target}-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    rule_file = write_rules(rules, work)
    export_dir = work / "export"
    if target == "nginx":
        export = export_nginx([rule_file], geoip_db=city)
        engine = Engine.from_paths([rule_file], geoip_db=city)
        app = ComplianceMiddleware(origin_app, engine, trusted_proxies=["127.0.0.1"])
    else:
        export = export_cloudflare([rule_file])
        located = {peer(i): cf_location(c, r) for i, (c, r) in enumerate(WORKER_READERS)}
        engine = Engine.from_paths([rule_file], geolocator=FixedGeolocator(located))
        app = ComplianceMiddleware(origin_app, engine)
    # marker and after_heading lose only their fallback in nginx (the origin's page has both).
    left_out = [str(o) for o in export.omissions if "without the fallback" not in o.consequence]
    assert not left_out, left_out
    write_export(export, export_dir)
    mismatches = []
    compared = 0
    cases = requests(rules["rules"], seed, count, target=target)
    try:
        for server in start(work, export_dir):
            client = Client(int(server.url.rsplit(":", 1)[1]))
            try:
                for request in cases:
                    if target == "nginx":
                        extra = [("X-Forwarded-For", request.reader)]
                        expected = library_answer(app, request, "127.0.0.1", extra)
                    else:
                        index = WORKER_READERS.index(request.reader)
                        extra = [("cf-blob", cf_blob(*request.reader))]
                        expected = library_answer(app, request, peer(index), [])
                    got = client.get(
                        request.path, request.host, [*request.headers, *extra], request.method
                    )
                    if target == "nginx" and got.status == 400 and expected.status != 400:
                        continue  # nginx refuses the request line (`/..` above the root)
                    compared += 1
                    differences = expected.differences(got)
                    if differences:
                        mismatches.append(Mismatch(seed, request, differences, rules))
            finally:
                client.close()
    finally:
        engine.close()
    return compared, mismatches


def peer(index: int) -> str:
    return f"192.0.2.{index + 1}"


def cf_location(country: str | None, region: str | None) -> Any:
    """The library's location for what Cloudflare reports (XX: unknown; a region code that
    is not ISO 3166-2: subdivision unknown)."""
    from compliance.errors import ConfigurationError
    from compliance.geo import Location

    if country is None or country == "XX":
        return Location()
    try:
        return Location.of(country, *([region] if region else []))
    except ConfigurationError:
        return Location.of(country)


def cf_blob(country: str | None, region: str | None) -> str:
    blob = {}
    if country is not None:
        blob["country"] = country
    if region is not None:
        blob["regionCode"] = region
    return json.dumps(blob)


def main() -> None:  # pragma: no cover - the local campaign
    import argparse
    import tempfile
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=["nginx", "cloudflare"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--show", type=int, default=20)
    parser.add_argument("--skip", default=None, help="leave out mismatches whose path matches")
    args = parser.parse_args()
    import harness  # this file's directory is the script's first import path

    city = Path(__file__).parents[2] / ".." / "shared" / "geoip-test-data" / "GeoIP2-City-Test.mmdb"
    total = 0
    found: list[Mismatch] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for origin in harness.serve(origin_app):

            def start(work: Path, export_dir: Path, origin: Any = origin) -> Iterator[Any]:
                if args.target == "nginx":
                    return harness.start_nginx(work, export_dir, origin.port)
                return harness.start_workerd(work, export_dir, origin.url)

            for seed in range(args.seed, args.seed + args.seeds):
                try:
                    count, mismatches = run_seed(
                        args.target, seed, args.requests, Path(tmp), start, city
                    )
                except Exception as error:
                    print(f"seed {seed}: {type(error).__name__}: {error}"[:2000])
                    continue
                total += count
                found.extend(mismatches)
    seconds = time.monotonic() - began
    print(f"{args.target}: {total} requests, {len(found)} mismatches, {seconds:.1f} s")
    if args.skip:
        found = [m for m in found if not re.search(args.skip, m.request.path)]
        print(f"{len(found)} mismatches left once --skip")
    for mismatch in found[: args.show]:
        print(mismatch)


if __name__ == "__main__":
    main()

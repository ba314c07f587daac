"""``compliance export cloudflare``: one self-contained ES-module Worker.

The Worker carries the rules as data and a small interpreter (``worker.js`` beside this
module): it reads ``request.cf.country``/``regionCode``, evaluates effective dates at request
time, fetches the origin (``fetch(request)``, or the ``ORIGIN`` text binding's base URL when
set), reads content tags from the origin's ``X-Compliance-Tags`` and edits HTML with
``HTMLRewriter``. Notice and block markup is rendered here, by the library, in every locale.
"""

from __future__ import annotations

import functools
import string
from html.entities import html5
from importlib import resources
from typing import Any

import webencodings

from compliance import __about__
from compliance import core as _core
from compliance import engine as _engine
from compliance import http as _http
from compliance.geo import is_iso_country
from compliance.geo import location as _location
from compliance.html.charset import UNSUPPORTED, lookup
from compliance.html.injector import HEAD_ELEMENTS
from compliance.html.placements import CLOSE_P_FROM_OUTSIDE, CLOSE_P_STARTS, HEADING_TAGS
from compliance.html.tokenizer import CLOSES_P, RAW_TEXT, VOID

from . import Export
from .plan import (
    PLACEMENTS,
    EdgePlan,
    LocaleTable,
    Omission,
    accept_language_limits,
    as_json,
    known_scripts,
)

__all__ = ["render_cloudflare"]

COMPATIBILITY_DATE = "2024-09-23"
"""The Workers compatibility date the generated Worker is written and tested for."""


@functools.lru_cache(maxsize=1)
def _template() -> str:
    return resources.files(__package__).joinpath("worker.js").read_text(encoding="utf-8")


def _names(names: frozenset[bytes]) -> list[str]:
    return sorted(name.decode("ascii") for name in names)


def _subdivisions_of(countries: set[str]) -> dict[str, list[str]]:
    import pycountry

    out: dict[str, list[str]] = {}
    for country in sorted(countries):
        found = pycountry.subdivisions.get(country_code=country)  # type: ignore[no-untyped-call]
        out[country] = sorted(s.code for s in (found or ()))
    return out


def _parents_of(known: dict[str, list[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for codes in known.values():
        for code in codes:
            chain = _location.with_parents(code)
            if len(chain) > 1:
                out[code] = chain[-2]
    return out


def worker_data(plan: EdgePlan) -> dict[str, Any]:
    """The rules as the Worker's ``DATA`` constant."""
    tables: list[LocaleTable] = []
    index: dict[tuple[tuple[str, ...], str], int] = {}

    def table_index(table: LocaleTable) -> int:
        if table.key not in index:
            index[table.key] = len(tables)
            tables.append(table)
        return index[table.key]

    rules = []
    for rule in plan.rules:
        notice = None
        if rule.notice is not None:
            notice = {
                "placement": rule.notice.placement,
                "locales": table_index(rule.notice.table),
                "html": dict(rule.notice.html),
            }
        block = None
        if rule.block is not None:
            block = {
                "status": rule.block.status,
                "link": rule.block.link,
                "locales": table_index(rule.block.table),
                "page": dict(rule.block.page),
                "json": dict(rule.block.json),
            }
        rules.append(
            {
                "id": rule.id,
                "jurisdictions": list(rule.jurisdictions),
                "exclude": list(rule.exclude),
                "unknownLocation": rule.unknown_location,
                "unknownSubdivision": rule.unknown_subdivision,
                "from": rule.start.isoformat() if rule.start else None,
                "until": rule.until.isoformat() if rule.until else None,
                "hosts": list(rule.hosts) or None,
                "paths": list(rule.paths) or None,
                "excludePaths": list(rule.exclude_paths) or None,
                "tags": list(rule.tags),
                "notice": notice,
                "block": block,
                "headers": [list(pair) for pair in rule.headers],
                "withhold": rule.withhold,
            }
        )
    countries = {code.partition("-")[0] for code in plan.codes() if "-" in code}
    known = _subdivisions_of(countries)
    return {
        "generator": f"compliance {__about__.__version__}",
        "rules": rules,
        "regions": {
            name: {
                "include": list(region.include),
                "exclude": list(region.exclude),
                "unknownSubdivision": region.unknown_subdivision,
            }
            for name, region in plan.regions.items()
        },
        "locales": [
            {
                "options": list(table.options),
                "default": table.default,
                "tags": dict(table.tags),
                "countries": {c: list(v) for c, v in table.countries.items()},
                "regional": {c: dict(v) for c, v in table.regional.items()},
                "variants": dict(table.variants),
                "regionalVariants": {c: dict(v) for c, v in table.regional_variants.items()},
                "scripts": {
                    language: list(known_scripts(language))
                    for language in sorted({tag.split("-")[0] for tag in table.tags})
                },
            }
            for table in tables
        ],
        "knownSubdivisions": known,
        # The subdivision that holds each one held by another (IT-RM in IT-62), so that a
        # region comes with the larger ones that hold it, as the library places a reader.
        "subdivisionParents": _parents_of(known),
        # The region values that mean "no region", as the library reads a CDN's header.
        "regionPlaceholders": sorted(_location._PLACEHOLDERS),
        # The codes the library reads as a country (ISO 3166-1, and XK): any other value
        # (EU, AP, ZZ, XX, T1, an unassigned code) is an unknown location, as there.
        "countries": [
            a + b
            for a in string.ascii_uppercase
            for b in string.ascii_uppercase
            if is_iso_country(a + b)
        ],
        "acceptLanguage": accept_language_limits(),
        "locationSensitive": plan.location_sensitive,
        # Longer paths are fail-safe: path rules match, exclusions do not.
        "maxPath": int(getattr(_engine, "MAX_PATH", getattr(_http, "MAX_PATH", 1 << 30))),
        "maxHost": _http.MAX_HOST,
        "tagged": any(rule.tags for rule in plan.rules),
        # The library's variant tags (compliance.http): the mark before a variant's name,
        # and the flags after it, in the order a reader's tags say one when they carry several.
        "variantTags": {"mark": _http._VARIANT_MARK, "flags": list(_http.VARIANT_FLAGS)},
        # Sec-Fetch-Dest values of what a browser never shows as a page: such a request
        # goes to the origin as the reader sent it, as the library hands it on.
        "subresources": sorted(_core._SUBRESOURCES),
        # The length up to which the middleware reads a page whole before its headers go
        # out (its default `buffer_limit`): a coded page cut short within it goes unedited.
        "bufferLimit": _core.Settings.buffer_limit,
        "placements": list(PLACEMENTS),
        # Elements without content (no end tag): nothing in them can be hidden.
        "void": sorted(name.decode("ascii") for name in VOID),
        # Start tags that stay in the head before the body (any other opens the body).
        "headElements": sorted(name.decode("ascii") for name in HEAD_ELEMENTS),
        # Start tags that close an open paragraph (the marker's notice waits for its end).
        "closesParagraph": sorted(name.decode("ascii") for name in CLOSE_P_STARTS),
        # End tags that close it where their element is open around it, in scope.
        "closesParagraphFromOutside": _names(CLOSE_P_FROM_OUTSIDE),
        # How the library reads a heading's content to where the heading closes
        # (after_heading): its element sets, and the tokenizer's.
        "heading": {
            **{key: _names(names) for key, names in HEADING_TAGS.items()},
            "closesP": _names(CLOSES_P),
            "rawText": _names(RAW_TEXT | {b"script"}),
        },
        # The named character references for ASCII characters, as the library decodes them
        # in <html lang> (the others make no language tag).
        "entities": {name: text for name, text in sorted(html5.items()) if text.isascii()},
        # Charset labels the library reads as UTF-8, and as encodings it cannot edit.
        "charsets": {
            "utf8": sorted(label for label in webencodings.LABELS if lookup(label) == "utf-8"),
            "uneditable": sorted(
                label for label in webencodings.LABELS if lookup(label) == UNSUPPORTED
            ),
        },
    }


def _wrangler(name: str) -> str:
    return f"""# Generated by `compliance export cloudflare`: the Worker that adds legal notices.
name = "{name}"
main = "worker.mjs"
compatibility_date = "{COMPATIBILITY_DATE}"

# Route the pages that need notices through the Worker, e.g.:
# routes = [{{ pattern = "www.example.org/*", zone_name = "example.org" }}]

# For staging and tests only: fetch this origin instead of the request's own URL.
# [vars]
# ORIGIN = "https://origin.example.org"
"""


def render_cloudflare(plan: EdgePlan, *, name: str = "compliance-edge") -> Export:
    """The Worker, its ``wrangler.toml`` and a README for ``plan``."""
    data = as_json(worker_data(plan)).replace("</", "<\\/").replace("\u2028", "\\u2028")
    data = data.replace("\u2029", "\\u2029")
    worker = _template().replace("/*DATA*/", data, 1)
    plan.limits.extend(
        [
            "Locations come from `request.cf`: the country, and one subdivision "
            "(`regionCode`, the first level of ISO 3166-2). A rule naming a second-level "
            "subdivision matches only readers Cloudflare places there at the first level.",
            "HTML responses that get notices are read whole before they are edited (to see "
            "whether the origin already put notices in, where the marker is and where the "
            "heading closes).",
            "A brotli page is read only as the runtime decodes it, under `Content-Encoding: "
            "br` spelled so: spelled otherwise (`Br`) it goes as it came (the fail mode), "
            "where the library edits it.",
            "A numeric region code that the library reads as a country's (`en-826` as "
            "en-GB, babel's aliases of UN M.49 codes) matches nothing here: the next "
            "language range decides.",
            "The page's `<html lang>` is read from the `<html>` tags before its `<body>` "
            "tag, past comments and raw text (the library stops where the body starts, "
            "which may come without its tag); a named character reference in it other than "
            "those of ASCII characters (`&amp;`, `&period;`...) makes it no language.",
        ]
    )
    readme = _readme(plan, name)
    return Export(
        "cloudflare",
        {"worker.mjs": worker, "wrangler.toml": _wrangler(name), "README.md": readme},
        list(plan.omissions),
    )


def _readme(plan: EdgePlan, name: str) -> str:
    rules = "\n".join(f"- `{rule.id}`" for rule in plan.rules) or "- (none)"
    omitted = _omissions(plan.omissions)
    limits = "\n".join(f"- {limit}" for limit in plan.limits)
    return f"""# Cloudflare Worker: legal notices at the edge

Generated by `compliance export cloudflare` ({__about__.__version__}). Do not edit these files;
regenerate them when the rules change and check them in CI with
`compliance export cloudflare ... --output DIR --check`.

## Deploy

    npx wrangler deploy            # reads wrangler.toml (name `{name}`, main `worker.mjs`)

The Worker fetches the origin with `fetch(request)`. With an `ORIGIN` text binding (a
`[vars]` entry in `wrangler.toml`) it fetches that base URL instead, keeping the path and
query: for staging and tests.

## What it does

- Decides from `request.cf.country` and `request.cf.regionCode` with the same rules, order
  and locales as the Python middleware; effective dates are evaluated at request time (UTC).
- Answers blocks itself (status, `Link: <...>; rel="blocked-by"`, HTML or JSON page).
- Sends `X-Compliance-Edge: cloudflare` to the origin, so an origin that also runs the
  middleware can tell that the edge handles the request (see the docs: `docs/edge.md`).
- Leaves alone an HTML response that already carries `class="compliance-notice"` markup, so
  edge and origin never both add notices.
- Reads content tags from the origin's `X-Compliance-Tags` (and removes the header).
- Adds no notices to a response the origin sends with `X-Compliance-Skip` (and removes the
  header); blocks and the rules' headers still apply.
- Adds `Vary: Accept-Language` when a notice's language was negotiated, `Cache-Control:
  private` on pages that depend on the reader's location, and the rules' own headers.

## Rules exported

{rules}

## Left out (not expressible on this target)

{omitted}

## Limits

{limits}
"""


def _omissions(omissions: list[Omission]) -> str:
    return "\n".join(f"- {item}" for item in omissions) or "- Nothing: every rule is exported."

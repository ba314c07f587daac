"""The rules as the edge sees them: one intermediate form that both exporters compile.

:func:`build_plan` reads a loaded rule set through the models and keeps, for every rule, only
what decides and what is shown, with the notice and block markup already rendered by the
library's own renderer in every locale (so the text at the edge is byte for byte the text the
middleware injects). Whatever a target cannot express is recorded as an :class:`Omission`,
never dropped in silence. Locale negotiation is turned into tables (:class:`LocaleTable`)
computed with the library's own :func:`~compliance.locales.choose_locale`, so the edge
looks answers up instead of re-implementing CLDR.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from babel import Locale
from babel.core import LOCALE_ALIASES, get_global, parse_locale

from compliance import engine as _engine
from compliance import http as _http
from compliance import locales as _locales
from compliance.html import placements as _placements
from compliance.locales import choose_locale, jurisdiction_locales, match_locale
from compliance.models import Block, Notice, Rule
from compliance.render import block_json, block_page, notice_html

__all__ = [
    "EdgeBlock",
    "EdgeNotice",
    "EdgePlan",
    "EdgeRule",
    "LocaleTable",
    "Omission",
    "Target",
    "build_plan",
    "location_matches",
]

Target = Literal["nginx", "cloudflare"]

# Fields that do not change what a reader gets (metadata, tests): nothing to export.
_METADATA_FIELDS = frozenset({"id", "title", "description", "tests", "sources", "review_by"})
# Fields both exporters compile.
_DECIDING_FIELDS = frozenset(
    {
        "jurisdictions",
        "exclude",
        "unknown_location",
        "unknown_subdivision",
        "effective",
        "hosts",
        "paths",
        "exclude_paths",
        "tags",
        "priority",
        "notice",
        "block",
        "headers",
    }
)
_MESSAGE_FIELDS = frozenset(
    {
        "variables",
        "default_locale",
        "text",
        "html",
        "placement",
        "status",
        "blocked_by",
        "original",
        "translations",
    }
)
_REGION_FIELDS = frozenset(
    {"title", "description", "include", "exclude", "unknown_subdivision", "sources", "review_by"}
)
PLACEMENTS = tuple(
    name
    for name in _placements.PLACEMENTS
    if name in ("body_start", "after_heading", "marker", "body_end")
)
"""Every placement the edge knows, in the library's order (its registry's): notices whose
place a page lacks go to the body start in this order."""


@dataclass(frozen=True)
class Omission:
    """Something in the rules that a target cannot express, and what the export did."""

    rule: str | None
    what: str
    consequence: str

    def __str__(self) -> str:
        where = f"rule {self.rule}: " if self.rule else ""
        return f"{where}{self.what} ({self.consequence})"


@dataclass(frozen=True)
class LocaleTable:
    """Negotiation among one set of locales, as lookups.

    ``tags`` maps every language tag (lower case, ``-``-separated) that the library would
    match to one of ``options`` to that option; ``countries`` gives, per country, the
    options its official languages pick, in CLDR's order; ``regional`` gives, per country,
    the tags without a region that the jurisdiction step reads otherwise there (a refused
    ``pt`` is ``pt_PT`` in Portugal, where ``tags`` has ``pt_BR``).
    """

    options: tuple[str, ...]
    default: str
    tags: Mapping[str, str]
    countries: Mapping[str, tuple[str, ...]]
    regional: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)
    """Tags with a variant subtag (``de-DE-1996``), which babel reads by their language and
    region only: ``language`` or ``language-region`` (lower case) to the option picked."""
    regional_variants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """``regional`` for tags with a variant subtag and no region."""

    @property
    def key(self) -> tuple[tuple[str, ...], str]:
        return self.options, self.default


@dataclass(frozen=True)
class EdgeNotice:
    placement: str
    table: LocaleTable
    html: Mapping[str, str]
    """The ``<aside class="compliance-notice">`` markup per locale."""


@dataclass(frozen=True)
class EdgeBlock:
    status: int
    blocked_by: str
    table: LocaleTable
    page: Mapping[str, str]
    """The complete 451 HTML page per locale."""
    json: Mapping[str, str]
    """The JSON explanation per locale."""

    @property
    def link(self) -> str:
        return f'<{_ascii_url(self.blocked_by)}>; rel="blocked-by"'


@dataclass(frozen=True)
class EdgeRule:
    id: str
    priority: int
    jurisdictions: tuple[str, ...]
    exclude: tuple[str, ...]
    unknown_location: str
    unknown_subdivision: str
    start: dt.date | None
    until: dt.date | None
    hosts: tuple[str, ...]
    paths: tuple[str, ...]
    exclude_paths: tuple[str, ...]
    tags: tuple[str, ...]
    notice: EdgeNotice | None
    block: EdgeBlock | None
    headers: tuple[tuple[str, str], ...]
    withhold: bool = False
    """The rule also withholds content (not exported): on a block, like a rule with a notice,
    it sends none of its headers unless its own block is answered."""

    def in_force(self, day: dt.date) -> bool:
        return (self.start is None or self.start <= day) and (
            self.until is None or day < self.until
        )


@dataclass(frozen=True)
class EdgeRegion:
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    unknown_subdivision: str | None


@dataclass
class EdgePlan:
    """Everything an exporter needs, in the order the library applies rules."""

    target: Target
    rules: list[EdgeRule]
    regions: dict[str, EdgeRegion]
    omissions: list[Omission] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    """Documented differences that do not leave anything out (for the README)."""
    location_sensitive: bool = True
    """Some rule depends on where the reader is: edited pages get ``Cache-Control: private``."""
    tables: dict[tuple[tuple[str, ...], str], LocaleTable] = field(default_factory=dict)

    def codes(self) -> set[str]:
        """Every plain country or subdivision code any rule or region names."""
        out: set[str] = set()
        for rule in self.rules:
            out.update(rule.jurisdictions, rule.exclude)
        for region in self.regions.values():
            out.update(region.include, region.exclude)
        return {code for code in out if code != "*" and code not in self.regions}


def _ascii_host_glob(pattern: str) -> str:
    """A host glob as the engine matches it (IDN labels in punycode)."""
    convert = getattr(_engine, "_ascii_host_glob", None)
    return str(convert(pattern)) if convert is not None else pattern.lower()


def _ascii_url(url: str) -> str:
    """A ``blocked_by`` URL as the engine sends it in ``Link`` (IDN host in punycode)."""
    convert = getattr(_engine, "_ascii_url", None)
    return str(convert(url)) if convert is not None else url


# -- locale tables ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _territories() -> tuple[str, ...]:
    return tuple(sorted(Locale("en").territories))


def _retired_territories() -> tuple[str, ...]:
    """Two-letter region codes ISO 3166 has retired, which babel reads as the code that
    replaced them (``en-UK`` is en-GB, ``de-DD`` de-DE, ``ru-SU`` ru-RU). (Numeric ones,
    ``en-826``, are left out: hundreds of rarely sent keys.)"""
    current = set(_territories())
    aliases = get_global("territory_aliases")
    return tuple(sorted(c for c in aliases if len(c) == 2 and c.isalpha() and c not in current))


@functools.lru_cache(maxsize=256)
def known_scripts(language: str) -> tuple[str, ...]:
    """Scripts CLDR has data for in ``language`` (lower case). babel drops any other script
    subtag when it parses a tag (``ru-Latn`` reads as ``ru``), so the edge does the same."""
    from babel import localedata

    scripts: set[str] = set()
    for identifier in localedata.locale_identifiers():
        parts = identifier.split("_")
        if parts[0] == language:
            scripts.update(p.lower() for p in parts[1:] if len(p) == 4 and p.isalpha())
    for key, value in get_global("likely_subtags").items():
        if key.split("_")[0] == language:
            for part in (*key.split("_")[1:], *value.split("_")[1:]):
                if len(part) == 4 and part.isalpha():
                    scripts.add(part.lower())
    return tuple(sorted(scripts))


_VARIANT_PLACEHOLDER = "1111"  # a variant subtag babel reads and CLDR has no locale for


def babel_reading(tag: str) -> tuple[str, bool] | None:
    """How babel reads ``tag`` (lower case, ``-``-separated, singletons already cut): the key
    to look it up by and whether it has a variant subtag, or None where babel reads no locale.

    Babel drops what follows ``@`` or ``.`` (POSIX modifiers and charsets), then takes a
    language, a script, a region and one variant subtag, each optional but the language, and
    nothing more (``babel.core.parse_locale``). A tag with a variant reads by its language
    and region only, unless the whole tag is one of the few CLDR locales with a variant,
    which match as the tag without it. The Worker's ``babelReading`` copies this reading.

    >>> babel_reading("de-de-1996"), babel_reading("sr-latn-rs"), babel_reading("de-de.utf")
    (('de-de', True), ('sr-latn-rs', False), ('de-de', False))
    >>> babel_reading("sl-rozaj-biske"), babel_reading("de-de-1606nict")
    (None, None)
    """
    if len(tag) > _locales.MAX_TAG:
        return None
    try:
        language, region, script, variant, *_ = parse_locale(tag.replace("-", "_"))
    except ValueError:
        return None
    kept = (language, region) if variant else (language, script, region)
    return "-".join(p for p in kept if p).lower(), bool(variant)


def without_unknown_script(tag: str) -> str:
    """``tag`` (lower case, ``-``) as babel reads it: a script it has no data for dropped.

    >>> without_unknown_script("ru-latn-ua"), without_unknown_script("sr-latn")
    ('ru-ua', 'sr-latn')
    """
    parts = tag.split("-")
    script = parts[1] if len(parts) > 1 else ""
    if len(script) == 4 and script.isalpha() and script not in known_scripts(parts[0]):
        return "-".join([parts[0], *parts[2:]])
    return tag


def _script(code: str) -> tuple[str, str] | None:
    """(language, script) of a locale, the script filled in from CLDR's likely subtags."""
    parsed = _locales.parse_locale(code)
    if parsed is None:
        return None
    language, script, _territory = _locales.maximize(parsed)
    return language, script


def _with_aliases(languages: set[str]) -> list[str]:
    """``languages`` and the codes the library matches as one of them (CLDR's aliases, ``iw``
    for ``he`` and ``rus`` for ``ru``, and babel's ``no`` for ``nb``), asked of the library's
    own :func:`~compliance.locales._same_language`, so the tables cover them too.

    >>> _with_aliases({"nb", "he"})
    ['he', 'heb', 'iw', 'nb', 'no', 'nob', 'nor']
    """
    same: Any = getattr(_locales, "_same_language", lambda language: language)
    wanted = {same(language) for language in languages}
    candidates = {c for c in (*get_global("language_aliases"), *LOCALE_ALIASES) if c.isalpha()}
    out = set(languages)
    out.update(c.lower() for c in candidates if same(c.lower()) in wanted)
    return sorted(out)


def _pick(options: tuple[str, ...], default: str, **reader: Any) -> tuple[str, str]:
    choice = choose_locale(options, default, **reader)
    return choice.locale, choice.reason


def locale_table(options: Sequence[str], default: str) -> LocaleTable:
    """The negotiation among ``options`` as lookups, asked of the library itself: every tag
    built from a language of the options, its scripts and every CLDR territory."""
    return _locale_table(tuple(options), default)


@functools.lru_cache(maxsize=256)
def _locale_table(opts: tuple[str, ...], default: str) -> LocaleTable:
    tags: dict[str, str] = {}
    variants: dict[str, str] = {}
    # Tags without a region, which a country may read otherwise: (key, tag asked, its table).
    bare: list[tuple[str, str, dict[str, str]]] = []
    if len(opts) > 1:
        # Every script babel knows in the language: it keeps one in a tag only where it has
        # data for that language, script and region, and drops it otherwise (en-Dsrt-001
        # reads as en-001), so the answer depends on the whole tag. Scripts it knows no data
        # for are always dropped (without_unknown_script). A tag with a variant subtag reads
        # by its language and region alone (babel takes the language's likely script): one
        # placeholder variant asks for them all.
        languages = _with_aliases({found[0] for found in filter(None, map(_script, opts))})
        territories = ("", *_territories(), *_retired_territories())
        for language in languages:
            for script in ("", *(s.title() for s in known_scripts(language))):
                for territory in territories:
                    key = "-".join(p for p in (language, script, territory) if p)
                    asked = [(key, key, tags)]
                    if not script:
                        asked.append((key, f"{key}-{_VARIANT_PLACEHOLDER}", variants))
                    for name, tag, table in asked:
                        locale, reason = _pick(opts, default, accept_language=tag)
                        if reason == "accept-language":
                            table[name.lower()] = locale
                            if not territory:
                                bare.append((name.lower(), tag, table))
    countries: dict[str, tuple[str, ...]] = {}
    regional: dict[str, dict[str, str]] = {}
    regional_variants: dict[str, dict[str, str]] = {}
    if len(opts) > 1:
        for territory in _territories():
            if not (len(territory) == 2 and territory.isalpha()):
                continue
            picked = jurisdiction_locales(opts, territory)
            if picked:
                countries[territory] = picked
        # A country reads a tag without a region otherwise only where an option is its own.
        own = {p.territory for p in map(_locales.parse_locale, opts) if p and p.territory}
        for territory in sorted(t for t in own if t in countries):
            for name, tag, table in bare:
                found = match_locale(tag, opts, region=territory)
                if found is not None and found != table[name]:
                    read = regional if table is tags else regional_variants
                    read.setdefault(territory, {})[name] = found
    return LocaleTable(opts, default, tags, countries, regional, variants, regional_variants)


def negotiate(
    table: LocaleTable,
    *,
    page_language: str | None = None,
    accept_language: str | None = None,
    country: str | None = None,
) -> str:
    """The library's choice computed from ``table`` the way the edge computes it (used by the
    tests to check a table against :func:`~compliance.locales.choose_locale`)."""
    if len(table.options) == 1:
        return table.options[0]
    if page_language:
        found = _lookup(table, page_language.strip())
        if found:
            return found
    preferred, refused, below = _locales.read_ranges(accept_language)
    for tag in preferred:
        if tag == "*":
            break
        found = _lookup(table, tag)
        if found:
            return found
    refused_options = {_lookup(table, t, country) for t in refused if t != "*"}
    lower = {_lookup(table, t, country) for t in below} | {_lookup(table, t) for t in below}
    countries = table.countries.get(country or "", ())
    for option in countries:
        if option not in refused_options and option not in lower:
            return option
    if table.default not in lower:
        return table.default
    for option in table.options:
        if option not in refused_options and option not in lower:
            return option
    for tag in preferred:
        if tag in below and (found := _lookup(table, tag)):
            return found
    for option in countries:
        if option not in refused_options:
            return option
    return table.default


def _lookup(table: LocaleTable, tag: str, country: str | None = None) -> str | None:
    """The option ``tag`` picks; as the jurisdiction step reads it in ``country`` if given."""
    if not tag.isascii():
        return None  # no language tag (BCP 47 tags are ASCII), as the library reads it
    reading = babel_reading(_locales.matched_range(tag.replace("_", "-").lower()))
    if reading is None:
        return None
    key, variant = reading
    tags, regional = (
        (table.variants, table.regional_variants) if variant else (table.tags, table.regional)
    )
    if not variant:
        key = without_unknown_script(key)
    found = regional.get(country or "", {}).get(key)
    return found if found is not None else tags.get(key)


def accept_language_limits() -> dict[str, Any]:
    """How the library reads ``Accept-Language`` (for the Worker's copy of the parser, and
    nginx's regular expressions): its bounds, its range grammar and RFC 9110's qvalue."""
    return {
        "header": _locales._MAX_HEADER,
        "items": _locales._MAX_ITEMS,
        "range": _locales._MAX_RANGE,
        "item": _locales._ITEM.pattern.replace("(?P<", "(?<"),
        "qvalue": _http.QVALUE,
        "maxTag": _locales.MAX_TAG,
    }


# -- locations --------------------------------------------------------------------------------


def location_matches(
    rule: EdgeRule,
    regions: Mapping[str, EdgeRegion],
    country: str | None,
    subdivisions: Sequence[str],
) -> bool:
    """Whether a reader at ``country``/``subdivisions`` is in the rule's jurisdictions
    (DESIGN section 2), unknown locations and subdivisions included."""
    if country is None:
        return rule.unknown_location == "apply"
    codes = frozenset((country, *subdivisions))

    def matches(code: str, apply: bool, depth: int) -> bool:
        if code == "*":
            return True
        region = regions.get(code)
        if region is not None:
            if depth > 32:
                return False
            if region.unknown_subdivision is not None:
                apply = region.unknown_subdivision == "apply"
            # An unknown subdivision never counts as being in an excluded one.
            return any(matches(c, apply, depth + 1) for c in region.include) and not any(
                matches(c, False, depth + 1) for c in region.exclude
            )
        if code in codes:
            return True
        return apply and not subdivisions and code[2:3] == "-" and code[:2] == country

    apply = rule.unknown_subdivision == "apply"
    return any(matches(c, apply, 0) for c in rule.jurisdictions) and not any(
        matches(c, False, 0) for c in rule.exclude
    )


# -- building the plan ------------------------------------------------------------------------


def _set_fields(model: Any) -> set[str]:
    """Fields given a value other than their default (so new, unknown fields show up)."""
    out = set()
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, None)
        default = info.get_default(call_default_factory=True)
        if value != default:
            out.add(name)
    return out


def _render_all(
    rule_id: str, message: Notice | Block, variables: Mapping[str, Any], kind: str
) -> dict[str, str]:
    out = {}
    for locale in message.texts:
        if kind == "notice":
            out[locale] = notice_html(rule_id, message, locale, variables)
        elif kind == "page":
            assert isinstance(message, Block)
            out[locale] = block_page(rule_id, message, locale, variables)
        else:
            assert isinstance(message, Block)
            out[locale] = block_json(rule_id, message, locale, variables)
    return out


def build_plan(
    rules: Sequence[Rule],
    regions: Mapping[str, Any],
    *,
    target: Target,
    variables: Mapping[str, Any] | None = None,
) -> EdgePlan:
    """The exportable form of ``rules`` (in the library's order: priority, then id)."""
    variables = variables or {}
    plan = EdgePlan(target=target, rules=[], regions={})
    for name, region in regions.items():
        for extra in sorted(_set_fields(region) - _REGION_FIELDS):
            plan.omissions.append(
                Omission(None, f"region {name}: field `{extra}`", "not understood; ignored")
            )
        plan.regions[name] = EdgeRegion(
            tuple(region.include),
            tuple(region.exclude),
            getattr(region, "unknown_subdivision", None),
        )
    plan.location_sensitive = any(_engine._depends_on_location(rule) for rule in rules)
    for rule in sorted(rules, key=lambda r: (-r.priority, r.id)):
        edge = _edge_rule(rule, plan, variables)
        if edge is not None:
            plan.rules.append(edge)
    return plan


def _table(plan: EdgePlan, options: Iterable[str], default: str) -> LocaleTable:
    key = (tuple(options), default)
    table = plan.tables.get(key)
    if table is None:
        table = plan.tables[key] = locale_table(*key)
    return table


def _edge_rule(rule: Rule, plan: EdgePlan, variables: Mapping[str, Any]) -> EdgeRule | None:
    unknown = sorted(_set_fields(rule) - _METADATA_FIELDS - _DECIDING_FIELDS)
    for name in unknown:
        if name == "withhold":
            plan.omissions.append(
                Omission(
                    rule.id,
                    "`withhold` (removing elements) is not expressible at the edge",
                    "its notice, block and headers are exported, nothing is withheld",
                )
            )
        else:
            plan.omissions.append(
                Omission(rule.id, f"field `{name}` is not understood by the exporter", "left out")
            )
            return None
    for message in (rule.notice, rule.block):
        if message is None:
            continue
        for name in sorted(_set_fields(message) - _MESSAGE_FIELDS):
            plan.omissions.append(
                Omission(rule.id, f"field `{name}` of the message is not understood", "left out")
            )
            return None
    notice = None
    if rule.notice is not None:
        placement = str(rule.notice.placement)
        if placement not in PLACEMENTS:
            plan.omissions.append(
                Omission(
                    rule.id, f"placement `{placement}` is not known to the exporter", "left out"
                )
            )
            return None
        notice = EdgeNotice(
            placement,
            _table(plan, rule.notice.texts, rule.notice.default_locale),
            _render_all(rule.id, rule.notice, variables, "notice"),
        )
    block = None
    if rule.block is not None:
        block = EdgeBlock(
            rule.block.status,
            rule.block.blocked_by,
            _table(plan, rule.block.texts, rule.block.default_locale),
            _render_all(rule.id, rule.block, variables, "page"),
            _render_all(rule.id, rule.block, variables, "json"),
        )
    headers = tuple(_edge_headers(rule, plan))
    if notice is None and block is None and not headers:
        return None  # a withhold-only rule: nothing left to do at the edge
    return EdgeRule(
        id=rule.id,
        priority=rule.priority,
        jurisdictions=tuple(rule.jurisdictions),
        exclude=tuple(rule.exclude),
        unknown_location=rule.unknown_location,
        unknown_subdivision=str(getattr(rule, "unknown_subdivision", "skip")),
        start=rule.effective.from_,
        until=rule.effective.until,
        hosts=tuple(_ascii_host_glob(h) for h in rule.hosts),
        paths=tuple(rule.paths),
        exclude_paths=tuple(rule.exclude_paths),
        tags=tuple(rule.tags),
        notice=notice,
        block=block,
        headers=headers,
        withhold=getattr(rule, "withhold", None) is not None,
    )


def _edge_headers(rule: Rule, plan: EdgePlan) -> Iterable[tuple[str, str]]:
    """The rule's headers a target sends as the library does. A value with Latin-1 text
    beyond ASCII (``café``) goes out from the library as Latin-1 bytes (a WSGI or ASGI header
    is Latin-1), but nginx writes its configuration's UTF-8 and workerd encodes header text
    as UTF-8: the reader would get other text, so such a header is left out and listed."""
    engine = "nginx" if plan.target == "nginx" else "the Worker"
    for name, value in rule.headers.items():
        if value.isascii():
            yield name, value
            continue
        plan.omissions.append(
            Omission(
                rule.id,
                f"header `{name}`: its value has non-ASCII text ({value!r}), which the library "
                f"sends as Latin-1 bytes and {engine} only as UTF-8 (other text)",
                "left out: not sent (where a rule after it by priority that applies names "
                "the same header, that rule's value is sent)",
            )
        )


def glob_regex(patterns: Sequence[str], *, host: bool, any_char: str = ".") -> str | None:
    """The library's glob language as one anchored regular expression (PCRE and JavaScript
    alike): ``**`` any run, ``*`` a run without ``/`` (any run in hosts), ``?`` one
    character. ``any_char`` replaces ``.`` for hosts where a separator must not match."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        out = []
        for token in re.split(r"(\*\*|\*|\?)", pattern.lower() if host else pattern):
            if token == "**":
                out.append(f"{any_char}*")
            elif token == "*":
                out.append(f"{any_char}*" if host else "[^/]*")
            elif token == "?":
                out.append(any_char if host else "[^/]")
            else:
                out.append(escape_regex(token))
        parts.append("".join(out))
    return "(?:" + "|".join(parts) + ")"


def escape_regex(text: str) -> str:
    out = []
    for char in text:
        if char in "\\^$.|?*+()[]{}/-":
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F or char in " '\";#":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def as_json(value: Any) -> str:
    """Compact JSON with non-ASCII kept, for embedding."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)

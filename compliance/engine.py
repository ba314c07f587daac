"""The decision engine: which notices apply to this reader and request, and why.

Rules are compiled into an index from jurisdiction code to the rules that mention it, so a
decision looks at a handful of candidate rules however many rules are loaded. Decisions are
immutable and cached; a reload builds a complete new rule set off to the side and swaps it in
with one assignment, so a decision never sees half of one rule set and half of another.

:meth:`Engine.decide` with ``location=`` and ``request=`` is pure: it does no geolocation
(the request pipeline has located the reader already). With ``ip=`` it locates first.

Everything a request controls is bounded before it is matched or used as a cache key:
hosts (253 characters, else no host), paths (8 KiB), ``Accept-Language`` (its first ranges),
and every cache is bounded by entries and bytes. Globs match in time linear in the text.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from time import time as _time
from types import MappingProxyType
from typing import Final, TypedDict, Unpack
from urllib.parse import quote, urlsplit, urlunsplit

from .cache import BoundedCache, BoundedPairCache, remembered
from .decision import (
    BlockMatch,
    Decision,
    NoticeMatch,
    Placement,
    RenderKind,
    Request,
    TraceEntry,
    TranslationStatus,
    WithholdMatch,
    normalize_path,
)
from .errors import ComplianceError, ComplianceFault, ConfigurationError
from .geo import Geolocator, Location, knows_subdivisions, open_geolocator
from .geo.chain import _reload_counts
from .globs import GlobSet, compile_globs
from .http import idna_ascii, normalize_host, split_tags
from .loader import (
    LoadedRule,
    RuleSet,
    find_rule_files,
    load_rules,
    pack_path,
    read_variables,
    resolve_sources,
)
from .locales import LocaleChoice, accept_language_key, choose_locale, parse_locale
from .models import Region, Rule, Texts, VariableValue
from .render import (
    block_json,
    block_page,
    message_text,
    notice_html,
    unset_required,
    withhold_html,
)
from .watch import FileWatcher

__all__ = [
    "MAX_PATH",
    "BlockMatch",
    "Decision",
    "Engine",
    "NoticeMatch",
    "Placement",
    "Request",
    "RequestFields",
    "TraceEntry",
    "WithholdMatch",
    "normalize_path",
    "split_url",
]

logger = logging.getLogger("compliance.engine")

_EPOCH = dt.date(1970, 1, 1)

MAX_PATH: Final = 8192
"""Paths longer than this (after normalising) are not matched against path globs: a rule's
``paths`` count as matching and its ``exclude_paths`` as not (fail-safe: padding a URL
never escapes a block or a notice)."""

_OVERLONG: Final = "(over-long path)"  # stands for every over-long path, in keys and traces
_MAX_PAGE_LANGUAGE: Final = 64
_MAX_TAG_ITEMS: Final = 4096  # tags read from an iterable the application gives
_DECISIONS_MAX_ENTRIES: Final = 8192
_DECISIONS_MAX_BYTES: Final = 32 << 20
_FAST_MAX_ENTRIES: Final = 8192  # requests, each with the readers' locations seen for it
_FAST_MAX_BYTES: Final = 32 << 20
_FAST_MAX_URL: Final = 2048  # longer request values skip the fast cache (they still decide)
_FAST_MAX_LANGUAGE: Final = 128
_FAST_MAX_TAGS: Final = 16
# Bytes per (request, location) pair of the fast cache, generously: the slot, the entry and
# the decision it may be the last to hold (about 2 KiB measured with a notice); the request
# is counted once, by _parts_size (its parts are bounded before it is set).
_MAX_REGION_CODES: Final = 500_000
"""Codes the flattened regions of one rule set may hold in all (a set shared by a chain
counts once): about 25 MB. Real rule sets hold a few hundred; the bound is against a
half-saved file of regions that each include a large one and one code more."""
_FAST_PAIR_BYTES: Final = 2048


# -- requests ---------------------------------------------------------------------------------


@remembered(4096, 4 << 20, longest=_FAST_MAX_URL)  # the URLs of recent requests
def split_url(url: str) -> tuple[str, str]:
    """(host, path) of a URL: host as :func:`~compliance.http.normalize_host` leaves it, path
    decoded and normalised.

    Decoding and normalising stop ``/%6Eews/`` or ``/a/../news/`` from slipping past a
    path pattern that the application's router would still resolve to ``/news/``.

    >>> split_url("https://WWW.Example.org.:8443/%6Eews/../news/a%20b.html?x=1")
    ('www.example.org', '/news/a b.html')
    """
    try:
        parts = urlsplit(url)
        host = normalize_host(parts.netloc.rpartition("@")[2])
        raw_path = parts.path
    except ValueError:
        return "", "/"
    return host, normalize_path(raw_path)


# -- dates ------------------------------------------------------------------------------------

_today_span: tuple[float, float, dt.date] = (0.0, 0.0, _EPOCH)
"""The UTC day last read from the clock: its midnight, the next one (UTC seconds), its date.
One tuple, replaced whole, so that a thread never reads one day's bounds with another's
date."""


def _today() -> dt.date:
    """Today's UTC date; the clock is compared with the day's two midnights, not converted.

    A clock found before the day last read was stepped back (an NTP correction, a restored
    VM): every engine's repeat-reader decisions go, some of which may have been made for the
    later day and read no clock (see :meth:`_State.window`)."""
    global _today_span
    now = _time()
    start, end, value = _today_span
    if not start <= now < end:
        number = int(now // 86400)
        stepped_back = now < start
        _today_span = (number * 86400.0, (number + 1) * 86400.0, _EPOCH + dt.timedelta(days=number))
        value = _today_span[2]
        if stepped_back:
            for engine in list(_engines):
                engine._state.fast.clear()
    return value


def _midnight(day: dt.date) -> float:
    """The UTC midnight that begins ``day``, in seconds."""
    return (day - _EPOCH).days * 86400.0


def _day(at: dt.date | dt.datetime | None) -> dt.date:
    if at is None:
        return _today()
    if isinstance(at, dt.datetime):
        if at.tzinfo is not None:
            at = at.astimezone(dt.UTC)
        return at.date()
    return at


# -- matching jurisdictions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """The reader's location as matching needs it."""

    location: Location
    codes: frozenset[str]
    country: str | None
    subdivision_unknown: bool
    """The country is known but no subdivision is."""


@dataclass(frozen=True, slots=True)
class _RegionInfo:
    """A region flattened once, when the rule set is compiled."""

    plain: frozenset[str]
    """Every plain code its ``include`` reaches, through nested regions (excludes ignored)."""
    unknown: tuple[frozenset[str], frozenset[str]]
    """Countries whose readers with an unknown subdivision its ``include`` may reach, as
    the user's ``unknown_subdivision`` is skip (``[0]``) or apply (``[1]``)."""
    pure: bool
    """Neither it nor a region it includes has an ``exclude``: reaching a plain code is
    matching."""
    override: bool | None
    """Its own ``unknown_subdivision`` (apply: True), None when it leaves it to its user."""
    subdivided: frozenset[str]
    """Countries some subdivision of which it or a region inside it names, in an ``include``
    or an ``exclude``: for a reader there, knowing the subdivision may change the match."""


class _Regions:
    """Region membership over a location's codes, with nested regions.

    ``apply`` says whether a reader whose country is known but whose subdivision is not
    counts as being in the subdivisions of that country (``unknown_subdivision: apply``); a
    region's own setting overrides its user's for the codes it lists.

    Every region is flattened once, here, in one pass over the regions (each visited once
    however many regions include it, and without recursion, so neither a "diamond" of
    regions including the same regions nor a long chain costs more than its size). A region
    without ``exclude`` anywhere inside it then matches by one set test; one with excludes is
    decided exactly, each nested region at most once per decision. The loader refuses
    cycles; here a region met again while it is being flattened adds nothing.
    """

    def __init__(self, regions: Mapping[str, Region]) -> None:
        self._regions = regions
        self._info: dict[str, _RegionInfo] = {}
        self._held = 0  # codes in the flattened sets so far
        for name in regions:
            self._flatten_from(name)

    def _flatten_from(self, root: str) -> None:
        regions = self._regions
        info = self._info
        if root in info:
            return
        # Depth-first, children before parents; the stack is the path from ``root``.
        stack = [(root, iter((*regions[root].include, *regions[root].exclude)))]
        active = {root}
        while stack:
            name, children = stack[-1]
            child_name = next(
                (c for c in children if c in regions and c not in info and c not in active), None
            )
            if child_name is not None:
                active.add(child_name)
                nested = regions[child_name]
                stack.append((child_name, iter((*nested.include, *nested.exclude))))
                continue
            stack.pop()
            active.discard(name)
            region = regions[name]
            override = (
                None
                if region.unknown_subdivision is None
                else region.unknown_subdivision == "apply"
            )
            codes: set[str] = set()
            unknown: list[set[str]] = [set(), set()]
            shared: list[_RegionInfo] = []
            pure = not region.exclude
            subdivided = {code[:2] for code in region.exclude if code[2:3] == "-"}
            for code in region.exclude:
                excluded = info.get(code)
                if excluded is not None:
                    subdivided |= excluded.subdivided
            for code in region.include:
                child = info.get(code)
                if child is not None:
                    shared.append(child)
                    pure = pure and child.pure
                    subdivided |= child.subdivided
                elif code in regions:  # met again while being flattened: a cycle
                    continue
                else:
                    codes.add(code)
                    if code[2:3] == "-":
                        subdivided.add(code[:2])
                        for apply in (False, True):
                            if override if override is not None else apply:
                                unknown[apply].add(code[:2])
            if not codes and len(shared) == 1 and override is None:
                # One nested region and nothing else (a chain): share its sets.
                only = shared[0]
                info[name] = _RegionInfo(
                    only.plain, only.unknown, pure, None, frozenset(subdivided)
                )
                continue
            for child in shared:
                codes |= child.plain
                for apply in (False, True):
                    unknown[apply] |= child.unknown[override if override is not None else apply]
            self._held += len(codes) + len(unknown[0]) + len(unknown[1])
            if self._held > _MAX_REGION_CODES:
                raise ConfigurationError(
                    f"the regions expand to more than {_MAX_REGION_CODES:,} codes in all "
                    f"(reached at region '{name}'): include large regions in fewer others"
                )
            info[name] = _RegionInfo(
                frozenset(codes),
                (frozenset(unknown[0]), frozenset(unknown[1])),
                pure,
                override,
                frozenset(subdivided),
            )

    def code_matches(self, code: str, where: _Where, apply: bool) -> bool:
        info = self._info.get(code)
        if info is None:
            if code == "*" or code in where.codes:
                return True
            # A subdivision of the reader's country, whose subdivision is unknown.
            return (
                apply
                and where.subdivision_unknown
                and code[2:3] == "-"
                and (code[:2] == where.country)
            )
        if info.override is not None:
            apply = info.override
        if not _may_match(info, where, apply):
            return False
        return info.pure or self._exact(code, where, apply)

    def _exact(self, root: str, where: _Where, apply: bool) -> bool:
        """Whether region ``root`` (whose ``unknown_subdivision`` is ``apply`` here) matches,
        following its excludes: each (region, apply) decided at most once, without
        recursion."""
        regions = self._regions
        info = self._info
        memo: dict[tuple[str, bool], bool] = {}

        def exact(code: str, flag: bool) -> tuple[str, bool] | None:
            """The (region, apply) to decide exactly for ``code``; None when a set test
            says it or when it is not a region."""
            nested = info.get(code)
            if nested is None or nested.pure:
                return None
            if nested.override is not None:
                flag = nested.override
            return (code, flag) if _may_match(nested, where, flag) else None

        def value(code: str, flag: bool) -> bool:
            key = exact(code, flag)
            if key is None:
                return self.code_matches(code, where, flag)
            return memo.get(key, False)  # absent: a cycle, which adds nothing

        def children(key: tuple[str, bool]) -> Iterator[tuple[str, bool] | None]:
            region = regions[key[0]]
            yield from (exact(c, key[1]) for c in region.include)
            yield from (exact(c, False) for c in region.exclude)

        # Depth-first, children before parents; the stack is the path from ``root``.
        stack = [((root, apply), children((root, apply)))]
        active = {(root, apply)}
        while stack:
            key, pending = stack[-1]
            needed = next(
                (k for k in pending if k is not None and k not in memo and k not in active), None
            )
            if needed is not None:
                active.add(needed)
                stack.append((needed, children(needed)))
                continue
            stack.pop()
            active.discard(key)
            region = regions[key[0]]
            memo[key] = any(value(c, key[1]) for c in region.include) and not any(
                value(c, False) for c in region.exclude
            )
        return memo[(root, apply)]

    def flatten(self, code: str) -> frozenset[str]:
        """Every plain code a jurisdiction may match (excludes ignored): for the index."""
        info = self._info.get(code)
        return info.plain if info is not None else frozenset((code,))

    def subdivided(self, code: str) -> frozenset[str]:
        """Countries some subdivision of which jurisdiction ``code`` names, through nested
        regions, their excludes included."""
        info = self._info.get(code)
        if info is not None:
            return info.subdivided
        return frozenset((code[:2],)) if code[2:3] == "-" else frozenset()

    def may_apply_unknown(self, code: str, apply: bool) -> frozenset[str]:
        """Countries whose readers with an unknown subdivision ``code`` may match."""
        info = self._info.get(code)
        if info is not None:
            return info.unknown[info.override if info.override is not None else apply]
        if apply and code[2:3] == "-":
            return frozenset((code[:2],))
        return frozenset()


def _may_match(info: _RegionInfo, where: _Where, apply: bool) -> bool:
    """Whether a region may match: its ``include`` reaches one of the reader's codes, or
    (subdivision unknown) a subdivision of their country it counts them in. For a region
    without excludes, whether it matches."""
    return not where.codes.isdisjoint(info.plain) or (
        where.subdivision_unknown and where.country in info.unknown[apply]
    )


def _where(location: Location) -> str:
    return "/".join([location.country or "?", *location.subdivisions])


def _ascii_url(url: str) -> str:
    """``url`` with an IDN host in punycode and non-ASCII path characters percent-encoded:
    header values are Latin-1, and a browser reads them as ASCII.

    >>> _ascii_url("https://bücher.example/päth?q=ü")
    'https://xn--bcher-kva.example/p%C3%A4th?q=%C3%BC'
    >>> _ascii_url("https://[2001:DB8::1]:8443/päth")
    'https://[2001:db8::1]:8443/p%C3%A4th'
    """
    if url.isascii():
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal, which urlsplit gives without its brackets
        host = f"[{host}]"
    else:
        try:
            host = idna_ascii(host)
        except UnicodeError:
            host = quote(host, safe="")
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    safe = "/%:@!$&'()*+,;=-._~"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=safe),
            quote(parts.query, safe=safe + "?"),
            quote(parts.fragment, safe=safe + "?"),
        )
    )


def _statuses(message: Texts) -> Mapping[str, TranslationStatus]:
    return MappingProxyType({k: v.status for k, v in message.translations.items()})


class CompiledRule:
    """A rule ready to be matched quickly; renders its messages (a
    :class:`~compliance.decision.Renderer`), caching the output per locale."""

    __slots__ = (
        "_cache",
        "_lock",
        "_regions",
        "_variables",
        "apply_unknown_subdivision",
        "embeds",
        "exclude_paths",
        "file",
        "hosts",
        "id",
        "line",
        "link_header",
        "paths",
        "priority",
        "rule",
        "sort_key",
        "star",
        "start",
        "tags",
        "until",
    )

    def __init__(
        self, loaded: LoadedRule, regions: _Regions, variables: Mapping[str, VariableValue]
    ) -> None:
        rule = loaded.rule
        self.rule: Rule = rule
        self.id = rule.id
        self.file = loaded.file
        self.line = loaded.line
        self.priority = rule.priority
        self.sort_key = (-rule.priority, rule.id)
        self.star = "*" in rule.jurisdictions
        self.start = rule.effective.from_
        self.until = rule.effective.until
        self.apply_unknown_subdivision = rule.unknown_subdivision == "apply"
        self.hosts: GlobSet | None = compile_globs(
            [_ascii_host_glob(h) for h in rule.hosts], host=True
        )
        self.paths = compile_globs(rule.paths, host=False)
        self.exclude_paths = compile_globs(rule.exclude_paths, host=False)
        embeds = rule.withhold.embeds if rule.withhold is not None else []
        self.embeds = compile_globs([_ascii_host_glob(h) for h in embeds], host=True)
        self.tags = frozenset(rule.tags)
        self.link_header = (
            f'<{_ascii_url(rule.block.blocked_by)}>; rel="blocked-by"'
            if rule.block is not None
            else ""
        )
        self._regions = regions
        self._variables = variables
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def index_codes(self) -> set[str]:
        codes: set[str] = set()
        for code in self.rule.jurisdictions:
            if code != "*":
                codes |= self._regions.flatten(code)
        return codes

    def unknown_subdivision_countries(self) -> set[str]:
        """Countries whose readers may match this rule without a known subdivision."""
        countries: set[str] = set()
        for code in self.rule.jurisdictions:
            if code != "*":
                countries |= self._regions.may_apply_unknown(code, self.apply_unknown_subdivision)
        return countries

    def subdivided_countries(self) -> set[str]:
        """Countries some subdivision of which its jurisdictions or excludes name: for a
        reader there whose subdivision is unknown, knowing it may change the match."""
        countries: set[str] = set()
        for code in (*self.rule.jurisdictions, *self.rule.exclude):
            if code != "*":
                countries |= self._regions.subdivided(code)
        return countries

    def why_not(self, ctx: _Context) -> str | None:
        """The first reason this rule does not apply, or None when it does."""
        rule = self.rule
        where = ctx.where
        location = where.location
        if where.country is None:
            if rule.unknown_location != "apply":
                return "unknown location (unknown_location: skip)"
        else:
            regions = self._regions
            apply = self.apply_unknown_subdivision
            if not any(regions.code_matches(c, where, apply) for c in rule.jurisdictions):
                reason = (
                    f"jurisdiction: {_where(location)} is not in {', '.join(rule.jurisdictions)}"
                )
                if (
                    where.subdivision_unknown
                    and not apply
                    and any(regions.code_matches(c, where, True) for c in rule.jurisdictions)
                ):  # only where `apply` would have matched: never for another country
                    reason += " (subdivision unknown; unknown_subdivision: skip)"
                return reason
            for code in rule.exclude:
                if regions.code_matches(code, where, False):
                    return f"excluded: {_where(location)} matches exclude {code}"
        return self.why_not_here(ctx)

    def why_not_here(self, ctx: _Context) -> str | None:
        """The first reason other than the reader's location this rule does not apply (its
        dates, the host, the path, the tags), or None."""
        rule = self.rule
        if self.start is not None and ctx.day < self.start:
            return f"not yet effective: starts {self.start.isoformat()}"
        if self.until is not None and ctx.day >= self.until:
            return f"expired: ended {self.until.isoformat()}"
        if self.hosts is not None and not self.hosts.match(ctx.host):
            return f"host: {ctx.host or '(none)'} does not match {', '.join(rule.hosts)}"
        if ctx.path != _OVERLONG:
            if self.paths is not None and not self.paths.match(ctx.path):
                return f"path: {ctx.path} does not match {', '.join(rule.paths)}"
            if self.exclude_paths is not None and self.exclude_paths.match(ctx.path):
                return f"path: {ctx.path} is excluded by {', '.join(rule.exclude_paths)}"
        if self.tags and not (self.tags & ctx.tags):
            # Not the page's tags: only those some rule names are kept (and decisions, with
            # their traces, are shared by pages whose other tags differ), so listing them
            # said "(none)" of a page tagged "elections" for a rule on "Elections".
            return f"tags: the page has none of {', '.join(rule.tags)} (tags are case-sensitive)"
        return None

    def render(self, kind: RenderKind, locale: str) -> str:
        """Rendered output, cached per (kind, locale); raises KeyError for a locale the
        message has no text in."""
        key = (kind, locale)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rule = self.rule
        variables = self._variables
        if kind.startswith("notice"):
            message: Texts | None = rule.notice
        elif kind.startswith("block"):
            message = rule.block
        else:
            message = rule.withhold
        if message is None or locale not in message.texts:
            raise KeyError(f"rule {self.id!r} has no {kind} text in locale {locale!r}")
        if kind == "notice-html":
            cached = notice_html(self.id, message, locale, variables)
        elif kind == "withhold-html":
            cached = withhold_html(self.id, message, locale, variables)
        elif kind == "block-html":
            assert rule.block is not None
            cached = block_page(self.id, rule.block, locale, variables)
        elif kind == "block-json":
            assert rule.block is not None
            cached = block_json(self.id, rule.block, locale, variables)
        else:
            cached = message_text(message, locale, variables, rule=self.id)
        with self._lock:
            self._cache[key] = cached
        return cached


def _ascii_host_glob(pattern: str) -> str:
    """A host glob as hosts are matched: lower case, IDN labels in punycode, no trailing dot
    (``example.org.``, the fully qualified name, is the host ``example.org``).

    >>> _ascii_host_glob("WWW.Example.ORG."), _ascii_host_glob("*.bücher.example")
    ('www.example.org', '*.xn--bcher-kva.example')
    """
    pattern = pattern.lower()
    if pattern.endswith(".") and pattern.strip("."):
        pattern = pattern.rstrip(".")
    if pattern.isascii():
        return pattern
    labels = []
    for label in pattern.split("."):
        if label.isascii() or "*" in label or "?" in label:
            labels.append(label)
        else:
            try:
                labels.append(idna_ascii(label))
            except UnicodeError:
                labels.append(label)
    return ".".join(labels)


@dataclass(frozen=True, slots=True)
class _Context:
    where: _Where
    host: str
    path: str
    tags: frozenset[str]
    day: dt.date


_Key = tuple[Location, str, str, "str | None", frozenset[str], "str | None", dt.date]
_Hit = tuple[Location, Decision, "float | None", float]
"""A fast-cache entry: the location (whose identity is its subkey: the entry keeps it alive,
so no other object can take its ``id``), the decision, and from and until when it is right
(UTC seconds, ``from <= now < until``; a None ``from``: no clock to read, see
:meth:`_State.window`)."""


class _State:
    """One compiled rule set and everything derived from it; replaced whole on reload."""

    def __init__(self, ruleset: RuleSet, variables: Mapping[str, VariableValue]) -> None:
        self.ruleset = ruleset
        self.variables = variables
        regions = _Regions(ruleset.regions)
        self.rules = tuple(
            sorted(
                (CompiledRule(r, regions, variables) for r in ruleset.rules),
                key=lambda c: c.sort_key,
            )
        )
        self.tag_names = frozenset(tag for rule in self.rules for tag in rule.tags)
        """Every tag some rule looks at."""
        by_code: dict[str, list[CompiledRule]] = {}
        by_country_unknown: dict[str, list[CompiledRule]] = {}
        subdivided: dict[str, list[CompiledRule]] = {}
        star: list[CompiledRule] = []
        unknown: list[CompiledRule] = []
        for compiled in self.rules:
            if compiled.star:
                star.append(compiled)
            for code in compiled.index_codes():
                by_code.setdefault(code, []).append(compiled)
            for country in compiled.unknown_subdivision_countries():
                by_country_unknown.setdefault(country, []).append(compiled)
            for country in compiled.subdivided_countries():
                subdivided.setdefault(country, []).append(compiled)
            if compiled.rule.unknown_location == "apply":
                unknown.append(compiled)
        self.subdivided = {country: tuple(rules) for country, rules in subdivided.items()}
        """By country: the rules naming some subdivision of it (see Decision.needs_subdivision)."""
        self.by_code = {code: tuple(rules) for code, rules in by_code.items()}
        self.by_country_unknown = {c: tuple(rules) for c, rules in by_country_unknown.items()}
        self.star = tuple(star)
        self.unknown = tuple(unknown)
        # Does any rule depend on where the reader is? If not, pages are not location-dependent.
        self.location_sensitive = any(_depends_on_location(r.rule) for r in self.rules)
        self.candidates_cache: BoundedCache[tuple[frozenset[str], bool], tuple[CompiledRule, ...]]
        self.candidates_cache = BoundedCache(65536, 16 << 20)
        self.decisions: BoundedCache[_Key, Decision] = BoundedCache(
            _DECISIONS_MAX_ENTRIES, _DECISIONS_MAX_BYTES, size=_key_size
        )
        # The repeat reader's cache: the request (a Request, or the fields of a convenience
        # call) and then the location's identity, two lookups of a key whose hash is
        # computed in C (no pair tuple to build and hash). Only requests whose parts are
        # bounded go in (see _fast_cacheable).
        self.fast: BoundedPairCache[tuple[object, ...], int, _Hit] = BoundedPairCache(
            _FAST_MAX_ENTRIES, _FAST_MAX_BYTES, key_size=_parts_size, pair_size=_FAST_PAIR_BYTES
        )
        # The days on which some rule starts or stops applying: between two of them, every
        # decision for "now" stays the same, so a cached one is right until the next and
        # from the last.
        boundaries: set[dt.date] = set()
        for compiled in self.rules:
            if compiled.start is not None:
                boundaries.add(compiled.start)
            if compiled.until is not None:
                boundaries.add(compiled.until)
        self.boundaries = tuple(sorted(boundaries))

    def window(self, day: dt.date) -> tuple[float | None, float]:
        """From and until when (UTC seconds) a decision made today, ``day``, stays right:
        the midnights of the last day on or before it, and of the next day after it, on
        which some rule starts or stops (-inf and inf where there is none).

        The repeat reader reads the clock to check both, with one exception that keeps the
        cheapest path clock-free: a decision no later rule date changes, made after the day
        its span began (or with no rule date at all), gets a None ``from`` and is served
        without a clock. A clock stepped back before that span (only past a midnight at
        least) is noticed by the next decision made afresh, which drops the repeat
        reader's cache (:func:`_today`); a step back over one midnight is checked at once.
        """
        index = bisect_right(self.boundaries, day)
        until = math.inf if index == len(self.boundaries) else _midnight(self.boundaries[index])
        if index == 0:
            since = -math.inf
        elif until == math.inf and day > self.boundaries[index - 1]:
            return None, until
        else:
            since = _midnight(self.boundaries[index - 1])
        if since == -math.inf and until == math.inf:
            return None, until
        return since, until

    def candidates(self, where: _Where) -> tuple[CompiledRule, ...]:
        key = (where.codes, where.subdivision_unknown)
        found = self.candidates_cache.get(key)
        if found is None:
            merged = {id(r): r for code in where.codes for r in self.by_code.get(code, ())}
            merged.update((id(r), r) for r in self.star)
            if where.subdivision_unknown and where.country is not None:
                merged.update((id(r), r) for r in self.by_country_unknown.get(where.country, ()))
            found = self.candidates_cache.set(
                key, tuple(sorted(merged.values(), key=lambda c: c.sort_key))
            )
        return found


def _depends_on_location(rule: Rule) -> bool:
    """Whether what ``rule`` does may differ between two readers: unless it applies to every
    reader (``"*"``, ``unknown_location: apply``, nothing excluded), and its messages have one
    locale each (with several, the reader's country may choose: its official languages
    come before the default)."""
    if "*" not in rule.jurisdictions or rule.unknown_location != "apply" or rule.exclude:
        return True
    return any(m is not None and len(m.texts) > 1 for m in (rule.notice, rule.block, rule.withhold))


def _parts_size(parts: tuple[object, ...]) -> int:
    """Bytes of a cache key made of a request's parts (a decision key, a Request, the fields
    of a convenience call): its strings and tags; anything else (a location, a date) is
    shared or small."""
    size = 400
    for part in parts:
        if isinstance(part, str):
            size += 50 + len(part)
        elif isinstance(part, frozenset | tuple):
            size += 200 + sum(64 + len(t) if isinstance(t, str) else 64 for t in part)
        else:
            size += 64
    return size


def _key_size(key: _Key, value: Decision) -> int:
    """Bytes of a decision-cache entry: its key's (the decision is shared, not counted)."""
    return _parts_size(key)


# -- decisions --------------------------------------------------------------------------------


class _Once:
    """Call a function the first time, then hand back its result (cheaper to make than
    ``functools.cache``, which matters: one is made for every decision)."""

    __slots__ = ("_function", "_result")

    def __init__(self, function: Callable[[], tuple[TraceEntry, ...]]) -> None:
        self._function = function
        self._result: tuple[TraceEntry, ...] | None = None

    def __call__(self) -> tuple[TraceEntry, ...]:
        if self._result is None:
            self._result = self._function()
        return self._result


def _check_variables(ruleset: RuleSet, variables: Mapping[str, VariableValue]) -> None:
    """Site-wide variables must name variables that rules use: a typo would otherwise
    silently leave the rule's default (say, another publisher's name) in a legal notice."""
    used: set[str] = set()
    for loaded in ruleset.rules:
        for message in (loaded.rule.notice, loaded.rule.block, loaded.rule.withhold):
            if message is not None:
                used.update(message.variables)
    unknown = sorted(set(variables) - used)
    if unknown:
        raise ConfigurationError(
            f"variables {', '.join(map(repr, unknown))} are not used by any rule "
            f"(rules use: {', '.join(sorted(used)) or 'none'})"
        )
    for name, value in variables.items():
        if value is None:
            raise ConfigurationError(
                f"variable {name!r}: None is not a value (give text, a number, a date, or "
                "a mapping of locale to value)"
            )
        if isinstance(value, Mapping):
            bad = [str(k) for k in value if not isinstance(k, str) or parse_locale(k) is None]
            if bad:
                raise ConfigurationError(
                    f"variable {name!r}: {', '.join(map(repr, bad))} is not a locale "
                    "(use codes such as 'en', 'ru', 'pt-BR')"
                )


def _warn_unset_required(ruleset: RuleSet, variables: Mapping[str, VariableValue]) -> None:
    """One WARNING per rule whose required variables (``null`` in the rule file) the site
    has not set: where the rule applies, its notice cannot be shown (the fail mode). A rule
    for tagged content only (the bundled foreign-agent label) is logged at INFO: most sites
    never tag content with it, and where one does, the fault is loud when it applies."""
    for loaded in ruleset.rules:
        rule = loaded.rule
        unset: dict[str, list[str]] = {}
        for message in (rule.notice, rule.block, rule.withhold):
            if message is not None:
                for name, locales in unset_required(message, variables).items():
                    unset.setdefault(name, []).extend(locales)
        if not unset:
            continue
        names = list(unset)  # as the rule declares them
        locales = sorted({locale for found in unset.values() for locale in found})
        logger.log(
            logging.INFO if rule.tags else logging.WARNING,
            "rule %s (%s:%d) has required variables the site has not set: %s (needed in %s); "
            "readers it applies to get the fail mode instead of its notice until they are set: "
            "variables={%s} in Python (Engine.from_paths, middleware settings), %s on the "
            "command line",
            rule.id,
            loaded.file,
            loaded.line,
            ", ".join(names),
            ", ".join(locales),
            ", ".join(f"{name!r}: ..." for name in names),
            " ".join(f"--set {name}=..." for name in names),
        )


def _warn_unreached_subdivisions(state: _State, geolocator: Geolocator) -> None:
    """One WARNING, at start-up and after each reload, when the engine's geolocator knows
    countries only (the embedded lookup, a Country database) and rules name subdivisions
    with ``unknown_subdivision: skip``: no reader it locates is ever in them. (A CDN's region
    header may still give subdivisions: the warning says so.)"""
    if knows_subdivisions(geolocator) is not False:
        return
    unreached: list[str] = []
    for rule in state.rules:
        apply_in = rule.unknown_subdivision_countries()
        codes = sorted(
            code for code in rule.index_codes() if code[2:3] == "-" and code[:2] not in apply_in
        )
        if codes:
            shown = ", ".join(codes[:5]) + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")
            unreached.append(f"{rule.id} ({shown})")
    if unreached:
        more = len(unreached) - 20
        logger.warning(
            "rules naming subdivisions with unknown_subdivision: skip never reach a reader the "
            "geolocator (%s) locates, since it knows countries only: %s. Give the engine a "
            "City database (geoip_db=), read a CDN's region header (geo_header=), or set "
            "unknown_subdivision: apply where the text suits every reader of the country",
            type(geolocator).__name__,
            "; ".join(unreached[:20]) + (f"; and {more} more" if more > 0 else ""),
        )


def _tag_set(tags: Iterable[str]) -> frozenset[str]:
    """Tags as a set: from an iterable (at most :data:`_MAX_TAG_ITEMS` read), or from one
    string of comma-separated tags, as the middleware reads ``compliance.tags`` (a string
    iterated would be its characters: ``"politics"`` no tag any rule names)."""
    if isinstance(tags, frozenset):
        return tags
    if isinstance(tags, str):
        return split_tags(tags)
    return frozenset(islice(tags, _MAX_TAG_ITEMS))


def _bounded_tags(tags: Iterable[str], used: frozenset[str]) -> frozenset[str]:
    """The page's tags that some rule looks at: the others cannot change a decision, and
    would only grow the caches' keys. Bounded by the rules, not by dropping tags, so a tag a
    block needs is never lost among many others (at most :data:`_MAX_TAG_ITEMS` are read)."""
    tags = _tag_set(tags)
    return tags & used if tags else tags


# -- the engine -------------------------------------------------------------------------------


class RequestFields(TypedDict, total=False):
    """The convenience form of :meth:`Engine.decide`: a reader and a request in parts."""

    ip: str | None
    """The reader's address, located by the engine's geolocator (unless ``location=``)."""
    url: str | None
    """The requested URL (or give ``host`` and ``path``)."""
    host: str | None
    path: str | None
    accept_language: str | None
    tags: Iterable[str]
    """The page's content tags: an iterable of tags, or one comma-separated string."""
    at: dt.date | dt.datetime | None
    """When (UTC); default now."""
    page_language: str | None
    headers: Mapping[str, str] | None
    """CDN geolocation headers (lower-case names), for compatibility: request pipelines
    locate readers themselves."""
    trusted: bool
    """``headers`` come from a trusted proxy."""


_FIELDS: Final = frozenset(RequestFields.__annotations__)


class Engine:
    """Loads rules, geolocates readers and decides which notices apply.

    >>> engine = Engine.from_paths()  # the bundled rules and the embedded geolocation
    >>> d = engine.decide(ip="77.88.55.88", url="https://www.example.org/a/story.html")
    >>> [n.rule_id for n in d.notices], d.location.country
    (['ru-undesirable-organization'], 'RU')
    >>> engine.decide(ip="81.169.145.105", url="https://www.example.org/").notices
    ()
    """

    def __init__(
        self,
        ruleset: RuleSet,
        geolocator: Geolocator | None = None,
        *,
        variables: Mapping[str, VariableValue] | None = None,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        packs: Sequence[str] | None = None,
        warn: bool = True,
    ) -> None:
        """``warn``: log what the rules and the geolocator leave unreached (required
        variables unset, subdivisions no reader can be placed in); off for an engine built
        again over the same rules (a rule test's own variables), which would say it again."""
        self._variables: Mapping[str, VariableValue] = MappingProxyType(dict(variables or {}))
        _check_variables(ruleset, self._variables)
        if warn:
            _warn_unset_required(ruleset, self._variables)
        self._state = _State(ruleset, self._variables)
        self._repeat = self._state.fast.mapping  # the repeat reader's two lookups
        self._geolocator: Geolocator = (
            geolocator if geolocator is not None else open_geolocator(None)
        )
        self._locate = self._geolocator.locate
        if warn:
            _warn_unreached_subdivisions(self._state, self._geolocator)
        if paths is None and packs is None:
            # Built from a RuleSet: reload the files it was read from. (Left unset, they
            # meant the default pack: a reload swapped the site's own rules for it.)
            paths, packs = _sources_of(ruleset)
        self._paths = None if paths is None else tuple(paths)
        self._packs = None if packs is None else tuple(packs)
        # Reentrant, and the thread reloading is known: a signal handler that reloads may
        # run in the middle of a reload in its own thread (a second SIGHUP), and must not
        # wait for itself forever.
        self._reload_lock = threading.RLock()
        self._reloading: int | None = None
        self._reload_again = False
        _engines.add(self)  # for the lock's reset in a forked child
        self._reloads: Counter[str] = Counter()
        self._watcher: FileWatcher | None = None
        self._unwatch: weakref.finalize[[float], Engine] | None = None
        self._kept: frozenset[str] = frozenset()  # emptied files whose last rules still serve
        self.last_reload_error: ComplianceError | None = None
        """Why the last reload failed (a :class:`RuleError` listing the problems, or a
        :class:`ConfigurationError` for a vanished path); None after a successful one."""

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        geoip_db: str | os.PathLike[str] | None = None,
        *,
        packs: Iterable[str] | None = None,
        geolocator: Geolocator | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        watch: float | None = None,
        variable_texts: Mapping[str, str] | None = None,
    ) -> Engine:
        """An engine over rule files and bundled packs (neither: the ``russia`` pack) and a
        geolocator: the one given, else a MaxMind database at ``geoip_db``, else the
        embedded lookup. With ``watch`` (seconds), rule files are polled and reloaded when
        they change. ``variable_texts``: site values written as text (a command line's
        ``--set NAME=VALUE``), read as the rules declare each (a date as a date, see
        :func:`~compliance.loader.read_variables`), over ``variables``."""
        if isinstance(paths, str | os.PathLike):
            paths = [paths]  # one path, not the characters of one path
        path_list = None if paths is None else list(paths)
        pack_list = None if packs is None else [packs] if isinstance(packs, str) else list(packs)
        ruleset = load_rules(path_list, packs=pack_list)
        if variable_texts:
            variables = {**(variables or {}), **read_variables(ruleset, variable_texts)}
        if geolocator is None:
            geolocator = open_geolocator(geoip_db)
        engine = cls(ruleset, geolocator, variables=variables, paths=path_list, packs=pack_list)
        if watch:
            engine.watch(watch)
        return engine

    # -- properties

    @property
    def geolocator(self) -> Geolocator:
        return self._geolocator

    @property
    def ruleset(self) -> RuleSet:
        """The rule set now serving."""
        return self._state.ruleset

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Ids of the loaded rules, highest priority first."""
        return tuple(r.id for r in self._state.rules)

    @property
    def variables(self) -> Mapping[str, VariableValue]:
        """Site-wide values for notice variables (e.g. ``organization``)."""
        return self._variables

    def compiled_rules(self) -> tuple[CompiledRule, ...]:
        return self._state.rules

    # -- deciding

    def locate(
        self, ip: str | None, headers: Mapping[str, str] | None = None, *, trusted: bool = False
    ) -> Location:
        """Where the reader is, by the engine's geolocator."""
        return self._geolocator.locate(ip, headers, trusted=trusted)

    def decide(
        self,
        *,
        location: Location | None = None,
        request: Request | None = None,
        **fields: Unpack[RequestFields],
    ) -> Decision:
        """Decide for one reader and one request.

        Pure form, for a request pipeline that has located the reader: ``location=`` and
        ``request=`` (a :class:`~compliance.decision.Request`); no geolocation happens.

        Convenience form: the reader by ``ip`` (located by the engine's geolocator) or a
        known ``location``; the request by ``url``, or ``host`` and ``path``, with
        ``accept_language``, ``tags``, ``at`` (default now, UTC) and ``page_language``
        (see :class:`RequestFields`).
        """
        if request is not None and location is not None:
            # A repeat reader costs two dict lookups: the request (a tuple whose hash is
            # computed in C), then the Location object's identity (a geolocator's cache
            # hands back the same object for every address of a network). The entry keeps
            # the location alive, so a hit on its ``id`` is that very object. No clock is
            # read unless some rule starts or stops applying on a later day, or started or
            # stopped today (then the entry says from and until when it is right; see
            # _State.window). Nothing else: this is the path a site runs most.
            # (The convenience fields travel in ``**fields``: a dozen keyword parameters
            # with defaults would cost this path more than the lookup itself.)
            if fields:
                _refuse_mixed(fields, ())
            try:
                hit = self._repeat[request][id(location)]
            except KeyError:  # a new reader or request: deciding costs far more than raising
                return self._decide_request(location, request)
            if hit[2] is None or hit[2] <= _time() < hit[3]:
                return hit[1]
            return self._decide_request(location, request)
        if request is None:
            # The convenience form's repeat reader: the fields as given make the key.
            if location is None and "headers" not in fields and "trusted" not in fields:
                location = self._locate(fields.get("ip"))
            if location is not None:
                try:
                    hit = self._repeat[_fields_key(fields)][id(location)]
                except (KeyError, TypeError):  # not seen yet; an unhashable value (tags)
                    pass
                else:
                    if hit[2] is None or hit[2] <= _time() < hit[3]:
                        return hit[1]
        return self._decide_fields(location, request, fields)

    def _decide_request(self, location: Location, request: Request) -> Decision:
        state = self._state
        day = _day(request.at)
        decision = self._bounded(
            state,
            location,
            request.host,
            request.path,
            request.accept_language,
            request.tags,
            request.page_language,
            day,
            raw_path=False,
        )
        if _fast_cacheable(
            len(request.path),
            request.host,
            request.accept_language,
            request.page_language,
            request.tags,
        ):
            since, until = (None, math.inf) if request.at is not None else state.window(day)
            state.fast.set(request, id(location), (location, decision, since, until))
        return decision

    def _decide_fields(
        self, location: Location | None, request: Request | None, fields: RequestFields
    ) -> Decision:
        if location is None:
            ip = fields.get("ip")
            if fields.get("trusted", False):
                location = self._geolocator.locate(ip, fields.get("headers"), trusted=True)
            elif "headers" in fields:
                location = self._locate(ip, fields.get("headers"))
            else:
                location = self._locate(ip)
            if request is not None:
                _refuse_mixed(fields, _LOCATING)
                # Located: decide() again, for the repeat-reader lookup it skipped.
                return self.decide(location=location, request=request)
            return self.decide(location=location, request=request, **fields)
        # decide() has looked the fields up in the fast cache already (and missed).
        self._check_fields(fields)
        fast_key: tuple[object, ...] | None = _fields_key(fields)
        try:
            hash(fast_key)
        except TypeError:  # an unhashable value (tags as a list): not kept
            fast_key = None
        url = fields.get("url")
        host = fields.get("host")
        path = fields.get("path")
        accept_language = fields.get("accept_language")
        tags = _tag_set(fields.get("tags", ()))
        at = fields.get("at")
        page_language = fields.get("page_language")
        if url is not None:
            host, path = split_url(url)
            raw = False
        else:
            raw = True
        day = _day(at)
        state = self._state
        decision = self._bounded(
            state,
            location,
            host or "",
            path or "/",
            accept_language,
            tags,
            page_language,
            day,
            raw_path=raw,
        )
        if fast_key is not None and _fast_cacheable(
            len(url or "") + len(path or ""), host or "", accept_language, page_language, tags
        ):
            since, until = (None, math.inf) if at is not None else state.window(day)
            state.fast.set(fast_key, id(location), (location, decision, since, until))
        return decision

    @staticmethod
    def _check_fields(fields: RequestFields) -> None:
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(
                f"Engine.decide() got unexpected keyword arguments: {', '.join(sorted(unknown))}"
            )

    def _bounded(
        self,
        state: _State,
        location: Location,
        host: str,
        path: str,
        accept_language: str | None,
        tags: frozenset[str],
        page_language: str | None,
        day: dt.date,
        *,
        raw_path: bool,
    ) -> Decision:
        """Normalise and bound the request's values, then decide (cached by those)."""
        host = normalize_host(host)
        if raw_path or not path.startswith("/"):
            path = normalize_path(path)
        if len(path) > MAX_PATH:
            path = _OVERLONG  # no normalised path looks like it: it starts without '/'

        language = accept_language_key(accept_language)
        if page_language is not None and len(page_language) > _MAX_PAGE_LANGUAGE:
            page_language = None
        tags = _bounded_tags(tags, state.tag_names)
        key: _Key = (location, host, path, language, tags, page_language, day)
        decision = state.decisions.get(key)
        if decision is None:
            decision = state.decisions.set(
                key,
                self._decide(state, location, host, path, language, tags, page_language, day),
            )
        return decision

    def _decide(
        self,
        state: _State,
        location: Location,
        host: str,
        path: str,
        accept_language: str | None,
        tags: frozenset[str],
        page_language: str | None,
        day: dt.date,
    ) -> Decision:
        country = location.country
        codes = frozenset((country, *location.subdivisions)) if country else frozenset()
        where = _Where(location, codes, country, bool(country) and not location.subdivisions)
        ctx = _Context(where, host, path, tags, day)
        candidates = state.candidates(where) if country else state.unknown
        matched = [rule for rule in candidates if rule.why_not(ctx) is None]
        block_rule = next((r for r in matched if r.rule.block is not None), None)
        block = None
        notices: list[NoticeMatch] = []
        withholds: list[WithholdMatch] = []
        consulted = False  # the reader's languages took part in choosing a locale

        def choose(message: Texts, page: str | None = page_language) -> LocaleChoice:
            nonlocal consulted
            choice = choose_locale(
                tuple(message.texts),
                message.default_locale,
                page_language=page,
                accept_language=accept_language,
                country=country,
            )
            if len(message.texts) > 1 and choice.reason != "page":
                consulted = True
            return choice

        if block_rule is not None:
            message = block_rule.rule.block
            assert message is not None
            # Never the page's language: the 451 stands in for the page, which the
            # middleware never sees (nor then its language), and rule tests and check must
            # answer as it does.
            choice = choose(message, None)
            block = BlockMatch(
                block_rule.id,
                message.status,
                message.blocked_by,
                choice.locale,
                block_rule,
                block_rule.link_header,
                message.original,
                _statuses(message),
            )
        else:
            for rule in matched:
                notice = rule.rule.notice
                if notice is not None:
                    choice = choose(notice)
                    notices.append(
                        NoticeMatch(
                            rule.id,
                            notice.placement,
                            rule.priority,
                            choice.locale,
                            choice.reason,
                            tuple(notice.texts),
                            notice.default_locale,
                            rule,
                            notice.original,
                            _statuses(notice),
                        )
                    )
                withhold = rule.rule.withhold
                if withhold is not None:
                    if withhold.texts:
                        choice = choose(withhold)
                    else:
                        choice = LocaleChoice(withhold.default_locale, "default")
                    withholds.append(
                        WithholdMatch(
                            rule.id,
                            tuple(withhold.marks),
                            tuple(withhold.embeds),
                            choice.locale,
                            choice.reason,
                            tuple(withhold.texts),
                            withhold.default_locale,
                            rule,
                            rule.embeds.match if rule.embeds is not None else _never,
                            withhold.original,
                            _statuses(withhold),
                        )
                    )
        applied = tuple(
            r.id
            for r in matched
            if block_rule is None
            or r is block_rule
            or (r.rule.notice is None and r.rule.withhold is None)
        )
        # One value per header, the first rule's by priority: header names are
        # case-insensitive, so ``x-robots-tag`` from a later rule is the same header as an
        # earlier ``X-Robots-Tag`` (sent both ways, the later one could win: a repeated
        # Referrer-Policy is read as its last value).
        extra: dict[str, str] = {}
        taken: set[str] = set()
        for rule in matched:
            if rule.id in applied:
                for name, value in rule.rule.headers.items():
                    folded = name.lower()
                    if folded not in taken:
                        taken.add(folded)
                        extra[name] = value
        vary: list[str] = []
        if location.via_header:
            vary.append(location.via_header)
        if consulted:
            vary.append("accept-language")
        private = state.location_sensitive and location.via_header is None
        needs_subdivision = where.subdivision_unknown and any(
            rule.why_not_here(ctx) is None for rule in state.subdivided.get(country or "", ())
        )

        def trace() -> tuple[TraceEntry, ...]:
            shown = set(applied)
            entries = []
            for rule in state.rules:
                reason = rule.why_not(ctx)
                if reason is None and rule.id not in shown:
                    reason = f"overridden by block {block_rule.id if block_rule else '?'}"
                entries.append(TraceEntry(rule.id, reason is None, reason))
            return tuple(entries)

        return Decision(
            location=location,
            notices=tuple(notices),
            block=block,
            headers=MappingProxyType(extra),
            vary=tuple(vary),
            private=private,
            applied=applied,
            withholds=tuple(withholds),
            accept_language=accept_language,
            _trace=_Once(trace),
            needs_subdivision=needs_subdivision,
        )

    # -- reloading

    def reload(self) -> bool:
        """Reload the rule files; on problems keep serving the old rules and return False.

        The files are those given as ``paths`` and ``packs``; an engine made from a
        :class:`~compliance.loader.RuleSet` without them reloads the files and packs that
        rule set was read from (one built in memory has none: the reload fails).

        The problems are logged and kept in :attr:`last_reload_error`. A file that had
        rules and now has none (a half-saved file) keeps its last good rules, with a WARNING
        at every reload until it has rules again; a deleted file's rules go. Every rule a
        reload removes is logged by id at WARNING.

        Safe to call from a signal handler: called while a reload runs in the same thread
        (the handler interrupted it), it returns at once with the last reload's result, and
        the reload under way runs once more when done, so the files are read after the
        signal.
        """
        if self._reloading == threading.get_ident():
            self._reload_again = True
            return self.last_reload_error is None
        if self._paths is None and self._packs is None:
            error = ConfigurationError(
                "these rules were not read from files (an Engine made from a RuleSet built "
                "in memory): there is nothing to reload; pass paths= or packs= to Engine"
            )
            with self._reload_lock:
                self.last_reload_error = error
                self._reloads["failed"] += 1
            logger.error("rule reload failed (%s); still serving the previous rules", error)
            return False
        with self._reload_lock:
            self._reloading = threading.get_ident()
            try:
                while True:
                    self._reload_again = False
                    result = self._reload_once()
                    if not self._reload_again:
                        return result
            finally:
                self._reloading = None

    def _reload_once(self) -> bool:
        """One reload, under the reload lock."""
        old = self._state.ruleset
        try:
            ruleset = load_rules(self._paths, packs=self._packs)
            ruleset = self._keep_emptied_files(old, ruleset)
            _check_variables(ruleset, self._variables)
            # Compiling may refuse them too (the bound on region codes, say).
            state = _State(ruleset, self._variables)
        except ComplianceError as exc:  # rule problems, a vanished path, variables
            return self._reload_failed(exc)
        except Exception as exc:  # an unreadable tree and the like
            return self._reload_failed(ComplianceFault(f"cannot load the rule files: {exc}"))
        _warn_unset_required(ruleset, self._variables)
        # The new rules, then their (empty) fast cache: a decision running meanwhile
        # may still hit the old cache, as if it had come a moment earlier.
        self._state = state
        self._repeat = state.fast.mapping
        self._reloads["ok"] += 1
        _warn_unreached_subdivisions(state, self._geolocator)
        self.last_reload_error = None
        new_ids = {loaded.rule.id for loaded in ruleset.rules}
        for loaded in old.rules:
            if loaded.rule.id not in new_ids:
                logger.warning(
                    "rule %s removed by the reload (it was in %s)", loaded.rule.id, loaded.file
                )
        logger.info(
            "rules reloaded: %d rules from %d files", len(ruleset.rules), len(ruleset.files)
        )
        return True

    def _reload_failed(self, error: ComplianceError) -> bool:
        """A reload refused: the previous rules stay, and it is said and counted."""
        self.last_reload_error = error
        self._reloads["failed"] += 1
        logger.error("rule reload failed; still serving the previous rules\n%s", error)
        return False

    def reload_counts(self) -> dict[str, int]:
        """Reloads so far, by result (``ok``, ``failed``): of the rule files, and of the
        geolocator's database files when it counts them (``reload_counts()``, as
        :class:`~compliance.geo.MaxMindGeolocator` and a chain holding one do)."""
        with self._reload_lock:
            counts = Counter(self._reloads)
        counts.update(_reload_counts([self._geolocator]))
        return dict(counts)

    def _keep_emptied_files(self, old: RuleSet, new: RuleSet) -> RuleSet:
        """``new`` plus the last good rules of files that still exist but lost every rule."""
        new_by_file: dict[str, int] = {}
        for loaded in new.rules:
            new_by_file[loaded.file] = new_by_file.get(loaded.file, 0) + 1
        new_ids = {loaded.rule.id for loaded in new.rules}
        kept: list[LoadedRule] = []
        kept_files: set[str] = set()
        for loaded in old.rules:
            file = loaded.file
            if new_by_file.get(file) or file not in new.files:
                continue  # the file has rules, or is gone (its rules go with it)
            if loaded.rule.id in new_ids:
                continue  # moved to another file
            kept.append(loaded)
            kept_files.add(file)
        self._kept = frozenset(kept_files)
        self._warn_kept()
        if not kept:
            return new
        regions = dict(new.regions)
        for name, region in old.regions.items():
            regions.setdefault(name, region)
        return RuleSet(
            files=new.files,
            rules=(*new.rules, *kept),
            regions=regions,
            tests=new.tests,
            packs=new.packs,
            signatures=new.signatures,
        )

    def _warn_kept(self) -> None:
        for file in sorted(self._kept):
            logger.warning(
                "%s has no rules any more (saved half-way?): still serving its last good "
                "rules until it has rules again or is deleted",
                file,
            )

    def _rule_files(self) -> list[str]:
        if self._paths is None and self._packs is None:
            return []  # nothing to watch (see reload)
        return [str(f) for f in find_rule_files(resolve_sources(self._paths, self._packs))]

    def watch(self, interval: float = 2.0) -> None:
        """Check the rule files every ``interval`` seconds and reload when they change (the
        library's one :class:`~compliance.watch.FileWatcher`; it restarts after ``fork()``).
        Files appearing in a watched folder count as changes."""
        if self._watcher is not None:
            return
        # The watcher's thread holds the watcher, and the watcher holds the engine only
        # weakly: an engine dropped without close() (a framework's middleware built per
        # test client, say) is collected, and its thread stops, instead of living on.
        engine = weakref.ref(self)

        def files() -> list[str]:  # called at every check
            alive = engine()
            if alive is None:
                return []
            # A half-saved file is warned about at every check until it is fixed, without
            # reloading every rule file (and emptying the decision cache) each time.
            alive._warn_kept()
            return alive._rule_files()

        def changed(changes: Mapping[str, object]) -> None:
            alive = engine()
            if alive is not None:
                alive.reload()

        watcher = FileWatcher(files, changed, interval=interval, name="compliance-rule-watcher")
        self._watcher = watcher
        self._unwatch = weakref.finalize(self, watcher.stop, 0)
        watcher.start()
        loaded = self._state.ruleset.signatures
        if loaded and dict(loaded) != dict(watcher.signatures):
            # Saved (or added) after the rules were read and before watching began (while
            # a database was opened, say): the watcher took them as its starting point, so
            # they are read now.
            self.reload()

    def close(self) -> None:
        """Stop watching and release the geolocator."""
        if self._watcher is not None:
            if self._unwatch is not None:
                self._unwatch.detach()
            self._watcher.stop()
            self._watcher = None
        self._geolocator.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCATING: Final = ("ip", "headers", "trusted")
"""The convenience fields that say who the reader is (with ``request=``, not ``location=``)."""


def _refuse_mixed(fields: RequestFields, allowed: tuple[str, ...]) -> None:
    """A ``request=`` holds the whole request: request fields beside it would be ignored
    (``at=`` would decide for today), so they are an error, as unknown ones are."""
    Engine._check_fields(fields)
    extra = sorted(name for name in fields if name not in allowed)
    if extra:
        beside = "location= and request=" if not allowed else "request="
        raise TypeError(
            f"Engine.decide() with {beside} takes no {', '.join(extra)}, which would be "
            "ignored: the request's parts go in the Request (Request.of(host=..., path=..., "
            "at=...)), or leave out request= for the convenience form"
        )


def _sources_of(ruleset: RuleSet) -> tuple[list[str] | None, tuple[str, ...] | None]:
    """The rule files and bundled packs ``ruleset`` was loaded from, as ``paths`` and
    ``packs``; both None when it was not loaded from any (built in memory)."""
    if not ruleset.files and not ruleset.packs:
        return None, None
    pack_files: set[str] = set()
    for name in ruleset.packs:
        try:
            pack_files.add(os.fspath(pack_path(name)))
        except ConfigurationError:  # a name from a RuleSet built by hand: not a pack here
            return (list(ruleset.files), ()) if ruleset.files else (None, None)
    return [file for file in ruleset.files if file not in pack_files], ruleset.packs


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _reset_in_child() -> None:
    """A child forked while another thread reloaded (gunicorn's master forks workers while
    its rule watcher runs) holds that reload's lock, and no thread to release it: every
    reload, and every read of the reload counts (``metrics()``), would wait for ever."""
    for engine in list(_engines):
        engine._reload_lock = threading.RLock()
        engine._reloading = None
        engine._reload_again = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def _fields_key(fields: RequestFields) -> tuple[object, ...]:
    """The fast-cache key of a convenience call: the request's fields as given (seven, so
    never equal to a six-part Request). Not ``ip``: once located, the address decides
    nothing, and a geolocator hands every reader of a network the same Location object,
    whose identity is the subkey."""
    get = fields.get
    return (
        get("url"),
        get("host"),
        get("path"),
        get("accept_language"),
        get("tags", ()),
        get("at"),
        get("page_language"),
    )


def _never(host: str) -> bool:
    return False


def _fast_cacheable(
    url_chars: int,
    host: str,
    accept_language: str | None,
    page_language: str | None,
    tags: frozenset[str],
) -> bool:
    """Whether a request's parts are short enough for the fast cache (``url_chars``: its
    URL's or path's length), so that its entries' sizes stay bounded."""
    return (
        url_chars <= _FAST_MAX_URL
        and len(host) <= 255
        and len(accept_language or "") <= _FAST_MAX_LANGUAGE
        and len(page_language or "") <= _MAX_PAGE_LANGUAGE
        and len(tags) <= _FAST_MAX_TAGS
        and all(len(tag) <= 100 for tag in tags)
    )

"""The decision engine: which notices apply to this reader and request, and why.

Rules are compiled into an index from jurisdiction code to the rules that mention it, so a
decision looks at a handful of candidate rules however many rules are loaded. Decisions are
immutable and cached; a reload builds a complete new rule set off to the side and swaps it in
with one assignment, so a decision never sees half of one rule set and half of another.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import time as _time
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from .errors import ComplianceError, ComplianceFault, ConfigurationError
from .geo import Geolocator, Location, open_geolocator
from .loader import LoadedRule, RuleSet, find_rule_files, load_rules
from .locales import LocaleChoice, choose_locale
from .models import Block, Notice, Region, Rule
from .render import block_json, block_page, message_text, notice_html, style_element

__all__ = ["BlockMatch", "Decision", "Engine", "NoticeMatch", "TraceEntry"]

logger = logging.getLogger("compliance.engine")

Placement = Literal["body_start", "body_end", "marker"]
_EPOCH = dt.date(1970, 1, 1)
_DECISION_CACHE_SIZE = 8192


# -- matching helpers -------------------------------------------------------------------------


def _glob(patterns: Sequence[str], *, host: bool) -> re.Pattern[str] | None:
    """One regex for a list of globs: ``**`` any run, ``*`` a run without ``/``, ``?`` one."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        out = []
        for token in re.split(r"(\*\*|\*|\?)", pattern.lower() if host else pattern):
            if token == "**":
                out.append(".*")
            elif token == "*":
                out.append(".*" if host else "[^/]*")
            elif token == "?":
                out.append("." if host else "[^/]")
            else:
                out.append(re.escape(token))
        parts.append("".join(out))
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.DOTALL)


@functools.lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[str, str]:
    """(host, path) of a URL, host lower-cased without port, path decoded and normalized.

    Decoding and normalizing stop ``/%6Eews/`` or ``/a/../news/`` from slipping past a
    path pattern that the application's router would still resolve to ``/news/``.

    >>> split_url("https://WWW.Example.org:8443/%6Eews/../news/a%20b.html?x=1")
    ('www.example.org', '/news/a b.html')
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        raw_path = parts.path
    except ValueError:
        return "", "/"
    return host, normalize_path(raw_path)


@functools.lru_cache(maxsize=4096)
def normalize_path(raw: str) -> str:
    """Percent-decode and normalize a URL path (``/a/./b/../c`` is ``/a/c``)."""
    path = unquote(raw or "/", errors="replace")
    if not path.startswith("/"):
        path = "/" + path
    normalized = posixpath.normpath(path)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized


_today_until = 0.0
_today_value = _EPOCH


def _today() -> dt.date:
    """Today's UTC date; the clock is compared with the next midnight, not converted."""
    global _today_until, _today_value
    now = time.time()
    if now >= _today_until:
        number = int(now // 86400)
        _today_value = _EPOCH + dt.timedelta(days=number)
        _today_until = (number + 1) * 86400.0
    return _today_value


def _day(at: dt.date | dt.datetime | None) -> dt.date:
    if at is None:
        return _today()
    if isinstance(at, dt.datetime):
        if at.tzinfo is not None:
            at = at.astimezone(dt.UTC)
        return at.date()
    return at


# -- compiled rules ---------------------------------------------------------------------------


class _Regions:
    """Region membership over a location's codes, with nested regions."""

    def __init__(self, regions: Mapping[str, Region]) -> None:
        self._regions = regions

    def matches(self, name: str, codes: frozenset[str], depth: int = 0) -> bool:
        region = self._regions[name]
        if depth > 32:
            return False
        return any(self.code_matches(c, codes, depth) for c in region.include) and not any(
            self.code_matches(c, codes, depth) for c in region.exclude
        )

    def code_matches(self, code: str, codes: frozenset[str], depth: int = 0) -> bool:
        if code == "*":
            return True
        if code in self._regions:
            return self.matches(code, codes, depth + 1)
        return code in codes

    def flatten(self, code: str, depth: int = 0) -> set[str]:
        """Every plain code a jurisdiction may match (excludes ignored): for the index."""
        if code in self._regions and depth <= 32:
            out: set[str] = set()
            for item in self._regions[code].include:
                out |= self.flatten(item, depth + 1)
            return out
        return {code}


class CompiledRule:
    """A rule ready to be matched quickly, with its rendered notices cached per locale."""

    __slots__ = (
        "_cache",
        "_regions",
        "exclude_paths",
        "file",
        "hosts",
        "id",
        "line",
        "paths",
        "priority",
        "rule",
        "sort_key",
        "star",
        "start",
        "tags",
        "until",
    )

    def __init__(self, loaded: LoadedRule, regions: _Regions) -> None:
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
        self.hosts = _glob(rule.hosts, host=True)
        self.paths = _glob(rule.paths, host=False)
        self.exclude_paths = _glob(rule.exclude_paths, host=False)
        self.tags = frozenset(rule.tags)
        self._regions = regions
        self._cache: dict[tuple[str, str], str] = {}

    def index_codes(self) -> set[str]:
        codes: set[str] = set()
        for code in self.rule.jurisdictions:
            if code != "*":
                codes |= self._regions.flatten(code)
        return codes

    def why_not(self, ctx: _Context) -> str | None:
        """The first reason this rule does not apply, or None when it does."""
        rule = self.rule
        location = ctx.location
        if location.country is None:
            if rule.unknown_location != "apply":
                return "unknown location (unknown_location: skip)"
        else:
            codes = ctx.codes
            if not any(self._regions.code_matches(c, codes) for c in rule.jurisdictions):
                return f"jurisdiction: {_where(location)} is not in {', '.join(rule.jurisdictions)}"
            for code in rule.exclude:
                if self._regions.code_matches(code, codes):
                    return f"excluded: {_where(location)} matches exclude {code}"
        if self.start is not None and ctx.day < self.start:
            return f"not yet effective: starts {self.start.isoformat()}"
        if self.until is not None and ctx.day >= self.until:
            return f"expired: ended {self.until.isoformat()}"
        if self.hosts is not None and not self.hosts.match(ctx.host):
            return f"host: {ctx.host or '(none)'} does not match {', '.join(rule.hosts)}"
        if self.paths is not None and not self.paths.match(ctx.path):
            return f"path: {ctx.path} does not match {', '.join(rule.paths)}"
        if self.exclude_paths is not None and self.exclude_paths.match(ctx.path):
            return f"path: {ctx.path} is excluded by {', '.join(rule.exclude_paths)}"
        if self.tags and not (self.tags & ctx.tags):
            shown = ", ".join(sorted(ctx.tags)) or "none"
            return f"tags: page tags ({shown}) include none of {', '.join(rule.tags)}"
        return None

    def rendered(self, kind: str, locale: str, variables: Mapping[str, Any]) -> str:
        """Rendered output cached per (kind, locale); variables are fixed per engine."""
        key = (kind, locale)
        cached = self._cache.get(key)
        if cached is None:
            if kind == "notice":
                assert self.rule.notice is not None
                cached = notice_html(self.id, self.rule.notice, locale, variables)
            elif kind == "notice-text":
                assert self.rule.notice is not None
                cached = message_text(self.rule.notice, locale, variables)
            elif kind == "block-html":
                assert self.rule.block is not None
                cached = block_page(self.id, self.rule.block, locale, variables)
            elif kind == "block-json":
                assert self.rule.block is not None
                cached = block_json(self.id, self.rule.block, locale, variables)
            else:
                assert self.rule.block is not None
                cached = message_text(self.rule.block, locale, variables)
            self._cache[key] = cached
        return cached


def _where(location: Location) -> str:
    return "/".join([location.country or "?", *location.subdivisions])


@dataclass(frozen=True, slots=True)
class _Context:
    location: Location
    codes: frozenset[str]
    host: str
    path: str
    tags: frozenset[str]
    day: dt.date


class _State:
    """One compiled rule set and everything derived from it; replaced whole on reload."""

    def __init__(self, ruleset: RuleSet, variables: Mapping[str, Any]) -> None:
        self.ruleset = ruleset
        self.variables = variables
        regions = _Regions(ruleset.regions)
        self.rules = tuple(
            sorted((CompiledRule(r, regions) for r in ruleset.rules), key=lambda c: c.sort_key)
        )
        by_code: dict[str, list[CompiledRule]] = {}
        star: list[CompiledRule] = []
        unknown: list[CompiledRule] = []
        for compiled in self.rules:
            if compiled.star:
                star.append(compiled)
            for code in compiled.index_codes():
                by_code.setdefault(code, []).append(compiled)
            if compiled.rule.unknown_location == "apply":
                unknown.append(compiled)
        self.by_code = {code: tuple(rules) for code, rules in by_code.items()}
        self.star = tuple(star)
        self.unknown = tuple(unknown)
        # Does any rule depend on where the reader is? If not, pages are not location-dependent.
        self.location_sensitive = any(
            not (r.star and r.rule.unknown_location == "apply") for r in self.rules
        )
        self.candidates_cache: dict[frozenset[str], tuple[CompiledRule, ...]] = {}
        self.decisions: dict[tuple[Any, ...], Decision] = {}
        self.fast: dict[tuple[Any, ...], tuple[Location, Decision]] = {}
        self.lock = threading.Lock()

    def candidates(self, codes: frozenset[str]) -> tuple[CompiledRule, ...]:
        found = self.candidates_cache.get(codes)
        if found is None:
            merged = {id(r): r for code in codes for r in self.by_code.get(code, ())}
            merged.update((id(r), r) for r in self.star)
            found = tuple(sorted(merged.values(), key=lambda c: c.sort_key))
            if len(self.candidates_cache) < 65536:
                self.candidates_cache[codes] = found
        return found


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


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """Whether one rule applied, and if not, the first reason why not."""

    rule_id: str
    applied: bool
    reason: str | None

    def __str__(self) -> str:
        return f"{self.rule_id}: " + ("applied" if self.applied else f"skipped, {self.reason}")


@dataclass(frozen=True, eq=False)
class NoticeMatch:
    """A notice that applies; render it in any of its locales."""

    rule_id: str
    placement: Placement
    priority: int
    locale: str
    """The locale chosen for the decision's reader and request (no page language)."""
    locale_reason: str
    _rule: CompiledRule = field(repr=False)
    _variables: Mapping[str, Any] = field(repr=False)

    @property
    def locales(self) -> tuple[str, ...]:
        """Every locale this notice has a text for."""
        notice = self._rule.rule.notice
        assert notice is not None
        return tuple(notice.texts)

    def html(self, locale: str | None = None) -> str:
        """The ``<aside class="compliance-notice">`` markup in ``locale`` (default: chosen)."""
        return self._rule.rendered("notice", locale or self.locale, self._variables)

    def text(self, locale: str | None = None) -> str:
        """The notice as plain text in ``locale`` (default: the chosen one)."""
        return self._rule.rendered("notice-text", locale or self.locale, self._variables)


@dataclass(frozen=True, eq=False)
class BlockMatch:
    """A block that applies: answer 451 with an explanation, do not call the application."""

    rule_id: str
    status: int
    blocked_by: str
    locale: str
    _rule: CompiledRule = field(repr=False)
    _variables: Mapping[str, Any] = field(repr=False)

    @property
    def link_header(self) -> str:
        """The RFC 7725 ``Link`` header value naming who implements the block."""
        return f'<{self.blocked_by}>; rel="blocked-by"'

    def html(self) -> str:
        """A complete HTML page explaining the block."""
        return self._rule.rendered("block-html", self.locale, self._variables)

    def json(self) -> str:
        """The explanation as a JSON document."""
        return self._rule.rendered("block-json", self.locale, self._variables)

    def text(self) -> str:
        """The explanation as plain text."""
        return self._rule.rendered("block-text", self.locale, self._variables)


@dataclass(frozen=True, eq=False)
class Decision:
    """What applies to one reader and request. Immutable; safe to share between threads."""

    location: Location
    notices: tuple[NoticeMatch, ...]
    block: BlockMatch | None
    headers: Mapping[str, str]
    """Extra response headers from the rules that apply."""
    vary: tuple[str, ...]
    """Request headers the response now varies on (geo header, Accept-Language)."""
    private: bool
    """The page depends on a location derived from the client address, which a shared
    cache cannot key on: send ``Cache-Control: private`` (see the middleware's cache policy)."""
    applied: tuple[str, ...]
    """Ids of every rule whose action takes effect, including header-only rules."""
    accept_language: str | None = field(repr=False, default=None)
    _trace: Callable[[], tuple[TraceEntry, ...]] = field(repr=False, default=tuple)

    @property
    def trace(self) -> tuple[TraceEntry, ...]:
        """For every loaded rule, whether it applied and the first reason it did not.

        Computed on first use: it looks at every rule, which a decision does not.
        """
        return self._trace()

    def locale_for(self, notice: NoticeMatch, page_language: str | None) -> str:
        """The locale for ``notice`` once the page's own language is known."""
        if not page_language:
            return notice.locale
        return choose_locale(
            notice.locales,
            notice.locale if notice.locale_reason == "default" else _default(notice),
            page_language=page_language,
            accept_language=self.accept_language,
            country=self.location.country,
        ).locale

    def snippets(
        self,
        page_language: str | None = None,
        *,
        css: bool = False,
        nonce: str | None = None,
    ) -> dict[Placement, str]:
        """The HTML to insert at each placement, notices in priority order."""
        out: dict[Placement, str] = {}
        for notice in self.notices:
            markup = notice.html(self.locale_for(notice, page_language))
            out[notice.placement] = out.get(notice.placement, "") + markup
        if css and out:
            first = next(iter(out))
            out[first] = style_element(nonce) + out[first]
        return out

    def to_dict(self, page_language: str | None = None, *, trace: bool = True) -> dict[str, Any]:
        """A JSON-able summary (the ``compliance check --format json`` document)."""
        notices = []
        for notice in self.notices:
            locale = self.locale_for(notice, page_language)
            notices.append(
                {
                    "rule": notice.rule_id,
                    "locale": locale,
                    "placement": notice.placement,
                    "text": notice.text(locale),
                    "html": notice.html(locale),
                }
            )
        block = None
        if self.block is not None:
            block = {
                "rule": self.block.rule_id,
                "status": self.block.status,
                "locale": self.block.locale,
                "link": self.block.link_header,
                "text": self.block.text(),
                "html": self.block.html(),
            }
        return {
            "location": {
                "country": self.location.country,
                "subdivisions": list(self.location.subdivisions),
                "source": self.location.source,
            },
            "notices": notices,
            "block": block,
            "headers": dict(self.headers),
            "vary": list(self.vary),
            "private": self.private,
            "trace": [
                {"rule": t.rule_id, "applied": t.applied, "reason": t.reason} for t in self.trace
            ]
            if trace
            else [],
        }


def _default(notice: NoticeMatch) -> str:
    message = notice._rule.rule.notice
    assert message is not None
    return message.default_locale


def _check_variables(ruleset: RuleSet, variables: Mapping[str, Any]) -> None:
    """Site-wide variables must name variables that rules use: a typo would otherwise
    silently leave the rule's default (say, another publisher's name) in a legal notice."""
    used: set[str] = set()
    for loaded in ruleset.rules:
        for message in (loaded.rule.notice, loaded.rule.block):
            if message is not None:
                used.update(message.variables)
    unknown = sorted(set(variables) - used)
    if unknown:
        raise ConfigurationError(
            f"variables {', '.join(map(repr, unknown))} are not used by any rule "
            f"(rules use: {', '.join(sorted(used)) or 'none'})"
        )


# -- the engine -------------------------------------------------------------------------------


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
        variables: Mapping[str, Any] | None = None,
        paths: Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        self._variables = MappingProxyType(dict(variables or {}))
        _check_variables(ruleset, self._variables)
        self._state = _State(ruleset, self._variables)
        self._geolocator: Geolocator = (
            geolocator if geolocator is not None else open_geolocator(None)
        )
        self._locate = self._geolocator.locate
        self._paths = None if paths is None else tuple(paths)
        self._reload_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_reload_error: ComplianceError | None = None
        """Why the last reload failed (a :class:`RuleError` listing the problems, or a
        :class:`ConfigurationError` for a vanished path); None after a successful one."""

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        geoip_db: str | os.PathLike[str] | None = None,
        *,
        geolocator: Geolocator | None = None,
        variables: Mapping[str, Any] | None = None,
        watch: float | None = None,
    ) -> Engine:
        """An engine over rule files (None: the bundled pack) and a geolocator: the one
        given, else a MaxMind database at ``geoip_db``, else the embedded lookup. With
        ``watch`` (seconds), rule files are polled and reloaded when they change."""
        if isinstance(paths, str | os.PathLike):
            paths = [paths]  # one path, not the characters of one path
        path_list = None if paths is None else list(paths)
        ruleset = load_rules(path_list)
        if geolocator is None:
            geolocator = open_geolocator(geoip_db)
        engine = cls(ruleset, geolocator, variables=variables, paths=path_list)
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
    def variables(self) -> Mapping[str, Any]:
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
        ip: str | None = None,
        url: str | None = None,
        host: str | None = None,
        path: str | None = None,
        accept_language: str | None = None,
        tags: Iterable[str] = (),
        at: dt.date | dt.datetime | None = None,
        location: Location | None = None,
        page_language: str | None = None,
        headers: Mapping[str, str] | None = None,
        trusted: bool = False,
    ) -> Decision:
        """Decide for one reader (``ip``, or a known ``location``) and one request (``url``,
        or ``host`` and ``path``). ``headers`` (lower-case names) and ``trusted`` feed CDN
        header geolocation; ``at`` defaults to now (UTC)."""
        if location is None:
            # Positional when untrusted: a keyword argument costs measurably on this path.
            if trusted:
                location = self._geolocator.locate(ip, headers, trusted=True)
            else:
                location = self._locate(ip, headers)
        day = (_today_value if _time() < _today_until else _today()) if at is None else _day(at)
        if tags.__class__ is not tuple and tags.__class__ is not frozenset:
            tags = tuple(tags)
        state = self._state
        # Fast path for a repeat reader: keyed on the Location object's identity (the
        # geolocator's cache hands back the same object, and a new one after a reload), so
        # the hit costs no URL parsing and no hashing of the Location's fields.
        fast_key = (id(location), url, host, path, accept_language, tags, page_language, day)
        hit = state.fast.get(fast_key)
        if hit is not None and hit[0] is location:
            return hit[1]
        if url is not None:
            host, path = split_url(url)
        else:
            host = (host or "").lower().partition(":")[0]
            path = normalize_path(path or "/")
        tag_set = tags if isinstance(tags, frozenset) else frozenset(tags)
        key = (location, host, path, accept_language, tag_set, page_language, day)
        decision = state.decisions.get(key)
        if decision is None:
            decision = self._decide(
                state, location, host, path, accept_language, tag_set, page_language, day
            )
        with state.lock:
            if len(state.decisions) >= _DECISION_CACHE_SIZE:
                state.decisions.clear()
            if len(state.fast) >= _DECISION_CACHE_SIZE:
                state.fast.clear()
            state.decisions[key] = decision
            state.fast[fast_key] = (location, decision)
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
        codes = (
            frozenset((location.country, *location.subdivisions))
            if location.country
            else frozenset()
        )
        ctx = _Context(location, codes, host, path, tags, day)
        candidates = state.candidates(codes) if location.country else state.unknown
        matched = [rule for rule in candidates if rule.why_not(ctx) is None]
        block_rule = next((r for r in matched if r.rule.block is not None), None)
        variables = state.variables
        block = None
        notices: list[NoticeMatch] = []
        multilingual = False
        if block_rule is not None:
            message = block_rule.rule.block
            assert isinstance(message, Block)
            choice = self._choose(message, page_language, accept_language, location)
            multilingual = len(message.texts) > 1
            block = BlockMatch(
                block_rule.id,
                message.status,
                message.blocked_by,
                choice.locale,
                block_rule,
                variables,
            )
        else:
            for rule in matched:
                notice = rule.rule.notice
                if isinstance(notice, Notice):
                    choice = self._choose(notice, page_language, accept_language, location)
                    multilingual = multilingual or len(notice.texts) > 1
                    notices.append(
                        NoticeMatch(
                            rule.id,
                            notice.placement,
                            rule.priority,
                            choice.locale,
                            choice.reason,
                            rule,
                            variables,
                        )
                    )
        applied = tuple(
            r.id for r in matched if block_rule is None or r is block_rule or r.rule.notice is None
        )
        extra: dict[str, str] = {}
        for rule in matched:
            if rule.id in applied:
                for name, value in rule.rule.headers.items():
                    extra.setdefault(name, value)
        vary: list[str] = []
        if location.via_header:
            vary.append(location.via_header)
        if multilingual and not page_language:
            vary.append("accept-language")
        private = state.location_sensitive and location.via_header is None

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
            accept_language=accept_language,
            _trace=_Once(trace),
        )

    @staticmethod
    def _choose(
        message: Notice | Block,
        page_language: str | None,
        accept_language: str | None,
        location: Location,
    ) -> LocaleChoice:
        return choose_locale(
            tuple(message.texts),
            message.default_locale,
            page_language=page_language,
            accept_language=accept_language,
            country=location.country,
        )

    # -- reloading

    def reload(self) -> bool:
        """Reload the rule files; on problems keep serving the old rules and return False.

        The problems are logged and kept in :attr:`last_reload_error`.
        """
        with self._reload_lock:
            try:
                ruleset = load_rules(self._paths)
                _check_variables(ruleset, self._variables)
            except ComplianceError as exc:  # rule problems, a vanished path, variables
                self.last_reload_error = exc
                logger.error("rule reload failed; still serving the previous rules\n%s", exc)
                return False
            except Exception as exc:  # an unreadable tree and the like
                fault = ComplianceFault(f"cannot read the rule files: {exc}")
                self.last_reload_error = fault
                logger.error("rule reload failed (%s); still serving the previous rules", fault)
                return False
            self._state = _State(ruleset, self._variables)
            self.last_reload_error = None
            logger.info(
                "rules reloaded: %d rules from %d files", len(ruleset.rules), len(ruleset.files)
            )
            return True

    def _signature(self) -> tuple[tuple[str, int, int, int], ...]:
        from .loader import bundled_rules_path

        paths = self._paths if self._paths is not None else [bundled_rules_path()]
        try:
            files = find_rule_files(paths)
        except Exception:
            return ()
        out = []
        for file in files:
            try:
                st = Path(file).stat()
            except OSError:
                continue
            out.append((str(file), st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def watch(self, interval: float = 2.0) -> None:
        """Poll the rule files every ``interval`` seconds and reload when they change."""
        if self._watcher is not None:
            return
        self._stop.clear()
        seen = self._signature()

        def run() -> None:
            nonlocal seen
            while not self._stop.wait(interval):
                current = self._signature()
                if current != seen:
                    seen = current
                    self.reload()

        self._watcher = threading.Thread(target=run, name="compliance-rule-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop watching and release the geolocator."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self._geolocator.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""``compliance export nginx``: ``map`` blocks, ``geoip2`` and ``sub_filter``.

nginx has no conditions beyond ``map`` and ``if``, so the decision is compiled into maps:

1. ``geoip2`` gives the country and the first two subdivisions; small maps reduce them to
   the codes the rules name (``~`` for "another subdivision"), and one map from that key
   gives a string with one ``1``/``0`` per rule: is the reader in its jurisdictions?
2. one map per rule adds host and path (``"$where $host $uri"`` against one regex);
3. content tags come from the origin's ``X-Compliance-Tags`` through
   ``$upstream_http_x_compliance_tags`` (maps are evaluated lazily, when ``sub_filter``
   asks for the replacement, so the upstream's headers are known by then);
4. per set of locales, maps over ``Accept-Language`` and the country choose the locale as
   the library does (in header order; see the README for what nginx cannot do);
5. one map per notice gives its markup in the chosen locale, and ``sub_filter`` puts the
   concatenated markup in place.

Effective dates are baked in for one day (``at``): the export says until when it is valid.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Final

from compliance import __about__
from compliance.http import CACHING_HEADERS

from . import Export
from .plan import (
    EdgePlan,
    EdgeRule,
    LocaleTable,
    Omission,
    accept_language_limits,
    escape_regex,
    location_matches,
)

__all__ = ["render_nginx"]

_P = "compliance"
# The library's weights: RFC 9110's qvalue; any other makes the range malformed (skipped).
_Q = f"(?:{accept_language_limits()['qvalue']})"
_QZERO = r"(?:0(?:\.0{0,3})?)"
# Whitespace as the library reads it (RFC 9110's OWS).
_OWS = r"[ \t]*"
# Request headers cleared where a notice may go: the origin sends the whole page.
_WHOLE_PAGE: Final = ("range", "if_range", "if_modified_since", "if_none_match")
_WS = r"[\t\n\f\r ]*"
# `q` or `Q` (parameter names are case-insensitive): the maps around it are caseless. The
# whitespace after the tag is read once, before the weight or the end: two runs of it around
# an optional part would split a long run of spaces every way before failing (quadratic).
_POSITIVE_Q = rf"(?:;{_OWS}q{_OWS}={_OWS}(?!{_QZERO}{_OWS}(?:,|$)){_Q}{_OWS})?"
# Header names nginx can read from the origin as `$upstream_http_<name>` (lower case, `-` as
# `_`): any other character ends the variable's name, and `_` would also find `-`.
_READABLE_HEADER = re.compile(r"^[A-Za-z0-9-]+$")
_CACHE_PASSES = 8
"""Separate runs of ``public``/``s-maxage``/``private`` removed from ``Cache-Control``."""
_SHARED_CACHE_HEADERS = ("CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control")


def _quote(value: str) -> str:
    """A double-quoted nginx string whose text is taken literally (``$`` included)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + out.replace("$", "${compliance_dollar}") + '"'


def _literal(value: str) -> str:
    """A double-quoted nginx string for a parameter nginx takes as it is (a header's name):
    no variables there, so ``$`` stays, and no character of it ends the directive."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Words a `map` reads as its own parameters where a key stands: a key spelled so (a rule id
# `default` or `include`) is written `\\default`, which nginx reads as the key `default`.
_MAP_PARAMETERS: Final = frozenset({"default", "hostnames", "include", "volatile"})


def _key(text: str) -> str:
    """A map key matched as exactly ``text`` (no variables in keys, so ``$`` stays): a key
    that would read as a map parameter, a regular expression (``~``) or an escape (``\\``)
    gets the backslash nginx strips from the front of a key.

    >>> print(_key("include"), _key("en-gb"))
    "\\\\include" "en-gb"
    """
    if text in _MAP_PARAMETERS or text.startswith(("~", "\\")):
        text = "\\" + text
    return _literal(text)


def _regex(pattern: str, *, caseless: bool = False) -> str:
    """A regex map key; a backslash is kept for PCRE (nginx unescapes ``\\\\`` and ``\\"``)."""
    escaped = pattern.replace("\\\\", "\\x5c").replace('"', "\\x22")
    return '"' + ("~*" if caseless else "~") + escaped + '"'


def _chunks(tags: Iterable[str], size: int = 2500) -> list[str]:
    """Alternations of language tags (``-`` or ``_`` between subtags), each short enough
    for one nginx configuration token (4 KiB)."""
    out: list[str] = []
    current: list[str] = []
    length = 0
    for tag in sorted(set(tags), key=lambda t: (-len(t), t)):
        part = re.escape(tag).replace("\\-", "[-_]")
        if current and length + len(part) > size:
            out.append("(?:" + "|".join(current) + ")")
            current, length = [], 0
        current.append(part)
        length += len(part) + 1
    if current:
        out.append("(?:" + "|".join(current) + ")")
    return out


def _ascii(markup: str) -> str:
    """Markup with every non-ASCII character as a numeric reference: the same text in a page
    of any ASCII-compatible charset (nginx cannot read a page's ``<meta charset>``).

    >>> _ascii("<p>Текст</p>")
    '<p>&#1058;&#1077;&#1082;&#1089;&#1090;</p>'
    """
    return markup.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _split(text: str, size: int = 3000) -> list[str]:
    """``text`` in pieces of at most ``size`` UTF-8 bytes once quoted (nginx reads a
    configuration token into a 4 KiB buffer)."""
    pieces: list[str] = []
    current: list[str] = []
    length = 2
    for char in text:
        size_of = len(_quote(char).encode("utf-8")) - 2
        if length + size_of > size:
            pieces.append("".join(current))
            current, length = [], 2
        current.append(char)
        length += size_of
    pieces.append("".join(current))
    return pieces


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def map(
        self,
        source: str,
        variable: str,
        entries: Sequence[tuple[str, str]],
        default: str = '""',
        comment: str | None = None,
    ) -> None:
        if comment:
            self.lines.append(f"# {comment}")
        self.lines.append(f"map {source} ${variable} {{")
        self.lines.append(f"    default {default};")
        for key, value in entries:
            self.lines.append(f"    {key} {value};")
        self.lines.append("}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


# One character of `$uri` as the library counts it. nginx matches bytes (PCRE without UTF:
# with it, invalid UTF-8 in `$uri` would make the match an error) where the library matches
# the path decoded with errors="replace", so one character is a UTF-8 sequence, the longest
# start of one that breaks off (one U+FFFD), or any other byte (one U+FFFD each). Atomic: it
# never gives back part of a character.
_UTF8_TAIL = (
    r"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]?|[\xe1-\xec\xee\xef][\x80-\xbf]{1,2}"
    r"|\xed[\x80-\x9f][\x80-\xbf]?|\xf0[\x90-\xbf][\x80-\xbf]{0,2}|[\xf1-\xf3][\x80-\xbf]{1,3}"
    r"|\xf4[\x80-\x8f][\x80-\xbf]{0,2}|[\x80-\xff]"
)
_PATH_CHAR = rf"(?>[^/\x80-\xff]|{_UTF8_TAIL})"
"""One character other than ``/`` (a path's ``?``)."""
_ANY_CHAR = rf"(?>[^\x80-\xff]|{_UTF8_TAIL})"


def _marks(token: str, one: str, compact: bool) -> str:
    """A run of ``?`` (``token``), ``one`` regular expression each: repeated, or, compact,
    counted (``(?:one){n}``: as long as one, where nginx reads a map key of 4 KiB at most)."""
    if compact and len(token) > 1:
        return f"(?:{one}){{{len(token)}}}"
    return one * len(token)


def _path_glob(tokens: Sequence[str], compact: bool = False) -> str:
    """A path glob as PCRE over bytes. A star matches bytes (fast) except right before a
    ``?``: there it must stop between characters, so it runs over whole characters. Before
    a literal or the end it cannot stop inside one (a literal starts with an ASCII or lead
    byte, which always begins a character)."""
    out = []
    for number, token in enumerate(tokens):
        before_one = number + 1 < len(tokens) and tokens[number + 1].startswith("?")
        if token.startswith("*"):
            if len(token) > 1:
                out.append(f"(?:{_ANY_CHAR})*" if before_one else ".*")
            else:
                out.append(f"(?:{_PATH_CHAR})*" if before_one else "[^/]*")
        elif token.startswith("?"):
            out.append(_marks(token, _PATH_CHAR, compact))
        else:
            out.append(escape_regex(token))
    return "(?:" + "".join(out) + ")"


def _glob(pattern: str, *, host: bool, compact: bool = False) -> str:
    """One glob as PCRE that does not backtrack where it need not: when every star matches
    any run (hosts; paths with only ``**``), each literal piece is taken at its first place
    (atomic lazy groups), which is as good as any later place. Paths mixing ``*`` and ``**``
    fall back to a plain translation, bounded by PCRE's match limit. ``compact`` counts runs
    of ``?`` instead of repeating them (the same match, a shorter text)."""
    tokens = [t for t in re.split(r"(\*+|\?+)", pattern) if t]
    stars = [t for t in tokens if t.startswith("*")]
    if not host and any(len(t) == 1 for t in stars):
        return _path_glob(tokens, compact)
    one = "[^ ]" if host else _PATH_CHAR
    chunks: list[str] = [""]
    marked = [False]  # the chunk starts with a `?`
    for token in tokens:
        if token.startswith("*"):
            chunks.append("")
            marked.append(False)
        elif token.startswith("?"):
            marked[-1] = marked[-1] or not chunks[-1]
            chunks[-1] += _marks(token, one, compact)
        else:
            chunks[-1] += escape_regex(token)
    if len(chunks) == 1:
        return chunks[0]

    def run(number: int) -> str:
        # Before a `?` a path's run stops between characters (see _path_glob).
        if host:
            return "[^ ]"
        return f"(?:{_ANY_CHAR})" if marked[number] else "."

    middle = "".join(
        f"(?>{run(number)}*?{chunk})"
        for number, chunk in enumerate(chunks[:-1])
        if number and chunk
    )
    return f"{chunks[0]}{middle}{run(len(chunks) - 1)}*{chunks[-1]}"


def _globs(patterns: Sequence[str], *, host: bool, compact: bool = False) -> str | None:
    """Globs as one alternation of :func:`_glob`, or None for none."""
    if not patterns:
        return None
    return "(?:" + "|".join(_glob(p, host=host, compact=compact) for p in patterns) + ")"


# -- locale negotiation -----------------------------------------------------------------------


class _Locales:
    """The maps that choose one notice's or block's locale."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        limits = accept_language_limits()
        self.items = int(limits["items"])
        self.length = int(limits["header"])
        self.range = int(limits["range"])
        self.names: dict[tuple[tuple[str, ...], str], int] = {}
        self.truncated = False

    def header(self) -> str:
        """The variable holding ``Accept-Language`` as the library reads it: its first
        ``header`` characters (a range cut there is read as cut)."""
        if not self.truncated:
            self.truncated = True
            self.writer.map(
                "$http_accept_language",
                f"{_P}_accept_language",
                [(_regex(f"^(.{{0,{self.length}}})"), "$1")],
                comment="Accept-Language: the characters the library reads",
            )
        return f"${_P}_accept_language"

    def request_locale(self, table: LocaleTable) -> str:
        """A variable holding the locale chosen without the page's language."""
        if len(table.options) == 1:
            return _quote(table.options[0])
        number = self._ensure(table)
        return f"${_P}_lang_{number}"

    def page_locale(self, table: LocaleTable) -> str:
        """A variable holding the locale chosen with the page's ``Content-Language``."""
        if len(table.options) == 1:
            return _quote(table.options[0])
        number = self._ensure(table)
        return f"${_P}_nl_{number}"

    def page_choice(self, table: LocaleTable) -> str:
        """A variable holding the locale the page's language chose, or empty."""
        return f"${_P}_pg_{self._ensure(table)}"

    def _ensure(self, table: LocaleTable) -> int:
        number = self.names.get(table.key)
        if number is not None:
            return number
        number = self.names[table.key] = len(self.names)
        w = self.writer
        by_option = {
            option: sorted(tag for tag, found in table.tags.items() if found == option)
            for option in table.options
        }
        # A range counts when it is in one of the options' languages (nginx cannot hold the
        # list of every tag the library matches: see the README's limits).
        languages = "|".join(sorted({re.escape(tag.partition("-")[0]) for tag in table.tags}))
        # What the library matches of a tag: the subtags before the first singleton (an
        # extension or private use, dropped). Each subtag ends at a separator, so none of
        # these repetitions can split a run of characters two ways (no backtracking blow-up).
        matched = rf"(?:{languages})(?:[-_][a-z0-9]{{2,8}})*"
        extension = r"(?:[-_][a-z0-9](?:[-_][a-z0-9]{1,8})*)?"
        # The library's range grammar: at most eight subtags of one to eight characters.
        tag = r"(?=[a-z]{1,8}(?:[-_][a-z0-9]{1,8}){0,7}(?![-_a-z0-9]))"
        usable = f"{tag}{matched}{extension}"
        captured = f"{tag}({matched}){extension}"
        acceptable = rf"{_OWS}{_POSITIVE_Q}(?:,|$)"
        # The library reads the first `items` ranges only, of `range` characters at most.
        before = f"{{0,{max(self.items - 1, 0)}}}"
        short = f"(?=[^,]{{0,{self.range}}}(?:,|$))"
        first = (
            rf"^(?:(?!{short}{_OWS}(?:{usable}|\*){acceptable})[^,]*,){before}"
            rf"{short}{_OWS}{captured}{acceptable}"
        )
        w.map(
            self.header(),
            f"{_P}_at_{number}",
            [(_regex(first, caseless=True), "$1")],
            comment=f"locales {', '.join(table.options)}: the first acceptable range in "
            "Accept-Language in one of their languages, then the locale it picks",
        )
        w.map(
            f"${_P}_at_{number}",
            f"{_P}_al_{number}",
            [
                (_regex(rf"^{chunk}$", caseless=True), _quote(option))
                for option, tags in by_option.items()
                for chunk in _chunks(tags)
            ],
        )
        # Refusals, read as the jurisdiction step reads them: in a country that reads a tag
        # without a region otherwise (table.regional: a refused `pt` is pt-PT in Portugal),
        # the tag refuses that country's option there and its usual one elsewhere.
        elsewhere: dict[str, list[str]] = {}
        there: dict[str, dict[str, list[str]]] = {}
        for country, read in sorted(table.regional.items()):
            for bare, option in read.items():
                elsewhere.setdefault(bare, []).append(country)
                there.setdefault(option, {}).setdefault(bare, []).append(country)

        def refusal(countries: str, tags: Iterable[str]) -> list[tuple[str, str]]:
            return [
                (
                    _regex(
                        rf"^{countries}:(?:[^,]*,){before}{short}{_OWS}{tag}{chunk}{extension}"
                        rf"{_OWS};{_OWS}q{_OWS}={_OWS}{_QZERO}{_OWS}(?:,|$)",
                        caseless=True,
                    ),
                    "1",
                )
                for chunk in _chunks(tags)
            ]

        refused_vars = []
        for index, (option, tags) in enumerate(by_option.items()):
            name = f"{_P}_rf_{number}_{index}"
            refused_vars.append(f"${name}")
            entries = refusal("[^:]*", [t for t in tags if t not in elsewhere])
            for bare in (t for t in tags if t in elsewhere):
                entries += refusal(f"(?!(?:{'|'.join(elsewhere[bare])}):)[^:]*", [bare])
            for bare, countries in there.get(option, {}).items():
                entries += refusal(f"(?:{'|'.join(countries)})", [bare])
            w.map(f'"${_P}_country:{self.header()}"', name, entries, default="0")
        positions = {option: i for i, option in enumerate(table.options)}
        entries = [(_regex(r"^([^:]+):"), "$1")]
        for country, candidates in sorted(table.countries.items()):
            earlier: list[str] = []
            for candidate in candidates:
                if candidate in earlier:
                    continue
                mask = ["."] * len(table.options)
                for option in earlier:
                    mask[positions[option]] = "1"
                mask[positions[candidate]] = "0"
                entries.append((_regex(f"^:{country}:{''.join(mask)}$"), _quote(candidate)))
                earlier.append(candidate)
        w.map(
            f'"${_P}_al_{number}:${_P}_country:{"".join(refused_vars)}"',
            f"{_P}_lang_{number}",
            entries,
            default=_quote(table.default),
        )
        w.map(
            "$upstream_http_content_language",
            f"{_P}_pt_{number}",
            # Around it, the ASCII whitespace the library strips (PCRE's \s holds VT too).
            [(_regex(rf"^{_WS}({matched}){extension}{_WS}(?:,|$)", caseless=True), "$1")],
        )
        page_entries = [
            (_regex(rf"^{chunk}$", caseless=True), _quote(option))
            for option, tags in by_option.items()
            for chunk in _chunks(tags)
        ]
        w.map(f"${_P}_pt_{number}", f"{_P}_pg_{number}", page_entries)
        w.map(
            f'"${_P}_pg_{number}|${_P}_lang_{number}"',
            f"{_P}_nl_{number}",
            [(_regex(r"^([^|]+)\|"), "$1"), (_regex(r"^\|(.*)$"), "$1")],
        )
        return number


# -- locations --------------------------------------------------------------------------------


def _iso_subdivisions(country: str) -> list[str]:
    """The ISO 3166-2 codes of ``country``."""
    import pycountry

    found = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    return [subdivision.code for subdivision in found]


def _where_entries(
    plan: EdgePlan, rules: Sequence[EdgeRule]
) -> tuple[list[str], dict[str, list[str]], list[tuple[str, str]], str]:
    """(countries named, subdivisions named per country, map entries, unknown bits)."""
    codes = plan.codes()
    subdivisions: dict[str, list[str]] = {}
    countries: set[str] = set()
    for code in codes:
        if "-" in code:
            country = code.partition("-")[0]
            subdivisions.setdefault(country, []).append(code)
            countries.add(country)
        else:
            countries.add(code)
    for values in subdivisions.values():
        values.sort()

    def bits(country: str | None, subs: Sequence[str]) -> str:
        return "".join(
            "1" if location_matches(rule, plan.regions, country, subs) else "0" for rule in rules
        )

    entries: list[tuple[str, str]] = []
    for country in [*sorted(countries), "*"]:
        # "*" stands for a known country no rule names: "ZZ" is no country's code.
        real = "ZZ" if country == "*" else country
        options = ["", "~", *subdivisions.get(country, [])]
        for first, second in itertools.product(options, repeat=2):
            # An empty first level with a second one: the first is a code ISO does not
            # assign, which the library leaves out (the second stands alone).
            subs = [s if s != "~" else f"{real}-~" for s in (first, second) if s]
            entries.append((_key(f"{country}:{first}:{second}"), _quote(bits(real, subs))))
    return sorted(countries), subdivisions, entries, bits(None, [])


_KEY_BYTES = 3500
"""The longest regex map key written: nginx reads a configuration token into a 4 KiB buffer
("too long parameter" past it)."""


def _size(pattern: str) -> int:
    """Bytes ``pattern`` takes in a regex map key (additive: keys are concatenations)."""
    return len(_regex(pattern).encode("utf-8")) - 3


def _pack(parts: Sequence[str], limit: int) -> list[str]:
    """Alternations of ``parts``, each at most ``limit`` bytes in a key (as :func:`_chunks`)."""
    out: list[str] = []
    current: list[str] = []
    length = 4  # "(?:" and ")"
    for part in parts:
        size = _size(part)
        if current and length + size > limit:
            out.append("(?:" + "|".join(current) + ")")
            current, length = [], 4
        current.append(part)
        length += size + 1
    if current:
        out.append("(?:" + "|".join(current) + ")")
    return out


def _matcher(
    plan: EdgePlan, rule: EdgeRule, width: int
) -> tuple[list[str], list[str], list[str]] | None:
    """(host alternations, path alternations, excluded-path alternations) of a rule's map,
    whose keys are ``<prefix> <host> <path>``, each key under :data:`_KEY_BYTES`: one of
    each, as a rule has them, where that fits; else the globs spread over several keys,
    each glob on its own too long for one listed and left out (None: the whole rule, when
    none of its hosts or none of its paths is left). ``width``: digits of a rule's index."""
    overhead = _size(f"(?s)^.{{{'9' * width}}}1[01]*  \\z")
    hosts = _globs(rule.hosts, host=True) or "[^ ]*"
    paths = _globs(rule.paths, host=False) or ".*"
    excluded = _globs(rule.exclude_paths, host=False)
    longest = max(_size(paths), _size(excluded) if excluded else 0)
    if overhead + _size(hosts) + longest <= _KEY_BYTES:
        return [hosts], [paths], [excluded] if excluded else []
    budget = _KEY_BYTES - overhead

    def fitting(patterns: Sequence[str], host: bool, limit: int, field: str) -> list[str]:
        what = "hosts" if host else "paths"
        kept = []
        for pattern in patterns:
            text = _glob(pattern, host=host, compact=True)
            if _size(text) + 4 <= limit:
                kept.append(text)
                continue
            plan.omissions.append(
                Omission(
                    rule.id,
                    f"`{field}` glob `{pattern}`: its regular expression is longer than nginx "
                    "reads in one map key (4 KiB)",
                    "left out: the rule applies on the paths it excludes"
                    if field == "exclude_paths"
                    else f"left out: the rule does not apply on {what} only it matches",
                )
            )
        return kept

    host_parts = fitting(rule.hosts, True, budget // 2, "hosts")
    host_chunks = _pack(host_parts, budget // 2) if rule.hosts else ["[^ ]*"]
    room = budget - max((_size(chunk) for chunk in host_chunks), default=0)
    path_parts = fitting(rule.paths, False, room, "paths")
    path_chunks = _pack(path_parts, room) if rule.paths else [".*"]
    excluded_chunks = _pack(fitting(rule.exclude_paths, False, room, "exclude_paths"), room)
    if not host_chunks or not path_chunks:
        field = "hosts" if not host_chunks else "paths"
        plan.omissions.append(
            Omission(rule.id, f"none of its `{field}` globs fits in an nginx map key", "left out")
        )
        return None
    return host_chunks, path_chunks, excluded_chunks


# -- the export -------------------------------------------------------------------------------


def render_nginx(plan: EdgePlan, *, geoip_db: str, at: dt.date) -> Export:
    """``http.conf``, ``location.conf`` and ``README.md`` for the rules in force on ``at``."""
    in_force = [rule for rule in plan.rules if rule.in_force(at)]
    boundaries = sorted(
        day
        for rule in plan.rules
        for day in (rule.start, rule.until)
        if day is not None and day > at
    )
    valid_until = boundaries[0] if boundaries else None
    earlier = [
        day
        for rule in plan.rules
        for day in (rule.start, rule.until)
        if day is not None and day <= at
    ]
    valid_from = max(earlier) if earlier else None
    rules: list[EdgeRule] = []
    matchers: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for rule in in_force:
        if rule.block is not None and rule.tags:
            plan.omissions.append(
                Omission(
                    rule.id,
                    "a block that depends on content tags: nginx answers a block before the "
                    "origin's X-Compliance-Tags are known",
                    "left out",
                )
            )
            continue
        if rule.notice is not None and rule.notice.placement in ("marker", "after_heading"):
            target = "<!-- compliance:notices -->" if rule.notice.placement == "marker" else "</h1>"
            plan.omissions.append(
                Omission(
                    rule.id,
                    f"placement {rule.notice.placement}: sub_filter puts the notice after the "
                    f"first `{target}`, even one in a hidden element (the library passes such "
                    "over for one that is shown) or, for the marker, inside a paragraph (the "
                    "library waits for its end), and cannot fall back to body_start when "
                    "there is none",
                    "exported without the fallback",
                )
            )
        matcher = _matcher(plan, rule, len(str(len(in_force))))
        if matcher is None:
            continue
        matchers[rule.id] = matcher
        rules.append(rule)
    limits = accept_language_limits()
    plan.limits.extend(
        [
            "Accept-Language is read in header order: the first acceptable language wins. "
            "The library orders by q-value; both agree when q-values do not increase along "
            "the header, as browsers send them. q=0 refusals are honoured. Like the library, "
            f"nginx reads only the first {limits['header']:,} characters and "
            f"{limits['items']} ranges, skips a range longer than {limits['range']} characters, "
            "and answers in time linear in the header (a longer header line than "
            "`large_client_header_buffers` allows, 8 KiB by default, is refused by nginx "
            "itself). A range in one of a notice's languages that the "
            "library cannot match (an unknown region such as `en-XY`, a script babel drops "
            "such as `ru-Latn`) ends nginx's search, where the library reads on; so does a "
            "numeric region code the library reads as a country's (`en-826` as en-GB). So "
            "does a "
            "range with a variant (`en-GB-oxendict`, `de-DE-1996`) that the library matches "
            "by its language and region. An extension or private use (`de-DE-u-co-phonebk`, "
            "`ru-x-foo`) is left out of the match in both. A language ranked below a `*` "
            "(`*, ru;q=0.5`) is passed over by the library's country step, not by nginx's: "
            "a reader in Russia who sends it gets the notice in Russian from nginx.",
            "The page's language is read from the origin's `Content-Language` only; nginx "
            "cannot see `<html lang>`.",
            "body_start notices are put right after `</head>` (an HTML parser then opens the "
            "body before them, with the `<body>` tag's attributes): a page without `</head>` "
            "gets none. body_end notices go before the first `</body>`: a page without one "
            "(the tag is optional, and minifiers drop it) gets none. sub_filter matches these "
            "tags, `</h1>` and the marker literally: `</body >`, `</h1\n>` or "
            "`<!--compliance:notices-->` (the library reads all three) are not found.",
            "A page is edited only where nginx reads its type as `text/html` or "
            "`application/xhtml+xml`: nginx drops a `charset` parameter only, so a "
            "`Content-Type` with another (`text/html; foo=bar`) gets no notice, though its "
            "headers are those of an edited page.",
            "nginx cannot look at a body before editing it, so it cannot see notices the "
            "origin already inserted: an origin that also runs the middleware must not add "
            "notices to requests carrying `X-Compliance-Edge: nginx` (see docs/edge.md).",
            "sub_filter edits uncompressed bodies only: location.conf clears "
            "`Accept-Encoding` towards the origin; a response compressed anyway is not edited.",
            "An `X-Compliance-Skip` header with an empty value is taken as absent (the "
            "library: present). Of two `Content-Type` lines, nginx decides on the first "
            "whether the page gets notices (the library reads the last, as browsers do).",
            "Only the first `X-Compliance-Tags` header of a response is read. nginx before "
            "1.23 reads only the first line of a header sent on several (1.23 joins them): "
            "of `Cache-Control`, `CDN-Cache-Control` and the other caching headers it edits, "
            "it sends the first line only (a `no-store` on a second line is lost: send the "
            "directives in one line), and of `Accept-Language`, it reads the first line.",
            "`public`, `s-maxage` and `private` are removed from `Cache-Control` in up to "
            f"{_CACHE_PASSES} separate places of the header (the library: everywhere), and "
            'also from inside a quoted field list (`no-cache="a, public"`), which the '
            'library keeps whole; a `private="..."` list with a comma is cut.',
            "Paths longer than 8,192 characters: nginx refuses such requests with its default "
            "`large_client_header_buffers`; raised, it matches them like others, where the "
            "library counts `paths` as matching and `exclude_paths` as not.",
            "Blocks are answered as HTML; the JSON form the middleware sends to clients that "
            "prefer JSON is not available.",
            "sub_filter drops `ETag` and `Last-Modified` from the HTML pages of this location "
            "(the middleware sends a variant-specific ETag instead).",
            "Notices are inserted with non-ASCII characters as numeric character references, "
            "so they read the same in a page of any ASCII-compatible charset.",
            "A large rule set may need `variables_hash_max_size 4096;` in `http {}` (nginx "
            "warns when the variables hash is too small).",
        ]
    )
    w = _Writer()
    header = [
        f"# Generated by `compliance export nginx` ({__about__.__version__}) for the rules in "
        f"force from {valid_from.isoformat() if valid_from else 'the start'}.",
        "# Do not edit: regenerate when the rules change (`compliance export nginx ... --check`).",
    ]
    if valid_until is not None:
        header.append(
            f"# Valid until {valid_until.isoformat()} (UTC, exclusive): an effective date "
            "changes then; regenerate before it."
        )
    else:
        header.append("# No effective date lies ahead: valid until the rules change.")
    header.append("# Include inside `http { }`; needs ngx_http_geoip2_module (see README.md).")
    w.add(*header, "")
    w.add('geo $compliance_dollar { default "$"; }', "")
    w.add(
        f"geoip2 {_quote(geoip_db)} {{",
        "    auto_reload 60m;",
        f"    ${_P}_country country iso_code;",
        f"    ${_P}_sub0 subdivisions 0 iso_code;",
        f"    ${_P}_sub1 subdivisions 1 iso_code;",
        "}",
        "",
    )
    countries, subdivisions, where_entries, unknown_bits = _where_entries(plan, rules)
    w.map(
        f"${_P}_country",
        f"{_P}_cc",
        [(_regex("^[A-Z]{2}$"), '"*"'), *((_key(c), _quote(c)) for c in countries)],
        comment="the reader's country, when a rule names it; * for another known country",
    )
    all_subs = sorted(s for values in subdivisions.values() for s in values)
    # In a country whose subdivisions rules name, a code ISO 3166-2 does not assign (a
    # database behind a change of codes, CN-22 for CN-JL) is an unknown subdivision, as the
    # library has it: its other ISO codes are "~" one by one, anything else there is "".
    others = sorted(
        code
        for country, named in subdivisions.items()
        for code in _iso_subdivisions(country)
        if code not in named
    )
    stale = [(_regex(f"^{country}-."), '""') for country in sorted(subdivisions)]
    for level in (0, 1):
        w.map(
            f'"${_P}_country-${_P}_sub{level}"',
            f"{_P}_s{level}",
            [
                *stale,
                (_regex("^[A-Z]{2}-."), '"~"'),
                *((_key(s), _quote(s)) for s in all_subs),
                *((_key(s), '"~"') for s in others),
            ],
            comment=f"subdivision {level + 1}, when a rule names it; ~ for another",
        )
    w.map(
        f'"${_P}_cc:${_P}_s0:${_P}_s1"',
        f"{_P}_where",
        where_entries,
        default=_quote(unknown_bits),
        comment="one character per rule below: is the reader in its jurisdictions?",
    )
    w.add("")
    locales = _Locales(w)
    request_vars: list[str] = []
    final_vars: list[str] = []
    for index, rule in enumerate(rules):
        w.add(f"# rule {rule.id} (priority {rule.priority})")
        host_chunks, path_chunks, excluded_chunks = matchers[rule.id]
        entries = [
            (_regex(rf"(?s)^.{{{index}}}1[01]* {hosts} {paths}\z"), value)
            for value, chunks in (("0", excluded_chunks), ("1", path_chunks))
            for hosts in host_chunks
            for paths in chunks
        ]
        w.map(f'"${_P}_where $host $uri"', f"{_P}_r_{index}", entries, default="0")
        request_vars.append(f"${_P}_r_{index}")
        if rule.tags:
            tags = "|".join(re.escape(t) for t in rule.tags)
            w.map(
                f'"${_P}_r_{index}:$upstream_http_x_compliance_tags"',
                f"{_P}_t_{index}",
                [(_regex(rf"^1:(?:.*,)?\s*(?:{tags})\s*(?:,|$)"), "1")],
                default="0",
            )
            final_vars.append(f"${_P}_t_{index}")
        else:
            final_vars.append(f"${_P}_r_{index}")
    w.add("")
    # -- blocks (decided before the origin is asked)
    blocks = [(i, r) for i, r in enumerate(rules) if r.block is not None]
    w.map(
        '"' + "".join(request_vars[i] for i, _ in blocks) + '"',
        f"{_P}_block",
        [(_regex(f"^{'0' * n}1"), _quote(rule.id)) for n, (_, rule) in enumerate(blocks)],
        comment="the block that applies, if any (the first in priority order)",
    )
    block_locale_entries = []
    page_entries: dict[int, list[tuple[str, str]]] = {}
    language_entries = []
    link_entries = []
    vary_entries = []
    for _, rule in blocks:
        assert rule.block is not None
        block_locale_entries.append((_key(rule.id), locales.request_locale(rule.block.table)))
        link_entries.append((_key(rule.id), _quote(rule.block.link)))
        if len(rule.block.table.options) > 1:
            vary_entries.append((_key(rule.id), "1"))
        for locale, page in rule.block.page.items():
            for part, piece in enumerate(_split(page)):
                page_entries.setdefault(part, []).append(
                    (_key(f"{rule.id}:{locale}"), _quote(piece))
                )
            language_entries.append((_key(f"{rule.id}:{locale}"), _quote(locale.replace("_", "-"))))
    w.map(f"${_P}_block", f"{_P}_bl", block_locale_entries)
    for part in range(max(page_entries, default=0) + 1):
        w.map(f'"${_P}_block:${_P}_bl"', f"{_P}_block_page_{part}", page_entries.get(part, []))
    block_parts = max(page_entries, default=0) + 1
    w.map(f'"${_P}_block:${_P}_bl"', f"{_P}_block_language", language_entries)
    w.map(f"${_P}_block", f"{_P}_block_link", link_entries)
    w.map(f"${_P}_block", f"{_P}_block_ml", vary_entries, default="0")
    w.map(
        f'"${_P}_block_ml$http_accept"',
        f"{_P}_block_vary",
        [
            (_regex("^1."), '"Accept-Language, Accept"'),
            (_regex("^1$"), '"Accept-Language"'),
            (_regex("^0."), '"Accept"'),
        ],
    )
    w.add("")
    # -- the response: is it a page? (then the library's headers) may it carry notices?
    w.map(
        "$upstream_http_content_type",
        f"{_P}_html",
        [(_regex(r"^\s*(?:text/html|application/xhtml\+xml)\s*(?:;.*)?$", caseless=True), "1")],
        default="0",
        comment="an HTML response: the library's headers",
    )
    w.map(
        f'"$request_method|$status|$upstream_http_content_range|${_P}_html'
        '|$upstream_http_x_compliance_skip"',
        f"{_P}_editable",
        [(_regex(r"^(?!HEAD\|)[^|]*\|2(?!04|06)\d\d\|\|1\|$"), "1")],
        default="0",
        comment="an HTML page with a 2xx status other than 204/206, and the origin did not "
        "opt out with X-Compliance-Skip: notices",
    )
    notice_rules = [(i, r) for i, r in enumerate(rules) if r.notice is not None]
    w.map(
        '"' + "".join(request_vars[i] for i, _ in notice_rules) + '"',
        f"{_P}_may_notice",
        [(_regex("1"), "1")],
        default="0",
        comment="some notice may apply: ask the origin for the whole page",
    )
    # Where a notice may go, nothing that lets the origin answer with part of the page, or
    # with none of it (a 304 keeps the reader's copy, made before a notice applied or for
    # another place), as in the middleware.
    for name in _WHOLE_PAGE:
        w.map(
            f'"${_P}_may_notice|$http_{name}"',
            f"{_P}_{name}",
            [(_regex(r"^0\|(.*)$"), "$1")],
        )
    placements: dict[str, list[str]] = {}
    multilingual = []
    for index, rule in notice_rules:
        assert rule.notice is not None
        locale = locales.page_locale(rule.notice.table)
        parts = {
            option: _split(_ascii(rule.notice.html[option])) for option in rule.notice.table.options
        }
        for part in range(max(map(len, parts.values()))):
            w.map(
                f'"${_P}_editable{final_vars[index]}:{locale.strip(chr(34))}"',
                f"{_P}_n_{index}_{part}",
                [
                    (_key(f"11:{option}"), _quote(pieces[part]))
                    for option, pieces in parts.items()
                    if part < len(pieces)
                ],
                comment=f"notice {rule.id}" + (f", part {part + 1}" if part else ""),
            )
            placements.setdefault(rule.notice.placement, []).append(f"${_P}_n_{index}_{part}")
        if len(rule.notice.table.options) > 1:
            multilingual.append(f"|{final_vars[index]}:{locales.page_choice(rule.notice.table)}")
    w.map(
        f'"$request_method|$upstream_http_x_compliance_skip|${_P}_editable"',
        f"{_P}_read_page",
        [(_regex(r"^HEAD\|\|"), "1"), (_regex(r"\|1$"), "1")],
        default="0",
        comment="the page's Content-Language takes part in choosing locales: an edited page, "
        "and a HEAD (not edited, but it varies as its GET would)",
    )
    w.map(
        f'"${_P}_html${_P}_read_page' + "".join(multilingual) + '"',
        f"{_P}_vary",
        [
            (_regex(r"^10.*\|1:"), '"Accept-Language"'),
            (_regex(r"^11(?:\|[01]:[^|]*)*\|1:(?:\||$)"), '"Accept-Language"'),
        ],
        comment="the reader's languages chose a notice's locale (not the page's language)",
    )
    # -- the rules' own headers
    # Header names are case-insensitive: one header per name however the rules spell it,
    # sent as the first rule (by priority) spells it, with that rule's value, as the library.
    spelled: dict[str, str] = {}
    for rule in rules:
        for name, _ in rule.headers:
            if plan.location_sensitive and name.lower() in CACHING_HEADERS:
                continue  # a private page takes no caching header from a rule (the library)
            spelled.setdefault(name.lower(), name)
    header_names = list(spelled.values())

    def value_of(rule: EdgeRule, name: str) -> str:
        return next(v for n, v in rule.headers if n.lower() == name.lower())

    answered: set[int] = set()  # rules with a map "is this rule's block the one answered"
    for number, name in enumerate(header_names):
        having = [
            (i, r)
            for i, r in enumerate(rules)
            if any(n.lower() == name.lower() for n, _ in r.headers)
        ]
        served = "".join(final_vars[i] for i, _ in having)
        if _READABLE_HEADER.match(name):
            upstream = "$upstream_http_" + name.lower().replace("-", "_")
        else:
            upstream = ""
            for _, rule in having:
                plan.omissions.append(
                    Omission(
                        rule.id,
                        f"header `{name}`: nginx cannot read a response header of that name, "
                        "so it cannot tell whether the origin already sent one",
                        "sent even when the origin sends its own (the library keeps the origin's)",
                    )
                )
        for _, rule in having:
            if not value_of(rule, name):
                # The map still gives it (""): no rule after it sends its value instead.
                plan.omissions.append(
                    Omission(
                        rule.id,
                        f"header `{name}` with an empty value: nginx's add_header sends no "
                        "header whose value is empty",
                        "not sent, where the library sends it empty",
                    )
                )
        served_entries = [
            (_regex(rf"^1\|\|{'0' * n}1"), _quote(value_of(r, name)))
            for n, (_, r) in enumerate(having)
        ]
        w.map(f'"${_P}_html|{upstream}|{served}"', f"{_P}_h_{number}", served_entries)
        # On a block, as in the library: the rule of the block answered, and rules with
        # neither a notice nor withholding. A rule with a block and a notice or withholding
        # acts only when its block is the one answered. The origin is not asked, so no
        # content tags are known: a rule with tags does not apply (its final variable).
        acting: list[tuple[str, EdgeRule]] = []
        for i, r in having:
            if r.notice is None and not r.withhold:
                acting.append((final_vars[i], r))
            elif r.block is not None:
                if i not in answered:
                    answered.add(i)
                    w.map(f"${_P}_block", f"{_P}_ab_{i}", [(_key(r.id), "1")], default="0")
                acting.append((f"${_P}_ab_{i}", r))
        blocked = [
            (_regex(f"^{'0' * n}1"), _quote(value_of(r, name))) for n, (_, r) in enumerate(acting)
        ]
        w.map(
            '"' + "".join(bit for bit, _ in acting) + '"',
            f"{_P}_bh_{number}",
            blocked,
        )
    if plan.location_sensitive:
        private_when = f"${_P}_html"  # every page: it depends on the reader's location
    else:
        w.map(
            f'"$request_method|$status|$upstream_http_content_range|${_P}_html'
            f'|$upstream_http_x_compliance_skip|${_P}_may_notice"',
            f"{_P}_unedited",
            [(_regex(r"^(?!HEAD\|)[^|]*\|2(?:06\|[^|]*|(?!04)\d\d\|[^|]+)\|1\|\|1$"), "1")],
            default="0",
            comment="notices were due, but the origin answered a range nobody asked for: as "
            "the library's fail mode, the page goes unedited, and private",
        )
        private_when = f"${_P}_unedited"
    # Each map removes the first run of `public`, `s-maxage` and `private` directives (a
    # map makes one replacement): _CACHE_PASSES runs in all, more than any real header.
    shared = r"\s*(?:public|s-maxage|private)\s*(?:=[^,]*)?(?=,|$)"
    previous = f'"{private_when}|$upstream_http_cache_control"'
    for number in range(1, _CACHE_PASSES + 1):
        w.map(
            previous,
            f"{_P}_cc{number}",
            [
                (_regex(rf"^1\|(.*?)(?:(?:(?<=\|)|,){shared})+(.*)$", caseless=True), "1|$1$2"),
                (_regex(r"^(.*)$"), "$1"),
            ],
            comment="Cache-Control: private (public and s-maxage removed) on pages whose "
            "location matters, or, with rules that do not depend on it, that went unedited"
            if number == 1
            else None,
        )
        previous = f"${_P}_cc{number}"
    w.map(
        previous,
        f"{_P}_cache_control",
        [
            (_regex(r"^1\|[\s,]*$"), '"private"'),
            (_regex(r"^1\|[\s,]*(.*?)[\s,]*$"), '"$1, private"'),
            (_regex(r"^0\|(.*)$"), "$1"),
        ],
    )
    for name in _SHARED_CACHE_HEADERS:
        variable = name.lower().replace("-", "_")
        w.map(
            f'"{private_when}|$upstream_http_{variable}"',
            f"{_P}_keep_{variable}",
            [(_regex(r"^0\|(.*)$"), "$1")],
        )
    http_conf = w.text()
    location_conf = _location_conf(plan, header, header_names, placements, block_parts)
    readme = _readme(plan, rules, at, valid_from, valid_until, geoip_db)
    notes = []
    if valid_until is not None:
        notes.append(
            f"nginx export valid until {valid_until.isoformat()} (UTC): regenerate before then"
        )
    else:
        notes.append("nginx export: no effective date lies ahead; valid until the rules change")
    return Export(
        "nginx",
        {"http.conf": http_conf, "location.conf": location_conf, "README.md": readme},
        list(plan.omissions),
        valid_until=valid_until,
        notes=notes,
    )


def _location_conf(
    plan: EdgePlan,
    header: list[str],
    header_names: list[str],
    placements: dict[str, list[str]],
    block_parts: int,
) -> str:
    block_cache = "private" if plan.location_sensitive else "no-cache"
    lines = [
        *header[:-1],
        "# Include inside the `location` that proxies to the application, before proxy_pass.",
        "# Note: nginx inherits proxy_set_header, proxy_hide_header and add_header from outer",
        "# levels only when a level has none of its own: repeat yours in this location.",
        "",
        "# Blocks: answered here, the origin is not asked.",
        "if ($compliance_block) {",
        "    add_header Link $compliance_block_link always;",
        "    add_header Content-Language $compliance_block_language always;",
        "    add_header X-Content-Type-Options nosniff always;",
        "    add_header Vary $compliance_block_vary always;",
        f"    add_header Cache-Control {block_cache} always;",
    ]
    for number, name in enumerate(header_names):
        lines.append(f"    add_header {_literal(name)} $compliance_bh_{number} always;")
    lines += [
        "    charset utf-8;",
        "    return 451 "
        + "".join(f"$compliance_block_page_{n}" for n in range(block_parts))
        + ";",
        "}",
        "default_type text/html;",
        "",
        "# The origin must send bodies sub_filter can edit, whole where a notice may go.",
        'proxy_set_header Accept-Encoding "";',
        *(
            f"proxy_set_header {'-'.join(p.capitalize() for p in name.split('_'))} ${_P}_{name};"
            for name in _WHOLE_PAGE
        ),
        "# Tells an origin that runs the middleware too that this edge adds the notices.",
        "proxy_set_header X-Compliance-Edge nginx;",
        "proxy_hide_header X-Compliance-Tags;",
        "proxy_hide_header X-Compliance-Skip;",
        "",
        "# Headers the library sends on edited pages.",
        "add_header Vary $compliance_vary always;",
    ]
    for number, name in enumerate(header_names):
        lines.append(f"add_header {_literal(name)} $compliance_h_{number} always;")
    # Private as the library makes it (every page where the location matters; else a page
    # whose notices could not go in).
    lines.append("proxy_hide_header Cache-Control;")
    lines.append("add_header Cache-Control $compliance_cache_control always;")
    for name in _SHARED_CACHE_HEADERS:
        variable = name.lower().replace("-", "_")
        lines.append(f"proxy_hide_header {name};")
        lines.append(f"add_header {name} $compliance_keep_{variable} always;")
    lines += [
        "",
        "# Notices, in the library's markup and order.",
        "sub_filter_once on;",
        "sub_filter_types application/xhtml+xml;  # and text/html, always",
    ]
    start = "".join(placements.get("body_start", []))
    if start:
        lines.append(f"sub_filter '</head>' '</head>{start}';")
    marker = "".join(placements.get("marker", []))
    if marker:
        lines.append(
            f"sub_filter '<!-- compliance:notices -->' '<!-- compliance:notices -->{marker}';"
        )
    heading = "".join(placements.get("after_heading", []))
    if heading:
        lines.append(f"sub_filter '</h1>' '</h1>{heading}';")
    end = "".join(placements.get("body_end", []))
    if end:
        lines.append(f"sub_filter '</body>' '{end}</body>';")
    return "\n".join(lines) + "\n"


def _readme(
    plan: EdgePlan,
    rules: Sequence[EdgeRule],
    at: dt.date,
    valid_from: dt.date | None,
    valid_until: dt.date | None,
    geoip_db: str,
) -> str:
    exported = "\n".join(f"- `{rule.id}`" for rule in rules) or "- (none)"
    waiting = [rule.id for rule in plan.rules if not rule.in_force(at)]
    not_in_force = "\n".join(f"- `{r}`" for r in waiting) or "- (none)"
    omitted = "\n".join(f"- {item}" for item in plan.omissions) or (
        "- Nothing: every rule in force is exported."
    )
    limits = "\n".join(f"- {limit}" for limit in plan.limits)
    since = valid_from.isoformat() if valid_from else "the start"
    validity = (
        f"**Valid until {valid_until.isoformat()}** (UTC, exclusive): an effective date changes "
        "then. Regenerate and reload nginx before it."
        if valid_until is not None
        else "No effective date lies ahead: valid until the rules change."
    )
    return f"""# nginx: legal notices at the edge

Generated by `compliance export nginx` ({__about__.__version__}) for the rules in force from
{since}. {validity}

Do not edit these files; regenerate them when the rules change, and check them in CI with
`compliance export nginx ... --output DIR --check`.

## Wire it in

Modules (Debian/Ubuntu: `apt-get install nginx libnginx-mod-http-geoip2`): the standard
`ngx_http_sub_module`, `ngx_http_map_module` and `ngx_http_realip_module`, and
`ngx_http_geoip2_module`. The Debian package enables the last one for the system
configuration; elsewhere load it in the main context:

    load_module modules/ngx_http_geoip2_module.so;

    http {{
        # Believe the client address your proxies or load balancer write, and only theirs.
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;  # the last address no trusted proxy wrote, as the library

        include /etc/nginx/compliance/http.conf;

        server {{
            location / {{
                include /etc/nginx/compliance/location.conf;
                proxy_set_header Host $host;   # repeat your own proxy_set_header lines here
                proxy_pass http://app;
            }}
        }}
    }}

The GeoIP database is `{geoip_db}` (re-read every hour by `auto_reload`). Do not put
`proxy_cache` on this location without adding the reader's country to the cache key: the pages
differ by location (they are sent `Cache-Control: private`).

## Rules exported

{exported}

Not in force in that period (not exported):

{not_in_force}

## Left out (not expressible in nginx)

{omitted}

## Limits

{limits}
"""

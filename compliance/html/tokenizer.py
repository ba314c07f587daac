"""A resumable HTML tokenizer that reports only the tokens its reader asks for.

:class:`Tokenizer` reads bytes chunk by chunk (the caller keeps the unconsumed tail and feeds
it again with the next chunk) and calls a :class:`TokenSink` for the tokens in its
:class:`Watch`: start and end tags by name, comments, character data. Everything else is
consumed without a Python-level step where possible: one regular expression, compiled for the
watch and cached, skips text and every tag that cannot matter, so the cost of a page is close
to the cost of one C-level match over it.

It follows the HTML standard's tokenizer where the insertion points depend on it: comments
(including ``<!-->`` and bogus comments), doctypes, CDATA, quoted and unquoted attributes,
the raw-text and RCDATA elements (``script`` with its escaped states, ``style``, ``textarea``,
``title``, ``xmp``, ``iframe``, ``noembed``, ``noframes``, ``noscript`` as with scripting on,
``plaintext``). The tokenizer state also depends on tree construction, so it follows the few
tree-builder rules that change it:

* foreign content: inside ``<svg>``/``<math>`` a ``<script>`` or ``<style>`` is an ordinary
  element (its text is markup, ``<!--`` opens a comment), ``<![CDATA[`` is CDATA, ``/>``
  closes an element; the HTML integration points (``foreignObject``, ``desc``, ``title``,
  ``annotation-xml`` with an HTML encoding) and MathML text integration points (``mi``,
  ``mo``, ``mn``, ``ms``, ``mtext``) bring HTML rules back; the "breakout" start tags
  (``<p>``, ``<div>``, ``<h1>``...) close foreign content. ``</p>`` and ``</br>`` do too in
  today's standard, but not in html5lib 1.1, against which this package is checked: they are
  taken as closing nothing, which leaves this tokenizer on the cautious side (it inserts
  nothing inside what it believes is foreign content, and closes it before a notice at the
  very end, an end tag a browser ignores);
* ``<select>``: as html5lib's "in select" mode, only ``option``, ``optgroup``, ``script``,
  ``template`` and the tags that end the select are honoured. Today's Chromium reads a
  select's content as in the body (customizable select): a ``<style>``, ``<plaintext>``,
  ``<svg>`` or ``<math>`` start tag there is dropped by one reading and kept by the other, so
  the context is :attr:`Tokenizer.lost` from there on; ``<textarea>`` and ``<keygen>`` end
  the select in html5lib only, so it is taken as still open;
* ``<template>`` contents, counted by start and end tags.

The sink sees the context of every event through :attr:`Tokenizer.template`,
:attr:`Tokenizer.foreign` and :attr:`Tokenizer.select`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from operator import itemgetter
from typing import Final, Protocol, TypeVar

__all__ = [
    "CLOSES_P",
    "RAW_TEXT",
    "VOID",
    "QuietSink",
    "TokenSink",
    "Tokenizer",
    "Watch",
    "attribute_list",
    "attributes",
]

WS: Final = b"\t\n\f\r "

RAW_TEXT: Final = frozenset(b"style textarea title xmp iframe noembed noframes noscript".split())
"""Elements whose content the tokenizer reads as text up to their end tag (besides script)."""

VOID: Final = frozenset(
    b"area base basefont bgsound br col embed frame hr image img input keygen link meta param"
    b" source track wbr".split()
)
"""Elements that never have content: their start tag is the whole element."""

CLOSES_P: Final = frozenset(
    b"address article aside blockquote center details dialog dir div dl fieldset figcaption"
    b" figure footer header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4"
    b" h5 h6 pre listing form plaintext table hr xmp".split()
)
"""Start tags that close an open ``<p>`` (the standard's "close a p element" in body mode;
``li``, ``dd`` and ``dt`` close one too, after looking for their own kind)."""

# Start tags that leave foreign content (the standard's list; "font" only with attributes).
_BREAKOUT = frozenset(
    b"b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i"
    b" img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u"
    b" ul var".split()
)
# End tags that end the foreign content they appear in, as start tags of _BREAKOUT do (the
# HTML Standard since 2023, and browsers; html5lib 1.1 keeps the foreign content open).
_BREAKOUT_ENDS = frozenset((b"p", b"br"))
_MATHML_TEXT_IP = frozenset(b"mi mo mn ms mtext".split())
_SVG_HTML_IP = frozenset(b"foreignobject desc title".split())
# Start tags honoured inside <select> (html5lib's "in select" mode); the rest are dropped.
_SELECT_KEEPS = frozenset(b"option optgroup select input keygen textarea script template".split())
# Start tags that end the select in both readings. html5lib (and browsers before 2025) end it
# at <keygen> and <textarea> too, but Chromium keeps them in it: the select is taken as open
# still (nothing goes there, and a notice at the very end closes it).
_SELECT_ENDERS = frozenset(b"select input".split())
# Dropped inside <select> by html5lib, kept by browsers since 2025 (besides raw text).
_SELECT_CHANGES = frozenset(b"plaintext svg math".split())

# Names the tokenizer itself must always see: they change how the following bytes are read.
INTRINSIC_STARTS: Final = RAW_TEXT | frozenset(
    b"script plaintext template svg math select input keygen".split()
)
INTRINSIC_ENDS: Final = frozenset(b"template svg math select".split())
# Of those, the start tags that matter only inside a <select> (they end it, or are kept in it).
_SELECT_ONLY: Final = frozenset(b"input keygen".split())

# Kinds of the entries of the foreign stack.
_F_FOREIGN: Final = 0  # an SVG or MathML element
_F_HTML_IP: Final = 1  # an HTML integration point (foreign element whose content is HTML)
_F_TEXT_IP: Final = 2  # a MathML text integration point
_F_ANNOTATION: Final = 3  # MathML annotation-xml that is not an HTML integration point
_F_HTML: Final = 4  # an HTML element inside an integration point

# --- regular expressions ---------------------------------------------------------------------

_NAME = rb"[A-Za-z][^\t\n\f\r />]*+"
# The attribute part of a tag, as the HTML tokenizer reads it: quotes only open a value right
# after "=" (whitespace allowed around it). Possessive and atomic throughout, so the pattern
# either ends at the tag's real ">" or fails because the tag is incomplete.
_ATTRS = (
    rb"(?:[\t\n\f\r /]++|(?>[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"[^\"]*+\"?|'[^']*+'?|[^\t\n\f\r >\"'][^\t\n\f\r >]*+)?)?))*+"
)
_TAG = re.compile(rb"</?(" + _NAME + rb")" + _ATTRS + rb">")
_ATTR = re.compile(
    rb"[\t\n\f\r /]*+([^\t\n\f\r />][^\t\n\f\r />=]*+)"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"([^\"]*+)\"|'([^']*+)'|([^\t\n\f\r >\"'][^\t\n\f\r >]*+))?)?"
)
# The rest of a start tag after its name, read in few steps when its attributes are plainly
# written: runs of anything but quotes, ">" and "=", and "=" followed by a value. A quote
# opens a value only right after the "=" that ends an attribute's name, so an "=" is taken
# here only right after a character that can end a name (not whitespace, "/", a quote, "=",
# "<" or ">"), and without whitespace before the value; the run before it cannot end inside
# the tag's name (the name must be followed by whitespace, "/" or ">") nor inside an
# unquoted value (read whole, to whitespace or ">"). On such a tag the HTML tokenizer and
# this pattern agree on where it ends; anything else (a stray quote, "=" after whitespace,
# "==", ...) makes it fail, and the exact pattern above takes over.
# (Written as "run (value run)*": the regular expression engine pays for every repetition of
# a group, little for a run of characters.) Tried first, the way most tags are written: only
# attributes each after whitespace, written name="value" (a name that cannot start with "="
# nor hold a quote, "<" or "="), which the HTML tokenizer reads the same way; it costs about
# a fifth less per attribute than the general run, whose look-behind it does without.
_DOUBLE_QUOTED = rb"[\t\n\f\r ]++[^\t\n\f\r /\"'=<>]++=\"[^\"]*+\""
_PLAIN_REST = (
    rb"(?:>|" + _DOUBLE_QUOTED + rb"(?:" + _DOUBLE_QUOTED + rb")*+>"
    rb"|[\t\n\f\r /][^\"'>=]*+(?:(?<=[^\t\n\f\r /\"'=<>])="
    rb"(?:\"[^\"]*+\"|[^\t\n\f\r >\"'=][^\t\n\f\r >]*+|'[^']*+')[^\"'>=]*+)*+>)"
)
_PLAIN_ATTRS = rb"[^\t\n\f\r />\"'=<]*+" + _PLAIN_REST


def plain_attributes(unless: bytes) -> bytes:
    """A pattern for the attributes of a plainly written tag (each after whitespace, written
    ``name``, ``name=value``, ``name="value"`` or ``name='value'``, no stray quotes or "<"),
    none of whose names starts with what ``unless`` matches; the tag's end is the caller's."""
    return (
        rb"(?:[\t\n\f\r ]++(?!" + unless + rb")[^\t\n\f\r />\"'=<]++"
        rb"(?:=(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'=<`]++))?)*+"
    )


def text_to_end(name: bytes, *, unless: bytes = b"") -> bytes:
    """A pattern for raw text up to (not including) the end tag of ``name``, with no "<"
    starting what ``unless`` matches on the way; fails where the end tag is not there yet.
    (Written as "run (step run)*": the regular expression engine pays for every repetition
    of a group, little for a run of characters.)"""
    end = b"/(?i:" + name + rb")[\t\n\f\r />]"
    stop = unless + b"|" + end if unless else end
    return rb"[^<]*+(?:<(?!" + stop + rb")[^<]*+)*+(?=<" + end + rb")"


# The whole-token patterns below start after the "<": the skips put one "<" before a choice.
WHOLE_COMMENT: Final = rb"!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+--!?>)"
"""A pattern for a whole comment after its "<", as the HTML tokenizer ends it (``<!-->``
included)."""
SCRIPT_TEXT: Final = text_to_end(b"script", unless=b"!--")
"""A pattern for a script's text up to its end tag when it never starts an escape
(``<!--``): the common case, read exactly as ``_scan_script`` would read it."""
# A whole script element up to (not including) its end tag, in that common case, after its
# name; then with the name in any case, and written in lower case (a choice rules that one
# out at its first byte).
_SCRIPT_AFTER_NAME = rb"(?=[\t\n\f\r />])" + _ATTRS + rb">" + SCRIPT_TEXT
_WHOLE_SCRIPT = rb"(?i:script)" + _SCRIPT_AFTER_NAME
_LOWER_WHOLE_SCRIPT = rb"script" + _SCRIPT_AFTER_NAME

# A whole script whose start tag (plainly written) has no src, data or srcset attribute.
_WHOLE_URLLESS_SCRIPT = (
    rb"(?i:script)(?=[\t\n\f\r />])"
    + plain_attributes(rb"(?i:src|data|srcset|href|xlink:href)[\t\n\f\r /=>]")
    + rb"[\t\n\f\r ]*+>"
    + SCRIPT_TEXT
)

_SKIP = {
    0: re.compile(rb"[^\t\n\f\r />]*+"),
    1: re.compile(rb"[\t\n\f\r /]*+"),
    2: re.compile(rb"[^\t\n\f\r />=]*+"),
    3: re.compile(rb"[\t\n\f\r ]*+"),
    4: re.compile(rb"[\t\n\f\r ]*+"),
    7: re.compile(rb"[^\t\n\f\r >]*+"),
}
_COMMENT_END = re.compile(rb"--!?>")
_SCRIPT_DATA = re.compile(rb"<!--|</(?i:script)[\t\n\f\r />]")
_SCRIPT_ESCAPED = re.compile(rb"-->|</(?i:script)[\t\n\f\r />]|<(?i:script)[\t\n\f\r />]")
_SCRIPT_DOUBLE = re.compile(rb"-->|</(?i:script)[\t\n\f\r />]")
_RAW_END = {name: re.compile(rb"</(?i:" + name + rb")[\t\n\f\r />]") for name in RAW_TEXT}


MAX_DEPTH: Final = 512
"""Deepest foreign content followed (browsers stop nesting at 512 too)."""

LONGEST_TAG: Final = 1 << 20
"""Tags longer than this are never read whole (a reader that must read every tag it cares
about, as withholding does, sets :attr:`Tokenizer.max_token` to it)."""


# Element names most pages are made of, the most common first. Their tags, when plainly
# written (an end tag without attributes, a start tag whose attributes are each one space and
# name="value"), are read by literal alternatives tried before the general ones. In ``re`` a
# choice rules out an alternative that starts with a literal byte almost for free, but pays
# for every character class it tests there and, about as much as for a short tag, for every
# lookahead it enters: the general alternatives need both to tell watched names apart. Speed
# only: any other tag is read by the general alternatives, and to the same end.
_COMMON_NAMES: Final = (
    b"a p li span div img em strong i b br td tr ul h2 h3 time source picture figure"
    b" figcaption section article header footer nav button small label blockquote ol h1 h4 th"
    b" tbody thead dd dt dl"
).split()
# One attribute of a plainly written start tag (see _DOUBLE_QUOTED).
_SPACE_DOUBLE_QUOTED = rb" [^\t\n\f\r /\"'=<>]++=\"[^\"]*+\""


def _literal_alternatives(names: Iterable[bytes]) -> list[bytes]:
    """Patterns matching exactly ``names`` (lower case, in their order), one per first
    letter, each nested the same way so that every alternative of a choice starts with a
    literal byte."""
    groups: dict[bytes, list[bytes]] = {}
    for name in names:
        groups.setdefault(name[:1], []).append(name[1:])
    alternatives = []
    for first, rests in groups.items():
        longer = [rest for rest in rests if rest]
        if not longer:
            alternatives.append(re.escape(first))
        elif len(rests) == 1:
            alternatives.append(re.escape(first + rests[0]))
        else:
            empty = b"|" if len(longer) < len(rests) else b""
            alternatives.append(re.escape(first) + b"(?:" + empty + literal_choice(longer) + b")")
    return alternatives


def literal_choice(names: Iterable[bytes]) -> bytes:
    """A pattern matching exactly ``names`` (lower case), every alternative of each choice
    in it starting with a literal byte."""
    return b"|".join(_literal_alternatives(names))


def _plain_common(starts: frozenset[bytes], ends: frozenset[bytes]) -> list[bytes]:
    """Alternatives (after "<") for the tags of :data:`_COMMON_NAMES` that are neither in
    ``starts`` nor in ``ends``, plainly written: one for all end tags, one per first letter
    of a start tag's name."""
    pieces = []
    ended = [name for name in _COMMON_NAMES if name not in ends]
    if ended:
        pieces.append(b"/(?:" + literal_choice(ended) + b")>")
    started = [name for name in _COMMON_NAMES if name not in starts]
    for names in _literal_alternatives(started):
        pieces.append(b"(?:" + names + b")(?:" + _SPACE_DOUBLE_QUOTED + b")*+>")
    return pieces


def _first_letters(names: Iterable[bytes]) -> list[bytes]:
    """Patterns matching the start of a tag name that cannot begin any of ``names``.

    Written as character classes with short lookaheads, much cheaper in ``re`` than a
    case-insensitive lookahead over every name; each starts with a character class, so that
    as alternatives of one choice the engine rules most of them out at their first character.
    """
    prefixes: dict[int, set[bytes]] = {}
    for name in names:
        prefixes.setdefault(name[0], set()).add(name[1:3])
    plain = bytes(
        c for c in range(0x61, 0x7B) if c not in prefixes
    )  # letters no watched name starts with
    classes = b"".join(bytes((c, c - 32)) for c in plain)
    parts = [b"[" + classes + b"]"] if classes else []
    # Branches in the order tags are common in pages: a <p> should not try five others.
    order = b"pstbilmndhaeofucgjkqrvwxyz"
    for first, rests in sorted(prefixes.items(), key=lambda item: order.find(item[0])):
        if b"" in rests:  # a one-letter name: every tag starting with it is a candidate
            continue
        alts = b"|".join(
            b"".join(b"[" + bytes((c, c - 32 if 0x61 <= c <= 0x7A else c)) + b"]" for c in rest)
            for rest in sorted(rests)
        )
        parts.append(b"[" + bytes((first, first - 32)) + b"](?!" + alts + b")")
    return parts


def _pair(name: bytes, inner: bytes) -> bytes:
    """An alternative (after "<") for an element ``name`` whose start and end tags enclose
    nothing but what ``inner`` matches (its start tag read once: plainly written, or not)."""
    case = b"".join(
        b"[" + bytes((c, c - 32)) + b"]" if 0x61 <= c <= 0x7A else bytes((c,)) for c in name
    )
    after = rb"(?=[\t\n\f\r />])" + _ATTRS + b">"
    start = b"(?>" + case + b"(?:" + _SPACE_DOUBLE_QUOTED + b")*+>|" + case + after + b")"
    end = b"</" + case + b"(?:>|" + after + b")"
    return start + inner + end


@lru_cache(maxsize=128)
def _boring(
    starts: frozenset[bytes],
    ends: frozenset[bytes],
    comments: bool,
    text: bool = False,
    url_scripts: bool = False,
    select: bool = False,
    scripting: bool = True,
    pairs: frozenset[bytes] = frozenset(),
) -> re.Pattern[bytes]:
    """Text and tags that cannot matter to a reader watching ``starts``/``ends``, consumed in
    one C-level match: text, tags whose name cannot be watched (attributes read as the HTML
    tokenizer reads them), whole scripts and other raw-text elements when their start tags
    are not watched, whole comments when comments are not. ``select``: for the inside of a
    ``<select>`` (the tags that end one are seen, no raw-text element is passed over whole:
    parsers read them differently there); ``scripting``: ``<noscript>`` is raw text;
    ``pairs`` (watched names): their elements whose start and end tags hold nothing but
    what is consumed here go whole too (see :attr:`Watch.pairs`).

    (Reading a tag to its first ``>`` is about twice as fast in ``re``, but wrong where a
    quoted value holds a ``>``; finding those first costs what it saves.)
    """
    whole_scripts = b"script" not in starts
    # Raw-text elements nobody watches go whole, up to their end tag (read as an ordinary
    # end tag after), as the tokenizer would read them: no step in Python for a <style>, a
    # <noscript> or an <iframe>. One whose end tag is not in the data yet stops the match.
    whole_raw = (
        []
        if select
        else [name for name in sorted(RAW_TEXT - starts) if scripting or name != b"noscript"]
    )
    intrinsic = INTRINSIC_STARTS if select else INTRINSIC_STARTS - _SELECT_ONLY
    starts, ends = starts | intrinsic, ends | INTRINSIC_ENDS
    start_alt = b"|".join(sorted(starts))
    end_alt = b"|".join(sorted(ends))
    # One "<" and one choice after it, each alternative's first byte ruling it in or out in
    # one step: the common tags plainly written, comments and lower-case scripts (each
    # starting with a literal byte), then end tags, then start tags. An end tag without
    # quotes ends at its first ">" (those with quotes take the generic path).
    pieces = _plain_common(starts, ends)
    if not comments:
        pieces.append(WHOLE_COMMENT)
    if whole_scripts:
        pieces.append(_LOWER_WHOLE_SCRIPT)
    pieces += [b"/" + first + rb"[^>\"']*+>" for first in _first_letters(ends)]
    pieces += [first + _PLAIN_ATTRS for first in _first_letters(starts)]
    if whole_scripts:
        pieces.append(_WHOLE_SCRIPT)
    elif url_scripts:
        pieces.append(_WHOLE_URLLESS_SCRIPT)
    if whole_raw:
        # One alternative for them all, entered only at one of their first letters.
        firsts = sorted({name[:1] for name in whole_raw})
        pieces.append(
            b"(?=["
            + b"".join(f + f.upper() for f in firsts)
            + b"])(?:"
            + b"|".join(
                b"(?i:" + name + rb")(?=[\t\n\f\r />])" + _ATTRS + b">" + text_to_end(name)
                for name in whole_raw
            )
            + b")"
        )
    # Watched text is left for the reader, but for whitespace (and NUL, which parsers drop):
    # a "<" that opens no markup is text too.
    if not text:
        pieces.append(rb"(?=[^A-Za-z!?/])")
    generic = _NAME + _ATTRS + rb">"
    pieces += [
        rb"(?!(?i:" + start_alt + rb")[\t\n\f\r />])" + generic,
        rb"/(?!(?i:" + end_alt + rb")[\t\n\f\r />])" + generic,
    ]
    chars = rb"[\t\n\f\r \x00]*+" if text else rb"[^<]*+"
    inner = chars + rb"(?:<(?:" + b"|".join(pieces) + rb")" + chars + rb")*+"
    if pairs and not select:
        # Before the others (the common tags aside): a pair that fails (something watched
        # in it, or not all in the data yet) leaves its start tag to the reader.
        common = len(_plain_common(starts, ends))
        pieces[common:common] = [_pair(name, inner) for name in sorted(pairs)]
        inner = chars + rb"(?:<(?:" + b"|".join(pieces) + rb")" + chars + rb")*+"
    return re.compile(inner)


# The SVG and MathML elements whose closed trees the watches that allow it pass over whole
# (see _foreign_skip), spelled as pages write them (SVG's camel case, and all lower case):
# literal alternatives, which the regular expression engine rules out at their first byte.
# Another element, or another spelling, is read tag by tag, as before: slower, not otherwise.
_SVG_NAMES: Final = (
    b"a animate animateMotion animateTransform circle clipPath defs desc ellipse feBlend"
    b" feColorMatrix feComponentTransfer feComposite feConvolveMatrix feDiffuseLighting"
    b" feDisplacementMap feDistantLight feDropShadow feFlood feFuncA feFuncB feFuncG feFuncR"
    b" feGaussianBlur feImage feMerge feMergeNode feMorphology feOffset fePointLight"
    b" feSpecularLighting feSpotLight feTile feTurbulence filter foreignObject g image line"
    b" linearGradient marker mask metadata mpath path pattern polygon polyline radialGradient"
    b" rect script set stop style switch symbol text textPath title tspan use view"
).split()
_MATHML_NAMES: Final = (
    b"annotation annotation-xml maction menclose merror mfenced mfrac mi mmultiscripts mn mo"
    b" mover mpadded mphantom mprescripts mroot mrow ms mspace msqrt mstyle msub msubsup msup"
    b" mtable mtd mtext mtr munder munderover none semantics"
).split()
# The names a watch may have that change the patterns (and so their cache key).
_FOREIGN_NAMES: Final = frozenset(
    [b"svg", b"math", *(name.lower() for name in _SVG_NAMES + _MATHML_NAMES)]
)
# Never passed over: what leaves foreign content (a breakout, "font" with some attributes)
# or opens another namespace.
_FOREIGN_KEPT: Final = _BREAKOUT | {b"font", b"svg", b"math"}
# Integration points hold HTML content: passed over only with nothing but text in them.
_INTEGRATION_POINTS: Final = _SVG_HTML_IP | _MATHML_TEXT_IP | {b"annotation-xml"}
_ROOT_WINDOW: Final = 8 * 1024
"""How far a whole ``<svg>`` or ``<math>`` is looked for (a failed look costs a scan of it)."""
FOREIGN_LEVELS: Final = 3
"""How deep a tree of foreign elements :func:`_foreign_skip` passes over whole (an element,
its children, theirs)."""


def _spellings(exclude: frozenset[bytes]) -> bytes:
    """The names of :data:`_SVG_NAMES` and :data:`_MATHML_NAMES` whose lower case is not in
    ``exclude``, as written and in lower case, as literal alternatives, each a whole name."""
    names = {
        spelling
        for name in _SVG_NAMES + _MATHML_NAMES
        if name.lower() not in exclude
        for spelling in (name, name.lower())
    }
    return b"(?:" + literal_choice(sorted(names)) + rb")(?=[\t\n\f\r />])"


# The attribute patterns of a tag whose attributes hold no "(" (the character classes of
# _PLAIN_ATTRS and _ATTRS without it: such a tag fails them): no url(...) in it.
_PLAIN_ATTRS_NO_CALL = _PLAIN_ATTRS.replace(b"[^", b"[^(")
_ATTRS_NO_CALL = _ATTRS.replace(b"[^", b"[^(")


def _element(group: bytes, names: bytes, children: list[bytes], plain: bool = False) -> bytes:
    """A pattern (after its "<") for an element of ``names`` (a pattern) around text and
    ``children`` (patterns after their "<"), self-closing or ended by an end tag naming it
    spelled the same way; its name captured as ``group``; ``plain``: its tags hold no "(".
    (Its content is an atomic group around a greedy repeat, not a possessive repeat: those
    raise SystemError in Python 3.11's "re" when they hold a capture, gh-101955, fixed in
    3.12.)"""
    plain_attrs, attrs = (_PLAIN_ATTRS_NO_CALL, _ATTRS_NO_CALL) if plain else (_PLAIN_ATTRS, _ATTRS)
    return (
        rb"(?P<"
        + group
        + rb">"
        + names
        + rb")(?>"
        + plain_attrs
        + rb"|"
        + attrs
        + rb">)(?:(?<=/>)|(?<!/>)[^<]*+(?>(?:<(?:"
        + b"|".join(children)
        + rb")[^<]*+)*)</(?P="
        + group
        + rb")(?=[\t\n\f\r />])(?>>|"
        + attrs
        + rb">))"
    )


@lru_cache(maxsize=32)
def _foreign_content(watched: frozenset[bytes], comments: bool, plain: bool) -> list[bytes]:
    """Alternatives (after "<") for what :func:`_foreign_skip` passes over besides text.

    Closed trees of elements that cannot matter, CDATA sections, comments (unless
    ``comments``), a "<" that opens nothing. Such an element opens and closes around nothing
    but text, comments and such elements, :data:`FOREIGN_LEVELS` deep at most: self-closing
    (``<rect/>``: its tag ends in ``/>``), or ended by an end tag that names it spelled the
    same way (which closes the innermost element of that name, the one it opened). Its name
    is one of the usual SVG or MathML elements, none that leaves foreign content nor one of
    ``watched``; only a childless one may be an integration point (its text is text under
    HTML rules too). Each is a push and a pop of :attr:`Tokenizer.foreign`, nothing else:
    passing over the whole tree leaves the tokenizer where reading each tag would.
    ``plain``: only elements whose tags hold no "(" (see :attr:`Watch.foreign_plain`)."""
    kept = _FOREIGN_KEPT | watched
    leaf_names = _spellings(kept)
    parent_names = _spellings(kept | _INTEGRATION_POINTS)
    # A "<" that opens nothing is text (one at the end of the data may open something yet).
    texts = ([] if comments else [WHOLE_COMMENT]) + [rb"(?=[^A-Za-z!/?])"]
    # Trees as deep as one level, then each level more: an element (no integration point)
    # around such trees, or a childless one (each group named once in the pattern).
    tree = _element(b"l1", leaf_names, texts, plain)
    for level in range(2, FOREIGN_LEVELS + 1):
        parent = _element(b"e%d" % level, parent_names, [tree, *texts], plain)
        tree = parent + b"|" + _element(b"l%d" % level, leaf_names, texts, plain)
    cdata = rb"!\[CDATA\[(?:[^\]]++|\](?!\]>))*+\]\]>"
    return [cdata, tree, *texts]


@lru_cache(maxsize=32)
def _foreign_skip(watched: frozenset[bytes], comments: bool, plain: bool) -> re.Pattern[bytes]:
    """Inside SVG or MathML where the current element is an SVG or MathML one (no
    integration point): text and the trees, CDATA sections and comments of
    :func:`_foreign_content`, consumed in one C-level match."""
    inside = b"|".join(_foreign_content(watched, comments, plain))
    return re.compile(rb"[^<]*+(?>(?:<(?:" + inside + rb")[^<]*+)*)")


@lru_cache(maxsize=32)
def _foreign_roots(
    watched: frozenset[bytes], comments: bool, plain: bool
) -> re.Pattern[bytes] | None:
    """In HTML content: a whole ``<svg>`` or ``<math>`` element (unless ``watched``) of
    nothing but what :func:`_foreign_skip` passes over, as it is written in icons and
    formulas; None where both are watched."""
    roots = [name for name in (b"svg", b"math") if name not in watched]
    if not roots:
        return None
    names = b"(?:" + b"|".join(roots) + rb")(?=[\t\n\f\r />])"
    content = _foreign_content(watched, comments, plain)
    return re.compile(b"<" + _element(b"r", names, content, plain))


def attributes(tag: bytes, encoding: str = "utf-8") -> dict[bytes, str]:
    """Attributes of a complete tag (lower-cased names, first occurrence wins, values in
    ``encoding``, entities decoded)."""
    found: dict[bytes, str] = {}
    for key, value in attribute_list(tag, encoding):
        if key not in found:
            found[key] = value
    return found


def attribute_list(tag: bytes, encoding: str = "utf-8") -> list[tuple[bytes, str]]:
    """Every attribute of a complete tag in document order, duplicates kept (lower-cased
    names, values in ``encoding``, entities decoded): what Chromium's scan for a ``<meta>``
    charset reads."""
    found: list[tuple[bytes, str]] = []
    name_end = _SKIP[_T_NAME].match(tag, 1).end()  # type: ignore[union-attr]
    for key, dq, sq, unquoted in _ATTR.findall(tag, name_end, len(tag) - 1):
        value = (dq or sq or unquoted).decode(encoding, "replace")
        found.append((key.lower(), html.unescape(value) if "&" in value else value))
    return found


@dataclass(frozen=True)
class Watch:
    """What a reader wants reported. Names are lower-case bytes."""

    starts: frozenset[bytes] = frozenset()
    """Start tags to report (HTML content; foreign content reports every tag)."""
    ends: frozenset[bytes] = frozenset()
    """End tags to report."""
    comments: bool = False
    """Report comments."""
    text: bool = False
    """Report character data (in the data state)."""
    everything: bool = False
    """Report every tag, comment and text run."""
    url_scripts: bool = False
    """Of the ``script`` start tags watched, only those with a ``src``, ``data``,
    ``srcset`` or ``href`` (SVG) attribute are wanted (the others may be skipped whole)."""
    written: re.Pattern[bytes] | None = field(default=None, compare=False, repr=False)
    """A pattern of the reader's own, for :attr:`pattern` (else made from the names)."""
    foreign_leaves: bool = True
    """Report every tag in foreign content. False: not the tags of the SVG and MathML
    elements that open and close there around nothing but text (and such elements, a few
    levels deep) and whose names are not watched: they change nothing outside themselves,
    and a page's charts and icons are made of them."""
    context_tags: bool = True
    """Report the tags watched inside a ``<select>`` or a ``<template>`` too. False: there
    only those the tokenizer stops at anyway, that change how it reads on (those that end
    the select or the template, scripts, raw text): the placements read nothing there (a
    parser drops most tags in a select, a template's content is inert), and a country
    picker is 500 tags."""
    pairs: frozenset[bytes] = frozenset()
    """Of the names watched (start and end tags both), those whose elements go unreported
    where, in HTML content (not in a select), their start and end tags enclose nothing
    watched: the element opens and closes and changes nothing for a reader that follows
    such elements only while one is open (a closed ``<a>...</a>`` where no link is open)."""
    generic: bool = field(default=False, compare=False, repr=False)
    """:attr:`pattern` is the one made for these names and flags (:meth:`of`), and
    :meth:`pattern_for` gives theirs for another context; else a reader's own, kept."""
    foreign_plain: bool = False
    """With :attr:`foreign_leaves` False: only the foreign elements whose tags hold no "("
    go unreported (a presentation attribute's ``url(...)`` may load from a host: a reader
    of those, withholding, sees every such tag)."""

    @classmethod
    def of(
        cls,
        starts: Iterable[bytes] = (),
        ends: Iterable[bytes] = (),
        *,
        comments: bool = False,
        text: bool = False,
        everything: bool = False,
        url_scripts: bool = False,
        foreign_leaves: bool = True,
        context_tags: bool = True,
        pairs: Iterable[bytes] = (),
        foreign_plain: bool = False,
    ) -> Watch:
        s, e = frozenset(starts), frozenset(ends)
        p = frozenset(pairs) & s & e if not everything else frozenset()
        return cls(
            s,
            e,
            comments,
            text,
            everything,
            url_scripts,
            None,
            foreign_leaves,
            context_tags,
            p,
            not everything,
            foreign_plain,
        )

    @cached_property
    def pattern(self) -> re.Pattern[bytes] | None:
        """What passes over text and the tags that cannot matter, in one match (see
        :func:`_boring`); None where every token is reported. Made when first needed: a
        module's watches would take a quarter of a second to compile at import, and most
        processes use a few of them."""
        if self.written is not None or not self.generic:
            return self.written
        return _boring(
            self.starts, self.ends, self.comments, self.text, self.url_scripts, pairs=self.pairs
        )

    @cached_property
    def foreign_pattern(self) -> re.Pattern[bytes] | None:
        """What passes over the foreign elements not reported (:attr:`foreign_leaves`), in
        one match; None where each tag is reported (made when first needed: most pages have
        no SVG, and each pattern takes milliseconds to compile)."""
        if self.foreign_leaves or self.everything or self.text:
            return None
        watched = (self.starts | self.ends) & _FOREIGN_NAMES
        return _foreign_skip(watched, self.comments, self.foreign_plain)

    @cached_property
    def foreign_roots(self) -> re.Pattern[bytes] | None:
        """What passes over a whole ``<svg>`` or ``<math>`` element of nothing but what
        :attr:`foreign_pattern` passes over (an icon, a formula), or None."""
        if self.foreign_pattern is None:
            return None
        watched = (self.starts | self.ends) & _FOREIGN_NAMES
        return _foreign_roots(watched, self.comments, self.foreign_plain)

    def pattern_for(
        self, select: bool, scripting: bool, template: bool = False
    ) -> re.Pattern[bytes] | None:
        """:attr:`pattern` as it reads inside a ``<select>``, with scripting off or inside a
        ``<template>`` (a watch made with a pattern of its own keeps it: it is written for
        its reader's context)."""
        quiet = (select or template) and not self.context_tags
        if not (select or quiet) and scripting:
            return self.pattern
        if self.pattern is None or not self.generic:
            return self.pattern
        usual = (self.starts, self.ends, self.comments, self.text, self.url_scripts)
        pairs = self.pairs
        if quiet:
            none: frozenset[bytes] = frozenset()
            return _boring(none, none, *usual[2:], select, scripting)
        return _boring(*usual, select, scripting, pairs=pairs)

    def __or__(self, other: Watch) -> Watch:
        every_script = any(b"script" in w.starts and not w.url_scripts for w in (self, other))
        return Watch.of(
            self.starts | other.starts,
            self.ends | other.ends,
            comments=self.comments or other.comments,
            text=self.text or other.text,
            everything=self.everything or other.everything,
            url_scripts=(self.url_scripts or other.url_scripts) and not every_script,
            foreign_leaves=self.foreign_leaves or other.foreign_leaves,
            foreign_plain=self.foreign_plain or other.foreign_plain,
            context_tags=self.context_tags or other.context_tags,
            # Passed over where each watch passes them over or does not watch them.
            pairs=[
                name
                for name in self.pairs | other.pairs
                if all(
                    name in w.pairs or not (w.everything or name in w.starts or name in w.ends)
                    for w in (self, other)
                )
            ],
        )


EVERYTHING: Final = Watch.of(everything=True, comments=True, text=True)


class TokenSink(Protocol):
    """Receives the tokens a :class:`Watch` asks for. Positions index the ``data`` passed."""

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        """A complete tag ``data[start:end]``; ``tag`` is its bytes unless it is too long to
        keep (then its attributes are unknown)."""

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        """A tag too long to keep starts at ``data[start]`` (it is streamed through)."""

    def on_long_tag_end(self, data: bytes, end: int, name: bytes | None, is_end: bool) -> None:
        """The long tag announced by :meth:`on_long_tag` ends just before ``data[end]``."""

    def on_comment(self, data: bytes, start: int, end: int) -> None:
        """A whole comment ``data[start:end]`` (long comments are not reported)."""

    def on_text(self, data: bytes, start: int, end: int) -> None:
        """Character data ``data[start:end]`` in the data state."""

    def on_doubt(self, data: bytes, at: int, reason: str) -> None:
        """Only with :attr:`Tokenizer.doubts`: from the tag starting at ``data[at]`` (already
        reported) on, the tokenizer may read the page otherwise than a browser (parsers
        disagree on it, or the context is lost)."""


class QuietSink:
    """A :class:`TokenSink` that ignores every token: a sink interested in a few kinds
    subclasses it and overrides those (the protocol's methods cannot be inherited: ``mypy
    --strict`` reads their empty bodies as abstract)."""

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        pass

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        pass

    def on_long_tag_end(self, data: bytes, end: int, name: bytes | None, is_end: bool) -> None:
        pass

    def on_comment(self, data: bytes, start: int, end: int) -> None:
        pass

    def on_text(self, data: bytes, start: int, end: int) -> None:
        pass

    def on_doubt(self, data: bytes, at: int, reason: str) -> None:
        pass


# Tokenizer states.
DATA: Final = 0
RAW: Final = 1
SCRIPT: Final = 2
PLAINTEXT: Final = 3
_COMMENT: Final = 4  # a long comment being streamed
_BOGUS: Final = 5  # a long bogus comment or doctype being streamed
_CDATA: Final = 6  # a long CDATA section being streamed
_LONG_TAG: Final = 7  # a long tag being streamed

_S_DATA: Final = 0
_S_ESCAPED: Final = 1
_S_DOUBLE: Final = 2

_T_NAME: Final = 0
_T_BEFORE: Final = 1
_T_ATTR: Final = 2
_T_AFTER: Final = 3
_T_VALUE: Final = 4
_T_DQ: Final = 5
_T_SQ: Final = 6
_T_UNQ: Final = 7


_ENTRY_NAME: Final[Callable[[tuple[bytes, int]], bytes]] = itemgetter(0)
_ENTRY_KIND: Final[Callable[[tuple[bytes, int]], int]] = itemgetter(1)
T = TypeVar("T")


def entry_names(stack: list[tuple[bytes, int]]) -> list[bytes]:
    """The names of the entries of a foreign stack (made in C)."""
    return list(map(_ENTRY_NAME, stack))


def entry_kinds(stack: list[tuple[bytes, int]]) -> list[int]:
    """The kinds of the entries of a foreign stack (made in C)."""
    return list(map(_ENTRY_KIND, stack))


def innermost(items: list[T], item: T) -> int:
    """The index of the last ``item`` in ``items``, or -1; searched in C, not in Python."""
    if item not in items:
        return -1
    return len(items) - 1 - items[::-1].index(item)


class Probe(Protocol):
    """What :attr:`Tokenizer.probe` needs: a compiled pattern's ``search``."""

    def search(self, data: bytes, pos: int = 0, endpos: int = ..., /) -> re.Match[bytes] | None:
        """The first occurrence in ``data[pos:endpos]``."""
        ...


class Tokenizer:
    """Resumable tokenizer: :meth:`scan` consumes what it can and says how far it got.

    The caller owns the bytes: it calls ``scan(data, final)``, sends on ``data[:consumed]``
    as its events allow, and passes ``data[consumed:]`` (an unfinished token, always shorter
    than :attr:`max_token` plus a chunk) again in front of the next chunk.
    """

    #: Longest tag or comment kept whole; longer ones are streamed through unread.
    max_token: int = 64 * 1024

    def __init__(self, sink: TokenSink, watch: Watch = EVERYTHING) -> None:
        self.sink = sink
        self.watch = watch
        """What to report; the sink may change it between events."""
        self.active = True
        """Set to False to stop scanning (the rest is consumed unread)."""
        self.state = DATA
        self.template = 0
        """Open ``<template>`` elements (their contents are inert)."""
        self.foreign: list[tuple[bytes, int]] = []
        """Open SVG/MathML elements (and HTML elements inside their integration points)."""
        self.select = False
        """An HTML ``<select>`` is open."""
        self._raw_name = b""
        self._script = _S_DATA
        self._tag_state = _T_NAME
        self._tag_name: bytes | None = None
        self._tag_end = False
        self.trailer = b""
        """A ``<`` or ``</`` that ended the document: text, after everything else."""
        self.lost = False
        """Foreign content nested deeper than :data:`MAX_DEPTH` was seen, or a start tag
        inside a select that parsers read differently (raw text, ``plaintext``, ``svg``,
        ``math``): from then on the tokenizer does not know the context (memory stays
        bounded, or browsers disagree), and readers must not rely on it."""
        self.doctype: bytes | None = None
        """The first ``<!DOCTYPE ...>`` seen (it decides quirks mode), if any."""
        self.probe: Probe | None = None
        """Tags in which this pattern occurs are reported whatever their name (used to find
        an attribute on any element without reading every tag)."""
        self.doubts = False
        """Report to :meth:`TokenSink.on_doubt` the tags after which the tokenizer may read
        the page otherwise than a browser: foreign content deeper than :data:`MAX_DEPTH`, a
        ``<select>`` inside an integration point (not followed), and the start tags that
        html5lib drops inside a select but today's browsers keep (raw text, ``plaintext``,
        ``svg``, ``math``)."""
        self.doubt: str | None = None
        """Why the tag being read is doubtful (see :attr:`doubts`), until reported."""
        self.whole: frozenset[bytes] = frozenset()
        """Read a start tag of these (raw text) elements only once its end tag (or the end
        of the document, or :attr:`max_token` bytes) is in the data too, so that its reader
        sees the whole element."""
        self.scripting = True
        """Read ``<noscript>`` as with scripting on (raw text); off: its content is markup."""
        self.left: list[tuple[bytes, int]] = []
        """While the start tag being reported breaks out of foreign content: the foreign
        elements it closed, outermost first."""
        # An unfinished token left at the end of the data: (its length, the tag state there),
        # so that the next scan does not read it again from its start.
        self._waiting: tuple[int, int] | None = None
        self._resume: tuple[int, int, int] | None = None

    # --- context -----------------------------------------------------------------------------

    @property
    def in_foreign(self) -> bool:
        """The current node is an SVG or MathML element (not an integration point's HTML)."""
        return bool(self.foreign) and self.foreign[-1][1] != _F_HTML

    @property
    def foreign_rules(self) -> bool:
        """A start tag here is read by the foreign content rules (it opens an SVG or MathML
        element, whatever its name, unless it breaks out): the current node is a foreign
        element that is no integration point."""
        return bool(self.foreign) and self.foreign[-1][1] in (_F_FOREIGN, _F_ANNOTATION)

    def leaves_foreign(self, name: bytes) -> bool:
        """An end tag ``name`` here names no SVG or MathML element open: the tree builder
        reads it by the HTML rules outside (where it may close HTML elements), which this
        tokenizer does not follow (its foreign content stays open)."""
        return self.foreign_rules and innermost(entry_names(self.foreign), name) < 0

    @property
    def in_html_body(self) -> bool:
        """Markup here lands in the document's HTML body (no template, select or foreign
        content around)."""
        return not (self.template or self.foreign or self.select or self.lost)

    # --- scanning ----------------------------------------------------------------------------

    def scan(self, data: bytes, i: int, final: bool) -> int:
        """Scan ``data`` from ``i``; return how much was consumed (the rest is an unfinished
        token to be scanned again with more bytes)."""
        n = len(data)
        sink = self.sink
        probed = -1  # where the probe occurs next, once looked for
        resumed = -1  # where an unfinished token starts again, already partly read
        if self._waiting is not None:
            self._resume = (i, *self._waiting)
            self._waiting = None
            resumed = i
        else:
            self._resume = None
        while i < n:
            if not self.active:
                return n
            state = self.state
            if state == DATA:
                watch = self.watch
                pattern = watch.pattern
                if self.select or not self.scripting or self.template:
                    pattern = watch.pattern_for(self.select, self.scripting, self.template > 0)
                if pattern is not None and not self.foreign and i != resumed:
                    limit = n
                    if self.probe is not None:
                        if probed < i:
                            m = self.probe.search(data, i)
                            probed = m.start() if m is not None else n
                        # A reader of every tag must see the ones too long to read, too.
                        limit = min(probed, i + self.max_token)
                    i = pattern.match(data, i, limit).end()  # type: ignore[union-attr]
                    if i >= n:
                        return n
                    if (
                        data.startswith((b"<svg", b"<math"), i)
                        and watch.foreign_roots is not None
                        and not self.select
                        and self.whole <= watch.starts
                    ):
                        # A whole <svg> or <math> of trees that change nothing (an icon;
                        # a chart is longer than the window, and read by the pattern below),
                        # up to where the probe occurs (i is not past it: see above).
                        limit = min(n, i + _ROOT_WINDOW, i + self.max_token)
                        if self.probe is not None:
                            limit = min(limit, probed)
                        m = watch.foreign_roots.match(data, i, limit)
                        if m is not None:
                            i = m.end()
                            continue
                elif (
                    watch.foreign_pattern is not None
                    and self.foreign
                    and i != resumed
                    and self.foreign[-1][1] == _F_FOREIGN
                    and len(self.foreign) + FOREIGN_LEVELS <= MAX_DEPTH
                    and self.whole <= watch.starts
                ):
                    # Closed trees of elements that change nothing, in one match (each tag
                    # no longer than a tag read whole: the window is max_token long), up to
                    # where the probe occurs (its tags are reported whatever their name).
                    # Elements read whole are watched: never in a tree passed over.
                    limit = min(n, i + self.max_token)
                    if self.probe is not None:
                        if probed < i:
                            m = self.probe.search(data, i)
                            probed = m.start() if m is not None else n
                        limit = min(limit, probed)
                    i = watch.foreign_pattern.match(data, i, limit).end()  # type: ignore[union-attr]
                    if i >= n:
                        return n
                j = data.find(b"<", i)
                if j < 0:
                    j = n
                if j > i:
                    if watch.text or watch.everything:
                        sink.on_text(data, i, j)
                    i = j
                    continue
                end = self._markup(data, i, final)
                if end < 0:
                    return i
                i = end
            elif state == SCRIPT:
                i = self._scan_script(data, i, final)
                if self.state == SCRIPT:
                    return i
            elif state == RAW:
                m = _RAW_END[self._raw_name].search(data, i)
                if m is None:
                    return n if final else max(i, n - len(self._raw_name) - 2)
                self.state = DATA
                i = m.start()
            elif state == PLAINTEXT:
                return n
            elif state == _COMMENT:
                m = _COMMENT_END.search(data, i)
                if m is None:
                    return n if final else max(i, n - 3)
                self.state = DATA
                i = m.end()
            elif state == _BOGUS:
                k = data.find(b">", i)
                if k < 0:
                    return n
                self.state = DATA
                i = k + 1
            elif state == _CDATA:
                k = data.find(b"]]>", i)
                if k < 0:
                    return n if final else max(i, n - 2)
                self.state = DATA
                i = k + 3
            else:
                i = self._scan_long_tag(data, i)
        return n

    def _markup(self, data: bytes, j: int, final: bool) -> int:
        """The markup starting with ``<`` at ``j``: return its end, or -1 if unfinished."""
        n = len(data)
        if j + 1 >= n:
            if not final:
                return -1
            return self._trailing(data, j)
        c = data[j + 1]
        if c == 0x21:  # "!"
            rest = data[j : j + 9]
            if (
                not final
                and len(rest) < 9
                and (b"<!--".startswith(rest) or b"<![CDATA[".startswith(rest))
            ):
                return -1
            if rest.startswith(b"<!--"):
                return self._comment(data, j, final)
            if rest == b"<![CDATA[" and self.in_foreign:
                k = data.find(b"]]>", j + 9)
                if k >= 0:
                    return k + 3
                return self._unfinished(data, j, final, _CDATA, n - 2)
            return self._bogus(data, j, final)
        if c == 0x3F:  # "?"
            return self._bogus(data, j, final)
        if c == 0x2F:  # "/"
            if j + 2 >= n:
                if not final:
                    return -1
                return self._trailing(data, j)
            c2 = data[j + 2]
            if c2 == 0x3E:  # "</>" is dropped
                return j + 3
            if not (0x41 <= c2 <= 0x5A or 0x61 <= c2 <= 0x7A):
                return self._bogus(data, j, final)
        elif not (0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A):
            if self.watch.text or self.watch.everything:
                self.sink.on_text(data, j, j + 1)
            return j + 1
        waits = not final and n - j <= self.max_token
        resume = self._resume
        if resume is not None and resume[0] == j and resume[2] >= 0 and waits:
            # The same unfinished tag again: read on from where the last scan stopped, and
            # match it whole only once it may have ended (never again from its start).
            self._resume = None
            stop, st = _advance_tag(data, j + resume[1], resume[2])
            if stop < 0:
                self._waiting = (n - j, st)
                return -1
        m = _TAG.match(data, j)
        if m is None:
            if not waits:
                return self._start_long_tag(data, j, final)
            stop, st = _advance_tag(data, j + (2 if c == 0x2F else 1), _T_NAME)
            if stop < 0:
                self._waiting = (n - j, st)
            return -1
        end = m.end()
        name = m.group(1).lower()
        is_end = c == 0x2F
        if self.whole and name in self.whole and not is_end and waits:
            start = end
            if resume is not None and resume[0] == j and resume[2] < 0:
                start = max(end, j + resume[1] - 11)  # an end tag may straddle the old end
            if _RAW_END[name].search(data, start) is None:
                self._waiting = (n - j, -1)
                return -1
        tag = data[j:end] if end - j <= self.max_token else None
        self._tag(data, j, end, name, is_end, tag)
        return end

    def _tag(
        self, data: bytes, j: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        self_closing = tag is not None and tag.endswith(b"/>")
        left = False
        if self.foreign and (
            self.foreign_rules and name in _BREAKOUT_ENDS
            if is_end
            else self.in_foreign and self._breaks_out(name, tag)
        ):
            self.left = self._leave_foreign()
            left = True
        watch = self.watch
        if (
            watch.everything
            or self.foreign
            or (name in watch.ends if is_end else name in watch.starts)
            or (self.probe is not None and self.probe.search(data, j, end) is not None)
            or (tag is None and not is_end)  # unreadable: the reader decides what that means
        ):
            self.sink.on_tag(data, j, end, name, is_end, tag)
        if left:
            self.left = []
        self._effects(name, is_end, self_closing, tag)
        if self.doubt is not None:
            self._report_doubt(data, j)

    def _report_doubt(self, data: bytes, at: int) -> None:
        reason = self.doubt
        self.doubt = None
        if reason is not None:
            self.sink.on_doubt(data, at, reason)

    def _leave_foreign(self) -> list[tuple[bytes, int]]:
        """Pop foreign elements until an integration point or an HTML element is current;
        return them."""
        stack = self.foreign
        k = len(stack)
        while k and stack[k - 1][1] in (_F_FOREIGN, _F_ANNOTATION):
            k -= 1
        popped = stack[k:]
        del stack[k:]
        return popped

    def _breaks_out(self, name: bytes, tag: bytes | None) -> bool:
        """Whether a start tag ends the foreign content it appears in."""
        kind = self.foreign[-1][1]
        if kind in (_F_HTML_IP, _F_TEXT_IP):
            return False  # HTML rules apply at integration points: no breakout needed
        if name in _BREAKOUT:
            return True
        if name == b"font" and tag is not None:
            attrs = attributes(tag)
            return any(k in attrs for k in (b"color", b"face", b"size"))
        return False

    def _trailing(self, data: bytes, j: int) -> int:
        """A ``<`` or ``</`` ending the document is text."""
        if self.watch.text or self.watch.everything:
            self.sink.on_text(data, j, len(data))
        self.trailer = data[j:]
        return len(data)

    def _comment(self, data: bytes, j: int, final: bool) -> int:
        n = len(data)
        if data.startswith(b">", j + 4):
            end = j + 5
        elif data.startswith(b"->", j + 4):
            end = j + 6
        else:
            m = _COMMENT_END.search(data, j + 4)
            if m is None:
                return self._unfinished(data, j, final, _COMMENT, n - 3)
            end = m.end()
        if (self.watch.comments or self.watch.everything) and end - j <= self.max_token:
            self.sink.on_comment(data, j, end)
        return end

    def _bogus(self, data: bytes, j: int, final: bool) -> int:
        k = data.find(b">", j + 2)
        if k >= 0:
            if self.doctype is None and data[j + 2 : j + 9].lower() == b"doctype":
                self.doctype = data[j : k + 1]
            return k + 1
        return self._unfinished(data, j, final, _BOGUS, len(data))

    def _unfinished(self, data: bytes, j: int, final: bool, state: int, safe_upto: int) -> int:
        """An unfinished comment-like token at ``j``: wait for more, or stream it when long."""
        n = len(data)
        if final or n - j > self.max_token:
            self.state = state
            return n if final else max(j, safe_upto)
        return -1

    # --- tree-construction effects -------------------------------------------------------------

    def _effects(self, name: bytes, is_end: bool, self_closing: bool, tag: bytes | None) -> None:
        """How a tag changes the tokenizer state and the context it tracks."""
        if self.foreign:
            self._foreign_effects(name, is_end, self_closing, tag)
            return
        if is_end:
            if name == b"template":
                if self.template:
                    self.template -= 1
            elif name == b"select":
                self.select = False
            return
        if self.select:
            if name not in _SELECT_KEEPS:
                # Dropped by html5lib's tree builder (no raw text, no foreign content); kept
                # by today's browsers (customizable select), where it changes what follows:
                # from here on the bytes are read one way or the other (a notice after
                # "<select><style>" is text to Chromium), so the context is lost.
                if name in _SELECT_CHANGES or name in RAW_TEXT:
                    self.lost = True
                    if self.doubts:
                        self.doubt = f"parsers disagree on a <{name.decode()}> inside a select"
                return
            if name in _SELECT_ENDERS:
                self.select = False
                if name == b"select":
                    return
        self._html_start(name, self_closing)

    def _html_start(self, name: bytes, self_closing: bool) -> None:
        if name == b"script":
            self.state = SCRIPT
            self._script = _S_DATA
        elif name in RAW_TEXT and (self.scripting or name != b"noscript"):
            self.state = RAW
            self._raw_name = name
        elif name == b"plaintext":
            self.state = PLAINTEXT
        elif name == b"template":
            self.template += 1
        elif name == b"select":
            self.select = True
        elif name in (b"svg", b"math") and not self_closing:
            self._push((name, _F_FOREIGN))

    def _foreign_effects(
        self, name: bytes, is_end: bool, self_closing: bool, tag: bytes | None
    ) -> None:
        stack = self.foreign
        kind = stack[-1][1]
        if is_end:
            # The innermost element of that name closes, with everything above it (HTML
            # rules pop through to it as well). An end tag naming nothing here is left to
            # HTML rules outside, which we do not follow: foreign content stays open, and the
            # readers treat it as a place where nothing may be inserted. Under an HTML element
            # inside an integration point, HTML rules stop at that point (a special element):
            # "</svg>" in a <div> in <foreignObject> closes nothing.
            # The stack is searched in C (it may be MAX_DEPTH deep, and every end tag in
            # foreign content searches it: a Python walk per stray end tag made 400 KB of
            # them in 500 nested <svg> elements take half a minute).
            k = innermost(entry_names(stack), name)
            if k < 0:
                return
            if kind == _F_HTML:
                kinds = entry_kinds(stack)
                bottom = max(innermost(kinds, _F_HTML_IP), innermost(kinds, _F_TEXT_IP)) + 1
                if k < bottom:
                    return
            for popped, popped_kind in stack[k:]:
                if popped == b"template" and popped_kind == _F_HTML and self.template:
                    self.template -= 1
            del stack[k:]
            return
        html_rules = kind in (_F_HTML, _F_HTML_IP)
        if kind == _F_TEXT_IP and name not in (b"mglyph", b"malignmark"):
            html_rules = True
        if kind == _F_ANNOTATION and name == b"svg":
            html_rules = False
        if html_rules:
            if name in (b"svg", b"math"):
                if not self_closing:
                    self._push((name, _F_FOREIGN))
                return
            if name in CLOSES_P:
                self._close_p()
            if name in VOID:
                return
            if name != b"select":  # a select inside an integration point: not followed
                self._html_start(name, self_closing)
            elif self.doubts:
                self.doubt = "a <select> inside SVG or MathML is not followed"
            if self.state != PLAINTEXT:
                self._push((name, _F_HTML))
            return
        if self_closing:
            return
        new_kind = _F_FOREIGN
        if name in _INTEGRATION_POINTS:  # which it is depends on the namespace
            in_svg = self._namespace() == b"svg"
            if in_svg and name in _SVG_HTML_IP:
                new_kind = _F_HTML_IP
            elif not in_svg and name in _MATHML_TEXT_IP:
                new_kind = _F_TEXT_IP
            elif not in_svg and name == b"annotation-xml":
                encoding = attributes(tag).get(b"encoding", "") if tag is not None else ""
                html_ip = encoding.lower() in ("text/html", "application/xhtml+xml")  # no strip
                new_kind = _F_HTML_IP if html_ip else _F_ANNOTATION
        self._push((name, new_kind))

    def _close_p(self) -> None:
        """A start tag that closes an open ``<p>`` (in button scope, which ends at the
        integration point), as HTML rules do: "<p>a<p>b" is two paragraphs, not one in the
        other (an end tag for each would make an empty one)."""
        stack = self.foreign
        for k in range(len(stack) - 1, -1, -1):
            name, kind = stack[k]
            if kind != _F_HTML or name == b"button":
                return
            if name == b"p":
                del stack[k:]
                return

    def _push(self, entry: tuple[bytes, int]) -> None:
        """Open an element of the foreign stack, as deep as :data:`MAX_DEPTH` (deeper, the
        context is lost: see :attr:`lost`)."""
        if len(self.foreign) < MAX_DEPTH:
            self.foreign.append(entry)
        else:
            self.lost = True
            if self.doubts:
                self.doubt = "foreign content nested too deep to follow"

    def _namespace(self) -> bytes:
        """``svg`` or ``math``: the namespace of the innermost foreign element (entries of
        those names are always SVG or MathML elements, never HTML ones: the later one names
        it), searched in C. Asked only where it matters, at an integration point's name: a
        Python walk of a stack MAX_DEPTH deep at every start tag made 1 MB of nested
        elements take 12 seconds."""
        names = entry_names(self.foreign)
        return b"math" if innermost(names, b"math") > innermost(names, b"svg") else b"svg"

    # --- script data -----------------------------------------------------------------------------

    def _scan_script(self, data: bytes, i: int, final: bool) -> int:
        n = len(data)
        while True:
            sub = self._script
            if sub == _S_DATA:
                m = _SCRIPT_DATA.search(data, i)
            elif sub == _S_ESCAPED:
                m = _SCRIPT_ESCAPED.search(data, i)
            else:
                m = _SCRIPT_DOUBLE.search(data, i)
            if m is None:
                return n if final else max(i, n - 8)
            token = m.group()
            if token == b"<!--":
                self._script = _S_ESCAPED
                i = m.start() + 2  # the dashes may also close it, as in "<!-->"
            elif token == b"-->":
                self._script = _S_DATA
                i = m.end()
            elif token[1] == 0x2F:  # "</script"
                if sub == _S_DOUBLE:
                    self._script = _S_ESCAPED
                    i = m.end()
                else:
                    self.state = DATA
                    return m.start()
            else:  # "<script" while escaped
                self._script = _S_DOUBLE
                i = m.end()

    # --- long tags ---------------------------------------------------------------------------

    def _start_long_tag(self, data: bytes, j: int, final: bool) -> int:
        """Stream an unfinished tag that is too long to keep (or cut off by the end)."""
        is_end = data[j + 1] == 0x2F
        start = j + 2 if is_end else j + 1
        n = len(data)
        k = _SKIP[_T_NAME].match(data, start).end()  # type: ignore[union-attr]
        name = data[start:k].lower() if k < n and k - start <= 64 else None
        self._tag_name = name
        self._tag_end = is_end
        self._tag_state = _T_NAME
        self.state = _LONG_TAG
        if not final:
            self.sink.on_long_tag(data, j, name, is_end)
        return self._scan_long_tag(data, start)

    def _scan_long_tag(self, data: bytes, i: int) -> int:
        end, st = _advance_tag(data, i, self._tag_state)
        if end < 0:
            self._tag_state = st
            return len(data)
        i = end
        self.state = DATA
        name = self._tag_name
        self.sink.on_long_tag_end(data, i, name, self._tag_end)
        if name is not None:
            end_tag = self._tag_end
            breaks = self.foreign and not end_tag and self.in_foreign
            if breaks and self._breaks_out(name, None):
                self._leave_foreign()
            self._effects(name, self._tag_end, False, None)
            if self.doubt is not None:
                self._report_doubt(data, i)
        return i


# Whole attributes, from the state before an attribute name back to it, read in one match (a
# tag of millions of attributes, streamed because too long to keep, took a Python step per
# character class: 30 s for 8 MB). Each alternative is one way the loop below goes round: a
# name then "/", or whitespace not followed by "=" or ">" (a new name starts there), or "=" and
# a quoted value, or an unquoted one ended by whitespace. Anything else (">", the end of the
# data) is left to the loop.
_ATTRIBUTES: Final = re.compile(
    rb"(?:[\t\n\f\r /]*+[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"(?:/|[\t\n\f\r ]++(?:/|(?=[^=>]))|[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+[\t\n\f\r ])))*+"
)


def _advance_tag(data: bytes, i: int, st: int) -> tuple[int, int]:
    """Read a tag on from ``data[i]`` in tag state ``st``, as the HTML tokenizer does: return
    the end of the tag (after its ">") and the state there, or -1 and the state at the end of
    the data."""
    n = len(data)
    while True:
        if st == _T_BEFORE:
            i = _ATTRIBUTES.match(data, i).end()  # type: ignore[union-attr]
        if st in (_T_DQ, _T_SQ):
            k = data.find(b'"' if st == _T_DQ else b"'", i)
            if k < 0:
                return -1, st
            i = k + 1
            st = _T_BEFORE
            continue
        i = _SKIP[st].match(data, i).end()  # type: ignore[union-attr]
        if i >= n:
            return -1, st
        c = data[i]
        i += 1
        if c == 0x3E:  # ">"
            return i, st
        ws = c in WS
        if st == _T_NAME:
            st = _T_BEFORE
        elif st == _T_BEFORE:
            st = _T_ATTR
        elif st == _T_ATTR:
            st = _T_VALUE if c == 0x3D else _T_AFTER if ws else _T_BEFORE
        elif st == _T_AFTER:
            st = _T_VALUE if c == 0x3D else _T_BEFORE if c == 0x2F else _T_ATTR
        elif st == _T_VALUE:
            st = _T_DQ if c == 0x22 else _T_SQ if c == 0x27 else _T_UNQ
        else:  # an unquoted value ends at whitespace
            st = _T_BEFORE

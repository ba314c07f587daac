"""Where a notice goes: one registered strategy per placement.

A strategy says which tokens it needs while it is still looking (:meth:`Strategy.watch`), and
reacts to them through the :class:`Host` (the injector): it can hold the output from a point on
(bytes already seen but not sent), put its snippet at a held offset, or write it at the current
position. The tokens the tokenizer must report are the union of what the pending strategies
watch, so a placement costs nothing once it is placed, and adding one means adding a class
here (with ``@register``), its tests and its documentation.

``body_start``
    Right after the ``<body>`` start tag; without one, where an HTML parser opens the body.
    Held while a ``<frameset>`` could still replace the body (the parser's frameset-ok flag).
``after_heading``
    Right after the first ``<h1>`` element of the body that is shown (not hidden, nor in a
    hidden element, a closed ``<details>``, a ``<dialog>``, the fallback content of an
    ``<object>`` or a ``<video>``..., or an element a declarative shadow root is attached to
    (``<template shadowrootmode>``): see :func:`_hides`, :data:`_FALLBACK`) closes
    (its ``</h1>``, or another heading's end tag; not one the parser ignores, such as a
    ``</h1>`` with an ``<object>`` or ``<table>`` still open in the heading), or before a
    tag that closes it (a heading start tag, or from outside: the end tag of an element
    open around it, a table part where it stands in a table or a cell), after a ``</h1>``
    of its own; held from the body start until then. What is open around each heading is
    read from the held bytes before it (each byte once). Where an ``<a>`` is open there (a
    logo link around the headline), after the ``</a>`` that closes it (and after the
    ``<p>`` it then stands in, as for ``marker``). Links are open as the parser keeps them
    (see :class:`_Links`): one left open in a table cell or caption, a ``<marquee>``, an
    ``<object>`` or an ``<applet>`` closes with it, and an ``</a>`` or ``<a>`` there does
    not close one opened outside it. Without a shown ``<h1>``, when the hold limit is hit,
    where the heading's end cannot be told, or where the link around it is closed
    otherwise than by its ``</a>`` (by the page's next ``<a>``, or with the cell, caption
    or marquee it was opened in), at the body start.
``marker``
    Right after the first ``<!-- compliance:notices -->`` comment of the body (whitespace
    inside it does not matter) that is shown (not in a hidden element, as for
    ``after_heading``); held from the body start until then. Inside an open ``<p>``
    (the notice would close it, and move what follows the marker out of it), where the
    paragraph ends: after its ``</p>``, or before the tag that closes it (an end tag of an
    element around it only where that element is open in scope: see
    ``_CLOSE_P_FROM_OUTSIDE``; a stray ``</div>`` leaves it open). Inside an open
    ``<a>`` (a notice's own link would close it, and the page's link be cloned into the
    notice), after the ``</a>`` that closes it, as for ``after_heading``. Without a marker,
    or when the hold limit is hit, or in a paragraph or link left open to the end (or
    closed otherwise than by its ``</a>``, or taken off the parser's list where it still
    holds the place), at the body start.

``after_heading`` and ``marker`` pass over the links that open and close around nothing they
watch, and follow the rest of the links and paragraphs before their place (past the first
few) only once it is found, reading the held bytes again (see
:attr:`_AtBodyStartUnlessFound.defer_after`): a page without its place costs them about what
it costs ``body_end``.

``body_end``
    Before the ``</body>`` that closes the document: held from each ``</body>`` until more
    content proves it was not the last. Without one, or when the hold limit is hit, or with
    an element still open that would hide or move the notice (``<details>``, ``<video>``,
    ``<object>``, ``<table>``..., see ``_ENCLOSING``), at the very end, after end tags for
    those and any ``<svg>``, ``<math>`` or ``<select>`` still open (so that the notice is the
    last thing in the body, shown, not foster-parented). Before a ``<plaintext>`` start tag,
    since everything after it is text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import ClassVar, Final, Protocol, TypeVar

from compliance.html.tokenizer import (
    CLOSES_P,
    RAW_TEXT,
    VOID,
    QuietSink,
    Tokenizer,
    Watch,
    attributes,
    innermost,
)

__all__ = [
    "CLOSE_P_STARTS",
    "HEADING_TAGS",
    "MARKER",
    "PLACEMENTS",
    "Host",
    "Placement",
    "Strategy",
    "register",
]

Placement = str
"""The name of a registered placement, a key of :data:`PLACEMENTS`: ``body_start``,
``after_heading``, ``marker``, ``body_end``, and any a site registers. The rule format accepts
exactly the registered names."""

MARKER: Final = b"<!-- compliance:notices -->"
"""The comment a page places where ``marker`` notices should go."""

_WS = b"\t\n\f\r "
_HEADINGS: Final = frozenset(b"h1 h2 h3 h4 h5 h6".split())
# What the heading's content may hold that hides what is below it from an end tag (the
# standard's "has an element in scope"): an end tag whose element is below one of these is
# ignored, a </h1> included, so the heading stays open.
_SCOPE: Final = frozenset(b"applet caption table td th marquee object".split())
_TABLE_PARTS: Final = frozenset(b"table tbody thead tfoot tr td th caption".split())
_TABLE_BODIES: Final = frozenset(b"tbody thead tfoot".split())
_CELLS: Final = frozenset(b"td th caption".split())  # what inserts a marker in a table
# Non-void elements of the standard's "special" category (an end tag of another element
# stops at one of them), those of _SCOPE and _TABLE_PARTS aside.
_SPECIAL: Final = frozenset(
    b"address article aside blockquote body button center colgroup dd details dialog dir div"
    b" dl dt fieldset figcaption figure footer form frameset head header hgroup html iframe li"
    b" listing main menu nav noembed noframes noscript ol p plaintext pre script search"
    b" section select style summary template textarea title ul xmp".split()
)
# End tags that close every element above theirs in scope. (One whose element was opened
# before the heading closes the heading too, <div><h1>T</div>; what is open around the
# heading is not followed, so such a tag is taken for one with nothing to close.)
_CLOSES_ENCLOSING: Final = frozenset(
    b"address article aside blockquote button center details dialog dir div dl fieldset"
    b" figcaption figure footer header hgroup listing main menu nav ol pre search section"
    b" summary ul li dd dt applet marquee object".split()
)
# Start tags that close a table cell, and so a heading in it (<td><h1>T<td>), unless they
# belong to a table inside the heading.
_CLOSES_CELL: Final = frozenset(b"caption col colgroup tbody td tfoot th thead tr".split())
# Their end tag is the adoption agency's: what follows a special element after them stays open.
_FORMATTING: Final = frozenset(b"a b big code em font i nobr s small strike strong tt u".split())
_ANY_SPECIAL: Final = _SPECIAL | _SCOPE | _TABLE_PARTS | _HEADINGS
_LIST_SCOPE: Final = _SCOPE | {b"ol", b"ul"}
_BUTTON_SCOPE: Final = _SCOPE | {b"button"}
_TABLE_SCOPE: Final = frozenset((b"table",))
# Followed by the tokenizer (foreign content, template contents, a select), not kept here.
_CONTEXTS: Final = frozenset(b"svg math template select".split())


# What is open around the heading (its ancestors), followed only when a tag in the heading
# could close it from outside: the elements whose end tag closes what is open above them in
# scope (and the elements that bound a scope), the table's parts, the headings. Every one of
# them is special, so no other end tag pops one (they stop at a special element, and the
# adoption agency moves them but keeps them open).
_ANCESTRY: Final = _CLOSES_ENCLOSING | _SCOPE | _TABLE_PARTS | _HEADINGS
# Start tags whose effect on those is not followed here (a ruby part generates implied end
# tags: an <li> in a <ruby> would close): met before the heading, its place is not known.
_UNFOLLOWED: Final = frozenset(b"rb rp rt rtc".split())
# Media elements: their content is fallback, never rendered where the element is supported
# (every browser). Not special: their end tag is the generic one, which stops at a special
# element (a <p> inside one is followed for that).
_MEDIA: Final = frozenset(b"video audio canvas progress meter".split())
_ANCESTRY_WATCH: Final = Watch.of(
    _ANCESTRY | _UNFOLLOWED | _MEDIA | {b"col", b"colgroup", b"p", b"form"},
    _ANCESTRY | _MEDIA | {b"col", b"colgroup", b"p"},
)
# Elements that cannot hold a heading (void, text, or followed by the tokenizer: closed by
# the time a heading in the HTML body opens), whatever their attributes.
_HOLD_NOTHING: Final = VOID | RAW_TEXT | _CONTEXTS | {b"script", b"plaintext"}
# Where an element may keep its content from being shown: a ``hidden`` or ``popover``
# attribute, a ``style`` attribute, a ``shadowrootmode`` attribute (a declarative shadow
# root: its host shows only the children it slots), a <dialog>, <details>, <object>,
# <applet>, <video>, <audio>, <canvas>, <progress>, <meter>, <datalist>, <option> or
# <optgroup> (attribute names are not decoded, and may follow a quoted value directly).
# Tags where it may occur are reported to the ancestor reader whatever their name, and
# read exactly.
_MAY_HIDE = re.compile(
    rb"[\t\n\f\r /\"'](?:[hH][iI][dD][dD][eE][nN]|[pP][oO][pP][oO][vV][eE][rR])(?![^\t\n\f\r />=])"
    rb"|[\t\n\f\r /\"'][sS][tT][yY][lL][eE][\t\n\f\r ]*="
    rb"|[\t\n\f\r /\"'][sS][hH][aA][dD][oO][wW][rR][oO][oO][tT][mM][oO][dD][eE][\t\n\f\r ]*="
    rb"|<(?:[dD][iI][aA][lL][oO][gG]|[dD][eE][tT][aA][iI][lL][sS]"
    rb"|[oO][bB][jJ][eE][cC][tT]|[aA][pP][pP][lL][eE][tT]"
    rb"|[vV][iI][dD][eE][oO]|[aA][uU][dD][iI][oO]|[cC][aA][nN][vV][aA][sS]"
    rb"|[pP][rR][oO][gG][rR][eE][sS][sS]|[mM][eE][tT][eE][rR]"
    rb"|[dD][aA][tT][aA][lL][iI][sS][tT]|[oO][pP][tT][iI][oO][nN]|[oO][pP][tT][gG][rR][oO][uU][pP])"
)
# Elements whose content is fallback, shown only where what they embed cannot be (the
# page cannot tell): a heading there may be hidden.
_FALLBACK: Final = frozenset((b"object", b"applet")) | _MEDIA
# Elements whose content is never rendered in the body (not followed to their end here).
_NOT_RENDERED: Final = frozenset((b"datalist", b"option", b"optgroup"))
_HIDING_STARTS: Final = tuple(
    b"<" + name for name in (b"dialog", b"details", *_FALLBACK, *_NOT_RENDERED)
)
# Any of them in lower-case bytes: one search that stops only at a "<" (a literal first
# byte), where a search for each scans all the bytes again (twelve times the time).
_HIDING_START = re.compile(b"<(?:" + b"|".join(start[1:] for start in _HIDING_STARTS) + b")")
_NAME_BEFORE: Final = frozenset(b"\t\n\f\r /\"'")
_NAME_AFTER: Final = frozenset(b"\t\n\f\r />=")
_EQUALS = re.compile(rb"[\t\n\f\r ]*=")
_NAME_AFTER_END: Final = frozenset(bytes((c,)) for c in b"\t\n\f\r />")


def _may_hide(data: bytes) -> bool:
    """Whether :data:`_MAY_HIDE` occurs in ``data``, told at the speed of ``bytes.find``
    (the pattern's search tries it at every space of a page)."""
    low = data.lower()
    if _HIDING_START.search(low) is not None:
        return True
    for word in (b"hidden", b"popover", b"style", b"shadowrootmode"):
        at = low.find(word)
        while at >= 0:
            if at and low[at - 1] in _NAME_BEFORE:
                after = at + len(word)
                if word in (b"style", b"shadowrootmode"):
                    if _EQUALS.match(low, after):
                        return True
                elif after == len(low) or low[after] in _NAME_AFTER:
                    return True
            at = low.find(word, at + 1)
    return False


# A declaration that hides an element's content: ``display: none``, ``visibility: hidden``
# or ``collapse`` (inherited: a notice in it, which sets no visibility, is not shown), or
# ``content-visibility: hidden`` (its content is not rendered). Read once comments are out.
_DISPLAY_NONE = re.compile(
    r"(?:^|;)[\t\n\f\r ]*(?:display[\t\n\f\r ]*:[\t\n\f\r ]*none"
    r"|visibility[\t\n\f\r ]*:[\t\n\f\r ]*(?:hidden|collapse)"
    r"|content-visibility[\t\n\f\r ]*:[\t\n\f\r ]*hidden)[\t\n\f\r ]*"
    r"(?:![\t\n\f\r ]*important[\t\n\f\r ]*)?(?:;|$)",
    re.IGNORECASE,
)
# A CSS comment (one left open runs to the end), or a string (kept: a comment in it is
# text).
_CSS_COMMENT = re.compile(
    r"/\*.*?(?:\*/|$)|(\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?)", re.DOTALL
)


def _without_comments(style: str) -> str:
    """An inline style with its CSS comments read as the space they separate by."""
    if "/*" not in style:
        return style
    return _CSS_COMMENT.sub(lambda m: m.group(1) or " ", style)


def _hides(name: bytes, tag: bytes) -> bool:
    """Whether the element this start tag opens keeps its content from being shown, as a
    browser renders it without scripts or page styles: a ``hidden`` attribute (any value,
    ``until-found`` too), a ``popover`` (shown only when opened), an inline ``display:
    none``, ``visibility: hidden`` (or ``collapse``) or ``content-visibility: hidden``
    (CSS comments aside), a ``<dialog>`` or a ``<details>`` not ``open`` (the details'
    first summary aside)."""
    return _hiding(name, attributes(tag)) is not None


def _hiding(name: bytes, found: dict[bytes, str]) -> str | None:
    """How an element with these attributes hides its content: ``"hidden"``, ``"folded"``
    (a details not open: its summary is shown), or None."""
    if b"hidden" in found or b"popover" in found:
        return "hidden"
    style = found.get(b"style")
    if style and _DISPLAY_NONE.search(_without_comments(style)):
        return "hidden"
    if name in (b"dialog", b"details") and b"open" not in found:
        return "folded" if name == b"details" else "hidden"
    return None


class _Hidden(bytes):
    """An element on the ancestor stack that keeps its content from being shown (equal to
    its name, as any other entry is)."""

    __slots__ = ()


class _Host(_Hidden):
    """An element a declarative shadow root is attached to: the children it does not slot
    (a notice) are not rendered. Followed to its end tag (a generic one) by name."""

    __slots__ = ()


class _Plain(bytes):
    """An element of a shadow host's name, followed to its (generic) end tag."""

    __slots__ = ()


class _Folded(_Hidden):
    """A ``<details>`` not open: only its summary is shown."""

    __slots__ = ()


class _Summarized(_Folded):
    """A ``<details>`` not open whose first ``<summary>`` child has opened: any other is
    folded content."""

    __slots__ = ()


def _entry(name: bytes, tag: bytes | None) -> bytes:
    """What goes on the ancestor stack for a start tag (one too long to read may hide)."""
    if tag is None or name in _FALLBACK:
        return _Hidden(name)
    if name not in (b"dialog", b"details") and not _may_hide(tag):
        return name  # the usual case, told without reading the attributes
    how = _hiding(name, attributes(tag))
    return name if how is None else _Folded(name) if how == "folded" else _Hidden(name)


def _generic(element: bytes) -> bool:
    """Whether ``element`` (on the ancestor stack) is no special element: a generic end tag
    reaches past it."""
    return element in _MEDIA or isinstance(element, (_Host, _Plain))


# A start tag ending at the end of the data (the tag before a <template shadowrootmode>).
_START_TAG_BEFORE = re.compile(rb"<([a-zA-Z][^\t\n\f\r />]*)(?:[^<>\"']|\"[^\"]*\"|'[^']*')*>")


def _tag_before(data: bytes, at: int) -> bytes | None:
    """The name of the start tag just before ``data[at]`` (whitespace aside), if that is
    what stands there, lower-cased; None when it is not, or cannot be told."""
    k = at
    while k > 0 and data[k - 1] in _WS:
        k -= 1
    if not k or data[k - 1] != 0x3E:  # ">"
        return None
    lt = data.rfind(b"<", 0, k)
    m = _START_TAG_BEFORE.fullmatch(data, lt, k) if lt >= 0 else None
    return m.group(1).lower() if m is not None else None


def _text_then_end(data: bytes, at: int, name: bytes) -> bool:
    """Whether ``data[at:]`` is text up to an end tag ``</name>``: the element whose start
    tag ends at ``at`` closes there, with nothing opened in it (``<span hidden>3</span>``),
    and hides nothing after it."""
    k = data.find(b"<", at)
    after = k + 2 + len(name)
    return (
        k >= 0
        and data[k + 1 : k + 2] == b"/"
        and data[k + 2 : after].lower() == name
        and data[after : after + 1] in _NAME_AFTER_END
    )


def _hidden_in(stack: list[bytes]) -> bool:
    """Whether something open on ``stack`` (outermost first) hides what is in it."""
    for k, element in enumerate(stack):
        if isinstance(element, _Folded):
            if k + 1 < len(stack) and stack[k + 1] == b"summary":
                continue  # in the details' summary, which is shown
            return True
        if isinstance(element, _Hidden):
            return True
    return False


# The table insertion modes, by the innermost part of a table open.
_MODE_OF: Final = {
    b"table": "table",
    b"tbody": "tbody",
    b"thead": "tbody",
    b"tfoot": "tbody",
    b"tr": "row",
    b"td": "cell",
    b"th": "cell",
    b"caption": "caption",
}
# Start tags that close the heading when it stands directly in a table, a table body or a
# row (foster-parented: the tree builder clears the stack back to the table's part), or in
# a cell or a caption (they close the cell or the caption).
_TABLE_CLOSERS: Final = {
    "table": _CLOSES_CELL | {b"table"},
    "tbody": _CLOSES_CELL | {b"table"},
    "row": _CLOSES_CELL | {b"table"},
    "cell": _CLOSES_CELL,
    "caption": _CLOSES_CELL,
}

_LIST_ITEMS: Final = frozenset(b"li dd dt".split())
# End tags that may close the heading from inside it or from outside.
_MAY_CLOSE: Final = _HEADINGS | _CLOSES_ENCLOSING | _TABLE_PARTS


def body_watch(
    starts: Iterable[bytes] = (),
    ends: Iterable[bytes] = (),
    *,
    comments: bool = False,
    text: bool = False,
    everything: bool = False,
    pairs: Iterable[bytes] = (),
) -> Watch:
    """A watch of what matters in the HTML body alone, as every placement's is (they act on
    nothing else): the tags of closed SVG and MathML trees, and those inside a select or a
    template, go unreported."""
    return Watch.of(
        starts,
        ends,
        comments=comments,
        text=text,
        everything=everything,
        foreign_leaves=False,
        context_tags=False,
        pairs=pairs,
    )


_NOTHING: Final = body_watch()
_EVERYTHING: Final = body_watch(everything=True)
_H1: Final = body_watch((b"h1",))
# What ends a <p> in button scope, or hides it from a start tag (the scope boundaries).
_P_SCOPE: Final = frozenset(b"button applet marquee object table".split())
# Start tags that close an open <p> (in button scope): a <table> does too, but it is a scope
# boundary here (and in quirks mode it does not); list items close it as well.
CLOSE_P_STARTS: Final = (CLOSES_P - {b"table"}) | _LIST_ITEMS
# End tags of the elements a paragraph can be in whose end tag closes what is open in them:
# they close it where their element is open around it, in scope (any heading for a
# heading's; for </li>, in list item scope), and are ignored otherwise (</div> with no <div>
# in scope). Any other end tag leaves it open: the generic one stops at the paragraph (a
# special element), </form>, </body> and </html> pop nothing above their element, and a
# raw-text element or one the tokenizer follows holds no paragraph. Those of a table's parts,
# <applet>, <marquee> and <object> close it where they close the part it is in, which the
# links follow (_Links); </button> is read with the paragraph's scope (_P_SCOPE).
_CLOSE_P_FROM_OUTSIDE: Final = (_CLOSES_ENCLOSING - _P_SCOPE) | _HEADINGS
CLOSE_P_FROM_OUTSIDE: Final = _CLOSE_P_FROM_OUTSIDE  # (for the edge export, by name)
_CLOSE_P_ENDS: Final = _CLOSE_P_FROM_OUTSIDE | {b"p"}
_MARKER_WATCH: Final = body_watch(
    CLOSE_P_STARTS | _P_SCOPE, _CLOSE_P_ENDS | _P_SCOPE, comments=True
)
_MARKER_OUTSIDE_P: Final = body_watch((b"p",), comments=True)
# A start tag (in bytes where no tag is cut: the start of an element).
_START_TAG_IN: Final = re.compile(rb"<[a-zA-Z]")
# A form's start and end tags (a start tag is dropped where a form is open: _form_ignored).
_FORM_TAGS: Final = re.compile(rb"<(/?)form[\t\n\f\r />]", re.IGNORECASE)
# While it defers following the links and paragraphs (_AtBodyStartUnlessFound.defer_after).
_MARKER_DEFERRED: Final = body_watch(comments=True)
# Waiting for the end of the paragraph the place is in (and of the links: see _Links).
_CLEAR_WATCH: Final = body_watch(CLOSE_P_STARTS | _P_SCOPE, _CLOSE_P_ENDS | _P_SCOPE)
_CLEAR_OUTSIDE_P: Final = body_watch((b"p",))
# What the links open in the body depend on (see _Links): the <a> tags, the elements that
# insert a marker in the parser's list of active formatting elements wherever they start
# (applet, marquee, object), and a table's parts (a cell and a caption insert one too).
# While nothing is open only the start tags that open something matter; outside a table,
# not the table's parts (a browser ignores them there).
_MARKED: Final = frozenset(b"applet marquee object".split())
# (A link that opens and closes around nothing watched changes nothing, and goes unreported:
# a page's menus, and most of its links; one opened while a place waits in a paragraph does
# not count as one it waited for: see _linked.)
_LINKS_NOTHING_OPEN: Final = body_watch(_MARKED | {b"a", b"table"}, {b"a"}, pairs=(b"a",))
_LINKS_OPEN: Final = body_watch(_MARKED | {b"a", b"table"}, _MARKED | {b"a"})
_LINKS_IN_TABLE: Final = body_watch(
    _MARKED | _TABLE_PARTS | {b"a", b"col", b"colgroup"}, _MARKED | _TABLE_PARTS | {b"a"}
)
_LINK_TAGS: Final = _LINKS_IN_TABLE.starts | _LINKS_IN_TABLE.ends
# While they are not followed (see _Links.behind): with no link (nor paragraph) open, only
# the start of one; else any of them, which makes the links read what they passed over.
_LINKS_IDLE: Final = body_watch((b"a",))
_LINKS_BEHIND: Final = _LINKS_IN_TABLE
# What the links read again when they catch up: their tags but the links'.
_PARTS_WATCH: Final = Watch.of(_LINKS_IN_TABLE.starts - {b"a"}, _LINKS_IN_TABLE.ends - {b"a"})
# A placement's watch and the links' (by their ids: module constants, never freed), both:
# few unions, and told apart without hashing a Watch.
_JOINED: dict[tuple[int, int], Watch] = {}
# Elements a notice at the very end must not be left in: it would be hidden (fallback
# content, a closed <details>, a <dialog> not shown...), or, for a table, moved before it.
# With one of them open a </body> is ignored or closes nothing, so the notice goes at the
# very end, after their end tags.
_ENCLOSING: Final = frozenset(
    b"table applet marquee object details dialog video audio canvas datalist progress meter"
    b" option".split()
)
_BODY_END: Final = body_watch(_ENCLOSING | {b"plaintext"}, _ENCLOSING | {b"body"})
# Those whose end tag is the generic one, which stops at a special element open in them
# (<video><div>): while the innermost of them open is one, the special elements opened in it
# are followed too (see BodyEnd._special).
_GENERIC_END: Final = _ENCLOSING - _CLOSES_ENCLOSING - {b"table"}
_SPECIAL_IN_FALLBACK: Final = (
    _ANY_SPECIAL - _ENCLOSING - VOID - RAW_TEXT - {b"body", b"html", b"script", b"plaintext"}
)
_BODY_END_IN_FALLBACK: Final = body_watch(
    _ENCLOSING | _SPECIAL_IN_FALLBACK | {b"plaintext"},
    _ENCLOSING | _SPECIAL_IN_FALLBACK | {b"body"},
)
# What an end tag of each of them does not reach past (its scope, or the special elements
# for those whose end tag is the generic one).
_NOT_PAST: Final = {
    name: (
        frozenset()
        if name == b"table"
        else _SCOPE
        if name in _CLOSES_ENCLOSING
        else _SCOPE | {b"details"}
    )
    for name in _ENCLOSING
}


HEADING_TAGS: Final = {
    "headings": _HEADINGS,
    "scope": _SCOPE,
    "tableParts": _TABLE_PARTS,
    "special": _ANY_SPECIAL,
    "closesEnclosing": _CLOSES_ENCLOSING,
    "closesCell": _CLOSES_CELL,
    "formatting": _FORMATTING,
    "listItems": _LIST_ITEMS,
    "ancestry": _ANCESTRY,
    "contexts": _CONTEXTS,
    "mayClose": _MAY_CLOSE,
}
"""The element sets ``after_heading`` reads a heading's content by (where it closes: see
:class:`AfterHeading`), by name, for the edge export that reads it the same way."""


class Host(Protocol):
    """What a strategy may ask of the injector. Positions index the current ``data``."""

    tokenizer: Tokenizer

    @property
    def verbatim(self) -> bool:
        """The page's held bytes (:meth:`page`) are the bytes its tokenizer read, so that
        they can be read again the same way: nothing cut out of them or put in but the
        snippets (no element withheld)."""

    def hold_at(self, data: bytes, at: int) -> int:
        """Hold the output from ``data[at]`` on; return that point's offset in the held
        bytes (a place to :meth:`put` a snippet later)."""

    def held_at(self, data: bytes, at: int) -> int | None:
        """The offset ``data[at]`` has (or will have) in the held bytes, while some are."""

    def held(self, data: bytes, at: int, start: int, end: int) -> bytes | None:
        """The held bytes from offset ``start`` to ``end``, once what comes before
        ``data[at]`` is held (None if the hold ended on the way: it overflowed)."""

    def page_at(self, data: bytes, at: int) -> int | None:
        """How many of the page's own bytes (the snippets put in left out) are held before
        ``data[at]`` (or will be), while some are."""

    def page(self, data: bytes, at: int, start: int, end: int) -> bytes | None:
        """The page's own held bytes (the snippets put in left out) from ``start`` to
        ``end``, counted as :meth:`page_at` does, once what comes before ``data[at]`` is
        held (None if the hold ended on the way)."""

    def put(self, owner: Strategy, offset: int, snippet: bytes) -> None:
        """Insert ``snippet`` at ``offset`` of the held bytes."""

    def write_at(self, owner: Strategy, data: bytes, at: int, snippet: bytes) -> None:
        """Insert ``snippet`` just before ``data[at]``."""

    def done(self, owner: Strategy) -> None:
        """``owner`` has placed its snippet (or given up): it holds nothing any more."""

    def release(self, owner: Strategy) -> None:
        """``owner`` no longer needs what it held (it keeps looking)."""


class Strategy:
    """One placement. Subclasses override the hooks they need."""

    name: ClassVar[Placement]
    order: ClassVar[int] = 0

    def __init__(self, host: Host, snippet: bytes) -> None:
        self.host = host
        self.snippet = snippet
        self.pending = True
        """Still looking for its place."""
        self.offset: int | None = None
        """Where its snippet goes in the held bytes, while it holds some."""

    def watch(self) -> Watch:
        """The tokens it needs now."""
        return _NOTHING

    def begin(self, data: bytes, at: int, frameset_ok: bool) -> None:
        """The body starts at ``data[at]``."""

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        """A tag it watches (``tag`` is None for a tag too long to read)."""

    def on_unread_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        """A tag too long to read, that the tokenizer passes over unreported (unless it
        watches everything: then :meth:`on_tag`), whatever it watches."""

    def on_comment(self, data: bytes, start: int, end: int) -> None:
        """A comment, when it watches comments."""

    def on_text(self, data: bytes, start: int, end: int) -> None:
        """Character data, when it watches text."""

    def frameset_resolved(self) -> None:
        """A ``<frameset>`` can no longer replace the body."""

    def overflow(self) -> None:
        """The held bytes reached the limit and are about to be sent: place now or never."""

    def finish(self, safe: bool) -> bytes:
        """End of the document: place what is still held; return what goes at the very end
        (``safe``: the tokenizer is in markup, not inside a comment or raw text)."""
        return b""

    # helpers

    def _place_held(self) -> None:
        if self.offset is not None:
            self.host.put(self, self.offset, self.snippet)
        self.offset = None
        self.pending = False
        self.host.done(self)


S = TypeVar("S", bound=type[Strategy])

PLACEMENTS: dict[str, type[Strategy]] = {}
"""The registered placements by name, in the order their snippets go at one point."""


def register(cls: S) -> S:
    """Class decorator: make a strategy available under its ``name``."""
    cls.order = len(PLACEMENTS)
    PLACEMENTS[cls.name] = cls
    return cls


@register
class BodyStart(Strategy):
    name = "body_start"

    def begin(self, data: bytes, at: int, frameset_ok: bool) -> None:
        if frameset_ok:
            self.offset = self.host.hold_at(data, at)
        else:
            self.host.write_at(self, data, at, self.snippet)
            self.pending = False
            self.host.done(self)

    def frameset_resolved(self) -> None:
        if self.pending:
            self._place_held()

    def overflow(self) -> None:
        self._place_held()

    def finish(self, safe: bool) -> bytes:
        self._place_held()
        return b""


class _Link:
    """An ``<a>`` in the parser's list of active formatting elements."""

    __slots__ = ("around", "at", "holds_table", "tables")

    def __init__(self, tables: int, at: int | None) -> None:
        self.tables = tables
        """The tables open when it opened: while one opened since is open, its ``</a>`` is
        out of scope (ignored)."""
        self.around = False
        """It was open where a notice's place was found (which then waits for its end)."""
        self.at = at
        """Where its start tag ends (counted by :meth:`Host.page_at`), if known."""
        self.holds_table = False
        """The last table opened in it stands right in it: nothing but text between its start
        tag and the table's (no element opened in the link stays open around the table)."""


class _Links:
    """The links (``<a>``) a browser keeps open in the HTML body, as its tree builder keeps
    them in its list of active formatting elements: an ``<a>`` start tag adds one (closing,
    by the adoption agency, one open since the last marker), its ``</a>`` closes the last
    one if it is open since the last marker (and no table opened since is open). A marker
    goes in the list where an ``<applet>``, ``<marquee>`` or ``<object>`` opens, or a table
    cell or caption; where that element closes (its end tag, in scope, or the end of the
    cell: the next cell, a row, the table's end), the list is cleared up to the last
    marker: the links opened in it close with it. A link left open in a cell does not reach
    past the cell; one opened before the table is not closed by an ``</a>`` in it.

    To tell where those elements close, the table parts and the marker elements open are
    followed by the tree builder's rules for tables (the insertion modes of a table, a row,
    a cell...). Template contents, selects and foreign content are not read here (their
    tags change nothing in the body). Links popped from the stack of open elements but kept
    in the list (``<p><a>x</p>``, reopened by the next text) count as open; so do those
    before a marker, which a notice in the marked element would not be cloned into but may
    stand in (an ``<a>`` around a table)."""

    def __init__(self) -> None:
        self.open: list[bytes] = []
        """The table parts, applets, marquees and objects open, outermost first."""
        # Links and markers (bytes: the name of the element that inserted one, "td" for a
        # cell or caption). Markers before the first link change nothing (clearing up to
        # one clears what a list without it would), so the list is empty while no link is.
        self.active: list[bytes | _Link] = []
        self.count = 0
        """The links open."""
        self.lost = False
        """A link around a place was closed otherwise than by its ``</a>``: by the page's
        next ``<a>``, or with the element of a marker (a cell, a marquee...)."""
        self.broken = False
        """Nested or stacked too deep to follow: what is open can no longer be told."""
        self.unlisted: int | None = None
        """A link an ``<a>`` closed where a table opened in it is open (out of scope there:
        the parser takes it off its list and stack, but the table stays in it), while what
        is inserted may still land in it: the table's foster parent, its cells. The number of
        tables open then: the link is left where that table closes, when the table stood
        right in it (:attr:`_Link.holds_table`); 0 where elements opened in the link may stay
        open around the table (not followed: to the end)."""
        self.unread = []

    watch: Watch = _LINKS_NOTHING_OPEN
    """The tags it needs now (kept after each tag: asked for at every event)."""

    behind: int | None = None
    """Where (counted by :meth:`Host.page_at`) the table parts and marker elements stopped
    being followed, while they are not: with something open among them but no link (nor a
    paragraph, which its user follows), nothing depends on them, and a table page would
    cost a step per cell. The links read them again from the held bytes (:meth:`catch_up`)
    at the first of them that comes while a link or paragraph is open; until then the
    links opened are taken to stand where the last of them left (they do: none came)."""

    unread: list[int]
    """Since :attr:`behind`: where their tags start that the page's tokenizer passed over
    unreported (too long to read, come in pieces), counted as :attr:`behind`. Read again,
    they are passed over as they were."""

    def hold(self) -> None:
        """A place is found where the links open now are: it waits for their end."""
        for entry in self.active:
            if isinstance(entry, _Link):
                entry.around = True

    def last_link(self) -> _Link | None:
        """The link open since the last marker (there is one at most: an ``<a>`` closes the
        one before it, and it is the last entry), if any."""
        last = self.active[-1] if self.active else None
        return last if isinstance(last, _Link) else None

    def tag(self, name: bytes, is_end: bool, at: int | None = None) -> None:
        """A tag of :data:`_LINK_TAGS` in the HTML body (``at``: where an ``<a>`` start tag
        ends, counted by :meth:`Host.page_at`)."""
        active = self.active
        if name == b"a":
            last = active[-1] if active else None  # (as last_link() tells, one call less)
            if not isinstance(last, _Link):
                last = None
            tables = self.open.count(b"table") if self.open else 0
            if not is_end:
                if last is not None:
                    if last.tables < tables:
                        # Out of scope (a table opened in it is open): off the list, but
                        # what goes before the table (or in it) still lands in it.
                        kept = tables if last.holds_table else 0
                        self.unlisted = kept if self.unlisted is None else min(self.unlisted, kept)
                    self._drop(last)  # the adoption agency closes it: an <a> left open
                if len(active) >= 512:
                    self.broken = True
                    return
                active.append(_Link(tables, at))
                self.count += 1
            elif last is not None and last.tables >= tables:
                last.around = False  # (closed by its end tag)
                self._drop(last)
        elif name in _MARKED:
            if not is_end:
                self._push(name)
            elif _in_scope(self.open, {name}, _SCOPE):
                _pop_to(self.open, {name})
                self._clear()
        elif is_end:
            self._table_end(name)
        else:
            self._table_start(name)
        self._rewatch()

    def _rewatch(self) -> None:
        open_ = self.open
        if self.behind is not None:
            self.watch = _LINKS_BEHIND if self.count else _LINKS_IDLE
        else:
            self.watch = (
                _LINKS_IN_TABLE
                if b"table" in open_
                else _LINKS_OPEN
                if self.count or open_
                else _LINKS_NOTHING_OPEN
            )

    def rest(self, at: int) -> None:
        """Stop following the table parts and marker elements from ``at`` on (see
        :attr:`behind`): no link is open."""
        self.behind = at
        self.unread = []
        self._rewatch()

    def catch_up(self, region: bytes, tokenizer: Tokenizer, left: list[tuple[bytes, int]]) -> bool:
        """Follow the table parts and marker elements in ``region``, the page's bytes from
        :attr:`behind` to the tag ``tokenizer`` (the page's) reports: what they open and
        close, with no link open among them (those open now opened after them, where they
        left the tables open; ``left``: the foreign content open at the end of ``region``).
        False when the bytes cannot be read as the page's tokenizer read them."""
        active, count, behind = self.active, self.count, self.behind or 0
        self.active, self.count, self.behind = [], 0, None
        reader = _PartsReader(self, tokenizer.max_token, {at - behind for at in self.unread})
        self.unread = []
        read = reader.read(region, left)
        self.active, self.count = active, count
        tables = self.open.count(b"table")
        for entry in active:
            if isinstance(entry, _Link):
                entry.tables = tables
        self._rewatch()
        return read

    def _drop(self, link: _Link) -> None:
        """The last entry, ``link``, closes."""
        self.active.pop()
        self.count -= 1
        self.lost = self.lost or link.around
        if not self.count:
            self.active.clear()

    def _clear(self) -> None:
        """Clear the list up to the last marker (and that marker)."""
        active = self.active
        while active:
            entry = active.pop()
            if not isinstance(entry, _Link):
                break
            self.count -= 1
            self.lost = self.lost or entry.around
        if not self.count:
            active.clear()

    def _push(self, name: bytes) -> None:
        """An applet, marquee or object opens, with its marker."""
        if len(self.open) >= 512 or len(self.active) >= 512:
            self.broken = True
            return
        self.open.append(name)
        if self.count:
            self.active.append(name)

    def _marker(self, opened: bool) -> None:
        """A cell or caption opens (a marker), or closes (the list is cleared up to one)."""
        if opened:
            if self.count:
                self.active.append(b"td")
        else:
            self._clear()

    def _table_start(self, name: bytes) -> None:
        if len(self.open) >= 509 or len(self.active) >= 512:
            self.broken = True
            return
        if (
            name == b"table"
            and self.unlisted
            and self.open.count(b"table") == self.unlisted
            and _table_mode(self.open) not in ("cell", "caption")
        ):
            self.unlisted = None  # it ends the table the link was left in, outside the link
        _table_start(self.open, name, self._marker)

    def _table_end(self, name: bytes) -> None:
        """A table part's end tag: it closes what is open up to its element, in table scope
        (a cell or caption among them: the list is cleared up to its marker)."""
        stack = self.open
        if _in_scope(stack, {name}, _TABLE_SCOPE):
            k = len(stack) - 1 - stack[::-1].index(name)
            cell = any(e in _CELLS for e in stack[k:])
            del stack[k:]
            if cell:
                self._clear()
            if self.unlisted and stack.count(b"table") < self.unlisted:
                self.unlisted = None  # the table the link was left in closed


class _PartsReader(QuietSink):
    """Reads the table parts and marker elements the links passed over (see
    :attr:`_Links.behind`) from the page's held bytes, as the page's tokenizer read them:
    from a tag's end in the HTML body (markup, no context) to the next one's start."""

    def __init__(self, links: _Links, max_token: int, unread: set[int]) -> None:
        self.links = links
        self.unread = unread
        """Where in the region the tags start that the page's tokenizer passed over."""
        self.tokenizer = Tokenizer(self, _PARTS_WATCH)
        self.tokenizer.max_token = max_token

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.tokenizer
        if tok.in_html_body and not self.links.broken and start not in self.unread:
            self.links.tag(name, is_end)

    def read(self, region: bytes, left: list[tuple[bytes, int]]) -> bool:
        """Read ``region``; whether it ended where the page's tokenizer was: in markup, in
        the HTML body, or in the foreign content ``left`` that the tag after it leaves."""
        tok = self.tokenizer
        return (
            tok.scan(region, 0, False) == len(region)
            and tok.state == 0
            and tok.foreign == left
            and not (tok.template or tok.select or tok.lost)
        )


# What puts an entry in the parser's list of active formatting elements, or a marker in it
# (a cell, a caption, applet, marquee and object; a template's content is not the body's),
# or clears it to the last marker (their end tags; a table's closes its cells).
_MARKERS: Final = _CELLS | _MARKED
_FORMATTING_WATCH: Final = Watch.of(
    _FORMATTING | _MARKERS, _FORMATTING | _MARKERS | {b"table", b"tr", b"tbody", b"thead"}
)


class _FormattingReader(QuietSink):
    """Reads the parser's list of active formatting elements through the body's bytes before
    a heading, as far as it can tell: what the text of the heading may reopen in it (a
    ``<b>`` left open in a paragraph the heading closes: ``<p><b><h1>T``). Entries still
    open around the heading count too (whether an element is still open is not followed
    here): the answer errs on the side of "may"."""

    def __init__(self) -> None:
        self.entries: list[bytes | None] = []  # None: a marker
        self.lost = False
        self.tokenizer = Tokenizer(self, _FORMATTING_WATCH)

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.tokenizer
        if tok.foreign or tok.template or tok.select:
            return  # not the body's list (a template's content has a list of its own)
        entries = self.entries
        last = _last_marker(entries)
        if name in _FORMATTING:
            if is_end or name == b"a":
                # The adoption agency takes the innermost one of that name off the list (an
                # <a> start tag with one listed runs it for that one first).
                k = innermost(entries, name)
                if k > last:
                    del entries[k]
            if not is_end and len(entries) < 512:
                entries.append(name)
        elif not is_end and name in _MARKERS:
            entries.append(None)
        elif is_end and last >= 0:
            # A marker's element closes (a table's end tag closes its cells): the list is
            # cleared to the last marker (taken as this one; a table part's end tag where
            # none is open changes nothing in a browser, and clears it here: "may" still).
            del entries[last:]

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        self.lost = True

    def pending(self, region: bytes) -> bool:
        """Whether, after ``region`` (the body up to the end of the heading's start tag),
        an entry stands in the list after the last marker: text in the heading may reopen
        it there, and then the current node is not the heading."""
        self.tokenizer.scan(region, 0, False)
        entries = self.entries
        return self.lost or any(e is not None for e in entries[_last_marker(entries) + 1 :])


def _last_marker(entries: list[bytes | None]) -> int:
    """Where the last marker stands in a list of active formatting elements, or -1."""
    return innermost(entries, None)


class _Deferred(QuietSink):
    """Reads the tags a placement deferred following (see
    :attr:`_AtBodyStartUnlessFound.defer_after`) from the page's held bytes ``region``, as the
    page's tokenizer read them, and hands the placement those it would have had, as the
    injector does; meanwhile it stands in for the injector as the placement's :class:`Host`:
    positions in ``region`` are counted (:meth:`page_at`) from ``base``, the held bytes are
    the injector's where the page's tokenizer is (``data[at]``). Following asks nothing else
    of a host, but to place the snippet at the body start."""

    def __init__(
        self,
        owner: _AtBodyStartUnlessFound,
        host: Host,
        data: bytes,
        at: int,
        base: int,
        unread: dict[int, tuple[bytes | None, bool]] | None,
    ) -> None:
        self.owner, self.host, self.data, self.at, self.base = owner, host, data, at, base
        self.unread = unread or {}
        # With tags to pass over as the page's tokenizer did, every tag is reported, those
        # among them too (else what the placement watches, as it changes).
        self.tokenizer = Tokenizer(self, _EVERYTHING if unread else owner.watch())
        self.tokenizer.max_token = host.tokenizer.max_token
        self.tokenizer.scripting = host.tokenizer.scripting
        self.failed = False

    def read(self, region: bytes) -> bool:
        """Read ``region``; whether it ended where the page's tokenizer is: in markup, in
        the HTML body (the foreign content the tag there leaves aside) and the placement
        still pending."""
        owner, tok = self.owner, self.tokenizer
        owner.host = self
        try:
            consumed = tok.scan(region, 0, False)
        finally:
            owner.host = self.host
        return (
            owner.pending
            and not self.failed
            and consumed == len(region)
            and tok.state == 0
            and tok.foreign == self.host.tokenizer.left
            and not (tok.template or tok.select or tok.lost)
        )

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        owner, tok = self.owner, self.tokenizer
        if not owner.pending:
            tok.active = False  # (placed at the body start on the way)
            return
        unread = self.unread.get(self.base + start) if self.unread else None
        if unread is not None:
            owner.on_unread_tag(data, start, *unread)
            return
        watch = owner.watch()
        # (Before its place, a placement's watch holds what it follows, and the heading's
        # start tags, which change nothing there.)
        if tok.in_html_body and (
            watch.everything or name in (watch.ends if is_end else watch.starts)
        ):
            owner._follow(data, start, end, name, is_end)
            if not self.unread:
                tok.watch = owner.watch()

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        self.failed = True  # (a tag too long to match in the held bytes: not as it was read)
        self.tokenizer.active = False

    # Host: what following asks of one.

    verbatim = True  # (its region is read from the held bytes of a host that is)

    def page_at(self, data: bytes, at: int) -> int | None:
        return self.base + at

    def page(self, data: bytes, at: int, start: int, end: int) -> bytes | None:
        return self.host.page(self.data, self.at, start, end)

    def put(self, owner: Strategy, offset: int, snippet: bytes) -> None:
        self.host.put(owner, offset, snippet)

    def done(self, owner: Strategy) -> None:
        self.host.done(owner)

    def release(self, owner: Strategy) -> None:
        self.host.release(owner)

    def hold_at(self, data: bytes, at: int) -> int:
        raise AssertionError(_NOT_WHILE_DEFERRED)

    def held_at(self, data: bytes, at: int) -> int | None:
        raise AssertionError(_NOT_WHILE_DEFERRED)

    def held(self, data: bytes, at: int, start: int, end: int) -> bytes | None:
        raise AssertionError(_NOT_WHILE_DEFERRED)

    def write_at(self, owner: Strategy, data: bytes, at: int, snippet: bytes) -> None:
        raise AssertionError(_NOT_WHILE_DEFERRED)


_NOT_WHILE_DEFERRED: Final = "following the deferred tags asks a host for the page alone"


class _AtBodyStartUnlessFound(Strategy):
    """Held from the body start, where the snippet goes if its place is never found."""

    _reader: _AncestorReader | None = None  # what is open in the body, once worth reading
    _read = 0  # the held bytes it has read, from the body start
    _end = 0  # where the last place looked at ends in the held bytes, from the body start

    def _hidden_at(self, data: bytes, end: int) -> bool:
        """Whether a snippet before ``data[end]`` (in the HTML body, after markup) may be
        hidden: an element open there hides its content (see :func:`_hides`), or one that
        may is not followed. Reads the held bytes from the body start, each byte once, and
        only once something in them may hide (:attr:`_reader` stays None until then: the
        place is shown, and its caller takes it)."""
        reader = self._reader
        if self.offset is None or (reader is not None and reader.done()):
            return True  # (and so it stays: nothing more to read)
        position = self.host.held_at(data, end)
        if position is None:
            return True
        self._end = position - self.offset
        region = self.host.held(data, end, self.offset + self._read, position)
        if region is None:
            return True
        if reader is None:
            if not _may_hide(region):
                return False
            reader = self._reader = _AncestorReader()
        self._read = self._end
        reader.read(region)
        return reader.done() or (reader.hid and _hidden_in(reader.stack))

    def begin(self, data: bytes, at: int, frameset_ok: bool) -> None:
        self.offset = self.host.hold_at(data, at)
        self._body = self.host.page_at(data, at)
        if self.defer_after == 0 and self.host.verbatim:
            self._deferred = self._body

    _body: int | None = None  # where the body starts, counted by Host.page_at

    defer_after: ClassVar[int | None] = 8
    """After following this many tags (:meth:`_follow`) with no place found, follow the
    rest only once a place is found, from the held bytes: meanwhile the page's tokenizer
    reports only what tells a place (a page's links and paragraphs cost a step each, and
    matter only where a place is found). The first few are followed as they come: a place
    near the body start (a headline under the menu) costs no second reading then. 0: from
    the body start; None: never (what a deferred reading must agree with)."""
    _followed = 0  # the tags followed as they came

    # Where (counted by Host.page_at) following was deferred from, while it is (None: the
    # tags are followed as they come), and the tags the page's tokenizer passed over
    # unreported since (too long to read, in pieces): where they start, their name and kind.
    _deferred: int | None = None
    _deferred_unread: dict[int, tuple[bytes | None, bool]] | None = None

    def _followed_one(self, data: bytes, end: int, name: bytes) -> None:
        """A tag in the HTML body ending before ``data[end]`` was followed as it came, no
        place waiting: after :attr:`defer_after` of them, defer the rest (from the end of an
        ``<a>`` or ``<p>`` tag, where a reading of the held bytes can start afresh: not in
        raw text, as after an ``<xmp>``)."""
        self._followed += 1
        limit = self.defer_after
        if (
            limit is not None
            and self._followed >= limit
            and name in (b"a", b"p")
            and self.pending
            and self.host.verbatim
        ):
            self._deferred = self._page_at(data, end)

    def _catch_up_deferred(self, data: bytes, at: int, until: int | None) -> bool:
        """Follow the links and paragraphs from :attr:`_deferred` up to ``until`` (counted
        by :meth:`Host.page_at`, taken before the held bytes reached past it: where the tag
        or comment the page's tokenizer reports in the HTML body starts), reading the held
        bytes again (the page's tokenizer at ``data[at]``); from then on as the tags come.
        True when they stand where they would have had they been followed all along; False
        when that cannot be told (the snippet then went at the body start)."""
        since, unread = self._deferred, self._deferred_unread
        self._deferred = self._deferred_unread = None
        host = self.host
        region = None
        if since is not None and until is not None:
            region = host.page(data, at, since, until)
        if region is None or not _Deferred(self, host, data, at, since or 0, unread).read(region):
            if self.pending:
                self._place_held()
            return False
        return self.pending

    # A <p> open in button scope (the scope boundaries opened in it since), or None. A
    # notice (an <aside>, any block) there would close the paragraph, and what follows in
    # it would move out.
    _p: list[bytes] | None = None
    # Where the paragraph stands among what the links follow (_Links.open): how many of
    # those are open around it, the innermost of them, and whether it is foster-parented
    # (in a table, a table body or a row: any table part's start tag clears it away).
    _p_in = 0
    _p_at: bytes | None = None
    _p_fostered = False
    # End tags met while it was open in button scope (and no place waited in it) that close
    # it where their element is open around it (_CLOSE_P_FROM_OUTSIDE, </button>), and
    # where the first of them starts (counted by Host.page_at): what is open around the
    # paragraph is read from there on back once a place depends on it (_p_around, None
    # until then); _p_unsure: one came while a <button> was open in it, whose content is not
    # followed (it may have closed an element there, or the paragraph).
    _p_ends: set[bytes] | None = None
    _p_ends_at: int | None = None
    _p_around: list[bytes] | None = None
    _p_unsure = False
    # Such end tags came before a <table> started in it: the paragraph is no longer
    # followed, and is open still unless one of them closed it.
    _p_maybe = False
    # A <p> opened in one of the scope boundaries open in the paragraph (a <button>, an
    # <object>, a table's cell): how many were open then, or None. That paragraph is in
    # button scope where the one followed is not, and is not followed: a place found while it
    # may be open goes to the body start (a notice in it would close it, and its end tag would
    # then make an empty paragraph of its own). It is closed once a boundary open around it
    # closes, or by its end tag where no boundary opened since.
    _p_inner: int | None = None
    # What is open in the body, read for the paragraphs' end tags, and how far (Host.page_at).
    _p_reader: _AncestorReader | None = None
    _p_read = 0
    _waiting = False  # its place was found in such a link or paragraph: it waits for the end
    # It waited for a link: the place moved past what the hiding test read (a link left
    # open may close far on, in an element that hides).
    _linked = False

    def __init__(self, host: Host, snippet: bytes) -> None:
        super().__init__(host, snippet)
        # The links open (see _Links). The bundled notices hold links, and an <a> start tag
        # where an <a> is open makes the parser close that one (the adoption agency): the
        # page's link would be cut short, or cloned into the notice; text in a notice in an
        # <a> would link to the page's URL.
        self._links = _Links()

    # The last watch asked for with the links' (watch() is asked for at every event).
    _own: Watch | None = None
    _links_watch: Watch | None = None
    _both = _NOTHING

    def _with_links(self, own: Watch) -> Watch:
        """``own``, and what the links need."""
        links = self._links.watch
        if links is _LINKS_IDLE and self._p is not None:
            links = _LINKS_BEHIND  # where the paragraph ends depends on them
        if own is not self._own or links is not self._links_watch:
            key = (id(own), id(links))
            both = _JOINED.get(key)
            if both is None:
                both = _JOINED[key] = own | links
            self._own, self._links_watch, self._both = own, links, both
        return self._both

    def _clear_watch(self) -> Watch:
        """What it needs while waiting for the end of a link or paragraph."""
        return self._with_links(_CLEAR_WATCH if self._p is not None else _CLEAR_OUTSIDE_P)

    def _place(self, data: bytes, at: int, before: bytes = b"") -> None:
        """Its place is just before ``data[at]`` (after ``before``), unless a link or a
        paragraph is open there: then where they end (``before`` left out, the page's own
        tags close what it would). Where a link the parser no longer lists may hold it
        (:attr:`_Links.unlisted`), at the body start."""
        links = self._links
        if self._in_unfollowed_p():
            self._place_held()
            return
        if self._p_maybe or (self._p == [] and (self._p_ends is not None or self._p_unsure)):
            closed = self._p_closed(data, at)
            if not closed and (closed is None or self._p_maybe):
                # Whether it is open here cannot be told, or it is and was not followed.
                self._place_held()
                return
            if closed:
                self._p = None
        if links.unlisted is not None:
            self._place_held()
        elif links.count or self._p == []:
            self._waiting = True
            if links.count:
                self._linked = True
                links.hold()
        else:
            self._found(data, at, before)

    def _clear(self, data: bytes, at: int, *, before_tag: bool = False) -> None:
        """A link or paragraph it waited for ends before ``data[at]``: its place, when
        nothing else it waits for is open (and the place is shown). ``before_tag``: ``at`` is
        the start of the current start tag; where that tag left foreign content (a ``<div>``
        in ``<math>``), its start is still in that content, where a notice would be foreign
        too (an ``<aside>`` does not break out)."""
        if self._links.count or self._p == []:
            return
        if (
            self._links.unlisted is not None
            or self._in_unfollowed_p()
            or (before_tag and self.host.tokenizer.left)
        ):
            # (It may stand in a link the parser no longer lists, in a paragraph that is
            # not followed, or in foreign content.)
            self._place_held()
        elif self._linked and self._hidden_at(data, at):
            self._place_held()  # (an <a> closed in an element that hides: the body start)
        else:
            self._found(data, at)

    def _in_unfollowed_p(self) -> bool:
        """Whether a place here may stand in a paragraph that is not followed (see
        :attr:`_p_inner`)."""
        return self._p_inner is not None and bool(self._p)

    def _follow(self, data: bytes, start: int, end: int, name: bytes, is_end: bool) -> None:
        """Follow the links and paragraphs open in the HTML body (tags of the watches
        above): a place waiting for their end is found where they close."""
        if name == b"table" and self._p == [] and self._p_ends is not None and not is_end:
            # Taken as open past end tags that may have closed it, the paragraph would have
            # the links follow this table's parts (a step per cell): no longer followed, it
            # may be open still (told if a place is found before the next paragraph).
            self._p = None
            self._p_maybe = True
        if name in _LINK_TAGS:
            links = self._links
            if links.behind is not None and name != b"a":
                if not links.count and self._p is None:
                    return  # passed over: read again when a link or paragraph needs it
                if not self._catch_up(data, start, self.host.tokenizer.left):
                    return
            before = links.count
            if is_end or name not in (b"a", b"table"):
                links.tag(name, is_end)
            elif name == b"a":
                if data is not self._data:
                    self._count(data)
                at = self._data_at
                links.tag(name, is_end, None if at is None else at + end)
            else:
                last = links.last_link()
                if last is not None:  # a table in a link: does it stand right in it?
                    last.holds_table = self._text_only(data, start, last.at)
                links.tag(name, is_end)
            if links.broken or (self._waiting and links.lost):
                # Nested too deep to follow, or the link the place is in was closed by the
                # page's next <a> (one left open) or with the cell, caption or marquee it
                # was opened in: where that happens the page is not read here.
                self._place_held()
                return
            if (
                links.behind is None
                and links.open
                and not links.count
                and self._p is None
                and not links.unlisted  # (where it is left, they tell)
            ):
                at = self.host.page_at(data, end)
                if at is not None:
                    links.rest(at)
            if name == b"a":
                if self._waiting:
                    if not is_end:
                        self._linked = True
                    elif links.count < before:
                        self._clear(data, end)
                return
            p = self._p
            if p is not None:
                stack = links.open
                k = self._p_in
                if (
                    len(stack) < k
                    or (k and stack[k - 1] is not self._p_at)
                    or (
                        self._p_fostered
                        and not is_end
                        and name not in _MARKED
                        and b"table" not in p
                    )
                ):
                    # The cell, caption or marquee it is in closed, or a table part cleared
                    # the table it was foster-parented in: the paragraph with them.
                    self._p = None
                    if self._waiting:
                        self._clear(data, start, before_tag=True)
                    return
            if name not in _P_SCOPE:
                return  # a table part: it closes nothing the paragraph is in
        p = self._p
        if p is None:
            if name == b"p" and not is_end:
                self._open_p()
            return
        if name not in (_CLEAR_WATCH.ends if is_end else _CLEAR_WATCH.starts):
            return  # (a tag for the links only)
        if name in _P_SCOPE:
            if not is_end:
                if name == b"button" and p[-1:] == [b"button"]:
                    # It closes the <button> open in scope, and what is open in that.
                    self._p_close_to(p, len(p) - 1)
                if len(p) < 512:
                    p.append(name)
            elif name in p:
                self._p_close_to(p, len(p) - 1 - p[::-1].index(name))
            elif name == b"button" and not p:
                self._end_from_outside(data, start, name)
            return
        if p:
            # Out of button scope: its own end tag does not reach it, nor does another
            # through a table, an object..., but one may through a <button>. A <p> opens
            # one that is in button scope (see _p_inner).
            if name == b"p":
                if not is_end:
                    if self._p_inner is None:
                        self._p_inner = len(p)
                elif self._p_inner == len(p):
                    self._p_inner = None  # its end tag, nothing opened in it since
                return
            if self._p_inner == len(p) and not is_end and name in CLOSE_P_STARTS - {b"form"}:
                self._p_inner = None  # a start tag that closes it, nothing opened in it since
            if is_end and all(e == b"button" for e in p):
                if self._waiting:
                    self._place_held()  # (a </div> for a <div> in the button, or around?)
                else:
                    self._p_unsure = True
            return
        if is_end:
            if name != b"p":
                self._end_from_outside(data, start, name)
                return
            self._p = None  # its own end tag
            if self._waiting:
                self._clear(data, end)
            return
        if name == b"form":
            ignored = self._form_ignored(data, start)
            if ignored:
                return  # the parser drops it: the paragraph stays open
            if ignored is None:  # (it may have closed the paragraph, or not)
                if self._waiting:
                    self._place_held()
                else:
                    self._p = None
                    self._p_maybe = True
                return
        # A start tag that closes the paragraph: the notice goes before it (it would close
        # the paragraph the same way).
        self._p = None
        if self._waiting:
            self._clear(data, start, before_tag=True)
        if name == b"p" and self.pending:
            self._open_p()

    def _p_close_to(self, p: list[bytes], k: int) -> None:
        """The scope boundaries open in the paragraph from ``p[k]`` on close (a paragraph
        opened in one of them with them)."""
        del p[k:]
        if self._p_inner is not None and k < self._p_inner:
            self._p_inner = None

    def _form_ignored(self, data: bytes, at: int) -> bool | None:
        """Whether the parser drops the ``<form>`` start tag at ``data[at]``: where its form
        element pointer is set, which the last ``<form>`` start tag of the body sets and the
        last ``</form>`` clears (read in the held bytes since the body start: a form tag in
        a comment or a script counts too). None where those bytes are not at hand."""
        region = self._held_since(data, at, self._body)
        if region is None:
            return None
        slashes = _FORM_TAGS.findall(region)  # b"/" for an end tag
        return bool(slashes) and not slashes[-1]

    def on_unread_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        if self._deferred is not None:
            at = self.host.page_at(data, start)
            if at is not None:  # (as many as the held bytes hold tags of max_token bytes)
                if self._deferred_unread is None:
                    self._deferred_unread = {}
                self._deferred_unread[at] = (name, is_end)
            return
        links = self._links
        if links.behind is not None and name in _LINK_TAGS and self.host.tokenizer.in_html_body:
            at = self.host.page_at(data, start)
            if at is not None:
                links.unread.append(at)  # (as many as the held bytes hold such tags)

    # The data the page's own bytes before it were last counted for, and their count: the
    # page's own bytes before ``data[at]`` are those before ``data``, and ``at``
    # (Host.page_at is asked once per piece of data, not at every link).
    _data: bytes | None = None
    _data_at: int | None = None

    def _count(self, data: bytes) -> None:
        """Count the page's own bytes before ``data`` (see :attr:`_data_at`)."""
        end = self.host.page_at(data, len(data))
        self._data, self._data_at = data, None if end is None else end - len(data)

    def _page_at(self, data: bytes, at: int) -> int | None:
        """:meth:`Host.page_at`, told from the count for ``data``."""
        if data is not self._data:
            self._count(data)
        return None if self._data_at is None else self._data_at + at

    def _held_since(self, data: bytes, at: int, since: int | None) -> bytes | None:
        """The page's bytes from ``since`` (counted by :meth:`Host.page_at`) to ``data[at]``,
        or None where they are not held."""
        end = self.host.page_at(data, at)
        if since is None or end is None:
            return None
        return self.host.page(data, at, since, end)

    def _text_only(self, data: bytes, at: int, since: int | None) -> bool:
        """Whether the page's bytes from ``since`` to ``data[at]`` hold no markup at all."""
        between = self._held_since(data, at, since)
        return between is not None and b"<" not in between

    def _catch_up(self, data: bytes, at: int, left: list[tuple[bytes, int]]) -> bool:
        """Bring the links up to ``data[at]`` (see :attr:`_Links.behind`), where the foreign
        content ``left`` is open; False when they cannot be (the snippet went at the body
        start)."""
        links = self._links
        region = self._held_since(data, at, links.behind)
        if region is None or not links.catch_up(region, self.host.tokenizer, left):
            self._place_held()
            return False
        if self._p is not None:
            self._stand_p()  # it opened since they were followed: where they stand now
        return True

    def _end_from_outside(self, data: bytes, start: int, name: bytes) -> None:
        """The end tag at ``data[start]``, of :data:`_CLOSE_P_FROM_OUTSIDE` or a
        ``</button>``, while the paragraph is open in button scope: it closes the paragraph
        where its element is open around it, in scope (a place waiting in the paragraph is
        then found before it); the parser ignores it otherwise. Told at once while a place
        waits in the paragraph; else kept until a place is found in it (:meth:`_place`)."""
        if not self._waiting:
            if self._p_ends is None:
                self._p_ends = set()
                self._p_ends_at = self._page_at(data, start)
            self._p_ends.add(name)
            return
        if self._p_ends_at is None:
            self._p_ends_at = self._page_at(data, start)
        self._p_ends = {name}
        closed = self._p_closed(data, start)
        if closed is None:
            self._place_held()
        elif closed:
            self._p = None
            self._clear(data, start)

    def _p_closed(self, data: bytes, at: int) -> bool | None:
        """Whether one of the end tags kept (:attr:`_p_ends`, cleared) closed the paragraph,
        by what is open around it (read up to the first of them, from the held bytes, before
        ``data[at]``); None when that cannot be told."""
        ends, self._p_ends = self._p_ends or set(), None
        if self._p_unsure:
            return None
        around = self._p_around
        if around is None:
            # Read on from where the last paragraph's were read (each byte once).
            reader = self._p_reader
            start = self._body if reader is None else self._p_read
            until = self._p_ends_at
            region = None
            if start is not None and until is not None and until >= start:
                region = self.host.page(data, at, start, until)
            if region is None or until is None:
                return None
            if reader is None:
                reader = self._p_reader = _AncestorReader()
            reader.read(region)
            self._p_read = until
            if reader.lost or reader.uncertain:
                return None
            # (Followed in a media element or shadow host, the paragraph is on the stack.)
            stack = reader.stack
            around = self._p_around = stack[:-1] if stack[-1:] == [b"p"] else list(stack)
        return any(
            _in_scope(around, _HEADINGS, _SCOPE)
            if name in _HEADINGS
            else _in_scope(around, {name}, _LIST_SCOPE if name == b"li" else _SCOPE)
            for name in ends
        )

    def _open_p(self) -> None:
        """A paragraph opens."""
        self._p = []
        self._p_ends = self._p_ends_at = self._p_around = self._p_inner = None
        self._p_unsure = self._p_maybe = False
        if self._links.behind is None:
            self._stand_p()

    def _stand_p(self) -> None:
        """Where the paragraph stands among what the links follow."""
        stack = self._links.open
        self._p_in = len(stack)
        self._p_at = stack[-1] if stack else None
        self._p_fostered = _table_mode(stack) in ("table", "tbody", "row")

    def _found(self, data: bytes, at: int, before: bytes = b"") -> None:
        """Its place is just before ``data[at]`` (after ``before``, when it gets there)."""
        self.host.write_at(self, data, at, before + self.snippet)
        if self.pending:
            self.offset = None
            self.pending = False
            self.host.done(self)

    def overflow(self) -> None:
        self._place_held()

    def finish(self, safe: bool) -> bytes:
        self._place_held()
        return b""


@register
class AfterHeading(_AtBodyStartUnlessFound):
    name = "after_heading"

    def __init__(self, host: Host, snippet: bytes) -> None:
        super().__init__(host, snippet)
        self._open: list[bytes] | None = None  # the open <h1> and the elements inside it
        # What is open around the heading (read up to the end of its start tag).
        self._around: list[bytes] | None = None
        self._unknown = False  # what is open around the heading cannot be told
        # A formatting element was closed in the heading otherwise than by its own end tag
        # (<h1><p><b>x</p>): the parser keeps it listed, and reopens it at the next text.
        self._reopens = False

    def watch(self) -> Watch:
        if self._deferred is not None:
            return _H1
        if self._waiting:
            return self._clear_watch()
        if self._open is None:
            return self._with_links(_H1)
        return _EVERYTHING

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.host.tokenizer
        if not self._waiting:
            self._heading_tag(data, start, end, name, is_end, tag)
        if self.pending and tok.in_html_body and (self._waiting or name in _LINK_TAGS):
            # The links open (a place found where one is waits for its end: the tag that
            # closed the heading too).
            self._follow(data, start, end, name, is_end)
            if self._open is None and not self._waiting:
                self._followed_one(data, end, name)

    def _heading_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        """A tag before the heading's place is found: the heading's start, or in it."""
        tok = self.host.tokenizer
        stack = self._open
        if stack is None:
            if name == b"h1" and not is_end and tok.in_html_body:
                # (Where it starts, counted before the hiding test holds the bytes past it.)
                until = None if self._deferred is None else self.host.page_at(data, start)
                if not self._shown(data, end, tag):
                    return
                if self._deferred is not None and not self._catch_up_deferred(data, end, until):
                    return
                self._open = [b"h1"]
            return
        if tok.foreign or tok.template or tok.select:
            # Inside the heading, but not HTML content of it (a </h1> there is not), unless
            # it names no SVG or MathML element open: read by HTML rules, it may close the
            # heading, and the tokenizer does not follow it there.
            if is_end and name in _MAY_CLOSE and tok.leaves_foreign(name):
                self._unfollowed()
            return
        if is_end:
            self._end_tag(data, start, end, name, stack)
            return
        if name in CLOSES_P or name in _LIST_ITEMS:
            # It closes a <p> open in the heading (in button scope) first.
            for k in range(len(stack) - 1, 0, -1):
                if stack[k] == b"p":
                    self._pop(stack, k)
                    break
                if stack[k] in _SCOPE or stack[k] == b"button":
                    break
        if name in _HEADINGS:
            if len(stack) == 1:
                if self._reopens or self._listed_before(data, start):
                    # The heading's text may have reopened a formatting element in it
                    # (<p><b><h1>T<h1>): the current node is that one, not the heading,
                    # and this heading nests in the first. Where that ends is not followed.
                    self._unfollowed()
                    return
                # A heading start tag closes the current heading: close it first ourselves
                # (the same tree), or the notice would go inside it.
                self._place(data, start, b"</h1>")
            else:
                if stack[-1] in _HEADINGS:
                    stack.pop()  # the current heading closes, and this one opens
                stack.append(name)
        elif b"table" not in stack and (name in _CLOSES_CELL or name == b"table"):
            # Not content of the heading: ignored in the body, but in a table (the heading
            # foster-parented) or a cell it closes the heading, and any table part does.
            mode = self._mode(data, start)
            if mode is None:
                self._unfollowed()
            elif name in _TABLE_CLOSERS.get(mode, ()):
                self._closed_from_outside(data, start, stack)
            elif name == b"table":
                stack.append(name)  # a table in the heading
        elif name == b"button":
            # A <button> start tag closes an open button in scope, the heading with it when
            # that one is open around the heading.
            for k in range(len(stack) - 1, 0, -1):
                if stack[k] == b"button":
                    del stack[k:]
                    break
                if stack[k] in _SCOPE:
                    break
            else:
                around = self._ancestors(data, start)
                if around is None:
                    self._unfollowed()
                    return
                if _in_scope(around, {b"button"}, _SCOPE):
                    self._closed_from_outside(data, start, stack)
                    return
            stack.append(name)
        elif name not in VOID and name not in _CONTEXTS:
            if len(stack) >= 512:  # nested too deep to follow: give up, at the body start
                self.overflow()
                return
            stack.append(name)

    def _end_tag(self, data: bytes, start: int, end: int, name: bytes, stack: list[bytes]) -> None:
        """An end tag inside the heading: close what it closes, as the tree builder does."""
        if name in _HEADINGS:
            # Closes the innermost open heading, unless it is out of scope.
            for k in range(len(stack) - 1, -1, -1):
                if stack[k] in _HEADINGS:
                    break
                if stack[k] in _SCOPE:
                    return  # ignored: <h1><object></h1> leaves the heading open
            if k == 0:
                self._place(data, end)
            else:
                self._pop(stack, k)
            return
        if name in _TABLE_PARTS:
            stops = _TABLE_SCOPE  # a cell's end tags reach through what is open in it
        elif name == b"li":
            stops = _LIST_SCOPE
        elif name in _CLOSES_ENCLOSING or name in _FORMATTING:
            stops = _SCOPE
        else:
            stops = _ANY_SPECIAL  # any other end tag stops at a special element
        for k in range(len(stack) - 1, 0, -1):
            if stack[k] == name:
                if name in _FORMATTING and any(e in _ANY_SPECIAL for e in stack[k + 1 :]):
                    del stack[k]  # the block after it stays open
                else:
                    self._pop(stack, k)
                return
            if stack[k] in stops:
                return  # out of scope: ignored
        if name in _CLOSES_ENCLOSING or name in _TABLE_PARTS:
            # Nothing of that name open in the heading: it closes one open around it, the
            # heading with it (<div><h1>Title</div>), if one is in scope.
            around = self._ancestors(data, start)
            if around is None:
                self._unfollowed()
            elif _in_scope(around, {name}, stops):
                self._closed_from_outside(data, start, stack)

    def _pop(self, stack: list[bytes], k: int) -> None:
        """Close ``stack[k]`` and what is open in it: a formatting element among those stays
        listed, to be reopened by the next text (see :attr:`_reopens`)."""
        if any(e in _FORMATTING for e in stack[k + 1 :]):
            self._reopens = True
        del stack[k:]

    def _listed_before(self, data: bytes, at: int) -> bool:
        """Whether a formatting element may be listed, not open, where the heading starts
        (read from the held bytes before it, the tag at ``data[at]`` asking): its text
        would reopen it in the heading. True when that cannot be told."""
        if self.offset is None:
            return True
        region = self.host.held(data, at, self.offset, self.offset + self._end)
        return region is None or _FormattingReader().pending(region)

    def _closed_from_outside(self, data: bytes, at: int, stack: list[bytes]) -> None:
        """The tag at ``data[at]`` closes the heading (and what is open in it) from outside:
        close them first ourselves with ``</h1>`` (the same tree: one for each heading open
        in it), the notice right after the heading. Where an element that bounds the scope
        is open in it (``<object>``), ``</h1>`` would not reach the heading: the body start."""
        if any(e in _SCOPE for e in stack):
            self._unfollowed()
            return
        closers = b"</h1>" * sum(1 for e in stack if e in _HEADINGS)
        self._place(data, at, closers)

    def _unfollowed(self) -> None:
        """Where the heading closes cannot be told: the notice goes at the body start (never
        inside the heading, nor after content it does not belong with)."""
        self._unknown = True
        self._place_held()

    def _mode(self, data: bytes, at: int) -> str | None:
        """The table insertion mode the heading stands in ("body" outside tables), or None
        when what is open around it cannot be told."""
        around = self._ancestors(data, at)
        return None if around is None else _table_mode(around)

    def _ancestors(self, data: bytes, at: int) -> list[bytes] | None:
        """What is open around the heading (of :data:`_ANCESTRY`, outermost first), read
        from the held bytes before it once a tag asks (the tag at ``data[at]``); None when
        that cannot be told."""
        if self._around is None and not self._unknown:
            region = None
            if self.offset is not None:
                region = self.host.held(data, at, self.offset, self.offset + self._end)
            if region is None:
                self._unknown = True
            else:
                reader = _AncestorReader()
                reader.read(region)
                self._keep(reader)
        return None if self._unknown else self._around

    def _keep(self, reader: _AncestorReader) -> None:
        """Keep what ``reader``, which has read up to the end of the heading's start tag,
        found open around the heading."""
        stack = reader.stack
        self._unknown = reader.lost or not stack or stack[-1] != b"h1"
        self._around = None if self._unknown else stack[:-1]

    def _shown(self, data: bytes, end: int, tag: bytes | None) -> bool:
        """Whether the ``<h1>`` whose start tag ends before ``data[end]`` is shown, as far as
        the markup tells: neither it nor an element open around it hides its content (see
        :func:`_hides`). A heading that is not, or may not be, is not the page's headline,
        and a notice after it would be hidden with it: the next one is looked for."""
        if tag is None or (_may_hide(tag) and _hides(b"h1", tag)):
            return False
        if self._hidden_at(data, end):
            return False
        if self._reader is not None:  # else read when a tag could close it from outside
            self._keep(self._reader)
        return True


def _in_scope(
    stack: list[bytes], names: frozenset[bytes] | set[bytes], stops: frozenset[bytes]
) -> bool:
    """Whether an element of ``names`` is open in ``stack`` (outermost first) within the
    scope that ``stops`` bound."""
    for element in reversed(stack):
        if element in names:
            return True
        if element in stops:
            return False
    return False


def _close_p(stack: list[bytes]) -> None:
    """Close a ``<p>`` open in button scope on ``stack`` (the tree builder's "close a p
    element"; only those inside a media element are followed)."""
    if _in_scope(stack, {b"p"}, _BUTTON_SCOPE):
        _pop_to(stack, {b"p"})


def _pop_to(stack: list[bytes], names: frozenset[bytes] | set[bytes]) -> None:
    """Pop ``stack`` until its innermost element of ``names`` is popped (all, if none)."""
    for k in range(len(stack) - 1, -1, -1):
        if stack[k] in names:
            del stack[k:]
            return
    del stack[:]


def _table_mode(stack: list[bytes]) -> str:
    """The table insertion mode where ``stack`` is open (outermost first): that of its
    innermost table part, "body" outside tables."""
    for element in reversed(stack):
        mode = _MODE_OF.get(element)
        if mode is not None:
            return mode
    return "body"


def _table_start(
    stack: list[bytes], name: bytes, marker: Callable[[bool], None] | None = None
) -> None:
    """A table part's (or a column's) start tag, by the table insertion modes: what it
    closes and opens on ``stack`` (the table parts open, outermost first, among other
    elements). ``marker`` hears of each cell or caption it opens (True: the parser inserts a
    marker in its list of active formatting elements) and closes (False: the parser clears
    the list up to the last marker)."""
    while True:
        mode = _table_mode(stack)
        if mode == "body" or (mode in ("cell", "caption") and name == b"table"):
            if name == b"table":
                stack.append(name)
            return  # other table parts are ignored in the body
        if name == b"table":
            _pop_to(stack, {b"table"})  # a table in a table ends it; then read again
            continue
        if mode in ("cell", "caption"):
            _pop_to(stack, _CELLS)  # closes the cell; then read again
            if marker is not None:
                marker(False)
            continue
        if mode == "row":
            if name in (b"td", b"th"):
                _clear_to(stack, {b"tr"})
                stack.append(name)
                if marker is not None:
                    marker(True)
                return
            _pop_to(stack, {b"tr"})  # closes the row; then read again
            continue
        if mode == "tbody":
            if name in (b"tr", b"td", b"th"):
                _clear_to(stack, _TABLE_BODIES)
                _open_row(stack, name, marker)
                return
            _pop_to(stack, _TABLE_BODIES)  # closes the body; then read again
            continue
        # in a table
        _clear_to(stack, {b"table"})
        if name in (b"col", b"colgroup"):
            pass  # a column group, closed by the next other tag
        elif name == b"caption" or name in _TABLE_BODIES:
            stack.append(name)
            if name == b"caption" and marker is not None:
                marker(True)
        else:  # a row or a cell: an implied table body (and row)
            stack.append(b"tbody")
            _open_row(stack, name, marker)
        return


def _open_row(stack: list[bytes], name: bytes, marker: Callable[[bool], None] | None) -> None:
    """A row, or a cell in the row it implies (a cell inserts a marker)."""
    stack.append(b"tr")
    if name != b"tr":
        stack.append(name)
        if marker is not None:
            marker(True)


def _clear_to(stack: list[bytes], names: frozenset[bytes] | set[bytes]) -> None:
    """Pop ``stack`` until its current element is one of ``names`` (the tree builder's
    "clear the stack back to a table context" and its kin)."""
    while stack and stack[-1] not in names:
        stack.pop()


class _AncestorReader(QuietSink):
    """Follows the elements of :data:`_ANCESTRY` that the tree builder keeps open, through
    the body's bytes before the heading (the body's and the table's insertion modes, not
    those of templates, selects and foreign content, whose tags it passes over: they are
    closed by the time the heading opens)."""

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        """What is open, outermost first (:class:`_Hidden` entries hide their content)."""
        self.lost = False
        self.hid = False
        """An element that hides its content was met (open or not now)."""
        self.uncertain = False
        """An element that hides its content and is not followed here was met: whether it
        is still open cannot be told."""
        self.hosts: set[bytes] = set()
        """The names of the shadow hosts met (their tags are followed)."""
        self.forms = False
        """A ``<form>`` start tag was met (the element is not followed: it may be open)."""
        self.tokenizer = Tokenizer(self, _ANCESTRY_WATCH)
        self.tokenizer.probe = _MAY_HIDE

    def done(self) -> bool:
        """Whatever follows may be hidden: an element that hides may be open, and what is
        open can no longer be told. Reading stops."""
        return self.uncertain or (self.hid and self.lost)

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.tokenizer
        if name == b"template" and not is_end and not (tok.foreign or tok.template or tok.select):
            self._shadow_root(data, start, tag)
        self._follow(data, end, name, is_end, tag)
        if self.done():
            self.tokenizer.active = False

    def _follow(self, data: bytes, end: int, name: bytes, is_end: bool, tag: bytes | None) -> None:
        tok = self.tokenizer
        if tok.foreign or tok.template or tok.select:
            if is_end and name in _ANCESTRY and tok.leaves_foreign(name):
                self.lost = True  # read by HTML rules outside, which are not followed there
            elif not is_end and name not in _HOLD_NOTHING:
                # Where this context is not followed (lost), it may be the page's own.
                self.hid = self.hid or isinstance(_entry(name, tag), _Hidden)
            return
        watched = _ANCESTRY_WATCH.ends if is_end else _ANCESTRY_WATCH.starts
        if name in self.hosts:
            if not self.lost:
                self._generic_tag(name, is_end)
            return
        if name in (b"p", b"form") and not is_end and not any(map(_generic, self.stack)):
            watched = _NOTHING.starts  # followed only inside a media element or shadow host
            self.forms = self.forms or name == b"form"
        elif name == b"form" and not is_end:
            # A generic end tag does not reach past it, and its end tag is not followed.
            self.lost = True
            watched = _NOTHING.starts
        if name not in watched:  # reported for the probe, or too long to read
            if (
                not is_end
                and name not in _HOLD_NOTHING
                and (tag is None or name in _NOT_RENDERED or _hides(name, tag))
                and not (tag is not None and _text_then_end(data, end, name))
            ):
                self.hid = self.uncertain = True
            return
        if not is_end:
            name = _entry(name, tag)
            self.hid = self.hid or isinstance(name, _Hidden)
        if self.lost:
            return
        if is_end and name in (b"col", b"colgroup"):
            return  # a column group closes at the next other tag: nothing stays open
        stack = self.stack
        if name == b"p" or name in _MEDIA:
            self._generic_tag(name, is_end)
            return
        if not is_end and name in CLOSE_P_STARTS and b"p" in stack:
            _close_p(stack)
        if is_end:
            if name in _HEADINGS:
                if _in_scope(stack, _HEADINGS, _SCOPE):
                    _pop_to(stack, _HEADINGS)
                return
            stops = (
                _TABLE_SCOPE if name in _TABLE_PARTS else _LIST_SCOPE if name == b"li" else _SCOPE
            )
            if _in_scope(stack, {name}, stops):
                _pop_to(stack, {name})
            return
        if name in _UNFOLLOWED or len(stack) >= 512:
            self.lost = True
            return
        if name in _TABLE_PARTS or name in (b"col", b"colgroup"):
            _table_start(stack, name)
        elif name in _HEADINGS:
            if any(e in _HEADINGS for e in stack):
                self.lost = True  # whether it closes the open one depends on what is current
            else:
                stack.append(name)
        elif name == b"summary" and stack and isinstance(stack[-1], _Folded):
            # Only the first summary child of a details is shown. One with a start tag
            # before it in the details may stand in an element not followed here (a
            # <span>): it is taken for folded content, as any summary after it.
            if isinstance(stack[-1], _Summarized) or not self._first_in_details(data, end, tag):
                name = _Hidden(name)
            else:
                stack[-1] = _Summarized(stack[-1])
            stack.append(name)
        elif name == b"button":
            if _in_scope(stack, {b"button"}, _SCOPE):
                _pop_to(stack, {b"button"})  # it closes the one open in scope
            stack.append(name)
        elif name in _LIST_ITEMS:
            family = {b"dd", b"dt"} if name in (b"dd", b"dt") else {name}
            if self.forms and family & set(stack):
                self.lost = True  # whether a <form> (not followed) stands in between
                return
            # It closes the innermost open one unless a special element other than an
            # <address> or a <div> (a paragraph is not followed here) is open inside it.
            for k in range(len(stack) - 1, -1, -1):
                if stack[k] in family:
                    del stack[k:]
                    break
                if not _generic(stack[k]) and stack[k] not in (b"address", b"div"):
                    break
            stack.append(name)
        else:
            if isinstance(name, _Folded):
                self._folded_at = (name, data, end)
            stack.append(name)

    # The last <details> not open that was followed (its entry), the data its start tag was
    # read in and where it ends there: what stands between it and a <summary>.
    _folded_at: tuple[bytes, bytes, int] | None = None

    def _first_in_details(self, data: bytes, end: int, tag: bytes | None) -> bool:
        """Whether the ``<summary>`` start tag ending at ``data[end]`` is the first element
        opened in the ``<details>`` open around it (text and comments may stand before it)."""
        folded = self._folded_at
        if tag is None or folded is None or folded[0] is not self.stack[-1]:
            return False
        _, read, after = folded
        return read is data and _START_TAG_IN.search(data, after, end - len(tag)) is None

    def _generic_tag(self, name: bytes, is_end: bool) -> None:
        """A media element's tags, a shadow host's (and those of its name inside it), and a
        paragraph's inside one of them (which their generic end tag does not reach past)."""
        stack = self.stack
        if name == b"p":
            if is_end:
                _close_p(stack)
            elif any(map(_generic, stack)):
                if len(stack) >= 512:
                    self.lost = True
                    return
                _close_p(stack)
                stack.append(name)
            return
        if not is_end:
            if len(stack) >= 512:
                self.lost = True
                return
            stack.append(_Hidden(name) if name in _MEDIA else _Plain(name))
            return
        # The generic end tag: it closes the innermost open element of its name, unless a
        # special element (any other followed here) is open inside that one.
        for k in range(len(stack) - 1, -1, -1):
            if stack[k] == name:
                del stack[k:]
                return
            if not _generic(stack[k]):
                return

    def _shadow_root(self, data: bytes, start: int, tag: bytes | None) -> None:
        """A ``<template>`` start tag in the body: one with ``shadowrootmode`` attaches a
        shadow root to the element open around it (the current node), whose children
        without a ``slot`` (a notice) are not rendered. That element hides, as far as
        this reader can tell: the one whose start tag comes just before the template, else
        the place is lost."""
        if tag is None:
            self.hid = self.uncertain = True
            return
        mode = attributes(tag).get(b"shadowrootmode")
        if mode is None or mode.lower() not in ("open", "closed"):
            return  # an ordinary template
        self.hid = True
        if self.lost:
            return
        host = _tag_before(data, start)
        stack = self.stack
        if host is None or host in _HOLD_NOTHING:
            self.uncertain = True  # what the current node is cannot be told
        elif host in _ANCESTRY or host in _MEDIA or host in self.hosts or host == b"p":
            if stack and stack[-1] == host:
                stack[-1] = _Host(host) if isinstance(stack[-1], _Plain) else _Hidden(host)
            else:
                self.uncertain = True  # not followed here (a <p> outside a media element)
        elif host in _ANY_SPECIAL or len(self.hosts) >= 64 or len(stack) >= 512:
            self.uncertain = True  # its end tag is not followed
        else:
            stack.append(_Host(host))
            if host not in self.hosts:
                self.hosts.add(host)
                watch = _ANCESTRY_WATCH
                self.tokenizer.watch = Watch.of(watch.starts | self.hosts, watch.ends | self.hosts)

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        if name is None or name in _ANCESTRY or name in _UNFOLLOWED:
            self.lost = True
        if not is_end and name not in _HOLD_NOTHING:
            self.hid = self.uncertain = True  # its attributes are not read: it may hide
        if self.done():
            self.tokenizer.active = False

    def on_doubt(self, data: bytes, at: int, reason: str) -> None:
        self.lost = True
        if self.done():
            self.tokenizer.active = False

    def read(self, region: bytes) -> None:
        """Read on through ``region``: the body's bytes from where the last read stopped up
        to the end of a heading's start tag (so, ending in markup, in the HTML body)."""
        tok = self.tokenizer
        if self.done():
            return
        consumed = tok.scan(region, 0, False)
        if self.done():
            return  # stopped
        if (
            consumed != len(region)
            or tok.state != 0
            or tok.foreign
            or tok.template
            or tok.select
            or tok.lost
        ):
            # Not where the page's own reading is: nothing more can be told.
            self.lost = self.hid = self.uncertain = True


@register
class Marker(_AtBodyStartUnlessFound):
    name = "marker"

    def watch(self) -> Watch:
        if self._deferred is not None:
            return _MARKER_DEFERRED
        if self._waiting:
            return self._clear_watch()
        # With no paragraph open, only the start of one (the links, and the marker) matters.
        return self._with_links(_MARKER_WATCH if self._p is not None else _MARKER_OUTSIDE_P)

    def on_comment(self, data: bytes, start: int, end: int) -> None:
        if self._waiting:
            return
        stop = end - 4 if data.endswith(b"--!>", start, end) else end - 3
        if data[start + 4 : stop].strip(_WS) != b"compliance:notices":
            return
        if self.host.tokenizer.in_html_body:
            # (Where it starts, counted before the hiding test holds the bytes past it.)
            until = None if self._deferred is None else self.host.page_at(data, start)
            if self._hidden_at(data, end):
                return  # a notice here would be hidden: the next marker, or the body start
            if self._deferred is not None and not self._catch_up_deferred(data, end, until):
                return
            # In an open <p> (<p><!-- marker --></p> became an aside between two
            # paragraphs) or <a>, where they end.
            self._place(data, end)

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        if self.host.tokenizer.in_html_body:
            self._follow(data, start, end, name, is_end)
            if not self._waiting:
                self._followed_one(data, end, name)


@register
class BodyEnd(Strategy):
    name = "body_end"

    def __init__(self, host: Host, snippet: bytes) -> None:
        super().__init__(host, snippet)
        self._enclosing: list[bytes] = []  # those of _ENCLOSING open, outermost first
        # The special elements opened in one of _GENERIC_END (the innermost of those open
        # then), with how many of _ENCLOSING were open: its end tag would not reach past
        # them. One is dropped at its own end tag (at the last of its name).
        self._special: list[tuple[int, bytes]] = []

    def watch(self) -> Watch:
        if self.offset is not None:
            return _EVERYTHING
        enclosing = self._enclosing
        return _BODY_END_IN_FALLBACK if enclosing and enclosing[-1] in _GENERIC_END else _BODY_END

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.host.tokenizer
        if name in _SPECIAL_IN_FALLBACK and tok.in_html_body:
            self._special_tag(name, is_end)
        if name in _ENCLOSING and tok.in_html_body:
            enclosing = self._enclosing
            if not is_end:
                # "<video/>" leaves the element open in HTML, but closes it in XHTML, where
                # an end tag after the document's would make it unreadable: taken as closed.
                if len(enclosing) < 512 and not (tag is not None and tag.endswith(b"/>")):
                    enclosing.append(name)
            else:
                stops = _NOT_PAST[name]
                for k in range(len(enclosing) - 1, -1, -1):
                    if enclosing[k] == name:
                        del enclosing[k:]
                        if self._special:
                            self._special = [e for e in self._special if e[0] <= k]
                        break
                    if enclosing[k] in stops:
                        break  # out of scope: ignored
        if is_end and name == b"body":
            if tag is not None and tok.in_html_body:
                self._drop()
                if not self._enclosing:
                    self.offset = self.host.hold_at(data, start)
                return
        elif not is_end and name == b"plaintext" and tok.in_html_body:
            # Everything after it is text: this is the last point where markup can go.
            self._drop()
            if any(element != b"table" for element in self._enclosing):
                # In an element that hides the notice, which an end tag here would close
                # early (moving the text out of it): not placed (the end is not safe). (In a
                # table, both are moved before it, the notice shown.)
                return
            self.host.write_at(self, data, start, self.snippet)
            self.pending = False
            self.host.done(self)
            return
        if not (is_end and name == b"html" and tag is not None):
            self._content()

    def on_text(self, data: bytes, start: int, end: int) -> None:
        if data[start:end].strip(_WS):
            self._content()

    def _content(self) -> None:
        """Content after a held ``</body>``: it was not the last one."""
        if self.offset is not None:
            self._drop()

    def _drop(self) -> None:
        if self.offset is not None:
            self.offset = None
            self.host.release(self)

    def overflow(self) -> None:
        self.offset = None  # the end of the stream it is

    def finish(self, safe: bool) -> bytes:
        if self.offset is not None:
            self._place_held()
            return b""
        self.pending = False
        if not safe:
            return b""
        tok = self.host.tokenizer
        # Close what would turn the notice into foreign content, drop it (select), move it
        # before a table (foster parenting) or hide it. At the end of the document this
        # changes nothing else: the parser closes every element there anyway, and an end tag
        # with nothing to close is ignored.
        if self._special:
            # An end tag of those would stop at a special element open in it: the notice
            # would be its fallback content, hidden. Not placed (the fail mode, logged).
            return b""
        closers = b"".join(b"</" + name + b">" for name, _kind in reversed(tok.foreign))
        if tok.select:
            closers += b"</select>"
        closers += b"".join(b"</" + name + b">" for name in reversed(self._enclosing))
        return closers + self.snippet

    def _special_tag(self, name: bytes, is_end: bool) -> None:
        """A special element's tag (see :attr:`_special`)."""
        enclosing = self._enclosing
        special = self._special
        if not is_end:
            if enclosing and enclosing[-1] in _GENERIC_END and len(special) < 512:
                special.append((len(enclosing), name))
            return
        for k in range(len(special) - 1, -1, -1):
            if special[k][1] == name:
                del special[k]
                return

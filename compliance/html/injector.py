"""Streaming insertion of notice snippets into HTML bytes.

:class:`Injector` is a pure bytes-in/bytes-out object: feed it the response body chunk by chunk
and send on whatever it returns. It never buffers the whole body: output is held back only
while a placement still decides where its snippet goes, at most ``max_hold`` bytes. The output
is the same however the input is split into chunks.

It finds where the body starts as an HTML parser does (after ``<body>``, else before the first
text or start tag that does not belong in ``<head>``), learns the page's language, charset and
CSP nonce from the head on the way, then hands the tokens to the placements
(:mod:`compliance.html.placements`) that still look for their place.

Encoding: snippets are encoded in the page charset with ``errors="xmlcharrefreplace"``. The
charset is, in order: a UTF-8 byte order mark, the ``charset`` argument (the response header),
a ``<meta charset>`` or ``<meta http-equiv="content-type">`` in the head, when the HTML
Standard's prescan of the first 1024 bytes finds the same (Firefox reads the prescan's,
Chromium the head's: where they differ, a browser may read either); labels are resolved as
browsers do (:mod:`compliance.html.charset`). A page that declares none (or not the same to
both) is read in whatever encoding the browser guesses (Chromium guesses from the page's
bytes): its snippets are ASCII, every other character a numeric character reference, which
every ASCII-compatible guess reads alike. Documents that are not
ASCII-compatible (UTF-16 by byte order mark or by the ``charset`` argument, ISO-2022-JP, ...)
are passed through unchanged, and :attr:`Injector.skip_reason` says why; a UTF-8 byte order
mark overrides such a ``charset`` argument, as it does in browsers.

>>> inj = Injector(lambda page: {"body_end": "<aside>N</aside>"})
>>> inj.feed(b"<html><body><p>Hi</p></bo") + inj.feed(b"dy></html>\\n") + inj.finish()
b'<html><body><p>Hi</p><aside>N</aside></body></html>\\n'
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from compliance.html import charset as charsets
from compliance.html.placements import PLACEMENTS, Placement, Strategy, body_watch
from compliance.html.tokenizer import (
    EVERYTHING,
    LONGEST_TAG,
    SCRIPT_TEXT,
    WHOLE_COMMENT,
    WS,
    QuietSink,
    Tokenizer,
    Watch,
    attribute_list,
    attributes,
    literal_choice,
    plain_attributes,
    text_to_end,
)
from compliance.html.withhold import (
    ANIMATIONS,
    EMBED_ELEMENTS,
    END_AFTER,
    END_BEFORE,
    PRESENTATION_URLS,
    Ambiguous,
    Extent,
    Withhold,
    WithholdUncertain,
)

__all__ = ["Injector", "PageInfo"]


@dataclass(frozen=True)
class PageInfo:
    """What the injector learnt about the page before the first insertion point."""

    lang: str | None
    """Value of ``<html lang>`` (or ``xml:lang``), else ``None``."""
    charset: str
    """Python codec name the snippets are encoded with."""
    nonce: str | None
    """CSP nonce of the head's first ``<style>`` or stylesheet ``<link>`` that has one (what
    a ``<style>`` needs, when a policy gives scripts and styles different nonces), else of
    its first ``<script>`` or other ``<link>``, else ``None``."""


_ASCII_WS: Final = WS.decode()
HEAD_ELEMENTS: Final = frozenset(
    b"html head title base basefont bgsound link meta style script noscript noframes template"
    b"".split()
)
"""Start tags that go in the head before the body starts (any other opens the body, as does
text that is not whitespace; after ``</head>``, ``noscript`` too)."""
# Start tags that set the HTML parser's frameset-ok flag to "not ok" (input: unless hidden).
_FRAMESET_NOT_OK: Final = frozenset(
    b"pre listing li dd dt button applet marquee object table area br embed img keygen wbr hr"
    b" textarea xmp iframe select image".split()
)
_FRAMESET_WATCH: Final = body_watch(_FRAMESET_NOT_OK | {b"input", b"frameset"}, (b"br",), text=True)
# What the body's watch is the union of the strategies' and the checks' with: none of them
# needs the tags of an SVG chart's or a MathML formula's leaves (withholding does, and says so).
_NO_WATCH: Final = body_watch()


def _any_case(word: bytes) -> bytes:
    """``word`` in any ASCII case, as classes rather than ``(?i:)``: a pattern that starts
    with a literal byte is searched at C speed, a case-insensitive one twenty times slower."""
    return b"".join(
        b"[%c%c]" % (c, c - 32) if 0x61 <= c <= 0x7A else re.escape(bytes((c,))) for c in word
    )


# Where the mark may be ("-compliance-withhold"); attributes are read exactly after.
_MARK_PROBE = re.compile(b"-" + _any_case(b"compliance-withhold"))
# An embed URL can only name a host with "//" (or back slashes, or character references),
# or after a scheme's ":" ("https:host" is a host to a browser); a srcdoc holds a document.
_MAYBE_HOST = re.compile(rb"[/\\][\t\n\r]*[/\\]|[&:]")
_URL_ATTRIBUTE = re.compile(
    rb"(?i:src(?:set|doc)?|data|poster|href|content|background)[\t\n\f\r ]*="
)
# SVG attributes that may load: presentation attributes (CSS, a "(" in a url()) on any
# element, and the values of an animation (SVG elements: all reported in foreign content).
_SVG_URL_ATTRIBUTE = re.compile(
    rb"(?i:" + b"|".join(map(re.escape, PRESENTATION_URLS)) + rb"|to|from|by|values)[\t\n\f\r ]*="
)
_NEVER_WITHHELD = frozenset(b"html head body frameset".split())
_FIRST_TAG = re.compile(rb"[\t\n\f\r ]*<([A-Za-z][^\t\n\f\r />]*)")
_SEPARATOR: Final = b"<!---->"  # what stands for a removed element that leaves no trace
# An embed may be loaded by CSS too: a style attribute (on any element, found by the probe)
# or a <style> element (watched, and read whole).
_STYLE_PROBE = re.compile(_any_case(b"style") + rb"[\t\n\f\r ]*=")
_STYLE_IN_LOWER = re.compile(rb"style[\t\n\f\r ]*=")  # (starts with a literal: fast)


class _StyleProbe:
    """The tokenizer's probe while embeds are withheld: where a ``style`` attribute (any
    case) may be, or a mark (with ``marks``). A case-insensitive pattern is searched twenty
    times slower than one that starts with a literal byte, so the data is searched in lower
    case (once per buffer).

    Each pattern's last search to the end of the buffer is kept, and answers the next
    searches from later positions while its match still lies ahead. Otherwise a page with
    many of one (marks) and none of the other would be searched to its end again at each:
    time in the square of the page."""

    def __init__(self, marks: bool) -> None:
        self._marks = marks
        self._data = b""
        self._lower = b""
        self._style: _Searched = _NOT_SEARCHED
        self._mark: _Searched = _NOT_SEARCHED

    def search(
        self, data: bytes, pos: int = 0, endpos: int = sys.maxsize, /
    ) -> re.Match[bytes] | None:
        if data is not self._data or type(data) is not bytes:
            self._data, self._lower = data, data.lower()
            self._style = self._mark = _NOT_SEARCHED
        self._style, found = _search_from(_STYLE_IN_LOWER, self._lower, pos, endpos, self._style)
        if not self._marks:
            return found
        self._mark, mark = _search_from(_MARK_PROBE, data, pos, endpos, self._mark)
        if mark is not None and (found is None or mark.start() < found.start()):
            return mark
        return found


_Searched = tuple[int, "re.Match[bytes] | None"]
"""A search to the end of a buffer, kept: where it started, and its first match (or None)."""
_NOT_SEARCHED: Final[_Searched] = (sys.maxsize, None)


def _search_from(
    pattern: re.Pattern[bytes], data: bytes, pos: int, endpos: int, last: _Searched
) -> tuple[_Searched, re.Match[bytes] | None]:
    """``pattern.search(data, pos, endpos)``, answered from ``last`` (a search of the same
    data to its end) when that tells: it started no later and its match, if any, is not
    behind ``pos`` (no match can start before it). Searches to the end are kept."""
    start, match = last
    if start <= pos and (match is None or match.start() >= pos):
        if match is None or match.start() >= endpos:
            return last, None
        if match.end() <= endpos:
            return last, match
    if endpos < len(data):
        return last, pattern.search(data, pos, endpos)  # within one tag: not kept
    found = pattern.search(data, pos)
    return (pos, found), found


_WHOLE_NOSCRIPT: Final = frozenset((b"noscript",))
_WHOLE_NOSCRIPT_STYLE: Final = frozenset((b"noscript", b"style"))
_STYLE_END = re.compile(rb"</(?i:style)[\t\n\f\r />]")
# In SVG or MathML a <style> holds markup, not raw text: its CSS is its text and CDATA
# sections, not its comments (which may hold "</style>"); other markup in it is not read.
_FOREIGN_STYLE_MARKUP = re.compile(
    rb"<(?:(" + WHOLE_COMMENT + rb")|!\[CDATA\[(.*?)\]\]>|[!?/A-Za-z])",
    re.S,
)
# (<svg> too: inside it every tag is reported, and it may have presentation attributes)
# In SVG and MathML, the closed trees of other elements whose tags hold no "(" (no url(...)
# in a presentation attribute) go unread; the probe stops them where a style or a mark is.
_WITHHOLD_EMBEDS: Final = Watch.of(
    EMBED_ELEMENTS | ANIMATIONS | {b"style", b"svg"},
    url_scripts=True,
    foreign_leaves=False,
    foreign_plain=True,
)
# A <noscript> is read as markup too (scripting off), and goes whole if that holds content to
# withhold.
_WITHHOLD_NOSCRIPT: Final = Watch.of((b"noscript",), foreign_leaves=False)
_NOSCRIPT_END = re.compile(rb"</(?i:noscript)[\t\n\f\r />]")
# Before the body: what cannot matter there (whitespace, comments, end tags but _READ_ENDS,
# and <head>, <meta>, <link>, <base>, <title>, <script>, <style> that declare no charset and
# carry no nonce) is skipped in one match; the rest (<html lang>, a charset, a nonce, the
# doctype, the first body content) is read.
# An attribute that may declare a charset or carry a nonce starts with "ch", "ht" or "no" (a
# few harmless ones do too: their tag is read exactly instead).
_SAFE_ATTRS = plain_attributes(rb"[cC][hH]|[hH][tT]|[nN][oO]") + rb"[\t\n\f\r ]*+/?>"
_DELIMITED = rb"(?=[\t\n\f\r />])"
# End tags read before the body (they start it, or change how the tokenizer reads on).
_READ_ENDS = b"|".join(_any_case(n) for n in b"body html br head template svg math select".split())
# The attribute names of <meta>, <link> and <base> common enough to be read literally first
# (see tokenizer._COMMON_NAMES): each exact (followed by "="), none declaring a charset or
# carrying a nonce.
_HEAD_COMMON_ATTRS = (
    b"name content property rel href type sizes as media title itemprop hreflang crossorigin"
    b" integrity referrerpolicy id class"
).split()
# A page whose header declares its encoding: no <meta> can change it, and a <meta> carries no
# nonce that counts, so each goes whatever its attributes (when plainly written).
_ANY_PLAIN_ATTRS = plain_attributes(rb"(?!)") + rb"[\t\n\f\r ]*+/?>"


def _head_skip(declared: bool) -> re.Pattern[bytes]:
    tags = [  # after "<"
        rb"(?:meta|link|base)(?: (?:" + literal_choice(_HEAD_COMMON_ATTRS) + rb')="[^"]*+")*+>',
        b"(?:"
        + b"|".join(_any_case(n) for n in (b"meta", b"link", b"base"))
        + b")"
        + _DELIMITED
        + _SAFE_ATTRS,
        rb"/(?!(?:" + _READ_ENDS + rb")[\t\n\f\r />])"
        rb"[A-Za-z][^\t\n\f\r />\"'=<]*+[\t\n\f\r ]*+>",
        WHOLE_COMMENT,
        _any_case(b"script") + _DELIMITED + _SAFE_ATTRS + SCRIPT_TEXT,
        _any_case(b"title") + rb">" + text_to_end(b"title"),
        _any_case(b"style") + _DELIMITED + _SAFE_ATTRS + text_to_end(b"style"),
        _any_case(b"head") + _DELIMITED + _SAFE_ATTRS,
    ]
    if declared:
        tags.append(_any_case(b"meta") + _DELIMITED + _ANY_PLAIN_ATTRS)
    return re.compile(rb"(?:[\t\n\f\r ]++|<(?:" + b"|".join(tags) + rb"))*+")


_HEAD_WATCH: Final = Watch(frozenset(), frozenset(), True, True, True, False, _head_skip(False))
_HEAD_WATCH_DECLARED: Final = Watch(
    frozenset(), frozenset(), True, True, True, False, _head_skip(True)
)
_UNIONS: dict[tuple[Watch, ...], Watch] = {}  # what several readers watch, shared
_TEXT_NOT_OK = re.compile(rb"[^\t\n\f\r \x00]")  # body text that sets frameset-ok to "not ok"
_NON_WS = re.compile(rb"[^\t\n\f\r ]")

# Phases of the document.
_PRE: Final = 0  # before the body starts
_BODY: Final = 1  # in the body, placements still looking
_PASS: Final = 2  # nothing left to do: bytes pass straight through


class Injector:
    """Insert rendered snippets into an HTML byte stream.

    ``render`` is called at most once, when the body starts, with what was learnt about the
    page; it returns HTML text per placement (a missing or empty entry means nothing goes
    there). Exceptions from ``render`` propagate out of :meth:`feed` or :meth:`finish`;
    anything else about the input never raises.

    ``charset`` is the response's declared charset, if any. ``max_hold`` bounds the bytes held
    back while deciding where a snippet goes.
    """

    _last_sent = b""  # the last byte returned (what a removal leaves joined to what follows)

    def __init__(
        self,
        render: Callable[[PageInfo], Mapping[Placement, str]],
        *,
        charset: str | None = None,
        max_hold: int = 256 * 1024,
        withhold: Withhold | None = None,
    ) -> None:
        self._render = render
        self._max_hold = max(0, max_hold)
        self._declared: str | None = None
        self.skip_reason: str | None = None
        """Why the page is not edited at all, once known: ``"unsupported encoding"`` (not
        ASCII-compatible), ``"frameset document"``."""
        # A declared encoding this cannot edit is the page's unless a byte order mark says
        # otherwise (it wins over the header in browsers): known with the first bytes.
        self._declared_unsupported = False
        if charset is not None:
            codec = charsets.lookup(charset)
            if codec == charsets.UNSUPPORTED:
                self._declared_unsupported = True
            else:
                self._declared = codec
        self.inserted = False
        """Whether any snippet was inserted."""
        self.inserted_placements: list[Placement] = []
        """The placements that got their snippet, in insertion order."""
        self.skipped_reason: str | None = None
        """Why nothing (or not everything) was inserted, once known."""
        self.fault: Exception | None = None
        """The exception of an internal error (a bug), if one happened: the rest of the
        page passed through unchanged and :attr:`skipped_reason` says ``internal error``."""

        self.tokenizer = Tokenizer(
            self,
            EVERYTHING
            if withhold is not None
            else _HEAD_WATCH_DECLARED
            if self._declared is not None
            else _HEAD_WATCH,
        )
        # Withholding: what goes, the element being removed, the context at its start.
        self._withhold = withhold
        self._extent: Extent | None = None
        self._context: tuple[list[tuple[bytes, int]], bool, int] | None = None
        self._placeholders: dict[str, bytes] = {}
        self._cut = False
        self.withheld: list[str] = []
        """Rule ids of the elements removed so far, in document order."""
        if withhold is not None:
            if withhold.embeds:
                self.tokenizer.probe = _StyleProbe(withhold.marks)
            elif withhold.marks:
                self.tokenizer.probe = _MARK_PROBE
            # A tag must be read whole to know whether it is marked (longer: uncertain).
            self.tokenizer.max_token = LONGEST_TAG
            # Where the tokenizer may read the page otherwise than a browser, the content
            # to withhold may be missed: stop there.
            self.tokenizer.doubts = True
            self.tokenizer.whole = _WHOLE_NOSCRIPT_STYLE if withhold.embeds else _WHOLE_NOSCRIPT
        self._final = False
        self._phase = _PASS if self.skip_reason else _PRE
        self._started = False
        self._finished = False
        self._tail = b""
        self._more = bytearray()  # input after an unfinished token, not read yet
        self._may_end = False  # a ">" is in it
        self._out: list[bytes] = []
        self._emit = 0
        self._frameset_ok = True
        # A </head> was read: a <noscript> now starts the body (the parser's "after head"
        # mode puts only the other head elements back in the head).
        self._after_head = False
        # What the head told us.
        self._bom_charset: str | None = None
        self._meta_charset: str | None = None
        # The first bytes of a page whose encoding neither a byte order mark nor the header
        # gives, for the prescan (at most charsets.PRESCAN_BYTES), and where the bytes of
        # the current scan that are not in it yet start.
        self._prefix: bytearray | None = None
        self._prefix_from = 0
        self._charset: str | None = None  # the snippets' codec, once the body starts
        self._lang: str | None = None
        self._nonce: str | None = None  # a style's
        self._other_nonce: str | None = None  # a script's (or another link's)
        self._rendering = False
        self._strategies: list[Strategy] = []
        self._pending: list[Strategy] = []
        self._held: bytearray | None = None
        # The snippets put in the held bytes: (offset, length), by offset.
        self._snippets: list[tuple[int, int]] = []

    @property
    def lang(self) -> str | None:
        """The language the page's ``<html>`` tag declares (``lang``, else ``xml:lang``;
        entities decoded, ASCII whitespace stripped), once a tag has declared one."""
        return self._lang

    @property
    def max_token(self) -> int:
        """Longest tag or comment kept whole; longer ones are streamed through unread."""
        return self.tokenizer.max_token

    @max_token.setter
    def max_token(self, value: int) -> None:
        self.tokenizer.max_token = value

    # --- public API ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk of the body; return the bytes that may be sent now.

        Raises :class:`WithholdUncertain` when an element to withhold cannot be told apart
        from what follows it (see :meth:`cut`).
        """
        if self._cut:
            return b""
        if self._finished:
            return bytes(chunk)
        if self._phase == _PASS and not self._tail and self._held is None:
            return bytes(chunk)
        tail = self._tail
        if not tail:
            return self._run(bytes(chunk), final=False)
        # An unfinished token (a long comment, a tag) is read again from its start with the
        # next input: at once when that input may end it (a ">" came) and is an eighth of the
        # token so far, else once it is as long as the token, so that a token sent in many
        # small pieces costs time in proportion to its length, not its square, while one
        # that ends goes out with the piece that ends it.
        more = self._more
        more += chunk
        self._may_end = self._may_end or b">" in chunk
        if len(more) < len(tail) and (8 * len(more) < len(tail) or not self._may_end):
            return b""
        data = tail + more
        self._tail = b""
        self._more = bytearray()
        self._may_end = False
        return self._run(data, final=False)

    def finish(self) -> bytes:
        """Signal the end of the body; return everything still held."""
        if self._finished:
            return b""
        if self._cut:
            return self.cut()
        data = self._tail + self._more
        self._tail = b""
        self._more = bytearray()
        result = self._run(data, final=True)
        self._finished = True
        return result

    def cut(self) -> bytes:
        """End the document cleanly after a :class:`WithholdUncertain` (or any point where
        the rest must not be sent): the held bytes, the notices still due, and end tags for
        foreign content or a select open there. Later calls return nothing."""
        if self._finished:
            return b""
        self._finished = True
        self._cut = True
        self._out = []
        self._tail = b""
        self._more = bytearray()
        try:
            # The output stops at a removed element's start (a place for markup), or where
            # the input stopped: an unfinished token is dropped, but inside a comment or raw
            # text nothing can go.
            removing = self._context is not None
            self._restore_context()
            self._extent = None
            self._end_of_stream(safe=True if removing else None)
        except Exception as exc:  # pragma: no cover - a bug here must not break the page
            if self._held is not None:
                self._out.append(bytes(self._held))
                self._held = None
            self.skipped_reason = f"internal error: {exc!r}"
        return b"".join(self._out)

    # --- driver -------------------------------------------------------------------------------

    def _run(self, data: bytes, *, final: bool) -> bytes:
        self._out = []
        self._emit = 0
        self._final = final
        try:
            consumed = self._scan(data, final)
            if final:
                self._route(data, len(data) - len(self.tokenizer.trailer))
                if self._extent is not None:  # removed to the end: the output ends before it
                    self._restore_context()
                    self._end_of_stream(safe=True)
                else:
                    self._end_of_stream()
                self._route(data, len(data))
            else:
                self._route(data, consumed)
                self._tail = data[consumed:]
        except Ambiguous as exc:
            # Never half an element: what was sent stays, the rest of the document goes.
            self._cut = True
            self._tail = b""
            raise WithholdUncertain(str(exc), b"".join(self._out)) from None
        except Exception as exc:
            if self._rendering:
                raise
            if self._withhold is not None:
                # Content may be withheld: never send the rest unedited.
                self._cut = True
                self._tail = b""
                cause = f"internal error: {exc!r}"
                raise WithholdUncertain(cause, b"".join(self._out)) from exc
            # A bug here must not break the page: send everything as it is from now on.
            rest = data[self._emit :]
            if self._held is not None:
                self._out.append(bytes(self._held))
                self._held = None
            self._out.append(rest)
            self._tail = b""
            self._phase = _PASS
            self.skipped_reason = f"internal error: {exc!r}"
            self.fault = exc
        out = b"".join(self._out)
        if out:
            self._last_sent = out[-1:]
        return out

    def _scan(self, data: bytes, final: bool) -> int:
        i = 0
        if not self._started:
            if not final and charsets.could_be_bom(data):
                return 0
            undeclared = self._declared is None and not self._declared_unsupported
            utf16 = undeclared and charsets.utf16_declaration(data, more=not final)
            if utf16 is None:
                return 0
            self._started = True
            found = charsets.bom(data)
            if found is not None:
                name, length = found
                if name == charsets.UNSUPPORTED:
                    self.skip_reason = self.skip_reason or "unsupported encoding"
                    self._phase = _PASS
                    return len(data)
                self._bom_charset = name
                i = length
            elif self._declared_unsupported or utf16:
                self.skip_reason = self.skip_reason or "unsupported encoding"
                self._phase = _PASS
                return len(data)
            elif undeclared:
                self._prefix = bytearray()
        if self._phase == _PASS:
            return len(data)
        self.tokenizer.active = True
        self._prefix_from = i
        consumed = self.tokenizer.scan(data, i, final)
        prefix = self._prefix
        if prefix is not None and len(prefix) < charsets.PRESCAN_BYTES:
            prefix += data[i : min(consumed, i + charsets.PRESCAN_BYTES - len(prefix))]
        return consumed

    # --- output routing -----------------------------------------------------------------------

    def _route(self, data: bytes, upto: int) -> None:
        """Send ``data[emit:upto]`` to the output, or to the held bytes when holding."""
        if upto <= self._emit:
            return
        if self._extent is not None:  # inside an element being withheld: it goes
            self._emit = upto
            return
        piece = data[self._emit : upto] if self._emit or upto != len(data) else data
        self._emit = upto
        if self._held is None:
            self._out.append(piece)
            return
        self._held += piece
        if len(self._held) > self._max_hold:
            self._overflow()

    def _overflow(self) -> None:
        self._frameset_ok = False
        for strategy in list(self._pending):
            strategy.overflow()
        if self._held is not None:
            self._out.append(bytes(self._held))
            self._held = None
        for strategy in self._strategies:
            strategy.offset = None
        self._update()

    def _flush_if_free(self) -> None:
        if self._held is not None and all(s.offset is None for s in self._strategies):
            self._out.append(bytes(self._held))
            self._held = None

    # --- Host (what the placements may ask) ----------------------------------------------------

    @property
    def verbatim(self) -> bool:
        return self._withhold is None  # (withholding cuts elements out, puts placeholders in)

    def hold_at(self, data: bytes, at: int) -> int:
        self._route(data, at)
        if self._held is None:
            self._held = bytearray()
            self._snippets = []
        return len(self._held)

    def held_at(self, data: bytes, at: int) -> int | None:
        if self._held is None:
            return None
        return len(self._held) + max(0, at - self._emit)

    def held(self, data: bytes, at: int, start: int, end: int) -> bytes | None:
        self._route(data, at)
        return bytes(self._held[start:end]) if self._held is not None else None

    def page_at(self, data: bytes, at: int) -> int | None:
        held = self.held_at(data, at)
        if held is None:
            return None
        return held - sum(length for _offset, length in self._snippets)

    def page(self, data: bytes, at: int, start: int, end: int) -> bytes | None:
        self._route(data, at)
        held = self._held
        if held is None:
            return None
        pieces: list[bytearray] = []
        page = offset = 0  # where the next run of the page's bytes starts: counted, held
        for snippet, length in (*self._snippets, (len(held), 0)):
            run = snippet - offset
            lo, hi = max(start, page), min(end, page + run)
            if lo < hi:
                pieces.append(held[offset + lo - page : offset + hi - page])
            page += run
            offset = snippet + length
        return b"".join(pieces)

    def put(self, owner: Strategy, offset: int, snippet: bytes) -> None:
        held = self._held
        if held is None:  # pragma: no cover - a strategy with an offset implies held bytes
            self._out.append(snippet)
        else:
            held[offset:offset] = snippet
            # (one put where another was goes before it)
            self._snippets = sorted(
                [(o + len(snippet) if o >= offset else o, n) for o, n in self._snippets]
                + [(offset, len(snippet))]
            )
            for other in self._strategies:
                if other is owner or other.offset is None:
                    continue
                if other.offset > offset or (other.offset == offset and other.order > owner.order):
                    other.offset += len(snippet)
        self._inserted(owner.name)

    def write_at(self, owner: Strategy, data: bytes, at: int, snippet: bytes) -> None:
        self._route(data, at)
        if not owner.pending:  # the hold overflowed on the way: it has placed already
            return
        if self._held is None:
            self._out.append(snippet)
        else:
            self._snippets.append((len(self._held), len(snippet)))
            self._held += snippet
        self._inserted(owner.name)

    def done(self, owner: Strategy) -> None:
        owner.offset = None
        owner.pending = False
        if owner in self._pending:
            self._pending.remove(owner)
        self._flush_if_free()
        self._update()

    def release(self, owner: Strategy) -> None:
        owner.offset = None
        self._flush_if_free()
        self._update()

    def _inserted(self, placement: Placement) -> None:
        self.inserted = True
        self.inserted_placements.append(placement)

    def _update(self) -> None:
        """Recompute what the tokenizer must report; stop scanning when nothing is left."""
        if self._extent is not None:
            self.tokenizer.watch = EVERYTHING
            return
        if self._phase != _BODY:
            return
        if not self._pending and not self._frameset_pending() and self._withhold is None:
            self._phase = _PASS
            self.tokenizer.active = False
            return
        watches = [s.watch() for s in self._pending]
        if self._frameset_ok:
            watches.append(_FRAMESET_WATCH)
        if self._withhold is not None:
            watches.append(_WITHHOLD_NOSCRIPT)
            if self._withhold.embeds:
                watches.append(_WITHHOLD_EMBEDS)
        key = tuple(watches)
        watch = _UNIONS.get(key)
        if watch is None:
            watch = _NO_WATCH
            for w in watches:
                watch = watch | w
            if len(_UNIONS) < 256:  # combinations of the registered placements' watches
                _UNIONS[key] = watch
        self.tokenizer.watch = watch

    def _frameset_pending(self) -> bool:
        """A ``<frameset>`` could still replace a body whose bytes are held."""
        return self._frameset_ok and self._held is not None

    # --- page info ----------------------------------------------------------------------------

    def _page_info(self) -> PageInfo:
        codec = self._charset or self._bom_charset or self._declared or "ascii"
        return PageInfo(lang=self._lang, charset=codec, nonce=self._nonce or self._other_nonce)

    def _charset_at(self, data: bytes, at: int) -> str | None:
        """The codec the ``<meta>`` of a page that declares none otherwise gives, the body
        starting at ``data[at]``: the head's (Chromium's), when the HTML Standard's prescan
        (Firefox's) finds the same in the first bytes, else ``None``. Read up to the body
        start, so that it is the same however the page is chunked (a prescan that would
        need the bytes after it has found nothing there yet: ``None`` too)."""
        meta = self._meta_charset
        prefix = self._prefix
        if meta is None or prefix is None:
            return None  # nothing, or only what Chromium does not read: ASCII reads alike
        room = charsets.PRESCAN_BYTES - len(prefix)
        first = bytes(prefix) + data[self._prefix_from : at][: max(room, 0)]
        return meta if charsets.prescan(first, more=True) == meta else None

    def _head_tag(self, name: bytes, tag: bytes) -> None:
        """Collect language, charset and nonce from a head element."""
        if name == b"html":
            if self._lang is None:
                attrs = attributes(tag)
                lang = attrs.get(b"lang") or attrs.get(b"xml:lang")
                lang = (lang or "").strip(_ASCII_WS)  # (U+00A0 and U+0085 are kept)
                if lang:
                    self._lang = lang
        elif name == b"meta":
            if self._meta_charset is not None or self._declared is not None:
                return  # (the header's encoding wins over any <meta>)
            label = charsets.meta_label(attribute_list(tag))
            if label is not None:
                self._meta_charset = charsets.meta_codec(label)
        elif name in (b"script", b"style", b"link") and self._nonce is None:
            attrs = attributes(tag)
            nonce = attrs.get(b"nonce")
            if not nonce:
                return
            rel = attrs.get(b"rel", "").lower().split()
            if name == b"style" or (name == b"link" and "stylesheet" in rel):
                self._nonce = nonce
            elif self._other_nonce is None:
                self._other_nonce = nonce

    # --- the body begins ------------------------------------------------------------------------

    def _begin(self, data: bytes, at: int) -> None:
        """The body starts at ``data[at]``."""
        self._route(data, at)
        if self._prefix is not None:
            self._charset = self._charset_at(data, at)
            self._prefix = None
        page = self._page_info()
        self._rendering = True
        result = self._render(page)
        self._rendering = False
        for name, cls in PLACEMENTS.items():
            text = result.get(name)
            if text:
                self._strategies.append(cls(self, charsets.encode(str(text), page.charset)))
        if not self._strategies:
            self.skipped_reason = "nothing to insert"
            if self._withhold is None:
                self._phase = _PASS
                self.tokenizer.active = False
                return
        self._phase = _BODY
        self._pending = list(self._strategies)
        for strategy in list(self._pending):
            strategy.begin(data, at, self._frameset_ok)
        self._update()

    def _frameset_document(self) -> None:
        """A ``<frameset>`` replaces the body: send everything unedited from here on."""
        if self._held is not None:
            self._out.append(bytes(self._held))
            self._held = None
        for strategy in self._strategies:
            strategy.offset = None
            strategy.pending = False
        self._pending = []
        self.skip_reason = self.skipped_reason = "frameset document"
        self._phase = _PASS
        self.tokenizer.active = False

    def _resolve_frameset(self) -> None:
        """A ``<frameset>`` can no longer replace the body."""
        self._frameset_ok = False
        for strategy in list(self._pending):
            strategy.frameset_resolved()
        self._update()

    # --- TokenSink ------------------------------------------------------------------------------

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.tokenizer
        if self._extent is not None and not self._within(data, start, end, name, is_end, tag):
            return
        began = False  # this start tag opens the body implicitly
        if self._withhold is not None and name in _NEVER_WITHHELD and tag and not is_end:
            self._document_mark(data, start, name, tag)
        if self._phase == _PRE and not tok.template:
            if is_end:
                if name in (b"body", b"html", b"br"):
                    self._begin(data, start)
                elif name == b"head":
                    self._after_head = True
            elif name == b"body":
                self._frameset_ok = False  # an explicit <body> rules a frameset out
                self._begin(data, end)
                return
            elif name == b"frameset":
                self.skip_reason = self.skipped_reason = "frameset document"
                self._phase = _PASS
                tok.active = False
                return
            elif self._stays_in_head(name):
                if tag is not None:
                    self._head_tag(name, tag)
            else:
                self._begin(data, start)
                began = True
        if self._withhold is not None and not is_end and tag is None:
            self._unreadable(data, start, name)
        if (
            self._withhold is not None
            and not is_end
            and tag is not None
            and name not in _NEVER_WITHHELD
            and self._withholds(data, start, end, name, tag, began)
        ):
            return
        if self._phase != _BODY:
            return
        if self._frameset_ok:
            self._frameset_flag(name, is_end, tag)
            if self._phase != _BODY:
                return
        dispatched = False
        for strategy in list(self._pending):
            if strategy.pending and _wants_tag(strategy.watch(), name, is_end):
                strategy.on_tag(data, start, end, name, is_end, tag)
                dispatched = True
        if dispatched:
            self._update()

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        tok = self.tokenizer
        if self._withhold is not None and not is_end and self._extent is None:
            self._unreadable(data, start, name)
        if self._extent is not None:
            if name is None:
                raise Ambiguous("a tag too long to read inside a withheld element")
            return
        if self._phase == _PRE and not tok.template:
            if is_end:
                if name in (b"body", b"html", b"br"):
                    self._begin(data, start)
                elif name == b"head":
                    self._after_head = True
            elif name is None or not (self._stays_in_head(name) or name in (b"body", b"frameset")):
                self._begin(data, start)
        if self._phase != _BODY:
            return
        for strategy in list(self._pending):
            if strategy.pending and strategy.watch().everything:
                strategy.on_tag(data, start, start, name or b"", is_end, None)
            elif strategy.pending:
                strategy.on_unread_tag(data, start, name, is_end)
        self._update()

    def on_long_tag_end(self, data: bytes, end: int, name: bytes | None, is_end: bool) -> None:
        if name is None:
            return
        if self._extent is not None:
            self._within(data, end, end, name, is_end, None)
            return
        if self._phase == _PRE and not self.tokenizer.template and not is_end:
            if name == b"body":
                self._frameset_ok = False  # an explicit <body> rules a frameset out
                self._begin(data, end)
                return
            if name == b"frameset":
                self.skip_reason = self.skipped_reason = "frameset document"
                self._phase = _PASS
                self.tokenizer.active = False
                return
        if self._phase == _BODY and self._frameset_ok:
            self._frameset_flag(name, is_end, None)

    def on_doubt(self, data: bytes, at: int, reason: str) -> None:
        """The tokenizer may read on otherwise than a browser (see ``Tokenizer.doubts``,
        set only when withholding): content to withhold may be missed, so stop before it."""
        self._route(data, at)
        raise Ambiguous(reason)

    def on_comment(self, data: bytes, start: int, end: int) -> None:
        if self._phase != _BODY or self._extent is not None:
            return
        for strategy in list(self._pending):
            watch = strategy.watch()
            if strategy.pending and (watch.comments or watch.everything):
                strategy.on_comment(data, start, end)
        self._update()

    def on_text(self, data: bytes, start: int, end: int) -> None:
        if self._extent is not None:
            if self._extent.text(data[start:end]) == END_BEFORE:
                self._finish_removal(data, start)
            else:
                return
        if self._phase == _PRE:
            if self.tokenizer.template:
                return
            m = _NON_WS.search(data, start, end)
            if m is None:
                return
            start = m.start()
            self._begin(data, start)
        if self._phase != _BODY:
            return
        if self._frameset_ok and _TEXT_NOT_OK.search(data, start, end) is not None:
            self._resolve_frameset()
        for strategy in list(self._pending):
            watch = strategy.watch()
            if strategy.pending and (watch.text or watch.everything):
                strategy.on_text(data, start, end)
        self._update()

    def _stays_in_head(self, name: bytes) -> bool:
        """Whether a start tag of ``name`` before the body goes in the head (rather than
        starting the body): after a ``</head>`` a ``<noscript>`` is the body's."""
        return name in HEAD_ELEMENTS and not (name == b"noscript" and self._after_head)

    def _frameset_flag(self, name: bytes, is_end: bool, tag: bytes | None) -> None:
        """Follow the parser's frameset-ok flag while a ``<frameset>`` could replace the body."""
        if is_end:
            if name == b"br":
                self._resolve_frameset()
        elif name == b"frameset":
            tok = self.tokenizer
            if not tok.template and not tok.foreign_rules:
                if self.withheld:
                    # What was removed might have been what kept the body a body.
                    raise Ambiguous("a <frameset> after withheld content")
                self._frameset_document()
        elif name in _FRAMESET_NOT_OK:
            self._resolve_frameset()
        elif name == b"input":
            kind = attributes(tag).get(b"type", "") if tag is not None else ""
            if kind.lower() != "hidden":  # the standard compares without stripping
                self._resolve_frameset()

    # --- withholding ----------------------------------------------------------------------------

    def _document_mark(self, data: bytes, start: int, name: bytes, tag: bytes) -> None:
        """A mark (or a withheld embed URL: ``style``, ``background``) on ``<html>``,
        ``<head>``, ``<body>`` or ``<frameset>`` would withhold the document itself (or its
        metadata): nothing to cut out and leave the page standing, so never send on as if it
        were not there."""
        withhold = self._withhold
        assert withhold is not None
        if _may_withhold(withhold, name, tag, False) and self._select(name, tag) is not None:
            self._route(data, start)  # the cut is where the tag starts, however chunked
            raise Ambiguous(f"<{name.decode()}> would withhold the document")

    def _readings(self) -> tuple[str, ...]:
        """The codecs the page's non-ASCII bytes are read in for withholding: its own, once
        known; until then (or when it declares none) every one a browser may take, as
        UTF-8 and windows-1252 read the bytes of a host otherwise (``。``, U+3002, is a dot
        to the URL parser)."""
        known = self._charset or self._bom_charset or self._declared
        if known is not None:
            return (known,)
        return tuple(dict.fromkeys(("utf-8", self._meta_charset or "utf-8", "cp1252")))

    def _select(self, name: bytes, tag: bytes) -> str | None:
        """The rule that withholds the element whose start tag is ``tag``, its attributes
        read in each of :meth:`_readings` (one, for a tag in ASCII)."""
        withhold = self._withhold
        assert withhold is not None
        for codec in ("utf-8",) if tag.isascii() else self._readings():
            rule = withhold.select(name, attributes(tag, codec))
            if rule is not None:
                return rule
        return None

    def _withholds(
        self, data: bytes, start: int, end: int, name: bytes, tag: bytes, starts_body: bool
    ) -> bool:
        """Start removing the element whose start tag is ``data[start:end]`` if it is to be
        withheld; return whether it is."""
        withhold = self._withhold
        assert withhold is not None
        tok = self.tokenizer
        rule = None
        # (Presentation attributes and animations load only on SVG elements.)
        if _may_withhold(withhold, name, tag, bool(tok.foreign) or name == b"svg"):
            rule = self._select(name, tag)
        if rule is None and name == b"noscript":
            rule = self._noscript_rule(data, start, end)
        if rule is None and name == b"style" and withhold.embeds:
            rule = self._style_rule(data, start, end)
        if rule is None:
            return False
        # The output goes on to this tag (also when it is uncertain: the cut is there,
        # however the body is chunked).
        self._route(data, start)
        if tok.lost:
            raise Ambiguous("foreign content nested too deep to follow")
        if tok.select and name not in (b"option", b"optgroup", b"script"):
            # html5lib 1.1 drops such a tag inside a <select>, newer browsers keep it.
            raise Ambiguous(f"parsers disagree on a <{name.decode()}> inside a select")
        self.withheld.append(rule)
        if tok.left:
            # This start tag closed foreign content (a breakout): without it the foreign
            # elements would stay open over what follows. Their end tags close them.
            closing = b"".join(b"</" + entry[0] + b">" for entry in reversed(tok.left))
            if self._held is not None:
                self._held += closing
            else:
                self._out.append(closing)
        placeholder = b""
        if self._phase == _BODY and not (tok.foreign or tok.select):
            placeholder = self._placeholder(rule)
        if not placeholder and starts_body:
            placeholder = b"<body>"  # the body starts here even without the element
        if not placeholder and self._output_ends_with_lt():
            # A "<" that is text only because this element's "<" followed it would open a
            # tag with what follows the element: an empty comment keeps them apart.
            placeholder = _SEPARATOR
        if placeholder and placeholder not in (b"<body>", _SEPARATOR):
            # The placements see the placeholder's start tag like the page's own (a block
            # there closes an open <p>, which a marker notice waits for).
            first = _FIRST_TAG.match(placeholder)
            if first is not None:
                self._placeholder_tag(data, start, first.group(1).lower())
        if placeholder:
            if self._held is not None:
                self._held += placeholder
            else:
                self._out.append(placeholder)
            if self._frameset_ok and placeholder not in (b"<body>", _SEPARATOR):
                self._resolve_frameset()
        extent = Extent(name, tok, tag.endswith(b"/>"))
        if extent.done:  # the start tag is the whole element
            self._emit = end
            return True
        self._context = (list(tok.foreign), tok.select, tok.template)
        self._extent = extent
        self._update()
        return True

    def _placeholder_tag(self, data: bytes, at: int, name: bytes) -> None:
        """Report the start tag of a placeholder going in before ``data[at]`` to the
        placements that watch it."""
        for strategy in list(self._pending):
            if strategy.pending and _wants_tag(strategy.watch(), name, False):
                strategy.on_tag(data, at, at, name, False, None)
        self._update()

    def _unreadable(self, data: bytes, start: int, name: bytes | None) -> None:
        """A start tag too long to read: it might be one to withhold."""
        withhold = self._withhold
        assert withhold is not None
        if (
            withhold.marks
            or name is None
            or name in EMBED_ELEMENTS
            or name == b"noscript"
            # (an SVG element's presentation attributes)
            or (withhold.embeds and (name == b"svg" or bool(self.tokenizer.foreign)))
        ):
            self._route(data, start)
            raise Ambiguous("a start tag too long to read may be one to withhold")

    def _noscript_rule(self, data: bytes, start: int, end: int) -> str | None:
        """A ``<noscript>`` (start tag ``data[start:end]``) read as raw text here is markup
        to a browser with scripting off: the rule that withholds content in that markup
        (the whole element goes), if any. Uncertain when that reading may change how the
        rest of the page is read, or when the element is too long to read whole."""
        tok = self.tokenizer
        if tok.select or tok.foreign_rules:
            return None  # not raw text here: its content is read as markup anyway
        m = _NOSCRIPT_END.search(data, end)
        close = m.start() if m is not None else len(data)
        if (m is None and not self._final) or close - start > tok.max_token:
            self._route(data, start)
            raise Ambiguous("a <noscript> too long to read whole")
        assert self._withhold is not None
        reader = _NoscriptReader(self._withhold, self._readings())
        sub = Tokenizer(reader, EVERYTHING)
        reader.tokenizer = sub
        sub.scripting = False
        sub.doubts = True
        sub.max_token = LONGEST_TAG
        sub.foreign[:] = tok.foreign
        sub.template = tok.template
        inner = data[end:close]
        consumed = sub.scan(inner, 0, False)
        if reader.rule is not None:
            return reader.rule
        if (
            reader.doubt
            or consumed != len(inner)
            or sub.state != 0
            or sub.foreign != tok.foreign
            or sub.select
            or sub.template != tok.template
            or sub.lost
        ):
            # With scripting off, what follows the element would be read in another state
            # (a comment, raw text, foreign content or a select still open...).
            self._route(data, start)
            raise Ambiguous("a <noscript> whose content is read differently with scripting off")
        return None

    def _style_rule(self, data: bytes, start: int, end: int) -> str | None:
        """The rule that withholds a URL in the CSS of the ``<style>`` whose start tag is
        ``data[start:end]`` (read whole: uncertain when too long), if any."""
        found = _style_text(data, end, self.tokenizer.foreign_rules)
        if found is None:
            self._route(data, start)
            raise Ambiguous("an SVG or MathML <style> whose end or text is not certain")
        css, close = found
        size = (close if close >= 0 else len(data)) - start
        if (close < 0 and not self._final) or size > self.tokenizer.max_token:
            self._route(data, start)
            raise Ambiguous("a <style> too long to read whole")
        assert self._withhold is not None
        return _style_rule(self._withhold, css, self._readings())

    def _output_ends_with_lt(self) -> bool:
        """Whether the last byte sent or due is a ``<``."""
        if self._held:
            return self._held[-1:] == b"<"
        for piece in reversed(self._out):
            if piece:
                return piece[-1:] == b"<"
        return self._last_sent == b"<"

    def _placeholder(self, rule: str) -> bytes:
        found = self._placeholders.get(rule)
        if found is None:
            assert self._withhold is not None
            text = self._withhold.placeholder(rule)
            found = charsets.encode(text, self._page_info().charset) if text else b""
            self._placeholders[rule] = found
        return found

    def _within(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> bool:
        """A tag while an element is being removed: return whether it is outside it (to be
        handled as usual)."""
        extent = self._extent
        assert extent is not None
        self_closing = tag is not None and tag.endswith(b"/>")
        result = extent.end(name) if is_end else extent.start(name, self_closing, tag)
        if result == END_BEFORE:
            self._finish_removal(data, start)
            return True
        if result == END_AFTER:
            self._finish_removal(data, end)
        return False

    def _finish_removal(self, data: bytes, upto: int) -> None:
        self._route(data, upto)  # discarded
        self._extent = None
        self._context = None
        self._update()

    def _restore_context(self) -> None:
        """Put back the tokenizer context of where the output stopped (a removed element's
        start), for the notices that go at the end."""
        if self._context is not None:
            foreign, select, template = self._context
            tok = self.tokenizer
            tok.foreign[:] = foreign
            tok.select = select
            tok.template = template
            tok.state = 0

    # --- end of the document --------------------------------------------------------------------

    def _end_of_stream(self, safe: bool | None = None) -> None:
        if self._phase == _PASS:
            if not self.inserted and self.skipped_reason is None:
                self.skipped_reason = self.skip_reason
            return
        tok = self.tokenizer
        if safe is None:
            safe = tok.state == 0
        safe = safe and tok.template == 0 and not tok.lost
        if self._phase == _PRE:
            if not safe:
                self.skipped_reason = "no safe insertion point"
                return
            self._begin(b"", 0)
            if self._phase != _BODY:
                return
        self._frameset_ok = False
        tail: list[bytes] = []
        for strategy in list(self._pending):
            end = strategy.finish(safe)
            if end:
                tail.append(end)
                self._inserted(strategy.name)
            elif strategy.name == "body_end" and strategy.name not in self.inserted_placements:
                self.skipped_reason = "no safe insertion point for body_end"
        self._pending = []
        if self._held is not None:
            self._out.append(bytes(self._held))
            self._held = None
        self._out.extend(tail)
        self._phase = _PASS


def _wants_tag(watch: Watch, name: bytes, is_end: bool) -> bool:
    return watch.everything or name in (watch.ends if is_end else watch.starts)


def _may_withhold(withhold: Withhold, name: bytes, tag: bytes, svg: bool) -> bool:
    """Whether the start tag ``tag`` may be one ``withhold`` selects (a mark, a style
    attribute, an embed with a URL that may name a host, and where ``svg`` (in foreign
    content, or an ``<svg>`` tag) a presentation attribute or an animation that may): the
    cheap test before reading its attributes."""
    if withhold.marks and _MARK_PROBE.search(tag) is not None:
        return True
    return withhold.embeds and (
        _STYLE_PROBE.search(tag) is not None
        or (
            name in EMBED_ELEMENTS
            and _URL_ATTRIBUTE.search(tag) is not None
            and _MAYBE_HOST.search(tag) is not None
            and withhold.may_name_a_host(tag)
        )
        or (
            svg
            and _SVG_URL_ATTRIBUTE.search(tag) is not None
            and (b"(" in tag or (name in ANIMATIONS and _MAYBE_HOST.search(tag) is not None))
        )
    )


def _style_text(data: bytes, end: int, foreign: bool) -> tuple[bytes, int] | None:
    """The CSS of the ``<style>`` whose start tag ends at ``data[end]``, up to its first
    ``</style`` (where that starts: -1 when it is not in ``data``, and the CSS runs to its
    end). In SVG or MathML (``foreign``) the element holds markup: its CSS is its text and
    CDATA sections, not its comments. ``None`` when other markup is in it, or a comment or
    section is not ended before that ``</style`` (which it may hide: the end is elsewhere):
    it cannot be read with certainty there (and whatever the chunking)."""
    m = _STYLE_END.search(data, end)
    close = m.start() if m is not None else len(data)
    if not foreign or b"<" not in data[end:close]:
        return data[end:close], m.start() if m is not None else -1
    parts: list[bytes] = []
    at = end
    while (markup := _FOREIGN_STYLE_MARKUP.search(data, at, close)) is not None:
        parts.append(data[at : markup.start()])
        at = markup.end()
        if markup.group(2) is not None:
            parts.append(markup.group(2))  # a CDATA section is text
        elif markup.group(1) is None:
            return None  # an element, an end tag, a comment or section not ended there
    parts.append(data[at:close])
    return b"".join(parts), m.start() if m is not None else -1


def _style_rule(withhold: Withhold, css: bytes, codecs: tuple[str, ...]) -> str | None:
    """The rule that withholds a URL in a ``<style>``'s text, if any, read in each of
    ``codecs`` (one, for text in ASCII). In SVG or MathML the text is not raw: character
    references are decoded, so both readings are checked."""
    for codec in ("utf-8",) if css.isascii() else codecs:
        text = css.decode(codec, "replace")
        rule = withhold.select(b"style", {b"style": text})
        if rule is None and "&" in text:  # (apart: a comment left open in one hides the other)
            rule = withhold.select(b"style", {b"style": html.unescape(text)})
        if rule is not None:
            return rule
    return None


class _NoscriptReader(QuietSink):
    """Finds, in a ``<noscript>``'s content read as markup, a start tag to withhold."""

    def __init__(self, withhold: Withhold, codecs: tuple[str, ...]) -> None:
        self.withhold = withhold
        self.codecs = codecs
        self.rule: str | None = None
        self.doubt = False
        self.tokenizer: Tokenizer | None = None  # (the one reading the noscript's content)

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        if is_end or self.rule is not None:
            return
        if tag is None:
            self.doubt = True  # unreadable: it may be one to withhold
            return
        for codec in ("utf-8",) if tag.isascii() else self.codecs:
            self.rule = self.withhold.select(name, attributes(tag, codec))
            if self.rule is not None:
                return
        if self.rule is None and name == b"style" and self.withhold.embeds:
            # (no end: the state check after the scan doubts)
            found = _style_text(
                data, end, self.tokenizer is not None and self.tokenizer.foreign_rules
            )
            if found is None:
                self.doubt = True
                return
            self.rule = _style_rule(self.withhold, found[0], self.codecs)

    def on_long_tag(self, data: bytes, start: int, name: bytes | None, is_end: bool) -> None:
        if not is_end:
            self.doubt = True

    def on_doubt(self, data: bytes, at: int, reason: str) -> None:
        self.doubt = True

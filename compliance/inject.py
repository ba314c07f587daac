"""Streaming insertion of notice snippets into HTML bytes.

:class:`Injector` is a pure bytes-in/bytes-out object: feed it the response body chunk by chunk
and send on whatever it returns. It never buffers the whole body. A small tokenizer, modelled on
the HTML standard's, finds the insertion points while knowing comments (including ``<!-->`` and
bogus comments), doctypes, CDATA, quoted and unquoted attributes, the raw-text elements
(``script`` with its escaped states, ``style``, ``textarea``, ``title``, ``xmp``, ``iframe``,
``noembed``, ``noframes``, ``noscript``, ``plaintext``) and ``template`` contents, so a
``"</body>"`` inside any of them never misleads it. The output is the same however the input is
split into chunks.

Placements:

``body_start``
    Right after the ``<body>`` start tag; without one, where an HTML parser opens the body
    implicitly: before the first non-whitespace text or the first start tag that does not belong
    in ``<head>``. Until the body has text or an element that rules out a ``<frameset>`` (the
    parser's frameset-ok flag), output is held (at most ``max_hold``), so that a late
    ``<frameset>`` still leaves the document unedited.
``body_end``
    Before the ``</body>`` that closes the document. From a ``</body>`` on, output is held; when
    the rest of the document is only whitespace, comments and ``</html>``, the snippet goes
    before it; when more content follows the held bytes are released and the search goes on.
    When the held bytes would exceed ``max_hold`` they are released and the snippet goes at the
    very end of the stream, as it does when there is no ``</body>`` at all (an HTML parser puts
    content after ``</html>`` into the body). A notice at the very end is preceded by end tags
    for any ``<svg>``, ``<math>`` or ``<select>`` still open, which would otherwise turn it into
    foreign content or drop it (an end tag with nothing to close is ignored by parsers).
``marker``
    Right after the first ``<!-- compliance:notices -->`` comment in the body (whitespace
    inside the comment is not significant). From the body start on, output is held until the
    marker is found; when the document ends without one, or the held bytes would exceed
    ``max_hold``, the snippet goes at the body start and the held bytes are released.

Encoding: snippets are encoded in the page charset with ``errors="xmlcharrefreplace"``. The
charset is, in order: a UTF-8 byte order mark, the ``charset`` argument (the response header),
a ``<meta charset>`` or ``<meta http-equiv="content-type">`` in the head, else UTF-8. A label
Python does not know is ignored, as browsers do, so an unknown name ends at UTF-8 when nothing
else is declared. Documents that are not ASCII-compatible (UTF-16 or UTF-32, by byte order mark
or by the ``charset`` argument, UTF-7, EBCDIC, ISO-2022) are passed through unchanged.

Limitations: ``noscript`` is treated as raw text (as a browser with scripting does); elements
left open at the insertion point decide where a parser puts the snippet (inside an unclosed
``<table>`` it is foster-parented before the table, inside an unclosed ``<svg>`` it becomes an
SVG element, inside an unclosed ``<select>`` a parser drops it); ``<![CDATA[`` is read as CDATA
inside ``<svg>``/``<math>`` (counted by start and end tags only) and as a bogus comment
elsewhere; a tag or comment longer than 64 KiB is streamed through without its attributes being
read.

>>> inj = Injector(lambda page: {"body_end": "<aside>N</aside>"})
>>> inj.feed(b"<html><body><p>Hi</p></bo") + inj.feed(b"dy></html>\\n") + inj.finish()
b'<html><body><p>Hi</p><aside>N</aside></body></html>\\n'
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["MARKER", "Injector", "PageInfo", "Placement"]

Placement = Literal["body_start", "body_end", "marker"]

MARKER: Final = b"<!-- compliance:notices -->"
"""The comment a page places where ``marker`` notices should go."""

_PLACEMENTS: tuple[Placement, ...] = ("body_start", "body_end", "marker")


@dataclass(frozen=True)
class PageInfo:
    """What the injector learnt about the page before the first insertion point."""

    lang: str | None
    """Value of ``<html lang>`` (or ``xml:lang``), else ``None``."""
    charset: str
    """Python codec name the snippets are encoded with."""
    nonce: str | None
    """CSP nonce found on a ``<script>``, ``<style>`` or ``<link>`` in the head, else ``None``."""


# --- tokenizer pieces --------------------------------------------------------------------------

_WS = b"\t\n\f\r "
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
_RAW_ELEMENTS = frozenset(b"style textarea title xmp iframe noembed noframes noscript".split())
_HEAD_ELEMENTS = frozenset(
    b"html head title base basefont bgsound link meta style script noscript noframes template"
    b"".split()
)
_INTERESTING_START = rb"script|style|textarea|title|xmp|iframe|noembed|noframes|noscript"
_INTERESTING_START += rb"|plaintext|template|svg|math|select"
_INTERESTING_END = rb"body|template|svg|math|select"


# The common case first: text followed by a plainly written tag (attributes separated by
# whitespace, `name`, `name=value`, `name="value"` or `name='value'`, no stray quotes) whose
# first two letters rule out every interesting name. On such a tag the HTML tokenizer and this
# pattern agree on where it ends, and trying it first is much cheaper than the exact pattern,
# which takes every other tag (and checks the name case-insensitively).
_PLAIN_TAG = (
    # The first letters, dispatched by character class with a short lookahead for the few
    # prefixes that interesting names start with (scr, sty, svg, sel, tex, tem, tit, ...):
    # much cheaper than a case-insensitive lookahead over every name.
    rb"<(?:(?:[abcdefghjloqruvwyzABCDEFGHJLOQRUVWYZ]"
    rb"|[sS](?![cC][rR]|[tT][yY]|[vV][gG]|[eE][lL])|[tT](?![eE][xXmM]|[iI][tT])"
    rb"|[pP](?![lL][aA])|[iI](?![fF][rR]|[nN][pP])|[nN](?![oO][eEfFsS])|[mM](?![aA][tT])"
    rb"|[xX](?![mM][pP])|[kK](?![eE][yY]))"
    rb"[^\t\n\f\r />\"'=<]*+"
    rb"(?:[\t\n\f\r ]++[^\t\n\f\r />\"'=<]++"
    rb"(?:=(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'=<`]++))?)*+"
    rb"[\t\n\f\r ]*+/?"
    rb"|/(?:[acdefghijklnopqruvwxyzACDEFGHIJKLNOPQRUVWXYZ]|[bB](?![oO][dD])|[tT](?![eE][mM])"
    rb"|[sS](?![vV][gG]|[eE][lL])|[mM](?![aA][tT]))[^\t\n\f\r />\"'=<]*+[\t\n\f\r ]*+)>"
)


# A whole comment: "<!-->" and "<!--->" are empty; otherwise it ends at "-->" or "--!>".
_WHOLE_COMMENT = rb"<!--(?:-?>|(?:[^-]++|-(?!-!?>))*+--!?>)"


# A whole script element up to its end tag, when its text never starts an escape ("<!--"):
# the common case, read here exactly as _scan_script would read it.
_WHOLE_SCRIPT = (
    rb"<(?i:script)(?=[\t\n\f\r />])" + _ATTRS + rb">"
    rb"(?:[^<]++|<(?!!--|/(?i:script)[\t\n\f\r />]))*+"
    rb"(?=</(?i:script)[\t\n\f\r />])"
)


def _boring(start: bytes, end: bytes, *, comments: bool) -> re.Pattern[bytes]:
    """Text and tags that cannot change the scanner's state, consumed in one C-level match.

    With ``comments``, whole comments are consumed too (when no marker is looked for).
    """
    return re.compile(
        rb"(?:[^<]*+"
        + _PLAIN_TAG
        + rb"|[^<]++"
        + (rb"|" + _WHOLE_COMMENT if comments else b"")
        + rb"|"
        + _WHOLE_SCRIPT
        + rb"|<(?=[^A-Za-z!?/])"
        rb"|<(?!(?i:" + start + rb")[\t\n\f\r />])" + _NAME + _ATTRS + rb">"
        rb"|</(?!(?i:" + end + rb")[\t\n\f\r />])" + _NAME + _ATTRS + rb">"
        rb")*+"
    )


# Indexed by "comments may be skipped" (no marker pending).
_BORING = tuple(_boring(_INTERESTING_START, _INTERESTING_END, comments=c) for c in (False, True))
_BORING_IN_SELECT = tuple(
    _boring(_INTERESTING_START + b"|input|keygen", _INTERESTING_END, comments=c)
    for c in (False, True)
)

# Runs a long tag's states skip over (see _scan_long_tag), by state.
_SKIP = {
    0: re.compile(rb"[^\t\n\f\r />]*+"),
    1: re.compile(rb"[\t\n\f\r /]*+"),
    2: re.compile(rb"[^\t\n\f\r />=]*+"),
    3: re.compile(rb"[\t\n\f\r ]*+"),
    4: re.compile(rb"[\t\n\f\r ]*+"),
    7: re.compile(rb"[^\t\n\f\r >]*+"),
}
_NON_WS = re.compile(rb"[^\t\n\f\r ]")
_TEXT_NOT_OK = re.compile(rb"[^\t\n\f\r \x00]")  # body text that sets frameset-ok to "not ok"
# Start tags that set the HTML parser's frameset-ok flag to "not ok" (input: unless hidden).
_FRAMESET_NOT_OK = frozenset(
    b"pre listing li dd dt button applet marquee object table area br embed img keygen wbr hr"
    b" textarea xmp iframe select image".split()
)
_COMMENT_END = re.compile(rb"--!?>")
_SCRIPT_DATA = re.compile(rb"<!--|</(?i:script)[\t\n\f\r />]")
_SCRIPT_ESCAPED = re.compile(rb"-->|</(?i:script)[\t\n\f\r />]|<(?i:script)[\t\n\f\r />]")
_SCRIPT_DOUBLE = re.compile(rb"-->|</(?i:script)[\t\n\f\r />]")
_RAW_END = {name: re.compile(rb"</(?i:" + name + rb")[\t\n\f\r />]") for name in _RAW_ELEMENTS}
_META_CHARSET = re.compile(rb"(?i:charset)[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?([^\"'\t\n\f\r ;]+)")

# Scanner states.
_DATA: Final = 0
_RAW: Final = 1
_SCRIPT: Final = 2
_PLAINTEXT: Final = 3
_COMMENT: Final = 4  # a long comment being streamed
_BOGUS: Final = 5  # a long bogus comment or doctype being streamed
_CDATA: Final = 6  # a long CDATA section being streamed
_LONG_TAG: Final = 7  # a long tag being streamed

# Script sub-states (HTML "script data", "escaped", "double escaped").
_S_DATA: Final = 0
_S_ESCAPED: Final = 1
_S_DOUBLE: Final = 2

# States of a long tag being streamed (a subset of the HTML tokenizer's).
_T_NAME: Final = 0
_T_BEFORE: Final = 1
_T_ATTR: Final = 2
_T_AFTER: Final = 3
_T_VALUE: Final = 4
_T_DQ: Final = 5
_T_SQ: Final = 6
_T_UNQ: Final = 7

# Phases of the search.
_PRE: Final = 0  # before the body starts
_BODY: Final = 1  # in the body, still looking for a marker or </body>
_PASS: Final = 2  # nothing left to do: bytes pass straight through

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xfe\xff", b"\xff\xfe")
_ASCII_PROBE = bytes(range(0x20, 0x7F))
_STATEFUL_CODECS = ("utf_7", "utf-7", "iso2022", "hz")


def _lookup_codec(label: str) -> str | None:
    """Python codec name for a charset label.

    ``None`` when the label is unknown (or not a text encoding), ``""`` when it names an
    encoding this byte scanner cannot read (not ASCII-compatible, or stateful).
    """
    try:
        info = codecs.lookup(label.strip())
        if not getattr(info, "_is_text_encoding", True):
            return None
        probe = _ASCII_PROBE.decode("ascii").encode(info.name)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    if probe != _ASCII_PROBE or info.name.startswith(_STATEFUL_CODECS):
        return ""
    return info.name


def _attributes(tag: bytes) -> dict[bytes, str]:
    """Attributes of a complete tag (lower-cased names, first occurrence wins)."""
    found: dict[bytes, str] = {}
    name_end = 1
    while name_end < len(tag) and tag[name_end] not in b"\t\n\f\r />":
        name_end += 1
    for m in _ATTR.finditer(tag, name_end, len(tag) - 1):
        key = m.group(1).lower()
        if key not in found:
            raw = m.group(2) or m.group(3) or m.group(4) or b""
            found[key] = html.unescape(raw.decode("utf-8", "replace"))
    return found


class Injector:
    """Insert rendered snippets into an HTML byte stream.

    ``render`` is called at most once, when the first insertion point is reached, with what
    was learnt about the page; it returns HTML text per placement (a missing or empty entry
    means nothing goes there). Exceptions from ``render`` propagate out of :meth:`feed` or
    :meth:`finish`; anything else about the input never raises.

    ``charset`` is the response's declared charset, if any. ``max_hold`` bounds the bytes held
    back while deciding where a ``body_end`` or ``marker`` snippet goes.
    """

    #: Longest tag or comment kept whole; longer ones are streamed through unread.
    max_token: int = 64 * 1024

    def __init__(
        self,
        render: Callable[[PageInfo], Mapping[Placement, str]],
        *,
        charset: str | None = None,
        max_hold: int = 256 * 1024,
    ) -> None:
        self._render = render
        self._max_hold = max(0, max_hold)
        self._declared: str | None = None
        self._skip_reason: str | None = None
        if charset is not None:
            codec = _lookup_codec(charset)
            if codec == "":
                self._skip_reason = "unsupported encoding"
            else:
                self._declared = codec
        self.inserted = False
        """Whether any snippet was inserted."""
        self.inserted_placements: list[Placement] = []
        """The placements that got their snippet, in insertion order."""
        self.skipped_reason: str | None = None
        """Why nothing (or not everything) was inserted, once known."""

        self._phase = _PASS if self._skip_reason else _PRE
        self._started = False
        self._finished = False
        self._tail = b""
        self._out: list[bytes] = []
        self._emit = 0
        # Scanner state.
        self._state = _DATA
        self._raw_name = b""
        self._script = _S_DATA
        self._tag_state = _T_NAME
        self._tag_name: bytes | None = None
        self._tag_end = False
        self._template = 0
        self._foreign: list[bytes] = []  # open <svg>/<math>, by start and end tags only
        self._select = False  # an HTML <select> is open
        self._frameset_ok = True  # the HTML parser's flag: a <frameset> could still replace body
        self._trailer = b""  # a "<" or "</" ending the document: text, kept after insertions
        # What the head told us.
        self._bom_charset: str | None = None
        self._meta_charset: str | None = None
        self._lang: str | None = None
        self._nonce: str | None = None
        # Snippets, once rendered.
        self._rendering = False
        self._snippets: dict[Placement, bytes] = {}
        # Held output: bytes from the body start (marker pending) or from a </body>.
        self._held: bytearray | None = None
        self._start_pending = False  # body_start snippet waits while a <frameset> may follow
        self._marker_pending = False
        self._marker_at = 0  # offset in _held where a marker snippet goes without a marker
        self._end_pending = False
        self._end_at: int | None = None  # offset of the candidate </body> in _held

    # --- public API ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk of the body; return the bytes that may be sent now."""
        if self._finished:
            return bytes(chunk)
        if self._phase == _PASS and not self._tail and self._held is None:
            return bytes(chunk)
        data = self._tail + chunk if self._tail else bytes(chunk)
        self._tail = b""
        return self._run(data, final=False)

    def finish(self) -> bytes:
        """Signal the end of the body; return everything still held."""
        if self._finished:
            return b""
        data, self._tail = self._tail, b""
        result = self._run(data, final=True)
        self._finished = True
        return result

    # --- driver -------------------------------------------------------------------------------

    def _run(self, data: bytes, *, final: bool) -> bytes:
        self._out = []
        self._emit = 0
        try:
            consumed = self._scan(data, final)
            if final:
                self._route(data, len(data) - len(self._trailer))
                self._end_of_stream()
                self._route(data, len(data))
            else:
                self._route(data, consumed)
                self._tail = data[consumed:]
        except Exception as exc:
            if self._rendering:
                raise
            # A bug here must not break the page: send everything as it is from now on.
            rest = data[self._emit :]
            if self._held is not None:
                self._out.append(bytes(self._held))
                self._held = None
            self._out.append(rest)
            self._tail = b""
            self._phase = _PASS
            self.skipped_reason = f"internal error: {exc!r}"
        return b"".join(self._out)

    # --- output routing -----------------------------------------------------------------------

    def _route(self, data: bytes, upto: int) -> None:
        """Send ``data[emit:upto]`` to the output, or to the held bytes when holding."""
        if upto <= self._emit:
            return
        piece = data[self._emit : upto]
        self._emit = upto
        if self._held is None:
            self._out.append(piece)
            return
        self._held += piece
        if len(self._held) > self._max_hold:
            self._overflow()

    def _write(self, snippet: bytes) -> None:
        if self._held is None:
            self._out.append(snippet)
        else:
            self._held += snippet

    def _release(self) -> None:
        """Send the held bytes on when nothing is waiting for them any more."""
        if self._held is None or self._start_pending or self._marker_pending:
            return
        if self._end_at is None:
            self._out.append(bytes(self._held))
            self._held = None

    def _resolve_start(self) -> None:
        """A ``<frameset>`` can no longer replace the body: place the body_start snippet."""
        self._frameset_ok = False
        if self._start_pending and self._held is not None:
            snippet = self._snippets["body_start"]
            self._held[0:0] = snippet
            self._marker_at += len(snippet)
            self._start_pending = False
            self._inserted("body_start")
            self._release()
            self._after_insertions()

    def _marker_fallback(self) -> None:
        if self._marker_pending and self._held is not None:
            self._held[self._marker_at : self._marker_at] = self._snippets["marker"]
            self._marker_pending = False
            self._inserted("marker")

    def _overflow(self) -> None:
        self._resolve_start()
        self._marker_fallback()
        self._end_at = None
        if self._held is not None:
            self._out.append(bytes(self._held))
            self._held = None
        self._after_insertions()

    def _frameset_document(self) -> None:
        """A ``<frameset>`` replaces the body: send everything unedited."""
        if self._held is not None:
            self._out.append(bytes(self._held))
            self._held = None
        self._start_pending = self._marker_pending = self._end_pending = False
        self._end_at = None
        self._frameset()

    def _inserted(self, placement: Placement) -> None:
        self.inserted = True
        self.inserted_placements.append(placement)

    def _after_insertions(self) -> None:
        pending = self._start_pending or self._marker_pending or self._end_pending
        if self._phase == _BODY and not pending:
            self._phase = _PASS

    # --- events -------------------------------------------------------------------------------

    def _page_info(self) -> PageInfo:
        charset = self._bom_charset or self._declared or self._meta_charset or "utf-8"
        return PageInfo(lang=self._lang, charset=charset, nonce=self._nonce)

    def _do_render(self) -> None:
        page = self._page_info()
        self._rendering = True
        result = self._render(page)
        self._rendering = False
        for placement in _PLACEMENTS:
            text = result.get(placement)
            if not text:
                continue
            try:
                encoded = str(text).encode(page.charset, "xmlcharrefreplace")
            except (LookupError, UnicodeError, ValueError):
                encoded = str(text).encode("ascii", "xmlcharrefreplace")
            self._snippets[placement] = encoded

    def _body_start(self, data: bytes, at: int) -> None:
        """The body starts at ``data[at]``."""
        self._route(data, at)
        self._do_render()
        snippets = self._snippets
        if not snippets:
            self.skipped_reason = "nothing to insert"
            self._phase = _PASS
            return
        if "body_start" in snippets:
            if self._frameset_ok:
                self._start_pending = True
            else:
                self._write(snippets["body_start"])
                self._inserted("body_start")
        self._marker_pending = "marker" in snippets
        self._end_pending = "body_end" in snippets
        if self._marker_pending or self._start_pending:
            self._held = bytearray()
            self._marker_at = 0
        self._phase = _BODY
        self._after_insertions()

    def _body_end_tag(self, data: bytes, at: int) -> None:
        """A ``</body>`` that may close the document starts at ``data[at]``."""
        if not self._end_pending:
            return
        self._route(data, at)
        if self._end_at is not None:  # an earlier </body> was not the last one
            self._end_at = None
            self._release()
        if self._held is None:
            self._held = bytearray()
        self._end_at = len(self._held)

    def _content(self, data: bytes, at: int) -> None:
        """Real content at ``data[at]``: a held ``</body>`` was not the last one."""
        if self._end_at is None:
            return
        self._route(data, at)
        self._end_at = None
        self._release()

    def _marker(self, data: bytes, end: int) -> None:
        if self._template or self._foreign or self._select:
            return
        self._route(data, end)
        if not self._marker_pending:  # routing may have overflowed the hold
            return
        self._write(self._snippets["marker"])
        self._marker_pending = False
        self._inserted("marker")
        self._release()
        self._after_insertions()

    def _end_of_stream(self) -> None:
        if self._phase == _PASS:
            if not self.inserted and self.skipped_reason is None:
                self.skipped_reason = self._skip_reason
            return
        safe = self._state == _DATA and self._template == 0
        if self._phase == _PRE:
            if not safe:
                self.skipped_reason = "no safe insertion point"
                return
            self._body_start(b"", 0)
            if self._phase == _PASS:
                return
        if self._held is not None:
            if self._end_at is not None:
                self._held[self._end_at : self._end_at] = self._snippets["body_end"]
                self._end_at = None
                self._end_pending = False
                self._inserted("body_end")
            self._resolve_start()
            self._marker_fallback()
            if self._held is not None:
                self._out.append(bytes(self._held))
                self._held = None
        if self._end_pending:
            self._end_pending = False
            if safe:
                # Close what would turn the notice into foreign content or drop it.
                closers = b"".join(b"</" + name + b">" for name in reversed(self._foreign))
                if self._select:
                    closers += b"</select>"
                self._out.append(closers + self._snippets["body_end"])
                self._inserted("body_end")
            else:
                self.skipped_reason = "no safe insertion point for body_end"
        self._phase = _PASS

    # --- scanner ------------------------------------------------------------------------------

    def _scan(self, data: bytes, final: bool) -> int:
        """Scan ``data``; return how much of it was consumed (the rest is an unfinished token)."""
        n = len(data)
        i = 0
        if not self._started:
            if not final and n < 3 and (_UTF8_BOM.startswith(data) or data in (b"\xfe", b"\xff")):
                return 0
            self._started = True
            if data.startswith(_UTF8_BOM):
                self._bom_charset = "utf-8"
                i = 3
            elif data.startswith(_UTF16_BOMS):
                self._skip_reason = self._skip_reason or "unsupported encoding"
                self._phase = _PASS
        while i < n:
            if self._phase == _PASS:
                return n
            state = self._state
            if state == _DATA:
                if self._phase == _BODY and self._end_at is None and not self._frameset_ok:
                    boring = (_BORING_IN_SELECT if self._select else _BORING)[
                        not self._marker_pending
                    ]
                    i = boring.match(data, i).end()  # type: ignore[union-attr]
                    if i >= n:
                        return n
                j = data.find(b"<", i)
                if j < 0:
                    j = n
                if j > i:
                    self._text(data, i, j)
                    i = j
                    continue
                end = self._markup(data, i, final)
                if end < 0:
                    return i
                i = end
            elif state == _SCRIPT:
                i = self._scan_script(data, i, final)
                if self._state == _SCRIPT:
                    return i
            elif state == _RAW:
                m = _RAW_END[self._raw_name].search(data, i)
                if m is None:
                    return n if final else max(i, n - len(self._raw_name) - 2)
                self._state = _DATA
                i = m.start()
            elif state == _PLAINTEXT:
                return n
            elif state == _COMMENT:
                m = _COMMENT_END.search(data, i)
                if m is None:
                    return n if final else max(i, n - 3)
                self._state = _DATA
                i = m.end()
            elif state == _BOGUS:
                k = data.find(b">", i)
                if k < 0:
                    return n
                self._state = _DATA
                i = k + 1
            elif state == _CDATA:
                k = data.find(b"]]>", i)
                if k < 0:
                    return n if final else max(i, n - 2)
                self._state = _DATA
                i = k + 3
            else:
                i = self._scan_long_tag(data, i)
        return n

    def _text(self, data: bytes, i: int, j: int) -> None:
        """Character data ``data[i:j]`` in the data state."""
        if self._phase == _PRE:
            if self._template:
                return
            m = _NON_WS.search(data, i, j)
            if m is None:
                return
            self._body_start(data, m.start())
            i = m.start()
        if self._phase != _BODY:
            return
        if self._end_at is not None:
            m = _NON_WS.search(data, i, j)
            if m is not None:
                self._content(data, m.start())
        if self._frameset_ok and _TEXT_NOT_OK.search(data, i, j) is not None:
            self._resolve_start()

    def _markup(self, data: bytes, j: int, final: bool) -> int:
        """Handle the markup starting with ``<`` at ``j``; return its end, or -1 if unfinished."""
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
            if rest == b"<![CDATA[" and self._foreign:
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
            self._text(data, j, j + 1)
            return j + 1
        m = _TAG.match(data, j)
        if m is None:
            if final or n - j > self.max_token:
                return self._start_long_tag(data, j, final)
            return -1
        end = m.end()
        name = m.group(1).lower()
        is_end = c == 0x2F
        tag = data[j:end] if end - j <= self.max_token else None
        self._tag(data, j, end, name, is_end, tag)
        return end

    def _trailing(self, data: bytes, j: int) -> int:
        """A ``<`` or ``</`` ending the document is text; snippets at the end go before it."""
        self._text(data, j, len(data))
        self._trailer = data[j:]
        return len(data)

    def _comment(self, data: bytes, j: int, final: bool) -> int:
        n = len(data)
        if data.startswith(b">", j + 4):
            return j + 5
        if data.startswith(b"->", j + 4):
            return j + 6
        m = _COMMENT_END.search(data, j + 4)
        if m is None:
            return self._unfinished(data, j, final, _COMMENT, n - 3)
        end = m.end()
        if (
            self._phase == _BODY
            and self._marker_pending
            and end - j <= self.max_token
            and data[j + 4 : m.start()].strip(_WS) == b"compliance:notices"
        ):
            self._marker(data, end)
        return end

    def _bogus(self, data: bytes, j: int, final: bool) -> int:
        k = data.find(b">", j + 2)
        if k >= 0:
            return k + 1
        return self._unfinished(data, j, final, _BOGUS, len(data))

    def _unfinished(self, data: bytes, j: int, final: bool, state: int, safe_upto: int) -> int:
        """An unfinished comment-like token at ``j``: wait for more, or stream it when long."""
        n = len(data)
        if final or n - j > self.max_token:
            self._state = state
            return n if final else max(j, safe_upto)
        return -1

    def _tag(
        self, data: bytes, j: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        """A complete tag ``data[j:end]``; ``tag`` is its bytes unless it is too long to read.

        A tag too long to read is treated exactly as :meth:`_start_long_tag` and
        :meth:`_long_tag_done` treat it, so that chunking cannot change the result.
        """
        if self._phase == _PRE and not self._template:
            if is_end:
                if name in (b"body", b"html", b"br"):
                    self._body_start(data, j)
            elif name == b"body":
                self._body_start(data, end)
                return
            elif name == b"frameset":
                self._frameset()
                return
            elif name in _HEAD_ELEMENTS:
                if tag is not None:
                    self._head_tag(name, tag)
            else:
                self._body_start(data, j)
            if self._phase == _PASS:
                return
        candidate = (
            is_end
            and name == b"body"
            and self._phase == _BODY
            and tag is not None
            and not (self._template or self._foreign or self._select)
        )
        if candidate:
            self._body_end_tag(data, j)
        elif tag is None or not (is_end and name == b"html"):
            self._content(data, j)
        if self._frameset_ok and self._phase == _BODY:
            self._frameset_flag(name, is_end, tag)
            if self._phase == _PASS:
                return
        self._effects(name, is_end, tag is not None and tag.endswith(b"/>"))

    def _frameset_flag(self, name: bytes, is_end: bool, tag: bytes | None) -> None:
        """Follow the parser's frameset-ok flag while a ``<frameset>`` could replace the body."""
        if is_end:
            if name == b"br":
                self._resolve_start()
        elif name == b"frameset":
            if not self._template:
                self._frameset_document()
        elif name in _FRAMESET_NOT_OK:
            self._resolve_start()
        elif name == b"input":
            kind = _attributes(tag).get(b"type", "") if tag is not None else ""
            if kind.strip().lower() != "hidden":
                self._resolve_start()

    def _frameset(self) -> None:
        self.skipped_reason = "frameset document"
        self._phase = _PASS

    def _effects(self, name: bytes, is_end: bool, self_closing: bool) -> None:
        """How a tag changes the tokenizer state."""
        if is_end:
            if name == b"template":
                if self._template:
                    self._template -= 1
            elif name in (b"svg", b"math") and name in self._foreign:
                while self._foreign.pop() != name:
                    pass
            elif name == b"select":
                self._select = False
            return
        if name == b"select" and not self._foreign:
            self._select = True
        elif name in (b"input", b"keygen", b"textarea"):
            self._select = False
        if name == b"script":
            self._state = _SCRIPT
            self._script = _S_DATA
        elif name in _RAW_ELEMENTS:
            self._state = _RAW
            self._raw_name = name
        elif name == b"plaintext":
            self._state = _PLAINTEXT
        elif name == b"template":
            self._template += 1
        elif name in (b"svg", b"math") and not self_closing:
            self._foreign.append(name)

    def _head_tag(self, name: bytes, tag: bytes) -> None:
        """Collect language, charset and nonce from a head element."""
        if name == b"html":
            attrs = _attributes(tag)
            if self._lang is None:
                lang = attrs.get(b"lang") or attrs.get(b"xml:lang")
                if lang and lang.strip():
                    self._lang = lang.strip()
        elif name == b"meta":
            if self._meta_charset is not None:
                return
            attrs = _attributes(tag)
            label = attrs.get(b"charset")
            if label is None and attrs.get(b"http-equiv", "").strip().lower() == "content-type":
                m = _META_CHARSET.search(attrs.get(b"content", "").encode("utf-8", "replace"))
                if m is not None:
                    label = m.group(1).decode("latin-1")
            if label is not None:
                codec = _lookup_codec(label)
                if codec is not None:
                    # A page read as ASCII cannot really be UTF-16: browsers use UTF-8 then.
                    self._meta_charset = codec or "utf-8"
        elif name in (b"script", b"style", b"link") and self._nonce is None:
            nonce = _attributes(tag).get(b"nonce")
            if nonce:
                self._nonce = nonce

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
                    self._state = _DATA
                    return m.start()
            else:  # "<script" while escaped
                self._script = _S_DOUBLE
                i = m.end()

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
        self._state = _LONG_TAG
        if self._phase == _PRE and not self._template and not final:
            if is_end:
                if name in (b"body", b"html", b"br"):
                    self._body_start(data, j)
            elif name is None or name not in _HEAD_ELEMENTS | {b"body", b"frameset"}:
                self._body_start(data, j)
        self._content(data, j)
        return self._scan_long_tag(data, start)

    def _scan_long_tag(self, data: bytes, i: int) -> int:
        n = len(data)
        st = self._tag_state
        while True:
            if st in (_T_DQ, _T_SQ):
                k = data.find(b'"' if st == _T_DQ else b"'", i)
                if k < 0:
                    i = n
                    break
                i = k + 1
                st = _T_BEFORE
                continue
            i = _SKIP[st].match(data, i).end()  # type: ignore[union-attr]
            if i >= n:
                break
            c = data[i]
            i += 1
            if c == 0x3E:  # ">"
                self._state = _DATA
                self._long_tag_done(data, i)
                return i
            ws = c in _WS
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
        self._tag_state = st
        return i

    def _long_tag_done(self, data: bytes, end: int) -> None:
        name = self._tag_name
        if name is None:
            return
        if self._phase == _PRE and not self._template and not self._tag_end:
            if name == b"body":
                self._body_start(data, end)
                return
            if name == b"frameset":
                self._frameset()
                return
        if self._frameset_ok and self._phase == _BODY:
            self._frameset_flag(name, self._tag_end, None)
            if self._phase == _PASS:
                return
        self._effects(name, self._tag_end, False)

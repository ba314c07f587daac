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
    Right after the first ``<h1>`` element of the body closes (its ``</h1>``, or another
    heading's end tag, or before a heading start tag that closes it; not one the parser
    ignores, such as a ``</h1>`` with an ``<object>`` or ``<table>`` still open in the
    heading); held from the body start until then. Without an ``<h1>``, or when the hold
    limit is hit, at the body start.
``marker``
    Right after the first ``<!-- compliance:notices -->`` comment of the body (whitespace
    inside it does not matter); held from the body start until then. Without a marker, or
    when the hold limit is hit, at the body start.
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

from typing import ClassVar, Final, Protocol, TypeVar

from compliance.html.tokenizer import VOID, Tokenizer, Watch

__all__ = [
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
_TABLE_SCOPE: Final = frozenset((b"table",))
# Followed by the tokenizer (foreign content, template contents, a select), not kept here.
_CONTEXTS: Final = frozenset(b"svg math template select".split())


_NOTHING: Final = Watch.of()
_EVERYTHING: Final = Watch.of(everything=True)
_H1: Final = Watch.of((b"h1",))
_COMMENTS: Final = Watch.of(comments=True)
# Elements a notice at the very end must not be left in: it would be hidden (fallback
# content, a closed <details>, a <dialog> not shown...), or, for a table, moved before it.
# With one of them open a </body> is ignored or closes nothing, so the notice goes at the
# very end, after their end tags.
_ENCLOSING: Final = frozenset(
    b"table applet marquee object details dialog video audio canvas datalist progress meter".split()
)
_BODY_END: Final = Watch.of(_ENCLOSING | {b"plaintext"}, _ENCLOSING | {b"body"})
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


class Host(Protocol):
    """What a strategy may ask of the injector. Positions index the current ``data``."""

    tokenizer: Tokenizer

    def hold_at(self, data: bytes, at: int) -> int:
        """Hold the output from ``data[at]`` on; return that point's offset in the held
        bytes (a place to :meth:`put` a snippet later)."""

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


class _AtBodyStartUnlessFound(Strategy):
    """Held from the body start, where the snippet goes if its place is never found."""

    def begin(self, data: bytes, at: int, frameset_ok: bool) -> None:
        self.offset = self.host.hold_at(data, at)

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

    def watch(self) -> Watch:
        return _H1 if self._open is None else _EVERYTHING

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.host.tokenizer
        stack = self._open
        if stack is None:
            if name == b"h1" and not is_end and tok.in_html_body:
                self._open = [b"h1"]
            return
        if tok.foreign or tok.template or tok.select:
            return  # inside the heading, but not HTML content of it (a </h1> there is not)
        if is_end:
            self._end_tag(data, end, name, stack)
            return
        if name in _HEADINGS:
            if len(stack) == 1:
                # A heading start tag closes the current heading: close it first ourselves
                # (the same tree), or the notice would go inside it.
                self._found(data, start, b"</h1>")
            elif stack[-1] in _HEADINGS:
                stack.pop()
            else:
                stack.append(name)
        elif name in _CLOSES_CELL and b"table" not in stack:
            pass  # not content of the heading (ignored, or it closes a cell around it)
        elif name not in VOID and name not in _CONTEXTS:
            if len(stack) >= 512:  # nested too deep to follow: give up, at the body start
                self.overflow()
                return
            stack.append(name)

    def _end_tag(self, data: bytes, end: int, name: bytes, stack: list[bytes]) -> None:
        """An end tag inside the heading: close what it closes, as the tree builder does."""
        if name in _HEADINGS:
            # Closes the innermost open heading, unless it is out of scope.
            for k in range(len(stack) - 1, -1, -1):
                if stack[k] in _HEADINGS:
                    break
                if stack[k] in _SCOPE:
                    return  # ignored: <h1><object></h1> leaves the heading open
            if k == 0:
                self._found(data, end)
            else:
                del stack[k:]
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
                    del stack[k:]
                return
            if stack[k] in stops:
                return  # out of scope: ignored


@register
class Marker(_AtBodyStartUnlessFound):
    name = "marker"

    def watch(self) -> Watch:
        return _COMMENTS

    def on_comment(self, data: bytes, start: int, end: int) -> None:
        stop = end - 4 if data.endswith(b"--!>", start, end) else end - 3
        if data[start + 4 : stop].strip(_WS) != b"compliance:notices":
            return
        if self.host.tokenizer.in_html_body:
            self._found(data, end)


@register
class BodyEnd(Strategy):
    name = "body_end"

    def __init__(self, host: Host, snippet: bytes) -> None:
        super().__init__(host, snippet)
        self._enclosing: list[bytes] = []  # those of _ENCLOSING open, outermost first

    def watch(self) -> Watch:
        return _BODY_END if self.offset is None else _EVERYTHING

    def on_tag(
        self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        tok = self.host.tokenizer
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
        closers = b"".join(b"</" + name + b">" for name, _kind in reversed(tok.foreign))
        if tok.select:
            closers += b"</select>"
        closers += b"".join(b"</" + name + b">" for name in reversed(self._enclosing))
        return closers + self.snippet

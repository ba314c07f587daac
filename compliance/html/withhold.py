"""Withholding: what to remove from a page, and where a removed element ends.

A :class:`Withhold` names what goes (through a :data:`Select`, usually made by
:func:`selector`): elements whose ``data-compliance-withhold`` attribute
holds one of a rule's tokens (space-separated, like ``class``), and the elements of
:data:`EMBED_ELEMENTS` whose URL (``src``, ``data``, ``srcset`` and ``imagesrcset`` entries,
a video's ``poster``, the ``href`` of a ``<link>``, a ``<base>`` or an SVG ``<image>``,
``<script>`` or ``<feImage>``, a ``<meta>`` refresh) is on a rule's hosts, and elements whose
``style`` attribute (or ``<style>`` text, read by the injector), SVG presentation attribute
(``mask="url(...)"``) or SVG animation value (``<set attributeName=href to=...>``) loads from
one. Each goes
with everything inside it; a placeholder (HTML from :attr:`Withhold.placeholder`, by rule
id) takes its place.

The injector (:class:`compliance.html.injector.Injector`) does the streaming; this module
decides, token by token, where a removed element ends, the way an HTML parser builds the tree:
void elements, nested elements of the same name, the end tags the standard lets a page leave
out (``<p>``, ``<li>``, ``<dd>``/``<dt>``, ``<option>``, table parts, headings), raw text and
foreign content (followed by the tokenizer), an element left open at the end of the document
(the rest of the document is removed). Where the answer would depend on elements outside the
removed one that a streaming editor does not track (an end tag that may close an ancestor, a
formatting element that the parser would re-open after it), the element's end is unknown:
:class:`WithholdUncertain` is raised rather than removing half an element.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from compliance.html.tokenizer import (
    VOID,
    Tokenizer,
    attributes,
    entry_kinds,
    entry_names,
    innermost,
)
from compliance.http import data_url, refresh_urls, srcset_urls, url_host

if TYPE_CHECKING:
    from compliance.html.injector import PageInfo
    from compliance.html.placements import Placement

__all__ = [
    "EMBED_ELEMENTS",
    "MARK_ATTRIBUTE",
    "Select",
    "Withhold",
    "WithholdUncertain",
    "Withholder",
    "selector",
    "url_host",
]

MARK_ATTRIBUTE: Final = b"data-compliance-withhold"
"""The attribute whose tokens mark an element for withholding."""

EMBED_ELEMENTS: Final = frozenset(
    b"iframe frame embed object video audio source track img image input script link base"
    b" feimage meta body table thead tbody tfoot tr td th".split()
)
"""Elements removed when a URL the browser loads (or resolves others against, ``<base>``, or
goes to, ``<meta http-equiv=refresh>``) is on a withheld host (``image`` is an ``img`` to
the HTML parser, an image in SVG)."""
_SRCDOC_DEPTH: Final = 3
"""Documents in ``<iframe srcdoc>`` and ``data:`` URLs read within one another; deeper is
uncertain."""
_DATA_READ: Final = frozenset(
    (
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/css",
    )
)
"""The media types of ``data:`` URLs read for what they load: documents (an ``<iframe>``,
an ``<object>``), style sheets (a ``<link>``, ``@import``)."""

_URL_ATTRIBUTES: Final = (
    b"src",
    b"data",
    b"srcset",
    b"imagesrcset",
    b"poster",
    b"background",  # an image on <body> and table parts
    b"href",
    b"xlink:href",
)
_URL_LISTS: Final = frozenset((b"srcset", b"imagesrcset"))
PRESENTATION_URLS: Final = (
    b"clip-path",
    b"cursor",
    b"fill",
    b"filter",
    b"marker-end",
    b"marker-mid",
    b"marker-start",
    b"mask",
    b"stroke",
)
"""SVG presentation attributes whose value (CSS) may hold a ``url(...)`` a browser loads
(a mask, a cursor, a filter's image), on any SVG element."""
ANIMATIONS: Final = frozenset(b"animate animatecolor animatemotion animatetransform set".split())
"""SVG animation elements: their ``to``, ``from``, ``by`` and ``values`` set the attribute
``attributeName`` names (an ``href``, a presentation attribute) on the element animated."""
_ANIMATION_VALUES: Final = (b"to", b"from", b"by", b"values")
_ASCII_SPACE: Final = "\t\n\f\r "

Select = Callable[[bytes, Mapping[bytes, str]], "str | None"]
"""Decides from a start tag's name and attributes which rule (id) removes it, if any."""


def selector(
    marks: Mapping[str, str],
    embed_host: Callable[[str], str | None] | None = None,
    *,
    _depth: int = 0,
) -> Select:
    """The usual :data:`Select`: ``marks`` maps tokens of ``data-compliance-withhold`` to rule
    ids; ``embed_host`` gives the rule id (or ``None``) for the host of an embed's URL. An
    ``<iframe srcdoc>`` goes with the first rule that withholds something in its document,
    and so does an embed whose ``data:`` URL holds a document or a style sheet."""
    tokens = dict(marks)
    inner: list[Select] = []  # the selector for srcdoc documents, made when first needed

    def select(name: bytes, attrs: Mapping[bytes, str]) -> str | None:
        mark = attrs.get(MARK_ATTRIBUTE)
        if mark is not None and tokens:
            for token in mark.split():
                rule = tokens.get(token)
                if rule is not None:
                    return rule
        if embed_host is not None:
            for url in _urls(name, attrs):
                host = url_host(url)
                if host is not None:
                    rule = embed_host(host)
                    if rule is not None:
                        return rule
                elif (data := data_url(url, _DATA_READ)) is not None:
                    # A document or a style sheet in the URL itself loads what it names.
                    kind, content = data
                    if kind == "text/css":
                        rule = nested()(b"style", {b"style": content})
                    else:
                        rule = _withheld_in(content, nested())
                    if rule is not None:
                        return rule
        document = attrs.get(b"srcdoc") if name == b"iframe" else None
        if document is not None:
            return _withheld_in(document, nested())
        return None

    def nested() -> Select:
        """The selector for the documents and style sheets inside this one's."""
        if _depth >= _SRCDOC_DEPTH:
            raise Ambiguous("iframe srcdoc or data: documents nested too deep to read")
        if not inner:
            inner.append(selector(marks, embed_host, _depth=_depth + 1))
        return inner[0]

    return select


def _withheld_in(document: str, select: Select) -> str | None:
    """The first rule that withholds something in an ``<iframe srcdoc>`` document, read as
    a page of its own; uncertain when it cannot be read to the end."""
    found: list[str] = []

    def recording(name: bytes, attrs: Mapping[bytes, str]) -> str | None:
        rule = select(name, attrs)
        if rule is not None:
            found.append(rule)
        return rule

    reader = Withholder(recording, charset="utf-8")
    try:
        reader.feed(document.encode("utf-8", "surrogatepass"))
        reader.finish()
    except WithholdUncertain as exc:
        if not found:
            raise Ambiguous(
                f"an iframe's srcdoc or data: document cannot be read ({exc})"
            ) from None
    return found[0] if found else None


def _urls(name: bytes, attrs: Mapping[bytes, str]) -> list[str]:
    """The URLs the element ``name`` with ``attrs`` loads from (or may: every reading that
    can name a host): its URL attributes when it is one of :data:`EMBED_ELEMENTS` (an
    ``<a href>`` loads nothing); on any element the CSS of its ``style`` attribute and of
    the SVG presentation attributes that take a URL (:data:`PRESENTATION_URLS`); the values
    an SVG animation (:data:`ANIMATIONS`) gives the attribute it animates."""
    urls: list[str] = []
    if name in EMBED_ELEMENTS:
        for key in _URL_ATTRIBUTES:
            value = attrs.get(key)
            if value is None:
                continue
            if key in _URL_LISTS:
                urls += srcset_urls(value)
            else:
                urls.append(value)
        refresh = attrs.get(b"content") if b"http-equiv" in attrs else None
        if refresh is not None and attrs[b"http-equiv"].strip(_ASCII_SPACE).lower() == "refresh":
            urls += refresh_urls(refresh)
    css = attrs.get(b"style")  # a style attribute, or (from the injector) a <style>'s text
    if css is not None:
        urls += _css_urls(css)
    for key in PRESENTATION_URLS:
        value = attrs.get(key)
        if value is not None and "(" in value:
            urls += _css_urls(value)
    if name in ANIMATIONS:
        # Whatever attribute is animated: each value as a URL (an href) and as CSS (a
        # presentation attribute); ";" separates the values of "values".
        for key in _ANIMATION_VALUES:
            value = attrs.get(key)
            if value is not None:
                urls.append(value)
                if ";" in value:
                    urls += value.split(";")
                urls += _css_urls(value)
    return urls


_CSS_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})[\t\n ]?|(\n)|(.))", re.S)
_CSS_NEWLINES = re.compile(r"\r\n?|\f")  # (CSS reads each as a line feed)
# CSS tokens, as CSS Syntax reads them (after its newlines are made "\n"): a comment, a string
# (to its quote or an unescaped newline), or a name (identifier characters and escapes) with
# the "(" after it, if any; between them, only characters that start none of these.
_CSS_ESCAPED = r"\\(?:[0-9A-Fa-f]{1,6}[\t\n ]?|[^\n])"
_CSS_NAME = r"(?:[\w\-\x80-\U0010FFFF]++|" + _CSS_ESCAPED + r")++"
# What no URL can start in, skipped in one match (a name not followed by "(", a "/" that
# opens no comment, a "\\" that escapes nothing, anything else): only comments, strings
# and function names come back to Python, a few per rule instead of one per word.
_CSS_SKIP = r"(?:[^/\"'\\\w\-\x80-\U0010FFFF]++|/(?!\*)|" + _CSS_NAME + r"(?!\()|\\(?=\n|\Z))*+"
_CSS_SKIPPED = re.compile(_CSS_SKIP, re.S)
_CSS_TOKEN = re.compile(
    _CSS_SKIP + r"(?:(?P<comment>/\*.*?(?:\*/|\Z))"
    r"|(?P<string>\"(?:[^\"\\\n]++|\\.)*+\"?|'(?:[^'\\\n]++|\\.)*+'?)"
    r"|(?P<name>" + _CSS_NAME + r")(?P<open>\())",
    re.S,
)
# After "url(": the unquoted URL, up to spaces and ")"; a quote, "(" or a space before the
# end makes it a bad URL, read to ")" (a quote there starts no string).
_CSS_URL = re.compile(
    r"[\t\n ]*+(?![\"'])(?P<url>(?:[^\"'()\\\t\n ]++|" + _CSS_ESCAPED + r")*+)[\t\n ]*+"
    r"(?:\)|\Z|(?:[^)\\]++|\\.?)*+\)?)",
    re.S,
)


def _css_urls(css: str) -> list[str]:
    r"""The strings and unquoted ``url(...)`` URLs of CSS (escapes decoded), read as CSS
    reads them: each ``url(...)``, ``@import "..."`` and ``image-set("...")`` among them
    (and strings that are not URLs, which name no host). A string keeps its spaces, tabs and
    newlines (escaped or not): the URL parser drops tabs and newlines. Comments are skipped.

    >>> _css_urls("a{background:url( 'https://r\\74 .com/x' )} /* url(//b) */ u\\72l(//c/d)")
    ['https://rt.com/x', '//c/d']
    >>> _css_urls('@import "http://rt\\9 .com/a.css";')
    ['http://rt\t.com/a.css']
    """
    if "\r" in css or "\f" in css:
        css = _CSS_NEWLINES.sub("\n", css)
    urls: list[str] = []
    at = 0
    while True:
        token = _CSS_TOKEN.match(css, at)
        if token is None:  # nothing but what cannot load is left (or one odd character)
            at = _CSS_SKIPPED.match(css, at).end() + 1  # type: ignore[union-attr]
            if at > len(css):
                break
            continue
        at = token.end()
        string = token.group("string")
        if string is not None:
            text = string[1:-1] if len(string) > 1 and string[-1] == string[0] else string[1:]
            urls.append(_CSS_ESCAPE.sub(_css_unescape, text) if "\\" in text else text)
        elif token.group("open") is not None:
            name = token.group("name")
            if "\\" in name:
                name = _CSS_ESCAPE.sub(_css_unescape, name)
            # (url("...") is a function with a string: no match here, the string follows)
            found = _CSS_URL.match(css, at) if name.lower() == "url" else None
            if found is not None:
                at = found.end()
                url = found.group("url")
                urls.append(_CSS_ESCAPE.sub(_css_unescape, url) if "\\" in url else url)
    return urls


def _css_unescape(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        code = int(m.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
    return "" if m.group(2) is not None else m.group(3)


@dataclass(frozen=True)
class Withhold:
    """What the editor removes (:attr:`select`), and what it puts in place of each removed
    element (:attr:`placeholder`, HTML by rule id; ``None``: nothing)."""

    select: Select
    placeholder: Callable[[str], str | None] = field(default=lambda rule_id: None)
    marks: bool = True
    """Whether elements may be marked (every start tag's attributes must then be read)."""
    embeds: bool = True
    """Whether embeds may be removed by host."""
    host_parts: frozenset[bytes] | None = None
    """Lower-case ASCII bytes one of which every host an embed is removed for holds (the
    longest literal run of each of the host globs), so that an embed whose tag holds none of
    them, nor anything that may write a host otherwise than as it reads (a character
    reference, a percent sign, a tab or line break, a non-ASCII byte, a ``data:`` URL),
    need not have its URLs read; ``None``: every one is read."""

    @classmethod
    def of(
        cls,
        marks: Mapping[str, str],
        embed_host: Callable[[str], str | None] | None = None,
        placeholder: Callable[[str], str | None] = lambda rule_id: None,
        *,
        hosts: Iterable[str] | None = None,
    ) -> Withhold:
        """From tokens (to rule ids) and an embed host matcher (to a rule id or ``None``);
        ``hosts``: the host globs the matcher matches (see :attr:`host_parts`), if known."""
        return cls(
            selector(marks, embed_host),
            placeholder,
            bool(marks),
            embed_host is not None,
            None if hosts is None else host_parts(hosts),
        )

    def may_name_a_host(self, tag: bytes) -> bool:
        """Whether the URLs of the start tag ``tag`` may name a host one of
        :attr:`host_parts` is in: at the speed of ``bytes.find``, before they are read."""
        parts = self.host_parts
        if parts is None:
            return True
        low = tag.lower()
        return (
            any(part in low for part in parts)
            or _DATA_URL in low
            or _MAY_HIDE_A_HOST.search(tag) is not None
        )


# Where a host may be written otherwise than it reads: a character reference, percent
# encoding, a tab or line break (a URL parser drops them), a non-ASCII character (IDNA maps
# full-width letters and dots); and a data: URL (a document in it, in base64 maybe), looked
# for in lower case apart (one character class is searched three times as fast).
_MAY_HIDE_A_HOST: Final = re.compile(rb"[&%\t\n\r\x80-\xff]")
_DATA_URL: Final = b"data:"
_IP_LIKE = re.compile(r"[0-9.*?]*|.*[\[:].*")
MAX_HOST_PARTS: Final = 16
"""More globs than this and every URL is read: looking for each glob's part in each tag
(about half a microsecond each here) would cost what reading its URLs costs."""


def host_parts(globs: Iterable[str]) -> frozenset[bytes] | None:
    """The longest literal run of each host glob (``*.rt.com``: ``.rt.com``), lower case:
    every host a glob matches holds its run. ``None`` where that tells nothing: a glob of
    nothing but wildcards, an IP address (a URL may write an IPv4 address in other bases), a
    non-ASCII one (a page writes its host in punycode, or the other way round); or where
    there are more than :data:`MAX_HOST_PARTS` of them."""
    parts = set()
    for glob in globs:
        glob = glob.strip().lower().rstrip(".")
        if not glob.isascii() or _IP_LIKE.fullmatch(glob):
            return None
        part = max(re.split(r"[*?]+", glob), key=len)
        if not part.strip("."):
            return None
        parts.add(part.encode("ascii"))
    return frozenset(parts) if len(parts) <= MAX_HOST_PARTS else None


class WithholdUncertain(Exception):
    """The editor cannot tell where a removed element ends: the page must go through the
    fail mode (closed: an error page; open: the document is cut before the element).

    ``output`` holds the bytes of the failing call that may still be sent, up to the cut;
    the editor's ``cut()`` returns the bytes that end the document cleanly after them.
    """

    def __init__(self, cause: str, output: bytes = b"") -> None:
        super().__init__(cause)
        self.cause = cause
        self.output = output


class Withholder:
    """The streaming editor for withholding alone (no notices): removes what ``select``
    picks, with ``placeholder(rule_id)`` in its place. Output identical however the body is
    chunked; :meth:`feed` raises :class:`WithholdUncertain` rather than half remove an
    element (then :meth:`cut` ends the document cleanly). With notices as well, give a
    :class:`Withhold` to :class:`compliance.html.injector.Injector` instead: one pass.

    >>> w = Withholder(selector({"order-7": "r1"}), lambda rule: None)
    >>> w.feed(b'<p>a</p><div data-compliance-withhold="order-7">b<p>c</div>') + w.finish()
    b'<p>a</p>'
    """

    def __init__(
        self,
        select: Select,
        placeholder: Callable[[str], str | None] = lambda rule_id: None,
        *,
        charset: str | None = None,
        max_hold: int = 256 * 1024,
    ) -> None:
        from compliance.html.injector import Injector  # the injector imports this module

        self._injector = Injector(
            _nothing, charset=charset, max_hold=max_hold, withhold=Withhold(select, placeholder)
        )

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return the bytes that may be sent now."""
        return self._injector.feed(chunk)

    def finish(self) -> bytes:
        """The end of the body: return everything still held."""
        return self._injector.finish()

    def cut(self) -> bytes:
        """After :class:`WithholdUncertain`: the bytes that end the document cleanly."""
        return self._injector.cut()

    @property
    def withheld(self) -> list[str]:
        """Rule ids of the elements removed so far."""
        return self._injector.withheld

    @property
    def skip_reason(self) -> str | None:
        """Why the page cannot be edited at all (an encoding that is not ASCII-compatible)."""
        return self._injector.skip_reason

    @property
    def _tail(self) -> bytes:
        return self._injector._tail


def _nothing(page: PageInfo) -> Mapping[Placement, str]:
    return {}


class Ambiguous(Exception):
    """Raised by :class:`Extent` when the element's end depends on what it cannot see."""


# --- the standard's element categories ------------------------------------------------------

_SPECIAL: Final = frozenset(
    b"address applet area article aside base basefont bgsound blockquote body br button caption"
    b" center col colgroup dd details dialog dir div dl dt embed fieldset figcaption figure"
    b" footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html iframe img input"
    b" keygen li link listing main marquee menu meta nav noembed noframes noscript object ol p"
    b" param plaintext pre script search section select source style summary table tbody td"
    b" template textarea tfoot th thead title tr track ul wbr xmp".split()
)
_SCOPE: Final = frozenset(b"applet caption html table td th marquee object template".split())
_FORMATTING: Final = frozenset(b"a b big code em font i nobr s small strike strong tt u".split())
_MARKERS: Final = frozenset(b"applet marquee object td th caption template".split())
_HEADINGS: Final = frozenset(b"h1 h2 h3 h4 h5 h6".split())
# Start tags that close an open <p> (when one is in button scope).
_CLOSES_P: Final = frozenset(
    b"address article aside blockquote center details dialog dir div dl fieldset figcaption"
    b" figure footer header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5"
    b" h6 pre listing form plaintext table hr xmp li dd dt".split()
)
# End tags closing the innermost element of that name in scope, with what is open above it.
_BLOCK_ENDS: Final = frozenset(
    b"address article aside blockquote button center details dialog dir div dl fieldset"
    b" figcaption figure footer header hgroup listing main menu nav ol pre search section"
    b" summary ul applet marquee object form table caption colgroup tbody tfoot thead tr td th"
    b" select template".split()
)
_TABLE_PARTS: Final = frozenset(b"caption colgroup col tbody thead tfoot tr td th".split())
_TABLE_CONTEXT: Final = frozenset(b"table tbody thead tfoot tr".split())
_TABLE_ENDS_SELECT: Final = frozenset(b"caption table tbody tfoot thead tr td th".split())
# Elements whose end tag may be left out: an end tag of an element that would contain them
# closes them (the page is taken to be nested as its end tags say).
# For table parts only what the parser always creates around them counts (a cell is always
# in a row and a table; which section a row is in is not known here).
_CONTAINED_BY: Final = {
    b"li": frozenset(b"ul ol menu".split()),
    b"dd": frozenset(b"dl".split()),
    b"dt": frozenset(b"dl".split()),
    b"option": frozenset(b"select datalist optgroup".split()),
    b"optgroup": frozenset(b"select datalist".split()),
    b"td": frozenset(b"tr table".split()),
    b"th": frozenset(b"tr table".split()),
    b"tr": frozenset(b"table".split()),
    b"tbody": frozenset(b"table".split()),
    b"thead": frozenset(b"table".split()),
    b"tfoot": frozenset(b"table".split()),
    b"caption": frozenset(b"table".split()),
    b"colgroup": frozenset(b"table".split()),
    b"rb": frozenset(b"ruby".split()),
    b"rt": frozenset(b"ruby".split()),
    b"rp": frozenset(b"ruby".split()),
    b"rtc": frozenset(b"ruby".split()),
}
_P_CONTAINERS: Final = _BLOCK_ENDS | {b"li", b"dd", b"dt"} | _HEADINGS
_SELECT_KEEPS: Final = frozenset(
    b"option optgroup select input keygen textarea script template".split()
)
_MAX_DEPTH: Final = 512

CONTINUE: Final = 0
END_BEFORE: Final = 1  # the element ended just before this token
END_AFTER: Final = 2  # the element ends with this token


class Extent:
    """Follows the elements open inside one removed element, to find where it ends.

    Created at the element's start tag (before the tokenizer applies its effects); fed every
    token up to its end. Raises :class:`Ambiguous` when the end depends on what lies outside.
    """

    def __init__(self, name: bytes, tok: Tokenizer, self_closing: bool) -> None:
        self.tok = tok
        self.name = name
        self.stack: list[bytes] = [name]
        self.fmt: list[bytes | None] = []  # formatting elements opened inside, None = marker
        self.foreign_base = len(tok.foreign)
        self.foreign = tok.in_foreign or (name in (b"svg", b"math") and not tok.select)
        self.in_select = tok.select
        # Whether no <p> can be open in button scope above this element: its own start tag
        # closed any, or it is a scope boundary.
        self.no_outer_p = name in _CLOSES_P or name in _SCOPE or name == b"button"
        self.forms = 1 if name == b"form" else 0  # forms opened inside and not ended
        # An element whose start tag HTML rules read (in HTML or at an integration point)
        # is void by name; an SVG or MathML element by "/>".
        html_rules = not tok.foreign_rules and name not in (b"svg", b"math")
        self.done = name in VOID if html_rules else self_closing

    # -- helpers ----------------------------------------------------------------------------

    def _pop_to(self, k: int) -> int:
        """Pop the stack down to (and including) index ``k``; END_AFTER if that is the root."""
        for popped in self.stack[k:]:
            if popped in _MARKERS:
                while self.fmt and self.fmt.pop() is not None:
                    pass
        del self.stack[k:]
        return END_AFTER if k == 0 else CONTINUE

    def _ending(self, result: int) -> int:
        """The element ends: unless formatting elements opened in it would re-open after."""
        if result != CONTINUE:
            if self.forms > (1 if self.name == b"form" and result == END_AFTER else 0):
                raise Ambiguous("a <form> inside the withheld element is still the open form")
            if any(f is not None for f in self.fmt):
                raise Ambiguous("formatting element left open inside the withheld element")
            if self.name in _FORMATTING and result == END_BEFORE:
                raise Ambiguous("withheld formatting element closed implicitly")
        return result

    # The stack is searched with list and set operations (in C), never element by element in
    # Python: it may be _MAX_DEPTH deep, and every end tag inside the element searches it (a
    # Python walk of 500 open elements per stray end tag took a minute for 400 KB).

    def _find_in_scope(self, names: frozenset[bytes], extra: frozenset[bytes] = frozenset()) -> int:
        """Index of the innermost element named in ``names`` in scope, or -1 (scope ends at a
        boundary, plus ``extra``)."""
        k = max(self._index(name) for name in names)
        above = self.stack[k + 1 :]
        if not (_SCOPE.isdisjoint(above) and extra.isdisjoint(above)):
            return -2  # a boundary inside: the search ends here, surely
        return k  # -1: not found, and the search would go on outside

    def _boundary(self) -> bool:
        return not _SCOPE.isdisjoint(self.stack)

    # -- tokens -----------------------------------------------------------------------------

    def text(self, chars: bytes) -> int:
        """Character data inside (END_BEFORE when it ends an open column group that is the
        element itself)."""
        if not chars.strip(b"\t\n\f\r "):
            return CONTINUE
        if self.stack[-1] == b"colgroup" and len(self.tok.foreign) <= self.foreign_base:
            if len(self.stack) == 1:
                return END_BEFORE
            self.stack.pop()
        if self._table_context():
            raise Ambiguous("text a parser moves out of the table (foster parenting)")
        return CONTINUE

    def _table_context(self) -> bool:
        """The current node is a table, table section or row (content there that is not a
        table part is moved before the table by the parser)."""
        return (
            self.stack[-1] in _TABLE_CONTEXT
            and len(self.tok.foreign) <= self.foreign_base
            and not (self.tok.select and b"select" in self.stack)
        )

    def start(self, name: bytes, self_closing: bool, tag: bytes | None = None) -> int:
        tok = self.tok
        if self.foreign:
            if len(tok.foreign) <= self.foreign_base:  # a breakout tag closed it
                return END_BEFORE
            return CONTINUE
        stack = self.stack
        if stack[-1] in (b"svg", b"math") and len(tok.foreign) <= self.foreign_base:
            stack.pop()  # the foreign content inside has been closed
        if len(tok.foreign) > self.foreign_base:
            return CONTINUE  # inside foreign content: the tokenizer follows it
        if self.in_select or (b"select" in stack and tok.select):
            return self._select_start(name)
        if len(stack) >= _MAX_DEPTH:
            raise Ambiguous("elements nested too deep inside the withheld element")
        if stack[-1] == b"colgroup" and name not in (b"col", b"template"):
            if len(stack) == 1:
                return self._ending(END_BEFORE)
            stack.pop()  # anything but a column ends a column group
        if self._table_context():
            result = self._table_start(name, tag)
            if result is not None:
                return self._ending(result)
        if name == b"form":
            self.forms += 1
        elif (
            name == b"table"
            and self._find_in_scope(frozenset((b"p",)), frozenset((b"button",))) != -2
        ):
            doctype = (tok.doctype or b"").lower().split()
            if tok.doctype is None:
                pass  # quirks mode: a table does not close a <p>
            elif doctype in ([b"<!doctype", b"html>"], [b"<!doctype", b"html", b">"]):
                if self._close_p(name) == END_BEFORE:
                    return self._ending(END_BEFORE)
            else:
                raise Ambiguous("whether <table> closes a <p> depends on the DOCTYPE")
        if (
            name in (b"dialog", b"search")
            and self._find_in_scope(frozenset((b"p",)), frozenset((b"button",))) != -2
            and not (self.no_outer_p and self._index(b"p") < 0)
        ):
            # The standard closes a <p> here, html5lib 1.1 (and older browsers) do not.
            raise Ambiguous(f"<{name.decode()}> inside a <p> is read differently by parsers")
        result = self._implied_by_start(name)
        if result != CONTINUE:
            return self._ending(result)
        if len(self.fmt) >= _MAX_DEPTH:
            raise Ambiguous("too many formatting elements inside the withheld element")
        if name in _FORMATTING:
            self.fmt.append(name)
        elif name in _MARKERS:
            self.fmt.append(None)
        if name not in VOID and not (name in (b"svg", b"math") and self_closing):
            stack.append(name)
        return CONTINUE

    def _table_start(self, name: bytes, tag: bytes | None) -> int | None:
        """A start tag where the current node is a table, section or row: ``None`` when it
        is read as anywhere else."""
        stack = self.stack
        if name in _TABLE_PARTS or name in (b"script", b"style", b"template"):
            return None
        if name == b"table":
            k = self._index(b"table")
            if k == 0 or (k < 0 and self.name in _TABLE_PARTS):
                return END_BEFORE  # a table start tag here ends the open table first
            if k > 0:
                self._pop_to(k)
            stack.append(name)
            return CONTINUE
        if name == b"form":
            self.forms += 1  # inserted and popped at once, but still the open form
            return CONTINUE
        if name == b"input" and tag is not None:
            kind = attributes(tag).get(b"type", "")
            if kind.lower() == "hidden":  # the standard compares without stripping
                return CONTINUE
        raise Ambiguous(f"<{name.decode()}> is moved out of the table (foster parenting)")

    def _select_start(self, name: bytes) -> int:
        stack = self.stack
        if name in _TABLE_ENDS_SELECT and self.name == b"select" and b"table" not in stack:
            raise Ambiguous(f"<{name.decode()}> ends the select if it is in a table")
        if name in _TABLE_ENDS_SELECT and (self.in_select or b"table" in stack):
            # In a select in a table these end the select and are read again.
            k = self._index(b"select")
            if k < 0:
                raise Ambiguous(f"<{name.decode()}> may end the select around it")
            self._pop_to(k)
            return self.start(name, False)
        if name not in _SELECT_KEEPS:
            return CONTINUE  # dropped by the parser
        if name in (b"option", b"optgroup"):
            if stack[-1] == b"option":
                if len(stack) == 1:
                    return self._ending(END_BEFORE)
                stack.pop()
            if name == b"optgroup" and stack[-1] == b"optgroup":
                if len(stack) == 1:
                    return self._ending(END_BEFORE)
                stack.pop()
            stack.append(name)
            return CONTINUE
        if name in (b"select", b"input", b"keygen", b"textarea"):
            k = self._index(b"select")
            if k < 0:
                if self.in_select and self.name in (b"option", b"optgroup"):
                    return self._ending(END_BEFORE)  # the select around it ends
                raise Ambiguous("select ended around the withheld element")
            if k == 0:
                # <select> here is read as its end tag (part of the element); the others end
                # the select and are read again after it.
                return self._ending(END_AFTER if name == b"select" else END_BEFORE)
            self._pop_to(k)
            if name == b"textarea":
                stack.append(name)
            return CONTINUE
        if name not in VOID:
            stack.append(name)
        return CONTINUE

    def _index(self, name: bytes) -> int:
        """Index of the innermost open element named ``name``, or -1."""
        return innermost(self.stack, name)

    def _implied_by_start(self, name: bytes) -> int:
        stack = self.stack
        root = self.name
        # Table parts: a new cell, row or section ends the one open.
        if name in _TABLE_PARTS:
            result = self._table_part(name)
            if result != CONTINUE:
                return result
        if name == b"li" or name in (b"dd", b"dt"):
            targets = {b"li"} if name == b"li" else {b"dd", b"dt"}
            for k in range(len(stack) - 1, -1, -1):
                node = stack[k]
                if node in targets:
                    if k == 0:
                        return END_BEFORE
                    self._pop_to(k)
                    break
                if node in _SPECIAL and node not in (b"address", b"div", b"p"):
                    break
            else:
                raise Ambiguous(f"<{name.decode()}> may close an element around the withheld one")
        if name in _CLOSES_P and name != b"table" and self._close_p(name) == END_BEFORE:
            return END_BEFORE
        if name in _HEADINGS and stack[-1] in _HEADINGS:
            if len(stack) == 1:
                return END_BEFORE
            stack.pop()
        if name in (b"option", b"optgroup") and stack[-1] == b"option":
            if len(stack) == 1:
                return END_BEFORE
            stack.pop()
        ruby = (b"rb", b"rtc", b"rt", b"rp")
        if name in ruby and root in ruby and (len(stack) == 1 or stack[1:] in ([b"rb"], [b"rt"])):
            return END_BEFORE
        # A <button>, <a> or <nobr> open around this element would be closed by another one
        # inside it; pages do not nest them (it is invalid), and that is assumed here.
        if name in (b"a", b"nobr", b"button"):
            k = self._index(name)
            if k >= 0:
                if not _SPECIAL.isdisjoint(stack[k + 1 :]) and name != b"button":
                    raise Ambiguous(f"<{name.decode()}> inside <{name.decode()}> restructures")
                if k == 0:
                    return END_BEFORE
                self._pop_to(k)
                if name in self.fmt:
                    self.fmt.remove(name)
        return CONTINUE

    def _close_p(self, name: bytes) -> int:
        """A start tag that closes a <p> in button scope."""
        k = self._find_in_scope(frozenset((b"p",)), frozenset((b"button",)))
        if k == 0:
            return END_BEFORE
        if k > 0:
            self._pop_to(k)
        elif k == -1 and not self.no_outer_p:
            raise Ambiguous(f"<{name.decode()}> may close a <p> around the withheld element")
        return CONTINUE

    def _table_part(self, name: bytes) -> int:
        stack = self.stack
        table = self._index(b"table")
        below = stack[table + 1 :] if table >= 0 else stack
        offset = table + 1 if table >= 0 else 0
        cells = {b"td", b"th"}
        rows = {b"tr"}
        sections = {b"tbody", b"thead", b"tfoot"}
        closes: set[bytes] = set()
        if name in cells:
            closes = cells
        elif name in rows:
            closes = cells | rows
        elif name in sections or name in (b"caption", b"colgroup", b"col"):
            closes = cells | rows | sections | {b"caption", b"colgroup"}
        for k, node in enumerate(below):
            if node in closes:
                if offset + k == 0:
                    return END_BEFORE
                self._pop_to(offset + k)
                return CONTINUE
        if table < 0 and self.name in _TABLE_PARTS and self.name in closes:
            return END_BEFORE  # pragma: no cover - found above as the root
        return CONTINUE

    def end(self, name: bytes) -> int:
        tok = self.tok
        if self.foreign:
            k = innermost(entry_names(tok.foreign), name)
            if k >= 0:
                if k < self.foreign_base:
                    # It closes foreign elements around this one as well: it stays.
                    return END_BEFORE
                return END_AFTER if k == self.foreign_base else CONTINUE
            inner = tok.foreign[self.foreign_base :]
            if name in (b"body", b"html") or any(entry_kinds(inner[1:])):
                return CONTINUE
            # HTML rules take it: it closes the element if it names one around it.
            raise Ambiguous(f"</{name.decode()}> may close an element around the withheld one")
        stack = self.stack
        if stack[-1] in (b"svg", b"math") and len(tok.foreign) <= self.foreign_base:
            stack.pop()
        if len(tok.foreign) > self.foreign_base:
            inner = tok.foreign[self.foreign_base :]
            if name in entry_names(inner):
                return CONTINUE  # closes a foreign element (the tokenizer follows it)
            if any(entry_kinds(inner)):  # (kinds other than 0, a foreign element)
                return CONTINUE  # an integration point is in the way: ignored
            # HTML rules take the end tag; the foreign content closes if they close anything.
            saved = stack[:]
            j = max(k for k, n in enumerate(stack) if n in (b"svg", b"math"))
            del stack[j:]
            result = self._html_end(name)
            if result == CONTINUE and stack == saved[:j]:
                stack[:] = saved  # ignored: the foreign content stays open
                return CONTINUE
            del tok.foreign[self.foreign_base :]
            return result
        return self._html_end(name)

    def _html_end(self, name: bytes) -> int:
        """An end tag by the HTML rules (the current node is an HTML element)."""
        tok = self.tok
        stack = self.stack
        if self._table_context() and name in (b"p", b"br"):
            raise Ambiguous(
                f"</{name.decode()}> makes an element the parser moves out of the table"
            )
        if name in (b"body", b"html", b"br"):
            return CONTINUE
        if self.in_select or (b"select" in stack and tok.select):
            if name in _TABLE_ENDS_SELECT:
                k = self._index(name)
                if k < 0:
                    if self.in_select or self.name == b"select":
                        raise Ambiguous(f"</{name.decode()}> may end the select around it")
                    # The select inside ends, and the end tag is read again after it.
                    self._pop_to(self._index(b"select"))
                    return self._html_end(name)
                return self._ending(self._pop_to(k))
            if name in (b"option", b"optgroup", b"select"):
                k = self._index(name)
                if k >= 0 and (name != b"option" or k == len(stack) - 1):
                    return self._ending(self._pop_to(k))
                if self.in_select and (
                    name == b"select" or (name == b"optgroup" and stack == [b"option"])
                ):
                    return self._ending(END_BEFORE)  # the select (or group) around it ends
            return CONTINUE
        if name == b"form":
            self.forms = 0
        if name == b"p":
            k = self._find_in_scope(frozenset((b"p",)), frozenset((b"button",)))
            if k >= 0:
                return self._ending(self._pop_to(k))
            if k == -1 and not self.no_outer_p:
                raise Ambiguous("</p> may close a <p> around the withheld element")
            return CONTINUE  # inserts an empty <p> inside
        if name in _FORMATTING:
            return self._formatting_end(name)
        if name in (b"li", b"dd", b"dt") or name in _HEADINGS or name in _BLOCK_ENDS:
            if name in _HEADINGS:
                k = self._find_in_scope(_HEADINGS)
            elif name == b"li":
                k = self._find_in_scope(frozenset((b"li",)), frozenset((b"ol", b"ul")))
            elif name in _TABLE_PARTS or name == b"table":
                k = self._index(name)
            else:
                k = self._find_in_scope(frozenset((name,)))
            if k >= 0:
                return self._ending(self._pop_to(k))
            if k == -2:
                return CONTINUE  # a boundary inside: the parser ignores it
            if self.name in _CONTAINED_BY and name in _CONTAINED_BY[self.name]:
                return self._ending(END_BEFORE)
            if self.name == b"p" and name in _P_CONTAINERS:
                return self._ending(END_BEFORE)
            raise Ambiguous(f"</{name.decode()}> may close an element around the withheld one")
        # Any other end tag: the innermost element of that name, unless a special one is
        # open above it.
        k = self._index(name)
        if not _SPECIAL.isdisjoint(stack[k + 1 :]):
            return CONTINUE
        if k >= 0:
            return self._ending(self._pop_to(k))
        raise Ambiguous(f"</{name.decode()}> may close an element around the withheld one")

    def _formatting_end(self, name: bytes) -> int:
        stack = self.stack
        k = self._index(name)
        if k < 0:
            if name in self.fmt:
                self.fmt.remove(name)  # not open any more: the parser drops it from its list
                return CONTINUE
            if self.name in _SPECIAL and self.name not in _SCOPE:
                # A formatting element around this one would be restructured across it.
                raise Ambiguous(f"</{name.decode()}> may restructure around the withheld one")
            if self._boundary():
                return CONTINUE
            raise Ambiguous(f"</{name.decode()}> may close an element around the withheld one")
        if not _SPECIAL.isdisjoint(stack[k + 1 :]):
            raise Ambiguous(f"</{name.decode()}> restructures the elements inside")
        # (Formatting elements above it close too and stay in self.fmt: re-opened later.)
        result = self._pop_to(k)
        for i in range(len(self.fmt) - 1, -1, -1):
            if self.fmt[i] == name:
                del self.fmt[i]
                break
        return self._ending(result)

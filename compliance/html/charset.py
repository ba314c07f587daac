"""Which encoding a page is in, as a browser decides it, and whether this package can edit it.

Labels are resolved with ``webencodings``, the WHATWG Encoding Standard's table, so that the
injector agrees with the browser: ``iso-8859-1``, ``latin1`` and ``ascii`` are windows-1252,
``gb2312`` is GBK, an unknown label is ignored. What stays written here is what
``webencodings`` does not offer: the byte order mark check (three prefixes), the question
this package alone asks (can a byte-level scanner read the document at all, i.e. is the
encoding ASCII-compatible and stateless), and the two ways browsers find a ``<meta>`` that
declares the encoding of a page whose ``Content-Type`` names none:

- :func:`prescan`, the HTML Standard's "prescan a byte stream to determine its encoding" over
  the first 1024 bytes, step for step (Firefox's). It knows nothing of ``<script>``, ``<title>``
  or ``<style>``: ``<script>var s = '<meta charset="koi8-r">'</script>`` declares KOI8-R to it.
- :func:`meta_label`, what Chromium (and WebKit) read in a ``<meta>`` tag that their HTML
  tokenizer reports (the injector's own tokenizer reads the head the same way): the text of a
  script, a title or a style holds no tag there, and ``charset`` wins over ``content``.

The two disagree on such pages (Chromium shows the script one in its own guess, not KOI8-R);
the injector encodes in a declared charset only where both find the same one.

>>> lookup("ISO-8859-1")
'cp1252'
>>> lookup("utf-16le") is UNSUPPORTED, lookup("no-such-label")
(True, None)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import webencodings

from compliance.cache import remembered

__all__ = [
    "PRESCAN_BYTES",
    "UNSUPPORTED",
    "bom",
    "could_be_bom",
    "encode",
    "lookup",
    "meta_codec",
    "meta_label",
    "prescan",
    "utf16_declaration",
]

UNSUPPORTED: Final = ""
"""What :func:`lookup` answers for an encoding a byte scanner cannot read."""

# Encodings in which ASCII bytes do not stand for ASCII text, or whose meaning depends on a
# state (escape sequences), or that decode the whole document to U+FFFD: a scanner looking for
# b"</body>" cannot read them, and a snippet cannot be spliced in.
_NOT_SCANNABLE = frozenset(
    ("utf-16be", "utf-16le", "iso-2022-jp", "replacement", "x-user-defined-utf16")
)
_ASCII_PROBE = bytes(range(0x20, 0x7F))

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", UNSUPPORTED),  # UTF-16BE
    (b"\xff\xfe", UNSUPPORTED),  # UTF-16LE
)


# Labels come from responses and pages: applications send the same few again and again, and
# none of the Encoding Standard's is longer than 19 characters (longer ones are never kept).
@remembered(256, 64 * 1024, size=256, longest=64)
def lookup(label: str) -> str | None:
    """The Python codec for a charset label, as a browser resolves the label.

    ``None`` for a label the Encoding Standard does not know (a browser ignores it),
    :data:`UNSUPPORTED` for an encoding a byte scanner cannot edit.
    """
    encoding = webencodings.lookup(label)
    if encoding is None:
        return None
    if encoding.name in _NOT_SCANNABLE:
        return UNSUPPORTED
    info = encoding.codec_info
    try:
        ascii_ok = info.encode(_ASCII_PROBE.decode("ascii"))[0] == _ASCII_PROBE
    except (UnicodeError, ValueError, LookupError):  # pragma: no cover - table codecs encode
        ascii_ok = False
    name: str = info.name
    return name if ascii_ok else UNSUPPORTED


def bom(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte order mark at the start of ``data`` names, and the mark's length.

    The encoding is :data:`UNSUPPORTED` for UTF-16 marks. ``None`` without a mark.
    """
    for mark, name in _BOMS:
        if data.startswith(mark):
            return name, len(mark)
    return None


def could_be_bom(data: bytes) -> bool:
    """Whether ``data`` (shorter than any mark) could still grow into a byte order mark."""
    return any(mark.startswith(data) and len(data) < len(mark) for mark, _ in _BOMS)


_UTF16_XML: Final = (b"<\x00?\x00x\x00", b"\x00<\x00?\x00x")  # "<?x" in UTF-16LE, BE


def utf16_declaration(data: bytes, *, more: bool = False) -> bool | None:
    """Whether ``data`` starts with ``<?x`` in UTF-16, the prescan's first step (UTF-16 to a
    browser, when the header names no encoding); ``None`` while ``more`` bytes could still
    make it so."""
    if data.startswith(_UTF16_XML):
        return True
    if more and any(p.startswith(data) for p in _UTF16_XML):
        return None
    return False


def meta_label(attributes: Iterable[tuple[bytes, str]]) -> str | None:
    """The label a ``<meta>`` tag declares, from its attributes in document order (names in
    lower case, duplicates kept), as Chromium reads it (``None`` if none).

    Blink's ``EncodingFromMetaAttributes``: the last ``charset`` attribute wins, whatever its
    value (an empty or unknown one declares nothing); else the charset in a ``content`` that
    comes before any ``charset``, with ``http-equiv="content-type"`` anywhere in the tag.
    """
    pragma = False
    has_charset = False
    label: str | None = None
    for name, value in attributes:
        if name == b"http-equiv":
            pragma = pragma or value.lower() == "content-type"
        elif name == b"charset":
            has_charset = True
            label = value
        elif name == b"content" and not has_charset:
            label = _blink_extract(value) or label
    if has_charset or (pragma and label):
        return label
    return None


def _blink_extract(content: str) -> str | None:
    """The charset in a ``content`` attribute as Blink's ``ExtractCharset`` reads it: like
    the standard's extraction, but "whitespace" is every control character and an unquoted
    value also ends at a quote."""
    n = len(content)
    lower = content.lower()
    pos = 0
    while True:
        pos = lower.find("charset", pos)
        if pos < 0:
            return None
        pos += 7
        while pos < n and content[pos] <= " ":
            pos += 1
        if pos >= n or content[pos] != "=":
            continue
        pos += 1
        while pos < n and content[pos] <= " ":
            pos += 1
        quote = content[pos] if pos < n and content[pos] in "\"'" else ""
        if quote:
            pos += 1
        if pos >= n:
            return None
        if quote:
            end = content.find(quote, pos)
            if end < 0:
                return None  # the closing quote is missing
        else:
            end = pos
            while end < n and content[end] > " " and content[end] not in "\"';":
                end += 1
        return content[pos:end] or None


@remembered(256, 64 * 1024, size=256, longest=64)
def meta_codec(label: str) -> str | None:
    """The Python codec for a label found in a ``<meta>``, as the standard's prescan reads it.

    A page whose markup was readable as ASCII is not UTF-16, whatever it says: UTF-16 labels
    mean UTF-8 there, and ``x-user-defined`` means windows-1252. An encoding a byte scanner
    cannot edit (ISO-2022-JP, or the "replacement" one) is ``ascii``: where markup can go,
    ISO-2022-JP reads ASCII bytes as ASCII, and a page in "replacement" shows nothing
    anyway. ``None`` for unknown labels.
    """
    encoding = webencodings.lookup(label)
    if encoding is None:
        return None
    if encoding.name in ("utf-16be", "utf-16le"):
        return "utf-8"
    if encoding.name == "x-user-defined":
        return "cp1252"
    return lookup(label) or "ascii"


PRESCAN_BYTES: Final = 1024
"""How many bytes :func:`prescan` reads: the HTML Standard's advice, Firefox's bound."""

# The prescan's cases, at a "<" (in the standard's order: a comment before "<!").
_PRESCAN_CASE = re.compile(rb"<(?:(!--)|([mM][eE][tT][aA][\t\n\f\r /])|(/?[A-Za-z])|[!/?])")
_PRESCAN_SPACE = re.compile(rb"[\t\n\f\r ]*+")
_PRESCAN_SKIP = re.compile(rb"[\t\n\f\r /]*+")
_PRESCAN_NAME = re.compile(rb"[^\t\n\f\r />][^=\t\n\f\r />]*+")
_PRESCAN_UNQUOTED = re.compile(rb"[^\t\n\f\r >]*+")
_PRESCAN_TAG_NAME = re.compile(rb"[^\t\n\f\r >]*+")
# "Get an attribute" until there is none, to the tag's ">", in one match (the steps below
# read it byte by byte): a quote opens a value only after "=", and one with no closing quote
# in the bytes ends the match there (the prescan runs out of bytes).
_PRESCAN_ATTRIBUTES = re.compile(
    rb"(?:[\t\n\f\r /]++|(?>[^\t\n\f\r />][^=\t\n\f\r />]*+(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >\"'][^\t\n\f\r >]*+)?)?))*+>"
)
_FAILURE: Final = ""  # a charset attribute naming no encoding


class _OutOfBytes(Exception):
    """The prescan ran past the bytes it was given."""


def prescan(data: bytes, *, more: bool = False) -> str | None:
    """The Python codec (as :func:`meta_codec` names it) of the encoding the HTML Standard's
    prescan finds in the first :data:`PRESCAN_BYTES` of ``data``, or ``None``
    (:data:`UNSUPPORTED` for a UTF-16 ``<?x`` at the start).

    It reads ``<meta>`` tags (``charset``, or ``http-equiv="content-type"`` with a charset in
    ``content``), skipping comments and the attributes of other tags; when it runs out of
    bytes, an XML declaration's ``encoding`` counts. ``more``: ``data`` is only the start of
    a document shorter than the bound so far, and running out of it answers ``None`` (the
    answer is not known yet). Reads at most :data:`PRESCAN_BYTES` bytes, in C-speed steps.

    >>> prescan(b"<script>var s = '<meta charset=koi8-r>';</script>")
    'koi8-r'
    >>> prescan(b"<!-- <meta charset=koi8-r> --><meta http-equiv=Content-Type content=x>")
    """
    data = data[:PRESCAN_BYTES]
    try:
        return _prescan(data)
    except _OutOfBytes:
        if more and len(data) < PRESCAN_BYTES:
            return None
        return _xml_encoding(data)


def _prescan(data: bytes) -> str | None:
    n = len(data)
    if utf16_declaration(data):
        return UNSUPPORTED  # "<?x" in UTF-16: a page a byte scanner cannot read
    position = 0
    while True:
        m = _PRESCAN_CASE.search(data, position)
        if m is None:
            raise _OutOfBytes
        at = m.start()
        if m.group(1):  # a comment: to the first "-->" after the "<" (its dashes may count)
            end = data.find(b"-->", at + 2)
            if end < 0:
                raise _OutOfBytes
            position = end + 3
        elif m.group(2):
            found, position = _prescan_meta(data, m.end() - 1)
            if found is not None:
                return found
        elif m.group(3):  # another tag: its name, then its attributes, read and dropped
            position = _PRESCAN_TAG_NAME.match(data, at + 1).end()  # type: ignore[union-attr]
            whole = _PRESCAN_ATTRIBUTES.match(data, position)
            if whole is not None:  # the usual case: every attribute in one match
                position = whole.end()
                continue
            if position >= n:
                raise _OutOfBytes
            while True:
                attribute, position = _get_attribute(data, position)
                if attribute is None:
                    break
            position += 1
        else:  # "<!", "</", "<?": to the next ">"
            end = data.find(b">", at + 1)
            if end < 0:
                raise _OutOfBytes
            position = end + 1


def _prescan_meta(data: bytes, position: int) -> tuple[str | None, int]:
    """A ``<meta`` tag's attributes from ``position``: the codec it declares, if any, and
    where the prescan goes on."""
    seen: set[bytes] = set()
    got_pragma = False
    need_pragma: bool | None = None
    charset: str | None = None
    while True:
        attribute, position = _get_attribute(data, position)
        if attribute is None:
            break
        name, value = attribute
        if name in seen:
            continue
        seen.add(name)
        if name == b"http-equiv":
            got_pragma = got_pragma or value == b"content-type"
        elif name == b"content":
            found = _spec_extract(value)
            if found is not None and charset is None:
                charset, need_pragma = found, True
        elif name == b"charset":
            charset = meta_codec(value.decode("latin-1")) or _FAILURE
            need_pragma = False
    position += 1  # next byte
    if need_pragma is None or (need_pragma and not got_pragma) or not charset:
        return None, position
    return charset, position


def _get_attribute(data: bytes, position: int) -> tuple[tuple[bytes, bytes] | None, int]:
    """The standard's "get an attribute": (name, value) in lower case and where the scan
    goes on, or ``None`` at the tag's ``>``."""
    n = len(data)
    position = _PRESCAN_SKIP.match(data, position).end()  # type: ignore[union-attr]
    if position >= n:
        raise _OutOfBytes
    if data[position] == 0x3E:
        return None, position
    end = _PRESCAN_NAME.match(data, position).end()  # type: ignore[union-attr]
    name = data[position:end].lower()
    if end >= n:
        raise _OutOfBytes
    byte = data[end]
    if byte in b"\t\n\f\r ":
        end = _PRESCAN_SPACE.match(data, end).end()  # type: ignore[union-attr]
        if end >= n:
            raise _OutOfBytes
        if data[end] != 0x3D:
            return (name, b""), end
    elif byte != 0x3D:  # "/" or ">"
        return (name, b""), end
    position = _PRESCAN_SPACE.match(data, end + 1).end()  # type: ignore[union-attr]
    if position >= n:
        raise _OutOfBytes
    byte = data[position]
    if byte in b"\"'":
        close = data.find(data[position : position + 1], position + 1)
        if close < 0:
            raise _OutOfBytes
        return (name, data[position + 1 : close].lower()), close + 1
    if byte == 0x3E:
        return (name, b""), position
    end = _PRESCAN_UNQUOTED.match(data, position + 1).end()  # type: ignore[union-attr]
    if end >= n:
        raise _OutOfBytes
    return (name, data[position:end].lower()), end


_SPEC_CHARSET = re.compile(rb"charset[\t\n\f\r ]*=[\t\n\f\r ]*")
_SPEC_UNQUOTED = re.compile(rb"[^\t\n\f\r ;]*+")


def _spec_extract(content: bytes) -> str | None:
    """The standard's "extracting a character encoding from a meta element" (``content`` in
    lower case): the codec, or ``None``."""
    # A "charset" not followed by "=" is passed over: the search goes on after it.
    m = _SPEC_CHARSET.search(content)
    if m is None:
        return None
    position = m.end()
    quote = content[position : position + 1]
    if not quote:
        return None
    if quote in (b'"', b"'"):
        close = content.find(quote, position + 1)
        if close < 0:
            return None  # an unmatched quote
        label = content[position + 1 : close]
    else:
        end = _SPEC_UNQUOTED.match(content, position).end()  # type: ignore[union-attr]
        label = content[position:end]
    return meta_codec(label.decode("latin-1"))


def _xml_encoding(data: bytes) -> str | None:
    """The standard's "get an XML encoding", where the prescan found no ``<meta>``."""
    if not data.startswith(b"<?xml"):
        return None
    declaration_end = data.find(b">")
    if declaration_end < 0:
        return None
    at = data.find(b"encoding", 5)
    if at < 0:
        return None
    at += 8
    while at < len(data) and data[at] <= 0x20:
        at += 1
    if data[at : at + 1] != b"=":
        return None
    at += 1
    while at < len(data) and data[at] <= 0x20:
        at += 1
    quote = data[at : at + 1]
    if quote not in (b'"', b"'"):
        return None
    end = data.find(quote, at + 1)
    if end < 0:
        return None
    label = data[at + 1 : end]
    if any(byte <= 0x20 for byte in label):
        return None
    return meta_codec(label.decode("latin-1"))


# Characters Python's codec writes as bytes a browser reads as another character (mostly a
# fullwidth form: "¢" as "￠"), found by decoding every character's encoding with Chromium's
# TextDecoder; those its codec maps one way only are found by reading them back.
_MISREAD: Final = {
    "big5hkscs": frozenset("\u00a2\u00a3\u00a5\u2022\u203e\u223c\u2609\u2641\uff0f\uff3c\uff64"),
    "euc_jp": frozenset("\u00a2\u00a3\u00ac\u2016\u2212\u301c"),
    "gb18030": frozenset("\u1e3f"),
}


def encode(text: str, codec: str) -> bytes:
    """``text`` in ``codec``, characters it lacks as numeric character references.

    So are those a browser would read as another character (Python's ``euc_jp`` writes
    ``¥`` as ``\\``, its ``cp932`` the wave dash ``〜`` as the bytes of U+FF5E).

    >>> encode("¥〜", "euc_jp"), encode("¥〜", "cp932")
    (b'&#165;&#12316;', b'&#165;&#12316;')
    """
    try:
        misread = _MISREAD.get(codec)
        try:
            strict = text.encode(codec)
        except UnicodeError:
            pass
        else:
            if text.isascii() or (
                strict.decode(codec) == text and (misread is None or misread.isdisjoint(text))
            ):
                return strict  # the usual case: one encoding and one check, in C
        return "".join(_char_as(c, codec, misread) for c in text).encode(codec)
    except LookupError:  # a codec only webencodings registers (x-user-defined)
        encoding = webencodings.lookup(codec)
        if encoding is not None:
            encoded: bytes = encoding.codec_info.encode(text, "xmlcharrefreplace")[0]
            return encoded
    except (UnicodeError, ValueError):
        pass
    return text.encode("ascii", "xmlcharrefreplace")


def _char_as(char: str, codec: str, misread: frozenset[str] | None) -> str:
    """``char``, or its numeric reference when ``codec`` cannot write it so that it reads
    back the same."""
    if char.isascii():
        return char
    if misread is not None and char in misread:
        return f"&#{ord(char)};"
    try:
        if char.encode(codec).decode(codec) == char:
            return char
    except UnicodeError:
        pass
    return f"&#{ord(char)};"

"""Which encoding a page is in, as a browser decides it, and whether this package can edit it.

Labels are resolved with ``webencodings``, the WHATWG Encoding Standard's table, so that the
injector agrees with the browser: ``iso-8859-1``, ``latin1`` and ``ascii`` are windows-1252,
``gb2312`` is GBK, an unknown label is ignored. What stays written here is what
``webencodings`` does not offer: the byte order mark check (three prefixes), reading the label
out of a ``<meta http-equiv="content-type" content="...; charset=...">`` value (the standard's
"extracting a character encoding from a meta element", one regular expression), and the
question this package alone asks: can a byte-level scanner read the document at all, i.e. is
the encoding ASCII-compatible and stateless.

>>> lookup("ISO-8859-1")
'cp1252'
>>> lookup("utf-16le") is UNSUPPORTED, lookup("no-such-label")
(True, None)
"""

from __future__ import annotations

import re
from typing import Final

import webencodings

from compliance.cache import remembered

__all__ = [
    "UNSUPPORTED",
    "bom",
    "could_be_bom",
    "encode",
    "lookup",
    "meta_codec",
    "meta_label",
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
_META_CHARSET = re.compile(rb"(?i:charset)[\t\n\f\r ]*=[\t\n\f\r ]*([\"']?)([^\"'\t\n\f\r ;]*)")

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


def meta_label(charset: str | None, http_equiv: str | None, content: str | None) -> str | None:
    """The label a ``<meta>`` element declares, from its attributes (``None`` if none).

    ``<meta charset>`` wins; otherwise ``http-equiv="content-type"`` with a ``charset=``
    parameter in ``content`` (quotes allowed, as the standard's extraction algorithm reads it).
    """
    if charset is not None:
        return charset
    if (http_equiv or "").strip().lower() != "content-type" or not content:
        return None
    m = _META_CHARSET.search(content.encode("utf-8", "replace"))
    if m is None:
        return None
    quote, value = m.group(1), m.group(2)
    if quote and not content.encode("utf-8", "replace")[m.end() :].startswith(quote):
        return None  # an unmatched quote: the algorithm finds no encoding
    return value.decode("latin-1") or None


@remembered(256, 64 * 1024, size=256, longest=64)
def meta_codec(label: str) -> str | None:
    """The Python codec for a label found in a ``<meta>``, as the standard's prescan reads it.

    A page whose markup was readable as ASCII is not UTF-16, whatever it says: UTF-16 labels
    mean UTF-8 there, and ``x-user-defined`` means windows-1252. ``None`` for unknown labels.
    """
    encoding = webencodings.lookup(label)
    if encoding is None:
        return None
    if encoding.name in ("utf-16be", "utf-16le"):
        return "utf-8"
    if encoding.name == "x-user-defined":
        return "cp1252"
    return lookup(label) or "utf-8"


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

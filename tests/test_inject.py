"""Example-based tests of the streaming injector (compliance.inject).

Every document is also checked for chunking invariance: fed whole, in 1, 2, 3, 7 and 64-byte
chunks and in random splits, the output must be the same.
"""

from __future__ import annotations

import html
import random
from collections.abc import Mapping
from typing import Any

import pytest

from compliance.html.injector import _HEAD_WATCH
from compliance.html.tokenizer import Tokenizer
from compliance.inject import MARKER, Injector, PageInfo, Placement

S = "<aside>S</aside>"
E = "<aside>E</aside>"
M = "<aside>M</aside>"
SNIPPETS: dict[Placement, str] = {"body_start": S, "body_end": E, "marker": M}


def feed_all(injector: Injector, data: bytes, sizes: list[int]) -> bytes:
    out = []
    pos = 0
    k = 0
    while pos < len(data):
        size = sizes[k % len(sizes)]
        out.append(injector.feed(data[pos : pos + size]))
        pos += size
        k += 1
    out.append(injector.finish())
    return b"".join(out)


def inject(
    doc: bytes,
    placements: tuple[Placement, ...] = ("body_end",),
    *,
    charset: str | None = None,
    max_hold: int = 256 * 1024,
    check_chunking: bool = True,
) -> tuple[bytes, Injector]:
    """Inject ``placements`` into ``doc``; assert the result does not depend on chunking."""

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {p: SNIPPETS[p] for p in placements}

    def make() -> Injector:
        return Injector(render, charset=charset, max_hold=max_hold)

    whole = make()
    expected = whole.feed(doc) + whole.finish()
    assert not (whole.skipped_reason or "").startswith("internal error"), whole.skipped_reason
    if check_chunking:
        rng = random.Random(len(doc))
        splits = [[1], [2], [3], [7], [64]]
        splits += [[rng.randint(1, 40) for _ in range(20)] for _ in range(3)]
        for sizes in splits:
            other = make()
            assert feed_all(other, doc, sizes) == expected, sizes
            assert other.skipped_reason == whole.skipped_reason
            assert other.inserted_placements == whole.inserted_placements
    return expected, whole


def expect(doc: str, placements: tuple[Placement, ...], result: str) -> None:
    """``result`` uses S, E and M for where the snippets go."""
    out, _ = inject(doc.encode(), placements)
    want = result.replace("{S}", S).replace("{E}", E).replace("{M}", M)
    assert out.decode() == want


# --- body_end ---------------------------------------------------------------------------------

BODY_END_CASES = [
    pytest.param("<body>x</body></html>", "<body>x{E}</body></html>", id="simple"),
    pytest.param("<body>x</BODY>\n", "<body>x{E}</BODY>\n", id="upper-case"),
    pytest.param("<body>x</bOdY >", "<body>x{E}</bOdY >", id="mixed-case-space"),
    pytest.param(
        "<body>x</body>\n<!-- c -->\n</html>\n",
        "<body>x{E}</body>\n<!-- c -->\n</html>\n",
        id="trailing-comment-whitespace",
    ),
    pytest.param("<body>x</body>y", "<body>x</body>y{E}", id="content-after-body"),
    pytest.param("<body>x</body>a</body>\n", "<body>x</body>a{E}</body>\n", id="second-body"),
    pytest.param("<body>x</body></body>", "<body>x</body>{E}</body>", id="repeated-body"),
    pytest.param("<p>no body end", "<p>no body end{E}", id="no-body-end-tag"),
    pytest.param(
        "<body><!-- </body> -->x</body>", "<body><!-- </body> -->x{E}</body>", id="comment"
    ),
    pytest.param("<body><!--></body>", "<body><!-->{E}</body>", id="abrupt-comment"),
    pytest.param("<body><!---></body>", "<body><!--->{E}</body>", id="abrupt-comment-2"),
    pytest.param("<body><!-- --!></body>", "<body><!-- --!>{E}</body>", id="comment-bang"),
    pytest.param("<body><? </body> ?>x", "<body><? </body> ?>x{E}", id="bogus-pi"),
    pytest.param("<body><! </body> >x", "<body><! </body> >x{E}", id="bogus-bang"),
    pytest.param("<body></ </body> >x", "<body></ </body> >x{E}", id="bogus-end"),
    pytest.param(
        "<body><script>'</body>'</script></body>",
        "<body><script>'</body>'</script>{E}</body>",
        id="script",
    ),
    pytest.param(
        "<body><script>'</scripty></body>'</script></body>",
        "<body><script>'</scripty></body>'</script>{E}</body>",
        id="script-end-needs-delimiter",
    ),
    pytest.param(
        "<body><script><!--<script></script></body>--></script></body>",
        "<body><script><!--<script></script></body>--></script>{E}</body>",
        id="script-double-escaped",
    ),
    pytest.param(
        "<body><script><!--</script></body>",
        "<body><script><!--</script>{E}</body>",
        id="script-escaped-ends",
    ),
    pytest.param(
        "<body><style></body></style></body>", "<body><style></body></style>{E}</body>", id="style"
    ),
    pytest.param(
        "<body><textarea></body></textarea></body>",
        "<body><textarea></body></textarea>{E}</body>",
        id="textarea",
    ),
    pytest.param(
        "<body><title></body></title></body>", "<body><title></body></title>{E}</body>", id="title"
    ),
    pytest.param("<body><xmp></body></xmp></body>", "<body><xmp></body></xmp>{E}</body>", id="xmp"),
    pytest.param(
        "<body><iframe></body></iframe></body>",
        "<body><iframe></body></iframe>{E}</body>",
        id="iframe",
    ),
    pytest.param(
        "<body><noembed></body></noembed></body>",
        "<body><noembed></body></noembed>{E}</body>",
        id="noembed",
    ),
    pytest.param(
        "<body><noframes></body></noframes></body>",
        "<body><noframes></body></noframes>{E}</body>",
        id="noframes",
    ),
    pytest.param(
        "<body><noscript></body></noscript></body>",
        "<body><noscript></body></noscript>{E}</body>",
        id="noscript",
    ),
    pytest.param(
        "<body><template></body></template></body>",
        "<body><template></body></template>{E}</body>",
        id="template",
    ),
    pytest.param(
        "<body><svg><![CDATA[</body>]]></svg></body>",
        "<body><svg><![CDATA[</body>]]></svg>{E}</body>",
        id="cdata-in-svg",
    ),
    pytest.param(
        "<body><![CDATA[x]]></body>", "<body><![CDATA[x]]>{E}</body>", id="cdata-in-html-is-bogus"
    ),
    pytest.param(
        '<body><div title="</body>">x</div></body>',
        '<body><div title="</body>">x</div>{E}</body>',
        id="double-quoted-attribute",
    ),
    pytest.param(
        "<body><div title='a>b</body>'>x</div></body>",
        "<body><div title='a>b</body>'>x</div>{E}</body>",
        id="single-quoted-attribute",
    ),
    pytest.param(
        "<body><div title=a</body>x</body>",
        "<body><div title=a</body>x{E}</body>",
        id="unquoted-attribute",
    ),
    pytest.param(
        '<body><div ="</body>x">y</body>',
        '<body><div ="</body>x">y{E}</body>',
        id="equals-starts-attribute-name",
    ),
    pytest.param(
        '<body><div a = "x>" b>y</body>',
        '<body><div a = "x>" b>y{E}</body>',
        id="spaced-equals",
    ),
    pytest.param("<body>a < b </body>", "<body>a < b {E}</body>", id="text-less-than"),
    # Everything after <plaintext> is text: the last place markup can go is before it.
    pytest.param(
        "<body><plaintext></body>", "<body>{E}<plaintext></body>", id="plaintext-never-ends"
    ),
    pytest.param("<body><!-- open", "<body><!-- open", id="ends-in-comment"),
    pytest.param("<body><div class='x", "<body><div class='x", id="ends-in-tag"),
]


@pytest.mark.parametrize(("doc", "result"), BODY_END_CASES)
def test_body_end(doc: str, result: str) -> None:
    expect(doc, ("body_end",), result)


# --- body_start -------------------------------------------------------------------------------

BODY_START_CASES = [
    pytest.param(
        "<html><head></head><body class=x>y", "<html><head></head><body class=x>{S}y", id="tag"
    ),
    pytest.param("<BODY\nid='a>b'>y", "<BODY\nid='a>b'>{S}y", id="tag-with-quoted-gt"),
    pytest.param("<title>a</title>\n<div>x", "<title>a</title>\n{S}<div>x", id="implicit-div"),
    pytest.param(
        "<meta charset=utf-8>  hello", "<meta charset=utf-8>  {S}hello", id="implicit-text"
    ),
    pytest.param(
        "<!DOCTYPE html><html><head><link rel=x><script>document.write('<div>')</script>"
        "<style>p{}</style><noscript><p></noscript></head><p>x",
        "<!DOCTYPE html><html><head><link rel=x><script>document.write('<div>')</script>"
        "<style>p{}</style><noscript><p></noscript></head>{S}<p>x",
        id="head-elements-are-not-body",
    ),
    pytest.param(
        "<head><template><div>t</div></template></head><p>x",
        "<head><template><div>t</div></template></head>{S}<p>x",
        id="template-in-head",
    ),
    # After </head> the parser puts <meta>, <style>... back in the head, but not <noscript>:
    # it starts the body (the notice went after it, not first in the body).
    pytest.param(
        "<head><title>T</title></head>\n<noscript><p>js off</p></noscript><p>x",
        "<head><title>T</title></head>\n{S}<noscript><p>js off</p></noscript><p>x",
        id="noscript-after-head-starts-the-body",
    ),
    pytest.param(
        "<head></head><link rel=x><noscript>a</noscript>",
        "<head></head><link rel=x>{S}<noscript>a</noscript>",
        id="noscript-after-head-elements-put-back",
    ),
    pytest.param(
        "<head><template></head></template><noscript>a</noscript>",
        "<head><template></head></template><noscript>a</noscript>{S}",
        id="head-end-tag-in-a-template-ends-nothing",
    ),
    pytest.param("<!-- <body> --><body>", "<!-- <body> --><body>{S}", id="comment-before"),
    pytest.param("<head></head></body>", "<head></head>{S}</body>", id="end-tag-opens-body"),
    pytest.param("", "{S}", id="empty-document"),
    pytest.param("<html><head>", "<html><head>{S}", id="body-at-eof"),
    pytest.param("<title>never closed", "<title>never closed", id="no-safe-point"),
]


@pytest.mark.parametrize(("doc", "result"), BODY_START_CASES)
def test_body_start(doc: str, result: str) -> None:
    expect(doc, ("body_start",), result)


# --- marker -----------------------------------------------------------------------------------

MARKER_CASES = [
    pytest.param(
        "<body><p>a</p><!-- compliance:notices --><p>b</p></body>",
        "<body><p>a</p><!-- compliance:notices -->{M}<p>b</p></body>",
        id="found",
    ),
    pytest.param(
        "<body><!--compliance:notices--></body>",
        "<body><!--compliance:notices-->{M}</body>",
        id="no-spaces",
    ),
    pytest.param("<body><p>a</p></body>", "<body>{M}<p>a</p></body>", id="fallback-body-start"),
    pytest.param(
        "<head><!-- compliance:notices --></head><body>x",
        "<head><!-- compliance:notices --></head><body>{M}x",
        id="marker-in-head-ignored",
    ),
    pytest.param(
        "<body><script>'<!-- compliance:notices -->'</script>x",
        "<body>{M}<script>'<!-- compliance:notices -->'</script>x",
        id="marker-in-script-ignored",
    ),
    pytest.param(
        "<body><template><!-- compliance:notices --></template>x",
        "<body>{M}<template><!-- compliance:notices --></template>x",
        id="marker-in-template-ignored",
    ),
    # A notice (an <aside>) inside an open <p> would close it, moving what follows the
    # marker out of the paragraph (and "</p>" would make an empty one): it goes where the
    # paragraph ends instead.
    pytest.param(
        "<body><p><!-- compliance:notices --></p><p>b</p>",
        "<body><p><!-- compliance:notices --></p>{M}<p>b</p>",
        id="in-a-paragraph-after-its-end-tag",
    ),
    pytest.param(
        "<body><p>a <b><!-- compliance:notices --> b</b> c<div>d",
        "<body><p>a <b><!-- compliance:notices --> b</b> c{M}<div>d",
        id="in-a-paragraph-before-a-block-that-closes-it",
    ),
    pytest.param(
        "<body><div><p>a<!-- compliance:notices -->b</div>c",
        "<body><div><p>a<!-- compliance:notices -->b{M}</div>c",
        id="in-a-paragraph-before-the-end-tag-of-its-parent",
    ),
    pytest.param(
        "<body><p>a<button><!-- compliance:notices --></button>b</p>",
        "<body><p>a<button><!-- compliance:notices -->{M}</button>b</p>",
        id="in-a-button-in-a-paragraph",
    ),
    pytest.param(
        "<body><p>a<!-- compliance:notices --><script>x()</script><style>p{}</style>b</p>c",
        "<body><p>a<!-- compliance:notices --><script>x()</script><style>p{}</style>b</p>{M}c",
        id="in-a-paragraph-past-raw-text-end-tags",
    ),
    pytest.param(
        "<body><form><p>a<!-- compliance:notices --></form>b</p></body>c",
        "<body><form><p>a<!-- compliance:notices --></form>b</p>{M}</body>c",
        id="in-a-paragraph-past-end-tags-that-leave-it-open",
    ),
    pytest.param(
        "<body><p>a</p><!-- compliance:notices -->b",
        "<body><p>a</p><!-- compliance:notices -->{M}b",
        id="after-a-closed-paragraph",
    ),
    pytest.param(
        "<body><p>a<!-- compliance:notices -->b",
        "<body>{M}<p>a<!-- compliance:notices -->b",
        id="in-a-paragraph-never-closed-body-start",
    ),
]


@pytest.mark.parametrize(("doc", "result"), MARKER_CASES)
def test_marker(doc: str, result: str) -> None:
    expect(doc, ("marker",), result)


def test_marker_constant_is_the_comment() -> None:
    assert MARKER == b"<!-- compliance:notices -->"


def test_marker_hold_overflow_falls_back_to_body_start() -> None:
    filler = "<p>" + "x" * 200 + "</p>"
    doc = f"<body>{filler}<!-- compliance:notices --></body>"
    out, injector = inject(doc.encode(), ("marker",), max_hold=100)
    assert out.decode() == f"<body>{M}{filler}<!-- compliance:notices --></body>"
    assert injector.inserted


def test_body_end_hold_overflow_falls_back_to_end_of_stream() -> None:
    trailer = "<!--" + "c" * 300 + "-->"
    doc = f"<body>x</body>{trailer}"
    out, _ = inject(doc.encode(), ("body_end",), max_hold=100)
    assert out.decode() == f"<body>x</body>{trailer}{E}"


def test_all_placements_at_once() -> None:
    expect(
        "<html><body><h1>t</h1><!-- compliance:notices --><p>x</p></body></html>",
        ("body_start", "body_end", "marker"),
        "<html><body>{S}<h1>t</h1><!-- compliance:notices -->{M}<p>x</p>{E}</body></html>",
    )


def test_all_placements_without_body() -> None:
    expect("text", ("body_start", "body_end", "marker"), "{S}{M}text{E}")


# --- skipping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param("<frameset><frame src=a></frameset>", id="frameset"),
        pytest.param("<!DOCTYPE html><html><head></head><FRAMESET>", id="frameset-after-head"),
    ],
)
def test_frameset_documents_are_not_edited(doc: str) -> None:
    out, injector = inject(doc.encode(), ("body_start", "body_end"))
    assert out == doc.encode()
    assert not injector.inserted
    assert injector.skipped_reason == "frameset document"


@pytest.mark.parametrize("text", ["<", " < ", "<1", "<=", "\x00<"])
def test_a_lone_less_than_is_text_that_keeps_the_body(text: str) -> None:
    # "<" not followed by a letter, "!", "?" or "/" is character data: it sets the parser's
    # frameset-ok flag to "not ok", so a later <frameset> is ignored and the body stays a body.
    expect(
        f"<body>{text}<frameset></frameset></body>",
        ("body_start", "body_end"),
        f"<body>{{S}}{text}<frameset></frameset>{{E}}</body>",
    )


@pytest.mark.parametrize(
    ("inside", "closed"),
    [
        ("<svg>", "</svg>"),
        ("<math>", "</math>"),
        ("<svg><g>", "</g></svg>"),
        ("<math><annotation-xml>", "</annotation-xml></math>"),
    ],
)
def test_frameset_inside_foreign_content_is_a_foreign_element(inside: str, closed: str) -> None:
    # Where a start tag is read by the foreign content rules, <frameset> is an SVG or MathML
    # element like any other: the body stays a body (the notice goes after the foreign
    # content, closed first).
    expect(
        f"{inside}<frameset></frameset>",
        ("body_end",),
        f"{inside}<frameset></frameset>{closed}{{E}}",
    )


def test_frameset_inside_template_is_not_a_frameset_document() -> None:
    expect(
        "<template><frameset></template>x", ("body_start",), "<template><frameset></template>{S}x"
    )


def test_nothing_to_insert() -> None:
    injector = Injector(lambda page: {"body_end": ""})
    out = injector.feed(b"<body>x</body>") + injector.finish()
    assert out == b"<body>x</body>"
    assert not injector.inserted
    assert injector.skipped_reason == "nothing to insert"


@pytest.mark.parametrize(
    ("doc", "charset"),
    [
        pytest.param("\ufeff<body>x</body>".encode("utf-16-le"), None, id="utf-16-le-bom"),
        pytest.param("\ufeff<body>x</body>".encode("utf-16-be"), None, id="utf-16-be-bom"),
        pytest.param("<body>x</body>".encode("utf-16-le"), "utf-16le", id="utf-16-charset"),
        pytest.param("<body>x</body>".encode("utf-32"), "UTF-32", id="utf-32-charset"),
        # Without a header, "<?x" in UTF-16 is UTF-16 to the prescan (and to Chromium).
        pytest.param(
            '<?xml version="1.0"?><body>x</body>'.encode("utf-16-le"), None, id="utf-16le-xml"
        ),
        pytest.param(
            '<?xml version="1.0"?><body>x</body>'.encode("utf-16-be"), None, id="utf-16be-xml"
        ),
    ],
)
def test_unsupported_encodings_pass_through(doc: bytes, charset: str | None) -> None:
    out, injector = inject(doc, ("body_end", "body_start"), charset=charset)
    assert out == doc
    assert injector.skipped_reason == "unsupported encoding"
    assert not injector.inserted


def test_utf8_bom_is_kept_and_means_utf8() -> None:
    seen: list[PageInfo] = []

    def render(page: PageInfo) -> Mapping[Placement, str]:
        seen.append(page)
        return {"body_start": "<i>é</i>"}

    injector = Injector(render, charset="latin-1")
    out = injector.feed(b"\xef\xbb\xbf<p>x") + injector.finish()
    assert out == "\ufeff<i>é</i><p>x".encode()
    assert seen[0].charset == "utf-8"


# --- page info and encoding -------------------------------------------------------------------


def page_info(doc: bytes, charset: str | None = None) -> PageInfo:
    seen: list[PageInfo] = []

    def render(page: PageInfo) -> Mapping[Placement, str]:
        seen.append(page)
        return {"body_end": "x"}

    for size in (1, 3, len(doc) or 1):
        injector = Injector(render, charset=charset)
        feed_all(injector, doc, [size])
    assert len(seen) == 3
    assert seen[0] == seen[1] == seen[2]
    return seen[0]


@pytest.mark.parametrize(
    ("doc", "charset", "expected"),
    [
        pytest.param(b"<p>x", None, PageInfo(None, "ascii", None), id="defaults"),
        pytest.param(b'<html lang="ru"><p>x', None, PageInfo("ru", "ascii", None), id="lang"),
        pytest.param(b"<HTML xml:lang=uk>x", None, PageInfo("uk", "ascii", None), id="xml-lang"),
        pytest.param(
            b"<body><html lang=ru>", None, PageInfo(None, "ascii", None), id="lang-too-late"
        ),
        pytest.param(
            b"<meta charset='windows-1251'><p>x",
            None,
            PageInfo(None, "cp1251", None),
            id="meta-charset",
        ),
        pytest.param(
            b'<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-2">x',
            None,
            PageInfo(None, "iso8859-2", None),
            id="meta-http-equiv",
        ),
        pytest.param(
            b"<meta charset=koi8-r>x",
            "utf-8",
            PageInfo(None, "utf-8", None),
            id="declared-charset-wins",
        ),
        pytest.param(
            b"<meta charset=no-such-charset>x",
            "also-unknown",
            PageInfo(None, "ascii", None),
            id="unknown-charsets-are-no-declaration",
        ),
        pytest.param(
            b"<meta charset=utf-16>x", None, PageInfo(None, "utf-8", None), id="meta-utf-16"
        ),
        pytest.param(
            b"<script nonce='n1'></script><script nonce=n0></script>x",
            None,
            PageInfo(None, "ascii", "n1"),
            id="nonce",
        ),
        # A policy may give styles another nonce than scripts: the snippet's <style> needs
        # a style's.
        pytest.param(
            b"<script nonce='n1'></script><style nonce=n2></style><style nonce=n3></style>x",
            None,
            PageInfo(None, "ascii", "n2"),
            id="nonce-of-a-style-first",
        ),
        pytest.param(
            b"<link rel=preload nonce=n1><link rel='alternate StyleSheet' href=a nonce=n2>x",
            None,
            PageInfo(None, "ascii", "n2"),
            id="nonce-of-a-stylesheet-link-first",
        ),
        pytest.param(
            b'<link rel=stylesheet nonce="a&amp;b">x',
            None,
            PageInfo(None, "ascii", "a&b"),
            id="nonce-link-unescaped",
        ),
        # Text to Chromium, a <meta> to the standard's prescan (Firefox): they read the page
        # in different encodings, and only ASCII reads the same in both.
        pytest.param(
            b"<title>Q &amp; A <meta charset=koi8-r></title><meta charset=windows-1251>x",
            None,
            PageInfo(None, "ascii", None),
            id="title-text-is-text-to-chromium-only",
        ),
        pytest.param(
            b"<title>Q &amp; A <b></title><meta charset=windows-1251>x",
            None,
            PageInfo(None, "cp1251", None),
            id="title-text-is-text",
        ),
        # The same with a script's text (Chromium: a string, the prescan: a <meta>).
        pytest.param(
            b"<script>var s = '<meta charset=\"windows-1251\">';</script><meta charset=utf-8>x",
            None,
            PageInfo(None, "ascii", None),
            id="meta-in-a-script-string-then-a-real-one",
        ),
        pytest.param(
            b"<script>var s = '<meta charset=\"windows-1251\">';</script>x",
            None,
            PageInfo(None, "ascii", None),
            id="meta-in-a-script-string",
        ),
        # Chromium reads the last of two charset attributes, the prescan the first.
        pytest.param(
            b"<meta charset=koi8-r charset=windows-1251>x",
            None,
            PageInfo(None, "ascii", None),
            id="two-charset-attributes",
        ),
        # Both read a charset attribute before a content one, wherever it stands.
        pytest.param(
            b"<meta http-equiv=content-type content='text/html; charset=koi8-r'"
            b" charset=windows-1251>x",
            None,
            PageInfo(None, "cp1251", None),
            id="charset-wins-over-content",
        ),
        pytest.param(
            b"<meta http-equiv=content-type content='text/html; charset=\"windows-1251 \"'>x",
            None,
            PageInfo(None, "cp1251", None),
            id="quoted-label-with-a-space",
        ),
        # Past the first 1024 bytes the prescan looks no further (nor Chromium, the head
        # over); the notice is ASCII whether a browser honours it or not.
        pytest.param(
            b"<head></head><script>" + b"x" * 1100 + b"</script><meta charset=windows-1251>x",
            None,
            PageInfo(None, "ascii", None),
            id="meta-after-the-first-1024-bytes",
        ),
        pytest.param(
            b"<script>" + b"x" * 900 + b"</script><meta charset=windows-1251>x",
            None,
            PageInfo(None, "cp1251", None),
            id="meta-within-the-first-1024-bytes",
        ),
        # Where markup can go, ISO-2022-JP reads ASCII as ASCII (never UTF-8 bytes).
        pytest.param(
            b"<meta charset=iso-2022-jp>x",
            None,
            PageInfo(None, "ascii", None),
            id="meta-iso-2022-jp",
        ),
        pytest.param(
            b"<meta charset=windows-1251>x",
            "no-such-label",
            PageInfo(None, "cp1251", None),
            id="unknown-header-label-is-no-header",
        ),
        pytest.param(
            b"<TITLE>&</title ><meta name=a nothing=1 charset=koi8-r>x",
            None,
            PageInfo(None, "koi8-r", None),
            id="charset-after-other-attributes",
        ),
        pytest.param(
            b'<meta content="text/html; charset=koi8-r" HTTP-EQUIV=content-type>x',
            None,
            PageInfo(None, "koi8-r", None),
            id="http-equiv-last",
        ),
        pytest.param(
            b"<script async src=a NONCE=n3></script>x",
            None,
            PageInfo(None, "ascii", "n3"),
            id="nonce-last",
        ),
        # Meta and link tags with the common attributes, read literally first, and with a
        # charset or a nonce among them.
        pytest.param(
            b'<meta name="a" content="b"><meta name="c" content="d" charset="koi8-r">x',
            None,
            PageInfo(None, "koi8-r", None),
            id="charset-after-common-attributes",
        ),
        pytest.param(
            b'<meta property="og:x" content="text/html; charset=koi8-r"'
            b' http-equiv="Content-Type">x',
            None,
            PageInfo(None, "koi8-r", None),
            id="http-equiv-after-common-attributes",
        ),
        pytest.param(
            b'<link rel="stylesheet" href="/a.css"><link rel="preload" href="/b.js" nonce="n5">x',
            None,
            PageInfo(None, "ascii", "n5"),
            id="nonce-after-common-attributes",
        ),
    ],
)
def test_page_info(doc: bytes, charset: str | None, expected: PageInfo) -> None:
    assert page_info(doc, charset) == expected


def test_head_skip_reads_only_what_can_matter(tag_names: Any) -> None:
    """Titles (with character references), and meta, link and script tags that declare no
    charset and carry no nonce are skipped in one match; the rest reaches the injector."""
    tok = Tokenizer(tag_names, _HEAD_WATCH)
    head = (
        b'<title>Q &amp; A <b></title>\n<meta name="a" content="b&amp;c">'
        b'<link rel=icon href="/i.png"><script src="/a.js" defer></script>'
        b"<meta charset=utf-8><script nonce=n></script><body>"
    )
    tok.scan(head, 0, True)
    assert tag_names.tags == [b"meta", b"script", b"body"]


def test_head_skip_passes_over_every_meta_when_the_header_declares_the_encoding(
    tag_names: Any,
) -> None:
    """The header's encoding wins over a ``<meta>`` (and a ``<meta>`` carries no nonce that
    counts): with one declared, no ``<meta>`` is a step in Python (one per page was)."""
    from compliance.html.injector import _HEAD_WATCH_DECLARED

    tok = Tokenizer(tag_names, _HEAD_WATCH_DECLARED)
    head = (
        b'<meta charset="utf-8"><META HTTP-EQUIV=content-type content="text/html;charset=koi8-r">'
        b"<meta charset=koi8-r /><script nonce=n></script><body>"
    )
    tok.scan(head, 0, True)
    assert tag_names.tags == [b"script", b"body"]
    doc = head + "Привет".encode("koi8-r")
    assert page_info(doc, "windows-1251") == PageInfo(None, "cp1251", "n")
    assert page_info(doc) == PageInfo(None, "utf-8", "n")  # undeclared: the first <meta>


def test_snippet_encoded_in_page_charset_with_character_references() -> None:
    injector = Injector(lambda page: {"body_start": "<p>Привет €</p>"})
    doc = b"<meta charset=koi8-r><body>"
    out = injector.feed(doc) + injector.finish()
    assert out == doc + "<p>Привет &#8364;</p>".encode("koi8-r")


def test_render_called_once_and_lazily() -> None:
    calls: list[PageInfo] = []

    def render(page: PageInfo) -> Mapping[Placement, str]:
        calls.append(page)
        return {"body_start": "S", "body_end": "E"}

    injector = Injector(render)
    assert injector.feed(b"<html><head><title>t</title>") == b"<html><head><title>t</title>"
    assert calls == []
    injector.feed(b"<body>x</body>")
    injector.finish()
    assert len(calls) == 1


def test_render_errors_propagate() -> None:
    def render(page: PageInfo) -> Mapping[Placement, str]:
        raise RuntimeError("boom")

    injector = Injector(render)
    with pytest.raises(RuntimeError, match="boom"):
        injector.feed(b"<body>x")


# --- streaming --------------------------------------------------------------------------------


def test_tag_split_at_every_byte() -> None:
    doc = b"<html lang=en><head><meta charset=utf-8></head><BODY class='a>b'><p>x</p></body>"
    for placement in ("body_start", "body_end", "marker"):
        out, _ = inject(doc, (placement,))  # inject() checks 1-byte chunks and more
        assert out.count(b"<aside>") == 1


def test_held_bytes_are_bounded() -> None:
    injector = Injector(lambda page: {"body_end": E}, max_hold=1000)
    injector.feed(b"<body>x</body>")
    for _ in range(100):
        injector.feed(b"<!--" + b"c" * 100 + b"-->")
        held = injector._held
        assert held is None or len(held) <= 1000 + 200
    assert injector.finish().endswith(E.encode())


def test_never_closing_comment_streams_through() -> None:
    injector = Injector(lambda page: {"body_end": E})
    injector.max_token = 1000
    sent = injector.feed(b"<body>x<!--")
    for _ in range(200):
        sent += injector.feed(b"- - > " * 100)
        assert len(injector._tail) <= 1000 + 600
    sent += injector.finish()
    assert sent == b"<body>x<!--" + b"- - > " * 100 * 200  # never inserted inside a comment
    assert not injector.inserted


def test_never_closing_tag_streams_through() -> None:
    injector = Injector(lambda page: {"body_end": E})
    injector.max_token = 1000
    sent = injector.feed(b"<body>x<div title='")
    for _ in range(200):
        sent += injector.feed(b"> </body> " * 50)
        assert len(injector._tail) <= 1000 + 500
    sent += injector.feed(b"'>y</body>")
    sent += injector.finish()
    assert (
        sent == b"<body>x<div title='" + b"> </body> " * 50 * 200 + b"'>y" + E.encode() + b"</body>"
    )


@pytest.mark.parametrize("max_token", [8, 1000])
def test_long_tags_are_read_the_same_however_chunked(max_token: int) -> None:
    class Small(Injector):
        pass

    Small.max_token = max_token
    doc = (
        b"<html lang=en><head><script nonce=abc>x</script></head>"
        b"<body data-x='" + b"y" * 30 + b"'><p a=\"1>2\" b='3' c=4>t</p>"
        b"<svg><![CDATA[</body>]]></svg><!-- compliance:notices --></body>"
    )
    results = set()
    for sizes in ([1], [2], [5], [64], [len(doc)]):
        injector = Small(lambda page: {"body_end": E, "marker": M, "body_start": S})
        results.add(feed_all(injector, doc, sizes))
    assert len(results) == 1


def test_feed_after_finish_passes_through() -> None:
    injector = Injector(lambda page: {"body_end": E})
    injector.feed(b"<body>")
    injector.finish()
    assert injector.feed(b"late") == b"late"
    assert injector.finish() == b""


# --- the body scan's fast path for plainly written tags ---------------------------------------

RAW_NAMES = ["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"]
RAW_NAMES += ["noscript", "template"]


@pytest.mark.parametrize("name", RAW_NAMES)
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_plain_tags_never_hide_an_interesting_one(name: str, case: object) -> None:
    """Plain tags that share first letters with interesting names are read before them, and
    the interesting element still hides its fake ``</body>`` whatever its case."""
    tag = case(name)  # type: ignore[operator]
    neighbours = '<span class="a"><strong>s</strong><table><tr><td>t</td></tr></table>'
    neighbours += '<img src="i"><nav>n</nav><main>m</main><ol><li>o</li></ol><pre>x</pre>'
    neighbours += "<section><time>t</time><mark>m</mark><nobr>n</nobr><kbd>k</kbd></section>"
    neighbours += "<sty-le>x</sty-le><tex-math>y</tex-math><scripted>z</scripted><input>"
    doc = f"<body>{neighbours}<{tag} class='x'>a </body> b</{tag}><p>c</p></body></html>"
    expect(doc, ("body_end",), doc.replace("<p>c</p></body>", "<p>c</p>{E}</body>"))


@pytest.mark.parametrize("name", ["svg", "math", "select", "template", "body", "BODY", "Svg"])
def test_plain_end_tags_never_hide_an_interesting_one(name: str) -> None:
    doc = f"<body><b>x</b><table></table><s>y</s><{name.lower()}><i>z</i></{name}>q</body>"
    out, _ = inject(doc.encode())
    assert out.decode().count(E) == 1
    assert out.decode().endswith(f"{E}</body>") or name.lower() == "body"


def test_plain_tag_with_quoted_gt_and_fake_body() -> None:
    doc = "<body><a title=\"x></body>\" href='y>'>l</a><p data-x=a>b</p></body>"
    expect(doc, ("body_end",), doc.replace("b</p></body>", "b</p>{E}</body>"))


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("<script>var a = '</body>';</script>", id="plain"),
        pytest.param("<SCRIPT type='x'>if (a<b) { '</body>' }</SCRIPT >", id="upper"),
        pytest.param("<script>'<!--'; '<script>'; '</body>'; '-->'</script>", id="escaped"),
        pytest.param(
            "<script>'<!-- <script>'; '</script>'; '</body>'; '-->'</script>", id="double"
        ),
        pytest.param("<script/>'</body>'</script>", id="self-closing-is-not"),
        pytest.param("<script>'</scripty></body>'</script>", id="lookalike-end"),
    ],
)
def test_scripts_in_the_body_hide_a_fake_end(script: str) -> None:
    doc = f"<body><p>a</p>{script}<p>b</p></body></html>"
    expect(doc, ("body_end",), doc.replace("<p>b</p></body>", "<p>b</p>{E}</body>"))


def test_comments_are_skipped_unless_a_marker_is_looked_for() -> None:
    comments = "<!-- a --><!--></body>--><!---></body>--><!-- </body> --!><!-- -- - -->"
    doc = f"<body>{comments}<!-- compliance:notices --><p>x</p></body>"
    want = doc.replace("notices -->", "notices -->{M}").replace("x</p></body>", "x</p>{E}</body>")
    expect(doc, ("body_end", "marker"), want)
    expect(doc, ("body_end",), doc.replace("x</p></body>", "x</p>{E}</body>"))


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(b"<html><body><p>x</p></body></html>", id="nothing-declared"),
        # A browser honours a <meta> early in the body too (its prescan reads the first
        # 1024 bytes), after the injector has rendered.
        pytest.param(b"<body><meta charset=windows-1251><p>x</p></body>", id="meta-in-body"),
    ],
)
def test_a_page_that_declares_no_charset_gets_ascii_snippets(doc: bytes) -> None:
    """Undeclared, the browser guesses the encoding (Chromium reads such a page as
    windows-1252, however much UTF-8 it holds): a UTF-8 notice would be mojibake, references
    read the same in every ASCII-compatible guess."""
    injector = Injector(lambda page: {"body_end": "<p>Уведомление €</p>"})
    out = injector.feed(doc) + injector.finish()
    assert out.isascii()
    assert b"<p>&#1059;&#1074;&#1077;&#1076;&#1086;" in out
    for guess in ("windows-1252", "utf-8", "windows-1251"):
        assert "Уведомление €" in html.unescape(out.decode(guess))

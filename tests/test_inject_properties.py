"""Property tests of the streaming injector on generated HTML-like documents.

Runs 200 examples per property by default. A longer run uses the ``release`` profile::

    HYPOTHESIS_PROFILE=release pytest tests/test_inject_properties.py
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compliance.inject import Injector, PageInfo, Placement

html5lib = pytest.importorskip("html5lib")

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "release", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

NOTICE = '<aside class="compliance-notice" data-compliance-rule="p">N</aside>'

names = st.sampled_from(["div", "p", "span", "a", "B", "Section", "em", "ul", "li", "h1"])
values = st.sampled_from(["x", "a>b", "</body>", "'", '"', "<!--", "", "-->", "</script>"])
text = st.sampled_from(["hello", " ", "\n", "a < b", "x > y", "&amp;", "a </> b", "&lt;/body&gt;"])


@st.composite
def attribute(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["title", "class", "data-x", "alt"]))
    value = draw(values)
    quote = draw(st.sampled_from(['"', "'", ""]))
    if quote == "":
        value = "".join(c for c in value if c not in " \t\n>\"'=<`") or "v"
    elif quote in value:
        value = value.replace(quote, "")
    return f" {name}={quote}{value}{quote}"


@st.composite
def element(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(
            ["text", "tag", "comment", "script", "style", "textarea", "template", "bogus"]
        )
    )
    if kind == "text":
        return draw(text)
    if kind == "comment":
        return "<!--" + draw(st.sampled_from([" </body> ", "x", " <p> ", ""])) + "-->"
    if kind == "bogus":
        return draw(st.sampled_from(["<? </body> ?>", "<! x >", "<!-->", "<!--->"]))
    if kind == "script":
        body = draw(st.sampled_from(["var s = '</body>';", "a<b", "'</scripty>'", "<!-- x -->"]))
        return f"<script>{body}</script>"
    if kind in ("style", "textarea"):
        return f"<{kind}></body><p></{kind}>"
    if kind == "template":
        return "<template><p></body></p></template>"
    name = draw(names)
    attrs = "".join(draw(st.lists(attribute(), max_size=3)))
    children = ""
    if depth < 3:
        children = "".join(draw(st.lists(element(depth + 1), max_size=4)))
    return f"<{name}{attrs}>{children}</{name}>"


@st.composite
def document(draw: st.DrawFn) -> str:
    head = "".join(
        draw(
            st.lists(
                st.sampled_from(
                    [
                        "<meta charset=utf-8>",
                        "<title>t</body></title>",
                        "<link rel=x>",
                        "<script>'</body>'</script>",
                        "<!-- head -->",
                    ]
                ),
                max_size=3,
            )
        )
    )
    content = "".join(draw(st.lists(element(), max_size=6)))
    explicit_body = draw(st.booleans())
    body_open = draw(st.sampled_from(["<body>", "<BODY class='a>b'>", "<body >"]))
    closing = draw(st.sampled_from(["</body></html>", "</body>\n", "", "</BODY>\n<!-- end -->"]))
    doctype = draw(st.sampled_from(["<!DOCTYPE html>", ""]))
    if explicit_body:
        return f"{doctype}<html><head>{head}</head>{body_open}{content}{closing}"
    return f"{doctype}{head}{content}{closing}"


def chunked(doc: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(doc) + 1) for c in cuts})
    pieces = []
    last = 0
    for p in points:
        pieces.append(doc[last:p])
        last = p
    pieces.append(doc[last:])
    return pieces


def run(
    doc: bytes, placement: Placement, pieces: list[bytes] | None = None
) -> tuple[bytes, Injector]:
    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {placement: NOTICE}

    injector = Injector(render)
    out = b"".join(injector.feed(p) for p in (pieces if pieces is not None else [doc]))
    return out + injector.finish(), injector


placements = st.sampled_from(["body_start", "body_end", "marker"])


def _assert_the_rest_is_the_page(
    edited: Any, parents: dict[Any, Any], notice: Any, data: bytes, whole: bytes
) -> None:
    """Without the notice (its text after it kept where it was), the edited tree is
    html5lib's tree of the page."""
    siblings = list(parents[notice])
    index = siblings.index(notice)
    if notice.tail:
        if index:
            siblings[index - 1].tail = (siblings[index - 1].tail or "") + notice.tail
        else:
            parents[notice].text = (parents[notice].text or "") + notice.tail
    parents[notice].remove(notice)
    original = html5lib.parse(data, namespaceHTMLElements=False)
    assert html5lib.serialize(edited) == html5lib.serialize(original), whole


@given(document(), placements, st.lists(st.integers(min_value=0), max_size=12))
def test_output_is_input_plus_one_notice_however_chunked(
    doc: str, placement: Placement, cuts: list[int]
) -> None:
    data = doc.encode()
    whole, injector = run(data, placement)
    split, _ = run(data, placement, chunked(data, cuts))
    assert split == whole
    assert injector.inserted
    notice = NOTICE.encode()
    assert whole.count(notice) == 1
    assert whole.replace(notice, b"", 1) == data


@given(document(), placements)
def test_notice_lands_in_body_and_leaves_the_rest_of_the_tree(
    doc: str, placement: Placement
) -> None:
    out, _ = run(doc.encode(), placement)
    tree = html5lib.parse(out, namespaceHTMLElements=False, scripting=True)
    notices = [
        e
        for body in tree.iter("body")
        for e in body.iter("aside")
        if e.get("data-compliance-rule") == "p"
    ]
    assert len(notices) == 1
    # Not inside a comment, script, style, textarea, template or attribute: it is an element
    # whose ancestors are ordinary elements.
    parents = {child: parent for parent in tree.iter() for child in parent}
    node = notices[0]
    while node in parents:
        node = parents[node]
        assert node.tag not in ("script", "style", "textarea", "template", "title")


@given(st.binary(max_size=300), placements, st.lists(st.integers(min_value=0), max_size=8))
def test_never_raises_and_never_loses_bytes(
    data: bytes, placement: Placement, cuts: list[int]
) -> None:
    whole, injector = run(data, placement)
    split, _ = run(data, placement, chunked(data, cuts))
    assert split == whole
    assert not (injector.skipped_reason or "").startswith("internal error")
    notice = NOTICE.encode()
    if injector.inserted:
        start = whole.find(notice)
        assert start >= 0
        rest = whole[:start] + whole[start + len(notice) :]
        # Closers for an unfinished <svg>, <math> or <select> may precede an end notice.
        assert rest == data or (rest.startswith(data) and rest[len(data) :].startswith(b"</"))
    else:
        assert whole == data


@given(st.text(alphabet="<>/!-?abcdyst =\"'\n", max_size=200), placements)
def test_markup_soup_never_raises(soup: str, placement: Placement) -> None:
    data = soup.encode()
    whole, injector = run(data, placement)
    ones, _ = run(data, placement, [data[i : i + 1] for i in range(len(data))])
    assert ones == whole
    assert not (injector.skipped_reason or "").startswith("internal error")


# --- the charset a <meta> declares, as two kinds of browser read it ---------------------------

HEAD_UNITS = [
    "<meta charset=koi8-r>",
    "<meta charset=windows-1251>",
    "<meta charset=koi8-r charset=windows-1251>",
    "<meta http-equiv=content-type content='text/html; charset=koi8-r'>",
    "<meta content='charset=\"windows-1251 \"' http-equiv=Content-Type>",
    "<meta charset=bogus>",
    "<meta charset=iso-2022-jp>",
    "<script>var s = '<meta charset=\"windows-1251\">';</script>",
    "<script>'<!--'</script>",
    "<title><meta charset=koi8-r></title>",
    "<style>/* <meta charset=koi8-r> */</style>",
    "<!-- <meta charset=koi8-r> -->",
    "<link title='<meta charset=koi8-r>'>",
    "<noscript><meta charset=koi8-r></noscript>",
    "<template><meta charset=koi8-r></template>",
    "<!x <meta charset=koi8-r>>",
    "</head>",
    "<script>" + "x" * 400 + "</script>",
    " ",
]
TEXT_NOTICE = "<aside>Уведомление é €</aside>"


@given(
    st.lists(st.sampled_from(HEAD_UNITS), max_size=8),
    st.sampled_from(["<body>", "<p>", ""]),
    st.lists(st.integers(min_value=0), max_size=8),
)
def test_a_notice_is_in_a_declared_charset_only_where_both_readings_agree(
    units: list[str], body: str, cuts: list[int]
) -> None:
    """The notice is ASCII (numeric references), or in the charset the standard's prescan
    (Firefox) finds in the edited page, which is also the head's (Chromium); the same
    however the page is chunked."""
    from compliance.html.charset import meta_codec, prescan

    data = ("".join(units) + body + "<p>x</p>").encode()
    seen: list[PageInfo] = []

    def render(page: PageInfo) -> Mapping[Placement, str]:
        seen.append(page)
        return {"body_start": TEXT_NOTICE}

    outs = []
    for pieces in ([data], chunked(data, cuts), [data[i : i + 1] for i in range(len(data))]):
        injector = Injector(render)
        outs.append(b"".join(injector.feed(p) for p in pieces) + injector.finish())
    assert outs[0] == outs[1] == outs[2]
    assert seen[0] == seen[1] == seen[2]
    codec = seen[0].charset
    if codec != "ascii":
        assert prescan(outs[0]) == codec
        assert meta_codec(codec) is not None
    assert TEXT_NOTICE in html.unescape(outs[0].decode(codec))


@given(
    st.binary(max_size=2048)
    | st.lists(st.sampled_from(HEAD_UNITS)).map(lambda u: "".join(u).encode())
)
def test_the_prescan_reads_only_the_first_1024_bytes_and_never_raises(data: bytes) -> None:
    from compliance.html.charset import PRESCAN_BYTES, prescan

    found = prescan(data)
    assert found == prescan(data[:PRESCAN_BYTES])
    if len(data) >= PRESCAN_BYTES:
        assert found == prescan(data + b"<meta charset=koi8-r>")
    # A start of the bytes answers what the whole does, or not yet.
    for k in range(0, len(data), 37):
        assert prescan(data[:k], more=True) in (None, found)


# --- after_heading where the heading is closed however the tree builder closes it -------------

HEADING_SOUP = [
    "<div>",
    "</div>",
    "<h1>",
    "</h1>",
    "<h2>",
    "</h2>",
    "<table>",
    "</table>",
    "<tbody>",
    "<tr>",
    "</tr>",
    "<td>",
    "</td>",
    "<th>",
    "<caption>",
    "</caption>",
    "<ul>",
    "<li>",
    "</li>",
    "</ul>",
    "<dd>",
    "</dd>",
    "<button>",
    "</button>",
    "<object>",
    "</object>",
    "<span>",
    "</span>",
    "<b>",
    "</b>",
    "<p>",
    "</p>",
    "<section>",
    "</section>",
    "<details>",
    "</details>",
    "<svg><g>",
    "</svg>",
    "<ruby><rt>",
    "<col>",
    "T",
    " ",
]


@given(
    st.lists(st.sampled_from(HEADING_SOUP), max_size=24),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_an_after_heading_notice_is_right_after_the_heading_or_at_the_body_start(
    soup: list[str], cuts: list[int]
) -> None:
    """Right after the first <h1> in the tree html5lib builds (however the heading is
    closed: its end tag, another heading, an element around it, a table part), or at the
    body start where that cannot be followed; never in the heading, the rest of the tree
    unchanged, the same however the page is chunked."""
    data = ("<body>" + "".join(soup)).encode()
    whole, injector = run(data, "after_heading")
    split, _ = run(data, "after_heading", chunked(data, cuts))
    assert split == whole
    assert injector.inserted_placements == ["after_heading"]
    edited = html5lib.parse(whole, namespaceHTMLElements=False)
    body = edited.find("body")
    found = [e for e in body.iter("aside") if e.get("data-compliance-rule") == "p"]
    assert len(found) == 1, whole
    notice = found[0]
    parents = {child: parent for parent in edited.iter() for child in parent}
    node = notice
    while node in parents:
        node = parents[node]
        assert node.tag != "h1", whole
    siblings = list(parents[notice])
    index = siblings.index(notice)
    at_start = parents[notice] is body and index == 0
    # (The first heading opened: not the first in the tree when a later one is moved before
    # a table.)
    after_heading = index > 0 and siblings[index - 1].tag == "h1"
    assert at_start or after_heading, whole
    _assert_the_rest_is_the_page(edited, parents, notice, data, whole)


# --- notices with a link, where the page's own links are open -------------------------------

LINKED_NOTICE = (
    '<aside class="compliance-notice" data-compliance-rule="p">'
    '<p>More: <a href="https://example.org/more">here</a>.</p></aside>'
)
LINK_SOUP = [
    "<a href=/x>",
    "<a href=/y>",
    "</a>",
    "<table>",
    "</table>",
    "<tbody>",
    "<tr>",
    "</tr>",
    "<td>",
    "</td>",
    "<th>",
    "</th>",
    "<caption>",
    "</caption>",
    "<col>",
    "<marquee>",
    "</marquee>",
    "<object>",
    "</object>",
    "<applet>",
    "</applet>",
    "<div>",
    "</div>",
    "<b>",
    "</b>",
    "<h1>",
    "</h1>",
    "<!-- compliance:notices -->",
    "T",
]
# With paragraphs, which a notice must not close (end tags with nothing to close among
# them: a stray </div> or </h1> leaves a paragraph open).
PARAGRAPH_SOUP = [*LINK_SOUP, "<p>", "</p>"]


@given(
    st.lists(st.sampled_from(LINK_SOUP), max_size=24)
    | st.lists(st.sampled_from(PARAGRAPH_SOUP), max_size=24),
    st.sampled_from(["after_heading", "marker"]),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_a_notice_with_a_link_never_lands_in_a_link_the_page_keeps_open(
    soup: list[str], placement: Placement, cuts: list[int]
) -> None:
    """Links left open, closed by their end tag, by the next link, or with the table cell,
    caption, marquee, object or applet they were opened in: a notice holding a link is never
    inside one of the page's (the parser would close the page's link, or clone it into the
    notice), and the rest of the tree is html5lib's tree of the page; the same however the
    page is chunked. (html5lib 1.1 reads a <template> as any element, where browsers keep
    its content inert: templates are checked in Chromium, tests/test_browser.py.)"""
    data = ("<!DOCTYPE html><body>" + "".join(soup) + "<p>end</p>").encode()

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {placement: LINKED_NOTICE}

    outs = []
    for pieces in ([data], chunked(data, cuts)):
        injector = Injector(render)
        outs.append(b"".join(injector.feed(p) for p in pieces) + injector.finish())
    assert outs[0] == outs[1]
    assert injector.inserted_placements == [placement]
    whole = outs[0]
    edited = html5lib.parse(whole, namespaceHTMLElements=False)
    found = [e for e in edited.iter("aside") if e.get("data-compliance-rule") == "p"]
    assert len(found) == 1, whole
    notice = found[0]
    hrefs = [a.get("href") for a in notice.iter("a")]
    assert hrefs == ["https://example.org/more"], whole
    parents = {child: parent for parent in edited.iter() for child in parent}
    node = notice
    while node in parents:
        node = parents[node]
        assert node.tag != "a", whole
    _assert_the_rest_is_the_page(edited, parents, notice, data, whole)


# --- a marker in a paragraph, and end tags that may close it ----------------------------------

PARAGRAPH_END_SOUP = [
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<section>",
    "</section>",
    "<h1>",
    "</h1>",
    "</h2>",
    "<ul>",
    "<li>",
    "</li>",
    "</ul>",
    "<dl>",
    "<dd>",
    "</dd>",
    "<button>",
    "</button>",
    "<table>",
    "<td>",
    "</td>",
    "</table>",
    "<object>",
    "</object>",
    "<span>",
    "</span>",
    "<b>",
    "</b>",
    "</colgroup>",
    "<form>",
    "</form>",
    "<!-- compliance:notices -->",
    "T",
]


@example(["<p>", "<button>", "<p>", "<!-- compliance:notices -->", "</p>"], False, [])
@given(
    st.lists(st.sampled_from(PARAGRAPH_END_SOUP), max_size=24),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_a_marker_notice_never_splits_the_paragraph_it_is_in(
    soup: list[str], quirks: bool, cuts: list[int]
) -> None:
    """End tags with nothing to close (a stray </div> or </h1>), or whose element is open
    outside the paragraph's scope, leave it open: the notice goes where the paragraph ends
    (never inside it, which would close it and move what follows out of it), and the rest
    of the tree is html5lib's tree of the page; the same however the page is chunked."""
    data = (("" if quirks else "<!DOCTYPE html>") + "<body>" + "".join(soup)).encode()
    whole, injector = run(data, "marker")
    split, _ = run(data, "marker", chunked(data, cuts))
    assert split == whole
    assert injector.inserted_placements == ["marker"]
    edited = html5lib.parse(whole, namespaceHTMLElements=False)
    found = [e for e in edited.iter("aside") if e.get("data-compliance-rule") == "p"]
    assert len(found) == 1, whole
    notice = found[0]
    parents = {child: parent for parent in edited.iter() for child in parent}
    _assert_the_rest_is_the_page(edited, parents, notice, data, whole)


# A paragraph opened in a scope boundary (a <button>, an <object>, a table cell) of the one
# followed is in button scope where that one is not: a marker in it was taken to stand
# outside any paragraph, and its notice closed the paragraph, whose end tag then made an
# empty one. Not followed, it sends the notice to the body start while it may be open. And
# a <button> in a <button> closes the first: the paragraph around both was taken to be out
# of scope still. And a <form> where one is open is dropped: it was taken to close the
# paragraph.
INNER_PARAGRAPHS = [
    ("<p><button><p><!-- compliance:notices --></p>", "<body>{N}<p>"),
    ("<p><button><p>a<!-- compliance:notices -->b</p>c</button>d</p>e", "<body>{N}<p>"),
    ("<p><object><p>a<!-- compliance:notices -->b</p>c</object>d</p>e", "<body>{N}<p>"),
    ("<p><table><tr><td><p>a<!-- compliance:notices -->b</p></td></tr></table>c", "<body>{N}<p>"),
    ("<p><button><div><p>a<!-- compliance:notices -->b</div></button>c</p>", "<body>{N}<p>"),
    ("<p><button><p><a href=/x>a<!-- compliance:notices -->b</a>c</p>d", "<body>{N}<p>"),
    # Once it is closed (its end tag, or the boundary's), the place is found as before.
    ("<p><button><p>a</p><!-- compliance:notices -->b</button>c</p>d", "-->{N}b"),
    ("<p><button><p>a</button><!-- compliance:notices -->b</p>c", "b</p>{N}c"),
    ("<p><object><p>a</object><!-- compliance:notices -->b</p>c", "b</p>{N}c"),
    ("<p><button><p>a<div>x</div><!-- compliance:notices -->b</button>c</p>", "-->{N}b"),
    ("<p><button><p>a<object><div>b</object><!-- compliance:notices -->c</button>", "<body>{N}"),
    # A <button> start tag closes the <button> open in scope, with what is open in it: the
    # paragraph followed is in button scope again once the second one closes.
    ("<p><button>a<button>b</button><!-- compliance:notices -->c</p>d", "c</p>{N}d"),
    ("<p><button><p>a<button><p>b</button><!-- compliance:notices -->c</p>", "c</p>{N}"),
    ("<p><button>a<object><button>b</button></object><!-- compliance:notices -->c", "-->{N}c"),
    # A <form> start tag closes a paragraph only where the parser takes it: it drops one while
    # a form is open (its form element pointer set, until a </form>), in any case.
    ("<form><p>a<!-- compliance:notices -->b<form>c</p>d", "c</p>{N}d"),
    ("<form><p>a<form><!-- compliance:notices -->b</p>c", "b</p>{N}c"),
    ("<FORM ACTION=/s><p>a<!-- compliance:notices -->b<Form>c</p>d", "c</p>{N}d"),
    ("<form>x</form><p>a<!-- compliance:notices -->b<form>c", "b{N}<form>c"),
    ("<form><p>a</form><p>b<!-- compliance:notices -->c<form>d</p>e", "c{N}<form>d"),
]


# The same for after_heading, whose place past the link around the headline waits for the
# paragraph that link ends in.
INNER_PARAGRAPHS_AFTER_HEADING = [
    ("<a href=/x><h1>T</h1><p>x<button><p>y</a>z</p>w", "<body>{N}<a"),
    ("<a href=/x><h1>T</h1><p>x<button>q<button>r</button>y</a>z</p>w", "z</p>{N}w"),
    ("<a href=/x><h1>T</h1><p>x<button><p>y</p></button>v</a>z</p>w", "z</p>{N}w"),
    ("<form><a href=/x><h1>T</h1><p>a</a>b<form>c</p>d", "c</p>{N}d"),
]


def _assert_placed_as_the_parser_reads_it(placement: Placement, body: str, expected: str) -> None:
    """The notice stands where ``expected`` says however the page is cut in two, and the
    rest of html5lib's tree is the page's."""
    data = ("<!DOCTYPE html><body>" + body).encode()
    whole, injector = run(data, placement)
    for cut in range(1, len(data)):
        assert run(data, placement, [data[:cut], data[cut:]])[0] == whole
    assert injector.inserted_placements == [placement]
    assert expected.replace("{N}", NOTICE).encode() in whole, whole
    edited = html5lib.parse(whole, namespaceHTMLElements=False)
    found = [e for e in edited.iter("aside") if e.get("data-compliance-rule") == "p"]
    assert len(found) == 1, whole
    parents = {child: parent for parent in edited.iter() for child in parent}
    _assert_the_rest_is_the_page(edited, parents, found[0], data, whole)


@pytest.mark.parametrize(
    ("placement", "body", "expected"),
    [("marker", *case) for case in INNER_PARAGRAPHS]
    + [("after_heading", *case) for case in INNER_PARAGRAPHS_AFTER_HEADING],
)
def test_a_place_in_a_paragraph_in_a_button_of_another_stays_out_of_it(
    placement: Placement, body: str, expected: str
) -> None:
    _assert_placed_as_the_parser_reads_it(placement, body, expected)


# A paragraph closed by a start tag that leaves foreign content (a <div> in <math>): the
# notice went right before that tag, still in the foreign content, where an <aside> (no
# breakout tag) is a MathML or SVG element. It goes at the body start.
BREAKOUTS = [
    ("marker", "<p>a<!-- compliance:notices -->b<math><div>x", "<body>{N}<p>"),
    ("marker", "<p>a<!-- compliance:notices -->b<svg><p>x</p>", "<body>{N}<p>"),
    ("marker", "<table><tr><td><p>a<!-- compliance:notices --><svg><table>", "<body>{N}<table>"),
    ("after_heading", "<a href=/x><h1>T</h1><p>a</a>b<math><div>c", "<body>{N}<a"),
    # Closed in HTML, the place is found as before; a heading closed by one is closed first.
    ("marker", "<p>a<!-- compliance:notices -->b<math></math><div>x", "</math>{N}<div>"),
    ("after_heading", "<h1>T<svg><h2>x", "<svg></h1>{N}<h2>"),
]


@pytest.mark.parametrize(("placement", "body", "expected"), BREAKOUTS)
def test_a_place_found_at_a_tag_leaving_foreign_content_is_not_in_it(
    placement: Placement, body: str, expected: str
) -> None:
    _assert_placed_as_the_parser_reads_it(placement, body, expected)

"""``compliance._cinject.skip_boring`` against the regular expressions it replaces.

The C function must return exactly what ``_BORING`` / ``_BORING_IN_SELECT`` (compliance.inject)
return for every input: generated HTML-like and binary data at any position, every prefix of
real documents from every tag, and a table of the constructs whose regex semantics are easy to
get wrong. Skipped when the extension is not built.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.inject import _BORING, _BORING_IN_SELECT

_cinject = pytest.importorskip("compliance._cinject")

# (in_select, comments): every combination the injector uses.
MODES = [(False, False), (False, True), (True, False), (True, True)]
MODE_IDS = ["body", "body-comments", "select", "select-comments"]

Buffer = bytes | bytearray | memoryview


def regex_end(data: Buffer, pos: int, in_select: bool, comments: bool) -> int:
    """What the C function must return: the end of the regex's match."""
    match = (_BORING_IN_SELECT if in_select else _BORING)[comments].match(data, pos)
    assert match is not None  # the pattern can match empty, so it always matches
    return match.end()


def check(data: Buffer, pos: int, in_select: bool, comments: bool) -> None:
    want = regex_end(data, pos, in_select, comments)
    got = _cinject.skip_boring(data, pos, in_select, comments)
    assert got == want, (bytes(data), pos, in_select, comments)


# --- generated data ---------------------------------------------------------------------------

FRAGMENTS = [
    *(b"<", b"</", b">", b"<!--", b"-->", b"--!>", b"-", b"!", b"?", b"`"),
    *(b"<script", b"</script", b"</SCRIPT ", b"<sCrIpT>", b"<scripty"),
    *(b"<body", b"</body>", b"</BODY"),
    *(b"<sel", b"<select>", b"</select>", b"<input", b"<keygen", b"<tem", b"<template>"),
    *(b"</template>", b"<svg", b"</svg>", b"<math", b"<style>", b"<title>", b"<xmp", b"<iframe"),
    *(b"<noscript", b"<plaintext", b"<textarea"),
    # The first letters of the plain-tag pattern and the pairs its lookaheads look for.
    *(b"<s", b"<t", b"<p", b"<i", b"<n", b"<m", b"<x", b"<k", b"</b", b"</t", b"</s", b"</m"),
    *(b"cr", b"ty", b"vg", b"el", b"ex", b"em", b"it", b"la", b"fr", b"np", b"oe", b"of"),
    *(b"os", b"at", b"mp", b"ey", b"od"),
    *(b'<p class="a>b">', b"'", b'"', b"=", b"/", b"\t", b"\n", b"\f", b"\r", b" "),
    *(b"\x00", b"\xff", b"a", b"Z", b"q", b"S", b"T"),
    *(b"<a href=x>", b"<br/>", b"<!doctype html>", b"<?x>", b"<a b='c'>", b"<div id=a b>"),
]

fragment = st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6))
html_like = st.lists(fragment, max_size=40).map(b"".join)


@st.composite
def data_and_pos(draw: st.DrawFn, data: st.SearchStrategy[bytes]) -> tuple[bytes, int]:
    """Data and a position: 0, a "<" in it, or anywhere from before the start to past the end."""
    value = draw(data)
    starts = [i for i, byte in enumerate(value) if byte == ord("<")]
    pos = draw(
        st.one_of(
            st.just(0),
            st.sampled_from(starts) if starts else st.just(0),
            st.integers(-3, len(value) + 3),
        )
    )
    return value, pos


@pytest.mark.parametrize(("in_select", "comments"), MODES, ids=MODE_IDS)
@settings(deadline=None, max_examples=400)
@given(case=data_and_pos(html_like))
def test_html_like_data(case: tuple[bytes, int], in_select: bool, comments: bool) -> None:
    check(*case, in_select, comments)


@settings(deadline=None, max_examples=300)
@given(case=data_and_pos(st.binary(max_size=64)))
def test_binary_data(case: tuple[bytes, int]) -> None:
    for in_select, comments in MODES:
        check(*case, in_select, comments)


@settings(deadline=None, max_examples=300)
@given(case=data_and_pos(html_like), huge=st.integers(2**20, 2**62))
def test_position_is_clamped(case: tuple[bytes, int], huge: int) -> None:
    data, _ = case
    for in_select, comments in MODES:
        assert _cinject.skip_boring(data, -huge, in_select, comments) == regex_end(
            data, 0, in_select, comments
        )
        assert _cinject.skip_boring(data, huge, in_select, comments) == len(data)
        check(data, -huge, in_select, comments)
        check(data, huge, in_select, comments)


# --- every prefix of real documents -----------------------------------------------------------

DOCUMENTS = {
    "page": b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>T</title>
<script nonce="n">var s = "</body>";</script><style>p > a { x: 1 }</style></head>
<body class="page"><header><nav><a href="/" title='a > b'>Home</a></nav></header>
<main><p class=lead data-x = "1>2">Lorem <em>ipsum</em> &amp; a < b, c > d.<br/></p>
<!-- card: </body> is not here --><!--><!---><!-- x --!>
<div class="card"><img src="/i.jpg" alt="photo 1 > 0" width=320></div>
<script>document.write("<div>" + "</body>" + "</div>"); if (a < b && c > d) {}</script>
<script type="module">import x from "/x.js"</SCRIPT >
<script><!-- escaped </script> --></script>
<form><select name=s><option>1<input type=text><keygen></select><input value='v'></form>
<template><p>t</p></template><svg viewBox="0 0 1 1"><path d=M0/></svg><math><mi>x</mi></math>
<textarea></body></textarea><table><tr><td>1</td></tr></table>
<!-- compliance:notices -->
</main><footer><p>&copy; 2024</p></footer>
</body>
</html>
""",
    "tricky": (
        b'<p a="x" b=\'y\' c=z d e=`f>g<a "q" =r><s><sc><scr><t><te><tex><ti><tit><i><if><ifr>'
        b"<in><inp><n><no><noe><nof><nos><m><ma><mat><x><xm><xmp><k><ke><key><pl><pla></b></bo>"
        b"</bod></t></te></tem></s></sv></se></sel></m></ma></mat></div \t><br / ><a b=c=d>"
        b"<a b=<c><a\x00b=\xff>\x00<\xff>< a<=x>\r\n\f<!doctype html><?php ?><!x></ a></3>"
        b'<SCRIPT>a</scripty></SCRIPT\n><script src="x"/></script ><ScRiPt>x<!-</sCrIpT/>'
        b"<!-- -- - --><!-- x -- ><!-- y --!><!----><!---->-->"
    ),
    "unterminated": b'<a href="/x>y</a><p>text <b>bold</b><script>x</script',
}


def prefixes_from_every_tag(data: bytes) -> int:
    """Check every prefix of data from 0 and from every "<", in every mode; the count."""
    view = memoryview(data)
    starts = [0] + [i for i in range(1, len(data)) if data[i] == ord("<")]
    count = 0
    for start in starts:
        for end in range(start, len(data) + 1):
            prefix = view[:end]
            for in_select, comments in MODES:
                check(prefix, start, in_select, comments)
                count += 1
    return count


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_prefix_of_documents(name: str) -> None:
    assert prefixes_from_every_tag(DOCUMENTS[name]) > 0


def corpus_inputs(root: Path) -> list[bytes]:
    """Every ``#data`` input of html5lib's tree-construction files (fragments too)."""
    inputs = []
    for path in sorted(root.glob("*.dat")):
        lines = path.read_bytes().split(b"\n")
        i = 0
        while i < len(lines):
            if lines[i] != b"#data":
                i += 1
                continue
            j = i + 1
            while j < len(lines) and lines[j] != b"#errors":
                j += 1
            inputs.append(b"\n".join(lines[i + 1 : j]))
            i = j
    return inputs


def test_every_prefix_of_the_html5lib_corpus(html_corpus: Path) -> None:
    inputs = corpus_inputs(html_corpus)
    assert len(inputs) > 1000
    for data in inputs:
        prefixes_from_every_tag(data)


# --- the constructs that are easy to get wrong --------------------------------------------------

# (data, expected end for the four modes in MODES order), by construct.
CASES = [
    # Text runs and plain tags.
    pytest.param(b"hello world", [11] * 4, id="text-only"),
    pytest.param(b'<p class="a>b">x<br/>y', [22] * 4, id="plain-quoted-gt"),
    pytest.param(b"\xff<a\x00b>\x00", [7] * 4, id="nul-and-high-bytes"),
    # "=" then an invalid value: the plain-tag pattern fails, the exact one reads the tag.
    pytest.param(b"<a b=>c", [7] * 4, id="plain-eq-then-gt"),
    pytest.param(b"<a b=c=d>e", [10] * 4, id="plain-eq-in-value"),
    pytest.param(b"<a b=<c>e", [9] * 4, id="plain-lt-value"),
    pytest.param(b"<a b=`c>e", [9] * 4, id="plain-backtick-value"),
    pytest.param(b"<a / >e", [7] * 4, id="plain-slash-space"),
    pytest.param(b'<a "b>c', [7] * 4, id="quote-not-after-eq"),
    pytest.param(b"<a =x>", [6] * 4, id="attr-name-starts-with-eq"),
    pytest.param(b"<a b='x\"y'>e", [12] * 4, id="other-quote-inside"),
    # An unterminated quote in _ATTRS takes the rest of the data; then ">" fails.
    pytest.param(b'x<a b="c>d', [1] * 4, id="unterminated-double-quote"),
    pytest.param(b"<a b='c>", [0] * 4, id="unterminated-single-quote"),
    pytest.param(b'<a href="/x>y</a><p>', [0] * 4, id="unterminated-quote-hides-tags"),
    # The negative lookaheads on the first letters, and names that only start like one.
    pytest.param(b"<scr>", [5] * 4, id="scr"),
    pytest.param(b"<scrip", [0] * 4, id="scrip-truncated"),
    pytest.param(b"<scriptx>", [9] * 4, id="scriptx"),
    pytest.param(b"<s>", [3] * 4, id="s"),
    pytest.param(b"<sv", [0] * 4, id="sv-truncated"),
    pytest.param(b"<sty>", [5] * 4, id="sty"),
    pytest.param(b"<sel>", [5] * 4, id="sel"),
    pytest.param(b"<Tex>", [5] * 4, id="tex"),
    pytest.param(b"<tit>", [5] * 4, id="tit"),
    pytest.param(b"<pla>", [5] * 4, id="pla"),
    pytest.param(b"<ifx>", [5] * 4, id="ifx"),
    pytest.param(b"<nob>", [5] * 4, id="nob"),
    pytest.param(b"<mat>", [5] * 4, id="mat"),
    pytest.param(b"<xm>", [4] * 4, id="xm"),
    pytest.param(b"<key>", [5] * 4, id="key"),
    pytest.param(b"<ins>", [5] * 4, id="ins"),
    pytest.param(b"</bo>", [5] * 4, id="end-bo"),
    pytest.param(b"</tem>", [6] * 4, id="end-tem"),
    # Interesting names stop the scan only when a delimiter follows within the data.
    pytest.param(b"<svg>", [0] * 4, id="svg"),
    pytest.param(b"<Svg >", [0] * 4, id="svg-space"),
    pytest.param(b"<svg/>", [0] * 4, id="svg-slash"),
    pytest.param(b"<svg", [0] * 4, id="svg-truncated"),
    pytest.param(b"<svgx>", [6] * 4, id="svgx"),
    pytest.param(b"<svg\x00>", [6] * 4, id="svg-nul"),
    pytest.param(b"<SELECT>", [0] * 4, id="select"),
    pytest.param(b"<iframe>", [0] * 4, id="iframe"),
    pytest.param(b"<title>", [0] * 4, id="title"),
    pytest.param(b"<plaintext>", [0] * 4, id="plaintext"),
    pytest.param(b"<noembed>", [0] * 4, id="noembed"),
    pytest.param(b"<math>", [0] * 4, id="math"),
    pytest.param(b"<xmp>", [0] * 4, id="xmp"),
    pytest.param(b"<textarea>", [0] * 4, id="textarea"),
    pytest.param(b"<style>", [0] * 4, id="style"),
    pytest.param(b"</body>", [0] * 4, id="end-body"),
    pytest.param(b"</BODY >", [0] * 4, id="end-body-upper"),
    pytest.param(b"</bodyx>", [8] * 4, id="end-bodyx"),
    pytest.param(b"</template>", [0] * 4, id="end-template"),
    pytest.param(b"</select>", [0] * 4, id="end-select"),
    pytest.param(b"</script>", [9] * 4, id="end-script-is-boring"),
    pytest.param(b'</div class="x>y">z', [19] * 4, id="end-tag-with-attrs"),
    # In a select, input and keygen are interesting too.
    pytest.param(b"<input type=text>", [17, 17, 0, 0], id="input"),
    pytest.param(b"<keygen>", [8, 8, 0, 0], id="keygen"),
    pytest.param(b"<inputx>", [8] * 4, id="inputx"),
    # Lone "<" and markup no alternative reads.
    pytest.param(b"< a", [3] * 4, id="lt-space"),
    pytest.param(b"<", [0] * 4, id="lt-at-end"),
    pytest.param(b"</", [0] * 4, id="lt-slash-at-end"),
    pytest.param(b"</>", [0] * 4, id="empty-end-tag"),
    pytest.param(b"<\x00\x00", [3] * 4, id="lt-nul"),
    pytest.param(b"<\xff>", [3] * 4, id="lt-high-byte"),
    pytest.param(b"<!doctype html>", [0] * 4, id="doctype"),
    pytest.param(b"<?x>", [0] * 4, id="processing-instruction"),
    # Whole comments, only with comments.
    pytest.param(b"<!---->x", [0, 8, 0, 8], id="comment-empty"),
    pytest.param(b"<!-->x", [0, 6, 0, 6], id="comment-abrupt"),
    pytest.param(b"<!--->x", [0, 7, 0, 7], id="comment-abrupt-dash"),
    pytest.param(b"<!-- a --!> b", [0, 13, 0, 13], id="comment-bang-end"),
    pytest.param(b"<!-- --->x", [0, 10, 0, 10], id="comment-three-dashes"),
    pytest.param(b"<!-- a -- >", [0] * 4, id="comment-unterminated"),
    pytest.param(b"<!--", [0] * 4, id="comment-open-at-end"),
    pytest.param(b"<!--x--!", [0] * 4, id="comment-truncated-bang"),
    # Whole scripts end before "</script"; "<!--" first or the end of data makes them fail.
    pytest.param(b"<script>", [0] * 4, id="script-at-end"),
    pytest.param(b"<script>x", [0] * 4, id="script-unterminated"),
    pytest.param(b"<script>x</script>", [18] * 4, id="script"),
    pytest.param(b"<script>x</script ", [9] * 4, id="script-ends-before-end-tag"),
    pytest.param(b"<script>x</script", [0] * 4, id="script-end-tag-truncated"),
    pytest.param(b"<script>x<!--y</script>", [0] * 4, id="script-escape"),
    pytest.param(b"<script>a<!-", [0] * 4, id="script-escape-truncated"),
    pytest.param(b"<SCRIPT type=a>x</ScRiPt\t>", [26] * 4, id="script-case"),
    pytest.param(b"<script>a</scriptx>b</script>", [29] * 4, id="script-lookalike-end"),
    pytest.param(b"<script/>x</script>", [19] * 4, id="script-self-closing"),
    pytest.param(b"<scripty><svg></script>", [9] * 4, id="script-lookalike-start"),
    pytest.param(b"<script\x00><svg></script>", [9] * 4, id="script-nul-after-name"),
    pytest.param(b'<script type="a>b">x</script>', [29] * 4, id="script-quoted-gt"),
]


@pytest.mark.parametrize(("data", "ends"), CASES)
def test_constructs(data: bytes, ends: list[int]) -> None:
    for (in_select, comments), end in zip(MODES, ends, strict=True):
        assert regex_end(data, 0, in_select, comments) == end, (in_select, comments)
        assert _cinject.skip_boring(data, 0, in_select, comments) == end, (in_select, comments)


@pytest.mark.parametrize(("data", "ends"), CASES)
def test_constructs_after_text_and_from_inside(data: bytes, ends: list[int]) -> None:
    del ends
    for in_select, comments in MODES:
        check(b"text " + data, 0, in_select, comments)
        check(b"<p>" + data + b"<p>", 0, in_select, comments)
        for pos in range(-1, len(data) + 2):
            check(data, pos, in_select, comments)


# --- arguments -----------------------------------------------------------------------------

SAMPLE = DOCUMENTS["page"]


@pytest.mark.parametrize(("in_select", "comments"), MODES, ids=MODE_IDS)
def test_any_bytes_like_object(in_select: bool, comments: bool) -> None:
    body = SAMPLE.index(b"<body")
    for pos in (0, body, body + 10, len(SAMPLE)):
        want = _cinject.skip_boring(SAMPLE, pos, in_select, comments)
        assert want == regex_end(SAMPLE, pos, in_select, comments)
        for other in (bytearray(SAMPLE), memoryview(SAMPLE), memoryview(bytearray(SAMPLE))):
            assert _cinject.skip_boring(other, pos, in_select, comments) == want
    # A view that starts inside the data: positions are relative to the view.
    view = memoryview(SAMPLE)[body:]
    assert _cinject.skip_boring(view, 0, in_select, comments) == regex_end(
        view, 0, in_select, comments
    )


def test_truthy_flags() -> None:
    data = b"<!-- x --><input>"
    assert _cinject.skip_boring(data, 0, 0, 1) == _cinject.skip_boring(data, 0, False, True)
    assert _cinject.skip_boring(data, 0, 2, "yes") == _cinject.skip_boring(data, 0, True, True)
    assert _cinject.skip_boring(data, 0, [], None) == _cinject.skip_boring(data, 0, False, False)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("<p>", 0, False, True), id="str-data"),
        pytest.param((None, 0, False, True), id="none-data"),
        pytest.param((3, 0, False, True), id="int-data"),
        pytest.param((b"<p>", "0", False, True), id="str-pos"),
        pytest.param((b"<p>", 0.0, False, True), id="float-pos"),
        pytest.param((b"<p>", None, False, True), id="none-pos"),
        pytest.param((b"<p>", 0, False), id="too-few"),
        pytest.param((b"<p>", 0, False, True, 1), id="too-many"),
        pytest.param((), id="none"),
    ],
)
def test_wrong_arguments_raise_type_error(args: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        _cinject.skip_boring(*args)


def test_arguments_are_positional_only() -> None:
    with pytest.raises(TypeError):
        _cinject.skip_boring(data=b"<p>", pos=0, in_select=False, comments=True)


def test_documented() -> None:
    assert _cinject.__doc__
    assert _cinject.skip_boring.__doc__
    assert _cinject.skip_boring.__text_signature__ == "(data, pos, in_select, comments, /)"

"""Placements as registered strategies (compliance.html.placements), after_heading, foreign
content and the other places where a browser reads HTML differently from a naive scanner
(issue 14 item 9), and charset labels as WHATWG defines them.

Every document is injected whole and split at every offset (and byte by byte); the outputs
must agree, and where html5lib is installed the notice must be where its tree says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

from compliance import asgi, testing, wsgi
from compliance.errors import RuleError
from compliance.export import export_cloudflare
from compliance.html import PLACEMENTS, placements
from compliance.html.charset import UNSUPPORTED, lookup
from compliance.html.placements import Strategy, register
from compliance.html.tokenizer import Tokenizer, Watch
from compliance.inject import Injector, PageInfo, Placement
from compliance.loader import load_rules
from compliance.models import RuleFile

html5lib = pytest.importorskip("html5lib")

N = '<aside class="compliance-notice" data-compliance-rule="t">N</aside>'


def inject_every_split(
    doc: bytes, placement: Placement, *, max_hold: int = 256 * 1024, notice: str = N
) -> tuple[bytes, Injector]:
    """Inject whole, byte by byte, and split in two at every offset: all must agree."""

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {placement: notice}

    whole = Injector(render, max_hold=max_hold)
    out = whole.feed(doc) + whole.finish()
    assert not (whole.skipped_reason or "").startswith("internal error"), whole.skipped_reason
    one = Injector(render, max_hold=max_hold)
    assert b"".join(one.feed(doc[i : i + 1]) for i in range(len(doc))) + one.finish() == out
    for cut in range(len(doc) + 1):
        two = Injector(render, max_hold=max_hold)
        got = two.feed(doc[:cut]) + two.feed(doc[cut:]) + two.finish()
        assert got == out, cut
        assert two.inserted_placements == whole.inserted_placements, cut
    return out, whole


def tree(doc: str) -> Any:
    return html5lib.parse(doc, namespaceHTMLElements=False, scripting=True)


def notices(root: Any) -> list[Any]:
    return [e for e in root.iter() if e.tag == "aside" and e.get("data-compliance-rule") == "t"]


def first_h1(element: Any) -> Any:
    """The first <h1> in document order, not counting template contents."""
    for child in element:
        if child.tag == "h1":
            return child
        if child.tag != "template":
            found = first_h1(child)
            if found is not None:
                return found
    return None


def parent_of(root: Any, node: Any) -> Any:
    return next(p for p in root.iter() if node in list(p))


# --- after_heading ------------------------------------------------------------------------------

AFTER_HEADING = [
    pytest.param(
        "<body><header><h1>Title</h1></header><p>x</p></body>",
        "<body><header><h1>Title</h1>{N}</header><p>x</p></body>",
        id="under-the-headline",
    ),
    pytest.param("<H1 class=t>T</H1 ><p>x", "<H1 class=t>T</H1 >{N}<p>x", id="implicit-body"),
    pytest.param("<body><h1>T</h2>x", "<body><h1>T</h2>{N}x", id="closed-by-other-heading-end"),
    pytest.param(
        "<body><h1>T<h2>S</h2>", "<body><h1>T</h1>{N}<h2>S</h2>", id="closed-by-heading-start"
    ),
    pytest.param(
        "<body><h1><span>T<h2>S</h2></span></h1>x",
        "<body><h1><span>T<h2>S</h2></span></h1>{N}x",
        id="nested-heading-end-closes-only-the-inner-one",
    ),
    pytest.param(
        "<body><h1>a<br>b<img src=x>c</h1>", "<body><h1>a<br>b<img src=x>c</h1>{N}", id="voids"
    ),
    pytest.param("<body><p>x</p></body>", "<body>{N}<p>x</p></body>", id="no-h1-body-start"),
    pytest.param(
        "<body><h2>x</h2><h1>y</h1>", "<body><h2>x</h2><h1>y</h1>{N}", id="first-h1-not-first-h"
    ),
    pytest.param(
        "<body><template><h1>a</h1></template><h1>b</h1>",
        "<body><template><h1>a</h1></template><h1>b</h1>{N}",
        id="h1-in-template-does-not-count",
    ),
    pytest.param(
        "<body><!-- <h1>a</h1> --><script>'<h1>b</h1>'</script><h1>c</h1>",
        "<body><!-- <h1>a</h1> --><script>'<h1>b</h1>'</script><h1>c</h1>{N}",
        id="comment-and-script-do-not-count",
    ),
    pytest.param(
        "<body><svg><h1>a</h1></svg>",
        "<body><svg><h1>a</h1>{N}</svg>",
        id="h1-breaks-out-of-svg",
    ),
    pytest.param("<body><h1>never closed", "<body>{N}<h1>never closed", id="unclosed-h1"),
    pytest.param(
        "<body><h1><script>'</h1>'</script>T</h1>x",
        "<body><h1><script>'</h1>'</script>T</h1>{N}x",
        id="end-tag-in-script-is-text",
    ),
    # An end tag is ignored when what it closes is below an element that bounds its scope:
    # the heading stays open, and a notice after it would be inside the heading.
    pytest.param(
        "<body><h1><object data=logo.svg>T</h1>x",
        "<body>{N}<h1><object data=logo.svg>T</h1>x",
        id="object-left-open-in-the-heading",
    ),
    pytest.param(
        "<body><h1><marquee>T</h1>x</marquee></h1>y",
        "<body><h1><marquee>T</h1>x</marquee></h1>{N}y",
        id="closed-once-the-marquee-is",
    ),
    pytest.param(
        "<body><h1><table><tr><td>T</h1></table></h1>x",
        "<body><h1><table><tr><td>T</h1></table></h1>{N}x",
        id="end-tag-in-a-table-cell",
    ),
    pytest.param(
        "<body><h1><span><object></span></h1></object></h1>x",
        "<body><h1><span><object></span></h1></object></h1>{N}x",
        id="end-tag-below-an-object",
    ),
    pytest.param(
        "<body><h1><select></h1><option>a</select>T</h1>x",
        "<body><h1><select></h1><option>a</select>T</h1>{N}x",
        id="end-tag-in-a-select",
    ),
    pytest.param(
        "<body><h1><b><div>T</b></div></h1>x",
        "<body><h1><b><div>T</b></div></h1>{N}x",
        id="misnested-formatting",
    ),
    # Closed from outside: the end tag of an element open around the heading closes it (the
    # tree builder pops both); the notice goes right after the heading, closed first.
    pytest.param(
        "<body><div><h1>Title</div><p>x</p></body>",
        "<body><div><h1>Title</h1>{N}</div><p>x</p></body>",
        id="closed-by-the-end-of-a-div-around-it",
    ),
    pytest.param(
        "<body><div><h1><span>Title</div>x",
        "<body><div><h1><span>Title</h1>{N}</div>x",
        id="closed-from-outside-with-an-element-open-in-it",
    ),
    pytest.param(
        "<body><div><h1><span><h2>S</div>x",
        "<body><div><h1><span><h2>S</h1></h1>{N}</div>x",
        id="closed-from-outside-with-a-heading-open-in-it",
    ),
    pytest.param(
        "<body><ul><li><h1>T</li><li>b</ul>",
        "<body><ul><li><h1>T</h1>{N}</li><li>b</ul>",
        id="closed-by-the-end-of-a-list-item",
    ),
    pytest.param(
        "<body><button><h1>T<button>x",
        "<body><button><h1>T</h1>{N}<button>x",
        id="closed-by-a-button-start",
    ),
    # Nothing of that name open around it, or out of scope: ignored, the heading stays open.
    pytest.param(
        "<body><h1>Title</div>x</h1>y", "<body><h1>Title</div>x</h1>{N}y", id="div-end-with-no-div"
    ),
    pytest.param(
        "<body><div><marquee><h1>T</div>x</h1>y",
        "<body><div><marquee><h1>T</div>x</h1>{N}y",
        id="div-around-out-of-scope",
    ),
    pytest.param(
        "<body><div></div><section><h1>T</div>x</h1>y",
        "<body><div></div><section><h1>T</div>x</h1>{N}y",
        id="div-closed-before-the-heading",
    ),
    # In a table: a heading before the rows is foster-parented (before the table), and the
    # notice after its </h1> with it; a table part closes the heading, as a cell's end does.
    pytest.param(
        "<body><table><h1>T</h1><tr><td>x</td></tr></table>",
        "<body><table><h1>T</h1>{N}<tr><td>x</td></tr></table>",
        id="foster-parented-heading",
    ),
    pytest.param(
        "<body><table><h1>T<tr><td>x</td></tr></table>",
        "<body><table><h1>T</h1>{N}<tr><td>x</td></tr></table>",
        id="foster-parented-heading-closed-by-a-row",
    ),
    pytest.param(
        "<body><table><div><h1>T<tr><td>x</table>",
        "<body><table><div><h1>T</h1>{N}<tr><td>x</table>",
        id="foster-parented-div-and-heading-closed-by-a-row",
    ),
    pytest.param(
        "<body><table><h1>T</table>x",
        "<body><table><h1>T</h1>{N}</table>x",
        id="foster-parented-heading-closed-by-the-table-end",
    ),
    pytest.param(
        "<body><table><tr><td><h1>T<td>x</td></tr></table>",
        "<body><table><tr><td><h1>T</h1>{N}<td>x</td></tr></table>",
        id="closed-by-the-next-cell",
    ),
    pytest.param(
        "<body><table><tr><td><h1>T</td><td>x</td></tr></table>",
        "<body><table><tr><td><h1>T</h1>{N}</td><td>x</td></tr></table>",
        id="closed-by-the-end-of-its-cell",
    ),
    pytest.param(
        "<body><table><td><h1>T</tr><td>x</table>",
        "<body><table><td><h1>T</h1>{N}</tr><td>x</table>",
        id="closed-by-the-end-of-an-implied-row",
    ),
    pytest.param(
        "<body><table><caption><h1>T</caption><tr><td>x</table>",
        "<body><table><caption><h1>T</h1>{N}</caption><tr><td>x</table>",
        id="closed-by-the-end-of-its-caption",
    ),
    pytest.param(
        "<body><table><tr><td><h1><table><tr><td>a</td></tr></table>T<td>x</table>",
        "<body><table><tr><td><h1><table><tr><td>a</td></tr></table>T</h1>{N}<td>x</table>",
        id="a-table-in-the-heading-then-the-next-cell",
    ),
    pytest.param(
        "<body><table><tr><td>a</td></tr></table><h1>T<td>x</h1>y",
        "<body><table><tr><td>a</td></tr></table><h1>T<td>x</h1>{N}y",
        id="a-cell-tag-after-the-table-is-ignored",
    ),
    # Closed from outside, in a list item (or a <dd>, a button) that closed the one before
    # it: what is open around the heading is followed through them.
    pytest.param(
        "<body><ul><li>a<li><h1>T</ul>b",
        "<body><ul><li>a<li><h1>T</h1>{N}</ul>b",
        id="in-the-second-list-item",
    ),
    pytest.param(
        "<body><dl><dt>a<dd><div><h1>T</dl>b",
        "<body><dl><dt>a<dd><div><h1>T</h1>{N}</dl>b",
        id="in-a-dd-after-a-dt",
    ),
    pytest.param(
        "<body><button>a<div><button><h1>T</button>b",
        "<body><button>a<div><button><h1>T</h1>{N}</button>b",
        id="in-a-button-that-closed-another",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), AFTER_HEADING)
def test_after_heading(doc: str, expected: str) -> None:
    out, injector = inject_every_split(doc.encode(), "after_heading")
    assert out.decode() == expected.replace("{N}", N)
    assert injector.inserted_placements == ["after_heading"]
    edited = tree(out.decode())
    (notice,) = notices(edited)
    h1 = first_h1(edited.find("body"))
    if "{N}<h1" in expected or h1 is None:
        body = edited.find("body")
        assert body[0] is notice
    else:
        siblings = list(parent_of(edited, h1))
        assert siblings[siblings.index(h1) + 1] is notice


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            "<body><p><b>a</b><h1>T<h1>U</h1>x",
            "<body><p><b>a</b><h1>T</h1>{N}<h1>U</h1>x",
            id="a-second-heading-after-formatting-closed-by-its-own-end-tag",
        ),
        pytest.param(
            "<body><table><td><b></table><h1>T<h1>U</h1>x",
            "<body><table><td><b></table><h1>T</h1>{N}<h1>U</h1>x",
            id="a-second-heading-after-formatting-a-cell-cleared",
        ),
        pytest.param(
            "<body><h1><b>x</b>T<h1>U</h1>y",
            "<body><h1><b>x</b>T</h1>{N}<h1>U</h1>y",
            id="a-second-heading-after-formatting-closed-in-the-first",
        ),
    ],
)
def test_a_second_heading_closes_the_first_where_nothing_reopens_in_it(
    doc: str, expected: str
) -> None:
    """A heading start tag closes the heading open when that is the current node: where no
    formatting element stays listed to be reopened by the heading's text."""
    out, _ = inject_every_split(doc.encode(), "after_heading")
    assert out.decode() == expected.replace("{N}", N)
    edited = tree(out.decode())
    (notice,) = notices(edited)
    h1 = first_h1(edited.find("body"))
    siblings = list(parent_of(edited, h1))
    assert siblings[siblings.index(h1) + 1] is notice


@pytest.mark.parametrize(
    "doc",
    [
        # Closed through an <object> in it (a cell's end reaches through): a </h1> of ours
        # would not reach the heading.
        "<body><table><tr><td><h1><object>T<td>y</table>",
        "<body><table><h1><object>T<tr><td>y</table>",
        # What is open around it is not followed past a ruby's parts.
        "<body><ruby>a<rt>b</ruby><div><h1>T</div>x",
        # Nor past a list item opened where a <form> may stand between it and the one open.
        "<body><ul><li>a<form><li><h1>T</ul>b",
        # The heading's text reopens a formatting element the paragraph's close left listed
        # (in the heading, or before it): the second heading nests in the first, which a
        # </h1> of ours before it would close (the page's tree changed). Also where the
        # element may as well be open around the heading (not followed: <b><h1>).
        "<body><p><b><h1>T<h1>U</h1>x",
        "<body><p><i><b>a</b><h1>T<h2>U</h2>x",
        "<body><h1><p><b>x</p>T<h1>U</h1>y",
        "<body><h1><div><a href=/a>x</div>T<h3>U</h3>y",
        "<body><b><h1>T<h1>U</h1>x",
    ],
)
def test_after_heading_closed_where_it_cannot_be_followed_goes_at_the_body_start(
    doc: str,
) -> None:
    """Never inside the heading (nor in the hidden <object> fallback content)."""
    out, injector = inject_every_split(doc.encode(), "after_heading")
    assert out.decode() == doc.replace("<body>", "<body>" + N, 1)
    assert injector.inserted_placements == ["after_heading"]


# Headings a browser does not show (without scripts or page styles): the notice goes after
# the first one it shows, "{N}" marks where; at the body start when there is none.
HIDDEN_HEADINGS = [
    pytest.param(
        "<body><div hidden><h1>Menu</h1></div><main><h1>T</h1>{N}<p>x</p></main>",
        id="in-a-hidden-div",
    ),
    pytest.param(
        "<body><nav hidden=until-found><ul><li><h1>Menu</h1></ul></nav><h1>T</h1>{N}",
        id="hidden-until-found",
    ),
    pytest.param("<body><h1 hidden>Site</h1><h1>T</h1>{N}<p>x</p>", id="hidden-itself"),
    pytest.param(
        "<body><h1 style='color: red;DISPLAY : none ! important'>Site</h1><h1>T</h1>{N}",
        id="display-none-itself",
    ),
    pytest.param(
        '<body><header style="display:none"><h1>Site</h1></header><h1>T</h1>{N}',
        id="display-none-around",
    ),
    pytest.param("<body><dialog><h1>Sign in</h1></dialog><h1>T</h1>{N}", id="dialog"),
    pytest.param("<body><div popover><h1>Menu</h1></div><h1>T</h1>{N}", id="popover"),
    pytest.param(
        "<body><details><summary>More</summary><div><h1>Menu</h1></div></details><h1>T</h1>{N}",
        id="closed-details",
    ),
    pytest.param(
        "<body><details open><h1>T</h1>{N}</details><h1>U</h1>",
        id="open-details-is-shown",
    ),
    pytest.param(
        "<body><dialog open><h1>T</h1>{N}</dialog>",
        id="open-dialog-is-shown",
    ),
    pytest.param(
        "<body><details><summary><h1>T</h1>{N}</summary>More</details><h1>U</h1>",
        id="the-summary-is-shown",
    ),
    pytest.param(
        "<body><details hidden><summary><h1>S</h1></summary></details><h1>T</h1>{N}",
        id="the-summary-of-hidden-details",
    ),
    pytest.param(
        "<body><div hidden><div><h1>Menu</h1></div><section><h1>Also</h1></section></div>"
        "<div><h1>T</h1>{N}</div>",
        id="nested-in-a-hidden-div",
    ),
    pytest.param(
        "<body><div hidden></div><table><tr><td><h1>T</h1>{N}</table>",
        id="hidden-div-closed-before",
    ),
    # Fallback content: shown only where the object cannot be (not known from the page).
    pytest.param("<body><object data=a.pdf><h1>F</h1></object><h1>T</h1>{N}", id="object-fallback"),
    # Not the heading's ancestors: an attribute value, a closed <svg>, a void element.
    pytest.param(
        '<body><p title="hidden">x</p><img hidden src=x><svg style="display:none"><path/>'
        "</svg><h1 class=hidden>T</h1>{N}",
        id="not-hiding",
    ),
    # A hidden element the reader does not follow (a span) with markup in it: whether it
    # is still open around a later heading is not told, so the notice goes at the body
    # start. With nothing but text in it, it is closed by its end tag.
    pytest.param("<body>{N}<span hidden><b>x</b></span><h1>T</h1><p>y</p>", id="unfollowed-hider"),
    pytest.param("<body><span hidden>x</span><h1>T</h1>{N}<p>y</p>", id="text-only-hider"),
    pytest.param("<body>{N}<span hidden>a < b</span><h1>T</h1><p>y</p>", id="text-with-a-lone-lt"),
    pytest.param("<body>{N}<div hidden><h1>Menu</h1></div><p>y</p>", id="no-shown-heading"),
    pytest.param("<body>{N}<datalist><h1>Y</h1></datalist><p>y</p>", id="datalist"),
    # Where what is open cannot be followed (a </table> closing <math> by HTML rules), a
    # hidden element met anywhere before, even in foreign content, may be around it.
    pytest.param(
        "<body>{N}<table><caption><math><mi>a<h1 hidden>W</h1></mi>b</table>"
        "<details><summary>S</summary><h1>X</h1></details><p>q",
        id="lost-with-a-hider-in-foreign-content",
    ),
    pytest.param(
        "<body>{N}<div><svg></div>a<header style='display: none'><h1>S</h1></header>",
        id="closed-by-html-rules-in-svg",
    ),
]


@pytest.mark.parametrize("doc", HIDDEN_HEADINGS)
def test_after_heading_goes_after_the_first_heading_a_browser_shows(doc: str) -> None:
    source = doc.replace("{N}", "")
    out, injector = inject_every_split(source.encode(), "after_heading")
    assert out.decode() == doc.replace("{N}", N)
    assert injector.inserted_placements == ["after_heading"]


M = "<!-- compliance:notices -->"
HIDDEN_MARKERS = [
    pytest.param(f"<body>{{N}}<div hidden>{M}</div><p>x</p>", id="in-a-hidden-div"),
    pytest.param(f"<body><div hidden>{M}</div><main>{M}{{N}}</main>", id="the-next-is-shown"),
    pytest.param(f"<body>{{N}}<dialog><p>a{M}b</p></dialog>", id="in-a-paragraph-in-a-dialog"),
    pytest.param(f"<body><details open>{M}{{N}}</details>", id="open-details"),
    pytest.param(f"<body><div hidden></div><p>a{M}b</p>{{N}}", id="hidden-div-closed-before"),
    pytest.param(f"<body>{{N}}<b hidden>{M}</b>", id="unfollowed-hider"),
]


@pytest.mark.parametrize("doc", HIDDEN_MARKERS)
def test_a_marker_the_browser_does_not_show_is_passed_over(doc: str) -> None:
    source = doc.replace("{N}", "")
    out, injector = inject_every_split(source.encode(), "marker")
    assert out.decode() == doc.replace("{N}", N)
    assert injector.inserted_placements == ["marker"]


def test_after_heading_reads_each_byte_before_the_heading_once() -> None:
    """Many hidden headings cost what one does: what is open around each is read on from
    where the last read stopped (a page of 2,000 of them, split at every 7 bytes)."""
    hidden = b"<div hidden><h1>M</h1></div>" * 2000
    doc = b"<body>" + hidden + b"<h1>T</h1><p>x</p>"
    reads: list[int] = []
    original = placements._AncestorReader.read

    def counting(self: Any, region: bytes) -> None:
        reads.append(len(region))
        original(self, region)

    placements._AncestorReader.read = counting  # type: ignore[method-assign]
    try:
        injector = Injector(lambda page: {"after_heading": N})
        out = b"".join(injector.feed(doc[i : i + 7]) for i in range(0, len(doc), 7))
        out += injector.finish()
    finally:
        placements._AncestorReader.read = original  # type: ignore[method-assign]
    assert out == doc.replace(b"<h1>T</h1>", b"<h1>T</h1>" + N.encode())
    assert len(reads) == 2001
    assert sum(reads) == len(hidden) + len(b"<h1>")  # from the body start to the last <h1>


@pytest.mark.parametrize(
    "start", ["<span hidden><b>x</b></span>", "<div hidden>" * 600], ids=["unfollowed", "lost"]
)
def test_what_is_open_is_no_longer_read_once_anything_may_be_hidden(start: str) -> None:
    """After a hidden element the reader does not follow, or one it can no longer tell
    closed (nested past its depth), every later heading may be hidden: reading stops there
    instead of going on through the page (at most the hold limit) for every heading."""
    later = "<div hidden><h1>M</h1></div>" * 500 + "<h1>T</h1><p>x</p>"
    doc = ("<body>" + start + later).encode()
    follows: list[bytes] = []
    original = placements._AncestorReader._follow

    def counting(
        self: Any, data: bytes, end: int, name: bytes, is_end: bool, tag: bytes | None
    ) -> None:
        follows.append(name)
        original(self, data, end, name, is_end, tag)

    placements._AncestorReader._follow = counting  # type: ignore[method-assign]
    try:
        injector = Injector(lambda page: {"after_heading": N})
        out = injector.feed(doc) + injector.finish()
    finally:
        placements._AncestorReader._follow = original  # type: ignore[method-assign]
    assert out == b"<body>" + N.encode() + doc[len(b"<body>") :]
    assert len(follows) <= start.count("<") + 1


def test_after_heading_hold_limit_falls_back_to_body_start() -> None:
    doc = b"<body><p>" + b"x" * 300 + b"</p><h1>T</h1>"
    out, injector = inject_every_split(doc, "after_heading", max_hold=100)
    assert out == b"<body>" + N.encode() + doc[len(b"<body>") :]
    assert injector.inserted_placements == ["after_heading"]


def test_after_heading_with_the_other_placements() -> None:
    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {"body_start": "<S>", "after_heading": "<H>", "marker": "<M>", "body_end": "<E>"}

    injector = Injector(render)
    out = injector.feed(b"<body><p>x<h1>T</h1><!-- compliance:notices --></body>")
    out += injector.finish()
    assert out == b"<body><S><p>x<h1>T</h1><H><!-- compliance:notices --><M><E></body>"
    # Without h1 and marker, both fall back to the body start, in registry order.
    injector = Injector(render)
    out = injector.feed(b"<body><p>x</p></body>") + injector.finish()
    assert out == b"<body><S><H><M><p>x</p><E></body>"


# --- registry: the tokens to watch are derived from the placements -------------------------------


def test_tokenizer_reports_only_watched_tags(tag_names: Any) -> None:
    tok = Tokenizer(tag_names, Watch.of((b"h1",), (b"body",)))
    doc = b"<p>a<h1>b</h1><!-- c --><div><span></span></div></body>"
    assert tok.scan(doc, 0, True) == len(doc)
    assert tag_names.tags == [b"h1", b"/body"]


@pytest.fixture
def figure_placement() -> Iterator[type[Strategy]]:
    """A placement registered for one test: after the first </figure>."""

    class AfterFigure(Strategy):
        name: ClassVar[Placement] = "after_figure"
        _watch = Watch.of((), (b"figure",))

        def watch(self) -> Watch:
            return self._watch

        def on_tag(
            self, data: bytes, start: int, end: int, name: bytes, is_end: bool, tag: bytes | None
        ) -> None:
            self.host.write_at(self, data, end, self.snippet)
            self.pending = False
            self.host.done(self)

    register(AfterFigure)
    try:
        yield AfterFigure
    finally:
        del PLACEMENTS["after_figure"]


def test_a_registered_placement_gets_its_tags_without_other_changes(
    figure_placement: type[Strategy],
) -> None:
    def render(page: PageInfo) -> Mapping[str, str]:
        return {"after_figure": "<F>"}

    injector = Injector(render)
    out = injector.feed(b"<body><p>x</p><figure>i</figure><p>y</p>") + injector.finish()
    assert out == b"<body><p>x</p><figure>i</figure><F><p>y</p>"


FIGURE_RULES = """\
version: 1
rules:
  - id: ru-figure
    title: a notice under the first figure
    jurisdictions: [RU]
    notice:
      placement: after_figure
      default_locale: en
      text:
        en: Under the figure.
"""
FIGURE_PAGE = b"<html><body><h1>T</h1><figure>i</figure><p>y</p></body></html>"


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_registered_placement_is_in_the_rule_format_and_reaches_the_page(
    figure_placement: type[Strategy], make_engine: Any, adapter: str
) -> None:
    """Registering the strategy is the whole change: rule files may name it, and both
    middlewares put its notices where it says."""
    engine = make_engine(FIGURE_RULES)

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [FIGURE_PAGE]

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": FIGURE_PAGE})

    if adapter == "wsgi":
        environ = testing.wsgi_environ("/", peer="192.0.2.1")
        response = testing.call_wsgi(wsgi.ComplianceMiddleware(app, engine), environ)
    else:
        scope = testing.asgi_scope("/", peer="192.0.2.1")
        response = testing.call_asgi(asgi.ComplianceMiddleware(asgi_app, engine), scope)
    head, figure, tail = response.body.partition(b"</figure>")
    assert figure
    assert tail.startswith(b'<aside class="compliance-notice"')
    assert b"Under the figure." in tail
    assert b"Under the figure." not in head


def test_the_rule_format_names_the_registered_placements(
    figure_placement: type[Strategy], tmp_path: Any
) -> None:
    """The schema an editor reads lists every registered placement; a name no strategy has
    is refused at load, in the rule author's words."""
    schema = json.dumps(RuleFile.model_json_schema())
    assert '"after_figure"' in schema
    rules = tmp_path / "rules.yaml"
    rules.write_text(FIGURE_RULES.replace("after_figure", "after_figures"), encoding="utf-8")
    with pytest.raises(
        RuleError,
        match=r"rules\.yaml:7:18: .*placement: must be 'body_start', "
        r"'after_heading', 'marker', 'body_end' or 'after_figure', not the text "
        r"'after_figures'",
    ):
        load_rules([rules])


def test_an_edge_export_lists_a_placement_it_cannot_place(
    figure_placement: type[Strategy], tmp_path: Any
) -> None:
    """The edge engines implement the built-in placements only: a rule with another one is
    left out of the export and said so, never exported to the wrong place."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(FIGURE_RULES, encoding="utf-8")
    result = export_cloudflare([rules])
    assert [str(o) for o in result.omissions] == [
        "rule ru-figure: placement `after_figure` is not known to the exporter (left out)"
    ]
    assert "Under the figure." not in "".join(result.files.values())


def test_built_in_placements_are_registered_in_snippet_order() -> None:
    assert list(PLACEMENTS)[:4] == ["body_start", "after_heading", "marker", "body_end"]


# --- foreign content, select, plaintext (issue 14 item 9) ----------------------------------------

FOREIGN = [
    # <svg><script> is an SVG element: "<!--" in it opens a comment that runs to the end,
    # so no end of the body can take markup ("none": left unedited, the core's fail mode).
    pytest.param(
        "<body><svg><script><!--</script></svg><p>x</p></body>",
        {"body_end": "none", "marker": "start", "body_start": "start"},
        id="svg-script-comment",
    ),
    pytest.param(
        '<body><svg><style>"</body>"</style></svg><p>x</p></body>',
        {"body_end": "end"},
        id="svg-style-is-markup",
    ),
    pytest.param(
        "<body><math><style><!-- </math> --></style></math><p>x</p></body>",
        {"body_end": "end"},
        id="math-style-comment",
    ),
    pytest.param(
        "<body><svg><title><style><!--</style></title></svg><p>x</p></body>",
        {"body_end": "end"},
        id="svg-title-integration-point-style-is-raw",
    ),
    pytest.param(
        "<body><svg><foreignObject><script>'</body>'</script></foreignObject></svg>x</body>",
        {"body_end": "end"},
        id="foreignobject-script-is-raw",
    ),
    pytest.param(
        "<body><math><mi><script>'</body>'</script></mi></math>x</body>",
        {"body_end": "end"},
        id="mathml-text-integration-point",
    ),
    pytest.param(
        "<body><math><annotation-xml encoding='text/html'><style>'</body>'</style>"
        "</annotation-xml></math>x</body>",
        {"body_end": "end"},
        id="annotation-xml-html",
    ),
    pytest.param(
        "<body><svg><![CDATA[</body><!--]]></svg>x</body>",
        {"body_end": "end"},
        id="cdata-in-svg",
    ),
    pytest.param(
        "<body><svg><p>out</p><!-- compliance:notices --><script>'<!--'</script>x</body>",
        {"body_end": "end", "marker": "marker"},
        id="breakout-p",
    ),
    pytest.param(
        "<body><svg><circle/><script/><!-- compliance:notices --></svg>x</body>",
        {"marker": "start", "body_end": "end"},
        id="self-closing-in-svg",
    ),
    pytest.param("<body><svg><rect>", {"body_end": "end", "marker": "start"}, id="unclosed-svg"),
    # A <style> inside a select is dropped by html5lib (what follows is a comment) and raw
    # text to Chromium (customizable select): the parsers read on differently, so nothing
    # goes after it (after "<select><style>a" a notice is the style's text to Chromium).
    pytest.param(
        "<body><select><style><!--a</style></select><p>x</p>--></body>",
        {"body_end": "none", "body_start": "start"},
        id="select-style-parsers-disagree",
    ),
    pytest.param(
        "<body><select><style>a", {"body_end": "none", "marker": "start"}, id="select-style-open"
    ),
    pytest.param(
        "<body><select><plaintext>a</select>x",
        {"body_end": "none", "body_start": "start"},
        id="select-plaintext",
    ),
    pytest.param("<body><select><xmp></select>x</body>", {"body_end": "none"}, id="select-xmp"),
    pytest.param(
        "<body><select><svg><style><!--</style></svg></select>x</body>",
        {"body_end": "none"},
        id="select-svg",
    ),
    # html5lib ends a select at <keygen> or <textarea>, Chromium does not: a notice after
    # them is in the select to Chromium (not shown), so it goes at the end, after </select>.
    pytest.param(
        "<body><select><keygen>x", {"body_end": "end", "marker": "start"}, id="select-keygen"
    ),
    pytest.param(
        "<body><select><textarea>t</textarea>x<!-- compliance:notices --></body>",
        {"body_end": "end", "marker": "start"},
        id="select-textarea-stays-open",
    ),
    pytest.param(
        "<body><select><script>'</body>'</script></select>x</body>",
        {"body_end": "end"},
        id="select-script-is-raw",
    ),
    pytest.param(
        "<body><select><option>a", {"body_end": "end", "marker": "start"}, id="unclosed-select"
    ),
    pytest.param(
        "<body><select><textarea></body></textarea>x</body>",
        {"body_end": "end"},
        id="textarea-ends-select",
    ),
    pytest.param("<body><p>a<plaintext>x</body>", {"body_end": "before-plaintext"}, id="plaintext"),
    pytest.param(
        "<body><table><tr><td>x", {"body_end": "end"}, id="unclosed-table-notice-after-it"
    ),
]


def _where(edited: Any, placement: str) -> str:
    body = edited.find("body")
    found = notices(edited)
    assert len(found) == 1, "exactly one notice element, in the HTML namespace"
    (notice,) = found
    order = [e for e in body.iter() if isinstance(e.tag, str)]
    after = order[order.index(notice) + len(list(notice.iter())) :]
    if body[0] is notice and not (body.text or "").strip():
        return "start"
    if not after:
        return "end"
    if after[0].tag == "plaintext":
        return "before-plaintext"
    comments = [e for e in body.iter() if not isinstance(e.tag, str)]
    for parent in body.iter():
        children = list(parent)
        if notice in children:
            k = children.index(notice)
            if k and children[k - 1] in comments:
                return "marker"
    return "elsewhere"


@pytest.mark.parametrize(("doc", "expected"), FOREIGN)
def test_foreign_content_and_friends_read_as_browsers_do(
    doc: str, expected: dict[str, str]
) -> None:
    original = tree(doc)
    for placement, where in expected.items():
        out, injector = inject_every_split(doc.encode(), placement)  # type: ignore[arg-type]
        if where == "none":
            assert not injector.inserted
            assert out == doc.encode()
            continue
        assert injector.inserted, (placement, injector.skipped_reason)
        edited = tree(out.decode())
        assert _where(edited, placement) == where, (placement, out)
        # Nothing else changed: the notice removed gives the original tree.
        (notice,) = notices(edited)
        parent = parent_of(edited, notice)
        siblings = list(parent)
        k = siblings.index(notice)
        tail = notice.tail or ""
        if k == 0:
            parent.text = ((parent.text or "") + tail) or None
        else:
            siblings[k - 1].tail = ((siblings[k - 1].tail or "") + tail) or None
        parent.remove(notice)
        assert html5lib.serialize(edited) == html5lib.serialize(original), placement


@pytest.mark.parametrize(
    "doc",
    [
        "<body><p>x</p><details><summary>More</summary><p>text</p></body></html>",
        "<body><p>x</p><details><summary>More</summary><p>text</p>",
        "<body><p>x</p><dialog><p>modal</p></body></html>",
        "<body><p>x</p><object data=x.svg><p>fallback</body></html>",
        "<body><p>x</p><video src=v.mp4>No video here.</body></html>\n",
        "<body><p>x</p><canvas>No canvas here.</body>",
        "<body><marquee>news</body></html>",
        "<body><table><tr><td>cell</body></html>",
        "<body><tbody><table></body>",
        "<body><details><table><tr><td>x</td></tr></details></body></html>",
        "<body><details></details><p>x</p></body></html>",
        "<body><p>x<option>a</body></html>",
        "<body><option><span><option>b",
        # A special element open in fallback content, closed before the end or in an
        # element whose end tag closes what is open in it: the end tags still reach.
        "<body><video><div>x</div>y</body>",
        "<body><video><details><div>x</div></details>y",
        "<body><canvas><table><tr><td>x",
        "<body><audio><object><div>x</body></html>",
    ],
)
def test_body_end_is_never_left_in_an_element_that_hides_or_moves_it(doc: str) -> None:
    """With a ``<details>``, ``<dialog>``, ``<object>``, ``<video>``... left open, a notice
    before ``</body>`` is in it (a ``</body>`` closes nothing), and Chromium does not show it
    (fallback content, a closed details); with a table open, ``</body>`` is ignored and the
    notice moves before the table. It goes at the very end instead, after their end tags:
    a child of the body, last, and the page's tree otherwise the same."""
    out, injector = inject_every_split(doc.encode(), "body_end")
    assert injector.inserted_placements == ["body_end"]
    edited = tree(out.decode())
    (notice,) = notices(edited)
    body = edited.find("body")
    assert list(body)[-1] is notice, out
    body.remove(notice)
    assert html5lib.serialize(edited) == html5lib.serialize(tree(doc))


@pytest.mark.parametrize(
    "doc",
    [
        "<body><p>x</p><video><div>fallback</body></html>",
        "<body><video><p>a",
        "<body><audio><ul><li>x",
        "<body><canvas><h2>x</h2><div>y",
        "<body><option><ul>x",
        "<body><progress><section>x</body>",
        # Before a <plaintext> (the last point for markup) in an element that hides.
        "<body><details><a href=/x><plaintext>x",
        "<body><video><plaintext>z",
        "<body><details><table><plaintext>q",
    ],
)
def test_body_end_is_not_put_where_no_end_tag_reaches(doc: str) -> None:
    """A ``<video>``, ``<audio>``, ``<canvas>``... left open with a special element open in
    it (a ``<div>``): their end tag is the generic one, which stops at that element, so the
    notice after it was their fallback content, hidden, and told inserted. Before a
    ``<plaintext>`` in a ``<details>`` or a ``<video>`` it was hidden too (no end tag went
    before it, and one would move the text out). It is not placed now: the fail mode
    applies, and the reason is told."""
    out, injector = inject_every_split(doc.encode(), "body_end")
    assert injector.inserted_placements == []
    assert injector.skipped_reason == "no safe insertion point for body_end"
    assert out == doc.encode()


# --- charset labels, as browsers read them ------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("iso-8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("ASCII", "cp1252"),
        ("us-ascii", "cp1252"),
        (" utf8 ", "utf-8"),
        ("gb2312", "gbk"),
        ("x-sjis", "cp932"),
        ("utf-16", UNSUPPORTED),
        ("UTF-16BE", UNSUPPORTED),
        ("iso-2022-jp", UNSUPPORTED),
        ("hz-gb-2312", UNSUPPORTED),
        ("utf-7", None),
        ("no-such-charset", None),
    ],
)
def test_charset_labels_follow_the_encoding_standard(label: str, codec: str | None) -> None:
    assert lookup(label) == codec


def test_charset_labels_longer_than_any_label_are_not_remembered() -> None:
    # Labels come from responses and pages: a page's or an app's megabyte label must neither
    # resolve nor sit in the label cache (whitespace around a real label is still stripped).
    from compliance.html import charset

    huge = "utf-8" + "x" * 1_000_000
    assert lookup(huge) is None
    assert charset.meta_codec(huge) is None
    assert charset.lookup.known(huge) is None
    assert charset.meta_codec.known(huge) is None
    padded = " " * 100 + "latin1"  # a real label, too long to keep: resolved every time
    assert lookup(padded) == charset.meta_codec(padded) == "cp1252"
    assert charset.lookup.known(padded) is None
    assert charset.meta_codec.known(padded) is None
    assert lookup("\t" * 100 + "utf-8" + " " * 100) == "utf-8"


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        pytest.param(b"<meta charset=utf-8>", "utf-8", id="charset"),
        pytest.param(b"<META\nCharSet = 'KOI8-R' >", "koi8-r", id="case-and-spaces"),
        pytest.param(b"<meta/charset=koi8-r>", "koi8-r", id="slash-after-meta"),
        pytest.param(b"<metacharset=koi8-r>", None, id="no-space-after-meta"),
        pytest.param(b"<meta charset=koi8-r", None, id="unfinished"),
        # It knows nothing of scripts, titles and styles: a <meta> in their text counts.
        pytest.param(
            b"<script>'<meta charset=koi8-r>'</script><meta charset=utf-8>",
            "koi8-r",
            id="in-a-script",
        ),
        pytest.param(b"<title><meta charset=koi8-r></title>", "koi8-r", id="in-a-title"),
        # Comments and the attributes of other tags are skipped.
        pytest.param(b"<!-- <meta charset=koi8-r> --><meta charset=utf-8>", "utf-8", id="comment"),
        pytest.param(b"<!--><meta charset=koi8-r>", "koi8-r", id="comment-ends-at-its-dashes"),
        pytest.param(
            b"<link title='<meta charset=koi8-r>'><meta charset=utf-8>",
            "utf-8",
            id="quoted-in-another-tag",
        ),
        pytest.param(b"</meta charset=koi8-r><meta charset=utf-8>", "utf-8", id="end-tag"),
        pytest.param(
            b"<!x <meta charset=koi8-r>><meta charset=utf-8>",
            "utf-8",
            id="bogus-comment-to-the-first-gt-hides",
        ),
        pytest.param(b"<? <meta charset=koi8-r>", None, id="processing-instruction"),
        # http-equiv and content, in any order; content alone declares nothing.
        pytest.param(
            b"<meta content='text/html; charset=koi8-r' HTTP-EQUIV='Content-Type'>",
            "koi8-r",
            id="pragma",
        ),
        pytest.param(b"<meta content='text/html; charset=koi8-r'>", None, id="content-alone"),
        pytest.param(
            b"<meta http-equiv=content-type content='charset=koi8-r' charset=utf-8>",
            "utf-8",
            id="charset-wins",
        ),
        pytest.param(
            b"<meta http-equiv=content-type content='charset=\"koi8-r \"'>",
            "koi8-r",
            id="quoted-label",
        ),
        pytest.param(
            b"<meta http-equiv=content-type content='charset=\"koi8-r'>", None, id="unmatched-quote"
        ),
        pytest.param(
            b"<meta http-equiv=content-type content='charset=koi8-r;x'>",
            "koi8-r",
            id="unquoted-to-semicolon",
        ),
        # The first of two attributes of a name counts; an unknown label declares nothing.
        pytest.param(b"<meta charset=koi8-r charset=utf-8>", "koi8-r", id="first-attribute"),
        pytest.param(b"<meta charset=bogus><meta charset=koi8-r>", "koi8-r", id="unknown-label"),
        pytest.param(b"<meta charset=utf-16le>", "utf-8", id="utf-16-is-utf-8"),
        pytest.param(b"<meta charset=x-user-defined>", "cp1252", id="x-user-defined"),
        pytest.param(b"<meta charset=iso-2022-jp>", "ascii", id="iso-2022-jp"),
        # Only the first 1024 bytes.
        pytest.param(b"<x>" * 340 + b"<meta charset=koi8-r>", None, id="past-1024-bytes"),
        pytest.param(b"<x>" * 330 + b"<meta charset=koi8-r>", "koi8-r", id="within-1024-bytes"),
        # Without a <meta>, an XML declaration.
        pytest.param(b'<?xml version="1.0" encoding="koi8-r"?><p>', "koi8-r", id="xml"),
        pytest.param(b'<?xml version="1.0" encoding="koi 8"?><p>', None, id="xml-space"),
        pytest.param("<?xml?>".encode("utf-16le"), UNSUPPORTED, id="utf-16-xml"),
    ],
)
def test_prescan_follows_the_html_standard(data: bytes, codec: str | None) -> None:
    """The HTML Standard's "prescan a byte stream to determine its encoding", step for step
    (what Firefox reads in a page whose header names no charset)."""
    from compliance.html.charset import prescan

    assert prescan(data) == codec
    # The start of it only: where the answer needs more bytes, not known yet.
    assert prescan(data[:-1], more=True) in (None, codec)


def test_latin1_page_gets_windows_1252_characters() -> None:
    # "€" is 0x80 in windows-1252, which is what a browser uses for a "latin1" page; in real
    # ISO-8859-1 it does not exist and would have become a character reference.
    def render(page: PageInfo) -> Mapping[Placement, str]:
        assert page.charset == "cp1252"
        return {"body_end": "<p>€ “x”</p>"}

    injector = Injector(render, charset="latin1")
    out = injector.feed(b"<body>x</body>") + injector.finish()
    assert out == b"<body>x<p>\x80 \x93x\x94</p></body>"


@pytest.mark.parametrize(
    ("label", "text", "expected"),
    [
        # Python's tables write these as bytes a browser reads as other characters ("¥" as
        # a backslash, the wave dash as a fullwidth tilde, "¢" as "￠"...).
        ("euc-jp", "¥100〜¢", b"&#165;100&#12316;&#162;"),
        ("shift_jis", "10:00〜18:00", b"10:00&#12316;18:00"),
        ("big5", "•¥", b"&#8226;&#165;"),
        ("gb18030", "\u1e3f", b"&#7743;"),
        # What they read alike stays bytes.
        ("euc-jp", "日本", "日本".encode("euc_jp")),
        ("shift_jis", "日本", "日本".encode("cp932")),
    ],
)
def test_characters_a_browser_would_misread_become_references(
    label: str, text: str, expected: bytes
) -> None:
    """Checked against Chromium's TextDecoder over the whole BMP for every multi-byte
    encoding (single-byte ones agree everywhere)."""
    injector = Injector(lambda page: {"body_end": f"<p>{text}</p>"}, charset=label)
    out = injector.feed(b"<body>x</body>") + injector.finish()
    assert out == b"<body>x<p>" + expected + b"</p></body>"


def test_meta_utf16_label_means_utf8() -> None:
    def render(page: PageInfo) -> Mapping[Placement, str]:
        assert page.charset == "utf-8"
        return {"body_end": "é"}

    injector = Injector(render)
    out = injector.feed(b'<meta charset="utf-16"><body>x</body>') + injector.finish()
    assert out.endswith("é</body>".encode())


@pytest.mark.parametrize(
    ("doc", "charset", "reason"),
    [
        (b"\xff\xfe<\x00b\x00", None, "unsupported encoding"),
        (b"<body>x</body>", "utf-16le", "unsupported encoding"),
        (b"<body>x</body>", "iso-2022-jp", "unsupported encoding"),
        (b"<head></head><frameset><frame src=a></frameset>", None, "frameset document"),
        (b"<html><frameset></frameset>", None, "frameset document"),
    ],
)
def test_skip_reason_says_why_a_page_is_not_edited(
    doc: bytes, charset: str | None, reason: str
) -> None:
    injector = Injector(lambda page: {"body_end": N}, charset=charset)
    out = injector.feed(doc) + injector.finish()
    assert out == doc
    assert injector.skip_reason == reason
    assert not injector.inserted


@pytest.mark.parametrize("placement", ["body_start", "body_end", "after_heading"])
@pytest.mark.parametrize(
    "doc",
    [
        # The <body> start tag sets the parser's frameset-ok flag to "not ok": the
        # <frameset> after it is ignored and the page keeps its body.
        pytest.param(b"<body><frameset><frame src=a></frameset>", id="explicit-body"),
        # Text ("x") seen in a stretch the skip regex reads in one step does the same.
        pytest.param(
            b"<body><main><p>x</p></main><frameset><frame src=a></frameset>",
            id="text-in-a-skipped-stretch",
        ),
    ],
)
def test_what_rules_out_a_frameset_keeps_the_notice(doc: bytes, placement: str) -> None:
    out, injector = inject_every_split(doc, placement)  # type: ignore[arg-type]
    assert injector.inserted_placements == [placement]
    assert injector.skip_reason is None
    assert len(notices(tree(out.decode()))) == 1


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        # An unfinished tag or comment was never sent: dropped, the notice goes there.
        (b"<body><p>a</p><p title='x", b"<body><p>a</p><E>"),
        (b"<body><p>a<!-- never closed", b"<body><p>a<E>"),
        (b"<body><table><tr><td>a", b"<body><table><tr><td>a</table><E>"),
        # Inside script text nothing can go (the bytes held to find its end tag are dropped).
        (b"<body><script>var a = 'x", b"<body><script>va"),
    ],
)
def test_cut_ends_the_document_where_the_input_stopped(sent: bytes, expected: bytes) -> None:
    # After a bound is hit mid-stream the core ends the output with cut().
    injector = Injector(lambda page: {"body_end": "<E>"})
    out = injector.feed(sent) + injector.cut()
    assert out == expected
    assert injector.finish() == b""
    assert injector.feed(b"more") == b""


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("<body><svg><g></p>{M}x", "<body><svg><g></p>{M}{N}x"),
        ("<body><math><mi>a</mi></br>{M}x", "<body><math><mi>a</mi></br>{M}{N}x"),
        # At an integration point the end tag is read by HTML rules: still in foreign
        # content, where no marker counts (the body start).
        (
            "<body><svg><foreignObject></p>{M}</foreignObject></svg>",
            "<body>{N}<svg><foreignObject></p>{M}</foreignObject></svg>",
        ),
        ("<body><math><mi></p>{M}</mi></math>", "<body>{N}<math><mi></p>{M}</mi></math>"),
    ],
)
def test_a_p_or_br_end_tag_ends_foreign_content(doc: str, expected: str) -> None:
    """As in the HTML Standard and Chromium (html5lib 1.1 keeps the <svg> open): the marker
    after it is in the HTML body."""
    source = doc.replace("{M}", M)
    out, injector = inject_every_split(source.encode(), "marker")
    assert out.decode() == expected.replace("{M}", M).replace("{N}", N)
    assert injector.inserted_placements == ["marker"]


def test_the_marker_reads_only_paragraph_starts_while_no_paragraph_is_open() -> None:
    """The tags that close a paragraph matter only inside one: outside, the tokenizer skips
    them (a page of <div>s with the marker at its end is read in one match). Links are
    followed (a notice does not go inside one), with the elements whose end closes the links
    opened in them: while nothing is open, their start tags only, and the links' end tags,
    read only where a link holds something watched (a closed one goes unreported)."""
    marker = PLACEMENTS["marker"](None, b"N")  # type: ignore[arg-type]
    watch = marker.watch()
    assert watch.starts == {b"p", b"a", b"applet", b"marquee", b"object", b"table"}
    assert watch.ends == watch.pairs == {b"a"}
    assert watch.comments
    doc = b"<body>" + b"<div>x</div>" * 40 + b"<p>a <!-- compliance:notices --> b</p>c"
    out, _ = inject_every_split(doc, "marker")
    assert out == doc.replace(b"</p>", b"</p>" + N.encode())


# --- review findings: places a reader does not see, or that change the page -------------------

# A notice as the bundled ``ru-undesirable-organization`` rule renders it: with a link.
LINKED = (
    '<aside class="compliance-notice" data-compliance-rule="t" role="note">'
    '<p>To find out more, <a href="https://example.org/more">click here</a>.</p></aside>'
)


def edit(doc: str, placement: Placement, notice: str = N) -> tuple[str, Injector]:
    """Inject whole and byte by byte (both must agree)."""

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {placement: notice}

    whole = Injector(render)
    out = whole.feed(doc.encode()) + whole.finish()
    one = Injector(render)
    data = doc.encode()
    assert b"".join(one.feed(data[i : i + 1]) for i in range(len(data))) + one.finish() == out
    return out.decode(), whole


def the_notice(root: Any) -> tuple[Any, list[Any]]:
    """The notice element and its ancestors (innermost first)."""
    path: list[Any] = []

    def walk(node: Any, above: list[Any]) -> Any:
        for child in node:
            if child.get("data-compliance-rule") == "t" and child.tag == "aside":
                path.extend(reversed([*above, node]))
                return child
            found = walk(child, [*above, node])
            if found is not None:
                return found
        return None

    notice = walk(root, [])
    assert notice is not None, "no notice in the tree"
    return notice, path


def without_notice(doc: str) -> str:
    root = tree(doc)
    for parent in list(root.iter()):
        children = list(parent)
        for k, child in enumerate(children):
            if child.tag == "aside" and child.get("data-compliance-rule") == "t":
                tail = child.tail or ""
                if k:
                    children[k - 1].tail = (children[k - 1].tail or "") + tail
                else:
                    parent.text = (parent.text or "") + tail
                parent.remove(child)
    return str(html5lib.serialize(root, tree="etree"))


LINK_PAGES = [
    # Logo/site-title link around the headline.
    (
        "after_heading",
        '<!DOCTYPE html><body><header><a href="/" class="logo"><h1>Radio</h1></a>'
        "<nav>menu</nav></header><main><p>Story</p></main></body>",
        '<a href="/" class="logo"><h1>Radio</h1></a>{N}<nav>',
    ),
    (
        "after_heading",
        '<!DOCTYPE html><body><a href="/"><div><h1>Radio</h1></div></a>'
        "<main><p>Story</p></main></body>",
        "</div></a>{N}<main>",
    ),
    # A block "card" link with the marker in it.
    (
        "marker",
        '<!DOCTYPE html><body><h1>T</h1><a href="/story" class="card"><h2>Headline</h2>'
        "<!-- compliance:notices --><p>Teaser</p></a><p>x</p></body>",
        "<p>Teaser</p></a>{N}<p>x</p>",
    ),
    # A link in a paragraph: after the link, then after the paragraph.
    (
        "marker",
        "<!DOCTYPE html><body><p>a <a href=/x>b <!-- compliance:notices --> c</a> d</p>e",
        " d</p>{N}e",
    ),
    (
        "after_heading",
        "<!DOCTYPE html><body><p><a href=/x>b</p><h1>T</h1><p>c</a> d</p>e",
        " d</p>{N}e",
    ),
    # A link in the heading, closed in it, changes nothing.
    (
        "after_heading",
        "<!DOCTYPE html><body><h1><a href=/>T</a></h1><p>c <a href=/y>d</a></p>",
        "</h1>{N}<p>",
    ),
]


@pytest.mark.parametrize(("placement", "doc", "expected"), LINK_PAGES)
def test_notice_with_a_link_does_not_restructure_an_enclosing_link(
    placement: Placement, doc: str, expected: str
) -> None:
    """A notice placed in an open <a> (a logo link around the headline, a card link around
    the marker) went there: its own link made the parser close the page's (the adoption
    agency), cloning the page's link into the notice and cutting the card short. It now
    goes after the </a> (and the paragraph) that closes it."""
    out, injector = edit(doc, placement, LINKED)
    assert injector.inserted_placements == [placement]
    assert expected.replace("{N}", LINKED) in out
    notice, ancestors = the_notice(tree(out))
    more = "https://example.org/more"
    page_links = [a.get("href") for a in notice.iter("a") if a.get("href") != more]
    assert page_links == [], f"the page's link {page_links} was cloned into the notice"
    assert without_notice(out) == without_notice(doc), "the page's tree changed around the notice"
    assert [a.tag for a in ancestors if a.tag == "a"] == []


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
def test_a_link_left_open_and_closed_by_the_next_one_puts_the_notice_at_the_body_start(
    placement: Placement,
) -> None:
    """Where the link around the place is closed by the page's next <a> (never by an
    </a>), the notice goes at the body start."""
    doc = "<body><div><a href=/><h1>T</h1><!-- compliance:notices --><p>x</div><a href=/y>y"
    out, injector = edit(doc, placement, LINKED)
    assert injector.inserted_placements == [placement]
    assert out == "<body>" + LINKED + doc.removeprefix("<body>")


# Links left open in an element that inserts a marker in the parser's list of active
# formatting elements (a table cell or caption, a marquee, an object, an applet, a
# template): the parser closes them with it, and the notice goes right after the headline
# or at the marker.
SCOPED_LINKS = [
    ("after_heading", "<table><tr><td><a href=/x>link</td></tr></table><h1>T</h1><p>y", "td"),
    ("after_heading", "<table><tr><th><a href=/x>link</th></tr></table><h1>T</h1><p>y", "th"),
    (
        "after_heading",
        "<table><caption><a href=/x>link</caption><tr><td>c</table><h1>T</h1><p>y",
        "caption",
    ),
    ("after_heading", "<marquee><a href=/x>link</marquee><h1>T</h1><p>y", "marquee"),
    ("after_heading", "<object data=x.svg><a href=/x>link</object><h1>T</h1><p>y", "object"),
    ("after_heading", "<applet code=x><a href=/x>link</applet><h1>T</h1><p>y", "applet"),
    # Closed with the cell by the next cell, a row, the table's end.
    ("after_heading", "<table><tr><td><a href=/x>link<td><h1>T</h1><p>y</table>", "next-cell"),
    ("after_heading", "<table><tr><td><a href=/x>link<tr><td><h1>T</h1><p>y</table>", "row"),
    ("after_heading", "<table><tr><td><a href=/x>link</table><h1>T</h1><p>y", "table-end"),
    (
        "after_heading",
        "<table><tr><td><marquee><a href=/x>link</marquee></td></tr></table><h1>T</h1><p>y",
        "marquee-in-a-cell",
    ),
    (
        "marker",
        "<table><tr><td><a href=/x>link</td></tr></table><!-- compliance:notices --><p>y",
        "marker-td",
    ),
    ("marker", "<marquee><a href=/x>link</marquee><!-- compliance:notices --><p>y", "marker-mq"),
]


@pytest.mark.parametrize(
    ("placement", "body"),
    [pytest.param(placement, body, id=name) for placement, body, name in SCOPED_LINKS],
)
def test_a_link_left_open_in_a_cell_or_marquee_closes_with_it(
    placement: Placement, body: str
) -> None:
    """The link-open tracking took a link left open in a table cell, a caption, a marquee,
    an object or an applet as open after it (the parser clears the active formatting
    elements up to the element's marker when it closes): the notice went at the body start."""
    doc = "<!DOCTYPE html><body>" + body
    out, injector = inject_every_split(doc.encode(), placement, notice=LINKED)
    assert injector.inserted_placements == [placement]
    mark = "<h1>T</h1>" if placement == "after_heading" else "<!-- compliance:notices -->"
    assert mark + LINKED in out.decode()
    notice, ancestors = the_notice(tree(out.decode()))
    assert [a.tag for a in ancestors if a.tag == "a"] == []
    assert [a.get("href") for a in notice.iter("a")] == ["https://example.org/more"]
    assert without_notice(out.decode()) == without_notice(doc)


# Links a browser keeps open, though an </a> or an <a> comes: an </a> in a cell (or a
# marquee) for a link opened outside it is ignored, as is one in a table for a link around
# the table, and an <a> there opens a link in the other (no adoption agency across a
# marker). The notice goes after the </a> that closes the link around it.
KEPT_LINKS = [
    (
        "after_heading",
        "<a href=/x><table><tr><td></a>c</td></tr></table><h1>T</h1><p>y</p></a><p>z",
        "end-tag-in-a-cell",
    ),
    (
        "after_heading",
        "<a href=/x><table></a><tr><td><h1>T</h1></td></tr></table></a><p>z",
        "end-tag-in-a-table",
    ),
    (
        "after_heading",
        "<a href=/x><table><tr><td><a href=/y>y</a><h1>T</h1></td></tr></table></a><p>z",
        "link-in-a-cell",
    ),
    (
        "after_heading",
        "<a href=/x><h1>T</h1><marquee><a href=/y>y</marquee>c</a><p>z",
        "link-in-a-marquee-after-the-heading",
    ),
    ("marker", "<a href=/x><marquee></a><!-- compliance:notices --></marquee></a><p>z", "mq"),
    (
        "marker",
        "<a href=/x><table><tr><td></a><!-- compliance:notices --></td></tr></table></a><p>z",
        "marker-end-tag-in-a-cell",
    ),
]


@pytest.mark.parametrize(
    ("placement", "body"),
    [pytest.param(placement, body, id=name) for placement, body, name in KEPT_LINKS],
)
def test_a_link_a_browser_keeps_open_across_a_marker_keeps_the_notice_out(
    placement: Placement, body: str
) -> None:
    """An </a> (or <a>) inside a cell or a marquee was taken to close (or, while waiting,
    to cut short) the page's link around it: the notice went inside the link (its own link
    made the parser restructure the page's), or at the body start."""
    doc = "<!DOCTYPE html><body>" + body
    out, injector = inject_every_split(doc.encode(), placement, notice=LINKED)
    assert injector.inserted_placements == [placement]
    assert "</a>" + LINKED + "<p>z" in out.decode()
    notice, ancestors = the_notice(tree(out.decode()))
    assert [a.tag for a in ancestors if a.tag == "a"] == []
    assert [a.get("href") for a in notice.iter("a")] == ["https://example.org/more"]
    assert without_notice(out.decode()) == without_notice(doc)


# Links an <a> inside a table closes out of scope: opened around the table, the parser
# takes the link off its list and stack (the adoption agency does nothing across the table),
# but the table stays in it, and what the table's foster parenting moves before it (or puts
# in its cells) lands in the link. "{S}": the notice at the body start; "{M}": right after
# the marker (or the headline), out of the link.
UNLISTED_LINKS = [
    ("marker", "<a href=/x><table><a href=/x></a><!-- compliance:notices --><p>end", "{S}"),
    ("after_heading", "<a href=/x><table><a href=/y></a><h1>T</h1><p>end", "{S}"),
    (
        "marker",
        "<a href=/x><table><tbody><tr><a href=/y></a><!-- compliance:notices --><td>c</table>",
        "{S}",
    ),
    (
        "after_heading",
        "<a href=/x><table><tr><a href=/y>y</a><h1>T</h1><td>c</td></tr></table><p>end",
        "{S}",
    ),
    # In a cell or caption of that table: still in the link.
    (
        "marker",
        "<a href=/x><table><a href=/y></a><tr><td><!-- compliance:notices -->c</table><p>e",
        "{S}",
    ),
    (
        "after_heading",
        "<a href=/x><table><a href=/y></a><caption><h1>T</h1></caption></table><p>end",
        "{S}",
    ),
    # A table in a link in a cell.
    (
        "marker",
        "<table><tr><td><a href=/x><table><a href=/y></a><!-- compliance:notices --></table>"
        "</td></tr></table><p>end",
        "{S}",
    ),
    # Once the table the link was left in closes, what follows is out of the link...
    (
        "marker",
        "<a href=/x><table><a href=/y></a></table><!-- compliance:notices --><p>end",
        "{M}",
    ),
    ("after_heading", "<a href=/x>\n<table><a href=/y></a></table><h1>T</h1><p>end", "{M}"),
    (
        "marker",
        "<table><tr><td><a href=/x><table><a href=/y></a></table><!-- compliance:notices -->"
        "</td></tr></table><p>end",
        "{M}",
    ),
    # ... unless an element opened in the link stays open around the table (not followed).
    (
        "marker",
        "<a href=/x><div><table><a href=/y></a></table><!-- compliance:notices --></div><p>e",
        "{S}",
    ),
    (
        "after_heading",
        "<a href=/x><span><table><a href=/y></a></table><h1>T</h1></span><p>end",
        "{S}",
    ),
]


@pytest.mark.parametrize(("placement", "body", "expected"), UNLISTED_LINKS)
def test_a_link_an_a_in_a_table_closes_out_of_scope_still_holds_the_table(
    placement: Placement, body: str, expected: str
) -> None:
    """An <a> in a table closing the page's link around the table was taken to close it
    (as an <a> does where the link is in scope): the notice went at the marker or after
    the headline, which the table's foster parenting puts in the page's link (its own link
    nested in the page's). It now goes at the body start while the link may hold it."""
    doc = "<!DOCTYPE html><body>" + body
    out, injector = inject_every_split(doc.encode(), placement, notice=LINKED)
    assert injector.inserted_placements == [placement]
    if expected == "{S}":
        assert out.decode() == doc.replace("<body>", "<body>" + LINKED)
    else:
        mark = "<h1>T</h1>" if placement == "after_heading" else "<!-- compliance:notices -->"
        assert out.decode() == doc.replace(mark, mark + LINKED)
    notice, ancestors = the_notice(tree(out.decode()))
    assert [a.tag for a in ancestors if a.tag == "a"] == []
    assert [a.get("href") for a in notice.iter("a")] == ["https://example.org/more"]
    assert without_notice(out.decode()) == without_notice(doc)


@pytest.mark.parametrize(
    ("placement", "body"),
    [
        # Left open in the first cell, past a marquee that the next cell closes (which
        # clears up to the marquee's marker only): the parser reopens it after the table.
        ("after_heading", "<table><tr><td><a href=/x>x<marquee>y<td>z</table><h1>T</h1><p>y"),
        # Inside a template: inert (no link of the body), in browsers.
        ("after_heading", "<template><a href=/x>link</template><h1>T</h1><p>y"),
    ],
)
def test_links_past_a_cleared_marker(placement: Placement, body: str) -> None:
    doc = "<!DOCTYPE html><body>" + body
    out, _ = inject_every_split(doc.encode(), placement, notice=LINKED)
    if "<template>" in body:
        assert "<h1>T</h1>" + LINKED in out.decode()
    else:
        assert out.decode() == doc.replace("<body>", "<body>" + LINKED)


# A marker in a paragraph that a table part closes (with the cell, or the table it was
# foster-parented in), or that a table part's end tag with nothing to close leaves open.
PARAGRAPHS_IN_TABLES = [
    (
        "<table><tr><td><p>a<!-- compliance:notices -->b<td>c</td></tr></table>",
        "b{N}<td>c",
        "closed-with-the-cell-by-the-next-one",
    ),
    (
        "<table><tr><td><p>a<!-- compliance:notices -->b<tr><td>c</td></tr></table>",
        "b{N}<tr>",
        "closed-with-the-cell-by-a-row",
    ),
    (
        "<table><tr><td><p>a<!-- compliance:notices -->b</table><p>c",
        "b{N}</table>",
        "closed-with-the-cell-by-the-table-end",
    ),
    (
        "<table><tr><p>a<!-- compliance:notices -->b<td>c</td></tr></table>",
        "b{N}<td>c",
        "foster-parented",
    ),
    ("<p>a<!-- compliance:notices -->b</td>c</p>d", "c</p>{N}d", "cell-end-in-the-body"),
    ("<marquee><p>a<!-- compliance:notices -->b</marquee>c", "b{N}</marquee>", "marquee"),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param(body, expected, id=name) for body, expected, name in PARAGRAPHS_IN_TABLES],
)
def test_a_marker_in_a_paragraph_a_table_part_closes(body: str, expected: str) -> None:
    """The paragraph around a marker was taken to close at any table part's end tag (one
    with nothing to close too: the notice closed the paragraph, moving what followed out
    of it), and not at the start tag that closes its cell (the notice went into the next
    cell), nor with the marquee it is in (at the body start)."""
    doc = "<!DOCTYPE html><body>" + body
    out, injector = inject_every_split(doc.encode(), "marker")
    assert injector.inserted_placements == ["marker"]
    assert expected.replace("{N}", N) in out.decode()
    assert without_notice(out.decode()) == without_notice(doc)


# A marker in a paragraph, and end tags of elements a paragraph can be in: they close it
# only where their element is open around it in scope (the standard's "has an element in
# scope"); a stray one (nothing of its name open, or only outside a table cell the
# paragraph is in) is ignored, and the paragraph stays open.
PARAGRAPH_END_TAGS = [
    ("<p>a</div><!-- compliance:notices -->b</p>c", "b</p>{N}c", "stray-div-before"),
    ("<p>a</h1><!-- compliance:notices -->b</p>c", "b</p>{N}c", "stray-h1-before"),
    ("<p>a</colgroup><!-- compliance:notices -->b</p>c", "b</p>{N}c", "colgroup-before"),
    ("<p>a<!-- compliance:notices -->b</div>c</p>d", "c</p>{N}d", "stray-div-after"),
    ("<p>a<!-- compliance:notices -->b</h2>c</p>d", "c</p>{N}d", "stray-h2-after"),
    (
        "<div><table><tr><td><p>a</div><!-- compliance:notices -->b</td></tr></table></div>",
        "b{N}</td>",
        "div-outside-the-cell",
    ),
    (
        "<h1>T</h1><ul><li><p>a</h1><!-- compliance:notices -->b</li></ul>",
        "b{N}</li>",
        "closed-heading",
    ),
    ("<li><ul><p>a<!-- compliance:notices -->b</li>c</p>d", "c</p>{N}d", "li-out-of-scope"),
    # Where the element is open around it, in scope, its end tag does close it.
    ("<div><p>a<!-- compliance:notices -->b</div>c", "b{N}</div>c", "div-around"),
    ("<div><p>a</div><!-- compliance:notices -->b<p>c", "-->{N}b", "div-around-before"),
    ("<h2><p>a<!-- compliance:notices -->b</h1>c", "b{N}</h1>c", "heading-around"),
    ("<ul><li><div><p>a<!-- compliance:notices -->b</li>c</ul>", "b{N}</li>", "li-around"),
    ("<button><p>a<!-- compliance:notices -->b</button>c", "b{N}</button>c", "button-around"),
    ("<ul><li>a<li><p>x</ul><!-- compliance:notices -->b", "-->{N}b", "second-list-item"),
    ("<ul><li>a<li><p>x<!-- compliance:notices -->y</ul>z", "y{N}</ul>z", "list-item-around"),
    # Past such an end tag, a paragraph is not followed through a table (its parts would
    # be): told where a place is found, at the body start where it may be open still.
    (
        "<div><p>a</div><table><tr><td>c</table><!-- compliance:notices -->b",
        "-->{N}b",
        "closed-before-a-table",
    ),
    (
        "<p>a</div><table><tr><td>c</table><!-- compliance:notices -->b</p>",
        "<body>{N}<p>",
        "not-followed-through-a-table",
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param(body, expected, id=name) for body, expected, name in PARAGRAPH_END_TAGS],
)
def test_a_stray_end_tag_leaves_the_paragraph_around_the_marker_open(
    body: str, expected: str
) -> None:
    """Any end tag of an element a paragraph can be in (</div>, </h1>, </li>...) was taken
    to close the paragraph open at the marker, even with no such element open around it:
    the notice went into the open paragraph, which the parser then closed before it (what
    followed moved out of it); an element open around the paragraph (</button>) was not."""
    doc = "<!DOCTYPE html><body>" + body
    out, injector = inject_every_split(doc.encode(), "marker")
    assert injector.inserted_placements == ["marker"]
    assert expected.replace("{N}", N) in out.decode()
    assert without_notice(out.decode()) == without_notice(doc)


@pytest.mark.parametrize(
    "body",
    [
        "<a href=/x><h1>T</h1><p>x</a>y</div>z</p>w",
        "<a href=/x><h1>T</h1><p>x</a>y</h2>z</p>w",
    ],
)
def test_a_stray_end_tag_leaves_the_paragraph_after_a_link_around_the_heading_open(
    body: str,
) -> None:
    """The same for the paragraph after_heading waits for past the link around the
    headline."""
    doc = "<!DOCTYPE html><body>" + body
    out, injector = inject_every_split(doc.encode(), "after_heading", notice=LINKED)
    assert injector.inserted_placements == ["after_heading"]
    assert "z</p>" + LINKED + "w" in out.decode()
    _notice, ancestors = the_notice(tree(out.decode()))
    assert [a.tag for a in ancestors if a.tag in ("a", "p")] == []
    assert without_notice(out.decode()) == without_notice(doc)


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
def test_a_table_page_reports_no_cell_while_no_link_is_open(placement: Placement) -> None:
    """Following the links through a table reported every table part to the placement (a
    Python step per cell, a table page several times slower to edit): while no link (nor a
    paragraph around a marker) is open, only <a> start tags are, and the links read the
    table parts they passed over again where a link left open in a cell needs them."""
    row = '<tr><td class="n">1</td><td><a href="/i">Item</a></td><td><span>s</span></td></tr>'
    doc = ("<!DOCTYPE html><body><table>" + row * 50 + "</table><h1>T</h1><p>x").encode()
    if placement == "marker":  # (a paragraph closed by an end tag before the table too)
        doc = doc.replace(b"<table>", b"<div><p>x</div><table>", 1)
    reported: list[bytes] = []
    cls = PLACEMENTS[placement]
    original = cls.on_tag

    def counting(self: Any, data: bytes, start: int, end: int, name: bytes, *rest: Any) -> None:
        reported.append(name)
        original(self, data, start, end, name, *rest)

    cls.on_tag = counting  # type: ignore[method-assign]
    try:
        out, injector = inject_every_split(doc, placement)
    finally:
        cls.on_tag = original  # type: ignore[method-assign]
    assert injector.inserted_placements == [placement]
    assert not {b"td", b"tr", b"tbody"} & set(reported)
    # A link left open in a cell, read where the cell closes.
    body = "<table>" + row * 3 + "<tr><td><a href=/x>link</td></tr></table><h1>T</h1><p>y"
    out, _ = inject_every_split(("<!DOCTYPE html><body>" + body).encode(), "after_heading")
    assert "<h1>T</h1>" + N + "<p>y" in out.decode()


def test_a_table_part_too_long_to_read_is_passed_over_as_the_page_reading_passes_it() -> None:
    """Read again from the held bytes, a cell's end tag too long to read (one the page's
    tokenizer passes unread when it comes in pieces) closed the cell around a link opened
    in it, which then stayed open to the end: the notice went at the body start when the
    page came in pieces, after the headline when whole."""
    long_end = "</td " + "title=x " * 20 + ">"
    doc = (
        "<!DOCTYPE html><body><table><tr><td><a href=/q>q</a></td><td><a href=/x>link"
        + long_end
        + "</tr></table><h1>T</h1><p>y"
    ).encode()

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {"after_heading": N}

    def edit(pieces: list[bytes]) -> bytes:
        injector = Injector(render)
        injector.max_token = 64
        return b"".join(injector.feed(piece) for piece in pieces) + injector.finish()

    whole = edit([doc])
    assert b"<h1>T</h1>" + N.encode() + b"<p>y" in whole
    for cut in range(len(doc) + 1):
        assert edit([doc[:cut], doc[cut:]]) == whole, cut


def test_the_links_read_again_the_page_without_the_other_notices() -> None:
    """Reading again the table parts passed over, the links read the page's bytes, not a
    notice put in them since (here one holding a table, after a headline foster-parented
    in a row, where its <table> would end the page's): the marker's paragraph still closes
    with its cell."""
    tabled = '<aside class="compliance-notice"><table><tr><td>n</td></tr></table></aside>'
    doc = (
        b"<!DOCTYPE html><body><table><tr><h1>T</h1>"
        b"<td><p>a<!-- compliance:notices -->b<td>c</td></tr></table>"
    )

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {"after_heading": tabled, "marker": N}

    whole = Injector(render)
    out = whole.feed(doc) + whole.finish()
    one = Injector(render)
    assert b"".join(one.feed(doc[i : i + 1]) for i in range(len(doc))) + one.finish() == out
    assert whole.inserted_placements == ["after_heading", "marker"]
    assert ("<h1>T</h1>" + tabled + "<td><p>a<!-- compliance:notices -->b" + N + "<td>c") in (
        out.decode()
    )


FALLBACK_PAGES = [
    '<video controls src="v.mp4"><h1>Your browser cannot play this video</h1>'
    "<!-- compliance:notices --></video><h1>Real headline</h1><p>x</p>",
    '<audio controls src="a.mp3"><h1>No audio</h1><!-- compliance:notices --></audio>'
    "<h1>Real headline</h1><p>x</p>",
    '<canvas id="chart"><h1>Chart</h1><!-- compliance:notices --></canvas>'
    "<h1>Real headline</h1><p>x</p>",
    "<progress value=1 max=2><h1>50%</h1><!-- compliance:notices --></progress>"
    "<h1>Real headline</h1>",
    "<meter value=1><h1>50%</h1><!-- compliance:notices --></meter><h1>Real headline</h1>",
    # MDN-style fallback paragraphs, closed before the media element's end.
    "<video><p>Fallback<h1>T</h1><!-- compliance:notices --></p></video><h1>Real headline</h1>",
]


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
@pytest.mark.parametrize("body", FALLBACK_PAGES)
def test_notice_is_not_put_in_media_fallback_content(placement: Placement, body: str) -> None:
    """The fallback content of <video>, <audio>, <canvas>, <progress> and <meter> is never
    rendered where they are supported, but an <h1> or the marker there was taken as shown:
    the notice went in it, unseen. They hide as <object> does; after their end tag, the
    next heading (marker) is the place."""
    out, injector = edit("<!DOCTYPE html><body>" + body + "</body>", placement)
    assert injector.inserted_placements == [placement]
    _notice, ancestors = the_notice(tree(out))
    media = ("video", "audio", "canvas", "progress", "meter")
    assert [a.tag for a in ancestors if a.tag in media] == []
    if placement == "after_heading":
        assert "<h1>Real headline</h1>" + N in out


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
def test_a_media_element_whose_end_tag_a_paragraph_keeps_out_hides_what_follows(
    placement: Placement,
) -> None:
    """</video> does not reach past a <p> open in it: the heading after it is still in the
    fallback content, and the notice goes at the body start."""
    doc = "<body><video><p>fb</video><h1>T</h1><!-- compliance:notices --><p>x"
    out, injector = edit(doc, placement)
    assert injector.inserted_placements == [placement]
    assert out == "<body>" + N + doc.removeprefix("<body>")


def is_shadow_host(element: Any) -> bool:
    """A declarative shadow root (``<template shadowrootmode>``) is attached to it."""
    return any(
        child.tag == "template" and child.get("shadowrootmode") in ("open", "closed")
        for child in element
    )


SHADOW = '<template shadowrootmode="open"><div><slot name="body"></slot></div></template>'
# Lit SSR / WebC / Enhance style output: a component whose shadow root has only named slots.
SHADOW_PAGES = [
    (
        "after_heading",
        "<!DOCTYPE html><html><head><title>T</title></head><body>"
        '<page-header><template shadowrootmode="open"><header><slot name="heading"></slot>'
        '</header></template><h1 slot="heading">Radio Svoboda</h1></page-header>'
        "<main><p>Story</p></main></body></html>",
    ),
    (
        "marker",
        "<!DOCTYPE html><html><head><title>T</title></head><body><h1>T</h1>"
        f'<story-card>{SHADOW}<div slot="body"><p>Teaser</p></div><!-- compliance:notices -->'
        "</story-card><p>More</p></body></html>",
    ),
    *(
        (placement, f"<!DOCTYPE html><body>{host}<h1>x</h1><!-- compliance:notices --></div>")
        for placement in ("after_heading", "marker")
        for host in (f"<div>\n{SHADOW}", f"<x-a><x-a>{SHADOW}<x-a>a</x-a>")
    ),
]


@pytest.mark.parametrize(("placement", "doc"), SHADOW_PAGES)
def test_notice_is_not_left_unslotted_in_a_declarative_shadow_host(
    placement: Placement, doc: str
) -> None:
    """An element whose content starts with <template shadowrootmode> renders only the
    children its shadow root slots: a notice put after the heading or marker in it, a child
    without ``slot``, was not rendered (Chromium: no client rects). Such a host hides."""
    out, injector = edit(doc, placement)
    assert injector.inserted_placements == [placement]
    _notice, ancestors = the_notice(tree(out))
    hosts = [a.tag for a in ancestors if is_shadow_host(a)]
    assert hosts == [], f"notice is an unslotted light-DOM child of {hosts}: not rendered"


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
def test_a_heading_after_a_shadow_host_closes_is_shown(placement: Placement) -> None:
    """The host is followed to its end tag (nested elements of its name too): after it,
    the heading and the marker are the place."""
    doc = (
        f"<body><x-a>{SHADOW}<x-a>i</x-a><h1>T</h1><!-- compliance:notices --></x-a>"
        "<h1>R</h1><!-- compliance:notices --><p>x"
    )
    out, injector = edit(doc, placement)
    assert injector.inserted_placements == [placement]
    after = "<h1>R</h1>" + ("" if placement == "after_heading" else "<!-- compliance:notices -->")
    assert out == doc.replace(after, after + N)


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
@pytest.mark.parametrize(
    "style",
    [
        "visibility:hidden",
        "visibility: collapse !important",
        "content-visibility:hidden",
        "display:none/* mobile */",
        "display:/* x */none",
        'content:"/*"; display:none',
    ],
)
def test_inline_styles_that_hide(placement: Placement, style: str) -> None:
    """Only an inline ``display: none`` was taken to hide: a heading or marker under
    ``visibility: hidden`` (inherited by the notice) or ``content-visibility: hidden`` got
    the notice unseen, and a CSS comment after ``none`` defeated the test."""
    doc = (
        f"<!DOCTYPE html><body><div style='{style}'><h1>Logo</h1><!-- compliance:notices -->"
        "</div><h1>Real headline</h1><p>x</p></body>"
    )
    out, injector = edit(doc, placement)
    assert injector.inserted_placements == [placement]
    _notice, ancestors = the_notice(tree(out))
    assert [a.get("style") for a in ancestors if a.get("style")] == []


@pytest.mark.parametrize("style", ["visibility:visible", "color:red/*;display:none*/"])
def test_inline_styles_that_do_not_hide(style: str) -> None:
    """Other declarations, and a hiding one inside a comment, hide nothing."""
    doc = f"<body><div style='{style}'><h1>T</h1><p>x</p></div>"
    out, _ = edit(doc, "after_heading")
    assert out == doc.replace("</h1>", "</h1>" + N)


@pytest.mark.parametrize("placement", ["after_heading", "marker"])
@pytest.mark.parametrize(
    "before", ["<summary>A</summary>", "<span>", "<form>", "<b>x</b>", "<a href=/x>"]
)
def test_a_summary_not_first_in_a_closed_details_is_hidden(
    placement: Placement, before: str
) -> None:
    """Only a details' first <summary> child is shown. A second one is folded content, but
    it was taken as shown and got the notice. So is one inside another element of the
    details (the details shows its own "Details" summary), which was taken for the shown
    one, since the element between (a <span>) is not followed: one with a start tag before
    it in the details is taken as folded (after <b>x</b>, to be safe)."""
    doc = (
        f"<!DOCTYPE html><body><details>{before}<summary><h1>T</h1>"
        "<!-- compliance:notices --></summary></details><h1>Real</h1><p>x</p></body>"
    )
    out, injector = edit(doc, placement)
    assert injector.inserted_placements == [placement]
    _notice, ancestors = the_notice(tree(out))
    assert [a.tag for a in ancestors if a.tag == "details"] == []


@pytest.mark.parametrize("before", ["", "\n  ", "text", "<!-- c -->"])
def test_the_first_summary_of_a_closed_details_is_shown(before: str) -> None:
    doc = f"<body><details>{before}<summary><h1>T</h1></summary><p>x</p></details>"
    out, _ = edit(doc, "after_heading")
    assert out == doc.replace("</h1>", "</h1>" + N)

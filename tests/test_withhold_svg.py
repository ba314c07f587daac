"""Withholding in SVG and MathML: the closed trees of elements that cannot load anything
(no embed, animation, style or svg name, no "(" in their tags, no mark or style attribute)
go unread, in one match. What is withheld must be what reading every tag withholds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.html import injector as injector_module
from compliance.html.injector import Injector, PageInfo
from compliance.html.placements import Placement
from compliance.html.tokenizer import Tokenizer, Watch
from compliance.html.withhold import EMBED_ELEMENTS, Withhold, WithholdUncertain

SVG = [
    "<g>",
    "</g>",
    "<rect/>",
    "<rect x=1>",
    "</rect>",
    "<path d='M0 0L1 1'/>",
    "<g transform='translate(1,2)'>",
    "<rect fill='url(https://rt.com/p#x)'/>",
    "<rect fill='url(#g)'/>",
    "<RECT FILL='URL(https://rt.com/q)'/>",
    "<rect title='a>b' fill='url(https://rt.com/q)'/>",
    "<rect style='fill:url(https://rt.com/p)'/>",
    "<circle r=1 STYLE='x'/>",
    "<g data-compliance-withhold='w'>",
    "<path data-compliance-withhold='w'/>",
    "<image href='https://rt.com/i.png'/>",
    "<image href='/i.png'/>",
    "<set attributeName=href to='https://rt.com/x'/>",
    "<animate attributeName=fill values='url(https://rt.com/p)'/>",
    "<use href='https://rt.com/s.svg#i'/>",
    "<text>x</text>",
    "<title>t</title>",
    "<foreignObject><img src='https://rt.com/i.png'></foreignObject>",
    "<desc><iframe src=https://rt.com/v></iframe></desc>",
    "<style>@import url(https://rt.com/a.css);</style>",
    "<a href='https://rt.com/'>l</a>",
    "<linearGradient id=g><stop offset=0 /></linearGradient>",
    "<!-- c -->",
    "<![CDATA[x]]>",
    "<p>",
    "</svg>",
    "<svg>",
    "<math><mi>x</mi></math>",
    "<math><mi data-compliance-withhold='w'>x</mi></math>",
    "<math><mi style='background:url(https://rt.com/b)'>x</mi></math>",
    "x",
]
MARKS = {"w": "court-order"}


def _edit(
    data: bytes, pieces: list[bytes], every_tag: bool, embeds: bool = True
) -> tuple[bytes, list[str]]:
    """The page edited (or where it is uncertain, the bytes before the cut and why), and
    the rules of what was withheld."""

    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {"body_end": "<E>"}

    withhold = Withhold.of(
        MARKS,
        (lambda host: "sanctions" if host == "rt.com" or host.endswith(".rt.com") else None)
        if embeds
        else None,
        lambda rule: f"[{rule}]",
        hosts=["rt.com", "*.rt.com"] if embeds else None,
    )
    saved = injector_module._WITHHOLD_EMBEDS, injector_module._WITHHOLD_NOSCRIPT
    if every_tag:  # every tag in foreign content read, as before
        injector_module._WITHHOLD_EMBEDS = Watch.of(
            saved[0].starts, url_scripts=True, foreign_leaves=True
        )
        injector_module._WITHHOLD_NOSCRIPT = Watch.of((b"noscript",))
    injector = Injector(render, withhold=withhold)
    out = b""
    try:
        for piece in pieces:
            out += injector.feed(piece)
        out += injector.finish()
    except WithholdUncertain as exc:
        out += exc.output + b"|uncertain: " + str(exc).encode()
    finally:
        injector_module._WITHHOLD_EMBEDS, injector_module._WITHHOLD_NOSCRIPT = saved
    assert injector.fault is None, injector.fault
    return out, injector.withheld


def agree(data: bytes, pieces: list[bytes], embeds: bool = True) -> None:
    assert _edit(data, pieces, False, embeds) == _edit(data, pieces, True, embeds), data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SVG), max_size=30), st.integers(1, 40), st.booleans())
def test_svg_trees_passed_over_withhold_what_reading_every_tag_withholds(
    soup: list[str], size: int, embeds: bool
) -> None:
    # (Marks alone: presentation attributes do not matter, only the marks' search.)
    data = ("<!DOCTYPE html><body><p>a</p><svg>" + "".join(soup) + "</svg><p>b</p>").encode()
    agree(data, [data], embeds)
    agree(data, [data[k : k + size] for k in range(0, len(data), size)], embeds)


@pytest.mark.parametrize("doc", SVG)
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_each_svg_element_alone_and_nested(doc: str, depth: int) -> None:
    data = ("<body><svg>" + "<g>" * depth + doc + "</g>" * depth + "</svg>").encode()
    for size in (1, 5, len(data)):
        agree(data, [data[k : k + size] for k in range(0, len(data), size)])


def test_a_chart_is_passed_over_in_a_few_matches(tag_steps: Any) -> None:
    # Withholding read every tag in SVG, one step in Python each: a page with a chart of
    # 2,000 bars (8,000 tags) and 500 icons took 147 ms with an embeds rule, 7 without.
    bars = b"".join(
        b'<g class="bar"><rect x="%d" y="10" width="3" height="40"></rect>'
        b'<text x="%d">%d</text><title>Bar %d</title></g>' % (i, i, i, i)
        for i in range(2000)
    )
    icons = b'<svg class="icon"><path d="M0 0L1 1"/><circle r="2"/></svg>' * 500
    data = b"<!doctype html><body><svg viewBox='0 0 1 1'>" + bars + b"</svg>" + icons
    out, withheld = _edit(data, [data[k : k + 65536] for k in range(0, len(data), 65536)], False)
    assert withheld == []
    assert out.count(b"<E>") == 1
    assert tag_steps.count < 1200, tag_steps.count  # (the svg tags themselves, and ~10,000)


def test_the_watch_reads_each_name_that_may_load() -> None:
    watch = injector_module._WITHHOLD_EMBEDS
    assert watch.foreign_plain
    assert not watch.foreign_leaves
    assert {b"image", b"feimage", b"script", b"style", b"svg", b"set", b"animate"} <= (watch.starts)
    assert watch.starts >= EMBED_ELEMENTS
    assert Tokenizer.max_token > 0

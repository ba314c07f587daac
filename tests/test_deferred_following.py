"""``after_heading`` and ``marker`` follow the page's links and paragraphs, past the first
few, only once their place is found, reading the held bytes again
(``_AtBodyStartUnlessFound.defer_after``): the output must be byte for byte the output of
following them all as the tags come, on generated pages, chunked anyhow, deferring from the
body start or after a few tags, and on html5lib's corpus with headings and markers put in
it."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.html import placements
from compliance.html.injector import Injector, PageInfo
from compliance.html.placements import Placement
from compliance.html.tokenizer import Tokenizer
from compliance.html.withhold import Withhold

sys.path.insert(0, str(Path(__file__).parent))

from test_inject_corpus import corpus_documents
from test_inject_properties import (
    HEADING_SOUP,
    LINKED_NOTICE,
    PARAGRAPH_END_SOUP,
    PARAGRAPH_SOUP,
    chunked,
)

PLACEMENTS: tuple[Placement, ...] = ("after_heading", "marker")

# What the links, paragraphs and headings depend on, and what the deferred reading must read
# as the page's tokenizer did: foreign content a heading or paragraph breaks out of,
# templates, selects, raw text, comments, elements that hide, tags too long to read whole.
SOUP = sorted(
    {
        *HEADING_SOUP,
        *PARAGRAPH_SOUP,
        *PARAGRAPH_END_SOUP,
        "<svg>",
        "<svg><p>",
        "<math><mi>",
        "<svg><foreignObject>",
        "<template>",
        "</template>",
        "<select>",
        "</select>",
        "<option>",
        "<script>'<a></p>'</script>",
        "<textarea><a></textarea>",
        "<xmp><a></p></xmp>",
        "<listing>",
        "<!-- x <a> -->",
        "<!--",
        "-->",
        "<div hidden>",
        "<span style='display:none'>",
        "<!-- compliance:notices -->",
        "<a title='" + "x" * 150 + "'>",
        "<p class='" + "y" * 150 + "'>",
        "</a " + "z" * 150 + ">",
        "<table><tr><td><a>",
        "<marquee>",
        "</marquee>",
    }
)


USUAL = placements._AtBodyStartUnlessFound.defer_after
# Deferring from the body start, after a tag or two, and as it does.
DEFER_AFTER = [0, 1, 2, USUAL]


def inject(
    data: bytes, placement: Placement, pieces: list[bytes], defer_after: int | None
) -> bytes:
    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {placement: LINKED_NOTICE}

    placements._AtBodyStartUnlessFound.defer_after = defer_after
    try:
        injector = Injector(render)
        out = b"".join(injector.feed(p) for p in pieces) + injector.finish()
    finally:
        placements._AtBodyStartUnlessFound.defer_after = USUAL
    assert injector.fault is None, injector.fault
    return out + b"|" + ",".join(injector.inserted_placements).encode()


def agree(data: bytes, placement: Placement, pieces: list[bytes], defer_after: int) -> None:
    deferred = inject(data, placement, pieces, defer_after)
    assert deferred == inject(data, placement, pieces, None), data


@given(
    st.lists(st.sampled_from(SOUP), max_size=30),
    st.sampled_from(PLACEMENTS),
    st.lists(st.integers(min_value=0), max_size=6),
    st.sampled_from([64 * 1024, 64]),
    st.sampled_from(DEFER_AFTER),
)
def test_deferred_following_agrees_with_following_as_the_tags_come(
    soup: list[str], placement: Placement, cuts: list[int], max_token: int, defer_after: int
) -> None:
    # (A small max_token makes the long tags come in pieces, passed over unread by the
    # page's tokenizer: the deferred reading must pass them over too.)
    data = ("<!DOCTYPE html><body>" + "".join(soup) + "<p>end</p>").encode()
    usual = Tokenizer.max_token
    Tokenizer.max_token = max_token
    try:
        agree(data, placement, [data], defer_after)
        agree(data, placement, chunked(data, cuts), defer_after)
        agree(data, placement, [data[k : k + 7] for k in range(0, len(data), 7)], defer_after)
    finally:
        Tokenizer.max_token = usual


@pytest.mark.parametrize(
    "doc",
    [
        # Link tags too long to read whole, in pieces: passed over unread as the tags come.
        "<a title='" + "x" * 150 + "'>T<!-- compliance:notices --><h1>H</h1><p>end</p>",
        "<a>x</a><a title='" + "x" * 150 + "'>T<!-- compliance:notices --><h1>H</h1>",
        "<a>x<table><tr><td>y</td></tr></table></a " + "z" * 150 + "><h1>H</h1><!-- "
        "compliance:notices -->",
        "<table><tr><td><a title='" + "x" * 150 + "'>T</table><h1>H</h1><!-- compliance:notices "
        "-->",
        # Headings and paragraphs breaking out of foreign content, before the place.
        "<svg><a><h1>H</h1></a><p>x<!-- compliance:notices --></p>",
        "<math><mi><a>x</mi></math><h1>H</h1><!-- compliance:notices -->",
        "<a href=/><svg><p>x</svg><h1>H</h1></a><!-- compliance:notices -->",
        # Raw text that closes a paragraph: reading again from in it would read its text
        # as tags.
        "<p>x<xmp><a></p></xmp><!-- compliance:notices --><h1>H</h1>",
        "<p>x<a>y</a><xmp><a></xmp><a href=/><h1>H</h1></a><p><!-- compliance:notices -->",
        # A hidden heading and marker, then shown ones, with links open between.
        "<div hidden><a><h1>D</h1><!-- compliance:notices --></div><h1>S</h1></a><p><a>y"
        "<!-- compliance:notices --></a>z</p>",
        "<h1 hidden>W</h1><a href=/x><h1>L</h1></a><p>q</p>",
    ],
)
@pytest.mark.parametrize("max_token", [64 * 1024, 64])
@pytest.mark.parametrize("defer_after", DEFER_AFTER)
def test_deferred_following_agrees_in_the_cases_that_stop_it(
    doc: str, max_token: int, defer_after: int
) -> None:
    data = ("<!DOCTYPE html><body>" + doc).encode()
    usual = Tokenizer.max_token
    Tokenizer.max_token = max_token
    try:
        for placement in PLACEMENTS:
            for size in (1, 7, len(data)):
                pieces = [data[k : k + size] for k in range(0, len(data), size)]
                agree(data, placement, pieces, defer_after)
    finally:
        Tokenizer.max_token = usual


WITHHELD = 'data-compliance-withhold="w"'


@pytest.mark.parametrize(
    "doc",
    [
        f"<a href=/><span {WITHHELD}>s</span><h1>H</h1></a><!-- compliance:notices -->",
        f"<svg><g {WITHHELD}><h1>x</h1></g></svg><p><!-- compliance:notices --></p><h1>H</h1>",
        f"<p>a<span {WITHHELD}>s</span><a>b<!-- compliance:notices -->c</a></p><h1>H</h1>",
    ],
)
@pytest.mark.parametrize("placeholder", ["<aside><p>W <a href=/w>why</a></p></aside>", ""])
def test_with_elements_withheld_the_tags_are_followed_as_they_come(
    doc: str, placeholder: str
) -> None:
    # The held bytes are not the page's own there (a placeholder, end tags for the foreign
    # elements a withheld element broke out of): read again, they would tell other links.
    data = ("<!DOCTYPE html><body>" + doc).encode()

    def edit(placement: Placement, defer_after: int | None) -> bytes:
        placements._AtBodyStartUnlessFound.defer_after = defer_after
        try:
            injector = Injector(
                lambda page: {placement: LINKED_NOTICE},
                withhold=Withhold.of({"w": "r"}, placeholder=lambda rule: placeholder),
            )
            out = b"".join(injector.feed(data[k : k + 5]) for k in range(0, len(data), 5))
            return out + injector.finish()
        finally:
            placements._AtBodyStartUnlessFound.defer_after = USUAL

    for placement in PLACEMENTS:
        assert edit(placement, 0) == edit(placement, None)


# Headings and markers, shown and hidden, put at random places of the corpus's documents.
PUT_IN = [
    "<h1>H</h1>",
    "<!-- compliance:notices -->",
    "<a href=/x><h1>L</h1></a>",
    "<p>x<!-- compliance:notices -->y</p>",
    "<a href=/y><!-- compliance:notices -->",
    "<div hidden><h1>D</h1><!-- compliance:notices --></div>",
    "<h1 hidden>W</h1>",
    "<table><tr><td><a href=/z>",
]


def _with_places(root: Path) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(7)
    for name, index, doc in corpus_documents(root):
        for _ in range(rng.randint(1, 3)):
            at = rng.choice([i for i, c in enumerate(doc) if c == "<"] + [len(doc)])
            doc = doc[:at] + rng.choice(PUT_IN) + doc[at:]
        yield f"{name}#{index}", doc.encode("utf-8", "surrogatepass")


def test_deferred_following_agrees_on_the_corpus(html_corpus: Path) -> None:
    disagree = []
    pages = 0
    for name, data in _with_places(html_corpus):
        pages += 1
        for placement in PLACEMENTS:
            for pieces in ([data], [data[k : k + 5] for k in range(0, len(data), 5)]):
                eager = inject(data, placement, pieces, None)
                for defer_after in (0, 2):
                    if inject(data, placement, pieces, defer_after) != eager:
                        disagree.append(f"{name} {placement} {len(pieces)} pieces {defer_after}")
    assert pages > 1000
    assert not disagree, "\n".join(disagree[:20]) + f"\n({len(disagree)} of {pages} pages)"


def _article(marker: bool) -> bytes:
    # 300 paragraphs of links, and a heading or marker at the end: every <a>, </a>, <p> and
    # </p> was a step in Python (about 11 µs here) before the place was found.
    paragraphs = b"".join(
        b'<p>Text <a href="/n/%d">link %d</a> and <a href="/m/%d">more</a>.</p>\n' % (i, i, i)
        for i in range(300)
    )
    place = b"<!-- compliance:notices -->" if marker else b""
    return b"<!doctype html><body><nav><a href=/>Home</a></nav>" + paragraphs + place + b"</body>"


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_a_page_without_its_place_is_read_in_a_few_steps(
    tag_steps: Any, placement: Placement
) -> None:
    data = _article(marker=False)
    out = inject(data, placement, [data], USUAL)
    assert out.startswith(b"<!doctype html><body><aside")  # at the body start
    # (1,203 for after_heading and 1,803 for marker when they were followed as they came)
    assert tag_steps.count < 20, tag_steps.count

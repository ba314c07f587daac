"""The injector against html5lib's tree-construction corpus (``../shared/html-corpus``).

Every whole-document input (``#data`` up to ``#errors``; ``#document-fragment`` tests parse a
fragment, not a document, and are left out) is injected for each placement with a notice
``<aside class="compliance-notice" data-compliance-rule="t">N</aside>``. The original and the
output are parsed with html5lib (scripting on, as in a browser, matching the injector's reading
of ``<noscript>``). When the injector inserted the notice, it must be one element, a
descendant of ``body`` (HTML namespace), where its placement says (the body's first child for
``body_start`` and the fallbacks, nothing but a ``<plaintext>`` after it for ``body_end``, the
next sibling of the first ``<h1>`` for ``after_heading``), and removing it must give the
original tree. When it did not, the output must equal the input byte for byte, and the reason
is counted.

Through the middleware, a reader with a notice at every placement gets each one in the page
(and counted as injected) or a response that says why not (counted as not delivered, or as
left out on purpose), on every document, whole and in small chunks, with the page around
the notices intact; and WSGI and ASGI give the same answer however the body is split. With
a marked element or a listed embed put anywhere in a document, no such element reaches the
reader.
"""

from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

html5lib = pytest.importorskip("html5lib")

from compliance import asgi, testing, wsgi  # noqa: E402
from compliance.inject import Injector, PageInfo, Placement  # noqa: E402

NOTICE = '<aside class="compliance-notice" data-compliance-rule="t">N</aside>'
PLACEMENTS: tuple[Placement, ...] = ("body_start", "body_end", "marker", "after_heading")

# Documents no streaming injector can edit without changing the tree, by (file, index, placement)
# with the reason. Keep this list short; fix the injector instead where possible.
_HTML5LIB_TEMPLATE_FRAMESET = (
    "html5lib 1.1 turns '<template><div><frameset>' in the head into a frameset document when "
    "anything follows the template (the corpus's own expected tree keeps the body), so the "
    "notice at the end lands outside any body in html5lib's tree only"
)
_HTML5LIB_HEAD_TEMPLATE = (
    "html5lib 1.1 does not close a head <template> whose content left a <table>, <object> or "
    "<span> open (the corpus's expected tree does), so it puts the body inside the template"
)
_HTML5LIB_FOREIGN_P = (
    "html5lib 1.1 keeps <svg> or <math> open at a </p> or </br> end tag; the Standard (and "
    "the corpus's expected tree, and Chromium) closes it there, as the injector reads it: "
    "the notice at the end is in the body, in html5lib's tree inside the foreign element"
)
KNOWN_EXCEPTIONS: dict[tuple[str, int, str], str] = {
    **{("tests26.dat", index, "body_end"): _HTML5LIB_FOREIGN_P for index in (16, 17, 18, 19)},
    ("template.dat", 41, "body_start"): _HTML5LIB_TEMPLATE_FRAMESET,
    ("template.dat", 41, "body_end"): _HTML5LIB_TEMPLATE_FRAMESET,
    ("template.dat", 41, "marker"): _HTML5LIB_TEMPLATE_FRAMESET,
    ("template.dat", 41, "after_heading"): _HTML5LIB_TEMPLATE_FRAMESET,
    **{
        ("template.dat", index, placement): _HTML5LIB_HEAD_TEMPLATE
        for index in (64, 95, 97)
        for placement in ("body_start", "marker", "after_heading")
    },
    ("template.dat", 95, "body_end"): _HTML5LIB_HEAD_TEMPLATE,
}


def corpus_documents(root: Path) -> Iterator[tuple[str, int, str]]:
    """(file name, index in file, input) for every whole-document test."""
    for path in sorted(root.glob("*.dat")):
        lines = path.read_bytes().decode("utf-8").split("\n")
        index = 0
        i = 0
        while i < len(lines):
            if lines[i] != "#data":
                i += 1
                continue
            j = i + 1
            while j < len(lines) and lines[j] != "#errors":
                j += 1
            data = "\n".join(lines[i + 1 : j])
            k = j
            fragment = False
            while k < len(lines) and lines[k] != "#data":
                if lines[k] == "#document-fragment":
                    fragment = True
                k += 1
            if not fragment:
                yield path.name, index, data
            index += 1
            i = k


def parse(doc: str) -> Any:
    return html5lib.parse(doc, namespaceHTMLElements=False, scripting=True)


def serialize(element: Any, depth: int = 0) -> list[str]:
    """A line per node: tag, sorted attributes, text and tail (enough to compare trees)."""
    tag = element.tag if isinstance(element.tag, str) else "#comment"
    attrs = sorted(element.attrib.items())
    lines = [f"{'  ' * depth}{tag} {attrs} {element.text!r}"]
    for child in element:
        lines.extend(serialize(child, depth + 1))
        lines.append(f"{'  ' * (depth + 1)}tail {child.tail!r}")
    return lines


def is_notice(element: Any) -> bool:
    return bool(element.tag == "aside" and element.get("data-compliance-rule") == "t")


def remove_notices(root: Any) -> int:
    """Remove notice elements (joining text as a parser would); return how many."""
    removed = 0
    for parent in list(root.iter()):
        children = list(parent)
        for index, child in enumerate(children):
            if not isinstance(child.tag, str) or not is_notice(child):
                continue
            # Open formatting elements (<b>, <font>...) are reconstructed inside the notice.
            assert "".join(child.itertext()) == "N"
            tail = child.tail or ""
            if index == 0:
                parent.text = (parent.text or "") + tail or None
            else:
                prev = children[index - 1]
                prev.tail = (prev.tail or "") + tail or None
            parent.remove(child)
            removed += 1
    return removed


def notice_under_body(root: Any) -> bool:
    bodies = list(root.iter("body"))
    return any(is_notice(e) for body in bodies for e in body.iter() if isinstance(e.tag, str))


def _blank(text: str | None) -> bool:
    return not (text or "").strip(" \t\n\f\r")


def at_body_start(body: Any, notice: Any) -> bool:
    """The notice is the body's first child (nothing but whitespace before it).

    html5lib 1.1 puts a ``<template>`` of the head into the body when the head has no other
    content (the standard keeps it in the head), so such templates may come first.
    """
    children = list(body)
    if notice not in children or not _blank(body.text):
        return False
    before = children[: children.index(notice)]
    return all(e.tag == "template" and _blank(e.tail) for e in before)


def at_body_end(body: Any, notice: Any) -> bool:
    """Nothing follows the notice in the body but whitespace, or a ``<plaintext>`` (all text,
    so nothing could follow it). Where no ``</body>`` closed the document, the notice is
    inside the elements still open at the end, as the last thing in them."""
    order = [e for e in body.iter() if isinstance(e.tag, str)]
    after = order[order.index(notice) + len(list(notice.iter())) :]
    if after:
        # Only a <plaintext> (which a table moves before itself, with the notice) may follow.
        return bool(after[0].tag == "plaintext" and notice.tail is None)
    # No text after the notice: its tail and its ancestors' tails are blank, but for a "<"
    # or "</" ending the document (text that must stay last: "</" before markup would
    # start a bogus comment).
    parents = {child: parent for parent in body.iter() for child in parent}
    node = notice
    while node is not body:
        if not _blank(node.tail) and node.tail not in ("<", "</"):
            return False
        node = parents[node]
    return True


def after_first_h1(body: Any, notice: Any) -> bool:
    """The notice directly follows the body's first <h1> (as its next sibling)."""
    h1 = next(body.iter("h1"), None)
    if h1 is None:
        return False
    for parent in body.iter():
        children = list(parent)
        if h1 in children:
            k = children.index(h1)
            return k + 1 < len(children) and children[k + 1] is notice
    return False


def placed_where_expected(tree: Any, placement: Placement) -> str | None:
    """Why the notice is not where ``placement`` says (None when it is)."""
    body = tree.find("body")
    notice = next((e for e in tree.iter() if isinstance(e.tag, str) and is_notice(e)), None)
    if body is None or notice is None:
        return "no body or no notice"
    if placement == "body_end":
        return None if at_body_end(body, notice) else "not the last child of body"
    if placement == "after_heading" and after_first_h1(body, notice):
        return None
    # body_start, and the fallback of marker (no marker in the corpus) and after_heading.
    return None if at_body_start(body, notice) else "not the first child of body"


def run(doc: str, placement: Placement) -> tuple[bytes, Injector]:
    def render(page: PageInfo) -> Mapping[Placement, str]:
        return {placement: NOTICE}

    injector = Injector(render)
    data = doc.encode("utf-8", "surrogatepass")
    out = injector.feed(data) + injector.finish()
    # The result must not depend on chunking.
    other = Injector(render)
    split = b"".join(other.feed(data[i : i + 3]) for i in range(0, len(data), 3))
    assert split + other.finish() == out
    return out, injector


def check(doc: str, placement: Placement) -> str:
    """Check one document; return "edited" or the reason it was skipped."""
    out, injector = run(doc, placement)
    reason = injector.skipped_reason
    assert not (reason or "").startswith("internal error"), reason
    if not injector.inserted:
        assert out == doc.encode("utf-8", "surrogatepass")
        return reason or "not inserted"
    edited = parse(out.decode("utf-8", "surrogatepass"))
    assert notice_under_body(edited), "notice is not inside body"
    where = placed_where_expected(edited, placement)
    assert where is None, where
    assert remove_notices(edited) == 1, "expected exactly one notice element"
    assert serialize(edited) == serialize(parse(doc)), "tree changed"
    return "edited"


def test_corpus(html_corpus: Path) -> None:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    documents = list(corpus_documents(html_corpus))
    for name, index, doc in documents:
        for placement in PLACEMENTS:
            key = (name, index, placement)
            try:
                outcome = check(doc, placement)
            except AssertionError as exc:
                if key in KNOWN_EXCEPTIONS:
                    counts[f"{placement}: known exception"] += 1
                    continue
                failures.append(f"{name}#{index} {placement} {doc[:60]!r}: {exc}")
                continue
            assert key not in KNOWN_EXCEPTIONS, f"{key} passes now: remove it from the list"
            counts[f"{placement}: {outcome}"] += 1
    print(f"\ncorpus: {len(documents)} documents x {len(PLACEMENTS)} placements")
    for outcome, count in sorted(counts.items()):
        print(f"  {outcome}: {count}")
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"


EVERY_PLACEMENT = "version: 1\nrules:\n" + "".join(
    f"  - id: at-{name.replace('_', '-')}\n"
    f"    title: a notice at {name}\n"
    f"    jurisdictions: [RU]\n"
    f"    notice: {{placement: {name}, default_locale: en, text: {{en: At {name}.}}}}\n"
    for name in PLACEMENTS
)


def page_app(body: bytes, *, chunk: int, length: bool, gzipped: bool) -> Any:
    """A WSGI application sending ``body`` as HTML, in ``chunk``-byte pieces (0: whole),
    with a Content-Length when ``length`` (the core then buffers the page), gzipped when
    asked."""
    headers = [("Content-Type", "text/html; charset=utf-8")]
    data = gzip.compress(body, mtime=0) if gzipped else body
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    if length:
        headers.append(("Content-Length", str(len(data))))
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", list(headers))
        return list(pieces)

    return app


_A_NOTICE = re.compile(rb'<aside class="compliance-notice"[^>]*>.*?</aside>', re.DOTALL)
_MARK = re.compile(rb"<!--compliance-test:[a-z_]+-->")


def edited_page(body: bytes) -> bytes:
    """``body`` as the injector alone edits it, without the notices: the page a reader
    must get around them (with the end tags the injector adds so that nothing swallows a
    notice: ``</h1>`` before an ``after_heading`` one, say)."""
    injector = Injector(lambda page: {p: f"<!--compliance-test:{p}-->" for p in PLACEMENTS})
    return _MARK.sub(b"", injector.feed(body) + injector.finish())


VARIANTS = [  # (chunk size, Content-Length, gzip)
    (0, False, False),
    (7, False, False),
    (0, True, False),
    (7, False, True),
]


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_every_notice_is_in_the_page_or_counted_as_not_delivered(
    html_corpus: Path, make_engine: Any, mode: str
) -> None:
    """Each notice is in the page and counted as injected, or the response says why; and
    the page around the notices is the application's, byte for byte (failing closed, a
    response may be refused, or ended early once its headers are out, and is then
    counted)."""
    engine = make_engine(EVERY_PLACEMENT)
    rules = [f"at-{name.replace('_', '-')}" for name in PLACEMENTS]
    failures: list[str] = []
    for name, index, doc in corpus_documents(html_corpus):
        body = doc.encode("utf-8", "surrogatepass")
        expected = edited_page(body)
        for chunk, length, gzipped in VARIANTS:
            app = page_app(body, chunk=chunk, length=length, gzipped=gzipped)
            middleware = wsgi.ComplianceMiddleware(app, engine, fail_mode=mode)
            environ = testing.wsgi_environ(peer="192.0.2.1", headers=[("Accept-Encoding", "gzip")])
            response = testing.call_wsgi(middleware, environ)
            counts = middleware.metrics()
            out = response.body
            if gzipped and response.status == 200:
                out = gzip.decompress(out)
            present = {r for r in rules if f'data-compliance-rule="{r}"'.encode() in out}
            injected = {key.split("|")[0] for key in counts["notices_injected"]}
            undelivered = bool(counts["notices_not_delivered"])
            explained = undelivered or bool(counts["notices_skipped"])
            page = _A_NOTICE.sub(b"", out)
            if response.status == 503:
                ok = not present and undelivered
            else:
                ok = present == injected and (present == set(rules) or explained)
                # Failing open the page is the edited one, or the application's own;
                # failing closed after the headers, it may end early (and is counted).
                ok &= page in (expected, body) or (mode == "closed" and undelivered)
            if not ok:
                failures.append(
                    f"{name}#{index} chunk={chunk} length={length} gzip={gzipped}: "
                    f"{response.status}, in the page {sorted(present)}, counted "
                    f"{sorted(injected)}, page kept: {page in (expected, body)}, {dict(counts)}"
                )
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} failures)"


def _asgi_page(body: bytes, pieces: list[bytes]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, piece in enumerate(pieces):
            more = i < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})

    return app


def test_the_response_depends_neither_on_the_adapter_nor_on_the_chunks(
    html_corpus: Path, make_engine: Any
) -> None:
    """Every document, whole and in 1-, 7- and 64-byte chunks, through WSGI and ASGI: one
    status and one body (the core decides; the adapters only translate)."""
    engine = make_engine(EVERY_PLACEMENT)
    failures: list[str] = []
    for name, index, doc in corpus_documents(html_corpus):
        body = doc.encode("utf-8", "surrogatepass")
        answers: dict[tuple[int, bytes], list[str]] = {}
        for chunk in (0, 1, 7, 64):
            pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
            app = page_app(body, chunk=chunk, length=False, gzipped=False)
            w = testing.call_wsgi(
                wsgi.ComplianceMiddleware(app, engine), testing.wsgi_environ(peer="192.0.2.1")
            )
            a = testing.call_asgi(
                asgi.ComplianceMiddleware(_asgi_page(body, pieces or [b""]), engine),
                testing.asgi_scope(peer="192.0.2.1"),
            )
            answers.setdefault((w.status, w.body), []).append(f"wsgi/{chunk}")
            answers.setdefault((a.status, a.body), []).append(f"asgi/{chunk}")
        if len(answers) > 1:
            failures.append(
                f"{name}#{index} {doc[:40]!r}: {len(answers)} answers {answers.values()}"
            )
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} failures)"


WITHHOLDING = """\
version: 1
rules:
  - id: court-order
    title: one marked element and one embed host withheld in Russia
    jurisdictions: [RU]
    withhold:
      marks: [w1]
      embeds: [blocked.example]
      placeholder: false
    notice: {placement: body_end, default_locale: en, text: {en: A notice.}}
"""
_INSERTS = (
    '<div data-compliance-withhold="w1">SECRET</div>',
    '<img src="https://blocked.example/x.png">',
    '<p data-compliance-withhold="w1">SECRET',
    '<table><tr><td data-compliance-withhold="w1">SECRET</td>',
    '<svg><foreignObject><div data-compliance-withhold="w1">SECRET</div>',
)
_EMBEDS = frozenset({"iframe", "embed", "object", "video", "audio", "source", "img", "script"})


def _host(url: str) -> str | None:
    """The host a browser would fetch ``url`` from (None: no valid URL)."""
    if any(c in url for c in "<> \"'"):
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _withheld_in(tree: Any) -> bool:
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        if element.get("data-compliance-withhold") == "w1":
            return True
        if element.tag in _EMBEDS and _host(element.get("src") or "") == "blocked.example":
            return True
    return False


def test_withheld_content_never_reaches_the_reader(html_corpus: Path, make_engine: Any) -> None:
    """Three marked elements or listed embeds put at random places in every document (in
    a comment, an attribute, a table, foreign content...), whole and byte by byte: when
    the output parses (as a browser does) to such an element, the editor failed."""
    engine = make_engine(WITHHOLDING)
    rng = random.Random(7)
    failures: list[str] = []
    for name, index, doc in corpus_documents(html_corpus):
        for _ in range(2):
            text = doc
            for _ in range(3):
                at = rng.randrange(len(text) + 1)
                text = text[:at] + rng.choice(_INSERTS) + text[at:]
            body = text.encode("utf-8", "surrogatepass")
            for chunk in (0, 1):
                app = page_app(body, chunk=chunk, length=False, gzipped=False)
                environ = testing.wsgi_environ(peer="192.0.2.1")
                middleware = wsgi.ComplianceMiddleware(app, engine)
                response = testing.call_wsgi(middleware, environ)
                if response.status != 200:
                    continue
                if _withheld_in(parse(response.body.decode("utf-8", "surrogatepass"))):
                    failures.append(f"{name}#{index} chunk={chunk}: {body[:80]!r}")
                # The notice is counted as injected exactly when it is in the page (a cut
                # document ends with it).
                counted = bool(middleware.metrics()["notices_injected"])
                if counted != (b'data-compliance-rule="court-order"' in response.body):
                    failures.append(f"{name}#{index} chunk={chunk}: notice miscounted")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} failures)"

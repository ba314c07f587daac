"""Glob matching is linear in the text: hostile hosts and paths cannot hang a worker."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.globs import compile_globs, reference_match


def _timed(pattern: str, text: str, *, host: bool) -> tuple[bool, float]:
    globs = compile_globs([pattern], host=host)
    assert globs is not None
    start = time.perf_counter()
    result = globs.match(text)
    return result, time.perf_counter() - start


def test_many_stars_against_a_host_of_dashes() -> None:
    matched, seconds = _timed("*-*-*-*-*-*-*.example", "-" * 80, host=True)
    assert not matched
    assert seconds < 0.5  # a backtracking regex takes seconds here


def test_double_stars_against_a_16_kb_path() -> None:
    matched, seconds = _timed("/**/news/**/**/x", "/" + "news/" * 3300, host=False)
    assert not matched
    assert seconds < 0.5  # a backtracking regex takes more than 20 seconds here


def test_mixed_stars_against_a_16_kb_path() -> None:
    matched, seconds = _timed("/*/news/**/*/*/x", "/a/news/" + "a/" * 8000, host=False)
    assert not matched
    assert seconds < 0.5
    assert _timed("/*/news/**/*/*/x", "/a/news/" + "a/" * 8000 + "x", host=False)[0]


def test_meaning_of_each_wildcard() -> None:
    host = compile_globs(["*.example.org", "news.?.example"], host=True)
    assert host is not None
    assert host.match("a.b.example.org")
    assert host.match("news.x.example")
    assert not host.match("example.org")
    path = compile_globs(["/news/*", "/a/**/z", "/f?o"], host=False)
    assert path is not None
    assert path.match("/news/1")
    assert not path.match("/news/1/2")
    assert path.match("/a/b/c/z")
    assert path.match("/foo")
    assert not path.match("/f/o")


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.text(alphabet="ab/.*?", min_size=1, max_size=9),
    text=st.text(alphabet="ab/.", max_size=12),
    host=st.booleans(),
)
def test_agrees_with_the_plain_definition(pattern: str, text: str, host: bool) -> None:
    globs = compile_globs([pattern], host=host)
    assert globs is not None
    assert globs.match(text) == reference_match(pattern, text, host=host)


@settings(max_examples=100, deadline=None)
@given(
    patterns=st.lists(st.text(alphabet="ab/*?", min_size=1, max_size=7), min_size=1, max_size=4),
    text=st.text(alphabet="ab/", max_size=10),
)
def test_a_list_matches_when_any_pattern_does(patterns: list[str], text: str) -> None:
    globs = compile_globs(patterns, host=False)
    assert globs is not None
    assert globs.match(text) == any(reference_match(p, text, host=False) for p in patterns)

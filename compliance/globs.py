"""Glob matching in time linear in the text, whatever the pattern.

Rule files match hosts and paths with globs: ``*`` (any run of characters; in a path, a run
without ``/``), ``**`` (any run, ``/`` included) and ``?`` (one character; in a path, not
``/``). Translated to a backtracking regex, ``*-*-*-*-*-*-*.example`` against a host of 80
dashes takes seconds, and the text is the attacker's. Here no pattern backtracks:

- a pattern without wildcards is a set lookup;
- a pattern with one star (any number of ``?``) is an anchored regex with a single
  quantifier, which the regex engine settles in one pass over the text per pattern;
- a pattern whose stars are all of one kind (every star in a host; only ``**`` in a path)
  is matched greedily: the literal pieces between stars are found left to right, each at its
  first place (the first place is always as good as any later one);
- any other pattern (``*`` and ``**`` mixed in a path) runs as a bit-parallel automaton: one
  pass over the text, a few integer operations per character.

Texts are bounded by the callers (253 characters for a host, 8 KiB for a path).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

__all__ = ["GlobSet", "compile_globs", "reference_match"]

_TOKEN = re.compile(r"\*\*|\*|\?|[^*?]+")


def _tokens(pattern: str) -> list[str]:
    """``**``, ``*``, ``?`` and literal runs; stars in a row merged (``***`` is ``**``)."""
    out: list[str] = []
    for token in _TOKEN.findall(pattern):
        if token.startswith("*") and out and out[-1].startswith("*"):
            out[-1] = "**"  # a run of stars matches any run, '/' included
        else:
            out.append(token)
    return out


def _star_any(token: str, host: bool) -> bool:
    return token == "**" or (host and token == "*")


def _piece(chunk: list[str], host: bool) -> tuple[str | re.Pattern[str], int]:
    """A literal run between stars: a string, or a fixed-length regex when it has ``?``."""
    length = sum(1 if t == "?" else len(t) for t in chunk)
    if "?" not in chunk:
        return "".join(chunk), length
    one = "." if host else "[^/]"
    return re.compile("".join(one if t == "?" else re.escape(t) for t in chunk), re.DOTALL), length


class _Greedy:
    """A pattern whose every star matches any run: the pieces between stars are found left to
    right, each at its first place, by ``str.find`` (or a fixed-length regex search)."""

    __slots__ = ("first", "last", "middle", "min_length")

    def __init__(self, pieces: list[list[str]], host: bool) -> None:
        self.first = _piece(pieces[0], host)
        self.last = _piece(pieces[-1], host)
        self.middle = [_piece(p, host) for p in pieces[1:-1] if p]
        self.min_length = self.first[1] + self.last[1]

    def match(self, text: str) -> bool:
        (first, first_len), (last, last_len) = self.first, self.last
        if len(text) < self.min_length:
            return False
        end = len(text) - last_len
        if not _starts(first, text, 0) or not _starts(last, text, end):
            return False
        pos = first_len
        for piece, length in self.middle:
            if isinstance(piece, str):
                found = text.find(piece, pos, end)
            else:
                hit = piece.search(text, pos, end)
                found = -1 if hit is None else hit.start()
            if found < 0:
                return False
            pos = found + length
        return pos <= end


def _starts(piece: str | re.Pattern[str], text: str, pos: int) -> bool:
    if isinstance(piece, str):
        return text.startswith(piece, pos)
    return piece.match(text, pos) is not None


class _Automaton:
    """A bit-parallel NFA (shift-and): bit ``i`` of the state is set when the pattern's first
    ``i`` character steps can have matched the text read so far. Stars add no step: they
    are self-loops on the position where they stand."""

    __slots__ = ("accept", "loops", "loops_at_slash", "masks", "wildcards")

    def __init__(self, tokens: list[str], host: bool) -> None:
        steps: list[str] = []  # "?" or one literal character per position
        loops = 0  # positions with a star: the state stays there on any character ...
        loops_at_slash = 0  # ... and those whose star also matches '/'
        for token in tokens:
            if token in ("*", "**"):
                loops |= 1 << len(steps)
                if _star_any(token, host):
                    loops_at_slash |= 1 << len(steps)
            elif token == "?":
                steps.append("?")
            else:
                steps.extend(token)
        self.accept = 1 << len(steps)
        self.loops = loops
        self.loops_at_slash = loops_at_slash
        wildcards = 0
        literal: dict[str, int] = {}
        for i, step in enumerate(steps):
            if step == "?":
                wildcards |= 1 << i
            else:
                literal[step] = literal.get(step, 0) | 1 << i
        self.wildcards = wildcards
        # masks[c]: positions whose step consumes character c.
        self.masks = {c: m | wildcards for c, m in literal.items()}
        if not host:  # in a path, `?` never consumes '/'
            self.masks["/"] = literal.get("/", 0)

    def match(self, text: str) -> bool:
        get = self.masks.get
        wildcards = self.wildcards
        loops = self.loops
        loops_at_slash = self.loops_at_slash
        state = 1
        for char in text:
            stay = state & (loops_at_slash if char == "/" else loops)
            state = ((state & get(char, wildcards)) << 1) | stay
            if not state:
                return False
        return bool(state & self.accept)


class GlobSet:
    """A list of globs compiled once; :meth:`match` is true when any of them matches."""

    __slots__ = ("_exact", "_matchers", "patterns")

    def __init__(self, patterns: Iterable[str], *, host: bool) -> None:
        self.patterns = tuple(patterns)
        exact: set[str] = set()
        single: list[str] = []
        matchers: list[Callable[[str], bool]] = []
        for raw in self.patterns:
            pattern = raw.lower() if host else raw
            tokens = _tokens(pattern)
            stars = [t for t in tokens if t in ("*", "**")]
            if not stars and "?" not in tokens:
                exact.add(pattern)
            elif len(stars) <= 1:
                single.append(_regex(tokens, host))
            elif all(_star_any(t, host) for t in stars):
                pieces: list[list[str]] = [[]]
                for token in tokens:
                    if token in ("*", "**"):
                        pieces.append([])
                    else:
                        pieces[-1].append(token)
                matchers.append(_Greedy(pieces, host).match)
            else:
                matchers.append(_Automaton(tokens, host).match)
        if single:
            matchers.insert(0, re.compile("|".join(single), re.DOTALL).fullmatch)  # type: ignore[arg-type]
        self._exact = frozenset(exact)
        self._matchers = tuple(matchers)

    def match(self, text: str) -> bool:
        """Whether ``text`` matches any of the globs (a host: give it lower case)."""
        if text in self._exact:
            return True
        return any(matcher(text) for matcher in self._matchers)

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"


def _regex(tokens: list[str], host: bool) -> str:
    out = []
    for token in tokens:
        if token in ("*", "**"):
            out.append(".*" if _star_any(token, host) else "[^/]*")
        elif token == "?":
            out.append("." if host else "[^/]")
        else:
            out.append(re.escape(token))
    return "(?:" + "".join(out) + ")"


def compile_globs(patterns: Sequence[str], *, host: bool) -> GlobSet | None:
    """A :class:`GlobSet` for ``patterns``, or None when there are none (matches anything).

    >>> compile_globs(["*.example.org"], host=True).match("news.example.org")
    True
    >>> paths = compile_globs(["/news/*", "/a/**/z"], host=False)
    >>> paths.match("/news/1"), paths.match("/news/1/2"), paths.match("/a/b/c/z")
    (True, False, True)
    """
    if not patterns:
        return None
    return GlobSet(patterns, host=host)


def reference_match(pattern: str, text: str, *, host: bool) -> bool:
    """The meaning of a glob, written plainly (exponential: for tests on small inputs)."""
    tokens = _tokens(pattern.lower() if host else pattern)

    def go(t: int, i: int) -> bool:
        if t == len(tokens):
            return i == len(text)
        token = tokens[t]
        if token in ("*", "**"):
            any_run = _star_any(token, host)
            j = i
            while True:
                if go(t + 1, j):
                    return True
                if j == len(text) or (not any_run and text[j] == "/"):
                    return False
                j += 1
        if token == "?":
            return i < len(text) and (host or text[i] != "/") and go(t + 1, i + 1)
        return text.startswith(token, i) and go(t + 1, i + len(token))

    return go(0, 0)

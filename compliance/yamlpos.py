"""Load YAML into plain Python values while remembering where each value came from.

PyYAML forgets source positions once it builds Python objects, and pydantic reports errors
by location (``("rules", 0, "title")``). This module builds the objects itself from PyYAML's
node tree and keeps a map from every location to its ``(line, column)``, 1-based, so that
every later error can name its place in the file.

Deliberate departures from PyYAML's defaults (YAML 1.1), because rule files are full of
country and language codes and of numbers lawyers write as they read: booleans, integers and
floats are resolved as YAML 1.2's core schema says, so ``NO`` (Norway) and ``no``
(Norwegian) stay strings, ``10:30`` stays the text "10:30" (not 630, base 60), ``0123`` is
123 (not octal 83) and ``1_000`` stays text (1.2 has no digit separators); dates
(``2024-02-20``) are still read as dates, which 1.2's core schema leaves to applications;
mapping keys are always the text as written; and ``!!binary`` is a problem at its place, as
no field of a rule file takes binary data (PyYAML would decode it leniently, dropping what is
not base64: ``!!binary "!!"`` was empty bytes, and valid base64 passed for text).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["MAX_VALUES", "Located", "YAMLSyntaxError", "load"]

Path = tuple[str | int, ...]

_Base: type[yaml.SafeLoader]
try:  # the libyaml parser is much faster; fall back to pure Python when it is missing
    _Base = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 core booleans, integers and floats (see the module's doc)."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_NULL_TAG = "tag:yaml.org,2002:null"
_BINARY_TAG = "tag:yaml.org,2002:binary"
# YAML 1.2.2, 10.3.2 (core schema): the forms each type is resolved from.
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_12 = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_12 = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
MAX_DIGITS = 4300
"""Most digits of a whole number (Python's own limit on converting text to int)."""

_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)
    ]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL_TAG, _BOOL_12, list("tTfF"))
_Loader.add_implicit_resolver(_INT_TAG, _INT_12, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_12, list("-+.0123456789"))


class _NotValue(ValueError):
    """A scalar that its tag cannot read; the message says why, in a rule author's words."""


def _construct_bool(loader: Any, node: yaml.ScalarNode) -> bool:
    if not _BOOL_12.match(node.value):
        raise _NotValue("is not true or false (YAML 1.2 booleans: true, false)")
    return bool(node.value.lower() == "true")


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    text = node.value
    if not _INT_12.match(text):
        raise _NotValue("is not a whole number")
    if len(text) > MAX_DIGITS:
        raise _NotValue(f"has more than {MAX_DIGITS:,} digits")
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


def _construct_float(loader: Any, node: yaml.ScalarNode) -> float:
    text = node.value
    if not (_FLOAT_12.match(text) or _INT_12.match(text)):
        raise _NotValue("is not a number")
    if len(text) > MAX_DIGITS:
        raise _NotValue(f"has more than {MAX_DIGITS:,} digits")
    if text.startswith(("0o", "0x")):
        return float(_construct_int(loader, node))
    lower = text.lower()
    if lower.endswith(".inf"):
        return float("-inf") if lower.startswith("-") else float("inf")
    if lower == ".nan":
        return float("nan")
    return float(text)


def _construct_timestamp(loader: Any, node: yaml.ScalarNode) -> Any:
    if not loader.timestamp_regexp.match(node.value):
        raise _NotValue("is not a date (YYYY-MM-DD) or a date and time")
    try:
        return _Base.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:  # 2025-02-30: the pattern, but no such day
        raise _NotValue(f"is not a real date ({exc})") from None


def _construct_binary(loader: Any, node: yaml.ScalarNode) -> Any:
    no_field = "no field of a rule file takes binary data: write the text itself, without !!binary"
    try:
        base64.b64decode("".join(node.value.split()), validate=True)
    except binascii.Error:
        raise _NotValue(f"is not base64 ({no_field})") from None
    raise _NotValue(f"is binary data: {no_field}")


_Loader.add_constructor(_BOOL_TAG, _construct_bool)
_Loader.add_constructor(_INT_TAG, _construct_int)
_Loader.add_constructor(_FLOAT_TAG, _construct_float)
_Loader.add_constructor(_TIMESTAMP_TAG, _construct_timestamp)
_Loader.add_constructor(_BINARY_TAG, _construct_binary)

_TAG_NAMES = {
    _BOOL_TAG: "!!bool",
    _INT_TAG: "!!int",
    _FLOAT_TAG: "!!float",
    _TIMESTAMP_TAG: "!!timestamp",
    _NULL_TAG: "!!null",
    _BINARY_TAG: "!!binary",
}


class YAMLSyntaxError(Exception):
    """The text is not YAML (or not the YAML we accept); ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Located:
    """A loaded document: its value, where each part sits, and problems found on the way."""

    value: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[tuple[Path, int, int, str]] = field(default_factory=list)
    """``(path, line, column, message)`` for each value that was read but not accepted."""
    _lines: list[str] = field(default_factory=list, repr=False)
    """The document's lines as YAML's marks count them, while it is being built."""
    blocks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    """Literal block texts (``|``), by path: the 0-based line of their ``|`` and their
    indentation, so that a place inside the text maps to the file's line and column."""

    def inside(self, path: Path, value: str, offset: int) -> tuple[int, int]:
        """Where character ``offset`` of the text ``value`` at ``path`` is written: exact in a
        literal block (``|``), whose lines are the file's; the text's own place otherwise
        (in a folded or quoted text, the file's line breaks are not the text's)."""
        block = self.blocks.get(path)
        if block is None or not 0 <= offset <= len(value):
            return self.position(path)
        indicator, indent = block
        before = value[:offset]
        return (
            indicator + 2 + before.count("\n"),
            indent + offset - (before.rfind("\n") + 1) + 1,
        )

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Where ``path`` is; for a missing part, the nearest enclosing part that exists."""
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))


_MAX_DEPTH = 64
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
# The tags a plain key may resolve to from its text; keys are read as that text.
_KEY_TAGS = frozenset(
    {_STR_TAG, _BOOL_TAG, _INT_TAG, _FLOAT_TAG, _NULL_TAG, _TIMESTAMP_TAG, _MERGE_TAG}
    | {"tag:yaml.org,2002:value"}
)


def _unknown_tag(tag: str) -> str:
    """A tag that means nothing in a rule file (``!foo``, ``!!set``, ``!!python/...``): it
    would be silently dropped, and the value read otherwise than its author meant."""
    written = "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag
    return f"the tag '{written}' means nothing in a rule file: remove it"


MAX_VALUES = 100_000
"""Most values (scalars, lists, mappings and mapping entries) one document may hold, written
out or added by aliases and merge keys: a few bytes of aliases can stand for billions of
values (the "billion laughs"), and building them would take the memory of the machine; and
a megabyte of ``[{},{},...]`` is 300,000 values, each of which costs memory to build and to
check (several errors each, for a file of empty rules)."""


class _Cycle(Exception):
    """Merge keys that merge, directly or not, the mapping they are in."""


class _TooMany(Exception):
    def __init__(self, line: int, column: int, aliased: bool = True) -> None:
        self.line = line
        self.column = column
        self.aliased = aliased


def load(text: str, *, max_values: int = MAX_VALUES) -> Located:
    """Parse one YAML document from ``text``; raise :class:`YAMLSyntaxError` if it is not,
    or if it holds more than ``max_values`` values once aliases are expanded."""
    _check_nesting(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except RecursionError:
        raise YAMLSyntaxError(f"nested too deeply (at most {_MAX_DEPTH} levels)", 1, 1) from None
    except yaml.MarkedYAMLError as exc:
        message, mark = _explain(exc, text)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YAMLSyntaxError(f"YAML syntax error: {message}", line, column) from None
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        raise _reader_error(exc, text) from None
    finally:
        loader.dispose()
    located = Located(None)
    located._lines = _LINE_BREAK.split(text)
    if node is not None:
        budget = _Budget(max_values)
        try:
            located.value = _build(loader, node, (), located, 0, budget)
            located._lines = []  # the blocks are placed: no copy of the text kept
        except _TooMany as exc:
            if exc.aliased:
                message = (
                    f"too many values: aliases ('*name') and merge keys ('<<') expand this "
                    f"file to more than {max_values:,} values; write the values out instead "
                    "of repeating aliases of aliases"
                )
            else:  # a rule file holds hundreds; checking each costs memory, and more for errors
                message = (
                    f"too many values: the file holds more than {max_values:,} values (texts, "
                    "numbers, lists and mappings); split it into several files"
                )
            raise YAMLSyntaxError(message, exc.line, exc.column) from None
        except RecursionError:
            raise YAMLSyntaxError(
                f"nested too deeply (at most {_MAX_DEPTH} levels)", 1, 1
            ) from None
    return located


_SAFE_NESTING = 400  # far below where a recursive composer (libyaml's, in C) runs out of stack
_LINE_START = re.compile(r"^[ \t?:-]*", re.MULTILINE)
_BRACKETS = re.compile(r"[\[\]{}]")


def _check_nesting(text: str) -> None:
    """Refuse documents nested deeper than :data:`_SAFE_NESTING` before composing them.

    PyYAML composes recursively; with libyaml, in C, where ``[[[[...`` a few hundred KiB
    long overflows the stack and kills the process. A cheap upper bound on the nesting
    (indentation plus compact ``- - -`` markers of any line, plus flow brackets) clears
    ordinary files; only when it is too high are the parser's events counted, which takes
    no recursion.
    """
    opens = text.count("[") + text.count("{")
    widest = max((len(m.group()) for m in _LINE_START.finditer(text)), default=0)
    if opens + widest <= _SAFE_NESTING:
        return
    depth = 0
    deepest = 0
    for bracket in _BRACKETS.findall(text):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    if deepest + widest <= _SAFE_NESTING:
        return
    loader = _Loader(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _SAFE_NESTING:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                    raise YAMLSyntaxError(
                        f"nested too deeply (more than {_SAFE_NESTING} levels of lists and "
                        "mappings)",
                        line,
                        column,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" not in str(exc.problem):
            return  # a syntax error: composing reports it, with its position
        # libyaml's own bound (newer releases): the same finding, in the same words as ours.
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YAMLSyntaxError(
            f"nested too deeply (more than {_SAFE_NESTING} levels of lists and mappings)",
            line,
            column,
        ) from None
    except yaml.YAMLError:
        return  # a syntax error: composing reports it, with its position
    finally:
        loader.dispose()


class _Budget:
    """Values left to build, and the expanded size of each mapping with merge keys."""

    __slots__ = ("active", "computing", "left", "seen", "sizes")

    def __init__(self, values: int) -> None:
        self.left = values
        self.sizes: dict[int, int] = {}
        self.seen: set[int] = set()
        self.active: set[int] = set()  # collections being built: an alias to one recurses
        self.computing: set[int] = set()

    def spend(self, node: yaml.Node, count: int = 1, at: tuple[int, int] | None = None) -> None:
        """``at``: where the alias being expanded is used; None for values written out."""
        self.left -= count
        if self.left < 0:
            line, column = at or (node.start_mark.line + 1, node.start_mark.column + 1)
            raise _TooMany(line, column, aliased=at is not None)

    def merged_size(self, node: yaml.MappingNode, depth: int = 0) -> int:
        """Entries of ``node`` once its merge keys are flattened (without flattening)."""
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in self.computing:
            self.computing.clear()
            raise _Cycle
        if depth > _MAX_DEPTH:
            raise _TooMany(node.start_mark.line + 1, node.start_mark.column + 1)
        self.computing.add(id(node))
        total = 0
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                subs = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for sub in subs:
                    if isinstance(sub, yaml.MappingNode):
                        total += self.merged_size(sub, depth + 1)
            else:
                total += 1
        self.computing.discard(id(node))
        self.sizes[id(node)] = total
        return total


def _explain(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, Any]:
    """PyYAML's message for a syntax error, in a rule author's words where we know them, and
    the mark to report it at: the offending text, not where the parser gave up (for a key
    without ':' or a quote never closed, the next line or the end of the file)."""
    problem = exc.problem or ""
    context = exc.context or ""
    at = exc.problem_mark or exc.context_mark
    opened = exc.context_mark.line + 1 if exc.context_mark else None
    char = _text_at(text, at)[:1] if at is not None else ""
    line = _text_at(text, _mark(at.line, 0)) if at is not None else ""
    # A byte order mark past the start (files joined?), where the parser stopped or before
    # it, and not in quoted text (where it is a character like any other: pasted text).
    bom = line.find("\ufeff")
    if at is not None and 0 <= bom <= at.column and "'" not in line[:bom] and '"' not in line[:bom]:
        return (
            "an invisible byte order mark (U+FEFF) is here (were two files joined?): delete it",
            _mark(at.line, bom),
        )
    if "tab" in problem or ("cannot start any token" in problem and char == "\t"):
        return "a tab is used for indentation: indent with spaces only", at
    if "expected ',' or ']'" in problem:
        return f"the list opened with '[' on line {opened} is not closed with ']'", at
    if "expected ',' or '}'" in problem:
        return f"the mapping opened with '{{' on line {opened} is not closed with '}}'", at
    if "end of stream" in problem and "quoted scalar" in context:
        return "this quoted text has no closing quote (it runs to the end of the file)", (
            exc.context_mark or at
        )
    if "could not find expected ':'" in problem and exc.context_mark is not None:
        return _no_colon(_text_at(text, exc.context_mark).strip()), exc.context_mark
    if "expected '-' indicator" in problem or "expected <block end>" in problem:
        return (
            "this line is not indented like the lines before it "
            "(indent keys of the same mapping by the same number of spaces)"
        ), at
    if "mapping values are not allowed" in problem:
        key = _key_without_colon(text, at) if at is not None else None
        if key is not None:  # a key lost its ':', and the line under it is indented more
            return _no_colon(key[0]), key[1]
        return (
            "unexpected ':' (put text that contains ': ' in quotes, or check the indentation)",
            at,
        )
    if "expected a single document" in f"{context} {problem}":
        return "more than one YAML document ('---'): a rule file holds exactly one", at
    if "undefined alias" in problem:
        return "an alias ('*name') refers to an anchor ('&name') that is not defined", at
    if "expected <document start>" in problem:
        return "unexpected text after the end of the file's content (check the indentation)", at
    if "cannot start any token" in problem and char:
        return (
            f"'{char}' cannot start a value (YAML reserves it): put the text in quotes",
            at,
        )
    if "unknown escape character" in problem and at is not None:
        escape = _text_at(text, at)[:2]
        return (
            f"'{escape}' is not an escape in text in double quotes: write '\\\\' for a "
            "backslash, or use single quotes, in which '\\' is an ordinary character",
            at,
        )
    if "duplicate anchor" in context and exc.context_mark is not None:
        # Both marks are where the node starts: a tag may come before its anchor.
        first = _ANCHOR.search(_text_at(text, exc.context_mark))
        anchor = _shown(first.group() if first else "&")
        again = _ANCHOR.search(_text_at(text, at)) if at is not None else None
        return (
            f"the anchor '{anchor}' is defined twice (first on line {opened}): "
            "give each anchor its own name",
            _mark(at.line, at.column + again.start()) if at is not None and again else at,
        )
    if "did not find expected key" in problem:
        return (
            "unexpected text after a value: a value that starts with a quote or a bracket "
            "ends where it closes (put the whole value in quotes), or check the indentation",
            at,
        )
    if "expected node content" in problem:
        if at is not None and not _text_after(text, at).strip():
            return (
                "the file ends inside a list ('[') or a mapping ('{') that is not closed: "
                "was it saved half-way?",
                at,
            )
        return "a value is missing here (two commas in a row, or a comma first?)", at
    if "alphabetic or numeric character" in problem and "anchor" in context:
        return (
            "'&' starts an anchor and is followed by its name ('&name'): put text that "
            "starts with '&' in quotes",
            exc.context_mark or at,
        )
    if "alphabetic or numeric character" in problem and "alias" in context:
        return (
            "'*' starts an alias and is followed by an anchor's name ('*name'): put text that "
            "starts with '*' in quotes",
            exc.context_mark or at,
        )
    if "block sequence entries are not allowed" in problem:
        return (
            "a list item ('- ') cannot start on the line of its key: "
            "begin the list on the next line, indented",
            at,
        )
    return " ".join(filter(None, [context, problem])) or "invalid YAML", at


_ANCHOR = re.compile(r"&[^\s,\[\]{}]*")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # YAML's, as its marks count lines


def _text_at(text: str, mark: Any) -> str:
    """The rest of the line from ``mark`` (1-based positions from 0-based marks)."""
    lines = _LINE_BREAK.split(text, mark.line + 1)
    return lines[mark.line][mark.column :] if mark.line < len(lines) else ""


def _mark(line: int, column: int) -> Any:
    """A place (0-based, as PyYAML's marks) to report a problem at."""
    return yaml.Mark("<text>", 0, line, column, None, 0)


def _text_after(text: str, mark: Any) -> str:
    """Everything from ``mark`` to the end of the text."""
    lines = _LINE_BREAK.split(text, mark.line)
    return lines[mark.line][mark.column :] if mark.line < len(lines) else ""


def _no_colon(written: str) -> str:
    return (
        f"expected ':' after '{_shown(written)}' (write `key: value`; text that goes on to "
        "the next line is indented further than its key)"
    )


def _key_without_colon(text: str, at: Any) -> tuple[str, Any] | None:
    """Where a ``:`` is not allowed because the key above lost its own: the line before
    (blank and comment lines aside) is less indented, and is a plain word or words without
    a ``:``; YAML then reads it and the ``key`` under it as one text. Its words and place,
    or None."""
    lines = _LINE_BREAK.split(text, at.line + 1)
    if at.line >= len(lines):
        return None
    current = lines[at.line]
    indent = len(current) - len(current.lstrip(" "))
    for number in range(at.line - 1, max(at.line - 64, -1), -1):
        above = lines[number]
        words = above.strip()
        if not words or words.startswith("#"):
            continue
        start = len(above) - len(above.lstrip(" "))
        if start < indent and ":" not in words and not words.startswith(_NOT_A_KEY):
            return words, _mark(number, start)
        return None
    return None


_NOT_A_KEY = tuple("-[]{}\"'|>&*!%@`#")


def _shown(value: str | re.Match[str]) -> str:
    written = value.group() if isinstance(value, re.Match) else value
    return written if len(written) <= 40 else written[:37] + "..."


def _reader_error(exc: yaml.YAMLError, text: str) -> YAMLSyntaxError:
    """A character YAML does not allow, at its place. libyaml counts the position in
    bytes of UTF-8; pure PyYAML in characters."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if position is None or not isinstance(character, int):
        return YAMLSyntaxError(f"YAML error: {getattr(exc, 'reason', None) or exc}", 1, 1)
    if _Base is not yaml.SafeLoader:
        encoded = text.encode("utf-8", "surrogatepass")[:position]
        position = len(encoded.decode("utf-8", "replace"))
    message = f"YAML error: the character U+{character:04X} is not allowed (YAML text holds "
    message += "no control characters)"
    if character == 0:
        message += ": a file saved as UTF-16 has one after every ASCII letter; "
        message += "save it with UTF-8 encoding"
    return YAMLSyntaxError(message, *_line_col(text, position))


def _block_origin(lines: list[str], indicator: int, value: str) -> tuple[int, int] | None:
    """A literal block's ``|`` line (0-based) and its indentation, found from its first
    line with text: the file's line there is the indentation, then the value's line. None
    when the file does not read so (an empty block; an indicator not alone on its line)."""
    text = value.lstrip("\n")
    first = indicator + 1 + len(value) - len(text)
    if not text or first >= len(lines):
        return None
    written = lines[first]
    wanted = text.split("\n", 1)[0]
    indent = len(written) - len(wanted)
    if indent < 0 or written[indent:] != wanted or written[:indent].strip(" "):
        return None
    return indicator, indent


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset``, lines broken as YAML breaks them (a lone
    CR, NEL and the Unicode separators too)."""
    line, start = 1, 0
    for found in _LINE_BREAK.finditer(text, 0, offset):
        line, start = line + 1, found.end()
    return line, offset - start + 1


def _build(
    loader: Any,
    node: yaml.Node,
    path: Path,
    out: Located,
    depth: int,
    budget: _Budget,
    alias_at: tuple[int, int] | None = None,
) -> Any:
    """``alias_at``: where the outermost alias being expanded is used (its container), the
    place to blame when the expansion is too large."""
    if alias_at is None and not isinstance(node, yaml.ScalarNode):
        if id(node) in budget.seen:
            alias_at = out.positions.get(path[:-1]) or (1, 1)
        else:
            budget.seen.add(id(node))
    budget.spend(node, 1, alias_at)  # written out or added by an alias, each value counts
    out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if depth > _MAX_DEPTH:
        message = f"nested too deeply (at most {_MAX_DEPTH} levels)"
        out.problems.append((path, *out.positions[path], message))
        return None
    if isinstance(node, yaml.ScalarNode):
        if node.style == "|" and alias_at is None:
            origin = _block_origin(out._lines, node.start_mark.line, node.value)
            if origin is not None:
                out.blocks[path] = origin
        return _scalar(loader, node, path, out)
    if id(node) in budget.active:  # `&a [*a]`: PyYAML builds such a node; we refuse it
        out.problems.append(
            (
                path,
                *out.positions[path],
                "an alias ('*name') stands for a list or mapping that contains it: "
                "a value cannot contain itself",
            )
        )
        return None
    if node.tag not in (_MAP_TAG, _SEQ_TAG):  # `!foo [x]`, `!!set {a}`: PyYAML's would differ
        out.problems.append((path, *out.positions[path], _unknown_tag(node.tag)))
    budget.active.add(id(node))
    try:
        return _collection(loader, node, path, out, depth, budget, alias_at)
    finally:
        budget.active.discard(id(node))


def _collection(
    loader: Any,
    node: yaml.Node,
    path: Path,
    out: Located,
    depth: int,
    budget: _Budget,
    alias_at: tuple[int, int] | None,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        own = {id(key_node) for key_node, _ in node.value}
        # Flattening copies merged entries into this mapping: count them before doing it.
        try:
            merged = budget.merged_size(node)
        except _Cycle:
            merged = -1
        if merged < 0:
            out.problems.append(
                (
                    path,
                    *out.positions[path],
                    "a merge key ('<<') merges a mapping that merges this one: "
                    "a mapping cannot contain itself",
                )
            )
            node.value = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
            merged = len(node.value)
        budget.spend(node, merged - len(node.value), alias_at)
        try:
            loader.flatten_mapping(node)  # resolve `<<: *anchor` merge keys: merged pairs first
        except yaml.constructor.ConstructorError as exc:
            mark = exc.problem_mark or node.start_mark
            out.problems.append(
                (
                    path,
                    mark.line + 1,
                    mark.column + 1,
                    "a merge key ('<<') takes a mapping ('*anchor') or a list of them",
                )
            )
            node.value = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        result: dict[str, Any] = {}
        first_seen: dict[str, tuple[int, bool]] = {}
        for key_node, value_node in node.value:
            key_pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                out.problems.append(
                    (path, *key_pos, "a key must be a plain word, not a list or mapping")
                )
                continue
            if key_node.tag not in _KEY_TAGS:  # a tag read from its text (`1`, `true`) is fine
                out.problems.append(((*path, key_node.value), *key_pos, _unknown_tag(key_node.tag)))
            key = str(key_node.value)
            written_here = id(key_node) in own
            if key in first_seen and first_seen[key][1] and written_here:
                out.problems.append(
                    (
                        (*path, key),
                        *key_pos,
                        f"'{key}' is given twice (first on line {first_seen[key][0]}); remove one",
                    )
                )
                continue
            # Otherwise a key written here overrides one merged in, as YAML says.
            first_seen[key] = (key_pos[0], written_here)
            child = (*path, key)
            out.key_positions[child] = key_pos
            result[key] = _build(loader, value_node, child, out, depth + 1, budget, alias_at)
        return result
    return [
        _build(loader, item, (*path, index), out, depth + 1, budget, alias_at)
        for index, item in enumerate(node.value)
    ]


def _scalar(loader: Any, node: yaml.Node, path: Path, out: Located) -> Any:
    """The scalar's value. One its tag cannot read is a problem at its place, worded by the
    tag, and stays the text as written: the problem says what is wrong, and the value does
    not turn into null for validation to report again as a second, unrelated mistake."""
    if node.tag == _STR_TAG:  # most values: skip PyYAML's constructor machinery
        return node.value
    shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    try:
        return loader.construct_object(node, deep=True)
    except _NotValue as exc:
        reason = str(exc)
    except yaml.constructor.ConstructorError as exc:
        reason = exc.problem or "cannot be read"
        if node.tag in _TAG_NAMES:
            reason = f"cannot be read ({reason})"
        else:
            out.problems.append((path, *out.positions[path], _unknown_tag(node.tag)))
            return node.value
    except (ValueError, TypeError, LookupError, AttributeError, OverflowError) as exc:
        reason = f"cannot be read ({type(exc).__name__}: {exc})"
    if node.tag == _TIMESTAMP_TAG and reason.startswith("is not a real date"):
        message = f"'{shown}' {reason}"  # written as a date, explicitly or not
    else:
        message = f"{_TAG_NAMES.get(node.tag, node.tag)} value '{shown}' {reason}"
    out.problems.append((path, *out.positions[path], message))
    return node.value

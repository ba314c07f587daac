"""Load YAML into plain Python values while remembering where each value came from.

PyYAML forgets source positions once it builds Python objects, and pydantic reports errors
by location (``("rules", 0, "title")``). This module builds the objects itself from PyYAML's
node tree and keeps a map from every location to its ``(line, column)``, 1-based, so that
every later error can name its place in the file.

Two deliberate departures from PyYAML's defaults, both because rule files are full of country
and language codes: only ``true``/``false`` are booleans (YAML 1.2), so ``NO`` (Norway) and
``no`` (Norwegian) stay strings; and mapping keys are always the text as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Located", "YAMLSyntaxError", "load"]

Path = tuple[str | int, ...]

_Base: type[yaml.SafeLoader]
try:  # the libyaml parser is much faster; fall back to pure Python when it is missing
    _Base = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


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
    problems: list[tuple[int, int, str]] = field(default_factory=list)

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


def load(text: str) -> Located:
    """Parse one YAML document from ``text``; raise :class:`YAMLSyntaxError` if it is not."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        if "expected a single document" in message:
            message = "more than one YAML document: a rule file holds exactly one"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YAMLSyntaxError(f"YAML syntax error: {message}", line, column) from None
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        position = getattr(exc, "position", None)
        line, column = _line_col(text, position) if position is not None else (1, 1)
        reason = getattr(exc, "reason", None) or str(exc)
        raise YAMLSyntaxError(f"YAML error: {reason}", line, column) from None
    finally:
        loader.dispose()
    located = Located(None)
    if node is not None:
        located.value = _build(loader, node, (), located, 0)
    return located


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _build(loader: Any, node: yaml.Node, path: Path, out: Located, depth: int) -> Any:
    out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if depth > _MAX_DEPTH:
        out.problems.append((*out.positions[path], "nested too deeply"))
        return None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merge keys
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                out.problems.append((*key_pos, "a key must be a plain word, not a list or map"))
                continue
            key = str(key_node.value)
            if key in first_seen:
                out.problems.append(
                    (*key_pos, f"duplicate key '{key}' (first given on line {first_seen[key]})")
                )
                continue
            first_seen[key] = key_pos[0]
            child = (*path, key)
            out.key_positions[child] = key_pos
            result[key] = _build(loader, value_node, child, out, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, index), out, depth + 1)
            for index, item in enumerate(node.value)
        ]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        out.problems.append((*out.positions[path], exc.problem or "cannot read this value"))
        return None

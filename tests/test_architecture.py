"""The layers stay layers (DESIGN.md section 9, docs/architecture.md): who may import whom,
and what the serving path loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "compliance"
RULES_SIDE = {"compliance.loader", "compliance.engine", "compliance.models", "compliance.yamlpos"}
LEAVES = ("compliance.contrib", "compliance.export", "compliance.cli", "compliance.demo")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every compliance module ``path`` imports (at any level, TYPE_CHECKING included)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("compliance")}


def _is_leaf(name: str) -> bool:
    return any(name == leaf or name.startswith(leaf + ".") for leaf in LEAVES)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path",
    [*_sources("html", "geo"), *(PACKAGE / name for name in ("core.py", "wsgi.py", "asgi.py"))],
    ids=lambda p: _module(p),
)
def test_the_serving_layers_import_nothing_about_rules(path: Path) -> None:
    assert not _imports(path) & RULES_SIDE


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: _module(p))
def test_leaves_are_imported_by_nothing_else(path: Path) -> None:
    module = _module(path)
    if _is_leaf(module) or module == "compliance.__main__":  # the entry point runs the CLI
        return
    imported = {name for name in _imports(path) if _is_leaf(name)}
    assert not imported, f"{module} imports {imported}"


@pytest.mark.parametrize("adapter", ["compliance.wsgi", "compliance.asgi", "compliance.core"])
def test_the_serving_path_does_not_load_the_rule_loader(adapter: str) -> None:
    code = (
        f"import sys, {adapter}; "
        "loaded = sorted(m for m in sys.modules if m in "
        f"{sorted(RULES_SIDE | {'yaml', 'pydantic'})!r}); print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

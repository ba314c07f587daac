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


@pytest.mark.parametrize("adapter", ["compliance.wsgi", "compliance.asgi"])
def test_importing_the_serving_path_compiles_no_tokenizer_pattern(adapter: str) -> None:
    # The placements' and the injector's watches compiled their patterns at import: about
    # 300 ms of the 500 ms that importing an adapter took here, in every worker process.
    # Each is made when first needed now.
    code = (
        f"import {adapter}; from compliance.html import tokenizer as t; "
        "print(t._boring.cache_info().currsize)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "0"


# Functions of configuration (rule files, templates, the placements' watches, locales a
# notice has, country codes), whose arguments no request chooses: a functools cache bounded
# by entries is bounded in bytes too. Everything keyed by what a request carries (addresses,
# forwarding headers, Accept-Language and its tags, Host, paths, response header values) is
# a compliance.cache.BoundedCache, bounded by entries and bytes.
CONFIGURATION_CACHES = {
    "compliance.demo._country_options": "pycountry's table, once",
    "compliance.demo._subdivision_codes": "pycountry's subdivision table, once",
    "compliance.export.cloudflare._template": "the packaged worker script, once",
    "compliance.export.plan._territories": "CLDR's territory list, once",
    "compliance.export.plan.known_scripts": "languages of the rules being exported",
    "compliance.export.plan._locale_table": "the locales of the rules being exported",
    "compliance.html.tokenizer._boring": "the watches the placements and rules make",
    "compliance.html.tokenizer._foreign_content": "the SVG names watches hold (a handful)",
    "compliance.html.tokenizer._foreign_roots": "the SVG names watches hold (a handful)",
    "compliance.html.tokenizer._foreign_skip": "the SVG names watches hold (a handful)",
    "compliance.loader._adapter": "rule model fields",
    "compliance.loader._default": "rule model fields",
    "compliance.loader._is_country": "country codes written in rule files",
    "compliance.loader._is_subdivision": "subdivision codes written in rule files",
    "compliance.locales.official_languages": "ISO country codes of decisions (about 250)",
    "compliance.render._lang": "the locales notices are written in",
    "compliance.render._placeholder_names": "notice templates",
}


def _functools_cached() -> set[str]:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = ast.unparse(target)
                if name.split(".")[-1] in ("lru_cache", "cache"):
                    found.add(f"{_module(path)}.{node.name}")
    return found


def test_request_keyed_caches_are_bounded_caches() -> None:
    """Only functions of configuration keep a functools cache; anything a request can key
    goes through the one bounded cache type (issue 12)."""
    assert _functools_cached() == set(CONFIGURATION_CACHES)

"""The public surface is compliance/__init__.py's __all__, and it cannot drift."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import compliance

PACKAGE = Path(compliance.__file__).parent


def test_all_names_exist() -> None:
    for name in compliance.__all__:
        assert hasattr(compliance, name), name


def test_all_is_sorted_and_unique() -> None:
    assert len(set(compliance.__all__)) == len(compliance.__all__)
    assert compliance.__all__ == sorted(compliance.__all__, key=lambda n: (not n.isupper(), n))


def test_every_public_import_is_exported() -> None:
    """Anything __init__ imports without a leading underscore is in __all__."""
    public = {
        name
        for name, value in vars(compliance).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "compliance").startswith("compliance")
    }
    assert public - {"UNKNOWN"} <= set(compliance.__all__)
    assert "UNKNOWN" in compliance.__all__


def test_exports_come_from_each_modules_all() -> None:
    """Every exported name is also public in the module that defines it."""
    for name in compliance.__all__:
        value = getattr(compliance, name)
        module_name = getattr(value, "__module__", None)
        if module_name is None or not module_name.startswith("compliance."):
            continue
        module = importlib.import_module(module_name)
        assert name in getattr(module, "__all__", [name]), f"{name} not in {module_name}.__all__"


def test_version_matches_pyproject_dynamic_source() -> None:
    about = (PACKAGE / "__about__.py").read_text(encoding="utf-8")
    match = re.search(r'__version__ = "([^"]+)"', about)
    assert match is not None
    assert compliance.__version__ == match.group(1)


def test_core_imports_no_web_framework() -> None:
    """The core package never imports a web framework (they are test extras only)."""
    frameworks = re.compile(
        r"^\s*(?:from|import)\s+(django|flask|starlette|fastapi|werkzeug|gunicorn)\b", re.M
    )
    for path in PACKAGE.glob("*.py"):
        assert not frameworks.search(path.read_text(encoding="utf-8")), path.name


def test_py_typed_marker() -> None:
    assert (PACKAGE / "py.typed").is_file()

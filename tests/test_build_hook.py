"""The install-time build hook: compiles the C accelerators, and never fails over them."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hatchling")
pytest.importorskip("setuptools")

from hatchling.bridge.app import Application

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "compliance"


def _hook_module() -> Any:
    spec = importlib.util.spec_from_file_location("hatch_build", REPO / "hatch_build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project(tmp_path: Path, *names: str) -> Path:
    """A project tree holding only the C sources ``names``."""
    (tmp_path / "compliance").mkdir()
    for name in names:
        shutil.copy(SOURCES / name, tmp_path / "compliance" / name)
    return tmp_path


def _run(root: Path, version: str = "standard") -> tuple[Any, dict[str, Any]]:
    hook_class = _hook_module().ExtensionsBuildHook
    hook = hook_class(str(root), {}, None, None, str(root / "dist"), "wheel", Application())
    build_data: dict[str, Any] = {"force_include": {}, "pure_python": True, "infer_tag": False}
    hook.initialize(version, build_data)
    return hook, build_data


def test_a_wheel_gets_the_compiled_scan(tmp_path: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    hook, build_data = _run(_project(tmp_path, "_cinject.c"))
    assert build_data["pure_python"] is False
    assert build_data["infer_tag"] is True
    [(built, target)] = build_data["force_include"].items()
    assert target.startswith("compliance/_cinject.")
    assert target.endswith((".so", ".pyd"))
    # The built module works: load it under its own name, apart from the installed one.
    spec = importlib.util.spec_from_file_location("compliance._cinject", built)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.skip_boring(b"<p>text</p><script>", 0, False, True) == 11
    hook.finalize("standard", build_data, str(tmp_path / "x.whl"))
    assert not Path(built).exists()  # the temporary build is cleaned up


def test_an_editable_install_puts_the_module_beside_its_source(tmp_path: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    root = _project(tmp_path, "_cinject.c")
    _, build_data = _run(root, "editable")
    assert build_data["force_include"] == {}
    assert [p.name.split(".")[0] for p in (root / "compliance").glob("_cinject.*.*")] == [
        "_cinject"
    ]


def test_a_failed_compile_is_a_warning_and_a_pure_python_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC", "/bin/false")  # a compiler that always fails
    monkeypatch.setenv("LDSHARED", "/bin/false")
    root = _project(tmp_path, "_cinject.c", "_cmmdb.c")
    _, build_data = _run(root)
    assert build_data == {"force_include": {}, "pure_python": True, "infer_tag": False}
    err = capsys.readouterr().err
    for name in ("compliance._cinject", "compliance._cmmdb"):
        assert f"optional C extension {name} not built" in err
    assert "the pure-Python code is used instead" in err


def test_building_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLIANCE_BUILD_EXTENSIONS", "0")
    _, build_data = _run(_project(tmp_path, "_cinject.c"))
    assert build_data == {"force_include": {}, "pure_python": True, "infer_tag": False}


def test_only_wheels_are_compiled(tmp_path: Path) -> None:
    hook_class = _hook_module().ExtensionsBuildHook
    root = _project(tmp_path, "_cinject.c")
    hook = hook_class(str(root), {}, None, None, str(root / "dist"), "sdist", Application())
    build_data: dict[str, Any] = {"force_include": {}}
    hook.initialize("standard", build_data)
    assert build_data == {"force_include": {}}


def test_the_hook_is_configured_and_shipped_in_the_sdist() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    hatch = config["tool"]["hatch"]["build"]["targets"]
    assert "custom" in hatch["wheel"]["hooks"]
    assert "hatch_build.py" in hatch["sdist"]["include"]
    assert any(r.startswith("setuptools") for r in config["build-system"]["requires"])

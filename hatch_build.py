"""Hatchling build hook: compile the optional C accelerators into the wheel.

Two small extension modules speed up the hot paths: ``compliance._cinject`` (the injector's
body scan) and ``compliance._cmmdb`` (country/subdivision lookups through the system
``libmaxminddb``). Both have pure-Python equivalents, so a failed compile never fails the
install: the hook prints a warning and the package works, more slowly, without them. The
usual reasons are no C compiler, no Python headers, or (for ``_cmmdb`` only) no
``libmaxminddb`` development files (Debian/Ubuntu: ``libmaxminddb-dev``; macOS:
``brew install libmaxminddb``).

Set ``COMPLIANCE_BUILD_EXTENSIONS=0`` to build a pure-Python wheel on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# Module name -> (sources, libraries to link).
EXTENSIONS: dict[str, tuple[list[str], list[str]]] = {
    "compliance._cinject": (["compliance/_cinject.c"], []),
    "compliance._cmmdb": (["compliance/_cmmdb.c"], ["maxminddb"]),
}


class ExtensionsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("COMPLIANCE_BUILD_EXTENSIONS", "1").strip() in ("0", "false", "no"):
            self.app.display_info("compliance: COMPLIANCE_BUILD_EXTENSIONS=0, pure Python")
            return
        root = Path(self.root)
        out = self._out = Path(tempfile.mkdtemp(prefix="compliance-ext-"))
        built: list[Path] = []
        for name, (sources, libraries) in EXTENSIONS.items():
            if not all((root / source).is_file() for source in sources):
                continue
            try:
                built.append(_compile(root, out, name, sources, libraries))
            except Exception as exc:  # compiler missing, headers missing, link error, ...
                self.app.display_warning(
                    f"compliance: optional C extension {name} not built ({exc}); "
                    "the pure-Python code is used instead"
                )
        if not built:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for path in built:
            if version == "editable":
                # An editable install imports the source tree: put the module beside its
                # sources (ignored by git), replacing any stale build.
                shutil.copyfile(path, root / "compliance" / path.name)
            else:
                build_data["force_include"][str(path)] = f"compliance/{path.name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        # The wheel is written: the compiled files it took are no longer needed.
        out = getattr(self, "_out", None)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)


def _pkg_config(option: str, package: str, prefix: str) -> list[str]:
    """Directories ``pkg-config`` names for ``package``; none when it or the package is absent."""
    try:
        result = subprocess.run(
            ["pkg-config", option, package], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if result.returncode != 0:
        return []
    return [word[len(prefix) :] for word in result.stdout.split() if word.startswith(prefix)]


def _compile(root: Path, out: Path, name: str, sources: list[str], libraries: list[str]) -> Path:
    """Compile one extension with setuptools' compiler driver; return the built file."""
    from setuptools import Distribution, Extension

    include_dirs: list[str] = []
    library_dirs: list[str] = []
    for library in libraries:
        # Homebrew and other prefixes are not on the compiler's default paths.
        include_dirs += _pkg_config("--cflags-only-I", f"lib{library}", "-I")
        library_dirs += _pkg_config("--libs-only-L", f"lib{library}", "-L")
    extension = Extension(
        name,
        sources=sources,
        libraries=libraries,
        include_dirs=include_dirs,
        library_dirs=library_dirs,
        runtime_library_dirs=[d for d in library_dirs if os.name == "posix"],
    )
    dist = Distribution({"name": "compliance", "ext_modules": [extension]})
    dist.script_args = []
    command: Any = dist.get_command_obj("build_ext")
    command.build_lib = str(out)
    command.build_temp = str(out / "temp")
    command.inplace = False
    cwd = os.getcwd()
    os.chdir(root)  # setuptools wants source paths relative to the project
    try:
        command.ensure_finalized()
        command.run()
    finally:
        os.chdir(cwd)
    path = Path(command.get_ext_fullpath(name))
    if not path.is_absolute():
        path = out / path
    if not path.is_file():
        raise RuntimeError(f"{path} was not produced")
    return path

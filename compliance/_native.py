"""Loading the optional C accelerators.

``compliance._cinject`` and ``compliance._cmmdb`` are compiled at install time when a C
compiler (and, for ``_cmmdb``, the ``libmaxminddb`` library) is there; every caller has a
pure-Python path with the same results. Set ``COMPLIANCE_NO_EXTENSIONS=1`` in the environment
to use the pure-Python code even when the modules are installed (to rule them out when
debugging; the test suite runs both ways).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

log = logging.getLogger("compliance")

# Module name -> what it accelerates, as reported by ``compliance --version``.
ACCELERATORS = {
    "compliance._cinject": "HTML scan",
    "compliance._cmmdb": "MaxMind lookups (libmaxminddb)",
}


def disabled() -> bool:
    """Whether ``COMPLIANCE_NO_EXTENSIONS`` asks for the pure-Python code."""
    value = os.environ.get("COMPLIANCE_NO_EXTENSIONS", "").strip().lower()
    return value not in ("", "0", "false", "no")


def load(name: str) -> ModuleType | None:
    """The extension module ``name``, or None when it is not installed or is disabled."""
    if disabled():
        return None
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        # Not built (no compiler or library at install time), or its shared library is
        # gone: the pure-Python code does the same work.
        log.debug("%s not available, using pure Python: %s", name, exc)
        return None


def available() -> dict[str, bool]:
    """Which accelerators are in use in this process, by module name."""
    return {name: load(name) is not None for name in ACCELERATORS}


@contextmanager
def without(module: ModuleType, attribute: str) -> Iterator[None]:
    """Within the block, ``module.attribute`` (a loaded accelerator) is None: its callers take
    their pure-Python path. For tests and benchmarks that time or compare both paths."""
    saved = getattr(module, attribute)
    setattr(module, attribute, None)
    try:
        yield
    finally:
        setattr(module, attribute, saved)

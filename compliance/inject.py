"""Streaming insertion of notice snippets into HTML bytes (see :mod:`compliance.html`).

This module keeps the import path ``compliance.inject`` working; the code lives in the
:mod:`compliance.html` package.
"""

from compliance.html.injector import Injector, PageInfo
from compliance.html.placements import MARKER, Placement

__all__ = ["MARKER", "Injector", "PageInfo", "Placement"]

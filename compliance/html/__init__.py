"""The HTML side: a resumable tokenizer, the placements, charset handling, the injector.

``compliance.html.tokenizer``
    reads bytes chunk by chunk and reports only the tokens its reader watches.
``compliance.html.placements``
    one registered strategy per placement (``body_start``, ``after_heading``, ``marker``,
    ``body_end``); the tokens to watch are derived from them.
``compliance.html.charset``
    WHATWG charset labels (through ``webencodings``), byte order marks, ``<meta>`` labels.
``compliance.html.injector``
    :class:`Injector`, which ties them together over a byte stream.
"""

from compliance.html.injector import Injector, PageInfo
from compliance.html.placements import MARKER, PLACEMENTS, Placement

__all__ = ["MARKER", "PLACEMENTS", "Injector", "PageInfo", "Placement"]

"""Former home of the response policy, kept so old imports keep working: everything now
lives in :mod:`compliance.core` (the sans-IO response core) and :mod:`compliance.http`."""

from compliance.core import Settings, log_fault
from compliance.http import (
    brotli_available,
    merge_vary,
    prefers_json,
    private_cache_control,
)

__all__ = [
    "Settings",
    "brotli_available",
    "log_fault",
    "merge_vary",
    "prefers_json",
    "private_cache_control",
]

"""Exceptions raised by compliance.

::

    ComplianceError
     ├── ConfigurationError        (user error: a bad argument or setting; also a ValueError)
     ├── RuleError                 (user error: rule files that do not load)
     └── ComplianceFault           (not the user's fault: something broke while serving)
          └── GeoDatabaseError     (a geolocation database is missing, unreadable or corrupt)

User errors are raised at start-up, when something is configured or loaded. Faults can
happen while serving; the middleware catches them, logs them and applies its fail mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ComplianceError",
    "ComplianceFault",
    "ConfigurationError",
    "GeoDatabaseError",
    "Problem",
    "RuleError",
]


class ComplianceError(Exception):
    """Root of every exception this library raises on purpose."""


class ConfigurationError(ComplianceError, ValueError):
    """An argument or setting is invalid (for example a malformed trusted-proxy range)."""


class ComplianceFault(ComplianceError):
    """Something failed at run time that the caller could not have prevented."""


class GeoDatabaseError(ComplianceFault):
    """A geolocation database is missing, unreadable or corrupt.

    ``path`` names the file so that the message alone tells an operator what to fix.
    ``reason`` (and so the message) never names a client: ``address`` holds the address whose
    lookup failed, if any, so that logs can be keyed and rate-limited by cause.
    """

    def __init__(self, path: str, reason: str, *, address: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.address = address
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a rule file, with its position (1-based line and column)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RuleError(ComplianceError):
    """Rule files failed to load. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in rule files:\n{lines}")

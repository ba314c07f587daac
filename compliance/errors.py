"""Exceptions raised by compliance.

::

    ComplianceError
     ├── ConfigurationError        (user error: a bad argument or setting; also a ValueError)
     ├── RuleError                 (user error: rule files that do not load)
     └── ComplianceFault           (not the user's fault: something broke while serving)
          ├── GeoDatabaseError     (a geolocation database is missing, unreadable or corrupt)
          └── VariableMissing      (a notice needs a value the site has not set)

User errors are raised at start-up, when something is configured or loaded. Faults can
happen while serving; the middleware catches them, logs them and applies its fail mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ComplianceError",
    "ComplianceFault",
    "ConfigurationError",
    "GeoDatabaseError",
    "Problem",
    "RuleError",
    "VariableMissing",
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


class VariableMissing(ComplianceFault):
    """A rule that applies needs a value the site has not set: a required variable
    (``null`` in the rule file, such as the registry name in the foreign-agent label) with
    no site-wide value in the locale being rendered. Its notice, block or placeholder is
    not rendered with a blank in place of the value: the middleware applies its fail mode.

    ``rule`` and ``variables`` name what is missing (never a client); ``cause`` keys the
    rate-limited log line.
    """

    def __init__(self, rule: str, variables: Iterable[str], locale: str | None = None) -> None:
        self.rule = rule
        self.variables: tuple[str, ...] = tuple(variables)
        self.locale = locale
        self.cause = f"{rule}:{','.join(self.variables)}"
        names = ", ".join(self.variables)
        noun = "variable" if len(self.variables) == 1 else "variables"
        where = f" in {locale!r}" if locale else ""
        example = ", ".join(f"{name!r}: ..." for name in self.variables)
        flags = " ".join(f"--set {name}=..." for name in self.variables)
        owner = f"rule {rule!r}" if rule else "a rule"
        super().__init__(
            f"{owner} cannot be rendered{where}: the required {noun} {names} "
            f"{'has' if len(self.variables) == 1 else 'have'} no value; the site must set "
            f"{'it' if len(self.variables) == 1 else 'them'}: variables={{{example}}} "
            f"(Engine, middleware settings) or {flags} (command line)"
        )


# Line breaks, other control characters and bidirectional controls: a problem printed with
# them (a value quoted from the rule file, a file name) would not be the one line that
# editors and CI read as FILE:LINE:COL (a second line could pass for a problem of its own, or
# for a CI workflow command), or would not read on screen in the order it was written.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def one_line(text: str) -> str:
    """``text`` with line breaks, control characters and bidirectional controls escaped.

    >>> print(one_line("'R\\nU' and 'DE\\u202e'"))
    'R\\nU' and 'DE\\u202e'
    """
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a rule file, with its position (1-based line and column). As a
    string it is one ``FILE:LINE:COL: message`` line, whatever the file name and the values
    the message quotes hold (see :func:`one_line`)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return one_line(f"{self.file}:{self.line}:{self.column}: {self.message}")


class RuleError(ComplianceError):
    """Rule files failed to load. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in rule files:\n{lines}")

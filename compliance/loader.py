"""Find, parse and check rule files; report every problem as ``FILE:LINE:COL: message``.

:func:`load_rules` is the one entry point. It reads every ``.yaml``/``.yml`` file under the
given paths, validates each against :mod:`compliance.models`, then checks what needs more than
one value or more than one file: ISO 3166 codes, regions, locales, placeholders, duplicate ids.
All problems are collected before anything is raised, so a rule author fixes them in one go.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import functools
import html
import inspect
import ipaddress
import os
import re
import stat
import string
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import pydantic

from . import yamlpos
from .__about__ import __version__
from .errors import ConfigurationError, Problem, RuleError, one_line
from .locales import locale_key, parse_language_tag, parse_locale
from .models import (
    FORMAT_VERSION,
    HTML_ATTRIBUTES,
    HTML_LINK_SCHEMES,
    HTML_TAGS,
    Block,
    Day,
    Expect,
    Notice,
    Reader,
    Region,
    Request,
    Rule,
    RuleFile,
    RuleTest,
    Texts,
    VariableValue,
    Withhold,
    value_for_locale,
)
from .watch import Signature, signature

__all__ = [
    "DEFAULT_PACKS",
    "MAX_FILE_BYTES",
    "MAX_YAML_VALUES",
    "Finding",
    "LoadedRule",
    "LoadedTest",
    "RuleSet",
    "bundled_packs",
    "bundled_rules_path",
    "find_rule_files",
    "lint",
    "load_rules",
    "pack_path",
    "parse_locale",
    "read_variables",
    "resolve_sources",
]

MAX_FILE_BYTES: Final = 1 << 20
"""Largest rule file read by default (1 MiB); ``load_rules(max_bytes=...)`` changes it."""

MAX_YAML_VALUES: Final = yamlpos.MAX_VALUES
"""Most values one rule file may hold once its aliases are expanded."""

DEFAULT_PACKS: Final = ("russia",)
"""The bundled packs loaded when neither paths nor packs are given."""

Loc = tuple[str | int, ...]
RULE_SUFFIXES = (".yaml", ".yml")
DATE_FORMATS = frozenset({"short", "medium", "long", "full"})
# Headers this library or the application manage; a rule setting them would corrupt
# responses. (Hop-by-hop and framing headers are refused by the model itself.)
RESERVED_HEADERS = frozenset(
    {"content-type", "content-encoding", "set-cookie", "vary", "link", "location"}
)
# Country codes that are not in ISO 3166-1 but that geolocation providers report.
EXTRA_COUNTRIES = frozenset({"XK"})

# Byte order marks of the encodings an editor may save in instead of UTF-8 (UTF-32's first,
# as UTF-32LE's begins with UTF-16LE's).
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SUBDIVISION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
_REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class LoadedRule:
    """A validated rule and where it was written."""

    rule: Rule
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class LoadedTest:
    """A rule test, the rule it belongs to (``None`` for file-level tests) and its place."""

    test: RuleTest
    rule_id: str | None
    file: str
    line: int
    column: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class RuleSet:
    """Everything loaded from a set of rule files, checked and ready to compile."""

    files: tuple[str, ...]
    rules: tuple[LoadedRule, ...]
    regions: dict[str, Region]
    tests: tuple[LoadedTest, ...]
    packs: tuple[str, ...] = ()
    """Names of the bundled packs loaded."""
    signatures: Mapping[str, Signature | None] = dataclasses.field(default_factory=dict)
    """Each file's signature (:func:`compliance.watch.signature`) taken before it was read:
    a watcher started later compares them with its own, so that a file saved in between is
    read again (see ``Engine.watch``)."""

    def __len__(self) -> int:
        return len(self.rules)


@dataclass(frozen=True, order=True)
class Finding(Problem):
    """A problem found by :func:`lint`: an ``error`` (the rules do not load, or break a
    ``--strict`` requirement), a ``warning`` (they load, but need attention) or a ``note``
    (for the site, never a failure: a required variable it has not set)."""

    severity: Literal["error", "warning", "note"] = "error"

    def __str__(self) -> str:
        kind = f"{self.severity}: " if self.severity != "error" else ""
        return one_line(f"{self.file}:{self.line}:{self.column}: {kind}{self.message}")


def bundled_rules_path() -> Path:
    """The rule pack shipped with the package (the repository's ``rules/``)."""
    packaged = resources.files("compliance").joinpath("_bundled_rules")
    if packaged.is_dir():
        return Path(str(packaged))
    # Running from a source checkout (including editable installs): use the repo's rules/.
    source = Path(__file__).resolve().parent.parent / "rules"
    if source.is_dir():
        return source
    raise ConfigurationError("the bundled rule pack is missing from this installation")


def bundled_packs() -> tuple[str, ...]:
    """Names of the rule packs bundled with the package (``rules/<name>.yaml``).

    >>> "russia" in bundled_packs()
    True
    """
    folder = bundled_rules_path()
    return tuple(
        sorted(
            p.stem
            for p in folder.iterdir()
            if p.suffix in RULE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
    )


def pack_path(name: str) -> Path:
    """The file of bundled pack ``name``; :class:`ConfigurationError` naming the packs
    there are when there is no such pack."""
    available = bundled_packs()
    if name in available:
        folder = bundled_rules_path()
        for suffix in RULE_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    message = f"no bundled rule pack named {name!r} (available: {', '.join(available)})"
    close = _suggest(name, list(available))
    if close:
        message += f"; did you mean {close!r}?"
    raise ConfigurationError(message)


def resolve_sources(
    paths: Iterable[str | os.PathLike[str]] | None, packs: Iterable[str] | None
) -> list[str | os.PathLike[str]]:
    """The files and folders to load: ``paths`` and the files of ``packs``; when neither is
    given, the default packs (:data:`DEFAULT_PACKS`)."""
    if paths is None and packs is None:
        packs = DEFAULT_PACKS
    sources: list[str | os.PathLike[str]] = list(paths or ())
    if any(os.fspath(path) == "" for path in sources):
        # Path("") is the working directory: `compliance lint "$RULES"` with RULES unset
        # would lint (and an engine load) whatever YAML is there, not the rules meant.
        raise ConfigurationError(
            "a rule path is empty (''): give a rule file or folder (an unset variable?)"
        )
    sources += [pack_path(name) for name in packs or ()]
    return sources


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _read_bounded(path: Path, max_bytes: int) -> bytes | str:
    """The file's bytes, or why it cannot be a rule file: only regular files are read (a
    FIFO would hang, ``/dev/zero`` never ends), and at most ``max_bytes`` of them."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return f"{_kind(st.st_mode)}, not a regular file: a rule file must be a regular file"
        if st.st_size > max_bytes:
            return (
                f"the file is {st.st_size:,} bytes; rule files may be at most "
                f"{max_bytes:,} bytes (split it, or raise the limit with max_bytes=)"
            )
        # O_NONBLOCK: if the file was swapped for a FIFO since the stat, opening it does
        # not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return (
                    f"{_kind(st.st_mode)}, not a regular file: a rule file must be a regular file"
                )
            chunks: list[bytes] = []
            size = 0
            while size <= max_bytes:
                chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if size > max_bytes:
        return f"the file grew past {max_bytes:,} bytes while being read"
    return b"".join(chunks)


def find_rule_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every rule file under ``paths``: files as given, directories searched recursively.

    Hidden files and directories (names starting with ``.``) are skipped; symbolic links are
    followed, to files and to directories alike, and a file or directory reached twice (named,
    and inside a directory named; or through a link, a loop of links included) is read once.
    A path that exists but is not a regular file (a FIFO, a device, a link that leads nowhere
    or back to itself) is listed, for the loader to report.
    """
    found: list[Path] = []
    walked: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
                if not _first_visit(dirpath, walked):
                    dirnames[:] = []
                    continue
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found.extend(
                    Path(dirpath, name)
                    for name in sorted(filenames)
                    if name.endswith(RULE_SUFFIXES) and not name.startswith(".")
                )
        elif path.is_file() or os.path.lexists(path):
            found.append(path)
        else:
            raise ConfigurationError(f"{path}: no such file or directory")
    seen: set[str] = set()
    unique: list[Path] = []
    for path in found:
        # realpath, not Path.resolve: it raises RuntimeError on a loop of links (3.11).
        resolved = os.path.realpath(path)
        if resolved not in seen:
            seen.add(resolved)
            unique.append(path)
    return unique


def _first_visit(directory: str, walked: set[tuple[int, int]]) -> bool:
    """Whether ``directory`` is walked for the first time (a link may lead back up)."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    key = (st.st_dev, st.st_ino)
    if key in walked:
        return False
    walked.add(key)
    return True


def load_rules(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    *,
    packs: Iterable[str] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_values: int = MAX_YAML_VALUES,
) -> RuleSet:
    """Load and check rule files and bundled packs; raise
    :class:`~compliance.errors.RuleError` listing all problems if any file is wrong.
    Neither ``paths`` nor ``packs``: the default bundled packs (``russia``).

    Loading is bounded: only regular files, at most ``max_bytes`` each, at most
    ``max_values`` values per file once YAML aliases are expanded.

    >>> ruleset = load_rules()
    >>> "ru-undesirable-organization" in {r.rule.id for r in ruleset.rules}
    True
    """
    checker, files = _check(paths, packs, max_bytes, max_values)
    if checker.problems:
        raise RuleError(sorted(set(checker.problems), key=_problem_order(files)))
    if isinstance(packs, str):
        packs = [packs]
    loaded = DEFAULT_PACKS if paths is None and packs is None else tuple(packs or ())
    return _ruleset(checker, files, loaded)


def _check(
    paths: Iterable[str | os.PathLike[str]] | None,
    packs: Iterable[str] | None,
    max_bytes: int,
    max_values: int,
) -> tuple[_Checker, list[Path]]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if isinstance(packs, str):
        packs = [packs]
    sources = resolve_sources(paths, packs)
    files = find_rule_files(sources)
    if not files:
        # Almost always a wrong path: an engine without rules would silently show nothing.
        where = ", ".join(str(p) for p in sources) or "(no paths given)"
        raise ConfigurationError(f"no rule files (*.yaml, *.yml) in {where}")
    checker = _Checker(max_bytes=max_bytes, max_values=max_values)
    checker.signatures = {str(path): signature(path) for path in files}  # before reading
    for path in files:
        checker.add_file(path)
    checker.check_references()
    return checker, files


def _ruleset(checker: _Checker, files: list[Path], packs: Iterable[str]) -> RuleSet:
    return RuleSet(
        files=tuple(str(f) for f in files),
        rules=tuple(checker.rules),
        regions={name: region for name, (region, _) in checker.regions.items()},
        tests=tuple(checker.tests),
        packs=tuple(dict.fromkeys(packs)),
        signatures=checker.signatures,
    )


def lint(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    *,
    packs: Iterable[str] | None = None,
    strict: bool = False,
    today: dt.date | None = None,
    variables: Mapping[str, object] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_values: int = MAX_YAML_VALUES,
) -> list[Finding]:
    """Every problem in the rule files, errors and warnings (``compliance lint``).

    Warnings: a ``review_by`` day that has passed; a rule whose ``exclude`` covers all of
    its ``jurisdictions``, which can never apply. With ``strict``, a rule or region
    without ``sources`` is an error, and so is every warning. Given the site's
    ``variables`` (``{}`` for none), a note for each required variable they leave unset:
    notes never fail, with ``strict`` either, since whether the site sets the variable is
    not a fact about the rule files. Raises :class:`~compliance.errors.ConfigurationError`
    for paths or packs that do not exist, and for ``variables`` no rule declares.
    """
    checker, files = _check(paths, packs, max_bytes, max_values)
    day = today or dt.datetime.now(dt.UTC).date()
    findings = [Finding(p.file, p.line, p.column, p.message) for p in set(checker.problems)]
    for file, where, message, kind in checker.notes:
        if kind == "review" and day <= checker.review_days[(file, where)]:
            continue
        if kind == "sources" and not strict:
            continue
        severity: Literal["error", "warning"] = (
            "error" if strict or kind == "sources" else "warning"
        )
        findings.append(Finding(file, where[0], where[1], message, severity))
    if variables is not None:
        findings += _unset_required(checker, variables)
    return sorted(set(findings), key=_problem_order(files))


def _unset_required(checker: _Checker, variables: Mapping[str, object]) -> list[Finding]:
    """Notes for the required variables that the site's ``variables`` leave unset."""
    unknown = sorted(set(variables) - checker.variable_names)
    if unknown:
        declared = ", ".join(sorted(checker.variable_names)) or "none"
        raise ConfigurationError(
            f"variables {', '.join(map(repr, unknown))} are not used by any rule "
            f"(rules use: {declared})"
        )
    notes = []
    for file, where, label, name in checker.required:
        value = variables.get(name)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            continue
        message = (
            f"{label}: required variable; the site must set it (variables={{{name!r}: ...}} "
            f"in Python, --set {name}=... on the command line)"
        )
        notes.append(Finding(file, where[0], where[1], message, "note"))
    return notes


def read_variables(ruleset: RuleSet, texts: Mapping[str, str]) -> dict[str, VariableValue]:
    """Site-wide variables given as text (``--set NAME=VALUE``), read as the rules declare
    them: a variable whose declared values are dates (``since: 2024-03-01``) is read as a
    date written YYYY-MM-DD, and one declared with dates and times as a date and time
    (``2024-03-01T12:00:00+00:00``), so that either is formatted for each locale as
    the rule's own value is. Any other variable (text, numbers, required ``null``, or
    declared differently by different rules) stays text, and so does a blank value (unset).

    >>> read_variables(load_rules(packs=["russia"]), {"more-info-url": "2024-02-20"})
    {'more-info-url': '2024-02-20'}

    Raises :class:`ConfigurationError` naming the variable when the text is not one."""
    kinds: dict[str, set[type]] = {}
    where: dict[str, LoadedRule] = {}
    for loaded in ruleset.rules:
        for message in (loaded.rule.notice, loaded.rule.block, loaded.rule.withhold):
            for name, value in (message.variables if message is not None else {}).items():
                values = value.values() if isinstance(value, dict) else [value]
                for item in values:
                    if item is not None:
                        kinds.setdefault(name, set()).add(type(item))
                        where.setdefault(name, loaded)
    out: dict[str, VariableValue] = {}
    for name, text in texts.items():
        kind = kinds.get(name, set())
        out[name] = text
        if not text.strip() or kind not in ({dt.date}, {dt.datetime}):
            continue
        loaded = where[name]
        try:
            if kind == {dt.date}:
                out[name] = pydantic.TypeAdapter(Day).validate_python(text)
            else:
                out[name] = dt.datetime.fromisoformat(text)
        except (pydantic.ValidationError, ValueError):
            what = "a date" if kind == {dt.date} else "a date and time"
            form = "YYYY-MM-DD" if kind == {dt.date} else "YYYY-MM-DDTHH:MM:SSZ"
            raise ConfigurationError(
                f"--set {name}={text!r}: variable {name!r} is {what} in the rules (rule "
                f"{loaded.rule.id!r}, {loaded.file}:{loaded.line}); write {form}"
            ) from None
    return out


def _problem_order(files: Sequence[Path]) -> Any:
    rank = {str(f): i for i, f in enumerate(files)}
    return lambda p: (rank.get(p.file, len(rank)), p.file, p.line, p.column, p.message, str(p))


@functools.lru_cache(maxsize=4096)
def _is_country(code: str) -> bool:
    import pycountry  # its import is slow: pay for it only when checking codes

    return code in EXTRA_COUNTRIES or pycountry.countries.get(alpha_2=code) is not None


@functools.lru_cache(maxsize=8192)
def _is_subdivision(code: str) -> bool:
    import pycountry

    return pycountry.subdivisions.get(code=code) is not None  # type: ignore[no-untyped-call]


# Codes ISO 3166-1 reserves, which people write for a country or a union (the EU's own
# documents write EL for Greece and UK for the United Kingdom); geolocation never reports them.
_RESERVED_COUNTRIES: Final = {
    "UK": "the United Kingdom is 'GB'",
    "EL": "Greece is 'GR'",
    "EU": "the European Union is not a country: define a region that includes its members",
    "EZ": "the eurozone is not a country: define a region that includes its members",
    "UN": "the United Nations is not a country",
}


def _not_a_country(code: str) -> str:
    """Why ``code`` is no country code, with the code meant when it can be told."""
    message = f"'{code}' is not an ISO 3166-1 country code"
    upper = code.upper()
    if upper in _RESERVED_COUNTRIES:
        return f"{message} ({_RESERVED_COUNTRIES[upper]})"
    if upper != code and _COUNTRY.match(upper) and _is_country(upper):
        return f"{message} (country codes are upper case: '{upper}')"
    if _COUNTRY.match(upper):
        import pycountry

        former = pycountry.historic_countries.get(alpha_2=upper)
        if former is not None:
            withdrawn = str(getattr(former, "withdrawal_date", ""))[:4]
            return (
                f"{message} (a former code, of {former.name}, withdrawn in {withdrawn}: use "
                "the codes of the countries there today)"
            )
    return message


def _not_a_subdivision(code: str) -> str:
    """Why ``code`` is no subdivision code; 'UK-ENG' is 'GB-ENG', 'ua-43' is 'UA-43'."""
    message = f"'{code}' is not an ISO 3166-2 code"
    country, _, rest = code.upper().partition("-")
    meant = {"UK": "GB", "EL": "GR"}.get(country, country) + "-" + rest
    if meant != code and _SUBDIVISION.match(meant) and _is_subdivision(meant):
        return f"{message} (write '{meant}')"
    return message


class _File:
    """One file being checked: reports problems at positions inside it."""

    def __init__(self, checker: _Checker, name: str, located: yamlpos.Located) -> None:
        self.checker = checker
        self.name = name
        self.located = located

    def at(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        return self.located.position(loc, key=key)

    def inside(self, loc: Loc, text: str, offset: int) -> tuple[int, int]:
        """Where character ``offset`` of the text at ``loc`` is written (its line within a
        literal block; the text's own place otherwise, or for a negative ``offset``)."""
        return self.located.inside(loc, text, offset)

    def report(
        self, loc: Loc, message: str, *, key: bool = False, where: tuple[int, int] | None = None
    ) -> None:
        """Report ``message`` about the value at ``loc``, prefixed with where it is."""
        label = _label(loc)
        text = f"{label}: {message}" if label else message
        self.checker.report(self.name, where or self.at(loc, key=key), text)


class Errors:
    """Locations (as pydantic gives them) of the validation errors in one file, indexed by
    every prefix: :meth:`under` is one lookup, so checking each part of a file with many
    mistakes stays linear in the file (a scan of every error per part was quadratic: minutes
    for a few thousand broken rules)."""

    __slots__ = ("_under",)

    def __init__(self, locs: Iterable[Loc] = ()) -> None:
        under: dict[Loc, set[str | int]] = {}
        for loc in locs:
            for n in range(len(loc)):
                under.setdefault(loc[:n], set()).add(loc[n])
        self._under = under

    def under(self, loc: Loc) -> Set[str | int]:
        """The keys of ``loc`` that have errors at or below them."""
        return self._under.get(loc, _NO_KEYS)


_NO_KEYS: Final[frozenset[str | int]] = frozenset()


class _Checker:
    """Collects rules, regions and problems across files."""

    def __init__(
        self, *, max_bytes: int = MAX_FILE_BYTES, max_values: int = MAX_YAML_VALUES
    ) -> None:
        self.max_bytes = max_bytes
        self.max_values = max_values
        self.problems: list[Problem] = []
        # For lint: (file, position, message, kind) of what only lint reports.
        self.notes: list[tuple[str, tuple[int, int], str, str]] = []
        self.review_days: dict[tuple[str, tuple[int, int]], dt.date] = {}
        # Rule variables: every name declared, and the required ones (file, where, label, name).
        self.variable_names: set[str] = set()
        self.required: list[tuple[str, tuple[int, int], str, str]] = []
        self._variable_uses: list[tuple[_File, Loc, str]] = []
        self.rules: list[LoadedRule] = []
        self.tests: list[LoadedTest] = []
        self.signatures: dict[str, Signature | None] = {}
        self.regions: dict[str, tuple[Region, str]] = {}
        self.rule_ids: dict[str, str] = {}
        # Every region name defined, even by a region with mistakes, and where.
        self._region_defs: dict[str, tuple[_File, Loc]] = {}
        # Checks that need every file loaded first.
        self._region_uses: list[tuple[_File, Loc, str]] = []
        self._rule_uses: list[tuple[_File, Loc, str]] = []
        self._region_refs: dict[str, list[str]] = {}
        self._compare_left = _MAX_COMPARED  # names left to compare for suggestions

    def report(self, file: str, where: tuple[int, int], message: str) -> None:
        self.problems.append(Problem(file, where[0], where[1], message))

    def add_file(self, path: Path) -> None:
        name = str(path)
        raw = _read_bounded(path, self.max_bytes)
        if isinstance(raw, str):
            self.report(name, (1, 1), raw)
            return
        encoding = next((name for bom, name in _WIDE_BOMS if raw.startswith(bom)), None)
        if encoding is not None:  # Notepad's "Unicode": every byte after the mark is noise
            self.report(
                name,
                (1, 1),
                f"the file is {encoding} text (it starts with a {encoding} byte order mark): "
                "save it with UTF-8 encoding",
            )
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            start = raw.rfind(b"\n", 0, exc.start) + 1
            line = raw.count(b"\n", 0, exc.start) + 1
            column = len(raw[start : exc.start].decode("utf-8", "replace")) + 1
            bad = raw[exc.start : exc.start + 1].hex().upper()
            self.report(
                name,
                (line, column),
                f"the file is not UTF-8 text (byte {bad} here): save it with UTF-8 encoding",
            )
            # Go on with the undecodable bytes replaced, to find the file's other problems.
            text = raw.decode("utf-8", "replace")
        try:
            located = yamlpos.load(text.removeprefix("\ufeff"), max_values=self.max_values)
        except yamlpos.YAMLSyntaxError as exc:
            self.report(name, (exc.line, exc.column), exc.message)
            return
        file = _File(self, name, located)
        for loc, line, column, message in located.problems:
            file.report(loc, message, where=(line, column))
        data = located.value
        if data is None:
            self.report(name, (1, 1), "the file is empty: a rule file starts with `version: 1`")
            return
        if not isinstance(data, dict):
            self.report(
                name,
                file.at(()),
                "expected `version: 1` and then `regions:` and `rules:` at the top level, "
                f"not {_describe(data)}",
            )
            return
        if not self._version_ok(file, data):
            return
        # A wrong or missing version is reported; check the rest as version 1 anyway.
        data = _paragraphs_as_written({**data, "version": FORMAT_VERSION}, located)
        try:
            model = RuleFile.model_validate(data)
        except pydantic.ValidationError as exc:
            errors = exc.errors()
            self._report_validation(file, errors)
            self._check_file(file, data, Errors(tuple(e["loc"]) for e in errors))
        else:
            self._check_file(file, model, Errors())

    def _version_ok(self, file: _File, data: dict[str, Any]) -> bool:
        """False when the file is for a newer format, whose other errors would be noise."""
        if "version" not in data:
            file.report((), "missing `version: 1` at the top of the file", where=file.at(()))
            return True
        version = data["version"]
        if isinstance(version, int) and not isinstance(version, bool):
            if version == FORMAT_VERSION:
                return True
            if version > FORMAT_VERSION:
                file.report(
                    ("version",),
                    f"format version {version} needs a newer compliance "
                    f"(this one, {__version__}, reads format version {FORMAT_VERSION}); "
                    "upgrade compliance",
                )
                return False
        file.report(("version",), f"must be {FORMAT_VERSION}, not {_describe(version)}")
        return True

    def _report_validation(self, file: _File, errors: Sequence[Any]) -> None:
        """Pydantic's errors, in a rule author's words, at their places in the file."""
        grouped: dict[tuple[Loc, bool, str], list[Any]] = {}
        misspelt: set[Loc] = set()
        # Values YAML could not read (`!!int abc`) are reported already, in their own words.
        unread = {loc for loc, *_ in file.located.problems}
        for error in errors:
            kind = error["type"]
            raw_loc = tuple(error["loc"])
            if unread and any(
                _data_loc(file.located, raw_loc[:n])[0] in unread for n in range(len(raw_loc) + 1)
            ):
                continue
            if kind == "missing":
                loc, _ = _data_loc(file.located, raw_loc[:-1])
                grouped.setdefault(((*loc, raw_loc[-1]), False, kind), []).append(error)
                continue
            loc, is_key = _data_loc(file.located, raw_loc)
            if kind == "extra_forbidden":
                grouped.setdefault((loc, True, kind), []).append(error)
                suggestion = _suggest(str(loc[-1]), _field_names(loc[:-1]))
                if suggestion:
                    misspelt.add((*loc[:-1], suggestion))
            else:
                # Union members (a variable is text, a number or a date) fail at one place.
                grouped.setdefault((loc, is_key, "value"), []).append(error)
        for (loc, is_key, kind), group in grouped.items():
            if kind == "missing":
                if loc not in misspelt:  # "unknown key 'titel' (did you mean 'title'?)" says it
                    file.report(loc[:-1], f"missing key '{loc[-1]}'")
            elif kind == "extra_forbidden":
                key = str(loc[-1])
                message = f"unknown key '{key}'"
                suggestion = _suggest(key, _field_names(loc[:-1]))
                if suggestion:
                    message += f" (did you mean '{suggestion}'?)"
                file.report(loc, message, key=True)
            elif (
                len(loc) >= 3
                and loc[-3] == "variables"
                and all(e.get("input", 0) is None for e in group)
            ):
                file.report(
                    loc,
                    "a per-locale value cannot be null; a required variable is null as a "
                    f"whole (`{loc[-2]}: null`), and the site sets its value",
                    key=is_key,
                )
            else:
                file.report(loc, _explain_group(group), key=is_key)

    # -- checks on what validated -----------------------------------------------------------
    #
    # A part that failed validation is still checked as far as it can be: its fields that
    # validated are, so that one mistake does not hide the others. ``_view`` gives those.

    def _check_file(self, file: _File, data: RuleFile | dict[str, Any], errors: Errors) -> None:
        top = _view(RuleFile, data, (), errors)
        if top is None:
            return
        fields, raw = top
        regions = _pick(fields, raw, "regions")
        if isinstance(regions, dict):
            for name, region in regions.items():
                self._check_region(file, ("regions", name), name, region, errors)
        rules = _pick(fields, raw, "rules")
        if isinstance(rules, list):
            for index, rule in enumerate(rules):
                self._check_rule(file, ("rules", index), rule, errors)
        tests = _pick(fields, raw, "tests")
        if isinstance(tests, list):
            for index, test in enumerate(tests):
                self._check_test(file, ("tests", index), test, errors, rule_id=None, in_rule=False)

    def _check_region(self, file: _File, loc: Loc, name: Any, region: Any, errors: Errors) -> None:
        if not (isinstance(name, str) and _REGION_NAME.match(name)):
            return  # reported by validation
        if name in self._region_defs:
            other, other_loc = self._region_defs[name]
            line = other.at(other_loc, key=True)[0]
            file.report(loc, f"region '{name}' is already defined in {other.name}:{line}", key=True)
            return
        self._region_defs[name] = (file, loc)
        if isinstance(region, Region):
            self.regions[name] = (region, file.name)
        view = _view(Region, region, loc, errors)
        if view is None:
            return
        fields, _ = view
        refs: list[str] = []
        for field in ("include", "exclude"):
            for i, code in enumerate(fields.get(field, ())):
                refs.append(code)
                self._code(file, (*loc, field, i), code, star=False)
        self._region_refs[name] = refs
        self._audit(file, loc, f"region '{name}'", fields)

    def _audit(self, file: _File, loc: Loc, what: str, fields: dict[str, Any]) -> None:
        """What only lint reports: sources missing (an error with --strict), and a
        ``review_by`` day (a warning once it has passed)."""
        if "sources" in fields and not fields["sources"]:
            where = file.at(loc, key=True)
            self.notes.append(
                (
                    file.name,
                    where,
                    f"{what} has no `sources`: list the public sources it rests on "
                    "(`sources: [{url: https://..., title: ..., published: YYYY-MM-DD}]`)",
                    "sources",
                )
            )
        review_by = fields.get("review_by")
        if isinstance(review_by, dt.date):
            where = file.at((*loc, "review_by"))
            self.review_days[(file.name, where)] = review_by
            self.notes.append(
                (
                    file.name,
                    where,
                    f"{what} was due for review by {review_by.isoformat()}: check it against "
                    "its sources, then move `review_by` forward",
                    "review",
                )
            )

    def _check_rule(self, file: _File, loc: Loc, rule: Any, errors: Errors) -> None:
        view = _view(Rule, rule, loc, errors)
        if view is None:
            return
        fields, raw = view
        rule_id = fields.get("id")
        if rule_id is not None:
            if rule_id in self.rule_ids:
                file.report(
                    (*loc, "id"), f"rule id '{rule_id}' is already used in {self.rule_ids[rule_id]}"
                )
            else:
                self.rule_ids[rule_id] = f"{file.name}:{file.at((*loc, 'id'))[0]}"
        for i, code in enumerate(fields.get("jurisdictions", ())):
            self._code(file, (*loc, "jurisdictions", i), code, star=True)
        for i, code in enumerate(fields.get("exclude", ())):
            self._code(file, (*loc, "exclude", i), code, star=False)
        effective = fields.get("effective")
        if effective is not None:
            start, until = effective.from_, effective.until
            if start is not None and until is not None and start >= until:
                file.report(
                    (*loc, "effective", "until"),
                    f"`until` ({until}) must be after `from` ({start})",
                )
        # Lists are read raw when one of their items failed validation, so that the other
        # items' problems are reported too, all at once.
        self._check_hosts(file, (*loc, "hosts"), _strings(_pick(fields, raw, "hosts")))
        for field in ("paths", "exclude_paths"):
            for i, pattern in _strings(_pick(fields, raw, field)):
                if not pattern.startswith("/"):
                    file.report(
                        (*loc, field, i), f"'{pattern}' must start with '/' (e.g. '/{pattern}')"
                    )
        # From the raw mapping when another header failed validation, so that every
        # problem is reported at once (a hop-by-hop name once hid a Set-Cookie).
        header_names: dict[str, str] = {}
        headers = _pick(fields, raw, "headers")
        for name in headers if isinstance(headers, dict) else ():
            if not isinstance(name, str):
                continue
            if name.lower() in RESERVED_HEADERS:
                file.report(
                    (*loc, "headers", name),
                    f"'{name}' is managed by the server and cannot be set by a rule",
                    key=True,
                )
            elif name.lower() in header_names:
                file.report(
                    (*loc, "headers", name),
                    f"'{name}' is the header '{header_names[name.lower()]}' again (header "
                    "names are case-insensitive): give it once",
                    key=True,
                )
            else:
                header_names[name.lower()] = name
        for action, model in (("notice", Notice), ("block", Block), ("withhold", Withhold)):
            self._check_message(file, (*loc, action), model, _pick(fields, raw, action), errors)
        withhold = _view(Withhold, _pick(fields, raw, "withhold"), (*loc, "withhold"), errors)
        if withhold is not None:
            embeds = _strings(_pick(withhold[0], withhold[1], "embeds"))
            self._check_hosts(file, (*loc, "withhold", "embeds"), embeds)
        self._audit(file, loc, f"rule '{rule_id}'" if rule_id else "the rule", fields)
        tests = _pick(fields, raw, "tests")
        if isinstance(tests, list):
            owner = rule_id if isinstance(rule_id, str) else None
            for i, test in enumerate(tests):
                self._check_test(
                    file, (*loc, "tests", i), test, errors, rule_id=owner, in_rule=True
                )
        if isinstance(rule, Rule):
            self.rules.append(LoadedRule(rule, file.name, *file.at(loc)))

    def _check_hosts(self, file: _File, loc: Loc, patterns: Iterable[tuple[int, str]]) -> None:
        for i, pattern in patterns:
            if "/" in pattern or ":" in pattern:
                file.report(
                    (*loc, i),
                    f"'{pattern}' must be a host name such as 'www.example.org' or "
                    "'*.example.org', not a URL",
                )
            elif pattern.startswith("."):
                # nginx's server_name and cookies read '.example.org' as the domain and its
                # subdomains; as a glob it matches no host at all.
                bare = pattern.lstrip(".")
                file.report(
                    (*loc, i),
                    f"'{pattern}' matches no host (no host name starts with a dot): for the "
                    f"domain and its subdomains write '{bare}' and '*.{bare}'",
                )
            elif ".." in pattern:
                # A host name has no empty label: the rule would silently never apply.
                single = re.sub(r"\.{2,}", ".", pattern)
                file.report(
                    (*loc, i),
                    f"'{pattern}' can never match a host name (no host name has two dots in "
                    f"a row): did you mean '{single}'?",
                )
            elif _NOT_IN_HOSTS.search(pattern) is not None:
                # No host name holds these, so the pattern could never match: the rule
                # would silently never apply.
                file.report(
                    (*loc, i),
                    f"'{pattern}' can never match a host name (no host holds spaces, commas "
                    "or quotes): list each host as its own item, e.g. "
                    "['www.example.org', '*.example.org']",
                )

    def _check_message(
        self, file: _File, loc: Loc, model: type[Texts], message: Any, errors: Errors
    ) -> None:
        view = _view(model, message, loc, errors)
        if view is None:
            return
        fields, _ = view
        field = "html" if fields.get("html") is not None else "text"
        texts: dict[str, str] = fields.get(field) or {}
        self._check_translations(file, loc, field, texts, fields)
        spelled: dict[str, str] = {}
        for locale, text in texts.items():
            if parse_locale(locale) is None:
                file.report(
                    (*loc, field, locale),
                    f"unknown locale '{locale}' (use a code such as 'en', 'ru', 'pt-BR')",
                    key=True,
                )
            elif locale_key(locale) in spelled:  # one of the two would never be shown
                file.report(
                    (*loc, field, locale),
                    _same_locale_twice(locale, spelled[locale_key(locale)], field),
                    key=True,
                )
            else:
                spelled[locale_key(locale)] = locale
            if isinstance(text, str) and not text.strip():
                file.report(
                    (*loc, field, locale),
                    f"the {field} is empty: write it, or leave the locale out",
                )
        default_loc = (*loc, "default_locale")
        default = fields.get("default_locale")
        if default is not None and texts:
            if parse_locale(default) is None:
                file.report(
                    default_loc,
                    f"unknown locale '{default}' (use a code such as 'en', 'ru', 'pt-BR')",
                )
            elif default not in texts:
                file.report(default_loc, _missing_locale(default, texts, field))
        variables = fields.get("variables")
        for name, value in (variables or {}).items():
            self.variable_names.add(name)
            if value is None:
                where = (*loc, "variables", name)
                self.required.append((file.name, file.at(where), _label(where), name))
            if isinstance(value, dict):
                keys: dict[str, str] = {}
                for key in value:
                    if parse_locale(key) is None:
                        file.report(
                            (*loc, "variables", name, key),
                            f"unknown locale '{key}' (use a code such as 'en', 'ru', 'pt-BR')",
                            key=True,
                        )
                    elif locale_key(key) in keys:
                        file.report(
                            (*loc, "variables", name, key),
                            _same_locale_twice(key, keys[locale_key(key)], "value"),
                            key=True,
                        )
                    else:
                        keys[locale_key(key)] = key
        for locale, text in texts.items():
            # Reported where the mistake is written, in a literal block (``|``) exactly.
            at = (*loc, field, locale)
            if variables is not None:  # unknown when `variables` itself has a mistake
                for offset, problem in _placeholder_problems(text, variables, locale):
                    file.report(at, problem, where=file.inside(at, text, offset))
            if field == "html":
                for offset, problem in _html_problems(text, variables or {}, locale):
                    file.report(at, problem, where=file.inside(at, text, offset))

    def _check_translations(
        self, file: _File, loc: Loc, field: str, texts: dict[str, str], fields: dict[str, Any]
    ) -> None:
        """``original`` names one of the texts; ``translations`` name the others."""
        original = fields.get("original")
        if original is not None and texts and original not in texts:
            message = _missing_locale(original, texts, field)
            if "is written" not in message:
                message = (
                    f"'{original}' has no {field}; `original` names the locale whose {field} "
                    f"is copied from a source (locales with a {field}: {', '.join(sorted(texts))})"
                )
            file.report((*loc, "original"), message)
        for locale in fields.get("translations") or {}:
            where = (*loc, "translations", locale)
            if locale == original:
                file.report(where, f"'{locale}' is the original, not a translation", key=True)
            elif locale not in texts:
                file.report(
                    where,
                    f"'{locale}' has no {field} to be a translation of "
                    f"(locales with a {field}: {', '.join(sorted(texts)) or 'none'})",
                    key=True,
                )
        if fields.get("translations") and original is None:
            file.report(
                (*loc, "translations"),
                "`translations` needs `original`: name the locale the translations are made from",
                key=True,
            )

    def _check_test(
        self,
        file: _File,
        loc: Loc,
        test: Any,
        errors: Errors,
        *,
        rule_id: str | None,
        in_rule: bool,
    ) -> None:
        """``rule_id`` is the id of the rule the test is written under, None for file tests."""
        view = _view(RuleTest, test, loc, errors)
        if view is None:
            return
        fields, raw = view
        reader_view = _view(Reader, _pick(fields, raw, "reader"), (*loc, "reader"), errors)
        if reader_view is not None:
            self._check_reader(file, (*loc, "reader"), reader_view[0])
        request_loc = (*loc, "request")
        request_view = _view(Request, _pick(fields, raw, "request"), request_loc, errors)
        if request_view is not None:
            page_language = request_view[0].get("page_language")
            if page_language is not None and parse_language_tag(page_language) is None:
                file.report(
                    (*request_loc, "page_language"),
                    f"unknown locale '{page_language}' (use a code such as 'en', 'ru', 'pt-BR')",
                )
            for name, value in (request_view[0].get("variables") or {}).items():
                self._variable_uses.append((file, (*request_loc, "variables", name), name))
                for key in value if isinstance(value, dict) else ():
                    if parse_locale(key) is None:
                        file.report(
                            (*request_loc, "variables", name, key),
                            f"unknown locale '{key}' (use a code such as 'en', 'ru', 'pt-BR')",
                            key=True,
                        )
        expect_loc = (*loc, "expect")
        written = _pick(fields, raw, "expect")
        if written == {} or (isinstance(written, Expect) and not written.model_fields_set):
            file.report(
                expect_loc,
                "checks nothing, so the test would pass whatever the rules do: give "
                + ("`applies`, " if in_rule else "")
                + "`notices`, `withholds`, `block` or `locale`",
            )
        expect_view = _view(Expect, written, expect_loc, errors)
        if expect_view is not None:
            expect = expect_view[0]
            if expect.get("applies") is not None and not in_rule:
                file.report(
                    (*expect_loc, "applies"), "`applies` is only for tests written under a rule"
                )
            for field in ("notices", "withholds"):
                for i, used in enumerate(expect.get(field) or []):
                    self._rule_uses.append((file, (*expect_loc, field, i), used))
            if expect.get("block") is not None:
                self._rule_uses.append((file, (*expect_loc, "block"), expect["block"]))
            locale = expect.get("locale")
            if locale is not None and parse_locale(locale) is None:
                file.report(
                    (*expect_loc, "locale"),
                    f"unknown locale '{locale}' (use a code such as 'en', 'ru', 'pt-BR')",
                )
        if isinstance(test, RuleTest):
            self.tests.append(LoadedTest(test, rule_id, file.name, *file.at(loc)))

    def _check_reader(self, file: _File, loc: Loc, reader: dict[str, Any]) -> None:
        ip = reader.get("ip")
        if ip is not None:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                file.report((*loc, "ip"), f"'{ip}' is not an IP address")
        country = reader.get("country")
        if country is not None and not (_COUNTRY.match(country) and _is_country(country)):
            file.report((*loc, "country"), _not_a_country(country))
        for i, code in enumerate(reader.get("subdivisions", ())):
            if not (_SUBDIVISION.match(code) and _is_subdivision(code)):
                file.report((*loc, "subdivisions", i), _not_a_subdivision(code))
            elif country and not code.startswith(country + "-"):
                file.report(
                    (*loc, "subdivisions", i), f"'{code}' is not a subdivision of {country}"
                )

    def _code(self, file: _File, loc: Loc, code: str, *, star: bool) -> None:
        """Check a jurisdiction code now, or once every file is read if it names a region."""
        if code == "*":
            if not star:
                file.report(loc, "'*' (every location) is only allowed in a rule's `jurisdictions`")
        elif _COUNTRY.match(code):
            if not _is_country(code):
                file.report(loc, _not_a_country(code))
        elif _SUBDIVISION.match(code):
            if not _is_subdivision(code):
                file.report(loc, _not_a_subdivision(code))
        elif _REGION_NAME.match(code):
            self._region_uses.append((file, loc, code))
        elif _COUNTRY.match(code.upper()):  # 'Ru'
            file.report(loc, _not_a_country(code))
        elif _SUBDIVISION.match(code.upper()):  # 'Ua-43'
            file.report(loc, _not_a_subdivision(code))
        else:
            file.report(
                loc,
                f"'{code}' is not a jurisdiction: use an ISO 3166-1 code ('RU'), an ISO 3166-2 "
                "code ('UA-43'), a region name or '*'",
            )

    def check_references(self) -> None:
        """Checks that need every file: region names, region cycles, rule ids in tests."""
        regions = list(self._region_defs)
        for file, loc, code in self._region_uses:
            if code in self._region_defs:
                continue
            message = f"unknown region '{code}'"
            upper = code.upper()
            if _COUNTRY.match(upper) and _is_country(upper):
                message += f" (country codes are upper case: '{upper}')"
            elif upper in _RESERVED_COUNTRIES:  # 'uk', 'el': the code meant
                message += f" (nor is '{upper}' a country code: {_RESERVED_COUNTRIES[upper]})"
            elif _SUBDIVISION.match(upper) and _is_subdivision(upper):
                message += f" (subdivision codes are upper case: '{upper}')"
            else:
                close = self._suggest(code, regions)
                if close:
                    message += f" (did you mean '{close}'?)"
            file.report(loc, message)
        for name in _region_cycles(self._region_refs):
            file, loc = self._region_defs[name]
            file.report(
                loc, f"region '{name}' includes itself, directly or through other regions", key=True
            )
        variables = sorted(self.variable_names)
        known = _listing(variables)
        for file, loc, name in self._variable_uses:
            if name not in self.variable_names:
                message = f"unknown variable '{name}': no rule declares it (variables: {known})"
                close = self._suggest(name, variables)
                if close:
                    message = f"unknown variable '{name}' (did you mean '{close}'?)"
                file.report(loc, message, key=True)
        for loaded in self.rules:
            never = self._never_applies(loaded.rule)
            if never is not None:
                self.notes.append((loaded.file, (loaded.line, loaded.column), never, "never"))
        rule_ids = list(self.rule_ids)
        for file, loc, rule_id in self._rule_uses:
            if rule_id not in self.rule_ids:
                message = f"unknown rule id '{rule_id}'"
                close = self._suggest(rule_id, rule_ids)
                if close:
                    message += f" (did you mean '{close}'?)"
                file.report(loc, message)

    def _never_applies(self, rule: Rule) -> str | None:
        """Why ``rule`` can apply to no reader, when its plain ``exclude`` codes cover every
        code its ``jurisdictions`` reach (through regions; their own excludes left out, so
        the rule is said never to apply only when it surely cannot): a warning, for lint."""
        if "*" in rule.jurisdictions or rule.unknown_location == "apply":
            return None
        excluded = {code for code in rule.exclude if code not in self.regions}
        if not excluded:
            return None
        reached: set[str] = set()
        pending = list(rule.jurisdictions)
        seen: set[str] = set()
        while pending:
            code = pending.pop()
            if code in seen:
                continue
            seen.add(code)
            found = self.regions.get(code)
            if found is None:
                reached.add(code)
            else:
                pending.extend(found[0].include)
        if not reached or not all(
            code in excluded or (code[2:3] == "-" and code[:2] in excluded) for code in reached
        ):
            return None
        return (
            f"rule '{rule.id}' can never apply: its exclude "
            f"({', '.join(sorted(excluded))}) covers every place its jurisdictions reach "
            f"({', '.join(sorted(reached))})"
        )

    def _suggest(self, word: str, choices: Sequence[str]) -> str | None:
        """:func:`_suggest`, while the names compared for suggestions stay within
        :data:`_MAX_COMPARED`; past it, unknown names are reported without one (each
        comparison costs a few microseconds: thousands of unknown names among thousands of
        known ones took minutes)."""
        if len(choices) > self._compare_left:
            self._compare_left = 0
            return None
        self._compare_left -= len(choices)
        return _suggest(word, choices)


_MAX_COMPARED: Final = 200_000
"""Most names compared, per load, to suggest one for an unknown region, rule id or
variable ("did you mean ...?")."""

_LISTED: Final = 20
"""Most names a problem lists (the variables a placeholder may use, say)."""


def _same_locale_twice(locale: str, first: str, what: str) -> str:
    return (
        f"'{locale}' is the locale '{first}' again (locale codes ignore case, and '_' is '-'): "
        f"give its {what} once"
    )


def _missing_locale(locale: str, texts: Mapping[str, str], field: str) -> str:
    """Why ``locale`` (a default or original) names none of ``texts``."""
    written = next((key for key in texts if locale_key(key) == locale_key(locale)), None)
    if written is not None:
        return f"'{locale}' is written '{written}' in `{field}`: spell it the same way in both"
    return f"'{locale}' has no {field}; locales with a {field}: {', '.join(sorted(texts))}"


def _listing(names: Iterable[str]) -> str:
    """``names`` sorted for a message, at most :data:`_LISTED` of them: a message listing
    every variable, once per unknown placeholder, made a 170 KB file's report 700 MB."""
    ordered = sorted(names)
    if len(ordered) > _LISTED:
        return ", ".join(ordered[:_LISTED]) + f", ... ({len(ordered) - _LISTED:,} more)"
    return ", ".join(ordered) or "none"


def _suggest(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1)
    return close[0] if close else None


_NOT_IN_HOSTS: Final = re.compile(r"[\s,;'\"<>@\\]")
"""Characters no host name (as matched: lower case, no port) holds."""


def _strings(value: Any) -> list[tuple[int, str]]:
    """The text items of a list with their indexes (raw data may hold anything)."""
    if not isinstance(value, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def _pick(fields: dict[str, Any], raw: dict[str, Any], name: str) -> Any:
    """A field's validated value, or its raw data if it did not validate."""
    return fields[name] if name in fields else raw.get(name)


def _view(
    model: type[pydantic.BaseModel], value: Any, loc: Loc, errors: Errors
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The fields of ``value`` that are valid (by field name), and its raw data by key.

    ``value`` is either a validated model (every field valid) or the raw data of one that
    failed validation; then only the fields without errors are given, validated, and missing
    optional fields take their defaults. None when ``value`` is not even a mapping.
    """
    if isinstance(value, pydantic.BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}, {}
    if not isinstance(value, dict):
        return None
    broken = errors.under(loc)
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in value:
            if key in broken:
                continue
            try:
                fields[name] = _adapter(model, name).validate_python(value[key])
            except pydantic.ValidationError:
                continue
        elif not info.is_required():
            fields[name] = _default(model, name)()
    return fields, value


@functools.cache
def _default(model: type[pydantic.BaseModel], name: str) -> Callable[[], Any]:
    """What makes a field's default: its factory, or a copy of its value. (pydantic's own
    ``get_default`` inspects the factory's signature at every call, a millisecond each, for
    every field missing from every broken part of a file.)"""
    info = model.model_fields[name]
    factory = info.default_factory
    if factory is not None:
        try:
            needed = [
                p
                for p in inspect.signature(factory).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):  # no signature to read: called with no argument
            needed = []
        if needed:  # a factory of the validated data: pydantic's way
            return lambda: info.get_default(call_default_factory=True)
        return factory  # type: ignore[return-value]
    value = info.default
    return lambda: copy.deepcopy(value)


@functools.cache
def _adapter(model: type[pydantic.BaseModel], name: str) -> pydantic.TypeAdapter[Any]:
    # The field passed validation as part of the model: its own constraints need no re-check.
    annotation: Any = model.model_fields[name].annotation
    return pydantic.TypeAdapter(annotation)


def _region_cycles(refs: dict[str, list[str]]) -> list[str]:
    """The regions that include themselves, directly or through others, in definition
    order: those in a strongly connected component of more than one region, or that name
    themselves. One pass (Tarjan's algorithm, without recursion): linear in the regions and
    their references, however long the chains."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    component: list[str] = []
    cyclic: set[str] = set()
    for root in refs:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        component.append(root)
        on_stack.add(root)
        work = [(root, iter(refs[root]))]
        while work:
            name, children = work[-1]
            for child in children:
                if child not in refs:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    component.append(child)
                    on_stack.add(child)
                    work.append((child, iter(refs[child])))
                    break
                if child in on_stack:
                    low[name] = min(low[name], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[name])
                if low[name] == index[name]:
                    members = []
                    while True:
                        member = component.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == name:
                            break
                    if len(members) > 1 or name in refs[name]:
                        cyclic.update(members)
    return [name for name in refs if name in cyclic]


# Possessive: "<" and a long run of spaces would otherwise be tried from every space.
_TAG = re.compile(r"<\s*+(?:/\s*+)?([A-Za-z][A-Za-z0-9-]*)")
# A start tag's attributes, up to its '>' (quoted values may hold '>'), and each attribute.
_START_TAG = re.compile(r"<\s*+([A-Za-z][A-Za-z0-9-]*+)((?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+)")
_ATTRIBUTE = re.compile(r"([^\s\"'>/=]++)(?:\s*+=\s*+(?:\"([^\"]*+)\"|'([^']*+)'|([^\s\"'>]++)))?")
# What a browser reads as a URL's scheme, once tabs and line breaks are out of it (WHATWG).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_URL_NOISE = re.compile(r"[\t\n\r]")
_UNKNOWN = "\x00"  # a placeholder whose value lint cannot know (the site sets it)
_CONTROL_OR_SPACE = "".join(map(chr, range(1, 0x21)))  # stripped from a URL (NUL: _UNKNOWN)
_KEPT_ATTRIBUTES = " and ".join(f"{a} on <{t}>" for t, n in HTML_ATTRIBUTES.items() for a in n)
_LINKS = (
    f"{', '.join(sorted(HTML_LINK_SCHEMES)[:-1])} or {sorted(HTML_LINK_SCHEMES)[-1]}, "
    "or a path on the site"
)
# Variable names are identifiers of the rule format ([a-z0-9][a-z0-9-]*) or Python's.
_PLACEHOLDER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*\Z")


def _field_end(text: str, start: int) -> int:
    """The end of the replacement field whose ``{`` is at ``start`` (its format spec may
    hold fields of its own) in a text ``string.Formatter`` parsed."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if not depth:
                return i + 1
    return len(text)


_FOLDED_BREAKS = re.compile(r"\n+(?=[^\n])")  # inside the text: a last one is YAML's own


def _paragraphs_as_written(data: dict[str, Any], located: yamlpos.Located) -> dict[str, Any]:
    """``data`` with a message's ``text`` written folded (``>``), plain or quoted given the
    blank lines it is written with: YAML reads each as one line break, which the text's
    paragraphs (split at blank lines) took for a space. (A literal block, ``|``, keeps its
    lines as they are.)"""
    rules = data.get("rules")
    if not located.folded or not isinstance(rules, list):
        return data
    kept = []
    for i, rule in enumerate(rules):
        if isinstance(rule, dict):
            for kind in ("notice", "block", "withhold"):
                message = rule.get(kind)
                texts = message.get("text") if isinstance(message, dict) else None
                if isinstance(message, dict) and isinstance(texts, dict):
                    texts = {
                        locale: _FOLDED_BREAKS.sub(r"\g<0>\n", text)
                        if isinstance(text, str)
                        and ("rules", i, kind, "text", locale) in located.folded
                        else text
                        for locale, text in texts.items()
                    }
                    rule = {**rule, kind: {**message, "text": texts}}
        kept.append(rule)
    return {**data, "rules": kept}


def _html_problems(
    text: str, variables: Mapping[str, Any], locale: str
) -> Iterator[tuple[int, str]]:
    """What rendering an ``html:`` text would drop, after the offset it is written at: a tag
    or an attribute the sanitizer does not keep, and a link whose scheme it does not (its
    ``href`` filled with the rule's own values, where it has them)."""
    first: dict[str, int] = {}
    for found in _TAG.finditer(text):
        first.setdefault(found.group(1).lower(), found.start())
    for tag in sorted(set(first) - HTML_TAGS):
        yield first[tag], f"<{tag}> is not allowed (allowed: {', '.join(sorted(HTML_TAGS))})"
    for tag_match in _START_TAG.finditer(text):
        tag = tag_match.group(1).lower()
        if tag not in HTML_TAGS:
            continue  # reported above
        kept = HTML_ATTRIBUTES.get(tag, frozenset())
        start = tag_match.start(2)
        for attribute in _ATTRIBUTE.finditer(tag_match.group(2)):
            name = attribute.group(1).lower()
            at = start + attribute.start()
            if name not in kept:
                yield (
                    at,
                    (
                        f"'{name}' on <{tag}> is not allowed (the only attribute kept is "
                        f"{_KEPT_ATTRIBUTES})"
                    ),
                )
            elif name == "href":
                written = next((v for v in attribute.groups()[1:] if v is not None), "")
                scheme = _link_scheme(_fill(written, variables, locale))
                if scheme is not None and scheme not in HTML_LINK_SCHEMES:
                    yield at, f"a link to '{scheme}:' is not allowed (links are {_LINKS})"


def _fill(written: str, variables: Mapping[str, Any], locale: str) -> str:
    """``written`` with its placeholders replaced by the rule's own text values in
    ``locale``; :data:`_UNKNOWN` for a value lint cannot know."""
    try:
        parsed = list(string.Formatter().parse(written))
    except ValueError:  # unbalanced braces: reported as such
        return _UNKNOWN
    out = []
    for literal, name, _, _ in parsed:
        out.append(literal)
        if name is not None:
            value = value_for_locale(variables.get(name), locale)
            out.append(value if isinstance(value, str) else _UNKNOWN)
    return "".join(out)


def _link_scheme(url: str) -> str | None:
    """The scheme of a link's target as a browser reads it (entities decoded, spaces around
    it and tabs and line breaks in it dropped), lower case; None for a relative link or one
    whose scheme comes from a value lint cannot know."""
    url = _URL_NOISE.sub("", html.unescape(url)).strip(_CONTROL_OR_SPACE)
    found = _SCHEME.match(url)
    return None if found is None else found.group(1).lower()


def _placeholder_problems(
    text: str, variables: dict[str, Any], locale: str
) -> Iterator[tuple[int, str]]:
    """Each problem with the text's placeholders, after the offset of the field it is
    about (-1 when it is about the whole text)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        yield -1, "unbalanced '{' or '}' (write '{{' or '}}' for a literal brace)"
        return
    known = ""
    written = 0  # where the next part starts in the text as written
    for literal, name, spec, conversion in parsed:
        written += len(literal) + literal.count("{") + literal.count("}")  # braces doubled
        if name is None:
            continue
        at, written = written, _field_end(text, written)
        if not _PLACEHOLDER.match(name):
            yield at, f"'{{{name}}}' is not a placeholder name (use letters, digits, '_' and '-')"
            continue
        if name not in variables:
            known = known or _listing(variables)
            yield at, f"placeholder '{{{name}}}' has no variable (variables: {known})"
            continue
        value = variables[name]
        if isinstance(value, dict) and value_for_locale(value, locale) is None:
            yield (
                at,
                (
                    f"placeholder '{{{name}}}' has no value in '{locale}' "
                    f"(the variable has values in: {', '.join(sorted(value))})"
                ),
            )
        if conversion:
            yield at, f"'{{{name}!{conversion}}}': conversions are not supported"
        if spec and spec not in DATE_FORMATS:
            yield (
                at,
                (
                    f"'{{{name}:{spec}}}': the only formats are "
                    f"{', '.join(sorted(DATE_FORMATS))} (for dates)"
                ),
            )


# -- turning pydantic locations and messages into a rule author's words --------------------


def _data_loc(located: yamlpos.Located, loc: tuple[Any, ...]) -> tuple[Loc, bool]:
    """Drop the parts of a pydantic location that are not in the data (union members)."""
    path: Loc = ()
    is_key = False
    for part in loc:
        if part == "[key]":
            is_key = True
            continue
        candidate = (*path, part)
        if candidate in located.positions or candidate in located.key_positions:
            path = candidate
        elif isinstance(part, str) and part in ("from_",):
            path = (*path, "from")
    return path, is_key


def _label(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, dt.datetime):
        return f"the date and time {value.isoformat()}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return repr(value)


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a mapping (`key: value` lines)",
    "model_type": "a mapping (`key: value` lines)",
    "model_attributes_type": "a mapping (`key: value` lines)",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date (YYYY-MM-DD) without a time",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "datetime_type": "a date and time",
    "datetime_parsing": "a date and time",
    "datetime_from_date_parsing": "a date and time",
}


_IMPLIED = (
    ("a number", "a whole number"),
    ("a date (YYYY-MM-DD)", "a date and time"),
)


def _explain_group(errors: Sequence[Any]) -> str:
    """One message for the errors at one place: several when the value may take several
    forms (a variable is text, a number or a date) and matches none of them."""
    if len(errors) == 1 or not all(e["type"] in _EXPECTED for e in errors):
        return _explain(errors[0]["type"], errors[0], errors[0].get("input"))
    wanted = list(dict.fromkeys(_EXPECTED[e["type"]] for e in errors))
    # "text, a number or a date" says it all: whole numbers are numbers, and so on.
    for general, special in _IMPLIED:
        if general in wanted and special in wanted:
            wanted.remove(special)
    choices = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else wanted[0]
    return f"expected {choices}, not {_describe(errors[0].get('input'))}"


_PATTERNS = {
    "^[a-z0-9][a-z0-9-]*$": "a valid name: use lower-case letters, digits and '-' "
    "(e.g. 'ru-notice')",
    "^[A-Za-z0-9][A-Za-z0-9_.:-]*$": "a tag of letters, digits and '_', '.', ':' or '-'",
    "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$": "an HTTP header name (letters, digits and '-')",
    "^[^\\r\\n\\x00]*$": "a header value on one line",
    '^https?://[^\\s<>\\"]+$': "an http:// or https:// URL",
    '^https://[^\\s<>\\"]+$': "an https:// URL",
}


def _explain(kind: str, error: Any, value: Any) -> str:
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, not {_describe(value)}"
    if kind == "string_pattern_mismatch":
        wanted = _PATTERNS.get(error.get("ctx", {}).get("pattern", ""), "a different value")
        return f"{value!r} is not {wanted}"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}, not {_describe(value)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"is too long (at most {error.get('ctx', {}).get('max_length', '?')})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is too long (at most {error.get('ctx', {}).get('max_length', '?')} characters)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"]).lower()


def _field_names(loc: Loc) -> list[str]:
    """Names of the keys allowed at ``loc`` (for did-you-mean suggestions)."""
    model: Any = RuleFile
    for part in loc:
        model = _step(model, part)
        if model is None:
            return []
    model = _unwrap_model(model)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    model = _unwrap_model(annotation)
    if model is not None and isinstance(part, str):
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    for arg in _args(annotation):
        origin = typing.get_origin(arg)
        if origin is list and isinstance(part, int):
            return typing.get_args(arg)[0]
        if origin is dict and isinstance(part, str):
            return typing.get_args(arg)[1]
    return None


def _args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _unwrap_model(annotation: Any) -> type[pydantic.BaseModel] | None:
    for arg in _args(annotation):
        if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
            return arg
    return None

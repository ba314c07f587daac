"""Find, parse and check rule files; report every problem as ``FILE:LINE:COL: message``.

:func:`load_rules` is the one entry point. It reads every ``.yaml``/``.yml`` file under the
given paths, validates each against :mod:`compliance.models`, then checks what needs more than
one value or more than one file: ISO 3166 codes, regions, locales, placeholders, duplicate ids.
All problems are collected before anything is raised, so a rule author fixes them in one go.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
import string
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
from babel import Locale, UnknownLocaleError

from . import yamlpos
from .errors import ConfigurationError, Problem, RuleError
from .models import FORMAT_VERSION, Message, Region, Rule, RuleFile, RuleTest

__all__ = [
    "LoadedRule",
    "LoadedTest",
    "RuleSet",
    "bundled_rules_path",
    "find_rule_files",
    "load_rules",
    "parse_locale",
]

Loc = tuple[str | int, ...]
RULE_SUFFIXES = (".yaml", ".yml")
HTML_TAGS = frozenset({"p", "a", "strong", "em", "br", "ul", "ol", "li"})
DATE_FORMATS = frozenset({"short", "medium", "long", "full"})
# Headers the server or this library manage; a rule setting them would corrupt responses.
RESERVED_HEADERS = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "set-cookie",
        "vary",
        "link",
        "location",
    }
)
# Country codes that are not in ISO 3166-1 but that geolocation providers report.
EXTRA_COUNTRIES = frozenset({"XK"})

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

    def __len__(self) -> int:
        return len(self.rules)


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


def find_rule_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every rule file under ``paths``: files as given, directories searched recursively.

    Hidden files and directories (names starting with ``.``) are skipped.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found.extend(
                    Path(dirpath, name)
                    for name in sorted(filenames)
                    if name.endswith(RULE_SUFFIXES) and not name.startswith(".")
                )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigurationError(f"{path}: no such file or directory")
    return found


def load_rules(paths: Iterable[str | os.PathLike[str]] | None = None) -> RuleSet:
    """Load and check rule files; raise :class:`~compliance.errors.RuleError` listing all
    problems if any file is wrong. ``None`` loads the bundled rule pack.

    >>> ruleset = load_rules()
    >>> "ru-undesirable-organization" in {r.rule.id for r in ruleset.rules}
    True
    """
    files = find_rule_files([bundled_rules_path()] if paths is None else paths)
    checker = _Checker()
    for path in files:
        checker.add_file(path)
    checker.check_references()
    if checker.problems:
        raise RuleError(sorted(set(checker.problems), key=_problem_order(files)))
    return RuleSet(
        files=tuple(str(f) for f in files),
        rules=tuple(checker.rules),
        regions={name: region for name, (region, _) in checker.regions.items()},
        tests=tuple(checker.tests),
    )


def _problem_order(files: Sequence[Path]) -> Any:
    rank = {str(f): i for i, f in enumerate(files)}
    return lambda p: (rank.get(p.file, len(rank)), p.file, p.line, p.column, p.message)


@functools.lru_cache(maxsize=4096)
def parse_locale(code: str) -> Locale | None:
    """A babel ``Locale`` for a BCP 47 or POSIX-style code (``pt-BR``, ``pt_BR``), or None."""
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


@functools.lru_cache(maxsize=4096)
def _is_country(code: str) -> bool:
    import pycountry  # its import is slow: pay for it only when checking codes

    return code in EXTRA_COUNTRIES or pycountry.countries.get(alpha_2=code) is not None


@functools.lru_cache(maxsize=8192)
def _is_subdivision(code: str) -> bool:
    import pycountry

    return pycountry.subdivisions.get(code=code) is not None  # type: ignore[no-untyped-call]


class _File:
    """One file being checked: reports problems at positions inside it."""

    def __init__(self, checker: _Checker, name: str, located: yamlpos.Located) -> None:
        self.checker = checker
        self.name = name
        self.located = located

    def at(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        return self.located.position(loc, key=key)

    def report(self, loc: Loc, message: str, *, key: bool = False) -> None:
        """Report ``message`` about the value at ``loc``, prefixed with where it is."""
        label = _label(loc)
        text = f"{label}: {message}" if label else message
        self.checker.report(self.name, self.at(loc, key=key), text)


class _Checker:
    """Collects rules, regions and problems across files."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.rules: list[LoadedRule] = []
        self.tests: list[LoadedTest] = []
        self.regions: dict[str, tuple[Region, str]] = {}
        self.rule_ids: dict[str, str] = {}
        # Checks that need every file loaded first.
        self._region_uses: list[tuple[_File, Loc, str]] = []
        self._rule_uses: list[tuple[_File, Loc, str]] = []
        self._region_refs: dict[str, list[str]] = {}

    def report(self, file: str, where: tuple[int, int], message: str) -> None:
        self.problems.append(Problem(file, where[0], where[1], message))

    def add_file(self, path: Path) -> None:
        name = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.report(name, (1, 1), f"cannot read file: {exc.strerror or exc}")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            bad = raw[exc.start : exc.start + 1].hex()
            self.report(name, (line, column), f"not UTF-8 text (byte 0x{bad}): save as UTF-8")
            return
        try:
            located = yamlpos.load(text.removeprefix("\ufeff"))
        except yamlpos.YAMLSyntaxError as exc:
            self.report(name, (exc.line, exc.column), exc.message)
            return
        for line, column, message in located.problems:
            self.report(name, (line, column), message)
        data = located.value
        if data is None:
            self.report(name, (1, 1), "empty file: a rule file starts with `version: 1`")
            return
        if not isinstance(data, dict):
            self.report(
                name,
                (1, 1),
                f"expected a mapping with `version`, `regions` and `rules`, not {_describe(data)}",
            )
            return
        file = _File(self, name, located)
        if not self._version_ok(file, data):
            return
        model: RuleFile | None
        try:
            model = RuleFile.model_validate(data)
        except pydantic.ValidationError as exc:
            errors = exc.errors()
            for error in errors:
                self._report_validation(file, error)
            model = _valid_parts(data, errors)
        if model is not None and not located.problems:
            self._check_file(file, model)

    def _version_ok(self, file: _File, data: dict[str, Any]) -> bool:
        if "version" not in data:
            self.report(file.name, (1, 1), "missing `version: 1` at the top of the file")
            return False
        version = data["version"]
        if isinstance(version, int) and not isinstance(version, bool):
            if version == FORMAT_VERSION:
                return True
            if version > FORMAT_VERSION:
                file.report(
                    ("version",),
                    f"format version {version} needs a newer compliance "
                    f"(this one reads version {FORMAT_VERSION})",
                )
                return False
        file.report(("version",), f"must be {FORMAT_VERSION}, not {_describe(version)}")
        return False

    def _report_validation(self, file: _File, error: Any) -> None:
        """One pydantic error, in a rule author's words, at its place in the file."""
        kind = error["type"]
        raw_loc = tuple(error["loc"])
        if kind == "missing":
            loc, _ = _data_loc(file.located, raw_loc[:-1])
            file.report(loc, f"missing key '{raw_loc[-1]}'")
            return
        loc, is_key = _data_loc(file.located, raw_loc)
        if kind == "extra_forbidden":
            key = str(loc[-1])
            message = f"unknown key '{key}'"
            suggestion = difflib.get_close_matches(key, _field_names(loc[:-1]), n=1)
            if suggestion:
                message += f" (did you mean '{suggestion[0]}'?)"
            file.report(loc, message, key=True)
        else:
            file.report(loc, _explain(kind, error, error.get("input")), key=is_key)

    # -- checks on a file that validated ---------------------------------------------------

    def _check_file(self, file: _File, model: RuleFile) -> None:
        for name, region in model.regions.items():
            loc: Loc = ("regions", name)
            if name in self.regions:
                file.report(
                    loc, f"region '{name}' is also defined in {self.regions[name][1]}", key=True
                )
                continue
            self.regions[name] = (region, file.name)
            self._region_refs[name] = [*region.include, *region.exclude]
            for field in ("include", "exclude"):
                for i, code in enumerate(getattr(region, field)):
                    self._code(file, (*loc, field, i), code, star=False)
        for index, rule in enumerate(model.rules):
            self._check_rule(file, ("rules", index), rule)
        for index, test in enumerate(model.tests):
            loc = ("tests", index)
            self._check_test(file, loc, test, in_rule=False)
            self.tests.append(LoadedTest(test, None, file.name, *file.at(loc)))

    def _check_rule(self, file: _File, loc: Loc, rule: Rule) -> None:
        if rule.id in self.rule_ids:
            file.report((*loc, "id"), f"'{rule.id}' is also used in {self.rule_ids[rule.id]}")
        else:
            self.rule_ids[rule.id] = f"{file.name}:{file.at((*loc, 'id'))[0]}"
        for i, code in enumerate(rule.jurisdictions):
            self._code(file, (*loc, "jurisdictions", i), code, star=True)
        for i, code in enumerate(rule.exclude):
            self._code(file, (*loc, "exclude", i), code, star=False)
        start, until = rule.effective.from_, rule.effective.until
        if start is not None and until is not None and start >= until:
            file.report((*loc, "effective"), f"`from` ({start}) must be before `until` ({until})")
        for i, pattern in enumerate(rule.hosts):
            if "/" in pattern or ":" in pattern:
                file.report(
                    (*loc, "hosts", i),
                    f"'{pattern}' must be a host name such as 'www.example.org' or "
                    "'*.example.org', not a URL",
                )
        for field in ("paths", "exclude_paths"):
            for i, pattern in enumerate(getattr(rule, field)):
                if not pattern.startswith("/"):
                    file.report((*loc, field, i), f"'{pattern}' must start with '/'")
        for name in rule.headers:
            if name.lower() in RESERVED_HEADERS:
                file.report(
                    (*loc, "headers", name),
                    f"'{name}' is managed by the server and cannot be set by a rule",
                    key=True,
                )
        for action in ("notice", "block"):
            message = getattr(rule, action)
            if message is not None:
                self._check_message(file, (*loc, action), message)
        for i, test in enumerate(rule.tests):
            test_loc = (*loc, "tests", i)
            self._check_test(file, test_loc, test, in_rule=True)
            self.tests.append(LoadedTest(test, rule.id, file.name, *file.at(test_loc)))
        self.rules.append(LoadedRule(rule, file.name, *file.at(loc)))

    def _check_message(self, file: _File, loc: Loc, message: Message) -> None:
        field = "text" if message.text is not None else "html"
        texts = message.texts
        for locale in texts:
            if parse_locale(locale) is None:
                file.report(
                    (*loc, field, locale),
                    f"unknown locale '{locale}' (use a code such as 'en', 'ru', 'pt-BR')",
                    key=True,
                )
        default_loc = (*loc, "default_locale")
        if parse_locale(message.default_locale) is None:
            file.report(default_loc, f"unknown locale '{message.default_locale}'")
        elif message.default_locale not in texts:
            file.report(
                default_loc,
                f"'{message.default_locale}' has no {field}; locales with a {field}: "
                f"{', '.join(sorted(texts))}",
            )
        for locale, text in texts.items():
            for problem in _placeholder_problems(text, message.variables):
                file.report((*loc, field, locale), problem)
            if field == "html":
                for tag in sorted({t.lower() for t in _TAG.findall(text)} - HTML_TAGS):
                    file.report(
                        (*loc, field, locale),
                        f"<{tag}> is not allowed (allowed: {', '.join(sorted(HTML_TAGS))})",
                    )

    def _check_test(self, file: _File, loc: Loc, test: RuleTest, *, in_rule: bool) -> None:
        reader = test.reader
        reader_loc = (*loc, "reader")
        if reader.ip is not None:
            try:
                ipaddress.ip_address(reader.ip)
            except ValueError:
                file.report((*reader_loc, "ip"), f"'{reader.ip}' is not an IP address")
        if reader.country is not None and not (
            _COUNTRY.match(reader.country) and _is_country(reader.country)
        ):
            file.report(
                (*reader_loc, "country"), f"'{reader.country}' is not an ISO 3166-1 country code"
            )
        for i, code in enumerate(reader.subdivisions):
            if not (_SUBDIVISION.match(code) and _is_subdivision(code)):
                file.report((*reader_loc, "subdivisions", i), f"'{code}' is not an ISO 3166-2 code")
            elif reader.country and not code.startswith(reader.country + "-"):
                file.report(
                    (*reader_loc, "subdivisions", i),
                    f"'{code}' is not a subdivision of {reader.country}",
                )
        expect = test.expect
        expect_loc = (*loc, "expect")
        if expect.applies is not None and not in_rule:
            file.report(
                (*expect_loc, "applies"), "`applies` is only for tests written under a rule"
            )
        for i, rule_id in enumerate(expect.notices or []):
            self._rule_uses.append((file, (*expect_loc, "notices", i), rule_id))
        if expect.block is not None:
            self._rule_uses.append((file, (*expect_loc, "block"), expect.block))
        if expect.locale is not None and parse_locale(expect.locale) is None:
            file.report((*expect_loc, "locale"), f"unknown locale '{expect.locale}'")

    def _code(self, file: _File, loc: Loc, code: str, *, star: bool) -> None:
        """Check a jurisdiction code now, or once every file is read if it names a region."""
        if code == "*":
            if not star:
                file.report(loc, "'*' is only allowed in a rule's `jurisdictions`")
        elif _COUNTRY.match(code):
            if not _is_country(code):
                file.report(loc, f"'{code}' is not an ISO 3166-1 country code")
        elif _SUBDIVISION.match(code):
            if not _is_subdivision(code):
                file.report(loc, f"'{code}' is not an ISO 3166-2 code")
        elif _REGION_NAME.match(code):
            self._region_uses.append((file, loc, code))
        else:
            file.report(
                loc,
                f"'{code}' is not a jurisdiction: use an ISO 3166-1 code ('RU'), an ISO 3166-2 "
                "code ('UA-43'), a region name or '*'",
            )

    def check_references(self) -> None:
        """Checks that need every file: region names, region cycles, rule ids in tests."""
        for file, loc, code in self._region_uses:
            if code in self.regions:
                continue
            message = f"unknown region '{code}'"
            if _COUNTRY.match(code.upper()) and _is_country(code.upper()):
                message += f" (country codes are upper case: '{code.upper()}')"
            else:
                close = difflib.get_close_matches(code, list(self.regions), n=1)
                if close:
                    message += f" (did you mean '{close[0]}'?)"
            file.report(loc, message)
        for name in _region_cycles(self._region_refs):
            self.report(self.regions[name][1], (1, 1), f"region '{name}' includes itself")
        for file, loc, rule_id in self._rule_uses:
            if rule_id not in self.rule_ids:
                file.report(loc, f"unknown rule id '{rule_id}'")


def _valid_parts(data: dict[str, Any], errors: Sequence[Any]) -> RuleFile | None:
    """The file without the regions, rules and tests that failed validation, so that the
    rest still gets checked; None when the file as a whole is unusable."""
    bad: dict[str, set[Any]] = {"regions": set(), "rules": set(), "tests": set()}
    for error in errors:
        loc = error["loc"]
        if len(loc) < 2 or loc[0] not in bad:
            return None
        bad[loc[0]].add(loc[1])
    try:
        return RuleFile.model_validate(
            {
                **data,
                "regions": {
                    k: v for k, v in data.get("regions", {}).items() if k not in bad["regions"]
                },
                "rules": [r for i, r in enumerate(data.get("rules", [])) if i not in bad["rules"]],
                "tests": [t for i, t in enumerate(data.get("tests", [])) if i not in bad["tests"]],
            }
        )
    except pydantic.ValidationError:
        return None


def _region_cycles(refs: dict[str, list[str]]) -> list[str]:
    cyclic: list[str] = []
    for start in refs:
        seen: set[str] = set()
        stack = [r for r in refs[start] if r in refs]
        while stack:
            name = stack.pop()
            if name == start:
                cyclic.append(start)
                break
            if name not in seen:
                seen.add(name)
                stack.extend(r for r in refs[name] if r in refs)
    return cyclic


_TAG = re.compile(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)")


def _placeholder_problems(text: str, variables: dict[str, Any]) -> Iterator[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        yield "unbalanced '{' or '}' (write '{{' or '}}' for a literal brace)"
        return
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or not name.isidentifier():
            yield f"'{{{name}}}' is not a placeholder name (use letters, digits and '_')"
            continue
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            yield f"placeholder '{{{name}}}' has no variable (variables: {known})"
            continue
        if conversion:
            yield f"'{{{name}!{conversion}}}': conversions are not supported"
        if spec and spec not in DATE_FORMATS:
            yield (
                f"'{{{name}:{spec}}}': the only formats are "
                f"{', '.join(sorted(DATE_FORMATS))} (for dates)"
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
    return f"{value!r} ({type(value).__name__})"


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date (YYYY-MM-DD) without a time",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "datetime_type": "a date or date and time",
    "datetime_parsing": "a date or date and time",
}

_PATTERNS = {
    "^[a-z0-9][a-z0-9-]*$": "an id of lower-case letters, digits and '-' (e.g. 'ru-notice')",
    "^[A-Za-z0-9][A-Za-z0-9_.:-]*$": "a tag of letters, digits and '_', '.', ':' or '-'",
    "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$": "an HTTP header name (letters, digits and '-')",
    "^[^\\r\\n\\x00]*$": "a header value on one line",
    '^https?://[^\\s<>\\"]+$': "an http:// or https:// URL",
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

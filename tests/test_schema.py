"""The committed JSON Schema of the rule format: up to date, described, and accepting the
bundled rule files."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compliance import yamlpos
from compliance.models import json_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "compliance" / "rules-v1.schema.json"
RULE_FILES = sorted((REPO / "rules").glob("*.yaml"))
REGENERATE = "compliance schema > compliance/rules-v1.schema.json"


def committed() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return loaded


def test_committed_schema_is_up_to_date() -> None:
    assert committed() == json_schema(), (
        f"{SCHEMA.relative_to(REPO)} is stale; regenerate it with: {REGENERATE}"
    )


def test_committed_schema_is_formatted_as_the_command_prints_it() -> None:
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert SCHEMA.read_text(encoding="utf-8") == text, f"regenerate it with: {REGENERATE}"


def test_schema_names_its_dialect_and_itself() -> None:
    schema = json_schema()
    assert list(schema)[:2] == ["$schema", "$id"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:compliance:rule-file:v1"


def _objects(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}/{index}")


def test_every_field_and_definition_has_a_description() -> None:
    schema = json_schema()
    undescribed = [
        f"{path}/properties/{name}"
        for path, node in _objects(schema)
        if isinstance(node.get("properties"), dict)
        for name, field in node["properties"].items()
        if not field.get("description")
    ]
    undescribed += [
        f"#/$defs/{name}" for name, node in schema["$defs"].items() if not node.get("description")
    ]
    if not schema.get("description"):
        undescribed.append("#")
    assert not undescribed, "fields without a description: " + ", ".join(undescribed)
    assert {"Rule", "Notice", "Block", "RuleTest", "Reader"} <= set(schema["$defs"])


def test_dates_are_strings_in_date_format() -> None:
    effective = json_schema()["$defs"]["Effective"]["properties"]["from"]
    assert {"type": "string", "format": "date"} in effective["anyOf"]


def _as_json(value: Any) -> Any:
    """YAML values as JSON has them: dates become ISO 8601 strings."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, dt.date):  # also datetime
        return value.isoformat()
    return value


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_bundled_rule_files_validate_against_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator_class = jsonschema.validators.validator_for(committed())
    validator_class.check_schema(committed())
    validator = validator_class(committed(), format_checker=validator_class.FORMAT_CHECKER)
    data = _as_json(yamlpos.load(path.read_text(encoding="utf-8")).value)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_bundled_rule_files_point_editors_at_the_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../compliance/rules-v1.schema.json"
    assert (path.parent / "../compliance/rules-v1.schema.json").resolve() == SCHEMA


def test_schema_rejects_what_the_models_reject() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(committed())
    good = {
        "version": 1,
        "rules": [
            {
                "id": "a",
                "title": "A",
                "jurisdictions": ["DE"],
                "effective": {"from": "2024-02-20"},
                "notice": {"text": {"en": "Hello."}},
            }
        ],
    }
    assert not list(validator.iter_errors(good))
    bad_key = {**good, "rule": []}
    assert list(validator.iter_errors(bad_key))
    newer = {**good, "version": 2}
    assert list(validator.iter_errors(newer))


BASE = """\
version: 1
rules:
  - id: a
    title: A
    jurisdictions: [DE]
    notice: {text: {en: Hello.}}
"""
SAME = {
    # The schema refused these and the loader took them: pydantic coerced the value.
    "priority as text": BASE + "    priority: '5'\n",
    "priority true": BASE + "    priority: true\n",
    "the Python name from_": BASE + "    effective: {from_: 2024-01-01}\n",
    "a date as a number": BASE + "    effective: {from: 0}\n",
    "a date with a time": BASE + "    effective: {from: '2024-01-01T00:00:00'}\n",
    "a test time as a number": BASE
    + "    tests: [{name: t, reader: {country: FR}, request: {at: 1700000000},"
    " expect: {applies: false}}]\n",
    "applies as text": BASE
    + "    tests: [{name: t, reader: {country: FR}, expect: {applies: 'no'}}]\n",
    "unknown as a number": BASE + "    tests: [{name: t, reader: {unknown: 1}, expect: {}}]\n",
    "placeholder 0": BASE.replace(
        "notice: {text: {en: Hello.}}", "withhold: {marks: [x], placeholder: 0}"
    ),
    # The loader refused these and the schema took them: keys with a pattern allowed any key.
    "region name": "version: 1\nregions:\n  Bad_Name: 42\n",
    "variable name": BASE.replace("{text: {en: Hello.}}", "{text: {en: x}, variables: {A_B: [1]}}"),
    "header name": BASE + "    headers: {'X Bad': v}\n",
    "a variable true": BASE.replace(
        "{text: {en: Hello.}}", "{text: {en: 'x {flag}'}, variables: {flag: true}}"
    ),
    # A path pattern with percent escapes never matches the decoded path.
    "escaped path": BASE + "    paths: ['/%D0%BD%D0%BE/*']\n",
    "escaped excluded path": BASE + "    exclude_paths: ['/news%20today/*']\n",
}


def _as_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@pytest.mark.parametrize("text", list(SAME.values()), ids=list(SAME))
def test_schema_and_loader_refuse_the_same_values(tmp_path: Path, text: str) -> None:
    from compliance.errors import RuleError
    from compliance.loader import load_rules

    jsonschema = pytest.importorskip("jsonschema")
    draft = jsonschema.Draft202012Validator
    validator = draft(committed(), format_checker=draft.FORMAT_CHECKER)  # dates are checked
    assert list(validator.iter_errors(_as_json(yamlpos.load(text).value)))
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError):
        load_rules([path])
    path.write_text(BASE, encoding="utf-8")
    assert load_rules([path]).rules  # the same file without the mistake loads

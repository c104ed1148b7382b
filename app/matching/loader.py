"""Loading rule files (rules/*.yml) into a RuleSet, with every error at its line."""
from __future__ import annotations

import copy
from typing import Any, NamedTuple

from app.filecheck import (FileError, FileErrors, YamlFile, content_hash, raise_if_any, read_yaml,
                           schema_errors, suggest, yaml_files)
from app.matching.model import Rule, RuleSet

STATUSES = ("green", "yellow", "red", "black")  # the default health scheme, best to worst
ACCOUNT_FIELDS = ("id", "name", "segment", "lifecycle_stage", "plan", "csm", "manager")
NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]*$"
NAME_HINT = "use lower-case letters, digits, '-', '_' and '.'"

_TEXT_OR_LIST = {"anyOf": [{"type": "string"},
                           {"type": "array", "minItems": 1, "items": {"type": "string"}}]}
_SAMPLE_ACCOUNT = {
    "type": "object", "additionalProperties": False,
    "properties": {name: {"type": ["string", "null"]} for name in ACCOUNT_FIELDS},
}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rules"],
    "properties": {"rules": {"type": "array", "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "on", "playbook"],
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN, "description": NAME_HINT},
            "description": {"type": "string"},
            "owner": {"type": "string"},
            "enabled": {"type": "boolean"},
            "priority": {"type": "integer"},
            "on": {"enum": ["health_changed"]},
            "to": _TEXT_OR_LIST,
            "from": _TEXT_OR_LIST,
            "account": {"type": "object", "additionalProperties": False,
                        "properties": {name: _TEXT_OR_LIST for name in ACCOUNT_FIELDS}},
            "playbook": {"type": "string"},
            "params": {"type": "object"},
            "tests": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["facts", "fires"],
                "properties": {
                    "name": {"type": "string"},
                    "facts": {"type": "object", "additionalProperties": False, "properties": {
                        "type": {"type": "string"},
                        "to": {"type": ["string", "null"]},
                        "from": {"type": ["string", "null"]},
                        "account": _SAMPLE_ACCOUNT,
                    }},
                    "fires": {"type": "boolean"},
                },
            }},
        },
    }}},
}


class RuleTest(NamedTuple):
    """A sample event in a rule file and whether the rule must fire for it."""

    rule: str
    name: str
    facts: dict
    fires: bool
    file: str
    line: int


def load_rules(rules_dir: str, playbooks: dict, statuses: tuple[str, ...] = STATUSES) -> RuleSet:
    """All rules of rules_dir; raises FileErrors listing every problem in every file."""
    files = yaml_files(rules_dir)
    errors: list[FileError] = []
    loaded: list[tuple[YamlFile, tuple, dict]] = []
    first_seen: dict[str, str] = {}  # rule name -> "file:line" where it was first defined
    for doc in _read(files, errors):
        # Rules with schema errors are checked too, so that one run reports everything.
        for item, path, _ in _rules(doc, errors):
            errors += _check_rule(doc, path, item, playbooks, statuses)
            name = item.get("name")
            if isinstance(name, str) and name in first_seen:
                errors.append(doc.error(path + ("name",), f"rule name {name!r} is used twice",
                                        f"first defined at {first_seen[name]}; rename one of them"))
            elif isinstance(name, str):
                first_seen[name] = f"{doc.path}:{doc.at(path + ('name',))[0]}"
            loaded.append((doc, path, item))
    raise_if_any(errors)
    return RuleSet(rules=tuple(_rule(doc, path, item) for doc, path, item in loaded),
                   version=content_hash(files))


def load_rule_tests(rules_dir: str) -> list[RuleTest]:
    """The `tests:` samples of every rule; `type` defaults to the rule's trigger event."""
    errors: list[FileError] = []
    samples: list[RuleTest] = []
    for doc in _read(yaml_files(rules_dir), errors):
        for item, path, valid in _rules(doc, errors):
            if not valid:
                continue
            for number, sample in enumerate(item.get("tests", []), 1):
                facts = copy.deepcopy(sample["facts"])
                facts.setdefault("type", "account.health_changed")
                line = doc.at(path + ("tests", number - 1))[0]
                samples.append(RuleTest(item["name"], sample.get("name") or f"sample {number}",
                                        facts, sample["fires"], doc.path, line))
    raise_if_any(errors)
    return samples


def failing_rule_tests(matcher, samples: list[RuleTest]) -> list[FileError]:
    """One error per sample whose rule fires when it should not, or does not when it should."""
    failures = []
    for sample in samples:
        fired = [rule.name for rule in matcher.match(sample.facts)]
        if (sample.rule in fired) != sample.fires:
            verb = "does not fire" if sample.fires else "fires"
            failures.append(FileError(sample.file, sample.line, 1,
                                      f"rule {sample.rule!r} {verb} for test {sample.name!r}",
                                      f"rules that fired: {', '.join(fired) or 'none'}"))
    return failures


def _read(files: list[str], errors: list[FileError]):
    for path in files:
        try:
            doc = read_yaml(path)
        except FileErrors as exc:
            errors += exc.errors
            continue
        if doc.data is None:
            doc.data = {}  # an empty file is reported as missing `rules:`
        errors += doc.problems
        yield doc


def _rules(doc: YamlFile, errors: list[FileError]):
    """(rule, path, passes the schema) of each rule in the file; schema errors go to `errors`."""
    found = schema_errors(doc, SCHEMA)
    errors += found
    broken = {error.path[:2] for error in found}
    items = doc.get(("rules",))
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if isinstance(item, dict):
            yield item, ("rules", index), ("rules", index) not in broken


def _check_rule(doc: YamlFile, path: tuple, item: dict, playbooks: dict, statuses) -> list[FileError]:
    # Values of the wrong type were reported by the schema: skip them here.
    found = []
    playbook = item.get("playbook")
    if isinstance(playbook, str) and playbook not in playbooks:
        found.append(doc.error(path + ("playbook",), f"unknown playbook {playbook!r}",
                               suggest(playbook, sorted(playbooks), "known playbooks")))
    for key in ("to", "from"):
        found += _bad_statuses(doc, path + (key,), item.get(key), statuses)
    samples = item.get("tests")
    for number, sample in enumerate(samples if isinstance(samples, list) else []):
        facts = sample.get("facts") if isinstance(sample, dict) else None
        for key in ("to", "from"):
            if isinstance(facts, dict):
                found += _bad_statuses(doc, path + ("tests", number, "facts", key), facts.get(key), statuses)
    return found


def _bad_statuses(doc: YamlFile, path: tuple, value: Any, statuses) -> list[FileError]:
    values = [(path, value)] if isinstance(value, str) else \
        [(path + (i,), v) for i, v in enumerate(value)] if isinstance(value, list) else []
    return [doc.error(where, f"unknown health status {status!r}", suggest(status.lower(), statuses, "statuses"))
            for where, status in values if isinstance(status, str) and status.lower() not in statuses]


def _as_tuple(value: Any, lower: bool = False) -> tuple:
    values = (value,) if isinstance(value, str) else tuple(value or ())
    return tuple(v.lower() for v in values) if lower else values


def _rule(doc: YamlFile, path: tuple, item: dict) -> Rule:
    return Rule(
        name=item["name"],
        playbook=item["playbook"],
        trigger=item["on"],
        to=_as_tuple(item.get("to"), lower=True),
        from_=_as_tuple(item.get("from"), lower=True),
        account={key: _as_tuple(value) for key, value in item.get("account", {}).items()},
        description=item.get("description", "").strip(),
        owner=item.get("owner", ""),
        enabled=item.get("enabled", True),
        priority=int(item.get("priority", 0)),
        params=copy.deepcopy(item.get("params", {})),
        file=doc.path,
        line=doc.at(path)[0],
    )

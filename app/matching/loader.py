"""Loading rule files (rules/*.yml) into a RuleSet, with every error at its line."""

from __future__ import annotations

import copy
import re
from collections.abc import Collection
from typing import Any, NamedTuple

from app.filecheck import (
    FileError,
    YamlFile,
    content_hash,
    raise_if_any,
    read_all,
    schema_errors,
    suggest,
    template_error,
    yaml_files,
)
from app.matching import conditions as c
from app.matching.facts import ACCOUNT_FACTS
from app.matching.model import HEALTH_TRIGGER, SCHEDULE_TRIGGER, Brake, Rule, RuleSet, Schedule, Throttle
from app.signals.indicators import shipped_metric_names

STATUSES = ("green", "yellow", "red", "black")  # the default health scheme, best to worst
ACCOUNT_FIELDS = ("id", "name", "segment", "lifecycle_stage", "plan", "csm", "manager")
NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]*$"
NAME_HINT = "use lower-case letters, digits, '-', '_' and '.'"
TRIGGER_PATTERN = "^(health_changed|schedule|[a-z0-9_]+([.][a-z0-9_]+)+)$"
TRIGGER_HINT = "health_changed, schedule, or an event type with a dot such as usage.daily or task.overdue"
DURATION_PATTERN = "^[0-9]+ *(minute|hour|day|week)s?$"
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
# When a rule names no brake: a runaway rule stops here rather than at 2,000 tasks.
DEFAULT_BRAKE = Brake(max=500, seconds=3600, per="hour")

_TEXT_OR_LIST = {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]}
_SAMPLE_ACCOUNT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {name: {"type": ["string", "number", "null"]} for name in ACCOUNT_FACTS},
}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rules"],
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "on", "playbook"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN, "description": NAME_HINT},
                    "description": {"type": "string"},
                    "owner": {"type": "string"},
                    "enabled": {"type": "boolean"},
                    "priority": {"type": "integer"},
                    "on": {"type": "string"},  # checked in _check_rule, with a did-you-mean
                    "schedule": {
                        "type": "object",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "maxProperties": 1,
                        "properties": {
                            "every": {"enum": ["month"]},
                            "days_before_renewal": {"type": "integer", "minimum": 1},
                        },
                    },
                    "to": _TEXT_OR_LIST,
                    "from": _TEXT_OR_LIST,
                    "account": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": dict.fromkeys(ACCOUNT_FIELDS, _TEXT_OR_LIST),
                    },
                    "scope": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"segments": _TEXT_OR_LIST, "lifecycle_stages": _TEXT_OR_LIST},
                    },
                    "if": {"type": "string", "minLength": 1},
                    "throttle": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["once_within"],
                        "properties": {
                            "once_within": {
                                "type": "string",
                                "pattern": DURATION_PATTERN,
                                "description": "e.g. 30 days, 12 hours, 2 weeks",
                            },
                            "group_by": _TEXT_OR_LIST,
                        },
                    },
                    "brake": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["max"],
                        "properties": {
                            "max": {"type": "integer", "minimum": 1},
                            "per": {"enum": ["minute", "hour", "day"]},
                        },
                    },
                    "playbook": {"type": "string"},
                    "params": {"type": "object"},
                    "tests": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["facts", "fires"],
                            "properties": {
                                "name": {"type": "string"},
                                "facts": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {"type": "string"},
                                        "to": {"type": ["string", "null"]},
                                        "from": {"type": ["string", "null"]},
                                        "crm_from": {"type": ["string", "null"]},
                                        "account": _SAMPLE_ACCOUNT,
                                        # Names are checked against the declared metrics (_check_rule).
                                        "metrics": {
                                            "type": "object",
                                            "additionalProperties": {"type": ["number", "null"]},
                                        },
                                        "event": {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "properties": {
                                                "id": {"type": "string"},
                                                "type": {"type": "string"},
                                                "occurred_at": {"type": "string"},
                                                "properties": {"type": "object"},
                                            },
                                        },
                                        "schedule": {"type": "object"},
                                    },
                                },
                                "fires": {"type": "boolean"},
                                "playbook": {"type": "string"},
                            },
                        },
                    },
                },
            },
        }
    },
}


class RuleTest(NamedTuple):
    """A sample event in a rule file and whether the rule must fire for it."""

    rule: str
    name: str
    facts: dict
    fires: bool
    file: str
    line: int
    playbook: str | None = None  # when given: the rule fires and this playbook is launched


def load_rules(
    rules_dir: str, playbooks: dict, statuses: tuple[str, ...] = STATUSES, metrics: Collection[str] | None = None
) -> RuleSet:
    """All rules of rules_dir; raises FileErrors listing every problem in every file.

    `metrics`: the metric names a condition may read (the live MetricSet's; by default the
    shipped metrics/ folder's)."""
    metrics = shipped_metric_names() if metrics is None else metrics
    files = yaml_files(rules_dir)
    errors: list[FileError] = []
    loaded: list[tuple[YamlFile, tuple, dict, Any]] = []
    first_seen: dict[str, str] = {}  # rule name -> "file:line" where it was first defined
    for doc in _read(files, errors):
        # Rules with schema errors are checked too, so that one run reports everything.
        for item, path, _ in _rules(doc, errors):
            problems, condition = _check_rule(doc, path, item, playbooks, statuses, metrics)
            errors += problems
            name = item.get("name")
            if isinstance(name, str) and name in first_seen:
                errors.append(
                    doc.error(
                        path + ("name",),
                        f"rule name {name!r} is used twice",
                        f"first defined at {first_seen[name]}; rename one of them",
                    )
                )
            elif isinstance(name, str):
                first_seen[name] = f"{doc.path}:{doc.at(path + ('name',))[0]}"
            loaded.append((doc, path, item, condition))
    raise_if_any(errors)
    return RuleSet(
        rules=tuple(_rule(doc, path, item, condition) for doc, path, item, condition in loaded),
        version=content_hash(files),
    )


def load_rule_tests(rules_dir: str) -> list[RuleTest]:
    """The `tests:` samples of every rule; `type` defaults to the rule's trigger event."""
    errors: list[FileError] = []
    samples: list[RuleTest] = []
    for doc in _read(yaml_files(rules_dir), errors):
        for item, path, valid in _rules(doc, errors):
            if not valid:
                continue
            trigger = item["on"]
            for number, sample in enumerate(item.get("tests", []), 1):
                facts = copy.deepcopy(sample["facts"])
                if trigger == SCHEDULE_TRIGGER:
                    facts.setdefault("type", "schedule.due")
                    facts.setdefault("schedule", {"rule": item["name"]})
                else:
                    facts.setdefault("type", "account.health_changed" if trigger == HEALTH_TRIGGER else trigger)
                line = doc.at(path + ("tests", number - 1))[0]
                samples.append(
                    RuleTest(
                        item["name"],
                        sample.get("name") or f"sample {number}",
                        facts,
                        sample["fires"],
                        doc.path,
                        line,
                        sample.get("playbook"),
                    )
                )
    raise_if_any(errors)
    return samples


def launched_playbooks(matched) -> list[str]:
    """The playbooks a list of matched rules (highest priority first) would launch."""
    return list(dict.fromkeys(rule.playbook for rule in matched))


def failing_rule_tests(matcher, samples: list[RuleTest]) -> list[FileError]:
    """One error per sample whose rule fires when it should not, or does not when it should.

    The hint explains, check by check, what did not hold.
    """
    from app.matching.explain import explain_rule

    failures = []
    for sample in samples:
        matched = matcher.match(sample.facts)
        fired = [rule.name for rule in matched]
        problem = None
        if (sample.rule in fired) != sample.fires:
            problem = f"rule {sample.rule!r} {'does not fire' if sample.fires else 'fires'} for test {sample.name!r}"
        elif sample.playbook and sample.playbook not in launched_playbooks(matched):
            problem = f"test {sample.name!r} expects playbook {sample.playbook!r} to be launched"
        if problem is None:
            continue
        hint = f"rules that fired: {', '.join(fired) or 'none'}"
        rule = matcher.ruleset.by_name(sample.rule)
        if sample.fires and rule is not None and sample.rule not in fired:
            failed = [
                f"{result.label} ({result.detail})" for result in explain_rule(rule, sample.facts) if not result.ok
            ]
            if failed:
                hint = "failed: " + "; ".join(failed) + "; " + hint
        failures.append(FileError(sample.file, sample.line, 1, problem, hint))
    return failures


def _read(files: list[str], errors: list[FileError]):
    return read_all(files, errors)  # an empty file is reported as missing `rules:`


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


# The roots of the facts (app.matching.facts) a condition or a template may read.
FACT_ROOTS = ("type", "to", "from", "crm_from", "event", "account", "metrics", "schedule")


def _check_rule(
    doc: YamlFile, path: tuple, item: dict, playbooks: dict, statuses, metrics: Collection[str]
) -> tuple[list[FileError], Any]:
    # Values of the wrong type were reported by the schema: skip them here.
    found = []
    playbook = item.get("playbook")
    if isinstance(playbook, str) and playbook not in playbooks:
        found.append(
            doc.error(
                path + ("playbook",),
                f"unknown playbook {playbook!r}",
                suggest(playbook, sorted(playbooks), "known playbooks"),
            )
        )
    trigger = item.get("on")
    if isinstance(trigger, str) and not re.match(TRIGGER_PATTERN, trigger):
        found.append(
            doc.error(
                path + ("on",),
                f"{_label(path)}.on has an unknown value {trigger!r}",
                suggest(trigger, (HEALTH_TRIGGER, SCHEDULE_TRIGGER), "allowed values")
                + ", or an event type with a dot such as usage.daily",
            )
        )
        trigger = None
    for key in ("to", "from"):
        found += _bad_statuses(doc, path + (key,), item.get(key), statuses)
        if key in item and isinstance(trigger, str) and trigger != HEALTH_TRIGGER:
            found.append(
                doc.error(
                    path + (key,),
                    f"`{key}:` only applies to `on: health_changed`",
                    f'for other events write e.g. `if: event.properties.{key} == "poor"`',
                )
            )
    if trigger == SCHEDULE_TRIGGER and "schedule" not in item:
        found.append(
            doc.error(
                path + ("on",),
                "`on: schedule` needs a `schedule:`",
                "add `schedule: {every: month}` or `schedule: {days_before_renewal: 90}`",
            )
        )
    if "schedule" in item and isinstance(trigger, str) and trigger != SCHEDULE_TRIGGER:
        found.append(
            doc.error(
                path + ("schedule",),
                "`schedule:` only applies to `on: schedule`",
                "set `on: schedule`, or remove `schedule:`",
            )
        )
    condition = None
    text = item.get("if")
    if isinstance(text, str) and text.strip():
        try:
            condition = c.parse(text)
        except c.ConditionError as exc:
            found.append(_condition_error(doc, path + ("if",), text, exc))
        else:
            problems = condition_errors(condition, statuses, metrics)
            found += [_condition_error(doc, path + ("if",), text, exc) for exc in problems]
            condition = None if problems else condition
    throttle = item.get("throttle")
    group_by = throttle.get("group_by") if isinstance(throttle, dict) else None
    for index, name in enumerate([group_by] if isinstance(group_by, str) else group_by or []):
        if isinstance(name, str):
            try:
                fact_kind(name, metrics)
            except c.ConditionError as exc:
                where = path + ("throttle", "group_by") + (() if isinstance(group_by, str) else (index,))
                found.append(doc.error(where, exc.message, exc.hint))
    params = item.get("params")
    if isinstance(params, dict):
        found += _template_errors(doc, path + ("params",), params)
    samples = item.get("tests")
    for number, sample in enumerate(samples if isinstance(samples, list) else []):
        facts = sample.get("facts") if isinstance(sample, dict) else None
        for key in ("to", "from"):
            if isinstance(facts, dict):
                found += _bad_statuses(doc, path + ("tests", number, "facts", key), facts.get(key), statuses)
        sample_metrics = facts.get("metrics") if isinstance(facts, dict) else None
        for name in sample_metrics if isinstance(sample_metrics, dict) else ():
            if name not in metrics:
                found.append(
                    doc.error(
                        path + ("tests", number, "facts", "metrics", name),
                        f"unknown metric {name!r}",
                        suggest(name, sorted(metrics), "metrics (built in and in metrics/)"),
                    )
                )
        expected = sample.get("playbook") if isinstance(sample, dict) else None
        if isinstance(expected, str) and expected not in playbooks:
            found.append(
                doc.error(
                    path + ("tests", number, "playbook"),
                    f"unknown playbook {expected!r}",
                    suggest(expected, sorted(playbooks), "known playbooks"),
                )
            )
    return found, condition


def _label(path: tuple) -> str:
    return f"rules[{path[1]}]"


def _template_errors(doc: YamlFile, path: tuple, value: Any) -> list[FileError]:
    if isinstance(value, dict):
        return [e for key, item in value.items() for e in _template_errors(doc, path + (key,), item)]
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _template_errors(doc, path + (i,), item)]
    if isinstance(value, str):
        error = template_error(doc, path, value, FACT_ROOTS)
        return [error] if error else []
    return []


def fact_kind(path: str, metrics: Collection[str] | None = None) -> str:
    """ "string", "number", "status" or "any" for a fact path; ConditionError if there is no such fact."""
    parts = path.split(".")
    root = parts[0]
    if root in ("type",) and len(parts) == 1:
        return "string"
    if root in ("to", "from", "crm_from") and len(parts) == 1:
        return "status"
    if root == "account" and len(parts) == 2:
        if parts[1] in ACCOUNT_FACTS:
            return ACCOUNT_FACTS[parts[1]]
        raise c.ConditionError(f"unknown account fact {path!r}", 0, suggest(parts[1], ACCOUNT_FACTS, "account facts"))
    if root == "metrics" and len(parts) == 2:
        known = shipped_metric_names() if metrics is None else metrics
        if parts[1] in known:
            return "number"
        raise c.ConditionError(
            f"unknown metric {parts[1]!r}", 0, suggest(parts[1], sorted(known), "metrics (built in and in metrics/)")
        )
    if root == "event" and len(parts) == 2 and parts[1] in ("id", "type", "occurred_at"):
        return "string"
    if root == "event" and len(parts) >= 3 and parts[1] == "properties":
        return "any"
    if root == "schedule" and len(parts) == 2 and parts[1] in ("rule", "kind", "period"):
        return "string"
    if root not in FACT_ROOTS:
        raise c.ConditionError(f"unknown fact {path!r}", 0, suggest(root, FACT_ROOTS, "facts start with"))
    fields = {
        "account": "account.<fact>",
        "metrics": "metrics.<name>",
        "event": "event.properties.<name>",
        "schedule": "schedule.rule",
    }.get(root, root)
    raise c.ConditionError(f"unknown fact {path!r}", 0, f"write {fields}")


_KIND_NAMES = {"string": "text", "number": "a number", "status": "a health status"}


def check_condition(node, statuses=STATUSES, metrics: Collection[str] | None = None) -> None:
    """Type-check a parsed condition; raises the first problem (see condition_errors)."""
    errors = condition_errors(node, statuses, metrics)
    if errors:
        raise errors[0]


def condition_errors(node, statuses=STATUSES, metrics: Collection[str] | None = None) -> list[c.ConditionError]:
    """Every problem of a parsed condition: unknown facts, values of the wrong kind, bad regexes."""
    errors = []
    for leaf in c.predicates(node):
        try:
            _check_leaf(leaf, statuses, metrics)
        except c.ConditionError as exc:
            errors.append(exc)
    return errors


def _check_leaf(leaf, statuses, metrics: Collection[str] | None = None) -> None:
    """One predicate: a known fact, values of its kind, a valid regex; raises ConditionError."""
    try:
        kind = fact_kind(leaf.path, metrics)
    except c.ConditionError as exc:
        raise c.ConditionError(exc.message, leaf.loc, exc.hint) from None
    if isinstance(leaf, c.Matches):
        try:
            re.compile(leaf.pattern)
        except re.error as exc:
            raise c.ConditionError(
                f"invalid regex {leaf.pattern!r}: {exc.msg}",
                leaf.loc,
                "matches uses Python regexes (re.search); escape . ( [ with a backslash "
                "(two in a double-quoted YAML string)",
            ) from None
        values = []
    elif isinstance(leaf, c.Cmp):
        values = [leaf.value]
        if leaf.op not in ("==", "!=") and (leaf.value is None or isinstance(leaf.value, bool)):
            raise c.ConditionError(f"{leaf.op} needs a number or a text, not {leaf.value!r}", leaf.loc)
        if leaf.op not in ("==", "!=") and kind in ("string", "status"):
            raise c.ConditionError(
                f"{leaf.path} is {_KIND_NAMES[kind]}: it cannot be {leaf.op} a value",
                leaf.loc,
                "use == != in or matches for text",
            )
    elif isinstance(leaf, c.In):
        if not leaf.values:
            raise c.ConditionError("the list is empty", leaf.loc, "name at least one value")
        values = list(leaf.values)
    elif isinstance(leaf, c.Between):
        if kind in ("string", "status"):
            raise c.ConditionError(f"{leaf.path} is {_KIND_NAMES[kind]}: between needs numbers", leaf.loc)
        if leaf.low > leaf.high:
            raise c.ConditionError(
                f"between {leaf.low} and {leaf.high}: the first must be the smaller",
                leaf.loc,
                f"write between {leaf.high} and {leaf.low}",
            )
        values = []
    elif isinstance(leaf, c.Contains):
        if kind == "number":
            raise c.ConditionError(f"{leaf.path} is a number: contains needs text or a list", leaf.loc)
        values = []
    else:
        values = []
    for value in values:
        if value is None or kind == "any":
            continue
        if kind == "number" and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise c.ConditionError(
                f"{leaf.path} is a number, not {value!r}",
                leaf.loc,
                f"write a number without quotes, e.g. {leaf.path} <= -20",
            )
        if kind in ("string", "status") and not isinstance(value, str):
            raise c.ConditionError(
                f"{leaf.path} is text, not {value!r}", leaf.loc, 'quote the value, e.g. "enterprise"'
            )
        if kind == "status" and value.lower() not in statuses:
            raise c.ConditionError(
                f"unknown health status {value!r}", leaf.loc, suggest(value.lower(), statuses, "statuses")
            )


def _condition_error(doc: YamlFile, path: tuple, text: str, exc: c.ConditionError) -> FileError:
    """At the character of the condition where the problem is."""
    line, style = doc.scalars.get(path, (doc.at(path)[0], ""))
    column = doc.columns.get(path, doc.at(path)[1])
    before = text[: exc.loc]
    if style in ("|", ">"):
        line += 1 + before.count("\n")
        column = doc.at(path)[1] + 2 + len(before.rsplit("\n", 1)[-1])
    else:
        column += exc.loc + (1 if style in ('"', "'") else 0)
    message = exc.message if exc.message.startswith("cannot read") else f"condition: {exc.message}"
    return FileError(doc.path, line, column, message, exc.hint, tuple(path))


def _bad_statuses(doc: YamlFile, path: tuple, value: Any, statuses) -> list[FileError]:
    values = (
        [(path, value)]
        if isinstance(value, str)
        else [(path + (i,), v) for i, v in enumerate(value)]
        if isinstance(value, list)
        else []
    )
    return [
        doc.error(where, f"unknown health status {status!r}", suggest(status.lower(), statuses, "statuses"))
        for where, status in values
        if isinstance(status, str) and status.lower() not in statuses
    ]


def _as_tuple(value: Any, lower: bool = False) -> tuple:
    values = (value,) if isinstance(value, str) else tuple(value or ())
    return tuple(v.lower() for v in values) if lower else values


def _duration(text: str) -> int:
    match = re.match(r"^([0-9]+) *(minute|hour|day|week)s?$", text)
    assert match is not None, text  # the schema admits only DURATION_PATTERN
    number, unit = match.groups()
    return int(number) * UNIT_SECONDS[unit]


def _rule(doc: YamlFile, path: tuple, item: dict, condition: Any) -> Rule:
    throttle = item.get("throttle")
    brake = item.get("brake")
    schedule = item.get("schedule")
    scope = item.get("scope", {})
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
        condition=condition,
        condition_text=(item.get("if") or "").strip(),
        segments=_as_tuple(scope.get("segments")),
        lifecycle_stages=_as_tuple(scope.get("lifecycle_stages")),
        throttle=Throttle(
            seconds=_duration(throttle["once_within"]),
            text=throttle["once_within"],
            group_by=_as_tuple(throttle.get("group_by", "account.id")),
        )
        if throttle
        else None,
        brake=Brake(max=brake["max"], seconds=UNIT_SECONDS[brake.get("per", "hour")], per=brake.get("per", "hour"))
        if brake
        else DEFAULT_BRAKE,
        schedule=(
            Schedule("monthly")
            if schedule.get("every") == "month"
            else Schedule("before_renewal", days=schedule["days_before_renewal"])
        )
        if schedule
        else None,
    )

"""Loading playbook files (playbooks/*.yml) into Playbooks, with every error at its line.

E-mail templates live in playbooks/mail/<name>.txt: a `Subject: ...` line, a blank
line, then the body. They are checked here too, so a broken one stops the server at
start-up rather than failing a run weeks later.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from app.filecheck import (
    FileError,
    FileErrors,
    YamlFile,
    content_hash,
    raise_if_any,
    read_yaml,
    schema_errors,
    suggest,
    template_error,
    yaml_files,
)
from app.playbooks.actions import registry
from app.playbooks.model import Playbook, Step, TaskSpec, When

# What task titles, instructions and `with:` strings are rendered with.
TEMPLATE_VARIABLES = ("account", "event", "params", "run")
# What e-mail templates see besides (see app/playbooks/actions/email.py).
MAIL_VARIABLES = TEMPLATE_VARIABLES + ("contact", "g2_url")
ASSIGNEE_ROLES = ("csm", "manager", "csops")
# What `when: {account: ...}` may test (app.accounts.account_facts).
ACCOUNT_FACTS = ("id", "name", "segment", "lifecycle_stage", "plan", "arr", "renewal_date", "csm", "manager", "health")
PRIORITIES = ("urgent", "high", "normal", "low")
MAIL_DIR = "mail"
NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]*$"
NAME_HINT = "use lower-case letters, digits, '-', '_' and '.'"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_NAME = {"type": "string", "pattern": NAME_PATTERN, "description": NAME_HINT}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "steps"],
    "properties": {
        "name": _NAME,
        "description": {"type": "string"},
        "concurrent": {"type": "boolean"},
        "close_when": {
            "type": "object",
            "additionalProperties": False,
            "required": ["health"],
            "description": "close an open run when the account's health moves to one of these",
            "properties": {
                "health": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
                "note": {"type": "string"},
            },
        },
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": _NAME,
                    "task": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["title"],
                        "properties": {
                            "title": {"type": "string", "minLength": 1},
                            "instructions": {"type": "string"},
                            "assignee": {"type": "string"},
                            "priority": {"enum": list(PRIORITIES)},
                            "due_in_days": {"type": "integer", "minimum": 0},
                            "due_in_business_days": {"type": "integer", "minimum": 0},
                            "outcomes": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _NAME},
                        },
                    },
                    "action": {"type": "string"},
                    "with": {"type": "object"},
                    "timeout": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 86400,
                        "description": "seconds an automated step may run before it is stopped and retried",
                    },
                    "after": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
                    "when": {
                        "type": "object",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "dependentRequired": {"step": ["outcome"], "outcome": ["step"]},
                        "properties": {
                            "step": {"type": "string"},
                            "outcome": {
                                "anyOf": [
                                    {"type": "string"},
                                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                                ]
                            },
                            "account": {
                                "type": "object",
                                "minProperties": 1,
                                "description": "account facts and the value (or list of values) each must have",
                                "additionalProperties": {
                                    "anyOf": [
                                        {"type": ["string", "number", "boolean", "null"]},
                                        {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {"type": ["string", "number", "boolean", "null"]},
                                        },
                                    ]
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def load_playbooks(playbooks_dir: str) -> dict[str, Playbook]:
    """All playbooks of playbooks_dir by name; raises FileErrors listing every problem."""
    errors: list[FileError] = []
    mail = _check_mail(os.path.join(playbooks_dir, MAIL_DIR), errors)
    playbooks: dict[str, Playbook] = {}
    first_seen: dict[str, str] = {}  # playbook name -> "file:line" where it was first defined
    for path in yaml_files(playbooks_dir):
        try:
            doc = read_yaml(path)
        except FileErrors as exc:
            errors += exc.errors
            continue
        errors += doc.problems
        if doc.data is None:
            doc.data = {}  # an empty file is reported as missing `name:` and `steps:`
        found = schema_errors(doc, SCHEMA)
        if isinstance(doc.data, dict) and isinstance(doc.data.get("steps"), list):
            broken = {error.path[1] for error in found if error.path[:1] == ("steps",) and len(error.path) > 1}
            found += _check(doc, mail, broken)
        name = doc.get(("name",))
        if isinstance(name, str) and name in first_seen:
            found.append(
                doc.error(
                    ("name",),
                    f"playbook name {name!r} is used twice",
                    f"first defined at {first_seen[name]}; rename one of them",
                )
            )
        elif isinstance(name, str):
            first_seen[name] = f"{path}:{doc.at(('name',))[0]}"
        errors += found
        if not found:
            playbooks[name] = _playbook(doc)
    errors += _check_launches(playbooks)
    raise_if_any(errors)
    return playbooks


def _check_launches(playbooks: dict[str, Playbook]) -> list[FileError]:
    """A `launch_playbook` step must name a playbook that exists (another file may define it)."""
    found = []
    for playbook in playbooks.values():
        for step in playbook.steps:
            target = step.params.get("playbook") if step.action == "launch_playbook" else None
            if isinstance(target, str) and "{" not in target and target not in playbooks:
                doc = read_yaml(playbook.file)
                found.append(
                    doc.error(
                        ("steps", step.position, "with", "playbook"),
                        f"no playbook {target!r}",
                        suggest(target, sorted(playbooks), "playbooks"),
                    )
                )
    return found


def _check(doc: YamlFile, mail: set[str], broken: set[int]) -> list[FileError]:
    """Checks across steps; a step with schema errors (index in `broken`) only lends its name."""
    found: list[FileError] = []
    steps: dict[str, dict] = {}  # the steps above the one being checked
    ancestors: dict[str, set[str]] = {}  # step -> every step it waits for, directly or not
    previous = None
    for index, item in enumerate(doc.data["steps"]):
        path = ("steps", index)
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in steps:
            found.append(
                doc.error(
                    path + ("name",),
                    f"step name {name!r} is used twice in this playbook",
                    f"first defined on line {doc.at(('steps', steps[name]['_index'], 'name'))[0]}",
                )
            )
            continue
        after = item.get("after")
        after = after if isinstance(after, list) else None
        waits_for = {s for s in after if isinstance(s, str)} if after is not None else {previous} - {None}
        ancestors[name] = set().union(*(ancestors[s] | {s} for s in waits_for if s in steps))
        if index not in broken:
            found += _check_kind(doc, path, item, mail)
            for number, other in enumerate(after or []):
                if other not in steps:
                    hint = (
                        "steps can only wait for steps above them"
                        if other == name or other in _names(doc)
                        else suggest(other, list(steps), "steps above")
                    )
                    found.append(
                        doc.error(path + ("after", number), f"`after` names {other!r}, not a step above", hint)
                    )
            if "step" in item.get("when", {}):
                found += _check_when(doc, path, item["when"], steps, ancestors[name])
            for fact in item.get("when", {}).get("account", {}):
                if fact not in ACCOUNT_FACTS:
                    found.append(
                        doc.error(
                            path + ("when", "account", fact),
                            f"unknown account fact {fact!r}",
                            suggest(fact, ACCOUNT_FACTS, "account facts"),
                        )
                    )
        steps[name] = {**item, "_index": index, "_broken": index in broken}
        previous = name
    return found


def _check_kind(doc: YamlFile, path: tuple, item: dict, mail: set[str]) -> list[FileError]:
    if ("task" in item) == ("action" in item):
        message = "has both `task:` and `action:`" if "task" in item else "needs `task:` or `action:`"
        return [
            doc.error(
                path + (("action",) if "task" in item else ()),
                f"step {item['name']!r} {message}",
                "a step is either a task for a person or one automated action",
            )
        ]
    if "task" in item:
        found = [
            doc.error(path + (key,), f"`{key}:` is only for action steps", "remove it or use `action:`")
            for key in ("with", "timeout")
            if key in item
        ]
        return found + _check_task(doc, path + ("task",), item["task"])
    action = registry.get(item["action"])
    if action is None:
        return [
            doc.error(
                path + ("action",),
                f"unknown action type {item['action']!r}",
                suggest(item["action"], registry.names(), "action types"),
            )
        ]
    params = item.get("with", {})
    found = schema_errors(doc, action.params_schema, params, path + ("with",))
    found += _check_templates(doc, path + ("with",), params)
    template = params.get("template")
    if action.name == "send_email" and isinstance(template, str) and "{" not in template and template not in mail:
        found.append(
            doc.error(
                path + ("with", "template"),
                f"no e-mail template {template!r}",
                f"add {MAIL_DIR}/{template}.txt; " + suggest(template, sorted(mail), "templates"),
            )
        )
    return found


def _check_task(doc: YamlFile, path: tuple, task: dict) -> list[FileError]:
    found = _check_templates(doc, path, {key: task[key] for key in ("title", "instructions") if key in task})
    if "due_in_days" in task and "due_in_business_days" in task:
        found.append(
            doc.error(
                path + ("due_in_business_days",), "both `due_in_days` and `due_in_business_days`", "keep one of them"
            )
        )
    assignee = task.get("assignee", "csm")
    if assignee not in ASSIGNEE_ROLES and not _EMAIL.match(assignee):
        found.append(
            doc.error(
                path + ("assignee",),
                f"unknown assignee {assignee!r}",
                suggest(assignee, ASSIGNEE_ROLES, "use a role") + ", or a person's e-mail address",
            )
        )
    return found


def _check_templates(doc: YamlFile, path: tuple, value: Any) -> list[FileError]:
    if isinstance(value, str):
        error = template_error(doc, path, value, TEMPLATE_VARIABLES)
        return [error] if error else []
    if isinstance(value, dict):
        return [e for key, item in value.items() for e in _check_templates(doc, path + (key,), item)]
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _check_templates(doc, path + (i,), item)]
    return []


def _check_when(doc: YamlFile, path: tuple, when: dict, steps: dict, ancestors: set[str]) -> list[FileError]:
    target = steps.get(when["step"])
    if target is None or "task" not in target:
        tasks = [name for name, step in steps.items() if "task" in step]
        message = (
            f"`when` names {when['step']!r}, which is not a task"
            if target
            else f"`when` names {when['step']!r}, not a step above"
        )
        return [doc.error(path + ("when", "step"), message, suggest(when["step"], tasks, "task steps above"))]
    if target["_broken"]:
        return []  # its own errors are reported; its outcomes cannot be trusted
    if when["step"] not in ancestors:
        return [
            doc.error(
                path + ("when", "step"),
                f"this step can start before {when['step']!r} has an outcome",
                f"let it wait for {when['step']!r}: remove `after:` or add the step to it",
            )
        ]
    allowed = target["task"].get("outcomes", ["done"])
    if isinstance(when["outcome"], str):
        outcomes = [(path + ("when", "outcome"), when["outcome"])]
    else:
        outcomes = [(path + ("when", "outcome", i), outcome) for i, outcome in enumerate(when["outcome"])]
    return [
        doc.error(where, f"{when['step']!r} has no outcome {outcome!r}", suggest(outcome, allowed, "its outcomes"))
        for where, outcome in outcomes
        if outcome not in allowed
    ]


def _names(doc: YamlFile) -> set[Any]:
    """The steps' names as written (the schema reports a missing name or one that is not text)."""
    return {step.get("name") for step in doc.data["steps"] if isinstance(step, dict)}


def _check_mail(folder: str, errors: list[FileError]) -> set[str]:
    """Check every e-mail template; returns the names of those that exist."""
    if not os.path.isdir(folder):
        return set()
    names = set()
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".txt"):
            continue
        names.add(file[:-4])
        path = os.path.join(folder, file)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            errors.append(FileError(path, 1, 1, "not UTF-8 text", "save the file as UTF-8"))
            continue
        subject, _, rest = text.partition("\n")
        if not subject.startswith("Subject:"):
            errors.append(
                FileError(
                    path,
                    1,
                    1,
                    "the first line must be the subject",
                    "start the file with `Subject: ...`, then a blank line, then the body",
                )
            )
            continue
        if rest.split("\n", 1)[0].strip():
            errors.append(
                FileError(
                    path, 2, 1, "the second line must be blank", "leave one empty line between the subject and the body"
                )
            )
            continue
        for source, first_line in ((subject[len("Subject:") :], 1), (rest.partition("\n")[2], 3)):
            error = template_error(None, (), source, MAIL_VARIABLES, file=path, first_line=first_line)
            if error:
                errors.append(error)
    return names


def _playbook(doc: YamlFile) -> Playbook:
    data = doc.data
    return Playbook(
        name=data["name"],
        steps=tuple(_step(index, item) for index, item in enumerate(data["steps"])),
        version=content_hash([doc.path]),
        description=data.get("description", "").strip(),
        file=doc.path,
        concurrent=data.get("concurrent", False),
        close_on_health=tuple(s.lower() for s in (data.get("close_when") or {}).get("health", ())),
        close_note=((data.get("close_when") or {}).get("note") or "").strip(),
    )


def _when(when: dict) -> When:
    outcome = when.get("outcome", ())
    account = tuple(
        (fact, tuple(value) if isinstance(value, list) else (value,))
        for fact, value in (when.get("account") or {}).items()
    )
    return When(when.get("step"), (outcome,) if isinstance(outcome, str) else tuple(outcome), account)


def _step(index: int, item: dict) -> Step:
    task = item.get("task")
    when = item.get("when")
    return Step(
        name=item["name"],
        position=index,
        task=TaskSpec(
            title=task["title"],
            instructions=task.get("instructions", ""),
            assignee=task.get("assignee", "csm"),
            priority=task.get("priority", "normal"),
            due_in_days=int(task["due_in_days"]) if task.get("due_in_days") is not None else None,
            outcomes=tuple(task.get("outcomes", ("done",))),
            due_in_business_days=int(task["due_in_business_days"])
            if task.get("due_in_business_days") is not None
            else None,
        )
        if task
        else None,
        action=item.get("action"),
        params=copy.deepcopy(item.get("with", {})) if not task else {},
        after=tuple(item["after"]) if item.get("after") is not None else None,
        when=_when(when) if when else None,
        timeout=item.get("timeout"),
    )

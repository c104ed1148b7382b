"""Checking rule and playbook files: YAML with line numbers, closed schemas, templates.

Every problem becomes a `FileError` that names the file, the line, the column and the fix,
so that a CS ops person editing YAML can act on the message without reading Python.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import yaml
from jinja2 import TemplateSyntaxError, meta

from app.templating import ENVIRONMENT

Path = tuple  # keys (str) and list indexes (int) from the document root


@dataclass(frozen=True)
class FileError:
    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    # Where in the data the problem is; lets a loader skip checks on broken parts.
    path: Path = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class FileErrors(Exception):
    """All the problems found in a set of files; str() gives one `file:line:col` line each."""

    def __init__(self, errors: Iterable[FileError]):
        # Repeats dropped, then in reading order: file by file, line by line.
        self.errors = sorted(dict.fromkeys(errors), key=lambda error: (error.file, error.line, error.column))
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def raise_if_any(errors: list[FileError]) -> None:
    if errors:
        raise FileErrors(errors)


def suggest(word: Any, choices: Iterable[str], known: str = "allowed") -> str:
    """A hint naming the closest choice, else listing them all."""
    choices = [str(choice) for choice in choices]
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    listing = f"{known}: {', '.join(choices)}" if choices else f"nothing is {known}"
    return f"did you mean {close[0]!r}? {listing}" if close else listing


def content_hash(paths: Iterable[str]) -> str:
    """Version of a set of files: sha256 over sorted names and bytes, 12 hex digits."""
    digest = hashlib.sha256()
    for name, path in sorted((os.path.basename(path), path) for path in paths):
        with open(path, "rb") as handle:
            data = handle.read()
        # Lengths as separators, so that moving bytes between files changes the hash.
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:12]


def yaml_files(folder: str) -> list[str]:
    """The *.yml / *.yaml files directly in `folder`, sorted; FileErrors if it is missing."""
    if not os.path.isdir(folder):
        raise FileErrors(
            [
                FileError(
                    folder, 1, 1, "folder not found", "create it or point the setting (RULES_DIR / PLAYBOOKS_DIR) at it"
                )
            ]
        )
    names = sorted(n for n in os.listdir(folder) if n.endswith((".yml", ".yaml")))
    return [os.path.join(folder, name) for name in names if os.path.isfile(os.path.join(folder, name))]


# --- YAML with positions ------------------------------------------------------------------


class _PyLoader(yaml.SafeLoader):
    """SafeLoader reading YAML 1.2 booleans and keeping dates as strings.

    YAML 1.1 turns `on:` (our rule trigger key), `yes`, `no` and `off` into booleans, and
    `2027-03-31` into a date that is not JSON-native. Neither is what a rule author means.
    """


# The same with libyaml's parser when present: the pure-Python one made a reload take
# ~300 ms. Its syntax errors say less, so a file that does not parse is read again by
# _PyLoader for the message.
_Loader: type[yaml.SafeLoader | yaml.CSafeLoader] = (
    type("_Loader", (yaml.CSafeLoader,), {}) if getattr(yaml, "__with_libyaml__", False) else _PyLoader
)

_BOOL, _TIMESTAMP = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"
_LOADERS: set[type[yaml.SafeLoader | yaml.CSafeLoader]] = {_PyLoader, _Loader}  # one class without libyaml
for _cls in _LOADERS:
    _cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass
class YamlFile:
    """A parsed file with the position of every mapping key and list item."""

    path: str
    data: Any
    keys: dict[Path, tuple[int, int]]  # 1-based (line, column) of a key or a list item
    scalars: dict[Path, tuple[int, str]]  # 1-based line and style ('|', '>', '"', "'", '') of a value
    problems: list[FileError] = field(default_factory=list)  # e.g. duplicate keys
    columns: dict[Path, int] = field(default_factory=dict)  # 1-based column where a scalar value starts

    def at(self, path: Path) -> tuple[int, int]:
        """Position of `path`, or of its nearest recorded parent."""
        path = tuple(path)
        while path and path not in self.keys:
            path = path[:-1]
        return self.keys.get(path, (1, 1))

    def error(self, path: Path, message: str, hint: str = "") -> FileError:
        line, column = self.at(path)
        return FileError(self.path, line, column, message, hint, tuple(path))

    def get(self, path: Path, default: Any = None) -> Any:
        value = self.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return default
        return value


def read_yaml(path: str) -> YamlFile:
    """Parse one YAML file; a syntax error raises FileErrors with the line it happened on."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise FileErrors([FileError(path, 1, 1, f"not UTF-8 text ({exc.reason})", "save the file as UTF-8")]) from None
    try:
        return _parse(_Loader, path, text)
    except yaml.MarkedYAMLError as exc:
        if _Loader is _PyLoader:
            raise FileErrors([_syntax_error(path, exc)]) from None
        fast_error = exc  # `exc` is unbound after its except block; the last line needs it
    try:
        return _parse(_PyLoader, path, text)
    except yaml.MarkedYAMLError as exc:
        raise FileErrors([_syntax_error(path, exc)]) from None
    except yaml.YAMLError as exc:
        raise FileErrors([FileError(path, 1, 1, f"YAML error: {exc}", "check the file is valid YAML")]) from None
    raise FileErrors([_syntax_error(path, fast_error)])  # only libyaml refused it


def read_all(files: list[str], errors: list[FileError]) -> Iterator[YamlFile]:
    """Each file parsed, its problems (syntax, duplicate keys) added to `errors`; a file that does
    not parse is left out, so one run reports the problems of every file. An empty file is {}."""
    for path in files:
        try:
            doc = read_yaml(path)
        except FileErrors as exc:
            errors.extend(exc.errors)
            continue
        if doc.data is None:
            doc.data = {}
        errors.extend(doc.problems)
        yield doc


def _parse(loader_class, path: str, text: str) -> YamlFile:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        doc = YamlFile(path, None, {(): (1, 1)}, {})
        if node is not None:
            _record(loader, node, (), doc, set())
            doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError:
        raise
    except yaml.YAMLError as exc:
        raise FileErrors([FileError(path, 1, 1, f"YAML error: {exc}", "check the file is valid YAML")]) from None
    finally:
        loader.dispose()


def _record(
    loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.Node, path: Path, doc: YamlFile, active: set
) -> None:
    # Walked before construction: construction rewrites merge keys (<<) in place.
    if id(node) in active:  # a recursive alias; nothing more to record
        return
    active.add(id(node))
    if path == ():
        doc.keys[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node)
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key in first_seen:
                doc.problems.append(
                    FileError(
                        doc.path,
                        line,
                        column,
                        f"duplicate key {key!r}",
                        f"it is already set on line {first_seen[key]}; keep one",
                        path,
                    )
                )
            first_seen.setdefault(key, line)
            doc.keys[path + (key,)] = (line, column)
            _record(loader, value_node, path + (key,), doc, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.keys[path + (index,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _record(loader, item, path + (index,), doc, active)
    else:
        doc.scalars[path] = (node.start_mark.line + 1, node.style or "")
        doc.columns[path] = node.start_mark.column + 1
    active.discard(id(node))


def _syntax_error(path: str, exc: yaml.MarkedYAMLError) -> FileError:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}" + (f" ({exc.context})" if exc.context else "")
    if "\\t" in problem:
        hint = "indent with spaces, not tabs"
    elif "unhashable" in problem:
        hint = 'quote a value that starts with "{{", e.g. title: "{{ account.name }}"'
    elif "mapping values are not allowed" in problem:
        hint = "quote a value that contains ': ', or fix the indentation of this line"
    elif "expected a single document" in (exc.context or "") + problem:
        hint = "one file holds one document: remove the extra '---'"
    else:
        hint = "check the indentation and quoting on this line and the one above"
    return FileError(path, line, column, message, hint)


# --- closed JSON schemas ------------------------------------------------------------------

_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    # Keyed by content; built from the schema as given, so hints list keys in its order.
    key = json.dumps(schema, sort_keys=True)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = jsonschema.Draft202012Validator(schema)
    return _VALIDATORS[key]


def schema_errors(doc: YamlFile, schema: dict, instance: Any = ..., base: Path = ()) -> list[FileError]:
    """Validate `instance` (default: the whole document) at `base` against a JSON schema."""
    instance = doc.data if instance is ... else instance
    found: list[FileError] = []
    for error in _validator(schema).iter_errors(instance):
        found.extend(_describe(doc, error, tuple(base)))
    return sorted(dict.fromkeys(found), key=lambda error: (error.line, error.column))


def _describe(doc: YamlFile, error: jsonschema.ValidationError, base: Path) -> list[FileError]:
    path = base + tuple(error.absolute_path)
    where = _label(path)
    value, schema, kind = error.instance, error.schema, error.validator
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        extra = [key for key in value if key not in allowed]
        return [
            doc.error(
                path + (key,),
                f"unknown key {key!r}" + (f" in {where}" if where else ""),
                suggest(key, allowed, "allowed keys"),
            )
            for key in extra
        ]
    if kind == "required" and isinstance(value, dict):
        missing = [key for key in error.validator_value if key not in value]
        return [
            doc.error(path, f"{where or 'the file'} is missing the required key {key!r}", f"add `{key}:`")
            for key in missing
        ]
    if kind in ("anyOf", "oneOf"):
        # Errors inside the branch whose type fits say more than "not valid under any".
        inner = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
        if inner:
            return [item for e in inner for item in _describe(doc, e, base)]
        expected = " or ".join(_TYPE_NAMES.get(branch.get("type"), "?") for branch in error.validator_value)
        return [doc.error(path, f"{where} must be {expected}, not {_show(value)}")]
    if kind == "type":
        types = [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        return [
            doc.error(
                path, f"{where or 'the file'} must be {expected}, not {_show(value)}", schema.get("description", "")
            )
        ]
    if kind == "enum":
        return [
            doc.error(
                path,
                f"{where} has an unknown value {_show(value)}",
                suggest(value, error.validator_value, "allowed values"),
            )
        ]
    if kind in ("minItems", "minLength") and error.validator_value == 1:
        return [doc.error(path, f"{where} must not be empty")]
    if kind == "minItems":
        return [doc.error(path, f"{where} needs at least {error.validator_value} items")]
    if kind == "uniqueItems":
        return [doc.error(path, f"{where} lists the same value twice", "remove the repeat")]
    if kind == "minimum":
        return [doc.error(path, f"{where} must be at least {error.validator_value}, not {_show(value)}")]
    if kind == "pattern":
        return [
            doc.error(
                path,
                f"{where} {_show(value)} is not allowed here",
                schema.get("description") or f"it must match {error.validator_value}",
            )
        ]
    if kind in ("minProperties", "maxProperties"):
        limit = "at least" if kind == "minProperties" else "at most"
        return [
            doc.error(
                path,
                f"{where} takes {limit} {error.validator_value} of its keys",
                "keys: " + ", ".join(schema.get("properties", {})),
            )
        ]
    return [doc.error(path, f"{where}: {error.message}" if where else error.message)]


def _label(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# --- templates ----------------------------------------------------------------------------

_SANDBOX = ENVIRONMENT  # the environment templates render with, so a file that loads renders


def template_error(
    doc: YamlFile | None,
    path: Path,
    source: str,
    variables: Iterable[str] | None = None,
    file: str = "",
    first_line: int = 1,
) -> FileError | None:
    """Compile `source`; a syntax error (or a name outside `variables`) at its line in the file.

    The template is the scalar at `path` in `doc`, or text of `file` starting at `first_line`.
    """
    try:
        tree = _SANDBOX.parse(source)
        _SANDBOX.compile(tree)
    except TemplateSyntaxError as exc:
        return _template_problem(
            doc,
            path,
            file,
            first_line,
            exc.lineno or 1,
            f"template error: {exc.message}",
            "check the {{ }} and {% %} tags on this line",
        )
    if variables is not None:
        allowed = sorted(set(variables))
        for name in sorted(meta.find_undeclared_variables(tree) - set(_SANDBOX.globals) - set(allowed)):
            return _template_problem(
                doc,
                path,
                file,
                first_line,
                _line_of(source, name),
                f"template uses unknown variable {name!r}",
                suggest(name, allowed, "templates here see"),
            )
    return None


def _template_problem(doc, path, file, first_line, lineno, message, hint) -> FileError:
    if doc is None:
        return FileError(file, first_line + lineno - 1, 1, message, hint, tuple(path))
    line, style = doc.scalars.get(tuple(path), (doc.at(path)[0], ""))
    # A block scalar (| or >) starts on the line after its indicator.
    line = line + lineno if style in ("|", ">") else line + lineno - 1
    return FileError(doc.path, line, doc.at(path)[1], message, hint, tuple(path))


def _line_of(source: str, name: str) -> int:
    match = re.search(rf"\b{re.escape(name)}\b", source)
    return source.count("\n", 0, match.start()) + 1 if match else 1

"""The condition language: one line a CS ops person reads, parsed into an AST.

    metrics.active_users_change_pct_30d <= -20 and account.segment in ["enterprise", "mid-market"]

Operators: `== != < <= > >=`, `in [..]`, `not in [..]`, `contains`, `exists`, `not exists`,
`between A and B`, `matches "regex"` (Python `re.search`), `and`, `or`, `not`, parentheses,
and `all(a, b, ...)` / `any(a, b, ...)`. A field that is missing or null never compares
true (`!=` and `not in` do hold for it), like in the engine.

The AST is compiled to durable-rules JSON (`to_engine`) and also evaluated in Python
(`evaluate`): `contains` and `matches` only in Python (durable's `$mt` quirks), and every
explanation of why a rule did not fire comes from `evaluate`, which the tests keep in step
with the engine.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyparsing as pp

pp.ParserElement.enable_packrat()

SEP = "__"
STATUS_FIELDS = ("to", "from", "crm_from", "account.health")

# --- AST ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cmp:
    path: str
    op: str  # == != < <= > >=
    value: Any
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class In:
    path: str
    values: tuple
    negated: bool = False
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class Exists:
    path: str
    negated: bool = False
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class Between:
    path: str
    low: float
    high: float
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class Contains:
    path: str
    value: Any
    negated: bool = False
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class Matches:
    path: str
    pattern: str
    negated: bool = False
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class And:
    items: tuple
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class Or:
    items: tuple
    loc: int = 0
    text: str = ""


@dataclass(frozen=True)
class Not:
    item: Any
    loc: int = 0
    text: str = ""


Leaf = Cmp | In | Exists | Between | Contains | Matches
Node = Leaf | And | Or | Not
PREDICATES = (Cmp, In, Exists, Between, Contains, Matches)


class ConditionError(ValueError):
    """A condition that does not parse or does not check; `loc` is the 0-based offset in the text."""

    def __init__(self, message: str, loc: int = 0, hint: str = ""):
        super().__init__(message)
        self.message, self.loc, self.hint = message, loc, hint


# --- grammar --------------------------------------------------------------------------------

_KW = {
    name: pp.Keyword(name)
    for name in (
        "and",
        "or",
        "not",
        "in",
        "contains",
        "exists",
        "between",
        "matches",
        "all",
        "any",
        "true",
        "false",
        "null",
    )
}
_KEYWORDS = pp.MatchFirst(list(_KW.values()))
_IDENT = pp.Regex(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = pp.Combine(~_KEYWORDS + _IDENT + pp.ZeroOrMore("." + _IDENT)).set_name("a field such as account.segment")
_NUMBER = pp.Regex(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?").set_name("a number")
_NUMBER.set_parse_action(lambda t: float(t[0]) if re.search(r"[.eE]", t[0]) else int(t[0]))
_STRING = (pp.QuotedString('"', esc_char="\\") | pp.QuotedString("'", esc_char="\\")).set_name("a quoted text")
_CONST = (
    _KW["true"].copy().set_parse_action(lambda: True)
    | _KW["false"].copy().set_parse_action(lambda: False)
    | _KW["null"].copy().set_parse_action(lambda: [None])
)
_LITERAL = (_NUMBER | _STRING | _CONST).set_name("a value (number, quoted text, true, false, null)")
_LIST = pp.Group(pp.Suppress("[") + pp.Optional(pp.DelimitedList(_LITERAL)) + pp.Suppress("]")).set_name("a list [..]")
_NOT = pp.Optional(_KW["not"])("negated")


def _located(expr, build):
    def action(s, loc, tokens):
        start, inner, end = tokens["locn_start"], tokens["value"], tokens["locn_end"]
        return build(inner, start, s[start:end].strip())

    return pp.Located(expr).set_parse_action(action)


_cmp = _located(
    _PATH("path") + pp.one_of("== != <= >= < >")("op") + _LITERAL("value"),
    lambda t, loc, text: Cmp(t["path"], t["op"], t["value"], loc, text),
)
_in = _located(
    _PATH("path") + _NOT + _KW["in"] + _LIST("values"),
    lambda t, loc, text: In(t["path"], tuple(t["values"]), bool(t.get("negated")), loc, text),
)
_exists = _located(
    _PATH("path") + _NOT + _KW["exists"], lambda t, loc, text: Exists(t["path"], bool(t.get("negated")), loc, text)
)
_between = _located(
    _PATH("path") + _KW["between"] + _NUMBER("low") + _KW["and"] + _NUMBER("high"),
    lambda t, loc, text: Between(t["path"], t["low"], t["high"], loc, text),
)
_contains = _located(
    _PATH("path") + _NOT + _KW["contains"] + _LITERAL("value"),
    lambda t, loc, text: Contains(t["path"], t["value"], bool(t.get("negated")), loc, text),
)
_matches = _located(
    _PATH("path") + _NOT + _KW["matches"] + _STRING("pattern"),
    lambda t, loc, text: Matches(t["path"], t["pattern"], bool(t.get("negated")), loc, text),
)
_PREDICATE = (_between | _in | _exists | _contains | _matches | _cmp).set_name(
    'a test such as account.plan == "premier"'
)

_EXPR = pp.Forward().set_name("a condition")
_group = (
    (_KW["all"] | _KW["any"])("kind") + pp.Suppress("(") + pp.Group(pp.DelimitedList(_EXPR))("items") + pp.Suppress(")")
)
_func = _located(_group, lambda t, loc, text: (And if t["kind"] == "all" else Or)(tuple(t["items"]), loc, text))
_ATOM = _func | (pp.Suppress("(") + _EXPR + pp.Suppress(")")) | _PREDICATE
_NOT_EXPR = pp.Forward()
_NOT_EXPR <<= _located(_KW["not"] + _NOT_EXPR("item"), lambda t, loc, text: Not(t["item"], loc, text)) | _ATOM
_AND_EXPR = _located(
    _NOT_EXPR + pp.ZeroOrMore(_KW["and"].suppress() + _NOT_EXPR),
    lambda t, loc, text: t[0] if len(t) == 1 else And(tuple(t), loc, text),
)
_OR_EXPR = _located(
    _AND_EXPR + pp.ZeroOrMore(_KW["or"].suppress() + _AND_EXPR),
    lambda t, loc, text: t[0] if len(t) == 1 else Or(tuple(t), loc, text),
)
_EXPR <<= _OR_EXPR
_GRAMMAR = _EXPR + pp.StringEnd()

OPERATORS_HINT = (
    'write e.g. metrics.logins_7d < 5 and account.segment in ["smb"]; operators: == != < <= > >= '
    'in, not in, contains, exists, not exists, between A and B, matches "regex", and, or, not, '
    "all(..), any(..)"
)


def parse(text: str) -> Node:
    """The AST of one condition; ConditionError (with the offset) if it does not parse."""
    return _parse(text)


@functools.lru_cache(maxsize=4096)  # ASTs are immutable; a reload re-reads mostly the same lines
def _parse(text: str) -> Node:
    if not text or not text.strip():
        raise ConditionError("the condition is empty", 0, OPERATORS_HINT)
    try:
        return _GRAMMAR.parse_string(text, parse_all=True)[0]
    except pp.ParseBaseException as exc:
        loc = exc.loc
        rest = text[loc:]
        if re.match(r"=(?!=)", rest) or re.match(r"\s*=(?!=)", rest):
            hint = "compare with ==, not ="
        elif re.match(r"\s*(&&|\|\|)", rest) or re.match(r"\s*!(?!=)", rest):
            hint = "use the words and, or, not"
        elif re.match(r"\s*[A-Za-z_]", rest) and re.search(r"(==|!=|<=|>=|<|>|contains|\[|,)\s*$", text[:loc]):
            hint = 'text values need quotes, e.g. account.segment == "enterprise"'
        else:
            hint = OPERATORS_HINT
        found = repr(rest[:20]) if rest else "the end of the condition"
        raise ConditionError(f"cannot read the condition at {found}", loc, hint) from None


# --- walking the tree -----------------------------------------------------------------------


def predicates(node: Node) -> Iterator[Leaf]:
    """Every predicate (leaf test) in the tree, left to right."""
    if isinstance(node, (And, Or)):
        for item in node.items:
            yield from predicates(item)
    elif isinstance(node, Not):
        yield from predicates(node.item)
    else:
        yield node


def conjuncts(node: Node) -> list[Node]:
    """The top-level `and` parts (one each for `explain`)."""
    if isinstance(node, And):
        return [part for item in node.items for part in conjuncts(item)]
    return [node]


def engine_compatible(node: Node) -> bool:
    """Whether the engine can match it: `contains` and `matches` are evaluated in Python."""
    return not any(isinstance(leaf, (Contains, Matches)) for leaf in predicates(node))


def field(path: str) -> str:
    return path.replace(".", SEP)


def _norm(path: str, value: Any) -> Any:
    return value.lower() if path in STATUS_FIELDS and isinstance(value, str) else value


# --- to durable-rules JSON ------------------------------------------------------------------


def _missing(key: str) -> dict:
    return {"$nex": {key: 1}}


def _or(items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {"$or": items}


def _and(items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {"$and": items}


_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_INVERSE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _compare(key: str, op: str, value: Any) -> dict:
    """A test that, like the Python evaluator, never holds on a missing field (except `!=`)."""
    if value is None:  # null is missing: == null is "does not exist"
        return {"$nex": {key: 1}} if op == "==" else {"$ex": {key: 1}}
    if op == "==":
        return {key: value}
    if op == "!=":
        return _or([_missing(key), {"$neq": {key: value}}])
    return {_OPS[op]: {key: value}}


def to_engine(node: Node, negate: bool = False) -> dict:
    """durable-rules JSON for `node` (negations pushed down to the leaves)."""
    if isinstance(node, Not):
        return to_engine(node.item, not negate)
    if isinstance(node, (And, Or)):
        parts = [to_engine(item, negate) for item in node.items]
        return _and(parts) if isinstance(node, And) != negate else _or(parts)
    key = field(node.path)
    if isinstance(node, Cmp):
        value = _norm(node.path, node.value)
        if not negate:
            return _compare(key, node.op, value)
        if node.op in ("==", "!="):
            return _compare(key, _INVERSE[node.op], value)
        # not (x < 5) holds for a missing x, like in Python
        return _or([_missing(key), _compare(key, _INVERSE[node.op], value)])
    if isinstance(node, In):
        values = [_norm(node.path, v) for v in node.values]
        concrete = [v for v in values if v is not None]
        has_null = len(concrete) != len(values)
        if node.negated == negate:  # "in"
            tests = [{key: v} for v in concrete] + ([_missing(key)] if has_null else [])
            return _or(tests) if tests else {"$and": [{"$ex": {key: 1}}, _missing(key)]}
        if not concrete:  # "not in [null]" or "not in []"
            return {"$ex": {key: 1}} if has_null else {"$or": [{"$ex": {key: 1}}, _missing(key)]}
        differs = _and([{"$neq": {key: v}} for v in concrete])
        return differs if has_null else _or([_missing(key), differs])
    if isinstance(node, Exists):
        return {"$nex" if node.negated != negate else "$ex": {key: 1}}
    if isinstance(node, Between):
        if not negate:
            return _and([{"$gte": {key: node.low}}, {"$lte": {key: node.high}}])
        return _or([_missing(key), {"$lt": {key: node.low}}, {"$gt": {key: node.high}}])
    raise ValueError(f"{node.__class__.__name__} is evaluated in Python, not in the engine")


# --- evaluating in Python -------------------------------------------------------------------

_MISSING = object()


def lookup(facts: dict, path: str) -> Any:
    """The value at a dotted path, None when missing; statuses lower-case."""
    value: Any = facts
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return _norm(path, value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, (bool, int, float)) and isinstance(b, (bool, int, float)):
        return a == b  # like the engine: true == 1
    return type(a) is type(b) and a == b


def _scalar(value: Any) -> Any:
    # The engine sees JSON scalars only: lists and objects are as good as missing to it.
    return value if isinstance(value, (str, int, float, bool)) else None


def _order(a: Any, op: str, b: Any) -> bool:
    if _number(a) and _number(b) or isinstance(a, str) and isinstance(b, str):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return False


_REGEXES: dict[str, re.Pattern] = {}


def _regex(pattern: str) -> re.Pattern:
    if pattern not in _REGEXES:
        _REGEXES[pattern] = re.compile(pattern)
    return _REGEXES[pattern]


def evaluate(node: Node, facts: dict) -> bool:
    """Whether the condition holds for the (nested) facts."""
    if isinstance(node, And):
        return all(evaluate(item, facts) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, facts) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, facts)
    raw = lookup(facts, node.path)
    if isinstance(node, Contains):
        found = _contains_value(raw, node.value)
        return found != node.negated
    if isinstance(node, Matches):
        found = isinstance(raw, str) and _regex(node.pattern).search(raw) is not None
        return found != node.negated
    value = _scalar(raw)
    if isinstance(node, Exists):
        return (value is not None) != node.negated
    if isinstance(node, Between):
        return _order(value, ">=", node.low) and _order(value, "<=", node.high)
    if isinstance(node, In):
        found = any(_equal(value, _norm(node.path, v)) for v in node.values)
        return found != node.negated
    expected = _norm(node.path, node.value)
    if node.op == "==":
        return _equal(value, expected)
    if node.op == "!=":
        return not _equal(value, expected)
    return value is not None and _order(value, node.op, expected)


def _contains_value(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return isinstance(needle, str) and needle.lower() in haystack.lower()
    if isinstance(haystack, list):
        return any(_equal(item, needle) for item in haystack)
    if isinstance(haystack, dict):  # e.g. features: {name: uses}
        return needle in haystack
    return False


def values_of(node: Node, facts: dict) -> dict[str, Any]:
    """The facts' values of every field the condition reads (for explanations)."""
    return {leaf.path: lookup(facts, leaf.path) for leaf in predicates(node)}

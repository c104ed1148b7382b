"""The rule language: conditions parsed, type-checked, compiled to the engine, and explained
(no app, no database). The engine and the Python evaluator must agree on every condition."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from app.filecheck import FileErrors
from app.matching import compiler
from app.matching import conditions as c
from app.matching.explain import explain, explain_rule
from app.matching.loader import failing_rule_tests, load_rule_tests, load_rules
from app.matching.matcher import Matcher
from app.matching.model import Rule, RuleSet
from app.playbooks.loader import load_playbooks
from app.playbooks.model import Playbook
from tests.helpers import ROOT, write_in

PLAYBOOKS = {
    name: Playbook(name=name, steps=(), version="test")
    for name in ("usage-decline", "red-action-plan", "monthly-check-in")
}


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(FileErrors) as caught:
        load_rules(str(folder), PLAYBOOKS)
    return [str(error) for error in caught.value.errors]


# --- parsing --------------------------------------------------------------------------------


def test_the_example_line_parses_into_an_ast():
    node = c.parse('metrics.active_users_change_pct_30d <= -20 and account.segment in ["enterprise", "mid-market"]')
    assert isinstance(node, c.And)
    first, second = node.items
    assert (first.path, first.op, first.value) == ("metrics.active_users_change_pct_30d", "<=", -20)
    assert (second.path, second.values, second.negated) == ("account.segment", ("enterprise", "mid-market"), False)
    assert second.text == 'account.segment in ["enterprise", "mid-market"]' and second.loc == 47


@pytest.mark.parametrize(
    "text, kind",
    [
        ("a.b exists", c.Exists),
        ("a.b not exists", c.Exists),
        ("a.b between 1 and 5", c.Between),
        ('a.b contains "x"', c.Contains),
        ('a.b matches "^x"', c.Matches),
        ('a.b not in ["x"]', c.In),
        ("not a.b == 1", c.Not),
        ("all(a == 1, b == 2)", c.And),
        ("any(a == 1, b == 2)", c.Or),
        ("(a == 1 or b == 2) and c == 3", c.And),
        ("a == 1 or b == 2 and c == 3", c.Or),
    ],
)
def test_every_operator_parses(text, kind):
    assert isinstance(c.parse(text), kind)


@pytest.mark.parametrize(
    "text, loc, hint",
    [
        ("a = 1", 2, "compare with =="),
        ("a == enterprise", 5, "need quotes"),
        ("a == 1 && b == 2", 7, "and, or, not"),
        ("a ==", 4, "operators"),
        ("", 0, "operators"),
    ],
)
def test_parse_errors_point_at_the_character(text, loc, hint):
    with pytest.raises(c.ConditionError) as caught:
        c.parse(text)
    assert caught.value.loc == loc and hint in caught.value.hint


# --- engine and Python agree ----------------------------------------------------------------

CONDITIONS = [
    "m.x <= -20",
    "m.x != 3",
    "not m.x < 5",
    "m.x between 1 and 5",
    "not m.x between 1 and 5",
    'a.s in ["e", "m"]',
    'a.s not in ["e", "m"]',
    'a.s not in ["e", null]',
    'a.s in ["e", null]',
    "m.x exists",
    "m.x not exists",
    'not (a.s == "e" or m.x > 2)',
    'any(a.s == "e", all(m.x >= 1, m.y exists))',
    'a.s != "e"',
    "m.x == null",
    "m.x != null",
    "a.b == true",
    "a.b != false",
    'not a.s in ["e"]',
    "m.x > 1.5",
    'to == "RED"',
    "not not m.x == 1",
    'a.s == "e" and m.x == 2',
    'not (a.s != "e" and m.y == 1)',
]


def test_engine_and_python_evaluator_agree_on_well_typed_facts():
    rules = tuple(
        Rule(name=f"r{i}", playbook="p", trigger="t.x", condition=c.parse(text)) for i, text in enumerate(CONDITIONS)
    )
    matcher = Matcher(RuleSet(rules, "v"))
    wrong = []
    for x, y, s, b, to in itertools.product(
        [None, -30, -20, 0, 1, 1.5, 2, 3, 5, 6],
        [None, 1],
        [None, "e", "m", "z"],
        [None, True, False],
        [None, "Red", "green"],
    ):
        facts = {"type": "t.x", "m": {"x": x, "y": y}, "a": {"s": s, "b": b}, "to": to}
        engine = {rule.name for rule in matcher.match(facts)}
        python = {rule.name for rule in rules if c.evaluate(rule.condition, facts)}
        if engine != python:
            wrong.append((facts, engine ^ python))
    assert wrong == []


def test_contains_and_matches_are_checked_in_python_after_the_engine():
    rule = Rule(
        name="r",
        playbook="p",
        trigger="support.ticket",
        condition=c.parse(
            'event.properties.subject contains "cancel" and event.properties.severity '
            'in ["high", "urgent"] and account.name matches "^Acme"'
        ),
    )
    assert [check.node.__class__ for check in compiler.checks(rule) if not c.engine_compatible(check.node)] == [
        c.Contains,
        c.Matches,
    ]
    assert "$mt" not in str(compiler.condition(rule))  # durable's regexes are not used
    matcher = Matcher(RuleSet((rule,), "v"))

    def facts(subject, severity="high", name="Acme GmbH"):
        return {
            "type": "support.ticket",
            "account": {"name": name},
            "event": {"properties": {"subject": subject, "severity": severity}},
        }

    assert [r.name for r in matcher.match(facts("We will CANCEL the contract"))] == ["r"]
    assert matcher.match(facts("Question about invoices")) == []
    assert matcher.match(facts("cancel", severity="low")) == []
    assert matcher.match(facts("cancel", name="Globex")) == []


def test_contains_on_lists_and_feature_maps():
    assert c.evaluate(
        c.parse('event.properties.features contains "reporting"'),
        {"event": {"properties": {"features": {"reporting": 3}}}},
    )
    assert not c.evaluate(c.parse('event.properties.tags contains "vip"'), {"event": {"properties": {"tags": ["a"]}}})


# --- validation at load -------------------------------------------------------------------


def test_condition_errors_name_file_line_column_and_hint(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: r
            on: usage.daily
            if: metrics.logins_7dd < 5 and account.segment > 3 and account.plan == 3 and account.name matches "(x"
            playbook: usage-decline
          - name: s
            on: usage.daily
            if: "metrics.logins_7d = 5"
            playbook: usage-decline
          - name: t
            on: health_changed
            if: account.health == "purple" and metrics.seats between 5 and 1
            playbook: red-action-plan
    """,
    )
    errors = errors_of(tmp_path)
    assert f"{path}:4:9: condition: unknown metric 'logins_7dd' (hint: did you mean 'logins_7d'?" in "\n".join(errors)
    assert any(e.startswith(f"{path}:4:36: condition: account.segment is text") for e in errors)
    assert any(e.startswith(f"{path}:4:60: condition: account.plan is text, not 3") for e in errors)
    assert any(e.startswith(f"{path}:4:82: condition: invalid regex '(x'") for e in errors)
    assert any(e.startswith(f"{path}:8:28: cannot read the condition") and "compare with ==" in e for e in errors)
    assert any(e.startswith(f"{path}:12:9: condition: unknown health status 'purple'") for e in errors)
    assert any("between 5 and 1: the first must be the smaller" in e for e in errors)


def test_schema_errors_for_the_new_keys(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: r
            on: usage.daily
            to: red
            throttle: {once_within: 3 fortnights, group_by: [acount.id]}
            brake: {max: 0, per: year}
            scope: {segment: [smb]}
            playbook: usage-decline
          - name: s
            on: schedule
            playbook: monthly-check-in
          - name: u
            on: usage.dayly
            schedule: {every: month}
            playbook: usage-decline
    """,
    )
    errors = "\n".join(errors_of(tmp_path))
    for expected in [
        f"{path}:4:5: `to:` only applies to `on: health_changed`",
        f"{path}:5:16: rules[0].throttle.once_within '3 fortnights' is not allowed here",
        f"{path}:5:54: unknown fact 'acount.id'",
        f"{path}:6:13: rules[0].brake.max must be at least 1",
        f"{path}:6:21: rules[0].brake.per has an unknown value 'year'",
        f"{path}:7:13: unknown key 'segment' in rules[0].scope (hint: did you mean 'segments'?",
        f"{path}:10:5: `on: schedule` needs a `schedule:`",
        f"{path}:14:5: `schedule:` only applies to `on: schedule`",
    ]:
        assert expected in errors, expected


def test_params_templates_may_only_use_the_facts(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: r
            on: usage.daily
            playbook: usage-decline
            params: {why: "{{ metrcs.logins_7d }}"}
    """,
    )
    assert any(e.startswith(f"{path}:5:14: template uses unknown variable 'metrcs'") for e in errors_of(tmp_path))


def test_a_full_rule_loads(tmp_path):
    write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: decline
            on: usage.daily
            if: metrics.active_users_change_pct_30d <= -20 and account.segment in ["enterprise", "mid-market"]
            scope: {lifecycle_stages: [adoption]}
            throttle: {once_within: 30 days, group_by: account.id}
            brake: {max: 50, per: hour}
            playbook: usage-decline
          - name: check-in
            on: schedule
            schedule: {days_before_renewal: 90}
            playbook: monthly-check-in
    """,
    )
    ruleset = load_rules(str(tmp_path), PLAYBOOKS)
    decline, check_in = ruleset.rules
    assert decline.event_type == "usage.daily" and decline.lifecycle_stages == ("adoption",)
    assert (decline.throttle.seconds, decline.throttle.group_by) == (30 * 86400, ("account.id",))
    assert (decline.brake.max, decline.brake.seconds) == (50, 3600)
    assert (check_in.event_type, check_in.schedule.kind, check_in.schedule.days) == (
        "schedule.due",
        "before_renewal",
        90,
    )
    assert compiler.condition(decline) == {
        "$and": [
            {"type": "usage.daily"},
            {"account__lifecycle_stage": "adoption"},
            {"$lte": {"metrics__active_users_change_pct_30d": -20}},
            {"$or": [{"account__segment": "enterprise"}, {"account__segment": "mid-market"}]},
        ]
    }


# --- explain and rule tests --------------------------------------------------------------------


def test_explain_names_the_failing_check_and_its_value(tmp_path):
    write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: decline
            on: usage.daily
            if: metrics.active_users_change_pct_30d <= -20 and account.segment == "enterprise"
            playbook: usage-decline
            tests:
              - name: wrongly expected to fire
                facts: {account: {segment: enterprise}, metrics: {active_users_change_pct_30d: -5}}
                fires: true
    """,
    )
    matcher = Matcher(load_rules(str(tmp_path), PLAYBOOKS))
    facts = {
        "type": "usage.daily",
        "account": {"segment": "enterprise"},
        "metrics": {"active_users_change_pct_30d": -5},
    }
    results = explain_rule(matcher.ruleset.rules[0], facts)
    assert [(r.label, r.ok) for r in results] == [
        ("on: usage.daily", True),
        ("metrics.active_users_change_pct_30d <= -20", False),
        ('account.segment == "enterprise"', True),
    ]
    assert results[1].detail == "metrics.active_users_change_pct_30d is -5"
    assert explain(matcher, facts)[0]["matched"] is False
    [failure] = failing_rule_tests(matcher, load_rule_tests(str(tmp_path)))
    assert "failed: metrics.active_users_change_pct_30d <= -20 (metrics.active_users_change_pct_30d is -5)" in str(
        failure
    )


# --- the default rules ---------------------------------------------------------------------------


def _default_samples():
    return load_rule_tests(str(ROOT / "rules"))


@pytest.fixture(scope="module")
def default_matcher():
    return Matcher(load_rules(str(ROOT / "rules"), load_playbooks(str(ROOT / "playbooks"))))


def test_the_handbook_rules_are_all_there(default_matcher):
    names = {rule.name for rule in default_matcher.ruleset.rules}
    assert {
        "green-advocate",
        "yellow-find-out-why",
        "red-action-plan",
        "black-save-attempt",
        "usage-decline",
        "new-users-training",
        "feature-adoption",
        "low-reporting-use",
        "monthly-check-in",
    } <= names


def test_every_default_rule_ships_a_firing_and_a_non_firing_sample(default_matcher):
    samples = _default_samples()
    for rule in default_matcher.ruleset.rules:
        assert {s.fires for s in samples if s.rule == rule.name} == {True, False}, rule.name


@pytest.mark.parametrize("sample", _default_samples(), ids=lambda s: f"{s.rule}: {s.name}")
def test_default_rule_sample(default_matcher, sample):
    assert not failing_rule_tests(default_matcher, [sample]), sample

"""Rule files: loading, error messages at file:line:column, and the matcher (no app, no database)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.filecheck import FileError, FileErrors, content_hash
from app.matching import compiler
from app.matching.loader import DEFAULT_BRAKE, failing_rule_tests, load_rule_tests, load_rules
from app.matching.matcher import Matcher
from app.matching.model import Rule, RuleSet
from app.playbooks.loader import load_playbooks
from app.playbooks.model import Playbook
from tests.helpers import ROOT, write_in

PLAYBOOKS = {
    name: Playbook(name=name, steps=(), version="test")
    for name in ("red-action-plan", "green-advocate", "black-save-attempt")
}


def load_errors(rules_dir: Path, playbooks=PLAYBOOKS) -> list[str]:
    with pytest.raises(FileErrors) as caught:
        load_rules(str(rules_dir), playbooks)
    assert all(isinstance(error, FileError) for error in caught.value.errors)
    assert str(caught.value) == "\n".join(str(error) for error in caught.value.errors)
    return [str(error) for error in caught.value.errors]


def has(errors: list[str], start: str, hint: str = "") -> bool:
    return any(error.startswith(start) and hint in error for error in errors)


GOOD = """
rules:
  - name: red-action-plan
    on: health_changed
    to: red
    playbook: red-action-plan
"""


# --- loading --------------------------------------------------------------------------------


def test_a_valid_file_loads_into_rules(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: red-enterprise
            description: Red enterprise accounts.
            owner: cs-ops@vendor.example
            priority: 5
            on: health_changed
            to: RED
            from: [Green, yellow]
            account: {segment: [enterprise, mid-market], plan: premier}
            playbook: red-action-plan
            params: {channel: "#cs-red"}
          - name: off
            enabled: false
            on: health_changed
            playbook: green-advocate
    """,
    )
    ruleset = load_rules(str(tmp_path), PLAYBOOKS)
    red = ruleset.by_name("red-enterprise")
    assert red == Rule(
        name="red-enterprise",
        playbook="red-action-plan",
        trigger="health_changed",
        to=("red",),
        from_=("green", "yellow"),
        account={"segment": ("enterprise", "mid-market"), "plan": ("premier",)},
        description="Red enterprise accounts.",
        owner="cs-ops@vendor.example",
        enabled=True,
        priority=5,
        params={"channel": "#cs-red"},
        file=path,
        line=2,
        brake=DEFAULT_BRAKE,
    )
    off = ruleset.by_name("off")
    assert (off.enabled, off.to, off.from_, off.account, off.line) == (False, (), (), {}, 12)
    assert ruleset.version == content_hash([path])


def test_version_is_a_hash_of_the_files(tmp_path):
    write_in(tmp_path, "a.yml", GOOD)
    first = load_rules(str(tmp_path), PLAYBOOKS).version
    assert len(first) == 12 and first == load_rules(str(tmp_path), PLAYBOOKS).version
    write_in(tmp_path, "a.yml", GOOD + "    description: changed\n")
    assert load_rules(str(tmp_path), PLAYBOOKS).version != first


def test_yaml_and_yml_files_are_read_in_order_other_files_are_not(tmp_path):
    write_in(tmp_path, "b.yaml", GOOD.replace("red-action-plan\n    on", "b-rule\n    on"))
    write_in(tmp_path, "a.yml", GOOD)
    write_in(tmp_path, "notes.txt", "rules: [oops")
    assert [rule.name for rule in load_rules(str(tmp_path), PLAYBOOKS).rules] == ["red-action-plan", "b-rule"]


def test_an_empty_folder_is_an_empty_ruleset(tmp_path):
    assert load_rules(str(tmp_path), PLAYBOOKS).rules == ()


def test_a_missing_folder_is_an_error(tmp_path):
    assert has(load_errors(tmp_path / "nope"), f"{tmp_path / 'nope'}:1:1: folder not found")


# --- errors at file:line:column -------------------------------------------------------------


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: r
            on: health_changed
            playbok: red-action-plan
    """,
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:4:5: unknown key 'playbok' in rules[0]", "did you mean 'playbook'?")
    assert has(errors, f"{path}:2:5: rules[0] is missing the required key 'playbook'", "add `playbook:`")


def test_unknown_top_level_key_and_missing_rules(tmp_path):
    path = write_in(tmp_path, "a.yml", "rule:\n  - name: r\n")
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:1:1: unknown key 'rule'", "did you mean 'rules'?")
    assert has(errors, f"{path}:1:1: the file is missing the required key 'rules'")


def test_unknown_playbook_lists_the_known_ones(tmp_path):
    path = write_in(tmp_path, "a.yml", GOOD.replace("playbook: red-action-plan", "playbook: red-action"))
    errors = load_errors(tmp_path)
    assert errors == [
        f"{path}:5:5: unknown playbook 'red-action' (hint: did you mean 'red-action-plan'? "
        "known playbooks: black-save-attempt, green-advocate, red-action-plan)"
    ]


def test_unknown_status_in_a_list_points_at_the_item(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: r
            on: health_changed
            to: [red, blak]
            from: purple
            playbook: red-action-plan
    """,
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:4:15: unknown health status 'blak'", "did you mean 'black'?")
    assert has(errors, f"{path}:5:5: unknown health status 'purple'", "statuses: green, yellow, red, black")


def test_bad_enum_lists_allowed_values(tmp_path):
    path = write_in(tmp_path, "a.yml", GOOD.replace("on: health_changed", "on: health_change"))
    assert has(
        load_errors(tmp_path),
        f"{path}:3:5: rules[0].on has an unknown value 'health_change'",
        "did you mean 'health_changed'? allowed values: health_changed, schedule",
    )


def test_wrong_types(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        """
        rules:
          - name: r
            on: health_changed
            priority: high
            enabled: "yes"
            to: 5
            account: {segment: [enterprise, 3], region: emea}
            playbook: red-action-plan
    """,
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:4:5: rules[0].priority must be a whole number, not 'high'")
    assert has(errors, f"{path}:5:5: rules[0].enabled must be true or false, not 'yes'")
    assert has(errors, f"{path}:6:5: rules[0].to must be a string or a list, not 5")
    assert has(errors, f"{path}:7:37: rules[0].account.segment[1] must be a string, not 3")
    assert has(errors, f"{path}:7:41: unknown key 'region' in rules[0].account", "allowed keys: id, name, segment")


def test_bad_rule_name(tmp_path):
    path = write_in(tmp_path, "a.yml", GOOD.replace("name: red-action-plan", "name: Red Plan"))
    assert has(
        load_errors(tmp_path), f"{path}:2:5: rules[0].name 'Red Plan' is not allowed here", "use lower-case letters"
    )


def test_duplicate_rule_names_across_files_point_at_the_first(tmp_path):
    first = write_in(tmp_path, "a.yml", GOOD)
    second = write_in(tmp_path, "b.yml", "# another\n" + GOOD.lstrip())
    assert load_errors(tmp_path) == [
        f"{second}:3:5: rule name 'red-action-plan' is used twice "
        f"(hint: first defined at {first}:2; rename one of them)"
    ]


def test_duplicate_key_in_a_mapping(tmp_path):
    path = write_in(tmp_path, "a.yml", GOOD + "    to: black\n")
    assert has(load_errors(tmp_path), f"{path}:6:5: duplicate key 'to'", "already set on line 4")


def test_yaml_syntax_error_has_its_line(tmp_path):
    path = write_in(tmp_path, "a.yml", "rules:\n  - name: r\n    on: [health_changed\n")
    errors = load_errors(tmp_path)
    assert len(errors) == 1 and errors[0].startswith(f"{path}:4:1: YAML syntax error")


def test_yaml_tabs_get_a_hint(tmp_path):
    path = write_in(tmp_path, "a.yml", "rules:\n\t- name: r\n")
    assert has(load_errors(tmp_path), f"{path}:2:1: YAML syntax error", "indent with spaces, not tabs")


def test_all_errors_of_all_files_are_reported(tmp_path):
    a = write_in(tmp_path, "a.yml", "rules: [oops\n")
    b = write_in(
        tmp_path, "b.yml", GOOD.replace("to: red", "to: rouge").replace("playbook: red-action-plan", "playbook: nope")
    )
    c = write_in(tmp_path, "c.yml", GOOD.replace("red-action-plan\n    on", "c\n    on").replace("on:", "onn:"))
    errors = load_errors(tmp_path)
    assert {error.split(":")[0] for error in errors} == {a, b, c}
    assert has(errors, f"{b}:4:5: unknown health status 'rouge'") and has(errors, f"{b}:5:5: unknown playbook")
    assert has(errors, f"{c}:3:5: unknown key 'onn'", "did you mean 'on'?")


def test_bad_sample_tests_are_errors(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        GOOD
        + """\
    tests:
      - facts: {to: redd, acount: {id: x}}
      - name: missing fires
        facts: {to: red}
""",
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:7:27: unknown key 'acount'", "did you mean 'account'?")
    assert has(errors, f"{path}:7:17: unknown health status 'redd'", "did you mean 'red'?")
    assert has(errors, f"{path}:8:9: rules[0].tests[1] is missing the required key 'fires'")


def test_yes_no_and_on_are_strings_and_dates_stay_text(tmp_path):
    write_in(tmp_path, "a.yml", GOOD + "    params: {answer: yes, since: 2026-01-31}\n")
    rule = load_rules(str(tmp_path), PLAYBOOKS).rules[0]
    assert rule.trigger == "health_changed"  # YAML 1.1 would have read `on:` as True
    assert rule.params == {"answer": "yes", "since": "2026-01-31"}


# --- samples (rule tests) -------------------------------------------------------------------


def test_load_rule_tests(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        GOOD
        + """\
    tests:
      - name: fires on red
        facts: {to: red, account: {segment: smb}}
        fires: true
      - facts: {type: account.updated, to: red}
        fires: false
""",
    )
    assert load_rule_tests(str(tmp_path)) == [
        (
            "red-action-plan",
            "fires on red",
            {"to": "red", "account": {"segment": "smb"}, "type": "account.health_changed"},
            True,
            path,
            7,
            None,
        ),
        ("red-action-plan", "sample 2", {"type": "account.updated", "to": "red"}, False, path, 10, None),
    ]


def test_failing_samples_are_reported_at_their_line(tmp_path):
    path = write_in(
        tmp_path,
        "a.yml",
        GOOD
        + """\
    tests:
      - name: wrong
        facts: {to: green}
        fires: true
""",
    )
    matcher = Matcher(load_rules(str(tmp_path), PLAYBOOKS))
    assert [str(e) for e in failing_rule_tests(matcher, load_rule_tests(str(tmp_path)))] == [
        f"{path}:7:1: rule 'red-action-plan' does not fire for test 'wrong' "
        f'(hint: failed: to in ["red"] (to is "green"); rules that fired: none)'
    ]


def _default_samples():
    return load_rule_tests(str(ROOT / "rules"))


@pytest.fixture(scope="module")
def default_matcher():
    playbooks = load_playbooks(str(ROOT / "playbooks"))
    return Matcher(load_rules(str(ROOT / "rules"), playbooks))


def test_the_default_rules_load_and_cover_every_status(default_matcher):
    rules = [rule for rule in default_matcher.ruleset.rules if rule.trigger == "health_changed"]
    assert sorted(status for rule in rules for status in rule.to) == ["black", "green", "red", "yellow"]
    assert all(rule.playbook == rule.name for rule in rules)


def test_every_default_rule_has_a_firing_and_a_non_firing_sample():
    samples = _default_samples()
    for rule in load_rules(str(ROOT / "rules"), load_playbooks(str(ROOT / "playbooks"))).rules:
        assert {s.fires for s in samples if s.rule == rule.name} == {True, False}, rule.name


@pytest.mark.parametrize("sample", _default_samples(), ids=lambda s: f"{s.rule}: {s.name}")
def test_default_rule_samples(default_matcher, sample):
    assert not failing_rule_tests(default_matcher, [sample]), sample


# --- the matcher ----------------------------------------------------------------------------


def rule(name, to=(), from_=(), account=None, enabled=True, priority=0) -> Rule:
    return Rule(
        name=name,
        playbook="p",
        trigger="health_changed",
        to=tuple(to),
        from_=tuple(from_),
        account=account or {},
        enabled=enabled,
        priority=priority,
    )


def event(to, from_=None, **account) -> dict:
    return {
        "type": "account.health_changed",
        "to": to,
        "from": from_,
        "account": {
            "id": "acme",
            "segment": None,
            "lifecycle_stage": None,
            "plan": None,
            "csm": None,
            "manager": None,
            "name": "Acme",
            **account,
        },
    }


def names(matcher, facts) -> list[str]:
    return [rule.name for rule in matcher.match(facts)]


RULES = RuleSet(
    rules=(
        rule("red", to=["red"]),
        rule("red-enterprise", to=["red"], account={"segment": ("enterprise", "mid-market")}, priority=5),
        rule("worse", to=["red", "black"], from_=["green", "yellow"]),
        rule("any-change"),
        rule("off", to=["red"], enabled=False),
        rule("premier-black", to=["black"], account={"plan": ("premier",), "csm": ("ana@vendor.example",)}),
    ),
    version="test",
)


@pytest.fixture(scope="module")
def matcher():
    return Matcher(RULES)


def test_every_matching_rule_fires_sorted_by_priority_then_name(matcher):
    assert names(matcher, event("red", "yellow", segment="enterprise")) == [
        "red-enterprise",
        "any-change",
        "red",
        "worse",
    ]


def test_two_rules_matching_the_same_fact_both_fire(matcher):
    assert names(matcher, event("red")) == ["any-change", "red"]


def test_to_from_and_account_lists(matcher):
    assert names(matcher, event("black", "green")) == ["any-change", "worse"]
    assert names(matcher, event("black", "red")) == ["any-change"]  # from not in the list
    assert names(matcher, event("black")) == ["any-change"]  # no previous status: a `from` rule cannot fire
    assert names(matcher, event("red", segment="mid-market")) == ["red-enterprise", "any-change", "red"]
    assert names(matcher, event("red", segment="smb")) == ["any-change", "red"]
    assert names(matcher, event("black", plan="premier", csm="ana@vendor.example")) == ["any-change", "premier-black"]
    assert names(matcher, event("black", plan="premier")) == ["any-change"]  # every account field must hold
    assert names(matcher, event("green")) == ["any-change"]


def test_statuses_match_case_insensitively(matcher):
    assert names(matcher, event("RED", "Yellow")) == ["any-change", "red", "worse"]


def test_disabled_rules_never_fire(matcher):
    assert "off" not in names(matcher, event("red"))
    assert "off" not in compiler.definition(RULES)


def test_other_event_types_do_not_match(matcher):
    assert names(matcher, {**event("red"), "type": "account.updated"}) == []
    assert names(matcher, {}) == []


def test_identical_facts_in_a_row_match_every_time(matcher):
    facts = event("red")
    assert names(matcher, facts) == names(matcher, facts) == ["any-change", "red"]
    assert facts["from"] is None and "id" not in facts  # the caller's dict is left alone


def test_non_json_values_and_nested_lists_are_dropped():
    from datetime import date

    flat = compiler.flatten(
        {
            "type": "t",
            "to": "Red",
            "account": {
                "id": "a",
                "renewal_date": date(2027, 1, 1),
                "contacts": [{"name": "x"}],
                "arr": 10.5,
                "segment": None,
            },
        }
    )
    assert flat == {"type": "t", "to": "red", "account__id": "a", "account__arr": 10.5}


def test_compiled_definition_is_fresh_json_each_time():
    first, second = compiler.definition(RULES), compiler.definition(RULES)
    assert first == second and first is not second
    assert first["red-enterprise"] == {
        "all": [
            {
                "m": {
                    "$and": [
                        {"type": "account.health_changed"},
                        {"to": "red"},
                        {"$or": [{"account__segment": "enterprise"}, {"account__segment": "mid-market"}]},
                    ]
                }
            }
        ]
    }
    assert first["any-change"] == {"all": [{"m": {"type": "account.health_changed"}}]}


def test_an_empty_ruleset_matches_nothing():
    assert Matcher(RuleSet(rules=(), version="x")).match(event("red")) == []
    assert Matcher(RuleSet(rules=(rule("off", enabled=False),), version="x")).match(event("red")) == []


def test_survives_5000_assert_retract_cycles(matcher):
    cases = [
        (event("red", "yellow", segment="enterprise"), ["red-enterprise", "any-change", "red", "worse"]),
        (event("green"), ["any-change"]),
        ({**event("red"), "type": "other"}, []),
    ]
    for n in range(5000):
        facts, expected = cases[n % len(cases)]
        assert names(matcher, facts) == expected, n


def test_is_thread_safe(matcher):
    cases = [
        event(to, from_, segment=segment, plan="premier", csm="ana@vendor.example")
        for to in ("green", "yellow", "red", "black")
        for from_ in (None, "green", "red")
        for segment in ("enterprise", "smb")
    ]
    expected = [names(matcher, facts) for facts in cases]
    wrong: list = []

    def hammer(offset: int) -> None:
        for n in range(600):
            index = (n + offset) % len(cases)
            got = names(matcher, cases[index])
            if got != expected[index]:
                wrong.append((index, got))

    threads = [threading.Thread(target=hammer, args=(offset,)) for offset in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_matchers_start_no_threads_and_can_be_closed():
    before = threading.active_count()
    matchers = [Matcher(RULES) for _ in range(50)]
    assert threading.active_count() == before
    assert all(names(m, event("red")) == ["any-change", "red"] for m in matchers)
    matchers[0].close()
    with pytest.raises(RuntimeError):
        matchers[0].match(event("red"))

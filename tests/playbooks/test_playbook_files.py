"""Playbook files: loading, error messages at file:line:column, the defaults (no app, no database)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.filecheck import FileErrors, content_hash
from app.playbooks.loader import load_playbooks
from app.playbooks.model import Step, TaskSpec, When
from app.templating import ENVIRONMENT
from tests.helpers import ROOT, write_in


def load_errors(folder: Path) -> list[str]:
    with pytest.raises(FileErrors) as caught:
        load_playbooks(str(folder))
    return [str(error) for error in caught.value.errors]


def has(errors: list[str], start: str, hint: str = "") -> bool:
    return any(error.startswith(start) and hint in error for error in errors)


def playbook(steps: str, name: str = "p") -> str:
    return f"name: {name}\nsteps:\n" + textwrap.indent(textwrap.dedent(steps).lstrip("\n"), "  ")


TASK = """
- name: t
  task: {title: "Call {{ account.name }}", outcomes: [yes_, no_]}
"""


# --- loading --------------------------------------------------------------------------------


def test_a_valid_file_loads_into_a_playbook(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        """
        name: black
        description: Save them.
        concurrent: true
        steps:
          - name: save
            task:
              title: "Save {{ account.name }}"
              instructions: |
                Call {{ account.csm }} about {{ params.reason | default('it') }}.
              assignee: manager
              priority: urgent
              due_in_days: 0
              outcomes: [saved, lost]
          - name: both
            after: []
            task: {title: Also, assignee: someone@vendor.example}
          - name: wait
            when: {step: save, outcome: lost}
            after: [save, both]
            action: wait
            with: {until: renewal_date}
          - name: offboard
            action: gdpr_offboard
    """,
    )
    loaded = load_playbooks(str(tmp_path))["black"]
    assert (loaded.name, loaded.description, loaded.concurrent, loaded.file) == ("black", "Save them.", True, path)
    assert loaded.version == content_hash([path])
    assert loaded.steps == (
        Step(
            "save",
            0,
            task=TaskSpec(
                "Save {{ account.name }}",
                "Call {{ account.csm }} about {{ params.reason | default('it') }}.\n",
                "manager",
                "urgent",
                0,
                ("saved", "lost"),
            ),
        ),
        Step("both", 1, task=TaskSpec("Also", assignee="someone@vendor.example"), after=()),
        Step(
            "wait",
            2,
            action="wait",
            params={"until": "renewal_date"},
            after=("save", "both"),
            when=When("save", ("lost",)),
        ),
        Step("offboard", 3, action="gdpr_offboard"),
    )
    assert loaded.predecessors(loaded.step("offboard")) == ("wait",)
    assert loaded.steps[1].task.outcomes == ("done",) and loaded.steps[1].task.due_in_days is None


def test_mail_folder_holds_templates_not_playbooks(tmp_path):
    write_in(tmp_path, "p.yml", playbook(TASK))
    write_in(tmp_path, "mail/notes.yml", "not: a playbook\n")
    write_in(tmp_path, "mail/hello.txt", "Subject: Hi\n\nHello {{ contact.name }}\n")
    assert list(load_playbooks(str(tmp_path))) == ["p"]


# --- errors at file:line:column -------------------------------------------------------------


def test_unknown_keys_suggest_the_right_one(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        """
        name: p
        stepz: []
        steps:
          - name: a
            actoin: wait
            task: {title: x, priorty: high}
    """,
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:2:1: unknown key 'stepz'", "did you mean 'steps'?")
    assert has(errors, f"{path}:5:5: unknown key 'actoin' in steps[0]", "did you mean 'action'?")
    assert has(errors, f"{path}:6:22: unknown key 'priorty' in steps[0].task", "did you mean 'priority'?")


def test_task_and_action_exactly_one(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        playbook("""
        - name: both
          task: {title: x}
          action: wait
        - name: neither
          after: [both]
        - name: task-with
          task: {title: x}
          with: {days: 1}
    """),
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:5:5: step 'both' has both `task:` and `action:`")
    assert has(errors, f"{path}:6:5: step 'neither' needs `task:` or `action:`")
    assert has(errors, f"{path}:10:5: `with:` is only for action steps")


def test_unknown_action_type_lists_the_registered_ones(tmp_path):
    path = write_in(tmp_path, "p.yml", playbook("- {name: a, action: send_mail}"))
    from app.playbooks.actions import registry

    assert has(
        load_errors(tmp_path),
        f"{path}:3:15: unknown action type 'send_mail'",
        f"did you mean 'send_email'? action types: {', '.join(registry.names())}",
    )


def test_action_params_are_checked_against_the_action_schema(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        playbook("""
        - name: mail
          action: send_email
          with: {tempalte: g2_review}
        - name: wait
          action: wait
          with:
            until: renewal
        - name: both
          action: wait
          with: {days: 1, until: renewal_date}
        - name: nothing
          action: send_email
    """),
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:5:12: unknown key 'tempalte' in steps[0].with", "did you mean 'template'?")
    assert has(errors, f"{path}:5:5: steps[0].with is missing the required key 'template'")
    assert has(
        errors, f"{path}:9:7: steps[1].with.until has an unknown value 'renewal'", "did you mean 'renewal_date'?"
    )
    assert has(errors, f"{path}:12:5: steps[2].with takes at most 1 of its keys", "keys: days, business_days, until")
    assert has(errors, f"{path}:13:5: steps[3].with is missing the required key 'template'")


def test_send_email_needs_an_existing_template(tmp_path):
    write_in(tmp_path, "mail/g2_review.txt", "Subject: Hi\n\nRate us: {{ g2_url }}\n")
    path = write_in(tmp_path, "p.yml", playbook("- {name: m, action: send_email, with: {template: g2_reveiw}}"))
    assert has(
        load_errors(tmp_path),
        f"{path}:3:42: no e-mail template 'g2_reveiw'",
        "add mail/g2_reveiw.txt; did you mean 'g2_review'?",
    )


def test_broken_mail_templates_are_reported_at_their_line(tmp_path):
    write_in(tmp_path, "p.yml", playbook(TASK))
    no_subject = write_in(tmp_path, "mail/a.txt", "Hello\n\nbody\n")
    no_blank = write_in(tmp_path, "mail/b.txt", "Subject: x\nbody\n")
    bad_body = write_in(tmp_path, "mail/c.txt", "Subject: {{ account.name }}\n\nline one\n{% if x %}\n")
    bad_name = write_in(tmp_path, "mail/d.txt", "Subject: ok\n\nHi {{ contcat.name }}\n")
    errors = load_errors(tmp_path)
    assert has(errors, f"{no_subject}:1:1: the first line must be the subject", "Subject: ...")
    assert has(errors, f"{no_blank}:2:1: the second line must be blank")
    assert has(errors, f"{bad_body}:4:1: template error: Unexpected end of template")
    assert has(errors, f"{bad_name}:3:1: template uses unknown variable 'contcat'", "did you mean 'contact'?")


def test_after_must_name_earlier_steps(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        playbook("""
        - name: a
          after: [b]
          task: {title: x}
        - name: b
          after: [a, c, bb]
          task: {title: y}
        - name: c
          task: {title: z}
    """),
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:4:13: `after` names 'b', not a step above", "only wait for steps above")
    assert has(errors, f"{path}:7:16: `after` names 'c', not a step above", "only wait for steps above")
    assert has(errors, f"{path}:7:19: `after` names 'bb', not a step above", "steps above: a")


def test_when_must_name_an_earlier_task_and_its_outcomes(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        playbook(
            TASK
            + textwrap.dedent("""
        - name: w
          action: wait
          with: {days: 1}
        - name: on-action
          when: {step: w, outcome: done}
          action: gdpr_offboard
        - name: unknown
          when: {step: tt, outcome: done}
          action: gdpr_offboard
        - name: bad-outcome
          when: {step: t, outcome: [yes_, maybe]}
          action: gdpr_offboard
        - name: parallel
          after: []
          when: {step: t, outcome: yes_}
          action: gdpr_offboard
    """)
        ),
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:10:12: `when` names 'w', which is not a task", "task steps above: t")
    assert has(errors, f"{path}:13:12: `when` names 'tt', not a step above", "did you mean 't'?")
    assert has(errors, f"{path}:16:37: 't' has no outcome 'maybe'", "its outcomes: yes_, no_")
    assert has(errors, f"{path}:20:12: this step can start before 't' has an outcome", "remove `after:`")


def test_task_fields(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        playbook("""
        - name: t
          task:
            title: ""
            assignee: csmm
            priority: urgnt
            due_in_days: -1
            outcomes: []
        - name: u
          task: {title: x, assignee: ana@, due_in_days: 1.5, outcomes: [ok, ok]}
    """),
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:5:7: steps[0].task.title must not be empty")
    assert has(
        errors,
        f"{path}:7:7: steps[0].task.priority has an unknown value 'urgnt'",
        "did you mean 'urgent'? allowed values: urgent, high, normal, low",
    )
    assert has(errors, f"{path}:8:7: steps[0].task.due_in_days must be at least 0, not -1")
    assert has(errors, f"{path}:9:7: steps[0].task.outcomes must not be empty")
    assert has(errors, f"{path}:11:38: steps[1].task.due_in_days must be a whole number, not 1.5")
    assert has(errors, f"{path}:11:56: steps[1].task.outcomes lists the same value twice")


def test_bad_assignee(tmp_path):
    path = write_in(tmp_path, "p.yml", playbook("- {name: t, task: {title: x, assignee: csmm}}"))
    assert load_errors(tmp_path) == [
        f"{path}:3:32: unknown assignee 'csmm' (hint: did you mean 'csm'? "
        "use a role: csm, manager, csops, or a person's e-mail address)"
    ]


def test_template_errors_point_at_the_template_line(tmp_path):
    path = write_in(
        tmp_path,
        "p.yml",
        playbook("""
        - name: t
          task:
            title: "Call {{ account.name }"
            instructions: |
              First line.
              Second {{ acount.name }}.
        - name: u
          task:
            title: ok
            instructions: |
              one
              two {% if %}
        - name: m
          action: send_email
          with: {template: "{{ params.template", to: contacts}
    """),
    )
    errors = load_errors(tmp_path)
    assert has(errors, f"{path}:5:7: template error: unexpected '}}'")
    assert has(errors, f"{path}:8:7: template uses unknown variable 'acount'", "did you mean 'account'?")
    assert has(errors, f"{path}:14:7: template error:")
    assert has(errors, f"{path}:17:12: template error:")


def test_unquoted_template_gets_a_yaml_hint(tmp_path):
    path = write_in(tmp_path, "p.yml", playbook("- name: t\n  task:\n    title: {{ account.name }}\n"))
    assert has(load_errors(tmp_path), f"{path}:5:15: YAML syntax error", 'quote a value that starts with "{{"')


def test_duplicate_names(tmp_path):
    first = write_in(tmp_path, "a.yml", playbook(TASK))
    second = write_in(tmp_path, "b.yml", playbook(TASK + TASK))
    errors = load_errors(tmp_path)
    assert errors == [
        f"{second}:1:1: playbook name 'p' is used twice (hint: first defined at {first}:1; rename one of them)",
        f"{second}:6:5: step name 't' is used twice in this playbook (hint: first defined on line 3)",
    ]


def test_all_errors_of_all_files_are_reported(tmp_path):
    a = write_in(tmp_path, "a.yml", "name: a\nsteps: [\n")
    b = write_in(tmp_path, "b.yml", "name: b\n")
    c = write_in(tmp_path, "c.yml", "")
    d = write_in(tmp_path, "d.yml", playbook("- {name: x, task: {title: x, priority: now}}", name="Bad Name"))
    errors = load_errors(tmp_path)
    assert has(errors, f"{a}:3:1: YAML syntax error")
    assert has(errors, f"{b}:1:1: the file is missing the required key 'steps'")
    assert has(errors, f"{c}:1:1: the file is missing the required key 'name'")
    assert has(errors, f"{d}:1:1: name 'Bad Name' is not allowed here", "lower-case")
    assert has(errors, f"{d}:3:32: steps[0].task.priority has an unknown value 'now'")


# --- the default playbooks ------------------------------------------------------------------


@pytest.fixture(scope="module")
def defaults():
    return load_playbooks(str(ROOT / "playbooks"))


def test_the_default_playbooks_load(defaults):
    handbook = {
        "black-save-attempt",
        "green-advocate",
        "red-action-plan",
        "yellow-find-out-why",  # seed 000
        "usage-decline",
        "new-users-training",
        "feature-adoption",
        "executive-sponsor-review",  # seed 004
        "monthly-check-in",
        "health-review",
    }
    assert set(defaults) == handbook
    for loaded in defaults.values():
        assert loaded.description and len(loaded.version) == 12


def test_green_asks_for_a_review_then_a_reference(defaults):
    mail, reference = defaults["green-advocate"].steps
    assert (mail.action, mail.params) == ("send_email", {"template": "g2_review", "to": "contacts"})
    assert reference.task.assignee == "csm" and reference.task.priority == "normal"
    assert (reference.task.due_in_days, reference.task.outcomes) == (14, ("reference", "not_now"))


def test_yellow_and_red(defaults):
    (why,) = defaults["yellow-find-out-why"].steps
    assert (why.task.assignee, why.task.priority, why.task.due_in_days) == ("csm", "high", 7)
    csm, manager = defaults["red-action-plan"].steps
    assert [(s.task.assignee, s.task.priority, s.task.due_in_days) for s in (csm, manager)] == [
        ("csm", "urgent", 2),
        ("manager", "urgent", 2),
    ]
    assert defaults["red-action-plan"].predecessors(manager) == ()  # starts with the CSM's task


def test_black_offboards_only_when_lost_and_approved(defaults):
    black = defaults["black-save-attempt"]
    save, wait, export, approve, offboard, notify = black.steps
    assert (save.task.priority, save.task.outcomes) == ("urgent", ("saved", "lost"))
    assert (wait.action, wait.params) == ("wait", {"until": "renewal_date"})
    assert wait.when == When("save-attempt", ("lost",))
    assert export.action == "gdpr_export" and approve.task.outcomes == ("approve", "reject")
    assert approve.task.assignee == "manager"  # four eyes
    assert offboard.action == "gdpr_offboard" and offboard.when.step == "approve-erasure"
    assert offboard.when.outcome == ("approve",)
    assert notify.action == "gdpr_notify_processors"


ACCOUNT = {
    "id": "acme",
    "name": "Acme GmbH",
    "segment": "enterprise",
    "lifecycle_stage": "adoption",
    "plan": "premier",
    "arr": 120000.0,
    "renewal_date": "2027-03-31",
    "csm": "ana@vendor.example",
    "manager": "mo@vendor.example",
    "health": "red",
}


@pytest.mark.parametrize(
    "account", [ACCOUNT, dict.fromkeys(ACCOUNT) | {"id": "acme"}], ids=["full account", "bare account"]
)
def test_default_templates_render_in_the_sandbox(defaults, account):
    # The parameters the code that launches health-review passes (app/signals/review.py).
    params = {
        "crm_status": "green",
        "crm_reason": "Happy in the QBR",
        "band": "red",
        "score": 31,
        "since": "2026-11-01",
        "indicators": ["logins 7d: 0 (0/100)"],
    }
    context = {"account": account, "event": {}, "params": params, "run": {"id": 1, "playbook": "p", "rule": "r"}}
    for loaded in defaults.values():
        for step in loaded.steps:
            if step.task:
                title = ENVIRONMENT.from_string(step.task.title).render(context)
                assert "acme" in title.lower() and "None" not in title
                assert "None" not in ENVIRONMENT.from_string(step.task.instructions).render(context)
    mail = (ROOT / "playbooks" / "mail" / "g2_review.txt").read_text(encoding="utf-8")
    text = ENVIRONMENT.from_string(mail).render(
        context, contact={"name": None, "email": "j@x.example"}, g2_url="https://g2.example/review"
    )
    subject, blank, body = text.split("\n", 2)
    assert subject.startswith("Subject: ") and blank == "" and "None" not in text
    assert "https://g2.example/review" in body and "Hello there," in body

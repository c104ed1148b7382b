"""`flask rules check|test|explain|reload|backtest|schedules`: the rule author's tools."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

rules_cli = AppGroup("rules", help="Check, test, explain, reload and backtest the rule files.")


def _dirs(rules_dir: str | None) -> tuple[str, str]:
    """The rules folder to use and the live playbooks folder (a candidate uses the live playbooks)."""
    live = current_app.extensions.get("triage_catalog_reloading")
    default_rules = live.rules_dir if live else current_app.config["RULES_DIR"]
    playbooks = live.playbooks_dir if live else current_app.config["PLAYBOOKS_DIR"]
    return rules_dir or default_rules, playbooks


def _load(rules_dir: str | None):
    from app.catalog import load_catalog
    from app.filecheck import FileErrors

    try:
        return load_catalog(*_dirs(rules_dir))
    except FileErrors as exc:
        click.echo(str(exc), err=True)
        click.echo(f"{len(exc.errors)} problem(s): the rules do not load.", err=True)
        sys.exit(1)


@rules_cli.command("check")
@click.option("--rules", "rules_dir", help="a rules folder (default RULES_DIR)")
def check(rules_dir: str | None) -> None:
    """Validate the rule files; print every problem as file:line:column and exit 1."""
    loaded = _load(rules_dir)
    click.echo(f"{len(loaded.ruleset.rules)} rules (version {loaded.ruleset.version}): OK")


@rules_cli.command("test")
@click.option("--rules", "rules_dir", help="a rules folder (default RULES_DIR)")
def test(rules_dir: str | None) -> None:
    """Run every rule's sample events with the production matcher; explain each failure."""
    from app.matching.loader import failing_rule_tests, load_rule_tests

    loaded = _load(rules_dir)
    samples = load_rule_tests(_dirs(rules_dir)[0])
    failures = failing_rule_tests(loaded.matcher, samples)
    for failure in failures:
        click.echo(str(failure), err=True)
    click.echo(f"{len(samples) - len(failures)} of {len(samples)} rule samples pass.", err=bool(failures))
    if failures:
        sys.exit(1)


@rules_cli.command("explain")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rules_dir", help="a rules folder (default: the live rules)")
def explain_command(event_file: str, rules_dir: str | None) -> None:
    """Show, rule by rule, whether EVENT_FILE matches and which check failed.

    EVENT_FILE holds facts (as in a rule's `tests:`), an events-API event (CONTRACT section 3;
    the stored account and its metrics are added), or a CRM webhook body.
    """
    from app.matching.explain import explain, format_report

    with open(event_file, encoding="utf-8") as handle:
        data = json.load(handle)
    loaded = _load(rules_dir)
    facts = facts_from_json(data)
    click.echo(format_report(explain(loaded.matcher, facts)))


def facts_from_json(data: dict) -> dict:
    """Facts for `explain`: given as facts, or built from an API event or a CRM body."""
    from app.extensions import db
    from app.matching.facts import event_facts
    from app.models import Account, Event

    if "account_id" in data or isinstance(data.get("account"), dict) and "occurred_at" in data:
        account_id = data.get("account_id") or data["account"].get("id")
        account = db.session.get(Account, account_id) or Account(id=account_id)
        occurred = (
            datetime.fromisoformat(str(data.get("occurred_at", "")).replace("Z", "+00:00"))
            if data.get("occurred_at")
            else datetime.now(UTC)
        )
        event = Event(
            source="explain",
            external_id=str(data.get("id", "explain")),
            type=data.get("type", ""),
            account_id=account_id,
            occurred_at=occurred,
            payload=data,
        )
        health = None
        if isinstance(data.get("health"), dict):
            health = {
                "to": data["health"].get("to"),
                "from": account.health_status,
                "crm_from": data["health"].get("from"),
            }
        from app.signals.metrics import metrics_for

        facts = event_facts(event=event, account=account, metrics=metrics_for(account_id, occurred), health=health)
        if isinstance(data.get("account"), dict):  # the CRM body's account fields win
            facts["account"].update({k: v for k, v in data["account"].items() if k in facts["account"]})
        db.session.rollback()
        return facts
    return data


@rules_cli.command("reload")
def reload_command() -> None:
    """Check the files, then make the web and the workers reload them (within seconds)."""
    from app.catalog import request_reload

    loaded = _load(None)
    request_reload()
    click.echo(
        f"{len(loaded.ruleset.rules)} rules (version {loaded.ruleset.version}) are valid; "
        "running processes reload them at their next check."
    )


def parse_since(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)\s*([dhw])", text.strip())
    if not match:
        raise click.BadParameter("write e.g. 90d, 12w or 48h")
    number, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=number), "h": timedelta(hours=number), "w": timedelta(weeks=number)}[unit]


@rules_cli.command("backtest")
@click.option("--since", default="90d", show_default=True, help="how far back: 90d, 12w, 48h")
@click.option("--rules", "rules_dir", help="the candidate rules folder (default RULES_DIR)")
@click.option("--no-metrics", is_flag=True, help="skip computing metrics per event (faster)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def backtest_command(since: str, rules_dir: str | None, no_metrics: bool, as_json: bool) -> None:
    """Replay stored events through a candidate rule set (no side effects) and compare with the live rules."""
    from app import catalog
    from app.matching.backtest import format_report, replay

    candidate = _load(rules_dir)
    live = catalog.current()
    until = datetime.now(UTC)
    report = replay(candidate.matcher, live.matcher, until - parse_since(since), until, with_metrics=not no_metrics)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "events": report.events,
                    "since": report.since.isoformat(),
                    "candidate_version": report.candidate_version,
                    "live_version": report.live_version,
                    "rules": report.rows(),
                    "per_csm_week": [
                        {"rule": r, "csm": c, "week": w, "launches": n}
                        for (r, c, w), n in sorted(report.candidate.per_csm_week.items())
                    ],
                },
                indent=2,
            )
        )
    else:
        click.echo(format_report(report))


@rules_cli.command("schedules")
def schedules_command() -> None:
    """Launch the scheduled rules that are due now (the scheduler does this every hour)."""
    from app.matching.scheduled_rules import run_due_schedules

    click.echo(run_due_schedules())

"""`flask replay FILE --history`: a history loaded set-based gives what live processing gives,
launches nothing for the past, resumes without doubling, and refuses a file with bad rows."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.models import Account, Event, PlaybookRun
from app.models.score import HealthScore
from app.models.usage import DailyUsage
from app.signals.history import BadFile, load_history
from app.signals.metrics import metrics_for

START = date(2026, 6, 1)
DAYS = 50


def history(account: str, days: int = DAYS, silent: tuple[int, ...] = (20, 21, 22, 23, 24)) -> list[dict]:
    """Daily use (none on the silent days), feedback, a ticket, and a feature first used on the last day."""
    events = []
    for d in range(days):
        if d in silent:
            continue
        at = f"{START + timedelta(days=d)}T10:00:00Z"
        events.append(
            {
                "id": f"{account}-d{d}",
                "account_id": account,
                "type": "usage.daily",
                "occurred_at": at,
                "properties": {"active_users": 20 - d // 5, "logins": 30, "features": {"reporting": 2}},
            }
        )
    events += [
        {
            "id": f"{account}-nps",
            "account_id": account,
            "type": "feedback.nps",
            "occurred_at": f"{START + timedelta(days=5)}T11:00:00Z",
            "properties": {"score": 6, "user_id": "u1"},
        },
        {
            "id": f"{account}-t",
            "account_id": account,
            "type": "support.ticket",
            "occurred_at": f"{START + timedelta(days=30)}T11:00:00Z",
            "properties": {"severity": "high", "subject": "Export is broken and we are angry"},
        },
        {
            "id": f"{account}-new",
            "account_id": account,
            "type": "usage.feature_used",
            "occurred_at": f"{START + timedelta(days=days - 1)}T12:00:00Z",
            "properties": {"feature": "forecasting"},
        },
    ]
    return sorted(events, key=lambda e: e["occurred_at"])


def jsonl(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def last_day_at() -> datetime:
    return datetime.combine(START + timedelta(days=DAYS - 1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=23)


def test_a_loaded_history_equals_live_processing_and_launches_nothing_for_the_past(
    client, db, auth, run_jobs, tmp_path
):
    live = [dict(e, id="live-" + e["id"], account_id="live") for e in history("x")]
    for start in range(0, len(live), 500):
        assert client.post("/api/v1/events", json=live[start : start + 500], headers=auth).status_code == 202
    run_jobs()
    live_runs = db.session.scalar(select(func.count(PlaybookRun.id)).where(PlaybookRun.account_id == "live"))

    report = load_history(jsonl(tmp_path / "h.jsonl", [dict(e, account_id="hist") for e in history("x")]))
    assert report.present == 2 and report.loaded == len(live) - 2 and report.duplicates == 0
    # The past is stored as processed; the last day's event waits for the workers, as live events do.
    unprocessed = db.session.scalars(select(Event.external_id).where(Event.processed_at.is_(None))).all()
    assert sorted(unprocessed) == [f"x-d{DAYS - 1}", "x-new"]
    assert db.session.scalar(select(func.count(PlaybookRun.id)).where(PlaybookRun.account_id == "hist")) == 0
    run_jobs()  # the present: the feature used for the first time on the last day is a rule's business
    runs = db.session.scalars(select(PlaybookRun.playbook).where(PlaybookRun.account_id == "hist")).all()
    assert "feature-adoption" in runs
    assert len(runs) <= live_runs  # live processing also acted on the past (the first use of reporting)

    at = last_day_at()
    assert metrics_for("hist", at) == metrics_for("live", at)
    scores = {
        account: db.session.execute(
            select(HealthScore.day, HealthScore.score, HealthScore.band)
            .where(HealthScore.account_id == account)
            .order_by(HealthScore.day)
        ).all()
        for account in ("hist", "live")
    }
    assert scores["hist"] == scores["live"]
    assert len(scores["hist"]) == DAYS  # one per day, the silent ones too
    account = db.session.get(Account, "hist")
    assert (account.score, account.score_day) == (scores["hist"][-1][1], scores["hist"][-1][0])


def test_loading_again_or_after_an_interruption_doubles_nothing(db, tmp_path, run_jobs):
    events = history("r")
    half = jsonl(tmp_path / "half.jsonl", events[: len(events) // 2])
    whole = jsonl(tmp_path / "whole.jsonl", events)
    load_history(half)  # an interrupted load: the first chunks committed
    first = load_history(whole)
    again = load_history(whole)
    run_jobs()
    assert again.loaded == 0 and again.duplicates == len(events)
    assert first.duplicates == len(events) // 2
    reference = jsonl(tmp_path / "ref.jsonl", [dict(e, id="ref-" + e["id"], account_id="ref") for e in events])
    load_history(reference)
    run_jobs()
    at = last_day_at()
    assert metrics_for("r", at) == metrics_for("ref", at)
    rows = {
        account: db.session.execute(
            select(DailyUsage.day, DailyUsage.active_users, DailyUsage.logins, DailyUsage.values)
            .where(DailyUsage.account_id == account)
            .order_by(DailyUsage.day)
        ).all()
        for account in ("r", "ref")
    }
    assert rows["r"] == rows["ref"]


def test_a_file_with_bad_rows_loads_nothing_unless_told_to_skip_them(db, tmp_path):
    events = history("b", days=10, silent=())
    lines = [json.dumps(e) for e in events]
    lines[2] = json.dumps(dict(events[2], type="Usage Daily"))
    lines[4] = "{not json"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadFile) as caught:
        load_history(path)
    text = str(caught.value)
    assert f"{path}:line 3:" in text and "type" in text and f"{path}:line 5: not JSON" in text
    assert "nothing was loaded" in text and "--skip-bad" in text
    assert db.session.scalar(select(func.count(Event.id))) == 0
    report = load_history(path, skip_bad=True)
    assert report.skipped == 2 and report.loaded + report.present == len(events) - 2


def test_a_csv_history_loads_like_json_lines(db, tmp_path):
    events = history("c", days=12, silent=())
    path = tmp_path / "h.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "account_id", "type", "occurred_at", "properties"])
        for e in events:
            writer.writerow([e["id"], "csv", e["type"], e["occurred_at"], json.dumps(e["properties"])])
    load_history(path)
    load_history(jsonl(tmp_path / "h.jsonl", [dict(e, id="j" + e["id"], account_id="json") for e in events]))
    at = datetime.combine(START + timedelta(days=10), datetime.min.time(), tzinfo=UTC)
    assert metrics_for("csv", at) == metrics_for("json", at)
    assert metrics_for("csv", at)["logins_7d"] == 7 * 30


def test_the_command_prints_a_summary_and_refuses_bad_files_with_their_lines(app, db, tmp_path):
    path = jsonl(tmp_path / "h.jsonl", history("cli", days=8, silent=()))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["replay", str(path), "--history"])
    assert result.exit_code == 0, result.output
    assert "events loaded as history" in result.output and "account-days" in result.output
    path.write_text(path.read_text() + '{"id": "x"}\n')
    result = runner.invoke(args=["replay", str(path), "--history"])
    assert result.exit_code != 0 and "line 12" in result.output


def test_a_metric_declared_later_gets_its_past_from_a_rebuild(db, tmp_path, caplog):
    import shutil

    from app import create_app
    from tests.helpers import ROOT

    metrics = tmp_path / "metrics"
    shutil.copytree(ROOT / "metrics", metrics)
    app = create_app({"TESTING": True, "METRICS_DIR": str(metrics)})
    with app.app_context():
        load_history(jsonl(tmp_path / "h.jsonl", history("late")))
        (metrics / "reporting.yml").write_text(
            "metrics:\n  - {name: reporting_uses_30d, from: usage.daily, value: features.reporting,"
            " aggregate: sum, window: 30}\n"
        )
        app.config["RULES_RELOAD_SECONDS"] = 0  # reload now
        from app import catalog

        catalog.refresh(app, force=True)
        assert "usage.daily:features.reporting" in caplog.text and "flask metrics rebuild" in caplog.text
        at = last_day_at() - timedelta(days=1)
        assert metrics_for("late", at)["reporting_uses_30d"] == 0  # declared after the events came
        runner = app.test_cli_runner()
        result = runner.invoke(args=["metrics", "rebuild"])
        assert result.exit_code == 0, result.output
        assert metrics_for("late", at)["reporting_uses_30d"] == 2 * 25  # 30 days, 5 of them silent
        shown = runner.invoke(args=["metrics", "show", "late", "--at", str(at.date())])
        assert "reporting_uses_30d" in shown.output and "50" in shown.output
        assert runner.invoke(args=["metrics", "test"]).exit_code == 0

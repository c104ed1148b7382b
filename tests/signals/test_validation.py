"""`flask scorecards validate`: observations as CONTRACT section 7 defines them, and the figures."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, date, datetime, timedelta

from app.models import Account, HealthChange
from app.models.score import HealthScore
from app.signals.validation import add_months, auc, observations, validate

FIRST = date(2026, 1, 1)
LAST = date(2026, 7, 31)


def account_with_scores(db, account_id: str, score_of, churn: date | None = None) -> None:
    db.session.add(Account(id=account_id, first_day=FIRST))
    day = FIRST
    while day <= (churn or LAST):
        score = score_of(day)
        band = "green" if score >= 70 else "yellow" if score >= 45 else "red"
        details = {"logins_7d": {"value": score / 10, "weight": 1, "points": score}}
        db.session.add(
            HealthScore(
                account_id=account_id,
                day=day,
                at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
                score=score,
                band=band,
                scorecard="default",
                details=details,
            )
        )
        day += timedelta(days=1)
    if churn:
        db.session.add(
            HealthChange(
                account_id=account_id,
                status="black",
                previous="red",
                at=datetime.combine(churn, datetime.min.time(), tzinfo=UTC),
                source="crm",
            )
        )
    db.session.commit()


def test_auc_is_the_chance_a_churner_scores_lower():
    rng = random.Random(3)
    pairs = [(rng.randint(0, 20), rng.random() < 0.3) for _ in range(300)]
    churners = [v for v, c in pairs if c]
    others = [v for v, c in pairs if not c]
    brute = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a, b in itertools.product(churners, others))
    assert abs(auc(pairs) - brute / (len(churners) * len(others))) < 1e-9
    assert auc([(1, True), (2, False)]) == 1.0 and auc([(2, True), (1, False)]) == 0.0
    assert auc([(1, False), (2, False)]) is None


def test_one_observation_per_month_five_days_before_the_anniversary(db):
    account_with_scores(db, "stays", lambda day: 80)
    account_with_scores(db, "leaves", lambda day: 30 if day >= date(2026, 3, 1) else 80, churn=date(2026, 4, 10))
    found, last = observations()
    assert last == LAST
    stays = sorted(o.day for o in found if o.account_id == "stays")
    # Anniversaries Feb 1 .. Jul 1, minus 5 days; Jul 27's month would end after the last stored day.
    assert stays == [add_months(FIRST, m) - timedelta(days=5) for m in range(1, 7)]
    leaves = {o.day: o for o in found if o.account_id == "leaves"}
    # Observed on Jan 27, Feb 24, Mar 27 (churn on Apr 10 is within 30 days of Mar 27); none after the churn.
    assert sorted(leaves) == [date(2026, 1, 27), date(2026, 2, 24), date(2026, 3, 27)]
    assert [leaves[d].churned for d in sorted(leaves)] == [False, False, True]
    assert leaves[date(2026, 3, 27)].score == 30  # scored as of the day before


def test_the_report_gives_auc_bands_deciles_and_each_indicators_direction(db, app, tmp_path):
    for index in range(90):  # 30 churners: enough for a verdict on an indicator (MIN_CHURNERS)
        churn = date(2026, 3, 10) + timedelta(days=index % 15) if index % 3 == 0 else None
        account_with_scores(
            db, f"a{index}", lambda day, c=churn: 30 if c and day >= c - timedelta(days=40) else 85, churn=churn
        )
    report = validate()
    assert report.observations > 0 and report.churners == 30
    assert report.auc > 0.95 and report.auc_interval is not None
    assert report.bands["red"]["churners"] == 1.0 and report.bands["green"]["others"] == 1.0
    assert report.deciles[0]["churn_rate"] > report.churn_rate and report.top_decile_lift > 1
    indicators = {row["metric"]: row for row in report.indicators}
    assert indicators["logins_7d"]["agrees"] is True and indicators["logins_7d"]["auc"] > 0.95
    assert indicators["nps_last"]["auc"] is None  # no values in these scores: no verdict
    runner = app.test_cli_runner()
    result = runner.invoke(args=["scorecards", "validate", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"observations", "churners", "auc", "bands"} <= set(data)
    assert set(data["bands"]["red"]) >= {"churners", "others"}
    markdown = (tmp_path / "validation.md").read_text()
    assert markdown.startswith("# Health score validation")
    assert "too uncertain" not in markdown


def test_too_few_churners_give_no_verdict(db):
    for index in range(6):
        churn = date(2026, 3, 10) if index % 3 == 0 else None
        account_with_scores(
            db, f"f{index}", lambda day, c=churn: 30 if c and day >= c - timedelta(days=40) else 85, churn=churn
        )
    report = validate()
    assert report.churners == 2 and "Only 2 churn observations" in report.markdown()
    assert "or give --labels" in report.markdown()  # churn from the health history: a labels file may help
    assert all(row["agrees"] is None for row in report.indicators)


def test_labels_from_a_file(db, tmp_path):
    account_with_scores(db, "x", lambda day: 40)
    labels = tmp_path / "labels.csv"
    labels.write_text("account_id,churn_date\nx,2026-03-01\n")
    found, _ = observations(labels=labels)
    assert [o.churned for o in sorted(found, key=lambda o: o.day)] == [False, True]


def test_calibrate_suggests_thresholds_by_share_and_writes_only_the_bands_line(db, app, tmp_path):
    import shutil

    from app import catalog, create_app
    from app.signals.validation import calibrate, write_bands
    from tests.helpers import ROOT

    for index in range(10):
        account_with_scores(db, f"c{index}", lambda day, i=index: 10 * i)  # scores 0, 10, .. 90
    result = calibrate("default", {"red": 0.2, "yellow": 0.3})
    assert result.account_days == 10 * ((LAST - FIRST).days + 1)
    assert result.suggested == {"red": 0, "yellow": 20, "green": 50}
    assert result.current_shares["green"] == 0.3  # 70, 80, 90 under the shipped thresholds
    folder = tmp_path / "cards"
    shutil.copytree(ROOT / "scorecards", folder)
    before = (folder / "default.yml").read_text()
    write_bands("default", result.suggested, str(folder))
    after = (folder / "default.yml").read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].strip() == "bands: {green: 50, yellow: 20, red: 0}"
    reloaded = create_app({"TESTING": True, "SCORECARDS_DIR": str(folder)})
    with reloaded.app_context():
        card = next(c for c in catalog.current().scorecards.cards if c.name == "default")
        assert (card.band(19), card.band(20), card.band(50)) == ("red", "yellow", "green")

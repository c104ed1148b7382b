"""The Score quality page (/admin/score-quality/): the last validation report, and the button
that has a worker make a new one. Reports are written with app.signals.validation.write, as the
command and the job write them."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

from app.jobs import MAINTENANCE, VALIDATE_SCORECARDS, queue
from app.models import AuditEntry
from app.signals.validation import ValidationReport, write
from tests.helpers import ANA, MO, OPS, csrf_from, signed_in, team

URL = "/admin/score-quality/"
RUN = "/admin/score-quality/run"


def report() -> ValidationReport:
    return ValidationReport(
        observations=1200,
        churners=96,
        auc=0.784,
        auc_interval=(0.741, 0.823),
        churn_rate=0.08,
        bands={
            "green": {"churners": 0.125, "others": 0.6, "churn_rate": 0.0174, "observations": 700},
            "yellow": {"churners": 0.25, "others": 0.3, "churn_rate": 0.0676, "observations": 355},
            "red": {"churners": 0.625, "others": 0.1, "churn_rate": 0.4138, "observations": 145},
        },
        deciles=[
            {"decile": d, "low": 10 * (d - 1), "high": 10 * d - 1, "churn_rate": rate}
            for d, rate in enumerate([0.31, 0.17, 0.09, 0.07, 0.05, 0.04, 0.03, 0.02, 0.01, 0.01], start=1)
        ],
        top_decile_lift=3.875,
        indicators=[
            {
                "metric": "active_users_30d",
                "auc": 0.761,
                "says": "higher_is_better",
                "agrees": True,
                "observations": 1200,
            },
            {
                "metric": "tickets_high_30d",
                "auc": 0.612,
                "says": "lower_is_better",
                "agrees": False,
                "observations": 1150,
            },
            {
                "metric": "logins_per_user",
                "auc": 0.505,
                "says": "higher_is_better",
                "agrees": None,
                "observations": 1100,
            },
        ],
        since="2025-12-01",
        last_day="2026-11-30",
    )


def maintenance_jobs() -> list:
    return [job for job in queue(MAINTENANCE).jobs if job is not None]


def test_cs_ops_see_the_last_report_with_its_bands_indicators_and_charts(web, db, validation_folder):
    team(db)
    _, data = write(report(), validation_folder)
    stamp = datetime(2026, 12, 1, 7, 30, tzinfo=UTC).timestamp()
    os.utime(data, (stamp, stamp))

    html = signed_in(web, OPS).get(URL).get_data(as_text=True)
    assert "as of" in html and "2026-12-01 07:30 UTC" in html  # the file's time
    assert re.search(r'data-figure="auc">0\.784<', html) and "0.741–0.823" in html
    assert re.search(r'data-figure="churn-rate">8\.0%<', html) and "96 of 1200 observations" in html
    assert re.search(r'data-figure="lift">3\.875<', html)
    assert "2025-12-01" in html and "2026-11-30" in html

    bands = html[html.index('id="bands"') : html.index('id="deciles"')]
    assert re.findall(r'status-(\w+)">', bands) == ["green", "yellow", "red"]  # the report's order
    assert re.search(r"red</span></td><td>145</td><td>62\.5%</td>\s*<td>10\.0%</td><td>41\.4%</td>", bands)

    indicators = html[html.index('id="indicators"') :]
    wrong = re.findall(r'<tr class="indicator-row table-danger wrong-way">\s*<td><code>(\w+)</code>', indicators)
    assert wrong == ["tickets_high_30d"]
    assert "no: it points the other way" in indicators
    assert 'id="wrong-way"' in html and "1 indicator(s) point the other way" in html

    charts = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert len(charts) == 2
    by_band, by_decile = charts
    assert 'aria-label="Churn rate by band"' in by_band and by_band.count("<rect") == 3
    assert "red: 41.4%" in by_band and "#dc3545" in by_band  # the band's own colour
    assert "Churn rate by score decile" in by_decile and by_decile.count("<rect") == 10
    assert "0–9: 31.0%" in by_decile
    assert "<script" not in "".join(charts) and "http" not in "".join(charts)  # nothing run, nothing fetched
    assert 'action="/admin/score-quality/run"' in html  # CS ops may run it


def test_without_a_report_the_page_says_how_to_make_one(web, db, validation_folder):
    team(db)
    html = signed_in(web, OPS).get(URL).get_data(as_text=True)
    assert 'id="no-report"' in html and "No validation report yet" in html
    assert "flask --app wsgi scorecards validate" in html
    assert "Run validation now" in html and "<svg" not in html
    # A file that is not a report is said so, not a server error.
    validation_folder.mkdir(parents=True)
    (validation_folder / "validation.json").write_text("{half a repo", encoding="utf-8")
    html = signed_in(web, OPS).get(URL).get_data(as_text=True)
    assert 'id="report-problem"' in html and "could not be read" in html and 'id="no-report"' in html


def test_managers_read_csms_are_refused_and_the_menu_follows(web, db, validation_folder):
    team(db)
    write(report(), validation_folder)
    ana = signed_in(web, ANA)
    assert ana.get(URL).status_code == 403
    assert (
        ana.post(RUN, data={"csrf_token": csrf_from(ana.get("/admin/task/").get_data(as_text=True))}).status_code == 403
    )
    assert 'href="/admin/score-quality/"' not in ana.get("/admin/task/").get_data(as_text=True)

    mo = signed_in(web, MO)
    html = mo.get(URL).get_data(as_text=True)
    assert "0.784" in html and "Run validation now" not in html  # reads, does not run
    assert mo.post(RUN, data={"csrf_token": csrf_from(html)}).status_code == 403
    for client in (mo, signed_in(web, OPS)):
        menu = client.get("/admin/task/").get_data(as_text=True)
        assert (
            menu.index('href="/admin/rules/"')
            < menu.index('href="/admin/score-quality/"')
            < menu.index('href="/admin/queues/"')
        )
    assert maintenance_jobs() == []
    assert db.session.query(AuditEntry).count() == 0


def test_run_now_enqueues_one_validation_job_audits_it_and_the_job_writes_the_report(
    web, db, validation_folder, run_jobs
):
    team(db)
    client = signed_in(web, OPS)
    token = csrf_from(client.get(URL).get_data(as_text=True))

    response = client.post(RUN, data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith(URL)
    jobs = maintenance_jobs()
    assert [job.func_name for job in jobs] == [VALIDATE_SCORECARDS] == ["workers.maintenance.validate_scorecards"]
    assert "Validation queued" in client.get(URL).get_data(as_text=True)
    # A second click while it waits queues nothing more.
    client.post(RUN, data={"csrf_token": token})
    assert len(maintenance_jobs()) == 1
    assert "already queued or running" in client.get(URL).get_data(as_text=True)

    entries = db.session.query(AuditEntry).all()
    assert [(e.actor, e.action, e.object_type) for e in entries] == [
        (OPS, "scorecards.validation_requested", "scorecards")
    ]

    run_jobs()  # a real RQ worker runs the job: the report appears where the page reads it
    written = json.loads((validation_folder / "validation.json").read_text(encoding="utf-8"))
    assert written["observations"] == 0  # an empty history: a report all the same
    assert queue(MAINTENANCE).finished_job_registry.get_job_ids() == ["validate-scorecards"]
    html = client.get(URL).get_data(as_text=True)
    assert 'id="no-report"' not in html and 'id="no-observations"' in html
    # Done, so the next click queues a new one.
    client.post(RUN, data={"csrf_token": token})
    assert len(maintenance_jobs()) == 1


def test_run_now_without_a_csrf_token_is_refused(web, db, validation_folder):
    team(db)
    client = signed_in(web, OPS)
    refused = client.post(RUN, data={})
    assert refused.status_code == 400 and "could not be sent" in refused.get_data(as_text=True)
    assert client.post(RUN, data={"csrf_token": "forged"}).status_code == 400
    assert maintenance_jobs() == []
    assert db.session.query(AuditEntry).count() == 0

"""Does the default early warning warn early? Replays simulated usage with known churn.

    .venv/bin/python bench/early_warning.py [--accounts 200] [--days 200] [--seed 11]

Generates usage (bench/usage_simulator.py), replays it in time order through the normal
intake (`POST /api/v1/events`, in-process) and real RQ jobs, with the default rules/ and
scorecards/, on a throwaway SQLite database and Redis database 15. Then, per account, the
first warning is the earliest of: a rule firing on a usage, feedback, support or score
event, or a day whose computed score band is red. Reported: the share of churners warned
at least 30 days before they left, and the share of retained accounts warned at all after
the 60-day warm-up (false alarms). Results go to bench/EARLY_WARNING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine  # noqa: E402 (sys.path set above)

WARM_UP_DAYS = 60
LEAD_DAYS = 30


def replay(events: list[dict], folder: str):
    os.environ.update(
        DATABASE_URL=f"sqlite:///{folder}/early.db",
        REDIS_URL=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15"),
        API_TOKENS="bench",
        TRIAGE_INSTANCE=folder,
        LOG_LEVEL="WARNING",
    )
    from flask_migrate import upgrade
    from rq import SimpleWorker

    from app import create_app
    from app.intake.signatures import sign
    from app.jobs import ALL, queue
    from app.redis_conn import get_redis

    app = create_app()
    with app.app_context():
        upgrade(revision="heads")
        get_redis().flushdb()
        client = app.test_client()
        worker = SimpleWorker([queue(name) for name in ALL], connection=get_redis())
        # The CRM knows the accounts first: segment and lifecycle stage scope the rules.
        for account_id in sorted({event["account_id"] for event in events}):
            payload = {
                "type": "account.updated",
                "occurred_at": events[0]["occurred_at"],
                "account": {
                    "id": account_id,
                    "name": account_id.replace("sim-", "Sim "),
                    "segment": "mid-market",
                    "lifecycle_stage": "adoption",
                    "csm": "ana@vendor.example",
                    "manager": "mo@vendor.example",
                },
            }
            body = json.dumps(payload).encode()
            msg_id, stamp = f"sim-crm-{account_id}", int(time.time())
            response = client.post(
                "/webhooks/crm",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(app.config["CRM_WEBHOOK_SECRET"], msg_id, stamp, body),
                },
            )
            assert response.status_code == 202, response.get_json()
        worker.work(burst=True, logging_level="WARNING")
        for start in range(0, len(events), 1000):
            response = client.post(
                "/api/v1/events", json=events[start : start + 1000], headers={"Authorization": "Bearer bench"}
            )
            assert response.status_code == 202, response.get_json()
            worker.work(burst=True, logging_level="WARNING")
            print(f"\r  replayed {min(start + 1000, len(events))}/{len(events)} events", end="", flush=True)
        print()
    return app


def first_warnings(app) -> dict[str, tuple[int, str]]:
    """account -> (day of the first warning, what warned)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Event, RuleFiring
    from app.models.score import HealthScore
    from bench.usage_simulator import day_of

    warnings: dict[str, tuple[int, str]] = {}

    def note(account_id, day, why):
        if day >= WARM_UP_DAYS and (account_id not in warnings or day < warnings[account_id][0]):
            warnings[account_id] = (day, why)

    with app.app_context():
        for firing, occurred_at in db.session.execute(
            select(RuleFiring, Event.occurred_at)
            .join(Event, RuleFiring.event_id == Event.id)
            .where(Event.type != "account.health_changed")
        ):
            note(firing.account_id, day_of(occurred_at), f"rule {firing.rule}")
        for score in db.session.execute(select(HealthScore).where(HealthScore.band == "red")).scalars():
            note(score.account_id, day_of(score.at), "score band red")
    return warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    from bench.usage_simulator import generate

    events, truths = generate(args.accounts, args.days, args.seed)
    print(f"{len(events)} events for {args.accounts} accounts over {args.days} days")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="triage-early-") as folder:
        app = replay(events, folder)
        warnings = first_warnings(app)
    elapsed = time.monotonic() - started
    churners = [t for t in truths if t.churn_day is not None]
    retained = [t for t in truths if t.churn_day is None]
    early = [t for t in churners if t.account_id in warnings and warnings[t.account_id][0] <= t.churn_day - LEAD_DAYS]
    late = [t for t in churners if t.account_id in warnings and t not in early]
    loud = [t for t in churners if not t.silent]
    early_loud = [t for t in early if not t.silent]
    false_alarms = [t for t in retained if t.account_id in warnings]
    sources = {}
    for _account_id, (_, why) in warnings.items():
        kind = why.split()[0] if why.startswith("score") else why
        sources[kind] = sources.get(kind, 0) + 1
    share = lambda part, whole: f"{len(part)}/{len(whole)} ({len(part) / len(whole):.0%})" if whole else "n/a"  # noqa: E731 (a one-line formatter)
    lines = [
        f"## early warning, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"`.venv/bin/python bench/early_warning.py --accounts {args.accounts} --days {args.days} --seed {args.seed}`; "
        f"{len(events)} events, replayed in {elapsed:.0f}s; machine: {machine()}",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| churners warned at least {LEAD_DAYS} days before they left | {share(early, churners)} |",
        f"| ... of churners whose data shows a decline (not 'silent') | {share(early_loud, loud)} |",
        f"| churners warned, but later than that | {share(late, churners)} |",
        f"| retained accounts warned at all after day {WARM_UP_DAYS} (false alarms) "
        f"| {share(false_alarms, retained)} |",
        f"| first warnings by source | {', '.join(f'{k}: {v}' for k, v in sorted(sources.items()))} |",
        "",
    ]
    print("\n".join(lines))
    with open(ROOT / "bench" / "EARLY_WARNING.md", "a") as results:
        results.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""The production shape on one machine: two gunicorn web processes, three forking RQ workers and
two schedulers (one holds the lock, the other waits) against one PostgreSQL and one Redis.

Every webhook goes to BOTH web processes at once with the same webhook-id, usage batches too;
afterwards each event exists once, was applied once, and caused exactly what the same input
causes in a single process (the reference run at the end). PostgreSQL only: SQLite is the
single-machine default, and several hosts cannot share its file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from rq import Queue
from rq.cron import CronScheduler, get_cron_job_history_key
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from app.models import Event, HealthChange, MailLog, PlaybookRun, RuleFiring, RunStep, Task
from app.models.usage import DailyUsage
from tests.helpers import ROOT, TEST_TOKEN, free_port, health_webhook, signed_headers

STATUSES = ("red", "yellow", "green", "black")
HEALTH_ACCOUNTS = 200  # 400 deliveries: each webhook to both web processes
USAGE_ACCOUNTS = 20  # under the early-warning rules' brake (50 launches an hour)
NEW_USERS = (3, 3, 3, 3)  # users.added counts: the training rule fires at 10 in 30 days, once
FEATURE_USES = 2  # usage.feature_used "reporting": the first is a first use, the second is not


class Stack:
    """Processes of our own, each in its own session (so a stop takes a worker's work horse too),
    logging to files whose tails a failure shows."""

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env, self.processes = folder, env, {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "w") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.processes[name]

    def logs(self, *names: str) -> str:
        return "\n".join(
            f"--- {name}\n{(self.folder / f'{name}.log').read_text()[-1200:]}" for name in names or self.processes
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_until(condition, timeout: float, what):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.25)
    return value


def usage_batch(account_ids: list[str]) -> list[dict]:
    """All of an account's events in one batch, at one event time: one job applies them in order."""
    items = []
    for account_id in account_ids:
        at = "2026-11-20T00:00:00Z"
        items += [
            {
                "id": f"{account_id}-users-{n}",
                "account_id": account_id,
                "type": "users.added",
                "occurred_at": at,
                "properties": {"count": count},
            }
            for n, count in enumerate(NEW_USERS)
        ]
        items += [
            {
                "id": f"{account_id}-feature-{n}",
                "account_id": account_id,
                "type": "usage.feature_used",
                "occurred_at": at,
                "properties": {"feature": "reporting"},
            }
            for n in range(FEATURE_USES)
        ]
    return items


def shape(db, account_id: str) -> tuple:
    """What processing left for one account, without ids, names or times: to compare accounts."""
    runs = []
    for run in db.session.scalars(select(PlaybookRun).where(PlaybookRun.account_id == account_id)):
        steps = tuple(sorted((s.name, s.kind, s.status) for s in run.steps))
        names = {s.id: s.name for s in run.steps}
        tasks = tuple(
            sorted(
                (names[t.step_id], t.assignee_role, t.priority, t.status)
                for t in db.session.scalars(select(Task).where(Task.run_id == run.id))
            )
        )
        runs.append((run.playbook, run.rule, run.status, steps, tasks))
    firings = sorted(
        (f.rule, f.outcome) for f in db.session.scalars(select(RuleFiring).where(RuleFiring.account_id == account_id))
    )
    mails = sorted(m.to for m in db.session.scalars(select(MailLog).where(MailLog.account_id == account_id)))
    changes = db.session.scalar(
        select(func.count()).select_from(HealthChange).where(HealthChange.account_id == account_id)
    )
    return tuple(sorted(runs)), tuple(firings), tuple(mails), changes


def test_two_web_processes_three_workers_two_schedulers_process_everything_once(
    db, app, test_env, database_url, tmp_path, run_jobs, auth
):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite is the single-machine default (one file, one host)")
    from app.jobs import ALL
    from app.redis_conn import get_redis
    from workers.periodic import PERIODIC
    from workers.scheduler import LOCK_KEY

    # Rate limits count per client address, and all of this comes from 127.0.0.1.
    env = {**test_env, "RATE_LIMIT_WEBHOOKS": "100000/60", "RATE_LIMIT_API": "100000/60"}
    stack, ports = Stack(tmp_path, env), [free_port(), free_port()]
    connection = get_redis()
    try:
        for index, port in enumerate(ports):
            stack.start(f"web{index}", "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app")
        for index in range(3):
            stack.start(f"worker{index}", "-m", "workers.worker")
        schedulers = [stack.start(f"scheduler{index}", "-m", "workers.scheduler") for index in range(2)]

        for port in ports:
            wait_until(lambda port=port: _healthy(port), 60, lambda port=port: f"web on {port}\n{stack.logs()}")
        # One scheduler took the lock and enqueued the first round; the workers ran it before any
        # account exists (so the monthly check-in of that round launches nothing).
        wait_until(
            lambda: _first_round_done(connection, PERIODIC),
            60,
            lambda: f"the first round of periodic jobs\n{stack.logs()}",
        )
        started = time.time()

        answers = _deliver_everything(ports)
        assert {status for status, _ in answers["statuses"]} == {202}
        # The same webhook-id at both web processes at once: one accepted, one duplicate, per webhook.
        pairs = answers["webhook_pairs"]
        assert all(sum(a["accepted"] for a in pair) == 1 and sum(a["duplicates"] for a in pair) == 1 for pair in pairs)
        usage_events = USAGE_ACCOUNTS * (len(NEW_USERS) + FEATURE_USES)
        assert sum(a["accepted"] for a in answers["batches"]) == usage_events
        assert sum(a["duplicates"] for a in answers["batches"]) == usage_events

        def settled() -> bool:
            db.session.expire_all()

            def count(model, *where) -> int:
                return db.session.scalar(select(func.count()).select_from(model).where(*where))

            return (
                not count(Event, Event.processed_at.is_(None))
                and not count(RunStep, RunStep.status.in_(("queued", "running")))
                and _idle(connection, ALL)
            )

        delivered = time.time()
        # Generous: the machine is shared (about 70 s there at a load of 5, with other suites running).
        wait_until(
            lambda: settled() and time.sleep(1) is None and settled(),
            240,
            lambda: f"the outbox to empty\n{stack.logs()}",
        )
        elapsed = time.time() - started

        # Two schedulers ran, one scheduled: one lock holder, one CronScheduler, and every periodic
        # job enqueued once per interval (two schedulers would enqueue each twice at start).
        holder = connection.get(LOCK_KEY).decode()
        assert [p.poll() for p in schedulers] == [None, None], stack.logs("scheduler0", "scheduler1")
        assert holder.rsplit(":", 1)[1] in {str(p.pid) for p in schedulers}
        assert len(CronScheduler.all(connection)) == 1
        [waiting] = [index for index, p in enumerate(schedulers) if not holder.endswith(f":{p.pid}")]
        assert "another scheduler holds the lock" in (tmp_path / f"scheduler{waiting}.log").read_text()
        for job in PERIODIC:
            history = connection.zrange(get_cron_job_history_key(job["name"]), 0, -1, withscores=True)
            times = sorted(score for _, score in history)
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert all(gap >= job["interval"] - 0.5 for gap in gaps), (job["name"], times)
            assert len(times) <= (time.time() - times[0]) // job["interval"] + 1, (job["name"], times)
            statuses = {Job.fetch(job_id.decode(), connection=connection).get_status() for job_id, _ in history}
            # Finished, or enqueued by the tick that came after the stream settled; never failed.
            assert JobStatus.FINISHED in statuses, (job["name"], statuses)
            assert statuses <= {JobStatus.FINISHED, JobStatus.QUEUED, JobStatus.STARTED}, (job["name"], statuses)
    finally:
        stack.stop()

    _assert_processed_exactly_once(db, connection, pairs)
    _assert_same_as_a_single_process(db, run_jobs, auth, app)
    print(
        f"\nproduction shape: {len(pairs)} webhooks x2 and {usage_events} usage events x2 delivered in "
        f"{delivered - started:.1f}s, settled after {elapsed:.1f}s"
    )


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:  # not listening yet, or its workers still booting
        return False


def _first_round_done(connection, periodic) -> bool:
    """Every periodic job was enqueued, and every one enqueued so far has finished."""
    histories = [connection.zrange(get_cron_job_history_key(job["name"]), 0, -1) for job in periodic]
    return all(histories) and all(
        Job.fetch(job_id.decode(), connection=connection).get_status() == JobStatus.FINISHED
        for history in histories
        for job_id in history
    )


def _idle(connection, names) -> bool:
    return not any(
        Queue(name, connection=connection).count or StartedJobRegistry(name, connection=connection).count
        for name in names
    )


def _deliver_everything(ports: list[int]) -> dict:
    """Each webhook to both web processes at the same moment (a barrier per pair); usage batches too."""
    statuses, lock = [], threading.Lock()

    def both(path: str, body: bytes, headers: dict) -> list[dict]:
        barrier, answers = threading.Barrier(2), [None, None]

        def post(index: int):
            barrier.wait()
            response = requests.post(f"http://127.0.0.1:{ports[index]}{path}", data=body, headers=headers, timeout=60)
            with lock:
                statuses.append((response.status_code, path))
            answers[index] = response.json()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def webhook(index: int) -> list[dict]:
        payload = health_webhook(account_id=f"shape-{index:03d}", to=STATUSES[index % len(STATUSES)])
        body = json.dumps(payload).encode()
        return both("/webhooks/crm", body, signed_headers(body, msg_id=f"msg_shape_{index:03d}"))

    usage_ids = [f"usage-{index:03d}" for index in range(USAGE_ACCOUNTS)]
    headers = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        pairs = list(pool.map(webhook, range(HEALTH_ACCOUNTS)))
        batches = list(
            pool.map(
                lambda ids: both("/api/v1/events", json.dumps(usage_batch(ids)).encode(), headers),
                [usage_ids[i : i + 10] for i in range(0, USAGE_ACCOUNTS, 10)],
            )
        )
    return {"statuses": statuses, "webhook_pairs": pairs, "batches": [a for pair in batches for a in pair]}


def _assert_processed_exactly_once(db, connection, pairs) -> None:
    db.session.expire_all()
    crm = db.session.scalars(select(Event).where(Event.source == "crm")).all()
    assert sorted(e.external_id for e in crm) == [f"msg_shape_{i:03d}" for i in range(len(pairs))]
    # Applied once: one history entry per status change, usage summed once (twice would double it).
    per_event = Counter(db.session.scalars(select(HealthChange.event_id)))
    assert set(per_event) == {e.id for e in crm} and set(per_event.values()) == {1}
    for row in db.session.scalars(select(DailyUsage).where(DailyUsage.account_id.like("usage-%"))):
        assert (row.new_users, row.features.get("reporting")) == (sum(NEW_USERS), FEATURE_USES), row.account_id
    # One run per launched firing, no step twice in a run, one mail per step and recipient.
    firings = db.session.scalars(select(RuleFiring).where(RuleFiring.outcome == "launched")).all()
    runs = db.session.scalars(select(PlaybookRun)).all()
    assert sorted(f.run_id for f in firings) == sorted(r.id for r in runs)
    titles = Counter((t.run_id, t.title) for t in db.session.scalars(select(Task)))
    assert set(titles.values()) == {1}
    assert set(Counter(db.session.execute(select(MailLog.step_id, MailLog.to)).all()).values()) == {1}
    # The jobs agree: nothing failed; each webhook's job (`event-<id>`) claimed its event once (a
    # second run, say by the sweeper, answers "already processed"); each automated step's job
    # carried the step out once.
    assert not any(FailedJobRegistry(name, connection=connection).count for name in ("events", "steps", "maintenance"))
    for event_id in (e.id for e in crm):
        results = Job.fetch(f"event-{event_id}", connection=connection).results()
        assert sum(r.return_value != "already processed" for r in results if r.type == r.Type.SUCCESSFUL) == 1
    done = select(RunStep.id).where(RunStep.kind == "action", RunStep.status == "succeeded")
    for step_id in db.session.scalars(done):
        results = Job.fetch(f"step-{step_id}", connection=connection).results()
        assert [r.return_value for r in results if r.type == r.Type.SUCCESSFUL].count("succeeded") == 1


def _assert_same_as_a_single_process(db, run_jobs, auth, app) -> None:
    """The same input for one account of each kind, in this process, one job after another."""
    client = app.test_client()
    for status in STATUSES:
        body = json.dumps(health_webhook(account_id=f"ref-{status}", to=status)).encode()
        assert client.post("/webhooks/crm", data=body, headers=signed_headers(body)).status_code == 202
    assert client.post("/api/v1/events", json=usage_batch(["ref-usage"]), headers=auth).status_code == 202
    run_jobs()
    db.session.expire_all()
    expected = {status: shape(db, f"ref-{status}") for status in STATUSES} | {"usage": shape(db, "ref-usage")}
    assert all(expected.values()) and expected["red"][0]  # the reference launched something
    for index in range(HEALTH_ACCOUNTS):
        account_id = f"shape-{index:03d}"
        assert shape(db, account_id) == expected[STATUSES[index % len(STATUSES)]], account_id
    for index in range(USAGE_ACCOUNTS):
        assert shape(db, f"usage-{index:03d}") == expected["usage"], f"usage-{index:03d}"
    # Nothing anywhere else: the totals are the reference's times the number of accounts.
    accounts = {status: HEALTH_ACCOUNTS // len(STATUSES) + 1 for status in STATUSES} | {"usage": USAGE_ACCOUNTS + 1}
    assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == sum(
        len(expected[kind][0]) * count for kind, count in accounts.items()
    )

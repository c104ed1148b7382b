"""Benchmark: automated playbook steps per second against bare RQ jobs, in the same run.

Both go through Redis and a real RQ SimpleWorker; a step adds what makes it durable: the
database row claimed and finished, the lease, the run moved on. Prints the numbers
(`pytest -s tests/test_workers_bench.py`); BENCH_STEPS sets the size (default 200).
"""
from __future__ import annotations

import os
import time

from rq import SimpleWorker

from tests.test_playbooks_support import make_account

N = int(os.environ.get("BENCH_STEPS", "200"))


def noop(index: int) -> int:
    return index


def test_steps_per_second_against_bare_rq_jobs(db, app, tmp_path):
    from app import catalog
    from app.playbooks.loader import load_playbooks
    from app.playbooks.runner import launch
    from app.models import Account
    from app.redis_conn import get_redis
    from workers.queues import STEPS, queue

    (tmp_path / "b.yml").write_text("name: bench\nconcurrent: true\nsteps:\n  - name: step\n"
                                    "    action: wait\n    with: {days: 0}\n")
    playbook = load_playbooks(str(tmp_path))["bench"]
    catalog.current().playbooks["bench"] = playbook
    try:
        make_account(db)
        account = db.session.get(Account, "acme")
        for _ in range(N):
            launch(playbook, account)
        db.session.commit()  # enqueues N step jobs
        started = time.perf_counter()
        SimpleWorker([queue(STEPS)], connection=get_redis()).work(burst=True, with_scheduler=False)
        steps_time = time.perf_counter() - started
    finally:
        catalog.current().playbooks.pop("bench")
    from sqlalchemy import func, select

    from app.models import RunStep

    assert db.session.scalar(select(func.count()).where(RunStep.status == "succeeded")) == N

    q = queue(STEPS)
    q.enqueue_many([q.prepare_data(noop, args=(i,)) for i in range(N)])
    started = time.perf_counter()
    SimpleWorker([q], connection=get_redis()).work(burst=True, with_scheduler=False)
    bare_time = time.perf_counter() - started
    print(f"\n{N} automated steps: {N / steps_time:.0f}/s; {N} bare RQ jobs: {N / bare_time:.0f}/s "
          f"({db.engine.dialect.name}, SimpleWorker)")
    assert N / steps_time > 5  # far from a target: only that steps are not pathologically slow

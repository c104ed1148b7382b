"""Automated playbook steps per second against bare RQ jobs, same run (issue 4).

    .venv/bin/python bench/steps.py [--steps 200] [--rounds 3] [--worker both|fork|simple]
                                    [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each round launches --steps runs of a one-step playbook (`wait {days: 0}`, the cheapest
action: what is measured is the step machinery: the row locked and claimed, the lease, the
action, the result recorded, the run moved on) and lets real RQ workers drain the step
jobs `run_step(step_id)`; then it enqueues as many bare RQ jobs that each do one trivial
database write (one INSERT and a commit through the same app context and database) and
lets the same kind of worker drain them, and as many no-op jobs (the floor: what RQ and
Redis cost per job on this machine). The rate is the number of jobs divided by the
time from the first job started to the last job ended (RQ's own timestamps), so worker
start-up is not counted. Workers:

- fork: the production worker, `python -m workers.worker --burst` (a forked child per job);
- simple: an in-process RQ SimpleWorker (no fork), as the test suite runs jobs.

Real services: Redis at BENCH_REDIS (default redis://127.0.0.1:6379/14, flushed before and
after) and a throwaway database: a SQLite file in a temp folder, or with --database-url a
PostgreSQL server where a database of its own is created and dropped. Bounded: a fixed
number of jobs, each worker waited for at most 10 minutes. Results are appended to
bench/RESULTS.md with the machine's description and the exact command.

Replaces tests/test_workers_bench.py (the same measurement as a pytest test).
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import append_results, machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
PLAYBOOK = "name: bench-step\nconcurrent: true\nsteps:\n  - name: step\n    action: wait\n    with: {days: 0}\n"
ACCOUNT = "bench-acct"


def bare_write(index: int) -> int:
    """The bare job: one row written and committed, nothing else."""
    from workers.context import with_app

    @with_app
    def write() -> int:
        from sqlalchemy import text

        from app.extensions import db

        db.session.execute(text("INSERT INTO bench_writes (n) VALUES (:n)"), {"n": index})
        db.session.commit()
        return index

    return write()


def noop(index: int) -> int:
    """The floor: an RQ job that does nothing (what RQ and Redis cost per job here)."""
    return index


def drain_rate(connection, job_ids: list[str]) -> float:
    """Jobs per second from the first start to the last end; every job must have finished."""
    from rq.job import Job, JobStatus

    jobs = Job.fetch_many(job_ids, connection=connection)
    missing = [
        job_id
        for job_id, job in zip(job_ids, jobs, strict=False)
        if job is None or job.get_status() != JobStatus.FINISHED
    ]
    if missing:
        raise RuntimeError(f"{len(missing)} jobs did not finish, e.g. {missing[:3]}")
    started = min(job.started_at for job in jobs)
    ended = max(job.ended_at for job in jobs)
    return len(jobs) / (ended - started).total_seconds()


def run_workers(kind: str, env: dict, connection) -> None:
    if kind == "fork":
        subprocess.run(
            [sys.executable, "-m", "workers.worker", "--burst"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    else:
        from rq import SimpleWorker

        from app.jobs import STEPS, queue

        SimpleWorker([queue(STEPS)], connection=connection).work(burst=True, with_scheduler=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="steps (and bare jobs) per round and worker kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=("both", "fork", "simple"), default="both")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a database is created and dropped there)")
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to bench/RESULTS.md")
    args = parser.parse_args()
    command = " ".join(["python bench/steps.py", *(shlex.quote(arg) for arg in sys.argv[1:])])
    about = machine("rq", "redis")
    kinds = ("fork", "simple") if args.worker == "both" else (args.worker,)

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    tmp = Path(tempfile.mkdtemp(prefix="triage-bench-steps-"))
    admin, pg_name = None, None
    if args.database_url:
        pg_name = f"triage_bench_{uuid.uuid4().hex[:6]}"
        admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{pg_name}"'))
        database = make_url(args.database_url).set(database=pg_name).render_as_string(hide_password=False)
    else:
        database = f"sqlite:///{tmp / 'bench.db'}"
    playbooks = tmp / "playbooks"
    shutil.copytree(ROOT / "playbooks", playbooks)
    (playbooks / "bench-step.yml").write_text(PLAYBOOK)
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": REDIS,
        "TRIAGE_INSTANCE": str(tmp / "instance"),
        "PLAYBOOKS_DIR": str(playbooks),
        "RULES_RELOAD_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "STEP_RETRY_INTERVALS": "0,0,0",
        "TRIAGE_DEMO": "0",
    }
    os.environ.update(env)
    connection = redis.Redis.from_url(REDIS)
    connection.flushdb()
    rates: dict[str, dict[str, list[float]]] = {kind: {"steps": [], "bare": [], "noop": []} for kind in kinds}
    try:
        from flask_migrate import upgrade
        from sqlalchemy import func, select

        from app import catalog, create_app
        from app.extensions import db
        from app.jobs import STEPS, queue
        from app.models import Account, RunStep
        from app.playbooks.runner import launch
        from bench.steps import bare_write as bare_job  # by module name, for the forked worker
        from bench.steps import noop as noop_job

        app = create_app()
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"), revision="heads")
            db.session.execute(text("CREATE TABLE bench_writes (n integer)"))
            db.session.add(
                Account(id=ACCOUNT, name="Bench GmbH", csm="ana@vendor.example", manager="mo@vendor.example")
            )
            db.session.commit()
            playbook = catalog.current().playbooks["bench-step"]
            account = db.session.get(Account, ACCOUNT)
            done = 0
            for round_number in range(args.rounds):
                for kind in kinds:
                    # steps: launching commits the runs and enqueues one job per step (step-<id>)
                    runs = [launch(playbook, account) for _ in range(args.steps)]
                    db.session.commit()
                    step_ids = [step.id for run in runs for step in run.steps]
                    db.session.expire_all()
                    run_workers(kind, env, connection)
                    rates[kind]["steps"].append(drain_rate(connection, [f"step-{i}" for i in step_ids]))
                    done += args.steps
                    succeeded = db.session.scalar(select(func.count()).where(RunStep.status == "succeeded"))
                    if succeeded != done:
                        raise RuntimeError(f"{succeeded} steps succeeded, expected {done}")
                    # bare: the same number of RQ jobs, one INSERT each
                    q = queue(STEPS)
                    ids = [f"bare-{round_number}-{kind}-{i}" for i in range(args.steps)]
                    q.enqueue_many(
                        [
                            q.prepare_data(bare_job, args=(i,), job_id=job_id, result_ttl=3600)
                            for i, job_id in enumerate(ids)
                        ]
                    )
                    run_workers(kind, env, connection)
                    rates[kind]["bare"].append(drain_rate(connection, ids))
                    # the floor: as many jobs that do nothing
                    ids = [f"noop-{round_number}-{kind}-{i}" for i in range(args.steps)]
                    q.enqueue_many(
                        [
                            q.prepare_data(noop_job, args=(i,), job_id=job_id, result_ttl=3600)
                            for i, job_id in enumerate(ids)
                        ]
                    )
                    run_workers(kind, env, connection)
                    rates[kind]["noop"].append(drain_rate(connection, ids))
                    print(
                        f"round {round_number + 1}, {kind} worker: steps {rates[kind]['steps'][-1]:.0f}/s, "
                        f"bare jobs {rates[kind]['bare'][-1]:.0f}/s, no-op jobs {rates[kind]['noop'][-1]:.0f}/s",
                        flush=True,
                    )
            written = db.session.scalar(text("SELECT count(*) FROM bench_writes"))
            if written != args.steps * args.rounds * len(kinds):
                raise RuntimeError(f"{written} bare writes, expected {args.steps * args.rounds * len(kinds)}")
            db.session.remove()
            db.engine.dispose()
    finally:
        connection.flushdb()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)

    dialect = "PostgreSQL" if args.database_url else "SQLite"
    lines = [
        f"## steps: automated playbook steps against bare RQ jobs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {about}",
        f"command: `{command}`",
        f"{dialect} (throwaway database), Redis {REDIS}; {args.steps} jobs per batch, "
        f"{args.rounds} alternating rounds, "
        f"medians; rate = jobs / (last end - first start) from RQ's job timestamps; one worker process",
        "",
        "| worker | Triage steps/s (`run_step`, wait 0 days) | bare RQ jobs/s (one INSERT) | ratio steps / bare | "
        "no-op RQ jobs/s (floor) |",
        "| --- | --- | --- | --- | --- |",
    ]
    names = {"fork": "`python -m workers.worker` (forks per job, production)", "simple": "RQ SimpleWorker in process"}
    for kind in kinds:
        steps, bare = statistics.median(rates[kind]["steps"]), statistics.median(rates[kind]["bare"])
        floor = statistics.median(rates[kind]["noop"])
        lines.append(f"| {names[kind]} | {steps:.0f} | {bare:.0f} | {steps / bare:.2f} | {floor:.0f} |")
    lines.append("")
    print("\n".join(lines))
    if not args.no_append:
        append_results(["", *lines])


if __name__ == "__main__":
    main()

"""The RQ worker: `python -m workers.worker` (with RQ's scheduler for retries and waits).

It loads the app once (rules, playbooks, settings) and by default runs each job in its own
process: no fork, the database connections and SQLAlchemy's compiled statements kept from one
job to the next. bench/webhook_load.py measured an event job at about 20 ms this way against
about 200 ms in a freshly forked child (which starts with an empty statement cache and a new
connection), so one such worker does the work of about ten forking ones.

`--fork` runs each job in a forked child instead (RQ's classic Worker): a job that crashes the
interpreter cannot take the worker with it. Without it, such a job ends the worker; its event
or step is then recovered like any other whose worker died (the outbox sweeper, the step
leases), so run workers under a supervisor that restarts them (`make run`, systemd, compose
all do). `--max-jobs N` makes a worker exit after N jobs, for a supervisor to start afresh.
"""

from __future__ import annotations

import argparse
import logging

from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.worker import BaseWorker

from app import catalog
from app.jobs import ALL, queue
from app.redis_conn import get_redis
from workers.context import get_app


class CatalogRefresh(BaseWorker):
    """Checks for changed rule and playbook files before each job (before the fork, in the
    forking worker), so a reload happens once in the long-lived process. (A BaseWorker
    itself so that its `super().execute_job` is RQ's; the workers' method order is unchanged.)"""

    def execute_job(self, job: Job, queue: Queue) -> None:
        catalog.refresh(get_app())
        return super().execute_job(job, queue)


class TriageWorker(CatalogRefresh, Worker):
    pass


class TriageSimpleWorker(CatalogRefresh, SimpleWorker):
    pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--fork", action="store_true", help="run each job in a forked child (slower, isolated)")
    parser.add_argument("--simple", action="store_true", help="run jobs in this process (the default)")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    parser.add_argument("--max-jobs", type=int, help="exit after this many jobs (a supervisor starts a fresh one)")
    args = parser.parse_args(argv)
    app = get_app()
    with app.app_context():
        if args.fork and args.simple:
            parser.error("--fork or --simple, not both")
        worker_class = TriageWorker if args.fork else TriageSimpleWorker
        # Maintenance every minute rather than RQ's ten: it restarts the worker's scheduler (retries,
        # waits) after a Redis outage, and finds jobs whose worker died, that much sooner.
        worker = worker_class(
            [queue(name) for name in ALL], connection=get_redis(), name=args.name, maintenance_interval=60
        )
        logging.getLogger("rq.worker").setLevel(logging.INFO)
        worker.work(burst=args.burst, with_scheduler=True, max_jobs=args.max_jobs)


if __name__ == "__main__":
    main()

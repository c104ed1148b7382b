"""The RQ worker: `python -m workers.worker` (with RQ's scheduler for retries and waits).

It loads the app once (rules, playbooks, settings); each job runs in a forked child,
so a crashing or killed job never takes the worker down.
"""
from __future__ import annotations

import argparse
import logging

from rq import SimpleWorker, Worker

from app import catalog
from app.redis_conn import get_redis
from workers.context import get_app
from workers.queues import ALL, queue


class TriageWorker(Worker):
    """Checks for changed rule and playbook files before each fork, so a reload happens once
    in the parent rather than in every short-lived job process."""

    def execute_job(self, job, queue):
        catalog.refresh(get_app())
        return super().execute_job(job, queue)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--simple", action="store_true", help="run jobs in this process (no fork)")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    args = parser.parse_args(argv)
    app = get_app()
    with app.app_context():
        worker_class = SimpleWorker if args.simple else TriageWorker
        worker = worker_class([queue(name) for name in ALL], connection=get_redis(), name=args.name)
        logging.getLogger("rq.worker").setLevel(logging.INFO)
        worker.work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main()

"""The periodic-job scheduler: `python -m workers.scheduler`.

Runs RQ's CronScheduler over the jobs in workers/schedule.py. Run exactly one (the
`make run` launcher does); a Redis lock makes a second one wait harmlessly until the
first is gone.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis

from rq.cron import CronScheduler

from app.redis_conn import get_redis
from workers.context import get_app
from workers.schedule import PERIODIC

LOCK_KEY = "triage:scheduler:lock"
LOCK_TTL = 30
log = logging.getLogger(__name__)


def acquire_lock(connection, owner: str) -> None:
    """Block until this process holds the scheduler lock (or already does)."""
    while not (connection.set(LOCK_KEY, owner, nx=True, ex=LOCK_TTL) or connection.get(LOCK_KEY) == owner.encode()):
        log.info("another scheduler holds the lock; waiting")
        time.sleep(LOCK_TTL / 3)


def keep_lock(connection, owner: str) -> None:
    """Renew the lock in the background while this process lives."""

    def renew():
        while True:
            time.sleep(LOCK_TTL / 3)
            try:
                if connection.get(LOCK_KEY) in (owner.encode(), None):
                    connection.set(LOCK_KEY, owner, ex=LOCK_TTL)
            except Exception as exc:  # Redis away for a moment: try again next round
                log.warning("could not renew the scheduler lock: %s", exc)

    threading.Thread(target=renew, daemon=True, name="scheduler-lock").start()


def main() -> None:
    app = get_app()
    with app.app_context():
        connection = get_redis()
        owner = f"{socket.gethostname()}:{os.getpid()}"
        keep_lock(connection, owner)
        while True:
            try:
                acquire_lock(connection, owner)
                scheduler = CronScheduler(connection=connection, logging_level=logging.INFO)
                for job in PERIODIC:
                    scheduler.register(job["func"], queue_name=job["queue"], interval=job["interval"],
                                       name=job["name"], job_timeout=300)
                scheduler.start()
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # Redis away: nothing can be scheduled anyway. Wait for it, then carry on.
                log.warning("Redis unavailable (%s); the scheduler retries in 5 s", exc)
                time.sleep(5)


if __name__ == "__main__":
    main()

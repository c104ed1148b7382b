"""The periodic-job scheduler: `python -m workers.scheduler`.

Runs RQ's CronScheduler over the jobs in workers/periodic.py. Run one; a second one (on
another host, or started by mistake) is harmless: only the holder of a Redis lock enqueues.

- The lock is taken with SET NX and a TTL, renewed with a compare-and-set (only by its
  holder, so a late renewal never overwrites another scheduler's fresh lock), and released
  on a clean exit (SIGTERM, Ctrl-C), so a restart or a hand-over costs no periodic round.
- Before every round the holder checks it still holds the lock (a failover to a replica
  without the key, a long pause past the TTL): if not, it stops enqueueing and waits for
  the lock again like any other scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from rq.cron import CronJob, CronScheduler

from app.redis_conn import get_redis
from workers.context import get_app
from workers.periodic import PERIODIC

LOCK_KEY = "triage:scheduler:lock"
LOCK_TTL = 30
log = logging.getLogger(__name__)

# Compare-and-set: act on the lock only while it holds our name.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class LockLost(Exception):
    """Another scheduler holds the lock now (or nobody does): stop enqueueing."""


def try_acquire(connection: redis.Redis, owner: str) -> bool:
    """Take the lock if it is free; True if this owner holds it (now or already)."""
    if connection.set(LOCK_KEY, owner, nx=True, ex=LOCK_TTL):
        return True
    return renew(connection, owner)


def renew(connection: redis.Redis, owner: str) -> bool:
    return bool(connection.eval(_RENEW, 1, LOCK_KEY, owner, LOCK_TTL))


def release(connection: redis.Redis, owner: str) -> bool:
    return bool(connection.eval(_RELEASE, 1, LOCK_KEY, owner))


def acquire_lock(connection: redis.Redis, owner: str) -> None:
    """Block until this process holds the scheduler lock."""
    while not try_acquire(connection, owner):
        log.info("another scheduler holds the lock; waiting")
        time.sleep(LOCK_TTL / 3)


def keep_lock(connection: redis.Redis, owner: str, stop: threading.Event) -> None:
    """Renew the lock in the background between rounds (a round may sleep up to 60 s)."""

    def renew_until_stopped():
        while not stop.wait(LOCK_TTL / 3):
            try:
                renew(connection, owner)
            except redis.RedisError as exc:  # Redis away for a moment: try again next round
                log.warning("could not renew the scheduler lock: %s", exc)

    threading.Thread(target=renew_until_stopped, daemon=True, name="scheduler-lock").start()


class LockedCronScheduler(CronScheduler):
    """A CronScheduler that enqueues a round only while `owner` holds the lock."""

    def __init__(self, *args: Any, owner: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def enqueue_jobs(self) -> list[CronJob]:
        if not renew(self.connection, self.owner):
            raise LockLost(f"{self.owner} no longer holds {LOCK_KEY}")
        return super().enqueue_jobs()


def main() -> None:
    app = get_app()
    with app.app_context():
        connection = get_redis()
        owner = f"{socket.gethostname()}:{os.getpid()}"
        stop = threading.Event()
        keep_lock(connection, owner, stop)
        try:
            while True:
                try:
                    acquire_lock(connection, owner)
                    scheduler = LockedCronScheduler(connection=connection, logging_level=logging.INFO, owner=owner)
                    for job in PERIODIC:
                        scheduler.register(
                            job["func"],
                            queue_name=job["queue"],
                            interval=job["interval"],
                            name=job["name"],
                            job_timeout=300,
                        )
                    scheduler.start()  # returns when asked to stop (SIGTERM, Ctrl-C)
                    return
                except LockLost as exc:
                    log.warning("%s; waiting for the lock again", exc)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    # Redis away: nothing can be scheduled anyway. Wait for it, then carry on.
                    log.warning("Redis unavailable (%s); the scheduler retries in 5 s", exc)
                    time.sleep(5)
        finally:
            stop.set()
            try:
                if release(connection, owner):
                    log.info("scheduler lock released")
            except redis.RedisError:
                pass  # it expires on its own


if __name__ == "__main__":
    main()

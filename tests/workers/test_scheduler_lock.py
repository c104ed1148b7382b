"""The scheduler's lock (workers/scheduler.py) on the real Redis: one holder enqueues, a late
renewal never takes another's lock, a holder that lost it stops, a clean exit releases it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from app.jobs import MAINTENANCE, queue
from tests.helpers import ROOT
from workers import scheduler


def noop():
    return "ok"


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(db):
    from app.redis_conn import get_redis

    connection = get_redis()
    assert scheduler.try_acquire(connection, "host-a:1")
    assert not scheduler.try_acquire(connection, "host-b:2")
    assert scheduler.try_acquire(connection, "host-a:1")  # already its own
    # B's renewal and release do nothing to A's lock.
    assert not scheduler.renew(connection, "host-b:2") and not scheduler.release(connection, "host-b:2")
    assert connection.get(scheduler.LOCK_KEY) == b"host-a:1"
    # A's lock expired and B took it: A's late renewal must not take it back.
    connection.delete(scheduler.LOCK_KEY)
    assert scheduler.try_acquire(connection, "host-b:2")
    assert not scheduler.renew(connection, "host-a:1")
    assert connection.get(scheduler.LOCK_KEY) == b"host-b:2" and 0 < connection.ttl(scheduler.LOCK_KEY) <= 30
    assert scheduler.release(connection, "host-b:2") and connection.get(scheduler.LOCK_KEY) is None


def test_a_scheduler_that_lost_the_lock_enqueues_nothing(db):
    from app.redis_conn import get_redis

    connection = get_redis()
    holder = scheduler.LockedCronScheduler(connection=connection, owner="host-a:1")
    holder.register(noop, queue_name=MAINTENANCE, interval=60, name="noop")
    assert scheduler.try_acquire(connection, "host-a:1")
    assert [job.name for job in holder.enqueue_jobs()] == ["noop"]
    assert queue(MAINTENANCE).count == 1
    # A failover to a replica without the key, then another scheduler took it.
    connection.set(scheduler.LOCK_KEY, "host-b:2")
    late = scheduler.LockedCronScheduler(connection=connection, owner="host-a:1")
    late.register(noop, queue_name=MAINTENANCE, interval=60, name="noop")
    with pytest.raises(scheduler.LockLost):
        late.enqueue_jobs()
    assert queue(MAINTENANCE).count == 1


def test_the_process_releases_its_lock_when_stopped_and_a_second_one_takes_over(db, test_env, tmp_path):
    from app.redis_conn import get_redis

    connection = get_redis()

    def start(name):
        with open(tmp_path / f"{name}.log", "w") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "workers.scheduler"],
                cwd=ROOT,
                env=test_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def holder(timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = connection.get(scheduler.LOCK_KEY)
            if value:
                return value.decode()
            time.sleep(0.1)
        return None

    first = start("first")
    second = None
    try:
        assert holder().endswith(f":{first.pid}")
        second = start("second")
        time.sleep(2)
        assert holder().endswith(f":{first.pid}")  # the second waits
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)
        # Released at exit: the second takes over at its next try (every LOCK_TTL / 3 seconds),
        # not after the whole TTL.
        deadline = time.monotonic() + scheduler.LOCK_TTL / 3 + 8
        while time.monotonic() < deadline and not (holder(1) or "").endswith(f":{second.pid}"):
            time.sleep(0.2)
        assert (holder(1) or "").endswith(f":{second.pid}"), (tmp_path / "second.log").read_text()[-2000:]
        assert "scheduler lock released" in (tmp_path / "first.log").read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        connection.delete(scheduler.LOCK_KEY)

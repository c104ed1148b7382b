"""A worker killed in the middle of a step does not lose it: real `python -m workers.worker`
processes, SIGKILLed mid-step, then the recovery job and a second worker finish it once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from app.models import PlaybookRun, RunStep
from app.playbooks.loader import load_playbooks
from tests.helpers import ROOT, launch_playbook, make_account, steps_of
from workers.maintenance import recover_lost_steps

SLOW = """name: slow-hook
steps:
  - name: call
    action: webhook
    with: {url: "{{ params.url }}/slow", text: "slow receiver"}
"""


@pytest.fixture
def slow_playbooks(tmp_path):
    """PLAYBOOKS_DIR for the worker processes: the real playbooks plus one slow webhook step."""
    folder = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", folder)
    (folder / "slow-hook.yml").write_text(SLOW)
    return folder


def worker(test_env, playbooks_dir, burst=False, mode=()):
    env = {**test_env, "PLAYBOOKS_DIR": str(playbooks_dir), "STEP_LEASE_SECONDS": "2"}
    args = [sys.executable, "-m", "workers.worker", *mode] + (["--burst"] if burst else [])
    # Own session: the kill takes the worker and its work horse, as a machine crash would.
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def children(pid: int) -> list[int]:
    """Child processes of pid, from /proc (Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def wait_until(condition, timeout=30.0, message=None):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {message() if message else ''}")
        time.sleep(0.1)


@pytest.mark.parametrize("mode", [(), ("--fork",)], ids=["in-process", "fork"])
def test_a_step_whose_worker_is_killed_is_retried_and_completes_once(db, app, receiver, test_env, slow_playbooks, mode):
    make_account(db)
    receiver.delay_first = 30  # the first delivery hangs: the worker is mid-step when killed
    playbook = load_playbooks(str(slow_playbooks))["slow-hook"]
    run_id = launch_playbook(db, "slow-hook", params={"url": receiver.url}, playbook=playbook)
    step_id = steps_of(db, run_id)["call"].id

    process = worker(test_env, slow_playbooks, mode=mode)
    try:
        receiver.wait_for(1)
        step = steps_of(db, run_id)["call"]
        assert (step.status, step.attempts) == ("running", 1)
        # The forking worker's horse is in a process group of its own; the in-process worker has
        # RQ's scheduler as a child: kill the worker and its children, as a machine crash would.
        horses = children(process.pid)
        if mode:
            assert horses, "the step runs in a forked work horse"
        for pid in horses + [process.pid]:
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # While the lease lives, the step is not touched; once it expired, it is retried.
    seen = []
    wait_until(
        lambda: seen.append(recover_lost_steps()) or seen[-1]["retried"] == [step_id],
        timeout=15,
        message=lambda: (seen[-3:], steps_of(db, run_id)["call"].status),
    )
    step = steps_of(db, run_id)["call"]
    assert step.status == "queued" and "stopped (killed or lost)" in step.error
    assert recover_lost_steps() == {"retried": [], "failed": []}

    result = subprocess.run(
        worker(test_env, slow_playbooks, burst=True).args,
        cwd=ROOT,
        timeout=120,
        env={**test_env, "PLAYBOOKS_DIR": str(slow_playbooks), "STEP_LEASE_SECONDS": "2"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    step = steps_of(db, run_id)["call"]
    assert (step.status, step.attempts, step.error) == ("succeeded", 2, None)
    assert db.session.get(PlaybookRun, run_id).status == "completed"
    # The killed attempt's request reached the receiver, but only one delivery was taken: same webhook-id.
    assert len(receiver.requests) == 2 and receiver.accepted == [f"triage-step-{step_id}"]


def test_a_lost_step_without_attempts_left_fails_visibly_and_can_be_retried(db, app, receiver, run_jobs):
    """The state a killed worker leaves on its last attempt: `running`, no lease, attempts used up."""
    from app.jobs import STEPS, queue

    make_account(db)
    run_id = launch_playbook(db, "usage-decline", params={})
    step = db.session.execute(
        select(RunStep).where(RunStep.run_id == run_id, RunStep.name == "add-to-watch-list")
    ).scalar_one()
    from app.redis_conn import get_redis

    get_redis().flushdb()  # its job is gone with the dead worker
    step.status, step.attempts = "running", 1 + len(app.config["STEP_RETRY_INTERVALS"])
    db.session.commit()
    assert recover_lost_steps() == {"retried": [], "failed": [step.id]}
    db.session.expire_all()
    run = db.session.get(PlaybookRun, run_id)
    assert run.status == "failed" and "stopped (killed or lost)" in run.status_note
    registry = FailedJobRegistry(queue=queue(STEPS))
    assert f"step-{step.id}" in registry.get_job_ids()
    registry.requeue(f"step-{step.id}")  # the admin's Retry button
    run_jobs()
    db.session.expire_all()
    assert db.session.get(RunStep, step.id).status == "succeeded"
    assert db.session.get(PlaybookRun, run_id).status in ("running", "waiting")

"""`make run` (`python -m app.serve`): the whole stack on its embedded defaults, as the README's
first command starts it: SQLite, the embedded Redis, web + WORKER_PROCESSES workers + scheduler."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests
from rq import Worker

from tests.helpers import ROOT, free_port, health_webhook, signed_headers

# Set by the test session for the in-process app; `make run` must find its own defaults.
NOT_INHERITED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CRM_WEBHOOK_SECRET",
    "API_TOKENS",
    "TRIAGE_INSTANCE",
    "STEP_RETRY_INTERVALS",
    "EVENT_RETRY_INTERVALS",
    "WEB_CONCURRENCY",
    "WORKER_PROCESSES",
)


def wait_for(check, timeout: float, what: str, output) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (requests.RequestException, redis.ConnectionError, FileNotFoundError):
            result = None  # not up yet, or slow to answer its first request on a busy machine
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{output()}")


def test_make_run_starts_every_process_works_a_webhook_and_stops_on_ctrl_c():
    # A short folder: the embedded Redis listens on a unix socket in it (at most 107 bytes).
    instance = Path(tempfile.mkdtemp(prefix="triage-run-")) / "instance"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(
        PORT=str(port), TRIAGE_INSTANCE=str(instance), TRIAGE_DEMO="0", WORKER_PROCESSES="2", WEB_CONCURRENCY="1"
    )
    log = instance.parent / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output() -> str:
        return log.read_text(errors="replace")[-4000:]

    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthz", timeout=5).status_code == 200, 90, "the web", output)
        secrets = json.loads((instance / "secrets.json").read_text())
        connection = redis.Redis(unix_socket_path=str(instance / "redis.sock"))
        wait_for(lambda: len(Worker.all(connection=connection)) == 2, 60, "two RQ workers", output)

        body = json.dumps(health_webhook("acct-run", to="red")).encode()
        response = requests.post(
            f"{base}/webhooks/crm",
            data=body,
            timeout=10,
            headers=signed_headers(body, secret=secrets["CRM_WEBHOOK_SECRET"]),
        )
        assert response.status_code == 202, response.text

        def tasks():
            answer = requests.get(
                f"{base}/api/v1/tasks",
                params={"account": "acct-run"},
                timeout=5,
                headers={"Authorization": f"Bearer {secrets['API_TOKEN']}"},
            )
            assert answer.status_code == 200, answer.text
            return answer.json() if len(answer.json()) == 2 else None

        found = wait_for(tasks, 60, "the red action plan's two tasks", output)
        assert {task["priority"] for task in found} == {"urgent"}

        # The banner's own command, as printed (on this non-default PORT, which it is not given).
        [command] = [line.split("Try it:", 1)[1].split() for line in log.read_text().splitlines() if "Try it:" in line]
        assert command[:3] == [".venv/bin/python", "-m", "app.send_webhook"]
        unaware = {key: value for key, value in env.items() if key != "PORT"}
        sent = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=unaware, capture_output=True, text=True)
        assert f"127.0.0.1:{port}/webhooks/crm" in sent.stdout and "\n202 " in sent.stdout, sent.stdout + sent.stderr
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    assert server.returncode == 0, output()
    assert "Triage stopped." in output()
    assert not (instance / "server.json").exists()  # the address goes with the server
    shutil.rmtree(instance.parent, ignore_errors=True)

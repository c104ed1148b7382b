"""`make run`: migrate, seed a demo team and portfolio, and run web + worker + scheduler.

Honours every variable of CONTRACT.md section 6. With no REDIS_URL it starts the
embedded Redis and stops it again on Ctrl-C, like everything else it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from app import create_app
from app.redis_conn import redis_url, stop_embedded_redis


def prepare(app) -> None:
    from flask_migrate import upgrade

    from app.demo import ensure_team, load_portfolio
    from app.extensions import db
    from app.models import Account

    with app.app_context():
        upgrade()
        ensure_team(app.config["ADMIN_PASSWORD"])
        if os.environ.get("TRIAGE_DEMO", "1") != "0" and not db.session.scalar(select(func.count(Account.id))):
            print("Loading the demo portfolio (first start only)...", flush=True)
            started = time.monotonic()
            events = load_portfolio()
            print(f"  {events} demo events processed in {time.monotonic() - started:.0f}s", flush=True)


def worker_names() -> list[str]:
    """WORKER_PROCESSES RQ workers (default 1). A job spends much of its time waiting on the
    database (its commit above all), so on PostgreSQL two per core keep the cores busy:
    bench/RESULTS.md measured one worker short of 50 webhooks/s on 2 cores, and two well within."""
    count = int(os.environ.get("WORKER_PROCESSES", "1"))
    if count < 1:
        raise SystemExit("WORKER_PROCESSES must be 1 or more")
    return ["worker"] if count == 1 else [f"worker-{index}" for index in range(1, count + 1)]


SERVER_FILE = "server.json"  # in the instance folder while `make run` runs: {"url": ...}


def banner(app) -> str:
    port = app.config["PORT"]
    return f"""
  Triage is running.

  Admin        http://127.0.0.1:{port}/admin/
  Sign in      admin@triage.local / {app.config["ADMIN_PASSWORD"]}
               (the demo team - ana@, ben@, mo@vendor.example ... - has the same password)
  CRM webhook  POST http://127.0.0.1:{port}/webhooks/crm
  Secret       {app.config["CRM_WEBHOOK_SECRET"]}
  API token    {app.config["API_TOKENS"][0]}
  API doc      http://127.0.0.1:{port}/api/v1/openapi.json
  Database     {app.config["SQLALCHEMY_DATABASE_URI"]}
  Redis        {app.config["REDIS_URL"]}

  Try it:      .venv/bin/python -m app.send_webhook acct-0001 red
  Ctrl-C stops everything.
"""


def main() -> None:
    from app.filecheck import FileErrors

    embedded = not os.environ.get("REDIS_URL")
    try:
        app = create_app()
    except FileErrors as exc:
        print(f"Triage did not start: the rule or playbook files do not load.\n{exc}", file=sys.stderr)
        sys.exit(1)
    os.environ["REDIS_URL"] = redis_url(app)  # the children share the (embedded) Redis
    os.environ.setdefault("TRIAGE_INSTANCE", app.instance_path)
    prepare(app)
    port = str(app.config["PORT"])
    commands = {
        "web": [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "2"),
            "--bind",
            f"0.0.0.0:{port}",
            "--access-logfile",
            "-",
            "wsgi:app",
        ],
        **{name: [sys.executable, "-m", "workers.worker"] for name in worker_names()},
        "scheduler": [sys.executable, "-m", "workers.scheduler"],
    }
    children = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
    # Where this server listens, for the tools run beside it (app/send_webhook.py): the banner's
    # commands then work as printed whatever PORT was.
    address = Path(app.instance_path) / SERVER_FILE
    address.write_text(json.dumps({"url": f"http://127.0.0.1:{port}"}))
    started = {name: time.monotonic() for name in commands}
    quick_exits = dict.fromkeys(commands, 0)
    print(banner(app), flush=True)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in list(children.items()):
            if child.poll() is None or stopping:
                continue
            # A process that dies is restarted, like a supervisor would; one that keeps dying
            # right after its start (a configuration error) stops the whole stack.
            quick_exits[name] = quick_exits[name] + 1 if time.monotonic() - started[name] < 10 else 1
            if quick_exits[name] >= 3:
                print(f"{name} keeps exiting ({child.returncode}); stopping", file=sys.stderr, flush=True)
                stopping, exit_code = True, 1
                break
            print(f"{name} exited with {child.returncode}; restarting it", file=sys.stderr, flush=True)
            time.sleep(1)
            children[name], started[name] = subprocess.Popen(commands[name]), time.monotonic()
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for child in children.values():
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
    if embedded:
        stop_embedded_redis(app.instance_path)
    address.unlink(missing_ok=True)
    print("Triage stopped.", flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()

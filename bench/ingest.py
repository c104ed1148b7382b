"""Accepted events per second through POST /api/v1/events, against a bare endpoint, same run.

    .venv/bin/python bench/ingest.py [--batches 80] [--rounds 3]

Starts its own PostgreSQL database (on the machine's server, dropped afterwards), gunicorn
for Triage (`wsgi:app`) and gunicorn for the bare endpoint (bench/bare_app.py), each with
the same number of processes, and posts pre-built batches of 500 `usage.daily` events from
4 client threads on loopback. Rounds alternate between the two servers. Bounded: a fixed
number of batches per round. No RQ worker runs: this measures acceptance (durable storage
+ enqueue), as the contract's 202 means. Results go to bench/RESULTS.md.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from bench.common import append_results, free_port, machine, post_all

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
BATCH, THREADS, TOKEN = 500, 4, "bench-token"


def wait_for(port: int, path: str, headers=None) -> None:
    for _ in range(200):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path, headers=headers or {})
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def batches(count: int, run: str) -> list[bytes]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for b in range(count):
        out.append(
            json.dumps(
                [
                    {
                        "id": f"{run}-{b}-{i}",
                        "account_id": f"acct-{i % 200}",
                        "type": "usage.daily",
                        "occurred_at": (start + timedelta(days=(b * BATCH + i) // 200 % 365)).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                        "properties": {
                            "active_users": 40 + i % 7,
                            "logins": 90 + i % 11,
                            "features": {"reporting": i % 4},
                        },
                    }
                    for i in range(BATCH)
                ]
            ).encode()
        )
    return out


def load(port: int, path: str, bodies: list[bytes], headers: dict) -> float:
    """Post every body once from THREADS keep-alive connections; events accepted per second."""
    return len(bodies) * BATCH / post_all(port, path, bodies, headers, THREADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=80, help="batches of 500 per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()

    name = f"triage_bench_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    redis.Redis.from_url(REDIS).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": REDIS,
        "API_TOKENS": TOKEN,
        "TRIAGE_INSTANCE": f"/tmp/{name}",
        "LOG_LEVEL": "WARNING",
    }
    servers = []
    try:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        # The bare app creates its table on import: once here, not racing in two web processes.
        subprocess.run([sys.executable, "-c", "import bench.bare_app"], cwd=ROOT, env=env, check=True)
        triage_port, bare_port = free_port(), free_port()
        common = ["--workers", str(args.web_workers), "--log-level", "warning"]
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *common, "--bind", f"127.0.0.1:{triage_port}", "wsgi:app"],
                cwd=ROOT,
                env=env,
            )
        )
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *common, "--bind", f"127.0.0.1:{bare_port}", "bench.bare_app:app"],
                cwd=ROOT,
                env=env,
            )
        )
        wait_for(triage_port, "/healthz")
        wait_for(bare_port, "/")
        json_headers = {"Content-Type": "application/json"}
        triage_rates, bare_rates = [], []
        for round_number in range(args.rounds):
            run = uuid.uuid4().hex[:8]
            bare_rates.append(load(bare_port, "/bare/events", batches(args.batches, run + "b"), json_headers))
            triage_rates.append(
                load(
                    triage_port,
                    "/api/v1/events",
                    batches(args.batches, run + "t"),
                    {**json_headers, "Authorization": f"Bearer {TOKEN}"},
                )
            )
            print(f"round {round_number + 1}: bare {bare_rates[-1]:.0f}/s, triage {triage_rates[-1]:.0f}/s", flush=True)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        redis.Redis.from_url(REDIS).flushdb()
    triage, bare = statistics.median(triage_rates), statistics.median(bare_rates)
    lines = [
        f"## ingest: POST /api/v1/events, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {machine()}; "
        f"PostgreSQL on loopback; gunicorn {args.web_workers} processes each; {THREADS} client threads; "
        f"batches of {BATCH}; {args.batches} batches per round; {args.rounds} rounds, medians",
        "",
        "| server | accepted events/s |",
        "| --- | --- |",
        f"| bare endpoint (insert only) | {bare:.0f} |",
        f"| Triage (token, validation, idempotency, enqueue) | {triage:.0f} |",
        f"| ratio Triage / bare | {triage / bare:.0%} |",
        "",
    ]
    print("\n".join(lines))
    append_results(lines)


if __name__ == "__main__":
    main()

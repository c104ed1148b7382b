"""Webhooks at a steady rate: accept latency and webhook-to-task latency, against bare baselines (issue 7).

    .venv/bin/python bench/webhook_load.py [--rate 50] [--seconds 60] [--worker-mode both|fork|simple]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--drain 180] [--no-append]

Starts everything itself: a throwaway database on the PostgreSQL server of --database-url
(migrated, dropped at the end), a redis-server of its own on a free port, gunicorn with the
settings of app/serve.py (`--workers $WEB_CONCURRENCY` (2), access log) and ONE worker
(`python -m workers.worker`, forking per job, or `--simple`; by default both, one after the
other). No scheduler: nothing here is periodic.

Load: an open-loop generator in this process (a dispatcher thread and a pool of client
threads; the servers are other processes) sends signed CRM webhooks (CONTRACT section 2) at
--rate per second for --seconds, each to a new account, cycling red, yellow, green: red makes
two urgent tasks (red-action-plan), yellow one (yellow-find-out-why), both in the event's
job; green's task (green-advocate) comes after its send_email step, i.e. after a second
job. Each send is scheduled at start + i / rate whatever the server does (open loop); a send
that starts more than 10 ms after its slot is counted late.

Measured: (a) each POST from its start to the 202 (a new TCP connection each time, as gunicorn's
sync workers close it); (b) end to end, from just before the POST to the moment the first task
of its account is committed and visible: a separate poller process queries the tasks table by
primary key every --poll-ms (10) ms on its own connection and notes when each account's first
task appears; the detection resolution is the measured poll period (reported). The worker's
queue length is sampled every 0.5 s. Afterwards the RQ job timestamps and the rows' own
timestamps split each red/yellow webhook into stages (where the time goes).

Baseline, same invocation, same gunicorn settings, same rate and client: bench/bare_app.py's
`POST /bare/webhook` (store the body, commit, enqueue a trivial RQ job) and a bare RQ worker
of the same kind (fork or simple) whose job inserts one row and commits, detected by the same
poller. The rate limit on webhooks (RATE_LIMIT_WEBHOOKS, default 1200/60 per client address)
is raised for the run, as every send comes from 127.0.0.1, and so is the rules' default brake
(500 launches an hour per rule; 3,000 webhooks would pause the health rules). Also reported: CPU
per webhook of each part (web, worker, PostgreSQL backends, client, poller), and `process_one`
timed in process, with a new connection, and in forked children. Results are appended to
bench/RESULTS.md with the machine's description. Bounded: rate x seconds webhooks per phase,
4 phases at most, each drained for at most --drain seconds.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import base64
import http.client
import json
import multiprocessing
import os
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.intake.signatures import sign  # the signature the server checks
from bench.common import (
    PG_SERVER,
    ROOT,
    append_results,
    create_database,
    drop_database,
    fmt_ms,
    free_port,
    machine,
    percentile,
    psycopg_conninfo,
    start_redis,
    stop,
    wait_http,
)

COLOURS = ("red", "yellow", "green")
EXPECTED_TASKS = {"red": 2, "yellow": 1, "green": 1}
LATE = 0.010  # a send that starts later than this after its slot is late


# ---- the open-loop generator --------------------------------------------------------------------


@dataclass
class Send:
    index: int
    account: str
    colour: str
    slot: float  # when it should have started (time.time())
    started: float = 0.0
    answered: float = 0.0
    status: int | None = None
    error: str | None = None
    seen: float | None = None  # first task visible (poller's clock, the same time.time())

    @property
    def ok(self) -> bool:
        return self.status == 202

    @property
    def accept(self) -> float:
        return self.answered - self.started

    @property
    def end_to_end(self) -> float:
        return self.seen - self.started if self.seen is not None else float("inf")


def webhook_body(account: str, colour: str) -> bytes:
    return json.dumps(
        {
            "type": "account.health_changed",
            "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account": {
                "id": account,
                "name": f"Load {account}",
                "csm": "ana@vendor.example",
                "manager": "mo@vendor.example",
            },
            "health": {"to": colour, "reason": "bench/webhook_load.py"},
        }
    ).encode()


def post(port: int, path: str, secret: str, send: Send) -> None:
    body = webhook_body(send.account, send.colour)
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    send.started = time.time()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        send.status = response.status
        connection.close()
    except OSError as exc:
        send.error = f"{exc.__class__.__name__}: {exc}"
    send.answered = time.time()


def open_loop(port: int, path: str, secret: str, sends: list[Send], clients: int) -> None:
    """Start each send at its slot from a pool of client threads, whatever the server does."""
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for send in sends:
            delay = send.slot - time.time()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, port, path, secret, send)


def schedule(prefix: str, rate: float, seconds: float, start: float) -> list[Send]:
    count = int(rate * seconds)
    return [
        Send(index=i, account=f"{prefix}-{i:05d}", colour=COLOURS[i % 3], slot=start + i / rate) for i in range(count)
    ]


# ---- the poller (a process of its own) ----------------------------------------------------------


def poll(
    conninfo: dict,
    table: str,
    key: str,
    prefix: str,
    redis_url: str,
    interval: float,
    stop_event,
    seen_count,
    backend_pid,
    results,
) -> None:
    """Every `interval`, read the rows added since the last look; note when each key first appears.

    A row is seen at the start of the query whose snapshot first holds it: it was committed
    after the previous query started, so the error is within one poll period."""
    import psycopg
    import redis

    connection = psycopg.connect(**conninfo, autocommit=True)
    backend_pid.value = connection.info.backend_pid
    r = redis.Redis.from_url(redis_url)
    floor = connection.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    seen: dict[str, float] = {}
    counts: dict[str, int] = {}
    ids: set[int] = set()
    top = floor
    periods, queue_samples = [], []
    next_sample = 0.0
    query = f"SELECT id, {key} FROM {table} WHERE id > %s ORDER BY id"
    last = time.time()
    while not stop_event.is_set():
        started = time.time()
        # Rescan a window below the highest id seen: a row with a lower id may commit later.
        for row_id, row_key in connection.execute(query, (max(floor, top - 200),)):
            if row_id in ids:
                continue
            ids.add(row_id)
            top = max(top, row_id)
            if not row_key.startswith(prefix):
                continue
            counts[row_key] = counts.get(row_key, 0) + 1
            seen.setdefault(row_key, started)
        seen_count.value = len(seen)
        if started >= next_sample:
            pipe = r.pipeline()
            for name in ("events", "steps", "bare"):
                pipe.llen(f"rq:queue:{name}")
            queue_samples.append((started, *pipe.execute()))
            next_sample = started + 0.5
        periods.append(started - last)
        last = started
        time.sleep(max(0.0, interval - (time.time() - started)))
    results.put({"seen": seen, "counts": counts, "periods": periods[1:], "queue": queue_samples})


class Poller:
    def __init__(self, conninfo: dict, table: str, key: str, prefix: str, redis_url: str, interval: float):
        context = multiprocessing.get_context("fork")  # started before any client thread exists
        self.stop_event, self.seen_count, self.results = context.Event(), context.Value("i", 0), context.Queue()
        self.backend_pid = context.Value("i", 0)
        self.process = context.Process(
            target=poll,
            args=(
                conninfo,
                table,
                key,
                prefix,
                redis_url,
                interval,
                self.stop_event,
                self.seen_count,
                self.backend_pid,
                self.results,
            ),
        )
        self.process.start()
        while not self.backend_pid.value and self.process.is_alive():
            time.sleep(0.01)

    def finish(self) -> dict:
        self.stop_event.set()
        data = self.results.get(timeout=60)
        self.process.join(timeout=10)
        return data


# ---- one phase: a server, a worker, the load ----------------------------------------------------


@dataclass
class Phase:
    mode: str  # fork | simple
    server: str  # bare | triage
    sends: list[Send] = field(default_factory=list)
    periods: list[float] = field(default_factory=list)
    queue: list[tuple] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    load_window: tuple[float, float] = (0.0, 0.0)
    jobs: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)


def start_stack(server: str, mode: str, env: dict, port: int, web_workers: int, logs: Path, workers: int = 1) -> list:
    app_ref = "wsgi:app" if server == "triage" else "bench.bare_app:app"
    # The children write to their own copies of the log's descriptor: ours closes after the start.
    with open(logs / f"{server}-{mode}-web.log", "ab") as out:
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(web_workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                app_ref,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if server == "triage":
        command = [sys.executable, "-m", "workers.worker", *(["--fork"] if mode == "fork" else [])]
    else:
        command = [sys.executable, "-c", f"from bench.bare_app import run_bare_worker; run_bare_worker({mode!r})"]
    with open(logs / f"{server}-{mode}-worker.log", "ab") as out:
        return [web] + [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT) for _ in range(workers)
        ]


def run_phase(phase: Phase, args, env: dict, secret: str, redis_url: str, conninfo: dict, logs: Path) -> Phase:
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # our own Redis: nothing else lives there
    port = free_port()
    processes = start_stack(phase.server, phase.mode, env, port, args.web_workers, logs, args.workers)
    path = "/webhooks/crm" if phase.server == "triage" else "/bare/webhook"
    table, key = ("tasks", "account_id") if phase.server == "triage" else ("bare_tasks", "key")
    try:
        wait_http(port, "/healthz" if phase.server == "triage" else "/")
        run = uuid.uuid4().hex[:6]
        # Warm-up, not measured: the first requests and jobs load code and open connections.
        warm = schedule(f"warm-{run}", 5, 1.2, time.time())
        poller = Poller(conninfo, table, key, f"warm-{run}", redis_url, args.poll_ms / 1000)
        open_loop(port, path, secret, warm, 6)
        wait_seen(poller, len(warm), 60)
        poller.finish()

        prefix = f"wl-{run}-{phase.mode}-{phase.server}"
        poller = Poller(conninfo, table, key, prefix, redis_url, args.poll_ms / 1000)
        phase.sends = schedule(prefix, args.rate, args.seconds, time.time() + 0.5)
        print(f"{phase.mode} worker, {phase.server}: {len(phase.sends)} webhooks at {args.rate}/s ...", flush=True)
        before = cpu_snapshot(processes, conninfo, poller)
        open_loop(port, path, secret, phase.sends, args.clients)
        phase.load_window = (phase.sends[0].slot, time.time())
        accepted = sum(send.ok for send in phase.sends)
        drained = wait_seen(poller, accepted, args.drain)
        phase.cpu = cpu_used(before, cpu_snapshot(processes, conninfo, poller))
        data = poller.finish()
        for send in phase.sends:
            send.seen = data["seen"].get(send.account)
        phase.periods, phase.queue, phase.counts = data["periods"], data["queue"], data["counts"]
        print(
            f"  accepted {accepted}, tasks visible for {len(data['seen'])} "
            f"({'drained' if drained else f'NOT drained after {args.drain:.0f} s'})",
            flush=True,
        )
        phase.jobs = worker_profile(redis_url, phase.load_window[0] - 1)
        if phase.server == "triage":
            phase.stages = stages(phase, conninfo, redis_url)
    finally:
        for process in processes:
            stop(process)
    return phase


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants, plus what it reaped (forked job horses)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def cpu_snapshot(processes: list, conninfo: dict, poller: Poller) -> dict:
    """CPU seconds so far of the web server, the worker, the PostgreSQL backends serving them
    (by pid, from pg_stat_activity), the poller and its backend, and this (client) process."""
    import psutil
    import psycopg

    with psycopg.connect(**conninfo, autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    backends = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            backends[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    poller_backend = backends.pop(poller.backend_pid.value, 0.0)
    me = psutil.Process().cpu_times()
    return {
        "web": _tree_cpu(processes[0].pid),
        "worker": _tree_cpu(processes[1].pid),
        "backends": backends,
        "poller": _tree_cpu(poller.process.pid) + poller_backend,
        "client": me.user + me.system,
        "at": time.time(),
    }


def cpu_used(before: dict, after: dict) -> dict:
    """CPU seconds each part used between two snapshots. Backends count when alive at both
    (pooled connections); a forked job's own backend lives for one job and is not counted."""
    common = before["backends"].keys() & after["backends"].keys()
    return {
        "web": after["web"] - before["web"],
        "worker": after["worker"] - before["worker"],
        "postgres": sum(after["backends"][pid] - before["backends"][pid] for pid in common),
        "backends": len(common),
        "poller": after["poller"] - before["poller"],
        "client": after["client"] - before["client"],
        "seconds": after["at"] - before["at"],
    }


def wait_seen(poller: Poller, count: int, timeout: float) -> bool:
    deadline = time.time() + timeout
    while poller.seen_count.value < count:
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


# ---- where the time goes ------------------------------------------------------------------------


def _rq_time(value) -> float | None:
    from rq.utils import utcparse

    return utcparse(value.decode()).replace(tzinfo=UTC).timestamp() if value else None


def _jobs(connection, job_ids: list[str]) -> list[tuple]:
    pipe = connection.pipeline()
    for job_id in job_ids:
        pipe.hmget(f"rq:job:{job_id}", "enqueued_at", "started_at", "ended_at")
    return [tuple(_rq_time(v) for v in values) for values in pipe.execute()]


def worker_profile(redis_url: str, since: float) -> dict:
    """Every job enqueued since `since` (event, step or bare jobs), from RQ's own timestamps:
    how long each ran (started to ended), the worker's own time between two jobs when the
    next was already waiting (reaping the horse, dequeueing, the catalog check, fork and the
    horse's set-up), and the capacity these imply."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    ids = [
        key.decode()[len("rq:job:") :]
        for key in connection.scan_iter("rq:job:*", count=1000)
        if key.decode().count(":") == 2
    ]
    spans = sorted(
        (started, ended, enqueued)
        for enqueued, started, ended in _jobs(connection, ids)
        if enqueued and started and ended and enqueued >= since
    )
    durations = [ended - started for started, ended, _ in spans]
    gaps = [
        started - previous_end
        for (_, previous_end, _), (started, _, enqueued) in zip(spans, spans[1:], strict=False)
        if enqueued < previous_end
    ]
    capacity = 1 / (statistics.mean(durations) + (statistics.mean(gaps) if gaps else 0)) if durations else float("nan")
    return {
        "jobs": len(spans),
        "duration": durations,
        "gap": gaps,
        "capacity": capacity,
        "ends": [ended for _, ended, _ in spans],
    }


def stages(phase: Phase, conninfo: dict, redis_url: str) -> dict:
    """Split each red/yellow webhook (task made in the event's own job) into stages, from the
    RQ job's timestamps and the rows' own (all time.time() on this one machine)."""
    import psycopg
    import redis

    by_account = {send.account: send for send in phase.sends if send.ok and send.seen}
    with psycopg.connect(**conninfo) as connection:
        rows = connection.execute(
            "SELECT e.id, e.account_id, e.received_at, e.processed_at, min(t.created_at) FROM events e "
            "JOIN tasks t ON t.event_id = e.id WHERE e.account_id = ANY(%s) GROUP BY e.id",
            (list(by_account),),
        ).fetchall()
    utc = lambda value: value.replace(tzinfo=UTC).timestamp()  # noqa: E731 (naive UTC in the table)
    connection = redis.Redis.from_url(redis_url)
    jobs = _jobs(connection, [f"event-{row[0]}" for row in rows])
    out: dict[str, list[float]] = {name: [] for name in ("received", "queue", "claim", "work", "visible")}
    for (_event_id, account, received, processed, task_created), (enqueued, started, ended) in zip(
        rows, jobs, strict=False
    ):
        send = by_account[account]
        if not (enqueued and started and ended) or send.colour == "green":
            continue
        out["received"].append(utc(received) - send.started)
        out["queue"].append(started - enqueued)
        out["claim"].append(utc(processed) - started)
        out["work"].append(utc(task_created) - utc(processed))
        out["visible"].append(send.seen - utc(task_created))
    return out


def connect_cost(conninfo: dict, count: int = 20) -> float:
    """Median time to open (and close) a new PostgreSQL connection from this machine."""
    import psycopg

    times = []
    for _ in range(count):
        started = time.perf_counter()
        psycopg.connect(**conninfo).close()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


PROFILED = (  # (label, file suffix, function names): cumulative time inside, per event
    ("lock the account (SELECT ... FOR UPDATE, create)", "app/accounts.py", ("lock_account",)),
    ("account facts and health history", "app/accounts.py", ("apply_account_facts", "record_health_change")),
    ("the account's open runs, read once (open_runs_of)", "app/playbooks/runner.py", ("open_runs_of",)),
    ("runs and tasks react to the change (on_health_change)", "app/playbooks/lifecycle.py", ("on_health_change",)),
    ("metrics (rollup queries, metrics_for)", "app/signals/metrics.py", ("metrics_for",)),
    ("facts for the rules (event_facts)", "app/matching/facts.py", ("event_facts",)),
    ("enforce: match, rule states, throttle, firing, launch", "app/matching/enforcer.py", ("enforce",)),
    ("- of which the engine (Matcher.match)", "app/matching/matcher.py", ("match",)),
    ("- of which launching the run and its tasks (launch)", "app/playbooks/runner.py", ("launch",)),
    ("- of which templates (title, instructions)", "app/templating.py", ("render",)),
    ("commit (flush of the run, steps, tasks, firing, audit)", "sqlalchemy/orm/session.py", ("commit",)),
    ("all SQL round trips (execute, whoever calls)", "sqlalchemy/engine/default.py", ("do_execute", "do_executemany")),
)


def _in_fork(fn, *args):
    """Run fn(*args) in a forked child, as RQ's forking worker runs a job; return (seconds from
    just before the fork to the job's end, the job's JSON-able result)."""
    read, write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = fn(*args)
            data = json.dumps([time.perf_counter() - started, result])
        except BaseException as exc:  # reported to the parent
            data = json.dumps([None, repr(exc)])
        os.write(write, data.encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    elapsed, result = json.loads(b"".join(chunks))
    if elapsed is None:
        raise RuntimeError(f"forked job failed: {result}")
    return elapsed, result


def profile_child(count: int) -> None:
    """In a process of its own, with the bench's settings, loaded as the worker loads itself
    (the app, its context, the catalog): `process_one` on red/yellow webhook events in forked
    children of this cold parent, then of the same parent after it processed 5 events
    itself, then in process (timed plainly, then under cProfile); prints JSON."""
    import cProfile
    import pstats

    from sqlalchemy import event as sa_event
    from sqlalchemy import text as sa_text

    from workers.context import get_app

    app = get_app()
    with app.app_context():
        from app import catalog
        from app.extensions import db
        from app.intake.store import store_event
        from app.processing import process_one

        catalog.refresh(app)
        forks = 10

        def store(total: int) -> list[int]:  # in a child, so this parent runs no SQL of its own
            db.engine.dispose(close=False)
            run, ids = uuid.uuid4().hex[:6], []
            for index in range(total):
                account = f"prof-{run}-{index}"
                payload = json.loads(webhook_body(account, COLOURS[index % 2]))
                ids.append(
                    store_event(
                        source="crm",
                        external_id=account,
                        type="account.health_changed",
                        account_id=account,
                        occurred_at=datetime.now(UTC),
                        payload=payload,
                    ).id
                )
            db.session.commit()
            return ids

        def job(event_id: int | None) -> None:  # what with_app does after a fork, then the job
            db.engine.dispose(close=False)
            if event_id is None:
                db.session.execute(sa_text("SELECT 1"))
                db.session.rollback()
            else:
                process_one(event_id)

        def compile_share(event_id: int) -> float:
            """Under cProfile in the child: the part of process_one spent compiling SQL statements."""
            db.engine.dispose(close=False)
            profiler = cProfile.Profile()
            profiler.enable()
            process_one(event_id)
            profiler.disable()
            stats = pstats.Stats(profiler).stats
            cumulative = {(path.rsplit("/", 2)[-1], name): ct for (path, _, name), (_, _, _, ct, _) in stats.items()}
            return cumulative[("elements.py", "_compile_w_cache")] / cumulative[("events.py", "process_one")]

        _, ids = _in_fork(store, 3 * forks + 7 + count)
        extra, ids = ids[-2:], ids[:-2]
        empty = [_in_fork(job, None)[0] for _ in range(forks)]
        cold = [_in_fork(job, event_id)[0] for event_id in ids[:forks]]
        cold_compile = _in_fork(compile_share, extra[0])[1]
        for event_id in ids[forks : forks + 5]:  # the parent processes a few itself
            process_one(event_id)
        warm = [_in_fork(job, event_id)[0] for event_id in ids[forks + 5 : 2 * forks + 5]]
        warm_compile = _in_fork(compile_share, extra[1])[1]
        fresh = []
        for event_id in ids[2 * forks + 5 : 3 * forks + 5]:  # in process, but a new connection each time
            db.session.remove()
            db.engine.dispose()
            started = time.perf_counter()
            process_one(event_id)
            fresh.append(time.perf_counter() - started)
        ids = ids[3 * forks :]
        statements = [0]
        sa_event.listen(db.engine, "before_cursor_execute", lambda *_: statements.__setitem__(0, statements[0] + 1))
        plain, profiled = ids[5 : 5 + count // 2], ids[5 + count // 2 :]
        started = time.perf_counter()
        for event_id in plain:
            process_one(event_id)
        per_event = (time.perf_counter() - started) / len(plain)
        per_statements = statements[0] / len(plain)
        profiler = cProfile.Profile()
        profiler.enable()
        for event_id in profiled:
            process_one(event_id)
        profiler.disable()
        stats = pstats.Stats(profiler).stats

        def cumulative(suffix: str, names: tuple[str, ...]) -> float:
            return sum(
                ct
                for (path, _, function), (_, _, _, ct, _) in stats.items()
                if function in names and path.endswith(suffix)
            ) / len(profiled)

        total = cumulative("workers/events.py", ("process_one",))
        parts = [(label, cumulative(suffix, names)) for label, suffix, names in PROFILED]
    print(
        json.dumps(
            {
                "per_event": per_event,
                "statements": per_statements,
                "profiled_total": total,
                "parts": parts,
                "count": count,
                "fork_empty": statistics.median(empty),
                "fork_cold": statistics.median(cold),
                "fork_warm": statistics.median(warm),
                "forks": forks,
                "fresh_connection": statistics.median(fresh),
                "cold_compile": cold_compile,
                "warm_compile": warm_compile,
            }
        )
    )


def profile_processing(env: dict, count: int) -> dict | None:
    done = subprocess.run(
        [sys.executable, __file__, "--profile-child", str(count)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        print(f"profile child failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the report ---------------------------------------------------------------------------------


def queue_profile(phase: Phase, every: float = 5.0) -> str:
    """Length of the worker's queues (events + steps, or bare) every few seconds from the first send."""
    if not phase.queue:
        return "n/a"
    start = phase.load_window[0]
    points, next_at = [], start
    for sampled, events, steps, bare in phase.queue:
        if sampled >= next_at:
            points.append(str(events + steps + bare))
            next_at = sampled + every
    return ", ".join(points)


def row(phase: Phase, args) -> str:
    sends = phase.sends
    ok = [s for s in sends if s.ok]
    lags = [s.started - s.slot for s in sends]
    accept = [s.accept for s in ok]
    e2e = [s.end_to_end for s in ok]
    span = max(s.started for s in sends) - min(s.started for s in sends)
    achieved = (len(sends) - 1) / span if span > 0 else float("nan")
    missing = sum(1 for s in ok if s.seen is None)
    queue_max = max((sum(sample[1:]) for sample in phase.queue), default=0)
    name = {"bare": "bare endpoint + bare RQ job", "triage": "Triage"}[phase.server]
    return (
        f"| {phase.mode} | {name} | {len(sends)} at {achieved:.1f}/s | {sum(lag > LATE for lag in lags)} "
        f"(max {fmt_ms(max(lags))}) | {len(sends) - len(ok)} | {fmt_ms(percentile(accept, 0.5))} | "
        f"{fmt_ms(percentile(accept, 0.95))} | {fmt_ms(percentile(accept, 0.99))} | {fmt_ms(percentile(e2e, 0.5))} | "
        f"{fmt_ms(percentile(e2e, 0.95))} | {fmt_ms(percentile(e2e, 0.99))} | {missing} | {queue_max} | "
        f"{fmt_ms(percentile(phase.jobs.get('duration', []), 0.5))} | "
        f"{phase.jobs.get('capacity', float('nan')):.0f}/s |"
    )


def report(phases: list[Phase], args, about: str, command: str, connect: float, profile: dict | None) -> list[str]:
    periods = [p for phase in phases for p in phase.periods]
    lines = [
        f"## webhook load: {args.rate:g} webhooks/s for {args.seconds:g} s, webhook to task, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {about}",
        f"command: `{command}`",
        f"PostgreSQL (throwaway database) and a redis-server of its own, loopback; gunicorn {args.web_workers} sync "
        f"workers as app/serve.py starts it (access log on); {args.workers} worker process(es) per phase; "
        "open-loop client: "
        f"{args.clients} threads in the bench process, a new connection per POST, red/yellow/green in turn, "
        f"each to a new account; RATE_LIMIT_WEBHOOKS raised (all sends come from one address) and the default "
        f"brake of the rules (500 launches an hour) lifted. End to end = "
        f"POST start to the account's first task row visible to a poller process querying every {args.poll_ms:g} ms "
        f"(measured period p50 {fmt_ms(percentile(periods, 0.5))}, p99 {fmt_ms(percentile(periods, 0.99))}: the "
        f"detection adds up to one period). Unseen after the drain ({args.drain:.0f} s) count as never.",
        "",
        "| worker | server | sent | late > 10 ms | errors | accept p50 | p95 | p99 | webhook to task p50 | p95 | p99 "
        "| never visible | max queue | job time p50 | worker capacity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(row(phase, args) for phase in phases),
        "",
    ]
    for mode in dict.fromkeys(phase.mode for phase in phases):
        bare = next((p for p in phases if p.mode == mode and p.server == "bare"), None)
        triage = next((p for p in phases if p.mode == mode and p.server == "triage"), None)
        if not (bare and triage):
            continue

        def ratio(f, q, triage=triage, bare=bare) -> str:
            value = percentile([f(s) for s in triage.sends if s.ok], q) / percentile(
                [f(s) for s in bare.sends if s.ok], q
            )
            return f"{value:.1f}x" if value < float("inf") else "n/a (never visible)"

        e2e = [s.end_to_end for s in triage.sends if s.ok]
        met = percentile(e2e, 0.5) < 0.1 and percentile(e2e, 0.99) < 0.5
        by_colour = ", ".join(
            f"{c} {fmt_ms(percentile([s.end_to_end for s in triage.sends if s.ok and s.colour == c], 0.5))}"
            for c in COLOURS
        )
        wrong = sum(
            1
            for s in triage.sends  # among the accounts whose tasks were seen
            if s.seen is not None and triage.counts.get(s.account, 0) != EXPECTED_TASKS[s.colour]
        )
        lines.append(
            f"- {mode} worker: Triage / bare, accept p50 {ratio(lambda s: s.accept, 0.5)}, p99 "
            f"{ratio(lambda s: s.accept, 0.99)}; webhook to task p50 {ratio(lambda s: s.end_to_end, 0.5)}; "
            f"target (p50 < 100 ms, p99 < 500 ms at {args.rate:g}/s): {'met' if met else 'NOT met'}; "
            f"p50 by colour: {by_colour}; seen accounts without the playbooks' task count: {wrong}"
        )
        lines.append(f"  - queue length (Triage), every 5 s from the first send: {queue_profile(triage)}")
        lines.append(f"  - queue length (bare), every 5 s: {queue_profile(bare)}")
    lines += [
        "",
        "CPU used from the first send to the end of the drain (user + system, from /proc), per webhook "
        "accepted or per job finished; PostgreSQL counts the pooled backends of the web workers (and of the "
        "simple worker), not the short-lived backend each forked job opens:",
        "",
        "| worker | server | web ms/webhook | worker ms/job | jobs/webhook | PostgreSQL ms/webhook | "
        "client ms/webhook | poller and its backend, % of a core | server CPU ms/webhook | webhooks/s 2 cores "
        "could carry |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in phases:
        cpu = phase.cpu
        if not cpu:
            continue
        accepted = max(1, sum(s.ok for s in phase.sends))
        end = phase.load_window[0] + cpu["seconds"]
        jobs = max(1, sum(1 for ended in phase.jobs.get("ends", []) if ended <= end))
        per_webhook = 4 / 3 if phase.server == "triage" else 1  # green's task needs a second (step) job
        server = cpu["web"] / accepted + cpu["worker"] / jobs * per_webhook + cpu["postgres"] / accepted
        lines.append(
            f"| {phase.mode} | {phase.server} | {cpu['web'] / accepted * 1000:.1f} | "
            f"{cpu['worker'] / jobs * 1000:.1f} | {per_webhook:.2f} | {cpu['postgres'] / accepted * 1000:.1f} "
            f"({cpu['backends']} backends) | {cpu['client'] / accepted * 1000:.1f} | "
            f"{cpu['poller'] / cpu['seconds']:.0%} | {server * 1000:.0f} | {2 / server:.0f} |"
        )
    triage_phases = [p for p in phases if p.server == "triage" and p.stages]
    if triage_phases:
        lines += [
            "",
            "Where the time goes, red and yellow webhooks (their tasks are made in the event's own job), "
            "p50 / p99 per stage:",
            "",
            "| stage | " + " | ".join(f"{p.mode} worker" for p in triage_phases) + " |",
            "| --- | " + " | ".join("---" for _ in triage_phases) + " |",
        ]
        labels = [
            ("accept", "POST start to 202 (client)"),
            ("received", "POST start to the event row's received_at (web)"),
            ("queue", "job enqueued to job started (queue wait, dequeue, catalog check, fork)"),
            ("claim", "job started to the event claimed (app context)"),
            ("work", "claim to task row written (DB connect in a fork, account, history, metrics, rules, launch)"),
            ("visible", "task row written to seen by the poller (commit, detection)"),
            ("gap", "worker's own time between two jobs when the next was waiting"),
        ]
        for key, label in labels:
            cells = []
            for phase in triage_phases:
                values = (
                    [s.accept for s in phase.sends if s.ok]
                    if key == "accept"
                    else phase.jobs["gap"]
                    if key == "gap"
                    else phase.stages[key]
                )
                cells.append(f"{fmt_ms(percentile(values, 0.5))} / {fmt_ms(percentile(values, 0.99))}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        bare_gaps = []
        for phase in triage_phases:
            bare = next((p for p in phases if p.mode == phase.mode and p.server == "bare"), None)
            values = bare.jobs.get("gap", []) if bare else []
            bare_gaps.append(f"{fmt_ms(percentile(values, 0.5))} / {fmt_ms(percentile(values, 0.99))}")
        lines.append("| the same for the bare RQ worker (baseline) | " + " | ".join(bare_gaps) + " |")
        lines.append(
            "| a new PostgreSQL connection, measured from the bench process | "
            + " | ".join(fmt_ms(connect) for _ in triage_phases)
            + " |"
        )
    if profile:
        total = profile["profiled_total"]
        lines += [
            "",
            f"Processing one red/yellow webhook event (`process_one`, in process, after the load, "
            f"{profile['count']} events): {fmt_ms(profile['per_event'])} each unprofiled, "
            f"{profile['statements']:.0f} SQL statements; under cProfile (which inflates Python code "
            f"more than waiting on the database), shares of the profiled {fmt_ms(total)}:",
            "",
            "| part (cumulative time inside; parts nest and overlap) | share |",
            "| --- | --- |",
        ]
        lines += [f"| {label} | {seconds / total:.0%} |" for label, seconds in profile["parts"]]
        lines += [
            "",
            f"The same job in a forked child, as the forking worker runs it (median of {profile['forks']}, "
            f"from just before the fork to the job's end, child's pool dropped as workers/context.py does):",
            "",
            "| where | per event |",
            "| --- | --- |",
            f"| fork + new connection + SELECT 1, nothing else | {fmt_ms(profile['fork_empty'])} |",
            f"| `process_one` in a child of a parent that never ran a job (the worker's parent) | "
            f"{fmt_ms(profile['fork_cold'])} (compiling SQL statements: {profile['cold_compile']:.0%} under "
            f"cProfile) |",
            f"| `process_one` in a child of a parent that processed 5 events itself first | "
            f"{fmt_ms(profile['fork_warm'])} (compiling SQL: {profile['warm_compile']:.0%}) |",
            f"| `process_one` in process, a new database connection for each | {fmt_ms(profile['fresh_connection'])} |",
            f"| `process_one` in process (the simple worker) | {fmt_ms(profile['per_event'])} |",
        ]
    lines.append("")
    return lines


def rules_without_brakes(folder: Path) -> Path:
    """rules/ as shipped, except that a rule without a brake of its own gets a very high one: the
    default (500 launches an hour) would pause the health rules after 1,500 webhooks. A text edit
    (YAML 1.1 would read the `on:` keys as booleans on a round trip)."""
    shutil.copytree(ROOT / "rules", folder)
    for path in folder.glob("*.yml"):
        blocks = re.split(r"(?m)^(?=  - name: )", path.read_text())
        path.write_text(
            "".join(
                block
                if not block.startswith("  - name: ") or re.search(r"(?m)^    brake:", block)
                else block.replace("\n", "\n    brake: {max: 10000000, per: hour}\n", 1)
                for block in blocks
            )
        )
    return folder


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=60, help="seconds of load per phase")
    parser.add_argument("--worker-mode", choices=("both", "fork", "simple"), default="both")
    parser.add_argument("--database-url", default=PG_SERVER, help="PostgreSQL server (a database is made there)")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--workers", type=int, default=1, help="worker processes (Triage's and the bare RQ's alike)")
    parser.add_argument(
        "--clients",
        type=int,
        default=128,
        help="client threads (enough that a slow server never holds back the schedule)",
    )
    parser.add_argument("--poll-ms", type=float, default=10, help="poller period")
    parser.add_argument("--drain", type=float, default=180, help="seconds to wait for the last tasks")
    parser.add_argument(
        "--profile-events",
        type=int,
        default=100,
        help="events processed in process under cProfile after the load (0: none)",
    )
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database (to look into them)")
    parser.add_argument("--profile-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        return profile_child(args.profile_child)
    command = " ".join(["python bench/webhook_load.py", *(shlex.quote(arg) for arg in sys.argv[1:])])
    about = machine("gunicorn", "rq", "psycopg")
    modes = ("fork", "simple") if args.worker_mode == "both" else (args.worker_mode,)

    tmp = Path(tempfile.mkdtemp(prefix="triage-bench-load-"))
    name, database = create_database(args.database_url)
    redis_process, redis_url = start_redis(tmp)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "TRIAGE_INSTANCE": str(tmp / "instance"),
        "CRM_WEBHOOK_SECRET": secret,
        "API_TOKENS": "bench-token",
        "RATE_LIMIT_WEBHOOKS": "1000000/60",
        "RULES_DIR": str(rules_without_brakes(tmp / "rules")),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("WEB_CONCURRENCY", None)
    conninfo = psycopg_conninfo(database)
    phases = []
    try:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([sys.executable, "-c", "import bench.bare_app"], cwd=ROOT, env=env, check=True)
        connect = connect_cost(conninfo)
        for mode in modes:
            for server in ("bare", "triage"):
                phases.append(run_phase(Phase(mode, server), args, env, secret, redis_url, conninfo, tmp))
        profile = profile_processing(env, args.profile_events) if args.profile_events else None
    finally:
        stop(redis_process)
        if args.keep:
            print(f"kept: logs in {tmp}, database {database}", flush=True)
        else:
            drop_database(args.database_url, name)
            shutil.rmtree(tmp, ignore_errors=True)
    lines = report(phases, args, about, command, connect, profile)
    print("\n".join(lines))
    if not args.no_append:
        append_results([""] + lines)


if __name__ == "__main__":
    main()

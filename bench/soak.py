"""Memory over a one-million-event soak, against baselines in the same run (issue 7).

    .venv/bin/python bench/soak.py [--events 1000000] [--minutes 10] [--parts api,worker,rules]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--no-append]

Processing one usage event in the worker costs about 4-5 ms (it was 15-35 ms), so a million
events through the whole worker path take over an hour; by default the worker part is cut at
--minutes, and the report extrapolates. What is soaked, in about 25 minutes by default:

- api: --events usage events (usage.daily mostly, some users.added, feedback.nps and
  support.ticket; 5,000 accounts) accepted through `POST /api/v1/events` in batches of 1,000
  by gunicorn as app/serve.py runs it (2 sync workers, never recycled), from 4 client threads
  on loopback. The web workers' resident memory (summed) is sampled --samples times along the
  stream. Baseline: bench/bare_app.py's `POST /bare/events` (insert only) under the same
  gunicorn settings, fed the same stream in alternating chunks. RATE_LIMIT_API is raised.
- worker: ONE `python -m workers.worker --simple` (no fork: the long-lived process where a
  leak would accumulate) working through the queued events of the api part (or a feed of its
  own) for --minutes or until all are processed; its RSS is sampled every 2 s against the number of events it has
  processed (the lowest unprocessed event). Baseline: a bare RQ SimpleWorker
  (bench/bare_app.py, one INSERT per job) for --baseline-minutes, RSS against jobs done.
- rules: the rule stage alone, in a fresh process: `event_facts` + `Matcher.match` (100
  generated rules, bench/rules_engine.py's) over --events facts, against the bare
  durable-rules engine (assert + retract on one sid) over as many.

For each: a least-squares line of RSS over events after the first 10% (warm-up: caches and
the allocator fill), its slope per 100,000 events and the growth it implies over 1,000,000
events (an extrapolation where fewer were processed). Verdict: flat when that growth is at
most 10 MB. Real services: a throwaway database on the given PostgreSQL server (dropped at
the end) and a redis-server of its own. Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import gc
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    PG_SERVER,
    ROOT,
    append_results,
    create_database,
    drop_database,
    free_port,
    machine,
    psycopg_conninfo,
    slope_per,
    start_redis,
    stop,
    tree_rss_mb,
    wait_http,
)
from bench.common import post_all as common_post_all

TOKEN = "bench-token"
BATCH = 1000
THREADS = 4
ACCOUNTS = 5000
FLAT_MB = 10  # growth over 1M events still called flat
START = datetime(2026, 1, 1, tzinfo=UTC)


# ---- the stream -----------------------------------------------------------------------------


def event(number: int, run: str) -> dict:
    """Event `number` of the stream: account number % 5,000, one day further every 5,000 events."""
    day = START + timedelta(days=(number // ACCOUNTS) % 365, seconds=number % 86400)
    kind = number % 20
    if kind == 0:
        typ, properties = "feedback.nps", {"score": number % 11, "comment": "soak"}
    elif kind == 5:
        typ, properties = "users.added", {"count": 1 + number % 3}
    elif kind == 10:
        typ, properties = (
            "support.ticket",
            {"severity": ("low", "normal", "high")[number % 3], "subject": f"Export fails ({number % 7})"},
        )
    else:
        typ, properties = (
            "usage.daily",
            {
                "active_users": 20 + number % 40,
                "logins": 50 + number % 90,
                "features": {"reporting": number % 4, "export": number % 3},
            },
        )
    return {
        "id": f"{run}-{number}",
        "account_id": f"acct-{number % ACCOUNTS:05d}",
        "type": typ,
        "occurred_at": day.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "properties": properties,
    }


def bodies(first: int, count: int, run: str) -> list[bytes]:
    return [
        json.dumps([event(n, run) for n in range(start, min(start + BATCH, first + count))]).encode()
        for start in range(first, first + count, BATCH)
    ]


def post_all(port: int, path: str, payloads: list[bytes], headers: dict) -> float:
    """Post every body from THREADS connections, a new one per request; seconds taken. Any non-202 fails."""
    return common_post_all(port, path, payloads, headers, THREADS, keep_alive=False, timeout=120)


def web_rss(master_pid: int) -> float:
    """The web workers' resident memory, summed (the master forks them and serves nothing)."""
    return sum(mb for pid, mb in tree_rss_mb(master_pid).items() if pid != master_pid)


# ---- fits and verdicts --------------------------------------------------------------------------


def fit(samples: list[tuple[float, float]]) -> dict:
    """samples: (events so far, RSS MB). Slope fitted after the first 10% of the events."""
    if not samples:
        return {"n": 0, "from": float("nan"), "to": float("nan"), "slope": float("nan"), "events": 0}
    last = samples[-1][0]
    kept = [(x, y) for x, y in samples if x >= 0.1 * last] or samples
    slope = slope_per([x for x, _ in kept], [y for _, y in kept], 100_000)
    return {
        "n": len(kept),
        "from": kept[0][1],
        "to": kept[-1][1],
        "slope": slope,
        "events": last,
        "first": samples[0][1],
    }


def fit_row(label: str, result: dict, unit: str = "events", extra: str = "") -> str:
    projected = result["slope"] * 10
    verdict = "n/a" if projected != projected else ("flat" if projected <= FLAT_MB else "GROWS")
    return (
        f"| {label} | {result['events']:,.0f} {unit}{extra} | {result['first']:.0f} MB | {result['from']:.0f} -> "
        f"{result['to']:.0f} MB | {result['slope']:+.2f} MB | {projected:+.1f} MB | {verdict} |"
    )


# ---- part 1: the events API ---------------------------------------------------------------------


def soak_api(args, triage_port: int, bare_port: int, triage_pid: int, bare_pid: int, run: str) -> dict:
    headers = {"Content-Type": "application/json"}
    chunk = max(BATCH, args.events // args.samples)
    triage, bare, seconds = [], [], {"triage": 0.0, "bare": 0.0}
    triage.append((0, web_rss(triage_pid)))
    bare.append((0, web_rss(bare_pid)))
    sent = 0
    while sent < args.events:
        count = min(chunk, args.events - sent)
        seconds["bare"] += post_all(bare_port, "/bare/events", bodies(sent, count, run + "b"), headers)
        seconds["triage"] += post_all(
            triage_port, "/api/v1/events", bodies(sent, count, run), {**headers, "Authorization": f"Bearer {TOKEN}"}
        )
        sent += count
        triage.append((sent, web_rss(triage_pid)))
        bare.append((sent, web_rss(bare_pid)))
        print(f"api: {sent:,} events; web RSS Triage {triage[-1][1]:.0f} MB, bare {bare[-1][1]:.0f} MB", flush=True)
    return {
        "triage": fit(triage),
        "bare": fit(bare),
        "rate_triage": sent / seconds["triage"],
        "rate_bare": sent / seconds["bare"],
    }


# ---- part 2: the worker -------------------------------------------------------------------------


def soak_worker(args, env: dict, conninfo: dict, logs: Path) -> dict:
    """The simple worker on the queued events for --minutes: RSS against events processed."""
    import psycopg

    with psycopg.connect(**conninfo, autocommit=True) as connection:
        first = connection.execute("SELECT min(id) FROM events WHERE processed_at IS NULL").fetchone()[0]
        if first is None:
            raise RuntimeError("no queued events for the worker")
        # The worker writes to its own copy of the log's descriptor: ours closes after the start.
        with open(logs / "worker.log", "ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "workers.worker", "--simple"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        samples, tree = [], []
        began = time.time()
        try:
            deadline = time.time() + args.minutes * 60
            while time.time() < deadline and worker.poll() is None:
                time.sleep(2)
                lowest = connection.execute(
                    "SELECT min(id) FROM events WHERE processed_at IS NULL AND id >= %s", (first,)
                ).fetchone()[0]
                done = lowest is None
                if done:
                    lowest = connection.execute("SELECT max(id) + 1 FROM events").fetchone()[0]
                memory = tree_rss_mb(worker.pid)
                samples.append((lowest - first, memory.get(worker.pid, float("nan"))))
                tree.append(sum(memory.values()))
                if done:  # all processed: samples past this point would only repeat the last count
                    break
                if len(samples) % 30 == 0:
                    print(f"worker: {samples[-1][0]:,} events processed, RSS {samples[-1][1]:.0f} MB", flush=True)
        finally:
            stop(worker, timeout=60)
        if worker.returncode not in (0, -15, None):
            raise RuntimeError(f"the worker exited with {worker.returncode}: see {logs / 'worker.log'}")
    result = fit(samples)
    result["tree_to"] = tree[-1] if tree else float("nan")
    result["minutes"] = (time.time() - began) / 60
    return result


def soak_bare_worker(args, env: dict, conninfo: dict, redis_url: str, logs: Path) -> dict:
    """A bare RQ SimpleWorker on trivial INSERT jobs, kept fed, for --baseline-minutes."""
    import psycopg
    import redis
    from rq import Queue

    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    from bench.bare_app import bare_task

    queue = Queue("bare", connection=redis.Redis.from_url(redis_url))
    with open(logs / "bare-worker.log", "ab") as out:  # the worker keeps its own copy of the descriptor
        worker = subprocess.Popen(
            [sys.executable, "-c", "from bench.bare_app import run_bare_worker; run_bare_worker('simple')"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    samples = []
    number = 0
    try:
        with psycopg.connect(**conninfo, autocommit=True) as connection:
            base = connection.execute("SELECT count(*) FROM bare_tasks").fetchone()[0]
            deadline = time.time() + args.baseline_minutes * 60
            while time.time() < deadline and worker.poll() is None:
                if queue.count < 2000:
                    queue.enqueue_many(
                        [
                            queue.prepare_data(bare_task, args=(f"soak-{number + i}",), result_ttl=60)
                            for i in range(2000)
                        ]
                    )
                    number += 2000
                time.sleep(2)
                done = connection.execute("SELECT count(*) FROM bare_tasks").fetchone()[0] - base
                samples.append((done, tree_rss_mb(worker.pid).get(worker.pid, float("nan"))))
    finally:
        stop(worker, timeout=60)
    return fit(samples)


def feed_worker(args, port: int, run: str) -> None:
    """Without the api part: queue --events events for the worker part (not sampled)."""
    post_all(
        port,
        "/api/v1/events",
        bodies(0, args.events, run),
        {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )


# ---- part 3: the rule stage (in a process of its own) -------------------------------------------


def rules_child(events: int, samples: int) -> None:
    """event_facts + Matcher.match over `events` facts, then the bare engine over as many; RSS
    sampled `samples` times each; prints JSON."""
    from bench import rules_engine as rb
    from bench.rules_engine import rss_mb

    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="triage-soak-rules-") as tmp:
        folder = Path(tmp)
        from app.playbooks.loader import load_playbooks

        rb.write_rules(
            folder / "rules", rb.generate_rules(rb.RULES, sorted(load_playbooks(str(ROOT / "playbooks"))), rng)
        )
        app = rb.make_app(folder, folder / "rules")
        from app import catalog
        from app.matching import compiler
        from app.matching.facts import event_facts
        from app.matching.matcher import Matcher
        from app.models import Account, Event

        with app.app_context():
            ruleset = catalog.current().ruleset
        accounts = rb.make_accounts(rng)
        rows = rb.make_events(5000, rng)
        inputs = [
            (
                Event(**row),
                Account(**accounts[int(row["account_id"][5:])]),
                rb.random_metrics(rng),
                {"to": row["payload"]["health"]["to"], "from": "green", "crm_from": None}
                if row["type"] == "account.health_changed"
                else None,
            )
            for row in rows
        ]
        flat = [compiler.flatten(f) for f in rb.build_facts(rows, accounts, rng)]
        for fact in flat:
            fact["sid"] = "bare"
        matcher = Matcher(ruleset)
        bare = rb.BareEngine(compiler.definition(ruleset, include_disabled=True))
        step = max(1, events // samples)

        def triage_chunk(offset: int, count: int) -> None:
            for number in range(offset, offset + count):
                event, account, metrics, health = inputs[number % len(inputs)]
                matcher.match(event_facts(event=event, account=account, metrics=metrics, health=health))

        out = {}
        for name, run_chunk in (("triage", triage_chunk), ("bare", lambda offset, count: bare.run(flat, count))):
            run_chunk(0, 5000)  # warm
            gc.collect()
            series, started = [(0, rss_mb())], time.perf_counter()
            for offset in range(0, events, step):
                run_chunk(offset, min(step, events - offset))
                series.append((min(offset + step, events), rss_mb()))
            out[name] = {"fit": fit(series), "seconds": time.perf_counter() - started}
        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()
    print(json.dumps(out))


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events through the API and the rule stage")
    parser.add_argument("--minutes", type=float, default=10, help="minutes the worker soaks")
    parser.add_argument("--baseline-minutes", type=float, default=2, help="minutes the bare RQ worker soaks")
    parser.add_argument("--samples", type=int, default=50, help="memory samples along the api and rules streams")
    parser.add_argument("--parts", default="api,worker,rules", help="any of api, worker, rules (comma-separated)")
    parser.add_argument("--database-url", default=PG_SERVER, help="PostgreSQL server (a database is made there)")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to bench/RESULTS.md")
    parser.add_argument("--rules-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rules_child:
        return rules_child(args.rules_child, args.samples)
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if parts - {"api", "worker", "rules"}:
        parser.error(f"unknown parts: {', '.join(sorted(parts - {'api', 'worker', 'rules'}))}")
    command = " ".join(["python bench/soak.py", *(shlex.quote(arg) for arg in sys.argv[1:])])
    about = machine("gunicorn", "rq", "durable_rules", "SQLAlchemy")
    started = time.time()
    results: dict = {}

    tmp = Path(tempfile.mkdtemp(prefix="triage-bench-soak-"))
    redis_process = name = None
    processes = []
    try:
        if parts & {"api", "worker"}:
            name, database = create_database(args.database_url)
            redis_process, redis_url = start_redis(tmp)
            env = {
                **os.environ,
                "DATABASE_URL": database,
                "REDIS_URL": redis_url,
                "API_TOKENS": TOKEN,
                "TRIAGE_INSTANCE": str(tmp / "instance"),
                "RATE_LIMIT_API": "1000000/60",
                "PYTHONPATH": str(ROOT),
            }
            env.pop("WEB_CONCURRENCY", None)
            subprocess.run(
                [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run([sys.executable, "-c", "import bench.bare_app"], cwd=ROOT, env=env, check=True)
            triage_port, bare_port = free_port(), free_port()
            common = ["--workers", str(args.web_workers), "--access-logfile", "-"]
            with open(tmp / "web.log", "ab") as log:  # each server keeps its own copy of the descriptor
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "gunicorn", *common, "--bind", f"127.0.0.1:{triage_port}", "wsgi:app"],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "gunicorn",
                            *common,
                            "--bind",
                            f"127.0.0.1:{bare_port}",
                            "bench.bare_app:app",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_http(triage_port, "/healthz")
            wait_http(bare_port, "/")
            run = f"soak{int(started) % 100000}"
            if "api" in parts:
                results["api"] = soak_api(args, triage_port, bare_port, processes[0].pid, processes[1].pid, run)
            else:
                feed_worker(args, triage_port, run)
            for process in processes:
                stop(process)
            if "worker" in parts:
                conninfo = psycopg_conninfo(database)
                results["worker"] = soak_worker(args, env, conninfo, tmp)
                results["bare_worker"] = soak_bare_worker(args, env, conninfo, redis_url, tmp)
    finally:
        for process in processes:
            stop(process)
        stop(redis_process)
        if name:
            drop_database(args.database_url, name)
        shutil.rmtree(tmp, ignore_errors=True)
    if "rules" in parts:
        done = subprocess.run(
            [sys.executable, __file__, "--rules-child", str(args.events), "--samples", str(args.samples)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "LOG_LEVEL": "WARNING",
                "BENCH_REDIS": os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14"),
            },
        )
        if done.returncode != 0:
            raise RuntimeError(f"rule stage failed: {done.stderr[-3000:]}")
        results["rules"] = json.loads(done.stdout.strip().splitlines()[-1])

    lines = [
        f"## soak: memory over {args.events:,} events, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {about}",
        f"command: `{command}`",
        f"took {(time.time() - started) / 60:.0f} min. Slope: least squares of RSS over events after the first 10% "
        f"(warm-up); 'over 1M' = slope x 10, an extrapolation where fewer were processed; flat = at most "
        f"{FLAT_MB} MB over 1M.",
        "",
        "| what was soaked | amount | RSS at start | RSS fitted range | slope per 100k | over 1M | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    if "api" in results:
        api = results["api"]
        lines.append(
            fit_row(
                f"Triage `POST /api/v1/events`, {args.web_workers} gunicorn workers' RSS summed",
                api["triage"],
                extra=f" at {api['rate_triage']:,.0f}/s",
            )
        )
        lines.append(
            fit_row(
                "baseline: bare `POST /bare/events` (insert only), same settings",
                api["bare"],
                extra=f" at {api['rate_bare']:,.0f}/s",
            )
        )
    if "worker" in results:
        worker = results["worker"]
        lines.append(
            fit_row(
                f"Triage worker `--simple`, {worker['minutes']:.0f} min (whole tree at the end "
                f"{worker['tree_to']:.0f} MB)",
                worker,
                extra=f" processed ({worker['events'] / (worker['minutes'] * 60):.0f}/s)",
            )
        )
        lines.append(
            fit_row(
                f"baseline: bare RQ SimpleWorker, one INSERT per job, {args.baseline_minutes:g} min",
                results["bare_worker"],
                unit="jobs",
            )
        )
    if "rules" in results:
        rules = results["rules"]
        lines.append(
            fit_row(
                "rule stage: `event_facts` + `Matcher.match`, 100 rules",
                rules["triage"]["fit"],
                extra=f" in {rules['triage']['seconds']:.0f} s",
            )
        )
        lines.append(
            fit_row(
                "baseline: bare durable-rules, assert + retract",
                rules["bare"]["fit"],
                extra=f" in {rules['bare']['seconds']:.0f} s",
            )
        )
    lines.append("")
    print("\n".join(lines))
    if not args.no_append:
        append_results([""] + lines)


if __name__ == "__main__":
    main()

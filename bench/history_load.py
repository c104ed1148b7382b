"""Loading a history set-based (`flask replay FILE --history`), against a bare COPY, same run.

    .venv/bin/python bench/history_load.py [--accounts 3000] [--days 270] [--seed 1] [--events FILE]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--max-minutes 30]
        [--profile FILE.prof] [--no-append]

The targets (the history-load issue): at least 5,000 account-days/s on 2 cores on PostgreSQL,
660,000 account-days of eight event types with daily scores in under five minutes, close to a
bare COPY of the same rows, and memory flat over a 5-million-row load.

What one run does, in a throwaway database on the given PostgreSQL server (dropped at the end):

1. The file: bench/history_generator.py's events.jsonl for --accounts/--days/--seed (written to a
   temporary folder, removed afterwards), or --events FILE as it is.
2. The baseline, the floor to approach: every line of the file read and parsed (json.loads), and
   its five fields (id, account_id, type, occurred_at, properties as jsonb) written with
   psycopg's `cursor.copy()` into a plain table without indexes, one transaction; timed.
3. Triage: `app.signals.history.load_history(path)` inside an app context, in a child process
   (this file with --child) on a database migrated to heads, Redis db 14 (flushed before and
   after: the file's last day is enqueued for the workers; no worker runs). The child times the
   phases by wrapping the module's functions (the check pass, reading + validating the second
   pass, each statement group of the chunks, scoring: frames, compute, the rest), the SQL time
   of each phase (SQLAlchemy's cursor events, and app/signals/bulk.py's COPY and raw statements,
   which bypass them, where that module exists), its own CPU and its PostgreSQL backend's CPU (/proc).
4. Memory: the parent samples the child's VmRSS from /proc every second, with the rows loaded so
   far (the child writes its progress to a file after every chunk). Reported: the first sample
   after warm-up (10% of the rows loaded, past the check pass) against the last sample of the
   chunk phase, their ratio, a slope per million rows, the peak (and the child's VmHWM), and the
   scoring phase's first and last sample. With fewer than 5 samples between them the verdict is
   "too short to judge", never a ratio of a sample with itself.

--max-minutes bounds the Triage load: past it the child is stopped and the rate so far is
reported. --profile runs the load under cProfile (times inflated; the phases still add up) and
prints the top functions by cumulative and by own time. Results go to bench/RESULTS.md.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    PG_SERVER,
    ROOT,
    append_results,
    create_database,
    drop_database,
    machine,
    psycopg_conninfo,
    slope_per,
    stop,
)

REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
TOKEN = "bench-token"
WARM_UP = 0.10  # share of the rows loaded before the first memory sample that counts
MIN_BETWEEN = 5  # samples between first-after-warm-up and last, or there is nothing to judge
TICK = 1.0  # seconds between RSS samples
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- small helpers --------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a process (any process on this machine, by /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def code_version() -> str:
    """The commit measured, and whether app/ and its files differ from it (others edit app/ while
    benches run: a number needs the code it was measured on)."""
    try:
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "app", "metrics", "scorecards", "migrations", "wsgi.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {commit.stdout.strip()}" + (
        f" with uncommitted changes in {', '.join(changed)}" if changed else ", app/ clean"
    )


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


# ---- the baseline: a bare COPY --------------------------------------------------------------


def bare_copy(conninfo: dict, path: Path) -> dict:
    """Every row of the file into a plain table with COPY, one transaction: rows and seconds."""
    import psycopg

    with psycopg.connect(**conninfo) as connection:
        connection.execute(
            "CREATE TABLE bare_events (id text, account_id text, type text, occurred_at timestamptz, properties jsonb)"
        )
        connection.commit()
        rows = 0
        started = time.perf_counter()
        cpu_started = time.process_time()
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        backend_started = cpu_seconds(backend)
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY bare_events (id, account_id, type, occurred_at, properties) FROM STDIN") as copy,
            path.open(encoding="utf-8") as handle,
        ):
            for line in handle:
                if not line.strip():
                    continue
                item = json.loads(line)
                copy.write_row(
                    (item["id"], item["account_id"], item["type"], item["occurred_at"], dumps(item["properties"]))
                )
                rows += 1
        connection.commit()
        seconds = time.perf_counter() - started
        backend_cpu = cpu_seconds(backend)
        stored = connection.execute("SELECT count(*) FROM bare_events").fetchone()[0]
        # After the timing: the account-days that have events in the file. Statistics and memory
        # first (a hash aggregate planned for 40,000 groups and spilling 1.9 million of them ran
        # for over 18 minutes at 5M rows), and bounded: without it the count is unknown, not waited for.
        connection.execute("ANALYZE bare_events")
        connection.execute("SET LOCAL work_mem = '256MB'")
        connection.execute("SET LOCAL statement_timeout = '300s'")
        try:
            account_days = connection.execute(
                "SELECT count(*) FROM (SELECT DISTINCT account_id, (occurred_at AT TIME ZONE 'UTC')::date"
                " FROM bare_events) days"
            ).fetchone()[0]
        except psycopg.errors.QueryCanceled:
            connection.rollback()
            account_days = None
        connection.execute("DROP TABLE bare_events")
        connection.commit()
    if stored != rows:
        raise RuntimeError(f"COPY stored {stored} of {rows} rows")
    return {
        "rows": rows,
        "account_days": account_days,
        "seconds": seconds,
        "cpu": time.process_time() - cpu_started,
        "backend_cpu": None if backend_cpu is None or backend_started is None else backend_cpu - backend_started,
    }


# ---- the child: load_history in process, timed by phase --------------------------------------


def child(args) -> None:
    """Runs in the child process, environment set by the parent: load the file, write JSON."""
    import cProfile
    import io
    import pstats
    import resource

    from sqlalchemy import event, text

    from app import create_app
    from app.extensions import db
    from app.signals import history

    progress_file, result_file = Path(args.progress), Path(args.result)
    state = {"phase": "start", "rows": 0, "total": 0}

    def note_progress() -> None:
        part = progress_file.with_suffix(".part")
        part.write_text(json.dumps(state))
        os.replace(part, progress_file)

    wall: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    sql: dict[str, float] = defaultdict(float)
    statements: dict[str, int] = defaultdict(int)
    by_statement: dict[str, list] = {}  # "phase: statement head" -> [executions, seconds, bound values]
    marks: list[tuple[str, float, float, float | None]] = []  # (phase, wall, own CPU, backend CPU)
    backend = {"pid": None}

    def mark(phase: str) -> None:
        state["phase"] = phase
        note_progress()
        marks.append((phase, time.perf_counter(), time.process_time(), cpu_seconds(backend["pid"] or 0)))

    def timed(name: str, function, phase: str | None = None):
        def wrapper(*a, **k):
            if phase:
                mark(phase)
            started = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                wall[name] += time.perf_counter() - started
                calls[name] += 1
                if phase == "check":
                    mark("chunks")

        return wrapper

    history.check_file = timed("check_file (first pass)", history.check_file, phase="check")
    history.score_accounts = timed("score_accounts", history.score_accounts, phase="scoring")
    for name in (
        "_load_chunk",
        "_ensure_accounts",
        "_insert_processed",
        "_roll_up",
        "_stored_days",
        "_upsert_days",
        "_upsert_first_uses",
        "_update_accounts",
        "store_events",
        "read_frame",
        "compute",
    ):
        setattr(history, name, timed(name, getattr(history, name)))

    try:  # the COPY path (app/signals/bulk.py), where there is one: its statements bypass SQLAlchemy's events
        from app.signals import bulk
    except ImportError:
        bulk = None
    if bulk is not None and hasattr(bulk, "_copy_into_temp"):
        bulk._copy_into_temp = timed("bulk._copy_into_temp (rows converted and COPYed)", bulk._copy_into_temp)
    if bulk is not None and hasattr(bulk, "_raw_execute"):
        raw_execute = bulk._raw_execute

        def timed_raw_execute(statement, *a, **k):
            started = time.perf_counter()
            try:
                return raw_execute(statement, *a, **k)
            finally:
                spent = time.perf_counter() - started
                sql[state["phase"]] += spent
                statements[state["phase"]] += 1
                wall["bulk._raw_execute (INSERT ... SELECT from the temp table)"] += spent
                calls["bulk._raw_execute (INSERT ... SELECT from the temp table)"] += 1
                head = " ".join(statement.split())[:90]
                entry = by_statement.setdefault(f"{state['phase']}: {head}", [0, 0.0, 0])
                entry[0] += 1
                entry[1] += spent

        bulk._raw_execute = timed_raw_execute

    app = create_app()
    with app.app_context():
        commit = db.session.commit

        def timed_commit():
            started = time.perf_counter()
            try:
                return commit()
            finally:
                wall[f"commit ({state['phase']})"] += time.perf_counter() - started
                calls[f"commit ({state['phase']})"] += 1

        db.session.commit = timed_commit  # the scoped session's attribute, this process only

        @event.listens_for(db.engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(db.engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):
            spent = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
            sql[state["phase"]] += spent
            statements[state["phase"]] += 1
            head = " ".join(statement.split())[:90]
            entry = by_statement.setdefault(f"{state['phase']}: {head}", [0, 0.0, 0])
            entry[0] += 1
            entry[1] += spent
            if isinstance(parameters, dict):
                entry[2] += len(parameters)
            else:
                entry[2] += sum(len(p) for p in parameters) if executemany else len(parameters or ())

        backend["pid"] = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        db.session.commit()

        def progress(count: int) -> None:
            state["rows"] += count
            note_progress()

        profiler = cProfile.Profile() if args.profile else None
        mark("load")
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = history.load_history(Path(args.events), progress=progress)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        mark("done")
        pids = db.session.execute(
            text("SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE datname = current_database()")
        ).scalar()
        db.session.remove()
        db.engine.dispose()

    phases = {}
    for (phase, at, cpu, backend_cpu), (_, next_at, next_cpu, next_backend) in zip(marks, marks[1:], strict=False):
        if phase in ("check", "chunks", "scoring"):
            phases[phase] = {
                "seconds": next_at - at,
                "cpu": next_cpu - cpu,
                "backend_cpu": None if backend_cpu is None or next_backend is None else next_backend - backend_cpu,
                "sql": sql.get(phase, 0.0),
                "statements": statements.get(phase, 0),
            }
    profile_text = {}
    if profiler:
        profiler.dump_stats(args.profile)
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.profile_top)
            profile_text[order] = out.getvalue()
    report_fields = {key: (str(value) if hasattr(value, "isoformat") else value) for key, value in vars(report).items()}
    result_file.write_text(
        json.dumps(
            {
                "report": report_fields,
                "summary": report.summary(),
                "seconds": seconds,
                "phases": phases,
                "wall": dict(wall),
                "calls": dict(calls),
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "backends_seen": pids,
                "profile": profile_text,
                "statements": by_statement,
            }
        )
    )


# ---- the parent: run the child, sample its memory -------------------------------------------


def run_child(env: dict, events: Path, folder: Path, max_minutes: float, profile: str | None, top: int) -> dict:
    progress, result = folder / "progress.json", folder / "result.json"
    command = [
        sys.executable,
        __file__,
        "--child",
        "--events",
        str(events),
        "--progress",
        str(progress),
        "--result",
        str(result),
        "--profile-top",
        str(top),
    ]
    if profile:
        command += ["--profile", profile]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    samples: list[dict] = []  # {t, phase, rows, total, rss}
    started = time.monotonic()
    stopped = False
    try:
        while process.poll() is None:
            rss = rss_mb(process.pid)
            try:
                state = json.loads(progress.read_text())
            except (OSError, ValueError):
                state = {"phase": "start", "rows": 0, "total": 0}
            if rss is not None:
                samples.append({"t": time.monotonic() - started, "rss": rss, **state})
            if time.monotonic() - started > max_minutes * 60:
                stopped = True
                print(f"  stopping the load after {max_minutes:g} min", flush=True)
                stop(process)
                break
            try:
                process.wait(timeout=TICK)
            except subprocess.TimeoutExpired:
                pass
    finally:
        stop(process)
    if not stopped and process.returncode != 0:
        raise RuntimeError(f"the load failed (exit {process.returncode})")
    out = json.loads(result.read_text()) if result.exists() else {}
    out["samples"] = samples
    out["stopped"] = stopped
    out["elapsed"] = time.monotonic() - started
    return out


def memory_figures(samples: list[dict], total_rows: int) -> dict:
    chunks = [s for s in samples if s["phase"] == "chunks"]
    scoring = [s for s in samples if s["phase"] == "scoring"]
    warm = [s for s in chunks if s["rows"] >= WARM_UP * total_rows and s["rows"] > 0]
    figures: dict = {
        "samples": len(samples),
        "chunk_samples": len(chunks),
        "peak": max((s["rss"] for s in samples), default=float("nan")),
        "peak_rows": max(samples, key=lambda s: s["rss"])["rows"] if samples else 0,
        "peak_phase": max(samples, key=lambda s: s["rss"])["phase"] if samples else "",
    }
    if len(warm) >= MIN_BETWEEN + 2:
        first, last = warm[0], warm[-1]
        figures.update(
            first=first["rss"],
            first_rows=first["rows"],
            last=last["rss"],
            last_rows=last["rows"],
            ratio=last["rss"] / first["rss"],
            between=len(warm) - 2,
            slope=slope_per([s["rows"] for s in warm], [s["rss"] for s in warm], 1_000_000),
        )
    if len(scoring) >= 3:
        figures.update(scoring_first=scoring[0]["rss"], scoring_last=scoring[-1]["rss"], scoring_samples=len(scoring))
    return figures


def database_counts(url: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("events", "daily_usage", "feature_uses", "health_scores", "accounts")
        }
        counts["event_types"] = connection.execute(text("SELECT count(DISTINCT type) FROM events")).scalar()
        counts["unprocessed"] = connection.execute(
            text("SELECT count(*) FROM events WHERE processed_at IS NULL")
        ).scalar()
        counts["with_values"] = connection.execute(
            text("SELECT count(*) FROM daily_usage WHERE values::text <> '{}'")
        ).scalar()
        counts["size_mb"] = connection.execute(text("SELECT pg_database_size(current_database())")).scalar() / 2**20
    engine.dispose()
    return counts


# ---- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--days", type=int, default=270)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=Path, help="an events file to load (default: generate one)")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_PG", PG_SERVER), help="the PostgreSQL server to use"
    )
    parser.add_argument("--max-minutes", type=float, default=30, help="stop the Triage load after this long")
    parser.add_argument("--profile", help="run the load under cProfile and write its stats here")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--progress", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import redis

    command = "bench/history_load.py " + " ".join(sys.argv[1:])
    described = machine("sqlalchemy", "psycopg")
    code = code_version()
    folder = Path(tempfile.mkdtemp(prefix="triage-history-"))
    name = None
    try:
        if args.events:
            events = args.events.resolve()
            generated = f"--events {events}"
            live_days = None
        else:
            began = time.perf_counter()
            generator = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "history_generator.py"),
                    "--accounts",
                    str(args.accounts),
                    "--days",
                    str(args.days),
                    "--seed",
                    str(args.seed),
                    "--out",
                    str(folder / "history"),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            print(generator.stdout, end="")
            found = re.search(r"account-days ([\d,]+)", generator.stdout)
            live_days = int(found.group(1).replace(",", "")) if found else None
            events = folder / "history" / "events.jsonl"
            generated = (
                f"generated: --accounts {args.accounts} --days {args.days} --seed {args.seed}"
                f" in {time.perf_counter() - began:.0f} s"
            )
        size_mb = events.stat().st_size / 2**20
        print(f"file: {events} ({size_mb:,.0f} MB)", flush=True)

        name, url = create_database(args.database_url, prefix="triage_bench_history")
        redis.Redis.from_url(REDIS).flushdb()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": REDIS,
            "API_TOKENS": TOKEN,
            "TRIAGE_INSTANCE": str(folder / "instance"),
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )

        print("baseline: bare COPY ...", flush=True)
        copy = bare_copy(psycopg_conninfo(url), events)
        print(f"  {copy['rows']:,} rows in {copy['seconds']:.1f} s ({fmt_rate(copy['rows'] / copy['seconds'])}/s)")

        print("Triage: load_history ...", flush=True)
        triage = run_child(env, events, folder, args.max_minutes, args.profile, args.profile_top)
        counts = database_counts(url)
    finally:
        if name:
            drop_database(args.database_url, name)
        redis.Redis.from_url(REDIS).flushdb()
        shutil.rmtree(folder, ignore_errors=True)

    lines = report_lines(args, command, described, generated, size_mb, copy, triage, counts, live_days, code)
    print("\n".join(lines))
    for order, text_ in triage.get("profile", {}).items():
        print(f"\n---- cProfile, sorted by {order} ----\n{text_}")
    if not args.no_append:
        append_results(lines)


def report_lines(args, command, described, generated, size_mb, copy, triage, counts, live_days, code) -> list[str]:
    rows = copy["rows"]
    # with events in the file (the daily_usage rows if that count timed out)
    account_days = copy["account_days"] if copy["account_days"] is not None else counts["daily_usage"]
    samples = triage["samples"]
    mem = memory_figures(samples, rows)
    stopped = triage["stopped"]
    lines = [
        f"## history_load: `replay --history` (load_history) against a bare COPY, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {described}; PostgreSQL on loopback (same machine); code: {code}",
        f"command: `.venv/bin/python {command}`; file: {generated}, {rows:,} rows, {size_mb:,.0f} MB"
        + ("; **run under cProfile: Triage's times are inflated**" if args.profile else ""),
        "",
    ]
    copy_rate = rows / copy["seconds"]
    if stopped:
        last = samples[-1] if samples else {"rows": 0, "phase": "?", "t": 0.0}
        chunking = [x for x in samples if x["phase"] == "chunks"]
        began = chunking[0]["t"] if chunking else 0.0
        rate = last["rows"] / (last["t"] - began) if last["t"] > began else 0.0
        lines += [
            f"**Triage stopped after {args.max_minutes:g} min** (--max-minutes) in phase `{last['phase']}`: "
            f"{last['rows']:,} of {rows:,} rows chunked and committed; check pass {began:.0f} s; chunk phase "
            f"{fmt_rate(rate)} rows/s (bare COPY: {fmt_rate(copy_rate)} rows/s, {rate / copy_rate:.1%}), so the "
            f"chunk phase alone would take about {rows / rate / 60 if rate else float('nan'):.1f} min for the "
            "whole file, before scoring.",
            "",
        ]
    else:
        report = triage["report"]
        seconds = triage["seconds"]
        scored = counts["health_scores"]
        # the account-days are the generator's (each account's live days, with or without events);
        # without them (--events), the account-days with events in the file
        target_days, target_sense = (live_days, "generator's") if live_days else (account_days, "with events")
        per_second = target_days / seconds
        target_seconds = 660_000 / per_second

        def rates(spent: float) -> str:
            out = f"{fmt_rate(rows / spent)} | {fmt_rate(account_days / spent)}"
            return out + (f" | {fmt_rate(live_days / spent)}" if live_days else " | n/a")

        lines += [
            f"Account-days: {account_days:,} with events in the file; "
            + (f"{live_days:,} live ones by the generator; " if live_days else "")
            + f"{scored:,} daily scores written.",
            "",
            "| | seconds | rows/s | account-days/s (with events) | account-days/s (generator's) |",
            "| --- | --- | --- | --- | --- |",
            f"| bare COPY (parse + COPY, no index) | {copy['seconds']:.1f} | {rates(copy['seconds'])} |",
            f"| Triage load_history | {seconds:.1f} | {rates(seconds)} |",
            f"| ratio Triage / COPY (speed) | {copy['seconds'] / seconds:.1%} | | | |",
            "",
            f"Targets ({target_sense} account-days): >= 5,000 account-days/s: "
            f"**{'met' if per_second >= 5000 else 'not met'}** ({fmt_rate(per_second)}/s; "
            f"{fmt_rate(scored / seconds)} daily scores/s); 660,000 account-days in < 300 s: at this rate "
            f"{target_seconds:.0f} s, **{'met' if target_seconds < 300 else 'not met'}**.",
            f"Report: {triage['summary']}",
            f"Stored: {counts['events']:,} events ({counts['event_types']} types, {counts['unprocessed']:,} of the "
            f"last day unprocessed), {counts['daily_usage']:,} daily_usage rows ({counts['with_values']:,} with "
            f"declared series; LoadReport counts {report['account_days']:,} rollup writes, chunk boundaries "
            f"twice), {counts['feature_uses']:,} first feature uses, {counts['health_scores']:,} health scores, "
            f"{counts['accounts']:,} accounts; database {counts['size_mb']:,.0f} MB. "
            f"COPY: {copy['cpu']:.1f} s Python CPU, "
            + (f"{copy['backend_cpu']:.1f} s backend CPU." if copy["backend_cpu"] is not None else "backend CPU n/a."),
            "",
            "| phase | seconds | share | Python CPU s | backend CPU s | SQL wait s | statements |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for phase, label in (
            ("check", "check pass (read, json.loads, validate_event)"),
            ("chunks", "chunks (read + validate again, insert, roll up, commit)"),
            ("scoring", "scoring (frames, compute, scorecard, insert)"),
        ):
            figures = triage["phases"].get(phase)
            if not figures:
                continue
            backend = "n/a" if figures["backend_cpu"] is None else f"{figures['backend_cpu']:.1f}"
            lines.append(
                f"| {label} | {figures['seconds']:.1f} | {figures['seconds'] / seconds:.0%} | {figures['cpu']:.1f} "
                f"| {backend} | {figures['sql']:.1f} | {figures['statements']:,} |"
            )
        lines += ["", "| function (wrapped in the child) | calls | seconds |", "| --- | --- | --- |"]
        wall, calls = triage["wall"], triage["calls"]
        chunk_total = wall.get("_load_chunk", 0.0)
        chunk_phase = triage["phases"].get("chunks", {}).get("seconds", 0.0)
        for key in sorted(wall, key=lambda k: -wall[k]):
            lines.append(f"| {key} | {calls[key]:,} | {wall[key]:.1f} |")
        lines.append(
            "| (chunk phase outside _load_chunk: reading + validating the 2nd pass) | "
            f"| {chunk_phase - chunk_total:.1f} |"
        )
        lines += [
            "",
            "| statement (phase: its start; cursor executions as SQLAlchemy sends them) | executions | bound values "
            "| seconds in cursor.execute |",
            "| --- | --- | --- | --- |",
        ]
        by_statement = triage.get("statements", {})
        for key in sorted(by_statement, key=lambda k: -by_statement[k][1])[:12]:
            executions, spent, bound = by_statement[key]
            lines.append(f"| `{key}` | {executions:,} | {bound:,} | {spent:.1f} |")
        lines.append("")
    if "first" in mem:
        lines.append(
            f"Memory (child VmRSS every {TICK:g} s, {mem['samples']} samples, "
            f"{mem['chunk_samples']} in the chunk phase): "
            f"first after warm-up {mem['first']:.0f} MB at {mem['first_rows']:,} rows, last of the chunk phase "
            f"{mem['last']:.0f} MB at {mem['last_rows']:,} rows ({mem['between']} samples between): ratio "
            f"**{mem['ratio']:.2f}**, slope {mem['slope']:+.1f} MB per million rows; peak {mem['peak']:.0f} MB "
            f"({mem['peak_phase']}, {mem['peak_rows']:,} rows)"
            + (f", VmHWM {triage['maxrss_mb']:.0f} MB" if "maxrss_mb" in triage else "")
            + (
                f"; scoring {mem['scoring_first']:.0f} -> {mem['scoring_last']:.0f} MB "
                f"over {mem['scoring_samples']} samples"
                if "scoring_first" in mem
                else ""
            )
            + "."
        )
    else:
        lines.append(
            f"Memory: {mem['samples']} samples, {mem['chunk_samples']} in the chunk phase: too short to judge "
            f"(fewer than {MIN_BETWEEN} samples after warm-up); peak {mem['peak']:.0f} MB."
        )
    if samples:
        picked = [samples[round(i * (len(samples) - 1) / 10)] for i in range(11)]
        lines.append(
            "RSS along the load (every tenth of the time: MB, phase, rows chunked): "
            + ", ".join(f"{s['rss']:.0f} ({s['phase']}, {s['rows']:,})" for s in picked)
            + "."
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()

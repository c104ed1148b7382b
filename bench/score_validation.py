"""How well the shipped scorecards predict churn, on a generated history nobody tuned on.

    .venv/bin/python bench/score_validation.py --seed 2 [--accounts 1000] [--days 270] [--out DIR]

Generates a history with known churn (bench/history_generator.py, its `labels.csv`), loads it
into a throwaway SQLite database the way a CS team would (`flask replay FILE --history`), and
runs `flask scorecards validate --labels labels.csv` with the scorecards in scorecards/. The
defaults were chosen on seed 1 (each indicator's own AUC there); report on any other seed.
Appends the report to bench/VALIDATION.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine  # noqa: E402 (sys.path set above)
from bench.history_generator import main as generate_history  # noqa: E402 (sys.path set above)

REPORT = ROOT / "bench" / "VALIDATION.md"
TUNED_ON = 1


def flask(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=270)
    parser.add_argument("--out", type=Path, help="keep the history and the database here")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    if args.seed == TUNED_ON:
        print(f"note: seed {TUNED_ON} is the one the defaults were tuned on; its figures are not a validation")
    folder = args.out or Path(tempfile.mkdtemp(prefix="triage-validation-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    generate_history(
        ["--accounts", str(args.accounts), "--days", str(args.days), "--seed", str(args.seed), "--out", str(folder)]
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder}/validation.db",
        "TRIAGE_INSTANCE": str(folder / "instance"),
        "REDIS_URL": os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15"),
        "API_TOKENS": "bench",
        "LOG_LEVEL": "WARNING",
    }
    flask(env, "db", "upgrade")
    loaded = flask(env, "replay", str(folder / "events.jsonl"), "--history").strip().splitlines()[-1]
    report = flask(env, "scorecards", "validate", "--labels", str(folder / "labels.csv"))
    seconds = time.monotonic() - started
    command = f"bench/score_validation.py --seed {args.seed} --accounts {args.accounts} --days {args.days}"
    lines = [
        "",
        f"## Seed {args.seed}: {args.accounts} accounts, {args.days} days ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}. Command: `{command}` ({seconds:.0f} s). Scorecards: scorecards/ as committed;"
        f" tuned on seed {TUNED_ON}.",
        "",
        f"Load: {loaded}",
        "",
        *report.replace("# Health score validation", "").strip().splitlines(),
    ]
    print("\n".join(lines))
    if not args.no_append:
        with REPORT.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

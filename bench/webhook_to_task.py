"""Webhook-to-task latency against a running Triage (`make run` in another terminal).

    .venv/bin/python bench/webhook_to_task.py [--n 50] [--url http://127.0.0.1:5000]

For each of N accounts it posts a signed red webhook and polls GET /api/v1/tasks until
the two urgent tasks are visible. The baseline, measured in the same run, is the bare
round trip of the POST (the 202): the ratio shows what processing adds on top of
accepting. Bounded: N requests, each polled for at most 10 s, loopback only.
Results are appended to bench/RESULTS.md with the machine's description.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import json
import os
import statistics
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import append_results, machine

ROOT = Path(__file__).resolve().parent.parent


def load_secrets(instance: Path) -> tuple[str, str]:
    stored = json.loads((instance / "secrets.json").read_text())
    secret = os.environ.get("CRM_WEBHOOK_SECRET") or stored["CRM_WEBHOOK_SECRET"]
    token = (os.environ.get("API_TOKENS") or stored["API_TOKEN"]).split(",")[0]
    return secret, token


def post_webhook(url: str, secret: str, account: str) -> float:
    from app.intake.signatures import sign

    body = json.dumps(
        {
            "type": "account.health_changed",
            "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account": {"id": account, "csm": "ana@vendor.example", "manager": "mo@vendor.example"},
            "health": {"to": "red", "reason": "bench"},
        }
    ).encode()
    msg_id, ts = f"bench_{uuid.uuid4().hex}", int(time.time())
    request = urllib.request.Request(
        f"{url}/webhooks/crm",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body),
        },
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    return started


def tasks_visible(url: str, token: str, account: str) -> bool:
    request = urllib.request.Request(
        f"{url}/api/v1/tasks?account={account}&status=open", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return len(json.loads(response.read())) >= 2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '5000')}")
    parser.add_argument("--instance", default=os.environ.get("TRIAGE_INSTANCE", str(ROOT / "instance")))
    args = parser.parse_args()
    secret, token = load_secrets(Path(args.instance))
    run = uuid.uuid4().hex[:6]
    accept, end_to_end = [], []
    for index in range(args.n):
        account = f"bench-{run}-{index}"
        started = post_webhook(args.url, secret, account)
        accept.append(time.perf_counter() - started)
        deadline = started + 10
        while not tasks_visible(args.url, token, account):
            if time.perf_counter() > deadline:
                raise SystemExit(f"tasks for {account} not visible within 10 s")
            time.sleep(0.005)
        end_to_end.append(time.perf_counter() - started)
    ms = lambda v: f"{v * 1000:.0f} ms"  # noqa: E731 (a one-line formatter)
    lines = [
        f"## webhook to task, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {machine()}; server: {args.url}, sequential, n={args.n}",
        "",
        "| measure | p50 | p99 |",
        "| --- | --- | --- |",
        f"| baseline: POST answered 202 | {ms(percentile(accept, 0.5))} | {ms(percentile(accept, 0.99))} |",
        f"| webhook to both tasks visible in the API | {ms(percentile(end_to_end, 0.5))} | "
        f"{ms(percentile(end_to_end, 0.99))} |",
        f"| ratio (end to end / baseline), p50 | {statistics.median(end_to_end) / statistics.median(accept):.1f}x | |",
        "",
    ]
    print("\n".join(lines))
    append_results(lines)


if __name__ == "__main__":
    main()

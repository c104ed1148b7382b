"""Fixed-window rate limits in Redis: `429` with `Retry-After` (CONTRACT.md section 4).

Limits fail open: when Redis is unreachable a request is let through, because a Redis
outage must never cost a webhook its `202` (the outbox covers the processing).
"""

from __future__ import annotations

import logging
import time

import redis
from flask import current_app, request

from app.errors import ApiError
from app.redis_conn import get_redis

log = logging.getLogger(__name__)


def parse(rule: str) -> tuple[int, int]:
    """'600/60' -> (600 requests, per 60 seconds)."""
    count, _, seconds = rule.partition("/")
    return int(count), int(seconds or 60)


def check(name: str, key: str, rule: str) -> None:
    """Count this request against `name` for `key`; raise 429 past the limit."""
    if not current_app.config.get("RATE_LIMITS_ENABLED", True):
        return
    limit, window = parse(rule)
    now = int(time.time())
    bucket = f"triage:rate:{name}:{key}:{now // window}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(bucket)
        pipe.expire(bucket, window + 1)
        count = pipe.execute()[0]
    except (redis.ConnectionError, redis.TimeoutError):
        return
    if count > limit:
        retry_after = window - now % window
        log.warning("rate limit %s hit by %s (%d in %ds)", name, key, limit, window)
        raise ApiError(
            429,
            f"too many requests: at most {limit} per {window} s; retry later",
            headers={"Retry-After": str(retry_after)},
        )


def client_address() -> str:
    # Behind a proxy, TRUSTED_PROXIES makes remote_addr the client's (ProxyFix, app/__init__.py).
    return request.remote_addr or "unknown"

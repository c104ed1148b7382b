"""Settings: one flat place of typed environment lookups (CONTRACT.md section 6).

Every variable has an embedded default that works on a fresh machine. Secrets that
must survive a restart (webhook secret, API tokens, the session key) are generated
once and kept in ``instance/secrets.json``; `make run` prints them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import overload

ROOT = Path(__file__).resolve().parent.parent


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    return int(value) if value is not None else default


def env_ints(name: str, default: list[int]) -> list[int]:
    value = env_str(name)
    return [int(item) for item in value.split(",")] if value else default


def env_list(name: str) -> list[str]:
    value = env_str(name) or ""
    return [item.strip() for item in value.split(",") if item.strip()]


def load_or_create_secrets(instance_path: str) -> dict:
    """Secrets generated on first start and reused afterwards."""
    path = Path(instance_path) / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    generated = {
        "CRM_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "API_TOKEN": "tri_" + secrets.token_urlsafe(24),
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ADMIN_PASSWORD": secrets.token_urlsafe(9),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(generated, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return generated


def build_config(instance_path: str) -> dict:
    """The app's configuration, read from the environment at app creation."""
    generated = load_or_create_secrets(instance_path)
    return {
        "SQLALCHEMY_DATABASE_URI": env_str("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'triage.db'}",
        "REDIS_URL": env_str("REDIS_URL"),  # None: the embedded Redis (app/redis_conn.py)
        "RULES_DIR": env_str("RULES_DIR", str(ROOT / "rules")),
        "PLAYBOOKS_DIR": env_str("PLAYBOOKS_DIR", str(ROOT / "playbooks")),
        "SCORECARDS_DIR": env_str("SCORECARDS_DIR", str(ROOT / "scorecards")),
        "METRICS_DIR": env_str("METRICS_DIR", str(ROOT / "metrics")),
        # Seconds between checks for changed rule and playbook files (0: only `flask rules reload`).
        "RULES_RELOAD_SECONDS": env_int("RULES_RELOAD_SECONDS", 2),
        "CRM_WEBHOOK_SECRET": env_str("CRM_WEBHOOK_SECRET", generated["CRM_WEBHOOK_SECRET"]),
        "API_TOKENS": env_list("API_TOKENS") or [generated["API_TOKEN"]],
        "SMTP_URL": env_str("SMTP_URL"),
        "MAIL_FROM": env_str("MAIL_FROM", "Triage <triage@localhost>"),
        "PORT": env_int("PORT", 5000),
        "HUBSPOT_CLIENT_SECRET": env_str("HUBSPOT_CLIENT_SECRET"),
        "HUBSPOT_HEALTH_PROPERTY": env_str("HUBSPOT_HEALTH_PROPERTY", "health_status"),
        "SALESFORCE_ORG_ID": env_str("SALESFORCE_ORG_ID"),
        "SALESFORCE_HEALTH_FIELD": env_str("SALESFORCE_HEALTH_FIELD", "Health_Status__c"),
        "SECRET_KEY": env_str("SECRET_KEY", generated["SECRET_KEY"]),
        "ADMIN_PASSWORD": generated["ADMIN_PASSWORD"],
        "G2_REVIEW_URL": env_str("G2_REVIEW_URL", "https://www.g2.com/products/your-product/reviews/start"),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # A webhook older or newer than this (seconds) is refused (Standard Webhooks).
        "WEBHOOK_TOLERANCE": 300,
        # The outbox sweeper re-enqueues an event whose job has not finished after this long.
        "OUTBOX_RETRY_AFTER": env_int("OUTBOX_RETRY_AFTER", 10),
        # Rate limits, "requests/seconds": per client address for webhooks, per token for the API,
        # per address and e-mail for sign-in attempts.
        # 100/s per address: a CRM's bulk update sends from a few addresses at well over 20/s.
        "RATE_LIMIT_WEBHOOKS": env_str("RATE_LIMIT_WEBHOOKS", "6000/60"),
        "RATE_LIMIT_API": env_str("RATE_LIMIT_API", "1200/60"),
        "RATE_LIMIT_LOGIN": env_str("RATE_LIMIT_LOGIN", "10/60"),
        "RATE_LIMITS_ENABLED": env_str("RATE_LIMITS_ENABLED", "1") == "1",
        # Days the computed band may differ from the CRM status before the CSM is asked to review.
        "HEALTH_REVIEW_AFTER_DAYS": env_int("HEALTH_REVIEW_AFTER_DAYS", 14),
        # Backoff (seconds) between attempts of a job; one attempt per entry, then the job fails.
        "EVENT_RETRY_INTERVALS": env_ints("EVENT_RETRY_INTERVALS", [2, 10, 30]),
        "STEP_RETRY_INTERVALS": env_ints("STEP_RETRY_INTERVALS", [10, 60, 300]),
        # Playbooks and workers (issue 4).
        # Where the `crm_writeback` action posts its signed callback; none: the step is skipped.
        "CRM_CALLBACK_URL": env_str("CRM_CALLBACK_URL"),
        # Processors told (signed webhook) that an off-boarded account's data was erased.
        "GDPR_PROCESSOR_WEBHOOKS": env_list("GDPR_PROCESSOR_WEBHOOKS"),
        # Days the law allows for an erasure (GDPR art. 12(3): one month).
        "GDPR_DEADLINE_DAYS": env_int("GDPR_DEADLINE_DAYS", 30),
        "GDPR_EXPORT_DIR": env_str("GDPR_EXPORT_DIR", str(Path(instance_path) / "exports")),
        # whsec_ secret that signs outbound webhooks (default: the CRM webhook secret).
        "OUTBOUND_WEBHOOK_SECRET": env_str("OUTBOUND_WEBHOOK_SECRET")
        or env_str("CRM_WEBHOOK_SECRET", generated["CRM_WEBHOOK_SECRET"]),
        # Hours a task stays overdue (its assignee reminded) before it escalates to the manager.
        "TASK_ESCALATION_DELAY_HOURS": env_int("TASK_ESCALATION_DELAY_HOURS", 24),
        # A running step's worker renews a lease this often-ish; a step without one is dead.
        "STEP_LEASE_SECONDS": env_int("STEP_LEASE_SECONDS", 60),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_str("SESSION_COOKIE_SECURE", "0") == "1",
        # How many proxies in front of the web processes set X-Forwarded-For/-Proto/-Host (nginx: 1).
        # 0 (the default) ignores those headers: a client must not choose its own address.
        "TRUSTED_PROXIES": env_int("TRUSTED_PROXIES", 0),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }

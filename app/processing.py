"""Processing a stored event: the heart of the pipeline, intake -> processing -> rules -> playbooks.

Each event is applied exactly once: the claim is an UPDATE in the same transaction as
everything the event causes, so a second run (a duplicate job, the sweeper) finds it done.
Events of one account are serialised by a row lock on the account. The workers'
`process_event(s)` jobs (workers/events.py) only give this an app context.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, update

from app.accounts import apply_account_facts, lock_account, record_health_change
from app.extensions import db
from app.intake.schemas import CrmWebhookSchema
from app.intake.store import store_event
from app.jobs import enqueue_process_events
from app.matching.enforcer import enforce
from app.matching.facts import event_facts
from app.models import Event
from app.models.types import utcnow
from app.playbooks.actions.offboard import strip_contacts
from app.playbooks.lifecycle import on_health_change
from app.playbooks.runner import open_runs_of
from app.signals.metrics import live_metric_set, metrics_for
from app.signals.rollups import USAGE_TYPES, apply_usage_event
from app.signals.scores import rescore

log = logging.getLogger(__name__)
CRM_TYPES = ("account.health_changed", "account.updated")
CRM_SOURCES = ("crm", "hubspot", "salesforce")
crm_schema = CrmWebhookSchema()
SCORE_INPUTS = USAGE_TYPES
# Built once (this runs for every event; building a statement costs about as much as sending it).
CLAIM = (
    update(Event)
    .where(Event.id == bindparam("event_id"), Event.processed_at.is_(None))
    .values(processed_at=bindparam("now"))
    .returning(Event)
)


def process_batch(event_ids: list[int]) -> dict:
    """A batch, in order, one transaction per event. A failing event does not stop the
    others; the batch fails at the end so the failures are retried (the done ones are no-ops)."""
    failed = {}
    for event_id in event_ids:
        try:
            process_one(event_id)
        except Exception as exc:
            db.session.rollback()
            failed[event_id] = f"{exc.__class__.__name__}: {exc}"
            log.exception("event %s failed", event_id)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(event_ids)} event(s) failed: {failed}")
    return {"processed": len(event_ids)}


def process_one(event_id: int) -> str:
    # The claim and the read in one statement: the row comes back only if it was unprocessed.
    event = db.session.execute(CLAIM, {"event_id": event_id, "now": utcnow()}).scalars().first()
    follow_ups: list[Event | None] = []  # internal events this one caused (a score band change)
    if event is not None:
        if event.source in CRM_SOURCES and event.type in CRM_TYPES:
            outcome = apply_crm_event(event)
        else:
            outcome = apply_signal_event(event, follow_ups)
    else:
        outcome = "already processed"
    db.session.commit()
    stored = [follow_up.id for follow_up in follow_ups if follow_up is not None]  # None: seen before
    if stored:
        enqueue_process_events(stored)  # the sweeper covers a failure
    return outcome


def apply_crm_event(event: Event) -> str:
    """A status change or account update in the CRM's shape (CONTRACT 2, or mapped from 2b)."""
    data = crm_schema.load(event.payload)
    account = lock_account(data["account"]["id"])
    if account.erased_at is not None:  # off-boarded: personal data that arrives late is not kept
        event.payload = strip_contacts(event.payload)
    apply_account_facts(account, data["account"], at=data["occurred_at"])
    if data["type"] != "account.health_changed":
        return "account updated"
    health = data["health"]
    previous = account.health_status
    _, is_current = record_health_change(
        account,
        status=health["to"],
        crm_from=health.get("from_"),
        at=data["occurred_at"],
        reason=health.get("reason"),
        changed_by=health.get("changed_by"),
        source=event.source,
        event_id=event.id,
    )
    if not is_current:
        return "older than the current status: kept in history, no rules run"
    if health["to"] == previous:  # both lower-case (the schema)
        return "status unchanged (a new reason): kept in history, no rules run"
    runs = open_runs_of(account.id)  # one read, for closing runs on the change and for launching
    on_health_change(account, previous, health["to"], runs)  # runs and tasks react to the change
    facts = event_facts(
        event=event,
        account=account,
        metrics=metrics_for(account.id, event.occurred_at),
        health={"to": health["to"], "from": previous, "crm_from": health.get("from_")},
    )
    return f"{len(enforce(facts, event, account, runs))} rule(s) fired"


def apply_signal_event(event: Event, follow_ups: list[Event | None]) -> str:
    """A usage, feedback, support, custom or internal event: rollups and score first, then the rules."""
    account = lock_account(event.account_id)
    properties = (event.payload or {}).get("properties") or {}
    metric_set = live_metric_set()
    revealed = apply_usage_event(account, event.type, event.occurred_at, properties, metric_set)
    if event.type in SCORE_INPUTS or event.type in metric_set.event_types():
        metrics, band_change = rescore(account, event.occurred_at)
        if band_change is not None:
            follow_ups.append(band_change)
    else:
        metrics = metrics_for(account.id, event.occurred_at)
    facts = event_facts(event=event, account=account, metrics=metrics, health=None)
    # A feature used for the first time is an event of its own, which rules can match.
    for feature in revealed.get("new_features", []):
        follow_ups.append(
            store_event(
                source="triage",
                external_id=f"first-use-{account.id}-{feature}",
                type="usage.feature_first_used",
                account_id=account.id,
                occurred_at=event.occurred_at,
                payload={
                    "id": f"first-use-{account.id}-{feature}",
                    "account_id": account.id,
                    "type": "usage.feature_first_used",
                    "occurred_at": event.occurred_at.isoformat(),
                    "properties": {"feature": feature},
                },
            )
        )
    # The ticket's sentiment is part of the event for the rules: `event.properties.sentiment`.
    if "sentiment" in revealed:
        facts["event"]["properties"]["sentiment"] = revealed["sentiment"]
    return f"{len(enforce(facts, event, account))} rule(s) fired"

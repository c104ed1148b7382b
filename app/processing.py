"""Processing a stored event: the heart of the pipeline, intake -> processing -> rules -> playbooks.

Each event is applied exactly once: the claim is an UPDATE in the same transaction as
everything the event causes, so a second run (a duplicate job, the sweeper) finds it done.
Events of one account are serialised by a row lock on the account. The workers'
`process_event(s)` jobs (workers/events.py) only give this an app context.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import aliased

from app.accounts import apply_account_facts, lock_new_account, record_health_change
from app.extensions import db
from app.intake.schemas import CrmWebhookSchema
from app.intake.store import store_event
from app.jobs import enqueue_process_events
from app.matching.enforcer import enforce
from app.matching.facts import event_facts
from app.models import Account, Event
from app.models.types import utcnow
from app.playbooks.actions.offboard import strip_contacts
from app.playbooks.lifecycle import on_health_change
from app.playbooks.runner import open_runs_of
from app.signals.metrics import live_metric_set, metrics_for
from app.signals.rollups import USAGE_TYPES, apply_usage_event
from app.signals.scores import rescore

log = logging.getLogger(__name__)
# The account of an event, locked (built once, like every statement of this hot path).
LOCK_BY_EVENT = (
    select(Account)
    .where(Account.id == select(Event.account_id).where(Event.id == bindparam("event_id")).scalar_subquery())
    .with_for_update()
)
# The account's events that arrived before this one and are still unprocessed (usually none).
EARLIER = (
    select(Event.id)
    .where(Event.account_id == bindparam("account_id"), Event.processed_at.is_(None), Event.id < bindparam("event_id"))
    .order_by(Event.id)
)
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
_before = aliased(Event)
# The claim of an event with no earlier unprocessed event of its account: the usual case in one
# statement; when it claims nothing, process_one looks for earlier events (EARLIER) first.
CLAIM_IN_ORDER = CLAIM.where(
    ~exists().where(_before.account_id == Event.account_id, _before.processed_at.is_(None), _before.id < Event.id)
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
    """Apply one event, after any earlier unprocessed event of its account.

    The account's lock comes first, then the claim: every event of an account is applied under
    that lock, in order of arrival. An earlier event still waiting in another job (two workers,
    two batches) is applied here first; its own job then finds it done. One that fails is left
    to its own job (its retries, then the failed jobs), so it cannot hold the account up."""
    account = db.session.execute(LOCK_BY_EVENT, {"event_id": event_id}).scalars().first()
    if account is None:  # first sight of the account (or no such event)
        account_id = db.session.scalar(select(Event.account_id).where(Event.id == event_id))
        if account_id is None:
            db.session.rollback()
            return "no such event"
        account = lock_new_account(account_id)
    follow_ups: list[Event | None] = []  # internal events this one caused (a score band change)
    event = db.session.execute(CLAIM_IN_ORDER, {"event_id": event_id, "now": utcnow()}).scalars().first()
    if event is not None:  # the usual case: nothing of the account waits before it
        outcome = _apply(event, account, follow_ups)
    else:  # done already, or earlier events of the account wait in another job: those first
        for earlier in db.session.execute(EARLIER, {"account_id": account.id, "event_id": event_id}).scalars().all():
            try:
                with db.session.begin_nested():
                    _claim_and_apply(earlier, account, follow_ups)
            except Exception:
                log.warning(
                    "event %s, before event %s of %s, failed here; left to its own job",
                    earlier,
                    event_id,
                    account.id,
                    exc_info=True,
                )
        outcome = _claim_and_apply(event_id, account, follow_ups)
    db.session.commit()
    stored = [follow_up.id for follow_up in follow_ups if follow_up is not None]  # None: seen before
    if stored:
        enqueue_process_events(stored)  # the sweeper covers a failure
    return outcome


def _claim_and_apply(event_id: int, account: Account, follow_ups: list[Event | None]) -> str:
    # The claim and the read in one statement: the row comes back only if it was unprocessed.
    event = db.session.execute(CLAIM, {"event_id": event_id, "now": utcnow()}).scalars().first()
    if event is None:
        return "already processed"
    return _apply(event, account, follow_ups)


def _apply(event: Event, account: Account, follow_ups: list[Event | None]) -> str:
    if event.source in CRM_SOURCES and event.type in CRM_TYPES:
        return apply_crm_event(event, account)
    return apply_signal_event(event, account, follow_ups)


def apply_crm_event(event: Event, account: Account) -> str:
    """A status change or account update in the CRM's shape (CONTRACT 2, or mapped from 2b);
    `account` is the event's, locked."""
    data = crm_schema.load(event.payload)
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


def apply_signal_event(event: Event, account: Account, follow_ups: list[Event | None]) -> str:
    """A usage, feedback, support, custom or internal event: rollups and score first, then the rules;
    `account` is the event's, locked."""
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

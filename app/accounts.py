"""Keeping the stored account up to date from incoming events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.models import Account, Contact, HealthChange

LOCK = select(Account).where(Account.id == bindparam("account_id")).with_for_update()  # built once: every event
ACCOUNT_FIELDS = (
    "name",
    "segment",
    "lifecycle_stage",
    "plan",
    "arr",
    "renewal_date",
    "customer_since",
    "csm",
    "manager",
)


def lock_account(account_id: str) -> Account:
    """The account row, created on first sight, locked for this transaction.

    Locking serialises events of one account across workers, so the health history
    always knows the true previous status.
    """
    account = db.session.execute(LOCK, {"account_id": account_id}).scalar_one_or_none()
    if account is not None:  # the usual case: one statement
        return account
    return lock_new_account(account_id)


def lock_new_account(account_id: str) -> Account:
    """lock_account for an account not seen yet: insert it (its own until commit); when a
    concurrent transaction inserted it first, nothing comes back and the lock waits for that one."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    account = (
        db.session.execute(
            insert(Account).values(id=account_id).on_conflict_do_nothing(index_elements=["id"]).returning(Account)
        )
        .scalars()
        .first()
    )
    return account if account is not None else db.session.execute(LOCK, {"account_id": account_id}).scalar_one()


def apply_account_facts(account: Account, facts: dict, at: datetime | None = None) -> None:
    """Update the fields the sender included; contacts, when given, replace the stored ones.

    A decision maker replaced by another (seed 001: a new point of contact is a red flag) is
    noted with the event's time `at`: the built-in metric days_since_decision_maker_changed."""
    for field in ACCOUNT_FIELDS:
        if field in facts:
            setattr(account, field, facts[field])
    if "contacts" in facts and account.erased_at is None:
        before, after = _decision_makers(account.contacts), _decision_makers(facts["contacts"])
        newer = at is not None and (account.decision_maker_changed_at is None or at > account.decision_maker_changed_at)
        if before and after and before != after and newer:
            account.decision_maker_changed_at = at
        account.contacts = [
            Contact(name=c.get("name"), email=c.get("email"), role=c.get("role")) for c in facts["contacts"]
        ]


def _decision_makers(contacts: list) -> frozenset[str]:
    """Who the decision makers are, by e-mail (else name), for contacts stored or delivered."""
    people = set()
    for contact in contacts:
        role = contact.get("role") if isinstance(contact, dict) else contact.role
        if role == "decision_maker":
            who = (
                contact.get("email") or contact.get("name")
                if isinstance(contact, dict)
                else contact.email or contact.name
            )
            if who:
                people.add(who.lower())
    return frozenset(people)


def record_health_change(
    account: Account,
    *,
    status: str,
    crm_from: str | None,
    at: datetime,
    reason: str | None,
    changed_by: str | None,
    source: str,
    event_id: int | None,
) -> tuple[HealthChange, bool]:
    """Add a history entry; move the current status only if this change is the newest.

    Returns the entry and whether it became the current status (a late delivery of an
    older change is kept in the history but must not roll the status back).
    """
    is_current = account.health_since is None or at >= account.health_since
    previous = _status_before(account, at) if not is_current else account.health_status
    change = HealthChange(
        account_id=account.id,
        status=status,
        previous=previous,
        crm_from=crm_from,
        at=at,
        reason=reason,
        changed_by=changed_by,
        source=source,
        event_id=event_id,
    )
    db.session.add(change)
    if is_current:
        account.health_status, account.health_since, account.health_reason = status, at, reason
    return change, is_current


def _status_before(account: Account, at: datetime) -> str | None:
    return db.session.execute(
        select(HealthChange.status)
        .where(HealthChange.account_id == account.id, HealthChange.at < at)
        .order_by(HealthChange.at.desc())
        .limit(1)
    ).scalar_one_or_none()


def account_facts(account: Account) -> dict:
    """JSON-native facts about an account, for rules and templates."""
    return {
        "id": account.id,
        "name": account.name,
        "segment": account.segment,
        "lifecycle_stage": account.lifecycle_stage,
        "plan": account.plan,
        "arr": float(account.arr) if account.arr is not None else None,
        "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
        "csm": account.csm,
        "manager": account.manager,
        "health": account.health_status,
    }

"""`POST /webhooks/salesforce`: Salesforce Outbound Messages (SOAP 1.1), mapped onto the CRM webhook.

Each `Notification` carries an Account sObject; its health field (SALESFORCE_HEALTH_FIELD)
is the new status. Accepted only from SALESFORCE_ORG_ID. The answer Salesforce needs is
HTTP 200 with `<Ack>true</Ack>`; without it, it delivers the message again.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app

from app.errors import ApiError
from app.intake.request_body import raw_body
from app.intake.schemas import normalize_status
from app.intake.store import accept_rows

bp = Blueprint("salesforce", __name__, url_prefix="/webhooks")
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100
ACK = (
    f'<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND}"><Ack>true</Ack></notificationsResponse>'
    f"</soapenv:Body></soapenv:Envelope>"
)


@bp.post("/salesforce")
def salesforce_outbound_message() -> Response:
    body = raw_body("text/xml", "application/xml")
    org_id = current_app.config.get("SALESFORCE_ORG_ID")
    if not org_id:
        raise ApiError(401, "Salesforce intake is not configured (SALESFORCE_ORG_ID)")
    notifications = parse(body)
    if _text(notifications, "OrganizationId") != org_id:
        raise ApiError(401, "OrganizationId does not match SALESFORCE_ORG_ID")
    items = notifications.findall(f"{{{OUTBOUND}}}Notification")
    if not items or len(items) > MAX_NOTIFICATIONS:
        raise ApiError(400, f"an outbound message has 1 to {MAX_NOTIFICATIONS} Notification elements")
    health_field = current_app.config["SALESFORCE_HEALTH_FIELD"]
    accept_rows("salesforce", items, lambda item: to_event_row(item, health_field), "notification(s)")
    return Response(ACK, status=200, mimetype="text/xml")  # also for a redelivery: it was stored before


def parse(body: bytes) -> ET.Element:
    # No DTDs: entity expansion is the classic XML attack, and Salesforce never sends one.
    if b"<!DOCTYPE" in body[:2048].upper() or b"<!ENTITY" in body.upper():
        raise ApiError(400, "DTDs and entities are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ApiError(400, f"malformed XML: {exc}") from None
    notifications = root.find(f"{{{SOAP}}}Body/{{{OUTBOUND}}}notifications")
    if notifications is None:
        raise ApiError(400, "not a Salesforce outbound message (no soapenv:Body/notifications)")
    return notifications


def to_event_row(notification: ET.Element, health_field: str) -> dict:
    notification_id = _text(notification, "Id")
    sobject = notification.find(f"{{{OUTBOUND}}}sObject")
    if not notification_id or sobject is None:
        raise ValueError("a Notification needs an Id and an sObject")
    fields = {
        child.tag.split("}")[-1]: (child.text or "").strip()
        for child in sobject
        if child.get(f"{{{XSI}}}nil") != "true"
    }
    account_id = fields.get("Id")
    if not account_id:
        raise ValueError("the sObject has no Id")
    occurred_at = _time(fields.get("LastModifiedDate")) or datetime.now(UTC)
    account = {"id": account_id}
    if fields.get("Name"):
        account["name"] = fields["Name"]
    when = occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = {
        "type": "account.updated",
        "occurred_at": when,
        "account": account,
        "salesforce": {"notification_id": notification_id, "fields": fields},
    }
    if fields.get(health_field):
        payload["type"] = "account.health_changed"
        payload["health"] = {"to": normalize_status(fields[health_field]), "changed_by": "salesforce"}
    return {
        "external_id": notification_id,
        "type": payload["type"],
        "account_id": account_id,
        "occurred_at": occurred_at,
        "payload": payload,
    }


def _text(element: ET.Element, name: str) -> str | None:
    found = element.find(f"{{{OUTBOUND}}}{name}")
    return found.text.strip() if found is not None and found.text else None


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

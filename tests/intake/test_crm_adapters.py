"""HubSpot and Salesforce deliveries, built the way those vendors document them (CONTRACT 2b)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from app.intake.hubspot import signature_v3
from app.models import Account, Event, HealthChange, Task

HUBSPOT_SECRET = "hubspot-client-secret-123"
ORG_ID = "00D5e000000ABCDEAQ"


@pytest.fixture
def adapters(app):
    saved = {k: app.config.get(k) for k in ("HUBSPOT_CLIENT_SECRET", "SALESFORCE_ORG_ID")}
    app.config.update(HUBSPOT_CLIENT_SECRET=HUBSPOT_SECRET, SALESFORCE_ORG_ID=ORG_ID)
    yield
    app.config.update(saved)


def hubspot_event(
    object_id=1234, value="Red", event_id=100, prop="health_status", kind="company.propertyChange", occurred_at=None
):
    return {
        "eventId": event_id,
        "subscriptionId": 4711,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": occurred_at or int(time.time() * 1000),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": prop,
        "propertyValue": value,
        "changeSource": "CRM_UI",
    }


def post_hubspot(client, events, secret=HUBSPOT_SECRET, timestamp=None, url="http://localhost/webhooks/hubspot"):
    body = json.dumps(events).encode()
    timestamp = str(timestamp or int(time.time() * 1000))
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": signature_v3(secret, "POST", url, body, timestamp),
    }
    return client.post("/webhooks/hubspot", data=body, headers=headers)


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_hubspot_health_property_change_becomes_a_status_change_and_playbook(client, db, adapters, run_jobs):
    response = post_hubspot(
        client,
        [hubspot_event(value="Red"), hubspot_event(object_id=99, kind="contact.creation", prop=None, value=None)],
    )
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 2, "duplicates": 0}
    run_jobs()
    account = db.session.get(Account, "1234")
    assert account.health_status == "red"
    change = db.session.execute(select(HealthChange)).scalar_one()
    assert (change.source, change.changed_by) == ("hubspot", "hubspot")
    assert count(db, Task) >= 1  # the red playbook ran (the account has no CSM yet: CS ops' queue)
    other = db.session.execute(select(Event).where(Event.type == "hubspot.contact.creation")).scalar_one()
    assert other.processed_at is not None


def test_hubspot_idempotency_uses_the_whole_tuple(client, db, adapters):
    now = int(time.time() * 1000)
    first = hubspot_event(event_id=7, occurred_at=now)
    assert post_hubspot(client, [first]).get_json() == {"accepted": 1, "duplicates": 0}
    assert post_hubspot(client, [first]).get_json() == {"accepted": 0, "duplicates": 1}
    # Same eventId, another object: HubSpot's eventId alone is not unique.
    assert post_hubspot(client, [hubspot_event(event_id=7, object_id=555, occurred_at=now)]).get_json()["accepted"] == 1


def test_hubspot_signature_and_configuration(client, db, app, adapters):
    assert post_hubspot(client, [hubspot_event()], secret="wrong").status_code == 401
    assert post_hubspot(client, [hubspot_event()], timestamp=int(time.time() * 1000) - 301_000).status_code == 401
    assert post_hubspot(client, [hubspot_event()], url="http://localhost/other").status_code == 401
    app.config["HUBSPOT_CLIENT_SECRET"] = None
    assert post_hubspot(client, [hubspot_event()]).status_code == 401
    assert count(db, Event) == 0


def test_hubspot_unknown_status_is_400_naming_the_allowed_ones(client, db, adapters):
    response = post_hubspot(client, [hubspot_event(value="purple")])
    assert response.status_code == 400
    assert "green" in json.dumps(response.get_json())


def outbound_message(notifications, org_id=ORG_ID):
    items = "".join(
        f"""
   <Notification>
    <Id>{nid}</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{account}</sf:Id>
     <sf:Health_Status__c>{status}</sf:Health_Status__c>
     <sf:LastModifiedDate>2026-11-20T10:00:00.000Z</sf:LastModifiedDate>
     <sf:Name>Acme GmbH</sf:Name>
    </sObject>
   </Notification>"""
        for nid, account, status in notifications
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5e000000TestAAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/58.0/00D5e000000ABCD</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/58.0/00D5e000000ABCD</PartnerUrl>{items}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def post_salesforce(client, body):
    return client.post("/webhooks/salesforce", data=body, headers={"Content-Type": "text/xml; charset=utf-8"})


def test_salesforce_outbound_message_is_acked_and_processed(client, db, adapters, run_jobs):
    body = outbound_message(
        [("04l5e000000N1AAA", "0015e00000AcmeAAA", "Black"), ("04l5e000000N2AAA", "0015e00000BetaAAA", "green")]
    )
    response = post_salesforce(client, body)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert b"<Ack>true</Ack>" in response.data and b"notificationsResponse" in response.data
    run_jobs()
    assert db.session.get(Account, "0015e00000AcmeAAA").health_status == "black"
    assert db.session.get(Account, "0015e00000AcmeAAA").name == "Acme GmbH"
    assert db.session.get(Account, "0015e00000BetaAAA").health_status == "green"
    # Salesforce redelivers until acked: the same notification ids again change nothing, and are acked.
    again = post_salesforce(client, body)
    assert again.status_code == 200 and b"<Ack>true</Ack>" in again.data
    assert count(db, Event) == 2


def test_salesforce_refuses_other_orgs_bad_xml_and_dtds(client, db, app, adapters):
    assert post_salesforce(client, outbound_message([("n1", "a1", "red")], org_id="00Dother")).status_code == 401
    assert post_salesforce(client, b"<not xml").status_code == 400
    bomb = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><lolz>&lol;</lolz>'
    assert post_salesforce(client, bomb).status_code == 400
    assert post_salesforce(client, outbound_message([("n1", "a1", "purple")])).status_code == 400
    assert (
        client.post(
            "/webhooks/salesforce",
            data=outbound_message([("n1", "a1", "red")]),
            headers={"Content-Type": "application/json"},
        ).status_code
        == 415
    )
    app.config["SALESFORCE_ORG_ID"] = None
    assert post_salesforce(client, outbound_message([("n1", "a1", "red")])).status_code == 401
    assert count(db, Event) == 0

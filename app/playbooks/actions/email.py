"""send_email: a templated e-mail to the account's contacts or to staff.

Templates live in playbooks/mail/NAME.txt: a `Subject: ...` line, a blank line, the
body; rendered in the sandbox with account, event, params, run, contact and g2_url.
With SMTP_URL unset the mail is only written to the mail log (status `logged`).
Each recipient is mailed once per step, so a retried job does not mail twice.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import MailLog
from app.playbooks.actions.context import ActionContext
from app.playbooks.actions.registry import action
from app.templating import render

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "template": {"type": "string", "description": "a file in playbooks/mail/ without .txt"},
        "to": {"type": "string", "default": "contacts", "description": "contacts, csm, manager, or an e-mail address"},
    },
}


@action("send_email", PARAMS, external=True)
def send_email(ctx: ActionContext) -> dict[str, Any]:
    """Send an e-mail from a template to contacts, the CSM, the manager or an address."""
    template = load_template(ctx.params["template"])
    sent = []
    for name, address in recipients(ctx.params.get("to", "contacts"), ctx.account):
        already = db.session.execute(
            select(MailLog.id).where(
                MailLog.step_id == ctx.step.id, MailLog.to == address, MailLog.status.in_(("sent", "logged"))
            )
        ).first()
        if already:
            continue
        variables = {
            **ctx.template_context,
            "contact": {"name": name, "email": address},
            "g2_url": current_app.config["G2_REVIEW_URL"],
        }
        subject, body = split_template(render(template, variables))
        status = deliver(address, subject, body)
        db.session.add(
            MailLog(
                account_id=ctx.account.id,
                run_id=ctx.run.id,
                step_id=ctx.step.id,
                to=address,
                subject=subject,
                body=body,
                status=status,
            )
        )
        db.session.commit()  # recorded per recipient: a retry after a later failure skips this one
        sent.append(address)
    return {"mailed": len(sent)}


def recipients(to: str, account) -> list[tuple[str | None, str]]:
    if to == "contacts":
        return [(c.name, c.email) for c in account.contacts if c.email]
    if to in ("csm", "manager"):
        address = getattr(account, to)
        return [(None, address)] if address else []
    return [(None, to)]


def load_template(name: str) -> str:
    folder = Path(current_app.config["PLAYBOOKS_DIR"]) / "mail"
    path = (folder / f"{name}.txt").resolve()
    if folder.resolve() not in path.parents:
        raise ValueError(f"template name {name!r} leaves the mail folder")
    return path.read_text(encoding="utf-8")


def split_template(text: str) -> tuple[str, str]:
    first, _, rest = text.partition("\n")
    if not first.lower().startswith("subject:"):
        raise ValueError("a mail template starts with a 'Subject: ...' line")
    return first.split(":", 1)[1].strip(), rest.lstrip("\n")


def deliver(address: str, subject: str, body: str) -> str:
    smtp_url = current_app.config.get("SMTP_URL")
    if not smtp_url:
        return "logged"
    url = urlparse(smtp_url)
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = address
    message["Subject"] = subject
    message.set_content(body)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with smtp_class(
        url.hostname or "localhost", url.port or (465 if url.scheme == "smtps" else 25), timeout=30
    ) as smtp:
        if url.username:
            smtp.login(url.username, url.password or "")
        smtp.send_message(message)
    return "sent"

"""Shared helpers for the playbook and worker tests: a real local HTTP receiver for outbound
webhooks, a real SMTP server (aiosmtpd), and launching a playbook for an account.

(A module of helpers, not tests; imported by tests/test_playbooks_*.py and test_workers_*.py.)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import free_port  # noqa: F401 (re-exported for the tests that import it here)


class Receiver:
    """Records every delivery; answers with the queued statuses first, then 200.

    `delay` seconds before answering the first request (to kill a worker mid-step).
    Keeps which webhook-ids it accepted, as a de-duplicating receiver would.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay_first = 0.0
        self.accepted: list[str] = []
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.requests)} request(s), expected {count}")
            time.sleep(0.05)


@pytest.fixture
def receiver():
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with box.lock:
                first = not box.requests
                box.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "raw": raw,
                        "json": json.loads(raw or b"null"),
                    }
                )
                status = box.statuses.pop(0) if box.statuses else 200
            if first and box.delay_first:
                time.sleep(box.delay_first)
            if status < 300:
                with box.lock:
                    msg_id = self.headers.get("webhook-id")
                    if msg_id not in box.accepted:
                        box.accepted.append(msg_id)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    box.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=box.server.serve_forever, daemon=True)
    thread.start()
    yield box
    box.server.shutdown()
    box.server.server_close()


def make_account(db, account_id="acme", **fields):
    from app.models import Account, Contact

    account = db.session.get(Account, account_id)
    if account is None:
        account = Account(
            id=account_id,
            name=fields.pop("name", "Acme GmbH"),
            csm=fields.pop("csm", "ana@vendor.example"),
            manager=fields.pop("manager", "mo@vendor.example"),
            **fields,
        )
        account.contacts = [
            Contact(name="Jane Roe", email="jane@acme.example", role="decision_maker"),
            Contact(name="Max Muster", email="max@acme.example", role="user"),
        ]
        db.session.add(account)
        db.session.commit()
    return account


def launch_playbook(db, name, account_id="acme", params=None, playbook=None, event=None):
    """Launch a playbook of the live catalog (or the given Playbook) for an account; commits."""
    from app import catalog
    from app.models import Account
    from app.playbooks.runner import launch

    account = db.session.get(Account, account_id)
    run = launch(playbook or catalog.current().playbooks[name], account, event=event, rule="test", params=params)
    db.session.commit()
    return run.id if run else None


def steps_of(db, run_id):
    from app.models import PlaybookRun

    db.session.expire_all()
    return {step.name: step for step in db.session.get(PlaybookRun, run_id).steps}

"""Secrets never reach the logs: the CRM webhook secret, the service API token, a personal API
token, a password, and the wrong ones a client mistypes.

The same requests run twice over real HTTP: against the app in a Werkzeug server thread (every
logger of the process at DEBUG, captured by caplog, with Werkzeug's access lines), and against
gunicorn as production runs it (`--access-logfile -`, LOG_LEVEL=DEBUG, gunicorn at debug), whose
whole output is read back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from app.admin.cli import create_token
from app.models import User
from tests.helpers import ANA, PASSWORD, ROOT, TEST_SECRET, TEST_TOKEN, free_port, health_webhook, signed_headers, team

WRONG_PASSWORD = "Tr0ub4dor&3-wrong"
WRONG_SERVICE_TOKEN = "wrong-service-token-9f8e7d"


@pytest.fixture
def every_logger_at_debug(caplog):
    """caplog at DEBUG for every logger, including those the Alembic migrations' fileConfig
    disabled or set to WARN earlier in this process (app.*, sqlalchemy.engine)."""
    saved = []
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        saved.append((logger, logger.disabled, logger.level, logger.propagate))
        logger.disabled, logger.propagate = False, True
        logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for logger, disabled, level, propagate in saved:
        logger.disabled, logger.propagate = disabled, propagate
        logger.setLevel(level)


@pytest.fixture
def secrets(app, db):
    """The people and tokens of the scenario, and every secret string it uses."""
    team(db)
    ana = db.session.query(User).filter_by(email=ANA).one()
    personal = create_token(ana, "logs")[1]
    db.session.commit()  # no read transaction left open: the server may write (SQLite)
    return {
        "personal": personal,
        "values": [
            TEST_SECRET,
            TEST_SECRET.removeprefix("whsec_"),
            TEST_TOKEN,
            WRONG_SERVICE_TOKEN,
            personal,
            personal.removeprefix("trg_"),
            personal[:-1] + "x",
            PASSWORD,
            WRONG_PASSWORD,
        ],
    }


def exercise(base: str, personal: str) -> None:
    """Bad and good webhook signatures, wrong and right tokens, failed and good sign-ins."""
    body = json.dumps(health_webhook("acme", "red")).encode()
    tampered = signed_headers(body, secret="whsec_" + "QUJD" * 8)  # a signature by another secret
    assert requests.post(f"{base}/webhooks/crm", data=body, headers=tampered, timeout=10).status_code == 401
    assert requests.post(f"{base}/webhooks/crm", data=body, headers=signed_headers(body), timeout=10).status_code == 202

    for token, status in ((WRONG_SERVICE_TOKEN, 401), (personal[:-1] + "x", 401), (TEST_TOKEN, 200), (personal, 200)):
        response = requests.get(
            f"{base}/api/v1/tasks?assignee={ANA}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == status, token
    event = {
        "id": "evt-1",
        "account_id": "acme",
        "type": "usage.daily",
        "occurred_at": "2026-11-20T00:00:00Z",
        "properties": {"active_users": 3, "logins": 5},
    }
    for token, status in ((personal, 403), (TEST_TOKEN, 202)):
        response = requests.post(
            f"{base}/api/v1/events", json=[event], headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == status

    for password, status in ((WRONG_PASSWORD, 401), (PASSWORD, 302)):
        browser = requests.Session()
        form = browser.get(f"{base}/login", timeout=10).text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
        response = browser.post(
            f"{base}/login",
            data={"email": ANA, "password": password, "csrf_token": csrf},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == status


def assert_absent(text: str, values: list[str]) -> None:
    for value in values:
        assert value not in text, f"a secret is in the log: {value[:6]}..."


def test_no_secret_in_the_logs_of_the_app_and_werkzeug(app, db, secrets, every_logger_at_debug):
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        exercise(f"http://127.0.0.1:{httpd.server_port}", secrets["personal"])
    finally:
        httpd.shutdown()
        thread.join(timeout=10)

    records = every_logger_at_debug.records
    # Everything a handler could write: the formatted lines, and each record's raw fields and args.
    captured = every_logger_at_debug.text + "\n".join(repr(vars(r)) for r in records)
    assert_absent(captured, secrets["values"])
    # The capture is real: access lines, and SQL with its parameters (the token's hash, never the token).
    assert '"POST /webhooks/crm HTTP/1.1" 401' in captured and '"POST /login HTTP/1.1" 302' in captured
    assert any(r.name.startswith("sqlalchemy.engine") and "api_tokens" in r.getMessage() for r in records)
    assert hashlib.sha256(secrets["personal"].encode()).hexdigest() in captured


def test_no_secret_in_gunicorns_access_and_error_logs(test_env, db, secrets, tmp_path):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {**test_env, "LOG_LEVEL": "DEBUG"}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
                "--log-level",
                "debug",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:  # not listening yet, or its worker still booting
                    pass
                assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            exercise(base, secrets["personal"])
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = log_path.read_text(errors="replace")
    assert_absent(output, secrets["values"])
    # gunicorn's access lines are in the output (so they were checked), with status codes.
    assert re.search(r'"GET /api/v1/tasks\?assignee=\S+ HTTP/1.1" 401', output), output[-2000:]
    assert '"POST /login HTTP/1.1" 302' in output

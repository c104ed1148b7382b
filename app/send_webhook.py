"""Send one signed CRM webhook to a running Triage: `python -m app.send_webhook ACCOUNT STATUS`.

Reads the secret the way the server does (CRM_WEBHOOK_SECRET or instance/secrets.json), and
the address of the server `make run` started (instance/server.json, whatever its PORT), so it
works right after `make run`. Prints the curl command it is equivalent to.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app.intake.signatures import sign


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("account")
    parser.add_argument("status")
    parser.add_argument("--reason", default="Sent from app.send_webhook")
    parser.add_argument("--url", default=None)
    args = parser.parse_args(argv)
    from app import create_app

    app = create_app()
    url = args.url or f"{running_server(app)}/webhooks/crm"
    body = json.dumps(
        {
            "type": "account.health_changed",
            "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account": {"id": args.account},
            "health": {"to": args.status, "reason": args.reason},
        }
    ).encode()
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(app.config["CRM_WEBHOOK_SECRET"], msg_id, timestamp, body),
    }
    print("curl -X POST " + url + "".join(f" -H '{k}: {v}'" for k, v in headers.items()) + f" -d '{body.decode()}'")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode())


def running_server(app) -> str:
    """The URL of the server `make run` started for this instance, else this config's PORT."""
    from app.serve import SERVER_FILE

    try:
        return json.loads((Path(app.instance_path) / SERVER_FILE).read_text())["url"]
    except (OSError, ValueError, KeyError):
        return f"http://127.0.0.1:{app.config['PORT']}"


if __name__ == "__main__":
    main()

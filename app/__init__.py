"""Triage: customer-health signals in, playbooks and tasks out.

Where things live:
- app/intake/     where events enter (CRM webhooks, HubSpot, Salesforce, the events API)
- app/matching/   where rules match events (durable-rules)
- app/signals/    usage rollups, metrics, health scores
- app/playbooks/  where playbook runs are launched and moved on
- workers/        where the automated steps run (RQ jobs, worker, scheduler)
- app/api/        the read and act API (CONTRACT.md section 5)
- app/admin/      the web admin for CSMs, managers and CS ops
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from app.config import build_config


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("TRIAGE_INSTANCE") or None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(build_config(app.instance_path))
    if overrides:
        app.config.update(overrides)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from app import catalog, cli, database, errors
    from app.admin import init_app as init_admin
    from app.api import init_app as init_api
    from app.intake import init_app as init_intake
    from app.matching import init_app as init_matching
    from app.playbooks import init_app as init_playbooks
    from app.signals import init_app as init_signals

    database.init_app(app)
    errors.init_app(app)
    catalog.init_app(app)
    init_matching(app)
    init_signals(app)
    init_playbooks(app)
    init_intake(app)
    init_api(app)
    init_admin(app)
    cli.init_app(app)
    if app.config["TRUSTED_PROXIES"]:
        # Behind a proxy: the client's address (rate limits, logs), scheme and host come from
        # the X-Forwarded-* headers the trusted proxies set, and only from those.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        # Flask's documented way to add WSGI middleware; mypy refuses any assignment to a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app

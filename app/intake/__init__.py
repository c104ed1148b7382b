"""Where events enter: CRM webhooks (own format, HubSpot, Salesforce) and the events API."""

from flask import Flask, current_app, request

WEBHOOK_BLUEPRINTS = ("webhooks", "hubspot", "salesforce")


def init_app(app: Flask) -> None:
    from app.extensions import csrf
    from app.intake import hubspot, salesforce, webhooks

    for blueprint in (webhooks.bp, hubspot.bp, salesforce.bp):
        csrf.exempt(blueprint)  # authenticated by signature or org id, not by session
        app.register_blueprint(blueprint)
    app.before_request(_limit_webhooks)


def _limit_webhooks() -> None:
    from app import ratelimit

    if request.blueprint in WEBHOOK_BLUEPRINTS:
        ratelimit.check("webhooks", ratelimit.client_address(), current_app.config["RATE_LIMIT_WEBHOOKS"])

"""Where events enter: CRM webhooks (and, with the signals issue, the events API)."""
from flask import Flask


def init_app(app: Flask) -> None:
    from app.extensions import csrf
    from app.intake.webhooks import bp

    csrf.exempt(bp)  # authenticated by signature, not by session
    app.register_blueprint(bp)

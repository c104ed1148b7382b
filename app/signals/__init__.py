"""The signal side: usage rollups, metrics over event-time windows, sentiment, health scores."""

from flask import Flask


def init_app(app: Flask) -> None:
    from app.signals import cli

    # metrics/ and scorecards/ load with the rules (app/catalog.py): a broken file stops the start.
    cli.init_app(app)

"""The signal side: usage rollups, metrics over event-time windows, sentiment, health scores."""

from flask import Flask


def init_app(app: Flask) -> None:
    from app.signals import replay, scores

    scores.load(app)  # scorecards/*.yml; a broken file stops the start like a broken rule file
    replay.init_app(app)

"""The web admin. Filled in by the admin work."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass

"""The read and act API (CONTRACT.md section 5). Filled in by the API work."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass

"""Fixtures of the admin's browser tests (test_browser.py, test_browser_escaping.py): Playwright
driving Debian's Chromium, and the app served on a free port."""

from __future__ import annotations

import threading

import pytest

from tests.helpers import CHROMIUM

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module (skips without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server(app, db):
    """The app on a free port, in a thread; each request gets its own app context."""
    from werkzeug.serving import make_server

    db.session.commit()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def validation_folder(app):
    """The folder the Score quality page reads its report from (the app's instance folder's
    validation/), emptied before and after the test: the instance folder is the session's."""
    import shutil

    from app.admin.score_quality import report_folder

    with app.app_context():
        folder = report_folder()
    shutil.rmtree(folder, ignore_errors=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)

"""Screenshots of the main admin pages for the README (docs/screenshots/*.png).

    .venv/bin/python bench/admin_screenshots.py

Does what `make run` does, in a throwaway instance folder: migrates, creates the demo team
and loads the demo portfolio through the real pipeline (embedded Redis), then serves the app on
a free port with a real RQ worker running beside it, signs in with Playwright driving Debian's
Chromium, takes the pictures, and stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))
from bench.common import free_port  # noqa: E402 (sys.path set above)

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f}s")


def shoot(base: str, password: str) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)

        def signed_in(email):
            context = browser.new_context(base_url=base, viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.goto("/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url("**/admin/task/")
            return page

        def save(page, name, full=True):
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
            print(f"  docs/screenshots/{name}.png", flush=True)

        page = signed_in("ana@vendor.example")
        save(page, "my-tasks", full=False)
        page.locator("td a[href^='/admin/task/']").first.click()
        page.wait_for_load_state()
        save(page, "task")
        page.goto("/admin/account/")
        page.locator("td a[href^='/admin/account/']").first.click()
        page.wait_for_load_state()
        save(page, "customer-360")

        page = signed_in("mo@vendor.example")
        page.goto("/admin/dashboard/")
        save(page, "dashboard")

        page = signed_in("ops@vendor.example")
        page.goto("/admin/audit/")
        save(page, "audit-log", full=False)
        page.goto("/admin/queues/")
        save(page, "queues", full=False)
        browser.close()


def main() -> None:
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    import threading

    folder = tempfile.TemporaryDirectory(prefix="triage-shots-")
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)  # the embedded defaults, as on a fresh machine
    os.environ.update({"TRIAGE_INSTANCE": folder.name, "LOG_LEVEL": "WARNING"})
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from app import create_app
    from app.demo import ensure_team, load_portfolio
    from app.redis_conn import redis_url, stop_embedded_redis

    app = create_app()
    os.environ["REDIS_URL"] = redis_url(app)  # the worker shares the embedded Redis
    worker = None
    try:
        with app.app_context():
            upgrade(revision="heads")
            ensure_team(app.config["ADMIN_PASSWORD"])
            started = time.monotonic()
            print(f"  {load_portfolio()} demo events in {time.monotonic() - started:.0f}s", flush=True)
        worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], cwd=ROOT, env=dict(os.environ))
        httpd = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.server_port}"
        wait_for(f"{base}/login", timeout=30)
        time.sleep(3)  # the worker registers itself
        shoot(base, app.config["ADMIN_PASSWORD"])
        httpd.shutdown()
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        stop_embedded_redis(folder.name)
        folder.cleanup()


if __name__ == "__main__":
    main()

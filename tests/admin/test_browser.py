"""The admin in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium)
against the app served on a free port, on the test database and Redis.

Skipped, with the reason, only when /usr/bin/chromium is missing (`apt-get install -y chromium`;
never `playwright install`).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from app.models import Task
from tests.helpers import ANA, BEN, CHROMIUM, MO, NOW, PASSWORD, account, task, team

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"
)


@pytest.fixture
def page_for(browser, server):
    """A signed-in page of its own (own cookies) for an e-mail."""
    contexts = []

    def make(email):
        context = browser.new_context(base_url=server)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (_ for _ in ()).throw(AssertionError(f"a dialog opened: {dialog.message}")))
        page.goto("/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/task/")
        return page

    yield make
    for context in contexts:
        context.close()


def _release(db):
    """End the test's own read transaction, so the server thread may write (SQLite)."""
    db.session.commit()


def test_a_csm_works_a_task_to_done_snoozes_another_and_a_manager_sees_the_dashboard(db, page_for):
    team(db)
    account(db, "acme", ANA)
    done = task(db, "acme", ANA, "Call Jane", outcomes=["reached", "no_answer"], priority="urgent")
    later = task(db, "acme", ANA, "Send the deck", due_at=NOW - timedelta(days=1))
    _release(db)

    page = page_for(ANA)
    assert page.locator("h4").first.inner_text().startswith("My tasks")
    assert page.locator("tr:has(.overdue)").count() == 1  # the overdue one is highlighted

    page.click("text=Call Jane")
    page.check("input[name=outcome][value=reached]")
    page.fill("textarea[name=note]", "Spoke to Jane, plan agreed")
    page.click("button:has-text('Complete')")
    page.wait_for_url("**/admin/task/")
    assert "Completed “Call Jane” with outcome “reached”" in page.content()

    page.click("text=Send the deck")
    until = (NOW + timedelta(days=5)).date().isoformat()
    page.fill("input[name=until]", until)
    page.fill("input[name=reason]", "Customer on holiday")
    page.click("button:has-text('Snooze')")
    page.wait_for_url("**/admin/task/")
    assert f"until {until}" in page.content()

    db.session.expire_all()
    first, second = db.session.get(Task, done.id), db.session.get(Task, later.id)
    assert (first.status, first.outcome, first.note, first.completed_by) == (
        "done",
        "reached",
        "Spoke to Jane, plan agreed",
        ANA,
    )
    assert (second.status, second.snooze_reason) == ("snoozed", "Customer on holiday")
    _release(db)

    manager = page_for(MO)
    manager.click("text=Dashboard")
    manager.wait_for_url("**/admin/dashboard/")
    assert manager.locator("svg.chart").count() >= 5
    assert manager.locator("#status-now [data-status=red]").inner_text() == "1"
    assert manager.locator("tr.csm-row[data-email='ana@vendor.example']").count() == 1


def test_a_csm_cannot_open_another_csms_task(db, page_for, server):
    team(db)
    account(db, "globex", BEN)
    theirs = task(db, "globex", BEN, "Ben's secret task")
    _release(db)
    page = page_for(ANA)
    assert "Ben's secret task" not in page.content()
    response = page.goto(f"/admin/task/{theirs.id}")
    assert response.status == 403
    assert "Ben's secret task" not in page.content()


def test_a_form_without_its_csrf_token_is_refused(db, page_for):
    team(db)
    account(db, "acme", ANA)
    mine = task(db, "acme", ANA, "Call Jane")
    _release(db)
    page = page_for(ANA)
    page.goto(f"/admin/task/{mine.id}")
    # What a forged form from another site amounts to: the same post, without the token.
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        page.click("button:has-text('Complete')")
    assert answer.value.status == 400
    assert "This form could not be sent" in page.content()
    db.session.expire_all()
    assert db.session.get(Task, mine.id).status == "open"


def test_script_in_an_account_name_and_a_task_note_is_shown_as_text(db, page_for):
    team(db)
    evil = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"
    account(db, "acme", ANA, name=f"Evil {evil} Corp")
    closed = task(
        db,
        "acme",
        ANA,
        "Done already",
        status="done",
        outcome="done",
        note=f"Note {evil}",
        completed_by=ANA,
        completed_at=NOW,
    )
    task(db, "acme", ANA, f"Open {evil}")
    _release(db)
    page = page_for(ANA)
    for url in ("/admin/task/", f"/admin/task/{closed.id}", "/admin/account/", "/admin/account/acme"):
        page.goto(url)
        assert page.evaluate("window.__pwned") is None, url
        assert page.locator("img[src=x]").count() == 0, url
        assert "<script>window.__pwned = 1</script>" in page.inner_text("body"), url

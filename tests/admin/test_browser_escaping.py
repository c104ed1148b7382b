"""Script and markup in every user-controlled string is shown escaped on every admin page,
checked in a real browser (Debian's Chromium through Playwright, as tests/admin/test_browser.py).

Hostile strings go in the way real data does: a signed CRM webhook (account name, segment,
plan, lifecycle stage, contacts, health reason), the events API (feature names, a support
ticket, custom properties), the admin's own forms (comment, snooze reason, completion note),
the task services, the audit log, a failed job, a paused rule and a validation report (its
indicator, band and labels names: the Score quality page's tables and charts). Then the admin and the CSM
walk every page the admin menu offers and every detail page linked from there; on each page
no script ran (window.__xss unset, no dialog), no element came out of the data, `{{7*7}}`
stayed literal, and the hostile text is visible as text where it belongs.

Rule-firing facts, the mail log and watch-list reasons get hostile strings too (checked in
the database) though no admin page shows them yet: a page that does will be crawled.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import select

from app.models import Account, Event, MailLog, PlaybookRun, RuleFiring, Task, User
from app.models.watchlist import WatchListEntry
from tests.helpers import ANA, CHROMIUM, MO, PASSWORD, add, health_webhook

ADMIN = "root@vendor.example"
OTHER_CSM = "{{7*7}}@evil.example"  # a valid e-mail address, and a template

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
SVG = '"><svg onload=window.__xss=1>'
MD_LINK = "[open](javascript:window.__xss=1)"  # a Markdown link to a javascript: URL
TAGS: list[str] = []


def hostile(tag: str, *parts: str) -> str:
    """`tag`, the given payloads (all by default), and `tpl-<tag>{{7*7}}`: `tpl-<tag>49` on a
    page means a template ran over the data."""
    TAGS.append(tag)
    return " ".join([tag, *(parts or (SCRIPT, IMG, SVG, MD_LINK)), f"tpl-{tag}{{{{7*7}}}}"])


NAME = hostile("name")
SEGMENT = hostile("seg", IMG)
PLAN = hostile("plan", SVG, SCRIPT)
STAGE = hostile("stage", SCRIPT)
CSM_NAME = hostile("csmname", SVG, SCRIPT)
REASON = hostile("reason")
CHANGED_BY = hostile("changedby", SCRIPT, IMG)
CONTACT = hostile("contact")
CONTACT_ROLE = hostile("role", SVG)
ACCOUNT_ID = hostile("acctid", SVG)
FEATURE = hostile("feature")
DAILY_FEATURE = hostile("daily", IMG, MD_LINK)
SUBJECT = hostile("subject")
BODY = hostile("body")
PROPERTY = hostile("prop")
EXTERNAL_ID = hostile("extid", SVG)
COMMENT = hostile("comment")
SNOOZE = hostile("snooze")
NOTE = hostile("note")
AUDIT_ACTOR = hostile("actor", SVG)
AUDIT_SUMMARY = hostile("summary")
AUDIT_DETAIL = hostile("detail")
AUDIT_OBJECT = hostile("object", SVG)
PAUSED = hostile("paused")
JOB = hostile("job")
WATCH = hostile("watch")
RUN_NOTE = hostile("runnote")
STEP_ERROR = hostile("steperror", SCRIPT)  # shown cut at 160 characters
EVENT_ERROR = hostile("eventerror")
INDICATOR = hostile("indicator")
BAND = hostile("band", SVG)
LABELS = hostile("labels", SCRIPT)

# Elements and attributes that can only come from the data; `__xss` is in every payload.
INJECTED = """() => {
  const all = [...document.querySelectorAll('*')];
  return {
    imgs: document.querySelectorAll('img[src="x"]').length,
    handlers: all.filter(e => [...e.attributes].some(a => a.name.startsWith('on') && a.value.includes('__xss'))).length,
    scripts: [...document.scripts].filter(s => s.textContent.includes('__xss')).length,
    js_links: [...document.querySelectorAll('[href],[src],[action],[formaction]')].filter(e => ['href', 'src',
      'action', 'formaction'].some(a => /^\\s*javascript:.*__xss/i.test(e.getAttribute(a) || ''))).length,
    xss: typeof window.__xss,
  };
}"""
CLEAN = {"imgs": 0, "handlers": 0, "scripts": 0, "js_links": 0, "xss": "undefined"}
MAX_PAGES = 60  # per person: the crawl's bound


def fail_loudly(text):
    """A job that fails with hostile text (module level, so that the worker can import it)."""
    raise RuntimeError(text)


# -- seeding, through the real entrances --------------------------------------------------


def _people(db):
    for email, role, manager, name in (
        (MO, "manager", None, "Mo"),
        (ANA, "csm", MO, CSM_NAME),
        (ADMIN, "admin", None, "Root"),
    ):
        user = User(email=email, name=name, role=role, manager_email=manager)
        user.set_password(PASSWORD)
        add(db, user)


def _webhooks(post_webhook):
    account = {
        "name": NAME,
        "segment": SEGMENT,
        "plan": PLAN,
        "lifecycle_stage": STAGE,
        "csm": ANA,
        "manager": MO,
        "customer_since": "2025-01-01",
        "contacts": [{"name": CONTACT, "email": "jane@acme.example", "role": CONTACT_ROLE}],
    }
    body = health_webhook("acme", "red", occurred_at=_stamp(2))
    body["account"].update(account)
    body["health"].update(reason=REASON, changed_by=CHANGED_BY)
    assert post_webhook(body).status_code == 202
    # A second account whose id and CSM are hostile (the CSM is no user: shown by e-mail).
    other = health_webhook(ACCOUNT_ID, "yellow", occurred_at=_stamp(2))
    other["account"].update(name=None, csm=OTHER_CSM, manager=MO, segment=SEGMENT, plan=PLAN)
    assert post_webhook(other).status_code == 202


def _stamp(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _events(client, auth):
    events = [
        {
            "id": "feature-1",
            "account_id": "acme",
            "type": "usage.feature_used",
            "occurred_at": _stamp(1),
            "properties": {"feature": FEATURE, "user_id": "u1"},
        },
        {
            "id": "daily-1",
            "account_id": "acme",
            "type": "usage.daily",
            "occurred_at": _stamp(1),
            "properties": {"active_users": 3, "logins": 5, "features": {DAILY_FEATURE: 2}},
        },
        {
            "id": "ticket-1",
            "account_id": "acme",
            "type": "support.ticket",
            "occurred_at": _stamp(1),
            "properties": {"severity": "high", "subject": SUBJECT, "body": BODY},
        },
        {
            "id": EXTERNAL_ID,
            "account_id": "acme",
            "type": "billing.invoice_overdue",
            "occurred_at": _stamp(1),
            "properties": {"note": PROPERTY, "link": "javascript:window.__xss=1", "nested": {PROPERTY: [PROPERTY]}},
        },
    ]
    response = client.post("/api/v1/events", json=events, headers=auth)
    assert response.status_code == 202, response.get_json()


def _operations(db):
    """What no form sets: an audit entry, a paused rule, a watch-list reason, a failed job, and
    the notes and errors a run, a step and an event carry (written as the workers write them)."""
    from rq import SimpleWorker

    from app import audit
    from app.jobs import MAINTENANCE, queue
    from app.matching.enforcer import pause
    from app.redis_conn import get_redis

    audit.record(
        AUDIT_ACTOR,
        "account.noted",
        "account",
        ACCOUNT_ID,
        summary=AUDIT_SUMMARY,
        details={"why": AUDIT_DETAIL, AUDIT_DETAIL: [1]},
    )
    audit.record(AUDIT_ACTOR, "thing.noted", "thing", AUDIT_OBJECT, summary=AUDIT_SUMMARY)
    pause("red-action-plan", PAUSED)
    db.session.add(WatchListEntry(list_name="usage-decline", account_id="acme", reason=WATCH))
    run = db.session.scalars(
        select(PlaybookRun).where(PlaybookRun.account_id == "acme", PlaybookRun.playbook == "red-action-plan")
    ).one()
    run.status_note, run.steps[0].error = RUN_NOTE, STEP_ERROR
    db.session.scalars(select(Event).where(Event.external_id == EXTERNAL_ID)).one().error = EVENT_ERROR
    db.session.commit()
    queue(MAINTENANCE).enqueue(fail_loudly, JOB)
    SimpleWorker([queue(MAINTENANCE)], connection=get_redis()).work(burst=True, with_scheduler=False)


def _report(folder):
    """A validation report as `flask scorecards validate` writes it, with hostile names in it."""
    from app.signals.validation import ValidationReport, write

    write(
        ValidationReport(
            observations=10,
            churners=2,
            auc=0.7,
            churn_rate=0.2,
            bands={BAND: {"churners": 1.0, "others": 0.5, "churn_rate": 0.33, "observations": 6}},
            deciles=[{"decile": 1, "low": 0, "high": 40, "churn_rate": 0.5}],
            indicators=[
                {"metric": INDICATOR, "auc": 0.3, "says": "higher_is_better", "agrees": False, "observations": 10}
            ],
            labels=LABELS,
        ),
        folder,
    )


def _assert_seeded(db):
    """The hostile strings reached the places the pages read (or the test proves nothing)."""
    acme = db.session.get(Account, "acme")
    assert (acme.name, acme.segment, acme.plan, acme.lifecycle_stage, acme.health_reason) == (
        NAME,
        SEGMENT,
        PLAN,
        STAGE,
        REASON,
    )
    titles = db.session.scalars(select(Task.title).where(Task.account_id == "acme")).all()
    assert any(NAME in t for t in titles) and any(FEATURE in t for t in titles), titles
    assert any(DAILY_FEATURE in t for t in titles), titles
    assert db.session.scalars(select(Task.id).where(Task.account_id == ACCOUNT_ID)).first() is not None
    facts = [json.dumps(f) for f in db.session.scalars(select(RuleFiring.facts))]
    assert any(json.dumps(NAME)[1:-1] in f for f in facts)
    contexts = [json.dumps(c) for c in db.session.scalars(select(PlaybookRun.context))]
    assert any(json.dumps(FEATURE)[1:-1] in c for c in contexts)
    assert any(FEATURE in m.subject or FEATURE in m.body for m in db.session.scalars(select(MailLog)))
    assert db.session.scalars(select(Event.id).where(Event.external_id == EXTERNAL_ID)).first() is not None


# -- the browser --------------------------------------------------------------------------


class Visitor:
    """One signed-in person's browser tab; every page it opens is checked, and its text kept."""

    def __init__(self, browser, server, email):
        self.context = browser.new_context(base_url=server)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)
        self.texts: dict[str, str] = {}
        self.email = email
        self.page.goto("/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/admin/task/")
        self.check()

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check(self) -> str:
        """The page as it stands: nothing injected, nothing run, no template evaluated."""
        page, url = self.page, self.page.url
        assert page.evaluate(INJECTED) == CLEAN, (self.email, url)
        assert not self.dialogs, (self.email, url, self.dialogs)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # folded text too
        text, html = page.inner_text("body"), page.content()
        for evaluated in [f"tpl-{tag}49" for tag in TAGS] + ["49@evil.example"]:
            assert evaluated not in text and evaluated not in html, (self.email, url, evaluated)
        parts = urlsplit(url)
        self.texts[parts.path + (f"?{parts.query}" if parts.query else "")] = text
        return text

    def open(self, url: str) -> str:
        response = self.page.goto(url)
        assert response.status == 200, (self.email, url, response.status)
        return self.check()

    def crawl(self, start: str = "/admin/") -> None:
        """Every admin page linked from the menu and from the pages it leads to (one per
        path and record), within MAX_PAGES."""
        todo, seen = [start], set()
        while todo:
            url = todo.pop(0)
            if _key(url) in seen:
                continue
            seen.add(_key(url))
            assert len(seen) <= MAX_PAGES, f"more than {MAX_PAGES} pages: {sorted(seen)}"
            self.open(url)
            seen.add(_key(self.page.url))  # after a redirect
            for href in self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                if _followed(href) and _key(href) not in seen:
                    todo.append(href)

    def text_of(self, pattern: str) -> str:
        """The text of every visited page whose path and query match `pattern`, joined."""
        found = [text for key, text in self.texts.items() if re.fullmatch(pattern, key)]
        assert found, f"{self.email} never opened a page matching {pattern}: {sorted(self.texts)}"
        return "\n".join(found)

    def close(self):
        self.context.close()


def _key(url: str) -> str:
    """A page's identity for the crawl: its path, plus its record id (details views)."""
    parts = urlsplit(url)
    ids = parse_qs(parts.query).get("id")
    return parts.path + (f"?id={ids[0]}" if ids else "")


def _followed(href: str) -> bool:
    parts = urlsplit(href)
    if not parts.path.startswith("/admin/") or parts.path.startswith("/admin/static/"):
        return False
    # Sorting, paging and filter links show the same rows again.
    return not re.search(r"(^|&)(sort|desc|page|page_size|search|flt\d+_[^=]*)=", parts.query)


def _shows(text: str, *needles: str) -> None:
    for needle in needles:
        assert needle in text, f"{needle!r} is not shown as text"


def _json_text(value: str) -> str:
    """How a string looks inside pretty-printed JSON."""
    return json.dumps(value)[1:-1]


# -- the test ------------------------------------------------------------------------------


def test_markdown_keeps_data_out_of_its_own_markup():
    """Task instructions are the one place data becomes markup (app/admin/markdown.py)."""
    from app.admin.markdown import render

    html = str(render(f"**{NAME}**\n\n- {MD_LINK} `{IMG}`\n\n[docs](https://x.example/a*b_c) and *z* _w_"))
    assert "<script" not in html and "<img" not in html and "<svg" not in html and 'href="javascript' not in html
    assert "[open](javascript:window.__xss=1)" in html  # not a link, shown as typed
    # Emphasis stays out of a link's URL (it once put <em> inside the href).
    assert '<a href="https://x.example/a*b_c" rel="noopener noreferrer" target="_blank">docs</a>' in html
    assert "<em>z</em>" in html and "<em>w</em>" in html
    # NUL-delimited placeholders are the renderer's own: data cannot name one (or fail the page).
    assert str(render("`code` and \x000\x00 and \x007\x00")) == "<p><code>code</code> and 0 and 7</p>"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install -y chromium")
def test_hostile_strings_are_shown_as_text_on_every_admin_page(
    db, client, auth, post_webhook, run_jobs, browser, server, validation_folder
):
    _people(db)
    _webhooks(post_webhook)
    run_jobs()
    _events(client, auth)
    run_jobs()
    _operations(db)
    _report(validation_folder)
    _assert_seeded(db)
    red_task = db.session.scalars(select(Task).where(Task.assignee == ANA, Task.title.like("Action plan%"))).one()
    review = db.session.scalars(
        select(Task).where(Task.assignee == ANA, Task.title.contains(FEATURE, autoescape=True))
    ).one()
    db.session.commit()  # end this session's read, so the server thread may write (SQLite)

    ana = Visitor(browser, server, ANA)
    try:
        # The CSM's own words, through the admin's forms: a comment, a snooze, a completion.
        ana.open(f"/admin/task/{red_task.id}")
        ana.page.fill("form.comment-form textarea[name=text]", COMMENT)
        ana.page.click("form.comment-form button[type=submit]")
        ana.page.wait_for_url(f"**/admin/task/{red_task.id}*")
        ana.check()
        ana.page.fill("form.snooze-form input[name=reason]", SNOOZE)
        ana.page.click("form.snooze-form button[type=submit]")
        ana.page.wait_for_url("**/admin/task/")
        _shows(ana.check(), f"Snoozed “{red_task.title}”")  # the flash message holds the title
        ana.open(f"/admin/task/{review.id}")
        ana.page.check("input[name=outcome][value=adopted]")
        ana.page.fill("textarea[name=note]", NOTE)
        ana.page.click("button:has-text('Complete')")
        ana.page.wait_for_url("**/admin/task/")
        _shows(ana.check(), f"Completed “{review.title}”")

        ana.crawl()
        # Searches and filters echo what was typed.
        _shows(ana.open(f"/admin/task/?search={quote(SCRIPT)}"), red_task.title)
        _shows(ana.open(f"/admin/account/?search={quote(NAME[:40])}&flt0_segment_equals={quote(SEGMENT)}"), NAME)

        _shows(ana.text_of("/admin/task/"), red_task.title, CSM_NAME)
        _shows(
            ana.text_of(f"/admin/task/{red_task.id}"),
            red_task.title,
            NAME,
            SEGMENT,
            PLAN,
            STAGE,
            REASON,
            CONTACT,
            CONTACT_ROLE,
            COMMENT,
            SNOOZE,
            RUN_NOTE,
            STEP_ERROR,
        )
        _shows(ana.text_of(f"/admin/task/{review.id}"), review.title, NOTE, FEATURE)
        _shows(
            ana.text_of("/admin/account/acme"),
            NAME,
            SEGMENT,
            PLAN,
            STAGE,
            REASON,
            CHANGED_BY,
            CONTACT,
            red_task.title,
            review.title,
            RUN_NOTE,
            STEP_ERROR,
        )
        assert not any(
            key.startswith(("/admin/audit", "/admin/queues", "/admin/score-quality", "/admin/event"))
            for key in ana.texts
        )
    finally:
        ana.close()

    root = Visitor(browser, server, ADMIN)
    try:
        root.crawl()
        # The dashboard's link to a CSM's tasks filters by their e-mail, here a template.
        _shows(root.open(f"/admin/task/?flt0_assignee_equals={quote(OTHER_CSM)}"), ACCOUNT_ID)
        _shows(root.open(f"/admin/audit/?search={quote(AUDIT_SUMMARY[:30])}"), AUDIT_SUMMARY)
        # The details views' "back" link must not take a javascript: URL from the query string.
        event_id = db.session.scalars(select(Event.id).where(Event.external_id == EXTERNAL_ID)).one()
        db.session.commit()  # end the read again (SQLite)
        _shows(root.open(f"/admin/event/details/?id={event_id}&url={quote('javascript:window.__xss=1')}"), EVENT_ERROR)
        pages = root.texts
        assert {
            "/admin/task/",
            "/admin/account/",
            "/admin/dashboard/",
            "/admin/rules/",
            "/admin/queues/",
            "/admin/score-quality/",
            "/admin/audit/",
            "/admin/event/",
            "/admin/playbookrun/",
        } <= set(pages), sorted(pages)
        # The charts cut labels short (charts._short): a plan, segment and stage as the bars name them.
        _shows(root.text_of("/admin/dashboard/"), CSM_NAME, OTHER_CSM, *(v[:17] + "…" for v in (SEGMENT, PLAN, STAGE)))
        _shows(root.text_of("/admin/account/"), NAME, SEGMENT, PLAN, ACCOUNT_ID)
        _shows(root.text_of("/admin/account/.+"), ACCOUNT_ID, OTHER_CSM)
        _shows(root.text_of("/admin/task/"), NAME, DAILY_FEATURE, ACCOUNT_ID)
        _shows(root.text_of(r"/admin/task/\d+"), COMMENT, SNOOZE, NOTE)
        _shows(
            root.text_of("/admin/audit/"),
            AUDIT_ACTOR,
            AUDIT_SUMMARY,
            AUDIT_OBJECT,
            ACCOUNT_ID,
            _json_text(AUDIT_DETAIL),
            _json_text(SNOOZE),
            _json_text(NOTE),
            red_task.title,
        )
        _shows(root.text_of("/admin/rules/"), PAUSED)
        _shows(root.text_of("/admin/queues/"), JOB)
        _shows(root.text_of("/admin/score-quality/"), INDICATOR, BAND, LABELS)
        _shows(
            root.text_of(r"/admin/event/details/\?id=\d+.*"),
            _json_text(FEATURE),
            _json_text(DAILY_FEATURE),
            _json_text(SUBJECT),
            _json_text(BODY),
            _json_text(PROPERTY),
            EXTERNAL_ID,
            _json_text(NAME),
            _json_text(REASON),
            EVENT_ERROR,
        )
        _shows(root.text_of("/admin/event/"), EVENT_ERROR)
        _shows(
            root.text_of(r"/admin/playbookrun/details/\?id=\d+.*"),
            _json_text(FEATURE),
            _json_text(DAILY_FEATURE),
            RUN_NOTE,
            STEP_ERROR,
        )
    finally:
        root.close()

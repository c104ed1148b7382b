"""The loaded files the server acts on: rules, playbooks, metrics and scorecards, reloaded
when their files change, checked as one set (a rule or a scorecard may name only a metric
the metric files declare).

Loaded at start-up from RULES_DIR, PLAYBOOKS_DIR, METRICS_DIR and SCORECARDS_DIR; a file that does not load stops the
server with `file:line: what is wrong`. Afterwards `current()` looks at the files' sizes and
modification times at most every RULES_RELOAD_SECONDS (default 2) and reloads when they
changed, or when `flask rules reload` touched `instance/rules-reload`. A set that does not
load is refused: the last good set keeps running, and the error is logged and kept for the
admin's rules page (`reload_error()`).

Old matchers are never closed here: threads may still be inside them. A Matcher frees its
engine memory itself once nothing references it any more.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from flask import Flask, current_app
from werkzeug.local import LocalProxy

from app.config import ROOT
from app.filecheck import FileError, FileErrors
from app.matching.loader import load_rules
from app.matching.matcher import Matcher
from app.matching.model import RuleSet
from app.playbooks.loader import load_playbooks
from app.playbooks.model import Playbook
from app.signals.indicators import MetricSet, load_metrics, shipped_metric_names
from app.signals.scorecards import Scorecards, load_scorecards

log = logging.getLogger(__name__)
RELOAD_MARKER = "rules-reload"  # in the instance folder; touched by `flask rules reload`


@dataclass
class Catalog:
    ruleset: RuleSet
    playbooks: dict[str, Playbook]
    matcher: Matcher
    metrics: MetricSet = field(default_factory=lambda: MetricSet((), "none"))
    scorecards: Scorecards = field(default_factory=lambda: Scorecards((), "none"))
    signature: tuple = ()  # the files' names, sizes and mtimes when loaded
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class _Reloading:
    rules_dir: str
    playbooks_dir: str
    marker: str
    interval: float
    metrics_dir: str = str(ROOT / "metrics")
    scorecards_dir: str = str(ROOT / "scorecards")
    checked_at: float = 0.0
    error: str | None = None  # the last refused reload, until a good set loads
    error_at: datetime | None = None
    failed_signature: tuple | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_catalog(
    rules_dir: str, playbooks_dir: str, metrics_dir: str | None = None, scorecards_dir: str | None = None
) -> Catalog:
    """Load and cross-check the four sets; FileErrors lists every problem of every file.
    Without a metrics or scorecards folder, the repository's own are used."""
    metrics_dir = metrics_dir or str(ROOT / "metrics")
    scorecards_dir = scorecards_dir or str(ROOT / "scorecards")
    signature = files_signature(rules_dir, playbooks_dir, metrics_dir, scorecards_dir)
    errors: list[FileError] = []
    metrics = _collect(errors, load_metrics, metrics_dir)
    playbooks = _collect(errors, load_playbooks, playbooks_dir)
    # Rules and scorecards are checked against the metrics that loaded (all of them, or none).
    names = metrics.names if metrics is not None else shipped_metric_names()
    ruleset = _collect(errors, load_rules, rules_dir, playbooks or {}, metrics=names)
    scorecards = _collect(errors, load_scorecards, scorecards_dir, names)
    if errors:
        raise FileErrors(errors)
    assert metrics is not None and playbooks is not None and ruleset is not None and scorecards is not None
    return Catalog(
        ruleset=ruleset,
        playbooks=playbooks,
        matcher=Matcher(ruleset),
        metrics=metrics,
        scorecards=scorecards,
        signature=signature,
    )


def _collect(errors: list, loader, *args, **kwargs):
    """The loader's result, or None with its problems added to `errors` (so one check reports
    the problems of all four sets)."""
    try:
        return loader(*args, **kwargs)
    except FileErrors as exc:
        errors.extend(exc.errors)
        return None


def files_signature(*folders: str) -> tuple:
    """Cheap change detection: (path, size, mtime) of every file in the folders (one level)."""
    found: list[tuple[str, int | None] | tuple[str, int, int]] = []
    for folder in folders:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            found.append((folder, None))
            continue
        for entry in entries:
            try:
                if entry.is_file():
                    stat = entry.stat()
                    found.append((entry.path, stat.st_size, stat.st_mtime_ns))
            except OSError:
                continue
    return tuple(found)


def init_app(app: Flask) -> None:
    config = app.config
    state = _Reloading(
        config["RULES_DIR"],
        config["PLAYBOOKS_DIR"],
        marker=os.path.join(app.instance_path, RELOAD_MARKER),
        interval=float(config.get("RULES_RELOAD_SECONDS", 2)),
        metrics_dir=config["METRICS_DIR"],
        scorecards_dir=config["SCORECARDS_DIR"],
    )
    try:
        catalog = load_catalog(state.rules_dir, state.playbooks_dir, state.metrics_dir, state.scorecards_dir)
    except FileErrors as exc:
        if not _rules_command():
            raise  # a server whose files do not load does not start
        # `flask rules check|test` must run to report what is wrong: start with nothing loaded.
        state.error, state.error_at = str(exc), datetime.now(UTC)
        ruleset = RuleSet(rules=(), version="none")
        catalog = Catalog(ruleset=ruleset, playbooks={}, matcher=Matcher(ruleset))
    catalog.signature = _signature(state)
    app.extensions["triage_catalog"] = catalog
    app.extensions["triage_catalog_reloading"] = state
    state.checked_at = time.monotonic()


def _rules_command() -> bool:
    """Whether this process is `flask ... rules ...` (which reports broken files itself)."""
    return os.path.basename(sys.argv[0] if sys.argv else "") == "flask" and "rules" in sys.argv[1:]


def _signature(state: _Reloading) -> tuple:
    marker = state.marker
    try:
        marked = os.stat(marker).st_mtime_ns
    except OSError:
        marked = None
    folders = (state.rules_dir, state.playbooks_dir, state.metrics_dir, state.scorecards_dir)
    return files_signature(*folders) + ((marker, marked),)


def current() -> Catalog:
    """The live catalog (reloaded first if its files changed; cheap when they did not)."""
    app = cast("LocalProxy[Flask]", current_app)._get_current_object()  # Flask types the proxy as the app
    refresh(app)
    return app.extensions["triage_catalog"]


def refresh(app: Flask, force: bool = False) -> bool:
    """Reload if the files changed since the last load; True when a new set went live."""
    state: _Reloading | None = app.extensions.get("triage_catalog_reloading")
    if state is None or (state.interval <= 0 and not force):
        return False
    now = time.monotonic()
    if not force and now - state.checked_at < state.interval:
        return False
    if not state.lock.acquire(blocking=force):
        return False  # another thread is checking right now
    try:
        state.checked_at = now
        signature = _signature(state)
        live = app.extensions["triage_catalog"]
        if signature == live.signature or (signature == state.failed_signature and not force):
            return False
        try:
            catalog = load_catalog(state.rules_dir, state.playbooks_dir, state.metrics_dir, state.scorecards_dir)
        except FileErrors as exc:
            state.error, state.error_at, state.failed_signature = str(exc), datetime.now(UTC), signature
            log.error(
                "rule/playbook files changed but do not load; still running version %s:\n%s", live.ruleset.version, exc
            )
            return False
        catalog.signature = signature
        app.extensions["triage_catalog"] = catalog
        state.error = state.error_at = state.failed_signature = None
        log.info(
            "rules reloaded: version %s -> %s (%d rules)",
            live.ruleset.version,
            catalog.ruleset.version,
            len(catalog.ruleset.rules),
        )
        new_series = sorted(set(catalog.metrics.series()) - set(live.metrics.series()))
        if new_series and live.metrics.version != "none":
            # The rollups kept only what the old declarations needed: the past of these is empty.
            log.warning(
                "metrics now read %d series the stored rollups do not have (%s): their history reads as "
                "empty until `flask metrics rebuild`",
                len(new_series),
                ", ".join(new_series),
            )
        return True
    finally:
        state.lock.release()


def reload_error(app: Flask | None = None) -> tuple[str | None, datetime | None]:
    """The last refused reload (message, when), or (None, None)."""
    state = (app or current_app).extensions.get("triage_catalog_reloading")
    return (state.error, state.error_at) if state else (None, None)


def request_reload(app: Flask | None = None) -> None:
    """Make every process (web, workers) reload at its next check: touch the marker file."""
    marker = os.path.join((app or current_app).instance_path, RELOAD_MARKER)
    with open(marker, "a"):
        pass
    os.utime(marker, None)

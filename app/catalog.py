"""The loaded rules and playbooks the server acts on.

Loaded once at start-up from RULES_DIR and PLAYBOOKS_DIR. A file that does not load
stops the server with `file:line: what is wrong` (reloading that keeps the last good
set comes with the rule-language issue).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from app.matching.loader import load_rules
from app.matching.matcher import Matcher
from app.matching.model import RuleSet
from app.playbooks.loader import load_playbooks
from app.playbooks.model import Playbook


@dataclass
class Catalog:
    ruleset: RuleSet
    playbooks: dict[str, Playbook]
    matcher: Matcher


def load_catalog(rules_dir: str, playbooks_dir: str) -> Catalog:
    playbooks = load_playbooks(playbooks_dir)
    ruleset = load_rules(rules_dir, playbooks)
    return Catalog(ruleset=ruleset, playbooks=playbooks, matcher=Matcher(ruleset))


def init_app(app: Flask) -> None:
    app.extensions["triage_catalog"] = load_catalog(app.config["RULES_DIR"], app.config["PLAYBOOKS_DIR"])


def current() -> Catalog:
    return current_app.extensions["triage_catalog"]

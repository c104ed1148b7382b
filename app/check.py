"""Check the rule and playbook files without starting anything: `python -m app.check`.

Prints every problem as `file:line:column: message (hint: ...)` and exits 1, or a
one-line summary and exits 0. Also runs each rule's sample events. Works when the
files are broken, unlike `flask` commands, which need an app that loaded them.
"""

from __future__ import annotations

import sys

from app.config import ROOT, env_str


def check(rules_dir: str, playbooks_dir: str) -> tuple[bool, str]:
    from app.catalog import load_catalog
    from app.filecheck import FileErrors
    from app.matching.loader import failing_rule_tests, load_rule_tests

    try:
        loaded = load_catalog(rules_dir, playbooks_dir)
    except FileErrors as exc:
        return False, str(exc)
    samples = load_rule_tests(rules_dir)
    failures = failing_rule_tests(loaded.matcher, samples)
    if failures:
        return False, "\n".join(str(failure) for failure in failures)
    return True, (
        f"{len(loaded.ruleset.rules)} rules (version {loaded.ruleset.version}), "
        f"{len(loaded.playbooks)} playbooks, {len(samples)} rule samples: OK"
    )


def main() -> None:
    ok, report = check(env_str("RULES_DIR", str(ROOT / "rules")), env_str("PLAYBOOKS_DIR", str(ROOT / "playbooks")))
    print(report, file=sys.stdout if ok else sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Check the files CS ops write without starting anything: `python -m app.check` (`make check`).

Rules, playbooks, metrics and scorecards, as one set (a rule or a scorecard may only name a
declared metric). Prints every problem as `file:line:column: message (hint: ...)` and exits
1, or a one-line summary and exits 0. Also runs each rule's and each metric file's samples.
Works when the files are broken, unlike `flask` commands, which need an app that loaded them.
"""

from __future__ import annotations

import sys

from app.config import ROOT, env_str


def check(
    rules_dir: str, playbooks_dir: str, metrics_dir: str | None = None, scorecards_dir: str | None = None
) -> tuple[bool, str]:
    from app.catalog import load_catalog
    from app.filecheck import FileErrors
    from app.matching.loader import failing_rule_tests, load_rule_tests
    from app.signals.samples import failing_metric_samples, load_metric_samples

    metrics_dir = metrics_dir or str(ROOT / "metrics")
    try:
        loaded = load_catalog(rules_dir, playbooks_dir, metrics_dir, scorecards_dir)
    except FileErrors as exc:
        return False, str(exc)
    samples = load_rule_tests(rules_dir)
    metric_samples = load_metric_samples(metrics_dir)
    failures = failing_rule_tests(loaded.matcher, samples) + failing_metric_samples(loaded.metrics, metric_samples)
    if failures:
        return False, "\n".join(str(failure) for failure in failures)
    return True, (
        f"{len(loaded.ruleset.rules)} rules (version {loaded.ruleset.version}), "
        f"{len(loaded.playbooks)} playbooks, {len(loaded.metrics.metrics)} metrics, "
        f"{len(loaded.scorecards.cards)} scorecards, {len(samples)} rule samples, "
        f"{len(metric_samples)} metric samples: OK"
    )


def main() -> None:
    ok, report = check(
        env_str("RULES_DIR", str(ROOT / "rules")),
        env_str("PLAYBOOKS_DIR", str(ROOT / "playbooks")),
        env_str("METRICS_DIR", str(ROOT / "metrics")),
        env_str("SCORECARDS_DIR", str(ROOT / "scorecards")),
    )
    print(report, file=sys.stdout if ok else sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Declared indicators (metrics/*.yml): the file language, its errors, and what each aggregate computes.

The samples of the shipped files run here too, so a shipped declaration that stops meaning
what its samples say fails the suite.
"""

from __future__ import annotations

import pytest

from app.filecheck import FileErrors
from app.signals.indicators import load_metrics
from app.signals.samples import MetricSample, failing_metric_samples, load_metric_samples, run_sample
from tests.helpers import ROOT, write_in


def metric_set(tmp_path, text: str):
    write_in(tmp_path, "m.yml", text)
    return load_metrics(str(tmp_path))


def sample(events, on_day, expect=None, first_day=None):
    return MetricSample("s", tuple(events), on_day, expect or {}, first_day, "m.yml", 1)


def test_every_shipped_metric_sample_holds():
    metrics = load_metrics(str(ROOT / "metrics"))
    samples = load_metric_samples(str(ROOT / "metrics"))
    assert len(samples) >= 9
    assert failing_metric_samples(metrics, samples) == []
    # Every shipped metric is exercised by at least one sample.
    expected = {name for s in samples for name in s.expect}
    assert {m.name for m in metrics.metrics} - expected == set()


def test_the_fourteen_metrics_of_before_keep_their_names():
    names = set(load_metrics(str(ROOT / "metrics")).names)
    assert {
        "active_users_avg_30d",
        "active_users_avg_prev_30d",
        "active_users_change_pct_30d",
        "logins_7d",
        "logins_30d",
        "new_users_30d",
        "seats",
        "nps_last",
        "days_since_nps",
        "happiness_last",
        "tickets_30d",
        "tickets_high_30d",
        "ticket_sentiment_30d",
        "features_used_30d",
    } <= names


def test_a_failing_sample_says_what_it_got(tmp_path):
    metrics = metric_set(
        tmp_path,
        "metrics:\n  - {name: msgs_7d, from: usage.daily, value: features.message, aggregate: sum, window: 7}\n",
    )
    events = [{"day": 0, "type": "usage.daily", "properties": {"features": {"message": 4}}, "repeat": 10}]
    [failure] = failing_metric_samples(metrics, [sample(events, 9, {"msgs_7d": 40})])
    assert "msgs_7d is 28 on day 9, expected 40" in str(failure)


def test_per_feature_windows_and_a_negative_behaviour(tmp_path):
    metrics = metric_set(
        tmp_path,
        """metrics:
  - name: messages_28d
    from: usage.daily
    value: features.message
    aggregate: sum
    window: 28
  - name: dislikes_per_active_day_28d
    from: usage.daily
    value: features.dislike
    aggregate: sum
    per: active_day
    window: 28
    direction: lower_is_better
  - {name: messages_change_pct, change_of: messages_28d}
""",
    )
    events = [
        {"day": 0, "type": "usage.daily", "properties": {"features": {"message": 10, "dislike": 0}}, "repeat": 28},
        {"day": 28, "type": "usage.daily", "properties": {"features": {"message": 5, "dislike": 2}}, "repeat": 14},
    ]
    got = run_sample(metrics, sample(events, 55))
    assert got["messages_28d"] == 14 * 5  # days 42-55 silent: zeros
    assert got["messages_change_pct"] == -75  # 70 messages against 280 in the 28 days before
    assert got["dislikes_per_active_day_28d"] == 2  # per day with the behaviour, not per calendar day


def test_every_aggregate(tmp_path):
    metrics = metric_set(
        tmp_path,
        """metrics:
  - {name: s, from: x.e, value: v, aggregate: sum, window: 10}
  - {name: c, from: x.e, aggregate: count, window: 10}
  - {name: m, from: x.e, value: v, aggregate: mean, window: 10}
  - {name: lo, from: x.e, value: v, aggregate: min, window: 10}
  - {name: hi, from: x.e, value: v, aggregate: max, window: 10}
  - {name: la, from: x.e, value: v, aggregate: latest}
  - {name: d, from: x.e, value: who, aggregate: distinct, window: 10}
  - {name: a, from: x.e, aggregate: active_days, window: 10}
  - {name: ds, from: x.e, aggregate: days_since}
  - {name: big, from: x.e, aggregate: count, where: {kind: [big]}, window: 10}
""",
    )
    events = [
        {"day": 1, "type": "x.e", "properties": {"v": 4, "who": "a", "kind": "big"}},
        {"day": 1, "type": "x.e", "properties": {"v": 2, "who": "b"}},
        {"day": 3, "type": "x.e", "properties": {"v": 9, "who": "a", "kind": "small"}},
    ]
    got = run_sample(metrics, sample(events, 5))
    assert got == {"s": 15, "c": 3, "m": 5, "lo": 2, "hi": 9, "la": 9, "d": 2, "a": 2, "ds": 2, "big": 1}


def test_a_window_before_the_accounts_first_day_says_so(tmp_path):
    metrics = metric_set(
        tmp_path,
        """metrics:
  - {name: as_is, from: x.e, aggregate: count, window: 10}
  - {name: scaled, from: x.e, aggregate: count, window: 10, short_history: scale}
  - {name: unknown, from: x.e, aggregate: count, window: 10, short_history: "null"}
  - {name: per_day, from: x.e, value: v, aggregate: sum, per: day, window: 10}
  - {name: older, from: x.e, aggregate: count, window: 5, offset: 10}
""",
    )
    events = [{"day": 0, "type": "x.e", "properties": {"v": 3}, "repeat": 5}]
    got = run_sample(metrics, sample(events, 4))
    assert (got["as_is"], got["scaled"], got["unknown"], got["per_day"]) == (5, 10, None, 3)
    assert got["older"] is None  # the window lies wholly before the account's first day


def test_the_file_is_checked_like_a_rule_file(tmp_path):
    write_in(
        tmp_path,
        "m.yml",
        """metrics:
  - {name: ok_one, from: usage.daily, value: logins, aggregate: sum, window: 7}
  - {name: ok_one, from: usage.daily, aggregate: count, window: 7}
  - {name: tenure_days, from: usage.daily, aggregate: count, window: 7}
  - {name: no_window, from: usage.daily, value: logins, aggregate: sum}
  - {name: no_value, from: usage.daily, aggregate: mean, window: 3}
  - {name: typo, from: usage.daily, aggregate: summ, window: 3}
  - {name: change, change_of: ok_onee}
  - {name: by_sum, from: feedback.happiness, value: level, aggregate: sum, by: user_id, window: 9}
""",
    )
    with pytest.raises(FileErrors) as caught:
        load_metrics(str(tmp_path))
    text = str(caught.value)
    assert f"{tmp_path}/m.yml:3:" in text and "metric 'ok_one' is defined twice" in text
    assert "'tenure_days' is a built-in metric" in text
    assert "sum needs a `window:`" in text
    assert "mean needs a `value:`" in text
    assert "unknown value 'summ'" in text and "did you mean 'sum'" in text
    assert "change_of names an unknown metric 'ok_onee'" in text and "did you mean 'ok_one'" in text
    assert "`by` goes with aggregate: latest" in text


def test_a_rule_or_a_scorecard_may_name_only_a_known_metric(tmp_path):
    from app.catalog import load_catalog

    metrics_dir = tmp_path / "metrics"
    write_in(
        metrics_dir, "m.yml", "metrics:\n  - {name: messages_28d, from: usage.daily, aggregate: count, window: 28}\n"
    )
    cards = tmp_path / "cards"
    write_in(
        cards,
        "c.yml",
        "scorecards:\n  - name: c\n    indicators:\n"
        "      - {metric: mesages_28d, weight: 1, points: [[0, 0], [9, 100]]}\n"
        "      - {metric: messages_28d, weight: 1, points: [[0, 100], [9, 0]], direction: higher_is_better}\n"
        "    bands: {green: 50, red: 0}\n",
    )
    with pytest.raises(FileErrors) as caught:
        load_catalog(str(ROOT / "rules"), str(ROOT / "playbooks"), str(metrics_dir), str(cards))
    text = str(caught.value)
    assert "unknown metric 'mesages_28d'" in text and "did you mean 'messages_28d'" in text
    assert "direction says higher_is_better but the points fall" in text
    # The shipped rules read shipped metrics (usage decline), which this folder does not declare.
    assert "rules/early-warning.yml" in text and "unknown metric 'active_users_change_pct_30d'" in text

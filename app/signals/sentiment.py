"""Sentiment of support-ticket text, offline: VADER's lexicon ships inside its package.

Returns VADER's compound score, -1 (frustrated) .. 1 (pleased). No model is downloaded.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str | None) -> float | None:
    if not text or not text.strip():
        return None
    return round(_analyzer().polarity_scores(text[:5000])["compound"], 4)

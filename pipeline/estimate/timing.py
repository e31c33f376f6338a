"""How long a job takes under its limits: the slowest of rate, token rate and concurrency.

    >>> from pipeline.config import LimitsConfig
    >>> time_estimate(1200, 3_000_000, LimitsConfig(requests_per_minute=600,
    ...               tokens_per_minute=1_000_000, max_concurrency=4), latency_ms=500)
    (180.0, 'tokens_per_minute', {'requests_per_minute': 120.0, 'tokens_per_minute': 180.0, 'concurrency': 150.0})

Each limit alone implies a time; the run can be no faster than the slowest, so that one
binds. `tokens_per_minute` meters the runner's *heuristic* estimate (that is what the
limiter counts), not the calibrated figure. Concurrency needs a typical latency
(`--latency-ms`, or the mean `latency_ms` of a calibration run's usage/); without one, and
without rate limits, the time is unknown (None), not 0. Retries and 429 cool-downs add to it.
"""

from __future__ import annotations

from pipeline.config import LimitsConfig


def time_estimate(
    requests: int, estimated_tokens: int, limits: LimitsConfig, latency_ms: float | None
) -> tuple[float | None, str | None, dict[str, float]]:
    """(seconds, the binding limit's name, seconds implied by each known limit)."""
    by_limit: dict[str, float] = {}
    if limits.requests_per_minute:
        by_limit["requests_per_minute"] = round(requests / limits.requests_per_minute * 60.0, 3)
    if limits.tokens_per_minute:
        by_limit["tokens_per_minute"] = round(estimated_tokens / limits.tokens_per_minute * 60.0, 3)
    if latency_ms is not None:
        by_limit["concurrency"] = round(requests * latency_ms / 1000.0 / limits.max_concurrency, 3)
    if not by_limit:
        return None, None, by_limit
    binding = max(by_limit, key=by_limit.__getitem__)
    return by_limit[binding], binding, by_limit

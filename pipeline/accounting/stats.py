"""Job counters, kept from the first row read to the last row written.

>>> stats = JobStats()
>>> stats.queries_read += 2; stats.queries_ranked += 1; stats.queries_failed += 1
>>> stats.accounted_for()
True

The call layer counts requests through `count_attempt`, `count_retry`, `count_error`,
`count_answer` and `add_usage` (its `CallCounters` protocol), so it never imports this.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from pipeline.accounting.cost import DOCS_PER_SEARCH_UNIT, Billable
from pipeline.errors import ProviderError, RateLimited
from pipeline.records import UsageRecord


@dataclass(slots=True)
class JobStats:
    queries_read: int = 0
    queries_skipped: int = 0  # already done by an earlier run of the same job (resume)
    queries_ranked: int = 0
    queries_failed: int = 0
    documents_read: int = 0
    documents_ranked: int = 0
    chunks: int = 0
    listwise_chunked: int = 0  # queries a listwise model saw in several chunks
    requests: int = 0  # chunk requests answered successfully
    requests_failed: int = 0
    attempts: int = 0  # every HTTP attempt, retries included
    retries: int = 0
    http_429: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    failures_by_error: Counter[str] = field(default_factory=Counter)
    estimated_tokens: int = 0
    reported_prompt_tokens: int = 0
    reported_total_tokens: int = 0
    reported_search_units: float = 0.0
    requests_with_reported_tokens: int = 0
    requests_with_reported_search_units: int = 0
    billable: Billable = field(default_factory=Billable)  # answered vs never answered, for cost
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)

    def count_attempt(self) -> None:
        self.attempts += 1

    def count_retry(self) -> None:
        self.retries += 1

    def count_answer(self) -> None:
        self.requests += 1

    def count_error(self, err: ProviderError) -> None:
        if isinstance(err, RateLimited):
            self.http_429 += 1
        self.errors[err.key] += 1

    def add_usage(self, usage: UsageRecord) -> None:
        self.estimated_tokens += usage.estimated_tokens
        if usage.total_tokens is not None or usage.prompt_tokens is not None:
            self.requests_with_reported_tokens += 1
            self.reported_total_tokens += usage.total_tokens or 0
            self.reported_prompt_tokens += usage.prompt_tokens or 0
        if usage.search_units is not None:
            self.requests_with_reported_search_units += 1
            self.reported_search_units += usage.search_units
        self._add_billable(usage)

    def _add_billable(self, usage: UsageRecord) -> None:
        # Answered = a 2xx on the last attempt: only those are billed (accounting.cost).
        b = self.billable
        if usage.http_status is None or not 200 <= usage.http_status < 300:
            b.requests_unanswered += 1
            b.estimated_tokens_unanswered += usage.estimated_tokens
            b.estimated_search_units_unanswered += -(-usage.n_docs // DOCS_PER_SEARCH_UNIT)
            return
        b.requests_answered += 1
        if usage.total_tokens is None:
            b.requests_without_tokens += 1
            b.estimated_tokens_without_report += usage.estimated_tokens
        else:
            b.tokens_reported = (b.tokens_reported or 0) + usage.total_tokens
        if usage.search_units is None:
            b.requests_without_search_units += 1
        else:
            b.search_units_reported = (b.search_units_reported or 0.0) + usage.search_units

    def accounted_for(self) -> bool:
        """The invariant checked at the end: every query read is ranked, failed or skipped."""
        return self.queries_read == self.queries_ranked + self.queries_failed + self.queries_skipped

    def summary(self) -> dict:
        wall = time.monotonic() - self.started
        done = self.queries_ranked + self.queries_failed
        return {
            "queries": {
                "read": self.queries_read,
                "ranked": self.queries_ranked,
                "failed": self.queries_failed,
                "skipped_already_done": self.queries_skipped,
                "accounted_for": self.accounted_for(),
            },
            "documents": {"read": self.documents_read, "ranked": self.documents_ranked},
            "requests": {
                "chunks": self.chunks,
                "listwise_queries_chunked": self.listwise_chunked,
                "succeeded": self.requests,
                "failed": self.requests_failed,
                "attempts": self.attempts,
                "retries": self.retries,
                "http_429": self.http_429,
                "errors": dict(sorted(self.errors.items())),
            },
            "failures_by_error": dict(sorted(self.failures_by_error.items())),
            "tokens": {
                "estimated": self.estimated_tokens,
                # null, not 0, when the provider reported nothing: cost is never silently zero
                "reported_total": self.reported_total_tokens
                if self.requests_with_reported_tokens
                else None,
                "reported_prompt": self.reported_prompt_tokens
                if self.requests_with_reported_tokens
                else None,
                "requests_with_reported_tokens": self.requests_with_reported_tokens,
                "reported_search_units": (
                    self.reported_search_units if self.requests_with_reported_search_units else None
                ),
            },
            # What the cost is computed from (accounting.cost.run_cost): answered requests
            # as reported or estimated, and those never answered, apart.
            "billable": self.billable.to_json(),
            "time": {
                "started_at": self.started_at,
                "wall_seconds": round(wall, 3),
                "queries_per_second": round(done / wall, 3) if wall > 0 else None,
                "documents_per_second": round(self.documents_ranked / wall, 3)
                if wall > 0
                else None,
            },
        }

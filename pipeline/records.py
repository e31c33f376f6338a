"""The small record types passed between stages.

One query flows as a `Query` from read/ to chunk/, as `Chunk`s through limit/ and call/,
comes back as `ChunkScores` plus one `UsageRecord` per request, and leaves merge/ as ranked
rows, or as a `Failure` from any stage. Every input query ends as exactly one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Query:
    """One candidate list: a query and the documents a first-stage search returned."""

    query_id: str
    text: str
    documents: list[str]
    doc_ids: list[str]
    source: str  # "file row N", for failure rows and error messages


@dataclass(slots=True)
class Failure:
    """A query that will not be ranked, and why. One row of `failures/`."""

    query_id: str | None
    source: str
    stage: str  # "input" or "request"
    error: str  # short machine-readable kind, e.g. "missing_field", "http_400"
    message: str
    retryable: bool = False  # transient errors can be re-run with --retry-failed


@dataclass(slots=True)
class Finished:
    """Input rows of queries an earlier run already finished (resume), skipped unread:
    they count as read and skipped, and never become `Query` objects."""

    count: int


@dataclass(slots=True)
class Chunk:
    """Documents of one query sent as one request: the slice `documents[start:stop]`, or
    the candidates at `positions` (a listwise final pass; the misses of a score cache)."""

    query: Query
    number: int  # 0-based chunk index within the query
    start: int
    stop: int
    estimated_tokens: int
    top_n: int  # results asked of the server: min(job top_n, chunk size)
    positions: list[int] | None = None  # input positions, when not the slice start:stop

    @property
    def n_docs(self) -> int:
        return len(self.positions) if self.positions is not None else self.stop - self.start

    @property
    def documents(self) -> list[str]:
        if self.positions is not None:
            return [self.query.documents[p] for p in self.positions]
        return self.query.documents[self.start : self.stop]


@dataclass(slots=True)
class ProviderUsage:
    """Usage exactly as a provider reported it; None where it reported nothing (never 0)."""

    prompt_tokens: int | None = None
    total_tokens: int | None = None
    search_units: float | None = None


@dataclass(slots=True)
class UsageRecord:
    """One request's accounting. One row of `usage/`."""

    query_id: str
    chunk: int
    n_docs: int
    attempts: int
    http_status: int | None
    latency_ms: float | None
    prompt_tokens: int | None
    total_tokens: int | None
    search_units: float | None
    estimated_tokens: int
    billing: str
    started_at: float  # unix seconds of the first attempt


@dataclass(slots=True)
class ChunkScores:
    """A chunk's answer, normalized: positions are global input positions (0-based)."""

    chunk: Chunk
    positions: list[int]
    scores: list[float]
    usage: UsageRecord | None = None


@dataclass(slots=True)
class RankedDoc:
    position: int  # 0-based input position
    score: float

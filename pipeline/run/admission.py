"""Admission: what becomes of one input item before any request is sent.

    >>> from pipeline.config import load_job_text
    >>> from pipeline.ledger import QueryLedger
    >>> from pipeline.records import Query
    >>> from pipeline.run.settings import resolve_settings
    >>> cfg = load_job_text('[input]\\npath = "in.jsonl"\\n[provider]\\nkind = "local"\\n'
    ...                     '[output]\\ndir = "out"\\n[limits]\\nmax_docs_per_request = 2\\n')
    >>> settings, seen = resolve_settings(cfg), QueryLedger()
    >>> q = Query("q1", "solar", ["a", "b", "c"], ["0", "1", "2"], "in.jsonl line 1")
    >>> [(c.start, c.stop) for c in admit(q, settings, seen).chunks]
    [(0, 2), (2, 3)]
    >>> admit(q, settings, seen).error    # the same query_id again
    'duplicate_query_id'
    >>> seen.close()

The run and `estimate` both call `admit`, so both see the same failures and plan the same
chunks. In order: an unreadable row fails; a repeated query_id fails (the first occurrence
is ranked); a query an earlier run of the job finished is skipped; a document over
`limits.max_doc_tokens` is cut or fails its query; with a score cache, the pairs it holds
are taken from it (`Admitted.cached`); the rest is planned into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipeline.cache import Cached, ScoreCache, plan_uncached
from pipeline.chunk import estimate_tokens_many, fit_documents, plan_chunks
from pipeline.records import Chunk, Failure, Query
from pipeline.run.settings import RunSettings


class SeenIds(Protocol):
    """The query ids admitted so far in this run (`QueryLedger`: on disk, flat memory)."""

    def first_sight(self, qid: str) -> bool:
        """True the first time `qid` is admitted (and marks it seen)."""
        ...


class EarlierRuns(Protocol):
    """What earlier runs into the same output directory finished (`ResumeState` is one)."""

    def is_done(self, query_id: str | None) -> bool: ...

    def failure_recorded(self, source: str) -> bool: ...


@dataclass(slots=True)
class Admitted:
    """A query taken for ranking: its documents are read and checked. `chunks` are the
    requests to send; none when `failure` says why the query fails unsent."""

    query: Query
    chunks: list[Chunk]
    doc_tokens: list[int]  # each document's estimate, after any cut
    failure: Failure | None = None
    cached: Cached | None = None  # scores the cache held: `chunks` send only the rest


def admit(
    item: Query | Failure,
    settings: RunSettings,
    seen: SeenIds,
    earlier: EarlierRuns | None = None,
    cache: ScoreCache | None = None,
) -> Admitted | Failure | None:
    """Admit one input item, in input order.

    Returns a `Failure` for an item that fails before its documents are read (a bad row,
    a repeated query_id), None when `earlier` already finished or recorded it (nothing to
    do), else `Admitted`. `seen` collects the query_ids admitted so far. `cache`: the
    job's score cache, consulted after the documents are cut to size.
    """
    screened = screen(item, seen, earlier)
    if not isinstance(screened, Query):
        return screened
    return plan(screened, settings, cache)


def screen(
    item: Query | Failure, seen: SeenIds, earlier: EarlierRuns | None = None
) -> Query | Failure | None:
    """The first half of `admit`, the part that needs the whole input in order (an engine
    that plans elsewhere screens here): a `Failure` for a bad row or a repeated query_id,
    None for what `earlier` finished or recorded, else the query to `plan`."""
    if isinstance(item, Failure):
        return None if earlier is not None and earlier.failure_recorded(item.source) else item
    qid = item.query_id
    if not seen.first_sight(qid):
        if earlier is not None and earlier.failure_recorded(item.source):
            return None
        return Failure(
            qid,
            item.source,
            "input",
            "duplicate_query_id",
            f"{item.source}: query_id {qid!r} appeared earlier in the input; "
            "this later occurrence is not ranked",
        )
    if earlier is not None and earlier.is_done(qid):
        return None
    return item


def plan(item: Query, settings: RunSettings, cache: ScoreCache | None = None) -> Admitted:
    """The second half of `admit`: documents cut to size or failed, the cache consulted,
    the rest planned into chunks. Depends on the query alone."""
    qid = item.query_id
    doc_tokens = estimate_tokens_many(item.documents)  # once, for both steps below
    problem = fit_documents(item, settings.max_doc_tokens, settings.truncate, doc_tokens)
    if problem is not None:
        failure = Failure(qid, item.source, "input", "document_too_long", problem)
        return Admitted(item, [], doc_tokens, failure)
    if cache is not None:
        return _admit_with_cache(item, settings, doc_tokens, cache)
    chunks = plan_chunks(item, settings.max_docs, settings.max_tokens, settings.top_n, doc_tokens)
    return Admitted(item, chunks, doc_tokens)


def _admit_with_cache(
    query: Query, settings: RunSettings, doc_tokens: list[int], cache: ScoreCache
) -> Admitted:
    """Plan only the pairs the cache does not hold; the rest come with their scores."""
    cached = cache.look_up(query, doc_tokens)
    # A stored score must be every score: with top_n a chunk returns only its leaders.
    top_n = None if cache.stores else settings.top_n
    chunks = plan_uncached(
        query, cached.positions, doc_tokens, settings.max_docs, settings.max_tokens, top_n
    )
    return Admitted(query, chunks, doc_tokens, cached=cached)

"""The cache as a stage of the run: look a query's pairs up, plan only the misses, store
what comes back.

    >>> import tempfile, pathlib
    >>> from pipeline.cache.keys import ScoringIdentity
    >>> from pipeline.records import ChunkScores, Query
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.db"
    >>> cache = ScoreCache.create(path, ScoringIdentity("jina", "https://x/v1/rerank", "m", "{}"))
    >>> q = Query("q1", "solar", ["a", "b", "c"], ["d1", "d2", "d3"], "in.jsonl line 1")
    >>> cached = cache.look_up(q, [1, 1, 1]); cached.positions          # an empty cache
    []
    >>> chunks = plan_uncached(q, cached.positions, [1, 1, 1], 2, None, None)
    >>> cache.remember(ChunkScores(chunks[0], [1, 0], [0.9, 0.1])); cache.close()
    >>> cache = ScoreCache.create(path, cache.identity, read_only=True)
    >>> moved = Query("q9", "solar", ["c", "b", "a"], ["x", "y", "z"], "night 2")
    >>> cached = cache.look_up(moved, [1, 1, 1]); cached.positions, cached.scores
    ([1, 2], [0.9, 0.1])
    >>> [(c.positions, c.top_n) for c in plan_uncached(moved, cached.positions, [1, 1, 1], 2, None, 5)]
    [([0], 1)]

`admit` (pipeline.run.admission) calls `look_up` after documents are cut to size, then
`plan_uncached`: the misses are chunked under the same limits as an uncached run, as chunks
that name their documents' input positions. The query book puts `cached` into the query's
`PendingQuery` beside the chunk answers, and `remember`s each answer. Lookups run on the
caller's thread: one SELECT per query over keys that share a prefix, a fraction of a
millisecond (benchmarks/cache_bench.py measures it, cold pages included); storing goes
through `CacheWriter`'s thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.cache.keys import ScoringIdentity, pair_keys
from pipeline.cache.store import ScoreStore
from pipeline.cache.writer import CacheWriter
from pipeline.chunk import estimate_tokens, plan_chunks
from pipeline.records import Chunk, ChunkScores, Query

DAY_S = 86_400


@dataclass(slots=True)
class CacheCounters:
    pairs: int = 0  # (query, document) pairs of admitted queries, looked up
    hits: int = 0  # served from the cache
    expired: int = 0  # in the cache, but older than max_age_days: sent again
    queries: int = 0
    queries_all_cached: int = 0  # queries that needed no request at all
    saved_tokens: int = 0  # estimated tokens of the pairs served (query + document each)
    saved_unit_documents: int = 0  # those documents as Cohere counts them (long ones > 1)


@dataclass(slots=True)
class Cached:
    """A query's scores found in the cache: input positions and their scores."""

    positions: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class ScoreCache:
    def __init__(
        self,
        store: ScoreStore,
        model: int | None,
        identity: ScoringIdentity,
        writer: CacheWriter | None,
        *,
        max_age_days: float | None = None,
        unit_document_tokens: int | None = None,
    ):
        self.store = store
        self.model = model  # None: read-only and this identity has no entry yet
        self.identity = identity
        self.writer = writer  # None: read-only, fresh scores are not stored
        self.max_age_days = max_age_days
        # Entries from before this moment are expired (fixed once, at the start of the run).
        self.min_created = None if max_age_days is None else int(time.time() - max_age_days * DAY_S)
        self.unit_document_tokens = unit_document_tokens  # set for search-unit billing
        self.counters = CacheCounters()
        self._digest = identity.digest

    @classmethod
    def create(
        cls,
        path: Path,
        identity: ScoringIdentity,
        *,
        read_only: bool = False,
        max_age_days: float | None = None,
        unit_document_tokens: int | None = None,
    ) -> ScoreCache:
        """Open the cache file (raises CacheFileError) for one scoring identity."""
        store = ScoreStore.open(path, read_only=read_only)
        try:
            model = store.model_id(identity)
        except BaseException:
            store.close()
            raise
        writer = None if read_only or model is None else CacheWriter(path, model, identity.digest)
        return cls(
            store,
            model,
            identity,
            writer,
            max_age_days=max_age_days,
            unit_document_tokens=unit_document_tokens,
        )

    @property
    def stores(self) -> bool:
        """Fresh scores are stored: every chunk then asks for all its scores."""
        return self.writer is not None

    def look_up(self, query: Query, doc_tokens: list[int]) -> Cached:
        """The query's pairs found in the cache. `doc_tokens`: each document's estimate
        (for the tokens the cache saved)."""
        c = self.counters
        n = len(query.documents)
        c.queries += 1
        c.pairs += n
        if self.model is None or not n:
            return Cached()
        keys = pair_keys(self._digest, query.text, query.documents)
        found, expired = self.store.lookup_query(self.model, keys, self.min_created)
        c.expired += expired
        if not found:
            return Cached()
        scores = list(map(found.get, keys))
        positions = [i for i, s in enumerate(scores) if s is not None]
        c.hits += len(positions)
        if len(positions) == n:
            c.queries_all_cached += 1
        q_tokens = estimate_tokens(query.text)
        saved = [doc_tokens[p] for p in positions]
        c.saved_tokens += q_tokens * len(saved) + sum(saved)
        per_doc = self.unit_document_tokens
        if per_doc:
            c.saved_unit_documents += sum(max(1, -(-(q_tokens + d) // per_doc)) for d in saved)
        return Cached(positions, [s for s in scores if s is not None])

    def remember(self, answer: ChunkScores) -> None:
        """Store a chunk's fresh scores (every one it returned: each is exact)."""
        if self.writer is None or not answer.positions:
            return
        query = answer.chunk.query
        texts = list(map(query.documents.__getitem__, answer.positions))
        self.writer.put(query.text, texts, answer.scores)  # keys are made in its thread

    def close(self) -> None:
        """Store what is queued and close the file (once the run is over)."""
        if self.writer is not None:
            self.writer.close()
        self.store.close()


def plan_uncached(
    query: Query,
    cached: list[int],
    doc_tokens: list[int],
    max_docs: int,
    max_tokens: int | None,
    top_n: int | None,
) -> list[Chunk]:
    """The chunks that send the documents not in `cached` (input positions, ascending),
    planned by `plan_chunks` under the same limits. Nothing cached: exactly its plan."""
    if not cached:
        return plan_chunks(query, max_docs, max_tokens, top_n, doc_tokens)
    hit = set(cached)
    misses = [p for p in range(len(doc_tokens)) if p not in hit]
    if not misses:
        return []
    docs = query.documents
    rest = Query(query.query_id, query.text, [docs[p] for p in misses], [], query.source)
    planned = plan_chunks(rest, max_docs, max_tokens, top_n, [doc_tokens[p] for p in misses])
    return [
        Chunk(
            query,
            c.number,
            misses[c.start],
            misses[c.stop - 1] + 1,
            c.estimated_tokens,
            c.top_n,
            positions=misses[c.start : c.stop],
        )
        for c in planned
    ]

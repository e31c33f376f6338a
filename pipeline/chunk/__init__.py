"""Stage 2, chunk: split a candidate list into requests a provider will take.

    >>> from pipeline.records import Query
    >>> q = Query("q1", "solar panels", ["a" * 40] * 5, ["0", "1", "2", "3", "4"], "x row 1")
    >>> [(c.start, c.stop) for c in plan_chunks(q, max_docs=2, max_tokens=None, top_n=None)]
    [(0, 2), (2, 4), (4, 5)]

Invariants: chunks cover `0..len(documents)` in order with no gap or overlap; every chunk
holds at least one document (a single document over `max_tokens` gets a chunk alone; the
provider then truncates or rejects it); a chunk asks for `min(top_n, its size)` results,
which is enough for an exact global top_n after merging.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from pipeline.chunk.tokens import estimate_tokens, estimate_tokens_many, truncate_to_tokens
from pipeline.records import Chunk, Query

__all__ = [
    "estimate_tokens",
    "estimate_tokens_many",
    "fit_documents",
    "pair_tokens",
    "plan_chunks",
    "plan_final_pass",
]


def fit_documents(
    query: Query, max_doc_tokens: int | None, truncate: str, doc_tokens: list[int] | None = None
) -> str | None:
    """Enforce the per-document size limit; return a problem message, or None when all fit.

    truncate = "end": an over-long document is cut to the limit (on a character boundary)
    and still ranked; "none": the query fails, naming the document. Never silently dropped.
    `doc_tokens`: the documents' estimates when already computed (estimate_tokens_many);
    a truncated document's entry is updated in place, so plan_chunks can reuse the list.
    """
    if max_doc_tokens is None:
        return None
    if doc_tokens is None:
        doc_tokens = estimate_tokens_many(query.documents)
    if not doc_tokens or max(doc_tokens) <= max_doc_tokens:
        return None  # the common case: one C-level pass
    for pos, tokens in enumerate(doc_tokens):
        if tokens <= max_doc_tokens:
            continue
        if truncate == "none":
            return (
                f"{query.source}: document {pos} (doc_id {query.doc_ids[pos]!r}) is about "
                f"{tokens} tokens, over limits.max_doc_tokens = {max_doc_tokens}; "
                'set input.truncate = "end" to cut such documents instead'
            )
        query.documents[pos] = truncate_to_tokens(query.documents[pos], max_doc_tokens)
        doc_tokens[pos] = estimate_tokens(query.documents[pos])
    return None


def pair_tokens(query_tokens: int, doc_tokens: int) -> int:
    """Tokens a reranker reads for one candidate: the query and the document together.

    Cross-encoders score (query, document) pairs, and per-token APIs bill that way, so a
    request's estimate is the sum over its documents of query + document tokens.
    """
    return query_tokens + doc_tokens


def plan_chunks(
    query: Query,
    max_docs: int,
    max_tokens: int | None,
    top_n: int | None,
    doc_tokens: list[int] | None = None,
) -> list[Chunk]:
    """Greedy: a chunk takes documents in order until the next would make it pass
    `max_docs` or `max_tokens` (but always at least one). `doc_tokens`: the documents'
    estimates when already computed.

    Done on prefix sums of the pair costs (accumulate in C, a bisect per chunk) rather than
    a Python step per document: this runs for every document of the corpus.
    """
    q_tokens = estimate_tokens(query.text)
    if doc_tokens is None:
        doc_tokens = estimate_tokens_many(query.documents)
    n = len(doc_tokens)
    # used[k] = tokens of the pairs 0..k-1 (pair_tokens(q, d) = q + d, summed)
    used = list(accumulate(doc_tokens, initial=0))
    chunks: list[Chunk] = []
    start = 0
    while start < n:
        stop = min(n, start + max_docs)
        if max_tokens is not None:
            # the last k whose pairs start..k-1 fit: used[k] - used[start] + (k - start) * q
            # <= max_tokens; costs are >= 0, so that total only grows with k (bisect holds)
            fits = (
                bisect_right(
                    range(start, stop + 1),
                    max_tokens,
                    key=lambda k: used[k] - used[start] + (k - start) * q_tokens,
                )
                - 1
            )
            stop = max(start + 1, start + fits)
        tokens = used[stop] - used[start] + (stop - start) * q_tokens
        chunks.append(_chunk(query, len(chunks), start, stop, tokens, top_n))
        start = stop
    return chunks


def _chunk(
    query: Query, number: int, start: int, stop: int, tokens: int, top_n: int | None
) -> Chunk:
    size = stop - start
    return Chunk(query, number, start, stop, tokens, size if top_n is None else min(top_n, size))


def plan_final_pass(query: Query, leaders: list[int], number: int, top_n: int | None) -> Chunk:
    """One more request for a chunked query: its merged `leaders` (input positions),
    re-ranked in a single listwise context. `number` follows the query's last chunk."""
    q_tokens = estimate_tokens(query.text)
    tokens = sum(pair_tokens(q_tokens, estimate_tokens(query.documents[p])) for p in leaders)
    asked = len(leaders) if top_n is None else min(top_n, len(leaders))
    return Chunk(query, number, 0, 0, tokens, asked, positions=leaders)

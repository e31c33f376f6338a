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

from pipeline.chunk.tokens import estimate_tokens, truncate_to_tokens
from pipeline.records import Chunk, Query

__all__ = ["estimate_tokens", "fit_documents", "plan_chunks", "pair_tokens"]


def fit_documents(query: Query, max_doc_tokens: int | None, truncate: str) -> str | None:
    """Enforce the per-document size limit; return a problem message, or None when all fit.

    truncate = "end": an over-long document is cut to the limit (on a character boundary)
    and still ranked; "none": the query fails, naming the document. Never silently dropped.
    """
    if max_doc_tokens is None:
        return None
    for pos, doc in enumerate(query.documents):
        if estimate_tokens(doc) <= max_doc_tokens:
            continue
        if truncate == "none":
            return (
                f"{query.source}: document {pos} (doc_id {query.doc_ids[pos]!r}) is about "
                f"{estimate_tokens(doc)} tokens, over limits.max_doc_tokens = {max_doc_tokens}; "
                "set input.truncate = \"end\" to cut such documents instead"
            )
        query.documents[pos] = truncate_to_tokens(doc, max_doc_tokens)
    return None


def pair_tokens(query_tokens: int, doc_tokens: int) -> int:
    """Tokens a reranker reads for one candidate: the query and the document together.

    Cross-encoders score (query, document) pairs, and per-token APIs bill that way, so a
    request's estimate is the sum over its documents of query + document tokens.
    """
    return query_tokens + doc_tokens


def plan_chunks(query: Query, max_docs: int, max_tokens: int | None, top_n: int | None) -> list[Chunk]:
    q_tokens = estimate_tokens(query.text)
    chunks: list[Chunk] = []
    start = 0
    used = 0
    n = len(query.documents)
    for pos, doc in enumerate(query.documents):
        cost = pair_tokens(q_tokens, estimate_tokens(doc))
        size = pos - start
        full = size >= max_docs or (max_tokens is not None and size > 0 and used + cost > max_tokens)
        if full:
            chunks.append(_chunk(query, len(chunks), start, pos, used, top_n))
            start, used = pos, 0
        used += cost
    if start < n:
        chunks.append(_chunk(query, len(chunks), start, n, used, top_n))
    return chunks


def _chunk(query: Query, number: int, start: int, stop: int, tokens: int, top_n: int | None) -> Chunk:
    size = stop - start
    return Chunk(query, number, start, stop, tokens, size if top_n is None else min(top_n, size))

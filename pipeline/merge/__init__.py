"""Stage 5, merge: a query's chunk answers into one global ranking.

    >>> from pipeline.records import Query
    >>> q = Query("q1", "x", ["a", "b", "c"], ["a", "b", "c"], "row 1")
    >>> state = PendingQuery(q, n_chunks=2, top_n=2)
    >>> state.add([0, 1], [0.2, 0.9]); state.add([2], [0.9])
    >>> [(d.position, d.score) for d in state.ranking()]
    [(1, 0.9), (2, 0.9)]

Order: score descending, ties by input position ascending, cut to top_n. Each chunk was
asked for min(top_n, chunk size) results, so the global top_n is always among them; for a
pointwise scorer the result equals one unchunked request's ranking.
"""

from __future__ import annotations

from itertools import islice
from operator import gt, neg

from pipeline.records import Query, RankedDoc


class PendingQuery:
    """A query whose chunks are in flight. Written only once every chunk is in."""

    __slots__ = ("query", "n_chunks", "top_n", "received", "positions", "scores", "failed")

    def __init__(self, query: Query, n_chunks: int, top_n: int | None):
        self.query = query
        self.n_chunks = n_chunks
        self.top_n = top_n
        self.received = 0
        self.positions: list[int] = []
        self.scores: list[float] = []
        self.failed = False  # set when one chunk failed: the query fails as a whole

    def add(self, positions: list[int], scores: list[float]) -> None:
        self.positions.extend(positions)
        self.scores.extend(scores)
        self.received += 1

    def add_cached(self, positions: list[int], scores: list[float]) -> None:
        """Scores a score cache held (pipeline.cache): merged like a chunk's, but no chunk
        was sent for them, so `n_chunks` counts only the chunks that are."""
        self.positions.extend(positions)
        self.scores.extend(scores)

    @property
    def complete(self) -> bool:
        return self.received == self.n_chunks

    def ranking(self, cut: bool = True) -> list[RankedDoc]:
        positions, scores = self.order(cut)
        return list(map(RankedDoc, positions, scores))

    def order(self, cut: bool = True) -> tuple[list[int], list[float]]:
        """The ranking as two columns (positions, scores): score descending, ties by
        position ascending. (-score, position) tuples are built and compared in C: no key
        function call and no object per document."""
        scores = self.scores
        if all(map(gt, scores, islice(scores, 1, None))):
            # Strictly descending already (a single chunk's answer usually is: rerank APIs
            # return results best first): that is the order, with no tie to break. One
            # C-level pass instead of a tuple per document and a sort.
            stop = None if not cut or self.top_n is None else self.top_n
            return self.positions[:stop], scores[:stop]
        pairs = sorted(zip(map(neg, self.scores), self.positions, strict=True))
        if cut and self.top_n is not None:
            del pairs[self.top_n :]
        if not pairs:
            return [], []
        neg_scores, positions = zip(*pairs, strict=True)
        return list(positions), list(map(neg, neg_scores))

    def final_pass_ranking(self, positions: list[int], scores: list[float]) -> list[RankedDoc]:
        """A listwise final pass re-ranked the merged leaders in one context: they come
        first, in its order; the rest follow in merged order, with their chunk scores."""
        leaders = sorted(zip(positions, scores, strict=True), key=lambda ps: (-ps[1], ps[0]))
        taken = set(positions)
        ranked = [RankedDoc(p, s) for p, s in leaders]
        ranked += [d for d in self.ranking(cut=False) if d.position not in taken]
        return ranked if self.top_n is None else ranked[: self.top_n]

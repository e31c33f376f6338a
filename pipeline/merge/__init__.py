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

import math
from dataclasses import dataclass
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

    def final_pass_columns(self, positions: list[int], scores: list[float]) -> FinalColumns:
        """A listwise final pass re-ranked the merged leaders in one context: they come
        first, in its order; the rest follow in merged order.

        `score` must fall as `rank` grows, yet the two stages score on scales that need
        not agree, so each document keeps both raw scores (`chunk_score`, `final_score`:
        None outside the final pass) and `score` is the one the rank was decided by: the
        final-pass score for the leaders, the chunk score for the rest, shifted down by
        one amount per query only when needed to put the best of them just below the
        last leader (order and gaps within the rest unchanged).

            >>> from pipeline.records import Query
            >>> q = Query("q1", "x", ["a", "b", "c", "d"], ["a", "b", "c", "d"], "row 1")
            >>> state = PendingQuery(q, n_chunks=2, top_n=None)
            >>> state.add([0, 1], [0.9, 0.8]); state.add([2, 3], [0.95, 0.7])
            >>> cols = state.final_pass_columns([2, 0], [0.3, 0.6])   # leaders: 2 and 0
            >>> cols.positions, cols.final_scores
            ([0, 2, 1, 3], [0.6, 0.3, None, None])
            >>> [round(s, 6) for s in cols.scores], cols.chunk_scores
            ([0.6, 0.3, 0.3, 0.2], [0.9, 0.95, 0.8, 0.7])
            >>> cols.scores[2] < cols.scores[1]
            True
        """
        chunk_score = dict(zip(self.positions, self.scores, strict=True))
        leaders = sorted(zip(positions, scores, strict=True), key=lambda ps: (-ps[1], ps[0]))
        taken = set(positions)
        rest = [d for d in self.ranking(cut=False) if d.position not in taken]
        rest_scores = [d.score for d in rest]
        if leaders and rest and rest_scores[0] >= leaders[-1][1]:
            last = leaders[-1][1]
            shift = rest_scores[0] - last
            below = math.nextafter(last, -math.inf)  # strictly below: no tie with a leader
            # Float subtraction is monotone, and so is min with a constant: order is kept.
            rest_scores = [min(s - shift, below) for s in rest_scores]
        cols = FinalColumns(
            positions=[p for p, _ in leaders] + [d.position for d in rest],
            scores=[s for _, s in leaders] + rest_scores,
            chunk_scores=[chunk_score[p] for p, _ in leaders] + [d.score for d in rest],
            final_scores=[s for _, s in leaders] + [None] * len(rest),
        )
        if self.top_n is not None:
            cols.cut(self.top_n)
        return cols


@dataclass(slots=True)
class FinalColumns:
    """A final-pass query's ranking as columns of results/, best first."""

    positions: list[int]
    scores: list[float]  # falls as rank grows (see PendingQuery.final_pass_columns)
    chunk_scores: list[float]  # each document's score from its chunk request
    final_scores: list[float | None]  # its final-pass score; None for the rest

    def cut(self, n: int) -> None:
        del self.positions[n:], self.scores[n:], self.chunk_scores[n:], self.final_scores[n:]

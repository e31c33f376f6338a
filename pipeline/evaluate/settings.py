"""What an evaluation computes: cutoffs, relevance threshold and test, checked once.

>>> settings = EvalSettings.parse("10, 1,5", relevance_threshold=2)
>>> settings.ks, settings.metrics[:5]
([1, 5, 10], ['ndcg', 'ndcg@1', 'ndcg@5', 'ndcg@10', 'map'])

Free of polars, so the command line builds its parser without importing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.evaluate.errors import EvalInputError

DEFAULT_K = [1, 3, 5, 10, 20, 100]
SIGNIFICANCE_TESTS = ("t-test", "randomization")
DEFAULT_TEST = "t-test"


def metric_names(ks: Sequence[int]) -> list[str]:
    """All metric names for cutoffs ``ks``, in report order.

    >>> metric_names([5, 10])
    ['ndcg', 'ndcg@5', 'ndcg@10', 'map', 'mrr', 'mrr@5', 'mrr@10', 'recall@5', 'recall@10', 'p@5', 'p@10']
    """
    names = ["ndcg", *(f"ndcg@{k}" for k in ks), "map", "mrr", *(f"mrr@{k}" for k in ks)]
    return names + [f"recall@{k}" for k in ks] + [f"p@{k}" for k in ks]


@dataclass(frozen=True, slots=True)
class EvalSettings:
    ks: list[int]
    relevance_threshold: int = 1
    significance: str = DEFAULT_TEST

    @property
    def metrics(self) -> list[str]:
        return metric_names(self.ks)

    @classmethod
    def parse(
        cls,
        k: str | Sequence[int] = DEFAULT_K,
        relevance_threshold: object = 1,
        significance: str = DEFAULT_TEST,
    ) -> EvalSettings:
        """Cutoffs from ``"1,3,5"`` (command line) or ``[1, 3, 5]`` (job file); bad values raise."""
        if isinstance(k, str):
            try:
                k = [int(part) for part in k.split(",") if part.strip()]
            except ValueError:
                raise EvalInputError(
                    f"k: {k!r} is not a comma-separated list of positive integers"
                ) from None
        for cutoff in k:
            if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 1:
                raise EvalInputError(f"k: cutoff {cutoff!r} is not a positive integer")
        if not k:
            raise EvalInputError("k: give at least one cutoff, e.g. 1,3,5,10")
        threshold = relevance_threshold
        # 0 would make judged non-relevant documents relevant: trec_eval allows it, nobody means it.
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise EvalInputError(f"relevance threshold must be an integer >= 1, got {threshold!r}")
        if significance not in SIGNIFICANCE_TESTS:
            raise EvalInputError(
                f"significance test {significance!r} unknown; choose {' or '.join(SIGNIFICANCE_TESTS)}"
            )
        return cls(sorted(set(k)), threshold, significance)

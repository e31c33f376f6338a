"""Per-query retrieval metrics with trec_eval's exact definitions.

>>> from pipeline.evaluate.metrics import query_metrics, trec_eval_order
>>> ranked = trec_eval_order([("d1", 1.0), ("d2", 1.0), ("d3", 0.5)])
>>> ranked  # score descending, ties broken by doc_id descending (trec_eval)
['d2', 'd1', 'd3']
>>> values = query_metrics(ranked, {"d1": 2, "d3": 0}, ks=[1, 2])
>>> values["p@2"], values["mrr"], values["recall@1"]
(0.5, 0.5, 0.0)

Conventions (checked against usnistgov/trec_eval and pytrec_eval to 1e-9):

* A run is ordered by score descending, ties broken by doc_id descending in
  byte order (trec_eval's ``comp_sim_docno``); the rank column of a run file
  is ignored, as trec_eval ignores it.
* A retrieved document without a judgment is non-relevant.
* Binary metrics (map, mrr, recall, p) count a document as relevant when its
  label is ``>= relevance_threshold`` (trec_eval ``-l``, default 1).
* nDCG uses linear gain (gain = label), discount ``1/log2(rank + 1)``, labels
  ``<= 0`` give no gain, and it ignores the relevance threshold, as trec_eval
  does. The ideal ranking is built from *all* judged documents of the query,
  retrieved or not. ``ndcg@K`` truncates both the run and the ideal at K.
* A query with judgments but no relevant document scores 0 everywhere
  (trec_eval divides by the number of relevant documents only when it is > 0).
* ``p@K`` divides by K even when fewer than K documents were retrieved.
* ``mrr`` is trec_eval's ``recip_rank`` (no cutoff); ``mrr@K`` is recip_rank
  of the run cut at K (0 when the first relevant document is below K).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

DEFAULT_K: list[int] = [1, 3, 5, 10, 20, 100]

# trec_eval's RELVALUE_NONPOOL: the label a retrieved but unjudged document gets.
UNJUDGED = -1


def metric_names(ks: Sequence[int]) -> list[str]:
    """All metric names for cutoffs ``ks``, in report order.

    >>> metric_names([5, 10])
    ['ndcg', 'ndcg@5', 'ndcg@10', 'map', 'mrr', 'mrr@5', 'mrr@10', 'recall@5', 'recall@10', 'p@5', 'p@10']
    """
    names = ["ndcg", *(f"ndcg@{k}" for k in ks), "map", "mrr"]
    names += [f"mrr@{k}" for k in ks]
    names += [f"recall@{k}" for k in ks]
    names += [f"p@{k}" for k in ks]
    return names


def normalize_ks(ks: Iterable[int]) -> list[int]:
    """Sorted, de-duplicated cutoffs; each must be a positive integer.

    >>> normalize_ks([10, 1, 10, 5])
    [1, 5, 10]
    """
    # Imported here so this module stays importable on its own for doctests.
    from pipeline.evaluate.errors import EvalInputError

    out: set[int] = set()
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise EvalInputError(f"k: cutoff {k!r} is not a positive integer")
        out.add(k)
    if not out:
        raise EvalInputError("k: give at least one cutoff, e.g. 1,3,5,10")
    return sorted(out)


def _trec_eval_key(item: tuple[str, float]) -> tuple[float, bytes]:
    # trec_eval compares doc ids with strcmp, i.e. by UTF-8 bytes.
    return (item[1], item[0].encode("utf-8"))


def trec_eval_order(scored: Iterable[tuple[str, float]]) -> list[str]:
    """Doc ids ordered as trec_eval ranks them: score desc, then doc_id desc.

    >>> trec_eval_order([("a", 2.0), ("c", 1.0), ("b", 1.0)])
    ['a', 'c', 'b']
    """
    return [doc for doc, _ in sorted(scored, key=_trec_eval_key, reverse=True)]


def _cumulative(values: Iterable[float]) -> list[float]:
    total = 0.0
    out = []
    for value in values:
        total += value
        out.append(total)
    return out


def _at(cumulative: Sequence[float], k: int) -> float:
    """Cumulative value over the first k positions (all of them if fewer)."""
    if not cumulative:
        return 0.0
    return cumulative[min(k, len(cumulative)) - 1]


def _dcg_terms(gains: Iterable[int]) -> list[float]:
    # Same expression as trec_eval (gain / log2(i + 2)), so sums match to the last bits.
    return [g / math.log2(i + 2) if g > 0 else 0.0 for i, g in enumerate(gains)]


def query_metrics(
    ranked_docs: Sequence[str],
    judgments: Mapping[str, int],
    ks: Sequence[int] = DEFAULT_K,
    relevance_threshold: int = 1,
) -> dict[str, float]:
    """All metrics of one query: ``ranked_docs`` best first, ``judgments`` doc -> label.

    >>> v = query_metrics(["a", "b", "c"], {"b": 1, "z": 1}, ks=[1, 3])
    >>> v["map"], v["recall@3"], v["p@3"], v["mrr@1"]
    (0.25, 0.5, 0.3333333333333333, 0.0)
    """
    labels = [judgments.get(doc, UNJUDGED) for doc in ranked_docs]
    num_relevant = sum(1 for label in judgments.values() if label >= relevance_threshold)

    dcg = _cumulative(_dcg_terms(labels))
    ideal_gains = sorted((label for label in judgments.values() if label > 0), reverse=True)
    ideal = _cumulative(_dcg_terms(ideal_gains))

    hits_so_far = 0
    cumulative_hits = []
    precision_sum = 0.0
    first_hit_rank = 0
    for position, label in enumerate(labels, start=1):
        if label >= relevance_threshold:
            hits_so_far += 1
            precision_sum += hits_so_far / position
            if not first_hit_rank:
                first_hit_rank = position
        cumulative_hits.append(hits_so_far)

    ideal_total = ideal[-1] if ideal else 0.0
    values: dict[str, float] = {
        "ndcg": (dcg[-1] if dcg else 0.0) / ideal_total if ideal_total > 0 else 0.0
    }
    for k in ks:
        ideal_k = _at(ideal, k)
        values[f"ndcg@{k}"] = _at(dcg, k) / ideal_k if ideal_k > 0 else 0.0
    values["map"] = precision_sum / num_relevant if num_relevant else 0.0
    values["mrr"] = 1.0 / first_hit_rank if first_hit_rank else 0.0
    for k in ks:
        values[f"mrr@{k}"] = 1.0 / first_hit_rank if 0 < first_hit_rank <= k else 0.0
    for k in ks:
        hits = _at(cumulative_hits, k)
        values[f"recall@{k}"] = hits / num_relevant if num_relevant else 0.0
    for k in ks:
        values[f"p@{k}"] = _at(cumulative_hits, k) / k
    return values

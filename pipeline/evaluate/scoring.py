"""Score systems per query, match queries to judgments, compare two systems.

>>> from pipeline.evaluate.judgments import Judgments
>>> from pipeline.evaluate.runs import RankedRun
>>> qrels = Judgments("qrels", by_query={"q1": {"d1": 1}, "q2": {"d9": 1}})
>>> run = RankedRun("bm25", "run", docs={"q1": ["d2", "d1"], "q3": ["d1"]})
>>> scores = score_run(run, qrels, ks=[1])
>>> scores.per_query["q1"]["mrr"], scores.coverage.run_without_judgments, scores.coverage.judged_not_in_run
(0.5, ['q3'], ['q2'])

Query matching follows trec_eval's default (no ``-c``): only queries that are
both ranked and judged are evaluated and averaged; ranked queries without
judgments and judged queries that were not ranked are ignored, and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.judgments import Judgments
from pipeline.evaluate.metrics import query_metrics
from pipeline.evaluate.runs import RankedRun
from pipeline.evaluate.significance import run_test

# Differences smaller than this are float noise, not a change in the ranking's quality.
UNCHANGED_TOLERANCE = 1e-12


@dataclass(slots=True)
class QueryCoverage:
    evaluated: list[str]
    run_without_judgments: list[str]
    judged_not_in_run: list[str]


@dataclass(slots=True)
class SystemScores:
    system: str
    per_query: dict[str, dict[str, float]]  # query_id -> metric -> value
    coverage: QueryCoverage

    def mean(self, metric: str) -> float:
        values = [self.per_query[q][metric] for q in self.coverage.evaluated]
        return math.fsum(values) / len(values) if values else 0.0


@dataclass(slots=True)
class MetricComparison:
    metric: str
    baseline_mean: float
    candidate_mean: float
    delta: float
    p_value: float | None
    statistic: float | None
    improved: int
    worse: int
    unchanged: int

    def as_dict(self) -> dict:
        return {
            "baseline": self.baseline_mean,
            "candidate": self.candidate_mean,
            "delta": self.delta,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "improved": self.improved,
            "worse": self.worse,
            "unchanged": self.unchanged,
        }


@dataclass(slots=True)
class Comparison:
    baseline: str
    candidate: str
    test: str
    queries: list[str]  # paired queries: evaluated for both systems
    metrics: list[MetricComparison] = field(default_factory=list)
    deltas: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> query -> delta

    def as_dict(self) -> dict:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "test": self.test,
            "queries": len(self.queries),
            "metrics": {m.metric: m.as_dict() for m in self.metrics},
        }


def score_run(
    run: RankedRun, judgments: Judgments, ks: Sequence[int], relevance_threshold: int = 1
) -> SystemScores:
    """Per-query metrics of ``run`` over the queries it shares with ``judgments``."""
    # A query with an empty set of judgments is not judged (trec_eval has no line for it).
    ranked = set(run.docs)
    judged = {query_id for query_id, docs in judgments.by_query.items() if docs}
    coverage = QueryCoverage(
        evaluated=sorted(ranked & judged),
        run_without_judgments=sorted(ranked - judged),
        judged_not_in_run=sorted(judged - ranked),
    )
    per_query = {
        query_id: query_metrics(
            run.docs[query_id], judgments.by_query[query_id], ks, relevance_threshold
        )
        for query_id in coverage.evaluated
    }
    return SystemScores(run.system, per_query, coverage)


def check_duplicates(judgments: Judgments, evaluated: set[str]) -> int:
    """Refuse duplicate judgments of evaluated queries (as trec_eval does); count the rest."""
    blocking = [d for d in judgments.duplicates if d.query_id in evaluated]
    if blocking:
        shown = "\n  ".join(judgments.describe_duplicate(d) for d in blocking[:5])
        more = f"\n  ... and {len(blocking) - 5} more" if len(blocking) > 5 else ""
        raise EvalInputError(
            f"{judgments.source}: {len(blocking)} duplicate judgments for evaluated queries "
            f"(trec_eval refuses these too; keep one line per query and doc):\n  {shown}{more}"
        )
    return len(judgments.duplicates)


def require_overlap(run: RankedRun, scores: SystemScores, judgments: Judgments) -> None:
    """No shared query usually means mismatched ids: say so with examples of each."""
    if scores.coverage.evaluated:
        return
    ranked = ", ".join(repr(q) for q in sorted(run.docs)[:3])
    judged = ", ".join(repr(q) for q in sorted(judgments.by_query)[:3])
    raise EvalInputError(
        f"no query of {run.source} ({run.system}) has judgments in {judgments.source}: "
        f"ranked query ids look like {ranked}, judged ones like {judged}"
    )


def compare(
    baseline: SystemScores, candidate: SystemScores, metrics: Sequence[str], test: str
) -> Comparison:
    """Means, difference, paired test and better/worse/same counts per metric."""
    queries = sorted(set(baseline.coverage.evaluated) & set(candidate.coverage.evaluated))
    comparison = Comparison(baseline.system, candidate.system, test, queries)
    for metric in metrics:
        before = [baseline.per_query[q][metric] for q in queries]
        after = [candidate.per_query[q][metric] for q in queries]
        deltas = [a - b for a, b in zip(after, before, strict=True)]
        result = run_test(test, before, after)
        n = len(queries) or 1
        comparison.deltas[metric] = dict(zip(queries, deltas, strict=True))
        comparison.metrics.append(
            MetricComparison(
                metric=metric,
                baseline_mean=math.fsum(before) / n,
                candidate_mean=math.fsum(after) / n,
                delta=math.fsum(deltas) / n,
                p_value=result.p_value,
                statistic=result.statistic,
                improved=sum(1 for d in deltas if d > UNCHANGED_TOLERANCE),
                worse=sum(1 for d in deltas if d < -UNCHANGED_TOLERANCE),
                unchanged=sum(1 for d in deltas if abs(d) <= UNCHANGED_TOLERANCE),
            )
        )
    return comparison

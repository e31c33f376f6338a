"""Per-query retrieval metrics with trec_eval's definitions, computed over whole columns.

>>> import polars as pl
>>> ranking = pl.DataFrame({"query_id": ["q1"] * 3, "doc_id": ["a", "b", "c"], "position": [1, 2, 3]})
>>> judgments = pl.DataFrame({"query_id": ["q1", "q1"], "doc_id": ["b", "z"], "relevance": [1, 1]})
>>> row = score_rankings({"bm25": ranking}, judgments, ks=[1, 3])["bm25"].row(0, named=True)
>>> row["map"], row["recall@3"], row["p@3"], row["mrr"], row["mrr@1"]
(0.25, 0.5, 0.3333333333333333, 0.5, 0.0)

The conventions are trec_eval's, listed in the README ("Conventions"); tests check them
against pytrec_eval to 1e-9 and against trec_eval's own regression output.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipeline.evaluate.settings import metric_names

RANKING_COLUMNS = ("query_id", "doc_id", "position")
JUDGMENT_COLUMNS = ("query_id", "doc_id", "relevance")


def _gains(name: str, ks: Sequence[int]) -> list[pl.Expr]:
    """Each row's DCG term, in full and within the first k positions (``name``, ``name@k``)."""
    label, position = pl.col("relevance"), pl.col("position")
    gain = pl.when(label > 0).then(label / (position + 1).log(2)).otherwise(0.0)
    return [gain.alias(name), *((gain * (position <= k)).alias(f"{name}@{k}") for k in ks)]


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(0.0)


def score_rankings(
    rankings: dict[str, pl.DataFrame],
    judgments: pl.DataFrame,
    ks: Sequence[int],
    relevance_threshold: int = 1,
) -> dict[str, pl.DataFrame]:
    """Per-query metrics of each system's ranking: what every evaluation goes through.

    A ranking is ``query_id, doc_id, position`` (1 = best; positions unique per query);
    ``judgments`` are ``query_id, doc_id, relevance``, one row per judged (query, doc). Each
    result has one row per query both ranked and judged, sorted by ``query_id``: the
    ``query_id`` column, then one Float64 column per ``metric_names(ks)``. What depends on
    the judgments alone (relevant counts, ideal DCG) is computed once for all systems.
    """
    relevant = pl.col("relevance") >= relevance_threshold
    position, query_id = pl.col("position"), pl.col("query_id")
    ranked = pl.concat([ranking.select(query_id.unique()) for ranking in rankings.values()])
    first, last = ranked.select(query_id.min().alias("first"), query_id.max().alias("last")).row(0)
    judged = (
        judgments.select(JUDGMENT_COLUMNS)
        .filter(query_id.is_between(pl.lit(first), pl.lit(last)))  # cheap, before the join
        .join(ranked.unique(), on="query_id", how="semi")
    )
    # The ideal ranking: every judged document of the query, retrieved or not, best first.
    ideal = (
        judged.filter(pl.col("relevance") > 0)
        .sort(["query_id", "relevance"], descending=[False, True])
        .with_columns(position=pl.int_range(1, pl.len() + 1).over("query_id"))
        .select("query_id", *_gains("ideal", ks))
        .group_by("query_id")
        .sum()
    )
    per_query = (
        judged.group_by("query_id")
        .agg(relevant_count=relevant.sum())
        .join(ideal, on="query_id", how="left")
    )
    first_hit, relevant_count = pl.col("first_hit"), pl.col("relevant_count")
    metrics = [
        _ratio(pl.col("dcg"), pl.col("ideal")),
        *(_ratio(pl.col(f"dcg@{k}"), pl.col(f"ideal@{k}")) for k in ks),
        _ratio(pl.col("precision"), relevant_count),
        _ratio(pl.lit(1.0), first_hit),
        *(pl.when(first_hit.is_between(1, k)).then(1.0 / first_hit).otherwise(0.0) for k in ks),
        *(_ratio(pl.col(f"hits@{k}").cast(pl.Float64), relevant_count) for k in ks),
        *(pl.col(f"hits@{k}") / k for k in ks),
    ]
    scores = {}
    for system, ranking in rankings.items():
        # Unjudged retrieved documents add nothing to any metric: only judged ones are joined.
        found = (
            ranking.select(RANKING_COLUMNS)
            .join(judged, on=["query_id", "doc_id"])
            .sort("query_id", "position")
            .select(
                "query_id",
                *_gains("dcg", ks),
                *((relevant & (position <= k)).cast(pl.Int64).alias(f"hits@{k}") for k in ks),
                # Average precision sums the precision at each relevant document's position.
                precision=pl.when(relevant).then(relevant.cum_sum().over("query_id") / position),
                first_hit=pl.when(relevant).then(position),
            )
            .group_by("query_id")
            .agg(pl.exclude("first_hit").sum(), pl.col("first_hit").min())
        )
        scores[system] = (
            per_query.join(ranking.select(query_id.unique()), on="query_id", how="semi")
            .join(found, on="query_id", how="left")
            .fill_null(0)
            .select(
                "query_id",
                *(
                    m.cast(pl.Float64).alias(n)
                    for m, n in zip(metrics, metric_names(ks), strict=True)
                ),
            )
            .sort("query_id")
        )
    return scores


def score_ranking(
    ranking: pl.DataFrame, judgments: pl.DataFrame, ks: Sequence[int], relevance_threshold: int = 1
) -> pl.DataFrame:
    """``score_rankings`` of one system."""
    return score_rankings({"": ranking}, judgments, ks, relevance_threshold)[""]

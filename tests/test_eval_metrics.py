"""Metric definitions: hand-computed values, pytrec_eval on generated runs, trec_eval's own fixture."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import polars as pl
import pytest

from pipeline.evaluate.compare import (
    paired_randomization_test,
    paired_t_test,
    regularized_incomplete_beta,
    student_t_two_sided_p,
)
from pipeline.evaluate.judgments import load_judgments
from pipeline.evaluate.metrics import score_ranking, score_rankings
from pipeline.evaluate.runs import rank_by_score, read_trec_run
from pipeline.evaluate.settings import DEFAULT_K, metric_names

TREC_EVAL_FIXTURE = Path(__file__).resolve().parents[2] / "shared/data/trec_eval_test"


def _judgment_frame(qrels: dict[str, dict[str, int]]) -> pl.DataFrame:
    rows = [(q, d, label) for q, labels in qrels.items() for d, label in labels.items()]
    return pl.DataFrame(rows, schema=["query_id", "doc_id", "relevance"], orient="row")


def query_metrics(ranked, judged, ks, relevance_threshold=1) -> dict[str, float]:
    """One query's metrics through the columnar code: ``ranked`` best first."""
    ranking = pl.DataFrame(
        {"query_id": "q", "doc_id": ranked, "position": list(range(1, len(ranked) + 1))}
    )
    scores = score_ranking(ranking, _judgment_frame({"q": judged}), ks, relevance_threshold)
    return scores.drop("query_id").row(0, named=True)


def trec_eval_order(scored: list[tuple[str, float]]) -> list[str]:
    frame = pl.DataFrame(scored, schema=["doc_id", "score"], orient="row")
    return rank_by_score(frame.with_columns(query_id=pl.lit("q")))["doc_id"].to_list()


# --- hand-computed ---------------------------------------------------------------------------

RANKED = ["a", "b", "c", "d", "e"]  # labels 3, 0, unjudged, 2, unjudged
JUDGED = {"a": 3, "b": 0, "d": 2, "x": 1}  # x is relevant but never retrieved


def test_hand_computed_values_threshold_1():
    v = query_metrics(RANKED, JUDGED, ks=[1, 3, 5, 10])
    dcg = 3 / math.log2(2) + 2 / math.log2(5)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # ideal uses x too
    assert v["ndcg"] == pytest.approx(dcg / ideal, abs=1e-15)
    assert v["ndcg@1"] == pytest.approx(1.0)
    assert v["ndcg@3"] == pytest.approx(3 / ideal, abs=1e-15)
    assert v["ndcg@5"] == pytest.approx(dcg / ideal, abs=1e-15)
    assert v["map"] == pytest.approx((1 / 1 + 2 / 4) / 3)  # 3 relevant: a, d, x
    assert v["mrr"] == 1.0 and v["mrr@1"] == 1.0
    assert v["p@3"] == pytest.approx(1 / 3)
    assert v["p@5"] == pytest.approx(2 / 5)
    assert v["p@10"] == pytest.approx(2 / 10)  # trec_eval divides by K, not by docs retrieved
    assert v["recall@3"] == pytest.approx(1 / 3)
    assert v["recall@10"] == pytest.approx(2 / 3)


def test_threshold_2_changes_binary_metrics_but_not_ndcg():
    v1 = query_metrics(RANKED, JUDGED, ks=[5])
    v2 = query_metrics(RANKED, JUDGED, ks=[5], relevance_threshold=2)
    assert v2["map"] == pytest.approx((1 + 2 / 4) / 2)  # relevant now: a (3), d (2)
    assert v2["recall@5"] == 1.0
    assert v2["ndcg"] == v1["ndcg"] and v2["ndcg@5"] == v1["ndcg@5"]


def test_mrr_cutoff_and_no_relevant_document():
    v = query_metrics(["n1", "n2", "r"], {"r": 1, "n1": 0}, ks=[1, 2, 3])
    assert (v["mrr"], v["mrr@1"], v["mrr@2"], v["mrr@3"]) == (
        pytest.approx(1 / 3),
        0.0,
        0.0,
        pytest.approx(1 / 3),
    )
    empty = query_metrics(["n1"], {"n1": 0}, ks=[1])
    assert all(value == 0.0 for value in empty.values())


def test_ties_follow_trec_eval_doc_id_descending_in_bytes():
    assert trec_eval_order([("b", 1.0), ("a", 1.0), ("c", 2.0)]) == ["c", "b", "a"]
    # Byte order, not numeric: "d10" < "d9"; uppercase sorts before lowercase.
    assert trec_eval_order([("d10", 0.5), ("d9", 0.5), ("D9", 0.5)]) == ["d9", "d10", "D9"]


def test_metric_names_follow_the_issue():
    assert metric_names([1, 10]) == [
        "ndcg",
        "ndcg@1",
        "ndcg@10",
        "map",
        "mrr",
        "mrr@1",
        "mrr@10",
        "recall@1",
        "recall@10",
        "p@1",
        "p@10",
    ]


# --- pytrec_eval on generated runs -----------------------------------------------------------


def _generated(seed: int = 20240607, queries: int = 300):
    """Runs with many score ties, graded labels 0-3, unjudged docs, negative labels,
    queries without relevant docs, queries only in the run and only in the qrels."""
    rng = random.Random(seed)
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    id_styles = [lambda n: f"d{n}", lambda n: f"DOC-{n:04d}", lambda n: f"x{n}é", lambda n: f"{n}"]
    for q in range(queries):
        qid = f"q{q:03d}"
        pool = rng.sample(range(400), rng.randint(1, 80))
        docs = [rng.choice(id_styles)(n) for n in pool]
        docs = list(dict.fromkeys(docs))
        coarse = rng.random() < 0.5  # coarse scores: lots of ties
        run[qid] = {
            d: (
                round(rng.uniform(-1, 1), 1)
                if coarse
                else rng.choice([0.0, 1.0, 2.5, rng.random()])
            )
            for d in docs
        }
        kind = rng.random()
        if kind < 0.08:
            continue  # ranked, never judged
        judged = rng.sample(docs, rng.randint(0, len(docs)))
        labels = {d: rng.choice([0, 0, 1, 1, 2, 3]) for d in judged}
        labels.update({f"unret{q}_{i}": rng.choice([0, 1, 2, 3]) for i in range(rng.randint(0, 6))})
        if kind < 0.16:
            labels = {d: 0 for d in labels} or {docs[0]: 0}  # judged, nothing relevant
        if rng.random() < 0.05 and labels:
            labels[next(iter(labels))] = -1  # trec_eval: judged "unjudged"
        qrels[qid] = labels
    for q in range(10):
        qrels[f"only_judged{q}"] = {"z": 1}
        del run[f"q{q * 7:03d}"]  # judged, not ranked
    return run, qrels


def _pytrec_measures(ks):
    cut = ",".join(map(str, ks))
    return {"ndcg", f"ndcg_cut.{cut}", "map", "recip_rank", f"P.{cut}", f"recall.{cut}"}


def _pytrec_name(metric: str) -> str:
    name, _, k = metric.partition("@")
    base = {"ndcg": "ndcg_cut", "p": "P", "recall": "recall", "map": "map"}
    if not k:
        return {"ndcg": "ndcg", "map": "map", "mrr": "recip_rank"}[name]
    return f"{base[name]}_{k}"


def _truncate(run: dict[str, dict[str, float]], k: int) -> dict[str, dict[str, float]]:
    # Independent of the code under test: sort by doc_id desc, then stably by score desc.
    out = {}
    for qid, scored in run.items():
        by_doc = sorted(scored.items(), key=lambda item: item[0].encode(), reverse=True)
        top = sorted(by_doc, key=lambda item: item[1], reverse=True)[:k]
        out[qid] = dict(top)
    return out


def _compare_to_pytrec(run, qrels, ks, threshold):
    pytrec_eval = pytest.importorskip(
        "pytrec_eval", reason="pytrec_eval missing: pip install pytrec-eval-terrier (test extra)"
    )
    scored = pl.DataFrame(
        [(q, d, score) for q, s in run.items() for d, score in s.items()],
        schema=["query_id", "doc_id", "score"],
        orient="row",
    )
    frame = score_ranking(rank_by_score(scored), _judgment_frame(qrels), ks, threshold)
    ours = {row["query_id"]: row for row in frame.iter_rows(named=True)}
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, _pytrec_measures(ks), relevance_level=threshold
    )
    theirs = evaluator.evaluate(run)
    assert set(ours) == set(theirs)
    compared = 0
    for metric in metric_names(ks):
        if metric.startswith("mrr@"):
            continue
        for qid in ours:
            assert ours[qid][metric] == pytest.approx(
                theirs[qid][_pytrec_name(metric)], abs=1e-9
            ), (qid, metric)
            compared += 1
    for k in ks:  # mrr@K = recip_rank of the run cut at K
        cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=threshold)
        cut_values = cut.evaluate(_truncate(run, k))
        for qid in ours:
            assert ours[qid][f"mrr@{k}"] == pytest.approx(
                cut_values[qid]["recip_rank"], abs=1e-9
            ), (qid, k)
            compared += 1
    return compared


@pytest.mark.parametrize("threshold", [1, 2])
def test_every_metric_matches_pytrec_eval_on_generated_runs(threshold):
    run, qrels = _generated()
    ties = sum(len(s) - len(set(s.values())) for s in run.values())
    assert ties > 1000  # the generator really exercises tie-breaking
    compared = _compare_to_pytrec(run, qrels, DEFAULT_K, threshold)
    assert compared > 5000


def test_several_systems_score_as_each_one_alone():
    run, qrels = _generated(queries=120)
    scored = pl.DataFrame(
        [(q, d, score) for q, s in run.items() for d, score in s.items()],
        schema=["query_id", "doc_id", "score"],
        orient="row",
    )
    # Another system: reversed scores, and only every other query ranked.
    other = scored.with_columns(score=-pl.col("score")).filter(
        pl.col("query_id").str.slice(-1).cast(pl.Int64, strict=False) % 2 == 0
    )
    rankings = {"a": rank_by_score(scored), "b": rank_by_score(other)}
    together = score_rankings(rankings, _judgment_frame(qrels), DEFAULT_K, 2)
    for name, ranking in rankings.items():
        assert together[name].equals(score_ranking(ranking, _judgment_frame(qrels), DEFAULT_K, 2))
    assert together["b"].height < together["a"].height


# --- trec_eval's own regression fixture ------------------------------------------------------


def _fixture_or_skip() -> Path:
    if not (TREC_EVAL_FIXTURE / "out.test.aq").is_file():
        pytest.skip(f"trec_eval fixture not present at {TREC_EVAL_FIXTURE}")
    return TREC_EVAL_FIXTURE


def _golden(path: Path) -> dict[str, dict[str, float]]:
    golden: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        measure, qid, value = line.split()
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            golden.setdefault(qid, {})[measure] = float(value)
    return golden


TREC_NAMES = {
    "ndcg": "ndcg",
    "map": "map",
    "mrr": "recip_rank",
    **{f"ndcg@{k}": f"ndcg_cut_{k}" for k in (5, 10, 20, 100)},
    **{f"p@{k}": f"P_{k}" for k in (5, 10, 20, 100)},
    **{f"recall@{k}": f"recall_{k}" for k in (5, 10, 20, 100)},
}


def test_matches_trec_eval_regression_output():
    fixture = _fixture_or_skip()
    golden = _golden(fixture / "out.test.aq")
    run = read_trec_run(fixture / "results.test")
    judgments = load_judgments(fixture / "qrels.test")
    scores = score_ranking(run.frame, judgments.frame, [5, 10, 20, 100])
    assert scores["query_id"].to_list() == ["301", "302", "303"] and run.system == "STANDARD"
    per_query = {row["query_id"]: row for row in scores.iter_rows(named=True)}
    for ours, theirs in TREC_NAMES.items():
        for qid, values in per_query.items():
            # trec_eval prints 4 decimals.
            assert values[ours] == pytest.approx(golden[qid][theirs], abs=5.1e-5), (qid, ours)
        assert scores[ours].mean() == pytest.approx(golden["all"][theirs], abs=5.1e-5), ours


def test_fixture_matches_pytrec_eval_to_1e9():
    fixture = _fixture_or_skip()
    run: dict[str, dict[str, float]] = {}
    for line in (fixture / "results.test").read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    qrels: dict[str, dict[str, int]] = {}
    for line in (fixture / "qrels.test").read_text().splitlines():
        qid, _, doc, rel = line.split()
        qrels.setdefault(qid, {})[doc] = int(rel)
    assert _compare_to_pytrec(run, qrels, [1, 5, 10, 100, 1000], 1) > 0


# --- significance ----------------------------------------------------------------------------


def test_student_t_closed_forms():
    assert student_t_two_sided_p(1.0, 1) == pytest.approx(0.5, abs=1e-12)  # Cauchy
    assert student_t_two_sided_p(2.0, 2) == pytest.approx(1 - 2 / math.sqrt(6), abs=1e-12)
    assert student_t_two_sided_p(0.0, 7) == pytest.approx(1.0)
    assert regularized_incomplete_beta(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-12)
    assert regularized_incomplete_beta(1.0, 1.0, 0.3) == 0.3  # I_x(1, 1) = x


def test_paired_t_test_hand_computed():
    result = paired_t_test([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])  # d = 1,2,3: mean 2, sd 1
    assert result.statistic == pytest.approx(2 / (1 / math.sqrt(3)))
    # df = 2: two-sided p = 1 - t / sqrt(2 + t^2)
    t = 2 * math.sqrt(3)
    assert result.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert paired_t_test([0.5, 0.2], [0.5, 0.2]).p_value == 1.0
    assert paired_t_test([0.5], [0.7]).p_value is None


def test_paired_t_test_agrees_with_scipy_when_available():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    before = [rng.random() for _ in range(60)]
    after = [b + rng.gauss(0.03, 0.15) for b in before]
    expected = stats.ttest_rel(after, before)
    ours = paired_t_test(before, after)
    assert ours.statistic == pytest.approx(float(expected.statistic), rel=1e-10)
    assert ours.p_value == pytest.approx(float(expected.pvalue), rel=1e-9)


def test_randomization_exact_and_seeded():
    # 3 queries: 8 sign flips, only all-plus and all-minus reach |sum| = 6.
    assert paired_randomization_test([0, 0, 0], [1, 2, 3]).p_value == 0.25
    assert paired_randomization_test([0.3] * 5, [0.3] * 5).p_value == 1.0
    rng = random.Random(5)
    before = [rng.random() for _ in range(80)]
    after = [b + 0.2 for b in before]
    first = paired_randomization_test(before, after)
    assert first.p_value == paired_randomization_test(before, after).p_value  # fixed seed
    assert first.p_value == pytest.approx(1 / 10_001)  # no flip beats all +0.2
    noisy = [b + rng.gauss(0.0, 0.2) for b in before]
    t_p = paired_t_test(before, noisy).p_value
    assert paired_randomization_test(before, noisy).p_value == pytest.approx(t_p, abs=0.03)

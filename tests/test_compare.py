"""`rerank-pipeline compare`: real jobs over generated candidates, scored against pytrec_eval,
priced from their own usage/, and refused when their inputs differ."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
from collections import deque
from pathlib import Path

import polars as pl
import pytest

from pipeline.cli import main
from pipeline.compare import compare_output_dirs
from pipeline.evaluate import EvalInputError
from pipeline.evaluate.evaluation import evaluate_output_dir
from pipeline.evaluate.settings import metric_names
from pipeline.run import EXIT_OK
from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import job_config, make_queries, run, write_grouped_parquet
from tests.test_eval_metrics import _pytrec_measures, _pytrec_name, _truncate

REPO = Path(__file__).resolve().parents[1]
KS = [1, 3, 5, 10, 20]
PRICE_A, PRICE_C = 0.02, 0.05  # USD per million tokens
QUERIES = make_queries(40, [5, 12, 30, 70], seed=11)  # lists of 70 are chunked by `local`


def write_qrels(path: Path, queries: list[dict], seed: int = 3) -> Path:
    """Graded labels 0-3 on part of each list, relevant docs never retrieved, queries without
    judgments or without a relevant doc, and judged queries nobody ranked."""
    rng = random.Random(seed)
    lines = []
    for q in queries:
        if rng.random() < 0.1:
            continue  # ranked, never judged
        judged = rng.sample(q["doc_ids"], max(1, len(q["doc_ids"]) // 3))
        nothing_relevant = rng.random() < 0.1
        for doc in judged:
            lines.append(f"{q['query_id']} 0 {doc} {0 if nothing_relevant else rng.randint(0, 3)}")
        lines.append(f"{q['query_id']} 0 {q['query_id']}-unretrieved {rng.randint(1, 2)}")
    lines += ["nobody 0 d1 1", "nobody 0 d2 0"]
    path.write_text("\n".join(lines) + "\n")
    return path


def local_job(input_path: Path, out: Path, **sets):
    return job_config(input_path, out, kind="local", **sets)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Three systems over one input: `local` BM25 priced per token, `local` with Lucene's
    parameters (free), and a Jina-format server reporting usage, one of whose requests was
    never answered (its query failed, then ran again with --retry-failed)."""
    root = tmp_path_factory.mktemp("compare")
    data = write_grouped_parquet(root / "in.parquet", QUERIES)
    qrels = write_qrels(root / "qrels.txt", QUERIES)
    a = local_job(
        data,
        root / "a",
        limits__final_pass="true",
        pricing__billing="tokens",
        pricing__usd_per_million_tokens=PRICE_A,
    )
    b = local_job(data, root / "b", provider__model='"bm25:k1=0.9,b=0.4"')
    assert asyncio.run(run(a)).exit_code == EXIT_OK
    assert asyncio.run(run(b)).exit_code == EXIT_OK
    with ThreadedServer(Knobs(script=deque(["500"]))) as server:
        c = job_config(
            data,
            root / "c",
            server.base_url,
            limits__max_attempts=1,
            pricing__usd_per_million_tokens=PRICE_C,
        )
        assert asyncio.run(run(c)).exit_code != EXIT_OK  # one query failed
        assert asyncio.run(run(c, retry_failed=True)).exit_code == EXIT_OK
    return {"root": root, "data": data, "qrels": qrels, "dirs": [root / n for n in "abc"]}


@pytest.fixture(scope="module")
def compared(world) -> dict:
    out = world["root"] / "cmp"
    summary = compare_output_dirs(world["dirs"], world["qrels"], out, k=KS, print_table=False)
    return {"summary": summary, "out": out, "per_query": pl.read_parquet(out / "per_query.parquet")}


def runs_of(outdir: Path) -> tuple[dict, dict]:
    """The directory's reranked and first-stage runs for pytrec_eval: a score of -rank keeps
    the delivered order whatever trec_eval's tie-breaking."""
    rows = pl.read_parquet(outdir / "results" / "*.parquet")
    reranked: dict[str, dict[str, float]] = {}
    first: dict[str, dict[str, float]] = {}
    for q, d, rank, input_rank in rows.select(
        "query_id", "doc_id", "rank", "input_rank"
    ).iter_rows():
        reranked.setdefault(q, {})[d] = -float(rank)
        first.setdefault(q, {})[d] = -float(input_rank)
    return reranked, first


def pytrec_values(run: dict, qrels_path: Path, ks: list[int]) -> dict[str, dict[str, float]]:
    """{metric: {query_id: value}} from pytrec_eval, in our metric names."""
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pip install pytrec-eval-terrier")
    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_path.read_text().splitlines():
        q, _, d, label = line.split()
        qrels.setdefault(q, {})[d] = int(label)
    theirs = pytrec_eval.RelevanceEvaluator(qrels, _pytrec_measures(ks)).evaluate(run)
    values = {
        m: {q: v[_pytrec_name(m)] for q, v in theirs.items()}
        for m in metric_names(ks)
        if not m.startswith("mrr@")
    }
    for k in ks:  # mrr@K: recip_rank of the run cut at K
        cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_truncate(run, k))
        values[f"mrr@{k}"] = {q: v["recip_rank"] for q, v in cut.items()}
    return values


def assert_matches_pytrec(per_query: pl.DataFrame, system: str, run: dict, qrels: Path, ks):
    expected = pytrec_values(run, qrels, ks)
    ours = per_query.filter(pl.col("system") == system)
    compared = 0
    for metric, by_query in expected.items():
        got = dict(ours.filter(pl.col("metric") == metric).select("query_id", "value").iter_rows())
        assert set(got) == set(by_query), (system, metric)
        for q, value in by_query.items():
            assert got[q] == pytest.approx(value, abs=1e-9), (system, metric, q)
            compared += 1
    return compared


def test_every_metric_of_every_system_matches_pytrec_eval(world, compared):
    per_query, summary = compared["per_query"], compared["summary"]
    assert summary["systems"] == ["first_stage", "a", "b", "c"]
    compared_values = 0
    for name, outdir in zip("abc", world["dirs"], strict=True):
        reranked, first = runs_of(outdir)
        compared_values += assert_matches_pytrec(per_query, name, reranked, world["qrels"], KS)
    compared_values += assert_matches_pytrec(per_query, "first_stage", first, world["qrels"], KS)
    assert compared_values > 4 * 30 * 20
    # The three rankers really differ, so the comparison means something.
    ndcg = {n: summary["mean"][n]["ndcg@10"] for n in summary["systems"]}
    assert len({round(v, 9) for v in ndcg.values()}) == 4
    # Long form as eval writes it: one row per (system, metric, evaluated query).
    evaluated = summary["queries"]["evaluated"]
    assert per_query.columns == ["query_id", "system", "metric", "value"]
    assert per_query.height == 4 * len(metric_names(KS)) * evaluated
    assert summary["queries"]["judged_not_ranked"] == 1  # "nobody"
    assert summary["queries"]["ranked_without_judgments"] > 0


def test_each_system_equals_eval_of_its_directory_alone(world, compared, tmp_path):
    per_query, summary = compared["per_query"], compared["summary"]
    for name, outdir in zip("abc", world["dirs"], strict=True):
        alone = evaluate_output_dir(
            outdir, world["qrels"], k=KS, out=tmp_path / name, print_table=False
        )
        theirs = pl.read_parquet(tmp_path / name / "per_query.parquet")
        for ours_name, eval_name in ((name, "reranked"), ("first_stage", "first_stage")):
            ours = per_query.filter(pl.col("system") == ours_name).drop("system")
            assert ours.equals(theirs.filter(pl.col("system") == eval_name).drop("system"))
            assert summary["mean"][ours_name] == alone["mean"][eval_name]  # exactly


def expected_cost(outdir: Path, usd_per_million: float) -> tuple[float, int, int]:
    """Σ of the answered usage rows (reported tokens, else the estimate) at the price."""
    usage = pl.read_parquet(outdir / "usage" / "*.parquet")
    answered = usage.filter(pl.col("http_status").is_between(200, 299))
    tokens = answered.select(pl.coalesce("total_tokens", "estimated_tokens").sum()).item()
    return tokens * usd_per_million / 1e6, answered.height, usage.height - answered.height


def test_costs_are_the_answered_usage_at_each_jobs_price(world, compared):
    costs, mean = compared["summary"]["costs"], compared["summary"]["mean"]
    a, b, c = world["dirs"]
    usd_a, requests_a, _ = expected_cost(a, PRICE_A)
    usd_c, requests_c, unanswered_c = expected_cost(c, PRICE_C)
    assert costs["a"]["usd"] == pytest.approx(usd_a, abs=1e-9) and usd_a > 0
    assert costs["a"]["requests"] == requests_a and costs["a"]["basis"] == "tokens"
    assert costs["b"]["usd"] == 0.0 and costs["b"]["basis"] == "none"  # self-hosted, no price
    assert costs["c"]["usd"] == pytest.approx(usd_c, abs=1e-9)
    assert (costs["c"]["requests"], costs["c"]["requests_unanswered"]) == (requests_c, 1)
    assert unanswered_c == 1
    # The unanswered request is not billed: summing every usage row would cost more.
    usage_c = pl.read_parquet(c / "usage" / "*.parquet")
    every_row = usage_c.select(pl.coalesce("total_tokens", "estimated_tokens").sum()).item()
    assert every_row * PRICE_C / 1e6 > usd_c
    for name in "abc":
        cost = costs[name]
        per_1000 = cost["usd"] * 1000 / len(QUERIES)
        assert cost["queries"] == len(QUERIES)
        assert cost["usd_per_1000_queries"] == pytest.approx(per_1000, abs=1e-9)
        gain = mean[name]["ndcg@10"] - mean["first_stage"]["ndcg@10"]
        per_gain = cost["usd_per_1000_queries_per_0.01_gain"]
        assert per_gain == (pytest.approx(per_1000 * 0.01 / gain) if gain > 0 else None)
        assert cost["wall_seconds"] is not None and cost["tokens"] > 0


def test_tests_deltas_and_disagreements(compared):
    summary = compared["summary"]
    mean, primary = summary["mean"], summary["settings"]["primary_metric"]
    assert primary == "ndcg@10"
    order = sorted("abc", key=lambda n: -mean[n][primary])
    two = summary["tests"]["best_two"]
    assert (two["candidate"], two["baseline"]) == (order[0], order[1])
    assert two["metrics"][primary]["delta"] == pytest.approx(
        mean[order[0]][primary] - mean[order[1]][primary]
    )
    assert [t["candidate"] for t in summary["tests"]["vs_first_stage"]] == list("abc")
    for t in summary["tests"]["vs_first_stage"]:
        assert t["queries"] == summary["queries"]["evaluated"]
        assert 0.0 <= t["metrics"][primary]["p_value"] <= 1.0
    assert summary["best"][primary] == order[0]
    assert summary["delta"]["vs_best"][order[0]][primary] == 0.0
    assert summary["delta"]["vs_best"]["first_stage"][primary] < 0
    spreads = [q["spread"] for q in summary["disagreement"]["queries"]]
    assert spreads == sorted(spreads, reverse=True) and spreads[0] > 0
    top = summary["disagreement"]["queries"][0]
    values = [top["values"][n] for n in "abc"]
    assert top["spread"] == pytest.approx(max(values) - min(values))


def test_the_cli_prints_one_table_and_writes_the_chart(world, tmp_path, capsys):
    dirs = [str(d) for d in world["dirs"]]
    args = ["compare", *dirs, "--qrels", str(world["qrels"]), "--out", str(tmp_path / "o")]
    assert main([*args, "--names", "bm25,lucene,hosted", "--k", "5,10"]) == 0
    printed = capsys.readouterr().out
    for expected in (
        "metric      first_stage",
        "bm25",
        "lucene",
        "hosted",
        "$/1k queries",
        "queries where the systems disagree most",
        "depth: full lists: no job cut its output",
    ):
        assert expected in printed
    assert re.search(r"^hosted\s+0\.\d{4}\s+[+-]0\.\d{4}", printed, re.MULTILINE)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["systems"] == ["first_stage", "bm25", "lucene", "hosted"]
    assert set(summary) >= {"mean", "costs", "tests", "depth", "disagreement"}
    pytest.importorskip("matplotlib")
    assert summary["files"]["chart"] == "quality_vs_cost.png"
    assert (tmp_path / "o" / "quality_vs_cost.png").stat().st_size > 10_000


def _other_input(world, tmp_path: Path, change) -> Path:
    queries = [dict(q, doc_ids=list(q["doc_ids"]), documents=list(q["documents"])) for q in QUERIES]
    queries = change(queries)
    data = write_grouped_parquet(tmp_path / "other.parquet", queries)
    cfg = local_job(data, tmp_path / "other")
    assert asyncio.run(run(cfg)).exit_code == EXIT_OK
    return tmp_path / "other"


def _drop_doc(queries):
    queries[2]["doc_ids"].pop(2)
    queries[2]["documents"].pop(2)
    return queries


def _swap_docs(queries):
    for key in ("doc_ids", "documents"):
        queries[5][key][0], queries[5][key][1] = queries[5][key][1], queries[5][key][0]
    return queries


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            _drop_doc,
            r"other ranked other candidates than .*/a: query 'q0002' has 30 candidates in "
            r".*/a, 29 in .*/other; only in .*/a: 'q0002-d0002' \(their jobs read different "
            r"inputs: .*in\.parquet \(grouped\); .*other\.parquet \(grouped\)\)",
        ),
        (
            _swap_docs,
            r"query 'q0005' has the same 12 candidates in another input order \(position 1: "
            r"'q0005-d0000' in .*/a, 'q0005-d0001' in .*/other\)",
        ),
        (
            lambda queries: queries[:7] + queries[8:],
            r"other and .*/a ranked different queries: 1 query of .*/a not in .*/other "
            r"\('q0007'\).*--retry-failed",
        ),
    ],
    ids=["a-doc-missing", "another-order", "a-query-missing"],
)
def test_a_mismatched_input_is_refused_naming_the_difference(
    world, tmp_path, capsys, change, expected
):
    other = _other_input(world, tmp_path, change)
    capsys.readouterr()  # the job's own warnings
    args = ["compare", str(world["dirs"][0]), str(other), "--qrels", str(world["qrels"])]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert re.search(expected, err), err
    assert not (tmp_path / "o").exists()  # refused before writing anything


def test_bad_arguments_exit_2_with_one_line(world, tmp_path, capsys):
    a, b, _ = (str(d) for d in world["dirs"])
    qrels = str(world["qrels"])
    cases = [
        ([a], "give at least two output directories"),
        ([a, b, "--names", "x"], "--names: 1 name for 2 directories"),
        ([a, b, "--names", "x,first_stage"], "'first_stage' cannot name a system"),
        ([a, b, "--names", "x,x"], "a name is given twice"),
        ([a, str(tmp_path / "nope")], "output directory not found"),
        ([a, a + "/"], "the same output directory is given twice"),
    ]
    for extra, message in cases:
        assert main(["compare", *extra, "--qrels", qrels, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


async def test_outputs_cut_to_top_n_are_all_evaluated_at_the_least_depth(world, tmp_path):
    """A cut output beside full ones: every ranking, the first stage too, is scored at the
    least top_n, and its values are pytrec_eval's of the runs cut there."""
    cut = local_job(world["data"], tmp_path / "cut", output__top_n=8)
    deeper = local_job(world["data"], tmp_path / "deeper", output__top_n=20)
    assert (await run(cut)).exit_code == EXIT_OK and (await run(deeper)).exit_code == EXIT_OK
    dirs = [world["dirs"][1], tmp_path / "cut", tmp_path / "deeper"]
    summary = compare_output_dirs(dirs, world["qrels"], tmp_path / "o", k=KS, print_table=False)
    depth = summary["depth"]
    assert depth["evaluated_at"] == 8
    assert depth["top_n"] == {"b": None, "cut": 8, "deeper": 20}
    assert "evaluated at its top 8" in depth["note"] and "b all" in depth["note"]
    assert depth["queries_cut"]["cut"] == 0 and depth["queries_cut"]["b"] > 0
    assert depth["queries_cut"]["first_stage"] == depth["queries_cut"]["b"]
    per_query = pl.read_parquet(tmp_path / "o" / "per_query.parquet")
    b_run, first = runs_of(world["dirs"][1])
    for name, run_ in (("b", b_run), ("first_stage", first), ("cut", runs_of(tmp_path / "cut")[0])):
        assert_matches_pytrec(per_query, name, _truncate(run_, 8), world["qrels"], KS)
    # The same depth for all: b and "cut" rank with the same scorer, so they agree exactly.
    assert summary["mean"]["b"] != summary["mean"]["first_stage"]
    assert summary["mean"]["cut"] == summary["mean"]["deeper"]
    table = compare_table(dirs, world["qrels"], tmp_path / "o2")
    assert "depth: every ranking, the first stage too, evaluated at its top 8" in table


def compare_table(dirs, qrels, out) -> str:
    import io

    stream = io.StringIO()
    compare_output_dirs(dirs, qrels, out, k=KS, stream=stream)
    return stream.getvalue()


async def test_a_cut_output_whose_input_is_gone_is_vouched_for_by_its_job(world, tmp_path):
    data = tmp_path / "in.parquet"
    shutil.copy(world["data"], data)
    cut = local_job(data, tmp_path / "cut", output__top_n=8)
    other = local_job(data, tmp_path / "other", output__top_n=8, provider__model='"bm25:b=0.2"')
    assert (await run(cut)).exit_code == EXIT_OK and (await run(other)).exit_code == EXIT_OK
    data.unlink()
    dirs = [tmp_path / "cut", tmp_path / "other"]
    summary = compare_output_dirs(dirs, world["qrels"], tmp_path / "o", k=KS, print_table=False)
    assert summary["inputs"]["first_stage"]["source"] == "results"
    warnings = " ".join(summary["warnings"])
    assert "first_stage is not the full first-stage ranking" in warnings
    assert "other: candidate lists not checked" in warnings and "same input files" in warnings
    assert summary["inputs"]["candidates"].endswith("lists not checked for other (warnings)")
    # Beside an uncut directory of another input file, nothing vouches for it: refused.
    with pytest.raises(EvalInputError, match="cannot check that .*cut ranked the same candidates"):
        compare_output_dirs(
            [world["dirs"][1], tmp_path / "cut"], world["qrels"], tmp_path / "o3", k=KS
        )


def test_the_readme_shows_the_sample_comparison(tmp_path, monkeypatch):
    """The README's `compare` table is what the two sample jobs give (wall times aside)."""
    monkeypatch.chdir(REPO)
    for job, name in (("sample.toml", "sample"), ("sample-lucene.toml", "sample-lucene")):
        assert main(["run", f"jobs/{job}", "-q", "--set", f"output.dir={tmp_path}/{name}"]) == 0
    dirs = [tmp_path / "sample", tmp_path / "sample-lucene"]
    table = compare_table(dirs, REPO / "sample_data/qrels.txt", tmp_path / "c")
    readme = (REPO / "README.md").read_text()
    command = "rerank-pipeline compare out/sample out/sample-lucene --qrels sample_data/qrels.txt"
    shown = readme.split(command + " --k 1,3,5,10,20\n```\n\n```text\n")[1].split("```")[0]

    def comparable(text: str) -> list[str]:
        wall = re.compile(r"\s\d+\.\ds(\s|$)")  # the wall column: another run, another time
        lines = [ln for ln in text.splitlines() if not ln.startswith("wrote ")]
        return [" ".join(wall.sub(" ", line).split()) for line in lines]

    assert comparable(table) == comparable(shown)
    assert len(comparable(shown)) > 30


def test_the_scale_benchmark_writes_what_compare_reads(tmp_path):
    # benchmarks/compare_scale.py generates its directories itself; they must stay ones
    # compare reads as a run's (committed parts, manifest, resolved job with a price).
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "compare_scale", REPO / "benchmarks/compare_scale.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    dirs = bench.write_output_dirs(tmp_path, systems=3, queries=50, rows_per_part=120)
    bench._eval_scale().write_qrels(tmp_path / "qrels.txt", queries=50, chunk=20)
    summary = compare_output_dirs(dirs, tmp_path / "qrels.txt", tmp_path / "c", print_table=False)
    assert summary["queries"]["evaluated"] == 50 and summary["warnings"] == []
    assert len({summary["mean"][n]["ndcg@10"] for n in summary["systems"]}) == 4
    for s, outdir in enumerate(dirs):
        usage = pl.read_parquet(outdir / "usage" / "*.parquet")
        expected = usage["total_tokens"].sum() * bench.PRICES[s] / 1e6
        assert summary["costs"][f"system{s}"]["usd"] == pytest.approx(expected, abs=1e-9)


def test_a_directory_whose_cost_cannot_be_accounted_is_compared_at_an_unknown_cost(
    world, compared, tmp_path
):
    # A directory without usage/ parts or summary.json (copied by hand, say): the rankings
    # still compare; its cost is unknown, never $0, and the table and warnings say why.
    copy = tmp_path / "b-copy"
    shutil.copytree(world["dirs"][1], copy)
    (copy / "summary.json").unlink()
    manifest = copy / "_manifest.jsonl"
    lines = [json.loads(line) | {"usage": None} for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dirs = [world["dirs"][0], copy]
    table = compare_table(dirs, world["qrels"], tmp_path / "o")
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    cost = summary["costs"]["b-copy"]
    assert cost["usd"] is None and "no usage/ parts" in cost["from"]
    assert cost["usd_per_1000_queries"] is None
    assert any(w.startswith("b-copy: cost unknown") for w in summary["warnings"])
    assert re.search(r"^b-copy .* unknown +\? +\? +\? +unknown +unknown$", table, re.M), table
    assert summary["mean"]["b-copy"] == compared["summary"]["mean"]["b"]


INTERRUPTED = """
import os, signal, sys, time
import pipeline.compare.comparison as comparison
from pipeline.cli import main

def ctrl_c(*args, **kwargs):  # as a terminal's Ctrl-C would, while compare works
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)

comparison.compare_output_dirs = ctrl_c
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED, "compare", "a", "b", "--qrels", "q.txt", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 130
    assert proc.stderr.startswith("interrupted: compare stopped") and proc.stderr.count("\n") == 1


def test_quiet_prints_nothing(world, tmp_path, capsys):
    dirs = [str(d) for d in world["dirs"][:2]]
    out = tmp_path / "o"
    assert main(["compare", *dirs, "--qrels", str(world["qrels"]), "--out", str(out), "-q"]) == 0
    assert capsys.readouterr().out == "" and (out / "summary.json").is_file()

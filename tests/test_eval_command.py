"""End to end: pipeline output directory and run files in, eval/ files and table out; bad input."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.evaluate.output_dir as output_dir
from pipeline.cli import main
from pipeline.config import JobConfig, to_toml
from pipeline.evaluate import EvalInputError
from pipeline.evaluate.evaluation import evaluate_output_dir, evaluate_run_files
from pipeline.evaluate.judgments import load_judgments
from pipeline.evaluate.runs import Ranking, read_trec_run
from pipeline.write import committed_parts

REPO = Path(__file__).resolve().parents[1]

# q1: reranking moves the two judged docs to the top; q2: it swaps a relevant doc down;
# q3: ranked but never judged. q4 is judged but absent from the results.
ROWS = [
    # query_id, doc_id, rank, score, input_rank
    ("q1", "d1", 3, 0.5, 1),
    ("q1", "d2", 4, 0.1, 2),
    ("q1", "d3", 1, 0.9, 3),
    ("q1", "d4", 2, 0.8, 4),
    ("q2", "a", 2, 0.2, 1),
    ("q2", "b", 1, 0.7, 2),
    ("q3", "z", 1, 0.3, 1),
]
QRELS = "q1 0 d3 2\nq1 0 d4 1\nq2 0 a 1\nq2 0 b 0\nq4 0 y 1\n"


def commit_part(outdir: Path, table: pa.Table, name: str) -> None:
    """Write a results part and name it in the manifest, as the writer commits one."""
    (outdir / "results").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, outdir / "results" / name)
    with open(outdir / "_manifest.jsonl", "ab") as manifest:
        manifest.write(orjson.dumps({"seq": 0, "run": "test", "results": name}) + b"\n")


def docs_by_query(run: Ranking) -> dict[str, list[str]]:
    frame = run.frame.sort("query_id", "position").group_by("query_id", maintain_order=True)
    return dict(frame.agg("doc_id").iter_rows())


def write_results(outdir: Path, rows=ROWS, parts: int = 2) -> Path:
    for i in range(parts):
        chunk = rows[i::parts]
        table = pa.table(
            {
                "query_id": [r[0] for r in chunk],
                "doc_id": [r[1] for r in chunk],
                "rank": pa.array([r[2] for r in chunk], pa.int32()),
                "score": pa.array([r[3] for r in chunk], pa.float64()),
                "input_rank": pa.array([r[4] for r in chunk], pa.int32()),
                "text": [f"text of {r[1]}" for r in chunk],
            }
        )
        commit_part(outdir, table, f"part-{i:05d}.parquet")
    # Neither a temp file nor a part the manifest does not name is read.
    (outdir / "results" / ".part-00009.parquet.tmp").write_bytes(b"half written")
    pq.write_table(table, outdir / "results" / "part-00010.parquet")
    return outdir


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    write_results(tmp_path / "out")
    (tmp_path / "qrels.txt").write_text(QRELS)
    return tmp_path / "out"


def test_output_dir_before_after(outdir: Path, capsys):
    summary = evaluate_output_dir(outdir, outdir.parent / "qrels.txt", k=[1, 3, 10])
    eval_dir = outdir / "eval"
    # Hand-computed: first stage q1 = [unjudged, unjudged, 2, 1], q2 = [1, 0];
    # reranked q1 = [2, 1, ...] (perfect), q2 = [0, 1].
    fs, rr = summary["mean"]["first_stage"], summary["mean"]["reranked"]
    assert fs["mrr"] == pytest.approx((1 / 3 + 1) / 2)
    assert rr["mrr"] == pytest.approx((1 + 1 / 2) / 2)
    q1_first_ndcg = (2 / math.log2(4) + 1 / math.log2(5)) / (2 + 1 / math.log2(3))
    q2_reranked_ndcg = (1 / math.log2(3)) / 1
    assert fs["ndcg"] == pytest.approx((q1_first_ndcg + 1.0) / 2)
    assert rr["ndcg"] == pytest.approx((1.0 + q2_reranked_ndcg) / 2)
    assert fs["p@1"] == 0.5 and rr["p@1"] == 0.5

    cmp = summary["comparisons"][0]
    assert (cmp["baseline"], cmp["candidate"], cmp["queries"], cmp["test"]) == (
        "first_stage",
        "reranked",
        2,
        "t-test",
    )
    mrr = cmp["metrics"]["mrr"]
    assert (mrr["improved"], mrr["worse"], mrr["unchanged"]) == (1, 1, 0)
    assert mrr["delta"] == pytest.approx(rr["mrr"] - fs["mrr"])
    assert cmp["metrics"]["p@10"]["unchanged"] == 2
    assert summary["queries"]["reranked"]["ranked_without_judgments"] == 1
    assert summary["queries"]["reranked"]["judged_not_ranked"] == 1

    per_query = pl.read_parquet(eval_dir / "per_query.parquet")
    assert per_query.columns == ["query_id", "system", "metric", "value"]
    assert per_query.schema["value"] == pl.Float64
    assert per_query.height == 2 * 2 * len(summary["settings"]["metrics"])
    q1_mrr = per_query.filter(
        (pl.col("query_id") == "q1")
        & (pl.col("system") == "first_stage")
        & (pl.col("metric") == "mrr")
    )["value"].to_list()
    assert q1_mrr == [pytest.approx(1 / 3)]
    assert json.loads((eval_dir / "summary.json").read_text()) == summary

    table = capsys.readouterr().out
    assert "first_stage" in table and "reranked" in table and "p (t-test)" in table
    assert "1/1/0" in table  # mrr: better/worse/same
    assert "1 ranked queries have no judgments" in table


def test_written_run_files_reproduce_the_evaluation(outdir: Path):
    summary = evaluate_output_dir(
        outdir, outdir.parent / "qrels.txt", k=[1, 3, 10], print_table=False
    )
    eval_dir = outdir / "eval"
    first = (eval_dir / "first_stage.trec").read_text().splitlines()
    assert first[:4] == [
        "q1 Q0 d1 1 -1.0 first_stage",
        "q1 Q0 d2 2 -2.0 first_stage",
        "q1 Q0 d3 3 -3.0 first_stage",
        "q1 Q0 d4 4 -4.0 first_stage",
    ]
    assert (eval_dir / "reranked.trec").read_text().splitlines()[0] == "q1 Q0 d3 1 0.9 reranked"
    again = evaluate_run_files(
        [eval_dir / "first_stage.trec", eval_dir / "reranked.trec"],
        outdir.parent / "qrels.txt",
        outdir.parent / "again",
        k=[1, 3, 10],
        print_table=False,
    )
    assert again["mean"] == summary["mean"]
    assert again["comparisons"][0]["metrics"] == summary["comparisons"][0]["metrics"]


def test_chart_written_or_skipped_with_one_line(outdir: Path, monkeypatch, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib (plot extra) not installed")
    summary = evaluate_output_dir(outdir, outdir.parent / "qrels.txt", print_table=False)
    png = outdir / "eval" / summary["files"]["chart"]
    assert png.name == "delta_ndcg_at_10.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    summary = evaluate_output_dir(outdir, outdir.parent / "qrels.txt", out=outdir / "e2")
    assert "chart" not in summary["files"]
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not list((outdir / "e2").glob("*.png"))


def test_query_ranges_give_the_same_evaluation_as_one_pass(outdir: Path, monkeypatch):
    qrels = outdir.parent / "qrels.txt"
    whole = evaluate_output_dir(outdir, qrels, k=[1, 3], print_table=False)
    monkeypatch.setattr(output_dir, "CHUNK_ROWS", 2)  # 3 queries, 7 rows: one query per range
    ranges = evaluate_output_dir(outdir, qrels, k=[1, 3], out=outdir / "ranges", print_table=False)
    assert ranges["mean"] == whole["mean"] and ranges["comparisons"] == whole["comparisons"]
    for name in ("per_query.parquet", "first_stage.trec", "reranked.trec"):
        assert (outdir / "ranges" / name).read_bytes() == (outdir / "eval" / name).read_bytes()


def test_chart_of_many_queries_is_a_curve_not_a_bar_each(tmp_path: Path, monkeypatch):
    matplotlib_axes = pytest.importorskip("matplotlib.axes", reason="matplotlib not installed")
    rows = [
        (f"q{q:03d}", f"d{d}", rank, 1.0 / rank, d + 1)
        for q in range(400)
        for rank, d in enumerate([(q + i) % 4 for i in range(4)], start=1)
    ]
    out = write_results(tmp_path / "out", rows, parts=3)
    (tmp_path / "q.txt").write_text("".join(f"q{q:03d} 0 d{q % 3} 1\n" for q in range(400)))

    def no_bars(*args, **kwargs):
        raise AssertionError("one bar per query drawn for 400 queries")

    monkeypatch.setattr(matplotlib_axes.Axes, "bar", no_bars)
    summary = evaluate_output_dir(out, tmp_path / "q.txt", print_table=False)
    assert summary["comparisons"][0]["queries"] == 400
    png = out / "eval" / summary["files"]["chart"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_byte_order_mark_is_not_part_of_the_first_id(outdir: Path, tmp_path: Path):
    plain = evaluate_output_dir(outdir, outdir.parent / "qrels.txt", print_table=False)
    for name, text in (
        ("bom.txt", QRELS),
        ("bom.jsonl", '{"query_id": "q1", "doc_id": "d3", "relevance": 2}\n'),
    ):
        (tmp_path / name).write_text("\ufeff" + text, encoding="utf-8")
        assert load_judgments(tmp_path / name).frame["query_id"][0] == "q1"
    summary = evaluate_output_dir(
        outdir, tmp_path / "bom.txt", out=tmp_path / "e", print_table=False
    )
    assert summary["mean"] == plain["mean"]
    (tmp_path / "bom.run").write_text("\ufeffq1 Q0 d3 1 0.9 bm25\n", encoding="utf-8")
    assert read_trec_run(tmp_path / "bom.run").frame["query_id"].to_list() == ["q1"]


def test_top_n_cut_and_rising_scores_are_warned_ties_are_not(tmp_path: Path):
    rows = [
        ("q1", "d1", 2, 0.5, 1),
        ("q1", "d2", 1, 0.5, 7),  # tie on 0.5; pipeline put d2 first, trec_eval would too (d2 > d1)
        ("q2", "a", 1, 0.4, 3),
        ("q2", "b", 2, 0.4, 1),  # tie; pipeline put a first, trec_eval would put b first
        ("q3", "x", 1, 0.2, 1),
        ("q3", "y", 2, 0.9, 2),  # a lower-ranked document with a higher score
    ]
    out = write_results(tmp_path / "out", rows, parts=1)
    cfg = JobConfig()
    cfg.provider.kind = "local"
    cfg.input.path, cfg.output.dir, cfg.output.top_n = str(tmp_path / "gone.jsonl"), str(out), 2
    (out / "job.resolved.toml").write_text(to_toml(cfg))
    (tmp_path / "q.txt").write_text("q1 0 d1 1\nq2 0 a 1\n")
    summary = evaluate_output_dir(out, tmp_path / "q.txt", k=[1], print_table=False)
    assert summary["inputs"]["top_n"] == 2
    warnings = " ".join(summary["warnings"])
    assert "top_n=2" in warnings and "2 queries miss part of their first-stage list" in warnings
    # A tie broken by input order is the pipeline's rule: no warning; a rising score is one.
    assert "q2" not in warnings and "'rank' order differs" not in warnings
    assert "1 query: a lower-ranked document has a higher score" in warnings
    # Evaluated in the delivered 'rank' order: q2 reranked puts the relevant 'a' first.
    assert summary["mean"]["reranked"]["p@1"] == 0.5
    reranked = read_trec_run(out / "eval" / "reranked.trec")
    assert docs_by_query(reranked) == {"q1": ["d2", "d1"], "q2": ["a", "b"], "q3": ["x", "y"]}
    # Only q2 and q3, whose order trec_eval would not reproduce, carry score = -rank.
    lines = (out / "eval" / "reranked.trec").read_text().splitlines()
    assert lines == [
        "q1 Q0 d2 1 0.5 reranked",
        "q1 Q0 d1 2 0.5 reranked",
        "q2 Q0 a 1 -1.0 reranked",
        "q2 Q0 b 2 -2.0 reranked",
        "q3 Q0 x 1 -1.0 reranked",
        "q3 Q0 y 2 -2.0 reranked",
    ]
    assert "first_stage not rebuilt from the job's input: input.path" in warnings


# --- bad input: clear messages, exit status 2 -----------------------------------------------


def _error(call) -> str:
    with pytest.raises(EvalInputError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("q.txt", "q1 0 d1 1\nq1 0 d2\n", "q.txt line 2: expected 4 fields"),
        ("q.txt", "# comment\nq1 0 d1 high\n", "q.txt line 2: field 'relevance' is 'high'"),
        (
            "q.jsonl",
            '{"query_id": "q1", "doc_id": "d1", "relevance": 1}\n{"query_id": "q1", "doc_id": "d2"}\n',
            "q.jsonl line 2: missing field 'relevance'",
        ),
        (
            "q.jsonl",
            '{"query_id": "q1", "doc_id": "d1", "relevance": 0.5}\n',
            "line 1: field 'relevance' is '0.5', not an integer label",
        ),
        ("q.jsonl", "not json\n", "q.jsonl line 1: not valid JSON Lines"),
    ],
)
def test_malformed_judgments(tmp_path: Path, name: str, content: str, expected: str):
    (tmp_path / name).write_text(content)
    assert expected in _error(lambda: load_judgments(tmp_path / name))


def test_parquet_judgments(tmp_path: Path):
    path = tmp_path / "q.parquet"
    pq.write_table(
        pa.table({"query_id": ["q1", "q1"], "doc_id": ["d1", "d2"], "relevance": [2, None]}), path
    )
    assert "q.parquet row 2: field 'relevance' is None" in _error(lambda: load_judgments(path))
    pq.write_table(pa.table({"query_id": [1], "doc_id": ["d1"], "relevance": [2]}), path)
    assert load_judgments(path).frame.rows() == [("1", "d1", 2)]
    pq.write_table(pa.table({"query_id": ["q1"], "doc": ["d1"], "relevance": [2]}), path)
    assert "q.parquet: missing column 'doc_id'" in _error(lambda: load_judgments(path))


def test_bad_results(tmp_path: Path):
    (tmp_path / "q.txt").write_text(QRELS)
    empty = tmp_path / "empty"
    (empty / "results").mkdir(parents=True)
    pq.write_table(pa.table({"query_id": ["q1"]}), empty / "results" / "p.parquet")  # uncommitted
    assert "no result files" in _error(lambda: evaluate_output_dir(empty, tmp_path / "q.txt"))
    assert "output directory not found" in _error(
        lambda: evaluate_output_dir(tmp_path / "nope", tmp_path / "q.txt")
    )

    broken = tmp_path / "broken" / "results"
    commit_part(
        broken.parent,
        pa.table({"query_id": ["q1"], "doc_id": ["d1"], "rank": [1], "score": [0.1]}),
        "p.parquet",
    )
    message = _error(lambda: evaluate_output_dir(broken.parent, tmp_path / "q.txt"))
    assert "p.parquet: missing column 'input_rank'" in message

    table = pa.table(
        {
            "query_id": ["q1", "q1"],
            "doc_id": ["d1", "d2"],
            "rank": [1, 2],
            "score": [0.5, None],
            "input_rank": [1, 2],
        }
    )
    pq.write_table(table, broken / "p.parquet")
    assert "p.parquet row 2: field 'score' is null" in _error(
        lambda: evaluate_output_dir(broken.parent, tmp_path / "q.txt")
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"doc_id": ["d1", "d1"]},
            "p-1.parquet row 2: field 'doc_id' is 'd1' for query 'q1' again (first at",
        ),
        ({"doc_id": ["d1", "d 2"]}, "p-1.parquet row 2: field 'doc_id' is 'd 2'"),
        ({"rank": [1, 0]}, "p-1.parquet row 2: field 'rank' is 0, not a 1-based position"),
        ({"rank": [1, 1]}, "field 'rank' is 1 for query 'q1' again (first at"),
        ({"input_rank": ["1", "2"]}, "p-1.parquet: column 'input_rank' has type string"),
        ({"score": [0.5, float("nan")]}, "p-1.parquet row 2: field 'score' is NaN"),
    ],
)
def test_bad_result_rows(tmp_path: Path, change: dict, expected: str):
    (tmp_path / "q.txt").write_text(QRELS)
    columns = {"query_id": ["q1", "q1"], "doc_id": ["d1", "d2"], "rank": [1, 2]}
    columns |= {"score": [0.5, 0.4], "input_rank": [1, 2], **change}
    commit_part(tmp_path / "out", pa.table(columns), "p-1.parquet")
    assert expected in _error(lambda: evaluate_output_dir(tmp_path / "out", tmp_path / "q.txt"))


def test_single_run_file_from_cli(tmp_path: Path, capsys):
    (tmp_path / "q.jsonl").write_text(
        '{"query_id": "q1", "doc_id": "d2", "relevance": 2}\n'
        '{"query_id": "q2", "doc_id": "x", "relevance": 1}\n'
    )
    (tmp_path / "bm25.run").write_text("q1 Q0 d1 1 3.0 bm25\nq1 Q0 d2 2 2.0 bm25\n")
    argv = ["eval", "--run", str(tmp_path / "bm25.run"), "--qrels", str(tmp_path / "q.jsonl")]
    assert main([*argv, "--out", str(tmp_path / "o"), "--k", "1,2"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["systems"] == ["bm25"] and summary["comparisons"] == []
    assert summary["mean"]["bm25"]["mrr"] == 0.5 and summary["mean"]["bm25"]["ndcg@1"] == 0.0
    assert summary["queries"]["bm25"]["judged_not_ranked"] == 1
    out = capsys.readouterr().out
    assert "bm25" in out and "0.5000" in out and "1 judged queries were not ranked" in out


def test_duplicate_judgments_follow_trec_eval(outdir: Path):
    qrels = outdir.parent / "dup.txt"
    qrels.write_text(QRELS + "q1 0 d3 0\n")
    message = _error(lambda: evaluate_output_dir(outdir, qrels, print_table=False))
    assert (
        "1 duplicate judgments" in message and "line 1 and line 6" in message and "'d3'" in message
    )
    qrels.write_text(QRELS + "q4 0 y 1\n")  # q4 is not ranked: counted, not fatal
    summary = evaluate_output_dir(outdir, qrels, print_table=False)
    assert summary["judgments"]["duplicate_judgments"] == 1


def test_run_file_errors(tmp_path: Path):
    (tmp_path / "q.txt").write_text(QRELS)
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 2 abc tag\n")
    assert "r.run line 2: field 'score' is 'abc'" in _error(lambda: read_trec_run(run))
    run.write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d1 2 0.4 tag\n")
    assert "already ranked for query 'q1' on line 1" in _error(lambda: read_trec_run(run))
    run.write_text("Q1 Q0 d1 1 0.5 tag\n")
    message = _error(lambda: evaluate_run_files([run], tmp_path / "q.txt", tmp_path / "o"))
    assert "no query of" in message and "'Q1'" in message and "'q1'" in message


def test_cli_exit_codes_and_no_traceback(outdir: Path, tmp_path: Path, capsys):
    qrels = outdir.parent / "qrels.txt"
    assert main(["eval", str(outdir), "--qrels", str(qrels), "--k", "1,5", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["eval", str(outdir), "--qrels", str(qrels), "--k", "1,x"]) == 2
    assert "error: k: '1,x' is not a comma-separated list" in capsys.readouterr().err
    assert (
        main(["eval", "--run", str(outdir / "eval" / "reranked.trec"), "--qrels", str(qrels)]) == 2
    )
    assert "--run needs --out" in capsys.readouterr().err
    assert main(["eval", str(outdir), "--qrels", str(qrels), "--relevance-threshold", "0"]) == 2

    bad = tmp_path / "bad.txt"
    bad.write_text("q1 0 d1\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "eval", str(outdir), "--qrels", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "bad.txt line 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_quiet(outdir: Path, capsys):
    assert main(["eval", str(outdir), "--qrels", str(outdir.parent / "qrels.txt"), "-q"]) == 0
    assert capsys.readouterr().out == "" and (outdir / "eval" / "summary.json").is_file()


INTERRUPTED = """
import os, signal, sys, time
import pipeline.evaluate.evaluation as evaluation
from pipeline.cli import main

def ctrl_c(*args, **kwargs):  # as a terminal's Ctrl-C would, while eval works
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)

evaluation.evaluate_output_dir = ctrl_c
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_prints_one_line_and_exits_130(outdir: Path):
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED, "eval", str(outdir), "--qrels", "q.txt"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 130
    assert proc.stderr.startswith("interrupted: eval stopped") and proc.stderr.count("\n") == 1


def test_randomization_option(outdir: Path):
    summary = evaluate_output_dir(
        outdir, outdir.parent / "qrels.txt", k=[1], print_table=False, significance="randomization"
    )
    cmp = summary["comparisons"][0]
    assert cmp["test"] == "randomization"
    # 2 paired queries: exact test over 4 sign flips; mrr diffs are +2/3 and -1/2.
    assert cmp["metrics"]["mrr"]["p_value"] == 1.0


# --- first stage from the job's input when results are cut to top_n ---------------------------


async def _cut_run(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """A real local-provider run with top_n=3 over 12 candidates per query.

    Returns the output dir, the input file, and qrels judging each query's input rank 10
    doc relevant, for the queries where the reranker did not keep that doc.
    """
    from tests.helpers import job_config, make_queries, run, write_grouped_parquet

    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(6, 12))
    out = tmp_path / "out"
    outcome = await run(job_config(path, out, kind="local", output__top_n=3))
    assert outcome.exit_code == 0
    rows = pq.read_table(out / "results").to_pylist()
    kept = {(r["query_id"], r["doc_id"]) for r in rows}
    queries = sorted({r["query_id"] for r in rows})
    assert len(queries) == 6 and len(rows) == 18
    tenth = {q: f"{q}-d0009" for q in queries}  # make_queries: doc j of q is "q-d000j"
    judged = [q for q in queries if (q, tenth[q]) not in kept]
    assert judged, "the reranker kept every rank-10 doc; pick another seed"
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 {tenth[q]} 1\n" for q in judged))
    return out, path, judged


async def test_cut_results_take_the_first_stage_from_the_input(tmp_path: Path, capsys, monkeypatch):
    out, _, judged = await _cut_run(tmp_path)
    qrels = tmp_path / "qrels.txt"
    summary = evaluate_output_dir(out, qrels, k=[3, 10])
    assert summary["first_stage_source"] == "input"
    assert summary["inputs"]["top_n"] == 3
    fs, rr = summary["mean"]["first_stage"], summary["mean"]["reranked"]
    # The relevant doc sits at input rank 10: found by the real first stage, lost by reranking.
    assert fs["recall@10"] == 1.0 and fs["recall@3"] == 0.0
    assert fs["mrr"] == pytest.approx(1 / 10)
    assert rr["recall@10"] == 0.0
    assert summary["comparisons"][0]["queries"] == len(judged)
    warnings = " ".join(summary["warnings"])
    assert "results hold only the reranked top docs" not in warnings
    assert "reranked holds only the top 3 docs per query" in warnings and "k = 10" in warnings
    first = read_trec_run(out / "eval" / "first_stage.trec")
    q = judged[0]
    assert docs_by_query(first)[q] == [f"{q}-d{j:04d}" for j in range(12)]
    printed = capsys.readouterr().out
    assert "first stage: input (each query's full candidate list" in printed

    # Read in ranges of ~5 rows (2 queries each), the input lists are cut the same way.
    monkeypatch.setattr(output_dir, "CHUNK_ROWS", 5)
    again = evaluate_output_dir(out, qrels, k=[3, 10], out=tmp_path / "ranges", print_table=False)
    assert again["mean"] == summary["mean"] and again["comparisons"] == summary["comparisons"]
    for name in ("first_stage.trec", "reranked.trec"):
        assert (tmp_path / "ranges" / name).read_text() == (out / "eval" / name).read_text()


async def test_missing_or_changed_input_falls_back_to_the_results(tmp_path: Path):
    out, path, _ = await _cut_run(tmp_path)
    qrels = tmp_path / "qrels.txt"
    data = path.read_bytes()

    path.unlink()
    summary = evaluate_output_dir(out, qrels, k=[10], print_table=False)
    assert summary["first_stage_source"] == "results"
    assert summary["inputs"]["first_stage_input"] is None
    assert summary["mean"]["first_stage"]["recall@10"] == 0.0
    warnings = " ".join(summary["warnings"])
    assert "top_n=3; 6 queries miss part of their first-stage list" in warnings
    why = [w for w in summary["warnings"] if w.startswith("first_stage not rebuilt")]
    assert len(why) == 1 and "no such file or directory" in why[0] and str(path) in why[0]
    first = read_trec_run(out / "eval" / "first_stage.trec")
    assert all(len(docs) == 3 for docs in docs_by_query(first).values())

    path.write_bytes(data[: len(data) // 2])  # cut short: no longer Parquet
    summary = evaluate_output_dir(out, qrels, k=[10], print_table=False)
    assert summary["first_stage_source"] == "results"
    assert any(w.startswith("first_stage not rebuilt") for w in summary["warnings"])

    # Readable, but other candidate lists: the result rows' input_rank no longer match.
    from tests.helpers import make_queries, write_grouped_parquet

    queries = make_queries(6, 12, seed=99)
    for query in queries:
        query["doc_ids"] = query["doc_ids"][::-1]
    write_grouped_parquet(path, queries)
    summary = evaluate_output_dir(out, qrels, k=[10], print_table=False)
    assert summary["first_stage_source"] == "results"
    assert any("but the input holds" in w for w in summary["warnings"])


def test_the_scale_benchmark_writes_what_eval_reads(tmp_path: Path):
    # benchmarks/eval_scale.py generates its output directory itself; it must stay one that
    # eval reads exactly as a run's (committed parts, manifest, resolved job).
    spec = importlib.util.spec_from_file_location("eval_scale", REPO / "benchmarks/eval_scale.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.write_output_dir(tmp_path / "out", queries=50, rows_per_part=120)
    bench.write_qrels(tmp_path / "qrels.txt", queries=50, chunk=20)
    assert len(committed_parts(tmp_path / "out")["results"]) == 5
    summary = evaluate_output_dir(tmp_path / "out", tmp_path / "qrels.txt", print_table=False)
    assert summary["comparisons"][0]["queries"] == 50 and summary["warnings"] == []
    assert summary["judgments"] == {
        "queries": 50,
        "judged_documents": 150,
        "duplicate_judgments": 0,
    }

"""Inputs and outputs on an object store, for real: a moto S3 server on 127.0.0.1 (HTTP,
a free port), reached through the AWS variables as a user would set them. Nothing of
ours is mocked: the runs, the CLI in subprocesses, polars reading the results back.

The same jobs run against a local directory give the expected output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import polars as pl
import pyarrow.fs as pafs
import pytest

from pipeline.errors import SetupError
from pipeline.run.prepare import prepare_job
from pipeline.storage import ObjectPath, location, parquet_file
from pipeline.write import committed_parts
from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import (
    job_config,
    make_queries,
    results,
    run,
    start_small_ray,
    write_grouped_parquet,
    write_pairs_jsonl,
)
from tests.test_kill_resume import start, wait_for_requests, write_job

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

BUCKET = "rerank-test"
KEY_ID = "AKIATESTKEYID0000000"
SECRET_KEY = "s3-SECRET-do-not-print-7f6e5d4c3b2a1"


@pytest.fixture(scope="module")
def s3():
    """The S3 server and the environment pointing at it (subprocesses inherit it)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        pafs.S3FileSystem(
            endpoint_override=f"{host}:{port}", scheme="http", allow_bucket_creation=True
        ).create_dir(BUCKET)
        yield {"endpoint": endpoint}
    server.stop()


def url(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def upload(local: Path, key: str) -> str:
    target = location(url(key))
    assert isinstance(target, ObjectPath)
    target.upload(local)
    return url(key)


def polars_options(s3) -> dict[str, str]:
    """As a user of polars would give them: nothing of the pipeline's involved."""
    return {
        "aws_endpoint_url": s3["endpoint"],
        "aws_allow_http": "true",
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": "us-east-1",
    }


def s3_results(s3, out_url: str) -> pl.DataFrame:
    scan = pl.scan_parquet(f"{out_url}/results/*.parquet", storage_options=polars_options(s3))
    return scan.collect().sort("query_id", "rank")


def keys_under(prefix: str) -> dict[str, bytes]:
    where = location(url(prefix))
    assert isinstance(where, ObjectPath)
    return {p.path.split("/", 1)[1]: p.read_bytes() for p in where.files()}


def committed_ids(out_url: str) -> set[str]:
    parts = committed_parts(location(out_url))
    ids: set[str] = set()
    for name in ("results", "failures"):
        for part in parts[name]:
            column = parquet_file(part).read(columns=["query_id"]).column(0)
            ids.update(x for x in column.to_pylist() if x)
    return ids


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, s3):
    """One job on S3 (input and output) and the same job on local disk."""
    tmp = tmp_path_factory.mktemp("s3grouped")
    queries = make_queries(240, [4, 11, 23, 8], seed=5)
    local_input = write_grouped_parquet(tmp / "in.parquet", queries, row_group_size=32)
    remote_input = upload(local_input, "grouped/in.parquet")
    sets = dict(output__top_n=6, output__flush_rows=200, input__batch_rows=32)
    local = tmp / "local"
    assert run_sync(job_config(local_input, local, kind="local", **sets)).exit_code == 0
    out_url = url("grouped/out")
    outcome = run_sync(job_config(remote_input, out_url, kind="local", **sets))
    return {"tmp": tmp, "queries": queries, "local": local, "out": out_url, "outcome": outcome}


def run_sync(cfg, **kwargs):
    """A job prepared and run in this process, as the CLI would (kwargs: overwrite...)."""
    return asyncio.run(run(cfg, **kwargs))


def test_a_job_on_s3_gives_the_local_runs_results(grouped, s3):
    assert grouped["outcome"].exit_code == 0
    got, want = s3_results(s3, grouped["out"]), results(grouped["local"])
    assert got.height == want.height == sum(min(6, len(q["doc_ids"])) for q in grouped["queries"])
    assert got.columns == want.columns
    assert got.equals(want)
    files = keys_under("grouped/out")
    names = sorted(k.split("/", 2)[-1] for k in files if "/results/" not in k)
    assert {"grouped/out/_job.json", "grouped/out/_manifest.jsonl"} <= set(files)
    assert {"grouped/out/summary.json", "grouped/out/job.resolved.toml"} <= set(files), names
    # Every part under results/ is one the manifest names (compaction deleted the rest).
    committed = {str(p) for p in committed_parts(location(grouped["out"]))["results"]}
    listed = {url(k) for k in files if k.startswith("grouped/out/results/")}
    assert listed == committed and len(committed) >= 1
    summary = orjson.loads(files["grouped/out/summary.json"])
    assert summary["status"] == "complete"
    assert summary["queries"]["ranked"] == len(grouped["queries"])
    for key, data in files.items():
        assert SECRET_KEY.encode() not in data, key
        assert KEY_ID.encode() not in data, key


def test_rerun_finds_everything_done_and_sends_nothing(grouped, s3):
    """The resume path over S3: committed ids streamed from results/, nothing redone."""
    cfg = job_config(
        url("grouped/in.parquet"),
        grouped["out"],
        kind="local",
        output__top_n=6,
        output__flush_rows=200,
        input__batch_rows=32,
    )
    outcome = run_sync(cfg)
    assert outcome.exit_code == 0
    assert outcome.summary["queries"]["ranked"] == 0
    assert outcome.summary["output_dir_totals"]["ranked"] == len(grouped["queries"])
    assert s3_results(s3, grouped["out"]).equals(results(grouped["local"]))


@pytest.mark.parametrize("layout", ["pairs-jsonl-prefix", "grouped-parquet-glob"])
def test_inputs_on_s3_in_both_layouts_and_several_objects(tmp_path, s3, layout):
    queries = make_queries(90, [3, 9, 14], seed=11)
    thirds = [queries[0:30], queries[30:60], queries[60:90]]
    local_dir = tmp_path / "in"
    local_dir.mkdir()
    for i, part in enumerate(thirds):
        if layout.startswith("pairs"):
            suffix = ".jsonl.gz" if i == 1 else ".jsonl"  # gzipped too, detected by content
            local = write_pairs_jsonl(local_dir / f"part-{i}{suffix}", part)
        else:
            local = write_grouped_parquet(local_dir / f"part-{i}.parquet", part)
        upload(local, f"{layout}/in/{local.name}")
    # Not input: a file of another kind beside them, and a pipeline output under the prefix.
    (local_dir / "notes.txt").write_text("not input")
    upload(local_dir / "notes.txt", f"{layout}/in/notes.txt")
    upload(local_dir / "notes.txt", f"{layout}/in/old-run/_manifest.jsonl")
    if layout.startswith("pairs"):
        remote, sets = url(f"{layout}/in/"), {"input__layout": '"pairs"'}
        local_path = local_dir
    else:
        remote, sets = url(f"{layout}/in/part-*.parquet"), {}
        local_path = local_dir / "part-*.parquet"
    (local_dir / "notes.txt").unlink()
    want = run_sync(job_config(local_path, tmp_path / "local", kind="local", **sets))
    got = run_sync(job_config(remote, url(f"{layout}/out"), kind="local", **sets))
    assert want.exit_code == got.exit_code == 0
    assert got.summary["queries"]["read"] == len(queries)
    assert s3_results(s3, url(f"{layout}/out")).equals(results(tmp_path / "local"))


def _job_file(tmp: Path, input_path: str, out: str, extra: str = "") -> Path:
    job = tmp / "job.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\n{extra}[provider]\nkind = "local"\n'
        f'[output]\ndir = "{out}"\n'
    )
    return job


@pytest.mark.parametrize(
    "input_key,out_key,named",
    [
        ("s3://rerank-test/missing/in.parquet", "s3://rerank-test/e1", "missing/in.parquet"),
        ("s3://no-such-bucket-x/in.parquet", "s3://rerank-test/e2", "no-such-bucket-x"),
        ("LOCAL", "s3://no-such-bucket-y/out", "no-such-bucket-y"),
    ],
)
def test_a_missing_object_or_bucket_is_one_line_naming_the_url(
    tmp_path, s3, input_key, out_key, named
):
    if input_key == "LOCAL":
        input_key = str(write_grouped_parquet(tmp_path / "in.parquet", make_queries(3, 2)))
    proc = cli("run", str(_job_file(tmp_path, input_key, out_key)), "--quiet")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert "Traceback" not in proc.stderr and SECRET_KEY not in proc.stderr


@pytest.mark.parametrize(
    "input_path,extra,says",
    [
        (f"s3://{KEY_ID}:{SECRET_KEY}@rerank-test/in.parquet", "", "carries credentials"),
        ("s3://rerank-test/in.parquet?secret_key=" + SECRET_KEY, "", "URL options"),
        ("s3://rerank-test/in.parquet", f'aws_secret_access_key = "{SECRET_KEY}"\n', "never read"),
    ],
)
def test_credentials_in_the_job_file_are_refused_unprinted(tmp_path, s3, input_path, extra, says):
    proc = cli("run", str(_job_file(tmp_path, input_path, url("refused"), extra)), "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "AWS_SECRET_ACCESS_KEY" in proc.stderr
    assert SECRET_KEY not in proc.stderr + proc.stdout
    assert not keys_under("refused")  # nothing was written


def test_sigkill_then_resume_on_s3_equals_a_clean_run(tmp_path, s3):
    queries = make_queries(300, [4, 12, 25, 9], seed=43)
    local_input = write_grouped_parquet(tmp_path / "in.parquet", queries, row_group_size=16)
    remote_input = upload(local_input, "kill/in.parquet")
    qid_of = {q["query"]: q["query_id"] for q in queries}
    with ThreadedServer(Knobs(latency_s=0.02)) as server:
        clean = tmp_path / "clean"
        proc = start(write_job(tmp_path, local_input, clean, server.base_url))
        assert proc.wait(120) == 0, proc.stderr.read().decode()
        out = location(url("kill/out"))
        job = write_job(tmp_path, remote_input, out, server.base_url)
        kills, before_kill = 0, []
        for wanted in (40, 80, 120):
            done_before = committed_ids(str(out))
            log_start = len(server.log)
            proc = start(job)
            wait_for_requests(server, log_start + wanted, proc)
            while not committed_ids(str(out)) - done_before and proc.poll() is None:
                time.sleep(0.02)  # a commit of this run's own, then the kill
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            time.sleep(0.05)
            resent = {qid_of[r.query] for r in server.log[log_start:]} & done_before
            assert not resent, f"run {kills} re-sent finished queries {sorted(resent)[:5]}"
            before_kill.append(len(committed_ids(str(out))))
        done_before = committed_ids(str(out))
        log_start = len(server.log)
        final = start(job)
        code = final.wait(120)
        stderr = final.stderr.read().decode()
        assert not {qid_of[r.query] for r in server.log[log_start:]} & done_before
    assert code == 0, stderr
    assert kills >= 2 and before_kill == sorted(before_kill) and before_kill[0] > 0, before_kill
    got, want = s3_results(s3, str(out)), results(clean)
    assert got.equals(want)
    assert got["query_id"].n_unique() == len(queries)  # each once; no failures by design
    files = keys_under("kill/out")
    assert not [k for k in files if "/failures/" in k]
    summary = orjson.loads(files["kill/out/summary.json"])
    assert summary["status"] == "complete" and summary["queries"]["accounted_for"]
    assert summary["output_dir_totals"]["ranked"] == len(queries)
    for key, data in files.items():
        assert SECRET_KEY.encode() not in data, key
    assert SECRET_KEY not in stderr


def test_report_and_eval_read_an_s3_output_dir(grouped, s3, tmp_path):
    report = cli("report", grouped["out"], "--json")
    assert report.returncode == 0, report.stderr
    data = orjson.loads(report.stdout)
    assert data["output_dir"] == grouped["out"]
    assert data["requests"] == data["requests_answered"] > 0
    assert data["queries"]["ranked"] == len(grouped["queries"])
    local_report = orjson.loads(cli("report", str(grouped["local"]), "--json").stdout)
    assert data["requests"] == local_report["requests"]
    qrels = tmp_path / "qrels.txt"
    qrels.write_text(
        "".join(f"{q['query_id']} 0 {q['doc_ids'][-1]} 1\n" for q in grouped["queries"][:50])
    )
    evaluated = cli("eval", grouped["out"], "--qrels", str(qrels), "-q")
    assert evaluated.returncode == 0, evaluated.stderr
    eval_files = keys_under("grouped/out/eval")
    assert {"summary.json", "per_query.parquet"} <= {k.rsplit("/", 1)[1] for k in eval_files}
    remote = orjson.loads(eval_files["grouped/out/eval/summary.json"])
    here = cli("eval", str(grouped["local"]), "--qrels", str(qrels), "-q")
    assert here.returncode == 0, here.stderr
    local = orjson.loads((grouped["local"] / "eval" / "summary.json").read_bytes())
    assert remote["mean"] == local["mean"]
    assert SECRET_KEY not in report.stdout + report.stderr + evaluated.stdout + evaluated.stderr


@pytest.mark.ray
@pytest.mark.slow
def test_ray_engine_writes_to_s3_as_a_local_run(grouped, s3, tmp_path):
    ray = pytest.importorskip("ray")
    start_small_ray()
    try:
        out_url = url("ray/out")
        sets = dict(output__top_n=6, output__flush_rows=200, input__batch_rows=32)
        cfg = job_config(
            url("grouped/in.parquet"),
            out_url,
            kind="local",
            engine__kind='"ray"',
            engine__workers=2,
            **sets,
        )
        outcome = run_sync(cfg)
    finally:
        ray.shutdown()
    assert outcome.exit_code == 0
    assert outcome.summary["engine"]["kind"] == "ray"
    assert s3_results(s3, out_url).equals(results(grouped["local"]))


def test_environment_is_read_not_stored(grouped):
    """The resolved job and the job record name URLs, never the store's settings."""
    files = keys_under("grouped/out")
    for name in ("job.resolved.toml", "_job.json"):
        text = files[f"grouped/out/{name}"].decode()
        assert grouped["out"] in text or name == "_job.json"
        assert os.environ["AWS_ENDPOINT_URL"] not in text


def test_overwrite_on_s3_deletes_only_this_tools_files(tmp_path, s3):
    queries = make_queries(12, [3, 5], seed=3)
    source = write_grouped_parquet(tmp_path / "in.parquet", queries)
    cfg = job_config(upload(source, "ow/in.parquet"), url("ow/out"), kind="local")
    assert run_sync(cfg).exit_code == 0
    first = set(keys_under("ow/out/results"))
    upload(source, "ow/out/notes.parquet")  # beside our folders: not ours, left alone
    assert run_sync(cfg, overwrite=True).exit_code == 0
    after = keys_under("ow/out")
    assert "ow/out/notes.parquet" in after
    assert not first & set(after)  # the earlier parts are gone, the new run's are there
    assert s3_results(s3, url("ow/out")).height == sum(len(q["doc_ids"]) for q in queries)
    upload(source, "ow/out/results/mine.parquet")  # inside our folders: refused, named
    with pytest.raises(SetupError, match="results/mine.parquet"):
        prepare_job(cfg, overwrite=True)
    assert "ow/out/results/mine.parquet" in keys_under("ow/out")


def test_compare_reads_s3_output_dirs(grouped, s3, tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text(
        "".join(f"{q['query_id']} 0 {q['doc_ids'][0]} 1\n" for q in grouped["queries"][:40])
    )
    proc = cli("compare", grouped["out"], str(grouped["local"]), "--qrels", str(qrels), "-q")
    assert proc.returncode == 0, proc.stderr
    written = keys_under("grouped/compare")  # default: compare/ beside the first OUTDIR
    summary = orjson.loads(written["grouped/compare/summary.json"])
    assert summary["output_dirs"]["out"] == grouped["out"]
    assert summary["mean"]["out"] == summary["mean"]["local"]  # the same system, twice

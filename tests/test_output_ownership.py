"""What the tool may delete, and resuming after the input was repaired.

`--overwrite` deletes only files this tool wrote and never a folder holding anything
else; a job whose input files changed resumes with `--accept-changed-input`, keeping
what is finished and sending only the rest.
"""

from __future__ import annotations

import orjson
import polars as pl

from pipeline.cli import main
from pipeline.run import EXIT_OK, EXIT_SETUP
from pipeline.write.ownership import foreign_files
from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import make_queries, write_grouped_parquet


def local_job(tmp_path, input_path, out) -> str:
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\n[provider]\nkind = "local"\n[output]\ndir = "{out}"\n'
    )
    return str(job)


def test_overwrite_never_deletes_what_the_tool_did_not_write(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(4, 5, seed=81))
    work = tmp_path / "work"
    (work / "eval").mkdir(parents=True)
    (work / "eval" / "metrics.py").write_text("# the user's own evaluation code\n")
    (work / "notes.txt").write_text("mine\n")
    job = local_job(tmp_path, path, work)
    # A fresh directory that holds a user's eval/ folder: the run itself is fine (it
    # writes its eval outputs only when asked), but --overwrite must not clear it.
    code = main(["run", job, "--quiet", "--overwrite"])
    err = capsys.readouterr().err
    assert code == EXIT_SETUP, err
    assert "eval/metrics.py" in err and "did not write" in err and "Traceback" not in err
    assert (work / "eval" / "metrics.py").read_text() == "# the user's own evaluation code\n"
    assert (work / "notes.txt").exists() and not (work / "results").exists()


def test_overwrite_of_our_own_output_clears_it_and_keeps_other_files(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(4, 5, seed=82))
    out = tmp_path / "out"
    job = local_job(tmp_path, path, out)
    assert main(["run", job, "--quiet"]) == EXIT_OK
    (out / "README.txt").write_text("beside the folders: never touched\n")
    first = sorted(p.name for p in (out / "results").iterdir())
    assert main(["run", job, "--quiet", "--overwrite"]) == EXIT_OK
    assert sorted(p.name for p in (out / "results").iterdir()) != first  # rewritten
    assert (out / "README.txt").exists()
    # A part-like file the user dropped into results/ is not ours by name: refused.
    (out / "results" / "my-analysis.parquet").write_bytes(b"x")
    assert foreign_files(out) == ["results/my-analysis.parquet"]
    assert main(["run", job, "--quiet", "--overwrite"]) == EXIT_SETUP
    assert "results/my-analysis.parquet" in capsys.readouterr().err
    assert (out / "results" / "my-analysis.parquet").exists()


def test_a_repaired_input_resumes_with_accept_changed_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RERANK_API_KEY", "sk-test")
    queries = make_queries(6, 4, seed=83)
    path = tmp_path / "in.parquet"
    write_grouped_parquet(path, queries[:5])
    out = tmp_path / "out"
    with ThreadedServer(Knobs()) as server:
        job = tmp_path / "job.toml"
        job.write_text(
            f'[input]\npath = "{path}"\n[provider]\nkind = "jina"\nbase_url = "{server.base_url}"\n'
            f'[output]\ndir = "{out}"\n'
        )
        assert main(["run", str(job), "--quiet"]) == EXIT_OK
        sent_first = len(server.log)
        write_grouped_parquet(path, queries)  # repaired: one more query, another size
        assert main(["run", str(job), "--quiet"]) == EXIT_SETUP
        err = capsys.readouterr().err
        assert "--accept-changed-input" in err and "input.files" in err
        assert len(server.log) == sent_first  # refused before any request
        assert main(["run", str(job), "--quiet", "--accept-changed-input"]) == EXIT_OK
        resent = {r.query for r in server.log[sent_first:]}
    assert resent == {queries[5]["query"]}  # only the new query was sent
    ranked = pl.read_parquet(out / "results" / "*.parquet")["query_id"].unique().sort()
    assert ranked.to_list() == [q["query_id"] for q in queries]
    # The record now describes the input as it is: a plain rerun resumes as usual.
    record = orjson.loads((out / "_job.json").read_bytes())
    assert record["identity"]["input"]["files"][0][1] == path.stat().st_size
    assert main(["run", str(job), "--quiet"]) == EXIT_OK


def test_report_after_a_resume_describes_the_whole_directory(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(5, 4, seed=84))
    out = tmp_path / "out"
    job = local_job(tmp_path, path, out)
    assert main(["run", job, "--quiet"]) == EXIT_OK
    assert main(["run", job, "--quiet"]) == EXIT_OK  # a resume: everything done earlier
    capsys.readouterr()
    assert main(["report", str(out)]) == EXIT_OK
    table = capsys.readouterr().out
    assert "ranked 5  failed 0  (the whole directory)" in table
    assert "last run: read 5, ranked 0, skipped 5 done earlier" in table
    assert main(["report", str(out), "--json"]) == EXIT_OK
    queries = orjson.loads(capsys.readouterr().out)["queries"]
    assert (queries["ranked"], queries["last_run"]["ranked"]) == (5, 0)

"""Input and job-file mistakes that must stop the job before any request (exit 2), naming
the file, row, key or field, and the ones that must simply work (byte-order marks)."""

from __future__ import annotations

import gzip

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.config import ColumnsConfig, ConfigError, InputConfig, load_job, load_job_text
from pipeline.read import InputError, InputReader, open_input
from pipeline.run import EXIT_OK, EXIT_SETUP, EXIT_SOME_FAILED
from tests.fake_server import ThreadedServer
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    pairs_rows,
    results,
    run,
    write_grouped_jsonl,
    write_grouped_parquet,
)


def read_all(path, **kwargs) -> list:
    reader = open_input(InputConfig(path=str(path), **kwargs))
    reader.check()
    return [item for batch in reader.batches() for item in batch]


def job_file(tmp_path, input_path, provider='kind = "local"', extra: str = "") -> str:
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\n{extra}[provider]\n{provider}\n'
        f'[output]\ndir = "{tmp_path}/out"\n[limits]\nmax_retry_wait_s = 0.05\n'
    )
    return str(job)


# -- a column the job names must exist ---------------------------------------------------------
def test_a_misspelled_doc_ids_mapping_stops_the_cli_before_any_request(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("K", "key")
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(3, 4))
    with ThreadedServer() as server:
        job = job_file(
            tmp_path, path, f'kind = "jina"\nbase_url = "{server.base_url}"\napi_key_env = "K"'
        )
        code = main(["run", job, "--quiet", "--set", "input.columns.doc_ids=idz"])
        assert code == EXIT_SETUP
        assert server.log == []  # nothing was sent
    err = capsys.readouterr().err
    assert "missing column 'idz' for input.columns.doc_ids" in err
    assert "columns are doc_ids, documents, query, query_id" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_pairs_doc_id_named_in_the_job_must_exist(tmp_path, fmt):
    rows = [{k: v for k, v in r.items() if k != "doc_id"} for r in pairs_rows(make_queries(2, 3))]
    path = tmp_path / f"pairs.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
        needle = (
            r"missing column 'docid' for input.columns.doc_id \(columns are query, query_id, text\)"
        )
    else:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        needle = (
            r"no key 'docid' for input.columns.doc_id in the first 6 rows \(their keys are "
            r"query, query_id, text\)"
        )
    with pytest.raises(InputError, match=needle):
        read_all(path, layout="pairs", columns=ColumnsConfig(doc_id="docid"))
    # The default name stays optional: absent, documents are numbered by position.
    items = read_all(path, layout="pairs")
    assert [q.doc_ids for q in items] == [["0", "1", "2"], ["0", "1", "2"]]


def test_naming_the_default_id_column_explicitly_makes_it_required(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"query_id": "1", "query": "x", "documents": ["a", "b"]}\n')
    assert read_all(path)[0].doc_ids == ["0", "1"]
    cfg = load_job_text(
        f'[input]\npath = "{path}"\n[input.columns]\ndoc_ids = "doc_ids"\n'
        '[provider]\nkind = "local"\n[output]\ndir = "o"\n'
    )
    with pytest.raises(InputError, match="no key 'doc_ids' for input.columns.doc_ids"):
        open_input(cfg.input).check()


def test_the_resolved_job_keeps_default_id_columns_optional(tmp_path):
    from pipeline.config import to_toml

    cfg = load_job_text('[input]\npath = "x"\n[provider]\nkind = "local"\n[output]\ndir = "o"\n')
    text = to_toml(cfg)
    assert '# doc_ids = "doc_ids"' in text  # a comment: reloaded, it is still the default
    again = load_job_text(text)
    assert again == cfg
    assert InputReader(again.input, []).optional == {"doc_ids"}


# -- pairs input must be grouped by query id -----------------------------------------------------
def _ungrouped(tmp_path):
    qs = make_queries(3, 3, seed=4)
    rows = pairs_rows(qs)
    rows = rows[:2] + rows[3:6] + rows[2:3] + rows[6:]  # q0000's third row after q0001
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


async def test_ungrouped_pairs_stop_the_job_with_exit_2_naming_the_row(tmp_path, out_dir):
    path = _ungrouped(tmp_path)
    cfg = job_config(path, out_dir, kind="local", input__layout='"pairs"', input__batch_rows=2)
    outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SETUP
    assert "input is not grouped by query_id: sort it" in outcome.message
    assert f"{path} line 6: query_id 'q0000' comes back after other queries" in outcome.message
    assert "input.allow_ungrouped = true" in outcome.message
    assert failures(out_dir).height == 0  # not one failure row per stray row


async def test_ungrouped_pairs_opt_in_keeps_the_old_behaviour(tmp_path, out_dir):
    cfg = job_config(
        _ungrouped(tmp_path),
        out_dir,
        kind="local",
        input__layout='"pairs"',
        input__allow_ungrouped="true",
    )
    outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    assert failures(out_dir)["error"].to_list() == ["duplicate_query_id"]
    assert results(out_dir)["query_id"].unique().sort().to_list() == ["q0000", "q0001", "q0002"]


def test_estimate_refuses_ungrouped_pairs_too(tmp_path, capsys):
    job = job_file(tmp_path, _ungrouped(tmp_path), extra='layout = "pairs"\n')
    assert main(["estimate", job, "--quiet"]) == EXIT_SETUP
    assert "input is not grouped by query_id" in capsys.readouterr().err


# -- byte-order marks -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz"])
async def test_a_utf8_bom_at_the_start_of_jsonl_is_not_data(tmp_path, out_dir, name):
    queries = make_queries(3, 4)
    plain = write_grouped_jsonl(tmp_path / "plain.jsonl", queries).read_bytes()
    data = b"\xef\xbb\xbf" + plain
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    outcome = await run(job_config(path, out_dir, kind="local"))
    assert outcome.exit_code == EXIT_OK, failures(out_dir)["message"].to_list()
    assert results(out_dir)["query_id"].unique().len() == 3


def test_a_utf8_bom_at_the_start_of_a_job_file_is_not_data(tmp_path):
    job = tmp_path / "job.toml"
    job.write_bytes(
        b'\xef\xbb\xbf[input]\npath = "x.parquet"\n[provider]\nkind = "local"\n[output]\ndir = "o"\n'
    )
    assert load_job(job).provider.kind == "local"
    assert load_job_text(
        '\ufeff[input]\npath = "x"\n[provider]\nkind = "local"\n[output]\ndir = "o"\n'
    )


@pytest.mark.parametrize(
    "encoding,needle",
    [
        ("utf-16", "is UTF-16 text, not UTF-8: save it as UTF-8"),
        ("latin-1", "is not UTF-8 text (line 2, byte"),
    ],
)
def test_a_job_file_that_is_not_utf8_exits_2_naming_the_file(tmp_path, capsys, encoding, needle):
    job = tmp_path / "export.toml"
    text = '[input]\npath = "données.parquet"\n[provider]\nkind = "local"\n[output]\ndir = "o"\n'
    job.write_bytes(text.encode(encoding))
    with pytest.raises(ConfigError, match=f"job file {job}"):
        load_job(job)
    for command in (["run", str(job)], ["estimate", str(job)]):
        assert main(command) == EXIT_SETUP
        err = capsys.readouterr().err
        assert f"job file {job} {needle}" in err and "Traceback" not in err


# -- the output directory inside a directory input ----------------------------------------------------
async def test_an_output_dir_inside_the_input_dir_is_not_read_back(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_grouped_parquet(data / "a.parquet", make_queries(4, 5, seed=1))
    out = data / "out"
    first = await run(job_config(data, out, kind="local"))
    assert first.exit_code == EXIT_OK
    assert list((out / "results").glob("*.parquet"))  # part files now sit inside the input
    second = await run(job_config(data, out, kind="local"))  # resumes: nothing new to read
    assert second.exit_code == EXIT_OK, second.message
    assert second.stats.queries_read == 4 and second.stats.queries_skipped == 4
    glob_cfg = job_config(f"{data}/**/*.parquet", tmp_path / "other", kind="local")
    assert [p.name for p, _ in open_input(glob_cfg.input).sources] == ["a.parquet"]


# -- job-file validation -----------------------------------------------------------------------
def test_a_job_without_provider_kind_is_refused_not_jina():
    with pytest.raises(
        ConfigError, match="provider.kind is required: add a \\[provider\\] section"
    ):
        load_job_text('[input]\npath = "x"\n[output]\ndir = "o"\n')


@pytest.mark.parametrize(
    "setting,needle",
    [
        ("max_retry_wait_s = -1", "limits.max_retry_wait_s = -1.0: must be 0 or more"),
        ("max_retry_time_s = 0", "limits.max_retry_time_s = 0.0: must be greater than 0"),
    ],
)
def test_retry_limits_are_checked(setting, needle):
    base = '[input]\npath = "x"\n[provider]\nkind = "local"\n[output]\ndir = "o"\n'
    with pytest.raises(ConfigError) as err:
        load_job_text(base + f"[limits]\n{setting}\n")
    assert needle in str(err.value)
    assert load_job_text(base + "[limits]\nmax_retry_wait_s = 0\n").limits.max_retry_wait_s == 0

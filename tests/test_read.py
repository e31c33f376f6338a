"""Reading: streamed batches, both layouts, and bad input as failure rows naming file, row, field."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import InputConfig
from pipeline.read import InputError, open_input
from pipeline.records import Failure, Query
from pipeline.run import EXIT_SOME_FAILED
from tests.helpers import failures, job_config, make_queries, results, run, write_grouped_parquet


def items(path, **kwargs) -> list:
    reader = open_input(InputConfig(path=str(path), **kwargs))
    reader.check()
    return [item for batch in reader.batches() for item in batch]


def test_parquet_is_read_in_batches_not_whole(tmp_path):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(50, 3), row_group_size=10)
    reader = open_input(InputConfig(path=str(path), batch_rows=7))
    sizes = [len(b) for b in reader.row_batches()]
    assert max(sizes) <= 7 and sum(sizes) == 50
    assert reader.count_queries() == 50


def test_directory_and_glob_inputs(tmp_path):
    (tmp_path / "d").mkdir()
    write_grouped_parquet(tmp_path / "d" / "a.parquet", make_queries(3, 2, seed=1))
    write_grouped_parquet(tmp_path / "d" / "b.parquet", make_queries(4, 2, seed=2))
    (tmp_path / "d" / ".hidden.parquet.tmp").write_bytes(b"junk")
    assert len(items(tmp_path / "d")) == 7
    assert len(items(f"{tmp_path}/d/b*.parquet")) == 4
    with pytest.raises(InputError, match="matched no Parquet or JSONL files"):
        items(f"{tmp_path}/d/*.csv")


JSONL_CASES = [
    (b'{"query_id": "a", "query": "x", "documents": ["d"]}', None, None),
    (
        b'{"query_id": "b", "query": "x", "documents": [',
        "unparseable_row",
        "line 2: malformed JSON",
    ),
    (
        b'{"query_id": null, "query": "x", "documents": ["d"]}',
        "missing_field",
        "line 3: field 'query_id' is missing or null",
    ),
    (
        b'{"query_id": "d", "documents": ["d"]}',
        "missing_field",
        "line 4: field 'query' is missing or null",
    ),
    (
        b'{"query_id": "e", "query": "x", "documents": []}',
        "no_candidates",
        "line 5: field 'documents' is an empty list",
    ),
    (
        b'{"query_id": "f", "query": "x", "documents": null}',
        "missing_field",
        "line 6: field 'documents' is missing or null",
    ),
    (
        b'{"query_id": "g", "query": "x", "documents": ["ok", 42]}',
        "not_text",
        "line 7: field 'documents'[1] is int, not text",
    ),
    (
        b'{"query_id": "h", "query": "x", "documents": ["d\xff\xfe"]}',
        "unparseable_row",
        "line 8: invalid UTF-8",
    ),
    (
        b'{"query_id": "i", "query": "  ", "documents": ["d"]}',
        "empty_query",
        "line 9: field 'query' is empty",
    ),
    (
        b'{"query_id": "a", "query": "x", "documents": ["d"]}',
        "duplicate_query_id",
        "line 10: query_id 'a' appeared earlier",
    ),
    (b"[1, 2]", "unparseable_row", "line 11: expected a JSON object"),
    (
        b'{"query_id": "l", "query": "x", "documents": ["d", "e"], "doc_ids": ["1"]}',
        "bad_doc_ids",
        "line 12: field 'doc_ids' must be a list as long",
    ),
    (
        b'{"query_id": "m", "query": "x", "documents": ["d", "e"], "doc_ids": ["1", "1"]}',
        "duplicate_doc_id",
        "line 13: duplicate document id '1'",
    ),
    (b'{"query_id": 7, "query": "x", "documents": [{"id": "z", "text": "t"}]}', None, None),
]


@pytest.mark.parametrize("compressed", [False, True])
async def test_broken_jsonl_rows_become_failures_and_the_job_goes_on(tmp_path, out_dir, compressed):
    name = "broken.jsonl.gz" if compressed else "broken.jsonl"
    data = b"\n".join(line for line, _, _ in JSONL_CASES) + b"\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compressed else data)
    outcome = await run(job_config(path, out_dir, kind="local"))
    assert outcome.exit_code == EXIT_SOME_FAILED
    f = failures(out_dir)
    expected = [(err, msg) for _, err, msg in JSONL_CASES if err]
    assert f.height == len(expected)
    got = sorted(
        zip(f["error"].to_list(), f["message"].to_list(), f["source"].to_list(), strict=True),
        key=lambda r: int(r[2].rsplit(" ", 1)[1]),
    )
    for (err, msg, source), (want_err, want_msg) in zip(got, expected, strict=True):
        assert err == want_err
        assert want_msg in msg and str(path) in msg and str(path) in source
    assert sorted(results(out_dir)["query_id"].unique().to_list()) == ["7", "a"]
    s = outcome.stats
    assert s.queries_read == len(JSONL_CASES) == s.queries_ranked + s.queries_failed


async def test_pairs_non_contiguous_query_is_an_input_failure_when_allowed(tmp_path, out_dir):
    rows = [
        {"query_id": "q1", "query": "solar", "doc_id": "a", "text": "solar panel"},
        {"query_id": "q1", "query": "solar", "doc_id": "b", "text": "wind"},
        {"query_id": "q2", "query": "bread", "doc_id": "c", "text": "bread dough"},
        {"query_id": "q1", "query": "solar", "doc_id": "d", "text": "solar again"},
        {"query_id": "q3", "query": "tax", "doc_id": "e", "text": None},
        {"query_id": "q3", "query": "tax", "doc_id": "f", "text": "tax refund"},
        {"query_id": "q4", "query": "visa", "doc_id": "g", "text": "visa"},
        {"query_id": "q4", "query": "visa", "doc_id": "g", "text": "visa twice"},
    ]
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=3)
    cfg = job_config(
        path, out_dir, kind="local", input__layout='"pairs"', input__allow_ungrouped="true"
    )
    outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    f = failures(out_dir)
    by_error = dict(zip(f["error"].to_list(), f["message"].to_list(), strict=True))
    assert set(by_error) == {"duplicate_query_id", "missing_field", "duplicate_doc_id"}
    assert "row 4: query_id 'q1' appeared earlier" in by_error["duplicate_query_id"]
    assert "row 5: field 'text' is missing or null" in by_error["missing_field"]
    assert "row 8: duplicate doc_id 'g'" in by_error["duplicate_doc_id"]
    r = results(out_dir)
    assert sorted(r["query_id"].unique().to_list()) == ["q1", "q2"]
    assert sorted(r.filter(r["query_id"] == "q1")["doc_id"].to_list()) == ["a", "b"]


def test_missing_column_is_a_clear_error_before_any_request(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"qid": ["1"], "query": ["x"], "documents": [["a"]]}), path)
    with pytest.raises(
        InputError,
        match=r"missing column 'query_id' for input.columns.query_id \(columns are documents, "
        r"qid, query\); set input.columns.query_id to the column that holds it",
    ):
        items(path)
    assert [i.query_id for i in items(path, columns=_cols(query_id="qid"))] == ["1"]


def _cols(**names):
    from pipeline.config import ColumnsConfig

    return ColumnsConfig(**names)


def test_unreadable_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        items(path)


def test_grouped_items_keep_ids_and_sources(tmp_path):
    qs = make_queries(2, 3)
    path = write_grouped_parquet(tmp_path / "in.parquet", qs, structs=True)
    got = items(path)
    assert all(isinstance(i, Query) for i in got)
    assert got[1].doc_ids == qs[1]["doc_ids"] and got[1].documents == qs[1]["documents"]
    assert got[1].source.endswith("in.parquet row 2")
    assert not any(isinstance(i, Failure) for i in got)


def test_jsonl_with_a_misnamed_key_is_a_clear_error_before_any_request(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "1", "query": "x", "documents": ["a"]}\n' * 3)
    with pytest.raises(
        InputError,
        match=r"no key 'query_id' for input.columns.query_id in the first 3 rows \(their keys "
        r"are documents, id, query\); set input.columns.query_id",
    ):
        items(path)
    assert [i.query_id for i in items(path, columns=_cols(query_id="id"))] == ["1", "1", "1"]

"""The on-disk query ledger: duplicates exact (no false alarm, none missed), resume lookups
exact, rows of finished queries screened out once and only once."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from pipeline.ledger import QueryLedger

# Ids that differ only where a lossy encoding would lose the difference.
AWKWARD = [
    "q1",
    "q1 ",
    " q1",
    "Q1",
    "q\x001",
    "q\x002",
    "q\x00",
    "q",
    'q"1',
    "q\\1",
    "q\\u00001",
    "q\n1",
    "q\t1",
    "é",
    "e\u0301",
    "😀",
    "x" * 5000,
    "x" * 4999,
    "[1]",
    "null",
    "1",
    "01",
]


def model_run(ledger: QueryLedger, ids: list[str], batch: int, screen: bool) -> list[bool]:
    """first_sight over `ids`, screened batch by batch like the reader does (or not)."""
    got = []
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        if screen:
            assert ledger.screen(chunk, str, whole_rows=True) == []
        got.extend(ledger.first_sight(q) for q in chunk)
    return got


@pytest.mark.parametrize("screen", [True, False])
@pytest.mark.parametrize("batch", [1, 7, 128])
def test_first_sight_is_exactly_a_set(screen, batch):
    rng = random.Random(batch)
    pool = (
        AWKWARD
        + [f"q{i:05d}" for i in range(3000)]
        + [f"{rng.getrandbits(64):x}" for _ in range(3000)]
    )
    ids = [rng.choice(pool) for _ in range(20_000)]
    seen: set[str] = set()
    want = [not (q in seen or seen.add(q)) for q in ids]  # type: ignore[func-returns-value]
    with QueryLedger() as ledger:
        assert model_run(ledger, ids, batch, screen) == want
        assert len(ledger) == len(seen)


def test_duplicates_stay_exact_across_the_in_memory_flush(monkeypatch):
    # More first sightings than FLUSH_IDS in one screened batch: marks written mid-batch
    # must not make a later duplicate in the same batch look new.
    monkeypatch.setattr(QueryLedger, "FLUSH_IDS", 5)
    ids = [f"q{i}" for i in range(12)] + ["q3", "q11", "q0"]
    with QueryLedger() as ledger:
        ledger.screen(ids, str, whole_rows=True)
        assert [ledger.first_sight(q) for q in ids] == [True] * 12 + [False] * 3


def test_finished_ids_load_exactly_from_arrow_columns():
    ranked = pa.array(AWKWARD + [None, "q1"])  # nulls ignored, repeats harmless
    with QueryLedger() as ledger:
        ledger.load_ids(ranked, QueryLedger.RANKED)
        ledger.load_ids(pa.chunked_array([["f1"], ["f2", None]]), QueryLedger.FAILED)
        assert ledger.count(QueryLedger.RANKED) == len(AWKWARD)
        assert ledger.count(QueryLedger.DONE) == len(AWKWARD) + 2
        for qid in AWKWARD + ["f1", "f2"]:
            assert ledger.is_done(qid), repr(qid)
        for qid in ["q2", "q\x003", "x" * 5001, "f3", "", None]:
            assert not ledger.is_done(qid), repr(qid)
        assert ledger.may_skip()


def test_a_fresh_ledger_skips_nothing_and_knows_nothing_done():
    with QueryLedger() as ledger:
        assert not ledger.may_skip()
        assert ledger.screen(["a", "b", None], str, whole_rows=True) == []
        assert not ledger.is_done("a") and not ledger.failure_recorded("x row 1")


def test_screen_skips_the_first_row_of_a_ranked_query_only():
    with QueryLedger() as ledger:
        ledger.load_ids(pa.array(["r1", "r2", "r3"]), QueryLedger.RANKED)
        ledger.load_ids(pa.array(["f1"]), QueryLedger.FAILED)
        ledger.load_sources(pa.array(["in row 3", "in row 9"]))
        labels = {i: f"in row {i + 1}" for i in range(8)}
        ids = ["r1", "new", "r2", "r1", "f1", None, "r3", "r3"]
        # r1 (row 1) skipped; r2's row 3 is a recorded failure source: read it; the second
        # r1 is a duplicate; f1 failed earlier: read (admission decides); r3 once.
        assert ledger.screen(ids, labels.__getitem__, whole_rows=True) == [0, 6]
        assert [ledger.first_sight(q) for q in ("new", "r2", "r1", "f1", "r3")] == [
            True,
            True,
            False,
            True,
            False,
        ]
        assert ledger.is_done("f1") and ledger.is_done("r2") and not ledger.is_done("new")
        assert ledger.failure_recorded("in row 9") and not ledger.failure_recorded("in row 1")
        # A later batch: every ranked id has been seen now, nothing more is skipped.
        assert ledger.screen(["r1", "r2", "r3"], str, whole_rows=True) == []


def test_pairs_rows_of_a_ranked_query_are_skipped_all_or_none_across_batches():
    with QueryLedger() as ledger:
        ledger.load_ids(pa.array(["r1", "r2", "r3", "r4"]), QueryLedger.RANKED)
        # r1 straddles into the next batch; "n" is unfinished; None rows are never skipped.
        assert ledger.screen(["n", "r1", None, "r1"], str, whole_rows=False) == [1, 3]
        assert ledger.first_sight("n")
        assert ledger.screen(["r1", "r1", "n2", "r2"], str, whole_rows=False) == [0, 1, 3]
        assert ledger.first_sight("n2")
        # r2 goes on; r1 comes back after other queries: a stray, read (a duplicate).
        assert ledger.screen(["r2", "r1", "r2"], str, whole_rows=False) == [0]
        assert not ledger.first_sight("r1")
        assert ledger.is_done("r1") and not ledger.is_done("n")


def test_a_pairs_stretch_at_a_recorded_failure_is_read_and_so_are_its_strays():
    with QueryLedger() as ledger:
        ledger.load_ids(pa.array(["r1", "r2"]), QueryLedger.RANKED)
        ledger.load_sources(pa.array(["row 0"]))
        ids = ["r1", "r1", "r2", "r2"]
        assert ledger.screen(ids, lambda i: f"row {i}", whole_rows=False) == [2, 3]
        # r1 was read and not yet admitted: a later stretch of it is not skipped either.
        assert ledger.screen(["x", "r1"], lambda i: f"row {i + 4}", whole_rows=False) == []
        assert ledger.first_sight("r1")  # the read stretch is admitted (then is_done)


def test_pairs_rows_are_never_skipped_without_ranked_ids():
    with QueryLedger() as ledger:
        ledger.load_ids(pa.array(["f1"]), QueryLedger.FAILED)
        assert ledger.screen(["f1", "f1", "q"], str, whole_rows=False) == []
        assert ledger.first_sight("f1") and ledger.is_done("f1")


def test_rows_without_an_id_neither_end_nor_join_a_skipped_pairs_stretch():
    with QueryLedger() as ledger:
        ledger.load_ids(pa.array(["r1", "r2"]), QueryLedger.RANKED)
        assert ledger.screen([None, None, "r1", None], str, whole_rows=False) == [2]
        assert ledger.screen([None, "r1", "r2", None], str, whole_rows=False) == [1, 2]
        assert ledger.screen(["r2", "n", None, "r1"], str, whole_rows=False) == [0]
        assert ledger.first_sight("n") and not ledger.first_sight("r1")

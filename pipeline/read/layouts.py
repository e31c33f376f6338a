"""Turn row batches into `Query` records for the two layouts, validating every field.

grouped: one row per query, `documents` a list of strings or of `{id, text}` structs,
         optional `doc_ids`.
pairs:   one row per candidate, a query's rows contiguous. A query is complete when the
         next query id appears (or the input ends), so only one query is ever buffered.
         A query id that comes back after another query means the input is not grouped:
         an `InputError` (the job stops, exit 2) unless `input.allow_ungrouped`.

On resume, rows of queries an earlier run ranked are left unread in both layouts (see
`pipeline.ledger`). For pairs the screen decides per query, at its first row, and every
row of it goes, also those in the next batches: a query may straddle a batch, row group
or file boundary. The rows of a query left out are not assembled, but its place is kept
(`RowBatch.skipped`: its id and first row's label, between the kept rows): it still ends
the query before it and is checked for grouping like any other, so a later stray stretch
of its id stops the job as in a fresh run, or with `input.allow_ungrouped` is read and
fails as a duplicate. A Parquet batch whose every row is left out is never decoded
beyond its ids.

The id columns (`doc_ids` grouped, `doc_id` pairs) are optional under their default names;
a name the job gives them must exist, like every other column.

A row that cannot become a query is yielded as a `Failure` (stage "input") whose message
names the file, row and field; the job goes on with the next row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.config import DefaultName, InputConfig
from pipeline.ledger import QueryLedger
from pipeline.read.fields import (
    FieldProblem,
    documents,
    id_string,
    query_id,
    query_ids,
    query_text,
)
from pipeline.read.sources import (
    MISSING,
    InputError,
    RowBatch,
    jsonl_batches,
    parquet_batches,
    parquet_batches_skipping,
    resolve_sources,
)
from pipeline.records import Failure, Finished, Query
from pipeline.storage import Location, parquet_file

Item = Query | Failure | Finished
GROUPED_BATCH_ROWS = 128  # rows are whole candidate lists
PAIRS_BATCH_ROWS = 8192  # rows are single candidates


class IdScreen(Protocol):
    """Sees each row batch's query ids before its rows become items (`QueryLedger`)."""

    def may_skip(self) -> bool:
        """Could any row be left unread (an earlier run finished some queries)?"""
        ...

    def screen(
        self, ids: Sequence[str | None], label: Callable[[int], str], whole_rows: bool
    ) -> list[int]:
        """Positions of rows to leave unread; `whole_rows` is False when a row is only
        part of a query (pairs): then a query's rows are left out all or none, the
        decision carried over to the next batches while its rows go on."""
        ...


def open_input(cfg: InputConfig) -> InputReader:
    return InputReader(cfg, resolve_sources(cfg.path, cfg.format))


class InputReader:
    def __init__(self, cfg: InputConfig, sources: list[tuple[Location, str]]):
        self.cfg = cfg
        self.sources = sources
        c = cfg.columns
        self.batch_rows = cfg.batch_rows or (
            GROUPED_BATCH_ROWS if cfg.layout == "grouped" else PAIRS_BATCH_ROWS
        )
        if cfg.layout == "grouped":
            names = ("query_id", "query", "documents", "doc_ids")
            ids = c.doc_ids
        else:
            names = ("query_id", "query", "doc_id", "text")
            ids = c.doc_id
        self.columns = [getattr(c, n) for n in names]
        self.keys = {getattr(c, n): n for n in names}  # column -> its input.columns key
        # Only the default name is optional: a misspelled mapping must not silently number
        # the documents 0, 1, 2... (their ids would then match no judgment).
        self.optional: set[str] = {ids} if isinstance(ids, DefaultName) else set()

    def check(self) -> None:
        """Fail fast, before any request: every file opens and has the needed columns."""
        for path, fmt in self.sources:
            if fmt == "parquet":
                for _ in parquet_batches(path, self.columns, self.optional, 1, self.keys):
                    break
            else:
                self._check_jsonl_keys(path)

    def _check_jsonl_keys(self, path: Location, sample_rows: int = 100) -> None:
        """JSONL has no schema: a required key that none of the first rows has is a
        misnamed column (a clear error now), not thousands of per-row failures later."""
        seen: set[str] = set()
        keys: set[str] = set()
        parsed = 0
        for batch in jsonl_batches(path, self.columns, sample_rows, keys):
            for name, values in batch.columns.items():
                if any(v is not MISSING for v in values):
                    seen.add(name)
            parsed += len(batch)
            if parsed >= sample_rows or len(batch) + len(batch.bad_rows) < sample_rows:
                break
        if not parsed:
            return  # nothing parseable here: each bad line becomes a failure row
        required = [c for c in self.columns if c not in self.optional]
        missing = [c for c in required if c not in seen]
        if missing:
            key = f"input.columns.{self.keys[missing[0]]}"
            raise InputError(
                f"{path}: no key {missing[0]!r} for {key} in the first {parsed} rows (their "
                f"keys are {', '.join(sorted(keys)) or 'none'}); set {key} to the key your "
                "rows use"
            )

    def count_queries(self) -> int | None:
        """Queries in the input when cheap to know (grouped Parquet: footer row counts)."""
        if self.cfg.layout != "grouped" or any(fmt != "parquet" for _, fmt in self.sources):
            return None

        return sum(parquet_file(path).metadata.num_rows for path, _ in self.sources)

    def row_batches(self, screen: IdScreen | None = None) -> Iterator[RowBatch]:
        whole = self.cfg.layout == "grouped"
        qid = self.cfg.columns.query_id
        skipping = screen is not None and screen.may_skip()
        # pairs: the last row id screened, over batches and files (a query's rows may go on
        # into the next batch), to tell a skipped query's first row from its continuation.
        stretches = _Stretches()
        marks: list[tuple[int, str, str]] = []

        def skip(values: list, label: Callable[[int], str]) -> list[int]:
            assert screen is not None
            ids = query_ids(values)
            gone = screen.screen(ids, label, whole)
            marks[:] = [] if whole else stretches.starts(ids, gone, label)
            return gone

        for path, fmt in self.sources:
            if fmt == "parquet" and skipping:
                for batch in parquet_batches_skipping(
                    path, self.columns, self.optional, self.batch_rows, qid, skip, self.keys
                ):
                    batch.skipped = list(marks)  # `skip` ran for this batch's rows
                    yield batch
                continue
            if fmt == "parquet":
                batches = parquet_batches(
                    path, self.columns, self.optional, self.batch_rows, self.keys
                )
            else:
                batches = jsonl_batches(path, self.columns, self.batch_rows)
            for batch in batches:
                if screen is not None:
                    ids = query_ids(batch.columns[qid])
                    gone = screen.screen(ids, batch.labels.__getitem__, whole)
                    starts = [] if whole else stretches.starts(ids, gone, batch.labels.__getitem__)
                    if gone:
                        batch = batch.without(gone)
                        batch.skipped = starts
                yield batch

    def batches(self, screen: IdScreen | None = None) -> Iterator[list[Item]]:
        """Yield lists of queries and input failures, in input order.

        With a `screen`, each batch's ids are shown to it first, and the rows it names
        arrive only as a count (`Finished`): they are neither validated nor converted."""
        if self.cfg.layout == "grouped":
            for batch in self.row_batches(screen):
                done: list[Item] = [Finished(batch.finished)] if batch.finished else []
                yield done + _bad_rows(batch) + [self._grouped(batch, i) for i in range(len(batch))]
        else:
            with QueryLedger() as started:
                group = PairsGroup(started)
                for batch in self.row_batches(screen):
                    out = _bad_rows(batch)
                    if batch.skipped:
                        out.append(Finished(len(batch.skipped)))  # one per query left out
                    marks = iter(batch.skipped)
                    mark = next(marks, None)
                    for i in range(len(batch) + 1):
                        # A query left out still ends the one before it and is checked
                        # for grouping like any other, at the place its rows were.
                        while mark is not None and mark[0] == i:
                            out.extend(self._next_query(mark[1], mark[2], group, skipped=True))
                            mark = next(marks, None)
                        if i < len(batch):
                            out.extend(self._pairs_row(batch, i, group))
                    yield out
                last = group.finish()
                if last is not None:
                    yield [last]

    # -- grouped ---------------------------------------------------------------------
    def _grouped(self, batch: RowBatch, i: int) -> Item:
        c = self.cfg.columns
        label = batch.labels[i]
        try:
            qid = query_id(batch.columns[c.query_id][i], c.query_id, label)
        except FieldProblem as p:
            return Failure(None, label, "input", p.error, str(p))
        try:
            text = query_text(batch.columns[c.query][i], c.query, label)
            docs, ids = documents(batch, i, c.documents, c.doc_ids, label)
        except FieldProblem as p:
            return Failure(qid, label, "input", p.error, str(p))
        return Query(qid, text, docs, ids, label)

    # -- pairs -----------------------------------------------------------------------
    def _next_query(
        self, qid: str, label: str, group: PairsGroup, skipped: bool = False
    ) -> list[Item]:
        """End the query being assembled and start `qid` at row `label`; `skipped`: its
        rows are left out unread (an earlier run ranked it), nothing will be assembled."""
        done = group.finish()
        if not group.started.first_sight(qid) and not self.cfg.allow_ungrouped:
            raise InputError(
                f"input is not grouped by query_id: sort it ({label}: query_id {qid!r} "
                "comes back after other queries). Its earlier rows may have been ranked "
                "as a query of their own: after sorting, run with --overwrite. Or set "
                "input.allow_ungrouped = true to keep each later occurrence as a failure "
                "row instead"
            )
        group.start(qid, label, skipped)
        return [] if done is None else [done]

    def _pairs_row(self, batch: RowBatch, i: int, group: PairsGroup) -> list[Item]:
        c = self.cfg.columns
        label = batch.labels[i]
        try:
            qid = query_id(batch.columns[c.query_id][i], c.query_id, label)
        except FieldProblem as p:
            return [Failure(None, label, "input", p.error, str(p))]
        out: list[Item] = []
        if qid != group.query_id:
            out = self._next_query(qid, label, group)
        if group.problem is not None:
            return out  # the query already failed; its remaining rows add nothing
        try:
            if not group.documents:
                group.text = query_text(batch.columns[c.query][i], c.query, label)
            doc = batch.columns[c.text][i]
            if doc is MISSING or doc is None:
                raise FieldProblem("missing_field", f"{label}: field {c.text!r} is missing or null")
            if not isinstance(doc, str):
                raise FieldProblem(
                    "not_text", f"{label}: field {c.text!r} is {type(doc).__name__}, not text"
                )
            doc_id_col = batch.columns.get(c.doc_id)
            raw_id = doc_id_col[i] if doc_id_col is not None else MISSING
            if raw_id is MISSING or raw_id is None:
                doc_id = str(len(group.documents))
            else:
                doc_id = id_string(raw_id, c.doc_id, label)
            if doc_id in group.id_set:
                raise FieldProblem(
                    "duplicate_doc_id", f"{label}: duplicate {c.doc_id} {doc_id!r} in query {qid!r}"
                )
        except FieldProblem as p:
            group.problem = p
            return out
        group.documents.append(doc)
        group.doc_ids.append(doc_id)
        group.id_set.add(doc_id)
        return out


@dataclass(slots=True)
class PairsGroup:
    """The one query being assembled from contiguous pairs rows."""

    # Every query id started so far (a pairs input must be grouped): an on-disk ledger of
    # its own, so a pairs input of any size holds no Python object per query.
    started: QueryLedger
    query_id: str | None = None
    source: str = ""
    text: str = ""
    documents: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    id_set: set[str] = field(default_factory=set)
    problem: FieldProblem | None = None
    skipped: bool = False  # its rows are left out unread (resume): nothing to assemble

    def start(self, qid: str, label: str, skipped: bool = False) -> None:
        self.query_id, self.source, self.text = qid, label, ""
        self.documents, self.doc_ids, self.id_set, self.problem = [], [], set(), None
        self.skipped = skipped

    def finish(self) -> Item | None:
        """The query assembled so far (None: none, or one left out unread)."""
        if self.query_id is None or self.skipped:
            return None
        if self.problem is not None:
            return Failure(
                self.query_id, self.source, "input", self.problem.error, str(self.problem)
            )
        return Query(self.query_id, self.text, self.documents, self.doc_ids, self.source)


class _Stretches:
    """Which rows a pairs screen left out begin a query (rather than continue the one
    the previous batch ended with): the last row id seen is carried over batches."""

    def __init__(self) -> None:
        self.last: str | None = None

    def starts(
        self, ids: list[str | None], gone: list[int], label: Callable[[int], str]
    ) -> list[tuple[int, str, str]]:
        """(kept rows before it, id, label) for each left-out row that begins a query."""
        marks = []
        for k, p in enumerate(gone):
            qid = ids[p]
            assert qid is not None  # a row without a usable id is never left out
            before = p - 1
            while before >= 0 and ids[before] is None:
                before -= 1
            if (ids[before] if before >= 0 else self.last) != qid:
                marks.append((p - k, qid, label(p)))
        for q in reversed(ids):
            if q is not None:
                self.last = q
                break
        return marks


def _bad_rows(batch: RowBatch) -> list[Item]:
    return [
        Failure(None, label, "input", "unparseable_row", f"{label}: {msg}")
        for label, msg in batch.bad_rows
    ]

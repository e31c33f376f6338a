"""Field checks shared by both layouts: each value of a row made a string (ids, query
text) or a list of documents, or a `FieldProblem` naming the file, row and field.

    >>> query_id(7, "query_id", "in.jsonl line 3")
    '7'
    >>> query_id(None, "query_id", "in.jsonl line 3")
    Traceback (most recent call last):
    ...
    pipeline.read.fields.FieldProblem: in.jsonl line 3: field 'query_id' is missing or null
"""

from __future__ import annotations

from pipeline.read.sources import MISSING, RowBatch


class FieldProblem(Exception):
    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error


def id_string(value: object, name: str, label: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FieldProblem(
        "bad_id", f"{label}: field {name!r} must be a string or integer, got {type(value).__name__}"
    )


def query_ids(values: list) -> list[str | None]:
    """Raw query_id values as `query_id` would accept them (None where it would not)."""
    return [
        v if type(v) is str and v.strip() else str(v) if type(v) is int else None for v in values
    ]


def query_id(value: object, name: str, label: str) -> str:
    if value is MISSING or value is None:
        raise FieldProblem("missing_field", f"{label}: field {name!r} is missing or null")
    qid = id_string(value, name, label)
    if not qid.strip():
        raise FieldProblem("missing_field", f"{label}: field {name!r} is empty")
    return qid


def query_text(value: object, name: str, label: str) -> str:
    if value is MISSING or value is None:
        raise FieldProblem("missing_field", f"{label}: field {name!r} is missing or null")
    if not isinstance(value, str):
        raise FieldProblem(
            "not_text", f"{label}: field {name!r} is {type(value).__name__}, not text"
        )
    if not value.strip():
        raise FieldProblem("empty_query", f"{label}: field {name!r} is empty")
    return value


def documents(
    batch: RowBatch, i: int, docs_name: str, ids_name: str, label: str
) -> tuple[list[str], list[str]]:
    raw = batch.columns[docs_name][i]
    if raw is MISSING or raw is None:
        raise FieldProblem("missing_field", f"{label}: field {docs_name!r} is missing or null")
    if not isinstance(raw, list):
        raise FieldProblem(
            "not_a_list", f"{label}: field {docs_name!r} must be a list, got {type(raw).__name__}"
        )
    if not raw:
        raise FieldProblem("no_candidates", f"{label}: field {docs_name!r} is an empty list")
    ids_col = batch.columns.get(ids_name)
    given_ids = ids_col[i] if ids_col is not None else MISSING
    if given_ids is not MISSING and given_ids is not None:
        if not isinstance(given_ids, list) or len(given_ids) != len(raw):
            raise FieldProblem(
                "bad_doc_ids",
                f"{label}: field {ids_name!r} must be a list as long as {docs_name!r} ({len(raw)})",
            )
    else:
        given_ids = None
    # Fast path, the common case: every document a string, ids absent or all strings. The
    # lists from to_pylist are used as they are, checked by type sets at C speed.
    if set(map(type, raw)) == _STR and (given_ids is None or set(map(type, given_ids)) == _STR):
        docs, ids = raw, (given_ids if given_ids is not None else list(map(str, range(len(raw)))))
    else:
        docs, ids = documents_slow(raw, given_ids, docs_name, label)
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(x for x in ids if x in seen or _remember(seen, x))
        raise FieldProblem("duplicate_doc_id", f"{label}: duplicate document id {dup!r}")
    return docs, ids


_STR = {str}


def _remember(seen: set[str], value: str) -> bool:
    seen.add(value)
    return False


def documents_slow(
    raw: list, given_ids: list | None, docs_name: str, label: str
) -> tuple[list[str], list[str]]:
    docs: list[str] = []
    ids: list[str] = []
    for pos, doc in enumerate(raw):
        doc_id = None
        if isinstance(doc, dict):
            doc_id = doc.get("id")
            doc = doc.get("text")
        if not isinstance(doc, str):
            kind = "null" if doc is None else type(doc).__name__
            raise FieldProblem(
                "not_text", f"{label}: field {docs_name!r}[{pos}] is {kind}, not text"
            )
        if given_ids is not None:
            doc_id = given_ids[pos]
        ids.append(
            str(pos) if doc_id is None else id_string(doc_id, f"{docs_name}[{pos}].id", label)
        )
        docs.append(doc)
    return docs, ids

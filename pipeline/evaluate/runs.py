"""Rankings to evaluate: TREC run files in and out.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "bm25.run"
>>> _ = path.write_text("q1 Q0 d1 1 2.5 bm25\\nq1 Q0 d2 2 2.5 bm25\\n")
>>> run = read_trec_run(path)
>>> run.system, run.docs["q1"]  # tie on 2.5: trec_eval puts the larger doc_id first
('bm25', ['d2', 'd1'])

A run file is ``qid Q0 docid rank score tag`` (whitespace separated, extra
fields ignored). Like trec_eval, the order comes from the score (descending,
ties by doc_id descending) and the rank column is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.evaluate.errors import EvalInputError, open_text
from pipeline.evaluate.metrics import trec_eval_order


@dataclass(slots=True)
class RankedRun:
    """One system's ranking: ``docs[query_id]`` best first, ``scores`` parallel to it.

    ``scores`` are the values written to a TREC run file; they always reproduce
    ``docs`` under trec_eval's ordering.
    """

    system: str
    source: str
    docs: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def num_rows(self) -> int:
        return sum(len(docs) for docs in self.docs.values())


def parse_score(text: str, where: str) -> float:
    try:
        score = float(text)
    except ValueError:
        raise EvalInputError(f"{where}: field 'score' is {text!r}, not a number") from None
    if math.isnan(score):
        raise EvalInputError(f"{where}: field 'score' is NaN; a ranking needs comparable scores")
    return score


def read_trec_run(path: Path | str, system: str | None = None) -> RankedRun:
    """Read a TREC run file; ``system`` defaults to the tag (6th field) of its first line."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"run file not found: {path}")
    scored: dict[str, list[tuple[str, float]]] = {}
    seen: dict[tuple[str, str], int] = {}
    tags: dict[str, int] = {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{path} line {number}"
            if len(fields) < 6:
                raise EvalInputError(
                    f"{where}: expected 6 fields 'query_id Q0 doc_id rank score tag', "
                    f"got {len(fields)}: {line.strip()!r}"
                )
            query_id, _q0, doc_id, _rank, score_text, tag = fields[:6]
            score = parse_score(score_text, where)
            if (query_id, doc_id) in seen:
                raise EvalInputError(
                    f"{where}: doc {doc_id!r} already ranked for query {query_id!r} on line "
                    f"{seen[(query_id, doc_id)]} (trec_eval refuses duplicate documents too)"
                )
            seen[(query_id, doc_id)] = number
            tags.setdefault(tag, number)
            scored.setdefault(query_id, []).append((doc_id, score))
    if not scored:
        raise EvalInputError(f"{path}: no run lines found")
    first_tag = min(tags, key=tags.get)
    run = RankedRun(system=system or first_tag, source=str(path))
    if len(tags) > 1:
        others = ", ".join(repr(t) for t in sorted(tags) if t != first_tag)
        run.warnings.append(
            f"{path}: several run tags ({others} besides {first_tag!r}); all lines evaluated as {run.system!r}"
        )
    for query_id, pairs in scored.items():
        score_of = dict(pairs)
        ranked = trec_eval_order(pairs)
        run.docs[query_id] = ranked
        run.scores[query_id] = [score_of[doc] for doc in ranked]
    return run


def write_trec_run(run: RankedRun, path: Path, tag: str | None = None) -> None:
    """Write ``qid Q0 docid rank score tag`` lines, queries in sorted order.

    ``repr`` keeps every float exact, so trec_eval reads back the same order.
    """
    tag = tag or run.system
    lines = []
    for query_id in sorted(run.docs):
        for rank, (doc_id, score) in enumerate(
            zip(run.docs[query_id], run.scores[query_id], strict=True), start=1
        ):
            lines.append(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n")
    path.write_text("".join(lines), encoding="utf-8")


def scores_reproduce_order(docs: list[str], scores: list[float]) -> bool:
    """True when trec_eval, sorting by these scores, gets exactly ``docs``."""
    return trec_eval_order(zip(docs, scores, strict=True)) == docs

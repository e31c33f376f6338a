"""The end-of-run table's failure lines: why queries failed, by error kind.

    >>> print("\\n".join(format_failures([
    ...     FailureKind("http_503", 2, 2, "chunk 0 (8 documents): HTTP 503: overloaded"),
    ...     FailureKind("http_400", 1, 0, "chunk 0 (3 documents): HTTP 400: bad query"),
    ... ], "out/x")))
    failures  3 queries in out/x/failures/; by error, with one sample message:
      http_503  2  retryable      chunk 0 (8 documents): HTTP 503: overloaded
      http_400  1  not retryable  chunk 0 (3 documents): HTTP 400: bad query
    retry     2 of them retryable (transient errors): the same command with --retry-failed runs them again

Read from the committed failures/ parts, so a resumed job counts what earlier runs into
the directory failed too: the exit status (1) is about the whole directory, and so is this.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.storage import Location, parquet_file
from pipeline.write import committed_parts

SAMPLE_CHARS = 110  # one terminal line, near enough


@dataclass(slots=True)
class FailureKind:
    error: str  # failures/ `error`: http_503, connection, document_too_long...
    count: int
    retryable: int  # how many of them --retry-failed would run again
    sample: str  # the first message of that kind


def failure_kinds(out_dir: Location) -> list[FailureKind]:
    """The failures/ rows of `out_dir` by error kind, most frequent first."""
    kinds: dict[str, FailureKind] = {}
    for part in committed_parts(out_dir)["failures"]:
        columns = ["error", "message", "retryable"]
        for batch in parquet_file(part).iter_batches(batch_size=65_536, columns=columns):
            errors, messages, retryable = (batch.column(c).to_pylist() for c in columns)
            for error, message, again in zip(errors, messages, retryable, strict=True):
                kind = kinds.get(error)
                if kind is None:
                    kind = kinds[error] = FailureKind(error, 0, 0, message or "")
                kind.count += 1
                kind.retryable += bool(again)
    return sorted(kinds.values(), key=lambda k: (-k.count, k.error))


def format_failures(kinds: list[FailureKind], out_dir: str, earlier: int = 0) -> list[str]:
    """The table's lines; `earlier`: how many of the failures earlier runs left."""
    total = sum(k.count for k in kinds)
    width = max(len(k.error) for k in kinds)
    digits = len(f"{max(k.count for k in kinds):,}")
    before = f", {earlier:,} from earlier runs" if earlier > 0 else ""
    lines = [
        f"failures  {total:,} queries in {out_dir}/failures/{before}; by error, "
        "with one sample message:"
    ]
    for k in kinds:
        if k.retryable == k.count:
            again = "retryable"
        else:
            again = f"{k.retryable:,} retryable" if k.retryable else "not retryable"
        sample = " ".join(k.sample.split())
        if len(sample) > SAMPLE_CHARS:
            sample = sample[: SAMPLE_CHARS - 1] + "…"
        lines.append(f"  {k.error:<{width}}  {k.count:>{digits},}  {again:<13}  {sample}")
    retryable = sum(k.retryable for k in kinds)
    if retryable:
        them = "it" if retryable == 1 else "them"
        lines.append(
            f"retry     {retryable:,} of them retryable (transient errors): the same command "
            f"with --retry-failed runs {them} again"
        )
    else:
        lines.append(
            "retry     none is retryable (--retry-failed runs only transient errors again): "
            "fix the input or the job"
        )
    return lines

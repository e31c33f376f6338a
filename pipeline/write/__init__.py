"""Stage 6, write: results, usage and failures as Parquet part files, committed in steps.

    writer = OutputWriter(Path("out"), include_text=False)
    writer.add_ranked(query, ranking); writer.add_usage(record); writer.add_failure(failure)
    await writer.maybe_flush()   # every flush_rows rows (per dataset) or flush_seconds seconds
    await writer.close(compact=True)  # the end of a job: small parts merged (see compact)

A flush is a commit: each dataset's buffered rows go to a temporary hidden file, which is
fsynced and renamed to `part-NNNNNN-RUN.parquet`; only then is one line appended (and
fsynced) to `_manifest.jsonl` naming the parts. A part that no manifest line names was cut
off by a crash and is ignored and removed by the next run, so a half-written file is never
read and a query is never counted twice. Readers may use
`polars.scan_parquet("OUT/results/*.parquet")` at any time: hidden temp files do not match.

At the end of a job, small parts are merged into parts of tens of MB (`compact`); each
merged part is published by one manifest line that `"replaces"` the small ones, which
are deleted right after. Between that line and the deletes (milliseconds, or until the
next run if a crash falls there) a folder glob sees both: `committed_parts(OUT)` never does.

On an object store (`output.dir = "s3://..."`, `pipeline.storage`) a part is PUT to its
final key (whole or not at all) and committed when `_manifest.jsonl`, rewritten whole in
one PUT, names it; see `manifest`.
"""

from pipeline.write.parts import DATASETS, OutputWriter, committed_parts, drop_retryable_failures

__all__ = ["DATASETS", "OutputWriter", "committed_parts", "drop_retryable_failures"]

"""How a run ended: its status word (summary.json), exit code and closing message.

Exit codes: 0 every query ranked; 1 some failed (in this run or an earlier one into the
same output directory); 2 the input became unreadable or the output unwritable mid-run;
3 the API refused the key; 4 the endpoint is unusable (the breaker tripped:
`pipeline.call.breaker`); 130 interrupted. Every stop but a 401/403 keeps finished work,
and the job resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.accounting.stats import JobStats
from pipeline.errors import EndpointUnusable

EXIT_OK, EXIT_SOME_FAILED, EXIT_SETUP, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_ENDPOINT = 4


@dataclass(slots=True)
class Outcome:
    exit_code: int
    stats: JobStats
    message: str = ""
    summary: dict | None = None


def run_status(
    *,
    fatal: BaseException | None,
    input_error: BaseException | None,
    interrupted: bool,
    output_error: BaseException | None = None,
) -> str:
    if output_error is not None:
        return "output_error"
    if isinstance(fatal, EndpointUnusable):
        return "endpoint_unusable"
    if fatal is not None:
        return "auth_error"
    if input_error is not None:
        return "input_error"
    return "interrupted" if interrupted else "complete"


def outcome_of(
    stats: JobStats,
    summary: dict,
    *,
    fatal: BaseException | None,
    input_error: BaseException | None,
    interrupted: bool,
    failed_total: int,
    output_error: BaseException | None = None,
) -> Outcome:
    if output_error is not None:
        return Outcome(
            EXIT_SETUP,
            stats,
            f"error: {output_error}; the work committed before is saved: fix the output "
            "directory (or free space) and run the same command again to resume",
            summary,
        )
    if input_error is not None:
        return Outcome(
            EXIT_SETUP,
            stats,
            f"error: {input_error}\nfinished work is saved; fix the input and run "
            "the same command again to resume",
            summary,
        )
    if isinstance(fatal, EndpointUnusable):
        return Outcome(
            EXIT_ENDPOINT,
            stats,
            f"stopped: {fatal}\nfinished work is saved; fix the endpoint and run the same "
            "command again to resume",
            summary,
        )
    if fatal is not None:
        return Outcome(EXIT_AUTH, stats, f"stopped: {fatal}", summary)
    if interrupted:
        return Outcome(
            EXIT_INTERRUPTED,
            stats,
            "interrupted: finished work is saved; run the same command again to resume",
            summary,
        )
    if not stats.accounted_for():
        return Outcome(
            EXIT_SOME_FAILED, stats, "internal error: not every query was accounted for", summary
        )
    # The status describes the whole output directory, earlier (resumed) runs included.
    # An empty input is not an error (a nightly export may be empty), but it is said.
    empty = "" if stats.queries_read else "warning: the input held no queries: nothing was sent"
    return Outcome(EXIT_SOME_FAILED if failed_total else EXIT_OK, stats, empty, summary)

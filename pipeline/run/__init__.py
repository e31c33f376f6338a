"""Running a job: read -> chunk -> limit -> call -> merge -> write, with accounting beside.

    job = prepare_job(load_job("jobs/sample.toml"))   # every pre-flight check; nothing sent
    outcome = asyncio.run(run_job(job))                # or run_job(job, transport=...)

- `settings`: the request shape, resolved once from the job and its provider (`estimate`
  plans from it too);
- `admission`: what becomes of one input item: failed, skipped (done earlier), or planned
  into chunks (`estimate` admits through it too);
- `prepare`: the pre-flight checks, input, output directory and resume, in order;
- `queries`: the `QueryBook`, each query from admission to written or failed, the
  counters and rows that go with it, and the one translation of a failed request;
- `engine`: the asyncio engine (producer, workers, final passes, stopping);
- `runner`: wires the parts, runs the engine, writes summary.json, returns an `Outcome`.

Another engine drives the same `QueryBook` and `RerankClient` with its own scheduling; a
stage between admission and sending (a score cache) changes what `admit` plans and what
the book merges, not the engine.
"""

from pipeline.run.admission import Admitted, admit
from pipeline.run.outcome import (
    EXIT_AUTH,
    EXIT_ENDPOINT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_SOME_FAILED,
    Outcome,
)
from pipeline.run.prepare import PreparedJob, prepare_job
from pipeline.run.runner import run_job
from pipeline.run.settings import RunSettings, resolve_settings

__all__ = [
    "EXIT_AUTH",
    "EXIT_ENDPOINT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SETUP",
    "EXIT_SOME_FAILED",
    "Admitted",
    "Outcome",
    "PreparedJob",
    "RunSettings",
    "admit",
    "prepare_job",
    "resolve_settings",
    "run_job",
]

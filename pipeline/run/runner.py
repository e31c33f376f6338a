"""The runner: one prepared job, wired from its parts, run, and summed up.

    job = prepare_job(cfg)                              # pipeline.run.prepare
    outcome = await run_job(job)                        # the job's own transport
    outcome = await run_job(job, transport=my_transport)  # a test's, a benchmark's

The parts: the `OutputWriter`, the `Limits`, a `RerankClient` over the transport (with the
job's `EndpointBreaker`), the
`QueryBook` (admission to written or failed) and the `AsyncEngine` that moves chunks
between them. A transport handed in stays the caller's to close; one opened here is closed
here. The end: summary.json (`pipeline.accounting.summary`) and an `Outcome`.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.accounting.stats import JobStats
from pipeline.accounting.summary import job_summary, write_summary
from pipeline.cache.summary import run_block
from pipeline.call.breaker import EndpointBreaker
from pipeline.call.client import RerankClient
from pipeline.call.http import HttpTransport
from pipeline.config import JobConfig
from pipeline.errors import InputError, OutputError
from pipeline.limit import Limits
from pipeline.progress import Progress
from pipeline.providers.local import LocalTransport
from pipeline.run.engine import AsyncEngine
from pipeline.run.outcome import Outcome, outcome_of, run_status
from pipeline.run.prepare import PreparedJob
from pipeline.run.queries import QueryBook
from pipeline.run.stopping import StopControl
from pipeline.transport import Transport
from pipeline.write import OutputWriter


def open_transport(job: PreparedJob) -> Transport:
    """The job's own transport: in process for `local`, else HTTP to its URL."""
    return make_transport(job.cfg, job.url, job.key)


def make_transport(cfg: JobConfig, url: str, key: str | None) -> Transport:
    """A transport for the job (a Ray client actor opens its own with this)."""
    if cfg.provider.kind == "local":
        return LocalTransport(cfg.provider.model)
    lim, provider = cfg.limits, cfg.provider
    return HttpTransport(
        url,
        key,
        lim.max_concurrency,
        lim.timeout_s,
        lim.connect_timeout_s,
        key_header=provider.api_key_header,
        key_scheme=provider.api_key_scheme,
        ca_bundle=provider.ca_bundle,
    )


async def run_job(
    job: PreparedJob, *, transport: Transport | None = None, quiet: bool = False
) -> Outcome:
    """Run a prepared job to its end (or a stop) and write summary.json."""
    if job.cfg.engine.kind == "ray":
        from pipeline.run.ray_engine import run_on_ray  # Ray is an optional extra

        return await run_on_ray(job, quiet=quiet)
    cfg, lim = job.cfg, job.cfg.limits
    stats = JobStats()
    progress = Progress(stats, total=job.reader.count_queries(), quiet=quiet)
    out = cfg.output
    writer = OutputWriter(
        job.out_dir,
        out.include_text,
        out.flush_rows,
        out.flush_seconds,
        final_pass=lim.final_pass,
    )
    limits = await Limits.create(
        lim.max_concurrency, lim.requests_per_minute, lim.tokens_per_minute
    )
    own = transport is None
    wire = open_transport(job) if transport is None else transport
    secrets = [job.key] if job.key else []
    breaker = EndpointBreaker(
        wire.url,
        failures=lim.breaker_failures,
        seconds=lim.breaker_seconds,
        key_env=job.key_env,
        kind=cfg.provider.kind,
        secrets=secrets,
    )
    client = RerankClient(
        job.settings.adapter,
        wire,
        limits,
        stats,
        model=job.model,
        key_env=job.key_env,
        secrets=secrets,
        max_attempts=lim.max_attempts,
        max_retry_wait_s=lim.max_retry_wait_s,
        max_retry_time_s=lim.max_retry_time_s,
        breaker=breaker,
        timeout_s=lim.timeout_s,
        connect_timeout_s=lim.connect_timeout_s,
    )
    book = QueryBook(
        job.settings, stats, writer, progress, job.resume, job.cache, job.resume.ledger
    )
    engine = AsyncEngine(
        job.reader,
        book,
        client,
        writer,
        progress,
        workers=lim.max_concurrency,
        flush_seconds=out.flush_seconds,
    )
    try:
        await engine.run()
    finally:
        if own:
            await wire.close()
        progress.close()
        try:
            # A stopped run leaves compaction to the run that finishes the job.
            await writer.close(compact=not engine.stop.stopping)
        except OutputError as exc:  # the last try failed too: the run ends with it
            engine.output_error = engine.output_error or exc
        finally:
            job.resume.ledger.close()  # its temporary database goes with it
        if job.cache is not None:
            job.cache.close()  # stores what is queued: its counts are final below
    return finish(job, stats, engine, book.in_flight, {"kind": "local"})


class Stopped(Protocol):
    """How an engine ended (`AsyncEngine`, `RayEngine`)."""

    stop: StopControl
    input_error: InputError | None
    output_error: OutputError | None


def finish(
    job: PreparedJob, stats: JobStats, engine: Stopped, in_flight: int, engine_block: dict
) -> Outcome:
    """summary.json (its `engine` block names the engine that ran) and the outcome."""
    settings, stop = job.settings, engine.stop
    provider = {
        "kind": job.cfg.provider.kind,
        "model": job.model,
        "url": job.url,
        "billing": settings.adapter.spec.billing,
        "listwise": settings.profile.listwise,
        "final_pass": bool(settings.final_window),
    }
    fatal, input_error, interrupted = stop.fatal, engine.input_error, stop.stopping
    output_error: BaseException | None = engine.output_error
    summary = job_summary(
        stats,
        provider,
        job.cfg.pricing,
        status=run_status(
            fatal=fatal,
            input_error=input_error,
            interrupted=interrupted,
            output_error=output_error,
        ),
        in_flight=in_flight,
        ranked_earlier=job.resume.ranked_earlier,
        failed_earlier=job.resume.failed_earlier,
    )
    summary["engine"] = engine_block
    if job.cache is not None:
        summary["cache"] = run_block(
            job.cache, summary, job.cfg.provider.kind, job.model, job.cfg.pricing
        )
    try:
        write_summary(job.out_dir, summary)
    except OSError as exc:  # the disk that failed a part may fail this too
        note = f"summary.json not written ({exc.strerror})"
        output_error = OutputError(f"{output_error}; {note}" if output_error else note)
    return outcome_of(
        stats,
        summary,
        fatal=fatal,
        input_error=input_error,
        interrupted=interrupted,
        failed_total=job.resume.failed_earlier + stats.queries_failed,
        output_error=output_error,
    )

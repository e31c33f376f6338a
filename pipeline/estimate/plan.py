"""Plan a job's requests exactly as a run would, send nothing, and add up the bill.

    >>> from pipeline.config import load_job_text
    >>> cfg = load_job_text('[input]\\npath = "sample_data/candidates.parquet"\\n'
    ...                     '[provider]\\nkind = "local"\\n[output]\\ndir = "out/x"\\n')
    >>> est = estimate_job(cfg)
    >>> est.queries, est.requests, est.cost_usd
    (36, 67, 0.0)

The plan is the runner's own: `pipeline.read` streams the input, and each item goes
through `pipeline.run.admit` with the job's `RunSettings`, exactly as in a run, so
`requests` is what the run would send, final-pass requests of listwise models included
(an estimate: which documents lead is known only after scoring). With a `[cache]`, the
cache is consulted read-only, as the run would, so only the pairs it does not hold are
planned and priced; `cache` reports the hit rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pipeline.accounting.cost import Billing, cost_usd, job_billing, search_units, token_units
from pipeline.cache import CacheCounters, ScoreCache, check_pointwise, open_cache
from pipeline.cache.summary import cache_block
from pipeline.chunk import estimate_tokens
from pipeline.config import JobConfig
from pipeline.estimate.calibrate import Calibration
from pipeline.estimate.timing import time_estimate
from pipeline.ledger import QueryLedger
from pipeline.read import open_input
from pipeline.records import Chunk, Finished, Query
from pipeline.run.admission import Admitted, admit
from pipeline.run.settings import RunSettings, resolve_settings


@dataclass(slots=True)
class Estimate:
    """What `estimate` reports; written as OUTDIR/estimate.json (None -> null)."""

    queries: int = 0  # queries that would be sent
    documents: int = 0
    requests: int = 0
    input_failures: int = 0  # rows a run would record in failures/ without a request
    tokens: int | None = None  # best figure: calibrated > tokenizer > heuristic
    search_units: float | None = None  # Cohere only: null for other billing
    cost_usd: float | None = None  # null when the price is unknown, never 0 for that
    seconds: float | None = None  # the time the binding limit implies; null when none applies
    binding_limit: str | None = None
    seconds_by_limit: dict[str, float] = field(default_factory=dict)
    tokens_heuristic: int = 0  # the runner's own estimate (what tokens_per_minute meters)
    tokens_tokenizer: int | None = None
    search_units_rule: int | None = None  # by the 500-token rule (see accounting.cost)
    search_units_per_request: int | None = None  # ceil(documents / 100) per request
    billing: str = "tokens"
    price: str = ""
    provider: dict = field(default_factory=dict)
    calibration: dict | None = None
    latency_ms: float | None = None
    elapsed_seconds: float = 0.0
    cache: dict | None = None  # with [cache]: pairs, from_cache, sent, hit_rate, saved

    def to_json(self) -> dict:
        return asdict(self)


def estimate_job(
    cfg: JobConfig,
    *,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    calibration: Calibration | None = None,
    latency_ms: float | None = None,
) -> Estimate:
    """Plan every request of `cfg` without sending one.

    `count_tokens`: texts -> token counts (a `TokenizerCounter`); None uses the heuristic.
    `calibration`: ratios from an earlier run's usage/ of the same provider.
    `latency_ms`: typical latency of one request; else the calibration run's mean.
    """
    started = time.monotonic()
    settings = resolve_settings(cfg)
    billing = job_billing(cfg.provider.kind, cfg.provider.model, cfg.pricing)
    est = Estimate(
        billing=billing.basis,
        price=billing.describe(),
        provider={"kind": cfg.provider.kind, "model": billing.model},
    )
    counted = 0
    units_rule = units_per_request = 0
    seen = QueryLedger()  # on disk: flat memory however many queries (see pipeline.ledger)
    reader = open_input(cfg.input)
    reader.check()
    cache = _open_cache(cfg, settings, billing)
    for batch in reader.batches(seen):
        for item in batch:
            if isinstance(item, Finished):  # only a resume skips finished rows
                continue
            admitted = admit(item, settings, seen, cache=cache)
            if not isinstance(admitted, Admitted) or admitted.failure is not None:
                est.input_failures += 1  # rows a run records in failures/ without a request
                continue
            query, chunks = admitted.query, admitted.chunks
            est.queries += 1
            est.documents += len(query.documents)
            est.requests += len(chunks)
            est.tokens_heuristic += sum(c.estimated_tokens for c in chunks)
            per_doc = None
            if count_tokens is not None:
                q_tok, *per_doc = count_tokens([query.text, *query.documents])
                counted += token_units(q_tok, _sent(per_doc, chunks))
            if billing.basis == "search_units":
                if per_doc is None:
                    q_tok, per_doc = estimate_tokens(query.text), admitted.doc_tokens
                for c in chunks:
                    units_rule += search_units(
                        q_tok,
                        _sent(per_doc, [c]),
                        billing.docs_per_unit,
                        billing.tokens_per_document,
                    )
                    units_per_request += -(-c.n_docs // billing.docs_per_unit)
            if settings.final_window and len(chunks) > 1:
                _add_final_pass(est, query, settings.final_window, chunks)
    seen.close()
    if cfg.cache.path is not None:
        est.cache = _cache_result(cfg, cache, billing, est)
    if count_tokens is not None:
        est.tokens_tokenizer = counted
    if billing.basis == "search_units":
        est.search_units_rule, est.search_units_per_request = units_rule, units_per_request
    _apply_calibration(est, calibration)
    est.cost_usd = _cost(billing, est)
    est.latency_ms = (
        latency_ms if latency_ms is not None else (calibration.latency_ms if calibration else None)
    )
    est.seconds, est.binding_limit, est.seconds_by_limit = time_estimate(
        est.requests, est.tokens_heuristic, cfg.limits, est.latency_ms
    )
    est.elapsed_seconds = round(time.monotonic() - started, 3)
    return est


def _open_cache(cfg: JobConfig, settings: RunSettings, billing: Billing) -> ScoreCache | None:
    """The job's cache, read-only, as the run would consult it (None: none, or no file
    yet). A listwise model is refused as the run refuses it (SetupError)."""
    check_pointwise(cfg.cache, settings.profile)
    url = settings.adapter.url(cfg.provider.base_url, cfg.provider.endpoint)
    return open_cache(cfg, settings.adapter, url, billing.model, estimate=True)


def _cache_result(
    cfg: JobConfig, cache: ScoreCache | None, billing: Billing, est: Estimate
) -> dict:
    """estimate.json's `cache` block; no file yet: every pair would be sent."""
    if cache is None:
        counters = CacheCounters(pairs=est.documents, queries=est.queries)
    else:
        counters = cache.counters
        cache.close()
    return cache_block(
        counters,
        {},
        cfg.provider.kind,
        billing.model,
        cfg.pricing,
        path=cfg.cache.path,
        exists=cache is not None,
        max_age_days=cfg.cache.max_age_days,
    )


def _sent(per_doc: list[int], chunks: list[Chunk]) -> list[int]:
    """The values of the documents `chunks` send (with a cache, not every document)."""
    return [
        per_doc[p]
        for c in chunks
        for p in (c.positions if c.positions is not None else range(c.start, c.stop))
    ]


def _add_final_pass(est: Estimate, query: Query, window: int, chunks: list[Chunk]) -> None:
    """One more request of the merged leaders; their tokens taken at the query's mean.

    The run picks the leaders from the merged chunk answers, and each chunk answers
    `chunk.top_n` = min(top_n, its size) documents: with `top_n` set, fewer than the
    window may be there to re-send (3 chunks x top_n 5 = 15, not 64).
    """
    n = min(window, sum(c.top_n for c in chunks))
    est.requests += 1
    est.tokens_heuristic += round(
        sum(c.estimated_tokens for c in chunks) * n / len(query.documents)
    )


def _apply_calibration(est: Estimate, cal: Calibration | None) -> None:
    # Order of trust: an earlier run's reported/estimated ratio applied to the same
    # heuristic the run recorded, then a real tokenizer, then the bare heuristic.
    est.tokens = est.tokens_tokenizer if est.tokens_tokenizer is not None else est.tokens_heuristic
    if est.billing == "search_units":
        est.search_units = est.search_units_rule
    if cal is None:
        return
    est.calibration = cal.to_json()
    if cal.token_ratio is not None:
        est.tokens = round(est.tokens_heuristic * cal.token_ratio)
    if (
        est.billing == "search_units"
        and cal.unit_ratio is not None
        and est.search_units_per_request is not None
    ):
        # The ratio was measured against ceil(documents / 100) per request (usage/ keeps no
        # text), so it is applied to the same base: long documents are inside the ratio.
        est.search_units = round(est.search_units_per_request * cal.unit_ratio, 3)


def _cost(billing: Billing, est: Estimate) -> float | None:
    return cost_usd(billing.basis, est.tokens, est.search_units, billing.price)

"""What the cache did in a run: summary.json's `cache` block, and its line in the end table
and in `report`.

    >>> from pipeline.cache.stage import CacheCounters, ScoreCache
    >>> block = cache_block(CacheCounters(pairs=1000, hits=900, saved_tokens=45_000),
    ...                     {"tokens": {"estimated": 5_000, "reported_total": 6_000}},
    ...                     "jina", "jina-reranker-v2-base-multilingual", {})
    >>> block["sent"], block["hit_rate"], block["saved"]["tokens"], block["saved"]["usd"]
    (100, 0.9, 54000, 0.000972)
    >>> cache_line(block)
    'cache     1,000 pairs: 900 from cache (90.0%), 100 sent; saved ~54,000 tokens, $0.0010'

Savings are what the pairs served from the cache would have cost if sent: their estimated
tokens (query + document each, as requests are estimated), scaled by this run's reported /
estimated ratio when it sent requests that reported tokens, priced at the job's price
(`pipeline.accounting.cost`); for Cohere, search units at 100 documents a unit (a long
document counting several). Estimates, like every pre-run figure: the provider never
reports what was not sent.
"""

from __future__ import annotations

from typing import Any

from pipeline.accounting.cost import cost_usd, job_billing
from pipeline.accounting.prices import Pricing
from pipeline.cache.stage import CacheCounters, ScoreCache


def cache_block(
    counters: CacheCounters,
    summary: dict,
    kind: str,
    model: str | None,
    pricing: Pricing,
    **extra: Any,
) -> dict:
    """summary.json's `cache` block; `extra` (path, stored, ...) is added as given."""
    c = counters
    tokens = summary.get("tokens") or {}
    reported, estimated = tokens.get("reported_total"), tokens.get("estimated")
    if reported and estimated:
        saved_tokens = round(c.saved_tokens * reported / estimated)
        basis = "estimated x this run's reported/estimated tokens"
    else:
        saved_tokens, basis = c.saved_tokens, "estimated"
    billing = job_billing(kind, model, pricing)
    units = None
    if billing.basis == "search_units":
        units = round(c.saved_unit_documents / billing.docs_per_unit, 3)
    return {
        **extra,
        "pairs": c.pairs,
        "from_cache": c.hits,
        "sent": c.pairs - c.hits,
        "hit_rate": round(c.hits / c.pairs, 4) if c.pairs else None,
        "expired": c.expired,
        "queries": c.queries,
        "queries_all_cached": c.queries_all_cached,
        "saved": {
            "tokens": saved_tokens,
            "tokens_from": basis,
            "search_units": units,
            "usd": cost_usd(billing.basis, saved_tokens, units, billing.price),
            "price": billing.describe(),
        },
    }


def cache_line(block: dict) -> str:
    """One line of the end table (and of `report`)."""
    pairs, hits = block["pairs"], block["from_cache"]
    rate = f" ({hits / pairs:.1%})" if pairs else ""
    saved = block["saved"]
    usd = "price unknown" if saved["usd"] is None else f"${saved['usd']:,.4f}"
    units = (
        f", ~{saved['search_units']:,} search units"
        if saved.get("search_units") is not None
        else ""
    )
    line = (
        f"cache     {pairs:,} pairs: {hits:,} from cache{rate}, {block['sent']:,} sent; "
        f"saved ~{saved['tokens']:,} tokens{units}, {usd}"
    )
    if block.get("expired"):
        line += f"  ({block['expired']:,} expired entries re-scored)"
    if block.get("write_error"):
        line += f"\n          not stored: {block['write_error']}"
    return line


def run_block(
    cache: ScoreCache, summary: dict, kind: str, model: str | None, pricing: Pricing
) -> dict:
    """The block of a run's summary.json (after `cache.close()`: every row is counted)."""
    writer = cache.writer
    return cache_block(
        cache.counters,
        summary,
        kind,
        model,
        pricing,
        path=str(cache.store.path),
        read_only=writer is None,
        max_age_days=cache.max_age_days,
        stored=writer.stored if writer is not None else 0,
        write_error=writer.error if writer is not None else None,
    )

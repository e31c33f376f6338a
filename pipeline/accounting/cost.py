"""Billing rules: what one request is billed, and what a number of billed units costs.

    >>> token_units(query_tokens=5, doc_tokens=[10, 20])       # (5 + 10) + (5 + 20)
    40
    >>> search_units(query_tokens=5, doc_tokens=[10] * 150)    # 150 documents: 2 units
    2
    >>> search_units(query_tokens=100, doc_tokens=[1000] * 40)  # 1,100 tokens: each counts 3
    2
    >>> cost_usd("tokens", 2_000_000, None, Price(usd_per_million_tokens=0.05))
    0.1

Rules, with their sources (/work/notes/providers.md; "Pricing" and each provider's section):

- **Per token** (Jina, Voyage, vLLM, Infinity, llama.cpp, New API / one-api gateways):
  every document is read together with the query, so a request bills
  Σ (query tokens + document tokens). Voyage documents exactly this as "(query tokens ×
  number of documents) + sum of tokens in all documents", returned as `usage.total_tokens`
  [docs.voyageai.com/docs/pricing]; it is the same number. Jina bills `usage.total_tokens`
  [jina.ai/reranker; LiteLLM's Jina transformer]; the formula is ours, checked by calibration.
- **Search units** (Cohere): "one query with up to 100 documents to be ranked" is one unit
  [cohere.com/pricing FAQ, as quoted by several third parties]; documents "longer than 500
  tokens (including the query) are split into chunks, each counted as a document" [same
  quotes; one source says 4,096]. We read it as: a document counts ceil((query + document
  tokens) / 500) times, and a *request* bills ceil(counted documents / 100), at least one.
  Why 500: it is what most quotes of the FAQ say, and of the two figures it gives the
  higher bill, so the estimate does not under-budget; set
  `[pricing] search_unit_document_tokens = 4096` for the other reading. Per request, not
  per query, because each API call is a search: a query split into several requests pays
  a unit per request. After a run, the reported `meta.billed_units.search_units` is the
  truth, and `estimate --calibrate` scales by it.
- **Self-hosted** (local, TEI, Xinference, vLLM, Infinity, llama.cpp without a price): no
  money per request, so cost is 0; tokens and time still count. A `[pricing]` token price
  turns a self-hosted kind into a per-token one (e.g. vLLM behind a paid gateway).
- **Unknown price**: a hosted API whose model has no list price and no `[pricing]` has an
  unknown (None) cost, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.accounting.prices import Price, price_for
from pipeline.providers import get_adapter

DOCS_PER_SEARCH_UNIT = 100
SEARCH_UNIT_DOCUMENT_TOKENS = 500


def token_units(query_tokens: int, doc_tokens: list[int]) -> int:
    """Tokens a per-token API bills for one request: query + document, per document."""
    return query_tokens * len(doc_tokens) + sum(doc_tokens)


def search_units(
    query_tokens: int,
    doc_tokens: list[int],
    docs_per_unit: int = DOCS_PER_SEARCH_UNIT,
    tokens_per_document: int = SEARCH_UNIT_DOCUMENT_TOKENS,
) -> int:
    """Cohere search units for one request (see the module docstring for the rule)."""
    if not doc_tokens:
        return 0
    counted = sum(max(1, -(-(query_tokens + d) // tokens_per_document)) for d in doc_tokens)
    return -(-counted // docs_per_unit)


@dataclass(frozen=True, slots=True)
class Billing:
    """How one job is billed: its basis, and the price per unit when known."""

    basis: str  # "tokens", "search_units" or "none" (self-hosted / local: no money)
    price: Price | None
    model: str | None
    docs_per_unit: int = DOCS_PER_SEARCH_UNIT
    tokens_per_document: int = SEARCH_UNIT_DOCUMENT_TOKENS

    def describe(self) -> str:
        if self.basis == "none":
            return "self-hosted: no charge per request"
        if self.price is None:
            return f"no known price for model {self.model!r}: set [pricing] in the job"
        p = self.price
        rate = (
            f"${p.usd_per_thousand_search_units:g} per 1,000 search units"
            if self.basis == "search_units"
            else f"${p.usd_per_million_tokens:g} per million tokens"
        )
        return f"{rate} ({p.source}{', as of ' + p.as_of if p.as_of else ''})"


def job_billing(kind: str, model: str | None, pricing: dict[str, float]) -> Billing:
    """The billing of a job's provider: `spec.billing`, self-hosted kinds free unless priced."""
    spec = get_adapter(kind).spec
    model = model or spec.default_model
    price = price_for(kind, model, pricing)
    basis = spec.billing
    self_hosted = spec.default_base_url is None
    if (
        basis == "tokens"
        and self_hosted
        and (price is None or price.usd_per_million_tokens is None)
    ):
        basis = "none"
    tokens_per_doc = int(pricing.get("search_unit_document_tokens", SEARCH_UNIT_DOCUMENT_TOKENS))
    return Billing(
        basis, price, model, spec.docs_per_billing_unit or DOCS_PER_SEARCH_UNIT, tokens_per_doc
    )


def cost_usd(
    basis: str, tokens: float | None, units: float | None, price: Price | None
) -> float | None:
    """Money for `tokens` or search `units` under `basis`; None when the price or count is unknown."""
    if basis == "none":
        return 0.0
    if price is None:
        return None
    if basis == "tokens":
        if tokens is None or price.usd_per_million_tokens is None:
            return None
        return round(tokens * price.usd_per_million_tokens / 1e6, 9)
    if units is None or price.usd_per_thousand_search_units is None:
        return None
    return round(units * price.usd_per_thousand_search_units / 1e3, 9)


def summary_cost(summary: dict, kind: str, model: str | None, pricing: dict[str, float]) -> dict:
    """The `cost` block of summary.json, from its own token and search-unit totals.

    Reported figures are billed figures; when the provider reported nothing, the estimate
    stands in and `from` says so (so a cost is never silently computed from zero).
    """
    billing = job_billing(kind, model, pricing)
    t = summary.get("tokens", {})
    if billing.basis == "search_units":
        units, source = t.get("reported_search_units"), "reported"
        amount = cost_usd(billing.basis, None, units, billing.price)
        if units is None:
            source = "not reported"
    else:
        reported = t.get("reported_total")
        tokens, source = (
            (reported, "reported") if reported is not None else (t.get("estimated"), "estimated")
        )
        amount = cost_usd(billing.basis, tokens, None, billing.price)
    return {"usd": amount, "basis": billing.basis, "from": source, "price": billing.describe()}

"""Billing rules: what one request is billed, and what a number of billed units costs.

    >>> token_units(query_tokens=5, doc_tokens=[10, 20])       # (5 + 10) + (5 + 20)
    40
    >>> search_units(query_tokens=5, doc_tokens=[10] * 150)    # 150 documents: 2 units
    2
    >>> search_units(query_tokens=100, doc_tokens=[1000] * 40)  # 1,100 tokens: each counts 3
    2
    >>> cost_usd("tokens", 2_000_000, None, Price(usd_per_million_tokens=0.05))
    0.1

Rules, from each provider's pricing and API documentation (sources in `prices.py`):

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
  unknown (None) cost, never 0; so has a job whose price is for the other basis.
- **Basis**: the provider kind's (`spec.billing`) unless `[pricing] billing` says otherwise:
  the wire format and the bill are separate things (a token-billed API behind a
  Cohere-shaped gateway such as LiteLLM).
- **Only answered requests are billed** (HTTP 2xx on their last attempt): what the provider
  reported, and the estimate for those it reported nothing for. Requests never answered
  (connection errors, 5xx, 429s to the end) are priced apart, as what they would have cost,
  never added: none of the APIs documents billing them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.accounting.prices import Price, Pricing, price_for, pricing_number
from pipeline.providers import get_adapter
from pipeline.text import plural

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

    @property
    def unit_price(self) -> float | None:
        """USD per million tokens or per thousand search units; None when unknown."""
        if self.price is None:
            return None
        if self.basis == "search_units":
            return self.price.usd_per_thousand_search_units
        return self.price.usd_per_million_tokens

    def describe(self) -> str:
        """One line on the price used, or why the cost is unknown (never raises).

        >>> Billing("search_units", Price(usd_per_million_tokens=0.05, source="job [pricing]"),
        ...         "rerank-v3.5").describe()
        'no price per search unit in job [pricing]: set pricing.usd_per_thousand_search_units, or pricing.billing = "tokens" if the API bills tokens'
        """
        if self.basis == "none":
            return "self-hosted: no charge per request"
        if self.price is None:
            return f"no known price for model {self.model!r}: set [pricing] in the job"
        p, rate = self.price, self.unit_price
        if rate is None:
            if self.basis == "search_units":
                return (
                    f"no price per search unit in {p.source}: set "
                    'pricing.usd_per_thousand_search_units, or pricing.billing = "tokens" if the '
                    "API bills tokens"
                )
            return (
                f"no price per token in {p.source}: set pricing.usd_per_million_tokens, or "
                'pricing.billing = "search_units" if the API bills search units'
            )
        unit = "1,000 search units" if self.basis == "search_units" else "million tokens"
        return f"${rate:g} per {unit} ({p.source}{', as of ' + p.as_of if p.as_of else ''})"


def job_billing(kind: str, model: str | None, pricing: Pricing) -> Billing:
    """The billing of a job: `[pricing] billing`, else the provider's `spec.billing`;
    self-hosted kinds are free unless priced or told how they bill."""
    spec = get_adapter(kind).spec
    model = model or spec.default_model
    price = price_for(kind, model, pricing)
    chosen = pricing.get("billing")
    basis = str(chosen) if chosen else spec.billing
    self_hosted = spec.default_base_url is None and not spec.gateway
    if (
        chosen is None
        and basis == "tokens"
        and self_hosted
        and (price is None or price.usd_per_million_tokens is None)
    ):
        basis = "none"
    tokens_per_doc = pricing_number(pricing, "search_unit_document_tokens")
    return Billing(
        basis,
        price,
        model,
        spec.docs_per_billing_unit or DOCS_PER_SEARCH_UNIT,
        int(tokens_per_doc or SEARCH_UNIT_DOCUMENT_TOKENS),
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


@dataclass(slots=True)
class Billable:
    """What a run's requests reported, split the way the bill needs it.

    `summary.json` keeps it as `billable`; `report` rebuilds it from `usage/`; both price it
    with `run_cost`, so the end table, summary.json and `report` always agree.
    """

    requests_answered: int = 0
    tokens_reported: int | None = None  # Σ reported total_tokens (None: none reported)
    requests_without_tokens: int = 0  # answered, no token count reported
    estimated_tokens_without_report: int = 0  # ...their estimate, billed in its place
    search_units_reported: float | None = None
    requests_without_search_units: int = 0  # answered, no search units reported
    requests_unanswered: int = 0
    estimated_tokens_unanswered: int = 0
    estimated_search_units_unanswered: int = 0  # ceil(documents / 100) per request

    def to_json(self) -> dict:
        return asdict(self)


def run_cost(billing: Billing, used: Billable) -> dict:
    """The `cost` block: answered requests billed, unanswered ones shown apart.

    >>> used = Billable(requests_answered=2, tokens_reported=1_000_000, requests_without_tokens=1,
    ...                 estimated_tokens_without_report=500_000, requests_unanswered=3,
    ...                 estimated_tokens_unanswered=9_000_000)
    >>> cost = run_cost(Billing("tokens", Price(usd_per_million_tokens=1.0), "m"), used)
    >>> cost["usd"], cost["from"], cost["unanswered"]["usd_if_billed"]
    (1.5, 'reported; estimated for 1 of 2 requests', 9.0)
    """
    basis, price = billing.basis, billing.price
    unanswered = {
        "requests": used.requests_unanswered,
        "estimated_tokens": used.estimated_tokens_unanswered,
        "estimated_search_units": used.estimated_search_units_unanswered,
        "usd_if_billed": cost_usd(
            basis,
            used.estimated_tokens_unanswered,
            used.estimated_search_units_unanswered,
            price,
        ),
    }
    tokens: int | None = None
    units: float | None = None
    if basis == "none":
        source = "self-hosted: no charge per request"
    elif not used.requests_answered:
        tokens, units, source = 0, 0.0, "no request answered"
    elif basis == "search_units":
        missing = used.requests_without_search_units
        if missing:  # part of the bill is unknown: say so rather than under-count
            source = f"search units not reported for {plural(missing, 'request')}"
        else:
            units, source = used.search_units_reported, "reported"
    else:
        tokens = (used.tokens_reported or 0) + used.estimated_tokens_without_report
        missing = used.requests_without_tokens
        if not missing:
            source = "reported"
        elif missing == used.requests_answered:
            source = "estimated: no tokens reported"
        else:
            source = f"reported; estimated for {missing:,} of {plural(used.requests_answered, 'request')}"
    return {
        "usd": cost_usd(basis, tokens, units, price),
        "basis": basis,
        "from": source,
        "price": billing.describe(),
        "billed_tokens": tokens,
        "billed_search_units": units,
        "unanswered": unanswered,
    }


def summary_cost(summary: dict, kind: str, model: str | None, pricing: Pricing) -> dict:
    """The `cost` block of summary.json, from its own `billable` block (see `JobStats`)."""
    return run_cost(job_billing(kind, model, pricing), Billable(**summary.get("billable", {})))


def cost_lines(cost: dict) -> list[str]:
    """The `cost` block as table lines (the end of a run and `report` print the same).

    >>> cost_lines({"usd": 0.0, "basis": "none", "from": "self-hosted: no charge per request"})
    ['cost      none (self-hosted: no charge per request)']
    >>> cost_lines({"usd": 0.5, "basis": "tokens", "from": "reported", "price": "$1 per million",
    ...             "unanswered": {"requests": 1, "usd_if_billed": 0.25}})[1]
    'unbilled  1 request never answered: not priced (would be $0.2500)'
    """
    if cost.get("basis") == "none":
        return ["cost      none (self-hosted: no charge per request)"]
    usd = cost.get("usd")
    shown = "unknown" if usd is None else f"${usd:,.4f}"
    lines = [f"cost      {shown}  ({cost.get('from')})  [{cost.get('price')}]"]
    unanswered = cost.get("unanswered") or {}
    if unanswered.get("requests"):
        would = unanswered.get("usd_if_billed")
        lines.append(
            f"unbilled  {plural(unanswered['requests'], 'request')} never answered: not priced"
            + ("" if would is None else f" (would be ${would:,.4f})")
        )
    return lines

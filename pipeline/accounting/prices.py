"""List prices of known rerank models, and the job's `[pricing]` section that overrides them.

    >>> price_for("voyage", "rerank-2.5", {}).usd_per_million_tokens
    0.05
    >>> price_for("cohere", "rerank-v3.5", {}).usd_per_thousand_search_units
    2.0
    >>> price_for("jina", "my-finetune", {}) is None       # unknown: cost unknown, never 0
    True
    >>> price_for("jina", "my-finetune", {"usd_per_million_tokens": 0.1}).source
    'job [pricing]'

`[pricing]` keys (all optional):

    billing = "tokens"                      # or "search_units": what the API bills, whatever
                                            # its wire format (default: the provider kind's)
    usd_per_million_tokens = 0.05           # per-token APIs (Jina, Voyage, gateways, vLLM...)
    usd_per_thousand_search_units = 2.0     # Cohere
    search_unit_document_tokens = 500       # Cohere: tokens (query + document) per billed document

Every default below is a list price as seen on the provider's pricing page on 2026-11-23,
with its source and date. List
prices change and free tiers (Voyage's first 200M tokens, Jina's trial tokens) are not
subtracted: put your contracted price in `[pricing]` when it differs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PRICE_KEYS = (
    "usd_per_million_tokens",
    "usd_per_thousand_search_units",
    "search_unit_document_tokens",
)
PRICING_KEYS = ("billing", *PRICE_KEYS)
BILLING_BASES = ("tokens", "search_units")
Pricing = Mapping[str, float | str]  # a job's [pricing] section, as config.py reads it


@dataclass(frozen=True, slots=True)
class Price:
    usd_per_million_tokens: float | None = None
    usd_per_thousand_search_units: float | None = None
    source: str = ""
    as_of: str | None = None


@dataclass(frozen=True, slots=True)
class ListPrice:
    kinds: frozenset[str]
    model: re.Pattern[str]  # matched against the lower-cased model name
    price: Price


_V = "docs.voyageai.com/docs/pricing [verified]"
_C = "cohere.com/pricing as quoted by a gateway and memberjunction docs [secondary]; cohere.com showed no pay-as-you-go price on 2026-08-03 and 2026-10-18"
_C4 = "developer.puter.com cohere-api-pricing, openrouter.ai [secondary]"
_VOYAGE, _COHERE, _JINA = (
    frozenset({"voyage"}),
    frozenset({"cohere", "cohere-v1"}),
    frozenset({"jina"}),
)


def _p(
    kinds: frozenset[str],
    pattern: str,
    *,
    tokens: float | None = None,
    units: float | None = None,
    source: str,
    as_of: str | None,
) -> ListPrice:
    return ListPrice(kinds, re.compile(pattern), Price(tokens, units, source, as_of))


# First match wins, so a more specific name comes before its prefix (2.5-lite before 2.5).
LIST_PRICES: list[ListPrice] = [
    _p(_VOYAGE, r"^rerank-2\.5-lite$", tokens=0.02, source=_V, as_of="2026-11"),
    _p(_VOYAGE, r"^rerank-2\.5$", tokens=0.05, source=_V, as_of="2026-11"),
    _p(
        _VOYAGE,
        r"^rerank-2-lite$",
        tokens=0.02,
        source=_V + ", older models table",
        as_of="2026-11",
    ),
    _p(_VOYAGE, r"^rerank-2$", tokens=0.05, source=_V + ", older models table", as_of="2026-11"),
    _p(_COHERE, r"^rerank-v3\.5$", units=2.0, source=_C, as_of="2026-04"),
    _p(_COHERE, r"^rerank-v4\.0-fast$", units=2.0, source=_C4, as_of="2026-06"),
    _p(_COHERE, r"^rerank-v4\.0-pro$", units=2.5, source=_C4, as_of="2026-06"),
    _p(
        _JINA,
        r"^jina-reranker-v3\.5$",
        tokens=0.05,
        source="a 2026 third-party price table [secondary]",
        as_of="2026",
    ),
    # Jina sells one token pool for all its APIs; LiteLLM's cost map comment gives
    # $0.000000018 per token. Undated, secondary: shown with its source on every estimate.
    _p(
        _JINA,
        r"^jina-reranker-",
        tokens=0.018,
        source="LiteLLM jina_ai/rerank/transformation.py comment [secondary, undated]",
        as_of=None,
    ),
]


class PricingError(ValueError):
    """A `[pricing]` key that is unknown or out of range."""


def check_pricing(pricing: Pricing) -> None:
    """Raise PricingError naming the first bad `[pricing]` key.

    >>> check_pricing({"billing": "units"})
    Traceback (most recent call last):
    ...
    pipeline.accounting.prices.PricingError: pricing.billing = 'units': must be one of tokens, search_units
    """
    for key, value in pricing.items():
        if key not in PRICING_KEYS:
            raise PricingError(
                f"unknown key pricing.{key}: known keys are {', '.join(PRICING_KEYS)}"
            )
        if key == "billing":
            if value not in BILLING_BASES:
                raise PricingError(
                    f"pricing.billing = {value!r}: must be one of {', '.join(BILLING_BASES)}"
                )
            continue
        if isinstance(value, str):
            raise PricingError(f"pricing.{key} must be a number, got {value!r}")
        if value < 0 or (key == "search_unit_document_tokens" and value < 1):
            raise PricingError(
                f"pricing.{key} = {value!r}: must be {'>= 1' if value >= 0 else '>= 0'}"
            )


def pricing_number(pricing: Pricing, key: str) -> float | None:
    """A numeric `[pricing]` key (check_pricing has already refused strings there)."""
    value = pricing.get(key)
    return None if value is None or isinstance(value, str) else float(value)


def price_for(kind: str, model: str | None, pricing: Pricing) -> Price | None:
    """The job's `[pricing]` if it names a price, else the list price of `model`, else None."""
    per_token = pricing_number(pricing, "usd_per_million_tokens")
    per_unit = pricing_number(pricing, "usd_per_thousand_search_units")
    if per_token is not None or per_unit is not None:
        return Price(per_token, per_unit, "job [pricing]")
    if not model:
        return None
    name = model.lower().rsplit("/", 1)[-1]  # "jinaai/jina-reranker-v2..." -> the model name
    for entry in LIST_PRICES:
        if kind in entry.kinds and entry.model.search(name):
            return entry.price
    return None

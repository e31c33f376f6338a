"""A LiteLLM proxy's rerank endpoint: Cohere-shaped answers, whatever API sits behind it.

    >>> a = LiteLLMAdapter()
    >>> a.build_request("my-reranker", "q", ["a", "b"], top_n=1)
    {'model': 'my-reranker', 'query': 'q', 'documents': ['a', 'b'], 'top_n': 1, 'return_documents': False}
    >>> a.parse_answer(b'{"id": "x", "results": [{"index": 1, "relevance_score": 0.9}],'
    ...                b' "meta": {"billed_units": {"total_tokens": 17}, "tokens": {}}}', 2, 1).usage
    ProviderUsage(prompt_tokens=None, total_tokens=17, search_units=None)

Sources: BerriAI/litellm, `proxy/rerank_endpoints/endpoints.py` (routes),
`types/rerank.py` (`RerankResponse`), `llms/{jina_ai,cohere,voyage}/rerank/transformation.py`
(what each upstream's answer becomes) and the proxy's `ProxyException` handler (errors).

- One handler serves `/rerank`, `/v1/rerank` and `/v2/rerank`; `model` is the proxy's
  model name (its `model_list` alias), so it is required and has no default here.
- Every upstream answer is rebuilt as a `RerankResponse`: `{id, results: [{index,
  relevance_score, document?}], meta: {api_version?, billed_units: {search_units?,
  total_tokens?}, tokens: {input_tokens?, output_tokens?}}}`. Keys the typed dicts do not
  declare are dropped, which is why a Jina upstream arrives as `billed_units.total_tokens`
  with an empty `tokens` (Jina's `usage` is copied into both; only one keeps a known key).
  Cohere's `billed_units.search_units` passes through; Voyage's answer becomes
  `billed_units.total_tokens` and `tokens.input_tokens`, both 0 when Voyage sent no usage.
- `return_documents` defaults to true in LiteLLM (every document echoed back): false is sent.
- The bill depends on the upstream, not on this format: tokens by default; for a Cohere
  upstream set `[pricing] billing = "search_units"`. Without a price the cost is unknown,
  never 0 (`spec.gateway`).
- Errors: `{"error": {"message", "type", "param", "code": "<status as a string>"}}`. Seen
  on a proxy without a database: a key other than the master key gets 400 "No connected
  db." (type `no_db_connection`); no Authorization header at all, a plain-text 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.providers.base import (
    Adapter,
    Answer,
    ErrorInfo,
    ProviderSpec,
    checked_results,
    load_json,
    optional_float,
    optional_int,
    results_list,
    sub_dict,
)
from pipeline.records import ProviderUsage


class LiteLLMAdapter(Adapter):
    spec = ProviderSpec(
        kind="litellm",
        path="/v1/rerank",
        default_base_url=None,  # the proxy is yours: base_url is required
        default_key_env="LITELLM_API_KEY",  # only sent when set: a proxy may run without keys
        max_docs_per_request=100,
        billing="tokens",
        requires_model=True,
        gateway=True,
        never_send=frozenset({"top_k", "texts", "truncation", "max_chunks_per_doc"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "documents": documents, "top_n": top_n}
        if model:
            body = {"model": model, **body}
        body["return_documents"] = False  # LiteLLM's default echoes every document back
        return body

    def parse_answer(
        self, body: bytes, n_docs: int, top_n: int, headers: Mapping[str, str] | None = None
    ) -> Answer:
        data = load_json(body)
        results = checked_results(results_list(data, "results"), n_docs, top_n)
        return Answer(results, litellm_usage(sub_dict(data, "meta")))

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        info = super().parse_error(status, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return info
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict) or not err.get("message"):
            return info
        # `code` only repeats the status; `type` says what went wrong.
        kind = err.get("type")
        info.code = str(kind) if kind else None
        info.message = f"{err['message']} ({kind})" if kind else str(err["message"])
        if kind == "no_db_connection":
            info.message += (
                ": the proxy has no key database, so it accepts only its master key; check the key"
            )
        return info


def litellm_usage(meta: dict) -> ProviderUsage:
    """`billed_units.total_tokens` when present, else `tokens` in + out; search units as billed.

    Zero stands for "not reported" here: LiteLLM writes 0 when the upstream sent no usage
    (its Voyage transformation does), and no non-empty request costs 0 tokens or units.
    """
    billed = sub_dict(meta, "billed_units")
    tokens = sub_dict(meta, "tokens")
    prompt = optional_int(tokens.get("input_tokens")) or None
    output = optional_int(tokens.get("output_tokens"))
    total = optional_int(billed.get("total_tokens")) or None
    if total is None and prompt is not None:
        total = prompt + (output or 0)
    units = optional_float(billed.get("search_units")) or None
    return ProviderUsage(prompt_tokens=prompt, total_tokens=total, search_units=units)

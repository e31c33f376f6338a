"""Xinference rerank: POST /v1/rerank on a self-hosted server, Cohere-like answers.

    >>> XinferenceAdapter().build_request("bge-reranker-v2-m3", "q", ["a"], top_n=1)["return_len"]
    True

Sources checked (xorbitsai/inference `restful_api.py` and the
rerank core). What shaped this module:

- `model` is required by the server's pydantic `RerankRequest` and has no sensible default
  on a self-hosted server: the job must name the model it launched.
- Token counts come back in `meta.tokens` only when the request says `return_len: true`,
  and there `output_tokens` repeats `input_tokens` (a reranker has no output): the input
  count is the total, adding the two would double it. `meta.billed_units` is always null.
- Errors are FastAPI's {"detail": ...}; the status codes are unverified (400 for an unknown
  model, 500 for the rest is what the source suggests).
"""

from __future__ import annotations

from typing import Any

from pipeline.providers.base import ProviderSpec, optional_int, sub_dict
from pipeline.providers.jina import JinaAdapter
from pipeline.records import ProviderUsage


class XinferenceAdapter(JinaAdapter):
    # Jina's request and answer shape; only `return_len` and where tokens are reported differ.
    spec = ProviderSpec(
        kind="xinference",
        path="/v1/rerank",
        default_base_url=None,
        default_key_env=None,
        max_docs_per_request=100,  # no documented limit; bounds one request's latency
        billing="tokens",
        requires_model=True,
        never_send=frozenset({"top_k", "truncation", "max_tokens_per_doc"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        body = super().build_request(model, query, documents, top_n)
        body["return_len"] = True  # without it the answer carries no token counts
        return body

    def parse_usage(self, data: dict) -> ProviderUsage:
        # output_tokens repeats input_tokens (a reranker has no output): input is the total.
        tokens = optional_int(sub_dict(data, "meta", "tokens").get("input_tokens"))
        return ProviderUsage(prompt_tokens=tokens, total_tokens=tokens)

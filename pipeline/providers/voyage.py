"""Voyage AI rerank: POST https://api.voyageai.com/v1/rerank, answers under `data`.

    >>> VoyageAdapter().build_request("rerank-2.5", "q", ["a"], top_n=1)["top_k"]
    1

Sources checked (docs.voyageai.com reranker API reference,
voyageai-python). What shaped this module:

- `model` is required: `rerank-2.5` is sent when the job names none.
- top_n is called `top_k`; `truncation` defaults to true and is sent explicitly so that an
  over-long pair is cut like the other hosted APIs do, not refused.
- At most 1,000 documents, and total tokens = query tokens x documents + document tokens
  at most 600K (rerank-2.x) or 300K (rerank-1, lite-1). 300K is the spec's token ceiling:
  our byte-based estimate is rough, and it fits every model.
- `usage.total_tokens` is exactly the billed quantity.
- `document` (only with return_documents=true) is a plain string; it is not read.
- Errors are {"detail": "..."}: 400 for too many documents/tokens, 422 for schema errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.providers.base import (
    Adapter,
    Answer,
    ProviderSpec,
    checked_results,
    load_json,
    optional_int,
    results_list,
    sub_dict,
)
from pipeline.records import ProviderUsage


class VoyageAdapter(Adapter):
    spec = ProviderSpec(
        kind="voyage",
        path="/v1/rerank",
        default_base_url="https://api.voyageai.com",
        default_key_env="VOYAGE_API_KEY",
        max_docs_per_request=1000,
        billing="tokens",
        default_model="rerank-2.5",
        requires_model=True,
        max_tokens_per_request=300_000,
        never_send=frozenset({"top_n", "return_len", "max_chunks_per_doc"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        return {
            "model": model or self.spec.default_model,
            "query": query,
            "documents": documents,
            "top_k": top_n,
            "return_documents": False,
            "truncation": True,
        }

    def parse_answer(
        self, body: bytes, n_docs: int, top_n: int, headers: Mapping[str, str] | None = None
    ) -> Answer:
        data = load_json(body)
        results = checked_results(results_list(data, "data"), n_docs, top_n)
        # Only total_tokens is reported: prompt_tokens stays null rather than copied.
        return Answer(
            results,
            ProviderUsage(total_tokens=optional_int(sub_dict(data, "usage").get("total_tokens"))),
        )

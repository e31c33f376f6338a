"""Cohere rerank: `cohere` speaks POST /v2/rerank (the current API), `cohere-v1` POST /v1/rerank.

    >>> CohereAdapter().build_request(None, "q", ["a", "b"], top_n=1)
    {'model': 'rerank-v3.5', 'query': 'q', 'documents': ['a', 'b'], 'top_n': 1}

Sources checked (cohere-python SDK, docs.cohere.com). Facts that shaped this module:

- Key variable: the SDK prefers and documents `CO_API_KEY`; `COHERE_API_KEY` is accepted
  but undocumented (cohere-python `client.py::_get_api_key_from_environment`), so it is
  read too, as `alt_key_envs`.
- Base URL `https://api.cohere.com` (OpenAPI servers); the older `api.cohere.ai` still works.
- v2 requires `model`, so `rerank-v3.5` is sent when the job names none. v2 dropped
  `return_documents`, `rank_fields` and `max_chunks_per_doc` and returns no `document`;
  whether it rejects them is unverified, so they are never sent. `max_tokens_per_doc` is
  left to the server default (4096, truncating).
- Billing: one search unit is one query with up to 100 documents (pricing FAQ, quoted),
  long documents are split and count more (chunk size 500 vs 4096 tokens is disputed), so
  the reported `meta.billed_units.search_units` is kept, never computed. Requests of up to
  1,000 documents (Cohere's recommended maximum; a multiple of 100, so no unit is wasted
  on a part-filled hundred) keep the request count low: trial keys get 10 requests/minute.
- v1: `max_chunks_per_doc` defaults to 10 and v1 refuses len(documents) * 10 > 10,000, so
  1,000 documents per request is exactly at that ceiling.
- Errors: {"message": ...} (the exact envelope, maybe with "id", is unverified).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pipeline.providers.base import (
    Adapter,
    Answer,
    ProviderSpec,
    checked_results,
    load_json,
    optional_float,
    optional_int,
    results_list,
    sub_dict,
)
from pipeline.records import ProviderUsage

COHERE_BASE_URL = "https://api.cohere.com"


class CohereAdapter(Adapter):
    spec = ProviderSpec(
        kind="cohere",
        path="/v2/rerank",
        default_base_url=COHERE_BASE_URL,
        default_key_env="CO_API_KEY",
        alt_key_envs=("COHERE_API_KEY",),
        max_docs_per_request=1000,
        billing="search_units",
        default_model="rerank-v3.5",
        requires_model=True,
        docs_per_billing_unit=100,
        never_send=frozenset({"return_documents", "rank_fields", "max_chunks_per_doc"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        return {
            "model": model or self.spec.default_model,
            "query": query,
            "documents": documents,
            "top_n": top_n,
        }

    def parse_answer(
        self, body: bytes, n_docs: int, top_n: int, headers: Mapping[str, str] | None = None
    ) -> Answer:
        data = load_json(body)
        results = checked_results(results_list(data, "results"), n_docs, top_n)
        return Answer(results, cohere_usage(sub_dict(data, "meta")))


class CohereV1Adapter(CohereAdapter):
    # Same defaults as v2; only the path and the one v2-only field differ.
    spec = dataclasses.replace(
        CohereAdapter.spec,
        kind="cohere-v1",
        path="/v1/rerank",
        never_send=frozenset({"max_tokens_per_doc"}),  # a v2 field
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        body = super().build_request(model, query, documents, top_n)
        body["return_documents"] = False  # we keep our own text; smaller answers
        return body


def cohere_usage(meta: dict) -> ProviderUsage:
    """meta.billed_units.search_units as billed; meta.tokens for information.

    A rerank produces no output, so total = input (+ output when Cohere reports one).
    """
    tokens = sub_dict(meta, "tokens")
    prompt = optional_int(tokens.get("input_tokens"))
    output = optional_int(tokens.get("output_tokens"))
    total = None if prompt is None else prompt + (output or 0)
    return ProviderUsage(
        prompt_tokens=prompt,
        total_tokens=total,
        search_units=optional_float(sub_dict(meta, "billed_units").get("search_units")),
    )

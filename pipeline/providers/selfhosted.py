"""vLLM, Infinity and llama.cpp servers: Jina-format answers, each with its own request quirks.

    >>> VllmAdapter().build_request(None, "q", ["a"], top_n=1)
    {'query': 'q', 'documents': ['a'], 'top_n': 1}

Sources: each server's own source and docs. All three answer `results[{index,
relevance_score}]` with `usage` and wrap errors as {"error": {"message", "type", "code"}}
(vLLM and Infinity put the integer HTTP status in `code`), so they reuse the Jina parser.
None documents a per-request document limit; the defaults only bound one request's latency.

- vLLM (/v1/rerank; /rerank and /v2/rerank also exist): unknown fields are accepted and
  ignored, but older versions log a warning per request for each, so `return_documents`
  is not sent (the answer always carries `document` anyway). `top_n` 0 means all.
- Infinity (/rerank): `return_documents` defaults to false and `top_n` must be >= 1.
  `usage` has prompt_tokens and total_tokens.
- llama.cpp (/v1/rerank, server started with --reranking): `documents` (not `texts`,
  which switches to TEI's answer format); the answer has no `document`. Very old builds
  sent zeroed usage, so 0 tokens for a non-empty request is read as "not reported".
"""

from __future__ import annotations

from typing import Any

from pipeline.providers.base import ProviderSpec
from pipeline.providers.jina import JinaAdapter
from pipeline.records import ProviderUsage


class VllmAdapter(JinaAdapter):
    spec = ProviderSpec(
        kind="vllm",
        path="/v1/rerank",
        default_base_url=None,
        default_key_env=None,
        max_docs_per_request=100,
        billing="tokens",
        never_send=frozenset({"return_documents", "top_k", "truncation"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "documents": documents, "top_n": top_n}
        if model:
            body["model"] = model
        return body


class InfinityAdapter(JinaAdapter):
    spec = ProviderSpec(
        kind="infinity",
        path="/rerank",
        default_base_url=None,
        default_key_env=None,
        max_docs_per_request=100,
        billing="tokens",
        never_send=frozenset({"top_k", "truncation", "max_tokens_per_doc"}),
    )


class LlamaCppAdapter(VllmAdapter):
    spec = ProviderSpec(
        kind="llamacpp",
        path="/v1/rerank",
        default_base_url=None,
        default_key_env=None,  # only with --api-key
        max_docs_per_request=64,
        billing="tokens",
        never_send=frozenset({"texts", "return_documents", "top_k"}),
    )

    def parse_usage(self, data: dict) -> ProviderUsage:
        reported = super().parse_usage(data)
        if reported.total_tokens == 0:  # old builds: zeros meaning "not counted"
            return ProviderUsage()
        return reported

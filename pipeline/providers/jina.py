"""Jina AI's rerank format, the wire standard every other answer is normalized into.

Also spoken by New API / one-api gateways, which pass usage through and wrap errors as
{"error": {"message", "type", "code"}}. Sources: Jina's API docs, QuantumNous/new-api relay code.

- New API re-serializes the request into its own DTO (model, query, documents, top_n,
  return_documents, max_chunk_per_doc, overlap_tokens): anything else is dropped silently,
  so fields from other formats (`top_k`, `truncation`, `max_tokens_per_doc`) are never sent.
- `document` comes back as {"text"} or as a plain string depending on the source; it is not
  read at all (we ask return_documents=false and keep our own text).
- Jina's own per-request document limit is unverified, so 100 is a conservative default.
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
    optional_int,
    results_list,
    sub_dict,
)
from pipeline.records import ProviderUsage


class JinaAdapter(Adapter):
    spec = ProviderSpec(
        kind="jina",
        path="/v1/rerank",
        default_base_url="https://api.jina.ai",
        default_key_env="JINA_API_KEY",
        max_docs_per_request=100,
        billing="tokens",
        never_send=frozenset({"top_k", "truncation", "max_tokens_per_doc", "rank_fields"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": query,
            "documents": documents,
            "top_n": top_n,
            "return_documents": False,
        }
        if model:
            body["model"] = model
        return body

    def parse_answer(
        self, body: bytes, n_docs: int, top_n: int, headers: Mapping[str, str] | None = None
    ) -> Answer:
        data = load_json(body)
        results = checked_results(results_list(data, "results"), n_docs, top_n)
        return Answer(results, self.parse_usage(data))

    def parse_usage(self, data: dict) -> ProviderUsage:
        """Usage from the whole answer: `usage.prompt_tokens / total_tokens` here."""
        usage = sub_dict(data, "usage")
        return ProviderUsage(
            prompt_tokens=optional_int(usage.get("prompt_tokens")),
            total_tokens=optional_int(usage.get("total_tokens")),
        )

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        info = super().parse_error(status, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return info
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            info.code = str(err.get("code") or err.get("type") or "") or None
            # New API answers an empty query or empty documents with 500 + invalid_request:
            # sending it again cannot help.
            if status >= 500 and info.code in ("invalid_request", "invalid_request_error"):
                info.retryable = False
        return info

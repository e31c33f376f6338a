"""Jina AI's rerank format, the wire standard every other answer is normalized into.

Also spoken by New API / one-api gateways, which pass usage through and wrap errors as
{"error": {"message", "type", "code"}}.
"""

from __future__ import annotations

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
    )

    def build_request(self, model: str | None, query: str, documents: list[str], top_n: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": query,
            "documents": documents,
            "top_n": top_n,
            "return_documents": False,
        }
        if model:
            body["model"] = model
        return body

    def parse_answer(self, body: bytes, n_docs: int, top_n: int) -> Answer:
        data = load_json(body)
        results = checked_results(results_list(data, "results"), n_docs, top_n)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Answer(
            results,
            ProviderUsage(
                prompt_tokens=optional_int(usage.get("prompt_tokens")),
                total_tokens=optional_int(usage.get("total_tokens")),
            ),
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

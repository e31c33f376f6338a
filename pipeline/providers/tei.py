"""Hugging Face Text Embeddings Inference (TEI): POST /rerank, a bare list, no top_n.

    >>> a = TeiAdapter()
    >>> a.parse_answer(b'[{"index": 1, "score": 0.9}, {"index": 0, "score": 0.2}]', 2, 1,
    ...                {"x-compute-tokens": "17"}).results
    [(1, 0.9)]

Sources checked (huggingface/text-embeddings-inference
`router/src/http/types.rs`, `server.rs`). What shaped this module:

- The documents go in `texts`; the answer is a JSON array of {index, score} for every text,
  sorted by score. There is no top_n: the whole answer is validated (every index exactly
  once), then sorted score descending / index ascending and cut here.
- No usage in the body: the tokens are in the `x-compute-tokens` response header, so
  `parse_answer` reads `headers` (null tokens when the caller passes none).
- The server's `max_client_batch_size` defaults to 32; more texts give 413 "batch size N >
  maximum allowed batch size 32" (error_type "validation"): 32 per request by default.
- `truncate` defaults to the server's --auto-truncate (false): over-long pairs would fail
  with 413, so `truncate: true` is sent, like the hosted APIs that truncate by default.
- Unknown fields are ignored, not rejected, but `documents` instead of `texts` leaves
  `texts` missing (422): `documents`, `top_n` and `model` are never sent.
- Errors: {"error": "...", "error_type": "..."}; 400 empty, 413 validation, 422 tokenizer,
  424 backend, 429 overloaded, 503 unhealthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import BadAnswer
from pipeline.providers.base import (
    Adapter,
    Answer,
    ProviderSpec,
    checked_results,
    header_int,
    load_json,
)
from pipeline.records import ProviderUsage

TOKENS_HEADER = "x-compute-tokens"


class TeiAdapter(Adapter):
    spec = ProviderSpec(
        kind="tei",
        path="/rerank",
        default_base_url=None,
        default_key_env=None,  # only when the server was started with --api-key
        max_docs_per_request=32,
        billing="tokens",
        never_send=frozenset({"documents", "top_n", "model"}),
    )

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        return {
            "query": query,
            "texts": documents,
            "raw_scores": False,
            "truncate": True,
            "return_text": False,
        }

    def parse_answer(
        self, body: bytes, n_docs: int, top_n: int, headers: Mapping[str, str] | None = None
    ) -> Answer:
        data = load_json(body)
        if not isinstance(data, list):
            raise BadAnswer(
                f"answer is a JSON {type(data).__name__}, expected a list of {{index, score}}"
            )
        # TEI always answers every text: anything less is a broken answer, whatever top_n is.
        ranked = checked_results(data, n_docs, n_docs, score_key="score")
        ranked.sort(key=lambda item: (-item[1], item[0]))
        tokens = header_int(headers, TOKENS_HEADER)
        return Answer(ranked[:top_n], ProviderUsage(prompt_tokens=tokens, total_tokens=tokens))

"""What a reranker model is: pointwise (chunking is exact) or listwise (it is not).

    >>> p = model_profile("jina", "jina-reranker-v3")
    >>> p.listwise, p.window
    (True, 64)
    >>> model_profile("cohere", "rerank-v3.5").listwise
    False

A pointwise model (cross-encoder) scores each (query, document) pair on its own, so any
split into requests gives the same scores and the merged top_n is exact. A listwise model
reads the query with many documents at once: a document's score depends on its neighbours,
so scores from different requests are not comparable, and more documents than the model's
window cannot be ranked in one context anyway. The runner uses this to warn and to offer
`limits.final_pass` (re-rank the merged survivors in one window).

Only documented facts mark a model listwise:
- jina-reranker-v3 and v3.5 ("drop-in replacement"): listwise, 64 documents in a 131K
  window [V: huggingface.co/jinaai/jina-reranker-v3 model card].
- Pointwise: jina-reranker-v1/v2, Cohere rerank-*, Voyage rerank-* ("cross-encoders" per
  Voyage docs), bge-reranker-* and other cross-encoders served by TEI/vLLM/Infinity/...
- Not claimed either way: Qwen3-Reranker (Xinference groups it with jina v3 for token
  counting only, which says nothing about listwise scoring), jina-reranker-m0, and LLM
  "rerankers" behind chat models. Their documentation does not establish them as listwise, so they are
  reported as unknown-assumed-pointwise with a note, not guessed.
- The built-in `local` BM25 computes IDF over each request's documents, so its scores shift
  slightly between chunks: listwise-ish, window = its 64 documents per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.providers.local import LocalAdapter


@dataclass(frozen=True, slots=True)
class ModelProfile:
    listwise: bool
    window: int | None  # most documents one context ranks together; None for pointwise
    note: str


# (pattern on the lower-cased model name, listwise, window, why). First match wins.
KNOWN_MODELS: list[tuple[re.Pattern[str], bool, int | None, str]] = [
    (
        re.compile(r"jina-reranker-v3(\.5)?\b"),
        True,
        64,
        "listwise, up to 64 documents in one 131K-token context (HF model card); how the API "
        "handles more than 64 is unverified",
    ),
    (re.compile(r"jina-reranker-v[12]\b"), False, None, "cross-encoder (pointwise)"),
    (re.compile(r"^rerank-"), False, None, "Cohere / Voyage rerank model: pointwise"),
    (
        re.compile(r"bge-reranker|mxbai-rerank|ms-marco|cross-encoder|gte-.*rerank"),
        False,
        None,
        "cross-encoder (pointwise)",
    ),
    (
        re.compile(r"qwen3-reranker|jina-reranker-m0|llm|gpt"),
        False,
        None,
        "LLM-based reranker whose scoring mode the documentation checked does not establish; assumed "
        "pointwise: check its model card before trusting chunked scores",
    ),
]

LOCAL_WINDOW = (
    LocalAdapter.spec.max_docs_per_request
)  # IDF is per request: one request = one window


def model_profile(kind: str, model: str | None) -> ModelProfile:
    if kind == "local":
        return ModelProfile(
            True,
            LOCAL_WINDOW,
            "local BM25: IDF is computed over each request's documents, so scores differ "
            "slightly between chunks (approximately listwise)",
        )
    if not model:
        return ModelProfile(
            False, None, f"{kind}: no model named, the server default is assumed pointwise"
        )
    name = model.lower().rsplit("/", 1)[-1]  # "jinaai/jina-reranker-v3" -> the model name
    for pattern, listwise, window, why in KNOWN_MODELS:
        if pattern.search(name):
            return ModelProfile(listwise, window, f"{model}: {why}")
    return ModelProfile(
        False, None, f"{model}: not a known model, assumed pointwise (chunking exact)"
    )

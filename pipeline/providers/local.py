"""The built-in `local` provider: BM25 over the candidates of each request, in process.

    >>> answer = bm25_answer("solar panel cost", ["wind farms", "solar panel prices and cost"], 2)
    >>> [r["index"] for r in answer["results"]]
    [1, 0]

No network and no key, yet it goes through the same chunk, limit, call, merge and accounting
path as the HTTP providers: `LocalTransport` (below) answers a Jina-format request body with
a Jina-format answer, where an HTTP provider's transport would send it over the wire.

Scores are BM25 mapped into (0, 1) by a logistic curve. Document frequencies come from the
documents in the request, so a chunked list is scored per chunk (IDF differs slightly
between chunks): like a listwise model, its scores are not exactly comparable across chunks.

`provider.model` picks BM25's parameters: unset or ``"bm25"`` is the textbook k1 = 1.2,
b = 0.75; ``"bm25:k1=0.9,b=0.4"`` (Lucene's and Anserini's defaults) sets either or both,
so two local jobs can be compared without a network (``jobs/sample-lucene.toml``).
Names not starting with ``bm25`` mean the default.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import orjson

from pipeline.providers.base import ProviderSpec
from pipeline.providers.jina import JinaAdapter
from pipeline.transport import Reply

LOCAL_URL = "local://bm25"
K1 = 1.2
B = 0.75
_MODEL = re.compile(r"bm25(?::(?P<params>.*))?", re.IGNORECASE)
_PARAM = re.compile(r"\s*(?P<name>k1|b)\s*=\s*(?P<value>[0-9]+(?:\.[0-9]*)?)\s*")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Han, Hiragana, Katakana, Hangul: scripts written without spaces, tokenized as bigrams.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


class LocalAdapter(JinaAdapter):
    spec = ProviderSpec(
        kind="local",
        path="",
        default_base_url=None,
        default_key_env=None,
        max_docs_per_request=64,
        billing="none",
    )

    def url(self, base_url: str | None, endpoint: str | None) -> str:
        return LOCAL_URL


def bm25_parameters(model: str | None) -> tuple[float, float]:
    """``(k1, b)`` of a `local` model name; a ``bm25...`` name it cannot read raises ValueError.

    >>> bm25_parameters(None), bm25_parameters("bm25:k1=0.9,b=0.4"), bm25_parameters("bm25:b=0")
    ((1.2, 0.75), (0.9, 0.4), (1.2, 0.0))

    Other names mean the default, as before this option: a job switched to `local` for a
    dry run keeps its hosted model's name.
    """
    match = _MODEL.fullmatch(model.strip()) if model is not None else None
    if match is None:
        if model is not None and model.strip().lower().startswith("bm25"):
            raise ValueError(_model_problem(model))
        return K1, B
    params = {"k1": K1, "b": B}
    for item in match["params"].split(",") if match["params"] is not None else []:
        found = _PARAM.fullmatch(item)
        if found is None:
            raise ValueError(_model_problem(str(model)))
        params[found["name"]] = float(found["value"])
    if params["b"] > 1:  # b is the share of length normalisation: more than all is no BM25
        raise ValueError(f"{_model_problem(str(model))}; b must be between 0 and 1")
    return params["k1"], params["b"]


def _model_problem(model: str) -> str:
    return (
        f'provider.model = {model!r}: the local provider scores BM25; write "bm25" or set its '
        'parameters, e.g. "bm25:k1=0.9,b=0.4"'
    )


class LocalTransport:
    """The `local` provider's transport: each request body is answered in process."""

    url = LOCAL_URL

    def __init__(self, model: str | None = None):
        self.k1, self.b = bm25_parameters(model)

    async def post(self, body: bytes) -> Reply:
        request = orjson.loads(body)
        answer = bm25_answer(
            request["query"], request["documents"], request["top_n"], self.k1, self.b
        )
        return Reply(200, orjson.dumps(answer))

    async def close(self) -> None:
        return None


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = [c for c in word]
            tokens.extend(a + b for a, b in zip(chars, chars[1:], strict=False))
            if len(chars) == 1:
                tokens.append(chars[0])
        else:
            tokens.append(word)
    return tokens


def bm25_scores(query: str, documents: list[str], k1: float = K1, b: float = B) -> list[float]:
    q_terms = set(tokenize(query))
    docs = [tokenize(d) for d in documents]
    n = len(docs)
    avg_len = (sum(len(d) for d in docs) / n) if n else 0.0
    df: Counter[str] = Counter()
    for d in docs:
        df.update(q_terms.intersection(d))
    scores = []
    for d in docs:
        tf = Counter(t for t in d if t in q_terms)
        norm = k1 * (1 - b + b * (len(d) / avg_len if avg_len else 0.0))
        s = 0.0
        for term, f in tf.items():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            s += idf * f * (k1 + 1) / (f + norm)
        scores.append(s)
    return scores


def bm25_answer(query: str, documents: list[str], top_n: int, k1: float = K1, b: float = B) -> dict:
    """A Jina-format answer body for one request."""
    raw = bm25_scores(query, documents, k1, b)
    # logistic(s - 3): strictly inside (0, 1); a document sharing no term scores ~0.047
    scored = [(i, 1.0 / (1.0 + math.exp(3.0 - s))) for i, s in enumerate(raw)]
    scored.sort(key=lambda item: (-item[1], item[0]))
    return {
        "model": "local-bm25",
        "results": [{"index": i, "relevance_score": s} for i, s in scored[:top_n]],
    }

"""What every provider adapter is: a pure translator between our records and one wire format.

    >>> from pipeline.providers.jina import JinaAdapter
    >>> a = JinaAdapter()
    >>> a.build_request("m", "q", ["d0", "d1"], top_n=1)["top_n"]
    1
    >>> a.parse_answer(b'{"results": [{"index": 1, "relevance_score": 0.9}]}', 2, 1).results
    [(1, 0.9)]

An adapter builds a request body, parses an answer into (index, score) pairs plus a
`ProviderUsage`, and parses an error body into one message. It never does I/O, so each is
tested with plain bytes, and the call layer treats all of them alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from pipeline.errors import BadAnswer
from pipeline.records import ProviderUsage
from pipeline.text import excerpt


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    kind: str
    path: str  # appended to base_url, e.g. "/v1/rerank"
    default_base_url: str | None  # None: self-hosted, base_url must be given
    default_key_env: str | None  # None: no key needed
    max_docs_per_request: int
    billing: str  # "tokens", "search_units" or "none"
    # Added for the multi-provider adapters; the defaults keep older specs unchanged.
    default_model: str | None = None  # sent when the job names no model (APIs that require one)
    requires_model: bool = False  # the API rejects a request without `model`
    alt_key_envs: tuple[str, ...] = ()  # other variables the vendor's own SDK reads
    max_tokens_per_request: int | None = None  # documented per-request token ceiling, halved
    docs_per_billing_unit: int | None = None  # Cohere: one search unit = up to 100 documents
    never_send: frozenset[str] = frozenset()  # request fields this API rejects or drops
    # A proxy in front of paid APIs (LiteLLM): its URL is the user's, like a self-hosted
    # server's, but its bill is not zero, so without a price the cost is unknown, not $0.
    gateway: bool = False


@dataclass(slots=True)
class Answer:
    results: list[tuple[int, float]]  # (index within the request, score)
    usage: ProviderUsage


@dataclass(slots=True)
class ErrorInfo:
    message: str
    code: str | None = None
    retryable: bool | None = None  # None: decided by the HTTP status


class Adapter:
    spec: ClassVar[ProviderSpec]

    def build_request(
        self, model: str | None, query: str, documents: list[str], top_n: int
    ) -> dict[str, Any]:
        raise NotImplementedError

    def parse_answer(
        self, body: bytes, n_docs: int, top_n: int, headers: Mapping[str, str] | None = None
    ) -> Answer:
        """`headers`: the reply's headers, for APIs that report usage there (TEI)."""
        raise NotImplementedError

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        return ErrorInfo(error_message(body) or f"HTTP {status}")

    def url(self, base_url: str | None, endpoint: str | None) -> str:
        """Where requests go: `endpoint` verbatim, else base_url + path (no doubled /v1)."""
        if endpoint:
            return endpoint
        base = (base_url or self.spec.default_base_url or "").rstrip("/")
        path = self.spec.path
        for prefix in ("/v1", "/v2"):
            if base.endswith(prefix) and path.startswith(prefix + "/"):
                path = path[len(prefix) :]
        return base + path


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        snippet = excerpt(body[:4096].decode("utf-8", "replace"), 120)
        raise BadAnswer(f"answer is not JSON ({exc.msg}): {snippet!r}") from None


def results_list(data: Any, key: str) -> list:
    if not isinstance(data, dict):
        raise BadAnswer(f"answer is a JSON {type(data).__name__}, expected an object with {key!r}")
    items = data.get(key)
    if not isinstance(items, list):
        raise BadAnswer(f"answer has no {key!r} list")
    return items


def checked_results(
    items: list, n_docs: int, top_n: int, score_key: str = "relevance_score"
) -> list[tuple[int, float]]:
    """Validate (index, score) items: the answer is never merged unless every check passes."""
    fast = _checked_fast(items, n_docs, top_n, score_key)
    if fast is not None:
        return fast
    # Something is wrong (or unusual): the item-by-item pass names the first problem.
    out: list[tuple[int, float]] = []
    seen: set[int] = set()
    for pos, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadAnswer(f"result {pos} is not an object")
        index = item.get("index")
        score = item.get(score_key)
        if isinstance(index, bool) or not isinstance(index, int):
            raise BadAnswer(f"result {pos} has no integer 'index' (got {index!r})")
        if not 0 <= index < n_docs:
            raise BadAnswer(f"result {pos} has index {index}, outside 0..{n_docs - 1}")
        if index in seen:
            raise BadAnswer(f"index {index} appears twice in the answer")
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            raise BadAnswer(
                f"result {pos} (index {index}) has no finite {score_key!r} (got {score!r})"
            )
        seen.add(index)
        out.append((index, float(score)))
    if len(out) < top_n:
        raise BadAnswer(f"asked for {top_n} results, got {len(out)}")
    return out


_INT = {int}
_NUMBER_TYPES = ({float}, {int}, {float, int})


def _checked_fast(
    items: list, n_docs: int, top_n: int, score_key: str
) -> list[tuple[int, float]] | None:
    """The same checks as the item-by-item pass, at C speed, for a well-formed answer;
    None when any check fails (bool is excluded: type(True) is bool, not int)."""
    try:
        indices = [item["index"] for item in items]
        scores = [item[score_key] for item in items]
    except (TypeError, KeyError, IndexError):
        return None
    if not indices:
        return [] if top_n <= 0 else None
    if (
        len(indices) < top_n
        or set(map(type, indices)) != _INT
        or set(map(type, scores)) not in _NUMBER_TYPES
        or min(indices) < 0
        or max(indices) >= n_docs
        or len(set(indices)) != len(indices)
        or not all(map(math.isfinite, scores))
    ):
        return None
    return list(zip(indices, map(float, scores), strict=True))


def optional_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def optional_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def sub_dict(data: Any, *keys: str) -> dict:
    """data[k1][k2]... when every step is an object, else {}: usage blocks are optional."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def header_int(headers: Mapping[str, str] | None, name: str) -> int | None:
    """An integer header, looked up case-insensitively (aiohttp's headers already are; dicts not)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def error_message(body: bytes) -> str | None:
    """One readable message from the error bodies rerank APIs send.

    Jina / New API / one-api / LiteLLM: {"error": {"message", "type", "code"}}; Cohere:
    {"message"}; Voyage, Xinference, FastAPI: {"detail": str | [{"msg"}]}; TEI: {"error",
    "error_type"}. Anything else (plain text, a proxy's HTML page, JSON of another shape) is
    shown as the server's own text, cut short: the message must say what the server said.

        >>> error_message(b"Internal Server Error")
        'Internal Server Error'
        >>> error_message(b'<html><title>502 Bad Gateway</title><body>nginx</body></html>')
        '502 Bad Gateway'
        >>> error_message(b'"No connected db."')
        'No connected db.'
    """
    text = excerpt(body[:4096].decode("utf-8", "replace"))
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text or None
    if isinstance(data, str):
        return excerpt(data) or None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg")
            code = err.get("code") or err.get("type")
            if msg:
                return f"{msg} ({code})" if code else str(msg)
        if isinstance(err, str) and err:
            kind = data.get("error_type")
            return f"{err} ({kind})" if kind else err
        detail = data.get("detail")
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(detail, list) and detail:
            parts = [d.get("msg", str(d)) if isinstance(d, dict) else str(d) for d in detail]
            return "; ".join(parts)
        if isinstance(detail, dict) and detail:
            return str(detail.get("message") or detail)
        msg = data.get("message")
        if isinstance(msg, str) and msg:
            return msg
    return text or None

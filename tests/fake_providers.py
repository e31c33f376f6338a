"""Loopback servers speaking each provider's wire format, for end-to-end tests of the adapters.

Each is a FakeRerankServer with the same scoring (so `reference_ranking` applies) and the
same fault knobs, but that provider's path, request fields, answer shape, usage block and
error bodies, as each provider documents them. `SERVERS` maps kind -> class.

Where the notes leave a behaviour unverified, the fake is strict on purpose (e.g. the
Cohere v2 fake refuses fields v2 removed): a test then proves we never send them.
"""

from __future__ import annotations

import math
import uuid

import orjson
from aiohttp import web

from tests.fake_server import JSON_BODY, FakeRerankServer, RejectRequest


def _ids() -> str:
    return str(uuid.uuid4())


class JinaServer(FakeRerankServer):
    """The foundation's server already speaks Jina / New API."""


class CohereV2Server(FakeRerankServer):
    path = "/v2/rerank"
    too_many_docs_status = 400
    allowed = {"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"}
    api_version = "2"

    def read_request(self, body: dict) -> tuple[str, list[str], int | None]:
        return body["query"], body["documents"], body.get("top_n")

    def check_request(self, body: dict) -> None:
        unknown = sorted(set(body) - self.allowed)
        if unknown:  # [U] in the notes whether Cohere rejects or ignores these: be strict
            raise RejectRequest(
                400, {"id": _ids(), "message": f"invalid request: unknown field {unknown[0]!r}"}
            )
        if not body.get("model"):
            raise RejectRequest(
                400, {"id": _ids(), "message": "invalid request: model is required"}
            )
        if not body["documents"]:
            raise RejectRequest(
                400,
                {"id": _ids(), "message": "invalid request: list of documents must not be empty"},
            )
        if not str(body["query"]).strip():
            raise RejectRequest(
                400,
                {
                    "id": _ids(),
                    "message": "invalid request: query must not be empty or be only whitespace",
                },
            )

    def error_payload(self, status: int, error: dict) -> object:
        return {"id": _ids(), "message": error["message"]}

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        answer: dict = {"id": _ids(), "results": results}
        if tokens is not None:
            answer["meta"] = {
                "api_version": {"version": self.api_version},
                "billed_units": {"search_units": float(math.ceil(len(body["documents"]) / 100))},
                "tokens": {"input_tokens": float(tokens), "output_tokens": 0.0},
            }
        return answer


class CohereV1Server(CohereV2Server):
    path = "/v1/rerank"
    allowed = {
        "model",
        "query",
        "documents",
        "top_n",
        "rank_fields",
        "return_documents",
        "max_chunks_per_doc",
    }
    api_version = "1"


class VoyageServer(FakeRerankServer):
    too_many_docs_status = 400  # "too many documents" is a 400 per Voyage's error codes

    def read_request(self, body: dict) -> tuple[str, list[str], int | None]:
        return body["query"], body["documents"], body.get("top_k")

    def check_request(self, body: dict) -> None:
        if not body.get("model"):
            raise RejectRequest(422, {"detail": "model: field required"})

    def error_payload(self, status: int, error: dict) -> object:
        return {"detail": error["message"]}

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        answer: dict = {"object": "list", "data": results, "model": body["model"]}
        if tokens is not None:
            answer["usage"] = {"total_tokens": tokens}
        return answer


class XinferenceServer(FakeRerankServer):
    def check_request(self, body: dict) -> None:
        if not body.get("model"):
            raise RejectRequest(
                422, {"detail": [{"loc": ["body", "model"], "msg": "field required"}]}
            )

    def error_payload(self, status: int, error: dict) -> object:
        return {"detail": error["message"]}

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        # tokens only with return_len=true, and output_tokens mirrors input_tokens
        counted = tokens is not None and body.get("return_len") is True
        return {
            "id": _ids(),
            "results": [{**r, "document": None} for r in results],
            "meta": {
                "api_version": None,
                "billed_units": None,
                "tokens": {"input_tokens": tokens, "output_tokens": tokens} if counted else None,
                "warnings": None,
            },
        }


class TeiServer(FakeRerankServer):
    path = "/rerank"

    def read_request(self, body: dict) -> tuple[str, list[str], int | None]:
        if "texts" not in body:  # axum's Json extractor, before TEI's own code runs
            raise RejectRequest(
                422,
                "Failed to deserialize the JSON body into the target type: missing field `texts`",
            )
        return body["query"], body["texts"], None  # no top_n: every text comes back

    def check_request(self, body: dict) -> None:
        if not body["texts"]:
            raise RejectRequest(400, {"error": "`texts` cannot be empty", "error_type": "empty"})

    def error_payload(self, status: int, error: dict) -> object:
        kinds = {
            400: "empty",
            401: "unauthorized",
            413: "validation",
            429: "overloaded",
            503: "unhealthy",
        }
        return {"error": error["message"], "error_type": kinds.get(status, "backend")}

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        return [{"index": r["index"], "score": r["relevance_score"]} for r in results]

    def answer_headers(self, tokens: int | None) -> dict[str, str]:
        if tokens is None:
            return {}
        return {"x-compute-tokens": str(tokens), "x-compute-type": "cpu", "x-total-time": "3"}


class OpenAIErrorServer(FakeRerankServer):
    """vLLM and Infinity: {"error": {"message", "type", "param", "code": <HTTP status>}}."""

    def error_payload(self, status: int, error: dict) -> object:
        return {
            "error": {
                "message": error["message"],
                "type": "BadRequestError",
                "param": None,
                "code": status,
            }
        }


class VllmServer(OpenAIErrorServer):
    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        documents = body["documents"]
        answer: dict = {
            "id": f"rerank-{_ids()}",
            "model": body.get("model") or "BAAI/bge-reranker-v2-m3",
            "results": [
                {**r, "document": {"text": documents[r["index"]]}}
                if isinstance(r["index"], int) and 0 <= r["index"] < len(documents)
                else r
                for r in results
            ],
        }
        if tokens is not None:
            answer["usage"] = {"total_tokens": tokens}
        return answer


class InfinityServer(OpenAIErrorServer):
    path = "/rerank"

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        answer: dict = {
            "object": "rerank",
            "results": [{**r, "document": None} for r in results],
            "model": body.get("model") or "mixedbread-ai/mxbai-rerank-xsmall-v1",
            "id": f"infinity-{_ids()}",
            "created": 1700000000,
        }
        if tokens is not None:
            answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return answer


class LlamaCppServer(FakeRerankServer):
    def check_request(self, body: dict) -> None:
        if not isinstance(body.get("query"), str):
            raise RejectRequest(
                400, self.error_payload(400, {"message": '"query" must be a string'})
            )
        if not body["documents"]:
            raise RejectRequest(
                400,
                self.error_payload(
                    400, {"message": '"documents" must be a non-empty string array'}
                ),
            )

    def error_payload(self, status: int, error: dict) -> object:
        return {
            "error": {"code": status, "message": error["message"], "type": "invalid_request_error"}
        }

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        usage = (
            {"prompt_tokens": tokens, "total_tokens": tokens}
            if tokens is not None
            else {"prompt_tokens": 0, "total_tokens": 0}
        )
        return {
            "model": body.get("model") or "bge-reranker-v2-m3",
            "object": "list",
            "usage": usage,
            "results": results,
        }


class LiteLLMServer(FakeRerankServer):
    """A LiteLLM proxy's rerank endpoint in front of a Jina upstream (BerriAI/litellm source).

    - `/rerank`, `/v1/rerank` and `/v2/rerank` are one handler (proxy/rerank_endpoints).
    - The answer is LiteLLM's `RerankResponse` rebuilt by the upstream's transformation
      (llms/jina_ai/rerank): Jina's `usage` is unpacked into both `RerankBilledUnits` and
      `RerankTokens`, and the typed dicts keep only keys they declare, so the answer carries
      `meta.billed_units.total_tokens` and an empty `meta.tokens`; `document` comes back
      unless `return_documents` is false (LiteLLM's default is true).
    - Errors are the proxy's `ProxyException` handler: {"error": {"message", "type", "param",
      "code": "<status>"}}. With `require_key` set the proxy has a master key but no
      database: another key gets 400 "No connected db.", no Authorization a plain-text 500.
    """

    paths = ("/rerank", "/v1/rerank", "/v2/rerank")
    upstream = "jina"
    error_types = {400: "invalid_request_error", 404: "not_found_error", 429: "throttling_error"}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        for path in self.paths:
            app.router.add_post(path, self.handle_proxy)
        return app

    async def handle_proxy(self, request: web.Request) -> web.StreamResponse:
        key = self.knobs.require_key
        auth = request.headers.get("Authorization")
        if key is not None and auth != f"Bearer {key}":
            request[JSON_BODY] = orjson.loads(await request.read())
            if auth is None:  # as seen: the auth hook fails outside the JSON error handler
                return self._reply(request, 500, "Internal Server Error", {}, 0, None, "")
            payload = {"message": "No connected db.", "type": "no_db_connection"}
            return self._reply(request, 400, self._proxy_error(400, payload), {}, 0, None, "")
        return await self.handle(request)

    def check_request(self, body: dict) -> None:
        if not body.get("model"):  # the proxy routes by model name
            raise RejectRequest(
                400,
                self._proxy_error(
                    400, {"message": "Invalid model name passed in model=None", "type": None}
                ),
            )

    def _proxy_error(self, status: int, error: dict) -> dict:
        return {
            "error": {
                "message": error["message"],
                "type": error.get("type", self.error_types.get(status, "None")),
                "param": "None",
                "code": str(status),
            }
        }

    def error_payload(self, status: int, error: dict) -> object:
        return self._proxy_error(status, {"message": error["message"]})

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        documents = body["documents"]
        if body.get("return_documents", True):
            results = [
                {**r, "document": {"text": documents[r["index"]]}}
                if isinstance(r["index"], int) and 0 <= r["index"] < len(documents)
                else r
                for r in results
            ]
        return {"id": _ids(), "results": results, "meta": self.meta(body, tokens)}

    def meta(self, body: dict, tokens: int | None) -> dict:
        usage = {} if tokens is None else {"total_tokens": tokens}
        return {"billed_units": usage, "tokens": {}}


class LiteLLMCohereServer(LiteLLMServer):
    """The same proxy in front of Cohere: Cohere's own `meta` passes through."""

    upstream = "cohere"

    def meta(self, body: dict, tokens: int | None) -> dict:
        meta: dict = {"api_version": {"version": "2"}}
        if tokens is not None:
            meta["billed_units"] = {"search_units": math.ceil(len(body["documents"]) / 100)}
            meta["tokens"] = {"input_tokens": tokens, "output_tokens": 0}
        return meta


class LiteLLMVoyageServer(LiteLLMServer):
    """The same proxy in front of Voyage (llms/voyage/rerank): a token-billed upstream in a
    Cohere-shaped answer, 0 where Voyage reported nothing."""

    upstream = "voyage"

    def meta(self, body: dict, tokens: int | None) -> dict:
        return {
            "billed_units": {"total_tokens": tokens or 0},
            "tokens": {"input_tokens": tokens or 0, "output_tokens": 0},
        }


SERVERS: dict[str, type[FakeRerankServer]] = {
    "jina": JinaServer,
    "cohere": CohereV2Server,
    "cohere-v1": CohereV1Server,
    "voyage": VoyageServer,
    "xinference": XinferenceServer,
    "tei": TeiServer,
    "vllm": VllmServer,
    "infinity": InfinityServer,
    "llamacpp": LlamaCppServer,
    "litellm": LiteLLMServer,
}

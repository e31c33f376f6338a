"""A real rerank server on 127.0.0.1 for tests, speaking the Jina format, with fault knobs.

    async with running_server(Knobs(max_docs=40)) as server:
        ...  # point a job at server.base_url; inspect server.log afterwards

Scores are pointwise and deterministic (a hash of query and document, rounded so that ties
happen), so one unchunked request's ranking is known exactly: `reference_ranking`.

Knobs: a document limit (413 above it), a required key (401 otherwise, or what a gateway
answers instead: `wrong_key_reply`, `no_key_reply`) in a chosen header and scheme, queries
answered with 400, a requests-per-second ceiling (429 above it, optional Retry-After), a
latency, `redirect_to` (every request answered 301 to there), `script`: a queue of
one-shot faults for the next requests ("401", "429", "500", "503", "408", "hang",
"garbage", "truncated", "bad_index", "dup_index", "nan", "short", "reset", "429_bare": a
429 without Retry-After), and `default_fault`: the fault of every request the script does
not cover ("none" in the script: no fault for that request).

Other wire formats (tests/fake_providers.py) subclass the server and override the hooks
`read_request`, `check_request`, `error_payload`, `answer_payload` and `answer_headers`;
the fault logic and the scoring stay here, shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import orjson
from aiohttp import web


def score(query: str, doc: str) -> float:
    digest = hashlib.sha256(f"{query}\x00{doc}".encode()).digest()
    return round(int.from_bytes(digest[:4], "big") / 2**32, 2)  # 2 decimals: ties are common


def reference_ranking(
    query: str, documents: list[str], top_n: int | None = None
) -> list[tuple[int, float]]:
    """What one unchunked request ranks: score descending, ties by index ascending."""
    ranked = sorted(
        ((i, score(query, d)) for i, d in enumerate(documents)), key=lambda x: (-x[1], x[0])
    )
    return ranked if top_n is None else ranked[:top_n]


def pair_tokens(query: str, doc: str) -> int:
    return len(query.split()) + len(doc.split()) + 2


@dataclass
class Knobs:
    max_docs: int | None = None
    require_key: str | None = None
    auth_header: str = "Authorization"  # where require_key is looked for
    auth_scheme: str = "Bearer"  # "": the bare key
    wrong_key_reply: tuple[int, str] | None = None  # (status, plain text) instead of a 401
    no_key_reply: tuple[int, str] | None = None  # the same, when the header is missing
    redirect_to: str | None = None
    default_fault: str | None = None
    reject_queries: set[str] = field(default_factory=set)  # answered 400
    max_rps: float | None = None  # 429 above this many requests in any 1 s window
    retry_after: str | None = None  # header sent with 429s from max_rps
    latency_s: float = 0.0
    hang_s: float = 3600.0
    report_usage: bool = True
    script: deque = field(default_factory=deque)  # one-shot faults, consumed in order


@dataclass
class Received:
    at: float
    status: int
    n_docs: int
    top_n: int | None
    query: str
    authorization: str | None
    body: dict | None = None  # the parsed request body, to check the exact fields sent
    headers: dict[str, str] = field(default_factory=dict)


JSON_BODY = web.RequestKey("json_body", dict)  # the parsed body, kept for the request log


class RejectRequest(Exception):
    """Raised by a `check_request` hook: answer with this status and payload."""

    def __init__(self, status: int, payload: object):
        super().__init__(status)
        self.status = status
        self.payload = payload


class FakeRerankServer:
    path = "/v1/rerank"
    too_many_docs_status = 413

    def __init__(self, knobs: Knobs | None = None):
        self.knobs = knobs or Knobs()
        self.log: list[Received] = []
        self._window: deque[float] = deque()
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post(self.path, self.handle)
        return app

    def statuses(self) -> list[int]:
        return [r.status for r in self.log]

    # -- wire-format hooks (Jina format here) ------------------------------------------------
    def read_request(self, body: dict) -> tuple[str, list[str], int | None]:
        """(query, documents, top_n); KeyError/TypeError for a malformed body."""
        return body["query"], body["documents"], body.get("top_n")

    def check_request(self, body: dict) -> None:
        """Raise RejectRequest for a body this API refuses."""

    def error_payload(self, status: int, error: dict) -> object:
        """`error` is Jina-shaped: {"message", "code"?, "type"?}."""
        return {"error": error}

    def answer_payload(self, body: dict, results: list[dict], tokens: int | None) -> object:
        """`results`: [{"index", "relevance_score"}], ranked; `tokens`: None to report no usage."""
        answer: dict = {"model": body.get("model") or "fake-reranker", "results": results}
        if tokens is not None:
            answer["usage"] = {"total_tokens": tokens, "prompt_tokens": tokens}
        return answer

    def answer_headers(self, tokens: int | None) -> dict[str, str]:
        return {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        k = self.knobs
        raw = await request.read()
        try:
            body = orjson.loads(raw)
            request[JSON_BODY] = body
            query, docs, top_n = self.read_request(body)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._reply(
                request,
                400,
                self.error_payload(400, {"message": "bad request body", "code": "invalid_request"}),
                {},
                0,
                None,
                "",
            )
        except RejectRequest as rejected:
            return self._reply(request, rejected.status, rejected.payload, {}, 0, None, "")
        n = len(docs)
        auth = request.headers.get(k.auth_header)
        fault = k.script.popleft() if k.script else k.default_fault
        if k.latency_s:
            await asyncio.sleep(k.latency_s)
        if k.redirect_to is not None:
            self._record(request, 301, n, top_n, query)
            return web.Response(status=301, headers={"Location": k.redirect_to})
        wanted = f"{k.auth_scheme} {k.require_key}" if k.auth_scheme else k.require_key
        if k.require_key is not None and auth != wanted:
            gateway = k.no_key_reply if auth is None else k.wrong_key_reply
            if gateway is not None:
                return self._reply(request, gateway[0], gateway[1], {}, n, top_n, query)
            return self._reply(
                request,
                401,
                self.error_payload(
                    401, {"message": "Invalid API key", "type": "auth", "code": "invalid_api_key"}
                ),
                {},
                n,
                top_n,
                query,
            )
        try:
            self.check_request(body)
        except RejectRequest as rejected:
            return self._reply(request, rejected.status, rejected.payload, {}, n, top_n, query)
        if k.max_rps is not None:
            now = time.monotonic()
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= k.max_rps:
                headers = {"Retry-After": k.retry_after} if k.retry_after else {}
                return self._reply(
                    request,
                    429,
                    self.error_payload(
                        429, {"message": "rate limit exceeded", "code": "rate_limit"}
                    ),
                    headers,
                    n,
                    top_n,
                    query,
                )
            self._window.append(now)
        if fault in ("401", "429", "500", "503", "408"):
            status = int(fault)
            headers = {"Retry-After": "0"} if status in (429, 503) else {}
            return self._reply(
                request,
                status,
                self.error_payload(status, {"message": f"injected {fault}"}),
                headers,
                n,
                top_n,
                query,
            )
        if fault == "429_bare":
            return self._reply(
                request,
                429,
                self.error_payload(429, {"message": "injected 429"}),
                {},
                n,
                top_n,
                query,
            )
        if fault == "hang":
            await asyncio.sleep(k.hang_s)
        if fault == "reset":
            request.transport.close()
            self._record(request, 0, n, top_n, query)
            return web.Response(status=200)
        if fault == "garbage":
            self._record(request, 200, n, top_n, query)
            return web.Response(
                status=200, body=b"<html>502 Bad Gateway</html>", content_type="text/html"
            )
        if k.max_docs is not None and n > k.max_docs:
            msg = f"too many documents: {n} > {k.max_docs}"
            status = self.too_many_docs_status
            return self._reply(
                request,
                status,
                self.error_payload(status, {"message": msg, "code": "too_many_documents"}),
                {},
                n,
                top_n,
                query,
            )
        if query in k.reject_queries:
            return self._reply(
                request,
                400,
                self.error_payload(
                    400, {"message": "query rejected by policy", "code": "invalid_request"}
                ),
                {},
                n,
                top_n,
                query,
            )
        ranked = reference_ranking(query, docs, top_n)
        results = [{"index": i, "relevance_score": s} for i, s in ranked]
        if fault == "bad_index" and results:
            results[0]["index"] = n + 5
        if fault == "dup_index" and len(results) > 1:
            results[1]["index"] = results[0]["index"]
        if fault == "nan" and results:
            results[0]["relevance_score"] = "NaN"
        if fault == "short" and results:
            results = results[:-1]
        tokens = sum(pair_tokens(query, d) for d in docs) if k.report_usage else None
        answer = self.answer_payload(body, results, tokens)
        headers = self.answer_headers(tokens)
        if fault == "truncated":
            self._record(request, 200, n, top_n, query)
            return web.Response(
                status=200,
                body=orjson.dumps(answer)[:-7],
                headers=headers,
                content_type="application/json",
            )
        return self._reply(request, 200, answer, headers, n, top_n, query)

    def _reply(self, request, status, payload, headers, n, top_n, query) -> web.Response:
        self._record(request, status, n, top_n, query)
        if isinstance(payload, str):  # a plain-text error, as some frameworks send
            return web.Response(
                status=status, text=payload, headers=headers, content_type="text/plain"
            )
        return web.Response(
            status=status,
            body=orjson.dumps(payload),
            headers=headers,
            content_type="application/json",
        )

    def _record(self, request, status, n, top_n, query) -> None:
        self.log.append(
            Received(
                time.monotonic(),
                status,
                n,
                top_n,
                query,
                request.headers.get("Authorization"),
                request.get(JSON_BODY),
                dict(request.headers),
            )
        )


@contextlib.asynccontextmanager
async def running_server(
    knobs: Knobs | None = None,
    server_cls: type = FakeRerankServer,
    ssl_context: ssl.SSLContext | None = None,
):
    """The server on a free port of 127.0.0.1; HTTPS with `ssl_context`."""
    server = server_cls(knobs)
    runner = web.AppRunner(server.app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    scheme = "https" if ssl_context is not None else "http"
    server.base_url = f"{scheme}://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


class ThreadedServer:
    """The same server on its own loop in a thread, for tests that run the CLI as a subprocess."""

    def __init__(self, knobs: Knobs | None = None, server_cls: type = FakeRerankServer):
        self.knobs = knobs
        self.server_cls = server_cls
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.server: FakeRerankServer | None = None

    def __enter__(self) -> FakeRerankServer:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        assert self.server is not None
        return self.server

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_server(self.knobs, self.server_cls) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

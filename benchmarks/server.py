"""A lean loopback Jina-format rerank server for the benchmarks, run in its own process.

    python benchmarks/server.py [--latency S] [--max-rps R] [--max-tps T] [--retry-after S]
                                [--scorer hash|lexical]

Prints `PORT <n>` on stdout once it listens on 127.0.0.1, then serves until killed.

    POST /v1/rerank   Jina's format: {"query", "documents", "top_n"} -> {"results", "usage"}
    GET  /stats       counters: requests, ok, http_429, first/last request and last 429 times
                      (seconds since the first request), so a benchmark can tell how many
                      429s happened and when
    POST /reset       zero the counters

Knobs:
    --latency S       every answer waits S seconds first (asyncio.sleep: costs no CPU)
    --max-rps R       answer 429 (with Retry-After) to a request that would make more than R
                      accepted requests in the last second (sliding 1 s window)
    --max-tps T       the same for tokens: 429 to a request whose tokens would make more than
                      T accepted tokens in the last second; a request's tokens are counted as
                      the pipeline estimates plain ASCII text (ceil(characters / 4) of the
                      query and of each document, per document), so a job whose
                      tokens_per_minute is 60 T meters the very same numbers
    --scorer          hash: a score from the CRC32 of (query, document), as cheap as a score
                      can be, so the server spends its core on HTTP and JSON, not on scoring;
                      lexical: idf-weighted query-term coverage (for the Vaswani figure)

It is a separate process on purpose: on the benchmark's 2-core machine the client's event
loop and the server's each get a core instead of sharing one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
import zlib
from collections import deque

import orjson
from aiohttp import web

TOKEN = re.compile(r"[a-z0-9]+")


class BenchServer:
    def __init__(
        self,
        latency: float = 0.0,
        max_rps: float | None = None,
        retry_after: str = "1",
        scorer: str = "hash",
        idf: dict[str, float] | None = None,
        max_tps: float | None = None,
    ):
        self.latency = latency
        self.max_rps = max_rps
        self.max_tps = max_tps
        self.retry_after = retry_after
        self.scorer = scorer
        self.idf = idf or {}
        self.reset()

    def reset(self) -> None:
        self.window: deque[float] = deque()
        self.token_window: deque[tuple[float, int]] = deque()
        self.window_tokens = 0
        self.requests = 0
        self.ok = 0
        self.http_429 = 0
        self.documents = 0
        self.first: float | None = None
        self.last: float | None = None
        self.last_ok: float | None = None
        self.last_429: float | None = None
        self.times_429: list[float] = []

    def stats(self) -> dict:
        t0 = self.first

        def rel(t: float | None) -> float | None:
            return None if t is None or t0 is None else round(t - t0, 4)

        return {
            "requests": self.requests,
            "ok": self.ok,
            "http_429": self.http_429,
            "documents": self.documents,
            "last_request_s": rel(self.last),
            "last_ok_s": rel(self.last_ok),
            "last_429_s": rel(self.last_429),
            "times_429_s": [round(t - t0, 4) for t in self.times_429[:10_000]]
            if t0 is not None
            else [],
        }

    async def rerank(self, request: web.Request) -> web.Response:
        raw = await request.read()
        now = time.monotonic()
        self.requests += 1
        if self.first is None:
            self.first = now
        self.last = now
        if self.max_rps is not None:
            window = self.window
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.max_rps:
                self.http_429 += 1
                self.last_429 = now
                if len(self.times_429) < 10_000:
                    self.times_429.append(now)
                return web.Response(
                    status=429,
                    body=b'{"error":{"message":"rate limit exceeded","code":"rate_limit"}}',
                    headers={"Retry-After": self.retry_after},
                    content_type="application/json",
                )
            window.append(now)
        try:
            body = orjson.loads(raw)
            query, docs = body["query"], body["documents"]
            top_n = body.get("top_n") or len(docs)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(
                status=400,
                body=b'{"error":{"message":"bad request body"}}',
                content_type="application/json",
            )
        if self.max_tps is not None:
            limited = self._over_token_rate(now, query, docs)
            if limited is not None:
                return limited
        scores = self._scores(query, docs)
        order = sorted(range(len(docs)), key=scores.__getitem__, reverse=True)[:top_n]
        tokens = (len(raw) + 3) // 4
        answer = orjson.dumps(
            {
                "model": body.get("model") or "bench-reranker",
                "results": [{"index": i, "relevance_score": scores[i]} for i in order],
                "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
            }
        )
        if self.latency:
            # The answer leaves `latency` seconds after the request arrived: the server's own
            # CPU time is inside the latency, as a model server's would be.
            left = now + self.latency - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)
        self.ok += 1
        self.documents += len(docs)
        self.last_ok = time.monotonic()
        return web.Response(body=answer, content_type="application/json")

    def _over_token_rate(self, now: float, query: str, docs: list[str]) -> web.Response | None:
        window = self.token_window
        while window and now - window[0][0] >= 1.0:
            self.window_tokens -= window.popleft()[1]
        q = -(-len(query) // 4)
        tokens = sum(q + -(-len(d) // 4) for d in docs)
        assert self.max_tps is not None
        if window and self.window_tokens + tokens > self.max_tps:
            self.http_429 += 1
            self.last_429 = now
            if len(self.times_429) < 10_000:
                self.times_429.append(now)
            return web.Response(
                status=429,
                body=b'{"error":{"message":"token rate limit exceeded","code":"rate_limit"}}',
                headers={"Retry-After": self.retry_after},
                content_type="application/json",
            )
        window.append((now, tokens))
        self.window_tokens += tokens
        return None

    def _scores(self, query: str, docs: list[str]) -> list[float]:
        if self.scorer == "lexical":
            return self._lexical(query, docs)
        seed = zlib.crc32(query.encode())
        crc = zlib.crc32
        return [crc(d.encode(), seed) / 4294967296.0 for d in docs]

    def _lexical(self, query: str, docs: list[str]) -> list[float]:
        """Idf-weighted share of the query's distinct terms a document contains, with a small
        bonus for documents where they occur close together. Not BM25, not a neural model:
        a different, cheap lexical opinion, so the reranked order differs from the first stage."""
        terms = set(TOKEN.findall(query.lower()))
        idf = self.idf
        weights = {t: idf.get(t, 0.0) for t in terms}
        total = sum(weights.values()) or 1.0
        out = []
        for doc in docs:
            words = TOKEN.findall(doc.lower())
            positions = [i for i, w in enumerate(words) if w in weights]
            present = {words[i] for i in positions}
            cover = sum(weights[t] for t in present) / total
            span = (positions[-1] - positions[0] + 1) if len(present) > 1 else len(words) or 1
            out.append(cover + 0.1 * len(present) / span + 1e-6 / (1 + len(words)))
        return out

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_post("/v1/rerank", self.rerank)

        async def stats(_request: web.Request) -> web.Response:
            return web.Response(body=orjson.dumps(self.stats()), content_type="application/json")

        async def reset(_request: web.Request) -> web.Response:
            self.reset()
            return web.Response(body=b"{}", content_type="application/json")

        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        return app


def load_idf(path: str | None) -> dict[str, float]:
    if not path:
        return {}
    with open(path, "rb") as fh:
        return orjson.loads(fh.read())


async def serve(args: argparse.Namespace) -> None:
    server = BenchServer(
        args.latency, args.max_rps, args.retry_after, args.scorer, load_idf(args.idf), args.max_tps
    )
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-rps", type=float, default=None)
    parser.add_argument("--max-tps", type=float, default=None)
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--scorer", choices=("hash", "lexical"), default="hash")
    parser.add_argument("--idf", default=None, help="JSON file term -> idf, for --scorer lexical")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())

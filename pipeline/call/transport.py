"""Transports: how a request body reaches a reranker and an answer comes back.

`HttpTransport` owns the job's single aiohttp session; `LocalTransport` answers in process
with the built-in BM25 scorer. Both return a `Reply` and let exceptions rise unchanged:
`RerankClient` translates them into the call layer's exception tree in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import orjson

from pipeline.providers.local import bm25_answer


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Transport:
    url: str

    async def post(self, body: bytes) -> Reply:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class HttpTransport(Transport):
    def __init__(
        self,
        url: str,
        api_key: str | None,
        max_concurrency: int,
        timeout_s: float,
        connect_timeout_s: float,
    ):
        self.url = url
        # In-flight requests never exceed the connector's limit, so no request waits for a
        # free connection and `total` measures only the request itself.
        connector = aiohttp.TCPConnector(
            limit=max(max_concurrency, 1), limit_per_host=0, ttl_dns_cache=300
        )
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(connect_timeout_s, timeout_s), sock_read=timeout_s
        )
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
        )

    async def post(self, body: bytes) -> Reply:
        async with self._session.post(
            self.url, data=body, headers=self._headers, allow_redirects=False
        ) as resp:
            data = await resp.read()
            return Reply(resp.status, data, resp.headers)

    async def close(self) -> None:
        await self._session.close()


class LocalTransport(Transport):
    url = "local://bm25"

    async def post(self, body: bytes) -> Reply:
        request = orjson.loads(body)
        answer = bm25_answer(request["query"], request["documents"], request["top_n"])
        return Reply(200, orjson.dumps(answer))

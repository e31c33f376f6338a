"""The HTTP transport: request bodies to a rerank API over the job's one aiohttp session.

It returns a `Reply` for any status and lets exceptions rise unchanged: `RerankClient`
translates them into `pipeline.errors` in one place (see `pipeline.transport`).
"""

from __future__ import annotations

import aiohttp

from pipeline.transport import Reply


class HttpTransport:
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

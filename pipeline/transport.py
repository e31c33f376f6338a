"""The Transport interface: how a request body reaches a reranker and its reply comes back.

Implementations: `pipeline.call.http.HttpTransport` (aiohttp: the job's one session) and
`pipeline.providers.local.LocalTransport` (the built-in BM25 scorer, in process). A test,
a benchmark or another engine hands its own to `pipeline.run.run_job(job, transport=...)`.

A transport only moves bytes: it returns a `Reply` for any HTTP status and lets
exceptions rise unchanged; `RerankClient` translates both into `pipeline.errors` in one
place. This module sits below the call layer so that providers can implement it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Transport(Protocol):
    url: str  # where requests go; named in error messages

    async def post(self, body: bytes) -> Reply: ...

    async def close(self) -> None: ...

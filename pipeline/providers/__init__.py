"""Provider adapters, one per wire format, looked up by `provider.kind`.

    >>> get_adapter("jina").spec.path
    '/v1/rerank'
"""

from __future__ import annotations

from pipeline.providers.base import Adapter, Answer, ErrorInfo, ProviderSpec
from pipeline.providers.jina import JinaAdapter
from pipeline.providers.local import LocalAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "jina": JinaAdapter,
    "local": LocalAdapter,
}


def known_kinds() -> list[str]:
    return sorted(ADAPTERS)


def get_adapter(kind: str) -> Adapter:
    return ADAPTERS[kind]()


__all__ = ["Adapter", "Answer", "ErrorInfo", "ProviderSpec", "get_adapter", "known_kinds"]

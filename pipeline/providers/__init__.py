"""Provider adapters, one per wire format, looked up by `provider.kind`.

    >>> get_adapter("jina").spec.path
    '/v1/rerank'
    >>> get_adapter("cohere").spec.billing
    'search_units'

Every adapter normalizes its answer into Jina's shape: (index, relevance_score) pairs plus a
`ProviderUsage`. The wire facts behind each one are in its module docstring.
"""

from __future__ import annotations

from pipeline.providers.base import Adapter, Answer, ErrorInfo, ProviderSpec
from pipeline.providers.cohere import CohereAdapter, CohereV1Adapter
from pipeline.providers.jina import JinaAdapter
from pipeline.providers.litellm import LiteLLMAdapter
from pipeline.providers.local import LocalAdapter
from pipeline.providers.models import ModelProfile, model_profile
from pipeline.providers.selfhosted import InfinityAdapter, LlamaCppAdapter, VllmAdapter
from pipeline.providers.tei import TeiAdapter
from pipeline.providers.voyage import VoyageAdapter
from pipeline.providers.xinference import XinferenceAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    cls.spec.kind: cls
    for cls in (
        JinaAdapter,
        LocalAdapter,
        CohereAdapter,
        CohereV1Adapter,
        VoyageAdapter,
        XinferenceAdapter,
        TeiAdapter,
        VllmAdapter,
        InfinityAdapter,
        LlamaCppAdapter,
        LiteLLMAdapter,
    )
}


def known_kinds() -> list[str]:
    return sorted(ADAPTERS)


def get_adapter(kind: str) -> Adapter:
    return ADAPTERS[kind]()


__all__ = [
    "Adapter",
    "Answer",
    "ErrorInfo",
    "ModelProfile",
    "ProviderSpec",
    "get_adapter",
    "known_kinds",
    "model_profile",
]

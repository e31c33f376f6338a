"""A job's request shape, resolved once from the job and its provider adapter.

    >>> from pipeline.config import load_job_text
    >>> cfg = load_job_text('[input]\\npath = "in.jsonl"\\n[provider]\\nkind = "local"\\n'
    ...                     '[output]\\ndir = "out"\\n[limits]\\nfinal_pass = true\\n')
    >>> s = resolve_settings(cfg)
    >>> s.max_docs, s.max_tokens, s.profile.listwise, s.final_window
    (64, None, True, 64)

The run and `estimate` both plan from this object, so an estimate plans exactly the
requests a run would send. It reads no environment and touches no file: the checks that
can fail before a run (key, URL, output directory) are `pipeline.preflight`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import JobConfig
from pipeline.providers import Adapter, ModelProfile, get_adapter, model_profile


@dataclass(frozen=True, slots=True)
class RunSettings:
    adapter: Adapter
    profile: ModelProfile  # pointwise or listwise, and the listwise window
    max_docs: int  # documents per request: the job's limit, else the provider's
    max_tokens: int | None  # tokens per request: the job's limit, else the provider's
    max_doc_tokens: int | None
    truncate: str  # input.truncate: what an over-long document gets
    top_n: int | None
    # Most documents one listwise context ranks together: the model's window, capped by
    # the request size.
    listwise_window: int
    # A listwise model's chunk scores are not comparable: with limits.final_pass, the
    # merged leaders of a chunked query are re-ranked in one request of this many documents.
    final_window: int | None


def resolve_settings(cfg: JobConfig) -> RunSettings:
    adapter = get_adapter(cfg.provider.kind)
    spec = adapter.spec
    lim = cfg.limits
    max_docs = lim.max_docs_per_request or spec.max_docs_per_request
    profile = model_profile(cfg.provider.kind, cfg.provider.model or spec.default_model)
    window = min(profile.window or max_docs, max_docs)
    return RunSettings(
        adapter=adapter,
        profile=profile,
        max_docs=max_docs,
        max_tokens=lim.max_tokens_per_request or spec.max_tokens_per_request,
        max_doc_tokens=lim.max_doc_tokens,
        truncate=cfg.input.truncate,
        top_n=cfg.output.top_n,
        listwise_window=window,
        final_window=window if profile.listwise and lim.final_pass else None,
    )

"""Opening a job's score cache, with every check that must pass before a request is sent.

    >>> from pipeline.config import load_job_text
    >>> from pipeline.providers import get_adapter, model_profile
    >>> cfg = load_job_text('[input]\\npath = "in.jsonl"\\n[provider]\\nkind = "local"\\n'
    ...                     '[output]\\ndir = "out"\\n[cache]\\npath = "c.db"\\n')
    >>> check_pointwise(cfg.cache, model_profile("local", None))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.SetupError: cache.path is set, but local BM25: ...

A cached score is exact only for a pointwise model, which scores each document on its own:
then a pair scores the same in any request. A model this project knows to be listwise
(`pipeline.providers.models`), and the `local` BM25 scorer (IDF from each request's
documents), are refused (a `SetupError`: exit 2, nothing sent) unless the job says
`cache.allow_listwise = true`, and then a warning says what that means. Callers check
(`check_pointwise`) before anything else of the job is prepared, then `open_cache`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.accounting.cost import job_billing
from pipeline.cache.keys import scoring_identity
from pipeline.cache.stage import ScoreCache
from pipeline.cache.store import CacheFileError
from pipeline.config import CacheConfig, JobConfig
from pipeline.errors import SetupError
from pipeline.providers import Adapter, ModelProfile


def check_pointwise(cfg: CacheConfig, profile: ModelProfile) -> None:
    """Refuse a listwise scorer (SetupError), or warn when the job opted in."""
    if cfg.path is None or not profile.listwise:
        return
    what = (
        "its score for a document depends on the other documents of the request, so a "
        "cached score is not the score a new request would give"
    )
    if not cfg.allow_listwise:
        raise SetupError(
            f"cache.path is set, but {profile.note}: {what}. Use a pointwise model, remove "
            "[cache], or set cache.allow_listwise = true to cache anyway (rankings can then "
            "differ from an uncached run's)"
        )
    print(
        f"warning: cache.allow_listwise: {profile.note}; {what}: cached scores made in other "
        "requests are merged with fresh ones, so rankings can differ from an uncached run's",
        file=sys.stderr,
    )


def open_cache(
    job: JobConfig,
    adapter: Adapter,
    url: str,
    model: str | None,
    *,
    estimate: bool = False,
) -> ScoreCache | None:
    """The job's cache, or None without [cache]. `url`, `model`: where the requests go and
    the model they name. `estimate`: open read-only, and a file that does not exist yet is
    no cache (everything would be sent). Raises SetupError for an unusable file."""
    cfg = job.cache
    if cfg.path is None:
        return None
    path = Path(cfg.path)
    if estimate and not path.exists():
        return None
    billing = job_billing(job.provider.kind, model, job.pricing)
    try:
        return ScoreCache.create(
            path,
            scoring_identity(adapter, url, model),
            read_only=cfg.read_only or estimate,
            max_age_days=cfg.max_age_days,
            # Cohere counts a long document as several: the cache's savings count it so too.
            unit_document_tokens=(
                billing.tokens_per_document if billing.basis == "search_units" else None
            ),
        )
    except CacheFileError as exc:
        raise SetupError(f"cache.path: {exc}") from None

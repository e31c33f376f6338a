"""The persistent score cache: a pair scored once is not paid for again.

    >>> import tempfile, pathlib
    >>> from pipeline.config import load_job_text
    >>> from pipeline.providers import get_adapter, model_profile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.db"
    >>> job = load_job_text(f'[input]\\npath = "in.jsonl"\\n[provider]\\nkind = "jina"\\n'
    ...                     f'[output]\\ndir = "out"\\n[cache]\\npath = "{path}"\\n')
    >>> check_pointwise(job.cache, model_profile("jina", "jina-reranker-v2-base-multilingual"))
    >>> cache = open_cache(job, get_adapter("jina"), "https://api.jina.ai/v1/rerank",
    ...                    "jina-reranker-v2-base-multilingual")
    >>> cache.stores, cache.counters.pairs
    (True, 0)
    >>> cache.close()

A job turns it on with `[cache] path = "cache/scores.db"`. Each (query, document) pair is
looked up before chunking; only misses are chunked, rate limited and sent; the merge
combines cached and fresh scores into the same ranking an uncached run gives; fresh scores
are stored as they arrive.

- `keys`: what an entry is keyed by (scoring identity, query, document text), as digests;
- `store`: the SQLite file (WAL): schema, lookups, inserts;
- `writer`: the thread that stores fresh scores, off the event loop;
- `stage`: `ScoreCache` (look up, remember, counters) and `plan_uncached`;
- `setup`: opening a job's cache, refusing listwise scorers;
- `summary`: the cache block of summary.json, the end table and `report`;
- `admin`, `command`: `rerank-pipeline cache stats|drop`.

It imports only lower layers (records, errors, config, providers, chunk, accounting);
`pipeline.run` and `pipeline.estimate` hook it in.
"""

from pipeline.cache.keys import ScoringIdentity, pair_keys, scoring_identity
from pipeline.cache.setup import check_pointwise, open_cache
from pipeline.cache.stage import CacheCounters, Cached, ScoreCache, plan_uncached
from pipeline.cache.store import CacheFileError, ScoreStore

__all__ = [
    "CacheCounters",
    "CacheFileError",
    "Cached",
    "ScoreCache",
    "ScoreStore",
    "ScoringIdentity",
    "check_pointwise",
    "open_cache",
    "pair_keys",
    "plan_uncached",
    "scoring_identity",
]

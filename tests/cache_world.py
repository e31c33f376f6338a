"""Two nights of candidate lists, and what a score cache should make of them.

Night 2 is night 1 as a search index changes overnight: some queries are gone, some are
new, every list is shuffled, 10% of the document texts changed, and some documents changed
id but not text. `new_pairs` is what a cached night 2 must send: exactly the (query,
document text) pairs night 1 did not score, one per position that holds one.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from pipeline.cache import ScoreStore, pair_keys, scoring_identity
from pipeline.providers import get_adapter
from tests.fake_server import Received
from tests.helpers import WORDS, make_queries


def night_one(n: int = 60, sizes: list[int] | None = None, seed: int = 31) -> list[dict]:
    return make_queries(n, sizes or [4, 12, 25, 9, 30, 17], seed=seed)


def night_two(night1: list[dict], seed: int = 32, changed: float = 0.1) -> list[dict]:
    rng = random.Random(seed)
    kept = [q for i, q in enumerate(night1) if i % 6 != 5]  # a sixth of the queries gone
    out = []
    for q in kept:
        docs, ids = list(q["documents"]), list(q["doc_ids"])
        for j in range(len(docs)):
            if rng.random() < changed:
                docs[j] = docs[j] + " " + " ".join(rng.choice(WORDS) for _ in range(3))
            elif rng.random() < 0.1:
                ids[j] = ids[j] + "-moved"  # a new id, the same text: still a hit
        order = list(range(len(docs)))
        rng.shuffle(order)
        out.append(
            {
                "query_id": q["query_id"],
                "query": q["query"],
                "documents": [docs[j] for j in order],
                "doc_ids": [ids[j] for j in order],
            }
        )
    for q in make_queries(8, [7, 22, 3], seed=seed + 1):  # new queries, new texts
        q["query_id"] = "new-" + q["query_id"]
        q["query"] = q["query"] + " (new)"
        out.append(q)
    rng.shuffle(out)
    return out


def pairs_of(queries: list[dict]) -> Counter[tuple[str, str]]:
    return Counter((q["query"], d) for q in queries for d in q["documents"])


def new_pairs(before: list[dict], after: list[dict]) -> Counter[tuple[str, str]]:
    """The pairs (one per position) of `after` that `before` never had."""
    seen = set(pairs_of(before))
    return Counter(
        (q["query"], d) for q in after for d in q["documents"] if (q["query"], d) not in seen
    )


def pairs_sent(log: list[Received]) -> Counter[tuple[str, str]]:
    """Every (query, document) pair the server was sent, with repeats."""
    sent: Counter[tuple[str, str]] = Counter()
    for r in log:
        if r.body is not None:
            sent.update((r.body["query"], d) for d in r.body["documents"])
    return sent


def cached_scores(
    cache: Path, base_url: str, pairs: list[tuple[str, str]], model: str | None = None
) -> dict[tuple[str, str], float]:
    """The scores a jina job against `base_url` finds in the cache for `pairs`."""
    adapter = get_adapter("jina")
    ident = scoring_identity(adapter, adapter.url(base_url, None), model)
    store = ScoreStore.open(cache, read_only=True)
    try:
        model_id = store.model_id(ident)
        found: dict[tuple[str, str], float] = {}
        if model_id is None:
            return found
        for query, doc in pairs:
            (key,) = pair_keys(ident.digest, query, [doc])
            hit, _ = store.lookup(model_id, [key])
            if key in hit:
                found[(query, doc)] = hit[key]
        return found
    finally:
        store.close()

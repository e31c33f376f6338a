"""What a cache holds, and dropping entries: the work behind `rerank-pipeline cache`.

    >>> import tempfile, pathlib
    >>> from pipeline.cache.keys import ScoringIdentity
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.db"
    >>> store = ScoreStore.open(path)
    >>> m = store.model_id(ScoringIdentity("jina", "https://api.jina.ai/v1/rerank", "v2", "{}"))
    >>> store.put(m, [(b"a" * 24, 0.5), (b"b" * 24, 0.25)], created=1_700_000_000); store.close()
    2
    >>> s = cache_stats(path)
    >>> s["entries"], [(x["model"], x["entries"]) for x in s["models"]]
    (2, [('v2', 2)])
    >>> drop_entries(path, model="v2")
    2

Counting reads every entry once (grouped by model, in key order: entries of a model are
stored together): a few seconds per 10 million entries, and only a read, so it runs while
jobs use the cache. Dropping deletes in one transaction; the file keeps its size and the
freed pages are reused by new entries (`sqlite3 PATH 'VACUUM'` shrinks it, with no job
running).
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.cache.store import ScoreStore


def cache_stats(path: Path) -> dict:
    """Entries, bytes on disk, oldest and newest entry, in all and per scoring identity."""
    path = Path(path)
    store = ScoreStore.open(path, read_only=True)
    try:
        rows = store.conn.execute(
            "SELECT model, count(*), min(created), max(created) FROM scores GROUP BY model"
        ).fetchall()
        models = {m.id: m for m in store.models()}
    finally:
        store.close()
    per_model = []
    for model_id, n, oldest, newest in rows:
        m = models.get(model_id)
        per_model.append(
            {
                "kind": m.kind if m else None,
                "model": m.model if m else None,
                "url": m.url if m else None,
                "options": m.options if m else None,
                "entries": n,
                "oldest": oldest,
                "newest": newest,
            }
        )
    wal = path.with_name(path.name + "-wal")
    return {
        "path": str(path),
        "bytes": path.stat().st_size + (wal.stat().st_size if wal.exists() else 0),
        "entries": sum(r[1] for r in rows),
        "oldest": min((r[2] for r in rows), default=None),
        "newest": max((r[3] for r in rows), default=None),
        "models": per_model,
    }


def drop_entries(
    path: Path,
    *,
    model: str | None = None,
    kind: str | None = None,
    older_than_days: float | None = None,
) -> int:
    """Delete the entries of every identity whose model (and kind) match, or (and) entries
    older than `older_than_days`; returns how many. The identities themselves stay (a row
    each): a job using one right now keeps a valid number for the entries it adds."""
    if model is None and kind is None and older_than_days is None:
        raise ValueError("nothing to match: give a model, a kind or an age")
    store = ScoreStore.open(Path(path))
    try:
        ids = [
            m.id
            for m in store.models()
            if (model is None or m.model == model) and (kind is None or m.kind == kind)
        ]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        where, args = f"model IN ({marks})", list(ids)
        if older_than_days is not None:
            where += " AND created < ?"
            args.append(int(time.time() - older_than_days * 86_400))
        with store.transaction():
            return int(store.conn.execute(f"DELETE FROM scores WHERE {where}", args).rowcount)
    finally:
        store.close()

"""Offline retrieval evaluation with trec_eval's conventions, columnar at any size.

>>> import polars as pl
>>> from pipeline.evaluate import rank_by_score, score_ranking
>>> run = rank_by_score(pl.DataFrame({"query_id": ["q1", "q1"], "doc_id": ["d1", "d2"], "score": [0.9, 0.2]}))
>>> qrels = pl.DataFrame({"query_id": ["q1"], "doc_id": ["d2"], "relevance": [1]})
>>> score_ranking(run, qrels, ks=[1])[["query_id", "mrr", "p@1"]].rows()
[('q1', 0.5, 0.0)]

One system's ranking table (``query_id, doc_id, position``) scored against judgments
(``query_id, doc_id, relevance``) gives a per-query metrics frame: ``score_ranking``,
which every entry point uses. Entry points: ``evaluate_output_dir`` (a pipeline output
directory: first stage vs reranked), ``evaluate_run_files`` (TREC run files), and
``command.add_eval_parser`` for the command line.

Names are imported on first use, so building the command line does not import polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "EvalInputError": "errors",
    "DEFAULT_K": "settings",
    "EvalSettings": "settings",
    "metric_names": "settings",
    "score_ranking": "metrics",
    "Judgments": "judgments",
    "load_judgments": "judgments",
    "Ranking": "runs",
    "rank_by_score": "runs",
    "read_trec_run": "runs",
    "evaluate_output_dir": "evaluation",
    "evaluate_run_files": "evaluation",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'pipeline.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.evaluate.{_HOME[name]}"), name)

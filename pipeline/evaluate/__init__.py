"""Offline retrieval evaluation with trec_eval's conventions, columnar at any size.

>>> import polars as pl
>>> from pipeline.evaluate import rank_by_score, score_ranking
>>> run = rank_by_score(pl.DataFrame({"query_id": "q1", "doc_id": ["d1", "d2"], "score": [0.9, 0.2]}))
>>> qrels = pl.DataFrame({"query_id": ["q1"], "doc_id": ["d2"], "relevance": [1]})
>>> score_ranking(run, qrels, ks=[1])[["query_id", "mrr", "p@1"]].rows()
[('q1', 0.5, 0.0)]

Entry points: ``evaluate_output_dir``, ``evaluate_run_files`` and ``command.add_eval_parser``.
Names are imported on first use, so building the command line does not import polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE = {"EvalInputError": "errors", "load_judgments": "judgments"}
_MODULE |= {"score_ranking": "metrics", "score_rankings": "metrics"}
_MODULE |= {"rank_by_score": "runs", "read_trec_run": "runs"}
_MODULE |= {"evaluate_output_dir": "evaluation", "evaluate_run_files": "evaluation"}
__all__ = sorted(_MODULE)


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module 'pipeline.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.evaluate.{_MODULE[name]}"), name)

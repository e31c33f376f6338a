"""Offline retrieval evaluation with trec_eval's conventions.

>>> from pipeline.evaluate import query_metrics
>>> query_metrics(["d1", "d2"], {"d2": 1}, ks=[1])["mrr"]
0.5

Entry points: ``evaluate_output_dir`` (pipeline output directory, first stage
vs reranked), ``evaluate_run_files`` (TREC run files), and
``command.add_eval_parser`` / ``command.run_eval_command`` for the CLI.
"""

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.metrics import DEFAULT_K, metric_names, query_metrics, trec_eval_order

__all__ = [
    "DEFAULT_K",
    "EvalInputError",
    "evaluate_output_dir",
    "evaluate_run_files",
    "metric_names",
    "query_metrics",
    "trec_eval_order",
]


def __getattr__(name: str):
    # Lazy, so `python -m pipeline.evaluate.command` does not import itself twice.
    if name in ("evaluate_output_dir", "evaluate_run_files"):
        from pipeline.evaluate import command

        return getattr(command, name)
    raise AttributeError(f"module 'pipeline.evaluate' has no attribute {name!r}")

"""Compare reranked output directories of the same input on quality and cost.

>>> from pipeline.compare import per_gain
>>> per_gain(usd_per_1000=0.30, gain=0.05)  # $ per 1,000 queries for each +0.01 gained
0.06

``compare_output_dirs`` is the entry point (``comparison``), ``command.add_compare_parser``
the command line's; the metrics, tests, judgments and result reading are
``pipeline.evaluate``'s, the cost ``rerank-pipeline report``'s. Names are imported on first
use, so building the command line does not import polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE = {"compare_output_dirs": "comparison", "per_gain": "costs", "system_cost": "costs"}
__all__ = sorted(_MODULE)


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module 'pipeline.compare' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.compare.{_MODULE[name]}"), name)

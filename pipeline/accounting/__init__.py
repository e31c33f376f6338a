"""Accounting, beside every stage: counters from the first row, summary.json at the end."""

from pipeline.accounting.stats import JobStats

__all__ = ["JobStats"]

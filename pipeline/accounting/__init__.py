"""Accounting, beside every stage: counters from the first row, summary.json at the end."""

from pipeline.accounting.stats import JobStats
from pipeline.accounting.summary import job_summary, write_summary

__all__ = ["JobStats", "job_summary", "write_summary"]

"""Token estimates without a tokenizer.

    >>> estimate_tokens("hello world")   # 11 UTF-8 bytes / 4, rounded up
    3

The estimate is only for planning chunks and rate limits; usage/ keeps what the provider
reported beside it, so the two can be compared after a run.
"""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    return -(-len(text.encode("utf-8")) // 4)

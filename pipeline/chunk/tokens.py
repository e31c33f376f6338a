"""Token estimates without a tokenizer, sensible across scripts.

    >>> estimate_tokens("hello world")   # ASCII: characters / 4, rounded up
    3
    >>> estimate_tokens("日本語の検索")     # CJK, kana, Hangul: one token per character
    6
    >>> estimate_tokens("привет мир")     # other scripts: characters (not bytes) / 4
    3

Rules, and why:

- Han ideographs, kana, Hangul syllables and CJK/full-width punctuation count one token
  each. UTF-8 bytes / 4 counts a Chinese character as 0.75 tokens, but the multilingual
  tokenizers rerankers use (XLM-R's SentencePiece in jina-reranker-v2 and bge-reranker-v2-m3,
  Qwen's byte-level BPE in jina-reranker-v3) have far fewer multi-character pieces for
  these scripts than for English, so one per character is the usual figure and leans
  toward over- rather than under-counting a bill.
- Everything else counts characters / 4 (code points, not bytes, so Cyrillic, Greek or
  Arabic are not doubled by their 2-byte encoding). English subword tokenizers average
  about 4 characters per token; punctuation is inside those characters.
- A run of whitespace counts as one character and leading/trailing whitespace as none:
  SentencePiece (XLM-R: `remove_extra_whitespaces`) and most BPE pre-tokenizers collapse
  them, so padded or indented text would otherwise be over-counted.

For plain single-spaced ASCII the estimate is ceil(characters / 4). It plans chunks and
rate limits; `usage/` keeps what the provider reported beside it, and
`rerank-pipeline estimate --calibrate OUTDIR` scales it to a provider's real counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from operator import floordiv, is_, neg

# Scripts written without spaces, where a token is about one character: CJK symbols and
# punctuation, Hiragana, Katakana, Bopomofo, Hangul compatibility jamo, CJK extension A,
# CJK unified ideographs, Hangul syllables, CJK compatibility ideographs, full-width forms,
# and the supplementary ideograph planes (extensions B and later).
_ONE_PER_CHAR = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    if text.isascii():
        # Fast path (this runs once per document of the corpus): single-spaced text
        # without edge whitespace needs no collapsing, so its length is the count.
        n = len(text)
        if (
            n
            and text[0] != " "
            and text[-1] != " "
            and "  " not in text
            and "\n" not in text
            and "\t" not in text
            and "\r" not in text
        ):
            return -(-n // CHARS_PER_TOKEN)
        return _other_tokens(text)
    rest, wide = _ONE_PER_CHAR.subn(" ", text)  # a space keeps the words around it apart
    return wide + _other_tokens(rest)


def estimate_tokens_many(texts: Sequence[str]) -> list[int]:
    """[estimate_tokens(t) for t in texts], the same numbers, for a whole candidate list.

    Why: this runs for every document of the corpus, and the per-text call costs more than
    the rest of the chunk plan. When every text qualifies for estimate_tokens' ASCII fast
    path, that is checked for all of them at once (C-level scans of one joined string, and
    str.strip returning the very same object when there is no edge whitespace), and the
    counts are ceil(len / 4) computed by C iterators, with no Python call per text. Any
    text that might not qualify sends the whole list through estimate_tokens.
    """
    joined = "".join(texts)
    if (
        joined.isascii()
        and "\n" not in joined
        and "\t" not in joined
        and "\r" not in joined
        and "  " not in joined
        and all(map(is_, map(str.strip, texts), texts))
    ):
        # -(-n // 4) is ceil(n / 4); an empty text counts 0 either way.
        return list(map(neg, map(floordiv, map(neg, map(len, texts)), repeat(CHARS_PER_TOKEN))))
    return list(map(estimate_tokens, texts))


def _other_tokens(text: str) -> int:
    words = text.split()
    if not words:
        return 0
    # characters with every whitespace run collapsed to one space, edges stripped
    chars = sum(map(len, words)) + len(words) - 1
    return -(-chars // CHARS_PER_TOKEN)


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` whose estimate is at most `max_tokens`.

        >>> truncate_to_tokens("日本語の検索", 2)
        '日本'

    `pipeline.chunk.fit_documents` cuts over-long documents with it. A fixed cut at
    `max_tokens * 4` characters would not do: a CJK prefix of that length estimates at four
    times the limit. Binary search over the prefix length: the estimate only grows with it.
    """
    if estimate_tokens(text) <= max_tokens:
        return text
    lo, hi = 0, len(text)  # estimate(text[:lo]) <= max_tokens < estimate(text[:hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if estimate_tokens(text[:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid
    return text[:lo]

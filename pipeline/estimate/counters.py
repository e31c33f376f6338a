"""Exact token counts from a local `tokenizer.json`, for when the heuristic is not enough.

    counter = TokenizerCounter("models/bge-reranker-v2-m3/tokenizer.json")
    counter(["a query", "a document"])   # -> [n_query_tokens, n_document_tokens]

Needs the optional `tokenizers` package (`pip install 'rerank-pipeline[tokenizers]'`). The
file is only ever read from disk: nothing is downloaded at run time, so copy the model's
tokenizer.json beside the job (for jina-reranker-v2 and bge-reranker-v2-m3: XLM-R's).
Counts leave out special tokens ([CLS], [SEP]...): billing formulas count text tokens
(Voyage: query tokens x documents + document tokens); calibration absorbs the rest.
"""

from __future__ import annotations

from pathlib import Path


class TokenizerError(Exception):
    """The tokenizer cannot be used; the message says what to install or fix."""


class TokenizerCounter:
    def __init__(self, path: str | Path):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TokenizerError(
                "--tokenizer needs the tokenizers package: pip install 'rerank-pipeline[tokenizers]'"
            ) from None
        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: no such tokenizer file (give a local tokenizer.json)")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exceptions for bad files
            raise TokenizerError(f"{path}: not a tokenizers JSON file ({exc})") from None
        # A tokenizer.json may carry truncation or padding settings: they would clip or
        # inflate the counts, so both are switched off.
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.path = path

    def __call__(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

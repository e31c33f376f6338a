"""The Vaswani (NPL) collection: TREC-format parsing and a pure-Python BM25 first stage.

    docs = read_docs(root / "corpus/doc-text.trec")       # {docno: text}
    queries = read_queries(root / "query-text.trec")      # {qid: text}
    index = BM25(docs); index.search(text, k=100)         # [(docno, score), ...]

The collection lives outside the checkout (`../shared/data/vaswani_npl`); the benchmark
skips its figure when the folder is absent.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from pathlib import Path

TOKEN = re.compile(r"[a-z0-9]+")
STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "which",
        "with",
        "into",
        "their",
        "these",
        "those",
        "than",
        "then",
        "there",
        "been",
        "being",
        "can",
        "may",
        "not",
        "also",
    ]
)
DOC = re.compile(r"<DOC>\s*<DOCNO>\s*(.*?)\s*</DOCNO>(.*?)</DOC>", re.S)
TOP = re.compile(r"<top>\s*<num>\s*(.*?)\s*</num>\s*<title>(.*?)</title>\s*</top>", re.S)


def default_root() -> Path:
    """`../shared/data/vaswani_npl` beside the checkout."""
    return Path(__file__).resolve().parents[2] / "shared/data/vaswani_npl"


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOP]


def read_docs(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return {m.group(1): " ".join(m.group(2).split()) for m in DOC.finditer(text)}


def read_queries(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return {m.group(1): " ".join(m.group(2).split()) for m in TOP.finditer(text)}


class BM25:
    def __init__(self, docs: dict[str, str], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.ids = list(docs)
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for n, docno in enumerate(self.ids):
            toks = tokens(docs[docno])
            self.lengths.append(len(toks))
            for term, tf in Counter(toks).items():
                self.postings[term].append((n, tf))
        self.avgdl = sum(self.lengths) / max(1, len(self.lengths))
        total = len(self.ids)
        self.idf = {
            t: math.log(1 + (total - len(p) + 0.5) / (len(p) + 0.5))
            for t, p in self.postings.items()
        }

    def search(self, text: str, k: int = 100) -> list[tuple[str, float]]:
        scores: dict[int, float] = defaultdict(float)
        k1, b, avgdl, lengths = self.k1, self.b, self.avgdl, self.lengths
        for term in set(tokens(text)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for n, tf in self.postings[term]:
                norm = k1 * (1 - b + b * lengths[n] / avgdl)
                scores[n] += idf * tf * (k1 + 1) / (tf + norm)
        # trec_eval's order: score descending, ties by docno descending (byte order)
        best = sorted(scores.items(), key=lambda x: self.ids[x[0]].encode(), reverse=True)
        best = sorted(best, key=lambda x: -x[1])[:k]
        return [(self.ids[n], s) for n, s in best]

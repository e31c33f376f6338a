"""The bulk fast paths give exactly what the per-item rules give (values, not just shapes)."""

from __future__ import annotations

import random

from pipeline.call.client import _columns
from pipeline.chunk import estimate_tokens, estimate_tokens_many, plan_chunks
from pipeline.merge import PendingQuery
from pipeline.records import Chunk, Query

# Mixed scripts and every whitespace case the rules treat specially: CJK, kana, Hangul,
# full-width punctuation, supplementary-plane ideographs, Cyrillic, accents, runs of
# spaces, edge spaces, tabs, newlines, carriage returns, NUL and other ASCII controls.
PIECES = [
    "a",
    "bc",
    "Z9",
    " ",
    "  ",
    "\n",
    "\t",
    "\r",
    "\x00",
    "\x0b",
    "日",
    "本語",
    "カナ",
    "한국",
    "。",
    "，",
    "\U00020000",
    "привет",
    "é",
    " x",
    "y ",
]


def _texts(rng: random.Random) -> list[str]:
    if rng.random() < 0.5:  # mostly clean ASCII lists, so the fast path is exercised too
        return [
            "".join(rng.choice("abc d") for _ in range(rng.randint(0, 20)))
            for _ in range(rng.randint(0, 8))
        ]
    return [
        "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10)))
        for _ in range(rng.randint(0, 8))
    ]


def test_estimate_tokens_many_equals_estimate_tokens_on_mixed_script_text():
    rng = random.Random(7)
    for _ in range(5000):
        texts = _texts(rng)
        assert estimate_tokens_many(texts) == [estimate_tokens(t) for t in texts], texts
    samples = [
        "hello world",
        "日本語の検索",
        "привет мир",
        " padded ",
        "two  spaces",
        "",
        "tab\there",
        "mixed 日本 text",
        "a" * 41,
        "x\x00y",
    ]
    assert estimate_tokens_many(samples) == [estimate_tokens(t) for t in samples]


def _plan_reference(
    query: Query, max_docs: int, max_tokens: int | None
) -> list[tuple[int, int, int]]:
    """The former per-document greedy loop, kept as the specification."""
    q_tokens = estimate_tokens(query.text)
    out, start, used = [], 0, 0
    for pos, doc in enumerate(query.documents):
        cost = q_tokens + estimate_tokens(doc)
        size = pos - start
        if size >= max_docs or (max_tokens is not None and size > 0 and used + cost > max_tokens):
            out.append((start, pos, used))
            start, used = pos, 0
        used += cost
    if start < len(query.documents):
        out.append((start, len(query.documents), used))
    return out


def test_plan_chunks_equals_the_per_document_greedy_loop():
    rng = random.Random(11)
    for _ in range(3000):
        docs = [
            "".join(rng.choice(["ab", " ", "日", "cd e"]) for _ in range(rng.randint(0, 15)))
            for _ in range(rng.randint(1, 40))
        ]
        query = Query(
            "q",
            rng.choice(["x", "hello world", "日本"]),
            docs,
            [str(i) for i in range(len(docs))],
            "s",
        )
        max_docs, max_tokens = rng.randint(1, 10), rng.choice([None, 0, 1, 5, 12, 40, 200])
        got = [
            (c.start, c.stop, c.estimated_tokens)
            for c in plan_chunks(query, max_docs, max_tokens, None)
        ]
        assert got == _plan_reference(query, max_docs, max_tokens)


def test_order_fast_path_equals_the_sort():
    rng = random.Random(5)
    for _ in range(3000):
        n = rng.randint(0, 12)
        positions = rng.sample(range(50), n)
        scores = [rng.choice([0.1, 0.5, 0.9, rng.random()]) for _ in range(n)]
        if rng.random() < 0.5:
            scores.sort(reverse=True)  # the shape most answers have
        top_n = rng.choice([None, 0, 1, 3, 20])
        state = PendingQuery(
            Query("q", "x", ["d"] * 50, [str(i) for i in range(50)], "s"), 1, top_n
        )
        state.add(positions, scores)
        expected = sorted(zip(positions, scores, strict=True), key=lambda ps: (-ps[1], ps[0]))
        for cut in (True, False):
            want = expected if not cut or top_n is None else expected[:top_n]
            assert state.order(cut) == ([p for p, _ in want], [s for _, s in want])


def test_answer_columns_map_indices_to_input_positions():
    query = Query("q", "x", ["d"] * 10, [str(i) for i in range(10)], "s")
    results = [(2, 0.9), (0, 0.5), (1, 0.1)]
    assert _columns(results, Chunk(query, 1, 4, 7, 0, 3)) == ([6, 4, 5], [0.9, 0.5, 0.1])
    final = Chunk(query, 2, 0, 0, 0, 3, positions=[9, 3, 7])
    assert _columns(results, final) == ([7, 9, 3], [0.9, 0.5, 0.1])
    assert _columns([], final) == ([], [])

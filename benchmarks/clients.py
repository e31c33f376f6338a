"""The measured clients, each run in a fresh interpreter by benchmarks/run.py:

    python benchmarks/clients.py KIND '{"json": "params"}'

prints one `RESULT {...}` line. KIND is one of:

    pipeline   the real job (read Parquet -> chunk -> call -> merge -> write), via run_job
    ceiling    a minimal aiohttp loop: the same request bodies (built before the clock
               starts), the same concurrency, post + read + orjson.loads of each answer
    hand       what users write by hand: read the file, asyncio.gather over one coroutine
               per query (a semaphore for concurrency), aiohttp json=, write Parquet at the end
    litellm    the same hand loop through LiteLLM's `arerank` (jina_ai provider)
    reader     the reader alone (pipeline.read), every batch parsed and dropped
    offline    the pipeline with the network replaced by precomputed answers: all the time
               it spends outside the network, plus a per-stage breakdown

A fresh process per measurement keeps one measurement's heap, GC and peak RSS out of the next.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb  # noqa: E402

MODEL = "bench-reranker"


def _job_config(p: dict):
    from pipeline.config import load_job_text

    lines = [
        "[input]",
        f'path = "{p["input"]}"',
        "[provider]",
        'kind = "jina"',
        f'base_url = "{p.get("url", "http://127.0.0.1:9")}"',
        'api_key_env = ""',  # the benchmark server needs no key (a hosted kind asks for one)
        f'model = "{MODEL}"',
        "[limits]",
        f"max_concurrency = {p.get('concurrency', 32)}",
        "timeout_s = 120",
        "max_retry_wait_s = 5",
        "[output]",
        f'dir = "{p["out"]}"',
    ]
    rows = p.get("batch_rows") or os.environ.get("BENCH_BATCH_ROWS")  # default: the pipeline's
    if rows:
        lines.insert(lines.index("[provider]"), f"batch_rows = {int(rows)}")
    if p.get("rpm"):
        lines.insert(lines.index("[output]"), f"requests_per_minute = {p['rpm']}")
    if p.get("max_docs"):
        lines.insert(lines.index("[output]"), f"max_docs_per_request = {p['max_docs']}")
    if p.get("top_n"):
        lines.append(f"top_n = {p['top_n']}")
    return load_job_text("\n".join(lines))


def _result_from_outcome(outcome, wall: float, cpu: float) -> dict:
    s = outcome.stats
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": s.requests,
        "attempts": s.attempts,
        "http_429": s.http_429,
        "queries": s.queries_ranked,
        "failed": s.queries_failed,
        "documents": s.documents_ranked,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- pipeline ---------------------------------------------------------------------------
def pipeline(p: dict) -> dict:
    from pipeline.run import prepare_job, run_job

    cfg = _job_config(p)
    rss_imported = peak_rss_mb()
    profiler = None
    if p.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="enabled")
        profiler.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    outcome = asyncio.run(run_job(prepare_job(cfg), quiet=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if profiler is not None:
        profiler.stop()
        Path(p["profile"]).write_text(
            profiler.output_text(unicode=True, color=False, show_all=False)
        )
        Path(p["profile"]).with_suffix(".html").write_text(profiler.output_html())
    out = _result_from_outcome(outcome, wall, cpu)
    out.update(exit_code=outcome.exit_code, rss_after_imports_mb=rss_imported)
    return out


# -- ceiling ------------------------------------------------------------------------------
def _bodies(p: dict) -> list[bytes]:
    """Exactly the bodies the pipeline sends: the Jina adapter's request per chunk, orjson."""
    import orjson

    from pipeline.chunk import plan_chunks
    from pipeline.config import InputConfig
    from pipeline.providers.jina import JinaAdapter
    from pipeline.read import open_input

    adapter = JinaAdapter()
    max_docs = p.get("max_docs") or adapter.spec.max_docs_per_request
    bodies = []
    for batch in open_input(InputConfig(path=p["input"])).batches():
        for q in batch:
            for c in plan_chunks(q, max_docs, None, p.get("top_n")):
                bodies.append(
                    orjson.dumps(adapter.build_request(MODEL, q.text, c.documents, c.top_n))
                )
    return bodies


def ceiling(p: dict) -> dict:
    import aiohttp
    import orjson

    bodies = _bodies(p)
    url = p["url"] + "/v1/rerank"
    concurrency = p.get("concurrency", 32)

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        docs = 0
        it = iter(bodies)
        async with aiohttp.ClientSession(
            connector=connector, skip_auto_headers=("User-Agent",)
        ) as session:

            async def worker() -> None:
                nonlocal docs
                for body in it:
                    async with session.post(url, data=body, headers=headers) as resp:
                        answer = orjson.loads(await resp.read())
                    docs += len(answer["results"])

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return docs

    cpu0, t0 = time.process_time(), time.perf_counter()
    docs = asyncio.run(main())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": len(bodies),
        "documents": docs,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- peers: the hand-written loop and LiteLLM ----------------------------------------------
def _read_all(path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _write_results(rows: dict, out: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    Path(out).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), Path(out) / "results.parquet", compression="zstd")


def _peer(p: dict, rerank_one) -> dict:
    """Read everything, gather one coroutine per query, write everything: as users do."""
    concurrency = p.get("concurrency", 32)

    async def main(queries: list[dict]) -> dict:
        sem = asyncio.Semaphore(concurrency)
        state = await rerank_one.setup(p)

        async def one(q: dict) -> list[tuple[int, float]]:
            async with sem:
                return await rerank_one(state, q["query"], q["documents"])

        try:
            answers = await asyncio.gather(*(one(q) for q in queries))
        finally:
            await rerank_one.teardown(state)
        rows = {"query_id": [], "doc_id": [], "rank": [], "score": []}
        for q, ranked in zip(queries, answers, strict=True):
            for rank, (index, score) in enumerate(sorted(ranked, key=lambda r: -r[1]), start=1):
                rows["query_id"].append(q["query_id"])
                rows["doc_id"].append(q["doc_ids"][index])
                rows["rank"].append(rank)
                rows["score"].append(score)
        return rows

    cpu0, t0 = time.process_time(), time.perf_counter()
    queries = _read_all(p["input"])
    rows = asyncio.run(main(queries))
    _write_results(rows, p["out"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": len(queries),
        "queries": len(queries),
        "documents": len(rows["doc_id"]),
        "peak_rss_mb": peak_rss_mb(),
    }


class HandAiohttp:
    """aiohttp with its defaults: json= (stdlib json) out, resp.json() (stdlib json) back."""

    @staticmethod
    async def setup(p: dict):
        import aiohttp

        return {
            "session": aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=p.get("concurrency", 32))
            ),
            "url": p["url"] + "/v1/rerank",
        }

    @staticmethod
    async def teardown(state) -> None:
        await state["session"].close()

    @staticmethod
    async def __call__(state, query: str, documents: list[str]) -> list[tuple[int, float]]:
        body = {"model": MODEL, "query": query, "documents": documents, "top_n": len(documents)}
        async with state["session"].post(state["url"], json=body) as resp:
            resp.raise_for_status()
            data = await resp.json()
        return [(r["index"], r["relevance_score"]) for r in data["results"]]


class LiteLLMRerank:
    @staticmethod
    async def setup(p: dict):
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        return {"litellm": litellm, "url": p["url"]}

    @staticmethod
    async def teardown(state) -> None:
        return None

    @staticmethod
    async def __call__(state, query: str, documents: list[str]) -> list[tuple[int, float]]:
        resp = await state["litellm"].arerank(
            model=f"jina_ai/{MODEL}",
            query=query,
            documents=documents,
            top_n=len(documents),
            api_base=state["url"],
            api_key="bench-key",
            return_documents=False,
        )
        return [(r["index"], r["relevance_score"]) for r in resp.results]


def hand(p: dict) -> dict:
    return _peer(p, HandAiohttp())


def litellm_(p: dict) -> dict:
    # Never fetch LiteLLM's model-price map from the network at import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    return _peer(p, LiteLLMRerank())


# -- reader alone ---------------------------------------------------------------------------
def reader(p: dict) -> dict:
    from pipeline.config import InputConfig
    from pipeline.read import open_input

    rss_imported = peak_rss_mb()
    t0 = time.perf_counter()
    queries = docs = 0
    for batch in open_input(InputConfig(path=p["input"], batch_rows=p.get("batch_rows"))).batches():
        for q in batch:
            queries += 1
            docs += len(getattr(q, "documents", ()))
    return {
        "wall_s": time.perf_counter() - t0,
        "queries": queries,
        "documents": docs,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": rss_imported,
    }


# -- offline: everything outside the network -------------------------------------------------
def offline(p: dict) -> dict:
    """The whole job with a transport that answers at once from precomputed bytes, and
    a per-stage breakdown of the same work."""
    import random

    import orjson

    from pipeline.chunk import plan_chunks
    from pipeline.merge import PendingQuery
    from pipeline.providers.jina import JinaAdapter
    from pipeline.read import open_input
    from pipeline.records import ChunkScores
    from pipeline.run import prepare_job, run_job
    from pipeline.transport import Reply
    from pipeline.write import OutputWriter

    n_per_chunk = p["max_docs"]
    rng = random.Random(5)
    templates = []
    for _ in range(8):
        scores = [rng.random() for _ in range(n_per_chunk)]
        order = sorted(range(n_per_chunk), key=scores.__getitem__, reverse=True)
        results = [{"index": i, "relevance_score": scores[i]} for i in order]
        templates.append(
            orjson.dumps(
                {
                    "model": MODEL,
                    "results": results,
                    "usage": {"total_tokens": 1000, "prompt_tokens": 1000},
                }
            )
        )

    class InstantTransport:  # a pipeline.transport.Transport
        url = "instant://"

        def __init__(self) -> None:
            self.n = 0

        async def post(self, body: bytes) -> Reply:
            self.n += 1
            return Reply(200, templates[self.n & 7], {})

        async def close(self) -> None:
            return None

    cfg = _job_config(p)
    cpu0, t0 = time.process_time(), time.perf_counter()
    job = prepare_job(cfg)
    # The network, replaced by an instant answer.
    outcome = asyncio.run(run_job(job, transport=InstantTransport(), quiet=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out = _result_from_outcome(outcome, wall, cpu)

    # Stage by stage, the same work without the event loop.
    adapter = JinaAdapter()
    stages = dict.fromkeys(("read", "chunk", "encode", "decode", "merge", "write"), 0.0)
    clock = time.perf_counter
    writer = OutputWriter(Path(p["out"]) / "stages", False)
    columnar = hasattr(PendingQuery, "order") and hasattr(OutputWriter, "add_ranked_columns")
    k = 0
    batches = open_input(cfg.input).batches()
    for q in _timed_items(batches, stages):  # streamed, as the pipeline reads: a small heap
        t = clock()
        chunks = plan_chunks(q, n_per_chunk, None, None)
        t1 = clock()
        bodies = [
            orjson.dumps(adapter.build_request(MODEL, q.text, c.documents, c.top_n)) for c in chunks
        ]
        t2 = clock()
        answers = []
        for c in chunks:
            k += 1
            a = adapter.parse_answer(templates[k & 7], c.n_docs, c.top_n)
            answers.append(
                ChunkScores(c, [c.start + i for i, _ in a.results], [s for _, s in a.results])
            )
        t3 = clock()
        state = PendingQuery(q, len(chunks), None)
        for a in answers:
            state.add(a.positions, a.scores)
        if columnar:  # the runner's path where the pipeline has one (PendingQuery.order)
            positions, scores = state.order()
            t4 = clock()
            writer.add_ranked_columns(q, positions, scores)
        else:
            ranking = state.ranking()
            t4 = clock()
            writer.add_ranked(q, ranking)
        t5 = clock()
        stages["chunk"] += t1 - t
        stages["encode"] += t2 - t1
        stages["decode"] += t3 - t2
        stages["merge"] += t4 - t3
        stages["write"] += t5 - t4
        del bodies
    t = clock()
    asyncio.run(writer.close())
    stages["write"] += clock() - t
    out["stages_s"] = stages
    return out


def _timed_items(batches, stages: dict):
    while True:
        t = time.perf_counter()
        batch = next(batches, None)
        stages["read"] += time.perf_counter() - t
        if batch is None:
            return
        yield from batch


KINDS = {
    "pipeline": pipeline,
    "ceiling": ceiling,
    "hand": hand,
    "litellm": litellm_,
    "reader": reader,
    "offline": offline,
}

if __name__ == "__main__":
    kind, params = sys.argv[1], json.loads(sys.argv[2])
    result = KINDS[kind](params)
    print("RESULT " + json.dumps(result), flush=True)

"""The output directories `compare` sets side by side: loaded, checked alike, scored.

>>> system_names([Path("out/jina"), Path("runs/jina"), Path("out/cohere")], None)
['out/jina', 'runs/jina', 'out/cohere']
>>> system_names([Path("out/a"), Path("out/b")], "jina,cohere")
['jina', 'cohere']

Each directory is a `System`: its job (``job.resolved.toml``: input, ``top_n``, price), its
committed result rows (``pipeline.evaluate.output_dir.ResultRows``) and what its run read
(``_job.json``'s input identity). Systems are comparable when they ranked the same queries
(``check_same_queries``) over the same candidate lists, in the same input order
(``check_candidates``): one ``signatures`` row per query (candidate count and a hash of
every (doc_id, position)), joined across directories, so no Python object per query.
``score_system`` scores one directory in ``ResultRows`` query ranges, every ranking cut
at the shared depth when a job cut its output to ``[output] top_n``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from pipeline.config import ConfigError, JobConfig, load_job
from pipeline.evaluate import EvalInputError, score_rankings
from pipeline.evaluate.judgments import Judgments
from pipeline.evaluate.output_dir import ResultRows
from pipeline.evaluate.settings import EvalSettings
from pipeline.resume import JOB_FILE, vars_of
from pipeline.storage import Location
from pipeline.text import plural

FIRST_STAGE = "first_stage"
RESERVED = (FIRST_STAGE, "query_id", "system", "metric", "value")
_SEED = 0x5EED  # any fixed seed: signatures are only compared within one process


def system_names(outdirs: Sequence[Location], names: str | None) -> list[str]:
    """``--names a,b,c``, else each directory's name (every path, when two names clash)."""
    resolved = [d.resolve() if isinstance(d, Path) else d for d in outdirs]
    if len(set(resolved)) < len(resolved):
        again = next(d for d, r in zip(outdirs, resolved, strict=True) if resolved.count(r) > 1)
        raise EvalInputError(f"the same output directory is given twice: {again}")
    if names is None:
        chosen = [d.name or str(d) for d in outdirs]
        if len(set(chosen)) < len(chosen):
            chosen = [str(d) for d in outdirs]
    else:
        chosen = [n.strip() for n in names.split(",")]
        if len(chosen) != len(outdirs):
            raise EvalInputError(
                f"--names: {plural(len(chosen), 'name')} for {plural(len(outdirs), 'directory')}"
            )
    for name in chosen:
        if not name or name in RESERVED:
            raise EvalInputError(f"--names: {name!r} cannot name a system: give another name")
    if len(set(chosen)) < len(chosen):
        raise EvalInputError(f"--names: a name is given twice ({', '.join(chosen)})")
    return chosen


@dataclass(slots=True)
class System:
    name: str
    outdir: Location
    cfg: JobConfig
    rows: ResultRows
    input_identity: dict  # what its run read: files and sizes (from _job.json) or the job's path

    @property
    def top_n(self) -> int | None:
        return self.cfg.output.top_n

    def describe_input(self) -> str:
        files = self.input_identity.get("files")
        where = ", ".join(str(f[0]) for f in files) if files else self.input_identity.get("path")
        return f"{where} ({self.input_identity.get('layout')})"


def load_system(name: str, outdir: Location) -> System:
    rows = ResultRows(outdir)  # a missing directory or one without results stops here
    try:
        cfg = load_job(outdir / "job.resolved.toml")
    except ConfigError as exc:
        raise EvalInputError(
            f"{outdir}: no usable job.resolved.toml ({exc}); compare needs each directory's "
            "job: what it read, its top_n and its price"
        ) from None
    return System(name, outdir, cfg, rows, _input_identity(outdir, cfg))


def _input_identity(outdir: Location, cfg: JobConfig) -> dict:
    """What the run read, as it recorded it (file paths and sizes) or as its job names it."""
    try:
        recorded = orjson.loads((outdir / JOB_FILE).read_bytes())["identity"]["input"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if isinstance(recorded, dict):
        return recorded
    given = cfg.input
    columns = sorted(vars_of(given.columns).items())
    return {"path": given.path, "layout": given.layout, "columns": columns}


def _examples(ids: pl.Series | list[str]) -> str:
    shown = list(ids[:3])
    return ", ".join(map(repr, shown)) + (", ..." if len(ids) > 3 else "")


def _input_hint(reference: System, other: System) -> str:
    if reference.input_identity == other.input_identity:
        return ""
    return (
        f" (their jobs read different inputs: {reference.outdir}: "
        f"{reference.describe_input()}; {other.outdir}: {other.describe_input()})"
    )


def check_same_queries(systems: Sequence[System]) -> None:
    """Every directory ranked the same queries, or an error names the ones that differ."""
    reference = systems[0]
    ours = reference.rows.query_ids
    for other in systems[1:]:
        theirs = other.rows.query_ids
        if ours.equals(theirs):  # both sorted and unique
            continue
        parts = []
        for a, b in ((reference, other), (other, reference)):
            missing = a.rows.query_ids.filter(~a.rows.query_ids.is_in(b.rows.query_ids.implode()))
            if len(missing):
                parts.append(
                    f"{plural(len(missing), 'query')} of {a.outdir} not in {b.outdir} "
                    f"({_examples(missing)})"
                )
        raise EvalInputError(
            f"{other.outdir} and {reference.outdir} ranked different queries: "
            f"{'; '.join(parts)}{_input_hint(reference, other)}. compare needs every query "
            "ranked in every directory; queries that failed in one (its failures/) can be run "
            "again with `rerank-pipeline run JOB --retry-failed`"
        )


def signatures(lists: pl.LazyFrame, position: str) -> pl.DataFrame:
    """Per query, its candidate count and a hash of every (doc_id, position): two lists agree
    when their rows do (a sum of 64-bit hashes, wrapping: order-free, but the positions
    are hashed, so another order is another signature)."""
    entry = pl.struct(pl.col("doc_id"), pl.col(position).cast(pl.Int64).alias("position"))
    return (
        lists.group_by("query_id")
        .agg(candidates=pl.len(), signature=entry.hash(_SEED).sum())
        .collect(engine="streaming")
    )


def result_lists(system: System) -> pl.LazyFrame:
    """The candidate lists an uncut directory's rows hold: every candidate, by input_rank."""
    return system.rows.scan.select("query_id", "doc_id", "input_rank")


def _one_list(system: System, lists: pl.DataFrame | None, query_id: str) -> list[str]:
    if lists is not None:
        chosen = lists.filter(pl.col("query_id") == query_id).sort("position")
    else:
        rows = result_lists(system).filter(pl.col("query_id") == query_id)
        chosen = rows.collect().sort("input_rank")
    return chosen["doc_id"].to_list()


def check_candidates(
    reference: System,
    ours: pl.DataFrame,
    other: System,
    theirs: pl.DataFrame,
    lists_of: Mapping[str, pl.DataFrame | None],
) -> None:
    """The same candidate lists, or an error naming the first query that differs and how.
    ``lists_of`` gives a cut directory's input lists (None: an uncut one's rows hold them)."""
    differ = (
        ours.join(theirs, on="query_id", suffix="_other")
        .filter(
            (pl.col("candidates") != pl.col("candidates_other"))
            | (pl.col("signature") != pl.col("signature_other"))
        )
        .sort("query_id")
    )
    if not differ.height:
        return
    query_id = differ["query_id"][0]
    a = _one_list(reference, lists_of.get(reference.name), query_id)
    b = _one_list(other, lists_of.get(other.name), query_id)
    only_a, only_b = [d for d in a if d not in set(b)], [d for d in b if d not in set(a)]
    if only_a or only_b:
        how = f"{len(a)} candidates in {reference.outdir}, {len(b)} in {other.outdir}"
        how += f"; only in {reference.outdir}: {_examples(only_a)}" if only_a else ""
        how += f"; only in {other.outdir}: {_examples(only_b)}" if only_b else ""
    else:
        at = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        how = (
            f"the same {len(a)} candidates in another input order (position {at + 1}: "
            f"{a[at]!r} in {reference.outdir}, {b[at]!r} in {other.outdir})"
        )
    more = f" ({plural(differ.height - 1, 'other query')} differ too)" if differ.height > 1 else ""
    raise EvalInputError(
        f"{other.outdir} ranked other candidates than {reference.outdir}: query {query_id!r} "
        f"has {how}{more}{_input_hint(reference, other)}; compare needs jobs over the same input"
    )


def check_same_input(reference: System, other: System, why: str) -> str:
    """When a cut directory's lists cannot be read, only its job's input can vouch for it:
    the same files (and sizes) as the reference's, else an error. Returns the warning."""
    if reference.input_identity != other.input_identity:
        raise EvalInputError(
            f"cannot check that {other.outdir} ranked the same candidates as "
            f"{reference.outdir}: its job cut the results to top_n = {other.top_n} and its "
            f"input cannot be read ({why}); the jobs read different inputs "
            f"({reference.describe_input()}; {other.describe_input()})"
        )
    return (
        f"{other.name}: candidate lists not checked, its job's input cannot be read ({why}); "
        f"it read the same input files as {reference.name}"
    )


def score_system(
    system: System,
    lists: pl.DataFrame | None,
    judgments: Judgments,
    settings: EvalSettings,
    depth: int | None,
    with_first_stage: bool,
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """Per-query metrics of the directory's ranking (and of the first stage, when asked),
    each cut at ``depth``; and per ranking, how many queries the cut shortened."""
    names = [FIRST_STAGE, system.name] if with_first_stage else [system.name]
    frames: dict[str, list[pl.DataFrame]] = {name: [] for name in names}
    shortened = dict.fromkeys(names, 0)
    for first, reranked in system.rows.chunks(lists):
        rankings = dict(zip(names, [first, reranked][-len(names) :], strict=True))
        if depth is not None:
            deeper = pl.col("position") > depth
            for name, ranking in rankings.items():
                shortened[name] += ranking.filter(deeper)["query_id"].n_unique()
                rankings[name] = ranking.filter(~deeper)
        threshold = settings.relevance_threshold
        scored = score_rankings(rankings, judgments.frame, settings.ks, threshold)
        for name, scores in scored.items():
            frames[name].append(scores)
    return {name: pl.concat(parts) for name, parts in frames.items()}, shortened

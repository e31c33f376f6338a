"""A job made ready to run: every check that can fail before the first request, passed.

    job = prepare_job(load_job("jobs/sample.toml"))   # SetupError / InputError / ConfigError
    outcome = asyncio.run(run_job(job))

In order: the request shape (`resolve_settings`), the key, model and URL and the [eval]
section (`pipeline.preflight`), the input's files and columns, the output directory, resume
(`pipeline.resume`: what an earlier run of the job already finished), the score cache
(`pipeline.cache`: refused for a listwise model; opened, or created), and the resolved job
written beside the output. Nothing is sent and no output row is written here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from pipeline.cache import ScoreCache, check_pointwise, open_cache
from pipeline.config import JobConfig, to_toml
from pipeline.errors import SetupError
from pipeline.preflight import (
    check_ca_bundle,
    check_chunk_size,
    check_eval,
    prepare_output_dir,
    resolve_key,
    resolve_model,
    resolve_url,
)
from pipeline.read import InputReader, open_input
from pipeline.resume import ResumeState, prepare_resume
from pipeline.run.settings import RunSettings, resolve_settings
from pipeline.storage import Location, location


@dataclass(slots=True)
class PreparedJob:
    cfg: JobConfig
    settings: RunSettings
    key: str | None  # never stored elsewhere or printed
    key_env: str | None  # the variable the key came from (None: no key is sent)
    model: str | None  # the model the requests name
    url: str
    reader: InputReader  # checked: its files and columns exist
    resume: ResumeState
    out_dir: Location  # a local folder, or a prefix on an object store
    cache: ScoreCache | None = None  # open: the runner closes it


def prepare_job(
    cfg: JobConfig,
    *,
    overwrite: bool = False,
    retry_failed: bool = False,
    accept_changed_input: bool = False,
) -> PreparedJob:
    settings = resolve_settings(cfg)
    adapter = settings.adapter
    key, key_env = resolve_key(cfg, adapter)
    model = resolve_model(cfg, adapter)
    url = resolve_url(cfg, adapter)
    check_ca_bundle(cfg)
    check_chunk_size(cfg, adapter, settings.max_docs)
    check_eval(cfg)
    check_pointwise(cfg.cache, settings.profile)
    check_engine(cfg)
    reader = open_input(cfg.input)
    reader.check()
    out_dir = location(cfg.output.dir, "output.dir", SetupError)
    prepare_output_dir(out_dir)
    resume = prepare_resume(
        out_dir,
        cfg,
        overwrite=overwrite,
        retry_failed=retry_failed,
        accept_changed_input=accept_changed_input,
    )
    cache = open_cache(cfg, adapter, url, model)
    (out_dir / "job.resolved.toml").write_text(to_toml(cfg), encoding="utf-8")
    return PreparedJob(cfg, settings, key, key_env, model, url, reader, resume, out_dir, cache)


def check_engine(cfg: JobConfig) -> None:
    """`[engine] kind = "ray"` needs Ray installed, and runs without a score cache."""
    if cfg.engine.kind != "ray":
        return
    if importlib.util.find_spec("ray") is None:
        raise SetupError(
            'engine.kind = "ray" needs Ray, an optional extra: pip install -e ".[ray]" '
            '(or pip install "ray[data]")'
        )
    if cfg.cache.path is not None:
        raise SetupError(
            'engine.kind = "ray" does not use a score cache yet: remove [cache] or run with '
            'engine.kind = "local"'
        )

"""Job files: validation messages, --set overrides, the resolved job, CLI exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.config import ConfigError, load_job_text, to_toml

BASE = '[input]\npath = "in.jsonl"\n[output]\ndir = "out"\n[provider]\nkind = "local"\n'


def test_defaults_and_overrides():
    cfg = load_job_text(
        BASE,
        [
            "output.top_n=20",
            "provider.base_url=http://127.0.0.1:8080",
            "limits.requests_per_minute=90",
            'input.columns.query="q"',
        ],
    )
    assert cfg.output.top_n == 20
    assert cfg.provider.base_url == "http://127.0.0.1:8080"  # bare string, no quotes needed
    assert cfg.limits.requests_per_minute == 90.0
    assert cfg.input.columns.query == "q" and cfg.input.columns.documents == "documents"
    assert cfg.limits.max_concurrency == 16


@pytest.mark.parametrize(
    "extra,needle",
    [
        ("[limits]\nmax_concurency = 4\n", "unknown key limits.max_concurency"),
        ("[limits]\nmax_concurrency = 0\n", "limits.max_concurrency = 0: must be greater than 0"),
        ('[limits]\nmax_concurrency = "4"\n', "limits.max_concurrency must be an integer"),
        ("[output]\ntop_n = 2.5\n", "output.top_n must be an integer"),
        ('[input]\nlayout = "rows"\n', "input.layout = 'rows': must be one of grouped, pairs"),
        ("[colour]\nx = 1\n", "unknown key colour"),
    ],
)
def test_invalid_keys_are_named(extra, needle):
    with pytest.raises(ConfigError) as err:
        load_job_text(_merge(BASE, extra))
    assert needle in str(err.value)


def _merge(base: str, extra: str) -> str:
    # Put the extra keys inside the existing section when it exists, else append it.
    section, _, body = extra.partition("\n")
    if section in base:
        return base.replace(section + "\n", section + "\n" + body, 1)
    return base + extra


def test_missing_required_keys_and_bad_provider():
    with pytest.raises(ConfigError, match="input.path is required"):
        load_job_text('[output]\ndir = "o"\n')
    with pytest.raises(ConfigError, match="provider.kind = 'openai': must be one of"):
        load_job_text(BASE.replace('"local"', '"openai"'))
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_job_text(BASE, ["top_n=3"])
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_job_text("[input\npath=")


def test_resolved_job_round_trips():
    cfg = load_job_text(BASE, ["output.top_n=5", 'provider.model="m \\"x\\""', "eval.k=[1,10]"])
    again = load_job_text(to_toml(cfg))
    assert again == cfg


def test_cli_invalid_job_exits_2_with_a_message(tmp_path):
    job = tmp_path / "bad.toml"
    job.write_text(BASE + "[limits]\nmax_attempts = -1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(job)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "limits.max_attempts = -1: must be greater than 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_input_exits_2_before_any_request(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{tmp_path}/nope.parquet"\n[output]\ndir = "{tmp_path}/o"\n[provider]\nkind = "local"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(job)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "no such file or directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hosted_provider_without_key_says_what_to_do(tmp_path, monkeypatch):
    from pipeline.errors import SetupError
    from pipeline.run import prepare_job
    from tests.helpers import make_queries, write_grouped_jsonl

    monkeypatch.delenv("JINA_API_KEY", raising=False)
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    path = write_grouped_jsonl(tmp_path / "in.jsonl", make_queries(1, 3))
    cfg = load_job_text(
        f'[input]\npath = "{path}"\n[output]\ndir = "{tmp_path}/o"\n[provider]\nkind = "jina"\n'
    )
    with pytest.raises(
        SetupError, match=r"JINA_API_KEY is not set: export it .* or set provider.api_key_env"
    ):
        prepare_job(cfg)

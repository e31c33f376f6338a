"""Job files: TOML in, a validated `JobConfig` out, and the resolved job written back.

    >>> cfg = load_job_text('[input]\\npath = "in.jsonl"\\n[provider]\\nkind = "local"\\n'
    ...                     '[output]\\ndir = "out"\\n')
    >>> cfg.provider.kind, cfg.limits.max_concurrency
    ('local', 16)

Every problem is a `ConfigError` whose message names the key and what is wrong; the CLI
prints it and exits with status 2. Relative paths are taken from the current directory.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.accounting.prices import PricingError, check_pricing
from pipeline.errors import ConfigError
from pipeline.providers import known_kinds
from pipeline.providers.local import bm25_parameters
from pipeline.storage import Location, ObjectPath, check_url, is_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class DefaultName(str):
    """A column name nobody chose: the optional id columns are read when the input has them.

    A name the user writes (even the same one) is a plain `str` and must exist in the input:
    a misspelled mapping then stops the job instead of silently numbering the documents. A
    `str` subclass rather than None keeps the value, the resume fingerprint and old
    `job.resolved.toml` files exactly as they were.
    """

    __slots__ = ()


@dataclass(slots=True)
class ColumnsConfig:
    query_id: str = "query_id"
    query: str = "query"
    documents: str = "documents"
    doc_ids: str = DefaultName("doc_ids")  # optional unless named in the job
    doc_id: str = DefaultName("doc_id")  # optional unless named in the job
    text: str = "text"


@dataclass(slots=True)
class InputConfig:
    path: str = ""
    format: str = "auto"  # auto | parquet | jsonl
    layout: str = "grouped"  # grouped | pairs
    # Rows read at a time; None: 128 grouped rows (lists of candidates) or 8192 pairs rows.
    # Small batches matter: turning a batch into Python objects holds the GIL, stalling the
    # event loop, and 1,024 lists of 100 candidates cost 5 points of latency hiding
    # (benchmarks/RESULTS.md, figure 2).
    batch_rows: int | None = None
    truncate: str = "none"  # none: over-long documents fail the query; "end": cut them
    # pairs: a query_id that comes back after another query stops the job (the input must be
    # sorted); true keeps each such stray occurrence as a failure row and goes on.
    allow_ungrouped: bool = False
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)


@dataclass(slots=True)
class ProviderConfig:
    kind: str = ""  # required: a job never silently means one vendor
    base_url: str | None = None
    endpoint: str | None = None
    model: str | None = None
    # The variable holding the key; None: the provider's usual ones, then RERANK_API_KEY;
    # "": send no key (a server that needs none, e.g. a hosted kind's format self-hosted).
    api_key_env: str | None = None
    api_key_header: str = "Authorization"  # e.g. "X-Api-Key", "api-key"
    api_key_scheme: str = "Bearer"  # "": the bare key
    ca_bundle: str | None = None  # PEM file of a private CA, trusted besides the system's


@dataclass(slots=True)
class LimitsConfig:
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_concurrency: int = 16
    max_docs_per_request: int | None = None  # None: the provider's safe default
    max_tokens_per_request: int | None = None
    max_doc_tokens: int | None = None  # None: the provider's limit, if it has one
    max_attempts: int = 6
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_retry_wait_s: float = 60.0  # cap on one backoff wait (Retry-After may ask more)
    max_retry_time_s: float = 900.0  # give up retrying a request after this long in total
    final_pass: bool = False
    # The endpoint breaker (pipeline.call.breaker): stop the job after this many failed
    # attempts in a row with no answer yet, or, once answers came, with none for this long.
    breaker_failures: int = 8
    breaker_seconds: float = 120.0


@dataclass(slots=True)
class OutputConfig:
    dir: str = ""
    top_n: int | None = None  # None: every candidate, reranked
    include_text: bool = False
    flush_rows: int = 20_000
    flush_seconds: float = 3.0


@dataclass(slots=True)
class EvalConfig:
    qrels: str | None = None
    k: list[int] = field(default_factory=lambda: [1, 3, 5, 10, 20, 100])
    relevance_threshold: int = 1


@dataclass(slots=True)
class CacheConfig:
    """[cache]: the persistent score cache (pipeline.cache); off unless `path` is set."""

    path: str | None = None  # the SQLite file, e.g. "cache/scores.db"
    max_age_days: float | None = None  # older entries are misses, re-scored and refreshed
    read_only: bool = False  # use the cache, never write it (a shared cache)
    allow_listwise: bool = False  # cache a listwise model's scores anyway (not exact)


@dataclass(slots=True)
class EngineConfig:
    """[engine]: what drives the requests. "local": one asyncio process (the default);
    "ray": client actors on Ray (pipeline.run.ray_engine), for fleets of self-hosted
    servers, many-core boxes and data lakes."""

    kind: str = "local"  # local | ray
    # ray: None starts Ray on this machine; "auto" or "ray://host:10001" joins a cluster.
    address: str | None = None
    workers: int | None = None  # ray: client actors; None: one per CPU of the cluster


@dataclass(slots=True)
class JobConfig:
    input: InputConfig = field(default_factory=InputConfig)
    provider: ProviderConfig = field(default_factory=ProviderConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pricing: dict[str, float | str] = field(default_factory=dict)  # see accounting.prices
    cache: CacheConfig = field(default_factory=CacheConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)


# An unknown key that names a credential: refused as such (the job file never holds one).
CREDENTIAL_KEY = re.compile(r"secret|access_key|session_token|credential|password", re.I)
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
CHOICES = {
    "input.format": ("auto", "parquet", "jsonl"),
    "input.layout": ("grouped", "pairs"),
    "input.truncate": ("none", "end"),
    "engine.kind": ("local", "ray"),
}
POSITIVE = {
    "input.batch_rows",
    "limits.requests_per_minute",
    "limits.tokens_per_minute",
    "limits.max_concurrency",
    "limits.max_docs_per_request",
    "limits.max_tokens_per_request",
    "limits.max_doc_tokens",
    "limits.max_attempts",
    "limits.timeout_s",
    "limits.connect_timeout_s",
    "limits.breaker_failures",
    "limits.breaker_seconds",
    "output.top_n",
    "output.flush_rows",
    "output.flush_seconds",
    "limits.max_retry_time_s",
    "cache.max_age_days",
    "engine.workers",
}
NOT_NEGATIVE = {"limits.max_retry_wait_s"}  # 0: retry at once (the server's Retry-After aside)
BOM = "\ufeff"


def load_job(path: str | Location, overrides: list[str] | None = None) -> JobConfig:
    """`path`: the job file, or a run's job.resolved.toml (possibly on an object store)."""
    path = path if isinstance(path, ObjectPath) else Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read job file {path}: {exc.strerror or exc}") from None
    return load_job_text(decode_job(raw, str(path)), overrides, name=str(path))


def decode_job(raw: bytes, name: str) -> str:
    """A job file's text: TOML is UTF-8, so anything else is named, with the likely cause.

    >>> decode_job("\ufeffx = 1".encode(), "job.toml")   # a BOM (Windows editors) is fine
    'x = 1'
    >>> decode_job("x = 1".encode("utf-16"), "job.toml")
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: job file job.toml is UTF-16 text, not UTF-8: save it as UTF-8
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"job file {name} is UTF-16 text, not UTF-8: save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"job file {name} is not UTF-8 text (line {line}, byte {exc.start}: "
            f"{raw[exc.start : exc.start + 1]!r}): save it as UTF-8"
        ) from None


def load_job_text(text: str, overrides: list[str] | None = None, name: str = "job") -> JobConfig:
    try:
        data = tomllib.loads(text.removeprefix(BOM))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name} is not valid TOML: {exc}") from None
    for item in overrides or []:
        apply_override(data, item)
    cfg = _build(JobConfig, data, prefix="")
    validate(cfg)
    return cfg


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one `--set section.key=value`; the value is TOML, or a bare string."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. output.top_n=20")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare strings such as URLs need no quotes on the command line
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    node[leaf] = value


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the job file"
    if not isinstance(data, dict):
        raise ConfigError(f"[{where}] must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    secret = next((k for k in unknown if CREDENTIAL_KEY.search(k)), None)
    if secret is not None:  # named, never its value
        raise ConfigError(
            f"{prefix}{secret}: storage credentials are never read from the job file; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment "
            "and remove the key"
        )
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}: known keys in [{where}] are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{prefix}{name}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, key: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        # The first type that takes the value; when none does, the first type's message.
        first: ConfigError | None = None
        for candidate in inner:
            try:
                return _convert(candidate, value, key)
            except ConfigError as exc:
                first = first or exc
        assert first is not None
        raise first
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {value!r}")
        return {str(k): _convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover


def validate(cfg: JobConfig) -> None:
    if not cfg.input.path:
        raise ConfigError(
            "input.path is required: the Parquet/JSONL file, directory or glob to read"
        )
    if not cfg.output.dir:
        raise ConfigError("output.dir is required: the directory the results are written to")
    check_url(cfg.input.path, "input.path")  # credentials in a URL: refused
    check_url(cfg.output.dir, "output.dir")

    if not cfg.provider.kind:
        raise ConfigError(
            "provider.kind is required: add a [provider] section with kind = one of "
            f"{', '.join(known_kinds())} (local: BM25 in process, no network)"
        )
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r}: must be one of {', '.join(allowed)}")
    for key in POSITIVE:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None and value <= 0:
            raise ConfigError(f"{key} = {value!r}: must be greater than 0")
    for key in NOT_NEGATIVE:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None and value < 0:
            raise ConfigError(f"{key} = {value!r}: must be 0 or more")
    if any(k <= 0 for k in cfg.eval.k):
        raise ConfigError(f"eval.k = {cfg.eval.k!r}: cutoffs must be positive integers")
    if cfg.provider.kind not in known_kinds():
        raise ConfigError(
            f"provider.kind = {cfg.provider.kind!r}: must be one of {', '.join(known_kinds())}"
        )
    if cfg.provider.kind == "local":
        try:
            bm25_parameters(cfg.provider.model)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    try:
        check_pricing(cfg.pricing)
    except PricingError as exc:
        raise ConfigError(str(exc)) from None
    _validate_cache(cfg.cache)
    for key in ("base_url", "endpoint"):
        url = getattr(cfg.provider, key)
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(f"provider.{key} = {url!r}: must start with http:// or https://")
    if not HEADER_NAME.fullmatch(cfg.provider.api_key_header):
        raise ConfigError(
            f"provider.api_key_header = {cfg.provider.api_key_header!r}: must be an HTTP "
            "header name, e.g. Authorization or X-Api-Key"
        )
    if not HEADER_NAME.fullmatch(cfg.provider.api_key_scheme or "-"):
        raise ConfigError(
            f"provider.api_key_scheme = {cfg.provider.api_key_scheme!r}: must be one word, "
            'e.g. Bearer, or "" to send the bare key'
        )


def _validate_cache(cache: CacheConfig) -> None:
    if cache.path is not None and not cache.path.strip():
        raise ConfigError('cache.path is empty: give the cache file, e.g. "cache/scores.db"')
    if cache.path is not None and is_url(cache.path):
        raise ConfigError(
            f"cache.path = {cache.path!r}: the score cache is a local SQLite file; give a "
            "local path (output.dir may be on an object store, the cache may not)"
        )
    if cache.path is None and (cache.max_age_days is not None or cache.read_only):
        raise ConfigError(
            "[cache] has settings but no path: set cache.path to turn the score cache on"
        )


def to_toml(cfg: JobConfig) -> str:
    """The resolved job as TOML. Holds no secret: the key is only ever read from the env."""
    lines: list[str] = []
    _emit(dataclasses.asdict(cfg), [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path:
        lines.append("")
        lines.append(f"[{'.'.join(path)}]")
    for key, value in scalars.items():
        if value is None:
            lines.append(f"# {key} = (not set)")
        elif isinstance(value, DefaultName):  # written as set, it would become required
            lines.append(f"# {key} = {_toml_value(str(value))}  (default: read when present)")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        _emit(value, [*path, _toml_key(key)], lines)


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "-_" for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")  # pragma: no cover

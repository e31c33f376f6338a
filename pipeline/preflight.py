"""Pre-flight checks: what a run needs before its first request (key, model, URL, output
directory, the [eval] section's judgments), each checked with a message that says what to
do next.

A URL with no host or an invalid port, and a `provider.ca_bundle` that is not a readable
PEM file, are found here too. Problems here are `SetupError`s (`pipeline.errors`); the CLI prints them and exits 2, and
no request has been sent. `pipeline.run.prepare_job` runs them in order.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import sys
from urllib.parse import urlsplit

from pipeline.accounting.cost import job_billing
from pipeline.config import JobConfig
from pipeline.errors import SetupError
from pipeline.providers import Adapter
from pipeline.storage import Location, ObjectPath

FALLBACK_KEY_ENV = "RERANK_API_KEY"


def resolve_key(cfg: JobConfig, adapter: Adapter) -> tuple[str | None, str | None]:
    """(key, name of the variable it came from); (None, None) when no key is sent. The key
    itself is never stored or printed.

    A hosted kind (one whose provider has a key variable) always needs its key, whatever
    `base_url` says: a gateway or a proxy in front of it wants one too. Only a self-hosted
    kind, a gateway kind (`litellm`: sent when set), or an explicit
    `provider.api_key_env = ""`, goes without."""
    if cfg.provider.api_key_env == "":
        return None, None
    if cfg.provider.api_key_env:
        names = [cfg.provider.api_key_env]
    else:
        spec = adapter.spec
        names = [n for n in (spec.default_key_env, *spec.alt_key_envs, FALLBACK_KEY_ENV) if n]
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    # A gateway (LiteLLM) may run without client keys: its key is sent only when set.
    hosted = adapter.spec.default_key_env is not None and not adapter.spec.gateway
    if hosted or cfg.provider.api_key_env:
        shown = names[0]
        none_needed = (
            ', or provider.api_key_env = "" if the server needs no key'
            if cfg.provider.base_url or cfg.provider.endpoint
            else ""
        )
        raise SetupError(
            f"{shown} is not set: export it (export {shown}=...) or set provider.api_key_env "
            f"to the variable that holds your {cfg.provider.kind} key{none_needed}"
        )
    return None, None


def resolve_model(cfg: JobConfig, adapter: Adapter) -> str | None:
    """The model the requests will name: the job's, else the provider's default."""
    model = cfg.provider.model or adapter.spec.default_model
    if model is None and adapter.spec.requires_model:
        raise SetupError(
            f"provider.model is not set: {cfg.provider.kind} needs the name of the model the "
            "server has loaded, e.g. --set provider.model=bge-reranker-v2-m3"
        )
    return model


def check_chunk_size(cfg: JobConfig, adapter: Adapter, max_docs: int) -> None:
    billing = job_billing(cfg.provider.kind, cfg.provider.model, cfg.pricing)
    unit = billing.docs_per_unit  # only search units are billed per so many documents
    if billing.basis == "search_units" and max_docs % unit:
        print(
            f"warning: limits.max_docs_per_request = {max_docs} is not a multiple of {unit}: "
            f"{cfg.provider.kind} bills per {unit} documents, so partly filled units are wasted",
            file=sys.stderr,
        )


def resolve_url(cfg: JobConfig, adapter: Adapter) -> str:
    if cfg.provider.kind != "local" and not (
        cfg.provider.endpoint or cfg.provider.base_url or adapter.spec.default_base_url
    ):
        raise SetupError(
            f"provider.base_url is not set: {cfg.provider.kind} is self-hosted, so give the "
            f"server root, e.g. --set provider.base_url=http://127.0.0.1:8080"
        )
    url = adapter.url(cfg.provider.base_url, cfg.provider.endpoint)
    if cfg.provider.kind != "local":
        check_host_and_port(url, "endpoint" if cfg.provider.endpoint else "base_url")
    warn_plain_http(url)
    return url


def check_host_and_port(url: str, key: str) -> None:
    """A URL no request could reach: no host, or a port that is not one."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise SetupError(f"provider.{key}: {url!r} has no host, e.g. http://127.0.0.1:8080")
    try:
        port = parts.port  # ValueError: not a number, or outside 0-65535
    except ValueError:
        port = 0
    if port == 0:
        raise SetupError(
            f"provider.{key}: {url!r} has an invalid port: give a number from 1 to 65535, "
            "or none for the scheme's default"
        )


def check_ca_bundle(cfg: JobConfig) -> None:
    """provider.ca_bundle, when set, is a readable PEM file of CA certificates."""
    path = cfg.provider.ca_bundle
    if not path:
        return
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except FileNotFoundError:
        raise SetupError(f"provider.ca_bundle {path!r}: no such file") from None
    except ssl.SSLError:  # an OSError too: before the next clause
        raise SetupError(
            f"provider.ca_bundle {path!r}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    except OSError as exc:
        raise SetupError(f"provider.ca_bundle {path!r}: cannot read ({exc.strerror})") from None


def warn_plain_http(url: str) -> None:
    """Warn when a key would travel unencrypted to a host beyond this machine or network."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        private = False  # a DNS name: we cannot tell, so warn
    else:
        private = addr.is_loopback or addr.is_private or addr.is_link_local
    if not private:
        print(
            f"warning: {parts.scheme}://{host} is plain HTTP to a non-local host: the API key and "
            "your documents travel unencrypted; use https:// if the server offers it",
            file=sys.stderr,
        )


def prepare_output_dir(path: Location) -> None:
    if isinstance(path, ObjectPath):
        _check_output_prefix(path)
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"output.dir {str(path)!r}: cannot create ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise SetupError(f"output.dir {str(path)!r}: not writable")


def check_eval(cfg: JobConfig) -> None:
    """The job's [eval] section: the evaluation runs after the last request, so a missing
    or unreadable qrels file or an unusable threshold is found here, before any is paid for.
    The judgments are parsed in full (as the evaluation will): a bad line stops the job now."""
    ev = cfg.eval
    if ev.qrels is None:
        return
    if ev.relevance_threshold < 1:
        raise SetupError(
            f"eval.relevance_threshold = {ev.relevance_threshold}: must be at least 1 (the "
            "lowest label counted relevant; 0 would make judged non-relevant documents relevant)"
        )
    # Imported here: a job without [eval] never loads the evaluation package.
    from pipeline.evaluate import EvalInputError
    from pipeline.evaluate.judgments import load_judgments

    try:
        load_judgments(ev.qrels)
    except EvalInputError as exc:
        raise SetupError(f"eval.qrels: {exc}; fix [eval] or remove it") from None


def _check_output_prefix(path: ObjectPath) -> None:
    """An object-store output.dir: its bucket must exist (we never create one), and the
    prefix must not be an object. Whether we may write is known at the first PUT."""
    bucket = path.at(path.path.split("/", 1)[0])
    try:
        if not bucket.is_dir():
            raise SetupError(f"output.dir {str(path)!r}: bucket {bucket.path!r} not found")
        if path.is_file():
            raise SetupError(f"output.dir {str(path)!r}: is an object, not a prefix")
    except OSError as exc:
        raise SetupError(f"output.dir {str(path)!r}: cannot reach it ({exc})") from None

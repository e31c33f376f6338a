"""Everything a run needs before the first request: key, URL, output directory, checks.

Problems here are `SetupError`s with a message that says what to do next; the CLI prints
them and exits 2, and no request has been sent.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.config import JobConfig
from pipeline.providers import Adapter

FALLBACK_KEY_ENV = "RERANK_API_KEY"


class SetupError(Exception):
    pass


def resolve_key(cfg: JobConfig, adapter: Adapter) -> tuple[str | None, str | None]:
    """(key, name of the variable it came from). The key itself is never stored or printed."""
    if cfg.provider.api_key_env:
        names = [cfg.provider.api_key_env]
    else:
        names = [n for n in (adapter.spec.default_key_env, FALLBACK_KEY_ENV) if n]
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    needs_key = adapter.spec.default_key_env is not None and cfg.provider.endpoint is None and (
        cfg.provider.base_url is None
    )
    if needs_key or cfg.provider.api_key_env:
        shown = names[0]
        raise SetupError(
            f"{shown} is not set: export it (export {shown}=...) or set provider.api_key_env "
            f"to the variable that holds your {cfg.provider.kind} key"
        )
    return None, names[0] if names else None


def resolve_url(cfg: JobConfig, adapter: Adapter) -> str:
    if cfg.provider.kind != "local" and not (cfg.provider.endpoint or cfg.provider.base_url or adapter.spec.default_base_url):
        raise SetupError(
            f"provider.base_url is not set: {cfg.provider.kind} is self-hosted, so give the "
            f"server root, e.g. --set provider.base_url=http://127.0.0.1:8080"
        )
    url = adapter.url(cfg.provider.base_url, cfg.provider.endpoint)
    warn_plain_http(url)
    return url


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


def prepare_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"output.dir {str(path)!r}: cannot create ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise SetupError(f"output.dir {str(path)!r}: not writable")

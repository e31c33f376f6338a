"""The HTTP transport: request bodies to a rerank API over the job's one aiohttp session.

It returns a `Reply` for any status and lets exceptions rise unchanged: `RerankClient`
translates them into `pipeline.errors` in one place (see `pipeline.transport`).

- The key goes in `key_header` as "`key_scheme` KEY" (`Authorization: Bearer KEY` by
  default; an empty scheme sends the bare key, e.g. `X-Api-Key: KEY`).
- Proxies: HTTP_PROXY / HTTPS_PROXY / NO_PROXY (either case) are honoured, looked up once
  for the job's one URL (`env_proxy`). Not through aiohttp's `trust_env`, which looks them
  up again on every request (in a thread) and also reads ~/.netrc, whose credentials would
  either replace a missing key or clash with the key's `Authorization` header. A proxy
  is reached with plain HTTP (an `https://` URL through it uses CONNECT).
- TLS: verification is always on; `ca_bundle` (a PEM file) is trusted in addition to the
  system's certificate authorities, for a private or corporate CA.
"""

from __future__ import annotations

import base64
import ssl
import urllib.request

import aiohttp
from yarl import URL

from pipeline.transport import Reply


def env_proxy(url: str) -> tuple[str | None, str | None]:
    """(proxy URL without credentials, its Proxy-Authorization value) for `url` from the
    environment's proxy variables, as curl and Python's urllib read them; (None, None) for
    a direct connection (no proxy for the scheme, or the host matches NO_PROXY)."""
    target = URL(url)
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or (target.host and urllib.request.proxy_bypass(target.host)):
        return None, None
    if "://" not in proxy:
        proxy = f"http://{proxy}"  # HTTP_PROXY=host:port, as curl accepts it
    parsed = URL(proxy)
    credentials = None
    if parsed.user is not None:
        pair = f"{parsed.user}:{parsed.password or ''}".encode()
        credentials = "Basic " + base64.b64encode(pair).decode("ascii")
    return str(parsed.with_user(None)), credentials


def tls_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """True (aiohttp's default verification) or a context that also trusts `ca_bundle`."""
    if not ca_bundle:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


class HttpTransport:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        max_concurrency: int,
        timeout_s: float,
        connect_timeout_s: float,
        *,
        key_header: str = "Authorization",
        key_scheme: str = "Bearer",
        ca_bundle: str | None = None,
    ):
        self.url = url
        # In-flight requests never exceed the connector's limit, so no request waits for a
        # free connection and `total` measures only the request itself.
        connector = aiohttp.TCPConnector(
            limit=max(max_concurrency, 1),
            limit_per_host=0,
            ttl_dns_cache=300,
            ssl=tls_context(ca_bundle),
        )
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(connect_timeout_s, timeout_s), sock_read=timeout_s
        )
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers[key_header] = f"{key_scheme} {api_key}" if key_scheme else api_key
        self.proxy, proxy_credentials = env_proxy(url)
        # Proxy credentials travel in the request itself to a plain-HTTP URL, in the CONNECT
        # otherwise (aiohttp's own `proxy_auth` is deprecated from 3.14 on).
        self._proxy_headers: dict[str, str] | None = None
        if proxy_credentials and URL(url).scheme == "https":
            self._proxy_headers = {"Proxy-Authorization": proxy_credentials}
        elif proxy_credentials:
            self._headers["Proxy-Authorization"] = proxy_credentials
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
        )

    async def post(self, body: bytes) -> Reply:
        async with self._session.post(
            self.url,
            data=body,
            headers=self._headers,
            allow_redirects=False,
            proxy=self.proxy,
            proxy_headers=self._proxy_headers,
        ) as resp:
            data = await resp.read()
            return Reply(resp.status, data, resp.headers)

    async def close(self) -> None:
        await self._session.close()

"""The endpoint breaker: a job whose endpoint is clearly unusable stops, with a message that
says what to fix, instead of retrying every request `limits.max_attempts` times and failing
every query on its own (hours, for a nightly job against a dead server).

`RerankClient` reports the outcome of every attempt:

- a validated answer resets it;
- a 429 is ignored: the server is there and asks us to slow down (the shared cool-down
  handles that); 401/403 never reach it, they stop the job by themselves;
- every other failure counts: connection refused or reset, TLS and DNS errors, timeouts,
  redirects, 4xx, 5xx and malformed answers.

The rule, with N = `limits.breaker_failures` (default 8) and T = `limits.breaker_seconds`
(default 120), "in a row" meaning in the order attempts end, across all workers:

- no answer yet in this run: it trips after N failed attempts in a row. A dead or
  misconfigured endpoint fails every attempt, so the job stops within its first N attempts;
- after an answer: it trips only after N failed attempts in a row *and* T seconds since the
  last answer. A healthy but flaky endpoint (some 5xx, timeouts and 429s among answers)
  never trips it however unlucky a run of failures is, and an outage shorter than T is
  ridden out by the retries as before.

    >>> from pipeline.errors import TransportError
    >>> clock = iter([0.0, 1.0, 2.0]).__next__
    >>> b = EndpointBreaker("http://h/v1/rerank", failures=2, seconds=60, clock=clock)
    >>> b.failed(TransportError("reset")), b.failed(TransportError("reset")) is not None
    (None, True)
    >>> b.message
    'endpoint unusable: connection to http://h/v1/rerank failed: reset (2 attempts in a row failed, no answer since the start)'

When it trips, it keeps the most telling failure of the run (a TLS error from a plain-HTTP
server tells more than the timeouts around it) and says what to fix. The client then starts
no new attempt and retries nothing: every chunk not answered is left unsent (a resume sends
it), the engine stops once nothing is on the wire, and the run exits with status 4.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from pipeline.errors import (
    AuthError,
    BadAnswer,
    ProviderError,
    RateLimited,
    RequestTimeout,
    redact,
)

DEFAULT_FAILURES = 8
DEFAULT_SECONDS = 120.0

# What OpenSSL says when a TLS client hello gets a plain-HTTP answer (versions differ).
PLAIN_HTTP_REASONS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    rank: int  # lower tells more about what to fix
    text: str


class EndpointBreaker:
    def __init__(
        self,
        url: str,
        *,
        failures: int = DEFAULT_FAILURES,
        seconds: float = DEFAULT_SECONDS,
        key_env: str | None = None,
        kind: str = "",
        secrets: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self.failures = failures
        self.seconds = seconds
        self.key_env = key_env  # the variable the key came from; None: no key is sent
        self.kind = kind
        self.secrets = secrets or []
        self._clock = clock
        self._in_a_row = 0
        self._last_answer: float | None = None  # None: no answer yet in this run
        self._worst: Diagnosis | None = None
        self.message: str | None = None  # set when it trips
        self.tripped = asyncio.Event()

    @property
    def is_tripped(self) -> bool:
        return self.message is not None

    def succeeded(self) -> None:
        self._in_a_row = 0
        self._worst = None
        self._last_answer = self._clock()

    def failed(self, err: ProviderError, headers: Mapping[str, str] | None = None) -> str | None:
        """Count one failed attempt; the trip message when the endpoint is unusable."""
        if self.message is not None:
            return self.message
        if isinstance(err, (RateLimited, AuthError)):
            return None
        self._in_a_row += 1
        found = diagnose(err, self.url, headers, key_env=self.key_env, kind=self.kind)
        if self._worst is None or found.rank < self._worst.rank:
            self._worst = found
        if self._in_a_row < self.failures:
            return None
        if self._last_answer is None:
            since = "no answer since the start"
        else:
            quiet = self._clock() - self._last_answer
            if quiet < self.seconds:
                return None
            since = f"no answer for {quiet:.0f}s"
        self.message = redact(
            f"endpoint unusable: {self._worst.text} "
            f"({self._in_a_row} attempts in a row failed, {since})",
            self.secrets,
        )
        self.tripped.set()
        return self.message


def diagnose(
    err: ProviderError,
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    key_env: str | None = None,
    kind: str = "",
) -> Diagnosis:
    """What one failed attempt says about the endpoint, and what to fix if it is the rule."""
    if err.status is not None:
        return _diagnose_status(err, err.status, url, headers or {}, key_env)
    if isinstance(err, BadAnswer):
        return Diagnosis(
            6,
            f"no valid answer from {url} ({err.message}): does this server speak the "
            f"{kind or 'configured'} API (provider.kind)?",
        )
    if isinstance(err, RequestTimeout):
        return Diagnosis(
            10,
            f"{err.message} from {url}: the server is hung or overloaded "
            "(raise the limit if it is only slow)",
        )
    return _diagnose_connection(err, url)


def _diagnose_status(
    err: ProviderError, status: int, url: str, headers: Mapping[str, str], key_env: str | None
) -> Diagnosis:
    if 300 <= status < 400:
        location = headers.get("Location")
        if location:
            target = urljoin(url, location)
            return Diagnosis(
                2,
                f"redirected to {target}: use that URL (HTTP {status} from {url}; requests are "
                "not redirected: set provider.base_url to its server root, or provider.endpoint)",
            )
        return Diagnosis(2, f"HTTP {status} from {url}, a redirect with no Location")
    if status == 404 and _doubled_api_path(url):
        return Diagnosis(
            2,
            f"404 from {url}: provider.base_url should be the server root "
            f"({_server_root(url)}); the API path is appended to it",
        )
    if status == 404:
        return Diagnosis(
            5,
            f"{url} answered {err.message}: check provider.base_url (the server root; "
            "provider.kind appends its API path), provider.endpoint and provider.model",
        )
    text = f"{url} answered {err.message}"
    if status == 413:
        return Diagnosis(
            7,
            f"{text}: lower limits.max_docs_per_request or limits.max_tokens_per_request",
        )
    if key_env is None:
        text += "; no API key was sent: if the server needs one, set provider.api_key_env"
    elif status == 400:
        text += f" (some gateways answer an unknown key this way: check the key in ${key_env})"
    return Diagnosis(7 if status < 500 else 8, text)


def _diagnose_connection(err: ProviderError, url: str) -> Diagnosis:
    cause = err.__cause__
    os_error = getattr(cause, "os_error", cause)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", "")
        return Diagnosis(
            1,
            f"the TLS certificate of {_origin(url)} is not trusted ({reason}): if a private CA "
            "signed it, set provider.ca_bundle to that CA's PEM file",
        )
    if isinstance(os_error, ssl.SSLError):
        reason = os_error.reason or type(os_error).__name__
        if reason in PLAIN_HTTP_REASONS and urlsplit(url).scheme == "https":
            plain = urlunsplit(urlsplit(url)._replace(scheme="http"))
            return Diagnosis(0, f"the server at {_origin(url)} speaks plain HTTP: use {plain}")
        return Diagnosis(1, f"TLS with {_origin(url)} failed ({reason})")
    where, what = url, "the server"
    if isinstance(cause, aiohttp.ClientProxyConnectionError):
        where = f"the proxy at {cause.host}:{cause.port}"
        what = "the proxy (from HTTP_PROXY / HTTPS_PROXY)"
    if isinstance(os_error, ConnectionRefusedError):
        return Diagnosis(3, f"connection refused at {where}: is {what} running?")
    if isinstance(os_error, socket.gaierror):
        host = getattr(cause, "host", None) or urlsplit(url).hostname
        return Diagnosis(
            4, f"cannot resolve the host {host}: check provider.base_url and the network"
        )
    return Diagnosis(11, f"connection to {where} failed: {err.message}")


def _doubled_api_path(url: str) -> bool:
    """A base_url that already held the API path: /v1/rerank/v1/rerank, /rerank/v1/rerank."""
    return urlsplit(url).path.count("/rerank") >= 2


def _server_root(url: str) -> str:
    """The URL up to the first API path in it (a version segment before it included)."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    cut = segments.index("rerank") if "rerank" in segments else len(segments)
    if cut > 1 and re.fullmatch(r"v\d+", segments[cut - 1]):
        cut -= 1
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments[:cut]), "", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

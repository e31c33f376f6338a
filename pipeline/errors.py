"""Every exception that crosses a layer, in one module that every layer may import.

It imports nothing from the pipeline, so providers, accounting, the call layer and the
runner all raise and catch the same classes without importing one another.

Before the first request (the CLI prints the message and exits 2; nothing was sent):

    ConfigError           an invalid job file or --set override
    SetupError            a pre-flight check failed: key, URL, output directory, resume
    InputError            the input cannot be read at all (missing file or column)

During a run:

    OutputError           the output directory cannot be written (made unwritable, disk
                          full): the run stops, summary.json is written if it can be, and
                          the CLI exits 2; the work committed before is kept (resumable)

A request that went wrong, translated at one boundary (`pipeline.call.client`) with the
original as `__cause__`:

    ProviderError
    ├── TransientError        retried with backoff, then the query fails
    │   ├── RateLimited       429: also pauses the whole job (shared cool-down)
    │   ├── ServerError       408, 5xx
    │   ├── TransportError    connection refused/reset, TLS, DNS
    │   │   └── RequestTimeout    no answer within limits.timeout_s (or no connection
    │   │                         within limits.connect_timeout_s)
    │   └── BadAnswer         2xx whose body is not a valid answer
    ├── RequestRejected       3xx, 400/404/413/422 and other 4xx: the query fails, no retry
    ├── AuthError             401/403: the job stops at once
    └── EndpointUnusable      the breaker (`pipeline.call.breaker`) tripped: the job stops,
                              exit status 4

    >>> RequestRejected("HTTP 413: too many documents", 413).key
    'http_413'
    >>> TransportError("ConnectionResetError").key
    'connection'
    >>> RequestTimeout("no answer within limits.timeout_s = 60s").key
    'timeout'

Messages never hold the API key: `redact` is applied where a message is made from text we
did not write (server bodies, library exceptions).
"""

from __future__ import annotations


class ConfigError(Exception):
    """An invalid job file or override; the message says which key and how to fix it."""


class SetupError(Exception):
    """A pre-flight check failed; the message says what to do next."""


class InputError(Exception):
    """The input cannot be read at all (missing file or column): raised before any request."""


class OutputError(Exception):
    """A part file, the manifest or summary.json could not be written; names the path."""


class ProviderError(Exception):
    retryable = False
    error = "provider_error"  # the kind, used as `key` when the server sent no status

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def key(self) -> str:
        """The short name counted in summary.json and written to failures/: `http_<status>`
        when the server answered with a status, else the kind (e.g. "connection")."""
        return f"http_{self.status}" if self.status is not None else self.error


class TransientError(ProviderError):
    retryable = True
    error = "transient"


class RateLimited(TransientError):
    error = "http_429"


class ServerError(TransientError):
    error = "server_error"


class TransportError(TransientError):
    error = "connection"


class RequestTimeout(TransportError):
    error = "timeout"


class BadAnswer(TransientError):
    error = "bad_answer"


class RequestRejected(ProviderError):
    error = "rejected"


class AuthError(ProviderError):
    error = "auth"


class EndpointUnusable(ProviderError):
    """The endpoint is clearly unusable (dead, misconfigured, answering nothing valid): the
    job stops, keeps its finished work, and the message says what to fix."""

    error = "endpoint_unusable"


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text

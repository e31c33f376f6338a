"""The one exception tree of the call layer.

Everything that can go wrong with a request is translated into one of these at a single
boundary (`pipeline.call.client`), with the original as `__cause__`:

    ProviderError
    ├── TransientError        retried with backoff, then the query fails
    │   ├── RateLimited       429: also pauses the whole job (shared cool-down)
    │   ├── ServerError       408, 5xx
    │   ├── TransportError    connection refused/reset, timeouts
    │   └── BadAnswer         2xx whose body is not a valid answer
    ├── RequestRejected       400/404/413/422 and other 4xx: the query fails, no retry
    └── AuthError             401/403: the job stops at once

Messages never hold the API key: `redact` is applied where a message is made from text we
did not write (server bodies, library exceptions).
"""

from __future__ import annotations


class ProviderError(Exception):
    retryable = False
    error = "provider_error"

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class TransientError(ProviderError):
    retryable = True
    error = "transient"


class RateLimited(TransientError):
    error = "http_429"


class ServerError(TransientError):
    error = "server_error"


class TransportError(TransientError):
    error = "connection"


class BadAnswer(TransientError):
    error = "bad_answer"


class RequestRejected(ProviderError):
    error = "rejected"


class AuthError(ProviderError):
    error = "auth"


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text

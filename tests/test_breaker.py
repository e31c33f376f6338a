"""The endpoint breaker's rule and diagnoses, on a clock the test moves (no server: the
end-to-end behaviour is in tests/test_endpoint.py)."""

from __future__ import annotations

import pytest

from pipeline.call.breaker import EndpointBreaker, diagnose
from pipeline.errors import (
    AuthError,
    BadAnswer,
    RateLimited,
    RequestRejected,
    RequestTimeout,
    ServerError,
    TransportError,
)

URL = "http://gw.example.com/v1/rerank"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **kwargs) -> EndpointBreaker:
    return EndpointBreaker(URL, failures=3, seconds=60.0, clock=clock, **kwargs)


def fail(b: EndpointBreaker, n: int, err=None) -> list[str | None]:
    return [b.failed(err or ServerError("HTTP 503: busy", 503)) for _ in range(n)]


def test_with_no_answer_yet_it_trips_after_n_failures_in_a_row():
    b = breaker(Clock())
    assert fail(b, 2) == [None, None] and not b.is_tripped
    message = b.failed(ServerError("HTTP 503: busy", 503))
    assert message == b.message and b.is_tripped and b.tripped.is_set()
    assert message.endswith("(3 attempts in a row failed, no answer since the start)")


def test_after_an_answer_it_needs_n_failures_and_t_seconds():
    clock = Clock()
    b = breaker(clock)
    b.succeeded()
    clock.now += 59
    assert fail(b, 10) == [None] * 10  # many failures, but an answer 59 s ago
    clock.now += 2
    assert b.failed(ServerError("HTTP 503: busy", 503)) is not None
    assert "no answer for 61s" in b.message


def test_time_alone_does_not_trip_it():
    clock = Clock()
    b = breaker(clock)
    b.succeeded()
    clock.now += 3600
    assert fail(b, 2) == [None, None]
    assert fail(b, 1) != [None]


def test_an_answer_resets_the_run_and_429s_and_401s_do_not_count():
    b = breaker(Clock())
    fail(b, 2)
    b.succeeded()
    fail(b, 2)
    assert b.failed(RateLimited("HTTP 429: slow down", 429)) is None
    assert b.failed(AuthError("HTTP 401: no", 401)) is None
    assert not b.is_tripped  # 2 in a row since the answer, 429 and 401 not among them


def test_the_most_telling_failure_of_the_run_is_reported():
    b = breaker(Clock())
    b.failed(RequestTimeout("no answer within limits.timeout_s = 60s"))
    b.failed(
        RequestRejected("HTTP 302: redirected", 302),
        {"Location": "https://gw.example.com/v1/rerank"},
    )
    b.failed(ServerError("HTTP 502: bad gateway", 502))
    assert b.message is not None
    assert "redirected to https://gw.example.com/v1/rerank: use that URL" in b.message


def test_a_tripped_breaker_stays_tripped():
    b = breaker(Clock())
    first = fail(b, 3)[-1]
    b.succeeded()  # an answer that was already on the wire
    assert b.failed(ServerError("HTTP 503: busy", 503)) == first


def test_the_message_holds_no_secret():
    b = breaker(Clock(), secrets=["sk-SECRET-1"], key_env="MY_KEY")
    fail(b, 3, BadAnswer("answer is not JSON: '<pre>Bearer sk-SECRET-1</pre>'"))
    assert b.message is not None and "sk-SECRET-1" not in b.message and "***" in b.message


@pytest.mark.parametrize(
    "err, headers, key_env, says",
    [
        (
            RequestRejected("HTTP 301: moved", 301),
            {"Location": "/api/v1/rerank"},
            "K",
            "redirected to http://gw.example.com/api/v1/rerank: use that URL",
        ),
        (
            RequestRejected("HTTP 413: too many documents", 413),
            None,
            "K",
            "lower limits.max_docs_per_request",
        ),
        (
            ServerError("HTTP 500: Internal Server Error", 500),
            None,
            None,
            "no API key was sent: if the server needs one, set provider.api_key_env",
        ),
        (
            RequestRejected("HTTP 400: No connected db.", 400),
            None,
            "GW_KEY",
            "check the key in $GW_KEY",
        ),
        (
            RequestRejected("HTTP 404: model not found", 404),
            None,
            "K",
            f"{URL} answered HTTP 404: model not found: check provider.base_url",
        ),
        (
            RequestTimeout("no answer within limits.timeout_s = 5s"),
            None,
            "K",
            f"no answer within limits.timeout_s = 5s from {URL}: the server is hung",
        ),
        (
            TransportError("ServerDisconnectedError"),
            None,
            "K",
            f"connection to {URL} failed: ServerDisconnectedError",
        ),
    ],
    ids=["redirect", "413", "500-no-key", "400-with-key", "404", "timeout", "reset"],
)
def test_diagnoses(err, headers, key_env, says):
    assert says in diagnose(err, URL, headers, key_env=key_env, kind="jina").text


def test_a_key_variable_is_named_only_when_a_key_was_sent():
    text = diagnose(RequestRejected("HTTP 400: No connected db.", 400), URL, key_env=None).text
    assert "$" not in text and "no API key was sent" in text


@pytest.mark.parametrize(
    "url, root",
    [
        ("http://h:1/v1/rerank/v1/rerank", "http://h:1"),
        ("http://h:1/rerank/v1/rerank", "http://h:1"),
        ("https://gw.example.com/api/v1/rerank/v1/rerank", "https://gw.example.com/api"),
    ],
)
def test_a_doubled_api_path_names_the_server_root(url, root):
    text = diagnose(RequestRejected("HTTP 404: Not Found", 404), url).text
    assert text == (
        f"404 from {url}: provider.base_url should be the server root ({root}); "
        "the API path is appended to it"
    )

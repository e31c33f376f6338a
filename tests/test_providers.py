"""Each adapter as a pure translator: request dicts, answer bytes and error bytes in, records out.

Sample answers and error bodies follow the shapes in each provider's docs and server source.
"""

from __future__ import annotations

import doctest
import importlib

import orjson
import pytest

from pipeline.errors import BadAnswer
from pipeline.providers import ADAPTERS, get_adapter, known_kinds, model_profile
from pipeline.records import ProviderUsage

DOCS = ["d0", "d1", "d2"]


def j(obj) -> bytes:
    return orjson.dumps(obj)


# -- registry and specs ---------------------------------------------------------------------
def test_every_kind_is_registered_with_its_defaults():
    assert known_kinds() == [
        "cohere",
        "cohere-v1",
        "infinity",
        "jina",
        "litellm",
        "llamacpp",
        "local",
        "tei",
        "vllm",
        "voyage",
        "xinference",
    ]
    table = {
        k: (
            a.spec.path,
            a.spec.default_base_url,
            a.spec.default_key_env,
            a.spec.max_docs_per_request,
            a.spec.billing,
        )
        for k, a in ADAPTERS.items()
    }
    assert table["cohere"] == (
        "/v2/rerank",
        "https://api.cohere.com",
        "CO_API_KEY",
        1000,
        "search_units",
    )
    assert table["cohere-v1"][0] == "/v1/rerank"
    assert table["voyage"] == (
        "/v1/rerank",
        "https://api.voyageai.com",
        "VOYAGE_API_KEY",
        1000,
        "tokens",
    )
    assert table["tei"] == ("/rerank", None, None, 32, "tokens")
    assert table["xinference"][1:3] == (None, None)
    assert table["litellm"] == ("/v1/rerank", None, "LITELLM_API_KEY", 100, "tokens")
    assert get_adapter("litellm").spec.gateway and get_adapter("litellm").spec.requires_model
    assert get_adapter("cohere").spec.alt_key_envs == ("COHERE_API_KEY",)
    assert (
        get_adapter("cohere").spec.max_docs_per_request
        % get_adapter("cohere").spec.docs_per_billing_unit
        == 0
    )


@pytest.mark.parametrize("kind", sorted(set(ADAPTERS) - {"local"}))
def test_no_adapter_sends_a_field_its_api_rejects(kind):
    adapter = get_adapter(kind)
    body = adapter.build_request("some-model", "q", DOCS, 2)
    assert not set(body) & adapter.spec.never_send
    if adapter.spec.requires_model:
        assert adapter.build_request(None, "q", DOCS, 2).get("model") == (
            adapter.spec.default_model or None
        )


@pytest.mark.parametrize(
    "kind,base,url",
    [
        ("cohere", None, "https://api.cohere.com/v2/rerank"),
        ("cohere", "https://api.cohere.ai/v2", "https://api.cohere.ai/v2/rerank"),
        ("cohere-v1", None, "https://api.cohere.com/v1/rerank"),
        ("voyage", None, "https://api.voyageai.com/v1/rerank"),
        ("tei", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/rerank"),
        ("infinity", "http://h:7997", "http://h:7997/rerank"),
        ("vllm", "http://h:8000/v1", "http://h:8000/v1/rerank"),
        ("litellm", "http://proxy:4000", "http://proxy:4000/v1/rerank"),
        ("litellm", "http://proxy:4000/v1", "http://proxy:4000/v1/rerank"),
    ],
)
def test_urls(kind, base, url):
    assert get_adapter(kind).url(base, None) == url


# -- build_request: exact bodies --------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,model,expected",
    [
        (
            "jina",
            "jina-reranker-v2-base-multilingual",
            {
                "query": "q",
                "documents": DOCS,
                "top_n": 2,
                "return_documents": False,
                "model": "jina-reranker-v2-base-multilingual",
            },
        ),
        ("cohere", None, {"model": "rerank-v3.5", "query": "q", "documents": DOCS, "top_n": 2}),
        (
            "cohere-v1",
            "rerank-english-v3.0",
            {
                "model": "rerank-english-v3.0",
                "query": "q",
                "documents": DOCS,
                "top_n": 2,
                "return_documents": False,
            },
        ),
        (
            "voyage",
            None,
            {
                "model": "rerank-2.5",
                "query": "q",
                "documents": DOCS,
                "top_k": 2,
                "return_documents": False,
                "truncation": True,
            },
        ),
        (
            "xinference",
            "bge-reranker-v2-m3",
            {
                "model": "bge-reranker-v2-m3",
                "query": "q",
                "documents": DOCS,
                "top_n": 2,
                "return_documents": False,
                "return_len": True,
            },
        ),
        (
            "tei",
            "ignored",
            {
                "query": "q",
                "texts": DOCS,
                "raw_scores": False,
                "truncate": True,
                "return_text": False,
            },
        ),
        ("vllm", None, {"query": "q", "documents": DOCS, "top_n": 2}),
        (
            "infinity",
            "m",
            {"query": "q", "documents": DOCS, "top_n": 2, "return_documents": False, "model": "m"},
        ),
        ("llamacpp", None, {"query": "q", "documents": DOCS, "top_n": 2}),
        (
            "litellm",
            "my-reranker",
            {
                "model": "my-reranker",
                "query": "q",
                "documents": DOCS,
                "top_n": 2,
                "return_documents": False,
            },
        ),
    ],
)
def test_build_request_exact_body(kind, model, expected):
    assert get_adapter(kind).build_request(model, "q", DOCS, 2) == expected


# -- parse_answer on real-looking answers -----------------------------------------------------
SAMPLES = {
    "jina": (
        {
            "model": "jina-reranker-v2-base-multilingual",
            "usage": {"total_tokens": 38},
            "results": [
                {"index": 2, "relevance_score": 0.91, "document": {"text": "d2"}},
                {"index": 0, "relevance_score": 0.12, "document": "d0"},
            ],
        },
        ProviderUsage(None, 38, None),
    ),
    "cohere": (
        {
            "id": "8c6f",
            "results": [
                {"index": 2, "relevance_score": 0.91},
                {"index": 0, "relevance_score": 0.12},
            ],
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"search_units": 1.0},
                "tokens": {"input_tokens": 38.0, "output_tokens": 0.0},
            },
        },
        ProviderUsage(38, 38, 1.0),
    ),
    "cohere-v1": (
        {
            "id": "x",
            "results": [
                {"index": 2, "relevance_score": 0.91, "document": {"text": "d2"}},
                {"index": 0, "relevance_score": 0.12},
            ],
            "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 2}},
        },
        ProviderUsage(None, None, 2.0),
    ),
    "voyage": (
        {
            "object": "list",
            "data": [{"relevance_score": 0.91, "index": 2}, {"relevance_score": 0.12, "index": 0}],
            "model": "rerank-2.5",
            "usage": {"total_tokens": 38},
        },
        ProviderUsage(None, 38, None),
    ),
    "xinference": (
        {
            "id": "r1",
            "results": [
                {"index": 2, "relevance_score": 0.91, "document": None},
                {"index": 0, "relevance_score": 0.12, "document": None},
            ],
            "meta": {
                "api_version": None,
                "billed_units": None,
                "tokens": {"input_tokens": 38, "output_tokens": 38},
                "warnings": None,
            },
        },
        ProviderUsage(38, 38, None),
    ),
    "vllm": (
        {
            "id": "rerank-1",
            "model": "BAAI/bge-reranker-v2-m3",
            "usage": {"total_tokens": 38},
            "results": [
                {"index": 2, "document": {"text": "d2"}, "relevance_score": 0.91},
                {"index": 0, "document": {"text": "d0"}, "relevance_score": 0.12},
            ],
        },
        ProviderUsage(None, 38, None),
    ),
    "infinity": (
        {
            "object": "rerank",
            "results": [
                {"relevance_score": 0.91, "index": 2, "document": None},
                {"relevance_score": 0.12, "index": 0, "document": None},
            ],
            "model": "m",
            "usage": {"prompt_tokens": 38, "total_tokens": 38},
            "id": "i",
            "created": 1,
        },
        ProviderUsage(38, 38, None),
    ),
    "llamacpp": (
        {
            "model": "m",
            "object": "list",
            "usage": {"prompt_tokens": 38, "total_tokens": 38},
            "results": [
                {"index": 2, "relevance_score": 0.91},
                {"index": 0, "relevance_score": 0.12},
            ],
        },
        ProviderUsage(38, 38, None),
    ),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_parse_answer_on_a_documented_sample(kind):
    body, usage = SAMPLES[kind]
    answer = get_adapter(kind).parse_answer(j(body), 3, 2)
    assert answer.results == [(2, 0.91), (0, 0.12)]
    assert answer.usage == usage


def test_xinference_without_return_len_reports_no_tokens():
    body = {
        "id": "r",
        "results": [{"index": 0, "relevance_score": 0.5}],
        "meta": {"api_version": None, "billed_units": None, "tokens": None, "warnings": None},
    }
    assert get_adapter("xinference").parse_answer(j(body), 1, 1).usage == ProviderUsage()


def test_llamacpp_zeroed_usage_of_old_builds_is_not_reported():
    body = {
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
        "results": [{"index": 0, "relevance_score": 0.5}],
    }
    assert get_adapter("llamacpp").parse_answer(j(body), 1, 1).usage == ProviderUsage()


def test_tei_validates_the_full_list_sorts_and_cuts_and_reads_tokens_from_headers():
    tei = get_adapter("tei")
    body = j([{"index": 1, "score": 0.5}, {"index": 2, "score": 0.5}, {"index": 0, "score": 0.9}])
    answer = tei.parse_answer(body, 3, 2, {"X-Compute-Tokens": "41", "x-compute-type": "cpu"})
    assert answer.results == [(0, 0.9), (1, 0.5)]  # ties by index ascending
    assert answer.usage == ProviderUsage(41, 41, None)
    assert tei.parse_answer(body, 3, 3).usage == ProviderUsage()  # no headers: not reported
    with pytest.raises(BadAnswer, match="asked for 3 results, got 2"):
        tei.parse_answer(j([{"index": 0, "score": 0.9}, {"index": 1, "score": 0.5}]), 3, 1)
    with pytest.raises(BadAnswer, match="expected a list"):
        tei.parse_answer(j({"results": []}), 3, 1)


BROKEN = [
    ([{"index": 3, "relevance_score": 0.5}], "outside 0..2"),
    ([{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.4}], "appears twice"),
    ([{"index": 0, "relevance_score": "NaN"}], "no finite"),
    ([{"index": 0, "relevance_score": None}], "no finite"),
    ([{"index": True, "relevance_score": 0.5}], "no integer 'index'"),
    ([{"index": 0, "relevance_score": 0.5}, "x"], "result 1 is not an object"),
    ([{"relevance_score": 0.5}], "no integer 'index'"),
    ([{"index": 0}], "no finite"),
]


@pytest.mark.parametrize("kind", sorted(set(ADAPTERS) - {"local"}))
@pytest.mark.parametrize("items,message", BROKEN)
def test_invalid_answers_are_bad_answers(kind, items, message):
    if kind == "tei":
        items = [
            {("score" if k == "relevance_score" else k): v for k, v in i.items()}
            if isinstance(i, dict)
            else i
            for i in items
        ]
        body = j(items)
    else:
        key = {"voyage": "data"}.get(kind, "results")
        body = j({key: items})
    with pytest.raises(BadAnswer, match=message):
        get_adapter(kind).parse_answer(body, 3, 1)


@pytest.mark.parametrize("kind", sorted(set(ADAPTERS) - {"local", "tei"}))
def test_fewer_results_than_asked_and_non_json_are_bad_answers(kind):
    key = {"voyage": "data"}.get(kind, "results")
    with pytest.raises(BadAnswer, match="asked for 2 results, got 1"):
        get_adapter(kind).parse_answer(j({key: [{"index": 0, "relevance_score": 0.3}]}), 3, 2)
    with pytest.raises(BadAnswer, match="not JSON"):
        get_adapter(kind).parse_answer(b"<html>502 Bad Gateway</html>", 3, 2)


# -- parse_error on each documented error shape -----------------------------------------------
ERRORS = [
    (
        "jina",
        500,
        {
            "error": {
                "message": "query is empty",
                "type": "new_api_error",
                "param": "",
                "code": "invalid_request",
            }
        },
        "query is empty (invalid_request)",
        False,
    ),
    (
        "jina",
        400,
        {"error": {"message": "invalid_rerank_request", "type": "one_api_error"}},
        "invalid_rerank_request (one_api_error)",
        None,
    ),
    (
        "cohere",
        400,
        {"id": "a1", "message": "invalid request: list of documents must not be empty"},
        "invalid request: list of documents must not be empty",
        None,
    ),
    (
        "cohere-v1",
        429,
        {"message": "You are using a Trial key, which is limited to 10 API calls / minute."},
        "You are using a Trial key, which is limited to 10 API calls / minute.",
        None,
    ),
    (
        "voyage",
        400,
        {"detail": "The request has too many documents (1001 > 1000)."},
        "The request has too many documents (1001 > 1000).",
        None,
    ),
    (
        "xinference",
        400,
        {"detail": "Model not found in the model list, uid: bge"},
        "Model not found in the model list, uid: bge",
        None,
    ),
    (
        "xinference",
        422,
        {"detail": [{"loc": ["body", "model"], "msg": "field required"}]},
        "field required",
        None,
    ),
    (
        "tei",
        413,
        {"error": "batch size 40 > maximum allowed batch size 32", "error_type": "validation"},
        "batch size 40 > maximum allowed batch size 32 (validation)",
        None,
    ),
    (
        "vllm",
        400,
        {
            "error": {
                "message": "top_n must be >= 0",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        },
        "top_n must be >= 0 (400)",
        None,
    ),
    (
        "infinity",
        400,
        {
            "error": {
                "message": "model not found",
                "type": "NotFoundError",
                "param": None,
                "code": 400,
            }
        },
        "model not found (400)",
        None,
    ),
    (
        "llamacpp",
        400,
        {
            "error": {
                "code": 400,
                "message": '"documents" must be a non-empty string array',
                "type": "invalid_request_error",
            }
        },
        '"documents" must be a non-empty string array (400)',
        None,
    ),
]


ERRORS += [
    # Bodies of no known shape still say what the server said.
    ("jina", 500, "No connected db.", "No connected db.", None),
    (
        "cohere",
        502,
        {"errors": [{"message": "upstream down"}]},
        '{"errors":[{"message":"upstream down"}]}',
        None,
    ),
]


@pytest.mark.parametrize("kind,status,body,message,retryable", ERRORS)
def test_parse_error(kind, status, body, message, retryable):
    info = get_adapter(kind).parse_error(status, j(body))
    assert info.message == message
    assert info.retryable is retryable


def test_parse_error_of_a_non_json_body_keeps_its_text():
    body = b"Failed to deserialize the JSON body into the target type: missing field `texts`"
    assert get_adapter("tei").parse_error(422, body).message == body.decode()
    assert get_adapter("cohere").parse_error(502, b"").message == "HTTP 502"
    for kind in ("litellm", "jina"):  # the plain-text 500 of a proxy asked without a key
        assert get_adapter(kind).parse_error(500, b"Internal Server Error").message == (
            "Internal Server Error"
        )


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    + b"<!-- a padding comment -->\r\n" * 40
    + b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("kind", sorted(set(ADAPTERS) - {"local"}))
def test_an_html_error_page_becomes_a_short_excerpt(kind):
    assert get_adapter(kind).parse_error(502, NGINX_502).message == "502 Bad Gateway"
    untitled = b"<!DOCTYPE html><html><body><h1>Service\n Unavailable</h1><p>Try later.</p>" + (
        b"<p>x</p>" * 200
    )
    message = get_adapter(kind).parse_error(503, untitled).message
    assert message.startswith("Service Unavailable Try later.") and len(message) <= 200
    assert "<" not in message


# -- model profiles -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,model,listwise,window",
    [
        ("jina", "jina-reranker-v3", True, 64),
        ("jina", "jina-reranker-v3.5", True, 64),
        ("tei", "jinaai/jina-reranker-v3", True, 64),
        ("jina", "jina-reranker-v2-base-multilingual", False, None),
        ("cohere", "rerank-v3.5", False, None),
        ("voyage", "rerank-2.5-lite", False, None),
        ("tei", "BAAI/bge-reranker-base", False, None),
        ("xinference", "Qwen3-Reranker-4B", False, None),
        ("vllm", "some-new-model", False, None),
        ("local", None, True, 64),
    ],
)
def test_model_profile(kind, model, listwise, window):
    profile = model_profile(kind, model)
    assert (profile.listwise, profile.window) == (listwise, window)
    assert profile.note


def test_local_window_matches_its_request_size():
    assert model_profile("local", None).window == get_adapter("local").spec.max_docs_per_request


async def test_local_model_sets_bm25_parameters_and_a_bad_one_is_refused_at_load():
    from pipeline.config import ConfigError, load_job_text
    from pipeline.providers.local import LocalTransport

    query = "solar panel"
    # Length normalisation decides: the long doc repeats the term, the short one has it once.
    docs = ["solar panel " + "filler words here " * 30 + "solar solar", "solar panel roof"]
    body = j({"query": query, "documents": docs, "top_n": 2})

    async def order(model):
        answer = orjson.loads((await LocalTransport(model).post(body)).body)
        return [r["index"] for r in answer["results"]]

    assert await order(None) == await order("bm25") == await order("some-hosted-model")
    assert await order("bm25:b=0") != await order(None)  # no length normalisation: long wins
    base = '[input]\npath = "in.jsonl"\n[output]\ndir = "out"\n[provider]\nkind = "local"\n'
    assert load_job_text(base + 'model = "bm25:k1=0.9,b=0.4"').provider.model
    for bad in ("bm25:k=1", "bm25:b=1.5", "bm25;k1=1"):
        with pytest.raises(ConfigError, match="provider.model = .*bm25:k1=0.9,b=0.4"):
            load_job_text(base + f'model = "{bad}"')


@pytest.mark.parametrize(
    "module", ["base", "cohere", "voyage", "xinference", "tei", "selfhosted", "models", "__init__"]
)
def test_docstring_examples(module):
    name = "pipeline.providers" + ("" if module == "__init__" else f".{module}")
    failed, _ = doctest.testmod(importlib.import_module(name))
    assert failed == 0

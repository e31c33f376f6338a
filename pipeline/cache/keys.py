"""What a cached score is keyed by: who scored it, the query, and the document's text.

    >>> from pipeline.providers import get_adapter
    >>> ident = scoring_identity(get_adapter("jina"), "https://u:pw@api.jina.ai/v1/rerank?k=1",
    ...                          "jina-reranker-v2-base-multilingual")
    >>> ident.url, ident.options
    ('https://api.jina.ai/v1/rerank', '{}')
    >>> a, b, c = pair_keys(ident.digest, "solar cost", ["panel price", "wind", "panel price"])
    >>> len(a), a == c, a == b, a[:8] == b[:8]     # same text, same key; one query, one prefix
    (24, True, False, True)

The **scoring identity** is everything besides the two texts that changes a score: the
provider kind, the endpoint (scheme, host, port and path: never a user, password or query
string, so never a key), the model the requests name, and every field of the request body
the adapter sends that is not the query, the documents or how many results to return (e.g.
Voyage's `truncation`, TEI's `raw_scores` and `truncate`, Cohere v1's defaults). Fields
known not to change a score (`return_documents`, `return_text`, `return_len`) are left out;
any other field counts, so an option added to an adapter later starts a fresh cache rather
than serving scores made without it. The pipeline's own cut of over-long documents
(`limits.max_doc_tokens`, `input.truncate = "end"`) needs no place here: the key is made
from the text after the cut, so a different cut is a different text.

A **pair key** is 24 bytes: an 8-byte digest of (identity, query), then a 16-byte BLAKE2b
digest of (identity, query, document) over a length-prefixed encoding. The second part
alone identifies the pair; the first keeps the pairs of one query next to each other in the
database's B-tree, so looking up or storing a query's hundred documents touches one or two
pages instead of a hundred (what makes 100k inserts/s possible at 10M entries; see
benchmarks/cache_bench.py). Neither the document id nor its position is in the key: a
document that moved or changed id but not text is a hit, one whose text changed a miss.
Keys are digests, so the cache holds no text of the corpus.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import orjson

from pipeline.providers import Adapter

# Request fields that carry a request's content, not how it is scored.
PER_REQUEST_FIELDS = frozenset({"query", "documents", "texts", "top_n", "top_k", "model"})
# Fields documented to change only what the answer carries, never a score.
SCORE_NEUTRAL_FIELDS = frozenset({"return_documents", "return_text", "return_len"})

_IDENTITY_PERSON = b"rp-identity-v1"
_QUERY_PERSON = b"rp-query-v1"
_PAIR_PERSON = b"rp-pair-v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ScoringIdentity:
    kind: str
    url: str  # endpoint without credentials, query string or fragment
    model: str | None  # None: the server's default model
    options: str  # the score-changing request fields, canonical JSON

    @property
    def digest(self) -> bytes:
        """16 bytes naming this identity; stored beside each entry's model row."""
        canonical = orjson.dumps(
            {"kind": self.kind, "url": self.url, "model": self.model, "options": self.options},
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.blake2b(canonical, digest_size=16, person=_IDENTITY_PERSON).digest()


def scoring_identity(adapter: Adapter, url: str, model: str | None) -> ScoringIdentity:
    """The identity of the scores a job's requests get back."""
    probe = adapter.build_request(model, "q", ["d"], 1)
    options = {
        k: v
        for k, v in probe.items()
        if k not in PER_REQUEST_FIELDS and k not in SCORE_NEUTRAL_FIELDS
    }
    return ScoringIdentity(
        adapter.spec.kind,
        endpoint_identity(url),
        model,
        orjson.dumps(options, option=orjson.OPT_SORT_KEYS).decode(),
    )


def endpoint_identity(url: str) -> str:
    """scheme://host[:port]/path, lower-cased host, default port dropped; no user, password,
    query string or fragment (where a gateway might carry a key).

    >>> endpoint_identity("HTTPS://key:@GW.example.com:443/v1/rerank?api_key=s#x")
    'https://gw.example.com/v1/rerank'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path, "", ""))


def pair_keys(identity: bytes, query: str, documents: list[str]) -> list[bytes]:
    """The key of each (query, document) pair, in the documents' order.

    Encoding: identity (16 bytes) | query length (8 bytes, little-endian) | query | document,
    texts in UTF-8. The document is last, so its length needs no prefix. The hasher over the
    shared prefix is built once and copied per document.
    """
    q = query.encode("utf-8", "surrogatepass")
    prefix = hashlib.blake2b(identity + q, digest_size=8, person=_QUERY_PERSON).digest()
    base = hashlib.blake2b(
        identity + struct.pack("<Q", len(q)) + q, digest_size=16, person=_PAIR_PERSON
    )
    keys = []
    for doc in documents:
        h = base.copy()
        h.update(doc.encode("utf-8", "surrogatepass"))
        keys.append(prefix + h.digest())
    return keys

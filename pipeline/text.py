"""Small wording helpers shared by the tables and the error messages.

>>> plural(1, "query"), plural(2, "query"), plural(1_000, "request")
('1 query', '2 queries', '1,000 requests')
>>> excerpt("<html><head><title>502 Bad Gateway</title></head><body>...</body></html>")
'502 Bad Gateway'
"""

from __future__ import annotations

import html
import re

EXCERPT_CHARS = 200
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_NOISE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def plural(n: int | float, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{n:,} {many}"


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(
        ("<!doctype html", "<html", "<head", "<body", "<title", "<h1", "<center")
    )


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, one-line version of a server's text: an HTML page (a proxy's error page)
    becomes its title, or its words without markup; anything else is cut to `limit`."""
    text = text.strip()
    if looks_like_html(text):
        title = _TITLE.search(text)
        words = (
            title.group(1)
            if title and title.group(1).strip()
            else _TAG.sub(" ", _NOISE.sub(" ", text))
        )
        text = html.unescape(words)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

"""Plain text before Festival: output-file slugs."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def slug(text: str, max_chars: int = 40) -> str:
    """A short file-name slug of ``text``: its first lower-case ASCII words joined by ``-``,
    at most ``max_chars`` characters, cut at a word boundary ("" when it has no such word)."""
    out = ""
    for w in _WORD.findall(text.lower()):
        nxt = f"{out}-{w}" if out else w
        if len(nxt) > max_chars:
            return out or w[:max_chars]
        out = nxt
    return out

"""Plain text before Festival: transliteration to ASCII, sentences and output-file slugs.

Each sentence is its own Festival utterance: a paragraph spoken as one utterance gets
utterance-level count features (syllables, words, phrases in the utterance) far outside the
training data's range. Sentences are split with ``sentencex`` (Wikimedia, MIT; English rules
with abbreviations such as ``Dr.``, ``p.m.``, ``U.S.``), measured against Festival's own
utterance chunking (``eou_tree``) in BUILD_NOTES.md.

Festival's English front end reads bytes: UTF-8 letters such as ``é`` are spelt out byte by
byte. Text is therefore transliterated first with ``anyascii`` (ISC licence, per code point,
every script; BUILD_NOTES.md records the choice over Unidecode), emoji (which ``anyascii``
writes as ``:name:``) are dropped rather than read out as their names.
"""

from __future__ import annotations

import re

from anyascii import anyascii

_WORD = re.compile(r"[a-z0-9]+")
_EMOJI_NAME = re.compile(r":[a-z0-9_+-]+:")
_SPEAKABLE = re.compile(r"[A-Za-z0-9]")


def transliterate(text: str) -> str:
    """``text`` in printable ASCII: non-ASCII characters transliterated (``Café`` → ``Cafe``,
    ``—`` → ``-``, ``Москва`` → ``Moskva``), emoji dropped, whitespace runs made one space."""
    out = []
    for ch in text:
        if ch.isascii():  # control characters become spaces
            out.append(ch if ch.isprintable() else " ")
            continue
        a = anyascii(ch)
        out.append(" " if _EMOJI_NAME.fullmatch(a) else a)
    return " ".join("".join(out).split())


def sentences(text: str) -> list[str]:
    """The sentences of one line of ASCII text, stripped; pieces with nothing to speak (a
    stray ``...``) go with the sentence before them (or after, at the start)."""
    import sentencex

    out: list[str] = []
    pending = ""
    for piece in sentencex.segment("en", text):
        piece = " ".join(piece.split())
        if not piece:
            continue
        if not speakable(piece):
            if out:
                out[-1] = f"{out[-1]} {piece}"
            else:
                pending = f"{pending} {piece}".strip()
            continue
        out.append(f"{pending} {piece}".strip() if pending else piece)
        pending = ""
    return out or ([pending] if pending else [])


def speakable(text: str) -> bool:
    """Whether ASCII ``text`` has something to say: a letter or a digit."""
    return _SPEAKABLE.search(text) is not None


def slug(text: str, max_chars: int = 40) -> str:
    """A short file-name slug of ``text``: its first lower-case ASCII words joined by ``-``,
    at most ``max_chars`` characters, cut at a word boundary ("" when it has no such word)."""
    out = ""
    for w in _WORD.findall(transliterate(text).lower()):
        nxt = f"{out}-{w}" if out else w
        if len(nxt) > max_chars:
            return out or w[:max_chars]
        out = nxt
    return out


def file_name(line_number: int, text: str) -> str:
    """``NNNN-slug.wav``: an input line's number and a short slug of its text."""
    s = slug(text)
    return f"{line_number:04d}-{s}.wav" if s else f"{line_number:04d}.wav"

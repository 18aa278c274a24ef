"""Builds ``data_prep/sentences_extra.txt``, the larger built-in corpus' extra sentences, from
Debian's ``fortunes`` / ``fortunes-min`` data (fortune-mod's cookie files).

The output is committed, so preparing the corpus never needs the Debian package; this script
only documents and reproduces it::

    mkdir -p /tmp/fortunes && cd /tmp/fortunes && apt-get download fortunes fortunes-min
    for d in /tmp/fortunes/*.deb; do dpkg-deb -x "$d" /tmp/fortunes/root; done
    .venv/bin/python data_prep/make_extra_sentences.py \\
        --fortunes_dir=/tmp/fortunes/root/usr/share/games/fortunes

(``--fortunes_dir=/usr/share/games/fortunes`` where the packages are installed.) The package's
``copyright`` and ``changelog.Debian.gz`` are read from ``FORTUNES_DIR/../../doc/fortunes/``:
the licence and the package version go into the output's header.

Steps, all deterministic: cookies split on ``%`` lines; attribution lines (``-- Name``) and
everything after them dropped; verse, dialogue and list cookies skipped; lines joined and split
into sentences after ``.!?``; sentences kept by :func:`reject_reason` (plain ASCII prose of
``MIN_WORDS``–``MAX_WORDS`` words, no digits, quotes, all-caps words, abbreviations or
profanity); exact and near duplicates removed (among themselves and against every sentence of
``data_prep/sentences.txt``); sorted, ``--count`` sampled with ``--seed``, sorted again and
numbered ``f0001``, ``f0002``, ... (``f`` for fortunes: a prefix the built-in ``sNNNN`` ids can
never reach, however many sentences ``sentences.txt`` gains).
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import hashlib
import os
import random
import re
import sys
from collections.abc import Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "sentences_extra.txt")
BUILTIN = os.path.join(HERE, "sentences.txt")
UID_PREFIX = "f"

# Cookie files read (fortune-mod's topics). Left out: ascii-art, translate-me (not English
# prose); computers, debian, linux, linuxcookie, perl, knghtbrd (code, jargon, IRC logs);
# definitions, riddles, disclaimer (``Word:`` / ``Q:`` / legal formats); songs-poems, tao,
# zippy (verse and nonsense); ethnic, drugs, men-women (topics unsuited to a neutral corpus);
# pratchett, startrek (quotations from copyrighted fiction). The offensive set (``off/``, the
# separate ``fortunes-off`` package) is never read.
FILES = (
    "art", "cookie", "education", "food", "fortunes", "goedel", "humorists", "kids", "law",
    "literature", "love", "magic", "medicine", "miscellaneous", "news", "paradoxum", "people",
    "pets", "platitudes", "politics", "science", "sports", "wisdom", "work",
)
MIN_WORDS, MAX_WORDS = 8, 18
# Measured: slt_hts speaks 27 characters in 1.6 s, 33 in 2.3 s (kal_diphone: 2.1 s, 2.8 s);
# 36+ keeps both voices' utterances above the 2-s training window ("too short" otherwise).
MIN_CHARS = 36
COUNT, SEED = 2600, 1234

# Profanity and slurs: a sentence with one of these words (case-insensitive, whole word, also
# with a plural/-ing/-ed ending) is dropped. Kept small and explicit on purpose.
_BLOCKED = """
    arse ass asses asshole bastard bitch bloody bollocks boob boobs bugger bullshit butt cock
    crap cunt damn damned dammit dick dildo dyke fag faggot fart fuck fucker fucking goddamn
    hell horny jerkoff kike nigger nigga orgasm penis piss porn prick pussy queer rape raped
    retard screw screwed scrotum sex sexy shit slut spic tit tits titties turd twat vagina
    wank whore
    hitler nazi nazis negro negroes suicide
"""  # the last line: slurs and topics a neutral read-speech corpus does without
BLOCKLIST = frozenset(_BLOCKED.split())
# Abbreviations after which a period does not end a sentence (such sentences are then dropped
# by the internal-period rule rather than split in two).
ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Prof", "Gen", "Col", "Capt", "Lt",
                 "Sgt", "Rev", "Gov", "Sen", "Rep", "vs", "etc", "Inc", "Co", "Ltd", "Mt",
                 "No", "Vol", "ca", "cf")

_ATTRIBUTION = re.compile(r"^\s*--\s*\S")  # "\t\t-- Mark Twain"
_DIALOGUE = re.compile(r"^\s*(?:[A-Z][\w .'-]{0,30}|Q|A):\s")  # "Q: ...", "Captain Kirk: ..."
_LIST = re.compile(r"^\s*(?:\(?\d+[.)]|\(?[a-z][.)]|[-*+o]\s)")  # "(1) ...", "a) ...", "- ..."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ALLOWED = re.compile(r"^[A-Za-z ,.;!?'-]+$")
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")


def split_cookies(text: str) -> list[str]:
    """The cookies (fortunes) of a cookie file: text between lines that are exactly ``%``."""
    cookies, cur = [], []
    for line in text.splitlines():
        if line.strip() == "%":
            cookies.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    cookies.append("\n".join(cur))
    return [c for c in cookies if c.strip()]


def cookie_prose(cookie: str) -> str | None:
    """A cookie's text as one line of prose, without its attribution; None for a cookie that
    is verse, a dialogue or a list (line structure that joined lines would turn into noise)."""
    lines: list[str] = []
    for line in cookie.splitlines():
        if _ATTRIBUTION.match(line):
            break  # the attribution and whatever continues it
        if line.strip():
            lines.append(line)
    if not lines:
        return None
    if any(_DIALOGUE.match(ln) or _LIST.match(ln) for ln in lines):
        return None
    if any(ln.startswith((" ", "\t")) for ln in lines[1:]):
        return None  # indented continuation lines: dialogue turns, verse or layout
    if len(lines) >= 3:
        # verse: most lines start with a capital although the line before has no end mark
        breaks = [(a.rstrip(), b.lstrip()) for a, b in zip(lines, lines[1:], strict=False)]
        verse = sum(1 for a, b in breaks if b[:1].isupper() and a[-1:] not in ".!?;:,")
        if verse * 2 > len(breaks):
            return None
    return " ".join(" ".join(ln.split()) for ln in lines)


def split_sentences(prose: str) -> list[str]:
    """Sentences of one line of prose: split after ``.``, ``!`` or ``?`` and whitespace, except
    after an abbreviation (``Mr.``, ``etc.``) or an initial (``J.``)."""
    out: list[str] = []
    cur = ""
    for piece in _SENTENCE_END.split(prose):
        cur = f"{cur} {piece}" if cur else piece
        last = cur.rsplit(" ", 1)[-1].rstrip(".")
        if cur.endswith(".") and (last in ABBREVIATIONS or re.fullmatch(r"[A-Z]", last)):
            continue  # "Mr. Smith", "J. Smith": not a sentence end
        out.append(cur.strip())
        cur = ""
    if cur.strip():
        out.append(cur.strip())
    return out


def words(sentence: str) -> list[str]:
    """The words of a sentence (letters with inner apostrophes or hyphens)."""
    return _WORD.findall(sentence)


def reject_reason(sentence: str) -> str | None:
    """Why ``sentence`` is not a corpus sentence (None: it is one)."""
    if not sentence.isascii():
        return "non-ascii"
    if re.search(r"\d", sentence):
        return "digits"  # years, sums, times, list numbers: Festival's readings are guesses
    if not _ALLOWED.match(sentence):
        return "characters"  # quotes, brackets, slashes, colons, code and URL characters
    if not sentence[0].isupper() or sentence[-1] not in ".!?":
        return "not a sentence"
    if "--" in sentence or " -" in sentence or "- " in sentence or "''" in sentence:
        return "dashes"
    if re.search(r"[.!?]", sentence[:-1]) or re.search(r"[,;]\S", sentence):
        return "punctuation"  # "...", "?!", abbreviations, initials, "a,b"
    if re.search(r"(^|\s)'|'(\s|[,;.!?]|$)", sentence):
        return "quotes"  # single quotes as quotation marks (not an apostrophe in a word)
    ws = words(sentence)
    if len(ws) != len(sentence.split()):
        return "characters"  # a token that is not a word (stray punctuation)
    if not MIN_WORDS <= len(ws) <= MAX_WORDS or len(sentence) < MIN_CHARS:
        return "length"
    if any(len(w) > 1 and w.isupper() for w in ws):
        return "all caps"  # shouting, acronyms
    if any(w.lower() in BLOCKLIST or _stem(w.lower()) in BLOCKLIST for w in ws):
        return "profanity"
    return None


def _stem(w: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "er"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            return w[: -len(suffix)]
    return w


def normalize(sentence: str) -> str:
    """Lower-case words joined by spaces: the text compared for duplicates."""
    return " ".join(w.lower() for w in words(sentence))


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """Whether two normalised sentences are nearly equal (word-level similarity ≥ threshold)."""
    sm = difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False)
    return sm.real_quick_ratio() >= threshold and sm.quick_ratio() >= threshold \
        and sm.ratio() >= threshold


def _trigrams(norm: str) -> set[tuple[str, ...]]:
    ws = norm.split()
    return {tuple(ws[i : i + 3]) for i in range(max(1, len(ws) - 2))}


def dedupe(sentences: Iterable[str], reference: Iterable[str] = ()) -> list[str]:
    """Sorted ``sentences`` without exact or near duplicates of each other (the first in sorted
    order stays) or of any ``reference`` sentence. Candidates share a word trigram."""
    index: dict[tuple[str, ...], list[str]] = {}
    kept: list[str] = []
    seen: set[str] = set()

    def is_near(norm: str) -> bool:
        cands = {c for g in _trigrams(norm) for c in index.get(g, ())}
        return any(near_duplicate(norm, c) for c in cands)

    def add(norm: str) -> None:
        seen.add(norm)
        for g in _trigrams(norm):
            index.setdefault(g, []).append(norm)

    for r in reference:
        add(normalize(r))
    for s in sorted(set(sentences)):
        n = normalize(s)
        if n in seen or is_near(n):
            continue
        add(n)
        kept.append(s)
    return kept


def candidates(fortunes_dir: str, files: Iterable[str] = FILES) -> tuple[list[str], dict]:
    """(every kept sentence of the cookie files, counts by reason)."""
    out: list[str] = []
    stats: dict[str, int] = {}
    for name in files:
        path = os.path.join(fortunes_dir, name)
        if os.path.basename(os.path.dirname(os.path.abspath(path))) == "off":
            raise ValueError(f"{path}: the offensive set is never read")
        with open(path, encoding="latin-1") as f:  # some files hold stray 8-bit bytes
            text = f.read()
        for cookie in split_cookies(text):
            prose = cookie_prose(cookie)
            if prose is None:
                stats["cookie skipped"] = stats.get("cookie skipped", 0) + 1
                continue
            for s in split_sentences(prose):
                why = reject_reason(s)
                stats[why or "kept"] = stats.get(why or "kept", 0) + 1
                if why is None:
                    out.append(s)
    return out, stats


def load_builtin(path: str = BUILTIN) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def package_info(fortunes_dir: str) -> tuple[str, str]:
    """(Debian package version, sha256 of its copyright file), read next to the data."""
    doc = os.path.normpath(os.path.join(fortunes_dir, "..", "..", "doc", "fortunes"))
    with gzip.open(os.path.join(doc, "changelog.Debian.gz"), "rt", encoding="utf-8") as f:
        first = f.readline()
    m = re.match(r"\S+ \(([^)]+)\)", first)
    if not m:
        raise ValueError(f"{doc}/changelog.Debian.gz: no version in {first!r}")
    with open(os.path.join(doc, "copyright"), "rb") as f:
        copyright_text = f.read()
    if b"This program falls under the BSD copyright" not in copyright_text:
        raise ValueError(f"{doc}/copyright: the BSD licence statement is not there any more; "
                         "read it again before using the data")
    return m.group(1), hashlib.sha256(copyright_text).hexdigest()


HEADER = """\
# tts-gan extra corpus sentences: {n} sentences, one per line as UID<TAB>TEXT ('#': comments).
# Source: Debian package fortunes / fortunes-min {version} (fortune-mod's cookie files),
#   files {files}.
#   The offensive set (off/, package fortunes-off) is not used.
# Licence: BSD. The package's debian/copyright (sha256 {copyright_sha})
#   puts fortune-mod and its data under the BSD licence of the Regents of the University of
#   California (1991): redistribution with or without modification is permitted provided the
#   copyright notice, the conditions and the disclaimer are retained (clauses 1, 2 and 4;
#   clause 3 deleted). The cookies are quotations collected by the fortune-mod authors; the
#   "cookie" file is from Karl Lehenbauer's postings to alt.sources. See BUILD_NOTES.md.
# Filters (data_prep/make_extra_sentences.py): {min_words}-{max_words} words,
#   {min_chars}+ characters, plain ASCII letters and , ; ' - . ! ?; no digits, quotes,
#   colons, brackets, all-caps words, abbreviations, profanity; no verse, dialogue or
#   list cookies; no exact or near duplicate of each other or of data_prep/sentences.txt.
#   {pool} candidates, {n} sampled with seed {seed}, sorted, numbered.
# Command: {command}
"""


def _wrap(names: tuple[str, ...], width: int = 88) -> str:
    """``names`` comma-separated, wrapped into header comment lines."""
    lines, cur = [], ""
    for n in names:
        piece = f"{n}, " if n != names[-1] else n
        if len(cur) + len(piece) > width - 4:
            lines.append(cur.rstrip())
            cur = ""
        cur += piece
    lines.append(cur)
    return "\n#   ".join(lines)


def build(fortunes_dir: str, count: int = COUNT, seed: int = SEED,
          builtin: list[str] | None = None) -> tuple[list[str], dict[str, int]]:
    """(the sorted sample of ``count`` sentences, counts by filter reason)."""
    pool, stats = candidates(fortunes_dir)
    pool = dedupe(pool, reference=load_builtin() if builtin is None else builtin)
    stats["after dedupe"] = len(pool)
    if count > len(pool):
        raise ValueError(f"--count={count}: only {len(pool)} sentences pass the filters")
    return sorted(random.Random(seed).sample(pool, count)), stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fortunes_dir", required=True,
                    help="the cookie files (/usr/share/games/fortunes)")
    ap.add_argument("--count", type=int, default=COUNT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--output", default=OUTPUT)
    args = ap.parse_args(argv)
    try:
        version, copyright_sha = package_info(args.fortunes_dir)
        sents, stats = build(args.fortunes_dir, args.count, args.seed)
    except (OSError, ValueError) as e:
        print(f"make_extra_sentences: error: {e}", file=sys.stderr)
        return 1
    header = HEADER.format(
        n=len(sents), version=version, files=_wrap(FILES), copyright_sha=copyright_sha,
        min_words=MIN_WORDS, max_words=MAX_WORDS, min_chars=MIN_CHARS,
        pool=stats["after dedupe"], seed=args.seed,
        command="python data_prep/make_extra_sentences.py "
                f"--fortunes_dir=/usr/share/games/fortunes --count={args.count} --seed={args.seed}",
    )
    body = "".join(f"{UID_PREFIX}{i + 1:04d}\t{s}\n" for i, s in enumerate(sents))
    tmp = f"{args.output}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(header + body)
    os.replace(tmp, args.output)
    print(f"make_extra_sentences: wrote {args.output}: {len(sents)} sentences; "
          + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

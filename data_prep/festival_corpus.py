"""The built-in default corpus: ``sentences.txt`` rendered by Festival with two voices.

Two sentence sets (``tts-gan-prep --festival_sentences``):

* ``builtin`` (default): the 290 sentences of ``sentences.txt``, ids ``s0001``... by line;
* ``all``: those plus the 2,600 of ``sentences_extra.txt`` (Debian's ``fortunes``, built by
  ``make_extra_sentences.py``; ``UID<TAB>TEXT`` lines with ids ``f0001``...). Its split keeps
  the built-in sentences where the ``builtin`` prep puts them (:func:`festival_splits`) and
  trains on every extra sentence.

Each voice is a speaker (``slt_hts``: CMU ARCTIC SLT HTS voice, 32 kHz; ``kal_diphone``:
diphone voice, 16 kHz). Next to every waveform we export HTS full-context labels from Festival's
own utterance structure (``hts_dump_feats_string_list``: one label per ``Segment`` with its
start/end times as Festival synthesised them), giving the ``hts`` layout::

    CACHE/wav/SPEAKER/sNNNN.wav   CACHE/lab/SPEAKER/sNNNN.lab   CACHE/text/SPEAKER/sNNNN.txt

The rendering is cached: an utterance whose wav, lab and identical text exist is not redone.
Files are written to temporary names and renamed, so an interrupted render leaves no partial
utterance (:func:`tts_gan.frontend.festival.render_batch`). Festival runs as ``workers``
parallel batch processes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import sys

# The cache location is shared with tts-gan-eval (tts_gan.corpus_cache), the rendering itself
# is the shared front end; both re-exported for the corpus' users.
from tts_gan.corpus_cache import default_cache_dir  # noqa: F401
from tts_gan.frontend.festival import (  # noqa: F401
    BATCH,
    HTS_VOICE,
    VOICES,
    FestivalError,
    festival_binary,
    render_batch,
)

SENTENCES_FILE = os.path.join(os.path.dirname(__file__), "sentences.txt")
EXTRA_SENTENCES_FILE = os.path.join(os.path.dirname(__file__), "sentences_extra.txt")
SENTENCE_SETS = ("builtin", "all")
_EXTRA_UID = re.compile(r"f\d{4,}")


class SentenceFileError(ValueError):
    """A sentence file is malformed (the message names the file and line)."""


def load_sentences(path: str | None = None) -> list[str]:
    """The sentences of ``sentences.txt`` (default :data:`SENTENCES_FILE`; one per line, ``#``
    comments); the line order gives their ids ``s0001``, ``s0002``, ..."""
    with open(path or SENTENCES_FILE, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def builtin_uid(index: int) -> str:
    """Id of the ``index``-th (0-based) sentence of ``sentences.txt``."""
    return f"s{index + 1:04d}"


def load_extra_sentences(path: str | None = None) -> list[tuple[str, str]]:
    """``[(uid, text)]`` of ``sentences_extra.txt`` (default :data:`EXTRA_SENTENCES_FILE`):
    ``UID<TAB>TEXT`` lines, uids ``fNNNN``, unique ids and texts (:class:`SentenceFileError`
    otherwise)."""
    path = path or EXTRA_SENTENCES_FILE
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not _EXTRA_UID.fullmatch(parts[0]) or not parts[1].strip():
                raise SentenceFileError(
                    f"{path}:{lineno}: expected 'fNNNN<TAB>sentence', got {line[:60]!r}")
            uid, text = parts[0], parts[1].strip()
            for key in (uid, text.lower()):
                if key in seen:
                    raise SentenceFileError(
                        f"{path}:{lineno}: {key[:60]!r} repeats line {seen[key]}")
                seen[key] = lineno
            out.append((uid, text))
    return out


def corpus_sentences(which: str = "builtin") -> list[tuple[str, str]]:
    """``[(uid, text)]`` of a sentence set (:data:`SENTENCE_SETS`): the built-in sentences
    first, then (``all``) the extra ones."""
    if which not in SENTENCE_SETS:
        raise ValueError(f"sentence set {which!r}: expected one of {', '.join(SENTENCE_SETS)}")
    out = [(builtin_uid(i), t) for i, t in enumerate(load_sentences())]
    if which == "all":
        builtin = {t.lower(): u for u, t in out}
        for uid, text in load_extra_sentences():
            if text.lower() in builtin:
                raise SentenceFileError(f"{EXTRA_SENTENCES_FILE}: {uid} repeats built-in "
                                        f"sentence {builtin[text.lower()]}")
            out.append((uid, text))
    return out


def festival_splits(
    uids: list[str], seed: int, valid_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Split of the sentence ids ``uids`` for the ``all`` set: a built-in sentence (``sNNNN``)
    gets the split that the ``builtin`` prep draws over all of ``sentences.txt`` with these
    settings (so its held-out sentences stay held out for both voices), every other id train."""
    from data_prep import pipeline  # lazy: rendering needs neither NumPy nor the front end

    builtin = [builtin_uid(i) for i in range(len(load_sentences()))]
    held = pipeline.assign_splits(builtin, seed, valid_fraction, test_fraction, "sentence")
    return {u: held.get(u, "train") for u in uids}


def render_corpus(
    cache_dir: str,
    sentences: list[str] | list[tuple[str, str]] | None = None,
    voices: dict[str, str] | None = None,
    workers: int = 1,
    max_sentences: int = 0,
    progress: bool = True,
) -> str:
    """Renders (or reuses) the festival corpus in ``cache_dir``; returns ``cache_dir``.

    ``sentences``: texts (ids ``s0001``... by position) or ``(uid, text)`` pairs; default: the
    built-in set. ``max_sentences``: only the first ones."""
    sentences = load_sentences() if sentences is None else sentences
    items = [(builtin_uid(i), s) if isinstance(s, str) else s for i, s in enumerate(sentences)]
    if max_sentences:
        items = items[:max_sentences]
    voices = VOICES if voices is None else voices
    todo: dict[str, list[tuple[str, str, str, str]]] = {}
    for spk, voice_fn in voices.items():
        for sub in ("wav", "lab", "text"):
            os.makedirs(os.path.join(cache_dir, sub, spk), exist_ok=True)
            _remove_stale_temps(os.path.join(cache_dir, sub, spk))
        for uid, text in items:
            wav = os.path.join(cache_dir, "wav", spk, uid + ".wav")
            lab = os.path.join(cache_dir, "lab", spk, uid + ".lab")
            txt = os.path.join(cache_dir, "text", spk, uid + ".txt")
            if os.path.exists(wav) and os.path.exists(lab) and _same_text(txt, text):
                continue
            todo.setdefault(voice_fn, []).append((text, wav, lab, txt))
    batches = [
        (voice_fn, items[i : i + BATCH])
        for voice_fn, items in sorted(todo.items())
        for i in range(0, len(items), BATCH)
    ]
    if not batches:
        return cache_dir
    if festival_binary() is None:
        raise FestivalError(
            "festival not found: run 'bash data_prep/install_system_deps.sh' as root "
            "(Debian packages festival festvox-us-slt-hts festvox-kallpc16k)"
        )
    from tqdm import tqdm

    total = sum(len(b[1]) for b in batches)
    with (
        tqdm(total=total, unit="utt", desc="festival", disable=not progress, file=sys.stderr)
        as bar,
        concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        futures = {pool.submit(render_batch, v, items): len(items) for v, items in batches}
        try:
            for fut in concurrent.futures.as_completed(futures):
                fut.result()
                bar.update(futures[fut])
        except BaseException:
            # Ctrl-C or a failed batch: stop now. Without this the pool's shutdown waited for
            # every queued batch (an interrupted render went on, silently, to the end).
            for fut in futures:
                fut.cancel()
            raise
    return cache_dir


# Fixed temporary names of earlier versions (``X.wav.tmp.wav`` was then read as an utterance).
_STALE_SUFFIXES = (".wav.tmp.wav", ".lab.tmp", ".txt.tmp")
# Temporary names of render_batch: NAME.tmp-PID-TAG.
_TEMP_NAME = re.compile(r"\.tmp-(\d+)-[0-9a-f]{12}$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _remove_stale_temps(folder: str) -> None:
    """Deletes temporary files that an interrupted render left behind: the fixed names of an
    earlier version, and ``NAME.tmp-PID-TAG`` files of a process that is no longer running
    (a render killed with SIGKILL/SIGTERM cannot remove its own)."""
    for name in os.listdir(folder):
        m = _TEMP_NAME.search(name)
        if name.endswith(_STALE_SUFFIXES) or (m and not _pid_alive(int(m.group(1)))):
            with contextlib.suppress(FileNotFoundError):  # another render removed it first
                os.unlink(os.path.join(folder, name))


def _same_text(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() == text
    except OSError:
        return False

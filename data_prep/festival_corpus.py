"""The built-in default corpus: ``sentences.txt`` rendered by Festival with two voices.

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
import os
import sys

# The rendering itself is the shared front end; re-exported for the corpus' users.
from tts_gan.frontend.festival import (  # noqa: F401
    BATCH,
    HTS_VOICE,
    VOICES,
    FestivalError,
    festival_binary,
    render_batch,
)

SENTENCES_FILE = os.path.join(os.path.dirname(__file__), "sentences.txt")


def load_sentences(path: str = SENTENCES_FILE) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tts-gan", "festival_corpus")


def render_corpus(
    cache_dir: str,
    sentences: list[str] | None = None,
    voices: dict[str, str] | None = None,
    workers: int = 1,
    max_sentences: int = 0,
    progress: bool = True,
) -> str:
    """Renders (or reuses) the festival corpus in ``cache_dir``; returns ``cache_dir``."""
    sentences = load_sentences() if sentences is None else sentences
    if max_sentences:
        sentences = sentences[:max_sentences]
    voices = VOICES if voices is None else voices
    todo: dict[str, list[tuple[str, str, str, str]]] = {}
    for spk, voice_fn in voices.items():
        for sub in ("wav", "lab", "text"):
            os.makedirs(os.path.join(cache_dir, sub, spk), exist_ok=True)
            _remove_stale_temps(os.path.join(cache_dir, sub, spk))
        for i, text in enumerate(sentences):
            uid = f"s{i + 1:04d}"
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
        for fut in concurrent.futures.as_completed(futures):
            fut.result()
            bar.update(futures[fut])
    return cache_dir


# Fixed temporary names of earlier versions (``X.wav.tmp.wav`` was then read as an utterance).
_STALE_SUFFIXES = (".wav.tmp.wav", ".lab.tmp", ".txt.tmp")


def _remove_stale_temps(folder: str) -> None:
    """Deletes temporary files that an interrupted render of an earlier version left behind."""
    for name in os.listdir(folder):
        if name.endswith(_STALE_SUFFIXES):
            os.unlink(os.path.join(folder, name))


def _same_text(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() == text
    except OSError:
        return False

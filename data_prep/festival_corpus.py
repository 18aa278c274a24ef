"""The built-in default corpus: ``sentences.txt`` rendered by Festival with two voices.

Each voice is a speaker (``slt_hts``: CMU ARCTIC SLT HTS voice, 32 kHz; ``kal_diphone``:
diphone voice, 16 kHz). Next to every waveform we export HTS full-context labels from Festival's
own utterance structure (``hts_dump_feats_string_list``: one label per ``Segment`` with its
start/end times as Festival synthesised them), giving the ``hts`` layout::

    CACHE/wav/SPEAKER/sNNNN.wav   CACHE/lab/SPEAKER/sNNNN.lab   CACHE/text/SPEAKER/sNNNN.txt

The rendering is cached: an utterance whose wav, lab and identical text exist is not redone.
Files are written to temporary names and renamed, so an interrupted render leaves no partial
utterance. Festival runs as ``workers`` parallel batch processes.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

SENTENCES_FILE = os.path.join(os.path.dirname(__file__), "sentences.txt")
# speaker name -> Festival voice function
VOICES: dict[str, str] = {
    "kal_diphone": "voice_kal_diphone",
    "slt_hts": "voice_cmu_us_slt_arctic_hts",
}
BATCH = 16  # sentences per Festival process


class FestivalError(RuntimeError):
    """Festival is missing or failed."""


def festival_binary() -> str | None:
    """Path of the ``festival`` executable, or None."""
    return shutil.which("festival")


def load_sentences(path: str = SENTENCES_FILE) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tts-gan", "festival_corpus")


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(voice_fn: str, items: list[tuple[str, str, str]]) -> str:
    """Festival script rendering ``items`` = [(text, wav_tmp, lab_tmp)] with ``voice_fn``."""
    lines = [
        # The HTS voice defines hts_feats_list and loads hts.scm (label export) for any voice.
        "(voice_cmu_us_slt_arctic_hts)",
        f"({voice_fn})",
        # Utterance does not evaluate its arguments, hence the eval.
        "(define (tts_gan_render sentence wav lab)",
        "  (let ((utt (utt.synth (eval (list 'Utterance 'Text sentence))))",
        "        (fd (fopen lab \"w\")))",
        "    (utt.save.wave utt wav 'riff)",
        "    (mapcar (lambda (l) (format fd \"%s\" l))",
        "            (hts_dump_feats_string_list utt hts_feats_list))",
        "    (fclose fd)))",
    ]
    for text, wav, lab in items:
        lines.append(
            f"(tts_gan_render {_scheme_string(text)} {_scheme_string(wav)} {_scheme_string(lab)})"
        )
    return "\n".join(lines) + "\n"


def render_batch(voice_fn: str, items: list[tuple[str, str, str, str]]) -> None:
    """Renders ``items = [(text, wav, lab, txt)]`` (final paths) with one Festival process and
    the voice ``voice_fn``; writes via temporary names, then renames. Also used by
    ``tts-gan-synthesize --text`` (the same front end as the corpus)."""
    binary = festival_binary()
    if binary is None:
        raise FestivalError("festival not found (install: bash data_prep/install_system_deps.sh)")
    tmp_items = [(t, w + ".tmp.wav", lb + ".tmp") for t, w, lb, _ in items]
    with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as f:
        f.write(_script(voice_fn, tmp_items))
        script = f.name
    try:
        proc = subprocess.run(
            [binary, "-b", script], capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        os.unlink(script)
    for (text, wav, lab, txt), (_, wtmp, ltmp) in zip(items, tmp_items, strict=True):
        if proc.returncode != 0 or not (os.path.exists(wtmp) and os.path.exists(ltmp)):
            err = " | ".join(
                ln for ln in proc.stderr.splitlines() if "ALSA" not in ln and ln.strip()
            )[-500:]
            raise FestivalError(
                f"festival ({voice_fn}) failed on {text!r} (exit {proc.returncode}): {err}"
            )
        os.replace(ltmp, lab)
        os.replace(wtmp, wav)
        with open(txt + ".tmp", "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(txt + ".tmp", txt)


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


def _same_text(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() == text
    except OSError:
        return False

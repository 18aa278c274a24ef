"""Intelligibility and quality scores of speech with real packaged models (no download at
run time): word error rate of an offline recogniser and DNSMOS predicted MOS (§4.1's MOS has no
automatic counterpart; these are automatic stand-ins), plus the held-out set of a data dir.

Used by ``tts-gan-eval`` (:mod:`tts_gan.evaluation`) and ``benchmarks/intelligibility.py``.

- Recogniser: ``pocketsphinx`` 5 (US-English acoustic model, LM and CMU dictionary inside the
  PyPI package) on 16-kHz audio (soxr HQ), one utterance per decode. Word error rate with
  ``jiwer``, corpus-level: (substitutions + deletions + insertions) / reference words, summed
  over all sentences of a group (not a mean of per-sentence rates).
- Quality: DNSMOS (``speechmos``, ONNX models through ``onnxruntime``): P.808 MOS and P.835
  SIG / BAK / OVRL, mean over utterances. Clips shorter than DNSMOS's 9.01-s input are tiled
  by ``speechmos`` itself.

Text normalisation (:func:`normalize_text`, applied to reference and hypothesis alike):
lower-case; typographic apostrophes become ``'``; recogniser filler tokens (``<sil>``,
``[noise]``) are dropped; every character other than a-z, digits and ``'`` separates words;
an apostrophe is kept only between two letters (``queen's``, ``o'clock``; ``dogs'`` → ``dogs``);
words with two spellings are mapped to one (:data:`CANONICAL`): the abbreviation the built-in
sentences use (``Mrs``; the CMU dictionary spells the same pronunciation ``mrs`` or
``missus``) and their British spellings (``harbour``, ``grey``, ``ploughed``, …), which become
American ones, the recogniser's. The built-in sentences have no digits; a reference with a
digit is an error (spell numbers out), since the recogniser's dictionary has none and it would
count as an error every time. Words the recogniser cannot output at all (not in its dictionary
or LM: ``chapels``, ``creaked``, ``knocker``, ``lamplight``, ``poplars`` — 5 of the 3,298 words
of the built-in sentences) are counted per group as ``reference_oov``, a floor under the WER.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

ASR_RATE = 16000  # pocketsphinx's en-us model and DNSMOS both take 16-kHz audio
# One spelling per word where the built-in sentences and the recogniser may differ: the
# abbreviation 'Mrs' (the CMU dictionary also has 'missus'), and the British spellings of the
# built-in corpus' sentences.txt → the American ones the recogniser's LM prefers (or only has:
# jeweller, metres, practised), as Whisper's English normaliser does for British spellings.
CANONICAL: dict[str, str] = {
    "missus": "mrs", "axe": "ax", "grey": "gray", "harbour": "harbor", "jeweller": "jeweler",
    "metres": "meters", "neighbour": "neighbor", "plough": "plow", "ploughed": "plowed",
    "practised": "practiced", "theatre": "theater", "tyre": "tire", "woollen": "woolen",
}
LOG_ZERO = -(2**29)  # pocketsphinx's log-probability of an impossible event
_FILLER = re.compile(r"<[^>]*>|\[[^\]]*\]")
_NOT_WORD = re.compile(r"[^a-z0-9']+")
_STRAY_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")


class IntelligibilityError(RuntimeError):
    """Bad input for the scoring; the message names the file or flag."""


# ------------------------------------------------------------------------- text and WER
def normalize_text(text: str) -> str:
    """The WER normal form of ``text`` (rule in the module docstring); ValueError on digits."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    t = _FILLER.sub(" ", t)
    t = _NOT_WORD.sub(" ", t)
    t = _STRAY_APOSTROPHE.sub(" ", t)
    words = [CANONICAL.get(w, w) for w in t.split()]
    digits = [w for w in words if any(c.isdigit() for c in w)]
    if digits:
        raise ValueError(f"{' '.join(digits)!r}: digits in the text; spell numbers out "
                         "(the recogniser's dictionary has no digits)")
    return " ".join(words)


def wer_summary(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, Any]:
    """Corpus-level WER of normalised ``references`` vs ``hypotheses`` (one per sentence)."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return {"sentences": 0, "reference_words": 0, "wer": None, "substitutions": 0,
                "deletions": 0, "insertions": 0, "hits": 0}
    if any(not r.strip() for r in references):
        raise ValueError("an empty reference has no word error rate")
    out = jiwer.process_words(list(references), list(hypotheses))
    return {"sentences": len(references),
            "reference_words": int(out.hits + out.substitutions + out.deletions),
            "wer": float(out.wer), "substitutions": int(out.substitutions),
            "deletions": int(out.deletions), "insertions": int(out.insertions),
            "hits": int(out.hits)}


# ------------------------------------------------------------------------ audio scoring
def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float audio at ``sample_rate`` → 16 kHz (soxr HQ), clipped to [-1, 1]."""
    import soxr

    x = np.asarray(audio, np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio [samples], got shape {x.shape}")
    if sample_rate != ASR_RATE:
        x = soxr.resample(x, sample_rate, ASR_RATE).astype(np.float32)
    return np.clip(x, -1.0, 1.0)


class Recognizer:
    """pocketsphinx 5 with the US-English model that ships in the package."""

    def __init__(self) -> None:
        from pocketsphinx import Config, Decoder

        self.decoder = Decoder(Config(samprate=ASR_RATE, loglevel="FATAL"))
        self._lm = self.decoder.get_lm()

    def knows(self, word: str) -> bool:
        """Whether the recogniser can output ``word``: in its dictionary and its LM's unigrams
        (pocketsphinx gives an unknown unigram the log-probability floor, -2**29)."""
        return (self.decoder.lookup_word(word) is not None
                and self._lm.prob([word]) > LOG_ZERO)

    def transcribe(self, x16k: np.ndarray) -> str:
        """The recogniser's word string for one utterance of 16-kHz audio in [-1, 1]."""
        pcm = np.round(np.clip(x16k, -1.0, 1.0) * 32767.0).astype(np.int16)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def dnsmos(x16k: np.ndarray) -> dict[str, float]:
    """DNSMOS P.808 MOS and P.835 SIG / BAK / OVRL of 16-kHz audio in [-1, 1]."""
    from speechmos import dnsmos as dnsmos_lib

    r = dnsmos_lib.run(np.clip(x16k, -1.0, 1.0).astype(np.float32), ASR_RATE)
    return {k: float(r[k + "_mos"]) for k in ("p808", "sig", "bak", "ovrl")}


# ------------------------------------------------------------------------- the held-out set
@dataclasses.dataclass
class Item:
    """One held-out utterance: its id, speaker, text and recording."""

    utterance_id: str
    speaker: str
    speaker_id: int
    text: str
    wav: str


def held_out_ids(data_dir: str, split: str = "test") -> tuple[Any, list[tuple[str, int]]]:
    """(manifest, [(utterance id, speaker id)] sorted by id) of the prep's whole-utterance
    records of ``split`` (``test``: the held-out set; ``train``: sentences the model saw)."""
    import tensorflow as tf

    from tts_gan import schema

    if split not in schema.SPLITS:
        raise IntelligibilityError(f"split {split!r}: expected one of {schema.SPLITS}")
    manifest = schema.load_manifest(data_dir)
    pattern = os.path.join(data_dir, schema.shard_pattern(schema.utterance_prefix(split)))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise IntelligibilityError(f"{pattern}: no {split} utterance shards (a tts-gan-prep "
                                   "output directory was expected)")
    spec = {schema.UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string),
            schema.SPEAKER: tf.io.FixedLenFeature([], tf.int64)}
    ids = []
    try:
        for rec in tf.data.TFRecordDataset(files, compression_type=manifest.compression or None):
            ex = tf.io.parse_single_example(rec, spec)
            ids.append((ex[schema.UTTERANCE_ID].numpy().decode("utf-8"),
                        int(ex[schema.SPEAKER])))
    except tf.errors.OpError as e:
        raise IntelligibilityError(f"{pattern}: cannot read the records ({e.message})") from None
    expected = manifest.counts.get(split, {}).get("utterances")
    if expected is not None and expected != len(ids):
        raise IntelligibilityError(f"{pattern}: {len(ids)} {split} utterances, but "
                                   f"{os.path.join(data_dir, schema.MANIFEST_NAME)} counts "
                                   f"{split}.utterances = {expected}")
    return manifest, sorted(ids)


def corpus_items(data_dir: str, corpus_dir: str, max_sentences: int = 0,
                 split: str = "test") -> list[Item]:
    """The utterances of ``data_dir``'s ``split`` (default the held-out set) with their text
    and wav in ``corpus_dir``; ``max_sentences > 0`` keeps the first that many of each speaker
    (id order)."""
    manifest, ids = held_out_ids(data_dir, split)
    names = {v: k for k, v in manifest.speakers.items()}
    items: list[Item] = []
    per_speaker: dict[int, int] = {}
    for uid, spk in ids:
        if spk not in names:
            raise IntelligibilityError(f"{data_dir}: utterance {uid} has speaker id {spk}, "
                                       f"which manifest.json's speakers {manifest.speakers} "
                                       "do not name")
        if max_sentences > 0 and per_speaker.get(spk, 0) >= max_sentences:
            continue
        per_speaker[spk] = per_speaker.get(spk, 0) + 1
        wav = os.path.join(corpus_dir, "wav", uid + ".wav")
        txt = os.path.join(corpus_dir, "text", uid + ".txt")
        for path in (wav, txt):
            if not os.path.isfile(path):
                raise IntelligibilityError(f"{path}: missing ({split} utterance {uid} of "
                                           f"{data_dir}; --corpus_dir must be the corpus the "
                                           "data was prepared from)")
        with open(txt, encoding="utf-8") as f:
            text = " ".join(f.read().split())
        try:
            if not normalize_text(text):
                raise ValueError("no words")
        except ValueError as e:
            raise IntelligibilityError(f"{txt}: {e}") from None
        items.append(Item(uid, names[spk], spk, text, wav))
    return items


def read_recording(path: str) -> tuple[np.ndarray, int]:
    """(mono float32 audio, sample rate) of a wav; multi-channel is averaged."""
    import soundfile as sf

    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as e:
        raise IntelligibilityError(f"{path}: cannot read the wav ({e})") from None
    if audio.shape[0] == 0:
        raise IntelligibilityError(f"{path}: no samples")
    return audio.mean(axis=1), int(sr)


# ----------------------------------------------------------------------------- scoring
EDGE_S = 0.010  # issue 25: "the first and last 10 ms of each utterance"
PAUSE_FRACTION = 0.1  # the quietest tenth of an utterance's inner 10-ms frames: its pauses
# An edge clicks when its peak exceeds twice (+6 dB) the pause peak. The margin is for the
# scatter of peaks of a stationary noise floor: an edge frame's 240-sample maximum of Gaussian
# noise reaches twice the maximum of >= 240 other samples (> 5 sigma against their >= 2.5) with
# probability < 1e-5, while issue 25's click (0.07-0.1 after a ~1e-3 floor) is 20x or more.
EDGE_MARGIN = 2.0


def edge_levels(audio: np.ndarray, sample_rate: int, edge_s: float = EDGE_S,
                pause_fraction: float = PAUSE_FRACTION, margin: float = EDGE_MARGIN
                ) -> dict[str, Any]:
    """Peak levels of an utterance's first and last ``edge_s`` against its own pause level.

    The audio (native rate, no resampling: a one-sample click survives) is cut into
    ``edge_s`` frames. ``pause_peak`` is the largest |sample| of the quietest
    ``pause_fraction`` of the inner frames (by RMS; the first and last frame excluded, at least
    one frame): the loudest the utterance ever is while it pauses. ``click`` is true when the
    first or last frame's peak exceeds ``margin`` times it (:data:`EDGE_MARGIN`), i.e. when an
    edge is clearly louder than any pause (a one-sample click of 0.07 after a 1e-3 noise floor,
    the defect of issue 25).
    """
    x = np.abs(np.asarray(audio, np.float64).reshape(-1))
    n = int(round(edge_s * sample_rate))
    frames = len(x) // n if n > 0 else 0
    if frames < 3:
        raise IntelligibilityError(
            f"edge levels need at least 3 frames of {edge_s * 1000:g} ms; the audio has "
            f"{len(x)} samples at {sample_rate} Hz")
    first, last = float(x[:n].max()), float(x[len(x) - n:].max())
    inner = x[n:n * (frames - 1)].reshape(frames - 2, n)
    rms = np.sqrt(np.mean(inner ** 2, axis=1))
    quiet = np.argsort(rms, kind="stable")[:max(1, int(pause_fraction * len(rms)))]
    pause = float(inner[quiet].max())
    return {"first_peak": first, "last_peak": last, "pause_peak": pause,
            "click": bool(max(first, last) > margin * pause)}


def score(recognizer: Recognizer, item: Item, audio: np.ndarray, sample_rate: int
          ) -> dict[str, Any]:
    """One utterance's row: reference, hypothesis (raw and normalised), DNSMOS, seconds, and
    the edge levels (:func:`edge_levels`)."""
    edges = edge_levels(audio, sample_rate)
    x = to_16k(audio, sample_rate)
    hyp = recognizer.transcribe(x)
    ref_n, hyp_n = normalize_text(item.text), normalize_text(hyp)
    return {"utterance_id": item.utterance_id, "speaker": item.speaker,
            "seconds": len(x) / ASR_RATE, "text": item.text, "hypothesis": hyp,
            "reference_normalized": ref_n, "hypothesis_normalized": hyp_n,
            "reference_oov": [w for w in ref_n.split() if not recognizer.knows(w)],
            "wer": wer_summary([ref_n], [hyp_n])["wer"], "dnsmos": dnsmos(x), "edges": edges}


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per speaker and pooled (``all``): corpus-level WER and counts, mean DNSMOS, and the
    number of utterances with an edge louder than their pauses (``clicks``; ``None`` for rows
    scored before the edge levels existed)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["speaker"], []).append(r)
    groups = dict(sorted(groups.items()))
    groups["all"] = list(rows)
    out = {}
    for name, rs in groups.items():
        s = wer_summary([r["reference_normalized"] for r in rs],
                        [r["hypothesis_normalized"] for r in rs])
        s["seconds"] = float(sum(r["seconds"] for r in rs))
        s["reference_oov"] = int(sum(len(r.get("reference_oov", ())) for r in rs))
        for k in ("p808", "sig", "bak", "ovrl"):
            s[f"dnsmos_{k}_mean"] = (float(np.mean([r["dnsmos"][k] for r in rs]))
                                     if rs else None)
        s["clicks"] = (int(sum(r["edges"]["click"] for r in rs))
                       if all("edges" in r for r in rs) else None)
        out[name] = s
    return out


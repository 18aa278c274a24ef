"""Intelligibility and quality of the held-out corpus recordings and of the model's speech
synthesised from their text, measured with real packaged models (no download at run time).

    .venv/bin/python benchmarks/intelligibility.py --data_dir=PREP [--export_dir=EXPORT/N]
        [--corpus_dir=~/.cache/tts-gan/festival_corpus] [--max_sentences=0]
        [--output_json=J] [--spectrogram_png=P] [--append]

The held-out set is read from ``PREP`` (a ``tts-gan-prep`` output): every utterance id in its
``test_utterances-*.tfrecord`` shards (e.g. ``slt_hts/s0042``), whatever the prep's split rule
was. For each, the recording ``CORPUS/wav/SPK/ID.wav`` and its text ``CORPUS/text/SPK/ID.txt``
(the layout of ``data_prep/festival_corpus.py``) are scored; with ``--export_dir`` the model
also speaks the text through the project's own text path (``tts-gan-synthesize --text
--speaker=N``: Festival's front end → HTS labels + F0 → the prep's features → the export),
with the recording's speaker id, and its audio is scored the same way.

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

import argparse
import dataclasses
import datetime
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402  (benchmarks/machine.py)

ASR_RATE = 16000  # pocketsphinx's en-us model and DNSMOS both take 16-kHz audio
# One spelling per word where the built-in sentences and the recogniser may differ: the
# abbreviation 'Mrs' (the CMU dictionary also has 'missus'), and the British spellings of
# data_prep/sentences.txt → the American ones the recogniser's LM prefers (or only has:
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
    """Bad input for the benchmark; the message names the file or flag."""


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


def held_out_ids(data_dir: str) -> tuple[Any, list[tuple[str, int]]]:
    """(manifest, [(utterance id, speaker id)] sorted by id) of the prep's test utterances."""
    import tensorflow as tf

    from tts_gan import schema

    manifest = schema.load_manifest(data_dir)
    pattern = os.path.join(data_dir, schema.shard_pattern(schema.TEST_UTTERANCES))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise IntelligibilityError(f"{pattern}: no held-out utterance shards (a tts-gan-prep "
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
    expected = manifest.counts.get("test", {}).get("utterances")
    if expected is not None and expected != len(ids):
        raise IntelligibilityError(f"{pattern}: {len(ids)} held-out utterances, but "
                                   f"{os.path.join(data_dir, schema.MANIFEST_NAME)} counts "
                                   f"test.utterances = {expected}")
    return manifest, sorted(ids)


def corpus_items(data_dir: str, corpus_dir: str, max_sentences: int = 0) -> list[Item]:
    """The held-out utterances of ``data_dir`` with their text and wav in ``corpus_dir``;
    ``max_sentences > 0`` keeps the first that many of each speaker (id order)."""
    manifest, ids = held_out_ids(data_dir)
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
                raise IntelligibilityError(f"{path}: missing (held-out utterance {uid} of "
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


# ------------------------------------------------------------------------------- the model
def load_synthesizer(export_dir: str) -> Any:
    """The export's ``serving_default`` signature (tts_gan.synthesis.ExportedSynthesizer)."""
    from tts_gan import export, schema, synthesis

    try:
        return synthesis.ExportedSynthesizer(export_dir)
    except (export.ExportError, schema.ManifestError, OSError, ValueError) as e:
        raise IntelligibilityError(f"--export_dir={export_dir}: not a usable tts-gan-export "
                                   f"SavedModel ({e})") from None


def synthesize_items(synth: Any, items: Sequence[Item], seed: int = 0,
                     batch_size: int = 8) -> list[np.ndarray]:
    """The model's audio (at ``synth.sample_rate``) for each item's text with its speaker:
    ``tts-gan-synthesize --text`` (Festival front end, the prep's features), utterance i with
    seed ``seed + i``. Each distinct text goes through Festival once."""
    from tts_gan import synthesis

    em = synth.manifest()
    ids = em.speakers if em is not None else None  # None: a random-init export
    missing = sorted({it.speaker for it in items} - set(ids)) if ids is not None else []
    if missing:
        raise IntelligibilityError(f"{synth.path}: the export's manifest has no speaker "
                                   f"{missing[0]!r} (it has {sorted(ids)})")
    texts = sorted({it.text for it in items})
    feats = dict(zip(texts, (u.features for u in synthesis.utterances_from_text(
        texts, [f"t{i:05d}" for i in range(len(texts))],
        synthesis.default_question_file(em), 0)), strict=True))
    utts = [synthesis.Utterance(it.utterance_id, feats[it.text],
                                ids[it.speaker] if ids is not None else it.speaker_id)
            for it in items]
    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(utts)
    for i, audio in synthesis.synthesize_batched(synth, utts, [seed + i for i in
                                                               range(len(utts))], batch_size):
        out[i] = np.asarray(audio, np.float32)
    return out


# ----------------------------------------------------------------------------- scoring
def score(recognizer: Recognizer, item: Item, audio: np.ndarray, sample_rate: int
          ) -> dict[str, Any]:
    """One utterance's row: reference, hypothesis (raw and normalised), DNSMOS, seconds."""
    x = to_16k(audio, sample_rate)
    hyp = recognizer.transcribe(x)
    ref_n, hyp_n = normalize_text(item.text), normalize_text(hyp)
    return {"utterance_id": item.utterance_id, "speaker": item.speaker,
            "seconds": len(x) / ASR_RATE, "text": item.text, "hypothesis": hyp,
            "reference_normalized": ref_n, "hypothesis_normalized": hyp_n,
            "reference_oov": [w for w in ref_n.split() if not recognizer.knows(w)],
            "wer": wer_summary([ref_n], [hyp_n])["wer"], "dnsmos": dnsmos(x)}


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per speaker and pooled (``all``): corpus-level WER and counts, mean DNSMOS."""
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
        out[name] = s
    return out


# -------------------------------------------------------------------------- outputs
def write_json(path: str, obj: Any) -> None:
    """JSON to ``path`` via a temporary name + rename."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def write_spectrogram_png(path: str, panels: Sequence[tuple[str, np.ndarray, int]],
                          max_seconds: float = 6.0) -> None:
    """One log spectrogram per panel (title, audio, rate), stacked, with time / frequency axes.

    The same spectrogram as ``benchmarks/spectrogram_png.py`` (``train_lib.spectrogram_image``
    of the audio at 24 kHz: 512-point STFT, hop 128, 80 dB below the clip's maximum)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soxr
    import tensorflow as tf

    from tts_gan.train_lib import spectrogram_image

    rate = 24000
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.4 * len(panels)), squeeze=False)
    clips = [(np.asarray(a, np.float32) if sr == rate else soxr.resample(
        np.asarray(a, np.float32), sr, rate).astype(np.float32))[: int(max_seconds * rate)]
        for _, a, sr in panels]
    longest = max(len(x) for x in clips) / rate
    for ax, (title, _, _), x in zip(axes[:, 0], panels, clips, strict=True):
        img = spectrogram_image(tf.constant(x[None]))[0, :, :, 0].numpy()  # [freq, time] 0..1
        im = ax.imshow(img * 80.0 - 80.0, aspect="auto", cmap="magma", vmin=-80, vmax=0,
                       extent=(0.0, img.shape[1] * 128 / rate, 0.0, rate / 2000.0))
        ax.set_xlim(0.0, longest)  # one time scale for every panel
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("frequency (kHz)")
        ax.set_xlabel("time (s)")
        fig.colorbar(im, ax=ax, label="dB re clip max", pad=0.01)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def table(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table rows of ``{source: summarise(...)}``."""
    lines = ["| audio | speaker | utterances | audio s | ref. words (OOV) | WER | S / D / I | "
             "DNSMOS P.808 | SIG | BAK | OVRL |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for source, per in summaries.items():
        for spk, s in per.items():
            if not s["sentences"]:
                continue
            lines.append(
                f"| {source} | {'**pooled**' if spk == 'all' else spk} | {s['sentences']} | "
                f"{s['seconds']:.1f} | {s['reference_words']} ({s['reference_oov']}) | "
                f"{s['wer']:.3f} | "
                f"{s['substitutions']} / {s['deletions']} / {s['insertions']} | "
                f"{s['dnsmos_p808_mean']:.2f} | {s['dnsmos_sig_mean']:.2f} | "
                f"{s['dnsmos_bak_mean']:.2f} | {s['dnsmos_ovrl_mean']:.2f} |")
    return lines


def versions() -> str:
    """Versions of the packaged models' libraries."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in ("pocketsphinx", "jiwer", "speechmos", "onnxruntime", "soxr"):
        try:
            out.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            out.append(f"{p} ?")
    return ", ".join(out)


# ------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from data_prep.festival_corpus import default_cache_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True,
                   help="tts-gan-prep output: its test_utterances shards are the held-out set")
    p.add_argument("--corpus_dir", default=default_cache_dir(),
                   help="corpus the data was prepared from: wav/SPK/ID.wav, text/SPK/ID.txt")
    p.add_argument("--export_dir", default=None,
                   help="tts-gan-export SavedModel (version dir or base); without it only the "
                        "recordings are scored")
    p.add_argument("--max_sentences", type=int, default=0,
                   help="at most this many held-out utterances per speaker (0: all)")
    p.add_argument("--seed", type=int, default=0, help="z seed of the first synthesised "
                   "utterance (utterance i uses seed + i)")
    p.add_argument("--output_json", default=None, help="per-utterance rows and summaries")
    p.add_argument("--spectrogram_png", default=None,
                   help="recording above generated for two held-out sentences")
    p.add_argument("--append", action="store_true", help=f"append the section to "
                   f"{machine.RESULTS}")
    args = p.parse_args(argv)
    if args.max_sentences < 0:
        p.error(f"--max_sentences must be >= 0, got {args.max_sentences}")
    return args


def _check_dirs(args: argparse.Namespace) -> None:
    for flag in ("data_dir", "corpus_dir", "export_dir"):
        path = getattr(args, flag)
        if path is not None and not os.path.isdir(path):
            what = {"data_dir": "a tts-gan-prep output", "corpus_dir": "the Festival corpus "
                    "cache (wav/SPK/ID.wav, text/SPK/ID.txt)",
                    "export_dir": "a tts-gan-export SavedModel"}[flag]
            raise IntelligibilityError(f"--{flag}={path}: no such directory ({what} was "
                                       "expected)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Scores the recordings (and the model); returns the JSON report."""
    from tts_gan import schema, synthesis

    _check_dirs(args)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    try:
        items = corpus_items(args.data_dir, args.corpus_dir, args.max_sentences)
        synth = load_synthesizer(args.export_dir) if args.export_dir else None
    except schema.ManifestError as e:
        raise IntelligibilityError(str(e)) from None
    recordings = [read_recording(it.wav) for it in items]
    recognizer = Recognizer()
    rows = {"recording": [score(recognizer, it, a, sr)
                          for it, (a, sr) in zip(items, recordings, strict=True)]}
    generated: list[np.ndarray] = []
    if synth is not None:
        try:
            generated = synthesize_items(synth, items, args.seed)
        except synthesis.SynthesisError as e:
            raise IntelligibilityError(str(e)) from None
        rows["model"] = [score(recognizer, it, a, synth.sample_rate)
                         for it, a in zip(items, generated, strict=True)]
    report = {
        "data_dir": args.data_dir, "corpus_dir": args.corpus_dir,
        "export_dir": synth.path if synth is not None else None,
        "held_out_utterances": len(items), "seed": args.seed,
        "split_by": schema.load_manifest(args.data_dir).extra.get("splits", {}).get("split_by"),
        "summary": {k: summarise(v) for k, v in rows.items()}, "utterances": rows,
        "seconds": time.perf_counter() - t0, "loadavg_1min": [load_start[0],
                                                               os.getloadavg()[0]],
        "versions": versions(),
    }
    if args.spectrogram_png:
        picks = _two_sentences(items)
        panels = []
        for i in picks:
            it = items[i]
            panels.append((f"{it.utterance_id} recording: \u201c{it.text}\u201d",
                           *recordings[i]))
            if generated:
                panels.append((f"{it.utterance_id} generated by the model from the text "
                               f"(speaker {it.speaker}; Festival slt front end)", generated[i],
                               synth.sample_rate))
        write_spectrogram_png(args.spectrogram_png, panels)
    if args.output_json:
        write_json(args.output_json, report)
    return report


def _two_sentences(items: Sequence[Item]) -> list[int]:
    """Indices of two held-out items: the first of two different speakers if there are two."""
    firsts: dict[str, int] = {}
    for i, it in enumerate(items):
        firsts.setdefault(it.speaker, i)
    picks = list(firsts.values())[:2]
    return picks + [i for i in range(len(items)) if i not in picks][: 2 - len(picks)]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except IntelligibilityError as e:
        print(f"intelligibility: error: {e}", file=sys.stderr)
        return 1
    argv = sys.argv[1:] if argv is None else list(argv)
    cmd = ".venv/bin/python benchmarks/intelligibility.py " + " ".join(
        shlex.quote(a) for a in argv)
    what = "recordings and model" if args.export_dir else "recordings"
    load = report["loadavg_1min"]
    lines = [
        "", f"## Intelligibility and quality of the held-out {what} — "
        f"{datetime.date.today().isoformat()}", "",
        f"Machine: nproc={os.cpu_count()}, {machine.cpu_model()}; 1-min load average "
        f"{load[0]:.2f} at the start, {load[1]:.2f} at the end (shared). {versions()}. "
        f"Command: `{cmd}` ({report['seconds']:.0f} s). Held-out set: the "
        f"{report['held_out_utterances']} utterances of the data dir's test_utterances shards"
        f" (split by {report['split_by'] or 'utterance'})"
        + (f" (first {args.max_sentences} per speaker)" if args.max_sentences else "")
        + (f"; model: `{report['export_dir']}`, speaking each utterance's text with its "
           f"speaker id, seeds {args.seed}+i" if args.export_dir else "")
        + ". WER: pocketsphinx 5 en-us on 16-kHz audio, jiwer, corpus-level over the "
        "sentences of a row, normalised text (lower case, no punctuation, apostrophes kept "
        "inside words, Mrs = missus, British → American spellings); OOV: reference words "
        "the recogniser's dictionary or LM lacks (a floor under the WER). DNSMOS: speechmos, "
        "mean over utterances.", "",
    ] + table(report["summary"]) + [""]
    machine.publish(lines, args.append)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

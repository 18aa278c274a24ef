"""Intelligibility and quality of the held-out corpus recordings and of the model's speech
synthesised from their text, measured with real packaged models (no download at run time).

    .venv/bin/python benchmarks/intelligibility.py --data_dir=PREP [--export_dir=EXPORT/N]
        [--text_file=benchmarks/unseen_sentences.txt]
        [--corpus_dir=~/.cache/tts-gan/festival_corpus] [--max_sentences=0]
        [--output_json=J] [--spectrogram_png=P] [--append]
        [--split=test|train|valid] [--conditioning=text|recorded]

The held-out set is read from ``PREP`` (a ``tts-gan-prep`` output): every utterance id in its
``test_utterances-*.tfrecord`` shards (e.g. ``slt_hts/s0042``), whatever the prep's split rule
was. For each, the recording ``CORPUS/wav/SPK/ID.wav`` and its text ``CORPUS/text/SPK/ID.txt``
(the layout of ``data_prep/festival_corpus.py``) are scored; with ``--export_dir`` the model
also speaks the text through the project's own text path (``tts-gan-synthesize --text
--speaker=N``: Festival's front end with the speaker's own voice → HTS labels + F0 → the
prep's features → the export), with the recording's speaker id, and its audio is scored the
same way.

Unseen text: ``--text_file=benchmarks/unseen_sentences.txt`` (one sentence a line, ``#``
comments) replaces the held-out set by sentences in no corpus file. Each of the export's
speakers (without ``--export_dir``, the built-in corpus' voices) speaks each sentence; the
reference audio is Festival's own rendering of it with the speaker's own voice (what the
corpus' recordings are), and the model speaks it from text as above. ``--data_dir`` is then
not needed.

Two diagnostics locate a failure: ``--conditioning=recorded`` conditions the model on the
utterance's prepared features (the recording's own durations and F0: copy synthesis, no
Festival prosody), and ``--split=train`` scores sentences the model was trained on (their
``train_utterances`` records; use ``--max_sentences``) instead of the held-out ones.

Scoring (recogniser, WER, DNSMOS, text normalisation) and the held-out set are
:mod:`tts_gan.intelligibility`, shared with ``tts-gan-eval``; its docstring has the rules.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402  (benchmarks/machine.py)

from tts_gan.intelligibility import (  # noqa: E402  (the scoring, shared with tts-gan-eval)
    IntelligibilityError,
    Item,
    Recognizer,
    corpus_items,
    read_recording,
    score,
    summarise,
)


# ------------------------------------------------------------------------------- the model
def load_synthesizer(export_dir: str, tflite: str | None = None) -> Any:
    """The export's ``serving_default`` signature (tts_gan.synthesis.ExportedSynthesizer), or
    with ``tflite`` that TFLite variant of it (TFLiteSynthesizer)."""
    from tts_gan import export, schema, synthesis

    try:
        if tflite:
            return synthesis.TFLiteSynthesizer(export_dir, tflite)
        return synthesis.ExportedSynthesizer(export_dir)
    except (export.ExportError, schema.ManifestError, OSError, ValueError) as e:
        raise IntelligibilityError(f"--export_dir={export_dir}: not a usable tts-gan-export "
                                   f"SavedModel ({e})") from None


def synthesize_items(synth: Any, items: Sequence[Item], seed: int = 0,
                     batch_size: int = 8, conditioning: str = "text",
                     data_dir: str | None = None, split: str = "test") -> list[np.ndarray]:
    """:func:`synthesize_utterances` of :func:`item_utterances`."""
    return synthesize_utterances(
        synth, item_utterances(synth, items, conditioning, data_dir, split), seed, batch_size)


def item_utterances(synth: Any, items: Sequence[Item], conditioning: str = "text",
                    data_dir: str | None = None, split: str = "test") -> list[Any]:
    """The utterance (RAW features, the export's speaker id) the model speaks for each item.
    ``conditioning="text"``: from the item's text as
    ``tts-gan-synthesize --text`` (Festival front end with the speaker's own voice, the front
    end of the model's training data; each distinct text goes through each voice once);
    ``"recorded"``: from the utterance's prepared features in ``data_dir``'s ``split`` (the
    recording's durations and F0: copy synthesis)."""
    from tts_gan import synthesis

    em = synth.manifest()
    ids = em.speakers if em is not None else None  # None: a random-init export
    missing = sorted({it.speaker for it in items} - set(ids)) if ids is not None else []
    if missing:
        raise IntelligibilityError(f"{synth.path}: the export's manifest has no speaker "
                                   f"{missing[0]!r} (it has {sorted(ids)})")
    speaker = {it.utterance_id: ids[it.speaker] if ids is not None else it.speaker_id
               for it in items}  # the export's id of each item's speaker
    if conditioning == "recorded":
        prepared = synthesis.utterances_from_prep(data_dir, split,
                                                  ids=[it.utterance_id for it in items])
        feats = {it.utterance_id: u.features for it, u in zip(items, prepared, strict=True)}
    else:  # each speaker's text with its own Festival voice (synthesis.festival_voice)
        voice = {it.utterance_id: synthesis.festival_voice(em, speaker[it.utterance_id])
                 for it in items}
        fe = synthesis.training_front_end(em)  # as tts-gan-synthesize
        qfile = synth.question_file()
        feats = {}
        for v in sorted(set(voice.values())):
            texts = sorted({it.text for it in items if voice[it.utterance_id] == v})
            by_text = dict(zip(texts, (u.features for u in synthesis.utterances_from_text(
                texts, [f"t{i:05d}" for i in range(len(texts))],
                qfile, 0, voice=v, **fe)), strict=True))
            feats.update({it.utterance_id: by_text[it.text] for it in items
                          if voice[it.utterance_id] == v})
    return [synthesis.Utterance(it.utterance_id, feats[it.utterance_id],
                                speaker[it.utterance_id]) for it in items]


def synthesize_utterances(synth: Any, utts: Sequence[Any], seed: int = 0,
                          batch_size: int = 8) -> list[np.ndarray]:
    """The model's audio for each utterance, utterance i with seed ``seed + i``."""
    from tts_gan import synthesis

    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(utts)
    for i, audio in synthesis.synthesize_batched(synth, utts, [seed + i for i in
                                                               range(len(utts))], batch_size):
        out[i] = np.asarray(audio, np.float32)
    return out


# --------------------------------------------------------------------------- unseen text
def read_text_file(path: str) -> list[str]:
    """The sentences of ``path``: one a line, blank lines and ``#`` comments skipped; each must
    have words the scoring can compare (a clear error names the line)."""
    from tts_gan.intelligibility import normalize_text

    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise IntelligibilityError(f"--text_file={path}: cannot read it ({e})") from None
    out = []
    for n, line in enumerate(lines, 1):
        text = " ".join(line.split())
        if not text or text.startswith("#"):
            continue
        try:
            if not normalize_text(text):
                raise ValueError("no words")
        except ValueError as e:
            raise IntelligibilityError(f"{path}:{n}: {e}") from None
        out.append(text)
    if not out:
        raise IntelligibilityError(f"--text_file={path}: no sentences")
    return out


def text_file_items(sentences: Sequence[str], speakers: dict[str, int], manifest: Any,
                    work_dir: str) -> list[Item]:
    """One item per (speaker, sentence), the speaker's reference audio rendered by Festival
    with the speaker's own voice into ``work_dir``: the export ``manifest``'s choice
    (``synthesis.festival_voice``, the voice the model speaks text with), or without an export
    the built-in corpus voice of that name."""
    from tts_gan import synthesis
    from tts_gan.frontend import festival

    items: list[Item] = []
    todo: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, spk in sorted(speakers.items(), key=lambda kv: kv[1]):
        voice = (synthesis.festival_voice(manifest, spk) if manifest is not None
                 else festival.VOICES.get(name, festival.HTS_VOICE))
        for sub in ("wav", "lab", "text"):
            os.makedirs(os.path.join(work_dir, sub, name), exist_ok=True)
        for i, text in enumerate(sentences):
            uid = f"{name}/u{i + 1:03d}"
            paths = [os.path.join(work_dir, sub, uid + ext)
                     for sub, ext in (("wav", ".wav"), ("lab", ".lab"), ("text", ".txt"))]
            todo.setdefault(voice, []).append((text, *paths))
            items.append(Item(uid, name, spk, text, paths[0]))
    try:
        for voice, batch in todo.items():
            for i in range(0, len(batch), festival.BATCH):
                festival.render_batch(voice, batch[i:i + festival.BATCH])
    except festival.FestivalError as e:
        raise IntelligibilityError(f"Festival could not render --text_file: {e}") from None
    return items


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
             "DNSMOS P.808 | SIG | BAK | OVRL | clicks |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
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
                f"{s['dnsmos_bak_mean']:.2f} | {s['dnsmos_ovrl_mean']:.2f} | "
                f"{'–' if s.get('clicks') is None else s['clicks']} |")
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
    p.add_argument("--data_dir", default=None,
                   help="tts-gan-prep output: its test_utterances shards are the held-out set "
                        "(required unless --text_file)")
    p.add_argument("--text_file", default=None,
                   help="unseen sentences (one a line) instead of the held-out set: each "
                        "speaker's reference is Festival's rendering with its own voice")
    p.add_argument("--corpus_dir", default=default_cache_dir(),
                   help="corpus the data was prepared from: wav/SPK/ID.wav, text/SPK/ID.txt")
    p.add_argument("--export_dir", default=None,
                   help="tts-gan-export SavedModel (version dir or base); without it only the "
                        "recordings are scored")
    p.add_argument("--tflite", default=None,
                   choices=("float32", "float16", "dynamic_int8", "int8"),
                   help="score this TFLite variant of --export_dir instead of its SavedModel")
    p.add_argument("--max_sentences", type=int, default=0,
                   help="at most this many utterances per speaker (0: all)")
    p.add_argument("--split", default="test", choices=("test", "train", "valid"),
                   help="whose utterances: test = held out for both voices (the acceptance "
                        "set); train = sentences the model saw (diagnostic)")
    p.add_argument("--conditioning", default="text", choices=("text", "recorded"),
                   help="text: the model speaks the text through the Festival front end; "
                        "recorded: the utterance's prepared features (copy synthesis)")
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
    if args.text_file is None and args.data_dir is None:
        p.error("--data_dir is required (or --text_file for unseen sentences)")
    if args.text_file is not None and (args.conditioning != "text" or args.split != "test"):
        p.error("--text_file speaks text: --conditioning=recorded and --split do not apply")
    return args


def _check_dirs(args: argparse.Namespace) -> None:
    flags = ("export_dir",) if args.text_file else ("data_dir", "corpus_dir", "export_dir")
    for flag in flags:
        path = getattr(args, flag)
        if path is not None and not os.path.isdir(path):
            what = {"data_dir": "a tts-gan-prep output", "corpus_dir": "the Festival corpus "
                    "cache (wav/SPK/ID.wav, text/SPK/ID.txt)",
                    "export_dir": "a tts-gan-export SavedModel"}[flag]
            raise IntelligibilityError(f"--{flag}={path}: no such directory ({what} was "
                                       "expected)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Scores the recordings (and the model); returns the JSON report."""
    import tempfile

    from tts_gan import schema, synthesis
    from tts_gan.frontend import festival

    _check_dirs(args)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    work = tempfile.TemporaryDirectory(prefix="tts-gan-unseen-")
    try:
        synth = (load_synthesizer(args.export_dir, args.tflite) if args.export_dir
                 else None)
        if args.text_file is not None:
            em = synth.manifest() if synth is not None else None
            speakers = (em.speakers if em is not None
                        else {n: i for i, n in enumerate(sorted(festival.VOICES))})
            items = text_file_items(read_text_file(args.text_file), speakers, em, work.name)
        else:
            items = corpus_items(args.data_dir, args.corpus_dir, args.max_sentences,
                                 args.split)
    except schema.ManifestError as e:
        raise IntelligibilityError(str(e)) from None
    recordings = [read_recording(it.wav) for it in items]
    recognizer = Recognizer()
    rows = {"recording": [score(recognizer, it, a, sr)
                          for it, (a, sr) in zip(items, recordings, strict=True)]}
    generated: list[np.ndarray] = []
    if synth is not None:
        try:
            generated = synthesize_items(synth, items, args.seed,
                                         conditioning=args.conditioning,
                                         data_dir=args.data_dir, split=args.split)
        except synthesis.SynthesisError as e:
            raise IntelligibilityError(str(e)) from None
        rows["model"] = [score(recognizer, it, a, synth.sample_rate)
                         for it, a in zip(items, generated, strict=True)]
    work.cleanup()
    report = {
        "data_dir": args.data_dir, "corpus_dir": args.corpus_dir,
        "text_file": args.text_file,
        "export_dir": synth.path if synth is not None else None, "tflite": args.tflite,
        "held_out_utterances": len(items), "seed": args.seed, "split": args.split,
        "conditioning": args.conditioning,
        "split_by": (schema.load_manifest(args.data_dir).extra.get("splits", {}).get("split_by")
                     if args.data_dir else None),
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
                how = ("from the text (Festival front end, the speaker's voice)"
                       if args.conditioning == "text"
                       else "from the recording's prepared features")
                panels.append((f"{it.utterance_id} generated by the model {how} "
                               f"(speaker {it.speaker})", generated[i], synth.sample_rate))
        write_spectrogram_png(args.spectrogram_png, panels)
    if args.output_json:
        write_json(args.output_json, report)
    return report


def _two_sentences(items: Sequence[Item]) -> list[int]:
    """Indices of two held-out items with different sentences (texts), from two different
    speakers when the set has two; fewer only if the set has a single sentence."""
    picks: list[int] = []
    for i, it in enumerate(items):
        if not picks:
            picks.append(i)
        elif it.text != items[picks[0]].text and it.speaker != items[picks[0]].speaker:
            return picks + [i]
    for i, it in enumerate(items):  # one speaker: any other sentence
        if picks and it.text != items[picks[0]].text:
            return picks + [i]
    return picks


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except IntelligibilityError as e:
        print(f"intelligibility: error: {e}", file=sys.stderr)
        return 1
    cmd = machine.command("intelligibility.py", argv)
    what = "recordings and model" if args.export_dir else "recordings"
    whose = ("unseen-text" if args.text_file else
             "held-out" if args.split == "test" else f"{args.split}-split")
    speaks = ("speaking each utterance's text" if args.conditioning == "text" else
              "conditioned on each utterance's prepared features (copy synthesis)")
    load = report["loadavg_1min"]
    lines = [
        "", f"## Intelligibility and quality of the {whose} {what} — "
        f"{datetime.date.today().isoformat()}", "",
        f"Machine: nproc={os.cpu_count()}, {machine.cpu_model()}; 1-min load average "
        f"{load[0]:.2f} at the start, {load[1]:.2f} at the end (shared). {versions()}. "
        f"Command: `{cmd}` ({report['seconds']:.0f} s). Set: " + (
            f"the {report['held_out_utterances']} (speaker, sentence) pairs of "
            f"`{args.text_file}`; 'recording' = Festival's rendering with the speaker's own "
            "voice" if args.text_file else
            f"the {report['held_out_utterances']} utterances of the data dir's "
            f"{args.split}_utterances shards (split by {report['split_by'] or 'utterance'})")
        + (f" (first {args.max_sentences} per speaker)" if args.max_sentences else "")
        + (f"; model: `{report['export_dir']}`, {speaks} with its speaker id, seeds "
           f"{args.seed}+i" if args.export_dir else "")
        + ". WER: pocketsphinx 5 en-us on 16-kHz audio, jiwer, corpus-level over the "
        "sentences of a row, normalised text (lower case, no punctuation, apostrophes kept "
        "inside words, Mrs = missus, British → American spellings); OOV: reference words "
        "the recogniser's dictionary or LM lacks (a floor under the WER). DNSMOS: speechmos, "
        "mean over utterances. Clicks: utterances whose first or last 10 ms peak above twice "
        "the loudest sample of their quietest tenth of 10-ms frames (their pauses).", "",
    ] + table(report["summary"]) + [""]
    machine.publish(lines, args.append)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

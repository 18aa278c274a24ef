"""`tts-gan-synthesize`: features, HTS labels or plain text → 24 kHz 16-bit wav files.

    tts-gan-synthesize --export_dir=DIR \
        (--text="..." | --text_file=F | --labels=GLOB [--f0_from_wav=DIR|FILE] | --data_dir=PREP)
        --output_dir=OUT [--speaker=N] [--festival_voice=voice_…] [--seed=N] [--batch_size=8]
        [--streaming --chunk_frames=400 [--overlap_frames=H]]

Utterance i gets z from seed ``--seed + i`` (see tts_gan.export); files are named by
utterance id and written via a temporary file + rename.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

from tts_gan.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "Exported model: a version dir or the base (highest "
                    "version is used).")
flags.DEFINE_string("text", None, "One sentence (or several, one per line) to synthesise.")
flags.DEFINE_string("text_file", None, "UTF-8 text file, one utterance per non-empty line.")
flags.DEFINE_string("labels", None, "Glob of aligned HTS label files (.lab).")
flags.DEFINE_string("f0_from_wav", None, "F0 source for --labels: a directory of STEM.wav or "
                    "one wav (default: STEM.wav next to each label file).")
flags.DEFINE_string("data_dir", None, "tts-gan-prep output: synthesise its test utterances.")
flags.DEFINE_string("split", "test", "Split of --data_dir (whole-utterance records).")
flags.DEFINE_string("output_dir", None, "Where the wav files go.")
flags.DEFINE_integer("speaker", None, "Speaker id (default: the data's own for --data_dir; "
                     "else the 'slt_hts' id of the export's manifest, or 0).")
flags.DEFINE_integer("seed", 0, "z seed of the first utterance (utterance i uses seed + i).")
flags.DEFINE_integer("batch_size", 8, "Utterances per padded batch (one-shot mode).")
flags.DEFINE_bool("streaming", False, "Chunked synthesis in bounded memory.")
flags.DEFINE_integer("chunk_frames", 400, "Frames per streaming chunk (200 Hz).")
flags.DEFINE_integer("overlap_frames", None, "Context frames on each side of a chunk "
                     "(default: the receptive-field half-width from the export).")
flags.DEFINE_string("question_file", None, "HTS question file (default: the prep's).")
flags.DEFINE_string("festival_voice", None, "Festival voice function whose durations and F0 "
                    "the text gets (default: the speaker's own voice in the built-in corpus, "
                    "e.g. voice_kal_diphone for kal_diphone; else the slt HTS voice).")


def _default_speaker(synth) -> int:
    m = synth.manifest()
    if m is not None and "slt_hts" in m.speakers:
        return m.speakers["slt_hts"]
    return 0


def _read_text_file(path: str) -> str:
    """UTF-8 text of ``--text_file`` (local or any tf.io.gfile file system)."""
    import tensorflow as tf

    from tts_gan import synthesis

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read().decode("utf-8")
    except tf.errors.OpError as e:
        raise synthesis.SynthesisError(f"--text_file={path}: {e.message}") from None
    except UnicodeDecodeError as e:
        raise synthesis.SynthesisError(f"--text_file={path}: not UTF-8 text ({e})") from None


def _make_output_dir(path: str) -> None:
    """Creates ``--output_dir`` (local or any tf.io.gfile file system); a clear error if not."""
    import tensorflow as tf

    from tts_gan import synthesis

    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        raise synthesis.SynthesisError(f"--output_dir={path}: exists and is not a directory")
    try:
        tf.io.gfile.makedirs(path)
    except tf.errors.OpError as e:
        raise synthesis.SynthesisError(f"--output_dir={path}: cannot create it "
                                       f"({e.message})") from None


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    sources = [n for n in ("text", "text_file", "labels", "data_dir")
               if getattr(FLAGS, n) is not None]
    if len(sources) != 1:
        raise app.UsageError("give exactly one of --text, --text_file, --labels, --data_dir")
    if not FLAGS.export_dir or not FLAGS.output_dir:
        raise app.UsageError("--export_dir and --output_dir are required")
    if FLAGS.festival_voice is not None and sources[0] not in ("text", "text_file"):
        raise app.UsageError("--festival_voice applies to --text/--text_file only")
    from tts_gan import export, schema, synthesis

    try:
        synth = synthesis.ExportedSynthesizer(FLAGS.export_dir)
        manifest = synth.manifest()
        qfile = FLAGS.question_file or synth.question_file()
        # the front end of the model's training data (tts_gan.frontend)
        fe = synthesis.training_front_end(manifest)
        speaker = FLAGS.speaker
        voice = None
        if FLAGS.data_dir is not None:
            utts = synthesis.utterances_from_prep(FLAGS.data_dir, FLAGS.split, speaker)
        else:
            speaker = _default_speaker(synth) if speaker is None else speaker
            if FLAGS.labels is not None:
                utts = synthesis.utterances_from_labels(FLAGS.labels, FLAGS.f0_from_wav,
                                                        qfile, speaker, **fe)
            else:
                if FLAGS.text is not None:
                    lines = FLAGS.text.splitlines()
                else:
                    lines = _read_text_file(FLAGS.text_file).splitlines()
                texts = [ln.strip() for ln in lines if ln.strip()]
                ids = [f"utt{i + 1:04d}" for i in range(len(texts))]
                voice = synthesis.festival_voice(manifest, speaker, FLAGS.festival_voice)
                utts = synthesis.utterances_from_text(texts, ids, qfile, speaker, voice=voice,
                                                      **fe)
        seeds = [FLAGS.seed + i for i in range(len(utts))]
        _make_output_dir(FLAGS.output_dir)
        start = time.perf_counter()
        total = 0
        if FLAGS.streaming:
            for u, s in zip(utts, seeds, strict=True):
                chunks = synthesis.synthesize_streaming(synth, u, s, FLAGS.chunk_frames,
                                                        FLAGS.overlap_frames)
                total += synthesis.write_wav(
                    os.path.join(FLAGS.output_dir, u.utterance_id + ".wav"), chunks,
                    synth.sample_rate)
        else:
            for i, audio in synthesis.synthesize_batched(synth, utts, seeds, FLAGS.batch_size):
                total += synthesis.write_wav(
                    os.path.join(FLAGS.output_dir, utts[i].utterance_id + ".wav"), [audio],
                    synth.sample_rate)
        secs = time.perf_counter() - start
    except (synthesis.SynthesisError, export.ExportError, schema.ManifestError) as e:
        print(f"tts-gan-synthesize: error: {e}", file=sys.stderr)
        return 1
    audio_s = total / synth.sample_rate
    print(json.dumps({"export": synth.path, "utterances": len(utts), "speaker": speaker,
                      "festival_voice": voice, "audio_seconds": audio_s,
                      "synthesis_seconds": secs,
                      "real_time_factor": audio_s / secs if secs > 0 else None,
                      "output_dir": FLAGS.output_dir}))
    return 0


def run() -> None:
    run_main(main, __name__)

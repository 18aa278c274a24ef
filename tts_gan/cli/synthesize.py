"""`tts-gan-synthesize`: features, HTS labels or plain text → 24 kHz 16-bit wav files.

    tts-gan-synthesize --export_dir=DIR \
        (--text="..." | --text_file=F | --labels=GLOB [--f0_from_wav=DIR|FILE] | --data_dir=PREP)
        --output_dir=OUT [--speaker=N] [--festival_voice=voice_…] [--seed=N] [--batch_size=8]
        [--streaming --chunk_frames=400 [--first_chunk_frames=N] [--overlap_frames=H]]

Utterance i gets z from seed ``--seed + i`` (see tts_gan.export). Text line n is written to
``NNNN-slug.wav`` (its line number and first words), labels and prep utterances to
``<utterance id>.wav``, each via a temporary file + rename; an existing file is an error
unless ``--overwrite``. The last stdout line is a JSON summary (``real_time_factor`` =
synthesis seconds / audio seconds, ``x_real_time`` its inverse).
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
flags.DEFINE_bool("overwrite", False, "Replace existing wav files (else an existing file is an "
                  "error and nothing is written).")
flags.DEFINE_integer("speaker", None, "Speaker id (default: the data's own for --data_dir; "
                     "else the 'slt_hts' id of the export's manifest, or 0).")
flags.DEFINE_integer("seed", 0, "z seed of the first utterance (utterance i uses seed + i).")
flags.DEFINE_integer("batch_size", 8, "Utterances per padded batch (one-shot mode).")
flags.DEFINE_bool("streaming", False, "Chunked synthesis in bounded memory (text: each sentence "
                  "is rendered and its audio written as soon as it is ready).")
flags.DEFINE_float("sentence_pause", 0.2, "Seconds of silence between the sentences of a text "
                   "line, added to the pauses Festival puts at each sentence's ends.")
flags.DEFINE_integer("chunk_frames", 400, "Frames per streaming chunk (200 Hz).")
flags.DEFINE_integer("first_chunk_frames", None, "Frames of the first streaming chunk of each "
                     "utterance (default: --chunk_frames); small: the first audio comes "
                     "sooner (20 frames = 100 ms).")
flags.DEFINE_integer("overlap_frames", None, "Context frames on each side of a chunk "
                     "(default: the receptive-field half-width from the export).")
flags.DEFINE_enum("tflite", None, ["float32", "float16", "dynamic_int8", "int8"],
                  "Run the export's TFLite variant (assets/gan_tts[_VARIANT].tflite, written by "
                  "tts-gan-export or python -m tts_gan.quantize) instead of the SavedModel.")
flags.DEFINE_integer("tflite_threads", None, "CPU threads of the TFLite interpreter with "
                     "--tflite (default: every CPU this process may use).")
flags.DEFINE_string("question_file", None, "HTS question file (default: the prep's).")
flags.DEFINE_string("festival_voice", None, "Festival voice function whose durations and F0 "
                    "the text gets as they are (default: the speaker's own voice in the "
                    "built-in corpus, e.g. voice_kal_diphone for kal_diphone; else the slt HTS "
                    "voice's, mapped onto the speaker's log-F0 mean/std and phone duration "
                    "from the manifest).")


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


def _text_lines() -> list[tuple[int, str]]:
    """(line number, stripped text) of every non-empty line of --text / --text_file."""
    text = FLAGS.text if FLAGS.text is not None else _read_text_file(FLAGS.text_file)
    return [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]


def _output_paths(names: list[str]) -> list[str]:
    """``--output_dir``/name for each name; duplicates, and existing files without
    ``--overwrite``, are errors before anything is synthesised."""
    import tensorflow as tf

    from tts_gan import synthesis

    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise synthesis.SynthesisError(f"two inputs would both be written to {n} in "
                                           f"--output_dir={FLAGS.output_dir}")
        seen.add(n)
    paths = [os.path.join(FLAGS.output_dir, n) for n in names]
    if not FLAGS.overwrite:
        existing = [p for p in paths if tf.io.gfile.exists(p)]
        if existing:
            raise synthesis.SynthesisError(
                f"{existing[0]} exists ({len(existing)} of the {len(paths)} output files do); "
                "pass --overwrite to replace them, or choose another --output_dir")
    return paths


def _synthesize_text(synth, lines: list[tuple[int, str]], paths: list[str], source: str,
                     check, **front_end) -> tuple[int, int]:
    """Each line's sentences as separate Festival utterances (sentence j of the whole input
    with seed ``--seed + j``), joined with ``--sentence_pause`` of silence into the line's file;
    returns (samples written, sentences). ``front_end``: question_file, speaker, voice,
    f0_method, frontend_version of :func:`tts_gan.synthesis.utterances_from_text`."""
    import numpy as np

    from tts_gan import synthesis
    from tts_gan.frontend import text as text_lib

    if FLAGS.sentence_pause < 0:
        raise synthesis.SynthesisError(f"--sentence_pause={FLAGS.sentence_pause}: must be >= 0")
    sents = [(i, f"{source} line {n} sentence {k + 1}", s) for i, (n, t) in enumerate(lines)
             for k, s in enumerate(text_lib.sentences(text_lib.transliterate(t)))]
    seeds = [FLAGS.seed + j for j in range(len(sents))]
    pause = np.zeros(round(FLAGS.sentence_pause * synth.sample_rate), np.float32)
    qfile, speaker = front_end.pop("question_file"), front_end.pop("speaker")

    def joined(pieces):  # the sentences' audio (each an iterable of chunks) with pauses
        for k, chunks in enumerate(pieces):
            if k:
                yield pause
            yield from chunks

    def streamed(mine):  # render, synthesise and yield one sentence after another
        for j in mine:
            [u] = synthesis.utterances_from_text([sents[j][2]], [sents[j][1]], qfile, speaker,
                                                 **front_end)
            check.add(u)
            yield synthesis.synthesize_streaming(synth, u, seeds[j], FLAGS.chunk_frames,
                                                 FLAGS.overlap_frames, FLAGS.first_chunk_frames)

    audio: dict[int, np.ndarray] = {}
    if not FLAGS.streaming:  # every sentence in padded batches
        utts = synthesis.utterances_from_text([s for *_, s in sents], [u for _, u, _ in sents],
                                              qfile, speaker, **front_end)
        for u in utts:
            check.add(u)
        audio = dict(synthesis.synthesize_batched(synth, utts, seeds, FLAGS.batch_size))
    total = 0
    for i, path in enumerate(paths):
        mine = [j for j, (li, *_) in enumerate(sents) if li == i]
        pieces = streamed(mine) if FLAGS.streaming else ([audio[j]] for j in mine)
        total += synthesis.write_wav(path, joined(pieces), synth.sample_rate,
                                     overwrite=FLAGS.overwrite)
    return total, len(sents)


def _synthesize_utterances(synth, utts: list, paths: list[str], check) -> int:
    """Utterance i (seed ``--seed + i``) into ``paths[i]``; returns the samples written."""
    from tts_gan import synthesis

    for u in utts:
        check.add(u)
    seeds = [FLAGS.seed + i for i in range(len(utts))]
    total = 0
    if FLAGS.streaming:
        for u, s, path in zip(utts, seeds, paths, strict=True):
            chunks = synthesis.synthesize_streaming(synth, u, s, FLAGS.chunk_frames,
                                                    FLAGS.overlap_frames,
                                                    FLAGS.first_chunk_frames)
            total += synthesis.write_wav(path, chunks, synth.sample_rate,
                                         overwrite=FLAGS.overwrite)
    else:
        for i, audio in synthesis.synthesize_batched(synth, utts, seeds, FLAGS.batch_size):
            total += synthesis.write_wav(paths[i], [audio], synth.sample_rate,
                                         overwrite=FLAGS.overwrite)
    return total


class _NoCheck:
    """No training range to check against: says so once, when the first input is ready."""

    def __init__(self, note: str) -> None:
        self.note = note

    def add(self, utt) -> None:
        if self.note:
            print(f"tts-gan-synthesize: note: {self.note}", file=sys.stderr)
            self.note = ""

    def warning(self) -> None:
        return None


def _range_check(synth, manifest, question_file: str, frontend_version: int):
    """A :class:`tts_gan.synthesis.RangeCheck` against the manifest's training feature range;
    where the prep did not record one, a note on stderr says the inputs go unchecked."""
    from tts_gan import synthesis

    rng = synthesis.feature_range(manifest)
    if rng is None:
        return _NoCheck(f"the export's manifest ({synth.path}/assets/manifest.json) has no "
                        "training feature range (its data was prepared before tts-gan-prep "
                        "recorded one), so inputs are not checked against it")
    names = synthesis.feature_names(question_file, frontend_version, synth.feature_dim)
    return synthesis.RangeCheck(*rng, names)


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
    from tts_gan.frontend import text as text_lib

    transliterated: list[dict] = []
    lines: list[tuple[int, str]] | None = None
    mapping = None
    sentences = total = 0
    try:
        if FLAGS.text is not None or FLAGS.text_file is not None:
            # checked before the model loads: a line with nothing to speak is one clear error
            source = "--text" if FLAGS.text is not None else f"--text_file={FLAGS.text_file}"
            lines = _text_lines()
            for n, t in lines:
                a = text_lib.transliterate(t)
                if a != " ".join(t.split()):
                    transliterated.append({"line": n, "text": t, "ascii": a})
                if not text_lib.speakable(a):
                    raise synthesis.SynthesisError(
                        f"{source} line {n}: {t!r} has nothing to speak (no letter or digit"
                        + (f" in its ASCII transliteration {a!r}" if a != t else "") + ")")
        synth = (synthesis.TFLiteSynthesizer(FLAGS.export_dir, FLAGS.tflite,
                                              FLAGS.tflite_threads) if FLAGS.tflite
                 else synthesis.ExportedSynthesizer(FLAGS.export_dir))
        manifest = synth.manifest()
        qfile = FLAGS.question_file or synth.question_file()
        speaker = FLAGS.speaker
        voice = None
        _make_output_dir(FLAGS.output_dir)
        check = _range_check(synth, manifest, qfile, synthesis.frontend_version(manifest))
        start = time.perf_counter()  # front end + generator + writing; not model loading
        if FLAGS.data_dir is not None:
            utts = synthesis.utterances_from_prep(FLAGS.data_dir, FLAGS.split, speaker)
            paths = _output_paths([u.utterance_id + ".wav" for u in utts])
        else:
            speaker = _default_speaker(synth) if speaker is None else speaker
            # the front end of the model's training data (tts_gan.frontend)
            fe = synthesis.training_front_end(manifest)
            if FLAGS.labels is not None:
                utts = synthesis.utterances_from_labels(FLAGS.labels, FLAGS.f0_from_wav,
                                                        qfile, speaker, **fe)
                paths = _output_paths([u.utterance_id + ".wav" for u in utts])
            else:
                paths = _output_paths([text_lib.file_name(n, t) for n, t in lines])
                voice = synthesis.festival_voice(manifest, speaker, FLAGS.festival_voice)
                mapping, note = synthesis.prosody_mapping(manifest, speaker,
                                                          FLAGS.festival_voice)
                if note:
                    print(f"tts-gan-synthesize: note: {note}", file=sys.stderr)
                total, sentences = _synthesize_text(
                    synth, lines, paths, source, check, question_file=qfile,
                    speaker=speaker, voice=voice, mapping=mapping, **fe)
        if lines is None:
            total = _synthesize_utterances(synth, utts, paths, check)
        secs = time.perf_counter() - start
    except (synthesis.SynthesisError, export.ExportError, schema.ManifestError) as e:
        print(f"tts-gan-synthesize: error: {e}", file=sys.stderr)
        return 1
    if check.warning() is not None:
        print(f"tts-gan-synthesize: warning: {check.warning()}", file=sys.stderr)
    js = synthesis.run_summary(synth.path, len(paths), speaker, voice,
                               total / synth.sample_rate, secs, FLAGS.output_dir,
                               [os.path.basename(p) for p in paths])
    if lines is not None:
        js["sentences"] = sentences  # each its own Festival utterance
        js["transliterated"] = transliterated  # lines whose non-ASCII text was changed
        # a speaker without a Festival voice of its own: the voice's F0 and durations moved
        # onto the speaker's statistics (None: the voice's own prosody)
        js["prosody_mapping"] = mapping.summary() if mapping is not None else None
    print(json.dumps(js))
    return 0


def run() -> None:
    run_main(main, __name__)

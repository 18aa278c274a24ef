"""``tts-gan-prep``: corpus → 2-s windows of µ-law audio + 200 Hz features (paper §3.1, App. C).

Examples::

    tts-gan-prep --format=festival --output_dir=data --workers=2          # built-in corpus
    tts-gan-prep --format=festival --festival_sentences=all --output_dir=data_big \
        --compression=GZIP                     # + 2,600 sentences from Debian's fortunes
    tts-gan-prep --format=hts --corpus_dir=my_corpus --output_dir=data    # wav/ + lab/
    tts-gan-prep --format=features --corpus_dir=my_corpus --output_dir=data  # wav/ + feats/

Rerunning the same command resumes (completed shards are kept; output is byte-identical).
"""

from __future__ import annotations

import math
import shlex
import sys

from absl import app, flags

from data_prep import festival_corpus, pipeline
from tts_gan import schema
from tts_gan.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_enum("format", None, ["hts", "features", "festival"], "Input corpus format.")
flags.DEFINE_string(
    "corpus_dir", None,
    "Corpus root (wav/ + lab/ or feats/). For --format=festival: where the rendered corpus is "
    "cached (default ~/.cache/tts-gan/festival_corpus).",
)
flags.DEFINE_string("output_dir", None, "Where TFRecords, manifest.json, rejected.tsv go.")
flags.DEFINE_string(
    "question_file", None,
    "HTS .hed question file (default: tts_gan/frontend/default_questions.hed, 556 questions -> "
    "567-dim features).",
)
flags.DEFINE_integer("workers", 1, "Parallel worker processes.")
flags.DEFINE_bool("strict", False, "Stop at the first bad utterance instead of rejecting it.")
flags.DEFINE_integer("window_frames", schema.WINDOW_FRAMES, "Window length in 5 ms frames.")
flags.DEFINE_integer("hop_frames", 0, "Hop between window starts (0 = window: no overlap).")
flags.DEFINE_integer("seed", 1234, "Seed of the train/valid/test split.")
flags.DEFINE_enum(
    "split_by", None, list(pipeline.SPLIT_BY),
    "Split unit: 'utterance' (each utterance on its own) or 'sentence' (the utterances of one "
    "ID under several speakers, SPK/ID, share a split). Default: sentence for --format=festival "
    "(the same sentences in two voices), utterance otherwise.",
)
flags.DEFINE_string(
    "split_file", None,
    "TSV of 'KEY<TAB>train|valid|test' lines: fixed splits instead of the hashed fractions "
    "(KEY: an utterance id, or with --split_by=sentence an ID without SPK/). Utterances whose "
    "key is not listed are left out; a listed key without utterances is an error.",
)
flags.DEFINE_enum(
    "festival_sentences", "builtin", list(festival_corpus.SENTENCE_SETS),
    "--format=festival: 'builtin' = data_prep/sentences.txt (290 sentences); 'all' = those + "
    "data_prep/sentences_extra.txt (2,600 from Debian's fortunes), the built-in ones keeping "
    "their 'builtin' split (held-out sentences stay held out), the extra ones all in train; "
    "cached in ~/.cache/tts-gan/festival_corpus_all.",
)
flags.DEFINE_float("valid_fraction", 0.05, "Fraction of utterances (sentences) in the valid split.")
flags.DEFINE_float("test_fraction", 0.05, "Fraction of utterances (sentences) in the test split.")
flags.DEFINE_integer("utterances_per_shard", 64, "Utterances per TFRecord shard.")
flags.DEFINE_enum("compression", "", ["", "GZIP"], "TFRecord compression.")
flags.DEFINE_float(
    "max_length_mismatch_ms", 50.0, "Allowed |label (or feature) end - audio end|."
)
flags.DEFINE_bool("downmix", False, "Average multi-channel audio instead of rejecting it.")
flags.DEFINE_enum("f0_method", "dio", ["dio", "harvest"], "pyworld F0 estimator.")
flags.DEFINE_integer(
    "frontend_version", None, "How labels become features (tts_gan.frontend.features): default "
    "the current version; an older one (1) to continue training a model whose features were "
    "computed with it (its export's assets/manifest.json: frontend_version, null = 1).",
)
flags.DEFINE_integer(
    "max_utterances", 0, "Use at most this many utterances (0 = all). For festival: renders "
    "ceil(N / voices) sentences per voice.",
)
flags.DEFINE_bool("progress", True, "Show progress bars.")


def default_split_by(fmt: str) -> str:
    """``sentence`` for the built-in corpus (each sentence in two voices), else ``utterance``."""
    return "sentence" if fmt == "festival" else "utterance"


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.format is None or FLAGS.output_dir is None:
        raise app.UsageError("--format and --output_dir are required")
    fmt = FLAGS.format
    split_by = FLAGS.split_by or default_split_by(fmt)
    corpus_dir = FLAGS.corpus_dir
    max_utts = FLAGS.max_utterances
    if (fmt == "festival" and FLAGS.festival_sentences == "all" and not FLAGS.split_file
            and split_by != "sentence"):
        raise app.UsageError("--festival_sentences=all splits by sentence (the built-in "
                             "held-out sentences in both voices), or give --split_file")
    only_ids: list[str] | None = None
    fixed: dict[str, str] | None = None
    fixed_source = ""
    try:
        if fmt == "festival":
            which = FLAGS.festival_sentences
            corpus_dir = corpus_dir or festival_corpus.default_cache_dir(which)
            sentences = festival_corpus.corpus_sentences(which)
            if max_utts:
                sentences = sentences[: math.ceil(max_utts / len(festival_corpus.VOICES))]
            festival_corpus.render_corpus(corpus_dir, sentences, workers=FLAGS.workers,
                                          progress=FLAGS.progress)
            only_ids = [uid for uid, _ in sentences]
            if which == "all" and not FLAGS.split_file:
                fixed = festival_corpus.festival_splits(
                    only_ids, FLAGS.seed, FLAGS.valid_fraction, FLAGS.test_fraction)
                fixed_source = (
                    "--festival_sentences=all: the split of data_prep/sentences.txt drawn "
                    f"with seed {FLAGS.seed} (valid {FLAGS.valid_fraction:g}, test "
                    f"{FLAGS.test_fraction:g}), every sentences_extra.txt sentence train")
            fmt, max_utts = "hts", 0
        elif FLAGS.festival_sentences != "builtin":
            raise app.UsageError("--festival_sentences is for --format=festival")
        elif corpus_dir is None:
            raise app.UsageError(f"--corpus_dir is required for --format={fmt}")
        cfg = pipeline.PrepConfig(
            fmt=fmt,
            corpus_dir=corpus_dir,
            output_dir=FLAGS.output_dir,
            question_file=FLAGS.question_file,
            workers=FLAGS.workers,
            strict=FLAGS.strict,
            window_frames=FLAGS.window_frames,
            hop_frames=FLAGS.hop_frames or None,
            seed=FLAGS.seed,
            valid_fraction=FLAGS.valid_fraction,
            test_fraction=FLAGS.test_fraction,
            utterances_per_shard=FLAGS.utterances_per_shard,
            compression=FLAGS.compression,
            max_length_mismatch_ms=FLAGS.max_length_mismatch_ms,
            downmix=FLAGS.downmix,
            f0_method=FLAGS.f0_method,
            frontend_version=(pipeline.FRONTEND_VERSION if FLAGS.frontend_version is None
                              else FLAGS.frontend_version),
            max_utterances=max_utts,
            split_by=split_by,
            split_file=FLAGS.split_file,
            fixed_splits=fixed,
            fixed_splits_source=fixed_source,
            only_ids=only_ids,
            command=shlex.join(["tts-gan-prep", *sys.argv[1:]]),
            progress=FLAGS.progress,
        )
        m = pipeline.run_prep(cfg)
    except (pipeline.PrepError, festival_corpus.FestivalError,
            festival_corpus.SentenceFileError) as e:
        print(f"tts-gan-prep: error: {e}", file=sys.stderr)
        return 1
    c = m.counts
    print(
        f"tts-gan-prep: wrote {FLAGS.output_dir}: D={m.feature_dim}, speakers={m.num_speakers}, "
        + ", ".join(
            f"{s}: {c[s]['utterances']} utts / {c[s]['windows']} windows"
            f" / {m.hours.get(s, 0):.3f} h"
            for s in schema.SPLITS
        )
        + f", rejected {m.rejected}"
        + empty_splits_note(m)
    )
    return 0


def empty_splits_note(m: schema.Manifest) -> str:
    """A note for the summary line when valid or test is empty although asked for."""
    sp = m.extra.get("splits", {})
    if sp.get("fixed"):
        return ""  # the splits were given, not drawn
    empty = [s for s in ("valid", "test")
             if (sp.get(f"{s}_fraction") or 0) > 0 and m.counts[s]["utterances"] == 0]
    if not empty:
        return ""
    keys = sp.get("keys", "?")
    unit = "sentence" if sp.get("split_by") == "sentence" else "utterance"
    return (f"; {' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: "
            f"{keys} usable {unit}{'' if keys == 1 else 's'} (valid and test take one each "
            "from 3 on; train keeps at least one)")


def run() -> None:
    """Console-script entry point (``tts-gan-prep``)."""
    run_main(main, __name__)


if __name__ == "__main__":
    run()

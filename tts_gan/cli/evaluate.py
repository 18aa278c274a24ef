"""`tts-gan-eval`: Table 1 of the paper for an exported generator (§4, App. B).

    tts-gan-eval --export_dir=EXPORT --data_dir=DATA [--num_samples=10000] [--split=test]
                 [--features=default | dnsmos | logmel | deepspeech2:CKPT | savedmodel:PATH]
                 [--corpus_dir=CORPUS] [--quality_max_per_speaker=0] [--noquality]
                 [--output_json=R.json]
    tts-gan-eval --real_features=R.npy --fake_features=F.npy [--features=NAME]

Distances (App. B.3, as the authors' released code computes them): FD and cFD are the mean ±
std over 5 splits of the N samples; KD and cKD the unbiased cubic-polynomial MMD² averaged
over ⌈N/1024⌉ blocks ± standard error, printed ×10⁵. The natural-speech row compares the first
N real windows with the last N. The 2N real windows are a seeded sample balanced over
speakers, the halves with the same speaker mix. ``--features=default`` (DNSMOS P.808's last
conv layer, shipped in the ``speechmos`` package) runs offline but its numbers (FD-dnsmos …)
are not comparable with the paper's; ``deepspeech2:CKPT`` with OpenSeq2Seq's ds2_large
checkpoint gives the paper's FDSD, cFDSD, KDSD, cKDSD; ``logmel`` is a hand-made feature;
``savedmodel:PATH`` takes any per-window feature map. Unless ``--noquality``, predicted MOS
(DNSMOS P.808, P.835 SIG/BAK/OVRL: an automatic stand-in for the paper's MOS) and the word
error rate of pocketsphinx are measured on held-out utterances of ``--corpus_dir`` (their
recordings, and the model resynthesising them).

With ``--real_features`` (2N rows, the first N with the fakes' conditioning) and
``--fake_features`` (N rows) the four distances are computed from precomputed features of any
source; ``--save_features=PREFIX`` writes this run's as PREFIX.real.npy / PREFIX.generated.npy.
"""

from __future__ import annotations

import sys

from absl import app, flags

from tts_gan.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "tts-gan-export output (base or version directory).")
flags.DEFINE_string("data_dir", None, "tts-gan-prep output directory.")
flags.DEFINE_string("split", "test", "Split whose 2-s windows are the real samples.")
flags.DEFINE_integer("num_samples", 10000, "N of App. B.3 (the paper: 10,000); fewer if the "
                     "split has fewer than 2N windows.")
flags.DEFINE_string("features", "default", "Extractor: default (= dnsmos), logmel, "
                    "deepspeech2:CHECKPOINT or savedmodel:PATH.")
flags.DEFINE_enum("ds2_input", "clip", ["clip", "window"], "deepspeech2 only: 'clip' runs "
                  "the 2-s clip's 199 Eq.-4 windows as one spectrogram sequence (the released "
                  "code); 'window' runs each 20-ms window alone (Eq. 4 read literally).")
flags.DEFINE_integer("threads", 0, "Intra-op threads of the extractor (0: its default).")
flags.DEFINE_integer("seed", 0, "Seed of the window sample and of the first z (z_i: seed + i).")
flags.DEFINE_integer("batch_size", 8, "Windows per synthesis / extraction batch.")
flags.DEFINE_bool("quality", True, "Also measure DNSMOS and WER on held-out utterances.")
flags.DEFINE_string("corpus_dir", None, "Corpus the data was prepared from (wav/SPK/ID.wav, "
                    "text/SPK/ID.txt); default: the built-in Festival corpus cache.")
flags.DEFINE_integer("quality_max_per_speaker", 0, "At most this many held-out utterances "
                     "per speaker for DNSMOS / WER (0: all).")
flags.DEFINE_string("real_features", None, "Precomputed real representations (.npy, 2N rows).")
flags.DEFINE_string("fake_features", None, "Precomputed generated representations (.npy, N).")
flags.DEFINE_string("save_features", None, "Write this run's representations as "
                    "PREFIX.real.npy and PREFIX.generated.npy.")
flags.DEFINE_bool("progress", True, "Progress bar on stderr during extraction.")
flags.DEFINE_string("output_json", None, "Also write the report here.")


def _precomputed() -> dict:
    from tts_gan import evaluation, extractors

    for name in ("real_features", "fake_features"):
        if not FLAGS[name].value:
            raise evaluation.EvaluationError(f"--{name} is required with "
                                             "--real_features / --fake_features")
    real = evaluation.load_features(FLAGS.real_features, "real_features")
    fake = evaluation.load_features(FLAGS.fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise evaluation.EvaluationError(
            f"--real_features={FLAGS.real_features} has {real.shape[1]} columns but "
            f"--fake_features={FLAGS.fake_features} has {fake.shape[1]}")
    if len(real) != 2 * len(fake):
        raise evaluation.EvaluationError(
            f"--real_features={FLAGS.real_features} has {len(real)} rows; expected 2N = "
            f"{2 * len(fake)} for the N = {len(fake)} rows of --fake_features (the first N "
            "with the fakes' conditioning, then N with independent conditioning)")
    label = FLAGS.features if FLAGS["features"].present else "precomputed"
    names = extractors.metric_names("dnsmos" if label == "default" else label.split(":")[0])
    report = evaluation.evaluate_features(real, fake, names)
    report["extractor"] = {"name": label, "real_features": FLAGS.real_features,
                           "fake_features": FLAGS.fake_features}
    return report


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from tts_gan import evaluation

    precomputed = bool(FLAGS.real_features or FLAGS.fake_features)
    if not precomputed:
        for name in ("export_dir", "data_dir"):
            if not FLAGS[name].value:
                raise app.UsageError(f"--{name} is required (or give --real_features and "
                                     "--fake_features)")
    if FLAGS.num_samples < 2 or FLAGS.batch_size < 1:
        raise app.UsageError("--num_samples must be ≥ 2 and --batch_size ≥ 1")
    try:
        if precomputed:
            report = _precomputed()
        else:
            from tts_gan import extractors
            from tts_gan.corpus_cache import default_cache_dir

            corpus = FLAGS.corpus_dir or default_cache_dir()
            extractor = extractors.make(FLAGS.features, threads=FLAGS.threads,
                                        ds2_input=FLAGS.ds2_input)
            report = evaluation.evaluate(
                FLAGS.export_dir, FLAGS.data_dir, extractor, num_samples=FLAGS.num_samples,
                split=FLAGS.split, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
                progress=FLAGS.progress, quality=FLAGS.quality, corpus_dir=corpus,
                quality_max_per_speaker=FLAGS.quality_max_per_speaker,
                features_out=FLAGS.save_features)
    except (OSError, ValueError, ImportError) as e:
        print(f"tts-gan-eval: {e}", file=sys.stderr)
        return 1
    print(evaluation.format_table(report))
    if FLAGS.output_json:
        import tensorflow as tf

        try:
            evaluation.write_report(FLAGS.output_json, report)
        except (OSError, tf.errors.OpError) as e:
            why = e.message if isinstance(e, tf.errors.OpError) else e
            print(f"tts-gan-eval: --output_json={FLAGS.output_json}: cannot write it ({why})",
                  file=sys.stderr)
            return 1
    return 0


def run() -> None:
    run_main(main, __name__)


if __name__ == "__main__":
    run()

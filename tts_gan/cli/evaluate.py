"""`tts-gan-eval`: FDSD, cFDSD, KDSD, cKDSD (§4.2, App. B) of an exported generator.

    tts-gan-eval --export_dir=EXPORT --data_dir=DATA [--num_samples=256] [--split=test]
                 [--features=logmel | --features=savedmodel:/path/to/deepspeech2_features]

``savedmodel:PATH`` is the paper's metric when PATH is DeepSpeech2 (OpenSeq2Seq, with its
preprocessing) exported as a SavedModel mapping float32 [n, 480] windows of 24-kHz audio to the
1600-dim ``ForwardPass/ds2_encoder/Reshape_2:0`` features. ``logmel`` needs no weights but is a
different feature space: its distances are reported as FD-logmel / KD-logmel, not as DSD.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from absl import app, flags

from tts_gan.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "tts-gan-export output (base or version directory).")
flags.DEFINE_string("data_dir", None, "tts-gan-prep output directory.")
flags.DEFINE_string("split", "test", "Split whose 2-s windows are the real samples.")
flags.DEFINE_integer("num_samples", 256, "N of App. B.3 (the paper: 10,000).")
flags.DEFINE_string("features", "logmel", "Feature map f: 'logmel' or 'savedmodel:PATH'.")
flags.DEFINE_integer("seed", 0, "First z seed.")
flags.DEFINE_integer("batch_size", 8, "Synthesis batch size.")
flags.DEFINE_string("output_json", None, "Also write the results here.")


def _feature_map(spec: str):
    from tts_gan import metrics

    if spec == "logmel":
        return metrics.LogMelFeatures(), "-logmel"
    if spec.startswith("savedmodel:"):
        return metrics.SavedModelFeatures(spec.split(":", 1)[1]), "DSD"
    raise app.UsageError(f"--features={spec!r}: expected 'logmel' or 'savedmodel:PATH'")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    for name in ("export_dir", "data_dir"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    from tts_gan import evaluation

    try:
        fmap, prefix = _feature_map(FLAGS.features)
        result = evaluation.evaluate(FLAGS.export_dir, FLAGS.data_dir, fmap,
                                     num_samples=FLAGS.num_samples, split=FLAGS.split,
                                     seed=FLAGS.seed, batch_size=FLAGS.batch_size, prefix=prefix)
    except (OSError, ValueError) as e:
        print(f"tts-gan-eval: {e}", file=sys.stderr)
        return 1
    for key, value in result.items():
        print(f"{key:>14s} = {value:.6g}")
    if FLAGS.output_json:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(FLAGS.output_json)))
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=2)
        os.replace(tmp, FLAGS.output_json)
    return 0


def run() -> None:
    run_main(main, __name__)


if __name__ == "__main__":
    run()

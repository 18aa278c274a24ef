"""``python -m tts_gan.quantize``: TFLite variants of an exported version (the flags; the work
is :func:`tts_gan.quantize.write_variants`, whose module docstring describes it)."""

from __future__ import annotations

import json
import sys

from absl import app, flags

from tts_gan.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "The exported version (or export base: its highest).")
flags.DEFINE_list("variants", ["float16", "dynamic_int8", "int8"],
                  "TFLite variants to write: float32, float16, dynamic_int8, int8.")
flags.DEFINE_string("data_dir", None, "tts-gan-prep output whose training utterances "
                    "calibrate int8 (needed for int8 only).")
flags.DEFINE_integer("calibration_windows", 64, "int8: windows of training features.")
flags.DEFINE_integer("calibration_frames", 400, "int8: frames per calibration window (2 s).")
flags.DEFINE_integer("seed", 0, "int8: the choice of windows and their z.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.export_dir:
        raise app.UsageError("--export_dir is required")
    from tts_gan import export, schema
    from tts_gan.quantize import QuantizeError, write_variants

    try:
        path = export.latest_version_dir(FLAGS.export_dir.rstrip("/"))
        sizes = write_variants(path, FLAGS.variants, FLAGS.data_dir,
                               FLAGS.calibration_windows, FLAGS.calibration_frames, FLAGS.seed)
    except (QuantizeError, export.ExportError, schema.ManifestError) as e:
        print(f"quantize: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"export": path, "bytes": sizes}))
    return 0


def run() -> None:
    run_main(main, __name__)


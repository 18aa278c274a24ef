"""`tts-gan-train`: GAN-TTS training as in App. D, on one device, several, or a TPU pod.

    tts-gan-train --config=experiments/gan_tts.py --data_dir=DATA --model_dir=MODEL \\
        [--strategy=default|one_device|mirrored|multi_worker|tpu] [--tpu=NAME] [--xla] \\
        [--max_steps=N] [--log_every=N] [--save_every=N] [--eval_every=N] \\
        [--steps_per_loop=K] \\
        [--init_checkpoint=PREFIX] [--config.train.global_batch_size=64 ...]
    tts-gan-train --config=... --data_dir=DATA --model_dir=MODEL --write_weights=PREFIX

Rerunning with the same ``--model_dir`` resumes from the latest checkpoint.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from tts_gan.cli import run_main  # noqa: E402

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "experiments", "gan_tts.py")

config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG, "Experiment config file (experiments/*.py); override fields with "
    "--config.train.global_batch_size=64 etc.", lock_config=True)
flags.DEFINE_string("data_dir", None, "Prepared data directory (tts-gan-prep --output_dir); "
                    "default: config.data.data_dir.")
flags.DEFINE_string("model_dir", None, "Checkpoints, config.json, manifest.json and TensorBoard "
                    "summaries (train/) go here; rerun to resume.")
flags.DEFINE_enum("strategy", "default",
                  ["default", "one_device", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy (multi_worker reads TF_CONFIG).")
flags.DEFINE_string("tpu", "", "TPU name / grpc address for --strategy=tpu ('local' on a TPU VM).")
flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into this many logical devices (so that "
                     "--strategy=mirrored has several replicas without GPUs; testing).")
flags.DEFINE_bool("xla", False, "Compile the per-replica train step with jit_compile=True.")
flags.DEFINE_integer("max_steps", None, "Overrides config.train.max_steps.")
flags.DEFINE_integer("log_every", None, "Overrides config.train.log_every.")
flags.DEFINE_integer("save_every", None, "Overrides config.train.save_every.")
flags.DEFINE_integer("eval_every", None, "Overrides config.train.eval_every.")
flags.DEFINE_integer("steps_per_loop", None, "Overrides config.train.steps_per_loop: train "
                     "steps per tf.function call, metrics fetched only every log_every steps "
                     "(1 on CPU; e.g. 100 on a TPU).")
flags.DEFINE_integer("eval_distance_samples", None, "Overrides config.train."
                     "eval_distance_samples: every eval_every steps, log cFD/cKD of G_ema "
                     "against this many valid windows with the default extractor (Fig. 4).")
flags.DEFINE_string("init_checkpoint", None, "Start a new --model_dir from these weights and "
                    "step (a --write_weights checkpoint; optimizers start afresh).")
flags.DEFINE_string("write_weights", None, "Write --model_dir's latest checkpoint's step and G, "
                    "G_ema, D weights (no optimizer state) to this checkpoint prefix and exit.")
flags.mark_flag_as_required("model_dir")

FLAGS = flags.FLAGS


def _fail(msg: str) -> int:
    print(f"tts-gan-train: error: {msg}", file=sys.stderr, flush=True)
    return 2


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from tts_gan import strategy as strategy_lib  # TensorFlow is imported here

    try:
        strategy_lib.configure_cpu_replicas(FLAGS.cpu_replicas)
        strategy = strategy_lib.make_strategy(FLAGS.strategy, tpu=FLAGS.tpu)
    except strategy_lib.StrategyError as e:
        return _fail(str(e))

    from tts_gan import schema, train_lib

    config = FLAGS.config
    with config.unlocked():
        if FLAGS.data_dir:
            config.data.data_dir = FLAGS.data_dir
        for name in ("max_steps", "log_every", "save_every", "eval_every",
                     "eval_distance_samples", "steps_per_loop"):
            value = getattr(FLAGS, name)
            if value is not None:
                config.train[name] = value
    try:
        if FLAGS.write_weights:
            path = train_lib.write_latest_weights(FLAGS.model_dir, FLAGS.write_weights,
                                                  strategy)
            print(f"wrote {path}", flush=True)
            return 0
        train_lib.train(config, FLAGS.model_dir, strategy, xla=FLAGS.xla,
                        init_checkpoint=FLAGS.init_checkpoint)
    except train_lib.NonFiniteLossError as e:
        return _fail(str(e))
    except (schema.ManifestError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    return 0


def run() -> None:
    run_main(main, __name__)

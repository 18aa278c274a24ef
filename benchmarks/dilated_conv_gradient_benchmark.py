"""Benchmark (not a test): train-step speed with each dilated-conv gradient formulation (#26).

    TF_ENABLE_ONEDNN_OPTS=1 .venv/bin/python benchmarks/dilated_conv_gradient_benchmark.py \
        [--configs=tiny,small] [--steps=5] [--rounds=3]

For each config, one GANTrainer per formulation of tts_gan.layers.dilated_conv1d's gradient
("native": TF's dilated Conv2DBackprop*, oneDNN only; "space_to_batch": the custom gradient),
both in this process on the same fixed batch (train_benchmark.synthetic_batch), traced once;
then an untimed warm-up round and ``--rounds`` rounds, the formulations interleaved, each
timing ``--steps`` train steps.
Prints the median and best seconds per step. With oneDNN off only "space_to_batch" runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import tensorflow as tf
from train_benchmark import get_config, synthetic_batch  # benchmarks/ (script dir on sys.path)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tts_gan import layers, train_lib  # noqa: E402


def trainer_for(name: str, mode: str, batch: dict) -> train_lib.GANTrainer:
    config = get_config(name)
    config.generator.num_speakers = 1
    os.environ[layers.DILATED_CONV_GRADIENT_ENV] = mode  # read when the step is traced
    tf.keras.utils.set_random_seed(0)
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(),
                              config.generator.feature_dim, 1)
    for s in range(2):  # trace + warm up
        tr.train_step(batch, s)
    return tr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="tiny,small")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with open("/proc/loadavg") as f:
        print(f"oneDNN {'on' if layers.onednn_enabled() else 'off'}; load average "
              f"{' '.join(f.read().split()[:3])}", flush=True)
    modes = ["native", "space_to_batch"] if layers.onednn_enabled() else ["space_to_batch"]
    for name in args.configs.split(","):
        config = get_config(name)
        batch = synthetic_batch(config, config.generator.feature_dim)
        trainers = {m: trainer_for(name, m, batch) for m in modes}
        times = {m: [] for m in modes}
        for r in range(args.rounds + 1):  # round 0: untimed warm-up (lazy first-call work)
            for m, tr in trainers.items():
                t = time.perf_counter()
                for s in range(args.steps):
                    tr.train_step(batch, 2 + s)
                if r:
                    times[m].append((time.perf_counter() - t) / args.steps)
        for m in modes:
            print(f"{name:6s} {m:15s} s/step median {statistics.median(times[m]):.3f} "
                  f"best {min(times[m]):.3f}  rounds {[round(x, 3) for x in times[m]]}",
                  flush=True)
    with open("/proc/loadavg") as f:
        print(f"load average after {' '.join(f.read().split()[:3])}")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()

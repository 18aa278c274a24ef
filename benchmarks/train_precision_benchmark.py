"""Steps/s and early loss of a config's train step in float32, mixed bfloat16 and float32 + XLA
on real training windows: which numeric format a CPU recipe should train in.

Usage: python benchmarks/train_precision_benchmark.py --config=cpu_sine_mel --data_dir=out/data
           [--steps=20] [--warmup=5] [--variants=fp32,mixed_bfloat16,xla] [--append]

Each variant runs in a fresh process (Keras dtype policies and traced functions do not leak), from
the same seeded initialisation and the same first training batch (``make_train_dataset_fn``,
seed 0), for warmup + steps steps at step numbers 100…; steps/s is timed over the last ``steps``.
The loss columns are the step's metrics after the last step (G-only before ``d_start_step``).
Stop other work on the machine first (a training run: ``kill -STOP``, then ``kill -CONT``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(config_name: str, data_dir: str, variant: str, steps: int, warmup: int) -> dict:
    """One variant in this process: {"steps_per_sec": …, metric: value, …}."""
    import tensorflow as tf

    sys.path.insert(0, os.path.dirname(HERE))
    from experiments import get_config
    from tts_gan import schema, train_lib

    config = train_lib.resolve_config(get_config(config_name), data_dir)
    config.train.mixed_precision = "mixed_bfloat16" if variant == "mixed_bfloat16" else ""
    manifest = schema.load_manifest(data_dir)
    strategy = tf.distribute.get_strategy()
    trainer = train_lib.GANTrainer(config, strategy, manifest.feature_dim,
                                   max(manifest.num_speakers, 1), xla=variant == "xla")
    dist = strategy.distribute_datasets_from_function(
        train_lib.make_train_dataset_fn(config, data_dir, 0))
    batch = next(iter(dist))
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        metrics = trainer.scalar_metrics(trainer.train_step(batch, 100 + i))
    out = {"steps_per_sec": steps / (time.perf_counter() - t0)}
    out.update({k: v for k, v in metrics.items() if k == "g_loss" or k.startswith("aux/")})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="cpu_sine_mel")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--variants", default="fp32,mixed_bfloat16,xla")
    p.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(measure(args.config, args.data_dir, args.one, args.steps,
                                              args.warmup)), flush=True)
        return
    from machine import command, cpu_model, publish

    load = os.getloadavg()[0]
    rows = {}
    for variant in args.variants.split(","):
        out = subprocess.run(
            [sys.executable, __file__, f"--config={args.config}", f"--data_dir={args.data_dir}",
             f"--steps={args.steps}", f"--warmup={args.warmup}", f"--one={variant}"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).stdout
        rows[variant] = json.loads(out.split("RESULT ", 1)[1])
    keys = sorted({k for r in rows.values() for k in r if k != "steps_per_sec"})
    lines = [f"\n## Train-step numeric format, `{args.config}` — {datetime.date.today()}\n",
             f"Machine: nproc={os.cpu_count()}, {cpu_model()}; 1-min load {load:.2f} at the "
             f"start. Command: `{command('train_precision_benchmark.py')}`. {args.steps} steps "
             f"after {args.warmup} warm-up on "
             "one real training batch, same initialisation.\n",
             "| variant | steps/s | " + " | ".join(keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for v, r in rows.items():
        lines.append(f"| {v} | {r['steps_per_sec']:.2f} | "
                     + " | ".join(f"{r.get(k, float('nan')):.4g}" for k in keys) + " |")
    publish(lines, args.append)


if __name__ == "__main__":
    main()

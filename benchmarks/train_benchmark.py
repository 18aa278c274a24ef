"""Benchmark (not a test): speed of the App.-D train step (D step + G step + EMA) on this machine.

    .venv/bin/python benchmarks/train_benchmark.py [--configs=tiny,small] [--steps=N] [--xla]
        [--append]
    .venv/bin/python benchmarks/train_benchmark.py --steps_per_loop=1,20 --steps=40 [--append]

For each config: steps/s and examples/s of ``GANTrainer.train_step`` (default strategy, a fixed
in-memory batch, after 2 warm-up steps), and the achieved GFLOP/s of the step's model FLOPs,
next to the machine's measured fp32 matmul / Conv1D ceiling (measured in the same run).

Model FLOPs per step = 4·G(B) + 8·D(B), with G(B), D(B) the forward FLOPs (Conv + MatMul, from
``tf.profiler``) of the generator and the RWD ensemble at the global batch B: the D step runs G
forward once and D forward + backward (≈ 3× forward) on real and fake (2B); the G step runs G
forward + backward (3×) and D forward + input-gradient backward (2×) on B.

``small`` is ``experiments/small.py`` (the paper's structure at a quarter of the channels,
G: 192…24, D: 16/32/64, the full RWD* ensemble: 10 RWDs, ω = 240; 567-dim features) timed at
2-s windows and batch 8.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np
import tensorflow as tf
from machine import RESULTS, cpu_model, publish  # benchmarks/machine.py (script dir on sys.path)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import experiments  # noqa: E402
from tts_gan import complexity, train_lib  # noqa: E402


def small_config():
    """experiments/small.py at the shapes this benchmark has always timed: 2-s windows, batch 8."""
    c = experiments.get_config("small")
    c.data.window_frames = 400
    c.train.global_batch_size = 8
    return c


def get_config(name: str):
    return small_config() if name == "small" else experiments.get_config(name)


def timed(fn, reps: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def ceilings() -> dict[str, float]:
    """Measured fp32 GFLOP/s of a large matmul and of a generator-shaped Conv1D."""
    out = {}
    for n in (2048, 4096):
        a = tf.random.normal([n, n])
        f = tf.function(lambda a=a: tf.matmul(a, a))
        out[f"matmul {n}²"] = 2 * n**3 / timed(lambda f=f: f().numpy(), 3) / 1e9
    for b, t, c in ((8, 9600, 192), (8, 48000, 24)):
        x, w = tf.random.normal([b, t, c]), tf.random.normal([3, c, c])
        f = tf.function(lambda x=x, w=w: tf.nn.conv1d(x, w, 1, "SAME"))
        out[f"conv1d k3 {b}×{t}×{c}"] = 2 * 3 * c * c * b * t / timed(
            lambda f=f: f().numpy(), 3) / 1e9
    return out


def forward_flops(trainer: train_lib.GANTrainer, batch: dict) -> tuple[float, float]:
    """(G, D) forward FLOPs (Conv + MatMul ops, tf.profiler) at this batch, training mode."""
    g, d = trainer.G, trainer.D
    z = tf.zeros([batch["features"].shape[0], g.noise_dim])
    fn_g = tf.function(lambda f, z: g(f, z, training=True)).get_concrete_function(
        tf.TensorSpec(batch["features"].shape), tf.TensorSpec(z.shape))
    fn_d = tf.function(lambda a, f: d(a, f, seed=tf.constant([1, 2]), training=True)
                       ).get_concrete_function(tf.TensorSpec(batch["audio"].shape),
                                               tf.TensorSpec(batch["features"].shape))

    def total(fn):
        ops = complexity.profiled_float_ops(fn)
        return float(sum(v for k, v in ops.items() if k.startswith(("Conv", "MatMul"))))

    return total(fn_g), total(fn_d)


def step_flops(trainer: train_lib.GANTrainer, batch: dict) -> tuple[float, float]:
    """(model FLOPs of one train step = 4·G(B) + 8·D(B), of which G's share 4·G(B))."""
    g_flops, d_flops = forward_flops(trainer, batch)
    return 4 * g_flops + 8 * d_flops, 4 * g_flops


def synthetic_batch(config, feature_dim: int, seed: int = 0) -> dict[str, tf.Tensor]:
    """A fixed random global batch in the train step's input format (one speaker)."""
    gb = int(config.train.global_batch_size)
    frames = int(config.data.window_frames)
    rng = np.random.default_rng(seed)
    return {"audio": tf.constant(rng.uniform(-0.5, 0.5, [
                gb, frames * int(config.data.samples_per_frame)]), tf.float32),
            "features": tf.constant(rng.standard_normal([gb, frames, feature_dim]), tf.float32),
            "speaker": tf.zeros([gb], tf.int32)}


def bench(name: str, steps: int, xla: bool) -> dict:
    config = get_config(name)
    feature_dim = config.generator.feature_dim
    config.generator.num_speakers = 1
    gb = int(config.train.global_batch_size)
    frames = int(config.data.window_frames)
    batch = synthetic_batch(config, feature_dim)
    t0 = time.perf_counter()
    trainer = train_lib.GANTrainer(config, tf.distribute.get_strategy(), feature_dim, 1, xla=xla)
    trainer.train_step(batch, 0)
    first = time.perf_counter() - t0
    trainer.train_step(batch, 1)
    t = time.perf_counter()
    for s in range(steps):
        m = trainer.train_step(batch, 2 + s)
    dt = (time.perf_counter() - t) / steps
    assert all(np.all(np.isfinite(v)) for v in m.values())
    flops, g_part = step_flops(trainer, batch)
    return dict(config=name + (" (XLA)" if xla else ""), batch=gb, frames=frames,
                rwds=len(trainer.rwd_names), steps_per_sec=1 / dt, examples_per_sec=gb / dt,
                audio_sec_per_sec=gb * frames / 200 / dt, gflop_step=flops / 1e9,
                gflops=flops / dt / 1e9, first_step_s=first, g_share=g_part / flops)


def bench_loop(name: str, ks: list[int], steps: int, reps: int) -> list[dict]:
    """steps/s of the training loop's device calls (:meth:`GANTrainer.run_steps`) with K steps
    per ``tf.function`` call, metrics summed on the device and fetched once per ``steps``
    (train()'s ``log_every``), next to ``train_step`` (NumPy metrics every step, the loop
    before #17). Input: the fixed batch repeated by tf.data. Best of ``reps`` rounds, the
    variants interleaved (the machine is shared)."""
    config = get_config(name)
    feature_dim = config.generator.feature_dim
    batch = synthetic_batch(config, feature_dim)
    trainer = train_lib.GANTrainer(config, tf.distribute.get_strategy(), feature_dim, 1)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    step = 0

    def run(k: int) -> float:
        nonlocal step
        t = time.perf_counter()
        if k == 0:  # train_step: one call and one device→host fetch per step
            for _ in range(steps):
                m = trainer.train_step(next(iterator), step)
                step += 1
            assert all(np.all(np.isfinite(v)) for v in m.values())
        else:
            sums = count = bad = None
            for _ in range(steps // k):
                sums, count, bad = trainer.run_steps(iterator, step, k, sums, count, bad)
                step += k
            assert int(bad.numpy()) < 0 and int(count.numpy()) == steps  # the fetch
        return steps / (time.perf_counter() - t)

    t0 = time.perf_counter()  # trace and warm up: one step each way (n is a tensor: one trace)
    trainer.train_step(next(iterator), 0)
    trainer.run_steps(iterator, 1, 1)[2].numpy()
    first = time.perf_counter() - t0
    best = {k: 0.0 for k in [0, *ks]}
    for _ in range(reps):
        for k in best:
            best[k] = max(best[k], run(k))
    return [dict(config=name, batch=int(config.train.global_batch_size),
                 frames=int(config.data.window_frames),
                 variant="train_step (fetch every step)" if k == 0 else f"run_steps K = {k}",
                 steps_per_sec=v, vs=v / best[0], warmup_s=first) for k, v in best.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="tiny,small")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    p.add_argument("--append", action="store_true", help=f"append the table to {RESULTS}")
    p.add_argument("--steps_per_loop", default="",
                   help="e.g. 1,20: time the training loop's device calls with K steps per "
                        "tf.function call instead (--steps per round, a multiple of each K)")
    p.add_argument("--reps", type=int, default=2, help="rounds for --steps_per_loop (best)")
    args = p.parse_args()
    if args.steps_per_loop:
        main_loop(args)
        return
    ceil = ceilings()
    rows = []
    for name in args.configs.split(","):
        for xla in ((False, True) if args.xla else (False,)):
            r = bench(name, args.steps, xla)
            print(r, flush=True)
            rows.append(r)
    ceil2 = ceilings()  # again after the runs: the machine is shared
    best = max(max(ceil.values()), max(ceil2.values()))
    lines = [
        f"\n## Training step speed (issue 5) — {datetime.date.today()}\n",
        f"Machine: nproc={os.cpu_count()}, {cpu_model()}, TF {tf.__version__}, shared with "
        "other jobs. Command: `.venv/bin/python benchmarks/train_benchmark.py "
        + " ".join(sys.argv[1:]) + "`. Default strategy, fixed in-memory batch, mean of "
        f"{args.steps} steps after 2 warm-up steps. Model FLOPs/step = 4·G(B) + 8·D(B) "
        "(forward Conv+MatMul FLOPs from tf.profiler; see the script's docstring).\n",
        "| config | batch | frames | RWDs | steps/s | examples/s | audio s/s | GFLOP/step "
        "| GFLOP/s | G share | first step s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['batch']} | {r['frames']} | {r['rwds']} | "
            f"{r['steps_per_sec']:.3f} | {r['examples_per_sec']:.2f} | "
            f"{r['audio_sec_per_sec']:.3f} | {r['gflop_step']:.2f} | {r['gflops']:.1f} | "
            f"{r['g_share']:.0%} | {r['first_step_s']:.0f} |")
    lines.append("\nMeasured ceiling in the same run (GFLOP/s, before / after): " + ", ".join(
        f"{k}: {ceil[k]:.0f} / {ceil2[k]:.0f}" for k in ceil) + f". Best: {best:.0f}.")
    publish(lines, args.append)


def main_loop(args) -> None:
    """The ``--steps_per_loop`` table (#17)."""
    ks = [int(k) for k in args.steps_per_loop.split(",")]
    if any(k < 1 or args.steps % k for k in ks):
        raise SystemExit(f"--steps={args.steps} must be a multiple of every K in {ks}")
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    rows = []
    for name in args.configs.split(","):
        for r in bench_loop(name, ks, args.steps, args.reps):
            print(r, flush=True)
            rows.append(r)
    lines = [
        f"\n## Training loop: K steps per tf.function call (#17) — {datetime.date.today()}\n",
        f"Machine: nproc={os.cpu_count()}, {cpu_model()}, TF {tf.__version__}; load average "
        f"before the run {load}. Command: `.venv/bin/python benchmarks/train_benchmark.py "
        + " ".join(sys.argv[1:]) + f"`. Default strategy, the fixed in-memory batch repeated "
        f"by tf.data, {args.steps} steps per round, best of {args.reps} rounds (variants "
        "interleaved); `run_steps` keeps the metrics on the device and fetches them once per "
        "round (as train() does at log_every), `train_step` fetches NumPy metrics every step "
        "(the loop before #17).\n",
        "| config | batch | frames | variant | steps/s | vs train_step |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {r['batch']} | {r['frames']} | {r['variant']} | "
                     f"{r['steps_per_sec']:.3f} | {r['vs']:.3f} |")
    publish(lines, args.append)


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()

"""Synthesis speed of the Table-2 generator (§5.2: 0.64 MMAC per sample): real-time factor and
achieved GFLOP/s (2 FLOPs per MAC of ``gen.macs_per_sample()``) for 1, 4 and 16 utterances of
mixed lengths; exported SavedModel one-shot vs streaming, and in-process eager vs tf.function
vs XLA. Not a test.

    .venv/bin/python benchmarks/synthesis_benchmark.py [--config=gan_tts] [--repeats=2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import tempfile
import time

import numpy as np
import tensorflow as tf
from machine import cpu_model  # benchmarks/machine.py: the script dir is on sys.path

import experiments
from tts_gan import export, synthesis
from tts_gan.generator import build_and_init, build_generator

LENGTHS_S = (1.0, 1.5, 2.0, 2.5, 3.0)  # cycled: mixed utterance lengths


def utterances(n: int, dim: int) -> list[synthesis.Utterance]:
    rng = np.random.default_rng(n)
    return [synthesis.Utterance(f"u{i}", rng.normal(size=(int(LENGTHS_S[i % 5] * 200), dim))
                                .astype(np.float32)) for i in range(n)]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up / trace / compile
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="gan_tts")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chunk_frames", type=int, default=400)
    ap.add_argument("--counts", default="1,4,16")
    ap.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args()
    cfg = experiments.get_config(args.config)
    gen = build_and_init(build_generator(cfg.generator, 567, 1))
    export.standing_statistics(gen, 1, 1, 100, from_random=True)
    flops_per_sample = 2.0 * gen.macs_per_sample()
    base = tempfile.mkdtemp(prefix="synth-bench-")
    export.export_saved_model(gen, base)
    synth = synthesis.ExportedSynthesizer(base)

    def padded(utts):
        feats, lengths = synthesis.pad_batch([u.features for u in utts])
        return (tf.constant(feats), tf.constant(lengths), tf.zeros([len(utts)], tf.int32),
                tf.random.stateless_normal([len(utts), gen.noise_dim], [1, 2]))

    def call(f, lengths, _spk, z):
        return gen(f, z, lengths=lengths, training=False)

    graph_fn = tf.function(call)
    xla_fn = tf.function(call, jit_compile=True)
    rows = []
    for n in [int(c) for c in args.counts.split(",")]:
        utts = utterances(n, 567)
        audio_s = sum(u.features.shape[0] for u in utts) * 120 / 24000
        batch = padded(utts)
        padded_s = n * int(batch[0].shape[1]) * 120 / 24000
        seeds = list(range(n))
        modes = {
            "export one-shot (SavedModel, batch=n)": lambda u=utts, s=seeds: list(
                synthesis.synthesize_batched(synth, u, s, batch_size=len(u))),
            f"export streaming (chunk {args.chunk_frames})": lambda u=utts, s=seeds: [
                list(synthesis.synthesize_streaming(synth, x, k, args.chunk_frames))
                for x, k in zip(u, s, strict=True)],
            "in-process eager (batch=n)": lambda b=batch: call(*b),
            "in-process tf.function (batch=n)": lambda b=batch: graph_fn(*b),
            "in-process XLA jit_compile (batch=n)": lambda b=batch: xla_fn(*b),
        }
        for name, fn in modes.items():
            secs = timed(fn, args.repeats)
            rows.append((n, name, audio_s, padded_s, secs, audio_s / secs,
                         audio_s * 24000 * flops_per_sample / secs / 1e9))
            print(f"{n:3d} utts {audio_s:6.2f} s audio | {name:40s} {secs:7.3f} s  "
                  f"RTF x{audio_s / secs:5.2f}  {rows[-1][-1]:6.1f} GFLOP/s", flush=True)
    cmd = "cd /work/main && .venv/bin/python benchmarks/synthesis_benchmark.py " + " ".join(
        f"--{k}={v}" for k, v in vars(args).items() if k != "results")
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        "", f"## Synthesis speed ({args.config} generator, issue 6) — "
        f"{datetime.date.today().isoformat()}", "",
        f"Machine: nproc={nproc}, {cpu_model()}, TF {tf.__version__}; shared with other jobs. "
        f"Command: `{cmd}`. Utterance lengths cycle {LENGTHS_S} s; random-init export with "
        f"standing statistics; {gen.macs_per_sample() / 1e6:.3f} MMAC/sample → FLOP/s = "
        "2·MAC·samples/s of *valid* audio (padding and streaming overlap count as overhead). "
        f"Best of {args.repeats} after a warm-up. RTF = audio seconds per wall second.", "",
        "| utts | audio s | padded s | mode | wall s | RTF (×real time) | GFLOP/s |",
        "|---:|---:|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {n} | {a:.2f} | {p:.2f} | {m} | {s:.3f} | {r:.2f} | {g:.1f} |"
              for n, m, a, p, s, r, g in rows]
    with open(args.results, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

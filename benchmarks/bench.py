"""One table of synthesis speed (issue 28): the shipped voice beside the paper-size generator and
HiFi-GAN's V1 and V3 generators, interleaved in one run on this machine. Not a test.

    make bench            # = .venv/bin/python benchmarks/bench.py --append

For each model, batch 1 and 8, and 2-s and 10-s utterances: the median wall time of
``--rounds`` calls after a warm-up, taken round-robin (every model once per round, so slow
drifts of a shared machine's load hit all models alike), × real time = audio seconds / wall
seconds, and the achieved GFLOP/s (2 FLOPs per multiply-accumulate of the model's own count) as a
fraction of this machine's measured float32 ceiling (the best of a 1024² matmul and a 256-channel
conv1d, measured in the same run).

Models: ``pretrained/cpu_harmonic_noise/<latest>`` through its SavedModel ``serving_default``
(as TF Serving runs it); the Table-2 generator (``experiments/gan_tts.py``, random weights,
standing statistics, exported the same way); HiFi-GAN V1 and V3 (``benchmarks/hifigan.py``:
Keras, the released configs' architecture, random weights, a ``tf.function`` on 80-band mels at
22.05 kHz / hop 256). HiFi-GAN runs in TensorFlow here, not PyTorch, so the comparison is between
architectures on one framework's CPU kernels.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import hifigan
import numpy as np
import tensorflow as tf
from machine import command, cpu_model, publish  # benchmarks/ is on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tts_gan.layers import onednn_enabled  # noqa: E402  (the repository root, just added)


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def latest_version(base: str) -> str:
    """``base/<N>`` with the highest N (a TF Serving model base path), or ``base`` itself."""
    versions = [d for d in glob.glob(os.path.join(base, "*")) if os.path.basename(d).isdigit()]
    if not versions:
        if os.path.exists(os.path.join(base, "saved_model.pb")):
            return base
        raise FileNotFoundError(f"{base}: no saved_model.pb and no numbered version directory")
    return max(versions, key=lambda d: int(os.path.basename(d)))


def ceiling_gflops(repeats: int = 5) -> tuple[float, str]:
    """This machine's float32 ceiling as TensorFlow reaches it: the best GFLOP/s of a 1024×1024
    matmul and of a 256→256-channel, kernel-3 conv1d over 8,192 positions."""
    a = tf.random.normal([1024, 1024])
    x = tf.random.normal([1, 8192, 256])
    w = tf.random.normal([3, 256, 256])
    mm = tf.function(lambda: tf.matmul(a, a))
    cv = tf.function(lambda: tf.nn.conv1d(x, w, 1, "SAME"))
    best = {}
    for name, fn, flops in (("matmul 1024²", mm, 2 * 1024 ** 3),
                            ("conv1d 256ch k3", cv, 2 * 8192 * 3 * 256 * 256)):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn().numpy()
            times.append(time.perf_counter() - t)
        best[name] = flops / min(times) / 1e9
    name = max(best, key=best.get)
    return best[name], ", ".join(f"{k} {v:.1f}" for k, v in best.items())


class Case:
    """One timed call: ``fn()`` synthesises ``audio_s`` seconds with ``macs`` MACs."""

    def __init__(self, model: str, batch: int, seconds: float, fn: Callable[[], object],
                 audio_s: float, macs: float):
        self.model, self.batch, self.seconds, self.fn = model, batch, seconds, fn
        self.audio_s, self.macs, self.times = audio_s, macs, []


def saved_model_cases(name: str, path: str, batches: list[int], lengths: list[float],
                      rng: np.random.Generator) -> tuple[list[Case], object]:
    """Cases calling a SavedModel's ``serving_default`` on normal-distributed features (the
    features are normalised; speed does not depend on their values)."""
    model = tf.saved_model.load(path)
    with open(os.path.join(path, "assets", "export_info.json"), encoding="utf-8") as f:
        info = json.load(f)
    sig = model.signatures["serving_default"]
    spf, rate, dim = info["samples_per_frame"], info["sample_rate"], info["feature_dim"]
    cases = []
    for b in batches:
        for s in lengths:
            frames = int(round(s * rate / spf))
            feats = tf.constant(rng.normal(size=(b, frames, dim)).astype(np.float32))
            kw = dict(features=feats, lengths=tf.fill([b], frames), speaker=tf.zeros([b], tf.int32),
                      seed=tf.range(b, dtype=tf.int32))
            cases.append(Case(name, b, s, lambda kw=kw: sig(**kw)["audio"].numpy(),
                              b * frames * spf / rate, b * frames * spf * info["macs_per_sample"]))
    return cases, model


def hifigan_cases(name: str, cfg: hifigan.HiFiGANConfig, batches: list[int],
                  lengths: list[float], rng: np.random.Generator
                  ) -> tuple[list[Case], hifigan.HiFiGANGenerator]:
    """Cases calling a HiFi-GAN generator's ``tf.function`` on normal-distributed mels."""
    gen = hifigan.build(cfg)
    fn = tf.function(lambda mel: gen(mel, training=False))
    rate, cases = 22050, []
    for b in batches:
        for s in lengths:
            frames = int(round(s * rate / cfg.hop))
            mel = tf.constant(rng.normal(size=(b, frames, cfg.num_mels)).astype(np.float32))
            cases.append(Case(name, b, s, lambda m=mel: fn(m).numpy(),
                              b * frames * cfg.hop / rate,
                              b * frames * cfg.hop * hifigan.macs_per_sample(cfg)))
    return cases, gen


def export_paper_generator(base: str) -> str:
    """The Table-2 generator (random weights, standing statistics) exported as TF Serving does."""
    import experiments
    from tts_gan import export
    from tts_gan.generator import build_and_init, build_generator

    cfg = experiments.get_config("gan_tts")
    gen = build_and_init(build_generator(cfg.generator, 567, 1))
    export.standing_statistics(gen, 1, 1, 100, from_random=True)
    return export.export_saved_model(gen, base, tflite=False).path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shipped", default=os.path.join(ROOT, "pretrained", "cpu_harmonic_noise"))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--lengths", default="2,10", help="utterance seconds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="shipped,gan_tts,hifigan_v1,hifigan_v3")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    lengths = [float(s) for s in args.lengths.split(",")]
    wanted = args.models.split(",")
    rng = np.random.default_rng(0)
    load_start = load_average()
    ceiling, ceiling_detail = ceiling_gflops()
    cases, keep = [], []
    if "shipped" in wanted:
        path = latest_version(args.shipped)
        c, m = saved_model_cases(os.path.relpath(path, ROOT), path, batches, lengths, rng)
        cases += c
        keep.append(m)
    if "gan_tts" in wanted:
        path = export_paper_generator(tempfile.mkdtemp(prefix="bench-gan-tts-"))
        c, m = saved_model_cases("Table-2 G (gan_tts, random)", path, batches, lengths, rng)
        cases += c
        keep.append(m)
    for key, cfg in (("hifigan_v1", hifigan.V1), ("hifigan_v3", hifigan.V3)):
        if key in wanted:
            c, m = hifigan_cases(f"HiFi-GAN {key[-2:].upper()} (TF, random)", cfg, batches,
                                 lengths, rng)
            cases += c
            keep.append(m)
    for case in cases:  # warm-up: tracing, oneDNN primitive creation
        case.fn()
    for _ in range(args.rounds):
        for case in cases:
            t = time.perf_counter()
            case.fn()
            case.times.append(time.perf_counter() - t)
    load_end = load_average()
    rows = []
    for c in cases:
        wall = statistics.median(c.times)
        gflops = 2 * c.macs / wall / 1e9
        rows.append((c.model, c.batch, c.seconds, wall, c.audio_s / wall, c.macs / c.audio_s
                     / (22050 if "HiFi" in c.model else 24000) / 1e6, gflops, gflops / ceiling))
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        "", f"## Synthesis speed, shipped voice vs HiFi-GAN (issue 28, `make bench`) — "
        f"{datetime.date.today().isoformat()}", "",
        f"Machine: nproc={nproc}, {cpu_model()}, TF {tf.__version__}, oneDNN "
        f"{'on' if onednn_enabled() else 'off'} (TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}); load "
        f"average (1/5/15 min) {load_start} at the start, {load_end} at the end. Command: "
        f"`{command('bench.py')}`. Median of {args.rounds} calls after a warm-up, models "
        f"round-robin. Ceiling {ceiling:.1f} GFLOP/s float32 ({ceiling_detail}). "
        "× real time = audio s / wall s.", "",
        "| model | batch | utterance s | wall s (median) | × real time | MMAC/sample | "
        "GFLOP/s | of ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {m} | {b} | {s:g} | {w:.3f} | {x:.1f} | {mac:.3f} | {g:.1f} | {f:.0%} |"
              for m, b, s, w, x, mac, g, f in rows]
    publish(lines, args.append)


if __name__ == "__main__":
    main()

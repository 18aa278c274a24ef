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
(as TF Serving runs it), through its TFLite variants (``--tflite``: those the export ships, or
every variant of ``--tflite_export``, e.g. one written by ``python -m tts_gan.quantize``) and
streamed (``synthesis.synthesize_streaming``, 400-frame chunks, batch 1: the exact-state chunks
in sequence); the Table-2 generator (``experiments/gan_tts.py``, random weights,
standing statistics, exported the same way); HiFi-GAN V1 and V3 (``benchmarks/hifigan.py``:
Keras, the released configs' architecture, random weights, a ``tf.function`` on 80-band mels at
22.05 kHz / hop 256). HiFi-GAN runs in TensorFlow here, not PyTorch, so the comparison is between
architectures on one framework's CPU kernels.

First-audio latency (batch 1, in the same rounds): the time until the first 100 ms of an
utterance is available from features, ``synthesize_streaming`` with a 20-frame first chunk (the
phase sum over the utterance, then one ``synthesize_chunk`` call with its receptive-field
context), beside one-shot synthesis of the whole utterance. From text, the front end's share:
``benchmarks/first_audio_latency.py``.
"""

from __future__ import annotations

import argparse
import datetime
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
from tts_gan import export, synthesis  # noqa: E402  (the repository root, just added)
from tts_gan.layers import onednn_enabled  # noqa: E402


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def onednn_label() -> str:
    """Whether oneDNN runs in this process and why (TF 2.21's default without
    TF_ENABLE_ONEDNN_OPTS: on only for CPUs with AVX512_VNNI/AVX512_BF16/AVX_VNNI/AMX)."""
    state = "on" if onednn_enabled() else "off"
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    why = (f"TF_ENABLE_ONEDNN_OPTS={env}" if env is not None else
           "TF_ENABLE_ONEDNN_OPTS unset: TF's default for this CPU's instruction set")
    return f"oneDNN {state} ({why})"


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


def _inputs(synth, batches: list[int], lengths: list[float], rng: np.random.Generator):
    """(batch, seconds, normal-distributed features ``[B, T, D]``) per batch size and length
    (the features are normalised; speed does not depend on their values)."""
    for b in batches:
        for s in lengths:
            frames = int(round(s * synth.sample_rate / synth.samples_per_frame))
            yield b, s, rng.normal(size=(b, frames, synth.feature_dim)).astype(np.float32)


def _case(model: str, synth, batch: int, seconds: float, frames: int,
          fn: Callable[[], object]) -> Case:
    """A Case of ``batch`` utterances of ``frames`` frames through an export ``synth``."""
    n = batch * frames * synth.samples_per_frame
    return Case(model, batch, seconds, fn, n / synth.sample_rate,
                n * synth.info["macs_per_sample"])


def saved_model_cases(name: str, synth, batches: list[int], lengths: list[float],
                      rng: np.random.Generator) -> list[Case]:
    """Cases calling a SavedModel's ``serving_default`` (``synth.fn``, a
    ``synthesis.ExportedSynthesizer``) on tensors made before the timing."""
    cases = []
    for b, s, feats in _inputs(synth, batches, lengths, rng):
        frames = feats.shape[1]
        kw = dict(features=tf.constant(feats), lengths=tf.fill([b], frames),
                  speaker=tf.zeros([b], tf.int32), seed=tf.range(b, dtype=tf.int32))
        cases.append(_case(name, synth, b, s, frames,
                           lambda kw=kw: synth.fn(**kw)["audio"].numpy()))
    return cases


def tflite_cases(name: str, synth, batches: list[int], lengths: list[float],
                 rng: np.random.Generator) -> list[Case]:
    """Cases calling one TFLite variant (a ``synthesis.TFLiteSynthesizer``: the same inputs
    as ``serving_default``)."""
    cases = []
    for b, s, feats in _inputs(synth, batches, lengths, rng):
        args = (feats, [feats.shape[1]] * b, [0] * b, list(range(b)))
        label = f"{name} TFLite {synth.variant} ({synth.num_threads} threads)"
        cases.append(_case(label, synth, b, s, feats.shape[1],
                           lambda a=args: synth.run(*a)[0]))
    return cases


def streaming_cases(name: str, synth, lengths: list[float], rng: np.random.Generator,
                    chunk_frames: int = 400, first_chunk_frames: int = 20
                    ) -> tuple[list[Case], list[Case]]:
    """Batch-1 cases of an export (``synthesis.ExportedSynthesizer``) streamed in
    ``chunk_frames`` chunks (every chunk in turn), and its first-audio cases: the first chunk
    of ``first_chunk_frames`` frames (≥ 100 ms) alone, and one-shot synthesis of the same
    utterance for comparison."""
    spf, rate = synth.samples_per_frame, synth.sample_rate
    assert first_chunk_frames * spf >= rate // 10, "the first chunk must hold 100 ms"
    stream, first = [], []
    for _, s, feats in _inputs(synth, [1], lengths, rng):
        utt, frames = synthesis.Utterance(f"{s:g}s", feats[0], 0), feats.shape[1]
        stream.append(_case(f"{name} streamed ({chunk_frames}-frame chunks)", synth, 1, s,
                            frames, lambda u=utt: list(synthesis.synthesize_streaming(
                                synth, u, 0, chunk_frames))))
        first.append(Case(f"first 100 ms, streamed (first chunk {first_chunk_frames} frames)",
                          1, s, lambda u=utt: next(synthesis.synthesize_streaming(
                              synth, u, 0, chunk_frames, first_chunk_frames=first_chunk_frames)),
                          first_chunk_frames * spf / rate, 0.0))
        first.append(_case("first 100 ms, one-shot (the whole utterance)", synth, 1, s, frames,
                           lambda u=utt: next(synthesis.synthesize_batched(synth, [u], [0]))))
    return stream, first


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
    ap.add_argument("--models", default="shipped,tflite,streaming,gan_tts,hifigan_v1,hifigan_v3")
    ap.add_argument("--tflite", default="",
                    help="TFLite variants of the shipped model (default: those its export ships)")
    ap.add_argument("--tflite_export", default="",
                    help="take the TFLite variants from this export instead (e.g. one written "
                         "by python -m tts_gan.quantize with every variant)")
    ap.add_argument("--also", default="",
                    help="comma-separated further exports whose SavedModel runs in the same "
                         "round-robin (e.g. a model before and after a re-export)")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    lengths = [float(s) for s in args.lengths.split(",")]
    wanted = args.models.split(",")
    rng = np.random.default_rng(0)
    load_start = load_average()
    ceiling, ceiling_detail = ceiling_gflops()
    cases, keep = [], []
    if {"shipped", "tflite", "streaming"} & set(wanted):
        shipped = synthesis.ExportedSynthesizer(args.shipped)  # its highest version
        keep.append(shipped)
        shipped_name = os.path.relpath(shipped.path, ROOT)
    if "shipped" in wanted:
        cases += saved_model_cases(shipped_name, shipped, batches, lengths, rng)
    for other in filter(None, args.also.split(",")):
        synth = synthesis.ExportedSynthesizer(other)
        keep.append(synth)
        cases += saved_model_cases(os.path.relpath(synth.path, ROOT), synth, batches, lengths,
                                   rng)
    if "tflite" in wanted:
        path = (export.latest_version_dir(args.tflite_export) if args.tflite_export
                else shipped.path)
        variants = (args.tflite.split(",") if args.tflite
                    else export.read_export_info(path).get("tflite_variants", []))
        for v in variants:
            synth = synthesis.TFLiteSynthesizer(path, v)
            cases += tflite_cases(os.path.relpath(path, ROOT), synth, batches, lengths, rng)
            keep.append(synth)
    latency: list[Case] = []
    if "streaming" in wanted:
        c, latency = streaming_cases(shipped_name, shipped, lengths, rng)
        cases += c
    if "gan_tts" in wanted:
        paper = synthesis.ExportedSynthesizer(
            export_paper_generator(tempfile.mkdtemp(prefix="bench-gan-tts-")))
        cases += saved_model_cases("Table-2 G (gan_tts, random)", paper, batches, lengths, rng)
        keep.append(paper)
    for key, cfg in (("hifigan_v1", hifigan.V1), ("hifigan_v3", hifigan.V3)):
        if key in wanted:
            c, m = hifigan_cases(f"HiFi-GAN {key[-2:].upper()} (TF, random)", cfg, batches,
                                 lengths, rng)
            cases += c
            keep.append(m)
    for case in cases + latency:  # warm-up: tracing, oneDNN primitive creation
        case.fn()
    for _ in range(args.rounds):
        for case in cases + latency:
            t = time.perf_counter()
            case.fn()
            case.times.append(time.perf_counter() - t)
    load_end = load_average()
    # The ceiling again after the rounds: one measurement at the start came out at half of
    # another run's (61 vs 125 GFLOP/s, the machine just after a memory-bound job), which put
    # the big convs above 100 % of it. The higher of the two is the ceiling.
    ceiling_end, ceiling_end_detail = ceiling_gflops()
    ceiling_detail = f"start: {ceiling_detail}; end: {ceiling_end_detail}"
    ceiling = max(ceiling, ceiling_end)
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
        f"Machine: nproc={nproc}, {cpu_model()}, TF {tf.__version__}, "
        f"{onednn_label()}; load "
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
    if latency:
        lines += [
            "", "First audio (batch 1, features → the first 100 ms; the streamed row is one "
            "`frame_cycles` call and one `synthesize_chunk` call of the first chunk + the "
            "receptive-field context):", "",
            "| how | utterance s | median ms | min ms | max ms |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {c.model} | {c.seconds:g} | {1000 * statistics.median(c.times):.1f} | "
                  f"{1000 * min(c.times):.1f} | {1000 * max(c.times):.1f} |" for c in latency]
    publish(lines, args.append)


if __name__ == "__main__":
    main()

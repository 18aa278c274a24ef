"""Report of a finished ``tts-gan-train`` run for benchmarks/RESULTS.md: wall time, steps/s,
examples/s, the achieved GFLOP/s of the train step against the machine's fp32 ceiling (measured
now, so run this right after the training on the same machine), and the loss trajectory.

Usage: python benchmarks/train_run_report.py --model_dir=DIR [--rows=8] [--eval_audio] [--append]

Speed comes from the trainer's TensorBoard scalars (``perf/steps_per_sec`` per log interval:
median and mean over the run, intervals with evaluation/checkpointing included); FLOPs per step
are the model FLOPs of ``train_benchmark.py`` (4·G(B) + 8·D(B), tf.profiler) for the run's own
``config.json`` and ``manifest.json``. Wall time is summed per event file, so the gaps between a
stopped run and its resumption do not count. ``--eval_audio`` adds, for every evaluation step,
how speech-like the EMA generator's TensorBoard samples are next to the real windows (share of
voiced 5-ms frames, V/UV agreement and F0 within 50 cents, with ``speech_likeness.py``'s F0
estimator; RMS; spectral-shape correlation; how much louder than the real windows G's 4–8 and
8–12 kHz bands are, over the windows whose recording has something in the band: n/a if none has,
see ``speech_likeness.EMPTY_BAND_DB``).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import io
import json
import os
import sys

import numpy as np
import soundfile as sf
import tensorflow as tf
from machine import RESULTS, cpu_model, publish  # benchmarks/machine.py (script dir on sys.path)
from speech_likeness import compare, summarise
from train_benchmark import ceilings, step_flops, synthetic_batch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tts_gan import export, train_lib  # noqa: E402

TAGS = ("d_loss", "g_loss_adv", "g_loss", "ortho_penalty", "perf/steps_per_sec",
        "perf/examples_per_sec")


def events(model_dir: str):
    """(event file index, event) for every event of the run's train/ TensorBoard files."""
    files = sorted(glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*")))
    if not files:
        raise ValueError(f"{model_dir}/train: no TensorBoard event files (not a training dir?)")
    for i, f in enumerate(files):
        for rec in tf.data.TFRecordDataset(f):
            yield i, tf.compat.v1.Event.FromString(rec.numpy())


def read_run(model_dir: str, audio: bool = False
             ) -> tuple[dict[str, dict[int, float]], float, dict[int, dict[str, list]]]:
    """One pass over the run's train/ events: {tag: {step: value}}, the wall time in hours (the
    sum of every event file's first-to-last span: one file per start or resumption of the run)
    and, with ``audio``, {step: {"gen"|"real": [waveform, ...]}} of the evaluation samples."""
    out: dict[str, dict[int, float]] = {t: {} for t in TAGS}
    clips_by_step: dict[int, dict[str, list[np.ndarray]]] = {}
    spans: dict[int, list[float]] = {}
    for i, ev in events(model_dir):
        span = spans.setdefault(i, [ev.wall_time, ev.wall_time])
        span[0], span[1] = min(span[0], ev.wall_time), max(span[1], ev.wall_time)
        for v in ev.summary.value:
            if v.tag in out or v.tag.startswith("aux/"):
                out.setdefault(v.tag, {})[ev.step] = float(tf.make_ndarray(v.tensor))
            kind = {"eval/ema_generator": "gen", "eval/real": "real"}.get(v.tag)
            if audio and kind:
                clips = tf.make_ndarray(v.tensor)[:, 0]
                clips_by_step.setdefault(ev.step, {})[kind] = [
                    sf.read(io.BytesIO(c))[0] for c in clips]
    return out, sum(b - a for a, b in spans.values()) / 3600, clips_by_step


def eval_audio_rows(audio: dict[int, dict[str, list[np.ndarray]]]) -> list[str]:
    """Markdown rows: per evaluation step, voicing/F0/RMS, spectral-shape correlation and high-band
    excess of G_ema's samples vs the real ones (``speech_likeness.compare`` per clip, pooled by
    ``speech_likeness.summarise``)."""
    def db(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.1f}"

    rows = []
    for step in sorted(s for s, a in audio.items() if {"gen", "real"} <= a.keys()):
        real, gen = audio[step]["real"], audio[step]["gen"]
        m = summarise([compare(r, g) for r, g in zip(real, gen, strict=True)])
        rms = np.mean([np.sqrt(np.mean(x ** 2)) for x in gen])
        rms_real = np.mean([np.sqrt(np.mean(x ** 2)) for x in real])
        hf = m["band_excess_db_linear"][-2:]  # None: no window's recording has the band
        rows.append(f"| {step} | {m['voiced_generated']:.2f} ({m['voiced_real']:.2f}) | "
                    f"{m['vuv_agreement']:.2f} | {m['f0_within_50_cents']:.2f} | "
                    f"{rms:.3f} ({rms_real:.3f}) | {m['shape_correlation']:.3f} | "
                    f"{db(hf[0])} / {db(hf[1])} |")
    return rows


def run_step_flops(config, feature_dim: int) -> float:
    """Model FLOPs of one train step of ``config`` (one speaker, as train_benchmark counts)."""
    config.generator.num_speakers = 1
    trainer = train_lib.GANTrainer(config, tf.distribute.get_strategy(), feature_dim, 1)
    return step_flops(trainer, synthetic_batch(config, feature_dim))[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_dir", required=True)
    p.add_argument("--rows", type=int, default=8, help="loss-trajectory rows")
    p.add_argument("--eval_audio", action="store_true",
                   help="add the voicing/F0/RMS of the TensorBoard samples per evaluation step")
    p.add_argument("--append", action="store_true", help=f"append the report to {RESULTS}")
    args = p.parse_args()
    with open(os.path.join(args.model_dir, "config.json"), encoding="utf-8") as f:
        config = export.config_from_json(json.load(f))
    with open(os.path.join(args.model_dir, "manifest.json"), encoding="utf-8") as f:
        feature_dim = int(json.load(f)["feature_dim"])
    scalars, hours, audio = read_run(args.model_dir, args.eval_audio)
    sps = np.array(list(scalars["perf/steps_per_sec"].values()))
    if sps.size == 0:
        raise ValueError(f"{args.model_dir}: no perf/steps_per_sec scalars yet")
    steps = sorted(scalars["g_loss"])  # every logged step (D joins at train.d_start_step)
    if not steps:
        raise ValueError(f"{args.model_dir}: no g_loss scalars yet")
    last = steps[-1]
    aux = sorted(t for t in scalars if t.startswith("aux/"))
    gb = int(config.train.global_batch_size)
    frames = int(config.data.window_frames)
    flops = run_step_flops(config, feature_dim)
    ceil = ceilings()
    best = max(ceil.values())
    med = float(np.median(sps))
    lines = [
        f"\n## Training run `{config.name}` on the built-in corpus — "
        f"{datetime.date.today()}\n",
        f"Machine: nproc={os.cpu_count()}, {cpu_model()}, TF {tf.__version__}. Report: "
        "`.venv/bin/python benchmarks/train_run_report.py " + " ".join(sys.argv[1:]) + "`.\n",
        f"- {last} steps in {hours:.2f} h wall time (TensorBoard event times; "
        f"global batch {gb}, {frames}-frame windows = {frames / 200:.2f} s, "
        f"{len(config.discriminator.rwds)} RWDs).",
        f"- steps/s per log interval: median {med:.3f}, mean {sps.mean():.3f}, "
        f"min {sps.min():.3f}, max {sps.max():.3f}; examples/s median {med * gb:.1f} "
        f"({med * gb * frames / 200:.1f} s of audio per second).",
        f"- model FLOPs per step {flops / 1e9:.1f} GFLOP (4·G(B) + 8·D(B)) → achieved "
        f"{flops * med / 1e9:.1f} GFLOP/s = {flops * med / 1e9 / best:.0%} of the measured "
        f"fp32 ceiling {best:.0f} GFLOP/s (" + ", ".join(f"{k}: {v:.0f}" for k, v in ceil.items())
        + "; measured after the run).\n",
        "| step | d_loss (Σ RWDs) | g_loss_adv | g_loss | ortho penalty | "
        + "".join(f"{t[4:]} | " for t in aux),
        "|---:|---:|---:|---:|---:|" + "---:|" * len(aux),
    ]

    def cell(tag: str, s: int, fmt: str = ".3f") -> str:
        v = scalars.get(tag, {}).get(s)
        return "—" if v is None else format(v, fmt)  # — : not logged (G-only warm-up)

    picks = sorted({steps[int(round(i))] for i in np.linspace(0, len(steps) - 1, args.rows)})
    for s in picks:
        lines.append(f"| {s} | {cell('d_loss', s)} | {cell('g_loss_adv', s)} | "
                     f"{cell('g_loss', s)} | {cell('ortho_penalty', s, '.4g')} | "
                     + "".join(f"{cell(t, s, '.4g')} | " for t in aux))
    if args.eval_audio:
        lines += ["", f"TensorBoard samples of G_ema ({config.train.get('eval_examples', 4)} "
                  "fixed validation windows, own standing statistics) vs the real windows:", "",
                  "| step | voiced share (real) | V/UV agreement | F0 within 50 cents | "
                  "RMS (real) | spectral-shape corr. | 4–8 / 8–12 kHz vs real (dB) |",
                  "|---:|---:|---:|---:|---:|---:|---:|",
                  *eval_audio_rows(audio)]
    publish(lines, args.append)


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()

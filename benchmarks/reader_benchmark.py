"""Benchmark (not a test): grid windows vs random windows, reader speed and audio coverage.

Usage: python benchmarks/reader_benchmark.py --data_dir=PREP [--batch_size=16] [--batches=60]
           [--repeats=3] [--windows_per_utterance=1,4] [--coverage_epochs=1,5,20] [--append]

``PREP`` is a ``tts-gan-prep`` output with whole-utterance shards for train (e.g.
``tts-gan-prep --format=festival --output_dir=/tmp/prep_data --workers=2 --compression=GZIP``).

* Throughput: training windows per second out of ``tts_gan.data.make_dataset`` (the prepared
  400-frame grid) and ``make_random_window_dataset`` (start frames uniform in [0, T − w] of the
  whole utterances; §3.1 samples 2-s windows from utterances), ``batches`` batches after 5
  warm-up batches, the median of ``repeats`` runs; each run builds a fresh dataset.
* Coverage: the share of the train split's audio frames that lie in at least one window. Grid:
  from the start frames of the window shards. Random: reachable frames (every frame of an
  utterance of T ≥ w frames lies in some [s, s + w) with s ∈ [0, T − w]), and the frames the
  reader actually drew after as many windows as the grid has (one "epoch"), 5× and 20× that.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import machine  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tts_gan import data, schema  # noqa: E402


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def windows_per_second(make, batch: int, batches: int, repeats: int) -> tuple[float, list[float]]:
    """(median, all runs) windows/s of ``batches`` batches after 5 warm-up batches."""
    rates = []
    for _ in range(repeats):
        it = iter(make())
        for _ in range(5):
            next(it)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * batch / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def _records(data_dir: str, prefix: str, keys: dict, compression: str) -> list[dict]:
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, schema.shard_pattern(prefix))))
    ds = tf.data.TFRecordDataset(files, compression_type=compression or None)
    return [{k: v.numpy() for k, v in tf.io.parse_single_example(r, keys).items()} for r in ds]


def utterance_frames(data_dir: str, m: schema.Manifest) -> dict[bytes, int]:
    """uid -> T of the train split's whole-utterance records."""
    keys = {schema.UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string),
            schema.NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64)}
    recs = _records(data_dir, schema.utterance_prefix("train"), keys, m.compression)
    return {r[schema.UTTERANCE_ID]: int(r[schema.NUM_FRAMES]) for r in recs}


def grid_starts(data_dir: str, m: schema.Manifest) -> list[tuple[bytes, int]]:
    keys = {schema.UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string),
            schema.START_FRAME: tf.io.FixedLenFeature([], tf.int64)}
    recs = _records(data_dir, "train", keys, m.compression)
    return [(r[schema.UTTERANCE_ID], int(r[schema.START_FRAME])) for r in recs]


def coverage(frames: dict[bytes, int], windows, w: int) -> tuple[float, float]:
    """(share of all frames covered, share of utterances whose last frame is covered)."""
    hit = {u: np.zeros(t, bool) for u, t in frames.items()}
    for u, s in windows:
        hit[u][s : s + w] = True
    total = sum(frames.values())
    return (sum(int(h.sum()) for h in hit.values()) / total,
            float(np.mean([h[-1] for h in hit.values()])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--windows_per_utterance", default="1,4")
    ap.add_argument("--coverage_epochs", default="1,5,20")
    ap.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    m = schema.load_manifest(args.data_dir)
    w, b = m.window_frames, args.batch_size
    load_before = _uptime()

    results = []
    rate, runs = windows_per_second(
        lambda: data.make_dataset(args.data_dir, "train", b, seed=0), b, args.batches,
        args.repeats)
    results.append(("grid: `make_dataset(train)`", rate, runs))
    print(results[-1], flush=True)
    for k in [int(x) for x in args.windows_per_utterance.split(",")]:
        rate, runs = windows_per_second(
            lambda k=k: data.make_random_window_dataset(
                args.data_dir, "train", b, seed=0, windows_per_utterance=k),
            b, args.batches, args.repeats)
        results.append((f"random: `make_random_window_dataset(train, windows_per_utterance={k})`",
                        rate, runs))
        print(results[-1], flush=True)

    frames = utterance_frames(args.data_dir, m)
    grid = grid_starts(args.data_dir, m)
    grid_cov, grid_last = coverage(frames, grid, w)
    reach = [(u, s) for u, t in frames.items() for s in range(t - w + 1)]  # every start
    reach_cov, _ = coverage(frames, reach, w)
    epochs = [int(x) for x in args.coverage_epochs.split(",")]
    n_draw = max(epochs) * len(grid)
    ds = data.make_random_window_dataset(args.data_dir, "train", 64, seed=0,
                                         with_positions=True)
    drawn: list[tuple[bytes, int]] = []
    for bt in ds:
        drawn += zip(bt["utterance_id"].numpy().tolist(), bt["start_frame"].numpy().tolist(),
                     strict=True)
        if len(drawn) >= n_draw:
            break
    load_after = _uptime()

    total_s = sum(frames.values()) / m.frame_rate
    lines = [
        f"## Reader: grid windows vs random windows (tts_gan.data) — "
        f"{datetime.date.today().isoformat()}",
        "",
        f"Machine: nproc={os.cpu_count()}, {machine.cpu_model()}, Python "
        f"{platform.python_version()}, TF {tf.__version__}; load before: `{load_before}`, "
        f"after: `{load_after}`.",
        f"Command: `{shlex.join(['.venv/bin/python', *sys.argv])}`; data: `{m.command}` "
        f"({len(frames)} train utterances, {total_s / 3600:.3f} h, compression "
        f"{m.compression or 'none'}, D = {m.feature_dim}, w = {w} frames).",
        "",
        f"| reader (batch {b}) | windows/s (median of {args.repeats}) | runs |",
        "|---|---:|---|",
    ]
    lines += [f"| {name} | {rate:.0f} | {', '.join(f'{r:.0f}' for r in runs)} |"
              for name, rate, runs in results]
    lines += [
        "",
        "| train audio in at least one window | frames | utterances whose last frame is |",
        "|---|---:|---:|",
        f"| grid ({len(grid)} windows, hop {m.hop_frames}) | {100 * grid_cov:.1f} % | "
        f"{100 * grid_last:.1f} % |",
        f"| random, reachable (s ∈ [0, T − w]) | {100 * reach_cov:.1f} % | 100.0 % |",
    ]
    for e in epochs:
        cov, last = coverage(frames, drawn[: e * len(grid)], w)
        lines.append(f"| random, drawn: {e * len(grid)} windows ({e}× the grid's) | "
                     f"{100 * cov:.1f} % | {100 * last:.1f} % |")
    # Uniform starts reach every frame but not equally often: frame f is in a window with
    # probability min(f + 1, T - f, w, T - w + 1) / (T - w + 1) per draw.
    t_med = int(np.median(list(frames.values())))
    lines += [
        "",
        f"Per draw, frame f of a T-frame utterance is in the window with probability "
        f"min(f + 1, T − f, w, T − w + 1) / (T − w + 1): at the median T = {t_med}, "
        f"{1 / (t_med - w + 1):.4f} for the first and the last frame, "
        f"{min(w, t_med - w + 1) / (t_med - w + 1):.2f} in the middle.",
    ]
    machine.publish(lines + [""], args.append)


if __name__ == "__main__":
    main()

"""The shipped model's SavedModel under concurrent requests (issue 28 item 5).

    .venv/bin/python benchmarks/serving_concurrency.py \
        [--export_dir=pretrained/cpu_harmonic_noise] [--data_dir=PREP] [--threads=4] \
        [--requests=1000] [--frames=400] [--append]

One process loads the export's ``serving_default`` once (as TF Serving does) and ``--threads``
client threads call it ``--requests`` times in all, each request one utterance (batch 1) of
``--frames`` frames: a held-out utterance of ``--data_dir`` (cut or tiled to the length), or
without it N(0, 1) normalised features, with its own seed. Reported: throughput (requests/s
and × real time of the audio served), latency p50 / p99 / max, errors (any exception, and any
output that is not finite, outside [-1, 1] or of the wrong length), and the process' resident
memory (VmRSS) after the warm-up call and after every tenth of the requests: flat memory means
no per-request growth (the last tenth against the first, in MB).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402


def rss_mb() -> float:
    """Resident memory of this process (``/proc/self/status`` VmRSS), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("/proc/self/status has no VmRSS")


def request_features(synth: Any, data_dir: str | None, frames: int, seed: int = 0
                     ) -> tuple[np.ndarray, int]:
    """One request's RAW features ``[frames, D]`` and speaker."""
    if data_dir:
        from tts_gan import synthesis

        utts = synthesis.utterances_from_prep(data_dir, "test")
        u = max(utts, key=lambda x: x.features.shape[0])
        reps = -(-frames // u.features.shape[0])
        return np.tile(u.features, (reps, 1))[:frames].astype(np.float32), u.speaker
    m = synth.manifest()
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((frames, synth.feature_dim))
    if m is not None:
        f = f * np.asarray(m.std) + np.asarray(m.mean)
    return f.astype(np.float32), 0


def run(args: argparse.Namespace, synth: Any = None) -> dict[str, Any]:
    """The measurement; ``synth``: an already loaded export (default: load ``export_dir``)."""
    from tts_gan import synthesis

    synth = synth or synthesis.ExportedSynthesizer(args.export_dir)
    feats, speaker = request_features(synth, args.data_dir, args.frames)
    n_out = args.frames * synth.samples_per_frame

    def call(seed: int) -> None:
        audio, lengths = synth.run(feats[None], [args.frames], [speaker], [seed])
        if (lengths[0] != n_out or audio.shape != (1, n_out) or not np.all(np.isfinite(audio))
                or np.abs(audio).max() > 1.0):
            raise ValueError(f"request {seed}: bad output (shape {audio.shape}, length "
                             f"{lengths[0]}, finite {np.all(np.isfinite(audio))})")

    call(0)  # warm-up (first call traces nothing: a loaded SavedModel; it allocates)
    memory = [rss_mb()]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(1, args.requests + 1))
    tenth = max(args.requests // 10, 1)

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t = time.perf_counter()
            try:
                call(i)
            except Exception as e:  # noqa: BLE001  (every failure is counted and reported)
                with lock:
                    errors.append(f"{type(e).__name__}: {e}"[:200])
            dt = time.perf_counter() - t
            with lock:
                latencies.append(dt)
                if len(latencies) % tenth == 0:
                    memory.append(rss_mb())

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies)
    audio_s = args.requests * args.frames / 200.0
    return {"requests": args.requests, "threads": args.threads, "frames": args.frames,
            "wall_s": wall, "requests_per_s": args.requests / wall,
            "x_real_time": audio_s / wall, "p50_s": float(np.percentile(lat, 50)),
            "p99_s": float(np.percentile(lat, 99)), "max_s": float(lat.max()),
            "errors": len(errors), "first_errors": errors[:3], "rss_mb": memory,
            "rss_growth_mb": memory[-1] - memory[1] if len(memory) > 2 else 0.0,
            "loadavg": [load0, os.getloadavg()[0]], "export": synth.path}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--export_dir", default="pretrained/cpu_harmonic_noise")
    p.add_argument("--data_dir", default=None, help="a prep whose longest held-out "
                   "utterance is the request (default: N(0, 1) normalised features)")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--frames", type=int, default=400, help="frames per request (200 Hz)")
    p.add_argument("--append", action="store_true", help=f"append to {machine.RESULTS}")
    args = p.parse_args(argv)
    for name in ("threads", "requests", "frames"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    r = run(args)
    mem = r["rss_mb"]
    lines = [
        "", f"## Serving under concurrent requests (issue 28 item 5) — "
        f"{datetime.date.today().isoformat()}", "",
        f"Machine: {machine.cpu_model()}, {os.cpu_count()} cores; load (1-min) "
        f"{r['loadavg'][0]:.1f} → {r['loadavg'][1]:.1f}. Command: "
        f"`{machine.command('serving_concurrency.py', argv)}`. Export {r['export']}, "
        f"`serving_default`, batch 1, {r['frames']} frames ({r['frames'] / 200:g} s) a request.",
        "",
        "| threads | requests | errors | requests/s | × real time | p50 s | p99 s | max s | "
        "RSS MB: after warm-up → after each tenth | growth, last tenth vs first |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['threads']} | {r['requests']} | {r['errors']} | {r['requests_per_s']:.2f} | "
        f"{r['x_real_time']:.1f} | {r['p50_s']:.3f} | {r['p99_s']:.3f} | {r['max_s']:.3f} | "
        f"{mem[0]:.0f} → {', '.join(f'{m:.0f}' for m in mem[1:])} | "
        f"{r['rss_growth_mb']:+.1f} MB |",
    ]
    if r["first_errors"]:
        lines += ["", "First errors: " + "; ".join(r["first_errors"])]
    machine.publish(lines, args.append)
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

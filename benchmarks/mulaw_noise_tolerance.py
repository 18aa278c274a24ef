"""How much generator error each waveform domain of App. C tolerates, in speech-likeness terms.

Usage: python benchmarks/mulaw_noise_tolerance.py --data_dir=PREP [--utterances=8] [--append]

Takes the recordings of the test split, adds white Gaussian noise of standard deviation σ in the
domain the generator would model (16-bit µ-law, 8-bit µ-law, or the linear waveform, where σ is
scaled by 0.1 so that σ = 0.1 is -20 dB of full scale), decodes, and scores the result against
the clean recording with ``speech_likeness.compare`` (log-mel distance, V/UV agreement, share of
frames voiced, spectral-shape correlation). A generator whose output scores worse than a given
σ errs by more than that σ — and if its voicing is far worse than even large σ gives, the
missing piece is structure (periodicity), not the companding of small errors.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import machine  # noqa: E402
import speech_likeness  # noqa: E402

from tts_gan import data as data_lib  # noqa: E402
from tts_gan import mulaw, schema  # noqa: E402

DOMAINS = (("µ-law 16-bit (µ = 65535)", 65535.0), ("µ-law 8-bit (µ = 255)", 255.0),
           ("linear (σ × 0.1)", None))


def perturb(x: np.ndarray, mu: float | None, sigma: float, rng: np.random.Generator
            ) -> np.ndarray:
    """``x`` (linear, float64) with N(0, σ²) noise added in the chosen domain, clipped to ±1."""
    if mu is None:
        return np.clip(x + rng.normal(0.0, 0.1 * sigma, x.shape), -1.0, 1.0)
    y = np.clip(mulaw.encode(x, mu) + rng.normal(0.0, sigma, x.shape), -1.0, 1.0)
    return mulaw.decode(y, mu)


def measure(data_dir: str, utterances: int, sigmas: tuple[float, ...], seed: int = 0
            ) -> tuple[float, list[tuple[str, float, float, float, float]]]:
    """(voiced share of the clean recordings,
    [(domain, σ, LSD, V/UV agreement, voiced, spectral-shape correlation)])."""
    mu = schema.load_manifest(data_dir).mu
    clean = [mulaw.decode(ex["audio"].numpy().astype(np.float64), mu)
             for ex in data_lib.make_utterance_dataset(data_dir, "test").take(utterances)]
    if not clean:
        raise ValueError(f"{data_dir}: no test utterances")
    rng = np.random.default_rng(seed)
    clean_voiced = float(np.mean([np.mean(speech_likeness.f0_track(x) > 0) for x in clean]))
    rows = []
    for name, dmu in DOMAINS:
        for sigma in sigmas:
            scores = [speech_likeness.compare(x.astype(np.float32),
                                              perturb(x, dmu, sigma, rng).astype(np.float32))
                      for x in clean]
            rows.append((name, sigma, float(np.mean([s["lsd"] for s in scores])),
                         float(np.mean([np.mean(s["vr"] == s["vg"]) for s in scores])),
                         float(np.mean([np.mean(s["vg"]) for s in scores])),
                         float(np.mean(np.concatenate([s["shape"] for s in scores])))))
    return clean_voiced, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--utterances", type=int, default=8)
    p.add_argument("--sigmas", default="0.01,0.03,0.1")
    p.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = p.parse_args()
    sigmas = tuple(float(s) for s in args.sigmas.split(","))
    clean_voiced, rows = measure(args.data_dir, args.utterances, sigmas)
    lines = [f"## µ-law noise tolerance ({datetime.date.today()}, {machine.cpu_model()})", "",
             f"`python benchmarks/mulaw_noise_tolerance.py --data_dir={args.data_dir} "
             f"--utterances={args.utterances}`: the first {args.utterances} test recordings "
             f"(voiced share {clean_voiced:.3f}) with white noise σ added in each domain.", "",
             "| domain | σ | LSD (dB) | V/UV agreement | voiced share | spectral-shape corr. |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {s:g} | {lsd:.1f} | {agree:.3f} | {voiced:.3f} | {shape:.3f} |"
              for n, s, lsd, agree, voiced, shape in rows]
    machine.publish(lines + [""], args.append)


if __name__ == "__main__":
    main()

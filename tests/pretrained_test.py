"""The shipped pretrained model (pretrained/cpu_harmonic_noise): its card describes the version
that is shipped, it loads as TF Serving would (highest version), and its F0-driven sines make voiced
output follow the requested F0 (a property of the trained weights, checked with a NumPy
autocorrelation pitch estimate, not with the package's own code)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from tts_gan import export, synthesis

BASE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained",
                    "cpu_harmonic_noise")


def _versions() -> list[int]:
    return sorted(int(d) for d in os.listdir(BASE) if d.isdigit())


def test_model_card_describes_the_shipped_version():
    versions = _versions()
    assert versions, f"{BASE}: no SavedModel version directory"
    latest = versions[-1]
    checkpoint = export.read_export_info(os.path.join(BASE, str(latest)))["checkpoint"]
    step = int(re.search(r"ckpt-(\d+)$", checkpoint).group(1))
    with open(os.path.join(BASE, "README.md"), encoding="utf-8") as f:
        card = f.read()
    assert f"`{latest}/`: SavedModel" in card
    assert f"version {latest}, step {step:,}" in card  # the measured row names this model
    assert os.path.exists(os.path.join(BASE, "resume", "weights.index"))


@pytest.fixture(scope="module")
def synth() -> synthesis.ExportedSynthesizer:
    return synthesis.ExportedSynthesizer(BASE)


def _pitch_hz(audio: np.ndarray, sr: int, lo: float = 60.0, hi: float = 400.0) -> float:
    """F0 of a voiced segment from the normalised autocorrelation's highest peak."""
    x = audio - audio.mean()
    ac = np.correlate(x, x, mode="full")[len(x) - 1:]
    lags = np.arange(int(sr / hi), int(sr / lo))
    return sr / lags[np.argmax(ac[lags] / ac[0])]


def test_shipped_model_loads_and_follows_the_requested_f0(synth):
    assert synth.path == os.path.join(BASE, str(_versions()[-1]))
    assert synth.info["sine_excitation"] and synth.num_speakers == 2
    mean = np.asarray(synth.manifest().mean, np.float32)
    with open(os.path.join(synth.path, "assets", "config.json")) as f:
        exc = json.load(f)["generator"]["excitation"]
    frames = 200
    results = {}
    for f0 in (110.0, 220.0):
        feats = np.tile(mean, (frames, 1))
        feats[:, exc["lf0_index"]] = np.log(f0)  # the prep's log-F0 column
        feats[:, exc["vuv_index"]] = 1.0  # voiced
        audio, lengths = synth.run(feats[None], [frames], [1], [0])
        audio = audio[0, : lengths[0]]
        assert lengths[0] == frames * synth.samples_per_frame
        assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
        mid = audio[len(audio) // 4: 3 * len(audio) // 4]
        assert np.sqrt(np.mean(mid ** 2)) > 1e-4, "silent output for voiced frames"
        results[f0] = _pitch_hz(mid, synth.sample_rate)
    for f0, est in results.items():
        assert abs(np.log2(est / f0)) < 0.1, results  # within ~a semitone and a half


def test_serving_concurrency_benchmark_counts_requests_errors_and_memory(synth, monkeypatch):
    """benchmarks/serving_concurrency.py (issue 28 item 5) on the shipped model, small: every
    request is timed once, memory sampled after each tenth, no error. Control: a request whose
    output is not finite is counted as an error, not timed away."""
    import argparse
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(BASE), "..", "benchmarks"))
    import serving_concurrency as sc

    args = argparse.Namespace(export_dir=BASE, data_dir=None, threads=2, requests=20,
                              frames=40)
    r = sc.run(args, synth)
    assert r["errors"] == 0 and r["first_errors"] == []
    assert len(r["rss_mb"]) == 1 + 10 and all(m > 0 for m in r["rss_mb"])
    assert r["p50_s"] <= r["p99_s"] <= r["max_s"] < r["wall_s"]
    assert r["requests_per_s"] == pytest.approx(20 / r["wall_s"])
    run = synth.run

    def bad(features, lengths, speakers, seeds):
        audio, n = run(features, lengths, speakers, seeds)
        return (audio * np.nan if seeds[0] == 7 else audio), n

    monkeypatch.setattr(synth, "run", bad)
    r = sc.run(args, synth)
    assert r["errors"] == 1 and "request 7: bad output" in r["first_errors"][0]

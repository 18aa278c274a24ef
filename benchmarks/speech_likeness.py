"""Objective "is it speech-like?" numbers for generated test utterances, next to the spectrogram
picture: how well the generated audio follows the real recording of the same utterance.

Usage: python benchmarks/speech_likeness.py --data_dir=PREP --generated=WAV_DIR [--label=NAME]

For every test utterance of ``PREP`` (whole-utterance records, µ-law audio) with a generated
``WAV_DIR/<utterance_id>.wav`` (what ``tts-gan-synthesize --data_dir`` writes):

- log-spectral distance (dB, RMS over 80 log-mel bins and frames, 50 ms / 12.5 ms);
- F0 with WORLD's DIO + StoneMask (5 ms frames, 60–600 Hz), the same estimator ``tts-gan-prep``
  uses for the conditioning: V/UV agreement with the real recording, and on the frames voiced in
  both, the median absolute F0 error in cents and the share of frames within 50 cents.

- spectral-shape correlation: per frame (louder half of the recording's), the Pearson
  correlation of the two log-mel shapes over 300–7500 Hz after removing each frame's level and
  the utterance's average shape — whether the formant pattern changes from sound to sound as in
  the recording (1 = the same, ~0 = unrelated; the same with the generated frames shifted by
  37 frames is reported as the chance level);
- band excess (dB, generated − real) of the long-term spectrum in six bands up to 12 kHz
  (louder half of the 20-ms frames), with the waveforms as heard (``linear``) and µ-law
  encoded with µ = 255 and µ = 65535, the domains a generator/discriminator can work in
  (App. C): what the discriminators can see of the difference. A band the recording has
  nothing in (more than :data:`EMPTY_BAND_DB` below its loudest band, e.g. 8–12 kHz of a 16 kHz
  voice resampled to 24 kHz) has no meaningful linear excess — any output is "infinitely" too
  loud there — so those utterances are left out of that band's linear mean and counted in
  ``band_empty_recordings``; the µ-law domains keep them (companding fills the band, and that
  is what the discriminators see).

Headline numbers are also given per speaker (``speakers``), since one corpus can mix voices of
different bandwidth and quality.

Noise-like output (an untrained generator) has few voiced frames and a large spectral distance;
speech-like output is voiced where the recording is, at the recording's pitch. The numbers are
means over utterances (frames pooled for the F0 statistics).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import warnings

import librosa
import numpy as np
import pyworld
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_prep.pitch import F0_CEIL, F0_FLOOR  # noqa: E402
from tts_gan import data as data_lib  # noqa: E402
from tts_gan import mulaw, schema  # noqa: E402

SR = 24000


def f0_track(audio: np.ndarray) -> np.ndarray:
    x = audio.astype(np.float64)
    f0, t = pyworld.dio(x, SR, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=5.0)
    return pyworld.stonemask(x, f0, t, SR)


def log_mel(audio: np.ndarray) -> np.ndarray:
    m = librosa.feature.melspectrogram(y=audio, sr=SR, n_fft=1200, hop_length=300,
                                       win_length=1200, n_mels=80, fmin=40, fmax=SR // 2)
    return 10.0 * np.log10(m + 1e-10)


def f0_cents_error(fr: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """|F0 error| in cents of ``fg`` against ``fr`` on the frames voiced in both (0 = unvoiced)."""
    both = (fr > 0) & (fg > 0)
    return np.abs(1200.0 * np.log2(fg[both] / fr[both]))


def share_within_50_cents(cents: np.ndarray) -> float:
    return float(np.mean(cents < 50.0)) if cents.size else 0.0


BANDS_HZ = ((0, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (8000, 12000))
DOMAINS = {"linear": None, "mu255": mulaw.MU_8BIT, "mu65535": mulaw.MU_16BIT}
EMPTY_BAND_DB = 60.0


def band_levels(audio: np.ndarray, mu: float | None = None, frame: int = 480) -> np.ndarray:
    """Mean power (dB) per band of :data:`BANDS_HZ` over the louder half of the Hann-windowed
    ``frame``-sample frames of ``audio`` (µ-law encoded with ``mu`` first, unless None)."""
    y = np.asarray(audio, np.float64) if mu is None else mulaw.encode(
        np.clip(np.asarray(audio, np.float64), -1.0, 1.0), mu)
    n = len(y) // frame
    if n < 2:
        raise ValueError(f"audio of {len(y)} samples: need at least {2 * frame}")
    power = np.abs(np.fft.rfft(y[:n * frame].reshape(n, frame) * np.hanning(frame), axis=1)) ** 2
    energy = power.sum(axis=1)
    loud = energy >= np.median(energy)
    f = np.fft.rfftfreq(frame, 1.0 / SR)
    return np.array([10.0 * np.log10(power[loud][:, (f >= a) & (f < b)].mean() + 1e-20)
                     for a, b in BANDS_HZ])


def shape_spectra(audio: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram (dB, 60 bands over 300–7500 Hz, 12.5-ms hop) for
    :func:`shape_correlation`: the formant region, inside Festival's 8 kHz band."""
    m = librosa.feature.melspectrogram(y=audio, sr=SR, n_fft=1200, hop_length=300,
                                       win_length=1200, n_mels=60, fmin=300, fmax=7500)
    return 10.0 * np.log10(m + 1e-10)


def shape_correlation(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-frame correlation of the spectral shapes of :func:`shape_spectra` ``r`` (recording)
    and ``g`` (generated), on the recording's louder half of the frames."""
    loud = r.mean(axis=0) >= np.median(r.mean(axis=0))
    r, g = r[:, loud] - r[:, loud].mean(axis=0), g[:, loud] - g[:, loud].mean(axis=0)
    r, g = r - r.mean(axis=1, keepdims=True), g - g.mean(axis=1, keepdims=True)
    return np.sum(r * g, axis=0) / np.sqrt(np.sum(r ** 2, axis=0) * np.sum(g ** 2, axis=0) + 1e-12)


def compare(real: np.ndarray, gen: np.ndarray) -> dict[str, np.ndarray | float]:
    n = min(len(real), len(gen))
    real, gen = real[:n], gen[:n]
    lr, lg = log_mel(real), log_mel(gen)
    floor = lr.max() - 80.0  # both clipped to the recording's 80-dB range
    lsd = float(np.sqrt(np.mean((np.maximum(lr, floor) - np.maximum(lg, floor)) ** 2)))
    fr, fg = f0_track(real), f0_track(gen)
    real_levels = {d: band_levels(real, mu) for d, mu in DOMAINS.items()}
    bands = {d: band_levels(gen, mu) - real_levels[d] for d, mu in DOMAINS.items()}
    empty = real_levels["linear"] < real_levels["linear"].max() - EMPTY_BAND_DB
    bands["linear"] = np.where(empty, np.nan, bands["linear"])  # NaN: the recording has none
    shape_r, shape_g = shape_spectra(real), shape_spectra(gen)
    return dict(lsd=lsd, vr=fr > 0, vg=fg > 0, fr=fr, fg=fg, cents=f0_cents_error(fr, fg),
                bands=bands,
                shape=shape_correlation(shape_r, shape_g),
                shape_chance=shape_correlation(shape_r, np.roll(shape_g, 37, axis=1)))


def nan_mean(rows: list[np.ndarray]) -> np.ndarray:
    """Column means of ``rows`` ignoring NaN (NaN where a column is all NaN), without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
        return np.nanmean(np.array(rows), axis=0)


def summarise(scores: list[dict]) -> dict:
    """Means over utterances of :func:`compare` results (frames pooled for V/UV and F0)."""
    def cat(key: str) -> np.ndarray:
        return np.concatenate([r[key] for r in scores])

    c = cat("cents")
    out = dict(utterances=len(scores), lsd_db=float(np.mean([r["lsd"] for r in scores])),
               vuv_agreement=float(np.mean(cat("vr") == cat("vg"))),
               voiced_real=float(np.mean(cat("vr"))),
               voiced_generated=float(np.mean(cat("vg"))),
               f0_median_abs_cents=float(np.median(c)) if c.size else float("nan"),
               f0_within_50_cents=share_within_50_cents(c),
               shape_correlation=float(np.mean(cat("shape"))),
               shape_correlation_chance=float(np.mean(cat("shape_chance"))))
    for d in DOMAINS:
        mean = nan_mean([r["bands"][d] for r in scores])
        out[f"band_excess_db_{d}"] = [None if np.isnan(x) else round(float(x), 1) for x in mean]
    out["band_empty_recordings"] = np.isnan(
        np.array([r["bands"]["linear"] for r in scores])).sum(axis=0).tolist()
    return out


def measure(data_dir: str, generated: str, split: str = "test") -> dict:
    """:func:`summarise` over every utterance of ``split`` with a generated wav, and per speaker."""
    manifest = schema.load_manifest(data_dir)
    names = {i: name for name, i in manifest.speakers.items()}
    wavs = {os.path.splitext(os.path.relpath(p, generated))[0]: p
            for p in glob.glob(os.path.join(generated, "**", "*.wav"), recursive=True)}
    by_speaker: dict[str, list[dict]] = {}
    for ex in data_lib.make_utterance_dataset(data_dir, split):
        uid = ex["utterance_id"].numpy().decode()
        if uid not in wavs:
            continue
        real = mulaw.decode(ex["audio"].numpy(), manifest.mu).astype(np.float32)
        gen, sr = sf.read(wavs[uid], dtype="float32")
        if sr != SR:
            raise ValueError(f"{wavs[uid]}: sample rate {sr}, expected {SR}")
        r = compare(real, gen)
        speaker = int(ex["speaker"].numpy())
        by_speaker.setdefault(names.get(speaker, str(speaker)), []).append(r)
    if not by_speaker:
        raise ValueError(f"{generated}: no <utterance_id>.wav of the {split} split of {data_dir}")
    out = summarise([r for rs in by_speaker.values() for r in rs])
    out["band_hz"] = [f"{a}-{b}" for a, b in BANDS_HZ]
    out["speakers"] = {k: summarise(v) for k, v in sorted(by_speaker.items())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--generated", required=True, help="directory of generated <utt>.wav")
    p.add_argument("--split", default="test")
    p.add_argument("--label", default="")
    args = p.parse_args()
    r = measure(args.data_dir, args.generated, args.split)
    r["label"] = args.label or args.generated
    print(json.dumps(r))


if __name__ == "__main__":
    main()

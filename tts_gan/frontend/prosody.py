"""A speaker's prosody statistics, and a Festival voice's F0 mapped onto them (issue 27).

A speaker without a Festival voice of its own speaks text with another voice's durations and
F0 (the slt HTS voice by default): a female contour for a male corpus, far outside what its
generator was trained on. ``tts-gan-prep`` records, per speaker, the log-F0 mean / standard
deviation over voiced frames and the mean phone duration of the training split
(:func:`prosody_sums`, :func:`speaker_prosody`); synthesis moves the voice's log F0 onto the
speaker's (:func:`map_log_f0`: the usual mean-variance transform of log F0).
"""

from __future__ import annotations

import numpy as np

from tts_gan.frontend.features import NUM_FRAME_FEATURES

# column of phone_frames (frame feature 5) counted from the end: frame features, log F0, V/UV
_PHONE_FRAMES = -2 - NUM_FRAME_FEATURES + 5


def prosody_sums(f: np.ndarray) -> np.ndarray:
    """[voiced frames, Σ log F0, Σ log F0², frames, phones] of hts/festival features ``f``
    (..., phone_frames, ..., log F0, V/UV): the sums of a speaker's log-F0 mean / standard
    deviation over voiced frames and of its mean phone duration (phones = Σ over frames of
    1 / the frame's phone length)."""
    lf0 = f[:, -2].astype(np.float64)
    voiced = f[:, -1] > 0.5
    phone_frames = f[:, _PHONE_FRAMES].astype(np.float64)
    return np.array([voiced.sum(), lf0[voiced].sum(), (lf0[voiced] ** 2).sum(), len(f),
                     (1.0 / phone_frames).sum()])


def speaker_prosody(sums: np.ndarray) -> dict[str, float]:
    """Log-F0 mean / std (voiced frames) and mean phone duration in frames, from the added
    :func:`prosody_sums` of a speaker's utterances."""
    n, s1, s2, frames, phones = (float(v) for v in sums)
    mean = s1 / n
    return {"log_f0_mean": mean, "log_f0_std": float(np.sqrt(max(s2 / n - mean**2, 0.0))),
            "phone_frames_mean": frames / phones, "voiced_frames": int(n)}


def map_log_f0(features: np.ndarray, source: dict[str, float],
               target: dict[str, float]) -> np.ndarray:
    """``features`` with the log-F0 column moved from ``source``'s statistics to ``target``'s:
    (lf0 − μ_s) · σ_t / σ_s + μ_t on every frame (unvoiced frames hold interpolated values)."""
    out = np.array(features, np.float32, copy=True)
    scale = target["log_f0_std"] / source["log_f0_std"]
    out[:, -2] = (out[:, -2] - source["log_f0_mean"]) * scale + target["log_f0_mean"]
    return out

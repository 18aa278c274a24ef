"""Waveform loading (prep and synthesis): 24 kHz mono float32 in [-1, 1] (paper §3.1).

Rules (documented in the README): multi-channel files are rejected ("wrong channels") unless
``downmix`` is set, in which case channels are averaged; any sample rate is resampled to 24 kHz
with soxr (HQ); if resampling overshoots |x| > 1 the utterance is scaled down by its peak (no
clipping); NaN/inf samples reject the utterance.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from tts_gan import schema


class AudioError(ValueError):
    """The audio of an utterance is unusable; ``reason`` is a short rejected.tsv category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def load_audio(
    path: str, sample_rate: int = schema.SAMPLE_RATE, downmix: bool = False
) -> tuple[np.ndarray, int]:
    """Returns (float32 [N] mono audio at ``sample_rate`` in [-1, 1], original sample rate)."""
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioError("missing wav", f"{path}: no such file") from None
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError("corrupt wav", f"{path}: {e}") from None
    if x.shape[0] == 0:
        raise AudioError("corrupt wav", f"{path}: no samples")
    if x.shape[1] != 1:
        if not downmix:
            raise AudioError(
                "wrong channels", f"{path}: {x.shape[1]} channels, expected mono (--downmix)"
            )
        x = x.mean(axis=1, keepdims=True)
    x = x[:, 0]
    if not np.isfinite(x).all():
        raise AudioError("nan/inf", f"{path}: {int((~np.isfinite(x)).sum())} non-finite samples")
    if sr != sample_rate:
        x = soxr.resample(x, sr, sample_rate, quality="HQ").astype(np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        x = x / np.float32(peak)
    return np.ascontiguousarray(x, np.float32), int(sr)

"""log F0 at 200 Hz with pyworld (DIO + StoneMask), unvoiced frames interpolated, V/UV flag.

GAN-TTS conditions on "linguistic features and pitch ... the logarithmic fundamental frequency
log F0", computed for 5 ms windows (paper §3.1). Frame ``i`` covers audio samples
``[120 i, 120 (i + 1))`` at 24 kHz; its F0 is estimated at the frame centre, ``(i + 0.5) * 5 ms``
(we analyse the signal from sample 60 on, so pyworld's time ``i * 5 ms`` is that centre).
"""

from __future__ import annotations

import numpy as np
import pyworld

F0_FLOOR = 60.0
F0_CEIL = 600.0


class PitchError(ValueError):
    """F0 extraction failed (e.g. no voiced frame)."""


def extract_f0(
    audio: np.ndarray,
    sample_rate: int,
    num_frames: int,
    frame_rate: int = 200,
    method: str = "dio",
    f0_floor: float = F0_FLOOR,
    f0_ceil: float = F0_CEIL,
) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) for ``num_frames`` frame centres, float64 [num_frames]."""
    hop = sample_rate // frame_rate
    x = np.ascontiguousarray(audio[hop // 2 :], dtype=np.float64)
    period_ms = 1000.0 / frame_rate
    if method == "dio":
        f0, t = pyworld.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil,
                            frame_period=period_ms)
        f0 = pyworld.stonemask(x, f0, t, sample_rate)
    elif method == "harvest":
        f0, _ = pyworld.harvest(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil,
                                frame_period=period_ms)
    else:
        raise ValueError(f"unknown F0 method {method!r} (dio or harvest)")
    if len(f0) >= num_frames:
        return f0[:num_frames]
    return np.pad(f0, (0, num_frames - len(f0)))  # pad as unvoiced; interpolation fills it


def interpolate_log_f0(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log F0 with unvoiced frames linearly interpolated in the log domain, V/UV in {0, 1}).

    Before the first / after the last voiced frame the nearest voiced value is held.
    Raises :class:`PitchError` when no frame is voiced.
    """
    vuv = f0 > 0
    if not vuv.any():
        raise PitchError("no voiced frame found by the F0 extractor")
    idx = np.arange(len(f0))
    lf0 = np.interp(idx, idx[vuv], np.log(f0[vuv]))
    return lf0.astype(np.float32), vuv.astype(np.float32)


def pitch_features(
    audio: np.ndarray, sample_rate: int, num_frames: int, frame_rate: int = 200,
    method: str = "dio",
) -> np.ndarray:
    """float32 [num_frames, 2]: interpolated log F0 (natural log of Hz) and the V/UV flag."""
    f0 = extract_f0(audio, sample_rate, num_frames, frame_rate, method)
    lf0, vuv = interpolate_log_f0(f0)
    return np.stack([lf0, vuv], axis=1)

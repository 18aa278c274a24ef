"""µ-law companding without quantisation (paper App. C, Eq. 13).

The model is trained on, and generates, µ-law transformed waveforms with µ = 2^16 - 1 (the
paper's 16-bit transformation; App. C also names µ = 2^8 - 1, which ``config.data.mu`` selects:
``tts-gan-prep`` always writes 16-bit µ-law and :func:`transcode` converts). ``encode``/``decode``
are exact inverses on [-1, 1] and work on NumPy arrays and TensorFlow tensors alike.
"""

from __future__ import annotations

import math

import numpy as np

MU_16BIT = 65535.0
MU_8BIT = 255.0


def _is_tf(x) -> bool:
    return type(x).__module__.startswith("tensorflow")


def encode(x, mu: float = MU_16BIT):
    """F(x) = sgn(x) ln(1 + µ|x|) / ln(1 + µ), for x in [-1, 1] (Eq. 13)."""
    if _is_tf(x):
        import tensorflow as tf

        return tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / math.log1p(mu)
    x = np.asarray(x)
    x64 = x.astype(np.float64)  # float64 inside: the round trip stays within ~1e-7 in float32
    out = np.sign(x64) * np.log1p(mu * np.abs(x64)) / math.log1p(mu)
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float32)


def decode(y, mu: float = MU_16BIT):
    """Inverse of :func:`encode`: sgn(y) ((1 + µ)^|y| - 1) / µ."""
    if _is_tf(y):
        import tensorflow as tf

        return tf.sign(y) * tf.math.expm1(tf.abs(y) * math.log1p(mu)) / mu
    y = np.asarray(y)
    y64 = y.astype(np.float64)
    out = np.sign(y64) * np.expm1(np.abs(y64) * math.log1p(mu)) / mu
    return out.astype(y.dtype if y.dtype.kind == "f" else np.float32)


def transcode(y, mu_from: float, mu_to: float):
    """µ-law audio with ``mu_from`` → the same waveform µ-law encoded with ``mu_to``."""
    if float(mu_from) == float(mu_to):
        return y
    return encode(decode(y, mu_from), mu_to)


def check_mu(mu, name: str = "mu") -> float:
    """``mu`` as a float, or a ValueError naming ``name`` unless it is a finite number > 0."""
    try:
        value = float(mu)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 (App. C: 255 or 65535), got {mu!r}")
    return value

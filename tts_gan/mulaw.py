"""µ-law companding without quantisation (paper App. C, Eq. 13).

The model is trained on, and generates, µ-law transformed waveforms with µ = 2^16 - 1 (the
paper's 16-bit transformation). ``encode``/``decode`` are exact inverses on [-1, 1] and work on
NumPy arrays and TensorFlow tensors alike.
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

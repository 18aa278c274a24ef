"""Small architecture ops shared by the generator and the discriminators.

Masks for variable-length batches (App. A.1), nearest-neighbour upsampling (GBlocks, §3.2),
average-pool downsampling and the waveform reshape of the RWDs (§3.3), and the BigGAN
off-diagonal orthogonal regulariser (App. D).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import tensorflow as tf


def length_mask(lengths: tf.Tensor | None, max_len: int | tf.Tensor, rate: int = 1,
                dtype: tf.DType = tf.float32) -> tf.Tensor | None:
    """0/1 mask ``[B, max_len * rate, 1]`` for ``lengths`` given at the base (feature) rate.

    ``rate`` is the number of time steps per feature frame at the layer in question, so a mask
    at 24 kHz is ``length_mask(lengths, frames, 120)``. Returns None when ``lengths`` is None
    (a full batch: nothing to mask).
    """
    if lengths is None:
        return None
    mask = tf.sequence_mask(tf.cast(lengths, tf.int32) * rate, max_len * rate, dtype=dtype)
    return tf.expand_dims(mask, -1)  # not mask[:, :, None]: TFLite has no new-axis slices


def apply_mask(x: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Multiplies ``x`` by the 0/1 ``mask`` (App. A.1); identity when ``mask`` is None."""
    if mask is None:
        return x
    return x * tf.cast(mask, x.dtype)


def upsample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Nearest-neighbour upsampling in time: ``[B, T, C] -> [B, T * factor, C]``."""
    if factor == 1:
        return x
    shape = tf.shape(x)
    channels = x.shape[-1]
    y = tf.broadcast_to(tf.expand_dims(x, 2), [shape[0], shape[1], factor, channels])
    return tf.reshape(y, [shape[0], shape[1] * factor, channels])


def downsample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Average-pool downsampling in time by an integer ``factor`` (time must divide)."""
    if factor == 1:
        return x
    shape = tf.shape(x)
    channels = x.shape[-1]
    y = tf.reshape(x, [shape[0], shape[1] // factor, factor, channels])
    return tf.reduce_mean(y, axis=2)


def fold_to_channels(x: tf.Tensor, k: int) -> tf.Tensor:
    """RWD input reshape ``[B, ω·k] -> [B, ω, k]`` (§3.3): consecutive samples become channels."""
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], shape[1] // k, k])


def prime_factors_descending(n: int) -> list[int]:
    """Prime divisors of ``n`` with multiplicity, largest first (120 -> [5, 3, 2, 2, 2])."""
    if n < 1:
        raise ValueError(f"expected a positive integer, got {n}")
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return sorted(factors, reverse=True)


def matrix_view(kernel: tf.Tensor) -> tf.Tensor:
    """Views a conv/dense kernel ``[..., in, out]`` as ``[fan_in, out]`` (a column per filter)."""
    return tf.reshape(kernel, [-1, kernel.shape[-1]])


def off_diagonal_orthogonal_penalty(kernels: Iterable[tf.Tensor], beta: float) -> tf.Tensor:
    """BigGAN's off-diagonal orthogonal regulariser, β Σ_W ‖WᵀW ⊙ (1 − I)‖²_F (App. D).

    Each ``W`` is a kernel viewed as ``[fan_in, filters]``; the penalty pushes distinct filters
    towards orthogonality without constraining their norms (Brock et al., 2019, §3.1).
    """
    total = tf.constant(0.0, tf.float32)
    for kernel in kernels:
        w = tf.cast(matrix_view(kernel), tf.float32)
        gram = tf.matmul(w, w, transpose_a=True)
        off_diag = gram - tf.linalg.diag(tf.linalg.diag_part(gram))
        total += tf.reduce_sum(tf.square(off_diag))
    return beta * total


def check_positive_ints(name: str, values: Sequence[int]) -> None:
    """Raises a ValueError naming the config field when ``values`` holds a non-positive int."""
    for v in values:
        if int(v) != v or v < 1:
            raise ValueError(f"{name}: expected positive integers, got {list(values)}")

"""Tests of tts_gan.ops against NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from tts_gan import ops


@pytest.mark.parametrize("n,expected", [(120, [5, 3, 2, 2, 2]), (60, [5, 3, 2, 2]),
                                        (30, [5, 3, 2]), (15, [5, 3]), (8, [2, 2, 2]),
                                        (1, []), (49, [7, 7])])
def test_prime_factors_descending(n, expected):
    assert ops.prime_factors_descending(n) == expected


def test_upsample_is_nearest_neighbour_repeat():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(ops.upsample(tf.constant(x), 3).numpy(), np.repeat(x, 3, axis=1))


def test_downsample_is_average_pool():
    x = np.random.default_rng(1).normal(size=(2, 12, 3)).astype(np.float32)
    expected = x.reshape(2, 4, 3, 3).mean(axis=2)
    np.testing.assert_allclose(ops.downsample(tf.constant(x), 3).numpy(), expected, rtol=1e-6)


def test_fold_to_channels_moves_consecutive_samples_to_channels():
    x = np.arange(2 * 24, dtype=np.float32).reshape(2, 24)
    y = ops.fold_to_channels(tf.constant(x), 8).numpy()
    assert y.shape == (2, 3, 8)
    np.testing.assert_array_equal(y[1, 2], x[1, 16:24])


def test_length_mask_at_a_higher_rate():
    m = ops.length_mask(tf.constant([2, 3]), 3, rate=4).numpy()[..., 0]
    assert m.shape == (2, 12)
    np.testing.assert_array_equal(m.sum(axis=1), [8, 12])
    np.testing.assert_array_equal(m[0], [1] * 8 + [0] * 4)
    assert ops.length_mask(None, 3) is None


def test_off_diagonal_orthogonal_penalty_matches_numpy():
    rng = np.random.default_rng(2)
    ws = [rng.normal(size=(3, 4, 5)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)]
    expected = 0.0
    for w in ws:
        m = w.reshape(-1, w.shape[-1]).astype(np.float64)
        g = m.T @ m
        expected += ((g * (1 - np.eye(g.shape[0]))) ** 2).sum()
    got = ops.off_diagonal_orthogonal_penalty([tf.constant(w) for w in ws], 1e-4).numpy()
    np.testing.assert_allclose(got, 1e-4 * expected, rtol=1e-5)


def test_off_diagonal_penalty_is_zero_for_orthogonal_columns_of_any_norm():
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(8, 4)))
    w = (q * np.array([1.0, 2.0, 3.0, 0.5])).astype(np.float32)  # orthogonal, unequal norms
    assert ops.off_diagonal_orthogonal_penalty([tf.constant(w)], 1.0).numpy() < 1e-9

"""Dilated convolutions train with every CPU kernel (#26): tts_gan.layers.dilated_conv1d's forward
pass and both gradients against a float64 NumPy reference, in both gradient formulations,
eagerly, in a tf.function with unknown batch and length, and under XLA."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from float32_bounds import exceeds, relative_difference, within, worst_rounding

from tts_gan import layers

MODES = ["space_to_batch", "native"]


def _needs_native(mode: str) -> None:
    if mode == "native" and not layers.onednn_enabled():
        pytest.skip("TF 2.21's Eigen CPU kernels have no dilated conv gradient (oneDNN is off)")


def _reference(x: np.ndarray, w: np.ndarray, r: np.ndarray, d: int):
    """float64 y = conv1d(x, w, SAME, dilation d) and the gradients of Σ y·r w.r.t. x and w.

    TF's SAME padding: (k − 1)·d in all, ⌊·/2⌋ of it on the left."""
    k, t = w.shape[0], x.shape[1]
    pad = (k - 1) * d
    left = pad // 2
    xp = np.pad(x, [(0, 0), (left, pad - left), (0, 0)])
    y = sum(np.einsum("btc,co->bto", xp[:, i * d:i * d + t], w[i]) for i in range(k))
    dw = np.stack([np.einsum("btc,bto->co", xp[:, i * d:i * d + t], r) for i in range(k)])
    dxp = np.zeros_like(xp)
    for i in range(k):
        dxp[:, i * d:i * d + t] += np.einsum("bto,co->btc", r, w[i])
    return y, dxp[:, left:left + t], dw


def _tf_grads(fn, x, w, r):
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = fn(x, w)
        loss = tf.reduce_sum(y * r)
    dx, dw = tape.gradient(loss, [x, w])
    return y, dx, dw


def _data(b: int, t: int, cin: int, cout: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, t, cin)), rng.standard_normal((k, cin, cout)),
            rng.standard_normal((b, t, cout)))


def _check(name: str, got, ref, terms: int) -> None:
    """One float32 sum of ``terms`` products vs float64: worst_rounding(terms, 1) relative to
    the largest reference value (the inputs are N(0, 1), so it is ≥ the terms' size)."""
    for what, g, e in zip(("y", "dx", "dw"), got, ref, strict=True):
        within(f"{name} {what}", relative_difference(np.asarray(g), e), worst_rounding(terms, 1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k,d", [(3, 2), (3, 8), (2, 3), (4, 2)])
def test_dilated_conv_and_its_gradients_match_numpy(mode, k, d):
    """Forward pass and both gradients, odd and even kernels (TF's asymmetric SAME padding).
    Bound: each value is one sum of k·C_in (y, dx) or B·T (dw) products, float32 vs float64
    (worst_rounding). Worst measured: see BUILD_NOTES "Numeric tolerances". Control: the
    gradient of the convolution with another dilation."""
    _needs_native(mode)
    b, t, cin, cout = 2, 37, 5, 4
    x, w, r = _data(b, t, cin, cout, k)
    ref = _reference(x, w, r, d)
    c = {n: tf.constant(v, tf.float32) for n, v in dict(x=x, w=w, r=r).items()}
    got = _tf_grads(lambda x, w: layers.dilated_conv1d(x, w, d, mode), c["x"], c["w"], c["r"])
    _check(f"{mode} k={k} d={d}", got, ref, max(k * cin, b * t, k * cout))
    other = _reference(x, w, r, d + 1)
    exceeds(f"{mode} k={k} d={d}: dilation {d + 1}", relative_difference(other[2], ref[2]),
            worst_rounding(max(k * cin, b * t, k * cout), 1))


@pytest.mark.parametrize("mode", MODES)
def test_dilated_conv_gradient_in_graphs_with_unknown_shapes_and_xla(mode):
    """The gradient traces with unknown batch and length (exported signatures, variable-length
    training windows) and compiles with XLA; values as the NumPy reference."""
    _needs_native(mode)
    k, d, cin, cout = 3, 4, 3, 6
    spec = [tf.TensorSpec([None, None, cin]), tf.TensorSpec([k, cin, cout]),
            tf.TensorSpec([None, None, cout])]

    def grads(x, w, r):
        return _tf_grads(lambda x, w: layers.dilated_conv1d(x, w, d, mode), x, w, r)

    for jit in (False, True):
        fn = tf.function(grads, input_signature=spec, jit_compile=jit)
        for b, t in ((1, 5), (3, 50)):
            x, w, r = _data(b, t, cin, cout, k, seed=t)
            got = fn(*(tf.constant(v, tf.float32) for v in (x, w, r)))
            _check(f"{mode} jit={jit} B={b} T={t}", got, _reference(x, w, r, d),
                   max(k * cin, b * t, k * cout))


def test_gradient_formulation_switch(monkeypatch):
    """TTS_GAN_DILATED_CONV_GRADIENT: auto follows oneDNN; a wrong value is a clear error."""
    monkeypatch.delenv(layers.DILATED_CONV_GRADIENT_ENV, raising=False)
    assert layers.dilated_conv_gradient() == (
        "native" if layers.onednn_enabled() else "space_to_batch")
    for mode in ("native", "space_to_batch"):
        monkeypatch.setenv(layers.DILATED_CONV_GRADIENT_ENV, mode)
        assert layers.dilated_conv_gradient() == mode
    monkeypatch.setenv(layers.DILATED_CONV_GRADIENT_ENV, "fast")
    with pytest.raises(ValueError, match="TTS_GAN_DILATED_CONV_GRADIENT='fast': expected"):
        layers.dilated_conv_gradient()
    with pytest.raises(ValueError, match="expected native or space_to_batch"):
        layers.dilated_conv1d(tf.zeros([1, 4, 2]), tf.zeros([3, 2, 2]), 2, "fast")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k,d", [(3, 1), (3, 4), (2, 3)])
def test_inference_conv_with_fused_bias_differentiates_like_the_training_conv(mode, k, d):
    """layers.conv1d_bias (the inference form: Conv2D + BiasAdd, fused by Grappler) is
    differentiated inside G's step when D runs in inference mode, so it needs the same gradient
    formulations as dilated_conv1d: forward and the gradients of x, w and the bias against the
    NumPy reference, eagerly and in a tf.function with unknown batch and length."""
    _needs_native(mode)
    b, t, cin, cout = 2, 23, 5, 4
    x, w, r = _data(b, t, cin, cout, k, seed=d)
    bias = np.random.default_rng(9).standard_normal(cout)
    y, dx, dw = _reference(x, w, r, d)
    ref = (y + bias, dx, dw, r.sum(axis=(0, 1)))

    def grads(x, w, bias, r):
        with tf.GradientTape() as tape:
            tape.watch([x, w, bias])
            y = layers.conv1d_bias(x, w, d, bias, mode)
            loss = tf.reduce_sum(y * r)
        return (y, *tape.gradient(loss, [x, w, bias]))

    spec = [tf.TensorSpec([None, None, cin]), tf.TensorSpec([k, cin, cout]),
            tf.TensorSpec([cout]), tf.TensorSpec([None, None, cout])]
    args = [tf.constant(v, tf.float32) for v in (x, w, bias, r)]
    terms = max(k * cin + 1, b * t, k * cout)
    for name, fn in (("eager", grads), ("graph", tf.function(grads, input_signature=spec))):
        got = fn(*args)
        for what, g, e in zip(("y", "dx", "dw", "dbias"), got, ref, strict=True):
            within(f"{mode} {name} k={k} d={d} {what}", relative_difference(np.asarray(g), e),
                   worst_rounding(terms, 1))
    exceeds("without the bias", relative_difference(y, ref[0]), worst_rounding(terms, 1))

"""Spectral norm, orthogonal init and masked / cross-replica / standing-statistics BN."""

import numpy as np
import pytest
import tensorflow as tf
from float32_bounds import exceeds, relative_difference, within, worst_rounding

from tts_gan.layers import ConditionalBatchNorm, MaskedSyncBatchNorm, SNConv1D, SNDense


def _top_singular_value(kernel: np.ndarray) -> float:
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


@pytest.mark.parametrize("layer,shape", [(SNConv1D(6, 3, 2), (2, 9, 5)), (SNDense(7), (4, 11))])
def test_spectral_norm_bounds_the_top_singular_value(layer, shape):
    x = tf.random.normal(shape)
    layer(x)
    # Scale the kernel so that σ is far from 1, then let the power iteration converge.
    layer.kernel.assign(layer.kernel.value * 5.0)
    for _ in range(60):
        layer.sigma(training=True)
    kernel = layer.kernel.numpy()
    np.testing.assert_allclose(layer.sigma().numpy(), _top_singular_value(kernel), rtol=1e-4)
    assert abs(_top_singular_value(layer.effective_kernel().numpy()) - 1.0) < 1e-4


@pytest.mark.parametrize("layer,shape", [(SNConv1D(6, 3, 2), (2, 9, 5)), (SNDense(7), (4, 11))])
def test_folded_spectral_norm_serves_the_same_kernel_without_sigma(layer, shape):
    """Inference-only form: ``fold_spectral_norm`` stores W / σ(W) (σ = ‖W û‖ from the stored
    estimate, checked in float64) in the kernel; inference then reads it as it is, and the
    output is the unfolded layer's. Training mode refuses a folded layer."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    layer(x)
    layer.kernel.assign(layer.kernel.value * 4.0)  # σ far from 1
    layer.sigma(training=True)  # one power-iteration step: û is an estimate, not converged
    w = layer.kernel.numpy().astype(np.float64)
    u = layer.sn_u.numpy().astype(np.float64)
    u /= np.linalg.norm(u)
    sigma = np.linalg.norm(w.reshape(-1, w.shape[-1]) @ u)
    y0 = layer(x, training=False).numpy()
    assert layer.spectral_norm and not layer.spectral_norm_folded
    layer.fold_spectral_norm()
    assert layer.spectral_norm_folded
    # σ in float32: û's normalisation (out terms), the matvec (out terms per row), the norm
    # (fan_in terms), then one division: worst case eps·n per sum (float32_bounds).
    fan_in = w.size // w.shape[-1]
    bound = worst_rounding(2 * w.shape[-1] + fan_in + 1, 1)
    within("folded kernel vs W/σ in float64",
           relative_difference(layer.kernel.numpy(), w / sigma, np.abs(w / sigma).max()), bound)
    exceeds("W left unscaled", relative_difference(w, w / sigma, np.abs(w / sigma).max()), bound)
    # The served output: the same kernel values, now read instead of recomputed (an eager
    # evaluation of the same ops gives the same float32 kernel).
    np.testing.assert_array_equal(layer(x, training=False).numpy(), y0)
    with pytest.raises(RuntimeError, match="folded"):
        layer(x, training=True)
    layer.fold_spectral_norm()  # a second fold is a no-op, not a second division
    np.testing.assert_array_equal(layer(x, training=False).numpy(), y0)


def test_spectral_norm_gradient_flows_through_sigma():
    """Reparameterisation W/σ(W) (Miyato et al.), not projection: ∂/∂W <W/σ, R> =
    R/σ − <W, R>/σ² · v uᵀ with u the stored estimate and v = Wu/‖Wu‖."""
    layer = SNDense(4)
    layer(tf.zeros([1, 6]))
    rng = np.random.default_rng(0)
    r = rng.normal(size=(6, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer.effective_kernel(training=False) * tf.constant(r, tf.float32))
    grad = tape.gradient(loss, layer.kernel)
    w = layer.kernel.numpy().astype(np.float64)
    u = layer.sn_u.numpy().astype(np.float64)
    u /= np.linalg.norm(u)
    sigma = np.linalg.norm(w @ u)
    v = w @ u / sigma
    expected = r / sigma - (w * r).sum() / sigma**2 * np.outer(v, u)
    # float32 TF vs float64 closed form: rounding of Wu (6 terms), ‖Wu‖ and ⟨W, R⟩ (24 terms),
    # forward and back (float32_bounds.worst_rounding). Worst measured: 0.012 of it.
    bound = worst_rounding(24, 6)
    within("autodiff vs closed form", relative_difference(grad.numpy(), expected), bound)
    # Control, 9,800× the bound: projection (no gradient through σ) would give R/σ.
    exceeds("gradient without the σ term", relative_difference(r / sigma, expected), bound)


def test_power_iteration_state_only_changes_in_training():
    layer = SNConv1D(3, 3)
    layer(tf.zeros([1, 5, 4]))
    u0 = layer.sn_u.numpy().copy()
    layer(tf.ones([1, 5, 4]), training=False)
    np.testing.assert_array_equal(layer.sn_u.numpy(), u0)
    layer(tf.ones([1, 5, 4]), training=True)
    assert not np.allclose(layer.sn_u.numpy(), u0)


@pytest.mark.parametrize("shape", [(3, 40, 16), (3, 8, 64), (16, 8)])
def test_orthogonal_initialisation(shape):
    layer = SNConv1D(shape[-1], shape[0]) if len(shape) == 3 else SNDense(shape[-1])
    in_dim = shape[1] if len(shape) == 3 else shape[0]
    layer(tf.zeros([1, 4, in_dim]) if len(shape) == 3 else tf.zeros([1, in_dim]))
    w = layer.kernel.numpy().reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-5)


def test_masked_conv_ignores_padding():
    layer = SNConv1D(4, 3, dilation=2)
    x = np.random.default_rng(1).normal(size=(1, 10, 3)).astype(np.float32)
    padded = x.copy()
    padded[:, 6:] = 100.0  # garbage in the padding
    mask = tf.sequence_mask([6], 10, dtype=tf.float32)[:, :, None]
    y_masked = layer(tf.constant(padded), seq_mask=mask).numpy()
    y_alone = layer(tf.constant(x[:, :6])).numpy()
    # Length 10 vs 6: rounding of one k·C_in = 9-term sum (float32_bounds.worst_rounding).
    # Worst measured: 0.
    bound = worst_rounding(3 * 3, 1)
    within("masked vs alone", relative_difference(y_masked[:, :6], y_alone), bound)
    # Control, 6e7× the bound: without the mask the padding reaches the last 2 frames.
    y_unmasked = layer(tf.constant(padded)).numpy()
    exceeds("padding not masked", relative_difference(y_unmasked[:, :6], y_alone), bound)


def _masked_moments_numpy(x, lengths):
    valid = np.concatenate([x[i, :n] for i, n in enumerate(lengths)], axis=0)
    return valid.mean(axis=0), valid.var(axis=0)


def test_masked_batch_norm_uses_only_valid_positions():
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 2.0, size=(3, 7, 5)).astype(np.float32)
    lengths = [7, 2, 4]
    mask = tf.sequence_mask(lengths, 7, dtype=tf.float32)[:, :, None]
    bn = MaskedSyncBatchNorm()
    mean, var = bn.batch_moments(tf.constant(x), mask)
    ref_mean, ref_var = _masked_moments_numpy(x, lengths)
    # TF's Σx, Σx² vs NumPy's pairwise two-pass moments, relative to the terms (x and x²):
    # 21-term sums, then E[x²] − mean² (float32_bounds.worst_rounding). Worst measured: 0.008 of it.
    bound = worst_rounding(x.shape[0] * x.shape[1], 2)
    within("masked mean", relative_difference(mean.numpy(), ref_mean, np.abs(x).max()), bound)
    within("masked variance", relative_difference(var.numpy(), ref_var, (x**2).max()), bound)
    # Control, 7,500× the bound: the padding counted.
    exceeds("unmasked mean", relative_difference(x.mean(axis=(0, 1)), ref_mean,
                                                 np.abs(x).max()), bound)


def test_cross_replica_batch_norm_statistics_equal_the_global_batch(mirrored_cpu_strategy):
    strategy = mirrored_cpu_strategy
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 3.0, size=(4, 6, 5)).astype(np.float32)
    lengths = np.array([6, 3, 1, 5])
    with strategy.scope():
        bn = MaskedSyncBatchNorm()
        bn.build((None, None, 5))

    def replica_fn(xs, ls):
        mask = tf.sequence_mask(ls, 6, dtype=tf.float32)[:, :, None]
        return bn.batch_moments(xs, mask)

    ds = tf.data.Dataset.from_tensor_slices((x, lengths)).batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(ds)))
    means, variances = strategy.run(tf.function(replica_fn), args=batch)
    ref_mean, ref_var = _masked_moments_numpy(x, lengths)
    # Two replicas' partial sums, all-reduced, vs NumPy: as in the single-replica test plus
    # one more addition (float32_bounds.worst_rounding). Worst measured: 0.0037 of it.
    bound = worst_rounding(x.shape[0] * x.shape[1], 3)
    for m, v in zip(strategy.experimental_local_results(means),
                    strategy.experimental_local_results(variances), strict=True):
        within("cross-replica mean", relative_difference(m.numpy(), ref_mean, np.abs(x).max()),
               bound)
        within("cross-replica variance",
               relative_difference(v.numpy(), ref_var, (x**2).max()), bound)
    # ...whereas one replica's local statistics differ, 10,000× the bound.
    local_mean, _ = _masked_moments_numpy(x[:2], lengths[:2])
    exceeds("replica-local mean", relative_difference(local_mean, ref_mean, np.abs(x).max()),
            bound)


def test_standing_statistics_average_the_accumulated_batches():
    bn = MaskedSyncBatchNorm()
    rng = np.random.default_rng(4)
    batches = [rng.normal(i, 1 + i, size=(2, 9, 3)).astype(np.float32) for i in range(3)]
    bn(tf.constant(batches[0]))
    bn.reset_standing()
    bn.accumulate_standing = True
    moving_before = bn.moving_mean.numpy().copy()
    for b in batches:
        bn(tf.constant(b), training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), moving_before)  # untouched meanwhile
    bn.accumulate_standing = False
    bn.finalize_standing()
    # TF's Σx, Σx² per batch, summed over 3 batches, vs NumPy's two-pass moments, relative
    # to the terms (float32_bounds.worst_rounding). Worst measured: 0.0019 of it.
    bound = worst_rounding(batches[0].shape[0] * batches[0].shape[1], 3)
    x_max = max(np.abs(b).max() for b in batches)
    ref_mean = np.mean([b.mean(axis=(0, 1)) for b in batches], axis=0)
    ref_var = np.mean([b.var(axis=(0, 1)) for b in batches], axis=0)
    within("standing mean", relative_difference(bn.moving_mean.numpy(), ref_mean, x_max), bound)
    within("standing variance",
           relative_difference(bn.moving_variance.numpy(), ref_var, x_max**2), bound)
    # Control, 31,000× the bound: the last batch's statistics instead of the average.
    exceeds("last batch only", relative_difference(batches[-1].mean(axis=(0, 1)), ref_mean,
                                                   x_max), bound)
    # Inference now normalises with exactly these statistics: (x − m)·rsqrt(v + ε) vs
    # (x − m)/√(v + ε), six roundings per element (rsqrt is not correctly rounded: ≤ 2 ulp),
    # relative to the output. Worst measured: 0.070 of it.
    x = batches[1]
    y = bn(tf.constant(x), training=False).numpy()
    expected = (x - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    bound = worst_rounding(1, 6)
    within("inference normalisation", relative_difference(y, expected), bound)
    # Control, 250,000× the bound: the batch's own statistics (training-mode BN).
    own = (x - x.mean(axis=(0, 1))) / np.sqrt(x.var(axis=(0, 1)) + bn.epsilon)
    exceeds("batch statistics", relative_difference(own, expected), bound)


def test_conditional_batch_norm_gain_and_shift_come_from_the_conditioning():
    cbn = ConditionalBatchNorm()
    x = tf.random.normal([2, 5, 4])
    y1 = cbn(x, tf.zeros([2, 3]), training=True).numpy()
    y2 = cbn(x, tf.constant([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), training=True).numpy()
    # Zero conditioning: plain normalisation; changing one example's y changes only that example.
    mean, var = x.numpy().mean(axis=(0, 1)), x.numpy().var(axis=(0, 1))
    # Moments of 10 positions (Σx, Σx², E[x²] − mean²), then the six roundings of the
    # normalisation, vs NumPy (float32_bounds.worst_rounding), relative to the output.
    # Worst measured: 0.031 of it (0.055 over 300 random x; √n instead of n: 0.13).
    bound = worst_rounding(2 * 5, 3) + worst_rounding(1, 6)
    within("zero conditioning vs plain BN",
           relative_difference(y1, (x.numpy() - mean) / np.sqrt(var + 1e-4)), bound)
    # Same statistics and example-1 gains: only rounding. Worst measured: 0.
    within("other example's conditioning", relative_difference(y2[1], y1[1]), bound)
    # Control, 150,000× the bound: the example whose conditioning changed.
    exceeds("own conditioning changed", relative_difference(y2[0], y1[0]), bound)


def test_conditional_batch_norm_inference_folds_statistics_and_affine_into_one_scale_shift():
    """Inference is BN(x; frozen m, v)·(1 + γ(y)) + β(y), evaluated as x·s + t with
    s = rsqrt(v + ε)·(1 + γ) and t = β − m·s per example and channel (two passes over x)."""
    rng = np.random.default_rng(7)
    cbn = ConditionalBatchNorm(cond_dim=3)
    x = rng.normal(0.0, 2.0, size=(2, 9, 4)).astype(np.float32)
    cond = rng.normal(size=(2, 3)).astype(np.float32)
    cbn(tf.constant(x), tf.constant(cond), training=True)  # builds
    m = rng.uniform(-3, 3, size=4).astype(np.float32)
    v = rng.uniform(0.5, 4.0, size=4).astype(np.float32)
    cbn.bn.moving_mean.assign(m)
    cbn.bn.moving_variance.assign(v)
    y = cbn(tf.constant(x), tf.constant(cond), training=False).numpy()
    gamma = 1.0 + cbn.gain(tf.constant(cond)).numpy().astype(np.float64)  # [2, 4]
    beta = cbn.shift(tf.constant(cond)).numpy().astype(np.float64)
    inv = 1.0 / np.sqrt(v.astype(np.float64) + cbn.bn.epsilon)
    expected = (x - m) * inv * gamma[:, None, :] + beta[:, None, :]
    # Float32 roundings against the float64 composition: s (v + ε, rsqrt ≤ 2 ulp, 1 + γ, the
    # product: ≤ 4.5 eps relative), m·s and β − m·s, x·s and the sum: ≤ 8 eps of
    # |x·s| + |m·s| + |β| (float32_bounds.worst_rounding).
    s = inv * gamma
    scale = float(np.max(np.abs(x * s[:, None, :]) + np.abs(m * s)[:, None, :]
                         + np.abs(beta)[:, None, :]))
    bound = worst_rounding(1, 8)
    within("folded inference", relative_difference(y, expected, scale), bound)
    # Controls: the mean left out of the shift; the batch's own statistics (training-mode BN).
    exceeds("shift without the mean", relative_difference(
        x * s[:, None, :] + beta[:, None, :], expected, scale), bound)
    own = cbn(tf.constant(x), tf.constant(cond), training=True).numpy()
    exceeds("batch statistics", relative_difference(own, expected, scale), bound)


@pytest.mark.parametrize("dilation", [1, 3])
def test_conv_inference_with_fused_bias_matches_numpy(dilation):
    """The inference form (Conv2D + BiasAdd before the squeeze, which Grappler fuses) is the
    dilated 'SAME' conv plus the bias: the same products and one bias addition per output."""
    rng = np.random.default_rng(8)
    layer = SNConv1D(6, 3, dilation, use_bias=True)
    x = tf.constant(rng.normal(size=(2, 13, 5)).astype(np.float32))
    layer(x)
    layer.bias.assign(rng.normal(size=6).astype(np.float32))
    kernel = layer.effective_kernel(False).numpy().astype(np.float64)
    y = layer(x, training=False).numpy()
    # NumPy: 'SAME' zero padding of (k − 1)·d / 2 on each side, then Σ over taps and channels.
    pad = (3 - 1) * dilation // 2
    xp = np.pad(x.numpy().astype(np.float64), ((0, 0), (pad, pad), (0, 0)))
    ref = sum(xp[:, j * dilation:j * dilation + 13, :] @ kernel[j] for j in range(3))
    ref = ref + layer.bias.numpy()
    # k·C_in = 15 products summed, plus the bias (float32_bounds.worst_rounding), relative to
    # the terms' scale.
    terms = float(np.max(np.abs(xp).max() * np.abs(kernel).sum(axis=(0, 1)))) + float(
        np.abs(layer.bias.numpy()).max())
    bound = worst_rounding(3 * 5 + 1, 1)
    within("inference conv + bias", relative_difference(y, ref, terms), bound)
    exceeds("without the bias", relative_difference(ref - layer.bias.numpy(), ref, terms), bound)

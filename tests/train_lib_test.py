"""Tests of the App.-D training step and loop (tts_gan.train_lib, tts-gan-train)."""

from __future__ import annotations

import glob
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from float32_bounds import (
    EPS,
    audio_difference,
    exceeds,
    rounding,
    within,
    worst_rounding,
)
from ml_collections import ConfigDict

from tts_gan import data as data_lib
from tts_gan import mulaw, train_lib
from tts_gan.generator import accumulate_standing_statistics, build_and_init, build_generator
from tts_gan.layers import SNConv1D

FRAMES = 24  # tiny / micro config window


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=32)


# --- helpers -----------------------------------------------------------------------------------

def _all_weights(tr: train_lib.GANTrainer) -> dict[str, np.ndarray]:
    return {f"{k}/{v.path}": np.array(v.numpy())
            for k, m in (("G", tr.G), ("E", tr.G_ema), ("D", tr.D)) for v in m.weights}


def _set_weights(tr: train_lib.GANTrainer, weights: dict[str, np.ndarray]) -> None:
    for k, m in (("G", tr.G), ("E", tr.G_ema), ("D", tr.D)):
        for v in m.weights:
            v.assign(weights[f"{k}/{v.path}"])


def _distribute(strategy, batch: dict[str, np.ndarray]):
    """The global ``batch`` split evenly over the strategy's replicas, in replica order."""
    n = strategy.num_replicas_in_sync
    gb = len(batch["audio"])

    def split(ctx):
        r = ctx.replica_id_in_sync_group
        return {k: tf.constant(v[r * gb // n:(r + 1) * gb // n]) for k, v in batch.items()}

    return strategy.experimental_distribute_values_from_function(split)


def _trainer_steps(config, strategy, batch, steps: int, *, xla: bool = False, init=None):
    """Builds a trainer, optionally loads ``init`` weights, runs ``steps`` steps on the same
    global ``batch`` split over the replicas; returns (trainer, initial weights, metrics,
    weights, rerun). ``rerun(step, other_batch=None, lr_scale=1, weights=None, steps=1)`` puts
    the trainer back at the initial weights (or ``weights``) and optimizer state (learning
    rates × ``lr_scale``) and runs the ``steps`` steps from ``step`` on, returning the last
    one's metrics and the weights: no retrace (same shapes; the step number and learning rates
    are tensors), so a control or a sensitivity probe costs one step, and tests can share one
    traced trainer (train_aux_test)."""
    keras.utils.set_random_seed(1234)  # reproducible initial weights
    tr = train_lib.GANTrainer(config, strategy, config.generator.feature_dim,
                              config.generator.num_speakers, xla=xla)
    if init is not None:
        _set_weights(tr, init)
    w0 = _all_weights(tr)
    opt_vars = [v for o in (tr.g_opt, tr.d_opt) for v in o.variables]
    opt0 = [np.array(v.numpy()) for v in opt_vars]
    dist = _distribute(strategy, batch)
    metrics = [tr.scalar_metrics(tr.train_step(dist, s)) for s in range(steps)]

    def rerun(step: int, other_batch=None, lr_scale: float = 1.0, weights=None,
              steps: int = 1):
        _set_weights(tr, w0 if weights is None else weights)
        for v, x in zip(opt_vars, opt0, strict=True):
            v.assign(x)
        for opt in (tr.g_opt, tr.d_opt):  # (the optimizer variables hold the rate)
            opt.learning_rate.assign(opt.learning_rate * lr_scale)
        b = dist if other_batch is None else _distribute(strategy, other_batch)
        for s in range(step, step + steps - 1):
            tr.train_step(b, s)
        return tr.scalar_metrics(tr.train_step(b, step + steps - 1)), _all_weights(tr)

    return tr, w0, metrics, _all_weights(tr), rerun


def _run_steps(config, strategy, batch, steps: int, *, xla: bool = False, init=None):
    """:func:`_trainer_steps` without the trainer: (initial weights, metrics, weights)."""
    return _trainer_steps(config, strategy, batch, steps, xla=xla, init=init)[1:4]


def _step_rounding(tr: train_lib.GANTrainer, batch: dict[str, np.ndarray],
                   backward: bool = True) -> float:
    """float32_bounds.rounding of one App.-D step: its widest sums are the reductions over the
    global batch's samples (B·N: training-mode BN moments, weight gradients; wider than any
    conv's k·C_in), and its longest path runs forward through G and the deepest RWD and (with
    ``backward``) back through both."""
    convs = [layer for layer in tr.D._flatten_layers() if isinstance(layer, SNConv1D)]
    fan_in = max([batch["audio"].size]
                 + [s.kernel_size * s.in_channels for s in tr.G.conv_specs()]
                 + [int(layer.kernel.shape[0] * layer.kernel.shape[1]) for layer in convs])
    depth = tr.G.num_layers() + max(r.depth for r in tr.D.rwds)
    return rounding(fan_in, 2 * depth if backward else depth)


_NORMS = ("d_grad_norm", "g_grad_norm", "ortho_penalty")


def _metrics_difference(a: list[dict], b: list[dict]) -> float:
    """max |a − b| / scale over steps and metrics. The scale is |a| for the gradient norms and
    the orthogonality penalty (sums of squares: no cancellation) and max(|a|, 1) for losses
    and scores, whose unit is the hinge margin 1 (a mean score can cancel to ≈ 0 while its
    terms are O(1): measured −4.5e-4)."""
    worst = 0.0
    for step, (ma, mb) in enumerate(zip(a, b, strict=True)):
        assert ma.keys() == mb.keys(), step
        for k in ma:
            assert np.isfinite(ma[k]), (step, k)
            scale = abs(ma[k]) if k in _NORMS else max(abs(ma[k]), 1.0)
            d = abs(ma[k] - mb[k])
            worst = max(worst, d / scale if scale else float(d > 0) * np.inf)
    return worst


def _updates_difference(w0, wa, wb) -> float:
    """max over variables of (‖Δa − Δb‖ − eps·‖a‖) / max(‖Δa‖, ‖Δ kernel‖), Δ = w − w0.

    eps·‖a‖ is the float32 rounding of the weights themselves (w0 + Δ, ½ ulp in each run).
    The scale includes the update of the same layer's kernel: a conv bias right before a
    BatchNorm has true gradient 0, and its update is rounding noise of that layer's gradient
    sums, relative to their size (measured 1e-10 vs a kernel update of 1e-2)."""
    worst = 0.0
    for k in w0:
        a, b = wa[k], wb[k]
        da, db = a - w0[k], b - w0[k]
        scale = np.linalg.norm(da)
        kernel = k.rsplit("/", 1)[0] + "/kernel"
        if k.endswith("/bias") and kernel in w0:
            scale = max(scale, np.linalg.norm(wa[kernel] - w0[kernel]))
        d = max(0.0, np.linalg.norm(da - db) - EPS * np.linalg.norm(a))
        worst = max(worst, d / scale if scale else float(d > 0) * np.inf)
    return worst


def _assert_kernels_updated(w0, w) -> None:
    """Every kernel of G and D moved: the comparisons above are not between two no-ops."""
    kernels = [k for k in w0 if k.endswith("/kernel") and not k.startswith("E/")]
    assert kernels and all(np.any(w[k] != w0[k]) for k in kernels)


def _ema_difference(w0, w, decay: float) -> float:
    """max |E1 − (d·E0 + (1 − d)·G1)| relative to d·|E0| + (1 − d)·|G1| over G's kernels
    and biases (E0 = G0), d and 1 − d in float32 as the step has them (0.01 and 1 − 0.99f
    differ by 9e-7): three float32 roundings per element, so ≤ worst_rounding(1, 3)."""
    d32 = np.float32(decay)
    worst = 0.0
    for k in (k for k in w0 if k.startswith("G/") and k.endswith(("/kernel", "/bias"))):
        e = "E/" + k[2:]
        np.testing.assert_array_equal(w0[e], w0[k])
        terms = d32 * np.abs(w0[e]) + (np.float32(1) - d32) * np.abs(w[k])
        d = np.abs(w[e] - (d32 * w0[e] + (np.float32(1) - d32) * w[k]))
        worst = max(worst, float(np.max(np.where(terms > 0, d / np.maximum(terms, 1e-38),
                                                 np.where(d > 0, np.inf, 0.0)))))
    return worst


# --- unit tests ----------------------------------------------------------------------------

def test_hinge_terms_scale_by_the_global_batch():
    real = tf.constant([[2.0, 0.5], [-1.0, 0.0]])  # 2 examples x 2 discriminators
    fake = tf.constant([[-2.0, 0.5], [1.0, -0.5]])
    d_real, d_fake = train_lib.hinge_d_terms(real, fake, global_batch=4)
    np.testing.assert_allclose(d_real.numpy(), [(0 + 2) / 4, (0.5 + 1) / 4])
    np.testing.assert_allclose(d_fake.numpy(), [(0 + 2) / 4, (1.5 + 0.5) / 4])
    np.testing.assert_allclose(train_lib.hinge_g_terms(fake, 4).numpy(), [1 / 4, 0.0])


def test_crop_windows_are_frame_aligned():
    frames, dim, spf = 10, 3, 120
    feats = np.arange(2 * frames * dim, dtype=np.float32).reshape(2, frames, dim)
    audio = np.repeat(feats[..., 0], spf, axis=1)  # sample value = frame's first feature
    out = train_lib.crop_windows({"audio": tf.constant(audio), "features": tf.constant(feats),
                                  "speaker": tf.zeros([2], tf.int32)}, 4, tf.constant([1, 2]))
    assert out["audio"].shape == (2, 4 * spf) and out["features"].shape == (2, 4, dim)
    np.testing.assert_array_equal(np.repeat(out["features"].numpy()[..., 0], spf, axis=1),
                                  out["audio"].numpy())


def test_build_models_ema_starts_as_copy_and_structures_match(data_dir):
    config = train_lib.resolve_config(td.micro_config(data_dir), data_dir)
    gen, ema, disc = train_lib.build_models(config, 8, 1)
    assert [v.path for v in gen.weights] == [v.path for v in ema.weights]
    for a, b in zip(gen.weights, ema.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert disc.rwd_names == ["cRWD_k1_wfull", "uRWD_k8_wfull"]


def test_config_mu_reencodes_training_and_eval_audio(data_dir):
    """config data.mu (App. C: 255 or 65535) is the µ-law of every batch G and D see; prepared
    16-bit audio is re-encoded. A bad value is rejected when the config is resolved."""
    def first_audio(mu: float) -> tuple[np.ndarray, np.ndarray]:
        c = td.micro_config(data_dir)
        c.data.mu = mu
        config = train_lib.resolve_config(c, data_dir)
        ctx = tf.distribute.InputContext(1, 0, 1)
        ds = train_lib.make_train_dataset_fn(config, data_dir, seed=5)(ctx)
        evals = train_lib.eval_batch(data_dir, 2, 8, seed=0, mu=config.data.mu)
        return next(iter(ds))["audio"].numpy(), evals["audio"].numpy()

    (train16, eval16), (train8, eval8) = first_audio(65535.0), first_audio(255.0)
    np.testing.assert_allclose(eval8, mulaw.transcode(eval16, 65535.0, 255.0), atol=1e-6)
    assert np.abs(eval8 - eval16).max() > 1e-2
    # The training order is not deterministic; 8-bit µ-law maps every |x| < 1 lower than 16-bit.
    assert np.mean(np.abs(train8)) < np.mean(np.abs(train16)) - 0.05
    c = td.micro_config(data_dir)
    c.data.mu = 0.0
    with pytest.raises(ValueError, match="config data.mu must be a finite number > 0"):
        train_lib.resolve_config(c, data_dir)


def test_eval_windows_cover_the_speakers(tmp_path):
    """The fixed TensorBoard windows are taken round-robin over speakers, not the first windows
    of the (uid-sorted, so speaker-blocked) validation split; the same windows every call."""
    d = td.write_dataset(str(tmp_path / "spk"), shards={"train": 1, "valid": 1},
                         windows_per_shard=9, num_speakers=3, sorted_speakers=True)
    ds = data_lib.make_dataset(d, "valid", 9, shuffle=False, repeat=False, deterministic=True)
    everything = next(iter(ds))
    assert everything["speaker"].numpy().tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]

    def picked(num: int) -> tuple[list[int], list[int]]:
        evals = train_lib.eval_batch(d, num, 8, seed=0)
        rows = [int(np.argmin(np.abs(everything["audio"].numpy() - a).sum(axis=1)))
                for a in evals["audio"].numpy()]
        np.testing.assert_array_equal(evals["features"].numpy(),
                                      everything["features"].numpy()[rows])
        assert evals["z"].shape == (min(num, 9), 8)
        return evals["speaker"].numpy().tolist(), rows

    assert picked(2) == ([0, 1], [0, 3])
    assert picked(4) == ([0, 1, 2, 0], [0, 3, 6, 1])
    assert picked(4) == picked(4)
    assert picked(20) == ([0, 1, 2] * 3, [0, 3, 6, 1, 4, 7, 2, 5, 8])  # capped at the split


def test_discriminator_input_mu_is_what_the_rwds_see(data_dir):
    """``discriminator.input_mu`` (not in the paper; ``experiments/small_dmu8.py``): the step's
    D scores are the scores of real and generated 16-bit µ-law audio re-encoded with µ = 255,
    recomputed here with the NumPy µ-law on a copy of the initial weights."""
    c = td.micro_config(data_dir)
    c.discriminator.input_mu = 255.0
    config = train_lib.resolve_config(c, data_dir)
    batch = td.fixed_batch(4, FRAMES)
    w0, metrics, _ = _run_steps(config, tf.distribute.get_strategy(), batch, 1)

    ref = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
    _set_weights(ref, w0)
    feats = tf.constant(batch["features"])
    fake = ref.G(feats, ref._noise(tf.constant(0, tf.int64), 0, 0, 4), training=True)
    x = np.concatenate([batch["audio"], fake.numpy()[..., 0]])
    scores = ref.D(tf.constant(mulaw.transcode(x, 65535.0, 255.0)), tf.concat([feats, feats], 0),
                   training=True).numpy()
    # The step's graph vs eager: float32 rounding of G and D forward (float32_bounds), in
    # units of max(|score|, 1) (the hinge margin). Worst measured: 0.001 of it (XLA auto-jit).
    bound = _step_rounding(ref, batch, backward=False)
    worst = max(abs(metrics[0][f"score_{kind}/{name}"] - s.mean()) / max(abs(s.mean()), 1.0)
                for i, name in enumerate(ref.rwd_names)
                for kind, s in (("real", scores[:4, i]), ("fake", scores[4:, i])))
    within("step scores vs recomputed", worst, bound)
    # Control, 104× the bound: the scores of the untransformed audio (the view is
    # really applied).
    plain = ref.D(tf.constant(x), tf.concat([feats, feats], 0), training=False).numpy()
    exceeds("D sees 16-bit µ-law", np.max(np.abs(plain - scores) / np.maximum(
        np.abs(scores), 1.0)), bound)

    default = train_lib.resolve_config(td.micro_config(data_dir), data_dir)
    y = tf.constant(batch["audio"])
    assert train_lib.GANTrainer(default, tf.distribute.get_strategy(), 8, 1).d_view(y) is y
    c.discriminator.input_mu = -3.0
    with pytest.raises(ValueError, match="config discriminator.input_mu .* got -3.0"):
        train_lib.resolve_config(c, data_dir)


@pytest.mark.parametrize("kind", ["default", "mirrored"])
def test_eval_samples_use_ema_standing_statistics_and_restore_state(
        kind, data_dir, tmp_path, request):
    """TensorBoard samples come from G_ema with its own standing statistics (seeds [step, i]),
    not from G's running statistics, and leave G_ema's BN state as it was."""
    config = train_lib.resolve_config(td.micro_config(data_dir, ema_decay=0.5), data_dir)
    strategy = (request.getfixturevalue("mirrored_cpu_strategy") if kind == "mirrored"
                else tf.distribute.get_strategy())
    keras.utils.set_random_seed(7)
    tr = train_lib.GANTrainer(config, strategy, 8, 1)
    dist = _distribute(strategy, td.fixed_batch(4, FRAMES))
    for s in range(3):
        tr.train_step(dist, s)
    tr.refresh_ema_state()
    evals = train_lib.eval_batch(data_dir, 2, config.generator.noise_dim, seed=0)
    bns = tr.G_ema.batch_norms()
    state = [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in bns]
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        plain = train_lib.write_eval_summaries(tr, evals, 5, 24000, 65535.0, standing_passes=0)
        standing = train_lib.write_eval_summaries(tr, evals, 5, 24000, 65535.0,
                                                  standing_passes=3)
    for bn, (m, v) in zip(bns, state, strict=True):
        np.testing.assert_array_equal(bn.moving_mean.numpy(), m)
        np.testing.assert_array_equal(bn.moving_variance.numpy(), v)

    feeds = [{"features": evals["features"],
              "z": train_lib.stateless_normal(evals["z"].shape, tf.constant([5, i]))}
             for i in range(3)]
    with strategy.scope():
        accumulate_standing_statistics(tr.G_ema, feeds, 3)
        ref = tr.G_ema(evals["features"], evals["z"], training=False)[..., 0]
    # Same computation in write_eval_summaries and here: float32 rounding of the standing
    # statistics' sums over the batch's samples and of G (float32_bounds), on linear audio.
    # Worst measured: 0.0036 of the bound.
    n = int(np.prod(evals["features"].shape[:2])) * tr.G_ema.samples_per_frame
    specs = tr.G_ema.conv_specs()
    bound = rounding(max([n] + [s.kernel_size * s.in_channels for s in specs]),
                     tr.G_ema.num_layers())
    ref = mulaw.decode(ref.numpy(), 65535.0)
    within("eval samples vs recomputed", audio_difference(standing, ref, 65535.0), bound)
    # Control, 1,160× the bound: G's running statistics give other samples.
    exceeds("G's running statistics", audio_difference(plain, ref, 65535.0), bound)
    tags = {v.tag for f in glob.glob(str(tmp_path / "events*"))
            for r in tf.data.TFRecordDataset(f)
            for v in tf.compat.v1.Event.FromString(r.numpy()).summary.value}
    assert {"eval/ema_generator", "eval/real", "eval/ema_generated_rms"} <= tags


# --- (1) mirrored == default, (3) XLA == no XLA, bfloat16 -----------------------------------

def test_mirrored_two_replicas_matches_default(data_dir, mirrored_cpu_strategy):
    """Same global batch, same seeds: 2-replica MirroredStrategy == default strategy.

    Holds only if BN statistics are cross-replica, losses are scaled by the *global* batch and
    gradients are summed once. RWD windows are drawn per replica batch, so this comparison uses
    deterministic full-input discriminators (Table 1's FullD style); z is drawn for the global
    batch and sliced per replica, so it is split-invariant. adam_epsilon=1 makes the update
    linear in the gradient (Adam with ε ≫ √v is SGD with lr·√(1−β2)/ε), so a wrong gradient
    scale shows up in the weights (Adam with a tiny ε is scale-invariant); learning rate 1 makes
    every kernel's update ≈ 1e-3 of its weights or more, far above their float32 ulp (with the tiny
    config's rates G's updates were below it, and the comparison saw only w0's rounding). One
    step (D update, G update against the updated D, EMA): from the second step on,
    float-rounding differences of the two summation orders are amplified by the tiny model (BN
    over 4 examples, saturated tanh) to ~0.5% in some gradient norms, which is chaos, not a
    distribution bug.

    The two runs differ by float32 rounding only: bound _step_rounding (float32_bounds),
    6.9e-4. Worst measured (oneDNN on, 1/2 threads): metrics 0.0009 of it, updates 0.011, the
    EMA formula 0 of its own bound. Controls: a duplicated replica shard 680× (metrics) and
    1,400× (updates), a doubled update 5,100×, EMA not applied 2.8e6×.
    """
    config = train_lib.resolve_config(td.micro_config(
        data_dir, adam_epsilon=1.0, g_learning_rate=1.0, d_learning_rate=1.0), data_dir)
    batch = td.fixed_batch(4, FRAMES)
    w0, m_default, w_default = _run_steps(config, tf.distribute.get_strategy(), batch, 1)
    mirrored = mirrored_cpu_strategy
    assert mirrored.num_replicas_in_sync == 2
    tr, _, m_mirrored, w_mirrored, rerun = _trainer_steps(config, mirrored, batch, 1, init=w0)
    bound = _step_rounding(tr, batch)
    within("metrics", _metrics_difference(m_default, m_mirrored), bound)
    within("updates", _updates_difference(w0, w_default, w_mirrored), bound)
    _assert_kernels_updated(w0, w_mirrored)
    # EMA of G's trainable weights (App. D): E1 = d·E0 + (1 − d)·G1, E0 = G0.
    d = config.train.ema_decay
    ema_bound = worst_rounding(1, 3)
    for w in (w_default, w_mirrored):
        within("EMA formula", _ema_difference(w0, w, d), ema_bound)
    exceeds("EMA not applied", _ema_difference(w0, {**w_mirrored, **{
        k: w0[k] for k in w0 if k.startswith("E/")}}, d), ema_bound)
    # Controls: replica 1 fed replica 0's half of the batch (a sharding error), and updates
    # twice as large (gradients summed twice, or a loss scaled by the local batch).
    dup = {k: np.concatenate([v[:2], v[:2]]) for k, v in batch.items()}
    m_dup, w_dup = rerun(0, dup)
    exceeds("metrics, duplicated half", _metrics_difference(m_default, [m_dup]), bound)
    exceeds("updates, duplicated half", _updates_difference(w0, w_default, w_dup), bound)
    _, w_double = rerun(0, lr_scale=2.0)
    exceeds("updates, double step", _updates_difference(w0, w_default, w_double), bound)


def test_xla_step_matches_non_xla_step(data_dir):
    """jit_compile=True (our TPU-readiness proxy) computes the same step, random windows
    included (the stateless RNG agrees with and without XLA). Float32 rounding only (fused
    kernels, other conv algorithms): bound _step_rounding (float32_bounds), learning rate 1 as
    in the mirrored test. Worst measured (oneDNN on, 1/2 threads): metrics 0.0016 of the bound,
    updates 0.0066. Control: another step's windows and z, 4,500× (metrics) and 32,000×
    (updates).
    """
    config = train_lib.resolve_config(td.micro_config(
        data_dir, random_windows=True, adam_epsilon=1.0, g_learning_rate=1.0,
        d_learning_rate=1.0), data_dir)
    batch = td.fixed_batch(4, FRAMES)
    default = tf.distribute.get_strategy()
    w0, m_ref, w_ref = _run_steps(config, default, batch, 1)
    tr, _, m_xla, w_xla, rerun = _trainer_steps(config, default, batch, 1, xla=True, init=w0)
    bound = _step_rounding(tr, batch)
    within("metrics", _metrics_difference(m_ref, m_xla), bound)
    within("updates", _updates_difference(w0, w_ref, w_xla), bound)
    _assert_kernels_updated(w0, w_xla)
    # Control: the windows and z of another step (what an RNG disagreeing under XLA gives).
    m_other, w_other = rerun(1)
    exceeds("metrics, other windows and z", _metrics_difference(m_ref, [m_other]), bound)
    exceeds("updates, other windows and z", _updates_difference(w0, w_ref, w_other), bound)


def test_mixed_bfloat16_step_runs_on_cpu(data_dir):
    config = train_lib.resolve_config(td.micro_config(data_dir, random_windows=True), data_dir)
    config.train.mixed_precision = "mixed_bfloat16"
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
    assert tr.G.conv_in.compute_dtype == "bfloat16"
    assert tr.G.conv_in.kernel.dtype == "float32"  # variables stay float32
    b = td.fixed_batch(4, FRAMES)
    z = tf.zeros([4, tr.G.noise_dim])
    assert tr.G(tf.constant(b["features"]), z).dtype == tf.bfloat16
    m = tr.scalar_metrics(tr.train_step({k: tf.constant(v) for k, v in b.items()}, 0))
    assert all(np.isfinite(v) for v in m.values()), m
    assert keras.config.dtype_policy().name == "float32"  # policy restored


# --- (5) NaN guard ---------------------------------------------------------------------------

def test_nan_guard_stops_without_saving(data_dir, tmp_path):
    model_dir = str(tmp_path / "model")
    config = td.micro_config(data_dir, max_steps=2, save_every=2, log_every=1, eval_every=0)
    result = train_lib.train(config, model_dir, log=lambda s: None)
    assert result.end_step == 2 and tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")

    bad = td.write_dataset(str(tmp_path / "nan_data"), window_frames=32, nan_audio=True)
    config = td.micro_config(bad, max_steps=6, save_every=1, log_every=1, eval_every=0)
    with pytest.raises(train_lib.NonFiniteLossError,
                       match=r"non-finite loss at step 2: .*d_loss_real/cRWD_k1_wfull=nan"
                             r".*last checkpoint \(step 2\) is kept"):
        train_lib.train(config, model_dir, log=lambda s: None, trainer=result.trainer)
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
    assert not glob.glob(os.path.join(model_dir, "ckpt-3*"))


def test_check_finite_names_terms():
    with pytest.raises(train_lib.NonFiniteLossError, match=r"step 7: g_loss=inf; .*no checkpoint"):
        train_lib.check_finite({"g_loss": float("inf"), "d_loss": 1.0}, 7, None)
    train_lib.check_finite({"g_loss": 0.5}, 7, None)


# --- (4) kill -9 + resume and (7) a short micro run through the real CLI ---------------------

CLI_CONFIG = "micro"  # experiments/micro.py: a trace of minutes less per process than tiny's


def _cli(*args: str) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "tts-gan-train")
    return [exe, "--config=" + os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "experiments", f"{CLI_CONFIG}.py"), *args]


def _ckpt_step(model_dir: str) -> int:
    latest = tf.train.latest_checkpoint(model_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _scalars(model_dir: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name == "scalars":
                    out.setdefault(v.tag, []).append(
                        (event.step, float(tf.make_ndarray(v.tensor))))
    return {k: sorted(v) for k, v in out.items()}


def test_micro_run_kill9_then_resume(data_dir, tmp_path):
    """Tracing, not stepping, is what a CLI run costs (tiny.py, measured at load 6 on 2 cores:
    7.5 min to the first steps, the first eval 1.7 min, later evals 0.5 min, then 0.2-0.4 s a
    step), so both processes train experiments/micro.py (2 GBlocks, 2 RWDs) and the killed
    run evaluates nothing (nothing reads its evals); the resumed run evaluates at its last
    step, so the CLI's eval path still runs."""
    model_dir = str(tmp_path / "model")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    common = [f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--save_every=10",
              "--log_every=5"]
    proc = subprocess.Popen(_cli(*common, "--eval_every=0", "--max_steps=100000"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 900  # liveness only: generous for a loaded 2-core machine
        while _ckpt_step(model_dir) < 20:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.time() < deadline, "no checkpoint at step >= 20 in time"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _ckpt_step(model_dir)
    assert killed_at >= 20 and killed_at % 10 == 0

    end = killed_at + 10
    rerun = subprocess.run(_cli(*common, "--eval_every=10", f"--max_steps={end}"), env=env,
                           capture_output=True, text=True, timeout=900)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-3000:]
    assert f"ckpt-{killed_at} (step {killed_at})" in out
    assert f"from step {killed_at} to {end}" in out
    assert _ckpt_step(model_dir) == end
    for name in ("config.json", "manifest.json"):
        assert os.path.exists(os.path.join(model_dir, name))

    # (7) losses finite; the D hinge losses moved away from their initial values.
    scalars = _scalars(model_dir)
    assert scalars["d_loss"][-1][0] == end
    assert all(np.isfinite(v) for series in scalars.values() for _, v in series)
    names = [k.split("/", 1)[1] for k in scalars if k.startswith("d_loss_real/")]
    assert len(names) == len(importlib.import_module(
        f"experiments.{CLI_CONFIG}").get_config().discriminator.rwds)
    moved = [abs(scalars[f"d_loss_real/{n}"][-1][1] + scalars[f"d_loss_fake/{n}"][-1][1]
                 - scalars[f"d_loss_real/{n}"][0][1] - scalars[f"d_loss_fake/{n}"][0][1])
             for n in names]
    assert np.mean(moved) > 0.05, moved
    assert "perf/examples_per_sec" in scalars and "d_grad_norm" in scalars

    # The exporter's contract: the EMA generator restores from config.json + checkpoint.
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ConfigDict(json.load(f))
    gen = build_and_init(build_generator(cfg.generator))
    before = [v.numpy().copy() for v in gen.trainable_variables]
    tf.train.Checkpoint(ema_generator=gen).restore(
        tf.train.latest_checkpoint(model_dir)).expect_partial().assert_existing_objects_matched()
    assert any(not np.array_equal(a, v.numpy())
               for a, v in zip(before, gen.trainable_variables, strict=True))

"""The train step with the opt-in auxiliary losses and generator-only warm-up
(train.aux, train.d_start_step; tts_gan.losses): off-by-default paper path untouched,
distribution-correct, XLA-compilable, logged per term."""

from __future__ import annotations

import glob

import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from float32_bounds import EPS, exceeds, within
from ml_collections import ConfigDict
from train_lib_test import (
    _NORMS,
    _assert_kernels_updated,
    _metrics_difference,
    _run_steps,
    _step_rounding,
    _trainer_steps,
    _updates_difference,
)

from tts_gan import train_lib

FRAMES = 24  # the micro config's window (train_lib_test)


AUX = dict(stft_weight=1.0, mel_weight=45.0, ged_weight=1.0, fm_weight=2.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=32)


def _config(data_dir: str, d_start_step: int = 0, **overrides):
    c = td.micro_config(data_dir, adam_epsilon=1.0)
    c.train.aux = ConfigDict(dict(c.train.aux.to_dict(), **AUX))
    c.train.d_start_step = d_start_step
    for k, v in overrides.items():
        c.train[k] = v
    return train_lib.resolve_config(c, data_dir)


@pytest.fixture(scope="module")
def warm_up_run(data_dir):
    """One traced trainer of every auxiliary term with d_start_step = 2 (default strategy, no
    XLA) and its first three steps (G-only, G-only, full) from the seeded initial weights:
    (trainer, initial weights, metrics, weights, rerun) of train_lib_test._trainer_steps.
    Shared by the warm-up test and the XLA test's reference (every rerun starts from the
    initial weights and optimizer state), so the trainer is built and traced once."""
    return _trainer_steps(_config(data_dir, d_start_step=2), tf.distribute.get_strategy(),
                          td.fixed_batch(4, FRAMES), 3)


@pytest.fixture(scope="module")
def aux_step(data_dir):
    """One traced trainer of every auxiliary term from step 0 (default strategy, learning rates
    1 and adam_epsilon 1) and its first step from the seeded initial weights: (trainer,
    initial weights, metrics, weights, rerun) of train_lib_test._trainer_steps. Shared by the
    mirrored test's default-strategy side and the test that the terms change G's update."""
    return _trainer_steps(_config(data_dir, g_learning_rate=1.0, d_learning_rate=1.0),
                          tf.distribute.get_strategy(), td.fixed_batch(4, FRAMES), 1)


def test_generator_only_warm_up_leaves_d_alone(warm_up_run):
    """Before d_start_step: no D update, no hinge term; G trains on the auxiliary losses."""
    _, w0, metrics, w, rerun = warm_up_run
    d_keys = [k for k in w0 if k.startswith("D/")]
    g_keys = [k for k in w0 if k.startswith("G/") and k.endswith("/kernel")]
    assert d_keys and g_keys
    for m in metrics[:2]:
        assert "d_loss" not in m and "g_loss_adv" not in m
        assert {"aux/mel", "aux/stft_sc", "aux/stft_mag", "aux/ged"} <= set(m)
        assert "aux/feature_matching" not in m  # needs D
        want = 45 * m["aux/mel"] + m["aux/stft_sc"] + m["aux/stft_mag"] + m["aux/ged"]
        assert m["g_loss"] == pytest.approx(want + m["ortho_penalty"], rel=1e-6)
    assert {"d_loss", "g_loss_adv", "aux/feature_matching"} <= set(metrics[2])
    # D changed only in step 3: rerun 2 steps and compare
    _, w2 = rerun(0, steps=2)
    for k in d_keys:
        np.testing.assert_array_equal(w2[k], w0[k], err_msg=k)
    assert any(np.any(w[k] != w0[k]) for k in d_keys)
    assert all(np.any(w2[k] != w0[k]) for k in g_keys)


def test_aux_losses_change_the_generator_update(data_dir, aux_step):
    """The weights are live: the same step with the auxiliary terms on updates G differently
    from the paper's step (and the paper's step is what a zero weight gives). Both sides at
    the shared aux_step's learning rates (1): the same D update before G's on both sides."""
    batch = td.fixed_batch(4, FRAMES)
    default = tf.distribute.get_strategy()
    _, w0, m_aux, w_aux, _ = aux_step
    paper = train_lib.resolve_config(td.micro_config(
        data_dir, adam_epsilon=1.0, g_learning_rate=1.0, d_learning_rate=1.0), data_dir)
    _, m_paper, w_paper = _run_steps(paper, default, batch, 1, init=w0)
    assert {"aux/mel", "aux/stft_sc", "aux/stft_mag", "aux/ged"} <= set(m_aux[0])
    assert not any(k.startswith("aux/") for k in m_paper[0])
    g = [k for k in w0 if k.startswith("G/") and k.endswith("/kernel")]
    d_paper = np.concatenate([(w_paper[k] - w0[k]).ravel() for k in g])
    d_aux = np.concatenate([(w_aux[k] - w0[k]).ravel() for k in g])
    assert np.linalg.norm(d_aux - d_paper) > 0.5 * np.linalg.norm(d_paper) > 0


def _perturbed(w0: dict, keys, size: float, seed: int) -> dict:
    """``w0`` with every weight in ``keys`` scaled by 1 ± ``size`` (random signs)."""
    rng = np.random.default_rng(seed)
    return {k: (v * (1.0 + size * rng.choice([-1.0, 1.0], v.shape))).astype(v.dtype)
            if k in keys else v for k, v in w0.items()}


SENSITIVITY_SEEDS = 3


def _metric_difference(a: dict, b: dict, k: str) -> float:
    """``_metrics_difference`` of the one metric ``k``."""
    return _metrics_difference([{k: a[k]}], [{k: b[k]}])


def _sensitivity_bounds(rerun, w0: dict, trainable, m_ref: dict, m_other: dict,
                        rho: float) -> tuple[dict, float]:
    """Per metric: ρ plus the metric's measured response to the observed rounding.

    ``r`` is the rounding observed between the two paths on the step's forward values (the
    losses: the largest |a − b| / max(|a|, 1), at least eps; capped at ρ, which they must stay
    within anyway). Every trainable weight is scaled by 1 ± r (random signs, so the losses
    move by ≈ r, as they do between the paths) and the step rerun with the same kernels; the
    largest response of each metric over :data:`SENSITIVITY_SEEDS` draws, in
    ``_metrics_difference``'s units, is added to ρ. For a smooth metric that response is ≈ r ≪
    ρ. A gradient taken through the losses' non-differentiable points (GED's |s(y₁) − s(y₂)|
    where two samples of the untrained generator agree to rounding, log-magnitudes crossing
    their floor: d log|X| = d|X|/|X|) responds by orders of magnitude more: that is the
    amplification of rounding the bound must include. Returns (bounds, r)."""
    forward = [k for k in m_ref if k not in _NORMS]
    r = min(max(max(abs(m_ref[k] - m_other[k]) / max(abs(m_ref[k]), 1.0) for k in forward),
                EPS), rho)
    bounds = dict.fromkeys(m_ref, rho)
    for seed in range(SENSITIVITY_SEEDS):
        m_pert, _ = rerun(0, weights=_perturbed(w0, trainable, r, seed))
        for k in m_ref:
            bounds[k] = max(bounds[k], rho + _metric_difference(m_ref, m_pert, k))
    return bounds, r


def test_aux_step_xla_matches_non_xla(data_dir, warm_up_run):
    """The G-only step and the full step with every auxiliary term compile with XLA; the G-only
    step agrees with the TF kernels, metric by metric within ρ (_step_rounding, the paper-step
    test's bound) plus the metric's measured amplification of the observed rounding
    (:func:`_sensitivity_bounds`). The losses need only ρ. G's gradient norm does not: GED's
    L1 terms between two samples of the untrained, saturated generator and the log-magnitude
    floors make it a non-smooth function of the weights (measured at 93f7de6, GED alone: XLA
    vs not 1.2 %; weights × (1 ± 1e-7) 2 %, × (1 ± 1e-6) 8 %). Worst measured: BUILD_NOTES
    "Numeric tolerances". Control: the z of another step (what a disagreeing RNG gives)."""
    config = _config(data_dir, d_start_step=2)
    batch = td.fixed_batch(4, FRAMES)
    default = tf.distribute.get_strategy()
    tr, w0, m_ref, _, rerun = warm_up_run  # the same config, batch and seed, not XLA
    m_ref = m_ref[:1]
    _, _, m_xla, _, rerun_xla = _trainer_steps(config, default, batch, 1, xla=True, init=w0)
    assert "d_loss" not in m_xla[0]
    m_full, _ = rerun_xla(2)
    assert "aux/feature_matching" in m_full and all(np.isfinite(v) for v in m_full.values())
    trainable = {f"{k}/{v.path}" for k, m in (("G", tr.G), ("D", tr.D))
                 for v in m.trainable_weights}
    rho = _step_rounding(tr, batch)
    bounds, _ = _sensitivity_bounds(rerun, w0, trainable, m_ref[0], m_xla[0], rho)
    for k, bound in sorted(bounds.items()):
        within(f"G-only step {k}", _metric_difference(m_ref[0], m_xla[0], k), bound)
    m_other, _ = rerun(1)
    for k, bound in sorted(bounds.items()):
        if k != "ortho_penalty":  # a function of the weights alone
            exceeds(f"G-only step {k}, z of another step",
                    _metric_difference(m_ref[0], m_other, k), bound)


def _without(metrics: list[dict], key: str) -> list[dict]:
    return [{k: v for k, v in m.items() if k != key} for m in metrics]


def _d_only(w: dict) -> dict:
    return {k: v for k, v in w.items() if k.startswith("D/")}


def test_aux_step_mirrored_matches_default(data_dir, mirrored_cpu_strategy, aux_step):
    """One App.-D step with every auxiliary term on (STFT, mel, GED with its second sample,
    feature matching), 2-replica MirroredStrategy == default strategy: per-example terms are
    summed per replica and divided by the *global* batch, GED's second z is sliced from the
    global draw like z. Setting and bound as train_lib_test's mirrored test (full-input RWDs,
    adam_epsilon = 1, learning rate 1; _step_rounding = eps·√(B·N)·2·(depth G + depth D)):
    the spectral terms' widest sums (2048-point FFTs, 4 frames × 1025 bins) are narrower than
    B·N = 11,520 and their few layers sit on G's path, shorter than D's.

    Every loss, score and D's update are within it. G's gradient is not compared: GED's L1
    terms |s(y₁) − s(y₂)| between two samples of the untrained (saturated) generator have
    gradient sign(s(y₁) − s(y₂)) where the two spectrograms agree to rounding, so any other
    summation order flips signs: g_grad_norm differs by 1.2e-3 relative mirrored vs default,
    2.4e-3 XLA vs non-XLA on one device (no distribution), and by 1.3e-6 / 1.2e-5 with GED off
    (G's updates 2.5e-5 / 1.4e-4 relative, within the bound): rounding through a
    non-differentiable point, not a distribution bug (BUILD_NOTES, "Numeric tolerances").
    Controls: a duplicated replica shard and a doubled update."""
    config = _config(data_dir, g_learning_rate=1.0, d_learning_rate=1.0)  # aux_step's
    batch = td.fixed_batch(4, FRAMES)
    _, w0, m_default, w_default, _ = aux_step
    tr, _, m_mirrored, w_mirrored, rerun = _trainer_steps(
        config, mirrored_cpu_strategy, batch, 1, init=w0)
    assert {"aux/mel", "aux/stft_sc", "aux/stft_mag", "aux/ged", "aux/feature_matching"} <= set(
        m_mirrored[0])
    bound = _step_rounding(tr, batch)
    m_a, m_b = _without(m_default, "g_grad_norm"), _without(m_mirrored, "g_grad_norm")
    within("metrics", _metrics_difference(m_a, m_b), bound)
    within("D updates", _updates_difference(_d_only(w0), _d_only(w_default),
                                            _d_only(w_mirrored)), bound)
    _assert_kernels_updated(w0, w_mirrored)
    dup = {k: np.concatenate([v[:2], v[:2]]) for k, v in batch.items()}
    m_dup, w_dup = rerun(0, dup)
    exceeds("metrics, duplicated half",
            _metrics_difference(m_a, _without([m_dup], "g_grad_norm")), bound)
    exceeds("D updates, duplicated half",
            _updates_difference(_d_only(w0), _d_only(w_default), _d_only(w_dup)), bound)
    _, w_double = rerun(0, lr_scale=2.0)
    exceeds("D updates, double step",
            _updates_difference(_d_only(w0), _d_only(w_default), _d_only(w_double)), bound)


def test_train_logs_every_aux_term_to_tensorboard(data_dir, warm_up_run, tmp_path):
    """Run by warm_up_run's trainer (its config: every term, d_start_step 2; train() reuses
    its traced single steps, and every rerun of the fixture restores weights and optimizer
    state), from step 0."""
    tr = warm_up_run[0]
    c = td.micro_config(data_dir, adam_epsilon=1.0)
    c.train.aux = ConfigDict(dict(c.train.aux.to_dict(), **AUX))
    c.train.d_start_step = 2
    c.train.max_steps = 4
    c.train.log_every = 2
    c.train.eval_every = 0
    c.data.data_dir = data_dir
    assert int(tr.step.numpy()) == 0 and tr.d_start_step == 2
    train_lib.train(c, str(tmp_path), trainer=tr)
    tr.step.assign(0)
    tags = set()
    for f in glob.glob(str(tmp_path / "train" / "events*")):
        for e in tf.compat.v1.train.summary_iterator(f):
            tags |= {(v.tag, e.step) for v in e.summary.value}
    for name in ("aux/mel", "aux/stft_sc", "aux/stft_mag", "aux/ged"):
        assert (name, 2) in tags and (name, 4) in tags, name
    assert ("aux/feature_matching", 4) in tags and ("d_loss", 4) in tags
    assert ("d_loss", 2) not in tags


def test_stem_mel_head_trains_on_its_own_term(data_dir):
    """train.aux.stem_mel_weight: the term is logged, enters g_loss with its weight, and
    trains the head; a head whose bins differ from the mel term's is a clear error."""
    c = td.micro_config(data_dir, adam_epsilon=1.0)
    c.generator.stem_mel_bins, c.generator.stem_mel_after = 80, 0  # micro G upsamples at once
    c.train.aux = ConfigDict(dict(c.train.aux.to_dict(), mel_weight=45.0, stem_mel_weight=3.0))
    c.train.d_start_step = 5
    config = train_lib.resolve_config(c, data_dir)
    w0, metrics, w = _run_steps(config, tf.distribute.get_strategy(),
                                td.fixed_batch(4, FRAMES), 1)
    m = metrics[0]
    assert m["aux/stem_mel"] > 0
    assert m["g_loss"] == pytest.approx(45 * m["aux/mel"] + 3 * m["aux/stem_mel"]
                                        + m["ortho_penalty"], rel=1e-6)
    head = [k for k in w0 if "stem_mel_head" in k and k.startswith("G/")]
    assert head and all(np.any(w[k] != w0[k]) for k in head)
    c.generator.stem_mel_bins = 40
    with pytest.raises(ValueError, match="needs generator.stem_mel_bins = train.aux.mel_bins"):
        train_lib.GANTrainer(train_lib.resolve_config(c, data_dir),
                             tf.distribute.get_strategy(), 8, 1)


def test_bad_d_start_step_is_a_clear_error(data_dir):
    with pytest.raises(ValueError, match=r"train.d_start_step=-1: expected >= 0"):
        train_lib.GANTrainer(_config(data_dir, d_start_step=-1), tf.distribute.get_strategy(),
                             8, 1)


def test_harmonic_noise_head_trains_through_the_spectral_terms(data_dir):
    """generator.harmonic_noise (recipe 4) before d_start_step: a G-only step (D untouched)
    whose spectral terms reach the head through both branches, told apart by the head's bias
    (controls = [amplitude, H harmonic logits, noise bands], harmonic_noise.synthesize): the
    harmonic entries move only if the sines sound (gradient exactly 0 on unvoiced frames), the
    noise entries only if the filtered noise does. Control: the same step on the batch made
    unvoiced (vuv column → unvoiced) leaves the harmonic entries bit for bit, so the assertion
    fails on dead sines (e.g. a voicing or F0 read from the wrong column)."""
    c = td.micro_config(data_dir, adam_epsilon=1.0)
    c.generator.linear_output = True
    c.train.aux = ConfigDict(dict(c.train.aux.to_dict(), mel_weight=45.0, stft_weight=1.0))
    c.train.d_start_step = 5
    config = train_lib.resolve_config(c, data_dir)
    # the synthetic data has no log_f0 / vuv blocks: columns 0 and 1 stand in for them
    config.generator.excitation = ConfigDict(dict(enabled=True, lf0_index=0, lf0_mean=5.0,
                                                  lf0_std=0.3, vuv_index=1, vuv_mean=1.0,
                                                  harmonics=4, blocks=1))
    harmonics, bands = 12, 9
    config.generator.harmonic_noise = ConfigDict(dict(enabled=True, harmonics=harmonics,
                                                      noise_bands=bands, after=0))
    batch = td.fixed_batch(4, FRAMES)
    voiced = batch["features"][..., 1] * 1.0 + 1.0 > 0.5  # the generator's rule, vuv_std 1
    assert 0.2 < voiced.mean() < 0.9  # both kinds of frame in the batch
    _, w0, metrics, w, rerun = _trainer_steps(config, tf.distribute.get_strategy(), batch, 1)
    assert np.isfinite(metrics[0]["g_loss"]) and metrics[0]["aux/mel"] > 0
    assert "d_loss" not in metrics[0]
    for k in (k for k in w0 if k.startswith("D/")):
        np.testing.assert_array_equal(w[k], w0[k], err_msg=k)  # G-only before d_start_step
    head = [k for k in w0 if "harmonic_noise_head" in k and k.startswith("G/")]
    assert len(head) == 2 and all(np.any(w[k] != w0[k]) for k in head)
    bias = next(k for k in head if k.endswith("/bias"))
    assert w0[bias].shape == (1 + harmonics + bands,)

    def moved(weights: dict) -> np.ndarray:
        return weights[bias] != w0[bias]

    sines, noise = slice(0, 1 + harmonics), slice(1 + harmonics, None)
    assert np.all(moved(w)[sines]) and np.all(moved(w)[noise])
    unvoiced = dict(batch, features=batch["features"].copy())
    unvoiced["features"][..., 1] = -10.0
    _, w_unvoiced = rerun(0, unvoiced)
    assert not np.any(moved(w_unvoiced)[sines]) and np.all(moved(w_unvoiced)[noise])

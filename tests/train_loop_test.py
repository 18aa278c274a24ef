"""The training loop for pods (#17): ``train.seed`` fixes the initial weights, and
``train.steps_per_loop`` runs K steps per ``tf.function`` call with the NaN/inf guard in the
graph."""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from float32_bounds import exceeds, within
from ml_collections import ConfigDict
from train_lib_test import (
    _all_weights,
    _metrics_difference,
    _set_weights,
    _step_rounding,
    _updates_difference,
)

from tts_gan import train_lib

FRAMES = 24  # the micro config's window


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=32)


def _weights_after(config, steps: int) -> tuple[dict, dict]:
    """(initial, after ``steps`` App.-D steps on a fixed batch) weights of a new trainer."""
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(),
                              config.generator.feature_dim, config.generator.num_speakers)
    w0 = _all_weights(tr)
    batch = {k: tf.constant(v) for k, v in td.fixed_batch(4, FRAMES).items()}
    for s in range(steps):
        tr.train_step(batch, s)
    return w0, _all_weights(tr)


@pytest.fixture(scope="module")
def per_rwd_run(data_dir):
    """A trainer of the micro config with random windows (train.d_hinge "per_rwd", the
    default), built after keras.utils.set_random_seed(1), and its first two steps on the fixed
    batch: (config, initial weights, step 1's metrics, weights after step 1, after step 2).
    Shared by the seed test (trainer A) and the d_hinge test (the per-RWD side), so this
    config's step is traced once."""
    config = train_lib.resolve_config(td.micro_config(data_dir, random_windows=True), data_dir)
    keras.utils.set_random_seed(1)
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(),
                              config.generator.feature_dim, config.generator.num_speakers)
    w0 = _all_weights(tr)
    batch = {k: tf.constant(v) for k, v in td.fixed_batch(4, FRAMES).items()}
    m1 = tr.scalar_metrics(tr.train_step(batch, 0))
    w1 = _all_weights(tr)
    tr.train_step(batch, 1)
    return config, w0, m1, w1, _all_weights(tr)


def test_train_seed_fixes_the_initial_weights(per_rwd_run):
    """Two trainers of one config start from, and after 2 steps hold, bit-identical weights on
    CPU, whatever the global random state before; another train.seed starts elsewhere."""
    config, w0_a, _, _, w_a = per_rwd_run  # built after keras.utils.set_random_seed(1)
    config = copy.deepcopy(config)
    keras.utils.set_random_seed(2)  # the global state the trainer must not depend on
    np.random.rand(7)
    w0_b, w_b = _weights_after(config, 2)
    for k in w0_a:
        np.testing.assert_array_equal(w0_a[k], w0_b[k], err_msg=k)
        np.testing.assert_array_equal(w_a[k], w_b[k], err_msg=k)
    config.train.seed = 1
    w0_c = _weights_after(config, 0)[0]
    kernels = [k for k in w0_a if k.endswith("/kernel")]
    assert kernels and all(not np.array_equal(w0_a[k], w0_c[k]) for k in kernels)


def test_bad_train_seed_is_a_clear_error(data_dir):
    config = train_lib.resolve_config(td.micro_config(data_dir), data_dir).to_dict()
    for bad in (-1, 2**31, 1.5):
        config["train"]["seed"] = bad
        with pytest.raises(ValueError, match=r"train.seed=.*expected an integer in \[0, 2\*\*31\)"):
            train_lib.build_models(ConfigDict(config), 8, 1)


def test_d_hinge_ensemble_trains_on_the_hinge_of_the_sum(per_rwd_run):
    """train.d_hinge="ensemble" (Eq. 3 literally): the D step's hinge is on Σ_i D_i. Same
    init, batch and windows as the per-RWD step (equal scores), then: the loss is one term
    per side, bounded below by the hinge of the mean summed score (Jensen) and above by the
    per-RWD terms' sum (Σ_i relu(1 − s_i) ≥ relu(R − Σ_i s_i) ≥ relu(1 − Σ_i s_i), R ≥ 1),
    and D's update differs."""
    config, w0_p, m_p, w_p, _ = per_rwd_run  # the per-RWD step: step 1 of the shared run
    assert config.train.d_hinge == "per_rwd"
    config = copy.deepcopy(config)
    config.train.d_hinge = "ensemble"
    batch = {k: tf.constant(v) for k, v in td.fixed_batch(4, FRAMES).items()}
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
    w0_e = _all_weights(tr)
    m_e, w_e = tr.scalar_metrics(tr.train_step(batch, 0)), _all_weights(tr)
    names = [k.split("/", 1)[1] for k in m_p if k.startswith("score_real/")]
    assert len(names) == 2
    for k in w0_p:
        np.testing.assert_array_equal(w0_p[k], w0_e[k], err_msg=k)  # train.seed
    for n in names:  # the same scores: same weights and windows before the update
        assert m_e[f"score_real/{n}"] == m_p[f"score_real/{n}"]
        assert f"d_loss_real/{n}" not in m_e
    for side, sign in (("real", -1.0), ("fake", 1.0)):
        ens = m_e[f"d_loss_{side}/ensemble"]
        per = sum(m_p[f"d_loss_{side}/{n}"] for n in names)
        jensen = max(0.0, 1.0 + sign * sum(m_p[f"score_{side}/{n}"] for n in names))
        assert jensen - 1e-6 <= ens <= per + 1e-6, (side, jensen, ens, per)
    assert m_e["d_loss"] == pytest.approx(
        m_e["d_loss_real/ensemble"] + m_e["d_loss_fake/ensemble"], rel=1e-6)
    d_kernels = [k for k in w0_p if k.startswith("D/") and k.endswith("/kernel")]
    assert any(not np.array_equal(w_p[k], w_e[k]) for k in d_kernels)


# --- K steps per tf.function call (train.steps_per_loop) --------------------------------------

def test_loop_length_stops_at_every_boundary():
    every = (10, 25, 0)  # log, eval, save (0: off)
    assert train_lib.loop_length(0, 20, 100, 0, every) == 10
    assert train_lib.loop_length(20, 20, 100, 0, every) == 5  # eval at 25
    assert train_lib.loop_length(0, 20, 100, 3, every) == 3  # G-only until d_start_step
    assert train_lib.loop_length(3, 20, 100, 3, every) == 7
    assert train_lib.loop_length(96, 20, 98, 0, (100,)) == 2  # max_steps
    assert train_lib.loop_length(7, 1, 100, 3, every) == 1


def test_bad_steps_per_loop_is_a_clear_error(data_dir):
    for bad in (0, -3, 2.5):
        c = td.micro_config(data_dir).to_dict()
        c["train"]["steps_per_loop"] = bad
        with pytest.raises(ValueError, match=r"train.steps_per_loop=.*expected an integer >= 1"):
            train_lib.steps_per_loop(ConfigDict(c))


def _loop_config(data_dir, k: int, **train):
    c = td.micro_config(data_dir, random_windows=True, adam_epsilon=1.0, g_learning_rate=1.0,
                        d_learning_rate=1.0, max_steps=5, log_every=5, save_every=0,
                        eval_every=0, d_start_step=2, steps_per_loop=k)
    c.train.aux.mel_weight = 1.0  # what G trains on before d_start_step
    for key, v in train.items():
        c.train[key] = v
    return c


def test_k_steps_per_call_equal_single_steps_across_d_start_step(data_dir, tmp_path):
    """K = 4: calls [0, 2) G-only and [2, 5) full (split at d_start_step = 2, and at the log
    step 5) give the run of K = 1 (one call per step) from the same train.seed: the same
    kernels, in one graph. Bound: one step's float32 rounding (_step_rounding, learning rate 1
    as in train_lib_test); measured: metrics 0, updates ≤ 1e-12 relative. Control: step 2 run
    by the G-only graph (a K-step call crossing d_start_step with the wrong function).

    One trainer runs the three: every call of train() goes through the trainer's K-step
    function with the call's length a tensor (K = 1 is one call per step), so the runs share
    its two traced graphs; each starts from the same initial weights and optimizer state."""
    quiet = dict(log=lambda s: None)
    tr = train_lib.GANTrainer(train_lib.resolve_config(_loop_config(data_dir, 4), data_dir),
                              tf.distribute.get_strategy(), 8, 1)
    w0 = _all_weights(tr)
    opt0 = [np.array(v.numpy()) for o in (tr.g_opt, tr.d_opt) for v in o.variables]

    def restart(d_start_step: int = 2) -> None:
        _set_weights(tr, w0)
        for v, x in zip([v for o in (tr.g_opt, tr.d_opt) for v in o.variables], opt0,
                        strict=True):
            v.assign(x)
        tr.step.assign(0)
        tr.d_start_step = d_start_step

    ref = train_lib.train(_loop_config(data_dir, 1), str(tmp_path / "k1"), trainer=tr, **quiet)
    w_ref = _all_weights(tr)
    restart()
    res = train_lib.train(_loop_config(data_dir, 4), str(tmp_path / "k4"), trainer=tr, **quiet)
    assert res.end_step == ref.end_step == 5
    assert "d_loss" in res.last_metrics  # the log interval spans both step kinds
    bound = _step_rounding(tr, td.fixed_batch(4, FRAMES))
    w_k = _all_weights(tr)
    within("metrics", _metrics_difference([ref.last_metrics], [res.last_metrics]), bound)
    within("updates", _updates_difference(w0, w_ref, w_k), bound)
    # Control: the same K = 4 run with step 2 in the G-only graph.
    restart(d_start_step=3)
    bad = train_lib.train(_loop_config(data_dir, 4), str(tmp_path / "k4_wrong"), trainer=tr,
                          **quiet)
    exceeds("updates, step 2 G-only", _updates_difference(w0, w_ref, _all_weights(tr)), bound)
    assert bad.end_step == 5


class _NaNAt(train_lib.GANTrainer):
    """A trainer whose training audio turns NaN at one step (inside a K-step call)."""

    bad_step = 5

    def _replica_step(self, batch, step, *, g_only=False):
        audio = tf.where(tf.equal(step, self.bad_step), tf.fill(tf.shape(batch["audio"]),
                                                                 float("nan")), batch["audio"])
        return super()._replica_step(dict(batch, audio=audio), step, g_only=g_only)


def test_nan_at_an_inner_step_stops_the_loop_without_saving(data_dir, tmp_path):
    """K = 4, NaN audio at step 5 (the second step of the call [4, 8)): the in-graph guard
    stops that call, the fetch at step 8 names step 5 and the terms, ckpt-4 stays the last
    checkpoint; a call given the raised flag runs no step (weights bit-identical)."""
    config = _loop_config(data_dir, 4, max_steps=12, log_every=8, save_every=4, d_start_step=0)
    tr = _NaNAt(train_lib.resolve_config(config, data_dir), tf.distribute.get_strategy(), 8, 1)
    model_dir = str(tmp_path / "model")
    with pytest.raises(train_lib.NonFiniteLossError,
                       match=r"non-finite loss at step 5: .*d_loss_real/cRWD_k2_w480=nan"
                             r".*last checkpoint \(step 4\) is kept"):
        train_lib.train(config, model_dir, trainer=tr, log=lambda s: None)
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")
    assert not tf.io.gfile.glob(model_dir + "/ckpt-8*")
    # The flag stays set: no step runs, nothing changes.
    it = iter(tf.data.Dataset.from_tensors(
        {k: tf.constant(v) for k, v in td.fixed_batch(4, FRAMES).items()}).repeat())
    w = _all_weights(tr)
    _, count, bad = tr.run_steps(it, 8, 4, bad_step=tf.constant(5, tf.int64))
    assert (int(count), int(bad)) == (0, 5)
    for k, v in _all_weights(tr).items():
        np.testing.assert_array_equal(v, w[k], err_msg=k)
    # From a clear flag, the (now NaN) weights make step 8 non-finite: the call stops there.
    _, count, bad = tr.run_steps(it, 8, 4)
    assert (int(count), int(bad)) == (1, 8)

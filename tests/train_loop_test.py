"""The training loop for pods (#17): ``train.seed`` fixes the initial weights, and
``train.steps_per_loop`` runs K steps per ``tf.function`` call with the NaN/inf guard in the
graph."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from ml_collections import ConfigDict
from train_lib_test import _all_weights

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


def test_train_seed_fixes_the_initial_weights(data_dir):
    """Two trainers of one config start from, and after 2 steps hold, bit-identical weights on
    CPU, whatever the global random state before; another train.seed starts elsewhere."""
    config = train_lib.resolve_config(td.micro_config(data_dir, random_windows=True), data_dir)
    keras.utils.set_random_seed(1)
    w0_a, w_a = _weights_after(config, 2)
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


def test_d_hinge_ensemble_trains_on_the_hinge_of_the_sum(data_dir):
    """train.d_hinge="ensemble" (Eq. 3 literally): the D step's hinge is on Σ_i D_i. Same
    init, batch and windows as the per-RWD step (equal scores), then: the loss is one term
    per side, bounded below by the hinge of the mean summed score (Jensen) and above by the
    per-RWD terms' sum (Σ_i relu(1 − s_i) ≥ relu(R − Σ_i s_i) ≥ relu(1 − Σ_i s_i), R ≥ 1),
    and D's update differs."""
    config = train_lib.resolve_config(td.micro_config(data_dir, random_windows=True), data_dir)
    batch = {k: tf.constant(v) for k, v in td.fixed_batch(4, FRAMES).items()}
    runs = {}
    for form in ("per_rwd", "ensemble"):
        config.train.d_hinge = form
        tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
        w0 = _all_weights(tr)
        runs[form] = (w0, tr.scalar_metrics(tr.train_step(batch, 0)), _all_weights(tr))
    (w0_p, m_p, w_p), (w0_e, m_e, w_e) = runs["per_rwd"], runs["ensemble"]
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

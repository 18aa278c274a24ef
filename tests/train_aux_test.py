"""The train step with the opt-in auxiliary losses and generator-only warm-up
(train.aux, train.d_start_step; tts_gan.losses): off-by-default paper path untouched,
distribution-correct, XLA-compilable, logged per term."""

from __future__ import annotations

import glob

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from ml_collections import ConfigDict

from tts_gan import train_lib

FRAMES = 24  # the micro config's window (train_lib_test)


# --- step helpers (as train_lib_test's, kept here so the two files evolve apart) ----------

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


def _run_steps(config, strategy, batch, steps: int, *, xla: bool = False, init=None):
    """Builds a trainer, optionally loads ``init`` weights, runs ``steps`` steps on the same
    global ``batch`` split over the replicas; returns (initial weights, metrics, weights)."""
    keras.utils.set_random_seed(1234)  # reproducible initial weights
    tr = train_lib.GANTrainer(config, strategy, config.generator.feature_dim,
                              config.generator.num_speakers, xla=xla)
    if init is not None:
        _set_weights(tr, init)
    w0 = _all_weights(tr)
    dist = _distribute(strategy, batch)
    metrics = [tr.scalar_metrics(tr.train_step(dist, s)) for s in range(steps)]
    return w0, metrics, _all_weights(tr)


def _assert_metrics_close(a: list[dict], b: list[dict], rtol: float) -> None:
    for step, (ma, mb) in enumerate(zip(a, b, strict=True)):
        for k in ma:
            assert np.isfinite(ma[k]), (step, k)
            assert abs(ma[k] - mb[k]) <= rtol * max(abs(ma[k]), 1e-3), (step, k, ma[k], mb[k])


def _assert_weights_close(w0, wa, wb, rtol: float, update_rtol: float) -> None:
    """Weights equal to ``rtol`` (relative, per variable) and, stricter, the *updates*
    (w - w0) equal to ``update_rtol``, up to float32 rounding of the weights. The slack also
    covers variables whose true gradient is 0 (conv biases right before a BatchNorm), which
    only receive float noise."""
    changed = kernels = 0
    for k in w0:
        a, b = wa[k], wb[k]
        # float32 rounding of the weights themselves (EMA updates are 100x smaller than G's)
        slack = 1e-9 * np.sqrt(a.size) + 4 * np.finfo(np.float32).eps * np.linalg.norm(a)
        assert np.linalg.norm(a - b) <= rtol * np.linalg.norm(a) + slack, k
        da, db = a - w0[k], b - w0[k]
        assert np.linalg.norm(da - db) <= update_rtol * np.linalg.norm(da) + slack, k
        if k.endswith("/kernel") and not k.startswith("E/"):  # EMA steps: below fp32 ulp
            changed += bool(np.any(da != 0))
            kernels += 1
    assert changed == kernels > 0, f"only {changed}/{kernels} kernels were updated"


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


def test_generator_only_warm_up_leaves_d_alone(data_dir):
    """Before d_start_step: no D update, no hinge term; G trains on the auxiliary losses."""
    config = _config(data_dir, d_start_step=2)
    batch = td.fixed_batch(4, FRAMES)
    w0, metrics, w = _run_steps(config, tf.distribute.get_strategy(), batch, 3)
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
    _, _, w2 = _run_steps(config, tf.distribute.get_strategy(), batch, 2, init=w0)
    for k in d_keys:
        np.testing.assert_array_equal(w2[k], w0[k], err_msg=k)
    assert any(np.any(w[k] != w0[k]) for k in d_keys)
    assert all(np.any(w2[k] != w0[k]) for k in g_keys)


def test_aux_losses_change_the_generator_update(data_dir):
    """The weights are live: the same step with the auxiliary terms on updates G differently
    from the paper's step (and the paper's step is what a zero weight gives)."""
    batch = td.fixed_batch(4, FRAMES)
    default = tf.distribute.get_strategy()
    paper = train_lib.resolve_config(td.micro_config(data_dir, adam_epsilon=1.0), data_dir)
    w0, m_paper, w_paper = _run_steps(paper, default, batch, 1)
    _, m_aux, w_aux = _run_steps(_config(data_dir), default, batch, 1, init=w0)
    assert not any(k.startswith("aux/") for k in m_paper[0])
    g = [k for k in w0 if k.startswith("G/") and k.endswith("/kernel")]
    d_paper = np.concatenate([(w_paper[k] - w0[k]).ravel() for k in g])
    d_aux = np.concatenate([(w_aux[k] - w0[k]).ravel() for k in g])
    assert np.linalg.norm(d_aux - d_paper) > 0.5 * np.linalg.norm(d_paper) > 0


def test_aux_step_xla_matches_non_xla(data_dir):
    """The G-only step and the full step with every auxiliary term compile with XLA; the G-only
    step agrees with the TF kernels (the paper-step test's tolerance)."""
    config = _config(data_dir, d_start_step=1)
    batch = td.fixed_batch(4, FRAMES)
    default = tf.distribute.get_strategy()
    w0, m_ref, _ = _run_steps(config, default, batch, 2)
    _, m_xla, _ = _run_steps(config, default, batch, 2, xla=True, init=w0)
    assert "d_loss" not in m_xla[0] and "aux/feature_matching" in m_xla[1]
    _assert_metrics_close(m_ref[:1], m_xla[:1], rtol=1e-4)
    assert all(np.isfinite(v) for v in m_xla[1].values())


def test_train_logs_every_aux_term_to_tensorboard(data_dir, tmp_path):
    c = td.micro_config(data_dir)
    c.train.aux = ConfigDict(dict(c.train.aux.to_dict(), **AUX))
    c.train.d_start_step = 2
    c.train.max_steps = 4
    c.train.log_every = 2
    c.train.eval_every = 0
    c.data.data_dir = data_dir
    train_lib.train(c, str(tmp_path))
    tags = set()
    for f in glob.glob(str(tmp_path / "train" / "events*")):
        for e in tf.compat.v1.train.summary_iterator(f):
            tags |= {(v.tag, e.step) for v in e.summary.value}
    for name in ("aux/mel", "aux/stft_sc", "aux/stft_mag", "aux/ged"):
        assert (name, 2) in tags and (name, 4) in tags, name
    assert ("aux/feature_matching", 4) in tags and ("d_loss", 4) in tags
    assert ("d_loss", 2) not in tags


def test_bad_d_start_step_is_a_clear_error(data_dir):
    with pytest.raises(ValueError, match=r"train.d_start_step=-1: expected >= 0"):
        train_lib.GANTrainer(_config(data_dir, d_start_step=-1), tf.distribute.get_strategy(),
                             8, 1)

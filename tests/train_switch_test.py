"""The shipped CPU recipe across ``train.d_start_step`` (issue 25): recipe 4's generator
switches (``experiments/cpu_harmonic_noise.py``: sine excitation, linear output, stem log-mel
head, harmonic-plus-noise output, DC block) with the paper's random-window RWD* ensemble
(Eq. 3), the hinge loss and feature matching through the RWD activations, at test size (the
micro stack, RWD* at two of its five window sizes, to keep the test in the suite's time).

Before the switch G trains on its spectral terms alone and D stays put; at the switch D's
weights move, G's objective gains the adversarial and feature-matching terms with their
configured weights, and the gradient each term sends to G is logged (``grad_norm/<term>``).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from train_lib_test import _all_weights, _distribute, _trainer_steps

import experiments
from experiments import common
from tts_gan import schema, train_lib

SWITCH = 2  # d_start_step: steps 0 and 1 are G-only, step 2 is the first with D
FRAMES = 16  # 1,920 samples ≥ the largest window here, 2 · 240


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """Synthetic windows whose manifest names column 0 log-F0 and column 1 V/UV (the
    excitation's inputs), as tts-gan-prep's feature breakdown does."""
    out = td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=FRAMES,
                           feature_dim=8)
    path = os.path.join(out, schema.MANIFEST_NAME)
    with open(path) as f:
        m = json.load(f)
    m["feature_breakdown"] = [
        {"name": "log_f0", "start": 0, "size": 1, "kind": schema.NUMERIC},
        {"name": "vuv", "start": 1, "size": 1, "kind": schema.NUMERIC},
        {"name": "synthetic", "start": 2, "size": 6, "kind": schema.NUMERIC}]
    with open(path, "w") as f:
        json.dump(m, f)
    return out


def recipe4_at_test_width(data_dir: str, **aux_overrides):
    """``cpu_harmonic_noise`` with every switch and weight as shipped (sine excitation, linear
    output, stem log-mel head, harmonic-plus-noise output, DC block, the aux weights, FM, the
    optimiser) on train_lib_test's micro stack (two GBlocks, ×4 and ×30, both heads reading
    the input conv's 200 Hz stem) with narrow RWDs, fewer harmonics and noise bands, a
    2-example batch and the switch at step 2: the shipped widths and all ten RWDs took most
    of 20 minutes to trace here."""
    c = experiments.get_config("cpu_harmonic_noise")
    c.data.data_dir = data_dir
    c.data.window_frames = FRAMES
    c.generator.noise_dim = 8
    c.generator.input_channels = 8
    c.generator.blocks = ((8, 4), (8, 30))
    c.generator.stem_mel_after = 0
    c.generator.excitation.blocks = 1
    c.generator.harmonic_noise.after = 0
    c.generator.harmonic_noise.harmonics = 8
    c.generator.harmonic_noise.noise_bands = 9
    c.discriminator.first_channels = 4
    c.discriminator.down_channels = (4, 8)
    # RWD* (Eq. 3) as built for every k: a random-window cRWD and uRWD of ω·k samples, reshape
    # k; two of its five k's (the full ensemble's shapes: experiments_test's quarter-width
    # check).
    c.discriminator.rwds = common.rwd_star(factors=(1, 2))
    c.train.global_batch_size = 2
    c.train.d_start_step = SWITCH
    for k, v in aux_overrides.items():
        c.train.aux[k] = v
    return train_lib.resolve_config(c, data_dir)


def _group(w: dict[str, np.ndarray], prefix: str) -> list[str]:
    return [k for k in w if k.startswith(prefix) and k.endswith("/kernel")]


def _moved(w0, w, keys) -> list[str]:
    return [k for k in keys if np.any(w[k] != w0[k])]


@pytest.mark.parametrize("kind", ["default", "mirrored"])
def test_discriminators_join_recipe_4_at_d_start_step(data_dir, kind, request):
    strategy = (request.getfixturevalue("mirrored_cpu_strategy") if kind == "mirrored"
                else tf.distribute.get_strategy())
    config = recipe4_at_test_width(data_dir)
    assert len(config.discriminator.rwds) == 4  # RWD*'s cRWD and uRWD for k = 1, 2
    assert {r.get("window") for r in config.discriminator.rwds} == {None}  # random windows
    aux = config.train.aux
    assert aux.fm_weight > 0 and aux.mel_weight > 0 and aux.stem_mel_weight > 0
    batch = td.fixed_batch(2, FRAMES)
    tr, w0 = _trainer_steps(config, strategy, batch, 0)[:2]
    dist = _distribute(strategy, batch)
    metrics, weights = [], []
    for step in range(SWITCH + 1):
        metrics.append(tr.scalar_metrics(tr.train_step(dist, step)))
        weights.append(_all_weights(tr))
    w_before, w = weights[SWITCH - 1], weights[SWITCH]

    # Before the switch: G alone, on the spectral terms; no D term, D untouched.
    for m in metrics[:SWITCH]:
        assert "d_loss" not in m and "g_loss_adv" not in m
        assert "aux/feature_matching" not in m
        assert {"aux/mel", "aux/stft_sc", "aux/stft_mag", "aux/stem_mel"} <= set(m)
    # At the switch: the D update, the hinge term for G and feature matching.
    m = metrics[SWITCH]
    assert {"d_loss", "g_loss_adv", "aux/feature_matching"} <= set(m)
    assert len([k for k in m if k.startswith("d_loss_real/")]) == 4
    assert all(np.isfinite(v) for mm in metrics for v in mm.values())
    want = (m["ortho_penalty"] + aux.adversarial_weight * m["g_loss_adv"]
            + aux.fm_weight * m["aux/feature_matching"] + aux.mel_weight * m["aux/mel"]
            + aux.stft_weight * (m["aux/stft_sc"] + m["aux/stft_mag"])
            + aux.stem_mel_weight * m["aux/stem_mel"])
    assert m["g_loss"] == pytest.approx(want, rel=1e-5)

    # D moved in the switch step only: every RWD's kernels changed, none before.
    d_keys, g_keys = _group(w0, "D/"), _group(w0, "G/")
    assert d_keys and not _moved(w0, w_before, d_keys)
    assert len(_moved(w0, w_before, g_keys)) == len(g_keys)
    moved = _moved(w0, w, d_keys)
    for name in tr.rwd_names:
        assert any(f"/{name}/" in k for k in moved), (name, moved[:5])
    assert all(np.all(np.isfinite(v)) for v in w.values())

    # What each term sends to G: every weighted term reaches G's weights, the adversarial and
    # feature-matching terms included (they are what the switch adds). One strategy is
    # enough for the diagnostic (a third graph to trace).
    if kind == "mirrored":
        return
    norms = tr.grad_norms(_distribute(strategy, batch), SWITCH + 1)
    for term in ("adversarial", "feature_matching", "mel", "stft_sc", "stft_mag", "stem_mel"):
        assert np.isfinite(norms[f"grad_norm/{term}"]) and norms[f"grad_norm/{term}"] > 0, term


def test_grad_norms_scale_with_the_configured_weights(tmp_path):
    """``grad_norm/<term>`` is the norm of the *weighted* term's gradient: doubling
    ``fm_weight`` and halving ``adversarial_weight`` doubles and halves exactly those two
    (same weights, batch and seeds), and leaves the others as they were. On the micro
    config (train_lib_test's), whose RWDs see whole inputs."""
    from ml_collections import ConfigDict

    data = td.write_dataset(str(tmp_path), window_frames=32)
    default = tf.distribute.get_strategy()
    batch = td.fixed_batch(4, 24)

    def norms(fm: float, adv: float):
        c = td.micro_config(data)
        c.train.aux = ConfigDict(dict(c.train.aux.to_dict(), mel_weight=45.0, stft_weight=1.0,
                                      fm_weight=fm, adversarial_weight=adv))
        tr = _trainer_steps(train_lib.resolve_config(c, data), default, batch, 0)[0]
        return tr.grad_norms(_distribute(default, batch), 0)

    base, scaled = norms(2.0, 1.0), norms(4.0, 0.5)
    # The same float32 graph with one constant scaled by a power of two: exact but for the
    # rounding of the final norm's sum of squares.
    assert scaled["grad_norm/feature_matching"] == pytest.approx(
        2 * base["grad_norm/feature_matching"], rel=1e-5)
    assert scaled["grad_norm/adversarial"] == pytest.approx(
        0.5 * base["grad_norm/adversarial"], rel=1e-5)
    for k in ("grad_norm/mel", "grad_norm/stft_sc", "grad_norm/stft_mag", "grad_norm/ortho"):
        assert scaled[k] == pytest.approx(base[k], rel=1e-5), k
    assert base["grad_norm/adversarial"] > 0 and base["grad_norm/mel"] > 0


def test_linear_input_domain_is_what_the_rwds_see(data_dir):
    """``discriminator.input_domain = "linear"`` (recipe 5): D sees the µ-law-decoded waveform,
    checked against the µ-law decode written from its definition (App. C: y = sign(x)·ln(1 +
    µ|x|)/ln(1 + µ), so x = sign(y)·((1 + µ)^|y| − 1)/µ); the paper's view is G's output."""
    config = recipe4_at_test_width(data_dir)
    y = np.linspace(-1.0, 1.0, 101, dtype=np.float32)
    paper = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
    np.testing.assert_array_equal(paper.d_view(tf.constant(y)).numpy(), y)
    config.discriminator.input_domain = "linear"
    linear = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
    mu = np.float64(config.data.mu)
    want = np.sign(y) * np.expm1(np.abs(y.astype(np.float64)) * np.log1p(mu)) / mu
    got = linear.d_view(tf.constant(y)).numpy()
    # float32 decode: exp of up to ln(1 + µ) ≈ 11.1 carries ~11.1·eps relative error
    np.testing.assert_allclose(got, want, rtol=16 * 11.1 * np.finfo(np.float32).eps, atol=0)
    assert abs(got[50]) == 0.0 and got[-1] == pytest.approx(1.0, rel=1e-5)


def test_input_domain_errors_name_the_field(data_dir):
    config = recipe4_at_test_width(data_dir)
    config.discriminator.input_domain = "mulaw8"
    with pytest.raises(ValueError, match="discriminator.input_domain='mulaw8'"):
        train_lib.resolve_config(config, data_dir)
    config.discriminator.input_domain = "linear"
    config.discriminator.input_mu = 255.0
    with pytest.raises(ValueError, match="input_mu must be 0"):
        train_lib.resolve_config(config, data_dir)

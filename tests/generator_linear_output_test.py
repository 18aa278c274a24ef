"""The opt-in linear-output generator (``generator.linear_output``; not in the paper): its
tanh output is the linear waveform, returned µ-law encoded (App. C, Eq. 13) so G's output
contract is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td

from experiments import common
from tts_gan import train_lib
from tts_gan.generator import Generator, build_and_init, build_generator, output_mu

TINY = dict(feature_dim=7, noise_dim=4, input_channels=16,
            blocks=((16, 1), (16, 1), (8, 2), (8, 2), (8, 2), (4, 3), (4, 5)))


@pytest.mark.parametrize("mu", [65535.0, 255.0])
def test_output_is_the_mu_law_of_the_paper_generators_output(mu):
    """Same weights: linear-output G = F(paper G's output), F the µ-law of Eq. 13 computed here
    in float64 NumPy; padding stays exactly zero."""
    paper = build_and_init(Generator(**TINY))
    linear = build_and_init(Generator(**TINY, output_mu=mu))
    linear.set_weights(paper.get_weights())
    rng = np.random.default_rng(0)
    feats = tf.constant(rng.normal(size=(2, 9, 7)), tf.float32)
    z = tf.constant(rng.normal(size=(2, 4)), tf.float32)
    lengths = tf.constant([9, 6])
    x = paper(feats, z, lengths=lengths, training=False).numpy().astype(np.float64)
    y = linear(feats, z, lengths=lengths, training=False).numpy()
    want = np.sign(x) * np.log(1.0 + mu * np.abs(x)) / np.log(1.0 + mu)
    assert np.abs(x).max() > 1e-3  # a live output, not all zero
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert not np.any(y[1, 6 * 120:])  # masked frames


def test_config_paper_default_and_resolved_mu(tmp_path):
    c = common.base_config()
    assert output_mu(c.generator) == 0.0  # the paper: tanh output is the µ-law sample
    c.generator.linear_output = True
    with pytest.raises(ValueError, match="generator.output_mu is not"):
        output_mu(c.generator)
    data = td.write_dataset(str(tmp_path / "data"))
    cfg = td.micro_config(data)
    cfg.generator.linear_output = True
    cfg.data.mu = 255.0
    resolved = train_lib.resolve_config(cfg, data)
    assert resolved.generator.output_mu == 255.0
    gen = build_generator(resolved.generator)
    assert gen.output_mu == 255.0
    with pytest.raises(ValueError, match="output_mu=-1"):
        Generator(**TINY, output_mu=-1.0)

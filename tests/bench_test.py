"""The speed references of ``make bench`` (issue 28): HiFi-GAN's generators as published."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
import hifigan  # noqa: E402  (benchmarks/, just added)


@pytest.mark.parametrize("name", ["V1", "V3"])
def test_hifigan_parameters_match_the_paper(name):
    """HiFi-GAN Table 1: V1 13.92 M, V3 1.46 M parameters (two decimals: ±0.005 M; the released
    code's weight-norm gains add C_out per conv, < 0.003 M, which Keras' plain convs lack)."""
    gen = hifigan.build(getattr(hifigan, name))
    assert abs(gen.count_params() - hifigan.PAPER_PARAMS[name]) < 0.005e6 + 0.003e6
    # Control: V1's and V3's counts are ten times apart, so a wrong config is seen.
    other = hifigan.V3 if name == "V1" else hifigan.V1
    assert abs(hifigan.build(other).count_params() - hifigan.PAPER_PARAMS[name]) > 1e6


@pytest.mark.parametrize("name", ["V1", "V3"])
def test_hifigan_output_length_and_macs_from_the_built_layers(name):
    """frames·256 samples out, and the closed-form MAC count equals one taken from the built
    model's layers (kernel size × C_in × C_out per output position of a conv, per input
    position of a stride-s transposed conv), on a 5-frame input."""
    cfg = getattr(hifigan, name)
    gen = hifigan.build(cfg)
    frames = 5
    positions: dict[str, int] = {}

    def counting(layer, fn):
        def wrapped(x, *a, **k):
            y = fn(x, *a, **k)
            stride = layer.strides[0]
            positions[layer.name] = (x.shape[1] if isinstance(
                layer, keras.layers.Conv1DTranspose) else y.shape[1])
            assert isinstance(layer, keras.layers.Conv1DTranspose) or stride == 1
            return y
        return wrapped

    convs = [la for la in gen._flatten_layers(include_self=False, recursive=True)
             if isinstance(la, (keras.layers.Conv1D, keras.layers.Conv1DTranspose))]
    assert len(convs) == 2 + len(cfg.upsample_rates) * (1 + sum(
        (2 if cfg.resblock == "1" else 1) * len(d) for d in cfg.resblock_dilation_sizes))
    for la in convs:
        la.call = counting(la, la.call)
    audio = gen(tf.zeros([2, frames, cfg.num_mels]))
    assert audio.shape == (2, frames * cfg.hop)
    macs = sum(np.prod(la.kernel.shape) * positions[la.name] for la in convs)
    assert macs / (frames * cfg.hop) == pytest.approx(hifigan.macs_per_sample(cfg), rel=1e-12)



def test_hifigan_runs_compiled_as_bench_calls_it():
    """``make bench`` times the generator inside a ``tf.function`` (a graph, as served); that path
    traces (a Keras layer class named with a leading underscore made an invalid root scope name
    there, while the eager calls above ran) and gives the eager output: the same kernels on the
    same input, so it agrees to float32 rounding of V3's widest sum, far below the output's
    spread that a missing block or a wrong activation would move (control: V3 without its last
    resblock differs by more than 100x that)."""
    gen = hifigan.build(hifigan.V3)
    mel = tf.random.stateless_normal([1, 6, 80], seed=[1, 2])
    eager = gen(mel).numpy()
    graph = tf.function(lambda m: gen(m, training=False))(mel).numpy()
    assert graph.shape == (1, 6 * hifigan.V3.hop)
    # rounding bound: eps·√(fan-in)·depth, fan-in ≤ kernel 16 × 256 channels, depth ≤ 12 convs
    bound = 2.0 ** -23 * np.sqrt(16 * 256) * 12 * np.abs(eager).max()
    assert np.abs(graph - eager).max() <= bound
    saved = gen.blocks[-1]
    gen.blocks[-1] = saved[:-1]
    try:
        broken = gen(mel).numpy()
    finally:
        gen.blocks[-1] = saved
    assert np.abs(broken - eager).max() > 100 * bound

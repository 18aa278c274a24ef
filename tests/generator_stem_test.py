"""The opt-in training head of the generator's 200 Hz stem (``generator.stem_mel_bins``; not in
the paper): a log-mel prediction supervised in training, absent from the sampling path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tts_gan.generator import Generator, build_and_init

TINY = dict(feature_dim=7, noise_dim=4, input_channels=16,
            blocks=((16, 1), (12, 1), (8, 2), (8, 2), (8, 2), (4, 3), (4, 5)))


def test_stem_head_is_a_training_aid_outside_the_sampling_path():
    plain = build_and_init(Generator(**TINY))
    head = build_and_init(Generator(**TINY, stem_mel_bins=5, stem_mel_after=2))
    # the same generator plus one 1x1 conv 12 -> 5 (kernel + bias)
    assert head.count_params() == plain.count_params() + 12 * 5 + 5
    def key(v) -> str:  # the path without the model's (uniquified) name
        return v.path.split("/", 1)[1]

    by_name = {key(v): v for v in head.weights}
    for v in plain.weights:
        by_name.pop(key(v)).assign(v)
    assert sorted(by_name) == ["stem_mel_head/bias", "stem_mel_head/kernel"]
    rng = np.random.default_rng(0)
    feats = tf.constant(rng.normal(size=(2, 9, 7)), tf.float32)
    z = tf.constant(rng.normal(size=(2, 4)), tf.float32)
    audio, stem = head(feats, z, training=False, return_stem=True)
    assert stem.shape == (2, 9, 5)
    np.testing.assert_array_equal(audio.numpy(), head(feats, z, training=False).numpy())
    np.testing.assert_array_equal(audio.numpy(), plain(feats, z, training=False).numpy())
    # serving numbers (MACs, depth, receptive field) and the orthogonal regulariser ignore it
    def shapes(g):
        return [dataclasses.replace(c, name=c.name.split("/", 1)[1]) for c in g.conv_specs()]

    assert shapes(head) == shapes(plain)
    assert head.macs_per_sample() == plain.macs_per_sample()
    assert all(k is not head.stem_head.kernel for k in head.orthogonal_kernels())
    assert len(head.orthogonal_kernels()) == len(plain.orthogonal_kernels())
    # the head reads the stem: after GBlock 2, a linear map of its output
    with pytest.raises(ValueError, match="has no stem head"):
        plain(feats, z, return_stem=True)


def test_stem_head_must_read_a_frame_rate_block():
    with pytest.raises(ValueError, match="stem_mel_after=3: expected a GBlock"):
        Generator(**TINY, stem_mel_bins=5, stem_mel_after=3)  # GBlock 3 upsamples ×2
    gen = build_and_init(Generator(**TINY, stem_mel_bins=5, stem_mel_after=0))
    _, stem = gen(tf.zeros([1, 4, 7]), tf.zeros([1, 4]), return_stem=True)
    assert stem.shape == (1, 4, 5)  # after the input conv

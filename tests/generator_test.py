"""Generator (Table 2, Fig. 1a, App. A.1): shapes, counts, masking, speakers, errors."""

import numpy as np
import pytest
import tensorflow as tf
from float32_bounds import (
    exceeds,
    generator_rounding,
    mulaw_audio_difference,
    relative_difference,
    within,
    worst_rounding,
)

import experiments
from tts_gan import complexity
from tts_gan.generator import (
    PAPER_MACS_PER_SAMPLE,
    Generator,
    accumulate_standing_statistics,
    build_and_init,
    build_generator,
)

TINY = dict(feature_dim=7, noise_dim=4, input_channels=16,
            blocks=((16, 1), (16, 1), (8, 2), (8, 2), (8, 2), (4, 3), (4, 5)))


@pytest.fixture(scope="module")
def paper_generator():
    return build_and_init(build_generator(experiments.get_config("gan_tts").generator))


def _random_batches(seed=0, batch=4, frames=11):
    rng = np.random.default_rng(seed)
    while True:
        yield dict(features=tf.constant(rng.normal(size=(batch, frames, 7)), tf.float32),
                   z=tf.constant(rng.normal(size=(batch, 4)), tf.float32))


@pytest.fixture(scope="module")
def tiny_generator():
    """A tiny generator in its sampling state: SN vectors updated, standing statistics (App. D)
    frozen, so activations are normalised as they are at inference."""
    gen = build_and_init(Generator(**TINY))
    accumulate_standing_statistics(gen, _random_batches(), num_passes=5)
    return gen


def test_paper_generator_matches_table2(paper_generator):
    gen = paper_generator
    assert gen.samples_per_frame == 120
    assert gen.num_layers() == 30  # App. A.2: "the generator has 30 layers"
    channels = [b.out_channels for b in gen.gblocks]
    assert channels == [768, 768, 384, 384, 384, 192, 96]
    assert [b.upsample_factor for b in gen.gblocks] == [1, 1, 2, 2, 2, 3, 5]
    out = gen(tf.random.normal([1, 400, 567]), tf.random.normal([1, 128]))
    assert out.shape == (1, 48000, 1)
    assert np.all(np.abs(out.numpy()) <= 1.0)  # tanh range (float32 tanh can round to ±1)


def test_paper_generator_macs_per_sample_within_3_percent_of_the_paper(paper_generator):
    analytic = paper_generator.macs_per_sample()
    profiled = complexity.generator_profiled_macs_per_sample(paper_generator, 400)
    # The paper counts Fig. 1a as drawn, the 1×1 skip after the upsampling; GBlock applies it
    # before (same function, 1/f of the positions). Table 2's skips (768→384 ×2, 384→192 ×3,
    # 192→96 ×5, at cumulative rates 1→2, 8→24, 24→120 per frame) add back, per sample:
    spf = paper_generator.samples_per_frame
    saved = (768 * 384 * (2 - 1) + 384 * 192 * (24 - 8) + 192 * 96 * (120 - 24)) / spf
    assert abs(analytic + saved - PAPER_MACS_PER_SAMPLE) / PAPER_MACS_PER_SAMPLE < 0.03
    assert abs(profiled + saved - PAPER_MACS_PER_SAMPLE) / PAPER_MACS_PER_SAMPLE < 0.03
    # The two counts are independent (layer walk vs TF's graph statistics); dilated convs are
    # padded to a multiple of the dilation by TF, so the profiler may count slightly more.
    assert analytic <= profiled < analytic * 1.01


def test_paper_generator_parameter_count(paper_generator):
    n = sum(int(np.prod(v.shape)) for v in paper_generator.trainable_variables)
    # Independent count from Table 2 / Fig. 1a: convs (k·in·out + out), CBN embeddings 2·128·C.
    def conv(k, i, o):
        return k * i * o + o
    expected = conv(3, 567, 768) + conv(3, 96, 1)
    ch = 768
    for out, _ in ((768, 1), (768, 1), (384, 2), (384, 2), (384, 2), (192, 3), (96, 5)):
        expected += conv(3, ch, out) + 3 * conv(3, out, out)
        expected += conv(1, ch, out) if ch != out else 0
        expected += 2 * 128 * ch + 3 * 2 * 128 * out  # CBN before each of the 4 convs
        ch = out
    assert n == expected


@pytest.mark.parametrize("frames", [1, 7, 13])
def test_odd_lengths(tiny_generator, frames):
    out = tiny_generator(tf.random.normal([2, frames, 7]), tf.random.normal([2, 4]))
    assert out.shape == (2, 120 * frames, 1)


def test_masking_batched_padded_equals_one_by_one(tiny_generator):
    gen = tiny_generator
    lengths = np.array([11, 4, 7, 1])
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(4, 11, 7)).astype(np.float32)
    z = rng.normal(size=(4, 4)).astype(np.float32)
    padded = feats.copy()
    for i, n in enumerate(lengths):
        padded[i, n:] = 1e3  # whatever is in the padding must not matter
    batched = gen(tf.constant(padded), tf.constant(z), lengths=tf.constant(lengths)).numpy()
    # Padded batch vs alone: float32 rounding only, compared on linear audio
    # (float32_bounds). Worst measured: 0.012 of the bound.
    bound = generator_rounding(gen)
    for i, n in enumerate(lengths):
        alone = gen(tf.constant(feats[i:i + 1, :n]), tf.constant(z[i:i + 1])).numpy()
        within("padded batch vs alone", mulaw_audio_difference(batched[i, :120 * n], alone[0]),
               bound)
        assert np.all(batched[i, 120 * n:] == 0.0)
    # Control, 3,200× the bound: without lengths the padding (1e3) is read as frames.
    unmasked = gen(tf.constant(padded[3:]), tf.constant(z[3:])).numpy()
    exceeds("padding not masked", mulaw_audio_difference(unmasked[0, :120], alone[0]), bound)


def test_masked_training_statistics_ignore_padding():
    gen = build_and_init(Generator(**TINY))
    lengths = np.array([5, 3])
    feats = np.random.default_rng(1).normal(size=(2, 5, 7)).astype(np.float32)
    z = np.zeros((2, 4), np.float32)
    bn = gen.batch_norms()[0]
    state = [v.numpy() for v in gen.non_trainable_weights]  # SN vectors, BN statistics

    def first_bn_mean(padding: float, masked: bool = True) -> np.ndarray:
        """The first BN's moving mean after one training pass from ``state``."""
        for v, x in zip(gen.non_trainable_weights, state, strict=True):
            v.assign(x)
        a = feats.copy()
        a[1, 3:] = padding
        gen(tf.constant(a), tf.constant(z), lengths=tf.constant(lengths) if masked else None,
            training=True)
        return bn.moving_mean.numpy()

    m1 = first_bn_mean(50.0)
    # Same shapes, same state, padding × mask = ±0: the same sums; the bound is conv_in's and
    # the mean's rounding (float32_bounds), relative to the statistic. Worst measured: 0
    # (before the SN vectors were reset between the passes: 0.28 of it, power iteration).
    bound = worst_rounding(3 * 7, 2)
    within("padding +50 vs -50", relative_difference(first_bn_mean(-50.0), m1), bound)
    # Control, 70,000× the bound: unmasked, the padding enters the statistics.
    exceeds("padding not masked",
            relative_difference(first_bn_mean(-50.0, masked=False), m1), bound)


def test_noise_changes_the_output(tiny_generator):
    f = tf.random.normal([1, 5, 7])
    a = tiny_generator(f, tf.random.normal([1, 4]))
    b = tiny_generator(f, tf.random.normal([1, 4]))
    assert np.abs(a.numpy() - b.numpy()).max() > 1e-4


def test_multi_speaker_conditioning():
    gen = build_and_init(Generator(**TINY, num_speakers=3))
    assert gen.cond_dim == 4 + 3
    f, z = tf.random.normal([2, 4, 7]), tf.random.normal([1, 4])
    z = tf.concat([z, z], axis=0)
    out = gen(f[:1] * tf.ones([2, 1, 1]), z, speaker=tf.constant([0, 2]))
    assert np.abs(out[0].numpy() - out[1].numpy()).max() > 1e-5
    with pytest.raises(ValueError, match="speaker"):
        gen(f, z)


def test_wrong_feature_dim_is_a_clear_error(tiny_generator):
    with pytest.raises(ValueError, match=r"expected \[batch, frames, 7\]"):
        tiny_generator(tf.zeros([1, 4, 9]), tf.zeros([1, 4]))


def test_standing_statistics_make_inference_independent_of_the_batch():
    gen = build_and_init(Generator(**TINY))
    n = accumulate_standing_statistics(gen, _random_batches(seed=2, frames=6), num_passes=5)
    assert n == 5
    bn = gen.batch_norms()[0]
    assert bn.standing_count.numpy() == 5
    np.testing.assert_allclose(bn.moving_mean.numpy(),
                               bn.standing_mean_sum.numpy() / 5, rtol=1e-6)
    f, z = tf.random.normal([3, 6, 7]), tf.random.normal([3, 4])
    together = gen(f, z).numpy()
    alone = gen(f[1:2], z[1:2]).numpy()
    # Batch of 3 vs alone: float32 rounding only (float32_bounds). Worst measured: 0.012 of it.
    bound = generator_rounding(gen)
    within("batch of 3 vs alone", mulaw_audio_difference(together[1], alone[0]), bound)
    # Control, 3,500× the bound: batch statistics (training mode) depend on the batch.
    together = gen(f, z, training=True).numpy()
    alone = gen(f[1:2], z[1:2], training=True).numpy()
    exceeds("batch statistics", mulaw_audio_difference(together[1], alone[0]), bound)


def test_receptive_field(paper_generator, tiny_generator):
    # Σ (k-1)·d / rate over the 30 convs: 2 + 2·30 + 15 + 7.5 + 3.75 + 1.25 + 0.25 + 1/60 (+1)
    assert paper_generator.receptive_field_frames() == pytest.approx(90.7667, abs=1e-3)
    # Empirical check on the tiny model (sampling state, so its tanh is not saturated): an input
    # change at frame 20 leaves outputs far away untouched, and affects those within the
    # half-width.
    gen = tiny_generator
    half = gen.receptive_field_halfwidth_frames()
    f = np.zeros((1, 41, 7), np.float32)
    z = tf.zeros([1, 4])
    base = gen(tf.constant(f), z).numpy()[0, :, 0]
    f[0, 20] = 5.0
    diff = np.abs(gen(tf.constant(f), z).numpy()[0, :, 0] - base).reshape(41, 120).max(axis=1)
    changed = np.nonzero(diff > 1e-7)[0]
    assert changed.min() >= 20 - half and changed.max() <= 20 + half
    assert 20 in changed


def test_gblock_skip_conv_before_the_upsampling_is_table2s_order():
    """Fig. 1a upsamples x, then applies the 1×1 skip conv; the block applies the conv first,
    at 1/f of the positions (a pointwise conv commutes with nearest-neighbour upsampling, and
    mask_out is mask_in upsampled). The block against Fig. 1a composed from its own layers in
    the figure's order, on a zero-padded batch, with frozen statistics (inference: the
    training mode's BN and power-iteration updates make two calls differ)."""
    from float32_bounds import rounding

    from tts_gan import ops
    from tts_gan.generator import GBlock

    rng = np.random.default_rng(3)
    f, t_in, lengths = 3, 6, tf.constant([6, 4])
    b = GBlock(5, 7, f, cond_dim=2, name="gb")
    x = tf.constant(rng.normal(size=(2, t_in, 5)), tf.float32)
    cond = tf.constant(rng.normal(size=(2, 2)), tf.float32)
    m_in = ops.length_mask(lengths, t_in, 1, tf.float32)
    m_out = ops.length_mask(lengths, t_in, f, tf.float32)
    b(x, cond, m_in, m_out, training=True)  # builds, and moves the statistics off 0 / 1

    def fig1a(x, align=0):
        h = tf.nn.relu(b.cbns[0](x, cond, seq_mask=m_in))
        h = b.convs[0](ops.upsample(h, f), seq_mask=m_out)
        h = b.convs[1](tf.nn.relu(b.cbns[1](h, cond, seq_mask=m_out)), seq_mask=m_out)
        x = h + tf.roll(b.skip(ops.upsample(x, f), seq_mask=m_out), align, axis=1)
        h = b.convs[2](tf.nn.relu(b.cbns[2](x, cond, seq_mask=m_out)), seq_mask=m_out)
        return x + b.convs[3](tf.nn.relu(b.cbns[3](h, cond, seq_mask=m_out)), seq_mask=m_out)

    y = b(x, cond, m_in, m_out, training=False).numpy()
    ref = fig1a(x).numpy()
    # Two evaluation orders through the block's 4 convs (widest sum 3·7 taps) and the skip
    # (float32_bounds.rounding), relative to the output.
    bound = rounding(3 * 7, 5)
    within("GBlock vs Fig. 1a's order", relative_difference(y, ref), bound)
    # Control: the skip path one sample late (an upsampling misaligned by one position).
    exceeds("skip misaligned by a sample", relative_difference(fig1a(x, 1).numpy(), ref), bound)

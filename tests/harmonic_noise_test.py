"""Harmonic-plus-noise synthesis (tts_gan.harmonic_noise; DDSP, Engel et al. 2020) against
NumPy/SciPy references, and the generator's opt-in ``harmonic_noise`` output."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from tts_gan import harmonic_noise as hn
from tts_gan import mulaw
from tts_gan.generator import (
    ExcitationSpec,
    Generator,
    build_and_init,
    excitation_phase,
    harmonic_noise_spec,
)

RATE = 24000.0


def test_frames_to_samples_is_linear_interpolation_between_frame_centres():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 3)).astype(np.float32)
    r = 10
    got = hn.frames_to_samples(tf.constant(x), r).numpy().reshape(2, 7 * r, 3)
    centres = np.arange(7) * r + r / 2 - 0.5  # sample index of each frame's centre
    n = np.arange(7 * r)
    want = np.array([[np.interp(n, centres, x[b, :, c]) for c in range(3)] for b in range(2)])
    np.testing.assert_allclose(got, want.transpose(0, 2, 1), atol=1e-5)
    # a masked batch: the last valid frame holds, whatever the padding holds
    mask = np.ones((2, 7, 1), np.float32)
    mask[1, 4:] = 0
    padded = x.copy()
    padded[1, 4:] = 100.0
    got = hn.frames_to_samples(tf.constant(padded), r, tf.constant(mask)).numpy()
    alone = hn.frames_to_samples(tf.constant(x[1:, :4]), r).numpy()
    np.testing.assert_allclose(got[1, :4], alone[0], atol=1e-5)


def test_harmonic_synth_matches_a_sum_of_sines():
    """Constant F0, amplitudes ramping across frames: NumPy's sum of sines with np.interp
    amplitudes; the spectrum peaks at k·F0 with the amplitudes asked for."""
    frames, r, h = 40, 120, 5
    f0 = 150.0
    amps = np.zeros((1, frames, h), np.float32)
    amps[0, :, 0] = 0.5
    amps[0, :, 2] = np.linspace(0.0, 0.2, frames)
    amps[0, :, 4] = 0.1
    n = np.arange(frames * r)
    cycles = (n * f0 / RATE).reshape(1, frames, r)
    got = hn.harmonic_synth(tf.constant(amps), tf.constant(cycles, tf.float32)).numpy()[0]
    centres = np.arange(frames) * r + r / 2 - 0.5
    want = sum(np.interp(n, centres, amps[0, :, k]) * np.sin(2 * np.pi * (k + 1) * f0 * n / RATE)
               for k in range(h))
    np.testing.assert_allclose(got, want, atol=2e-4)
    spec = np.abs(np.fft.rfft(got * np.hanning(len(got))))
    freqs = np.fft.rfftfreq(len(got), 1 / RATE)
    peaks = freqs[scipy.signal.find_peaks(spec, height=spec.max() * 0.05)[0]]
    np.testing.assert_allclose(peaks, [150, 450, 750], atol=5)


def test_harmonic_amplitudes_split_the_amplitude_below_nyquist_on_voiced_frames():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 3, 10)).astype(np.float32)
    f0 = np.array([[100.0, 1500.0, 100.0]], np.float32)  # 1.5 kHz: k ≥ 8 above 12 kHz
    voiced = np.array([[1.0, 1.0, 0.0]], np.float32)
    amp = np.full((1, 3, 1), 0.3, np.float32)
    got = hn.harmonic_amplitudes(tf.constant(amp), tf.constant(logits), tf.constant(f0),
                                 tf.constant(voiced), RATE).numpy()[0]
    soft = np.exp(logits[0, 0]) / np.exp(logits[0, 0]).sum()
    np.testing.assert_allclose(got[0], 0.3 * soft, rtol=1e-5)
    assert np.all(got[1, 7:] == 0) and got[1].sum() == pytest.approx(0.3, rel=1e-5)
    np.testing.assert_allclose(got[1, :7], 0.3 * np.exp(logits[0, 1, :7])
                               / np.exp(logits[0, 1, :7]).sum(), rtol=1e-5)
    assert np.all(got[2] == 0)  # unvoiced


def _np_filtered_noise(mags: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Per frame: zero-phase magnitude → np.fft.irfft, centred, SciPy's periodic Hann window;
    np.convolve with the frame's noise; overlap-add; the filter's delay removed."""
    b, t, n = mags.shape
    r = noise.shape[2]
    taps = 2 * (n - 1)
    win = scipy.signal.get_window("hann", taps, fftbins=True)
    out = np.zeros((b, t * r + taps))
    for i in range(b):
        for j in range(t):
            ir = np.roll(np.fft.irfft(mags[i, j]), n - 1) * win
            y = np.convolve(noise[i, j], ir)
            out[i, j * r:j * r + len(y)] += y
    return out[:, n - 1:n - 1 + t * r]


def test_filtered_noise_matches_a_numpy_convolution_and_shapes_the_spectrum():
    rng = np.random.default_rng(2)
    b, t, r, n = 2, 6, 120, 65
    mags = rng.uniform(0, 1, size=(b, t, n)).astype(np.float32)
    noise = rng.uniform(-1, 1, size=(b, t, r)).astype(np.float32)
    got = hn.filtered_noise(tf.constant(mags), tf.constant(noise)).numpy()
    np.testing.assert_allclose(got, _np_filtered_noise(mags, noise), atol=1e-5)
    # a low-pass response: below 3 kHz passes, above 6 kHz ≥ 30 dB down (Welch PSD)
    t = 200
    noise = rng.uniform(-1, 1, size=(1, t, r)).astype(np.float32)
    freqs = np.linspace(0, RATE / 2, n)
    lowpass = np.tile((freqs < 3000).astype(np.float32), (1, t, 1))
    y = hn.filtered_noise(tf.constant(lowpass), tf.constant(noise)).numpy()[0]
    f, psd = scipy.signal.welch(y, fs=RATE, nperseg=512)
    assert 10 * np.log10(psd[f < 2500].mean() / psd[f > 6000].mean()) > 30
    flat = hn.filtered_noise(tf.ones([1, t, n]), tf.constant(noise)).numpy()[0]
    assert np.std(flat) == pytest.approx(np.std(noise), rel=0.1)  # a unit response ≈ identity


def test_synthesize_on_a_masked_batch_equals_each_utterance_alone():
    spec = hn.HarmonicNoiseSpec(harmonics=6, noise_bands=9)
    rng = np.random.default_rng(3)
    b, t, r = 2, 8, 30
    controls = rng.normal(size=(b, t, spec.controls)).astype(np.float32)
    cycles = np.cumsum(np.full((b, t * r), 200.0 / 6000.0), axis=1).reshape(b, t, r)
    f0 = np.full((b, t), 200.0, np.float32)
    voiced = np.ones((b, t), np.float32)
    noise = rng.uniform(-1, 1, size=(b, t, r)).astype(np.float32)
    mask = np.ones((b, t, 1), np.float32)
    mask[1, 5:] = 0
    got = hn.synthesize(tf.constant(controls), tf.constant(cycles, tf.float32), tf.constant(f0),
                        tf.constant(voiced), spec, 6000.0, tf.constant(noise),
                        tf.constant(mask)).numpy()
    alone = hn.synthesize(tf.constant(controls[1:, :5]), tf.constant(cycles[1:, :5], tf.float32),
                          tf.constant(f0[1:, :5]), tf.constant(voiced[1:, :5]), spec, 6000.0,
                          noise=tf.constant(noise[1:, :5])).numpy()
    np.testing.assert_allclose(got[1, :5 * r], alone[0], atol=1e-5)
    assert np.all(np.isfinite(got))


EXC = ExcitationSpec(lf0_index=1, lf0_mean=5.0, lf0_std=0.3, vuv_index=3, harmonics=4, blocks=2)
TINY = dict(feature_dim=5, noise_dim=4, input_channels=16,
            blocks=((16, 1), (12, 1), (8, 2), (8, 2), (8, 2), (4, 3), (4, 5)))


def test_generator_harmonic_noise_output():
    """The head reads the stem after GBlock 2 and is in the sampling path (MACs, not the
    orthogonal regulariser); the output stays µ-law in [−1, 1]; bad settings are errors."""
    spec = hn.HarmonicNoiseSpec(harmonics=10, noise_bands=17)
    plain = build_and_init(Generator(**TINY, excitation=EXC, output_mu=255.0))
    gen = build_and_init(Generator(**TINY, excitation=EXC, output_mu=255.0, harmonic_noise=spec))
    assert gen.count_params() == plain.count_params() + 12 * spec.controls + spec.controls
    assert gen.macs_per_sample() == pytest.approx(plain.macs_per_sample()
                                                  + 12 * spec.controls / 120)
    assert len(gen.orthogonal_kernels()) == len(plain.orthogonal_kernels())
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(2, 9, 5)).astype(np.float32)
    feats[..., 3] = 1.0
    z = tf.constant(rng.normal(size=(2, 4)), tf.float32)
    with tf.GradientTape() as tape:
        audio = gen(tf.constant(feats), z, training=True)
        loss = tf.reduce_mean(tf.square(audio))
    grads = tape.gradient(loss, gen.hn_head.trainable_variables)
    assert audio.shape == (2, 1080, 1) and np.all(np.abs(audio.numpy()) <= 1.0)
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)
    # the sines follow the conditioning's F0: the phase the excitation uses
    cycles, f0, voiced = excitation_phase(tf.constant(feats), EXC, 120)
    assert cycles.shape == (2, 9, 120) and np.all(voiced.numpy() == 1)
    with pytest.raises(ValueError, match="needs generator.excitation"):
        Generator(**TINY, output_mu=255.0, harmonic_noise=spec)
    with pytest.raises(ValueError, match="generator.linear_output"):
        Generator(**TINY, excitation=EXC, harmonic_noise=spec)
    with pytest.raises(ValueError, match="harmonic_noise.after=3"):
        Generator(**TINY, excitation=EXC, output_mu=255.0,
                  harmonic_noise=hn.HarmonicNoiseSpec(after=3))


def test_harmonic_noise_config():
    from ml_collections import ConfigDict

    assert harmonic_noise_spec(ConfigDict(dict(harmonic_noise=dict(enabled=False)))) is None
    got = harmonic_noise_spec(ConfigDict(dict(harmonic_noise=dict(enabled=True, harmonics=3))))
    assert got == hn.HarmonicNoiseSpec(harmonics=3)
    with pytest.raises(ValueError, match=r"generator.harmonic_noise: unknown field\(s\) \['bands'"):
        harmonic_noise_spec(ConfigDict(dict(harmonic_noise=dict(enabled=True, bands=3))))


def test_noise_from_z_is_white_reproducible_and_per_example():
    table = tf.constant(hn.noise_table())
    z = tf.constant(np.random.default_rng(5).normal(size=(3, 4)), tf.float32)
    a = hn.noise_from_z(z, 50, 120, table).numpy()
    assert a.shape == (3, 50, 120)
    np.testing.assert_array_equal(a[1:2], hn.noise_from_z(z[1:2], 50, 120, table).numpy())
    assert np.abs(a[0] - a[1]).max() > 0.5  # another z, another stretch of noise
    flat = a[0].ravel()
    assert abs(flat.mean()) < 0.02 and np.std(flat) == pytest.approx(1 / np.sqrt(3), rel=0.05)
    _, psd = scipy.signal.welch(flat, fs=RATE, nperseg=256)
    assert psd[1:-1].max() / psd[1:-1].min() < 3  # white: no band > 5 dB off another


def test_generator_harmonic_noise_is_reproducible_and_masking_invariant():
    spec = hn.HarmonicNoiseSpec(harmonics=10, noise_bands=17)
    tf.keras.utils.set_random_seed(6)
    gen = build_and_init(Generator(**TINY, excitation=EXC, output_mu=255.0, harmonic_noise=spec))
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(2, 9, 5)).astype(np.float32)
    feats[..., 3] = 1.0
    z = tf.constant(rng.normal(size=(2, 4)), tf.float32)
    lengths = tf.constant([9, 6])
    a = gen(tf.constant(feats), z, lengths=lengths).numpy()
    np.testing.assert_array_equal(a, gen(tf.constant(feats), z, lengths=lengths).numpy())
    alone = gen(tf.constant(feats[1:, :6]), z[1:]).numpy()
    # linear audio (the µ-law's slope, ~46 near 0, would magnify float32 matmul rounding)
    np.testing.assert_allclose(mulaw.decode(a[1, :720], 255.0), mulaw.decode(alone[0], 255.0),
                               atol=1e-5)
    assert np.all(a[1, 720:] == 0)


def test_harmonic_noise_generator_exports_to_savedmodel_and_tflite(tmp_path):
    """DFTs as matrices and the noise table keep the export to MatMul/Gather kernels: the
    SavedModel and the TFLite model agree with Keras, and a z gives the same audio each call."""
    from tts_gan import export

    tf.keras.utils.set_random_seed(8)
    gen = build_and_init(Generator(**TINY, excitation=EXC, output_mu=65535.0,
                                   harmonic_noise=hn.HarmonicNoiseSpec(harmonics=10,
                                                                       noise_bands=17)))
    res = export.export_saved_model(gen, str(tmp_path), tflite=True)
    model = tf.saved_model.load(res.path)
    rng = np.random.default_rng(9)
    feats = rng.normal(size=(2, 10, 5)).astype(np.float32)
    feats[..., 3] = (rng.uniform(size=(2, 10)) > 0.3).astype(np.float32)
    z = rng.standard_normal((2, 4)).astype(np.float32)
    inputs = dict(features=feats, lengths=np.array([10, 7], np.int32),
                  speaker=np.zeros(2, np.int32), z=z)
    served = model.signatures["synthesize_z"](**inputs)["audio"].numpy()
    np.testing.assert_array_equal(served, model.signatures["synthesize_z"](**inputs)["audio"])
    keras_out = gen(tf.constant(feats), tf.constant(z), lengths=tf.constant([10, 7]))
    np.testing.assert_allclose(served, mulaw.decode(keras_out.numpy()[..., 0]), atol=1e-4)
    runner = tf.lite.Interpreter(
        model_path=f"{res.path}/assets/gan_tts.tflite").get_signature_runner()
    # the µ-law decode's relative slope is ln(1 + µ) ≈ 11: a float32 kernel difference Δy in
    # G's output is a relative error ~11·Δy of the linear sample (this random G is loud)
    np.testing.assert_allclose(runner(**inputs)["audio"], served, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("freq, low, high", [(0, 0.0, 1e-5), (50, 0.95, 1.03),
                                             (100, 0.97, 1.03), (1000, 0.999, 1.001)])
def test_remove_dc_is_a_high_pass(freq, low, high):
    """Gain of a DC-offset sinusoid through remove_dc (r = 120, 9 frames): the offset is gone
    and speech frequencies pass (SciPy's periodogram of the output, away from the edges)."""
    n = np.arange(120 * 200)
    x = 0.5 + 0.3 * (np.sin(2 * np.pi * freq * n / RATE) if freq else 0.0 * n)
    y = hn.remove_dc(tf.constant(x.reshape(1, -1, 1), tf.float32), 120, 9).numpy().ravel()
    mid = y[4800:-4800]
    assert abs(mid.mean()) < 1e-4
    if freq:
        f, p = scipy.signal.periodogram(mid, fs=RATE, window="hann", scaling="spectrum")
        amp = np.sqrt(2 * p[np.abs(f - freq) < 3].sum() / 1.5)  # Hann: 1.5 bins of power
        assert low < amp / 0.3 < high
    else:
        assert np.abs(mid).max() < high


def test_remove_dc_ignores_masked_frames_and_blocks_the_generators_offset():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(2, 20 * 30, 1)).astype(np.float32) + 3.0
    mask = np.ones((2, 20, 1), np.float32)
    mask[1, 12:] = 0
    padded = x.copy()
    padded[1, 12 * 30:] = -50.0
    got = hn.remove_dc(tf.constant(padded), 30, 5, tf.constant(mask)).numpy()
    alone = hn.remove_dc(tf.constant(x[1:, :12 * 30]), 30, 5).numpy()
    np.testing.assert_allclose(got[1, :12 * 30], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="frames=4, expected an odd number"):
        hn.remove_dc(tf.constant(x), 30, 4)
    # in the generator: a constant offset out of the last conv no longer saturates the output
    spec = hn.HarmonicNoiseSpec(harmonics=10, noise_bands=17)
    for frames, saturated in ((0, True), (9, False)):
        tf.keras.utils.set_random_seed(11)
        gen = build_and_init(Generator(**TINY, excitation=EXC, output_mu=255.0,
                                       harmonic_noise=spec, dc_block_frames=frames,
                                       spectral_norm=False))  # a zero kernel stays zero
        gen.conv_out.kernel.assign(tf.zeros_like(gen.conv_out.kernel))
        gen.conv_out.bias.assign([5.0])
        gen.hn_head.kernel.assign(tf.zeros_like(gen.hn_head.kernel))  # harmonics, noise ≈ 0
        gen.hn_head.bias.assign(tf.fill(gen.hn_head.bias.shape, -20.0))
        feats = rng.normal(size=(1, 30, 5)).astype(np.float32)
        out = mulaw.decode(gen(tf.constant(feats), tf.zeros([1, 4])).numpy(), 255.0)
        assert (np.abs(out).min() > 0.99) if saturated else (np.abs(out).max() < 1e-3), (
            frames, np.abs(out).min(), np.abs(out).max())
    with pytest.raises(ValueError, match="dc_block_frames=4: expected 0"):
        Generator(**TINY, dc_block_frames=4)

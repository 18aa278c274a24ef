"""Harmonic-plus-noise synthesis (tts_gan.harmonic_noise; DDSP, Engel et al. 2020) against
NumPy/SciPy references, and the generator's opt-in ``harmonic_noise`` output."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from float32_bounds import (
    EPS,
    audio_difference,
    exceeds,
    generator_rounding,
    mulaw_audio_difference,
    within,
)
from streaming_state_test import harmonic_weight, phase_rounding, streaming_bound

from tts_gan import harmonic_noise as hn
from tts_gan import mulaw
from tts_gan.generator import (
    ExcitationSpec,
    Generator,
    build_and_init,
    harmonic_noise_spec,
)

RATE = 24000.0
SEMITONE = 2.0 ** (1.0 / 12.0)


def _np_f0_per_sample(f0: np.ndarray, r: int) -> np.ndarray:
    """F0 ``[..., T]`` per frame → per sample ``[..., T·r]`` (float64): linear between frame
    centres t·r + (r − 1)/2, held before the first and after the last (np.interp)."""
    n = np.arange(f0.shape[-1] * r)
    centres = np.arange(f0.shape[-1]) * r + (r - 1) / 2
    return np.stack([np.interp(n, centres, row) for row in np.reshape(f0, (-1, f0.shape[-1]))]
                    ).reshape(f0.shape[:-1] + (-1,))


def _np_harmonics(amps: np.ndarray, f0: np.ndarray, r: int, rate: float = RATE,
                  per_frame_f0: bool = False) -> np.ndarray:
    """DDSP's harmonic synthesis written out per sample (float64): amplitudes ``[B, T, H]`` and
    F0 ``[B, T]`` interpolated to samples, phase φ(n) = Σ_{m<n} F0(m)/rate, harmonic k silent
    at every sample where k·F0(n) ≥ rate/2. ``per_frame_f0``: F0 held over each frame (the
    synthesis before #25), for the controls."""
    b, t, h = amps.shape
    f = np.repeat(f0, r, axis=-1) if per_frame_f0 else _np_f0_per_sample(f0, r)
    phase = np.cumsum(f / rate, axis=-1) - f / rate
    a = np.stack([_np_f0_per_sample(amps[..., k], r) for k in range(h)], axis=-1)
    k = np.arange(1, h + 1)
    on = f[..., None] * k < rate / 2
    return np.sum(np.where(on, a * np.sin(2 * np.pi * phase[..., None] * k), 0.0), axis=-1)


def _phase_bound(r: int, frames: int, f_max: float, rate: float = RATE) -> float:
    """Worst-case float32 error of :func:`hn.harmonic_phase` in cycles, with c = r·f_max/rate
    the cycles of one frame (float32_bounds.worst_rounding, eps per operation on values ≤ its
    result): a frame's running sum and its total, 3 products and 2 additions each (≤ 4·eps·c);
    the totals accumulated over ≤ T frames (T·4·eps·c: exact on their 2^-10 grid, the
    remainders' sum < T·2^-10 adds T·eps·T/1024); the wrap and the final addition."""
    c = r * f_max / rate
    return EPS * (frames * 4 * c + frames * frames / 1024.0 + 4 * c + 4.0)


def _phase_step_bound(r: int, frames: int, f_max: float, rate: float = RATE) -> float:
    """Worst-case float32 error of the phase *difference* of two consecutive samples, in
    cycles: the accumulated part of :func:`_phase_bound` is common to both except one frame
    total's rounding at a frame edge, so twice the per-sample terms plus one total."""
    c = r * f_max / rate
    return EPS * (2 * (4 * c + 4.0) + 4 * c + frames / 1024.0)


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
    got = hn.harmonic_synth(tf.constant(amps), tf.fill([1, frames], f0), r, RATE).numpy()[0]
    centres = np.arange(frames) * r + r / 2 - 0.5
    want = sum(np.interp(n, centres, amps[0, :, k]) * np.sin(2 * np.pi * (k + 1) * f0 * n / RATE)
               for k in range(h))
    np.testing.assert_allclose(got, want, atol=2e-4)
    spec = np.abs(np.fft.rfft(got * np.hanning(len(got))))
    freqs = np.fft.rfftfreq(len(got), 1 / RATE)
    peaks = freqs[scipy.signal.find_peaks(spec, height=spec.max() * 0.05)[0]]
    np.testing.assert_allclose(peaks, [150, 450, 750], atol=5)


def _glide(frames: int, low: float, high: float) -> np.ndarray:
    """F0 ``[1, frames]`` rising from ``low`` to ``high`` Hz, faster and faster (log-spaced
    plus a sine: the frame-to-frame steps differ, as in speech)."""
    t = np.linspace(0.0, 1.0, frames)
    return (low * (high / low) ** t * (1 + 0.03 * np.sin(7 * t)))[None].astype(np.float32)


def test_harmonic_synth_follows_a_gliding_f0_sample_by_sample():
    """A gliding F0 and six harmonics with ramping amplitudes against the per-sample NumPy
    synthesis (:func:`_np_harmonics`). Bound: Σ_k A_k·2π·k·(phase error, :func:`_phase_bound`)
    plus the sum's rounding. Controls: F0 held over each frame (the synthesis before #25) and
    F0 a semitone off."""
    frames, r, h = 60, 120, 6
    f0 = _glide(frames, 120.0, 260.0)
    amps = np.tile(np.linspace(0.05, 0.3, frames)[None, :, None], (1, 1, h)).astype(np.float32)
    got = hn.harmonic_synth(tf.constant(amps), tf.constant(f0), r, RATE).numpy()
    want = _np_harmonics(amps, f0, r)
    peak_a = float(np.sum(amps.max(axis=1)))
    bound = (2 * np.pi * h * peak_a * _phase_bound(r, frames, float(f0.max()))
             + EPS * h * peak_a * 4)
    within("harmonics vs NumPy", float(np.abs(got - want).max()), bound)
    exceeds("F0 held per frame", float(np.abs(_np_harmonics(amps, f0, r, per_frame_f0=True)
                                               - want).max()), bound)
    exceeds("F0 a semitone up", float(np.abs(_np_harmonics(amps, f0 * SEMITONE, r)
                                              - want).max()), bound)


def test_held_synth_matches_a_sum_of_sines_with_interpolated_amplitudes():
    """``harmonic_synth_held`` (the shipped model's synthesis) against the per-sample NumPy
    synthesis with F0 held per frame: a gliding F0 and eight harmonics whose amplitudes differ
    per harmonic and per frame (random), so every neighbour weight of the amplitude
    interpolation counts; on a masked batch the padding (amplitudes 100) reaches no valid
    sample. Bound as for the interpolated synthesis. Controls: amplitudes held per frame, and
    the neighbours' weights swapped (each sample mixing in the frame on the wrong side)."""
    frames, r, h, valid = 50, 120, 8, 37
    rng = np.random.default_rng(3)
    f0 = np.concatenate([_glide(frames, 120.0, 260.0)] * 2)
    amps = rng.uniform(0.0, 0.2, size=(2, frames, h)).astype(np.float32)
    padded = amps.copy()
    padded[1, valid:] = 100.0
    mask = np.ones((2, frames, 1), np.float32)
    mask[1, valid:] = 0.0
    got = hn.harmonic_synth_held(tf.constant(padded), tf.constant(f0), r, RATE,
                                 frame_mask=tf.constant(mask)).numpy()
    f64 = f0.astype(np.float64)  # the reference's running phase sum in float64
    want = _np_harmonics(amps[:1], f64[:1], r, per_frame_f0=True)[0]
    alone = _np_harmonics(amps[1:, :valid], f64[1:, :valid], r, per_frame_f0=True)[0]
    peak_a = float(np.sum(amps.max(axis=1)))
    bound = (2 * np.pi * h * peak_a * _phase_bound(r, frames, float(f0.max()))
             + EPS * h * peak_a * 4)
    within("held synthesis vs NumPy", float(np.abs(got[0] - want).max()), bound)
    within("held synthesis, masked utterance vs alone",
           float(np.abs(got[1, :valid * r] - alone).max()), bound)
    f = np.repeat(f64[:1], r, axis=-1)
    phase = np.cumsum(f / RATE, axis=-1) - f / RATE
    sines = np.sin(2 * np.pi * phase[..., None] * np.arange(1, h + 1))[0]
    held_amps = np.repeat(amps[0], r, axis=0)
    exceeds("amplitudes held per frame", float(np.abs(np.sum(held_amps * sines, axis=-1)
                                                      - want).max()), bound)
    centres = np.arange(frames) * r + (r - 1) / 2
    n = np.arange(frames * r)
    mirrored = 2 * centres.repeat(r) - n  # the same distance on the other side of the centre
    swapped = np.stack([np.interp(mirrored, centres, amps[0, :, k]) for k in range(h)], -1)
    exceeds("neighbour weights swapped", float(np.abs(np.sum(swapped * sines, axis=-1)
                                                      - want).max()), bound)


def _instantaneous_frequency(x: np.ndarray) -> np.ndarray:
    """Hz between consecutive samples, from the analytic signal (scipy.signal.hilbert)."""
    a = scipy.signal.hilbert(np.asarray(x, np.float64))
    return np.angle(a[1:] * np.conj(a[:-1])) * RATE / (2 * np.pi)


def test_instantaneous_frequency_is_continuous_at_frame_edges():
    """One harmonic (k = 8) of an F0 gliding 100 → 300 Hz over 40 frames: its instantaneous
    frequency (analytic signal) against that of the per-sample NumPy synthesis, the same
    estimator on both (its own bias cancels). An F0 held per frame (the synthesis before #25,
    the control) steps by k·ΔF0 ≈ 40 Hz at every frame edge. Bound: the phase difference of
    consecutive samples off by ≤ 2π·k·:func:`_phase_step_bound` rad plus the two sine
    arguments' rounding (eps·2π·k·(2 + r·F0/rate) each), times rate/2π."""
    frames, r, k = 40, 120, 8
    f0 = np.linspace(100.0, 300.0, frames)[None].astype(np.float32)
    amps = np.zeros((1, frames, k), np.float32)
    amps[..., k - 1] = 0.5
    got = hn.harmonic_synth(tf.constant(amps), tf.constant(f0), r, RATE).numpy()[0]
    want = _np_harmonics(amps, f0, r)[0]
    edge = slice(5 * r, (frames - 5) * r)  # the analytic signal is exact away from the ends
    if_got, if_want = (_instantaneous_frequency(x)[edge] for x in (got, want))
    c = 2 + r * 300.0 / RATE
    bound = k * (_phase_step_bound(r, frames, 300.0) + 2 * EPS * c) * RATE
    within("instantaneous frequency vs NumPy", float(np.abs(if_got - if_want).max()), bound)
    old = _instantaneous_frequency(_np_harmonics(amps, f0, r, per_frame_f0=True)[0])[edge]
    exceeds("F0 held per frame", float(np.abs(old - if_want).max()), bound)
    # ...and the analytic-signal estimate follows k·F0(n) (a sanity check of the estimator)
    assert np.abs(if_want - k * _np_f0_per_sample(f0, r)[0, edge]).max() < 0.01 * k * 100


def test_spectral_peaks_sit_at_k_times_f0():
    """Six harmonics of an F0 gliding 150 → 200 Hz over 0.5 s: in each 1024-sample STFT
    segment (scipy.signal.stft, Hann) the largest bin within ±F0/2 of k·F0(segment centre)
    lies within half a bin (11.7 Hz) plus half the glide of harmonic k across the segment
    (k·F0'·1024/2/rate) of k·F0 (measured worst: 0.83 of it, at k = 1). Control: the
    reference F0 a semitone off, which harmonic 6 misses by 6 % of ~1.1 kHz against a 24.5 Hz
    tolerance (measured: 3.3 tolerances)."""
    frames, r, h = 100, 120, 6
    f0 = np.linspace(150.0, 200.0, frames)[None].astype(np.float32)
    amps = np.full((1, frames, h), 0.2, np.float32)
    x = hn.harmonic_synth(tf.constant(amps), tf.constant(f0), r, RATE).numpy()[0]
    seg = 1024
    freqs, times, z = scipy.signal.stft(x, fs=RATE, nperseg=seg, noverlap=seg // 2,
                                        boundary=None, padded=False)
    mag = np.abs(z)
    f_per_sample = _np_f0_per_sample(f0, r)[0]
    slope = (200.0 - 150.0) / (frames * r / RATE)  # Hz/s

    def worst_miss(reference: np.ndarray) -> float:
        """Largest |peak − k·F0| / tolerance over segments and harmonics."""
        worst = 0.0
        for j, t in enumerate(times):
            f = float(np.interp(t * RATE, np.arange(len(reference)), reference))
            for k in range(1, h + 1):
                near = np.abs(freqs - k * f) <= f / 2
                peak = freqs[near][np.argmax(mag[near, j])]
                tol = RATE / seg / 2 + k * slope * seg / 2 / RATE
                worst = max(worst, abs(peak - k * f) / tol)
        return worst

    assert worst_miss(f_per_sample) <= 1.0
    assert worst_miss(f_per_sample * SEMITONE) > 2.0


def test_no_harmonic_sounds_above_nyquist_at_any_sample():
    """Harmonic 10 of an F0 gliding 1150 → 1250 Hz crosses Nyquist (12 kHz) between two frame
    centres: at every sample where 10·F0(n) ≥ 12 kHz (F0(n) by np.interp) the output is 0,
    below it the harmonic sounds (samples within float32 rounding of the crossing are not
    judged). Control: the Nyquist mask applied to the frames before the interpolation (the
    synthesis before #25), which sounds above Nyquist until the next frame centre."""
    frames, r, k = 20, 120, 10
    f0 = np.linspace(1150.0, 1250.0, frames)[None].astype(np.float32)
    amps = np.zeros((1, frames, k), np.float32)
    amps[..., k - 1] = 0.5
    got = hn.harmonic_synth(tf.constant(amps), tf.constant(f0), r, RATE).numpy()[0]
    f = _np_f0_per_sample(f0, r)[0]
    margin = 4 * EPS * k * f  # F0(n) in float32: interpolation and one multiplication
    above = k * f >= RATE / 2 + margin
    below = k * f < RATE / 2 - margin
    assert above.sum() > r and below.sum() > r
    assert np.all(got[above] == 0.0), np.abs(got[above]).max()
    assert np.sqrt(np.mean(got[below] ** 2)) > 0.3  # 0.5/√2 where it sounds
    # control: frame-level mask, then interpolation (per-sample phase, no per-sample mask)
    framed = amps * (f0[..., None] * np.arange(1, k + 1) < RATE / 2)
    cycles, _ = hn.harmonic_phase(tf.constant(f0), r, RATE)
    a = hn.frames_to_samples(tf.constant(framed), r).numpy().reshape(1, frames * r, k)
    old = np.sum(a * np.sin(2 * np.pi * cycles.numpy().reshape(1, -1, 1)
                            * np.arange(1, k + 1)), axis=-1)[0]
    assert np.abs(old[above]).max() > 0.1


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
    """Padding frames (another F0, other controls) change nothing in the valid samples: the
    last valid frame's F0 and amplitudes hold. Control: the same batch without the mask."""
    spec = hn.HarmonicNoiseSpec(harmonics=6, noise_bands=9)
    rng = np.random.default_rng(3)
    b, t, r = 2, 8, 30
    controls = rng.normal(size=(b, t, spec.controls)).astype(np.float32)
    f0 = rng.uniform(150, 250, size=(b, t)).astype(np.float32)
    f0[1, 5:] = 400.0  # padding
    voiced = np.ones((b, t), np.float32)
    noise = rng.uniform(-1, 1, size=(b, t, r)).astype(np.float32)
    mask = np.ones((b, t, 1), np.float32)
    mask[1, 5:] = 0
    args = (tf.constant(controls), tf.constant(f0), tf.constant(voiced), spec, 6000.0,
            tf.constant(noise))
    got = hn.synthesize(*args, tf.constant(mask)).numpy()
    alone = hn.synthesize(tf.constant(controls[1:, :5]), tf.constant(f0[1:, :5]),
                          tf.constant(voiced[1:, :5]), spec, 6000.0,
                          noise=tf.constant(noise[1:, :5])).numpy()
    np.testing.assert_allclose(got[1, :5 * r], alone[0], atol=1e-5)
    unmasked = hn.synthesize(*args).numpy()
    assert np.abs(unmasked[1, :5 * r] - alone[0]).max() > 1e-2
    assert np.all(np.isfinite(got))


EXC = ExcitationSpec(lf0_index=1, lf0_mean=5.0, lf0_std=0.3, vuv_index=3, harmonics=4, blocks=2)
TINY = dict(feature_dim=5, noise_dim=4, input_channels=16,
            blocks=((16, 1), (12, 1), (8, 2), (8, 2), (8, 2), (4, 3), (4, 5)))


def test_generator_harmonic_noise_output():
    """The head reads the stem after GBlock 2 and is in the sampling path (MACs, not the
    orthogonal regulariser) and gets gradient; bad settings are errors. What the output is:
    test_generator_output_is_the_clipped_harmonics_of_the_conditioning_f0."""
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
    assert audio.shape == (2, 1080, 1)
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)
    with pytest.raises(ValueError, match="needs generator.excitation"):
        Generator(**TINY, output_mu=255.0, harmonic_noise=spec)
    with pytest.raises(ValueError, match="generator.linear_output"):
        Generator(**TINY, excitation=EXC, harmonic_noise=spec)
    with pytest.raises(ValueError, match="harmonic_noise.after=3"):
        Generator(**TINY, excitation=EXC, output_mu=255.0,
                  harmonic_noise=hn.HarmonicNoiseSpec(after=3))


def test_generator_output_is_the_clipped_harmonics_of_the_conditioning_f0():
    """The generator's output with the head's weights set so that the controls are constant
    (kernel 0, biases: amplitude logit 3, harmonics 1–3 equally, the rest and the noise at
    −30/−25) and the waveform branch a constant tanh(0.1): µ-law of clip(tanh(0.1) + Σ_k A_k
    sin(2π k φ(n)), ±1) with F0 from the features' log-F0 column (exp(x·std + mean)),
    interpolated per sample, silent on unvoiced frames — NumPy's :func:`_np_harmonics`. The
    harmonics peak at ~1.8, so the clip is engaged. Bound, on the linear waveform: the phase
    (Σ_k A_k·2π·k·:func:`_phase_bound`), the noise branch (magnitudes ≤ 2·sigmoid(−25)^ln 10
    + 1e-7) and the µ-law round trip (ln(1+µ)·eps per unit). Controls: F0 a semitone off, F0
    held per frame, and no clip."""
    spec = hn.HarmonicNoiseSpec(harmonics=10, noise_bands=17)
    tf.keras.utils.set_random_seed(12)
    gen = build_and_init(Generator(**TINY, excitation=EXC, output_mu=255.0, harmonic_noise=spec,
                                   spectral_norm=False))
    gen.conv_out.kernel.assign(tf.zeros_like(gen.conv_out.kernel))
    gen.conv_out.bias.assign([0.1])
    gen.hn_head.kernel.assign(tf.zeros_like(gen.hn_head.kernel))
    bias = np.full(spec.controls, -30.0, np.float32)
    bias[0] = 3.0  # overall amplitude exp_sigmoid(3) ≈ 1.79
    bias[1:4] = 0.0  # harmonics 1–3 share it
    bias[1 + spec.harmonics:] = -25.0  # noise magnitudes ≈ 1e-7
    gen.hn_head.bias.assign(bias)
    frames, r = 30, 120
    rng = np.random.default_rng(13)
    feats = rng.normal(size=(1, frames, 5)).astype(np.float32)
    feats[0, :, 1] = np.linspace(-1.0, 1.5, frames)  # F0 101 → 233 Hz
    feats[0, :, 3] = 1.0
    feats[0, 12:15, 3] = 0.0  # an unvoiced stretch
    got = mulaw.decode(gen(tf.constant(feats), tf.zeros([1, 4])).numpy()[0, :, 0], 255.0)

    f0 = np.exp(feats[..., 1].astype(np.float64) * EXC.lf0_std + EXC.lf0_mean)
    amp = 2.0 / (1.0 + np.exp(-3.0)) ** np.log(10.0) + 1e-7
    amps = np.zeros((1, frames, spec.harmonics))
    amps[..., :3] = amp / 3 * feats[..., 3:4]

    def reference(f, per_frame_f0=False, clip=True):
        x = np.tanh(0.1) + _np_harmonics(amps, f, r, per_frame_f0=per_frame_f0)[0]
        return np.clip(x, -1.0, 1.0) if clip else x

    want = reference(f0)
    assert np.abs(want).max() == 1.0  # clipped
    noise = 2.0 / (1.0 + np.exp(25.0)) ** np.log(10.0) + 1e-7
    bound = (2 * np.pi * 3 * amp * _phase_bound(r, frames, float(f0.max())) + 2 * noise
             + np.log(256.0) * EPS * 8)
    within("generator output vs NumPy", float(np.abs(got - want).max()), bound)
    exceeds("F0 a semitone up", float(np.abs(reference(f0 * SEMITONE) - want).max()), bound)
    exceeds("F0 held per frame", float(np.abs(reference(f0, per_frame_f0=True) - want).max()),
            bound)
    exceeds("no clip", float(np.abs(reference(f0, clip=False) - want).max()), bound)


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
    """A padded utterance in a batch sounds as alone (float32_bounds: the generator's rounding,
    on linear audio; the padding frames hold other F0 and features). Control: the same frames
    unmasked, which the network, F0's interpolation and the phase read."""
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
    bound = generator_rounding(gen)
    within("masked batch vs alone", mulaw_audio_difference(a[1, :720], alone[0], 255.0), bound)
    assert np.all(a[1, 720:] == 0)
    unmasked = gen(tf.constant(feats[1:]), z[1:]).numpy()
    exceeds("padding not masked",
            mulaw_audio_difference(unmasked[0, :720], alone[0], 255.0), bound)


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
    keras_audio = mulaw.decode(keras_out.numpy()[..., 0])
    runner = tf.lite.Interpreter(
        model_path=f"{res.path}/assets/gan_tts.tflite").get_signature_runner()
    lite = runner(**inputs)["audio"]
    swapped = mulaw.decode(gen(tf.constant(feats), tf.constant(z[::-1].copy()),
                               lengths=tf.constant([10, 7])).numpy()[..., 0])
    # Three evaluations of one generator (Keras eager, the SavedModel graph, TFLite's
    # kernels): the network's rounding ρ plus what the phase's rounding moves the sines by
    # (streaming_state_test.streaming_bound; XLA auto-clustering made the SavedModel differ
    # from Keras by 2.1e-4 of full scale on an Intel Xeon, over the 1e-4 this test allowed).
    for i, n in enumerate(inputs["lengths"]):
        raw, samples = feats[i, :n], n * gen.samples_per_frame
        f0_max = float(np.exp(raw[:, EXC.lf0_index] * EXC.lf0_std + EXC.lf0_mean).max())
        bound = streaming_bound(generator_rounding(gen), EXC.harmonics,
                                harmonic_weight(gen, raw, 0, 0, z=z[i]),
                                phase_rounding(int(n), f0_max),
                                float(np.abs(keras_audio[i, :samples]).max()), 65535.0)
        within("SavedModel vs Keras", audio_difference(served[i, :samples],
                                                       keras_audio[i, :samples], 65535.0), bound)
        within("TFLite vs SavedModel", audio_difference(lite[i, :samples],
                                                        served[i, :samples], 65535.0), bound)
        # Control: the other example's z (the noise and the harmonic amplitudes change).
        exceeds("other z", audio_difference(served[i, :samples], swapped[i, :samples],
                                            65535.0), bound)


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

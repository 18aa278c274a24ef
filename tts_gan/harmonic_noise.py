"""Harmonic-plus-noise synthesis driven by frame-rate controls (not in the paper).

The differentiable source of DDSP (Engel et al. 2020, "DDSP: Differentiable Digital Signal
Processing", §3): a sum of sinusoids at k·F0 whose per-frame amplitudes are a network's output,
plus white noise shaped per frame by a linear-phase FIR filter whose magnitude response is a
network's output. Here F0 and V/UV come from the conditioning (neural source-filter models,
Wang et al. 2019) and the controls from the GAN-TTS generator's 200 Hz stem, so the spectral
envelope is multiplied into the waveform instead of having to emerge from the upsampling
stack (``experiments/cpu_harmonic_noise.py``, recipe 4 of issue 14).

F0 and the harmonic amplitudes are interpolated per sample between frame centres and the sines'
phase is the running sum of the per-sample frequency; harmonics are silenced per sample where
k·F0(n) reaches Nyquist (DDSP's ``harmonic_synthesis`` / ``oscillator_bank``; #25).

Small pure functions; ``tests/harmonic_noise_test.py`` checks them against NumPy/SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class HarmonicNoiseSpec:
    """``harmonics`` sinusoids at k·F0 (silenced above Nyquist and on unvoiced frames) and
    filtered noise with ``noise_bands`` linearly spaced magnitudes from 0 Hz to Nyquist, all
    controlled per feature frame by a 1×1 head on the hidden state after GBlock ``after``
    (0 = the input conv; a block still at the 200 Hz frame rate). ``noise_bias`` starts the
    noise quiet (DDSP's initial bias, −5). ``phase``: ``"interpolated"`` (F0 interpolated per
    sample, per-sample Nyquist mask, #25) or ``"held"`` (F0 held over each frame, the sine
    excitation's phase, Nyquist mask per frame: the synthesis before #25, which
    ``pretrained/cpu_harmonic_noise/2`` was trained and exported with)."""

    harmonics: int = 80
    noise_bands: int = 65
    after: int = 2
    noise_bias: float = -5.0
    phase: str = "interpolated"

    @property
    def controls(self) -> int:
        """Channels of the control head: overall amplitude, harmonic distribution, noise."""
        return 1 + self.harmonics + self.noise_bands


def exp_sigmoid(x: tf.Tensor, max_value: float = 2.0, exponent: float = math.log(10.0),
                threshold: float = 1e-7) -> tf.Tensor:
    """DDSP's positive amplitude nonlinearity ``max·sigmoid(x)^ln 10 + threshold``: a
    log-like response over a wide range, bounded above, with gradients at small values."""
    return max_value * tf.math.pow(tf.sigmoid(x), exponent) + threshold


def _interpolation_weights(steps_per_frame: int) -> np.ndarray:
    """``[3, r]`` weights of the previous frame, the frame itself and the next frame at each of
    a frame's r samples: linear between frame centres (sample j of a frame sits (j + ½)/r − ½
    frames from its centre)."""
    r = int(steps_per_frame)
    pos = (np.arange(r) + 0.5) / r - 0.5  # in (-0.5, 0.5)
    w_prev, w_next = np.maximum(-pos, 0.0), np.maximum(pos, 0.0)
    return np.stack([w_prev, 1.0 - w_prev - w_next, w_next])


def _neighbours(x: tf.Tensor, frame_mask: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
    """The previous and next frame of each frame of ``x`` ``[B, T, C]`` (the edges hold the
    first / last frame; with ``frame_mask`` ``[B, T, 1]`` the last valid frame holds too)."""
    prev = tf.concat([x[:, :1], x[:, :-1]], axis=1)
    nxt = tf.concat([x[:, 1:], x[:, -1:]], axis=1)
    if frame_mask is not None:
        m_next = tf.concat([frame_mask[:, 1:], tf.zeros_like(frame_mask[:, :1])], axis=1)
        nxt = nxt * m_next + x * (1.0 - m_next)
    return prev, nxt


def _mix(x: tf.Tensor, prev: tf.Tensor, nxt: tf.Tensor, weights: np.ndarray) -> tf.Tensor:
    """``Σ`` of the three ``[B, T, C]`` frames times their ``[3, r]`` weights: ``[B, T, r, C]``."""
    r = weights.shape[1]
    w = [tf.constant(np.reshape(v, [1, 1, r, 1]).astype(np.float32), x.dtype) for v in weights]
    return (tf.expand_dims(prev, 2) * w[0] + tf.expand_dims(x, 2) * w[1]
            + tf.expand_dims(nxt, 2) * w[2])


def frames_to_samples(x: tf.Tensor, steps_per_frame: int,
                      frame_mask: tf.Tensor | None = None) -> tf.Tensor:
    """Linear interpolation ``[B, T, C] -> [B, T, r, C]`` between frame centres (frame t covers
    samples ``[t·r, (t+1)·r)``, its centre at ``t·r + r/2``); the edges hold the first / last
    frame. With ``frame_mask`` ``[B, T, 1]`` the last valid frame holds too (masked padding
    never reaches valid samples)."""
    prev, nxt = _neighbours(x, frame_mask)
    return _mix(x, prev, nxt, _interpolation_weights(steps_per_frame))


def weighted_sines(amplitudes: tf.Tensor, sines: tf.Tensor,
                   frame_mask: tf.Tensor | None = None) -> tf.Tensor:
    """``Σ_k A_k(n)·sines_k(n)`` ``[B, T, r]``: per-frame ``amplitudes`` ``[B, T, H]``
    interpolated to samples as :func:`frames_to_samples` does, times ``sines``
    ``[B, T, r, H]``, summed over the harmonics. By linearity the sum is taken per neighbour
    frame first, one batched matmul ``[r, H] × [H, 3]`` per frame, and the three results are
    mixed with the interpolation weights, instead of forming the ``[B, T, r, H]`` amplitudes
    (five passes over the largest tensor of the synthesis: ~2× faster, same value up to
    float32 rounding of the sums' order)."""
    r = sines.shape[2]
    prev, nxt = _neighbours(amplitudes, frame_mask)
    per_frame = tf.linalg.matmul(sines, tf.stack([prev, amplitudes, nxt], axis=3))
    w = tf.constant(_interpolation_weights(r).T.astype(np.float32), per_frame.dtype)  # [r, 3]
    return tf.reduce_sum(per_frame * w, axis=3)


def harmonic_amplitudes(amplitude: tf.Tensor, distribution_logits: tf.Tensor, f0: tf.Tensor,
                        voiced: tf.Tensor, sample_rate: float) -> tf.Tensor:
    """Per-frame amplitudes ``[B, T, H]`` of harmonics k = 1..H: ``amplitude`` ``[B, T, 1]``
    times a softmax distribution over the harmonics below Nyquist at the frame's F0 (DDSP
    §B.5: ``remove_above_nyquist`` then normalise, at the frame rate), zero on unvoiced frames
    (``voiced`` 0/1 ``[B, T]``). This frame-rate mask only decides how the amplitude is shared
    out; what keeps every sample free of aliasing is :func:`harmonic_synth`'s mask on the
    per-sample frequency (DDSP's ``oscillator_bank``)."""
    h = distribution_logits.shape[-1]
    k = tf.range(1, h + 1, dtype=f0.dtype)
    audible = tf.cast(tf.expand_dims(f0, 2) * k < 0.5 * sample_rate, distribution_logits.dtype)
    weights = tf.exp(distribution_logits - tf.reduce_max(distribution_logits, axis=2,
                                                         keepdims=True)) * audible
    dist = weights / (tf.reduce_sum(weights, axis=2, keepdims=True) + 1e-7)
    return amplitude * dist * tf.expand_dims(tf.cast(voiced, dist.dtype), 2)


def frame_start_cycles(cycles: tf.Tensor, start_cycles: tf.Tensor | None = None) -> tf.Tensor:
    """``start_cycles`` ``[B]`` (0 if None) plus the exclusive running sum of ``cycles``
    ``[B, T]`` (≥ 0, cycles per frame), modulo 1: the phase at each frame's start, ``[B, T]``.

    Exact whatever the summation order, so every evaluation (one-shot, a chunk continuing from
    ``start_cycles``, another kernel) agrees up to the last additions: each value's fraction
    is split into parts on a 2^-10 and a 2^-20 grid and a remainder < 2^-20 whose running sums
    are exact in float32 below 2^14 frames (82 s at 200 Hz; the remainder's for values ≥ 2^-7
    cycles, F0 ≥ 1.6 Hz), each reduced modulo 1; only their sum (< 3 + start) rounds.
    """
    frac = cycles - tf.floor(cycles)
    coarse = tf.floor(frac * 1024.0) / 1024.0
    rest = frac - coarse  # exact, < 2^-10
    mid = tf.floor(rest * 1048576.0) / 1048576.0
    fine = rest - mid  # exact, < 2^-20
    parts = []
    for part in (coarse, mid):
        run = tf.math.cumsum(part, axis=1, exclusive=True)
        parts.append(run - tf.floor(run))
    out = parts[0] + parts[1] + tf.math.cumsum(fine, axis=1, exclusive=True)
    if start_cycles is not None:
        out += tf.expand_dims(tf.cast(start_cycles, out.dtype), 1)
    return out - tf.floor(out)


def harmonic_phase(f0: tf.Tensor, steps_per_frame: int, sample_rate: float,
                   frame_mask: tf.Tensor | None = None,
                   start_cycles: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The fundamental's frequency and phase at every sample, from F0 ``[B, T]`` in Hz per
    frame: (phase ``[B, T, r]`` in cycles, frequency ``[B, T, r]`` in Hz).

    The frequency is interpolated linearly between frame centres like the amplitudes
    (:func:`frames_to_samples`, the same ``frame_mask`` hold), and the phase is its running
    sum, φ(n) = start + Σ_{m<n} F0(m) / sample_rate (DDSP's ``oscillator_bank``: a cumulative
    sum of the per-sample frequency), so the instantaneous frequency of harmonic k, k·F0(n),
    is continuous: an F0 held per frame made it jump by k·ΔF0 at every frame edge (#25).

    Closed forms, no float32 accumulation: within a frame the running sum is a weighted sum of
    the three frames' F0 (weights' running sums in float64); frame t starts at
    P_t + W·(F0_t − F0_{t−1}) / sample_rate, with P_t = Σ_{u<t} F0_u / frame_rate
    (:func:`frame_start_cycles`, exact) and W the previous frame's total weight (F0_{−1} =
    F0_0: the sum of the interpolated frequency telescopes). ``start_cycles`` ``[B]`` is P at
    the first frame: a chunk that starts at frame c of an utterance continues it exactly with
    start_cycles = frac(Σ_{u<c} F0_u / frame_rate), F0 held per frame — the same state as the
    sine excitation's (:func:`tts_gan.excitation.excitation_phase`). The phase is
    < 2 + r·F0/sample_rate cycles and good to a few eps of that."""
    r = int(steps_per_frame)
    if frame_mask is not None:
        frame_mask = tf.cast(frame_mask, f0.dtype)
    x = tf.expand_dims(f0, 2)  # [B, T, 1]
    prev, nxt = _neighbours(x, frame_mask)
    weights = _interpolation_weights(r)
    freq = tf.squeeze(_mix(x, prev, nxt, weights), axis=3)  # [B, T, r] Hz
    # The phase within a frame, Σ_{m<j} F0(m)/rate, in closed form: F0 is a weighted sum of
    # the three frames' F0, so its running sum has the running sums of the weights (constants
    # computed in float64) as weights.
    before = np.cumsum(weights, axis=1) - weights  # exclusive running sums [3, r]
    within = tf.squeeze(_mix(x, prev, nxt, before / float(sample_rate)), axis=3)
    edge = float(np.sum(weights[0])) / float(sample_rate)  # = the next frame's total weight
    start = (frame_start_cycles(f0 / (float(sample_rate) / r), start_cycles)
             + edge * tf.squeeze(x - prev, axis=2))
    start -= tf.floor(start)
    return tf.expand_dims(start, 2) + within, freq


def harmonic_synth(amplitudes: tf.Tensor, f0: tf.Tensor, steps_per_frame: int,
                   sample_rate: float, frame_mask: tf.Tensor | None = None,
                   start_cycles: tf.Tensor | None = None) -> tf.Tensor:
    """``Σ_k A_k(n)·sin(2π·k·φ(n))`` over the harmonics with k·F0(n) < sample_rate / 2, as
    ``[B, T·r]`` (r = ``steps_per_frame``): ``amplitudes`` ``[B, T, H]`` per frame and F0
    ``[B, T]`` both interpolated linearly to samples, φ the phase of
    :func:`harmonic_phase`. The Nyquist mask is applied per sample, after the interpolation
    (DDSP's ``oscillator_bank``): a harmonic that crosses Nyquist between two frame centres
    is silent from the sample where it crosses, instead of sounding (aliased) until the
    amplitude interpolation reaches a frame that masked it."""
    shape = tf.shape(amplitudes)
    r = int(steps_per_frame)
    h = amplitudes.shape[-1]
    if frame_mask is not None:
        frame_mask = tf.cast(frame_mask, amplitudes.dtype)
    cycles, freq = harmonic_phase(f0, r, sample_rate, frame_mask, start_cycles)
    k = tf.range(1, h + 1, dtype=cycles.dtype)
    audible = tf.cast(tf.expand_dims(freq, 3) * k < 0.5 * float(sample_rate), cycles.dtype)
    sines = tf.sin(2.0 * math.pi * tf.expand_dims(cycles, 3) * k) * audible  # [B, T, r, H]
    out = weighted_sines(amplitudes, sines, frame_mask)
    return tf.reshape(out, [shape[0], shape[1] * r])


def harmonic_synth_held(amplitudes: tf.Tensor, f0: tf.Tensor, steps_per_frame: int,
                        sample_rate: float, frame_mask: tf.Tensor | None = None,
                        start_cycles: tf.Tensor | None = None) -> tf.Tensor:
    """The synthesis before #25 (``HarmonicNoiseSpec.phase="held"``): ``Σ_k A_k(n)·sin(2π·k·φ(n))``
    ``[B, T·r]`` with F0 ``[B, T]`` held over each frame, φ the sine excitation's phase (frame
    starts :func:`frame_start_cycles` of F0 / frame rate, then F0 / sample_rate per sample),
    amplitudes interpolated to samples; :func:`harmonic_amplitudes` silences the harmonics
    above Nyquist per frame."""
    shape = tf.shape(amplitudes)
    r = int(steps_per_frame)
    h = amplitudes.shape[-1]
    if frame_mask is not None:
        frame_mask = tf.cast(frame_mask, amplitudes.dtype)
    start = frame_start_cycles(f0 / (float(sample_rate) / r), start_cycles)
    steps = tf.range(r, dtype=f0.dtype)
    cycles = tf.expand_dims(start, 2) + tf.expand_dims(f0 / float(sample_rate), 2) * steps
    k = tf.range(1, h + 1, dtype=cycles.dtype)
    sines = tf.sin(2.0 * math.pi * tf.expand_dims(cycles, 3) * k)  # [B, T, r, H]
    out = weighted_sines(amplitudes, sines, frame_mask)
    return tf.reshape(out, [shape[0], shape[1] * r])


def _fir_matrix(bins: int) -> np.ndarray:
    """``[N, 2(N−1)]``: zero-phase magnitudes (N bins, 0 Hz to Nyquist) → the linear-phase
    FIR of :func:`noise_impulse_responses` (inverse real DFT, centred, periodic Hann)."""
    taps = 2 * (bins - 1)
    k = np.arange(bins)[:, None]
    m = np.arange(taps)[None, :]
    weight = np.where((k == 0) | (k == bins - 1), 1.0, 2.0) / taps
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(taps) / taps)
    return weight * np.cos(2 * np.pi * k * (m - (bins - 1)) / taps) * window


def _dft_matrices(length: int, fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts ``[length, fft/2 + 1]`` of the real DFT of size ``fft`` of a
    zero-padded ``length``-sample signal, as matrices."""
    phase = 2 * np.pi * np.arange(length)[:, None] * np.arange(fft // 2 + 1)[None, :] / fft
    return np.cos(phase), -np.sin(phase)


def _inverse_dft_matrices(fft: int) -> tuple[np.ndarray, np.ndarray]:
    """``[fft/2 + 1, fft]`` matrices taking a real signal's half spectrum (real, imaginary
    parts) back to its ``fft`` samples."""
    k = np.arange(fft // 2 + 1)[:, None]
    weight = np.where((k == 0) | (k == fft // 2), 1.0, 2.0) / fft
    phase = 2 * np.pi * k * np.arange(fft)[None, :] / fft
    return weight * np.cos(phase), -weight * np.sin(phase)


def _const(x: np.ndarray, dtype: tf.DType) -> tf.Tensor:
    return tf.constant(x.astype(np.float32), dtype)


def noise_impulse_responses(magnitudes: tf.Tensor) -> tf.Tensor:
    """Linear-phase FIR filters ``[B, T, 2(N−1)]`` from zero-phase magnitude responses
    ``[B, T, N]`` (N bins from 0 Hz to Nyquist): inverse real DFT, centred (delay N−1
    samples) and Hann windowed (DDSP ``frequency_impulse_response``)."""
    return tf.matmul(magnitudes, _const(_fir_matrix(magnitudes.shape[-1]), magnitudes.dtype))


def filtered_noise(magnitudes: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
    """Noise frames ``[B, T, r]`` each filtered by its frame's FIR (from ``magnitudes``
    ``[B, T, N]``) and overlap-added: ``[B, T·r]``, the filters' N−1-sample delay removed.

    The DFTs are constant matrices (MatMul only: the SavedModel, XLA and the TFLite export
    need no FFT or complex kernels); fast convolution by a 2^k-point DFT ≥ r + taps − 1.
    """
    shape = tf.shape(noise)
    r = noise.shape[-1]
    bins = magnitudes.shape[-1]
    taps = 2 * (bins - 1)
    fft = 1 << int(math.ceil(math.log2(r + taps - 1)))
    dt = noise.dtype
    n_re, n_im = (_const(m, dt) for m in _dft_matrices(r, fft))
    fir = _fir_matrix(bins)
    h_re, h_im = (_const(fir @ m, dt) for m in _dft_matrices(taps, fft))
    i_re, i_im = (_const(m, dt) for m in _inverse_dft_matrices(fft))
    x_re, x_im = tf.matmul(noise, n_re), tf.matmul(noise, n_im)
    f_re, f_im = tf.matmul(magnitudes, h_re), tf.matmul(magnitudes, h_im)
    frames = (tf.matmul(x_re * f_re - x_im * f_im, i_re)
              + tf.matmul(x_re * f_im + x_im * f_re, i_im))  # [B, T, fft]
    out = tf.signal.overlap_and_add(frames, r)  # [B, (T − 1)·r + fft]
    return out[:, bins - 1:bins - 1 + shape[1] * r]


NOISE_TABLE_LENGTH = 1 << 17  # 5.5 s at 24 kHz
NOISE_TABLE_SEED = 20200220  # fixed: the table is part of the model, like a weight


def noise_table() -> np.ndarray:
    """The fixed uniform white-noise table ``[NOISE_TABLE_LENGTH]`` in [−1, 1) that
    :func:`noise_from_z` reads (NumPy's PCG64 with a fixed seed, so exports and training agree)."""
    rng = np.random.default_rng(NOISE_TABLE_SEED)
    return rng.uniform(-1.0, 1.0, NOISE_TABLE_LENGTH).astype(np.float32)


def noise_from_z(z: tf.Tensor, frames: tf.Tensor, steps_per_frame: int,
                 table: tf.Tensor, start: tf.Tensor | None = None) -> tf.Tensor:
    """Per-example white noise ``[B, frames, r]``: the noise table read from an offset that
    each example's latent z picks. Deterministic given z (a seed's audio is reproducible and
    independent of what else is in the batch), fresh for every random z in training.
    ``start`` ``[B]`` (int32 samples) continues a read: a chunk from frame c of an utterance
    reads on from sample r·c, as the utterance's one-shot read does."""
    z0 = tf.abs(tf.cast(tf.gather(z, [0], axis=1), tf.float32))  # [B, 1]
    length = int(table.shape[0])
    offset = tf.cast(tf.floor((z0 * 4096.0 - tf.floor(z0 * 4096.0)) * length), tf.int32)
    if start is not None:  # modulo first: offset + start stays far from int32 overflow
        offset += tf.expand_dims(tf.math.floormod(tf.cast(start, tf.int32), length), 1)
    n = tf.range(frames * steps_per_frame, dtype=tf.int32)
    idx = tf.math.floormod(offset + tf.expand_dims(n, 0), length)
    return tf.reshape(tf.gather(table, idx), [tf.shape(z)[0], frames, steps_per_frame])


def synthesize(controls: tf.Tensor, f0: tf.Tensor, voiced: tf.Tensor, spec: HarmonicNoiseSpec,
               sample_rate: float, noise: tf.Tensor, frame_mask: tf.Tensor | None = None,
               start_cycles: tf.Tensor | None = None) -> tf.Tensor:
    """Harmonic + filtered-noise waveform ``[B, T·r]`` from the head's raw ``controls``
    ``[B, T, spec.controls]``, F0 ``[B, T]`` in Hz and voicing ``[B, T]`` per frame, and white
    ``noise`` ``[B, T, r]``; masked frames (``frame_mask``) get zero harmonic amplitudes and
    zero noise magnitudes. ``start_cycles`` ``[B]`` continues the sines' phase."""
    controls = tf.cast(controls, tf.float32)
    f0 = tf.cast(f0, tf.float32)
    amp_logit, dist_logits, noise_logits = tf.split(
        controls, [1, spec.harmonics, spec.noise_bands], axis=2)
    amps = harmonic_amplitudes(exp_sigmoid(amp_logit), dist_logits, f0, voiced, sample_rate)
    if frame_mask is not None:
        amps = amps * tf.cast(frame_mask, amps.dtype)
    if spec.phase not in ("interpolated", "held"):
        raise ValueError(f"harmonic_noise.phase={spec.phase!r}: expected 'interpolated' or "
                         "'held'")
    synth = harmonic_synth if spec.phase == "interpolated" else harmonic_synth_held
    harmonic = synth(amps, f0, noise.shape[-1], sample_rate, frame_mask, start_cycles)
    mags = exp_sigmoid(noise_logits + spec.noise_bias)
    if frame_mask is not None:
        mags = mags * tf.cast(frame_mask, mags.dtype)
    return harmonic + filtered_noise(mags, tf.cast(noise, tf.float32))


def remove_dc(x: tf.Tensor, steps_per_frame: int, frames: int,
              frame_mask: tf.Tensor | None = None) -> tf.Tensor:
    """``x`` ``[B, T·r, 1]`` minus its slow trend: per-frame means, smoothed by a triangular
    window of ``frames`` (odd) centred frames and interpolated back to samples
    (:func:`frames_to_samples`). For r = 120, frames = 9 (45 ms): 0 Hz removed, ≥ 100 Hz
    passed within 3 % (``tests/harmonic_noise_test.py``). Masked frames count neither in the
    means nor in the smoothing."""
    if frames < 1 or frames % 2 != 1:
        raise ValueError(f"remove_dc: frames={frames}, expected an odd number")
    shape = tf.shape(x)
    r = int(steps_per_frame)
    means = tf.reduce_mean(tf.reshape(x, [shape[0], shape[1] // r, r]), axis=2,
                           keepdims=True)  # [B, T, 1]
    mask = (tf.ones_like(means) if frame_mask is None
            else tf.cast(frame_mask, means.dtype))
    half = (frames + 1) // 2
    tri = np.concatenate([np.arange(1, half + 1), np.arange(half - 1, 0, -1)])
    window = tf.constant(tri.reshape(frames, 1, 1), means.dtype)
    total = tf.nn.conv1d(means * mask, window, stride=1, padding="SAME")
    weight = tf.nn.conv1d(mask, window, stride=1, padding="SAME")
    trend = total / tf.maximum(weight, 1.0)
    trend = frames_to_samples(trend, r, frame_mask)  # [B, T, r, 1]
    return x - tf.reshape(trend, tf.shape(x))

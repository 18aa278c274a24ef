"""Tests of tts_gan.losses against references written from the published definitions:
librosa's centred STFT (``librosa.stft(center=True)``, zero-padded; PWG's ``torch.stft`` and
HiFi-GAN pad as well), PWG's spectral convergence as one Frobenius-norm ratio over the whole
batch tensor, HiFi-GAN's log-mel L1, Gritsenko et al.'s GED — not from the implementation's
own choices (#25)."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from float32_bounds import exceeds, relative_difference, rounding, within, worst_rounding
from ml_collections import ConfigDict

from experiments import common
from tts_gan import losses

SR = 24000
POWER_FLOOR = 1e-12  # |STFT| = √(|X|² + 1e-12) (losses._POWER_EPS: a finite gradient at 0)


def _signals(n: int = 2, length: int = 4800, seed: int = 0) -> np.ndarray:
    """Harmonic tones with noise and a silent stretch (the corpus has digital silence)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SR
    x = np.stack([0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t)
                  + 0.05 * rng.standard_normal(length) for _ in range(n)])
    x[:, length // 3: length // 2] = 0.0
    return x.astype(np.float32)


def _ref_mag(x: np.ndarray, fft: int, hop: int, win: int) -> np.ndarray:
    """|STFT| ``[B, frames, bins]`` by librosa's definition, ``librosa.stft(center=True)``
    with its default zero padding: frames centred on sample t·hop of the signal padded by fft/2
    zeros, periodic Hann window of ``win`` centred in ``fft``."""
    s = librosa.stft(np.asarray(x, np.float64), n_fft=fft, hop_length=hop, win_length=win,
                     window="hann", center=True, pad_mode="constant")
    return np.abs(s).swapaxes(-1, -2)


def _ref_log_l1_bound(ref: list[np.ndarray], fft: int, floor: float) -> float:
    """Bound on a float32 mean |log m_tf − log m_ref| over bins: a magnitude m computed in
    float32 is off by ≤ ε = rounding(fft, 2)·(its frame's largest magnitude) (DFT sum of fft
    terms, then the modulus), so its log by ≤ ε / max(m, floor); averaged over the bins."""
    total = 0.0
    for m in ref:
        eps_abs = rounding(fft, 2) * m.max(axis=-1, keepdims=True)
        total += float(np.mean(np.minimum(eps_abs / np.maximum(m, floor), 1.0)))
    return total


def _ref_sc(real: np.ndarray, fake: np.ndarray, resolutions) -> float:
    """PWG's ``SpectralConvergenceLoss``, ``torch.norm(y_mag − x_mag, p="fro") /
    torch.norm(y_mag, p="fro")`` over the whole ``[B, frames, bins]`` batch tensor, averaged
    over the resolutions (``MultiResolutionSTFTLoss``)."""
    out = []
    for fft, hop, win in resolutions:
        y, x = _ref_mag(real, fft, hop, win), _ref_mag(fake, fft, hop, win)
        out.append(np.linalg.norm(y - x) / np.linalg.norm(y))
    return float(np.mean(out))


def _sc_batch(length: int = 2880, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Four windows of a global batch; the third real window is digital silence and its fake
    is −60 dBFS noise (the case where a mean of per-example ratios is ~10⁴)."""
    real, fake = _signals(4, length, seed), _signals(4, length, seed + 1)
    real[2] = 0.0
    fake[2] = 1e-3 * np.random.default_rng(seed).standard_normal(length).astype(np.float32)
    return real, fake


@pytest.mark.parametrize("fft,hop,win", [*losses.PWG_RESOLUTIONS, (64, 32, 64)])
def test_stft_magnitude_is_librosas_centred_stft(fft, hop, win):
    """Frames centred on t·hop over the zero-padded signal (1 + N // hop of them), the shorter
    window centred in the FFT frame. Bound: a DFT of fft terms and a modulus, relative to the
    largest magnitude (float32_bounds.rounding). Controls: unpadded frames (the old framing)
    are other frames; reflect instead of zero padding changes the edge frames far beyond the
    bound."""
    x = _signals()
    got = losses.stft_magnitude(tf.constant(x), fft, hop, win).numpy()
    want = _ref_mag(x, fft, hop, win)
    assert got.shape == want.shape == (2, 1 + x.shape[1] // hop, fft // 2 + 1)
    bound = rounding(fft, 2)
    within("|STFT| vs librosa", relative_difference(got, want), bound)
    unpadded = losses.stft_magnitude(tf.constant(x), fft, hop, win, center=False).numpy()
    assert unpadded.shape[1] == 1 + (x.shape[1] - fft) // hop != want.shape[1]
    reflect = np.abs(librosa.stft(x.astype(np.float64), n_fft=fft, hop_length=hop,
                                  win_length=win, center=True, pad_mode="reflect"))
    exceeds("reflect padding", relative_difference(reflect.swapaxes(-1, -2), want), bound)


def test_multi_resolution_stft_loss_is_pwgs_definition():
    """PWG Eq. 4–6 from the published definitions: spectral convergence one Frobenius ratio
    over the batch tensor (every entry of the returned vector is that ratio, so its mean is),
    the log-magnitude L1 the mean over the batch (per example here). A silent real window
    against a −60 dBFS fake is in the batch: the old mean of per-example ratios (control) is
    dominated by it."""
    real, fake = _sc_batch(length=4800)
    sc, mag = losses.multi_resolution_stft_loss(tf.constant(real), tf.constant(fake),
                                                floor=1e-5)
    sc, mag = sc.numpy(), mag.numpy()
    want_sc = _ref_sc(real, fake, losses.PWG_RESOLUTIONS)
    widest = max(4 * (1 + 4800 // hop) * (fft // 2 + 1) for fft, hop, _ in losses.PWG_RESOLUTIONS)
    # N and D: sums of B·frames·bins squares of magnitudes off by rounding(fft, 2) each
    bound = rounding(widest, 2) + 2 * rounding(2048, 2)
    within("spectral convergence vs PWG", relative_difference(sc, np.full(4, want_sc)), bound)
    per_example = np.mean([  # the old definition (magnitudes floored at √1e-12, as in TF)
        np.linalg.norm(_ref_mag(real, *r) - _ref_mag(fake, *r), axis=(1, 2))
        / np.linalg.norm(np.sqrt(_ref_mag(real, *r) ** 2 + 1e-12), axis=(1, 2))
        for r in losses.PWG_RESOLUTIONS], axis=0)
    assert per_example[2] > 1e3  # the silent window's own ratio
    exceeds("mean of per-example ratios", relative_difference(per_example.mean(), want_sc), bound)
    want_mag, mag_bound = 0.0, 0.0
    for fft, hop, win in losses.PWG_RESOLUTIONS:
        r, f = _ref_mag(real, fft, hop, win), _ref_mag(fake, fft, hop, win)
        lr, lf = np.log(np.maximum(r, 1e-5)), np.log(np.maximum(f, 1e-5))
        want_mag = want_mag + np.mean(np.abs(lr - lf), axis=(1, 2)) / 3
        mag_bound = max(mag_bound, _ref_log_l1_bound([r, f], fft, 1e-5))
    within("log |STFT| L1 vs PWG", float(np.abs(mag - want_mag).max()), mag_bound)
    # a signal against itself: 0, with a finite gradient (√N at N = 0)
    x = tf.constant(real)
    with tf.GradientTape() as tape:
        tape.watch(x)
        sc0, mag0 = losses.multi_resolution_stft_loss(tf.constant(real), x)
        total = tf.reduce_sum(sc0) + tf.reduce_sum(mag0)
    grad = tape.gradient(total, x).numpy()
    assert np.all(sc0.numpy() == 0) and np.all(mag0.numpy() == 0)
    assert np.all(np.isfinite(grad))


def test_log_mel_l1_matches_librosa():
    """HiFi-GAN's mel loss on librosa's centred mel spectrogram (power 1, Slaney
    filterbank)."""
    real, fake = _signals(seed=3), _signals(seed=4)
    kw = dict(sample_rate=SR, fft_size=1024, hop=120, win_length=1024, num_mels=80,
              floor=1e-5, fmin=0.0, fmax=12000.0)
    got = losses.log_mel_l1(tf.constant(real), tf.constant(fake), **kw).numpy()

    def ref(x):
        return librosa.feature.melspectrogram(
            y=x.astype(np.float64), sr=SR, n_fft=1024, hop_length=120, win_length=1024,
            window="hann", center=True, pad_mode="constant", power=1.0, n_mels=80, fmin=0.0,
            fmax=12000.0).swapaxes(-1, -2)  # [B, frames, mels]

    mr, mf = ref(real), ref(fake)
    want = np.mean(np.abs(np.log(np.maximum(mr, 1e-5)) - np.log(np.maximum(mf, 1e-5))),
                   axis=(1, 2))
    # the mel sum adds ≤ 513 more terms to each magnitude's rounding
    within("log-mel L1 vs librosa", float(np.abs(got - want).max()),
           _ref_log_l1_bound([mr, mf], 1024 + 513, 1e-5))
    unpadded = losses.log_mel_spectrogram(tf.constant(real), center=False, **kw)
    assert unpadded.shape[1] == 1 + (4800 - 1024) // 120 != mr.shape[1]


# Terms whose gradient reaches every sample of the window: (name, AuxLosses settings).
_TERMS = {"stft_sc": dict(stft_weight=1.0), "stft_mag": dict(stft_weight=1.0),
          "mel": dict(mel_weight=1.0), "ged": dict(ged_weight=1.0)}


def _per_sample_gradient_rms(term: str, real: np.ndarray, fake: np.ndarray,
                             fake2: np.ndarray) -> np.ndarray:
    """RMS over the K examples of d term / d fake[k, n]: ``[N]``."""
    aux = losses.AuxLosses(**_TERMS[term])
    x = tf.constant(fake)
    with tf.GradientTape() as tape:
        tape.watch(x)
        _, per_example = aux.spectral_terms(tf.constant(real), x, tf.constant(fake2))[term]
        loss = tf.reduce_sum(per_example) / len(real)
    g = tape.gradient(loss, x).numpy().astype(np.float64)
    return np.sqrt(np.mean(g ** 2, axis=0))


@pytest.mark.parametrize("term", sorted(_TERMS))
def test_every_sample_of_the_window_gets_gradient(term, monkeypatch):
    """d loss / d fake at every sample of a 2,880-sample training window (the micro config's),
    RMS over K = 32 random windows, against its median over the window. Centred frames put
    sample 0 at the centre of frame 0 and every sample within one hop of a frame centre
    (PWG's hop = win/5: Hann weight ≥ cos²(π/5) = 0.65; the mel term's hop = win/8; GED's hop
    = win/2 at each of six window sizes), so no sample's window coverage is far below an
    interior sample's; the RMS of K = 32 draws scatters by ±1/√(2K) = 12.5 % (4σ: ×0.5): every
    sample ≥ 1/4 of the median (measured weakest: 0.46–0.61). Control: the old unpadded
    framing, where the first (fft − win)/2 samples are in the zero part of the first window
    and the samples after the last whole frame in no frame: exact zeros."""
    k, n = 32, 2880
    rng = np.random.default_rng(12)
    real, fake, fake2 = (0.1 * rng.standard_normal((k, n)).astype(np.float32)
                         for _ in range(3))
    rms = _per_sample_gradient_rms(term, real, fake, fake2)
    median = float(np.median(rms))
    assert median > 0
    weakest = float(rms.min() / median)
    assert weakest >= 0.25, (term, weakest, int(rms.argmin()))
    stft = losses.stft_magnitude
    monkeypatch.setattr(losses, "stft_magnitude",
                        lambda a, f, h, w, center=True: stft(a, f, h, w, center=False))
    old = _per_sample_gradient_rms(term, real, fake, fake2)
    assert old.min() / np.median(old) < 1e-3, (term, old.min() / np.median(old))


def _sc_value_and_gradients(strategy: tf.distribute.Strategy, real: np.ndarray,
                            fake: np.ndarray) -> tuple[float, np.ndarray, float]:
    """The train step's convention on ``strategy``: per replica Σ_b sc_b / B of its slice of
    the global batch (B examples), gradients w.r.t. its fake windows and a shared gain on the
    fake (a stand-in for G's weights), then summed over replicas. Returns (value, d/d fake
    ``[B, N]`` in global order, d/d gain)."""
    b, n = len(real), strategy.num_replicas_in_sync
    with strategy.scope():
        gain = tf.Variable(1.0)

    def split(ctx):
        r = ctx.replica_id_in_sync_group
        return {"real": tf.constant(real[r * b // n:(r + 1) * b // n]),
                "fake": tf.constant(fake[r * b // n:(r + 1) * b // n])}

    batch = strategy.experimental_distribute_values_from_function(split)

    @tf.function
    def step(x):
        f = x["fake"]
        with tf.GradientTape() as tape:
            tape.watch(f)
            sc, _ = losses.multi_resolution_stft_loss(x["real"], f * gain)
            loss = tf.reduce_sum(sc) / b
        g_fake, g_gain = tape.gradient(loss, [f, gain])
        return loss, g_fake, g_gain

    loss, g_fake, g_gain = strategy.run(step, args=(batch,))
    red = tf.distribute.ReduceOp.SUM
    return (float(strategy.reduce(red, loss, axis=None)),
            np.concatenate([g.numpy() for g in strategy.experimental_local_results(g_fake)]),
            float(strategy.reduce(red, g_gain, axis=None)))


def _ref_sc_gradient(real: np.ndarray, fake: np.ndarray, resolutions
                     ) -> tuple[np.ndarray, np.ndarray]:
    """d R / d fake ``[B, N]`` of :func:`_ref_sc` in float64, by the chain rule through its
    definition (NumPy FFTs), and a bound ``[B, N]`` on what float32 may make of it.

    R = mean_res √(N/D), N = Σ(|Y| − |X|)², D = Σ|Y|²: dR/d|X_k| = −(|Y_k| − |X_k|)/√(N·D);
    d|X_k|/d frame[n] = Re(conj(X_k)·e^{−2πikn/F})/|X_k| (so Re of an inverse DFT of
    the half spectrum), times the window, overlap-added over the frames (the zero padding
    holds no samples). The magnitude is √(|X|² + 1e-12) (the floor
    ``losses`` documents, which keeps the gradient finite at |X| = 0; PWG clamps |X|² at 1e-7),
    so its direction factor is X/√(|X|² + 1e-12). Where |X_k| is within the DFT's float32
    rounding ρ = rounding(F, 2)·(the frame's largest |X|) of 0, that direction is not
    determined in float32 (uncertain by u = min(2, ρ/√(|X|² + 1e-12))), so a sample's gradient
    is uncertain by Σ_frames w·Σ_k |dR/d|X_k||·u: the returned bound (|X| has a kink at 0,
    which the floor rounds off; the DC and Nyquist bins are real and do cross 0)."""
    b, n = fake.shape
    grad, unc = np.zeros((b, n)), np.zeros((b, n))
    for fft, hop, win in resolutions:
        w = np.zeros(fft)
        w[(fft - win) // 2:(fft - win) // 2 + win] = scipy.signal.get_window("hann", win)
        pad = [(0, 0), (fft // 2, fft // 2)]
        frames_y = np.lib.stride_tricks.sliding_window_view(
            np.pad(real.astype(np.float64), pad), fft, axis=-1)[:, ::hop]
        frames_x = np.lib.stride_tricks.sliding_window_view(
            np.pad(fake.astype(np.float64), pad), fft, axis=-1)[:, ::hop]
        ys, xs = np.fft.rfft(frames_y * w), np.fft.rfft(frames_x * w)
        my, mx = np.abs(ys), np.abs(xs)
        num, den = np.sum((my - mx) ** 2), np.sum(my ** 2)
        g_mag = -(my - mx) / np.sqrt(num * den) / len(resolutions)  # [B, T, K]
        direction = xs / np.sqrt(mx ** 2 + POWER_FLOOR)
        half = np.zeros(xs.shape[:-1] + (fft,), complex)
        half[..., :fft // 2 + 1] = np.conj(g_mag * np.conj(direction))
        g_frames = fft * np.real(np.fft.ifft(half, axis=-1)) * w  # d R / d frame samples
        rho = rounding(fft, 2) * mx.max(axis=-1, keepdims=True)
        u = np.minimum(2.0, rho / np.sqrt(mx ** 2 + POWER_FLOOR))
        u_frames = np.sum(np.abs(g_mag) * u, axis=-1, keepdims=True) * w  # [B, T, F]
        for t in range(g_frames.shape[1]):  # overlap-add; the zero padding has no samples
            lo, hi = t * hop - fft // 2, t * hop - fft // 2 + fft
            keep = slice(max(0, -lo), fft - max(0, hi - n))
            grad[:, max(lo, 0):min(hi, n)] += g_frames[:, t, keep]
            unc[:, max(lo, 0):min(hi, n)] += u_frames[:, t, keep]
    return grad, unc


def test_spectral_convergence_is_one_ratio_over_the_global_batch(mirrored_cpu_strategy,
                                                                  monkeypatch):
    """1 replica × 4 and 2 replicas × 2 (MirroredStrategy on two logical CPUs) give PWG's
    global ratio and its gradient, against NumPy: the value from librosa's magnitudes, d/d fake
    at every sample of every window by the chain rule (:func:`_ref_sc_gradient`), and d/d a
    gain shared by the replicas (summed over them, as the train step all-reduces G's
    gradients). One real window is digital silence against a −60 dBFS fake.

    Bounds: the value as in test_multi_resolution_stft_loss_is_pwgs_definition; a gradient
    sample sums ≤ ⌈fft/hop⌉·fft terms (inverse DFT over the frames that hold it) through 4
    roundings (DFT, modulus, norms, inverse DFT), relative to the largest gradient sample,
    plus the reference's per-sample bound for bins near 0; the gain's gradient Σ_n g_n·x_n
    sums B·N samples' terms from ⌈fft/hop⌉ frames each (relative to Σ|g_n·x_n|; bins near 0
    do not enter it: d|X_k|/d gain = |X_k| whatever X_k's direction).
    Control: the sums not all-reduced (each replica's own ratio): value and gradients off by
    far more than the bounds."""
    real, fake = _sc_batch()
    res = losses.PWG_RESOLUTIONS
    want = _ref_sc(real, fake, res)
    want_g, unc = _ref_sc_gradient(real, fake, res)
    want_gain = float(np.sum(want_g * fake))
    widest = max(4 * (1 + 2880 // hop) * (fft // 2 + 1) for fft, hop, _ in res)
    value_bound = rounding(widest, 2) + 2 * rounding(2048, 2)
    sample_bound = rounding(math.ceil(2048 / 240) * 2048, 4) * np.abs(want_g).max() + unc

    def gradient_error(g: np.ndarray) -> float:  # worst |Δg| / its bound, over all samples
        return float(np.max(np.abs(g - want_g) / sample_bound))

    gain_bound = (rounding(4 * 2880 * math.ceil(2048 / 240), 4)
                  * np.sum(np.abs(want_g * fake)) / abs(want_gain))
    results = {}
    for name, strategy in (("default", tf.distribute.get_strategy()),
                           ("mirrored", mirrored_cpu_strategy)):
        value, g_fake, g_gain = _sc_value_and_gradients(strategy, real, fake)
        within(f"{name}: value", relative_difference(value, want), value_bound)
        within(f"{name}: d/d fake (in units of its bound)", gradient_error(g_fake), 1.0)
        within(f"{name}: d/d shared gain", relative_difference(g_gain, want_gain), gain_bound)
        assert np.all(g_fake[:, 0] != 0) and np.all(g_fake[:, -1] != 0)
        results[name] = value
    within("mirrored vs default value",
           relative_difference(results["mirrored"], results["default"]), value_bound)
    monkeypatch.setattr(losses, "_sum_over_replicas", tf.stop_gradient)
    value, g_fake, g_gain = _sc_value_and_gradients(mirrored_cpu_strategy, real, fake)
    exceeds("replica-local ratios: value", relative_difference(value, want), value_bound)
    exceeds("replica-local ratios: d/d fake (in units of its bound)", gradient_error(g_fake),
            1.0)
    exceeds("replica-local ratios: d/d gain", relative_difference(g_gain, want_gain),
            gain_bound)


def _mag_error(m: np.ndarray, fft: int, floor_included: bool = False) -> np.ndarray:
    """Bound on |float32 |STFT| − reference| per bin, from the reference magnitudes ``m``
    ``[..., frames, bins]``: the DFT of ``fft`` terms and the modulus relative to the frame's
    largest magnitude (:func:`rounding`), plus, unless the reference includes it, the floor
    ``losses`` puts under the modulus, √(m² + 1e-12) − m (≤ 1e-6, at m = 0)."""
    err = rounding(fft, 2) * m.max(axis=-1, keepdims=True)
    return err if floor_included else err + np.sqrt(m ** 2 + POWER_FLOOR) - m


def test_frame_log_mel_has_one_frame_per_feature_frame_centred_on_it():
    """Frame t of :func:`losses.frame_log_mel` is centred on sample 120·t + 60 (the middle of
    feature frame t): librosa's centred frames of the signal without its first 60 samples
    (zero padding; the test signal starts with 60 zeros so both see the same samples).
    Bound per mel bin: the magnitudes' error (:func:`_mag_error`) through the filterbank
    (weights fb ≥ 0: Σ_k fb_mk·e_k) plus its sum of 513 terms, over max(mel, floor) for the log.
    Control: the frames shifted by half a frame (60 samples), what librosa's own centring of
    the unshifted signal gives."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 20 * 120)).astype(np.float32) * 0.1
    x[:, :60] = 0.0
    got = losses.frame_log_mel(tf.constant(x), 120, SR, 1024, 1024, 80, 1e-5, 0.0,
                               12000.0).numpy()
    assert got.shape == (2, 20, 80)
    fb = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80, fmin=0.0, fmax=12000.0)

    def ref(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log mel ``[B, T, mels]``, its bound): librosa.feature.melspectrogram(power=1)."""
        mag = np.abs(librosa.stft(y.astype(np.float64), n_fft=1024, hop_length=120,
                                  win_length=1024, window="hann", center=True,
                                  pad_mode="constant")).swapaxes(-1, -2)  # [B, T, bins]
        mel = mag @ fb.T
        err = _mag_error(mag, 1024) @ fb.T + rounding(513, 1) * mel
        return np.log(np.maximum(mel, 1e-5)), err / np.maximum(mel, 1e-5)

    want, bound = ref(x[:, 60:])
    mel = librosa.feature.melspectrogram(
        y=x[:, 60:].astype(np.float64), sr=SR, n_fft=1024, hop_length=120, win_length=1024,
        window="hann", center=True, pad_mode="constant", power=1.0, n_mels=80, fmin=0.0,
        fmax=12000.0)  # the filterbank product above is librosa's melspectrogram
    np.testing.assert_allclose(want, np.log(np.maximum(mel, 1e-5)).swapaxes(-1, -2),
                               rtol=1e-12)
    within("frame log-mel vs librosa (in units of the bound)",
           float(np.max(np.abs(got - want) / bound)), 1.0)
    shifted = ref(x)[0][:, :20]  # librosa's 21 frames centred on 120·t
    exceeds("frames half a frame off (in units of the bound)",
            float(np.max(np.abs(got - shifted) / bound)), 1.0)
    stem = rng.normal(size=got.shape).astype(np.float32)
    aux = losses.AuxLosses(stem_mel_weight=1.0, mel_bins=80, mel_fft_size=1024,
                           mel_win_length=1024)
    term = aux.stem_mel_term(tf.constant(x), tf.constant(stem), 120).numpy()
    # |a − stem| is 1-Lipschitz in a: the mean moves by ≤ the mean bound, plus its own sum's
    # rounding; control: the stem against the frames half a frame off
    want_term = np.mean(np.abs(want - stem), axis=(1, 2))
    term_bound = np.mean(bound, axis=(1, 2)) + rounding(20 * 80, 1) * want_term
    within("stem mel term vs NumPy (in units of the bound)",
           float(np.max(np.abs(term - want_term) / term_bound)), 1.0)
    exceeds("stem mel term, frames half a frame off (in units of the bound)",
            float(np.max(np.abs(term - np.mean(np.abs(shifted - stem), axis=(1, 2)))
                         / term_bound)), 1.0)


def _np_spectral_distance(a, b, windows, floor, log_rms: bool = True):
    """Gritsenko et al. 2020, Eq. 8 as their released code computes it (``spectral_ops.
    sum_spectral_dist``): per window, mean_{t,f} |s_a − s_b| + mean_t √(mean_f (log(s_a + ε) −
    log(s_b + ε))² + ε), here on librosa's centred magnitude spectrograms (hop w/2) with
    ε = ``floor``, each magnitude √(|X|² + 1e-12) (the released code's √(|X|² + ε) guard
    with ``losses``' constant). ``log_rms=False``: the log term as a mean |·| (L1), for the
    control.
    Returns (distance ``[B]``, bound on a float32 evaluation's error ``[B]``): the magnitudes'
    error e (:func:`_mag_error`) moves the L1 mean by ≤ mean(e_a + e_b) and each log by
    ≤ e/(s + ε); √(mean a² + ε) is 1-Lipschitz in the RMS of a's change."""
    total, err = 0.0, 0.0
    for w in windows:
        x, y = (np.sqrt(_ref_mag(v, w, w // 2, w) ** 2 + POWER_FLOOR) for v in (a, b))
        ex, ey = _mag_error(x, w, True), _mag_error(y, w, True)
        l1 = np.mean(np.abs(x - y), axis=(1, 2))
        ld = np.log(x + floor) - np.log(y + floor)
        log_term = (np.sqrt(np.mean(ld ** 2, axis=-1) + floor) if log_rms
                    else np.mean(np.abs(ld), axis=-1))
        total = total + l1 + np.mean(log_term, axis=-1)
        e_log = ex / (x + floor) + ey / (y + floor)
        err = (err + np.mean(ex + ey, axis=(1, 2))
               + np.mean(np.sqrt(np.mean(e_log ** 2, axis=-1)), axis=-1))
    return total, err


def test_ged_matches_numpy_and_is_symmetric_in_the_two_samples():
    """GED against :func:`_np_spectral_distance` three times, within the sum of the three
    distances' bounds (the repulsive term's subtraction cancels values, not errors) plus the
    final sums' rounding relative to the distances. Control: the log term as an L1 mean
    instead of the RMS over frequency. Swapping the two samples only reorders a commutative
    addition and negates differences that are squared or taken |·|: bit for bit."""
    real, f1, f2 = _signals(seed=5), _signals(seed=6), _signals(seed=7)
    w = (64, 256, 1024)
    got = losses.ged_loss(tf.constant(real), tf.constant(f1), tf.constant(f2), w).numpy()
    (d1, e1), (d2, e2), (d12, e12) = (_np_spectral_distance(p, q, w, 1e-5)
                                      for p, q in ((real, f1), (real, f2), (f1, f2)))
    want = d1 + d2 - d12
    bound = e1 + e2 + e12 + worst_rounding(2 * len(w) + 2, 1) * (d1 + d2 + d12)
    within("GED vs NumPy (in units of the bound)", float(np.max(np.abs(got - want) / bound)),
           1.0)
    l1_log = [_np_spectral_distance(p, q, w, 1e-5, log_rms=False)[0]
              for p, q in ((real, f1), (real, f2), (f1, f2))]
    exceeds("log term as L1 (in units of the bound)",
            float(np.max(np.abs(got - (l1_log[0] + l1_log[1] - l1_log[2])) / bound)), 1.0)
    swapped = losses.ged_loss(tf.constant(real), tf.constant(f2), tf.constant(f1), w).numpy()
    np.testing.assert_array_equal(got, swapped)


def test_ged_estimates_an_energy_distance():
    """Defining property (Gritsenko et al. 2020, Eq. 6): E[d(x,y)+d(x,y')-d(y,y')] - E[d(x,x')]
    is 2E d(X,Y) - E d(Y,Y') - E d(X,X') >= 0, ~0 iff the generator's distribution equals the
    data's. Data: noise through a random resonance; 'generators': the same process, and one
    with the resonance moved (a wrong formant)."""
    rng = np.random.default_rng(0)

    def draw(n, centre):
        x = rng.standard_normal((n, 4800))
        b, a = scipy.signal.iirpeak(centre, 5.0, fs=SR)
        return (0.1 * scipy.signal.lfilter(b, a, x, axis=-1)).astype(np.float32)

    n = 64
    windows = (128, 512)

    def energy_distance(centre_fake):
        x, x2 = draw(n, 1000.0), draw(n, 1000.0)
        y, y2 = draw(n, centre_fake), draw(n, centre_fake)
        loss = losses.ged_loss(tf.constant(x), tf.constant(y), tf.constant(y2), windows).numpy()
        dxx = losses.spectral_distance(
            [losses.stft_magnitude(tf.constant(v), w, w // 2, w) for w in windows for v in [x]],
            [losses.stft_magnitude(tf.constant(v), w, w // 2, w) for w in windows for v in [x2]]
        ).numpy()
        diff = loss - dxx
        return diff.mean(), diff.std() / np.sqrt(n)

    same, same_se = energy_distance(1000.0)
    other, other_se = energy_distance(3000.0)
    assert abs(same) < 4 * same_se + 1e-3, (same, same_se)
    assert other > 10 * max(other_se, abs(same)), (other, other_se, same)


def test_feature_matching_matches_numpy():
    rng = np.random.default_rng(0)
    real = [rng.standard_normal((3, 10, 4)), rng.standard_normal((3, 5, 8))]
    fake = [rng.standard_normal((3, 10, 4)), rng.standard_normal((3, 5, 8))]
    got = losses.feature_matching([tf.constant(r) for r in real],
                                  [tf.constant(f) for f in fake]).numpy()
    want = sum(np.mean(np.abs(r - f), axis=(1, 2)) for r, f in zip(real, fake, strict=True))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_aux_terms_compile_with_xla_and_agree():
    real, fake, fake2 = (tf.constant(_signals(seed=s)) for s in (8, 9, 10))
    aux = losses.AuxLosses(stft_weight=1.0, mel_weight=45.0, ged_weight=1.0)

    def terms(r, f, f2):
        return {k: v for k, (_, v) in aux.spectral_terms(r, f, f2).items()}

    eager = terms(real, fake, fake2)
    xla = tf.function(terms, jit_compile=True)(real, fake, fake2)
    assert set(eager) == {"stft_sc", "stft_mag", "mel", "ged"}
    for k in eager:
        np.testing.assert_allclose(xla[k].numpy(), eager[k].numpy(), rtol=1e-4, err_msg=k)


def test_aux_config_errors_name_the_field():
    def cfg(**aux):
        c = common.base_config()
        c.train.aux = ConfigDict(aux)
        return c

    assert not losses.AuxLosses.from_config(common.base_config()).any
    with pytest.raises(ValueError, match=r"train.aux: unknown field\(s\) \['mel_wieght'\]"):
        losses.AuxLosses.from_config(cfg(mel_wieght=1.0))
    with pytest.raises(ValueError, match=r"train.aux.stft_weight=-1.0"):
        losses.AuxLosses.from_config(cfg(stft_weight=-1.0))
    with pytest.raises(ValueError, match=r"train.aux.domain='db'"):
        losses.AuxLosses.from_config(cfg(domain="db"))
    with pytest.raises(ValueError, match="GED needs two generator samples"):
        losses.AuxLosses(ged_weight=1.0).spectral_terms(tf.zeros([1, 4800]), tf.zeros([1, 4800]),
                                                        None)


# --- the D hinge: per discriminator vs Eq. 3's ensemble (train.d_hinge, #17) ------------------

def _np_hinges(real: np.ndarray, fake: np.ndarray, batch: int):
    """NumPy reference, example by example: per-RWD Σ_b max(0, 1 ∓ s_bi)/B (one per RWD) and
    the ensemble's Σ_b max(0, 1 ∓ Σ_i s_bi)/B."""
    per_real = [sum(max(0.0, 1.0 - float(r[i])) for r in real) / batch
                for i in range(real.shape[1])]
    per_fake = [sum(max(0.0, 1.0 + float(f[i])) for f in fake) / batch
                for i in range(fake.shape[1])]
    ens_real = sum(max(0.0, 1.0 - float(np.sum(r, dtype=np.float64))) for r in real) / batch
    ens_fake = sum(max(0.0, 1.0 + float(np.sum(f, dtype=np.float64))) for f in fake) / batch
    return (per_real, per_fake), (ens_real, ens_fake)


def test_d_hinge_forms_match_numpy():
    rng = np.random.default_rng(0)
    real = rng.normal(0.5, 1.0, [6, 10]).astype(np.float32)  # 6 examples × 10 RWDs
    fake = rng.normal(-0.5, 1.0, [6, 10]).astype(np.float32)
    (per_r, per_f), (ens_r, ens_f) = _np_hinges(real, fake, batch=8)  # a replica's 6 of 8
    r, f = losses.d_hinge_terms("per_rwd")(tf.constant(real), tf.constant(fake), 8)
    np.testing.assert_allclose(r.numpy(), per_r, rtol=1e-6)
    np.testing.assert_allclose(f.numpy(), per_f, rtol=1e-6)
    r, f = losses.d_hinge_terms("ensemble")(tf.constant(real), tf.constant(fake), 8)
    assert r.shape == () and f.shape == ()
    np.testing.assert_allclose([r.numpy(), f.numpy()], [ens_r, ens_f], rtol=1e-5)
    # The forms differ: an RWD past its margin stops the ensemble's hinge for the others too.
    two = tf.constant([[2.0, -0.5]])
    assert float(tf.reduce_sum(losses.hinge_d_terms(two, -two, 1)[0])) == 1.5
    assert float(losses.hinge_d_terms_ensemble(two, -two, 1)[0]) == 0.0
    # With one RWD they are the same function.
    one_r, one_f = real[:, :1], fake[:, :1]
    a = losses.hinge_d_terms(tf.constant(one_r), tf.constant(one_f), 8)
    b = losses.hinge_d_terms_ensemble(tf.constant(one_r), tf.constant(one_f), 8)
    np.testing.assert_allclose([float(a[0][0]), float(a[1][0])], [float(b[0]), float(b[1])])


def test_bad_d_hinge_is_a_clear_error():
    with pytest.raises(ValueError, match=r"train.d_hinge='sum': expected 'per_rwd' .* 'ensemble'"):
        losses.d_hinge_terms("sum")

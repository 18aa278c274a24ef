"""Tests of tts_gan.losses against independent NumPy / SciPy / librosa references."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from ml_collections import ConfigDict

from experiments import common
from tts_gan import losses

SR = 24000


def _signals(n: int = 2, length: int = 4800, seed: int = 0) -> np.ndarray:
    """Harmonic tones with noise and a silent stretch (the corpus has digital silence)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SR
    x = np.stack([0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t)
                  + 0.05 * rng.standard_normal(length) for _ in range(n)])
    x[:, length // 3: length // 2] = 0.0
    return x.astype(np.float32)


def _np_stft_mag(x: np.ndarray, fft: int, hop: int, win: int) -> np.ndarray:
    """|STFT| with SciPy's periodic Hann window centred in the FFT frame, no padding."""
    w = np.zeros(fft)
    left = (fft - win) // 2
    w[left:left + win] = scipy.signal.get_window("hann", win, fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), fft, axis=-1)
    frames = frames[:, ::hop]
    return np.abs(np.fft.rfft(frames * w, axis=-1))


@pytest.mark.parametrize("fft,hop,win", losses.PWG_RESOLUTIONS)
def test_stft_magnitude_matches_numpy(fft, hop, win):
    x = _signals()
    got = losses.stft_magnitude(tf.constant(x), fft, hop, win).numpy()
    want = _np_stft_mag(x, fft, hop, win)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())


def test_multi_resolution_stft_loss_matches_numpy():
    real, fake = _signals(seed=1), _signals(seed=2)
    sc, mag = losses.multi_resolution_stft_loss(tf.constant(real), tf.constant(fake),
                                                floor=1e-5)
    want_sc, want_mag = [], []
    for fft, hop, win in losses.PWG_RESOLUTIONS:
        r, f = _np_stft_mag(real, fft, hop, win), _np_stft_mag(fake, fft, hop, win)
        want_sc.append(np.linalg.norm(r - f, axis=(1, 2)) / np.linalg.norm(r, axis=(1, 2)))
        want_mag.append(np.mean(np.abs(np.log(np.maximum(r, 1e-5))
                                       - np.log(np.maximum(f, 1e-5))), axis=(1, 2)))
    np.testing.assert_allclose(sc.numpy(), np.mean(want_sc, axis=0), rtol=1e-4)
    np.testing.assert_allclose(mag.numpy(), np.mean(want_mag, axis=0), rtol=1e-4)
    # a loss of a signal against itself is 0; against another one clearly not
    sc0, mag0 = losses.multi_resolution_stft_loss(tf.constant(real), tf.constant(real))
    np.testing.assert_allclose(sc0.numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(mag0.numpy(), 0.0, atol=1e-6)
    assert np.all(sc.numpy() > 0.1)


def test_log_mel_l1_matches_librosa():
    real, fake = _signals(seed=3), _signals(seed=4)
    kw = dict(sample_rate=SR, fft_size=1024, hop=120, win_length=1024, num_mels=80,
              floor=1e-5, fmin=0.0, fmax=12000.0)
    got = losses.log_mel_l1(tf.constant(real), tf.constant(fake), **kw).numpy()

    def ref(x):
        mel = librosa.feature.melspectrogram(
            y=x.astype(np.float64), sr=SR, n_fft=1024, hop_length=120, win_length=1024,
            window="hann", center=False, power=1.0, n_mels=80, fmin=0.0, fmax=12000.0)
        return np.log(np.maximum(mel, 1e-5))  # [B, mels, frames]

    want = np.mean(np.abs(ref(real) - ref(fake)), axis=(1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_frame_log_mel_has_one_frame_per_feature_frame_centred_on_it():
    """Frame t of :func:`losses.frame_log_mel` is centred on sample 120·t + 60 (the middle of
    feature frame t): librosa's centred frames of the signal without its first 60 samples
    (zero padding; the test signal starts with 60 zeros so both see the same samples)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 20 * 120)).astype(np.float32) * 0.1
    x[:, :60] = 0.0
    got = losses.frame_log_mel(tf.constant(x), 120, SR, 1024, 1024, 80, 1e-5, 0.0,
                               12000.0).numpy()
    assert got.shape == (2, 20, 80)
    mel = librosa.feature.melspectrogram(
        y=x[:, 60:].astype(np.float64), sr=SR, n_fft=1024, hop_length=120, win_length=1024,
        window="hann", center=True, pad_mode="constant", power=1.0, n_mels=80, fmin=0.0,
        fmax=12000.0)
    want = np.log(np.maximum(mel, 1e-5)).transpose(0, 2, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    stem = rng.normal(size=got.shape).astype(np.float32)
    aux = losses.AuxLosses(stem_mel_weight=1.0, mel_bins=80, mel_fft_size=1024,
                           mel_win_length=1024)
    term = aux.stem_mel_term(tf.constant(x), tf.constant(stem), 120).numpy()
    np.testing.assert_allclose(term, np.mean(np.abs(want - stem), axis=(1, 2)), rtol=1e-4)


def _np_spectral_distance(a, b, windows, floor):
    total = 0.0
    for w in windows:
        x, y = _np_stft_mag(a, w, w // 2, w), _np_stft_mag(b, w, w // 2, w)
        l1 = np.mean(np.abs(x - y), axis=(1, 2))
        ld = np.log(x + floor) - np.log(y + floor)
        total = total + l1 + np.mean(np.sqrt(np.mean(ld ** 2, axis=-1) + floor), axis=-1)
    return total


def test_ged_matches_numpy_and_is_symmetric_in_the_two_samples():
    real, f1, f2 = _signals(seed=5), _signals(seed=6), _signals(seed=7)
    w = (64, 256, 1024)
    got = losses.ged_loss(tf.constant(real), tf.constant(f1), tf.constant(f2), w).numpy()
    want = (_np_spectral_distance(real, f1, w, 1e-5) + _np_spectral_distance(real, f2, w, 1e-5)
            - _np_spectral_distance(f1, f2, w, 1e-5))
    np.testing.assert_allclose(got, want, rtol=1e-4)
    swapped = losses.ged_loss(tf.constant(real), tf.constant(f2), tf.constant(f1), w).numpy()
    np.testing.assert_allclose(got, swapped, rtol=1e-6)


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

"""App. B speech distances against independent NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from tts_gan import metrics


def test_ds_windows_are_the_199_half_overlapping_20ms_windows_of_a_2s_clip():
    audio = np.arange(2 * 48000, dtype=np.float32).reshape(2, 48000)
    w = metrics.ds_windows(audio)
    assert w.shape == (2, 199, 480)
    for i in (0, 1, 100, 198):
        np.testing.assert_array_equal(w[1, i], audio[1, i * 240:i * 240 + 480])


def test_ds_representation_is_eq4():
    rng = np.random.default_rng(0)
    audio = rng.uniform(-1, 1, size=(3, 48000)).astype(np.float32)

    def f(windows):  # any feature map: here two simple statistics per window
        return np.stack([windows.mean(axis=1), np.abs(windows).max(axis=1)], axis=1)

    got = metrics.ds_representation(audio, f, batch_windows=50)
    for b in range(3):
        expected = np.mean([f(audio[b, i * 240:i * 240 + 480][None])[0] for i in range(199)],
                           axis=0)
        np.testing.assert_allclose(got[b], expected, rtol=1e-5)


def _frechet_reference(x, y):
    """Closed form via eigendecomposition: Tr((ΣxΣy)^½) = Σ √λ(Σx^½ Σy Σx^½)."""
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ev, evec = np.linalg.eigh(cx)
    sx = evec @ np.diag(np.sqrt(np.clip(ev, 0, None))) @ evec.T
    lam = np.linalg.eigvalsh(sx @ cy @ sx)
    tr_sqrt = np.sum(np.sqrt(np.clip(lam, 0, None)))
    return np.sum((mx - my) ** 2) + np.trace(cx) + np.trace(cy) - 2 * tr_sqrt


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(0.5, 2.0, size=(300, 6))
    np.testing.assert_allclose(metrics.frechet_distance(x, y), _frechet_reference(x, y), rtol=1e-6)


def test_frechet_distance_1d_known_value():
    x = np.array([[0.0], [2.0]])  # mean 1, var 2
    y = np.array([[3.0], [5.0], [7.0]])  # mean 5, var 4
    expected = (1 - 5) ** 2 + 2 + 4 - 2 * np.sqrt(8)
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_frechet_is_biased_but_mmd_is_not_on_real_vs_real():
    """App. B.2: FD of two i.i.d. samples of one distribution is positive; the MMD estimator
    averages to zero."""
    rng = np.random.default_rng(2)
    fds, mmds = [], []
    for _ in range(40):
        x, y = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
        fds.append(metrics.frechet_distance(x, y))
        mmds.append(metrics.mmd2_unbiased(x, y))
    assert min(fds) > 0
    assert abs(np.mean(mmds)) < 3 * np.std(mmds) / np.sqrt(len(mmds))
    assert min(mmds) < 0 < max(mmds)  # unbiased: it must be able to go negative


def test_mmd_matches_a_brute_force_double_sum():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 1.0, size=(5, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_speech_distances_pairs_conditional_with_the_same_conditioning():
    rng = np.random.default_rng(4)
    gen = rng.normal(size=(50, 3))
    same = gen + 0.01 * rng.normal(size=(50, 3))  # "same conditioning": nearly identical
    other = rng.normal(3.0, 1.0, size=(50, 3))
    d = metrics.speech_distances(gen, same, other)
    assert set(d) == {"FDSD", "cFDSD", "KDSD", "cKDSD"}
    assert d["cFDSD"] < d["FDSD"] and d["cKDSD"] < d["KDSD"]
    assert d["FDSD"] == pytest.approx(metrics.frechet_distance(gen, other))


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="same d"):
        metrics.frechet_distance(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mmd2_unbiased(np.zeros((1, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="samples"):
        metrics.ds_windows(np.zeros((2, 100)))


def test_logmel_features_separate_tones():
    t = np.arange(480) / 24000.0
    low = np.sin(2 * np.pi * 200 * t)[None].astype(np.float32)
    high = np.sin(2 * np.pi * 5000 * t)[None].astype(np.float32)
    f = metrics.LogMelFeatures()
    a, b = f(low), f(high)
    assert a.shape == (1, 80)
    assert np.argmax(a[0]) < np.argmax(b[0])


def test_saved_model_features(tmp_path):
    class Proj(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.random.normal([480, 5]))

        @tf.function(input_signature=[tf.TensorSpec([None, 480], tf.float32, name="windows")])
        def __call__(self, windows):
            return {"features": tf.matmul(windows, self.w)}

    m = Proj()
    tf.saved_model.save(m, str(tmp_path / "fm"), signatures=m.__call__)
    f = metrics.SavedModelFeatures(str(tmp_path / "fm"))
    x = np.random.default_rng(5).normal(size=(4, 480)).astype(np.float32)
    np.testing.assert_allclose(f(x), x @ m.w.numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="no such SavedModel"):
        metrics.SavedModelFeatures(str(tmp_path / "missing"))

"""App. B speech distances against independent references: closed forms, brute-force sums and
NumPy re-implementations of the released code's splits and blocks."""

import math
import warnings

import numpy as np
import pytest

from tts_gan import metrics


# ------------------------------------------------------------------------------ Eq. 4
def test_ds_windows_are_the_199_half_overlapping_20ms_windows_of_a_2s_clip():
    audio = np.arange(2 * 48000, dtype=np.float32).reshape(2, 48000)
    w = metrics.ds_windows(audio)
    assert w.shape == (2, 199, 480)
    for i in (0, 1, 100, 198):
        np.testing.assert_array_equal(w[1, i], audio[1, i * 240:i * 240 + 480])


def test_ds_representation_is_eq4_in_any_chunking():
    rng = np.random.default_rng(0)
    audio = rng.uniform(-1, 1, size=(3, 48000)).astype(np.float32)
    calls = []

    def f(windows):  # any feature map: here two simple statistics per window
        calls.append(len(windows))
        return np.stack([windows.mean(axis=1), np.abs(windows).max(axis=1)], axis=1)

    for batch_windows in (50, 199, 400, 10_000):
        calls.clear()
        got = metrics.ds_representation(audio, f, batch_windows=batch_windows)
        for b in range(3):
            expected = np.mean([f(audio[b, i * 240:i * 240 + 480][None])[0]
                                for i in range(199)], axis=0)
            np.testing.assert_allclose(got[b], expected, rtol=1e-5)
        # bounded: one call never holds more than max(batch_windows, one clip's) windows
        assert max(calls) <= max(batch_windows, 199)


# ------------------------------------------------------------------------------ Fréchet
def _frechet_reference(x, y):
    """Closed form via eigendecomposition: Tr((ΣxΣy)^½) = Σ √λ(Σx^½ Σy Σx^½)."""
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ev, evec = np.linalg.eigh(cx)
    sx = evec @ np.diag(np.sqrt(np.clip(ev, 0, None))) @ evec.T
    lam = np.linalg.eigvalsh(sx @ cy @ sx)
    tr_sqrt = np.sum(np.sqrt(np.clip(lam, 0, None)))
    return np.sum((mx - my) ** 2) + np.trace(cx) + np.trace(cy) - 2 * tr_sqrt


def test_frechet_distance_matches_the_eigendecomposition_form():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(0.5, 2.0, size=(300, 6))
    np.testing.assert_allclose(metrics.frechet_distance(x, y), _frechet_reference(x, y),
                               rtol=1e-6)


def test_frechet_of_two_gaussians_has_the_closed_form():
    """W2² of N(μ1, Σ1), N(μ2, Σ2) with commuting Σ (same eigenvectors):
    ‖μ1 − μ2‖² + Σ_i (√a_i − √b_i)²; in 1-D (μ1 − μ2)² + (σ1 − σ2)²."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = np.array([1.0, 2.0, 0.5, 4.0, 3.0]), np.array([2.0, 0.3, 0.5, 1.0, 9.0])
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    value, residue = metrics.frechet_from_moments(mu1, q @ np.diag(a) @ q.T,
                                                  mu2, q @ np.diag(b) @ q.T)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert value == pytest.approx(expected, rel=1e-9)
    assert residue < 1e-8
    value_1d, _ = metrics.frechet_from_moments(np.array([1.0]), np.array([[4.0]]),
                                               np.array([-2.0]), np.array([[9.0]]))
    assert value_1d == pytest.approx(9.0 + 1.0, rel=1e-12)


def test_frechet_sample_estimate_converges_to_the_closed_form():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, size=(200_000, 2))
    y = rng.normal([1.0, 0.0], [2.0, 0.5], size=(200_000, 2))
    expected = 1.0 + (1 - 2) ** 2 + (1 - 0.5) ** 2
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=0.01)


def test_frechet_distance_1d_known_value():
    x = np.array([[0.0], [2.0]])  # mean 1, var 2
    y = np.array([[3.0], [5.0], [7.0]])  # mean 5, var 4
    expected = (1 - 5) ** 2 + 2 + 4 - 2 * np.sqrt(8)
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_frechet_warns_when_rank_deficient_and_reports_the_imaginary_residue():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 20)), rng.normal(size=(6, 20))  # n = 6 ≤ d = 20
    with pytest.warns(metrics.RankDeficientWarning, match="n ≤ d"):
        est = metrics.frechet(x, y)
    assert est.rank_deficient and est.n == (6, 6) and est.dim == 20
    assert np.isfinite(est.value) and est.imag_residue >= 0
    # An indefinite "covariance" makes √(ΣxΣy) complex: the dropped part is reported.
    _, residue = metrics.frechet_from_moments(np.zeros(2), np.eye(2), np.zeros(2),
                                              np.diag([1.0, -1.0]))
    assert residue == pytest.approx(1.0)  # √diag(1, −1) = diag(1, i): ‖Im‖ = ‖Re‖
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a full-rank estimate warns about nothing
        ok = metrics.frechet(rng.normal(size=(500, 3)), rng.normal(size=(500, 3)))
    assert not ok.rank_deficient and ok.imag_residue < 1e-6


def test_frechet_is_not_clamped_at_zero():
    """Identical samples: the exact value is 0; rounding may go either way, and it is returned
    as computed (tiny), not replaced by max(value, 0)."""
    x = np.random.default_rng(5).normal(size=(50, 4))
    v = metrics.frechet_distance(x, x.copy())
    assert abs(v) < 1e-9


# ------------------------------------------------------------------------------ MMD
def test_mmd_matches_a_brute_force_double_sum_to_1e6():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(17, 3)), rng.normal(1.0, 1.0, size=(11, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert abs(metrics.mmd2_unbiased(x, y) - (xx + yy - 2 * xy)) < 1e-6


def _mmd2_population_1d(p, q):
    """Closed-form MMD² for the kernel (xy + 1)³ (d = 1) between N(μp, σp²) and N(μq, σq²):
    E k(x, x') = (E x³)² + 3 (E x²)² + 3 (E x)² + 1 for independent x, x', so
    MMD² = (m3p − m3q)² + 3 (m2p − m2q)² + 3 (m1p − m1q)²."""
    def moments(mu, s):
        return mu, mu**2 + s**2, mu**3 + 3 * mu * s**2

    (a1, a2, a3), (b1, b2, b3) = moments(*p), moments(*q)
    return (a3 - b3) ** 2 + 3 * (a2 - b2) ** 2 + 3 * (a1 - b1) ** 2


@pytest.mark.parametrize("q", [(0.0, 1.0), (0.3, 1.2)])
def test_mmd_is_unbiased_over_repeated_draws(q):
    """The mean of many small-sample estimates equals the population MMD² (0 for identical
    distributions) within 4 standard errors; the estimator goes negative on identical ones."""
    rng = np.random.default_rng(7)
    p = (0.0, 1.0)
    est = np.array([metrics.mmd2_unbiased(rng.normal(*p, size=(12, 1)),
                                          rng.normal(*q, size=(9, 1))) for _ in range(4000)])
    truth = _mmd2_population_1d(p, q)
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - truth) < 4 * se, (est.mean(), truth, se)
    if q == p:
        assert truth == 0 and est.min() < 0 < est.max()
    else:
        assert truth > 10 * se  # the test can tell the two cases apart


def test_mmd_of_identical_distributions_is_near_zero():
    """Small next to a shift of 0.2 σ in every dimension (whose MMD² is ~0.14 here)."""
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(3000, 8)), rng.normal(size=(3000, 8))
    same, shifted = metrics.mmd2_blocks(x, y), metrics.mmd2_blocks(x, y + 0.2)
    assert abs(same.mean) < 0.1 * shifted.mean
    assert len(same.values) == 3 and same.error is not None


# ------------------------------------------------------------------------------ App. B.3
def test_split_bounds_are_near_equal_and_cover_everything():
    assert metrics.split_bounds(10, 5) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert metrics.split_bounds(17, 5) == [(0, 4), (4, 8), (8, 11), (11, 14), (14, 17)]


def test_frechet_splits_against_a_numpy_reimplementation():
    """The released code: tf.split into 5 equal parts, FD of part k vs part k, mean and
    tf.math.reduce_std (ddof 0)."""
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(1000, 4)), rng.normal(0.2, 1.1, size=(1000, 4))
    got = metrics.frechet_splits(x, y)
    vals = [_frechet_reference(xs, ys) for xs, ys in zip(np.split(x, 5), np.split(y, 5),
                                                         strict=True)]
    assert got.values == pytest.approx(vals, rel=1e-6)
    assert got.mean == pytest.approx(np.mean(vals), rel=1e-6)
    assert got.error == pytest.approx(np.std(vals), rel=1e-6)
    assert got.sizes == [200] * 5 and not got.rank_deficient


def test_mmd_blocks_against_a_numpy_reimplementation_of_tfgan():
    """TF-GAN's kernel_classifier_distance_and_std_from_activations: ⌈max(m,n)/1024⌉ blocks,
    the last (n mod blocks) one larger; mean; sqrt(var_ddof1 / blocks)."""
    rng = np.random.default_rng(10)
    m, n = 2500, 2100  # 3 blocks: 833, 833, 834 and 700, 700, 700
    x, y = rng.normal(size=(m, 5)), rng.normal(0.1, 1.0, size=(n, 5))

    def brute(a, b):
        d = a.shape[1]
        kaa, kbb, kab = [(u @ v.T / d + 1) ** 3 for u, v in ((a, a), (b, b), (a, b))]
        return ((kaa.sum() - np.trace(kaa)) / (len(a) * (len(a) - 1))
                + (kbb.sum() - np.trace(kbb)) / (len(b) * (len(b) - 1)) - 2 * kab.mean())

    xs = [x[:833], x[833:1666], x[1666:]]
    ys = [y[:700], y[700:1400], y[1400:]]
    vals = [brute(a, b) for a, b in zip(xs, ys, strict=True)]
    got = metrics.mmd2_blocks(x, y)
    assert got.values == pytest.approx(vals, abs=1e-9)
    assert got.mean == pytest.approx(np.mean(vals), abs=1e-9)
    assert got.error == pytest.approx(np.sqrt(np.var(vals, ddof=1) / 3), rel=1e-9)
    one = metrics.mmd2_blocks(x[:1024], y[:1000])
    assert len(one.values) == 1 and one.error is None
    assert metrics.block_bounds(10_000, math.ceil(10_000 / 1024)) == [
        (1000 * i, 1000 * (i + 1)) for i in range(10)]


def test_speech_distances_pairs_conditional_with_the_same_conditioning():
    rng = np.random.default_rng(11)
    gen = rng.normal(size=(60, 3))
    same = gen + 0.01 * rng.normal(size=(60, 3))  # "same conditioning": nearly identical
    other = rng.normal(3.0, 1.0, size=(60, 3))
    d = metrics.speech_distances(gen, same, other)
    assert set(d) == {"FDSD", "cFDSD", "KDSD", "cKDSD"}
    assert d["cFDSD"].mean < d["FDSD"].mean and d["cKDSD"].mean < d["KDSD"].mean
    assert d["FDSD"].mean == pytest.approx(metrics.frechet_splits(gen, other).mean)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="same d"):
        metrics.frechet_distance(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mmd2_unbiased(np.zeros((1, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least 10"):
        metrics.frechet_splits(np.zeros((9, 2)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.mmd2_unbiased(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="samples"):
        metrics.ds_windows(np.zeros((2, 100)))

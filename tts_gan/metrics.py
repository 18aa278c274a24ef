"""Speech distances of §4.2 and App. B: FDSD, KDSD and their conditional variants.

* Eq. 4: ``DS(a)`` averages a feature map ``f`` over the 199 windows of w = 480 samples (20 ms at
  24 kHz) taken every w/2 = 240 samples from a 2-s clip (:func:`ds_windows`,
  :func:`ds_representation`; the extractors live in :mod:`tts_gan.extractors`).
* Eq. 5: Fréchet distance between Gaussians fitted to two samples (:func:`frechet`).
* Eq. 6–7: unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy/d + 1)³ (the printed
  Eq. 6 drops the cross term's factor −2/(mn); we use the standard unbiased estimator of
  Gretton et al. / Bińkowski et al. 2018 that the text cites).
* Eq. 8–12: with real clips x_1..x_2N and their features c_1..c_2N, generated X^G = DS(G(c_i, z_i))
  for i ≤ N; conditional distances compare X^G with DS(x_1..x_N) (same conditioning),
  unconditional ones with DS(x_{N+1}..x_2N) (independent conditioning).

Error bars follow the authors' released code (github.com/mbinkowski/DeepSpeechDistances,
``audio_distance.py``, which calls TF-GAN's classifier metrics): Fréchet distances are the mean
± standard deviation (``tf.math.reduce_std``: ddof 0) of the estimates on 5 splits of the N
samples, split k of one set paired with split k of the other (:func:`frechet_splits`); kernel
distances average the unbiased MMD² over ⌈max(m, n)/1024⌉ near-equal consecutive blocks, ±
the standard error sqrt(var_ddof1 / blocks) (:func:`mmd2_blocks`, TF-GAN's
``kernel_classifier_distance_and_std_from_activations``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.linalg

WINDOW = 480  # w: 20 ms at 24 kHz
HOP = WINDOW // 2  # 10 ms
CLIP = 100 * WINDOW  # 2 s = 48000 samples → 199 windows
NUM_SPLITS = 5  # Fréchet: splits of the N samples (released code)
MAX_BLOCK = 1024  # MMD: largest block (TF-GAN's max_block_size)
IMAG_TOLERANCE = 1e-3  # relative imaginary residue of √(ΣxΣy) above which we warn

FeatureMap = Callable[[np.ndarray], np.ndarray]  # [n, 480] float32 → [n, d]


class RankDeficientWarning(UserWarning):
    """A covariance estimated from n ≤ d samples is singular: the Fréchet estimate is unstable."""


class ImaginaryResidueWarning(UserWarning):
    """√(ΣxΣy) has an imaginary part that is not numerical noise."""


# ------------------------------------------------------------------------------ Eq. 4
def ds_windows(audio: np.ndarray) -> np.ndarray:
    """The windows of Eq. 4: ``[B, N] -> [B, (N - w) / (w/2) + 1, w]`` (199 for a 2-s clip).

    A strided view (no copy): ``out[b, i] = audio[b, 240 i : 240 i + 480]``."""
    audio = np.ascontiguousarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[1] < WINDOW:
        raise ValueError(f"audio: expected [batch, samples ≥ {WINDOW}], got {audio.shape}")
    count = (audio.shape[1] - WINDOW) // HOP + 1
    b_stride, s_stride = audio.strides
    return np.lib.stride_tricks.as_strided(
        audio, (audio.shape[0], count, WINDOW), (b_stride, HOP * s_stride, s_stride),
        writeable=False)


def ds_representation(audio: np.ndarray, feature_map: FeatureMap,
                      batch_windows: int = 4096) -> np.ndarray:
    """DS(a) of Eq. 4 for every clip of ``audio [B, N]`` (linear PCM in [-1, 1]): ``[B, d]``.

    Clips go through ``f`` a few at a time (about ``batch_windows`` windows per call) and are
    averaged at once, so memory holds one chunk of window features, never ``B × 199 × d``."""
    windows = ds_windows(audio)
    b, n, _ = windows.shape
    per_call = max(1, batch_windows // n)
    out: list[np.ndarray] = []
    for i in range(0, b, per_call):
        chunk = windows[i:i + per_call]
        f = np.asarray(feature_map(chunk.reshape(-1, WINDOW)), np.float64)
        if f.ndim != 2 or len(f) != chunk.shape[0] * n:
            raise ValueError(f"feature map: expected [windows, d] for {chunk.shape[0] * n} "
                             f"windows, got {f.shape}")
        out.append(f.reshape(chunk.shape[0], n, -1).mean(axis=1))
    return np.concatenate(out)


# ------------------------------------------------------------------------------ Eq. 5
@dataclasses.dataclass(frozen=True)
class FrechetEstimate:
    """One Fréchet estimate (Eq. 5) and how much to trust it.

    ``imag_residue`` = ‖Im √(ΣxΣy)‖_F / ‖Re √(ΣxΣy)‖_F: the part of the matrix square root the
    distance drops (rounding noise is ~1e-8; larger means a singular or indefinite product).
    ``rank_deficient``: one side has n ≤ d samples, so its covariance is singular."""

    value: float
    imag_residue: float
    n: tuple[int, int]
    dim: int

    @property
    def rank_deficient(self) -> bool:
        return min(self.n) <= self.dim


def frechet_from_moments(mu_x: np.ndarray, cov_x: np.ndarray, mu_y: np.ndarray,
                         cov_y: np.ndarray) -> tuple[float, float]:
    """(‖μx − μy‖² + Tr(Σx + Σy − 2 (Σx Σy)^½), imaginary residue of the square root).

    Not clamped at 0: a negative value is rounding error and is reported as such."""
    mu_x, mu_y = np.atleast_1d(mu_x), np.atleast_1d(mu_y)
    cov_x, cov_y = np.atleast_2d(cov_x), np.atleast_2d(cov_y)
    product = cov_x @ cov_y
    with warnings.catch_warnings():  # singularity is reported through the residue instead
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(product)
        if not np.all(np.isfinite(covmean)):  # as pytorch-fid: retry with a tiny ridge
            eps = 1e-6 * max(np.trace(cov_x), np.trace(cov_y), 1e-300) / len(cov_x)
            ridge = eps * np.eye(len(cov_x))
            covmean = scipy.linalg.sqrtm((cov_x + ridge) @ (cov_y + ridge))
    real = np.real(covmean)
    imag = np.imag(covmean) if np.iscomplexobj(covmean) else np.zeros_like(real)
    residue = float(np.linalg.norm(imag) / max(np.linalg.norm(real), 1e-300))
    value = float(np.sum((mu_x - mu_y) ** 2) + np.trace(cov_x) + np.trace(cov_y)
                  - 2.0 * np.trace(real))
    return value, residue


def frechet(x: np.ndarray, y: np.ndarray, *, warn: bool = True) -> FrechetEstimate:
    """Eq. 5 on samples ``x [m, d]``, ``y [n, d]`` (unbiased covariances, as TF-GAN and FID).

    Warns (:class:`RankDeficientWarning`) when m or n ≤ d and (:class:`ImaginaryResidueWarning`)
    when the square root's imaginary residue exceeds :data:`IMAG_TOLERANCE`."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _check_pair(x, y, minimum=2)
    value, residue = frechet_from_moments(
        x.mean(axis=0), np.cov(x, rowvar=False), y.mean(axis=0), np.cov(y, rowvar=False))
    est = FrechetEstimate(value, residue, (len(x), len(y)), x.shape[1])
    if warn:
        if est.rank_deficient:
            warnings.warn(f"Fréchet distance from {min(est.n)} samples of dimension {est.dim}: "
                          "n ≤ d, the covariance is singular and the estimate unstable "
                          "(use more samples)", RankDeficientWarning, stacklevel=2)
        if residue > IMAG_TOLERANCE:
            warnings.warn(f"√(ΣxΣy) has a relative imaginary residue of {residue:.3g} "
                          f"(> {IMAG_TOLERANCE:g}); the Fréchet estimate drops it",
                          ImaginaryResidueWarning, stacklevel=2)
    return est


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Eq. 5: ‖μx − μy‖² + Tr(Σx + Σy − 2 (Σx Σy)^½) (biased estimator, as in FID)."""
    return frechet(x, y).value


# ------------------------------------------------------------------------------ Eq. 6–7
def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Eq. 7: k(x, y) = (xᵀy / d + 1)³ for all pairs of rows."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray,
                  kernel: Callable[[np.ndarray, np.ndarray], np.ndarray] = polynomial_kernel
                  ) -> float:
    """Eq. 6, unbiased MMD²: mean_{i≠j} k(xi,xj) + mean_{i≠j} k(yi,yj) − 2 mean k(xi,yj)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _check_pair(x, y, minimum=2)
    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


# ------------------------------------------------------------------------------ App. B.3 error bars
@dataclasses.dataclass(frozen=True)
class DistanceEstimate:
    """A distance with its error bar and the per-split (or per-block) values it came from.

    ``error`` is the std over splits (Fréchet) or the standard error over blocks (MMD); None
    when undefined (one block). ``imag_residue`` (Fréchet only) is the largest over splits."""

    mean: float
    error: float | None
    error_kind: str  # "std over splits" | "standard error over blocks"
    values: list[float]
    sizes: list[int]
    dim: int
    imag_residue: float | None = None

    @property
    def rank_deficient(self) -> bool:
        return min(self.sizes) <= self.dim

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"rank_deficient": self.rank_deficient}


def split_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) of ``parts`` consecutive near-equal splits of n items (np.array_split's
    rule: the first n mod parts splits have one more; equal splits when parts divides n)."""
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for k in range(parts):
        end = start + base + (1 if k < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def frechet_splits(x: np.ndarray, y: np.ndarray, num_splits: int = NUM_SPLITS
                   ) -> DistanceEstimate:
    """Fréchet distance as the authors' released code reports it: split k of ``x`` against
    split k of ``y`` for k < ``num_splits``; mean ± std (ddof 0) of the estimates.

    One warning per call (not per split) when a split has n ≤ d samples."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _check_pair(x, y, minimum=2 * num_splits)
    ests = [frechet(x[a:b], y[c:e], warn=False)
            for (a, b), (c, e) in zip(split_bounds(len(x), num_splits),
                                      split_bounds(len(y), num_splits), strict=True)]
    values = [e.value for e in ests]
    sizes = [min(e.n) for e in ests]
    out = DistanceEstimate(float(np.mean(values)), float(np.std(values)), "std over splits",
                           values, sizes, x.shape[1], max(e.imag_residue for e in ests))
    if out.rank_deficient:
        warnings.warn(f"Fréchet distance on {num_splits} splits of {min(sizes)} samples of "
                      f"dimension {out.dim}: n ≤ d, each covariance is singular and the "
                      f"estimate unstable (N > {num_splits}·d = {num_splits * out.dim} avoids "
                      "this)", RankDeficientWarning, stacklevel=2)
    if out.imag_residue is not None and out.imag_residue > IMAG_TOLERANCE:
        warnings.warn(f"√(ΣxΣy) has a relative imaginary residue of up to "
                      f"{out.imag_residue:.3g} over the splits (> {IMAG_TOLERANCE:g}); the "
                      "Fréchet estimates drop it", ImaginaryResidueWarning, stacklevel=2)
    return out


def block_bounds(n: int, num_blocks: int) -> list[tuple[int, int]]:
    """TF-GAN's kernel-distance blocks: ``num_blocks`` consecutive blocks of n // num_blocks
    items, the last n mod num_blocks of them one larger."""
    base = n // num_blocks
    plus_one = n - base * num_blocks
    sizes = [base] * (num_blocks - plus_one) + [base + 1] * plus_one
    ends = np.cumsum(sizes).tolist()
    return list(zip([0] + ends[:-1], ends, strict=True))


def mmd2_blocks(x: np.ndarray, y: np.ndarray, max_block: int = MAX_BLOCK) -> DistanceEstimate:
    """Kernel distance as TF-GAN computes KID: the unbiased MMD² (Eq. 6–7) of block k of ``x``
    against block k of ``y`` over ⌈max(m, n)/``max_block``⌉ blocks; mean ± standard error."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _check_pair(x, y, minimum=2)
    blocks = math.ceil(max(len(x), len(y)) / max_block)
    if min(len(x), len(y)) < 2 * blocks:
        raise ValueError(f"need at least 2 samples per block: {len(x)}, {len(y)} samples in "
                         f"{blocks} blocks")
    pairs = list(zip(block_bounds(len(x), blocks), block_bounds(len(y), blocks), strict=True))
    values = [mmd2_unbiased(x[a:b], y[c:e]) for (a, b), (c, e) in pairs]
    error = (float(np.sqrt(np.var(values, ddof=1) / blocks)) if blocks > 1 else None)
    return DistanceEstimate(float(np.mean(values)), error, "standard error over blocks",
                            values, [min(b - a, e - c) for (a, b), (c, e) in pairs],
                            x.shape[1])


# ------------------------------------------------------------------------------ Eq. 9–12
def speech_distances(generated: np.ndarray, real_same_conditioning: np.ndarray,
                     real_independent: np.ndarray, names: Sequence[str] = (
                         "FDSD", "cFDSD", "KDSD", "cKDSD"),
                     num_splits: int = NUM_SPLITS, max_block: int = MAX_BLOCK
                     ) -> dict[str, DistanceEstimate]:
    """Eq. 9–12 from representations ``X^G``, ``X^real_{:N}``, ``X^real_{N:}`` with the error
    bars of App. B.3; ``names`` are the keys for (F, cF, K, cK) in that order."""
    f, cf, k, ck = names
    return {
        f: frechet_splits(generated, real_independent, num_splits),
        cf: frechet_splits(generated, real_same_conditioning, num_splits),
        k: mmd2_blocks(generated, real_independent, max_block),
        ck: mmd2_blocks(generated, real_same_conditioning, max_block),
    }


def natural_speech_distances(real_first: np.ndarray, real_second: np.ndarray,
                             num_splits: int = NUM_SPLITS, max_block: int = MAX_BLOCK
                             ) -> tuple[DistanceEstimate, DistanceEstimate]:
    """Table 1's natural-speech row: (Fréchet, MMD²) of the first N real clips against the last
    N (independent conditioning). The conditional ones cannot be estimated (App. B.2)."""
    return (frechet_splits(real_first, real_second, num_splits),
            mmd2_blocks(real_first, real_second, max_block))


def _check_pair(x: np.ndarray, y: np.ndarray, minimum: int) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two [n, d] samples with the same d, got {x.shape}, {y.shape}")
    if len(x) < minimum or len(y) < minimum:
        raise ValueError(f"need at least {minimum} samples on each side, got {len(x)}, {len(y)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("samples contain NaN or infinite values")

"""Speech distances of §4.2 and App. B: FDSD, KDSD and their conditional variants.

* Eq. 4: ``DS(a)`` averages a feature map ``f`` over the 199 windows of w = 480 samples (20 ms at
  24 kHz) taken every w/2 = 240 samples from a 2-s clip.
* Eq. 5: Fréchet distance between Gaussians fitted to two samples of representations.
* Eq. 6–7: unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy/d + 1)³ (the printed
  Eq. 6 drops the cross term's factor −2/(mn); we use the standard unbiased estimator of
  Gretton et al. / Bińkowski et al. 2018 that the text cites).
* Eq. 8–12: with real clips x_1..x_2N and their features c_1..c_2N, generated X^G = DS(G(c_i, z_i))
  for i ≤ N; conditional distances compare X^G with DS(x_1..x_N) (same conditioning),
  unconditional ones with DS(x_{N+1}..x_2N) (independent conditioning).

The paper's ``f`` is DeepSpeech2 (OpenSeq2Seq) up to ``ForwardPass/ds2_encoder/Reshape_2:0``
(1600 dims). Its weights cannot be bundled; :class:`SavedModelFeatures` loads any exported
feature map with that interface. :class:`LogMelFeatures` is a weight-free stand-in (log-mel
energies of each window); distances computed with it are *not* DeepSpeech distances and are
reported under their own name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import tensorflow as tf

WINDOW = 480  # w: 20 ms at 24 kHz
HOP = WINDOW // 2  # 10 ms
CLIP = 100 * WINDOW  # 2 s = 48000 samples → 199 windows

FeatureMap = Callable[[np.ndarray], np.ndarray]  # [n, 480] float32 → [n, d]


def ds_windows(audio: np.ndarray) -> np.ndarray:
    """The windows of Eq. 4: ``[B, N] -> [B, (N - w) / (w/2) + 1, w]`` (199 for a 2-s clip)."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[1] < WINDOW:
        raise ValueError(f"audio: expected [batch, samples ≥ {WINDOW}], got {audio.shape}")
    return tf.signal.frame(audio, WINDOW, HOP, axis=-1).numpy()


def ds_representation(audio: np.ndarray, feature_map: FeatureMap,
                      batch_windows: int = 4096) -> np.ndarray:
    """DS(a) of Eq. 4 for every clip of ``audio [B, N]`` (linear PCM in [-1, 1]): ``[B, d]``."""
    windows = ds_windows(audio)
    b, n, _ = windows.shape
    flat = windows.reshape(b * n, WINDOW)
    feats = np.concatenate([np.asarray(feature_map(flat[i:i + batch_windows]), np.float64)
                            for i in range(0, len(flat), batch_windows)])
    return feats.reshape(b, n, -1).mean(axis=1)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Eq. 5: ‖μx − μy‖² + Tr(Σx + Σy − 2 (Σx Σy)^½) (biased estimator, as in FID)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _check_pair(x, y, minimum=2)
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cov_x, cov_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    covmean = scipy.linalg.sqrtm(cov_x @ cov_y)
    if np.iscomplexobj(covmean):
        covmean = covmean.real  # numerical noise of sqrtm on a PSD product
    value = np.sum((mu_x - mu_y) ** 2) + np.trace(cov_x + cov_y - 2.0 * covmean)
    return float(max(value, 0.0))


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


def speech_distances(generated: np.ndarray, real_same_conditioning: np.ndarray,
                     real_independent: np.ndarray, prefix: str = "DSD") -> dict[str, float]:
    """Eq. 9–12 from representations: ``X^G``, ``X^real_{:N}`` and ``X^real_{N:}``.

    Returns ``{"F<prefix>", "cF<prefix>", "K<prefix>", "cK<prefix>"}`` (FDSD, cFDSD, KDSD,
    cKDSD for DeepSpeech features).
    """
    return {
        f"F{prefix}": frechet_distance(generated, real_independent),
        f"cF{prefix}": frechet_distance(generated, real_same_conditioning),
        f"K{prefix}": mmd2_unbiased(generated, real_independent),
        f"cK{prefix}": mmd2_unbiased(generated, real_same_conditioning),
    }


def _check_pair(x: np.ndarray, y: np.ndarray, minimum: int) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two [n, d] samples with the same d, got {x.shape}, {y.shape}")
    if len(x) < minimum or len(y) < minimum:
        raise ValueError(f"need at least {minimum} samples on each side, got {len(x)}, {len(y)}")


class LogMelFeatures:
    """Weight-free stand-in for ``f``: log energies of ``n_mels`` mel bands of each 20-ms window
    (Hann window, 24 kHz). Not DeepSpeech2: report its distances as FD/KD-logmel."""

    name = "logmel"

    def __init__(self, n_mels: int = 80, sample_rate: int = 24000):
        import librosa

        self.window = np.hanning(WINDOW).astype(np.float32)
        self.mel = librosa.filters.mel(sr=sample_rate, n_fft=WINDOW, n_mels=n_mels).astype(
            np.float32)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        spec = np.abs(np.fft.rfft(windows * self.window, axis=-1)) ** 2
        return np.log(spec @ self.mel.T + 1e-6)


class SavedModelFeatures:
    """``f`` from a TF SavedModel whose default signature maps float32 ``[n, 480]`` windows of
    24-kHz audio to ``[n, d]`` features, e.g. DeepSpeech2 (with its preprocessing) exported up to
    ``ForwardPass/ds2_encoder/Reshape_2:0`` as App. B.1 specifies."""

    name = "DSD"

    def __init__(self, path: str, signature: str = "serving_default"):
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"feature model {path}: no such SavedModel directory")
        loaded = tf.saved_model.load(path)
        if signature not in loaded.signatures:
            raise ValueError(f"feature model {path}: no signature {signature!r} "
                             f"(has {sorted(loaded.signatures)})")
        self._loaded = loaded
        self._fn = loaded.signatures[signature]
        (self._input,) = self._fn.structured_input_signature[1].keys()

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        out = self._fn(**{self._input: tf.constant(windows, tf.float32)})
        if len(out) != 1:
            raise ValueError(f"feature model: expected one output, got {sorted(out)}")
        return next(iter(out.values())).numpy()

"""Per-window feature maps f: R^480 → R^d averaged over the windows of Eq. 4 (App. B.1)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from tts_gan import metrics


class WindowedExtractor:
    """DS(a) = mean over the 199 windows (w = 480, hop 240) of a 2-s clip of ``f(window)``."""

    comparable_with_paper = False

    def __init__(self, fmap: metrics.FeatureMap, name: str, dim: int, source: str = "",
                 batch_windows: int = 4096) -> None:
        self.fmap, self.name, self._dim, self.source = fmap, name, dim, source
        self.batch_windows = batch_windows

    @property
    def dim(self) -> int:
        return self._dim

    def check_clip(self, samples: int) -> None:
        if samples < metrics.WINDOW:
            raise ValueError(f"{self.name} features need clips of at least {metrics.WINDOW} "
                             f"samples (one 20-ms window), got {samples}")

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return metrics.ds_representation(audio, self.fmap, self.batch_windows)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "windows": "Eq. 4: w=480, hop 240",
                "source": self.source or type(self.fmap).__name__,
                "network": None if self.name == "logmel" else "user SavedModel"}


class LogMelFeatures:
    """Weight-free, hand-made f: log energies of ``n_mels`` mel bands of each 20-ms window
    (Hann window, 24 kHz). Not a speech network: its distances are FD-logmel etc."""

    def __init__(self, n_mels: int = 80, sample_rate: int = 24000):
        import librosa

        self.window = np.hanning(metrics.WINDOW).astype(np.float32)
        self.mel = librosa.filters.mel(sr=sample_rate, n_fft=metrics.WINDOW,
                                       n_mels=n_mels).astype(np.float32)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        spec = np.abs(np.fft.rfft(windows * self.window, axis=-1)) ** 2
        return np.log(spec @ self.mel.T + 1e-6)


class SavedModelFeatures:
    """f from a TF SavedModel whose default signature maps float32 ``[n, 480]`` windows of
    24-kHz audio to ``[n, d]`` features."""

    def __init__(self, path: str, signature: str = "serving_default"):
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"feature model {path}: no such SavedModel directory")
        loaded = tf.saved_model.load(path)
        if signature not in loaded.signatures:
            raise ValueError(f"feature model {path}: no signature {signature!r} "
                             f"(has {sorted(loaded.signatures)})")
        self.path = path
        self._loaded = loaded
        self._fn = loaded.signatures[signature]
        (self._input,) = self._fn.structured_input_signature[1].keys()
        self.dim = int(self(np.zeros((1, metrics.WINDOW), np.float32)).shape[1])

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = self._fn(**{self._input: tf.constant(windows, tf.float32)})
        if len(out) != 1:
            raise ValueError(f"feature model {self.path}: expected one output, got {sorted(out)}")
        return next(iter(out.values())).numpy()


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file (identifies the model that produced the features)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def package_dir(name: str) -> str:
    """Directory of an importable package without importing it; ImportError if missing."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the {name!r} package is not installed (pip install -e '.[eval]')")
    return os.path.abspath(list(spec.submodule_search_locations)[0])

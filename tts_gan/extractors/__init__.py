"""Feature extractors for the speech distances (App. B.1): audio clips → one vector per clip.

Every extractor maps a batch of linear-PCM clips at 24 kHz, ``[B, samples]`` in [-1, 1], to
``[B, dim]`` float64 representations DS(a) (Eq. 4's average over the clip) and is built by
:func:`make` from a ``--features`` spec:

``default`` = ``dnsmos``
    The time- and band-averaged last convolutional layer (64 channels) of Microsoft's DNSMOS
    P.808 network, the ONNX model that ships inside the ``speechmos`` PyPI package (no
    download; :mod:`tts_gan.extractors.dnsmos`). A real pre-trained speech network that runs
    offline: what CI and ``make demo`` use. Its numbers are **not** comparable with the paper's.
``deepspeech2:CKPT``
    The paper's f: OpenSeq2Seq's DeepSpeech2 (ds2_large) encoder up to
    ``ForwardPass/ds2_encoder/Reshape_2:0`` (1600 dims), ported to Keras, weights read from the
    public checkpoint at CKPT (:mod:`tts_gan.extractors.deepspeech2`). Only these are FDSD etc.
``logmel``
    Log energies of 80 mel bands of each 20-ms window of Eq. 4, averaged: a hand-made feature,
    not a network (kept as an explicitly named option).
``savedmodel:PATH``
    Any SavedModel mapping float32 ``[n, 480]`` windows of 24-kHz audio to ``[n, d]``,
    averaged over the 199 windows of Eq. 4.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

DEFAULT = "dnsmos"
SAMPLE_RATE = 24000  # the clips' rate (§3.1)


class Extractor(Protocol):
    """What the evaluation needs of a feature extractor."""

    name: str  # short name, used in metric keys
    comparable_with_paper: bool  # True only for DeepSpeech2 with the paper's checkpoint

    @property
    def dim(self) -> int: ...

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """``[B, samples]`` float audio at 24 kHz → ``[B, dim]`` float64."""

    def check_clip(self, samples: int) -> None:
        """ValueError naming the problem if clips of ``samples`` samples cannot be used."""

    def identity(self) -> dict[str, Any]:
        """What produced the features (model file, hash, layer, versions), for the report."""


def metric_names(name: str) -> tuple[str, str, str, str]:
    """(F, cF, K, cK) keys for an extractor name: FDSD etc. only for DeepSpeech2 features (the
    paper's names); ``FD-<name>`` etc. otherwise, so those are never mistaken for them."""
    if name == "deepspeech2":
        return "FDSD", "cFDSD", "KDSD", "cKDSD"
    return f"FD-{name}", f"cFD-{name}", f"KD-{name}", f"cKD-{name}"


def make(spec: str, **options: Any) -> Extractor:
    """The extractor of a ``--features`` spec (see the module docstring); ValueError if
    unknown. ``options``: ``threads`` (ONNX intra-op threads), ``ds2_input`` ("clip" or
    "window", see :mod:`tts_gan.extractors.deepspeech2`)."""
    spec = spec.strip()
    if spec in ("default", "dnsmos"):
        from tts_gan.extractors.dnsmos import DnsmosEmbedding

        return DnsmosEmbedding(threads=options.get("threads", 0))
    if spec == "logmel":
        from tts_gan.extractors.windowed import LogMelFeatures, WindowedExtractor

        return WindowedExtractor(LogMelFeatures(), "logmel", 80)
    if spec.startswith("deepspeech2:"):
        from tts_gan.extractors.deepspeech2 import DeepSpeech2Features

        return DeepSpeech2Features(spec.split(":", 1)[1],
                                   input_mode=options.get("ds2_input", "clip"))
    if spec.startswith("savedmodel:"):
        from tts_gan.extractors.windowed import SavedModelFeatures, WindowedExtractor

        fmap = SavedModelFeatures(spec.split(":", 1)[1])
        return WindowedExtractor(fmap, "savedmodel", fmap.dim, fmap.path)
    raise ValueError(f"--features={spec!r}: expected 'default', 'dnsmos', 'logmel', "
                     "'deepspeech2:CHECKPOINT' or 'savedmodel:PATH'")


def resample_clips(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``[B, n]`` clips resampled with soxr (HQ; each clip is a channel): ``[B, m]`` float32."""
    import soxr

    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2:
        raise ValueError(f"audio: expected [batch, samples], got {audio.shape}")
    if rate_in == rate_out:
        return audio
    return np.ascontiguousarray(soxr.resample(audio.T, rate_in, rate_out).T, np.float32)

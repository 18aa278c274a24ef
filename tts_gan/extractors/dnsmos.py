"""The default extractor: an internal embedding of DNSMOS P.808, a real pre-trained speech
quality network that ships inside the ``speechmos`` PyPI package (no download, offline).

Network: ``speechmos/dnsmos_models/model_v8.onnx`` (Microsoft DNS Challenge's P.808 MOS
predictor, trained on human ratings of speech). Its input is speechmos's own feature: the
120-band log-mel spectrogram of 16-kHz audio (n_fft 321, hop 160 = 10 ms), in dB below the
clip's maximum, floored at −80 dB and mapped by (x + 40) / 40. Five 3×3 conv layers with
three 2×2 max-pools follow, then a global max-pool and a dense MOS head.

Embedding: the last conv layer's ReLU output (``mos_estimator_small_1/conv2d_9/Relu:0``, 64
channels × T/8 frames × 15 bands) averaged over time and bands → 64 dims: like DS2's Reshape_2
(App. B.1) it is the network's deepest frame-level representation averaged over the clip.
The 2-s clip is resampled 24 → 16 kHz (soxr) and goes through the network whole: its 8-frame
pooling (80 ms) does not fit a single 20-ms window of Eq. 4. Of four layers compared on the
demo corpus's 2-s windows (``benchmarks/eval_extractor_layers.py``; RESULTS.md) this one has no
dead units and separates white noise at −40 dBFS (364× the real-vs-real Fréchet distance) and
the two voices (21× the within-voice distance) most; the penultimate dense layer reacts more to
7-bit quantisation (98× vs 34×) and a 4-kHz low-pass (31× vs 12×) but 37 of its 64 units are
dead and it separates the voices less (7×).

The ONNX graph is edited in memory with the ``onnx`` package: the input's 900-frame time axis
(speechmos's 9.01-s segments) is made symbolic — the network is convolutional up to its global
pooling — and the embedding is added as a graph output. The P.808 MOS output is unchanged; with
speechmos's 9.01-s input it reproduces ``speechmos.dnsmos.run``'s ``p808_mos`` (tested).
Distances on this embedding are labelled FD-dnsmos etc.: they are **not** comparable with the
paper's DeepSpeech2 distances.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tts_gan.extractors import SAMPLE_RATE, resample_clips
from tts_gan.extractors.windowed import file_sha256, package_dir, package_version

RATE = 16000  # DNSMOS's input rate
N_FFT, HOP, N_MELS = 321, 160, 120  # speechmos.dnsmos.DNSMOS.audio_melspec
MODEL_FILE = os.path.join("dnsmos_models", "model_v8.onnx")
INPUT = "input_1"
MOS_OUTPUT = "Identity:0"
EMBEDDING = "mos_estimator_small_1/conv2d_9/Relu:0"
POOLS = 3  # 2×2 max-pools on the time axis before EMBEDDING


def log_mel(x16k: np.ndarray) -> np.ndarray:
    """speechmos's P.808 input for each clip of ``x16k [B, n]``: ``[B, frames, 120]`` float32,
    ``(power_to_db(mel, ref=max of the clip, top_db=80) + 40) / 40``."""
    import librosa

    x = np.asarray(x16k, np.float32)
    mel = librosa.feature.melspectrogram(y=x, sr=RATE, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=N_MELS)  # [B, 120, frames], power
    amin = 1e-10
    ref = np.maximum(mel.max(axis=(-2, -1), keepdims=True), amin)
    db = 10.0 * np.log10(np.maximum(mel, amin)) - 10.0 * np.log10(ref)
    db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - 80.0)
    return np.ascontiguousarray(((db + 40.0) / 40.0).transpose(0, 2, 1), np.float32)


def frames_for(samples_16k: int) -> int:
    """Mel frames of ``samples_16k`` samples (librosa, centred)."""
    return 1 + samples_16k // HOP


class DnsmosEmbedding:
    """The default extractor (module docstring): ``[B, samples]`` at 24 kHz → ``[B, 64]``."""

    name = "dnsmos"
    comparable_with_paper = False

    def __init__(self, threads: int = 0) -> None:
        try:
            import onnx
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError(f"the default extractor needs onnx and onnxruntime ({e}); "
                              "pip install -e '.[eval]'") from None
        self.path = os.path.join(package_dir("speechmos"), MODEL_FILE)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{self.path}: missing; the speechmos package ships it "
                                    "(speechmos==0.0.1.1)")
        model = onnx.load(self.path)
        names = {o for n in model.graph.node for o in n.output}
        if EMBEDDING not in names or model.graph.input[0].name != INPUT:
            raise ValueError(f"{self.path}: not the expected DNSMOS P.808 graph (no tensor "
                             f"{EMBEDDING!r}); speechmos==0.0.1.1 ships it")
        time_dim = model.graph.input[0].type.tensor_type.shape.dim[1]
        time_dim.ClearField("dim_value")
        time_dim.dim_param = "frames"
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, None))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), opts,
                                            providers=["CPUExecutionProvider"])
        self.sha256 = file_sha256(self.path)

    @property
    def dim(self) -> int:
        return 64

    def check_clip(self, samples: int) -> None:
        need = int(np.ceil((2**POOLS - 1) * HOP * SAMPLE_RATE / RATE))
        if frames_for(int(samples * RATE / SAMPLE_RATE)) < 2**POOLS:
            raise ValueError(f"the dnsmos extractor needs clips of at least {need} samples "
                             f"at 24 kHz (8 mel frames), got {samples}")

    def run(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embedding ``[B, 64]`` float64, P.808 network output ``[B]``) of 24-kHz clips."""
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 2:
            raise ValueError(f"audio: expected [batch, samples], got {audio.shape}")
        self.check_clip(audio.shape[1])
        feats = log_mel(np.clip(resample_clips(audio, SAMPLE_RATE, RATE), -1.0, 1.0))
        return self.run_features(feats)

    def run_features(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network on prepared log-mel input ``[B, frames, 120]``."""
        mos, emb = self.session.run([MOS_OUTPUT, EMBEDDING], {INPUT: feats})
        return emb.mean(axis=(2, 3), dtype=np.float64), mos[:, 0].astype(np.float64)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.run(audio)[0]

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "network": "DNSMOS P.808 (speechmos "
                f"{package_version('speechmos')}, onnxruntime {package_version('onnxruntime')})",
                "model_file": self.path, "model_sha256": self.sha256,
                "layer": EMBEDDING + ", mean over time and mel bands",
                "input": "whole clip, soxr 24→16 kHz, speechmos log-mel (120 bands, 10-ms hop)"}

"""The paper's feature map f (App. B.1): OpenSeq2Seq's DeepSpeech2 encoder, ported to Keras.

ds2_large (``example_configs/speech2text/ds2_large_8gpus_mp.py`` of NVIDIA/OpenSeq2Seq, the
checkpoint the authors' DeepSpeechDistances code loads): a 160-bin log-power spectrogram of
16-kHz audio (20-ms Hann windows every 10 ms), conv 11×41 stride 2×2 and conv 11×21 stride 1×2
(32 channels, SAME, no bias, batch norm ε = 1e-3, ReLU), 5 bidirectional GRU layers of 800
units (CuDNN GRU), a 1600-unit ReLU layer: its output, ``ForwardPass/ds2_encoder/Reshape_2:0``
[B, T/2, 1600], is the paper's feature.

Preprocessing (:func:`speech_features`) follows the released DeepSpeechDistances
``preprocessing.py`` (from OpenSeq2Seq's ``speech_utils``): the clip is peak-normalised, padded
so its frame count is a multiple of 8, framed (320 / 160 samples, ``np.hanning``), the log
power spectrum 10 log10(|rfft|² / 320) (floored at 1e-30) keeps the lowest 160 of 161 bins and
is standardised over the whole clip, then rounded to float16 as the data layer feeds it. Their
resampling is resampy ``kaiser_best``; ours is soxr HQ (the difference is below 16-bit level).
The network runs in float32 here (the checkpoint's mixed-precision graph ran float16).

Eq. 4's 199 windows of 480 samples every 240 at 24 kHz are exactly the 199 spectrogram frames
(320 every 160 at 16 kHz) of a 2-s clip. ``input_mode="clip"`` (default) runs them as one
sequence and averages the encoder's output over time, as the released code does (whole clip,
``values.mean(axis=1)``); ``"window"`` reads Eq. 4 literally: each 20-ms window through the
preprocessing and network alone (padded to 8 frames by the data layer's rule), its output
averaged, then averaged over the 199 windows.

The checkpoint (TF1, variables under ``ForwardPass/ds2_encoder``) stores the GRU in the
CuDNN-compatible canonical layout that ``CudnnGRUSaveable`` writes: per layer and direction
``gates/kernel`` [input + 800, 1600] (columns: reset | update, rows: input | hidden),
``gates/bias`` (the sum of cuDNN's input and recurrent gate biases), and ``candidate/
{input,hidden}_projection/{kernel,bias}``; the candidate is tanh(W x + b_W + r ⊙ (R h + b_R)),
h' = (1 − u) h̃ + u h — Keras' GRU with ``reset_after=True`` (gates z, r, h). The names and
the layout were read from the meta graph the DeepSpeechDistances repository ships
(``checkpoint/collection-stripped-meta.meta``; BUILD_NOTES.md).
:func:`load_openseq2seq_checkpoint` maps them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from tts_gan.extractors import SAMPLE_RATE, resample_clips

RATE = 16000
WINDOW = 320  # 20 ms at 16 kHz
STRIDE = 160  # 10 ms
PAD_TO = 8  # the data layer pads the frame count to a multiple of 8
SCOPE = "ForwardPass/ds2_encoder"
GRU_CELL = "cudnn_gru/stack_bidirectional_rnn/cell_{i}/bidirectional_rnn/{d}/" \
           "cudnn_compatible_gru_cell"


@dataclasses.dataclass(frozen=True)
class DS2Config:
    """DeepSpeech2 encoder hyper-parameters; conv layers as (k_time, k_freq, s_time, s_freq,
    channels)."""

    num_audio_features: int = 160
    conv_layers: tuple[tuple[int, int, int, int, int], ...] = (
        (11, 41, 2, 2, 32), (11, 21, 1, 2, 32))
    num_rnn_layers: int = 5
    rnn_cell_dim: int = 800
    n_hidden: int = 1600
    bn_epsilon: float = 1e-3

    def conv_output(self) -> tuple[int, int]:
        """(frequency bins, channels) after the convs (SAME padding: ceil(F / stride))."""
        f = self.num_audio_features
        for _, _, _, sf, _ in self.conv_layers:
            f = -(-f // sf)
        return f, self.conv_layers[-1][4]


DS2_LARGE = DS2Config()


# ------------------------------------------------------------------------------ model
def build_encoder(cfg: DS2Config = DS2_LARGE):
    """The encoder as a Keras model: spectrogram ``[B, T, F]`` → ``[B, ceil(T / s), n_hidden]``
    (OpenSeq2Seq's ``Reshape_2``), variables built."""
    import keras

    f_out, c_out = cfg.conv_output()
    inp = keras.Input((None, cfg.num_audio_features), name="spectrogram")
    x = keras.layers.Reshape((-1, cfg.num_audio_features, 1), name="expand")(inp)
    for i, (kt, kf, st, sf, ch) in enumerate(cfg.conv_layers, start=1):
        x = keras.layers.Conv2D(ch, (kt, kf), strides=(st, sf), padding="same",
                                use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(epsilon=cfg.bn_epsilon, name=f"conv{i}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
    x = keras.layers.Reshape((-1, f_out * c_out), name="reshape")(x)
    for i in range(cfg.num_rnn_layers):
        x = keras.layers.Bidirectional(
            keras.layers.GRU(cfg.rnn_cell_dim, return_sequences=True, reset_after=True),
            merge_mode="concat", name=f"bigru{i}")(x)
    out = keras.layers.Dense(cfg.n_hidden, activation="relu", name="fully_connected")(x)
    return keras.Model(inp, out, name="ds2_encoder")


def checkpoint_shapes(cfg: DS2Config = DS2_LARGE) -> dict[str, tuple[int, ...]]:
    """Every encoder variable the loader reads: OpenSeq2Seq name → shape."""
    out: dict[str, tuple[int, ...]] = {}
    cin = 1
    for i, (kt, kf, _, _, ch) in enumerate(cfg.conv_layers, start=1):
        out[f"{SCOPE}/conv{i}/kernel"] = (kt, kf, cin, ch)
        for v in ("gamma", "beta", "moving_mean", "moving_variance"):
            out[f"{SCOPE}/conv{i}/bn/{v}"] = (ch,)
        cin = ch
    f_out, c_out = cfg.conv_output()
    h = cfg.rnn_cell_dim
    for i in range(cfg.num_rnn_layers):
        width = f_out * c_out if i == 0 else 2 * h
        for d in ("fw", "bw"):
            cell = f"{SCOPE}/{GRU_CELL.format(i=i, d=d)}"
            out[f"{cell}/gates/kernel"] = (width + h, 2 * h)
            out[f"{cell}/gates/bias"] = (2 * h,)
            out[f"{cell}/candidate/input_projection/kernel"] = (width, h)
            out[f"{cell}/candidate/input_projection/bias"] = (h,)
            out[f"{cell}/candidate/hidden_projection/kernel"] = (h, h)
            out[f"{cell}/candidate/hidden_projection/bias"] = (h,)
    out[f"{SCOPE}/fully_connected/kernel"] = (2 * h, cfg.n_hidden)
    out[f"{SCOPE}/fully_connected/bias"] = (cfg.n_hidden,)
    return out


def gru_from_canonical(gates_kernel: np.ndarray, gates_bias: np.ndarray,
                       input_kernel: np.ndarray, input_bias: np.ndarray,
                       hidden_kernel: np.ndarray, hidden_bias: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CuDNN-compatible canonical GRU weights → Keras GRU (reset_after) ``kernel`` [in, 3h],
    ``recurrent_kernel`` [h, 3h], ``bias`` [2, 3h] with Keras' gate order (z, r, h)."""
    h = hidden_kernel.shape[0]
    width = input_kernel.shape[0]
    reset, update = gates_kernel[:, :h], gates_kernel[:, h:]
    kernel = np.concatenate([update[:width], reset[:width], input_kernel], axis=1)
    recurrent = np.concatenate([update[width:], reset[width:], hidden_kernel], axis=1)
    bias = np.stack([np.concatenate([gates_bias[h:], gates_bias[:h], input_bias]),
                     np.concatenate([np.zeros(2 * h, gates_bias.dtype), hidden_bias])])
    return kernel, recurrent, bias


def read_openseq2seq_checkpoint(path: str, cfg: DS2Config = DS2_LARGE) -> dict[str, np.ndarray]:
    """The ds2_encoder variables of an OpenSeq2Seq checkpoint (``path``: its prefix, e.g.
    ``ds2_large/model.ckpt-54800``, or a directory with a ``checkpoint`` file) as float32;
    ValueError naming the first missing or mis-shaped variable."""
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if not prefix:
        raise ValueError(f"{path}: no checkpoint in this directory (expected e.g. "
                         "ds2_large/model.ckpt-54800.index)")
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(f"{path}: not a readable TensorFlow checkpoint "
                         f"({str(e).splitlines()[0]})") from None
    have = reader.get_variable_to_shape_map()
    shapes = checkpoint_shapes(cfg)
    for name, shape in shapes.items():  # all checked before any is read
        if name not in have:
            raise ValueError(f"{prefix}: no variable {name} (expected the OpenSeq2Seq "
                             "DeepSpeech2 ds2_large checkpoint)")
        if tuple(have[name]) != shape:
            raise ValueError(f"{prefix}: {name} has shape {tuple(have[name])}, the ds2 "
                             f"encoder expects {shape}")
    return {name: np.asarray(reader.get_tensor(name), np.float32)  # fp16 in the original
            for name in shapes}


def assign_checkpoint(model, values: dict[str, np.ndarray], cfg: DS2Config = DS2_LARGE
                      ) -> None:
    """Sets a :func:`build_encoder` model's weights from :func:`read_openseq2seq_checkpoint`."""
    for i in range(1, len(cfg.conv_layers) + 1):
        model.get_layer(f"conv{i}").set_weights([values[f"{SCOPE}/conv{i}/kernel"]])
        model.get_layer(f"conv{i}_bn").set_weights(
            [values[f"{SCOPE}/conv{i}/bn/{v}"]
             for v in ("gamma", "beta", "moving_mean", "moving_variance")])
    for i in range(cfg.num_rnn_layers):
        layer = model.get_layer(f"bigru{i}")
        for d, gru in (("fw", layer.forward_layer), ("bw", layer.backward_layer)):
            cell = f"{SCOPE}/{GRU_CELL.format(i=i, d=d)}"
            kernel, recurrent, bias = gru_from_canonical(*(values[f"{cell}/{v}"] for v in (
                "gates/kernel", "gates/bias", "candidate/input_projection/kernel",
                "candidate/input_projection/bias", "candidate/hidden_projection/kernel",
                "candidate/hidden_projection/bias")))
            gru.cell.kernel.assign(kernel)
            gru.cell.recurrent_kernel.assign(recurrent)
            gru.cell.bias.assign(bias)
    model.get_layer("fully_connected").set_weights(
        [values[f"{SCOPE}/fully_connected/kernel"], values[f"{SCOPE}/fully_connected/bias"]])


def load_openseq2seq_checkpoint(model, path: str, cfg: DS2Config = DS2_LARGE) -> None:
    """Reads and checks (:func:`read_openseq2seq_checkpoint`) then assigns the checkpoint."""
    assign_checkpoint(model, read_openseq2seq_checkpoint(path, cfg), cfg)


# ------------------------------------------------------------------------------ preprocessing
def speech_features(x16k: np.ndarray, num_features: int = 160) -> np.ndarray:
    """OpenSeq2Seq's spectrogram of each clip of ``x16k [B, n]`` (see the module docstring):
    ``[B, frames, num_features]`` float32 holding float16 values."""
    x = np.asarray(x16k, np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"audio: expected [batch, samples], got {x.shape}")
    x = x / (np.max(np.abs(x), axis=1, keepdims=True) + 1e-5)
    n = x.shape[1]
    length = 1 + int(np.ceil((n - WINDOW) / STRIDE))
    if length % PAD_TO:
        n += (PAD_TO - length % PAD_TO) * STRIDE
    frames = 1 if n <= WINDOW else 1 + int(np.ceil((n - WINDOW) / STRIDE))
    padded = np.zeros((x.shape[0], (frames - 1) * STRIDE + WINDOW))
    padded[:, :x.shape[1]] = x
    windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW, axis=1)[:, ::STRIDE]
    power = np.abs(np.fft.rfft(windows * np.hanning(WINDOW), WINDOW, axis=-1)) ** 2 / WINDOW
    logp = 10.0 * np.log10(np.maximum(power, 1e-30))
    logp = logp - logp.max(axis=(1, 2), keepdims=True)
    feats = logp[..., :num_features]
    mean = feats.mean(axis=(1, 2), keepdims=True)
    std = feats.std(axis=(1, 2), keepdims=True)
    feats = (feats - mean) / np.maximum(std, 1e-12)  # guard: a silent clip has std 0
    return feats.astype(np.float16).astype(np.float32)


# ------------------------------------------------------------------------------ extractor
class DeepSpeech2Features:
    """DS(a) with the DeepSpeech2 encoder (module docstring): ``[B, n]`` at 24 kHz → 1600."""

    name = "deepspeech2"

    def __init__(self, checkpoint: str, input_mode: str = "clip",
                 config: DS2Config = DS2_LARGE, windows_per_call: int = 512) -> None:
        import tensorflow as tf

        if input_mode not in ("clip", "window"):
            raise ValueError(f"--ds2_input={input_mode!r}: expected 'clip' or 'window'")
        if not checkpoint:
            raise ValueError("--features=deepspeech2:CHECKPOINT needs the checkpoint's path")
        self.checkpoint, self.input_mode, self.config = checkpoint, input_mode, config
        self.windows_per_call = windows_per_call
        values = read_openseq2seq_checkpoint(checkpoint, config)  # fails fast, before building
        self.model = build_encoder(config)
        assign_checkpoint(self.model, values, config)
        self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        # Only the real ds2_large checkpoint's features are the paper's (FDSD etc.).
        self.comparable_with_paper = config == DS2_LARGE

    @property
    def dim(self) -> int:
        return self.config.n_hidden

    def check_clip(self, samples: int) -> None:
        if samples * RATE / SAMPLE_RATE < WINDOW:
            raise ValueError(f"deepspeech2 features need clips of at least "
                             f"{WINDOW * SAMPLE_RATE // RATE} samples at 24 kHz, got {samples}")

    def encode(self, spectrogram: np.ndarray) -> np.ndarray:
        """Encoder output ``[B, T', n_hidden]`` of spectrograms ``[B, T, F]``."""
        return self._fn(np.asarray(spectrogram, np.float32)).numpy()

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, np.float32)
        self.check_clip(audio.shape[1])
        x16 = resample_clips(audio, SAMPLE_RATE, RATE)
        if self.input_mode == "clip":
            return self.encode(speech_features(x16, self.config.num_audio_features)).mean(
                axis=1, dtype=np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(x16, WINDOW, axis=1)[:, ::STRIDE]
        b, w = windows.shape[:2]
        flat = windows.reshape(b * w, WINDOW)
        out = np.concatenate([
            self.encode(speech_features(flat[i:i + self.windows_per_call],
                                        self.config.num_audio_features)).mean(axis=1)
            for i in range(0, len(flat), self.windows_per_call)])
        return out.reshape(b, w, -1).mean(axis=1, dtype=np.float64)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "checkpoint": self.checkpoint,
                "network": "DeepSpeech2 ds2_large (OpenSeq2Seq), Keras port"
                if self.comparable_with_paper else f"DeepSpeech2 encoder {self.config}",
                "layer": f"{SCOPE}/Reshape_2:0, mean over time",
                "input": f"{self.input_mode}: 24→16 kHz (soxr), 160-bin log-power "
                         "spectrogram, 20-ms windows every 10 ms"}

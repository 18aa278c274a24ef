"""HiFi-GAN's generator (Kong et al. 2020, "HiFi-GAN: Generative Adversarial Networks for
Efficient and High Fidelity Speech Synthesis", §2.1 and App. A) in Keras, as a speed reference
for ``benchmarks/bench.py``: the architecture of the released configs V1 and V3 with random
weights. A measuring instrument, not part of the package; weight normalisation is folded into
the weights (it is at inference).

Channels-last: mel ``[B, frames, 80]`` → waveform ``[B, frames·256]`` (22.05 kHz, hop 256).
The paper's Table 1 gives the parameter counts that ``tests/bench_test.py`` checks: V1 13.92 M,
V3 1.46 M.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

LRELU_SLOPE = 0.1  # models.py: LRELU_SLOPE; the last activation uses PyTorch's default 0.01


@dataclass(frozen=True)
class HiFiGANConfig:
    """The generator fields of the released ``config_v1.json`` / ``config_v3.json``."""

    resblock: str  # "1": two convs per dilation (V1, V2); "2": one conv per dilation (V3)
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    num_mels: int = 80

    @property
    def hop(self) -> int:
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


V1 = HiFiGANConfig("1", (8, 8, 2, 2), (16, 16, 4, 4), 512, (3, 7, 11),
                   ((1, 3, 5), (1, 3, 5), (1, 3, 5)))
V3 = HiFiGANConfig("2", (8, 8, 4), (16, 16, 8), 256, (3, 5, 7), ((1, 2), (2, 6), (3, 12)))
PAPER_PARAMS = {"V1": 13.92e6, "V3": 1.46e6}  # HiFi-GAN Table 1


def _conv(channels: int, kernel: int, dilation: int = 1) -> keras.layers.Conv1D:
    return keras.layers.Conv1D(channels, kernel, dilation_rate=dilation, padding="same")


class MRFResBlock(keras.layers.Layer):
    """ResBlock1 (V1: per dilation, lrelu → dilated conv → lrelu → conv, plus the input) or
    ResBlock2 (V3: per dilation, lrelu → dilated conv, plus the input)."""

    def __init__(self, kind: str, channels: int, kernel: int, dilations: tuple[int, ...],
                 **kwargs):
        super().__init__(**kwargs)
        self.first = [_conv(channels, kernel, d) for d in dilations]
        self.second = [_conv(channels, kernel) for _ in dilations] if kind == "1" else None

    def call(self, x: tf.Tensor) -> tf.Tensor:
        for i, conv in enumerate(self.first):
            h = conv(tf.nn.leaky_relu(x, LRELU_SLOPE))
            if self.second is not None:
                h = self.second[i](tf.nn.leaky_relu(h, LRELU_SLOPE))
            x = x + h
        return x


class HiFiGANGenerator(keras.Model):
    """conv_pre → per upsampling: lrelu, transposed conv, mean of the multi-receptive-field
    fusion resblocks → lrelu(0.01) → conv_post → tanh (models.py ``Generator``)."""

    def __init__(self, cfg: HiFiGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        ch = cfg.upsample_initial_channel
        self.pre = _conv(ch, 7)
        self.ups, self.blocks = [], []
        stages = zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)
        for i, (rate, kernel) in enumerate(stages):
            ch = cfg.upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(keras.layers.Conv1DTranspose(ch, kernel, strides=rate,
                                                         padding="same"))
            mrf = zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True)
            self.blocks.append([MRFResBlock(cfg.resblock, ch, k, d) for k, d in mrf])
        self.post = _conv(1, 7)

    def call(self, mel: tf.Tensor) -> tf.Tensor:
        x = self.pre(mel)
        for up, blocks in zip(self.ups, self.blocks, strict=True):
            x = up(tf.nn.leaky_relu(x, LRELU_SLOPE))
            x = tf.add_n([b(x) for b in blocks]) / float(len(blocks))
        return tf.tanh(self.post(tf.nn.leaky_relu(x, 0.01)))[..., 0]


def build(cfg: HiFiGANConfig, frames: int = 8) -> HiFiGANGenerator:
    """The generator with its weights created (random, Keras' default initialisers)."""
    gen = HiFiGANGenerator(cfg)
    gen(tf.zeros([1, frames, cfg.num_mels]))
    return gen


def macs_per_sample(cfg: HiFiGANConfig) -> float:
    """Multiply-accumulates per output sample, counted from the architecture: every conv costs
    kernel·C_in·C_out per output position; a transposed conv with stride s costs
    kernel·C_in·C_out per *input* position, i.e. /s per output position."""
    hop, ch = cfg.hop, cfg.upsample_initial_channel
    rate = 1  # output positions per frame at the current stage
    macs = 7 * cfg.num_mels * ch  # conv_pre, per frame
    for i, (r, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)):
        out = cfg.upsample_initial_channel // 2 ** (i + 1)
        macs += rate * k * ch * out  # transposed conv: per input position
        rate *= r
        convs_per_block = 2 if cfg.resblock == "1" else 1
        for kk, dils in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
            macs += rate * convs_per_block * len(dils) * kk * out * out
        ch = out
    macs += rate * 7 * ch  # conv_post
    return macs / hop

"""The GAN-TTS generator: Table 2 (App. A.2), GBlocks of Fig. 1a (§3.2), masking of App. A.1.

Table 2 (paper size, t/ch are the *output* of each layer; 400 frames = 2 s):

    ====================================  =====  ======  ====
    layer                                 t      freq.   ch
    ====================================  =====  ======  ====
    linguistic features, z                400    200Hz   567
    conv, kernel size 3                   400    200Hz   768
    GBlock                                400    200Hz   768
    GBlock                                400    200Hz   768
    GBlock, upsample ×2                   800    400Hz   384
    GBlock, upsample ×2                   1600   800Hz   384
    GBlock, upsample ×2                   3200   1600Hz  384
    GBlock, upsample ×3                   9600   4800Hz  192
    GBlock, upsample ×5                   48000  24kHz   96
    conv, kernel size 3                   48000  24kHz   1
    Tanh
    ====================================  =====  ======  ====

A GBlock (Fig. 1a) is two residual blocks. First: CBN → ReLU → upsample → conv(k3, d1) →
CBN → ReLU → conv(k3, d2), with a skip of upsample → conv(k1) (the 1×1 conv only when the
channel count changes). Second: CBN → ReLU → conv(k3, d4) → CBN → ReLU → conv(k3, d8), identity
skip. Every CBN has its own linear embedding of z (⊕ one-hot speaker). Upsampling is
nearest-neighbour. Every convolution's input is multiplied by the length mask at its rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import keras
import tensorflow as tf

from tts_gan import mulaw, ops
from tts_gan.excitation import (  # the conditioning's sines (also imported from here)
    ExcitationSpec,
    excitation_phase,
    excitation_spec,
    sine_excitation,
)
from tts_gan.harmonic_noise import (
    HarmonicNoiseSpec,
    noise_from_z,
    noise_table,
    remove_dc,
    synthesize,
)
from tts_gan.layers import (
    CheckpointListsMixin,
    ConditionalBatchNorm,
    MaskedSyncBatchNorm,
    SNConv1D,
    SNDense,
)

# (output channels, upsample factor) of the seven GBlocks of Table 2.
TABLE2_BLOCKS: tuple[tuple[int, int], ...] = (
    (768, 1), (768, 1), (384, 2), (384, 2), (384, 2), (192, 3), (96, 5))
TABLE2_INPUT_CHANNELS = 768
GBLOCK_DILATIONS: tuple[int, ...] = (1, 2, 4, 8)
PAPER_MACS_PER_SAMPLE = 0.638e6  # §5.2, "0.638 MFLOP/sample"
PAPER_NUM_LAYERS = 30  # App. A.2


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of the network: its shape and its time resolution."""

    name: str
    kernel_size: int
    dilation: int
    in_channels: int
    out_channels: int
    steps_per_frame: int  # time steps of this conv's input/output per feature frame

    @property
    def macs_per_frame(self) -> int:
        return self.kernel_size * self.in_channels * self.out_channels * self.steps_per_frame

    @property
    def receptive_field_frames(self) -> float:
        """Growth of the receptive field, in feature frames, contributed by this conv."""
        return (self.kernel_size - 1) * self.dilation / self.steps_per_frame


class GBlock(CheckpointListsMixin, keras.layers.Layer):
    """Fig. 1a: two residual blocks of CBN-ReLU-conv with dilations 1, 2 | 4, 8."""

    def __init__(self, in_channels: int, out_channels: int, upsample_factor: int, *,
                 kernel_size: int = 3, dilations: Sequence[int] = GBLOCK_DILATIONS,
                 spectral_norm: bool = True, bn_momentum: float = 0.99, bn_epsilon: float = 1e-4,
                 cross_replica_bn: bool = True, cond_dim: int | None = None,
                 excitation_channels: int = 0, **kwargs):
        super().__init__(**kwargs)
        if len(dilations) != 4:
            raise ValueError(f"GBlock needs 4 dilations (two residual blocks), got {dilations}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.upsample_factor = int(upsample_factor)
        self.cbns = [ConditionalBatchNorm(bn_momentum, bn_epsilon, spectral_norm,
                                          cross_replica_bn, cond_dim, name=f"cbn{i}")
                     for i in range(4)]
        self.convs = [SNConv1D(out_channels, kernel_size, d, spectral_norm=spectral_norm,
                               name=f"conv{i}") for i, d in enumerate(dilations)]
        self.skip = (SNConv1D(out_channels, 1, spectral_norm=spectral_norm, name="skip")
                     if in_channels != out_channels else None)
        self.excitation_channels = int(excitation_channels)
        self.exc_proj = (SNConv1D(out_channels, 1, spectral_norm=spectral_norm, name="exc_proj")
                         if excitation_channels else None)

    def build(self, input_shape):
        shape_in, shape_out = (None, None, self.in_channels), (None, None, self.out_channels)
        self.cbns[0].build(shape_in)
        self.convs[0].build(shape_in)
        for layer in (*self.cbns[1:], *self.convs[1:]):
            layer.build(shape_out)
        if self.skip is not None:
            self.skip.build(shape_in)
        if self.exc_proj is not None:
            self.exc_proj.build((None, None, self.excitation_channels))

    def call(self, x, cond, mask_in=None, mask_out=None, training=None, excitation=None):
        f = self.upsample_factor
        h = tf.nn.relu(self.cbns[0](x, cond, seq_mask=mask_in, training=training))
        h = self.convs[0](ops.upsample(h, f), seq_mask=mask_out, training=training)
        h = tf.nn.relu(self.cbns[1](h, cond, seq_mask=mask_out, training=training))
        h = self.convs[1](h, seq_mask=mask_out, training=training)
        # The 1×1 skip conv is pointwise, so it commutes with nearest-neighbour upsampling
        # (and mask_out is mask_in upsampled): applied before, at 1/f of the positions.
        skip = x if self.skip is None else self.skip(x, seq_mask=mask_in, training=training)
        skip = ops.upsample(skip, f)
        x = h + skip
        if self.exc_proj is not None:  # sine excitation at this rate (not in the paper)
            x = x + self.exc_proj(excitation, seq_mask=mask_out, training=training)
        h = tf.nn.relu(self.cbns[2](x, cond, seq_mask=mask_out, training=training))
        h = self.convs[2](h, seq_mask=mask_out, training=training)
        h = tf.nn.relu(self.cbns[3](h, cond, seq_mask=mask_out, training=training))
        h = self.convs[3](h, seq_mask=mask_out, training=training)
        return x + h

    def compute_output_shape(self, input_shape):
        t = None if input_shape[1] is None else input_shape[1] * self.upsample_factor
        return (input_shape[0], t, self.out_channels)


class Generator(CheckpointListsMixin, keras.Model):
    """Table-2 generator: features ``[B, T, D]`` at 200 Hz + z → µ-law waveform ``[B, 120·T, 1]``.

    ``lengths`` (valid frames per example) enables masked, variable-length batches (App. A.1):
    on the valid region the output equals that of each utterance alone (in inference mode).
    """

    def __init__(self, feature_dim: int = 567, *, noise_dim: int = 128, num_speakers: int = 1,
                 input_channels: int = TABLE2_INPUT_CHANNELS,
                 blocks: Sequence[Sequence[int]] = TABLE2_BLOCKS, kernel_size: int = 3,
                 dilations: Sequence[int] = GBLOCK_DILATIONS, spectral_norm: bool = True,
                 bn_momentum: float = 0.99, bn_epsilon: float = 1e-4,
                 cross_replica_bn: bool = True, excitation: ExcitationSpec | None = None,
                 output_mu: float = 0.0, stem_mel_bins: int = 0, stem_mel_after: int = 2,
                 harmonic_noise: HarmonicNoiseSpec | None = None, dc_block_frames: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        # 0: the paper (tanh output is the µ-law sample); > 0: tanh output is linear audio in
        # [-1, 1], µ-law encoded with this µ, so G's output contract (µ-law) stays the same.
        self.output_mu = float(output_mu)
        if self.output_mu < 0:
            raise ValueError(f"generator output_mu={output_mu}: expected 0 (the paper) or the "
                             "data's µ > 0")
        ops.check_positive_ints("generator.blocks", [v for b in blocks for v in b])
        self.excitation = excitation
        if excitation is not None:
            if not 0 < excitation.blocks <= len(blocks):
                raise ValueError(f"generator.excitation.blocks={excitation.blocks}: expected "
                                 f"1..{len(blocks)} (the number of GBlocks)")
            for name in ("lf0_index", "vuv_index"):
                if not 0 <= getattr(excitation, name) < int(feature_dim):
                    raise ValueError(f"generator.excitation.{name}="
                                     f"{getattr(excitation, name)} is not a feature column "
                                     f"(feature_dim {feature_dim})")
        self.feature_dim = int(feature_dim)
        self.noise_dim = int(noise_dim)
        self.num_speakers = int(num_speakers)
        self.blocks_spec = tuple((int(c), int(f)) for c, f in blocks)
        self.kernel_size = int(kernel_size)
        self.upsample_factors = tuple(f for _, f in self.blocks_spec)
        self.samples_per_frame = 1
        for f in self.upsample_factors:
            self.samples_per_frame *= f
        self.conv_in = SNConv1D(input_channels, kernel_size, spectral_norm=spectral_norm,
                                name="conv_in")
        self.gblocks = []
        channels = int(input_channels)
        first_exc = len(self.blocks_spec) - (excitation.blocks if excitation else 0)
        for i, (out_ch, factor) in enumerate(self.blocks_spec):
            self.gblocks.append(GBlock(channels, out_ch, factor, kernel_size=kernel_size,
                                       dilations=dilations, spectral_norm=spectral_norm,
                                       bn_momentum=bn_momentum, bn_epsilon=bn_epsilon,
                                       cross_replica_bn=cross_replica_bn,
                                       cond_dim=self.cond_dim, name=f"gblock{i + 1}",
                                       excitation_channels=(excitation.channels
                                                            if i >= first_exc else 0)))
            channels = out_ch
        self.conv_out = SNConv1D(1, kernel_size, spectral_norm=spectral_norm, name="conv_out")
        # Opt-in training head (not in the paper): a 1x1 projection of the 200 Hz hidden state
        # after GBlock ``stem_mel_after`` to a log-mel frame, supervised by the recording's
        # log-mel (train.aux.stem_mel_weight); unused at sampling time.
        self.stem_mel_bins, self.stem_mel_after = int(stem_mel_bins), int(stem_mel_after)
        self.stem_head = None
        if self.stem_mel_bins:
            self._check_frame_rate_block("stem_mel_after", self.stem_mel_after)
            self.stem_head = SNConv1D(self.stem_mel_bins, 1, spectral_norm=False,
                                      name="stem_mel_head")
        # Opt-in harmonic-plus-noise output (not in the paper; tts_gan/harmonic_noise.py): a
        # 1x1 head on the 200 Hz stem controls sines at k·F0 and filtered noise, added to the
        # upsampling stack's linear waveform.
        self.harmonic_noise = harmonic_noise
        # Opt-in (not in the paper): the last conv's output minus its slow trend before the
        # tanh (harmonic_noise.remove_dc over this many frames; 0 = off). The spectral losses
        # barely see 0 Hz, so without it a linear-output G drifts to a DC offset that
        # saturates the tanh (measured: mean ≈ ±0.94 in recipes 2–4, benchmarks/RESULTS.md).
        self.dc_block_frames = int(dc_block_frames)
        if self.dc_block_frames < 0 or (self.dc_block_frames and self.dc_block_frames % 2 == 0):
            raise ValueError(f"generator.dc_block_frames={dc_block_frames}: expected 0 (off) "
                             "or an odd number of frames")
        self.hn_head = None
        if harmonic_noise is not None:
            if excitation is None or self.output_mu <= 0:
                raise ValueError("generator.harmonic_noise needs generator.excitation (its F0 "
                                 "and V/UV columns) and generator.linear_output (it adds "
                                 "linear audio)")
            ops.check_positive_ints("generator.harmonic_noise harmonics/noise_bands",
                                    [harmonic_noise.harmonics, harmonic_noise.noise_bands - 1])
            self._check_frame_rate_block("harmonic_noise.after", harmonic_noise.after)
            self.hn_head = SNConv1D(harmonic_noise.controls, 1, spectral_norm=False,
                                    name="harmonic_noise_head")
            self._noise_table = noise_table()

    def _check_frame_rate_block(self, name: str, after: int) -> None:
        """A ValueError naming ``generator.<name>`` unless GBlock ``after`` (1-based; 0 = the
        input conv) still runs at the 200 Hz frame rate."""
        rates = [1]
        for f in self.upsample_factors:
            rates.append(rates[-1] * f)
        if not 0 <= after <= len(self.blocks_spec) or rates[after] != 1:
            raise ValueError(f"generator.{name}={after}: expected a GBlock (1-based; 0 = the "
                             "input conv) that still runs at the 200 Hz frame rate")

    def _stem_channels(self, after: int) -> int:
        return self.conv_in.units if after == 0 else self.blocks_spec[after - 1][0]

    def build(self, input_shape=None):
        self.conv_in.build((None, None, self.feature_dim))
        channels = self.conv_in.units
        for block in self.gblocks:
            block.build((None, None, channels))
            channels = block.out_channels
        self.conv_out.build((None, None, channels))
        if self.stem_head is not None:
            self.stem_head.build((None, None, self._stem_channels(self.stem_mel_after)))
        if self.hn_head is not None:
            self.hn_head.build((None, None, self._stem_channels(self.harmonic_noise.after)))

    @property
    def cond_dim(self) -> int:
        return self.noise_dim + (self.num_speakers if self.num_speakers > 1 else 0)

    def conditioning(self, z: tf.Tensor, speaker: tf.Tensor | None) -> tf.Tensor:
        """y = z, or [z; one_hot(speaker)] for a multi-speaker model (§3.2)."""
        z = tf.convert_to_tensor(z)
        if self.num_speakers <= 1:
            return z
        if speaker is None:
            raise ValueError(f"this generator has {self.num_speakers} speakers: pass `speaker`")
        one_hot = tf.one_hot(tf.cast(speaker, tf.int32), self.num_speakers, dtype=z.dtype)
        return tf.concat([z, one_hot], axis=-1)

    def call(self, features, z, speaker=None, lengths=None, training=None, start_cycles=None,
             return_stem=False, start_frame=None):
        """µ-law audio ``[B, 120·T, 1]``; with ``return_stem`` (a model with a stem head) also
        the head's log-mel frames ``[B, T, stem_mel_bins]``. A chunk that starts at frame
        ``start_frame`` ``[B]`` (int32) of an utterance passes it and ``start_cycles`` ``[B]``
        = frac(Σ_{u<start_frame} F0_u / 200) to continue the sines' phase and the noise read
        (``tts_gan.synthesis.synthesize_streaming``)."""
        if features.shape.rank != 3 or (features.shape[-1] is not None
                                         and features.shape[-1] != self.feature_dim):
            raise ValueError(f"generator features: expected [batch, frames, {self.feature_dim}], "
                             f"got shape {features.shape}")
        if z.shape[-1] is not None and z.shape[-1] != self.noise_dim:
            raise ValueError(f"generator z: expected [batch, {self.noise_dim}], got {z.shape}")
        cond = self.conditioning(z, speaker)
        frames = tf.shape(features)[1]
        rate = 1
        mask = ops.length_mask(lengths, frames, rate, features.dtype)
        h = self.conv_in(features, seq_mask=mask, training=training)
        stem = controls = None
        stem_at = self.stem_mel_after if return_stem and self.stem_head is not None else -1
        hn_at = self.harmonic_noise.after if self.hn_head is not None else -1
        frame_mask = mask
        if stem_at == 0:
            stem = self.stem_head(h, seq_mask=mask, training=training)
        if hn_at == 0:
            controls = self.hn_head(h, seq_mask=mask, training=training)
        for i, block in enumerate(self.gblocks):
            rate *= block.upsample_factor
            mask_out = ops.length_mask(lengths, frames, rate, features.dtype)
            exc = (sine_excitation(features, self.excitation, rate, start_cycles)
                   if block.exc_proj is not None else None)
            h = block(h, cond, mask_in=mask, mask_out=mask_out, training=training,
                      excitation=exc)
            mask = mask_out
            if i + 1 == stem_at:
                stem = self.stem_head(h, seq_mask=mask, training=training)
            if i + 1 == hn_at:
                controls = self.hn_head(h, seq_mask=mask, training=training)
        out = self.conv_out(h, seq_mask=mask, training=training)
        if self.dc_block_frames:
            out = remove_dc(out, rate, self.dc_block_frames, frame_mask)
        audio = tf.tanh(out)
        if controls is not None:  # harmonic + noise from the stem (not in the paper)
            _, f0, voiced = excitation_phase(features, self.excitation, rate)
            noise = noise_from_z(z, frames, rate, tf.constant(self._noise_table),
                                 None if start_frame is None else start_frame * rate)
            hn = synthesize(controls, f0, voiced, self.harmonic_noise,
                            float(self.excitation.frame_rate * rate), noise, frame_mask,
                            start_cycles)
            audio = tf.clip_by_value(audio + tf.cast(tf.expand_dims(hn, 2), audio.dtype),
                                     -1.0, 1.0)
        if self.output_mu > 0:  # linear waveform → the µ-law domain G models (not in the paper)
            audio = mulaw.encode(audio, self.output_mu)
        audio = ops.apply_mask(audio, mask)
        if return_stem:
            if stem is None:
                raise ValueError("return_stem: this generator has no stem head "
                                 "(generator.stem_mel_bins = 0)")
            return audio, stem
        return audio

    # --- introspection: the numbers of Table 2 / §5.2 ------------------------------------

    def conv_specs(self) -> list[ConvSpec]:
        """Every convolution in data-flow order with its rate (built layers' actual shapes)."""
        if not self.built:
            raise RuntimeError("build the generator (call it once) before introspecting it")

        def spec(layer: SNConv1D, rate: int) -> ConvSpec:
            k, cin, cout = layer.kernel.shape
            return ConvSpec(layer.path if hasattr(layer, "path") else layer.name, int(k),
                            layer.dilation, int(cin), int(cout), rate)

        specs = [spec(self.conv_in, 1)]
        rate = 1
        for block in self.gblocks:
            rate *= block.upsample_factor
            specs.extend(spec(c, rate) for c in block.convs[:2])
            if block.skip is not None:  # applied before the upsampling (GBlock.call)
                specs.append(spec(block.skip, rate // block.upsample_factor))
            if block.exc_proj is not None:
                specs.append(spec(block.exc_proj, rate))
            specs.extend(spec(c, rate) for c in block.convs[2:])
        if self.hn_head is not None:  # its sines and noise filters are not convolutions
            specs.append(spec(self.hn_head, 1))
        specs.append(spec(self.conv_out, rate))
        return specs

    def num_layers(self) -> int:
        """Depth counted as in App. A.2 (k>1 convolutions; 1×1 skips excluded): 30 for Table 2."""
        return sum(1 for s in self.conv_specs() if s.kernel_size > 1)

    def macs_per_sample(self) -> float:
        """Multiply-accumulates per output sample of the convolutions (CBN embeddings, which run
        once per utterance, are excluded)."""
        return sum(s.macs_per_frame for s in self.conv_specs()) / self.samples_per_frame

    def receptive_field_frames(self) -> float:
        """Receptive field in feature frames (each output sample sees this many 200 Hz frames
        of input, fractional because of the upsampling)."""
        return 1.0 + sum(s.receptive_field_frames for s in self.conv_specs())

    def receptive_field_halfwidth_frames(self) -> int:
        """Frames of context on each side that influence an output frame (for streaming)."""
        import math

        # Nearest upsampling can shift the dependency of an output sample by up to one input
        # step at each rate; one frame per side bounds that.
        return int(math.ceil((self.receptive_field_frames() - 1.0) / 2.0)) + 1

    def orthogonal_kernels(self) -> list[tf.Variable]:
        """Weights the off-diagonal orthogonal regulariser applies to (App. D): every conv and
        linear kernel of G."""
        return [layer.kernel for layer in self._flatten_layers()
                if isinstance(layer, SNConv1D | SNDense)
                and layer is not self.stem_head and layer is not self.hn_head]

    def batch_norms(self) -> list[MaskedSyncBatchNorm]:
        return [layer for layer in self._flatten_layers() if isinstance(layer, MaskedSyncBatchNorm)]

    def fold_spectral_norm(self, assign: bool = True) -> int:
        """Stores W / σ(W) in every SN kernel (inference only: SNDense.fold_spectral_norm), so a
        served graph does not recompute σ per call. Returns the number of layers folded."""
        sn = [x for x in self._flatten_layers() if isinstance(x, SNConv1D | SNDense)
              and x.spectral_norm and not x.spectral_norm_folded]
        return len([x.fold_spectral_norm(assign) for x in sn])


def build_generator(cfg, feature_dim: int | None = None, num_speakers: int | None = None
                    ) -> Generator:
    """Builds a Generator from a ``config.generator`` ConfigDict (see experiments/)."""
    gen = Generator(
        feature_dim=int(feature_dim if feature_dim is not None else cfg.feature_dim),
        noise_dim=cfg.noise_dim,
        num_speakers=int(num_speakers if num_speakers is not None else cfg.num_speakers),
        input_channels=cfg.input_channels, blocks=tuple(tuple(b) for b in cfg.blocks),
        kernel_size=cfg.kernel_size, dilations=tuple(cfg.dilations),
        spectral_norm=cfg.spectral_norm, bn_momentum=cfg.bn_momentum, bn_epsilon=cfg.bn_epsilon,
        cross_replica_bn=cfg.cross_replica_bn, excitation=excitation_spec(cfg),
        output_mu=output_mu(cfg), stem_mel_bins=int(cfg.get("stem_mel_bins", 0)),
        stem_mel_after=int(cfg.get("stem_mel_after", 2)),
        harmonic_noise=harmonic_noise_spec(cfg),
        dc_block_frames=int(cfg.get("dc_block_frames", 0)), name="generator")
    return gen


def harmonic_noise_spec(cfg) -> HarmonicNoiseSpec | None:
    """The ``generator.harmonic_noise`` config as a spec (None when absent or not enabled);
    unknown keys are errors naming the field."""
    hn = cfg.get("harmonic_noise") if hasattr(cfg, "get") else None
    if not hn or not hn.get("enabled", False):
        return None
    defaults = asdict(HarmonicNoiseSpec())  # field → default (its type, too)
    known = {"enabled", *defaults}
    unknown = sorted(set(hn.keys()) - known)
    if unknown:
        raise ValueError(f"config generator.harmonic_noise: unknown field(s) {unknown}; known: "
                         f"{sorted(known)}")
    return HarmonicNoiseSpec(**{name: type(default)(hn.get(name, default))
                                for name, default in defaults.items()})


def fill_output_mu(config) -> None:
    """Sets ``generator.output_mu`` to ``data.mu`` for a linear-output generator
    (``generator.linear_output``): G µ-law encodes its output with the µ it models."""
    if config.generator.get("linear_output", False):
        config.generator.output_mu = config.data.mu


def output_mu(cfg) -> float:
    """µ of the linear-output generator (``generator.linear_output``; ``output_mu`` is filled
    in with ``data.mu`` by :func:`fill_output_mu`), or 0 for the paper's µ-law output."""
    get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: d)
    if not get("linear_output", False):
        return 0.0
    mu = get("output_mu", None)
    if not mu:
        raise ValueError("generator.linear_output is set but generator.output_mu is not: it is "
                         "data.mu, filled in by fill_output_mu (resolve_config)")
    return float(mu)


def build_and_init(gen: Generator, frames: int = 4, batch: int = 1) -> Generator:
    """Creates the generator's variables with one small inference pass."""
    speaker = tf.zeros([batch], tf.int32) if gen.num_speakers > 1 else None
    gen(tf.zeros([batch, frames, gen.feature_dim]), tf.zeros([batch, gen.noise_dim]),
        speaker=speaker, training=False)
    return gen


def accumulate_standing_statistics(gen: Generator, batches: Iterable[dict],
                                   num_passes: int = 100) -> int:
    """Standing statistics (App. D): BN statistics averaged over ``num_passes`` training-mode
    forward passes, then frozen for inference.

    ``batches`` yields dicts with ``features``, ``z`` and optionally ``speaker``/``lengths``.
    Returns the number of passes used. Must be called outside any replica context.
    """
    bns = gen.batch_norms()
    for bn in bns:
        bn.reset_standing()
        bn.accumulate_standing = True

    @tf.function
    def step(features, z, speaker, lengths):
        gen(features, z, speaker=speaker, lengths=lengths, training=True)

    n = 0
    try:
        for batch in batches:
            if n >= num_passes:
                break
            step(batch["features"], batch["z"], batch.get("speaker"), batch.get("lengths"))
            n += 1
    finally:
        for bn in bns:
            bn.accumulate_standing = False
    if n == 0:
        raise ValueError("accumulate_standing_statistics: `batches` yielded nothing")
    for bn in bns:
        bn.finalize_standing()
    return n

"""Random window discriminators: §3.3–3.4, Fig. 1b/1c, Fig. 2, Eq. 1–3 and Table 3 (App. A.2).

An RWD takes a window of ω·k samples, folds it to ``[ω, k]`` (k consecutive samples become
channels), and runs DBlocks. Downsample factors are the prime divisors of 120/k in decreasing
order (conditional) or only the two largest (unconditional). The first DBlock and the last two
do not downsample; in a conditional RWD the first of those last two is the conditional DBlock,
placed where the time resolution has reached the 200 Hz of the features. Table 3:

    ==  ==============  ========  =====  =======  ========  =====
    k   D_k^C factors   # blocks  depth  D_k^U    # blocks  depth
    ==  ==============  ========  =====  =======  ========  =====
    1   5, 3, 2, 2, 2   8         17     5, 3     5         11
    2   5, 3, 2, 2      7         15     5, 3     5         11
    4   5, 3, 2         6         13     5, 3     5         11
    8   5, 3            5         11     5, 3     5         11
    15  2, 2, 2         6         13     2, 2     5         11
    ==  ==============  ========  =====  =======  ========  =====

(depth = two k3 convolutions per DBlock + the output linear layer.)

Windows (Eq. 1–2): a cRWD's start j is uniform on the 200 Hz grid {0, λ, 2λ, …, N − ωk} with
the matching feature frames [j/λ, (j + ωk)/λ); a uRWD's start is uniform on {0, 1, …, N − ωk}.
Starts are drawn per example inside the graph with stateless RNG (static shapes, XLA-ready).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf

from tts_gan import ops
from tts_gan.layers import CheckpointListsMixin, SNConv1D, SNDense

SAMPLES_PER_FRAME = 120  # λ: 24 kHz audio / 200 Hz features


_FULL = (None, 0, "full")  # ``window`` values of a full-input D (None, 0: configs before #17)


@dataclass(frozen=True)
class RWDSpec:
    """One ensemble member. ``window`` = ω·m samples, or None for a deterministic full-input D."""

    conditional: bool
    k: int
    window: int | None

    @property
    def name(self) -> str:
        kind = "cRWD" if self.conditional else "uRWD"
        return f"{kind}_k{self.k}_w{'full' if self.window is None else self.window}"

    @classmethod
    def from_config(cls, entry: Mapping, omega: int) -> RWDSpec:
        """One ``discriminator.rwds`` entry: ``conditional``, ``k`` (reshape factor) and either
        ``window_factor`` m (window = ω·m samples; Eq. 3's RWD*_ω has m = k) or
        ``window="full"`` (the whole input, deterministic: Table 1's FullD)."""
        entry = dict(entry)
        unknown = sorted(set(entry) - {"conditional", "k", "window_factor", "window"})
        if unknown:
            raise ValueError(f"discriminator.rwds entry {entry}: unknown field(s) {unknown} "
                             "(expected conditional, k, window_factor or window='full')")
        try:
            conditional = bool(entry["conditional"])
            k = int(entry["k"])
        except KeyError as e:
            raise ValueError(f"discriminator.rwds entry {entry}: missing field {e}") from None
        has_factor, window = "window_factor" in entry, entry.get("window")
        if has_factor == ("window" in entry):
            raise ValueError(f"discriminator.rwds entry {entry}: give exactly one of "
                             "window_factor (window = discriminator.omega × window_factor "
                             "samples) and window='full'")
        if not has_factor:
            if window not in _FULL:
                raise ValueError(
                    f"discriminator.rwds entry {entry}: window={window!r} samples is not read "
                    f"(discriminator.omega={omega} sets the windows): give window_factor "
                    "(window = omega × window_factor) or window='full'")
            return cls(conditional, k, None)
        m = entry["window_factor"]
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"discriminator.rwds entry {entry}: window_factor={m!r}, expected "
                             "an integer ≥ 1 (window = discriminator.omega × window_factor)")
        return cls(conditional, k, check_omega(omega) * m)


def check_omega(omega) -> int:
    """``discriminator.omega`` (ω of §3.3, the base window in samples): a positive integer."""
    if isinstance(omega, bool) or not isinstance(omega, int) or omega < 1:
        raise ValueError(f"config discriminator.omega={omega!r}: expected a positive integer "
                         "(the base window ω in samples, 240 in the paper)")
    return omega


def rwd_specs(cfg) -> list[RWDSpec]:
    """The ensemble of a ``config.discriminator``: its ``rwds`` with windows ω·m from
    ``omega`` (Eq. 3)."""
    if "omega" not in cfg:
        raise ValueError("config discriminator.omega is missing (the base window ω in samples)")
    return [RWDSpec.from_config(e, cfg["omega"]) for e in cfg["rwds"]]


def migrate_window_entries(cfg) -> None:
    """Rewrites, in place, the absolute ``window`` samples of a ``config.discriminator``
    saved before #17 (e.g. a run's ``config.json``) as ``window_factor = window / omega``."""
    omega = check_omega(cfg["omega"])
    rwds = []
    for entry in cfg["rwds"]:
        entry = dict(entry)
        window = entry.get("window")
        if "window_factor" not in entry and window not in _FULL:
            if int(window) % omega:
                raise ValueError(f"discriminator.rwds entry {entry}: window {window} is not a "
                                 f"multiple of discriminator.omega={omega}")
            del entry["window"]
            entry["window_factor"] = int(window) // omega
        elif "window_factor" not in entry:
            entry["window"] = "full"
        rwds.append(entry)
    cfg["rwds"] = rwds


def downsample_factors(k: int, conditional: bool,
                       samples_per_frame: int = SAMPLES_PER_FRAME) -> list[int]:
    """Table 3's rule: prime divisors of λ/k, decreasing; unconditional RWDs keep the two
    largest."""
    if k < 1 or samples_per_frame % k:
        raise ValueError(f"RWD reshape factor k={k} must divide the {samples_per_frame} samples "
                         "per feature frame")
    factors = ops.prime_factors_descending(samples_per_frame // k) if samples_per_frame > k else []
    return factors if conditional else factors[:2]


class DBlock(keras.layers.Layer):
    """Fig. 1b: [downsample → ReLU → conv(k3, d1) → ReLU → conv(k3, d2)] + [downsample → conv1×1].

    No batch normalisation. The 1×1 skip conv exists only when the channel count changes; the
    average-pool downsampling and the 1×1 conv commute, so the skip pools first (cheaper, same
    result). ``preactivation=False`` drops the first ReLU: used for the first block, which sees
    the raw (µ-law) waveform, whose negative half a ReLU would discard (as BigGAN's first D block).
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: int = 1, *,
                 dilations: Sequence[int] = (1, 2), preactivation: bool = True,
                 spectral_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.downsample = int(downsample)
        self.preactivation = preactivation
        self.conv1 = SNConv1D(out_channels, 3, dilations[0], spectral_norm=spectral_norm,
                              name="conv1")
        self.conv2 = SNConv1D(out_channels, 3, dilations[1], spectral_norm=spectral_norm,
                              name="conv2")
        self.skip = (SNConv1D(out_channels, 1, spectral_norm=spectral_norm, name="skip")
                     if in_channels != out_channels else None)

    def build(self, input_shape):
        self.conv1.build((None, None, self.in_channels))
        self.conv2.build((None, None, self.out_channels))
        if self.skip is not None:
            self.skip.build((None, None, self.in_channels))

    def _skip(self, x, training):
        s = ops.downsample(x, self.downsample)
        return s if self.skip is None else self.skip(s, training=training)

    def call(self, x, training=None):
        h = ops.downsample(x, self.downsample)
        if self.preactivation:
            h = tf.nn.relu(h)
        h = self.conv1(h, training=training)
        h = self.conv2(tf.nn.relu(h), training=training)
        return h + self._skip(x, training)


class ConditionalDBlock(DBlock):
    """Fig. 1c: a DBlock whose features embedding (a 1×1 conv of the 200 Hz linguistic features)
    is added after the first convolution."""

    def __init__(self, in_channels: int, out_channels: int, feature_dim: int, *,
                 spectral_norm: bool = True, **kwargs):
        super().__init__(in_channels, out_channels, 1, spectral_norm=spectral_norm, **kwargs)
        self.feature_dim = int(feature_dim)
        self.embed = SNConv1D(out_channels, 1, spectral_norm=spectral_norm, name="embed")

    def build(self, input_shape):
        super().build(input_shape)
        self.embed.build((None, None, self.feature_dim))

    def call(self, x, features, training=None):
        h = self.conv1(tf.nn.relu(x), training=training)
        h = h + self.embed(tf.cast(features, h.dtype), training=training)
        h = self.conv2(tf.nn.relu(h), training=training)
        return h + self._skip(x, training)


def _window_starts(batch: tf.Tensor, max_start: tf.Tensor, step: int,
                   seed: tf.Tensor | None) -> tf.Tensor:
    """Per-example window starts uniform on {0, step, 2·step, …} ≤ max_start (int32 [B])."""
    slots = max_start // step + 1
    if seed is None:
        idx = tf.random.uniform([batch], 0, slots, dtype=tf.int32)
    else:
        # alg="philox": with the default alg, XLA and TF kernels disagree for negative seeds.
        idx = tf.random.stateless_uniform([batch], seed, 0, slots, dtype=tf.int32, alg="philox")
    return idx * step


def gather_windows(x: tf.Tensor, starts: tf.Tensor, size: int) -> tf.Tensor:
    """``x[b, starts[b] : starts[b] + size]`` for every example b (static ``size``)."""
    idx = starts[:, None] + tf.range(size, dtype=starts.dtype)[None, :]
    return tf.gather(x, idx, batch_dims=1)


class RandomWindowDiscriminator(CheckpointListsMixin, keras.layers.Layer):
    """D_k^C / D_k^U of Table 3 applied to a random window (cRWD / uRWD, Eq. 1–2).

    ``call(audio [B, N], features [B, N/λ, D] | None, seed [2] | None) -> scores [B]``.
    With ``spec.window=None`` the whole input is used deterministically (FullD = D_1^C).
    """

    def __init__(self, spec: RWDSpec, *, feature_dim: int | None = None,
                 first_channels: int = 64, down_channels: Sequence[int] = (128, 256),
                 cond_channel_multiplier: int = 2, spectral_norm: bool = True,
                 samples_per_frame: int = SAMPLES_PER_FRAME, **kwargs):
        kwargs.setdefault("name", spec.name)
        super().__init__(**kwargs)
        if spec.conditional and not feature_dim:
            raise ValueError(f"{spec.name}: a conditional RWD needs feature_dim")
        if spec.window is not None:
            if spec.window % spec.k:
                raise ValueError(f"{spec.name}: window {spec.window} is not a multiple of k")
            if spec.conditional and spec.window % samples_per_frame:
                raise ValueError(f"{spec.name}: a conditional window must cover whole feature "
                                 f"frames ({samples_per_frame} samples each)")
        self.spec = spec
        self.samples_per_frame = samples_per_frame
        self.factors = downsample_factors(spec.k, spec.conditional, samples_per_frame)
        sn = dict(spectral_norm=spectral_norm)
        channels = [int(c) for c in down_channels]
        channels += [channels[-1]] * max(0, len(self.factors) - len(channels))
        self.dblocks: list[DBlock] = [
            DBlock(spec.k, first_channels, 1, preactivation=False, name="dblock0", **sn)]
        ch = first_channels
        for i, f in enumerate(self.factors):
            self.dblocks.append(DBlock(ch, channels[i], f, name=f"dblock{i + 1}", **sn))
            ch = channels[i]
        n = len(self.dblocks)
        if spec.conditional:
            self.cond_block = ConditionalDBlock(ch, ch * cond_channel_multiplier, feature_dim,
                                                name=f"cond_dblock{n}", **sn)
            ch *= cond_channel_multiplier
            self.dblocks.append(self.cond_block)
            self.dblocks.append(DBlock(ch, ch, 1, name=f"dblock{n + 1}", **sn))
        else:
            self.cond_block = None
            self.dblocks.append(DBlock(ch, ch, 1, name=f"dblock{n}", **sn))
            self.dblocks.append(DBlock(ch, ch, 1, name=f"dblock{n + 1}", **sn))
        self.out = SNDense(1, name="linear", **sn)

    def build(self, input_shape=None):
        for block in self.dblocks:
            block.build(None)
        self.out.build((None, self.dblocks[-1].out_channels))

    @property
    def num_blocks(self) -> int:
        return len(self.dblocks)

    @property
    def depth(self) -> int:
        """k3 convolutions plus the output linear layer (Table 3's 'depth')."""
        return 2 * self.num_blocks + 1

    def select_window(self, audio, features, seed=None):
        """Samples the (aligned) random window of Eq. 1 (conditional) or Eq. 2."""
        spec, lam = self.spec, self.samples_per_frame
        if spec.window is None:
            return audio, features
        batch = tf.shape(audio)[0]
        max_start = tf.shape(audio)[1] - spec.window
        tf.debugging.assert_non_negative(
            max_start, message=f"{spec.name}: input shorter than the {spec.window}-sample window")
        starts = _window_starts(batch, max_start, lam if spec.conditional else 1, seed)
        x = gather_windows(audio, starts, spec.window)
        c = (gather_windows(features, starts // lam, spec.window // lam)
             if spec.conditional else None)
        return x, c

    def call(self, audio, features=None, seed=None, training=None):
        return self.score_and_activations(audio, features, seed, training)[0]

    def score_and_activations(self, audio, features=None, seed=None, training=None
                              ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """(scores ``[B]``, every DBlock's output ``[B, T_l, C_l]``) on the random window; the
        activations serve feature matching (not in the paper, see :mod:`tts_gan.losses`)."""
        if audio.shape.rank == 3:
            audio = audio[..., 0]
        if self.spec.conditional and features is None:
            raise ValueError(f"{self.spec.name} is conditional: pass the features")
        x, c = self.select_window(audio, features, seed)
        h = ops.fold_to_channels(x, self.spec.k)
        acts = []
        for block in self.dblocks:
            h = (block(h, c, training=training) if block is self.cond_block
                 else block(h, training=training))
            acts.append(h)
        h = tf.reduce_mean(tf.nn.relu(h), axis=1)  # average-pool over time (§3.4)
        return self.out(h, training=training)[:, 0], acts


class DiscriminatorEnsemble(CheckpointListsMixin, keras.Model):
    """Σ over RWDs (Eq. 3). ``call`` returns the per-discriminator scores ``[B, num_rwds]``;
    the trainer sums the per-discriminator hinge losses."""

    def __init__(self, specs: Sequence[RWDSpec], *, feature_dim: int | None = None,
                 first_channels: int = 64, down_channels: Sequence[int] = (128, 256),
                 cond_channel_multiplier: int = 2, spectral_norm: bool = True,
                 samples_per_frame: int = SAMPLES_PER_FRAME, **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        if not specs:
            raise ValueError("discriminator.rwds: the ensemble needs at least one RWD")
        self.specs = tuple(specs)
        self.rwds = []
        seen: dict[str, int] = {}
        for spec in self.specs:
            copy = seen.get(spec.name, 0)
            seen[spec.name] = copy + 1
            self.rwds.append(RandomWindowDiscriminator(
                spec, feature_dim=feature_dim, first_channels=first_channels,
                down_channels=down_channels, cond_channel_multiplier=cond_channel_multiplier,
                spectral_norm=spectral_norm, samples_per_frame=samples_per_frame,
                name=f"{spec.name}_{copy}" if copy else spec.name))

    def build(self, input_shape=None):
        for rwd in self.rwds:
            rwd.build(None)

    @property
    def rwd_names(self) -> list[str]:
        return [r.name for r in self.rwds]

    def call(self, audio, features=None, seed=None, training=None):
        return self.score_and_activations(audio, features, seed, training)[0]

    def score_and_activations(self, audio, features=None, seed=None, training=None
                              ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """(scores ``[B, num_rwds]``, the DBlock outputs of every RWD in order). With the same
        ``seed`` and batch size, two calls see the same windows (feature matching)."""
        scores, acts = [], []
        for i, rwd in enumerate(self.rwds):
            s = (None if seed is None
                 else tf.random.experimental.stateless_fold_in(seed, i, alg="philox"))
            score, a = rwd.score_and_activations(
                audio, features if rwd.spec.conditional else None, seed=s, training=training)
            scores.append(score)
            acts.extend(a)
        return tf.stack(scores, axis=1), acts


def build_discriminator(cfg, feature_dim: int) -> DiscriminatorEnsemble:
    """Builds the ensemble of a ``config.discriminator`` ConfigDict (see experiments/);
    windows are ``omega`` × each entry's ``window_factor`` (:func:`rwd_specs`)."""
    specs = rwd_specs(cfg)
    for s in specs:
        if s.conditional and s.window is not None and s.window % SAMPLES_PER_FRAME:
            raise ValueError(f"config discriminator.omega={cfg['omega']}: the conditional "
                             f"window {s.window} = omega × {s.window // cfg['omega']} does not "
                             f"cover whole feature frames ({SAMPLES_PER_FRAME} samples each)")
    return DiscriminatorEnsemble(
        specs, feature_dim=feature_dim, first_channels=cfg.first_channels,
        down_channels=tuple(cfg.down_channels),
        cond_channel_multiplier=cfg.cond_channel_multiplier, spectral_norm=cfg.spectral_norm)

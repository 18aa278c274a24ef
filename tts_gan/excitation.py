"""The generator's opt-in sine excitation from the conditioning's log F0 (not in the paper).

The source signal of neural source-filter models (Wang et al. 2019): sines at k·F0 and the
V/UV flag, fed into the last GBlocks (:class:`tts_gan.generator.Generator`); the phase is the
one the harmonic head (:mod:`tts_gan.harmonic_noise`) continues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from tts_gan.harmonic_noise import frame_start_cycles


@dataclass(frozen=True)
class ExcitationSpec:
    """Opt-in sine excitation from the conditioning's log F0 (not in the paper; the source of
    neural source-filter models, Wang et al. 2019): ``harmonics`` sines at k·F0, silenced on
    unvoiced frames and above the Nyquist frequency of the rate they are made at, plus the V/UV
    flag, added through a 1×1 conv inside each of the last ``blocks`` GBlocks (after their
    first residual block, at their output rate). Index/mean/std locate and de-normalise the
    ``log_f0`` (natural log of Hz) and ``vuv`` columns of the normalised features."""

    lf0_index: int
    lf0_mean: float
    lf0_std: float
    vuv_index: int
    vuv_mean: float = 0.0
    vuv_std: float = 1.0
    harmonics: int = 8
    blocks: int = 3
    frame_rate: int = 200

    @property
    def channels(self) -> int:
        return self.harmonics + 1


def excitation_phase(features: tf.Tensor, spec: ExcitationSpec, steps_per_frame: int,
                     start_cycles: tf.Tensor | None = None
                     ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The fundamental's phase ``[B, T, r]`` in cycles at r = ``steps_per_frame`` steps per
    feature frame, F0 ``[B, T]`` in Hz and the 0/1 voicing ``[B, T]`` of the conditioning.

    F0 is constant within a frame and the phase is its running integral from the first frame
    (plus ``start_cycles`` [B], in cycles), so it is continuous across frames and a frame's
    phase depends only on the frames before it (masked padding never changes it). Frame
    starts are :func:`tts_gan.harmonic_noise.frame_start_cycles` of F0 / frame rate (exact
    modulo 1, no float32 accumulation): a chunk from frame c continues the utterance with
    start_cycles = frac(Σ_{u<c} F0_u / frame_rate), the harmonic head's state too.
    """
    rate_hz = float(spec.frame_rate * steps_per_frame)
    feats = tf.cast(features, tf.float32)
    # tf.gather / expand_dims rather than ``x[..., i]`` / ``x[..., None]``: the TFLite export
    # has no kernel for strided slices with ellipsis or new axes.
    cols = tf.gather(feats, [spec.lf0_index, spec.vuv_index], axis=2)
    lf0, vuv_norm = tf.unstack(cols, axis=2)
    f0 = tf.exp(lf0 * spec.lf0_std + spec.lf0_mean)  # [B, T] Hz
    voiced = tf.cast(vuv_norm * spec.vuv_std + spec.vuv_mean > 0.5, tf.float32)
    inc = f0 / rate_hz  # cycles per step
    # frame starts from F0 / frame rate at every rate: one state (start_cycles) for all
    frame_start = frame_start_cycles(f0 / float(spec.frame_rate), start_cycles)
    steps = tf.range(steps_per_frame, dtype=tf.float32)
    return tf.expand_dims(frame_start, 2) + tf.expand_dims(inc, 2) * steps, f0, voiced


def sine_excitation(features: tf.Tensor, spec: ExcitationSpec, steps_per_frame: int,
                    start_cycles: tf.Tensor | None = None) -> tf.Tensor:
    """``[B, T·r, harmonics + 1]`` at r = ``steps_per_frame`` steps per feature frame: sines at
    k·F0 on the phase of :func:`excitation_phase`, and the V/UV flag."""
    rate_hz = float(spec.frame_rate * steps_per_frame)
    cycles, f0, voiced = excitation_phase(features, spec, steps_per_frame, start_cycles)
    k = tf.range(1, spec.harmonics + 1, dtype=tf.float32)
    sines = tf.sin(2.0 * math.pi * tf.expand_dims(cycles, 3) * k)  # [B, T, r, H]
    audible = (tf.cast(tf.expand_dims(f0, 2) * k < 0.5 * rate_hz, tf.float32)
               * tf.expand_dims(voiced, 2))  # [B, T, H]
    sines *= tf.expand_dims(audible, 2)
    vuv = tf.tile(tf.expand_dims(tf.expand_dims(voiced, 2), 3), [1, 1, steps_per_frame, 1])
    out = tf.concat([sines, vuv], axis=3)
    shape = tf.shape(out)
    return tf.cast(tf.reshape(out, [shape[0], shape[1] * steps_per_frame, spec.channels]),
                   features.dtype)


def excitation_spec(cfg) -> ExcitationSpec | None:
    """The ``generator.excitation`` config as a spec (None when absent or not enabled); its
    column indices and statistics are filled in from the manifest by ``resolve_config``."""
    exc = cfg.get("excitation") if hasattr(cfg, "get") else None
    if not exc or not exc.get("enabled", False):
        return None
    missing = [k for k in ("lf0_index", "lf0_mean", "lf0_std", "vuv_index")
               if exc.get(k) is None]
    if missing:
        raise ValueError(f"generator.excitation is enabled but {', '.join(missing)} are not "
                         "set: they come from the data's manifest.json (log_f0 / vuv blocks)")
    return ExcitationSpec(
        lf0_index=int(exc.lf0_index), lf0_mean=float(exc.lf0_mean), lf0_std=float(exc.lf0_std),
        vuv_index=int(exc.vuv_index), vuv_mean=float(exc.get("vuv_mean", 0.0)),
        vuv_std=float(exc.get("vuv_std", 1.0)), harmonics=int(exc.get("harmonics", 8)),
        blocks=int(exc.get("blocks", 3)))

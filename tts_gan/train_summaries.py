"""What training writes while it runs: the logged scalars and progress line, and the
evaluation during training (EMA samples with standing statistics, App. D; spectrograms; the
Fig.-4 distance)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import ml_collections
import numpy as np
import tensorflow as tf

from tts_gan import mulaw
from tts_gan.generator import accumulate_standing_statistics
from tts_gan.train_setup import stateless_normal

if TYPE_CHECKING:
    from tts_gan.evaluation import TrainingDistance
    from tts_gan.train_step import GANTrainer


def spectrogram_image(audio: tf.Tensor, frame_length: int = 512, hop: int = 128,
                      dynamic_range_db: float = 80.0) -> tf.Tensor:
    """Log-magnitude spectrograms ``[B, freq, time, 1]`` in [0, 1], low frequencies at the
    bottom (linear-amplitude audio ``[B, N]`` in)."""
    spec = tf.abs(tf.signal.stft(audio, frame_length, hop, pad_end=True))
    db = 20.0 * tf.math.log(spec + 1e-6) / math.log(10.0)
    top = tf.reduce_max(db, axis=[1, 2], keepdims=True)
    img = (tf.maximum(db, top - dynamic_range_db) - (top - dynamic_range_db)) / dynamic_range_db
    return tf.reverse(tf.transpose(img, [0, 2, 1]), axis=[1])[..., None]


def write_eval_summaries(trainer: GANTrainer, batch: dict[str, tf.Tensor], step: int,
                         sample_rate: int, mu: float, standing_passes: int = 10,
                         distance: Callable[[Callable], dict[str, float]] | None = None,
                         distances: dict[str, float] | None = None) -> np.ndarray:
    """Audio of the EMA generator on fixed windows (µ-law decoded) and real-vs-generated
    spectrogram images; returns the generated linear audio.

    With ``standing_passes > 0`` G_ema samples with its own standing statistics (App. D), from
    that many training-mode passes over these windows with fresh z, as the export does; G's
    running BN statistics (what G_ema otherwise holds) do not match the averaged EMA weights and
    give misleading samples early in training. G_ema's statistics are restored afterwards.

    ``distance`` (an :class:`tts_gan.evaluation.TrainingDistance`) is called with G_ema in the
    same state and its values (e.g. ``cFD-dnsmos``) written as ``eval/<name>`` — the paper's
    Fig. 4 cFDSD curve — and copied into ``distances`` when given.
    """
    speaker = batch["speaker"] if trainer.G_ema.num_speakers > 1 else None
    bns = trainer.G_ema.batch_norms()
    saved = [(tf.identity(bn.moving_mean.value), tf.identity(bn.moving_variance.value))
             for bn in bns]

    def generate(features: np.ndarray, spk: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = trainer.G_ema(tf.constant(features), tf.constant(z),
                            speaker=tf.constant(spk) if speaker is not None else None,
                            training=False)
        return mulaw.decode(tf.cast(out[..., 0], tf.float32), mu).numpy()

    values: dict[str, float] = {}
    with trainer.strategy.scope():
        if standing_passes > 0:
            shape = batch["z"].shape
            feeds = ({"features": batch["features"], "speaker": speaker,
                      "z": stateless_normal(shape, tf.constant([step % (2**31), i]))}
                     for i in range(standing_passes))
            accumulate_standing_statistics(trainer.G_ema, feeds, standing_passes)
        fake = trainer.G_ema(batch["features"], batch["z"], speaker=speaker, training=False)
        if distance is not None:
            values = distance(generate)
        for bn, (mean, var) in zip(bns, saved, strict=True):
            bn.moving_mean.assign(mean)
            bn.moving_variance.assign(var)
    fake = mulaw.decode(tf.cast(fake[..., 0], tf.float32), mu)
    real = mulaw.decode(tf.cast(batch["audio"], tf.float32), mu)
    tf.summary.audio("eval/ema_generator", fake[..., None], sample_rate, step=step,
                     max_outputs=int(fake.shape[0]))
    tf.summary.audio("eval/real", real[..., None], sample_rate, step=step,
                     max_outputs=int(real.shape[0]))
    img_real, img_fake = spectrogram_image(real), spectrogram_image(fake)
    sep = tf.ones_like(img_real[:, :2])
    tf.summary.image("eval/spectrogram_real_top_generated_bottom",
                     tf.concat([img_real, sep, img_fake], axis=1), step=step,
                     max_outputs=int(real.shape[0]))
    tf.summary.scalar("eval/ema_generated_rms", tf.sqrt(tf.reduce_mean(tf.square(fake))), step)
    for name, value in values.items():
        tf.summary.scalar(f"eval/{name}", value, step=step)
    if distances is not None:
        distances.update(values)
    return fake.numpy()


def make_training_distance(config: ml_collections.ConfigDict, data_dir: str
                           ) -> TrainingDistance | None:
    """The Fig.-4 distance of ``train.eval_distance_samples`` valid windows with extractor
    ``train.eval_distance_extractor`` (:class:`tts_gan.evaluation.TrainingDistance`), or None
    when that is 0."""
    tcfg = config.train
    n = int(tcfg.get("eval_distance_samples", 0))
    if n < 0:
        raise ValueError(f"config train.eval_distance_samples={n}: expected 0 (off) or a "
                         "number of valid windows ≥ 2")
    if n == 0:
        return None
    from tts_gan import evaluation  # onnxruntime etc. only when asked for

    return evaluation.TrainingDistance(
        data_dir, config.generator.noise_dim, num_samples=n, split="valid",
        extractor=str(tcfg.get("eval_distance_extractor", "default")), seed=int(tcfg.seed))


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"

def write_train_scalars(last: dict[str, float], step: int, max_steps: int,
                        tcfg: ml_collections.ConfigDict, global_batch: int, sps: float,
                        timed: bool, log: Callable[[str], None]) -> None:
    """The scalars of a log step (the metrics ``last``, learning rates and, unless the interval
    traced the step (``timed`` False), steps/s) as TensorBoard summaries, and the progress
    line: D's hinge and gradient norm (or "G only" before ``train.d_start_step``), G's
    objective, the auxiliary terms, |∇G|, the ``grad_norm/<term>`` diagnostic, speed, ETA."""
    for k, v in last.items():
        tf.summary.scalar(k, v, step=step)
    tf.summary.scalar("lr/generator", tcfg.g_learning_rate, step=step)
    tf.summary.scalar("lr/discriminator", tcfg.d_learning_rate, step=step)
    if timed:  # not the interval that traced the step
        tf.summary.scalar("perf/steps_per_sec", sps, step=step)
        tf.summary.scalar("perf/examples_per_sec", sps * global_batch, step=step)
    d_part = (f"d_loss {last['d_loss']:.4f}  |gD| {last['d_grad_norm']:.3g}  "
              if "d_loss" in last else "G only  ")
    aux_part = "".join(f"{k[4:]} {v:.4g}  " for k, v in sorted(last.items())
                       if k.startswith("aux/"))
    norm_part = "".join(f"|g {k[10:]}| {v:.3g}  " for k, v in
                        sorted(last.items()) if k.startswith("grad_norm/"))
    log(f"step {step}/{max_steps}  {d_part}g_loss {last['g_loss']:.4f}  "
        f"{aux_part}|gG| {last['g_grad_norm']:.3g}  {norm_part}"
        f"{sps * global_batch:.1f} ex/s"
        f"  {sps:.2f} steps/s  " + (
            f"ETA {_fmt_eta((max_steps - step) / sps)}"
            if timed else "(includes tracing)"))

"""GAN-TTS training (App. D): hinge losses, the distributed D+G step, EMA, checkpoints, summaries.

App. D: "We train all models with a single discriminator step per generator step, but with
doubled learning rate: 1e-4 for the former, compared to 5e-5 for the latter. We use the hinge
loss, a batch size of 1024 and the Adam optimizer with β1 = 0, β2 = 0.999. [...] spectral
normalisation and orthogonal initialisation [...] off-diagonal orthogonal regularisation and
exponential moving averaging to the generator weights with a decay rate of 0.9999 for sampling.
We also use cross-replica BatchNorm."

Distribution: one ``tf.function`` runs the whole step (D step, G step, EMA update) through
``strategy.run``. Per-replica losses are sums over the replica's examples divided by the
*global* batch size, gradients are all-reduced (summed) once by the step itself, so the update
is the same whatever the number of replicas. Randomness is a pure function of
``(config.train.seed, step)`` (stateless RNG): z is drawn for the whole global batch and each
replica takes its slice, so z does not depend on how the batch is split.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tts_gan import data as data_lib
from tts_gan import losses, mulaw, ops, schema
from tts_gan import strategy as strategy_lib
from tts_gan.discriminator import (
    DiscriminatorEnsemble,
    build_discriminator,
    gather_windows,
    migrate_window_entries,
    rwd_specs,
)
from tts_gan.generator import (
    Generator,
    accumulate_standing_statistics,
    build_and_init,
    build_generator,
    fill_output_mu,
)
from tts_gan.layers import SNConv1D, SNDense, power_iteration
from tts_gan.losses import hinge_d_terms, hinge_g_terms  # noqa: F401  (App. D; re-exported)

if TYPE_CHECKING:
    from tts_gan.evaluation import TrainingDistance

SUM, MEAN = tf.distribute.ReduceOp.SUM, tf.distribute.ReduceOp.MEAN


class NonFiniteLossError(RuntimeError):
    """A loss or gradient norm became NaN/inf; training stopped without saving."""


# ----------------------------------------------------------------------------------------------
# Models and optimizers
# ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _dtype_policy(name: str):
    """Temporarily sets Keras' global dtype policy ("" = float32) while layers are created."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name or "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def build_models(config: ml_collections.ConfigDict, feature_dim: int, num_speakers: int
                 ) -> tuple[Generator, Generator, DiscriminatorEnsemble]:
    """(G, G_ema, D) with all variables created; G_ema starts as an exact copy of G.

    Call inside ``strategy.scope()`` for distributed training. ``config.train.mixed_precision``
    ("mixed_bfloat16") sets the layers' dtype policy (variables stay float32). The initial
    weights (orthogonal kernels, App. D; SN vectors) are a function of ``config.train.seed``:
    Keras' global seeds (Python, NumPy, TensorFlow, Keras) are set from it first.
    """
    keras.utils.set_random_seed(train_seed(config))
    with _dtype_policy(config.train.get("mixed_precision", "")):
        gen = build_and_init(build_generator(config.generator, feature_dim, num_speakers))
        ema = build_and_init(build_generator(config.generator, feature_dim, num_speakers))
        disc = build_discriminator(config.discriminator, feature_dim)
        disc.build(None)
    _check_same_structure(gen.weights, ema.weights)
    for dst, src in zip(ema.weights, gen.weights, strict=True):
        dst.assign(src.value)
    return gen, ema, disc


def train_seed(config: ml_collections.ConfigDict) -> int:
    """``config.train.seed``: an integer in [0, 2³¹) (seeds the initial weights, z, the RWD
    windows and the input order)."""
    seed = config.train.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"config train.seed={seed!r}: expected an integer in [0, 2**31)")
    return seed


def _check_same_structure(a: list, b: list) -> None:
    if len(a) != len(b) or any(tuple(x.shape) != tuple(y.shape)
                                   for x, y in zip(a, b, strict=False)):
        raise RuntimeError("G and G_ema have different variable structures")


class _PreReducedAdam(keras.optimizers.Adam):
    """Adam that does not all-reduce gradients again: the train step has already summed them
    over replicas (once) to log the global gradient norm."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def make_optimizer(lr: float, cfg: ml_collections.ConfigDict, name: str) -> keras.Optimizer:
    """Adam(β1 = 0, β2 = 0.999) of App. D (ε from ``train.adam_epsilon``)."""
    return _PreReducedAdam(learning_rate=lr, beta_1=cfg.adam_beta1, beta_2=cfg.adam_beta2,
                           epsilon=cfg.get("adam_epsilon", 1e-8), name=name)


# ----------------------------------------------------------------------------------------------
# The distributed train step
# ----------------------------------------------------------------------------------------------

def stateless_normal(shape: list[int], seed: tf.Tensor) -> tf.Tensor:
    """N(0, 1) samples from a stateless seed that are the same with and without XLA.

    ``tf.random.stateless_normal`` (and float ``stateless_uniform``) give different numbers
    under ``jit_compile`` than in TF kernels on CPU; Philox *integer* draws agree. So: 24-bit
    uniform integers → uniforms in (0, 1) → Box–Muller.
    """
    bits = tf.random.stateless_uniform([2, *shape], seed, 0, 1 << 24, dtype=tf.int32,
                                       alg="philox")
    u = (tf.cast(bits, tf.float32) + 0.5) / float(1 << 24)
    return tf.sqrt(-2.0 * tf.math.log(u[0])) * tf.cos(2.0 * math.pi * u[1])


# ----------------------------------------------------------------------------------------------
# GAN trainer
# ----------------------------------------------------------------------------------------------

def _sn_layers(model: keras.Model) -> list:
    return [layer for layer in model._flatten_layers()
            if isinstance(layer, SNConv1D | SNDense) and layer.spectral_norm]


class GANTrainer:
    """Models, optimizers, checkpoint and the compiled train step of App. D for one strategy.

    ``train_step(dist_batch, step)`` runs one D update, one G update and the EMA update and
    returns the globally reduced metrics as NumPy values (see :meth:`metric_names`).
    """

    def __init__(self, config: ml_collections.ConfigDict, strategy: tf.distribute.Strategy,
                 feature_dim: int, num_speakers: int, *, xla: bool = False):
        self.config = config
        self.strategy = strategy
        tcfg = config.train
        self.num_replicas = strategy.num_replicas_in_sync
        self.global_batch = int(tcfg.global_batch_size)
        if self.global_batch % self.num_replicas:
            raise ValueError(f"train.global_batch_size={self.global_batch} is not divisible by "
                             f"the {self.num_replicas} replicas")
        if int(tcfg.get("d_steps_per_g_step", 1)) != 1:
            raise ValueError("train.d_steps_per_g_step: only 1 is implemented (App. D)")
        if tcfg.get("loss", "hinge") != "hinge":
            raise ValueError(f"train.loss={tcfg.loss!r}: only 'hinge' is implemented (App. D)")
        self.d_hinge = str(tcfg.get("d_hinge", "per_rwd"))
        self._d_hinge_terms = losses.d_hinge_terms(self.d_hinge)  # a clear error when bad
        with strategy.scope():
            self.G, self.G_ema, self.D = build_models(config, feature_dim, num_speakers)
            self.g_opt = make_optimizer(tcfg.g_learning_rate, tcfg, "g_adam")
            self.d_opt = make_optimizer(tcfg.d_learning_rate, tcfg, "d_adam")
            # FINDINGS: build the optimizers in scope before the first step.
            self.g_opt.build(self.G.trainable_variables)
            self.d_opt.build(self.D.trainable_variables)
        # The step counter lives outside the strategy (host variable, same on every worker).
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.ckpt = tf.train.Checkpoint(
            step=self.step, generator=self.G, ema_generator=self.G_ema,
            discriminator=self.D, g_optimizer=self.g_opt, d_optimizer=self.d_opt)
        self.rwd_names = list(self.D.rwd_names)
        self.xla = bool(xla)
        is_tpu = isinstance(strategy, tf.distribute.TPUStrategy)
        self.aux = losses.AuxLosses.from_config(config)
        self.d_start_step = int(tcfg.get("d_start_step", 0))
        if self.d_start_step < 0:
            raise ValueError(f"train.d_start_step={self.d_start_step}: expected >= 0")
        if self.d_start_step > 0 and not self.aux.spectral:
            raise ValueError(f"train.d_start_step={self.d_start_step}: the G-only warm-up needs "
                             "an auxiliary spectral loss (train.aux.stft_weight, mel_weight, "
                             "ged_weight or stem_mel_weight > 0); with none G has nothing to "
                             "train on")
        if self.aux.stem_mel_weight > 0 and self.G.stem_mel_bins != self.aux.mel_bins:
            raise ValueError(f"train.aux.stem_mel_weight={self.aux.stem_mel_weight} needs "
                             f"generator.stem_mel_bins = train.aux.mel_bins "
                             f"({self.aux.mel_bins}), got {self.G.stem_mel_bins}")
        self._dist_steps, self._loops = {}, {}
        for g_only in (False, True):
            replica_fn = functools.partial(self._replica_step, g_only=g_only)
            if self.xla and not is_tpu:  # TPUStrategy compiles with XLA anyway
                replica_fn = tf.function(replica_fn, jit_compile=True, autograph=False)
            self._dist_steps[g_only] = tf.function(
                functools.partial(self._distributed_step, replica_fn), autograph=False)
            # K steps per call (train.steps_per_loop), metrics summed on the device.
            self._loops[g_only] = tf.function(
                functools.partial(self._steps_loop, replica_fn), autograph=False)
        self._metric_specs: dict[bool, dict[str, tf.TensorSpec]] = {}
        self._refresh_fn = tf.function(self._refresh_ema_state, autograph=False)
        self._grad_norm_fn: Callable | None = None
        self._sn_pairs = list(zip(_sn_layers(self.G), _sn_layers(self.G_ema), strict=True))
        self._bn_pairs = list(zip(self.G.batch_norms(), self.G_ema.batch_norms(), strict=True))
        d_mu = float(config.discriminator.get("input_mu", 0.0) or config.data.mu)
        self._d_mu = (float(config.data.mu), d_mu)
        self._d_linear = d_input_domain(config) == "linear"

    def d_view(self, audio: tf.Tensor) -> tf.Tensor:
        """The waveform as the discriminators see it: G's µ-law domain (``data.mu``, the paper),
        re-encoded with ``discriminator.input_mu`` when that is set, or the linear waveform
        (``discriminator.input_domain = "linear"``). Neither alternative is in the paper: with
        16-bit µ-law, sample-level errors that are loud broadband noise once decoded are small
        next to the companding's own high-frequency content (BUILD_NOTES.md), and the hinge and
        feature-matching gradients reach a linear-output G scaled by µ-law's slope (~5,900 at
        silence, ~0.09 at full scale; issue 25)."""
        mu_g, mu_d = self._d_mu
        if self._d_linear:
            return mulaw.decode(tf.cast(audio, tf.float32), mu_g)
        if mu_g == mu_d:
            return audio
        return mulaw.transcode(tf.cast(audio, tf.float32), mu_g, mu_d)  # float32: expm1 of ~11

    # --- randomness: pure functions of (seed, step, replica) ----------------------------------

    def _step_seed(self, step: tf.Tensor, purpose: int) -> tf.Tensor:
        base = tf.constant([int(self.config.train.seed) % (2**31), 0x5EED], tf.int32)
        s = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int32), alg="philox")
        return tf.random.experimental.stateless_fold_in(s, purpose, alg="philox")

    def _noise(self, step: tf.Tensor, purpose: int, replica_id, local_batch: int) -> tf.Tensor:
        """z ~ N(0, I) for this replica's slice of the *global* batch (split-invariant)."""
        z_all = stateless_normal([self.global_batch, self.G.noise_dim],
                                 self._step_seed(step, purpose))
        start = tf.cast(replica_id, tf.int32) * local_batch
        return tf.slice(z_all, tf.stack([start, 0]), [local_batch, self.G.noise_dim])

    # --- the per-replica step -------------------------------------------------------------------

    def _replica_step(self, batch: dict[str, tf.Tensor], step: tf.Tensor, *,
                      g_only: bool = False) -> dict:
        """One step on this replica: D update, G update, EMA. ``g_only`` (before
        ``train.d_start_step``): no D update and no adversarial term, G trains on the auxiliary
        losses alone (not in the paper; see :mod:`tts_gan.losses`)."""
        ctx = tf.distribute.get_replica_context()
        rid = ctx.replica_id_in_sync_group
        gb = self.global_batch
        audio, feats = batch["audio"], batch["features"]
        local_b = audio.shape[0]
        if local_b is None or local_b * self.num_replicas != gb:
            raise ValueError(f"per-replica batch {local_b} x {self.num_replicas} replicas != "
                             f"global batch {gb} (static shapes needed)")
        speaker = batch["speaker"] if self.G.num_speakers > 1 else None
        tcfg = self.config.train
        d_seed = tf.random.experimental.stateless_fold_in(
            self._step_seed(step, 2), tf.cast(rid, tf.int32), alg="philox")
        out_sum: dict[str, tf.Tensor] = {}
        out_mean: dict[str, tf.Tensor] = {}

        # ---- D step: one update on real vs G(z) (G fixed) ----
        if not g_only:
            z_d = self._noise(step, 0, rid, local_b)
            fake = tf.stop_gradient(self.G(feats, z_d, speaker=speaker, training=True))
            x = self.d_view(tf.concat([audio, tf.cast(fake[..., 0], audio.dtype)], axis=0))
            c = tf.concat([feats, feats], axis=0)
            d_vars = self.D.trainable_variables
            with tf.GradientTape() as tape:
                scores = tf.cast(self.D(x, c, seed=d_seed, training=True), tf.float32)
                real_s, fake_s = scores[:local_b], scores[local_b:]
                d_real, d_fake = self._d_hinge_terms(real_s, fake_s, gb)
                d_loss = tf.reduce_sum(d_real + d_fake)
            d_grads = ctx.all_reduce(SUM, tape.gradient(d_loss, d_vars))
            self.d_opt.apply(d_grads, d_vars)
            out_sum.update(d_loss_real=d_real, d_loss_fake=d_fake,
                           score_real=tf.reduce_sum(real_s, axis=0) / gb,
                           score_fake=tf.reduce_sum(fake_s, axis=0) / gb)
            out_mean["d_grad_norm"] = tf.linalg.global_norm(d_grads)

        # ---- G step: one update against the updated D (+ auxiliary losses) ----
        g_vars = self.G.trainable_variables
        with tf.GradientTape() as tape:
            terms, g_metrics, ortho = self._g_terms(batch, step, with_d=not g_only,
                                                    training=True)
            g_loss = tf.constant(0.0)
            for value in terms.values():
                g_loss += value
        out_sum.update(g_metrics)
        g_grads = ctx.all_reduce(SUM, tape.gradient(g_loss, g_vars))
        self.g_opt.apply(g_grads, g_vars)

        # ---- EMA of G's trainable weights (App. D) ----
        decay = tf.where(step >= int(tcfg.get("ema_start_step", 0)),
                         tf.constant(float(tcfg.ema_decay)), tf.constant(0.0))
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._ema_update, ctx.strategy, decay)

        out_mean.update(ortho_penalty=ortho, g_grad_norm=tf.linalg.global_norm(g_grads))
        return {"sum": out_sum, "mean": out_mean}

    def _g_terms(self, batch: dict[str, tf.Tensor], step: tf.Tensor, *, with_d: bool,
                 training: bool
                 ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor], tf.Tensor]:
        """G's objective on this replica as weighted terms ``{name: weight × term}`` in the
        order they are added (their sum over terms and replicas is the global objective: each
        term is a replica sum divided by the global batch), the metrics they log, and the
        orthogonal penalty itself.

        Terms: ``stem_mel``, ``feature_matching`` and ``adversarial`` (with the discriminators,
        ``with_d``), the spectral terms of ``train.aux`` and ``ortho`` (BigGAN's regulariser,
        divided by the replicas since it is the same on each)."""
        ctx = tf.distribute.get_replica_context()
        rid = ctx.replica_id_in_sync_group
        gb = self.global_batch
        audio, feats = batch["audio"], batch["features"]
        local_b = audio.shape[0]
        speaker = batch["speaker"] if self.G.num_speakers > 1 else None
        aux = self.aux
        g_seed = tf.random.experimental.stateless_fold_in(
            self._step_seed(step, 3), tf.cast(rid, tf.int32), alg="philox")
        z_g = self._noise(step, 1, rid, local_b)
        terms: dict[str, tf.Tensor] = {}
        out_sum: dict[str, tf.Tensor] = {}
        if aux.stem_mel_weight > 0:
            fake_g, stem = self.G(feats, z_g, speaker=speaker, training=training,
                                  return_stem=True)
            per_example = aux.stem_mel_term(self._loss_view(audio), stem,
                                            self.G.samples_per_frame)
            out_sum["aux/stem_mel"] = tf.reduce_sum(per_example) / gb
            terms["stem_mel"] = aux.stem_mel_weight * out_sum["aux/stem_mel"]
        else:
            fake_g = self.G(feats, z_g, speaker=speaker, training=training)
        if with_d:
            d_fake_in = self.d_view(fake_g[..., 0])
            if aux.fm_weight > 0:
                g_scores, fake_acts = self.D.score_and_activations(
                    d_fake_in, feats, seed=g_seed, training=False)
                _, real_acts = self.D.score_and_activations(
                    self.d_view(audio), feats, seed=g_seed, training=False)
                fm = losses.feature_matching(
                    [tf.stop_gradient(tf.cast(a, tf.float32)) for a in real_acts],
                    [tf.cast(a, tf.float32) for a in fake_acts])
                out_sum["aux/feature_matching"] = tf.reduce_sum(fm) / gb
                terms["feature_matching"] = aux.fm_weight * out_sum["aux/feature_matching"]
            else:
                g_scores = self.D(d_fake_in, feats, seed=g_seed, training=False)
            g_scores = tf.cast(g_scores, tf.float32)
            g_adv = hinge_g_terms(g_scores, gb)
            terms["adversarial"] = aux.adversarial_weight * tf.reduce_sum(g_adv)
            out_sum.update(g_loss_adv=g_adv,
                           score_fake_g_step=tf.reduce_sum(g_scores, axis=0) / gb)
        if aux.spectral:
            fake2 = (self.G(feats, self._noise(step, 4, rid, local_b), speaker=speaker,
                            training=training) if aux.ged_weight > 0 else None)
            for name, (weight, per_example) in aux.spectral_terms(
                    self._loss_view(audio), self._loss_view(fake_g[..., 0]),
                    None if fake2 is None else self._loss_view(fake2[..., 0])).items():
                out_sum[f"aux/{name}"] = tf.reduce_sum(per_example) / gb
                terms[name] = weight * out_sum[f"aux/{name}"]
        beta = float(self.config.train.ortho_reg_beta)
        ortho = (ops.off_diagonal_orthogonal_penalty(self.G.orthogonal_kernels(), beta)
                 if beta > 0 else tf.constant(0.0))
        # The regulariser is identical on every replica; gradients are summed over them.
        terms["ortho"] = ortho / self.num_replicas
        return terms, out_sum, ortho

    def _replica_grad_norms(self, batch: dict[str, tf.Tensor], step: tf.Tensor
                            ) -> dict[str, tf.Tensor]:
        """``grad_norm/<term>``: the global norm of the gradient that each weighted term of
        G's objective sends to G's weights (all-reduced over replicas), the discriminators
        included whatever the step. A diagnostic (``train.log_grad_norms``): G runs in
        inference mode (moving BN statistics, no SN power iteration), so it changes no state."""
        ctx = tf.distribute.get_replica_context()
        g_vars = self.G.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            terms, _, _ = self._g_terms(batch, step, with_d=True, training=False)
        out = {}
        for name, value in terms.items():
            grads = [g for g in tape.gradient(value, g_vars) if g is not None]
            out[f"grad_norm/{name}"] = (tf.linalg.global_norm(ctx.all_reduce(SUM, grads))
                                        if grads else tf.constant(0.0))
        del tape
        return out

    def grad_norms(self, dist_batch, step: int) -> dict[str, float]:
        """:meth:`_replica_grad_norms` on a distributed batch, as host floats."""
        if self._grad_norm_fn is None:
            def fn(b, s):
                out = self.strategy.run(self._replica_grad_norms, args=(b, s))
                return {k: self.strategy.reduce(MEAN, v, axis=None) for k, v in out.items()}
            self._grad_norm_fn = tf.function(fn, autograph=False)
        out = self._grad_norm_fn(dist_batch, tf.constant(step, tf.int64))
        return {k: float(v.numpy()) for k, v in out.items()}

    def _loss_view(self, audio: tf.Tensor) -> tf.Tensor:
        """Audio in the domain the auxiliary losses compare: linear (µ-law decoded with
        ``data.mu``) or G's µ-law domain itself (``train.aux.domain``)."""
        audio = tf.cast(audio, tf.float32)
        if self.aux.domain == "mulaw":
            return audio
        return mulaw.decode(audio, self._d_mu[0])

    def _ema_update(self, strategy: tf.distribute.Strategy, decay: tf.Tensor) -> None:
        # ``decay`` arrives per replica (merge_call); ``update`` gets each device's component.
        def update(ema_var, var, d):
            d = tf.cast(d, ema_var.dtype)
            return ema_var.assign(d * ema_var + (1.0 - d) * var)

        for e, v in zip(self.G_ema.trainable_variables, self.G.trainable_variables, strict=True):
            strategy.extended.update(e.value, update, args=(v.value, decay), group=False)

    def _distributed_step(self, replica_fn, dist_batch, step: tf.Tensor
                          ) -> dict[str, tf.Tensor]:
        out = self.strategy.run(replica_fn, args=(dist_batch, step))
        red = {k: self.strategy.reduce(SUM, v, axis=None) for k, v in out["sum"].items()}
        red.update({k: self.strategy.reduce(MEAN, v, axis=None) for k, v in out["mean"].items()})
        return red

    def train_step(self, dist_batch, step: int) -> dict[str, np.ndarray]:
        """One App.-D step (D, G, EMA) on a distributed batch, or a G-only step before
        ``train.d_start_step``; returns reduced metrics."""
        fn = self._dist_steps[int(step) < self.d_start_step]
        out = fn(dist_batch, tf.constant(step, tf.int64))
        return {k: v.numpy() for k, v in out.items()}

    # --- K steps per call (train.steps_per_loop) -------------------------------------------------

    def _steps_loop(self, replica_fn, iterator, step0: tf.Tensor, n: tf.Tensor,
                    sums: dict[str, tf.Tensor], count: tf.Tensor, bad_step: tf.Tensor
                    ) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """Up to ``n`` steps ``step0, step0 + 1, …`` in one graph (a while loop reading the
        distributed ``iterator``): adds each step's reduced metrics to ``sums`` and counts it.
        NaN/inf guard in the graph: ``bad_step`` (−1 while all is finite) becomes the first step
        with a non-finite metric; that step's values are in ``sums`` (so the host can name the
        terms) and no further step runs, in this call or any later one given this flag."""

        def cond(i, sums, count, bad):
            return tf.logical_and(i < n, bad < 0)

        def body(i, sums, count, bad):
            step = step0 + i
            out = self._distributed_step(replica_fn, iterator.get_next(), step)
            finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v))
                                             for v in tf.nest.flatten(out)]))
            sums = {k: sums[k] + out[k] for k in sums}
            return i + 1, sums, count + 1, tf.where(finite, bad, step)

        _, sums, count, bad_step = tf.while_loop(
            cond, body, (tf.constant(0, tf.int64), sums, count, bad_step))
        return sums, count, bad_step

    def zero_metrics(self, g_only: bool, iterator) -> dict[str, tf.Tensor]:
        """Zeros shaped like the reduced metrics of one step (G-only or full), the start of
        :meth:`run_steps`' sums. Traces the step once per kind to learn the shapes."""
        if g_only not in self._metric_specs:
            fn = self._dist_steps[g_only].get_concrete_function(
                iterator.element_spec, tf.TensorSpec([], tf.int64))
            self._metric_specs[g_only] = {
                k: tf.TensorSpec(v.shape, v.dtype) for k, v in fn.structured_outputs.items()}
        return {k: tf.zeros(v.shape, v.dtype) for k, v in self._metric_specs[g_only].items()}

    def run_steps(self, iterator, step: int, n: int, sums: dict[str, tf.Tensor] | None = None,
                  count: tf.Tensor | None = None, bad_step: tf.Tensor | None = None
                  ) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """Steps ``step … step + n − 1`` in one ``tf.function`` call (no device→host
        transfer): returns the device tensors (metric sums, steps counted, first non-finite step
        or −1), to pass back in for the next call and fetch at the host's boundaries. A call
        must not cross ``train.d_start_step``: G-only and full steps are different graphs."""
        g_only = step < self.d_start_step
        if n < 1 or (g_only and step + n > self.d_start_step):
            raise ValueError(f"run_steps({step}, n={n}): expected n >= 1 steps on one side of "
                             f"train.d_start_step={self.d_start_step}")
        if sums is None:
            sums, count = self.zero_metrics(g_only, iterator), tf.constant(0, tf.int64)
        if bad_step is None:
            bad_step = tf.constant(-1, tf.int64)
        return self._loops[g_only](iterator, tf.constant(step, tf.int64),
                                   tf.constant(n, tf.int64), sums, count, bad_step)

    # --- metrics ----------------------------------------------------------------------------------

    def scalar_metrics(self, m: dict[str, np.ndarray]) -> dict[str, float]:
        """Flattens the step metrics into named scalars (per discriminator, totals, norms)."""
        out: dict[str, float] = {}
        for key in ("d_loss_real", "d_loss_fake", "g_loss_adv", "score_real", "score_fake",
                    "score_fake_g_step"):
            if key in m and np.ndim(m[key]) == 0:  # train.d_hinge="ensemble": one D hinge
                out[f"{key}/ensemble"] = float(m[key])
            elif key in m:  # not in G-only steps
                for name, v in zip(self.rwd_names, np.asarray(m[key]).reshape(-1), strict=True):
                    out[f"{key}/{name}"] = float(v)
        if "d_loss_real" in m:
            out["d_loss"] = float(np.sum(m["d_loss_real"]) + np.sum(m["d_loss_fake"]))
            out["d_grad_norm"] = float(m["d_grad_norm"])
            out["g_loss_adv"] = float(np.sum(m["g_loss_adv"]))
        out["ortho_penalty"] = float(m["ortho_penalty"])
        g_loss = out["ortho_penalty"] + self.aux.adversarial_weight * out.get("g_loss_adv", 0.0)
        for key in m:
            if key.startswith("aux/"):
                out[key] = float(m[key])
                g_loss += self.aux.weight(key[4:]) * out[key]
        out["g_loss"] = g_loss
        out["g_grad_norm"] = float(m["g_grad_norm"])
        return out

    # --- EMA generator state for sampling/saving -----------------------------------------------

    def _refresh_ema_state(self, power_iterations: int = 10) -> None:
        """G_ema's non-trainable state: BN statistics copied from G, and SN vectors ``sn_u``
        re-estimated by power iteration on G_ema's own (EMA) kernels, warm-started from G's."""
        for bn_g, bn_e in self._bn_pairs:
            bn_e.moving_mean.assign(tf.convert_to_tensor(bn_g.moving_mean.value))
            bn_e.moving_variance.assign(tf.convert_to_tensor(bn_g.moving_variance.value))
        for l_g, l_e in self._sn_pairs:
            w = ops.matrix_view(tf.convert_to_tensor(l_e.kernel.value))
            l_e.sn_u.assign(power_iteration(w, tf.convert_to_tensor(l_g.sn_u.value),
                                            power_iterations))

    def refresh_ema_state(self) -> None:
        with self.strategy.scope():
            self._refresh_fn()


# ----------------------------------------------------------------------------------------------
# Input pipeline
# ----------------------------------------------------------------------------------------------

def crop_windows(batch: dict[str, tf.Tensor], frames: int, seed: tf.Tensor,
                 samples_per_frame: int = schema.SAMPLES_PER_FRAME) -> dict[str, tf.Tensor]:
    """Random frame-aligned sub-windows of ``frames`` frames per example (static shapes)."""
    total = batch["features"].shape[1]
    if frames == total:
        return batch
    b = batch["features"].shape[0]
    starts = tf.random.stateless_uniform([b], seed, 0, total - frames + 1, dtype=tf.int32,
                                       alg="philox")
    out = dict(batch)
    out["features"] = gather_windows(batch["features"], starts, frames)
    out["audio"] = gather_windows(batch["audio"], starts * samples_per_frame,
                                  frames * samples_per_frame)
    return out


# Windows cut from each whole utterance read (reader throughput: 85 windows/s with 1, 310 with 4
# on 2 loaded cores, benchmarks/reader_benchmark.py; the shuffle buffer mixes them).
RANDOM_WINDOWS_PER_UTTERANCE = 4


def make_train_dataset_fn(config: ml_collections.ConfigDict, data_dir: str, seed: int
                          ) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """``dataset_fn(input_context)`` for ``strategy.distribute_datasets_from_function``:
    per-replica batches of ``config.data.window_frames``-frame training windows, starting at
    random frames of whole utterances (``data.windows = "random"``, §3.1: "we sample 2 second
    windows") or cropped from the prepared grid windows (``"grid"``)."""
    manifest = schema.load_manifest(data_dir)
    frames = int(config.data.window_frames)
    if frames > manifest.window_frames:
        raise ValueError(f"data.window_frames={frames} is longer than the prepared windows "
                         f"({manifest.window_frames} frames in {data_dir}/manifest.json)")
    largest = max((s.window or 0 for s in rwd_specs(config.discriminator)), default=0)
    if frames * manifest.samples_per_frame < largest:
        raise ValueError(f"data.window_frames={frames} is shorter than the largest RWD window "
                         f"({largest} samples = discriminator.omega × window_factor)")

    windows = config.data.get("windows", "grid")
    if windows not in ("random", "grid"):
        raise ValueError(f"config data.windows={windows!r}: expected 'random' (start frames "
                         "anywhere in an utterance) or 'grid' (the prepared windows)")

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        if windows == "random":
            return data_lib.make_random_window_dataset(
                data_dir, "train", int(config.train.global_batch_size), frames, seed=seed,
                input_context=ctx, compression=config.data.get("compression") or None,
                mu=config.data.mu, windows_per_utterance=RANDOM_WINDOWS_PER_UTTERANCE
            ).prefetch(2)
        ds = data_lib.make_dataset(  # deterministic: a run is a function of its config (#17)
            data_dir, "train", int(config.train.global_batch_size), shuffle=True, repeat=True,
            seed=seed, deterministic=True, input_context=ctx,
            compression=config.data.get("compression") or None, mu=config.data.mu)
        base = tf.constant([seed % (2**31), ctx.input_pipeline_id], tf.int32)

        def crop(i, batch):
            s = tf.random.experimental.stateless_fold_in(base, tf.cast(i, tf.int32), alg="philox")
            return crop_windows(batch, frames, s, manifest.samples_per_frame)

        return ds.enumerate().map(crop, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

    return dataset_fn


def eval_batch(data_dir: str, num: int, noise_dim: int, seed: int, mu: float | None = None,
               scan: int = 4096) -> dict[str, tf.Tensor] | None:
    """Fixed validation windows (full prepared length, audio µ-law with ``mu``) + fixed z for
    sampling: ``num`` windows taken round-robin over the speakers in the order they first
    appear among the first ``scan`` windows (prepared splits are sorted by utterance id, so the
    first windows are usually all one speaker's), the first windows of each speaker first."""
    manifest = schema.load_manifest(data_dir)
    split = "valid" if manifest.counts.get("valid", {}).get("windows", 0) > 0 else "train"
    count = int(manifest.counts.get(split, {}).get("windows", 0))
    num = min(num, count)
    if num <= 0:
        return None
    ds = data_lib.make_dataset(data_dir, split, 1, shuffle=False, repeat=False,
                               deterministic=True, mu=mu)
    by_speaker: dict[int, list[dict[str, tf.Tensor]]] = {}
    wanted = -(-num // min(num, max(manifest.num_speakers, 1)))  # windows per speaker
    for ex in ds.take(scan):  # stops at the num-th speaker: at most num × num windows kept
        windows = by_speaker.setdefault(int(ex["speaker"][0]), [])
        if len(windows) < num:
            windows.append(ex)
        if len(by_speaker) >= num or (len(by_speaker) >= manifest.num_speakers
                                      and all(len(w) >= wanted for w in by_speaker.values())):
            break
    picked = [q[i] for i in range(num) for q in by_speaker.values() if i < len(q)][:num]
    batch = {k: tf.concat([ex[k] for ex in picked], axis=0) for k in picked[0]}
    batch["z"] = stateless_normal([len(picked), noise_dim], tf.constant([seed % (2**31), 0xE7A1]))
    return batch


# ----------------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------------

def atomic_write(path: str, text: str) -> None:
    """Writes ``text`` via a temporary file + rename (local or ``gs://``)."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def resolve_config(config: ml_collections.ConfigDict, data_dir: str) -> ml_collections.ConfigDict:
    """Fills in the data-dependent fields (feature dim, speakers, data dir) from the manifest;
    checks ``data.mu``, the µ-law the generator models (App. C; the prepared audio is re-encoded
    when it differs from the manifest's), and ``discriminator.input_mu``."""
    manifest = schema.load_manifest(data_dir)
    config = ml_collections.ConfigDict(config.to_dict())
    config.data.mu = mulaw.check_mu(config.data.get("mu", manifest.mu), "config data.mu")
    d_mu = config.discriminator.get("input_mu", 0.0)
    if d_mu != 0:
        config.discriminator.input_mu = mulaw.check_mu(d_mu, "config discriminator.input_mu "
                                                       "(0 = the generator's µ)")
    d_input_domain(config)
    config.data.data_dir = data_dir
    exc = config.generator.get("excitation")
    if exc is not None and exc.get("enabled", False):
        fill_excitation_columns(exc, manifest, data_dir)
    fill_output_mu(config)
    config.generator.feature_dim = manifest.feature_dim
    config.generator.num_speakers = manifest.num_speakers
    if not config.data.get("compression"):
        config.data.compression = manifest.compression
    return config


D_INPUT_DOMAINS = ("mulaw", "linear")


def d_input_domain(config: ml_collections.ConfigDict) -> str:
    """``discriminator.input_domain`` checked: "mulaw" (G's µ-law, or ``input_mu``'s: the
    paper's view when ``input_mu`` is 0) or "linear" (the decoded waveform; ``input_mu``
    must then be 0)."""
    dcfg = config.discriminator
    domain = str(dcfg.get("input_domain", "mulaw"))
    if domain not in D_INPUT_DOMAINS:
        raise ValueError(f"config discriminator.input_domain={domain!r}: expected one of "
                         f"{D_INPUT_DOMAINS}")
    if domain == "linear" and dcfg.get("input_mu", 0.0):
        raise ValueError("config discriminator.input_domain='linear' decodes G's µ-law: "
                         f"discriminator.input_mu must be 0, got {dcfg.input_mu}")
    return domain


def fill_excitation_columns(exc: ml_collections.ConfigDict, manifest: schema.Manifest,
                            data_dir: str) -> None:
    """Sets ``generator.excitation``'s column indices and normalisation statistics from the
    manifest's ``log_f0`` and ``vuv`` feature blocks (a clear error when there are none)."""
    blocks = {b.name: b for b in manifest.feature_breakdown}
    missing = [n for n in ("log_f0", "vuv") if n not in blocks or blocks[n].size != 1]
    if missing:
        raise ValueError(f"config generator.excitation needs one-column 'log_f0' and 'vuv' "
                         f"feature blocks in {data_dir}/{schema.MANIFEST_NAME}; missing "
                         f"{missing} (found {sorted(blocks)})")
    lf0, vuv = blocks["log_f0"].start, blocks["vuv"].start
    exc.lf0_index, exc.vuv_index = int(lf0), int(vuv)
    exc.lf0_mean, exc.lf0_std = float(manifest.mean[lf0]), float(manifest.std[lf0])
    exc.vuv_mean, exc.vuv_std = float(manifest.mean[vuv]), float(manifest.std[vuv])


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did: first/last step, first/last logged scalars, checkpoint path,
    training speed (tracing included) and the trainer (models, optimizers) at the end."""

    start_step: int
    end_step: int
    first_metrics: dict[str, float]
    last_metrics: dict[str, float]
    checkpoint: str | None
    steps_per_sec: float
    trainer: GANTrainer | None = None


class _StopRequest:
    """SIGTERM (e.g. a preempted VM) → finish the current step, save, exit."""

    def __init__(self) -> None:
        self.stop = False
        self._old = None

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread
            self._old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        del signum, frame
        self.stop = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def steps_per_loop(config: ml_collections.ConfigDict) -> int:
    """``train.steps_per_loop`` K: train steps per ``tf.function`` call (1 on CPU; e.g. 100 on
    a TPU, where a host round trip per step idles the pod)."""
    k = config.train.get("steps_per_loop", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"config train.steps_per_loop={k!r}: expected an integer >= 1 (train "
                         "steps per tf.function call)")
    return k


def loop_length(step: int, k: int, max_steps: int, d_start_step: int,
                every: tuple[int, ...]) -> int:
    """Steps of the next call from ``step``: at most ``k``, ending at the next multiple of
    each positive interval in ``every`` (log/eval/save), at ``max_steps``, and at
    ``d_start_step`` (the G-only and the full step are different graphs)."""
    end = min(step + k, max_steps)
    if step < d_start_step:
        end = min(end, d_start_step)
    for e in every:
        if e > 0:
            end = min(end, (step // e + 1) * e)
    return end - step


def check_finite(scalars: dict[str, float], step: int, last_ckpt_step: int | None) -> None:
    """NaN/inf guard: raises :class:`NonFiniteLossError` naming the step and the bad terms."""
    bad = {k: v for k, v in scalars.items() if not math.isfinite(v)}
    if bad:
        terms = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        kept = ("no checkpoint was written" if last_ckpt_step is None
                else f"the last checkpoint (step {last_ckpt_step}) is kept")
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {terms}; stopping without saving ({kept})")


def train(config: ml_collections.ConfigDict, model_dir: str,
          strategy: tf.distribute.Strategy | None = None, *, xla: bool = False,
          log: Callable[[str], None] | None = None,
          trainer: GANTrainer | None = None, init_checkpoint: str | None = None
          ) -> TrainResult:
    """Trains (or resumes) the GAN of ``config`` on ``config.data.data_dir`` into ``model_dir``.

    Writes ``config.json`` and ``manifest.json`` at start, checkpoints every
    ``train.save_every`` steps and at exit (not after a non-finite loss), TensorBoard summaries
    under ``model_dir/train`` every ``log_every`` / ``eval_every`` steps, and prints progress.
    ``trainer`` reuses already built (and traced) models of the same config and strategy.
    ``init_checkpoint`` (a :func:`write_weights` checkpoint) starts a ``model_dir`` that has
    no checkpoint yet from those weights and step.
    """
    log = log or (lambda s: print(s, flush=True))
    strategy = strategy or tf.distribute.get_strategy()
    data_dir = config.data.data_dir
    if not data_dir:
        raise ValueError("no data directory: pass --data_dir (or --config.data.data_dir)")
    config = resolve_config(config, data_dir)
    tcfg = config.train
    _, task_id, is_chief = strategy_lib.task_info(strategy)
    tf.io.gfile.makedirs(model_dir)
    if is_chief:
        atomic_write(os.path.join(model_dir, "config.json"),
                     config.to_json_best_effort(indent=2))
        with tf.io.gfile.GFile(os.path.join(data_dir, schema.MANIFEST_NAME)) as f:
            atomic_write(os.path.join(model_dir, schema.MANIFEST_NAME), f.read())

    if trainer is None:
        trainer = GANTrainer(config, strategy, config.generator.feature_dim,
                             config.generator.num_speakers, xla=xla)
    elif trainer.strategy is not strategy:
        raise ValueError("train(trainer=...): the trainer was built for another strategy")
    ckpt_dir = model_dir if is_chief else os.path.join(model_dir, f".worker{task_id}_tmp")
    manager = tf.train.CheckpointManager(
        trainer.ckpt, directory=ckpt_dir,
        max_to_keep=int(tcfg.keep_checkpoints) if is_chief else 1)
    latest = tf.train.latest_checkpoint(model_dir)
    if latest:
        trainer.ckpt.restore(latest).assert_existing_objects_matched()
        log(f"restored {latest} (step {int(trainer.step.numpy())})")
    elif init_checkpoint:
        restore_weights(trainer, init_checkpoint)
        log(f"initialised from {init_checkpoint} (step {int(trainer.step.numpy())}; weights "
            "only: the optimizers start afresh)")
    start = int(trainer.step.numpy())
    last_saved: int | None = start if latest else None
    max_steps = int(tcfg.max_steps)

    # Input: reseeded with the start step, so a resumed run does not replay the same order.
    seed = (int(tcfg.seed) * 1_000_003 + start) % (2**31)
    dist_ds = strategy.distribute_datasets_from_function(
        make_train_dataset_fn(config, data_dir, seed))
    iterator: Iterator = iter(dist_ds)
    evals = (eval_batch(data_dir, int(tcfg.get("eval_examples", 4)), config.generator.noise_dim,
                        int(tcfg.seed), config.data.mu) if is_chief and tcfg.eval_every > 0
             else None)
    distance = (make_training_distance(config, data_dir) if is_chief and tcfg.eval_every > 0
                else None)
    writer = (tf.summary.create_file_writer(os.path.join(model_dir, "train")) if is_chief
              else tf.summary.create_noop_writer())
    # A fixed probe batch for grad_norm/<term> (its own input order: the training order is
    # the same with and without the diagnostic).
    probe = (next(iter(strategy.distribute_datasets_from_function(
        make_train_dataset_fn(config, data_dir, (seed + 0x9E3779B1) % (2**31)))))
        if tcfg.get("log_grad_norms", False) else None)

    def save(step: int) -> str:
        trainer.refresh_ema_state()
        path = manager.save(checkpoint_number=step)
        if not is_chief:  # through gfile: shutil would silently skip a gs:// directory
            with contextlib.suppress(tf.errors.OpError):
                tf.io.gfile.rmtree(ckpt_dir)
        return path

    log(f"training {config.name} from step {start} to {max_steps}: global batch "
        f"{trainer.global_batch} on {trainer.num_replicas} replica(s) "
        f"({type(strategy).__name__}{', XLA' if xla else ''}), {len(trainer.rwd_names)} RWDs")
    step = start
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    k_loop = steps_per_loop(config)
    # Device-side state between fetches: metric sums and step counts per step kind (G-only /
    # full), and the in-graph NaN guard's first non-finite step (−1: none).
    pending: dict[bool, tuple[dict[str, tf.Tensor], tf.Tensor]] = {}
    bad_step = tf.constant(-1, tf.int64)
    t_log, steps_since, train_time, run_steps = time.perf_counter(), 0, 0.0, 0
    ckpt_path = latest
    clean_exit = False

    def fetch() -> dict[str, float]:
        """Brings the metrics since the last fetch to the host (their means per key) and
        raises :class:`NonFiniteLossError` if a step was non-finite."""
        nonlocal pending
        total: dict[str, float] = {}
        count: dict[str, int] = {}
        for sums, n in pending.values():
            n = int(n.numpy())
            for k, v in trainer.scalar_metrics({k: v.numpy() for k, v in sums.items()}).items():
                total[k] = total.get(k, 0.0) + v
                count[k] = count.get(k, 0) + n
        pending = {}
        means = {k: v / max(count[k], 1) for k, v in total.items()}
        bad = int(bad_step.numpy())
        if bad >= 0:  # the bad step's values are in the sums: its non-finite terms are named
            check_finite(means, bad, last_saved)
            raise NonFiniteLossError(f"non-finite loss at step {bad}; stopping without saving")
        return means

    def check_state() -> None:
        """Before a checkpoint or an eval: the in-graph guard's flag (one scalar) is clear."""
        if int(bad_step.numpy()) >= 0:
            fetch()  # raises, naming the step and the terms

    with _StopRequest() as stop, writer.as_default():
        try:
            while step < max_steps and not stop.stop:
                n = loop_length(step, k_loop, max_steps, trainer.d_start_step,
                                (tcfg.log_every, tcfg.eval_every, tcfg.save_every))
                g_only = step < trainer.d_start_step
                t0 = time.perf_counter()
                sums, count = pending.get(g_only, (None, None))
                sums, count, bad_step = trainer.run_steps(iterator, step, n, sums, count,
                                                          bad_step)
                pending[g_only] = (sums, count)
                train_time += time.perf_counter() - t0
                step += n
                run_steps += n
                trainer.step.assign(step)
                steps_since += n
                if step % tcfg.log_every == 0 or step == max_steps:
                    t0 = time.perf_counter()
                    last = fetch()
                    train_time += time.perf_counter() - t0
                    if not first:
                        first = dict(last)
                    now = time.perf_counter()
                    sps = steps_since / max(now - t_log, 1e-9)
                    if probe is not None:
                        last.update(trainer.grad_norms(probe, step))
                    for k, v in last.items():
                        tf.summary.scalar(k, v, step=step)
                    tf.summary.scalar("lr/generator", tcfg.g_learning_rate, step=step)
                    tf.summary.scalar("lr/discriminator", tcfg.d_learning_rate, step=step)
                    if run_steps > steps_since:  # not the interval that traced the step
                        tf.summary.scalar("perf/steps_per_sec", sps, step=step)
                        tf.summary.scalar("perf/examples_per_sec", sps * trainer.global_batch,
                                          step=step)
                    d_part = (f"d_loss {last['d_loss']:.4f}  |gD| {last['d_grad_norm']:.3g}  "
                              if "d_loss" in last else "G only  ")
                    aux_part = "".join(f"{k[4:]} {v:.4g}  " for k, v in sorted(last.items())
                                       if k.startswith("aux/"))
                    norm_part = "".join(f"|g {k[10:]}| {v:.3g}  " for k, v in
                                        sorted(last.items()) if k.startswith("grad_norm/"))
                    log(f"step {step}/{max_steps}  {d_part}g_loss {last['g_loss']:.4f}  "
                        f"{aux_part}|gG| {last['g_grad_norm']:.3g}  {norm_part}"
                        f"{sps * trainer.global_batch:.1f} ex/s"
                        f"  {sps:.2f} steps/s  " + (
                            f"ETA {_fmt_eta((max_steps - step) / sps)}"
                            if run_steps > steps_since else "(includes tracing)"))
                    steps_since, t_log = 0, time.perf_counter()
                if tcfg.eval_every > 0 and step % tcfg.eval_every == 0:
                    check_state()
                    trainer.refresh_ema_state()
                    if evals is not None:
                        values: dict[str, float] = {}
                        write_eval_summaries(
                            trainer, evals, step, config.data.sample_rate, config.data.mu,
                            int(tcfg.get("eval_standing_passes", 10)), distance, values)
                        if values:
                            log(f"step {step}  eval " + "  ".join(
                                f"{k} {v:.4g}" for k, v in sorted(values.items())))
                    writer.flush()
                if tcfg.save_every > 0 and step % tcfg.save_every == 0:
                    check_state()
                    ckpt_path = save(step)
                    last_saved = step
                    t_log = time.perf_counter()
            clean_exit = True
        except KeyboardInterrupt:
            log(f"interrupted at step {step}")
            clean_exit = True
        finally:
            if clean_exit and step != last_saved and run_steps > 0:
                check_state()  # raises instead of saving a non-finite state
                ckpt_path = save(step)
                last_saved = step
                log(f"saved {ckpt_path}")
            writer.flush()
    if pending:  # steps after the last log (an early stop): checked above, kept in the result
        last = fetch()
        first = first or dict(last)
    return TrainResult(start, step, first, last, ckpt_path,
                       run_steps / train_time if train_time > 0 else 0.0, trainer)


def _weights_checkpoint(trainer: GANTrainer) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(step=trainer.step, generator=trainer.G,
                               ema_generator=trainer.G_ema, discriminator=trainer.D)


def write_weights(trainer: GANTrainer, path: str) -> str:
    """Writes the step and the G, G_ema and D weights (no optimizer state: ~⅓ of a training
    checkpoint) to the checkpoint prefix ``path``; returns it. For carrying a run across
    machines (``tts-gan-train --init_checkpoint``)."""
    trainer.refresh_ema_state()
    return _weights_checkpoint(trainer).write(path)


def write_latest_weights(model_dir: str, path: str,
                         strategy: tf.distribute.Strategy | None = None) -> str:
    """:func:`write_weights` of ``model_dir``'s latest checkpoint, with the models of the run's
    own ``config.json`` (as resolved when it started)."""
    latest = tf.train.latest_checkpoint(model_dir)
    if not latest:
        raise FileNotFoundError(f"{model_dir}: no checkpoint to write weights from")
    with tf.io.gfile.GFile(os.path.join(model_dir, "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    migrate_window_entries(config.discriminator)  # config.json written before #17
    strategy = strategy or tf.distribute.get_strategy()
    trainer = GANTrainer(config, strategy, int(config.generator.feature_dim),
                         int(config.generator.num_speakers))
    trainer.ckpt.restore(latest).assert_existing_objects_matched()
    return write_weights(trainer, path)


def restore_weights(trainer: GANTrainer, path: str) -> None:
    """Restores a :func:`write_weights` checkpoint; every variable of G, G_ema and D must be
    in it (a clear error otherwise)."""
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"--init_checkpoint {path}: no checkpoint ({path}.index is "
                                "missing)")
    try:
        _weights_checkpoint(trainer).read(path).assert_consumed()
    except (AssertionError, ValueError) as e:  # missing / unmatched / wrong-shape variables
        raise ValueError(f"--init_checkpoint {path}: does not match this config's models "
                         f"({str(e).splitlines()[0][:300]})") from None


def weights_digest(variables: list) -> str:
    """SHA-256 of the concatenated bytes of ``variables`` (for cross-worker comparisons)."""
    import hashlib

    h = hashlib.sha256()
    for v in variables:
        h.update(np.ascontiguousarray(np.asarray(v.numpy() if hasattr(v, "numpy") else v))
                 .tobytes())
    return h.hexdigest()




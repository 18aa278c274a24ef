"""The App.-D train step: one D update, one G update, the EMA update, as one compiled call.

App. D: "We train all models with a single discriminator step per generator step, but with
doubled learning rate: 1e-4 for the former, compared to 5e-5 for the latter. We use the hinge
loss [...] off-diagonal orthogonal regularisation and exponential moving averaging to the
generator weights with a decay rate of 0.9999 for sampling. We also use cross-replica
BatchNorm." :meth:`GANTrainer._replica_step` is that list in order; G's objective is the sum of
named weighted terms (:meth:`GANTrainer._g_terms`: the hinge, the opt-in auxiliary losses of
:mod:`tts_gan.losses`, the orthogonal penalty).

Distribution: one ``tf.function`` runs the whole step through ``strategy.run``. Per-replica
losses are sums over the replica's examples divided by the *global* batch size, gradients are
all-reduced (summed) once by the step itself, so the update is the same whatever the number of
replicas. Randomness is a pure function of ``(config.train.seed, step)`` (stateless RNG): z is
drawn for the whole global batch and each replica takes its slice, so z does not depend on how
the batch is split. ``train.steps_per_loop`` = K steps run in one call
(:meth:`GANTrainer.run_steps`), with the NaN guard in the graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tts_gan import losses, mulaw, ops
from tts_gan.layers import SNConv1D, SNDense, power_iteration
from tts_gan.losses import hinge_g_terms
from tts_gan.train_setup import build_models, d_input_domain, make_optimizer, stateless_normal

SUM, MEAN = tf.distribute.ReduceOp.SUM, tf.distribute.ReduceOp.MEAN


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

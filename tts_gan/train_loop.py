"""The training loop: strategies, K steps per call, the NaN guard, checkpoints and resume.

:func:`train` runs App. D's step (:mod:`tts_gan.train_step`) ``train.max_steps`` times on any
``tf.distribute`` strategy, checkpointing every ``train.save_every`` steps and at exit, and
resumes from the latest checkpoint of its model directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf

from tts_gan import schema
from tts_gan import strategy as strategy_lib
from tts_gan.discriminator import migrate_window_entries
from tts_gan.train_input import eval_batch, make_train_dataset_fn
from tts_gan.train_setup import resolve_config
from tts_gan.train_step import GANTrainer
from tts_gan.train_summaries import (
    make_training_distance,
    write_eval_summaries,
    write_train_scalars,
)


class NonFiniteLossError(RuntimeError):
    """A loss or gradient norm became NaN/inf; training stopped without saving."""



def atomic_write(path: str, text: str) -> None:
    """Writes ``text`` via a temporary file + rename (local or ``gs://``)."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


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

    App. D's recipe, in the order below: build G, G_ema and D with orthogonal initialisation
    and spectral norm and two Adams (β1 = 0, β2 = 0.999; :class:`GANTrainer`) or restore them;
    read 2-s windows of the global batch (:func:`make_train_dataset_fn`); then per step one D
    update and one G update on the hinge loss (D at twice G's learning rate) plus the
    orthogonal penalty, and the EMA of G's weights (decay 0.9999), K steps per call
    (:meth:`GANTrainer.run_steps`); log, sample G_ema with standing statistics, checkpoint.

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
    init_note = None
    if init_checkpoint and not tf.train.latest_checkpoint(model_dir):  # before writing
        init_note = check_init_data(init_checkpoint, schema.load_manifest(data_dir))
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
        log(init_note)
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
                    write_train_scalars(last, step, max_steps, tcfg, trainer.global_batch, sps,
                                        run_steps > steps_since, log)
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


# Beside a weights checkpoint PREFIX: the manifest.json of the data its weights were trained on.
WEIGHTS_MANIFEST_SUFFIX = ".manifest.json"


def write_weights(trainer: GANTrainer, path: str, manifest_text: str | None = None) -> str:
    """Writes the step and the G, G_ema and D weights (no optimizer state: ~⅓ of a training
    checkpoint) to the checkpoint prefix ``path``; returns it. For carrying a run across
    machines (``tts-gan-train --init_checkpoint``). ``manifest_text``: the training data's
    manifest.json, written to ``path`` + :data:`WEIGHTS_MANIFEST_SUFFIX` so that a run started
    from the weights can check that its data has the same features (:func:`check_init_data`)."""
    trainer.refresh_ema_state()
    out = _weights_checkpoint(trainer).write(path)
    if manifest_text is not None:
        atomic_write(path + WEIGHTS_MANIFEST_SUFFIX, manifest_text)
    return out


def write_latest_weights(model_dir: str, path: str,
                         strategy: tf.distribute.Strategy | None = None) -> str:
    """:func:`write_weights` of ``model_dir``'s latest checkpoint, with the models of the run's
    own ``config.json`` (as resolved when it started) and its data's manifest.json."""
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
    manifest = os.path.join(model_dir, schema.MANIFEST_NAME)
    text = None
    if tf.io.gfile.exists(manifest):
        with tf.io.gfile.GFile(manifest) as f:
            text = f.read()
    return write_weights(trainer, path, text)


def feature_identity(manifest: schema.Manifest) -> dict[str, Any]:
    """What makes two preps' features the same inputs: dimension, input format and, for HTS
    labels, the front-end version, the F0 estimator and the question file's hash (where
    recorded). Normalisation statistics are not part of it (every corpus has its own)."""
    from tts_gan.synthesis_inputs import SynthesisError, f0_method, frontend_version

    ident: dict[str, Any] = {"feature_dim": manifest.feature_dim,
                             "input_format": manifest.extra.get("input_format")}
    if ident["input_format"] == "hts":
        ident["frontend_version"] = frontend_version(manifest)
        try:
            ident["f0_method"] = f0_method(manifest)
        except SynthesisError:
            ident["f0_method"] = None  # unknown: not compared
        ident["question_file_sha256"] = manifest.extra.get("question_file_sha256")
    return ident


def check_init_data(init_checkpoint: str, data_manifest: schema.Manifest) -> str:
    """Raises ValueError when ``init_checkpoint``'s weights were trained on features that mean
    something else than ``data_manifest``'s (:func:`feature_identity`; fields unknown on
    either side are not compared), naming each difference and the prep flag that reproduces
    the weights' features. Returns a line for the log: the normalisation shift (largest
    |Δmean| in the weights' std units), or that the weights' data is unknown."""
    path = init_checkpoint + WEIGHTS_MANIFEST_SUFFIX
    if not tf.io.gfile.exists(path):
        return (f"{path} is absent: the features the init weights were trained on are "
                "unknown, not checked against --data_dir")
    with tf.io.gfile.GFile(path) as f:
        old = schema.manifest_from_json(json.loads(f.read()), path)
    a, b = feature_identity(old), feature_identity(data_manifest)
    diffs = [f"{k} {a[k]!r} (weights) vs {b.get(k)!r} (--data_dir)" for k in a
             if a[k] is not None and b.get(k) is not None and a[k] != b[k]]
    if diffs:
        hint = (f" (tts-gan-prep --frontend_version={a['frontend_version']} reproduces the "
                "weights' front end)" if "frontend_version" in a
                and a["frontend_version"] != b.get("frontend_version") else "")
        raise ValueError(f"--init_checkpoint {init_checkpoint}: its weights were trained on "
                         f"other features than --data_dir's: {'; '.join(diffs)}{hint}")
    shift = float(np.max(np.abs(np.asarray(old.mean) - np.asarray(data_manifest.mean))
                         / np.maximum(np.asarray(old.std), 1e-12)))
    return (f"init weights' features match --data_dir's ({path}); normalisation shift: "
            f"largest |mean difference| {shift:.3g} of the weights' std")


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

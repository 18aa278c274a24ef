"""The training input: per-replica batches of random (or prepared grid) windows, and the fixed
validation windows sampled during training (§3.1: "we sample 2 second windows")."""

from __future__ import annotations

from collections.abc import Callable

import ml_collections
import tensorflow as tf

from tts_gan import data as data_lib
from tts_gan import schema
from tts_gan.discriminator import gather_windows, rwd_specs
from tts_gan.train_setup import stateless_normal


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

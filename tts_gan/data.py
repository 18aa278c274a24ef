"""tf.data input pipeline for GAN-TTS training windows and whole test utterances.

Reads the shards written by ``tts-gan-prep`` (schema in :mod:`tts_gan.schema`): 2-s windows of
µ-law audio (48000 samples, App. C) with 400 frames of 200 Hz linguistic + pitch features
(paper §3.1), normalised with the train-split statistics of ``manifest.json``.
"""

from __future__ import annotations

import os

import tensorflow as tf

from tts_gan import mulaw, schema


def _list_files(data_dir: str, prefix: str) -> list[str]:
    pattern = os.path.join(data_dir, schema.shard_pattern(prefix))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"{pattern}: no TFRecord shards found (run tts-gan-prep?)")
    return files


def make_dataset(
    data_dir: str,
    split: str,
    global_batch_size: int,
    *,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    compression: str | None = None,
    shuffle_buffer: int = 2048,
    mu: float | None = None,
) -> tf.data.Dataset:
    """Batches of training/validation windows with static shapes.

    Yields ``{"audio": float32 [B, 48000] (µ-law), "features": float32 [B, 400, D]
    (normalised), "speaker": int32 [B]}`` with ``drop_remainder=True``. With ``input_context``
    (``strategy.distribute_datasets_from_function``) B is the per-replica batch
    ``global_batch_size // num_replicas_in_sync`` and files are sharded by input pipeline;
    ``AutoShardPolicy.FILE`` is set for ``experimental_distribute_dataset`` users. Paths go
    through ``tf.io.gfile`` so ``gs://`` works. ``deterministic=True`` gives a reproducible
    order (with ``seed``); ``compression`` defaults to the manifest's. ``mu`` re-encodes the
    audio from the manifest's µ-law to µ-law with that µ (App. C; default: the manifest's).
    """
    if split not in schema.SPLITS:
        raise ValueError(f"split must be one of {schema.SPLITS}, got {split!r}")
    manifest = schema.load_manifest(data_dir)
    mu_out = _output_mu(manifest, mu)
    dim, frames = manifest.feature_dim, manifest.window_frames
    samples = manifest.window_samples
    comp = manifest.compression if compression is None else compression
    files = _list_files(data_dir, split)

    batch = global_batch_size
    if input_context is not None:
        replicas = input_context.num_replicas_in_sync
        if global_batch_size % replicas:
            raise ValueError(
                f"global_batch_size {global_batch_size} is not divisible by the "
                f"{replicas} replicas"
            )
        batch = input_context.get_per_replica_batch_size(global_batch_size)
        if len(files) < input_context.num_input_pipelines:
            raise ValueError(
                f"{data_dir}: {len(files)} {split} shards for "
                f"{input_context.num_input_pipelines} input pipelines; "
                "re-run tts-gan-prep with a smaller --utterances_per_shard"
            )
    if batch <= 0:
        raise ValueError(f"batch size must be positive, got {batch}")

    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=comp or None),
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch, drop_remainder=True)
    spec = schema.window_parse_spec(dim, frames)
    mean = tf.constant(manifest.mean, tf.float32)
    std = tf.constant(manifest.std, tf.float32)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        ex = tf.io.parse_example(serialized, spec)
        feats = tf.reshape(ex[schema.FEATURES], [batch, frames, dim])
        return {
            "audio": mulaw.transcode(tf.ensure_shape(ex[schema.AUDIO], [batch, samples]),
                                     manifest.mu, mu_out),
            "features": (feats - mean) / std,
            "speaker": tf.cast(ex[schema.SPEAKER], tf.int32),
        }

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    options.deterministic = deterministic
    return ds.with_options(options)


def _output_mu(manifest: schema.Manifest, mu: float | None) -> float:
    """The µ the datasets encode with: the manifest's, or ``mu`` (checked) to re-encode."""
    return manifest.mu if mu is None else mulaw.check_mu(mu)


def make_utterance_dataset(
    data_dir: str, split: str = "test", *, compression: str | None = None,
    mu: float | None = None,
) -> tf.data.Dataset:
    """Whole utterances (unbatched, in file order) for synthesis and evaluation.

    Yields ``{"audio": float32 [120 T] (µ-law), "features": float32 [T, D] (normalised),
    "speaker": int32 [], "utterance_id": string [], "num_frames": int32 []}``; ``mu`` as in
    :func:`make_dataset`.
    """
    manifest = schema.load_manifest(data_dir)
    mu_out = _output_mu(manifest, mu)
    dim = manifest.feature_dim
    comp = manifest.compression if compression is None else compression
    files = _list_files(data_dir, f"{split}_utterances")
    spec = schema.utterance_parse_spec()
    mean = tf.constant(manifest.mean, tf.float32)
    std = tf.constant(manifest.std, tf.float32)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        ex = tf.io.parse_single_example(serialized, spec)
        feats = tf.reshape(ex[schema.FEATURES], [-1, dim])
        return {
            "audio": mulaw.transcode(ex[schema.AUDIO], manifest.mu, mu_out),
            "features": (feats - mean) / std,
            "speaker": tf.cast(ex[schema.SPEAKER], tf.int32),
            "utterance_id": ex[schema.UTTERANCE_ID],
            "num_frames": tf.cast(ex[schema.NUM_FRAMES], tf.int32),
        }

    ds = tf.data.TFRecordDataset(files, compression_type=comp or None)
    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )


def dataset_info(data_dir: str) -> tuple[int, int]:
    """(feature dim D, number of speakers) from the manifest, without reading records."""
    m = schema.load_manifest(data_dir)
    return m.feature_dim, m.num_speakers

"""tf.data input pipeline for GAN-TTS training windows and whole utterances.

Reads the shards written by ``tts-gan-prep`` (schema in :mod:`tts_gan.schema`): 2-s windows of
µ-law audio (48000 samples, App. C) with 400 frames of 200 Hz linguistic + pitch features
(paper §3.1), normalised with the train-split statistics of ``manifest.json``.
:func:`make_dataset` reads the prepared windows (a fixed grid of start frames);
:func:`make_random_window_dataset` cuts windows at uniformly random start frames out of the
whole-utterance records, so every frame of every utterance is reachable (§3.1: "we sample 2
second windows" from the utterances).
"""

from __future__ import annotations

import hashlib
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

    batch = _per_replica_batch(global_batch_size, input_context, len(files), data_dir, split)

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

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        ex = tf.io.parse_example(serialized, spec)
        feats = tf.reshape(ex[schema.FEATURES], [batch, frames, dim])
        return {
            "audio": mulaw.transcode(tf.ensure_shape(ex[schema.AUDIO], [batch, samples]),
                                     manifest.mu, mu_out),
            "features": schema.normalize(feats, manifest),
            "speaker": tf.cast(ex[schema.SPEAKER], tf.int32),
        }

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    options.deterministic = deterministic
    return ds.with_options(options)


def _per_replica_batch(
    global_batch_size: int, input_context: tf.distribute.InputContext | None, num_files: int,
    data_dir: str, what: str,
) -> int:
    """The batch one input pipeline yields; checks divisibility and files per pipeline."""
    batch = global_batch_size
    if input_context is not None:
        replicas = input_context.num_replicas_in_sync
        if global_batch_size % replicas:
            raise ValueError(
                f"global_batch_size {global_batch_size} is not divisible by the "
                f"{replicas} replicas"
            )
        batch = input_context.get_per_replica_batch_size(global_batch_size)
        if num_files < input_context.num_input_pipelines:
            raise ValueError(
                f"{data_dir}: {num_files} {what} shards for "
                f"{input_context.num_input_pipelines} input pipelines; "
                "re-run tts-gan-prep with a smaller --utterances_per_shard"
            )
    if batch <= 0:
        raise ValueError(f"batch size must be positive, got {batch}")
    return batch


def make_random_window_dataset(
    data_dir: str,
    split: str,
    global_batch_size: int,
    window_frames: int | None = None,
    *,
    seed: int,
    input_context: tf.distribute.InputContext | None = None,
    compression: str | None = None,
    mu: float | None = None,
    shuffle_buffer: int = 256,
    windows_per_utterance: int = 1,
    repeat: bool = True,
    with_positions: bool = False,
) -> tf.data.Dataset:
    """Batches of windows at uniformly random start frames of whole utterances (§3.1).

    Reads ``{split}_utterances-*`` (whole utterances, written by ``tts-gan-prep`` for every
    split); for each utterance read (T frames) draws ``windows_per_utterance`` start frames s
    uniformly in [0, T − w] (w = ``window_frames``, default and maximum: the prepared window,
    which every prepared utterance is at least as long as), so the first and last frame of
    every utterance are reachable; the grid of :func:`make_dataset` drops each tail. A window is
    audio samples [120 s, 120 (s + w)) with feature frames [s, s + w).

    Yields ``{"audio": float32 [B, 120 w] (µ-law), "features": float32 [B, w, D] (normalised),
    "speaker": int32 [B]}`` (``drop_remainder=True``): the static shapes of
    :func:`make_dataset` for w = the prepared window. ``with_positions`` adds
    ``"utterance_id"`` string [B] and ``"start_frame"`` int32 [B]. The start frames come from
    stateless RNG keyed by (``seed``, input pipeline, utterance read index), and the file and
    utterance order from ``seed``, so a seed gives the same batches on every run.
    ``input_context``, ``compression`` and ``mu`` are as in :func:`make_dataset`.
    ``shuffle_buffer`` counts windows (utterances are shuffled in a buffer of
    ``shuffle_buffer // windows_per_utterance`` records first). ``repeat=False``: one pass over
    the utterances.
    """
    if split not in schema.SPLITS:
        raise ValueError(f"split must be one of {schema.SPLITS}, got {split!r}")
    manifest = schema.load_manifest(data_dir)
    mu_out = _output_mu(manifest, mu)
    w = manifest.window_frames if window_frames is None else int(window_frames)
    if not 0 < w <= manifest.window_frames:
        raise ValueError(
            f"window_frames must be in [1, {manifest.window_frames}] (the prepared window of "
            f"{data_dir}; shorter utterances were not kept), got {window_frames}"
        )
    k = int(windows_per_utterance)
    if k <= 0 or shuffle_buffer <= 0:
        raise ValueError(
            f"windows_per_utterance ({windows_per_utterance}) and shuffle_buffer "
            f"({shuffle_buffer}) must be positive"
        )
    dim, spf = manifest.feature_dim, manifest.samples_per_frame
    comp = manifest.compression if compression is None else compression
    prefix = schema.utterance_prefix(split)
    pattern = os.path.join(data_dir, schema.shard_pattern(prefix))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"{pattern}: no whole-utterance shards for split {split!r} (data prepared before "
            "tts-gan-prep wrote them for train/valid): re-run tts-gan-prep with the same "
            "command to add them"
        )
    batch = _per_replica_batch(global_batch_size, input_context, len(files), data_dir, prefix)
    pipeline_id = 0
    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        pipeline_id = input_context.input_pipeline_id
        ds = ds.shard(input_context.num_input_pipelines, pipeline_id)
    # One int63 per (seed, input pipeline); the utterance read index is the second seed word.
    key = int(hashlib.sha256(f"{seed}:{pipeline_id}".encode()).hexdigest()[:15], 16)
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=comp or None),
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.shuffle(max(1, shuffle_buffer // k), seed=seed, reshuffle_each_iteration=True)
    spec = schema.utterance_parse_spec()

    def cut(index: tf.Tensor, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        ex = tf.io.parse_single_example(serialized, spec)
        t = ex[schema.NUM_FRAMES]
        check = tf.debugging.assert_greater_equal(
            t, tf.constant(w, tf.int64),
            message=f"{data_dir}: an utterance is shorter than window_frames={w}",
        )
        with tf.control_dependencies([check]):
            starts = tf.random.stateless_uniform(
                [k], seed=tf.stack([tf.constant(key, tf.int64), index]),
                minval=0, maxval=t - w + 1, dtype=tf.int64,
            )
        frames = starts[:, None] + tf.range(w, dtype=tf.int64)[None, :]  # [k, w]
        audio = tf.reshape(ex[schema.AUDIO], [-1, spf])  # [T, 120]: frame-major samples
        feats = tf.reshape(ex[schema.FEATURES], [-1, dim])  # [T, D]
        out = {
            "audio": tf.reshape(tf.gather(audio, frames), [k, w * spf]),
            "features": tf.gather(feats, frames),
            "speaker": tf.fill([k], tf.cast(ex[schema.SPEAKER], tf.int32)),
        }
        if with_positions:
            out["utterance_id"] = tf.fill([k], ex[schema.UTTERANCE_ID])
            out["start_frame"] = tf.cast(starts, tf.int32)
        return out

    ds = ds.enumerate().map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch()
    if k > 1:  # the k windows of one utterance spread over batches
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch, drop_remainder=True)

    def finish(b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = dict(b)
        out["audio"] = mulaw.transcode(b["audio"], manifest.mu, mu_out)
        out["features"] = schema.normalize(b["features"], manifest)
        return out

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    options.deterministic = True
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

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        ex = tf.io.parse_single_example(serialized, spec)
        feats = tf.reshape(ex[schema.FEATURES], [-1, dim])
        return {
            "audio": mulaw.transcode(ex[schema.AUDIO], manifest.mu, mu_out),
            "features": schema.normalize(feats, manifest),
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

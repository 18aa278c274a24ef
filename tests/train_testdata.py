"""Tiny synthetic prepared-data directories (tts-gan-prep schema) for the training tests.

Audio is a µ-law encoded sinusoid whose pitch follows one feature channel, so conditional
discriminators have something to learn; shapes follow :mod:`tts_gan.schema`.
"""

from __future__ import annotations

import json
import os

import numpy as np

from data_prep import tfrecord_io
from tts_gan import mulaw, schema

SPF = schema.SAMPLES_PER_FRAME


def _window(rng: np.random.Generator, frames: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    f0 = np.repeat(rng.uniform(100.0, 300.0, size=frames // 8 + 1), 8)[:frames]
    feats = rng.standard_normal((frames, dim)).astype(np.float32)
    feats[:, 0] = np.log(f0)
    phase = 2 * np.pi * np.cumsum(np.repeat(f0, SPF)) / schema.SAMPLE_RATE
    audio = 0.3 * np.sin(phase) + 0.01 * rng.standard_normal(frames * SPF)
    return mulaw.encode(audio.astype(np.float32)), feats


def write_dataset(out_dir: str, *, feature_dim: int = 8, window_frames: int = 32,
                  shards: dict[str, int] | None = None, windows_per_shard: int = 8,
                  num_speakers: int = 1, sorted_speakers: bool = False, nan_audio: bool = False,
                  seed: int = 0) -> str:
    """Writes shards + manifest.json to ``out_dir``; returns it. Speakers alternate window by
    window, or with ``sorted_speakers`` come in blocks (as tts-gan-prep's uid-sorted shards).
    ``nan_audio`` poisons the training audio with NaN (for the NaN-guard test)."""
    shards = shards or {"train": 2, "valid": 1}
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    counts = {s: {"shards": 0, "utterances": 0, "windows": 0, "frames": 0}
              for s in schema.SPLITS}
    for split, n in shards.items():
        for i in range(n):
            w = tfrecord_io.ShardWriter(os.path.join(out_dir, schema.shard_name(split, i, n)))
            for j in range(windows_per_shard):
                audio, feats = _window(rng, window_frames, feature_dim)
                if nan_audio and split == "train":
                    audio = np.full_like(audio, np.nan)
                speaker = (j * num_speakers // windows_per_shard if sorted_speakers
                           else j % num_speakers)
                w.write(tfrecord_io.window_example(audio, feats, speaker,
                                                   f"{split}_{i}_{j}", 0))
            w.publish()
        counts[split].update(shards=n, utterances=n * windows_per_shard,
                             windows=n * windows_per_shard,
                             frames=n * windows_per_shard * window_frames)
    manifest = {
        "format_version": schema.FORMAT_VERSION, "feature_dim": feature_dim,
        "feature_breakdown": [{"name": "synthetic", "start": 0, "size": feature_dim,
                               "kind": schema.NUMERIC}],
        "sample_rate": schema.SAMPLE_RATE, "frame_rate": schema.FRAME_RATE, "mu": schema.MU,
        "window_frames": window_frames, "hop_frames": window_frames, "compression": "",
        "counts": counts, "hours": {}, "speakers": {f"spk{i}": i for i in range(num_speakers)},
        "num_speakers": num_speakers,
        "normalisation": {"mean": [0.0] * feature_dim, "std": [1.0] * feature_dim},
        "rejected": 0, "command": "tests/train_testdata.py",
    }
    tfrecord_io.atomic_write_text(os.path.join(out_dir, schema.MANIFEST_NAME),
                                  json.dumps(manifest, indent=2))
    return out_dir


def tiny_config(data_dir: str, **train_overrides):
    """The ``tiny`` experiment pointed at ``data_dir`` with small training overrides."""
    from experiments import get_config

    c = get_config("tiny")
    c.data.data_dir = data_dir
    for k, v in train_overrides.items():
        c.train[k] = v
    return c


def micro_config(data_dir: str, *, random_windows: bool = False, **train_overrides):
    """experiments/micro.py (a very small G, 2 GBlocks ×120, and a 2-RWD ensemble, global batch
    4) pointed at ``data_dir``, for the distribution tests and the CLI runs.

    ``random_windows=False``: both RWDs see the whole input (deterministic, Table 1's FullD
    style), so a step does not depend on how the batch is split over replicas.
    """
    from experiments import micro

    c = micro.get_config("random" if random_windows else "full")
    c.data.data_dir = data_dir
    for k, v in train_overrides.items():
        c.train[k] = v
    return c


def fixed_batch(batch: int, frames: int, feature_dim: int = 8, seed: int = 1
                ) -> dict[str, np.ndarray]:
    """A deterministic global batch in the train step's input format."""
    rng = np.random.default_rng(seed)
    audio, feats = zip(*(_window(rng, frames, feature_dim) for _ in range(batch)), strict=True)
    return {"audio": np.stack(audio).astype(np.float32),
            "features": np.stack(feats).astype(np.float32),
            "speaker": np.zeros([batch], np.int32)}

"""On-disk data schema shared by ``tts-gan-prep`` (writer) and :mod:`tts_gan.data` (reader).

GAN-TTS trains on 2-s windows of 24 kHz audio paired with 200 Hz linguistic + pitch features
(paper §3.1): 48000 µ-law samples (App. C, µ = 65535, no quantisation) and 400 feature frames.

A prepared data directory holds

* ``{split}-SSSSS-of-NNNNN.tfrecord`` window records for ``split`` in ``train``/``valid``/``test``
  (``tf.train.Example``: ``audio`` float32 [48000] µ-law, ``features`` float32 [400*D] raw,
  row-major [400, D], ``speaker`` int64, ``utterance_id`` bytes, ``start_frame`` int64);
* ``{split}_utterances-SSSSS-of-NNNNN.tfrecord`` whole-utterance records of every split (same
  keys with variable-length ``audio`` [120*T] and ``features`` [T*D], ``start_frame`` = 0, plus
  ``num_frames`` = T): the test ones for synthesis and evaluation, the train/valid ones for
  windows at random start frames (:func:`tts_gan.data.make_random_window_dataset`);
* ``manifest.json`` (written last; see :class:`Manifest`) and ``rejected.tsv``.

Features are stored un-normalised; :func:`normalize` applies the train-split statistics of the
manifest and works on NumPy arrays and TF tensors (usable inside a SavedModel graph).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# --- Constants of the paper's data (§3.1, App. C) -------------------------------------------
SAMPLE_RATE = 24000
FRAME_RATE = 200
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAME_RATE  # 120 = upsampling factor of G
WINDOW_FRAMES = 400  # 2 s training windows
WINDOW_SAMPLES = WINDOW_FRAMES * SAMPLES_PER_FRAME  # 48000
MU = 65535.0
PAPER_FEATURE_DIM = 567

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
REJECTED_NAME = "rejected.tsv"
SPLITS = ("train", "valid", "test")
TEST_UTTERANCES = "test_utterances"  # = utterance_prefix("test")

# --- Feature names ---------------------------------------------------------------------------
AUDIO = "audio"
FEATURES = "features"
SPEAKER = "speaker"
UTTERANCE_ID = "utterance_id"
START_FRAME = "start_frame"
NUM_FRAMES = "num_frames"

BINARY = "binary"
NUMERIC = "numeric"


class ManifestError(ValueError):
    """A manifest is missing or invalid; the message names the file and the field."""


def shard_name(split: str, index: int, num_shards: int) -> str:
    """``train-00003-of-00012.tfrecord``."""
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def utterance_prefix(split: str) -> str:
    """Shard prefix of the whole-utterance records of ``split``: ``train_utterances``."""
    return f"{split}_utterances"


def shard_pattern(split: str) -> str:
    """Glob pattern matching every shard of ``split``."""
    return f"{split}-?????-of-?????.tfrecord"


def window_parse_spec(feature_dim: int, window_frames: int = WINDOW_FRAMES) -> dict[str, Any]:
    """``tf.io.parse_example`` spec of the fixed-size window records."""
    import tensorflow as tf

    return {
        AUDIO: tf.io.FixedLenFeature([window_frames * SAMPLES_PER_FRAME], tf.float32),
        FEATURES: tf.io.FixedLenFeature([window_frames * feature_dim], tf.float32),
        SPEAKER: tf.io.FixedLenFeature([], tf.int64),
        UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string),
        START_FRAME: tf.io.FixedLenFeature([], tf.int64),
    }


def utterance_parse_spec() -> dict[str, Any]:
    """``tf.io.parse_single_example`` spec of the whole-utterance (variable length) records."""
    import tensorflow as tf

    return {
        AUDIO: tf.io.RaggedFeature(tf.float32),
        FEATURES: tf.io.RaggedFeature(tf.float32),
        SPEAKER: tf.io.FixedLenFeature([], tf.int64),
        UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string),
        START_FRAME: tf.io.FixedLenFeature([], tf.int64),
        NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64),
    }


@dataclasses.dataclass(frozen=True)
class FeatureBlock:
    """A contiguous block of feature dimensions: ``features[..., start:start+size]``."""

    name: str
    start: int
    size: int
    kind: str  # BINARY (passed through un-normalised) or NUMERIC (standardised)


@dataclasses.dataclass
class Manifest:
    """Contents of ``manifest.json``; see :func:`load_manifest`."""

    format_version: int
    feature_dim: int
    feature_breakdown: list[FeatureBlock]
    sample_rate: int
    frame_rate: int
    mu: float
    window_frames: int
    hop_frames: int
    compression: str  # "" or "GZIP"
    counts: dict[str, dict[str, int]]  # split -> {"utterances", "windows", "shards", ...}
    hours: dict[str, float]  # split -> hours of accepted audio
    speakers: dict[str, int]
    num_speakers: int
    mean: list[float]
    std: list[float]
    rejected: int
    command: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.frame_rate

    @property
    def window_samples(self) -> int:
        return self.window_frames * self.samples_per_frame

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        d["feature_breakdown"] = [dataclasses.asdict(b) for b in self.feature_breakdown]
        d["normalisation"] = {"mean": d.pop("mean"), "std": d.pop("std")}
        d.update(extra)
        return d


_REQUIRED = {
    "format_version": int,
    "feature_dim": int,
    "feature_breakdown": list,
    "sample_rate": int,
    "frame_rate": int,
    "mu": (int, float),
    "window_frames": int,
    "counts": dict,
    "speakers": dict,
    "num_speakers": int,
    "normalisation": dict,
}


def manifest_from_json(d: Mapping[str, Any], path: str = MANIFEST_NAME) -> Manifest:
    """Validates a parsed manifest; raises :class:`ManifestError` naming ``path`` and the field."""

    def bad(field: str, why: str) -> ManifestError:
        return ManifestError(f"{path}: field '{field}' {why}")

    if not isinstance(d, Mapping):
        raise ManifestError(f"{path}: top level must be a JSON object")
    for field, typ in _REQUIRED.items():
        if field not in d:
            raise bad(field, "is missing")
        if not isinstance(d[field], typ) or isinstance(d[field], bool):
            raise bad(field, f"has type {type(d[field]).__name__}")
    if d["format_version"] != FORMAT_VERSION:
        raise bad("format_version", f"is {d['format_version']}, this reader knows {FORMAT_VERSION}")
    dim = d["feature_dim"]
    if dim <= 0:
        raise bad("feature_dim", f"must be positive, got {dim}")
    blocks = []
    pos = 0
    for i, b in enumerate(d["feature_breakdown"]):
        try:
            block = FeatureBlock(str(b["name"]), int(b["start"]), int(b["size"]), str(b["kind"]))
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"feature_breakdown[{i}]", f"is invalid ({e!r})") from None
        if block.start != pos or block.size <= 0 or block.kind not in (BINARY, NUMERIC):
            raise bad(f"feature_breakdown[{i}]", f"is inconsistent: {b}")
        pos += block.size
        blocks.append(block)
    if pos != dim:
        raise bad("feature_breakdown", f"covers {pos} dims, feature_dim is {dim}")
    norm = d["normalisation"]
    for key in ("mean", "std"):
        v = norm.get(key)
        if not isinstance(v, list) or len(v) != dim:
            raise bad(f"normalisation.{key}", f"must be a list of {dim} numbers")
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            raise bad(f"normalisation.{key}", "has a non-finite value")
    if any(s <= 0 for s in norm["std"]):
        raise bad("normalisation.std", "has a value <= 0")
    if d["sample_rate"] % d["frame_rate"]:
        raise bad("sample_rate", "is not a multiple of frame_rate")
    speakers = d["speakers"]
    if sorted(speakers.values()) != list(range(len(speakers))):
        raise bad("speakers", "ids must be 0..num_speakers-1")
    if d["num_speakers"] != len(speakers):
        raise bad("num_speakers", f"is {d['num_speakers']}, speakers has {len(speakers)}")
    known = set(_REQUIRED) | {"hours", "rejected", "command", "compression", "hop_frames"}
    return Manifest(
        format_version=d["format_version"],
        feature_dim=dim,
        feature_breakdown=blocks,
        sample_rate=d["sample_rate"],
        frame_rate=d["frame_rate"],
        mu=float(d["mu"]),
        window_frames=d["window_frames"],
        hop_frames=int(d.get("hop_frames", d["window_frames"])),
        compression=str(d.get("compression", "")),
        counts=d["counts"],
        hours=dict(d.get("hours", {})),
        speakers={str(k): int(v) for k, v in speakers.items()},
        num_speakers=d["num_speakers"],
        mean=[float(x) for x in norm["mean"]],
        std=[float(x) for x in norm["std"]],
        rejected=int(d.get("rejected", 0)),
        command=str(d.get("command", "")),
        extra={k: v for k, v in d.items() if k not in known},
    )


def load_manifest(data_dir: str) -> Manifest:
    """Reads and validates ``data_dir/manifest.json`` (local or ``gs://`` via ``tf.io.gfile``)."""
    path = os.path.join(data_dir, MANIFEST_NAME)
    try:
        if "://" in data_dir:
            import tensorflow as tf

            try:
                with tf.io.gfile.GFile(path, "r") as f:
                    text = f.read()
            except tf.errors.OpError as e:
                raise OSError(str(e)) from None
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        raise ManifestError(
            f"{path}: cannot read the manifest ({e.__class__.__name__}: {e}); "
            "run tts-gan-prep to create the data directory"
        ) from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    return manifest_from_json(d, path)


def feature_dim(data_dir: str) -> int:
    """Feature dimension D of a prepared data directory (from its manifest)."""
    return load_manifest(data_dir).feature_dim


def num_speakers(data_dir: str) -> int:
    """Number of speakers of a prepared data directory (from its manifest)."""
    return load_manifest(data_dir).num_speakers


def _stats(manifest: Manifest | Mapping[str, Any]) -> tuple[Sequence[float], Sequence[float]]:
    if isinstance(manifest, Manifest):
        return manifest.mean, manifest.std
    if "normalisation" in manifest:
        return manifest["normalisation"]["mean"], manifest["normalisation"]["std"]
    return manifest["mean"], manifest["std"]


def normalize(features, manifest: Manifest | Mapping[str, Any]):
    """(features - mean) / std over the last axis with the train-split statistics.

    Binary dims have mean 0 and std 1, so they pass unchanged. NumPy in, NumPy out (float32);
    a TF tensor in gives a TF tensor out (the statistics become graph constants).
    """
    mean, std = _stats(manifest)
    if type(features).__module__.startswith("tensorflow"):
        import tensorflow as tf

        m = tf.constant(np.asarray(mean, np.float32))
        s = tf.constant(np.asarray(std, np.float32))
        return (tf.cast(features, tf.float32) - m) / s
    x = np.asarray(features, np.float32)
    return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def denormalize(features, manifest: Manifest | Mapping[str, Any]):
    """Inverse of :func:`normalize`."""
    mean, std = _stats(manifest)
    if type(features).__module__.startswith("tensorflow"):
        import tensorflow as tf

        m = tf.constant(np.asarray(mean, np.float32))
        s = tf.constant(np.asarray(std, np.float32))
        return tf.cast(features, tf.float32) * s + m
    x = np.asarray(features, np.float32)
    return (x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)).astype(np.float32)

"""Shared helpers of export_test.py / synthesis_test.py: a tiny trained-looking model_dir (the
layout tts-gan-train writes) and a tiny prepared data dir, without running the trainer/prep."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import tensorflow as tf
from float32_bounds import audio_difference, exceeds, generator_rounding, within

import experiments
from data_prep import tfrecord_io
from tts_gan import mulaw, schema
from tts_gan.generator import Generator, build_and_init, build_generator

FEATURE_DIM = 567  # the prep's default feature size, so Festival text works with the export
NUM_SPEAKERS = 2
WINDOW = 24


def tiny_config():
    cfg = experiments.get_config("tiny")
    cfg.data.window_frames = WINDOW
    return cfg


def manifest_dict(dim: int = FEATURE_DIM, speakers: int = NUM_SPEAKERS, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    names = ["kal_diphone", "slt_hts", "x", "y"][:speakers]
    return {
        "format_version": schema.FORMAT_VERSION, "feature_dim": dim,
        "feature_breakdown": [{"name": "all", "start": 0, "size": dim, "kind": "numeric"}],
        "sample_rate": 24000, "frame_rate": 200, "mu": 65535.0, "window_frames": WINDOW,
        "hop_frames": WINDOW, "compression": "",
        "counts": {s: {"utterances": 1, "windows": 1, "shards": 1} for s in schema.SPLITS},
        "speakers": {n: i for i, n in enumerate(names)}, "num_speakers": speakers,
        "normalisation": {"mean": rng.normal(size=dim).tolist(),
                          "std": rng.uniform(0.5, 2.0, size=dim).tolist()},
    }


def perturb(gen: Generator, seed: int, dim: int = FEATURE_DIM) -> None:
    """A few training-mode passes: non-trivial SN vectors and BN moving statistics."""
    rng = tf.random.Generator.from_seed(seed)
    spk = tf.constant([0, 1, 0]) if gen.num_speakers > 1 else None
    for _ in range(2):
        gen(rng.normal([3, 16, dim]), rng.normal([3, gen.noise_dim]), speaker=spk,
            training=True)


def make_model_dir(model_dir: str, seed: int = 0) -> tuple[Generator, Generator]:
    """config.json + manifest.json + a checkpoint with different G and EMA weights."""
    cfg = tiny_config()
    tf.keras.utils.set_random_seed(seed)
    g = build_and_init(build_generator(cfg.generator, FEATURE_DIM, NUM_SPEAKERS))
    ema = build_and_init(build_generator(cfg.generator, FEATURE_DIM, NUM_SPEAKERS))
    perturb(g, seed)
    perturb(ema, seed + 1)
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        f.write(cfg.to_json(indent=1))
    with open(os.path.join(model_dir, "manifest.json"), "w") as f:
        json.dump(manifest_dict(seed=seed), f)
    ckpt = tf.train.Checkpoint(step=tf.Variable(7, dtype=tf.int64), generator=g,
                               ema_generator=ema)
    tf.train.CheckpointManager(ckpt, model_dir, max_to_keep=2).save()
    return g, ema


def make_prep_dir(data_dir: str, lengths=(30, 47, 25), dim: int = FEATURE_DIM,
                  seed: int = 0) -> list[np.ndarray]:
    """A prepared data dir: manifest, one train shard of windows, one test_utterances shard.
    Returns the RAW test features."""
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    m = manifest_dict(dim, NUM_SPEAKERS, seed)
    mean, std = np.array(m["normalisation"]["mean"]), np.array(m["normalisation"]["std"])
    raw = []
    with tf.io.TFRecordWriter(os.path.join(data_dir, schema.shard_name("train", 0, 1))) as w:
        for i in range(4):
            f = (rng.normal(size=(WINDOW, dim)) * std + mean).astype(np.float32)
            a = mulaw.encode(rng.uniform(-0.5, 0.5, WINDOW * 120).astype(np.float32))
            w.write(tfrecord_io.window_example(a, f, i % 2, f"w{i}", 0))
    name = schema.shard_name(schema.TEST_UTTERANCES, 0, 1)
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as w:
        for i, t in enumerate(lengths):
            f = (rng.normal(size=(t, dim)) * std + mean).astype(np.float32)
            raw.append(f)
            a = mulaw.encode(np.zeros(t * 120, np.float32))
            w.write(tfrecord_io.utterance_example(a, f, i % 2, f"u{i}"))
    with open(os.path.join(data_dir, schema.MANIFEST_NAME), "w") as f:
        json.dump(m, f)
    return raw


@functools.cache
def tiny_export_rounding() -> float:
    """float32 rounding bound of the tiny export generator (conv_in's fan-in 3·567, 30 layers):
    float32_bounds.generator_rounding, ≈ 1.5e-4 on its µ-law output."""
    return generator_rounding(build_and_init(build_generator(tiny_config().generator,
                                                             FEATURE_DIM, NUM_SPEAKERS)))


def assert_same_audio(a: np.ndarray, b: np.ndarray, name: str, mu: float = 65535.0) -> None:
    """Two linear waveforms of the tiny export model equal up to float32 rounding: the
    µ-law-domain bound tiny_export_rounding() carried to linear audio (audio_difference).

    Convolutions over tensors of different lengths (padding, chunking) or in another graph
    (SavedModel, TF1 session, TFLite) sum in different orders. A masking, receptive-field or
    weight error moves the audio by a quarter of full scale or more, ≥ 300× the bound (each
    test's control; measured worst cases in the tests).
    """
    within(name, audio_difference(a, b, mu), tiny_export_rounding())


def assert_audio_differs(a: np.ndarray, b: np.ndarray, name: str, mu: float = 65535.0) -> None:
    """The control: a real error moves the audio ≥ 10× the rounding bound."""
    exceeds(name, audio_difference(a, b, mu), tiny_export_rounding())

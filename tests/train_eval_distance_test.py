"""Training-time cFD (the paper's Fig. 4): ``train.eval_distance_samples`` logs the conditional
distance of G_ema (with its standing statistics) to TensorBoard every ``eval_every`` steps."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from train_lib_test import _scalars  # {tag: [(step, value)]} of model_dir/train

from tts_gan import evaluation, mulaw, train_lib

FRAMES = 64


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=FRAMES,
                            shards={"train": 1, "valid": 1}, windows_per_shard=6)


def test_distance_runs_on_g_ema_with_standing_statistics_and_is_logged(data_dir, tmp_path):
    config = train_lib.resolve_config(td.micro_config(data_dir), data_dir)
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(), 8, 1)
    evals = train_lib.eval_batch(data_dir, 2, config.generator.noise_dim, seed=0)
    bns = tr.G_ema.batch_norms()
    before = [bn.moving_mean.numpy().copy() for bn in bns]
    seen = {}

    def distance(generate):
        seen["means"] = [bn.moving_mean.numpy().copy() for bn in bns]
        feats = evals["features"].numpy()
        z = np.random.default_rng(0).standard_normal((2, config.generator.noise_dim))
        audio = generate(feats, np.zeros([2], np.int32), z.astype(np.float32))
        ref = tr.G_ema(tf.constant(feats), tf.constant(z, tf.float32), training=False)
        seen["audio_error"] = np.max(np.abs(audio - mulaw.decode(ref[..., 0], 65535.0).numpy()))
        return {"cFD-test": 1.25, "cKD-test": -0.5}

    values: dict[str, float] = {}
    with tf.summary.create_file_writer(str(tmp_path / "train")).as_default():
        train_lib.write_eval_summaries(tr, evals, 3, 24000, 65535.0, standing_passes=2,
                                       distance=distance, distances=values)
    # During the call G_ema held standing statistics (not its running ones) ...
    assert max(np.max(np.abs(a - b)) for a, b in zip(seen["means"], before, strict=True)) > 0
    # ... generate() is G_ema in that state, decoded to linear audio (same ops, same inputs) ...
    assert seen["audio_error"] == 0.0
    # ... and the running statistics are back afterwards.
    for bn, m in zip(bns, before, strict=True):
        np.testing.assert_array_equal(bn.moving_mean.numpy(), m)
    assert values == {"cFD-test": 1.25, "cKD-test": -0.5}
    scalars = _scalars(str(tmp_path))
    assert scalars["eval/cFD-test"] == [(3, 1.25)] and scalars["eval/cKD-test"] == [(3, -0.5)]


def test_training_logs_conditional_distance_every_eval_every(data_dir, tmp_path):
    extractor, name = "default", "dnsmos"  # the offline default (a packaged speech network)
    config = td.micro_config(data_dir, max_steps=4, log_every=2, save_every=0, eval_every=2,
                             eval_examples=2, eval_standing_passes=1, eval_distance_samples=5,
                             eval_distance_extractor=extractor)
    lines: list[str] = []
    model_dir = str(tmp_path / "model")
    result = train_lib.train(config, model_dir, log=lines.append)
    scalars = _scalars(model_dir)
    for key in (f"eval/cFD-{name}", f"eval/cKD-{name}"):
        assert [s for s, _ in scalars[key]] == [2, 4], key
        assert all(np.isfinite(v) for _, v in scalars[key]), scalars[key]
    assert any(line.startswith("step 4  eval ") and f"cFD-{name}" in line for line in lines)
    # The logged value is TrainingDistance's on the same windows and z: recompute it for the
    # final G_ema (same seed and sample count, standing statistics from the same eval batch).
    ref = evaluation.TrainingDistance(data_dir, config.generator.noise_dim, num_samples=5,
                                      split="valid", extractor=extractor, seed=0)
    assert ref.n == 5
    values: dict[str, float] = {}
    evals = train_lib.eval_batch(data_dir, 2, config.generator.noise_dim, 0, config.data.mu)
    with tf.summary.create_noop_writer().as_default():
        train_lib.write_eval_summaries(result.trainer, evals, 4, 24000, config.data.mu, 1,
                                       ref, values)
    assert values[f"cFD-{name}"] == pytest.approx(scalars[f"eval/cFD-{name}"][-1][1], rel=1e-4)


def test_bad_sample_count_is_a_clear_error(data_dir):
    config = td.micro_config(data_dir, eval_distance_samples=-3)
    with pytest.raises(ValueError, match=r"train.eval_distance_samples=-3"):
        train_lib.make_training_distance(config, data_dir)
    config.train.eval_distance_samples = 0
    assert train_lib.make_training_distance(config, data_dir) is None

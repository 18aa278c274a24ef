"""The App. B.3 protocol end to end on a tiny export and a tiny prepared split."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests import train_testdata
from tts_gan import evaluation, metrics, mulaw, schema
from tts_gan.export import export_saved_model
from tts_gan.generator import Generator, accumulate_standing_statistics, build_and_init

DIM = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data_dir = train_testdata.write_dataset(str(root / "data"), feature_dim=DIM, window_frames=8,
                                            shards={"test": 1}, windows_per_shard=12)
    gen = build_and_init(Generator(DIM, noise_dim=4, input_channels=8,
                                   blocks=((8, 1), (8, 1), (4, 2), (4, 2), (4, 2), (4, 3), (4, 5))))
    rng = np.random.default_rng(0)
    batches = (dict(features=tf.constant(rng.normal(size=(4, 8, DIM)), tf.float32),
                    z=tf.constant(rng.normal(size=(4, 4)), tf.float32)) for _ in range(3))
    accumulate_standing_statistics(gen, batches, num_passes=3)
    export_saved_model(gen, str(root / "export"))
    return data_dir, str(root / "export"), gen


def test_real_windows_are_linear_audio_and_raw_features(setup):
    data_dir, _, _ = setup
    real = evaluation.real_windows(data_dir, "test", 10, batch_size=4)
    assert real["audio"].shape == (10, 960)  # 3 batches of 4 read, cut to 10
    assert real["features"].shape == (10, 8, DIM)
    # The synthetic data's audio is a 0.3-amplitude sine in the linear domain.
    assert 0.25 < np.abs(real["audio"]).max() <= 0.35


def test_evaluate_follows_eq_8_to_12(setup):
    data_dir, export_dir, gen = setup
    fmap = metrics.LogMelFeatures()
    result = evaluation.evaluate(export_dir, data_dir, fmap, num_samples=4, split="test",
                                 batch_size=4)
    assert result["N"] == 4
    # Recompute independently: generator in Python, same seeds, same windows.
    real = evaluation.real_windows(data_dir, "test", 8, batch_size=4)
    z = tf.stack([tf.random.stateless_normal([4], seed=[i, 0]) for i in range(4)])
    feats = schema.normalize(real["features"][:4], schema.load_manifest(data_dir))
    fake = mulaw.decode(gen(tf.constant(feats, tf.float32), z).numpy()[..., 0])
    x_gen = metrics.ds_representation(fake, fmap)
    expected = metrics.speech_distances(x_gen, metrics.ds_representation(real["audio"][:4], fmap),
                                        metrics.ds_representation(real["audio"][4:8], fmap))
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-3, abs=1e-6), key
    assert result["KDSD_real"] != result["KDSD"]


def test_cli_writes_json_and_rejects_bad_feature_spec(setup, tmp_path):
    data_dir, export_dir, _ = setup
    out = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "tts_gan.cli.evaluate", f"--export_dir={export_dir}",
           f"--data_dir={data_dir}", "--num_samples=4", "--batch_size=4",
           f"--output_json={out}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"F-logmel", "cF-logmel", "K-logmel", "cK-logmel"} <= set(result)
    bad = subprocess.run(cmd[:-1] + ["--features=deepspeech"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "expected 'logmel' or 'savedmodel:PATH'" in bad.stderr

"""The App. B.3 protocol end to end on a tiny export and tiny prepared splits: the speaker-
balanced sample, streaming, input checks, the CLI and its precomputed-features mode, the MOS /
WER rows' plumbing and the training-time distance."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import train_testdata

from data_prep import tfrecord_io
from tts_gan import data, evaluation, extractors, intelligibility, metrics, mulaw, schema
from tts_gan.export import export_saved_model
from tts_gan.extractors.windowed import LogMelFeatures, WindowedExtractor
from tts_gan.generator import Generator, build_and_init

DIM = 8
FRAMES = 24  # 2880 samples: long enough for the dnsmos extractor (≥ 1680)


def _generator(num_speakers: int = 2) -> Generator:
    return build_and_init(Generator(DIM, noise_dim=4, input_channels=8,
                                    num_speakers=num_speakers,
                                    blocks=((8, 1), (8, 1), (4, 2), (4, 2), (4, 2), (4, 3),
                                            (4, 5))))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A speaker-ordered 3-speaker test split (one shard, 36 windows) and a 3-speaker export."""
    root = tmp_path_factory.mktemp("eval")
    data_dir = train_testdata.write_dataset(str(root / "data"), feature_dim=DIM,
                                            window_frames=FRAMES, shards={"test": 1},
                                            windows_per_shard=36, num_speakers=3,
                                            sorted_speakers=True)
    gen = _generator(3)
    export_saved_model(gen, str(root / "export"))
    return data_dir, str(root / "export"), gen


def _logmel():
    return WindowedExtractor(LogMelFeatures(), "logmel", 80)


# ------------------------------------------------------------------------------ sampling
def test_balanced_counts_water_fills():
    rng = np.random.default_rng(0)
    assert evaluation.balanced_counts({0: 10, 1: 10, 2: 10}, 12, rng) == {0: 4, 1: 4, 2: 4}
    assert evaluation.balanced_counts({0: 1, 1: 40, 2: 40}, 21, rng) == {0: 1, 1: 10, 2: 10}
    c = evaluation.balanced_counts({0: 5, 1: 5}, 7, rng)
    assert sorted(c.values()) == [3, 4]
    with pytest.raises(ValueError, match="need 11, only 10"):
        evaluation.balanced_counts({0: 5, 1: 5}, 11, rng)


def test_speaker_balanced_sample_on_a_speaker_ordered_corpus(setup):
    data_dir, _, _ = setup
    manifest = schema.load_manifest(data_dir)
    speakers = evaluation.window_speakers(data_dir, "test", manifest)
    # tts-gan-prep's order: speaker blocks. The old rule (first 2N windows in file order)
    # would have put only speaker 0 in x_1..x_N and speakers 1, 2 in x_N+1..x_2N.
    np.testing.assert_array_equal(speakers, np.repeat([0, 1, 2], 12))
    first, second = evaluation.speaker_balanced_pairs(speakers, 15, seed=3)
    assert len(first) == len(second) == 15
    assert len(set(first) | set(second)) == 30  # drawn without replacement
    for half in (first, second):
        assert np.bincount(speakers[half], minlength=3).tolist() == [5, 5, 5]
        assert list(speakers[half]) != sorted(speakers[half])  # not in speaker blocks
    again = evaluation.speaker_balanced_pairs(speakers, 15, seed=3)
    np.testing.assert_array_equal(first, again[0])
    other = evaluation.speaker_balanced_pairs(speakers, 15, seed=4)
    assert set(other[0]) != set(first)
    # A speaker with few windows gives what it has; the halves still have the same mix.
    uneven = np.repeat([0, 1, 2], [3, 20, 20])
    a, b = evaluation.speaker_balanced_pairs(uneven, 19, seed=0)
    assert np.bincount(uneven[a]).tolist() == np.bincount(uneven[b]).tolist() == [1, 9, 9]
    with pytest.raises(ValueError, match="need 22"):
        evaluation.speaker_balanced_pairs(uneven, 22, seed=0)


# ------------------------------------------------------------------------------ features
def test_features_follow_eq_8_to_12_and_stream_in_batches(setup, monkeypatch):
    """Recomputed independently: windows read with tf.data in file order, the Keras generator
    with the export's z rule and normalisation, DS of Eq. 4 per clip."""
    data_dir, export_dir, gen = setup
    ext = _logmel()
    seen = []
    orig_call = ext.__call__

    class Spy(WindowedExtractor):
        def __call__(self, audio):
            seen.append(len(audio))
            return orig_call(audio)

    spy = Spy(ext.fmap, "logmel", 80)
    inputs = evaluation.check_inputs(export_dir, data_dir, "test", spy)
    feats = evaluation.compute_features(inputs, data_dir, "test", spy, 12, seed=5,
                                        batch_size=4, progress=False)
    assert max(seen) <= 4  # never more than one batch of clips in the extractor
    assert feats.generated.shape == (12, 80) and feats.real.shape == (24, 80)

    manifest = schema.load_manifest(data_dir)
    ds = data.make_dataset(data_dir, "test", 1, shuffle=False, repeat=False,
                           deterministic=True)
    windows = [(mulaw.decode(b["audio"].numpy()[0], manifest.mu), b["features"].numpy()[0],
                int(b["speaker"][0])) for b in ds]
    speakers = np.array([s for _, _, s in windows])
    first, second = evaluation.speaker_balanced_pairs(speakers, 12, seed=5)
    real_first = np.stack([windows[j][0] for j in first])
    real_second = np.stack([windows[j][0] for j in second])
    z = tf.stack([tf.random.stateless_normal([4], seed=[5 + i, 0]) for i in range(12)])
    fake = gen(tf.constant(np.stack([windows[j][1] for j in first])), z,
               speaker=tf.constant(speakers[first], tf.int32), training=False)
    fake = mulaw.decode(fake.numpy()[..., 0])
    np.testing.assert_allclose(feats.real[:12], metrics.ds_representation(real_first, ext.fmap),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(feats.real[12:],
                               metrics.ds_representation(real_second, ext.fmap),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(feats.generated, metrics.ds_representation(fake, ext.fmap),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(feats.speakers_first, speakers[first])


def test_distances_report_the_protocol_and_the_natural_speech_row():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 3))
    gen = real[:20] + 0.5
    out = evaluation.distances(gen, real, extractors.metric_names("logmel"))
    assert out["N"] == 20 and out["names"] == ["FD-logmel", "cFD-logmel", "KD-logmel",
                                                "cKD-logmel"]
    assert out["model"]["cFD-logmel"]["mean"] == pytest.approx(
        metrics.frechet_splits(gen, real[:20]).mean)
    assert out["natural_speech"]["FD-logmel"]["mean"] == pytest.approx(
        metrics.frechet_splits(real[:20], real[20:]).mean)
    assert out["natural_speech"]["cFD-logmel"] is None  # App. B.2: cannot be estimated
    with pytest.raises(evaluation.EvaluationError, match="expected 2N"):
        evaluation.distances(gen, real[:30], extractors.metric_names("logmel"))


# ------------------------------------------------------------------------------ checks
def _no_work(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("windows were read before the inputs were checked")

    monkeypatch.setattr(evaluation, "window_speakers", fail)
    monkeypatch.setattr(evaluation, "iter_windows", fail)


def test_bad_export_dir_fails_before_any_window_is_read(setup, tmp_path, monkeypatch):
    data_dir, _, _ = setup
    _no_work(monkeypatch)
    with pytest.raises(evaluation.EvaluationError,
                       match=f"--export_dir={tmp_path}/nope: not a tts-gan-export output"):
        evaluation.evaluate(str(tmp_path / "nope"), data_dir, _logmel(), quality=False)


def test_feature_dim_mismatch_fails_before_any_window_is_read(setup, tmp_path, monkeypatch):
    data_dir, _, _ = setup
    other = build_and_init(Generator(DIM + 1, noise_dim=4, input_channels=8,
                                     blocks=((8, 1), (8, 1), (4, 2), (4, 2), (4, 2), (4, 3),
                                             (4, 5))))
    export_saved_model(other, str(tmp_path / "export9"))
    _no_work(monkeypatch)
    with pytest.raises(evaluation.EvaluationError,
                       match=r"takes 9-dim features but --data_dir=.* has 8 \(manifest.json "
                             "feature_dim\\)"):
        evaluation.evaluate(str(tmp_path / "export9"), data_dir, _logmel(), quality=False)


def test_short_windows_and_missing_corpus_fail_before_any_window_is_read(setup, tmp_path,
                                                                        monkeypatch):
    data_dir, export_dir, _ = setup
    short = train_testdata.write_dataset(str(tmp_path / "short"), feature_dim=DIM,
                                         window_frames=8, shards={"test": 1})

    class NeedsLong(WindowedExtractor):
        def check_clip(self, samples):
            raise ValueError("needs clips of at least 1680 samples")

    _no_work(monkeypatch)
    with pytest.raises(evaluation.EvaluationError, match="windows of 960 samples: needs clips"):
        evaluation.evaluate(export_dir, short, NeedsLong(LogMelFeatures(), "x", 80),
                            quality=False)
    with pytest.raises(evaluation.EvaluationError,
                       match=f"--corpus_dir={tmp_path}/none: no such directory.*--noquality"):
        evaluation.evaluate(export_dir, data_dir, _logmel(), quality=True,
                            corpus_dir=str(tmp_path / "none"))


# ------------------------------------------------------------------------------ CLI
def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "tts_gan.cli.evaluate", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_cli_default_extractor_table_json_and_precomputed_features(setup, tmp_path):
    data_dir, export_dir, _ = setup
    out, prefix = tmp_path / "eval.json", tmp_path / "feats" / "run"
    run = _cli(f"--export_dir={export_dir}", f"--data_dir={data_dir}", "--num_samples=12",
               "--batch_size=4", "--noquality", f"--output_json={out}",
               f"--save_features={prefix}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "natural speech" in run.stdout and "not comparable with Table 1" in run.stdout
    report = json.loads(out.read_text())  # strict JSON: NaN would not parse back as None
    assert report["extractor"]["name"] == "dnsmos" and report["comparable_with_paper"] is False
    assert report["extractor"]["model_sha256"]
    dist = report["distances"]
    assert dist["N"] == 12 and dist["dim"] == 64
    assert set(dist["model"]) == {"FD-dnsmos", "cFD-dnsmos", "KD-dnsmos", "cKD-dnsmos"}
    assert dist["model"]["KD-dnsmos"]["error"] is None  # one block: no standard error
    assert len(dist["model"]["FD-dnsmos"]["values"]) == 5
    assert any("n ≤ d" in w for w in dist["warnings"])  # 12/5 samples of 64 dims
    assert report["speakers"]["first_half"] == {"spk0": 4, "spk1": 4, "spk2": 4}
    assert sorted(os.listdir(tmp_path / "feats")) == ["run.generated.npy", "run.real.npy"]

    again = tmp_path / "again.json"
    run = _cli(f"--real_features={prefix}.real.npy", f"--fake_features={prefix}.generated.npy",
               "--features=dnsmos", f"--output_json={again}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(again.read_text())["distances"]["model"] == dist["model"]


def test_cli_errors_are_one_line(setup, tmp_path):
    data_dir, export_dir, _ = setup
    run = _cli(f"--export_dir={tmp_path}", f"--data_dir={data_dir}", "--noquality")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(
        f"tts-gan-eval: --export_dir={tmp_path}: not a tts-gan-export output")
    run = _cli(f"--export_dir={export_dir}", f"--data_dir={data_dir}", "--features=deepspeech")
    assert run.returncode == 1 and "expected 'default', 'dnsmos', 'logmel'" in run.stderr
    r, f = tmp_path / "r.npy", tmp_path / "f.npy"
    np.save(r, np.zeros((10, 3)))
    np.save(f, np.zeros((6, 3)))
    run = _cli(f"--real_features={r}", f"--fake_features={f}")
    assert run.returncode == 1 and f"--real_features={r} has 10 rows; expected 2N = 12" in (
        run.stderr)
    np.save(f, np.zeros((5, 4)))
    run = _cli(f"--real_features={r}", f"--fake_features={f}")
    assert run.returncode == 1 and "has 3 columns but --fake_features" in run.stderr
    run = _cli(f"--real_features={r}")
    assert run.returncode == 1 and "--fake_features is required" in run.stderr


# ------------------------------------------------------------------------------ MOS / WER
def test_quality_rows_score_recordings_and_the_models_resynthesis(setup, tmp_path,
                                                                 monkeypatch):
    """Plumbing with a fake scorer (tests/intelligibility_test.py runs the real models): every
    held-out utterance's recording and the model's audio for its prepared features, with the
    export's speaker id and seed + i."""
    _, export_dir, _ = setup
    data_dir = tmp_path / "data"
    train_testdata.write_dataset(str(data_dir), feature_dim=DIM, window_frames=FRAMES,
                                 shards={"test": 1}, windows_per_shard=36, num_speakers=3)
    uids = [("spk1/a", 1, 30), ("spk0/b", 0, 20)]
    w = tfrecord_io.ShardWriter(str(data_dir / schema.shard_name(schema.TEST_UTTERANCES,
                                                                  0, 1)))
    for uid, spk, frames in uids:
        w.write(tfrecord_io.utterance_example(
            mulaw.encode(np.zeros(120 * frames, np.float32)),
            np.random.default_rng(0).normal(size=(frames, DIM)).astype(np.float32), spk, uid))
    w.publish()
    man = json.loads((data_dir / "manifest.json").read_text())
    man["counts"]["test"]["utterances"] = 2
    (data_dir / "manifest.json").write_text(json.dumps(man))
    corpus = tmp_path / "corpus"
    import soundfile as sf

    for uid, _, _ in uids:
        for sub in ("wav", "text"):
            (corpus / sub / uid.split("/")[0]).mkdir(parents=True, exist_ok=True)
        sf.write(corpus / "wav" / f"{uid}.wav", np.zeros(1600, np.float32), 16000)
        (corpus / "text" / f"{uid}.txt").write_text("A short sentence.\n")

    scored = []

    def fake_score(recognizer, item, audio, sr):
        scored.append((item.utterance_id, len(audio), sr))
        return {"utterance_id": item.utterance_id, "speaker": item.speaker,
                "seconds": len(audio) / sr, "reference_normalized": "a short sentence",
                "hypothesis_normalized": "a short", "reference_oov": [],
                "dnsmos": {"p808": 3.0, "sig": 3.0, "bak": 4.0, "ovrl": 2.5}}

    monkeypatch.setattr(intelligibility, "Recognizer", lambda: None)
    monkeypatch.setattr(intelligibility, "score", fake_score)
    report = evaluation.evaluate(export_dir, str(data_dir), _logmel(), num_samples=12,
                                 quality=True, corpus_dir=str(corpus), progress=False)
    q = report["quality"]
    assert q["utterances"] == 2
    assert scored[:2] == [("spk0/b", 1600, 16000), ("spk1/a", 1600, 16000)]  # recordings
    assert sorted(scored[2:]) == [("spk0/b", 120 * 20, 24000), ("spk1/a", 120 * 30, 24000)]
    assert q["summary"]["model"]["all"]["wer"] == pytest.approx(1 / 3)
    table = evaluation.format_table(report)
    assert "DNSMOS P.808" in table and "automatic stand-in" in table


# ------------------------------------------------------------------------------ training
def test_training_distance_uses_fixed_windows_z_and_reference(setup):
    data_dir, _, gen = setup
    ext = _logmel()
    td = evaluation.TrainingDistance(data_dir, noise_dim=4, num_samples=9, split="test",
                                     extractor=ext, seed=2, batch_size=4)
    manifest = schema.load_manifest(data_dir)
    calls = []

    def generate(features, speaker, z):
        calls.append((features, speaker, z))
        return mulaw.decode(gen(tf.constant(features), tf.constant(z),
                                speaker=tf.constant(speaker), training=False).numpy()[..., 0])

    a, b = td(generate), td(generate)
    assert a == b and set(a) == {"cFD-logmel", "cKD-logmel"}
    z = np.concatenate([c[2] for c in calls[:len(calls) // 2]])
    assert z.shape == (9, 4)
    speakers = evaluation.window_speakers(data_dir, "test", manifest)
    assert np.bincount(speakers[td.indices]).tolist() == [3, 3, 3]
    # independent recomputation from the same windows
    ds = list(data.make_dataset(data_dir, "test", 1, shuffle=False, repeat=False,
                                deterministic=True))
    chosen = [ds[j] for j in td.indices]
    real = np.stack([mulaw.decode(c["audio"].numpy()[0], manifest.mu) for c in chosen])
    zs = tf.stack([tf.random.stateless_normal([4], seed=[2 + i, 0]) for i in range(9)])
    fake = gen(tf.concat([c["features"] for c in chosen], 0), zs,
               speaker=tf.concat([c["speaker"] for c in chosen], 0), training=False)
    x_fake = metrics.ds_representation(mulaw.decode(fake.numpy()[..., 0]), ext.fmap)
    x_real = metrics.ds_representation(real, ext.fmap)
    assert a["cFD-logmel"] == pytest.approx(
        metrics.frechet(x_fake, x_real, warn=False).value, rel=1e-3)

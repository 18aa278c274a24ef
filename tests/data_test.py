"""The tf.data reader (tts_gan.data) and the shared schema (tts_gan.schema)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from data_prep import pipeline
from tts_gan import data, mulaw, schema

SR, SPF, DIM = schema.SAMPLE_RATE, schema.SAMPLES_PER_FRAME, 4


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> str:
    """A 'features' corpus of 12 utterances of 410 frames (one 400-frame window each)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    os.makedirs(root / "wav")
    os.makedirs(root / "feats")
    for i in range(12):
        x = (0.1 * rng.standard_normal(410 * SPF)).astype(np.float32)
        sf.write(root / "wav" / f"u{i:02d}.wav", x, SR, subtype="FLOAT")
        f = np.stack(
            [np.full(410, i, np.float32), rng.normal(5, 2, 410), (rng.random(410) > 0.5),
             np.arange(410)], axis=1).astype(np.float32)
        np.save(root / "feats" / f"u{i:02d}.npy", f)
    out = str(tmp_path_factory.mktemp("data"))
    pipeline.run_prep(pipeline.PrepConfig(
        fmt="features", corpus_dir=str(root), output_dir=out, utterances_per_shard=2,
        valid_fraction=0.2, test_fraction=0.2, progress=False))
    return out


def test_reader_yields_documented_shapes(prepared) -> None:
    ds = data.make_dataset(prepared, "train", 3, seed=0)
    assert ds.element_spec["audio"].shape == (3, 48000)
    assert ds.element_spec["features"].shape == (3, 400, DIM)
    assert ds.element_spec["speaker"].shape == (3,)
    b = next(iter(ds))
    assert b["audio"].dtype == tf.float32 and b["features"].dtype == tf.float32
    assert b["speaker"].dtype == tf.int32
    assert float(tf.reduce_max(tf.abs(b["audio"]))) <= 1.0
    assert data.dataset_info(prepared) == (DIM, 1)


def test_reader_normalises_with_train_stats(prepared) -> None:
    m = schema.load_manifest(prepared)
    ds = data.make_dataset(prepared, "train", 1, shuffle=False, repeat=False, deterministic=True)
    seen = []
    for b in ds:
        f = b["features"].numpy()[0]
        raw = schema.denormalize(f, m)
        np.testing.assert_allclose(raw[:, 3], np.arange(400), atol=1e-3)
        seen.append(int(round(raw[0, 0])))
        assert set(np.unique(f[:, 2])) <= {0.0, 1.0}  # binary column passes unchanged
    train_ids = sorted(seen)
    assert len(train_ids) == m.counts["train"]["windows"] == 8
    # Independent statistics of column 1 over the train utterances' frames (410 each).
    rng = np.random.default_rng(0)
    col1 = {}
    for i in range(12):
        rng.standard_normal(410 * SPF)
        col1[i] = rng.normal(5, 2, 410)
        rng.random(410)
    ref = np.concatenate([col1[i] for i in train_ids])
    assert m.mean[1] == pytest.approx(ref.mean(), rel=1e-6)
    assert m.std[1] == pytest.approx(ref.std(), rel=1e-5)
    assert m.mean[0] == pytest.approx(np.mean(train_ids))


def test_deterministic_order_and_per_replica_batch(prepared) -> None:
    def ids(ds, n):
        return [b["features"].numpy()[:, 0, 0].tolist() for b in ds.take(n)]

    a = data.make_dataset(prepared, "train", 2, seed=3, deterministic=True)
    b = data.make_dataset(prepared, "train", 2, seed=3, deterministic=True)
    assert ids(a, 6) == ids(b, 6)
    ctx0 = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0,
                                      num_replicas_in_sync=2)
    ctx1 = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                      num_replicas_in_sync=2)
    d0 = data.make_dataset(prepared, "train", 4, input_context=ctx0, repeat=False,
                           shuffle=False)
    d1 = data.make_dataset(prepared, "train", 4, input_context=ctx1, repeat=False,
                           shuffle=False)
    assert d0.element_spec["audio"].shape == (2, 48000)
    u0 = {v for x in ids(d0, 10) for v in x}
    u1 = {v for x in ids(d1, 10) for v in x}
    assert u0 and u1 and not (u0 & u1)  # file-sharded: disjoint utterances
    opts = d0.options().experimental_distribute.auto_shard_policy
    assert opts == tf.data.experimental.AutoShardPolicy.FILE
    with pytest.raises(ValueError, match="not divisible"):
        data.make_dataset(prepared, "train", 3, input_context=ctx0)


def test_utterance_dataset(prepared) -> None:
    m = schema.load_manifest(prepared)
    n = 0
    for u in data.make_utterance_dataset(prepared):
        n += 1
        assert u["num_frames"] == 410 and u["audio"].shape == (410 * SPF,)
        assert u["features"].shape == (410, DIM) and u["speaker"] == 0
        assert u["utterance_id"].numpy().decode().startswith("u")
    assert n == m.counts["test"]["utterances"] == 2


def test_mu_option_reencodes_the_prepared_audio(prepared) -> None:
    """App. C's 8-bit option: audio prepared with µ = 65535 comes out µ-law encoded with µ = 255
    (NumPy float64 reference); the default and mu = the manifest's are the stored samples."""
    kw = dict(shuffle=False, repeat=False, deterministic=True)
    stored = next(iter(data.make_dataset(prepared, "train", 2, **kw)))["audio"].numpy()
    same = next(iter(data.make_dataset(prepared, "train", 2, mu=65535, **kw)))["audio"].numpy()
    mu8 = next(iter(data.make_dataset(prepared, "train", 2, mu=255, **kw)))["audio"].numpy()
    np.testing.assert_array_equal(same, stored)
    x = np.sign(stored.astype(np.float64)) * np.expm1(np.abs(stored) * np.log(65536.0)) / 65535
    ref = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log(256.0)
    np.testing.assert_allclose(mu8, ref, atol=2e-6)
    assert np.abs(mu8 - stored).max() > 0.05  # a different companding, not a no-op
    np.testing.assert_allclose(mulaw.decode(mu8, 255), x, atol=1e-6, rtol=1e-4)
    utt = next(iter(data.make_utterance_dataset(prepared)))["audio"].numpy()
    utt8 = next(iter(data.make_utterance_dataset(prepared, mu=255)))["audio"].numpy()
    np.testing.assert_allclose(utt8, mulaw.transcode(utt, 65535.0, 255.0), atol=1e-6)
    for bad in (0, -255, float("nan"), "x"):
        with pytest.raises(ValueError, match=r"mu must be a finite number > 0.*got"):
            data.make_dataset(prepared, "train", 2, mu=bad)


def test_normalize_numpy_and_tf_agree(prepared) -> None:
    m = schema.load_manifest(prepared)
    x = np.random.default_rng(1).normal(size=(5, DIM)).astype(np.float32)
    y_np = schema.normalize(x, m)

    @tf.function(input_signature=[tf.TensorSpec([None, DIM], tf.float32)])
    def f(t):
        return schema.normalize(t, m)

    np.testing.assert_allclose(f(tf.constant(x)).numpy(), y_np, rtol=1e-6)
    np.testing.assert_allclose(schema.denormalize(y_np, m), x, atol=1e-5)
    with open(os.path.join(prepared, "manifest.json")) as fh:
        np.testing.assert_allclose(schema.normalize(x, json.load(fh)), y_np)


def test_manifest_errors_name_file_and_field(tmp_path, prepared) -> None:
    with pytest.raises(schema.ManifestError, match=r"manifest\.json: cannot read"):
        schema.load_manifest(str(tmp_path))
    with open(os.path.join(prepared, "manifest.json")) as fh:
        d = json.load(fh)
    for field in ("feature_dim", "normalisation", "speakers"):
        bad = dict(d)
        del bad[field]
        (tmp_path / "manifest.json").write_text(json.dumps(bad))
        with pytest.raises(schema.ManifestError, match=rf"manifest\.json: field '{field}' is "
                           "missing"):
            schema.load_manifest(str(tmp_path))
    bad = dict(d, normalisation={"mean": d["normalisation"]["mean"], "std": [1.0]})
    (tmp_path / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(schema.ManifestError, match=r"normalisation\.std"):
        schema.load_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(FileNotFoundError, match="no TFRecord shards"):
        data.make_dataset(str(tmp_path), "train", 2)


# --------------------------------------------------------------------------- random windows
RW, RW_T = 40, (40, 44, 47, 50, 53, 55, 57, 58, 59, 60)  # prepared window; utterance frames
CODE = 2.0**14  # audio of utterance i, frame j: the constant (100 i + j + 1) / CODE


@pytest.fixture(scope="module")
def prepared_utts(tmp_path_factory) -> str:
    """A 'features' corpus of 10 utterances of 40-60 frames, prepared with 40-frame windows:
    audio and features encode (utterance, frame), so a window's alignment can be read back."""
    root = tmp_path_factory.mktemp("corpus_rw")
    rng = np.random.default_rng(1)
    os.makedirs(root / "wav")
    os.makedirs(root / "feats")
    for i, t in enumerate(RW_T):
        x = np.repeat((100 * i + np.arange(t) + 1) / CODE, SPF).astype(np.float32)
        sf.write(root / "wav" / f"u{i:02d}.wav", x, SR, subtype="FLOAT")
        f = np.stack([np.arange(t), np.full(t, i), rng.normal(5, 2, t), rng.random(t) > 0.5],
                     axis=1).astype(np.float32)
        np.save(root / "feats" / f"u{i:02d}.npy", f)
    out = str(tmp_path_factory.mktemp("data_rw"))
    pipeline.run_prep(pipeline.PrepConfig(
        fmt="features", corpus_dir=str(root), output_dir=out, window_frames=RW,
        utterances_per_shard=2, valid_fraction=0.2, test_fraction=0.2, progress=False))
    return out


def _windows(ds, n: int) -> dict[str, np.ndarray]:
    bs = [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]
    return {k: np.concatenate([b[k] for b in bs]) for k in bs[0]}


def _decode_window(m: schema.Manifest, audio: np.ndarray, feats: np.ndarray
                   ) -> tuple[int, np.ndarray, np.ndarray]:
    """(utterance index, feature frame indices [w], audio codes per frame [w, 120])."""
    raw = np.rint(schema.denormalize(feats, m)).astype(int)
    codes = np.rint(mulaw.decode(audio).astype(np.float64) * CODE).astype(int)
    assert (raw[:, 1] == raw[0, 1]).all()
    return int(raw[0, 1]), raw[:, 0], codes.reshape(len(raw), SPF)


def test_random_windows_align_audio_with_features_and_reach_both_ends(prepared_utts) -> None:
    m = schema.load_manifest(prepared_utts)
    w = _windows(data.make_random_window_dataset(prepared_utts, "train", 16, seed=5,
                                                 with_positions=True), 120)
    train = {int(u.decode()[1:]) for u in w["utterance_id"]}
    assert len(train) == m.counts["train"]["utterances"] == 6
    first_last: dict[int, set[int]] = {i: set() for i in train}
    pos = []
    for a, f, uid, s in zip(w["audio"], w["features"], w["utterance_id"], w["start_frame"],
                            strict=True):
        i, frames, codes = _decode_window(m, a, f)
        assert i == int(uid.decode()[1:])
        # feature frames [s, s + w) and audio samples [120 s, 120 (s + w)) of the same frames
        np.testing.assert_array_equal(frames, s + np.arange(RW))
        np.testing.assert_array_equal(codes, (100 * i + frames + 1)[:, None].repeat(SPF, 1))
        first_last[i] |= {int(frames[0]), int(frames[-1])}
        pos.append(s / (RW_T[i] - RW) if RW_T[i] > RW else 0.5)
    for i in train:  # the first and the last frame of every utterance were drawn
        assert {0, RW_T[i] - 1} <= first_last[i], (i, sorted(first_last[i]))
    assert abs(np.mean(pos) - 0.5) < 0.03  # uniform start frames: mean position 1/2


def test_random_windows_equal_grid_windows_at_the_same_start(prepared_utts) -> None:
    """Same normalisation and µ as make_dataset: a random window starting at a grid start
    frame is the grid window, bit for bit; static shapes are make_dataset's."""
    rand = data.make_random_window_dataset(prepared_utts, "train", 4, seed=2)
    grid = data.make_dataset(prepared_utts, "train", 4, shuffle=False, repeat=False,
                             deterministic=True)
    assert rand.element_spec == grid.element_spec
    assert rand.element_spec["audio"].shape == (4, RW * SPF)
    assert rand.element_spec["features"].shape == (4, RW, DIM)
    assert rand.element_spec["speaker"] == tf.TensorSpec([4], tf.int32)
    m = schema.load_manifest(prepared_utts)
    w = _windows(data.make_random_window_dataset(prepared_utts, "train", 16, seed=2,
                                                 with_positions=True), 60)
    by_pos = {(int(u.decode()[1:]), int(s)): (a, f) for u, s, a, f in zip(
        w["utterance_id"], w["start_frame"], w["audio"], w["features"], strict=True)}
    g = _windows(grid, 3)
    matched = 0
    for a, f in zip(g["audio"], g["features"], strict=True):
        i, frames, _ = _decode_window(m, a, f)
        if (i, frames[0]) in by_pos:
            matched += 1
            np.testing.assert_array_equal(by_pos[i, frames[0]][0], a)
            np.testing.assert_array_equal(by_pos[i, frames[0]][1], f)
    assert matched >= 4


def test_random_windows_are_reproducible_and_shorter_windows(prepared_utts) -> None:
    def run(seed: int, **kw) -> dict[str, np.ndarray]:
        return _windows(data.make_random_window_dataset(
            prepared_utts, "train", 4, 24, seed=seed, with_positions=True, **kw), 8)

    a, b, c = run(7), run(7), run(8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["start_frame"], c["start_frame"])
    assert a["audio"].shape == (32, 24 * SPF) and a["features"].shape == (32, 24, DIM)
    assert a["start_frame"].max() <= max(RW_T) - 24
    k3, k3b = run(7, windows_per_utterance=3), run(7, windows_per_utterance=3)
    np.testing.assert_array_equal(k3["features"], k3b["features"])
    mu8 = _windows(data.make_random_window_dataset(
        prepared_utts, "train", 4, 24, seed=7, with_positions=True, mu=255), 8)
    np.testing.assert_array_equal(mu8["start_frame"], a["start_frame"])
    np.testing.assert_allclose(mu8["audio"], mulaw.transcode(a["audio"], 65535.0, 255.0),
                               atol=1e-6)
    assert np.abs(mu8["audio"] - a["audio"]).max() > 0.05


def test_random_windows_per_replica_batch_and_file_sharding(prepared_utts) -> None:
    ctx = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=p,
                                      num_replicas_in_sync=2) for p in (0, 1)]
    ds = [data.make_random_window_dataset(prepared_utts, "train", 4, seed=1, input_context=c,
                                          with_positions=True) for c in ctx]
    assert ds[0].element_spec["audio"].shape == (2, RW * SPF)
    assert ds[0].element_spec["features"].shape == (2, RW, DIM)
    u = [set(_windows(d, 20)["utterance_id"].tolist()) for d in ds]
    assert u[0] and u[1] and not (u[0] & u[1])  # file-sharded: disjoint utterances
    assert len(u[0] | u[1]) == 6
    with pytest.raises(ValueError, match="not divisible"):
        data.make_random_window_dataset(prepared_utts, "train", 3, seed=1, input_context=ctx[0])


def test_random_windows_errors(prepared_utts, tmp_path) -> None:
    import train_testdata

    with pytest.raises(ValueError, match=r"window_frames must be in \[1, 40\].*got 41"):
        data.make_random_window_dataset(prepared_utts, "train", 2, 41, seed=0)
    with pytest.raises(ValueError, match="windows_per_utterance"):
        data.make_random_window_dataset(prepared_utts, "train", 2, seed=0,
                                        windows_per_utterance=0)
    old = train_testdata.write_dataset(str(tmp_path / "old"))  # window shards only
    with pytest.raises(FileNotFoundError,
                       match=r"train_utterances-.*no whole-utterance shards.*re-run tts-gan-prep"):
        data.make_random_window_dataset(old, "train", 2, seed=0)


def test_training_input_uses_random_windows_by_default(prepared_utts) -> None:
    """train_lib's input (data.windows = "random", the base config's default): windows start
    off the prepared grid too; "grid" keeps the prepared windows' starts; a bad value is an
    error naming the field."""
    from experiments import common
    from tts_gan import train_lib

    m = schema.load_manifest(prepared_utts)
    c = common.base_config()
    c.data.window_frames = 16
    c.discriminator.rwds = []
    c.train.global_batch_size = 8
    c = train_lib.resolve_config(c, prepared_utts)
    assert c.data.windows == "random"
    ctx = tf.distribute.InputContext()
    starts = set()
    for b in train_lib.make_train_dataset_fn(c, prepared_utts, seed=3)(ctx).take(8):
        assert b["audio"].shape == (8, 16 * SPF) and b["features"].shape == (8, 16, m.feature_dim)
        f = b["features"].numpy()[..., 0] * m.std[0] + m.mean[0]  # column 0 = frame index
        starts |= set(np.round(f[:, 0]).astype(int).tolist())
    assert max(starts) > RW - 16  # beyond the last crop of the first 40-frame grid window
    c.data.windows = "grid"
    for b in train_lib.make_train_dataset_fn(c, prepared_utts, seed=3)(ctx).take(8):
        f = b["features"].numpy()[..., 0] * m.std[0] + m.mean[0]
        assert np.round(f[:, 0]).max() <= RW - 16
    c.data.windows = "everywhere"
    with pytest.raises(ValueError, match=r"data.windows='everywhere'"):
        train_lib.make_train_dataset_fn(c, prepared_utts, seed=3)

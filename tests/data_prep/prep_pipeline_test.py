"""End-to-end tests of the tts-gan-prep pipeline on tiny synthetic corpora (paper §3.1, App. C)."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import soundfile as sf

from data_prep import pipeline
from tts_gan import mulaw, schema

SR = schema.SAMPLE_RATE
SPF = schema.SAMPLES_PER_FRAME
QUESTIONS = 'QS "C-a" {*-a+*}\nQS "C-b" {*-b+*}\nCQS "Pos" {@(\\d+)_}\n'


def voiced(frames: int, seed: int = 0, f0: float = 150.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames * SPF) / SR
    x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t)
    return (x + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path: str, x: np.ndarray, sr: int = SR) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, x, sr, subtype="FLOAT")


def write_lab(path: str, bounds: list[int], end_frame: int) -> None:
    """Phones alternating a/b with boundaries at the given frames."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    edges = [0, *bounds, end_frame]
    lines = []
    for i in range(len(edges) - 1):
        ph = "ab"[i % 2]
        lines.append(f"{edges[i] * 50000} {edges[i + 1] * 50000} x^x-{ph}+x=x@{i + 1}_1/A:0")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def make_hts_corpus(root: str, n: int = 6, frames: int = 100, speaker_dirs: bool = False) -> None:
    for i in range(n):
        sub = f"spk{i % 2}/" if speaker_dirs else ""
        write_wav(f"{root}/wav/{sub}u{i:02d}.wav", voiced(frames, i))
        write_lab(f"{root}/lab/{sub}u{i:02d}.lab", [30 + i], frames)
    with open(f"{root}/q.hed", "w") as f:
        f.write(QUESTIONS)


def cfg(corpus: str, out: str, **kw) -> pipeline.PrepConfig:
    base = dict(fmt="hts", corpus_dir=corpus, output_dir=out, question_file=f"{corpus}/q.hed",
                window_frames=40, progress=False, utterances_per_shard=4)
    if kw.get("fmt") == "features":
        base.pop("question_file")
    base.update(kw)
    return pipeline.PrepConfig(**base)


def read_records(path: str, compression: str = "") -> list[dict]:
    import tensorflow as tf

    out = []
    for rec in tf.data.TFRecordDataset(path, compression_type=compression or None):
        ex = tf.train.Example.FromString(rec.numpy())
        f = ex.features.feature
        out.append({
            "audio": np.array(f["audio"].float_list.value, np.float32),
            "features": np.array(f["features"].float_list.value, np.float32),
            "speaker": f["speaker"].int64_list.value[0],
            "utterance_id": f["utterance_id"].bytes_list.value[0].decode(),
            "start_frame": f["start_frame"].int64_list.value[0],
            "num_frames": (f["num_frames"].int64_list.value[0] if "num_frames" in f else None),
        })
    return out


def all_records(out: str, prefix: str) -> list[dict]:
    recs = []
    for p in sorted(glob.glob(os.path.join(out, schema.shard_pattern(prefix)))):
        recs += read_records(p)
    return recs


def test_click_lands_at_120_times_frame_and_features_align(tmp_path) -> None:
    """features format: a click at frame 57 and a one-hot feature marker at frame 57."""
    root, f0, frames, dim = str(tmp_path / "c"), 57, 100, 3
    for i in range(4):
        x = np.zeros(frames * SPF + 37, np.float32)  # + a partial frame, dropped
        x[f0 * SPF] = 0.5
        feats = np.zeros((frames, dim), np.float32)
        feats[:, 0] = np.arange(frames)
        feats[f0, 1] = 1.0
        feats[:, 2] = i
        write_wav(f"{root}/wav/u{i}.wav", x)
        os.makedirs(f"{root}/feats", exist_ok=True)
        np.save(f"{root}/feats/u{i}.npy", feats)
    out = str(tmp_path / "out")
    m = pipeline.run_prep(cfg(root, out, fmt="features", hop_frames=20, valid_fraction=0,
                              test_fraction=0))
    recs = all_records(out, "train")
    assert len(recs) == 4 * 4 and m.counts["train"]["windows"] == 16
    seen = 0
    for r in recs:
        s = r["start_frame"]
        assert s in (0, 20, 40, 60)
        a = mulaw.decode(r["audio"])
        f = r["features"].reshape(40, dim)
        np.testing.assert_array_equal(f[:, 0], np.arange(s, s + 40))
        if s <= f0 < s + 40:
            seen += 1
            assert int(np.argmax(np.abs(a))) == SPF * (f0 - s)
            assert abs(a[SPF * (f0 - s)] - 0.5) < 1e-6
            assert int(np.argmax(f[:, 1])) == f0 - s
        else:
            assert np.abs(a).max() == 0 and f[:, 1].max() == 0
    assert seen == 4 * 2
    # features corpora: kinds inferred from train values; column 1 is 0/1 -> binary.
    kinds = {b.start: b.kind for b in m.feature_breakdown}
    assert kinds[1] == schema.BINARY and m.mean[1] == 0.0 and m.std[1] == 1.0
    # Numeric stats over all frames of the train utterances (computed independently here).
    assert m.mean[0] == pytest.approx(49.5) and m.std[0] == pytest.approx(np.arange(100).std())
    assert m.mean[2] == pytest.approx(1.5) and m.std[2] == pytest.approx(np.sqrt(1.25))


def test_hts_phone_boundary_and_mulaw_round_trip(tmp_path) -> None:
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_hts_corpus(root, n=3)
    pipeline.run_prep(cfg(root, out, valid_fraction=0, test_fraction=0, hop_frames=10))
    for r in all_records(out, "train"):
        i = int(r["utterance_id"][1:])
        boundary, s = 30 + i, r["start_frame"]
        f = r["features"].reshape(40, 3 + 11)
        is_b = f[:, 1]
        expect = (np.arange(s, s + 40) >= boundary).astype(np.float32)
        np.testing.assert_array_equal(is_b, expect)
        np.testing.assert_array_equal(f[:, 0], 1 - expect)
        np.testing.assert_array_equal(f[:, 2], 1 + expect)  # CQS phone position 1, 2
        # log F0 of a 150 Hz tone (interpolated where DIO says unvoiced: the utterance edges).
        np.testing.assert_allclose(f[:, -2], np.log(150.0), atol=0.03)
        inner = (np.arange(s, s + 40) >= 2) & (np.arange(s, s + 40) < 98)
        assert (f[inner, -1] == 1).all()
        # µ-law without quantisation: exact inverse within 1e-6 of the input waveform.
        x = voiced(100, i)[s * SPF : (s + 40) * SPF]
        np.testing.assert_allclose(r["audio"], mulaw.encode(x), rtol=0, atol=0)
        assert np.abs(mulaw.decode(r["audio"]).astype(np.float64) - x).max() <= 1e-6


def test_resampling_and_peak_rule(tmp_path) -> None:
    from tts_gan.frontend.audio import load_audio

    t = np.arange(48000) / 48000.0
    write_wav(str(tmp_path / "a.wav"), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
              48000)
    x, sr = load_audio(str(tmp_path / "a.wav"))
    assert sr == 48000 and len(x) == SR and x.dtype == np.float32
    spec = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spec) * SR / len(x) - 440) < 2
    write_wav(str(tmp_path / "b.wav"), np.full(100, 1.5, np.float32))
    y, _ = load_audio(str(tmp_path / "b.wav"))
    assert np.abs(y).max() == pytest.approx(1.0)


BAD_KINDS = {
    "missing wav", "missing label", "corrupt wav", "length mismatch", "wrong channels",
    "too short", "nan/inf", "bad label", "no voiced frames",
}


def make_bad_corpus(root: str) -> None:
    make_hts_corpus(root, n=2)
    fr = 100
    write_lab(f"{root}/lab/b_nowav.lab", [30], fr)
    write_wav(f"{root}/wav/b_nolab.wav", voiced(fr))
    with open(f"{root}/wav/b_corrupt.wav", "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEnot really a wav file")
    write_lab(f"{root}/lab/b_corrupt.lab", [30], fr)
    write_wav(f"{root}/wav/b_mismatch.wav", voiced(fr))
    write_lab(f"{root}/lab/b_mismatch.lab", [30], fr + 40)  # labels 200 ms longer
    write_wav(f"{root}/wav/b_stereo.wav", np.stack([voiced(fr), voiced(fr, 1)], axis=1))
    write_lab(f"{root}/lab/b_stereo.lab", [30], fr)
    write_wav(f"{root}/wav/b_short.wav", voiced(20))
    write_lab(f"{root}/lab/b_short.lab", [10], 20)
    nan = voiced(fr)
    nan[500] = np.nan
    write_wav(f"{root}/wav/b_nan.wav", nan)
    write_lab(f"{root}/lab/b_nan.lab", [30], fr)
    write_wav(f"{root}/wav/b_badlab.wav", voiced(fr))
    with open(f"{root}/lab/b_badlab.lab", "w") as f:
        f.write("x^x-a+b=x@1_1/A:0\n")  # no times
    write_wav(f"{root}/wav/b_silent.wav", np.zeros(fr * SPF, np.float32))
    write_lab(f"{root}/lab/b_silent.lab", [30], fr)


def test_each_bad_input_is_rejected_with_reason(tmp_path, capsys) -> None:
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_bad_corpus(root)
    m = pipeline.run_prep(cfg(root, out, valid_fraction=0, test_fraction=0))
    with open(os.path.join(out, "rejected.tsv")) as f:
        rows = [ln.rstrip("\n").split("\t") for ln in f][1:]
    reasons = {r[0]: r[1] for r in rows}
    assert reasons == {
        "b_nowav": "missing wav", "b_nolab": "missing label", "b_corrupt": "corrupt wav",
        "b_mismatch": "length mismatch", "b_stereo": "wrong channels", "b_short": "too short",
        "b_nan": "nan/inf", "b_badlab": "bad label", "b_silent": "no voiced frames",
    }
    assert set(reasons.values()) == BAD_KINDS
    assert m.rejected == 9 and m.counts["train"]["utterances"] == 2
    assert m.extra["rejected_by_reason"]["too short"] == 1
    err = capsys.readouterr().err
    for uid in reasons:  # one line per bad file, naming it
        lines = [ln for ln in err.splitlines() if ln.startswith(f"rejected {uid} ")]
        assert len(lines) == 1 and uid in lines[0].split(":", 1)[1], lines
    # --downmix accepts the stereo file; --strict stops at the first bad file, naming it.
    m2 = pipeline.run_prep(cfg(root, str(tmp_path / "o2"), valid_fraction=0, test_fraction=0,
                               downmix=True))
    assert m2.rejected == 8
    with pytest.raises(pipeline.PrepError, match=r"--strict: rejected b_\w+ \(.*\): .*b_\w+\."):
        pipeline.run_prep(cfg(root, str(tmp_path / "o3"), strict=True))


def _tree_bytes(out: str) -> dict[str, bytes]:
    res = {}
    for p in sorted(glob.glob(os.path.join(out, "*"))):
        if os.path.isfile(p):
            with open(p, "rb") as f:
                res[os.path.basename(p)] = f.read()
    return res


def test_resume_after_interruption_is_byte_identical(tmp_path, monkeypatch) -> None:
    root = str(tmp_path / "c")
    make_hts_corpus(root, n=10)
    clean = str(tmp_path / "clean")
    pipeline.run_prep(cfg(root, clean, utterances_per_shard=2, test_fraction=0.2,
                                   valid_fraction=0))
    assert len(glob.glob(os.path.join(clean, "train-*"))) == 4

    out = str(tmp_path / "resumed")
    real = pipeline._write_shard
    calls = {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "_write_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_prep(cfg(root, out, utterances_per_shard=2, test_fraction=0.2,
                                   valid_fraction=0))
    assert not os.path.exists(os.path.join(out, "manifest.json"))
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "*.tfrecord"))) == [
        f"{prefix}-0000{k}-of-00004.tfrecord" for prefix in ("train", "train_utterances")
        for k in (0, 1)]  # train shards 0 and 1, windows and whole utterances
    monkeypatch.setattr(pipeline, "_write_shard", real)

    done = []
    real_process = pipeline.process_task
    monkeypatch.setattr(pipeline, "process_task", lambda t: done.append(t) or real_process(t))
    pipeline.run_prep(cfg(root, out, utterances_per_shard=2, test_fraction=0.2,
                                   valid_fraction=0))
    assert len(done) == 10 - 2 - 2  # the first two train shards were kept
    assert _tree_bytes(out) == _tree_bytes(clean)
    assert not glob.glob(os.path.join(out, "*.tmp"))


def test_parallel_workers_and_gzip_give_same_records(tmp_path) -> None:
    root = str(tmp_path / "c")
    make_hts_corpus(root, n=6, speaker_dirs=True)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    ma = pipeline.run_prep(cfg(root, a))
    mb = pipeline.run_prep(cfg(root, b, workers=2, compression="GZIP"))
    assert ma.speakers == {"spk0": 0, "spk1": 1} and ma.num_speakers == 2
    assert ma.mean == mb.mean and ma.std == mb.std and ma.counts == mb.counts
    for p in sorted(glob.glob(os.path.join(a, "*.tfrecord"))):
        ra = read_records(p)
        rb = read_records(os.path.join(b, os.path.basename(p)), "GZIP")
        assert len(ra) == len(rb) > 0
        for x, y in zip(ra, rb, strict=True):
            assert x["utterance_id"] == y["utterance_id"]
            np.testing.assert_array_equal(x["audio"], y["audio"])
            np.testing.assert_array_equal(x["features"], y["features"])
            assert x["speaker"] == ma.speakers[x["utterance_id"].split("/")[0]]


def test_splits_whole_test_utterances_and_manifest(tmp_path) -> None:
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_hts_corpus(root, n=10)
    with open(f"{root}/speakers.tsv", "w") as f:
        f.write("# id speaker\n" + "".join(f"u{i:02d}\t{'AB'[i % 2]}\n" for i in range(10)))
    m = pipeline.run_prep(cfg(root, out, valid_fraction=0.2, test_fraction=0.2))
    assert m.speakers == {"A": 0, "B": 1}
    uids = {s: {r["utterance_id"] for r in all_records(out, s)} for s in schema.SPLITS}
    assert [len(uids[s]) for s in ("train", "valid", "test")] == [6, 2, 2]
    assert not (uids["train"] & uids["valid"]) and not (uids["train"] & uids["test"])
    assert uids == {s: set(u for u, sp in pipeline.assign_splits(
        [f"u{i:02d}" for i in range(10)], 1234, 0.2, 0.2).items() if sp == s)
        for s in schema.SPLITS}
    for split in schema.SPLITS:  # whole utterances of every split, next to the windows
        whole = all_records(out, f"{split}_utterances")
        assert [r["utterance_id"] for r in whole] == sorted(uids[split])
        for r in whole:
            assert r["num_frames"] == 100 and r["audio"].shape == (100 * SPF,)
            assert r["features"].shape == (100 * 14,) and r["start_frame"] == 0
            x = voiced(100, int(r["utterance_id"][1:]))
            np.testing.assert_array_equal(r["audio"], mulaw.encode(x))
        assert m.counts[split]["utterance_records"] == len(uids[split])
        assert m.counts[split]["utterance_shards"] == len(
            glob.glob(os.path.join(out, schema.shard_pattern(f"{split}_utterances"))))
        assert m.extra["utterance_files"][split] == f"{split}_utterances-?????-of-?????.tfrecord"
    assert m.counts["train"]["utterance_shards"] == 2  # 6 utterances, 4 per shard
    # normalisation stats: train split only, numeric dims standardised, binary dims untouched.
    train = np.concatenate([r["features"].reshape(-1, 14) for r in
                            all_records(out, "train")])
    assert train.shape[0] == 6 * 2 * 40  # 2 windows of 40 frames per 100-frame utterance
    with open(os.path.join(out, "manifest.json")) as fh:
        d = json.load(fh)
    assert d["normalisation"]["mean"][:2] == [0, 0] and d["normalisation"]["std"][:2] == [1, 1]
    loaded = schema.load_manifest(out)
    assert loaded.feature_dim == 14 and loaded.counts["train"]["utterances"] == 6
    assert loaded.command == "" and loaded.hours["train"] == pytest.approx(6 * 0.5 / 3600)


def make_two_voice_corpus(root: str, n: int = 10, frames: int = 100) -> None:
    """``n`` sentences ``sNNNN``, each under the speakers ``kal`` and ``slt`` (as the built-in
    Festival corpus: one sentence, two voices, uids ``kal/s0001`` and ``slt/s0001``)."""
    for spk in ("kal", "slt"):
        for i in range(n):
            write_wav(f"{root}/wav/{spk}/s{i:04d}.wav", voiced(frames, i))
            write_lab(f"{root}/lab/{spk}/s{i:04d}.lab", [30 + i % 5], frames)
    with open(f"{root}/q.hed", "w") as f:
        f.write(QUESTIONS)


def _split_of(out: str) -> dict[str, str]:
    return {r["utterance_id"]: s for s in schema.SPLITS for r in all_records(out, s)}


def test_split_by_sentence_keeps_both_voices_of_a_sentence_in_one_split(tmp_path) -> None:
    import hashlib

    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_two_voice_corpus(root)
    m = pipeline.run_prep(cfg(root, out, split_by="sentence", valid_fraction=0.2,
                              test_fraction=0.2))
    split_of = _split_of(out)
    assert len(split_of) == 20
    keys = {s: {u.split("/")[1] for u, sp in split_of.items() if sp == s} for s in schema.SPLITS}
    assert not (keys["train"] & keys["valid"] or keys["train"] & keys["test"]
                or keys["valid"] & keys["test"])
    for i in range(10):
        assert split_of[f"kal/s{i:04d}"] == split_of[f"slt/s{i:04d}"]
    # Fractions count sentences: 2 test and 2 valid sentences of 10, each in two voices.
    assert [m.counts[s]["utterances"] for s in ("train", "valid", "test")] == [12, 4, 4]
    # The sha256(seed:key) order, with key = the sentence id.
    order = sorted((f"s{i:04d}" for i in range(10)),
                   key=lambda k: hashlib.sha256(f"1234:{k}".encode()).hexdigest())
    assert keys["test"] == set(order[:2]) and keys["valid"] == set(order[2:4])
    assert m.extra["splits"]["split_by"] == "sentence"
    # By utterance, the same corpus puts some sentence's two voices in different splits.
    by_utt = pipeline.assign_splits(list(split_of), 1234, 0.2, 0.2, "utterance")
    assert any(by_utt[f"kal/s{i:04d}"] != by_utt[f"slt/s{i:04d}"] for i in range(10))


def test_split_by_is_part_of_the_shard_settings(tmp_path, monkeypatch) -> None:
    """All train (no valid/test): the shards hold the same uids either way, yet a rerun with
    another --split_by redoes them; a rerun with the same value redoes none."""
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_two_voice_corpus(root, n=4)
    kw = dict(valid_fraction=0, test_fraction=0)
    pipeline.run_prep(cfg(root, out, split_by="utterance", **kw))
    done = []
    real_process = pipeline.process_task
    monkeypatch.setattr(pipeline, "process_task", lambda t: done.append(t) or real_process(t))
    m = pipeline.run_prep(cfg(root, out, split_by="sentence", **kw))
    assert len(done) == 8 and m.extra["splits"]["split_by"] == "sentence"
    pipeline.run_prep(cfg(root, out, split_by="sentence", **kw))
    assert len(done) == 8


def test_split_by_bad_value_and_cli_default(tmp_path) -> None:
    from absl import flags

    from data_prep import prep_main

    root = str(tmp_path / "c")
    make_two_voice_corpus(root, n=3)
    with pytest.raises(pipeline.PrepError, match=r"--split_by=speaker: expected utterance or "
                       "sentence"):
        pipeline.run_prep(cfg(root, str(tmp_path / "o"), split_by="speaker"))
    with pytest.raises(ValueError, match=r"split_by='speaker': expected one of"):
        pipeline.assign_splits(["a/s1"], 1, 0.1, 0.1, "speaker")
    assert prep_main.default_split_by("festival") == "sentence"
    assert prep_main.default_split_by("hts") == prep_main.default_split_by("features") == \
        "utterance"
    try:
        with pytest.raises(flags.IllegalFlagValueError, match="split_by"):
            flags.FLAGS(["tts-gan-prep", "--split_by=speaker"])
    finally:
        flags.FLAGS.unparse_flags()


def _cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    from absl import flags

    from data_prep import prep_main

    argv = ["tts-gan-prep", *argv, "--noprogress"]
    monkeypatch.setattr("sys.argv", argv)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        rc = prep_main.main([argv[0]])
    finally:
        flags.FLAGS.unparse_flags()
    return rc, capsys.readouterr().out


def test_one_usable_utterance_is_trained_on(tmp_path, monkeypatch, capsys) -> None:
    """A corpus with one usable utterance of three (one label missing, one wav silent) wrote no
    training window when the splits were drawn before the bad files were rejected: with this
    seed the usable one was drawn into valid or test. Splits are drawn among usable ones."""
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_hts_corpus(root, n=3)
    uids = ["u00", "u01", "u02"]
    seed = next(s for s in range(100)
                if pipeline.assign_splits(uids, s, 0.05, 0.05)["u01"] != "train")
    os.remove(f"{root}/lab/u00.lab")
    write_wav(f"{root}/wav/u02.wav", np.zeros(100 * SPF, np.float32))
    rc, line = _cli([f"--corpus_dir={root}", f"--output_dir={out}", "--format=hts",
                     f"--question_file={root}/q.hed", "--window_frames=40", f"--seed={seed}"],
                    monkeypatch, capsys)
    assert rc == 0
    m = schema.load_manifest(out)
    assert [m.counts[s]["utterances"] for s in ("train", "valid", "test")] == [1, 0, 0]
    assert m.counts["train"]["windows"] == 2 and m.rejected == 2
    assert m.extra["rejected_by_reason"] == {"missing label": 1, "no voiced frames": 1}
    assert {r["utterance_id"] for r in all_records(out, "train")} == {"u01"}
    assert "train: 1 utts / 2 windows" in line
    assert line.rstrip().endswith(
        "; valid and test are empty: 1 usable utterance (valid and test take one each from 3 "
        "on; train keeps at least one)")


def test_three_usable_utterances_fill_every_split_and_bad_ones_do_not_count(tmp_path) -> None:
    root = str(tmp_path / "c")
    make_hts_corpus(root, n=5)
    os.remove(f"{root}/wav/u03.wav")
    write_wav(f"{root}/wav/u04.wav", voiced(30, 4))  # shorter than the 40-frame window
    m = pipeline.run_prep(cfg(root, str(tmp_path / "o")))
    assert [m.counts[s]["utterances"] for s in ("train", "valid", "test")] == [1, 1, 1]
    assert m.rejected == 2 and m.extra["splits"]["keys"] == 3
    os.remove(f"{root}/wav/u02.wav")  # two usable: both train (5 % of 2 rounds to 0)
    m = pipeline.run_prep(cfg(root, str(tmp_path / "o2")))
    assert [m.counts[s]["utterances"] for s in ("train", "valid", "test")] == [2, 0, 0]
    # fractions that would take everything still leave train one key
    a = pipeline.assign_splits(["a", "b", "c", "d"], 1, 0.5, 0.5)
    assert sorted(a.values()) == ["test", "test", "train", "valid"]
    assert list(pipeline.assign_splits(["a"], 1, 0.5, 0.5).values()) == ["train"]


def test_rerun_reuses_the_check_pass_until_a_file_changes(tmp_path, monkeypatch) -> None:
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_hts_corpus(root, n=4)
    first = pipeline.run_prep(cfg(root, out))
    computed: list[str] = []
    real = pipeline._features
    monkeypatch.setattr(pipeline, "_features",
                        lambda u, c, p=None: computed.append(u.uid) or real(u, c, p))
    assert pipeline.run_prep(cfg(root, out)).counts == first.counts
    assert computed == []  # every check result and every shard reused
    write_wav(f"{root}/wav/u02.wav", voiced(100, 99))  # new audio: checked and written again
    pipeline.run_prep(cfg(root, out))
    # the check pass recomputes u02 only; the writing pass redoes u02's shard only
    shard = next(p for p in glob.glob(os.path.join(out, schema.shard_pattern("train")))
                 if "u02" in {r["utterance_id"] for r in read_records(p)})
    members = sorted({r["utterance_id"] for r in read_records(shard)})
    assert computed[0] == "u02" and sorted(computed[1:]) == members
    assert len(members) < 4


def _write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def test_split_file_decides_every_split_and_leaves_unlisted_keys_out(tmp_path) -> None:
    """--split_file: listed keys get their split (by sentence: both voices), keys not listed
    are left out, and the manifest names the file and its sha256."""
    import hashlib

    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_two_voice_corpus(root, n=6)
    text = ("# sentence splits\n"
            "s0000\ttest\ns0001\tvalid\n\ns0002\ttrain\ns0003 train\ns0004\ttrain\n")
    sf_path = _write(str(tmp_path / "split.tsv"), text)
    m = pipeline.run_prep(cfg(root, out, split_by="sentence", split_file=sf_path))
    split_of = _split_of(out)
    assert split_of == {f"{spk}/s{i:04d}": sp for spk in ("kal", "slt") for i, sp in
                        enumerate(["test", "valid", "train", "train", "train"])}
    assert [m.counts[s]["utterances"] for s in ("train", "valid", "test")] == [6, 2, 2]
    sp = m.extra["splits"]
    assert sp["fixed"] == (f"--split_file={sf_path} (sha256 "
                           f"{hashlib.sha256(text.encode()).hexdigest()})")
    assert sp["valid_fraction"] is None and sp["keys"] == 5
    # by utterance, keys are uids: one voice of a sentence may go elsewhere
    sf2 = _write(str(tmp_path / "u.tsv"), "kal/s0000\ttest\nslt/s0000\ttrain\nkal/s0001\tvalid\n")
    pipeline.run_prep(cfg(root, str(tmp_path / "o2"), split_file=sf2))
    assert _split_of(str(tmp_path / "o2")) == {
        "kal/s0000": "test", "slt/s0000": "train", "kal/s0001": "valid"}


@pytest.mark.parametrize("text, error", [
    ("s0000\ttest\ns0001\tdev\n", r"split\.tsv:2: unknown split 'dev' for 's0001' "
                                  r"\(expected train, valid, test\)"),
    ("s0000\ttest\n# c\ns0000\ttrain\n", r"split\.tsv:3: duplicate key 's0000' \(first on "
                                        r"line 1\)"),
    ("s0000\ttest\textra\n", r"split\.tsv:1: expected 'KEY<TAB>train\|valid\|test', got "),
    ("s0000\n", r"split\.tsv:1: expected 'KEY<TAB>train\|valid\|test', got 's0000'"),
    ("# nothing\n\n", r"split\.tsv: no 'KEY<TAB>train\|valid\|test' line"),
    ("s0000\ttest\ns0099\ttrain\nkal/s0001\ttrain\n",
     r"split\.tsv:2: 's0099' matches no utterance of .* \(2 unknown keys; with "
     r"--split_by=sentence keys are IDs without the SPK/ prefix\)"),
])
def test_split_file_errors_name_the_file_and_line(tmp_path, text, error) -> None:
    root = str(tmp_path / "c")
    make_two_voice_corpus(root, n=3)
    path = _write(str(tmp_path / "split.tsv"), text)
    with pytest.raises(pipeline.PrepError, match=error):
        pipeline.run_prep(cfg(root, str(tmp_path / "o"), split_by="sentence", split_file=path))
    assert not os.path.exists(tmp_path / "o" / schema.MANIFEST_NAME)


def test_split_file_cli_and_missing_file(tmp_path, monkeypatch, capsys) -> None:
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_hts_corpus(root, n=4)
    path = _write(str(tmp_path / "s.tsv"), "u00\ttrain\nu01\ttrain\nu02\ttest\n")
    rc, line = _cli([f"--corpus_dir={root}", f"--output_dir={out}", "--format=hts",
                     f"--question_file={root}/q.hed", "--window_frames=40",
                     f"--split_file={path}"], monkeypatch, capsys)
    assert rc == 0 and "train: 2 utts" in line and "test: 1 utts" in line
    assert "empty" not in line  # valid is empty because the file says so: no note
    with pytest.raises(pipeline.PrepError, match=rf"--split_file={tmp_path}/nope.tsv: cannot "
                       "read it"):
        pipeline.run_prep(cfg(root, f"{out}2", split_file=f"{tmp_path}/nope.tsv"))


def test_only_ids_reads_the_listed_sentences_only(tmp_path) -> None:
    """The festival prep's ``only_ids``: other files in the corpus folder are not read."""
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    make_two_voice_corpus(root, n=6)
    m = pipeline.run_prep(cfg(root, out, split_by="sentence",
                              only_ids=["s0000", "s0001", "s0002", "s0003"]))
    assert sorted(_split_of(out)) == [f"{s}/s{i:04d}" for s in ("kal", "slt") for i in range(4)]
    assert m.extra["splits"]["keys"] == 4 and m.extra["splits"]["fixed"] == ""


class _Started:
    """fn for bounded_imap: counts the items whose computation has started (thread-safe)."""

    def __init__(self) -> None:
        import threading

        self.lock, self.started = threading.Lock(), 0

    def __call__(self, x: int) -> int:
        with self.lock:
            self.started += 1
        if x == 13:
            raise KeyError("item 13")
        return x * x


def _consume_slowly(results, fn: _Started, n: int) -> tuple[list[int], int]:
    """Consumes ``n`` results as a slow writer would; returns them and the largest number of
    items started beyond those consumed."""
    import time

    out, ahead = [], 0
    for _ in range(n):
        out.append(next(results))
        time.sleep(0.02)  # the workers are far faster than this writer
        with fn.lock:
            ahead = max(ahead, fn.started - len(out))
    return out, ahead


def test_bounded_imap_keeps_order_and_at_most_max_pending_results_ahead() -> None:
    """The prep's worker results (~1 MB of features per window) must not pile up ahead of a
    slower shard writer: at most ``max_pending`` items are started beyond those consumed.
    Control: ``Pool.imap`` (the pipeline's former call) runs ahead through every item."""
    from multiprocessing.pool import ThreadPool

    items = list(range(40))
    with ThreadPool(2) as pool:
        fn = _Started()
        out, ahead = _consume_slowly(pipeline.bounded_imap(pool, fn, items, 3), fn, 13)
        assert out == [x * x for x in range(13)]  # in order
        assert ahead <= 3
        with pytest.raises(KeyError, match="item 13"):  # a worker's error at its item
            list(pipeline.bounded_imap(pool, _Started(), items, 3))
        with pytest.raises(ValueError, match="max_pending"):
            next(pipeline.bounded_imap(pool, fn, items, 0))
        fn = _Started()
        _, ahead_imap = _consume_slowly(pool.imap(fn, items), fn, 13)
    assert ahead_imap > 3 * 3  # the unbounded form does run ahead (here: to the failing item)

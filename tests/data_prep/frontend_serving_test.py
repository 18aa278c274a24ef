"""Serving computes the features of labels exactly as tts-gan-prep did for the model's training
data (paper §3.1 features; both sides use tts_gan.frontend), and keeps computing them the old
way for data prepared before the Merlin semantics (front-end version 1)."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os

import numpy as np
import pytest
import soundfile as sf

from data_prep import pipeline
from tts_gan import schema, synthesis
from tts_gan.frontend import DEFAULT_QUESTION_FILE, features

SR, SPF, FRAME = schema.SAMPLE_RATE, schema.SAMPLES_PER_FRAME, 50000
PAU = ("x^x-pau+hh=ax@x_x/A:0_0_0/B:x-x-x@x-x&x-x#x-x$x-x!x-x;x-x|x/C:1+1+2/D:0_0/"
       "E:x+x@x+x&x+x#x+x/F:content_1/G:0_0/H:x=x@1=1|0/I:2=2/J:2+2-1")
WORD = ("x^pau-{p}+ax=pau@1_2/A:0_0_0/B:1-1-2@1-1&1-2#1-1$1-1!0-1;0-1|ax/C:0+0+2/D:0_0/"
        "E:content+2@1+2&1+1#0+1/F:content_1/G:0_0/H:2=2@1=1|L-L%/I:0=0/J:2+2-1")


def _corpus(root: str, n: int = 3) -> None:
    """Phone-aligned labels off the 5-ms grid (as Festival's), silences with x fields."""
    os.makedirs(f"{root}/wav")
    os.makedirs(f"{root}/lab")
    for i in range(n):
        frames = 90 + 7 * i
        t = np.arange(frames * SPF) / SR
        f0 = 120 + 20 * i
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t)
        x = (x + 0.001 * np.random.default_rng(i).standard_normal(len(t))).astype(np.float32)
        sf.write(f"{root}/wav/u{i}.wav", x, SR, subtype="FLOAT")
        cuts = [0, 20 * FRAME + 12345, 51 * FRAME + 37000, frames * FRAME]
        ctx = [PAU, WORD.format(p="hh" if i % 2 else "k"), PAU]
        with open(f"{root}/lab/u{i}.lab", "w") as f:
            f.writelines(f"{cuts[j]} {cuts[j + 1]} {ctx[j]}\n" for j in range(3))


def _utterance_features(out: str, dim: int) -> dict[str, np.ndarray]:
    import tensorflow as tf

    feats = {}
    for path in glob.glob(os.path.join(out, schema.shard_pattern("train_utterances"))):
        for rec in tf.data.TFRecordDataset(path):
            f = tf.train.Example.FromString(rec.numpy()).features.feature
            uid = f["utterance_id"].bytes_list.value[0].decode()
            feats[uid] = np.array(f["features"].float_list.value, np.float32).reshape(-1, dim)
    return feats


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[str, str, schema.Manifest]:
    """(corpus, prep output, manifest) of a harvest-F0 hts prep with the default questions."""
    tmp = tmp_path_factory.mktemp("serving")
    root, out = str(tmp / "c"), str(tmp / "out")
    _corpus(root)
    m = pipeline.run_prep(pipeline.PrepConfig(
        fmt="hts", corpus_dir=root, output_dir=out, window_frames=40, valid_fraction=0,
        test_fraction=0, f0_method="harvest", progress=False))
    return root, out, m


def test_prep_records_the_training_range_and_speaker_prosody(prepared) -> None:
    """#27: the manifest carries each column's train-split min/max (synthesis warns outside
    it) and each speaker's log-F0 mean/std and mean phone duration (synthesis maps a Festival
    voice's F0 onto a speaker without one); references read from the written records."""
    _, out, m = prepared
    feats = np.concatenate(list(_utterance_features(out, m.feature_dim).values()))
    r = m.extra["feature_range"]
    assert r["split"] == "train"
    np.testing.assert_array_equal(np.asarray(r["min"], np.float32), feats.min(axis=0))
    np.testing.assert_array_equal(np.asarray(r["max"], np.float32), feats.max(axis=0))
    assert list(m.extra["speaker_prosody"]) == list(m.speakers)  # the one speaker
    p = m.extra["speaker_prosody"][list(m.speakers)[0]]
    voiced = feats[:, -1] > 0.5
    assert p["voiced_frames"] == voiced.sum() > 0
    assert p["log_f0_mean"] == pytest.approx(feats[voiced, -2].astype(float).mean(), rel=1e-9)
    assert p["log_f0_std"] == pytest.approx(feats[voiced, -2].astype(float).std(), rel=1e-6)
    assert np.log(120) - 0.05 < p["log_f0_mean"] < np.log(160) + 0.05  # sines at 120-160 Hz
    # _corpus: 3 utterances of 90, 97 and 104 frames, 3 phones each
    assert p["phone_frames_mean"] == pytest.approx((90 + 97 + 104) / 9)


def test_serving_features_equal_the_prepared_ones_and_version_1_is_kept(prepared) -> None:
    root, out, m = prepared
    assert m.extra["frontend_version"] == features.FRONTEND_VERSION == 2
    assert m.extra["f0_method"] == "harvest" and synthesis.f0_method(m) == "harvest"
    assert synthesis.frontend_version(m) == 2
    qfile = synthesis.default_question_file(m)
    assert qfile == DEFAULT_QUESTION_FILE
    prepared = _utterance_features(out, m.feature_dim)
    assert sorted(prepared) == ["u0", "u1", "u2"]
    cqs = slice(513, 556)  # default_questions.hed: 513 QS, then 43 CQS
    old_m = dataclasses.replace(m, extra={k: v for k, v in m.extra.items()
                                          if k not in ("frontend_version", "f0_method")},
                                command="tts-gan-prep --format=hts --output_dir=o")
    assert synthesis.frontend_version(old_m) == 1 and synthesis.f0_method(old_m) == "dio"
    # a prep before f0_method was recorded: its command line says which (#29: never a guess)
    for cmd, want in (("tts-gan-prep --f0_method=harvest --format=hts", "harvest"),
                      ("tts-gan-prep --f0_method harvest", "harvest")):
        assert synthesis.f0_method(dataclasses.replace(old_m, command=cmd)) == want
    with pytest.raises(synthesis.SynthesisError, match="records neither f0_method nor the "
                       "tts-gan-prep command"):
        synthesis.f0_method(dataclasses.replace(old_m, command=""))
    for uid, f in prepared.items():
        lab, wav = f"{root}/lab/{uid}.lab", f"{root}/wav/{uid}.wav"
        served = synthesis.features_from_labels(lab, wav, qfile, synthesis.f0_method(m),
                                                synthesis.frontend_version(m))
        np.testing.assert_array_equal(served, f)
        # version 1: CQS not found answered 0 (here -1), centred frame fractions; the rest equal
        v1 = synthesis.features_from_labels(lab, wav, qfile, "harvest", 1)
        unmatched = f[:, cqs] == -1
        assert unmatched.any() and (~unmatched).any()
        np.testing.assert_array_equal(v1[:, cqs][unmatched], 0)
        np.testing.assert_array_equal(v1[:, cqs][~unmatched], f[:, cqs][~unmatched])
        np.testing.assert_array_equal(v1[:, :513], f[:, :513])
        np.testing.assert_array_equal(v1[:, -2:], f[:, -2:])
        pos, pos1 = f[:, 556:565], v1[:, 556:565]
        n = pos[:, 5]
        np.testing.assert_allclose(pos1[:, 7], pos[:, 8] - 0.5 / n, rtol=1e-6)  # (k + 0.5) / n
        np.testing.assert_allclose(pos1[:, 8], pos[:, 7] - 0.5 / n, rtol=1e-6)
    # phone boundaries round to the nearest frame: 20.2469 -> 20, 51.74 -> 52
    assert np.nonzero(np.diff(prepared["u0"][:, 556 + 5]))[0].tolist() == [19, 51]


def test_question_file_is_found_or_a_clear_error(prepared, tmp_path) -> None:
    """The prep records the question file's path and SHA-256; serving uses the export's
    shipped copy, else the recorded path, else the packaged default only where it is provably
    the same question set; otherwise it refuses (never silently another front end)."""
    m = prepared[2]
    with open(DEFAULT_QUESTION_FILE, "rb") as f:
        default_bytes = f.read()
    default_sha = hashlib.sha256(default_bytes).hexdigest()
    assert m.extra["question_file"] == os.path.abspath(DEFAULT_QUESTION_FILE)
    assert m.extra["question_file_sha256"] == default_sha

    def moved(**extra) -> schema.Manifest:
        return dataclasses.replace(m, extra={**m.extra, **extra})

    gone = str(tmp_path / "elsewhere" / "default_questions.hed")  # trained on another machine
    assert synthesis.default_question_file(moved(question_file=gone)) == DEFAULT_QUESTION_FILE
    assert synthesis.default_question_file(moved(question_file=gone),
                                           shipped="ram://x/assets/q.hed") == "ram://x/assets/q.hed"
    with pytest.raises(synthesis.SynthesisError, match=f"{gone}, which does not exist"):
        synthesis.default_question_file(moved(question_file=gone, question_file_sha256="0" * 64))
    # manifests written before the hash was recorded: the feature breakdown decides
    legacy = moved(question_file=gone, question_file_sha256=None)
    assert synthesis.default_question_file(legacy) == DEFAULT_QUESTION_FILE
    other = dataclasses.replace(legacy, feature_breakdown=[
        dataclasses.replace(b, name=b.name + "_x") if i == 0 else b
        for i, b in enumerate(legacy.feature_breakdown)])
    with pytest.raises(synthesis.SynthesisError, match="pass --question_file"):
        synthesis.default_question_file(other)
    # a custom question file that still exists, edited after the prep
    custom = tmp_path / "q.hed"
    custom.write_bytes(default_bytes)
    mine = moved(question_file=str(custom), question_file_sha256=default_sha)
    assert synthesis.default_question_file(mine) == str(custom)
    custom.write_text('QS "C-pau" {-pau+}\n')
    with pytest.raises(synthesis.SynthesisError, match="has changed since the data was prep"):
        synthesis.default_question_file(mine)


def test_unknown_frontend_version_is_a_clear_error(tmp_path) -> None:
    m = schema.Manifest(
        format_version=schema.FORMAT_VERSION, feature_dim=3, feature_breakdown=[],
        sample_rate=SR, frame_rate=200, mu=schema.MU, window_frames=400, hop_frames=400,
        compression="", counts={}, hours={}, speakers={}, num_speakers=0, mean=[], std=[],
        rejected=0, command="", extra={"input_format": "hts", "frontend_version": 7})
    with pytest.raises(synthesis.SynthesisError, match=r"front-end version 7: this code knows"):
        synthesis.frontend_version(m)
    assert synthesis.frontend_version(None) == features.FRONTEND_VERSION
    m.extra = {"input_format": "features"}
    assert synthesis.frontend_version(m) == features.FRONTEND_VERSION


def test_a_label_a_question_cannot_answer_is_rejected_naming_the_file(tmp_path) -> None:
    root, out = str(tmp_path / "c"), str(tmp_path / "out")
    _corpus(root)
    with open(f"{root}/lab/u1.lab") as f:
        text = f.read()
    with open(f"{root}/lab/u1.lab", "w") as f:
        f.write(text.replace("/F:content_1/", "/F:content_1.2.3/"))
    with open(f"{root}/q.hed", "w") as f:
        f.write('QS "C-pau" {-pau+}\nCQS "R-Word_Num-Syls" {_([\\d\\.]+)/G:}\n')
    m = pipeline.run_prep(pipeline.PrepConfig(
        fmt="hts", corpus_dir=root, output_dir=out, question_file=f"{root}/q.hed",
        window_frames=40, valid_fraction=0, test_fraction=0, progress=False))
    assert m.counts["train"]["utterances"] == 2
    with open(os.path.join(out, schema.REJECTED_NAME)) as f:
        (row,) = f.read().splitlines()[1:]
    uid, reason, detail = row.split("\t")
    assert (uid, reason) == ("u1", "bad label")
    assert f"{root}/lab/u1.lab" in detail and "captured '1.2.3', not a number" in detail


def test_prep_reproduces_front_end_version_1_and_init_weights_check_it(prepared, tmp_path
                                                                       ) -> None:
    """#25: ``--frontend_version=1`` writes the features serving computes with version 1 (the
    shipped model's training features); weights trained on one front end refuse data of
    another (train_loop.check_init_data, from the weights' manifest) and accept a prep that
    reproduces theirs. Control: the version-2 prep's features differ in the CQS columns."""
    from tts_gan import train_loop

    root, out2, m2 = prepared
    out1 = str(tmp_path / "v1")
    m1 = pipeline.run_prep(pipeline.PrepConfig(
        fmt="hts", corpus_dir=root, output_dir=out1, window_frames=40, valid_fraction=0,
        test_fraction=0, f0_method="harvest", frontend_version=1, progress=False))
    assert m1.extra["frontend_version"] == 1 == synthesis.frontend_version(m1)
    qfile = synthesis.default_question_file(m1)
    f1, f2 = _utterance_features(out1, m1.feature_dim), _utterance_features(out2, m2.feature_dim)
    for uid, f in f1.items():
        served = synthesis.features_from_labels(f"{root}/lab/{uid}.lab", f"{root}/wav/{uid}.wav",
                                                qfile, "harvest", 1)
        np.testing.assert_array_equal(f, served)
        assert not np.array_equal(f, f2[uid])  # control: version 2 differs

    weights = str(tmp_path / "w" / "weights")  # a write_weights prefix trained on m1's data
    os.makedirs(os.path.dirname(weights))
    with open(os.path.join(out1, schema.MANIFEST_NAME)) as src, \
            open(weights + train_loop.WEIGHTS_MANIFEST_SUFFIX, "w") as dst:
        dst.write(src.read())
    with pytest.raises(ValueError, match=r"frontend_version 1 \(weights\) vs 2 \(--data_dir\) "
                       r"\(tts-gan-prep --frontend_version=1 reproduces"):
        train_loop.check_init_data(weights, m2)
    assert "features match" in train_loop.check_init_data(weights, m1)
    # another F0 estimator is other features too; statistics alone are not
    with pytest.raises(ValueError, match=r"f0_method 'harvest' \(weights\) vs 'dio'"):
        train_loop.check_init_data(weights, dataclasses.replace(
            m1, extra={**m1.extra, "f0_method": "dio"}))
    shifted = dataclasses.replace(m1, mean=[x + 0.5 * s for x, s in zip(m1.mean, m1.std,
                                                                        strict=True)])
    assert "largest |mean difference| 0.5 of" in train_loop.check_init_data(weights, shifted)
    assert "is absent" in train_loop.check_init_data(str(tmp_path / "none"), m1)
    with pytest.raises(pipeline.PrepError, match="--frontend_version: front-end version 7"):
        pipeline.run_prep(pipeline.PrepConfig(
            fmt="hts", corpus_dir=root, output_dir=str(tmp_path / "v7"), window_frames=40,
            frontend_version=7, progress=False))

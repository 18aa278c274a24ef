"""tts-gan-export (App. D standing statistics, App. A.1 masking): SavedModel for TF Serving."""

import functools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from export_synthesis_helpers import (
    FEATURE_DIM,
    NUM_SPEAKERS,
    assert_audio_differs,
    assert_same_audio,
    make_model_dir,
    make_prep_dir,
    tiny_config,
)

from tts_gan import export
from tts_gan.generator import build_and_init, build_generator

PASSES, BATCH = 3, 2
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _run_export(*flags: str) -> subprocess.CompletedProcess:
    """`tts-gan-export FLAGS...` as a user runs it (the venv's console script, a subprocess)."""
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "tts-gan-export"),
                           *flags], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`tts-gan-export --model_dir` run as a user would (subprocess), on a tiny checkpoint."""
    root = tmp_path_factory.mktemp("export")
    model_dir, base = str(root / "model"), str(root / "serving")
    g, ema = make_model_dir(model_dir)
    proc = _run_export(f"--model_dir={model_dir}", f"--export_dir={base}",
                       f"--standing_passes={PASSES}", f"--standing_batch_size={BATCH}",
                       "--standing_stats_from_random")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["version"] == 1 and result["export_path"] == os.path.join(base, "1")
    return {"model_dir": model_dir, "base": base, "path": result["export_path"],
            "model": tf.saved_model.load(result["export_path"])}


def _inputs(lengths, seed=0, dim=FEATURE_DIM, speakers=None):
    rng = np.random.default_rng(seed)
    t = max(lengths)
    feats = np.zeros([len(lengths), t, dim], np.float32)
    for i, n in enumerate(lengths):
        feats[i, :n] = rng.normal(size=(n, dim)) * 2 + 1
    spk = np.array(speakers if speakers is not None else [i % 2 for i in range(len(lengths))],
                   np.int32)
    return feats, np.array(lengths, np.int32), spk


def _run(model, feats, lengths, spk, seeds):
    out = model.signatures["serving_default"](
        features=tf.constant(feats), lengths=tf.constant(lengths), speaker=tf.constant(spk),
        seed=tf.constant(np.asarray(seeds, np.int32)))
    return out["audio"].numpy(), out["audio_lengths"].numpy()


def test_layout_assets_and_no_leftovers(exported):
    base, path = exported["base"], exported["path"]
    assert sorted(os.listdir(base)) == ["1"]  # the temp dir was renamed, nothing else left
    assets = sorted(os.listdir(os.path.join(path, "assets")))
    assert assets == ["config.json", "export_info.json", "gan_tts.tflite", "manifest.json"]
    info = export.read_export_info(path)
    assert info["feature_dim"] == FEATURE_DIM and info["num_speakers"] == NUM_SPEAKERS
    assert info["noise_dim"] == 16 and info["samples_per_frame"] == 120
    assert info["standing_passes"] == PASSES and info["init"] == "checkpoint"
    assert info["checkpoint"].endswith("ckpt-1")


def test_export_is_the_ema_generator_with_standing_statistics(exported):
    """Re-derive the export in-process (restore EMA, same standing passes, normalise, µ-law
    decode) and compare; the non-EMA generator must give a different result."""
    model_dir = exported["model_dir"]
    with open(os.path.join(model_dir, "manifest.json")) as f:
        m = json.load(f)
    mean, std = (np.array(m["normalisation"][k], np.float32) for k in ("mean", "std"))
    feats, lengths, spk = _inputs([20, 13])
    z = np.random.default_rng(1).normal(size=(2, 16)).astype(np.float32)
    out = exported["model"].signatures["synthesize_z"](
        features=feats, lengths=lengths, speaker=spk, z=z)["audio"].numpy()

    def reference(slot: str) -> np.ndarray:
        cfg = tiny_config()
        gen = build_and_init(build_generator(cfg.generator, FEATURE_DIM, NUM_SPEAKERS))
        tf.train.Checkpoint(**{slot: gen}).restore(
            tf.train.latest_checkpoint(model_dir)).expect_partial()
        export.standing_statistics(gen, PASSES, BATCH, cfg.data.window_frames, None, 0,
                                   from_random=True)
        y = gen((feats - mean) / std, z, speaker=spk, lengths=lengths, training=False)
        return np.clip(export.mulaw.decode(y.numpy()[:, :, 0]), -1, 1)

    # SavedModel graph (standing statistics from the export subprocess) vs eager: float32
    # rounding (float32_bounds). Worst measured: 0.019 of the bound (XLA auto-jit; 3e-4 without).
    assert_same_audio(out, reference("ema_generator"), "export vs in-process")
    # Control, 1,200× the bound: the non-EMA weights.
    assert_audio_differs(out, reference("generator"), "G instead of G_ema weights")
    # The reference above recomputes σ(W) per kernel; the export stores W / σ(W) (folded, an
    # inference-only form), and a generator rebuilt from the export knows it.
    assert export.read_export_info(exported["path"])["spectral_norm_folded"] is True
    rebuilt = export.generator_from_export(exported["path"])[0]
    sn = [v for v in rebuilt.variables if v.path.endswith("sn_u")]
    assert sn and rebuilt.fold_spectral_norm() == 0  # every SN layer marked folded already


def _model_dir_with_data(exported, tmp_path, **data) -> tuple[str, str]:
    """A copy of the exported run's model_dir whose config.json's ``data`` fields are set to
    ``data`` (e.g. ``mu``, ``data_dir``); returns (model_dir, config.json path)."""
    model_dir = str(tmp_path / "model")
    shutil.copytree(exported["model_dir"], model_dir)
    cfg_path = os.path.join(model_dir, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["data"].update(data)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return model_dir, cfg_path


@pytest.fixture(scope="module")
def variant(exported, tmp_path_factory):
    """One more `tts-gan-export` subprocess (SavedModel only: these tests read no TFLite) of a
    copy of the fixture's model_dir whose config.json records data.mu = 255 and a data_dir and
    whose manifest names a question file: the question-file, µ and standing-statistics tests
    each read their property off it (each was its own export process before: BUILD_NOTES,
    "Test suite wall time"). The in-process references restore the same checkpoint."""
    root = tmp_path_factory.mktemp("variant")
    data_dir = str(root / "data")
    make_prep_dir(data_dir)
    model_dir, _ = _model_dir_with_data(exported, root, mu=255.0, data_dir=data_dir)
    qfile = root / "questions" / "my_questions.hed"
    qfile.parent.mkdir()
    qfile.write_text('QS "C-pau" {-pau+}\nCQS "C-Syl_Num-Segs" {/C:(\\d+)+}\n')
    man_path = os.path.join(model_dir, "manifest.json")
    with open(man_path) as f:
        man = json.load(f)
    with open(man_path, "w") as f:
        json.dump(dict(man, question_file=str(qfile)), f)
    base = str(root / "serving")
    proc = _run_export(f"--model_dir={model_dir}", f"--export_dir={base}", "--notflite",
                       f"--standing_passes={PASSES}", f"--standing_batch_size={BATCH}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = os.path.join(base, "1")
    feats, lengths, spk = _inputs([20, 13])
    z = np.random.default_rng(1).normal(size=(2, 16)).astype(np.float32)
    with open(os.path.join(data_dir, "manifest.json")) as f:
        m = json.load(f)
    mean, std = (np.array(m["normalisation"][k], np.float32) for k in ("mean", "std"))

    @functools.cache
    def reference_y(data: str | None) -> np.ndarray:
        """The EMA generator's µ-law output in-process, standing statistics from ``data``
        (None: random features), on the export's z inputs."""
        cfg = tiny_config()
        gen = build_and_init(build_generator(cfg.generator, FEATURE_DIM, NUM_SPEAKERS))
        tf.train.Checkpoint(ema_generator=gen).restore(
            tf.train.latest_checkpoint(model_dir)).expect_partial()
        export.standing_statistics(gen, PASSES, BATCH, cfg.data.window_frames, data, 0,
                                   from_random=data is None)
        y = gen((feats - mean) / std, z, speaker=spk, lengths=lengths, training=False)
        return y.numpy()[:, :, 0]

    out = tf.saved_model.load(path).signatures["synthesize_z"](
        features=feats, lengths=lengths, speaker=spk, z=z)["audio"].numpy()
    return {"model_dir": model_dir, "data_dir": data_dir, "qfile": qfile, "base": base,
            "path": path, "stdout": proc.stdout, "audio": out, "reference_y": reference_y}


def _decoded(y: np.ndarray, mu: float) -> np.ndarray:
    return np.clip(export.mulaw.decode(y, mu), -1, 1)


def test_the_preps_question_file_ships_with_the_model(exported, variant, tmp_path):
    """The manifest's question file goes into assets/questions.hed (serving computes features
    of new text with it, wherever the export is loaded); a recorded question file that is gone
    and is not the packaged default is a clear error, nothing written."""
    from tts_gan import synthesis

    qfile = variant["qfile"]
    shipped = os.path.join(variant["path"], "assets", "questions.hed")
    with open(shipped, "rb") as f:
        assert f.read() == qfile.read_bytes()
    qfile.unlink()  # the export is self-contained
    assert synthesis.ExportedSynthesizer(variant["base"]).question_file() == shipped

    model_dir, _ = _model_dir_with_data(exported, tmp_path)
    man_path = os.path.join(model_dir, "manifest.json")
    with open(man_path) as f:
        man = json.load(f)
    with open(man_path, "w") as f:
        json.dump(dict(man, question_file=str(qfile), question_file_sha256="0" * 64), f)
    base2 = str(tmp_path / "serving2")
    proc = _run_export(f"--model_dir={model_dir}", f"--export_dir={base2}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"question_file {qfile}, which does not exist here" in proc.stderr
    assert not os.path.exists(base2) or not os.listdir(base2)


def test_config_mu_is_the_decoding_mu(exported, variant):
    """A model trained with config data.mu = 255 (App. C's 8-bit option) is exported with a
    µ = 255 decoder: the generator's output y (in-process, same checkpoint and standing
    statistics), decoded with 255 instead of 65535."""
    assert export.read_export_info(variant["path"])["mu"] == 255.0
    assert export.read_export_info(exported["path"])["mu"] == 65535.0
    y = variant["reference_y"](variant["data_dir"])
    # Export subprocess vs in-process, decoded with µ = 255: float32 rounding.
    assert_same_audio(variant["audio"], _decoded(y, 255.0), "µ=255 export vs in-process", 255.0)
    # Control: decoding with the training µ = 65535 instead.
    assert_audio_differs(variant["audio"], _decoded(y, 65535.0), "decoded with µ=65535", 255.0)


def test_bad_config_mu_is_a_clear_error(exported, tmp_path):
    """A config.json whose data.mu is not a positive number: exit 1 naming the file and the
    value before any work, nothing written under the export base."""
    model_dir, cfg_path = _model_dir_with_data(exported, tmp_path, mu="abc")
    base = str(tmp_path / "serving")
    proc = _run_export(f"--model_dir={model_dir}", f"--export_dir={base}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"config data.mu in {cfg_path} must be a finite number > 0" in proc.stderr
    assert "'abc'" in proc.stderr and "Traceback" not in proc.stderr
    assert not os.path.exists(base) or not os.listdir(base)
    gen = export.load_ema_generator(exported["model_dir"])[0]
    with pytest.raises(export.ExportError, match=r"^mu must be a finite number > 0.*got -1"):
        export.export_saved_model(gen, str(tmp_path / "lib"), mu=-1)
    assert not os.path.exists(tmp_path / "lib")


def test_fresh_process_with_tensorflow_only(exported):
    code = f"""
import json, sys
import numpy as np, tensorflow as tf
m = tf.saved_model.load({exported['path']!r})
f = m.signatures["serving_default"]
feats = np.random.default_rng(0).normal(size=(2, 9, {FEATURE_DIM})).astype(np.float32)
out = f(features=feats, lengths=np.array([9, 4], np.int32), speaker=np.array([0, 1], np.int32),
        seed=np.array([5, 6], np.int32))
a = out["audio"].numpy()
print(json.dumps({{"shape": list(a.shape), "lengths": out["audio_lengths"].numpy().tolist(),
    "max": float(np.abs(a).max()), "tail": float(np.abs(a[1, 480:]).max()),
    "tts_gan_imported": any(k.startswith("tts_gan") for k in sys.modules)}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, timeout=180, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r == {"shape": [2, 1080], "lengths": [1080, 480], "max": pytest.approx(r["max"]),
                 "tail": 0.0, "tts_gan_imported": False}
    assert 0 < r["max"] <= 1.0


def test_saved_model_cli_show_and_run(exported, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    show = subprocess.run([cli, "show", "--all", "--dir", exported["path"]],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert show.returncode == 0, show.stderr[-2000:]
    sig = show.stdout.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    for name in ("features", "lengths", "speaker", "seed", "audio", "audio_lengths"):
        assert f"['{name}']" in sig
    feats, lengths, spk = np.ones((1, 6, FEATURE_DIM), np.float32), np.array([6]), np.array([1])
    lengths, spk, seed = lengths.astype(np.int32), spk.astype(np.int32), np.array([3], np.int32)
    arrays = {"features": feats, "lengths": lengths, "speaker": spk, "seed": seed}
    for name, value in arrays.items():
        np.save(tmp_path / f"{name}.npy", value)
    inputs = ";".join(f"{name}={tmp_path / name}.npy" for name in arrays)
    out_dir = tmp_path / "out"
    run = subprocess.run([cli, "run", "--dir", exported["path"], "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs", inputs,
                          "--outdir", str(out_dir)],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    audio = np.load(out_dir / "audio.npy")
    assert audio.shape == (1, 720)
    assert np.load(out_dir / "audio_lengths.npy").tolist() == [720]
    ref, _ = _run(exported["model"], feats, lengths, spk, seed)
    # TF1 session vs eager: float32 rounding (float32_bounds). Worst measured: 0.0036 of it.
    assert_same_audio(audio, ref, "saved_model_cli vs eager")
    other, _ = _run(exported["model"], feats, lengths, spk, seed + 1)
    assert_audio_differs(audio, other, "another seed")  # control: 930× the bound


@pytest.mark.parametrize("case,message", [
    ("rank2", "expected a float32 tensor [batch, frames, 567]"),
    ("dim", "last dimension must be feature_dim=567"),
    ("lengths", "lengths: must have one entry per example"),
    ("too_long", "lengths: must be <= the padded number of frames"),
    ("speaker", "speaker: must be < num_speakers=2"),
])
def test_bad_inputs_are_clear_errors(exported, case, message):
    feats, lengths, spk = _inputs([5, 4])
    seeds = np.array([1, 2], np.int32)
    if case == "rank2":
        feats = feats[0]
    elif case == "dim":
        feats = feats[:, :, :-1]
    elif case == "lengths":
        lengths = lengths[:1]
    elif case == "too_long":
        lengths = np.array([6, 4], np.int32)
    elif case == "speaker":
        spk = np.array([0, 2], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("[", r"\[")):
        _run(exported["model"], feats, lengths, spk, seeds)


def test_batched_padded_equals_one_by_one_and_exact_lengths(exported):
    model = exported["model"]
    lens = [17, 5, 11]
    feats, lengths, spk = _inputs(lens, seed=3)
    seeds = [10, 11, 12]
    audio, audio_lengths = _run(model, feats, lengths, spk, seeds)
    assert audio.shape == (3, 120 * 17)
    assert audio_lengths.tolist() == [120 * n for n in lens]
    for i, n in enumerate(lens):
        one, one_len = _run(model, feats[i:i + 1, :n], lengths[i:i + 1], spk[i:i + 1],
                            seeds[i:i + 1])
        assert one.shape == (1, 120 * n) and one_len[0] == 120 * n
        # Padded to 17 frames vs alone: float32 rounding (float32_bounds).
        # Worst measured: 0.042 of the bound (oneDNN off, 2 threads).
        assert_same_audio(audio[i, :120 * n], one[0], "padded batch vs alone")
        assert np.all(audio[i, 120 * n:] == 0.0)
    assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0
    # Control, 1,200× the bound: the 5-frame example's zero padding taken as valid frames.
    unmasked, _ = _run(model, feats[1:2], [17], spk[1:2], seeds[1:2])
    assert_audio_differs(unmasked[0, :120 * 5], audio[1, :120 * 5], "padding not masked")


def test_seed_determinism_and_speaker(exported):
    model = exported["model"]
    feats, lengths, spk = _inputs([8, 8], seed=4, speakers=[0, 0])
    same = np.repeat(feats[:1], 2, axis=0)
    a, _ = _run(model, same, lengths, spk, [42, 42])
    b, _ = _run(model, same, lengths, spk, [42, 7])
    # Same seed → same audio in any batch slot, up to float32 rounding: the slots are computed
    # by different vector lanes / oneDNN blocks, and CI on another x86-64 CPU measured
    # 3.8e-6 (279 of 960 samples) where this machine gave bit-identical rows.
    assert_same_audio(a[0], a[1], "same seed, batch slot 0 vs 1")
    # Controls, each ≥ 10× the rounding bound: another seed → another z; the speaker id
    # conditions the generator.
    assert_audio_differs(b[0], b[1], "seed 42 vs seed 7")
    c, _ = _run(model, same, lengths, np.array([0, 1], np.int32), [42, 42])
    assert_audio_differs(c[0], c[1], "speaker 0 vs speaker 1")


def test_standing_statistics_make_output_independent_of_batch_composition(exported):
    """With frozen standing statistics an utterance's audio is the same whatever it is batched
    with; in training-mode BN (batch statistics) it would not be."""
    model = exported["model"]
    feats, lengths, spk = _inputs([10, 10, 10], seed=5, speakers=[0, 0, 0])
    feats[2] *= 4.0  # a very different companion
    ab, _ = _run(model, feats[[0, 1]], lengths[:2], spk[:2], [1, 2])
    ac, _ = _run(model, feats[[0, 2]], lengths[:2], spk[:2], [1, 3])
    # Same shapes, other companion: float32 rounding at most (float32_bounds).
    # Worst measured: 0.022 of the bound (XLA auto-jit; 0 without).
    assert_same_audio(ab[0], ac[0], "batch companion")
    # Control, 600× the bound: the same generator with batch statistics depends on
    # the companion.
    cfg = tiny_config()
    gen = build_and_init(build_generator(cfg.generator, FEATURE_DIM, NUM_SPEAKERS))
    z = tf.random.normal([2, 16])
    x1 = gen(feats[[0, 1]], z, speaker=spk[:2], training=True)[0]
    x2 = gen(feats[[0, 2]], z, speaker=spk[:2], training=True)[0]
    assert_audio_differs(export.mulaw.decode(x1.numpy()), export.mulaw.decode(x2.numpy()),
                         "batch statistics")


def test_tflite_parity(exported):
    interp = tf.lite.Interpreter(
        model_path=os.path.join(exported["path"], "assets", "gan_tts.tflite"))
    runner = interp.get_signature_runner()
    feats, lengths, spk = _inputs([14, 9], seed=6)
    z = np.random.default_rng(2).normal(size=(2, 16)).astype(np.float32)
    lite = runner(features=feats, lengths=lengths, speaker=spk, z=z)
    ref = exported["model"].signatures["synthesize_z"](
        features=feats, lengths=lengths, speaker=spk, z=z)
    np.testing.assert_array_equal(lite["audio_lengths"], ref["audio_lengths"].numpy())
    # XNNPACK sums in another order: float32 rounding (float32_bounds), which µ-law decoding
    # amplifies by up to ln(1+µ) ≈ 11× near full scale. Worst measured: 0.0095 of the bound.
    assert_same_audio(lite["audio"], ref["audio"].numpy(), "TFLite vs SavedModel")
    # Control, 1,200× the bound: the speaker input miswired (ids swapped).
    swapped = exported["model"].signatures["synthesize_z"](
        features=feats, lengths=lengths, speaker=spk[::-1].copy(), z=z)
    assert_audio_differs(lite["audio"], swapped["audio"].numpy(), "speaker ids swapped")


def test_versions_are_never_overwritten(tmp_path):
    """Version numbering does not depend on the generator: experiments/micro.py's (2 GBlocks),
    whose three exports trace a fraction of tiny's graph."""
    from experiments import micro

    gen = build_and_init(build_generator(micro.get_config().generator, 5, 1))
    export.standing_statistics(gen, 1, 2, 8, from_random=True)
    base = str(tmp_path / "base")
    assert export.export_saved_model(gen, base).version == 1
    assert export.export_saved_model(gen, base).version == 2
    with pytest.raises(export.ExportError, match="never overwritten"):
        export.export_saved_model(gen, base, version=1)
    assert export.export_saved_model(gen, base, version=10).version == 10
    assert export.latest_version_dir(base) == os.path.join(base, "10")
    assert sorted(os.listdir(base)) == ["1", "10", "2"]


def test_checkpoint_holds_every_generator_variable(tmp_path):
    """Keras 3 drops layers kept in lists from tf.train.Checkpoint unless the model names them
    (layers.CheckpointListsMixin): the GBlocks must be in the checkpoint the export restores."""
    _, ema = make_model_dir(str(tmp_path))
    names = [n for n, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(tmp_path)))
             if n.startswith("ema_generator/")]
    assert len(names) == len(ema.variables) > 100


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    model_dir = str(tmp_path)
    make_model_dir(model_dir)
    for name in os.listdir(model_dir):
        if name.startswith("ckpt") or name == "checkpoint":
            os.remove(os.path.join(model_dir, name))
    with pytest.raises(export.ExportError, match="no checkpoint found"):
        export.load_ema_generator(model_dir)


# --------------------------------------------------- standing statistics: data, never silently
def test_standing_statistics_come_from_the_data_dir_recorded_in_config_json(exported, variant):
    """Without --data_dir the export finds the training data through the data.data_dir that
    config.json records: its standing statistics are those of the data's training windows."""
    data_dir = variant["data_dir"]
    assert json.loads(variant["stdout"].strip().splitlines()[-1])["standing_source"] == data_dir
    assert export.read_export_info(variant["path"])["standing_source"] == data_dir
    # the random-statistics export of the fixture says so, with the flag's name
    assert export.read_export_info(exported["path"])["standing_source"] == (
        "random N(0,1) features (--standing_stats_from_random)")

    ref = variant["reference_y"]  # (the variant export decodes with its config's µ = 255)
    # Export subprocess vs in-process, both from the data's windows: float32 rounding.
    assert_same_audio(variant["audio"], _decoded(ref(data_dir), 255.0),
                      "export vs in-process (data statistics)", 255.0)
    # Control: the same weights with random-feature statistics.
    assert_audio_differs(variant["audio"], _decoded(ref(None), 255.0),
                         "random-feature standing statistics", 255.0)


def test_missing_data_is_one_clear_error_naming_the_path_and_the_flag(exported, tmp_path):
    """config.json records a data_dir that is not there (a model_dir copied off its machine):
    exit 1 with one line naming the manifest path and both flags; nothing written."""
    missing = str(tmp_path / "gone")
    model_dir, _ = _model_dir_with_data(exported, tmp_path, data_dir=missing)
    base = str(tmp_path / "serving")
    proc = _run_export(f"--model_dir={model_dir}", f"--export_dir={base}",
                       f"--standing_passes={PASSES}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("tts-gan-export")]
    assert err == [
        f"tts-gan-export: error: {missing}/manifest.json: not found (data.data_dir recorded in "
        f"{model_dir}/config.json); standing statistics need the training data: pass "
        "--data_dir=DIR (the tts-gan-prep output the model was trained on) or "
        "--standing_stats_from_random to use random N(0,1) features"], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(base) or not os.listdir(base)


def test_standing_data_dir_rules(tmp_path):
    data_dir = str(tmp_path / "data")
    make_prep_dir(data_dir)
    cfg = str(tmp_path / "model" / "config.json")
    assert export.standing_data_dir(None, data_dir, cfg) == data_dir
    assert export.standing_data_dir(data_dir, str(tmp_path / "other"), cfg) == data_dir
    assert export.standing_data_dir(None, None, cfg, from_random=True) is None
    assert export.standing_data_dir(None, data_dir, cfg, from_random=True) is None
    with pytest.raises(export.ExportError, match=rf"^standing statistics need the training "
                       rf"data and {cfg} records no data.data_dir: pass --data_dir=DIR .* or "
                       r"--standing_stats_from_random"):
        export.standing_data_dir(None, None, cfg)
    with pytest.raises(export.ExportError, match=rf"^{tmp_path}/nope/manifest.json: not found "
                       rf"\(--data_dir={tmp_path}/nope\)"):
        export.standing_data_dir(str(tmp_path / "nope"), data_dir, cfg)
    with pytest.raises(export.ExportError, match=r"--data_dir=.* and "
                       r"--standing_stats_from_random contradict each other"):
        export.standing_data_dir(data_dir, None, cfg, from_random=True)
    empty = tmp_path / "manifest_only"
    empty.mkdir()
    shutil.copy(os.path.join(data_dir, "manifest.json"), empty)
    with pytest.raises(export.ExportError, match=rf"^{empty}/train-\?{{5}}-of-\?{{5}}"
                       r"\.tfrecord: no training windows \(--data_dir="):
        export.standing_data_dir(str(empty), None, cfg)

    gen = build_and_init(build_generator(tiny_config().generator, 5, 1))
    with pytest.raises(export.ExportError, match="random N.* only on request "
                       r"\(--standing_stats_from_random\)"):
        export.standing_statistics(gen, 1, 2, 8)
    with pytest.raises(export.ExportError, match=rf"{data_dir}/manifest.json: 567-dim "
                       r"features of 2 speaker\(s\), the model takes 5-dim features of 1"):
        export.standing_statistics(gen, 1, 2, 8, data_dir)

"""The whole chain on a non-local file system (issue 17): TensorFlow's in-memory ``ram://``
stands in for ``gs://``. Prepared data copied there → train → checkpoint → resume → tts-gan-export
→ load → tts-gan-synthesize → tts-gan-eval, every path on ``ram://``.

``ram://`` lives in one process, so the console scripts' ``main`` run in this process
(:func:`_run_cli`), each with only its own flags defined while it runs. What ``ram://`` does
differently from a local disk (measured, BUILD_NOTES "Export, serving and synthesis"): a
directory rename moves only the directory entry, not the files under it, and a directory that
was never created explicitly is not listed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import uuid

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
import train_testdata as td
from absl import flags
from float32_bounds import relative_difference, worst_rounding

from data_prep import tfrecord_io
from tts_gan import evaluation, export, mulaw, schema, synthesis, train_lib
from tts_gan.generator import Generator, build_and_init

DIM, FRAMES, SPEAKERS = 8, 32, 2
UTTERANCE_FRAMES = (40, 33)  # the test split's whole utterances (synthesis input)


def _copy_tree(src: str, dst: str) -> None:
    """Copies a directory tree with tf.io.gfile (creating every directory explicitly)."""
    for dirpath, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        tf.io.gfile.makedirs(target)
        for f in files:
            tf.io.gfile.copy(os.path.join(dirpath, f), os.path.join(target, f), overwrite=True)


def _ram_files(root: str) -> list[str]:
    return sorted(os.path.join(d, f)[len(root):].lstrip("/")
                  for d, _, fs in tf.io.gfile.walk(root) for f in fs)


def _prepared_data(local: str) -> str:
    """tts-gan-prep's layout (tests/train_testdata.py) plus a test_utterances shard."""
    td.write_dataset(local, feature_dim=DIM, window_frames=FRAMES, num_speakers=SPEAKERS,
                     shards={"train": 1, "valid": 1, "test": 3})  # 24 test windows: N = 10
    rng = np.random.default_rng(5)
    w = tfrecord_io.ShardWriter(os.path.join(local, schema.shard_name(schema.TEST_UTTERANCES,
                                                                      0, 1)))
    for i, t in enumerate(UTTERANCE_FRAMES):
        audio = mulaw.encode(rng.uniform(-0.3, 0.3, t * schema.SAMPLES_PER_FRAME)
                             .astype(np.float32))
        w.write(tfrecord_io.utterance_example(audio, rng.normal(size=(t, DIM)).astype(np.float32),
                                              i % SPEAKERS, f"utt{i}"))
    w.publish()
    return local


def _run_cli(name: str, *args: str, capsys) -> tuple[int, str, str]:
    """``tts-gan-<name> ARGS`` in this process: (exit code, stdout, stderr).

    The console scripts define their flags on absl's global FLAGS at import and share names
    (--export_dir, --data_dir, ...): the module's flags exist only while it runs.
    """
    capsys.readouterr()
    # Flags other tests' modules left defined in this process (e.g. tts-gan-prep's --seed when
    # pytest-xdist ran a prep test here first) are hidden while the CLI runs, then restored.
    hidden = [(module, flag) for module, fl in flags.FLAGS.flags_by_module_dict().items()
              if module.startswith(("data_prep", "tts_gan")) for flag in fl]
    for _, flag in hidden:
        if flag.name in flags.FLAGS:
            delattr(flags.FLAGS, flag.name)
    before = set(flags.FLAGS)
    module_name = f"tts_gan.cli.{'evaluate' if name == 'eval' else name}"
    try:
        module = importlib.import_module(module_name)
        argv = flags.FLAGS([f"tts-gan-{name}", *args])
        rc = module.main(argv)
    finally:
        for flag in set(flags.FLAGS) - before:
            if flag in flags.FLAGS:
                delattr(flags.FLAGS, flag)
        sys.modules.pop(module_name, None)
        for module, flag in hidden:
            if flag.name not in flags.FLAGS:
                flags.FLAGS[flag.name] = flag
                flags.FLAGS.register_flag_by_module(module, flag)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _small_generator() -> Generator:
    return build_and_init(Generator(DIM, noise_dim=4, input_channels=8, blocks=(
        (8, 1), (8, 1), (4, 2), (4, 2), (4, 2), (4, 3), (4, 5))))


def _read_wav(path: str) -> np.ndarray:
    with tf.io.gfile.GFile(path, "rb") as f:
        audio, rate = sf.read(io.BytesIO(f.read()), dtype="float32")
    assert rate == schema.SAMPLE_RATE
    return audio


def test_prep_train_resume_export_synthesize_eval_on_ram(tmp_path, capsys):
    root = f"ram://tts-gan-{uuid.uuid4().hex[:8]}"
    data, model, serving = f"{root}/data", f"{root}/model", f"{root}/serving"
    _copy_tree(_prepared_data(str(tmp_path / "data")), data)

    # train 2 steps → ckpt-2, then resume to step 3 (model_dir on ram://)
    def config(steps: int):
        return td.micro_config(data, max_steps=steps, save_every=2, log_every=1,
                               eval_every=0)

    first = train_lib.train(config(2), model, log=lambda s: None)
    assert (first.start_step, first.end_step) == (0, 2)
    assert tf.train.latest_checkpoint(model) == f"{model}/ckpt-2"
    logs: list[str] = []
    # (the built models are reused; the weights, optimizer state and step come from ram://)
    second = train_lib.train(config(3), model, log=logs.append, trainer=first.trainer)
    assert (second.start_step, second.end_step) == (2, 3)
    assert f"restored {model}/ckpt-2 (step 2)" in logs
    assert tf.train.latest_checkpoint(model) == f"{model}/ckpt-3"
    with tf.io.gfile.GFile(f"{model}/config.json") as f:
        assert json.load(f)["data"]["data_dir"] == data  # what the export finds the data by
    assert tf.io.gfile.exists(f"{model}/manifest.json")
    assert tf.io.gfile.glob(f"{model}/train/events.out.tfevents.*")

    # a missing --data_dir is a clear error, nothing written
    rc, _, err = _run_cli("export", f"--model_dir={model}", f"--export_dir={serving}",
                          f"--data_dir={root}/nope", "--standing_passes=2", capsys=capsys)
    assert rc == 1 and f"{root}/nope/manifest.json: not found (--data_dir={root}/nope)" in err
    assert not tf.io.gfile.exists(serving) or not tf.io.gfile.listdir(serving)

    # export to ram://: standing statistics from the data recorded in config.json
    rc, out, err = _run_cli("export", f"--model_dir={model}", f"--export_dir={serving}",
                            "--standing_passes=2", "--standing_batch_size=2", "--notflite",
                            capsys=capsys)
    assert rc == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"export_path": f"{serving}/1", "version": 1, "standing_source": data}
    assert tf.io.gfile.listdir(serving) == ["1"]  # the temporary directory is gone
    files = _ram_files(f"{serving}/1")
    assert {"saved_model.pb", "variables/variables.index", "assets/export_info.json",
            "assets/config.json", "assets/manifest.json"} <= set(files)
    info = export.read_export_info(f"{serving}/1")
    assert info["checkpoint"] == f"{model}/ckpt-3" and info["model_dir"] == model
    # this test's hand-written manifest has no training feature range: export_info says so
    # (#27: serving clients read the range there)
    assert info["feature_range"]["note"].startswith("not recorded")

    # load, and the export is the EMA generator of ckpt-3 (its variables, bit for bit)
    loaded = tf.saved_model.load(f"{serving}/1")
    # (by directory: ram:// calls the prefix .../ckpt-3 a directory, as it has files below
    # "ckpt-3", and tf.train.load_checkpoint then looks for a 'checkpoint' file in it)
    reader = tf.train.load_checkpoint(model)
    ema = {n for n, _ in tf.train.list_variables(model)
           if n.startswith("ema_generator/") and "OPTIMIZER" not in n}
    kernels = [n for n in ema if n.endswith("conv_in/kernel/.ATTRIBUTES/VARIABLE_VALUE")]
    assert len(kernels) == 1, sorted(ema)[:20]
    want = reader.get_tensor(kernels[0])
    # The kernel is exported with its spectral norm folded in (export_info
    # spectral_norm_folded): W / σ, σ = ‖W û‖ with the export's own estimate û (the standing
    # statistics' training-mode passes move it), in float64 here; float32 rounding of σ's
    # three sums and the division: eps·(2·out + fan_in + 1) (float32_bounds).
    assert info["spectral_norm_folded"] is True
    rebuilt = export.generator_from_export(f"{serving}/1")[0]
    u = rebuilt.conv_in.sn_u.numpy().astype(np.float64)
    w = want.astype(np.float64).reshape(-1, want.shape[-1])
    folded = (w / np.linalg.norm(w @ (u / np.linalg.norm(u)))).reshape(want.shape)
    bound = worst_rounding(2 * w.shape[1] + w.shape[0] + 1, 1)
    saved = rebuilt.conv_in.kernel.numpy()
    assert any(v.shape == want.shape and np.array_equal(v.numpy(), saved)
               for v in loaded.generator_variables)  # the SavedModel's own variable
    assert relative_difference(saved, folded, np.abs(folded).max()) <= bound

    # synthesize the test utterances to ram://
    rc, out, err = _run_cli("synthesize", f"--export_dir={serving}", f"--data_dir={data}",
                            f"--output_dir={root}/wav", "--seed=3", capsys=capsys)
    assert rc == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["utterances"] == len(UTTERANCE_FRAMES)
    assert tf.io.gfile.listdir(f"{root}/wav") == ["utt0.wav", "utt1.wav"]
    # the same synthesis in this process, written locally: the same 16-bit samples (±1 LSB
    # where float32 rounding crosses a quantisation boundary)
    synth = synthesis.ExportedSynthesizer(serving)
    utts = synthesis.utterances_from_prep(data)
    for i, audio in synthesis.synthesize_batched(synth, utts, [3 + j for j in range(len(utts))]):
        local = str(tmp_path / f"{utts[i].utterance_id}.wav")
        synthesis.write_wav(local, [audio], synth.sample_rate)
        ref, _ = sf.read(local, dtype="float32")
        got = _read_wav(f"{root}/wav/{utts[i].utterance_id}.wav")
        assert len(got) == len(ref) == 120 * len(utts[i].features)
        assert np.abs(got - ref).max() <= 1 / 32768

    with tf.io.gfile.GFile(f"{root}/a_file", "w") as f:
        f.write("x")
    rc, _, err = _run_cli("synthesize", f"--export_dir={serving}", f"--data_dir={data}",
                          f"--output_dir={root}/a_file", capsys=capsys)
    assert (rc, err.strip()) == (1, f"tts-gan-synthesize: error: --output_dir={root}/a_file: "
                                    "exists and is not a directory")
    with pytest.raises(evaluation.EvaluationError, match=rf"^--real_features={root}/nope.npy: "
                       "cannot read a .npy array"):
        evaluation.load_features(f"{root}/nope.npy", "real_features")

    # evaluate, report and representations on ram://, then the precomputed path from there
    rc, out, err = _run_cli("eval", f"--export_dir={serving}", f"--data_dir={data}",
                            "--features=logmel", "--num_samples=10", "--noquality",
                            "--noprogress", f"--output_json={root}/eval/report.json",
                            f"--save_features={root}/eval/feats", capsys=capsys)
    assert rc == 0, err[-3000:]
    assert sorted(tf.io.gfile.listdir(f"{root}/eval")) == [
        "feats.generated.npy", "feats.real.npy", "report.json"]
    with tf.io.gfile.GFile(f"{root}/eval/report.json") as f:
        report = json.load(f)
    rc, out, err = _run_cli("eval", f"--real_features={root}/eval/feats.real.npy",
                            f"--fake_features={root}/eval/feats.generated.npy",
                            "--features=logmel", f"--output_json={root}/eval/again.json",
                            capsys=capsys)
    assert rc == 0, err[-3000:]
    with tf.io.gfile.GFile(f"{root}/eval/again.json") as f:
        again = json.load(f)
    assert again["distances"] == report["distances"]
    tf.io.gfile.rmtree(root)


class _Tiny(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.v = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
    def __call__(self, x):
        return x * self.v


def test_publish_on_ram_moves_saved_model_pb_last_and_cleans_up(monkeypatch):
    """ram:// (like gs://) has no atomic directory rename: every file moves on its own,
    saved_model.pb last; a failure before it leaves no version directory behind."""
    root = f"ram://publish-{uuid.uuid4().hex[:8]}"
    tf.saved_model.save(_Tiny(), f"{root}/.tmp-1-x")
    tf.io.gfile.makedirs(f"{root}/.tmp-1-x/assets")
    with tf.io.gfile.GFile(f"{root}/.tmp-1-x/assets/a.json", "w") as f:
        f.write("{}")
    before = _ram_files(f"{root}/.tmp-1-x")
    moved: list[str] = []
    real_rename = tf.io.gfile.rename

    def rename(src, dst, overwrite=False):
        moved.append(dst[len(root) + 3:])
        return real_rename(src, dst, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", rename)
    export.publish_dir(f"{root}/.tmp-1-x", f"{root}/1")
    assert tf.io.gfile.listdir(root) == ["1"] and _ram_files(f"{root}/1") == before
    assert moved[-1] == "saved_model.pb" and sorted(moved) == before
    assert "variables/variables.index" in moved
    assert tf.saved_model.load(f"{root}/1")(2.0).numpy() == 6.0
    with pytest.raises(export.ExportError, match=f"{root}/1: exists; versions are never "
                       "overwritten"):
        export.publish_dir(f"{root}/.tmp-1-x", f"{root}/1")

    calls = {"n": 0}

    def failing(src, dst, overwrite=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise tf.errors.UnavailableError(None, None, "connection lost")
        return real_rename(src, dst, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", failing)
    with pytest.raises(tf.errors.UnavailableError):
        export.export_saved_model(_small_generator(), root, tflite=False)
    assert calls["n"] == 2
    assert tf.io.gfile.listdir(root) == ["1"]  # no version 2, no temporary directory
    assert export.existing_versions(root) == [1]
    tf.io.gfile.rmtree(root)


def test_bad_export_dir_is_a_clear_error(tmp_path):
    gen = _small_generator()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(export.ExportError, match=rf"--export_dir={a_file}: exists and is not "
                       "a directory"):
        export.export_saved_model(gen, str(a_file))
    with contextlib.suppress(tf.errors.OpError):
        tf.io.gfile.remove("ram://not-a-dir")
    with tf.io.gfile.GFile("ram://not-a-dir", "w") as f:
        f.write("x")
    with pytest.raises(export.ExportError, match="--export_dir=ram://not-a-dir: exists and is "
                       "not a directory"):
        export.export_saved_model(gen, "ram://not-a-dir")


def _features_corpus(root: str, n: int = 6, frames: int = 100) -> None:
    """tts-gan-prep --format=features input: wav/ID.wav + feats/ID.npy [frames, 5]."""
    rng = np.random.default_rng(0)
    os.makedirs(f"{root}/wav")
    os.makedirs(f"{root}/feats")
    for i in range(n):
        t = np.arange(frames * schema.SAMPLES_PER_FRAME) / schema.SAMPLE_RATE
        sf.write(f"{root}/wav/u{i}.wav", (0.3 * np.sin(2 * np.pi * (120 + 10 * i) * t))
                 .astype(np.float32), schema.SAMPLE_RATE, subtype="FLOAT")
        np.save(f"{root}/feats/u{i}.npy", rng.normal(size=(frames, 5)).astype(np.float32))


def test_prep_writes_to_ram_what_it_writes_locally(tmp_path, monkeypatch):
    """tts-gan-prep --output_dir=ram://...: the same files, byte for byte, as a local output
    (its check pass keeps its cache locally, under $XDG_CACHE_HOME); a rerun resumes."""
    from data_prep import pipeline

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    corpus = str(tmp_path / "corpus")
    _features_corpus(corpus)
    out = f"ram://prep-{uuid.uuid4().hex[:8]}"

    def run(output_dir: str) -> schema.Manifest:
        return pipeline.run_prep(pipeline.PrepConfig(
            fmt="features", corpus_dir=corpus, output_dir=output_dir, window_frames=40,
            utterances_per_shard=2, progress=False, workers=1))

    local = str(tmp_path / "local")
    m_local, m_ram = run(local), run(out)
    assert m_ram.counts == m_local.counts and m_ram.counts["train"]["windows"] > 0
    names = [f for f in os.listdir(local) if os.path.isfile(os.path.join(local, f))]
    assert {"manifest.json", "rejected.tsv"} < set(names) and len(names) > 4
    assert sorted(f for f in tf.io.gfile.listdir(out) if not f.endswith("/")
                  and not tf.io.gfile.isdir(f"{out}/{f}")) == sorted(names)
    for name in names:
        with open(os.path.join(local, name), "rb") as f, tf.io.gfile.GFile(f"{out}/{name}",
                                                                         "rb") as g:
            a, b = f.read(), g.read()
        if name == "manifest.json":  # the output directory itself is not recorded
            a, b = json.loads(a), json.loads(b)
        assert a == b, name
    assert os.listdir(tmp_path / "cache" / "tts-gan" / "prep-check")  # the check cache
    # a rerun keeps the completed shards (their shard info is read back from ram://): no
    # shard is written again, unless its info is gone
    written: list[str] = []
    real_writer = tfrecord_io.ShardWriter

    def counting(path: str, *args, **kwargs):
        written.append(path)
        return real_writer(path, *args, **kwargs)

    monkeypatch.setattr(tfrecord_io, "ShardWriter", counting)
    run(out)
    assert written == []
    info = sorted(f for f in tf.io.gfile.listdir(f"{out}/_shards") if f.endswith(".json"))[0]
    tf.io.gfile.remove(f"{out}/_shards/{info}")
    run(out)
    assert len(written) == 2 and all(os.path.basename(w) in names for w in written)  # control
    tf.io.gfile.rmtree(out)

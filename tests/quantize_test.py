"""TFLite variants of an export (python -m tts_gan.quantize, issue 28 item 3) and
synthesis.TFLiteSynthesizer, on a micro export (567 features, 2 speakers, 2 GBlocks: each
TFLite conversion traces and converts the whole graph, minutes for the Table-2 structure on
2 loaded cores)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from export_synthesis_helpers import (
    FEATURE_DIM,
    NUM_SPEAKERS,
    make_prep_dir,
    manifest_dict,
    tiny_config,
)
from float32_bounds import audio_difference, exceeds, generator_rounding, within

from data_prep import tfrecord_io
from tts_gan import export, mulaw, quantize, schema, serving, synthesis
from tts_gan.generator import build_and_init, build_generator

VARIANTS = ["float32", "float16", "dynamic_int8", "int8"]


def _train_utterances(data_dir: str, raw: list[np.ndarray]) -> None:
    """The prep's train_utterances shard (what int8 calibrates on): the test features again."""
    name = schema.shard_name(schema.utterance_prefix("train"), 0, 1)
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as w:
        for i, f in enumerate(raw):
            w.write(tfrecord_io.utterance_example(
                mulaw.encode(np.zeros(len(f) * 120, np.float32)), f, i % 2, f"t{i}"))


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """(version dir, prep dir, RAW test features, bytes written per asset, generator)."""
    root = tmp_path_factory.mktemp("quant")
    raw = make_prep_dir(str(root / "data"))
    _train_utterances(str(root / "data"), raw)
    cfg = tiny_config()
    cfg.generator.noise_dim = 8
    cfg.generator.input_channels = 32
    cfg.generator.blocks = ((32, 4), (16, 30))
    tf.keras.utils.set_random_seed(0)
    gen = build_and_init(build_generator(cfg.generator, FEATURE_DIM, NUM_SPEAKERS))
    norm = manifest_dict()["normalisation"]  # make_prep_dir's statistics
    res = export.export_saved_model(
        gen, str(root / "serving"), mean=np.array(norm["mean"]), std=np.array(norm["std"]),
        assets={schema.MANIFEST_NAME: str(root / "data" / schema.MANIFEST_NAME)},
        asset_texts={export.CONFIG_NAME: cfg.to_json(indent=1)},
        edge_fade_samples=60)  # the variants must carry it: their parity tests see the edges
    sizes = quantize.write_variants(res.path, VARIANTS, str(root / "data"), windows=4,
                                    frames=20)
    return res.path, str(root / "data"), raw, sizes, gen


def _same(a, b, gen, name: str) -> None:
    """Equal up to the generator's float32 rounding (float32_bounds), on linear audio."""
    within(name, audio_difference(a, b, 65535.0), generator_rounding(gen))


def _differs(a, b, gen, name: str) -> None:
    exceeds(name, audio_difference(a, b, 65535.0), generator_rounding(gen))


def test_variants_are_written_listed_and_smaller_by_their_weight_bytes(quantized):
    """Each file through a temporary name (none left), listed in export_info.json. Sizes from
    the weight counts: float16 stores 2 bytes a weight instead of 4 (≥ 1.5·P smaller), the
    int8 variants 1 byte for each weight tensor of ≥ 1,024 elements (TFLite's
    min_elements_for_weights; smaller ones stay float32): ≥ 2.5·P₁₀₂₄ smaller. Measured on
    2 cores: 1.96·P and 2.97·P₁₀₂₄."""
    path, _, _, sizes, gen = quantized
    assets = os.listdir(os.path.join(path, "assets"))
    assert not [a for a in assets if a.endswith(".tmp")]
    info = export.read_export_info(path)
    for v in VARIANTS:
        name = serving.tflite_file(v)
        assert name in assets and sizes[name] == os.path.getsize(
            os.path.join(path, "assets", name)) == info["tflite_variants"][v]["bytes"]
    assert info["tflite_variants"]["int8"]["calibration"]["windows"] == 4
    counts = [int(np.prod(w.shape)) for w in gen.trainable_weights]
    p, p1024 = sum(counts), sum(c for c in counts if c >= 1024)
    f32 = sizes["gan_tts.tflite"]
    assert f32 >= 4 * p
    assert f32 - sizes["gan_tts_float16.tflite"] >= 1.5 * p
    assert f32 - sizes["gan_tts_dynamic_int8.tflite"] >= 2.5 * p1024
    assert f32 - sizes["gan_tts_int8.tflite"] >= 2.5 * p1024


def test_tflite_synthesizer_speaks_as_the_savedmodel(quantized):
    """float32 TFLite == serving_default within the generator's float32 rounding bound (the
    same z from the seed); the quantised variants differ by more than rounding (their
    quantisation is real) and keep the output contract (lengths, finite, within [-1, 1]);
    how close they sound is measured on the shipped model (benchmarks/tflite_quant.py: on a
    random micro G no closeness is a property). Control: another seed differs beyond the
    bound."""
    path, _, raw, _, gen = quantized
    saved = synthesis.ExportedSynthesizer(path)
    lengths = [len(f) for f in raw]
    feats, _ = synthesis.pad_batch(raw)
    ref, ref_len = saved.run(feats, lengths, [0, 1, 0], [3, 4, 5])
    lite = {v: synthesis.TFLiteSynthesizer(path, v) for v in VARIANTS}
    out, out_len = lite["float32"].run(feats, lengths, [0, 1, 0], [3, 4, 5])
    np.testing.assert_array_equal(out_len, ref_len)
    for i, n in enumerate(ref_len):
        _same(out[i, :n], ref[i, :n], gen, f"tflite float32, utterance {i}")
    # the interpreter's thread count (default: every CPU we may use) changes no output
    one, _ = synthesis.TFLiteSynthesizer(path, "float32", num_threads=1).run(
        feats, lengths, [0, 1, 0], [3, 4, 5])
    assert lite["float32"].num_threads == len(os.sched_getaffinity(0))
    for i, n in enumerate(ref_len):
        _same(one[i, :n], ref[i, :n], gen, f"tflite float32 on 1 thread, utterance {i}")
    other, _ = lite["float32"].run(feats, lengths, [0, 1, 0], [6, 4, 5])
    _differs(other[0, :ref_len[0]], ref[0, :ref_len[0]], gen, "another seed")
    for v in ("dynamic_int8", "int8"):
        q, q_len = lite[v].run(feats, lengths, [0, 1, 0], [3, 4, 5])
        np.testing.assert_array_equal(q_len, ref_len)
        assert np.all(np.isfinite(q)) and np.abs(q).max() <= 1.0, v
        _differs(q[0, :ref_len[0]], ref[0, :ref_len[0]], gen, f"{v} against float32")
    # batched synthesis takes the TFLite synthesizer as it takes the SavedModel
    utts = [synthesis.Utterance(f"u{i}", f, i % 2) for i, f in enumerate(raw)]
    got = dict(synthesis.synthesize_batched(lite["float32"], utts, [3, 4, 5]))
    _same(got[1], ref[1, :ref_len[1]], gen, "synthesize_batched")


def test_bad_requests_are_clear_errors(quantized, tmp_path):
    path, data_dir, raw, _, _ = quantized
    with pytest.raises(quantize.QuantizeError, match="int8 needs --data_dir"):
        quantize.write_variants(path, ["int8"])
    with pytest.raises(quantize.QuantizeError, match=r"--variants: TFLite variant 'int4'"):
        quantize.write_variants(path, ["int4"])
    other = str(tmp_path / "other")
    make_prep_dir(other, seed=1)  # other normalisation statistics: another prep
    with pytest.raises(quantize.QuantizeError, match=f"--data_dir={other}: its features"):
        quantize.calibration_inputs(other, schema.load_manifest(data_dir), 128, 2, 10)
    with pytest.raises(synthesis.SynthesisError, match="no TFLite variant 'float16' in this"):
        synthesis.TFLiteSynthesizer(_without(path, tmp_path, "gan_tts_float16.tflite"),
                                    "float16")
    with pytest.raises(synthesis.SynthesisError, match="TFLite num_threads: 0, expected >= 1"):
        synthesis.TFLiteSynthesizer(path, "float32", num_threads=0)
    # export_info.json from another version: the missing field is named, for both kinds
    for cls, key in ((synthesis.TFLiteSynthesizer, "samples_per_frame"),
                     (synthesis.TFLiteSynthesizer, "noise_dim"),
                     (synthesis.ExportedSynthesizer, "sample_rate")):
        with pytest.raises(synthesis.SynthesisError, match=f"export_info.json has no '{key}'"):
            cls(_info_without(path, tmp_path / key, key))
    calib = quantize.calibration_inputs(data_dir, schema.load_manifest(data_dir), 128, 3, 10)
    assert [c["features"].shape for c in calib] == [(1, 10, raw[0].shape[1])] * 3
    assert json.dumps(sorted(calib[0])) == json.dumps(sorted(serving.TFLITE_INPUTS))


def _without(path: str, tmp_path, asset: str) -> str:
    """A copy of the version ``path`` without ``assets/asset``."""
    import shutil

    dst = str(tmp_path / "without" / "1")
    shutil.copytree(path, dst)
    os.remove(os.path.join(dst, "assets", asset))
    return dst


def _info_without(path: str, tmp_path, key: str) -> str:
    """A copy of the version ``path`` whose export_info.json lacks ``key``."""
    dst = _without(path, tmp_path, "gan_tts_float16.tflite")
    info_path = os.path.join(dst, "assets", "export_info.json")
    with open(info_path) as f:
        info = json.load(f)
    del info[key]
    with open(info_path, "w") as f:
        json.dump(info, f)
    return dst


def test_the_library_defines_no_flags_and_the_cli_reports_errors(quantized):
    """tts_gan.quantize is imported beside the CLIs (tests, notebooks): it defines no absl flag
    (a flag defined at import clashed with tts-gan-prep's --seed in one process); reloading a
    module that defines flags raises DuplicateFlagError. The CLI (python -m tts_gan.quantize)
    names a bad request and exits 1."""
    import importlib
    import subprocess
    import sys

    import data_prep.prep_main  # noqa: F401  (defines --seed, --data_dir, ...)

    importlib.reload(quantize)
    out = subprocess.run([sys.executable, "-m", "tts_gan.quantize",
                          f"--export_dir={quantized[0]}", "--variants=int8"],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 1, out.stderr[-2000:]
    assert "quantize: error: --variants=int8 needs --data_dir" in out.stderr


def test_reexport_lists_no_tflite_variant_it_did_not_write(quantized, tmp_path):
    """python -m tts_gan.reexport --replace on a version with four TFLite variants: the new
    version serves the same audio (within the generator's float32 rounding) and neither holds
    nor lists the old graph's TFLite files (export_info listed them, so bench and users looked
    for files that were not there); the JSON line names them for python -m tts_gan.quantize.
    An earlier re-export's record survives, nested under the new one's "reexported_from"."""
    import shutil
    import subprocess
    import sys

    path, _, raw, _, gen = quantized
    listed = export.read_export_info(path)["tflite_variants"]
    assert sorted(listed) == sorted(VARIANTS)
    copy = str(tmp_path / "base" / "1")
    shutil.copytree(path, copy)
    # The copy poses as an earlier re-export: its record must survive, nested, in the new one.
    info_path = os.path.join(copy, "assets", "export_info.json")
    with open(info_path) as f:
        info = json.load(f)
    earlier = {"path": "somewhere/1", "exported_at": "2026-11-29T23:06:00+0000",
               "config_overrides": ["generator.harmonic_noise.phase=held"]}
    info["reexported_from"] = earlier
    with open(info_path, "w") as f:
        json.dump(info, f)
    out = subprocess.run([sys.executable, "-m", "tts_gan.reexport", f"--export_dir={copy}",
                          "--replace"], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["new"] == copy and result["tflite_variants_dropped"] == sorted(listed)
    new_info = export.read_export_info(copy)
    assert "tflite_variants" not in new_info
    assert new_info["reexported_from"] == {"path": copy, "exported_at": info["exported_at"],
                                           "config_overrides": [], "reexported_from": earlier}
    assert not [f for f in os.listdir(os.path.join(copy, "assets")) if f.endswith(".tflite")]
    with pytest.raises(synthesis.SynthesisError, match="no TFLite variant 'float16'"):
        synthesis.TFLiteSynthesizer(copy, "float16")
    feats, lengths = synthesis.pad_batch(raw)
    old = synthesis.ExportedSynthesizer(path).run(feats, lengths, [0, 1, 0], [3, 4, 5])
    new = synthesis.ExportedSynthesizer(copy).run(feats, lengths, [0, 1, 0], [3, 4, 5])
    np.testing.assert_array_equal(new[1], old[1])
    for i, n in enumerate(old[1]):
        _same(new[0][i, :n], old[0][i, :n], gen, f"re-exported, utterance {i}")

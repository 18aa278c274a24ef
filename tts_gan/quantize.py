"""TFLite variants of an exported version (issue 28 item 3): float16 and int8.

    python -m tts_gan.quantize --export_dir=pretrained/cpu_harmonic_noise/3 \
        --variants=float16,dynamic_int8,int8 [--data_dir=PREP] [--calibration_windows=64]

The generator is rebuilt from the version's own config and SavedModel variables
(:func:`tts_gan.export.generator_from_export`, as ``tts_gan.reexport`` does) and its
assertion-free core converted (:func:`tts_gan.serving.tflite_model`); each variant is written
to ``<version>/assets/gan_tts_<variant>.tflite`` through a temporary name and a rename, and
``export_info.json`` lists it under ``tflite_variants`` (rewritten the same way). The SavedModel
itself is not touched. ``int8`` calibrates its activation ranges on ``--calibration_windows``
windows of ``--data_dir``'s training utterances (RAW features, as served; the prep must be the
one the export was trained on: same feature dimension and normalisation), each with its speaker
and a z drawn from N(0, I) as in serving. ``tts-gan-synthesize --tflite=VARIANT`` and
``benchmarks/intelligibility.py --tflite=VARIANT`` run a variant;
``benchmarks/tflite_quant.py`` measures them (size, speed, SNR, WER, DNSMOS).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import numpy as np


class QuantizeError(ValueError):
    """A bad export, prep or variant name (the message names which)."""


def calibration_inputs(data_dir: str, manifest, noise_dim: int, windows: int, frames: int,
                       seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``windows`` input dicts of the served core: a ``frames``-long window (whole utterance
    if shorter) of RAW features from a random training utterance of ``data_dir``, its speaker
    and z ~ N(0, I). The prep must match the export's ``manifest`` (dimension, statistics)."""
    from tts_gan import data as data_lib
    from tts_gan import schema

    prep = schema.load_manifest(data_dir)
    if prep.feature_dim != manifest.feature_dim or not (
            np.allclose(prep.mean, manifest.mean) and np.allclose(prep.std, manifest.std)):
        raise QuantizeError(f"--data_dir={data_dir}: its features (dimension "
                            f"{prep.feature_dim}, normalisation statistics) are not the "
                            "export's training features")
    mean, std = np.asarray(prep.mean, np.float32), np.asarray(prep.std, np.float32)
    utts = list(data_lib.make_utterance_dataset(data_dir, "train").as_numpy_iterator())
    if not utts:
        raise QuantizeError(f"--data_dir={data_dir}: no training utterances")
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(utts), size=windows, replace=len(utts) < windows):
        f = utts[i]["features"] * std + mean  # RAW: the served core normalises
        start = int(rng.integers(0, max(len(f) - frames, 0) + 1))
        w = f[start:start + frames].astype(np.float32)
        out.append({"features": w[None], "lengths": np.array([len(w)], np.int32),
                    "speaker": np.array([utts[i]["speaker"]], np.int32),
                    "z": rng.standard_normal((1, noise_dim)).astype(np.float32)})
    return out


def write_variants(version_dir: str, variants: list[str], data_dir: str | None = None,
                   windows: int = 64, frames: int = 400, seed: int = 0) -> dict[str, int]:
    """Writes each TFLite variant into ``version_dir/assets``; returns name → bytes."""
    import tensorflow as tf

    from tts_gan import export, serving
    from tts_gan.train_loop import atomic_write

    for v in variants:
        try:
            serving.tflite_file(v)
        except ValueError as e:
            raise QuantizeError(f"--variants: {e}") from None
    if "int8" in variants and not data_dir:
        raise QuantizeError("--variants=int8 needs --data_dir (its calibration features)")
    info = export.read_export_info(version_dir)
    gen, _, manifest = export.generator_from_export(version_dir)
    module = serving.SynthesisModule(gen, np.asarray(manifest.mean), np.asarray(manifest.std),
                                     float(info["mu"]), manifest.num_speakers,
                                     export.recorded_edge_fade(info))
    calib = (calibration_inputs(data_dir, manifest, module.noise_dim, windows, frames, seed)
             if "int8" in variants else None)

    def representative() -> Iterator[dict[str, np.ndarray]]:
        yield from calib

    sizes = {}
    assets = os.path.join(version_dir, "assets")
    for v in variants:
        blob = serving.tflite_model(module, v, representative if v == "int8" else None)
        path = os.path.join(assets, serving.tflite_file(v))
        with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
            f.write(blob)
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
        sizes[serving.tflite_file(v)] = len(blob)
    listed = dict(info.get("tflite_variants", {}))
    for v in variants:
        listed[v] = {"file": f"assets/{serving.tflite_file(v)}",
                     "bytes": sizes[serving.tflite_file(v)],
                     **({"calibration": {"data_dir": data_dir, "windows": windows,
                                         "frames": frames, "seed": seed}}
                        if v == "int8" else {})}
    info["tflite_variants"] = listed
    atomic_write(os.path.join(assets, export.EXPORT_INFO),
                 json.dumps(info, indent=1, sort_keys=True))
    return sizes


if __name__ == "__main__":  # python -m tts_gan.quantize: the CLI (tts_gan.cli.quantize)
    from tts_gan.cli.quantize import run

    run()

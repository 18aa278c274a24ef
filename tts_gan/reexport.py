"""Re-export an exported version with this version's signatures (e.g. ``synthesize_chunk``).

    python -m tts_gan.reexport --export_dir=pretrained/cpu_harmonic_noise/3 \
        [--set=generator.harmonic_noise.phase=held] [--check_text_file=F] [--replace]

For a model whose training checkpoint is gone: the generator is rebuilt from the version's
``assets/config.json`` (with ``--set`` overrides, recorded in the new config) and restored from
the SavedModel's own variables (:func:`tts_gan.export.generator_from_export`: EMA weights and
frozen standing statistics as exported), then written with :func:`export_saved_model` to a
temporary base next to it. Both versions' ``serving_default`` run on the check text's
sentences (Festival, the export's own front end) with seeds 0 and 1; the JSON line gives each
difference in units of the generator's float32 rounding bound. ``--replace`` then swaps the
new version in under the same path (renames; the old one is deleted only after the swap).
TFLite files are not carried (they are conversions of the old graph): the JSON line names the
variants the old version listed (``tflite_variants_dropped``); ``python -m tts_gan.quantize``
writes them again from the new graph.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid

from absl import app, flags

from tts_gan.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "The exported version directory to re-export.")
flags.DEFINE_multi_string("set", [], "Config override KEY=VALUE (dotted, e.g. "
                          "generator.harmonic_noise.phase=held), JSON-parsed where possible.")
flags.DEFINE_string("check_text_file", None, "Sentences (one per line, '#' comments) whose "
                    "features compare the two versions; default: none (no check).")
flags.DEFINE_integer("check_sentences", 4, "At most this many sentences of the check file.")
flags.DEFINE_float("edge_fade_ms", None, "Edge fade of the new version in ms (default: the "
                   "old version's; tts-gan-export --edge_fade_ms).")
flags.DEFINE_bool("replace", False, "Swap the re-export in under --export_dir.")


def _override(cfg, item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep:
        raise app.UsageError(f"--set={item}: expected KEY=VALUE")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = parsed


def rounding_bound(gen) -> float:
    """eps·√(widest fan-in)·depth: two float32 evaluations' difference on µ-law output
    (``tests/float32_bounds.py``'s ``generator_rounding``)."""
    fan_in = max(s.kernel_size * s.in_channels for s in gen.conv_specs())
    return 2.0 ** -23 * math.sqrt(fan_in) * gen.num_layers()


def compare(old_dir: str, new_dir: str, text_file: str, sentences: int) -> list[dict]:
    """``serving_default`` of both versions on the check sentences (speaker slt, seeds 0, 1):
    max |Δ| in units of ln(1+µ)·(peak + 1/µ) (float32_bounds.audio_difference). Where the two
    versions' edge fades differ (``--edge_fade_ms``), the samples within the longer fade of
    either end are left out (``edge_samples_skipped``)."""
    import numpy as np

    from tts_gan import export, synthesis

    old, new = synthesis.ExportedSynthesizer(old_dir), synthesis.ExportedSynthesizer(new_dir)
    manifest = old.manifest()
    speaker = manifest.speakers.get("slt_hts", 0) if manifest else 0
    with open(text_file) as f:
        lines = [s.strip() for s in f if s.strip() and not s.startswith("#")][:sentences]
    utts = synthesis.utterances_from_text(
        lines, [f"check{i}" for i in range(len(lines))], old.question_file(), speaker,
        voice=synthesis.festival_voice(manifest, speaker, None), mapping=None,
        **synthesis.training_front_end(manifest))
    mu = float(old.info["mu"])
    fades = [export.recorded_edge_fade(v.info) for v in (old, new)]
    skip = max(fades) if fades[0] != fades[1] else 0
    rows = []
    for u in utts:
        for seed in (0, 1):
            a = old.run(u.features[None], [u.features.shape[0]], [speaker], [seed])[0][0]
            b = new.run(u.features[None], [u.features.shape[0]], [speaker], [seed])[0][0]
            a, b = a[skip:len(a) - skip], b[skip:len(b) - skip]
            d = float(np.abs(a.astype(np.float64) - b).max())
            rows.append({"utterance": u.utterance_id, "frames": int(u.features.shape[0]),
                         "seed": seed, "bitwise": bool(np.array_equal(a, b)),
                         "edge_samples_skipped": skip,
                         "difference": d / (math.log1p(mu) * (float(np.abs(a).max()) + 1 / mu))})
    return rows


def _provenance(path: str, old_info: dict, overrides: list[str]) -> dict:
    """The record of one re-export, nesting the version's earlier ones (each re-export keeps
    the chain back to the training run's export, with the config overrides of every step)."""
    record = {"path": path, "exported_at": old_info.get("exported_at"),
              "config_overrides": overrides}
    if "reexported_from" in old_info:
        record["reexported_from"] = old_info["reexported_from"]
    return record


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.export_dir:
        raise app.UsageError("--export_dir is required")
    import numpy as np
    import tensorflow as tf

    from tts_gan import export, schema

    path = export.latest_version_dir(FLAGS.export_dir.rstrip("/"))
    base, version = os.path.dirname(path), os.path.basename(path)
    if not version.isdigit():
        raise app.UsageError(f"{path}: not an integer version directory")
    try:
        old_info = export.read_export_info(path)
        gen, cfg, manifest = export.generator_from_export(
            path, overrides=[lambda c, s=s: _override(c, s) for s in FLAGS.set])
        assets = {schema.MANIFEST_NAME: os.path.join(path, "assets", schema.MANIFEST_NAME)}
        q = os.path.join(path, "assets", export.QUESTIONS_NAME)
        if tf.io.gfile.exists(q):
            assets[export.QUESTIONS_NAME] = q
        info = {k: v for k, v in old_info.items()
                if k not in ("signatures", "exported_at", "version", "tflite",
                             "tflite_variants")}
        info["reexported_from"] = _provenance(path, old_info, list(FLAGS.set))
        tmp_base = os.path.join(base, f".reexport-{uuid.uuid4().hex[:12]}")
        result = export.export_saved_model(
            gen, tmp_base, version=int(version), mean=np.asarray(manifest.mean),
            std=np.asarray(manifest.std), mu=float(old_info["mu"]), assets=assets,
            asset_texts={export.CONFIG_NAME: cfg.to_json(indent=1)}, info=info,
            edge_fade_samples=(export.recorded_edge_fade(old_info)
                               if FLAGS.edge_fade_ms is None
                               else export.edge_fade_samples(FLAGS.edge_fade_ms)))
    except (export.ExportError, schema.ManifestError) as e:
        print(f"reexport: error: {e}", file=sys.stderr)
        return 1
    out = {"old": path, "new": result.path, "rounding_bound": rounding_bound(gen),
           "tflite_variants_dropped": sorted(old_info.get("tflite_variants", []))}
    if FLAGS.check_text_file:
        out["check"] = compare(path, result.path, FLAGS.check_text_file, FLAGS.check_sentences)
    if FLAGS.replace:
        aside = os.path.join(base, f".old-{version}-{uuid.uuid4().hex[:12]}")
        os.rename(path, aside)
        os.rename(result.path, path)
        tf.io.gfile.rmtree(aside)
        os.rmdir(tmp_base)
        out["new"] = path
    print(json.dumps(out))
    return 0


def run() -> None:
    run_main(main, __name__)


if __name__ == "__main__":
    run()

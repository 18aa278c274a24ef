"""`tts-gan-export`: EMA generator + standing statistics → SavedModel for TF Serving (App. D).

    tts-gan-export --model_dir=DIR --export_dir=BASE [--version=N] [--standing_passes=100] \
        [--data_dir=PREP | --standing_stats_from_random]
    tts-gan-export --config=experiments/gan_tts.py --init=random --export_dir=BASE \
        (--data_dir=PREP | --standing_stats_from_random) [--feature_dim=567 --num_speakers=1]

Writes ``BASE/<version>/`` (next free integer unless ``--version``; never overwrites), see
:mod:`tts_gan.export` for the serving signature. Every path may be local or on any
``tf.io.gfile`` file system (``gs://...``). The standing statistics come from the training
windows of ``--data_dir`` or of the ``data.data_dir`` recorded in the model_dir's
``config.json``; from random features only with ``--standing_stats_from_random``.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from tts_gan.cli import run_main

FLAGS = flags.FLAGS
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config (experiments/*.py) for --init=random.",
    lock_config=False)
flags.DEFINE_string("model_dir", None, "Training directory: config.json, manifest.json and "
                    "checkpoints (EMA weights are exported).")
flags.DEFINE_enum("init", None, ["checkpoint", "random"],
                  "Weights: the EMA generator of --model_dir's latest checkpoint, or a random "
                  "init of --config. Default: checkpoint with --model_dir, else random.")
flags.DEFINE_string("export_dir", None, "TF Serving model base path; writes <export_dir>/<N>/.")
flags.DEFINE_integer("version", None, "Integer version to write (default: highest + 1).")
flags.DEFINE_integer("standing_passes", None, "Forward passes for the standing statistics "
                     "(App. D: 100; default: config.train.standing_stats_passes).")
flags.DEFINE_integer("standing_batch_size", 8, "Batch size of each standing-statistics pass.")
flags.DEFINE_integer("standing_frames", None, "Frames per random standing-statistics window "
                     "(default: config.data.window_frames).")
flags.DEFINE_string("data_dir", None, "Prepared data for the standing statistics (its train "
                    "windows). Default: the data.data_dir recorded in --model_dir's config.json "
                    "(--init=random: --config's). Missing data is an error, never a silent "
                    "fallback to random features.")
flags.DEFINE_bool("standing_stats_from_random", False, "Standing statistics from random N(0,1) "
                  "features instead of the training data (only on this explicit request; the "
                  "export records it in standing_source).")
flags.DEFINE_alias("standing_random", "standing_stats_from_random")
flags.DEFINE_integer("feature_dim", 567, "D for --init=random without a manifest.")
flags.DEFINE_integer("num_speakers", 1, "Speakers for --init=random without a manifest.")
flags.DEFINE_string("manifest", None, "manifest.json (or its directory) for --init=random: "
                    "D, speakers and normalisation in the graph (default: identity).")
flags.DEFINE_bool("tflite", True, "Also write assets/gan_tts.tflite (z input, builtin ops).")
flags.DEFINE_float("edge_fade_ms", 0.0, "Raised-cosine fade over the first and last this many "
                   "ms of every output (0 = off; 5 removes the shipped voices' one-sample edge "
                   "clicks; at most the receptive-field half-width). Recorded in export_info.")
flags.DEFINE_integer("seed", 0, "Seed of the random init and the standing-statistics z.")


def _data_dir_for_standing(cfg, recorded_in: str) -> str | None:
    """--data_dir, else the config's data.data_dir; None only with --standing_stats_from_random
    (export.standing_data_dir raises ExportError otherwise)."""
    from tts_gan import export

    recorded = cfg.data.get("data_dir", "") if "data" in cfg else ""
    return export.standing_data_dir(FLAGS.data_dir, recorded or None, recorded_in,
                                    from_random=FLAGS.standing_stats_from_random)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import numpy as np
    import tensorflow as tf

    from tts_gan import export, mulaw, schema
    from tts_gan.generator import build_and_init, build_generator, fill_output_mu

    if not FLAGS.export_dir:
        raise app.UsageError("--export_dir is required")
    init = FLAGS.init or ("checkpoint" if FLAGS.model_dir else "random")
    tf.keras.utils.set_random_seed(FLAGS.seed)
    assets: dict[str, str] = {}
    info: dict = {"init": init}
    mean = std = None
    manifest = None
    try:
        if init == "checkpoint":
            if not FLAGS.model_dir:
                raise app.UsageError("--init=checkpoint needs --model_dir")
            gen, cfg, manifest, ckpt = export.load_ema_generator(FLAGS.model_dir)
            mean, std = np.asarray(manifest.mean), np.asarray(manifest.std)
            assets = {name: os.path.join(FLAGS.model_dir, name)
                      for name in (export.CONFIG_NAME, schema.MANIFEST_NAME)}
            info.update(checkpoint=ckpt, model_dir=(
                os.path.abspath(FLAGS.model_dir) if export.is_local(FLAGS.model_dir)
                else FLAGS.model_dir))
            recorded_in = os.path.join(FLAGS.model_dir, export.CONFIG_NAME)
        else:
            cfg = _CONFIG.value
            if cfg is None:
                raise app.UsageError("--init=random needs --config=experiments/<name>.py")
            dim, speakers = FLAGS.feature_dim, FLAGS.num_speakers
            recorded_in = f"--config={config_flags.get_config_filename(FLAGS['config'])}"
            if FLAGS.manifest:
                mdir = (FLAGS.manifest if tf.io.gfile.isdir(FLAGS.manifest)
                        else os.path.dirname(FLAGS.manifest) or ".")
                manifest = schema.load_manifest(mdir)
                dim, speakers = manifest.feature_dim, manifest.num_speakers
                mean, std = np.asarray(manifest.mean), np.asarray(manifest.std)
                assets[schema.MANIFEST_NAME] = os.path.join(mdir, schema.MANIFEST_NAME)
            fill_output_mu(cfg)  # as resolve_config does for training
            gen = build_and_init(build_generator(cfg.generator, dim, speakers))
            info.update(config_name=cfg.get("name", ""), normalisation=(
                "manifest" if mean is not None else "identity"))
        if manifest is not None and manifest.extra.get("question_file"):
            # the front end travels with the model: serving computes features of new text or
            # labels with the question set the training data was prepared with
            from tts_gan import synthesis

            try:
                assets[export.QUESTIONS_NAME] = synthesis.default_question_file(manifest)
            except synthesis.SynthesisError as e:
                raise export.ExportError(str(e)) from None
        if manifest is not None:
            from tts_gan import synthesis_inputs

            try:  # the training range of each input column, for serving clients
                info["feature_range"] = synthesis_inputs.feature_range_info(
                    manifest, assets.get(export.QUESTIONS_NAME))
            except synthesis_inputs.SynthesisError as e:
                raise export.ExportError(str(e)) from None
        try:  # before the standing-statistics passes, so a bad config fails fast
            mu = mulaw.check_mu(cfg.data.get("mu", schema.MU), "config data.mu" + (
                f" in {os.path.join(FLAGS.model_dir, export.CONFIG_NAME)}"
                if init == "checkpoint" else ""))
        except ValueError as e:
            raise export.ExportError(str(e)) from None
        passes = FLAGS.standing_passes
        if passes is None:
            passes = int(cfg.train.get("standing_stats_passes", 100)) if "train" in cfg else 100
        frames = FLAGS.standing_frames or int(cfg.data.window_frames)
        data_dir = _data_dir_for_standing(cfg, recorded_in)
        if data_dir is None:
            logging.warning("standing statistics from %s: not the training data's BN "
                            "statistics", export.RANDOM_STANDING_SOURCE)
        logging.info("standing statistics: %d passes of batch %d from %s", passes,
                     FLAGS.standing_batch_size, data_dir or export.RANDOM_STANDING_SOURCE)
        source = export.standing_statistics(gen, passes, FLAGS.standing_batch_size, frames,
                                            data_dir, FLAGS.seed,
                                            from_random=data_dir is None)
        info.update(standing_passes=passes, standing_batch_size=FLAGS.standing_batch_size,
                    standing_source=source)
        # with --init=random the config travels with the export, as for a checkpoint
        texts = {export.CONFIG_NAME: cfg.to_json(indent=1)} if init == "random" else {}
        result = export.export_saved_model(
            gen, FLAGS.export_dir, version=FLAGS.version, mean=mean, std=std,
            mu=mu, assets=assets, asset_texts=texts, info=info, tflite=FLAGS.tflite,
            edge_fade_samples=export.edge_fade_samples(FLAGS.edge_fade_ms))
    except (export.ExportError, schema.ManifestError) as e:
        print(f"tts-gan-export: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"export_path": result.path, "version": result.version,
                      "standing_source": source}))
    return 0


def run() -> None:
    run_main(main, __name__)

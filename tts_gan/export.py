"""Export of the sampling generator: EMA weights, standing statistics, SavedModel, TFLite.

Paper App. D: samples come from the EMA generator with *standing statistics* (BN statistics
averaged over 100 training-mode forward passes, then frozen), which makes inference independent
of batch size, batch composition and length; App. A.1: padded batches are masked at every
convolution. This module turns a training checkpoint (or a random init) into a SavedModel in
TF Serving's layout ``BASE/<version>/`` whose graph needs TensorFlow only.

Serving signature ``serving_default`` (all four inputs are required, TF Serving rejects
requests that omit a signature input):

* ``features`` float32 ``[B, T, D]``: RAW prep features (the manifest's mean/std normalisation
  is inside the graph; identity for ``--init=random`` exports). Padded frames may hold anything.
* ``lengths`` int32 ``[B]``: valid frames per example, ``0 <= lengths <= T``.
* ``speaker`` int32 ``[B]``: speaker ids in ``[0, num_speakers)``; always present, must be 0
  for single-speaker models.
* ``seed`` int32 ``[B]``: z ~ N(0, I_128) of example i is ``stateless_normal([noise_dim],
  seed=[seed_i, 0])``: same seed, same audio, independent of the rest of the batch.

Outputs: ``audio`` float32 ``[B, 120 T]`` linear PCM in [-1, 1] (µ-law decoded, App. C), zero
beyond ``audio_lengths`` int32 ``[B]`` = 120 · lengths. A second signature ``synthesize_z``
takes ``z`` float32 ``[B, noise_dim]`` instead of ``seed`` (used for TFLite parity). Wrong
ranks or feature dims raise ``InvalidArgumentError`` with a readable message.

Streaming (exact chunks of one utterance, ``tts_gan.synthesis.synthesize_streaming``):
``synthesize_chunk`` takes ``serving_default``'s inputs plus ``start_frame`` int32 ``[B]`` (the
chunk's first frame in the utterance: the harmonic head's noise table is read on from sample
120·start_frame) and ``start_cycles`` float32 ``[B]`` (the fundamental's phase there, in
cycles: frac(Σ_{t<start_frame} F0_t / 200), which the sine excitation and the harmonic head
continue). Models with a sine excitation also have ``frame_cycles`` (``features``,
``lengths`` → ``cycles`` float32 ``[B, T + 1]``: that phase at the start of every frame and
after the last, from the graph's own F0, exact modulo 1; valid up to ``lengths``).
``serving_default`` is ``synthesize_chunk`` with both zero. Exports before these signatures
stream only without a sine excitation (the synthesis refuses the others, naming the export).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from tts_gan import mulaw, schema
from tts_gan.generator import Generator, accumulate_standing_statistics, build_and_init
from tts_gan.serving import SynthesisModule, seed_to_z, tflite_model  # noqa: F401  (API)

EXPORT_INFO = "export_info.json"
QUESTIONS_NAME = "questions.hed"  # the prep's HTS question file (front end of the features)
CONFIG_NAME = "config.json"
SEED_SIGNATURE = "serving_default"
Z_SIGNATURE = "synthesize_z"
CHUNK_SIGNATURE = "synthesize_chunk"
CYCLES_SIGNATURE = "frame_cycles"
RANDOM_STANDING_FLAG = "--standing_stats_from_random"
RANDOM_STANDING_SOURCE = f"random N(0,1) features ({RANDOM_STANDING_FLAG})"


class ExportError(RuntimeError):
    """The export cannot proceed; the message names the file or flag at fault."""


# ---------------------------------------------------------------------------- model loading
def _read_json(path: str) -> dict[str, Any]:
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            return json.loads(f.read())
    except tf.errors.NotFoundError:
        raise ExportError(f"{path}: not found (written by tts-gan-train)") from None
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None


def config_from_json(d: dict[str, Any]):
    """A ConfigDict from the ``config.json`` the trainer writes (``config.to_json()``)."""
    import ml_collections

    if "generator" not in d:
        raise ExportError("config.json: field 'generator' is missing")
    return ml_collections.ConfigDict(d)


def generator_from_config(gen_cfg, feature_dim: int, num_speakers: int) -> Generator:
    """Generator of ``config.generator`` with the data's D and speaker count, variables built.

    Cross-replica BN is switched off: export runs outside any replica context.
    """
    from tts_gan.generator import build_generator

    gen = build_generator(gen_cfg, feature_dim, num_speakers)
    return build_and_init(gen)


def load_ema_generator(model_dir: str) -> tuple[Generator, Any, schema.Manifest, str]:
    """(EMA generator, config, manifest, checkpoint path) of a training ``model_dir``.

    The checkpoint holds ``tf.train.Checkpoint(ema_generator=...)`` among other objects; only
    the EMA weights (App. D: "exponential moving averaging [...] for sampling") are restored.
    """
    cfg = config_from_json(_read_json(os.path.join(model_dir, CONFIG_NAME)))
    manifest = schema.load_manifest(model_dir)
    gen = generator_from_config(cfg.generator, manifest.feature_dim, manifest.num_speakers)
    ckpt = tf.train.latest_checkpoint(model_dir)
    if ckpt is None:
        raise ExportError(f"{model_dir}: no checkpoint found (tf.train.latest_checkpoint)")
    status = tf.train.Checkpoint(ema_generator=gen).restore(ckpt).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ExportError(f"{ckpt}: the EMA generator does not match config.json ({e})") from None
    return gen, cfg, manifest, ckpt


def generator_from_export(version_dir: str, overrides: list | None = None
                          ) -> tuple[Generator, Any, schema.Manifest]:
    """(generator, config, manifest) of an exported version, rebuilt from its
    ``assets/config.json`` and ``assets/manifest.json`` with the SavedModel's own variables
    (``variables/``, the ``generator_variables`` list :class:`SynthesisModule` saves): the EMA
    weights and frozen standing statistics exactly as exported, e.g. to re-export a model whose
    training checkpoint is gone with this version's signatures. Every saved variable must
    match one of the rebuilt generator's, in order and shape. ``overrides``: functions that
    edit the config before the generator is built."""
    assets = os.path.join(version_dir, "assets")
    cfg = config_from_json(_read_json(os.path.join(assets, CONFIG_NAME)))
    for edit in overrides or []:
        edit(cfg)
    manifest = schema.load_manifest(assets)
    gen = generator_from_config(cfg.generator, manifest.feature_dim, manifest.num_speakers)
    prefix = os.path.join(version_dir, "variables", "variables")
    try:
        # (not tf.train.load_checkpoint, which asks whether the prefix is a directory: on
        # ram:// it is, as files lie below "variables/variables")
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ExportError(f"{prefix}: not a SavedModel variables checkpoint ({e})") from None
    saved = reader.get_variable_to_shape_map()
    keys = [f"generator_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
            for i in range(len(gen.variables))]
    extra = sorted(k for k in saved if k.startswith("generator_variables/")
                   and k not in set(keys))
    missing = [k for k in keys if k not in saved]
    if missing or extra:
        raise ExportError(f"{version_dir}: {len(gen.variables)} generator variables rebuilt "
                          f"from {CONFIG_NAME}, the SavedModel has "
                          f"{sum(k.startswith('generator_variables/') for k in saved)}")
    for key, var in zip(keys, gen.variables, strict=True):
        if list(saved[key]) != list(var.shape):
            raise ExportError(f"{version_dir}: saved {key} has shape {saved[key]}, the rebuilt "
                              f"generator's {var.path} {list(var.shape)}")
        var.assign(reader.get_tensor(key))
    if read_export_info(version_dir).get("spectral_norm_folded"):
        gen.fold_spectral_norm(assign=False)  # the saved kernels are W / σ(W) already
    return gen, cfg, manifest


# ---------------------------------------------------------------------- standing statistics
def random_standing_batches(gen: Generator, batch_size: int, frames: int,
                            seed: int = 0) -> Iterator[dict[str, tf.Tensor]]:
    """Training-like inputs when no data is known: N(0, 1) normalised features, z ~ N(0, I)."""
    rng = tf.random.Generator.from_seed(seed)
    while True:
        batch = {"features": rng.normal([batch_size, frames, gen.feature_dim]),
                 "z": rng.normal([batch_size, gen.noise_dim])}
        if gen.num_speakers > 1:
            batch["speaker"] = rng.uniform([batch_size], 0, gen.num_speakers, tf.int32)
        yield batch


def data_standing_batches(gen: Generator, data_dir: str, batch_size: int,
                          seed: int = 0) -> Iterator[dict[str, tf.Tensor]]:
    """Training windows of the prepared data (normalised features, speakers) with random z."""
    from tts_gan.data import make_dataset

    ds = make_dataset(data_dir, "train", batch_size, shuffle=True, repeat=True, seed=seed,
                      deterministic=True)
    rng = tf.random.Generator.from_seed(seed)
    for ex in ds:
        batch = {"features": ex["features"], "z": rng.normal([batch_size, gen.noise_dim])}
        if gen.num_speakers > 1:
            batch["speaker"] = ex["speaker"]
        yield batch


def standing_data_dir(data_dir: str | None, recorded: str | None, recorded_in: str, *,
                      from_random: bool = False) -> str | None:
    """The prepared data whose training windows feed the standing statistics (App. D).

    ``data_dir`` (``--data_dir``) wins over ``recorded`` (the ``data.data_dir`` recorded in
    ``recorded_in``, e.g. the model_dir's ``config.json``). Returns None only with
    ``from_random`` (``--standing_stats_from_random``); anything else that finds no manifest
    and training shards is an :class:`ExportError` naming the path and the flags, never a
    silent fallback to random features.
    """
    hint = (f"pass --data_dir=DIR (the tts-gan-prep output the model was trained on) or "
            f"{RANDOM_STANDING_FLAG} to use random N(0,1) features")
    if from_random:
        if data_dir:
            raise ExportError(f"--data_dir={data_dir} and {RANDOM_STANDING_FLAG} contradict "
                              "each other: give one of them")
        return None
    if data_dir:
        candidate, where = data_dir, f"--data_dir={data_dir}"
    elif recorded:
        candidate, where = recorded, f"data.data_dir recorded in {recorded_in}"
    else:
        raise ExportError(f"standing statistics need the training data and {recorded_in} "
                          f"records no data.data_dir: {hint}")
    manifest = os.path.join(candidate, schema.MANIFEST_NAME)
    if not tf.io.gfile.exists(manifest):
        raise ExportError(f"{manifest}: not found ({where}); standing statistics need the "
                          f"training data: {hint}")
    pattern = os.path.join(candidate, schema.shard_pattern("train"))
    if not tf.io.gfile.glob(pattern):
        raise ExportError(f"{pattern}: no training windows ({where}); standing statistics "
                          f"need the training data: {hint}")
    return candidate


def standing_statistics(gen: Generator, passes: int, batch_size: int, frames: int,
                        data_dir: str | None = None, seed: int = 0, *,
                        from_random: bool = False) -> str:
    """Accumulates and freezes standing statistics (App. D); returns the input source used.

    From the training windows of ``data_dir``; from random N(0,1) features only with
    ``from_random`` (no data and no flag is an :class:`ExportError`).
    """
    if passes <= 0:
        raise ExportError(f"--standing_passes must be positive, got {passes}")
    if data_dir:
        if from_random:
            raise ExportError(f"data_dir={data_dir} and from_random contradict each other")
        manifest = schema.load_manifest(data_dir)
        if (manifest.feature_dim, manifest.num_speakers) != (gen.feature_dim,
                                                             gen.num_speakers):
            raise ExportError(
                f"{os.path.join(data_dir, schema.MANIFEST_NAME)}: {manifest.feature_dim}-dim "
                f"features of {manifest.num_speakers} speaker(s), the model takes "
                f"{gen.feature_dim}-dim features of {gen.num_speakers}: standing statistics "
                "need the data the model was trained on")
        batches, source = data_standing_batches(gen, data_dir, batch_size, seed), data_dir
    elif from_random:
        batches = random_standing_batches(gen, batch_size, frames, seed)
        source = RANDOM_STANDING_SOURCE
    else:
        raise ExportError("standing statistics: no data_dir given; random N(0,1) features "
                          f"only on request ({RANDOM_STANDING_FLAG})")
    accumulate_standing_statistics(gen, batches, num_passes=passes)
    return source


# ------------------------------------------------------------------------------ versioning
def existing_versions(base: str) -> list[int]:
    """Integer version directories of a TF Serving base path, ascending."""
    if not tf.io.gfile.isdir(base):
        return []
    return sorted(int(n.rstrip("/")) for n in tf.io.gfile.listdir(base)
                  if n.rstrip("/").isdigit())


def latest_version_dir(export_dir: str) -> str:
    """``export_dir`` if it holds a saved_model.pb, else its highest integer version."""
    if tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        return export_dir
    versions = existing_versions(export_dir)
    if not versions:
        raise ExportError(f"{export_dir}: neither a SavedModel nor a base with integer versions")
    return os.path.join(export_dir, str(versions[-1]))


@dataclasses.dataclass
class ExportResult:
    path: str
    version: int
    info: dict[str, Any]


def is_local(path: str) -> bool:
    """Whether ``path`` is on the local file system (no ``scheme://`` other than file://)."""
    return "://" not in path or path.startswith("file://")


def _files_under(root: str) -> list[str]:
    """Paths of every file under ``root`` relative to it (``tf.io.gfile.walk``)."""
    out = []
    for dirpath, _, files in tf.io.gfile.walk(root):
        rel = dirpath[len(root):].strip("/")
        out += [f"{rel}/{f}" if rel else f for f in files]
    return sorted(out)


def publish_dir(tmp: str, final: str) -> None:
    """Moves the finished directory ``tmp`` to ``final`` (which must not exist).

    Local: one ``rename(2)``, atomic. Elsewhere a directory rename is not atomic (GCS renames
    object by object; TensorFlow's ``ram://`` renames only the directory entry and leaves the
    files behind, measured), so every file is renamed on its own into ``final``, with
    ``saved_model.pb`` last: the version is loadable only once it is complete.
    """
    if tf.io.gfile.exists(final):
        raise ExportError(f"{final}: exists; versions are never overwritten")
    if is_local(final):
        tf.io.gfile.rename(tmp, final, overwrite=False)
        return
    files = _files_under(tmp)
    files.sort(key=lambda f: f in ("saved_model.pb", "saved_model.pbtxt"))
    try:
        for d in sorted({os.path.dirname(f) for f in files}):
            tf.io.gfile.makedirs(os.path.join(final, d) if d else final)
        for f in files:
            tf.io.gfile.rename(os.path.join(tmp, f), os.path.join(final, f), overwrite=False)
    except BaseException:
        if not tf.io.gfile.exists(os.path.join(final, "saved_model.pb")):
            _remove_tree(final)  # never loadable: no saved_model.pb yet
        raise
    _remove_tree(tmp)


def _remove_tree(path: str) -> None:
    """Best-effort recursive delete (cleanup after a failure or a publish)."""
    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
    except tf.errors.OpError:
        pass


def edge_fade_samples(ms: float) -> int:
    """``--edge_fade_ms`` in samples at the served rate (:func:`tts_gan.serving.edge_fade`)."""
    if not np.isfinite(ms) or ms < 0:
        raise ExportError(f"--edge_fade_ms={ms}: expected milliseconds >= 0 (0 = off)")
    return int(round(ms * schema.SAMPLE_RATE / 1000.0))


def recorded_edge_fade(info: dict[str, Any]) -> int:
    """The edge fade in samples that an export's ``export_info.json`` records (0 for exports
    written before ``--edge_fade_ms``): what a rebuilt served graph must apply again."""
    return int(info.get("edge_fade_samples", 0))


def export_saved_model(gen: Generator, export_base: str, *, version: int | None = None,
                       mean: np.ndarray | None = None, std: np.ndarray | None = None,
                       mu: float = schema.MU, assets: dict[str, str] | None = None,
                       asset_texts: dict[str, str] | None = None,
                       info: dict[str, Any] | None = None,
                       tflite: bool = False, edge_fade_samples: int = 0) -> ExportResult:
    """Writes ``export_base/<version>/`` (a new integer version; never overwrites).

    The SavedModel is written to a temporary directory ``.tmp-<version>-<random>`` inside
    ``export_base`` (not an integer: TF Serving ignores it) and then published under the
    integer name (:func:`publish_dir`), so TF Serving never loads a half-written version.
    Local or any ``tf.io.gfile`` file system (``gs://``, ``ram://``). ``assets`` (name →
    source path) and ``asset_texts`` (name → text) go into ``<version>/assets/`` together with
    ``export_info.json``; with ``tflite`` a ``<version>/assets/gan_tts.tflite`` of the
    assertion-free core is written too. ``edge_fade_samples`` > 0 fades every output's first
    and last samples (:func:`tts_gan.serving.edge_fade`), recorded in ``export_info.json``.
    ``gen``'s spectral norms are folded into its kernels first (inference-only, in place:
    :meth:`Generator.fold_spectral_norm`; ``spectral_norm_folded`` in ``export_info.json``).
    """
    d = gen.feature_dim
    try:
        mu = mulaw.check_mu(mu)
    except ValueError as e:
        raise ExportError(str(e)) from None
    mean = np.zeros(d, np.float32) if mean is None else np.asarray(mean, np.float32)
    std = np.ones(d, np.float32) if std is None else np.asarray(std, np.float32)
    if mean.shape != (d,) or std.shape != (d,):
        raise ExportError(f"normalisation statistics have shape {mean.shape}/{std.shape}, "
                          f"the generator's feature_dim is {d}")
    try:  # before anything is created: a refused fade leaves nothing on disk
        module = SynthesisModule(gen, mean, std, mu, gen.num_speakers, edge_fade_samples)
    except ValueError as e:
        raise ExportError(str(e)) from None
    gen.fold_spectral_norm()  # before the signatures are traced
    if tf.io.gfile.exists(export_base) and not tf.io.gfile.isdir(export_base):
        raise ExportError(f"--export_dir={export_base}: exists and is not a directory")
    try:
        tf.io.gfile.makedirs(export_base)
    except tf.errors.OpError as e:
        raise ExportError(f"--export_dir={export_base}: cannot create it ({e.message})") from None
    versions = existing_versions(export_base)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if version < 0:
        raise ExportError(f"--version must be a non-negative integer, got {version}")
    final = os.path.join(export_base, str(version))
    if tf.io.gfile.exists(final):
        raise ExportError(f"{final}: version {version} exists; versions are never overwritten")
    info = dict(info or {})
    info.update(
        feature_dim=d, noise_dim=gen.noise_dim, num_speakers=gen.num_speakers,
        samples_per_frame=gen.samples_per_frame, sample_rate=schema.SAMPLE_RATE,
        frame_rate=schema.FRAME_RATE, mu=float(mu),
        receptive_field_frames=gen.receptive_field_frames(),
        receptive_field_halfwidth_frames=gen.receptive_field_halfwidth_frames(),
        sine_excitation=gen.excitation is not None,
        macs_per_sample=gen.macs_per_sample(), version=version,
        edge_fade_samples=module.edge_fade_samples, spectral_norm_folded=True,
        signatures={SEED_SIGNATURE: ["features", "lengths", "speaker", "seed"],
                    Z_SIGNATURE: ["features", "lengths", "speaker", "z"],
                    CHUNK_SIGNATURE: ["features", "lengths", "speaker", "seed", "start_frame",
                                      "start_cycles"],
                    **({CYCLES_SIGNATURE: ["features", "lengths"]}
                       if module.frame_cycles is not None else {})},
        z_rule="z_i = tf.random.stateless_normal([noise_dim], seed=[seed_i, 0])",
        exported_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    tmp = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    try:
        signatures = {
            SEED_SIGNATURE: module.synthesize_seed.get_concrete_function(),
            Z_SIGNATURE: module.synthesize_z.get_concrete_function(),
            CHUNK_SIGNATURE: module.synthesize_chunk.get_concrete_function(),
        }
        if module.frame_cycles is not None:
            signatures[CYCLES_SIGNATURE] = module.frame_cycles.get_concrete_function()
        tf.saved_model.save(module, tmp, signatures=signatures)
        asset_dir = os.path.join(tmp, "assets")
        tf.io.gfile.makedirs(asset_dir)
        for name, src in (assets or {}).items():
            tf.io.gfile.copy(src, os.path.join(asset_dir, name), overwrite=True)
        for name, text in (asset_texts or {}).items():
            with tf.io.gfile.GFile(os.path.join(asset_dir, name), "w") as f:
                f.write(text)
        if tflite:
            with tf.io.gfile.GFile(os.path.join(asset_dir, "gan_tts.tflite"), "wb") as f:
                f.write(tflite_model(module))
            info["tflite"] = "assets/gan_tts.tflite (inputs features, lengths, speaker, z)"
        with tf.io.gfile.GFile(os.path.join(asset_dir, EXPORT_INFO), "w") as f:
            f.write(json.dumps(info, indent=1, sort_keys=True))
        if tf.io.gfile.exists(final):  # a concurrent export took this version meanwhile
            raise ExportError(f"{final}: version {version} appeared during the export")
        publish_dir(tmp, final)
    except BaseException:
        _remove_tree(tmp)
        raise
    return ExportResult(final, version, info)


def read_export_info(version_dir: str) -> dict[str, Any]:
    """``assets/export_info.json`` of an exported version."""
    return _read_json(os.path.join(version_dir, "assets", EXPORT_INFO))

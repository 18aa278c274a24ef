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

EXPORT_INFO = "export_info.json"
QUESTIONS_NAME = "questions.hed"  # the prep's HTS question file (front end of the features)
CONFIG_NAME = "config.json"
SEED_SIGNATURE = "serving_default"
Z_SIGNATURE = "synthesize_z"
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


# --------------------------------------------------------------------------- serving module
class SynthesisModule(tf.Module):
    """The served graph: normalisation → generator (inference, frozen BN) → µ-law decode."""

    def __init__(self, gen: Generator, mean: np.ndarray, std: np.ndarray, mu: float,
                 num_speakers: int) -> None:
        super().__init__(name="gan_tts")
        # The Keras model itself is not tracked (Keras 3 models trace a default signature with
        # their own call convention when saved); its tf.Variables are, which is all the graph
        # captures.
        object.__setattr__(self, "gen", gen)
        self.generator_variables = [v.value if hasattr(v, "value") else v
                                    for v in gen.variables]
        self.feature_dim = int(gen.feature_dim)
        self.noise_dim = int(gen.noise_dim)
        self.samples_per_frame = int(gen.samples_per_frame)
        self.num_speakers = int(num_speakers)
        self.mu = float(mu)
        self.mean = tf.constant(np.asarray(mean, np.float32).reshape([self.feature_dim]))
        self.std = tf.constant(np.asarray(std, np.float32).reshape([self.feature_dim]))
        d = self.feature_dim
        self.synthesize_seed = tf.function(self._seed_fn, input_signature=[
            tf.TensorSpec(None, tf.float32, name="features"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
            tf.TensorSpec([None], tf.int32, name="speaker"),
            tf.TensorSpec([None], tf.int32, name="seed")])
        self.synthesize_z = tf.function(self._z_fn, input_signature=[
            tf.TensorSpec(None, tf.float32, name="features"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
            tf.TensorSpec([None], tf.int32, name="speaker"),
            tf.TensorSpec([None, self.noise_dim], tf.float32, name="z")])
        # Assertion-free core for converters (TFLite has no Assert op); static D.
        self.core = tf.function(self._core, input_signature=[
            tf.TensorSpec([None, None, d], tf.float32, name="features"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
            tf.TensorSpec([None], tf.int32, name="speaker"),
            tf.TensorSpec([None, self.noise_dim], tf.float32, name="z")])

    def _validate(self, features, lengths, speaker, n):
        d = self.feature_dim
        checks = [
            tf.debugging.assert_equal(
                tf.rank(features), 3,
                message=f"features: expected a float32 tensor [batch, frames, {d}] of RAW "
                        f"prep features; got rank"),
        ]
        with tf.control_dependencies(checks):
            shape = tf.shape(features)
            checks += [
                tf.debugging.assert_equal(
                    shape[-1], d,
                    message=f"features: last dimension must be feature_dim={d} (from "
                            f"manifest.json); got"),
                tf.debugging.assert_equal(
                    tf.shape(lengths)[0], shape[0],
                    message="lengths: must have one entry per example ([batch]); sizes"),
                tf.debugging.assert_equal(
                    tf.shape(speaker)[0], shape[0],
                    message="speaker: must have one entry per example ([batch]); sizes"),
                tf.debugging.assert_equal(
                    n, shape[0], message="seed/z: must have one entry per example; sizes"),
                tf.debugging.assert_non_negative(
                    lengths, message="lengths: must be >= 0"),
                tf.debugging.assert_less_equal(
                    lengths, shape[1],
                    message="lengths: must be <= the padded number of frames T"),
                tf.debugging.assert_non_negative(speaker, message="speaker: must be >= 0"),
                tf.debugging.assert_less(
                    speaker, max(self.num_speakers, 1),
                    message=f"speaker: must be < num_speakers={self.num_speakers} "
                            "(use 0 for a single-speaker model)"),
            ]
        with tf.control_dependencies(checks):
            # Not tf.ensure_shape on `features` itself: grappler propagates that shape back to
            # the input and folds the rank check away. A reshape gives the static [?, ?, D].
            return tf.ensure_shape(tf.reshape(features, tf.stack([shape[0], shape[1], d])),
                                   [None, None, d])

    def _core(self, features, lengths, speaker, z):
        x = (features - self.mean) / self.std
        spk = speaker if self.num_speakers > 1 else None
        y = self.gen(x, z, speaker=spk, lengths=lengths, training=False)[:, :, 0]
        audio = tf.clip_by_value(mulaw.decode(y, self.mu), -1.0, 1.0)
        return {"audio": audio,
                "audio_lengths": lengths * tf.constant(self.samples_per_frame, tf.int32)}

    def _z_fn(self, features, lengths, speaker, z):
        features = self._validate(features, lengths, speaker, tf.shape(z)[0])
        return self._core(features, lengths, speaker, z)

    def _seed_fn(self, features, lengths, speaker, seed):
        features = self._validate(features, lengths, speaker, tf.shape(seed)[0])
        z = seed_to_z(seed, self.noise_dim)
        return self._core(features, lengths, speaker, z)


def seed_to_z(seed: tf.Tensor, noise_dim: int) -> tf.Tensor:
    """z_i = stateless_normal([noise_dim], seed=[seed_i, 0]): per example, batch-independent."""
    def one(s):
        return tf.random.stateless_normal([noise_dim], seed=tf.stack([s, tf.zeros_like(s)]))

    return tf.map_fn(one, tf.cast(seed, tf.int32),
                     fn_output_signature=tf.TensorSpec([noise_dim], tf.float32))


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


def export_saved_model(gen: Generator, export_base: str, *, version: int | None = None,
                       mean: np.ndarray | None = None, std: np.ndarray | None = None,
                       mu: float = schema.MU, assets: dict[str, str] | None = None,
                       asset_texts: dict[str, str] | None = None,
                       info: dict[str, Any] | None = None,
                       tflite: bool = False) -> ExportResult:
    """Writes ``export_base/<version>/`` (a new integer version; never overwrites).

    The SavedModel is written to a temporary directory ``.tmp-<version>-<random>`` inside
    ``export_base`` (not an integer: TF Serving ignores it) and then published under the
    integer name (:func:`publish_dir`), so TF Serving never loads a half-written version.
    Local or any ``tf.io.gfile`` file system (``gs://``, ``ram://``). ``assets`` (name →
    source path) and ``asset_texts`` (name → text) go into ``<version>/assets/`` together with
    ``export_info.json``; with ``tflite`` a ``<version>/assets/gan_tts.tflite`` of the
    assertion-free core is written too.
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
    module = SynthesisModule(gen, mean, std, mu, gen.num_speakers)
    info = dict(info or {})
    info.update(
        feature_dim=d, noise_dim=gen.noise_dim, num_speakers=gen.num_speakers,
        samples_per_frame=gen.samples_per_frame, sample_rate=schema.SAMPLE_RATE,
        frame_rate=schema.FRAME_RATE, mu=float(mu),
        receptive_field_frames=gen.receptive_field_frames(),
        receptive_field_halfwidth_frames=gen.receptive_field_halfwidth_frames(),
        sine_excitation=gen.excitation is not None,
        macs_per_sample=gen.macs_per_sample(), version=version,
        signatures={SEED_SIGNATURE: ["features", "lengths", "speaker", "seed"],
                    Z_SIGNATURE: ["features", "lengths", "speaker", "z"]},
        z_rule="z_i = tf.random.stateless_normal([noise_dim], seed=[seed_i, 0])",
        exported_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    tmp = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    try:
        signatures = {
            SEED_SIGNATURE: module.synthesize_seed.get_concrete_function(),
            Z_SIGNATURE: module.synthesize_z.get_concrete_function(),
        }
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


def tflite_model(module: SynthesisModule) -> bytes:
    """TFLite flatbuffer of the assertion-free core (dynamic B and T, builtin ops only)."""
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.core.get_concrete_function()], module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return conv.convert()


def read_export_info(version_dir: str) -> dict[str, Any]:
    """``assets/export_info.json`` of an exported version."""
    return _read_json(os.path.join(version_dir, "assets", EXPORT_INFO))

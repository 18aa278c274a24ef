"""The served graph of an export (:mod:`tts_gan.export` writes it; the signatures are described
there): RAW features → normalisation → generator (inference, frozen BN) → µ-law decode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from tts_gan import mulaw
from tts_gan.generator import Generator, excitation_phase
from tts_gan.harmonic_noise import frame_start_cycles


class SynthesisModule(tf.Module):
    """The served graph: normalisation → generator (inference, frozen BN) → µ-law decode."""

    def __init__(self, gen: Generator, mean: np.ndarray, std: np.ndarray, mu: float,
                 num_speakers: int, edge_fade_samples: int = 0) -> None:
        super().__init__(name="gan_tts")
        self.edge_fade_samples = check_edge_fade(edge_fade_samples, gen)
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
        self.synthesize_chunk = tf.function(self._chunk_fn, input_signature=[
            tf.TensorSpec(None, tf.float32, name="features"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
            tf.TensorSpec([None], tf.int32, name="speaker"),
            tf.TensorSpec([None], tf.int32, name="seed"),
            tf.TensorSpec([None], tf.int32, name="start_frame"),
            tf.TensorSpec([None], tf.float32, name="start_cycles")])
        self.frame_cycles = None
        if gen.excitation is not None:
            self.frame_cycles = tf.function(self._cycles_fn, input_signature=[
                tf.TensorSpec(None, tf.float32, name="features"),
                tf.TensorSpec([None], tf.int32, name="lengths")])
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

    def _core(self, features, lengths, speaker, z, start_frame=None, start_cycles=None):
        x = (features - self.mean) / self.std
        spk = speaker if self.num_speakers > 1 else None
        y = self.gen(x, z, speaker=spk, lengths=lengths, training=False,
                     start_frame=start_frame, start_cycles=start_cycles)[:, :, 0]
        audio = tf.clip_by_value(mulaw.decode(y, self.mu), -1.0, 1.0)
        audio_lengths = lengths * tf.constant(self.samples_per_frame, tf.int32)
        if self.edge_fade_samples:
            audio = edge_fade(audio, audio_lengths, self.edge_fade_samples)
        return {"audio": audio, "audio_lengths": audio_lengths}

    def _z_fn(self, features, lengths, speaker, z):
        features = self._validate(features, lengths, speaker, tf.shape(z)[0])
        return self._core(features, lengths, speaker, z)

    def _seed_fn(self, features, lengths, speaker, seed):
        features = self._validate(features, lengths, speaker, tf.shape(seed)[0])
        z = seed_to_z(seed, self.noise_dim)
        return self._core(features, lengths, speaker, z)

    def _chunk_fn(self, features, lengths, speaker, seed, start_frame, start_cycles):
        n = tf.shape(seed)[0]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(start_frame)[0], n,
                message="start_frame: must have one entry per example ([batch]); sizes"),
            tf.debugging.assert_equal(
                tf.shape(start_cycles)[0], n,
                message="start_cycles: must have one entry per example ([batch]); sizes"),
            tf.debugging.assert_non_negative(start_frame, message="start_frame: must be >= 0"),
        ]
        with tf.control_dependencies(checks):
            features = self._validate(features, lengths, speaker, n)
        z = seed_to_z(seed, self.noise_dim)
        return self._core(features, lengths, speaker, z, start_frame, start_cycles)

    def _cycles_fn(self, features, lengths):
        features = self._validate(features, lengths, tf.zeros_like(lengths),
                                  tf.shape(lengths)[0])
        x = (features - self.mean) / self.std
        spec = self.gen.excitation
        _, f0, _ = excitation_phase(x, spec, 1)  # the generator's own F0 [B, T]
        per_frame = tf.concat([f0 / float(spec.frame_rate), tf.zeros_like(f0[:, :1])], axis=1)
        return {"cycles": frame_start_cycles(per_frame)}


def edge_fade(audio: tf.Tensor, lengths: tf.Tensor, n: int) -> tf.Tensor:
    """``audio`` ``[B, S]`` times a raised-cosine fade-in over each row's first ``n`` samples
    and a fade-out over its last ``n`` valid ones (``lengths`` ``[B]`` samples); zero beyond.

    Not in the paper: a serving post-process (``tts-gan-export --edge_fade_ms``). G's last
    convolutions see zero padding at the first and last sample of an input, and the shipped
    voices answer with a one-sample click there (issue 25; ``intelligibility.edge_levels``
    counts them). The ends of an utterance are pauses, so a few milliseconds of fade remove
    the click and nothing else. A streamed chunk's inner ends lie in its cropped context
    (``n`` is at most the receptive-field half-width), so streaming stays exact.
    """
    t = tf.cast(tf.range(tf.shape(audio)[1]), audio.dtype)[None, :]
    last = tf.cast(lengths, audio.dtype)[:, None] - 1.0

    def ramp(d):  # d samples from the edge: 0.5 - 0.5 cos(pi (d + 1/2) / n), 1 from d = n on
        return 0.5 - 0.5 * tf.cos(np.pi * tf.clip_by_value((d + 0.5) / n, 0.0, 1.0))

    return audio * ramp(t) * ramp(last - t)


def check_edge_fade(samples: int, gen: Generator) -> int:
    """``samples`` as a fade length: 0 (off) up to the receptive-field half-width in samples
    (longer, a streamed chunk's faded inner end would reach the audio it keeps)."""
    n = int(samples)
    most = int(gen.receptive_field_halfwidth_frames()) * int(gen.samples_per_frame)
    if n != samples or not 0 <= n <= most:
        raise ValueError(f"edge fade of {samples} samples: expected an integer from 0 (off) to "
                         f"{most} (the generator's receptive-field half-width)")
    return n


def seed_to_z(seed: tf.Tensor, noise_dim: int) -> tf.Tensor:
    """z_i = stateless_normal([noise_dim], seed=[seed_i, 0]): per example, batch-independent."""
    def one(s):
        return tf.random.stateless_normal([noise_dim], seed=tf.stack([s, tf.zeros_like(s)]))

    return tf.map_fn(one, tf.cast(seed, tf.int32),
                     fn_output_signature=tf.TensorSpec([noise_dim], tf.float32))


# TFLite variants of the served core (issue 28 item 3): name → file under ``<version>/assets/``.
# "float32" is the plain conversion; "float16" stores the weights as float16 (dequantised to
# float32 at load: float32 arithmetic); "dynamic_int8" stores int8 weights and quantises the
# activations of matmuls/convs on the fly (dynamic range); "int8" quantises weights and
# activations with ranges calibrated on a representative dataset (training features), with
# float32 kernels kept for the ops TFLite has no integer kernel for (sin, exp, log) and float32
# inputs and outputs.
TFLITE_VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
TFLITE_INPUTS = ("features", "lengths", "speaker", "z")


def tflite_file(variant: str) -> str:
    """The asset name of a TFLite variant (``gan_tts.tflite`` for float32)."""
    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"TFLite variant {variant!r}: expected one of {TFLITE_VARIANTS}")
    return "gan_tts.tflite" if variant == "float32" else f"gan_tts_{variant}.tflite"


def tflite_model(module: SynthesisModule, variant: str = "float32",
                 representative: Callable[[], Iterator[dict[str, np.ndarray]]] | None = None
                 ) -> bytes:
    """TFLite flatbuffer of the assertion-free core (dynamic B and T, builtin ops only),
    signature ``serving_default`` with inputs :data:`TFLITE_INPUTS` and outputs ``audio``,
    ``audio_lengths``. ``variant``: one of :data:`TFLITE_VARIANTS`; ``"int8"`` needs
    ``representative``: a function yielding input dicts (RAW features, as served)."""
    tflite_file(variant)  # validates the name
    if (variant == "int8") != (representative is not None):
        raise ValueError("a representative dataset is needed for, and only for, variant int8")
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.core.get_concrete_function()], module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        conv.representative_dataset = representative
    return conv.convert()

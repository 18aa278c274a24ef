"""Synthesis with an exported generator: batched padded, streaming, and the front ends.

* Batched synthesis pads utterances of different lengths into one batch; the exported graph
  masks every convolution (App. A.1) and uses frozen standing statistics (App. D), so each
  utterance's audio equals its one-by-one synthesis.
* Streaming cuts the feature sequence into chunks of ``chunk_frames`` and runs each with
  ``overlap`` frames of context on both sides (clipped at the utterance ends). An output frame
  depends only on input frames within the generator's receptive-field half-width H (46 frames
  = 230 ms for Table 2), and BN is frozen, so with ``overlap >= H`` the concatenated chunk
  centres equal one-shot synthesis (up to float summation order): long texts synthesise in
  memory bounded by the chunk size. A model with a sine excitation or a harmonic-plus-noise
  head also carries state from the utterance's start, both closed-form in the prefix: the
  fundamental's phase (the export's ``frame_cycles``) and the noise table position
  (120 · first frame); each chunk passes them to the ``synthesize_chunk`` signature.
  ``first_chunk_frames`` makes the first chunk short: the first audio comes sooner.
* Front ends (:mod:`tts_gan.synthesis_inputs`, re-exported here), all producing RAW prep
  features (the export normalises in its graph) with the same code and question file as
  ``tts-gan-prep`` (both use :mod:`tts_gan.frontend`): a prep test split, aligned HTS label
  files + F0 from a wav, or plain text → Festival (a voice of the speaker's own predicts
  durations and F0, standing in for the paper's separate duration and pitch models, §3.1;
  :func:`festival_voice`) → HTS labels + wav → labels/F0 features.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tts_gan import export as export_lib
from tts_gan import schema
from tts_gan.synthesis_inputs import (  # noqa: F401  (the synthesis API, one import away)
    FESTIVAL_VOICE,
    ProsodyMapping,
    RangeCheck,
    SynthesisError,
    Utterance,
    default_question_file,
    f0_method,
    feature_names,
    feature_range,
    features_from_labels,
    festival_render,
    festival_voice,
    frontend_version,
    prosody_mapping,
    training_front_end,
    utterances_from_labels,
    utterances_from_prep,
    utterances_from_text,
)


# ------------------------------------------------------------------------------- the model
class ExportedSynthesizer:
    """The ``serving_default`` signature of an export (base dir: highest version)."""

    def __init__(self, export_dir: str) -> None:
        self._read_info(export_dir)
        self.model = tf.saved_model.load(self.path)
        self.fn = self.model.signatures[export_lib.SEED_SIGNATURE]
        sigs = self.model.signatures
        # absent from exports before the streaming state (then None)
        self.chunk_fn = sigs.get(export_lib.CHUNK_SIGNATURE)
        self.cycles_fn = sigs.get(export_lib.CYCLES_SIGNATURE)

    def _read_info(self, export_dir: str, extra: tuple[str, ...] = ()) -> None:
        """``path`` (the version dir), ``info`` (export_info.json) and the sizes from it; every
        field read here and the ``extra`` ones must be there."""
        self.path = export_lib.latest_version_dir(export_dir)
        self.info: dict[str, Any] = export_lib.read_export_info(self.path)
        for key in ("feature_dim", "num_speakers", "samples_per_frame", "sample_rate",
                    "receptive_field_halfwidth_frames", *extra):
            if key not in self.info:
                raise SynthesisError(f"{self.path}: export_info.json has no {key!r} "
                                     "(re-export the model with this version)")
        self.feature_dim = int(self.info["feature_dim"])
        self.num_speakers = int(self.info["num_speakers"])
        self.samples_per_frame = int(self.info["samples_per_frame"])
        self.sample_rate = int(self.info["sample_rate"])
        self.halfwidth = int(self.info["receptive_field_halfwidth_frames"])

    def _batch_features(self, features: np.ndarray, where: str) -> np.ndarray:
        """``features`` as float32 ``[B, T, D]``; a SynthesisError naming ``where`` else."""
        features = np.asarray(features, np.float32)
        if features.ndim != 3 or features.shape[-1] != self.feature_dim:
            raise SynthesisError(f"features: expected [batch, frames, {self.feature_dim}] "
                                 f"({where}), got {features.shape}")
        return features

    def streaming_refusal(self) -> str:
        """Why this synthesizer cannot stream a model with a sine excitation (no
        ``synthesize_chunk``)."""
        return (f"streaming: the export {self.path} predates the {export_lib.CHUNK_SIGNATURE} "
                "signature, and its sine excitation's phase (and a harmonic-plus-noise head's "
                "noise read) runs from the start of the utterance, which chunks would restart; "
                "re-export the model with this version's tts-gan-export (BUILD_NOTES: 'Exact "
                "streaming'), or synthesise without --streaming")

    def asset(self, name: str) -> str | None:
        """Path of ``assets/<name>`` of the export (any tf.io.gfile file system), or None."""
        path = os.path.join(self.path, "assets", name)
        return path if tf.io.gfile.exists(path) else None

    def manifest(self) -> schema.Manifest | None:
        """The data manifest shipped with the export (None for random-init exports)."""
        path = self.asset(schema.MANIFEST_NAME)
        return schema.load_manifest(os.path.dirname(path)) if path else None

    def question_file(self) -> str:
        """The question file of the model's training features (:func:`default_question_file`:
        the export's ``assets/questions.hed`` first)."""
        return default_question_file(self.manifest(), self.asset(export_lib.QUESTIONS_NAME))

    def run(self, features: np.ndarray, lengths: Sequence[int], speakers: Sequence[int],
            seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """One call of the signature: padded RAW features ``[B, T, D]`` → (audio, lengths)."""
        features = self._batch_features(features, f"export {self.path}")
        out = self.fn(features=tf.constant(features),
                      lengths=tf.constant(np.asarray(lengths, np.int32)),
                      speaker=tf.constant(np.asarray(speakers, np.int32)),
                      seed=tf.constant(np.asarray(seeds, np.int32)))
        return out["audio"].numpy(), out["audio_lengths"].numpy()

    def run_chunk(self, features: np.ndarray, speaker: int, seed: int, start_frame: int,
                  start_cycles: float) -> np.ndarray:
        """One chunk ``[T, D]`` (RAW) of an utterance that starts at its frame ``start_frame``
        with the fundamental's phase ``start_cycles`` there: audio ``[120 T]``."""
        out = self.chunk_fn(features=tf.constant(np.asarray(features, np.float32)[None]),
                            lengths=tf.constant([features.shape[0]], tf.int32),
                            speaker=tf.constant([speaker], tf.int32),
                            seed=tf.constant([seed], tf.int32),
                            start_frame=tf.constant([start_frame], tf.int32),
                            start_cycles=tf.constant([start_cycles], tf.float32))
        return out["audio"].numpy()[0]

    def frame_cycles(self, features: np.ndarray) -> np.ndarray:
        """The fundamental's phase (cycles, modulo 1) at the start of each frame of one
        utterance ``[T, D]`` and after its last: ``[T + 1]`` (zeros without a sine excitation)."""
        if self.cycles_fn is None:
            return np.zeros(features.shape[0] + 1, np.float32)
        out = self.cycles_fn(features=tf.constant(np.asarray(features, np.float32)[None]),
                             lengths=tf.constant([features.shape[0]], tf.int32))
        return out["cycles"].numpy()[0]

    def check(self, utt: Utterance) -> None:
        f = utt.features
        if f.ndim != 2 or f.shape[1] != self.feature_dim or f.shape[0] == 0:
            raise SynthesisError(f"{utt.utterance_id}: features have shape {f.shape}, the "
                                 f"export {self.path} expects [frames>0, {self.feature_dim}]")
        if not 0 <= utt.speaker < max(self.num_speakers, 1):
            raise SynthesisError(f"{utt.utterance_id}: speaker {utt.speaker} is out of range "
                                 f"[0, {max(self.num_speakers, 1)})")



class TFLiteSynthesizer(ExportedSynthesizer):
    """A TFLite variant of an export (``assets/gan_tts[_VARIANT].tflite``, written by
    ``tts-gan-export --tflite`` or ``python -m tts_gan.quantize``) behind the same ``run``:
    the same inputs, z drawn from the seed as ``serving_default`` does
    (:func:`tts_gan.serving.seed_to_z`). No ``synthesize_chunk``: a model with a sine
    excitation is refused for streaming. ``num_threads``: the interpreter's CPU threads
    (default: every CPU this process may run on, as TF's own pools use; TFLite's own
    default is one thread)."""

    def __init__(self, export_dir: str, variant: str = "float32",
                 num_threads: int | None = None) -> None:
        from tts_gan.serving import TFLITE_INPUTS, tflite_file

        if num_threads is None:
            num_threads = available_cpus()
        if int(num_threads) < 1:
            raise SynthesisError(f"TFLite num_threads: {num_threads}, expected >= 1")
        self.num_threads = int(num_threads)
        self._read_info(export_dir, extra=("noise_dim",))
        try:
            name = tflite_file(variant)
        except ValueError as e:
            raise SynthesisError(str(e)) from None
        self.tflite_path = os.path.join(self.path, "assets", name)
        if not tf.io.gfile.exists(self.tflite_path):
            raise SynthesisError(f"{self.tflite_path}: no TFLite variant {variant!r} in this "
                                 "export (python -m tts_gan.quantize writes it)")
        with tf.io.gfile.GFile(self.tflite_path, "rb") as f:
            self.interpreter = tf.lite.Interpreter(model_content=f.read(),
                                                   num_threads=self.num_threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        got = sorted(self.interpreter.get_signature_list()["serving_default"]["inputs"])
        if got != sorted(TFLITE_INPUTS):
            raise SynthesisError(f"{self.tflite_path}: inputs {got}, expected "
                                 f"{sorted(TFLITE_INPUTS)}")
        self.variant = variant
        self.model, self.fn, self.chunk_fn, self.cycles_fn = None, None, None, None
        self.noise_dim = int(self.info["noise_dim"])

    def run(self, features: np.ndarray, lengths: Sequence[int], speakers: Sequence[int],
            seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        from tts_gan.serving import seed_to_z

        features = self._batch_features(features, self.tflite_path)
        z = seed_to_z(tf.constant(np.asarray(seeds, np.int32)), self.noise_dim).numpy()
        out = self.runner(features=features, lengths=np.asarray(lengths, np.int32),
                          speaker=np.asarray(speakers, np.int32), z=z)
        return out["audio"], out["audio_lengths"]

    def frame_cycles(self, features: np.ndarray) -> np.ndarray:
        raise SynthesisError(f"{self.tflite_path}: the TFLite variant has no frame_cycles")

    def streaming_refusal(self) -> str:
        return (f"streaming: {self.tflite_path} has no {export_lib.CHUNK_SIGNATURE} signature, "
                "and the model's sine excitation runs from the start of the utterance, which "
                "chunks would restart; stream with the SavedModel")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pad_batch(feats: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pads ``[T_i, D]`` arrays into ``[B, max T, D]``; returns (batch, lengths)."""
    lengths = np.array([f.shape[0] for f in feats], np.int32)
    out = np.zeros([len(feats), int(lengths.max()), feats[0].shape[1]], np.float32)
    for i, f in enumerate(feats):
        out[i, : f.shape[0]] = f
    return out, lengths


def synthesize_batched(synth: ExportedSynthesizer, utts: Sequence[Utterance],
                       seeds: Sequence[int], batch_size: int = 8
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """Yields (index, audio [120 T_i]) for every utterance, in batches of similar length.

    Sorting by length keeps the padding small; masking makes the result independent of the
    grouping (App. A.1), standing statistics of the batch (App. D).
    """
    if batch_size <= 0:
        raise SynthesisError(f"--batch_size must be positive, got {batch_size}")
    for u in utts:
        synth.check(u)
    order = sorted(range(len(utts)), key=lambda i: utts[i].features.shape[0])
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        feats, lengths = pad_batch([utts[i].features for i in idx])
        audio, audio_lengths = synth.run(feats, lengths, [utts[i].speaker for i in idx],
                                         [seeds[i] for i in idx])
        for j, i in enumerate(idx):
            yield i, audio[j, : audio_lengths[j]]


def chunk_bounds(num_frames: int, chunk_frames: int, overlap: int,
                 first_chunk_frames: int | None = None) -> list[tuple[int, int, int, int]]:
    """[(context start, chunk start, chunk end, context end)] covering ``[0, num_frames)``;
    the first chunk has ``first_chunk_frames`` (default ``chunk_frames``)."""
    first = chunk_frames if first_chunk_frames is None else first_chunk_frames
    if chunk_frames <= 0 or first <= 0 or overlap < 0:
        raise SynthesisError(f"chunk_frames and first_chunk_frames must be > 0 and overlap "
                             f">= 0, got {chunk_frames}, {first}, {overlap}")
    starts = [0, *range(first, num_frames, chunk_frames)] if num_frames > 0 else []
    out = []
    for s in starts:
        e = min(s + (first if s == 0 else chunk_frames), num_frames)
        out.append((max(0, s - overlap), s, e, min(num_frames, e + overlap)))
    return out


def synthesize_streaming(synth: ExportedSynthesizer, utt: Utterance, seed: int,
                         chunk_frames: int = 400, overlap: int | None = None,
                         first_chunk_frames: int | None = None, *,
                         carry_state: bool = True) -> Iterator[np.ndarray]:
    """Yields consecutive audio chunks of one utterance; their concatenation equals one-shot
    synthesis when ``overlap`` >= the receptive-field half-width (the default).

    Each chunk (with its context) starts at frame c of the utterance and is passed c and the
    fundamental's phase there (``synthesize_chunk``), so a sine excitation and a harmonic-plus-
    noise head continue the utterance. ``carry_state=False`` passes zeros (a control for the
    tests: every chunk restarts the phase and the noise read). An export without
    ``synthesize_chunk`` streams through ``serving_default`` if it has no sine excitation and
    is refused if it has one."""
    synth.check(utt)
    if synth.chunk_fn is None and synth.info.get("sine_excitation"):
        raise SynthesisError(synth.streaming_refusal())
    overlap = synth.halfwidth if overlap is None else int(overlap)
    spf = synth.samples_per_frame
    bounds = chunk_bounds(utt.features.shape[0], chunk_frames, overlap, first_chunk_frames)
    cycles = None
    for cs, s, e, ce in bounds:
        if synth.chunk_fn is None:
            audio, _ = synth.run(utt.features[None, cs:ce], [ce - cs], [utt.speaker], [seed])
            audio = audio[0]
        else:
            if cycles is None:  # one cheap call (no network) for the whole utterance
                cycles = synth.frame_cycles(utt.features)
            start, phase = (cs, float(cycles[cs])) if carry_state else (0, 0.0)
            audio = synth.run_chunk(utt.features[cs:ce], utt.speaker, seed, start, phase)
        yield audio[(s - cs) * spf : (e - cs) * spf]


# ------------------------------------------------------------------------------ wav output
def write_wav(path: str, chunks: Iterable[np.ndarray], sample_rate: int, *,
              overwrite: bool = False) -> int:
    """Writes 16-bit PCM chunk by chunk to a temporary file, then renames; returns samples.

    ``path`` may be on any ``tf.io.gfile`` file system (``gs://...``): the wav is written to a
    local temporary file first (its header is rewritten at the end, which needs a seekable
    file), copied under a temporary name next to ``path`` and renamed. Nothing is left under
    ``path``'s directory if writing fails. An existing ``path`` is a :class:`SynthesisError`
    (checked before and at the rename) unless ``overwrite``.
    """
    import soundfile as sf

    def refuse() -> SynthesisError:
        return SynthesisError(f"{path}: exists (pass --overwrite to replace it)")

    if not overwrite and tf.io.gfile.exists(path):
        raise refuse()
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex[:12]}-{os.path.basename(path)}")
    remote = "://" in path
    if remote:
        fd, scratch = tempfile.mkstemp(suffix=".wav", prefix="tts-gan-")
        os.close(fd)
    else:
        scratch = tmp
    n = 0
    try:
        with sf.SoundFile(scratch, "w", samplerate=sample_rate, channels=1,
                          subtype="PCM_16", format="WAV") as f:
            for c in chunks:
                c = np.clip(np.asarray(c, np.float32), -1.0, 1.0)
                f.write(c)
                n += len(c)
        if remote:
            tf.io.gfile.copy(scratch, tmp, overwrite=True)
        if not overwrite and tf.io.gfile.exists(path):  # appeared while writing
            raise refuse()
        tf.io.gfile.rename(tmp, path, overwrite=overwrite)
    except BaseException:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise
    finally:
        if remote and os.path.exists(scratch):
            os.unlink(scratch)
    return n


def run_summary(export_path: str, utterances: int, speaker: int | None, voice: str | None,
                audio_s: float, secs: float, output_dir: str, files: list[str]) -> dict:
    """``tts-gan-synthesize``'s JSON summary line: ``real_time_factor`` = synthesis / audio
    seconds (below 1 is faster than real time), ``x_real_time`` = audio / synthesis seconds
    (the speed-up)."""
    return {"export": export_path, "utterances": utterances, "speaker": speaker,
            "festival_voice": voice, "audio_seconds": audio_s, "synthesis_seconds": secs,
            "real_time_factor": secs / audio_s if audio_s > 0 else None,
            "x_real_time": audio_s / secs if secs > 0 else None,
            "output_dir": output_dir, "files": files}

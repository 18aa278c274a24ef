"""Synthesis with an exported generator: batched padded, streaming, and the front ends.

* Batched synthesis pads utterances of different lengths into one batch; the exported graph
  masks every convolution (App. A.1) and uses frozen standing statistics (App. D), so each
  utterance's audio equals its one-by-one synthesis.
* Streaming cuts the feature sequence into chunks of ``chunk_frames`` and runs each with
  ``overlap`` frames of context on both sides (clipped at the utterance ends). An output frame
  depends only on input frames within the generator's receptive-field half-width H (46 frames
  = 230 ms for Table 2), and BN is frozen, so with ``overlap >= H`` the concatenated chunk
  centres equal one-shot synthesis (up to float summation order): long texts synthesise in
  memory bounded by the chunk size.
* Front ends, all producing RAW prep features (the export normalises in its graph) with the
  same code and question file as ``tts-gan-prep`` (both use :mod:`tts_gan.frontend`): a prep
  test split, aligned HTS label files + F0 from a wav, or plain text → Festival (a voice of
  the speaker's own predicts durations and F0, standing in for the paper's separate duration
  and pitch models, §3.1; :func:`festival_voice`) → HTS labels + wav → labels/F0 features.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tts_gan import export as export_lib
from tts_gan import frontend, schema
from tts_gan.frontend import audio as audio_lib
from tts_gan.frontend import features as feat_lib
from tts_gan.frontend import festival as festival_lib
from tts_gan.frontend import labels as hts_labels
from tts_gan.frontend import pitch, questions
from tts_gan.frontend import text as text_lib


class SynthesisError(RuntimeError):
    """Bad inputs for synthesis; the message names the file or flag."""


@dataclasses.dataclass
class Utterance:
    """One synthesis request: RAW features ``[T, D]`` and its speaker id."""

    utterance_id: str
    features: np.ndarray
    speaker: int = 0


# ------------------------------------------------------------------------------- the model
class ExportedSynthesizer:
    """The ``serving_default`` signature of an export (base dir: highest version)."""

    def __init__(self, export_dir: str) -> None:
        self.path = export_lib.latest_version_dir(export_dir)
        self.info: dict[str, Any] = export_lib.read_export_info(self.path)
        self.model = tf.saved_model.load(self.path)
        self.fn = self.model.signatures[export_lib.SEED_SIGNATURE]
        self.feature_dim = int(self.info["feature_dim"])
        self.num_speakers = int(self.info["num_speakers"])
        self.samples_per_frame = int(self.info["samples_per_frame"])
        self.sample_rate = int(self.info["sample_rate"])
        self.halfwidth = int(self.info["receptive_field_halfwidth_frames"])

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
        features = np.asarray(features, np.float32)
        if features.ndim != 3 or features.shape[-1] != self.feature_dim:
            raise SynthesisError(f"features: expected [batch, frames, {self.feature_dim}] "
                                 f"(export {self.path}), got {features.shape}")
        out = self.fn(features=tf.constant(features),
                      lengths=tf.constant(np.asarray(lengths, np.int32)),
                      speaker=tf.constant(np.asarray(speakers, np.int32)),
                      seed=tf.constant(np.asarray(seeds, np.int32)))
        return out["audio"].numpy(), out["audio_lengths"].numpy()

    def check(self, utt: Utterance) -> None:
        f = utt.features
        if f.ndim != 2 or f.shape[1] != self.feature_dim or f.shape[0] == 0:
            raise SynthesisError(f"{utt.utterance_id}: features have shape {f.shape}, the "
                                 f"export {self.path} expects [frames>0, {self.feature_dim}]")
        if not 0 <= utt.speaker < max(self.num_speakers, 1):
            raise SynthesisError(f"{utt.utterance_id}: speaker {utt.speaker} is out of range "
                                 f"[0, {max(self.num_speakers, 1)})")


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


def chunk_bounds(num_frames: int, chunk_frames: int, overlap: int
                 ) -> list[tuple[int, int, int, int]]:
    """[(context start, chunk start, chunk end, context end)] covering ``[0, num_frames)``."""
    if chunk_frames <= 0 or overlap < 0:
        raise SynthesisError(f"chunk_frames must be > 0 and overlap >= 0, got {chunk_frames}, "
                             f"{overlap}")
    out = []
    for s in range(0, num_frames, chunk_frames):
        e = min(s + chunk_frames, num_frames)
        out.append((max(0, s - overlap), s, e, min(num_frames, e + overlap)))
    return out


def synthesize_streaming(synth: ExportedSynthesizer, utt: Utterance, seed: int,
                         chunk_frames: int = 400, overlap: int | None = None
                         ) -> Iterator[np.ndarray]:
    """Yields consecutive audio chunks of one utterance; their concatenation equals one-shot
    synthesis when ``overlap`` >= the receptive-field half-width (the default)."""
    synth.check(utt)
    if synth.info.get("sine_excitation"):
        raise SynthesisError(
            f"streaming: the export {synth.path} has a sine excitation whose phase runs from "
            "the start of the utterance, and chunks would restart it (not supported yet); "
            "synthesise without --streaming")
    overlap = synth.halfwidth if overlap is None else int(overlap)
    spf = synth.samples_per_frame
    for cs, s, e, ce in chunk_bounds(utt.features.shape[0], chunk_frames, overlap):
        audio, _ = synth.run(utt.features[None, cs:ce], [ce - cs], [utt.speaker], [seed])
        yield audio[0, (s - cs) * spf : (e - cs) * spf]


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


# ------------------------------------------------------------------------------ front ends
def default_question_file(manifest: schema.Manifest | None, shipped: str | None = None) -> str:
    """The question file the model's training features were computed with.

    In order: ``shipped`` (the export's ``assets/questions.hed``); the packaged default for a
    random-init export (no manifest) or data prepared without questions; the manifest's
    ``question_file`` where it exists (its ``question_file_sha256``, when recorded, must
    match); the packaged default where the manifest shows it is the same question set (equal
    ``question_file_sha256``, or for manifests without one, the default produces exactly the
    manifest's ``feature_breakdown``). Anything else is a :class:`SynthesisError`: the features
    would silently differ from the training data's (pass ``--question_file``)."""
    if shipped:
        return shipped
    default = frontend.DEFAULT_QUESTION_FILE
    if manifest is None or not manifest.extra.get("question_file"):
        return default
    recorded = str(manifest.extra["question_file"])
    want_hash = manifest.extra.get("question_file_sha256")
    if os.path.exists(recorded):
        if want_hash and questions.file_sha256(recorded) != want_hash:
            raise SynthesisError(f"the model's manifest.json: question_file {recorded} has "
                                 "changed since the data was prepared (its SHA-256 is not the "
                                 "recorded question_file_sha256); pass --question_file with "
                                 "the file the data was prepared with")
        return recorded
    if want_hash:
        same = questions.file_sha256(default) == want_hash
    else:
        blocks = feat_lib.hts_feature_breakdown(feat_lib.load_questions_for(
            default, frontend_version(manifest)))
        same = [dataclasses.asdict(b) for b in blocks] == [
            dataclasses.asdict(b) for b in manifest.feature_breakdown]
    if same:
        return default
    raise SynthesisError(f"the model's manifest.json names question_file {recorded}, which "
                         "does not exist here and is not the packaged default question set; "
                         "pass --question_file with the file the data was prepared with")


def frontend_version(manifest: schema.Manifest | None) -> int:
    """The front-end version the model's training features were computed with: the manifest's
    ``frontend_version``; 1 for ``hts`` data prepared before it was recorded (CQS not found
    → 0, centred frame fractions); the current one without a manifest (random-init export)."""
    if manifest is None:
        return feat_lib.FRONTEND_VERSION
    v = manifest.extra.get("frontend_version")
    if v is None:
        return 1 if manifest.extra.get("input_format") == "hts" else feat_lib.FRONTEND_VERSION
    try:
        return feat_lib.check_version(v)
    except ValueError as e:
        raise SynthesisError(f"the export's manifest: {e}") from None


def f0_method(manifest: schema.Manifest | None) -> str:
    """The prep's F0 estimator (the manifest's ``f0_method``; ``dio``, the prep default)."""
    return str(manifest.extra.get("f0_method") or "dio") if manifest is not None else "dio"


def training_front_end(manifest: schema.Manifest | None) -> dict[str, Any]:
    """``f0_method`` and ``frontend_version`` keyword arguments of :func:`utterances_from_text`
    and :func:`utterances_from_labels` that reproduce the model's training features."""
    return {"f0_method": f0_method(manifest), "frontend_version": frontend_version(manifest)}


def features_from_labels(lab_path: str, wav_path: str, question_file: str,
                         f0_method: str = "dio",
                         frontend_version: int = feat_lib.FRONTEND_VERSION) -> np.ndarray:
    """RAW features ``[T, D]`` of aligned HTS labels with F0 from ``wav_path``, exactly as
    ``tts-gan-prep --format=hts`` computes them (T = floor(24 kHz samples / 120)), with the
    front-end version of the model's training data (:func:`frontend_version`)."""
    try:
        labels = hts_labels.read_label_file(lab_path)
    except OSError as e:
        raise SynthesisError(f"{lab_path}: {e.strerror}") from None
    except hts_labels.LabelError as e:
        raise SynthesisError(str(e)) from None
    try:
        x, _ = audio_lib.load_audio(wav_path, schema.SAMPLE_RATE, downmix=True)
    except audio_lib.AudioError as e:
        raise SynthesisError(f"F0 source: {e}") from None
    t = len(x) // schema.SAMPLES_PER_FRAME
    if t == 0:
        raise SynthesisError(f"{wav_path}: shorter than one 5-ms frame")
    x = x[: t * schema.SAMPLES_PER_FRAME]
    try:
        qset = feat_lib.load_questions_for(question_file, frontend_version)
        ling = feat_lib.linguistic_features(labels, qset, t, version=frontend_version)
    except questions.QuestionError as e:
        raise SynthesisError(f"{lab_path}: {e}") from None
    except ValueError as e:  # an unknown front-end version
        raise SynthesisError(str(e)) from None
    try:
        pf = pitch.pitch_features(x, schema.SAMPLE_RATE, t, schema.FRAME_RATE, f0_method)
    except pitch.PitchError as e:
        raise SynthesisError(f"{wav_path}: {e}") from None
    return np.concatenate([ling, pf], axis=1).astype(np.float32)


def utterances_from_labels(pattern: str, f0_from_wav: str | None, question_file: str,
                           speaker: int = 0, *, f0_method: str = "dio",
                           frontend_version: int = feat_lib.FRONTEND_VERSION
                           ) -> list[Utterance]:
    """Label files matching ``pattern``; F0 from the wav with the same stem in ``f0_from_wav``
    (a directory or a single wav), or next to the label file. ``f0_method`` and
    ``frontend_version``: those of the training data (:func:`features_from_labels`)."""
    labs = sorted(glob.glob(pattern))
    if not labs:
        raise SynthesisError(f"--labels={pattern}: no file matches")
    utts = []
    for lab in labs:
        stem = os.path.splitext(os.path.basename(lab))[0]
        if f0_from_wav and os.path.isfile(f0_from_wav):
            wav = f0_from_wav
        else:
            folder = f0_from_wav or os.path.dirname(lab)
            wav = os.path.join(folder, stem + ".wav")
        if not os.path.exists(wav):
            raise SynthesisError(f"{lab}: no F0 source {wav} (give --f0_from_wav=DIR or FILE)")
        utts.append(Utterance(stem, features_from_labels(
            lab, wav, question_file, f0_method, frontend_version), speaker))
    return utts


FESTIVAL_VOICE = festival_lib.HTS_VOICE
_VOICE_NAME = re.compile(r"voice_[A-Za-z0-9_]+")


def festival_voice(manifest: schema.Manifest | None, speaker: int,
                   voice: str | None = None) -> str:
    """The Festival voice whose durations and F0 condition ``speaker`` speaking text.

    ``voice`` (a Festival voice function, ``voice_…``) if given; else the voice that rendered
    the speaker in the built-in corpus (``festival.VOICES`` by the manifest's speaker name:
    ``kal_diphone`` speaks with kal's prosody, not slt's); else the slt HTS voice, the
    front end's duration and pitch model for any other speaker (§3.1 uses separate duration
    and pitch models; Festival's stand in)."""
    if voice is not None:
        if not _VOICE_NAME.fullmatch(voice):
            raise SynthesisError(f"--festival_voice={voice!r}: expected a Festival voice "
                                 "function name such as voice_kal_diphone")
        return voice
    names = {i: n for n, i in manifest.speakers.items()} if manifest is not None else {}
    return festival_lib.VOICES.get(names.get(speaker, ""), FESTIVAL_VOICE)


def festival_render(texts: Sequence[str], work_dir: str,
                    voice: str = FESTIVAL_VOICE) -> list[tuple[str, str]]:
    """Festival front end: [(label path, wav path)] per text, written into ``work_dir``.

    Same Festival script as the built-in corpus (:func:`tts_gan.frontend.festival.render_batch`):
    the HTS voice predicts durations and F0; labels come from ``hts_dump_feats_string_list``.
    """
    items, out = [], []
    for i, text in enumerate(texts):
        base = os.path.join(work_dir, f"t{i:05d}")
        items.append((text, base + ".wav", base + ".lab", base + ".txt"))
        out.append((base + ".lab", base + ".wav"))
    try:
        for b in range(0, len(items), festival_lib.BATCH):
            festival_lib.render_batch(voice, items[b : b + festival_lib.BATCH])
    except festival_lib.FestivalError as e:
        raise SynthesisError(str(e)) from None
    return out


def utterances_from_text(texts: Sequence[str], ids: Sequence[str], question_file: str,
                         speaker: int = 0, *, f0_method: str = "dio",
                         frontend_version: int = feat_lib.FRONTEND_VERSION,
                         voice: str = FESTIVAL_VOICE) -> list[Utterance]:
    """Plain text → ASCII (:func:`tts_gan.frontend.text.transliterate`) → Festival (labels,
    durations and F0 of ``voice``; see :func:`festival_voice`) → RAW features
    (:func:`features_from_labels`). A text with nothing to speak is an error that quotes it
    and names its id."""
    if not texts:
        raise SynthesisError("no text to synthesise")
    ascii_texts = []
    for uid, t in zip(ids, texts, strict=True):
        a = text_lib.transliterate(t)
        if not text_lib.speakable(a):
            raise SynthesisError(f"{uid}: {t.strip()!r} has nothing to speak (no letter or "
                                 "digit" + (f" in its ASCII transliteration {a!r}"
                                            if a != t.strip() else "") + ")")
        ascii_texts.append(a)
    with tempfile.TemporaryDirectory(prefix="tts-gan-festival-") as tmp:
        rendered = festival_render(ascii_texts, tmp, voice)
        utts = []
        for uid, t, (lab, wav) in zip(ids, ascii_texts, rendered, strict=True):
            try:
                feats = features_from_labels(lab, wav, question_file, f0_method,
                                             frontend_version)
            except SynthesisError as e:  # name the text, not the temporary file
                msg = str(e).replace(tmp + os.sep, "")
                raise SynthesisError(f"{uid}: Festival's rendering of {t!r} is unusable "
                                     f"({msg})") from None
            utts.append(Utterance(uid, feats, speaker))
        return utts


def utterances_from_prep(data_dir: str, split: str = "test", speaker: int | None = None,
                         ids: Sequence[str] | None = None) -> list[Utterance]:
    """Whole utterances of a prepared split, de-normalised back to RAW features (the
    recording's own durations and F0: copy synthesis). ``ids``: only these utterance ids, in
    this order (each must be in the split); ``speaker``: this id instead of the recorded one."""
    from tts_gan.data import make_utterance_dataset

    manifest = schema.load_manifest(data_dir)
    wanted = None if ids is None else set(ids)
    utts = []
    for ex in make_utterance_dataset(data_dir, split):
        uid = ex["utterance_id"].numpy().decode("utf-8")
        if wanted is not None and uid not in wanted:
            continue
        feats = schema.denormalize(ex["features"].numpy(), manifest)
        spk = int(ex["speaker"]) if speaker is None else speaker
        utts.append(Utterance(uid, feats, spk))
    if ids is not None:
        by_id = {u.utterance_id: u for u in utts}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise SynthesisError(f"{data_dir}: the {split} split has no utterance "
                                 f"{missing[0]!r} ({len(missing)} of {len(ids)} missing)")
        return [by_id[i] for i in ids]
    if not utts:
        raise SynthesisError(f"{data_dir}: the {split} split has no utterances")
    return utts

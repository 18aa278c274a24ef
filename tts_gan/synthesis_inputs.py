"""Synthesis inputs: RAW features (the export normalises them in its graph) from a prep's
split, aligned HTS labels + F0, or plain text through Festival, with the front end of the
model's training data (:mod:`tts_gan.frontend`, the code ``tts-gan-prep`` uses); and the check
of inputs against the training data's feature range. :mod:`tts_gan.synthesis` re-exports all
of it."""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from tts_gan import frontend, schema
from tts_gan.frontend import audio as audio_lib
from tts_gan.frontend import features as feat_lib
from tts_gan.frontend import festival as festival_lib
from tts_gan.frontend import labels as hts_labels
from tts_gan.frontend import pitch, questions
from tts_gan.frontend import prosody as prosody_lib
from tts_gan.frontend import text as text_lib


class SynthesisError(RuntimeError):
    """Bad inputs for synthesis; the message names the file or flag."""


@dataclasses.dataclass
class Utterance:
    """One synthesis request: RAW features ``[T, D]`` and its speaker id."""

    utterance_id: str
    features: np.ndarray
    speaker: int = 0



# ------------------------------------------------------------------ training feature range
def feature_names(question_file: str | None, frontend_version: int, dim: int) -> list[str]:
    """Column names of the RAW features: the question file's QS/CQS names, the frame-position
    features, ``log_f0`` and ``vuv``; ``feature[i]`` where they do not add up to ``dim``
    (features corpora, no question file)."""
    if question_file:
        try:
            qset = feat_lib.load_questions_for(question_file, frontend_version)
        except (questions.QuestionError, ValueError, OSError):
            qset = None
        if qset is not None:
            names = ([f"{q.kind} {q.name}" for q in qset.questions]
                     + list(feat_lib.FRAME_FEATURE_NAMES) + list(feat_lib.PITCH_FEATURE_NAMES))
            if len(names) == dim:
                return names
    return [f"feature[{i}]" for i in range(dim)]


def feature_range(manifest: schema.Manifest | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(min, max) per column of the training split's RAW features, as the prep recorded them
    in the manifest's ``feature_range``; None where it did not (older preps)."""
    r = manifest.extra.get("feature_range") if manifest is not None else None
    if not r:
        return None
    lo, hi = np.asarray(r["min"], np.float64), np.asarray(r["max"], np.float64)
    if lo.shape != (manifest.feature_dim,) or hi.shape != lo.shape:
        raise SynthesisError(f"the model's manifest.json: feature_range has {lo.shape[0]} / "
                             f"{hi.shape[0]} values, feature_dim is {manifest.feature_dim}")
    return lo, hi


def feature_range_info(manifest: schema.Manifest, question_file: str | None) -> dict:
    """``export_info``'s ``feature_range``: the training split's per-column RAW min / max and
    the column names, for TF Serving clients to check their inputs; where the prep did not
    record a range, a note saying so (no range is made up)."""
    rng = feature_range(manifest)
    if rng is None:
        return {"note": "not recorded: the data was prepared before tts-gan-prep recorded "
                        "the training feature range"}
    names = feature_names(question_file, frontend_version(manifest), manifest.feature_dim)
    return {"split": "train", "features": "RAW (before the export's normalisation)",
            "min": rng[0].tolist(), "max": rng[1].tolist(), "columns": names}


class RangeCheck:
    """Collects, per column, the value furthest outside the training range over utterances;
    :meth:`warning` is one line naming the columns (worst first), values and ranges."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, names: Sequence[str]) -> None:
        self.lo, self.hi, self.names = lo, hi, list(names)
        self.worst: dict[int, tuple[float, float, str]] = {}  # col → (excess, value, utt id)

    def add(self, utt: Utterance) -> None:
        f = np.asarray(utt.features, np.float64)
        below, above = self.lo - f.min(axis=0), f.max(axis=0) - self.hi
        scale = np.maximum(self.hi - self.lo, 1e-6)
        for c in np.nonzero((below > 1e-6) | (above > 1e-6))[0]:
            if above[c] >= below[c]:
                excess, value = above[c] / scale[c], f[:, c].max()
            else:
                excess, value = below[c] / scale[c], f[:, c].min()
            if c not in self.worst or excess > self.worst[c][0]:
                self.worst[c] = (float(excess), float(value), utt.utterance_id)

    def warning(self, limit: int = 8) -> str | None:
        """None when every value was inside the training range."""
        if not self.worst:
            return None
        cols = sorted(self.worst, key=lambda c: -self.worst[c][0])
        parts = [f"{self.names[c]}={self.worst[c][1]:.4g} (training {self.lo[c]:.4g}.."
                 f"{self.hi[c]:.4g}; {self.worst[c][2]})" for c in cols[:limit]]
        more = f"; and {len(cols) - limit} more" if len(cols) > limit else ""
        return (f"{len(cols)} feature column(s) outside the training data's range, the model "
                f"never saw such inputs: " + "; ".join(parts) + more)



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


_F0_FLAG = re.compile(r"--f0_method[= ](\S+)")


def f0_method(manifest: schema.Manifest | None) -> str:
    """The prep's F0 estimator: the manifest's ``f0_method``; for preps that did not record it
    (before front-end version 2), the ``--f0_method`` of the manifest's recorded ``command``,
    else that prep's default, ``dio``; without a manifest (random-init export, no training
    data) ``dio``. A manifest with neither is a :class:`SynthesisError`: pass the method."""
    if manifest is None:
        return "dio"
    if manifest.extra.get("f0_method"):
        return str(manifest.extra["f0_method"])
    command = manifest.command
    if not command:
        raise SynthesisError("the model's manifest.json records neither f0_method nor the "
                             "tts-gan-prep command: the F0 method of its training features is "
                             "unknown (give f0_method explicitly: dio or harvest)")
    m = _F0_FLAG.search(str(command))
    return m.group(1).strip("'\"") if m else "dio"


def training_front_end(manifest: schema.Manifest | None) -> dict[str, Any]:
    """``f0_method`` and ``frontend_version`` keyword arguments of :func:`utterances_from_text`
    and :func:`utterances_from_labels` (which require them) that reproduce the model's
    training features."""
    return {"f0_method": f0_method(manifest), "frontend_version": frontend_version(manifest)}


def _stretch(labels: hts_labels.LabelFile, k: float) -> hts_labels.LabelFile:
    """``labels`` with every time multiplied by ``k`` (rounded to 100 ns)."""
    def r(t: int) -> int:
        return int(round(t * k))

    return hts_labels.LabelFile(
        [hts_labels.Phone(p.context, r(p.start), r(p.end), [(r(a), r(b)) for a, b in p.states])
         for p in labels.phones], labels.state_aligned)


def _stretch_pitch(pf: np.ndarray, t_new: int) -> np.ndarray:
    """Pitch features [T, 2] resampled to ``t_new`` frames (frame centres mapped linearly;
    log F0 interpolated, V/UV of the nearest frame)."""
    t = pf.shape[0]
    pos = (np.arange(t_new) + 0.5) * t / t_new - 0.5
    lf0 = np.interp(pos, np.arange(t), pf[:, 0])
    vuv = pf[np.clip(np.round(pos).astype(int), 0, t - 1), 1]
    return np.stack([lf0, vuv], axis=1).astype(np.float32)


def features_from_labels(lab_path: str, wav_path: str, question_file: str,
                         f0_method: str, frontend_version: int,
                         duration_scale: float = 1.0) -> np.ndarray:
    """RAW features ``[T, D]`` of aligned HTS labels with F0 from ``wav_path``, exactly as
    ``tts-gan-prep --format=hts`` computes them (T = floor(24 kHz samples / 120)), with the
    front-end version of the model's training data (:func:`frontend_version`).
    ``duration_scale`` k stretches every phone k times (labels' times and the F0 track;
    T becomes round(k T)): a speaker's speaking rate (:func:`prosody_mapping`)."""
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
    if duration_scale != 1.0:
        t2 = max(1, int(round(t * duration_scale)))
        labels = _stretch(labels, t2 / t)
        ling = feat_lib.linguistic_features(labels, qset, t2, version=frontend_version)
        pf = _stretch_pitch(pf, t2)
    return np.concatenate([ling, pf], axis=1).astype(np.float32)


def utterances_from_labels(pattern: str, f0_from_wav: str | None, question_file: str,
                           speaker: int = 0, *, f0_method: str, frontend_version: int
                           ) -> list[Utterance]:
    """Label files matching ``pattern``; F0 from the wav with the same stem in ``f0_from_wav``
    (a directory or a single wav), or next to the label file. ``f0_method`` and
    ``frontend_version`` (required: no default can know them): those of the model's training
    data, ``**training_front_end(manifest)`` (:func:`features_from_labels`)."""
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


@dataclasses.dataclass
class ProsodyMapping:
    """A Festival voice's F0 and durations moved onto a speaker's own statistics."""

    voice: str
    source: dict[str, float]  # the voice's (festival.VOICE_PROSODY)
    target: dict[str, float]  # the speaker's (manifest speaker_prosody)

    @property
    def duration_scale(self) -> float:
        return self.target["phone_frames_mean"] / self.source["phone_frames_mean"]

    def apply(self, features: np.ndarray) -> np.ndarray:
        return prosody_lib.map_log_f0(features, self.source, self.target)

    def summary(self) -> dict[str, float]:
        """For the JSON line: the speaker's F0 (Hz at the log mean), the voice's, the scale."""
        return {"speaker_f0_hz": float(np.exp(self.target["log_f0_mean"])),
                "voice_f0_hz": float(np.exp(self.source["log_f0_mean"])),
                "log_f0_std_ratio": self.target["log_f0_std"] / self.source["log_f0_std"],
                "duration_scale": self.duration_scale}


def prosody_mapping(manifest: schema.Manifest | None, speaker: int, voice: str | None
                    ) -> tuple[ProsodyMapping | None, str | None]:
    """(mapping, note) for ``speaker`` speaking text: None where the speaker has a Festival
    voice of its own (:func:`festival_voice`) or ``voice`` (``--festival_voice``) overrides;
    else the default voice's F0 and durations mapped onto the speaker's ``speaker_prosody``
    from the manifest. Where the manifest has no statistics for the speaker (older preps,
    ``features`` corpora), no mapping and a note saying so."""
    if voice is not None or manifest is None:
        return None, None
    names = {i: n for n, i in manifest.speakers.items()}
    name = names.get(speaker, "")
    if name in festival_lib.VOICES:
        return None, None
    stats = (manifest.extra.get("speaker_prosody") or {}).get(name)
    if not stats:
        return None, (f"speaker {speaker} ({name!r}) has no Festival voice of its own and the "
                      "export's manifest has no prosody statistics for it (prepared before "
                      "tts-gan-prep recorded them): it speaks with the F0 and durations of "
                      f"{FESTIVAL_VOICE}")
    return ProsodyMapping(FESTIVAL_VOICE, festival_lib.VOICE_PROSODY[FESTIVAL_VOICE],
                          stats), None


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
                         speaker: int = 0, *, f0_method: str, frontend_version: int,
                         voice: str = FESTIVAL_VOICE,
                         mapping: ProsodyMapping | None = None) -> list[Utterance]:
    """Plain text → ASCII (:func:`tts_gan.frontend.text.transliterate`) → Festival (labels,
    durations and F0 of ``voice``; see :func:`festival_voice`) → RAW features
    (:func:`features_from_labels`; ``f0_method`` and ``frontend_version`` are required, pass
    ``**training_front_end(manifest)``). ``mapping``: the voice's F0 and durations moved onto
    the speaker's (:func:`prosody_mapping`). A text with nothing to speak is an error that
    quotes it and names its id."""
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
                feats = features_from_labels(
                    lab, wav, question_file, f0_method, frontend_version,
                    mapping.duration_scale if mapping is not None else 1.0)
            except SynthesisError as e:  # name the text, not the temporary file
                msg = str(e).replace(tmp + os.sep, "")
                raise SynthesisError(f"{uid}: Festival's rendering of {t!r} is unusable "
                                     f"({msg})") from None
            if mapping is not None:
                feats = mapping.apply(feats)
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

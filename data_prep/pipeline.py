"""The tts-gan-prep pipeline: utterances → 2-s windows and whole utterances in TFRecords.

Paper §3.1: 24 kHz audio, 200 Hz linguistic + pitch features, 2-s training windows (shorter
utterances filtered); App. C: µ-law (µ = 65535) without quantisation.

Processing rules (README "Data preparation"):

* Audio length = 120 × T samples with T = floor(N / 120): the last partial frame (< 5 ms) is
  dropped. Labels must end within ``max_length_mismatch_ms`` of the audio's end (the last phone
  is stretched or cut to frame T); ``features`` corpora must have a frame count within the same
  tolerance, and both are cut to the shorter.
* Windows of ``window_frames`` frames start at frames 0, hop, 2·hop, ... (hop = window by
  default: non-overlapping); an utterance shorter than one window is rejected ("too short").
  Every split also gets whole-utterance records (``{split}_utterances-*``): the test ones for
  synthesis, the train/valid ones so that windows can start at any frame (§3.1 samples 2-s
  windows from utterances; the grid drops each utterance's tail).
* A check pass computes every utterance's features once (keeping its F0 in ``_shards/check/``
  for the writing pass) and rejects the unusable ones before any split is drawn.
* Splits (``split_by``) among the usable utterances: keys sorted by sha256(seed:key), the first
  round(test_fraction·n) are test, the next round(valid_fraction·n) valid (≥ 1 each when the
  fraction is > 0 and n ≥ 3), and train keeps at least one key whenever n ≥ 1.
  ``utterance``: one key per utterance (key = uid). ``sentence``: key = the uid without its
  ``SPK/`` prefix, so the same sentence rendered by several speakers (the built-in Festival
  corpus: ``kal_diphone/s0001``, ``slt_hts/s0001``) is one key and lands in one split, and n
  counts sentences (a flat corpus's uids have no prefix: the same split as ``utterance``).
* Fixed splits instead (``split_file``, a TSV of ``KEY<TAB>train|valid|test`` lines, keys as
  ``split_by`` defines them; or ``fixed_splits`` from the caller, e.g. the built-in corpus'
  ``all`` sentence set): every listed key gets its split, whether or not its utterances are
  usable; an utterance whose key is not listed is left out; a listed key that matches no
  utterance is an error naming the file and line.
* ``only_ids``: only the utterances whose ID (the uid without ``SPK/``) is listed are read (the
  built-in corpus' selected sentences, whatever else its render cache holds).
* Shard k of a split holds utterances [k·n/S, (k+1)·n/S) in uid order; each shard is written to
  a temporary name, its summary (counts, rejected, train statistics) to ``_shards/NAME.json``,
  and then renamed; a rerun skips shards whose file and summary exist for the same settings
  and input files (sizes and modification times).
  ``manifest.json`` (merged statistics) and ``rejected.tsv`` are written last.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from data_prep import corpus as corpus_lib
from data_prep import tfrecord_io
from tts_gan import frontend, mulaw, schema
from tts_gan.frontend import audio as audio_lib
from tts_gan.frontend import features as feat_lib
from tts_gan.frontend import labels as hts_labels
from tts_gan.frontend import pitch, questions
from tts_gan.frontend import prosody as prosody_lib

PIPELINE_VERSION = 2  # 2: front-end version 2 (Merlin question semantics and frame features)
FRONTEND_VERSION = feat_lib.FRONTEND_VERSION
DEFAULT_QUESTION_FILE = frontend.DEFAULT_QUESTION_FILE
SHARD_INFO_DIR = "_shards"
CHECK_DIR = "check"  # _shards/check/: the check pass's per-utterance results (and F0)
SPLIT_BY = ("utterance", "sentence")


class PrepError(RuntimeError):
    """Stops the run (bad corpus, or a bad utterance under --strict)."""


@dataclasses.dataclass
class PrepConfig:
    fmt: str  # "hts" or "features" (festival renders a corpus, then runs as "hts")
    corpus_dir: str
    output_dir: str
    question_file: str | None = None
    workers: int = 1
    strict: bool = False
    window_frames: int = schema.WINDOW_FRAMES
    hop_frames: int | None = None
    seed: int = 1234
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    utterances_per_shard: int = 64
    compression: str = ""  # "" or "GZIP"
    max_length_mismatch_ms: float = 50.0
    downmix: bool = False
    f0_method: str = "dio"
    # how labels become features (tts_gan.frontend.features): the current version, or an older
    # one to continue training a model whose features were computed with it
    frontend_version: int = FRONTEND_VERSION
    max_utterances: int = 0
    split_by: str = "utterance"  # or "sentence" (SPLIT_BY)
    split_file: str | None = None  # TSV KEY<TAB>SPLIT: fixed splits (read_split_file)
    fixed_splits: dict[str, str] | None = None  # key -> split, given by the caller
    fixed_splits_source: str = ""  # what fixed_splits is, for the manifest
    only_ids: list[str] | None = None  # read only these IDs (uid without SPK/)
    command: str = ""
    progress: bool = True

    @property
    def hop(self) -> int:
        return self.hop_frames or self.window_frames


@dataclasses.dataclass
class Task:
    utt: corpus_lib.Utterance
    split: str
    speaker_id: int


# ----------------------------------------------------------------------------- worker side
_WORKER: dict[str, Any] = {}


def _init_worker(cfg: PrepConfig, feature_dim: int, check_settings: dict[str, Any]) -> None:
    _WORKER["cfg"] = cfg
    _WORKER["dim"] = feature_dim
    _WORKER["check_settings"] = check_settings
    if cfg.fmt == "hts":
        _WORKER["questions"] = feat_lib.load_questions_for(
            cfg.question_file or DEFAULT_QUESTION_FILE, cfg.frontend_version
        )


class _RejectError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _load_checked_audio(utt: corpus_lib.Utterance, cfg: PrepConfig) -> np.ndarray:
    try:
        x, _ = audio_lib.load_audio(utt.wav, schema.SAMPLE_RATE, cfg.downmix)
    except audio_lib.AudioError as e:
        raise _RejectError(e.reason, e.detail) from None
    return x


def _check_long_enough(utt: corpus_lib.Utterance, t: int, cfg: PrepConfig) -> None:
    if t < cfg.window_frames:
        raise _RejectError(
            "too short",
            f"{utt.wav}: {t / schema.FRAME_RATE:.3f} s < "
            f"{cfg.window_frames / schema.FRAME_RATE:.3f} s window",
        )


def _features_hts(
    utt: corpus_lib.Utterance, cfg: PrepConfig, cached_pitch: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    try:
        labels = hts_labels.read_label_file(utt.side)
    except hts_labels.LabelError as e:
        raise _RejectError("bad label", str(e)) from None
    except OSError as e:
        raise _RejectError("bad label", f"{utt.side}: {e.strerror}") from None
    x = _load_checked_audio(utt, cfg)
    dur = len(x) / schema.SAMPLE_RATE
    lab_dur = labels.end_time / hts_labels.HTS_TIME_UNITS_PER_SECOND
    if abs(lab_dur - dur) * 1000.0 > cfg.max_length_mismatch_ms:
        raise _RejectError(
            "length mismatch",
            f"{utt.side}: labels end at {lab_dur:.3f} s but {utt.wav} lasts {dur:.3f} s "
            f"(tolerance {cfg.max_length_mismatch_ms:g} ms)",
        )
    t = len(x) // schema.SAMPLES_PER_FRAME
    _check_long_enough(utt, t, cfg)
    x = x[: t * schema.SAMPLES_PER_FRAME]
    try:
        ling = feat_lib.linguistic_features(labels, _WORKER["questions"], t,
                                            version=cfg.frontend_version)
    except questions.QuestionError as e:
        raise _RejectError("bad label", f"{utt.side}: {e}") from None
    if cached_pitch is not None and cached_pitch.shape == (t, feat_lib.NUM_PITCH_FEATURES):
        pf = cached_pitch  # the check pass's F0 of the same files and settings
    else:
        try:
            pf = pitch.pitch_features(x, schema.SAMPLE_RATE, t, schema.FRAME_RATE,
                                      cfg.f0_method)
        except pitch.PitchError as e:
            raise _RejectError("no voiced frames", f"{utt.wav}: {e}") from None
    return x, np.concatenate([ling, pf], axis=1)


def _features_npy(utt: corpus_lib.Utterance, cfg: PrepConfig) -> tuple[np.ndarray, np.ndarray]:
    try:
        f = np.load(utt.side, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise _RejectError("corrupt features", f"{utt.side}: {e}") from None
    dim = _WORKER["dim"]
    if f.ndim != 2 or f.shape[1] != dim or f.dtype.kind not in "fiu":
        raise _RejectError(
            "bad features shape",
            f"{utt.side}: shape {f.shape} {f.dtype}, expected [frames, {dim}]",
        )
    f = f.astype(np.float32)
    if not np.isfinite(f).all():
        raise _RejectError("nan/inf", f"{utt.side}: non-finite feature values")
    x = _load_checked_audio(utt, cfg)
    ta = len(x) // schema.SAMPLES_PER_FRAME
    tf_ = f.shape[0]
    if abs(ta - tf_) * 1000.0 / schema.FRAME_RATE > cfg.max_length_mismatch_ms:
        raise _RejectError(
            "length mismatch",
            f"{utt.side}: {tf_} frames but {utt.wav} has {ta} frames of 5 ms "
            f"(tolerance {cfg.max_length_mismatch_ms:g} ms)",
        )
    t = min(ta, tf_)
    _check_long_enough(utt, t, cfg)
    return x[: t * schema.SAMPLES_PER_FRAME], f[:t]


def _features(
    utt: corpus_lib.Utterance, cfg: PrepConfig, cached_pitch: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(audio [120 T], features [T, D]) of one utterance, or :class:`_RejectError`."""
    if not os.path.exists(utt.wav):
        raise _RejectError("missing wav", f"{utt.wav}: no such file")
    if not os.path.exists(utt.side):
        kind = "missing label" if cfg.fmt == "hts" else "missing features"
        raise _RejectError(kind, f"{utt.side}: no such file")
    if cfg.fmt == "hts":
        x, f = _features_hts(utt, cfg, cached_pitch)
    else:
        x, f = _features_npy(utt, cfg)
    if not (np.isfinite(f).all() and np.isfinite(x).all()):
        raise _RejectError("nan/inf", f"{utt.side}: non-finite values in features or audio")
    return x, f


def _check_dir(output_dir: str) -> str:
    """Local directory of the check pass's stored results: ``OUTPUT/_shards/check``; for an
    output on another file system (``gs://``) a local cache keyed by it, since the workers
    write it without TensorFlow (``$XDG_CACHE_HOME/tts-gan/prep-check/<sha256[:16]>``)."""
    if not _remote(output_dir):
        return os.path.join(output_dir, SHARD_INFO_DIR, CHECK_DIR)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(output_dir.encode()).hexdigest()[:16]
    return os.path.join(base, "tts-gan", "prep-check", key)


def _check_path(output_dir: str, uid: str) -> str:
    name = hashlib.sha256(uid.encode()).hexdigest()[:32] + ".npz"
    return os.path.join(_check_dir(output_dir), name)


def _remote(path: str) -> bool:
    """Whether ``path`` is on a non-local file system (``gs://``...): read through gfile."""
    return "://" in path


def _exists(path: str) -> bool:
    if _remote(path):
        import tensorflow as tf

        return bool(tf.io.gfile.exists(path))
    return os.path.exists(path)


def _makedirs(path: str) -> None:
    if _remote(path):
        import tensorflow as tf

        tf.io.gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def _read_text(path: str) -> str:
    """UTF-8 text of a local or ``gs://`` file; OSError if it cannot be read."""
    if _remote(path):
        import tensorflow as tf

        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                return f.read().decode("utf-8")
        except tf.errors.OpError as e:
            raise OSError(e.message) from None
    with open(path, encoding="utf-8") as f:
        return f.read()


def _file_stamp(path: str) -> list[Any]:
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def _check_key(utt: corpus_lib.Utterance) -> str:
    """Identifies a check result: the settings that decide usability and the input files."""
    key = {"settings": _WORKER["check_settings"], "uid": utt.uid,
           "wav": _file_stamp(utt.wav), "side": _file_stamp(utt.side)}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _read_check(path: str, key: str) -> dict[str, Any] | None:
    """A stored check result with this key (``pitch`` included when there is one), or None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            out = {"ok": bool(z["ok"]), "reason": str(z["reason"]), "detail": str(z["detail"])}
            if "pitch" in z.files:
                out["pitch"] = z["pitch"]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    return out


def check_task(task: Task) -> dict[str, Any]:
    """Check pass (runs in a worker): is the utterance usable? Computes its features as
    :func:`process_task` will, keeps the F0 (the costly part) in ``_shards/check/`` for it, and
    returns ``{"uid", "ok", "reason", "detail"}``; a stored result of the same files and
    settings is reused."""
    cfg: PrepConfig = _WORKER["cfg"]
    utt = task.utt
    path, key = _check_path(cfg.output_dir, utt.uid), _check_key(utt)
    res = _read_check(path, key)
    if res is None:
        res = {"ok": True, "reason": "", "detail": ""}
        arrays: dict[str, np.ndarray] = {}
        try:
            _, f = _features(utt, cfg)
            if cfg.fmt == "hts":
                arrays["pitch"] = np.ascontiguousarray(f[:, -feat_lib.NUM_PITCH_FEATURES :])
        except _RejectError as r:
            res = {"ok": False, "reason": r.reason, "detail": r.detail}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(key), ok=np.array(res["ok"]),
                     reason=np.array(res["reason"]), detail=np.array(res["detail"]), **arrays)
        os.replace(tmp, path)
    return {"uid": utt.uid, "ok": res["ok"], "reason": res["reason"], "detail": res["detail"]}


def process_task(task: Task) -> dict[str, Any]:
    """Runs in a worker: one utterance → serialised records + statistics, or a rejection."""
    cfg: PrepConfig = _WORKER["cfg"]
    utt = task.utt
    out: dict[str, Any] = {"uid": utt.uid, "split": task.split}
    checked = _read_check(_check_path(cfg.output_dir, utt.uid), _check_key(utt))
    try:
        x, f = _features(utt, cfg, checked.get("pitch") if checked else None)
    except _RejectError as r:
        out.update(ok=False, reason=r.reason, detail=r.detail)
        return out
    mu = mulaw.encode(x, schema.MU).astype(np.float32)
    t = f.shape[0]
    w, spf = cfg.window_frames, schema.SAMPLES_PER_FRAME
    records = [
        tfrecord_io.window_example(
            mu[s * spf : (s + w) * spf], f[s : s + w], task.speaker_id, utt.uid, s
        )
        for s in range(0, t - w + 1, cfg.hop)
    ]
    out.update(ok=True, records=records, frames=t, seconds=len(x) / schema.SAMPLE_RATE,
               speaker=task.speaker_id)
    out["utterance_record"] = tfrecord_io.utterance_example(mu, f, task.speaker_id, utt.uid)
    if task.split == "train":
        f64 = f.astype(np.float64)
        mean = f64.mean(axis=0)
        out["stats"] = (t, mean, ((f64 - mean) ** 2).sum(axis=0))
        out["binary"] = np.all((f == 0) | (f == 1), axis=0)
        out["range"] = (f64.min(axis=0), f64.max(axis=0))
        if cfg.fmt == "hts":
            out["prosody"] = prosody_lib.prosody_sums(f)
    return out


# ----------------------------------------------------------------------------- main side
def sentence_key(uid: str) -> str:
    """The uid without its ``SPK/`` prefix: equal for one sentence rendered by several voices."""
    return uid.split("/", 1)[1] if "/" in uid else uid


def assign_splits(
    uids: list[str], seed: int, valid_fraction: float, test_fraction: float,
    split_by: str = "utterance",
) -> dict[str, str]:
    """Deterministic split of ``uids`` by utterance or by sentence (see the module docstring)."""
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by={split_by!r}: expected one of {', '.join(SPLIT_BY)}")
    key = _split_key(split_by)
    order = sorted({key(u) for u in uids}, key=lambda k: _hash_key(seed, k))
    n = len(order)

    def count(frac: float) -> int:
        c = int(round(frac * n))
        return max(c, 1) if frac > 0 and n >= 3 else c

    n_test, n_valid = count(test_fraction), count(valid_fraction)
    excess = n_test + n_valid - (n - 1)
    if n and excess > 0:  # never leave train empty: shrink valid, then test
        cut = min(excess, n_valid)
        n_valid -= cut
        n_test -= excess - cut
    by_key = {
        k: "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
        for i, k in enumerate(order)
    }
    return {u: by_key[key(u)] for u in uids}


def read_split_file(path: str) -> tuple[dict[str, str], dict[str, int]]:
    """``({key: split}, {key: line number})`` of a split file: ``KEY<TAB>SPLIT`` lines (or two
    whitespace-separated fields), SPLIT one of train/valid/test, ``#`` comments and blank lines
    ignored. :class:`PrepError` naming the file and line for anything else."""
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        raise PrepError(f"--split_file={path}: cannot read it ({e})") from None
    splits: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if len(parts) != 2 or not all(parts):
            raise PrepError(f"{path}:{lineno}: expected 'KEY<TAB>train|valid|test', got {line!r}")
        key, split = parts
        if split not in schema.SPLITS:
            raise PrepError(f"{path}:{lineno}: unknown split {split!r} for {key!r} "
                            f"(expected {', '.join(schema.SPLITS)})")
        if key in splits:
            raise PrepError(f"{path}:{lineno}: duplicate key {key!r} (first on line "
                            f"{lines[key]})")
        splits[key], lines[key] = split, lineno
    if not splits:
        raise PrepError(f"{path}: no 'KEY<TAB>train|valid|test' line")
    return splits, lines


def _apply_fixed_splits(
    cfg: PrepConfig, utts: list[corpus_lib.Utterance], problems: list[tuple[str, str, str]]
) -> tuple[dict[str, str] | None, list[corpus_lib.Utterance], list[tuple[str, str, str]]]:
    """(fixed splits by key or None, the listed utterances, their problems); an error for a
    listed key that matches no utterance of the corpus."""
    if cfg.split_file and cfg.fixed_splits is not None:
        raise PrepError("give split_file or fixed_splits, not both")
    if cfg.split_file:
        fixed, lines = read_split_file(cfg.split_file)
        where = cfg.split_file
    elif cfg.fixed_splits is not None:
        fixed, lines, where = dict(cfg.fixed_splits), {}, "fixed splits"
    else:
        return None, utts, problems
    key = _split_key(cfg.split_by)
    known = {key(u.uid) for u in utts} | {key(p[0]) for p in problems}
    unknown = [k for k in fixed if k not in known]
    if unknown:
        k = min(unknown, key=lambda x: lines.get(x, 0))
        at = f"{where}:{lines[k]}" if k in lines else where
        hint = ("IDs without the SPK/ prefix" if cfg.split_by == "sentence"
                else "utterance ids (SPK/ID in a corpus with speaker folders)")
        raise PrepError(
            f"{at}: {k!r} matches no utterance of {cfg.corpus_dir} ({len(unknown)} unknown "
            f"key{'s' if len(unknown) > 1 else ''}; with --split_by={cfg.split_by} keys are "
            f"{hint})")
    kept = [u for u in utts if key(u.uid) in fixed]
    left = len(utts) - len(kept)
    if left:
        _say(f"{where}: {left} utterance{'s' if left > 1 else ''} whose key is not listed "
             "left out")
    return fixed, kept, [p for p in problems if key(p[0]) in fixed]


def _split_key(split_by: str) -> Callable[[str], str]:
    return sentence_key if split_by == "sentence" else (lambda u: u)


def _hash_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def merge_stats(a: tuple | None, b: tuple) -> tuple:
    """Chan et al. parallel merge of (count, mean, M2)."""
    if a is None:
        return b
    na, ma, m2a = a
    nb, mb, m2b = b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), m2a + m2b + delta**2 * (na * nb / n)


def _first_feature_dim(utts: list[corpus_lib.Utterance]) -> int:
    for u in utts:
        try:
            f = np.load(u.side, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            continue
        if f.ndim == 2 and f.shape[1] > 0:
            return int(f.shape[1])
    raise PrepError("no readable feats/*.npy file with shape [frames, D] found")


def _progress(total: int, enabled: bool, desc: str = ""):
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", desc=desc or None, disable=not enabled,
                dynamic_ncols=True, file=sys.stderr)


def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


_Shard = tuple[str, str, list[corpus_lib.Utterance], str]  # (split, name, utterances, sha)


def _outputs(cfg: PrepConfig, split: str, name: str) -> list[str]:
    """[window shard, whole-utterance shard] of the shard ``name`` of ``split``."""
    utt_name = name.replace(f"{split}-", f"{schema.utterance_prefix(split)}-", 1)
    return [os.path.join(cfg.output_dir, name), os.path.join(cfg.output_dir, utt_name)]


def _info_path(cfg: PrepConfig, name: str) -> str:
    return os.path.join(cfg.output_dir, SHARD_INFO_DIR, name + ".json")


def _load_info(cfg: PrepConfig, split: str, name: str, sha: str) -> dict[str, Any] | None:
    """The summary of a completed shard with the same settings, or None."""
    try:
        info = json.loads(_read_text(_info_path(cfg, name)))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if info.get("settings_sha256") != sha:
        return None
    if not all(_exists(p) for p in _outputs(cfg, split, name)):
        return None
    return info


def run_prep(cfg: PrepConfig) -> schema.Manifest:
    """Runs the whole pipeline (resumable); returns the manifest it wrote."""
    if cfg.fmt not in ("hts", "features"):
        raise PrepError(f"--format={cfg.fmt}: expected hts, features or festival")
    if cfg.compression not in ("", "GZIP"):
        raise PrepError(f"--compression={cfg.compression}: expected '' or GZIP")
    if cfg.split_by not in SPLIT_BY:
        raise PrepError(f"--split_by={cfg.split_by}: expected {' or '.join(SPLIT_BY)}")
    if cfg.window_frames <= 0 or cfg.hop <= 0 or cfg.utterances_per_shard <= 0:
        raise PrepError("--window_frames, --hop_frames, --utterances_per_shard must be > 0")
    try:
        utts, problems = corpus_lib.discover(cfg.corpus_dir, cfg.fmt)
    except (corpus_lib.CorpusError, OSError) as e:
        raise PrepError(str(e)) from None
    if cfg.only_ids is not None:
        ids = set(cfg.only_ids)
        utts = [u for u in utts if sentence_key(u.uid) in ids]
        problems = [p for p in problems if sentence_key(p[0]) in ids]
    fixed, utts, problems = _apply_fixed_splits(cfg, utts, problems)
    if cfg.max_utterances:
        order = sorted(utts, key=lambda u: _hash_key(cfg.seed, u.uid))
        keep = {u.uid for u in order[: cfg.max_utterances]}
        utts = [u for u in utts if u.uid in keep]
    for uid, reason, detail in problems:
        _say(f"rejected {uid} ({reason}): {detail}")
        if cfg.strict:
            raise PrepError(f"--strict: {uid} ({reason}): {detail}")

    qset = None
    if cfg.fmt == "hts":
        qfile = cfg.question_file or DEFAULT_QUESTION_FILE
        try:
            try:
                feat_lib.check_version(cfg.frontend_version)
            except ValueError as e:
                raise PrepError(f"--frontend_version: {e}") from None
            qset = feat_lib.load_questions_for(qfile, cfg.frontend_version)
        except questions.QuestionError as e:
            raise PrepError(str(e)) from None
        dim = qset.dim + feat_lib.NUM_FRAME_FEATURES + feat_lib.NUM_PITCH_FEATURES
        settings_extra = {
            "questions_sha256": questions.file_sha256(qfile),
            "frontend_version": cfg.frontend_version,
        }
    else:
        dim = _first_feature_dim(utts)
        settings_extra = {}

    speakers = {s: i for i, s in enumerate(sorted({u.speaker for u in utts}))}
    settings = {
        "pipeline_version": PIPELINE_VERSION,
        "format": cfg.fmt,
        "dim": dim,
        "window_frames": cfg.window_frames,
        "hop_frames": cfg.hop,
        "compression": cfg.compression,
        "max_length_mismatch_ms": cfg.max_length_mismatch_ms,
        "downmix": cfg.downmix,
        "f0_method": cfg.f0_method,
        "speakers": speakers,
        "split_by": cfg.split_by,
        **settings_extra,
    }

    _makedirs(os.path.join(cfg.output_dir, SHARD_INFO_DIR))
    # Check pass: which utterances are usable (features computable, long enough); the splits
    # are assigned among those only, so a bad file never empties a split it was hashed into.
    check_settings = {k: v for k, v in settings.items()
                      if k not in ("speakers", "split_by", "hop_frames", "compression")}
    bar = _progress(len(utts), cfg.progress, "check")
    usable: list[corpus_lib.Utterance] = []
    unusable: list[list[str]] = []
    checks = _run_tasks([Task(u, "", 0) for u in utts], cfg, dim, check_settings, check_task)
    try:
        for u, res in zip(utts, checks, strict=True):
            bar.update(1)
            if res["ok"]:
                usable.append(u)
                continue
            line = f"rejected {u.uid} ({res['reason']}): {res['detail']}"
            _say(line)
            if cfg.strict:
                raise PrepError(f"--strict: {line}")
            unusable.append([u.uid, res["reason"], res["detail"]])
    finally:
        bar.close()
        checks.close()
    if fixed is not None:
        key_of = _split_key(cfg.split_by)
        splits = {u.uid: fixed[key_of(u.uid)] for u in usable}
    else:
        splits = assign_splits([u.uid for u in usable], cfg.seed, cfg.valid_fraction,
                               cfg.test_fraction, cfg.split_by)
    num_keys = len({_split_key(cfg.split_by)(u) for u in splits})

    shards: list[_Shard] = []
    for split in schema.SPLITS:
        su = [u for u in usable if splits[u.uid] == split]
        if not su:
            continue
        ns = max(1, math.ceil(len(su) / cfg.utterances_per_shard))
        for k in range(ns):
            part = su[k * len(su) // ns : (k + 1) * len(su) // ns]
            # a changed input file (size or mtime) rewrites its shard on a rerun
            inputs = [[*_file_stamp(u.wav)[1:], *_file_stamp(u.side)[1:]] for u in part]
            key = json.dumps({**settings, "uids": [u.uid for u in part], "inputs": inputs},
                             sort_keys=True)
            sha = hashlib.sha256(key.encode()).hexdigest()
            shards.append((split, schema.shard_name(split, k, ns), part, sha))

    infos: dict[str, dict[str, Any]] = {}
    pending: list[_Shard] = []
    for shard in shards:
        info = _load_info(cfg, shard[0], shard[1], shard[3])
        if info is None:
            pending.append(shard)
        else:
            infos[shard[1]] = info
    if infos:
        _say(f"resuming: {len(infos)} of {len(shards)} shards already complete")

    tasks = [Task(u, split, speakers[u.speaker]) for split, _, part, _ in pending for u in part]
    bar = _progress(len(tasks), cfg.progress, "write")
    results = _run_tasks(tasks, cfg, dim, check_settings, process_task)
    try:
        for split, name, part, sha in pending:
            infos[name] = _write_shard(cfg, split, name, part, sha, results, bar, dim)
    finally:
        bar.close()
        results.close()
    return _write_manifest(cfg, shards, infos, [*map(list, problems), *unusable], dim, qset,
                           speakers, num_keys)


def _write_shard(
    cfg: PrepConfig,
    split: str,
    name: str,
    part: list[corpus_lib.Utterance],
    sha: str,
    results: Iterator[dict[str, Any]],
    bar: Any,
    dim: int,
) -> dict[str, Any]:
    """Consumes the results of ``part``; writes tmp file(s), the summary, then renames."""
    writers = [tfrecord_io.ShardWriter(p, cfg.compression) for p in _outputs(cfg, split, name)]
    info: dict[str, Any] = {
        "settings_sha256": sha, "split": split, "utterances": 0, "windows": 0,
        "seconds": 0.0, "frames": 0, "rejected": [],
    }
    stats = None
    binary = np.ones(dim, bool)
    lo, hi = np.full(dim, np.inf), np.full(dim, -np.inf)
    prosody: dict[int, np.ndarray] = {}
    try:
        for _ in part:
            res = next(results)
            bar.update(1)
            if not res["ok"]:
                line = f"rejected {res['uid']} ({res['reason']}): {res['detail']}"
                _say(line)
                if cfg.strict:
                    raise PrepError(f"--strict: {line}")
                info["rejected"].append([res["uid"], res["reason"], res["detail"]])
                continue
            for rec in res["records"]:
                writers[0].write(rec)
            writers[1].write(res["utterance_record"])
            info["utterances"] += 1
            info["windows"] += len(res["records"])
            info["seconds"] += res["seconds"]
            info["frames"] += res["frames"]
            if split == "train":
                stats = merge_stats(stats, res["stats"])
                binary &= res["binary"]
                lo, hi = np.minimum(lo, res["range"][0]), np.maximum(hi, res["range"][1])
                if "prosody" in res:
                    spk = int(res["speaker"])
                    prosody[spk] = prosody.get(spk, 0) + res["prosody"]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    if stats is not None:
        info["stats"] = {
            "count": int(stats[0]),
            "mean": stats[1].tolist(),
            "m2": stats[2].tolist(),
            "binary": binary.tolist(),
            "min": lo.tolist(),
            "max": hi.tolist(),
            "prosody": {str(k): v.tolist() for k, v in sorted(prosody.items())},
        }
    for w in writers:
        w.close()
    tfrecord_io.atomic_write_text(_info_path(cfg, name), json.dumps(info, sort_keys=True))
    for w in writers:
        w.publish()
    return info


def _run_tasks(
    tasks: list[Task], cfg: PrepConfig, dim: int, check_settings: dict[str, Any],
    fn: Callable[[Task], dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Ordered results of ``fn`` (:func:`check_task` or :func:`process_task`) over ``tasks``
    (in-process for 1 worker, else a spawn pool)."""
    if cfg.workers <= 1 or len(tasks) <= 1:
        _init_worker(cfg, dim, check_settings)
        for t in tasks:
            yield fn(t)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork after TensorFlow is loaded
    with ctx.Pool(cfg.workers, initializer=_init_worker,
                  initargs=(cfg, dim, check_settings)) as pool:
        yield from bounded_imap(pool, fn, tasks, PENDING_PER_WORKER * cfg.workers)


# Results computed ahead of the shard writer, per worker: enough to keep every worker busy
# while the writer compresses, few enough that memory does not grow with the corpus.
PENDING_PER_WORKER = 4


def bounded_imap(pool: Any, fn: Callable[[Any], Any], items: Iterable[Any],
                 max_pending: int) -> Iterator[Any]:
    """``pool.imap(fn, items)`` (results in order, a worker's exception raised at its item)
    with at most ``max_pending`` items submitted whose results are not yet consumed.

    ``Pool.imap`` submits every item at once and keeps each result until the consumer reaches
    it, so when the single writer (GZIP, ~1 MB of features per 2-s window) is slower than the
    workers, the finished results pile up: 13.4 GB resident for 6.8 h of audio.
    """
    if max_pending < 1:
        raise ValueError(f"max_pending must be >= 1, got {max_pending}")
    pending: collections.deque = collections.deque()
    for item in items:
        pending.append(pool.apply_async(fn, (item,)))
        if len(pending) >= max_pending:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _fixed_source(cfg: PrepConfig) -> str:
    """The manifest's description of fixed splits: the split file and its sha256, or the
    caller's description; "" for the hash split."""
    if cfg.split_file:
        digest = hashlib.sha256(_read_text(cfg.split_file).encode()).hexdigest()
        return f"--split_file={cfg.split_file} (sha256 {digest})"
    if cfg.fixed_splits is not None:
        return cfg.fixed_splits_source or "fixed splits"
    return ""


def _write_manifest(
    cfg: PrepConfig,
    shards: list[_Shard],
    infos: dict[str, dict[str, Any]],
    problems: list[list[str]],
    dim: int,
    qset: questions.QuestionSet | None,
    speakers: dict[str, int],
    num_keys: int,
) -> schema.Manifest:
    """Merges the shard summaries; writes rejected.tsv, then manifest.json (last)."""
    counts: dict[str, dict[str, int]] = {
        s: {
            "shards": 0, "utterances": 0, "windows": 0, "frames": 0,
            "utterance_shards": 0, "utterance_records": 0,
        }
        for s in schema.SPLITS
    }
    seconds: dict[str, float] = dict.fromkeys(schema.SPLITS, 0.0)
    rejected = [list(p) for p in problems]
    stats = None
    binary = np.ones(dim, bool)
    # training range per column and per-speaker prosody sums; None when a reused shard was
    # written before they were recorded (the manifest then says so rather than guess)
    lo: np.ndarray | None = np.full(dim, np.inf)
    hi: np.ndarray | None = np.full(dim, -np.inf)
    prosody: dict[int, np.ndarray] | None = {}
    for split, name, _, _ in shards:
        info = infos[name]
        c = counts[split]
        c["shards"] += 1
        for k in ("utterances", "windows", "frames"):
            c[k] += info[k]
        c["utterance_shards"] += 1  # {split}_utterances shard k: one record per utterance
        c["utterance_records"] += info["utterances"]
        seconds[split] += info["seconds"]
        rejected += info["rejected"]
        if "stats" in info:
            s = info["stats"]
            stats = merge_stats(stats, (s["count"], np.array(s["mean"]), np.array(s["m2"])))
            binary &= np.array(s["binary"], bool)
            if "min" in s and lo is not None and hi is not None:
                lo, hi = np.minimum(lo, s["min"]), np.maximum(hi, s["max"])
            else:
                lo = hi = None
            if "prosody" in s and prosody is not None:
                for k, v in s["prosody"].items():
                    prosody[int(k)] = prosody.get(int(k), 0) + np.array(v)
            else:
                prosody = None
    rejected.sort(key=lambda r: r[0])
    by_reason: dict[str, int] = {}
    for r in rejected:
        by_reason[r[1]] = by_reason.get(r[1], 0) + 1
    lines = ["utterance_id\treason\tdetail"] + [
        "\t".join(x.replace("\t", " ").replace("\n", " ") for x in r) for r in rejected
    ]
    rejected_path = os.path.join(cfg.output_dir, schema.REJECTED_NAME)
    tfrecord_io.atomic_write_text(rejected_path, "\n".join(lines) + "\n")
    if stats is None or counts["train"]["windows"] == 0:
        raise PrepError(
            f"no training window was produced ({len(rejected)} utterances rejected, "
            f"see {rejected_path})"
        )
    if qset is not None:
        blocks = feat_lib.hts_feature_breakdown(qset)
    else:
        blocks = feat_lib.blocks_from_binary_mask(binary)
    is_bin = np.zeros(dim, bool)
    for b in blocks:
        if b.kind == schema.BINARY:
            is_bin[b.start : b.start + b.size] = True
    count, mean, m2 = stats
    std = np.sqrt(m2 / count)
    std = np.where(std < 1e-6, 1.0, std)
    mean = np.where(is_bin, 0.0, mean)
    std = np.where(is_bin, 1.0, std)
    manifest = schema.Manifest(
        format_version=schema.FORMAT_VERSION,
        feature_dim=dim,
        feature_breakdown=blocks,
        sample_rate=schema.SAMPLE_RATE,
        frame_rate=schema.FRAME_RATE,
        mu=schema.MU,
        window_frames=cfg.window_frames,
        hop_frames=cfg.hop,
        compression=cfg.compression,
        counts=counts,
        hours={k: v / 3600.0 for k, v in seconds.items()},
        speakers=speakers,
        num_speakers=len(speakers),
        mean=[float(x) for x in mean],
        std=[float(x) for x in std],
        rejected=len(rejected),
        command=cfg.command,
        extra={
            "input_format": cfg.fmt,
            # how labels became features (tts_gan.frontend.features.FRONTEND_VERSION): serving
            # computes features of new labels the same way
            "frontend_version": cfg.frontend_version if qset else None,
            "f0_method": cfg.f0_method if qset else None,
            "question_file": (
                os.path.abspath(cfg.question_file or DEFAULT_QUESTION_FILE) if qset else None
            ),
            # identifies the question set where the path does not exist (another machine)
            "question_file_sha256": (
                questions.file_sha256(cfg.question_file or DEFAULT_QUESTION_FILE) if qset
                else None
            ),
            "rejected_by_reason": by_reason,
            # per column, RAW values of the train split: synthesis warns outside it
            "feature_range": ({"split": "train", "min": lo.tolist(), "max": hi.tolist()}
                              if lo is not None and hi is not None else None),
            # per speaker name, from the train split (hts/festival features): synthesis maps
            # a Festival voice's F0 to a speaker that has no Festival voice of its own
            "speaker_prosody": ({n: prosody_lib.speaker_prosody(prosody[i])
                                 for n, i in speakers.items() if i in prosody}
                                if qset is not None and prosody is not None else None),
            "seed": cfg.seed,
            "splits": {
                # the hash split's fractions (None: a split file decided every split)
                "valid_fraction": None if cfg.split_file else cfg.valid_fraction,
                "test_fraction": None if cfg.split_file else cfg.test_fraction,
                "split_by": cfg.split_by,
                # usable utterances (split_by=utterance) or sentences the splits were drawn from
                "keys": num_keys,
                # where fixed splits came from ("" : sha256(seed:key) order)
                "fixed": _fixed_source(cfg),
            },
            "test_utterance_files": schema.shard_pattern(schema.TEST_UTTERANCES),
            "utterance_files": {
                s: schema.shard_pattern(schema.utterance_prefix(s)) for s in schema.SPLITS
            },
        },
    )
    tfrecord_io.atomic_write_text(
        os.path.join(cfg.output_dir, schema.MANIFEST_NAME),
        json.dumps(manifest.to_json(), indent=1, sort_keys=True) + "\n",
    )
    return manifest

"""The evaluation protocol of §4.2 / App. B.3 on an exported generator and prepared data.

2N real 2-s windows (x_i, c_i) are drawn from a split; the exported generator synthesises
G(c_i, z_i) for i ≤ N; the representations DS (Eq. 4, :mod:`tts_gan.extractors`) of the
generated clips are compared with those of x_1..x_N (same conditioning: cFDSD, cKDSD, Eq. 9–10)
and of x_{N+1}..x_2N (independent conditioning: FDSD, KDSD, Eq. 11–12), with the error bars of
the authors' released code (:mod:`tts_gan.metrics`). The paper uses N = 10,000.

* The 2N windows are a seeded random sample balanced over speakers, the two halves with the
  same speaker mix (:func:`speaker_balanced_pairs`): prepared splits are sorted by SPK/ID, so
  taking windows in file order would make x_1..x_N and x_{N+1}..x_2N different speakers and
  FDSD/KDSD would measure the speaker difference.
* Streaming: windows are read, synthesised, passed through the extractor and reduced to their
  d-dim representation one batch at a time; memory holds the N × d and 2N × d representation
  matrices plus one batch, whatever N is (``benchmarks/eval_memory.py``).
* Inputs are checked before any window is read (:func:`check_inputs`).
* §4.1's MOS has no automatic counterpart; :func:`quality_report` gives DNSMOS P.808 / P.835
  (a predicted MOS) and the word error rate of an offline recogniser (pocketsphinx) on whole
  held-out utterances and on the model's resynthesis of them, as stand-ins.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from absl import logging

from tts_gan import extractors as extractors_lib
from tts_gan import metrics, mulaw, schema
from tts_gan.eval_report import (  # noqa: F401  (the report's files and table; re-exported)
    EvaluationError,
    format_table,
    load_features,
    save_features,
    to_json_safe,
    write_report,
)
from tts_gan.eval_sampling import (  # noqa: F401  (re-exported)
    balanced_counts,
    speaker_balanced_pairs,
    speaker_balanced_subset,
)


# ------------------------------------------------------------------------------ reading
def _shards(data_dir: str, split: str) -> list[str]:
    import tensorflow as tf

    pattern = os.path.join(data_dir, schema.shard_pattern(split))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise EvaluationError(f"{pattern}: no window shards (the {split!r} split of a "
                              "tts-gan-prep output was expected)")
    return files


def _records(data_dir: str, split: str, manifest: schema.Manifest):
    import tensorflow as tf

    return tf.data.TFRecordDataset(_shards(data_dir, split),
                                   compression_type=manifest.compression or None)


def window_speakers(data_dir: str, split: str, manifest: schema.Manifest) -> np.ndarray:
    """Speaker id of every window of ``split``, in file order (reads only that field)."""
    import tensorflow as tf

    spec = {schema.SPEAKER: tf.io.FixedLenFeature([], tf.int64)}
    # small batches: a serialised 2-s window is ~1.1 MB (567-dim features)
    out = [b[schema.SPEAKER].numpy() for b in _records(data_dir, split, manifest).batch(
        16).map(lambda s: tf.io.parse_example(s, spec))]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def iter_windows(data_dir: str, split: str, manifest: schema.Manifest,
                 wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, int]]:
    """(file index, linear audio [samples], RAW features [T, D], speaker) of the windows whose
    file index is in ``wanted``, streamed in file order (one record in memory at a time)."""
    import tensorflow as tf

    spec = schema.window_parse_spec(manifest.feature_dim, manifest.window_frames)
    keep = np.zeros(int(np.max(wanted)) + 1 if len(wanted) else 0, bool)
    keep[wanted] = True
    for i, rec in enumerate(_records(data_dir, split, manifest)):
        if i >= len(keep):
            break
        if not keep[i]:
            continue
        ex = tf.io.parse_single_example(rec, spec)
        audio = mulaw.decode(ex[schema.AUDIO].numpy(), manifest.mu).astype(np.float32)
        feats = ex[schema.FEATURES].numpy().reshape(manifest.window_frames,
                                                    manifest.feature_dim)
        yield i, audio, feats, int(ex[schema.SPEAKER])


# ------------------------------------------------------------------------------ checks
@dataclasses.dataclass
class Inputs:
    """What :func:`check_inputs` established: the data manifest, the export and speaker map."""

    manifest: schema.Manifest
    synth: Any  # tts_gan.synthesis.ExportedSynthesizer
    speaker_map: dict[int, int]  # data speaker id → export speaker id
    windows: int  # windows in the split (from the manifest)


def check_inputs(export_dir: str, data_dir: str, split: str,
                 extractor: extractors_lib.Extractor | None = None) -> Inputs:
    """Loads and cross-checks the export and the data before any window is read; raises
    :class:`EvaluationError` with one line naming the flag and what was expected."""
    import tensorflow as tf

    from tts_gan import export as export_lib
    from tts_gan import synthesis

    try:
        manifest = schema.load_manifest(data_dir)
    except schema.ManifestError as e:
        raise EvaluationError(f"--data_dir={data_dir}: {e}") from None
    if split not in schema.SPLITS:
        raise EvaluationError(f"--split={split!r}: expected one of {', '.join(schema.SPLITS)}")
    try:
        version = export_lib.latest_version_dir(export_dir)
        info = export_lib.read_export_info(version)
    except (export_lib.ExportError, OSError, ValueError) as e:
        raise EvaluationError(f"--export_dir={export_dir}: not a tts-gan-export output "
                              f"({e})") from None
    if int(info.get("feature_dim", -1)) != manifest.feature_dim:
        raise EvaluationError(
            f"--export_dir={version} takes {info.get('feature_dim')}-dim features but "
            f"--data_dir={data_dir} has {manifest.feature_dim} (manifest.json feature_dim): "
            "evaluate a model on the data it was trained for")
    if int(info.get("sample_rate", manifest.sample_rate)) != manifest.sample_rate:
        raise EvaluationError(f"--export_dir={version} writes {info['sample_rate']} Hz audio "
                              f"but --data_dir={data_dir} has {manifest.sample_rate} Hz")
    if extractor is not None:
        try:
            extractor.check_clip(manifest.window_samples)
        except ValueError as e:
            raise EvaluationError(f"--data_dir={data_dir} windows of "
                                  f"{manifest.window_samples} samples: {e}") from None
    try:
        synth = synthesis.ExportedSynthesizer(export_dir)
    except (export_lib.ExportError, OSError, ValueError, KeyError, tf.errors.OpError) as e:
        raise EvaluationError(f"--export_dir={export_dir}: cannot load the SavedModel "
                              f"({e})") from None
    return Inputs(manifest, synth, speaker_map(manifest, synth), _count(manifest, split))


def _count(manifest: schema.Manifest, split: str) -> int:
    return int(manifest.counts.get(split, {}).get("windows", 0))


def speaker_map(manifest: schema.Manifest, synth: Any) -> dict[int, int]:
    """Data speaker id → export speaker id: by name when the export ships its training
    manifest, else the same id; a single-speaker export takes every speaker as 0."""
    if synth.num_speakers <= 1:
        return {i: 0 for i in manifest.speakers.values()}
    em = synth.manifest()
    if em is None:
        bad = sorted(i for i in manifest.speakers.values() if i >= synth.num_speakers)
        if bad:
            raise EvaluationError(f"--export_dir={synth.path} has {synth.num_speakers} "
                                  f"speakers but the data has speaker id {bad[0]}")
        return {i: i for i in manifest.speakers.values()}
    missing = sorted(set(manifest.speakers) - set(em.speakers))
    if missing:
        raise EvaluationError(f"--export_dir={synth.path} was trained without speaker "
                              f"{missing[0]!r} of the data (it has {sorted(em.speakers)})")
    return {i: em.speakers[name] for name, i in manifest.speakers.items()}


# ------------------------------------------------------------------------------ features
@dataclasses.dataclass
class Features:
    """Representations: ``generated`` X^G [N, d]; ``real`` [2N, d] (rows < N: the same
    conditioning as ``generated``, row i ↔ row i; rows ≥ N: independent conditioning)."""

    generated: np.ndarray
    real: np.ndarray
    speakers_first: np.ndarray
    speakers_second: np.ndarray


def compute_features(inputs: Inputs, data_dir: str, split: str,
                     extractor: extractors_lib.Extractor, num_samples: int, *,
                     seed: int = 0, batch_size: int = 8, progress: bool = True) -> Features:
    """Streams the App. B.3 sample through the export and the extractor (module docstring)."""
    from tqdm import tqdm

    speakers = window_speakers(data_dir, split, inputs.manifest)
    available = sum(int(np.sum(speakers == s)) // 2 for s in np.unique(speakers))
    n = min(num_samples, available)
    if n < 2 * metrics.NUM_SPLITS:
        raise EvaluationError(f"--data_dir={data_dir}: the {split!r} split has "
                              f"{len(speakers)} windows, which give N = {n} pairs; the "
                              f"protocol needs N ≥ {2 * metrics.NUM_SPLITS}")
    if n < num_samples:
        logging.warning("%s: %d windows in %r allow N = %d (requested %d)", data_dir,
                        len(speakers), split, n, num_samples)
    first, second = speaker_balanced_pairs(speakers, n, seed)
    # file index → (half, position); position i of the first half uses z seed `seed + i`
    slot = {int(j): (0, p) for p, j in enumerate(first)}
    slot.update({int(j): (1, p) for p, j in enumerate(second)})
    d = extractor.dim
    gen = np.full((n, d), np.nan)
    real = np.full((2 * n, d), np.nan)
    pending: list[list[tuple[int, np.ndarray, np.ndarray, int]]] = [[], []]
    bar = tqdm(total=2 * n, desc=f"{extractor.name} features", unit="clip",
               disable=None if progress else True, leave=False)  # None: only on a terminal

    def flush(half: int) -> None:
        items = pending[half]
        if not items:
            return
        pos = np.array([p for p, _, _, _ in items])
        audio = np.stack([a for _, a, _, _ in items])
        real[pos + half * n] = _extract(extractor, audio)
        if half == 0:
            feats = np.stack([f for _, _, f, _ in items])
            spk = [inputs.speaker_map[s] for _, _, _, s in items]
            fake, _ = inputs.synth.run(feats, [feats.shape[1]] * len(items), spk,
                                       (seed + pos).tolist())
            gen[pos] = _extract(extractor, fake)
        bar.update(len(items))
        pending[half] = []

    wanted = np.sort(np.concatenate([first, second]))
    for i, audio, feats, spk in iter_windows(data_dir, split, inputs.manifest, wanted):
        half, pos = slot[i]
        pending[half].append((pos, audio, feats, spk))
        if len(pending[half]) >= batch_size:
            flush(half)
    flush(0)
    flush(1)
    bar.close()
    if np.isnan(gen).any() or np.isnan(real).any():
        raise EvaluationError(f"--data_dir={data_dir}: fewer {split!r} windows were read "
                              f"than {os.path.join(data_dir, schema.MANIFEST_NAME)} lists")
    return Features(gen, real, speakers[first], speakers[second])


def _extract(extractor: extractors_lib.Extractor, audio: np.ndarray) -> np.ndarray:
    out = np.asarray(extractor(np.clip(audio, -1.0, 1.0)), np.float64)
    if out.shape != (len(audio), extractor.dim) or not np.all(np.isfinite(out)):
        raise EvaluationError(f"{extractor.name} extractor returned shape {out.shape} (or "
                              f"non-finite values) for {len(audio)} clips, expected "
                              f"[{len(audio)}, {extractor.dim}]")
    return out


# ------------------------------------------------------------------------------ distances
def distances(generated: np.ndarray, real: np.ndarray, names: Sequence[str],
              num_splits: int = metrics.NUM_SPLITS, max_block: int = metrics.MAX_BLOCK
              ) -> dict[str, Any]:
    """The four distances of Eq. 9–12 and the natural-speech row from representations
    (``real`` = 2N rows, the first N with ``generated``'s conditioning), with the warnings
    they raised (rank deficiency, imaginary residue)."""
    generated, real = np.asarray(generated, np.float64), np.asarray(real, np.float64)
    n = len(generated)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise EvaluationError(f"representations: generated {generated.shape} and real "
                              f"{real.shape} must be [N, d] and [2N, d]")
    if len(real) != 2 * n:
        raise EvaluationError(f"representations: {len(real)} real rows for N = {n} generated; "
                              "expected 2N (the first N with the generated clips' "
                              "conditioning, then N with independent conditioning)")
    f, cf, k, ck = names
    notes: list[str] = []

    def run(label: str, fn: Callable[..., metrics.DistanceEstimate], *args: Any
            ) -> metrics.DistanceEstimate:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = fn(*args)
        notes.extend(f"{label}: {w.message}" for w in caught)
        return est

    fake_vs_indep, fake_vs_same = (generated, real[n:]), (generated, real[:n])
    model = {f: run(f, metrics.frechet_splits, *fake_vs_indep, num_splits),
             cf: run(cf, metrics.frechet_splits, *fake_vs_same, num_splits),
             k: run(k, metrics.mmd2_blocks, *fake_vs_indep, max_block),
             ck: run(ck, metrics.mmd2_blocks, *fake_vs_same, max_block)}
    nat_f = run(f"natural speech {f}", metrics.frechet_splits, real[:n], real[n:], num_splits)
    nat_k = run(f"natural speech {k}", metrics.mmd2_blocks, real[:n], real[n:], max_block)
    for note in notes:
        logging.warning("%s", note)
    return {"N": n, "dim": int(generated.shape[1]), "num_splits": num_splits,
            "max_block": max_block, "names": list(names),
            "model": {key: est.to_json() for key, est in model.items()},
            "natural_speech": {f: nat_f.to_json(), k: nat_k.to_json(), cf: None, ck: None},
            "warnings": notes}


# ------------------------------------------------------------------------------ quality
def quality_items(data_dir: str, corpus_dir: str, max_per_speaker: int = 0) -> list[Any]:
    """The held-out utterances with their recording and text (checked: one clear error)."""
    from tts_gan import intelligibility

    skip = "; --noquality skips the MOS / WER rows"
    if not os.path.isdir(corpus_dir):
        raise EvaluationError(f"--corpus_dir={corpus_dir}: no such directory (the corpus the "
                              f"data was prepared from: wav/SPK/ID.wav, text/SPK/ID.txt{skip})")
    try:
        items = intelligibility.corpus_items(data_dir, corpus_dir, max_per_speaker)
    except (intelligibility.IntelligibilityError, schema.ManifestError) as e:
        raise EvaluationError(f"--corpus_dir={corpus_dir}: {e}{skip}") from None
    if not items:
        raise EvaluationError(f"--data_dir={data_dir}: no held-out utterances{skip}")
    return items


def quality_report(synth: Any, data_dir: str, items: Sequence[Any], speaker_ids: dict[int, int],
                   seed: int = 0, batch_size: int = 4) -> dict[str, Any]:
    """Automatic stand-ins for §4.1's MOS and an intelligibility measure on whole held-out
    utterances with known text: DNSMOS P.808 / P.835 SIG, BAK, OVRL and the pocketsphinx WER
    (:mod:`tts_gan.intelligibility`) of each recording and of the model resynthesising it from
    its prepared features (the recording's durations and F0), utterance i with seed
    ``seed + i``. Per speaker and pooled."""
    from tts_gan import intelligibility, synthesis

    utts = [dataclasses.replace(u, speaker=speaker_ids[u.speaker])
            for u in synthesis.utterances_from_prep(data_dir, "test",
                                                    ids=[it.utterance_id for it in items])]
    recognizer = intelligibility.Recognizer()
    rows: dict[str, list[dict[str, Any]]] = {"recording": [], "model": []}
    for it in items:
        audio, sr = intelligibility.read_recording(it.wav)
        rows["recording"].append(intelligibility.score(recognizer, it, audio, sr))
    generated: list[np.ndarray] = [np.zeros(0, np.float32)] * len(items)
    for k, audio in synthesis.synthesize_batched(synth, utts, [seed + k for k in
                                                               range(len(utts))], batch_size):
        generated[k] = audio
    for it, audio in zip(items, generated, strict=True):
        rows["model"].append(intelligibility.score(recognizer, it, audio, synth.sample_rate))
    return {"utterances": len(items), "seed": seed,
            "summary": {k: intelligibility.summarise(v) for k, v in rows.items()},
            "rows": rows,
            "note": "DNSMOS is an automatic stand-in for the paper's MOS (human ratings); "
                    "WER: pocketsphinx 5 en-us + jiwer, normalised text"}


# ------------------------------------------------------------------------------ report
def evaluate(export_dir: str, data_dir: str, extractor: extractors_lib.Extractor, *,
             num_samples: int = 10000, split: str = "test", seed: int = 0,
             batch_size: int = 8, progress: bool = True, quality: bool = False,
             corpus_dir: str | None = None, quality_max_per_speaker: int = 0,
             features_out: str | None = None) -> dict[str, Any]:
    """The full report: distances (Eq. 9–12, App. B.3 error bars) and, with ``quality``,
    DNSMOS / WER of held-out utterances (:func:`quality_report`)."""
    inputs = check_inputs(export_dir, data_dir, split, extractor)
    items = None
    if quality:
        if corpus_dir is None:
            raise EvaluationError("--corpus_dir is required for the MOS / WER rows")
        items = quality_items(data_dir, corpus_dir, quality_max_per_speaker)
    feats = compute_features(inputs, data_dir, split, extractor, num_samples, seed=seed,
                             batch_size=batch_size, progress=progress)
    if features_out:
        save_features(features_out, feats.generated, feats.real)
    names = extractors_lib.metric_names(extractor.name)
    names_by_id = {v: k for k, v in inputs.manifest.speakers.items()}
    report = {
        "export": inputs.synth.path, "data_dir": data_dir, "split": split, "seed": seed,
        "N_requested": num_samples,
        "extractor": extractor.identity(),
        "comparable_with_paper": bool(extractor.comparable_with_paper),
        "speakers": {"first_half": _speaker_counts(feats.speakers_first, names_by_id),
                     "second_half": _speaker_counts(feats.speakers_second, names_by_id)},
        "distances": distances(feats.generated, feats.real, names),
        "quality": None,
    }
    if items is not None:
        report["quality"] = quality_report(inputs.synth, data_dir, items, inputs.speaker_map,
                                           seed)
        report["quality"].update(corpus_dir=corpus_dir, max_per_speaker=quality_max_per_speaker)
    return report


def evaluate_features(real: np.ndarray, generated: np.ndarray, names: Sequence[str]
                      ) -> dict[str, Any]:
    """The distances from precomputed representations of any source (``real``: 2N rows, the
    first N with ``generated``'s conditioning)."""
    return {"extractor": {"name": "precomputed"}, "comparable_with_paper": None,
            "distances": distances(generated, real, names), "quality": None}


def _speaker_counts(speakers: np.ndarray, names: dict[int, str]) -> dict[str, int]:
    ids, counts = np.unique(speakers, return_counts=True)
    return {names.get(int(i), str(int(i))): int(c) for i, c in zip(ids, counts, strict=True)}


# ------------------------------------------------------------------------------ training
class TrainingDistance:
    """cFDSD-style distance during training (the paper's Fig. 4) with a fixed reference.

    At construction, ``num_samples`` windows of ``split`` (speaker-balanced, seeded) are
    chosen, their real representations X^real computed once (``extractor``, default
    ``dnsmos``) and kept (N × d); z_i = stateless_normal([noise_dim], seed=[seed + i, 0]).
    Each call streams the same windows through ``generate`` and returns the conditional
    Fréchet distance (Eq. 9, one estimate on all N: cheap and comparable across steps) and
    cKD (unbiased MMD², one block) between DS(G(c_i, z_i)) and DS(x_i)."""

    def __init__(self, data_dir: str, noise_dim: int, *, num_samples: int = 256,
                 split: str = "valid", extractor: str | extractors_lib.Extractor = "default",
                 seed: int = 0, batch_size: int = 8) -> None:
        import tensorflow as tf

        self.data_dir, self.split, self.batch_size = data_dir, split, batch_size
        self.manifest = schema.load_manifest(data_dir)
        self.extractor = (extractors_lib.make(extractor) if isinstance(extractor, str)
                          else extractor)
        self.extractor.check_clip(self.manifest.window_samples)
        speakers = window_speakers(data_dir, split, self.manifest)
        self.n = min(num_samples, len(speakers))
        if self.n < 2:
            raise EvaluationError(f"{data_dir}: the {split!r} split has {len(speakers)} "
                                  "windows; the training distance needs at least 2")
        self.indices = speaker_balanced_subset(speakers, self.n, seed)
        self.z = np.stack([tf.random.stateless_normal([noise_dim], seed=[seed + i, 0]).numpy()
                           for i in range(self.n)]).astype(np.float32)
        f, cf, k, ck = extractors_lib.metric_names(self.extractor.name)
        self.names = (cf, ck)
        self.real = np.full((self.n, self.extractor.dim), np.nan)
        for pos, audio, _, _ in self._batches():
            self.real[pos] = _extract(self.extractor, audio)
        if self.n <= self.extractor.dim:
            logging.warning("training %s from N = %d ≤ d = %d windows: rank-deficient "
                            "covariances; compare values across steps only", cf, self.n,
                            self.extractor.dim)

    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(positions, linear audio, normalised features, speakers) per batch."""
        where = {int(j): p for p, j in enumerate(self.indices)}
        batch: list[tuple[int, np.ndarray, np.ndarray, int]] = []

        def out():
            pos = np.array([b[0] for b in batch])
            return (pos, np.stack([b[1] for b in batch]),
                    schema.normalize(np.stack([b[2] for b in batch]), self.manifest),
                    np.array([b[3] for b in batch], np.int32))

        for i, audio, feats, spk in iter_windows(self.data_dir, self.split, self.manifest,
                                                 self.indices):
            batch.append((where[i], audio, feats, spk))
            if len(batch) == self.batch_size:
                yield out()
                batch = []
        if batch:
            yield out()

    def __call__(self, generate: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
                 ) -> dict[str, float]:
        """``generate(features [B, T, D] normalised, speaker [B] int32, z [B, noise_dim])`` →
        linear audio ``[B, 120 T]``; returns ``{cF-name: value, cK-name: value}``."""
        gen = np.full_like(self.real, np.nan)
        for pos, _, feats, spk in self._batches():
            gen[pos] = _extract(self.extractor, np.asarray(generate(feats, spk, self.z[pos])))
        cf, ck = self.names
        return {cf: metrics.frechet(gen, self.real, warn=False).value,
                ck: metrics.mmd2_unbiased(gen, self.real)}

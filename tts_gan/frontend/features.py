"""Frame-level (200 Hz) linguistic + pitch features from aligned HTS labels (paper §3.1).

Per frame: the question answers of the phone the frame belongs to, 9 frame-position features
(below), then interpolated log F0 and the V/UV flag. With ``default_questions.hed``
(556 questions) that is 556 + 9 + 2 = 567 dims, the paper's feature size.

Frame ``i`` covers ``[i, i+1) * 5 ms``. A phone (or state) starting at HTS time ``s`` starts at
frame ``round(s / 50000)``; the first phone starts at frame 0 and the last one ends at the last
frame of the audio, so gaps are filled by the preceding phone and no frame is unlabelled.

The question answers and the frame-position features are those of Merlin's / nnmnkwii's
``linguistic_features(..., subphone_features="full", add_frame_features=True)`` (Zhizheng Wu's
9 features); phone-aligned labels count as one state per phone. Frame ``i`` of a state of
``m`` frames, frame ``k`` of its phone of ``n`` frames (0-based):

====  ==========================================
0     fraction through the state, forwards ((i + 1) / m)
1     fraction through the state, backwards ((m - i) / m)
2     state length in frames (m)
3     state index in the phone, forwards (1-based)
4     state index in the phone, backwards (1-based)
5     phone length in frames (n)
6     fraction of the phone made up by the state (m / n)
7     fraction through the phone, backwards ((n - k) / n)
8     fraction through the phone, forwards ((k + 1) / n)
====  ==========================================

Front-end version 1 (data prepared before this module followed Merlin; see
:data:`FRONTEND_VERSION`) used centred fractions ((i + 0.5) / m, (m - i - 0.5) / m, ...) with
the phone fractions forwards then backwards, and answered 0 to a CQS that does not match;
``version=1`` reproduces it for models trained on such data.
"""

from __future__ import annotations

import numpy as np

from tts_gan import schema
from tts_gan.frontend.labels import LabelFile, time_to_frame
from tts_gan.frontend.questions import CQS_UNMATCHED, QuestionSet, load_questions

# 2: Merlin/nnmnkwii question semantics and frame-position features; 1: before (see above).
FRONTEND_VERSION = 2
FRONTEND_VERSIONS = (1, 2)
FRAME_FEATURE_NAMES = (
    "state_frac_fwd",
    "state_frac_bwd",
    "state_frames",
    "state_index_fwd",
    "state_index_bwd",
    "phone_frames",
    "state_frac_of_phone",
    "phone_frac_bwd",
    "phone_frac_fwd",
)
NUM_FRAME_FEATURES = len(FRAME_FEATURE_NAMES)
PITCH_FEATURE_NAMES = ("log_f0", "vuv")
NUM_PITCH_FEATURES = len(PITCH_FEATURE_NAMES)


def check_version(version: int) -> int:
    """``version`` if it is a known front-end version, else ValueError."""
    if version not in FRONTEND_VERSIONS:
        raise ValueError(
            f"front-end version {version!r}: this code knows {FRONTEND_VERSIONS} "
            "(re-run tts-gan-prep, or update tts-gan)"
        )
    return int(version)


def _boundaries(starts: list[int], num_frames: int, frame_rate: int) -> np.ndarray:
    """Frame boundaries [len(starts) + 1], monotonic, first 0 and last num_frames."""
    b = np.array([time_to_frame(s, frame_rate) for s in starts] + [num_frames], np.int64)
    b[0] = 0
    b = np.minimum(b, num_frames)
    return np.maximum.accumulate(b)


def frame_alignment(
    labels: LabelFile, num_frames: int, frame_rate: int = schema.FRAME_RATE,
    version: int = FRONTEND_VERSION,
) -> tuple[np.ndarray, np.ndarray]:
    """(phone index per frame int64 [T], frame-position features float32 [T, 9])."""
    check_version(version)
    state_starts: list[int] = []
    state_phone: list[int] = []
    state_idx: list[int] = []
    state_count: list[int] = []
    for i, ph in enumerate(labels.phones):
        n = len(ph.states)
        for j, (s, _) in enumerate(ph.states):
            state_starts.append(s)
            state_phone.append(i)
            state_idx.append(j + 1)
            state_count.append(n)
    b = _boundaries(state_starts, num_frames, frame_rate)
    state_len = np.diff(b)  # frames per state
    phone_of_state = np.array(state_phone, np.int64)
    phone_len = np.bincount(phone_of_state, weights=state_len, minlength=len(labels.phones))
    # phone start frame = boundary of its first state
    first_state = np.searchsorted(phone_of_state, np.arange(len(labels.phones)))
    phone_start = b[first_state]

    frame_state = np.repeat(np.arange(len(state_len)), state_len)  # [T]
    frame_phone = phone_of_state[frame_state]
    t = np.arange(num_frames)
    m = state_len[frame_state].astype(np.float64)
    i = t - b[frame_state]  # frame within the state
    n = phone_len[frame_phone]
    k = t - phone_start[frame_phone]  # frame within the phone
    s_idx = np.array(state_idx, np.float64)[frame_state]
    s_cnt = np.array(state_count, np.float64)[frame_state]
    if version == 1:
        phone_fracs = [(k + 0.5) / n, (n - k - 0.5) / n]
        state_fracs = [(i + 0.5) / m, (m - i - 0.5) / m]
    else:
        phone_fracs = [(n - k) / n, (k + 1) / n]
        state_fracs = [(i + 1) / m, (m - i) / m]
    feats = np.stack(
        [*state_fracs, m, s_idx, s_cnt - s_idx + 1, n, m / n, *phone_fracs], axis=1
    ).astype(np.float32)
    return frame_phone, feats


def linguistic_features(
    labels: LabelFile,
    questions: QuestionSet,
    num_frames: int,
    frame_rate: int = schema.FRAME_RATE,
    version: int = FRONTEND_VERSION,
) -> np.ndarray:
    """float32 [T, Q + 9]: question answers of each frame's phone + frame-position features.

    ``questions`` must answer as ``version`` does (see :func:`load_questions_for`).
    """
    answers = questions.answer_all([p.context for p in labels.phones])
    frame_phone, pos = frame_alignment(labels, num_frames, frame_rate, version)
    return np.concatenate([answers[frame_phone], pos], axis=1)


def load_questions_for(path: str, version: int = FRONTEND_VERSION) -> QuestionSet:
    """The question file ``path`` answering as front-end ``version`` does (CQS not found:
    -1 as Merlin from version 2 on, 0 in version 1)."""
    unmatched = 0.0 if check_version(version) == 1 else CQS_UNMATCHED
    return load_questions(path, cqs_unmatched=unmatched)


def hts_feature_breakdown(questions: QuestionSet) -> list[schema.FeatureBlock]:
    """Blocks of the hts/festival feature vector: runs of QS (binary) / CQS (numeric) answers,
    then frame-position (numeric), log F0 (numeric) and V/UV (binary)."""
    blocks: list[schema.FeatureBlock] = []
    start = 0
    qs = questions.questions
    i = 0
    while i < len(qs):
        j = i
        while j < len(qs) and qs[j].kind == qs[i].kind:
            j += 1
        kind = schema.BINARY if qs[i].kind == "QS" else schema.NUMERIC
        name = f"{qs[i].kind}:{qs[i].name}..{qs[j - 1].name}"
        blocks.append(schema.FeatureBlock(name, start, j - i, kind))
        start += j - i
        i = j
    blocks.append(schema.FeatureBlock("frame_position", start, NUM_FRAME_FEATURES, schema.NUMERIC))
    start += NUM_FRAME_FEATURES
    blocks.append(schema.FeatureBlock("log_f0", start, 1, schema.NUMERIC))
    blocks.append(schema.FeatureBlock("vuv", start + 1, 1, schema.BINARY))
    return blocks


def blocks_from_binary_mask(is_binary: np.ndarray, prefix: str = "features") -> list[
    schema.FeatureBlock
]:
    """Runs of equal kind as blocks (for user-provided ``features`` corpora)."""
    blocks = []
    i = 0
    while i < len(is_binary):
        j = i
        while j < len(is_binary) and is_binary[j] == is_binary[i]:
            j += 1
        kind = schema.BINARY if is_binary[i] else schema.NUMERIC
        blocks.append(schema.FeatureBlock(f"{prefix}[{i}:{j}]", i, j - i, kind))
        i = j
    return blocks

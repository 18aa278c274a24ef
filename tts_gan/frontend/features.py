"""Frame-level (200 Hz) linguistic + pitch features from aligned HTS labels (paper §3.1).

Per frame: the question answers of the phone the frame belongs to, 9 frame-position features
(below), then interpolated log F0 and the V/UV flag. With ``default_questions.hed``
(556 questions) that is 556 + 9 + 2 = 567 dims, the paper's feature size.

Frame ``i`` covers ``[i, i+1) * 5 ms``. A phone (or state) starting at HTS time ``s`` starts at
frame ``round(s / 50000)``; the first phone starts at frame 0 and the last one ends at the last
frame of the audio, so gaps are filled by the preceding phone and no frame is unlabelled.

Frame-position features (Merlin's "full" subphone features; phone-aligned labels count as one
state per phone):

====  ==========================================
0     fraction through the state, forwards ((r + 0.5) / m)
1     fraction through the state, backwards
2     state length in frames (m)
3     state index in the phone, forwards (1-based)
4     state index in the phone, backwards (1-based)
5     phone length in frames (n)
6     fraction of the phone made up by the state (m / n)
7     fraction through the phone, forwards ((k + 0.5) / n)
8     fraction through the phone, backwards
====  ==========================================
"""

from __future__ import annotations

import numpy as np

from tts_gan import schema
from tts_gan.frontend.labels import LabelFile, time_to_frame
from tts_gan.frontend.questions import QuestionSet

FRAME_FEATURE_NAMES = (
    "state_frac_fwd",
    "state_frac_bwd",
    "state_frames",
    "state_index_fwd",
    "state_index_bwd",
    "phone_frames",
    "state_frac_of_phone",
    "phone_frac_fwd",
    "phone_frac_bwd",
)
NUM_FRAME_FEATURES = len(FRAME_FEATURE_NAMES)
PITCH_FEATURE_NAMES = ("log_f0", "vuv")
NUM_PITCH_FEATURES = len(PITCH_FEATURE_NAMES)


def _boundaries(starts: list[int], num_frames: int, frame_rate: int) -> np.ndarray:
    """Frame boundaries [len(starts) + 1], monotonic, first 0 and last num_frames."""
    b = np.array([time_to_frame(s, frame_rate) for s in starts] + [num_frames], np.int64)
    b[0] = 0
    b = np.minimum(b, num_frames)
    return np.maximum.accumulate(b)


def frame_alignment(
    labels: LabelFile, num_frames: int, frame_rate: int = schema.FRAME_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """(phone index per frame int64 [T], frame-position features float32 [T, 9])."""
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
    r = t - b[frame_state]
    n = phone_len[frame_phone]
    k = t - phone_start[frame_phone]
    s_idx = np.array(state_idx, np.float64)[frame_state]
    s_cnt = np.array(state_count, np.float64)[frame_state]
    feats = np.stack(
        [
            (r + 0.5) / m,
            (m - r - 0.5) / m,
            m,
            s_idx,
            s_cnt - s_idx + 1,
            n,
            m / n,
            (k + 0.5) / n,
            (n - k - 0.5) / n,
        ],
        axis=1,
    ).astype(np.float32)
    return frame_phone, feats


def linguistic_features(
    labels: LabelFile,
    questions: QuestionSet,
    num_frames: int,
    frame_rate: int = schema.FRAME_RATE,
) -> np.ndarray:
    """float32 [T, Q + 9]: question answers of each frame's phone + frame-position features."""
    answers = questions.answer_all([p.context for p in labels.phones])
    frame_phone, pos = frame_alignment(labels, num_frames, frame_rate)
    return np.concatenate([answers[frame_phone], pos], axis=1)


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

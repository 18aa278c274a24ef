"""The front end against an independent implementation of Merlin's question-file semantics
and frame features: nnmnkwii 0.1.3 (``nnmnkwii.frontend.merlin.linguistic_features``, adapted
from Merlin's ``label_normalisation.py``), a test-only dependency (setup.cfg ``test`` extra).

Where nnmnkwii 0.1.3 departs from Merlin (``?`` wildcard; a CQS ending in ``(\\d+)`` is
anchored at the label's end by Merlin's ``LAST_QUESTION``) the oracle is nnmnkwii with
Merlin's two lines applied to its compiled expressions; everything else is nnmnkwii as is.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from tts_gan.frontend import DEFAULT_QUESTION_FILE, features, questions
from tts_gan.frontend.labels import parse_label_lines, read_label_file

pytest.importorskip("nnmnkwii")
from nnmnkwii.frontend import merlin as nnm_fe  # noqa: E402
from nnmnkwii.io import hts as nnm_hts  # noqa: E402
from nnmnkwii.util import example_label_file, example_question_file  # noqa: E402

FRAME = 50000  # 5 ms in HTS time units

# Merlin's style (questions-radio_dnn_416.hed): tabs, QS without wildcards (substring), QS with
# them (anchored at their unstarred ends), LL- questions, CQS as literal text around (\d+),
# answered by the first match; plus a ([\d\.]+) group.
MERLIN_STYLE = r"""QS "LL-Silence"	{sil^*,pau^*}
QS "LL-ax"	{ax^*}
QS "LL-l"	{l^}
QS "L-Vowel"	{*^ax-*,*^ow-*,*^er-*}
QS "C-Vowel"	{-ax+,-ow+,-er+}
QS "C-l"	{-l+}
QS "C-Silence"	{-sil+,-pau+}
QS "R-Consonant"	{+hh=,+l=,+w=,+d=}
QS "RR-sil"	{=sil@}
QS "C-Syl_Vowel==ax"	{|ax/C:}
QS "C-Word_GPOS==content"	{/E:content+}
QS "C-Phrase_TOBI_End-tone==L-H%"	{*|L-H%/I:*}
QS "Ends_in_-2"	{*-2}
QS "Starts_with_x^"	{x^*}
QS "Star_inside"	{*-l+*=*}
QS "Anchored_both"	{x^*@*/J:*}
CQS "Seg_Fw"	{@(\d+)_}
CQS "L-Syl_Accent"	{_(\d+)_}
CQS "C-Syl_Accent"	{-(\d+)-}
CQS "R-Syl_Accent"	{+(\d+)+}
CQS "Pos_C-Phrase_in_Utterance(Fw)"	{@(\d+)=}
CQS "Num-Words_in_Utterance"	{+(\d+)-}
CQS "R-Word_Num-Syls"	{_([\d\.]+)/G:}
CQS "Num-Syls_in_Utterance"	{/J:(\d+)+}
CQS "Num-Phrases_in_Utterance"	{*-(\d+)}
"""

PHONES = ["sil", "hh", "el", "ax", "l", "ow", "pau", "w", "er", "l", "d", "sil"]
VOWELS = ("ax", "ow", "er")
GPOS = ("content", "det", "in", "to", "0")
TOBI = ("L-L%", "L-H%", "H-H%", "NONE")


def _context(i: int, rng: np.random.Generator) -> str:
    """HTS English full context of phone i: x fields at the silences, first and last phones
    with x neighbours, 1- and 2-digit numbers."""
    p = [PHONES[j] if 0 <= j < len(PHONES) else "x" for j in range(i - 2, i + 3)]
    sil = PHONES[i] in ("sil", "pau")

    def n() -> str:
        return str(int(rng.integers(0, 13)))

    def f() -> str:
        return "x" if sil else n()

    vowel = "x" if sil else str(rng.choice(VOWELS))
    gpos = "x" if sil else str(rng.choice(GPOS))
    tobi = "0" if sil else str(rng.choice(TOBI))
    return (
        f"{p[0]}^{p[1]}-{p[2]}+{p[3]}={p[4]}@{f()}_{f()}/A:{n()}_{n()}_{n()}"
        f"/B:{f()}-{f()}-{f()}@{f()}-{f()}&{f()}-{f()}#{f()}-{f()}${f()}-{f()}"
        f"!{f()}-{f()};{f()}-{f()}|{vowel}/C:{n()}+{n()}+{n()}/D:{rng.choice(GPOS)}_{n()}"
        f"/E:{gpos}+{f()}@{f()}+{f()}&{f()}+{f()}#{f()}+{f()}/F:{rng.choice(GPOS)}_{n()}"
        f"/G:{n()}_{n()}/H:{f()}={f()}@{n()}={n()}|{tobi}/I:{n()}={n()}/J:{n()}+{n()}-{n()}"
    )


def _utterance(seed: int) -> tuple[list[str], list[str]]:
    """(state-aligned lines, phone-aligned lines) of one utterance on the 5-ms grid."""
    rng = np.random.default_rng(seed)
    state_lines, phone_lines = [], []
    t = 0
    for i in range(len(PHONES)):
        ctx = _context(i, rng)
        start = t
        for k in range(5):
            d = int(rng.integers(1, 7)) * FRAME
            state_lines.append(f"{t} {t + d} {ctx}[{k + 2}]")
            t += d
        phone_lines.append(f"{start} {t} {ctx}")
    return state_lines, phone_lines


def _nnm_dicts(qfile: str, merlin: bool = True):
    """nnmnkwii's compiled questions; ``merlin``: with Merlin's ``?`` → ``.`` and its
    ``LAST_QUESTION`` (``$`` after a CQS ending in ``(\\d+)``) applied."""
    binary, numeric = nnm_hts.load_question_set(qfile)
    if not merlin:
        return binary, numeric
    raw = {}
    with open(qfile, encoding="utf-8") as fh:
        text = fh.read()
    for line in text.splitlines():
        if line.startswith("CQS"):
            raw[line.split()[1].strip('"')] = line.split("{")[1].split("}")[0].strip()
    binary = {k: (name, [re.compile(rx.pattern.replace("\\?", ".")) for rx in rxs])
              for k, (name, rxs) in binary.items()}
    fixed = {}
    for k, (name, rx) in numeric.items():
        pattern = rx.pattern.replace("\\?", ".")
        if re.search(re.escape(r"(\d+)") + "$", raw[name]):
            pattern += "$"
        fixed[k] = (name, re.compile(pattern))
    return binary, fixed


def _ours(lines: list[str], qfile: str, frames: int) -> np.ndarray:
    labels = parse_label_lines(lines, "utt.lab")
    return features.linguistic_features(labels, questions.load_questions(qfile), frames)


def _theirs(lines: list[str], qfile: str, merlin: bool = True, **kw) -> np.ndarray:
    b, n = _nnm_dicts(qfile, merlin)
    return nnm_fe.linguistic_features(nnm_hts.load(lines=lines), b, n, add_frame_features=True,
                                      **kw).astype(np.float32)


@pytest.fixture
def merlin_style(tmp_path) -> str:
    p = tmp_path / "merlin_style.hed"
    p.write_text(MERLIN_STYLE)
    return str(p)


@pytest.mark.parametrize("which", ["merlin_style", "default"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_state_aligned_labels_equal_nnmnkwii_frame_by_frame(which, seed, merlin_style) -> None:
    qfile = merlin_style if which == "merlin_style" else DEFAULT_QUESTION_FILE
    state_lines, _ = _utterance(seed)
    frames = int(state_lines[-1].split()[1]) // FRAME
    ours = _ours(state_lines, qfile, frames)
    theirs = _theirs(state_lines, qfile, merlin=False, subphone_features="full")
    assert ours.shape == theirs.shape == (frames, questions.load_questions(qfile).dim + 9)
    np.testing.assert_array_equal(ours, theirs)
    # the questions vary over the utterance (not a comparison of constant columns)
    q = ours[:, :-9]
    assert (q.min(axis=0) != q.max(axis=0)).sum() >= (12 if which == "merlin_style" else 60)
    assert (q == -1).any() and (q == 1).any()  # undefined fields and matches both occur


@pytest.mark.parametrize("which", ["merlin_style", "default"])
def test_phone_aligned_labels_equal_nnmnkwii(which, merlin_style) -> None:
    """nnmnkwii has no 'full' frame features for phone alignments: its question columns come
    from the phone path, the 9 frame features from the same labels as one state ([2]) each
    (our reading of phone-aligned labels)."""
    qfile = merlin_style if which == "merlin_style" else DEFAULT_QUESTION_FILE
    _, phone_lines = _utterance(3)
    frames = int(phone_lines[-1].split()[1]) // FRAME
    ours = _ours(phone_lines, qfile, frames)
    answers = _theirs(phone_lines, qfile, merlin=False, subphone_features=None)
    one_state = _theirs([ln + "[2]" for ln in phone_lines], qfile, merlin=False,
                        subphone_features="full")
    np.testing.assert_array_equal(ours[:, :-9], answers)
    np.testing.assert_array_equal(ours, one_state)


def test_merlins_own_question_file_on_cmu_arctic_state_labels() -> None:
    """Merlin's questions-radio_dnn_416.hed and CMU ARCTIC state-aligned labels (both shipped
    by nnmnkwii): all 416 answers and the 9 frame features equal Merlin's semantics; nnmnkwii
    0.1.3 itself differs only in Num-Phrases_in_Utterance {-(\\d+)} (it searches the first
    '-digits', C-Syl_Accent's; Merlin anchors a final (\\d+) at the label's end)."""
    qfile = example_question_file()
    lab = read_label_file(example_label_file(phone_level=False))
    with open(example_label_file(phone_level=False), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    frames = lab.end_time // FRAME
    qs = questions.load_questions(qfile)
    ours = features.linguistic_features(lab, qs, frames)
    merlin = _theirs(lines, qfile, merlin=True, subphone_features="full")
    assert ours.shape == merlin.shape == (frames, 425)
    np.testing.assert_array_equal(ours, merlin)
    plain = _theirs(lines, qfile, merlin=False, subphone_features="full")
    differ = sorted({qs.questions[j].name for j in np.nonzero((plain != ours).any(axis=0))[0]})
    assert differ == ["Num-Phrases_in_Utterance"]
    j = [q.name for q in qs.questions].index("Num-Phrases_in_Utterance")
    assert set(ours[:, j]) == {2.0}  # /J:13+9-2: two phrases
    assert (plain[:, j] != 2.0).mean() > 0.5
    # the 180-odd varying binary columns of the measurement all match
    b = ours[:, : qs.num_binary]
    assert (b.min(axis=0) != b.max(axis=0)).sum() >= 150


def test_question_mark_is_one_character_as_in_merlin(tmp_path) -> None:
    """Merlin: ``?`` → ``.`` (nnmnkwii 0.1.3 keeps it literal, so it never matches)."""
    p = tmp_path / "q.hed"
    p.write_text('QS "C-a?" {-a?+}\nQS "L-?" {*^?-*}\nCQS "Seg" {@(\\d+)?}\n')
    state_lines, _ = _utterance(4)
    frames = int(state_lines[-1].split()[1]) // FRAME
    ours = _ours(state_lines, str(p), frames)
    np.testing.assert_array_equal(
        ours, _theirs(state_lines, str(p), merlin=True, subphone_features="full"))
    qs = questions.load_questions(str(p))
    assert qs.answer("x^sil-ax+hh=l@3_1/A:")[:3].tolist() == [1, 0, 3]  # 'x' is one character
    assert qs.answer("x^ab-ax+hh=l@3_1/A:")[:2].tolist() == [1, 0]
    assert qs.answer("x^a-ax+hh=l@12_1/A:")[:3].tolist() == [1, 1, 12]
    plain = _theirs(state_lines, str(p), merlin=False, subphone_features="full")
    assert (plain[:, 0] == 0).all() and not (ours[:, 0] == 0).all()


# The CQS of default_questions.hed before the migration to Merlin's syntax: regular
# expressions, answering 0 where they do not match.
OLD_CQS = (
    ("Pos_C-Seg_in_Syl_Fw", r"@(\d+)_"),
    ("Pos_C-Seg_in_Syl_Bw", r"_(\d+)/A:"),
    ("L-Syl_Stress", r"/A:(\d+)_"),
    ("L-Syl_Accent", r"/A:\d+_(\d+)_"),
    ("L-Syl_Num-Segs", r"/A:\d+_\d+_(\d+)/B:"),
    ("C-Syl_Stress", r"/B:(\d+)-"),
    ("C-Syl_Accent", r"/B:\d+-(\d+)-"),
    ("C-Syl_Num-Segs", r"/B:\d+-\d+-(\d+)@"),
    ("Pos_C-Syl_in_C-Word_Fw", r"@(\d+)-\d+&"),
    ("Pos_C-Syl_in_C-Word_Bw", r"@\d+-(\d+)&"),
    ("Pos_C-Syl_in_C-Phrase_Fw", r"&(\d+)-\d+#"),
    ("Pos_C-Syl_in_C-Phrase_Bw", r"&\d+-(\d+)#"),
    ("Num-StressedSyl_before_C-Syl_in_C-Phrase", r"#(\d+)-\d+\$"),
    ("Num-StressedSyl_after_C-Syl_in_C-Phrase", r"#\d+-(\d+)\$"),
    ("Num-AccentedSyl_before_C-Syl_in_C-Phrase", r"\$(\d+)-\d+!"),
    ("Num-AccentedSyl_after_C-Syl_in_C-Phrase", r"\$\d+-(\d+)!"),
    ("Num-Syl_from_prev-StressedSyl", r"!(\d+)-\d+;"),
    ("Num-Syl_from_next-StressedSyl", r"!\d+-(\d+);"),
    ("Num-Syl_from_prev-AccentedSyl", r";(\d+)-\d+\|"),
    ("Num-Syl_from_next-AccentedSyl", r";\d+-(\d+)\|"),
    ("R-Syl_Stress", r"/C:(\d+)\+"),
    ("R-Syl_Accent", r"/C:\d+\+(\d+)\+"),
    ("R-Syl_Num-Segs", r"/C:\d+\+\d+\+(\d+)/D:"),
    ("L-Word_Num-Syls", r"/D:[^_/]+_(\d+)/E:"),
    ("C-Word_Num-Syls", r"/E:[^+/]+\+(\d+)@"),
    ("Pos_C-Word_in_C-Phrase_Fw", r"@(\d+)\+\d+&\d+\+\d+#"),
    ("Pos_C-Word_in_C-Phrase_Bw", r"@\d+\+(\d+)&\d+\+\d+#"),
    ("Num-ContWord_before_C-Word_in_C-Phrase", r"&(\d+)\+\d+#"),
    ("Num-ContWord_after_C-Word_in_C-Phrase", r"&\d+\+(\d+)#"),
    ("Num-Words_from_prev-ContWord", r"#(\d+)\+\d+/F:"),
    ("Num-Words_from_next-ContWord", r"#\d+\+(\d+)/F:"),
    ("R-Word_Num-Syls", r"/F:[^_/]+_(\d+)/G:"),
    ("L-Phrase_Num-Syls", r"/G:(\d+)_"),
    ("L-Phrase_Num-Words", r"/G:\d+_(\d+)/H:"),
    ("C-Phrase_Num-Syls", r"/H:(\d+)="),
    ("C-Phrase_Num-Words", r"/H:\d+=(\d+)@"),
    ("Pos_C-Phrase_in_Utterance_Fw", r"/H:[^@]*@(\d+)="),
    ("Pos_C-Phrase_in_Utterance_Bw", r"/H:[^@]*@\d+=(\d+)\|"),
    ("R-Phrase_Num-Syls", r"/I:(\d+)="),
    ("R-Phrase_Num-Words", r"/I:\d+=(\d+)/J:"),
    ("Num-Syls_in_Utterance", r"/J:(\d+)\+"),
    ("Num-Words_in_Utterance", r"/J:\d+\+(\d+)-"),
    ("Num-Phrases_in_Utterance", r"/J:\d+\+\d+-(\d+)"),
)


def _old_htk_regex(pattern: str) -> str:
    """The QS semantics before the migration (data_prep/questions.py until then): the pattern
    matches the whole label, ``*`` any text, ``?`` one character (as fnmatch; see
    labels_questions_test.py::test_qs_patterns_match_fnmatch for the new semantics)."""
    core = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                   for c in pattern.strip("*"))
    return ("" if pattern.startswith("*") else r"\A") + core + (
        "" if pattern.endswith("*") else r"\Z")


def _festival_corpus_labels() -> list[str]:
    from data_prep import festival_corpus

    if festival_corpus.festival_binary() is None:
        pytest.skip("festival not installed (bash data_prep/install_system_deps.sh as root)")
    cache = festival_corpus.render_corpus(festival_corpus.default_cache_dir(), progress=False)
    out = []
    for spk in festival_corpus.VOICES:
        for name in sorted(os.listdir(os.path.join(cache, "lab", spk))):
            if name.endswith(".lab"):
                lab = read_label_file(os.path.join(cache, "lab", spk, name))
                out += [p.context for p in lab.phones]
    return out


def test_default_questions_keep_their_answers_on_the_builtin_corpus() -> None:
    """The migrated default_questions.hed answers every label of the built-in corpus (all 290
    sentences in both voices) as before, QS by whole-label wildcard match (fnmatch) and CQS by
    the old regular expressions, except where the old expression found nothing: there Merlin
    (and now we) answer -1 instead of 0. And every answer equals nnmnkwii's."""
    contexts = sorted(set(_festival_corpus_labels()))
    assert len(contexts) > 5000
    qs = questions.load_questions(DEFAULT_QUESTION_FILE)
    nb = qs.num_binary
    assert [q.name for q in qs.questions[nb:]] == [n for n, _ in OLD_CQS]
    old_rx = [re.compile(rx) for _, rx in OLD_CQS]
    binary, numeric = nnm_hts.load_question_set(DEFAULT_QUESTION_FILE)
    whole_label = [re.compile("|".join(f"(?:{_old_htk_regex(p)})" for p in q.patterns))
                   for q in qs.questions[:nb]]
    undefined = 0
    for ctx in contexts:
        new = qs.answer(ctx)
        old_qs = [rx.search(ctx) is not None for rx in whole_label]
        np.testing.assert_array_equal(new[: nb], old_qs, err_msg=ctx)
        for j, rx in enumerate(old_rx):
            m = rx.search(ctx)
            expected = float(m.group(1)) if m else -1.0
            undefined += m is None
            assert new[nb + j] == expected, (OLD_CQS[j][0], ctx)
        theirs = np.concatenate([nnm_fe.pattern_matching_binary(binary, ctx),
                                 nnm_fe.pattern_matching_continous_position(numeric, ctx)],
                                axis=1)[0]
        np.testing.assert_array_equal(new, theirs.astype(np.float32), err_msg=ctx)
    assert undefined > 0  # silences: x fields

"""HTS label parsing, question answering and frame expansion (paper §3.1 features)."""

from __future__ import annotations

import fnmatch
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from tts_gan.frontend import DEFAULT_QUESTION_FILE, features, make_default_questions, questions
from tts_gan.frontend.labels import LabelError, parse_label_lines, read_label_file, time_to_frame

# A hand-written Merlin/HTS-demo style line (phone-aligned), fields checked by hand below.
MERLIN_LINE = (
    "2050000 2800000 "
    "sil^dh-ax+k=ae@1_2/A:0_0_0/B:0-0-2@1-2&1-9#1-5$1-3!0-2;0-1|ax/C:1+1+3/D:0_0/"
    "E:det+1@1+7&0+4#0+1/F:content_2/G:0_0/H:9=7@1=2|L-L%/I:6=4/J:15+11-2"
)


def _default_qs() -> questions.QuestionSet:
    return questions.load_questions(DEFAULT_QUESTION_FILE)


def _answer(qs: questions.QuestionSet, label: str) -> dict[str, float]:
    a = qs.answer(label)
    return {q.name: float(a[i]) for i, q in enumerate(qs.questions)}


def test_default_question_file_is_generated_and_567_dims() -> None:
    with open(DEFAULT_QUESTION_FILE, encoding="utf-8") as f:
        assert f.read() == make_default_questions.generate()
    qs = _default_qs()
    assert qs.dim == 556
    assert qs.dim + features.NUM_FRAME_FEATURES + features.NUM_PITCH_FEATURES == 567
    blocks = features.hts_feature_breakdown(qs)
    assert sum(b.size for b in blocks) == 567
    assert [b.name for b in blocks[-3:]] == ["frame_position", "log_f0", "vuv"]


def test_merlin_line_answers() -> None:
    lab = parse_label_lines([MERLIN_LINE], "x.lab")
    assert not lab.state_aligned
    (ph,) = lab.phones
    assert (ph.start, ph.end, ph.identity) == (2050000, 2800000, "ax")
    a = _answer(_default_qs(), ph.context)
    assert a["C-ax"] == 1 and a["L-dh"] == 1 and a["R-k"] == 1 and a["RR-ae"] == 1
    assert a["C-Schwa"] == 1 and a["C-Vowel"] == 1 and a["C-Consonant"] == 0
    assert a["L-Dental"] == 1 and a["R-Stop"] == 1 and a["R-Velar"] == 1
    # 'sil' is not in the radio phone set: no LL identity question fires.
    assert sum(a[f"LL-{p}"] for p in make_default_questions.RADIO_PHONES) == 0
    assert a["C-Syl_Vowel-ax"] == 1
    assert a["C-Word_GPOS-det"] == 1 and a["R-Word_GPOS-content"] == 1
    assert a["C-Phrase_TOBI_End-tone-L-L%"] == 1
    expected = {
        "Pos_C-Seg_in_Syl_Fw": 1, "Pos_C-Seg_in_Syl_Bw": 2, "C-Syl_Num-Segs": 2,
        "Pos_C-Syl_in_C-Word_Fw": 1, "Pos_C-Syl_in_C-Word_Bw": 2,
        "Pos_C-Syl_in_C-Phrase_Fw": 1, "Pos_C-Syl_in_C-Phrase_Bw": 9,
        "R-Syl_Stress": 1, "R-Syl_Num-Segs": 3, "C-Word_Num-Syls": 1,
        "Pos_C-Word_in_C-Phrase_Fw": 1, "Pos_C-Word_in_C-Phrase_Bw": 7,
        "Num-ContWord_after_C-Word_in_C-Phrase": 4, "R-Word_Num-Syls": 2,
        "C-Phrase_Num-Syls": 9, "C-Phrase_Num-Words": 7, "Pos_C-Phrase_in_Utterance_Bw": 2,
        "R-Phrase_Num-Syls": 6, "R-Phrase_Num-Words": 4, "Num-Syls_in_Utterance": 15,
        "Num-Words_in_Utterance": 11, "Num-Phrases_in_Utterance": 2,
    }
    for k, v in expected.items():
        assert a[k] == v, k


PAU = ("x^x-pau+dh=ax@x_x/A:0_0_0/B:x-x-x@x-x&x-x#x-x$x-x!x-x;x-x|x/C:0+0+2/D:0_0/"
       "E:x+x@x+x&x+x#x+x/F:det_1/G:0_0/H:x=x@1=1|0/I:9=8/J:9+8-1")


def test_undefined_fields_answer_minus_one_as_merlin() -> None:
    a = _answer(_default_qs(), PAU)
    assert a["C-pau"] == 1 and a["C-Silence"] == 1 and a["LL-x"] == 1
    assert a["Pos_C-Seg_in_Syl_Fw"] == -1 and a["C-Syl_Num-Segs"] == -1
    assert a["C-Syl_Vowel-x"] == 1 and a["Num-Syls_in_Utterance"] == 9
    # front-end version 1 (data prepared before) answered 0
    old = features.load_questions_for(DEFAULT_QUESTION_FILE, version=1)
    b = _answer(old, PAU)
    assert b["Pos_C-Seg_in_Syl_Fw"] == 0 and b["C-Syl_Num-Segs"] == 0
    assert {k: v for k, v in a.items() if v != -1} == {k: v for k, v in b.items() if a[k] != -1}


def test_qs_patterns_match_fnmatch() -> None:
    """Merlin's wildcard semantics against fnmatch (an independent implementation): a pattern
    with a ``*`` matches as fnmatch matches the whole label; one without is a substring."""
    rng = random.Random(0)
    alphabet = "ab-+^=@_x"
    for _ in range(3000):
        label = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        pat = "".join(rng.choice(alphabet + "**??") for _ in range(rng.randint(1, 6)))
        qs = questions.parse_question_text(f'QS "q" {{{pat}}}')
        whole = pat if "*" in pat else f"*{pat}*"
        assert bool(qs.answer(label)[0]) == fnmatch.fnmatchcase(label, whole), (label, pat)


def test_merlin_examples_from_the_issue() -> None:
    """Merlin's own question lines (questions-radio_dnn_416.hed): no wildcards = substring,
    '+' is literal in CQS, the first match answers, LL- questions start the label."""
    qs = questions.parse_question_text(
        'QS "C-Vowel"\t{-aa+,-ae+,-ax+}\nQS "LL-Vowel" {aa^*,ax^*}\nQS "L-ax" {^ax-}\n'
        'CQS "R-Syl_Accent"\t{+(\\d+)+}\nCQS "Num-Phrases_in_Utterance" {-(\\d+)}\n'
    )
    a = _answer(qs, MERLIN_LINE.split(" ", 2)[2])
    assert a == {"C-Vowel": 1, "LL-Vowel": 0, "L-ax": 0, "R-Syl_Accent": 1,
                 "Num-Phrases_in_Utterance": 2}
    # 'ax' as the LL phone only counts at the start of the label
    assert _answer(qs, "ax^sil-aa+b=c@")["LL-Vowel"] == 1
    assert _answer(qs, "sil^ax-aa+b=c@")["LL-Vowel"] == 0


def test_qs_then_cqs_column_order() -> None:
    qs = questions.parse_question_text(
        'CQS "n" {@(\\d+)_}\nQS "a" {-a+}\nCQS "m" {_(\\d+)/}\nQS "b" {-b+}\n')
    assert [q.name for q in qs.questions] == ["a", "b", "n", "m"]
    assert qs.answer("x^x-a+x=x@3_4/").tolist() == [1, 0, 3, 4]


def test_question_file_errors_name_file_and_line(tmp_path) -> None:
    p = tmp_path / "q.hed"
    cases = [
        ('CQS "b" {/A:}', r"q\.hed:2: CQS 'b': '/A:' has no capture group"),
        ('CQS "b" {/A:\\d+_(\\d+)}', r"q\.hed:2: CQS 'b'.*looks like a regular expression"),
        ('QS "b" {-a+, -b+}', r"q\.hed:2: QS 'b': pattern ' -b\+' contains a blank"),
        ('QS "b" {-a+,,-b+}', r"q\.hed:2: QS 'b' has an empty pattern"),
        ('CQS "b" {@(\\d+)_,_(\\d+)/}', r"q\.hed:2: CQS 'b' must have exactly one pattern"),
        ('QS "a" {-b+}', r"q\.hed:2: duplicate question name 'a' \(first on line 1\)"),
        ("nonsense line", r"q\.hed:2: expected QS"),
    ]
    for line, msg in cases:
        p.write_text(f'QS "a" {{*-a+*}}\n{line}\n')
        with pytest.raises(questions.QuestionError, match=msg):
            questions.load_questions(str(p))
    with pytest.raises(questions.QuestionError, match="cannot read"):
        questions.load_questions(str(tmp_path / "missing.hed"))
    qs = questions.parse_question_text('CQS "f" {/F:([\\d\\.]+)_}', "f.hed")
    assert qs.answer("/F:2.5_1")[0] == 2.5
    with pytest.raises(questions.QuestionError, match=r"f\.hed: CQS 'f' captured '1\.2\.3'"):
        qs.answer("/F:1.2.3_1")


def test_label_errors_name_file_and_line() -> None:
    with pytest.raises(LabelError, match=r"a\.lab:2: expected 'START END CONTEXT'"):
        parse_label_lines(["0 10 x^x-a+b=c@", "only-context"], "a.lab")
    with pytest.raises(LabelError, match=r"a\.lab:2: start 5 overlaps"):
        parse_label_lines(["0 10 a", "5 20 b"], "a.lab")
    with pytest.raises(LabelError, match=r"a\.lab:1: end 5 < start 10"):
        parse_label_lines(["10 5 a"], "a.lab")


def test_state_aligned_labels_and_frame_features() -> None:
    # Two phones with 5 states each; 50000 units = 1 frame (5 ms).
    lines = []
    t = 0
    for ctx, lens in (("x^x-a+b=x@", [1, 2, 1, 1, 3]), ("x^a-b+x=x@", [2, 2, 2, 2, 2])):
        for k, n in enumerate(lens):
            lines.append(f"{t} {t + n * 50000} {ctx}[{k + 2}]")
            t += n * 50000
    lab = parse_label_lines(lines)
    assert lab.state_aligned and len(lab.phones) == 2
    assert lab.phones[0].states[1] == (50000, 150000)
    phone, pos = features.frame_alignment(lab, 18)
    assert phone.tolist() == [0] * 8 + [1] * 10
    # Frame 2: second state (2 frames long), second frame of it; phone 0 has 8 frames, frame 2
    # is its third. Merlin: (i + 1) / m, (m - i) / m, ..., phone backwards then forwards.
    np.testing.assert_allclose(pos[2], [1.0, 0.5, 2, 2, 4, 8, 0.25, 6 / 8, 3 / 8])
    np.testing.assert_allclose(pos[17], [1.0, 0.5, 2, 5, 1, 10, 0.2, 0.1, 1.0])
    # front-end version 1: centred fractions, phone forwards then backwards
    _, old = features.frame_alignment(lab, 18, version=1)
    np.testing.assert_allclose(old[2], [0.75, 0.25, 2, 2, 4, 8, 0.25, 2.5 / 8, 5.5 / 8])
    np.testing.assert_allclose(old[17], [0.75, 0.25, 2, 5, 1, 10, 0.2, 0.95, 0.05])
    with pytest.raises(ValueError, match="front-end version 3"):
        features.frame_alignment(lab, 18, version=3)


def test_phone_aligned_boundaries_round_to_nearest_frame() -> None:
    assert time_to_frame(13049999, 200) == 261 and time_to_frame(24999, 200) == 0
    lab = parse_label_lines(["0 124999 x^x-a+b", "124999 300000 x^a-b+x"])
    phone, pos = features.frame_alignment(lab, 8)  # audio longer than labels: last phone stretched
    assert phone.tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert pos[:, 3].tolist() == [1] * 8 and pos[:, 4].tolist() == [1] * 8  # one state per phone
    np.testing.assert_allclose(pos[:, 5], [2, 2, 6, 6, 6, 6, 6, 6])


def _festival_ok() -> bool:
    from data_prep import festival_corpus

    return festival_corpus.festival_binary() is not None


@pytest.mark.skipif(not _festival_ok(), reason="festival not installed "
                    "(bash data_prep/install_system_deps.sh as root)")
def test_festival_labels_parse(tmp_path) -> None:
    """Real HTS labels exported from Festival's utterance structure for both voices."""
    import soundfile as sf

    from data_prep import festival_corpus

    sents = ["The birch canoe slid on the smooth planks.", "Is it raining, Doctor Smith?"]
    festival_corpus.render_corpus(str(tmp_path), sents, progress=False)
    qs = _default_qs()
    c_names = [q.name for q in qs.questions if q.name.startswith("C-") and
               q.name[2:] in make_default_questions.RADIO_PHONES]
    c_idx = [i for i, q in enumerate(qs.questions) if q.name in c_names]
    for spk in festival_corpus.VOICES:
        for uid in ("s0001", "s0002"):
            lab = read_label_file(os.path.join(tmp_path, "lab", spk, uid + ".lab"))
            info = sf.info(os.path.join(tmp_path, "wav", spk, uid + ".wav"))
            assert lab.phones[0].start == 0 and lab.phones[0].identity == "pau"
            assert lab.phones[-1].identity == "pau"
            assert abs(lab.end_time / 1e7 - info.duration) < 0.05, (spk, uid)
            ans = qs.answer_all([p.context for p in lab.phones])
            # Every phone is exactly one radio phone in the centre position.
            assert (ans[:, c_idx].sum(axis=1) == 1).all()
            for p, row in zip(lab.phones, ans, strict=True):
                assert c_names[int(np.argmax(row[c_idx]))] == f"C-{p.identity}"


def test_make_default_questions_main_prints_file() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tts_gan.frontend.make_default_questions"], capture_output=True,
        text=True, check=True,
    ).stdout
    assert out == make_default_questions.generate()

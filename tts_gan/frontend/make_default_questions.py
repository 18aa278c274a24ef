r"""Generates ``default_questions.hed``, the project's own HTS question file.

The paper's features are 567-dimensional (§3.1). With phone-aligned (or state-aligned) labels
our default features are: 556 question answers (this file) + 9 frame-position features
(:mod:`tts_gan.frontend.features`) + 2 pitch features (log F0, V/UV; :mod:`tts_gan.frontend.pitch`)
= 567.

The file follows Merlin's and nnmnkwii's question-file semantics (:mod:`.questions`): QS
patterns are literal label text with the wildcards ``*`` and ``?``; each CQS is literal text
around one ``(\d+)``, answered by its first match, -1 where the field is undefined (``x``). It
has no comment lines, so Merlin's own reader (which fails on them) loads it too.

The questions cover Festival's ``radio`` phone set (used by both built-in voices and by the
HTS-demo / Merlin English labels) in the standard HTS English full-context format::

    p1^p2-p3+p4=p5@p6_p7/A:a1_a2_a3/B:b1-b2-b3@b4-b5&b6-b7#b8-b9$b10-b11!b12-b13;b14-b15|b16
    /C:c1+c2+c3/D:d1_d2/E:e1+e2@e3+e4&e5+e6#e7+e8/F:f1_f2/G:g1_g2/H:h1=h2@h3=h4|h5/I:i1=i2
    /J:j1+j2-j3

Run ``python -m tts_gan.frontend.make_default_questions > tts_gan/frontend/default_questions.hed``;
a test checks that the shipped file equals this output.
"""

from __future__ import annotations

# Festival radio phone set: name -> (vc, vlng, vheight, vfront, vrnd, ctype, cplace, cvox)
RADIO_PHONES: dict[str, tuple[str, ...]] = {
    "aa": ("+", "l", "3", "3", "-", "0", "0", "0"),
    "ae": ("+", "s", "3", "1", "-", "0", "0", "0"),
    "ah": ("+", "s", "2", "2", "-", "0", "0", "0"),
    "ao": ("+", "l", "3", "3", "+", "0", "0", "0"),
    "aw": ("+", "d", "3", "2", "-", "0", "0", "0"),
    "ax": ("+", "a", "2", "2", "-", "0", "0", "0"),
    "axr": ("+", "a", "2", "2", "-", "r", "a", "+"),
    "ay": ("+", "d", "3", "2", "-", "0", "0", "0"),
    "b": ("-", "0", "0", "0", "0", "s", "l", "+"),
    "ch": ("-", "0", "0", "0", "0", "a", "p", "-"),
    "d": ("-", "0", "0", "0", "0", "s", "a", "+"),
    "dh": ("-", "0", "0", "0", "0", "f", "d", "+"),
    "dx": ("-", "a", "0", "0", "0", "s", "a", "+"),
    "eh": ("+", "s", "2", "1", "-", "0", "0", "0"),
    "el": ("+", "s", "0", "0", "0", "l", "a", "+"),
    "em": ("+", "s", "0", "0", "0", "n", "l", "+"),
    "en": ("+", "s", "0", "0", "0", "n", "a", "+"),
    "er": ("+", "a", "2", "2", "-", "r", "0", "0"),
    "ey": ("+", "d", "2", "1", "-", "0", "0", "0"),
    "f": ("-", "0", "0", "0", "0", "f", "b", "-"),
    "g": ("-", "0", "0", "0", "0", "s", "v", "+"),
    "hh": ("-", "0", "0", "0", "0", "f", "g", "-"),
    "hv": ("-", "0", "0", "0", "0", "f", "g", "+"),
    "ih": ("+", "s", "1", "1", "-", "0", "0", "0"),
    "iy": ("+", "l", "1", "1", "-", "0", "0", "0"),
    "jh": ("-", "0", "0", "0", "0", "a", "p", "+"),
    "k": ("-", "0", "0", "0", "0", "s", "v", "-"),
    "l": ("-", "0", "0", "0", "0", "l", "a", "+"),
    "m": ("-", "0", "0", "0", "0", "n", "l", "+"),
    "n": ("-", "0", "0", "0", "0", "n", "a", "+"),
    "nx": ("-", "0", "0", "0", "0", "n", "d", "+"),
    "ng": ("-", "0", "0", "0", "0", "n", "v", "+"),
    "ow": ("+", "d", "2", "3", "+", "0", "0", "0"),
    "oy": ("+", "d", "2", "3", "+", "0", "0", "0"),
    "p": ("-", "0", "0", "0", "0", "s", "l", "-"),
    "r": ("-", "0", "0", "0", "0", "r", "a", "+"),
    "s": ("-", "0", "0", "0", "0", "f", "a", "-"),
    "sh": ("-", "0", "0", "0", "0", "f", "p", "-"),
    "t": ("-", "0", "0", "0", "0", "s", "a", "-"),
    "th": ("-", "0", "0", "0", "0", "f", "d", "-"),
    "uh": ("+", "s", "1", "3", "+", "0", "0", "0"),
    "uw": ("+", "l", "1", "3", "+", "0", "0", "0"),
    "v": ("-", "0", "0", "0", "0", "f", "b", "+"),
    "w": ("-", "0", "0", "0", "0", "r", "l", "+"),
    "y": ("-", "0", "0", "0", "0", "r", "p", "+"),
    "z": ("-", "0", "0", "0", "0", "f", "a", "+"),
    "zh": ("-", "0", "0", "0", "0", "f", "p", "+"),
    "pau": ("-", "0", "0", "0", "0", "0", "0", "-"),
    "h#": ("-", "0", "0", "0", "0", "0", "0", "-"),
    "brth": ("-", "0", "0", "0", "0", "0", "0", "-"),
}
SILENCES = ("pau", "h#", "brth")
VOWELS = tuple(p for p, f in RADIO_PHONES.items() if f[0] == "+")

# Position in the quinphone: (prefix of the HTS name, HTK pattern template).
POSITIONS = (
    ("LL", "{}^*"),
    ("L", "*^{}-*"),
    ("C", "*-{}+*"),
    ("R", "*+{}=*"),
    ("RR", "*={}@*"),
)


def _feat(idx: int, *values: str):
    return lambda p: p not in SILENCES and RADIO_PHONES[p][idx] in values


def _classes() -> list[tuple[str, list[str]]]:
    """Phone classes from the radio phone features plus standard derived classes."""
    preds = [
        ("Vowel", _feat(0, "+")),
        ("Consonant", lambda p: p not in SILENCES and RADIO_PHONES[p][0] == "-"),
        ("Silence", lambda p: p in SILENCES),
        ("Short_Vowel", _feat(1, "s")),
        ("Long_Vowel", _feat(1, "l")),
        ("Diphthong", _feat(1, "d")),
        ("Schwa", _feat(1, "a")),
        ("High_Vowel", _feat(2, "1")),
        ("Mid_Vowel", _feat(2, "2")),
        ("Low_Vowel", _feat(2, "3")),
        ("Front_Vowel", _feat(3, "1")),
        ("Central_Vowel", _feat(3, "2")),
        ("Back_Vowel", _feat(3, "3")),
        ("Rounded_Vowel", _feat(4, "+")),
        ("Stop", _feat(5, "s")),
        ("Fricative", _feat(5, "f")),
        ("Affricate", _feat(5, "a")),
        ("Nasal", _feat(5, "n")),
        ("Lateral", _feat(5, "l")),
        ("Approximant", _feat(5, "r")),
        ("Labial", _feat(6, "l")),
        ("Alveolar", _feat(6, "a")),
        ("Palatal", _feat(6, "p")),
        ("Labiodental", _feat(6, "b")),
        ("Dental", _feat(6, "d")),
        ("Velar", _feat(6, "v")),
        ("Glottal", _feat(6, "g")),
        ("Voiced_Consonant", lambda p: _feat(0, "-")(p) and RADIO_PHONES[p][7] == "+"),
        ("Unvoiced_Consonant", lambda p: _feat(0, "-")(p) and RADIO_PHONES[p][7] == "-"),
        ("Voiced", lambda p: _feat(0, "+")(p) or _feat(7, "+")(p)),
        ("Obstruent", _feat(5, "s", "f", "a")),
        ("Sonorant", lambda p: _feat(0, "+")(p) or _feat(5, "n", "l", "r")(p)),
        ("Coronal", _feat(6, "a", "p", "d")),
        ("Anterior", _feat(6, "l", "b", "d", "a")),
        ("Continuant", lambda p: _feat(0, "+")(p) or _feat(5, "f", "l", "r")(p)),
        ("Strident", lambda p: p in ("s", "z", "sh", "zh", "ch", "jh")),
        ("Glide", lambda p: p in ("w", "y")),
        ("Liquid", lambda p: p in ("l", "r", "el")),
        ("Syllabic_Consonant", lambda p: p in ("el", "em", "en", "er", "axr")),
        ("Front_Consonant", _feat(6, "l", "b", "d")),
        ("Back_Consonant", _feat(6, "v", "g")),
    ]
    out = []
    for name, pred in preds:
        members = [p for p in RADIO_PHONES if pred(p)]
        assert members, name
        out.append((name, members))
    return out


GPOS = ("content", "det", "in", "to", "md", "cc", "wp", "pps", "aux", "punc")
TOBI = ("L-L%", "L-H%", "H-H%", "H-L%", "NONE")

# Numeric fields: (name, Merlin CQS pattern). Literal label text around one (\d+); the first
# (leftmost) match is the answer, so each pattern is the shortest text whose first occurrence
# in the format above is the field (as in Merlin's questions-radio_dnn_416.hed).
NUMERIC = (
    ("Pos_C-Seg_in_Syl_Fw", r"@(\d+)_"),
    ("Pos_C-Seg_in_Syl_Bw", r"_(\d+)/A:"),
    ("L-Syl_Stress", r"/A:(\d+)_"),
    ("L-Syl_Accent", r"_(\d+)_"),
    ("L-Syl_Num-Segs", r"_(\d+)/B:"),
    ("C-Syl_Stress", r"/B:(\d+)-"),
    ("C-Syl_Accent", r"-(\d+)-"),
    ("C-Syl_Num-Segs", r"-(\d+)@"),
    ("Pos_C-Syl_in_C-Word_Fw", r"@(\d+)-"),
    ("Pos_C-Syl_in_C-Word_Bw", r"-(\d+)&"),
    ("Pos_C-Syl_in_C-Phrase_Fw", r"&(\d+)-"),
    ("Pos_C-Syl_in_C-Phrase_Bw", r"-(\d+)#"),
    ("Num-StressedSyl_before_C-Syl_in_C-Phrase", r"#(\d+)-"),
    ("Num-StressedSyl_after_C-Syl_in_C-Phrase", r"-(\d+)$"),
    ("Num-AccentedSyl_before_C-Syl_in_C-Phrase", r"$(\d+)-"),
    ("Num-AccentedSyl_after_C-Syl_in_C-Phrase", r"-(\d+)!"),
    ("Num-Syl_from_prev-StressedSyl", r"!(\d+)-"),
    ("Num-Syl_from_next-StressedSyl", r"-(\d+);"),
    ("Num-Syl_from_prev-AccentedSyl", r";(\d+)-"),
    ("Num-Syl_from_next-AccentedSyl", r"-(\d+)|"),
    ("R-Syl_Stress", r"/C:(\d+)+"),
    ("R-Syl_Accent", r"+(\d+)+"),
    ("R-Syl_Num-Segs", r"+(\d+)/D:"),
    ("L-Word_Num-Syls", r"_(\d+)/E:"),
    ("C-Word_Num-Syls", r"+(\d+)@"),
    ("Pos_C-Word_in_C-Phrase_Fw", r"@(\d+)+"),
    ("Pos_C-Word_in_C-Phrase_Bw", r"+(\d+)&"),
    ("Num-ContWord_before_C-Word_in_C-Phrase", r"&(\d+)+"),
    ("Num-ContWord_after_C-Word_in_C-Phrase", r"+(\d+)#"),
    ("Num-Words_from_prev-ContWord", r"#(\d+)+"),
    ("Num-Words_from_next-ContWord", r"+(\d+)/F:"),
    ("R-Word_Num-Syls", r"_(\d+)/G:"),
    ("L-Phrase_Num-Syls", r"/G:(\d+)_"),
    ("L-Phrase_Num-Words", r"_(\d+)/H:"),
    ("C-Phrase_Num-Syls", r"/H:(\d+)="),
    ("C-Phrase_Num-Words", r"=(\d+)@"),
    ("Pos_C-Phrase_in_Utterance_Fw", r"@(\d+)="),
    ("Pos_C-Phrase_in_Utterance_Bw", r"=(\d+)|"),
    ("R-Phrase_Num-Syls", r"/I:(\d+)="),
    ("R-Phrase_Num-Words", r"=(\d+)/J:"),
    ("Num-Syls_in_Utterance", r"/J:(\d+)+"),
    ("Num-Words_in_Utterance", r"+(\d+)-"),
    ("Num-Phrases_in_Utterance", r"*-(\d+)"),  # the last field: anchored at the label's end
)


def generate() -> str:
    # No comment lines: Merlin's own reader (label_normalisation.py) fails on lines without
    # "{...}"; nnmnkwii skips them. The file's description is this module's docstring.
    lines: list[str] = []
    qs: list[str] = []
    phones = list(RADIO_PHONES)
    for pos, tmpl in POSITIONS:
        for p in phones:
            qs.append(f'QS "{pos}-{p}" {{{tmpl.format(p)}}}')
        if pos in ("LL", "RR"):  # L-x / R-x equal L-x&C-pau / R-x&C-pau
            qs.append(f'QS "{pos}-x" {{{tmpl.format("x")}}}')
    classes = _classes()
    for pos, tmpl in POSITIONS:
        for name, members in classes:
            pats = ",".join(tmpl.format(m) for m in members)
            qs.append(f'QS "{pos}-{name}" {{{pats}}}')
    for v in (*VOWELS, "x"):
        qs.append(f'QS "C-Syl_Vowel-{v}" {{*|{v}/C:*}}')
    for field, tmpl in (("L-Word_GPOS", "*/D:{}_*"), ("C-Word_GPOS", "*/E:{}+*"),
                        ("R-Word_GPOS", "*/F:{}_*")):
        for g in GPOS:
            qs.append(f'QS "{field}-{g}" {{{tmpl.format(g)}}}')
    for t in TOBI:
        qs.append(f'QS "C-Phrase_TOBI_End-tone-{t}" {{*|{t}/I:*}}')
    cqs = [f'CQS "{name}" {{{rx}}}' for name, rx in NUMERIC]
    lines += qs + cqs
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(generate(), end="")

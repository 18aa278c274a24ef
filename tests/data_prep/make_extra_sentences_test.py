"""data_prep/make_extra_sentences.py: hand-written cookies in, the expected sentences out."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from data_prep import make_extra_sentences as mk

COOKIES = """\
The quiet river carried the small boat past the old stone mill.  It was late in
the afternoon when we finally reached home.
		-- Somebody Famous, "A Book"
%
Q: Why did the chicken cross the long and winding road?
A: To get to the other side of the river.
%
A halted retreat
Is nerve-wracking and dangerous
To retain people as men and maidservants
Brings good fortune
%
WARNING: THIS PROGRAM WILL ERASE EVERYTHING ON YOUR DISK TODAY.
%
He paid 1984 dollars for the painting of the quiet harbour town.
%
Visit http://www.example.com for more information about our products today.
%
She said, "Come back tomorrow and we will talk about it then."
%
Mr. Smith walked slowly to the station every single morning.
%
What the hell is going on in this quiet little town tonight?
%
Short one here.
%
(1) Never walk on the thin ice in the middle of the winter.
%
	"Is it far to the village?" asked the tired traveller at the gate.
	"Not far," said the old man.
%
The cat sat on the mat and watched the birds all day long.
%
The cat sat on the mat and watched the birds all the day long.
%
Honesty is the best policy, but it never pays THAT well in the end.
%
A word to the wise is enough -- and the rest is silence for all of us.
%
"""
EXPECTED = [
    "It was late in the afternoon when we finally reached home.",
    "The cat sat on the mat and watched the birds all day long.",
    "The quiet river carried the small boat past the old stone mill.",
]


def test_hand_written_cookies_give_the_expected_sentences(tmp_path) -> None:
    (tmp_path / "wisdom").write_text(COOKIES)
    pool, stats = mk.candidates(str(tmp_path), ["wisdom"])
    assert mk.dedupe(pool) == EXPECTED  # the "all the day long" variant is a near duplicate
    # dialogue (Q:/A:), verse, "WARNING:" (a label like a speaker's), list, indented dialogue
    assert stats["cookie skipped"] == 5
    # a near copy of a reference (built-in) sentence is left out too
    ref = ["It was late in the afternoon when we finally got home."]
    assert mk.dedupe(pool, reference=ref) == EXPECTED[1:]


@pytest.mark.parametrize("sentence, reason", [
    ("The quiet river carried the small boat past the old mill.", None),
    ("Well-known sayings aren't always true, but they're often useful.", None),
    ("He paid 1984 dollars for the painting of the quiet town.", "digits"),
    ("Visit http://www.example.com for more information about it.", "characters"),
    ('She said, "Come back tomorrow and we will talk then."', "characters"),
    ("Caf\u00e9 owners open early and close late in the summer time.", "non-ascii"),
    ("WARNING THIS PROGRAM WILL ERASE EVERYTHING ON YOUR DISK.", "all caps"),
    ("The NASA engineers worked through the night on the launch.", "all caps"),
    ("Mr. Smith walked slowly to the station every single morning.", "punctuation"),
    ("What the hell is going on in this quiet little town tonight?", "profanity"),
    ("Those damned pigeons ate every last crumb of the bread again.", "profanity"),
    ("Short one here, too short.", "length"),
    ("A word to the wise is enough -- the rest is silence for us.", "dashes"),
    ("They called it 'the best idea' of the whole long summer.", "quotes"),
    ("the river carried the small boat past the old stone mill.", "not a sentence"),
    ("The river carried the small boat past the old stone mill", "not a sentence"),
    ("Note: the river carried the small boat past the old mill.", "characters"),
])
def test_reject_reason(sentence, reason) -> None:
    assert mk.reject_reason(sentence) == reason


def test_split_sentences_keeps_abbreviations_and_initials() -> None:
    assert mk.split_sentences("Mr. Smith went home. He slept!  J. R. Bob? Yes.") == [
        "Mr. Smith went home.", "He slept!", "J. R. Bob?", "Yes."]
    assert mk.split_cookies("a\n%\n\n%\nb\nc\n") == ["a", "b\nc"]
    assert mk.cookie_prose("One line\nand the next.\n\t\t-- Someone\nmore") == \
        "One line and the next."


def _fake_package(root, cookie_text: str, copyright_text: str) -> str:
    data = root / "usr" / "share" / "games" / "fortunes"
    doc = root / "usr" / "share" / "doc" / "fortunes"
    data.mkdir(parents=True)
    doc.mkdir(parents=True)
    for name in mk.FILES:
        (data / name).write_text(cookie_text if name == "wisdom" else "")
    (doc / "copyright").write_text(copyright_text)
    with gzip.open(doc / "changelog.Debian.gz", "wt") as f:
        f.write("fortune-mod (1:9.9-1) unstable; urgency=medium\n\n  * x\n")
    return str(data)


def test_main_writes_a_deterministic_file_with_source_and_licence(tmp_path, capsys) -> None:
    lic = "Legal information\nThis program falls under the BSD copyright:\n"
    data = _fake_package(tmp_path, COOKIES, lic)
    out = tmp_path / "extra.txt"
    argv = [f"--fortunes_dir={data}", f"--output={out}", "--count=2", "--seed=7"]
    assert mk.main(argv) == 0
    first = out.read_bytes()
    assert mk.main(argv) == 0 and out.read_bytes() == first  # deterministic
    text = first.decode()
    body = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert [ln.split("\t")[0] for ln in body] == ["f0001", "f0002"]
    assert [ln.split("\t")[1] for ln in body] == sorted(ln.split("\t")[1] for ln in body)
    assert {ln.split("\t")[1] for ln in body} < set(EXPECTED)
    assert "fortunes-min 1:9.9-1" in text and "Licence: BSD" in text
    assert hashlib.sha256(lic.encode()).hexdigest() in text
    assert "3 candidates, 2 sampled with seed 7" in text
    assert "--count=2 --seed=7" in text
    # asking for more than the filters give, or a changed licence: an error, no file
    assert mk.main([f"--fortunes_dir={data}", f"--output={tmp_path}/b.txt", "--count=4"]) == 1
    assert "--count=4: only 3 sentences pass the filters" in capsys.readouterr().err
    other = tmp_path / "o"
    data2 = _fake_package(other, COOKIES, "Some other licence.\n")
    assert mk.main([f"--fortunes_dir={data2}", f"--output={tmp_path}/c.txt"]) == 1
    assert "the BSD licence statement is not there any more" in capsys.readouterr().err
    assert not (tmp_path / "b.txt").exists() and not (tmp_path / "c.txt").exists()


def test_the_offensive_set_is_never_read(tmp_path) -> None:
    off = tmp_path / "off"
    off.mkdir()
    (off / "wisdom").write_text(COOKIES)
    with pytest.raises(ValueError, match="the offensive set is never read"):
        mk.candidates(str(off), ["wisdom"])

"""The built-in corpus' sentence sets (data_prep/festival_corpus.py): the extra sentences from
Debian's fortunes, their ids, and the held-out split that must not move when they are added."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from data_prep import festival_corpus, make_extra_sentences, pipeline

# The 14 test and 14 validation sentences of the built-in corpus, as tts-gan-prep
# --format=festival has drawn them since the corpus exists (seed 1234, 5 % + 5 % of 290).
HELD_OUT_TEST = ["s0005", "s0014", "s0068", "s0081", "s0135", "s0182", "s0245", "s0251",
                 "s0252", "s0258", "s0260", "s0262", "s0269", "s0272"]


def _builtin_keys() -> list[str]:
    """s0001..sNNNN counted straight from sentences.txt (not through festival_corpus)."""
    with open(festival_corpus.SENTENCES_FILE, encoding="utf-8") as f:
        n = sum(1 for ln in f if ln.strip() and not ln.lstrip().startswith("#"))
    return [f"s{i:04d}" for i in range(1, n + 1)]


def _expected_held_out(keys: list[str], seed: int = 1234) -> tuple[set[str], set[str]]:
    """(test, valid): keys ordered by sha256("seed:key"), the first 5 % test, the next 5 %
    valid (README "Splits"), computed here without pipeline.assign_splits."""
    order = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    n = round(0.05 * len(keys))
    return set(order[:n]), set(order[n : 2 * n])


def test_builtin_corpus_is_unchanged_and_its_held_out_split_is_pinned() -> None:
    keys = _builtin_keys()
    assert len(keys) == 290
    sents = festival_corpus.corpus_sentences("builtin")
    assert [u for u, _ in sents] == keys
    assert [t for _, t in sents] == festival_corpus.load_sentences()
    test, valid = _expected_held_out(keys)
    assert sorted(test) == HELD_OUT_TEST and len(valid) == 14
    # what the builtin prep draws (pipeline.assign_splits over both voices' uids)
    uids = [f"{spk}/{k}" for spk in festival_corpus.VOICES for k in keys]
    drawn = pipeline.assign_splits(uids, 1234, 0.05, 0.05, "sentence")
    assert {u.split("/")[1] for u, s in drawn.items() if s == "test"} == test
    assert {u.split("/")[1] for u, s in drawn.items() if s == "valid"} == valid


def test_all_set_keeps_the_held_out_sentences_and_trains_on_every_extra_one() -> None:
    sents = festival_corpus.corpus_sentences("all")
    uids = [u for u, _ in sents]
    keys = _builtin_keys()
    assert uids[: len(keys)] == keys  # built-in first, same ids and texts
    assert len(set(uids)) == len(uids)
    extra = uids[len(keys):]
    assert len(extra) >= 2000
    assert extra == [f"f{i:04d}" for i in range(1, len(extra) + 1)]
    assert not set(extra) & set(keys)  # an "f" id never equals an "sNNNN" one
    split = festival_corpus.festival_splits(uids, 1234, 0.05, 0.05)
    test, valid = _expected_held_out(keys)
    assert {u for u, s in split.items() if s == "test"} == test
    assert {u for u, s in split.items() if s == "valid"} == valid
    assert all(split[u] == "train" for u in extra)
    # a subset (--max_utterances) keeps the same assignment for what it holds
    sub = festival_corpus.festival_splits(uids[:300], 1234, 0.05, 0.05)
    assert sub == {u: split[u] for u in uids[:300]}


def test_extra_sentences_file_header_filters_and_no_near_copy_of_a_builtin_sentence() -> None:
    with open(festival_corpus.EXTRA_SENTENCES_FILE, encoding="utf-8") as f:
        header = "".join(ln for ln in f if ln.startswith("#"))
    assert "Source: Debian package fortunes / fortunes-min" in header
    assert "Licence: BSD" in header and "Command: python data_prep/make_extra_sentences.py" \
        in header and "off/" in header
    extra = festival_corpus.load_extra_sentences()
    texts = [t for _, t in extra]
    assert texts == sorted(texts)
    assert [t for t in texts if make_extra_sentences.reject_reason(t)] == []
    builtin = festival_corpus.load_sentences()
    # no exact or near duplicate among them or of any built-in (held-out or not) sentence
    assert make_extra_sentences.dedupe(texts, reference=builtin) == texts
    test, valid = _expected_held_out(_builtin_keys())
    held = [builtin[int(k[1:]) - 1] for k in sorted(test | valid)]
    norm = [make_extra_sentences.normalize(t) for t in texts]
    for h in map(make_extra_sentences.normalize, held):
        assert not any(make_extra_sentences.near_duplicate(h, n, 0.6) for n in norm), h


@pytest.mark.parametrize("text, error", [
    ("f0001\tOne sentence here.\ns0002\tAnother one.\n",
     r"x\.txt:2: expected 'fNNNN<TAB>sentence', got 's0002\\tAnother one\.'"),
    ("# c\nf0001\tOne sentence here.\nf0001\tAnother one.\n", r"x\.txt:3: 'f0001' repeats line 2"),
    ("f0001\tOne sentence here.\nf0002\tone sentence HERE.\n",
     r"x\.txt:2: 'one sentence here\.' repeats line 1"),
    ("f0001 One sentence here.\n", r"x\.txt:1: expected 'fNNNN<TAB>sentence'"),
])
def test_extra_sentence_file_errors_name_the_line(tmp_path, text, error) -> None:
    path = tmp_path / "x.txt"
    path.write_text(text)
    with pytest.raises(festival_corpus.SentenceFileError, match=error):
        festival_corpus.load_extra_sentences(str(path))


def test_extra_sentence_repeating_a_builtin_one_is_an_error(tmp_path, monkeypatch) -> None:
    path = tmp_path / "x.txt"
    first = festival_corpus.load_sentences()[0]
    path.write_text(f"f0001\tA new sentence for the corpus.\nf0002\t{first.upper()}\n")
    monkeypatch.setattr(festival_corpus, "EXTRA_SENTENCES_FILE", str(path))
    with pytest.raises(festival_corpus.SentenceFileError, match=r"f0002 repeats built-in "
                       "sentence s0001"):
        festival_corpus.corpus_sentences("all")
    with pytest.raises(ValueError, match=r"sentence set 'big': expected one of builtin, all"):
        festival_corpus.corpus_sentences("big")


def test_each_sentence_set_has_its_own_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert festival_corpus.default_cache_dir() == str(tmp_path / "tts-gan" / "festival_corpus")
    assert festival_corpus.default_cache_dir("all") == os.path.join(
        tmp_path, "tts-gan", "festival_corpus_all")
    assert re.fullmatch(r"s\d{4}", festival_corpus.builtin_uid(289)) and \
        festival_corpus.builtin_uid(289) == "s0290"

"""tts_gan.intelligibility (moved out of benchmarks/intelligibility.py) and the benchmark: text
normalisation, WER aggregation, the packaged recogniser on real (Festival) speech and on noise,
the held-out set read from a data dir, and its errors."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from data_prep import festival_corpus, tfrecord_io
from tts_gan import intelligibility as scoring
from tts_gan import schema, synthesis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import intelligibility as intel  # noqa: E402  (benchmarks/intelligibility.py)

needs_festival = pytest.mark.skipif(
    festival_corpus.festival_binary() is None,
    reason="festival not installed (bash data_prep/install_system_deps.sh as root)",
)


# ------------------------------------------------------------------------------ normalisation
@pytest.mark.parametrize("text, expected", [
    ("The old ferry crossed the river slowly.", "the old ferry crossed the river slowly"),
    ("Shall we meet at four o'clock?", "shall we meet at four o'clock"),
    ("The queen's portrait hangs in the hall.", "the queen's portrait hangs in the hall"),
    ("The farmer's wife sold eggs, honey, and jam.", "the farmer's wife sold eggs honey and jam"),
    ("Mrs Patel planted a row of tulips.", "mrs patel planted a row of tulips"),
    ("missus patel", "mrs patel"),
    ("The grey harbour; the ploughed field.", "the gray harbor the plowed field"),
    ("gray harbor plowed", "gray harbor plowed"),
    ("Mrs. Patel", "mrs patel"),
    ("The dogs' bowls -- 'quoted' words", "the dogs bowls quoted words"),
    ("It\u2019s a well-known fact", "it's a well known fact"),
    ("<s> the cat <sil> [NOISE] sat </s>", "the cat sat"),
    ("  spaced\tout\n", "spaced out"),
    ("", ""),
])
def test_normalize_text(text: str, expected: str) -> None:
    assert scoring.normalize_text(text) == expected


def test_normalize_text_rejects_digits() -> None:
    with pytest.raises(ValueError, match="'4'.*spell numbers out"):
        scoring.normalize_text("Meet me at 4 o'clock.")


def test_built_in_sentences_normalise() -> None:
    """No built-in sentence has digits or normalises to nothing."""
    sentences = festival_corpus.load_sentences()
    assert len(sentences) > 100 and all(scoring.normalize_text(s) for s in sentences)


# ------------------------------------------------------------------------------ WER
def test_wer_is_corpus_level() -> None:
    # Hand-aligned: sentence 1 = 3 hits + 1 insertion ("down"); sentence 2 = one deletion and
    # one substitution ("a dog" -> "log"); sentence 3 = 3 hits. 3 errors in 3 + 2 + 3 = 8 words.
    refs = ["the cat sat", "a dog", "birds sing loudly"]
    hyps = ["the cat sat down", "log", "birds sing loudly"]
    s = scoring.wer_summary(refs, hyps)
    assert s["reference_words"] == 8 and s["sentences"] == 3
    assert (s["substitutions"], s["deletions"], s["insertions"], s["hits"]) == (1, 1, 1, 6)
    assert s["wer"] == pytest.approx(3 / 8)
    # Not the mean of the per-sentence rates (1/3, 2/2, 0/3 -> 4/9).
    assert s["wer"] != pytest.approx(4 / 9)


def test_wer_empty_hypothesis_and_reference() -> None:
    assert scoring.wer_summary(["one two three"], [""])["wer"] == pytest.approx(1.0)
    assert scoring.wer_summary([], [])["wer"] is None
    with pytest.raises(ValueError, match="empty reference"):
        scoring.wer_summary(["", "a b"], ["x", "a b"])


def test_summarise_pools_speakers() -> None:
    def row(spk, ref, hyp, p808):
        return {"speaker": spk, "reference_normalized": ref, "hypothesis_normalized": hyp,
                "seconds": 2.0, "dnsmos": {"p808": p808, "sig": 3.0, "bak": 4.0, "ovrl": 2.5}}

    rows = [row("b", "one two", "one two", 4.0), row("a", "x y z w", "x", 2.0),
            row("b", "red green blue", "red blue", 3.0)]
    s = scoring.summarise(rows)
    assert list(s) == ["a", "b", "all"]
    assert s["a"]["wer"] == pytest.approx(3 / 4) and s["a"]["sentences"] == 1
    assert s["b"]["wer"] == pytest.approx(1 / 5) and s["b"]["dnsmos_p808_mean"] == 3.5
    assert s["all"]["wer"] == pytest.approx(4 / 9) and s["all"]["reference_words"] == 9
    assert s["all"]["dnsmos_p808_mean"] == pytest.approx(3.0) and s["all"]["seconds"] == 6.0
    assert s["all"]["clicks"] is None  # rows scored before the edge levels: unknown, not 0
    for r, click in zip(rows, (True, False, True), strict=True):
        r["edges"] = {"click": click}
    s = scoring.summarise(rows)
    assert (s["a"]["clicks"], s["b"]["clicks"], s["all"]["clicks"]) == (0, 2, 2)


def _utterance(rng: np.random.Generator, seconds: float = 2.0, rate: int = 24000,
               floor: float = 1e-3) -> np.ndarray:
    """Speech-like test audio: a Gaussian noise floor (the pauses) under two loud voiced
    stretches (a 150-Hz sine, 0.3 peak) at 0.3-0.8 s and 1.1-1.7 s."""
    t = np.arange(int(seconds * rate)) / rate
    x = rng.normal(0.0, floor, t.shape)
    for a, b in ((0.3, 0.8), (1.1, 1.7)):
        x += np.where((t >= a) & (t < b), 0.3 * np.sin(2 * np.pi * 150 * t), 0.0)
    return x.astype(np.float32)


def test_edge_levels_find_a_one_sample_click() -> None:
    """Issue 25's defect, a one-sample click of 0.07 at the first or the last sample after a
    1e-3 noise floor, is found at either edge; the same click inside a pause, or none, is not;
    and 300 clean noise floors (seeds) never count as a click (the +6 dB margin holds against
    the scatter of noise peaks)."""
    rng = np.random.default_rng(0)
    clean = [_utterance(rng) for _ in range(300)]
    assert not any(scoring.edge_levels(x, 24000)["click"] for x in clean)
    x = clean[0]
    e = scoring.edge_levels(x, 24000)
    assert 2e-3 < e["pause_peak"] < 6e-3 and e["first_peak"] < 6e-3, e  # the floor, not speech
    for where in (0, len(x) - 1):
        y = x.copy()
        y[where] = 0.07
        assert scoring.edge_levels(y, 24000)["click"], where
    y = x.copy()
    y[int(0.95 * 24000)] = 0.07  # inside the pause between the two voiced stretches
    assert not scoring.edge_levels(y, 24000)["click"]
    with pytest.raises(scoring.IntelligibilityError, match="at least 3 frames of 10 ms"):
        scoring.edge_levels(x[:700], 24000)


# ------------------------------------------------------------------------------ the recogniser
@pytest.fixture(scope="module")
def recognizer() -> scoring.Recognizer:
    return scoring.Recognizer()


def test_recogniser_vocabulary(recognizer) -> None:
    """Words the packaged dictionary + LM have, and lacks (checked by hand in
    cmudict-en-us.dict: 'chapels' is absent; 'missus' is in the dictionary, not the LM)."""
    for w in ("the", "mrs", "o'clock", "queen's", "ferry"):
        assert recognizer.knows(w), w
    for w in ("chapels", "missus", "jeweller", "metres", "xqzt"):
        assert not recognizer.knows(w), w
    words = [w for s in festival_corpus.load_sentences() for w in scoring.normalize_text(s).split()]
    oov = [w for w in words if not recognizer.knows(w)]
    assert sorted(set(oov)) == ["chapels", "creaked", "knocker", "lamplight", "poplars"]
    assert len(oov) < 0.01 * len(words)  # a small floor under the WER: 5 of 3,298


@needs_festival
def test_scores_festival_speech_well_and_noise_badly(tmp_path, capsys, recognizer) -> None:
    """End to end on one real held-out recording (Festival slt, 32 kHz → 16 kHz): pocketsphinx
    gets most words and DNSMOS rates it as speech; white noise of the same loudness gets next
    to no words and low DNSMOS scores."""
    text = "The ship's bell rang out across the calm and misty bay."  # 11 words
    uid = "slt_hts/s0001"
    corpus = tmp_path / "corpus"
    for sub in ("wav", "lab", "text"):
        os.makedirs(corpus / sub / "slt_hts")
    festival_corpus.render_batch(festival_corpus.VOICES["slt_hts"], [
        (text, str(corpus / "wav" / f"{uid}.wav"), str(corpus / "lab" / f"{uid}.lab"),
         str(corpus / "text" / f"{uid}.txt"))])
    data = _data_dir(tmp_path / "data", [(uid, 1)])
    out, png = tmp_path / "out" / "r.json", tmp_path / "out" / "s.png"
    assert intel.main([f"--data_dir={data}", f"--corpus_dir={corpus}", f"--output_json={out}",
                       f"--spectrogram_png={png}"]) == 0
    assert "| recording | slt_hts | 1 |" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "out")) == ["r.json", "s.png"]  # no temporary left
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(out) as f:
        report = json.load(f)
    assert "model" not in report["utterances"]  # no --export_dir
    row = report["utterances"]["recording"][0]
    s = report["summary"]["recording"]["slt_hts"]
    assert s["reference_words"] == 11 and s["hits"] >= 7 and s["wer"] <= 0.4, row
    assert report["summary"]["recording"]["all"]["wer"] == s["wer"]  # one speaker
    assert row["seconds"] == pytest.approx(sf.info(corpus / "wav" / f"{uid}.wav").duration,
                                           abs=1e-3)
    assert row["dnsmos"]["p808"] >= 3.0, row  # FINDINGS: 3.58-3.88 on Festival slt
    assert not row["edges"]["click"], row["edges"]  # Festival's own rendering has no click
    assert s["clicks"] == 0

    audio, sr = sf.read(corpus / "wav" / f"{uid}.wav", dtype="float32")
    assert sr == 32000
    x = scoring.to_16k(audio, sr)
    assert len(x) == pytest.approx(len(audio) / 2, abs=2)
    noise = np.random.default_rng(0).normal(0.0, float(np.std(x)), 2 * scoring.ASR_RATE)
    noise = noise.astype(np.float32)
    hyp = scoring.normalize_text(recognizer.transcribe(noise))
    assert scoring.wer_summary([scoring.normalize_text(text)], [hyp])["hits"] <= 1, hyp
    scores = scoring.dnsmos(noise)
    assert scores["p808"] < row["dnsmos"]["p808"] - 0.8 and scores["ovrl"] < 2.0, scores


# ------------------------------------------------------------------------------ inputs
def _data_dir(path, uids: list[tuple[str, int]], count: int | None = None,
              split: str = "test") -> str:
    """A minimal prep dir: manifest.json + one ``split``_utterances shard with ``uids``; the
    k-th utterance's features are all k (identity normalisation)."""
    os.makedirs(path, exist_ok=True)
    w = tfrecord_io.ShardWriter(os.path.join(path, schema.shard_name(
        schema.utterance_prefix(split), 0, 1)))
    for k, (uid, spk) in enumerate(uids):
        w.write(tfrecord_io.utterance_example(np.zeros(240, np.float32),
                                              np.full((2, 3), k, np.float32), spk, uid))
    w.publish()
    n = len(uids) if count is None else count
    manifest = {
        "format_version": schema.FORMAT_VERSION, "feature_dim": 3,
        "feature_breakdown": [{"name": "x", "start": 0, "size": 3, "kind": schema.NUMERIC}],
        "sample_rate": schema.SAMPLE_RATE, "frame_rate": schema.FRAME_RATE, "mu": schema.MU,
        "window_frames": 400, "hop_frames": 400, "compression": "",
        "counts": {s: {"shards": 1, "utterances": n if s == split else 0, "windows": 0}
                   for s in schema.SPLITS},
        "hours": {}, "speakers": {"kal_diphone": 0, "slt_hts": 1}, "num_speakers": 2,
        "normalisation": {"mean": [0.0] * 3, "std": [1.0] * 3}, "rejected": 0,
        "command": "tests/intelligibility_test.py",
    }
    with open(os.path.join(path, schema.MANIFEST_NAME), "w") as f:
        json.dump(manifest, f)
    return str(path)


def _corpus(path, uids: list[str], texts: list[str]) -> str:
    for uid, text in zip(uids, texts, strict=True):
        for sub in ("wav", "text"):
            os.makedirs(os.path.join(path, sub, uid.split("/")[0]), exist_ok=True)
        sf.write(os.path.join(path, "wav", uid + ".wav"), np.zeros(1600, np.float32), 16000)
        with open(os.path.join(path, "text", uid + ".txt"), "w") as f:
            f.write(text + "\n")
    return str(path)


def test_held_out_set_comes_from_the_data_dir(tmp_path) -> None:
    uids = [("slt_hts/s0007", 1), ("kal_diphone/s0007", 0), ("kal_diphone/s0002", 0),
            ("slt_hts/s0100", 1)]
    data = _data_dir(tmp_path / "data", uids)
    corpus = _corpus(tmp_path / "corpus", [u for u, _ in uids] + ["slt_hts/s0001"],
                     ["A b.", "C d.", "E f.", "G h.", "Not held out."])
    items = scoring.corpus_items(data, corpus)
    assert [(i.utterance_id, i.speaker, i.speaker_id, i.text) for i in items] == [
        ("kal_diphone/s0002", "kal_diphone", 0, "E f."),
        ("kal_diphone/s0007", "kal_diphone", 0, "C d."),
        ("slt_hts/s0007", "slt_hts", 1, "A b."),
        ("slt_hts/s0100", "slt_hts", 1, "G h.")]
    assert [i.utterance_id for i in scoring.corpus_items(data, corpus, max_sentences=1)] == [
        "kal_diphone/s0002", "slt_hts/s0007"]
    assert intel._two_sentences(items) == [0, 2]  # one sentence of each speaker


def test_spectrogram_picks_two_different_sentences() -> None:
    def item(uid: str, text: str) -> scoring.Item:
        return scoring.Item(uid, uid.split("/")[0], 0, text, f"{uid}.wav")

    # Split by sentence: both voices render the same held-out sentences.
    same = [item("kal/s2", "E f."), item("kal/s7", "C d."), item("slt/s2", "E f."),
            item("slt/s7", "C d.")]
    assert intel._two_sentences(same) == [0, 3]  # two sentences, two voices
    one_voice = [item("slt/s2", "E f."), item("slt/s2b", "E f."), item("slt/s7", "C d.")]
    assert intel._two_sentences(one_voice) == [0, 2]
    assert intel._two_sentences([item("slt/s2", "E f.")]) == [0]


class _FakeSynth:
    """The parts of tts_gan.synthesis.ExportedSynthesizer synthesize_items uses; its audio
    encodes the speaker id and the seed of each call."""

    path, sample_rate, feature_dim, num_speakers = "/fake/1", 24000, 3, 2

    def __init__(self, speakers: dict[str, int]) -> None:
        self.speakers = speakers

    def manifest(self):
        return types.SimpleNamespace(speakers=self.speakers,
                                     extra={"f0_method": "harvest", "frontend_version": 1})

    def check(self, utt) -> None:
        pass

    def question_file(self) -> str:
        return "questions.hed"

    def run(self, features, lengths, speakers, seeds):
        audio = np.zeros((len(lengths), 120 * features.shape[1]), np.float32)
        for b, (spk, seed) in enumerate(zip(speakers, seeds, strict=True)):
            audio[b] = 1000 * spk + seed + features[b, 0, 0]
        return audio, 120 * np.asarray(lengths)


def test_synthesize_items_speaks_each_text_with_the_exports_speaker_id(monkeypatch) -> None:
    calls = []

    def fake_text(texts, ids, qfile, speaker=0, *, voice, f0_method, frontend_version):
        # the export's training-data front end, as tts-gan-synthesize passes it
        assert (f0_method, frontend_version) == ("harvest", 1)
        calls.append((voice, list(texts)))
        return [synthesis.Utterance(u, np.full((2 + k, 3), 0.5 * k, np.float32), speaker)
                for k, u in enumerate(ids)]

    monkeypatch.setattr(synthesis, "utterances_from_text", fake_text)
    items = [scoring.Item("kal_diphone/s0002", "kal_diphone", 0, "B text.", "w"),
             scoring.Item("kal_diphone/s0007", "kal_diphone", 0, "A text.", "w"),
             scoring.Item("slt_hts/s0007", "slt_hts", 1, "A text.", "w")]
    # The export numbers the speakers the other way round than the data dir.
    out = intel.synthesize_items(_FakeSynth({"slt_hts": 0, "kal_diphone": 1}), items, seed=10)
    # each speaker's distinct texts through its own Festival voice, once
    assert calls == [("voice_cmu_us_slt_arctic_hts", ["A text."]),
                     ("voice_kal_diphone", ["A text.", "B text."])]
    # value = 1000 * export speaker id + (seed + i) + 0.5 * (index of the text in its call)
    assert [float(a[0]) for a in out] == [1010.5, 1011.0, 12.0]
    assert [len(a) for a in out] == [120 * 3, 120 * 2, 120 * 2]
    with pytest.raises(scoring.IntelligibilityError, match="no speaker 'slt_hts'"):
        intel.synthesize_items(_FakeSynth({"kal_diphone": 0}), items)
    assert len(calls) == 2  # checked before Festival runs


def test_recorded_conditioning_on_the_train_split(tmp_path) -> None:
    """--split=train --conditioning=recorded: the train_utterances records' own features
    (copy synthesis), with the export's speaker ids; no Festival."""
    uids = [("slt_hts/s0003", 1), ("kal_diphone/s0003", 0)]
    data = _data_dir(tmp_path / "data", uids, split="train")
    corpus = _corpus(tmp_path / "corpus", [u for u, _ in uids], ["A b.", "A b."])
    with pytest.raises(scoring.IntelligibilityError, match="no test utterance shards"):
        scoring.corpus_items(data, corpus)
    items = scoring.corpus_items(data, corpus, split="train")
    assert [i.utterance_id for i in items] == ["kal_diphone/s0003", "slt_hts/s0003"]
    out = intel.synthesize_items(_FakeSynth({"slt_hts": 0, "kal_diphone": 1}), items, seed=10,
                                 conditioning="recorded", data_dir=data, split="train")
    # value = 1000 * export speaker id + (seed + i) + features (k of the record)
    assert [float(a[0]) for a in out] == [1000 + 10 + 1, 0 + 11 + 0]
    with pytest.raises(synthesis.SynthesisError, match="no utterance 'slt_hts/s0009'"):
        intel.synthesize_items(_FakeSynth({"slt_hts": 0, "kal_diphone": 1}),
                               [dataclasses.replace(items[1], utterance_id="slt_hts/s0009")],
                               conditioning="recorded", data_dir=data, split="train")


def _error(capsys, argv: list[str]) -> str:
    assert intel.main(argv) == 1
    return capsys.readouterr().err


def test_errors_name_the_input(tmp_path, capsys) -> None:
    missing = str(tmp_path / "nope")
    err = _error(capsys, [f"--data_dir={missing}", f"--corpus_dir={tmp_path}"])
    assert f"--data_dir={missing}: no such directory" in err and "tts-gan-prep" in err

    err = _error(capsys, [f"--data_dir={tmp_path}", f"--corpus_dir={tmp_path}"])
    assert os.path.join(str(tmp_path), "manifest.json") in err

    data = _data_dir(tmp_path / "data", [("slt_hts/s0001", 1)])
    err = _error(capsys, [f"--data_dir={data}", f"--corpus_dir={tmp_path}",
                          f"--export_dir={missing}"])
    assert f"--export_dir={missing}: no such directory" in err and "tts-gan-export" in err

    err = _error(capsys, [f"--data_dir={data}", f"--corpus_dir={tmp_path}"])
    assert os.path.join(str(tmp_path), "wav", "slt_hts", "s0001.wav") + ": missing" in err

    corpus = _corpus(tmp_path / "corpus", ["slt_hts/s0001"], ["Call 911 now."])
    err = _error(capsys, [f"--data_dir={data}", f"--corpus_dir={corpus}"])
    assert os.path.join(corpus, "text", "slt_hts", "s0001.txt") in err and "'911'" in err

    corpus2 = _corpus(tmp_path / "corpus2", ["slt_hts/s0001"], ["Fine words."])
    err = _error(capsys, [f"--data_dir={data}", f"--corpus_dir={corpus2}",
                          f"--export_dir={tmp_path / 'corpus2'}"])
    assert f"--export_dir={tmp_path / 'corpus2'}: not a usable tts-gan-export" in err

    short = _data_dir(tmp_path / "short", [("slt_hts/s0001", 1)], count=2)
    err = _error(capsys, [f"--data_dir={short}", f"--corpus_dir={corpus2}"])
    assert "1 test utterances" in err and "test.utterances = 2" in err


# ------------------------------------------------------------------------------ unseen text
UNSEEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "benchmarks", "unseen_sentences.txt")


def _words(text: str) -> tuple[str, ...]:
    """Lower-case letter runs: an independent tokenisation for the overlap check."""
    import re

    return tuple(re.findall(r"[a-z]+", text.lower()))


def test_unseen_sentences_are_in_no_corpus_file() -> None:
    """The unseen-text set (issue 25: ≥ 20 sentences, in no corpus file): no sentence equals a
    corpus sentence, and none shares more than 40 % of its word set with one (the one that did,
    a rewording of a built-in sentence, was replaced)."""
    unseen = intel.read_text_file(UNSEEN)
    assert len(unseen) >= 20 and len(set(unseen)) == len(unseen)
    data_prep = os.path.dirname(festival_corpus.__file__)
    corpus = []
    for name in sorted(os.listdir(data_prep)):
        if name.startswith("sentences") and name.endswith(".txt"):
            with open(os.path.join(data_prep, name), encoding="utf-8") as f:
                corpus += [_words(ln) for ln in f if ln.strip() and not ln.startswith("#")]
    assert len(corpus) > 2000  # sentences.txt and sentences_extra.txt
    sets = [set(c) for c in corpus]
    for text in unseen:
        w = _words(text)
        assert w not in corpus, text
        overlap = max(len(set(w) & c) / len(set(w) | c) for c in sets)
        assert overlap <= 0.4, (text, overlap)


def test_read_text_file_errors_name_the_line(tmp_path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("# comment\n\nFine words here.\nCall 911 now.\n", encoding="utf-8")
    with pytest.raises(intel.IntelligibilityError, match=rf"{path}:4: .*'911'"):
        intel.read_text_file(str(path))
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(intel.IntelligibilityError, match="no sentences"):
        intel.read_text_file(str(path))
    with pytest.raises(intel.IntelligibilityError, match="cannot read"):
        intel.read_text_file(str(tmp_path / "missing.txt"))


@needs_festival
def test_text_file_references_are_festival_with_each_speakers_voice(tmp_path, capsys,
                                                                    recognizer) -> None:
    """``--text_file``: every built-in voice speaks every sentence, its reference rendered by
    its own Festival voice (kal_diphone writes 16 kHz, the slt HTS voice 32 kHz), and the
    report scores one row per (speaker, sentence) without a data dir."""
    path = tmp_path / "t.txt"
    path.write_text("The pilot told the passengers to fasten their seat belts.\n"
                    "She keeps her keys in a bowl beside the front door.\n", encoding="utf-8")
    items = intel.text_file_items(intel.read_text_file(str(path)),
                                  {"kal_diphone": 0, "slt_hts": 1}, None, str(tmp_path / "w"))
    assert [(it.speaker, it.speaker_id) for it in items] == [("kal_diphone", 0)] * 2 + [
        ("slt_hts", 1)] * 2
    rates = {it.speaker: sf.info(it.wav).samplerate for it in items}
    assert rates == {"kal_diphone": 16000, "slt_hts": 32000}
    out = tmp_path / "r.json"
    assert intel.main([f"--text_file={path}", f"--output_json={out}"]) == 0
    report = json.loads(out.read_text())
    assert report["held_out_utterances"] == 4 and report["data_dir"] is None
    summary = report["summary"]["recording"]
    assert summary["all"]["sentences"] == 4 and summary["all"]["wer"] < 0.5
    assert "unseen-text recordings" in capsys.readouterr().out

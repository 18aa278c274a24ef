"""tts-gan-prep --format=festival end to end on a few sentences (needs the Debian packages)."""

from __future__ import annotations

import sys

import pytest

from data_prep import festival_corpus, prep_main
from tts_gan import schema

needs_festival = pytest.mark.skipif(
    festival_corpus.festival_binary() is None,
    reason="festival not installed (bash data_prep/install_system_deps.sh as root)",
)


@needs_festival
def test_festival_corpus_to_567_dim_windows(tmp_path, monkeypatch) -> None:
    from absl import flags

    out = tmp_path / "data"
    argv = ["tts-gan-prep", "--format=festival", f"--corpus_dir={tmp_path / 'cache'}",
            f"--output_dir={out}", "--max_utterances=6", "--window_frames=100",
            "--workers=2", "--noprogress"]
    monkeypatch.setattr(sys, "argv", argv)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        assert prep_main.main([argv[0]]) == 0
    finally:
        flags.FLAGS.unparse_flags()
    m = schema.load_manifest(str(out))
    assert m.feature_dim == 567 and m.num_speakers == 2
    assert set(m.speakers) == set(festival_corpus.VOICES)
    assert m.rejected == 0
    assert sum(m.counts[s]["utterances"] for s in schema.SPLITS) == 6
    assert m.counts["train"]["windows"] > 0 and "--format=festival" in m.command
    # Split by sentence by default: 3 sentences -> 1 test, 1 valid, 1 train, each in 2 voices.
    assert m.extra["splits"]["split_by"] == "sentence"
    assert [m.counts[s]["utterances"] for s in ("train", "valid", "test")] == [2, 2, 2]
    # cached: a second render does not call Festival again
    stamp = (tmp_path / "cache" / "wav" / "slt_hts" / "s0001.wav").stat().st_mtime_ns
    festival_corpus.render_corpus(str(tmp_path / "cache"), max_sentences=3, progress=False)
    assert (tmp_path / "cache" / "wav" / "slt_hts" / "s0001.wav").stat().st_mtime_ns == stamp

    # From text, each built-in speaker gets its own voice's durations and F0: the text path
    # reproduces the prepared features of its held-out utterance (same Festival render, same
    # front end); the other voice's prosody does not.
    import numpy as np

    from tts_gan import synthesis

    fe = synthesis.training_front_end(m)
    qfile = synthesis.default_question_file(m)
    held_out = synthesis.utterances_from_prep(str(out), "test")
    for spk in ("kal_diphone", "slt_hts"):
        voice = synthesis.festival_voice(m, m.speakers[spk])
        assert voice == festival_corpus.VOICES[spk]
        (prepared,) = [u for u in held_out if u.utterance_id.startswith(spk + "/")]
        text = (tmp_path / "cache" / "text" / f"{prepared.utterance_id}.txt").read_text()
        (own,) = synthesis.utterances_from_text([text], ["t"], qfile, voice=voice, **fe)
        assert own.features.shape == prepared.features.shape
        np.testing.assert_allclose(own.features, prepared.features, atol=1e-4, rtol=1e-5)
        other = festival_corpus.VOICES["slt_hts" if spk == "kal_diphone" else "kal_diphone"]
        (wrong,) = synthesis.utterances_from_text([text], ["t"], qfile, voice=other, **fe)
        assert wrong.features.shape != prepared.features.shape or not np.allclose(
            wrong.features, prepared.features, atol=1e-2)


def _prep(argv: list[str], monkeypatch) -> int:
    from absl import flags

    argv = ["tts-gan-prep", *argv, "--noprogress"]
    monkeypatch.setattr(sys, "argv", argv)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        return prep_main.main([argv[0]])
    finally:
        flags.FLAGS.unparse_flags()


@needs_festival
def test_all_sentences_keep_the_builtin_split_and_train_on_the_extra_ones(
        tmp_path, monkeypatch) -> None:
    """--festival_sentences=all on a small stand-in for the two sentence files: the built-in
    sentences keep the split the builtin prep gives them, the extra ones are all train; a
    builtin prep from the same cache reads only the built-in sentences."""
    import hashlib

    from tts_gan.data import make_utterance_dataset

    def split_of(data_dir: str) -> dict[str, str]:
        return {ex["utterance_id"].numpy().decode(): split for split in schema.SPLITS
                for ex in make_utterance_dataset(data_dir, split)}

    builtin = ["The old ferry crossed the grey river slowly.",
               "A bright lantern hung from the hook beside the door.",
               "She folded the letter twice and slipped it away.",
               "The farmer carried two buckets of fresh milk."]
    (tmp_path / "s.txt").write_text("# header\n" + "\n".join(builtin) + "\n")
    (tmp_path / "x.txt").write_text("# extra\nf0001\tA bird in the hand is worth two in the "
                                    "bush.\nf0002\tAnything free is worth what you pay for it.\n")
    monkeypatch.setattr(festival_corpus, "SENTENCES_FILE", str(tmp_path / "s.txt"))
    monkeypatch.setattr(festival_corpus, "EXTRA_SENTENCES_FILE", str(tmp_path / "x.txt"))
    cache, out = tmp_path / "cache", tmp_path / "all"
    common = [f"--corpus_dir={cache}", "--window_frames=100", "--workers=2"]
    assert _prep(["--format=festival", "--festival_sentences=all", f"--output_dir={out}",
                  *common], monkeypatch) == 0
    # expected: sha256("1234:sNNNN") order over the 4 built-in ids: 1 test, 1 valid
    order = sorted((f"s{i:04d}" for i in range(1, 5)),
                   key=lambda k: hashlib.sha256(f"1234:{k}".encode()).hexdigest())
    want = {order[0]: "test", order[1]: "valid", order[2]: "train", order[3]: "train",
            "f0001": "train", "f0002": "train"}
    got = split_of(str(out))
    assert got == {f"{spk}/{k}": s for spk in festival_corpus.VOICES for k, s in want.items()}
    m = schema.load_manifest(str(out))
    assert m.extra["splits"]["fixed"].startswith("--festival_sentences=all: the split of")
    assert "--festival_sentences=all" in m.command
    # the builtin set from the same cache: the 4 built-in sentences only, same held-out ones
    assert _prep(["--format=festival", f"--output_dir={tmp_path / 'builtin'}", *common],
                 monkeypatch) == 0
    got_b = split_of(str(tmp_path / "builtin"))
    assert got_b == {u: s for u, s in got.items() if "/s" in u}
    # flags that do not fit
    from absl import app

    with pytest.raises(app.UsageError, match="--festival_sentences=all splits by sentence"):
        _prep(["--format=festival", "--festival_sentences=all", "--split_by=utterance",
               f"--output_dir={tmp_path / 'x'}", *common], monkeypatch)
    with pytest.raises(app.UsageError, match="--festival_sentences is for --format=festival"):
        _prep(["--format=hts", "--festival_sentences=all", f"--output_dir={tmp_path / 'x'}",
               *common], monkeypatch)

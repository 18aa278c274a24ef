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

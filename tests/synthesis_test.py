"""tts-gan-synthesize: streaming (receptive field), batching (App. A.1), front ends, wav files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from export_synthesis_helpers import (
    FEATURE_DIM,
    NUM_SPEAKERS,
    assert_audio_differs,
    assert_same_audio,
    make_model_dir,
    make_prep_dir,
    manifest_dict,
    tiny_config,
    tiny_export_rounding,
)
from float32_bounds import audio_difference, exceeds, within

from tts_gan import export, synthesis
from tts_gan.generator import accumulate_standing_statistics, build_and_init, build_generator

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A tiny export (in-process: restored EMA weights, standing statistics, no TFLite)."""
    root = tmp_path_factory.mktemp("synth")
    make_model_dir(str(root / "model"))
    # the front end a real prep records (synthesis from text refuses to guess it, #29)
    with open(root / "model" / "manifest.json") as f:
        m = json.load(f)
    m.update(f0_method="dio", frontend_version=2)
    with open(root / "model" / "manifest.json", "w") as f:
        json.dump(m, f)
    gen, _, manifest, _ = export.load_ema_generator(str(root / "model"))
    export.standing_statistics(gen, 2, 2, 24, from_random=True)
    assets = {"manifest.json": str(root / "model" / "manifest.json")}
    export.export_saved_model(gen, str(root / "serving"), mean=np.array(manifest.mean),
                              std=np.array(manifest.std), assets=assets)
    return synthesis.ExportedSynthesizer(str(root / "serving"))


def _utt(t, seed=0, speaker=0):
    """RAW features whose normalised values are N(0, 1), like the training data."""
    rng = np.random.default_rng(seed)
    m = manifest_dict()["normalisation"]
    raw = rng.normal(size=(t, FEATURE_DIM)) * np.array(m["std"]) + np.array(m["mean"])
    return synthesis.Utterance(f"u{seed}", raw.astype(np.float32), speaker)


def test_receptive_field_halfwidth_is_a_tight_bound():
    """Perturb one input frame; the output changes only within ±H frames (H from the layer
    walk, 46 for the Table-2 structure, which the tiny config shares)."""
    tf.keras.utils.set_random_seed(0)  # fixed weights and inputs: the reach is deterministic
    gen = build_and_init(build_generator(tiny_config().generator, 7, 1))
    # Sampling state (standing statistics): normalised activations, so the output is not
    # saturated (an untrained model with initial BN statistics often is: tanh rounds to ±1
    # everywhere and hides where an input change reaches).
    rng = np.random.default_rng(0)
    accumulate_standing_statistics(gen, (
        dict(features=tf.constant(rng.normal(size=(4, 64, 7)), tf.float32),
             z=tf.constant(rng.normal(size=(4, 16)), tf.float32)) for _ in range(5)), 5)
    assert gen.receptive_field_frames() == pytest.approx(90.7667, abs=1e-3)
    h = gen.receptive_field_halfwidth_frames()
    assert h == 46
    t, t0 = 200, 100
    rng = np.random.default_rng(1)
    f = tf.constant(rng.normal(size=(1, t, 7)), tf.float32)
    z = tf.constant(rng.normal(size=(1, 16)), tf.float32)
    f2 = tf.tensor_scatter_nd_update(f, [[0, t0]], [tf.fill([7], 9.0)])
    a = gen(f, z, training=False)[0, :, 0].numpy()
    b = gen(f2, z, training=False)[0, :, 0].numpy()
    changed = np.nonzero(a != b)[0] // 120  # output frames that see frame t0
    reach = max(t0 - changed.min(), changed.max() - t0)
    assert reach <= h  # streaming with overlap h is exact
    assert reach >= h - 3  # and h is not a loose over-estimate (measured: 44)


@pytest.mark.parametrize("t,chunk", [(230, 50), (97, 40), (120, 400), (61, 7)])
def test_streaming_equals_one_shot(synth, t, chunk):
    utt = _utt(t, seed=t, speaker=1)
    one = np.concatenate([a for _, a in synthesis.synthesize_batched(synth, [utt], [5])])
    chunks = list(synthesis.synthesize_streaming(synth, utt, 5, chunk_frames=chunk))
    assert len(chunks) == -(-t // chunk)
    streamed = np.concatenate(chunks)
    assert streamed.shape == one.shape == (120 * t,)
    # Chunks are shorter tensors than the utterance: float32 rounding only (float32_bounds).
    # Worst measured (oneDNN on/off × 1/2 threads, XLA auto-jit): 0.006 of the bound.
    assert_same_audio(streamed, one, "streamed vs one-shot")


def test_streaming_with_too_little_overlap_differs(synth):
    """The control: overlap below the receptive field changes the audio near chunk edges,
    607× the rounding bound of test_streaming_equals_one_shot."""
    utt = _utt(200, seed=3)
    one = np.concatenate([a for _, a in synthesis.synthesize_batched(synth, [utt], [5])])
    short = np.concatenate(list(synthesis.synthesize_streaming(synth, utt, 5, 50, overlap=4)))
    assert_audio_differs(short, one, "overlap 4 frames (receptive field 46)")


def test_batched_synthesis_is_independent_of_grouping(synth):
    utts = [_utt(t, seed=i, speaker=i % NUM_SPEAKERS) for i, t in enumerate([33, 8, 51, 20, 9])]
    seeds = [100 + i for i in range(len(utts))]
    by_one = dict(synthesis.synthesize_batched(synth, utts, seeds, batch_size=1))
    by_three = dict(synthesis.synthesize_batched(synth, utts, seeds, batch_size=3))
    for i, u in enumerate(utts):
        assert by_one[i].shape == (120 * u.features.shape[0],)
        # Padded to the group's longest: float32 rounding only (float32_bounds). Worst
        # measured: 0.019 of the bound (oneDNN on, 2 threads; #18's Xeon failed the old 1e-5).
        assert_same_audio(by_three[i], by_one[i], "grouped vs alone")
    # Control: the 8-frame utterance padded to its group's 20 frames without masking (lengths
    # = 20) differs by 1,200× the bound.
    padded, _ = synthesis.pad_batch([utts[1].features, utts[3].features])
    unmasked, _ = synth.run(padded[:1], [20], [utts[1].speaker], [seeds[1]])
    assert_audio_differs(unmasked[0, :120 * 8], by_one[1], "padding not masked")


def test_chunk_bounds_cover_the_utterance():
    b = synthesis.chunk_bounds(103, 40, 46)
    assert b == [(0, 0, 40, 86), (0, 40, 80, 103), (34, 80, 103, 103)]


def test_write_wav_is_atomic_16bit_24k(tmp_path):
    path = str(tmp_path / "x.wav")
    n = synthesis.write_wav(path, [np.full(100, 0.5, np.float32), np.full(20, 2.0, np.float32)],
                            24000)
    info = sf.info(path)
    assert (n, info.samplerate, info.subtype, info.frames) == (120, 24000, "PCM_16", 120)
    assert os.listdir(tmp_path) == ["x.wav"]
    x, _ = sf.read(path)
    assert x[-1] == pytest.approx(32767 / 32768)  # clipped to [-1, 1]
    def failing():
        yield np.zeros(50, np.float32)
        raise RuntimeError("synthesis failed mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        synthesis.write_wav(str(tmp_path / "y.wav"), failing(), 24000)
    assert os.listdir(tmp_path) == ["x.wav"]  # no partial file left behind


def test_prep_split_front_end_gives_raw_features(tmp_path):
    raw = make_prep_dir(str(tmp_path))
    utts = synthesis.utterances_from_prep(str(tmp_path))
    assert [u.utterance_id for u in utts] == ["u0", "u1", "u2"]
    assert [u.speaker for u in utts] == [0, 1, 0]
    for u, r in zip(utts, raw, strict=True):
        np.testing.assert_allclose(u.features, r, atol=1e-4, rtol=1e-5)


def test_text_and_label_front_ends_match_and_cli_writes_wavs(synth, tmp_path):
    """Text → Festival → labels + wav → features; the same labels via --labels give the same
    features; the CLI writes one 24 kHz wav of exactly 120 × frames samples per line."""
    qfile = synthesis.default_question_file(None)
    rendered = synthesis.festival_render(["Hello world."], str(tmp_path))
    lab, wav = rendered[0]
    from_labels = synthesis.utterances_from_labels(
        lab, str(tmp_path), qfile, speaker=1, **synthesis.training_front_end(synth.manifest()))
    assert from_labels[0].features.shape[1] == FEATURE_DIM
    frames = from_labels[0].features.shape[0]
    assert 100 < frames < 400  # about a second of speech
    out = tmp_path / "out"
    cmd = [os.path.join(os.path.dirname(sys.executable), "tts-gan-synthesize"),
           f"--export_dir={os.path.dirname(synth.path)}",
           "--text=Hello world.\nSecond líne. A third sentence.",
           f"--output_dir={out}", "--seed=3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["utterances"], summary["sentences"]) == (2, 3)
    # the tiny export's manifest predates the recorded range: said, not silently skipped
    assert "has no training feature range" in proc.stderr
    # the non-ASCII line went to Festival transliterated, and the summary says so
    assert summary["transliterated"] == [{"line": 2, "text": "Second líne. A third sentence.",
                                          "ascii": "Second line. A third sentence."}]
    # default speaker slt_hts (id 1) speaks with its own Festival voice
    assert (summary["speaker"], summary["festival_voice"]) == (1, "voice_cmu_us_slt_arctic_hts")
    names = ["0001-hello-world.wav", "0002-second-line-a-third-sentence.wav"]
    assert sorted(os.listdir(out)) == summary["files"] == names
    info = sf.info(str(out / "0001-hello-world.wav"))
    assert (info.samplerate, info.subtype, info.frames) == (24000, "PCM_16", 120 * frames)
    # Same utterance through the Python API with the same seed (utterance 1 → seed 3).
    ref = np.concatenate([a for _, a in synthesis.synthesize_batched(
        synth, [from_labels[0]], [3])])
    got, _ = sf.read(str(out / "0001-hello-world.wav"), dtype="float32")
    # 16-bit quantisation (±0.5 LSB, and full scale 32767 written vs 32768 read: 1.5 / 32768),
    # then float32 rounding (the CLI synthesises both lines as one padded batch).
    # Worst measured: 0 beyond the quantisation.
    quantisation = 1.5 / 32768
    within("CLI wav vs API", audio_difference(got, ref, 65535.0, quantisation),
           tiny_export_rounding())
    # Control: the wrong seed (utterance 2's) gives other audio, 1,150× the bound.
    other = np.concatenate([a for _, a in synthesis.synthesize_batched(
        synth, [from_labels[0]], [4])])
    exceeds("CLI wav vs API with another seed",
            audio_difference(got, other, 65535.0, quantisation), tiny_export_rounding())
    # default speaker for text: the manifest's slt_hts id
    assert synthesis.ExportedSynthesizer(synth.path).manifest().speakers["slt_hts"] == 1
    # Line 2 holds two sentences (#27: a paragraph was one Festival utterance): each is its own
    # utterance (sentences 2 and 3 of the input: seeds 4 and 5), joined by 0.2 s of silence.
    s2, s3 = synthesis.utterances_from_text(
        ["Second line.", "A third sentence."], ["s2", "s3"], synth.question_file(), 1,
        voice="voice_cmu_us_slt_arctic_hts", **synthesis.training_front_end(synth.manifest()))
    want = {i: a for i, a in synthesis.synthesize_batched(synth, [s2, s3], [4, 5])}
    ref2, _ = sf.read(str(out / "0002-second-line-a-third-sentence.wav"), dtype="float32")
    n2, n3 = len(want[0]), len(want[1])
    assert len(ref2) == n2 + 4800 + n3
    assert not ref2[n2 : n2 + 4800].any()
    for got_part, part in ((ref2[:n2], want[0]), (ref2[n2 + 4800:], want[1])):
        within("a sentence of line 2 vs API", audio_difference(got_part, part, 65535.0,
                                                               quantisation),
               tiny_export_rounding())

    # A second run into the same directory replaces nothing without --overwrite (#27: the
    # first run's file was silently replaced); nothing is synthesised, the error names a file.
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    again = subprocess.run(cmd[:-1] + ["--seed=9"], capture_output=True, text=True, env=ENV,
                           timeout=300)
    assert again.returncode == 1, again.stdout
    assert f"{out}/0001-hello-world.wav exists (2 of the 2 output files do); pass --overwrite" \
        in again.stderr
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    # With --overwrite the files are replaced (another pause), and no temporary is left;
    # --streaming writes each sentence as it is ready: the same sentences' audio.
    forced = subprocess.run(cmd + ["--overwrite", "--streaming", "--sentence_pause=0.5"],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert sorted(os.listdir(out)) == sorted(before)
    streamed, _ = sf.read(str(out / names[1]), dtype="float32")
    assert len(streamed) == n2 + 12000 + n3
    for got_part, part in ((streamed[:n2], want[0]), (streamed[n2 + 12000:], want[1])):
        within("a streamed sentence of line 2 vs API", audio_difference(
            got_part, part, 65535.0, quantisation), tiny_export_rounding())
    # real_time_factor is synthesis time / audio time, x_real_time the speed-up
    js = json.loads(forced.stdout.strip().splitlines()[-1])
    assert js["audio_seconds"] == pytest.approx((120 * frames + len(streamed)) / 24000)
    assert js["real_time_factor"] == pytest.approx(js["synthesis_seconds"] / js["audio_seconds"])
    assert js["x_real_time"] == pytest.approx(js["audio_seconds"] / js["synthesis_seconds"])


def test_summary_real_time_factor_is_synthesis_over_audio_seconds():
    js = synthesis.run_summary("e", 1, 0, None, audio_s=10.0, secs=2.0, output_dir="o",
                               files=[])
    assert (js["real_time_factor"], js["x_real_time"]) == (0.2, 5.0)


def test_text_file_names_are_line_number_and_slug():
    from tts_gan.frontend import text as text_lib

    assert text_lib.file_name(7, "Hello, World! It's 3 o'clock.") == \
        "0007-hello-world-it-s-3-o-clock.wav"
    assert text_lib.file_name(12, "A" + " very" * 20) == \
        "0012-a-very-very-very-very-very-very-very.wav"  # at most 40 characters of slug
    assert text_lib.file_name(3, "?!") == "0003.wav"
    assert text_lib.file_name(4, "Café au lait") == "0004-cafe-au-lait.wav"


def test_write_wav_refuses_to_replace_a_file(tmp_path):
    path = str(tmp_path / "x.wav")
    synthesis.write_wav(path, [np.zeros(10, np.float32)], 24000)
    with pytest.raises(synthesis.SynthesisError, match=r"x.wav: exists \(pass --overwrite"):
        synthesis.write_wav(path, [np.ones(10, np.float32) / 2], 24000)
    assert sf.read(path)[0].max() == 0  # untouched
    synthesis.write_wav(path, [np.ones(10, np.float32) / 2], 24000, overwrite=True)
    assert sf.read(path)[0].max() == 0.5
    assert os.listdir(tmp_path) == ["x.wav"]


def test_text_and_label_front_ends_require_the_training_front_end():
    """#29: a caller that forgets the model's F0 method and front-end version is told so,
    instead of silently getting dio and the current version."""
    for call in (lambda: synthesis.utterances_from_text(["Hi."], ["a"], "q.hed"),
                 lambda: synthesis.utterances_from_labels("*.lab", None, "q.hed"),
                 lambda: synthesis.utterances_from_text(["Hi."], ["a"], "q.hed",
                                                        f0_method="dio")):
        with pytest.raises(TypeError, match="missing 1 required keyword-only argument|"
                           "missing 2 required keyword-only arguments"):
            call()


def test_features_outside_the_training_range_are_named_in_one_line():
    lo, hi = np.array([0.0, 1.0, 4.0]), np.array([1.0, 40.0, 6.0])
    check = synthesis.RangeCheck(lo, hi, ["QS C-a", "CQS Num-Syls_in_Utterance", "log_f0"])
    check.add(synthesis.Utterance("in", np.array([[0, 1, 4], [1, 40, 6]], np.float32)))
    assert check.warning() is None
    check.add(synthesis.Utterance("s1", np.array([[0, 152, 5], [1, 3, 3.9]], np.float32)))
    check.add(synthesis.Utterance("s2", np.array([[0, 50, 5]], np.float32)))
    assert check.warning() == (
        "2 feature column(s) outside the training data's range, the model never saw such "
        "inputs: CQS Num-Syls_in_Utterance=152 (training 1..40; s1); log_f0=3.9 (training "
        "4..6; s1)")
    assert "\n" not in check.warning()


def test_feature_names_and_export_info_range():
    from tts_gan import schema, synthesis_inputs

    qfile = synthesis.default_question_file(None)
    names = synthesis.feature_names(qfile, 2, FEATURE_DIM)
    assert len(names) == FEATURE_DIM == 567
    assert names[-11:] == ["state_frac_fwd", "state_frac_bwd", "state_frames",
                           "state_index_fwd", "state_index_bwd", "phone_frames",
                           "state_frac_of_phone", "phone_frac_bwd", "phone_frac_fwd",
                           "log_f0", "vuv"]
    assert names[0].startswith("QS ") and names[555].startswith("CQS ")
    assert synthesis.feature_names(None, 2, 3) == ["feature[0]", "feature[1]", "feature[2]"]
    d = manifest_dict()
    m = schema.manifest_from_json(d)
    assert "not recorded" in synthesis_inputs.feature_range_info(m, qfile)["note"]
    d["feature_range"] = {"split": "train", "min": [0.0] * 567, "max": [1.0] * 567}
    info = synthesis_inputs.feature_range_info(schema.manifest_from_json(d), qfile)
    assert (info["min"], info["max"], info["columns"]) == ([0.0] * 567, [1.0] * 567, names)
    d["feature_range"]["max"] = [1.0] * 5
    with pytest.raises(synthesis.SynthesisError, match="feature_range has 567 / 5 values"):
        synthesis_inputs.feature_range_info(schema.manifest_from_json(d), qfile)


def test_sentences():
    """sentencex's English rules: abbreviations and decimals do not end a sentence; ':' and ';'
    do not either (Festival's own utterance chunking breaks at both, and at 'Prof.')."""
    from tts_gan.frontend import text as text_lib

    assert text_lib.sentences("Dr. Smith arrived at 3.30 p.m. on Monday. He met Mrs. Jones "
                              "at the U.S. embassy.") == [
        "Dr. Smith arrived at 3.30 p.m. on Monday.", "He met Mrs. Jones at the U.S. embassy."]
    assert text_lib.sentences('She said: "It is late." Then she left!  Did they? Yes; they '
                              "did.") == ['She said: "It is late."', "Then she left!",
                                          "Did they?", "Yes; they did."]
    assert text_lib.sentences("Mr. Brown and Prof. Green met at 10 a.m. The U.K. team won.") \
        == ["Mr. Brown and Prof. Green met at 10 a.m.", "The U.K. team won."]
    assert text_lib.sentences("One sentence") == ["One sentence"]


def test_transliterate_to_ascii():
    from tts_gan.frontend import text as text_lib

    assert text_lib.transliterate("Café naïve — résumé") == "Cafe naive - resume"
    assert text_lib.transliterate("Москва, Straße “x”…") == 'Moskva, Strasse "x"...'
    assert text_lib.transliterate("ok 😀  fine\tnow\x00") == "ok fine now"  # emoji dropped
    assert text_lib.transliterate("plain ASCII, unchanged.") == "plain ASCII, unchanged."
    assert not text_lib.speakable("?!... ,;:") and text_lib.speakable("a") \
        and text_lib.speakable("7")


def test_non_ascii_text_reaches_festival_transliterated():
    """#27: Festival spelt the UTF-8 bytes of "Café" out letter by letter; the features of
    the non-ASCII text are now those of its transliteration."""
    qfile = synthesis.default_question_file(None)
    a, b = synthesis.utterances_from_text(["Café naïve — résumé.", "Cafe naive - resume."],
                                          ["a", "b"], qfile, f0_method="dio",
                                          frontend_version=2)
    assert a.features.shape == b.features.shape
    np.testing.assert_array_equal(a.features, b.features)


def test_text_with_nothing_to_speak_is_one_clear_error(tmp_path):
    """#27: '?!... ,;:' failed naming a temporary label file that no longer existed."""
    with pytest.raises(synthesis.SynthesisError) as e:
        synthesis.utterances_from_text(["fine", "?!... ,;:"], ["one", "two"], "q.hed",
                                       f0_method="dio", frontend_version=2)
    assert str(e.value) == "two: '?!... ,;:' has nothing to speak (no letter or digit)"
    # the CLI says so before it loads a model, naming the line of the input
    text_file = tmp_path / "in.txt"
    text_file.write_text("Fine.\n\n« … »\n", encoding="utf-8")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "tts-gan-synthesize"),
                           "--export_dir=nowhere", f"--text_file={text_file}",
                           f"--output_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"tts-gan-synthesize: error: --text_file={text_file} line 3: '« … »' has nothing to "
        "speak (no letter or digit in its ASCII transliteration '<< ... >>')")
    assert not (tmp_path / "out").exists()


def test_festival_voice_is_the_speakers_own() -> None:
    """kal_diphone speaks text with kal's durations and F0, slt_hts with slt's; a speaker the
    built-in corpus does not have gets the slt HTS voice; --festival_voice overrides."""
    from tts_gan import schema

    m = schema.manifest_from_json(manifest_dict(speakers=4))
    assert [synthesis.festival_voice(m, i) for i in range(4)] == [
        "voice_kal_diphone", "voice_cmu_us_slt_arctic_hts", "voice_cmu_us_slt_arctic_hts",
        "voice_cmu_us_slt_arctic_hts"]
    assert synthesis.festival_voice(None, 0) == "voice_cmu_us_slt_arctic_hts"
    assert synthesis.festival_voice(m, 1, "voice_kal_diphone") == "voice_kal_diphone"
    with pytest.raises(synthesis.SynthesisError, match="--festival_voice='kal\\)'"):
        synthesis.festival_voice(m, 0, "kal)")
    # only the text front ends have a Festival voice to choose
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "tts-gan-synthesize"),
                           "--export_dir=x", "--labels=x/*.lab", "--output_dir=y",
                           "--festival_voice=voice_kal_diphone"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode != 0
    assert "--festival_voice applies to --text/--text_file only" in proc.stderr


def test_clear_errors(synth, tmp_path):
    with pytest.raises(synthesis.SynthesisError, match=r"expects \[frames>0, 567\]"):
        list(synthesis.synthesize_batched(
            synth, [synthesis.Utterance("bad", np.zeros((5, 3), np.float32))], [0]))
    with pytest.raises(synthesis.SynthesisError, match="speaker 5 is out of range"):
        list(synthesis.synthesize_batched(synth, [_utt(5, speaker=5)], [0]))
    with pytest.raises(synthesis.SynthesisError, match="no file matches"):
        synthesis.utterances_from_labels(str(tmp_path / "*.lab"), None, "q.hed",
                                         f0_method="dio", frontend_version=2)
    with pytest.raises(export.ExportError, match="neither a SavedModel"):
        synthesis.ExportedSynthesizer(str(tmp_path))

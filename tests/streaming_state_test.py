"""Exact streaming with a sine excitation and a harmonic-plus-noise head (#28 item 1).

A chunk that starts at frame c of an utterance gets ``start_frame`` = c (the noise table read
continues from sample 120·c) and ``start_cycles`` = the fundamental's phase there (the export's
``frame_cycles``), so the concatenated chunks equal one-shot synthesis. The bound adds to the
network's float32 rounding (float32_bounds.generator_rounding) what the phase's own rounding can
move, derived in :func:`streaming_bound`; each test's control leaves the phase, the noise
position or both at zero.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import tensorflow as tf
from float32_bounds import EPS, audio_difference, exceeds, generator_rounding, within

from tts_gan import export, synthesis
from tts_gan import harmonic_noise as hn
from tts_gan.generator import ExcitationSpec, Generator, build_and_init, excitation_phase

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "pretrained", "cpu_harmonic_noise")
EXC = ExcitationSpec(lf0_index=1, lf0_mean=5.0, lf0_std=0.3, vuv_index=3, harmonics=4, blocks=2)
FADE = 120  # tts-gan-export --edge_fade_ms=5 at 24 kHz
TINY = dict(feature_dim=5, noise_dim=4, input_channels=16,
            blocks=((16, 1), (12, 1), (8, 2), (8, 2), (8, 2), (4, 3), (4, 5)))


def phase_rounding(window_frames: int, f0_max: float, frame_rate: float = 200.0) -> float:
    """Two evaluations' difference of the phase in cycles (float32_bounds' random-walk rule):
    the frame starts are exact sums (harmonic_noise.frame_start_cycles) of per-frame cycles
    F0/frame_rate, but a chunk computes F0 = exp(·) on another tensor shape (vectorised vs
    scalar kernels: ≤ 2 ulp each, 4·eps relative) for up to ``window_frames`` frames, and
    each side rounds ≤ 4 additions of values < 4 (the parts, the start, the within-frame
    term): eps·(4·q_max·√window + 16)."""
    return EPS * (4.0 * f0_max / frame_rate * math.sqrt(window_frames) + 16.0)


def streaming_bound(gen_rho: float, exc_harmonics: int, weight: float, phase: float,
                    peak: float, mu: float) -> float:
    """Streamed vs one-shot, in float32_bounds.audio_difference units: the network's rounding
    ρ; the excitation's unit-amplitude sines k ≤ ``exc_harmonics`` moved by 2π·k·δφ (plus their
    arguments' rounding, 8·eps·2π·k for phases < 4 cycles), a relative input perturbation that
    the SN/BN layers carry to the µ-law output like ρ; and the harmonic head's Σ_k A_k·2π·k·δφ
    on the linear waveform, ``weight`` = max over frames of Σ_k k·A_k (:func:`harmonic_weight`;
    samples interpolate between frames, a convex combination), in units of
    ln(1+µ)·(peak + 1/µ)."""
    arg = 2.0 * math.pi * (phase + 8.0 * EPS)
    harmonic = weight * arg / (math.log1p(mu) * (peak + 1.0 / mu))
    return gen_rho + exc_harmonics * arg + harmonic


def harmonic_weight(gen: Generator, normalised: np.ndarray, seed: int, speaker: int,
                    z: np.ndarray | None = None) -> float:
    """max over frames of Σ_k k·A_k, the harmonic head's amplitudes (harmonic_noise.
    harmonic_amplitudes of its controls, captured from a call of ``gen`` on the utterance with
    the export's z of ``seed``, or ``z`` itself): what a phase error δφ can move its sines by,
    per 2π·δφ."""
    captured = []
    head = gen.hn_head
    original = head.call

    def capture(*args, **kwargs):
        captured.append(original(*args, **kwargs))
        return captured[-1]

    head.call = capture
    try:
        z = (export.seed_to_z(tf.constant([seed]), gen.noise_dim) if z is None
             else tf.constant(np.asarray(z, np.float32)[None]))
        spk = tf.constant([speaker]) if gen.num_speakers > 1 else None
        gen(tf.constant(normalised[None], tf.float32), z, speaker=spk, training=False)
    finally:
        del head.call
    spec = gen.harmonic_noise
    amp, dist, _ = tf.split(tf.cast(captured[-1], tf.float32),
                            [1, spec.harmonics, spec.noise_bands], axis=2)
    _, f0, voiced = excitation_phase(tf.constant(normalised[None], tf.float32),
                                     gen.excitation, 1)
    a = hn.harmonic_amplitudes(hn.exp_sigmoid(amp), dist, f0, voiced,
                               float(gen.excitation.frame_rate * gen.samples_per_frame))
    return float(np.max(np.sum(a.numpy() * np.arange(1, spec.harmonics + 1), axis=-1)))


def stream(synth: synthesis.ExportedSynthesizer, utt: synthesis.Utterance, seed: int,
           chunk: int, first: int | None = None, phase: bool = True,
           noise: bool = True) -> np.ndarray:
    """synthesize_streaming's chunks with the phase and/or the noise position left at zero
    (the controls); both carried is synthesize_streaming itself."""
    if phase and noise:
        return np.concatenate(list(synthesis.synthesize_streaming(
            synth, utt, seed, chunk, first_chunk_frames=first)))
    cycles = synth.frame_cycles(utt.features)
    spf = synth.samples_per_frame
    out = []
    for cs, s, e, ce in synthesis.chunk_bounds(utt.features.shape[0], chunk, synth.halfwidth,
                                               first):
        audio = synth.run_chunk(utt.features[cs:ce], utt.speaker, seed, cs if noise else 0,
                                float(cycles[cs]) if phase else 0.0)
        out.append(audio[(s - cs) * spf:(e - cs) * spf])
    return np.concatenate(out)


def _tiny_features(t: int, seed: int) -> np.ndarray:
    """A gliding, wobbling F0 (≈ 110–270 Hz) with an unvoiced stretch; other columns N(0,1)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(t, 5)).astype(np.float32)
    n = np.arange(t)
    f[:, 1] = np.sin(n / 17.0) * 1.2 + np.linspace(-1.0, 1.0, t)
    f[:, 3] = 1.0
    f[t // 3: t // 3 + 12, 3] = 0.0
    return f


@pytest.fixture(scope="module", params=["interpolated", "held"])
def tiny_hn(request, tmp_path_factory):
    """A tiny harmonic-plus-noise export of each phase model (random init, loud harmonics);
    the "held" one with a 5-ms edge fade, so that streaming is checked with the fade on too."""
    tf.keras.utils.set_random_seed(21)
    spec = hn.HarmonicNoiseSpec(harmonics=10, noise_bands=17, phase=request.param)
    gen = build_and_init(Generator(**TINY, excitation=EXC, output_mu=65535.0,
                                   harmonic_noise=spec, dc_block_frames=9))
    bias = gen.hn_head.bias.numpy()
    bias[0] = 0.0  # harmonics at ~0.4 of full scale: a phase error is audible, not clipped
    gen.hn_head.bias.assign(bias)
    res = export.export_saved_model(gen, str(tmp_path_factory.mktemp("hn")),
                                    edge_fade_samples=FADE if request.param == "held" else 0)
    return synthesis.ExportedSynthesizer(res.path), generator_rounding(gen), gen


@pytest.mark.parametrize("t,chunk,first", [(230, 50, None), (161, 40, 20), (97, 400, None)])
def test_tiny_harmonic_noise_streaming_equals_one_shot(tiny_hn, t, chunk, first):
    synth, rho, gen = tiny_hn
    utt = synthesis.Utterance("u", _tiny_features(t, t), 0)
    one = np.concatenate([a for _, a in synthesis.synthesize_batched(synth, [utt], [5])])
    streamed = stream(synth, utt, 5, chunk, first)
    assert streamed.shape == one.shape == (120 * t,)
    f0_max = float(np.exp(utt.features[:, 1] * EXC.lf0_std + EXC.lf0_mean).max())
    window = min(t, max(chunk, first or 0) + 2 * synth.halfwidth)
    weight = harmonic_weight(gen, utt.features, 5, 0)  # RAW = normalised (identity export)
    bound = streaming_bound(rho, EXC.harmonics, weight, phase_rounding(window, f0_max),
                            float(np.abs(one).max()), 65535.0)
    within("streamed vs one-shot", audio_difference(streamed, one, 65535.0), bound)
    if -(-t // chunk) > 1:  # the controls need a chunk that starts inside the utterance
        for phase, noise in ((False, True), (True, False)):
            exceeds(f"phase carried {phase}, noise position carried {noise}", audio_difference(
                stream(synth, utt, 5, chunk, first, phase, noise), one, 65535.0), bound)


def test_frame_cycles_is_the_running_f0_sum(tiny_hn):
    """The export's state: frac(Σ_{u<t} F0_u / 200) of the graph's F0, against float64."""
    synth, *_ = tiny_hn
    feats = _tiny_features(300, 1)
    got = synth.frame_cycles(feats)
    f0 = np.exp(feats[:, 1].astype(np.float64) * EXC.lf0_std + EXC.lf0_mean)
    want = np.concatenate([[0.0], np.cumsum(f0 / 200.0)]) % 1.0
    err = np.abs((got - want + 0.5) % 1.0 - 0.5).max()
    # F0 from float32 exp (≤ 4·eps relative each, summed over ≤ 300 frames) plus the last sum
    bound = EPS * (4.0 * np.sum(f0 / 200.0) + 16.0)
    within("frame_cycles vs float64", err, bound)
    exceeds("one frame short", np.abs((got[1:] - want[:-1] + 0.5) % 1.0 - 0.5).max(), bound)


def test_an_export_without_the_chunk_signature_is_refused_with_its_path(tiny_hn):
    """Exports before synthesize_chunk (no new inputs) still load; with a sine excitation
    streaming is refused naming the export and what to do; one-shot still works."""
    synth, *_ = tiny_hn
    old = synthesis.ExportedSynthesizer(synth.path)
    old.chunk_fn = old.cycles_fn = None  # what an export before #28 loads as
    utt = synthesis.Utterance("u", _tiny_features(60, 2), 0)
    with pytest.raises(synthesis.SynthesisError,
                       match=f"{synth.path} predates the synthesize_chunk.*re-export"):
        next(synthesis.synthesize_streaming(old, utt, 0))
    assert next(synthesis.synthesize_batched(old, [utt], [0]))[1].shape == (7200,)


def test_edge_fade_is_a_raised_cosine_at_each_utterances_ends(tiny_hn, tmp_path):
    """The same generator exported with and without --edge_fade_ms: in a batch of two
    utterances of different lengths, each one's first and last FADE samples are the unfaded
    audio times the rising half of a Hann window (SciPy's, at the odd points of a 4·FADE-point
    window: 0.5 - 0.5 cos(pi (d + 1/2) / FADE) at d samples from the end), the rest is
    unchanged and the padding stays zero. Float32: two graphs' evaluations of the generator
    (streaming_bound) plus the fade's two products and its ramp's cosine, each rounding by
    <= 2 eps relative (8 eps |audio|). A fade longer than the receptive-
    field half-width (streaming would no longer be exact) is refused, naming the limit."""
    from scipy.signal import windows

    synth, _, gen = tiny_hn
    fade = int(synth.info["edge_fade_samples"])
    other = export.export_saved_model(gen, str(tmp_path / "other"),
                                      edge_fade_samples=0 if fade else FADE)
    pair = [synth, synthesis.ExportedSynthesizer(other.path)]
    faded, plain = pair if fade else pair[::-1]
    feats, lengths = synthesis.pad_batch([_tiny_features(40, 3), _tiny_features(25, 4)])
    a, n = faded.run(feats, lengths, [0, 0], [1, 2])
    b, m = plain.run(feats, lengths, [0, 0], [1, 2])
    np.testing.assert_array_equal(n, m)
    ramp = windows.hann(4 * FADE, sym=False)[1:2 * FADE:2]
    for i, (length, seed) in enumerate(zip(n, (1, 2), strict=True)):
        want = b[i, :length].astype(np.float64)
        want[:FADE] *= ramp
        want[length - FADE:] *= ramp[::-1]
        # Two graphs: the unfaded audio itself may differ by two evaluations' rounding (XLA
        # auto-clustering fuses the fade into the generator's last ops: 3.7e-5 of full scale
        # on an Intel Xeon, where the plain graphs agree bit for bit), the network's ρ plus the
        # phase's share (streaming_bound over the whole utterance), and the fade's two
        # products and its ramp's cosine round by ≤ 2 eps each (8 eps of |audio|).
        frames = int(length) // gen.samples_per_frame
        raw = feats[i, :frames]
        f0_max = float(np.exp(raw[:, 1] * EXC.lf0_std + EXC.lf0_mean).max())
        peak = float(np.abs(want).max())
        bound = (streaming_bound(generator_rounding(gen), EXC.harmonics,
                                 harmonic_weight(gen, raw, seed, 0),
                                 phase_rounding(frames, f0_max), peak, 65535.0)
                 + 8 * EPS * peak / (math.log1p(65535.0) * (peak + 1 / 65535.0)))
        within("faded vs unfaded × the Hann ramp", audio_difference(a[i, :length], want,
                                                                    65535.0), bound)
        assert not np.any(a[i, length:]), i
        # Control: the unfaded audio (the fade did something, ≥ 10× the bound).
        exceeds("no fade", audio_difference(a[i, :length], b[i, :length], 65535.0), bound)
    most = gen.receptive_field_halfwidth_frames() * gen.samples_per_frame
    with pytest.raises(export.ExportError, match=f"an integer from 0 .off. to {most} "):
        export.export_saved_model(gen, str(tmp_path / "long"), edge_fade_samples=most + 1)
    assert not (tmp_path / "long").exists()  # refused before anything was created
    with pytest.raises(export.ExportError, match="--edge_fade_ms=-1.0: expected milliseconds"):
        export.edge_fade_samples(-1.0)
    assert export.edge_fade_samples(5.0) == FADE


@pytest.fixture(scope="module")
def shipped():
    synth = synthesis.ExportedSynthesizer(SHIPPED)
    if synth.chunk_fn is None:
        pytest.fail(f"{synth.path} has no synthesize_chunk signature: re-export it "
                    "(python -m tts_gan.reexport, BUILD_NOTES 'Exact streaming')")
    gen, _, _ = export.generator_from_export(synth.path)
    return synth, generator_rounding(gen), gen


def test_shipped_model_streams_exactly(shipped):
    """A Festival sentence (the export's own front end, speaker slt) in chunks of 60 frames
    after a first one of 20, against one-shot synthesis."""
    synth, rho, gen = shipped
    m = synth.manifest()
    speaker = m.speakers["slt_hts"]
    [utt] = synthesis.utterances_from_text(
        ["Nobody had told the children that the bridge was closed for the winter."], ["s"],
        synth.question_file(), speaker, voice=synthesis.festival_voice(m, speaker, None),
        mapping=None, **synthesis.training_front_end(m))
    exc = gen.excitation
    one = np.concatenate([a for _, a in synthesis.synthesize_batched(synth, [utt], [7])])
    chunk, first = 60, 20
    streamed = stream(synth, utt, 7, chunk, first)
    normalised = (utt.features - np.asarray(m.mean)) / np.asarray(m.std)
    f0_max = float(np.exp(utt.features[:, exc.lf0_index]).max())
    window = max(chunk, first) + 2 * synth.halfwidth
    bound = streaming_bound(rho, exc.harmonics, harmonic_weight(gen, normalised, 7, speaker),
                            phase_rounding(window, f0_max), float(np.abs(one).max()),
                            float(synth.info["mu"]))
    within("shipped: streamed vs one-shot", audio_difference(streamed, one, 65535.0), bound)
    for phase, noise in ((False, True), (True, False), (False, False)):
        exceeds(f"shipped: phase carried {phase}, noise position carried {noise}",
                audio_difference(stream(synth, utt, 7, chunk, first, phase, noise), one,
                                 65535.0), bound)


def test_shipped_model_cli_streaming_equals_one_shot(shipped, tmp_path):
    """The acceptance command: ``tts-gan-synthesize --streaming`` from text writes the one-shot
    wav within 16-bit quantisation plus :func:`streaming_bound` (the sentence's features from
    the same front end in-process, for F0 and the head's amplitudes). Control: the test above
    (the same bound's terms, chunks without their state)."""
    import subprocess
    import sys

    import soundfile as sf

    synth, rho, gen = shipped
    exe = os.path.join(os.path.dirname(sys.executable), "tts-gan-synthesize")
    text = "The little town sat at the edge of a quiet lake."
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    wavs = {}
    for mode, extra in (("one", []), ("stream", ["--streaming", "--chunk_frames=60",
                                                 "--first_chunk_frames=20"])):
        out = tmp_path / mode
        proc = subprocess.run([exe, f"--export_dir={SHIPPED}", f"--text={text}",
                               f"--output_dir={out}", "--seed=3", *extra],
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        [name] = os.listdir(out)
        wavs[mode], _ = sf.read(str(out / name), dtype="float32")
    one, streamed = wavs["one"], wavs["stream"]
    assert streamed.shape == one.shape and one.size > 24000
    m = synth.manifest()
    speaker = m.speakers["slt_hts"]  # the CLI's default
    [utt] = synthesis.utterances_from_text(
        [text], ["s"], synth.question_file(), speaker,
        voice=synthesis.festival_voice(m, speaker, None), mapping=None,
        **synthesis.training_front_end(m))
    assert one.shape == (120 * utt.features.shape[0],)
    normalised = (utt.features - np.asarray(m.mean)) / np.asarray(m.std)
    f0_max = float(np.exp(utt.features[:, gen.excitation.lf0_index]).max())
    bound = streaming_bound(rho, gen.excitation.harmonics,
                            harmonic_weight(gen, normalised, 3, speaker),
                            phase_rounding(60 + 2 * synth.halfwidth, f0_max),
                            float(np.abs(one).max()), float(synth.info["mu"]))
    quantisation = 1.5 / 32768  # ±0.5 LSB each, and 32767 written vs 32768 read
    within("shipped CLI: streamed vs one-shot wav",
           audio_difference(streamed, one, 65535.0, quantisation), bound)

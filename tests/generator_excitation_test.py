"""The opt-in sine excitation of the generator (tts_gan.generator.sine_excitation)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tts_gan.generator import ExcitationSpec, Generator, build_and_init, sine_excitation

SPEC = ExcitationSpec(lf0_index=1, lf0_mean=5.0, lf0_std=0.3, vuv_index=3, harmonics=6, blocks=2)


def _features(frames: int = 12, batch: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((batch, frames, 5)).astype(np.float32)
    f[..., 3] = (rng.uniform(size=(batch, frames)) > 0.3).astype(np.float32)  # V/UV
    return f


def _np_excitation(feats: np.ndarray, spec: ExcitationSpec, r: int) -> np.ndarray:
    """Per-sample reference: F0 held over each frame, phase = running sum of F0 / rate."""
    rate = spec.frame_rate * r
    f0 = np.exp(feats[..., spec.lf0_index].astype(np.float64) * spec.lf0_std + spec.lf0_mean)
    voiced = feats[..., spec.vuv_index] > 0.5
    f0_s = np.repeat(f0, r, axis=1)                          # [B, T r]
    phase = np.cumsum(f0_s / rate, axis=1) - f0_s / rate     # cycles before each sample
    out = []
    for k in range(1, spec.harmonics + 1):
        on = np.repeat(voiced & (k * f0 < rate / 2), r, axis=1)
        out.append(np.where(on, np.sin(2 * np.pi * k * phase), 0.0))
    out.append(np.repeat(voiced, r, axis=1).astype(np.float64))
    return np.stack(out, axis=-1)


@pytest.mark.parametrize("r", [8, 24, 120])
def test_sine_excitation_matches_a_per_sample_reference(r):
    feats = _features()
    got = sine_excitation(tf.constant(feats), SPEC, r).numpy()
    want = _np_excitation(feats, SPEC, r)
    assert got.shape == (2, 12 * r, SPEC.harmonics + 1)
    np.testing.assert_allclose(got, want, atol=2e-4)
    # harmonics above the rate's Nyquist frequency are silent
    f0 = np.exp(feats[..., 1] * SPEC.lf0_std + SPEC.lf0_mean)
    assert (want[..., :-1] == 0).mean() > (np.repeat(feats[..., 3] < 0.5, r, 1)).mean() - 1e-9
    if r == 8:  # 1.6 kHz: some k·F0 are above 800 Hz
        assert np.any(f0 * SPEC.harmonics >= 800)


def test_start_cycles_continue_the_phase():
    """A chunk that starts at frame s with the cycles accumulated before it continues the
    one-shot excitation (what streaming needs)."""
    feats = _features(frames=20)
    r = 24
    whole = sine_excitation(tf.constant(feats), SPEC, r).numpy()
    s = 7
    f0 = np.exp(feats[..., 1].astype(np.float64) * SPEC.lf0_std + SPEC.lf0_mean)
    cycles = np.sum(f0[:, :s] * r / (SPEC.frame_rate * r), axis=1) % 1.0
    part = sine_excitation(tf.constant(feats[:, s:]), SPEC, r,
                           start_cycles=tf.constant(cycles, tf.float32)).numpy()
    np.testing.assert_allclose(part, whole[:, s * r:], atol=2e-4)
    wrong = sine_excitation(tf.constant(feats[:, s:]), SPEC, r).numpy()
    assert np.abs(wrong - whole[:, s * r:]).max() > 0.5


def _generator() -> Generator:
    tf.keras.utils.set_random_seed(3)
    gen = Generator(5, noise_dim=4, input_channels=16,
                    blocks=((16, 1), (8, 2), (8, 3), (8, 5)), excitation=SPEC)
    return build_and_init(gen)


def test_generator_with_excitation_masks_and_uses_it():
    gen = _generator()
    assert [b.exc_proj is not None for b in gen.gblocks] == [False, False, True, True]
    feats = _features(frames=9, batch=3)
    z = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    lengths = np.array([9, 4, 6])
    padded = feats.copy()
    for i, n in enumerate(lengths):
        padded[i, n:] = 3.0  # the padding must not matter (App. A.1)
    batched = gen(tf.constant(padded), tf.constant(z), lengths=tf.constant(lengths)).numpy()
    unmasked = gen(tf.constant(padded), tf.constant(z)).numpy()
    spf = gen.samples_per_frame
    # float32 rounding of batched vs one-by-one convolutions (measured ≤ 3e-5 on outputs of
    # order 1); the control: without the length mask the padding changes the valid region
    # by more than 10× that bound.
    tol = 3e-4
    for i, n in enumerate(lengths):
        alone = gen(tf.constant(feats[i:i + 1, :n]), tf.constant(z[i:i + 1])).numpy()
        np.testing.assert_allclose(batched[i, :spf * n], alone[0], atol=tol)
        if n < 9:
            assert np.abs(unmasked[i, :spf * n] - alone[0]).max() > 10 * tol
    # the excitation reaches the output: changing F0 alone changes the waveform
    shifted = feats.copy()
    shifted[..., 1] += 1.0
    a = gen(tf.constant(feats), tf.constant(z)).numpy()
    b = gen(tf.constant(shifted), tf.constant(z)).numpy()
    assert np.abs(a - b).max() > 1e-3


def test_bad_excitation_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"excitation.blocks=5: expected 1..4"):
        Generator(5, blocks=((16, 1), (8, 2), (8, 3), (8, 5)),
                  excitation=ExcitationSpec(1, 5.0, 0.3, 3, blocks=5))
    with pytest.raises(ValueError, match=r"excitation.vuv_index=9 is not a feature column"):
        Generator(5, blocks=((16, 1), (8, 2), (8, 3), (8, 5)),
                  excitation=ExcitationSpec(1, 5.0, 0.3, 9))


def test_excitation_generator_exports_to_savedmodel_and_tflite(tmp_path):
    """The excitation's ops survive the SavedModel and TFLite exports (no strided slices with
    ellipsis or new axes, which TFLite has no kernel for) and agree with the Keras model."""
    from tts_gan import export, mulaw

    gen = _generator()
    res = export.export_saved_model(gen, str(tmp_path), tflite=True)
    model = tf.saved_model.load(res.path)
    feats = _features(frames=10, batch=2, seed=4)
    z = np.random.default_rng(5).standard_normal((2, 4)).astype(np.float32)
    lengths = np.array([10, 7], np.int32)
    speaker = np.zeros(2, np.int32)
    served = model.signatures["synthesize_z"](features=feats, lengths=lengths, speaker=speaker,
                                              z=z)
    keras_out = gen(tf.constant(feats), tf.constant(z), lengths=tf.constant(lengths))
    want = mulaw.decode(keras_out.numpy()[..., 0])
    np.testing.assert_allclose(served["audio"].numpy(), want, atol=1e-4)
    runner = tf.lite.Interpreter(
        model_path=f"{res.path}/assets/gan_tts.tflite").get_signature_runner()
    lite = runner(features=feats, lengths=lengths, speaker=speaker, z=z)
    np.testing.assert_allclose(lite["audio"], served["audio"].numpy(), atol=1e-4)

    # streaming continues the excitation's phase through these signatures (exactness, and
    # the refusal of exports without them: tests/streaming_state_test.py)
    from tts_gan import synthesis

    synth = synthesis.ExportedSynthesizer(str(tmp_path))
    assert synth.info["sine_excitation"] is True
    assert synth.chunk_fn is not None and synth.cycles_fn is not None

"""Feature extractors: the default (DNSMOS P.808's packaged network) against speechmos's own
pipeline, and the per-window maps (log-mel, SavedModel) of Eq. 4."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from tts_gan import extractors, metrics
from tts_gan.extractors.dnsmos import log_mel
from tts_gan.extractors.windowed import LogMelFeatures, SavedModelFeatures, WindowedExtractor


def _harmonic(rng, n, f0, rate=24000):
    t = np.arange(n) / rate
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)))
    return (0.2 * env * x / 3).astype(np.float32)


# ------------------------------------------------------------------------------ default
@pytest.fixture(scope="module")
def dnsmos():
    return extractors.make("default")


def test_default_is_dnsmos_p808_from_the_speechmos_package(dnsmos):
    from speechmos import dnsmos as speechmos_dnsmos

    assert dnsmos.name == "dnsmos" and dnsmos.dim == 64 and not dnsmos.comparable_with_paper
    with open(dnsmos.path, "rb") as f:
        assert dnsmos.identity()["model_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert dnsmos.path.endswith("speechmos/dnsmos_models/model_v8.onnx")
    # speechmos's own pipeline on one 9.01-s segment: its P.808 MOS and its input feature
    rng = np.random.default_rng(0)
    x = _harmonic(rng, int(9.01 * 16000), 180.0, rate=16000)
    x += 0.003 * rng.normal(size=x.shape).astype(np.float32)
    reference = speechmos_dnsmos.run(x, 16000)["p808_mos"]
    ours = log_mel(x[None, :-160])
    their_feature = speechmos_dnsmos.DNSMOS.audio_melspec(None, audio=x[:-160])
    np.testing.assert_allclose(ours[0], their_feature, atol=1e-5)
    _, mos = dnsmos.run_features(ours)
    assert mos[0] == pytest.approx(reference, abs=1e-4)


def test_dnsmos_embedding_is_per_clip_and_separates_speech_like_audio_from_noise(dnsmos):
    rng = np.random.default_rng(1)
    tones = np.stack([_harmonic(rng, 48000, f0) for f0 in rng.uniform(100, 250, 12)])
    noise = (0.05 * rng.normal(size=(24, 48000))).astype(np.float32)
    e_tones, e_noise = dnsmos(tones), dnsmos(noise)
    assert e_tones.shape == (12, 64) and e_tones.dtype == np.float64
    # each clip is normalised on its own: batching does not change a clip's embedding
    np.testing.assert_allclose(dnsmos(tones[3:4])[0], e_tones[3], rtol=1e-5, atol=1e-6)
    between = metrics.mmd2_unbiased(e_tones, e_noise[:12])
    within = abs(metrics.mmd2_unbiased(e_noise[:12], e_noise[12:]))
    assert between > 20 * within, (between, within)
    with pytest.raises(ValueError, match="at least 1680 samples"):
        dnsmos(np.zeros((1, 1500), np.float32))
    dnsmos.check_clip(1680)


def test_metric_names_keep_dsd_for_deepspeech2_only():
    assert extractors.metric_names("deepspeech2") == ("FDSD", "cFDSD", "KDSD", "cKDSD")
    assert extractors.metric_names("dnsmos") == ("FD-dnsmos", "cFD-dnsmos", "KD-dnsmos",
                                                 "cKD-dnsmos")
    with pytest.raises(ValueError, match="expected 'default', 'dnsmos'"):
        extractors.make("deepspeech")


# ------------------------------------------------------------------------------ per window
def test_logmel_features_separate_tones():
    t = np.arange(480) / 24000.0
    low = np.sin(2 * np.pi * 200 * t)[None].astype(np.float32)
    high = np.sin(2 * np.pi * 5000 * t)[None].astype(np.float32)
    f = LogMelFeatures()
    a, b = f(low), f(high)
    assert a.shape == (1, 80)
    assert np.argmax(a[0]) < np.argmax(b[0])
    ext = extractors.make("logmel")
    clips = np.stack([np.tile(low[0], 100), np.tile(high[0], 100)])
    np.testing.assert_allclose(ext(clips), metrics.ds_representation(clips, f), rtol=1e-6)
    with pytest.raises(ValueError, match="at least 480 samples"):
        ext.check_clip(479)


def test_saved_model_features(tmp_path):
    class Proj(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.random.normal([480, 5]))

        @tf.function(input_signature=[tf.TensorSpec([None, 480], tf.float32, name="windows")])
        def __call__(self, windows):
            return {"features": tf.matmul(windows, self.w)}

    m = Proj()
    tf.saved_model.save(m, str(tmp_path / "fm"), signatures=m.__call__)
    f = SavedModelFeatures(str(tmp_path / "fm"))
    assert f.dim == 5
    x = np.random.default_rng(5).normal(size=(4, 480)).astype(np.float32)
    np.testing.assert_allclose(f(x), x @ m.w.numpy(), rtol=1e-4, atol=1e-4)
    ext = extractors.make(f"savedmodel:{tmp_path / 'fm'}")
    assert isinstance(ext, WindowedExtractor) and ext.dim == 5 and ext.name == "savedmodel"
    with pytest.raises(FileNotFoundError, match="no such SavedModel"):
        SavedModelFeatures(str(tmp_path / "missing"))

"""Feature extractors: the per-window maps (log-mel, SavedModel) of Eq. 4."""

import numpy as np
import pytest
import tensorflow as tf

from tts_gan import extractors, metrics
from tts_gan.extractors.windowed import LogMelFeatures, SavedModelFeatures, WindowedExtractor


def test_metric_names_keep_dsd_for_deepspeech2_only():
    assert extractors.metric_names("deepspeech2") == ("FDSD", "cFDSD", "KDSD", "cKDSD")
    assert extractors.metric_names("dnsmos") == ("FD-dnsmos", "cFD-dnsmos", "KD-dnsmos",
                                                 "cKD-dnsmos")
    with pytest.raises(ValueError, match="expected 'default', 'logmel'"):
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

"""The hand-written tf.train.Example encoder against TensorFlow's own protobuf serialisation."""

import numpy as np
import tensorflow as tf

from data_prep import tfrecord_io
from tts_gan import schema


def _tf_example(fields: dict) -> bytes:
    feature = {}
    for key, value in fields.items():
        if isinstance(value, bytes):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        elif isinstance(value, int):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=value.tolist()))
    ex = tf.train.Example(features=tf.train.Features(feature=feature))
    return ex.SerializeToString(deterministic=True)


def test_window_and_utterance_records_are_byte_identical_to_tensorflows():
    rng = np.random.default_rng(0)
    audio = rng.uniform(-1, 1, 240).astype(np.float32)
    feats = rng.normal(size=(2, 5)).astype(np.float32)
    ours = tfrecord_io.window_example(audio, feats, 3, "utt_ü1", 17)
    assert ours == _tf_example({schema.AUDIO: audio, schema.FEATURES: feats.reshape(-1),
                                schema.SPEAKER: 3, schema.UTTERANCE_ID: "utt_ü1".encode(),
                                schema.START_FRAME: 17})
    ours = tfrecord_io.utterance_example(audio, feats, 0, "u")
    assert ours == _tf_example({schema.AUDIO: audio, schema.FEATURES: feats.reshape(-1),
                                schema.SPEAKER: 0, schema.UTTERANCE_ID: b"u",
                                schema.START_FRAME: 0, schema.NUM_FRAMES: 2})


def test_records_parse_back_with_the_schema():
    rng = np.random.default_rng(1)
    audio = rng.uniform(-1, 1, 120 * 4).astype(np.float32)
    feats = rng.normal(size=(4, 3)).astype(np.float32)
    rec = tfrecord_io.window_example(audio, feats, 1, "w", 9)
    ex = tf.io.parse_single_example(rec, schema.window_parse_spec(3, window_frames=4))
    np.testing.assert_array_equal(ex[schema.AUDIO].numpy(), audio)
    np.testing.assert_array_equal(np.reshape(ex[schema.FEATURES].numpy(), (4, 3)), feats)
    assert int(ex[schema.START_FRAME]) == 9 and int(ex[schema.SPEAKER]) == 1

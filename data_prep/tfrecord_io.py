"""``tf.train.Example`` encoding (without TensorFlow) and atomic TFRecord shard writing.

Examples are serialised by hand in the protobuf wire format, with map keys sorted, so the bytes
are deterministic and equal to ``tf.train.Example.SerializeToString(deterministic=True)``
(checked by a test); this keeps TensorFlow out of the worker processes. Shards are written by
``tf.io.TFRecordWriter`` to a temporary name and renamed when complete.
"""

from __future__ import annotations

import os

import numpy as np

from tts_gan import schema


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(tag: int, payload: bytes) -> bytes:
    """Length-delimited field (wire type 2) with a one-byte tag."""
    return bytes([tag]) + _varint(len(payload)) + payload


def _feature(value: np.ndarray | bytes | int | list[int]) -> bytes:
    if isinstance(value, bytes):  # BytesList (Feature field 1)
        return _ld(0x0A, _ld(0x0A, value))
    if isinstance(value, (int, np.integer)):  # Int64List (Feature field 3), packed
        return _ld(0x1A, _ld(0x0A, _varint(int(value))))
    arr = np.asarray(value)
    if arr.dtype.kind == "f":  # FloatList (Feature field 2), packed little-endian float32
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        return _ld(0x12, _ld(0x0A, data) if data else b"")
    data = b"".join(_varint(int(v)) for v in arr.reshape(-1))
    return _ld(0x1A, _ld(0x0A, data) if data else b"")


def encode_example(features: dict[str, np.ndarray | bytes | int]) -> bytes:
    """Serialised ``tf.train.Example`` (map entries sorted by key, as deterministic protobuf)."""
    entries = b"".join(
        _ld(0x0A, _ld(0x0A, key.encode()) + _ld(0x12, _feature(features[key])))
        for key in sorted(features)
    )
    return _ld(0x0A, entries)


def _record_fields(audio_mu: np.ndarray, features: np.ndarray, speaker: int,
                   utterance_id: str, start_frame: int) -> dict:
    return {
        schema.AUDIO: audio_mu.reshape(-1),
        schema.FEATURES: features.reshape(-1),
        schema.SPEAKER: int(speaker),
        schema.UTTERANCE_ID: utterance_id.encode(),
        schema.START_FRAME: int(start_frame),
    }


def window_example(
    audio_mu: np.ndarray, features: np.ndarray, speaker: int, utterance_id: str, start_frame: int
) -> bytes:
    """A training/validation window record (see :mod:`tts_gan.schema`)."""
    return encode_example(_record_fields(audio_mu, features, speaker, utterance_id, start_frame))


def utterance_example(
    audio_mu: np.ndarray, features: np.ndarray, speaker: int, utterance_id: str
) -> bytes:
    """A whole-utterance test record: variable-length audio [120 T] and features [T * D]."""
    fields = _record_fields(audio_mu, features, speaker, utterance_id, 0)
    fields[schema.NUM_FRAMES] = int(features.shape[0])
    return encode_example(fields)


class ShardWriter:
    """Writes records to ``path + '.tmp'``; :meth:`publish` renames it to ``path``."""

    def __init__(self, path: str, compression: str = "") -> None:
        import tensorflow as tf

        self.path = path
        self.tmp_path = path + ".tmp"
        if tf.io.gfile.exists(self.tmp_path):
            tf.io.gfile.remove(self.tmp_path)
        self._writer: tf.io.TFRecordWriter | None = tf.io.TFRecordWriter(
            self.tmp_path, options=compression or None
        )
        self.count = 0

    def write(self, record: bytes) -> None:
        assert self._writer is not None, "write after close"
        self._writer.write(record)
        self.count += 1

    def close(self) -> None:
        """Flushes and closes the temporary file (still unpublished)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def publish(self) -> None:
        """Renames the closed temporary file to its final name."""
        import tensorflow as tf

        self.close()
        tf.io.gfile.rename(self.tmp_path, self.path, overwrite=True)

    def abort(self) -> None:
        import tensorflow as tf

        self.close()
        if tf.io.gfile.exists(self.tmp_path):
            tf.io.gfile.remove(self.tmp_path)


def atomic_write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` via a temporary file and a rename."""
    tmp = path + ".tmp"
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
        return
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)

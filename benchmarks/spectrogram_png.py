"""Writes a PNG of log spectrograms, one wav per row (e.g. real above generated), for
benchmarks/RESULTS.md. Uses the trainer's TensorBoard spectrogram (no plotting dependency).

Usage: python benchmarks/spectrogram_png.py OUT.png REAL.wav GENERATED.wav [--seconds=3]
"""

from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf
import soxr
import tensorflow as tf

from tts_gan.train_lib import spectrogram_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("wavs", nargs="+")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    rows = []
    for path in args.wavs:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
        audio = audio[:, 0] if sr == 24000 else soxr.resample(audio[:, 0], sr, 24000)
        n = int(args.seconds * 24000)
        x = np.zeros(n, np.float32)
        x[:min(n, len(audio))] = audio[:n]
        img = spectrogram_image(tf.constant(x[None]))[0]  # [freq, time, 1] in [0, 1]
        rows.append(tf.image.resize(img, [256, img.shape[1]]))
        rows.append(tf.ones([4, img.shape[1], 1]))  # white separator
    png = tf.io.encode_png(tf.cast(tf.concat(rows[:-1], axis=0) * 255.0, tf.uint8))
    tf.io.write_file(args.out, png)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The evaluation protocol of §4.2 / App. B.3 on an exported generator and prepared data.

2N real 2-s windows (x_i, c_i) are read from a split; the exported generator synthesises
G(c_i, z_i) for i ≤ N; DS representations (Eq. 4) of the generated clips are compared with those
of x_1..x_N (same conditioning: cFDSD, cKDSD) and of x_{N+1}..x_2N (independent conditioning:
FDSD, KDSD). The paper uses N = 10,000.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from tts_gan import data, metrics, mulaw, schema


def real_windows(data_dir: str, split: str, count: int, batch_size: int = 16
                 ) -> dict[str, np.ndarray]:
    """Up to ``count`` consecutive windows of ``split``: linear audio, RAW features, speakers."""
    manifest = schema.load_manifest(data_dir)
    ds = data.make_dataset(data_dir, split, batch_size, shuffle=False, repeat=False,
                           deterministic=True)
    audio, feats, speakers = [], [], []
    n = 0
    for batch in ds:
        audio.append(mulaw.decode(batch["audio"].numpy(), manifest.mu))
        feats.append(schema.denormalize(batch["features"].numpy(), manifest))
        speakers.append(batch["speaker"].numpy())
        n += len(speakers[-1])
        if n >= count:
            break
    if not audio:
        raise ValueError(f"{data_dir}: the {split!r} split has no complete batch of "
                         f"{batch_size} windows")
    return {"audio": np.concatenate(audio)[:count], "features": np.concatenate(feats)[:count],
            "speaker": np.concatenate(speakers)[:count].astype(np.int32)}


def synthesize_windows(export_dir: str, features: np.ndarray, speakers: np.ndarray,
                       seed: int = 0, batch_size: int = 8) -> np.ndarray:
    """Generated linear audio ``[N, 120 T]`` for RAW features ``[N, T, D]`` via the SavedModel."""
    from tts_gan.export import latest_version_dir

    model = tf.saved_model.load(latest_version_dir(export_dir))
    fn = model.signatures["serving_default"]
    out = []
    for i in range(0, len(features), batch_size):
        f = tf.constant(features[i:i + batch_size], tf.float32)
        b, t = f.shape[0], f.shape[1]
        res = fn(features=f, lengths=tf.fill([b], t), speaker=tf.constant(speakers[i:i + b]),
                 seed=tf.range(seed + i, seed + i + b, dtype=tf.int32))
        out.append(res["audio"].numpy())
    return np.concatenate(out)


def evaluate(export_dir: str, data_dir: str, feature_map: metrics.FeatureMap, *,
             num_samples: int = 256, split: str = "test", seed: int = 0,
             batch_size: int = 8, prefix: str = "DSD") -> dict[str, float]:
    """FDSD / cFDSD / KDSD / cKDSD (Eq. 9–12) with ``num_samples`` = N generated clips."""
    real = real_windows(data_dir, split, 2 * num_samples, batch_size=min(batch_size, 16))
    n = len(real["audio"]) // 2
    if n < 2:
        raise ValueError(f"{data_dir}: {split!r} has {len(real['audio'])} windows; need ≥ 4")
    if n < num_samples:
        logging.warning("only %d windows in %r: using N = %d instead of %d", 2 * n, split, n,
                        num_samples)
    generated = synthesize_windows(export_dir, real["features"][:n], real["speaker"][:n],
                                   seed=seed, batch_size=batch_size)
    x_gen = metrics.ds_representation(generated, feature_map)
    x_same = metrics.ds_representation(real["audio"][:n], feature_map)
    x_indep = metrics.ds_representation(real["audio"][n:2 * n], feature_map)
    result = metrics.speech_distances(x_gen, x_same, x_indep, prefix=prefix)
    # Reference: real vs real with independent conditioning (App. B.2: FD is biased above 0).
    result[f"F{prefix}_real"] = metrics.frechet_distance(x_same, x_indep)
    result[f"K{prefix}_real"] = metrics.mmd2_unbiased(x_same, x_indep)
    result["N"] = float(n)
    return result

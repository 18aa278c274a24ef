"""The evaluation report's files and text (§4.2 / App. B.3): the representation matrices and
the JSON report written atomically (local or ``gs://``), and Table 1 as text."""

from __future__ import annotations

import io
import json
import math
import os
import uuid
from typing import Any

import numpy as np


class EvaluationError(ValueError):
    """Bad input for the evaluation; the message names the flag, file or field."""


def _atomic_write_bytes(path: str, data: bytes) -> None:
    """``data`` to ``path`` (local or any tf.io.gfile file system) via a temporary name and a
    rename, so a reader never sees a partial file."""
    import tensorflow as tf

    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise


def save_features(prefix: str, generated: np.ndarray, real: np.ndarray) -> tuple[str, str]:
    """``PREFIX.real.npy`` (2N × d) and ``PREFIX.generated.npy`` (N × d), each written under a
    temporary name and renamed (local or ``gs://``); reusable with ``--real_features`` /
    ``--fake_features``."""
    paths = []
    for what, arr in (("real", real), ("generated", generated)):
        path = f"{prefix}.{what}.npy"
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr, np.float64))
        _atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths[0], paths[1]


def write_report(path: str, report: dict[str, Any]) -> None:
    """The report as JSON (:func:`to_json_safe`) to ``path``, atomically (local or ``gs://``)."""
    text = json.dumps(to_json_safe(report), indent=1, allow_nan=False) + "\n"
    _atomic_write_bytes(path, text.encode("utf-8"))


def load_features(path: str, what: str) -> np.ndarray:
    """A representation matrix ``[rows, d]`` from ``.npy`` (local or any tf.io.gfile file
    system); EvaluationError naming the flag."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            arr = np.load(io.BytesIO(f.read()), allow_pickle=False)
    except tf.errors.OpError as e:
        raise EvaluationError(f"--{what}={path}: cannot read a .npy array ({e.message})"
                              ) from None
    except (OSError, ValueError) as e:
        raise EvaluationError(f"--{what}={path}: cannot read a .npy array ({e})") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise EvaluationError(f"--{what}={path}: expected a numeric [rows, dim] array, got "
                              f"{arr.dtype} {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise EvaluationError(f"--{what}={path}: contains NaN or infinite values")
    return arr.astype(np.float64)


def _fmt(est: dict[str, Any] | None, scale: float = 1.0) -> str:
    if est is None:
        return "N/A"
    err = est["error"]
    return (f"{est['mean'] * scale:.4g} ± {err * scale:.2g}" if err is not None
            else f"{est['mean'] * scale:.4g}")


def format_table(report: dict[str, Any]) -> str:
    """Table 1 in text: natural speech and the model, predicted MOS and WER where measured,
    the four distances (kernel ones ×10⁵) with error bars; then what produced them."""
    dist = report["distances"]
    f, cf, k, ck = dist["names"]
    q = report.get("quality")
    head = ["", "DNSMOS P.808", "SIG", "BAK", "OVRL", "WER"] if q else [""]
    head += [f, cf, f"{k} ×10⁵", f"{ck} ×10⁵"]
    rows = []
    for label, source, est in (("natural speech", "recording", dist["natural_speech"]),
                               ("model", "model", dist["model"])):
        row = [label]
        if q:
            s = q["summary"][source]["all"]
            row += [f"{s['dnsmos_p808_mean']:.2f}", f"{s['dnsmos_sig_mean']:.2f}",
                    f"{s['dnsmos_bak_mean']:.2f}", f"{s['dnsmos_ovrl_mean']:.2f}",
                    f"{s['wer']:.3f}"]
        row += [_fmt(est[f]), _fmt(est[cf]), _fmt(est[k], 1e5), _fmt(est[ck], 1e5)]
        rows.append(row)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [head] + rows]
    ext = report["extractor"]
    n = dist["N"]
    lines += [
        "",
        f"extractor: {ext.get('name')} ({dist['dim']} dims"
        + (f"; {ext['network']}" if ext.get("network") else "") + ")"
        + ("" if report.get("comparable_with_paper") else
           " - not the paper's DeepSpeech2 features: not comparable with Table 1"),
        f"N = {n}" + (f" (requested {report['N_requested']})"
                      if report.get("N_requested", n) != n else "")
        + f"; Fréchet: mean ± std over {dist['num_splits']} splits of "
        f"{n // dist['num_splits']}-{math.ceil(n / dist['num_splits'])}; kernel: unbiased "
        f"MMD² over {math.ceil(n / dist['max_block'])} block(s) ± standard error"
        + (" (N/A with one block)" if n <= dist["max_block"] else ""),
    ]
    if report.get("export"):
        lines.append(f"export: {report['export']}; data: {report['data_dir']} "
                     f"split {report['split']!r}; speakers per half: "
                     f"{report['speakers']['first_half']}")
    if q:
        lines.append(f"MOS columns: DNSMOS, an automatic stand-in for the paper's MOS; WER: "
                     f"pocketsphinx 5 + jiwer; {q['utterances']} held-out utterances, the "
                     "model resynthesising each from its prepared features")
    lines += [f"warning: {w}" for w in dist["warnings"]]
    return "\n".join(lines)


def to_json_safe(obj: Any) -> Any:
    """NaN / inf → None and NumPy scalars → Python, so the report is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj

"""Which internal layer of DNSMOS P.808 (speechmos's model_v8.onnx) to use as tts-gan-eval's
default extractor: Fréchet distances of real 2-s windows against degraded copies and across
speakers, relative to real vs real, for four candidate layers.

    .venv/bin/python benchmarks/eval_extractor_layers.py --data_dir=PREP [--split=train]
        [--windows=320] [--append]

Windows: ``--windows`` windows of the split (shuffled, seed 1) halved into A and B. Rows:
A vs B (the floor); A vs B + white noise (σ = 0.01, −40 dBFS); A vs B quantised to 7 bits;
A vs B low-passed at 4 kHz (soxr 24 → 8 → 24 kHz); speaker 0 vs speaker 1 against speaker 0 vs
speaker 0 (60 windows each). A good embedding has a large ratio to the floor and few dead units.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402  (benchmarks/machine.py)

CONV = "mos_estimator_small_1/conv2d_9/Relu:0"
LAYERS = {  # name → (graph tensor, reduction of its output to one vector per clip)
    "conv2d_9 mean over time and bands (64, the default)": (CONV, lambda o: o.mean((2, 3))),
    "conv2d_9 mean over time (64 × 15 = 960)": (CONV, lambda o: o.mean(2).reshape(len(o), -1)),
    "global max-pool (64)": ("mos_estimator_small_1/global_max_pooling2d_1/Max:0",
                             lambda o: o),
    "dense_4, penultimate (64)": ("mos_estimator_small_1/dense_4/Relu:0", lambda o: o),
}


def _session():
    import onnx
    import onnxruntime as ort

    from tts_gan.extractors import dnsmos

    ext = dnsmos.DnsmosEmbedding()
    model = onnx.load(ext.path)
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.ClearField("dim_value")
    dim.dim_param = "frames"
    for tensor in sorted({t for t, _ in LAYERS.values()}):
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def embed(session, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate layer's vectors for 24-kHz clips ``[B, n]``."""
    from tts_gan.extractors import dnsmos, resample_clips

    out: dict[str, list[np.ndarray]] = {k: [] for k in LAYERS}
    tensors = sorted({t for t, _ in LAYERS.values()})
    for i in range(0, len(audio), 16):
        x16 = np.clip(resample_clips(audio[i:i + 16], 24000, 16000), -1, 1)
        res = dict(zip(tensors, session.run(tensors, {"input_1": dnsmos.log_mel(x16)}),
                       strict=True))
        for k, (t, reduce) in LAYERS.items():
            out[k].append(np.asarray(reduce(res[t]), np.float64))
    return {k: np.concatenate(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    import soxr

    from tts_gan import data, metrics, mulaw, schema

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--windows", type=int, default=320)
    p.add_argument("--append", action="store_true")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    man = schema.load_manifest(args.data_dir)
    ds = data.make_dataset(args.data_dir, args.split, 8, shuffle=True, seed=1, repeat=False,
                           deterministic=True)
    audio, spk = [], []
    for b in ds.take(args.windows // 8):
        audio.append(mulaw.decode(b["audio"].numpy(), man.mu))
        spk.append(b["speaker"].numpy())
    a, s = np.concatenate(audio).astype(np.float32), np.concatenate(spk)
    rng = np.random.default_rng(0)
    h = len(a) // 2
    variants = {
        "noise": np.clip(a + 0.01 * rng.normal(size=a.shape), -1, 1).astype(np.float32),
        "7-bit": (np.round(a * 64) / 64).astype(np.float32),
        "low-pass 4 kHz": np.stack([soxr.resample(soxr.resample(x, 24000, 8000), 8000,
                                                  24000)[:a.shape[1]] for x in a]),
    }
    session = _session()
    e = embed(session, a)
    ev = {k: embed(session, v) for k, v in variants.items()}
    s0, s1 = np.flatnonzero(s == 0), np.flatnonzero(s == 1)
    lines = ["", f"## DNSMOS layers as the default eval extractor — "
             f"{datetime.date.today().isoformat()}", "",
             f"Machine: nproc={os.cpu_count()}, {machine.cpu_model()}. Command: "
             f"`{machine.command('eval_extractor_layers.py', argv)}` "
             f"({time.perf_counter() - t0:.0f} s). "
             f"{len(a)} windows of {args.split!r} "
             f"({len(s0)} of speaker 0, {len(s1)} of speaker 1); A = first {h}, B = the rest. "
             "Fréchet distance (one estimate); ratio to A vs B in brackets.", "",
             "| layer | dead units | A vs B | + noise −40 dBFS | 7-bit | low-pass 4 kHz | "
             "speaker 0 vs 1 (60 each) | speaker 0 vs 0 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k in LAYERS:
        x = e[k]
        floor = metrics.frechet(x[:h], x[h:], warn=False).value
        cells = [f"{floor:.3g}"]
        for v in variants:
            d = metrics.frechet(x[:h], ev[v][k][h:], warn=False).value
            cells.append(f"{d:.3g} ({d / floor:.0f}×)")
        n = min(60, len(s0) // 2, len(s1))
        between = metrics.frechet(x[s0[:n]], x[s1[:n]], warn=False).value
        within = metrics.frechet(x[s0[:n]], x[s0[n:2 * n]], warn=False).value
        cells += [f"{between:.3g} ({between / within:.1f}× the within)", f"{within:.3g}"]
        lines.append(f"| {k} | {int(np.sum(x.std(0) < 1e-9))} of {x.shape[1]} | "
                     + " | ".join(cells) + " |")
    machine.publish(lines + [""], args.append)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

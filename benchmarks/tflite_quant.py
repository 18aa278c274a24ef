"""TFLite variants of an export against its SavedModel (issue 28 item 3).

    .venv/bin/python benchmarks/tflite_quant.py --export_dir=EXPORT/N --data_dir=PREP \
        [--variants=float32,float16,dynamic_int8,int8] [--repeats=7] [--score] [--append]

For each variant written by ``python -m tts_gan.quantize`` (``assets/gan_tts[_V].tflite``) and
the SavedModel's ``serving_default``: file size; speed on one 2-s utterance (batch 1, the
held-out set's longest 400 frames), calls interleaved round-robin over the models so load
drifts hit all alike, median of ``--repeats``; SNR of the variant's audio against the
SavedModel's on every held-out utterance from its prepared features (same seeds), pooled
(10·log10 Σref² / Σ(x − ref)²) and the worst utterance's. ``--score`` adds the held-out WER and
DNSMOS (``benchmarks/intelligibility.py``'s scoring: the model speaks each held-out text
through Festival, seed 0), the front end run once for all models. The table goes to stdout
(``--append``: also to benchmarks/RESULTS.md with date, machine, load and command).
The acceptance rule (issue 28): a variant ships if its WER is within 0.02 and its DNSMOS
P.808 within 0.05 of the SavedModel's.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import intelligibility as intel  # noqa: E402  (benchmarks/intelligibility.py)
import machine  # noqa: E402

WER_TOLERANCE, DNSMOS_TOLERANCE = 0.02, 0.05


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    """10·log10(Σ ref² / Σ (x − ref)²); +inf when equal."""
    err = float(np.sum((np.asarray(x, np.float64) - ref) ** 2))
    return float("inf") if err == 0 else 10 * np.log10(float(np.sum(np.square(
        np.asarray(ref, np.float64)))) / err)


def _models(export_dir: str, variants: Sequence[str]) -> dict[str, Any]:
    from tts_gan import synthesis

    models: dict[str, Any] = {"SavedModel": synthesis.ExportedSynthesizer(export_dir)}
    for v in variants:
        models[f"tflite {v}"] = synthesis.TFLiteSynthesizer(export_dir, v)
    return models


def _timing(models: dict[str, Any], utt: Any, repeats: int) -> dict[str, float]:
    """Median seconds of one call per model, interleaved (one warm-up call each)."""
    times: dict[str, list[float]] = {k: [] for k in models}
    args = (utt.features[None], [utt.features.shape[0]], [utt.speaker], [0])
    for m in models.values():
        m.run(*args)
    for _ in range(repeats):
        for k, m in models.items():
            t = time.perf_counter()
            m.run(*args)
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tts_gan import synthesis

    load0 = os.getloadavg()[0]
    models = _models(args.export_dir, args.variants)
    ref = models["SavedModel"]
    prepared = synthesis.utterances_from_prep(args.data_dir, "test")
    if not prepared:
        raise intel.IntelligibilityError(f"--data_dir={args.data_dir}: no test utterances")
    longest = max(prepared, key=lambda u: u.features.shape[0])
    clip = synthesis.Utterance(longest.utterance_id, longest.features[:400], longest.speaker)
    seconds = _timing(models, clip, args.repeats)
    sizes = {k: (os.path.getsize(m.tflite_path) if k != "SavedModel" else sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in
        os.walk(os.path.join(ref.path, "variables")) for f in fs)) for k, m in models.items()}
    utts, items, recognizer = None, None, None
    if args.score:
        items = intel.corpus_items(args.data_dir, args.corpus_dir)
        utts = intel.item_utterances(ref, items, "text", args.data_dir, "test")
        recognizer = intel.Recognizer()
    rows: dict[str, dict[str, Any]] = {}
    reference: list[np.ndarray] = []
    # One model at a time, batch 1: an interpreter keeps its tensors at the last input shape
    # (a padded batch of 8 long utterances held ~2 GB per variant).
    for k in list(models):
        m = models[k]
        audio = intel.synthesize_utterances(m, prepared, seed=0, batch_size=1)
        reference = reference or audio
        per = [snr_db(a, b) for a, b in zip(reference, audio, strict=True)]
        rows[k] = {"bytes": sizes[k], "seconds_2s_batch1": seconds[k],
                   "x_real_time": 2.0 / seconds[k],
                   "snr_db": snr_db(np.concatenate(reference), np.concatenate(audio)),
                   "snr_db_worst": float(min(per))}
        if args.score:
            gen = intel.synthesize_utterances(m, utts, seed=0, batch_size=1)
            s = intel.summarise([intel.score(recognizer, it, a, m.sample_rate)
                                 for it, a in zip(items, gen, strict=True)])
            rows[k]["wer"], rows[k]["dnsmos_p808"] = (s["all"]["wer"],
                                                      s["all"]["dnsmos_p808_mean"])
        models[k] = None  # frees the interpreter before the next one runs
    if args.score:
        base = rows["SavedModel"]
        for r in rows.values():
            r["ships"] = (abs(r["wer"] - base["wer"]) <= WER_TOLERANCE
                          and abs(r["dnsmos_p808"] - base["dnsmos_p808"]) <= DNSMOS_TOLERANCE)
    return {"rows": rows, "held_out": len(prepared), "clip": clip.utterance_id,
            "loadavg": [load0, os.getloadavg()[0]]}


def table(report: dict[str, Any]) -> list[str]:
    scored = "wer" in next(iter(report["rows"].values()))
    head = ("| model | size | s / 2-s call (batch 1) | × real time | SNR vs SavedModel, dB "
            "(pooled / worst utt.) |" + (" WER | DNSMOS P.808 | ships |" if scored else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for k, r in report["rows"].items():
        snr = ("reference" if k == "SavedModel"
               else f"{r['snr_db']:.1f} / {r['snr_db_worst']:.1f}")
        line = (f"| {k} | {r['bytes'] / 1e6:.1f} MB | {r['seconds_2s_batch1']:.3f} | "
                f"{r['x_real_time']:.1f} | {snr} |")
        if scored:
            line += (f" {r['wer']:.3f} | {r['dnsmos_p808']:.2f} | "
                     f"{'—' if k == 'SavedModel' else 'yes' if r['ships'] else 'no'} |")
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--export_dir", required=True, help="a tts-gan-export version directory")
    p.add_argument("--data_dir", required=True, help="the prep whose held-out set is used")
    from data_prep.festival_corpus import default_cache_dir

    p.add_argument("--corpus_dir", default=default_cache_dir(),
                   help="Festival corpus cache (texts and recordings) for --score")
    p.add_argument("--variants", default="float32,float16,dynamic_int8,int8",
                   help="comma-separated TFLite variants (python -m tts_gan.quantize)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--score", action="store_true", help="held-out WER and DNSMOS too")
    p.add_argument("--append", action="store_true", help=f"append to {machine.RESULTS}")
    args = p.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    try:
        report = run(args)
    except (intel.IntelligibilityError, ValueError) as e:
        print(f"tflite_quant: error: {e}", file=sys.stderr)
        return 1
    load = report["loadavg"]
    lines = ["", f"## TFLite variants of {args.export_dir} (issue 28 item 3) — "
             f"{datetime.date.today().isoformat()}", "",
             f"Machine: {machine.cpu_model()}, {os.cpu_count()} cores; load (1-min) "
             f"{load[0]:.1f} → {load[1]:.1f}. Command: `"
             f"{machine.command('tflite_quant.py', argv)}`. Held-out utterances: "
             f"{report['held_out']} ({args.data_dir}, prepared features, seeds 0..); speed "
             f"on the first 400 frames of {report['clip']}, median of {args.repeats} "
             "interleaved calls.", "", *table(report)]
    machine.publish(lines, args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""First-audio latency (#28 item 2): the time until the first 100 ms of a sentence's audio is
available with streaming and a small first chunk, from features and from text. Not a test.

    .venv/bin/python benchmarks/first_audio_latency.py \
        [--export_dir=pretrained/cpu_harmonic_noise] [--first_chunk_frames=20] [--append]

From features: ``synthesis.synthesize_streaming`` (the export's ``frame_cycles`` for the
utterance, then the first chunk through ``synthesize_chunk``: 20 frames + the receptive-field
context) until its first chunk, which holds the first 100 ms, is returned; the model is loaded
and each signature traced once before timing. From text: ``utterances_from_text`` (Festival:
text → HTS labels + F0 → features, the front end's share) and then the same. One-shot synthesis
of the whole sentence is timed alongside (the first audio without streaming). Medians of
``--repeats`` calls, alternating, TF's thread pools at ``--threads``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import time

import numpy as np
from machine import command, cpu_model, publish

SENTENCE = "The little town sat at the edge of a quiet lake."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--export_dir", default="pretrained/cpu_harmonic_noise")
    ap.add_argument("--text", default=SENTENCE)
    ap.add_argument("--first_chunk_frames", type=int, default=20)
    ap.add_argument("--chunk_frames", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--append", action="store_true", help="append the section to RESULTS.md")
    args = ap.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tts_gan import synthesis

    synth = synthesis.ExportedSynthesizer(args.export_dir)
    manifest = synth.manifest()
    speaker = manifest.speakers.get("slt_hts", 0) if manifest else 0
    front = dict(question_file=synth.question_file(), speaker=speaker,
                 voice=synthesis.festival_voice(manifest, speaker, None), mapping=None,
                 **synthesis.training_front_end(manifest))

    def from_text() -> tuple[synthesis.Utterance, float]:
        t = time.perf_counter()
        [u] = synthesis.utterances_from_text([args.text], ["latency"], front["question_file"],
                                             front["speaker"], voice=front["voice"],
                                             mapping=None, f0_method=front["f0_method"],
                                             frontend_version=front["frontend_version"])
        return u, time.perf_counter() - t

    def first_chunk(u: synthesis.Utterance) -> tuple[float, int]:
        t = time.perf_counter()
        chunk = next(synthesis.synthesize_streaming(
            synth, u, 0, args.chunk_frames, first_chunk_frames=args.first_chunk_frames))
        return time.perf_counter() - t, len(chunk)

    def one_shot(u: synthesis.Utterance) -> float:
        t = time.perf_counter()
        next(synthesis.synthesize_batched(synth, [u], [0]))
        return time.perf_counter() - t

    utt, _ = from_text()
    first_chunk(utt)  # trace the signatures for this shape class
    one_shot(utt)
    front_end = "front end (Festival, then labels + F0 → features)"
    rows: dict[str, list[float]] = {front_end: [], "first 100 ms from features": [],
                                    "first 100 ms from text": [], "one-shot sentence": []}
    samples = 0
    for _ in range(args.repeats):
        u, fe = from_text()
        lat, samples = first_chunk(u)
        rows[front_end].append(fe)
        rows["first 100 ms from features"].append(lat)
        rows["first 100 ms from text"].append(fe + lat)
        rows["one-shot sentence"].append(one_shot(u))
    assert samples >= synth.sample_rate // 10, samples
    med = {k: 1000.0 * float(np.median(v)) for k, v in rows.items()}
    audio_s = utt.features.shape[0] / 200.0
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"## First-audio latency (issue 28 item 2) — {datetime.date.today().isoformat()}", "",
        f"Machine: nproc={os.cpu_count()}, {cpu_model()}, TF threads {args.threads}; "
        f"`uptime` at the end: {load.split('load average:')[-1].strip()}. Command: "
        f"`{command('first_audio_latency.py')}`. Export `{synth.path}`, speaker "
        f"{speaker}, sentence \"{args.text}\" ({audio_s:.2f} s of audio), first chunk "
        f"{args.first_chunk_frames} frames + {synth.halfwidth} frames of right context; "
        f"medians of {args.repeats} alternating calls (model loaded and traced before).", "",
        "| step | median ms | min ms | max ms |", "|---|---:|---:|---:|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {med[k]:.1f} | {1000 * min(v):.1f} | {1000 * max(v):.1f} |")
    share = med[front_end] / med["first 100 ms from text"]
    lines += ["", f"Front end's share of the first audio from text: {share:.0%}. The first "
              f"chunk returns {samples} samples ({samples / synth.sample_rate * 1000:.0f} ms)."]
    publish(lines, args.append)


if __name__ == "__main__":
    main()

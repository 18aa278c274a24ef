"""Benchmark (not a test): tts-gan-prep throughput and tf.data reader throughput.

    .venv/bin/python benchmarks/prep_benchmark.py --workers=1,2 [--max_utterances=N] [--append]

Prep throughput is seconds of accepted audio per wall-clock second per worker, measured on the
built-in Festival corpus (rendered and cached first, not timed). Reader throughput is training
examples (2-s windows, 567-dim features) per second from ``tts_gan.data.make_dataset``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import sys
import tempfile
import time

from machine import cpu_model  # benchmarks/machine.py: the script dir is on sys.path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_prep import festival_corpus, pipeline  # noqa: E402
from tts_gan import schema  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--max_utterances", type=int, default=0)
    ap.add_argument("--corpus_dir", default=festival_corpus.default_cache_dir())
    ap.add_argument("--reader_batches", type=int, default=60)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()

    t0 = time.perf_counter()
    n_sent = -(-args.max_utterances // len(festival_corpus.VOICES)) if args.max_utterances else 0
    festival_corpus.render_corpus(args.corpus_dir, max_sentences=n_sent, workers=2,
                                  progress=False)
    render_s = time.perf_counter() - t0
    lines = [f"- festival render/cache check: {render_s:.1f} s (0 if cached)"]
    out_dir = None
    for w in [int(x) for x in args.workers.split(",")]:
        out = tempfile.mkdtemp(prefix="prep_bench_")
        cfg = pipeline.PrepConfig(fmt="hts", corpus_dir=args.corpus_dir, output_dir=out,
                                  workers=w, progress=False,
                                  max_utterances=2 * n_sent if n_sent else 0)
        t0 = time.perf_counter()
        m = pipeline.run_prep(cfg)
        wall = time.perf_counter() - t0
        audio_s = sum(m.hours.values()) * 3600
        n_utt = sum(m.counts[s]["utterances"] for s in schema.SPLITS)
        lines.append(
            f"- prep, workers={w}: {n_utt} utterances, {audio_s:.1f} s of audio in {wall:.1f} s"
            f" -> {audio_s / wall:.1f} s audio/s, {audio_s / wall / w:.1f} s audio/s/worker"
            f" (windows: {m.counts['train']['windows']} train)"
        )
        print(lines[-1], flush=True)
        if out_dir:
            shutil.rmtree(out_dir)
        out_dir = out

    from tts_gan import data

    ds = data.make_dataset(out_dir, "train", args.batch_size, seed=0)
    it = iter(ds)
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(args.reader_batches):
        next(it)
    rate = args.reader_batches * args.batch_size / (time.perf_counter() - t0)
    lines.append(
        f"- reader: make_dataset(train, batch {args.batch_size}), {args.reader_batches} batches "
        f"after 5 warm-up: {rate:.0f} examples/s ({rate * 2:.0f} s of audio/s)"
    )
    print(lines[-1])
    shutil.rmtree(out_dir)

    header = [
        f"## tts-gan-prep ({datetime.date.today().isoformat()})",
        f"- machine: nproc={os.cpu_count()}, CPU: {cpu_model()}",
        f"- command: `{shlex.join(['.venv/bin/python', *sys.argv])}`",
    ]
    text = "\n".join(header + lines) + "\n\n"
    print(text)
    if args.append:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        new = not os.path.exists(path)
        with open(path, "a", encoding="utf-8") as f:
            if new:
                f.write("# Benchmark results\n\n")
            f.write(text)


if __name__ == "__main__":
    main()

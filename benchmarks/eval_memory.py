"""Peak memory of tts-gan-eval's distances at the paper's N = 10,000 (App. B.3) and N = 2,000,
with the default extractor: is it bounded, independent of N beyond the N × d matrices?

    .venv/bin/python benchmarks/eval_memory.py --source_data=PREP [--scratch=/tmp/eval-memory]
        [--sizes=2000,10000] [--append]

Set-up (in ``--scratch``, reused when present): a data dir whose test split has
2 × max(sizes) real 2-s windows (567-dim features, µ-law audio), made by repeating every
window of ``--source_data`` (all splits) in speaker-sorted order as tts-gan-prep writes them,
GZIP level 1; and an export of a random-initialised generator of the ``tiny`` config for that
feature dimension and those speakers (synthesis cost is not what is measured; its weights are
a few MB). Each N runs in a fresh child process (``evaluation.evaluate`` with
``extractors.make("default")``, batch 8); its peak resident set size is the child's
``ru_maxrss`` from ``os.wait4``. Windows repeat, so the distances themselves mean nothing here.

Before the fix the evaluation held all 2N raw windows (2N × (400 × 567 + 48000) float32 =
2N × 1.1 MB: 4.4 GB at N = 2,000, 22 GB at N = 10,000) and every per-window feature.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402  (benchmarks/machine.py)


def build_data(source: str, out: str, windows: int) -> str:
    """``out``: manifest of ``source`` and a test split of ``windows`` windows (see module)."""
    import tensorflow as tf

    from tts_gan import schema

    manifest_path = os.path.join(out, schema.MANIFEST_NAME)
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            counts = json.load(f)["counts"]["test"]["windows"]
        if counts >= windows:
            return out
    man = schema.load_manifest(source)
    files = sorted(f for s in schema.SPLITS
                   for f in tf.io.gfile.glob(os.path.join(source, schema.shard_pattern(s))))
    spec = {schema.SPEAKER: tf.io.FixedLenFeature([], tf.int64)}
    by_speaker: dict[int, list[bytes]] = {}
    for rec in tf.data.TFRecordDataset(files, compression_type=man.compression or None):
        spk = int(tf.io.parse_single_example(rec, spec)[schema.SPEAKER])
        by_speaker.setdefault(spk, []).append(rec.numpy())
    pool = [r for s in sorted(by_speaker) for r in by_speaker[s]]
    # speaker blocks as in a uid-sorted prep: speaker s's share of `windows`, repeated
    order = []
    for s in sorted(by_speaker):
        share = round(windows * len(by_speaker[s]) / len(pool))
        order += [by_speaker[s][i % len(by_speaker[s])] for i in range(share)]
    order = order[:windows] + order[:max(0, windows - len(order))]
    os.makedirs(out, exist_ok=True)
    opts = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)
    shards = 8
    per = -(-len(order) // shards)
    for k in range(shards):
        path = os.path.join(out, schema.shard_name("test", k, shards))
        with tf.io.TFRecordWriter(path + ".tmp", opts) as w:
            for r in order[k * per:(k + 1) * per]:
                w.write(r)
        os.replace(path + ".tmp", path)
    with open(os.path.join(source, schema.MANIFEST_NAME)) as f:
        d = json.load(f)
    d["compression"] = "GZIP"
    d["counts"]["test"] = {"windows": len(order), "shards": shards, "utterances": 0}
    d["command"] = "benchmarks/eval_memory.py (windows of " + source + " repeated)"
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(d, f)
    os.replace(manifest_path + ".tmp", manifest_path)
    return out


def build_export(data_dir: str, out: str) -> str:
    """A random-init ``tiny`` generator for the data's feature dim and speakers, exported."""
    from experiments import get_config
    from tts_gan import export, schema

    if export.existing_versions(out):
        return export.latest_version_dir(out)
    man = schema.load_manifest(data_dir)
    gen = export.generator_from_config(get_config("tiny").generator, man.feature_dim,
                                       man.num_speakers)
    from tts_gan.generator import build_and_init

    build_and_init(gen)
    return export.export_saved_model(gen, out, mean=man.mean, std=man.std, mu=man.mu).path


def child(args: argparse.Namespace) -> int:
    from tts_gan import evaluation, extractors

    t0 = time.perf_counter()
    report = evaluation.evaluate(args.export_dir, args.data_dir, extractors.make("default"),
                                 num_samples=args.n, batch_size=8, progress=False)
    report["seconds"] = time.perf_counter() - t0
    with open(args.report, "w") as f:
        json.dump(evaluation.to_json_safe(report), f)
    return 0


def run_child(n: int, data_dir: str, export_dir: str, report: str) -> tuple[float, float]:
    """(peak RSS in GiB, wall seconds) of one evaluation in a fresh process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"--n={n}",
           f"--data_dir={data_dir}", f"--export_dir={export_dir}", f"--report={report}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}")
    return usage.ru_maxrss / 2**20, time.perf_counter() - t0  # ru_maxrss: KiB on Linux


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source_data", help="tts-gan-prep output whose windows are repeated")
    p.add_argument("--scratch", default="/tmp/tts-gan-eval-memory")
    p.add_argument("--sizes", default="2000,10000")
    p.add_argument("--append", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data_dir", help=argparse.SUPPRESS)
    p.add_argument("--export_dir", help=argparse.SUPPRESS)
    p.add_argument("--report", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if not args.source_data:
        p.error("--source_data is required")
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    data_dir = build_data(args.source_data, os.path.join(args.scratch, "data"), 2 * max(sizes))
    export_dir = build_export(data_dir, os.path.join(args.scratch, "export"))
    setup_s = time.perf_counter() - t0
    rows = []
    for n in sizes:
        report_path = os.path.join(args.scratch, f"report_{n}.json")
        rss, wall = run_child(n, data_dir, export_dir, report_path)
        with open(report_path) as f:
            rep = json.load(f)
        d = rep["distances"]
        rows.append((n, rss, wall, d))
        print(f"N={n}: peak RSS {rss:.2f} GiB, {wall:.0f} s", flush=True)
    lines = ["", f"## tts-gan-eval peak memory at N = {', '.join(map(str, sizes))} — "
             f"{datetime.date.today().isoformat()}", "",
             f"Machine: nproc={os.cpu_count()}, {machine.cpu_model()}, shared (a training run "
             f"on the same cores). Command: `{machine.command('eval_memory.py', argv)}` "
             f"(set-up {setup_s:.0f} s). Test split: {2 * max(sizes)} 2-s windows (567-dim "
             "features) repeated from the source data in speaker blocks; random-init `tiny` "
             "generator; default extractor (DNSMOS embedding, 64 dims); batch 8; one fresh "
             "process per N, peak RSS = its ru_maxrss.", "",
             "| N | peak RSS | wall time | N × d representations (3 matrices) | raw windows the "
             "old code held (2N × 1.1 MB) |", "|---:|---:|---:|---:|---:|"]
    for n, rss, wall, d in rows:
        reps = 3 * n * d["dim"] * 8 / 2**20
        lines.append(f"| {n:,} | {rss:.2f} GiB | {wall / 60:.1f} min | {reps:.1f} MiB | "
                     f"{2 * n * 1.1 / 1024:.1f} GiB |")
    lines += ["", f"Peak RSS grows by {rows[-1][1] - rows[0][1]:+.2f} GiB from N = {sizes[0]:,} "
              f"to N = {sizes[-1]:,}.", ""]
    machine.publish(lines, args.append)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

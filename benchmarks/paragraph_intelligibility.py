"""A paragraph as one line vs the same sentences one per line (issue 27): word error rate.

    .venv/bin/python benchmarks/paragraph_intelligibility.py
        [--export_dir=pretrained/cpu_harmonic_noise]
        [--sentences=benchmarks/paragraph_sentences.txt] [--speaker=N] [--seed=0]
        [--output_json=J]

Three renderings of the same text by ``tts-gan-synthesize`` (run as a subprocess, as a user
would): the paragraph as one ``--text`` line, and the sentences as a ``--text_file`` one per
line; and, as the before-#27 baseline, the paragraph as one Festival utterance through
:func:`tts_gan.synthesis.utterances_from_text`. Both CLI renderings give sentence j seed
``--seed + j``. Each wav is recognised in one decode (:mod:`tts_gan.intelligibility`:
pocketsphinx, jiwer, the same normalisation); the line files' transcripts are joined in line
order. WER is against the whole paragraph for all three. Acceptance: paragraph WER within
0.05 of the lines'.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def read_sentences(path: str) -> list[str]:
    """Non-empty, non-``#`` lines of ``path``."""
    with open(path, encoding="utf-8") as f:
        out = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    if not out:
        raise SystemExit(f"--sentences={path}: no sentence")
    return out


def _cli(args: list[str]) -> dict:
    exe = os.path.join(os.path.dirname(sys.executable), "tts-gan-synthesize")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"tts-gan-synthesize {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export_dir", default=os.path.join(ROOT, "pretrained", "cpu_harmonic_noise"))
    p.add_argument("--sentences", default=os.path.join(ROOT, "benchmarks",
                                                       "paragraph_sentences.txt"))
    p.add_argument("--speaker", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_json", default=None)
    args = p.parse_args(argv)

    from tts_gan import intelligibility as intel
    from tts_gan import synthesis

    sentences = read_sentences(args.sentences)
    paragraph = " ".join(sentences)
    common = [f"--export_dir={args.export_dir}", f"--seed={args.seed}"]
    if args.speaker is not None:
        common.append(f"--speaker={args.speaker}")
    rec = intel.Recognizer()
    ref = intel.normalize_text(paragraph)
    out: dict = {"export_dir": args.export_dir, "sentences_file": args.sentences,
                 "reference_words": len(ref.split())}
    with tempfile.TemporaryDirectory(prefix="tts-gan-paragraph-") as tmp:
        lines_file = os.path.join(tmp, "lines.txt")
        with open(lines_file, "w", encoding="utf-8") as f:
            f.write("\n".join(sentences) + "\n")
        runs = {"paragraph": _cli(common + [f"--text={paragraph}",
                                            f"--output_dir={tmp}/paragraph"]),
                "lines": _cli(common + [f"--text_file={lines_file}",
                                        f"--output_dir={tmp}/lines"])}
        hyps = {}
        for name, js in runs.items():
            words = []
            for fname in js["files"]:
                x, sr = sf.read(os.path.join(js["output_dir"], fname), dtype="float32")
                words.append(rec.transcribe(intel.to_16k(x, sr)))
            hyps[name] = " ".join(words)
            out[name] = {"files": len(js["files"]), "sentences": js["sentences"],
                         "audio_seconds": js["audio_seconds"],
                         "real_time_factor": js["real_time_factor"]}
        # before #27: the whole paragraph as one Festival utterance
        synth = synthesis.ExportedSynthesizer(args.export_dir)
        man = synth.manifest()
        spk = args.speaker if args.speaker is not None else man.speakers.get("slt_hts", 0)
        [u] = synthesis.utterances_from_text(
            [paragraph], ["paragraph"], synth.question_file(), spk,
            voice=synthesis.festival_voice(man, spk), **synthesis.training_front_end(man))
        [(_, audio)] = list(synthesis.synthesize_batched(synth, [u], [args.seed]))
        hyps["one_utterance"] = rec.transcribe(intel.to_16k(np.asarray(audio), synth.sample_rate))
        out["one_utterance"] = {"sentences": 1, "audio_seconds": len(audio) / synth.sample_rate}
    for name, hyp in hyps.items():
        w = intel.wer_summary([ref], [intel.normalize_text(hyp)])
        out[name].update({k: v for k, v in w.items() if k != "sentences"})  # 1 reference
        out[name]["transcript"] = hyp
    out["paragraph_minus_lines_wer"] = out["paragraph"]["wer"] - out["lines"]["wer"]
    out["accepted"] = abs(out["paragraph_minus_lines_wer"]) <= 0.05
    text = json.dumps(out, indent=1)
    print(text)
    if args.output_json:
        tmp_json = args.output_json + ".tmp"
        with open(tmp_json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp_json, args.output_json)
    return 0 if out["accepted"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Evidence that a re-export (``python -m tts_gan.reexport``) computes the first export's function
(#28 item 1). Not a test; BUILD_NOTES "Exact streaming" has the numbers.

    nice .venv/bin/python benchmarks/reexport_equivalence.py [--commit=85d1461] \
        [--new=pretrained/cpu_harmonic_noise/2] [--sentences=3]

The commit's ``tts_gan`` and its ``pretrained/cpu_harmonic_noise/2`` (``git archive``) are the
old code and the old SavedModel. In a subprocess each of (a) the old code and (b) the old code
with its excitation phase's float32 running sum replaced by today's exact
``harmonic_noise.frame_start_cycles`` rebuilds the generator from the old export's config and
variables and synthesises (``SynthesisModule``, seed 3, speaker slt) the features of the first
``--sentences`` unseen sentences (Festival). Printed in units of float32_bounds'
audio_difference and of the generator's rounding bound ρ: (a) vs the old SavedModel, (b) vs the
new export's ``serving_default``, and the new export vs the old SavedModel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OLD = "pretrained/cpu_harmonic_noise/2"

CHILD = r'''
import json, sys
import numpy as np, tensorflow as tf
from tts_gan import export as E, schema
old, feats_path, out_path = sys.argv[1:4]
cfg = E.config_from_json(json.load(open(old + "/assets/config.json")))
man = schema.load_manifest(old + "/assets")
gen = E.generator_from_config(cfg.generator, man.feature_dim, man.num_speakers)
r = tf.train.load_checkpoint(old + "/variables/variables")
for i, v in enumerate(gen.variables):
    v.assign(r.get_tensor(f"generator_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"))
mod = E.SynthesisModule(gen, np.asarray(man.mean), np.asarray(man.std), 65535.0,
                        man.num_speakers)
feats = np.load(feats_path)
out = {}
for k in feats.files:
    f = feats[k][None]
    out[k] = mod.synthesize_seed(tf.constant(f), tf.constant([f.shape[1]]), tf.constant([1]),
                                 tf.constant([3]))["audio"].numpy()[0]
np.savez(out_path, **out)
'''

EXACT = '''    from tts_gan_exact_phase import frame_start_cycles
    frame_start = frame_start_cycles(f0 / float(spec.frame_rate), start_cycles)
'''
OLD_SUM = '''    frame_start = tf.math.cumsum(inc * float(steps_per_frame), axis=1, exclusive=True)
    if start_cycles is not None:
        frame_start += tf.expand_dims(tf.cast(start_cycles, tf.float32), 1)
    frame_start -= tf.floor(frame_start)
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commit", default="85d1461", help="the first export's commit")
    ap.add_argument("--new", default=OLD, help="the re-export (version dir)")
    ap.add_argument("--sentences", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from float32_bounds import audio_difference

    from tts_gan import export, synthesis
    from tts_gan.reexport import rounding_bound

    tmp = tempfile.mkdtemp(prefix="reexport-equivalence-")
    legacy = os.path.join(tmp, "legacy")
    os.makedirs(legacy)
    archive = subprocess.run(["git", "-C", ROOT, "archive", args.commit, "tts_gan", OLD],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", legacy], input=archive, check=True)
    exact = os.path.join(tmp, "exact")
    subprocess.run(["cp", "-r", legacy, exact], check=True)
    gen_py = os.path.join(exact, "tts_gan", "generator.py")
    with open(gen_py) as f:
        src = f.read()
    assert OLD_SUM in src, f"{args.commit}: the excitation's running sum is not the expected one"
    with open(gen_py, "w") as f:
        f.write(src.replace(OLD_SUM, EXACT))
    with open(os.path.join(ROOT, "tts_gan", "harmonic_noise.py")) as f:
        hn = f.read()
    body = hn[hn.index("def frame_start_cycles"):hn.index("def harmonic_phase")]
    with open(os.path.join(exact, "tts_gan_exact_phase.py"), "w") as f:
        f.write("import tensorflow as tf\n\n\n" + body)

    old_dir = os.path.join(legacy, OLD)
    old = synthesis.ExportedSynthesizer(old_dir)
    new = synthesis.ExportedSynthesizer(args.new)
    manifest = old.manifest()
    speaker = manifest.speakers["slt_hts"]
    with open(os.path.join(HERE, "unseen_sentences.txt")) as f:
        lines = [s.strip() for s in f if s.strip() and not s.startswith("#")][:args.sentences]
    utts = synthesis.utterances_from_text(
        lines, [f"s{i}" for i in range(len(lines))], old.question_file(), speaker,
        voice=synthesis.festival_voice(manifest, speaker, None), mapping=None,
        **synthesis.training_front_end(manifest))
    feats_path = os.path.join(tmp, "feats.npz")
    np.savez(feats_path, **{u.utterance_id: u.features for u in utts})
    audio = {}
    for name, tree in (("old code", legacy), ("old code, exact phase sum", exact)):
        out = os.path.join(tmp, f"{name[:8].replace(' ', '_')}{len(audio)}.npz")
        env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="2")
        subprocess.run([sys.executable, "-c", CHILD, old_dir, feats_path, out], env=env,
                       check=True, cwd=tree)
        audio[name] = np.load(out)
    rho = rounding_bound(export.generator_from_export(old_dir)[0])
    rows = []
    for u in utts:
        f, n = u.features[None], [u.features.shape[0]]
        a_old = old.run(f, n, [speaker], [3])[0][0]
        a_new = new.run(f, n, [speaker], [3])[0][0]
        pairs = {"old code vs old SavedModel": (audio["old code"][u.utterance_id], a_old),
                 "old code + exact phase sum vs new export":
                     (audio["old code, exact phase sum"][u.utterance_id], a_new),
                 "new export vs old SavedModel": (a_new, a_old)}
        for what, (x, y) in pairs.items():
            d = audio_difference(x, y, 65535.0)
            rows.append({"utterance": u.utterance_id, "frames": n[0], "pair": what,
                         "bitwise": bool(np.array_equal(x, y)), "difference": d,
                         "of_rho": d / rho})
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

"""Log-F0 mean / std and mean phone duration of the Festival voices' renderings (issue 27).

    .venv/bin/python benchmarks/festival_voice_prosody.py
        [--corpus_dir=~/.cache/tts-gan/festival_corpus]

Reads the built-in corpus' renderings (``CACHE/wav/SPEAKER/sNNNN.wav`` + ``.lab``, all 290
sentences of each voice) and computes, with the prep's feature code (dio F0, front-end version
2, the default questions), the statistics that ``tts_gan.frontend.festival.VOICE_PROSODY``
records for each voice: the source side of the F0 mapping of
:func:`tts_gan.frontend.prosody.map_log_f0`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tts_gan import frontend, synthesis  # noqa: E402
from tts_gan.frontend import prosody  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus_dir", default=os.path.expanduser("~/.cache/tts-gan/festival_corpus"))
    args = p.parse_args(argv)
    out = {}
    for spk_dir in sorted(glob.glob(os.path.join(args.corpus_dir, "lab", "*"))):
        spk = os.path.basename(spk_dir)
        sums = np.zeros(5)
        labs = sorted(glob.glob(os.path.join(spk_dir, "*.lab")))
        for lab in labs:
            wav = os.path.join(args.corpus_dir, "wav", spk, os.path.basename(lab)[:-4] + ".wav")
            f = synthesis.features_from_labels(lab, wav, frontend.DEFAULT_QUESTION_FILE,
                                               f0_method="dio", frontend_version=2)
            sums += prosody.prosody_sums(f)
        out[spk] = dict(prosody.speaker_prosody(sums), utterances=len(labs))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

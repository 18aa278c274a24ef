"""`tts-gan-eval`: FDSD/KDSD/cFDSD/cKDSD evaluation (App. B)."""

import sys

from absl import app


def main(argv: list[str]) -> int:
    del argv
    print("tts-gan-eval: FDSD/KDSD/cFDSD/cKDSD evaluation (App. B)\n"
          "is not implemented yet in this version.", file=sys.stderr)
    return 2


def run() -> None:
    app.run(main)

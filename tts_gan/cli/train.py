"""`tts-gan-train`: GAN training (App. D)."""

import sys

from absl import app


def main(argv: list[str]) -> int:
    del argv
    print("tts-gan-train: GAN training (App. D)\n"
          "is not implemented yet in this version.", file=sys.stderr)
    return 2


def run() -> None:
    app.run(main)

"""`tts-gan-export`: SavedModel export for TF Serving."""

import sys

from absl import app


def main(argv: list[str]) -> int:
    del argv
    print("tts-gan-export: SavedModel export for TF Serving\n"
          "is not implemented yet in this version.", file=sys.stderr)
    return 2


def run() -> None:
    app.run(main)

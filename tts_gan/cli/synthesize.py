"""`tts-gan-synthesize`: synthesis from features, labels or text."""

import sys

from absl import app


def main(argv: list[str]) -> int:
    del argv
    print("tts-gan-synthesize: synthesis from features, labels or text\n"
          "is not implemented yet in this version.", file=sys.stderr)
    return 2


def run() -> None:
    app.run(main)

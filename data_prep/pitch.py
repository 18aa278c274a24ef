"""Moved to :mod:`tts_gan.frontend.pitch` (the shared front end); this alias remains for
``benchmarks/speech_likeness.py``, which imports the F0 range from here."""

from tts_gan.frontend.pitch import (  # noqa: F401
    F0_CEIL,
    F0_FLOOR,
    PitchError,
    extract_f0,
    interpolate_log_f0,
    pitch_features,
)

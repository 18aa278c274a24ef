"""The text/labels → features front end, shared by ``tts-gan-prep`` and synthesis.

GAN-TTS conditions on 200 Hz linguistic features and log F0 (paper §3.1). This package turns
an utterance's inputs into those RAW (un-normalised) features, the same way for the offline
corpus preparation (``tts-gan-prep``) and for serving (:mod:`tts_gan.synthesis`):

* :mod:`.labels` reads aligned HTS full-context label files (phone- or state-aligned);
* :mod:`.questions` answers an HTS question file (``.hed``) on each label;
* :mod:`.features` expands the answers to frames and adds the frame-position features;
* :mod:`.pitch` computes interpolated log F0 and V/UV from audio;
* :mod:`.audio` loads a waveform as 24 kHz mono;
* :mod:`.festival` renders text with Festival into a wav and its HTS labels.

Normalisation with the train-split statistics is not part of the front end: it lives in
:func:`tts_gan.schema.normalize` (the data reader and the export graph apply it).
"""

from __future__ import annotations

import os

DEFAULT_QUESTION_FILE = os.path.join(os.path.dirname(__file__), "default_questions.hed")

"""CPU recipe 3 (not a paper configuration): ``cpu_sine_mel_linear`` with a supervised
frame-rate stem.

One change from recipe 2 (``cpu_sine_mel_linear``), so that the two compare at equal steps:

* ``generator.stem_mel_bins = 80`` / ``train.aux.stem_mel_weight = 45``: a 1×1 head reads the
  200 Hz hidden state after GBlock 2 (the last block before upsampling) and predicts the
  recording's log-mel frame (the ``mel`` term's filterbank; one frame per feature frame), with
  an L1 loss. The head is a training aid only: sampling never runs it, and the generator's
  architecture and serving path are those of recipe 2. Why: recipes 1 and 2 learnt voicing and
  harmonics but no formants, even on sentences they trained on (copy-synthesis WER 0.91 at step
  5,709 of recipe 1): the mapping from linguistic features to the spectral envelope has to be
  found through the whole upsampling stack from a waveform loss. The head gives the 200 Hz stem
  that mapping directly (deep supervision; cf. the acoustic model of two-stage TTS), leaving the
  upsampling blocks the vocoder's job of rendering an envelope they can read.

Everything else is recipe 2 (and recipe 1's deviations from App. D, ``cpu_sine_mel.py``).
Measured: ``benchmarks/RESULTS.md``, "CPU recipe 3".
"""

from experiments import cpu_sine_mel_linear


def get_config():
    c = cpu_sine_mel_linear.get_config()
    c.name = "cpu_sine_mel_linear_stem"
    c.generator.stem_mel_bins = 80
    c.generator.stem_mel_after = 2
    c.train.aux.stem_mel_weight = 45.0
    return c

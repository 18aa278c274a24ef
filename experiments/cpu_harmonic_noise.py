"""CPU recipe 4 (not a paper configuration): ``cpu_sine_mel_linear_stem`` with a harmonic-plus-
noise output controlled by the generator's 200 Hz stem.

One change from recipe 3 (``cpu_sine_mel_linear_stem``), so that the two compare at equal steps:

* ``generator.harmonic_noise``: a 1×1 head on the hidden state after GBlock 2 (the stem that
  recipe 3 already taught to predict the log-mel) outputs, per feature frame, an amplitude and
  a distribution over 80 harmonics of the conditioning's F0 (up to 8 kHz at 100 Hz), and 65
  noise-filter magnitudes (0–12 kHz); sines at k·F0 and per-frame filtered white noise
  (DDSP, Engel et al. 2020; ``tts_gan/harmonic_noise.py``) are added to the upsampling stack's
  linear waveform. Why: recipes 1–3 reached voicing and harmonics but no formants after an hour
  each (copy-synthesis WER 0.94–0.95): the recipe-1 excitation enters the GBlocks additively
  (8 sines, ≤ 800 Hz for the male voice), so a phone-dependent envelope has to arise from ReLUs
  acting on sines, and G has no sample-level noise for fricatives. Here the envelope is
  multiplied into the waveform by construction, and the noise is per sample.

Everything else is recipe 3 (and recipe 1's deviations from App. D, ``cpu_sine_mel.py``); the
head adds 0.03 % of recipe 3's per-sample MACs plus 80 sines and a 128-tap filter per sample.
Measured: ``benchmarks/RESULTS.md``, "CPU recipe 4".
"""

import ml_collections

from experiments import cpu_sine_mel_linear_stem


def get_config():
    c = cpu_sine_mel_linear_stem.get_config()
    c.name = "cpu_harmonic_noise"
    c.generator.harmonic_noise = ml_collections.ConfigDict(
        # phase: "interpolated" (F0 per sample, issue 25) or "held" (F0 per frame: the head
        # resume/weights and version 2 learnt; set it to branch from them without a re-adaptation)
        dict(enabled=True, harmonics=80, noise_bands=65, after=2, phase="interpolated"))
    c.generator.dc_block_frames = 9
    return c

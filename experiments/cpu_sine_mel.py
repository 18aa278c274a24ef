"""CPU recipe (not a paper configuration): the ``small`` GAN-TTS with a sine excitation from the
F0 feature, trained first by its spectral losses alone and then with the paper's RWD* ensemble
and discriminator feature matching. Designed for 2 CPU cores and ≤ 20 CPU-hours.

Deviations from App. D and why (measurements in benchmarks/RESULTS.md and BUILD_NOTES.md):

* ``small`` sizes (quarter width, 0.5-s windows, batch 16, EMA 0.999): the paper's 10⁶ steps at
  batch 1024 are ~10⁵× our budget.
* ``generator.excitation``: sines at k·F0 (k ≤ 8) from the log-F0 feature, gated by V/UV, enter
  the last three GBlocks (neural source-filter models, Wang et al. 2019). Adversarial training
  alone reached voicing but no harmonics or formants in 10.7 h (``small_dmu8``, 42,962 steps),
  and a generator-only spectral-loss probe without it had V/UV agreement 0.46 and F0 within
  50 cents on 1 % of frames after 3,135 steps.
* ``train.aux``: log-mel L1 × 45 (HiFi-GAN) + multi-resolution STFT × 1 (Parallel WaveGAN), on
  the µ-law-decoded linear waveform (log magnitudes make the loss insensitive to the decode's
  ~10⁵× gradient range), floors 1e-5 (the corpus has digital silence); feature matching × 2
  once the discriminators join.
* ``train.d_start_step = 20000``: generator-only warm-up (PWG trains G alone for its first 100k
  steps); the RWDs and the hinge term join afterwards.
* Adam(β1 = 0.8, β2 = 0.99) and G lr 2e-4 (HiFi-GAN's) for the regression-dominated objective;
  D keeps the paper's 1:2 G:D learning-rate ratio (4e-4).
"""

import ml_collections

from experiments import small


def get_config():
    c = small.get_config()
    c.name = "cpu_sine_mel"
    c.generator.excitation = ml_collections.ConfigDict(dict(enabled=True, harmonics=8, blocks=3))
    c.train.aux.mel_weight = 45.0
    c.train.aux.stft_weight = 1.0
    c.train.aux.fm_weight = 2.0
    c.train.d_start_step = 20_000
    c.train.g_learning_rate = 2e-4
    c.train.d_learning_rate = 4e-4
    c.train.adam_beta1 = 0.8
    c.train.adam_beta2 = 0.99
    c.train.max_steps = 200_000
    c.train.save_every = 500
    c.train.eval_every = 2000
    return c

"""CPU recipe 5 (not a paper configuration): recipe 4 (``cpu_harmonic_noise``) with the RWD*
ensemble joining after a 10,000-step generator-only warm-up, seeing the linear waveform.

Two changes from recipe 4, so that the two compare at equal steps from the same checkpoint
(recipe 4's step 10,000, ``pretrained/cpu_harmonic_noise/resume/weights``):

* ``train.d_start_step = 10_000`` (recipe 4: 20,000): the discriminators, the hinge term and
  feature matching join where the shipped warm-up checkpoint stands.
* ``discriminator.input_domain = "linear"``: the RWDs see the µ-law-decoded waveform, as
  HiFi-GAN's and Parallel WaveGAN's discriminators do, instead of the generator's 16-bit µ-law
  output (the paper's view for a µ-law-output generator, App. C). Why, measured with
  ``train.log_grad_norms`` over the first 125-200 adversarial steps from step 10,000
  (BUILD_NOTES.md, "The adversarial stage"): in the 16-bit view the gradient that feature
  matching sends to G grew from 250 to 500-600 (the log-mel term's: 1,100-1,900) and the FM loss
  itself rose from 11.8 to 15.2, since µ-law's slope (~5,900 at silence, ~0.09 at full scale)
  makes D's features follow near-silent sample detail that the spectral terms pull elsewhere;
  in the linear view FM and the hinge term send G 3-5 % of the log-mel term's gradient at the
  switch, rising to ~8 % as D learns, a minority that refines rather than fights the spectral
  terms. The weights stay recipe 1's (adversarial 1, feature matching 2), which give that share.

Everything else is recipe 4. Measured: ``benchmarks/RESULTS.md``, "CPU recipe 5".
"""

from experiments import cpu_harmonic_noise


def get_config():
    c = cpu_harmonic_noise.get_config()
    c.name = "cpu_harmonic_noise_adv"
    c.train.d_start_step = 10_000
    c.discriminator.input_domain = "linear"
    return c

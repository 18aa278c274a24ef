"""CPU recipe 2 (not a paper configuration): ``cpu_sine_mel`` with a linear-output generator.

One change from ``cpu_sine_mel`` (recipe 1), so that the two runs compare at equal steps:

* ``generator.linear_output``: G's final tanh produces the linear waveform, which G then µ-law
  encodes with ``data.mu`` (its output contract, the data and the discriminators are
  unchanged). In the paper (App. C) the tanh output is the 16-bit µ-law sample itself. Why:
  recipe 1 learnt voicing, pauses and harmonics but no formants (the envelope below 2.5 kHz a
  blur; WER 0.94 even conditioned on the recordings' own features, 0.96 from text, at step
  5,709). A resonance is a sum of damped sinusoids in the linear domain; in 16-bit µ-law it is
  a log-compressed, strongly distorted wave that the last convolution has to synthesise
  directly, and the spectral losses' gradient reaches it through the decode's ~10⁵× range.
  Every vocoder trained with spectral losses (Parallel WaveGAN, HiFi-GAN, NSF) outputs linear
  audio. Measured: ``benchmarks/RESULTS.md``, "CPU recipe 2".

Everything else is recipe 1 (``experiments/cpu_sine_mel.py`` lists its deviations from App. D).
"""

from experiments import cpu_sine_mel


def get_config():
    c = cpu_sine_mel.get_config()
    c.name = "cpu_sine_mel_linear"
    c.generator.linear_output = True
    return c

"""``small`` with the discriminators looking at 8-bit µ-law audio. Not a paper configuration.

The generator still models 16-bit µ-law audio (App. C); only the discriminators' input is
re-encoded with µ = 255 (``discriminator.input_mu``), for real and generated audio alike. Why:
after 27.9 k steps of ``small`` the generated audio's band spectrum *in 16-bit µ-law* matches
the recordings' within 0.8 dB in every band up to 12 kHz, while decoded to a waveform it is
8 dB (4–8 kHz) and 10 dB (8–12 kHz) louder than the recordings (BUILD_NOTES.md, "What the
discriminators can see"). 16-bit companding turns small sample errors into noise the RWDs
cannot tell from the transform's own high-frequency content; 8-bit companding (App. C's other µ)
keeps more of them visible. Meant to be resumed from a ``small`` checkpoint (same variables).

Measured (benchmarks/RESULTS.md): from ``small``'s step 27,867, 7.2 k steps of this config
improved every speech-likeness number (LSD 14.0 → 12.7 dB, V/UV agreement 0.77 → 0.82, F0 within
50 cents 0.18 → 0.24, hiss ~5 dB lower on the slt voice); 7.9 k more (step 42,962): LSD 12.5
dB, V/UV 0.84, F0 within 50 cents 0.29. Still not recognisable speech.
"""

from experiments import small


def get_config():
    c = small.get_config()
    c.name = "small_dmu8"
    c.discriminator.input_mu = 255.0
    c.train.max_steps = 40_000
    return c

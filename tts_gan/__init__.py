"""tts-gan: GAN-TTS (Bińkowski et al., "High fidelity speech synthesis with adversarial
networks")."""

__version__ = "0.1.0"

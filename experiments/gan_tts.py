"""GAN-TTS, RWD* (Table 1, last row; Eq. 3): cRWD_k + uRWD_k for k in {1,2,4,8,15}, ω = 240."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "gan_tts"
    c.discriminator.rwds = common.rwd_star()
    return c

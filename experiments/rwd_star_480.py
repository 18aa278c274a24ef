"""RWD*_480 (Table 1, ablation 7): RWD* with the longer base window ω = 480."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "rwd_star_480"
    c.discriminator.omega = 480
    c.discriminator.rwds = common.rwd_star()
    return c

"""cRWD_1 (Table 1, ablation 2): a single conditional RWD, k = 1, window 240."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "crwd_1"
    c.discriminator.rwds = [common.rwd(True, 1, 1)]
    return c

"""cRWD_1 + uRWD_1 (Table 1, ablation 4): one conditional and one unconditional RWD, k = 1."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "crwd_1_urwd_1"
    c.discriminator.rwds = [common.rwd(True, 1, 1), common.rwd(False, 1, 1)]
    return c

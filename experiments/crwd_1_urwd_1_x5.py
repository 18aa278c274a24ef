"""(cRWD_1 + uRWD_1)^x5 (Table 1, ablation 5): five independent copies of each, k = 1."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "crwd_1_urwd_1_x5"
    c.discriminator.rwds = [common.rwd(c_, 1, 1) for _ in range(5) for c_ in (True, False)]
    return c

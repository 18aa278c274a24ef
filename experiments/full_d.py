"""FullD = D_1^C (Table 1, ablation 1): one deterministic conditional D on the full 2-s input."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "full_d"
    c.discriminator.rwds = [common.rwd(True, 1, None)]
    return c

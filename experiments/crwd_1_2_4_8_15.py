"""cRWD_{1,2,4,8,15} (Table 1, ablation 3): conditional RWDs only, windows 240k."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "crwd_1_2_4_8_15"
    c.discriminator.rwds = [common.rwd(True, k, k) for k in common.PAPER_WINDOW_FACTORS]
    return c

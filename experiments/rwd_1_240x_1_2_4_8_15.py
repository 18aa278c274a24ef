"""RWD_{1,240x{1,2,4,8,15}} (Table 1, ablation 6): 10 RWDs without the reshape
(k = 1: the D_1 architecture) on windows of 240k samples."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "rwd_1_240x_1_2_4_8_15"
    c.discriminator.rwds = [
        common.rwd(c_, 1, k) for k in common.PAPER_WINDOW_FACTORS for c_ in (True, False)]
    return c

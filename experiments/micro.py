"""Micro GAN-TTS: test-size, not a paper configuration. ``tiny`` (experiments/tiny.py) with a
very small G (2 GBlocks, ×120 upsampling) and a 2-RWD ensemble, global batch 4, so that a
test's trainer traces in a fraction of tiny's time (tracing, not stepping, is what a training
test costs). tests/train_testdata.micro_config builds from this file.

    --config=experiments/micro.py          both RWDs see the whole input (Table 1's FullD
                                           style, deterministic: a step does not depend on how
                                           the batch is split over replicas)
    --config=experiments/micro.py:random   random windows (a cRWD k=2 of 2ω, a uRWD k=1 of ω)
"""

from experiments import common, tiny


def get_config(windows: str = "full"):
    if windows not in ("full", "random"):
        raise ValueError(f"micro: windows must be 'full' or 'random', got {windows!r}")
    c = tiny.get_config()
    c.name = "micro"
    c.train.global_batch_size = 4
    c.generator.noise_dim = 8
    c.generator.input_channels = 16
    c.generator.blocks = ((8, 4), (8, 30))
    c.discriminator.first_channels = 8
    c.discriminator.down_channels = (8, 8)
    c.discriminator.rwds = (
        [common.rwd(True, 2, 2), common.rwd(False, 1, 1)] if windows == "random"
        else [common.rwd(True, 1, None), common.rwd(False, 8, None)])
    return c

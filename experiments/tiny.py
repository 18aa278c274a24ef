"""Tiny GAN-TTS for tests and the demo: the paper's structure (7 GBlocks, ×120 upsampling,
RWD* with cRWD + uRWD per k) with few channels and short windows, so that it trains on 2 CPU
cores in minutes. Not a paper configuration."""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "tiny"
    c.data.window_frames = 24            # 0.12 s windows
    c.data.windows = "grid"              # crops of the prepared windows: the tests' synthetic
                                         # data dirs have no whole-utterance shards
    c.generator.noise_dim = 16
    c.generator.input_channels = 32
    c.generator.blocks = ((32, 1), (32, 1), (16, 2), (16, 2), (16, 2), (8, 3), (8, 5))
    c.discriminator.first_channels = 8
    c.discriminator.down_channels = (16, 16)
    c.discriminator.rwds = common.rwd_star(factors=(1, 2, 4, 8))
    c.train.global_batch_size = 8
    c.train.max_steps = 200
    c.train.log_every = 10
    c.train.save_every = 50
    c.train.eval_every = 100
    c.train.ema_decay = 0.99
    c.train.standing_stats_passes = 10
    return c

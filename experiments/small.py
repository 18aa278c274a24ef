"""Small GAN-TTS for a CPU budget: the paper's structure (Table 2 generator with 7 GBlocks and
×120 upsampling, the full RWD* ensemble of Eq. 3 with ω = 240 and k ∈ {1, 2, 4, 8, 15}) at a
quarter of the channels, trained on 0.5-s windows with batch 16. Not a paper configuration.

Changed from App. D, because a CPU run has ~10⁴ steps instead of ~10⁶: learning rates ×2
(G 1e-4, D 2e-4, the paper's 1:2 ratio kept) and EMA decay 0.999 (horizon ~1k steps instead of
10k). The generator is fully convolutional, so 0.5-s training windows change nothing at sampling
time; the largest RWD window (15·240 = 3600 samples) still fits 6000-sample+ windows.
"""

from experiments import common


def get_config():
    c = common.base_config()
    c.name = "small"
    c.data.window_frames = 100           # 0.5 s training windows (12,000 samples)
    c.generator.input_channels = 192
    c.generator.blocks = ((192, 1), (192, 1), (96, 2), (96, 2), (96, 2), (48, 3), (24, 5))
    c.discriminator.first_channels = 16
    c.discriminator.down_channels = (32, 64)
    c.train.global_batch_size = 16
    c.train.g_learning_rate = 1e-4
    c.train.d_learning_rate = 2e-4
    c.train.ema_decay = 0.999
    c.train.max_steps = 20_000
    c.train.log_every = 50
    c.train.save_every = 500
    c.train.eval_every = 1000
    return c

"""Shared base configuration: the paper's model and App. D training set-up (ml_collections).

Each file in experiments/ is one row of Table 1 (plus ``tiny`` for tests and the demo); it
builds on :func:`base_config` and sets only ``discriminator.rwds``, the ensemble *as data*.
Override anything from the command line: ``--config.train.global_batch_size=64``.
"""

from __future__ import annotations

import ml_collections

PAPER_WINDOW_FACTORS = (1, 2, 4, 8, 15)  # k of Eq. 3
OMEGA = 240  # ω of §3.3


def rwd(conditional: bool, k: int, window_factor: int | None) -> dict:
    """One ensemble member with reshape factor k: window = ``discriminator.omega`` ×
    ``window_factor`` samples (None: the whole input, deterministic)."""
    if window_factor is None:
        return dict(conditional=conditional, k=k, window="full")
    return dict(conditional=conditional, k=k, window_factor=window_factor)


def rwd_star(factors=PAPER_WINDOW_FACTORS) -> list[dict]:
    """RWD*_ω (Eq. 3): one cRWD and one uRWD for every k, window ω·k, reshape factor k
    (ω = ``discriminator.omega``)."""
    return [rwd(c, k, k) for k in factors for c in (True, False)]


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "gan_tts"

    c.data = ml_collections.ConfigDict(dict(
        data_dir="",                # tts-gan-prep output (manifest.json + TFRecords)
        sample_rate=24000,
        frame_rate=200,
        samples_per_frame=120,      # λ
        window_frames=400,          # 2 s training windows (§3.1)
        windows="random",           # start anywhere in an utterance; "grid": prepared windows
        mu=65535.0,                 # µ-law G models: 16-bit (App. C); 255 = 8-bit, re-encoded
        compression="",             # "" or "GZIP", as written by tts-gan-prep
    ))

    c.generator = ml_collections.ConfigDict(dict(
        feature_dim=567,            # overridden by the manifest's feature_dim when training
        noise_dim=128,              # z ~ N(0, I_128)
        num_speakers=1,             # overridden by the manifest
        input_channels=768,         # Table 2: conv, kernel size 3
        blocks=((768, 1), (768, 1), (384, 2), (384, 2), (384, 2), (192, 3), (96, 5)),
        kernel_size=3,
        dilations=(1, 2, 4, 8),
        spectral_norm=True,
        bn_momentum=0.99,
        bn_epsilon=1e-4,
        cross_replica_bn=True,
        linear_output=False,        # the paper: tanh output is the µ-law sample (App. C);
                                    # True (not in the paper): it is linear audio, µ-law encoded
        stem_mel_bins=0,            # >0 (not in the paper): a training-only log-mel head on the
        stem_mel_after=2,           # 200 Hz stem after this GBlock (train.aux.stem_mel_weight)
    ))

    c.discriminator = ml_collections.ConfigDict(dict(
        omega=OMEGA,                # ω of §3.3: every RWD window is ω × its window_factor
        rwds=rwd_star(),
        first_channels=64,
        down_channels=(128, 256),   # then 256 for further downsampling blocks (Fig. 2)
        cond_channel_multiplier=2,  # conditional DBlock: 256 -> 512
        spectral_norm=True,
        input_mu=0.0,               # 0: D sees G's µ-law domain (the paper); >0: re-encoded
        input_domain="mulaw",       # "linear" (not in the paper): D sees the decoded waveform
    ))

    c.train = ml_collections.ConfigDict(dict(
        global_batch_size=1024,     # App. D
        max_steps=1_000_000,
        g_learning_rate=5e-5,
        d_learning_rate=1e-4,
        adam_beta1=0.0,
        adam_beta2=0.999,
        adam_epsilon=1e-8,          # not given in the paper; TF1/BigGAN-era default
        d_steps_per_g_step=1,
        loss="hinge",
        d_hinge="per_rwd",          # Σ_i relu(1 ∓ D_i); "ensemble": relu(1 ∓ Σ_i D_i) (Eq. 3)
        ortho_reg_beta=1e-4,        # off-diagonal orthogonal regularisation on G (BigGAN)
        ema_decay=0.9999,
        ema_start_step=0,
        standing_stats_passes=100,  # App. D
        seed=0,
        mixed_precision="",         # "" or "mixed_bfloat16" (TPU)
        log_every=100,
        steps_per_loop=1,           # train steps per tf.function call (e.g. 100 on a TPU)
        save_every=1000,
        eval_every=5000,
        d_start_step=0,             # G-only warm-up steps before D and the hinge term join
        log_grad_norms=False,       # True: grad_norm/<term> of G's objective every log_every
        aux=ml_collections.ConfigDict(dict(  # auxiliary losses (tts_gan/losses.py): all off
            adversarial_weight=1.0,
            domain="linear",
            stft_weight=0.0,
            mel_weight=0.0,
            ged_weight=0.0,
            fm_weight=0.0,
            stem_mel_weight=0.0,    # needs generator.stem_mel_bins = the mel term's bins
        )),
        eval_examples=4,            # fixed valid windows sampled by G_ema for TensorBoard
        eval_standing_passes=10,    # standing-statistics passes before those samples
        eval_distance_samples=0,    # >0: cFD/cKD of G_ema vs that many valid windows (Fig. 4)
        eval_distance_extractor="default",  # tts-gan-eval --features spec for that distance
        keep_checkpoints=5,
    ))
    return c

"""The experiment configs outside Table 1: ``small`` is the paper's structure at quarter width."""

import numpy as np
import pytest
import tensorflow as tf

import experiments
from tts_gan import losses
from tts_gan.discriminator import build_discriminator, rwd_specs
from tts_gan.generator import build_generator


@pytest.mark.parametrize("name", experiments.ALL_CONFIGS)
def test_training_window_holds_the_largest_rwd_window(name):
    cfg = experiments.get_config(name)
    samples = cfg.data.window_frames * cfg.data.samples_per_frame
    assert max(s.window or 0 for s in rwd_specs(cfg.discriminator)) <= samples


def test_small_is_the_paper_structure_at_quarter_width():
    paper, small = experiments.get_config("gan_tts"), experiments.get_config("small")
    assert small.discriminator.rwds == paper.discriminator.rwds  # the full RWD* ensemble
    assert [f for _, f in small.generator.blocks] == [f for _, f in paper.generator.blocks]
    assert [c * 4 for c, _ in small.generator.blocks] == [c for c, _ in paper.generator.blocks]
    assert small.generator.input_channels * 4 == paper.generator.input_channels
    assert small.train.d_learning_rate == 2 * small.train.g_learning_rate  # App. D's ratio

    frames = small.data.window_frames
    gen = build_generator(small.generator)
    feats = tf.random.normal([2, frames, small.generator.feature_dim])
    audio = gen(feats, tf.random.normal([2, small.generator.noise_dim]), training=True)
    assert audio.shape == (2, frames * 120, 1)
    audio = audio[..., 0]
    disc = build_discriminator(small.discriminator, feature_dim=small.generator.feature_dim)
    scores = disc(audio, feats, seed=tf.constant([0, 0]))
    assert scores.shape == (2, 10)
    assert np.all(np.isfinite(scores.numpy()))


@pytest.mark.parametrize("name", experiments.TABLE1_ROWS)
def test_table1_configs_are_the_papers_recipe(name):
    """App. D: hinge loss alone from step 0 — every auxiliary loss off, no G-only warm-up, no
    sine excitation (those are opt-in CPU-recipe methods, see tts_gan/losses.py)."""
    cfg = experiments.get_config(name)
    aux = cfg.train.aux
    assert aux.adversarial_weight == 1.0
    assert (aux.stft_weight, aux.mel_weight, aux.ged_weight, aux.fm_weight,
            aux.stem_mel_weight) == (0, 0, 0, 0, 0)
    assert cfg.generator.stem_mel_bins == 0  # no training head
    assert cfg.train.d_start_step == 0
    assert not cfg.generator.get("excitation", {}).get("enabled", False)
    assert cfg.generator.linear_output is False  # tanh output is the µ-law sample (App. C)
    assert not cfg.generator.get("harmonic_noise", {}).get("enabled", False)
    assert cfg.generator.get("dc_block_frames", 0) == 0
    assert cfg.train.adam_beta1 == 0.0 and cfg.train.adam_beta2 == 0.999
    assert cfg.train.d_hinge == "per_rwd"  # what they trained with before the option (#17)


@pytest.mark.parametrize("name", experiments.TABLE1_ROWS)
def test_table1_configs_keep_app_d(name):
    """App. D's numbers, pinned (issue 25: new methods are opt-in, the paper's recipe stays):
    "a single discriminator step per generator step, but with doubled learning rate: 1e-4 for
    the former, compared to 5e-5 for the latter [...] hinge loss, a batch size of 1024 and the
    Adam optimizer with β1 = 0, β2 = 0.999 [...] a decay rate of 0.9999"; D sees G's output,
    the 16-bit µ-law sample of App. C, and G is regularised orthogonally (BigGAN's 1e-4)."""
    cfg = experiments.get_config(name)
    t = cfg.train
    assert (t.g_learning_rate, t.d_learning_rate) == (5e-5, 1e-4)
    assert t.global_batch_size == 1024 and t.d_steps_per_g_step == 1 and t.loss == "hinge"
    assert t.ema_decay == 0.9999 and t.ema_start_step == 0
    assert t.ortho_reg_beta == 1e-4 and t.standing_stats_passes == 100
    assert t.mixed_precision == "" and not t.log_grad_norms
    assert cfg.data.mu == 65535.0 and cfg.data.window_frames == 400  # 2-s windows, App. C
    d = cfg.discriminator
    assert d.input_mu == 0.0 and d.input_domain == "mulaw"  # D sees G's own µ-law output
    assert d.omega == (480 if name == "rwd_star_480" else 240)  # ω of §3.3 / Table 1 row 7
    assert d.spectral_norm and cfg.generator.spectral_norm


def test_cpu_recipe_turns_the_aux_losses_and_excitation_on():
    cfg = experiments.get_config("cpu_sine_mel")
    assert cfg.train.aux.mel_weight > 0 and cfg.train.aux.stft_weight > 0
    assert cfg.train.aux.fm_weight > 0 and cfg.train.d_start_step > 0
    assert cfg.generator.excitation.enabled
    assert cfg.discriminator.rwds == experiments.get_config("gan_tts").discriminator.rwds


def test_cpu_recipe_2_changes_only_the_output_domain():
    one = experiments.get_config("cpu_sine_mel").to_dict()
    two = experiments.get_config("cpu_sine_mel_linear").to_dict()
    assert two["generator"].pop("linear_output") is True
    assert one["generator"].pop("linear_output") is False
    assert two.pop("name") == "cpu_sine_mel_linear" and one.pop("name") == "cpu_sine_mel"
    assert one == two


def test_cpu_recipe_3_adds_only_the_stem_head():
    two = experiments.get_config("cpu_sine_mel_linear").to_dict()
    three = experiments.get_config("cpu_sine_mel_linear_stem").to_dict()
    # the head predicts the mel term's frames (train.aux.mel_bins, default 80)
    assert three["generator"].pop("stem_mel_bins") == losses.AuxLosses().mel_bins == 80
    assert three["train"]["aux"].pop("stem_mel_weight") > 0
    assert two["generator"].pop("stem_mel_bins") == 0 and two["train"]["aux"].pop(
        "stem_mel_weight") == 0
    assert three.pop("name") == "cpu_sine_mel_linear_stem" and two.pop("name")
    assert two == three


def test_cpu_recipe_4_adds_only_the_harmonic_noise_output_and_its_dc_block():
    three = experiments.get_config("cpu_sine_mel_linear_stem").to_dict()
    four = experiments.get_config("cpu_harmonic_noise").to_dict()
    hn = four["generator"].pop("harmonic_noise")
    assert four["generator"].pop("dc_block_frames") == 9
    assert hn["enabled"] and hn["after"] == three["generator"]["stem_mel_after"]
    assert "harmonic_noise" not in three["generator"]
    assert four.pop("name") == "cpu_harmonic_noise" and three.pop("name")
    assert three == four


def test_cpu_recipe_5_changes_only_d_start_and_d_view():
    four = experiments.get_config("cpu_harmonic_noise").to_dict()
    five = experiments.get_config("cpu_harmonic_noise_adv").to_dict()
    assert five["train"].pop("d_start_step") == 10_000 and four["train"].pop("d_start_step")
    assert five["discriminator"].pop("input_domain") == "linear"
    assert four["discriminator"].pop("input_domain") == "mulaw"
    assert five.pop("name") == "cpu_harmonic_noise_adv" and four.pop("name")
    assert four == five


@pytest.mark.parametrize("windows", ["full", "random"])
def test_micro_is_tiny_at_test_size(windows):
    """experiments/micro.py (test-size, outside ALL_CONFIGS: the training tests' micro_config
    and their CLI runs) changes only tiny's sizes, batch and ensemble; its windows fit."""
    from experiments import micro

    cfg = micro.get_config(windows)
    samples = cfg.data.window_frames * cfg.data.samples_per_frame
    assert max(s.window or 0 for s in rwd_specs(cfg.discriminator)) <= samples
    assert len(cfg.discriminator.rwds) == 2
    assert np.prod([f for _, f in cfg.generator.blocks]) == cfg.data.samples_per_frame
    tiny, m = experiments.get_config("tiny").to_dict(), cfg.to_dict()
    for key in ("noise_dim", "input_channels", "blocks"):
        tiny["generator"].pop(key), m["generator"].pop(key)
    for key in ("first_channels", "down_channels", "rwds"):
        tiny["discriminator"].pop(key), m["discriminator"].pop(key)
    assert m["train"].pop("global_batch_size") == 4 and tiny["train"].pop("global_batch_size")
    assert m.pop("name") == "micro" and tiny.pop("name") == "tiny"
    assert m == tiny
    with pytest.raises(ValueError, match="windows must be 'full' or 'random'"):
        micro.get_config("bad")

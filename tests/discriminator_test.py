"""Random window discriminators (§3.3–3.4, Eq. 1–3, Table 3) and the Table-1 ensembles."""

import numpy as np
import pytest
import tensorflow as tf
from ml_collections import ConfigDict

import experiments
from tts_gan.discriminator import (
    DiscriminatorEnsemble,
    RandomWindowDiscriminator,
    RWDSpec,
    build_discriminator,
    downsample_factors,
    migrate_window_entries,
    rwd_specs,
)

# Table 3 of the paper, verbatim: k -> (D^C factors, blocks, depth), (D^U factors, blocks, depth)
TABLE3 = {
    1: (([5, 3, 2, 2, 2], 8, 17), ([5, 3], 5, 11)),
    2: (([5, 3, 2, 2], 7, 15), ([5, 3], 5, 11)),
    4: (([5, 3, 2], 6, 13), ([5, 3], 5, 11)),
    8: (([5, 3], 5, 11), ([5, 3], 5, 11)),
    15: (([2, 2, 2], 6, 13), ([2, 2], 5, 11)),
}


@pytest.mark.parametrize("k", sorted(TABLE3))
def test_every_row_of_table3(k):
    for conditional, (factors, blocks, depth) in zip((True, False), TABLE3[k], strict=True):
        assert downsample_factors(k, conditional) == factors
        rwd = RandomWindowDiscriminator(RWDSpec(conditional, k, 240 * k), feature_dim=567)
        x = tf.random.normal([1, 240 * k])
        c = tf.random.normal([1, 2 * k, 567]) if conditional else None
        assert rwd(x, c).shape == (1,)
        assert rwd.factors == factors
        assert rwd.num_blocks == blocks
        # Depth counted from the built layers: k3 convs + the output linear layer.
        convs = [v for v in rwd.trainable_variables
                 if v.path.endswith("kernel") and len(v.shape) == 3 and v.shape[0] == 3]
        assert len(convs) + 1 == depth == rwd.depth
        # All RWDs work at the same temporal resolution ω = 240 after the reshape (§3.3).
        assert rwd.dblocks[0].conv1.kernel.shape[1] == k


def test_conditional_block_sits_where_time_matches_the_features():
    rwd = RandomWindowDiscriminator(RWDSpec(True, 2, 480), feature_dim=5)
    steps = 480 // 2
    for block in rwd.dblocks[: rwd.dblocks.index(rwd.cond_block)]:
        steps //= block.downsample
    assert steps == 480 // 120  # = number of feature frames in the window
    assert all(b.downsample == 1 for b in rwd.dblocks[-2:])
    assert rwd.dblocks[0].downsample == 1


def _indexed_batch(batch=4, frames=40):
    audio = np.arange(frames * 120, dtype=np.float32)[None].repeat(batch, 0)
    audio += 1e5 * np.arange(batch, dtype=np.float32)[:, None]
    feats = np.broadcast_to(np.arange(frames, dtype=np.float32)[None, :, None], (batch, frames, 3))
    return tf.constant(audio), tf.constant(np.ascontiguousarray(feats))


def test_conditional_windows_start_on_the_200hz_grid_with_matching_features():
    rwd = RandomWindowDiscriminator(RWDSpec(True, 4, 960), feature_dim=3)
    audio, feats = _indexed_batch()
    starts = []
    for s in range(20):
        x, c = rwd.select_window(audio, feats, seed=tf.constant([s, 7]))
        x, c = x.numpy(), c.numpy()
        first = x[:, 0] - 1e5 * np.arange(4)
        assert np.all(first % 120 == 0)
        np.testing.assert_array_equal(x - x[:, :1], np.arange(960)[None].repeat(4, 0))
        assert c.shape == (4, 8, 3)
        np.testing.assert_array_equal(c[:, :, 0], first[:, None] / 120 + np.arange(8)[None])
        starts.extend(first)
    assert len(set(starts)) > 10 and max(starts) <= 40 * 120 - 960


def test_unconditional_windows_start_anywhere():
    rwd = RandomWindowDiscriminator(RWDSpec(False, 1, 240))
    audio, _ = _indexed_batch()
    x, c = rwd.select_window(audio, None, seed=tf.constant([1, 2]))
    assert c is None
    first = x.numpy()[:, 0] - 1e5 * np.arange(4)
    assert np.any(first % 120 != 0)
    assert len(set(first)) == 4  # drawn per example


def test_windows_are_deterministic_per_seed():
    rwd = RandomWindowDiscriminator(RWDSpec(False, 2, 480))
    audio, _ = _indexed_batch()
    a, _ = rwd.select_window(audio, None, seed=tf.constant([3, 4]))
    b, _ = rwd.select_window(audio, None, seed=tf.constant([3, 4]))
    d, _ = rwd.select_window(audio, None, seed=tf.constant([3, 5]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), d.numpy())


def test_full_discriminator_is_deterministic_and_sees_everything():
    rwd = RandomWindowDiscriminator(RWDSpec(True, 1, None), feature_dim=3, first_channels=4,
                                    down_channels=(4, 4))
    audio = tf.random.normal([2, 2400])
    feats = tf.random.normal([2, 20, 3])
    a = rwd(audio, feats, seed=tf.constant([0, 1])).numpy()
    b = rwd(audio, feats, seed=tf.constant([5, 9])).numpy()
    np.testing.assert_array_equal(a, b)
    audio2 = tf.tensor_scatter_nd_update(audio, [[0, 2399]], [5.0])
    assert rwd(audio2, feats)[0].numpy() != a[0]


def test_conditional_rwd_uses_the_features():
    rwd = RandomWindowDiscriminator(RWDSpec(True, 1, 240), feature_dim=3, first_channels=4,
                                    down_channels=(4, 4))
    audio = tf.random.normal([2, 240])
    a = rwd(audio, tf.zeros([2, 2, 3])).numpy()
    b = rwd(audio, tf.ones([2, 2, 3])).numpy()
    assert np.all(a != b)


def test_invalid_specs_are_clear_errors():
    with pytest.raises(ValueError, match="k=7"):
        downsample_factors(7, True)
    with pytest.raises(ValueError, match="whole feature frames"):
        RandomWindowDiscriminator(RWDSpec(True, 1, 100), feature_dim=3)
    with pytest.raises(ValueError, match="needs feature_dim"):
        RandomWindowDiscriminator(RWDSpec(True, 1, 240))
    with pytest.raises(ValueError, match="missing field"):
        RWDSpec.from_config({"k": 1, "window_factor": 1}, 240)


# Expected ensembles of Table 1, written out independently of experiments/common.py.
def _star(omega):
    return sorted((c, k, omega * k) for k in (1, 2, 4, 8, 15) for c in (True, False))


TABLE1 = {
    "full_d": [(True, 1, None)],
    "crwd_1": [(True, 1, 240)],
    "crwd_1_2_4_8_15": [(True, k, 240 * k) for k in (1, 2, 4, 8, 15)],
    "crwd_1_urwd_1": [(False, 1, 240), (True, 1, 240)],
    "crwd_1_urwd_1_x5": [(False, 1, 240)] * 5 + [(True, 1, 240)] * 5,
    "rwd_1_240x_1_2_4_8_15": sorted((c, 1, 240 * k) for k in (1, 2, 4, 8, 15)
                                    for c in (True, False)),
    "rwd_star_480": _star(480),
    "gan_tts": _star(240),
}


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_every_table1_config_builds_at_paper_size(name):
    cfg = experiments.get_config(name)
    disc = build_discriminator(cfg.discriminator, feature_dim=cfg.generator.feature_dim)
    specs = sorted(((s.conditional, s.k, s.window) for s in disc.specs),
                   key=lambda t: (t[0], t[1], t[2] or 0))
    assert specs == sorted(TABLE1[name], key=lambda t: (t[0], t[1], t[2] or 0))
    assert len(set(disc.rwd_names)) == len(disc.rwds)  # independent copies are distinct
    scores = disc(tf.random.normal([1, 48000]), tf.random.normal([1, 400, 567]),
                  seed=tf.constant([0, 0]))
    assert scores.shape == (1, len(TABLE1[name]))
    assert np.all(np.isfinite(scores.numpy()))
    if name == "crwd_1_urwd_1_x5":  # five *independent* parameter sets
        kernels = {r.name: r.out.kernel.numpy() for r in disc.rwds}
        assert len({k.tobytes() for k in kernels.values()}) == 10


def test_ensemble_scores_per_discriminator():
    disc = DiscriminatorEnsemble([RWDSpec(True, 1, 240), RWDSpec(False, 2, 480)], feature_dim=3,
                                 first_channels=4, down_channels=(4, 4))
    s = disc(tf.random.normal([3, 960]), tf.random.normal([3, 8, 3]), seed=tf.constant([1, 1]))
    assert s.shape == (3, 2)
    assert disc.rwd_names == ["cRWD_k1_w240", "uRWD_k2_w480"]


def test_tiny_config_builds_and_runs():
    cfg = experiments.get_config("tiny")
    disc = build_discriminator(cfg.discriminator, feature_dim=9)
    n = cfg.data.window_frames * 120
    s = disc(tf.random.normal([2, n]), tf.random.normal([2, cfg.data.window_frames, 9]))
    assert s.shape == (2, 8)


def _windows(cfg) -> list[tuple[bool, int, int | None]]:
    return [(s.conditional, s.k, s.window) for s in rwd_specs(cfg.discriminator)]


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_omega_drives_every_window(name):
    """ω of §3.3 sets the windows: ω' = 360 (a multiple of λ = 120) scales every window by
    360/ω and leaves k and the full-input D alone (#17: the field used to be ignored)."""
    cfg = experiments.get_config(name)
    omega = cfg.discriminator.omega
    cfg.discriminator.omega = 360
    want = [(c, k, None if w is None else w * 360 // omega) for c, k, w in _windows(
        experiments.get_config(name))]
    assert _windows(cfg) == want
    assert (_windows(cfg) != _windows(experiments.get_config(name))) == (name != "full_d")


def test_rwd_star_480_is_gan_tts_at_omega_480():
    star = experiments.get_config("gan_tts")
    star.discriminator.omega = 480
    assert _windows(star) == _windows(experiments.get_config("rwd_star_480"))
    disc = build_discriminator(star.discriminator, feature_dim=9)
    assert disc.rwd_names[:2] == ["cRWD_k1_w480", "uRWD_k1_w480"]


def test_bad_omega_and_window_entries_are_clear_errors():
    base = experiments.get_config("gan_tts").discriminator.to_dict()
    for bad in (0, -240, 240.5, True):
        with pytest.raises(ValueError, match=r"discriminator.omega=.*positive integer"):
            rwd_specs(dict(base, omega=bad))
    # uRWD windows would be fine; conditional ones would cut feature frames
    with pytest.raises(ValueError, match=r"omega=100: the conditional window 100"):
        build_discriminator(ConfigDict(dict(base, omega=100)), feature_dim=9)
    for entry, match in (
            (dict(conditional=True, k=1, window=240), r"window=240 samples is not read"),
            (dict(conditional=True, k=1, window_factor=1, window="full"), "exactly one of"),
            (dict(conditional=True, k=1), "exactly one of"),
            (dict(conditional=True, k=1, window_factor=0), r"window_factor=0, expected"),
            (dict(conditional=True, k=1, windw=1), r"unknown field\(s\) \['windw'\]")):
        with pytest.raises(ValueError, match=match):
            rwd_specs(dict(omega=240, rwds=[entry]))


def test_saved_configs_with_sample_windows_migrate():
    """A run's config.json written before #17 spells windows in samples (null: full input);
    reading it back (write_latest_weights) gives the same ensemble."""
    for name in sorted(TABLE1):
        legacy = dict(experiments.get_config(name).discriminator.to_dict(), rwds=[
            dict(conditional=c, k=k, window=w) for c, k, w in TABLE1[name]])
        migrate_window_entries(legacy)
        got = [(s.conditional, s.k, s.window) for s in rwd_specs(legacy)]
        assert got == TABLE1[name], name
    with pytest.raises(ValueError, match="not a multiple of discriminator.omega=240"):
        migrate_window_entries(dict(omega=240, rwds=[dict(conditional=False, k=1, window=100)]))

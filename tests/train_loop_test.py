"""The training loop for pods (#17): ``train.seed`` fixes the initial weights, and
``train.steps_per_loop`` runs K steps per ``tf.function`` call with the NaN/inf guard in the
graph."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td
from ml_collections import ConfigDict
from train_lib_test import _all_weights

from tts_gan import train_lib

FRAMES = 24  # the micro config's window


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=32)


def _weights_after(config, steps: int) -> tuple[dict, dict]:
    """(initial, after ``steps`` App.-D steps on a fixed batch) weights of a new trainer."""
    tr = train_lib.GANTrainer(config, tf.distribute.get_strategy(),
                              config.generator.feature_dim, config.generator.num_speakers)
    w0 = _all_weights(tr)
    batch = {k: tf.constant(v) for k, v in td.fixed_batch(4, FRAMES).items()}
    for s in range(steps):
        tr.train_step(batch, s)
    return w0, _all_weights(tr)


def test_train_seed_fixes_the_initial_weights(data_dir):
    """Two trainers of one config start from, and after 2 steps hold, bit-identical weights on
    CPU, whatever the global random state before; another train.seed starts elsewhere."""
    config = train_lib.resolve_config(td.micro_config(data_dir, random_windows=True), data_dir)
    keras.utils.set_random_seed(1)
    w0_a, w_a = _weights_after(config, 2)
    keras.utils.set_random_seed(2)  # the global state the trainer must not depend on
    np.random.rand(7)
    w0_b, w_b = _weights_after(config, 2)
    for k in w0_a:
        np.testing.assert_array_equal(w0_a[k], w0_b[k], err_msg=k)
        np.testing.assert_array_equal(w_a[k], w_b[k], err_msg=k)
    config.train.seed = 1
    w0_c = _weights_after(config, 0)[0]
    kernels = [k for k in w0_a if k.endswith("/kernel")]
    assert kernels and all(not np.array_equal(w0_a[k], w0_c[k]) for k in kernels)


def test_bad_train_seed_is_a_clear_error(data_dir):
    config = train_lib.resolve_config(td.micro_config(data_dir), data_dir).to_dict()
    for bad in (-1, 2**31, 1.5):
        config["train"]["seed"] = bad
        with pytest.raises(ValueError, match=r"train.seed=.*expected an integer in \[0, 2\*\*31\)"):
            train_lib.build_models(ConfigDict(config), 8, 1)

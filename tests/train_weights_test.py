"""Weights-only checkpoints (tts-gan-train --write_weights / --init_checkpoint): carry a run's
step and G, G_ema, D weights to a new model_dir without the optimizer state."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import train_testdata as td

from tts_gan import train_lib


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return td.write_dataset(str(tmp_path_factory.mktemp("data")), window_frames=32)


def _config(data_dir: str, max_steps: int, **kw):
    return td.micro_config(data_dir, max_steps=max_steps, save_every=max_steps, log_every=1,
                           eval_every=0, **kw)


def test_write_weights_then_init_a_new_model_dir(data_dir, tmp_path):
    a = train_lib.train(_config(data_dir, 2), str(tmp_path / "a"), log=lambda s: None)
    prefix = train_lib.write_latest_weights(str(tmp_path / "a"), str(tmp_path / "w" / "weights"))
    assert tf.io.gfile.exists(prefix + ".index")
    # no optimizer state in the weights-only checkpoint
    names = [n for n, _ in tf.train.list_variables(prefix)]
    assert not any("optimizer" in n for n in names) and any("generator" in n for n in names)

    logs: list[str] = []
    b = train_lib.train(_config(data_dir, 2), str(tmp_path / "b"), log=logs.append,
                        init_checkpoint=prefix)
    assert b.start_step == b.end_step == 2 and any("initialised from" in s for s in logs)
    for model in ("G", "G_ema", "D"):
        for va, vb in zip(getattr(a.trainer, model).weights, getattr(b.trainer, model).weights,
                          strict=True):
            np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)
    # training goes on from there; an existing checkpoint in model_dir wins over the init
    c = train_lib.train(_config(data_dir, 3), str(tmp_path / "b"), log=lambda s: None,
                        init_checkpoint=prefix)
    assert (c.start_step, c.end_step) == (2, 3)


def test_bad_init_checkpoint_is_a_clear_error(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--init_checkpoint .*nope: no checkpoint"):
        train_lib.train(_config(data_dir, 1), str(tmp_path / "x"), log=lambda s: None,
                        init_checkpoint=str(tmp_path / "nope"))
    train_lib.train(_config(data_dir, 1), str(tmp_path / "a"), log=lambda s: None)
    prefix = train_lib.write_latest_weights(str(tmp_path / "a"), str(tmp_path / "w"))
    other = _config(data_dir, 1)
    other.generator.input_channels = 24  # a different model
    with pytest.raises(ValueError, match=r"--init_checkpoint .*does not match"):
        train_lib.train(other, str(tmp_path / "y"), log=lambda s: None, init_checkpoint=prefix)
    with pytest.raises(FileNotFoundError, match="no checkpoint to write weights from"):
        train_lib.write_latest_weights(str(tmp_path / "empty"), str(tmp_path / "w2"))

"""Weights-only checkpoints (tts-gan-train --write_weights / --init_checkpoint): carry a run's
step and G, G_ema, D weights to a new model_dir without the optimizer state."""

from __future__ import annotations

import os

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


@pytest.fixture(scope="module")
def run_a(data_dir, tmp_path_factory):
    """A 2-step micro run and its weights-only checkpoint: (result, model_dir, prefix). Shared
    by both tests (each traced its own trainer before)."""
    root = tmp_path_factory.mktemp("weights")
    a = train_lib.train(_config(data_dir, 2), str(root / "a"), log=lambda s: None)
    prefix = train_lib.write_latest_weights(str(root / "a"), str(root / "w" / "weights"))
    return a, str(root / "a"), prefix


def test_write_weights_then_init_a_new_model_dir(data_dir, run_a, tmp_path):
    a, _, prefix = run_a
    assert tf.io.gfile.exists(prefix + ".index")
    # no optimizer state in the weights-only checkpoint
    names = [n for n, _ in tf.train.list_variables(prefix)]
    assert not any("optimizer" in n for n in names) and any("generator" in n for n in names)

    logs: list[str] = []
    b = train_lib.train(_config(data_dir, 2), str(tmp_path / "b"), log=logs.append,
                        init_checkpoint=prefix)
    assert b.start_step == b.end_step == 2 and any("initialised from" in s for s in logs)
    # the weights carry their data's manifest; the new run checked its data against it (#25)
    with open(prefix + train_lib.WEIGHTS_MANIFEST_SUFFIX) as f, \
            open(os.path.join(data_dir, "manifest.json")) as g:
        assert f.read() == g.read()
    assert any("init weights' features match --data_dir's" in s for s in logs)
    for model in ("G", "G_ema", "D"):
        for va, vb in zip(getattr(a.trainer, model).weights, getattr(b.trainer, model).weights,
                          strict=True):
            np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)
    # training goes on from there; an existing checkpoint in model_dir wins over the init.
    # (Run by a's trainer, whose step is traced: train() restores model_dir's checkpoint into
    # the trainer it is given.)
    c = train_lib.train(_config(data_dir, 3), str(tmp_path / "b"), log=lambda s: None,
                        init_checkpoint=prefix, trainer=a.trainer)
    assert (c.start_step, c.end_step) == (2, 3)


def test_bad_init_checkpoint_is_a_clear_error(data_dir, run_a, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--init_checkpoint .*nope: no checkpoint"):
        train_lib.train(_config(data_dir, 1), str(tmp_path / "x"), log=lambda s: None,
                        init_checkpoint=str(tmp_path / "nope"))
    prefix = run_a[2]
    other = _config(data_dir, 1)
    other.generator.input_channels = 24  # a different model
    with pytest.raises(ValueError, match=r"--init_checkpoint .*does not match"):
        train_lib.train(other, str(tmp_path / "y"), log=lambda s: None, init_checkpoint=prefix)
    with pytest.raises(FileNotFoundError, match="no checkpoint to write weights from"):
        train_lib.write_latest_weights(str(tmp_path / "empty"), str(tmp_path / "w2"))

"""tts_gan.strategy: the factory behind `tts-gan-train --strategy=...` (App. D distribution)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tts_gan import strategy as strategy_lib


def test_default_one_device_and_mirrored():
    assert strategy_lib.make_strategy("default") is tf.distribute.get_strategy()
    one = strategy_lib.make_strategy("one_device")
    assert isinstance(one, tf.distribute.OneDeviceStrategy) and one.num_replicas_in_sync == 1
    # conftest.py splits the CPU into 2 logical devices: mirrored uses both.
    mirrored = strategy_lib.make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2
    assert strategy_lib.task_info(mirrored) == (None, 0, True)


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(strategy_lib.StrategyError, match="unknown --strategy='gpu'"):
        strategy_lib.make_strategy("gpu")


def test_multi_worker_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(strategy_lib.StrategyError, match="needs the TF_CONFIG"):
        strategy_lib.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(strategy_lib.StrategyError, match="TF_CONFIG is invalid"):
        strategy_lib.make_strategy("multi_worker")


def test_tpu_without_a_name_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(strategy_lib.StrategyError, match="needs --tpu=NAME"):
        strategy_lib.make_strategy("tpu")


@pytest.mark.parametrize("tpu", ["no-such-tpu", "local"])
def test_cli_tpu_without_a_tpu_fails_at_start_with_one_line(tmp_path, tpu):
    """(6) `tts-gan-train --strategy=tpu` on a machine without a TPU: one-line message, rc 2,
    no stack trace, nothing written."""
    exe = os.path.join(os.path.dirname(sys.executable), "tts-gan-train")
    model_dir = tmp_path / "model"
    res = subprocess.run([exe, "--strategy=tpu", f"--tpu={tpu}", f"--data_dir={tmp_path}",
                          f"--model_dir={model_dir}"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr + res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("tts-gan-train:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"tts-gan-train: error: --strategy=tpu: no usable TPU '{tpu}'"), res.stderr[-2000:]
    assert not model_dir.exists()
